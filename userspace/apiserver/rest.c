/* rest.c: the REST verbs on resources (get, list, create, update, patch,
 * delete, deletecollection) and the request path grammar kube-apiserver
 * uses; watch requests are handed to watch.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "alloc.h"
#include "apiserver.h"
#include "http.h"
#include "kinds.h"
#include "log.h"
#include "patch.h"
#include "jsonbody.h"
#include "proto.h"
#include "yamlbody.h"
#include "selector.h"
#include "status.h"
#include "util.h"
#include "rest.h"
#include "field_schema.h"

struct target {
	const struct resource *res;
	const char *ns;		/* NULL: cluster-scoped, or all namespaces */
	const char *name;
	const char *sub;	/* "status" or NULL */
};

int object_key(const struct apiserver *as, const struct resource *res,
	       const char *ns, const char *name, char *out, size_t outlen)
{
	int n;

	if (res->namespaced)
		n = snprintf(out, outlen, "%s/%s/%s/%s", as->prefix, res->plural,
			     ns ? ns : "", name ? name : "");
	else
		n = snprintf(out, outlen, "%s/%s/%s", as->prefix, res->plural, name ? name : "");
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static void set_rv(cJSON *obj, int64_t rev)
{
	char s[32];

	snprintf(s, sizeof(s), "%lld", (long long)rev);
	json_set_str(json_ensure_obj(obj, "metadata"), "resourceVersion", s);
}

static bool encrypted_kind(const struct resource *res)
{
	return !strcmp(res->plural, "secrets");
}

cJSON *object_decode(const struct apiserver *as, const struct resource *res,
		     const char *value, size_t len, int64_t rev)
{
	char *plain = NULL;
	size_t plen;
	cJSON *obj;

	if (len > 8 && !memcmp(value, "k8s:enc:", 8)) {
		if (crypt_open(as, value, len, &plain, &plen)) {
			pr_warn("decrypt %s value: no usable key", res->plural);
			return NULL;
		}
		value = plain;
	}
	obj = cJSON_Parse(value);
	free(plain);
	if (obj && rev)
		set_rv(obj, rev);
	return obj;
}

static int object_encode(const struct apiserver *as, const struct resource *res,
			 const cJSON *obj, char **out, size_t *len)
{
	cJSON *c = cJSON_Duplicate(obj, 1);
	char *text;
	int err = 0;

	if (!c)
		return -ENOMEM;
	cJSON_DeleteItemFromObject(json_ensure_obj(c, "metadata"), "resourceVersion");
	text = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	if (!text)
		return -ENOMEM;
	if (as->enc && encrypted_kind(res)) {
		err = crypt_seal(as, text, strlen(text), out, len);
		free(text);
		return err;
	}
	*out = text;
	*len = strlen(text);
	return 0;
}

static enum MHD_Result not_found(struct req *r, const struct resource *res, const char *name)
{
	cJSON *st = status_new(404, "NotFound", "%s%s%s \"%s\" not found", res->plural,
			       *res->group ? "." : "", res->group, name);

	status_details(st, name, res->group, res->plural);
	return reply_status(r, st);
}

static enum MHD_Result bad_request(struct req *r, const char *msg)
{
	return reply_status(r, status_new(400, "BadRequest", "%s", msg));
}

static enum MHD_Result internal_error(struct req *r, const char *what, int err)
{
	pr_warn("%s %s: %s: %s", r->method, r->url, what, strerror(-err));
	return reply_status(r, status_new(500, "InternalError",
					  "Internal error occurred: %s: %s", what, strerror(-err)));
}

static enum MHD_Result conflict(struct req *r, const struct resource *res, const char *name,
				const char *why)
{
	cJSON *st = status_new(409, "Conflict", "Operation cannot be fulfilled on %s%s%s \"%s\": %s",
			       res->plural, *res->group ? "." : "", res->group, name, why);

	status_details(st, name, res->group, res->plural);
	return reply_status(r, st);
}

static bool dry_run(struct req *r)
{
	const char *d = req_query(r, "dryRun");

	return d && !strcmp(d, "All");
}

/* Parses the request body as a JSON object; answers 400 itself on error. */
static cJSON *parse_body(struct req *r, enum MHD_Result *ret)
{
	const char *ct = req_header(r, "Content-Type");
	char err[300];
	cJSON *obj;

	if (ct && strstr(ct, "application/vnd.kubernetes.protobuf")) {
		int rc = proto_decode(r->body.p ? r->body.p : "", r->body.len, &obj, err, sizeof(err));

		if (rc == -ENOTSUP) {
			*ret = reply_status(r, status_new(415, "UnsupportedMediaType", "%s", err));
			return NULL;
		}
		if (rc || json_tree_check(obj, err, sizeof(err))) {
			if (!rc)
				cJSON_Delete(obj);
			*ret = bad_request(r, err);
			return NULL;
		}
		return obj;
	}
	if (ct && (!strncmp(ct, "application/yaml", 16) || !strncmp(ct, "application/x-yaml", 18))) {
		if (yaml_body_parse(r->body.p ? r->body.p : "", r->body.len, r->as->max_body, &obj, err, sizeof(err))) {
			*ret = bad_request(r, err);
			return NULL;
		}
		if (json_tree_check(obj, err, sizeof(err))) {
			cJSON_Delete(obj);
			*ret = bad_request(r, err);
			return NULL;
		}
		return obj;
	}
	if (ct && (strstr(ct, "yaml") || strstr(ct, "protobuf") || strstr(ct, "cbor"))) {
		*ret = reply_status(r, status_new(415, "UnsupportedMediaType",
			"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"));
		return NULL;
	}
	obj = json_body_parse(r->body.p ? r->body.p : "", r->body.len, err, sizeof(err));
	if (!obj) {
		char msg[400];

		snprintf(msg, sizeof(msg), "couldn't get version/kind; json parse error: %s", err);
		*ret = bad_request(r, msg);
		return NULL;
	}
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		*ret = bad_request(r, "couldn't get version/kind; json parse error: expected a JSON object");
		return NULL;
	}
	return obj;
}

/* Checks apiVersion/kind of a body against the resource; fills them in. */
static int check_type(struct req *r, const struct target *t, cJSON *obj, enum MHD_Result *ret)
{
	const char *av = json_str(obj, "apiVersion"), *kind = json_str(obj, "kind");
	char msg[300];

	if (av && strcmp(av, t->res->api_version)) {
		snprintf(msg, sizeof(msg), "the API version in the data (%s) does not match the expected API version (%s)",
			 av, t->res->api_version);
		*ret = bad_request(r, msg);
		return -EINVAL;
	}
	if (kind && strcmp(kind, t->res->kind)) {
		snprintf(msg, sizeof(msg), "the kind in the data (%s) does not match the expected kind (%s)",
			 kind, t->res->kind);
		*ret = bad_request(r, msg);
		return -EINVAL;
	}
	json_set_str(obj, "apiVersion", t->res->api_version);
	json_set_str(obj, "kind", t->res->kind);
	return 0;
}

