/* libcurl plumbing for the Kubernetes client: TLS and auth options, the
 * token re-read that projected service-account tokens need, GET and watch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include "client.h"
#include "log.h"

/* A token file is re-read when it changes (kubelet swaps projected tokens in
 * atomically, so its inode changes) and at least this often. */
#define TOKEN_REREAD_S 60
/* TCP keepalive on API connections: a peer that vanished is noticed even
 * when nothing is being sent. */
#define KEEPALIVE_IDLE_S 30L
#define KEEPALIVE_INTVL_S 10L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int k8s_client_init(struct k8s_client *c, struct k8s_config *cfg)
{
	pthread_once(&curl_once, curl_init_once);
	memset(c, 0, sizeof(*c));
	c->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

void k8s_client_free(struct k8s_client *c)
{
	k8s_config_free(&c->cfg);
	free(c->token);
	pthread_mutex_destroy(&c->lock);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reads the token file into c->token. Lock held. A file that cannot be read
 * (mid-rotation) keeps the token we have. */
static void token_reread(struct k8s_client *c, time_t now, const struct stat *st)
{
	FILE *f = fopen(c->cfg.token_file, "r");
	char buf[8192];
	size_t n;

	if (!f) {
		pr_warn("token file %s: %s; keeping the token read before", c->cfg.token_file, strerror(errno));
		c->token_read_at = now;
		return;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (!n) {
		pr_warn("token file %s is empty; keeping the token read before", c->cfg.token_file);
	} else {
		if (c->token && strcmp(c->token, buf))
			pr_info("token file %s changed: using the new token", c->cfg.token_file);
		free(c->token);
		c->token = strdup(buf);
	}
	c->token_read_at = now;
	if (st)
		c->token_stat = *st;
}

/* The bearer header value. A token file is re-read when it changed, when a
 * minute has passed, or after the server refused the token (401). */
static char *auth_header(struct k8s_client *c)
{
	char *hdr = NULL;
	time_t now = time(NULL);

	pthread_mutex_lock(&c->lock);
	if (c->cfg.token_file) {
		struct stat st;
		bool have_st = stat(c->cfg.token_file, &st) == 0;

		if (!c->token || c->token_stale || now - c->token_read_at >= TOKEN_REREAD_S ||
		    (have_st && !same_file(&st, &c->token_stat)))
			token_reread(c, now, have_st ? &st : NULL);
		c->token_stale = false;
	}
	if (!c->token && c->cfg.token)
		c->token = strdup(c->cfg.token);
	if (c->token && asprintf(&hdr, "Authorization: Bearer %s", c->token) < 0)
		hdr = NULL;
	pthread_mutex_unlock(&c->lock);
	return hdr;
}

/* A 401 may mean our token expired: read the file again before the next request. */
static void note_status(struct k8s_client *c, long status)
{
	if (status != 401 || !c->cfg.token_file)
		return;
	pthread_mutex_lock(&c->lock);
	c->token_stale = true;
	pthread_mutex_unlock(&c->lock);
}

static CURL *easy_for(struct k8s_client *c, const char *path, struct curl_slist **headers)
{
	CURL *h = curl_easy_init();
	char *url, *auth;

	if (!h)
		return NULL;
	if (asprintf(&url, "%s%s", c->cfg.server, path) < 0) {
		curl_easy_cleanup(h);
		return NULL;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rotad/1 (linux/amd64) rota");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, KEEPALIVE_IDLE_S);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, KEEPALIVE_INTVL_S);
	if (c->cfg.insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->cfg.ca_pem) {
		struct curl_blob b = { c->cfg.ca_pem, strlen(c->cfg.ca_pem), CURL_BLOB_COPY };

		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (c->cfg.ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca_file);
	}
	if (c->cfg.cert_pem) {
		struct curl_blob b = { c->cfg.cert_pem, strlen(c->cfg.cert_pem), CURL_BLOB_COPY };

		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (c->cfg.cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cfg.cert_file);
	}
	if (c->cfg.key_pem) {
		struct curl_blob b = { c->cfg.key_pem, strlen(c->cfg.key_pem), CURL_BLOB_COPY };

		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (c->cfg.key_file) {
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->cfg.key_file);
	}
	*headers = curl_slist_append(NULL, "Accept: application/json");
	auth = auth_header(c);
	if (auth) {
		*headers = curl_slist_append(*headers, auth);
		free(auth);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
	return h;
}

/* libcurl's detailed message when it left one ("SSL certificate problem:
 * unable to get local issuer certificate"), else the generic one. */
static const char *curl_err(CURLcode rc, const char *detail)
{
	return detail && *detail ? detail : curl_easy_strerror(rc);
}

struct body {
	char *buf;
	size_t len;
};

static size_t body_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	char *p = realloc(b->buf, b->len + n + 1);

	if (!p)
		return 0;
	memcpy(p + b->len, data, n);
	b->buf = p;
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, cJSON **out, long *status, char err[K8S_ERR_LEN])
{
	struct curl_slist *headers = NULL;
	struct body b = {};
	char ct[128], detail[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	CURL *h = easy_for(c, path, &headers);

	*out = NULL;
	*status = 0;
	if (!h) {
		snprintf(err, K8S_ERR_LEN, "%s %s: out of memory", method, path);
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
		headers = curl_slist_append(headers, ct);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	note_status(c, *status);
	if (rc != CURLE_OK) {
		snprintf(err, K8S_ERR_LEN, "%s %s%s: %s", method, c->cfg.server, path, curl_err(rc, detail));
		free(b.buf);
		return -EIO;
	}
	if (b.buf)
		*out = cJSON_ParseWithLength(b.buf, b.len);
	free(b.buf);
	return 0;
}

int k8s_get(struct k8s_client *c, const char *path, cJSON **out, long *status, char err[K8S_ERR_LEN])
{
	int ret = k8s_request(c, "GET", path, NULL, NULL, out, status, err);

	if (!ret && !*out) {
		snprintf(err, K8S_ERR_LEN, "GET %s%s: HTTP %ld with a body that is not JSON", c->cfg.server, path,
			 *status);
		return -EBADMSG;
	}
	return ret;
}

const char *k8s_status_msg(const cJSON *st)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, "message");

	return cJSON_IsString(m) ? m->valuestring : "no message";
}

struct watch_ctx {
	struct json_stream js;
	k8s_watch_cb cb;
	void *arg;
	const volatile int *stop;
	int cb_ret;
	int bad_json;
	double idle_s;		/* silence limit */
	double last_data;	/* monotonic time of the last byte received */
	bool silent;		/* ended because nothing arrived for idle_s */
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int watch_value(void *arg, const char *json, size_t len)
{
	struct watch_ctx *w = arg;
	cJSON *ev = cJSON_ParseWithLength(json, len), *type, *obj;
	int ret = 0;

	if (!ev) {
		w->bad_json++;
		return 0;
	}
	type = cJSON_GetObjectItemCaseSensitive(ev, "type");
	obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	if (cJSON_IsString(type) && cJSON_IsObject(obj))
		ret = w->cb(w->arg, type->valuestring, obj);
	else if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ev, "kind")))
		ret = w->cb(w->arg, "ERROR", ev);	/* a bare Status instead of an event */
	cJSON_Delete(ev);
	if (ret)
		w->cb_ret = ret;
	return ret;
}

static size_t watch_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct watch_ctx *w = arg;
	size_t n = size * nmemb;

	if (w->stop && *w->stop)
		return 0;
	w->last_data = mono_now();
	if (json_stream_feed(&w->js, data, n, watch_value, w))
		return 0;	/* aborts the transfer */
	return n;
}

/* libcurl calls this at least once a second while the transfer lasts: the
 * place to notice a stop request and a stream that went silent (no event,
 * no bookmark, not even the server ending it) on a connection that is still
 * open, e.g. black-holed by a middlebox. */
static int watch_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct watch_ctx *w = arg;

	if (w->stop && *w->stop)
		return 1;
	if (w->idle_s > 0 && mono_now() - w->last_data > w->idle_s) {
		w->silent = true;
		return 1;
	}
	return 0;
}

