/* Address and port rewrites that keep the IPv4 header checksum and the
 * TCP/UDP checksum (pseudo-header included) right, incrementally. */
#pragma once
#include "lib/parse.h"

#define IP_SADDR_OFF 12
#define IP_DADDR_OFF 16
#define IP_CSUM_OFF  10

/* Folds a 32-bit ones'-complement sum to the 16-bit checksum field value. */
static __always_inline __u16 csum_fold(__u32 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return (__u16)~csum;
}

/* A checksum field after a 32-bit word it covers changed from old to new
 * (RFC 1624: HC' = ~(~HC + ~m + m')). Byte order does not matter as long
 * as all three are as they sit in the packet. */
static __always_inline __u16 csum_replace4(__u16 check, __be32 old, __be32 new)
{
	__u32 sum = (__u16)~check;

	sum += (~old & 0xffff) + (~old >> 16) + (new & 0xffff) + (new >> 16);
	return csum_fold(sum);
}

/* Rewrites the IPv4 source (addr_off 12) or destination (16). l4 says
 * whether the packet's L4 checksum covers it (not for later fragments).
 * The address and the IP header checksum are written in place; the L4
 * checksum goes through bpf_l4_csum_replace(), which knows whether the
 * skb's checksum is partial (offloaded) and updates it accordingly. */
