/* BPF unit tests of IPv4 fragments: the first fragment carries the ports
 * and is translated like any datagram (its L4 checksum covers the whole
 * datagram) and recorded in rota_frag4; later fragments follow it; a later
 * fragment with no known first fragment passes as it is. Fragmented
 * hairpin traffic must come back into the pod whole. */
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "harness.h"
#include "tests.h"

#define VIP    "10.96.0.17"
#define CLIENT "10.0.0.17"
#define BE     "10.0.17.1"

static void setup_service(void)
{
	svc_set(VIP, 53, IPPROTO_UDP, B(BE ":5353"), NULL, 0, false);
}

/* Splits datagram p at byte `at` of its L4 part (a multiple of 8) into a
 * first fragment (MF) and a last one. */
static void fragments(const struct pkt *p, size_t at, struct frame *f1, struct frame *f2)
{
	uint8_t l4[FRAME_MAX];
	size_t n = build_l4(l4, p);
	struct pkt q = *p;

	q.frag = 0x2000;
	f1->len = build_ip_frame(f1->b, &q, l4, at);
	q.frag = (uint16_t)(at / 8);
	f2->len = build_ip_frame(f2->b, &q, l4 + at, n - at);
}

/* UDP checksum of the datagram reassembled from two fragment frames. */
static bool reassembled_csum_ok(const struct frame *f1, const struct frame *f2)
{
	uint8_t ph[12], *ip = (uint8_t *)f1->b + ETH_LEN;
	size_t l1 = ip_totlen(f1->b) - ip_hlen(f1->b), l2 = ip_totlen(f2->b) - ip_hlen(f2->b);
	uint32_t s;

	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = ip[9];
	put16(ph + 10, (uint16_t)(l1 + l2));
	s = sum16(ph, 12, 0);
	s = sum16(f1->b + ETH_LEN + ip_hlen(f1->b), l1, s);	/* l1 is even */
	s = sum16(f2->b + ETH_LEN + ip_hlen(f2->b), l2, s);
	return csum_finish(s) == 0 && memcmp(ip + 12, f2->b + ETH_LEN + 12, 8) == 0;
}

static uint8_t frag_payload[64];

void test_fragments(void **state)
{
	struct pkt q = pkt_udp(CLIENT, 50400, VIP, 53, frag_payload, sizeof(frag_payload));
	struct pkt w = q;
	struct frame f1, f2, o1, o2, w1, w2;
	struct rota_frag_key key = { 0 };
	struct rota_frag_val val;
	struct stats st;

	setup_service();
	for (size_t i = 0; i < sizeof(frag_payload); i++)
		frag_payload[i] = (uint8_t)(i * 7 + 1);
	q.id = 0x1234;
	w = q;
	w.daddr = ip4(BE);
	w.dport = 5353;
	fragments(&q, 32, &f1, &f2);
	fragments(&w, 32, &w1, &w2);
	stats_snap(&st);

	/* First fragment: carries the UDP header, translated like any datagram
	 * (its checksum covers the whole datagram) and recorded. */
	assert_int_equal(run(env.from_pod, &f1, &o1), TC_ACT_OK);
	assert_frame_eq(&o1, &w1);
	assert_true(ip_csum_ok(o1.b));
	key.saddr = ip4(CLIENT);
	key.daddr = ip4(VIP);
	key.id = htons(0x1234);
	key.proto = IPPROTO_UDP;
	assert_int_equal(bpf_map_lookup_elem(env.dp.frag_fd, &key, &val), 0);
	assert_int_equal(val.nat_addr, ip4(BE));
	assert_int_equal(val.sport, htons(50400));

	/* Later fragment: no ports, same new destination, payload untouched. */
	assert_int_equal(run(env.from_pod, &f2, &o2), TC_ACT_OK);
	assert_frame_eq(&o2, &w2);
	assert_true(ip_csum_ok(o2.b));
	assert_true(reassembled_csum_ok(&o1, &o2));
	assert_int_equal(stat_delta(&st, ROTA_STAT_XLATE_FWD), 2);
}

void test_fragments_reply(void **state)
{
	struct pkt q = pkt_udp(CLIENT, 50401, VIP, 53, "query", 5);
	struct pkt r = pkt_udp(BE, 5353, CLIENT, 50401, frag_payload, sizeof(frag_payload));
	struct pkt w;
	struct frame in, out, f1, f2, o1, o2, w1, w2;

	setup_service();
	build(&in, &q);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);

	r.id = 0x2345;
	w = r;
	w.saddr = ip4(VIP);
	w.sport = 53;
	fragments(&r, 40, &f1, &f2);
	fragments(&w, 40, &w1, &w2);
	assert_int_equal(run(env.to_pod, &f1, &o1), TC_ACT_OK);
	assert_frame_eq(&o1, &w1);
	assert_int_equal(run(env.to_pod, &f2, &o2), TC_ACT_OK);
	assert_frame_eq(&o2, &w2);
	assert_true(ip_csum_ok(o1.b) && ip_csum_ok(o2.b));
	assert_true(reassembled_csum_ok(&o1, &o2));
}

