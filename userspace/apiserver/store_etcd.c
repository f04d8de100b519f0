/* store_etcd.c: the store on a real etcd v3 through its JSON gateway
 * (/v3/kv/range, /v3/kv/txn, /v3/watch) with libcurl. Revisions are etcd's,
 * compare-and-swap is an etcd txn on create/mod revisions, and every watch
 * is its own etcd watch stream, so several API servers on one etcd see the
 * same objects and each delivers every event. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include "log.h"
#include "store.h"
#include "util.h"

#define MAX_URLS 8

struct etcd_store {
	struct store base;
	char *urls[MAX_URLS];
	int nurls;
	int64_t history;	/* revisions kept; older ones are compacted */
	unsigned txns;
	char *hub_prefix;	/* key prefix of the shared watch */
	struct hub *hub;
};

struct etcd_watch {
	struct etcd_store *s;
	CURLM *multi;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	struct buf in;		/* bytes received, not yet parsed */
	struct store_event *q;	/* parsed events not yet returned */
	size_t qn, qhead, qcap;
	int64_t progress;
	int err;		/* sticky: -ERANGE (compacted), -EIO (stream ended) */
	bool running;
};

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
	return buf_add(ud, p, sz * n) ? 0 : sz * n;
}

static int64_t i64(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItem(o, name);

	if (cJSON_IsString(v))
		return strtoll(v->valuestring, NULL, 10);
	if (cJSON_IsNumber(v))
		return (int64_t)v->valuedouble;
	return 0;
}

static void set_b64(cJSON *o, const char *name, const void *p, size_t n)
{
	char *b = b64_encode(p, n);

	cJSON_AddStringToObject(o, name, b ? b : "");
	free(b);
}

static char *prefix_end(const char *prefix, size_t *len)
{
	size_t n = strlen(prefix);
	char *e = strdup(prefix);

	while (e && n > 0 && (unsigned char)e[n - 1] == 0xff)
		e[--n] = 0;
	if (e && n)
		e[n - 1]++;
	*len = n;
	return e;
}

/* One reusable handle per thread (each API connection has its own): libcurl
 * keeps its connection to etcd open between calls, where a new connection
 * per call costs a round trip and etcd an accept. Freed when the thread ends. */
static pthread_key_t curl_key;
static pthread_once_t curl_key_once = PTHREAD_ONCE_INIT;

static void thread_curl_free(void *c)
{
	curl_easy_cleanup(c);
}

static void curl_key_make(void)
{
	pthread_key_create(&curl_key, thread_curl_free);
}

static CURL *thread_curl(void)
{
	CURL *c;

	pthread_once(&curl_key_once, curl_key_make);
	c = pthread_getspecific(curl_key);
	if (c) {
		curl_easy_reset(c);	/* options go; open connections stay */
		return c;
	}
	c = curl_easy_init();
	if (c && pthread_setspecific(curl_key, c)) {
		curl_easy_cleanup(c);
		c = NULL;
	}
	return c;
}

/* POSTs req to one of the endpoints; -EIO if none answers. */
static int etcd_call(struct etcd_store *s, const char *path, const cJSON *req, cJSON **resp)
{
	char *body = cJSON_PrintUnformatted(req);
	int err = -EIO;

	if (!body)
		return -ENOMEM;
	for (int i = 0; i < s->nurls; i++) {
		struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
		struct buf out = { 0 };
		char url[1024];
		CURL *c = thread_curl();
		CURLcode rc;
		long code = 0;

		if (!c) {
			curl_slist_free_all(h);
			err = -ENOMEM;
			break;
		}
		snprintf(url, sizeof(url), "%s%s", s->urls[i], path);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_slist_free_all(h);
		if (rc != CURLE_OK) {
			pr_warn("etcd %s%s: %s", s->urls[i], path, curl_easy_strerror(rc));
			buf_free(&out);
			continue;
		}
		*resp = out.p ? cJSON_Parse(out.p) : NULL;
		if (code != 200 || !*resp) {
			const char *msg = *resp ? json_str(*resp, "error") : NULL;

			if (!msg)
				msg = *resp ? json_str(*resp, "message") : NULL;
			if (msg && strstr(msg, "compacted"))
				err = -ERANGE;
			else {
				pr_warn("etcd %s%s: HTTP %ld: %.200s", s->urls[i], path, code,
					out.p ? out.p : "");
				err = -EIO;
			}
			cJSON_Delete(*resp);
			*resp = NULL;
			buf_free(&out);
			break;
		}
		buf_free(&out);
		err = 0;
		break;
	}
	free(body);
	return err;
}

