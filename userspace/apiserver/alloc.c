/* alloc.c: ClusterIP and NodePort allocation for Services, claimed as store
 * keys in the same transaction as the Service write (see alloc.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "log.h"
#include "status.h"
#include "util.h"

int alloc_parse_cidr(const char *cidr, uint32_t *net, unsigned *bits)
{
	char ip[64];
	const char *slash = strchr(cidr, '/');
	struct in_addr a;
	char *end;
	long b;

	if (!slash || (size_t)(slash - cidr) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, cidr, slash - cidr);
	ip[slash - cidr] = 0;
	b = strtol(slash + 1, &end, 10);
	if (*end || b < 8 || b > 30 || inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	*bits = b;
	*net = ntohl(a.s_addr) & (~0u << (32 - b));
	return 0;
}

int alloc_ip_key(const struct apiserver *as, uint32_t ip, char *out, size_t len)
{
	return snprintf(out, len, "%s/ranges/serviceips/%u.%u.%u.%u", as->prefix,
			ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255) >= (int)len ? -ENAMETOOLONG : 0;
}

static void port_key(const struct apiserver *as, int port, char *out, size_t len)
{
	snprintf(out, len, "%s/ranges/servicenodeports/%d", as->prefix, port);
}

static bool claimed(const struct claims *c, const char *key)
{
	for (int i = 0; i < c->nput; i++)
		if (!strcmp(c->put[i].key, key))
			return true;
	return false;
}

static bool key_free(struct apiserver *as, const struct claims *c, const char *key)
{
	struct kv kv = { 0 };
	int err;

	if (claimed(c, key))
		return false;
	err = as->store->ops->get(as->store, key, &kv);
	kv_free(&kv);
	return err == -ENOENT;
}

/* Random probing first (cheap while the range is sparse), then one scan of
 * the claimed keys to find any hole or prove the range full. */
