/* Tests of librota's upsert against the real pinned maps: a change writes
 * only what differs, so an endpoint change at any number of services costs
 * a handful of map writes and never reshuffles the backends it keeps. */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "harness.h"
#include "tests.h"
#include "svc.h"

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

	/* The active set changes within a size: a new table of that size is
	 * swapped in under the same key. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.41.1:80", "10.0.41.4:80"), NULL, 0, true);
	assert_int_not_equal(maglev_table_id(svc, 251), table);
	table = maglev_table_id(svc, 251);

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
