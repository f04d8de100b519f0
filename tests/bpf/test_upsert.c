/* Tests of librota's upsert against the real pinned maps: a change writes
 * only what differs, so an endpoint change at any number of services costs
 * a handful of map writes and never reshuffles the backends it keeps. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "harness.h"
#include "tests.h"
#include "svc.h"
#include "maglev.h"

static void slot_ids(const char *vip, uint16_t port, uint32_t *ids, size_t n)
{
	struct rota_frontend fe = { .addr = ip4(vip), .port = htons(port), .proto = IPPROTO_TCP };
	struct rota_service s;

	assert_int_equal(rota_svc_get(&env.dp, &fe, &s), 0);
	assert_int_equal(s.n_backends, n);
	for (size_t i = 0; i < n; i++)
		ids[i] = s.backends[i].id;
	rota_svc_free(&s);
}

void test_upsert_keeps_slots(void **state)
{
	static const char *const all[] = {
		"10.0.40.1:80", "10.0.40.2:80", "10.0.40.3:80", "10.0.40.4:80", "10.0.40.5:80",
		"10.0.40.6:80", "10.0.40.7:80", "10.0.40.8:80", "10.0.40.9:80", "10.0.40.10:80",
	};
	const char *rest[9], *more[10];
	uint32_t before[10], after[10], next_id;
	struct rota_config cfg;
	size_t n = 0;

	svc_set("10.96.0.40", 80, IPPROTO_TCP, all, 10, NULL, 0, false);
	slot_ids("10.96.0.40", 80, before, 10);

	/* One backend leaves: the last one moves into its slot, every other
	 * backend keeps its slot and id. */
	for (size_t i = 0; i < 10; i++)
		if (i != 2)
			rest[n++] = all[i];
	svc_set("10.96.0.40", 80, IPPROTO_TCP, rest, n, NULL, 0, false);
	slot_ids("10.96.0.40", 80, after, 9);
	for (size_t i = 0; i < 9; i++)
		assert_int_equal(after[i], i == 2 ? before[9] : before[i]);

	/* One joins: it takes the free slot at the end, nobody moves. */
	memcpy(more, rest, sizeof(rest));
	more[9] = "10.0.40.11:80";
	svc_set("10.96.0.40", 80, IPPROTO_TCP, more, 10, NULL, 0, false);
	slot_ids("10.96.0.40", 80, before, 10);
	assert_memory_equal(before, after, 9 * sizeof(after[0]));

	/* The same service again: no id allocated, nothing moves. */
	assert_int_equal(bpf_map_lookup_elem(env.dp.config_fd, &(__u32){ 0 }, &cfg), 0);
	next_id = cfg.next_backend_id;
	svc_set("10.96.0.40", 80, IPPROTO_TCP, more, 10, NULL, 0, false);
	assert_int_equal(bpf_map_lookup_elem(env.dp.config_fd, &(__u32){ 0 }, &cfg), 0);
	assert_int_equal(cfg.next_backend_id, next_id);
	slot_ids("10.96.0.40", 80, after, 10);
	assert_memory_equal(before, after, sizeof(after));
}

/* Id of the Maglev table (inner map) of m entries the service has. */
static uint32_t maglev_table_id(uint32_t svc_id, uint32_t m)
{
	struct rota_maglev_key key = { .svc_id = svc_id, .maglev_m = m };
	uint32_t inner_id = 0;

	assert_int_equal(bpf_map_lookup_elem(env.dp.maglev_fd, &key, &inner_id), 0);
	return inner_id;
}

void test_upsert_maglev_table_kept(void **state)
{
	const char *vip = "10.96.0.41";
	uint32_t svc = svc_set(vip, 80, IPPROTO_TCP, B("10.0.41.1:80", "10.0.41.2:80"), NULL, 0, true);
	uint32_t table, table2;

	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 251);
	table = maglev_table_id(svc, 251);

	/* A backend starts terminating or the set is written again: the active
	 * set is the same, and so is the table. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.41.2:80", "10.0.41.1:80"), NULL, 0, true);
	assert_int_equal(maglev_table_id(svc, 251), table);
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.41.1:80", "10.0.41.2:80"), B("10.0.41.3:80"), true);
	assert_int_equal(maglev_table_id(svc, 251), table);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 251);

	/* The active set changes within a size: the table of that size is
	 * rewritten in place (no map-of-maps update, whose RCU wait would
	 * slow every endpoint change), and holds the new set. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.41.1:80", "10.0.41.4:80"), NULL, 0, true);
	assert_int_equal(maglev_table_id(svc, 251), table);
	{
		uint32_t got[251], idx[251], ids[2] = { backend_id(vip, 80, IPPROTO_TCP, "10.0.41.1:80"),
						       backend_id(vip, 80, IPPROTO_TCP, "10.0.41.4:80") };
		const char *names[2] = { "10.0.41.1:80", "10.0.41.4:80" };

		assert_int_equal(maglev_read(svc, 251, got), table);
		assert_int_equal(maglev_build(names, 2, 251, idx), 0);
		for (int j = 0; j < 251; j++)
			if (got[j] != ids[idx[j]])
				fail_msg("entry %d holds %u, the new set's table says %u", j, got[j], ids[idx[j]]);
	}

	/* It grows past a size: a table of the next size, the old one gone. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.41.1:80", "10.0.41.2:80", "10.0.41.4:80"), NULL, 0, true);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 509);
	table2 = maglev_table_id(svc, 509);
	assert_int_not_equal(table2, table);
	assert_false(maglev_has(svc, 251));

	/* Random choice, then Maglev again with no active backend: no table. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.41.1:80", "10.0.41.2:80", "10.0.41.4:80"), NULL, 0, false);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 0);
	assert_false(maglev_has(svc, 509));
	svc_set(vip, 80, IPPROTO_TCP, NULL, 0, B("10.0.41.1:80"), true);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 0);
	assert_false(maglev_has(svc, 251) || maglev_has(svc, 509));
}

/* Fills rota_svc4 with placeholder entries (frontend 192.0.2.1:9/UDP, one
 * slot each) until only `room` entries are free; returns how many went in. */
