/* Test harness for the BPF unit tests: loads the real datapath into a
 * private bpffs directory, runs frames through the pinned tc programs with
 * BPF_PROG_TEST_RUN, programs services through librota and reads the
 * pinned maps back (conntrack, fragments, Maglev tables, counters). */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "rota/maps.h"
#include "dp.h"
#include "pkt.h"

#define TC_ACT_OK       0
#define TC_ACT_SHOT     2
#define TC_ACT_REDIRECT 7

#define HAIRPIN_ADDR "169.254.42.1"

struct env {
	char dir[128];
	struct rota_dp dp;
	int from_pod;	/* prog fds */
	int to_pod;
};
extern struct env env;

/* cmocka group setup/teardown: load into /sys/fs/bpf/rota-test-bpf-<pid>,
 * and unload it again (also from atexit and on SIGINT/SIGTERM). */
int env_setup(void **state);
int env_teardown(void **state);
/* Exits 77 with a message when this machine cannot run the tests. */
void env_require(void);

/* Runs one frame through prog; returns the verdict, output in out. */
int run(int prog_fd, const struct frame *in, struct frame *out);

/* Programs VIP:port/proto with backends "a.b.c.d:port"; names listed in
 * terminating[] (may be NULL) are terminating. Returns the service id. */
uint32_t svc_set(const char *vip, uint16_t port, uint8_t proto, const char *const *backends,
		 size_t n, const char *const *terminating, size_t n_term, bool maglev);
/* The same with ClientIP affinity (timeout in seconds, 0 = off). */
uint32_t svc_set_affinity(const char *vip, uint16_t port, uint8_t proto, const char *const *backends,
			  size_t n, const char *const *terminating, size_t n_term, uint32_t affinity);
/* Backend id librota gave addr:port in the service VIP:port/proto. */
uint32_t backend_id(const char *vip, uint16_t port, uint8_t proto, const char *backend);

/* The Maglev table size the service's master entry names (0: none). */
uint32_t svc_maglev_m(const char *vip, uint16_t port, uint8_t proto);
/* Reads the service's Maglev table of m entries (rota_maglev4 key
 * (svc_id, m)) into table[0..m), asserting its shape: an array of
 * ceil(m / ROTA_MAGLEV_CHUNK) chunks, BPF_F_INNER_MAP, ids past m zero.
 * Returns the table's map id. */
uint32_t maglev_read(uint32_t svc_id, uint32_t m, uint32_t *table);
/* True if rota_maglev4 holds a table under (svc_id, m). */
bool maglev_has(uint32_t svc_id, uint32_t m);

/* The flow hash Maglev indexes with (bpf/lib/hash.h), computed here
 * independently; addresses and ports in network order. */
uint32_t flow_hash(uint32_t saddr, uint32_t daddr, uint16_t sport_n, uint16_t dport_n, uint8_t proto);
/* Runs p through prog, asserts the verdict and sane checksums; name gets
 * the output's destination "a.b.c.d:port" (the backend chosen). */
void run_chosen_prog(int prog, const struct pkt *p, int want_verdict, char name[32]);
/* The same through rota_from_pod. */
void run_chosen(const struct pkt *p, int want_verdict, char name[32]);

/* Conntrack entry for a tuple (addresses network order, ports host order);
 * false if absent. */
bool ct_get(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto,
	    uint8_t dir, struct rota_ct_entry *out);
void ct_put(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto,
	    uint8_t dir, const struct rota_ct_entry *val);
void ct_del(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto, uint8_t dir);

/* rota_stats summed over CPUs (packets per reason). */
void stats_read(uint64_t pk[ROTA_STAT_MAX]);
/* A snapshot, and how much one counter grew since. */
struct stats {
	uint64_t pk[ROTA_STAT_MAX];
};
void stats_snap(struct stats *s);
uint64_t stat_delta(const struct stats *before, unsigned int reason);

/* The backend list arguments of svc_set(): B("10.0.0.1:80", ...). */
#define B(...) (const char *const[]){ __VA_ARGS__ }, \
	sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)

/* Asserts the conntrack pair of a translated flow: FWD keyed by the client
 * tuple with nat = backend, REPLY keyed by backend → reply_dst (the client,
 * or the hairpin address) with nat = frontend. Returns the FWD entry. */
struct rota_ct_entry assert_ct_flow(const char *client, uint16_t cport, const char *vip,
				    uint16_t vport, uint8_t proto, const char *backend,
				    uint16_t bport, const char *reply_dst, uint32_t svc_id);

/* Asserts output == expected byte for byte, with a diff on failure. */
#define assert_frame_eq(got, want) \
	frame_assert_eq(got, want, #got " vs " #want, __FILE__, __LINE__)
void frame_assert_eq(const struct frame *got, const struct frame *want, const char *what,
		     const char *file, int line);

/* Runs in through prog; asserts TC_ACT_OK, that it came out as want byte
 * for byte, and that its checksums are right. out (may be NULL) gets it. */
void expect_out(int prog, const struct pkt *in, const struct pkt *want, struct frame *out);

/* Both tc programs must pass f unchanged byte for byte (TC_ACT_OK) or
 * drop it (TC_ACT_SHOT): never translate it. */
void assert_untouched(const char *what, const struct frame *f);

/* Asserts every checksum of an IPv4 TCP/UDP/ICMP frame is right. */
void assert_csums_ok(const struct frame *f);

/* Every entry of rota_svc4, rota_backends4, rota_maglev4 and rota_config,
 * sorted: equal snapshots mean equal maps. */
struct map_snap {
	uint8_t *rec;
	size_t n, size;
};
struct maps_snap {
	struct map_snap m[4];
};
void maps_snap(struct maps_snap *s);
/* Fails naming the first map that differs; frees both snapshots. */
void assert_maps_equal(struct maps_snap *a, struct maps_snap *b);
