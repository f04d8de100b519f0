/* rotad: the node agent. Watches Services, EndpointSlices and its Node,
 * keeps the pinned datapath maps in step, and leaves the datapath serving
 * when it stops: a restarted rotad adopts the maps and converges. */
#include <errno.h>
#include <getopt.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "rotad.h"
#include "ct.h"
#include "log.h"

/* A failed sync is retried after 1 s, doubling up to 30 s (kube-proxy
 * retries a failed sync on its own too). */
#define RETRY_MIN_MS 1000L
#define RETRY_MAX_MS 30000L

static struct rotad agent;

static void on_signal(int sig)
{
	agent.stop = 1;
}

static const double sync_bounds[HIST_BUCKETS] = {
	0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
};
/* Around the 10 ms an endpoint change may take from its event to the maps. */
static const double event_bounds[HIST_BUCKETS] = {
	0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 5,
};
static const double latency_bounds[HIST_BUCKETS] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rotad [options]\n"
		"  --kubeconfig FILE       API server and credentials (default: in-cluster config)\n"
		"  --node-name NAME        this node's name (default: hostname)\n"
		"  --bpffs-dir DIR         pinned maps and programs (default /sys/fs/bpf/rota)\n"
		"  --cgroup PATH           cgroup v2 directory for socket LB (default: the cgroup v2 root)\n"
		"  --socket-lb on|off      attach socket LB (default on)\n"
		"  --lb-algorithm maglev|random   backend choice (default maglev)\n"
		"  --healthz-bind ADDR:PORT  (default 0.0.0.0:10256; \"\" disables)\n"
		"  --healthz-timeout SECONDS /healthz turns 503 when a change has waited this long\n"
		"                          without being applied (default 60)\n"
		"  --metrics-bind ADDR:PORT  (default 127.0.0.1:10249; \"\" disables)\n"
		"  --watch-timeout SECONDS   watches end server-side after this (+ up to 20%%; default 300)\n"
		"  --watch-idle-timeout SECONDS  a watch that receives nothing (no event, no bookmark)\n"
		"                          this long is restarted (default 120)\n"
		"  --log-level warn|info|debug\n"
		"  --cleanup               remove everything rota installed on this node and exit\n"
		"Without --kubeconfig: in-cluster config from KUBERNETES_SERVICE_HOST/PORT and the\n"
		"service account in " K8S_SA_DIR "\n"
		"(" K8S_SA_DIR_ENV "=DIR overrides it); the token is re-read when it changes.\n");
}

/* The cgroup v2 mount point: the node-wide default for socket LB. */
static char *cgroup2_root(void)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	char *root = NULL;

	while (f && (m = getmntent(f)))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			root = strdup(m->mnt_dir);
			break;
		}
	if (f)
		endmntent(f);
	return root;
}

