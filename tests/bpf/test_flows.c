/* BPF unit tests of flows across control-plane changes and tuple reuse:
 * an established TCP flow outlives its Service, a UDP flow leaves a
 * removed backend at once, and a pod reusing a translated flow's source
 * port to talk to that backend directly gets its replies untranslated. */
#include <string.h>
#include <arpa/inet.h>
#include "harness.h"
#include "tests.h"
#include "svc.h"

/* from_pod DNATs p to addr:port. */
static void expect_fwd(const struct pkt *p, const char *addr, uint16_t port)
{
	struct pkt w = *p;

	w.daddr = ip4(addr);
	w.dport = port;
	expect_out(env.from_pod, p, &w, NULL);
}

/* to_pod rewrites the reply p to come from addr:port. */
static void expect_rev(const struct pkt *p, const char *addr, uint16_t port)
{
	struct pkt w = *p;

	w.saddr = ip4(addr);
	w.sport = port;
	expect_out(env.to_pod, p, &w, NULL);
}

void test_flow_outlives_service(void **state)
{
	const char *vip = "10.96.0.30", *client = "10.0.0.30", *be = "10.0.30.1";
	struct rota_frontend fe = { .addr = ip4(vip), .port = htons(80), .proto = IPPROTO_TCP };
	struct pkt syn = pkt_tcp(client, 40030, vip, 80, TCP_SYN);
	struct pkt ack = pkt_tcp(client, 40030, vip, 80, TCP_ACK);
	struct pkt reply = pkt_tcp(be, 8080, client, 40030, TCP_ACK);
	struct pkt other = pkt_tcp(client, 40031, vip, 80, TCP_SYN);
	struct stats st;

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.30.1:8080"), NULL, 0, false);
	expect_fwd(&syn, be, 8080);
	assert_int_equal(rota_svc_delete(&env.dp, &fe), 0);

	/* The Service is gone: its established flow still reaches its backend
	 * both ways, as netfilter's conntrack keeps a DNATed flow going. */
	stats_snap(&st);
	expect_fwd(&ack, be, 8080);
	expect_rev(&reply, vip, 80);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_HIT), 1);

	/* A new connection to the deleted frontend is not translated. */
	stats_snap(&st);
	expect_out(env.from_pod, &other, &other, NULL);
	assert_int_equal(stat_delta(&st, ROTA_STAT_PASS_NOT_SERVICE), 1);
}

void test_udp_backend_removed(void **state)
{
	const char *vip = "10.96.0.31", *client = "10.0.0.31";
	struct pkt q = pkt_udp(client, 50031, vip, 53, "query", 5);
	struct pkt old_reply = pkt_udp("10.0.31.1", 5353, client, 50031, "answer", 6);
	struct rota_ct_entry e;
	struct stats st;
	uint32_t svc;

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.31.1:5353"), NULL, 0, false);
	expect_fwd(&q, "10.0.31.1", 5353);

	/* The backend leaves: a UDP client that keeps sending from the same
	 * port (a resolver) moves on at once instead of talking to nobody. */
	svc = svc_set(vip, 53, IPPROTO_UDP, B("10.0.31.2:5353"), NULL, 0, false);
	stats_snap(&st);
	expect_fwd(&q, "10.0.31.2", 5353);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_NEW), 1);
	e = assert_ct_flow(client, 50031, vip, 53, IPPROTO_UDP, "10.0.31.2", 5353, client, svc);
	assert_int_equal(e.packets, 1);
	/* The old flow's reply tuple went with it. */
	assert_false(ct_get(ip4("10.0.31.1"), ip4(client), 5353, 50031, IPPROTO_UDP, ROTA_CT_REPLY, &e));
	expect_out(env.to_pod, &old_reply, &old_reply, NULL);
}

/* A pod sends through the frontend, then from the same port straight to
 * the backend it got (a pod-IP connection, or socket LB, which leaves the
 * packet already translated). The backend sees one tuple for both: the
 * direct flow wins, and its replies must reach the pod untranslated. */
static void direct_after_translated(const char *vip, const char *client, const char *be,
				    struct pkt first, struct pkt direct, struct pkt reply)
{
	struct rota_ct_entry e;
	struct stats st;

	expect_fwd(&first, be, 8080);
	expect_rev(&reply, vip, first.dport);

	stats_snap(&st);
	expect_out(env.from_pod, &direct, &direct, NULL);
	assert_int_equal(stat_delta(&st, ROTA_STAT_PASS_NOT_SERVICE), 1);
	assert_false(ct_get(ip4(be), ip4(client), 8080, first.sport, first.proto, ROTA_CT_REPLY, &e));
	assert_false(ct_get(ip4(client), ip4(vip), first.sport, first.dport, first.proto, ROTA_CT_FWD, &e));
	expect_out(env.to_pod, &reply, &reply, NULL);
}

void test_udp_direct_reuses_reply_tuple(void **state)
{
	const char *vip = "10.96.0.32", *client = "10.0.0.32", *be = "10.0.32.1";

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.32.1:8080"), NULL, 0, false);
	direct_after_translated(vip, client, be,
				pkt_udp(client, 50032, vip, 53, "via vip", 7),
				pkt_udp(client, 50032, be, 8080, "direct", 6),
				pkt_udp(be, 8080, client, 50032, "answer", 6));
}

void test_tcp_direct_reuses_reply_tuple(void **state)
{
	const char *vip = "10.96.0.33", *client = "10.0.0.33", *be = "10.0.33.1";
	struct pkt est = pkt_tcp(be, 8080, client, 40033, TCP_ACK);
	struct pkt syn = pkt_tcp(client, 40033, vip, 80, TCP_SYN);
	struct pkt stray = pkt_tcp(client, 40033, be, 8080, TCP_ACK);

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.33.1:8080"), NULL, 0, false);
	/* Only a SYN starts a direct flow: a stray ACK to the backend leaves
	 * the translated flow alone. */
	expect_fwd(&syn, be, 8080);
	expect_out(env.from_pod, &stray, &stray, NULL);
	expect_rev(&est, vip, 80);

	direct_after_translated(vip, client, be,
				pkt_tcp(client, 40033, vip, 80, TCP_ACK),
				pkt_tcp(client, 40033, be, 8080, TCP_SYN),
				pkt_tcp(be, 8080, client, 40033, TCP_SYN | TCP_ACK));
}
