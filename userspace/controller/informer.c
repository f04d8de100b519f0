/* List/watch per kind, as userspace/rotad/informer.c does it: paginated
 * list, watch from its resourceVersion with bookmarks, relist on 410,
 * reconnect with capped exponential backoff, restart a silent watch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "controller.h"

#define LIST_PAGE 500
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define WATCH_TIMEOUT_S 300

struct wstate {
	struct informer *inf;
	char rv[64];
	int gone;
	unsigned long events;	/* in the current watch */
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
	const char *v = jmeta(obj, "resourceVersion");

	if (v && *v)
		snprintf(rv, 64, "%s", v);
}

static int list_all(struct informer *inf, char rv[64])
{
	cJSON *all = cJSON_CreateArray(), *body = NULL;
	char path[1024], cont[1024] = "", err[K8S_ERR_LEN];
	long status;
	int ret = 0;

	for (;;) {
		cJSON *items, *it;
		const char *next;

		snprintf(path, sizeof(path), "%s?limit=%d%s%s%s%s", inf->path, LIST_PAGE,
			 inf->selector ? "&" : "", inf->selector ? inf->selector : "",
			 *cont ? "&continue=" : "", cont);
		ret = k8s_get(&inf->ctl->client, path, &body, &status, err);
		if (ret) {
			pr_warn("list %s: %s", inf->resource, err);
			break;
		}
		if (status != 200) {
			pr_warn("list %s: HTTP %ld: %s", inf->resource, status, jstr(body, "message") ?: "no message");
			ret = -EIO;
			break;
		}
		items = cJSON_GetObjectItemCaseSensitive(body, "items");
		while ((it = cJSON_DetachItemFromArray(items, 0)))
			cJSON_AddItemToArray(all, it);
		rv_of(body, rv);
		next = jstr(cJSON_GetObjectItemCaseSensitive(body, "metadata"), "continue");
		if (!next || !*next)
			break;
		snprintf(cont, sizeof(cont), "%s", next);
		cJSON_Delete(body);
		body = NULL;
	}
	cJSON_Delete(body);
	if (ret) {
		cJSON_Delete(all);
		return ret;
	}
	pr_debug("listed %d %s at resourceVersion %s", cJSON_GetArraySize(all), inf->resource, rv);
	ctl_replace(inf->ctl, inf->kind, all);
	return 0;
}

static int on_event(void *arg, const char *type, cJSON *obj)
{
	struct wstate *w = arg;
	struct informer *inf = w->inf;

	if (!strcmp(type, "ERROR")) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");

		if (cJSON_IsNumber(code) && code->valueint == 410) {
			pr_info("watch %s: resourceVersion %s is gone: relisting", inf->resource, w->rv);
			w->gone = 1;
		} else {
			pr_warn("watch %s: error event: %s", inf->resource, jstr(obj, "message") ?: "no message");
		}
		return 1;
	}
	rv_of(obj, w->rv);
	w->events++;
	if (!strcmp(type, "BOOKMARK"))
		return 0;
	ctl_event(inf->ctl, inf->kind, type, obj);
	return 0;
}

static void *informer_main(void *arg)
{
	struct informer *inf = arg;
	const volatile int *stop = &inf->ctl->stop;
	struct wstate w = { .inf = inf };
	long backoff = BACKOFF_MIN_MS;
	bool need_list = true;

	while (!*stop) {
		char path[1024], err[K8S_ERR_LEN] = "";
		long status = 0;
		time_t started;
		int ret;

		if (need_list) {
			if (list_all(inf, w.rv)) {
				sleep_ms(stop, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			need_list = false;
			w.gone = 0;
			backoff = BACKOFF_MIN_MS;
		}
		snprintf(path, sizeof(path),
			 "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d%s%s", inf->path,
			 w.rv, WATCH_TIMEOUT_S + rand() % (WATCH_TIMEOUT_S / 5 + 1), inf->selector ? "&" : "",
			 inf->selector ? inf->selector : "");
		w.events = 0;
		started = time(NULL);
		ret = k8s_watch(&inf->ctl->client, path, WATCH_TIMEOUT_S * 2 + 30, on_event, &w, stop, &status, err);
		if (*stop)
			break;
		/* A watch that worked for a while before it broke starts the
		 * backoff afresh (the API server restarted, say). */
		if (w.events || time(NULL) - started >= 30)
			backoff = BACKOFF_MIN_MS;
		if (w.gone || status == 410) {
			if (!w.gone)
				pr_info("watch %s: resourceVersion %s is gone (HTTP 410): relisting", inf->resource, w.rv);
			inf->relists++;
			need_list = true;
			continue;
		}
		if (ret == 0 && status == 200) {
			backoff = BACKOFF_MIN_MS;
			continue;
		}
		inf->restarts++;
		if (ret && ret != -ECANCELED)
			pr_warn("%s", err);
		else if (status != 200)
			pr_warn("watch %s: HTTP %ld", inf->resource, status);
		sleep_ms(stop, backoff + rand() % (backoff / 2 + 1));
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		if (backoff >= 4000 && !need_list) {
			pr_info("watch %s: failing repeatedly: relisting", inf->resource);
			need_list = true;
		}
	}
	return NULL;
}

int informer_start(struct informer *inf)
{
	return -pthread_create(&inf->thread, NULL, informer_main, inf);
}
