/* Includes, constants and load-time settings every rota BPF program shares. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "rota/maps.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT	7

#define ETH_HLEN	14
#define ETH_ALEN	6
#define ETH_P_IP	0x0800

#define IP_MF		0x2000
#define IP_OFFSET	0x1fff

#define TCP_FLAG_FIN	0x01
#define TCP_FLAG_SYN	0x02
#define TCP_FLAG_RST	0x04
#define TCP_FLAG_ACK	0x10

#define ICMP_DEST_UNREACH	3
#define ICMP_PORT_UNREACH	3
#define ICMP_TIME_EXCEEDED	11
#define ICMP_PARAMETERPROB	12

#define ECONNREFUSED	111
#define SOCK_STREAM	1
#define SOCK_DGRAM	2

#define NSEC_PER_SEC	1000000000ULL

/* Set by the loader before load (frozen .rodata, so the verifier sees
 * constants). Defaults match a fresh `rota load`. */
const volatile __be32 hairpin_addr = bpf_htonl(ROTA_HAIRPIN_ADDR_DEFAULT);
const volatile __u32 ct_tcp_established_s = 86400;
const volatile __u32 ct_tcp_syn_s = 60;
const volatile __u32 ct_tcp_close_s = 10;
const volatile __u32 ct_udp_s = 60;

/* barrier_var() (bpf_helpers.h) hides a value from the compiler so a
 * bounds check it could prove redundant still reaches the verifier. */

/* Conntrack and affinity clocks only need tick resolution; the coarse
 * monotonic clock costs a fraction of bpf_ktime_get_ns() per packet. It is
 * CLOCK_MONOTONIC_COARSE, the base userspace compares against. */
static __always_inline __u64 rota_now_ns(void)
{
	return bpf_ktime_get_coarse_ns();
}