/* Collects unknown fields as kube-apiserver words them, for Strict's error. */
struct unknown_fields {
	char msg[1536];
	size_t n;
};

static void unknown_to_msg(const char *path, void *arg)
{
	struct unknown_fields *u = arg;
	size_t used = strlen(u->msg);

	if (used < sizeof(u->msg))
		snprintf(u->msg + used, sizeof(u->msg) - used, "%sunknown field \"%s\"", u->n++ ? ", " : "", path);
}

static void unknown_to_warning(const char *path, void *arg)
{
	char w[600];

	snprintf(w, sizeof(w), "unknown field \"%s\"", path);
	req_warn(arg, w);
}

/* fieldValidation: unknown fields of obj (as sent, or as patched) are
 * warned about (Warn, the default), rejected (Strict) or ignored. Returns 0,
 * or -EINVAL with *st the 400 Status kube-apiserver would send. */
static int check_fields(struct req *r, const struct target *t, const cJSON *obj, cJSON **st)
{
	int mode = field_validation_parse(req_query(r, "fieldValidation"));
	struct unknown_fields u = { "", 0 };

	r->warnings[0] = 0;
	if (mode < 0) {
		*st = status_new(400, "BadRequest",
				 "fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", got \"%s\"",
				 req_query(r, "fieldValidation"));
		return -EINVAL;
	}
	if (mode == FV_WARN)
		field_schema_unknown(t->res->group, t->res->kind, obj, unknown_to_warning, r);
	if (mode != FV_STRICT || !field_schema_unknown(t->res->group, t->res->kind, obj, unknown_to_msg, &u))
		return 0;
	*st = status_new(400, "BadRequest", "%s in version \"%s\" cannot be handled as a %s: strict decoding error: %s",
			 t->res->kind, t->res->version, t->res->kind, u.msg);
	return -EINVAL;
}

static int namespace_exists(struct apiserver *as, const char *ns)
{
	const struct resource *nsr = resource_find("", "v1", "namespaces");
	struct kv kv = { 0 };
	char key[1024];
	int err;

	object_key(as, nsr, NULL, ns, key, sizeof(key));
	err = as->store->ops->get(as->store, key, &kv);
	kv_free(&kv);
	return err;
}

/* Builds and runs the transaction for one object write plus its claims. */
static int write_txn(struct apiserver *as, const char *key, const char *val, size_t len,
		     int64_t expect, bool del, const struct claims *c, int64_t *rev, size_t *failed)
{
	struct txn_op ops[1 + 2 * ALLOC_MAX];
	size_t n = 0;

	ops[n++] = (struct txn_op){ del ? TXN_DELETE : TXN_PUT, key, val, len, expect };
	for (int i = 0; c && i < c->nput; i++)
		ops[n++] = (struct txn_op){ TXN_PUT, c->put[i].key, c->owner, strlen(c->owner), REV_ABSENT };
	for (int i = 0; c && i < c->ndel; i++)
		ops[n++] = (struct txn_op){ TXN_DELETE, c->del[i], NULL, 0, REV_ANY };
	*failed = 0;
	return as->store->ops->txn(as->store, ops, n, rev, failed);
}

/* 422 for a claim someone else holds. */
static cJSON *claim_taken(const struct claim *cl, const char *name)
{
	struct ferrs e = { 0 };
	cJSON *v, *st;

	if (strstr(cl->field, "odePort")) {	/* nodePort, healthCheckNodePort */
		v = cJSON_CreateNumber(atoi(cl->value));
		ferr_invalid(&e, cl->field, v, "provided port is already allocated");
	} else {
		v = cJSON_CreateString(cl->value);
		ferr_invalid(&e, cl->field, v, "failed to allocate IP %s: provided IP is already allocated",
			     cl->value);
	}
	st = status_invalid("", "Service", name, &e);
	cJSON_Delete(v);
	ferrs_free(&e);
	return st;
}

static void gen_name(cJSON *meta)
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	const char *gn = json_str(meta, "generateName");
	unsigned char rnd[5];
	char name[300];
	size_t n;

	if (!gn || json_str(meta, "name"))
		return;
	random_bytes(rnd, sizeof(rnd));
	n = snprintf(name, sizeof(name) - 6, "%.57s", gn);
	for (int i = 0; i < 5; i++)
		name[n + i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	name[n + 5] = 0;
	json_set_str(meta, "name", name);
}

static enum MHD_Result handle_create(struct req *r, const struct target *t)
{
	struct apiserver *as = r->as;
	enum MHD_Result ret;
	cJSON *obj = parse_body(r, &ret), *meta, *fst = NULL;
	struct ferrs e = { 0 };
	const char *name, *ons;
	char uid[37], ts[32], key[512];
	int err;

	if (!obj)
		return ret;
	if (check_type(r, t, obj, &ret))
		goto out_ret;
	if (check_fields(r, t, obj, &fst)) {
		ret = reply_status(r, fst);
		goto out_ret;
	}
	meta = json_ensure_obj(obj, "metadata");
	gen_name(meta);
	ons = json_str(meta, "namespace");
	if (t->res->namespaced) {
		if (ons && *ons && strcmp(ons, t->ns)) {
			ret = bad_request(r, "the namespace of the provided object does not match the namespace sent on the request");
			goto out_ret;
		}
		json_set_str(meta, "namespace", t->ns);
	} else {
		cJSON_DeleteItemFromObject(meta, "namespace");
	}
	name = json_str(meta, "name");
	if (!name || !*name) {
		ferr_required(&e, "metadata.name");
		ret = reply_status(r, status_invalid(t->res->group, t->res->kind, "", &e));
		goto out_ret;
	}
	if (t->res->namespaced && namespace_exists(as, t->ns)) {
		const struct resource *nsr = resource_find("", "v1", "namespaces");

		ret = not_found(r, nsr, t->ns);
		goto out_ret;
	}
	uuid_v4(uid);
	now_rfc3339(ts);
	json_set_str(meta, "uid", uid);
	json_set_str(meta, "creationTimestamp", ts);
	cJSON_DeleteItemFromObject(meta, "resourceVersion");
	cJSON_DeleteItemFromObject(meta, "deletionTimestamp");
	cJSON_DeleteItemFromObject(meta, "deletionGracePeriodSeconds");
	cJSON_DeleteItemFromObject(meta, "selfLink");
	cJSON_DeleteItemFromObject(meta, "managedFields");
	if (t->res->has_spec)
		json_set(meta, "generation", cJSON_CreateNumber(1));
	if (!strcmp(t->res->kind, "Secret"))
		secret_fold_string_data(obj);
	kind_prepare_create(t->res, obj);
	kind_default(t->res, obj);
	kind_validate(as, t->res, obj, NULL, &e);
	if (e.n) {
		ret = reply_status(r, status_invalid(t->res->group, t->res->kind, name, &e));
		goto out_ret;
	}
	object_key(as, t->res, t->ns, name, key, sizeof(key));

