/* test_bpf_datapath: BPF unit tests of rota's tc programs. Loads the real
 * datapath into a temporary bpffs directory, programs services through
 * librota, runs crafted frames through rota_from_pod/rota_to_pod with
 * BPF_PROG_TEST_RUN and checks verdicts, exact output bytes (checksums
 * recomputed independently, see pkt.c) and map state after.
 *
 * The socket-LB programs (cgroup sock_addr: connect4, sendmsg4, recvmsg4,
 * getpeername4) cannot be run with BPF_PROG_TEST_RUN on this kernel; the
 * e2e tests (tests/e2e) cover them.
 *
 * Needs root. Exits 77 (tests/run.sh: "could not run here", a failure in
 * CI) when it cannot run. Usage: test_bpf_datapath [TEST_NAME_GLOB] */
#include "harness.h"
#include "tests.h"

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_routine),
		cmocka_unit_test(test_tcp_syn_dnat),
		cmocka_unit_test(test_tcp_ct_hit),
		cmocka_unit_test(test_tcp_reply_rev_nat),
		cmocka_unit_test(test_tcp_syn_after_close),
		cmocka_unit_test(test_ct_expiry),
		cmocka_unit_test(test_flow_outlives_service),
		cmocka_unit_test(test_udp_backend_removed),
		cmocka_unit_test(test_udp_direct_reuses_reply_tuple),
		cmocka_unit_test(test_tcp_direct_reuses_reply_tuple),
		cmocka_unit_test(test_upsert_keeps_slots),
		cmocka_unit_test(test_upsert_maglev_table_kept),
		cmocka_unit_test(test_upsert_full_map_rolls_back),
		cmocka_unit_test(test_udp_checksum),
		cmocka_unit_test(test_udp_checksum_zero),
		cmocka_unit_test(test_maglev),
		cmocka_unit_test(test_maglev_sized_per_service),
		cmocka_unit_test(test_maglev_grows_a_size),
		cmocka_unit_test_teardown(test_maglev_over_cap_refused, maglev_cap_restore),
		cmocka_unit_test(test_maglev_miss_falls_back),
		cmocka_unit_test(test_maglev_compat_object),
		cmocka_unit_test(test_affinity),
		cmocka_unit_test(test_no_backend_reject),
		cmocka_unit_test(test_terminating_backends),
		cmocka_unit_test(test_hairpin),
		cmocka_unit_test(test_hairpin_reply),
		cmocka_unit_test(test_not_service),
		cmocka_unit_test(test_icmp_err_to_pod_udp),
		cmocka_unit_test(test_icmp_err_to_pod_tcp_frag_needed),
		cmocka_unit_test(test_icmp_err_from_pod),
		cmocka_unit_test(test_icmp_err_with_eth_trailer),
		cmocka_unit_test(test_icmp_err_ports_in_trailer),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_not_ipv4),
		cmocka_unit_test(test_ip_options),
		cmocka_unit_test(test_eth_padding),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_fragments_reply),
		cmocka_unit_test(test_fragment_unknown),
		cmocka_unit_test(test_fragments_hairpin),
		cmocka_unit_test(test_fragments_hairpin_reply),
	};

	env_require();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("bpf_datapath", tests, env_setup, env_teardown) ? 1 : 0;
}
