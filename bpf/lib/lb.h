/* Service lookup and backend choice (random, Maglev, ClientIP affinity),
 * shared by the socket and tc paths. Every step is one hash or array
 * lookup: the cost does not depend on how many services or backends exist. */
#pragma once
#include "lib/maps.h"

/* Master entry of the frontend addr:port/proto, or NULL. */
static __always_inline struct rota_svc_entry *svc_lookup(__be32 addr, __be16 port, __u8 proto)
{
	struct rota_svc_key key = {
		.addr = addr, .port = port, .proto = proto,
		.scope = ROTA_SCOPE_ALL, .slot = 0,
	};

	return bpf_map_lookup_elem(&rota_svc4, &key);
}

/* An active backend of the service, or NULL (gone, terminating, reused). */
static __always_inline struct rota_backend *backend_active(__u32 id, __u32 svc_id)
{
	struct rota_backend *b = bpf_map_lookup_elem(&rota_backends4, &id);

	if (!b || b->state != ROTA_BACKEND_ACTIVE || b->svc_id != svc_id)
		return NULL;
	return b;
}

/* The backend id the service's Maglev table holds at hash % M, or 0 (no
 * table, no such entry) so that the caller picks at random instead.
 *
 * M comes from this same master entry and the table is looked up by
 * (svc_id, M), so the modulo always uses the size of the table it indexes:
 * librota publishes a table of a new size under a new key before the master
 * entry names it, and removes the old one only after. Should the table ever
 * be shorter than M says, the lookup is still safe: inner arrays are
 * BPF_F_INNER_MAP, so the chunk index is checked against the table actually
 * found, at run time, and a miss returns NULL. A table of the same size is
 * rewritten in place, so an id read meanwhile may be old, new or torn: the
 * caller takes it only if it names an active backend of this service. */
static __always_inline __u32 maglev_pick(const struct rota_svc_entry *svc, __u32 hash)
{
	struct rota_maglev_key key = { .svc_id = svc->svc_id, .maglev_m = svc->maglev_m };
	struct rota_maglev_chunk *chunk;
	__u32 idx, pos;
	void *table;

	if (!key.maglev_m)
		return 0;
	table = bpf_map_lookup_elem(&rota_maglev4, &key);
	if (!table)
		return 0;
	idx = hash % key.maglev_m;
	pos = idx / ROTA_MAGLEV_CHUNK;
	chunk = bpf_map_lookup_elem(table, &pos);
	if (!chunk)
		return 0;
	return chunk->backend_id[idx % ROTA_MAGLEV_CHUNK];
}

static __always_inline __u32 random_pick(__be32 addr, __be16 port, __u8 proto,
					 const struct rota_svc_entry *svc)
{
	struct rota_svc_key key = {
		.addr = addr, .port = port, .proto = proto, .scope = ROTA_SCOPE_ALL,
	};
	struct rota_svc_entry *slot;

	key.slot = bpf_get_prandom_u32() % svc->count + 1;
	slot = bpf_map_lookup_elem(&rota_svc4, &key);
	return slot ? slot->backend_id : 0;
}

/* Affinity: the backend this client used within the timeout, if it is still
 * an active backend of the service. Refreshes the entry's clock. */
static __always_inline __u32 affinity_get(const struct rota_svc_entry *svc, __u64 client,
					  __u8 kind, __u64 now)
{
	struct rota_affinity_key key = { .client = client, .svc_id = svc->svc_id, .kind = kind };
	struct rota_affinity_val *v = bpf_map_lookup_elem(&rota_affinity4, &key);

	if (!v)
		return 0;
	if (now - v->last_used_ns > (__u64)svc->affinity_timeout * NSEC_PER_SEC)
		return 0;
	if (!backend_active(v->backend_id, svc->svc_id))
		return 0;
	v->last_used_ns = now;
	return v->backend_id;
}

static __always_inline void affinity_set(const struct rota_svc_entry *svc, __u64 client,
					 __u8 kind, __u32 backend_id, __u64 now)
{
	struct rota_affinity_key key = { .client = client, .svc_id = svc->svc_id, .kind = kind };
	struct rota_affinity_val v = { .last_used_ns = now, .backend_id = backend_id };

	bpf_map_update_elem(&rota_affinity4, &key, &v, BPF_ANY);
}

/* Chooses the backend for a new flow: affinity first, then the Maglev table
 * (indexed by hash) or a random active slot. Returns NULL when the service
 * has no usable backend, which callers turn into a rejection. */
static __always_inline struct rota_backend *
lb_select(__be32 addr, __be16 port, __u8 proto, const struct rota_svc_entry *svc,
	  __u32 hash, __u64 client, __u8 client_kind, __u32 *backend_id)
{
	__u64 now = 0;
	__u32 id = 0;
	struct rota_backend *b;

	if (svc->count == 0)
		return NULL;
	if (svc->flags & ROTA_SVC_F_AFFINITY) {
		now = rota_now_ns();
		id = affinity_get(svc, client, client_kind, now);
		if (id) {
			stat_inc(ROTA_STAT_AFFINITY_HIT, 0);
			*backend_id = id;
			return bpf_map_lookup_elem(&rota_backends4, &id);
		}
	}
	/* A Maglev miss (no table, an index past the table, an entry naming
	 * no active backend of the service) falls back to the random pick,
	 * never to a rejection. */
	b = NULL;
	if (svc->flags & ROTA_SVC_F_MAGLEV) {
		id = maglev_pick(svc, hash);
		if (id)
			b = backend_active(id, svc->svc_id);
	}
	if (!b) {
		id = random_pick(addr, port, proto, svc);
		b = backend_active(id, svc->svc_id);
	}
	if (!b)
		return NULL;
	if (svc->flags & ROTA_SVC_F_AFFINITY)
		affinity_set(svc, client, client_kind, id, now);
	*backend_id = id;
	return b;
}