	for (int attempt = 0; attempt < 16; attempt++) {
		struct claims c = { 0 };
		cJSON *try = cJSON_Duplicate(obj, 1), *st = NULL;
		char *val = NULL;
		size_t len, failed;
		int64_t rev;

		snprintf(c.owner, sizeof(c.owner), "%s/%s", t->ns ? t->ns : "", name);
		c.optimistic = attempt == 0 && !dry_run(r);
		if (!strcmp(t->res->kind, "Service")) {
			err = service_allocate(as, try, NULL, &c, &st);
			if (err) {
				cJSON_Delete(try);
				ret = st ? reply_status(r, st) : internal_error(r, "allocate service addresses", err);
				goto out_ret;
			}
		}
		err = object_encode(as, t->res, try, &val, &len);
		if (!err && dry_run(r)) {
			free(val);
			ret = reply_object(r, t->res, 201, try);
			goto out_ret;
		}
		if (!err)
			err = write_txn(as, key, val, len, REV_ABSENT, false, &c, &rev, &failed);
		free(val);
		if (!err) {
			set_rv(try, rev);
			ret = reply_object(r, t->res, 201, try);
			goto out_ret;
		}
		if (err == -EEXIST && failed == 0) {
			cJSON_Delete(try);
			st = status_new(409, "AlreadyExists", "%s%s%s \"%s\" already exists", t->res->plural,
					*t->res->group ? "." : "", t->res->group, name);
			status_details(st, name, t->res->group, t->res->plural);
			ret = reply_status(r, st);
			goto out_ret;
		}
		if (err == -EEXIST && failed >= 1 && (int)failed - 1 < c.nput) {
			const struct claim *cl = &c.put[failed - 1];

			cJSON_Delete(try);
			if (cl->dynamic)
				continue;	/* lost a race for a value we picked: pick again */
			ret = reply_status(r, claim_taken(cl, name));
			goto out_ret;
		}
		cJSON_Delete(try);
		ret = internal_error(r, "store write", err);
		goto out_ret;
	}
	ret = internal_error(r, "allocate service addresses (contention)", -EAGAIN);
out_ret:
	ferrs_free(&e);
	cJSON_Delete(obj);
	return ret;
}

static enum MHD_Result handle_get(struct req *r, const struct target *t)
{
	struct kv kv = { 0 };
	char key[1024];
	cJSON *obj;
	int err;

	object_key(r->as, t->res, t->ns, t->name, key, sizeof(key));
	err = r->as->store->ops->get(r->as->store, key, &kv);
	if (err == -ENOENT)
		return not_found(r, t->res, t->name);
	if (err)
		return internal_error(r, "store read", err);
	obj = object_decode(r->as, t->res, kv.value, kv.value_len, kv.mod_rev);
	kv_free(&kv);
	if (!obj)
		return internal_error(r, "decode stored object", -EIO);
	return reply_object(r, t->res, 200, obj);
}

static bool same_json(const cJSON *a, const cJSON *b)
{
	return cJSON_Compare(a, b, 1);
}

static bool has_finalizers(const cJSON *obj)
{
	return cJSON_GetArraySize(cJSON_GetObjectItem(json_obj(obj, "metadata"), "finalizers")) > 0;
}

/* Deleted (deletionTimestamp), no finalizers left, no grace period running. */
static bool deleting_done(const cJSON *obj)
{
	const cJSON *meta = json_obj(obj, "metadata");
	const cJSON *g = cJSON_GetObjectItem(meta, "deletionGracePeriodSeconds");

	return json_str(meta, "deletionTimestamp") && !has_finalizers(obj) &&
	       !(cJSON_IsNumber(g) && g->valuedouble > 0);
}

/*
 * One attempt at writing `in` over the stored kv. Returns 0 with *out set,
 * -ESTALE when the object changed underneath (caller retries or answers
 * 409), -EAGAIN to retry an allocation race, or another -errno with a
 * Status in *st.
 */
