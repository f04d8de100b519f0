/* Maglev table builder: each backend walks its own permutation of the table
 * (offset, skip from two hashes of its name) and claims the next free slot in
 * turn, so slot counts differ by at most one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "maglev.h"

bool maglev_size_valid(uint32_t m)
{
	if (m < 251 || m > 131071)
		return false;
	for (uint32_t d = 2; d * d <= m; d++)
		if (m % d == 0)
			return false;
	return true;
}

/* Primes just below powers of two: a table is whole chunks of
 * ROTA_MAGLEV_CHUNK ids with little padding (include/rota/maps.h). */
static const uint32_t ladder[] = {
	251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
};

uint32_t maglev_size_for(size_t active, uint32_t max)
{
	if (!active || active > UINT32_MAX / 100)
		return 0;
	for (size_t i = 0; i < sizeof(ladder) / sizeof(ladder[0]); i++)
		if (ladder[i] >= active * 100)
			return ladder[i] <= max ? ladder[i] : 0;
	return 0;
}

const uint32_t *maglev_sizes(size_t *n)
{
	*n = sizeof(ladder) / sizeof(ladder[0]);
	return ladder;
}

/* FNV-1a 64 with a seed folded in: stable across builds and machines. */
static uint64_t name_hash(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	/* Final avalanche (splitmix64) so similar names spread. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static const char *const *sort_names;

static int cmp_index(const void *a, const void *b)
{
	return strcmp(sort_names[*(const size_t *)a], sort_names[*(const size_t *)b]);
}

int maglev_build(const char *const *names, size_t n, uint32_t m, uint32_t *table)
{
	uint32_t *pos = NULL, *skip = NULL;
	size_t *order = NULL, filled = 0;
	int err = -ENOMEM;

	if (!n || !maglev_size_valid(m))
		return -EINVAL;
	pos = calloc(n, sizeof(*pos));
	skip = calloc(n, sizeof(*skip));
	order = calloc(n, sizeof(*order));
	if (!pos || !skip || !order)
		goto out;

	/* Fill in name order, not input order: same set, same table. */
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	sort_names = names;
	qsort(order, n, sizeof(*order), cmp_index);

	for (size_t i = 0; i < n; i++) {
		pos[i] = name_hash(names[i], 0x6d61676c) % m;	/* the offset */
		skip[i] = name_hash(names[i], 0x65763031) % (m - 1) + 1;
	}
	for (uint32_t j = 0; j < m; j++)
		table[j] = UINT32_MAX;

	while (filled < m) {
		for (size_t k = 0; k < n && filled < m; k++) {
			size_t i = order[k];
			uint32_t c;

			/* The permutation's next slot, (offset + j × skip) mod m,
			 * by addition: a division per step costs more than the
			 * rest of the build. */
			do {
				c = pos[i];
				pos[i] += skip[i];
				if (pos[i] >= m)
					pos[i] -= m;
			} while (table[c] != UINT32_MAX);
			table[c] = (uint32_t)i;
			filled++;
		}
	}
	err = 0;
out:
	free(pos);
	free(skip);
	free(order);
	return err;
}
