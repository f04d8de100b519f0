/* BPF unit tests of input the datapath must not mistranslate: malformed and
 * truncated IPv4, non-IPv4 frames, IP options (IHL 6..15) and Ethernet
 * padding. Malformed input must pass (TC_ACT_OK) unchanged byte for byte,
 * or be dropped; valid but unusual input must be translated exactly. */
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "harness.h"
#include "tests.h"

#define VIP    "10.96.0.14"
#define CLIENT "10.0.0.14"
#define BE     "10.0.14.1"

static void setup_services(void)
{
	svc_set(VIP, 80, IPPROTO_TCP, B(BE ":8080"), NULL, 0, false);
	svc_set(VIP, 53, IPPROTO_UDP, B(BE ":5353"), NULL, 0, false);
}

static void base_syn(struct frame *f, uint16_t sport)
{
	struct pkt p = pkt_tcp(CLIENT, sport, VIP, 80, TCP_SYN);

	build(f, &p);
}

void test_malformed(void **state)
{
	struct frame f;
	struct stats st;
	struct rota_ct_entry ct;

	setup_services();
	stats_snap(&st);

	base_syn(&f, 40140);
	f.b[ETH_LEN] = 0x44;	/* IHL 4 */
	ip_csum_set(f.b, 20);
	assert_untouched("IHL 4", &f);

	base_syn(&f, 40141);
	f.b[ETH_LEN] = 0x40;	/* IHL 0 */
	ip_csum_set(f.b, 20);
	assert_untouched("IHL 0", &f);

	base_syn(&f, 40142);
	f.b[ETH_LEN] = 0x65;	/* version 6 in an IPv4 frame */
	ip_csum_set(f.b, 20);
	assert_untouched("version 6", &f);

	base_syn(&f, 40143);
	f.b[ETH_LEN] = 0x4f;	/* IHL 15: 60-byte header, longer than the datagram */
	ip_csum_set(f.b, 20);
	assert_untouched("IHL 15 beyond tot_len", &f);

	base_syn(&f, 40144);
	f.len -= 6;		/* frame cut inside the TCP header; tot_len still 40 */
	assert_untouched("tot_len > frame (cut)", &f);

	base_syn(&f, 40145);
	put16(f.b + ETH_LEN + 2, 41);	/* one byte more than the frame holds */
	ip_csum_set(f.b, 20);
	assert_untouched("tot_len > frame", &f);

	base_syn(&f, 40146);
	put16(f.b + ETH_LEN + 2, 16);	/* shorter than the header */
	ip_csum_set(f.b, 20);
	assert_untouched("tot_len < IHL", &f);

	base_syn(&f, 40147);
	put16(f.b + ETH_LEN + 2, 20 + 12);	/* TCP header truncated at 12 bytes */
	ip_csum_set(f.b, 20);
	f.len = ETH_LEN + 32;
	assert_untouched("truncated TCP header", &f);

	base_syn(&f, 40148);
	put16(f.b + ETH_LEN + 2, 20 + 12);	/* tot_len says 12 bytes of TCP; frame has 20 */
	ip_csum_set(f.b, 20);
	assert_untouched("TCP header beyond tot_len", &f);

	base_syn(&f, 40149);
	f.b[ETH_LEN + 20 + 12] = 4 << 4;	/* TCP data offset 4 */
	assert_untouched("TCP doff 4", &f);

	{
		struct pkt u = pkt_udp(CLIENT, 50140, VIP, 53, "query", 5);

		build(&f, &u);
		put16(f.b + ETH_LEN + 2, 20 + 6);	/* UDP header truncated */
		ip_csum_set(f.b, 20);
		f.len = ETH_LEN + 26;
		assert_untouched("truncated UDP header", &f);
	}

	/* An IPv4 frame shorter than 34 bytes (no room for the IP header) cannot
	 * be tested here: BPF_PROG_TEST_RUN refuses it with EINVAL before the
	 * program runs (likewise IPv6 under 54 bytes). parse_ipv4() meets it
	 * as a failing bpf_skb_load_bytes() and passes it. */

	{
		static const uint8_t echo[8] = { 0 };
		struct pkt e = pkt_icmp_err(CLIENT, VIP, 8, 0, echo, sizeof(echo));

		build(&f, &e);
		put16(f.b + ETH_LEN + 2, 20 + 4);	/* ICMP header truncated */
		ip_csum_set(f.b, 20);
		f.len = ETH_LEN + 24;
		assert_untouched("truncated ICMP header", &f);
	}

	/* None of these made a flow. */
	for (uint16_t sport = 40140; sport <= 40149; sport++)
		assert_false(ct_get(ip4(CLIENT), ip4(VIP), sport, 80, IPPROTO_TCP, ROTA_CT_FWD, &ct));
	assert_false(ct_get(ip4(CLIENT), ip4(VIP), 50140, 53, IPPROTO_UDP, ROTA_CT_FWD, &ct));
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_NEW), 0);
	assert_int_equal(stat_delta(&st, ROTA_STAT_XLATE_FWD), 0);
	assert_int_equal(stat_delta(&st, ROTA_STAT_XLATE_REPLY), 0);

	/* ICMP errors about a live flow whose quote is cut short. */
	{
		struct pkt syn = pkt_tcp(CLIENT, 40160, VIP, 80, TCP_SYN);
		struct frame in, x;
		struct pkt err;

		build(&in, &syn);
		assert_int_equal(run(env.from_pod, &in, &x), TC_ACT_OK);

		err = pkt_icmp_err(BE, CLIENT, 3, 3, x.b + ETH_LEN, 20);	/* no ports */
		build(&f, &err);
		assert_untouched("ICMP error quoting no ports", &f);

		err = pkt_icmp_err(BE, CLIENT, 3, 3, x.b + ETH_LEN, 12);	/* half an IP header */
		build(&f, &err);
		assert_untouched("ICMP error quoting half a header", &f);

		err = pkt_icmp_err(BE, CLIENT, 3, 3, x.b + ETH_LEN, 28);
		build(&f, &err);
		f.b[ETH_LEN + 20 + 8] = 0x44;	/* quoted IHL 4 */
		icmp_csum_set(f.b + ETH_LEN + 20, 8 + 28);
		assert_untouched("ICMP error quoting IHL 4", &f);
	}
	assert_int_equal(stat_delta(&st, ROTA_STAT_PASS_MALFORMED), 2 * 12);
}

