/* patch.c: JSON merge patch, JSON patch and strategic merge patch over cJSON
 * documents, as the PATCH verb needs them. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "patch.h"
#include "jsonbody.h"
#include "util.h"

/* ---- RFC 7386 ---- */

static cJSON *merge(cJSON *target, const cJSON *patch)
{
	const cJSON *p;

	if (!cJSON_IsObject(patch)) {
		cJSON_Delete(target);
		return cJSON_Duplicate(patch, 1);
	}
	if (!cJSON_IsObject(target)) {
		cJSON_Delete(target);
		target = cJSON_CreateObject();
	}
	cJSON_ArrayForEach(p, patch) {
		cJSON *cur;

		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
			continue;
		}
		cur = cJSON_DetachItemFromObjectCaseSensitive(target, p->string);
		cJSON_AddItemToObject(target, p->string, merge(cur, p));
	}
	return target;
}

int merge_patch_apply(cJSON **doc, const cJSON *patch)
{
	*doc = merge(*doc, patch);
	return *doc ? 0 : -ENOMEM;
}

/* ---- RFC 6902 ---- */

/* Decodes one reference token (~1 -> /, ~0 -> ~). */
static void unescape_token(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
			out[o++] = s[i + 1] == '0' ? '~' : '/';
			i++;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = 0;
}

/* An RFC 6901 array index: decimal digits, no leading zero, and small
 * enough for cJSON's int positions (a wrapped index would be negative). */
static bool parse_index(const char *t, int *idx)
{
	long long v = 0;

	if (!*t || (t[0] == '0' && t[1]))
		return false;
	for (; *t; t++) {
		if (*t < '0' || *t > '9')
			return false;
		v = v * 10 + (*t - '0');
		if (v > INT_MAX)
			return false;
	}
	*idx = (int)v;
	return true;
}

/* Resolves all but the last token of ptr: *parent and last token. */
static int resolve_parent(cJSON *doc, const char *ptr, cJSON **parent, char *last, size_t lastlen)
{
	cJSON *cur = doc;
	const char *p = ptr;
	char tok[512];

	if (*p != '/')
		return -EINVAL;
	for (;;) {
		const char *s = p + 1, *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);

		unescape_token(s, n, tok, sizeof(tok));
		if (!slash) {
			snprintf(last, lastlen, "%s", tok);
			*parent = cur;
			return 0;
		}
		if (cJSON_IsArray(cur)) {
			int i;

			if (!parse_index(tok, &i) || !(cur = cJSON_GetArrayItem(cur, i)))
				return -ENOENT;
		} else if (cJSON_IsObject(cur)) {
			if (!(cur = cJSON_GetObjectItemCaseSensitive(cur, tok)))
				return -ENOENT;
		} else {
			return -ENOENT;
		}
		p = slash;
	}
}

static cJSON *pointer_get(cJSON *doc, const char *ptr)
{
	cJSON *parent;
	char last[512];
	int i;

	if (!*ptr)
		return doc;
	if (resolve_parent(doc, ptr, &parent, last, sizeof(last)))
		return NULL;
	if (cJSON_IsArray(parent))
		return parse_index(last, &i) ? cJSON_GetArrayItem(parent, i) : NULL;
	return cJSON_IsObject(parent) ? cJSON_GetObjectItemCaseSensitive(parent, last) : NULL;
}

static cJSON *pointer_detach(cJSON *doc, const char *ptr)
{
	cJSON *parent;
	char last[512];
	int i;

	if (!*ptr || resolve_parent(doc, ptr, &parent, last, sizeof(last)))
		return NULL;
	if (cJSON_IsArray(parent))
		return parse_index(last, &i) && i < cJSON_GetArraySize(parent) ?
		       cJSON_DetachItemFromArray(parent, i) : NULL;
	return cJSON_IsObject(parent) ? cJSON_DetachItemFromObjectCaseSensitive(parent, last) : NULL;
}

/* cJSON_InsertItemInArray of libcjson 1.7.15 refuses items of parsed
 * arrays; this moves the tail instead. */
static void array_insert(cJSON *arr, int i, cJSON *val)
{
	cJSON *tail = cJSON_CreateArray();

	while (cJSON_GetArraySize(arr) > i)
		cJSON_AddItemToArray(tail, cJSON_DetachItemFromArray(arr, i));
	cJSON_AddItemToArray(arr, val);
	while (cJSON_GetArraySize(tail))
		cJSON_AddItemToArray(arr, cJSON_DetachItemFromArray(tail, 0));
	cJSON_Delete(tail);
}

