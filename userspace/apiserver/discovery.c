/* discovery.c: what clients read before they talk to resources: /api,
 * /api/v1, /apis, /apis/<group>[/<version>] in legacy and aggregated (v2)
 * form, /version, health endpoints, and an OpenAPI v3 document that tells
 * kubectl which operations accept ?fieldValidation (so it validates on the
 * server instead of downloading full schemas). All generated from the
 * resource table. */
#include <stdio.h>
#include <string.h>
#include "apiserver.h"
#include "http.h"
#include "util.h"

#define KUBE_MINOR "32"
#define AGG_CTYPE "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

static const char *const verbs[] = { "create", "delete", "deletecollection", "get", "list", "patch",
				     "update", "watch", NULL };
static const char *const status_verbs[] = { "get", "patch", "update", NULL };

static cJSON *str_array(const char *const *v)
{
	cJSON *a = cJSON_CreateArray();

	for (; v && *v; v++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*v));
	return a;
}

static bool wants_aggregated(struct req *r)
{
	const char *acc = req_header(r, "Accept");

	return acc && strstr(acc, "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
}

static cJSON *resource_list(const char *group, const char *version)
{
	cJSON *l = cJSON_CreateObject(), *arr;
	char gv[128];

	snprintf(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
	cJSON_AddStringToObject(l, "kind", "APIResourceList");
	cJSON_AddStringToObject(l, "apiVersion", "v1");
	cJSON_AddStringToObject(l, "groupVersion", gv);
	arr = cJSON_AddArrayToObject(l, "resources");
	for (size_t i = 0; i < n_resources; i++) {
		const struct resource *res = &resources[i];
		cJSON *e;

		if (strcmp(res->group, group) || strcmp(res->version, version))
			continue;
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", res->plural);
		cJSON_AddStringToObject(e, "singularName", res->singular);
		cJSON_AddBoolToObject(e, "namespaced", res->namespaced);
		cJSON_AddStringToObject(e, "kind", res->kind);
		cJSON_AddItemToObject(e, "verbs", str_array(verbs));
		if (res->short_names[0])
			cJSON_AddItemToObject(e, "shortNames", str_array(res->short_names));
		if (res->categories[0])
			cJSON_AddItemToObject(e, "categories", str_array(res->categories));
		cJSON_AddItemToArray(arr, e);
		if (res->has_status) {
			char name[96];

			snprintf(name, sizeof(name), "%s/status", res->plural);
			e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "name", name);
			cJSON_AddStringToObject(e, "singularName", "");
			cJSON_AddBoolToObject(e, "namespaced", res->namespaced);
			cJSON_AddStringToObject(e, "kind", res->kind);
			cJSON_AddItemToObject(e, "verbs", str_array(status_verbs));
			cJSON_AddItemToArray(arr, e);
		}
	}
	return l;
}

static cJSON *gvk(const struct resource *res)
{
	cJSON *k = cJSON_CreateObject();

	cJSON_AddStringToObject(k, "group", res->group);
	cJSON_AddStringToObject(k, "version", res->version);
	cJSON_AddStringToObject(k, "kind", res->kind);
	return k;
}

/* One APIGroupDiscovery (apidiscovery.k8s.io/v2) for a group. */
static cJSON *group_discovery(const char *group)
{
	cJSON *g = cJSON_CreateObject(), *meta, *versions, *v, *arr;

	meta = cJSON_AddObjectToObject(g, "metadata");
	if (*group)
		cJSON_AddStringToObject(meta, "name", group);
	cJSON_AddNullToObject(meta, "creationTimestamp");
	versions = cJSON_AddArrayToObject(g, "versions");
	v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "version", "v1");
	arr = cJSON_AddArrayToObject(v, "resources");
	for (size_t i = 0; i < n_resources; i++) {
		const struct resource *res = &resources[i];
		cJSON *e;

		if (strcmp(res->group, group))
			continue;
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "resource", res->plural);
		cJSON_AddItemToObject(e, "responseKind", gvk(res));
		cJSON_AddStringToObject(e, "scope", res->namespaced ? "Namespaced" : "Cluster");
		cJSON_AddStringToObject(e, "singularResource", res->singular);
		cJSON_AddItemToObject(e, "verbs", str_array(verbs));
		if (res->short_names[0])
			cJSON_AddItemToObject(e, "shortNames", str_array(res->short_names));
		if (res->categories[0])
			cJSON_AddItemToObject(e, "categories", str_array(res->categories));
		if (res->has_status) {
			cJSON *subs = cJSON_AddArrayToObject(e, "subresources"), *s = cJSON_CreateObject();

			cJSON_AddStringToObject(s, "subresource", "status");
			cJSON_AddItemToObject(s, "responseKind", gvk(res));
			cJSON_AddItemToObject(s, "verbs", str_array(status_verbs));
			cJSON_AddItemToArray(subs, s);
		}
		cJSON_AddItemToArray(arr, e);
	}
	cJSON_AddStringToObject(v, "freshness", "Current");
	cJSON_AddItemToArray(versions, v);
	return g;
}

