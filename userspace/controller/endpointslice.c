/* EndpointSlice controller: for each Service with a selector, the slices
 * (managed-by rota-controller) that list the Pods it selects. Existing
 * slices are edited in place where possible so that only the slices whose
 * content changes are written, as kube-controller-manager's reconciler does. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "controller.h"

#define EPS_API "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices"

static bool selector_empty(const cJSON *svc)
{
	const cJSON *sel = jpath(svc, "spec", "selector");

	return !cJSON_IsObject(sel) || !sel->child;
}

static bool labels_match(const cJSON *sel, const cJSON *labels)
{
	const cJSON *s;

	cJSON_ArrayForEach(s, sel) {
		const char *v = jstr(labels, s->string);

		if (!cJSON_IsString(s) || !v || strcmp(v, s->valuestring))
			return false;
	}
	return true;
}

bool pod_selected(const cJSON *svc, const cJSON *pod)
{
	return !selector_empty(svc) && labels_match(jpath(svc, "spec", "selector"), jpath(pod, "metadata", "labels"));
}

static bool is_ipv4(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1;
}

/* The Pod's IPv4 address, or NULL. */
static const char *pod_ip4(const cJSON *pod)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(pod, "status"), *ips, *ip;
	const char *s = jstr(st, "podIP");

	if (is_ipv4(s))
		return s;
	ips = cJSON_GetObjectItemCaseSensitive(st, "podIPs");
	cJSON_ArrayForEach(ip, ips) {
		s = jstr(ip, "ip");
		if (is_ipv4(s))
			return s;
	}
	return NULL;
}

static bool pod_ready(const cJSON *pod)
{
	const cJSON *cond;

	cJSON_ArrayForEach(cond, jpath(pod, "status", "conditions")) {
		const char *t = jstr(cond, "type"), *s = jstr(cond, "status");

		if (t && !strcmp(t, "Ready"))
			return s && !strcmp(s, "True");
	}
	return false;
}

