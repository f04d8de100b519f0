/* rota conntrack list/gc and rota stats: what the datapath is doing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "cli.h"
#include "addr.h"
#include "ct.h"
#include "stats.h"

static int conntrack_list(struct cli *cli, const struct rota_dp *dp)
{
	struct rota_ct_row *rows;
	__u64 now = rota_monotonic_ns();
	cJSON *arr = NULL;
	size_t n;
	int err = rota_ct_list(dp, &rows, &n);

	if (err) {
		fprintf(stderr, "rota: read conntrack: %s\n", strerror(-err));
		return 1;
	}
	if (cli->json)
		arr = cJSON_CreateArray();
	else
		printf("%-5s %-5s %-22s %-22s %-22s %-11s %8s %10s %6s\n", "PROTO", "DIR", "SOURCE",
		       "DESTINATION", "NAT", "STATE", "PACKETS", "BYTES", "IDLE");
	for (size_t i = 0; i < n; i++) {
		const struct rota_ct_key *k = &rows[i].key;
		const struct rota_ct_entry *v = &rows[i].val;
		char s[ROTA_ADDR_STR_LEN], d[ROTA_ADDR_STR_LEN], nat[ROTA_ADDR_STR_LEN];
		const char *dir = k->dir == ROTA_CT_FWD ? "fwd" : "reply";
		__u64 idle = now > v->last_seen_ns ? (now - v->last_seen_ns) / 1000000000ULL : 0;
		bool expired = now > v->last_seen_ns &&
			       now - v->last_seen_ns > rota_ct_lifetime_ns(dp, k->proto, v->state);

		rota_fmt_addr_port(s, k->saddr, k->sport);
		rota_fmt_addr_port(d, k->daddr, k->dport);
		rota_fmt_addr_port(nat, v->nat_addr, v->nat_port);
		if (arr) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "protocol", rota_proto_name(k->proto));
			cJSON_AddStringToObject(o, "direction", dir);
			cJSON_AddStringToObject(o, "source", s);
			cJSON_AddStringToObject(o, "destination", d);
			cJSON_AddStringToObject(o, "nat", nat);
			cJSON_AddStringToObject(o, "state", rota_ct_entry_state(v));
			cJSON_AddBoolToObject(o, "expired", expired);
			cJSON_AddBoolToObject(o, "hairpin", v->flags & ROTA_CT_F_HAIRPIN);
			cJSON_AddNumberToObject(o, "packets", (double)v->packets);
			cJSON_AddNumberToObject(o, "bytes", (double)v->bytes);
			cJSON_AddNumberToObject(o, "idleSeconds", (double)idle);
			cJSON_AddNumberToObject(o, "backendId", v->backend_id);
			cJSON_AddNumberToObject(o, "serviceId", v->svc_id);
			cJSON_AddItemToArray(arr, o);
		} else {
			printf("%-5s %-5s %-22s %-22s %-22s %-11s %8llu %10llu %5llus\n", rota_proto_name(k->proto),
			       dir, s, d, nat, expired ? "expired" : rota_ct_entry_state(v),
			       (unsigned long long)v->packets, (unsigned long long)v->bytes,
			       (unsigned long long)idle);
		}
	}
	free(rows);
	return arr && cli_print_json(arr) ? 1 : 0;
}

int do_conntrack(struct cli *cli, int argc, char **argv)
{
	const struct cli_cmd *cmd = cli_find("conntrack");
	struct rota_dp dp;
	int ret = 0;

	if (argc != 2 || (strcmp(argv[1], "list") && strcmp(argv[1], "gc")))
		return cli_usage_error(cmd, "expected \"conntrack list\" or \"conntrack gc\"");
	if (rota_dp_open(&dp, cli->bpffs_dir))
		return 1;
	if (!strcmp(argv[1], "list")) {
		ret = conntrack_list(cli, &dp);
	} else {
		size_t removed;
		int err = rota_ct_gc(&dp, &removed);

		if (err) {
			fprintf(stderr, "rota: conntrack gc: %s\n", strerror(-err));
			ret = 1;
		} else if (!cli->json) {
			printf("removed %zu expired conntrack entries\n", removed);
		} else {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddNumberToObject(o, "removed", (double)removed);
			ret = cli_print_json(o) ? 1 : 0;
		}
	}
	rota_dp_close(&dp);
	return ret;
}

int do_stats(struct cli *cli, int argc, char **argv)
{
	struct rota_stat_val st[ROTA_STAT_MAX];
	struct rota_dp dp;
	int err;

	if (argc != 1)
		return cli_usage_error(cli_find("stats"), "stats takes no arguments");
	if (rota_dp_open(&dp, cli->bpffs_dir))
		return 1;
	err = rota_stats_read(&dp, st);
	rota_dp_close(&dp);
	if (err) {
		fprintf(stderr, "rota: read %s: %s\n", ROTA_MAP_STATS, strerror(-err));
		return 1;
	}
	if (cli->json) {
		cJSON *o = cJSON_CreateObject();

		for (unsigned int r = 0; r < ROTA_STAT_MAX; r++) {
			cJSON *v = cJSON_CreateObject();

			cJSON_AddNumberToObject(v, "packets", (double)st[r].packets);
			cJSON_AddNumberToObject(v, "bytes", (double)st[r].bytes);
			cJSON_AddItemToObject(o, rota_stat_name(r), v);
		}
		return cli_print_json(o) ? 1 : 0;
	}
	printf("%-24s %12s %14s\n", "COUNTER", "PACKETS", "BYTES");
	for (unsigned int r = 0; r < ROTA_STAT_MAX; r++)
		printf("%-24s %12llu %14llu\n", rota_stat_name(r), (unsigned long long)st[r].packets,
		       (unsigned long long)st[r].bytes);
	return 0;
}
