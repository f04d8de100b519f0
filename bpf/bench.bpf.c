// SPDX-License-Identifier: GPL-2.0
/* Programs for `make bench` only: the empty tc floor, and from_pod wrapped
 * so that BPF_PROG_TEST_RUN's repeats each see the original packet (the
 * wrapper restores the headers it rewrote; rota_bench_restore measures that
 * restore alone so it can be subtracted). */
#include "lib/pod.h"

#define BENCH_HDR_LEN (ETH_HLEN + 20 + 20)	/* eth + IPv4 + TCP, no options */

/* Each new-flow repeat gets a fresh source port, and a fresh source address
 * each time the ports wrap, so it misses conntrack. */
const volatile __u8 bench_new_flow = 0;
__u32 bench_seq = 0;

static __always_inline int bench_prepare(struct __sk_buff *skb, __u8 *hdr)
{
	if (bpf_skb_load_bytes(skb, 0, hdr, BENCH_HDR_LEN))
		return -1;
	if (bench_new_flow) {
		__u32 seq = bench_seq++;
		__be16 sport = bpf_htons(1024 + seq % 60000);
		__be32 saddr;

		__builtin_memcpy(&saddr, hdr + ETH_HLEN + 12, sizeof(saddr));
		saddr = bpf_htonl(bpf_ntohl(saddr) + seq / 60000);
		bpf_skb_store_bytes(skb, ETH_HLEN + 12, &saddr, sizeof(saddr), 0);
		bpf_skb_store_bytes(skb, ETH_HLEN + 20, &sport, sizeof(sport), 0);
	}
	return 0;
}

SEC("tc")
int rota_bench_floor(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int rota_bench_restore(struct __sk_buff *skb)
{
	__u8 hdr[BENCH_HDR_LEN];

	if (bench_prepare(skb, hdr))
		return TC_ACT_SHOT;
	bpf_skb_store_bytes(skb, 0, hdr, BENCH_HDR_LEN, 0);
	return TC_ACT_OK;
}

SEC("tc")
int rota_bench_from_pod(struct __sk_buff *skb)
{
	__u8 hdr[BENCH_HDR_LEN];
	int ret;

	if (bench_prepare(skb, hdr))
		return TC_ACT_SHOT;
	ret = from_pod(skb);
	bpf_skb_store_bytes(skb, 0, hdr, BENCH_HDR_LEN, 0);
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
