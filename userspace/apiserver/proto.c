/* proto.c: decodes the Kubernetes protobuf request bodies that kubectl's
 * typed clients send (`kubectl create namespace|configmap|secret|service`
 * use Content-Type application/vnd.kubernetes.protobuf) into the JSON form
 * the rest of the server works on. Schema-driven from the field numbers of
 * k8s.io/api core/v1 generated.proto for the kinds listed below; a field
 * that is not in the schema and not a zero value is refused, never dropped. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto.h"
#include "util.h"

enum pbt { PB_STR, PB_INT, PB_BOOL, PB_MSG, PB_MAP_STR, PB_MAP_BYTES, PB_IOS, PB_SKIP };

struct pbm;
struct pbf {
	int num;
	const char *name;
	enum pbt t;
	bool rep;
	const struct pbm *m;
	bool keep_zero;		/* Go pointer field: a zero value was set on purpose */
};
struct pbm {
	const char *name;
	const struct pbf *f;
};

#define M(n, ...) static const struct pbf n##_f[] = { __VA_ARGS__, { 0 } }; \
	static const struct pbm n = { #n, n##_f }

M(owner_ref, { 1, "kind", PB_STR }, { 3, "name", PB_STR }, { 4, "uid", PB_STR },
  { 5, "apiVersion", PB_STR }, { 6, "controller", PB_BOOL, .keep_zero = true },
  { 7, "blockOwnerDeletion", PB_BOOL, .keep_zero = true });
M(object_meta, { 1, "name", PB_STR }, { 2, "generateName", PB_STR }, { 3, "namespace", PB_STR },
  { 4, "selfLink", PB_STR }, { 5, "uid", PB_STR }, { 6, "resourceVersion", PB_STR },
  { 7, "generation", PB_INT }, { 8, "creationTimestamp", PB_SKIP }, { 9, "deletionTimestamp", PB_SKIP },
  { 10, "deletionGracePeriodSeconds", PB_INT, .keep_zero = true }, { 11, "labels", PB_MAP_STR },
  { 12, "annotations", PB_MAP_STR }, { 13, "ownerReferences", PB_MSG, true, &owner_ref },
  { 14, "finalizers", PB_STR, true });
M(ns_spec, { 1, "finalizers", PB_STR, true });
M(ns_status, { 1, "phase", PB_STR });
M(namespace, { 1, "metadata", PB_MSG, .m = &object_meta }, { 2, "spec", PB_MSG, .m = &ns_spec },
  { 3, "status", PB_MSG, .m = &ns_status });
M(configmap, { 1, "metadata", PB_MSG, .m = &object_meta }, { 2, "data", PB_MAP_STR },
  { 3, "binaryData", PB_MAP_BYTES }, { 4, "immutable", PB_BOOL, .keep_zero = true });
M(secret, { 1, "metadata", PB_MSG, .m = &object_meta }, { 2, "data", PB_MAP_BYTES },
  { 3, "type", PB_STR }, { 4, "stringData", PB_MAP_STR }, { 5, "immutable", PB_BOOL, .keep_zero = true });
M(service_port, { 1, "name", PB_STR }, { 2, "protocol", PB_STR }, { 3, "port", PB_INT },
  { 4, "targetPort", PB_IOS }, { 5, "nodePort", PB_INT }, { 6, "appProtocol", PB_STR, .keep_zero = true });
M(client_ip, { 1, "timeoutSeconds", PB_INT, .keep_zero = true });
M(affinity_cfg, { 1, "clientIP", PB_MSG, .m = &client_ip });
M(service_spec, { 1, "ports", PB_MSG, true, &service_port }, { 2, "selector", PB_MAP_STR },
  { 3, "clusterIP", PB_STR }, { 4, "type", PB_STR }, { 5, "externalIPs", PB_STR, true },
  { 7, "sessionAffinity", PB_STR }, { 8, "loadBalancerIP", PB_STR },
  { 9, "loadBalancerSourceRanges", PB_STR, true }, { 10, "externalName", PB_STR },
  { 11, "externalTrafficPolicy", PB_STR }, { 12, "healthCheckNodePort", PB_INT },
  { 13, "publishNotReadyAddresses", PB_BOOL }, { 14, "sessionAffinityConfig", PB_MSG, .m = &affinity_cfg },
  { 17, "ipFamilyPolicy", PB_STR, .keep_zero = true }, { 18, "clusterIPs", PB_STR, true },
  { 19, "ipFamilies", PB_STR, true }, { 20, "allocateLoadBalancerNodePorts", PB_BOOL, .keep_zero = true },
  { 21, "loadBalancerClass", PB_STR, .keep_zero = true },
  { 22, "internalTrafficPolicy", PB_STR, .keep_zero = true },
  { 23, "trafficDistribution", PB_STR, .keep_zero = true });
M(lb_ingress, { 1, "ip", PB_STR }, { 2, "hostname", PB_STR });
M(lb_status, { 1, "ingress", PB_MSG, true, &lb_ingress });
M(service_status, { 1, "loadBalancer", PB_MSG, .m = &lb_status });
M(service, { 1, "metadata", PB_MSG, .m = &object_meta }, { 2, "spec", PB_MSG, .m = &service_spec },
  { 3, "status", PB_MSG, .m = &service_status });

static const struct {
	const char *kind;
	const struct pbm *m;
} kinds[] = {
	{ "Namespace", &namespace }, { "ConfigMap", &configmap }, { "Secret", &secret },
	{ "Service", &service },
};

struct cur {
	const unsigned char *p, *end;
};

static int varint(struct cur *c, uint64_t *v)
{
	uint64_t r = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (c->p >= c->end)
			return -EINVAL;
		r |= (uint64_t)(*c->p & 0x7f) << shift;
		if (!(*c->p++ & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -EINVAL;
}

/* Next field: number, wire type and, for length-delimited, the bytes. */
static int next_field(struct cur *c, int *num, int *wt, uint64_t *v, struct cur *sub)
{
	uint64_t key;

	if (varint(c, &key))
		return -EINVAL;
	*num = key >> 3;
	*wt = key & 7;
	switch (*wt) {
	case 0:
		return varint(c, v);
	case 1:
		if (c->end - c->p < 8)
			return -EINVAL;
		*v = 0;
		c->p += 8;
		return 0;
	case 5:
		if (c->end - c->p < 4)
			return -EINVAL;
		*v = 0;
		c->p += 4;
		return 0;
	case 2:
		if (varint(c, v) || *v > (uint64_t)(c->end - c->p))
			return -EINVAL;
		sub->p = c->p;
		sub->end = c->p + *v;
		c->p += *v;
		return 0;
	default:
		return -EINVAL;
	}
}

static int decode_msg(struct cur c, const struct pbm *m, cJSON *out, char *err, size_t errlen);

static int map_entry(struct cur c, bool bytes, cJSON *map, char *err, size_t errlen)
{
	char *k = NULL, *v = NULL;
	size_t vlen = 0;
	int num, wt, rc = 0;
	uint64_t x;
	struct cur s;

	while (c.p < c.end) {
		if (next_field(&c, &num, &wt, &x, &s) || wt != 2) {
			snprintf(err, errlen, "malformed map entry");
			rc = -EINVAL;
			break;
		}
		if (num == 1) {
			free(k);
			k = strndup((const char *)s.p, s.end - s.p);
		} else if (num == 2) {
			free(v);
			vlen = s.end - s.p;
			v = malloc(vlen + 1);
			if (v) {
				memcpy(v, s.p, vlen);
				v[vlen] = 0;
			}
		}
	}
	if (!rc) {
		if (!v) {
			v = strdup("");
			vlen = 0;
		}
		if (bytes) {
			char *b = b64_encode(v, vlen);

			json_set_str(map, k ? k : "", b ? b : "");
			free(b);
		} else {
			json_set_str(map, k ? k : "", v ? v : "");
		}
	}
	free(k);
	free(v);
	return rc;
}

static bool empty_obj(const cJSON *o)
{
	return cJSON_IsObject(o) && !o->child;
}

static int decode_msg(struct cur c, const struct pbm *m, cJSON *out, char *err, size_t errlen)
{
	while (c.p < c.end) {
		const struct pbf *f;
		struct cur s = { 0 };
		int num, wt, rc;
		uint64_t v;
		cJSON *val = NULL;

		if (next_field(&c, &num, &wt, &v, &s)) {
			snprintf(err, errlen, "malformed protobuf in %s", m->name);
			return -EINVAL;
		}
		for (f = m->f; f->num && f->num != num; f++)
			;
		if (!f->num) {
			if (v == 0)
				continue;	/* a zero value of a field we do not model */
			snprintf(err, errlen, "protobuf field %d of %s is not supported by rota-apiserver; send JSON",
				 num, m->name);
			return -ENOTSUP;
		}
		if (f->t == PB_SKIP)
			continue;
		if ((f->t == PB_INT || f->t == PB_BOOL) ? wt != 0 : wt != 2) {
			snprintf(err, errlen, "protobuf field %s of %s has wire type %d", f->name, m->name, wt);
			return -EINVAL;
		}
		switch (f->t) {
		case PB_STR:
			if (!f->rep && !f->keep_zero && s.p == s.end)
				continue;
			val = cJSON_CreateString("");
			free(val->valuestring);
			val->valuestring = strndup((const char *)s.p, s.end - s.p);
			break;
		case PB_INT:
			if (!f->keep_zero && v == 0)
				continue;
			val = cJSON_CreateNumber((double)(int64_t)v);
			break;
		case PB_BOOL:
			if (!f->keep_zero && v == 0)
				continue;
			val = cJSON_CreateBool(v != 0);
			break;
		case PB_MSG:
			val = cJSON_CreateObject();
			rc = decode_msg(s, f->m, val, err, errlen);
			if (rc) {
				cJSON_Delete(val);
				return rc;
			}
			if (!f->rep && !f->keep_zero && empty_obj(val)) {
				cJSON_Delete(val);
				continue;
			}
			break;
		case PB_MAP_STR:
		case PB_MAP_BYTES:
			rc = map_entry(s, f->t == PB_MAP_BYTES, json_ensure_obj(out, f->name), err, errlen);
			if (rc)
				return rc;
			continue;
		case PB_IOS: {
			struct cur ic = s;
			int64_t type = 0, iv = 0;
			char *sv = NULL;

			while (ic.p < ic.end) {
				struct cur is;
				int n2, w2;
				uint64_t x;

				if (next_field(&ic, &n2, &w2, &x, &is)) {
					free(sv);
					snprintf(err, errlen, "malformed IntOrString");
					return -EINVAL;
				}
				if (n2 == 1)
					type = x;
				else if (n2 == 2)
					iv = (int32_t)x;
				else if (n2 == 3) {
					free(sv);
					sv = strndup((const char *)is.p, is.end - is.p);
				}
			}
			val = type == 1 ? cJSON_CreateString(sv ? sv : "") : cJSON_CreateNumber(iv);
			free(sv);
			if (type != 1 && iv == 0) {
				cJSON_Delete(val);
				continue;
			}
			break;
		}
		case PB_SKIP:
			continue;
		}
		if (f->rep) {
			cJSON *arr = cJSON_GetObjectItem(out, f->name);

			if (!cJSON_IsArray(arr)) {
				arr = cJSON_CreateArray();
				json_set(out, f->name, arr);
			}
			cJSON_AddItemToArray(arr, val);
		} else {
			json_set(out, f->name, val);
		}
	}
	return 0;
}

int proto_decode(const void *body, size_t len, cJSON **out, char *err, size_t errlen)
{
	static const unsigned char magic[4] = { 'k', '8', 's', 0 };
	struct cur c = { (const unsigned char *)body + 4, (const unsigned char *)body + len }, s, raw = { 0 };
	char apiv[64] = "", kind[64] = "";
	const struct pbm *m = NULL;
	int num, wt, rc;
	uint64_t v;
	cJSON *obj;

	if (len < 4 || memcmp(body, magic, 4)) {
		snprintf(err, errlen, "not a Kubernetes protobuf message (missing k8s\\0 prefix)");
		return -EINVAL;
	}
	/* runtime.Unknown: typeMeta=1 {apiVersion=1, kind=2}, raw=2 */
	while (c.p < c.end) {
		if (next_field(&c, &num, &wt, &v, &s)) {
			snprintf(err, errlen, "malformed protobuf envelope");
			return -EINVAL;
		}
		if (num == 1 && wt == 2) {
			struct cur t = s, ts;
			int n2, w2;

			while (t.p < t.end && !next_field(&t, &n2, &w2, &v, &ts)) {
				if (w2 != 2)
					continue;
				snprintf(n2 == 1 ? apiv : kind, sizeof(apiv), "%.*s", (int)(ts.end - ts.p), ts.p);
			}
		} else if (num == 2 && wt == 2) {
			raw = s;
		}
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i].kind, kind))
			m = kinds[i].m;
	if (!m) {
		snprintf(err, errlen, "protobuf bodies are accepted for Namespace, ConfigMap, Secret and Service only (got %s %s); send JSON",
			 apiv, kind);
		return -ENOTSUP;
	}
	obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "apiVersion", apiv);
	cJSON_AddStringToObject(obj, "kind", kind);
	rc = raw.p ? decode_msg(raw, m, obj, err, errlen) : 0;
	if (rc) {
		cJSON_Delete(obj);
		return rc;
	}
	*out = obj;
	return 0;
}