static bool pod_eligible(const cJSON *pod)
{
	const char *phase = jstr(cJSON_GetObjectItemCaseSensitive(pod, "status"), "phase");

	if (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")))
		return false;
	return pod_ip4(pod) != NULL;
}

/* Everything about a Pod that an endpoint depends on, to skip Pod updates
 * that change nothing here (status heartbeats, annotations). */
static char *pod_digest(const cJSON *pod)
{
	cJSON *d = cJSON_CreateObject();
	char *s;

	cJSON_AddItemToObject(d, "l", cJSON_Duplicate(jpath(pod, "metadata", "labels"), true));
	cJSON_AddStringToObject(d, "u", jmeta(pod, "uid") ?: "");
	cJSON_AddBoolToObject(d, "t", jmeta(pod, "deletionTimestamp") != NULL);
	cJSON_AddStringToObject(d, "i", pod_eligible(pod) ? pod_ip4(pod) : "");
	cJSON_AddBoolToObject(d, "r", pod_ready(pod));
	cJSON_AddStringToObject(d, "n", jstr(jpath(pod, "spec", NULL), "nodeName") ?: "");
	cJSON_AddStringToObject(d, "h", jstr(jpath(pod, "spec", NULL), "hostname") ?: "");
	cJSON_AddStringToObject(d, "s", jstr(jpath(pod, "spec", NULL), "subdomain") ?: "");
	cJSON_AddItemToObject(d, "c", cJSON_Duplicate(jpath(pod, "spec", "containers"), true));
	s = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	return s;
}

static void mark(struct ctl *c, const char *ns, const char *name, double t)
{
	char key[520];
	struct hent *e;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	e = hmap_put(&c->dirty, key);
	if (e && t > 0 && !e->t)
		e->t = t;
}

void eps_on_pod(struct ctl *c, const cJSON *old, const cJSON *new, double t)
{
	const cJSON *any = new ? new : old;
	const char *ns = jmeta(any, "namespace") ?: "";
	struct hmap *svcs = store_ns(&c->st[K_SVC], ns);
	struct hent *e;
	size_t i;

	if (!svcs)
		return;
	if (old && new) {
		char *a = pod_digest(old), *b = pod_digest(new);
		bool same = a && b && !strcmp(a, b);

		free(a);
		free(b);
		if (same)
			return;
	}
	hmap_for_each(svcs, e, i)
		if ((old && pod_selected(e->val, old)) || (new && pod_selected(e->val, new)))
			mark(c, ns, e->key, t);
}

/* A Service port resolved for one Pod: {name, protocol, port, appProtocol}.
 * NULL when a named targetPort is not among the Pod's container ports. */
static cJSON *resolve_port(const cJSON *sp, const cJSON *pod)
{
	const cJSON *tp = cJSON_GetObjectItemCaseSensitive(sp, "targetPort"), *ct, *cp;
	const cJSON *port = cJSON_GetObjectItemCaseSensitive(sp, "port");
	const char *proto = jstr(sp, "protocol") ?: "TCP", *app = jstr(sp, "appProtocol");
	int num = -1;
	cJSON *p;

	if (cJSON_IsNumber(tp))
		num = tp->valueint;
	else if (cJSON_IsString(tp) && *tp->valuestring) {
		char *end;
		long v = strtol(tp->valuestring, &end, 10);

		if (!*end) {
			num = v;
		} else {
			cJSON_ArrayForEach(ct, jpath(pod, "spec", "containers")) {
				cJSON_ArrayForEach(cp, cJSON_GetObjectItemCaseSensitive(ct, "ports")) {
					const char *n = jstr(cp, "name"), *pr = jstr(cp, "protocol") ?: "TCP";
					const cJSON *cpn = cJSON_GetObjectItemCaseSensitive(cp, "containerPort");

					if (n && !strcmp(n, tp->valuestring) && !strcmp(pr, proto) && cJSON_IsNumber(cpn)) {
						num = cpn->valueint;
						goto found;
					}
				}
			}
			return NULL;
		}
	} else if (cJSON_IsNumber(port)) {
		num = port->valueint;
	}
found:
	if (num < 1 || num > 65535)
		return NULL;
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "name", jstr(sp, "name") ?: "");
	cJSON_AddStringToObject(p, "protocol", proto);
	cJSON_AddNumberToObject(p, "port", num);
	if (app)
		cJSON_AddStringToObject(p, "appProtocol", app);
	return p;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A canonical string of a port list, whatever the order. */
static char *ports_sig(const cJSON *ports)
{
	int n = cJSON_GetArraySize(ports), i = 0;
	char **v = calloc(n + 1, sizeof(*v)), *out;
	size_t len = 1;
	const cJSON *p;

	cJSON_ArrayForEach(p, ports) {
		const cJSON *num = cJSON_GetObjectItemCaseSensitive(p, "port");

		if (asprintf(&v[i], "%s|%s|%d|%s", jstr(p, "name") ?: "", jstr(p, "protocol") ?: "TCP",
			     cJSON_IsNumber(num) ? num->valueint : 0, jstr(p, "appProtocol") ?: "") < 0)
			v[i] = strdup("");
		len += strlen(v[i]) + 1;
		i++;
	}
	qsort(v, n, sizeof(*v), cmp_str);
	out = calloc(1, len);
	for (i = 0; i < n; i++) {
		strcat(out, v[i]);
		strcat(out, ";");
		free(v[i]);
	}
	free(v);
	return out;
}

static cJSON *endpoint_for(const cJSON *svc, const cJSON *pod, struct store *nodes)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	bool pub = cJSON_IsTrue(jpath(svc, "spec", "publishNotReadyAddresses"));
	bool terminating = jmeta(pod, "deletionTimestamp") != NULL;
	bool serving = pub || pod_ready(pod);
	bool ready = pub || (serving && !terminating);
	const char *node = jstr(spec, "nodeName"), *host = jstr(spec, "hostname"), *sub = jstr(spec, "subdomain");
	const char *zone = NULL;
	cJSON *ep = cJSON_CreateObject(), *addrs, *cond, *ref;

	addrs = cJSON_AddArrayToObject(ep, "addresses");
	cJSON_AddItemToArray(addrs, cJSON_CreateString(pod_ip4(pod)));
	cond = cJSON_AddObjectToObject(ep, "conditions");
	cJSON_AddBoolToObject(cond, "ready", ready);
	cJSON_AddBoolToObject(cond, "serving", serving);
	cJSON_AddBoolToObject(cond, "terminating", terminating);
	if (host && *host && sub && !strcmp(sub, jmeta(svc, "name")))
		cJSON_AddStringToObject(ep, "hostname", host);
	ref = cJSON_AddObjectToObject(ep, "targetRef");
	cJSON_AddStringToObject(ref, "kind", "Pod");
	cJSON_AddStringToObject(ref, "namespace", jmeta(pod, "namespace") ?: "");
	cJSON_AddStringToObject(ref, "name", jmeta(pod, "name"));
	cJSON_AddStringToObject(ref, "uid", jmeta(pod, "uid") ?: "");
	if (node && *node) {
		cJSON_AddStringToObject(ep, "nodeName", node);
		zone = jstr(jpath(store_get(nodes, "", node), "metadata", "labels"), "topology.kubernetes.io/zone");
		if (zone)
			cJSON_AddStringToObject(ep, "zone", zone);
	}
	return ep;
}

