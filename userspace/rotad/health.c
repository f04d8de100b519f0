/* kube-proxy compatible health and metrics endpoints (libmicrohttpd):
 * /healthz on :10256 and Prometheus text /metrics on 127.0.0.1:10249. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rotad.h"
#include "log.h"
#include "stats.h"

void histogram_init(struct histogram *h, const double *bounds)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->bounds, bounds, sizeof(h->bounds));
}

void histogram_observe(struct histogram *h, double v)
{
	for (int i = 0; i < HIST_BUCKETS; i++)
		if (v <= h->bounds[i]) {
			h->counts[i]++;
			break;
		}
	h->count++;
	h->sum += v;
}

static void rfc3339(double t, char buf[40])
{
	time_t sec = (time_t)t;
	struct tm tm;
	char base[32];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, 40, "%s.%03dZ", base, (int)((t - (double)sec) * 1000) % 1000);
}

/* kube-proxy's rule: healthy unless a change has waited longer than
 * --healthz-timeout without a sync applying it (a sync under way, stalled
 * or failed counts as not applied), or no sync has succeeded yet. A quiet
 * cluster, or an API server that is away, is not stale: nothing waits.
 * *last: the last successful sync. */
static bool healthy(struct rotad *d, double now, double *last)
{
	double oldest = cache_oldest_unapplied(&d->cache);

	pthread_mutex_lock(&d->stats_lock);
	*last = d->last_sync;
	pthread_mutex_unlock(&d->stats_lock);
	return *last > 0 && (!oldest || now - oldest < d->opts.healthz_timeout_s);
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int code, const char *type, char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Body as kube-proxy writes it: while healthy lastUpdated is the current
 * time; when not, the time of the last successful sync ("" if none). */
static enum MHD_Result healthz_handler(void *cls, struct MHD_Connection *conn, const char *url,
				       const char *method, const char *version, const char *upload,
				       size_t *upload_size, void **con_cls)
{
	struct rotad *d = cls;
	double now = wall_now(), last;
	char lu[40] = "", ct[40], *body;
	bool ok, livez = !strcmp(url, "/livez");

	if (strcmp(url, "/healthz") && !livez)
		return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain", strdup("404 page not found\n"));
	ok = healthy(d, now, &last);
	if (ok || last > 0)
		rfc3339(ok ? now : last, lu);
	rfc3339(now, ct);
	if (asprintf(&body, livez ? "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\"}\n"
				  : "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", \"nodeEligible\": true}\n",
		     lu, ct) < 0)
		return MHD_NO;
	if (!livez) {
		pthread_mutex_lock(&d->stats_lock);
		if (ok)
			d->healthz_200++;
		else
			d->healthz_503++;
		pthread_mutex_unlock(&d->stats_lock);
	}
	return respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body);
}

/* Growing string for the metrics page. */
struct out {
	char *buf;
	size_t len, cap;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (o->buf && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap * 2 : 8192;
		while (cap < o->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b)
			return;
		o->buf = b;
		o->cap = cap;
	}
}

static void hist_out(struct out *o, const char *name, const char *help, const struct histogram *h)
{
	unsigned long cum = 0;

	outf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < HIST_BUCKETS; i++) {
		cum += h->counts[i];
		outf(o, "%s_bucket{le=\"%g\"} %lu\n", name, h->bounds[i], cum);
	}
	outf(o, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %g\n%s_count %lu\n", name, h->count, name, h->sum, name,
	     h->count);
}