static int update_once(struct req *r, const struct target *t, const cJSON *in,
		       const struct kv *kv, cJSON **out, cJSON **st)
{
	struct apiserver *as = r->as;
	cJSON *old = object_decode(as, t->res, kv->value, kv->value_len, kv->mod_rev);
	cJSON *obj = NULL, *meta, *ometa;
	const char *rv = json_str(json_obj(in, "metadata"), "resourceVersion");
	const char *name = t->name;
	struct ferrs e = { 0 };
	struct claims c = { 0 };
	size_t len, failed;
	char *val = NULL;
	int64_t rev;
	int err;

	if (!old) {
		*st = status_new(500, "InternalError", "Internal error occurred: stored object %s is corrupt", kv->key);
		return -EIO;
	}
	if (rv && *rv && strtoll(rv, NULL, 10) != kv->mod_rev) {
		err = -ESTALE;
		goto out;
	}
	ometa = json_obj(old, "metadata");
	if (t->sub) {
		/* status: everything but status comes from the stored object */
		cJSON *ns = cJSON_GetObjectItem(in, "status");

		obj = cJSON_Duplicate(old, 1);
		if (ns)
			json_set(obj, "status", cJSON_Duplicate(ns, 1));
		else
			cJSON_DeleteItemFromObject(obj, "status");
	} else {
		obj = cJSON_Duplicate(in, 1);
		if (t->res->has_status) {
			cJSON *os = cJSON_GetObjectItem(old, "status");

			if (os)
				json_set(obj, "status", cJSON_Duplicate(os, 1));
			else
				cJSON_DeleteItemFromObject(obj, "status");
		}
	}
	json_set_str(obj, "apiVersion", t->res->api_version);
	json_set_str(obj, "kind", t->res->kind);
	meta = json_ensure_obj(obj, "metadata");
	json_set_str(meta, "name", name);
	if (t->res->namespaced)
		json_set_str(meta, "namespace", t->ns);
	else
		cJSON_DeleteItemFromObject(meta, "namespace");
	for (const char *const *f = (const char *const[]){ "uid", "creationTimestamp", "generation",
				"deletionTimestamp", "deletionGracePeriodSeconds", NULL }; *f; f++) {
		cJSON *v = cJSON_GetObjectItem(ometa, *f);

		if (v)
			json_set(meta, *f, cJSON_Duplicate(v, 1));
		else
			cJSON_DeleteItemFromObject(meta, *f);
	}
	cJSON_DeleteItemFromObject(meta, "managedFields");
	cJSON_DeleteItemFromObject(meta, "selfLink");
	if (!strcmp(t->res->kind, "Secret"))
		secret_fold_string_data(obj);
	if (!strcmp(t->res->kind, "Service") && !t->sub)
		service_drop_type_fields(obj, old);
	kind_default(t->res, obj);
	if (t->res->has_spec && !same_json(cJSON_GetObjectItem(obj, "spec"), cJSON_GetObjectItem(old, "spec"))) {
		const cJSON *g = cJSON_GetObjectItem(ometa, "generation");

		json_set(meta, "generation", cJSON_CreateNumber((cJSON_IsNumber(g) ? g->valuedouble : 0) + 1));
	}
	kind_validate(as, t->res, obj, old, &e);
	if (e.n) {
		*st = status_invalid(t->res->group, t->res->kind, name, &e);
		err = -EINVAL;
		goto out;
	}
	if (!strcmp(t->res->kind, "Service")) {
		snprintf(c.owner, sizeof(c.owner), "%s/%s", t->ns ? t->ns : "", name);
		err = service_allocate(as, obj, old, &c, st);
		if (err) {
			if (!*st)
				*st = status_new(500, "InternalError", "Internal error occurred: allocate service addresses: %s", strerror(-err));
			goto out;
		}
	}
	json_set_str(meta, "resourceVersion", json_str(ometa, "resourceVersion"));
	if (same_json(obj, old) || dry_run(r)) {
		/* No change: kube-apiserver answers without a write or a new revision. */
		*out = obj;
		obj = NULL;
		err = 0;
		goto out;
	}
	if (deleting_done(obj)) {
		/* the last finalizer went away from a deleted object: remove it */
		struct claims rel = { 0 };

		if (!strcmp(t->res->kind, "Service"))
			service_releases(as, old, &rel);
		err = write_txn(as, kv->key, NULL, 0, kv->mod_rev, true, &rel, &rev, &failed);
	} else {
		err = object_encode(as, t->res, obj, &val, &len);
		if (!err && len > as->max_body) {
			/* a patch may grow an object past what a body may carry */
			free(val);
			*st = status_new(413, "RequestEntityTooLarge", "Request entity too large: limit is %zu",
					 as->max_body);
			err = -E2BIG;
			goto out;
		}
		if (!err)
			err = write_txn(as, kv->key, val, len, kv->mod_rev, false, &c, &rev, &failed);
		free(val);
	}
	if (!err) {
		set_rv(obj, rev);
		*out = obj;
		obj = NULL;
	} else if (err == -ESTALE || (err == -ENOENT && failed == 0)) {
		err = -ESTALE;
	} else if (err == -EEXIST && failed >= 1 && (int)failed - 1 < c.nput) {
		if (c.put[failed - 1].dynamic) {
			err = -EAGAIN;
		} else {
			*st = claim_taken(&c.put[failed - 1], name);
			err = -EINVAL;
		}
	} else {
		*st = status_new(500, "InternalError", "Internal error occurred: store write: %s", strerror(-err));
	}
out:
	ferrs_free(&e);
	cJSON_Delete(obj);
	cJSON_Delete(old);
	return err;
}

/* The answer to an update or patch once update_once() gave up or succeeded. */
static enum MHD_Result reply_updated(struct req *r, const struct target *t, int err, cJSON *out, cJSON *st)
{
	if (!err)
		return reply_object(r, t->res, 200, out);
	if (err == -ESTALE || err == -EAGAIN)
		return conflict(r, t->res, t->name,
				"the object has been modified; please apply your changes to the latest version and try again");
	return reply_status(r, st);
}

static enum MHD_Result handle_update(struct req *r, const struct target *t)
{
	enum MHD_Result ret;
	cJSON *in = parse_body(r, &ret), *out = NULL, *st = NULL;
	const char *bname, *rv;
	char key[1024];
	int err = -ESTALE;

	if (!in)
		return ret;
	if (check_type(r, t, in, &ret))
		goto done;
	if (check_fields(r, t, in, &st)) {
		ret = reply_status(r, st);
		goto done;
	}
	bname = json_str(json_obj(in, "metadata"), "name");
	if (bname && strcmp(bname, t->name)) {
		char msg[600];

		snprintf(msg, sizeof(msg), "the name of the object (%s) does not match the name on the URL (%s)",
			 bname, t->name);
		ret = bad_request(r, msg);
		goto done;
	}
	rv = json_str(json_obj(in, "metadata"), "resourceVersion");
	object_key(r->as, t->res, t->ns, t->name, key, sizeof(key));
	for (int attempt = 0; attempt < 16; attempt++) {
		struct kv kv = { 0 };

		err = r->as->store->ops->get(r->as->store, key, &kv);
		if (err == -ENOENT) {
			ret = not_found(r, t->res, t->name);
			goto done;
		}
		if (err) {
			ret = internal_error(r, "store read", err);
			goto done;
		}
		err = update_once(r, t, in, &kv, &out, &st);
		kv_free(&kv);
		if (err == -EAGAIN || (err == -ESTALE && !(rv && *rv)))
			continue;
		break;
	}
	ret = reply_updated(r, t, err, out, st);
done:
	cJSON_Delete(in);
	return ret;
}

static enum MHD_Result handle_patch(struct req *r, const struct target *t)
{
	const char *ct = req_header(r, "Content-Type");
	enum { P_MERGE, P_SMP, P_JSON } kind;
	cJSON *patch, *out = NULL, *st = NULL;
	enum MHD_Result ret;
	char key[1024], errbuf[512];
	int err = -ESTALE;
	bool rv_given;