/* The fields of an endpoint this controller owns, in a canonical form, so
 * that fields a server adds do not make every slice look changed. */
static cJSON *ep_norm(const cJSON *ep)
{
	static const char *const top[] = { "hostname", "nodeName", "zone" };
	static const char *const conds[] = { "ready", "serving", "terminating" };
	static const char *const refs[] = { "kind", "namespace", "name", "uid" };
	cJSON *n = cJSON_CreateObject(), *c, *r;
	size_t i;

	cJSON_AddItemToObject(n, "addresses", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ep, "addresses"), true));
	c = cJSON_AddObjectToObject(n, "conditions");
	for (i = 0; i < 3; i++) {
		const cJSON *v = jpath(ep, "conditions", conds[i]);

		cJSON_AddBoolToObject(c, conds[i], cJSON_IsTrue(v));
	}
	r = cJSON_AddObjectToObject(n, "targetRef");
	for (i = 0; i < 4; i++)
		cJSON_AddStringToObject(r, refs[i], jstr(jpath(ep, "targetRef", NULL), refs[i]) ?: "");
	for (i = 0; i < 3; i++)
		cJSON_AddStringToObject(n, top[i], jstr(ep, top[i]) ?: "");
	return n;
}

static bool ep_equal(const cJSON *a, const cJSON *b)
{
	cJSON *x = ep_norm(a), *y = ep_norm(b);
	bool eq = cJSON_Compare(x, y, true);

	cJSON_Delete(x);
	cJSON_Delete(y);
	return eq;
}

static const char *ep_addr(const cJSON *ep)
{
	const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ep, "addresses"), 0);

	return cJSON_IsString(a) ? a->valuestring : NULL;
}

/* Endpoints sharing one resolved port list. */
struct group {
	char *sig;
	cJSON *ports;
	cJSON **eps;		/* desired endpoints, sorted */
	bool *placed;
	int n, cap;
	struct hmap by_addr;	/* address -> index in eps (num) */
};

struct slice_plan {
	const cJSON *cur;	/* existing slice, NULL for a new one */
	struct group *g;
	cJSON *eps;		/* array being built */
	bool changed;
	bool keep;
	bool repurposed;		/* an existing slice reused for another port list */
};

static int cmp_ep(const void *a, const void *b)
{
	const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
	int r = strcmp(jstr(jpath(x, "targetRef", NULL), "name") ?: "", jstr(jpath(y, "targetRef", NULL), "name") ?: "");

	return r ? r : strcmp(ep_addr(x) ?: "", ep_addr(y) ?: "");
}

