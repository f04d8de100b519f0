/* libcurl plumbing for the Kubernetes client: TLS and auth options, the
 * token re-read that projected service-account tokens need, GET and watch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "client.h"

#define TOKEN_REREAD_S 60

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

/* The bearer header value, re-reading a token file once a minute. */
static char *auth_header(struct k8s_client *c)
{
	char *hdr = NULL;
	time_t now = time(NULL);

	pthread_mutex_lock(&c->lock);
	if (c->cfg.token_file && (!c->token || now - c->token_read_at >= TOKEN_REREAD_S)) {
		FILE *f = fopen(c->cfg.token_file, "r");

		if (f) {
			char buf[8192];
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);

			fclose(f);
			while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
				n--;
			buf[n] = '\0';
			free(c->token);
			c->token = strdup(buf);
			c->token_read_at = now;
		}
	}
	if (!c->token && c->cfg.token)
		c->token = strdup(c->cfg.token);
	if (c->token && asprintf(&hdr, "Authorization: Bearer %s", c->token) < 0)
		hdr = NULL;
	pthread_mutex_unlock(&c->lock);
	return hdr;
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
	char ct[128];
	CURLcode rc;
	CURL *h = easy_for(c, path, &headers);

	*out = NULL;
	*status = 0;
	if (!h) {
		snprintf(err, K8S_ERR_LEN, "%s %s: out of memory", method, path);
		return -ENOMEM;
	}
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
	if (rc != CURLE_OK) {
		snprintf(err, K8S_ERR_LEN, "%s %s%s: %s", method, c->cfg.server, path, curl_easy_strerror(rc));
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
};

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
	if (json_stream_feed(&w->js, data, n, watch_value, w))
		return 0;	/* aborts the transfer */
	return n;
}

static int watch_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct watch_ctx *w = arg;

	return w->stop && *w->stop;
}

int k8s_watch(struct k8s_client *c, const char *path, int idle_timeout_s, k8s_watch_cb cb, void *arg,
	      const volatile int *stop, long *status, char err[K8S_ERR_LEN])
{
	struct watch_ctx w = { .cb = cb, .arg = arg, .stop = stop };
	struct curl_slist *headers = NULL;
	CURLcode rc;
	CURL *h = easy_for(c, path, &headers);
	int ret = 0;

	*status = 0;
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
	/* A watch that goes silent (no event, no bookmark) is restarted. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)idle_timeout_s);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	json_stream_free(&w.js);

	if (w.cb_ret || (stop && *stop))
		ret = -ECANCELED;
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		ret = -ETIMEDOUT;
	else if (rc != CURLE_OK)
		ret = -EIO;
	if (ret && ret != -ECANCELED)
		snprintf(err, K8S_ERR_LEN, "watch %s%s: %s", c->cfg.server, path,
			 ret == -ETIMEDOUT ? "silent for too long" : curl_easy_strerror(rc));
	return ret;
}
