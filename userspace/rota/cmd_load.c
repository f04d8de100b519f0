/* rota load / unload / attach / detach: putting the datapath in place. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "dp.h"
#include "log.h"

int do_load(struct cli *cli, int argc, char **argv)
{
	struct rota_load_opts o = { .dir = rota_dir_or_default(cli->bpffs_dir) };
	const struct cli_cmd *cmd = cli_find("load");

	for (int i = 1; i < argc; i++) {
		unsigned int *dst = NULL;
		unsigned long min = 16, max = 1UL << 26;

		if (!strcmp(argv[i], "--services"))
			dst = &o.svc_entries;
		else if (!strcmp(argv[i], "--backends"))
			dst = &o.backend_entries;
		else if (!strcmp(argv[i], "--conntrack"))
			dst = &o.ct_entries;
		else if (!strcmp(argv[i], "--maglev-size"))	/* the cap on each service's table */
			dst = &o.maglev_m, min = ROTA_MAGLEV_MIN_M, max = ROTA_MAGLEV_MAX_M;
		else
			return cli_usage_error(cmd, "unknown option \"%s\"", argv[i]);
		if (i + 1 >= argc || cli_parse_u32(argv[i + 1], min, max, dst))
			return cli_usage_error(cmd, "%s \"%s\": must be a number from %lu to %lu", argv[i],
					       i + 1 < argc ? argv[i + 1] : "", min, max);
		i++;
	}
	if (rota_dp_load(&o))
		return 1;
	if (!cli->json)
		printf("loaded rota datapath in %s\n", o.dir);
	return 0;
}

int do_unload(struct cli *cli, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage_error(cli_find("unload"), "unexpected argument \"%s\"", argv[1]);
	return rota_dp_unload(rota_dir_or_default(cli->bpffs_dir)) ? 1 : 0;
}

/* attach|detach cgroup PATH | veth IFNAME */
static int attach_cmd(struct cli *cli, int argc, char **argv, bool attach)
{
	const struct cli_cmd *cmd = cli_find(argv[0]);
	const char *dir = rota_dir_or_default(cli->bpffs_dir);
	int err;

	if (argc != 3)
		return cli_usage_error(cmd, "expected a target kind and a target");
	if (!strcmp(argv[1], "cgroup"))
		err = attach ? rota_dp_attach_cgroup(dir, argv[2]) : rota_dp_detach_cgroup(dir, argv[2]);
	else if (!strcmp(argv[1], "veth"))
		err = attach ? rota_dp_attach_veth(dir, argv[2]) : rota_dp_detach_veth(dir, argv[2]);
	else
		return cli_usage_error(cmd, "target kind \"%s\": must be cgroup or veth", argv[1]);
	return err ? 1 : 0;
}

int do_attach(struct cli *cli, int argc, char **argv)
{
	return attach_cmd(cli, argc, argv, true);
}

int do_detach(struct cli *cli, int argc, char **argv)
{
	return attach_cmd(cli, argc, argv, false);
}
