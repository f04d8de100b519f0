/* Maglev consistent hashing (Eisenbud et al., NSDI'16): a lookup table of
 * M slots, each naming a backend, such that every backend gets M/N slots ±1
 * and removing one backend moves few others. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* True for the primes rota accepts as table sizes (251 … 131071). */
bool maglev_size_valid(uint32_t m);

/* The table size of a service with `active` backends: the smallest prime of
 * the ladder 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071
 * that is at least 100 × active (each backend then owns M/N slots ± 1, within
 * 1 % of even). It depends on the count alone, so every node picks the same
 * size. 0 when active is 0 or the size needed is above max. */
uint32_t maglev_size_for(size_t active, uint32_t max);
/* The ladder itself, smallest first; *n gets its length. */
const uint32_t *maglev_sizes(size_t *n);

/* Fills table[0..m) with indices into names[0..n). The result depends only on
 * the set of names, not their order, so every node builds the same table.
 * Returns 0, -EINVAL (n == 0 or m invalid) or -ENOMEM. */
int maglev_build(const char *const *names, size_t n, uint32_t m, uint32_t *table);
