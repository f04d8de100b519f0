/* table.c: server-side printing: when a client (kubectl get) asks for
 * application/json;as=Table;g=meta.k8s.io, lists, objects and watch events
 * are answered as meta.k8s.io/v1 Tables with the columns kubectl shows for
 * each kind; otherwise as plain JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "apiserver.h"
#include "rest.h"
#include "util.h"

struct column {
	const char *name, *type, *format;
	int priority;
};

static const struct column cols_namespace[] = {
	{ "Name", "string", "name", 0 }, { "Status", "string", "", 0 }, { "Age", "string", "", 0 }, { 0 } };
static const struct column cols_service[] = {
	{ "Name", "string", "name", 0 }, { "Type", "string", "", 0 }, { "Cluster-IP", "string", "", 0 },
	{ "External-IP", "string", "", 0 }, { "Port(s)", "string", "", 0 }, { "Age", "string", "", 0 },
	{ "Selector", "string", "", 1 }, { 0 } };
static const struct column cols_pod[] = {
	{ "Name", "string", "name", 0 }, { "Ready", "string", "", 0 }, { "Status", "string", "", 0 },
	{ "Restarts", "string", "", 0 }, { "Age", "string", "", 0 }, { "IP", "string", "", 1 },
	{ "Node", "string", "", 1 }, { 0 } };
static const struct column cols_node[] = {
	{ "Name", "string", "name", 0 }, { "Status", "string", "", 0 }, { "Roles", "string", "", 0 },
	{ "Age", "string", "", 0 }, { "Version", "string", "", 0 }, { "Internal-IP", "string", "", 1 }, { 0 } };
static const struct column cols_configmap[] = {
	{ "Name", "string", "name", 0 }, { "Data", "integer", "", 0 }, { "Age", "string", "", 0 }, { 0 } };
static const struct column cols_secret[] = {
	{ "Name", "string", "name", 0 }, { "Type", "string", "", 0 }, { "Data", "integer", "", 0 },
	{ "Age", "string", "", 0 }, { 0 } };
static const struct column cols_eps[] = {
	{ "Name", "string", "name", 0 }, { "AddressType", "string", "", 0 }, { "Ports", "string", "", 0 },
	{ "Endpoints", "string", "", 0 }, { "Age", "string", "", 0 }, { 0 } };

static const struct column *columns_for(const struct resource *res)
{
	if (!strcmp(res->kind, "Namespace"))
		return cols_namespace;
	if (!strcmp(res->kind, "Service"))
		return cols_service;
	if (!strcmp(res->kind, "Pod"))
		return cols_pod;
	if (!strcmp(res->kind, "Node"))
		return cols_node;
	if (!strcmp(res->kind, "ConfigMap"))
		return cols_configmap;
	if (!strcmp(res->kind, "Secret"))
		return cols_secret;
	return cols_eps;
}

static void age(const cJSON *obj, char *out, size_t len)
{
	const char *ts = json_str(json_obj(obj, "metadata"), "creationTimestamp");
	struct tm tm = { 0 };
	long d, h, m, s;

	if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		snprintf(out, len, "<unknown>");
		return;
	}
	d = (long)(time(NULL) - timegm(&tm));
	if (d < 0)
		d = 0;
	s = d % 60;
	m = d / 60;
	h = m / 60;
	if (d < 120)
		snprintf(out, len, "%lds", d);
	else if (m < 10)
		snprintf(out, len, "%ldm%lds", m, s);
	else if (h < 3)
		snprintf(out, len, "%ldm", m);
	else if (h < 8)
		snprintf(out, len, "%ldh%ldm", h, m % 60);
	else if (h < 48)
		snprintf(out, len, "%ldh", h);
	else if (h < 24 * 8)
		snprintf(out, len, "%ldd%ldh", h / 24, h % 24);
	else
		snprintf(out, len, "%ldd", h / 24);
}

static void add_str(cJSON *cells, const char *s)
{
	cJSON_AddItemToArray(cells, cJSON_CreateString(s && *s ? s : "<none>"));
}

static void service_cells(const cJSON *obj, cJSON *cells)
{
	const cJSON *spec = json_obj(obj, "spec"), *p, *e;
	const char *type = json_str(spec, "type");
	struct buf b = { 0 };

	add_str(cells, type);
	add_str(cells, type && !strcmp(type, "ExternalName") ? "<none>" : json_str(spec, "clusterIP"));
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(json_obj(json_obj(obj, "status"), "loadBalancer"), "ingress"))
		buf_addf(&b, "%s%s", b.len ? "," : "", json_str(e, "ip") ? json_str(e, "ip") : json_str(e, "hostname"));
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(spec, "externalIPs"))
		if (cJSON_IsString(e))
			buf_addf(&b, "%s%s", b.len ? "," : "", e->valuestring);
	if (type && !strcmp(type, "ExternalName"))
		add_str(cells, json_str(spec, "externalName"));
	else if (!b.len && type && !strcmp(type, "LoadBalancer"))
		add_str(cells, "<pending>");
	else
		add_str(cells, b.p);
	buf_free(&b);
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(spec, "ports")) {
		const cJSON *np = cJSON_GetObjectItem(p, "nodePort");

		if (cJSON_IsNumber(np) && np->valueint)
			buf_addf(&b, "%s%d:%d/%s", b.len ? "," : "", cJSON_GetObjectItem(p, "port")->valueint,
				 np->valueint, json_str(p, "protocol") ? json_str(p, "protocol") : "TCP");
		else
			buf_addf(&b, "%s%d/%s", b.len ? "," : "",
				 cJSON_IsNumber(cJSON_GetObjectItem(p, "port")) ? cJSON_GetObjectItem(p, "port")->valueint : 0,
				 json_str(p, "protocol") ? json_str(p, "protocol") : "TCP");
	}
	add_str(cells, b.p);
	buf_free(&b);
}

static void selector_cell(const cJSON *obj, cJSON *cells)
{
	const cJSON *e;
	struct buf b = { 0 };

	cJSON_ArrayForEach(e, cJSON_GetObjectItem(json_obj(obj, "spec"), "selector"))
		if (cJSON_IsString(e))
			buf_addf(&b, "%s%s=%s", b.len ? "," : "", e->string, e->valuestring);
	add_str(cells, b.p);
	buf_free(&b);
}

static void pod_cells(const cJSON *obj, cJSON *cells, const char *agestr)
{
	const cJSON *st = json_obj(obj, "status"), *cs;
	int total = cJSON_GetArraySize(cJSON_GetObjectItem(json_obj(obj, "spec"), "containers"));
	int ready = 0, restarts = 0;
	char s[64];
	const char *phase = json_str(st, "phase");

	cJSON_ArrayForEach(cs, cJSON_GetObjectItem(st, "containerStatuses")) {
		if (cJSON_IsTrue(cJSON_GetObjectItem(cs, "ready")))
			ready++;
		if (cJSON_IsNumber(cJSON_GetObjectItem(cs, "restartCount")))
			restarts += cJSON_GetObjectItem(cs, "restartCount")->valueint;
	}
	snprintf(s, sizeof(s), "%d/%d", ready, total);
	add_str(cells, s);
	add_str(cells, json_str(json_obj(obj, "metadata"), "deletionTimestamp") ? "Terminating" : phase);
	cJSON_AddItemToArray(cells, cJSON_CreateNumber(restarts));
	add_str(cells, agestr);
	add_str(cells, json_str(st, "podIP"));
	add_str(cells, json_str(json_obj(obj, "spec"), "nodeName"));
}

static void node_cells(const cJSON *obj, cJSON *cells, const char *agestr)
{
	const cJSON *c, *st = json_obj(obj, "status");
	const char *status = "Unknown";
	struct buf b = { 0 };

	cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "conditions"))
		if (json_str(c, "type") && !strcmp(json_str(c, "type"), "Ready"))
			status = json_str(c, "status") && !strcmp(json_str(c, "status"), "True") ? "Ready" : "NotReady";
	if (cJSON_IsTrue(cJSON_GetObjectItem(json_obj(obj, "spec"), "unschedulable")))
		buf_addf(&b, "%s,SchedulingDisabled", status);
	add_str(cells, b.p ? b.p : status);
	buf_free(&b);
	cJSON_ArrayForEach(c, json_obj(json_obj(obj, "metadata"), "labels"))
		if (!strncmp(c->string, "node-role.kubernetes.io/", 24))
			buf_addf(&b, "%s%s", b.len ? "," : "", c->string + 24);
	add_str(cells, b.p);
	buf_free(&b);
	add_str(cells, agestr);
	add_str(cells, json_str(json_obj(st, "nodeInfo"), "kubeletVersion"));
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "addresses"))
		if (json_str(c, "type") && !strcmp(json_str(c, "type"), "InternalIP"))
			buf_addf(&b, "%s%s", b.len ? "," : "", json_str(c, "address"));
	add_str(cells, b.p);
	buf_free(&b);
}

static void eps_cells(const cJSON *obj, cJSON *cells)
{
	const cJSON *e, *a;
	struct buf b = { 0 };
	int n = 0, more = 0;

	add_str(cells, json_str(obj, "addressType"));
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(obj, "ports"))
		buf_addf(&b, "%s%d", b.len ? "," : "",
			 cJSON_IsNumber(cJSON_GetObjectItem(e, "port")) ? cJSON_GetObjectItem(e, "port")->valueint : 0);
	add_str(cells, b.p);
	buf_free(&b);
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(obj, "endpoints"))
		cJSON_ArrayForEach(a, cJSON_GetObjectItem(e, "addresses")) {
			if (n < 3 && cJSON_IsString(a))
				buf_addf(&b, "%s%s", b.len ? "," : "", a->valuestring);
			else
				more++;
			n++;
		}
	if (more)
		buf_addf(&b, " + %d more...", more);
	add_str(cells, b.p);
	buf_free(&b);
}

static cJSON *row_for(const struct resource *res, const cJSON *obj, const char *include)
{
	cJSON *row = cJSON_CreateObject(), *cells = cJSON_AddArrayToObject(row, "cells");
	const cJSON *meta = json_obj(obj, "metadata");
	char agestr[32];

	age(obj, agestr, sizeof(agestr));
	add_str(cells, json_str(meta, "name"));
	if (!strcmp(res->kind, "Namespace")) {
		add_str(cells, json_str(json_obj(obj, "status"), "phase"));
		add_str(cells, agestr);
	} else if (!strcmp(res->kind, "Service")) {
		service_cells(obj, cells);
		add_str(cells, agestr);
		selector_cell(obj, cells);
	} else if (!strcmp(res->kind, "Pod")) {
		pod_cells(obj, cells, agestr);
	} else if (!strcmp(res->kind, "Node")) {
		node_cells(obj, cells, agestr);
	} else if (!strcmp(res->kind, "ConfigMap")) {
		cJSON_AddItemToArray(cells, cJSON_CreateNumber(cJSON_GetArraySize(json_obj(obj, "data")) +
							       cJSON_GetArraySize(json_obj(obj, "binaryData"))));
		add_str(cells, agestr);
	} else if (!strcmp(res->kind, "Secret")) {
		add_str(cells, json_str(obj, "type"));
		cJSON_AddItemToArray(cells, cJSON_CreateNumber(cJSON_GetArraySize(json_obj(obj, "data"))));
		add_str(cells, agestr);
	} else {
		eps_cells(obj, cells);
		add_str(cells, agestr);
	}
	if (include && !strcmp(include, "Object")) {
		cJSON_AddItemToObject(row, "object", cJSON_Duplicate(obj, 1));
	} else if (!include || strcmp(include, "None")) {
		cJSON *pom = cJSON_AddObjectToObject(row, "object");

		cJSON_AddStringToObject(pom, "kind", "PartialObjectMetadata");
		cJSON_AddStringToObject(pom, "apiVersion", "meta.k8s.io/v1");
		cJSON_AddItemToObject(pom, "metadata", cJSON_Duplicate(meta, 1));
	}
	return row;
}

static bool wants_table(struct req *r, const char **ctype)
{
	const char *acc = req_header(r, "Accept");
	const char *p = acc ? strstr(acc, "as=Table") : NULL;

	if (!p || !strstr(acc, "g=meta.k8s.io"))
		return false;
	*ctype = "application/json;as=Table;v=v1;g=meta.k8s.io";
	return true;
}

static cJSON *table_new(const struct resource *res, const cJSON *lmeta)
{
	cJSON *t = cJSON_CreateObject(), *defs;

	cJSON_AddStringToObject(t, "kind", "Table");
	cJSON_AddStringToObject(t, "apiVersion", "meta.k8s.io/v1");
	cJSON_AddItemToObject(t, "metadata", lmeta ? cJSON_Duplicate(lmeta, 1) : cJSON_CreateObject());
	defs = cJSON_AddArrayToObject(t, "columnDefinitions");
	for (const struct column *c = columns_for(res); c->name; c++) {
		cJSON *d = cJSON_CreateObject();

		cJSON_AddStringToObject(d, "name", c->name);
		cJSON_AddStringToObject(d, "type", c->type);
		cJSON_AddStringToObject(d, "format", c->format);
		cJSON_AddStringToObject(d, "description", "");
		cJSON_AddNumberToObject(d, "priority", c->priority);
		cJSON_AddItemToArray(defs, d);
	}
	cJSON_AddArrayToObject(t, "rows");
	return t;
}

cJSON *table_for_object(const struct resource *res, const cJSON *obj, const char *include)
{
	cJSON *t = table_new(res, NULL);

	cJSON_AddItemToArray(cJSON_GetObjectItem(t, "rows"), row_for(res, obj, include));
	return t;
}

enum MHD_Result reply_list(struct req *r, const struct resource *res, cJSON *list)
{
	const char *ctype;
	const cJSON *it;
	cJSON *t;

	if (!wants_table(r, &ctype))
		return reply_json(r, 200, list);
	t = table_new(res, json_obj(list, "metadata"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
		cJSON_AddItemToArray(cJSON_GetObjectItem(t, "rows"),
				     row_for(res, it, req_query(r, "includeObject")));
	cJSON_Delete(list);
	return reply_json_ctype(r, 200, t, ctype);
}

enum MHD_Result reply_object(struct req *r, const struct resource *res, unsigned code, cJSON *obj)
{
	const char *ctype;
	cJSON *t;

	if (!wants_table(r, &ctype))
		return reply_json(r, code, obj);
	t = table_for_object(res, obj, req_query(r, "includeObject"));
	cJSON_Delete(obj);
	return reply_json_ctype(r, code, t, ctype);
}

bool table_wanted(struct req *r)
{
	const char *ctype;

	return wants_table(r, &ctype);
}
