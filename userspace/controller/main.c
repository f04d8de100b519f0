/* rota-controller: the control loops kube-controller-manager and a
 * bare-metal cloud controller would run for rota's embedded cluster:
 * EndpointSlices from Pods, Node Pod CIDRs, LoadBalancer IPs. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "controller.h"
#include "k8s/client.h"

static struct ctl ctl;

static void on_signal(int sig)
{
	ctl.stop = 1;
}

double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void retry_later(struct ctl *c, const char *key)
{
	struct hent *e = hmap_put(&c->retry, key);

	if (!e)
		return;
	e->num = e->num ? (e->num * 2 > 60000 ? 60000 : e->num * 2) : 500;
	e->t = now_mono() + e->num / 1000.0;
}

void retry_done(struct ctl *c, const char *key)
{
	hmap_del(&c->retry, key);
}

void warn_once(struct ctl *c, const char *key, const char *fmt, ...)
{
	struct hent *e;
	char *msg;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	e = hmap_put(&c->warned, key);
	if (e && e->val && !strcmp(e->val, msg)) {
		pr_debug("%s", msg);
		free(msg);
		return;
	}
	pr_warn("%s", msg);
	if (e) {
		free(e->val);
		e->val = msg;
	} else {
		free(msg);
	}
}

void warn_clear(struct ctl *c, const char *key)
{
	free(hmap_del(&c->warned, key));
}

static void mark_dirty(struct ctl *c, const char *ns, const char *name, double t)
{
	char key[520];
	struct hent *e;

	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
	e = hmap_put(&c->dirty, key);
	if (e && t > 0 && !e->t)
		e->t = t;
}

static unsigned long long rv_num(const cJSON *o)
{
	const char *rv = jmeta(o, "resourceVersion");
	char *end;
	unsigned long long v;

	if (!rv)
		return 0;
	v = strtoull(rv, &end, 10);
	return *end ? 0 : v;
}

/* store_set that never replaces an object with an older resourceVersion:
 * the controller stores its own write results before the watch echoes them,
 * and an echo of an earlier write may arrive after a later one. */
static cJSON *store_set_newer(struct store *s, cJSON *obj, bool *taken)
{
	cJSON *cur = store_get(s, jmeta(obj, "namespace"), jmeta(obj, "name") ?: "");
	unsigned long long a = rv_num(obj), b = rv_num(cur);

	if (cur && a && b && a < b) {
		*taken = false;
		return NULL;
	}
	*taken = true;
	return store_set(s, obj);
}

static const char *zone_of(const cJSON *node)
{
	const cJSON *labels = jpath(node, "metadata", "labels");

	return labels ? jstr(labels, "topology.kubernetes.io/zone") : NULL;
}

void ctl_replace(struct ctl *c, enum kind k, cJSON *items)
{
	cJSON *it;

	pthread_mutex_lock(&c->lock);
	store_clear(&c->st[k]);
	while ((it = cJSON_DetachItemFromArray(items, 0)))
		store_set(&c->st[k], it);
	c->synced[k] = true;
	c->full_resync = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	cJSON_Delete(items);
}

