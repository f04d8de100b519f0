/* The reconciler: builds every wanted frontend from the cache (each port's
 * backends chosen by model.c's svc_port_backends), compares it with what the
 * maps hold and writes only services that differ. */
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include "reconcile.h"
#include "log.h"

/* A frontend and what it should (or does) hold. */
struct fe_entry {
	struct rota_frontend fe;	/* tree key: compared bytewise */
	char owner[OBJ_KEY_LEN + PORT_NAME_LEN + 2];	/* ns/name:port-name, for logs */
	struct rota_service svc;
};

static int fe_cmp(const void *a, const void *b)
{
	const struct rota_frontend *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return (int)x->scope - (int)y->scope;
}

static void entry_free(void *p)
{
	struct fe_entry *e = p;

	rota_svc_free(&e->svc);
	free(e);
}

int reconciler_init(struct reconciler *r, struct rota_dp *dp, bool maglev)
{
	struct rota_service *list;
	size_t n;
	int err;

	memset(r, 0, sizeof(*r));
	r->dp = dp;
	r->maglev = maglev;
	err = rota_svc_list(dp, &list, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		struct fe_entry *e = calloc(1, sizeof(*e));

		if (!e)
			return -ENOMEM;
		e->fe = list[i].fe;
		e->svc = list[i];
		qsort(e->svc.backends, e->svc.n_backends, sizeof(*e->svc.backends), backend_cmp);
		tsearch(e, &r->current, fe_cmp);
		r->n_services++;
		r->n_backends += e->svc.n_backends;
	}
	free(list);	/* backends now owned by the entries */
	pr_info("adopted %zu services with %zu backends from %s", r->n_services, r->n_backends, dp->dir);
	return 0;
}

void reconciler_free(struct reconciler *r)
{
	tdestroy(r->current, entry_free);
	r->current = NULL;
}

/* ---- desired state ---- */

struct slice_group {
	const char *svc_key;	/* tree key */
	const struct slice_obj **slices;
	size_t n, cap;
};

static int group_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct build {
	void *groups;		/* svc_key → slice_group */
	void *desired;		/* frontend → entry */
	int err;
};

static void add_slice(const void *obj, void *arg)
{
	const struct slice_obj *s = obj;
	struct build *b = arg;
	struct slice_group key = { .svc_key = s->svc_key }, *g, **slot;

	if (!*s->svc_key || !s->ipv4)
		return;
	slot = tfind(&key, &b->groups, group_cmp);
	if (!slot) {
		g = calloc(1, sizeof(*g));
		if (!g) {
			b->err = -ENOMEM;
			return;
		}
		g->svc_key = s->svc_key;
		slot = tsearch(g, &b->groups, group_cmp);
		if (!slot) {
			free(g);
			b->err = -ENOMEM;
			return;
		}
	}
	g = *slot;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 4;
		const struct slice_obj **v = realloc(g->slices, cap * sizeof(*v));

		if (!v) {
			b->err = -ENOMEM;
			return;
		}
		g->slices = v;
		g->cap = cap;
	}
	g->slices[g->n++] = s;
}

static void group_free(void *p)
{
	struct slice_group *g = p;

	free(g->slices);
	free(g);
}

static void add_service(const void *obj, void *arg)
{
	const struct svc_obj *s = obj;
	struct build *b = arg;
	struct slice_group key = { .svc_key = s->key }, **g;

	if (!s->proxied)
		return;
	g = tfind(&key, &b->groups, group_cmp);
	for (size_t i = 0; i < s->n_ports; i++) {
		struct fe_entry *e = calloc(1, sizeof(*e)), **slot;

		if (!e) {
			b->err = -ENOMEM;
			return;
		}
		e->fe = (struct rota_frontend){ .addr = s->cluster_ip, .port = htons(s->ports[i].port),
						.proto = s->ports[i].proto };
		snprintf(e->owner, sizeof(e->owner), "%s:%s", s->key, *s->ports[i].name ? s->ports[i].name : "-");
		e->svc.fe = e->fe;
		e->svc.type = ROTA_SVC_CLUSTER_IP;
		e->svc.affinity_timeout = s->affinity_timeout;
		if (svc_port_backends(s, &s->ports[i], g ? (*g)->slices : NULL, g ? (*g)->n : 0, &e->svc.backends,
				      &e->svc.n_backends)) {
			entry_free(e);
			b->err = -ENOMEM;
			return;
		}
		slot = tsearch(e, &b->desired, fe_cmp);
		if (slot && *slot != e) {
			char f[ROTA_ADDR_STR_LEN];

			pr_warn("service %s: frontend %s is already %s's; skipping it", e->owner,
				rota_fmt_frontend(f, &e->fe), (*slot)->owner);
			entry_free(e);
		}
	}
}

