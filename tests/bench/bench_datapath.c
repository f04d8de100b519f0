/* Per-packet cost of the tc datapath (from_pod) under BPF_PROG_TEST_RUN,
 * with 10 … 100,000 services programmed through librota, next to an empty
 * tc program. With no arguments it is a quick self-check (what `make test`
 * runs: every program runs, verdicts and counters are what they must be);
 * --full is the benchmark `make bench` runs through tests/bench/run.sh. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bench.skel.h"
#include "dp.h"
#include "log.h"
#include "maglev.h"
#include "stats.h"
#include "svc.h"

#define TC_ACT_OK	0
#define PKT_LEN		54		/* Ethernet + IPv4 + TCP, no options, no payload */
#define MAX_RUNS	32
#define MAX_SIZES	8
#define MAX_BACKENDS	64

#define VIP_BASE	0x0A600001u	/* 10.96.0.1: service i is VIP_BASE + i, port 80 */
#define BACKEND_BASE	0xAC100000u	/* 172.16.0.0: backend j of service i */
#define CLIENT_EST	0x0AF4010Au	/* 10.244.1.10: the established flow */
/* New-flow clients: bench.bpf.c adds 1 to the address every 60,000
 * repeats, so each gets a /16 of its own (the two must never meet). */
#define CLIENT_NEW	0x0AF50001u	/* 10.245.0.1: new flows (true CT misses) */
#define CLIENT_CYC	0x0AF60001u	/* 10.246.0.1: new flows with the default timeouts */
#define POD_OTHER	0x0AF40214u	/* 10.244.2.20:8080, a pod: not a service */

#define SVC_PORT	80
#define BACKEND_PORT	8080
#define CLIENT_PORT	40000

#define SYN_KEEP	((__u32)-1)	/* bench_open: keep the compiled ct_tcp_syn_s */
#define EST_LIFETIME_S	86400		/* rota's default tcp_established_timeout */

/* What is measured at each point; one BPF_PROG_TEST_RUN per case per round. */
enum bench_case {
	C_FLOOR,	/* rota_bench_floor: empty tc program */
	C_RESTORE,	/* rota_bench_restore, bench_new_flow=0 */
	C_EST,		/* rota_bench_from_pod, CT hit */
	C_PASS,		/* rota_bench_from_pod, packet to a pod, not a service */
	C_RESTORE_NEW,	/* rota_bench_restore, bench_new_flow=1 (adds the port store) */
	C_NEW,		/* rota_bench_from_pod, bench_new_flow=1, every repeat a CT miss */
	C_NEW_CYCLED,	/* the same with the default timeouts (bench.bpf.c as it is) */
	C_MAX,
};

static const struct {
	const char *name;
	const char *what;
} cases[C_MAX] = {
	[C_FLOOR]       = { "floor", "empty tc program" },
	[C_RESTORE]     = { "restore", "header save + restore alone (established wrapper)" },
	[C_EST]         = { "established", "from_pod, established flow: conntrack hit, DNAT" },
	[C_PASS]        = { "pass_through", "from_pod, packet for no service (pod to pod)" },
	[C_RESTORE_NEW] = { "restore_new", "header save + port rewrite + restore (new-flow wrapper)" },
	[C_NEW]         = { "new_flow", "from_pod, new flow: CT miss, backend choice, 2 CT writes, DNAT "
			    "(this object reads every CT entry as expired, so every repeat is one)" },
	[C_NEW_CYCLED]  = { "new_flow_cycled", "bench.bpf.c's new-flow mode with the default timeouts: a new "
			    "source port each repeat and a new source address each 60,000, so every repeat should "
			    "be a new flow (the CT-miss share says whether it was)" },
};

struct case_result {
	int    n;
	double ns[MAX_RUNS];	/* test_run duration: kernel's average ns per repeat */
	double wall[MAX_RUNS];	/* wall clock around the syscall / repeat */
	__u64  ct_new, ct_hit, pkts;
};

struct bench_cfg {
	bool   full;
	__u32  repeat;
	int    runs;
	__u32  sizes[MAX_SIZES];
	int    n_sizes;
	bool   random, maglev;
	int    backends;
	__u32  maglev_m;	/* cap on Maglev tables (rota load --maglev-size) */
	int    cpu;
	unsigned only;		/* 0, or a mask of the cases to measure (1 << case) */
	const char *dir;
	const char *csv, *md;
};

/* One datapath in its own bpffs directory, and the bench objects on it:
 * est (bench_new_flow=0), new (every repeat a CT miss), cyc (new-flow mode
 * with the default timeouts, as bench.bpf.c is meant to be used). */
struct variant_state {
	char dir[300];
	struct rota_dp dp;
	bool dp_open;
	struct rota_bench *est, *new, *cyc;
};

/* A point's packets and the program each case runs. */
struct point_run {
	__u8 pkt[C_MAX][PKT_LEN];
	struct bpf_program *prog[C_MAX];
	char where[64];
};