	if (!ct)
		ct = "";
	if (!strncmp(ct, "application/merge-patch+json", 28))
		kind = P_MERGE;
	else if (!strncmp(ct, "application/strategic-merge-patch+json", 38))
		kind = P_SMP;
	else if (!strncmp(ct, "application/json-patch+json", 27))
		kind = P_JSON;
	else
		return reply_status(r, status_new(415, "UnsupportedMediaType",
			"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"));
	patch = json_body_parse(r->body.p ? r->body.p : "", r->body.len, errbuf, sizeof(errbuf));
	if (!patch) {
		char msg[600];

		snprintf(msg, sizeof(msg), "error decoding patch: %s", errbuf);
		return bad_request(r, msg);
	}
	rv_given = kind != P_JSON &&
		   json_str(json_obj(patch, "metadata"), "resourceVersion") != NULL;
	object_key(r->as, t->res, t->ns, t->name, key, sizeof(key));
	for (int attempt = 0; attempt < 16; attempt++) {
		struct kv kv = { 0 };
		cJSON *doc;

		err = r->as->store->ops->get(r->as->store, key, &kv);
		if (err == -ENOENT) {
			ret = not_found(r, t->res, t->name);
			goto done;
		}
		if (err) {
			ret = internal_error(r, "store read", err);
			goto done;
		}
		doc = object_decode(r->as, t->res, kv.value, kv.value_len, kv.mod_rev);
		if (!doc) {
			kv_free(&kv);
			ret = internal_error(r, "decode stored object", -EIO);
			goto done;
		}
		errbuf[0] = 0;
		err = kind == P_MERGE ? merge_patch_apply(&doc, patch) :
		      kind == P_SMP ? strategic_merge_patch_apply(&doc, patch, errbuf, sizeof(errbuf)) :
		      json_patch_apply(&doc, patch, r->as->max_body, errbuf, sizeof(errbuf));
		if (err == -E2BIG) {
			kv_free(&kv);
			cJSON_Delete(doc);
			ret = reply_status(r, status_new(413, "RequestEntityTooLarge",
							 "Request entity too large: %s", errbuf));
			goto done;
		}
		if (err || !cJSON_IsObject(doc)) {
			char msg[700];

			kv_free(&kv);
			cJSON_Delete(doc);
			snprintf(msg, sizeof(msg), "the server rejected our request due to an error in our request: %s",
				 *errbuf ? errbuf : "patch does not produce an object");
			ret = reply_status(r, status_new(422, "Invalid", "%s", msg));
			goto done;
		}
		if (check_fields(r, t, doc, &st)) {
			kv_free(&kv);
			cJSON_Delete(doc);
			ret = reply_status(r, st);
			goto done;
		}
		if (kind == P_JSON) {
			const char *prv = json_str(json_obj(doc, "metadata"), "resourceVersion");
			char cur[32];

			snprintf(cur, sizeof(cur), "%lld", (long long)kv.mod_rev);
			rv_given = prv && strcmp(prv, cur);
		}
		err = update_once(r, t, doc, &kv, &out, &st);
		cJSON_Delete(doc);
		kv_free(&kv);
		if (err == -EAGAIN || (err == -ESTALE && !rv_given))
			continue;
		break;
	}
	ret = reply_updated(r, t, err, out, st);
done:
	cJSON_Delete(patch);
	return ret;
}

/* Deletes one stored object with its allocations. 0, -ESTALE, -ENOENT, ... */
static int delete_kv(struct apiserver *as, const struct resource *res, const struct kv *kv,
		     const cJSON *obj, int64_t *rev)
{
	struct claims c = { 0 };
	size_t failed;

	if (!strcmp(res->kind, "Service"))
		service_releases(as, obj, &c);
	return write_txn(as, kv->key, NULL, 0, kv->mod_rev, true, &c, rev, &failed);
}

/* A deleted namespace takes everything in it along, one object at a time. */
static int delete_namespace_contents(struct apiserver *as, const char *ns)
{
	for (size_t i = 0; i < n_resources; i++) {
		const struct resource *res = &resources[i];
		struct kv_list l = { 0 };
		char prefix[1024];
		int err;

		if (!res->namespaced)
			continue;
		snprintf(prefix, sizeof(prefix), "%s/%s/%s/", as->prefix, res->plural, ns);
		err = as->store->ops->range(as->store, prefix, NULL, 0, 0, &l);
		if (err)
			return err;
		for (size_t j = 0; j < l.n; j++) {
			cJSON *o = object_decode(as, res, l.items[j].value, l.items[j].value_len, 0);
			int64_t rev;

			err = delete_kv(as, res, &l.items[j], o, &rev);
			cJSON_Delete(o);
			if (err && err != -ESTALE && err != -ENOENT) {
				kv_list_free(&l);
				return err;
			}
		}
		kv_list_free(&l);
	}
	return 0;
}

/*
 * Whether a DELETE only marks the object: -1 delete now; else the grace
 * period to record. Objects with finalizers stay until the last one is
 * removed. A scheduled Pod deleted with gracePeriodSeconds > 0 stays
 * terminating until deleted again with 0 (kube's kubelet does that; there
 * is none here, so without an explicit grace period pods go at once).
 */
static int delete_grace(const struct resource *res, const cJSON *obj, const cJSON *opts)
{
	const cJSON *meta = json_obj(obj, "metadata");
	const cJSON *g = cJSON_GetObjectItem(opts, "gracePeriodSeconds");
	bool deleting = json_str(meta, "deletionTimestamp") != NULL;

	if (!strcmp(res->kind, "Pod") && cJSON_IsNumber(g) && g->valuedouble > 0 && !deleting &&
	    json_str(json_obj(obj, "spec"), "nodeName"))
		return (int)g->valuedouble;
	if (has_finalizers(obj))
		return 0;
	return -1;
}

/* Sets deletionTimestamp (now + grace) and deletionGracePeriodSeconds on
 * the stored kv with a compare-and-swap (-ESTALE: it changed). */