/* ---- diff and apply ---- */

static bool same_service(const struct rota_service *a, const struct rota_service *b)
{
	if (a->affinity_timeout != b->affinity_timeout || a->maglev != b->maglev ||
	    a->n_backends != b->n_backends)
		return false;
	for (size_t i = 0; i < a->n_backends; i++)
		if (a->backends[i].addr != b->backends[i].addr || a->backends[i].port != b->backends[i].port ||
		    a->backends[i].terminating != b->backends[i].terminating)
			return false;
	return true;
}

struct apply {
	struct reconciler *r;
	void *desired;
	struct fe_entry **stale;
	size_t n_stale, cap_stale;
};

static void apply_desired(const void *node, VISIT which, void *arg)
{
	struct apply *a = arg;
	struct fe_entry *want = *(struct fe_entry *const *)node, **have;
	char err[ROTA_ERR_LEN];

	if (which != postorder && which != leaf)
		return;
	want->svc.maglev = a->r->maglev;
	have = tfind(want, &a->r->current, fe_cmp);
	if (have && same_service(&(*have)->svc, &want->svc))
		return;
	/* What no retry can fix (more backends than Maglev or the maps take)
	 * is skipped like any object rota cannot serve; only failed writes
	 * count as failures, retried and reported by /healthz. */
	if (rota_svc_validate(a->r->dp, &want->svc, err)) {
		pr_warn("service %s: cannot be served: %s; skipping it", want->owner, err);
		a->r->skipped++;
		return;
	}
	if (rota_svc_upsert(a->r->dp, &want->svc, err)) {
		pr_warn("service %s: %s", want->owner, err);
		a->r->failures++;
		return;
	}
	a->r->upserts++;
	/* Record what the maps now hold (a copy: desired is freed after the sync). */
	{
		struct fe_entry *e = calloc(1, sizeof(*e));

		if (!e)
			return;
		*e = *want;
		e->svc.backends = calloc(want->svc.n_backends + 1, sizeof(*e->svc.backends));
		if (!e->svc.backends) {
			free(e);
			return;
		}
		memcpy(e->svc.backends, want->svc.backends, want->svc.n_backends * sizeof(*e->svc.backends));
		if (have) {
			struct fe_entry *old = *have;

			a->r->n_backends -= old->svc.n_backends;
			*have = e;
			entry_free(old);
		} else {
			tsearch(e, &a->r->current, fe_cmp);
			a->r->n_services++;
		}
		a->r->n_backends += e->svc.n_backends;
	}
}

static void find_stale(const void *node, VISIT which, void *arg)
{
	struct apply *a = arg;
	struct fe_entry *have = *(struct fe_entry *const *)node;

	if (which != postorder && which != leaf)
		return;
	if (tfind(have, &a->desired, fe_cmp))
		return;
	if (a->n_stale == a->cap_stale) {
		size_t cap = a->cap_stale ? a->cap_stale * 2 : 16;
		struct fe_entry **v = realloc(a->stale, cap * sizeof(*v));

		if (!v)
			return;
		a->stale = v;
		a->cap_stale = cap;
	}
	a->stale[a->n_stale++] = have;
}

int reconcile(struct reconciler *r, struct cache *c)
{
	struct build b = {};
	struct apply a = { .r = r };

	r->upserts = r->deletes = r->failures = r->skipped = 0;
	pthread_mutex_lock(&c->lock);
	cache_walk(c, CACHE_SLICES, add_slice, &b);
	cache_walk(c, CACHE_SERVICES, add_service, &b);
	pthread_mutex_unlock(&c->lock);
	tdestroy(b.groups, group_free);
	if (b.err) {
		tdestroy(b.desired, entry_free);
		pr_warn("sync: %s", strerror(-b.err));
		return 1;
	}

	/* Removals first: what goes frees map space for what comes. */
	a.desired = b.desired;
	twalk_r(r->current, find_stale, &a);
	for (size_t i = 0; i < a.n_stale; i++) {
		struct fe_entry *e = a.stale[i];
		char f[ROTA_ADDR_STR_LEN];
		int err = rota_svc_delete(r->dp, &e->fe);

		if (err && err != -ENOENT) {
			pr_warn("delete service %s: %s", rota_fmt_frontend(f, &e->fe), strerror(-err));
			r->failures++;
			continue;
		}
		r->deletes++;
		r->n_services--;
		r->n_backends -= e->svc.n_backends;
		tdelete(e, &r->current, fe_cmp);
		entry_free(e);
	}
	free(a.stale);
	twalk_r(b.desired, apply_desired, &a);
	tdestroy(b.desired, entry_free);
	return (int)r->failures;
}
