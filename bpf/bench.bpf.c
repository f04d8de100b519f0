// SPDX-License-Identifier: GPL-2.0
/* Programs for `make bench` only: the empty tc floor, and from_pod wrapped
 * so that BPF_PROG_TEST_RUN's repeats each see the original packet (the
 * wrapper restores the headers it rewrote; rota_bench_restore measures that
 * restore alone so it can be subtracted). */
#include "lib/pod.h"

#define BENCH_HDR_LEN (ETH_HLEN + 20 + 20)	/* eth + IPv4 + TCP, no options */

/* Copies the headers as words: x86 loads them unaligned at no cost, and
 * byte copies would cost more than the rest of the wrapper. */
static __always_inline void hdr_copy(void *dst, const void *src)
{
	__u64 *d = dst;
	const __u64 *s = src;

#pragma unroll
	for (int i = 0; i < 6; i++)
		d[i] = s[i];
	*(__u32 *)(d + 6) = *(const __u32 *)(s + 6);
	*(__u16 *)((__u8 *)(d + 6) + 4) = *(const __u16 *)((const __u8 *)(s + 6) + 4);
}

/* Each new-flow repeat gets a fresh source port, and a fresh source address
 * each time the ports wrap, so it misses conntrack. */
const volatile __u8 bench_new_flow = 0;
__u32 bench_seq = 0;

/* Saves the headers (and in new-flow mode gives the packet its fresh
 * source), in place: the wrapper's own cost is what rota_bench_restore
 * measures. */
static __always_inline int bench_prepare(struct __sk_buff *skb, __u8 *hdr)
{
	__u8 *pkt = pkt_ptr(skb, 0, BENCH_HDR_LEN);

	if (!pkt)
		return -1;
	hdr_copy(hdr, pkt);
	if (bench_new_flow) {
		__u32 seq = bench_seq++;
		__be16 sport = bpf_htons(1024 + seq % 60000);
		__be32 saddr;

		__builtin_memcpy(&saddr, hdr + ETH_HLEN + 12, sizeof(saddr));
		saddr = bpf_htonl(bpf_ntohl(saddr) + seq / 60000);
		__builtin_memcpy(pkt + ETH_HLEN + 12, &saddr, sizeof(saddr));
		__builtin_memcpy(pkt + ETH_HLEN + 20, &sport, sizeof(sport));
	}
	return 0;
}

/* Writes the saved headers back (from_pod may have moved the packet, so a
 * new pointer). */
static __always_inline void bench_restore(struct __sk_buff *skb, const __u8 *hdr)
{
	__u8 *pkt = pkt_ptr(skb, 0, BENCH_HDR_LEN);

	if (pkt)
		hdr_copy(pkt, hdr);
	else
		bpf_skb_store_bytes(skb, 0, hdr, BENCH_HDR_LEN, 0);
}

SEC("tc")
int rota_bench_floor(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int rota_bench_restore(struct __sk_buff *skb)
{
	__u64 hdr[(BENCH_HDR_LEN + 7) / 8];

	if (bench_prepare(skb, (__u8 *)hdr))
		return TC_ACT_SHOT;
	bench_restore(skb, (__u8 *)hdr);
	return TC_ACT_OK;
}

SEC("tc")
int rota_bench_from_pod(struct __sk_buff *skb)
{
	__u64 hdr[(BENCH_HDR_LEN + 7) / 8];
	int ret;

	if (bench_prepare(skb, (__u8 *)hdr))
		return TC_ACT_SHOT;
	ret = from_pod(skb);
	bench_restore(skb, (__u8 *)hdr);
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