static void gauge(struct out *o, const char *name, const char *help, double v)
{
	outf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void informer_out(struct out *o, const struct informer *const *infs, size_t n)
{
	outf(o, "# HELP rota_watch_restarts_total Watches restarted after an error, or because nothing arrived "
		"for --watch-idle-timeout (reason=\"silent\").\n"
		"# TYPE rota_watch_restarts_total counter\n");
	for (size_t i = 0; i < n; i++)
		outf(o, "rota_watch_restarts_total{resource=\"%s\",reason=\"error\"} %lu\n"
			"rota_watch_restarts_total{resource=\"%s\",reason=\"silent\"} %lu\n",
		     infs[i]->resource, infs[i]->restarts, infs[i]->resource, infs[i]->silent_restarts);
	outf(o, "# HELP rota_watch_relists_total Full relists (410 Gone or lost watch).\n"
		"# TYPE rota_watch_relists_total counter\n");
	for (size_t i = 0; i < n; i++)
		outf(o, "rota_watch_relists_total{resource=\"%s\"} %lu\n", infs[i]->resource, infs[i]->relists);
	outf(o, "# HELP rota_watch_events_total Watch events received.\n# TYPE rota_watch_events_total counter\n");
	for (size_t i = 0; i < n; i++)
		outf(o, "rota_watch_events_total{resource=\"%s\"} %lu\n", infs[i]->resource, infs[i]->events);
}

static enum MHD_Result metrics_handler(void *cls, struct MHD_Connection *conn, const char *url,
				       const char *method, const char *version, const char *upload,
				       size_t *upload_size, void **con_cls)
{
	struct rotad *d = cls;
	struct rota_stat_val st[ROTA_STAT_MAX];
	const struct informer *infs[] = { &d->inf_svc, &d->inf_slice, &d->inf_node };
	struct out o = {};

	if (strcmp(url, "/metrics"))
		return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain", strdup("404 page not found\n"));
	pthread_mutex_lock(&d->stats_lock);
	hist_out(&o, "kubeproxy_sync_proxy_rules_duration_seconds",
		 "SyncProxyRules latency in seconds (one rota sync of the maps)", &d->sync_duration);
	hist_out(&o, "kubeproxy_network_programming_duration_seconds",
		 "In Cluster Network Programming Latency in seconds (EndpointSlice change to map written)",
		 &d->programming_latency);
	hist_out(&o, "rota_event_to_programmed_seconds",
		 "From a watch event reaching rotad's cache to the end of the sync that wrote it to the maps",
		 &d->event_latency);
	gauge(&o, "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
	      "The last time the maps were successfully synced", d->last_sync);
	outf(&o, "# HELP kubeproxy_proxy_healthz_total Cumulative proxy healthz HTTP status\n"
		 "# TYPE kubeproxy_proxy_healthz_total counter\n"
		 "kubeproxy_proxy_healthz_total{code=\"200\"} %lu\nkubeproxy_proxy_healthz_total{code=\"503\"} %lu\n",
	     d->healthz_200, d->healthz_503);
	outf(&o, "# HELP rota_syncs_total Syncs run.\n# TYPE rota_syncs_total counter\nrota_syncs_total %lu\n",
	     d->syncs);
	outf(&o, "# HELP rota_sync_failures_total Map operations that failed.\n"
		 "# TYPE rota_sync_failures_total counter\nrota_sync_failures_total %lu\n", d->sync_failures);
	gauge(&o, "rota_services", "Frontends programmed in the datapath", (double)d->rec.n_services);
	gauge(&o, "rota_backends", "Backends programmed in the datapath", (double)d->rec.n_backends);
	gauge(&o, "rota_conntrack_entries", "Conntrack entries at the last garbage collection",
	      (double)d->ct_entries);
	outf(&o, "# HELP rota_map_fill_ratio Used fraction of a map's capacity.\n# TYPE rota_map_fill_ratio gauge\n");
	outf(&o, "rota_map_fill_ratio{map=\"%s\"} %g\n", ROTA_MAP_SVC4,
	     (double)(d->rec.n_services + d->rec.n_backends) / d->dp.svc_max);
	outf(&o, "rota_map_fill_ratio{map=\"%s\"} %g\n", ROTA_MAP_BACKENDS4,
	     (double)d->rec.n_backends / d->dp.backends_max);
	outf(&o, "rota_map_fill_ratio{map=\"%s\"} %g\n", ROTA_MAP_CT4, (double)d->ct_entries / d->dp.ct_max);
	pthread_mutex_unlock(&d->stats_lock);
	informer_out(&o, infs, 3);
	if (rota_stats_read(&d->dp, st) == 0) {
		outf(&o, "# HELP rota_datapath_packets_total Packets and socket calls by what the datapath did.\n"
			 "# TYPE rota_datapath_packets_total counter\n");
		for (unsigned int r = 0; r < ROTA_STAT_MAX; r++)
			outf(&o, "rota_datapath_packets_total{reason=\"%s\"} %llu\n", rota_stat_name(r),
			     (unsigned long long)st[r].packets);
		outf(&o, "# HELP rota_datapath_bytes_total Bytes by what the datapath did.\n"
			 "# TYPE rota_datapath_bytes_total counter\n");
		for (unsigned int r = 0; r < ROTA_STAT_MAX; r++)
			outf(&o, "rota_datapath_bytes_total{reason=\"%s\"} %llu\n", rota_stat_name(r),
			     (unsigned long long)st[r].bytes);
	}
	if (!o.buf)
		return MHD_NO;
	return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", o.buf);
}

static int parse_bind(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!*host)
		sa->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static struct MHD_Daemon *serve(const char *bind, MHD_AccessHandlerCallback h, struct rotad *d, const char *what)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *m;

	if (!bind || !*bind)
		return NULL;
	if (parse_bind(bind, &sa)) {
		pr_warn("--%s-bind \"%s\": expected ADDRESS:PORT", what, bind);
		return NULL;
	}
	m = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, ntohs(sa.sin_port), NULL, NULL,
			     h, d, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
	if (!m)
		pr_warn("%s: cannot listen on %s: %s", what, bind, strerror(errno));
	return m;
}

int health_start(struct rotad *d)
{
	d->healthz = serve(d->opts.healthz_bind, healthz_handler, d, "healthz");
	d->metrics = serve(d->opts.metrics_bind, metrics_handler, d, "metrics");
	if ((d->opts.healthz_bind && *d->opts.healthz_bind && !d->healthz) ||
	    (d->opts.metrics_bind && *d->opts.metrics_bind && !d->metrics))
		return -EADDRINUSE;
	return 0;
}

void health_stop(struct rotad *d)
{
	if (d->healthz)
		MHD_stop_daemon(d->healthz);
	if (d->metrics)
		MHD_stop_daemon(d->metrics);
}
