/* BPF unit tests of TCP/UDP translation on the tc path: DNAT of new flows,
 * conntrack hits and reverse NAT, UDP checksum corner cases, Maglev,
 * terminating backends, the port-unreachable reply for a service without
 * backends, and hairpin. Each case programs its own frontend (10.96.0.x)
 * so cases do not depend on each other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "harness.h"
#include "tests.h"
#include "maglev.h"

/* Runs in through from_pod and asserts it comes out DNATed to baddr:bport,
 * everything else byte for byte the same. */
static void expect_dnat(const struct pkt *in_pkt, const char *baddr, uint16_t bport)
{
	struct frame in, out, want;
	struct pkt w = *in_pkt;

	build(&in, in_pkt);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);
	w.daddr = ip4(baddr);
	w.dport = bport;
	build(&want, &w);
	assert_frame_eq(&out, &want);
	assert_csums_ok(&out);
}

/* A new TCP flow client:sport → vip:80; name gets the backend chosen. */
static void syn_chosen(const char *client, uint16_t sport, const char *vip, char name[32])
{
	struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);

	run_chosen(&syn, TC_ACT_OK, name);
}

void test_tcp_syn_dnat(void **state)
{
	uint32_t svc = svc_set("10.96.0.1", 80, IPPROTO_TCP, B("10.0.1.1:8080"), NULL, 0, false);
	struct pkt p = pkt_tcp("10.0.0.1", 40001, "10.96.0.1", 80, TCP_SYN);
	struct rota_ct_entry fwd, rev;
	struct frame in;
	struct stats st;

	build(&in, &p);
	stats_snap(&st);
	expect_dnat(&p, "10.0.1.1", 8080);

	fwd = assert_ct_flow("10.0.0.1", 40001, "10.96.0.1", 80, IPPROTO_TCP, "10.0.1.1", 8080,
			     "10.0.0.1", svc);
	assert_int_equal(fwd.backend_id, backend_id("10.96.0.1", 80, IPPROTO_TCP, "10.0.1.1:8080"));
	assert_int_equal(fwd.packets, 1);
	assert_int_equal(fwd.bytes, in.len);
	assert_int_equal(fwd.state, ROTA_CT_NEW);
	assert_int_equal(fwd.flags, 0);
	assert_true(ct_get(ip4("10.0.1.1"), ip4("10.0.0.1"), 8080, 40001, IPPROTO_TCP, ROTA_CT_REPLY, &rev));
	assert_int_equal(rev.packets, 0);
	assert_int_equal(rev.state, ROTA_CT_NEW);

	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_NEW), 1);
	assert_int_equal(stat_delta(&st, ROTA_STAT_XLATE_FWD), 1);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_HIT), 0);
	assert_int_equal(stat_delta(&st, ROTA_STAT_DROP_ERROR), 0);
}