/* One measured point: its own datapath holding exactly `services`. */
struct point {
	const char *variant;
	__u32  services;
	double program_s;	/* time rota_svc_upsert took for them */
	struct variant_state vs;
	struct point_run run;
	struct case_result c[C_MAX];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- packets ---------------------------------------------------------- */

static __u32 sum16(const __u8 *p, size_t len, __u32 sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	return sum;
}

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* A TCP segment saddr:sport → daddr:dport (host order), checksums set. */
static void pkt_tcp(__u8 *b, __u32 saddr, __u16 sport, __u32 daddr, __u16 dport, __u8 flags)
{
	static const __u8 dmac[6] = { 0x02, 0, 0, 0, 0, 0x02 }, smac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	__u8 *ip = b + 14, *tcp = ip + 20, pseudo[12];
	__u32 sa = htonl(saddr), da = htonl(daddr);
	__u16 c;

	memset(b, 0, PKT_LEN);
	memcpy(b, dmac, 6);
	memcpy(b + 6, smac, 6);
	b[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = 40;			/* total length */
	ip[5] = 1;			/* id */
	ip[6] = 0x40;			/* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, &sa, 4);
	memcpy(ip + 16, &da, 4);
	c = csum_fold(sum16(ip, 20, 0));
	ip[10] = c >> 8;
	ip[11] = c & 0xff;

	tcp[0] = sport >> 8;
	tcp[1] = sport & 0xff;
	tcp[2] = dport >> 8;
	tcp[3] = dport & 0xff;
	tcp[7] = 1;			/* seq */
	if (flags & 0x10)
		tcp[11] = 1;		/* ack */
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	tcp[14] = 0xff;			/* window */
	tcp[15] = 0xff;
	memcpy(pseudo, &sa, 4);
	memcpy(pseudo + 4, &da, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = 20;
	c = csum_fold(sum16(tcp, 20, sum16(pseudo, 12, 0)));
	tcp[16] = c >> 8;
	tcp[17] = c & 0xff;
}

/* ---- datapath set-up -------------------------------------------------- */

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static __u32 roundup_pow2(__u64 v)
{
	__u64 p = 1;

	while (p < v)
		p <<= 1;
	return (__u32)p;
}

static __u32 map_max_entries(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.max_entries;
}

/* A bench object sharing the pinned maps of dir. syn_s: the lifetime this
 * object gives conntrack entries that never saw a reply (SYN_KEEP leaves
 * the default; 0 makes every entry read as expired, so every repeat takes
 * the new-flow path). */
static struct rota_bench *bench_open(const struct rota_load_opts *lo, __u8 new_flow, __u32 syn_s)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = lo->dir);
	struct rota_bench *s = rota_bench__open_opts(&oo);
	int err;

	if (!s) {
		pr_warn("open the bench BPF object: %s", strerror(errno));
		return NULL;
	}
	s->rodata->bench_new_flow = new_flow;
	if (syn_s != SYN_KEEP)
		s->rodata->ct_tcp_syn_s = syn_s;
	err = rota_dp_size_maps(s->obj, lo);
	if (err)
		pr_warn("size the bench maps to %s: %s", lo->dir, strerror(-err));
	else if ((err = rota_bench__load(s)))
		pr_warn("load the bench programs (new_flow=%u): %s", new_flow, strerror(-err));
	if (err) {
		rota_bench__destroy(s);
		return NULL;
	}
	return s;
}

static void variant_close(struct variant_state *v)
{
	rota_bench__destroy(v->est);
	rota_bench__destroy(v->new);
	rota_bench__destroy(v->cyc);
	v->est = v->new = v->cyc = NULL;
	if (v->dp_open)
		rota_dp_close(&v->dp);
	v->dp_open = false;
	if (v->dir[0]) {
		rota_dp_unload(v->dir);
		rmdir(v->dir);
	}
	v->dir[0] = 0;
}

static int variant_open(struct variant_state *v, const char *base, const char *name, __u32 services,
			const struct bench_cfg *cfg, __u32 max_services)
{
	struct rota_load_opts lo = { .maglev_m = cfg->maglev_m };
	double t0 = now_s();
	int err;

	memset(v, 0, sizeof(*v));
	snprintf(v->dir, sizeof(v->dir), "%s/%s-%u", base, name, services);
	lo.dir = v->dir;
	/* Master + one slot per backend in rota_svc4; rota_dp_load sizes
	 * rota_maglev4 (one table per service) to as many. Same sizes at
	 * every point, so only occupancy changes between 10 and 100,000. */
	lo.svc_entries = roundup_pow2((__u64)max_services * (cfg->backends + 1) + 64);
	lo.backend_entries = roundup_pow2((__u64)max_services * cfg->backends + 64);
	if (lo.svc_entries < ROTA_DEFAULT_SVC_ENTRIES)
		lo.svc_entries = ROTA_DEFAULT_SVC_ENTRIES;
	if (lo.backend_entries < ROTA_DEFAULT_BACKEND_ENTRIES)
		lo.backend_entries = ROTA_DEFAULT_BACKEND_ENTRIES;

	if (mkdir(v->dir, 0700) < 0) {
		err = -errno;
		pr_warn("create %s: %s", v->dir, strerror(errno));
		v->dir[0] = 0;
		return err;
	}
	err = rota_dp_load(&lo);
	if (err) {
		pr_warn("rota_dp_load %s: %s", v->dir, strerror(-err));
		return err;
	}
	err = rota_dp_open(&v->dp, v->dir);
	if (err)
		return err;
	v->dp_open = true;
	/* The benchmark sends no replies, so its established flow stays in
	 * state NEW: give that the established lifetime, or it could age out
	 * (60 s) between two runs on a slow machine. */
	v->est = bench_open(&lo, 0, EST_LIFETIME_S);
	v->new = v->est ? bench_open(&lo, 1, 0) : NULL;
	v->cyc = v->new ? bench_open(&lo, 1, SYN_KEEP) : NULL;
	if (!v->cyc)
		return -EINVAL;
	fprintf(stderr, "bench: %s/%u services: datapath loaded in %s (rota_svc4 %u, rota_backends4 %u, rota_maglev4 %u, rota_ct4 %u entries, Maglev cap %u) in %.1f s\n",
		name, services, v->dir, v->dp.svc_max, v->dp.backends_max, map_max_entries(v->dp.maglev_fd),
		v->dp.ct_max, v->dp.cfg.maglev_m, now_s() - t0);
	return 0;
}

/* Kernel memory of a map (what `bpftool map show` calls bytes_memlock),
 * from the fdinfo of fd; 0 if unreadable. */
static unsigned long long map_memlock(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* How many Maglev tables rota_maglev4 holds and their kernel memory. */
static unsigned long long maglev_tables_memlock(const struct rota_dp *dp, __u32 *tables)
{
	struct rota_maglev_key key, next, *prev = NULL;
	unsigned long long sum = 0;
	__u32 inner_id;
	int fd;

	*tables = 0;
	while (bpf_map_get_next_key(dp->maglev_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(dp->maglev_fd, &key, &inner_id))
			continue;
		fd = bpf_map_get_fd_by_id(inner_id);
		if (fd < 0)
			continue;
		sum += map_memlock(fd);
		(*tables)++;
		close(fd);
	}
	return sum;
}

/* Services [from, to): VIP_BASE+i:80/TCP → backends BACKEND_BASE+i*nb+j:8080. */
static int add_services(struct rota_dp *dp, __u32 from, __u32 to, int nb, bool maglev)
{
	struct rota_svc_backend be[MAX_BACKENDS];
	char err[ROTA_ERR_LEN];
	int rc;

	for (__u32 i = from; i < to; i++) {
		struct rota_service s = {
			.fe = { .addr = htonl(VIP_BASE + i), .port = htons(SVC_PORT), .proto = IPPROTO_TCP },
			.maglev = maglev,
			.n_backends = (size_t)nb,
			.backends = be,
		};

		if (stop)
			return -EINTR;
		memset(be, 0, sizeof(be));
		for (int j = 0; j < nb; j++) {
			be[j].addr = htonl(BACKEND_BASE + i * (__u32)nb + (__u32)j);
			be[j].port = htons(BACKEND_PORT);
		}
		rc = rota_svc_upsert(dp, &s, err);
		if (rc) {
			pr_warn("service %u of %u: %s", i + 1, to, err);
			return rc;
		}
	}
	return 0;
}

/* Empties rota_ct4 so every point starts from the same conntrack state. */
static int ct_flush(int fd)
{
	struct rota_ct_key *keys = NULL, k, *prev = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		if (n == cap) {
			struct rota_ct_key *nk = realloc(keys, (cap = cap ? cap * 2 : 4096) * sizeof(*keys));

			if (!nk) {
				err = -ENOMEM;
				break;
			}
			keys = nk;
		}
		keys[n] = k;
		prev = &keys[n++];
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &keys[i]);
	free(keys);
	return err;
}

/* ---- measuring -------------------------------------------------------- */

struct shot {
	__u32  retval;
	__u32  duration;
	double wall_ns;
	bool   pkt_changed;
	__u64  d[ROTA_STAT_MAX];	/* packets counted per reason during the run */
};

static int shoot(struct rota_dp *dp, struct bpf_program *prog, const __u8 *pkt, __u32 repeat,
		 struct shot *o)
{
	struct rota_stat_val before[ROTA_STAT_MAX], after[ROTA_STAT_MAX];
	__u8 out[256];
	LIBBPF_OPTS(bpf_test_run_opts, t,
		    .data_in = pkt, .data_size_in = PKT_LEN,
		    .data_out = out, .data_size_out = sizeof(out),
		    .repeat = repeat);
	double t0, t1;
	int err;