static cJSON *desired_labels(const cJSON *svc)
{
	cJSON *l = cJSON_CreateObject();
	const cJSON *s;
	const char *cip = jstr(jpath(svc, "spec", NULL), "clusterIP");

	cJSON_ArrayForEach(s, jpath(svc, "metadata", "labels"))
		if (cJSON_IsString(s) && strcmp(s->string, LABEL_SVC_NAME) && strcmp(s->string, LABEL_MANAGED_BY))
			cJSON_AddStringToObject(l, s->string, s->valuestring);
	cJSON_AddStringToObject(l, LABEL_SVC_NAME, jmeta(svc, "name"));
	cJSON_AddStringToObject(l, LABEL_MANAGED_BY, MANAGED_BY);
	if (cip && !strcmp(cip, "None"))
		cJSON_AddStringToObject(l, "service.kubernetes.io/headless", "");
	return l;
}

static bool flat_equal(const cJSON *a, const cJSON *b)
{
	const cJSON *x;

	if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
		return false;
	cJSON_ArrayForEach(x, a) {
		const char *v = jstr(b, x->string);

		if (!cJSON_IsString(x) || !v || strcmp(v, x->valuestring))
			return false;
	}
	return true;
}

static cJSON *owner_refs(const cJSON *svc)
{
	cJSON *a = cJSON_CreateArray(), *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Service");
	cJSON_AddStringToObject(o, "name", jmeta(svc, "name"));
	cJSON_AddStringToObject(o, "uid", jmeta(svc, "uid") ?: "");
	cJSON_AddBoolToObject(o, "controller", true);
	cJSON_AddBoolToObject(o, "blockOwnerDeletion", true);
	cJSON_AddItemToArray(a, o);
	return a;
}

static bool owner_ok(const cJSON *slice, const cJSON *svc)
{
	const cJSON *refs = jpath(slice, "metadata", "ownerReferences"), *r;
	const char *uid = jmeta(svc, "uid") ?: "";

	if (cJSON_GetArraySize(refs) != 1)
		return false;
	r = cJSON_GetArrayItem(refs, 0);
	return jstr(r, "uid") && !strcmp(jstr(r, "uid"), uid) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller"));
}

