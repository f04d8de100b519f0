/* Node IPAM (spec.podCIDR/podCIDRs from --cluster-cidr) and LoadBalancer
 * IPAM (status.loadBalancer.ingress from --lb-pool). Both are recomputed
 * from the caches on every pass: what is in use is what the objects say,
 * so deletes and type changes release addresses and a restart converges. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "controller.h"

static uint32_t mask_of(int prefix)
{
	return prefix ? ~0u << (32 - prefix) : 0;
}

int cidr4_parse(const char *s, struct cidr4 *out)
{
	char buf[64], *slash, *end;
	struct in_addr a;
	long p;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	p = strtol(slash + 1, &end, 10);
	if (*end || slash[1] == '\0' || p < 0 || p > 32 || inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	out->prefix = p;
	out->base = ntohl(a.s_addr) & mask_of(p);
	return 0;
}

static void ip_str(uint32_t ip, char out[INET_ADDRSTRLEN])
{
	struct in_addr a = { htonl(ip) };

	inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

static int ip_parse(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*ip = ntohl(a.s_addr);
	return 0;
}

/* ---- Node IPAM ---- */

/* Index of a node's CIDR string in the cluster CIDR, or -1. */
static long node_cidr_index(const struct ctl *c, const char *s)
{
	struct cidr4 n;

	if (!s || cidr4_parse(s, &n) || n.prefix != c->node_mask ||
	    (n.base & mask_of(c->cluster_cidr.prefix)) != c->cluster_cidr.base)
		return -1;
	return (n.base - c->cluster_cidr.base) >> (32 - c->node_mask);
}

static bool node_has_cidr(const cJSON *node)
{
	const char *s = jstr(jpath(node, "spec", NULL), "podCIDR");

	return (s && *s) || cJSON_GetArraySize(jpath(node, "spec", "podCIDRs")) > 0;
}

void node_ipam_pass(struct ctl *c)
{
	uint32_t count = 1u << (c->node_mask - c->cluster_cidr.prefix), i;
	uint8_t *used = calloc(count / 8 + 1, 1);
	struct hmap *nodes = store_ns(&c->st[K_NODE], "");
	struct ops ops = {};
	struct hent *e;
	size_t k;

	if (!used || !nodes) {
		free(used);
		return;
	}
	hmap_for_each(nodes, e, k) {
		const cJSON *spec = jpath(e->val, "spec", NULL), *it;
		long idx = node_cidr_index(c, jstr(spec, "podCIDR"));

		if (idx >= 0)
			used[idx / 8] |= 1 << (idx % 8);
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(spec, "podCIDRs")) {
			idx = cJSON_IsString(it) ? node_cidr_index(c, it->valuestring) : -1;
			if (idx >= 0)
				used[idx / 8] |= 1 << (idx % 8);
		}
	}
	hmap_for_each(nodes, e, k) {
		char cidr[INET_ADDRSTRLEN + 4], ip[INET_ADDRSTRLEN], wkey[300];
		cJSON *patch, *spec, *arr, *md;
		const char *rv;

		if (node_has_cidr(e->val) || jmeta(e->val, "deletionTimestamp"))
			continue;
		for (i = 0; i < count; i++) {
			uint32_t idx = (c->node_cursor + i) % count;

			if (!(used[idx / 8] & (1 << (idx % 8))))
				break;
		}
		snprintf(wkey, sizeof(wkey), "n:%s", e->key);
		if (i == count) {
			warn_once(c, wkey, "node %s: no free Pod CIDR: cluster CIDR is full", e->key);
			continue;
		}
		warn_clear(c, wkey);
		i = (c->node_cursor + i) % count;
		used[i / 8] |= 1 << (i % 8);
		c->node_cursor = (i + 1) % count;
		ip_str(c->cluster_cidr.base + (i << (32 - c->node_mask)), ip);
		snprintf(cidr, sizeof(cidr), "%s/%d", ip, c->node_mask);
		/* resourceVersion makes this a conditional write: a node that got a
		 * CIDR meanwhile gives 409 and is looked at again. */
		patch = cJSON_CreateObject();
		md = cJSON_AddObjectToObject(patch, "metadata");
		if ((rv = jmeta(e->val, "resourceVersion")))
			cJSON_AddStringToObject(md, "resourceVersion", rv);
		spec = cJSON_AddObjectToObject(patch, "spec");
		cJSON_AddStringToObject(spec, "podCIDR", cidr);
		arr = cJSON_AddArrayToObject(spec, "podCIDRs");
		cJSON_AddItemToArray(arr, cJSON_CreateString(cidr));
		ops_add(&ops, "PATCH", "application/merge-patch+json", patch, K_NODE, K_NODE, "", e->key, "n",
			"/api/v1/nodes/%s", e->key);
		pr_info("node %s: Pod CIDR %s", e->key, cidr);
		cJSON_Delete(patch);
	}
	free(used);
	/* A full cluster CIDR is not retried: a node delete frees a CIDR and
	 * starts a pass. */
	if (!ops_run(c, &ops))
		retry_done(c, "n");
}

