/* Maglev consistent hashing (Eisenbud et al., NSDI'16): a lookup table of
 * M slots, each naming a backend, such that every backend gets M/N slots ±1
 * and removing one backend moves few others. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* True for the primes rota accepts as table sizes (251 … 131071). */
bool maglev_size_valid(uint32_t m);

/* Fills table[0..m) with indices into names[0..n). The result depends only on
 * the set of names, not their order, so every node builds the same table.
 * Returns 0, -EINVAL (n == 0 or m invalid) or -ENOMEM. */
int maglev_build(const char *const *names, size_t n, uint32_t m, uint32_t *table);