static int mark_kv(struct apiserver *as, const struct resource *res, const struct kv *kv,
		   int grace, cJSON **out)
{
	cJSON *stored = object_decode(as, res, kv->value, kv->value_len, kv->mod_rev), *meta;
	time_t when = time(NULL) + grace;
	char ts[32], *val = NULL;
	size_t len, failed;
	struct tm tm;
	int64_t rev;
	int err;

	if (!stored)
		return -EIO;
	gmtime_r(&when, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	meta = json_ensure_obj(stored, "metadata");
	json_set_str(meta, "deletionTimestamp", ts);
	json_set(meta, "deletionGracePeriodSeconds", cJSON_CreateNumber(grace));
	err = object_encode(as, res, stored, &val, &len);
	if (!err)
		err = write_txn(as, kv->key, val, len, kv->mod_rev, false, NULL, &rev, &failed);
	free(val);
	if (err == -ENOENT)
		err = -ESTALE;
	if (err) {
		cJSON_Delete(stored);
		return err;
	}
	set_rv(stored, rev);
	*out = stored;
	return 0;
}

static int mark_deleting(struct req *r, const struct target *t, cJSON *obj, int grace,
			 enum MHD_Result *ret)
{
	const cJSON *og = cJSON_GetObjectItem(json_obj(obj, "metadata"), "deletionGracePeriodSeconds");
	struct kv kv = { 0 };
	cJSON *out = NULL;
	char key[1024];
	int err;

	/* already marked, and no running grace period to cut short */
	if (json_str(json_obj(obj, "metadata"), "deletionTimestamp") && grace == 0 &&
	    !(cJSON_IsNumber(og) && og->valuedouble > 0)) {
		*ret = reply_object(r, t->res, 200, cJSON_Duplicate(obj, 1));
		return 0;
	}
	object_key(r->as, t->res, t->ns, t->name, key, sizeof(key));
	err = r->as->store->ops->get(r->as->store, key, &kv);
	if (err == -ENOENT) {
		*ret = not_found(r, t->res, t->name);
		return 0;
	}
	if (!err)
		err = mark_kv(r->as, t->res, &kv, grace, &out);
	kv_free(&kv);
	if (err == -ESTALE)
		return err;
	if (err) {
		*ret = internal_error(r, "mark for deletion", err);
		return 0;
	}
	*ret = reply_object(r, t->res, 200, out);
	return 0;
}

static enum MHD_Result handle_delete(struct req *r, const struct target *t)
{
	struct apiserver *as = r->as;
	cJSON *opts = NULL, *obj = NULL, *pre;
	enum MHD_Result ret;
	char key[1024], ts[32];
	int err = 0;

	if (r->body.len) {
		char err[300], msg[400];

		opts = json_body_parse(r->body.p, r->body.len, err, sizeof(err));
		if (!opts) {
			snprintf(msg, sizeof(msg), "couldn't decode DeleteOptions: %s", err);
			return bad_request(r, msg);
		}
	}
	if (!strcmp(t->res->kind, "Namespace") &&
	    (!strcmp(t->name, "default") || !strcmp(t->name, "kube-system") || !strcmp(t->name, "kube-public"))) {
		cJSON *st = status_new(403, "Forbidden", "namespaces \"%s\" is forbidden: this namespace may not be deleted",
				       t->name);

		status_details(st, t->name, "", "namespaces");
		cJSON_Delete(opts);
		return reply_status(r, st);
	}
	object_key(as, t->res, t->ns, t->name, key, sizeof(key));
	for (int attempt = 0; attempt < 16; attempt++) {
		struct kv kv = { 0 };
		int64_t rev;
		int grace;

		/* the object of the attempt before, if any: every exit frees obj */
		cJSON_Delete(obj);
		obj = NULL;
		err = as->store->ops->get(as->store, key, &kv);
		if (err == -ENOENT) {
			ret = not_found(r, t->res, t->name);
			goto out;
		}
		if (err) {
			ret = internal_error(r, "store read", err);
			goto out;
		}
		obj = object_decode(as, t->res, kv.value, kv.value_len, kv.mod_rev);
		pre = json_obj(opts, "preconditions");
		if (pre && obj) {
			const char *puid = json_str(pre, "uid"), *prv = json_str(pre, "resourceVersion");
			const char *ouid = json_str(json_obj(obj, "metadata"), "uid");
			char msg[300];

			if (puid && (!ouid || strcmp(puid, ouid))) {
				snprintf(msg, sizeof(msg), "Precondition failed: UID in precondition: %s, UID in object meta: %s",
					 puid, ouid ? ouid : "");
				kv_free(&kv);
				ret = conflict(r, t->res, t->name, msg);
				goto out;
			}
			if (prv && strtoll(prv, NULL, 10) != kv.mod_rev) {
				snprintf(msg, sizeof(msg), "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %lld",
					 prv, (long long)kv.mod_rev);
				kv_free(&kv);
				ret = conflict(r, t->res, t->name, msg);
				goto out;
			}
		}
		if (dry_run(r)) {
			kv_free(&kv);
			ret = reply_object(r, t->res, 200, obj);
			obj = NULL;
			goto out;
		}
		if (obj && (grace = delete_grace(t->res, obj, opts)) >= 0) {
			/* finalizers or a pod grace period: mark, keep, answer the object */
			kv_free(&kv);
			err = mark_deleting(r, t, obj, grace, &ret);
			if (err == -ESTALE)
				continue;
			goto out;
		}
		if (!strcmp(t->res->kind, "Namespace")) {
			err = delete_namespace_contents(as, t->name);
			if (err) {
				kv_free(&kv);
				ret = internal_error(r, "delete namespace contents", err);
				goto out;
			}
		}
		err = delete_kv(as, t->res, &kv, obj, &rev);
		kv_free(&kv);
		if (err == -ESTALE || err == -ENOENT)
			continue;
		if (err) {
			ret = internal_error(r, "store delete", err);
			goto out;
		}
		if (!obj) {
			ret = reply_json(r, 200, status_new(200, "", "deleted"));
			goto out;
		}
		now_rfc3339(ts);
		if (!strcmp(t->res->kind, "Namespace")) {
			json_set_str(json_ensure_obj(obj, "status"), "phase", "Terminating");
			json_set_str(json_ensure_obj(obj, "metadata"), "deletionTimestamp", ts);
		}
		ret = reply_object(r, t->res, 200, obj);
		obj = NULL;
		goto out;
	}
	ret = conflict(r, t->res, t->name, "the object kept changing during delete");
out:
	cJSON_Delete(obj);
	cJSON_Delete(opts);
	return ret;
}

/* ---- list ---- */

int parse_selectors(struct req *r, const struct resource *res, struct list_opts *o,
			   enum MHD_Result *ret)
{
	const char *ls = req_query(r, "labelSelector"), *fs = req_query(r, "fieldSelector");
	char err[300];

	memset(o, 0, sizeof(*o));
	if (ls && *ls) {
		if (label_selector_parse(ls, &o->labels, err, sizeof(err))) {
			*ret = bad_request(r, err);
			return -EINVAL;
		}
		o->has_labels = true;
	}
	if (fs && *fs) {
		if (field_selector_parse(fs, &o->fields, err, sizeof(err))) {
			*ret = bad_request(r, err);
			selector_free(&o->labels);
			return -EINVAL;
		}
		o->has_fields = true;
		for (size_t i = 0; i < o->fields.n; i++) {
			const char *k = o->fields.r[i].key;
			bool ok = !strcmp(k, "metadata.name") || !strcmp(k, "metadata.namespace");

			for (size_t j = 0; !ok && j < sizeof(res->fields) / sizeof(res->fields[0]) && res->fields[j]; j++)
				ok = !strcmp(k, res->fields[j]);
			if (!ok) {
				snprintf(err, sizeof(err), "field label not supported: %s", k);
				*ret = bad_request(r, err);
				selector_free(&o->labels);
				selector_free(&o->fields);
				return -EINVAL;
			}
		}
	}
	return 0;
}

bool list_opts_match(const struct list_opts *o, const cJSON *obj)
{
	const cJSON *meta = json_obj(obj, "metadata");

	if (o->has_labels && !label_selector_match(&o->labels, json_obj(meta, "labels")))
		return false;
	if (o->has_fields && !field_selector_match(&o->fields, obj))
		return false;
	return true;
}

static char *make_continue(int64_t rev, const char *key)
{
	cJSON *c = cJSON_CreateObject();
	char *s, *b;

	cJSON_AddNumberToObject(c, "rv", (double)rev);
	cJSON_AddStringToObject(c, "start", key);
	s = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	if (!s)
		return NULL;
	b = b64_encode(s, strlen(s));
	free(s);
	return b;
}

static enum MHD_Result handle_list(struct req *r, const struct target *t)
{
	struct apiserver *as = r->as;
	const char *lim = req_query(r, "limit"), *cont = req_query(r, "continue");
	struct list_opts o;
	enum MHD_Result ret;
	char prefix[1024], *start = NULL, *next = NULL;
	cJSON *list, *items, *lmeta;
	size_t limit = lim ? strtoull(lim, NULL, 10) : 0, got = 0;
	int64_t rev = 0;
	int err;

	if (parse_selectors(r, t->res, &o, &ret))
		return ret;
	if (t->ns)
		snprintf(prefix, sizeof(prefix), "%s/%s/%s/", as->prefix, t->res->plural, t->ns);
	else
		snprintf(prefix, sizeof(prefix), "%s/%s/", as->prefix, t->res->plural);
	if (cont && *cont) {
		unsigned char *raw = NULL;
		size_t rawlen;
		cJSON *c = NULL;
		const char *s;

		if (!b64_decode(cont, strlen(cont), &raw, &rawlen))
			c = cJSON_Parse((char *)raw);
		free(raw);
		s = json_str(c, "start");
		if (!s || strncmp(s, prefix, strlen(prefix)) || !cJSON_IsNumber(cJSON_GetObjectItem(c, "rv"))) {
			cJSON_Delete(c);
			ret = bad_request(r, "continue key is not valid: not a continue token for this list");
			goto out;
		}
		start = strdup(s);
		rev = (int64_t)cJSON_GetObjectItem(c, "rv")->valuedouble;
		cJSON_Delete(c);
	}

	list = cJSON_CreateObject();
	cJSON_AddStringToObject(list, "kind", t->res->list_kind);
	cJSON_AddStringToObject(list, "apiVersion", t->res->api_version);
	lmeta = cJSON_AddObjectToObject(list, "metadata");
	items = cJSON_AddArrayToObject(list, "items");
	for (;;) {
		struct kv_list l = { 0 };
		size_t chunk = limit ? (limit - got) : 0;
		bool stop = false;

		if (limit && chunk < 64 && (o.has_labels || o.has_fields))
			chunk = 64;
		err = as->store->ops->range(as->store, prefix, start, chunk, rev, &l);
		if (err == -ERANGE) {
			cJSON_Delete(list);
			ret = reply_status(r, status_new(410, "Expired",
				"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results."));
			goto out;
		}
		if (err) {
			cJSON_Delete(list);
			ret = internal_error(r, "store range", err);
			goto out;
		}
		if (!rev)
			rev = l.rev;
		for (size_t i = 0; i < l.n; i++) {
			cJSON *obj;

			if (limit && got == limit) {
				next = make_continue(rev, start);
				stop = true;
				break;
			}
			free(start);
			start = strdup(l.items[i].key);
			obj = object_decode(as, t->res, l.items[i].value, l.items[i].value_len, l.items[i].mod_rev);
			if (!obj)
				continue;
			if (!list_opts_match(&o, obj)) {
				cJSON_Delete(obj);
				continue;
			}
			cJSON_AddItemToArray(items, obj);
			got++;
		}
		bool more = l.more;

		if (!stop && more && limit && got == limit)
			next = make_continue(rev, start);
		kv_list_free(&l);
		if (stop || next || !more)
			break;
	}
	{
		char rvs[32];

		snprintf(rvs, sizeof(rvs), "%lld", (long long)rev);
		cJSON_AddStringToObject(lmeta, "resourceVersion", rvs);
		if (next)
			cJSON_AddStringToObject(lmeta, "continue", next);
	}
	ret = reply_list(r, t->res, list);
out:
	free(start);
	free(next);
	selector_free(&o.labels);
	selector_free(&o.fields);
	return ret;
}

/* DELETE on a collection: every object matching the selectors, one
 * transaction each (objects with finalizers are only marked). Answers the
 * list of what was deleted or marked. */
static enum MHD_Result handle_deletecollection(struct req *r, const struct target *t)
{
	struct apiserver *as = r->as;
	struct kv_list l = { 0 };
	struct list_opts o;
	enum MHD_Result ret;
	char prefix[1024], rvs[32];
	cJSON *list, *items;
	int64_t last = 0;
	int err;

	if (!strcmp(t->res->kind, "Namespace"))
		return reply_status(r, status_new(405, "MethodNotAllowed",
			"the server does not allow this method on the requested resource (deletecollection namespaces)"));
	if (parse_selectors(r, t->res, &o, &ret))
		return ret;
	if (t->ns)
		snprintf(prefix, sizeof(prefix), "%s/%s/%s/", as->prefix, t->res->plural, t->ns);
	else
		snprintf(prefix, sizeof(prefix), "%s/%s/", as->prefix, t->res->plural);
	err = as->store->ops->range(as->store, prefix, NULL, 0, 0, &l);
	if (err) {
		ret = internal_error(r, "store range", err);
		goto out;
	}
	list = cJSON_CreateObject();
	cJSON_AddStringToObject(list, "kind", t->res->list_kind);
	cJSON_AddStringToObject(list, "apiVersion", t->res->api_version);
	cJSON_AddObjectToObject(list, "metadata");
	items = cJSON_AddArrayToObject(list, "items");
	for (size_t i = 0; i < l.n; i++) {
		cJSON *obj = object_decode(as, t->res, l.items[i].value, l.items[i].value_len,
					   l.items[i].mod_rev), *marked = NULL;
		int64_t rev = 0;

		if (!obj || !list_opts_match(&o, obj)) {
			cJSON_Delete(obj);
			continue;
		}
		if (has_finalizers(obj)) {
			err = json_str(json_obj(obj, "metadata"), "deletionTimestamp") ? 0 :
			      mark_kv(as, t->res, &l.items[i], 0, &marked);
			if (marked) {
				cJSON_Delete(obj);
				obj = marked;
			}
		} else {
			err = dry_run(r) ? 0 : delete_kv(as, t->res, &l.items[i], obj, &rev);
		}
		if (err == -ESTALE || err == -ENOENT) {
			cJSON_Delete(obj);	/* changed or gone meanwhile: not ours to report */
			continue;
		}
		if (err) {
			cJSON_Delete(obj);
			cJSON_Delete(list);
			ret = internal_error(r, "deletecollection", err);
			goto out;
		}
		if (rev > last)
			last = rev;
		cJSON_AddItemToArray(items, obj);
	}
	if (!last)
		as->store->ops->current_rev(as->store, &last);
	snprintf(rvs, sizeof(rvs), "%lld", (long long)last);
	cJSON_AddStringToObject(json_obj(list, "metadata"), "resourceVersion", rvs);
	ret = reply_json(r, 200, list);
out:
	kv_list_free(&l);
	selector_free(&o.labels);
	selector_free(&o.fields);
	return ret;
}

static enum MHD_Result path_not_found(struct req *r)
{
	cJSON *st = status_new(404, "NotFound", "the server could not find the requested resource");

	json_ensure_obj(st, "details");
	return reply_status(r, st);
}

/* Go's strconv.ParseBool, which kube-apiserver uses for query flags. */
bool query_bool(const char *v)
{
	return v && (!strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "T") || !strcmp(v, "true") ||
		     !strcmp(v, "TRUE") || !strcmp(v, "True"));
}