static int pick(struct apiserver *as, const struct claims *c, bool ip, uint32_t *out)
{
	uint32_t size = ip ? (1u << (32 - as->svc_bits)) : (uint32_t)(as->np_hi - as->np_lo + 1);
	uint32_t lo = ip ? 2 : 0, hi = ip ? size - 2 : size - 1;	/* offsets */
	struct kv_list l = { 0 };
	char key[160], prefix[200];
	unsigned char *used;
	int err;

	if (hi < lo)
		return -ENOSPC;
	for (int tries = 0; tries < 32; tries++) {
		uint32_t r, off;

		random_bytes(&r, sizeof(r));
		off = lo + r % (hi - lo + 1);
		if (ip)
			alloc_ip_key(as, as->svc_net + off, key, sizeof(key));
		else
			port_key(as, as->np_lo + off, key, sizeof(key));
		/* While the range is sparse a read per pick is a store round
		 * trip spent to learn what the write learns anyway. */
		if ((tries == 0 && c->optimistic && !claimed(c, key)) || key_free(as, c, key)) {
			*out = ip ? as->svc_net + off : as->np_lo + off;
			return 0;
		}
	}
	snprintf(prefix, sizeof(prefix), "%s/ranges/%s/", as->prefix,
		 ip ? "serviceips" : "servicenodeports");
	err = as->store->ops->range(as->store, prefix, NULL, 0, 0, &l);
	if (err)
		return err;
	used = calloc(size, 1);
	if (!used) {
		kv_list_free(&l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l.n; i++) {
		const char *v = l.items[i].key + strlen(prefix);
		uint32_t x;

		if (ip) {
			struct in_addr a;

			if (inet_pton(AF_INET, v, &a) != 1)
				continue;
			x = ntohl(a.s_addr) - as->svc_net;
		} else {
			x = (uint32_t)(atoi(v) - as->np_lo);
		}
		if (x < size)
			used[x] = 1;
	}
	kv_list_free(&l);
	err = -ENOSPC;
	for (uint32_t off = lo; off <= hi; off++) {
		if (used[off])
			continue;
		if (ip)
			alloc_ip_key(as, as->svc_net + off, key, sizeof(key));
		else
			port_key(as, as->np_lo + off, key, sizeof(key));
		if (claimed(c, key))
			continue;
		*out = ip ? as->svc_net + off : as->np_lo + off;
		err = 0;
		break;
	}
	free(used);
	return err;
}

static void add_claim(struct claims *c, const char *key, bool dynamic, const char *field,
		      const char *value)
{
	struct claim *cl;

	if (c->nput >= ALLOC_MAX)
		return;
	cl = &c->put[c->nput++];
	snprintf(cl->key, sizeof(cl->key), "%s", key);
	cl->dynamic = dynamic;
	snprintf(cl->field, sizeof(cl->field), "%s", field);
	snprintf(cl->value, sizeof(cl->value), "%s", value);
}

static void add_release(struct claims *c, const char *key)
{
	for (int i = 0; i < c->ndel; i++)
		if (!strcmp(c->del[i], key))
			return;
	if (c->ndel < ALLOC_MAX)
		snprintf(c->del[c->ndel++], sizeof(c->del[0]), "%s", key);
}

static bool has_cluster_ip(const cJSON *svc, uint32_t *ip)
{
	const cJSON *spec = json_obj(svc, "spec");
	const char *cip = json_str(spec, "clusterIP"), *type = json_str(spec, "type");
	struct in_addr a;

	if (!cip || (type && !strcmp(type, "ExternalName")) || inet_pton(AF_INET, cip, &a) != 1)
		return false;
	*ip = ntohl(a.s_addr);
	return true;
}

static bool wants_node_ports(const cJSON *svc)
{
	const cJSON *spec = json_obj(svc, "spec");
	const char *type = json_str(spec, "type");
	const cJSON *alloc = cJSON_GetObjectItem(spec, "allocateLoadBalancerNodePorts");

	if (!type)
		return false;
	if (!strcmp(type, "NodePort"))
		return true;
	return !strcmp(type, "LoadBalancer") && !cJSON_IsFalse(alloc);
}

void service_releases(const struct apiserver *as, const cJSON *svc, struct claims *c)
{
	const cJSON *p;
	char key[160];
	uint32_t ip;

	if (has_cluster_ip(svc, &ip)) {
		alloc_ip_key(as, ip, key, sizeof(key));
		add_release(c, key);
	}
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(json_obj(svc, "spec"), "ports")) {
		const cJSON *np = cJSON_GetObjectItem(p, "nodePort");

		if (cJSON_IsNumber(np) && np->valueint > 0) {
			port_key(as, np->valueint, key, sizeof(key));
			add_release(c, key);
		}
	}
	p = cJSON_GetObjectItem(json_obj(svc, "spec"), "healthCheckNodePort");
	if (cJSON_IsNumber(p) && p->valueint > 0) {
		port_key(as, p->valueint, key, sizeof(key));
		add_release(c, key);
	}
}

static int range_full(const char *what, const char *range, cJSON **st);

/* A free NodePort from the range, claimed for field; 422 when none is left. */
static int claim_free_port(struct apiserver *as, struct claims *c, const char *field, uint32_t *port,
			   cJSON **st)
{
	char key[256], val[16];
	int err = pick(as, c, false, port);

	if (err == -ENOSPC) {
		char range[32];

		snprintf(range, sizeof(range), "%d-%d", as->np_lo, as->np_hi);
		return range_full("nodePort", range, st);
	}
	if (err)
		return err;
	port_key(as, (int)*port, key, sizeof(key));
	snprintf(val, sizeof(val), "%u", *port);
	add_claim(c, key, true, field, val);
	return 0;
}

static bool wants_health_check_port(const cJSON *spec)
{
	const char *type = json_str(spec, "type"), *etp = json_str(spec, "externalTrafficPolicy");

	return type && !strcmp(type, "LoadBalancer") && etp && !strcmp(etp, "Local");
}

