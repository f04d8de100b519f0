/* http.c: the HTTP(S) front of rota-apiserver on libmicrohttpd: one thread
 * per connection (a slow or stuck client blocks only its own thread),
 * limits on what one client may hold (connections per address, a header
 * deadline, requests in flight, body size), authentication, and routing of
 * paths to discovery and the REST handlers. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>
#include "apiserver.h"
#include "http.h"
#include "conn_guard.h"
#include "log.h"
#include "rest.h"
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
	if (r->close)
		MHD_add_response_header(resp, "Connection", "close");
	if (r->retry_after)
		MHD_add_response_header(resp, "Retry-After", "1");
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

/* Watches hold their request for as long as they run: they are not
 * requests in flight (kube-apiserver's long-running requests). */
static bool long_running(struct req *r)
{
	return strstr(r->url, "/watch/") || query_bool(req_query(r, "watch"));
}

/* Takes a place among the requests in flight, or answers 429 as
 * kube-apiserver's max-in-flight filter does. */
static bool admit(struct req *r)
{
	struct apiserver *as = r->as;
	bool mutating = strcmp(r->method, "GET") && strcmp(r->method, "HEAD") && strcmp(r->method, "OPTIONS");
	unsigned *n = mutating ? &as->inflight_mutating : &as->inflight;
	unsigned cap = mutating ? as->limits.max_mutating : as->limits.max_inflight;

	if (public_path(r->url) || long_running(r))
		return true;
	if (__atomic_add_fetch(n, 1, __ATOMIC_RELAXED) > cap) {
		__atomic_sub_fetch(n, 1, __ATOMIC_RELAXED);
		return false;
	}
	r->inflight = n;
	return true;
}

/* A request path or argument with %00 would be cut at the NUL: it is left
 * encoded here and refused in on_request. Everything else is decoded as
 * libmicrohttpd does. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *o = s;

	(void)cls;
	(void)conn;
	for (const char *i = s; *i; i++) {
		unsigned v;

		if (*i == '%' && isxdigit((unsigned char)i[1]) && isxdigit((unsigned char)i[2]) &&
		    sscanf(i + 1, "%2x", &v) == 1 && v) {
			*o++ = (char)v;
			i += 2;
		} else {
			*o++ = *i;
		}
	}
	*o = 0;
	return (size_t)(o - s);
}

static enum MHD_Result arg_has_nul(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	bool *found = cls;

	(void)kind;
	if (strstr(key, "%00") || (value && strstr(value, "%00"))) {
		*found = true;
		return MHD_NO;
	}
	return MHD_YES;
}

static bool has_encoded_nul(struct req *r)
{
	bool found = strstr(r->url, "%00") != NULL;

	if (!found)
		MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, arg_has_nul, &found);
	return found;
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
		conn_guard_headers_in(as->guard, conn);
		if (has_encoded_nul(r)) {
			r->answered_early = true;
			return reply_status(r, status_new(400, "BadRequest",
				"the request path or query holds %%00 (NUL), which no name or value may contain"));
		}
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
			/* and close: an unauthenticated client keeps no connection */
			r->answered_early = true;
			r->close = true;
			return reply_status(r, status_new(401, "Unauthorized", "Unauthorized"));
		}
		if (!admit(r)) {
			r->answered_early = true;
			r->retry_after = true;
			return reply_status(r, status_new(429, "TooManyRequests",
				"Too many requests, please try again later."));
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
	struct apiserver *as = cls;
	struct req *r = *con_cls;

	(void)toe;
	conn_guard_answered(as->guard, conn);
	if (!r)
		return;
	if (r->inflight)
		__atomic_sub_fetch(r->inflight, 1, __ATOMIC_RELAXED);
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
	const struct http_limits *l = &as->limits;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem },
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem },
		/* asks clients for a certificate; NULL: does not */
		{ MHD_OPTION_HTTPS_MEM_TRUST, 0, as->client_ca_pem },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_Daemon *d;
	int err;

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
	} else {
		tls[0].option = MHD_OPTION_END;
	}
	err = conn_guard_start(l->header_timeout, l->idle_timeout, &as->guard);
	if (err) {
		pr_warn("start the request-header watchdog: %s", strerror(-err));
		return err;
	}
	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, as,
			     MHD_OPTION_SOCK_ADDR, &sa,
			     MHD_OPTION_CONNECTION_TIMEOUT, l->idle_timeout,
			     MHD_OPTION_CONNECTION_LIMIT, l->max_conns,
			     MHD_OPTION_PER_IP_CONNECTION_LIMIT, l->max_conns_per_client,
			     MHD_OPTION_NOTIFY_CONNECTION, conn_guard_notify, as->guard,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, as,
			     MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
			     MHD_OPTION_ARRAY, tls,
			     MHD_OPTION_END);
	if (!d) {
		pr_warn("listen on %s:%d (%s): failed (port in use or no permission?)", as->bind_addr,
			as->port, as->tls ? "https" : "http");
		conn_guard_stop(as->guard);
		as->guard = NULL;
		return -EADDRINUSE;
	}
	*out = d;
	return 0;
}

void http_stop(struct apiserver *as, struct MHD_Daemon *d)
{
	if (d)
		MHD_stop_daemon(d);
	conn_guard_stop(as->guard);
	as->guard = NULL;
}
