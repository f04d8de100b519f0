/* Service and EndpointSlice parsing with kube-proxy's rules: which services
 * are proxied, which endpoints count as ready/serving/terminating and local,
 * which of them back a Service port, and one log line per malformed field
 * instead of a failed sync. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include "model.h"
#include "addr.h"
#include "log.h"

#define LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"
#define LABEL_HEADLESS   "service.kubernetes.io/headless"
#define LABEL_SVC_NAME   "kubernetes.io/service-name"
#define ANN_TRIGGER_TIME "endpoints.kubernetes.io/last-change-trigger-time"
#define DEFAULT_AFFINITY_TIMEOUT 10800

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *get_str(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int obj_key(const cJSON *obj, char key[OBJ_KEY_LEN])
{
	const cJSON *md = get(obj, "metadata");
	const char *ns = get_str(md, "namespace"), *name = get_str(md, "name");

	if (!name || !*name)
		return -EINVAL;
	snprintf(key, OBJ_KEY_LEN, "%s/%s", ns ? ns : "", name);
	return 0;
}

static bool has_label(const cJSON *obj, const char *label)
{
	return get(get(get(obj, "metadata"), "labels"), label) != NULL;
}

/* Protocol field: absent means TCP (the API default). */
static int parse_proto(const cJSON *o, const char *what, const char *key, __u8 *proto)
{
	const char *p = get_str(o, "protocol");

	if (!p || !strcmp(p, "TCP"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(p, "UDP"))
		*proto = IPPROTO_UDP;
	else {
		pr_warn("%s %s: %s.protocol \"%s\" is not served by rota (TCP, UDP); skipping that port",
			what, key, get_str(o, "name") ? get_str(o, "name") : "port", p);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

static int parse_port_number(const cJSON *o, const char *field, const char *what, const char *key,
			     size_t idx, __u16 *port)
{
	const cJSON *v = get(o, field);

	if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65535 ||
	    v->valuedouble != (double)(int)v->valuedouble) {
		char val[32] = "missing";

		if (cJSON_IsNumber(v))
			snprintf(val, sizeof(val), "%g", v->valuedouble);
		pr_warn("%s %s: ports[%zu].%s %s is not a port number (1-65535); skipping that port",
			what, key, idx, field, val);
		return -EINVAL;
	}
	*port = (__u16)v->valueint;
	return 0;
}

int svc_parse(const cJSON *obj, struct svc_obj *out)
{
	const cJSON *spec = get(obj, "spec"), *ports = get(spec, "ports"), *p;
	const char *type = get_str(spec, "type"), *cip = get_str(spec, "clusterIP");
	const char *aff = get_str(spec, "sessionAffinity"), *itp = get_str(spec, "internalTrafficPolicy");
	struct in_addr in;
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (obj_key(obj, out->key))
		return -EINVAL;
	out->proxied = true;
	if (has_label(obj, LABEL_PROXY_NAME) || has_label(obj, LABEL_HEADLESS) ||
	    (type && !strcmp(type, "ExternalName")) || !cip || !strcmp(cip, "None") || !*cip)
		out->proxied = false;
	if (out->proxied && inet_pton(AF_INET, cip, &in) != 1) {
		/* IPv6 ClusterIPs come with the IPv6 datapath. */
		if (!strchr(cip, ':'))
			pr_warn("service %s: spec.clusterIP \"%s\" is not an IP address; skipping the service",
				out->key, cip);
		out->proxied = false;
	}
	out->cluster_ip = out->proxied ? in.s_addr : 0;
	if (aff && !strcmp(aff, "ClientIP")) {
		const cJSON *t = get(get(get(spec, "sessionAffinityConfig"), "clientIP"), "timeoutSeconds");

		out->affinity_timeout = cJSON_IsNumber(t) && t->valuedouble >= 1 && t->valuedouble <= 86400
					? (__u32)t->valuedouble : DEFAULT_AFFINITY_TIMEOUT;
	}
	/* ClusterIP traffic from this node goes to this node's endpoints only.
	 * (externalTrafficPolicy concerns NodePort/LoadBalancer traffic.) */
	out->itp_local = itp && !strcmp(itp, "Local");
	out->ports = calloc((size_t)cJSON_GetArraySize(ports) + 1, sizeof(*out->ports));
	if (!out->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(p, ports) {
		struct svc_port *sp = &out->ports[out->n_ports];
		const char *name = get_str(p, "name");

		if (!parse_port_number(p, "port", "service", out->key, i, &sp->port) &&
		    !parse_proto(p, "service", out->key, &sp->proto)) {
			snprintf(sp->name, sizeof(sp->name), "%s", name ? name : "");
			out->n_ports++;
		}
		i++;
	}
	return 0;
}

/* RFC 3339 → epoch seconds (UTC); 0 when absent or unparsable. */
static double parse_time(const char *s)
{
	struct tm tm = {};
	const char *rest;
	double frac = 0;

	if (!s || !(rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return 0;
	if (*rest == '.')
		frac = strtod(rest, NULL);
	return (double)timegm(&tm) + frac;
}

static bool cond(const cJSON *conds, const char *k, bool dflt)
{
	const cJSON *v = get(conds, k);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

int slice_parse(const cJSON *obj, const char *this_node, struct slice_obj *out)
{
	const cJSON *md = get(obj, "metadata"), *ports = get(obj, "ports"), *eps = get(obj, "endpoints"), *e;
	const char *svc = get_str(get(md, "labels"), LABEL_SVC_NAME), *at = get_str(obj, "addressType");
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (obj_key(obj, out->key))
		return -EINVAL;
	if (svc && !has_label(obj, LABEL_PROXY_NAME) && !has_label(obj, LABEL_HEADLESS))
		snprintf(out->svc_key, sizeof(out->svc_key), "%s/%s",
			 get_str(md, "namespace") ? get_str(md, "namespace") : "", svc);
	out->ipv4 = at && !strcmp(at, "IPv4");
	out->trigger_time = parse_time(get_str(get(md, "annotations"), ANN_TRIGGER_TIME));

	out->ports = calloc((size_t)cJSON_GetArraySize(ports) + 1, sizeof(*out->ports));
	if (!out->ports)
		return -ENOMEM;
	cJSON_ArrayForEach(e, ports) {
		struct slice_port *sp = &out->ports[out->n_ports];
		const char *name = get_str(e, "name");

		if (!parse_port_number(e, "port", "endpointslice", out->key, i, &sp->port) &&
		    !parse_proto(e, "endpointslice", out->key, &sp->proto)) {
			snprintf(sp->name, sizeof(sp->name), "%s", name ? name : "");
			out->n_ports++;
		}
		i++;
	}
	if (!out->ipv4)
		return 0;
	out->eps = calloc((size_t)cJSON_GetArraySize(eps) + 1, sizeof(*out->eps));
	if (!out->eps)
		return -ENOMEM;
	i = 0;
	cJSON_ArrayForEach(e, eps) {
		const cJSON *conds = get(e, "conditions"), *a = cJSON_GetArrayItem(get(e, "addresses"), 0);
		const char *node = get_str(e, "nodeName");
		/* Per the API: ready unset means ready; serving unset defers to ready. */
		bool ready = cond(conds, "ready", true);
		bool serving = cond(conds, "serving", ready);
		bool terminating = cond(conds, "terminating", false);
		struct in_addr in;

		/* kube-proxy uses addresses[0] only: the API says all addresses of
		 * an endpoint are fungible, and IPv4 slices carry one. */
		if (!a) {
			pr_warn("endpointslice %s: endpoints[%zu].addresses is empty; skipping that endpoint", out->key, i);
		} else if (!cJSON_IsString(a) || inet_pton(AF_INET, a->valuestring, &in) != 1) {
			pr_warn("endpointslice %s: endpoints[%zu].addresses[0] \"%s\" is not an IPv4 address; "
				"skipping that endpoint", out->key, i, cJSON_IsString(a) ? a->valuestring : "?");
		} else {
			out->eps[out->n_eps++] = (struct slice_ep){
				.addr = in.s_addr, .ready = ready, .serving = serving, .terminating = terminating,
				.local = node && this_node && !strcmp(node, this_node),
			};
		}
		i++;
	}
	return 0;
}

int backend_cmp(const void *a, const void *b)
{
	const struct rota_svc_backend *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return 0;
}

int svc_port_backends(const struct svc_obj *svc, const struct svc_port *sp, const struct slice_obj *const *slices,
		      size_t n_slices, struct rota_svc_backend **out, size_t *n_out)
{
	struct rota_svc_backend *bes;
	size_t cap = 0, n = 0, n_ready = 0;

	for (size_t i = 0; i < n_slices; i++)
		cap += slices[i]->n_eps;
	bes = calloc(cap + 1, sizeof(*bes));
	if (!bes)
		return -ENOMEM;
	for (size_t i = 0; i < n_slices; i++) {
		const struct slice_obj *s = slices[i];
		const struct slice_port *p = NULL;

		for (size_t k = 0; k < s->n_ports; k++)
			if (!strcmp(s->ports[k].name, sp->name) && s->ports[k].proto == sp->proto)
				p = &s->ports[k];
		if (!p)
			continue;
		for (size_t k = 0; k < s->n_eps; k++) {
			const struct slice_ep *ep = &s->eps[k];
			struct rota_svc_backend be = { .addr = ep->addr, .port = htons(p->port) };
			bool dup = false;

			/* internalTrafficPolicy Local: other nodes' endpoints do not
			 * exist for this node, not even for the fallback below. */
			if (svc->itp_local && !ep->local)
				continue;
			/* Ready endpoints serve; serving-but-terminating ones keep
			 * their flows (and serve only if nothing is ready, below). */
			if (!ep->ready && !(ep->serving && ep->terminating))
				continue;
			be.terminating = !ep->ready;
			for (size_t j = 0; j < n; j++)
				if (bes[j].addr == be.addr && bes[j].port == be.port) {
					dup = true;
					if (!be.terminating && bes[j].terminating) {
						bes[j].terminating = false;
						n_ready++;
					}
				}
			if (dup)
				continue;
			bes[n++] = be;
			n_ready += !be.terminating;
		}
	}
	/* kube-proxy's fallback: with no ready endpoint, serving terminating
	 * ones take traffic rather than refusing it. */
	if (!n_ready)
		for (size_t j = 0; j < n; j++)
			bes[j].terminating = false;
	qsort(bes, n, sizeof(*bes), backend_cmp);
	*out = bes;
	*n_out = n;
	return 0;
}

void svc_obj_free(struct svc_obj *s)
{
	free(s->ports);
	s->ports = NULL;
	s->n_ports = 0;
}

void slice_obj_free(struct slice_obj *s)
{
	free(s->ports);
	free(s->eps);
	s->ports = NULL;
	s->eps = NULL;
	s->n_ports = s->n_eps = 0;
}
