/* ICMP on the tc path: the port-unreachable reply for a service with no
 * backend, and reverse translation of ICMP errors about translated flows. */
#pragma once
#include "lib/ct.h"
#include "lib/nat.h"

#define ICMP_ORIG_MAX (60 + 8)	/* original IP header with options + 8 bytes */

struct icmp_hdr {
	__u8   type;
	__u8   code;
	__sum16 csum;
	__be32 unused;
};

/* Turns the packet into an ICMP port-unreachable from the frontend back to
 * the sender, as a REJECT rule would, and sends it back out of the
 * interface it came in on. Returns a TC_ACT_* verdict. */
static __always_inline int icmp_reject(struct __sk_buff *skb, const struct pkt4 *p)
{
	__u8 orig[ICMP_ORIG_MAX];
	__u8 macs[2 * ETH_ALEN];
	struct {
		__u8 dst[ETH_ALEN];
		__u8 src[ETH_ALEN];
		__be16 proto;
	} __attribute__((packed)) eth;
	struct iphdr ip = {};
	struct icmp_hdr icmp = { .type = ICMP_DEST_UNREACH, .code = ICMP_PORT_UNREACH };
	__u32 olen = p->ihl_bytes + 8;
	__s64 csum;

	if (olen < 28 || olen > ICMP_ORIG_MAX)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, orig, olen) ||
	    bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)))
		return TC_ACT_SHOT;
	__builtin_memcpy(eth.dst, macs + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(eth.src, macs, ETH_ALEN);
	eth.proto = bpf_htons(ETH_P_IP);

	ip.version = 4;
	ip.ihl = 5;
	ip.tot_len = bpf_htons(sizeof(ip) + sizeof(icmp) + olen);
	ip.ttl = 64;
	ip.protocol = IPPROTO_ICMP;
	ip.saddr = p->daddr;
	ip.daddr = p->saddr;
	csum = bpf_csum_diff(NULL, 0, (__be32 *)&ip, sizeof(ip), 0);
	if (csum < 0)
		return TC_ACT_SHOT;
	ip.check = csum_fold(csum);

	csum = bpf_csum_diff(NULL, 0, (__be32 *)&icmp, sizeof(icmp), 0);
	if (csum < 0)
		return TC_ACT_SHOT;
	csum = bpf_csum_diff(NULL, 0, (__be32 *)orig, olen, csum);
	if (csum < 0)
		return TC_ACT_SHOT;
	icmp.csum = csum_fold(csum);

	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(ip) + sizeof(icmp) + olen, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &icmp, sizeof(icmp), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip) + sizeof(icmp), orig, olen, 0))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* Incremental update of a 16-bit checksum for `len` bytes changed from
 * `from` to `to` (len a multiple of 4). */
static __always_inline __u16 csum_update(__u16 check, void *from, void *to, __u32 len)
{
	__s64 sum = bpf_csum_diff(from, len, to, len, (__u16)~check);

	return sum < 0 ? check : csum_fold(sum);
}

/* Rewrites one address and port inside the original datagram an ICMP error
 * carries (fixing its IP checksum, its L4 checksum when present, and the ICMP
 * checksum over all of them), and optionally the outer address. */
struct icmp_inner_edit {
	__u32  addr_off;	/* 12: inner source, 16: inner destination */
	__u32  port_off;	/* 0: inner source port, 2: inner destination port */
	__be32 old_addr, new_addr;
	__be16 old_port, new_port;
	__u32  outer_off;	/* 12 or 16 in the outer header; 0: leave it */
	__be32 outer_old, outer_new;
};

