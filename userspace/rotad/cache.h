/* What rotad knows of the cluster: parsed Services and EndpointSlices keyed
 * by namespace/name, shared by the watch threads (writers) and the
 * reconciler (reader), with a change signal that coalesces bursts. */
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

struct cache {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	void *root[CACHE_KINDS];	/* tsearch trees of svc_obj / slice_obj */
	size_t count[CACHE_KINDS];
	bool synced[CACHE_KINDS];	/* initial list done */
	unsigned long generation;	/* bumped on every change */
	double first_pending;		/* wall time of the oldest change not yet applied; 0 if none */
	double *triggers;		/* last-change-trigger-times of pending slice changes */
	size_t n_triggers, cap_triggers;
};

void cache_init(struct cache *c);
void cache_free(struct cache *c);
/* Event from a watch: ADDED/MODIFIED upsert, DELETED removes. */
void cache_apply(struct cache *c, enum cache_kind kind, const char *type, const cJSON *obj);
/* A full list: the new content replaces everything of that kind. */
void cache_replace(struct cache *c, enum cache_kind kind, const cJSON *items);
/* Called with the lock held by the reconciler. */
void cache_walk(struct cache *c, enum cache_kind kind, void (*fn)(const void *obj, void *arg), void *arg);
double wall_now(void);
