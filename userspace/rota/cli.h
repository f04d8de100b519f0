/* Shared state of the rota CLI: global options and command signatures. */
#pragma once
#include <stdbool.h>
#include <cjson/cJSON.h>

struct cli {
	const char *bpffs_dir;	/* --bpffs-dir; NULL: the default */
	bool json;		/* -o json */
};

struct cli_cmd {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);	/* argv[0] is the command */
	const char *usage;
};

/* Prints cJSON to stdout and frees it; returns 0 or -ENOMEM. */
int cli_print_json(cJSON *json);
/* Usage error: prints "rota: MSG" and the command's usage; returns 2. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a decimal unsigned number in [min, max]. */
int cli_parse_u32(const char *s, unsigned long min, unsigned long max, unsigned int *out);

int do_load(struct cli *cli, int argc, char **argv);
int do_unload(struct cli *cli, int argc, char **argv);
int do_attach(struct cli *cli, int argc, char **argv);
int do_detach(struct cli *cli, int argc, char **argv);
int do_service(struct cli *cli, int argc, char **argv);
int do_backend(struct cli *cli, int argc, char **argv);
int do_conntrack(struct cli *cli, int argc, char **argv);
int do_stats(struct cli *cli, int argc, char **argv);

extern const struct cli_cmd cli_cmds[];
const struct cli_cmd *cli_find(const char *name);