static int decode_b64(const cJSON *o, const char *name, char **out, size_t *len)
{
	const char *v = json_str(o, name);
	unsigned char *raw;
	int err;

	if (!v) {
		*out = strdup("");
		*len = 0;
		return *out ? 0 : -ENOMEM;
	}
	err = b64_decode(v, strlen(v), &raw, len);
	if (err)
		return err;
	*out = (char *)raw;
	return 0;
}

static int push_kv(struct kv_list *l, const cJSON *kv)
{
	char *k, *v;
	size_t kl, vl;
	int err;

	if ((err = decode_b64(kv, "key", &k, &kl)))
		return err;
	if ((err = decode_b64(kv, "value", &v, &vl))) {
		free(k);
		return err;
	}
	err = kv_list_push(l, k, v, vl, i64(kv, "create_revision"), i64(kv, "mod_revision"));
	free(k);
	free(v);
	return err;
}

static int et_range(struct store *st, const char *prefix, const char *start, size_t limit,
		    int64_t rev, struct kv_list *out)
{
	struct etcd_store *s = (struct etcd_store *)st;
	cJSON *req = cJSON_CreateObject(), *resp = NULL, *kv;
	size_t endlen;
	char *end = prefix_end(prefix, &endlen);
	int err;

	if (start) {
		/* strictly after start: start + "\0" */
		size_t n = strlen(start);
		char *k = malloc(n + 1);

		memcpy(k, start, n + 1);
		set_b64(req, "key", k, n + 1);
		free(k);
	} else {
		set_b64(req, "key", prefix, strlen(prefix));
	}
	set_b64(req, "range_end", end, endlen);
	free(end);
	if (limit)
		cJSON_AddNumberToObject(req, "limit", (double)limit);
	if (rev > 0)
		cJSON_AddNumberToObject(req, "revision", (double)rev);
	err = etcd_call(s, "/v3/kv/range", req, &resp);
	cJSON_Delete(req);
	if (err)
		return err;
	out->rev = i64(json_obj(resp, "header"), "revision");
	out->more = cJSON_IsTrue(cJSON_GetObjectItem(resp, "more"));
	cJSON_ArrayForEach(kv, cJSON_GetObjectItem(resp, "kvs")) {
		err = push_kv(out, kv);
		if (err)
			break;
	}
	cJSON_Delete(resp);
	if (err)
		kv_list_free(out);
	return err;
}

static int et_get(struct store *st, const char *key, struct kv *out)
{
	struct etcd_store *s = (struct etcd_store *)st;
	cJSON *req = cJSON_CreateObject(), *resp = NULL, *kv;
	struct kv_list l = { 0 };
	int err;

	set_b64(req, "key", key, strlen(key));
	err = etcd_call(s, "/v3/kv/range", req, &resp);
	cJSON_Delete(req);
	if (err)
		return err;
	kv = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "kvs"), 0);
	err = kv ? push_kv(&l, kv) : -ENOENT;
	cJSON_Delete(resp);
	if (!err) {
		*out = l.items[0];
		free(l.items);
	}
	return err;
}

static int et_current_rev(struct store *st, int64_t *rev)
{
	struct etcd_store *s = (struct etcd_store *)st;
	cJSON *req = cJSON_CreateObject(), *resp = NULL;
	int err;

	set_b64(req, "key", "/", 1);
	cJSON_AddTrueToObject(req, "count_only");
	err = etcd_call(s, "/v3/kv/range", req, &resp);
	cJSON_Delete(req);
	if (!err)
		*rev = i64(json_obj(resp, "header"), "revision");
	cJSON_Delete(resp);
	return err;
}

/* After a failed txn: which expectation no longer holds. */
static int find_failed(struct store *st, const struct txn_op *ops, size_t n, size_t *failed)
{
	for (size_t i = 0; i < n; i++) {
		struct kv kv = { 0 };
		int err;

		if (ops[i].expect == REV_ANY)
			continue;
		err = et_get(st, ops[i].key, &kv);
		if (err && err != -ENOENT)
			return err;
		if (failed)
			*failed = i;
		if (ops[i].expect == REV_ABSENT && !err) {
			kv_free(&kv);
			return -EEXIST;
		}
		if (ops[i].expect > 0 && err == -ENOENT)
			return -ENOENT;
		if (ops[i].expect > 0 && kv.mod_rev != ops[i].expect) {
			kv_free(&kv);
			return -ESTALE;
		}
		kv_free(&kv);
	}
	if (failed)
		*failed = 0;
	return -ESTALE;
}