static __u32 svc_map_fill(__u32 room)
{
	struct rota_svc_key k = { .addr = ip4("192.0.2.1"), .port = htons(9), .proto = IPPROTO_UDP };
	struct rota_svc_key key, next, *keys;
	struct rota_svc_entry *vals;
	void *prev = NULL;
	__u32 used = 0, n;
	LIBBPF_OPTS(bpf_map_batch_opts, o);

	while (bpf_map_get_next_key(env.dp.svc_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		used++;
	}
	n = env.dp.svc_max - used - room;
	keys = calloc(n, sizeof(*keys));
	vals = calloc(n, sizeof(*vals));
	assert_non_null(keys);
	assert_non_null(vals);
	for (__u32 i = 0; i < n; i++) {
		keys[i] = k;
		keys[i].slot = i + 1;
	}
	assert_int_equal(bpf_map_update_batch(env.dp.svc_fd, keys, vals, &n, &o), 0);
	free(keys);
	free(vals);
	return n;
}

static void svc_map_unfill(__u32 n)
{
	struct rota_svc_key *keys = calloc(n, sizeof(*keys));
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	__u32 count = n;

	assert_non_null(keys);
	for (__u32 i = 0; i < n; i++)
		keys[i] = (struct rota_svc_key){ .addr = ip4("192.0.2.1"), .port = htons(9), .proto = IPPROTO_UDP,
						 .slot = i + 1 };
	assert_int_equal(bpf_map_delete_batch(env.dp.svc_fd, keys, &count, &o), 0);
	assert_int_equal(count, n);
	free(keys);
}

/* A map running out of room half-way through an upsert (its backends or
 * slots are written in batches) leaves the maps as they were: a new service
 * does not appear, an existing one keeps its backends and keeps serving. */
void test_upsert_full_map_rolls_back(void **state)
{
	static const char *const two[] = { "10.0.71.1:80", "10.0.71.2:80" };
	struct rota_svc_backend be[6];
	struct rota_service want = { .fe = { .addr = ip4("10.96.0.72"), .port = htons(80), .proto = IPPROTO_TCP },
				     .backends = be };
	struct rota_frontend old_fe = { .addr = ip4("10.96.0.71"), .port = htons(80), .proto = IPPROTO_TCP };
	struct rota_service got;
	struct maps_snap before, after;
	char err[ROTA_ERR_LEN] = "", name[32];
	__u32 filled;

	svc_set("10.96.0.71", 80, IPPROTO_TCP, two, 2, NULL, 0, false);
	for (int i = 0; i < 6; i++)
		be[i] = (struct rota_svc_backend){ .addr = htonl(0x0a004800 + i + 1), .port = htons(80) };
	filled = svc_map_fill(3);

	/* A new service of 5 backends needs 6 entries; 3 are free. */
	want.n_backends = 5;
	maps_snap(&before);
	assert_int_equal(rota_svc_upsert(&env.dp, &want, err), -E2BIG);
	maps_snap(&after);
	assert_maps_equal(&before, &after);
	if (!strstr(err, ROTA_MAP_SVC4 " is full") || !strstr(err, "maps unchanged"))
		fail_msg("message does not say that rota_svc4 is full and the maps are unchanged: %s", err);

	/* The existing service growing from 2 to 6 backends needs 4 more. */
	want.fe = old_fe;
	want.n_backends = 6;
	maps_snap(&before);
	assert_int_equal(rota_svc_upsert(&env.dp, &want, err), -E2BIG);
	maps_snap(&after);
	assert_maps_equal(&before, &after);
	assert_int_equal(rota_svc_get(&env.dp, &old_fe, &got), 0);
	assert_int_equal(got.n_backends, 2);
	rota_svc_free(&got);
	{
		struct pkt syn = pkt_tcp("10.0.0.71", 40071, "10.96.0.71", 80, TCP_SYN);

		run_chosen(&syn, TC_ACT_OK, name);
		if (strcmp(name, two[0]) && strcmp(name, two[1]))
			fail_msg("a new flow went to %s, not one of the service's two backends", name);
	}

	/* With room again, the same upsert goes through. */
	svc_map_unfill(filled);
	assert_int_equal(rota_svc_upsert(&env.dp, &want, err), 0);
	assert_int_equal(rota_svc_get(&env.dp, &old_fe, &got), 0);
	assert_int_equal(got.n_backends, 6);
	rota_svc_free(&got);
}