void ctl_event(struct ctl *c, enum kind k, const char *type, cJSON *obj)
{
	const char *ns = jmeta(obj, "namespace"), *name = jmeta(obj, "name");
	cJSON *old = NULL, *new = NULL, *dup;
	bool taken = true;

	if (!name)
		return;
	pthread_mutex_lock(&c->lock);
	if (!strcmp(type, "DELETED")) {
		old = store_remove(&c->st[k], ns, name);
	} else if ((dup = cJSON_Duplicate(obj, true))) {
		old = store_set_newer(&c->st[k], dup, &taken);
		if (!taken) {
			cJSON_Delete(dup);
			pthread_mutex_unlock(&c->lock);
			return;
		}
		new = dup;
	}
	switch (k) {
	case K_SVC:
		mark_dirty(c, ns, name, now_real());
		c->lb_dirty = true;
		break;
	case K_POD:
		eps_on_pod(c, old, new, now_real());
		break;
	case K_NODE: {
		const char *z1 = old ? zone_of(old) : NULL, *z2 = new ? zone_of(new) : NULL;

		c->nodes_dirty = true;
		if ((z1 || z2) && (!z1 || !z2 || strcmp(z1, z2)))
			c->full_resync = true;
		break;
	}
	case K_EPS: {
		const cJSON *o = new ? new : old;
		const char *svc = o ? jstr(jpath(o, "metadata", "labels"), LABEL_SVC_NAME) : NULL;

		if (svc)
			mark_dirty(c, ns, svc, 0);
		break;
	}
	default:
		break;
	}
	cJSON_Delete(old);
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

struct op *ops_add(struct ops *o, const char *method, const char *ctype, cJSON *body, int apply,
		   enum kind del_kind, const char *ns, const char *name, const char *retry_key,
		   const char *fmt_path, ...)
{
	struct op *op;
	va_list ap;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		struct op *v = realloc(o->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		o->v = v;
		o->cap = cap;
	}
	op = &o->v[o->n++];
	memset(op, 0, sizeof(*op));
	op->method = method;
	op->ctype = ctype;
	op->body = body ? cJSON_PrintUnformatted(body) : NULL;
	op->apply = apply;
	op->del_kind = del_kind;
	op->ns = strdup(ns ? ns : "");
	op->name = strdup(name ? name : "");
	op->retry_key = strdup(retry_key);
	va_start(ap, fmt_path);
	if (vasprintf(&op->path, fmt_path, ap) < 0)
		op->path = NULL;
	va_end(ap);
	return op;
}

int ops_run(struct ctl *c, struct ops *o)
{
	int failures = 0;
	size_t i;

	for (i = 0; i < o->n; i++) {
		struct op *op = &o->v[i];
		char err[K8S_ERR_LEN] = "";
		cJSON *out = NULL;
		long status = 0;
		int ret = -ENOMEM;
		bool ok;

		pthread_mutex_unlock(&c->lock);
		if (op->path && !c->stop)
			ret = k8s_request(&c->client, op->method, op->path, op->ctype, op->body, &out, &status, err);
		pthread_mutex_lock(&c->lock);
		ok = !ret && status >= 200 && status < 300;
		if (!ret && status == 404 && !strcmp(op->method, "DELETE"))
			ok = true;
		if (ok) {
			c->writes++;
			pr_info("%s %s", op->method, op->what ? op->what : op->path);
			if (!strcmp(op->method, "DELETE")) {
				cJSON_Delete(store_remove(&c->st[op->del_kind], op->ns, op->name));
			} else if (op->apply >= 0 && cJSON_IsObject(out) && jmeta(out, "name")) {
				bool taken;
				cJSON *old = store_set_newer(&c->st[op->apply], out, &taken);

				cJSON_Delete(old);
				if (taken)
					out = NULL;
			}
		} else {
			failures++;
			c->write_errors++;
			if (!ret && status == 404)
				cJSON_Delete(store_remove(&c->st[op->del_kind], op->ns, op->name));
			if (ret)
				pr_warn("%s", err);
			else if (status == 409)
				pr_info("%s %s: conflict, will retry: %s", op->method, op->path, k8s_status_msg(out));
			else
				pr_warn("%s %s: HTTP %ld: %s", op->method, op->path, status, k8s_status_msg(out));
			retry_later(c, op->retry_key);
		}
		cJSON_Delete(out);
	}
	for (i = 0; i < o->n; i++) {
		free(o->v[i].path);
		free(o->v[i].body);
		free(o->v[i].ns);
		free(o->v[i].name);
		free(o->v[i].retry_key);
		free(o->v[i].what);
	}
	free(o->v);
	memset(o, 0, sizeof(*o));
	return failures;
}

static bool all_synced(struct ctl *c)
{
	int k;

	for (k = 0; k < K_KINDS; k++)
		if (!c->synced[k])
			return false;
	return true;
}

static void wait_until(struct ctl *c, double mono)
{
	struct timespec ts;
	double now = now_mono();

	if (mono > now + 0.5)
		mono = now + 0.5;	/* notice stop */
	ts.tv_sec = (time_t)mono;
	ts.tv_nsec = (long)((mono - ts.tv_sec) * 1e9);
	pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

static void full_resync(struct ctl *c)
{
	struct hent *n, *e;
	size_t i, j;

	hmap_for_each(&c->st[K_SVC].ns, n, i) hmap_for_each((struct hmap *)n->val, e, j)
		mark_dirty(c, n->key, e->key, 0);
	hmap_for_each(&c->st[K_EPS].ns, n, i) hmap_for_each((struct hmap *)n->val, e, j) {
		const char *svc = jstr(jpath(e->val, "metadata", "labels"), LABEL_SVC_NAME);

		if (svc)
			mark_dirty(c, n->key, svc, 0);
	}
	c->nodes_dirty = c->lb_dirty = true;
}

static void run(struct ctl *c)
{
	bool was_synced = false;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		double now = now_mono(), next = now + 3600;
		struct hmap work;
		struct hent *e;
		size_t i;

		if (!all_synced(c)) {
			wait_until(c, now + 0.5);
			continue;
		}
		if (!was_synced) {
			pr_info("caches synced: %zu services, %zu pods, %zu nodes, %zu endpointslices",
				c->st[K_SVC].count, c->st[K_POD].count, c->st[K_NODE].count, c->st[K_EPS].count);
			was_synced = true;
		}
		if (now >= c->next_resync) {
			c->full_resync = true;
			c->next_resync = now + c->resync_s;
		}
		next = c->next_resync;
		hmap_for_each(&c->retry, e, i) {
			if (e->t > now) {
				if (e->t < next)
					next = e->t;
				continue;
			}
			e->t = 1e300;	/* until retry_later or retry_done */
			if (!strcmp(e->key, "n"))
				c->nodes_dirty = true;
			else if (!strcmp(e->key, "l"))
				c->lb_dirty = true;
			else if (!strncmp(e->key, "e:", 2)) {
				char *slash = strchr(e->key + 2, '/');

				if (slash) {
					*slash = '\0';
					mark_dirty(c, e->key + 2, slash + 1, 0);
					*slash = '/';
				}
			}
		}
		if (c->full_resync) {
			c->full_resync = false;
			full_resync(c);
		}
		if (!c->dirty.n && !c->nodes_dirty && !c->lb_dirty) {
			wait_until(c, next);
			continue;
		}
		if (c->nodes_dirty) {
			c->nodes_dirty = false;
			if (c->node_ipam)
				node_ipam_pass(c);
		}
		if (c->lb_dirty) {
			c->lb_dirty = false;
			if (c->npools)
				lb_ipam_pass(c);
		}
		work = c->dirty;
		memset(&c->dirty, 0, sizeof(c->dirty));
		hmap_for_each(&work, e, i) {
			char *slash = strchr(e->key, '/');

			if (c->stop)
				break;
			*slash = '\0';
			eps_sync(c, e->key, slash + 1, e->t);
			*slash = '/';
		}
		hmap_clear(&work, NULL);
	}
	pthread_mutex_unlock(&c->lock);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rota-controller --kubeconfig FILE [options]\n"
		"  --kubeconfig FILE            API server and credentials (required)\n"
		"  --cluster-cidr CIDR          Pod CIDRs for Nodes come from here (default 10.244.0.0/16)\n"
		"  --node-cidr-mask-size N      prefix length of each Node's Pod CIDR (default 24)\n"
		"  --allocate-node-cidrs on|off Node IPAM (default on)\n"
		"  --lb-pool CIDR[,CIDR]        LoadBalancer IPs come from here (repeatable; none: LB IPAM off)\n"
		"  --resync-period SECONDS      full level-triggered pass from the caches (default 300)\n"
		"  --log-level warn|info|debug  (default info)\n");
}

