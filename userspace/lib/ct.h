/* Conntrack as userspace sees it: listing and sweeping expired entries with
 * the same lifetimes the datapath applies. */
#pragma once
#include <stddef.h>
#include "dp.h"

struct rota_ct_row {
	struct rota_ct_key key;
	struct rota_ct_entry val;
};

int rota_ct_list(const struct rota_dp *dp, struct rota_ct_row **rows, size_t *n);
/* Deletes expired entries; *removed counts them. */
int rota_ct_gc(const struct rota_dp *dp, size_t *removed);
/* Nanoseconds an entry lives after its last packet (as the datapath sees it). */
__u64 rota_ct_lifetime_ns(const struct rota_dp *dp, __u8 proto, __u8 state);
__u64 rota_monotonic_ns(void);
const char *rota_ct_state_name(__u8 state);
/* The state as `rota conntrack list` shows it: a TCP flow that saw one FIN
 * is "half-closed" (it keeps the established lifetime). */
const char *rota_ct_entry_state(const struct rota_ct_entry *v);