	err = rota_stats_read(dp, before);
	if (err)
		return err;
	t0 = now_s();
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &t);
	t1 = now_s();
	if (err)
		return err < 0 ? err : -EIO;
	err = rota_stats_read(dp, after);
	if (err)
		return err;
	o->retval = t.retval;
	o->duration = t.duration;
	o->wall_ns = (t1 - t0) * 1e9 / repeat;
	o->pkt_changed = t.data_size_out != PKT_LEN || memcmp(out, pkt, PKT_LEN) != 0;
	for (int i = 0; i < ROTA_STAT_MAX; i++)
		o->d[i] = after[i].packets - before[i].packets;
	return 0;
}

/* Checks that a run did what the case says; returns 0 or -1 with a message. */
static int shot_check(enum bench_case c, const struct shot *s, __u32 r, const char *where)
{
	__u64 any = 0;
	const char *why = NULL;

	for (int i = 0; i < ROTA_STAT_MAX; i++)
		any += s->d[i];
	if (s->retval != TC_ACT_OK)
		why = "verdict is not TC_ACT_OK";
	else if (s->pkt_changed)
		why = "the wrapper did not restore the packet";
	else switch (c) {
	case C_FLOOR:
	case C_RESTORE:
	case C_RESTORE_NEW:
		if (any)
			why = "a datapath counter moved";
		break;
	case C_EST:
		if (s->d[ROTA_STAT_CT_HIT] != r || s->d[ROTA_STAT_XLATE_FWD] != r || s->d[ROTA_STAT_CT_NEW])
			why = "not every repeat was a conntrack hit translated forward";
		break;
	case C_PASS:
		if (s->d[ROTA_STAT_PASS_NOT_SERVICE] != r || any != r)
			why = "not every repeat passed as not-a-service";
		break;
	case C_NEW:
		if (s->d[ROTA_STAT_CT_NEW] != r || s->d[ROTA_STAT_XLATE_FWD] != r)
			why = "not every repeat was a new flow translated forward";
		break;
	case C_NEW_CYCLED:
		if (s->d[ROTA_STAT_CT_NEW] + s->d[ROTA_STAT_CT_HIT] != r || s->d[ROTA_STAT_XLATE_FWD] != r)
			why = "repeats were neither new flows nor conntrack hits";
		break;
	default:
		break;
	}
	if (!why)
		return 0;
	fprintf(stderr, "bench: FAIL %s %s: %s (verdict %u, ct_new %llu, ct_hit %llu, translated %llu, "
		"not_service %llu, dropped %llu, rejected %llu, of %u repeats)\n",
		where, cases[c].name, why, s->retval,
		(unsigned long long)s->d[ROTA_STAT_CT_NEW], (unsigned long long)s->d[ROTA_STAT_CT_HIT],
		(unsigned long long)s->d[ROTA_STAT_XLATE_FWD],
		(unsigned long long)s->d[ROTA_STAT_PASS_NOT_SERVICE],
		(unsigned long long)s->d[ROTA_STAT_DROP_ERROR],
		(unsigned long long)s->d[ROTA_STAT_NO_BACKEND], r);
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAX_RUNS];

	if (n <= 0)
		return 0;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n & 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
	double m = n ? v[0] : 0;

	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double vmax(const double *v, int n)
{
	double m = n ? v[0] : 0;

	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

#define MED(pt, k) median((pt)->c[k].ns, (pt)->c[k].n)

static int point_fail(const char *where, int err)
{
	if (err == -EINTR && stop)
		return err;
	fprintf(stderr, "bench: FAIL %s: BPF_PROG_TEST_RUN: %s\n", where, strerror(-err));
	return err;
}

/* Readies a programmed point: packets to the service added last, every case
 * run once unrecorded (warm caches), then the same start everywhere: empty
 * conntrack, bench_seq at 0, and one packet that creates the established
 * flow's entry. */
static int point_prepare(struct point *pt, const struct bench_cfg *cfg)
{
	struct variant_state *v = &pt->vs;
	struct point_run *pr = &pt->run;
	__u32 target = VIP_BASE + pt->services - 1, r = cfg->repeat;
	struct shot s;
	int err;

	snprintf(pr->where, sizeof(pr->where), "%s/%u services", pt->variant, pt->services);
	pkt_tcp(pr->pkt[C_EST], CLIENT_EST, CLIENT_PORT, target, SVC_PORT, 0x10);		/* ACK */
	memcpy(pr->pkt[C_FLOOR], pr->pkt[C_EST], PKT_LEN);
	memcpy(pr->pkt[C_RESTORE], pr->pkt[C_EST], PKT_LEN);
	pkt_tcp(pr->pkt[C_PASS], CLIENT_EST, CLIENT_PORT, POD_OTHER, BACKEND_PORT, 0x10);
	pkt_tcp(pr->pkt[C_NEW], CLIENT_NEW, CLIENT_PORT, target, SVC_PORT, 0x02);		/* SYN */
	memcpy(pr->pkt[C_RESTORE_NEW], pr->pkt[C_NEW], PKT_LEN);
	pkt_tcp(pr->pkt[C_NEW_CYCLED], CLIENT_CYC, CLIENT_PORT, target, SVC_PORT, 0x02);
	pr->prog[C_FLOOR] = v->est->progs.rota_bench_floor;
	pr->prog[C_RESTORE] = v->est->progs.rota_bench_restore;
	pr->prog[C_EST] = v->est->progs.rota_bench_from_pod;
	pr->prog[C_PASS] = v->est->progs.rota_bench_from_pod;
	pr->prog[C_RESTORE_NEW] = v->new->progs.rota_bench_restore;
	pr->prog[C_NEW] = v->new->progs.rota_bench_from_pod;
	pr->prog[C_NEW_CYCLED] = v->cyc->progs.rota_bench_from_pod;

	for (int c = 0; c < C_NEW_CYCLED; c++) {
		err = shoot(&v->dp, pr->prog[c], pr->pkt[c], r < 100000 ? r : 100000, &s);
		if (err)
			return point_fail(pr->where, err);
	}
	err = ct_flush(v->dp.ct_fd);
	if (err)
		return point_fail(pr->where, err);
	v->cyc->bss->bench_seq = 0;
	v->new->bss->bench_seq = 0;
	err = shoot(&v->dp, pr->prog[C_EST], pr->pkt[C_EST], 1, &s);
	if (err)
		return point_fail(pr->where, err);
	if (s.d[ROTA_STAT_CT_NEW] != 1 || s.retval != TC_ACT_OK) {
		fprintf(stderr, "bench: FAIL %s: the first packet of the established flow did not create it "
			"(verdict %u, ct_new %llu)\n", pr->where, s.retval, (unsigned long long)s.d[ROTA_STAT_CT_NEW]);
		return -1;
	}
	return 0;
}

/* One run of case c at one point, checked and recorded. */
static int point_run_case(struct point *pt, enum bench_case c, const struct bench_cfg *cfg)
{
	struct point_run *pr = &pt->run;
	struct case_result *cr = &pt->c[c];
	__u32 r = cfg->repeat;
	struct shot s;
	int err;

	if (stop)
		return -EINTR;
	err = shoot(&pt->vs.dp, pr->prog[c], pr->pkt[c], r, &s);
	if (err)
		return point_fail(pr->where, err);
	if (shot_check(c, &s, r, pr->where))
		return -1;
	cr->ns[cr->n] = s.duration;
	cr->wall[cr->n] = s.wall_ns;
	cr->n++;
	cr->ct_new += s.d[ROTA_STAT_CT_NEW];
	cr->ct_hit += s.d[ROTA_STAT_CT_HIT];
	cr->pkts += r;
	return 0;
}

/* ---- reporting -------------------------------------------------------- */

static void fmt_cell(char *buf, size_t len, const struct case_result *cr)
{
	if (cr->n > 1)
		snprintf(buf, len, "%.0f (%.0f–%.0f)", median(cr->ns, cr->n),
			 vmin(cr->ns, cr->n), vmax(cr->ns, cr->n));
	else
		snprintf(buf, len, "%.0f", median(cr->ns, cr->n));
}

/* Median (or minimum) cost of case c at p; corrected: without the wrapper's
 * save/restore, c − (restore − floor). */
static double cost(const struct point *p, enum bench_case c, bool corr, bool use_min)
{
	enum bench_case rest = c == C_NEW || c == C_NEW_CYCLED ? C_RESTORE_NEW : C_RESTORE;
	double (*st)(const double *, int) = use_min ? vmin : median;
	double x = st(p->c[c].ns, p->c[c].n);

	if (corr)
		x -= st(p->c[rest].ns, p->c[rest].n) - st(p->c[C_FLOOR].ns, p->c[C_FLOOR].n);
	return x;
}

static void print_table(FILE *f, const struct point *pts, int n, bool md)
{
	char cell[C_MAX][64];

	if (md) {
		fprintf(f, "| variant | services | floor | restore | established | pass-through | restore (new) | new flow | new flow, default timeouts (CT-miss share) |\n");
		fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	} else {
		fprintf(f, "%-7s %9s  %-14s %-14s %-14s %-14s %-14s %-14s %s\n", "variant", "services", "floor",
			"restore", "established", "pass-through", "restore(new)", "new flow", "new, default t/o (miss share)");
	}
	for (int i = 0; i < n; i++) {
		const struct point *p = &pts[i];
		const struct case_result *cy = &p->c[C_NEW_CYCLED];
		double share = cy->pkts ? (double)cy->ct_new / cy->pkts : 0;

		for (int c = 0; c < C_MAX; c++)
			fmt_cell(cell[c], sizeof(cell[c]), &p->c[c]);
		if (md)
			fprintf(f, "| %s | %u | %s | %s | %s | %s | %s | %s | %s (%.1f%%) |\n", p->variant, p->services,
				cell[C_FLOOR], cell[C_RESTORE], cell[C_EST], cell[C_PASS], cell[C_RESTORE_NEW],
				cell[C_NEW], cell[C_NEW_CYCLED], share * 100);
		else
			fprintf(f, "%-7s %9u  %-14s %-14s %-14s %-14s %-14s %-14s %s (%.1f%%)\n", p->variant,
				p->services, cell[C_FLOOR], cell[C_RESTORE], cell[C_EST], cell[C_PASS],
				cell[C_RESTORE_NEW], cell[C_NEW], cell[C_NEW_CYCLED], share * 100);
	}
}

static const struct point *find_point(const struct point *pts, int n, const char *variant, bool largest)
{
	const struct point *best = NULL;

	for (int i = 0; i < n; i++)
		if (!strcmp(pts[i].variant, variant) &&
		    (!best || (largest ? pts[i].services > best->services : pts[i].services < best->services)))
			best = &pts[i];
	return best;
}

static const char *verdict(double v, double target)
{
	return v <= target ? "met" : "NOT met";
}

static void print_derived(FILE *f, const struct point *pts, int n, bool md)
{
	const char *variants[] = { "random", "maglev" };

	if (md) {
		fprintf(f, "\nRestore-corrected cost, x − (restore − floor), ns/packet (medians):\n\n");
		fprintf(f, "| variant | services | established | pass-through | new flow | established ÷ floor, raw | established ÷ floor, corrected | programming |\n");
		fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
	} else {
		fprintf(f, "\nrestore-corrected, x - (restore - floor), ns/packet (medians); established / floor; programming:\n");
	}
	for (int i = 0; i < n; i++) {
		const struct point *p = &pts[i];
		double fl = MED(p, C_FLOOR);
		char prog[64];

		snprintf(prog, sizeof(prog), "%.2f s (%.0f services/s)", p->program_s,
			 p->program_s > 0 ? p->services / p->program_s : 0);
		if (md)
			fprintf(f, "| %s | %u | %.0f | %.0f | %.0f | %.2f× | %.2f× | %s |\n", p->variant, p->services,
				cost(p, C_EST, true, false), cost(p, C_PASS, true, false), cost(p, C_NEW, true, false),
				MED(p, C_EST) / fl, cost(p, C_EST, true, false) / fl, prog);
		else
			fprintf(f, "%-7s %9u  est %5.0f  pass %5.0f  new %5.0f  est/floor raw %.2fx corrected %.2fx  %s\n",
				p->variant, p->services, cost(p, C_EST, true, false), cost(p, C_PASS, true, false),
				cost(p, C_NEW, true, false), MED(p, C_EST) / fl, cost(p, C_EST, true, false) / fl, prog);
	}

	if (md)
		fprintf(f, "\nTargets (ratios of medians; of minimums, the least noisy estimate, beside them):\n\n"
			"| variant | ratio | target | medians | minimums | result (medians) |\n|---|---|---:|---:|---:|---|\n");
	else
		fprintf(f, "\ntargets (ratio of medians, ratio of minimums):\n");
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		const struct point *lo = find_point(pts, n, variants[v], false);
		const struct point *hi = find_point(pts, n, variants[v], true);
		struct {
			char what[96];
			double med, min, target;
		} rows[12];
		int k = 0;

		if (!lo || !hi)
			continue;
		if (lo != hi) {
			static const struct { const char *label; enum bench_case c; bool corr; } sc[] = {
				{ "established, raw", C_EST, false },
				{ "established, restore-corrected", C_EST, true },
				{ "new flow, raw", C_NEW, false },
				{ "new flow, restore-corrected", C_NEW, true },
				{ "pass-through, raw", C_PASS, false },
				{ "pass-through, restore-corrected", C_PASS, true },
			};

			for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
				snprintf(rows[k].what, sizeof(rows[k].what), "%s: %u ÷ %u services", sc[i].label,
					 hi->services, lo->services);
				rows[k].med = cost(hi, sc[i].c, sc[i].corr, false) / cost(lo, sc[i].c, sc[i].corr, false);
				rows[k].min = cost(hi, sc[i].c, sc[i].corr, true) / cost(lo, sc[i].c, sc[i].corr, true);
				rows[k++].target = 1.15;
			}
		}
		for (const struct point *p = lo; p; p = p == hi ? NULL : hi) {
			for (int corr = 0; corr < 2; corr++) {
				snprintf(rows[k].what, sizeof(rows[k].what), "established ÷ floor%s, %u services",
					 corr ? " (restore-corrected)" : " (raw)", p->services);
				rows[k].med = cost(p, C_EST, corr, false) / cost(p, C_FLOOR, false, false);
				rows[k].min = cost(p, C_EST, corr, true) / cost(p, C_FLOOR, false, true);
				rows[k++].target = 4;
			}
			if (lo == hi)
				break;
		}
		for (int i = 0; i < k; i++) {
			if (md)
				fprintf(f, "| %s | %s | ≤ %.2f | %.2f | %.2f | %s |\n", variants[v], rows[i].what,
					rows[i].target, rows[i].med, rows[i].min, verdict(rows[i].med, rows[i].target));
			else
				fprintf(f, "%-7s %-52s %6.2f %6.2f  (target <= %.2f: %s)\n", variants[v], rows[i].what,
					rows[i].med, rows[i].min, rows[i].target, verdict(rows[i].med, rows[i].target));
		}
	}
}

