/* Unit tests for the map contract's encoding and the CLI's address parsing:
 * byte order of keys as the BPF programs read them, struct sizes and field
 * offsets, and the errors bad input gets. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>
#include "addr.h"
#include "rota/maps.h"

/* The layout bpftool and the BPF programs see; changing it is an ABI bump. */
static void test_layout(void **state)
{
	assert_int_equal(offsetof(struct rota_svc_key, port), 4);
	assert_int_equal(offsetof(struct rota_svc_key, proto), 6);
	assert_int_equal(offsetof(struct rota_svc_key, slot), 8);
	assert_int_equal(offsetof(struct rota_svc_entry, svc_id), 12);
	assert_int_equal(offsetof(struct rota_ct_key, proto), 12);
	assert_int_equal(offsetof(struct rota_ct_entry, nat_addr), 32);
	assert_int_equal(offsetof(struct rota_ct_entry, client_addr), 48);
	assert_int_equal(sizeof(struct rota_backend), 12);
	assert_int_equal(sizeof(struct rota_config), 40);
}

static void test_frontend_ok(void **state)
{
	struct rota_frontend fe;
	char err[ROTA_ERR_LEN], buf[ROTA_ADDR_STR_LEN];
	const uint8_t *b;

	assert_int_equal(rota_parse_frontend("10.96.0.10:80/TCP", &fe, err), 0);
	/* Network order in memory, exactly as on the wire. */
	b = (const uint8_t *)&fe.addr;
	assert_int_equal(b[0], 10);
	assert_int_equal(b[3], 10);
	b = (const uint8_t *)&fe.port;
	assert_int_equal(b[0], 0);
	assert_int_equal(b[1], 80);
	assert_int_equal(fe.proto, IPPROTO_TCP);
	assert_string_equal(rota_fmt_frontend(buf, &fe), "10.96.0.10:80/TCP");

	assert_int_equal(rota_parse_frontend("10.96.0.53:53/udp", &fe, err), 0);
	assert_int_equal(fe.proto, IPPROTO_UDP);
	assert_int_equal(rota_parse_frontend("10.96.0.1:443", &fe, err), 0);
	assert_int_equal(fe.proto, IPPROTO_TCP);
	assert_int_equal(ntohs(fe.port), 443);
}

static void expect_frontend_error(const char *in, const char *needle)
{
	struct rota_frontend fe;
	char err[ROTA_ERR_LEN] = "";

	assert_int_equal(rota_parse_frontend(in, &fe, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error for \"%s\" is \"%s\", expected it to mention \"%s\"", in, err, needle);
}

static void test_frontend_errors(void **state)
{
	expect_frontend_error("10.96.0.300:80/TCP", "frontend address \"10.96.0.300\"");
	expect_frontend_error("10.96.0.10:0/TCP", "frontend port \"0\"");
	expect_frontend_error("10.96.0.10:65536/TCP", "frontend port \"65536\"");
	expect_frontend_error("10.96.0.10:-1/TCP", "frontend port \"-1\"");
	expect_frontend_error("10.96.0.10:80x/TCP", "frontend port \"80x\"");
	expect_frontend_error("10.96.0.10:80/SCTP", "protocol \"SCTP\"");
	expect_frontend_error("10.96.0.10:80/FOO", "protocol \"FOO\"");
	expect_frontend_error("10.96.0.10", "expected ADDRESS:PORT");
	expect_frontend_error(":80/TCP", "frontend address");
	expect_frontend_error("010.96.0.10:80", "frontend address");
}

static void test_backend(void **state)
{
	char err[ROTA_ERR_LEN] = "", buf[ROTA_ADDR_STR_LEN];
	__be32 addr;
	__be16 port;

	assert_int_equal(rota_parse_addr_port("10.0.1.2:8080", "backend", &addr, &port, err), 0);
	assert_string_equal(rota_fmt_addr_port(buf, addr, port), "10.0.1.2:8080");
	assert_int_equal(rota_parse_addr_port("10.0.1.2:0", "backend", &addr, &port, err), -EINVAL);
	assert_non_null(strstr(err, "backend port \"0\""));
	assert_int_equal(rota_parse_addr_port("10.0.1:80", "backend", &addr, &port, err), -EINVAL);
	assert_non_null(strstr(err, "backend address \"10.0.1\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_frontend_ok),
		cmocka_unit_test(test_frontend_errors),
		cmocka_unit_test(test_backend),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