static enum MHD_Result method_not_allowed(struct req *r)
{
	return reply_status(r, status_new(405, "MethodNotAllowed",
					  "the server does not allow this method on the requested resource"));
}

int rest_handle(struct req *r, const char *group, const char *version, char **seg, int nseg)
{
	const struct resource *res = NULL;
	struct target t = { 0 };
	const char *m = r->method;
	bool watch = false;

	if (nseg > 0 && !strcmp(seg[0], "watch")) {
		watch = true;
		seg++;
		nseg--;
	}
	if (nseg == 0)
		return path_not_found(r);
	if (!strcmp(seg[0], "namespaces") && nseg >= 3 &&
	    (res = resource_find(group, version, seg[2])) && res->namespaced) {
		if (nseg > 5)
			return path_not_found(r);
		t.ns = seg[1];
		t.name = nseg > 3 ? seg[3] : NULL;
		t.sub = nseg > 4 ? seg[4] : NULL;
	} else {
		res = resource_find(group, version, seg[0]);
		if (!res || nseg > 3)
			return path_not_found(r);
		t.name = nseg > 1 ? seg[1] : NULL;
		t.sub = nseg > 2 ? seg[2] : NULL;
		if (res->namespaced && t.name)
			return path_not_found(r);
	}
	t.res = res;
	/* names longer than any valid one cannot exist (and keys stay bounded) */
	if ((t.name && strlen(t.name) > 253) || (t.ns && strlen(t.ns) > 63))
		return path_not_found(r);
	if (t.sub && !(res->has_status && !strcmp(t.sub, "status")))
		return path_not_found(r);
	if (t.name && !*t.name)
		t.name = NULL;

	if (!strcmp(m, "GET")) {
		if (watch || query_bool(req_query(r, "watch"))) {
			if (t.sub)
				return path_not_found(r);
			return watch_serve(r, res, t.ns, t.name);
		}
		return t.name ? handle_get(r, &t) : handle_list(r, &t);
	}
	if (watch)
		return method_not_allowed(r);
	if (!strcmp(m, "POST"))
		return t.name ? method_not_allowed(r) : handle_create(r, &t);
	if (!t.name)
		return !strcmp(m, "DELETE") ? handle_deletecollection(r, &t) : method_not_allowed(r);
	if (!strcmp(m, "PUT"))
		return handle_update(r, &t);
	if (!strcmp(m, "PATCH"))
		return handle_patch(r, &t);
	if (!strcmp(m, "DELETE") && !t.sub)
		return handle_delete(r, &t);
	return method_not_allowed(r);
}