void test_not_ipv4(void **state)
{
	struct frame f, ip;
	struct stats st;

	setup_services();
	stats_snap(&st);
	base_syn(&ip, 40170);

	/* ARP request who-has VIP, from the client. */
	{
		static const uint8_t arp[28] = {
			0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
			0x02, 0, 0, 0, 0, 0x0a, 10, 0, 0, 14,
			0, 0, 0, 0, 0, 0, 10, 96, 0, 14,
		};

		memcpy(f.b, ip.b, 12);
		put16(f.b + 12, 0x0806);
		memcpy(f.b + 14, arp, sizeof(arp));
		f.len = 14 + sizeof(arp);
		assert_untouched("ARP", &f);
	}
	/* IPv6 TCP SYN (with an IPv4 TCP SYN to the VIP in it for bait). */
	{
		memcpy(f.b, ip.b, 12);
		put16(f.b + 12, 0x86dd);
		memset(f.b + 14, 0, 40);
		f.b[14] = 0x60;
		put16(f.b + 14 + 4, 20);
		f.b[14 + 6] = IPPROTO_TCP;
		f.b[14 + 7] = 64;
		memcpy(f.b + 54, ip.b + 34, 20);
		f.len = 74;
		assert_untouched("IPv6", &f);
	}
	/* The IPv4 SYN with a 802.1Q tag: ethertype 0x8100. */
	{
		memcpy(f.b, ip.b, 12);
		put16(f.b + 12, 0x8100);
		put16(f.b + 14, 100);
		memcpy(f.b + 16, ip.b + 12, ip.len - 12);
		f.len = ip.len + 4;
		assert_untouched("VLAN-tagged IPv4", &f);
	}
	/* A bare Ethernet header (ARP ethertype, no payload). */
	{
		memcpy(f.b, ip.b, 12);
		put16(f.b + 12, 0x0806);
		f.len = ETH_LEN;
		assert_untouched("Ethernet header only", &f);
	}
	/* IPv4 bytes behind a non-IPv4 ethertype. */
	{
		f = ip;
		put16(f.b + 12, 0x88b5);
		assert_untouched("IPv4 bytes, local experimental ethertype", &f);
	}
	assert_int_equal(stat_delta(&st, ROTA_STAT_PASS_NOT_IP), 2 * 5);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_NEW), 0);
}

void test_ip_options(void **state)
{
	struct rota_ct_entry ct;

	setup_services();
	for (uint8_t ihl = 6; ihl <= 15; ihl++) {
		struct pkt syn = pkt_tcp(CLIENT, (uint16_t)(40200 + ihl), VIP, 80, TCP_SYN);
		struct pkt synack = pkt_tcp(BE, 8080, CLIENT, (uint16_t)(40200 + ihl), TCP_SYN | TCP_ACK);
		struct pkt q = pkt_udp(CLIENT, (uint16_t)(50200 + ihl), VIP, 53, "query", 5);
		struct pkt w;
		struct frame in, out, want;

		syn.ihl = synack.ihl = q.ihl = ihl;

		build(&in, &syn);
		assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);
		w = syn;
		w.daddr = ip4(BE);
		w.dport = 8080;
		build(&want, &w);
		assert_frame_eq(&out, &want);
		assert_csums_ok(&out);
		assert_true(ct_get(ip4(CLIENT), ip4(VIP), 40200 + ihl, 80, IPPROTO_TCP, ROTA_CT_FWD, &ct));
		assert_int_equal(ct.nat_port, htons(8080));

		build(&in, &synack);
		assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
		w = synack;
		w.saddr = ip4(VIP);
		w.sport = 80;
		build(&want, &w);
		assert_frame_eq(&out, &want);
		assert_csums_ok(&out);

		build(&in, &q);
		assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);
		w = q;
		w.daddr = ip4(BE);
		w.dport = 5353;
		build(&want, &w);
		assert_frame_eq(&out, &want);
		assert_csums_ok(&out);
	}
}

void test_eth_padding(void **state)
{
	struct pkt q = pkt_udp(CLIENT, 50300, VIP, 53, "hi", 2);
	struct pkt syn = pkt_tcp(CLIENT, 40300, VIP, 80, TCP_SYN);
	struct pkt wq = q, ws = syn;
	struct frame in, out, want;

	setup_services();
	wq.daddr = ws.daddr = ip4(BE);
	wq.dport = 5353;
	ws.dport = 8080;

	/* 44-byte frame padded to the 60-byte minimum with non-zero bytes. */
	build(&in, &q);
	build(&want, &wq);
	memset(in.b + in.len, 0xaa, 60 - in.len);
	memset(want.b + want.len, 0xaa, 60 - want.len);
	in.len = want.len = 60;
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);
	assert_frame_eq(&out, &want);
	assert_csums_ok(&out);

	build(&in, &syn);
	build(&want, &ws);
	memset(in.b + in.len, 0xaa, 60 - in.len);
	memset(want.b + want.len, 0xaa, 60 - want.len);
	in.len = want.len = 60;
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);
	assert_frame_eq(&out, &want);
	assert_csums_ok(&out);
}
