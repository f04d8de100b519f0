/* The reconciler: for each Service a sync revisits, builds its wanted
 * frontends from the cache (each port's backends chosen by model.c's
 * svc_port_backends), compares them with what the maps hold and writes only
 * what differs. An endpoint change thus costs one Service's work, not a walk
 * of every Service. */
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include "reconcile.h"
#include "keyed_list.h"
#include "vec.h"
#include "log.h"

/* A frontend and what it should (or does) hold. */
struct fe_entry {
	struct rota_frontend fe;	/* tree key: compared bytewise */
	char *svc_key;			/* owning Service; NULL: adopted from the maps, owner not known yet */
	char port_name[PORT_NAME_LEN];
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

static int str_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void entry_free(void *p)
{
	struct fe_entry *e = p;

	rota_svc_free(&e->svc);
	free(e->svc_key);
	free(e);
}

/* by_owner: the frontends each Service holds in the maps. */
static int owned_add(struct reconciler *r, struct fe_entry *e)
{
	return keyed_list_add(&r->by_owner, e->svc_key, e);
}

static void owned_remove(struct reconciler *r, const struct fe_entry *e)
{
	if (e->svc_key)
		keyed_list_remove(&r->by_owner, e->svc_key, e);
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

		if (!e) {
			rota_svc_list_free(list + i, n - i);
			return -ENOMEM;
		}
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
	keyed_list_destroy(&r->by_owner);
	tdestroy(r->current, entry_free);
	tdestroy(r->conflicted, free);
	r->current = r->conflicted = NULL;
}

/* ---- desired state of the Services revisited ---- */

struct build {
	struct reconciler *r;
	struct cache *c;
	void *want;		/* frontend → entry */
	void *conflicted;	/* this sync's conflicted Service keys */
	int err;
};

static void log_owner(char *buf, size_t len, const struct fe_entry *e)
{
	snprintf(buf, len, "%s:%s", e->svc_key ? e->svc_key : "?", *e->port_name ? e->port_name : "-");
}

/* loser wanted a frontend holder_key's Service has: said once, when the
 * conflict starts, and remembered so the loser is revisited. */
static void conflict(struct build *b, const struct fe_entry *loser, const char *holder_key)
{
	char owner[OBJ_KEY_LEN + PORT_NAME_LEN + 2], f[ROTA_ADDR_STR_LEN], *k;

	if (!strcmp(loser->svc_key, holder_key)) {	/* two ports, one frontend */
		log_owner(owner, sizeof(owner), loser);
		pr_warn("service %s: frontend %s repeats another port's; skipping it", owner,
			rota_fmt_frontend(f, &loser->fe));
		return;
	}
	if (!tfind(loser->svc_key, &b->r->conflicted, str_cmp)) {
		log_owner(owner, sizeof(owner), loser);
		pr_warn("service %s: frontend %s is already %s's; skipping it", owner,
			rota_fmt_frontend(f, &loser->fe), holder_key);
	}
	if (tfind(loser->svc_key, &b->conflicted, str_cmp))
		return;
	k = strdup(loser->svc_key);
	if (!k || !tsearch(k, &b->conflicted, str_cmp)) {
		free(k);
		b->err = -ENOMEM;
	}
}

/* The holder of fe in the maps, or NULL (also for an adopted entry). */
static const char *holder(struct reconciler *r, const struct rota_frontend *fe)
{
	struct fe_entry **have = tfind(fe, &r->current, fe_cmp);

	return have ? (*have)->svc_key : NULL;
}

static void build_service(struct build *b, const struct svc_obj *s)
{
	const struct slice_obj *const *slices;
	size_t n_slices;

	if (!s->proxied)
		return;
	slices = cache_service_slices(b->c, s->key, &n_slices);
	for (size_t i = 0; i < s->n_ports; i++) {
		struct fe_entry *e = calloc(1, sizeof(*e)), **slot;

		if (!e || !(e->svc_key = strdup(s->key))) {
			free(e);
			b->err = -ENOMEM;
			return;
		}
		e->fe = (struct rota_frontend){ .addr = s->cluster_ip, .port = htons(s->ports[i].port),
						.proto = s->ports[i].proto };
		snprintf(e->port_name, sizeof(e->port_name), "%s", s->ports[i].name);
		e->svc.fe = e->fe;
		e->svc.type = ROTA_SVC_CLUSTER_IP;
		e->svc.maglev = b->r->maglev;
		e->svc.affinity_timeout = s->affinity_timeout;
		if (svc_port_backends(s, &s->ports[i], slices, n_slices, &e->svc.backends, &e->svc.n_backends)) {
			entry_free(e);
			b->err = -ENOMEM;
			return;
		}
		slot = tsearch(e, &b->want, fe_cmp);
		if (!slot) {
			entry_free(e);
			b->err = -ENOMEM;
			return;
		}
		if (*slot != e) {
			/* Two Services want one frontend: the one holding it keeps it. */
			struct fe_entry *other = *slot, *loser = e;
			const char *h = holder(b->r, &e->fe);

			if (h && !strcmp(h, e->svc_key)) {
				*slot = e;
				loser = other;
			}
			conflict(b, loser, (*slot)->svc_key);
			entry_free(loser);
		}
	}
}

static void build_node(const void *obj, void *arg)
{
	build_service(arg, obj);
}

/* ---- removals ---- */

struct stale {
	struct fe_entry **v;
	size_t n, cap;
	int err;
};

static void stale_add(struct stale *st, struct fe_entry *e)
{
	if (vec_grow(&st->v, &st->cap, st->n, sizeof(*st->v))) {
		st->err = -ENOMEM;
		return;
	}
	st->v[st->n++] = e;
}

/* e is stale unless the sync wants it for the same Service (an adopted
 * entry, owner unknown, is kept for whoever wants it). */
static bool is_stale(void *want, const struct fe_entry *e)
{
	struct fe_entry **w = tfind(e, &want, fe_cmp);

	return !w || (e->svc_key && strcmp(e->svc_key, (*w)->svc_key));
}

struct stale_walk {
	void *want;
	struct stale *st;
};

static void find_stale(const void *node, VISIT which, void *arg)
{
	struct stale_walk *sw = arg;
	struct fe_entry *e = *(struct fe_entry *const *)node;

	if ((which == postorder || which == leaf) && is_stale(sw->want, e))
		stale_add(sw->st, e);
}

static void remove_stale(struct reconciler *r, struct stale *st)
{
	for (size_t i = 0; i < st->n; i++) {
		struct fe_entry *e = st->v[i];
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
		owned_remove(r, e);
		tdelete(e, &r->current, fe_cmp);
		entry_free(e);
	}
}

/* ---- writes ---- */

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

/* An adopted entry gets its owner. */
static void claim(struct reconciler *r, struct fe_entry *have, const struct fe_entry *want)
{
	if (have->svc_key)
		return;
	have->svc_key = strdup(want->svc_key);
	memcpy(have->port_name, want->port_name, sizeof(have->port_name));
	if (!have->svc_key || owned_add(r, have))
		r->failures++;	/* not tracked: the retried full sync claims it again */
}

/* Records what the maps now hold, taking want's backends. */
static void record(struct reconciler *r, struct fe_entry **have, struct fe_entry *want)
{
	struct fe_entry *e = have ? *have : calloc(1, sizeof(*e));

	if (!e) {
		r->failures++;
		return;
	}
	if (have) {
		r->n_backends -= e->svc.n_backends;
		rota_svc_free(&e->svc);
	}
	e->fe = want->fe;
	e->svc = want->svc;
	want->svc.backends = NULL;
	want->svc.n_backends = 0;
	r->n_backends += e->svc.n_backends;
	if (have) {
		claim(r, e, want);
		return;
	}
	e->svc_key = want->svc_key;
	want->svc_key = NULL;
	memcpy(e->port_name, want->port_name, sizeof(e->port_name));
	tsearch(e, &r->current, fe_cmp);
	r->n_services++;
	if (owned_add(r, e))
		r->failures++;
}

static void apply_desired(const void *node, VISIT which, void *arg)
{
	struct build *b = arg;
	struct reconciler *r = b->r;
	struct fe_entry *want = *(struct fe_entry *const *)node, **have;
	char err[ROTA_ERR_LEN], owner[OBJ_KEY_LEN + PORT_NAME_LEN + 2];

	if (which != postorder && which != leaf)
		return;
	have = tfind(want, &r->current, fe_cmp);
	if (have && (*have)->svc_key && strcmp((*have)->svc_key, want->svc_key)) {
		conflict(b, want, (*have)->svc_key);
		return;
	}
	if (have && same_service(&(*have)->svc, &want->svc)) {
		claim(r, *have, want);
		return;
	}
	log_owner(owner, sizeof(owner), want);
	/* What no retry can fix (more backends than Maglev or the maps take)
	 * is skipped like any object rota cannot serve; only failed writes
	 * count as failures, retried and reported by /healthz. */
	if (rota_svc_validate(r->dp, &want->svc, err)) {
		pr_warn("service %s: cannot be served: %s; skipping it", owner, err);
		r->skipped++;
		return;
	}
	if (rota_svc_upsert(r->dp, &want->svc, err)) {
		pr_warn("service %s: %s", owner, err);
		r->failures++;
		return;
	}
	r->upserts++;
	record(r, have, want);
}

/* ---- one sync ---- */

static int key_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The Service keys a partial sync revisits: the changed ones, and those
 * waiting for a frontend another Service holds. The strings stay owned by
 * ch and r->conflicted. */
struct key_list {
	const struct cache_changes *ch;
	const char **v;
	size_t n, cap;
	int err;
};

static void add_conflicted(const void *node, VISIT which, void *arg)
{
	struct key_list *l = arg;
	const char *k = *(char *const *)node;

	if ((which != postorder && which != leaf) ||
	    bsearch(&k, l->ch->keys, l->ch->n, sizeof(*l->ch->keys), key_ptr_cmp))
		return;
	if (vec_grow(&l->v, &l->cap, l->n, sizeof(*l->v))) {
		l->err = -ENOMEM;
		return;
	}
	l->v[l->n++] = k;
}

static int revisited_keys(const struct reconciler *r, const struct cache_changes *ch, struct key_list *l)
{
	l->ch = ch;
	l->cap = ch->n + 4;
	l->v = calloc(l->cap, sizeof(*l->v));
	if (!l->v)
		return -ENOMEM;
	memcpy(l->v, ch->keys, ch->n * sizeof(*l->v));
	l->n = ch->n;
	twalk_r(r->conflicted, add_conflicted, l);
	return l->err;
}

int reconcile(struct reconciler *r, struct cache *c, const struct cache_changes *ch)
{
	struct build b = { .r = r, .c = c };
	struct key_list keys = {};
	struct stale st = {};

	r->upserts = r->deletes = r->failures = r->skipped = 0;
	if (!ch->all && (b.err = revisited_keys(r, ch, &keys)))
		goto out;
	pthread_mutex_lock(&c->lock);
	if (ch->all) {
		cache_walk(c, CACHE_SERVICES, build_node, &b);
	} else {
		for (size_t i = 0; i < keys.n; i++) {
			const struct svc_obj *s = cache_service(c, keys.v[i]);

			if (s)
				build_service(&b, s);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (b.err)
		goto out;

	/* Removals first: what goes frees map space for what comes. After a
	 * list every frontend is checked; otherwise only the revisited
	 * Services' own. */
	if (ch->all) {
		twalk_r(r->current, find_stale, &(struct stale_walk){ b.want, &st });
	} else {
		for (size_t i = 0; i < keys.n; i++) {
			struct keyed_list *o = keyed_list_find(&r->by_owner, keys.v[i]);

			for (size_t j = 0; o && j < o->n; j++)
				if (is_stale(b.want, o->items[j]))
					stale_add(&st, o->items[j]);
		}
	}
	if ((b.err = st.err))
		goto out;
	/* One hold of the writers' lock for the whole sync, not one per
	 * service: each upsert then skips the flock and the config read. */
	if ((b.err = rota_dp_lock(r->dp)))
		goto out;
	remove_stale(r, &st);
	twalk_r(b.want, apply_desired, &b);
	rota_dp_unlock(r->dp);
	if (!b.err) {
		tdestroy(r->conflicted, free);
		r->conflicted = b.conflicted;
		b.conflicted = NULL;
	}
out:
	if (b.err) {
		pr_warn("sync: %s", strerror(-b.err));
		r->failures++;
	}
	tdestroy(b.conflicted, free);
	tdestroy(b.want, entry_free);
	free(st.v);
	free(keys.v);
	return (int)r->failures;
}
