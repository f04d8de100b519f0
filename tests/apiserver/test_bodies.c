/* Unit tests for jsonbody.c and yamlbody.c: what a request body may not
 * carry (NUL, duplicate keys, excessive nesting, alias bombs) and what is
 * mended (invalid UTF-8 becomes U+FFFD, as kube-apiserver stores it). */
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
#include "../../userspace/apiserver/yamlbody.h"

#define LIMIT (3u << 20)

/* Parses text (len bytes, 0: up to its NUL) and expects a refusal whose
 * message holds want. */
static void json_refused(const char *text, size_t len, const char *want)
{
	char err[300] = "";
	cJSON *o = json_body_parse(text, len ? len : strlen(text), err, sizeof(err));

	if (o)
		fail_msg("accepted %.60s", text);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

static void json_nul(void **state)
{
	static const char raw[] = "{\"metadata\":{\"name\":\"a\0b\"}}";

	(void)state;
	json_refused("{\"metadata\":{\"name\":\"a\\u0000b\"}}", 0, "\\u0000 (NUL) in a string at offset 22");
	json_refused("{\"data\":{\"k\\u0000x\":\"v\"}}", 0, "NUL");
	json_refused(raw, sizeof(raw) - 1, "a NUL byte at offset 22");
	/* an escaped backslash followed by the text u0000 is not a NUL */
	{
		char err[300];
		cJSON *o = json_body_parse("{\"a\":\"\\\\u0000\"}", 15, err, sizeof(err));

		assert_non_null(o);
		assert_string_equal(cJSON_GetObjectItem(o, "a")->valuestring, "\\u0000");
		cJSON_Delete(o);
	}
}

static void json_depth(void **state)
{
	size_t n = JSON_MAX_DEPTH + 1;
	char *deep = malloc(2 * n + 1);
	char err[300];
	cJSON *o;

	(void)state;
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	json_refused(deep, 2 * n, "nested deeper than 1000 levels at offset 1000");
	/* exactly at the limit parses */
	o = json_body_parse(deep + 1, 2 * n - 2, err, sizeof(err));
	assert_non_null(o);
	cJSON_Delete(o);
	/* brackets inside strings do not count */
	memset(deep, '[', n);
	deep[0] = '"';
	deep[n - 1] = '"';
	assert_int_equal(json_text_check(deep, n, err, sizeof(err)), 0);
	free(deep);
}

static void json_duplicate_keys(void **state)
{
	(void)state;
	json_refused("{\"metadata\":{\"name\":\"a\",\"name\":\"b\"}}", 0, "duplicate field \"metadata.name\"");
	json_refused("{\"spec\":{\"ports\":[{\"port\":1,\"port\":2}]}}", 0, "duplicate field \"spec.ports[].port\"");
	json_refused("{\"kind\":\"ConfigMap\",\"kind\":\"Secret\"}", 0, "duplicate field \"kind\"");
	{
		/* many distinct keys are fine (and sorted, not compared pairwise) */
		char *big = malloc(20 * 50000 + 16), err[300];
		size_t o = 0;
		cJSON *obj;

		o += sprintf(big, "{");
		for (int i = 0; i < 50000; i++)
			o += sprintf(big + o, "%s\"k%d\":%d", i ? "," : "", i, i);
		o += sprintf(big + o, "}");
		obj = json_body_parse(big, o, err, sizeof(err));
		assert_non_null(obj);
		cJSON_Delete(obj);
		free(big);
	}
}

static void json_utf8_mended(void **state)
{
	static const char text[] = "{\"data\":{\"v\":\"\xff\xfe\xc0\x80\",\"ok\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
				   "\"k\xed\xa0\x80\":\"surrogate\",\"cut\":\"a\xe2\x82\"}}";
	char err[300];
	cJSON *o = json_body_parse(text, sizeof(text) - 1, err, sizeof(err)), *d;

	(void)state;
	assert_non_null(o);
	d = cJSON_GetObjectItem(o, "data");
	/* four bad bytes (0xc0 0x80 is an overlong NUL): four replacements */
	assert_string_equal(cJSON_GetObjectItem(d, "v")->valuestring,
			    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(cJSON_GetObjectItem(d, "ok")->valuestring, "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_non_null(cJSON_GetObjectItem(d, "k\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
	assert_string_equal(cJSON_GetObjectItem(d, "cut")->valuestring, "a\xef\xbf\xbd\xef\xbf\xbd");
	cJSON_Delete(o);
}

static int yaml(const char *text, cJSON **out, char *err, size_t errlen)
{
	*out = NULL;
	return yaml_body_parse(text, strlen(text), LIMIT, out, err, errlen);
}

static void yaml_objects(void **state)
{
	char err[300];
	cJSON *o;

	(void)state;
	assert_int_equal(yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: {a: b}}\n"
			      "data:\n  port: \"80\"\n  n: 80\n  t: true\n  z: ~\n  l: [1, two]\n"
			      "base: &b {k: v}\ncopy: *b\n---\nignored: 1\n", &o, err, sizeof(err)), 0);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "name")->valuestring, "x");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "port")->valuestring, "80");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "n")));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "t")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "z")));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "copy"), "k")->valuestring, "v");
	assert_null(cJSON_GetObjectItem(o, "ignored"));
	cJSON_Delete(o);
	assert_int_equal(yaml("- a\n- b\n", &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a mapping"));
	assert_int_equal(yaml("a: [1, 2\n", &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "yaml: line"));
	assert_int_equal(yaml("? [k]\n: v\n", &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "mapping keys must be scalars"));
}

static void yaml_duplicate_key(void **state)
{
	char err[300];
	cJSON *o;

	(void)state;
	assert_int_equal(yaml("metadata:\n  name: a\n  name: b\n", &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 3: key \"name\" already set in map"));
}

/* Deep nesting used to be parsed whole before the depth was checked
 * (quadratic in depth: 40k levels took 19 s). The parse now stops at the
 * limit, so a syntax error further on is never reached. */
static void yaml_depth_stops_parse(void **state)
{
	size_t n = 40000;
	char *deep = malloc(n + 64), err[300];
	cJSON *o;

	(void)state;
	strcpy(deep, "a: ");
	memset(deep + 3, '[', n);
	strcpy(deep + 3 + n, "\n: : broken");
	assert_int_equal(yaml(deep, &o, err, sizeof(err)), -EINVAL);
	if (!strstr(err, "line 1: nested deeper than 64 levels"))
		fail_msg("%s", err);
	free(deep);
}

static void yaml_alias_bomb(void **state)
{
	char text[2048], err[300];
	size_t o = 0;
	cJSON *obj;

	(void)state;
	/* billion laughs: each level holds ten aliases of the one before */
	o += sprintf(text, "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
	for (int i = 1; i < 10; i++)
		o += sprintf(text + o, "a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i,
			     i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	assert_int_equal(yaml(text, &obj, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "aliases expand beyond the request size limit"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_nul),
		cmocka_unit_test(json_depth),
		cmocka_unit_test(json_duplicate_keys),
		cmocka_unit_test(json_utf8_mended),
		cmocka_unit_test(yaml_objects),
		cmocka_unit_test(yaml_duplicate_key),
		cmocka_unit_test(yaml_depth_stops_parse),
		cmocka_unit_test(yaml_alias_bomb),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
