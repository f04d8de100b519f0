/* Cache of parsed objects in tsearch trees (O(log n) per event), an index
 * of slices by Service, the set of changed Services, plus the bookkeeping
 * health and latency metrics need. */
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cache.h"
#include "keyed_list.h"
#include "vec.h"
#include "log.h"

double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Both object kinds start with their key. */
static int key_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void obj_free(enum cache_kind kind, void *o)
{
	if (kind == CACHE_SERVICES)
		svc_obj_free(o);
	else
		slice_obj_free(o);
	free(o);
}

static void free_svc(void *o) { obj_free(CACHE_SERVICES, o); }
static void free_slice(void *o) { obj_free(CACHE_SLICES, o); }

/* ---- slices by Service ---- */

static void index_add(struct cache *c, const struct slice_obj *s)
{
	if (!*s->svc_key || !s->ipv4)	/* other families carry no endpoints for rota */
		return;
	if (keyed_list_add(&c->by_service, s->svc_key, (void *)s))
		pr_warn("endpointslice %s: out of memory indexing it", s->key);
}

static void index_remove(struct cache *c, const struct slice_obj *s)
{
	keyed_list_remove(&c->by_service, s->svc_key, s);
}

static void index_add_node(const void *node, VISIT which, void *arg)
{
	if (which == postorder || which == leaf)
		index_add(arg, *(const struct slice_obj *const *)node);
}

static void index_rebuild(struct cache *c)
{
	keyed_list_destroy(&c->by_service);
	twalk_r(c->root[CACHE_SLICES], index_add_node, c);
}

/* ---- changed Services ---- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void mark_dirty(struct cache *c, const char *svc_key)
{
	char *k, **slot;

	if (c->dirty_all || !*svc_key || tfind(svc_key, &c->dirty, str_cmp))
		return;
	k = strdup(svc_key);
	slot = k ? tsearch(k, &c->dirty, str_cmp) : NULL;
	if (!slot) {
		free(k);
		c->dirty_all = true;	/* cannot remember it: revisit everything */
	}
}

void cache_init(struct cache *c, const char *node_name)
{
	memset(c, 0, sizeof(*c));
	c->node_name = node_name;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->changed, NULL);
}

void cache_free(struct cache *c)
{
	keyed_list_destroy(&c->by_service);
	tdestroy(c->dirty, free);
	tdestroy(c->root[CACHE_SERVICES], free_svc);
	tdestroy(c->root[CACHE_SLICES], free_slice);
	free(c->triggers);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->changed);
}

/* Lock held. */
static void add_trigger(struct cache *c, double trigger)
{
	if (vec_grow(&c->triggers, &c->cap_triggers, c->n_triggers, sizeof(*c->triggers)))
		return;
	c->triggers[c->n_triggers++] = trigger;
}

static void mark_changed(struct cache *c, double trigger)
{
	c->generation++;
	if (!c->first_pending)
		c->first_pending = wall_now();
	if (trigger > 0)
		add_trigger(c, trigger);
	pthread_cond_signal(&c->changed);
}

void cache_requeue_triggers(struct cache *c, const double *t, size_t n)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++)
		add_trigger(c, t[i]);
	pthread_mutex_unlock(&c->lock);
}

static void *parse(const struct cache *c, enum cache_kind kind, const cJSON *obj)
{
	void *o = calloc(1, kind == CACHE_SERVICES ? sizeof(struct svc_obj) : sizeof(struct slice_obj));
	int err;

	if (!o)
		return NULL;
	err = kind == CACHE_SERVICES ? svc_parse(obj, o) : slice_parse(obj, c->node_name, o);
	if (err) {
		obj_free(kind, o);
		return NULL;
	}
	return o;
}

/* The Service an object belongs to: its own key, or a slice's svc_key. */
static const char *owning_service(enum cache_kind kind, const void *o)
{
	return kind == CACHE_SERVICES ? ((const struct svc_obj *)o)->key : ((const struct slice_obj *)o)->svc_key;
}

/* An object leaves the cache: its Service needs a look. */
static void forget(struct cache *c, enum cache_kind kind, void *o)
{
	mark_dirty(c, owning_service(kind, o));
	if (kind == CACHE_SLICES)
		index_remove(c, o);
	obj_free(kind, o);
}

/* Inserts or replaces; takes ownership of o. Lock held. */
static void put(struct cache *c, enum cache_kind kind, void *o)
{
	void **slot = tsearch(o, &c->root[kind], key_cmp);

	if (!slot) {
		obj_free(kind, o);
		c->dirty_all = true;	/* the cache lost an update: a full sync repairs */
		return;
	}
	if (*slot != o) {
		void *old = *slot;

		*slot = o;	/* same key: swap the node's payload */
		forget(c, kind, old);	/* a slice may have moved to another Service */
	} else {
		c->count[kind]++;
	}
	if (kind == CACHE_SLICES)
		index_add(c, o);
	mark_dirty(c, owning_service(kind, o));
}

static void del(struct cache *c, enum cache_kind kind, const char *key)
{
	void **slot = tfind(key, &c->root[kind], key_cmp);
	void *old;

	if (!slot)
		return;
	old = *slot;
	tdelete(key, &c->root[kind], key_cmp);
	forget(c, kind, old);
	c->count[kind]--;
}

void cache_apply(struct cache *c, enum cache_kind kind, const char *type, const cJSON *obj)
{
	char key[OBJ_KEY_LEN];
	void *o = NULL;
	double trigger = 0;

	if (obj_key(obj, key)) {
		pr_warn("%s event without metadata.name: ignored", kind == CACHE_SERVICES ? "service" : "endpointslice");
		return;
	}
	if (strcmp(type, "DELETED")) {
		o = parse(c, kind, obj);
		if (!o)
			return;
		if (kind == CACHE_SLICES)
			trigger = ((struct slice_obj *)o)->trigger_time;
	}
	pthread_mutex_lock(&c->lock);
	if (o)
		put(c, kind, o);
	else
		del(c, kind, key);
	mark_changed(c, trigger);
	pthread_mutex_unlock(&c->lock);
}