static __always_inline int icmp_inner_rewrite(struct __sk_buff *skb, const struct pkt4 *p,
					      __u32 inner_l3, __u32 inner_l4, __u8 inner_proto,
					      __u16 inner_check, const struct icmp_inner_edit *e)
{
	__u32 icmp_csum = p->l4_off + 2;
	struct { __be32 a; __be16 p; __u16 z; } from = { e->old_addr, e->old_port, 0 },
						to = { e->new_addr, e->new_port, 0 };
	__u16 new_check = csum_update(inner_check, &from.a, &to.a, 4);
	__u32 l4c_off = 0;
	__u16 l4c;

	/* The inner TCP/UDP checksum, if the error quotes it (UDP: 0 = none). */
	if (inner_proto == IPPROTO_UDP && inner_l4 + 8 <= p->l3_end)
		l4c_off = inner_l4 + 6;
	else if (inner_proto == IPPROTO_TCP && inner_l4 + 18 <= p->l3_end)
		l4c_off = inner_l4 + 16;
	if (l4c_off && !bpf_skb_load_bytes(skb, l4c_off, &l4c, 2) &&
	    !(inner_proto == IPPROTO_UDP && l4c == 0)) {
		__u16 n = csum_update(l4c, &from, &to, sizeof(from));

		if (inner_proto == IPPROTO_UDP && n == 0)
			n = 0xffff;
		if (bpf_l4_csum_replace(skb, icmp_csum, l4c, n, 2) ||
		    bpf_skb_store_bytes(skb, l4c_off, &n, 2, 0))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, icmp_csum, e->old_addr, e->new_addr, 4) ||
	    bpf_skb_store_bytes(skb, inner_l3 + e->addr_off, &e->new_addr, 4, 0) ||
	    bpf_l4_csum_replace(skb, icmp_csum, inner_check, new_check, 2) ||
	    bpf_skb_store_bytes(skb, inner_l3 + IP_CSUM_OFF, &new_check, 2, 0) ||
	    bpf_l4_csum_replace(skb, icmp_csum, e->old_port, e->new_port, 2) ||
	    bpf_skb_store_bytes(skb, inner_l4 + e->port_off, &e->new_port, 2, 0))
		return -1;
	if (e->outer_off)
		return nat_addr(skb, p, e->outer_off, e->outer_old, e->outer_new, false);
	return 0;
}

/* An ICMP error (unreachable, time exceeded, parameter problem) quoting a
 * translated flow. to_pod: a backend or router complains about the client's
 * packet (client → backend): the client must see its frontend. !to_pod: the
 * client complains about a reply (frontend → client): the backend must see
 * itself. Returns 1 if rewritten, 0 if not ours, -1 on error. */
static __always_inline int icmp_error_xlate(struct __sk_buff *skb, const struct pkt4 *p, bool to_pod)
{
	__u32 inner_l3 = p->l4_off + 8, inner_l4;
	struct iphdr in;
	struct { __be16 sport, dport; } ports;
	struct icmp_inner_edit e = {};
	struct rota_ct_key key;
	struct rota_ct_entry *ct;

	if (p->icmp_type != ICMP_DEST_UNREACH && p->icmp_type != ICMP_TIME_EXCEEDED &&
	    p->icmp_type != ICMP_PARAMETERPROB)
		return 0;
	if (inner_l3 + sizeof(in) > p->l3_end ||
	    bpf_skb_load_bytes(skb, inner_l3, &in, sizeof(in)) || in.version != 4 || in.ihl < 5)
		return 0;
	if (in.protocol != IPPROTO_TCP && in.protocol != IPPROTO_UDP)
		return 0;
	inner_l4 = inner_l3 + in.ihl * 4;
	if (inner_l4 + sizeof(ports) > p->l3_end ||
	    bpf_skb_load_bytes(skb, inner_l4, &ports, sizeof(ports)))
		return 0;

	if (to_pod) {
		/* Quoted: client → backend. Reply tuple: backend → client. */
		ct_key_fill(&key, in.daddr, in.saddr, ports.dport, ports.sport, in.protocol, ROTA_CT_REPLY);
		ct = ct_lookup(&key, rota_now_ns());
		if (!ct)
			return 0;
		e.addr_off = IP_DADDR_OFF;
		e.port_off = 2;
		e.old_addr = in.daddr;
		e.old_port = ports.dport;
		if (p->saddr == in.daddr) {
			e.outer_off = IP_SADDR_OFF;
			e.outer_old = p->saddr;
			e.outer_new = ct->nat_addr;
		}
	} else {
		/* Quoted: frontend → client. Forward tuple: client → frontend. */
		ct_key_fill(&key, in.daddr, in.saddr, ports.dport, ports.sport, in.protocol, ROTA_CT_FWD);
		ct = ct_lookup(&key, rota_now_ns());
		if (!ct)
			return 0;
		e.addr_off = IP_SADDR_OFF;
		e.port_off = 0;
		e.old_addr = in.saddr;
		e.old_port = ports.sport;
		if (p->daddr == in.saddr) {
			e.outer_off = IP_DADDR_OFF;
			e.outer_old = p->daddr;
			e.outer_new = ct->nat_addr;
		}
	}
	e.new_addr = ct->nat_addr;
	e.new_port = ct->nat_port;
	if (icmp_inner_rewrite(skb, p, inner_l3, inner_l4, in.protocol, in.check, &e))
		return -1;
	return 1;
}