static cJSON *aggregated(const char *group)
{
	cJSON *l = cJSON_CreateObject(), *items;

	cJSON_AddStringToObject(l, "kind", "APIGroupDiscoveryList");
	cJSON_AddStringToObject(l, "apiVersion", "apidiscovery.k8s.io/v2");
	cJSON_AddObjectToObject(l, "metadata");
	items = cJSON_AddArrayToObject(l, "items");
	if (group)
		cJSON_AddItemToArray(items, group_discovery(group));
	else
		cJSON_AddItemToArray(items, group_discovery("discovery.k8s.io"));
	return l;
}

static cJSON *api_group(const char *group)
{
	cJSON *g = cJSON_CreateObject(), *vs = cJSON_CreateArray(), *v = cJSON_CreateObject();
	char gv[128];

	snprintf(gv, sizeof(gv), "%s/v1", group);
	cJSON_AddStringToObject(v, "groupVersion", gv);
	cJSON_AddStringToObject(v, "version", "v1");
	cJSON_AddStringToObject(g, "name", group);
	cJSON_AddItemToArray(vs, cJSON_Duplicate(v, 1));
	cJSON_AddItemToObject(g, "versions", vs);
	cJSON_AddItemToObject(g, "preferredVersion", v);
	return g;
}

/* OpenAPI v3 for one group-version: paths with their verbs, the PATCH
 * operation carrying the GVK extension and the fieldValidation parameter. */
/* /openapi/v2: a Swagger 2.0 document without definitions. kubectl's
 * client-side validation fetches it for kinds the v3 documents do not name
 * (a `kind: List` file) and skips validating types it has no definition
 * for; fields are validated by this server (fieldValidation). kubectl asks
 * for gnostic's protobuf form (openapi_v2.Document); others get JSON. */
static void openapi_v2(struct req *r)
{
	static const unsigned char pb[] = {
		0x0a, 3, '2', '.', '0',			/* 1 swagger: "2.0" */
		0x12, 25,				/* 2 info (Info) */
		0x0a, 14, 'r', 'o', 't', 'a', '-', 'a', 'p', 'i', 's', 'e', 'r', 'v', 'e', 'r',
		0x12, 7, 'v', '1', '.', '3', '2', '.', '0',
		0x42, 0,				/* 8 paths: empty */
	};
	const char *acc = req_header(r, "Accept");
	cJSON *doc, *info;

	if (acc && strstr(acc, "application/com.github.proto-openapi.spec.v2")) {
		reply_bytes(r, 200, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", pb,
			    sizeof(pb));
		return;
	}
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "swagger", "2.0");
	info = cJSON_AddObjectToObject(doc, "info");
	cJSON_AddStringToObject(info, "title", "rota-apiserver");
	cJSON_AddStringToObject(info, "version", "v1.32.0");
	cJSON_AddObjectToObject(doc, "paths");
	reply_json(r, 200, doc);
}

static cJSON *openapi_gv(const char *group)
{
	cJSON *doc = cJSON_CreateObject(), *info, *paths;

	cJSON_AddStringToObject(doc, "openapi", "3.0.0");
	info = cJSON_AddObjectToObject(doc, "info");
	cJSON_AddStringToObject(info, "title", "Kubernetes (rota-apiserver)");
	cJSON_AddStringToObject(info, "version", "v1." KUBE_MINOR ".0");
	paths = cJSON_AddObjectToObject(doc, "paths");
	for (size_t i = 0; i < n_resources; i++) {
		const struct resource *res = &resources[i];
		char base[256], item[320];
		cJSON *pi, *op, *params;
		static const char *const qp[] = { "dryRun", "fieldManager", "fieldValidation", "force", NULL };

		if (strcmp(res->group, group))
			continue;
		if (!*group)
			snprintf(base, sizeof(base), "/api/v1/%s%s",
				 res->namespaced ? "namespaces/{namespace}/" : "", res->plural);
		else
			snprintf(base, sizeof(base), "/apis/%s/v1/%s%s", group,
				 res->namespaced ? "namespaces/{namespace}/" : "", res->plural);
		snprintf(item, sizeof(item), "%s/{name}", base);
		for (int pass = 0; pass < 2; pass++) {
			const char *methods[] = { "get", "put", "patch", "delete", "post" };

			pi = cJSON_AddObjectToObject(paths, pass ? base : item);
			for (int m = 0; m < 5; m++) {
				if ((pass == 0 && m == 4) || (pass == 1 && (m == 1 || m == 2 || m == 3)))
					continue;
				op = cJSON_AddObjectToObject(pi, methods[m]);
				cJSON_AddItemToObject(op, "x-kubernetes-group-version-kind", gvk(res));
				params = cJSON_AddArrayToObject(op, "parameters");
				if (m == 1 || m == 2 || m == 4) {
					for (int q = 0; qp[q]; q++) {
						cJSON *p;

						if (m != 2 && !strcmp(qp[q], "force"))
							continue;
						p = cJSON_CreateObject();
						cJSON_AddStringToObject(p, "name", qp[q]);
						cJSON_AddStringToObject(p, "in", "query");
						cJSON_AddItemToObject(p, "schema", cJSON_Parse("{\"type\":\"string\"}"));
						cJSON_AddItemToArray(params, p);
					}
				}
			}
		}
	}
	return doc;
}