void test_tcp_ct_hit(void **state)
{
	static const char *const all[] = { "10.0.2.1:8080", "10.0.2.2:8080", "10.0.2.3:8080" };
	const char *vip = "10.96.0.2", *client = "10.0.0.2", *rest[2];
	uint32_t svc = svc_set(vip, 80, IPPROTO_TCP, all, 3, NULL, 0, false);
	size_t n = 0;
	struct pkt syn = pkt_tcp(client, 40002, vip, 80, TCP_SYN);
	struct pkt ack = pkt_tcp(client, 40002, vip, 80, TCP_ACK | TCP_PSH);
	char first[32], again[32], baddr[32];
	struct rota_ct_entry fwd;
	struct frame in_syn, in_ack;
	struct stats st;

	ack.payload = (const uint8_t *)"hello";	/* odd length: the sum's last byte is padded */
	ack.plen = 5;
	build(&in_syn, &syn);
	build(&in_ack, &ack);

	stats_snap(&st);
	run_chosen(&syn, TC_ACT_OK, first);
	run_chosen(&ack, TC_ACT_OK, again);
	assert_string_equal(again, first);

	snprintf(baddr, sizeof(baddr), "%s", first);
	*strchr(baddr, ':') = 0;
	fwd = assert_ct_flow(client, 40002, vip, 80, IPPROTO_TCP, baddr, 8080, client, svc);
	assert_int_equal(fwd.packets, 2);
	assert_int_equal(fwd.bytes, in_syn.len + in_ack.len);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_NEW), 1);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_HIT), 1);
	assert_int_equal(stat_delta(&st, ROTA_STAT_XLATE_FWD), 2);

	/* Exact bytes of the conntrack hit. */
	expect_dnat(&ack, baddr, 8080);

	/* The flow keeps its backend when that backend leaves the service. */
	for (size_t i = 0; i < 3; i++)
		if (strcmp(all[i], first))
			rest[n++] = all[i];
	assert_int_equal(n, 2);
	svc_set(vip, 80, IPPROTO_TCP, rest, n, NULL, 0, false);
	for (int i = 0; i < 10; i++) {
		run_chosen(&ack, TC_ACT_OK, again);
		assert_string_equal(again, first);
	}
	assert_true(ct_get(ip4(client), ip4(vip), 40002, 80, IPPROTO_TCP, ROTA_CT_FWD, &fwd));
	assert_int_equal(fwd.packets, 13);
}

void test_tcp_reply_rev_nat(void **state)
{
	const char *vip = "10.96.0.3", *client = "10.0.0.3", *be = "10.0.3.1";
	uint32_t svc = svc_set(vip, 80, IPPROTO_TCP, B("10.0.3.1:8080"), NULL, 0, false);
	struct pkt syn = pkt_tcp(client, 40003, vip, 80, TCP_SYN);
	struct pkt synack = pkt_tcp(be, 8080, client, 40003, TCP_SYN | TCP_ACK);
	struct pkt stray = pkt_tcp(be, 8080, client, 40999, TCP_ACK);
	struct pkt want = synack;
	struct frame in, out, wf;
	struct rota_ct_entry fwd, rev;
	struct stats st;

	expect_dnat(&syn, be, 8080);

	stats_snap(&st);
	build(&in, &synack);
	assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
	want.saddr = ip4(vip);
	want.sport = 80;
	build(&wf, &want);
	assert_frame_eq(&out, &wf);
	assert_csums_ok(&out);
	assert_int_equal(stat_delta(&st, ROTA_STAT_XLATE_REPLY), 1);

	fwd = assert_ct_flow(client, 40003, vip, 80, IPPROTO_TCP, be, 8080, client, svc);
	assert_int_equal(fwd.state, ROTA_CT_ESTABLISHED);
	assert_true(ct_get(ip4(be), ip4(client), 8080, 40003, IPPROTO_TCP, ROTA_CT_REPLY, &rev));
	assert_int_equal(rev.packets, 1);
	assert_int_equal(rev.bytes, in.len);
	assert_int_equal(rev.state, ROTA_CT_ESTABLISHED);
	assert_true(rev.flags & ROTA_CT_F_SEEN_REPLY);

	/* A backend packet with no flow behind it passes untouched. */
	stats_snap(&st);
	build(&in, &stray);
	assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
	assert_frame_eq(&out, &in);
	assert_int_equal(stat_delta(&st, ROTA_STAT_PASS_NOT_SERVICE), 1);

	/* FIN from the client: half-closed, the backend may go on sending, so
	 * both entries keep the established lifetime. */
	{
		struct pkt fin = pkt_tcp(client, 40003, vip, 80, TCP_FIN | TCP_ACK);
		struct pkt data = pkt_tcp(be, 8080, client, 40003, TCP_ACK | TCP_PSH);
		struct pkt bfin = pkt_tcp(be, 8080, client, 40003, TCP_FIN | TCP_ACK);

		expect_dnat(&fin, be, 8080);
		assert_true(ct_get(ip4(client), ip4(vip), 40003, 80, IPPROTO_TCP, ROTA_CT_FWD, &fwd));
		assert_int_equal(fwd.state, ROTA_CT_ESTABLISHED);
		assert_true(fwd.flags & ROTA_CT_F_FIN);
		assert_true(ct_get(ip4(be), ip4(client), 8080, 40003, IPPROTO_TCP, ROTA_CT_REPLY, &rev));
		assert_int_equal(rev.state, ROTA_CT_ESTABLISHED);
		assert_true(rev.flags & ROTA_CT_F_PEER_FIN);

		build(&in, &data);
		assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
		data.saddr = ip4(vip);
		data.sport = 80;
		build(&wf, &data);
		assert_frame_eq(&out, &wf);

		/* The backend's FIN closes both directions. */
		build(&in, &bfin);
		assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
		assert_true(ct_get(ip4(client), ip4(vip), 40003, 80, IPPROTO_TCP, ROTA_CT_FWD, &fwd));
		assert_int_equal(fwd.state, ROTA_CT_CLOSING);
		assert_true(ct_get(ip4(be), ip4(client), 8080, 40003, IPPROTO_TCP, ROTA_CT_REPLY, &rev));
		assert_int_equal(rev.state, ROTA_CT_CLOSING);
	}
}