/* A whole number of seconds from min to a day. */
static int parse_seconds(const char *flag, const char *arg, int min, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > 86400) {
		fprintf(stderr, "rotad: %s \"%s\": want whole seconds from %d to 86400\n", flag, arg, min);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct rotad_opts *o, bool *cleanup)
{
	enum { O_KUBECONFIG = 1, O_NODE, O_BPFFS, O_CGROUP, O_SOCKLB, O_HEALTHZ, O_METRICS, O_LOG, O_CLEANUP,
	       O_ALGO, O_WATCH_TIMEOUT, O_WATCH_IDLE, O_HEALTHZ_TIMEOUT, O_HELP };
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "node-name", required_argument, NULL, O_NODE },
		{ "bpffs-dir", required_argument, NULL, O_BPFFS },
		{ "cgroup", required_argument, NULL, O_CGROUP },
		{ "socket-lb", required_argument, NULL, O_SOCKLB },
		{ "healthz-bind", required_argument, NULL, O_HEALTHZ },
		{ "metrics-bind", required_argument, NULL, O_METRICS },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "lb-algorithm", required_argument, NULL, O_ALGO },
		{ "watch-timeout", required_argument, NULL, O_WATCH_TIMEOUT },
		{ "watch-idle-timeout", required_argument, NULL, O_WATCH_IDLE },
		{ "healthz-timeout", required_argument, NULL, O_HEALTHZ_TIMEOUT },
		{ "cleanup", no_argument, NULL, O_CLEANUP },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	static char host[256];
	enum rota_log_level lvl;
	int c;

	*o = (struct rotad_opts){
		.bpffs_dir = ROTA_DEFAULT_BPFFS_DIR, .socket_lb = true, .maglev = true,
		.healthz_bind = "0.0.0.0:10256", .metrics_bind = "127.0.0.1:10249",
		.healthz_timeout_s = 60, .watch_timeout_s = 300, .watch_idle_timeout_s = 120,
		.ct_gc_interval_s = 30,
	};
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_KUBECONFIG: o->kubeconfig = optarg; break;
		case O_NODE: o->node_name = optarg; break;
		case O_BPFFS: o->bpffs_dir = optarg; break;
		case O_CGROUP: o->cgroup = optarg; break;
		case O_HEALTHZ: o->healthz_bind = optarg; break;
		case O_METRICS: o->metrics_bind = optarg; break;
		case O_CLEANUP: *cleanup = true; break;
		case O_SOCKLB:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "rotad: --socket-lb \"%s\": must be on or off\n", optarg);
				return -EINVAL;
			}
			o->socket_lb = !strcmp(optarg, "on");
			break;
		case O_ALGO:
			if (strcmp(optarg, "maglev") && strcmp(optarg, "random")) {
				fprintf(stderr, "rotad: --lb-algorithm \"%s\": must be maglev or random\n", optarg);
				return -EINVAL;
			}
			o->maglev = !strcmp(optarg, "maglev");
			break;
		case O_LOG:
			if (rota_log_parse_level(optarg, &lvl)) {
				fprintf(stderr, "rotad: --log-level \"%s\": must be warn, info or debug\n", optarg);
				return -EINVAL;
			}
			rota_log_set_level(lvl);
			break;
		case O_WATCH_TIMEOUT:
			if (parse_seconds("--watch-timeout", optarg, 5, &o->watch_timeout_s))
				return -EINVAL;
			break;
		case O_WATCH_IDLE:
			if (parse_seconds("--watch-idle-timeout", optarg, 1, &o->watch_idle_timeout_s))
				return -EINVAL;
			break;
		case O_HEALTHZ_TIMEOUT:
			if (parse_seconds("--healthz-timeout", optarg, 1, &o->healthz_timeout_s))
				return -EINVAL;
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rotad: unexpected argument \"%s\"\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->node_name) {
		gethostname(host, sizeof(host) - 1);
		o->node_name = host;
	}
	return 0;
}

/* Adopts a loaded datapath, or loads one. */
static int datapath_up(struct rotad *d)
{
	struct rota_load_opts lo = { .dir = d->opts.bpffs_dir };
	char prog[512];
	int err;

	snprintf(prog, sizeof(prog), "%s/progs/rota_from_pod", d->opts.bpffs_dir);
	if (access(prog, F_OK) == 0 && rota_dp_open(&d->dp, d->opts.bpffs_dir) == 0) {
		pr_info("adopting the datapath pinned in %s", d->opts.bpffs_dir);
	} else {
		err = rota_dp_load(&lo);
		if (err)
			return err;
		err = rota_dp_open(&d->dp, d->opts.bpffs_dir);
		if (err)
			return err;
		pr_info("loaded the datapath into %s", d->opts.bpffs_dir);
	}
	if (d->opts.socket_lb) {
		char *root = NULL;
		const char *cg = d->opts.cgroup;

		if (!cg)
			cg = root = cgroup2_root();
		if (!cg) {
			pr_warn("socket LB: no cgroup v2 mount found; pass --cgroup or --socket-lb off");
			return -ENOENT;
		}
		err = rota_dp_attach_cgroup(d->opts.bpffs_dir, cg);
		if (!err)
			pr_info("socket LB attached to cgroup %s", cg);
		free(root);
		if (err)
			return err;
	}
	return 0;
}