/* ---- first start ---- */

static int bootstrap_create(struct apiserver *as, const struct resource *res, cJSON *obj)
{
	cJSON *meta = json_ensure_obj(obj, "metadata");
	const char *name = json_str(meta, "name"), *ns = json_str(meta, "namespace");
	struct claims c = { 0 };
	struct kv kv = { 0 };
	char uid[37], ts[32], key[512], *val = NULL;
	cJSON *st = NULL;
	size_t len, failed;
	int64_t rev;
	int err;

	object_key(as, res, ns, name, key, sizeof(key));
	err = as->store->ops->get(as->store, key, &kv);
	kv_free(&kv);
	if (err != -ENOENT)
		return err;
	json_set_str(obj, "apiVersion", res->api_version);
	json_set_str(obj, "kind", res->kind);
	uuid_v4(uid);
	now_rfc3339(ts);
	json_set_str(meta, "uid", uid);
	json_set_str(meta, "creationTimestamp", ts);
	if (res->has_spec)
		json_set(meta, "generation", cJSON_CreateNumber(1));
	kind_prepare_create(res, obj);
	kind_default(res, obj);
	snprintf(c.owner, sizeof(c.owner), "%s/%s", ns ? ns : "", name);
	if (!strcmp(res->kind, "Service")) {
		err = service_allocate(as, obj, NULL, &c, &st);
		if (err) {
			char *msg = st ? cJSON_PrintUnformatted(st) : NULL;

			pr_warn("bootstrap service %s/%s: %s", ns, name, msg ? msg : strerror(-err));
			free(msg);
			cJSON_Delete(st);
			return err;
		}
	}
	err = object_encode(as, res, obj, &val, &len);
	if (!err)
		err = write_txn(as, key, val, len, REV_ABSENT, false, &c, &rev, &failed);
	free(val);
	if (err == -EEXIST)
		err = 0;	/* another API server on the same etcd was first */
	else if (!err)
		pr_info("bootstrap: created %s %s%s%s", res->kind, ns ? ns : "", ns ? "/" : "", name);
	return err;
}

int rest_bootstrap(struct apiserver *as)
{
	static const char *const nss[] = { "default", "kube-system", "kube-public", "kube-node-lease" };
	const struct resource *nsr = resource_find("", "v1", "namespaces");
	const struct resource *svcr = resource_find("", "v1", "services");
	const struct resource *epsr = resource_find("discovery.k8s.io", "v1", "endpointslices");
	char buf[1024];
	cJSON *obj;
	int err;

	for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\"}}", nss[i]);
		obj = cJSON_Parse(buf);
		err = bootstrap_create(as, nsr, obj);
		cJSON_Delete(obj);
		if (err)
			return err;
	}
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\","
		 "\"labels\":{\"component\":\"apiserver\",\"provider\":\"kubernetes\"}},"
		 "\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"%u.%u.%u.%u\","
		 "\"ports\":[{\"name\":\"https\",\"port\":443,\"protocol\":\"TCP\",\"targetPort\":%d}]}}",
		 (as->svc_net + 1) >> 24, ((as->svc_net + 1) >> 16) & 255,
		 ((as->svc_net + 1) >> 8) & 255, (as->svc_net + 1) & 255, as->port);
	obj = cJSON_Parse(buf);
	err = bootstrap_create(as, svcr, obj);
	cJSON_Delete(obj);
	if (err)
		return err;
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\","
		 "\"labels\":{\"kubernetes.io/service-name\":\"kubernetes\","
		 "\"endpointslice.kubernetes.io/managed-by\":\"rota-apiserver\"}},"
		 "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"%s\"],"
		 "\"conditions\":{\"ready\":true}}],"
		 "\"ports\":[{\"name\":\"https\",\"port\":%d,\"protocol\":\"TCP\"}]}",
		 strcmp(as->bind_addr, "0.0.0.0") ? as->bind_addr : "127.0.0.1", as->port);
	obj = cJSON_Parse(buf);
	err = bootstrap_create(as, epsr, obj);
	cJSON_Delete(obj);
	return err;
}
