/* Harness of the BPF unit tests (see harness.h): a private datapath in a
 * temporary bpffs directory, removed however the run ends. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "harness.h"
#include "svc.h"
#include "log.h"

struct env env = { .from_pod = -1, .to_pod = -1 };
static volatile sig_atomic_t loaded;	/* env.dir may hold pins */
static bool dp_open;			/* env.dp holds open map fds */

static void env_cleanup(void)
{
	if (!loaded)
		return;
	loaded = 0;
	if (env.from_pod >= 0)
		close(env.from_pod);
	if (env.to_pod >= 0)
		close(env.to_pod);
	env.from_pod = env.to_pod = -1;
	if (dp_open)
		rota_dp_close(&env.dp);
	dp_open = false;
	rota_dp_unload(env.dir);
}

static void on_signal(int sig)
{
	env_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

void env_require(void)
{
	struct statfs st;

	if (geteuid() != 0) {
		fprintf(stderr, "test_bpf_datapath: needs root (BPF_PROG_TEST_RUN, bpffs); not run\n");
		exit(77);
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) != 1) {
		fprintf(stderr, "test_bpf_datapath: this kernel cannot load tc BPF programs; not run\n");
		exit(77);
	}
	/* rota_bpffs_prepare() mounts /sys/fs/bpf if nothing is there yet. */
	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type != BPF_FS_MAGIC)
		fprintf(stderr, "test_bpf_datapath: /sys/fs/bpf is not a bpffs; librota will mount one\n");
}

