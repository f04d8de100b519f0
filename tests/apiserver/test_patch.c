/* Unit tests for patch.c: JSON merge patch, JSON patch and strategic merge
 * patch with the directives kubectl sends. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../userspace/apiserver/patch.h"

/* Applies fn(doc, patch) and compares with want (all JSON texts). */
static void expect_doc(int kind, const char *doc, const char *patch, const char *want)
{
	cJSON *d = cJSON_Parse(doc), *p = cJSON_Parse(patch), *w = cJSON_Parse(want);
	char err[256] = "";
	int rc;

	assert_non_null(d);
	assert_non_null(p);
	assert_non_null(w);
	rc = kind == 0 ? merge_patch_apply(&d, p) :
	     kind == 1 ? json_patch_apply(&d, p, err, sizeof(err)) :
	     strategic_merge_patch_apply(&d, p, err, sizeof(err));
	if (rc)
		fail_msg("patch failed: %s", err);
	if (!cJSON_Compare(d, w, 1)) {
		char *got = cJSON_PrintUnformatted(d);

		fail_msg("got %s want %s", got, want);
	}
	cJSON_Delete(d);
	cJSON_Delete(p);
	cJSON_Delete(w);
}

static void merge_patch(void **state)
{
	(void)state;
	expect_doc(0, "{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"l\":[1,2]}",
		   "{\"a\":null,\"b\":{\"c\":9},\"l\":[3],\"n\":\"x\"}",
		   "{\"b\":{\"c\":9,\"d\":3},\"l\":[3],\"n\":\"x\"}");
}

static void json_patch(void **state)
{
	(void)state;
	expect_doc(1, "{\"a\":{\"b\":[1,2,3]},\"x\":\"y\"}",
		   "[{\"op\":\"add\",\"path\":\"/a/b/1\",\"value\":9},"
		   "{\"op\":\"remove\",\"path\":\"/a/b/0\"},"
		   "{\"op\":\"replace\",\"path\":\"/x\",\"value\":\"z\"},"
		   "{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/c\"},"
		   "{\"op\":\"move\",\"from\":\"/c\",\"path\":\"/d~1e\"},"
		   "{\"op\":\"add\",\"path\":\"/a/b/-\",\"value\":7},"
		   "{\"op\":\"test\",\"path\":\"/x\",\"value\":\"z\"}]",
		   "{\"a\":{\"b\":[9,2,3,7]},\"x\":\"z\",\"d/e\":\"z\"}");
}

static void json_patch_errors(void **state)
{
	cJSON *d = cJSON_Parse("{\"a\":1}"), *p;
	char err[256];

	(void)state;
	p = cJSON_Parse("[{\"op\":\"replace\",\"path\":\"/missing\",\"value\":1}]");
	assert_int_equal(json_patch_apply(&d, p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/missing"));
	cJSON_Delete(p);
	p = cJSON_Parse("[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]");
	assert_int_equal(json_patch_apply(&d, p, err, sizeof(err)), -EINVAL);
	cJSON_Delete(p);
	p = cJSON_Parse("{\"op\":\"add\"}");
	assert_int_equal(json_patch_apply(&d, p, err, sizeof(err)), -EINVAL);
	cJSON_Delete(p);
	cJSON_Delete(d);
}

static void smp_service_ports_by_port(void **state)
{
	(void)state;
	expect_doc(2, "{\"spec\":{\"ports\":[{\"port\":80,\"name\":\"http\",\"targetPort\":8080},{\"port\":443,\"name\":\"https\"}]}}",
		   "{\"spec\":{\"ports\":[{\"port\":443,\"targetPort\":8443},{\"port\":53,\"name\":\"dns\"}]}}",
		   "{\"spec\":{\"ports\":[{\"port\":80,\"name\":\"http\",\"targetPort\":8080},"
		   "{\"port\":443,\"name\":\"https\",\"targetPort\":8443},{\"port\":53,\"name\":\"dns\"}]}}");
}

static void smp_directives(void **state)
{
	(void)state;
	/* $patch: delete on a keyed element, $setElementOrder from kubectl apply */
	expect_doc(2, "{\"spec\":{\"ports\":[{\"port\":80},{\"port\":443},{\"port\":53}]}}",
		   "{\"spec\":{\"$setElementOrder/ports\":[{\"port\":53},{\"port\":80}],"
		   "\"ports\":[{\"port\":443,\"$patch\":\"delete\"}]}}",
		   "{\"spec\":{\"ports\":[{\"port\":53},{\"port\":80}]}}");
	/* primitive merge list and $deleteFromPrimitiveList */
	expect_doc(2, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
		   "{\"metadata\":{\"finalizers\":[\"c\"],\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}}",
		   "{\"metadata\":{\"finalizers\":[\"b\",\"c\"]}}");
	/* $patch: replace on a map, $retainKeys */
	expect_doc(2, "{\"data\":{\"a\":\"1\",\"b\":\"2\"},\"s\":{\"x\":1,\"y\":2}}",
		   "{\"data\":{\"$patch\":\"replace\",\"c\":\"3\"},\"s\":{\"$retainKeys\":[\"y\",\"z\"],\"z\":3}}",
		   "{\"data\":{\"c\":\"3\"},\"s\":{\"y\":2,\"z\":3}}");
	/* lists without a merge strategy are replaced (EndpointSlice endpoints) */
	expect_doc(2, "{\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],\"ports\":[{\"port\":1}]}",
		   "{\"endpoints\":[{\"addresses\":[\"10.0.0.2\"]}]}",
		   "{\"endpoints\":[{\"addresses\":[\"10.0.0.2\"]}],\"ports\":[{\"port\":1}]}");
	/* containers by name, nested container ports by containerPort, null deletes */
	expect_doc(2, "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i1\",\"ports\":[{\"containerPort\":80}]}]},\"x\":1}",
		   "{\"x\":null,\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":81}]},{\"name\":\"b\",\"image\":\"i2\"}]}}",
		   "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"i1\",\"ports\":[{\"containerPort\":80},{\"containerPort\":81}]},"
		   "{\"name\":\"b\",\"image\":\"i2\"}]}}");
}

static void smp_missing_merge_key(void **state)
{
	cJSON *d = cJSON_Parse("{\"spec\":{\"ports\":[{\"port\":80}]}}");
	cJSON *p = cJSON_Parse("{\"spec\":{\"ports\":[{\"name\":\"x\"}]}}");
	char err[256];

	(void)state;
	assert_int_equal(strategic_merge_patch_apply(&d, p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "merge key"));
	cJSON_Delete(d);
	cJSON_Delete(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(merge_patch),
		cmocka_unit_test(json_patch),
		cmocka_unit_test(json_patch_errors),
		cmocka_unit_test(smp_service_ports_by_port),
		cmocka_unit_test(smp_directives),
		cmocka_unit_test(smp_missing_merge_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