/* Like kube-apiserver's periodic compaction: keeps the last history
 * revisions for watches; older resourceVersions then get 410. Several API
 * servers may compact the same etcd: compacting an older revision again is
 * refused by etcd and harmless. */
static void compact(struct etcd_store *s, int64_t rev)
{
	cJSON *req, *resp = NULL;

	if (rev <= 0)
		return;
	req = cJSON_CreateObject();
	cJSON_AddNumberToObject(req, "revision", (double)rev);
	if (!etcd_call(s, "/v3/kv/compaction", req, &resp))
		pr_debug("etcd: compacted history up to revision %lld", (long long)rev);
	cJSON_Delete(req);
	cJSON_Delete(resp);
}

static int et_txn(struct store *st, const struct txn_op *ops, size_t n, int64_t *rev, size_t *failed)
{
	struct etcd_store *s = (struct etcd_store *)st;
	cJSON *req = cJSON_CreateObject(), *resp = NULL;
	cJSON *cmp = cJSON_AddArrayToObject(req, "compare");
	cJSON *succ = cJSON_AddArrayToObject(req, "success");
	int err;

	for (size_t i = 0; i < n; i++) {
		const struct txn_op *op = &ops[i];
		cJSON *r = cJSON_CreateObject(), *body;

		if (op->expect != REV_ANY) {
			cJSON *c = cJSON_CreateObject();

			set_b64(c, "key", op->key, strlen(op->key));
			cJSON_AddStringToObject(c, "result", "EQUAL");
			if (op->expect == REV_ABSENT) {
				cJSON_AddStringToObject(c, "target", "CREATE");
				cJSON_AddStringToObject(c, "create_revision", "0");
			} else {
				char v[32];

				snprintf(v, sizeof(v), "%lld", (long long)op->expect);
				cJSON_AddStringToObject(c, "target", "MOD");
				cJSON_AddStringToObject(c, "mod_revision", v);
			}
			cJSON_AddItemToArray(cmp, c);
		}
		if (op->kind == TXN_PUT) {
			body = cJSON_AddObjectToObject(r, "request_put");
			set_b64(body, "key", op->key, strlen(op->key));
			set_b64(body, "value", op->value, op->value_len);
		} else {
			body = cJSON_AddObjectToObject(r, "request_delete_range");
			set_b64(body, "key", op->key, strlen(op->key));
		}
		cJSON_AddItemToArray(succ, r);
	}
	err = etcd_call(s, "/v3/kv/txn", req, &resp);
	cJSON_Delete(req);
	if (err)
		return err;
	if (cJSON_IsTrue(cJSON_GetObjectItem(resp, "succeeded"))) {
		int64_t r = i64(json_obj(resp, "header"), "revision");

		if (rev)
			*rev = r;
		cJSON_Delete(resp);
		if (s->history > 0 && __atomic_add_fetch(&s->txns, 1, __ATOMIC_RELAXED) % 64 == 0)
			compact(s, r - s->history);
		return 0;
	}
	cJSON_Delete(resp);
	return find_failed(st, ops, n, failed);
}

/* ---- watch ---- */

