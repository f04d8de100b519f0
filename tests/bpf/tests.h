/* The cases of test_bpf_datapath, one cmocka test each (see main.c). */
#pragma once

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* pkt.c self-check: the checksum routine against known values. */
void test_checksum_routine(void **state);

/* test_nat.c: translation of TCP/UDP flows, backend choice, rejection. */
void test_tcp_syn_dnat(void **state);
void test_tcp_ct_hit(void **state);
void test_tcp_reply_rev_nat(void **state);
void test_tcp_syn_after_close(void **state);
void test_ct_expiry(void **state);
void test_udp_checksum(void **state);
void test_udp_checksum_zero(void **state);
void test_maglev(void **state);
void test_affinity(void **state);
void test_no_backend_reject(void **state);
void test_terminating_backends(void **state);
void test_hairpin(void **state);
void test_hairpin_reply(void **state);
void test_not_service(void **state);

/* test_icmp.c: ICMP errors about translated flows. */
void test_icmp_err_to_pod_udp(void **state);
void test_icmp_err_to_pod_tcp_frag_needed(void **state);
void test_icmp_err_from_pod(void **state);
void test_icmp_err_with_eth_trailer(void **state);
void test_icmp_err_ports_in_trailer(void **state);

/* test_malformed.c: bad input, non-IPv4, IP options, padding. */
void test_malformed(void **state);
void test_not_ipv4(void **state);
void test_ip_options(void **state);
void test_eth_padding(void **state);

/* test_frag.c: IPv4 fragments. */
void test_fragments(void **state);
void test_fragments_reply(void **state);
void test_fragment_unknown(void **state);
void test_fragments_hairpin(void **state);
void test_fragments_hairpin_reply(void **state);

/* test_flows.c: flows across Service changes and source-port reuse. */
void test_flow_outlives_service(void **state);
void test_udp_backend_removed(void **state);
void test_udp_direct_reuses_reply_tuple(void **state);
void test_tcp_direct_reuses_reply_tuple(void **state);

/* test_upsert.c: librota writes only what changed, and nothing when a map is full. */
void test_upsert_keeps_slots(void **state);
void test_upsert_maglev_table_kept(void **state);
void test_upsert_full_map_rolls_back(void **state);

/* test_maglev.c: Maglev tables sized per service. */
void test_maglev_sized_per_service(void **state);
void test_maglev_grows_a_size(void **state);
void test_maglev_over_cap_refused(void **state);
int maglev_cap_restore(void **state);	/* teardown: the default cap again */
void test_maglev_miss_falls_back(void **state);
void test_maglev_compat_object(void **state);