static int json_depth(const cJSON *v)
{
	const cJSON *c;
	int d = 0;

	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	cJSON_ArrayForEach(c, v) {
		int cd = json_depth(c);

		if (cd > d)
			d = cd;
	}
	return d + 1;
}

/* Levels of objects and arrays above the place ptr names. */
static int pointer_depth(const char *ptr)
{
	int n = 0;

	for (; *ptr; ptr++)
		n += *ptr == '/';
	return n;
}

/* add: val is consumed on success. -E2BIG when val there would nest the
 * document deeper than JSON_MAX_DEPTH: documents stay walkable by
 * recursion (copies of copies could otherwise deepen it without bound). */
static int pointer_add(cJSON **doc, const char *ptr, cJSON *val, bool replace)
{
	cJSON *parent;
	char last[512];
	int i;

	if (pointer_depth(ptr) + json_depth(val) > JSON_MAX_DEPTH)
		return -E2BIG;

	if (!*ptr) {
		cJSON_Delete(*doc);
		*doc = val;
		return 0;
	}
	if (resolve_parent(*doc, ptr, &parent, last, sizeof(last)))
		return -ENOENT;
	if (cJSON_IsArray(parent)) {
		int n = cJSON_GetArraySize(parent);

		if (!replace && !strcmp(last, "-")) {
			cJSON_AddItemToArray(parent, val);
			return 0;
		}
		if (!parse_index(last, &i) || i > n || (replace && i >= n))
			return -ENOENT;
		if (replace)
			cJSON_ReplaceItemInArray(parent, i, val);
		else if (i == n)
			cJSON_AddItemToArray(parent, val);
		else
			array_insert(parent, i, val);
		return 0;
	}
	if (!cJSON_IsObject(parent))
		return -ENOENT;
	if (cJSON_GetObjectItemCaseSensitive(parent, last))
		cJSON_ReplaceItemInObjectCaseSensitive(parent, last, val);
	else if (replace)
		return -ENOENT;
	else
		cJSON_AddItemToObject(parent, last, val);
	return 0;
}

int json_patch_apply(cJSON **doc, const cJSON *patch, size_t copy_limit, char *errbuf, size_t errlen)
{
	size_t copied = 0;
	const cJSON *op;
	int n = 0;

	if (!cJSON_IsArray(patch)) {
		snprintf(errbuf, errlen, "json patch must be an array of operations");
		return -EINVAL;
	}
	cJSON_ArrayForEach(op, patch) {
		const cJSON *o = cJSON_GetObjectItem(op, "op"), *pa = cJSON_GetObjectItem(op, "path");
		const cJSON *from = cJSON_GetObjectItem(op, "from"), *value = cJSON_GetObjectItem(op, "value");
		const char *name = cJSON_IsString(o) ? o->valuestring : "";
		const char *path = cJSON_IsString(pa) ? pa->valuestring : NULL;
		cJSON *v = NULL;
		int err = 0;

		if (!path) {
			snprintf(errbuf, errlen, "operation %d: missing path", n);
			return -EINVAL;
		}
		if (!strcmp(name, "add") || !strcmp(name, "replace")) {
			if (!value) {
				snprintf(errbuf, errlen, "operation %d (%s %s): missing value", n, name, path);
				return -EINVAL;
			}
			v = cJSON_Duplicate(value, 1);
			err = pointer_add(doc, path, v, name[0] == 'r');
		} else if (!strcmp(name, "remove")) {
			v = pointer_detach(*doc, path);
			err = v ? 0 : -ENOENT;
			cJSON_Delete(v);
			v = NULL;
		} else if (!strcmp(name, "move") || !strcmp(name, "copy")) {
			const char *f = cJSON_IsString(from) ? from->valuestring : NULL;

			if (!f) {
				snprintf(errbuf, errlen, "operation %d (%s %s): missing from", n, name, path);
				return -EINVAL;
			}
			if (name[0] == 'c') {
				/* each copy may double the document: bound what they add up to */
				const cJSON *src = pointer_get(*doc, f);

				copied += src ? json_size(src) : 0;
				if (copied > copy_limit) {
					snprintf(errbuf, errlen, "operation %d (copy %.64s): the copies add up to more than %zu bytes",
						 n, path, copy_limit);
					return -E2BIG;
				}
				v = cJSON_Duplicate(src, 1);
			} else {
				v = pointer_detach(*doc, f);
			}
			err = v ? pointer_add(doc, path, v, false) : -ENOENT;
		} else if (!strcmp(name, "test")) {
			cJSON *cur = pointer_get(*doc, path);

			if (!cur || !value || !cJSON_Compare(cur, value, 1)) {
				snprintf(errbuf, errlen, "testing value %s failed", path);
				return -EINVAL;
			}
		} else {
			snprintf(errbuf, errlen, "operation %d: unknown op \"%s\"", n, name);
			return -EINVAL;
		}
		if (err == -E2BIG) {
			cJSON_Delete(v);
			snprintf(errbuf, errlen, "operation %d (%s %.64s): the result would nest deeper than %d levels",
				 n, name, path, JSON_MAX_DEPTH);
			return -EINVAL;
		}
		if (err) {
			cJSON_Delete(v);
			snprintf(errbuf, errlen, "%s operation does not apply: doc is missing path: \"%s\"",
				 name, path);
			return -EINVAL;
		}
		n++;
	}
	return 0;
}