/* ---- LoadBalancer IPAM ---- */

/* Whether ip is an address to hand out: in a pool, not the network or
 * broadcast address of pools of /30 or wider. */
static bool in_pools(const struct ctl *c, uint32_t ip)
{
	int i;

	for (i = 0; i < c->npools; i++) {
		const struct cidr4 *p = &c->pools[i];

		if ((ip & mask_of(p->prefix)) != p->base)
			continue;
		if (p->prefix <= 30 && (ip == p->base || ip == (p->base | ~mask_of(p->prefix))))
			continue;
		return true;
	}
	return false;
}

static bool is_lb(const cJSON *svc)
{
	const cJSON *spec = jpath(svc, "spec", NULL);
	const char *type = jstr(spec, "type"), *cls = jstr(spec, "loadBalancerClass");

	return type && !strcmp(type, "LoadBalancer") && !cls;
}

struct svc_ref {
	const cJSON *svc;
	char key[520];
};

static int cmp_svc(const void *a, const void *b)
{
	const struct svc_ref *x = a, *y = b;
	const char *tx = jmeta(x->svc, "creationTimestamp") ?: "", *ty = jmeta(y->svc, "creationTimestamp") ?: "";
	int r = strcmp(tx, ty);

	return r ? r : strcmp(x->key, y->key);
}

/* The first ingress IP of svc inside the pools (0: none). */
static uint32_t pool_ingress(const struct ctl *c, const cJSON *svc)
{
	const cJSON *in;

	cJSON_ArrayForEach(in, jpath(jpath(svc, "status", "loadBalancer"), "ingress", NULL)) {
		uint32_t ip;

		if (!ip_parse(jstr(in, "ip"), &ip) && in_pools(c, ip))
			return ip;
	}
	return 0;
}

static void lb_patch(struct ctl *c, struct ops *ops, const struct svc_ref *r, uint32_t ip)
{
	const char *ns = jmeta(r->svc, "namespace") ?: "", *name = jmeta(r->svc, "name");
	cJSON *patch = cJSON_CreateObject(), *st, *lb, *arr, *in;
	char s[INET_ADDRSTRLEN];

	st = cJSON_AddObjectToObject(patch, "status");
	lb = cJSON_AddObjectToObject(st, "loadBalancer");
	if (ip) {
		ip_str(ip, s);
		arr = cJSON_AddArrayToObject(lb, "ingress");
		in = cJSON_CreateObject();
		cJSON_AddStringToObject(in, "ip", s);
		cJSON_AddStringToObject(in, "ipMode", "VIP");
		cJSON_AddItemToArray(arr, in);
		pr_info("service %s: LoadBalancer IP %s", r->key, s);
	} else {
		cJSON_AddNullToObject(lb, "ingress");
		pr_info("service %s: LoadBalancer IP released", r->key);
	}
	ops_add(ops, "PATCH", "application/merge-patch+json", patch, K_SVC, K_SVC, ns, name, "l",
		"/api/v1/namespaces/%s/services/%s/status", ns, name);
	cJSON_Delete(patch);
}

