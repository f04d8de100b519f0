/* The agent's state shared between its threads: configuration, the cache,
 * the reconciler, the informers and the figures health and metrics report. */
#pragma once
#include <microhttpd.h>
#include <stdbool.h>
#include "cache.h"
#include "dp.h"
#include "informer.h"
#include "reconcile.h"

#define HIST_BUCKETS 15

struct histogram {
	double bounds[HIST_BUCKETS];
	unsigned long counts[HIST_BUCKETS];	/* cumulative at render time, raw here */
	unsigned long count;
	double sum;
};

struct rotad_opts {
	const char *kubeconfig;
	const char *node_name;
	const char *bpffs_dir;
	const char *cgroup;
	bool socket_lb;
	const char *healthz_bind;
	const char *metrics_bind;
	bool maglev;
	int healthz_timeout_s;		/* a change unapplied for longer → 503 */
	int watch_timeout_s;		/* server-side timeoutSeconds of each watch */
	int watch_idle_timeout_s;	/* a watch silent this long is restarted */
	int ct_gc_interval_s;
};

struct rotad {
	struct rotad_opts opts;
	struct rota_dp dp;
	struct cache cache;
	struct reconciler rec;
	struct k8s_client client;
	struct informer inf_svc, inf_slice, inf_node;
	volatile int stop;
	struct MHD_Daemon *healthz, *metrics;

	pthread_mutex_t stats_lock;	/* guards everything below */
	double last_sync;		/* wall time of the last successful sync; 0: none yet */
	unsigned long healthz_200, healthz_503;	/* /healthz answers, for metrics */
	struct histogram sync_duration;
	struct histogram programming_latency;
	struct histogram event_latency;	/* watch event in the cache → its sync's map writes done */
	unsigned long syncs, sync_failures;
	unsigned long ct_entries;	/* as of the last conntrack gc */
	unsigned long ct_gc_removed;
};

void histogram_init(struct histogram *h, const double *bounds);
void histogram_observe(struct histogram *h, double v);

int health_start(struct rotad *d);
void health_stop(struct rotad *d);