/* ---- strategic merge patch ---- */

enum list_strategy { LS_REPLACE, LS_MERGE_KEY, LS_MERGE_PRIMITIVE };

struct patch_meta {
	const char *path;	/* dotted, "[]" for list elements */
	enum list_strategy strategy;
	const char *key;
};

/* patchStrategy/patchMergeKey of the Go types of the kinds served here. */
static const struct patch_meta metas[] = {
	{ "metadata.finalizers", LS_MERGE_PRIMITIVE, NULL },
	{ "metadata.ownerReferences", LS_MERGE_KEY, "uid" },
	{ "spec.ports", LS_MERGE_KEY, "port" },			/* Service */
	{ "spec.finalizers", LS_MERGE_PRIMITIVE, NULL },		/* Namespace */
	{ "spec.podCIDRs", LS_MERGE_PRIMITIVE, NULL },		/* Node */
	{ "spec.containers", LS_MERGE_KEY, "name" },
	{ "spec.initContainers", LS_MERGE_KEY, "name" },
	{ "spec.ephemeralContainers", LS_MERGE_KEY, "name" },
	{ "spec.containers[].ports", LS_MERGE_KEY, "containerPort" },
	{ "spec.initContainers[].ports", LS_MERGE_KEY, "containerPort" },
	{ "spec.containers[].env", LS_MERGE_KEY, "name" },
	{ "spec.initContainers[].env", LS_MERGE_KEY, "name" },
	{ "spec.containers[].volumeMounts", LS_MERGE_KEY, "mountPath" },
	{ "spec.initContainers[].volumeMounts", LS_MERGE_KEY, "mountPath" },
	{ "spec.containers[].volumeDevices", LS_MERGE_KEY, "devicePath" },
	{ "spec.volumes", LS_MERGE_KEY, "name" },
	{ "spec.imagePullSecrets", LS_MERGE_KEY, "name" },
	{ "spec.hostAliases", LS_MERGE_KEY, "ip" },
	{ "spec.topologySpreadConstraints", LS_MERGE_KEY, "topologyKey" },
	{ "spec.schedulingGates", LS_MERGE_KEY, "name" },
	{ "spec.resourceClaims", LS_MERGE_KEY, "name" },
	{ "status.conditions", LS_MERGE_KEY, "type" },
	{ "status.addresses", LS_MERGE_KEY, "type" },		/* Node */
	{ "status.podIPs", LS_MERGE_KEY, "ip" },
	{ "status.hostIPs", LS_MERGE_KEY, "ip" },
};

static const struct patch_meta *meta_for(const char *path)
{
	for (size_t i = 0; i < sizeof(metas) / sizeof(metas[0]); i++)
		if (!strcmp(metas[i].path, path))
			return &metas[i];
	return NULL;
}

static bool is_directive(const char *k)
{
	return k[0] == '$';
}

