/* Every rota map, declared once and pinned by name so that all programs,
 * the CLI and bpftool share them. Sizes here are defaults; the loader
 * resizes before creation. Layouts come from include/rota/maps.h. */
#pragma once
#include "lib/common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ROTA_DEFAULT_SVC_ENTRIES);
	__type(key, struct rota_svc_key);
	__type(value, struct rota_svc_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_svc4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ROTA_DEFAULT_BACKEND_ENTRIES);
	__type(key, __u32);
	__type(value, struct rota_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_backends4 SEC(".maps");

/* Inner template: a Maglev table, chunks of backend ids (struct
 * rota_maglev_chunk). BPF_F_INNER_MAP lets tables of every size share the
 * outer map: the verifier then checks a lookup's index against the table it
 * really got, at run time, instead of against this template's max_entries.
 * librota creates every table with the same flag, key and value size. */
struct rota_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, (ROTA_MAGLEV_MIN_M + ROTA_MAGLEV_CHUNK - 1) / ROTA_MAGLEV_CHUNK);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct rota_maglev_chunk));
};

/* (svc_id, size) → Maglev table. A new size goes in under its own key; the
 * same size is rewritten in place, and whatever id a packet reads meanwhile
 * is checked to be an active backend of the service (lb.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, ROTA_DEFAULT_MAGLEV_ENTRIES);
	__type(key, struct rota_maglev_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct rota_maglev_inner);
} rota_maglev4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ROTA_DEFAULT_CT_ENTRIES);
	__type(key, struct rota_ct_key);
	__type(value, struct rota_ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ROTA_DEFAULT_AFFINITY_ENTRIES);
	__type(key, struct rota_affinity_key);
	__type(value, struct rota_affinity_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_affinity4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ROTA_DEFAULT_SK_ENTRIES);
	__type(key, struct rota_sk_rev_key);
	__type(value, struct rota_sk_rev_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_sk_rev4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ROTA_DEFAULT_SK_ENTRIES);
	__type(key, struct rota_sk_aff_key);
	__type(value, struct rota_sk_aff_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_sk_aff4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ROTA_FRAG_ENTRIES);
	__type(key, struct rota_frag_key);
	__type(value, struct rota_frag_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_frag4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ROTA_ENDPOINT_ENTRIES);
	__type(key, __be32);
	__type(value, struct rota_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_endpoints4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rota_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ROTA_STAT_MAX);
	__type(key, __u32);
	__type(value, struct rota_stat_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rota_stats SEC(".maps");

/* Counts one event; bytes are the packet length (0 for socket events). */
static __always_inline void stat_inc(__u32 reason, __u32 bytes)
{
	struct rota_stat_val *v = bpf_map_lookup_elem(&rota_stats, &reason);

	if (v) {
		v->packets++;
		v->bytes += bytes;
	}
}