/* Payload making the UDP checksum of p come out as computed-zero (sent as
 * 0xffff): solves the last payload word. */
static void udp_payload_for_zero_sum(struct pkt *p, uint8_t *payload, size_t plen)
{
	uint8_t l4[64];
	uint32_t s;
	uint16_t w;

	memset(payload, 0x5a, plen);
	payload[plen - 2] = payload[plen - 1] = 0;
	p->payload = payload;
	p->plen = plen;
	p->udp_no_csum = true;
	build_l4(l4, p);
	p->udp_no_csum = false;
	{
		uint8_t ph[12];

		memcpy(ph, &p->saddr, 4);
		memcpy(ph + 4, &p->daddr, 4);
		ph[8] = 0;
		ph[9] = IPPROTO_UDP;
		ph[10] = 0;
		ph[11] = (uint8_t)(8 + plen);
		s = sum16(l4, 8 + plen, sum16(ph, 12, 0));
	}
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	w = (uint16_t)(0xffff - s);
	payload[plen - 2] = w >> 8;
	payload[plen - 1] = w & 0xff;
}

void test_udp_checksum(void **state)
{
	const char *vip = "10.96.0.4", *client = "10.0.0.4", *be = "10.0.4.1";
	uint32_t svc = svc_set(vip, 53, IPPROTO_UDP, B("10.0.4.1:5353"), NULL, 0, false);
	struct pkt q = pkt_udp(client, 50004, vip, 53, "query", 5);
	struct pkt r = pkt_udp(be, 5353, client, 50004, "answer!", 7);
	struct pkt w;
	struct frame in, out, want;
	struct rota_ct_entry fwd;
	uint8_t pl[16], pl2[16];

	expect_dnat(&q, be, 5353);
	fwd = assert_ct_flow(client, 50004, vip, 53, IPPROTO_UDP, be, 5353, client, svc);
	assert_int_equal(fwd.packets, 1);

	build(&in, &r);
	assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
	w = r;
	w.saddr = ip4(vip);
	w.sport = 53;
	build(&want, &w);
	assert_frame_eq(&out, &want);
	assert_csums_ok(&out);

	/* Translated checksum that must be sent as 0xffff, never 0 ("none"). */
	w = pkt_udp(client, 50014, be, 5353, NULL, 0);
	udp_payload_for_zero_sum(&w, pl, sizeof(pl));
	q = pkt_udp(client, 50014, vip, 53, pl, sizeof(pl));
	build(&want, &w);
	assert_int_equal(get16(want.b + ETH_LEN + 20 + 6), 0xffff);
	expect_dnat(&q, be, 5353);

	/* And the other way: the client's checksum is 0xffff, the translated one is not. */
	w = pkt_udp(client, 50024, vip, 53, NULL, 0);
	udp_payload_for_zero_sum(&w, pl2, sizeof(pl2));
	build(&in, &w);
	assert_int_equal(get16(in.b + ETH_LEN + 20 + 6), 0xffff);
	expect_dnat(&w, be, 5353);
}