void lb_ipam_pass(struct ctl *c)
{
	struct hmap used = {};	/* "a.b.c.d" -> owner index + 1 (num) */
	struct svc_ref *v = NULL;
	struct ops ops = {};
	size_t n = 0, cap = 0, i, j;
	struct hent *ne, *e;
	uint32_t *keep;
	int p;

	hmap_for_each(&c->st[K_SVC].ns, ne, i) hmap_for_each((struct hmap *)ne->val, e, j) {
		if (n == cap) {
			struct svc_ref *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

			if (!nv)
				goto out;
			v = nv;
		}
		v[n].svc = e->val;
		snprintf(v[n].key, sizeof(v[n].key), "%s/%s", ne->key, e->key);
		n++;
	}
	qsort(v, n, sizeof(*v), cmp_svc);
	keep = calloc(n + 1, sizeof(*keep));
	if (!keep)
		goto out;
	/* What is in use, oldest Service first: a duplicate loses its IP. */
	for (i = 0; i < n; i++) {
		uint32_t ip = is_lb(v[i].svc) ? pool_ingress(c, v[i].svc) : 0;
		char s[INET_ADDRSTRLEN];
		struct hent *u;

		if (!ip)
			continue;
		ip_str(ip, s);
		if (hmap_get(&used, s)) {
			pr_warn("service %s: LoadBalancer IP %s is also an older Service's: reassigning", v[i].key, s);
			continue;
		}
		if ((u = hmap_put(&used, s)))
			u->num = i + 1;
		keep[i] = ip;
	}
	for (i = 0; i < n; i++) {
		const cJSON *svc = v[i].svc;
		const char *req = jstr(jpath(svc, "spec", NULL), "loadBalancerIP");
		uint32_t want = 0, rip, ip;
		char s[INET_ADDRSTRLEN], wkey[530];

		if (!is_lb(svc)) {
			const char *type = jstr(jpath(svc, "spec", NULL), "type");

			/* Type changed away from LoadBalancer: release our IP. A
			 * Service with another loadBalancerClass is not ours. */
			if ((!type || strcmp(type, "LoadBalancer")) && pool_ingress(c, svc))
				lb_patch(c, &ops, &v[i], 0);
			continue;
		}
		snprintf(wkey, sizeof(wkey), "l:%s", v[i].key);
		if (req && *req) {
			struct hent *u;

			if (ip_parse(req, &rip) || !in_pools(c, rip)) {
				warn_once(c, wkey, "service %s: requested LoadBalancer IP %s is not in any --lb-pool",
					  v[i].key, req);
			} else if ((u = hmap_get(&used, req)) && u->num != (long)i + 1) {
				warn_once(c, wkey, "service %s: requested LoadBalancer IP %s is in use", v[i].key, req);
			} else {
				want = rip;
				if (!u && (u = hmap_put(&used, req)))
					u->num = i + 1;
			}
		} else if (keep[i]) {
			want = keep[i];
		} else {
			for (p = 0; p < c->npools && !want; p++) {
				uint64_t size = 1ull << (32 - c->pools[p].prefix), off;

				for (off = 0; off < size; off++) {
					ip = c->pools[p].base + off;
					ip_str(ip, s);
					if (in_pools(c, ip) && !hmap_get(&used, s)) {
						struct hent *u = hmap_put(&used, s);

						if (u)
							u->num = i + 1;
						want = ip;
						break;
					}
				}
			}
			if (!want)
				warn_once(c, wkey, "service %s: no free LoadBalancer IP: every --lb-pool is exhausted",
					  v[i].key);
		}
		if (want)
			warn_clear(c, wkey);
		/* Write only when status differs from exactly [want]. */
		{
			const cJSON *ing = jpath(jpath(svc, "status", "loadBalancer"), "ingress", NULL);
			uint32_t cur;
			bool same;

			if (want)
				same = cJSON_GetArraySize(ing) == 1 && !ip_parse(jstr(cJSON_GetArrayItem(ing, 0), "ip"), &cur) &&
				       cur == want;
			else
				same = !pool_ingress(c, svc);
			if (!same)
				lb_patch(c, &ops, &v[i], want);
		}
	}
	free(keep);
out:
	free(v);
	hmap_clear(&used, NULL);
	if (!ops_run(c, &ops))
		retry_done(c, "l");
}
