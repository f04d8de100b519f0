/* Unit tests for selector.c (label and field selectors), proto.c (the
 * protobuf bodies kubectl's typed clients send) and status.c messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../userspace/apiserver/proto.h"
#include "../../userspace/apiserver/selector.h"
#include "../../userspace/apiserver/status.h"

static bool lmatch(const char *sel, const char *labels)
{
	struct selector s;
	char err[256];
	cJSON *l = cJSON_Parse(labels);
	bool m;

	assert_int_equal(label_selector_parse(sel, &s, err, sizeof(err)), 0);
	m = label_selector_match(&s, l);
	selector_free(&s);
	cJSON_Delete(l);
	return m;
}

static void label_selectors(void **state)
{
	(void)state;
	assert_true(lmatch("", "{}"));
	assert_true(lmatch("app=web", "{\"app\":\"web\"}"));
	assert_true(lmatch("app==web", "{\"app\":\"web\"}"));
	assert_false(lmatch("app=web", "{\"app\":\"db\"}"));
	assert_true(lmatch("app!=web", "{}"));
	assert_true(lmatch("tier in (a, b),app", "{\"tier\":\"b\",\"app\":\"x\"}"));
	assert_false(lmatch("tier notin (a,b)", "{\"tier\":\"a\"}"));
	assert_true(lmatch("tier notin (a,b)", "{}"));
	assert_true(lmatch("!tier", "{\"app\":\"x\"}"));
	assert_false(lmatch("!tier", "{\"tier\":\"x\"}"));
	assert_true(lmatch("kubernetes.io/service-name=web", "{\"kubernetes.io/service-name\":\"web\"}"));
}

static void label_selector_errors(void **state)
{
	struct selector s;
	char err[256];

	(void)state;
	assert_int_equal(label_selector_parse("a in b", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(label_selector_parse("a in (b", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(label_selector_parse("=x", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unable to parse requirement"));
}

static void field_selectors(void **state)
{
	cJSON *pod = cJSON_Parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\"},"
				 "\"spec\":{\"nodeName\":\"a\",\"hostNetwork\":true}}");
	struct selector s;
	char err[256];

	(void)state;
	assert_int_equal(field_selector_parse("spec.nodeName=a,metadata.namespace!=x", &s, err, sizeof(err)), 0);
	assert_true(field_selector_match(&s, pod));
	selector_free(&s);
	assert_int_equal(field_selector_parse("spec.hostNetwork==true,metadata.name=q", &s, err, sizeof(err)), 0);
	assert_false(field_selector_match(&s, pod));
	selector_free(&s);
	assert_int_equal(field_selector_parse("spec.nodeName", &s, err, sizeof(err)), -EINVAL);
	cJSON_Delete(pod);
}

/* kubectl create service loadbalancer s3 --tcp=80:8080 --tcp=443:web, as sent */
static const unsigned char svc_pb[] = {
	0x6b,0x38,0x73,0x00,0x0a,0x0d,0x0a,0x02,0x76,0x31,0x12,0x07,0x53,0x65,0x72,0x76,
	0x69,0x63,0x65,0x12,0x90,0x01,0x0a,0x24,0x0a,0x02,0x73,0x33,0x12,0x00,0x1a,0x07,
	0x64,0x65,0x66,0x61,0x75,0x6c,0x74,0x22,0x00,0x2a,0x00,0x32,0x00,0x38,0x00,0x42,
	0x00,0x5a,0x09,0x0a,0x03,0x61,0x70,0x70,0x12,0x02,0x73,0x33,0x12,0x64,0x0a,0x1b,
	0x0a,0x07,0x38,0x30,0x2d,0x38,0x30,0x38,0x30,0x12,0x03,0x54,0x43,0x50,0x18,0x50,
	0x22,0x07,0x08,0x00,0x10,0x90,0x3f,0x1a,0x00,0x28,0x00,0x0a,0x1e,0x0a,0x07,0x34,
	0x34,0x33,0x2d,0x77,0x65,0x62,0x12,0x03,0x54,0x43,0x50,0x18,0xbb,0x03,0x22,0x09,
	0x08,0x01,0x10,0x00,0x1a,0x03,0x77,0x65,0x62,0x28,0x00,0x12,0x09,0x0a,0x03,0x61,
	0x70,0x70,0x12,0x02,0x73,0x33,0x1a,0x00,0x22,0x0c,0x4c,0x6f,0x61,0x64,0x42,0x61,
	0x6c,0x61,0x6e,0x63,0x65,0x72,0x3a,0x00,0x42,0x00,0x52,0x00,0x5a,0x00,0x60,0x00,
	0x68,0x00,0x1a,0x02,0x0a,0x00,0x1a,0x00,0x22,0x00,
};

