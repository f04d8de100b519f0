/* Unit tests for the watch-stream splitter (userspace/lib/k8s/json_stream.c):
 * whatever the chunking — every split position, one byte at a time, several
 * events in one chunk — each top-level JSON value comes out whole, once, in
 * order, also when strings hold braces, brackets, escaped quotes and
 * escaped backslashes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include "k8s/client.h"

#define MAX_VALUES 64

struct got {
	char *v[MAX_VALUES];
	size_t n;
	size_t stop_after;	/* return 1 from the callback after this many; 0: never */
};

static int collect(void *arg, const char *json, size_t len)
{
	struct got *g = arg;

	assert_true(g->n < MAX_VALUES);
	g->v[g->n] = strndup(json, len);
	assert_non_null(g->v[g->n]);
	g->n++;
	return g->stop_after && g->n >= g->stop_after ? 1 : 0;
}

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	memset(g, 0, sizeof(*g));
}

/* Feeds `in` cut at the given offsets (ascending, each in (0, len)). */
static void feed_cuts(const char *in, const size_t *cuts, size_t n_cuts, struct got *g)
{
	struct json_stream s = {};
	size_t len = strlen(in), prev = 0;

	for (size_t i = 0; i <= n_cuts; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;

		assert_int_equal(json_stream_feed(&s, in + prev, end - prev, collect, g), 0);
		prev = end;
	}
	json_stream_free(&s);
}

static void assert_values(const struct got *g, const char *const *want, size_t n_want, const char *ctx)
{
	if (g->n != n_want)
		fail_msg("%s: got %zu values, want %zu", ctx, g->n, n_want);
	for (size_t i = 0; i < n_want; i++)
		if (strcmp(g->v[i], want[i]))
			fail_msg("%s: value %zu is\n  %s\nwant\n  %s", ctx, i, g->v[i], want[i]);
}

/* Three watch events as rota-apiserver and kube-apiserver send them (one
 * per line), with strings that hold everything that could fool a brace
 * counter. */
static const char *const EV[] = {
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\"a\","
	"\"annotations\":{\"note\":\"braces } { ] [ inside\",\"q\":\"say \\\"}\\\" twice\"}},"
	"\"spec\":{\"clusterIP\":\"10.96.0.10\",\"ports\":[{\"port\":80},{\"port\":81}]}}}",
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"annotations\":"
	"{\"bs\":\"ends with a backslash \\\\\",\"mix\":\"\\\\\\\"{\\\\\"}},\"list\":[[],[{}],{\"x\":[1,2,{\"y\":\"]\"}]}]}}",
	"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12345\"},\"u\":\"\\u007b\\u007d\"}}",
};
#define N_EV (sizeof(EV) / sizeof(EV[0]))

static char *stream_of(const char *sep)
{
	size_t len = 0;
	char *s;

	for (size_t i = 0; i < N_EV; i++)
		len += strlen(EV[i]) + strlen(sep);
	s = calloc(1, len + 1);
	assert_non_null(s);
	for (size_t i = 0; i < N_EV; i++) {
		strcat(s, EV[i]);
		strcat(s, sep);
	}
	return s;
}

/* The test data itself is valid JSON, each event an object. */
static void test_events_are_json(void **state)
{
	for (size_t i = 0; i < N_EV; i++) {
		cJSON *j = cJSON_Parse(EV[i]);

		if (!cJSON_IsObject(j))
			fail_msg("event %zu is not a JSON object", i);
		cJSON_Delete(j);
	}
}

static void test_all_in_one_chunk(void **state)
{
	char *in = stream_of("\n");
	struct got g = {};

	feed_cuts(in, NULL, 0, &g);
	assert_values(&g, EV, N_EV, "one chunk");
	got_free(&g);
	free(in);
}

/* No separator between values, and odd whitespace around them. */
static void test_separators(void **state)
{
	static const char *const seps[] = { "", " ", "\r\n", "\n\n\t " };

	for (size_t k = 0; k < sizeof(seps) / sizeof(seps[0]); k++) {
		char *in = stream_of(seps[k]);
		struct got g = {};

		feed_cuts(in, NULL, 0, &g);
		assert_values(&g, EV, N_EV, seps[k]);
		got_free(&g);
		free(in);
	}
}

