/* Lists of pointers by string key (see keyed_list.h). */
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include "keyed_list.h"
#include "vec.h"

static int list_cmp(const void *a, const void *b)
{
	return strcmp(((const struct keyed_list *)a)->key, ((const struct keyed_list *)b)->key);
}

static void list_free(void *p)
{
	struct keyed_list *l = p;

	free(l->key);
	free(l->items);
	free(l);
}

struct keyed_list *keyed_list_find(void *const *root, const char *key)
{
	struct keyed_list k = { .key = (char *)key }, **l = tfind(&k, root, list_cmp);

	return l ? *l : NULL;
}

int keyed_list_add(void **root, const char *key, void *item)
{
	struct keyed_list *l = keyed_list_find(root, key);

	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l || !(l->key = strdup(key)) || !tsearch(l, root, list_cmp)) {
			if (l)
				free(l->key);
			free(l);
			return -ENOMEM;
		}
	}
	if (vec_grow(&l->items, &l->cap, l->n, sizeof(*l->items))) {
		if (!l->n) {
			tdelete(l, root, list_cmp);
			list_free(l);
		}
		return -ENOMEM;
	}
	l->items[l->n++] = item;
	return 0;
}

void keyed_list_remove(void **root, const char *key, const void *item)
{
	struct keyed_list *l = keyed_list_find(root, key);

	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		if (l->items[i] == item) {
			l->items[i] = l->items[--l->n];
			break;
		}
	if (!l->n) {
		tdelete(l, root, list_cmp);
		list_free(l);
	}
}

void keyed_list_destroy(void **root)
{
	tdestroy(*root, list_free);
	*root = NULL;
}