/* spec.healthCheckNodePort for LoadBalancer + externalTrafficPolicy Local. */
static int health_check_port(struct apiserver *as, cJSON *svc, const cJSON *old,
			     const struct claims *oldc, struct claims *c, cJSON **st)
{
	cJSON *spec = json_obj(svc, "spec"), *hc = cJSON_GetObjectItem(spec, "healthCheckNodePort");
	const cJSON *ohc = cJSON_GetObjectItem(json_obj(old, "spec"), "healthCheckNodePort");
	const char *name = json_str(json_obj(svc, "metadata"), "name");
	int want = cJSON_IsNumber(hc) ? hc->valueint : 0;
	char key[160], val[16];
	uint32_t port;
	int err;

	if (!wants_health_check_port(spec)) {
		if (want) {
			struct ferrs e = { 0 };

			ferr_invalid(&e, "spec.healthCheckNodePort", hc,
				     "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'");
			*st = status_invalid("", "Service", name, &e);
			ferrs_free(&e);
			return -EINVAL;
		}
		cJSON_DeleteItemFromObject(spec, "healthCheckNodePort");
		return 0;
	}
	if (!want && cJSON_IsNumber(ohc) && ohc->valueint > 0)
		want = ohc->valueint;
	if (want) {
		if (want < as->np_lo || want > as->np_hi) {
			struct ferrs e = { 0 };

			ferr_invalid(&e, "spec.healthCheckNodePort", hc,
				     "provided port is not in the valid range. The range of valid ports is %d-%d",
				     as->np_lo, as->np_hi);
			*st = status_invalid("", "Service", name, &e);
			ferrs_free(&e);
			return -EINVAL;
		}
		port_key(as, want, key, sizeof(key));
		snprintf(val, sizeof(val), "%d", want);
		bool had = false;

		for (int j = 0; j < oldc->ndel; j++)
			if (!strcmp(oldc->del[j], key))
				had = true;
		if (!had && !claimed(c, key))
			add_claim(c, key, false, "spec.healthCheckNodePort", val);
	} else {
		err = claim_free_port(as, c, "spec.healthCheckNodePort", &port, st);
		if (err)
			return err;
		want = port;
	}
	json_set(spec, "healthCheckNodePort", cJSON_CreateNumber(want));
	return 0;
}

static void set_cluster_ip(cJSON *spec, const char *ip)
{
	cJSON *ips = cJSON_CreateArray();

	/* ip may point into spec itself: build the list before replacing */
	cJSON_AddItemToArray(ips, cJSON_CreateString(ip));
	json_set(spec, "clusterIPs", ips);
	json_set_str(spec, "clusterIP", cJSON_GetArrayItem(ips, 0)->valuestring);
}

static int range_full(const char *what, const char *range, cJSON **st)
{
	*st = status_new(500, "InternalError",
			 "Internal error occurred: failed to allocate a %s: range is full (%s)",
			 what, range);
	return -ENOSPC;
}

int service_allocate(struct apiserver *as, cJSON *svc, const cJSON *old,
		     struct claims *c, cJSON **st)
{
	cJSON *spec = json_ensure_obj(svc, "spec"), *p;
	const cJSON *ospec = json_obj(old, "spec");
	const char *type = json_str(spec, "type"), *cip;
	char cipbuf[64];
	const char *name = json_str(json_obj(svc, "metadata"), "name");
	bool external = type && !strcmp(type, "ExternalName");
	struct claims oldc = { 0 };
	char key[160], val[48], field[64];
	uint32_t ip, oip;
	bool old_ip = old && has_cluster_ip(old, &oip);
	int i = 0, err;