static __always_inline int nat_addr(struct __sk_buff *skb, const struct pkt4 *p, __u32 addr_off,
				    __be32 old, __be32 new, bool l4)
{
	__u32 csum_off = l4 ? l4_csum_off(p->proto, p->l4_off) : 0;
	__u64 flags = BPF_F_PSEUDO_HDR | sizeof(new);
	struct iphdr *ip;

	if (old == new)
		return 0;
	ip = pkt_ptr(skb, ETH_HLEN, sizeof(*ip));
	if (ip) {
		ip->check = csum_replace4(ip->check, old, new);
		if (addr_off == IP_DADDR_OFF)
			ip->daddr = new;
		else
			ip->saddr = new;
	} else if (bpf_l3_csum_replace(skb, p->l3_off + IP_CSUM_OFF, old, new, sizeof(new)) ||
		   bpf_skb_store_bytes(skb, p->l3_off + addr_off, &new, sizeof(new), 0)) {
		return -1;
	}
	if (p->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;	/* a zero UDP checksum means "none": keep it */
	if (csum_off && bpf_l4_csum_replace(skb, csum_off, old, new, flags))
		return -1;
	return 0;
}

/* Rewrites the TCP/UDP source (port_off 0) or destination (2) port. */
static __always_inline int nat_port(struct __sk_buff *skb, const struct pkt4 *p, __u32 port_off,
				    __be16 old, __be16 new)
{
	__u32 csum_off = l4_csum_off(p->proto, p->l4_off);
	__u64 flags = sizeof(new);
	__be16 *port;

	if (old == new)
		return 0;
	port = pkt_ptr(skb, p->l4_off & 0xff, 4);
	if (port)
		port[port_off / 2] = new;
	else if (bpf_skb_store_bytes(skb, p->l4_off + port_off, &new, sizeof(new), 0))
		return -1;
	if (p->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;
	if (csum_off && bpf_l4_csum_replace(skb, csum_off, old, new, flags))
		return -1;
	return 0;
}

#define CHECKSUM_COMPLETE 2
#define CHECKSUM_PARTIAL  3

#ifndef ROTA_NO_KFUNC
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* skb->ip_summed: how far the stack has checksummed the packet. Reading it
 * costs one load (the kfunc compiles to nothing). */
static __always_inline __u8 skb_ip_summed(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	return BPF_CORE_READ_BITFIELD(kskb, ip_summed);
}
#else
/* Kernels before 6.2 cannot read it (pod_compat.bpf.c): answering
 * "complete" sends nat_tuple() to the helpers, which can. */
static __always_inline __u8 skb_ip_summed(struct __sk_buff *skb)
{
	return CHECKSUM_COMPLETE;
}
#endif

/* Adds, to a ones'-complement sum, what replacing old with new adds. */
static __always_inline __u32 csum_add_diff4(__u32 sum, __be32 old, __be32 new)
{
	return sum + (~old & 0xffff) + (~old >> 16) + (new & 0xffff) + (new >> 16);
}

/* Rewrites the destination (dst) or source address and port of a TCP/UDP
 * packet, with the IP and L4 checksums, in place and with no helper call:
 * the established path. The L4 update is what bpf_l4_csum_replace() would
 * do (address with BPF_F_PSEUDO_HDR, then port; UDP with
 * BPF_F_MARK_MANGLED_0), done in one go:
 * - CHECKSUM_PARTIAL (offloaded, e.g. from a pod's TCP stack): the field
 *   holds the pseudo-header sum, uncomplemented; only the address is in it;
 * - CHECKSUM_NONE/UNNECESSARY: the field is the full checksum;
 * - CHECKSUM_COMPLETE would also need skb->csum updated, which a program
 *   cannot write: that, headers not in the linear area (parse_ipv4() pulls
 *   them in, so not expected) and kernels before 6.2 take the helpers. */
static __always_inline int nat_tuple(struct __sk_buff *skb, const struct pkt4 *p, bool dst,
				     __be32 new_addr, __be16 new_port)
{
	__be32 old_addr = dst ? p->daddr : p->saddr;
	__be16 old_port = dst ? p->dport : p->sport;
	__u32 l4_off = p->l4_off & 0x7f, sum;
	__u8 summed = skb_ip_summed(skb);
	struct iphdr *ip;
	__sum16 *check;
	__be16 *ports;

	if (summed == CHECKSUM_COMPLETE)
		goto helpers;
	ip = pkt_ptr(skb, ETH_HLEN, sizeof(*ip));
	if (p->proto == IPPROTO_TCP) {
		ports = pkt_ptr(skb, l4_off, 18);
		check = (void *)ports + 16;
	} else {
		ports = pkt_ptr(skb, l4_off, 8);
		check = (void *)ports + 6;
	}
	if (!ip || !ports)
		goto helpers;

	if (old_addr != new_addr) {
		ip->check = csum_replace4(ip->check, old_addr, new_addr);
		if (dst)
			ip->daddr = new_addr;
		else
			ip->saddr = new_addr;
	}
	if (old_port != new_port)
		ports[dst ? 1 : 0] = new_port;
	/* A zero UDP checksum means "none": it stays zero. */
	if (p->proto == IPPROTO_UDP && *check == 0)
		return 0;
	if (summed == CHECKSUM_PARTIAL) {
		if (old_addr != new_addr) {
			sum = csum_add_diff4(*check, old_addr, new_addr);
			*check = ~csum_fold(sum);
		}
	} else if (old_addr != new_addr || old_port != new_port) {
		sum = (__u16)~*check;
		if (old_addr != new_addr)
			sum = csum_add_diff4(sum, old_addr, new_addr);
		if (old_port != new_port)
			sum += (__u16)~old_port + (__u16)new_port;
		*check = csum_fold(sum);
	}
	if (p->proto == IPPROTO_UDP && *check == 0)
		*check = 0xffff;
	return 0;
helpers:
	if (nat_addr(skb, p, dst ? IP_DADDR_OFF : IP_SADDR_OFF, old_addr, new_addr, true) ||
	    nat_port(skb, p, dst ? 2 : 0, old_port, new_port))
		return -1;
	return 0;
}

/* Swaps source and destination MAC: sends a frame back where it came from. */
static __always_inline int eth_swap(struct __sk_buff *skb)
{
	__u8 macs[2 * ETH_ALEN], swapped[2 * ETH_ALEN];

	if (bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)))
		return -1;
	__builtin_memcpy(swapped, macs + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(swapped + ETH_ALEN, macs, ETH_ALEN);
	return bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0);
}