static int queue_push(struct etcd_watch *w, struct store_event *ev)
{
	if (w->qn == w->qcap) {
		size_t cap = w->qcap ? w->qcap * 2 : 16;
		struct store_event *q = realloc(w->q, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		w->q = q;
		w->qcap = cap;
	}
	w->q[w->qn++] = *ev;
	return 0;
}

static void parse_message(struct etcd_watch *w, const cJSON *msg)
{
	const cJSON *res = cJSON_GetObjectItem(msg, "result"), *e;

	if (!res) {
		const cJSON *er = cJSON_GetObjectItem(msg, "error");
		char *s = cJSON_PrintUnformatted(er ? er : msg);

		pr_warn("etcd watch: %s", s ? s : "malformed message");
		free(s);
		w->err = -EIO;
		return;
	}
	if (i64(res, "compact_revision") > 0) {
		w->err = -ERANGE;
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItem(res, "canceled"))) {
		w->err = -EIO;
		return;
	}
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(res, "events")) {
		const char *type = json_str(e, "type");
		const cJSON *kv = cJSON_GetObjectItem(e, "kv"), *pkv = cJSON_GetObjectItem(e, "prev_kv");
		struct store_event ev = { 0 };

		ev.type = type && !strcmp(type, "DELETE") ? EV_DELETE : EV_PUT;
		ev.rev = i64(kv, "mod_revision");
		if (decode_b64(kv, "key", &ev.key, &ev.value_len))
			continue;
		ev.value_len = 0;
		if (ev.type == EV_PUT && decode_b64(kv, "value", &ev.value, &ev.value_len)) {
			store_event_free(&ev);
			continue;
		}
		if (pkv && decode_b64(pkv, "value", &ev.prev, &ev.prev_len)) {
			store_event_free(&ev);
			continue;
		}
		if (queue_push(w, &ev))
			store_event_free(&ev);
	}
}

static size_t watch_recv(char *p, size_t sz, size_t n, void *ud)
{
	struct etcd_watch *w = ud;
	const char *cur, *end;

	if (buf_add(&w->in, p, sz * n))
		return 0;
	/* The gateway streams concatenated JSON objects; take each whole one. */
	cur = w->in.p;
	for (;;) {
		cJSON *msg;

		while (cur < w->in.p + w->in.len && (*cur == '\n' || *cur == '\r' || *cur == ' '))
			cur++;
		if (cur >= w->in.p + w->in.len)
			break;
		msg = cJSON_ParseWithLengthOpts(cur, w->in.p + w->in.len - cur, &end, 0);
		if (!msg)
			break;	/* incomplete: wait for more bytes */
		parse_message(w, msg);
		cJSON_Delete(msg);
		cur = end;
	}
	memmove(w->in.p, cur, w->in.p + w->in.len - cur);
	w->in.len = w->in.p + w->in.len - cur;
	w->in.p[w->in.len] = 0;
	return sz * n;
}

static void raw_watch_close(struct etcd_watch *w)
{
	if (!w)
		return;
	if (w->multi && w->easy)
		curl_multi_remove_handle(w->multi, w->easy);
	if (w->easy)
		curl_easy_cleanup(w->easy);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	curl_slist_free_all(w->hdrs);
	for (size_t i = w->qhead; i < w->qn; i++)
		store_event_free(&w->q[i]);
	free(w->q);
	free(w->body);
	buf_free(&w->in);
	free(w);
}

static int raw_watch_open(struct etcd_store *s, const char *prefix, int64_t after, struct etcd_watch **out)
{
	struct etcd_watch *w = calloc(1, sizeof(*w));
	cJSON *req, *cr;
	char url[1024], *end;
	size_t endlen;

	if (!w)
		return -ENOMEM;
	w->s = s;
	w->progress = after;
	req = cJSON_CreateObject();
	cr = cJSON_AddObjectToObject(req, "create_request");
	set_b64(cr, "key", prefix, strlen(prefix));
	end = prefix_end(prefix, &endlen);
	set_b64(cr, "range_end", end, endlen);
	free(end);
	cJSON_AddNumberToObject(cr, "start_revision", (double)(after + 1));
	cJSON_AddTrueToObject(cr, "prev_kv");
	w->body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	w->multi = curl_multi_init();
	w->easy = curl_easy_init();
	w->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (!w->body || !w->multi || !w->easy || !w->hdrs) {
		raw_watch_close(w);
		return -ENOMEM;
	}
	/* Watch streams go to the first endpoint; a dead one ends the watch
	 * and the client re-watches from its last resourceVersion. */
	snprintf(url, sizeof(url), "%s/v3/watch", s->urls[0]);
	curl_easy_setopt(w->easy, CURLOPT_URL, url);
	curl_easy_setopt(w->easy, CURLOPT_POSTFIELDS, w->body);
	curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, w->hdrs);
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch_recv);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
	curl_multi_add_handle(w->multi, w->easy);
	w->running = true;
	/* Drive until etcd confirms the watch (or refuses a compacted start). */
	for (int i = 0; i < 50 && !w->err && !w->qn; i++) {
		int still = 0;

		curl_multi_perform(w->multi, &still);
		if (!still) {
			w->running = false;
			break;
		}
		if (w->in.len == 0 && i > 0)
			break;
		curl_multi_poll(w->multi, NULL, 0, 100, NULL);
	}
	if (w->err == -ERANGE) {
		raw_watch_close(w);
		return -ERANGE;
	}
	*out = w;
	return 0;
}

