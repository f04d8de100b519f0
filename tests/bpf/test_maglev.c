/* BPF unit tests of per-service Maglev tables: each service's table is
 * sized for its active backends (the smallest ladder prime >= 100 x N),
 * rebuilt at the next size when the count crosses a step, refused above the
 * datapath's cap with the maps left alone, and any miss in the datapath
 * (no table, an index past the table, an entry naming no active backend)
 * falls back to the random pick instead of refusing the flow. Real packets
 * through the loaded programs, tables read back from rota_maglev4. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "harness.h"
#include "tests.h"
#include "maglev.h"
#include "svc.h"
#include "pod_compat.skel.h"

#define MAX_NAMES 16

struct backends {
	char buf[MAX_NAMES][32];
	const char *names[MAX_NAMES];
	size_t n;
};

/* n backends 10.0.NET.1:8080 … 10.0.NET.n:8080. */
static void backends_make(struct backends *b, unsigned int net, size_t n)
{
	assert_true(n <= MAX_NAMES);
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(b->buf[i], sizeof(b->buf[i]), "10.0.%u.%zu:8080", net, i + 1);
		b->names[i] = b->buf[i];
	}
}

/* Index in names of the backend whose id is id, or -1. */
static int name_of_id(const char *vip, const struct backends *b, uint32_t id)
{
	for (size_t i = 0; i < b->n; i++)
		if (backend_id(vip, 80, IPPROTO_TCP, b->names[i]) == id)
			return (int)i;
	return -1;
}

/* The service's table must be exactly maglev_build's for its backends at
 * size m; returns the table (caller frees). */
static uint32_t *assert_table_built(uint32_t svc, const char *vip, const struct backends *b, uint32_t m)
{
	uint32_t *table = calloc(m, sizeof(*table)), *idx = calloc(m, sizeof(*idx)), ids[MAX_NAMES];

	assert_true(table && idx);
	for (size_t i = 0; i < b->n; i++)
		ids[i] = backend_id(vip, 80, IPPROTO_TCP, b->names[i]);
	maglev_read(svc, m, table);
	assert_int_equal(maglev_build(b->names, b->n, m, idx), 0);
	for (uint32_t j = 0; j < m; j++)
		if (table[j] != ids[idx[j]])
			fail_msg("%s: Maglev entry %u of %u holds %u, maglev_build says %u", vip, j, m, table[j],
				 ids[idx[j]]);
	free(idx);
	return table;
}

/* New flows from client (sports from sport0 on) each go to the backend
 * table[hash % m] names; returns how many distinct backends were used. */
static size_t assert_flows_follow_table(const char *client, uint16_t sport0, unsigned int flows,
					const char *vip, const struct backends *b, const uint32_t *table,
					uint32_t m)
{
	bool used[MAX_NAMES] = { false };
	size_t distinct = 0;

	for (uint16_t sport = sport0; sport < sport0 + flows; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);
		uint32_t h = flow_hash(ip4(client), ip4(vip), htons(sport), htons(80), IPPROTO_TCP);
		int want = name_of_id(vip, b, table[h % m]);
		char got[32];

		assert_true(want >= 0);
		run_chosen(&syn, TC_ACT_OK, got);
		if (strcmp(got, b->names[want]))
			fail_msg("%s flow from port %u: went to %s, table entry %u of %u says %s", vip, sport, got,
				 h % m, m, b->names[want]);
		if (!used[want])
			distinct++;
		used[want] = true;
	}
	return distinct;
}

