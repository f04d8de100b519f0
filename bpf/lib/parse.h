/* IPv4 packet parsing for the tc programs. Reads the headers in place
 * (direct packet access); headers outside the linear area are pulled in
 * first, so non-linear skbs parse too. No packet pointer outlives parsing:
 * writers take their own (see nat.h). */
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

/* Pointer to len bytes at off in the linear data, or NULL when they are
 * not all there. Packet pointers taken before a helper that may move the
 * packet are void: take a new one. */
static __always_inline void *pkt_ptr(struct __sk_buff *skb, __u32 off, __u32 len)
{
	void *data, *data_end;

	/* One load each, straight from the context: clang may otherwise
	 * compute the field's address first, which the verifier refuses. */
	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(data)
		     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data)));
	asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(data_end)
		     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, data_end)));

	if (data + off + len > data_end)
		return NULL;
	return data + off;
}

/* The same, first pulling the bytes into the linear area if they are only
 * in the skb's fragments. NULL when the packet is shorter than off + len. */
static __always_inline void *pkt_pull(struct __sk_buff *skb, __u32 off, __u32 len)
{
	void *ptr = pkt_ptr(skb, off, len);

	if (ptr)
		return ptr;
	if (off + len > skb->len || bpf_skb_pull_data(skb, off + len))
		return NULL;
	return pkt_ptr(skb, off, len);
}

/* Parses Ethernet + IPv4 (+ options) + the first bytes of TCP/UDP/ICMP.
 * Checks every length field against skb->len; returns enum parse_result. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt4 *p)
{
	struct iphdr *ip;
	__u16 frag, tot_len;
	__u32 l4_off, l4_len;
	__u8 ihl_bytes, proto;
	void *l4;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return PARSE_NOT_IP;
	p->l3_off = ETH_HLEN;
	p->len = skb->len;
	ip = pkt_pull(skb, ETH_HLEN, sizeof(*ip));
	if (!ip)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	ihl_bytes = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < ihl_bytes || ETH_HLEN + (__u32)tot_len > p->len)
		return PARSE_MALFORMED;

	p->ihl_bytes = ihl_bytes;
	p->l3_end = ETH_HLEN + (__u32)tot_len;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = proto = ip->protocol;
	p->ip_id = ip->id;
	p->l4_off = l4_off = ETH_HLEN + ihl_bytes;
	frag = bpf_ntohs(ip->frag_off);
	p->frag_later = (frag & IP_OFFSET) != 0;
	p->frag_first = !p->frag_later && (frag & IP_MF);
	if (p->frag_later)
		return PARSE_OK;

	/* The L4 header must lie inside the datagram: TCP's fixed 20 bytes,
	 * UDP's and ICMP's 8. */
	if (proto == IPPROTO_TCP)
		l4_len = 20;
	else if (proto == IPPROTO_UDP || proto == IPPROTO_ICMP)
		l4_len = 8;
	else
		return PARSE_OK;
	if (l4_off + l4_len > p->l3_end)
		return PARSE_MALFORMED;
	l4 = pkt_pull(skb, l4_off, l4_len);
	if (!l4)
		return PARSE_MALFORMED;

	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if (tcp->doff < 5)
			return PARSE_MALFORMED;
		p->sport = tcp->source;
		p->dport = tcp->dest;
		p->tcp_flags = ((__u8 *)tcp)[13];
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		p->sport = udp->source;
		p->dport = udp->dest;
	} else {
		p->icmp_type = ((__u8 *)l4)[0];
		p->icmp_code = ((__u8 *)l4)[1];
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