int env_setup(void **state)
{
	struct rota_load_opts o = { 0 };
	char path[256];
	int err;

	rota_log_init("test_bpf_datapath", ROTA_LOG_WARN);
	snprintf(env.dir, sizeof(env.dir), "/sys/fs/bpf/rota-test-bpf-%d", (int)getpid());
	atexit(env_cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	o.dir = env.dir;
	loaded = 1;	/* a half-done load is cleaned up too */
	err = rota_dp_load(&o);
	if (err) {
		fprintf(stderr, "rota_dp_load(%s): %s\n", env.dir, strerror(-err));
		return -1;
	}
	err = rota_dp_open(&env.dp, env.dir);
	if (err) {
		fprintf(stderr, "rota_dp_open(%s): %s\n", env.dir, strerror(-err));
		return -1;
	}
	dp_open = true;
	snprintf(path, sizeof(path), "%s/%s/rota_from_pod", env.dir, ROTA_PROGS_SUBDIR);
	env.from_pod = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/%s/rota_to_pod", env.dir, ROTA_PROGS_SUBDIR);
	env.to_pod = bpf_obj_get(path);
	if (env.from_pod < 0 || env.to_pod < 0) {
		fprintf(stderr, "open pinned tc programs in %s/%s: %s\n", env.dir, ROTA_PROGS_SUBDIR,
			strerror(errno));
		return -1;
	}
	return 0;
}

int env_teardown(void **state)
{
	env_cleanup();
	return 0;
}

int run(int prog_fd, const struct frame *in, struct frame *out)
{
	struct __sk_buff ctx = { .ifindex = 1 };	/* lo: what bpf_redirect() gets */
	LIBBPF_OPTS(bpf_test_run_opts, o,
		    .data_in = in->b, .data_size_in = (__u32)in->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);
	int err;

	memset(out->b, 0, sizeof(out->b));
	err = bpf_prog_test_run_opts(prog_fd, &o);
	if (err)
		fail_msg("BPF_PROG_TEST_RUN (%zu-byte frame): %s", in->len, strerror(errno));
	out->len = o.data_size_out;
	return (int)o.retval;
}

static uint32_t svc_write(const char *vip, uint16_t port, uint8_t proto, const char *const *backends,
			  size_t n, const char *const *terminating, size_t n_term, bool maglev,
			  uint32_t affinity)
{
	struct rota_svc_backend b[64] = { 0 };
	struct rota_service s = {
		.fe = { .addr = ip4(vip), .port = htons(port), .proto = proto },
		.maglev = maglev, .affinity_timeout = affinity,
		.n_backends = n + n_term, .backends = b,
	};
	struct rota_service got;
	char err[ROTA_ERR_LEN] = "";

	assert_true(n + n_term <= 64);
	for (size_t i = 0; i < n + n_term; i++) {
		const char *name = i < n ? backends[i] : terminating[i - n];

		assert_int_equal(rota_parse_addr_port(name, "backend", &b[i].addr, &b[i].port, err), 0);
		b[i].terminating = i >= n;
	}
	if (rota_svc_upsert(&env.dp, &s, err))
		fail_msg("rota_svc_upsert %s:%u: %s", vip, port, err);
	assert_int_equal(rota_svc_get(&env.dp, &s.fe, &got), 0);
	rota_svc_free(&got);
	return got.svc_id;
}

uint32_t svc_set(const char *vip, uint16_t port, uint8_t proto, const char *const *backends,
		 size_t n, const char *const *terminating, size_t n_term, bool maglev)
{
	return svc_write(vip, port, proto, backends, n, terminating, n_term, maglev, 0);
}

uint32_t svc_set_affinity(const char *vip, uint16_t port, uint8_t proto, const char *const *backends,
			  size_t n, const char *const *terminating, size_t n_term, uint32_t affinity)
{
	return svc_write(vip, port, proto, backends, n, terminating, n_term, false, affinity);
}

uint32_t backend_id(const char *vip, uint16_t port, uint8_t proto, const char *backend)
{
	struct rota_frontend fe = { .addr = ip4(vip), .port = htons(port), .proto = proto };
	struct rota_service s;
	char err[ROTA_ERR_LEN];
	__be32 addr;
	__be16 bport;
	uint32_t id = 0;

	assert_int_equal(rota_parse_addr_port(backend, "backend", &addr, &bport, err), 0);
	assert_int_equal(rota_svc_get(&env.dp, &fe, &s), 0);
	for (size_t i = 0; i < s.n_backends; i++)
		if (s.backends[i].addr == addr && s.backends[i].port == bport)
			id = s.backends[i].id;
	rota_svc_free(&s);
	if (!id)
		fail_msg("%s is not a backend of %s:%u", backend, vip, port);
	return id;
}

uint32_t svc_maglev_m(const char *vip, uint16_t port, uint8_t proto)
{
	struct rota_frontend fe = { .addr = ip4(vip), .port = htons(port), .proto = proto };
	struct rota_service s;
	uint32_t m;

	assert_int_equal(rota_svc_get(&env.dp, &fe, &s), 0);
	m = s.maglev_m;
	rota_svc_free(&s);
	return m;
}

bool maglev_has(uint32_t svc_id, uint32_t m)
{
	struct rota_maglev_key key = { .svc_id = svc_id, .maglev_m = m };
	uint32_t inner_id;

	return bpf_map_lookup_elem(env.dp.maglev_fd, &key, &inner_id) == 0;
}

uint32_t maglev_read(uint32_t svc_id, uint32_t m, uint32_t *table)
{
	struct rota_maglev_key key = { .svc_id = svc_id, .maglev_m = m };
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info), inner_id, chunks = (m + ROTA_MAGLEV_CHUNK - 1) / ROTA_MAGLEV_CHUNK;
	struct rota_maglev_chunk c;
	int fd;

	if (bpf_map_lookup_elem(env.dp.maglev_fd, &key, &inner_id))
		fail_msg("no Maglev table of %u entries for service %u", m, svc_id);
	fd = bpf_map_get_fd_by_id(inner_id);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	assert_int_equal(info.type, BPF_MAP_TYPE_ARRAY);
	assert_int_equal(info.map_flags, BPF_F_INNER_MAP);
	assert_int_equal(info.key_size, sizeof(__u32));
	assert_int_equal(info.value_size, sizeof(struct rota_maglev_chunk));
	assert_int_equal(info.max_entries, chunks);
	for (__u32 i = 0; i < chunks; i++) {
		assert_int_equal(bpf_map_lookup_elem(fd, &i, &c), 0);
		for (__u32 j = 0; j < ROTA_MAGLEV_CHUNK; j++) {
			__u32 e = i * ROTA_MAGLEV_CHUNK + j;

			if (e < m)
				table[e] = c.backend_id[j];
			else if (c.backend_id[j])
				fail_msg("Maglev table %u/%u: padding entry %u holds %u, not 0", svc_id, m, e,
					 c.backend_id[j]);
		}
	}
	close(fd);
	return inner_id;
}