	/* a copy: spec.clusterIP is replaced below */
	cip = json_str(spec, "clusterIP");
	if (cip) {
		snprintf(cipbuf, sizeof(cipbuf), "%s", cip);
		cip = cipbuf;
	}
	if (old)
		service_releases(as, old, &oldc);
	/* ClusterIP: immutable once set, except by turning into ExternalName. */
	if (external) {
		cJSON_DeleteItemFromObject(spec, "clusterIPs");
		if (cip && !*cip)
			cJSON_DeleteItemFromObject(spec, "clusterIP");
	} else if (cip && !strcmp(cip, "None")) {
		cJSON *ips = cJSON_CreateArray();

		cJSON_AddItemToArray(ips, cJSON_CreateString("None"));
		json_set(spec, "clusterIPs", ips);
		if (old_ip) {
			*st = status_new(422, "Invalid", "Service \"%s\" is invalid: spec.clusterIPs[0]: Invalid value: \"None\": may not change once set", name);
			return -EINVAL;
		}
	} else if ((!cip || !*cip) && old_ip) {
		snprintf(val, sizeof(val), "%u.%u.%u.%u", oip >> 24, (oip >> 16) & 255, (oip >> 8) & 255, oip & 255);
		set_cluster_ip(spec, val);
	} else if (cip && *cip) {
		struct in_addr a;

		if (inet_pton(AF_INET, cip, &a) != 1)
			return -EINVAL;	/* validation reported it */
		ip = ntohl(a.s_addr);
		if (old && json_str(ospec, "clusterIP") && strcmp(json_str(ospec, "clusterIP"), cip) &&
		    strcmp(json_str(ospec, "clusterIP"), "")) {
			struct ferrs e = { 0 };

			ferr_invalid(&e, "spec.clusterIPs[0]", cJSON_GetObjectItem(spec, "clusterIP"),
				     "may not change once set");
			*st = status_invalid("", "Service", name, &e);
			ferrs_free(&e);
			return -EINVAL;
		}
		set_cluster_ip(spec, cip);
		if (!old_ip || oip != ip) {
			alloc_ip_key(as, ip, key, sizeof(key));
			add_claim(c, key, false, "spec.clusterIPs", cip);
		}
	} else {
		err = pick(as, c, true, &ip);
		if (err == -ENOSPC)
			return range_full("serviceIP", as->svc_cidr, st);
		if (err)
			return err;
		snprintf(val, sizeof(val), "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
		set_cluster_ip(spec, val);
		alloc_ip_key(as, ip, key, sizeof(key));
		add_claim(c, key, true, "spec.clusterIPs", val);
	}

	/* NodePorts: keep what the old object had for the same port+protocol. */
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(spec, "ports")) {
		cJSON *np = cJSON_GetObjectItem(p, "nodePort");
		int want = cJSON_IsNumber(np) ? np->valueint : 0;

		snprintf(field, sizeof(field), "spec.ports[%d].nodePort", i++);
		if (!wants_node_ports(svc)) {
			cJSON_DeleteItemFromObject(p, "nodePort");
			continue;
		}
		if (!want && old) {
			const cJSON *op;

			cJSON_ArrayForEach(op, cJSON_GetObjectItem(ospec, "ports")) {
				const cJSON *onp = cJSON_GetObjectItem(op, "nodePort");

				if (cJSON_IsNumber(onp) && onp->valueint &&
				    cJSON_Compare(cJSON_GetObjectItem(op, "port"), cJSON_GetObjectItem(p, "port"), 1) &&
				    cJSON_Compare(cJSON_GetObjectItem(op, "protocol"), cJSON_GetObjectItem(p, "protocol"), 1))
					want = onp->valueint;
			}
		}
		if (want) {
			port_key(as, want, key, sizeof(key));
			if (!claimed(c, key)) {
				bool had = false;

				for (int j = 0; j < oldc.ndel; j++)
					if (!strcmp(oldc.del[j], key))
						had = true;
				snprintf(val, sizeof(val), "%d", want);
				if (!had)
					add_claim(c, key, false, field, val);
			}
		} else {
			uint32_t port;

			err = claim_free_port(as, c, field, &port, st);
			if (err)
				return err;
			want = port;
		}
		json_set(p, "nodePort", cJSON_CreateNumber(want));
	}

	err = health_check_port(as, svc, old, &oldc, c, st);
	if (err)
		return err;

	/* Release whatever the old object held that the new one does not. */
	if (old) {
		struct claims newc = { 0 };

		service_releases(as, svc, &newc);
		for (int j = 0; j < oldc.ndel; j++) {
			bool kept = false;

			for (int k = 0; k < newc.ndel; k++)
				if (!strcmp(oldc.del[j], newc.del[k]))
					kept = true;
			if (!kept)
				add_release(c, oldc.del[j]);
		}
	}
	return 0;
}
