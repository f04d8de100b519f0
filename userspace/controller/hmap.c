/* String-keyed hash map and the namespace/name object store. */
#include <stdlib.h>
#include <string.h>
#include "hmap.h"

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

struct hent *hmap_get(const struct hmap *m, const char *key)
{
	struct hent *e;

	if (!m->nb)
		return NULL;
	for (e = m->b[hash(key) & (m->nb - 1)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

static int grow(struct hmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16, i;
	struct hent **b = calloc(nb, sizeof(*b)), *e, *next;

	if (!b)
		return -1;
	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e; e = next) {
			next = e->next;
			e->next = b[hash(e->key) & (nb - 1)];
			b[hash(e->key) & (nb - 1)] = e;
		}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

struct hent *hmap_put(struct hmap *m, const char *key)
{
	struct hent *e = hmap_get(m, key);
	size_t i;

	if (e)
		return e;
	if (m->n + 1 > m->nb * 3 / 4 && grow(m))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return NULL;
	}
	i = hash(key) & (m->nb - 1);
	e->next = m->b[i];
	m->b[i] = e;
	m->n++;
	return e;
}

void *hmap_del(struct hmap *m, const char *key)
{
	struct hent **p, *e;
	void *val;

	if (!m->nb)
		return NULL;
	for (p = &m->b[hash(key) & (m->nb - 1)]; (e = *p); p = &e->next)
		if (!strcmp(e->key, key)) {
			*p = e->next;
			val = e->val;
			free(e->key);
			free(e);
			m->n--;
			return val;
		}
	return NULL;
}

void hmap_clear(struct hmap *m, void (*free_val)(void *))
{
	struct hent *e, *next;
	size_t i;

	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e; e = next) {
			next = e->next;
			if (free_val)
				free_val(e->val);
			free(e->key);
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *jpath(const cJSON *o, const char *a, const char *b)
{
	o = cJSON_GetObjectItemCaseSensitive(o, a);
	return b ? cJSON_GetObjectItemCaseSensitive(o, b) : o;
}

const char *jmeta(const cJSON *o, const char *key)
{
	return jstr(cJSON_GetObjectItemCaseSensitive(o, "metadata"), key);
}

struct hmap *store_ns(const struct store *s, const char *ns)
{
	struct hent *e = hmap_get(&s->ns, ns ? ns : "");

	return e ? e->val : NULL;
}

cJSON *store_get(const struct store *s, const char *ns, const char *name)
{
	struct hmap *m = store_ns(s, ns);
	struct hent *e = m ? hmap_get(m, name) : NULL;

	return e ? e->val : NULL;
}

cJSON *store_set(struct store *s, cJSON *obj)
{
	const char *ns = jmeta(obj, "namespace"), *name = jmeta(obj, "name");
	struct hent *ne, *e;
	cJSON *old;

	if (!name) {
		cJSON_Delete(obj);
		return NULL;
	}
	ne = hmap_put(&s->ns, ns ? ns : "");
	if (!ne)
		goto nomem;
	if (!ne->val && !(ne->val = calloc(1, sizeof(struct hmap))))
		goto nomem;
	e = hmap_put(ne->val, name);
	if (!e)
		goto nomem;
	old = e->val;
	if (!old)
		s->count++;
	e->val = obj;
	return old;
nomem:
	cJSON_Delete(obj);
	return NULL;
}

cJSON *store_remove(struct store *s, const char *ns, const char *name)
{
	struct hmap *m = store_ns(s, ns);
	cJSON *old = m ? hmap_del(m, name) : NULL;

	if (old)
		s->count--;
	return old;
}

static void free_obj(void *v)
{
	cJSON_Delete(v);
}

static void free_nsmap(void *v)
{
	hmap_clear(v, free_obj);
	free(v);
}

void store_clear(struct store *s)
{
	hmap_clear(&s->ns, free_nsmap);
	s->count = 0;
}