static void rfc3339(double t, char out[64])
{
	time_t s = (time_t)t;
	struct tm tm;
	char frac[16];
	int i;

	gmtime_r(&s, &tm);
	strftime(out, 64, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(frac, sizeof(frac), "%09ld", (long)((t - s) * 1e9));
	for (i = 8; i >= 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	if (*frac)
		snprintf(out + strlen(out), 64 - strlen(out), ".%s", frac);
	snprintf(out + strlen(out), 64 - strlen(out), "Z");
}

static void set_meta(cJSON *slice, const cJSON *svc, const char *trigger)
{
	cJSON *md = cJSON_GetObjectItemCaseSensitive(slice, "metadata"), *ann;

	if (!md)
		md = cJSON_AddObjectToObject(slice, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(md, "labels");
	cJSON_AddItemToObject(md, "labels", desired_labels(svc));
	cJSON_DeleteItemFromObjectCaseSensitive(md, "ownerReferences");
	cJSON_AddItemToObject(md, "ownerReferences", owner_refs(svc));
	cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
	if (trigger) {
		ann = cJSON_GetObjectItemCaseSensitive(md, "annotations");
		if (!cJSON_IsObject(ann)) {
			cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
			ann = cJSON_AddObjectToObject(md, "annotations");
		}
		cJSON_DeleteItemFromObjectCaseSensitive(ann, ANN_TRIGGER);
		cJSON_AddStringToObject(ann, ANN_TRIGGER, trigger);
	}
}

static void group_free(struct group *g)
{
	int i;

	for (i = 0; i < g->n; i++)
		cJSON_Delete(g->eps[i]);
	free(g->eps);
	free(g->placed);
	free(g->sig);
	cJSON_Delete(g->ports);
	hmap_clear(&g->by_addr, NULL);
}

static struct group *group_for(struct group **gs, int *ng, struct hmap *idx, cJSON *ports)
{
	char *sig = ports_sig(ports);
	struct hent *e = hmap_get(idx, sig);
	struct group *g, *v;

	if (e) {
		free(sig);
		cJSON_Delete(ports);
		return &(*gs)[e->num];
	}
	v = realloc(*gs, (*ng + 1) * sizeof(*v));
	if (!v) {
		free(sig);
		cJSON_Delete(ports);
		return NULL;
	}
	*gs = v;
	g = &v[*ng];
	memset(g, 0, sizeof(*g));
	g->sig = sig;
	g->ports = ports;
	e = hmap_put(idx, sig);
	if (e)
		e->num = *ng;
	(*ng)++;
	return g;
}

static void group_add(struct group *g, cJSON *ep)
{
	if (g->n == g->cap) {
		int cap = g->cap ? g->cap * 2 : 16;
		cJSON **v = realloc(g->eps, cap * sizeof(*v));

		if (!v) {
			cJSON_Delete(ep);
			return;
		}
		g->eps = v;
		g->cap = cap;
	}
	g->eps[g->n++] = ep;
}

static bool ours(const cJSON *slice, const char *svc)
{
	const cJSON *l = jpath(slice, "metadata", "labels");
	const char *s = jstr(l, LABEL_SVC_NAME), *m = jstr(l, LABEL_MANAGED_BY);

	return s && m && !strcmp(s, svc) && !strcmp(m, MANAGED_BY);
}

static bool meta_ok(const cJSON *slice, const cJSON *svc)
{
	cJSON *want = desired_labels(svc);
	bool ok = flat_equal(jpath(slice, "metadata", "labels"), want) && owner_ok(slice, svc);

	cJSON_Delete(want);
	return ok;
}

static cJSON *new_slice(const cJSON *svc, const struct group *g)
{
	cJSON *s = cJSON_CreateObject(), *md;
	char gen[300];

	cJSON_AddStringToObject(s, "apiVersion", "discovery.k8s.io/v1");
	cJSON_AddStringToObject(s, "kind", "EndpointSlice");
	md = cJSON_AddObjectToObject(s, "metadata");
	snprintf(gen, sizeof(gen), "%.62s-", jmeta(svc, "name"));
	cJSON_AddStringToObject(md, "generateName", gen);
	cJSON_AddStringToObject(md, "namespace", jmeta(svc, "namespace") ?: "");
	cJSON_AddStringToObject(s, "addressType", "IPv4");
	cJSON_AddItemToObject(s, "ports", cJSON_Duplicate(g->ports, true));
	return s;
}

void eps_sync(struct ctl *c, const char *ns, const char *name, double trigger)
{
	const cJSON *svc = store_get(&c->st[K_SVC], ns, name);
	struct hmap *slices = store_ns(&c->st[K_EPS], ns), *pods = store_ns(&c->st[K_POD], ns), gidx = {};
	struct group *gs = NULL;
	struct slice_plan *plan = NULL;
	int ng = 0, np = 0, nplan, i, j, total = 0;
	struct ops ops = {};
	struct hent *e;
	char key[520], tbuf[64];
	size_t k;

	snprintf(key, sizeof(key), "e:%s/%s", ns, name);
	rfc3339(trigger > 0 ? trigger : now_real(), tbuf);
	/* Existing slices of ours for this Service. */
	if (slices)
		hmap_for_each(slices, e, k)
			if (ours(e->val, name))
				np++;
	plan = calloc(np + 1, sizeof(*plan));
	if (!plan)
		return;
	np = 0;
	if (slices)
		hmap_for_each(slices, e, k)
			if (ours(e->val, name))
				plan[np++].cur = e->val;

	if (!svc || selector_empty(svc)) {
		/* Deleted, or no selector (any slices of ours are stale): delete ours. */
		for (i = 0; i < np; i++) {
			const char *sn = jmeta(plan[i].cur, "name");

			ops_add(&ops, "DELETE", NULL, NULL, -1, K_EPS, ns, sn, key, EPS_API "/%s", ns, sn);
		}
		free(plan);
		goto run;
	}

	/* Desired endpoints, grouped by resolved port list. */
	if (pods)
		hmap_for_each(pods, e, k) {
			const cJSON *pod = e->val, *sp;
			cJSON *ports;
			struct group *g;

			if (!pod_selected(svc, pod) || !pod_eligible(pod))
				continue;
			ports = cJSON_CreateArray();
			cJSON_ArrayForEach(sp, jpath(svc, "spec", "ports")) {
				cJSON *p = resolve_port(sp, pod);

				if (p)
					cJSON_AddItemToArray(ports, p);
			}
			g = group_for(&gs, &ng, &gidx, ports);
			if (g) {
				group_add(g, endpoint_for(svc, pod, &c->st[K_NODE]));
				total++;
			}
		}
	if (!total)	/* a placeholder slice without endpoints or ports, as kube keeps */
		group_for(&gs, &ng, &gidx, cJSON_CreateArray());
	for (i = 0; i < ng; i++) {
		struct group *g = &gs[i];

		qsort(g->eps, g->n, sizeof(*g->eps), cmp_ep);
		g->placed = calloc(g->n + 1, sizeof(bool));
		for (j = 0; j < g->n; j++) {
			struct hent *a = hmap_put(&g->by_addr, ep_addr(g->eps[j]) ?: "");

			if (a && !a->val) {
				a->val = g;
				a->num = j;
			} else {
				g->placed[j] = true;	/* two Pods with one IP: list it once */
			}
		}
	}

	/* Existing slices: keep the endpoints still wanted, in place. */
	for (i = 0; i < np; i++) {
		struct slice_plan *p = &plan[i];
		const char *at = jstr(p->cur, "addressType");
		char *sig = ports_sig(cJSON_GetObjectItemCaseSensitive(p->cur, "ports"));
		struct hent *ge = hmap_get(&gidx, sig);
		const cJSON *ep;

		free(sig);
		if (!ge || !at || strcmp(at, "IPv4"))
			continue;	/* not kept: deleted below */
		p->g = &gs[ge->num];
		p->eps = cJSON_CreateArray();
		p->keep = true;
		p->changed = !meta_ok(p->cur, svc);
		cJSON_ArrayForEach(ep, cJSON_GetObjectItemCaseSensitive(p->cur, "endpoints")) {
			const char *addr = ep_addr(ep);
			struct hent *a = addr ? hmap_get(&p->g->by_addr, addr) : NULL;

			if (!a || p->g->placed[a->num] || cJSON_GetArraySize(p->eps) >= MAX_ENDPOINTS_PER_SLICE) {
				p->changed = true;	/* gone, a duplicate, or over the limit */
				continue;
			}
			p->g->placed[a->num] = true;
			if (!ep_equal(ep, p->g->eps[a->num]))
				p->changed = true;
			cJSON_AddItemToArray(p->eps, cJSON_Duplicate(p->g->eps[a->num], true));
		}
	}

	/* New endpoints: into slices being written anyway, then into others with
	 * room, then into new slices. */
	nplan = np;
	for (i = 0; i < ng; i++) {
		struct group *g = &gs[i];
		int pass;

		for (j = 0; j < g->n; j++) {
			struct slice_plan *dst = NULL;

			if (g->placed[j])
				continue;
			for (pass = 0; pass < 3 && !dst; pass++) {
				int s;

				for (s = 0; s < nplan && !dst; s++) {
					struct slice_plan *p = &plan[s];

					if (!p->keep || p->g != g || cJSON_GetArraySize(p->eps) >= MAX_ENDPOINTS_PER_SLICE)
						continue;
					if ((pass == 0 && p->changed && p->cur) || (pass == 1 && p->cur) ||
					    (pass == 2 && !p->cur))
						dst = p;
				}
			}
			if (!dst) {
				struct slice_plan *v = realloc(plan, (nplan + 1) * sizeof(*v));

				if (!v)
					break;
				plan = v;
				dst = &plan[nplan++];
				memset(dst, 0, sizeof(*dst));
				dst->g = g;
				dst->eps = cJSON_CreateArray();
				dst->keep = true;
			}
			g->placed[j] = true;
			dst->changed = true;
			cJSON_AddItemToArray(dst->eps, cJSON_Duplicate(g->eps[j], true));
		}
	}

	/* Empty slices go, except one placeholder when there is nothing at all. */
	for (i = 0; i < nplan; i++) {
		struct slice_plan *p = &plan[i];

		if (p->keep && !cJSON_GetArraySize(p->eps)) {
			if (!total && p->g && !p->g->n && !gs[0].placed[0]) {
				gs[0].placed[0] = true;	/* the placeholder is taken (placed has room for 1) */
				continue;
			}
			p->keep = false;
		}
	}
	if (!total && !gs[0].placed[0]) {
		struct slice_plan *v = realloc(plan, (nplan + 1) * sizeof(*v));

		if (v) {
			plan = v;
			memset(&plan[nplan], 0, sizeof(*plan));
			plan[nplan].g = &gs[0];
			plan[nplan].eps = cJSON_CreateArray();
			plan[nplan].keep = plan[nplan].changed = true;
			nplan++;
		}
	}

	/* A slice to create and one to delete make one update instead (as
	 * kube's reconciler does): e.g. the placeholder becoming a real slice. */
	for (i = 0; i < nplan; i++) {
		struct slice_plan *p = &plan[i];
		const char *at;

		if (!p->cur || p->keep || !(at = jstr(p->cur, "addressType")) || strcmp(at, "IPv4"))
			continue;
		for (j = 0; j < nplan; j++) {
			struct slice_plan *q = &plan[j];

			if (q->cur || !q->keep)
				continue;
			p->g = q->g;
			p->eps = q->eps;
			q->eps = NULL;
			p->keep = p->changed = p->repurposed = true;
			q->keep = false;
			break;
		}
	}

	/* Writes: creates first, then updates, then deletes, so that an
	 * endpoint moving between slices is never missing from all of them. */
	for (i = 0; i < nplan; i++) {
		struct slice_plan *p = &plan[i];
		cJSON *s;

		if (p->cur || !p->keep)
			continue;
		s = new_slice(svc, p->g);
		set_meta(s, svc, tbuf);
		cJSON_AddItemToObject(s, "endpoints", p->eps);
		p->eps = NULL;
		ops_add(&ops, "POST", NULL, s, K_EPS, K_EPS, ns, "", key, EPS_API, ns);
		cJSON_Delete(s);
	}
	for (i = 0; i < nplan; i++) {
		struct slice_plan *p = &plan[i];
		const char *sn;
		cJSON *s;

		if (!p->cur || !p->keep || !p->changed)
			continue;
		sn = jmeta(p->cur, "name");
		s = cJSON_Duplicate(p->cur, true);
		set_meta(s, svc, tbuf);
		if (p->repurposed) {	/* reused for another port list */
			cJSON_DeleteItemFromObjectCaseSensitive(s, "ports");
			cJSON_AddItemToObject(s, "ports", cJSON_Duplicate(p->g->ports, true));
		}
		cJSON_DeleteItemFromObjectCaseSensitive(s, "endpoints");
		cJSON_AddItemToObject(s, "endpoints", p->eps);
		p->eps = NULL;
		ops_add(&ops, "PUT", NULL, s, K_EPS, K_EPS, ns, sn, key, EPS_API "/%s", ns, sn);
		cJSON_Delete(s);
	}
	for (i = 0; i < nplan; i++) {
		struct slice_plan *p = &plan[i];
		const char *sn;

		if (!p->cur || p->keep)
			continue;
		sn = jmeta(p->cur, "name");
		ops_add(&ops, "DELETE", NULL, NULL, -1, K_EPS, ns, sn, key, EPS_API "/%s", ns, sn);
	}
	for (i = 0; i < nplan; i++)
		cJSON_Delete(plan[i].eps);
	free(plan);
	for (i = 0; i < ng; i++)
		group_free(&gs[i]);
	free(gs);
	hmap_clear(&gidx, NULL);
run:
	if (ops.n)
		pr_debug("service %s/%s: %zu slice writes", ns, name, ops.n);
	if (!ops_run(c, &ops))
		retry_done(c, key);
}