void test_udp_checksum_zero(void **state)
{
	const char *vip = "10.96.0.5", *client = "10.0.0.5", *be = "10.0.5.1";
	struct pkt q = pkt_udp(client, 50005, vip, 53, "query", 5);
	struct pkt r = pkt_udp(be, 5353, client, 50005, "answer!", 7);
	struct frame in, out;

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.5.1:5353"), NULL, 0, false);
	q.udp_no_csum = true;
	r.udp_no_csum = true;

	build(&in, &q);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);
	assert_int_equal(get32n(out.b + ETH_LEN + 16), ip4(be));
	assert_int_equal(get16(out.b + ETH_LEN + 20 + 2), 5353);
	assert_int_equal(get16(out.b + ETH_LEN + 20 + 6), 0);	/* still "no checksum" */
	expect_dnat(&q, be, 5353);

	build(&in, &r);
	assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
	assert_int_equal(get32n(out.b + ETH_LEN + 12), ip4(vip));
	assert_int_equal(get16(out.b + ETH_LEN + 20), 53);
	assert_int_equal(get16(out.b + ETH_LEN + 20 + 6), 0);
	assert_true(ip_csum_ok(out.b));
}

void test_maglev(void **state)
{
	static const char *const names[] = {
		"10.0.6.1:8080", "10.0.6.2:8080", "10.0.6.3:8080", "10.0.6.4:8080", "10.0.6.5:8080",
	};
	static const char *const reversed[] = {
		"10.0.6.5:8080", "10.0.6.4:8080", "10.0.6.3:8080", "10.0.6.2:8080", "10.0.6.1:8080",
	};
	const size_t n = 5;
	const char *vip = "10.96.0.6", *vip2 = "10.96.0.16", *client = "10.0.0.6";
	uint32_t m, svc, svc2, ids[5], ids2[5], count[5] = { 0 };
	uint32_t *table, *table2, *idx;

	svc = svc_set(vip, 80, IPPROTO_TCP, names, n, NULL, 0, true);
	svc2 = svc_set(vip2, 80, IPPROTO_TCP, reversed, n, NULL, 0, true);
	/* 5 backends: the smallest ladder prime >= 500. */
	m = svc_maglev_m(vip, 80, IPPROTO_TCP);
	assert_int_equal(m, 509);
	assert_int_equal(svc_maglev_m(vip2, 80, IPPROTO_TCP), 509);
	table = calloc(m, 4), table2 = calloc(m, 4), idx = calloc(m, 4);
	assert_true(table && table2 && idx);
	for (size_t i = 0; i < n; i++) {
		ids[i] = backend_id(vip, 80, IPPROTO_TCP, names[i]);
		ids2[i] = backend_id(vip2, 80, IPPROTO_TCP, names[i]);
	}

	/* The table: every slot one of the service's backends, shares even
	 * within one slot, and exactly what librota's builder gives. */
	maglev_read(svc, m, table);
	assert_int_equal(maglev_build(names, n, m, idx), 0);
	for (uint32_t j = 0; j < m; j++) {
		size_t k;

		for (k = 0; k < n && table[j] != ids[k]; k++)
			;
		if (k == n)
			fail_msg("maglev slot %u holds %u, not a backend of the service", j, table[j]);
		count[k]++;
		if (table[j] != ids[idx[j]])
			fail_msg("maglev slot %u: %u, builder says %u", j, table[j], ids[idx[j]]);
	}
	for (size_t k = 0; k < n; k++)
		assert_true(count[k] == m / n || count[k] == m / n + 1);

	/* Same backend set in another order: the same table (by address). */
	maglev_read(svc2, m, table2);
	for (uint32_t j = 0; j < m; j++) {
		size_t a, b;

		for (a = 0; a < n && table[j] != ids[a]; a++)
			;
		for (b = 0; b < n && table2[j] != ids2[b]; b++)
			;
		if (a != b)
			fail_msg("maglev slot %u differs between backend orders", j);
	}

	/* New flows go where table[hash % m] says, again after their
	 * conntrack entries are gone: deterministic, not random. */
	for (uint16_t sport = 42000; sport < 42064; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);
		uint32_t h = flow_hash(ip4(client), ip4(vip), htons(sport), htons(80), IPPROTO_TCP);
		const char *want = NULL;
		char got[32], again[32];

		for (size_t k = 0; k < n; k++)
			if (table[h % m] == ids[k])
				want = names[k];
		assert_non_null(want);
		run_chosen(&syn, TC_ACT_OK, got);
		assert_string_equal(got, want);
		ct_del(ip4(client), ip4(vip), sport, 80, IPPROTO_TCP, ROTA_CT_FWD);
		run_chosen(&syn, TC_ACT_OK, again);
		assert_string_equal(again, want);
	}
	free(table);
	free(table2);
	free(idx);
}

