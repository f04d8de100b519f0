/* watch.c: ?watch=true streams: a chunked response of one JSON event per
 * line (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR), fed from the store's
 * event history so a watch can start at any retained resourceVersion. Each
 * watch runs in its connection's own thread and blocks only itself. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "apiserver.h"
#include "http.h"
#include "log.h"
#include "rest.h"
#include "status.h"
#include "util.h"

#define DEFAULT_WATCH_SECS 1800

struct watch_ctx {
	struct apiserver *as;
	const struct resource *res;
	struct MHD_Connection *conn;
	struct store_watch *w;
	struct list_opts o;
	struct buf out;
	size_t off;
	struct kv_list initial;
	size_t init_idx;
	bool initial_pending;
	bool init_end_bookmark;	/* sendInitialEvents: bookmark after the list */
	bool bookmarks;
	bool table;		/* kubectl get -w: events carry Tables */
	char include[16];
	bool done;
	int64_t start_rev, last_rev;
	double deadline, next_bookmark;
	int64_t gone_rev;	/* > 0: start with a 410 for this resourceVersion */
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void emit(struct watch_ctx *c, const char *type, cJSON *obj)
{
	cJSON *ev = cJSON_CreateObject();
	char *s;

	if (c->table && strcmp(type, "BOOKMARK") && strcmp(type, "ERROR")) {
		cJSON *t = table_for_object(c->res, obj, c->include);

		cJSON_Delete(obj);
		obj = t;
	}
	cJSON_AddStringToObject(ev, "type", type);
	cJSON_AddItemToObject(ev, "object", obj);
	s = cJSON_PrintUnformatted(ev);
	cJSON_Delete(ev);
	if (s) {
		buf_add(&c->out, s, strlen(s));
		buf_add(&c->out, "\n", 1);
		free(s);
	}
}

static void emit_bookmark(struct watch_ctx *c, int64_t rev, bool init_end)
{
	cJSON *obj = cJSON_CreateObject(), *meta;
	char s[32];

	cJSON_AddStringToObject(obj, "kind", c->res->kind);
	cJSON_AddStringToObject(obj, "apiVersion", c->res->api_version);
	meta = cJSON_AddObjectToObject(obj, "metadata");
	snprintf(s, sizeof(s), "%lld", (long long)rev);
	cJSON_AddStringToObject(meta, "resourceVersion", s);
	cJSON_AddNullToObject(meta, "creationTimestamp");
	if (init_end) {
		cJSON *a = cJSON_AddObjectToObject(meta, "annotations");

		cJSON_AddStringToObject(a, "k8s.io/initial-events-end", "true");
	}
	emit(c, "BOOKMARK", obj);
}

static void emit_error(struct watch_ctx *c, cJSON *st)
{
	emit(c, "ERROR", st);
	c->done = true;
}

/* Turns one store event into zero or one watch event, honouring selectors:
 * an object moving into the selection is ADDED, out of it DELETED. */
static void translate(struct watch_ctx *c, const struct store_event *ev)
{
	cJSON *obj = NULL, *prev = NULL;
	bool now_in, was_in;

	if (ev->prev)
		prev = object_decode(c->as, c->res, ev->prev, ev->prev_len, ev->rev);
	if (ev->type == EV_PUT)
		obj = object_decode(c->as, c->res, ev->value, ev->value_len, ev->rev);
	was_in = prev && list_opts_match(&c->o, prev);
	now_in = obj && list_opts_match(&c->o, obj);
	if (ev->type == EV_DELETE) {
		if (was_in) {
			emit(c, "DELETED", prev);
			prev = NULL;
		}
	} else if (now_in) {
		emit(c, was_in ? "MODIFIED" : "ADDED", obj);
		obj = NULL;
	} else if (was_in && obj) {
		emit(c, "DELETED", obj);
		obj = NULL;
	}
	cJSON_Delete(obj);
	cJSON_Delete(prev);
}

static bool client_gone(struct watch_ctx *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct pollfd p;

	if (!ci)
		return false;
	p.fd = ci->connect_fd;
	p.events = POLLRDHUP;
	p.revents = 0;
	if (poll(&p, 1, 0) <= 0)
		return false;
	return p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL);
}