static int raw_watch_next(struct etcd_watch *w, int timeout_ms, struct store_event *ev)
{
	int waited = 0;

	for (;;) {
		int still = 0;

		if (w->qhead < w->qn) {
			*ev = w->q[w->qhead++];
			if (ev->rev > w->progress)
				w->progress = ev->rev;
			if (w->qhead == w->qn)
				w->qhead = w->qn = 0;
			return 1;
		}
		if (w->err)
			return w->err;
		if (!w->running)
			return -EIO;
		if (waited >= timeout_ms) {
			memset(ev, 0, sizeof(*ev));
			ev->rev = w->progress;
			return 0;
		}
		curl_multi_perform(w->multi, &still);
		if (!still) {
			w->running = false;
			continue;
		}
		if (w->qhead < w->qn || w->err)
			continue;
		curl_multi_poll(w->multi, NULL, 0, timeout_ms - waited < 200 ? timeout_ms - waited : 200, NULL);
		waited += 200;
	}
}

/* ---- shared watch (the watch cache) ----
 *
 * One etcd watch per API server on the whole key prefix feeds a ring of
 * recent events; every API watch that starts inside the ring's window reads
 * from it, so N watchers cost one etcd stream, not N. A watch that starts
 * before the window, or falls behind it, gets its own etcd stream from its
 * last revision (etcd then answers from its history, or with compaction,
 * which becomes 410 for the client).
 */

#define HUB_MAX_EVENTS 16384
#define HUB_MAX_BYTES (64u << 20)

struct hub_ev {
	struct store_event ev;
	size_t bytes;
};

struct hub {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct hub_ev ring[HUB_MAX_EVENTS];
	uint64_t first_seq, next_seq;	/* ring holds [first_seq, next_seq) */
	size_t bytes;
	int64_t start_rev;	/* every event with rev > start_rev is in the ring */
	int64_t progress;	/* every event with rev <= progress has arrived */
	bool ok;		/* false: position lost (compaction while reconnecting) */
	bool started;
	volatile bool stop;
	pthread_t thr;
};

struct hub_watch {
	struct etcd_store *s;
	struct etcd_watch *raw;	/* own stream after falling out of the window */
	char *prefix;
	size_t plen;
	uint64_t seq;
	int64_t last_rev;
};

static int dup_event(const struct store_event *in, struct store_event *out)
{
	memset(out, 0, sizeof(*out));
	out->type = in->type;
	out->rev = in->rev;
	out->key = strdup(in->key);
	if (in->value) {
		out->value = malloc(in->value_len + 1);
		if (out->value) {
			memcpy(out->value, in->value, in->value_len + 1);
			out->value_len = in->value_len;
		}
	}
	if (in->prev) {
		out->prev = malloc(in->prev_len + 1);
		if (out->prev) {
			memcpy(out->prev, in->prev, in->prev_len + 1);
			out->prev_len = in->prev_len;
		}
	}
	if (!out->key || (in->value && !out->value) || (in->prev && !out->prev)) {
		store_event_free(out);
		return -ENOMEM;
	}
	return 0;
}

/* Caller holds mu. Takes ownership of ev. */
static void hub_push(struct hub *h, struct store_event *ev)
{
	size_t bytes = ev->value_len + ev->prev_len + strlen(ev->key) + 64;

	while (h->next_seq > h->first_seq &&
	       (h->next_seq - h->first_seq == HUB_MAX_EVENTS || h->bytes + bytes > HUB_MAX_BYTES)) {
		struct hub_ev *old = &h->ring[h->first_seq % HUB_MAX_EVENTS];

		h->start_rev = old->ev.rev;
		h->bytes -= old->bytes;
		store_event_free(&old->ev);
		h->first_seq++;
	}
	h->ring[h->next_seq % HUB_MAX_EVENTS] = (struct hub_ev){ *ev, bytes };
	h->next_seq++;
	h->bytes += bytes;
	if (ev->rev > h->progress)
		h->progress = ev->rev;
	memset(ev, 0, sizeof(*ev));
}

