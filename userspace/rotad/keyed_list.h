/* Lists of pointers by string key, in a tsearch tree: the cache's slices
 * of each Service and the reconciler's frontends of each Service. */
#pragma once
#include <stddef.h>

struct keyed_list {
	char *key;		/* tree key (owned) */
	void **items;
	size_t n, cap;
};

/* The list under key, or NULL when it is empty. */
struct keyed_list *keyed_list_find(void *const *root, const char *key);
/* Appends item to key's list; 0 or -ENOMEM (nothing added). */
int keyed_list_add(void **root, const char *key, void *item);
/* Removes item from key's list (order not kept); an emptied list goes. */
void keyed_list_remove(void **root, const char *key, const void *item);
/* Frees every list (not the items). */
void keyed_list_destroy(void **root);