/* One cut at every byte position. */
static void test_every_split_position(void **state)
{
	char *in = stream_of("\n");
	size_t len = strlen(in);

	for (size_t cut = 1; cut < len; cut++) {
		struct got g = {};
		char ctx[64];

		snprintf(ctx, sizeof(ctx), "cut at %zu of %zu", cut, len);
		feed_cuts(in, &cut, 1, &g);
		assert_values(&g, EV, N_EV, ctx);
		got_free(&g);
	}
	free(in);
}

/* Two cuts at every pair of positions (some chunks then hold the end of
 * one event and the start of the next). */
static void test_every_pair_of_split_positions(void **state)
{
	char *in = stream_of("");
	size_t len = strlen(in);

	for (size_t a = 1; a < len; a++)
		for (size_t b = a + 1; b < len; b += 3) {
			size_t cuts[2] = { a, b };
			struct got g = {};
			char ctx[64];

			snprintf(ctx, sizeof(ctx), "cuts at %zu,%zu of %zu", a, b, len);
			feed_cuts(in, cuts, 2, &g);
			assert_values(&g, EV, N_EV, ctx);
			got_free(&g);
		}
	free(in);
}

static void test_one_byte_at_a_time(void **state)
{
	char *in = stream_of("\n");
	size_t len = strlen(in);
	size_t *cuts = calloc(len, sizeof(*cuts));
	struct got g = {};

	for (size_t i = 1; i < len; i++)
		cuts[i - 1] = i;
	feed_cuts(in, cuts, len - 1, &g);
	assert_values(&g, EV, N_EV, "1-byte chunks");
	got_free(&g);
	free(cuts);
	free(in);
}

/* Values arrive as soon as they are complete, not when the next starts. */
static void test_value_delivered_when_complete(void **state)
{
	struct json_stream s = {};
	struct got g = {};
	size_t l0 = strlen(EV[0]);

	assert_int_equal(json_stream_feed(&s, EV[0], l0 - 1, collect, &g), 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(json_stream_feed(&s, EV[0] + l0 - 1, 1, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.v[0], EV[0]);
	/* An empty feed changes nothing. */
	assert_int_equal(json_stream_feed(&s, "", 0, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(json_stream_feed(&s, "\n", 1, collect, &g), 0);
	assert_int_equal(json_stream_feed(&s, EV[1], strlen(EV[1]), collect, &g), 0);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.v[1], EV[1]);
	json_stream_free(&s);
	got_free(&g);
}

/* A value larger than the initial buffer, split in uneven chunks. */
static void test_large_value(void **state)
{
	size_t n = 20000, len;
	char *big = malloc(n * 16 + 64), *p = big;
	struct json_stream s = {};
	struct got g = {};

	p += sprintf(p, "{\"type\":\"ADDED\",\"object\":{\"items\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s\"{%zu}\"", i ? "," : "", i % 1000);
	p += sprintf(p, "]}}");
	len = (size_t)(p - big);
	for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 % 9973 + 1) {
		size_t chunk = off + step > len ? len - off : step;

		assert_int_equal(json_stream_feed(&s, big + off, chunk, collect, &g), 0);
	}
	assert_int_equal(g.n, 1);
	assert_int_equal(strlen(g.v[0]), len);
	assert_memory_equal(g.v[0], big, len);
	json_stream_free(&s);
	got_free(&g);
	free(big);
}

/* The callback's non-zero result ends the feed and is returned. */
static void test_callback_stops(void **state)
{
	char *in = stream_of("\n");
	struct json_stream s = {};
	struct got g = { .stop_after = 1 };

	assert_int_equal(json_stream_feed(&s, in, strlen(in), collect, &g), 1);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.v[0], EV[0]);
	json_stream_free(&s);
	got_free(&g);
	free(in);
}

/* Top-level arrays are values too (a Status body is an object, but the
 * splitter must not care). */
static void test_top_level_array(void **state)
{
	static const char *const want[] = { "[1,{\"a\":\"]\"},[2]]", "{\"b\":[]}" };
	const char *in = "[1,{\"a\":\"]\"},[2]]\n{\"b\":[]}\n";
	struct got g = {};

	for (size_t cut = 1; cut < strlen(in); cut++) {
		feed_cuts(in, &cut, 1, &g);
		assert_values(&g, want, 2, "array");
		got_free(&g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_are_json),
		cmocka_unit_test(test_all_in_one_chunk),
		cmocka_unit_test(test_separators),
		cmocka_unit_test(test_every_split_position),
		cmocka_unit_test(test_every_pair_of_split_positions),
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_value_delivered_when_complete),
		cmocka_unit_test(test_large_value),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_top_level_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