/* Caller holds mu: forget everything, restart the window at rev. */
static void hub_reset(struct hub *h, int64_t rev)
{
	while (h->first_seq < h->next_seq)
		store_event_free(&h->ring[h->first_seq++ % HUB_MAX_EVENTS].ev);
	h->bytes = 0;
	h->start_rev = h->progress = rev;
	h->ok = true;
}

static void *hub_run(void *arg)
{
	struct etcd_store *s = arg;
	struct hub *h = s->hub;

	while (!h->stop) {
		struct etcd_watch *raw = NULL;
		int64_t from;
		int rc;

		pthread_mutex_lock(&h->mu);
		if (!h->ok) {
			int64_t cur = 0;

			pthread_mutex_unlock(&h->mu);
			if (et_current_rev(&s->base, &cur)) {
				sleep(1);
				continue;
			}
			pthread_mutex_lock(&h->mu);
			hub_reset(h, cur);
			pthread_cond_broadcast(&h->cond);
		}
		from = h->progress;
		pthread_mutex_unlock(&h->mu);
		rc = raw_watch_open(s, s->hub_prefix, from, &raw);
		if (rc == -ERANGE) {
			pthread_mutex_lock(&h->mu);
			h->ok = false;
			pthread_mutex_unlock(&h->mu);
			continue;
		}
		if (rc) {
			sleep(1);
			continue;
		}
		while (!h->stop) {
			struct store_event ev = { 0 };

			rc = raw_watch_next(raw, 500, &ev);
			if (rc == 1) {
				pthread_mutex_lock(&h->mu);
				hub_push(h, &ev);
				pthread_cond_broadcast(&h->cond);
				pthread_mutex_unlock(&h->mu);
				continue;
			}
			if (rc == 0)
				continue;
			if (rc == -ERANGE) {
				pthread_mutex_lock(&h->mu);
				h->ok = false;
				pthread_cond_broadcast(&h->cond);
				pthread_mutex_unlock(&h->mu);
			} else {
				pr_warn("etcd shared watch on %s ended (%s); reconnecting from revision %lld",
					s->hub_prefix, strerror(-rc), (long long)h->progress);
				sleep(1);
			}
			break;
		}
		raw_watch_close(raw);
	}
	return NULL;
}

/* Starts the shared watch once; true when it holds a position. */
static bool hub_ready(struct etcd_store *s)
{
	struct hub *h = s->hub;
	bool ok;

	pthread_mutex_lock(&h->mu);
	if (!h->started) {
		if (pthread_create(&h->thr, NULL, hub_run, s) == 0)
			h->started = true;
		else
			pr_warn("etcd: start the shared watch thread: %s", strerror(errno));
	}
	for (int i = 0; h->started && !h->ok && i < 20; i++) {
		struct timespec dl;

		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_nsec += 100000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&h->cond, &h->mu, &dl);
	}
	ok = h->ok;
	pthread_mutex_unlock(&h->mu);
	return ok;
}

static void et_watch_close(struct store_watch *sw)
{
	struct hub_watch *w = (struct hub_watch *)sw;

	if (!w)
		return;
	raw_watch_close(w->raw);
	free(w->prefix);
	free(w);
}

static int et_watch_open(struct store *st, const char *prefix, int64_t after, struct store_watch **out)
{
	struct etcd_store *s = (struct etcd_store *)st;
	struct hub_watch *w = calloc(1, sizeof(*w));
	struct hub *h = s->hub;
	bool in_window = false;
	int err = 0;

	if (!w)
		return -ENOMEM;
	w->s = s;
	w->prefix = strdup(prefix);
	w->plen = strlen(prefix);
	w->last_rev = after;
	if (!w->prefix) {
		free(w);
		return -ENOMEM;
	}
	if (h && !strncmp(prefix, s->hub_prefix, strlen(s->hub_prefix)) && hub_ready(s)) {
		pthread_mutex_lock(&h->mu);
		if (h->ok && after >= h->start_rev) {
			in_window = true;
			w->seq = h->first_seq;
			while (w->seq < h->next_seq && h->ring[w->seq % HUB_MAX_EVENTS].ev.rev <= after)
				w->seq++;
		}
		pthread_mutex_unlock(&h->mu);
	}
	if (!in_window)
		err = raw_watch_open(s, prefix, after, &w->raw);
	if (err) {
		et_watch_close((struct store_watch *)w);
		return err;
	}
	*out = (struct store_watch *)w;
	return 0;
}