static int client_up(struct rotad *d)
{
	struct k8s_config cfg;
	char err[K8S_ERR_LEN];
	int ret;

	ret = d->opts.kubeconfig ? k8s_config_from_kubeconfig(d->opts.kubeconfig, &cfg, err)
				 : k8s_config_in_cluster(&cfg, err);
	if (ret) {
		pr_warn("%s", err);
		return ret;
	}
	if (d->opts.kubeconfig)
		pr_info("API server %s (kubeconfig %s: %s)", cfg.server, d->opts.kubeconfig,
			cfg.cert_pem || cfg.cert_file ? "client certificate"
			: cfg.token || cfg.token_file ? "bearer token" : "no credentials");
	else
		pr_info("API server %s (in-cluster: token %s, CA %s, namespace %s)", cfg.server, cfg.token_file,
			cfg.ca_file, cfg.namespace);
	return k8s_client_init(&d->client, &cfg);
}

static void informers_up(struct rotad *d)
{
	static char node_selector[400];
	struct informer *infs[] = { &d->inf_svc, &d->inf_slice, &d->inf_node };

	snprintf(node_selector, sizeof(node_selector), "fieldSelector=metadata.name%%3D%s", d->opts.node_name);
	d->inf_svc = (struct informer){ .resource = "services", .path = "/api/v1/services",
					.kind = CACHE_SERVICES };
	d->inf_slice = (struct informer){ .resource = "endpointslices",
					  .path = "/apis/discovery.k8s.io/v1/endpointslices",
					  .kind = CACHE_SLICES };
	d->inf_node = (struct informer){ .resource = "nodes", .path = "/api/v1/nodes",
					 .selector = node_selector, .kind = CACHE_KINDS };
	for (size_t i = 0; i < 3; i++) {
		infs[i]->client = &d->client;
		infs[i]->cache = &d->cache;
		infs[i]->stop = &d->stop;
		infs[i]->watch_timeout_s = d->opts.watch_timeout_s;
		infs[i]->watch_idle_timeout_s = d->opts.watch_idle_timeout_s;
		informer_start(infs[i]);
	}
}

/* One sync and its figures. Returns true when every write succeeded. */
static bool sync_once(struct rotad *d)
{
	double start = wall_now(), end, *triggers = NULL, taken;
	struct cache_changes ch;
	size_t n_triggers;
	int failures;

	taken = cache_sync_begin(&d->cache);
	pthread_mutex_lock(&d->cache.lock);
	triggers = d->cache.triggers;
	n_triggers = d->cache.n_triggers;
	d->cache.triggers = NULL;
	d->cache.n_triggers = d->cache.cap_triggers = 0;
	cache_take_changes(&d->cache, &ch);
	pthread_mutex_unlock(&d->cache.lock);

	failures = reconcile(&d->rec, &d->cache, &ch);
	end = wall_now();
	/* What failed is revisited by the retry. */
	if (failures)
		cache_requeue_changes(&d->cache, &ch);
	else
		cache_changes_free(&ch);
	/* A failed sync leaves its changes pending: /healthz turns 503 if
	 * they stay unapplied past --healthz-timeout, and the sync is retried. */
	cache_sync_end(&d->cache, failures == 0, taken);

	pthread_mutex_lock(&d->stats_lock);
	d->syncs++;
	d->sync_failures += (unsigned long)failures;
	histogram_observe(&d->sync_duration, end - start);
	if (!failures) {
		for (size_t i = 0; i < n_triggers; i++)
			if (end >= triggers[i])
				histogram_observe(&d->programming_latency, end - triggers[i]);
		/* rotad's own share, free of the API server's and the
		 * clocks': from the oldest event this sync applied. */
		if (taken > 0 && end >= taken)
			histogram_observe(&d->event_latency, end - taken);
		d->last_sync = end;
	}
	pthread_mutex_unlock(&d->stats_lock);
	/* Not programmed yet: their latency runs on until a sync succeeds. */
	if (failures)
		cache_requeue_triggers(&d->cache, triggers, n_triggers);
	free(triggers);
	if (d->rec.upserts || d->rec.deletes || failures)
		pr_info("sync: %zu services written, %zu removed, %d failed in %.1f ms (%zu services, %zu backends)",
			d->rec.upserts, d->rec.deletes, failures, (end - start) * 1e3, d->rec.n_services,
			d->rec.n_backends);
	return failures == 0;
}