/* A copy of v with every $-directive removed (new elements may carry them). */
static cJSON *strip(const cJSON *v)
{
	cJSON *c = cJSON_Duplicate(v, 1), *e, *next;

	if (cJSON_IsObject(c)) {
		for (e = c->child; e; e = next) {
			next = e->next;
			if (is_directive(e->string))
				cJSON_Delete(cJSON_DetachItemViaPointer(c, e));
		}
	}
	if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
		for (e = c->child; e; e = next) {
			next = e->next;
			if (cJSON_IsObject(e) || cJSON_IsArray(e))
				cJSON_ReplaceItemViaPointer(c, e, strip(e));
		}
	}
	return c;
}

static bool same_key(const cJSON *a, const cJSON *b, const char *key)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, key);
	const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, key);

	return x && y && cJSON_Compare(x, y, 1);
}

static int smp_obj(cJSON *target, const cJSON *patch, const char *path, char *errbuf, size_t errlen);

static int smp_list(cJSON *target, const char *field, const cJSON *plist, const char *path,
		    char *errbuf, size_t errlen)
{
	const struct patch_meta *m = meta_for(path);
	cJSON *tl = cJSON_GetObjectItemCaseSensitive(target, field);
	const cJSON *pe;
	char sub[512];

	if (!m || m->strategy == LS_REPLACE || !cJSON_IsArray(tl)) {
		json_set_any:
		if (cJSON_GetObjectItemCaseSensitive(target, field))
			cJSON_ReplaceItemInObjectCaseSensitive(target, field, strip(plist));
		else
			cJSON_AddItemToObject(target, field, strip(plist));
		return 0;
	}
	/* {"$patch":"replace"} as an element: the other elements replace the list. */
	cJSON_ArrayForEach(pe, plist) {
		const cJSON *d = cJSON_GetObjectItem(pe, "$patch");

		if (cJSON_IsString(d) && !strcmp(d->valuestring, "replace")) {
			cJSON *nl = cJSON_CreateArray();
			const cJSON *x;

			cJSON_ArrayForEach(x, plist)
				if (x != pe)
					cJSON_AddItemToArray(nl, strip(x));
			cJSON_ReplaceItemInObjectCaseSensitive(target, field, nl);
			return 0;
		}
	}
	if (m->strategy == LS_MERGE_PRIMITIVE) {
		cJSON_ArrayForEach(pe, plist) {
			const cJSON *x;
			bool found = false;

			cJSON_ArrayForEach(x, tl)
				if (cJSON_Compare(x, pe, 1))
					found = true;
			if (!found)
				cJSON_AddItemToArray(tl, cJSON_Duplicate(pe, 1));
		}
		return 0;
	}
	snprintf(sub, sizeof(sub), "%s[]", path);
	cJSON_ArrayForEach(pe, plist) {
		const cJSON *d = cJSON_GetObjectItem(pe, "$patch");
		cJSON *te = NULL, *x;
		int idx = 0, found = -1;

		if (!cJSON_IsObject(pe))
			goto json_set_any;	/* a list of scalars where we expected objects */
		if (!cJSON_GetObjectItemCaseSensitive(pe, m->key)) {
			snprintf(errbuf, errlen, "map: %s does not contain declared merge key: %s",
				 path, m->key);
			return -EINVAL;
		}
		cJSON_ArrayForEach(x, tl) {
			if (same_key(x, pe, m->key)) {
				te = x;
				found = idx;
				break;
			}
			idx++;
		}
		if (cJSON_IsString(d) && !strcmp(d->valuestring, "delete")) {
			if (found >= 0)
				cJSON_DeleteItemFromArray(tl, found);
			continue;
		}
		if (te) {
			int err = smp_obj(te, pe, sub, errbuf, errlen);

			if (err)
				return err;
		} else {
			cJSON_AddItemToArray(tl, strip(pe));
		}
	}
	return 0;
}

/* Reorders target[field] so elements named in order come first, in order. */
static void set_element_order(cJSON *target, const char *field, const cJSON *order, const char *path)
{
	const struct patch_meta *m = meta_for(path);
	cJSON *tl = cJSON_GetObjectItemCaseSensitive(target, field), *nl;
	const cJSON *o;

	if (!cJSON_IsArray(tl) || !cJSON_IsArray(order))
		return;
	nl = cJSON_CreateArray();
	cJSON_ArrayForEach(o, order) {
		cJSON *x;
		int idx = 0;

		cJSON_ArrayForEach(x, tl) {
			bool match = m && m->strategy == LS_MERGE_KEY ? same_key(x, o, m->key) :
				     cJSON_Compare(x, o, 1);

			if (match) {
				cJSON_AddItemToArray(nl, cJSON_DetachItemFromArray(tl, idx));
				break;
			}
			idx++;
		}
	}
	while (cJSON_GetArraySize(tl))
		cJSON_AddItemToArray(nl, cJSON_DetachItemFromArray(tl, 0));
	cJSON_ReplaceItemInObjectCaseSensitive(target, field, nl);
}

