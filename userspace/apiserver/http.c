/* http.c: the HTTP(S) front of rota-apiserver on libmicrohttpd: one thread
 * per connection (a slow or stuck client blocks only its own thread), body
 * size limit, bearer-token authentication, and routing of paths to
 * discovery and the REST handlers. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>
#include "apiserver.h"
#include "http.h"
#include "log.h"
#include "status.h"

#define MAX_SEGS 12

void req_warn(struct req *r, const char *text)
{
	size_t used = strlen(r->warnings);

	if (used < sizeof(r->warnings))
		snprintf(r->warnings + used, sizeof(r->warnings) - used, "%s%s", used ? "\n" : "", text);
}

/* One `Warning: 299 - "text"` header per warning, text quoted as RFC 7234
 * (and kube-apiserver) do. */
static void add_warnings(struct req *r, struct MHD_Response *resp)
{
	char *save = NULL, *w, list[sizeof(r->warnings)];

	memcpy(list, r->warnings, sizeof(list));
	for (w = strtok_r(list, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
		char h[sizeof(list) * 2 + 16], *o = h + snprintf(h, sizeof(h), "299 - \"");

		for (const char *c = w; *c && o < h + sizeof(h) - 3; c++) {
			if (*c == '"' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o++ = '"';
		*o = 0;
		MHD_add_response_header(resp, "Warning", h);
	}
}

enum MHD_Result reply_json_ctype(struct req *r, unsigned code, cJSON *obj, const char *ctype)
{
	char *s = cJSON_PrintUnformatted(obj);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	cJSON_Delete(obj);
	if (!s)
		return r->ret = MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(s);
		return r->ret = MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
	add_warnings(r, resp);
	ret = MHD_queue_response(r->conn, code, resp);
	MHD_destroy_response(resp);
	pr_debug("%s %s -> %u", r->method, r->url, code);
	return r->ret = ret;
}

enum MHD_Result reply_json(struct req *r, unsigned code, cJSON *obj)
{
	return reply_json_ctype(r, code, obj, "application/json");
}

enum MHD_Result reply_status(struct req *r, cJSON *st)
{
	return reply_json(r, status_code(st), st);
}

enum MHD_Result reply_text(struct req *r, unsigned code, const char *ctype, const char *text)
{
	return reply_bytes(r, code, ctype, text, strlen(text));
}

enum MHD_Result reply_bytes(struct req *r, unsigned code, const char *ctype, const void *data,
			    size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data,
								    MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!resp)
		return r->ret = MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	ret = MHD_queue_response(r->conn, code, resp);
	MHD_destroy_response(resp);
	return r->ret = ret;
}

const char *req_query(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static bool public_path(const char *url)
{
	return !strcmp(url, "/healthz") || !strcmp(url, "/livez") || !strcmp(url, "/readyz") ||
	       !strcmp(url, "/version");
}

/* As kube-apiserver: a verified client certificate first, then a bearer token. */
static bool authenticate(struct req *r)
{
	const char *h = req_header(r, "Authorization");
	const struct token_user *u;

	if (client_cert_user(r->as, r->conn, r->user, sizeof(r->user)) == 0)
		return true;
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	u = tokens_check(r->as->tokens, h + 7);
	if (!u)
		return false;
	snprintf(r->user, sizeof(r->user), "%s", u->user);
	return true;
}

static bool group_version_known(const char *group, const char *version)
{
	for (size_t i = 0; i < n_resources; i++)
		if (!strcmp(resources[i].group, group) && !strcmp(resources[i].version, version))
			return true;
	return false;
}

static enum MHD_Result dispatch(struct req *r)
{
	char *path = strdup(r->url), *seg[MAX_SEGS], *save = NULL, *tok;
	enum MHD_Result ret;
	int n = 0;

	if (!path)
		return MHD_NO;
	if (discovery_handle(r, r->url)) {
		free(path);
		return r->ret;
	}
	for (tok = strtok_r(path, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGS) {
			n = -1;
			break;
		}
		seg[n++] = tok;
	}
	if (n >= 2 && !strcmp(seg[0], "api") && !strcmp(seg[1], "v1"))
		ret = rest_handle(r, "", "v1", seg + 2, n - 2);
	else if (n >= 3 && !strcmp(seg[0], "apis") && group_version_known(seg[1], seg[2]))
		ret = rest_handle(r, seg[1], seg[2], seg + 3, n - 3);
	else {
		cJSON *st = status_new(404, "NotFound", "the server could not find the requested resource");

		json_ensure_obj(st, "details");
		ret = reply_status(r, st);
	}
	free(path);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct apiserver *as = cls;
	struct req *r = *con_cls;

	(void)version;
	if (!r) {
		const char *cl;

		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->as = as;
		r->conn = conn;
		r->method = method;
		r->url = url;
		*con_cls = r;
		/* Closing a TLS connection with unread bytes resets it before the
		 * client reads our answer, so a moderately oversized body is read
		 * and dropped (too_large) and answered at its end; only an absurd
		 * one is refused at once. */
		cl = req_header(r, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > 16 * as->max_body) {
			r->answered_early = true;
			return reply_status(r, status_new(413, "RequestEntityTooLarge",
				"Request entity too large: limit is %zu", as->max_body));
		}
		/* --insecure-http is kube-apiserver's old insecure port: loopback
		 * only, no authentication (clients do not send tokens over http). */
		if (as->tls && !public_path(url) && !authenticate(r)) {
			r->answered_early = true;
			return reply_status(r, status_new(401, "Unauthorized", "Unauthorized"));
		}
		return MHD_YES;
	}
	if (r->answered_early) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->body.len + *upload_size > as->max_body)
			r->too_large = true;
		else if (buf_add(&r->body, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_large)
		return reply_status(r, status_new(413, "RequestEntityTooLarge",
						  "Request entity too large: limit is %zu", as->max_body));
	return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!r)
		return;
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

int http_start(struct apiserver *as, const char *cert_pem, const char *key_pem,
	       struct MHD_Daemon **out)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(as->port) };
	struct MHD_Daemon *d;

	if (inet_pton(AF_INET, as->bind_addr, &sa.sin_addr) != 1) {
		pr_warn("--bind-address %s: not an IPv4 address", as->bind_addr);
		return -EINVAL;
	}
	if (as->tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			pr_warn("libmicrohttpd was built without TLS; use a build with GnuTLS or --insecure-http on loopback");
			return -ENOTSUP;
		}
		flags |= MHD_USE_TLS;
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, as,
				     MHD_OPTION_SOCK_ADDR, &sa,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				     MHD_OPTION_HTTPS_MEM_KEY, key_pem,
				     MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
				     /* asks clients for a certificate; NULL: does not */
				     MHD_OPTION_HTTPS_MEM_TRUST, as->client_ca_pem,
				     MHD_OPTION_END);
	} else {
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, as,
				     MHD_OPTION_SOCK_ADDR, &sa,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				     MHD_OPTION_END);
	}
	if (!d) {
		pr_warn("listen on %s:%d (%s): failed (port in use or no permission?)", as->bind_addr,
			as->port, as->tls ? "https" : "http");
		return -EADDRINUSE;
	}
	*out = d;
	return 0;
}

void http_stop(struct MHD_Daemon *d)
{
	if (d)
		MHD_stop_daemon(d);
}