static void ct_gc(struct rotad *d)
{
	size_t removed = 0;
	struct rota_ct_row *rows;
	size_t n;

	if (rota_ct_gc(&d->dp, &removed) == 0 && rota_ct_list(&d->dp, &rows, &n) == 0) {
		free(rows);
		pthread_mutex_lock(&d->stats_lock);
		d->ct_entries = n;
		d->ct_gc_removed += removed;
		pthread_mutex_unlock(&d->stats_lock);
	}
}

static void run(struct rotad *d)
{
	unsigned long seen = 0;
	time_t last_gc = time(NULL);
	double retry_at = 0;		/* after a failed sync: when to try again */
	long retry_ms = RETRY_MIN_MS;

	while (!d->stop) {
		struct timespec until;
		bool ready, dirty, retry;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&d->cache.lock);
		ready = d->cache.synced[CACHE_SERVICES] && d->cache.synced[CACHE_SLICES];
		/* Until both lists are in, changes are only waited for: without
		 * this the loop spins a CPU away from the list still loading. */
		if (d->cache.generation == seen || !ready)
			pthread_cond_timedwait(&d->cache.changed, &d->cache.lock, &until);
		ready = d->cache.synced[CACHE_SERVICES] && d->cache.synced[CACHE_SLICES];
		dirty = d->cache.generation != seen;
		pthread_mutex_unlock(&d->cache.lock);
		retry = retry_at && wall_now() >= retry_at;

		/* Nothing is written until both lists are in: a partial view
		 * would delete services that are only not listed yet. */
		/* No wait to gather a burst: what arrives during a sync is
		 * taken up together by the next one. */
		if (ready && (dirty || retry)) {
			pthread_mutex_lock(&d->cache.lock);
			seen = d->cache.generation;
			pthread_mutex_unlock(&d->cache.lock);
			if (sync_once(d)) {
				retry_at = 0;
				retry_ms = RETRY_MIN_MS;
			} else {
				retry_at = wall_now() + retry_ms / 1e3;
				pr_info("sync: retrying in %.1f s", retry_ms / 1e3);
				retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
			}
		}
		if (time(NULL) - last_gc >= d->opts.ct_gc_interval_s) {
			ct_gc(d);
			last_gc = time(NULL);
		}
	}
}

int main(int argc, char **argv)
{
	struct rotad *d = &agent;
	bool cleanup = false;
	int err;

	rota_log_init("rotad", ROTA_LOG_INFO);
	if (parse_opts(argc, argv, &d->opts, &cleanup))
		return 2;
	if (cleanup) {
		err = rota_dp_unload(d->opts.bpffs_dir);
		if (!err)
			pr_info("removed the rota datapath from %s", d->opts.bpffs_dir);
		return err ? 1 : 0;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned int)getpid() ^ (unsigned int)time(NULL));
	pthread_mutex_init(&d->stats_lock, NULL);
	histogram_init(&d->sync_duration, sync_bounds);
	histogram_init(&d->programming_latency, latency_bounds);
	histogram_init(&d->event_latency, event_bounds);
	cache_init(&d->cache, d->opts.node_name);

	/* Configuration errors end rotad before it touches the datapath. */
	if ((err = client_up(d)))
		return 1;
	/* The lists load while the programs are verified: the informers only
	 * fill the cache, and nothing is written before both lists are in. */
	informers_up(d);
	pr_info("node %s: watching services and endpointslices", d->opts.node_name);
	if ((err = datapath_up(d)))
		return 1;
	err = reconciler_init(&d->rec, &d->dp, d->opts.maglev);
	if (err) {
		pr_warn("read back services from %s: %s", d->opts.bpffs_dir, strerror(-err));
		return 1;
	}
	if (health_start(d))
		return 1;
	run(d);

	/* The datapath stays: programs, maps and links are pinned. */
	pr_info("stopping; the datapath keeps serving");
	health_stop(d);
	return 0;
}
