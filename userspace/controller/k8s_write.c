/* HTTP write requests for the controller over libcurl. The TLS and auth
 * options mirror userspace/lib/k8s/client.c (whose easy_for is static). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "k8s_write.h"

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

static void blob_opt(CURL *h, CURLoption opt, const char *pem)
{
	struct curl_blob b = { (void *)pem, strlen(pem), CURL_BLOB_COPY };

	curl_easy_setopt(h, opt, &b);
}

/* The token as client.c resolves it: a token file (re-read) or the inline one. */
static char *bearer(struct k8s_client *c)
{
	char *hdr = NULL, buf[8192];
	size_t n;
	FILE *f;

	if (c->cfg.token_file && (f = fopen(c->cfg.token_file, "r"))) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
			n--;
		buf[n] = '\0';
		if (asprintf(&hdr, "Authorization: Bearer %s", buf) < 0)
			hdr = NULL;
		return hdr;
	}
	if (c->cfg.token && asprintf(&hdr, "Authorization: Bearer %s", c->cfg.token) < 0)
		hdr = NULL;
	return hdr;
}

int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, cJSON **out, long *status, char err[K8S_ERR_LEN])
{
	struct curl_slist *hdrs = NULL;
	struct body b = {};
	char *url = NULL, *auth, ct[128];
	CURLcode rc;
	CURL *h;

	*out = NULL;
	*status = 0;
	if (!(h = curl_easy_init()) || asprintf(&url, "%s%s", c->cfg.server, path) < 0) {
		if (h)
			curl_easy_cleanup(h);
		snprintf(err, K8S_ERR_LEN, "%s %s: out of memory", method, path);
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rota-controller/1 (linux/amd64) rota");
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (c->cfg.insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->cfg.ca_pem)
		blob_opt(h, CURLOPT_CAINFO_BLOB, c->cfg.ca_pem);
	else if (c->cfg.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca_file);
	if (c->cfg.cert_pem) {
		blob_opt(h, CURLOPT_SSLCERT_BLOB, c->cfg.cert_pem);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (c->cfg.cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cfg.cert_file);
	}
	if (c->cfg.key_pem) {
		blob_opt(h, CURLOPT_SSLKEY_BLOB, c->cfg.key_pem);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (c->cfg.key_file) {
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->cfg.key_file);
	}
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
		hdrs = curl_slist_append(hdrs, ct);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if ((auth = bearer(c))) {
		hdrs = curl_slist_append(hdrs, auth);
		free(auth);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		snprintf(err, K8S_ERR_LEN, "%s %s: %s", method, url, curl_easy_strerror(rc));
		free(url);
		free(b.buf);
		return -EIO;
	}
	free(url);
	if (b.buf)
		*out = cJSON_ParseWithLength(b.buf, b.len);
	free(b.buf);
	return 0;
}

const char *k8s_status_msg(const cJSON *st)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, "message");

	return cJSON_IsString(m) ? m->valuestring : "no message";
}