/* Asserts out is the ICMP port unreachable rota answers in with. */
static void assert_reject(const struct frame *in, const struct frame *out, const char *vip,
			  const char *client)
{
	size_t ihl = ip_hlen(in->b), qlen = ihl + 8;
	const uint8_t *ip = out->b + ETH_LEN, *icmp = ip + 20;

	assert_int_equal(out->len, ETH_LEN + 20 + 8 + qlen);
	assert_memory_equal(out->b, in->b + 6, 6);	/* MACs swapped */
	assert_memory_equal(out->b + 6, in->b, 6);
	assert_int_equal(get16(out->b + 12), 0x0800);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(get16(ip + 2), 20 + 8 + qlen);
	assert_int_equal(get16(ip + 6) & 0x3fff, 0);	/* not a fragment */
	assert_true(ip[8] > 0);
	assert_int_equal(ip[9], IPPROTO_ICMP);
	assert_int_equal(get32n(ip + 12), ip4(vip));
	assert_int_equal(get32n(ip + 16), ip4(client));
	assert_int_equal(icmp[0], 3);	/* destination unreachable */
	assert_int_equal(icmp[1], 3);	/* port unreachable */
	assert_int_equal(get32n(icmp + 4), 0);
	assert_memory_equal(icmp + 8, in->b + ETH_LEN, qlen);	/* original header + 8 bytes */
	assert_csums_ok(out);
}

void test_no_backend_reject(void **state)
{
	const char *vip = "10.96.0.7", *client = "10.0.0.7";
	struct pkt syn = pkt_tcp(client, 40007, vip, 80, TCP_SYN);
	uint8_t big[100];
	struct pkt dgram = pkt_udp(client, 50007, vip, 53, big, sizeof(big));
	struct frame in, out;
	struct rota_ct_entry ct;
	struct stats st;

	svc_set(vip, 80, IPPROTO_TCP, NULL, 0, NULL, 0, false);
	svc_set(vip, 53, IPPROTO_UDP, NULL, 0, NULL, 0, false);
	memset(big, 0xab, sizeof(big));

	stats_snap(&st);
	build(&in, &syn);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);
	assert_reject(&in, &out, vip, client);
	assert_int_equal(stat_delta(&st, ROTA_STAT_NO_BACKEND), 1);
	assert_false(ct_get(ip4(client), ip4(vip), 40007, 80, IPPROTO_TCP, ROTA_CT_FWD, &ct));

	/* A datagram longer than the reply: the frame shrinks. */
	build(&in, &dgram);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);
	assert_reject(&in, &out, vip, client);

	/* IP options are part of the quoted header. */
	syn.ihl = 8;
	build(&in, &syn);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);
	assert_reject(&in, &out, vip, client);
	syn.ihl = 15;
	build(&in, &syn);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);
	assert_reject(&in, &out, vip, client);
	assert_int_equal(stat_delta(&st, ROTA_STAT_NO_BACKEND), 4);
}