void test_maglev_sized_per_service(void **state)
{
	const char *vip2 = "10.96.0.60", *vip10 = "10.96.0.61";
	struct backends two, ten;
	uint32_t svc2, svc10, *table, count[MAX_NAMES] = { 0 };
	double even;

	/* The ladder itself: the smallest prime >= 100 x N, 0 above the cap. */
	assert_int_equal(maglev_size_for(0, ROTA_MAGLEV_MAX_M), 0);
	assert_int_equal(maglev_size_for(1, ROTA_MAGLEV_MAX_M), 251);
	assert_int_equal(maglev_size_for(3, ROTA_MAGLEV_MAX_M), 509);
	assert_int_equal(maglev_size_for(10, ROTA_MAGLEV_MAX_M), 1021);
	assert_int_equal(maglev_size_for(11, ROTA_MAGLEV_MAX_M), 2039);
	assert_int_equal(maglev_size_for(1310, ROTA_MAGLEV_MAX_M), 131071);
	assert_int_equal(maglev_size_for(1311, ROTA_MAGLEV_MAX_M), 0);
	assert_int_equal(maglev_size_for(11, 1021), 0);

	backends_make(&two, 60, 2);
	backends_make(&ten, 61, 10);
	svc2 = svc_set(vip2, 80, IPPROTO_TCP, two.names, two.n, NULL, 0, true);
	svc10 = svc_set(vip10, 80, IPPROTO_TCP, ten.names, ten.n, NULL, 0, true);

	/* 2 backends: 251 entries; 10: 1021. Each exactly the builder's. */
	assert_int_equal(svc_maglev_m(vip2, 80, IPPROTO_TCP), 251);
	free(assert_table_built(svc2, vip2, &two, 251));
	assert_int_equal(svc_maglev_m(vip10, 80, IPPROTO_TCP), 1021);
	table = assert_table_built(svc10, vip10, &ten, 1021);

	/* Every backend owns its share of the table within 1 % of even. */
	for (uint32_t j = 0; j < 1021; j++) {
		int k = name_of_id(vip10, &ten, table[j]);

		assert_true(k >= 0);
		count[k]++;
	}
	even = 1021.0 / 10;
	for (size_t k = 0; k < ten.n; k++)
		if (count[k] < even * 0.99 || count[k] > even * 1.01)
			fail_msg("%s owns %u of 1021 entries; even is %.1f (±1 %%)", ten.names[k], count[k], even);

	/* And packets go where the table of this size says. */
	assert_int_equal(assert_flows_follow_table("10.0.0.61", 43000, 200, vip10, &ten, table, 1021), 10);
	free(table);
}

void test_maglev_grows_a_size(void **state)
{
	const char *vip = "10.96.0.62", *client = "10.0.0.62";
	struct backends eleven, ten;
	uint32_t svc, small_table, *table;

	backends_make(&eleven, 62, 11);
	ten = eleven;
	ten.n = 10;
	for (size_t i = 0; i < 10; i++)
		ten.names[i] = ten.buf[i];

	/* 10 active and the 11th terminating: 1021 entries, none for it. */
	svc = svc_set(vip, 80, IPPROTO_TCP, ten.names, 10, &eleven.names[10], 1, true);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 1021);
	table = assert_table_built(svc, vip, &ten, 1021);
	small_table = maglev_read(svc, 1021, table);
	assert_int_equal(assert_flows_follow_table(client, 44000, 200, vip, &ten, table, 1021), 10);
	free(table);

	/* The 11th turns active: 1,100 > 1021, so the table is rebuilt at
	 * 2039 under its own key and the 1021 one is gone. */
	svc_set(vip, 80, IPPROTO_TCP, eleven.names, 11, NULL, 0, true);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 2039);
	assert_false(maglev_has(svc, 1021));
	table = assert_table_built(svc, vip, &eleven, 2039);
	/* New flows use all 11, only them, where the new table says. */
	assert_int_equal(assert_flows_follow_table(client, 45000, 300, vip, &eleven, table, 2039), 11);
	free(table);

	/* Back to 10 active (one terminating): back to 1021, a new table. */
	svc_set(vip, 80, IPPROTO_TCP, &eleven.names[1], 10, &eleven.names[0], 1, true);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 1021);
	assert_false(maglev_has(svc, 2039));
	table = calloc(1021, sizeof(*table));
	assert_non_null(table);
	assert_int_not_equal(maglev_read(svc, 1021, table), small_table);
	for (uint16_t sport = 46000; sport < 46200; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);
		char got[32];

		run_chosen(&syn, TC_ACT_OK, got);
		assert_string_not_equal(got, eleven.names[0]);
	}
	free(table);
}

/* The cap as `rota load --maglev-size CAP` sets it on a loaded datapath. */
static void maglev_cap_set(uint32_t cap)
{
	struct rota_load_opts o = { .dir = env.dir, .maglev_m = cap };

	assert_int_equal(rota_dp_load(&o), 0);
	assert_int_equal(rota_dp_config_read(&env.dp), 0);
	assert_int_equal(env.dp.cfg.maglev_m, cap);
}

int maglev_cap_restore(void **state)
{
	if (env.dp.cfg.maglev_m != ROTA_MAGLEV_MAX_M)
		maglev_cap_set(ROTA_MAGLEV_MAX_M);
	return 0;
}

