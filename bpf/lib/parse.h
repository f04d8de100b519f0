/* IPv4 packet parsing for the tc programs. Reads with bpf_skb_load_bytes,
 * so non-linear skbs parse too and no packet pointer outlives a rewrite. */
#pragma once
#include "lib/common.h"

/* What the programs need to know about one IPv4 packet. Addresses and ports
 * in network order; offsets from the start of the frame. */
struct pkt4 {
	__u32  l3_off;
	__u32  l4_off;		/* valid unless frag_later */
	__u32  len;		/* skb->len */
	__u32  l3_end;		/* end of the IP datagram: the frame may have a trailer */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;		/* TCP/UDP only */
	__be16 dport;
	__be16 ip_id;
	__u8   proto;
	__u8   ihl_bytes;
	__u8   tcp_flags;
	__u8   frag_first;	/* MF set, offset 0: carries the ports */
	__u8   frag_later;	/* offset > 0: no L4 header */
	__u8   icmp_type;
	__u8   icmp_code;
	__u8   pad[3];
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP = -1,	/* not IPv4 (ARP, IPv6, ...): pass */
	PARSE_MALFORMED = -2,	/* inconsistent or truncated: pass, never translate */
};

/* Parses Ethernet + IPv4 (+ options) + the first bytes of TCP/UDP/ICMP.
 * Checks every length field against skb->len; returns enum parse_result. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt4 *p)
{
	struct iphdr ip;
	__u16 frag, tot_len;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IP;
	p->l3_off = ETH_HLEN;
	p->len = skb->len;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
		return PARSE_MALFORMED;
	if (ip.version != 4 || ip.ihl < 5)
		return PARSE_MALFORMED;
	p->ihl_bytes = ip.ihl * 4;
	tot_len = bpf_ntohs(ip.tot_len);
	if (tot_len < p->ihl_bytes || ETH_HLEN + (__u32)tot_len > skb->len)
		return PARSE_MALFORMED;

	p->l3_end = ETH_HLEN + (__u32)tot_len;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->ip_id = ip.id;
	p->l4_off = ETH_HLEN + p->ihl_bytes;
	frag = bpf_ntohs(ip.frag_off);
	p->frag_later = (frag & IP_OFFSET) != 0;
	p->frag_first = !p->frag_later && (frag & IP_MF);
	if (p->frag_later)
		return PARSE_OK;

	if (ip.protocol == IPPROTO_TCP) {
		struct { __be16 sport, dport; __be32 seq, ack; __u8 doff, flags; } tcp;

		if (p->l4_off + 20 > ETH_HLEN + (__u32)tot_len ||
		    bpf_skb_load_bytes(skb, p->l4_off, &tcp, sizeof(tcp)))
			return PARSE_MALFORMED;
		if ((tcp.doff >> 4) < 5)
			return PARSE_MALFORMED;
		p->sport = tcp.sport;
		p->dport = tcp.dport;
		p->tcp_flags = tcp.flags;
	} else if (ip.protocol == IPPROTO_UDP) {
		struct { __be16 sport, dport; } udp;

		if (p->l4_off + 8 > ETH_HLEN + (__u32)tot_len ||
		    bpf_skb_load_bytes(skb, p->l4_off, &udp, sizeof(udp)))
			return PARSE_MALFORMED;
		p->sport = udp.sport;
		p->dport = udp.dport;
	} else if (ip.protocol == IPPROTO_ICMP) {
		struct { __u8 type, code; } icmp;

		if (p->l4_off + 8 > ETH_HLEN + (__u32)tot_len ||
		    bpf_skb_load_bytes(skb, p->l4_off, &icmp, sizeof(icmp)))
			return PARSE_MALFORMED;
		p->icmp_type = icmp.type;
		p->icmp_code = icmp.code;
	}
	return PARSE_OK;
}

/* Offset of the L4 checksum field, or 0 for protocols rota does not NAT. */
static __always_inline __u32 l4_csum_off(__u8 proto, __u32 l4_off)
{
	if (proto == IPPROTO_TCP)
		return l4_off + 16;
	if (proto == IPPROTO_UDP)
		return l4_off + 6;
	return 0;
}