void test_terminating_backends(void **state)
{
	const char *vip = "10.96.0.8", *client = "10.0.0.8";
	struct pkt old = pkt_tcp(client, 40008, vip, 80, TCP_SYN);
	char got[32];
	struct frame in, out;

	/* A flow to T while T is active. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.8.1:8080"), NULL, 0, false);
	expect_dnat(&old, "10.0.8.1", 8080);

	/* T terminating, A active: new flows only to A, the old flow stays on T. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.8.2:8080"), B("10.0.8.1:8080"), false);
	old.tcp_flags = TCP_ACK;
	expect_dnat(&old, "10.0.8.1", 8080);
	for (uint16_t sport = 41000; sport < 41032; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);

		run_chosen(&syn, TC_ACT_OK, got);
		assert_string_equal(got, "10.0.8.2:8080");
	}
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.8.2:8080", "10.0.8.3:8080"), B("10.0.8.1:8080"), false);
	for (uint16_t sport = 41100; sport < 41164; sport++) {
		struct pkt syn = pkt_tcp(client, sport, vip, 80, TCP_SYN);

		run_chosen(&syn, TC_ACT_OK, got);
		assert_string_not_equal(got, "10.0.8.1:8080");
	}

	/* Everything terminating: new flows are refused, old ones go on. */
	svc_set(vip, 80, IPPROTO_TCP, NULL, 0, B("10.0.8.1:8080", "10.0.8.2:8080", "10.0.8.3:8080"), false);
	{
		struct pkt syn = pkt_tcp(client, 41200, vip, 80, TCP_SYN);

		build(&in, &syn);
		assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);
		assert_reject(&in, &out, vip, client);
	}
	expect_dnat(&old, "10.0.8.1", 8080);
	{
		struct pkt a = pkt_tcp(client, 41000, vip, 80, TCP_ACK);

		expect_dnat(&a, "10.0.8.2", 8080);
	}
}

void test_hairpin(void **state)
{
	const char *vip = "10.96.0.12", *pod = "10.0.0.12";
	uint32_t svc = svc_set(vip, 80, IPPROTO_TCP, B("10.0.0.12:8080"), NULL, 0, false);
	struct pkt syn = pkt_tcp(pod, 40012, vip, 80, TCP_SYN);
	struct pkt w = syn;
	struct rota_ct_entry fwd, rev;
	struct frame in, out, want;
	struct stats st;

	stats_snap(&st);
	build(&in, &syn);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);
	w.saddr = ip4(HAIRPIN_ADDR);
	w.daddr = ip4(pod);
	w.dport = 8080;
	memcpy(w.smac, syn.dmac, 6);
	memcpy(w.dmac, syn.smac, 6);
	build(&want, &w);
	assert_frame_eq(&out, &want);
	assert_csums_ok(&out);
	assert_int_equal(stat_delta(&st, ROTA_STAT_HAIRPIN), 1);

	fwd = assert_ct_flow(pod, 40012, vip, 80, IPPROTO_TCP, pod, 8080, HAIRPIN_ADDR, svc);
	assert_true(fwd.flags & ROTA_CT_F_HAIRPIN);
	assert_true(ct_get(ip4(pod), ip4(HAIRPIN_ADDR), 8080, 40012, IPPROTO_TCP, ROTA_CT_REPLY, &rev));
	assert_true(rev.flags & ROTA_CT_F_HAIRPIN);
}