static int smp_obj(cJSON *target, const cJSON *patch, const char *path, char *errbuf, size_t errlen)
{
	const cJSON *p, *d = cJSON_GetObjectItem(patch, "$patch");
	const cJSON *retain = cJSON_GetObjectItem(patch, "$retainKeys");
	char sub[512];
	int err;

	if (cJSON_IsString(d) && !strcmp(d->valuestring, "replace")) {
		cJSON *e;

		while ((e = target->child))
			cJSON_Delete(cJSON_DetachItemViaPointer(target, e));
		cJSON_ArrayForEach(p, patch)
			if (!is_directive(p->string))
				cJSON_AddItemToObject(target, p->string, strip(p));
		return 0;
	}
	cJSON_ArrayForEach(p, patch) {
		const char *k = p->string;
		cJSON *cur;

		if (!strncmp(k, "$deleteFromPrimitiveList/", 25)) {
			cJSON *tl = cJSON_GetObjectItemCaseSensitive(target, k + 25);
			const cJSON *x;

			if (!cJSON_IsArray(tl))
				continue;
			cJSON_ArrayForEach(x, p) {
				for (int i = cJSON_GetArraySize(tl) - 1; i >= 0; i--)
					if (cJSON_Compare(cJSON_GetArrayItem(tl, i), x, 1))
						cJSON_DeleteItemFromArray(tl, i);
			}
			continue;
		}
		if (is_directive(k))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(target, k);
			continue;
		}
		cur = cJSON_GetObjectItemCaseSensitive(target, k);
		if (cJSON_IsObject(p)) {
			const cJSON *pd = cJSON_GetObjectItem(p, "$patch");

			if (cJSON_IsString(pd) && !strcmp(pd->valuestring, "delete")) {
				cJSON_DeleteItemFromObjectCaseSensitive(target, k);
				continue;
			}
			if (!cJSON_IsObject(cur)) {
				cur = cJSON_CreateObject();
				if (cJSON_GetObjectItemCaseSensitive(target, k))
					cJSON_ReplaceItemInObjectCaseSensitive(target, k, cur);
				else
					cJSON_AddItemToObject(target, k, cur);
			}
			err = smp_obj(cur, p, sub, errbuf, errlen);
			if (err)
				return err;
		} else if (cJSON_IsArray(p)) {
			err = smp_list(target, k, p, sub, errbuf, errlen);
			if (err)
				return err;
		} else if (cur) {
			cJSON_ReplaceItemInObjectCaseSensitive(target, k, cJSON_Duplicate(p, 1));
		} else {
			cJSON_AddItemToObject(target, k, cJSON_Duplicate(p, 1));
		}
	}
	cJSON_ArrayForEach(p, patch) {
		if (!strncmp(p->string, "$setElementOrder/", 17)) {
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", p->string + 17);
			set_element_order(target, p->string + 17, p, sub);
		}
	}
	if (cJSON_IsArray(retain)) {
		cJSON *e, *next;

		for (e = target->child; e; e = next) {
			const cJSON *r;
			bool keep = false;

			next = e->next;
			cJSON_ArrayForEach(r, retain)
				if (cJSON_IsString(r) && !strcmp(r->valuestring, e->string))
					keep = true;
			if (!keep)
				cJSON_Delete(cJSON_DetachItemViaPointer(target, e));
		}
	}
	return 0;
}

int strategic_merge_patch_apply(cJSON **doc, const cJSON *patch, char *errbuf, size_t errlen)
{
	if (!cJSON_IsObject(patch)) {
		snprintf(errbuf, errlen, "strategic merge patch must be a JSON object");
		return -EINVAL;
	}
	if (!cJSON_IsObject(*doc)) {
		cJSON_Delete(*doc);
		*doc = cJSON_CreateObject();
	}
	return smp_obj(*doc, patch, "", errbuf, errlen);
}