static int et_watch_next(struct store_watch *sw, int timeout_ms, struct store_event *ev)
{
	struct hub_watch *w = (struct hub_watch *)sw;
	struct hub *h = w->s->hub;
	struct timespec dl;
	int rc;

	if (w->raw) {
		rc = raw_watch_next(w->raw, timeout_ms, ev);
		if (rc == 1)
			w->last_rev = ev->rev;
		return rc;
	}
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h->mu);
	for (;;) {
		if (w->seq < h->first_seq || !h->ok) {
			/* fell out of the window: continue on an own stream */
			pthread_mutex_unlock(&h->mu);
			rc = raw_watch_open(w->s, w->prefix, w->last_rev, &w->raw);
			if (rc)
				return rc;
			return et_watch_next(sw, timeout_ms, ev);
		}
		while (w->seq < h->next_seq) {
			const struct store_event *e = &h->ring[w->seq++ % HUB_MAX_EVENTS].ev;

			if (e->rev <= w->last_rev || strncmp(e->key, w->prefix, w->plen))
				continue;
			rc = dup_event(e, ev);
			if (!rc)
				w->last_rev = ev->rev;
			pthread_mutex_unlock(&h->mu);
			return rc ? rc : 1;
		}
		if (pthread_cond_timedwait(&h->cond, &h->mu, &dl) == ETIMEDOUT) {
			/* caught up with everything the shared watch has seen */
			memset(ev, 0, sizeof(*ev));
			ev->rev = h->progress > w->last_rev ? h->progress : w->last_rev;
			pthread_mutex_unlock(&h->mu);
			return 0;
		}
	}
}

static void et_close(struct store *st)
{
	struct etcd_store *s = (struct etcd_store *)st;

	if (!s)
		return;
	if (s->hub) {
		s->hub->stop = true;
		if (s->hub->started)
			pthread_join(s->hub->thr, NULL);
		pthread_mutex_lock(&s->hub->mu);
		hub_reset(s->hub, 0);
		pthread_mutex_unlock(&s->hub->mu);
		pthread_mutex_destroy(&s->hub->mu);
		pthread_cond_destroy(&s->hub->cond);
		free(s->hub);
	}
	free(s->hub_prefix);
	for (int i = 0; i < s->nurls; i++)
		free(s->urls[i]);
	free(s);
}

static const struct store_ops et_ops = {
	.name = "etcd",
	.get = et_get,
	.range = et_range,
	.txn = et_txn,
	.current_rev = et_current_rev,
	.watch_open = et_watch_open,
	.watch_next = et_watch_next,
	.watch_close = et_watch_close,
	.close = et_close,
};

int store_etcd_open(const char *endpoints, int64_t history, const char *watch_prefix,
		    struct store **out)
{
	struct etcd_store *s = calloc(1, sizeof(*s));
	char *list = strdup(endpoints), *save = NULL, *tok;
	int64_t rev;
	int err;

	if (!s || !list) {
		free(s);
		free(list);
		return -ENOMEM;
	}
	s->base.ops = &et_ops;
	s->history = history > 0 ? history : 10000;
	if (watch_prefix) {
		pthread_condattr_t ca;

		s->hub = calloc(1, sizeof(*s->hub));
		s->hub_prefix = strdup(watch_prefix);
		if (!s->hub || !s->hub_prefix) {
			free(list);
			et_close(&s->base);
			return -ENOMEM;
		}
		pthread_mutex_init(&s->hub->mu, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->hub->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	for (tok = strtok_r(list, ",", &save); tok && s->nurls < MAX_URLS; tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);

		while (n && tok[n - 1] == '/')
			tok[--n] = 0;
		s->urls[s->nurls++] = strdup(tok);
	}
	free(list);
	if (!s->nurls) {
		pr_warn("--etcd-servers %s: no URL", endpoints);
		et_close(&s->base);
		return -EINVAL;
	}
	err = et_current_rev(&s->base, &rev);
	if (err) {
		pr_warn("--etcd-servers %s: no etcd v3 JSON gateway answers (%s)", endpoints, strerror(-err));
		et_close(&s->base);
		return err;
	}
	pr_info("etcd store at %s, revision %lld", s->urls[0], (long long)rev);
	*out = &s->base;
	return 0;
}
