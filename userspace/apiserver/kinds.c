/* kinds.c: defaulting and validation of the kinds rota-apiserver serves,
 * following the Kubernetes API rules clients depend on (field paths and
 * messages as kube-apiserver words them). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kinds.h"
#include "util.h"

bool is_dns1123_label(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

bool is_dns1035_label(const char *s)
{
	return is_dns1123_label(s) && islower((unsigned char)s[0]);
}

bool is_dns1123_subdomain(const char *s)
{
	char part[254];
	const char *p = s;

	if (!*s || strlen(s) > 253)
		return false;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(part))
			return false;
		memcpy(part, p, n);
		part[n] = 0;
		if (!is_dns1123_label(part))
			return false;
		p += n + (dot ? 1 : 0);
		if (dot && !*p)
			return false;
	}
	return true;
}

/* Label values: <= 63, alphanumeric at both ends, [-_.a-zA-Z0-9] inside. */
static bool is_label_value(const char *s)
{
	size_t n = strlen(s);

	if (n > 63)
		return false;
	if (!n)
		return true;
	if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* Qualified names: [prefix/]name with name a label value of 1-63 chars. */
static bool is_qualified_name(const char *s)
{
	const char *slash = strrchr(s, '/');
	char prefix[254];

	if (slash) {
		size_t n = slash - s;

		if (!n || n >= sizeof(prefix))
			return false;
		memcpy(prefix, s, n);
		prefix[n] = 0;
		if (!is_dns1123_subdomain(prefix))
			return false;
		s = slash + 1;
	}
	return *s && is_label_value(s);
}

static int64_t num(const cJSON *o, const char *name, int64_t dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

static void set_default_str(cJSON *o, const char *name, const char *v)
{
	if (!cJSON_GetObjectItemCaseSensitive(o, name))
		cJSON_AddStringToObject(o, name, v);
}

static void set_default_num(cJSON *o, const char *name, double v)
{
	if (!cJSON_GetObjectItemCaseSensitive(o, name))
		cJSON_AddNumberToObject(o, name, v);
}

static void default_service(cJSON *obj)
{
	cJSON *spec = json_ensure_obj(obj, "spec"), *ports, *p;
	const char *type, *cip;

	set_default_str(spec, "type", "ClusterIP");
	type = json_str(spec, "type");
	set_default_str(spec, "sessionAffinity", "None");
	ports = cJSON_GetObjectItem(spec, "ports");
	cJSON_ArrayForEach(p, ports) {
		set_default_str(p, "protocol", "TCP");
		if (!cJSON_GetObjectItem(p, "targetPort") && cJSON_GetObjectItem(p, "port"))
			cJSON_AddNumberToObject(p, "targetPort", num(p, "port", 0));
	}
	if (type && strcmp(type, "ExternalName")) {
		cip = json_str(spec, "clusterIP");
		set_default_str(spec, "ipFamilyPolicy", "SingleStack");
		if (!cJSON_GetObjectItem(spec, "ipFamilies")) {
			cJSON *f = cJSON_AddArrayToObject(spec, "ipFamilies");

			cJSON_AddItemToArray(f, cJSON_CreateString("IPv4"));
		}
		set_default_str(spec, "internalTrafficPolicy", "Cluster");
		if (cip && !strcmp(cip, "None"))
			cJSON_DeleteItemFromObject(spec, "clusterIPs");
	}
	if (type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer")))
		set_default_str(spec, "externalTrafficPolicy", "Cluster");
	if (type && !strcmp(type, "LoadBalancer") &&
	    !cJSON_GetObjectItem(spec, "allocateLoadBalancerNodePorts"))
		cJSON_AddTrueToObject(spec, "allocateLoadBalancerNodePorts");
	if (!strcmp(json_str(spec, "sessionAffinity") ? json_str(spec, "sessionAffinity") : "", "ClientIP") &&
	    !cJSON_GetObjectItem(spec, "sessionAffinityConfig")) {
		cJSON *c = cJSON_AddObjectToObject(spec, "sessionAffinityConfig");
		cJSON *ci = cJSON_AddObjectToObject(c, "clientIP");

		cJSON_AddNumberToObject(ci, "timeoutSeconds", 10800);
	}
	if (!cJSON_IsObject(cJSON_GetObjectItem(obj, "status"))) {
		cJSON *st = json_ensure_obj(obj, "status");

		cJSON_AddObjectToObject(st, "loadBalancer");
	}
}

static void default_containers(cJSON *list)
{
	cJSON *c, *p;

	cJSON_ArrayForEach(c, list) {
		const char *img = json_str(c, "image");

		set_default_str(c, "terminationMessagePath", "/dev/termination-log");
		set_default_str(c, "terminationMessagePolicy", "File");
		if (img) {
			const char *slash = strrchr(img, '/'), *colon = strrchr(img, ':');
			bool latest = strchr(img, '@') == NULL &&
				      (!colon || (slash && colon < slash) || !strcmp(colon, ":latest"));

			set_default_str(c, "imagePullPolicy", latest ? "Always" : "IfNotPresent");
		}
		cJSON_ArrayForEach(p, cJSON_GetObjectItem(c, "ports"))
			set_default_str(p, "protocol", "TCP");
		if (!cJSON_GetObjectItem(c, "resources"))
			cJSON_AddObjectToObject(c, "resources");
	}
}

static void default_pod(cJSON *obj)
{
	cJSON *spec = json_ensure_obj(obj, "spec");

	set_default_str(spec, "restartPolicy", "Always");
	set_default_num(spec, "terminationGracePeriodSeconds", 30);
	set_default_str(spec, "dnsPolicy", "ClusterFirst");
	set_default_str(spec, "schedulerName", "default-scheduler");
	set_default_num(spec, "priority", 0);
	if (!cJSON_GetObjectItem(spec, "securityContext"))
		cJSON_AddObjectToObject(spec, "securityContext");
	if (!cJSON_GetObjectItem(spec, "enableServiceLinks"))
		cJSON_AddTrueToObject(spec, "enableServiceLinks");
	set_default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
	default_containers(cJSON_GetObjectItem(spec, "containers"));
	default_containers(cJSON_GetObjectItem(spec, "initContainers"));
}

void kind_default(const struct resource *res, cJSON *obj)
{
	cJSON *meta = json_ensure_obj(obj, "metadata");

	if (!strcmp(res->kind, "Service")) {
		default_service(obj);
	} else if (!strcmp(res->kind, "Pod")) {
		default_pod(obj);
	} else if (!strcmp(res->kind, "Namespace")) {
		cJSON *spec = json_ensure_obj(obj, "spec"), *st = json_ensure_obj(obj, "status");
		cJSON *labels = json_ensure_obj(meta, "labels");
		const char *name = json_str(meta, "name");

		if (!cJSON_GetObjectItem(spec, "finalizers")) {
			cJSON *f = cJSON_AddArrayToObject(spec, "finalizers");

			cJSON_AddItemToArray(f, cJSON_CreateString("kubernetes"));
		}
		set_default_str(st, "phase", "Active");
		if (name)
			json_set_str(labels, "kubernetes.io/metadata.name", name);
	} else if (!strcmp(res->kind, "Secret")) {
		set_default_str(obj, "type", "Opaque");
	} else if (!strcmp(res->kind, "EndpointSlice")) {
		cJSON *p;

		if (!cJSON_IsArray(cJSON_GetObjectItem(obj, "endpoints")))
			json_set(obj, "endpoints", cJSON_CreateArray());
		cJSON_ArrayForEach(p, cJSON_GetObjectItem(obj, "ports"))
			set_default_str(p, "protocol", "TCP");
	}
}

void kind_prepare_create(const struct resource *res, cJSON *obj)
{
	if (!strcmp(res->kind, "Service")) {
		cJSON *st = cJSON_CreateObject();

		cJSON_AddObjectToObject(st, "loadBalancer");
		json_set(obj, "status", st);
	} else if (!strcmp(res->kind, "Pod")) {
		cJSON *st = cJSON_CreateObject();

		cJSON_AddStringToObject(st, "phase", "Pending");
		cJSON_AddStringToObject(st, "qosClass", "BestEffort");
		json_set(obj, "status", st);
	} else if (!strcmp(res->kind, "Namespace")) {
		cJSON *st = cJSON_CreateObject();

		cJSON_AddStringToObject(st, "phase", "Active");
		json_set(obj, "status", st);
	}
}

void secret_fold_string_data(cJSON *obj)
{
	cJSON *sd = cJSON_DetachItemFromObjectCaseSensitive(obj, "stringData"), *e;
	cJSON *data;

	if (!cJSON_IsObject(sd)) {
		cJSON_Delete(sd);	/* not a map: nothing to fold (validation of data follows) */
		return;
	}
	data = json_ensure_obj(obj, "data");
	cJSON_ArrayForEach(e, sd) {
		char *b;

		if (!cJSON_IsString(e))
			continue;
		b = b64_encode(e->valuestring, strlen(e->valuestring));
		if (b) {
			json_set_str(data, e->string, b);
			free(b);
		}
	}
	cJSON_Delete(sd);
}

static void validate_meta(const struct resource *res, const cJSON *obj, struct ferrs *e)
{
	const cJSON *meta = json_obj(obj, "metadata"), *l;
	const char *name = json_str(meta, "name");
	bool label_name = !strcmp(res->kind, "Namespace") || !strcmp(res->kind, "Service");
	char f[300];

	if (!name || !*name) {
		ferr_required(e, "metadata.name");
	} else if (!strcmp(res->kind, "Service") ? !is_dns1035_label(name) :
		   label_name ? !is_dns1123_label(name) : !is_dns1123_subdomain(name)) {
		ferr_invalid(e, "metadata.name", cJSON_GetObjectItem(meta, "name"), "%s",
			     !strcmp(res->kind, "Service") ?
			     "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')" :
			     label_name ?
			     "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')" :
			     "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
	}
	l = cJSON_GetObjectItem(meta, "labels");
	if (l && !cJSON_IsObject(l) && !cJSON_IsNull(l)) {
		ferr_invalid(e, "metadata.labels", l, "must be a map of strings");
		return;
	}
	l = cJSON_GetObjectItem(meta, "annotations");
	if (l && !cJSON_IsObject(l) && !cJSON_IsNull(l)) {
		ferr_invalid(e, "metadata.annotations", l, "must be a map of strings");
		return;
	}
	cJSON_ArrayForEach(l, cJSON_GetObjectItem(meta, "labels")) {
		snprintf(f, sizeof(f), "metadata.labels");
		if (!is_qualified_name(l->string)) {
			cJSON *k = cJSON_CreateString(l->string);

			ferr_invalid(e, f, k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
			cJSON_Delete(k);
		} else if (!cJSON_IsString(l) || !is_label_value(l->valuestring))
			ferr_invalid(e, f, l, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
	}
	cJSON_ArrayForEach(l, cJSON_GetObjectItem(meta, "annotations")) {
		if (!cJSON_IsString(l))
			ferr_invalid(e, "metadata.annotations", l, "annotation values must be strings");
	}
}

static bool valid_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	if (out)
		*out = ntohl(a.s_addr);
	return true;
}

static void validate_service(const struct apiserver *as, const cJSON *obj, struct ferrs *e)
{
	static const char *const types[] = { "ClusterIP", "ExternalName", "LoadBalancer", "NodePort", NULL };
	static const char *const protos[] = { "SCTP", "TCP", "UDP", NULL };
	static const char *const affinities[] = { "ClientIP", "None", NULL };
	static const char *const policies[] = { "Cluster", "Local", NULL };
	const cJSON *spec = json_obj(obj, "spec"), *ports, *p, *sel, *x;
	const char *type = json_str(spec, "type"), *cip = json_str(spec, "clusterIP");
	bool external = type && !strcmp(type, "ExternalName");
	bool headless = cip && !strcmp(cip, "None");
	bool nodeports = type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"));
	int i = 0, nports;
	char f[128];

	if (!spec) {
		ferr_required(e, "spec");
		return;
	}
	x = cJSON_GetObjectItem(spec, "type");
	if (!type || !(!strcmp(type, "ClusterIP") || external || nodeports)) {
		ferr_unsupported(e, "spec.type", x, types);
		return;
	}
	x = cJSON_GetObjectItem(spec, "sessionAffinity");
	if (x && (!cJSON_IsString(x) || (strcmp(x->valuestring, "None") && strcmp(x->valuestring, "ClientIP"))))
		ferr_unsupported(e, "spec.sessionAffinity", x, affinities);
	x = cJSON_GetObjectItem(spec, "externalTrafficPolicy");
	if (x && !nodeports)
		ferr_invalid(e, "spec.externalTrafficPolicy", x, "may only be set for LoadBalancer or NodePort services");
	else if (x && (!cJSON_IsString(x) || (strcmp(x->valuestring, "Cluster") && strcmp(x->valuestring, "Local"))))
		ferr_unsupported(e, "spec.externalTrafficPolicy", x, policies);
	x = cJSON_GetObjectItem(spec, "internalTrafficPolicy");
	if (x && (!cJSON_IsString(x) || (strcmp(x->valuestring, "Cluster") && strcmp(x->valuestring, "Local"))))
		ferr_unsupported(e, "spec.internalTrafficPolicy", x, policies);

	sel = cJSON_GetObjectItem(spec, "selector");
	if (external) {
		const char *en = json_str(spec, "externalName");

		if (!en || !*en)
			ferr_required(e, "spec.externalName");
		else if (!is_dns1123_subdomain(en))
			ferr_invalid(e, "spec.externalName", cJSON_GetObjectItem(spec, "externalName"),
				     "must be a valid DNS name (RFC 1123 subdomain)");
		if (cip && *cip)
			ferr_forbidden(e, "spec.clusterIP", "may not be set for ExternalName services");
		if (sel && cJSON_GetArraySize(sel) > 0)
			ferr_forbidden(e, "spec.selector", "may not be set for ExternalName services");
	} else if (cip && *cip && !headless) {
		uint32_t ip, mask = as->svc_bits ? ~0u << (32 - as->svc_bits) : 0;

		if (!valid_ipv4(cip, &ip))
			ferr_invalid(e, "spec.clusterIPs[0]", cJSON_GetObjectItem(spec, "clusterIP"),
				     "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
		else if ((ip & mask) != as->svc_net || ip == as->svc_net || ip == (as->svc_net | ~mask))
			ferr_invalid(e, "spec.clusterIPs[0]", cJSON_GetObjectItem(spec, "clusterIP"),
				     "provided IP is not in the valid range. The range of valid IPs is %s",
				     as->svc_cidr);
	} else if (headless && nodeports) {
		ferr_invalid(e, "spec.clusterIPs[0]", cJSON_GetObjectItem(spec, "clusterIP"),
			     "may not be set to 'None' for %s services", type);
	}
	if (sel && !cJSON_IsObject(sel) && !cJSON_IsNull(sel))
		ferr_invalid(e, "spec.selector", sel, "must be a map of label keys to values");
	if (!cJSON_IsObject(sel))
		sel = NULL;
	cJSON_ArrayForEach(x, sel) {
		if (!is_qualified_name(x->string) || !cJSON_IsString(x) || !is_label_value(x->valuestring))
			ferr_invalid(e, "spec.selector", x, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
	}

	ports = cJSON_GetObjectItem(spec, "ports");
	nports = cJSON_GetArraySize(ports);
	if (ports && !cJSON_IsArray(ports)) {
		ferr_invalid(e, "spec.ports", ports, "must be a list");
		return;
	}
	if (!nports && !external && !headless)
		ferr_required(e, "spec.ports");
	cJSON_ArrayForEach(p, ports) {
		const cJSON *port = cJSON_GetObjectItem(p, "port"), *tp = cJSON_GetObjectItem(p, "targetPort");
		const cJSON *np = cJSON_GetObjectItem(p, "nodePort"), *proto = cJSON_GetObjectItem(p, "protocol");
		const char *name = json_str(p, "name");
		const cJSON *q;
		int j = 0;

		if (!name || !*name) {
			if (nports > 1) {
				snprintf(f, sizeof(f), "spec.ports[%d].name", i);
				ferr_required(e, f);
			}
		} else if (!is_dns1123_label(name) || strlen(name) > 15 || !strpbrk(name, "abcdefghijklmnopqrstuvwxyz")) {
			/* Kubernetes port names are IANA_SVC_NAME-like DNS labels. */
			snprintf(f, sizeof(f), "spec.ports[%d].name", i);
			if (!is_dns1123_label(name))
				ferr_invalid(e, f, cJSON_GetObjectItem(p, "name"), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character");
		}
		if (!cJSON_IsNumber(port) || port->valuedouble < 1 || port->valuedouble > 65535) {
			snprintf(f, sizeof(f), "spec.ports[%d].port", i);
			if (!port)
				ferr_required(e, f);
			else
				ferr_invalid(e, f, port, "must be between 1 and 65535, inclusive");
		}
		if (!cJSON_IsString(proto) || (strcmp(proto->valuestring, "TCP") &&
					       strcmp(proto->valuestring, "UDP") &&
					       strcmp(proto->valuestring, "SCTP"))) {
			snprintf(f, sizeof(f), "spec.ports[%d].protocol", i);
			ferr_unsupported(e, f, proto, protos);
		}
		if (tp && !((cJSON_IsNumber(tp) && tp->valuedouble >= 1 && tp->valuedouble <= 65535) ||
			    (cJSON_IsString(tp) && *tp->valuestring && strlen(tp->valuestring) <= 15 &&
			     is_dns1123_label(tp->valuestring)))) {
			snprintf(f, sizeof(f), "spec.ports[%d].targetPort", i);
			ferr_invalid(e, f, tp, cJSON_IsNumber(tp) ? "must be between 1 and 65535, inclusive" :
				     "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
		}
		if (np && !(cJSON_IsNumber(np) && np->valuedouble == 0)) {
			snprintf(f, sizeof(f), "spec.ports[%d].nodePort", i);
			if (!nodeports)
				ferr_forbidden(e, f, "may not be used when `type` is '%s'", type);
			else if (!cJSON_IsNumber(np) || np->valuedouble < as->np_lo || np->valuedouble > as->np_hi)
				ferr_invalid(e, f, np, "provided port is not in the valid range. The range of valid ports is %d-%d",
					     as->np_lo, as->np_hi);
		}
		cJSON_ArrayForEach(q, ports) {
			if (j >= i)
				break;
			if (name && *name && json_str(q, "name") && !strcmp(name, json_str(q, "name"))) {
				snprintf(f, sizeof(f), "spec.ports[%d].name", i);
				ferr_duplicate(e, f, cJSON_GetObjectItem(p, "name"));
			}
			if (port && proto && cJSON_Compare(port, cJSON_GetObjectItem(q, "port"), 1) &&
			    cJSON_Compare(proto, cJSON_GetObjectItem(q, "protocol"), 1)) {
				cJSON *d = cJSON_CreateObject();

				cJSON_AddItemToObject(d, "port", cJSON_Duplicate(port, 1));
				cJSON_AddItemToObject(d, "protocol", cJSON_Duplicate(proto, 1));
				snprintf(f, sizeof(f), "spec.ports[%d]", i);
				ferr_duplicate(e, f, d);
				cJSON_Delete(d);
			}
			if (np && cJSON_IsNumber(np) && np->valuedouble != 0 && proto &&
			    cJSON_Compare(np, cJSON_GetObjectItem(q, "nodePort"), 1) &&
			    cJSON_Compare(proto, cJSON_GetObjectItem(q, "protocol"), 1)) {
				snprintf(f, sizeof(f), "spec.ports[%d].nodePort", i);
				ferr_duplicate(e, f, np);
			}
			j++;
		}
		i++;
	}
}

static void validate_containers(const cJSON *list, const char *field, struct ferrs *e, bool required)
{
	const cJSON *c;
	int i = 0;
	char f[128];

	if (required && cJSON_GetArraySize(list) == 0) {
		ferr_required(e, field);
		return;
	}
	cJSON_ArrayForEach(c, list) {
		const char *name = json_str(c, "name"), *img = json_str(c, "image");
		const cJSON *q;
		int j = 0;

		snprintf(f, sizeof(f), "%s[%d].name", field, i);
		if (!name || !*name)
			ferr_required(e, f);
		else if (!is_dns1123_label(name))
			ferr_invalid(e, f, cJSON_GetObjectItem(c, "name"), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character");
		cJSON_ArrayForEach(q, list) {
			if (j++ >= i)
				break;
			if (name && json_str(q, "name") && !strcmp(name, json_str(q, "name")))
				ferr_duplicate(e, f, cJSON_GetObjectItem(c, "name"));
		}
		if (!img || !*img) {
			snprintf(f, sizeof(f), "%s[%d].image", field, i);
			ferr_required(e, f);
		}
		i++;
	}
}

static void validate_endpointslice(const cJSON *obj, struct ferrs *e)
{
	static const char *const types[] = { "FQDN", "IPv4", "IPv6", NULL };
	static const char *const protos[] = { "SCTP", "TCP", "UDP", NULL };
	const cJSON *at = cJSON_GetObjectItem(obj, "addressType"), *ep, *p;
	const char *t = cJSON_IsString(at) ? at->valuestring : NULL;
	int i = 0;
	char f[128];

	if (!at)
		ferr_required(e, "addressType");
	else if (!t || (strcmp(t, "IPv4") && strcmp(t, "IPv6") && strcmp(t, "FQDN")))
		ferr_unsupported(e, "addressType", at, types);
	if (cJSON_GetArraySize(cJSON_GetObjectItem(obj, "endpoints")) > 1000)
		ferr_invalid(e, "endpoints", NULL, "must have at most 1000 items");
	cJSON_ArrayForEach(ep, cJSON_GetObjectItem(obj, "endpoints")) {
		const cJSON *addrs = cJSON_GetObjectItem(ep, "addresses"), *a;
		int n = cJSON_GetArraySize(addrs), j = 0;

		snprintf(f, sizeof(f), "endpoints[%d].addresses", i);
		if (n < 1)
			ferr_required(e, f);
		else if (n > 100)
			ferr_invalid(e, f, NULL, "must have at most 100 items");
		cJSON_ArrayForEach(a, addrs) {
			struct in6_addr a6;
			bool ok = cJSON_IsString(a) && t &&
				  (!strcmp(t, "IPv4") ? valid_ipv4(a->valuestring, NULL) :
				   !strcmp(t, "IPv6") ? inet_pton(AF_INET6, a->valuestring, &a6) == 1 :
				   is_dns1123_subdomain(a->valuestring));

			if (!ok && t) {
				snprintf(f, sizeof(f), "endpoints[%d].addresses[%d]", i, j);
				ferr_invalid(e, f, a, "must be a valid %s address", t);
			}
			j++;
		}
		i++;
	}
	i = 0;
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(obj, "ports")) {
		const cJSON *port = cJSON_GetObjectItem(p, "port"), *proto = cJSON_GetObjectItem(p, "protocol");

		if (port && !cJSON_IsNull(port) &&
		    (!cJSON_IsNumber(port) || port->valuedouble < 0 || port->valuedouble > 65535)) {
			snprintf(f, sizeof(f), "ports[%d].port", i);
			ferr_invalid(e, f, port, "must be between 0 and 65535, inclusive");
		}
		if (proto && (!cJSON_IsString(proto) || (strcmp(proto->valuestring, "TCP") &&
			      strcmp(proto->valuestring, "UDP") && strcmp(proto->valuestring, "SCTP")))) {
			snprintf(f, sizeof(f), "ports[%d].protocol", i);
			ferr_unsupported(e, f, proto, protos);
		}
		i++;
	}
}

static void validate_data_map(const cJSON *obj, const char *field, bool base64, struct ferrs *e)
{
	const cJSON *d = cJSON_GetObjectItem(obj, field), *x;
	char f[320];

	if (d && !cJSON_IsObject(d)) {
		ferr_invalid(e, field, d, "must be a map of strings");
		return;
	}
	cJSON_ArrayForEach(x, d) {
		bool keyok = *x->string && strlen(x->string) <= 253;

		for (const char *c = x->string; *c; c++)
			if (!isalnum((unsigned char)*c) && !strchr("-._", *c))
				keyok = false;
		snprintf(f, sizeof(f), "%s[%s]", field, x->string);
		if (!keyok)
			ferr_invalid(e, f, NULL, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')");
		if (!cJSON_IsString(x)) {
			ferr_invalid(e, f, x, "must be a string");
		} else if (base64) {
			unsigned char *out;
			size_t n;

			if (b64_decode(x->valuestring, strlen(x->valuestring), &out, &n))
				ferr_invalid(e, f, NULL, "illegal base64 data");
			else
				free(out);
		}
	}
}

void kind_validate(const struct apiserver *as, const struct resource *res,
		   const cJSON *obj, const cJSON *old, struct ferrs *e)
{
	(void)old;
	validate_meta(res, obj, e);
	if (!strcmp(res->kind, "Service")) {
		validate_service(as, obj, e);
	} else if (!strcmp(res->kind, "Pod")) {
		const cJSON *spec = json_obj(obj, "spec");

		if (!spec)
			ferr_required(e, "spec");
		validate_containers(cJSON_GetObjectItem(spec, "containers"), "spec.containers", e, true);
		validate_containers(cJSON_GetObjectItem(spec, "initContainers"), "spec.initContainers", e, false);
	} else if (!strcmp(res->kind, "EndpointSlice")) {
		validate_endpointslice(obj, e);
	} else if (!strcmp(res->kind, "ConfigMap")) {
		validate_data_map(obj, "data", false, e);
		validate_data_map(obj, "binaryData", true, e);
	} else if (!strcmp(res->kind, "Secret")) {
		validate_data_map(obj, "data", true, e);
	}
}

static bool needs_node_ports(const char *type)
{
	return type && (!strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer"));
}

/* Drops a field of spec that the new type cannot have, if the update left
 * it as it was (the client did not ask for it; kube's dropTypeDependentFields). */
static void drop_if_unchanged(cJSON *spec, const cJSON *ospec, const char *name)
{
	const cJSON *n = cJSON_GetObjectItem(spec, name), *o = cJSON_GetObjectItem(ospec, name);

	if (n && o && cJSON_Compare(n, o, 1))
		cJSON_DeleteItemFromObject(spec, name);
}

void service_drop_type_fields(cJSON *obj, const cJSON *old)
{
	cJSON *spec = json_obj(obj, "spec"), *p;
	const cJSON *ospec = json_obj(old, "spec");
	const char *type = json_str(spec, "type"), *otype = json_str(ospec, "type");

	if (!spec || !ospec || !type || !otype)
		return;
	/* healthCheckNodePort belongs to LoadBalancer + externalTrafficPolicy Local */
	if (!strcmp(otype, "LoadBalancer") && json_str(ospec, "externalTrafficPolicy") &&
	    !strcmp(json_str(ospec, "externalTrafficPolicy"), "Local") &&
	    !(!strcmp(type, "LoadBalancer") && json_str(spec, "externalTrafficPolicy") &&
	      !strcmp(json_str(spec, "externalTrafficPolicy"), "Local")))
		drop_if_unchanged(spec, ospec, "healthCheckNodePort");
	if (!strcmp(type, otype))
		return;
	if (needs_node_ports(otype) && !needs_node_ports(type)) {
		cJSON_ArrayForEach(p, cJSON_GetObjectItem(spec, "ports")) {
			const cJSON *np = cJSON_GetObjectItem(p, "nodePort"), *op;

			cJSON_ArrayForEach(op, cJSON_GetObjectItem(ospec, "ports"))
				if (np && cJSON_Compare(np, cJSON_GetObjectItem(op, "nodePort"), 1)) {
					cJSON_DeleteItemFromObject(p, "nodePort");
					break;
				}
		}
		drop_if_unchanged(spec, ospec, "externalTrafficPolicy");
		drop_if_unchanged(spec, ospec, "healthCheckNodePort");
	}
	if (!strcmp(otype, "LoadBalancer")) {
		drop_if_unchanged(spec, ospec, "allocateLoadBalancerNodePorts");
		drop_if_unchanged(spec, ospec, "loadBalancerClass");
	}
	if (!strcmp(type, "ExternalName")) {
		drop_if_unchanged(spec, ospec, "clusterIP");
		drop_if_unchanged(spec, ospec, "clusterIPs");
		drop_if_unchanged(spec, ospec, "ipFamilies");
		drop_if_unchanged(spec, ospec, "ipFamilyPolicy");
		drop_if_unchanged(spec, ospec, "internalTrafficPolicy");
	}
}
