/* Desired state (Services + EndpointSlices) → the smallest set of service
 * upserts and deletes on the datapath maps, revisiting only the Services
 * that changed since the last sync. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "cache.h"
#include "svc.h"

struct reconciler {
	struct rota_dp *dp;
	bool maglev;		/* --lb-algorithm maglev */
	void *current;		/* tsearch tree of what the maps hold, by frontend */
	void *by_owner;		/* Service key → the frontends of `current` it holds */
	void *conflicted;	/* keys of Services refused a frontend another one holds:
				 * revisited by every sync, so they take it when it frees */
	size_t n_services, n_backends;
	/* Last sync's outcome. */
	size_t upserts, deletes, failures, skipped;
};

/* Reads back what the maps hold (after a restart: what the previous agent
 * left), so the first sync changes only what differs. */
int reconciler_init(struct reconciler *r, struct rota_dp *dp, bool maglev);
void reconciler_free(struct reconciler *r);
/* One sync of the Services in ch (all of them when ch->all: the first sync
 * after a list, which also removes what the maps hold and no Service
 * wants). Takes the cache lock while computing the desired state only.
 * Returns the number of failed map writes (logged); services rota cannot
 * serve are logged and counted in `skipped`, not as failures. */
int reconcile(struct reconciler *r, struct cache *c, const struct cache_changes *ch);
