/* Address and port rewrites that keep the IPv4 header checksum and the
 * TCP/UDP checksum (pseudo-header included) right, incrementally. */
#pragma once
#include "lib/parse.h"

#define IP_SADDR_OFF 12
#define IP_DADDR_OFF 16
#define IP_CSUM_OFF  10

/* Rewrites the IPv4 source (addr_off 12) or destination (16). l4 says
 * whether the packet's L4 checksum covers it (not for later fragments). */
static __always_inline int nat_addr(struct __sk_buff *skb, const struct pkt4 *p, __u32 addr_off,
				    __be32 old, __be32 new, bool l4)
{
	__u32 csum_off = l4 ? l4_csum_off(p->proto, p->l4_off) : 0;
	__u64 flags = BPF_F_PSEUDO_HDR | sizeof(new);

	if (old == new)
		return 0;
	if (p->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;	/* a zero UDP checksum means "none": keep it */
	if (csum_off && bpf_l4_csum_replace(skb, csum_off, old, new, flags))
		return -1;
	if (bpf_l3_csum_replace(skb, p->l3_off + IP_CSUM_OFF, old, new, sizeof(new)))
		return -1;
	return bpf_skb_store_bytes(skb, p->l3_off + addr_off, &new, sizeof(new), 0);
}

/* Rewrites the TCP/UDP source (port_off 0) or destination (2) port. */
static __always_inline int nat_port(struct __sk_buff *skb, const struct pkt4 *p, __u32 port_off,
				    __be16 old, __be16 new)
{
	__u32 csum_off = l4_csum_off(p->proto, p->l4_off);
	__u64 flags = sizeof(new);

	if (old == new)
		return 0;
	if (p->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;
	if (csum_off && bpf_l4_csum_replace(skb, csum_off, old, new, flags))
		return -1;
	return bpf_skb_store_bytes(skb, p->l4_off + port_off, &new, sizeof(new), 0);
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

/* Folds a 32-bit ones'-complement sum to the 16-bit checksum field value. */
static __always_inline __u16 csum_fold(__u32 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return (__u16)~csum;
}