void test_hairpin_reply(void **state)
{
	const char *vip = "10.96.0.13", *pod = "10.0.0.13";
	struct pkt syn = pkt_tcp(pod, 40013, vip, 80, TCP_SYN);
	struct pkt synack = pkt_tcp(pod, 8080, HAIRPIN_ADDR, 40013, TCP_SYN | TCP_ACK);
	struct pkt w = synack;
	struct rota_ct_entry fwd, rev;
	struct frame in, out, want;

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.0.13:8080"), NULL, 0, false);
	build(&in, &syn);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);

	/* The pod answers "169.254.42.1"; it must see the VIP talk to it. */
	build(&in, &synack);
	assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_REDIRECT);
	w.saddr = ip4(vip);
	w.sport = 80;
	w.daddr = ip4(pod);
	memcpy(w.smac, synack.dmac, 6);
	memcpy(w.dmac, synack.smac, 6);
	build(&want, &w);
	assert_frame_eq(&out, &want);
	assert_csums_ok(&out);

	assert_true(ct_get(ip4(pod), ip4(HAIRPIN_ADDR), 8080, 40013, IPPROTO_TCP, ROTA_CT_REPLY, &rev));
	assert_int_equal(rev.packets, 1);
	assert_true(rev.flags & ROTA_CT_F_SEEN_REPLY);
	assert_true(ct_get(ip4(pod), ip4(vip), 40013, 80, IPPROTO_TCP, ROTA_CT_FWD, &fwd));
	assert_int_equal(fwd.state, ROTA_CT_ESTABLISHED);
}

void test_not_service(void **state)
{
	const char *vip = "10.96.0.19", *client = "10.0.0.19";
	static const uint8_t echo[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	struct pkt cases[] = {
		pkt_tcp(client, 40019, vip, 81, TCP_SYN),		/* other port */
		pkt_udp(client, 40019, vip, 80, "x", 1),		/* other protocol */
		pkt_tcp(client, 40019, "10.1.2.3", 80, TCP_SYN),	/* not a frontend */
		pkt_icmp_err(client, vip, 8, 0, echo, sizeof(echo)),	/* echo request */
	};
	struct frame in, out;
	struct stats st;

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.19.1:8080"), NULL, 0, false);
	stats_snap(&st);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(&in, &cases[i]);
		assert_int_equal(run(env.from_pod, &in, &out), TC_ACT_OK);
		assert_frame_eq(&out, &in);
		assert_int_equal(run(env.to_pod, &in, &out), TC_ACT_OK);
		assert_frame_eq(&out, &in);
	}
	assert_int_equal(stat_delta(&st, ROTA_STAT_PASS_NOT_SERVICE), 2 * 4);
}

