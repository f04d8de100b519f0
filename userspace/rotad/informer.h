/* List-then-watch loops, one thread per resource, feeding the cache. */
#pragma once
#include <pthread.h>
#include "cache.h"
#include "k8s/client.h"

struct informer {
	const char *resource;		/* for logs and metrics: "services" */
	const char *path;		/* collection path, e.g. /api/v1/services */
	const char *selector;		/* extra query, e.g. fieldSelector=...; may be NULL */
	enum cache_kind kind;		/* CACHE_KINDS: no cache (the Node watch) */
	struct k8s_client *client;
	struct cache *cache;
	const volatile int *stop;
	int watch_timeout_s;		/* server-side timeoutSeconds */
	int watch_idle_timeout_s;	/* a watch silent this long is restarted */
	pthread_t thread;
	/* Read by metrics (approximate is fine). */
	unsigned long restarts;		/* after an error: connection lost, HTTP error, bad stream */
	unsigned long silent_restarts;	/* after nothing arrived for watch_idle_timeout_s */
	unsigned long relists;
	unsigned long events;
	int synced;			/* for CACHE_KINDS informers: object seen */
};

int informer_start(struct informer *inf);
void informer_join(struct informer *inf);