void test_maglev_over_cap_refused(void **state)
{
	const char *vip = "10.96.0.63", *client = "10.0.0.63";
	struct backends eleven;
	struct rota_service want = { .fe = { .addr = ip4(vip), .port = htons(80), .proto = IPPROTO_TCP },
				     .maglev = true };
	struct rota_svc_backend be[11];
	struct maps_snap before, after;
	char err[ROTA_ERR_LEN] = "";

	backends_make(&eleven, 63, 11);
	svc_set(vip, 80, IPPROTO_TCP, eleven.names, 10, NULL, 0, true);
	assert_int_equal(env.dp.cfg.maglev_m, ROTA_MAGLEV_MAX_M);	/* the default cap */
	maglev_cap_set(1021);

	/* 10 active fit in 1021; the 11th would need 2039: refused, with a
	 * message naming the count, the size and the cap, maps untouched. */
	memset(be, 0, sizeof(be));
	for (size_t i = 0; i < 11; i++)
		assert_int_equal(rota_parse_addr_port(eleven.names[i], "backend", &be[i].addr, &be[i].port, err), 0);
	want.backends = be;
	want.n_backends = 11;
	maps_snap(&before);
	assert_int_equal(rota_svc_upsert(&env.dp, &want, err), -E2BIG);
	maps_snap(&after);
	assert_maps_equal(&before, &after);
	if (!strstr(err, "11 active backends") || !strstr(err, "2039") || !strstr(err, "1021"))
		fail_msg("message does not name the count (11), the size (2039) and the cap (1021): %s", err);
	err[0] = 0;
	assert_int_equal(rota_svc_validate(&env.dp, &want, err), -E2BIG);
	assert_non_null(strstr(err, "2039"));

	/* Past the largest table there is: says so, whatever the cap. */
	{
		struct rota_svc_backend *many = calloc(1311, sizeof(*many));
		struct rota_service huge = want;

		assert_non_null(many);
		for (uint32_t i = 0; i < 1311; i++) {
			many[i].addr = htonl(0x0A400000u + i);	/* 10.64.x.y */
			many[i].port = htons(8080);
		}
		huge.backends = many;
		huge.n_backends = 1311;
		err[0] = 0;
		assert_int_equal(rota_svc_validate(&env.dp, &huge, err), -E2BIG);
		if (!strstr(err, "1311 active backends") || !strstr(err, "131100") || !strstr(err, "131071"))
			fail_msg("message does not name the count, the size needed and the largest: %s", err);
		free(many);
	}

	/* The service still works on its 1021-entry table. */
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 1021);
	for (uint16_t sport = 47000; sport < 47032; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);
		char got[32];

		run_chosen(&syn, TC_ACT_OK, got);
		assert_string_not_equal(got, eleven.names[10]);
	}

	/* Raising the cap in place lets it grow. */
	maglev_cap_set(ROTA_MAGLEV_MAX_M);
	svc_set(vip, 80, IPPROTO_TCP, eleven.names, 11, NULL, 0, true);
	assert_int_equal(svc_maglev_m(vip, 80, IPPROTO_TCP), 2039);
}

/* A table made by hand for rota_maglev4: chunks of ids (ids[j] for entry j,
 * n entries), the flags and sizes of librota's. */
static void maglev_put(uint32_t svc_id, uint32_t m, const uint32_t *ids, uint32_t n)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_INNER_MAP);
	struct rota_maglev_key key = { .svc_id = svc_id, .maglev_m = m };
	uint32_t chunks = (n + ROTA_MAGLEV_CHUNK - 1) / ROTA_MAGLEV_CHUNK;
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_maglev", 4, sizeof(struct rota_maglev_chunk), chunks, &o);

	assert_true(fd >= 0);
	for (uint32_t c = 0; c < chunks; c++) {
		struct rota_maglev_chunk v = { { 0 } };

		for (uint32_t j = 0; j < ROTA_MAGLEV_CHUNK && c * ROTA_MAGLEV_CHUNK + j < n; j++)
			v.backend_id[j] = ids[c * ROTA_MAGLEV_CHUNK + j];
		assert_int_equal(bpf_map_update_elem(fd, &c, &v, BPF_ANY), 0);
	}
	assert_int_equal(bpf_map_update_elem(env.dp.maglev_fd, &key, &fd, BPF_ANY), 0);
	close(fd);
}

/* flows new flows from client all get a backend among active[0..n_active),
 * none refused; returns how many went to active[0]. */
static unsigned int assert_served(const char *client, uint16_t sport0, unsigned int flows, const char *vip,
				  const char *const *active, size_t n_active)
{
	struct stats st;
	unsigned int first = 0;

	stats_snap(&st);
	for (uint16_t sport = sport0; sport < sport0 + flows; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);
		char got[32];
		size_t k;

		run_chosen(&syn, TC_ACT_OK, got);
		for (k = 0; k < n_active && strcmp(got, active[k]); k++)
			;
		if (k == n_active)
			fail_msg("%s flow from port %u went to %s, not an active backend", vip, sport, got);
		first += k == 0;
	}
	assert_int_equal(stat_delta(&st, ROTA_STAT_NO_BACKEND), 0);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_NEW), flows);
	return first;
}

