/* BPF unit tests of ICMP errors about translated flows: an error a backend
 * (or a router) sends about the client's DNATed packet must reach the
 * client quoting the packet as the client sent it (to VIP:port), and an
 * error the client sends about a reply must reach the backend quoting what
 * the backend sent. Checked byte for byte, so the quoted IP header, the
 * quoted L4 checksum and the ICMP checksum are all verified. */
#include <string.h>
#include <arpa/inet.h>
#include "harness.h"
#include "tests.h"

#define ICMP_UNREACH      3
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED  4
#define ICMP_TIME_EXCEED  11

/* Sends p through from_pod; returns input and output frames. */
static void forward(const struct pkt *p, struct frame *in, struct frame *out)
{
	build(in, p);
	assert_int_equal(run(env.from_pod, in, out), TC_ACT_OK);
	assert_csums_ok(out);
}

/* Runs an ICMP error through prog and asserts it becomes exactly want. */
static void expect_icmp(int prog, const struct pkt *err, const struct pkt *want)
{
	struct frame out;

	expect_out(prog, err, want, &out);
	assert_true(ip_hdr_csum_ok_at(out.b + ETH_LEN + ip_hlen(out.b) + 8));
}

void test_icmp_err_to_pod_udp(void **state)
{
	const char *vip = "10.96.0.9", *client = "10.0.0.9", *be = "10.0.9.1";
	struct pkt q = pkt_udp(client, 50009, vip, 53, "query", 5);
	struct frame orig, xlated;
	struct stats st;

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.9.1:5353"), NULL, 0, false);
	forward(&q, &orig, &xlated);

	/* Port unreachable from the backend, quoting client → backend (the
	 * IP header and 8 bytes: the UDP header with its checksum). */
	stats_snap(&st);
	{
		struct pkt err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_PORT_UNREACH,
					      xlated.b + ETH_LEN, 28);
		struct pkt want = pkt_icmp_err(vip, client, ICMP_UNREACH, ICMP_PORT_UNREACH,
					       orig.b + ETH_LEN, 28);

		expect_icmp(env.to_pod, &err, &want);
	}
	/* The whole datagram quoted. */
	{
		size_t len = ip_totlen(xlated.b);
		struct pkt err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_PORT_UNREACH,
					      xlated.b + ETH_LEN, len);
		struct pkt want = pkt_icmp_err(vip, client, ICMP_UNREACH, ICMP_PORT_UNREACH,
					       orig.b + ETH_LEN, len);

		expect_icmp(env.to_pod, &err, &want);
	}
	/* Time exceeded from a router on the way: its own address stays. */
	{
		struct pkt err = pkt_icmp_err("10.0.99.1", client, ICMP_TIME_EXCEED, 0,
					      xlated.b + ETH_LEN, 28);
		struct pkt want = pkt_icmp_err("10.0.99.1", client, ICMP_TIME_EXCEED, 0,
					       orig.b + ETH_LEN, 28);

		expect_icmp(env.to_pod, &err, &want);
	}
	/* A quoted UDP header without checksum (0) keeps it 0. */
	{
		struct pkt nc = pkt_udp(client, 50019, vip, 53, "query", 5);
		struct frame o2, x2;
		struct pkt err, want;

		nc.udp_no_csum = true;
		forward(&nc, &o2, &x2);
		err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_PORT_UNREACH, x2.b + ETH_LEN, 28);
		want = pkt_icmp_err(vip, client, ICMP_UNREACH, ICMP_PORT_UNREACH, o2.b + ETH_LEN, 28);
		expect_icmp(env.to_pod, &err, &want);
	}
	assert_int_equal(stat_delta(&st, ROTA_STAT_XLATE_ICMP), 4);

	/* An error about a flow rota never translated passes untouched. */
	{
		struct pkt other = pkt_udp(client, 50099, be, 5353, "query", 5);
		struct frame of, in, out;
		struct pkt err;

		build(&of, &other);
		err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_PORT_UNREACH, of.b + ETH_LEN, 28);
		build(&in, &err);
		assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
		assert_frame_eq(&out, &in);
	}
}

