/* Growable arrays: the one realloc-and-double rotad's indexes and lists use. */
#pragma once
#include <errno.h>
#include <stdlib.h>

/* Makes room for one more element in an array *arr of *cap elements of
 * size bytes, n of them used: doubles *cap (from 4) when full. 0, or
 * -ENOMEM with *arr and *cap unchanged. */
static inline int vec_grow(void *arr, size_t *cap, size_t n, size_t size)
{
	void **p = arr, *v;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 4;
	v = realloc(*p, c * size);
	if (!v)
		return -ENOMEM;
	*p = v;
	*cap = c;
	return 0;
}