void test_maglev_miss_falls_back(void **state)
{
	const char *vip = "10.96.0.64", *client = "10.0.0.64";
	static const char *const active[] = { "10.0.64.1:8080", "10.0.64.2:8080", "10.0.64.3:8080" };
	uint32_t svc, term_id, short_ids[64], a0, m;
	unsigned int hits = 0;

	svc = svc_set(vip, 80, IPPROTO_TCP, active, 3, B("10.0.64.9:8080"), true);
	m = svc_maglev_m(vip, 80, IPPROTO_TCP);
	assert_int_equal(m, 509);
	term_id = backend_id(vip, 80, IPPROTO_TCP, "10.0.64.9:8080");
	a0 = backend_id(vip, 80, IPPROTO_TCP, active[0]);

	/* No table at all. */
	{
		struct rota_maglev_key key = { .svc_id = svc, .maglev_m = m };

		assert_int_equal(bpf_map_delete_elem(env.dp.maglev_fd, &key), 0);
	}
	assert_served(client, 48000, 64, vip, active, 3);

	/* A table shorter than the master entry says (64 of 509 entries,
	 * all naming active[0]): indexes past it miss and pick at random,
	 * the others follow it. */
	for (int j = 0; j < 64; j++)
		short_ids[j] = a0;
	maglev_put(svc, m, short_ids, 64);
	for (uint16_t sport = 48100; sport < 48400; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);
		uint32_t h = flow_hash(ip4(client), ip4(vip), htons(sport), htons(80), IPPROTO_TCP);
		char got[32];

		run_chosen(&syn, TC_ACT_OK, got);
		if (h % m < 64) {
			assert_string_equal(got, active[0]);
			hits++;
		} else if (strcmp(got, active[0]) && strcmp(got, active[1]) && strcmp(got, active[2])) {
			fail_msg("flow from port %u (entry %u, past the table) went to %s", sport, h % m, got);
		}
	}
	assert_true(hits > 0);	/* ~300 x 64/509 flows landed in the short table */
	assert_served(client, 48400, 64, vip, active, 3);

	/* Entries naming the terminating backend, or a backend that does not
	 * exist: the random pick serves the flow, never them. */
	{
		uint32_t *ids = calloc(m, sizeof(*ids));

		assert_non_null(ids);
		for (uint32_t j = 0; j < m; j++)
			ids[j] = j % 2 ? term_id : 0x7ffffff0u;
		maglev_put(svc, m, ids, m);
		free(ids);
	}
	assert_served(client, 48500, 64, vip, active, 3);

	/* A table of another size than the master names is never used. */
	{
		struct rota_maglev_key key = { .svc_id = svc, .maglev_m = m };
		uint32_t ids[251];

		assert_int_equal(bpf_map_delete_elem(env.dp.maglev_fd, &key), 0);
		for (int j = 0; j < 251; j++)
			ids[j] = a0;
		maglev_put(svc, 251, ids, 251);
		assert_true(assert_served(client, 48600, 64, vip, active, 3) < 64);
		key.maglev_m = 251;
		assert_int_equal(bpf_map_delete_elem(env.dp.maglev_fd, &key), 0);
	}
}

void test_maglev_compat_object(void **state)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = env.dir);
	struct rota_load_opts lo = { .dir = env.dir };
	const char *vip = "10.96.0.65", *client = "10.0.0.65";
	struct backends four;
	struct rota_pod_compat *c;
	int prog;

	/* The object for kernels before 6.2, verified on this one against the
	 * same pinned maps, picks the same Maglev backends. */
	c = rota_pod_compat__open_opts(&oo);
	assert_non_null(c);
	assert_int_equal(rota_dp_size_maps(c->obj, &lo), 0);
	if (rota_pod_compat__load(c))
		fail_msg("load pod_compat.bpf.c: %s", strerror(errno));
	prog = bpf_program__fd(c->progs.rota_from_pod);

	backends_make(&four, 65, 4);
	svc_set(vip, 80, IPPROTO_TCP, four.names, four.n, NULL, 0, true);
	for (uint16_t sport = 49000; sport < 49064; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);
		char got[32], compat[32];

		run_chosen(&syn, TC_ACT_OK, got);
		ct_del(ip4(client), ip4(vip), sport, 80, IPPROTO_TCP, ROTA_CT_FWD);
		run_chosen_prog(prog, &syn, TC_ACT_OK, compat);
		assert_string_equal(compat, got);
	}
	rota_pod_compat__destroy(c);
}