int discovery_handle(struct req *r, const char *path)
{
	if (!strcmp(path, "/healthz") || !strcmp(path, "/livez") || !strcmp(path, "/readyz")) {
		if (!r->as->ready)
			return reply_text(r, 503, "text/plain; charset=utf-8", "not ready"), 1;
		return reply_text(r, 200, "text/plain; charset=utf-8", "ok"), 1;
	}
	if (!strcmp(path, "/version")) {
		cJSON *v = cJSON_CreateObject();

		cJSON_AddStringToObject(v, "major", "1");
		cJSON_AddStringToObject(v, "minor", KUBE_MINOR);
		cJSON_AddStringToObject(v, "gitVersion", "v1." KUBE_MINOR ".0-rota");
		cJSON_AddStringToObject(v, "gitCommit", "");
		cJSON_AddStringToObject(v, "gitTreeState", "clean");
		cJSON_AddStringToObject(v, "buildDate", __DATE__);
		cJSON_AddStringToObject(v, "goVersion", "none (C, rota-apiserver)");
		cJSON_AddStringToObject(v, "compiler", "gcc");
		cJSON_AddStringToObject(v, "platform", "linux/amd64");
		reply_json(r, 200, v);
		return 1;
	}
	if (strcmp(r->method, "GET"))
		return 0;
	if (!strcmp(path, "/api")) {
		cJSON *v;

		if (wants_aggregated(r)) {
			v = aggregated("");
			reply_json_ctype(r, 200, v, AGG_CTYPE);
			return 1;
		}
		v = cJSON_CreateObject();
		cJSON *sa = cJSON_CreateObject(), *arr;
		char addr[96];

		cJSON_AddStringToObject(v, "kind", "APIVersions");
		arr = cJSON_AddArrayToObject(v, "versions");
		cJSON_AddItemToArray(arr, cJSON_CreateString("v1"));
		arr = cJSON_AddArrayToObject(v, "serverAddressByClientCIDRs");
		snprintf(addr, sizeof(addr), "%s:%d", r->as->bind_addr, r->as->port);
		cJSON_AddStringToObject(sa, "clientCIDR", "0.0.0.0/0");
		cJSON_AddStringToObject(sa, "serverAddress", addr);
		cJSON_AddItemToArray(arr, sa);
		reply_json(r, 200, v);
		return 1;
	}
	if (!strcmp(path, "/api/v1")) {
		reply_json(r, 200, resource_list("", "v1"));
		return 1;
	}
	if (!strcmp(path, "/apis")) {
		cJSON *l, *groups;

		if (wants_aggregated(r)) {
			reply_json_ctype(r, 200, aggregated(NULL), AGG_CTYPE);
			return 1;
		}
		l = cJSON_CreateObject();
		cJSON_AddStringToObject(l, "kind", "APIGroupList");
		cJSON_AddStringToObject(l, "apiVersion", "v1");
		groups = cJSON_AddArrayToObject(l, "groups");
		cJSON_AddItemToArray(groups, api_group("discovery.k8s.io"));
		reply_json(r, 200, l);
		return 1;
	}
	if (!strcmp(path, "/apis/discovery.k8s.io")) {
		cJSON *g = api_group("discovery.k8s.io");

		cJSON_AddStringToObject(g, "kind", "APIGroup");
		cJSON_AddStringToObject(g, "apiVersion", "v1");
		reply_json(r, 200, g);
		return 1;
	}
	if (!strcmp(path, "/apis/discovery.k8s.io/v1")) {
		reply_json(r, 200, resource_list("discovery.k8s.io", "v1"));
		return 1;
	}
	if (!strcmp(path, "/openapi/v2")) {
		openapi_v2(r);
		return 1;
	}
	if (!strcmp(path, "/openapi/v3")) {
		cJSON *root = cJSON_CreateObject(), *paths = cJSON_AddObjectToObject(root, "paths"), *p;

		p = cJSON_AddObjectToObject(paths, "api/v1");
		cJSON_AddStringToObject(p, "serverRelativeURL", "/openapi/v3/api/v1?hash=rota1");
		p = cJSON_AddObjectToObject(paths, "apis/discovery.k8s.io/v1");
		cJSON_AddStringToObject(p, "serverRelativeURL", "/openapi/v3/apis/discovery.k8s.io/v1?hash=rota1");
		reply_json(r, 200, root);
		return 1;
	}
	if (!strcmp(path, "/openapi/v3/api/v1")) {
		reply_json(r, 200, openapi_gv(""));
		return 1;
	}
	if (!strcmp(path, "/openapi/v3/apis/discovery.k8s.io/v1")) {
		reply_json(r, 200, openapi_gv("discovery.k8s.io"));
		return 1;
	}
	return 0;
}
