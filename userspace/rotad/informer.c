/* The list/watch protocol as kube-proxy's informers speak it: paginated
 * list, watch from its resourceVersion with bookmarks, relist on 410 Gone,
 * reconnect with capped exponential backoff, restart a silent watch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "informer.h"
#include "log.h"

#define LIST_PAGE 500
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

struct watch_state {
	struct informer *inf;
	char rv[64];
	int gone;		/* 410: our resourceVersion is too old */
};

static void sleep_ms(const volatile int *stop, long ms)
{
	while (ms > 0 && !*stop) {
		usleep(50000);
		ms -= 50;
	}
}

static void rv_of(const cJSON *obj, char rv[64])
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
							  "resourceVersion");

	if (cJSON_IsString(v) && *v->valuestring)
		snprintf(rv, 64, "%s", v->valuestring);
}

/* Paginated list into the cache; fills the list's resourceVersion. Each
 * page is parsed into the cache's compact objects and freed before the
 * next is fetched, so memory does not grow with the list's JSON. */
static int list_all(struct informer *inf, char rv[64])
{
	struct cache_list staged = { .kind = inf->kind < CACHE_KINDS ? inf->kind : CACHE_SERVICES };
	char path[1024], cont[1024] = "", err[K8S_ERR_LEN];
	cJSON *body = NULL;
	size_t listed = 0;
	bool any = false;
	long status;
	int ret = 0;

	for (;;) {
		cJSON *items, *it, *md;

		snprintf(path, sizeof(path), "%s?limit=%d%s%s%s%s", inf->path, LIST_PAGE,
			 inf->selector ? "&" : "", inf->selector ? inf->selector : "",
			 *cont ? "&continue=" : "", cont);
		ret = k8s_get(inf->client, path, &body, &status, err);
		if (ret) {
			pr_warn("list %s: %s", inf->resource, err);
			break;
		}
		if (status != 200) {
			const cJSON *msg = cJSON_GetObjectItemCaseSensitive(body, "message");

			pr_warn("list %s: HTTP %ld: %s", inf->resource, status,
				cJSON_IsString(msg) ? msg->valuestring : "no message");
			ret = -EIO;
			break;
		}
		items = cJSON_GetObjectItemCaseSensitive(body, "items");
		listed += (size_t)cJSON_GetArraySize(items);
		any = any || cJSON_GetArraySize(items) > 0;
		if (inf->kind < CACHE_KINDS)
			cache_list_add(inf->cache, &staged, items);
		md = cJSON_GetObjectItemCaseSensitive(body, "metadata");
		rv_of(body, rv);
		it = cJSON_GetObjectItemCaseSensitive(md, "continue");
		if (!cJSON_IsString(it) || !*it->valuestring)
			break;
		snprintf(cont, sizeof(cont), "%s", it->valuestring);
		cJSON_Delete(body);
		body = NULL;
	}
	cJSON_Delete(body);
	if (ret) {
		cache_list_abort(&staged);
		return ret;
	}
	if (inf->kind < CACHE_KINDS)
		cache_list_commit(inf->cache, &staged);
	else
		inf->synced = any;
	pr_debug("listed %zu %s at resourceVersion %s", listed, inf->resource, rv);
	return 0;
}

static int on_event(void *arg, const char *type, cJSON *obj)
{
	struct watch_state *w = arg;
	struct informer *inf = w->inf;

	inf->events++;
	if (!strcmp(type, "ERROR")) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");

		if (cJSON_IsNumber(code) && code->valueint == 410) {
			pr_info("watch %s: resourceVersion %s is gone (%s): relisting", inf->resource, w->rv,
				cJSON_IsString(msg) ? msg->valuestring : "410");
			w->gone = 1;
		} else {
			pr_warn("watch %s: error event: %s", inf->resource,
				cJSON_IsString(msg) ? msg->valuestring : "no message");
		}
		return 1;	/* end this watch */
	}
	rv_of(obj, w->rv);
	if (!strcmp(type, "BOOKMARK"))
		return 0;
	if (inf->kind < CACHE_KINDS)
		cache_apply(inf->cache, inf->kind, type, obj);
	else
		inf->synced = strcmp(type, "DELETED") != 0;
	return 0;
}

static void *informer_main(void *arg)
{
	struct informer *inf = arg;
	struct watch_state w = { .inf = inf };
	long backoff = BACKOFF_MIN_MS;
	bool need_list = true;

	while (!*inf->stop) {
		char path[1024], err[K8S_ERR_LEN] = "";
		long status = 0;
		int ret;

		if (need_list) {
			if (list_all(inf, w.rv)) {
				sleep_ms(inf->stop, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			need_list = false;
			w.gone = 0;
		}
		/* Server-side timeout with jitter so watches don't all end together. */
		snprintf(path, sizeof(path),
			 "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d%s%s",
			 inf->path, w.rv, inf->watch_timeout_s + rand() % (inf->watch_timeout_s / 5 + 1),
			 inf->selector ? "&" : "", inf->selector ? inf->selector : "");
		unsigned long events_before = inf->events;
		time_t started = time(NULL);

		ret = k8s_watch(inf->client, path, inf->watch_idle_timeout_s, on_event, &w, inf->stop, &status, err);
		/* A watch that worked for a while earned a fresh backoff. */
		if (inf->events != events_before || time(NULL) - started >= 30)
			backoff = BACKOFF_MIN_MS;
		if (*inf->stop)
			break;
		if (w.gone || status == 410) {
			inf->relists++;
			need_list = true;
			continue;
		}
		if (ret == 0 && status == 200) {
			backoff = BACKOFF_MIN_MS;	/* a normal end: watch again from where we are */
			continue;
		}
		if (ret == -ETIMEDOUT) {
			/* The connection looks open but the stream went silent:
			 * a healthy server sends a bookmark or ends the watch. */
			inf->silent_restarts++;
			pr_warn("watch %s: silent for %d s (no event, no bookmark): restarting it from "
				"resourceVersion %s", inf->resource, inf->watch_idle_timeout_s, w.rv);
		} else {
			inf->restarts++;
			if (ret && ret != -ECANCELED)
				pr_warn("%s", err);
			else if (status != 200)
				pr_warn("watch %s: HTTP %ld", inf->resource, status);
		}
		sleep_ms(inf->stop, backoff + rand() % (backoff / 2 + 1));
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		/* After repeated failures the server may have lost our version: relist. */
		if (backoff >= 4000)
			need_list = true;
	}
	return NULL;
}

int informer_start(struct informer *inf)
{
	return -pthread_create(&inf->thread, NULL, informer_main, inf);
}

void informer_join(struct informer *inf)
{
	pthread_join(inf->thread, NULL);
}
