/* Unit tests for patch.c: JSON merge patch, JSON patch and strategic merge
 * patch with the directives kubectl sends. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../userspace/apiserver/jsonbody.h"
#include "../../userspace/apiserver/patch.h"

/* the server passes its request size limit, 3 MiB by default */
#define LIMIT (3u << 20)

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
	     kind == 1 ? json_patch_apply(&d, p, LIMIT, err, sizeof(err)) :
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
	assert_int_equal(json_patch_apply(&d, p, LIMIT, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/missing"));
	cJSON_Delete(p);
	p = cJSON_Parse("[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]");
	assert_int_equal(json_patch_apply(&d, p, LIMIT, err, sizeof(err)), -EINVAL);
	cJSON_Delete(p);
	p = cJSON_Parse("{\"op\":\"add\"}");
	assert_int_equal(json_patch_apply(&d, p, LIMIT, err, sizeof(err)), -EINVAL);
	cJSON_Delete(p);
	cJSON_Delete(d);
}

/* An index past INT_MAX once wrapped negative and array insertion looped
 * forever; now it is just a path that does not exist. */
static void json_patch_huge_index(void **state)
{
	static const char *const idx[] = { "4294967295", "2147483648", "99999999999999999999", "-1", "+1", " 1", "01" };
	char err[256], text[256];

	(void)state;
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		cJSON *d = cJSON_Parse("{\"l\":[1,2]}"), *p;

		snprintf(text, sizeof(text), "[{\"op\":\"add\",\"path\":\"/l/%s\",\"value\":3}]", idx[i]);
		p = cJSON_Parse(text);
		assert_int_equal(json_patch_apply(&d, p, LIMIT, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "missing path"));
		cJSON_Delete(p);
		snprintf(text, sizeof(text), "[{\"op\":\"remove\",\"path\":\"/l/%s\"}]", idx[i]);
		p = cJSON_Parse(text);
		assert_int_equal(json_patch_apply(&d, p, LIMIT, err, sizeof(err)), -EINVAL);
		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "l")), 2);
		cJSON_Delete(p);
		cJSON_Delete(d);
	}
}

/* Each copy of the whole document into itself doubles it: 20 such ops in
 * a 1 KB patch once took 3 GB. The copies now add up to the limit at most. */
static void json_patch_copy_bomb(void **state)
{
	cJSON *d = cJSON_Parse("{\"data\":{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}");
	cJSON *p = cJSON_CreateArray();
	char err[256], path[32];

	(void)state;
	for (int i = 0; i < 40; i++) {
		cJSON *op = cJSON_CreateObject();

		snprintf(path, sizeof(path), "/data/c%d", i);
		cJSON_AddStringToObject(op, "op", "copy");
		cJSON_AddStringToObject(op, "from", "/data");
		cJSON_AddStringToObject(op, "path", path);
		cJSON_AddItemToArray(p, op);
	}
	assert_int_equal(json_patch_apply(&d, p, LIMIT, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "copies add up to more than 3145728 bytes"));
	cJSON_Delete(p);
	cJSON_Delete(d);
	/* a few copies well under the limit still apply */
	expect_doc(1, "{\"a\":{\"b\":1}}",
		   "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},{\"op\":\"copy\",\"from\":\"/c\",\"path\":\"/c/d\"}]",
		   "{\"a\":{\"b\":1},\"c\":{\"b\":1,\"d\":{\"b\":1}}}");
}

/* Copies placed inside themselves deepen the document; past the nesting
 * limit it could no longer be printed without exhausting the stack. */
static void json_patch_depth_bound(void **state)
{
	cJSON *d = cJSON_Parse("{\"a\":{}}"), *p;
	char err[256], *text;
	size_t n = 0;

	(void)state;
	/* [{"op":"add","path":"/a/a/a/...","value":{}}] 1000 levels down */
	text = malloc(8 * JSON_MAX_DEPTH + 64);
	assert_non_null(text);
	n += sprintf(text, "[{\"op\":\"add\",\"path\":\"");
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		n += sprintf(text + n, "/a");
	sprintf(text + n, "\",\"value\":{}}]");
	p = cJSON_Parse(text);
	assert_non_null(p);
	assert_int_equal(json_patch_apply(&d, p, LIMIT, err, sizeof(err)), -EINVAL);
	if (!strstr(err, "nest deeper than 1000 levels"))
		fail_msg("%s", err);
	cJSON_Delete(p);
	cJSON_Delete(d);
	free(text);
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
		cmocka_unit_test(json_patch_huge_index),
		cmocka_unit_test(json_patch_copy_bomb),
		cmocka_unit_test(json_patch_depth_bound),
		cmocka_unit_test(smp_service_ports_by_port),
		cmocka_unit_test(smp_directives),
		cmocka_unit_test(smp_missing_merge_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
