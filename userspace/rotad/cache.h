/* What rotad knows of the cluster: parsed Services and EndpointSlices keyed
 * by namespace/name, shared by the watch threads (writers) and the
 * reconciler (reader), with the set of Services changed since the last sync
 * so that a sync revisits only those. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <cjson/cJSON.h>
#include "model.h"

enum cache_kind {
	CACHE_SERVICES = 0,
	CACHE_SLICES = 1,
	CACHE_KINDS,
};

/* Services a sync has to revisit: those whose object or slices changed, or
 * every one after a list replaced what was known. */
struct cache_changes {
	bool all;
	char **keys;			/* namespace/name, sorted, unique */
	size_t n;
};

struct cache {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	void *root[CACHE_KINDS];	/* tsearch trees of svc_obj / slice_obj */
	void *by_service;		/* keyed_list: svc_key → its IPv4 slices */
	void *dirty;			/* tree of strdup'd Service keys changed since the last sync */
	bool dirty_all;
	size_t count[CACHE_KINDS];
	bool synced[CACHE_KINDS];	/* initial list done */
	unsigned long generation;	/* bumped on every change */
	const char *node_name;		/* this node: endpoints on it are local */
	/* Wall times for /healthz, 0 when none: the oldest change no sync has
	 * taken up yet, and the oldest change the sync under way applies. */
	double first_pending;
	double applying_since;
	double *triggers;		/* last-change-trigger-times of pending slice changes */
	size_t n_triggers, cap_triggers;
};

void cache_init(struct cache *c, const char *node_name);
void cache_free(struct cache *c);
/* Event from a watch: ADDED/MODIFIED upsert, DELETED removes. */
void cache_apply(struct cache *c, enum cache_kind kind, const char *type, const cJSON *obj);
/* A full list: the new content replaces everything of that kind. */
void cache_replace(struct cache *c, enum cache_kind kind, const cJSON *items);
/* The same for a list read page by page: add each page's items, then
 * commit (or abort when the list failed half-way). */
struct cache_list {
	enum cache_kind kind;
	void *root;
	size_t n;
};
void cache_list_add(const struct cache *c, struct cache_list *l, const cJSON *items);
void cache_list_commit(struct cache *c, struct cache_list *l);
void cache_list_abort(struct cache_list *l);
/* Called with the lock held by the reconciler. */
void cache_walk(struct cache *c, enum cache_kind kind, void (*fn)(const void *obj, void *arg), void *arg);
const struct svc_obj *cache_service(struct cache *c, const char *key);
/* The slices of a Service (none: *n = 0). */
const struct slice_obj *const *cache_service_slices(struct cache *c, const char *key, size_t *n);
/* Takes the changes pending (lock held); the next sync applies them. A
 * failed sync puts them back (cache_requeue_changes frees them). */
void cache_take_changes(struct cache *c, struct cache_changes *ch);
void cache_requeue_changes(struct cache *c, struct cache_changes *ch);
void cache_changes_free(struct cache_changes *ch);
/* The sync's bookkeeping, so /healthz sees a change as pending until a
 * sync has applied it. sync_begin returns the oldest change it takes up;
 * sync_end(c, ok, that) clears it, or on failure puts it back as pending. */
double cache_sync_begin(struct cache *c);
void cache_sync_end(struct cache *c, bool ok, double taken);
/* Puts back the trigger times a failed sync took (see triggers). */
void cache_requeue_triggers(struct cache *c, const double *t, size_t n);
/* The oldest change not applied yet (pending or being applied); 0 if none. */
double cache_oldest_unapplied(struct cache *c);
double wall_now(void);