void test_icmp_err_to_pod_tcp_frag_needed(void **state)
{
	const char *vip = "10.96.0.10", *client = "10.0.0.10", *be = "10.0.10.1";
	struct pkt syn = pkt_tcp(client, 40010, vip, 80, TCP_SYN);
	struct frame orig, xlated;
	uint32_t mtu = htonl(1400);	/* unused 16 bits, next-hop MTU */

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.10.1:8080"), NULL, 0, false);
	forward(&syn, &orig, &xlated);

	/* Whole IP + TCP header quoted: the TCP checksum is in the quote. */
	{
		struct pkt err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_FRAG_NEEDED,
					      xlated.b + ETH_LEN, 40);
		struct pkt want = pkt_icmp_err(vip, client, ICMP_UNREACH, ICMP_FRAG_NEEDED,
					       orig.b + ETH_LEN, 40);

		err.icmp_rest = want.icmp_rest = mtu;
		expect_icmp(env.to_pod, &err, &want);
	}
	/* The RFC 792 minimum: IP header + 8 bytes (ports and sequence). */
	{
		struct pkt err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_FRAG_NEEDED,
					      xlated.b + ETH_LEN, 28);
		struct pkt want = pkt_icmp_err(vip, client, ICMP_UNREACH, ICMP_FRAG_NEEDED,
					       orig.b + ETH_LEN, 28);

		err.icmp_rest = want.icmp_rest = mtu;
		expect_icmp(env.to_pod, &err, &want);
	}
	/* A quoted header with IP options: the ports are after them. */
	{
		struct frame o2, x2;
		struct pkt err, want;

		syn.ihl = 7;
		syn.tcp_flags = TCP_ACK;
		forward(&syn, &o2, &x2);
		err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_FRAG_NEEDED, x2.b + ETH_LEN, 28 + 20);
		want = pkt_icmp_err(vip, client, ICMP_UNREACH, ICMP_FRAG_NEEDED, o2.b + ETH_LEN, 28 + 20);
		err.icmp_rest = want.icmp_rest = mtu;
		expect_icmp(env.to_pod, &err, &want);
	}
}

void test_icmp_err_from_pod(void **state)
{
	const char *vip = "10.96.0.11", *client = "10.0.0.11", *be = "10.0.11.1";
	struct pkt q = pkt_udp(client, 50011, vip, 53, "query", 5);
	struct pkt r = pkt_udp(be, 5353, client, 50011, "answer", 6);
	struct frame o, x, reply_in, reply_out;

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.11.1:5353"), NULL, 0, false);
	forward(&q, &o, &x);
	build(&reply_in, &r);
	assert_int_equal(run(env.to_pod, &reply_in, &reply_out), TC_ACT_OK);

	/* The client's socket is gone: port unreachable about VIP:53 → client;
	 * the backend must see it about its own reply. */
	{
		struct pkt err = pkt_icmp_err(client, vip, ICMP_UNREACH, ICMP_PORT_UNREACH,
					      reply_out.b + ETH_LEN, 28);
		struct pkt want = pkt_icmp_err(client, be, ICMP_UNREACH, ICMP_PORT_UNREACH,
					       reply_in.b + ETH_LEN, 28);

		expect_icmp(env.from_pod, &err, &want);
	}
}

/* A frame longer than its IP datagram (Ethernet trailer): only the bytes
 * tot_len covers are the ICMP message; the trailer is not part of the quote
 * and must neither be rewritten nor counted in the ICMP checksum. */
void test_icmp_err_with_eth_trailer(void **state)
{
	const char *vip = "10.96.0.18", *client = "10.0.0.18", *be = "10.0.18.1";
	struct pkt syn = pkt_tcp(client, 40018, vip, 80, TCP_SYN);
	struct frame orig, xlated, in, out, want;
	struct pkt err, w;

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.18.1:8080"), NULL, 0, false);
	forward(&syn, &orig, &xlated);
	err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_PORT_UNREACH, xlated.b + ETH_LEN, 28);
	w = pkt_icmp_err(vip, client, ICMP_UNREACH, ICMP_PORT_UNREACH, orig.b + ETH_LEN, 28);
	build(&in, &err);
	build(&want, &w);
	memset(in.b + in.len, 0, 20);	/* 20 zero bytes of trailer */
	memset(want.b + want.len, 0, 20);
	in.len += 20;
	want.len += 20;

	assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
	assert_frame_eq(&out, &want);
	assert_true(icmp_csum_ok(out.b));
}

/* A quote with no ports, in a frame whose trailer happens to hold the
 * flow's ports: the flow cannot be told, the frame must pass as it is. */
void test_icmp_err_ports_in_trailer(void **state)
{
	const char *vip = "10.96.0.23", *client = "10.0.0.23", *be = "10.0.23.1";
	struct pkt syn = pkt_tcp(client, 40023, vip, 80, TCP_SYN);
	struct frame orig, xlated, in, out;
	struct pkt err;

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.23.1:8080"), NULL, 0, false);
	forward(&syn, &orig, &xlated);
	err = pkt_icmp_err(be, client, ICMP_UNREACH, ICMP_PORT_UNREACH, xlated.b + ETH_LEN, 20);
	build(&in, &err);
	memset(in.b + in.len, 0, 20);
	memcpy(in.b + in.len, xlated.b + ETH_LEN + 20, 4);	/* 8080 → 40023 */
	in.len += 20;
	assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
	assert_frame_eq(&out, &in);
}
