/* rota: the CLI over a node's pinned datapath. Works with or without an
 * agent; every command reads or writes the maps directly. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "log.h"

const struct cli_cmd cli_cmds[] = {
	{ "load", do_load, "load [--services N] [--backends N] [--conntrack N] [--maglev-size PRIME]" },
	{ "unload", do_unload, "unload" },
	{ "attach", do_attach, "attach cgroup PATH | attach veth IFNAME" },
	{ "detach", do_detach, "detach cgroup PATH | detach veth IFNAME" },
	{ "service", do_service,
	  "service add VIP:PORT[/TCP|/UDP] BACKEND:PORT... [--maglev] [--affinity SECONDS] [--terminating BACKEND:PORT]...\n"
	  "       rota service del VIP:PORT[/PROTO]\n"
	  "       rota service list" },
	{ "backend", do_backend, "backend list" },
	{ "conntrack", do_conntrack, "conntrack list | conntrack gc" },
	{ "stats", do_stats, "stats" },
	{ NULL, NULL, NULL },
};

const struct cli_cmd *cli_find(const char *name)
{
	for (const struct cli_cmd *c = cli_cmds; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rota [--bpffs-dir DIR] [-o table|json] [-v] COMMAND ...\n\ncommands:\n");
	for (const struct cli_cmd *c = cli_cmds; c->name; c++)
		fprintf(f, "  rota %s\n", c->usage);
	fprintf(f, "\n--bpffs-dir DIR  pinned maps and programs (default %s)\n", "/sys/fs/bpf/rota");
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "rota: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nusage: rota %s\n", cmd->usage);
	va_end(ap);
	return 2;
}

int cli_parse_u32(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int cli_print_json(cJSON *json)
{
	char *s = cJSON_Print(json);

	cJSON_Delete(json);
	if (!s)
		return -ENOMEM;
	puts(s);
	free(s);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = {};
	const struct cli_cmd *cmd;
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int nargs = 0, ret;

	rota_log_init("rota", ROTA_LOG_WARN);
	if (!args)
		return 1;
	/* Global options may come before or after the command. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--bpffs-dir") || !strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "rota: %s needs a value\n", a);
				return 2;
			}
			if (a[1] == 'o' || !strcmp(a, "--output")) {
				if (strcmp(argv[i + 1], "json") && strcmp(argv[i + 1], "table")) {
					fprintf(stderr, "rota: output format \"%s\": must be table or json\n", argv[i + 1]);
					return 2;
				}
				cli.json = !strcmp(argv[i + 1], "json");
			} else {
				cli.bpffs_dir = argv[i + 1];
			}
			i++;
		} else if (!strncmp(a, "--bpffs-dir=", 12)) {
			cli.bpffs_dir = a + 12;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			rota_log_set_level(ROTA_LOG_DEBUG);
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			args[nargs++] = argv[i];
		}
	}
	if (!nargs) {
		usage(stderr);
		return 2;
	}
	cmd = cli_find(args[0]);
	if (!cmd) {
		fprintf(stderr, "rota: unknown command \"%s\"\n", args[0]);
		usage(stderr);
		return 2;
	}
	ret = cmd->run(&cli, nargs, args);
	free(args);
	return ret;
}