/* Fills c->out with at least one line, or sets c->done. */
static void produce(struct watch_ctx *c)
{
	if (c->gone_rev) {
		int64_t cur = 0;

		c->as->store->ops->current_rev(c->as->store, &cur);
		emit_error(c, status_new(410, "Expired", "too old resource version: %lld (%lld)",
					 (long long)c->gone_rev, (long long)cur));
		return;
	}
	while (c->init_idx < c->initial.n && !c->out.len) {
		const struct kv *kv = &c->initial.items[c->init_idx++];
		cJSON *obj = object_decode(c->as, c->res, kv->value, kv->value_len, kv->mod_rev);

		if (obj && list_opts_match(&c->o, obj))
			emit(c, "ADDED", obj);
		else
			cJSON_Delete(obj);
	}
	if (c->out.len)
		return;
	if (c->initial_pending && c->init_idx == c->initial.n) {
		c->initial_pending = false;
		kv_list_free(&c->initial);
		if (c->init_end_bookmark) {
			emit_bookmark(c, c->start_rev, true);
			return;
		}
	}
	while (!c->out.len && !c->done) {
		struct store_event ev = { 0 };
		double now = now_mono(), wait = c->deadline - now;
		int rc;

		if (wait <= 0) {
			c->done = true;
			break;
		}
		if (client_gone(c) || c->as->stopping) {
			c->done = true;
			break;
		}
		if (wait > 1)
			wait = 1;
		rc = c->as->store->ops->watch_next(c->w, (int)(wait * 1000) + 1, &ev);
		if (rc == 1) {
			c->last_rev = ev.rev;
			translate(c, &ev);
			store_event_free(&ev);
			continue;
		}
		if (rc == 0) {
			if (ev.rev > c->last_rev)
				c->last_rev = ev.rev;
			if (c->bookmarks && now_mono() >= c->next_bookmark && c->last_rev > 0) {
				emit_bookmark(c, c->last_rev, false);
				c->next_bookmark = now_mono() + c->as->bookmark_secs;
			}
			continue;
		}
		if (rc == -ERANGE) {
			emit_error(c, status_new(410, "Expired",
						 "too old resource version: %lld: the watch fell behind the retained history",
						 (long long)c->last_rev));
		} else {
			pr_warn("watch %s: %s", c->res->plural, strerror(-rc));
			emit_error(c, status_new(500, "InternalError",
						 "Internal error occurred: watch %s: %s", c->res->plural,
						 strerror(-rc)));
		}
	}
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct watch_ctx *c = cls;
	size_t n;

	(void)pos;
	if (c->off == c->out.len) {
		c->out.len = 0;
		c->off = 0;
		if (c->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		produce(c);
		if (!c->out.len)
			return MHD_CONTENT_READER_END_OF_STREAM;
	}
	n = c->out.len - c->off;
	if (n > max)
		n = max;
	memcpy(buf, c->out.p + c->off, n);
	c->off += n;
	return n;
}

static void watch_free(void *cls)
{
	struct watch_ctx *c = cls;

	if (c->w)
		c->as->store->ops->watch_close(c->w);
	kv_list_free(&c->initial);
	selector_free(&c->o.labels);
	selector_free(&c->o.fields);
	buf_free(&c->out);
	free(c);
}

enum MHD_Result watch_serve(struct req *r, const struct resource *res, const char *ns,
			    const char *name)
{
	struct apiserver *as = r->as;
	const char *rv = req_query(r, "resourceVersion");
	const char *ts = req_query(r, "timeoutSeconds");
	const char *bm = req_query(r, "allowWatchBookmarks");
	const char *sie = req_query(r, "sendInitialEvents");
	struct MHD_Response *resp;
	struct watch_ctx *c;
	enum MHD_Result ret;
	char prefix[1024];
	int64_t from;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return reply_status(r, status_new(500, "InternalError", "Internal error occurred: out of memory"));
	c->as = as;
	c->res = res;
	c->conn = r->conn;
	if (parse_selectors(r, res, &c->o, &ret)) {
		free(c);
		return ret;
	}
	if (name) {
		/* same as ?fieldSelector=metadata.name=NAME */
		struct sel_req *q = realloc(c->o.fields.r, (c->o.fields.n + 1) * sizeof(*q));

		if (!q) {
			watch_free(c);
			return MHD_NO;
		}
		c->o.fields.r = q;
		q = &q[c->o.fields.n++];
		memset(q, 0, sizeof(*q));
		q->key = strdup("metadata.name");
		q->op = SEL_EQ;
		q->vals = calloc(1, sizeof(char *));
		if (q->vals) {
			q->vals[0] = strdup(name);
			q->nvals = 1;
		}
		c->o.has_fields = true;
	}
	c->bookmarks = query_bool(bm);
	c->table = table_wanted(r);
	snprintf(c->include, sizeof(c->include), "%s",
		 req_query(r, "includeObject") ? req_query(r, "includeObject") : "");
	c->deadline = now_mono() + (ts && atoi(ts) > 0 ? atoi(ts) : DEFAULT_WATCH_SECS);
	c->next_bookmark = now_mono() + as->bookmark_secs;
	if (ns)
		snprintf(prefix, sizeof(prefix), "%s/%s/%s/", as->prefix, res->plural, ns);
	else
		snprintf(prefix, sizeof(prefix), "%s/%s/", as->prefix, res->plural);

	if (query_bool(sie)) {
		c->init_end_bookmark = true;
		rv = NULL;
	}
	if (!rv || !*rv || !strcmp(rv, "0")) {
		/* Start with the current state as ADDED events, then follow. */
		err = as->store->ops->range(as->store, prefix, NULL, 0, 0, &c->initial);
		if (err) {
			watch_free(c);
			return reply_status(r, status_new(500, "InternalError",
							  "Internal error occurred: list %s: %s", res->plural, strerror(-err)));
		}
		from = c->initial.rev;
		c->initial_pending = true;
	} else {
		char *end;

		from = strtoll(rv, &end, 10);
		if (*end || from < 0) {
			watch_free(c);
			return reply_status(r, status_new(400, "BadRequest",
							  "invalid resourceVersion \"%s\": must be a number", rv));
		}
	}
	c->start_rev = c->last_rev = from;
	err = as->store->ops->watch_open(as->store, prefix, from, &c->w);
	if (err == -ERANGE) {
		c->gone_rev = from;
	} else if (err) {
		watch_free(c);
		return reply_status(r, status_new(500, "InternalError",
						  "Internal error occurred: watch %s: %s", res->plural, strerror(-err)));
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, watch_read, c, watch_free);
	if (!resp) {
		watch_free(c);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
	/* a quiet watch is not an idle connection */
	MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0);
	ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}