static int write_csv(const char *path, const struct point *pts, int n, const struct bench_cfg *cfg)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		pr_warn("write %s: %s", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "variant,services,case,repeat,runs,median_ns,min_ns,max_ns,wall_median_ns,"
		"ct_new_per_pkt,ct_hit_per_pkt,runs_ns\n");
	for (int i = 0; i < n; i++) {
		const struct point *p = &pts[i];

		double per = p->program_s * 1e9 / p->services;	/* ns per service programmed */

		fprintf(f, "%s,%u,programming,%u,1,%.0f,%.0f,%.0f,,,,\n", p->variant, p->services, p->services,
			per, per, per);
		for (int c = 0; c < C_MAX; c++) {
			const struct case_result *cr = &p->c[c];

			fprintf(f, "%s,%u,%s,%u,%d,%.0f,%.0f,%.0f,%.2f,%.4f,%.4f,", p->variant, p->services,
				cases[c].name, cfg->repeat, cr->n, median(cr->ns, cr->n), vmin(cr->ns, cr->n),
				vmax(cr->ns, cr->n), median(cr->wall, cr->n),
				cr->pkts ? (double)cr->ct_new / cr->pkts : 0,
				cr->pkts ? (double)cr->ct_hit / cr->pkts : 0);
			for (int r = 0; r < cr->n; r++)
				fprintf(f, "%s%.0f", r ? ";" : "", cr->ns[r]);
			fputc('\n', f);
		}
	}
	return fclose(f) ? -errno : 0;
}