void test_tcp_syn_after_close(void **state)
{
	const char *vip = "10.96.0.21", *client = "10.0.0.21";
	struct pkt syn = pkt_tcp(client, 40021, vip, 80, TCP_SYN);
	struct pkt fin = pkt_tcp(client, 40021, vip, 80, TCP_FIN | TCP_ACK);
	struct pkt ack = pkt_tcp(client, 40021, vip, 80, TCP_ACK);
	struct rota_ct_entry fwd;

	svc_set(vip, 80, IPPROTO_TCP, B("10.0.21.1:8080"), NULL, 0, false);
	expect_dnat(&syn, "10.0.21.1", 8080);
	expect_dnat(&fin, "10.0.21.1", 8080);
	assert_true(ct_get(ip4(client), ip4(vip), 40021, 80, IPPROTO_TCP, ROTA_CT_FWD, &fwd));
	assert_true(fwd.flags & ROTA_CT_F_FIN);

	/* The backend set changes: the client's last ACK still goes to its
	 * backend; a new SYN on the same tuple, after the client's own FIN, is
	 * a new flow. */
	svc_set(vip, 80, IPPROTO_TCP, B("10.0.21.2:8080"), NULL, 0, false);
	expect_dnat(&ack, "10.0.21.1", 8080);
	expect_dnat(&syn, "10.0.21.2", 8080);
	assert_true(ct_get(ip4(client), ip4(vip), 40021, 80, IPPROTO_TCP, ROTA_CT_FWD, &fwd));
	assert_int_equal(fwd.state, ROTA_CT_NEW);
	assert_int_equal(fwd.packets, 1);
	assert_ct_flow(client, 40021, vip, 80, IPPROTO_TCP, "10.0.21.2", 8080, client, fwd.svc_id);
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);	/* bpf_ktime_get_ns()'s clock */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void test_ct_expiry(void **state)
{
	const char *vip = "10.96.0.22", *client = "10.0.0.22";
	struct pkt q = pkt_udp(client, 50022, vip, 53, "query", 5);
	uint32_t c = ip4(client), v = ip4(vip);
	struct rota_ct_entry fwd;
	struct stats st;

	svc_set(vip, 53, IPPROTO_UDP, B("10.0.22.1:5353"), NULL, 0, false);
	expect_dnat(&q, "10.0.22.1", 5353);
	/* Its backend starts terminating (a removed one would move the flow at
	 * once: test_udp_backend_removed). */
	svc_set(vip, 53, IPPROTO_UDP, B("10.0.22.2:5353"), B("10.0.22.1:5353"), false);

	/* Idle 59 s: within the 60 s UDP timeout, the flow keeps its backend. */
	assert_true(ct_get(c, v, 50022, 53, IPPROTO_UDP, ROTA_CT_FWD, &fwd));
	fwd.last_seen_ns = monotonic_ns() - 59ull * 1000000000ull;
	ct_put(c, v, 50022, 53, IPPROTO_UDP, ROTA_CT_FWD, &fwd);
	expect_dnat(&q, "10.0.22.1", 5353);

	/* Idle 61 s: expired, the next datagram is a new flow. */
	assert_true(ct_get(c, v, 50022, 53, IPPROTO_UDP, ROTA_CT_FWD, &fwd));
	fwd.last_seen_ns = monotonic_ns() - 61ull * 1000000000ull;
	ct_put(c, v, 50022, 53, IPPROTO_UDP, ROTA_CT_FWD, &fwd);
	stats_snap(&st);
	expect_dnat(&q, "10.0.22.2", 5353);
	assert_int_equal(stat_delta(&st, ROTA_STAT_CT_NEW), 1);
	assert_true(ct_get(c, v, 50022, 53, IPPROTO_UDP, ROTA_CT_FWD, &fwd));
	assert_int_equal(fwd.packets, 1);
}

void test_affinity(void **state)
{
	static const char *const all[] = {
		"10.0.20.1:8080", "10.0.20.2:8080", "10.0.20.3:8080", "10.0.20.4:8080",
	};
	const char *vip = "10.96.0.20", *client = "10.0.0.20";
	uint32_t svc = svc_set_affinity(vip, 80, IPPROTO_TCP, all, 4, NULL, 0, 10800);
	struct rota_affinity_key key = { 0 };
	struct rota_affinity_val val;
	const char *rest[3], *gone = NULL;
	char first[32], got[32];
	struct stats st;
	size_t n = 0;

	/* Every new flow of one client goes to the backend its first one got. */
	stats_snap(&st);
	syn_chosen(client, 43000, vip, first);
	for (uint16_t sport = 43001; sport < 43032; sport++) {
		syn_chosen(client, sport, vip, got);
		assert_string_equal(got, first);
	}
	assert_int_equal(stat_delta(&st, ROTA_STAT_AFFINITY_HIT), 31);
	key.client = ip4(client);	/* IPv4 address, network order, zero-extended */
	key.svc_id = svc;
	key.kind = ROTA_AFF_CLIENT_ADDR;
	assert_int_equal(bpf_map_lookup_elem(env.dp.affinity_fd, &key, &val), 0);
	assert_int_equal(val.backend_id, backend_id(vip, 80, IPPROTO_TCP, first));

	/* That backend starts terminating: the client moves to another one
	 * and sticks to it. */
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(all[i], first))
			rest[n++] = all[i];
		else
			gone = all[i];
	}
	svc_set_affinity(vip, 80, IPPROTO_TCP, rest, n, &gone, 1, 10800);
	syn_chosen(client, 43100, vip, first);
	assert_string_not_equal(first, gone);
	for (uint16_t sport = 43101; sport < 43116; sport++) {
		syn_chosen(client, sport, vip, got);
		assert_string_equal(got, first);
	}
}