void test_fragment_unknown(void **state)
{
	struct pkt q = pkt_udp(CLIENT, 50402, VIP, 53, frag_payload, sizeof(frag_payload));
	struct frame f1, f2, out;
	struct stats st;

	setup_service();
	q.id = 0x5678;
	fragments(&q, 32, &f1, &f2);
	stats_snap(&st);

	/* The first fragment was never seen (lost, or reordered behind): the
	 * later one passes as it is. */
	assert_int_equal(run(env.from_pod, &f2, &out), TC_ACT_OK);
	assert_frame_eq(&out, &f2);
	assert_int_equal(run(env.to_pod, &f2, &out), TC_ACT_OK);
	assert_frame_eq(&out, &f2);
	assert_int_equal(stat_delta(&st, ROTA_STAT_PASS_FRAGMENT), 2);

	/* A first fragment too short to hold the UDP header: malformed, passes,
	 * and so does its later fragment. */
	{
		struct frame g1, g2;
		struct pkt s = q;

		s.id = 0x5679;
		fragments(&s, 8, &g1, &g2);
		put16(g1.b + ETH_LEN + 2, 20 + 4);
		g1.len = ETH_LEN + 24;
		ip_csum_set(g1.b, 20);
		assert_untouched("first fragment with 4 bytes of UDP", &g1);
		assert_untouched("its later fragment", &g2);
	}
}

/* A fragmented datagram a pod sends to its own service (hairpin): every
 * fragment must come back into the pod from the hairpin address, not only
 * the first one, or the pod cannot reassemble it. */
void test_fragments_hairpin(void **state)
{
	const char *vip = "10.96.0.24", *pod = "10.0.0.24";
	struct pkt q = pkt_udp(pod, 50024, vip, 53, frag_payload, sizeof(frag_payload));
	struct pkt w;
	struct frame f1, f2, o1, o2, w1, w2;
	int verdict;

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.0.24:5353"), NULL, 0, false);
	q.id = 0x3456;
	w = q;
	w.saddr = ip4(HAIRPIN_ADDR);
	w.daddr = ip4(pod);
	w.dport = 5353;
	memcpy(w.smac, q.dmac, 6);
	memcpy(w.dmac, q.smac, 6);
	fragments(&q, 32, &f1, &f2);
	fragments(&w, 32, &w1, &w2);

	assert_int_equal(run(env.from_pod, &f1, &o1), TC_ACT_REDIRECT);
	assert_frame_eq(&o1, &w1);
	verdict = run(env.from_pod, &f2, &o2);
	assert_frame_eq(&o2, &w2);
	assert_int_equal(verdict, TC_ACT_REDIRECT);
	assert_true(reassembled_csum_ok(&o1, &o2));
}

/* The pod's fragmented answer to the hairpin address: every fragment must
 * come back from VIP:port. */
void test_fragments_hairpin_reply(void **state)
{
	const char *vip = "10.96.0.25", *pod = "10.0.0.25";
	struct pkt q = pkt_udp(pod, 50025, vip, 53, "query", 5);
	struct pkt r = pkt_udp(pod, 5353, HAIRPIN_ADDR, 50025, frag_payload, sizeof(frag_payload));
	struct pkt w;
	struct frame in, out, f1, f2, o1, o2, w1, w2;
	int verdict;

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.0.25:5353"), NULL, 0, false);
	build(&in, &q);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);

	r.id = 0x4567;
	w = r;
	w.saddr = ip4(vip);
	w.sport = 53;
	w.daddr = ip4(pod);
	memcpy(w.smac, r.dmac, 6);
	memcpy(w.dmac, r.smac, 6);
	fragments(&r, 32, &f1, &f2);
	fragments(&w, 32, &w1, &w2);

	assert_int_equal(run(env.from_pod, &f1, &o1), TC_ACT_REDIRECT);
	assert_frame_eq(&o1, &w1);
	verdict = run(env.from_pod, &f2, &o2);
	assert_frame_eq(&o2, &w2);
	assert_int_equal(verdict, TC_ACT_REDIRECT);
	assert_true(reassembled_csum_ok(&o1, &o2));
}