int k8s_watch(struct k8s_client *c, const char *path, int idle_timeout_s, k8s_watch_cb cb, void *arg,
	      const volatile int *stop, long *status, char err[K8S_ERR_LEN])
{
	struct watch_ctx w = { .cb = cb, .arg = arg, .stop = stop, .idle_s = idle_timeout_s };
	struct curl_slist *headers = NULL;
	char detail[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	CURL *h = easy_for(c, path, &headers);
	int ret = 0;

	*status = 0;
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
	/* The silence clock starts with the request: connecting and the
	 * response headers count against it too. */
	w.last_data = mono_now();
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	json_stream_free(&w.js);
	note_status(c, *status);

	if (w.silent)
		ret = -ETIMEDOUT;
	else if (w.cb_ret || (stop && *stop))
		ret = -ECANCELED;
	else if (rc != CURLE_OK)
		ret = -EIO;
	if (ret == -ETIMEDOUT)
		snprintf(err, K8S_ERR_LEN, "watch %s%s: nothing received for %d s (no event, no bookmark)",
			 c->cfg.server, path, idle_timeout_s);
	else if (ret && ret != -ECANCELED)
		snprintf(err, K8S_ERR_LEN, "watch %s%s: %s", c->cfg.server, path, curl_err(rc, detail));
	return ret;
}
