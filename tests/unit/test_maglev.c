/* Unit tests for the Maglev table builder: balance, disruption on removal,
 * independence from input order, and rejected sizes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "maglev.h"

#define M 16381

static char **make_names(size_t n)
{
	char **names = calloc(n, sizeof(*names));

	for (size_t i = 0; i < n; i++) {
		names[i] = malloc(32);
		snprintf(names[i], 32, "10.%zu.%zu.%zu:8080", i / 65536, (i / 256) % 256, i % 256);
	}
	return names;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Every backend's share is within 1% of M/N (Maglev gives M/N ± 1). */
static void test_even_share(void **state)
{
	for (size_t n = 10; n <= 160; n *= 2) {
		char **names = make_names(n);
		uint32_t *table = calloc(M, sizeof(*table));
		size_t *count = calloc(n, sizeof(*count));
		double even = (double)M / (double)n;

		assert_int_equal(maglev_build((const char *const *)names, n, M, table), 0);
		for (size_t j = 0; j < M; j++) {
			assert_true(table[j] < n);
			count[table[j]]++;
		}
		for (size_t i = 0; i < n; i++) {
			double dev = ((double)count[i] - even) / even;

			if (dev < -0.01 || dev > 0.01)
				fail_msg("n=%zu backend %zu has %zu slots, even share %.1f", n, i, count[i], even);
		}
		free(count);
		free(table);
		free_names(names, n);
	}
}

/* Removing one of N backends remaps at most 1/N + 2% of the table. */
static void test_removal_disruption(void **state)
{
	for (size_t n = 10; n <= 100; n += 15) {
		char **names = make_names(n);
		uint32_t *before = calloc(M, sizeof(*before)), *after = calloc(M, sizeof(*after));
		const char **rest = calloc(n - 1, sizeof(*rest));
		size_t gone = n / 2, moved = 0;

		assert_int_equal(maglev_build((const char *const *)names, n, M, before), 0);
		for (size_t i = 0, k = 0; i < n; i++)
			if (i != gone)
				rest[k++] = names[i];
		assert_int_equal(maglev_build(rest, n - 1, M, after), 0);
		for (size_t j = 0; j < M; j++) {
			const char *b = names[before[j]], *a = rest[after[j]];

			/* Slots of the removed backend must move; others should stay. */
			if (before[j] != gone && strcmp(a, b))
				moved++;
		}
		double frac = (double)moved / M, limit = 1.0 / (double)n + 0.02;

		if (frac > limit)
			fail_msg("n=%zu: %.2f%% of slots of surviving backends remapped (limit %.2f%%)", n,
				 frac * 100, limit * 100);
		free(rest);
		free(before);
		free(after);
		free_names(names, n);
	}
}

/* Same set in another order, same table: every node agrees. */
static void test_order_independent(void **state)
{
	size_t n = 12;
	char **names = make_names(n);
	const char **rev = calloc(n, sizeof(*rev));
	uint32_t *a = calloc(M, sizeof(*a)), *b = calloc(M, sizeof(*b));

	for (size_t i = 0; i < n; i++)
		rev[i] = names[n - 1 - i];
	assert_int_equal(maglev_build((const char *const *)names, n, M, a), 0);
	assert_int_equal(maglev_build(rev, n, M, b), 0);
	for (size_t j = 0; j < M; j++)
		assert_string_equal(names[a[j]], rev[b[j]]);
	free(rev);
	free(a);
	free(b);
	free_names(names, n);
}

static void test_sizes(void **state)
{
	const char *one[] = { "10.0.0.1:80" };
	uint32_t table[257];

	assert_true(maglev_size_valid(251));
	assert_true(maglev_size_valid(16381));
	assert_true(maglev_size_valid(131071));
	assert_false(maglev_size_valid(16384));
	assert_false(maglev_size_valid(250));
	assert_false(maglev_size_valid(131101));
	assert_int_equal(maglev_build(one, 0, 251, table), -EINVAL);
	assert_int_equal(maglev_build(one, 1, 256, table), -EINVAL);
	assert_int_equal(maglev_build(one, 1, 257, table), 0);
	for (size_t j = 0; j < 257; j++)
		assert_int_equal(table[j], 0);
}

/* Per-service sizes: the smallest ladder prime >= 100 x active backends,
 * 0 above the cap or past the ladder, and every ladder size a valid one. */
static void test_size_ladder(void **state)
{
	size_t n;
	const uint32_t *sizes = maglev_sizes(&n);

	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++) {
		assert_true(maglev_size_valid(sizes[i]));
		assert_true(i == 0 || sizes[i] > sizes[i - 1]);
		/* The largest count a size serves gets it; one more gets the next. */
		assert_int_equal(maglev_size_for(sizes[i] / 100, 131071), sizes[i]);
		assert_int_equal(maglev_size_for(sizes[i] / 100 + 1, 131071), i + 1 < n ? sizes[i + 1] : 0);
	}
	assert_int_equal(maglev_size_for(0, 131071), 0);
	assert_int_equal(maglev_size_for(2, 131071), 251);
	assert_int_equal(maglev_size_for(10, 131071), 1021);
	assert_int_equal(maglev_size_for(11, 131071), 2039);
	assert_int_equal(maglev_size_for(11, 1021), 0);
	assert_int_equal(maglev_size_for(10, 1021), 1021);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_even_share),
		cmocka_unit_test(test_removal_disruption),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_size_ladder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
