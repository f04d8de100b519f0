/* Conntrack listing and garbage collection over rota_ct4. The datapath
 * already ignores expired entries; gc gives their room back before the
 * LRU has to. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "ct.h"

__u64 rota_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);	/* the datapath's clock (rota_now_ns) */
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

__u64 rota_ct_lifetime_ns(const struct rota_dp *dp, __u8 proto, __u8 state)
{
	__u64 s;

	if (proto != IPPROTO_TCP)
		s = dp->cfg.udp_timeout;
	else if (state == ROTA_CT_ESTABLISHED)
		s = dp->cfg.tcp_established_timeout;
	else if (state == ROTA_CT_CLOSING)
		s = dp->cfg.tcp_close_timeout;
	else
		s = dp->cfg.tcp_syn_timeout;
	return s * 1000000000ULL;
}

const char *rota_ct_state_name(__u8 state)
{
	switch (state) {
	case ROTA_CT_NEW: return "new";
	case ROTA_CT_ESTABLISHED: return "established";
	case ROTA_CT_CLOSING: return "closing";
	default: return "?";
	}
}

const char *rota_ct_entry_state(const struct rota_ct_entry *v)
{
	if (v->state != ROTA_CT_CLOSING && (v->flags & (ROTA_CT_F_FIN | ROTA_CT_F_PEER_FIN)))
		return "half-closed";
	return rota_ct_state_name(v->state);
}

int rota_ct_list(const struct rota_dp *dp, struct rota_ct_row **rows, size_t *n)
{
	struct rota_ct_key key, next, *prev = NULL;
	struct rota_ct_row *list = NULL;
	size_t len = 0, cap = 0;

	while (bpf_map_get_next_key(dp->ct_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (len == cap) {
			struct rota_ct_row *l = realloc(list, (cap = cap ? cap * 2 : 256) * sizeof(*l));

			if (!l) {
				free(list);
				return -ENOMEM;
			}
			list = l;
		}
		if (bpf_map_lookup_elem(dp->ct_fd, &key, &list[len].val))
			continue;	/* evicted while we walked */
		list[len++].key = key;
	}
	*rows = list;
	*n = len;
	return 0;
}

int rota_ct_gc(const struct rota_dp *dp, size_t *removed)
{
	struct rota_ct_row *rows;
	__u64 now = rota_monotonic_ns();
	size_t n;
	int err;

	*removed = 0;
	err = rota_ct_list(dp, &rows, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		const struct rota_ct_entry *v = &rows[i].val;

		if (now > v->last_seen_ns &&
		    now - v->last_seen_ns > rota_ct_lifetime_ns(dp, rows[i].key.proto, v->state) &&
		    bpf_map_delete_elem(dp->ct_fd, &rows[i].key) == 0)
			(*removed)++;
	}
	free(rows);
	return 0;
}