static uint32_t rol32(uint32_t w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

/* Bob Jenkins' lookup3 final() over (saddr, daddr, sport<<16|dport ^ proto),
 * words as they lie in the packet, fixed seed: written out here from the
 * lookup3 description so the backend choice can be predicted. */
uint32_t flow_hash(uint32_t saddr, uint32_t daddr, uint16_t sport_n, uint16_t dport_n, uint8_t proto)
{
	uint32_t a = saddr + 0xdeadbeef, b = daddr + 0xdeadbeef;
	uint32_t c = (((uint32_t)sport_n << 16 | dport_n) ^ proto) + 0x726f7461;

	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

void run_chosen_prog(int prog, const struct pkt *p, int want_verdict, char name[32])
{
	struct frame in, out;
	const uint8_t *ip, *l4;

	build(&in, p);
	assert_int_equal(run(prog, &in, &out), want_verdict);
	assert_csums_ok(&out);
	ip = out.b + ETH_LEN;
	l4 = ip + ip_hlen(out.b);
	snprintf(name, 32, "%u.%u.%u.%u:%u", ip[16], ip[17], ip[18], ip[19], get16(l4 + 2));
}

void run_chosen(const struct pkt *p, int want_verdict, char name[32])
{
	run_chosen_prog(env.from_pod, p, want_verdict, name);
}

static struct rota_ct_key ct_key(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport,
				 uint8_t proto, uint8_t dir)
{
	struct rota_ct_key k;

	memset(&k, 0, sizeof(k));
	k.saddr = saddr;
	k.daddr = daddr;
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.proto = proto;
	k.dir = dir;
	return k;
}

bool ct_get(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto,
	    uint8_t dir, struct rota_ct_entry *out)
{
	struct rota_ct_key k = ct_key(saddr, daddr, sport, dport, proto, dir);

	return bpf_map_lookup_elem(env.dp.ct_fd, &k, out) == 0;
}

void ct_put(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto,
	    uint8_t dir, const struct rota_ct_entry *val)
{
	struct rota_ct_key k = ct_key(saddr, daddr, sport, dport, proto, dir);

	assert_int_equal(bpf_map_update_elem(env.dp.ct_fd, &k, val, BPF_EXIST), 0);
}

void ct_del(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto, uint8_t dir)
{
	struct rota_ct_key k = ct_key(saddr, daddr, sport, dport, proto, dir);

	bpf_map_delete_elem(env.dp.ct_fd, &k);
}

void stats_read(uint64_t pk[ROTA_STAT_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct rota_stat_val *v;

	assert_true(ncpu > 0);
	v = calloc((size_t)ncpu, sizeof(*v));
	assert_non_null(v);
	for (__u32 r = 0; r < ROTA_STAT_MAX; r++) {
		pk[r] = 0;
		assert_int_equal(bpf_map_lookup_elem(env.dp.stats_fd, &r, v), 0);
		for (int c = 0; c < ncpu; c++)
			pk[r] += v[c].packets;
	}
	free(v);
}

void frame_assert_eq(const struct frame *got, const struct frame *want, const char *what,
		     const char *file, int line)
{
	if (got->len == want->len && memcmp(got->b, want->b, got->len) == 0)
		return;
	frame_diff(what, got->b, got->len, want->b, want->len);
	_fail(file, line);
}

void assert_csums_ok(const struct frame *f)
{
	const uint8_t proto = f->b[ETH_LEN + 9];

	assert_true(f->len >= ETH_LEN + 20);
	assert_int_equal(get16(f->b + 12), 0x0800);
	assert_true(ETH_LEN + ip_totlen(f->b) <= f->len);
	assert_true(ip_csum_ok(f->b));
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
		assert_true(l4_csum_ok(f->b));
	else if (proto == IPPROTO_ICMP)
		assert_true(icmp_csum_ok(f->b));
}

void stats_snap(struct stats *s)
{
	stats_read(s->pk);
}

uint64_t stat_delta(const struct stats *before, unsigned int reason)
{
	struct stats now;

	stats_read(now.pk);
	return now.pk[reason] - before->pk[reason];
}

struct rota_ct_entry assert_ct_flow(const char *client, uint16_t cport, const char *vip,
				    uint16_t vport, uint8_t proto, const char *backend,
				    uint16_t bport, const char *reply_dst, uint32_t svc_id)
{
	struct rota_ct_entry fwd, rev;

	if (!ct_get(ip4(client), ip4(vip), cport, vport, proto, ROTA_CT_FWD, &fwd))
		fail_msg("no FWD conntrack entry %s:%u -> %s:%u", client, cport, vip, vport);
	assert_int_equal(fwd.nat_addr, ip4(backend));
	assert_int_equal(fwd.nat_port, htons(bport));
	assert_int_equal(fwd.svc_id, svc_id);
	assert_int_equal(fwd.client_addr, ip4(client));
	assert_true(fwd.packets >= 1);
	assert_true(fwd.created_ns > 0 && fwd.last_seen_ns >= fwd.created_ns);

	if (!ct_get(ip4(backend), ip4(reply_dst), bport, cport, proto, ROTA_CT_REPLY, &rev))
		fail_msg("no REPLY conntrack entry %s:%u -> %s:%u", backend, bport, reply_dst, cport);
	assert_int_equal(rev.nat_addr, ip4(vip));
	assert_int_equal(rev.nat_port, htons(vport));
	assert_int_equal(rev.svc_id, svc_id);
	assert_int_equal(rev.backend_id, fwd.backend_id);
	assert_int_equal(rev.client_addr, ip4(client));
	return fwd;
}

void expect_out(int prog, const struct pkt *in_pkt, const struct pkt *want_pkt, struct frame *out)
{
	struct frame in, want, o;

	if (!out)
		out = &o;
	build(&in, in_pkt);
	build(&want, want_pkt);
	assert_int_equal(run(prog, &in, out), TC_ACT_OK);
	assert_frame_eq(out, &want);
	assert_csums_ok(out);
}

void assert_untouched(const char *what, const struct frame *f)
{
	const struct { const char *name; int fd; } progs[] = {
		{ "rota_from_pod", env.from_pod }, { "rota_to_pod", env.to_pod },
	};
	struct frame out;

	for (size_t i = 0; i < 2; i++) {
		int v = run(progs[i].fd, f, &out);

		if (v == TC_ACT_SHOT)
			continue;
		if (v != TC_ACT_OK)
			fail_msg("%s via %s: verdict %d", what, progs[i].name, v);
		if (out.len != f->len || memcmp(out.b, f->b, f->len)) {
			frame_diff(what, out.b, out.len, f->b, f->len);
			fail_msg("%s via %s: frame changed", what, progs[i].name);
		}
	}
}

/* Key and value bytes of every entry of a map, sorted: equal snapshots
 * mean equal maps. */
static int rec_cmp(const void *a, const void *b, void *size)
{
	return memcmp(a, b, *(size_t *)size);
}

static void map_snap(int fd, struct map_snap *s)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	uint8_t key[64], next[64];
	void *prev = NULL;
	size_t cap = 0;

	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	assert_true(info.key_size <= sizeof(key));
	s->size = info.key_size + info.value_size;
	s->n = 0;
	s->rec = NULL;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		if (s->n == cap) {
			s->rec = realloc(s->rec, (cap = cap ? cap * 2 : 64) * s->size);
			assert_non_null(s->rec);
		}
		memcpy(key, next, info.key_size);
		prev = key;
		memcpy(s->rec + s->n * s->size, key, info.key_size);
		assert_int_equal(bpf_map_lookup_elem(fd, key, s->rec + s->n * s->size + info.key_size), 0);
		s->n++;
	}
	qsort_r(s->rec, s->n, s->size, rec_cmp, &s->size);
}

void maps_snap(struct maps_snap *s)
{
	int fds[4] = { env.dp.svc_fd, env.dp.backends_fd, env.dp.maglev_fd, env.dp.config_fd };

	for (int i = 0; i < 4; i++)
		map_snap(fds[i], &s->m[i]);
}

void assert_maps_equal(struct maps_snap *a, struct maps_snap *b)
{
	static const char *const names[4] = { ROTA_MAP_SVC4, ROTA_MAP_BACKENDS4, ROTA_MAP_MAGLEV4, ROTA_MAP_CONFIG };

	for (int i = 0; i < 4; i++) {
		if (a->m[i].n != b->m[i].n || memcmp(a->m[i].rec, b->m[i].rec, a->m[i].n * a->m[i].size))
			fail_msg("%s changed (%zu entries before, %zu after)", names[i], a->m[i].n, b->m[i].n);
		free(a->m[i].rec);
		free(b->m[i].rec);
	}
}