static int add_pools(struct ctl *c, const char *arg)
{
	char *dup = strdup(arg), *save = NULL, *tok;
	int ret = 0;

	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct cidr4 p, *v;

		if (cidr4_parse(tok, &p) || p.prefix < 8) {
			fprintf(stderr, "rota-controller: --lb-pool %s: not an IPv4 CIDR of /8 or longer\n", tok);
			ret = -EINVAL;
			break;
		}
		v = realloc(c->pools, (c->npools + 1) * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			break;
		}
		c->pools = v;
		c->pools[c->npools++] = p;
	}
	free(dup);
	return ret;
}

int main(int argc, char **argv)
{
	enum { O_KUBECONFIG = 1, O_CLUSTER_CIDR, O_MASK, O_ALLOC, O_POOL, O_RESYNC, O_LOG, O_HELP };
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "cluster-cidr", required_argument, NULL, O_CLUSTER_CIDR },
		{ "node-cidr-mask-size", required_argument, NULL, O_MASK },
		{ "allocate-node-cidrs", required_argument, NULL, O_ALLOC },
		{ "lb-pool", required_argument, NULL, O_POOL },
		{ "resync-period", required_argument, NULL, O_RESYNC },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "help", no_argument, NULL, O_HELP },
		{},
	};
	static const char *const paths[K_KINDS] = {
		[K_SVC] = "/api/v1/services",
		[K_POD] = "/api/v1/pods",
		[K_NODE] = "/api/v1/nodes",
		[K_EPS] = "/apis/discovery.k8s.io/v1/endpointslices",
	};
	static const char *const names[K_KINDS] = { "services", "pods", "nodes", "endpointslices" };
	const char *kubeconfig = NULL, *cluster_cidr = "10.244.0.0/16";
	enum rota_log_level level = ROTA_LOG_INFO;
	struct k8s_config cfg = {};
	char err[K8S_ERR_LEN];
	pthread_condattr_t ca;
	struct sigaction sa = { .sa_handler = on_signal };
	int o, k;

	ctl.node_mask = 24;
	ctl.node_ipam = true;
	ctl.resync_s = 300;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;

		switch (o) {
		case O_KUBECONFIG:
			kubeconfig = optarg;
			break;
		case O_CLUSTER_CIDR:
			cluster_cidr = optarg;
			break;
		case O_MASK:
			ctl.node_mask = strtol(optarg, &end, 10);
			if (*end || ctl.node_mask < 1 || ctl.node_mask > 32) {
				fprintf(stderr, "rota-controller: --node-cidr-mask-size %s: want 1-32\n", optarg);
				return 2;
			}
			break;
		case O_ALLOC:
			if (strcmp(optarg, "on") && strcmp(optarg, "off") && strcmp(optarg, "true") &&
			    strcmp(optarg, "false")) {
				fprintf(stderr, "rota-controller: --allocate-node-cidrs %s: want on|off\n", optarg);
				return 2;
			}
			ctl.node_ipam = !strcmp(optarg, "on") || !strcmp(optarg, "true");
			break;
		case O_POOL:
			if (add_pools(&ctl, optarg))
				return 2;
			break;
		case O_RESYNC:
			ctl.resync_s = strtol(optarg, &end, 10);
			if (*end || ctl.resync_s < 1) {
				fprintf(stderr, "rota-controller: --resync-period %s: want seconds >= 1\n", optarg);
				return 2;
			}
			break;
		case O_LOG:
			if (rota_log_parse_level(optarg, &level)) {
				fprintf(stderr, "rota-controller: --log-level %s: want warn|info|debug\n", optarg);
				return 2;
			}
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !kubeconfig) {
		if (!kubeconfig)
			fprintf(stderr, "rota-controller: --kubeconfig is required\n");
		usage(stderr);
		return 2;
	}
	if (cidr4_parse(cluster_cidr, &ctl.cluster_cidr)) {
		fprintf(stderr, "rota-controller: --cluster-cidr %s: not an IPv4 CIDR\n", cluster_cidr);
		return 2;
	}
	if (ctl.node_ipam && (ctl.node_mask < ctl.cluster_cidr.prefix || ctl.node_mask - ctl.cluster_cidr.prefix > 24)) {
		fprintf(stderr,
			"rota-controller: --node-cidr-mask-size %d must be >= the --cluster-cidr prefix (/%d) and at most 24 bits longer\n",
			ctl.node_mask, ctl.cluster_cidr.prefix);
		return 2;
	}
	rota_log_init("rota-controller", level);
	if (k8s_config_from_kubeconfig(kubeconfig, &cfg, err)) {
		pr_warn("%s", err);
		return 1;
	}
	k8s_client_init(&ctl.client, &cfg);

	pthread_mutex_init(&ctl.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ctl.cond, &ca);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	srand(time(NULL) ^ getpid());
	ctl.next_resync = now_mono() + ctl.resync_s;

	pr_info("starting: server %s, cluster-cidr %s (node mask /%d%s), %d LoadBalancer pool(s)",
		ctl.client.cfg.server, cluster_cidr, ctl.node_mask, ctl.node_ipam ? "" : ", node IPAM off", ctl.npools);
	for (k = 0; k < K_KINDS; k++) {
		struct informer *inf = &ctl.inf[k];

		inf->ctl = &ctl;
		inf->kind = k;
		inf->resource = names[k];
		inf->path = paths[k];
		if (k == K_EPS)
			inf->selector = "labelSelector=endpointslice.kubernetes.io%2Fmanaged-by%3D" MANAGED_BY;
		if (informer_start(inf)) {
			pr_warn("cannot start the %s informer", names[k]);
			return 1;
		}
	}
	run(&ctl);
	for (k = 0; k < K_KINDS; k++)
		pthread_join(ctl.inf[k].thread, NULL);
	pr_info("stopped after %lu writes (%lu failed)", ctl.writes, ctl.write_errors);
	for (k = 0; k < K_KINDS; k++)
		store_clear(&ctl.st[k]);
	hmap_clear(&ctl.dirty, NULL);
	hmap_clear(&ctl.retry, NULL);
	hmap_clear(&ctl.warned, free);
	free(ctl.pools);
	k8s_client_free(&ctl.client);
	return 0;
}
