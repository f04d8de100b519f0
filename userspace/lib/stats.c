/* Reads the per-CPU counters the programs keep and adds them up. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "stats.h"

static const char *const stat_names[ROTA_STAT_MAX] = {
	[ROTA_STAT_PASS_NOT_SERVICE] = "pass_not_service",
	[ROTA_STAT_PASS_NOT_IP] = "pass_not_ip",
	[ROTA_STAT_PASS_MALFORMED] = "pass_malformed",
	[ROTA_STAT_PASS_FRAGMENT] = "pass_unknown_fragment",
	[ROTA_STAT_CT_NEW] = "ct_new",
	[ROTA_STAT_CT_HIT] = "ct_hit",
	[ROTA_STAT_XLATE_FWD] = "translated_forward",
	[ROTA_STAT_XLATE_REPLY] = "translated_reply",
	[ROTA_STAT_XLATE_ICMP] = "translated_icmp_error",
	[ROTA_STAT_HAIRPIN] = "hairpin",
	[ROTA_STAT_NO_BACKEND] = "rejected_no_backend",
	[ROTA_STAT_DROP_ERROR] = "dropped_rewrite_error",
	[ROTA_STAT_SOCK_XLATE] = "socket_translated",
	[ROTA_STAT_SOCK_REV] = "socket_reverse",
	[ROTA_STAT_AFFINITY_HIT] = "affinity_hit",
};

const char *rota_stat_name(unsigned int reason)
{
	return reason < ROTA_STAT_MAX && stat_names[reason] ? stat_names[reason] : "unknown";
}

int rota_stats_read(const struct rota_dp *dp, struct rota_stat_val out[ROTA_STAT_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct rota_stat_val *percpu;

	if (ncpu <= 0)
		return -EINVAL;
	percpu = calloc((size_t)ncpu, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	memset(out, 0, sizeof(*out) * ROTA_STAT_MAX);
	for (__u32 r = 0; r < ROTA_STAT_MAX; r++) {
		if (bpf_map_lookup_elem(dp->stats_fd, &r, percpu)) {
			int err = -errno;

			free(percpu);
			return err;
		}
		for (int c = 0; c < ncpu; c++) {
			out[r].packets += percpu[c].packets;
			out[r].bytes += percpu[c].bytes;
		}
	}
	free(percpu);
	return 0;
}