static int write_md(const char *path, const struct point *pts, int n, const struct bench_cfg *cfg)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		pr_warn("write %s: %s", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "ns/packet from BPF_PROG_TEST_RUN (kernel-reported average per repeat), repeat = %u, "
		"median of %d runs (min–max); %d backends per service; the packet goes to the service added last.\n\n",
		cfg->repeat, cfg->runs, cfg->backends);
	print_table(f, pts, n, true);
	print_derived(f, pts, n, true);
	fprintf(f, "\nCases:\n\n");
	for (int c = 0; c < C_MAX; c++)
		fprintf(f, "- `%s`: %s\n", cases[c].name, cases[c].what);
	return fclose(f) ? -errno : 0;
}

/* ---- main ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_datapath [--full] [--repeat N] [--runs N] [--sizes A,B,...] [--backends N]\n"
		"                      [--variants random,maglev] [--maglev-m CAP] [--cpu N|-1]\n"
		"                      [--dir BPFFS_DIR] [--csv FILE] [--md FILE] [--only CASE,...]\n"
		"No arguments: quick self-check (10 services, repeat 10000, 1 run), exit 0 when every\n"
		"program gives the expected verdicts and counters. --full: the benchmark (10, 1000,\n"
		"100000 services, repeat 1000000, 7 runs, random and maglev). --only CASE,... measures\n"
		"only those cases (floor, restore, established, pass_through, restore_new, new_flow,\n"
		"new_flow_cycled), e.g. under `perf record`; ratios to cases not measured are then meaningless.\n"
		"Each Maglev service's table has the size rota gives --backends N active backends (the\n"
		"smallest of 251, 509, 1021, ... 131071 that is >= 100 x N); --maglev-m CAP is the datapath's\n"
		"cap on it (rota load --maglev-size; default the largest), so a CAP below that size makes\n"
		"the Maglev services fail to program.\n");
}

static int parse_only(const char *s, struct bench_cfg *cfg)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	cfg->only = 0;
	for (tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		int c = 0;

		while (c < C_MAX && strcmp(tok, cases[c].name))
			c++;
		if (c == C_MAX)
			err = -EINVAL;
		else
			cfg->only |= 1u << c;
	}
	free(copy);
	return err ? err : cfg->only ? 0 : -EINVAL;
}

static int parse_sizes(const char *s, struct bench_cfg *cfg)
{
	char *copy = strdup(s), *tok, *save = NULL;

	if (!copy)
		return -ENOMEM;
	cfg->n_sizes = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long v = strtoul(tok, NULL, 10);

		if (!v || cfg->n_sizes == MAX_SIZES || (cfg->n_sizes && v <= cfg->sizes[cfg->n_sizes - 1])) {
			free(copy);
			return -EINVAL;
		}
		cfg->sizes[cfg->n_sizes++] = (__u32)v;
	}
	free(copy);
	return cfg->n_sizes ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "full", no_argument, NULL, 'f' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "sizes", required_argument, NULL, 's' },
		{ "backends", required_argument, NULL, 'b' },
		{ "variants", required_argument, NULL, 'v' },
		{ "maglev-m", required_argument, NULL, 'm' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "csv", required_argument, NULL, 'C' },
		{ "md", required_argument, NULL, 'M' },
		{ "only", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bench_cfg cfg = {
		.repeat = 0, .runs = 0, .random = true, .maglev = true, .backends = 4,
		.maglev_m = 0, .cpu = -2, .only = 0,
	};
	const char *variants[2] = { "random", "maglev" };
	bool sizes_set = false, base_made = false;
	struct point *pts = NULL;
	char base[256];
	int npts = 0, opt, err = 0;

	rota_log_init("bench_datapath", ROTA_LOG_WARN);
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': cfg.full = true; break;
		case 'r': cfg.repeat = (__u32)strtoul(optarg, NULL, 10); break;
		case 'n': cfg.runs = atoi(optarg); break;
		case 's':
			if (parse_sizes(optarg, &cfg)) {
				fprintf(stderr, "--sizes %s: want increasing positive counts, at most %d\n", optarg, MAX_SIZES);
				return 2;
			}
			sizes_set = true;
			break;
		case 'b': cfg.backends = atoi(optarg); break;
		case 'v':
			cfg.random = strstr(optarg, "random") != NULL;
			cfg.maglev = strstr(optarg, "maglev") != NULL;
			break;
		case 'm': cfg.maglev_m = (__u32)strtoul(optarg, NULL, 10); break;
		case 'c': cfg.cpu = atoi(optarg); break;
		case 'd': cfg.dir = optarg; break;
		case 'C': cfg.csv = optarg; break;
		case 'M': cfg.md = optarg; break;
		case 'o':
			if (parse_only(optarg, &cfg)) {
				fprintf(stderr, "--only %s: not a list of case names\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!sizes_set) {
		if (cfg.full) {
			cfg.sizes[0] = 10, cfg.sizes[1] = 1000, cfg.sizes[2] = 100000;
			cfg.n_sizes = 3;
		} else {
			cfg.sizes[0] = 10;
			cfg.n_sizes = 1;
		}
	}
	if (!cfg.repeat)
		cfg.repeat = cfg.full ? 1000000 : 10000;
	if (!cfg.maglev_m)
		cfg.maglev_m = ROTA_MAGLEV_MAX_M;
	if (!maglev_size_valid(cfg.maglev_m)) {
		fprintf(stderr, "--maglev-m %u: must be a prime from %u to %u\n", cfg.maglev_m, ROTA_MAGLEV_MIN_M,
			ROTA_MAGLEV_MAX_M);
		return 2;
	}
	if (!cfg.runs)
		cfg.runs = cfg.full ? 7 : 1;
	if (cfg.runs < 1 || cfg.runs > MAX_RUNS || cfg.backends < 1 || cfg.backends > MAX_BACKENDS ||
	    (!cfg.random && !cfg.maglev)) {
		fprintf(stderr, "bad --runs (1-%d), --backends (1-%d) or --variants\n", MAX_RUNS, MAX_BACKENDS);
		return 2;
	}

	if (geteuid() != 0) {
		fprintf(stderr, "bench_datapath: needs root (BPF_PROG_TEST_RUN, bpffs); skipped\n");
		return 77;
	}
	if (!is_bpffs("/sys/fs/bpf") && !cfg.dir) {
		fprintf(stderr, "bench_datapath: /sys/fs/bpf is not a bpf filesystem: mount -t bpf bpf /sys/fs/bpf; skipped\n");
		return 77;
	}
	/* One CPU: test_run measures where it runs; moving mid-run adds noise. */
	if (cfg.cpu == -2)
		cfg.cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	if (cfg.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cfg.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			pr_warn("pin to CPU %d: %s (measuring unpinned)", cfg.cpu, strerror(errno));
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if (cfg.dir) {
		snprintf(base, sizeof(base), "%s", cfg.dir);
		if (!is_bpffs(base)) {
			fprintf(stderr, "bench_datapath: --dir %s is not on a bpf filesystem\n", base);
			return 2;
		}
	} else {
		snprintf(base, sizeof(base), "/sys/fs/bpf/rota-bench-XXXXXX");
		if (!mkdtemp(base)) {
			fprintf(stderr, "bench_datapath: mkdtemp %s: %s\n", base, strerror(errno));
			return 1;
		}
		base_made = true;
	}

	pts = calloc((size_t)cfg.n_sizes * 2, sizeof(*pts));
	if (!pts) {
		err = -ENOMEM;
		goto out;
	}
	fprintf(stderr, "bench: %s, repeat %u, %d run(s) per point, %d backends per service, Maglev tables "
		"of %u entries (cap %u), pinned to CPU %d\n", cfg.full ? "full benchmark" : "self-check",
		cfg.repeat, cfg.runs, cfg.backends, maglev_size_for((size_t)cfg.backends, ROTA_MAGLEV_MAX_M),
		cfg.maglev_m, cfg.cpu);

	/* Every point gets a datapath of its own holding exactly its services,
	 * all loaded at once and measured interleaved, so that drift and noise
	 * from elsewhere on the machine spread over every point alike. */
	for (int v = 0; v < 2 && !err && !stop; v++) {
		bool maglev = v == 1;

		if ((maglev && !cfg.maglev) || (!maglev && !cfg.random))
			continue;
		for (int i = 0; i < cfg.n_sizes && !err && !stop; i++) {
			struct point *p = &pts[npts++];
			double t0;

			p->variant = variants[v];
			p->services = cfg.sizes[i];
			err = variant_open(&p->vs, base, p->variant, p->services, &cfg, cfg.sizes[cfg.n_sizes - 1]);
			if (err)
				break;
			t0 = now_s();
			err = add_services(&p->vs.dp, 0, p->services, cfg.backends, maglev);
			p->program_s = now_s() - t0;
			if (!err)
				err = point_prepare(p, &cfg);
			if (!err)
				fprintf(stderr, "bench: %s: programmed %u services in %.2f s (%.0f services/s)\n",
					p->run.where, p->services, p->program_s, p->services / p->program_s);
			if (!err && maglev) {
				__u32 tables;
				unsigned long long bytes = maglev_tables_memlock(&p->vs.dp, &tables);

				fprintf(stderr, "bench: %s: %u Maglev tables, %.1f MiB of kernel memory\n",
					p->run.where, tables, bytes / 1048576.0);
			}
		}
	}
	/* Each case at every point back to back (seconds apart at most), in
	 * alternating order: the ratios between points see the same noise. */
	for (int round = 0; round < cfg.runs && !err && !stop; round++) {
		double t0 = now_s();

		for (int c = 0; c < C_MAX && !err; c++) {
			if (cfg.only && !(cfg.only & 1u << c))
				continue;
			for (int k = 0; k < npts && !err; k++)
				err = point_run_case(&pts[(round + c) & 1 ? npts - 1 - k : k], c, &cfg);
		}
		if (!err)
			fprintf(stderr, "bench: run %d of %d done in %.1f s\n", round + 1, cfg.runs, now_s() - t0);
	}
	if (stop) {
		fprintf(stderr, "bench: interrupted (signal %d); cleaning up\n", (int)stop);
		err = -EINTR;
		goto out;
	}
	if (npts) {
		printf("\nns/packet (BPF_PROG_TEST_RUN average per repeat), repeat %u, median (min-max) of %d run(s):\n\n",
		       cfg.repeat, cfg.runs);
		print_table(stdout, pts, npts, false);
		/* A self-check's short runs say nothing about the targets. */
		if (cfg.full)
			print_derived(stdout, pts, npts, false);
	}
	if (!err && cfg.csv)
		err = write_csv(cfg.csv, pts, npts, &cfg);
	if (!err && cfg.md)
		err = write_md(cfg.md, pts, npts, &cfg);
out:
	for (int i = 0; i < npts; i++)
		variant_close(&pts[i].vs);
	if (base_made)
		rmdir(base);
	free(pts);
	if (err) {
		fprintf(stderr, "bench_datapath: FAILED (%s)\n", strerror(-err));
		return 1;
	}
	printf("\nbench_datapath: %s: every program ran with the expected verdicts and counters\n",
	       cfg.full ? "benchmark done" : "self-check passed");
	return 0;
}