static void proto_service(void **state)
{
	cJSON *obj = NULL, *want;
	char err[256] = "";

	(void)state;
	assert_int_equal(proto_decode(svc_pb, sizeof(svc_pb), &obj, err, sizeof(err)), 0);
	want = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Service\","
		"\"metadata\":{\"name\":\"s3\",\"namespace\":\"default\",\"labels\":{\"app\":\"s3\"}},"
		"\"spec\":{\"ports\":[{\"name\":\"80-8080\",\"protocol\":\"TCP\",\"port\":80,\"targetPort\":8080},"
		"{\"name\":\"443-web\",\"protocol\":\"TCP\",\"port\":443,\"targetPort\":\"web\"}],"
		"\"selector\":{\"app\":\"s3\"},\"type\":\"LoadBalancer\"}}");
	if (!cJSON_Compare(obj, want, 1))
		fail_msg("got %s", cJSON_PrintUnformatted(obj));
	cJSON_Delete(obj);
	cJSON_Delete(want);
}

static void proto_refuses(void **state)
{
	static const unsigned char pod[] = { 'k', '8', 's', 0, 0x0a, 0x09, 0x0a, 0x02, 'v', '1', 0x12, 0x03, 'P', 'o', 'd' };
	/* a Secret whose metadata carries an unknown non-zero field 99 */
	static const unsigned char odd[] = { 'k', '8', 's', 0, 0x0a, 0x0c, 0x0a, 0x02, 'v', '1', 0x12, 0x06,
		'S', 'e', 'c', 'r', 'e', 't', 0x12, 0x05, 0x0a, 0x03, 0x98, 0x06, 0x01 };
	cJSON *obj = NULL;
	char err[256];

	(void)state;
	assert_int_equal(proto_decode(pod, sizeof(pod), &obj, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(proto_decode(odd, sizeof(odd), &obj, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "field 99"));
	assert_int_equal(proto_decode("{}", 2, &obj, err, sizeof(err)), -EINVAL);
	assert_int_equal(proto_decode(svc_pb, 40, &obj, err, sizeof(err)), -EINVAL);
}

static void invalid_status(void **state)
{
	struct ferrs e = { 0 };
	cJSON *v = cJSON_CreateNumber(0), *st;
	const char *msg;

	(void)state;
	ferr_invalid(&e, "spec.ports[0].port", v, "must be between %d and %d, inclusive", 1, 65535);
	ferr_required(&e, "spec.ports[1].name");
	st = status_invalid("", "Service", "web", &e);
	msg = cJSON_GetObjectItem(st, "message")->valuestring;
	assert_string_equal(msg, "Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 0: "
			    "must be between 1 and 65535, inclusive, spec.ports[1].name: Required value]");
	assert_int_equal(status_code(st), 422);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
		cJSON_GetObjectItem(st, "details"), "causes"), 1), "field")->valuestring, "spec.ports[1].name");
	cJSON_Delete(st);
	cJSON_Delete(v);
	ferrs_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(label_selectors),
		cmocka_unit_test(label_selector_errors),
		cmocka_unit_test(field_selectors),
		cmocka_unit_test(proto_service),
		cmocka_unit_test(proto_refuses),
		cmocka_unit_test(invalid_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
