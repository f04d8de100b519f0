/* Self-check of the test's own checksum routine (pkt.c) against published
 * values, so that a wrong verifier cannot make wrong datapath output pass. */
#include <string.h>
#include "harness.h"
#include "tests.h"

void test_checksum_routine(void **state)
{
	/* RFC 1071 section 3 example: sum 0xddf2, checksum its complement. */
	static const uint8_t rfc1071[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	/* The IPv4 header example of the Wikipedia "IPv4 header checksum"
	 * article: checksum 0xb861. */
	uint8_t iph[20] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	static const uint8_t odd[] = { 0x01, 0x02, 0x03 };	/* 0x0102 + 0x0300 */
	struct pkt p = pkt_tcp("10.0.0.1", 1234, "10.0.0.2", 80, TCP_ACK);
	struct pkt u = pkt_udp("10.0.0.1", 1234, "10.0.0.2", 53, "abc", 3);
	struct frame f;

	assert_int_equal(csum_finish(sum16(rfc1071, sizeof(rfc1071), 0)), (uint16_t)~0xddf2);
	assert_int_equal(csum_finish(sum16(iph, sizeof(iph), 0)), 0xb861);
	iph[10] = 0xb8, iph[11] = 0x61;
	assert_true(ip_hdr_csum_ok_at(iph));
	assert_int_equal(csum_finish(sum16(odd, sizeof(odd), 0)), (uint16_t)~0x0402);

	/* The verifiers notice a changed payload byte and a changed address
	 * (pseudo-header), and accept UDP's "no checksum". */
	p.payload = (const uint8_t *)"hello";
	p.plen = 5;
	build(&f, &p);
	assert_true(ip_csum_ok(f.b) && l4_csum_ok(f.b));
	f.b[f.len - 1] ^= 1;
	assert_false(l4_csum_ok(f.b));
	f.b[f.len - 1] ^= 1;
	f.b[ETH_LEN + 19] ^= 1;
	assert_false(l4_csum_ok(f.b));
	assert_false(ip_csum_ok(f.b));

	build(&f, &u);
	assert_true(l4_csum_ok(f.b));
	f.b[ETH_LEN + 15] ^= 1;
	assert_false(l4_csum_ok(f.b));
	f.b[ETH_LEN + 20 + 6] = f.b[ETH_LEN + 20 + 7] = 0;
	assert_true(l4_csum_ok(f.b));
}