void cache_list_add(const struct cache *c, struct cache_list *l, const cJSON *items)
{
	const cJSON *it;

	/* Parsed outside the lock, page by page: only the compact objects of
	 * a large list are ever held at once, never the whole list's JSON. */
	cJSON_ArrayForEach(it, items) {
		void *o = parse(c, l->kind, it);
		void **slot;

		if (!o)
			continue;
		slot = tsearch(o, &l->root, key_cmp);
		if (slot && *slot == o)
			l->n++;
		else
			obj_free(l->kind, o);
	}
}

void cache_list_commit(struct cache *c, struct cache_list *l)
{
	void *old;

	pthread_mutex_lock(&c->lock);
	old = c->root[l->kind];
	c->root[l->kind] = l->root;
	c->count[l->kind] = l->n;
	c->synced[l->kind] = true;
	if (l->kind == CACHE_SLICES)
		index_rebuild(c);	/* before the old slices are freed */
	/* A list may stand for any number of missed events. */
	c->dirty_all = true;
	tdestroy(c->dirty, free);
	c->dirty = NULL;
	mark_changed(c, 0);
	pthread_mutex_unlock(&c->lock);
	tdestroy(old, l->kind == CACHE_SERVICES ? free_svc : free_slice);
	l->root = NULL;
	l->n = 0;
}

void cache_list_abort(struct cache_list *l)
{
	tdestroy(l->root, l->kind == CACHE_SERVICES ? free_svc : free_slice);
	l->root = NULL;
	l->n = 0;
}

void cache_replace(struct cache *c, enum cache_kind kind, const cJSON *items)
{
	struct cache_list l = { .kind = kind };

	cache_list_add(c, &l, items);
	cache_list_commit(c, &l);
}

double cache_sync_begin(struct cache *c)
{
	double taken;

	pthread_mutex_lock(&c->lock);
	taken = c->first_pending;
	c->applying_since = taken;
	c->first_pending = 0;
	pthread_mutex_unlock(&c->lock);
	return taken;
}

void cache_sync_end(struct cache *c, bool ok, double taken)
{
	pthread_mutex_lock(&c->lock);
	if (!ok && taken && (!c->first_pending || taken < c->first_pending))
		c->first_pending = taken;
	c->applying_since = 0;
	pthread_mutex_unlock(&c->lock);
}

double cache_oldest_unapplied(struct cache *c)
{
	double a, p;

	pthread_mutex_lock(&c->lock);
	a = c->applying_since;
	p = c->first_pending;
	pthread_mutex_unlock(&c->lock);
	return !a ? p : !p ? a : a < p ? a : p;
}

struct walk_ctx {
	void (*fn)(const void *obj, void *arg);
	void *arg;
};

static void walk_node(const void *node, VISIT which, void *arg)
{
	struct walk_ctx *w = arg;

	if (which == postorder || which == leaf)
		w->fn(*(void *const *)node, w->arg);
}

void cache_walk(struct cache *c, enum cache_kind kind, void (*fn)(const void *obj, void *arg), void *arg)
{
	struct walk_ctx w = { fn, arg };

	twalk_r(c->root[kind], walk_node, &w);
}

const struct svc_obj *cache_service(struct cache *c, const char *key)
{
	void **slot = tfind(key, &c->root[CACHE_SERVICES], key_cmp);

	return slot ? *slot : NULL;
}

const struct slice_obj *const *cache_service_slices(struct cache *c, const char *key, size_t *n)
{
	struct keyed_list *l = keyed_list_find(&c->by_service, key);

	*n = l ? l->n : 0;
	return l ? (const struct slice_obj *const *)l->items : NULL;
}

static void collect_key(const void *node, VISIT which, void *arg)
{
	struct cache_changes *ch = arg;

	if (which == postorder || which == leaf)
		ch->keys[ch->n++] = *(char *const *)node;	/* in order: sorted */
}

static void count_node(const void *node, VISIT which, void *arg)
{
	(void)node;
	if (which == postorder || which == leaf)
		(*(size_t *)arg)++;
}

/* The tree's nodes go away; the keys now belong to ch. */
static void no_free(void *p)
{
	(void)p;
}

void cache_take_changes(struct cache *c, struct cache_changes *ch)
{
	size_t n = 0;

	memset(ch, 0, sizeof(*ch));
	ch->all = c->dirty_all;
	twalk_r(c->dirty, count_node, &n);
	ch->keys = n ? calloc(n, sizeof(*ch->keys)) : NULL;
	if (n && !ch->keys) {
		ch->all = true;		/* revisit everything rather than lose a change */
		tdestroy(c->dirty, free);
	} else {
		twalk_r(c->dirty, collect_key, ch);
		tdestroy(c->dirty, no_free);
	}
	c->dirty = NULL;
	c->dirty_all = false;
}

void cache_requeue_changes(struct cache *c, struct cache_changes *ch)
{
	pthread_mutex_lock(&c->lock);
	if (ch->all)
		c->dirty_all = true;
	for (size_t i = 0; i < ch->n; i++)
		mark_dirty(c, ch->keys[i]);
	pthread_mutex_unlock(&c->lock);
	cache_changes_free(ch);
}

void cache_changes_free(struct cache_changes *ch)
{
	for (size_t i = 0; i < ch->n; i++)
		free(ch->keys[i]);
	free(ch->keys);
	memset(ch, 0, sizeof(*ch));
}
