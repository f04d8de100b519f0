/* A string-keyed chained hash map (keys copied), and a two-level object
 * store (namespace -> name -> cJSON) built on it. Not thread-safe: the
 * controller's lock guards every instance. */
#pragma once
#include <stddef.h>
#include <cjson/cJSON.h>

struct hent {
	char *key;
	void *val;
	long num;		/* free use: an index, a count */
	double t;		/* free use: a time */
	struct hent *next;
};

struct hmap {
	struct hent **b;
	size_t nb, n;
};

struct hent *hmap_get(const struct hmap *m, const char *key);
/* Finds or inserts key (val NULL, num 0, t 0); NULL on ENOMEM. */
struct hent *hmap_put(struct hmap *m, const char *key);
/* Removes key; returns its val (the caller frees it). */
void *hmap_del(struct hmap *m, const char *key);
/* Frees every entry; free_val (may be NULL) gets each val. */
void hmap_clear(struct hmap *m, void (*free_val)(void *));

#define hmap_for_each(m, e, i) \
	for ((i) = 0; (i) < (m)->nb; (i)++) \
		for ((e) = (m)->b[(i)]; (e); (e) = (e)->next)

/* namespace ("" for cluster-scoped) -> struct hmap of name -> cJSON *. */
struct store {
	struct hmap ns;
	size_t count;
};

cJSON *store_get(const struct store *s, const char *ns, const char *name);
/* Takes obj; returns the object it replaced (caller deletes) or NULL. */
cJSON *store_set(struct store *s, cJSON *obj);
/* Returns the removed object (caller deletes) or NULL. */
cJSON *store_remove(struct store *s, const char *ns, const char *name);
struct hmap *store_ns(const struct store *s, const char *ns);
void store_clear(struct store *s);

/* Small cJSON helpers. */
const char *jstr(const cJSON *o, const char *key);			/* NULL unless a string */
const cJSON *jpath(const cJSON *o, const char *a, const char *b);	/* o.a.b (b may be NULL) */
const char *jmeta(const cJSON *o, const char *key);			/* o.metadata.key as string */
