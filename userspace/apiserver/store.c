/* store.c: backend-independent store helpers: kv list memory and the
 * logical snapshot format shared by the sqlite and etcd backends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "log.h"
#include "store.h"
#include "util.h"

void kv_free(struct kv *kv)
{
	free(kv->key);
	free(kv->value);
	kv->key = kv->value = NULL;
}

void kv_list_free(struct kv_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		kv_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

int kv_list_push(struct kv_list *l, const char *key, const void *value,
		 size_t len, int64_t create_rev, int64_t mod_rev)
{
	struct kv *kv;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct kv *p = realloc(l->items, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	kv = &l->items[l->n];
	kv->key = strdup(key);
	kv->value = malloc(len + 1);
	if (!kv->key || !kv->value) {
		free(kv->key);
		free(kv->value);
		return -ENOMEM;
	}
	memcpy(kv->value, value, len);
	kv->value[len] = 0;
	kv->value_len = len;
	kv->create_rev = create_rev;
	kv->mod_rev = mod_rev;
	l->n++;
	return 0;
}

void store_event_free(struct store_event *ev)
{
	free(ev->key);
	free(ev->value);
	free(ev->prev);
	memset(ev, 0, sizeof(*ev));
}

int store_snapshot_save(struct store *s, const char *prefix, const char *file)
{
	struct kv_list l = { 0 };
	cJSON *root = NULL, *arr;
	char *text = NULL;
	int err;

	err = s->ops->range(s, prefix, NULL, 0, 0, &l);
	if (err) {
		pr_warn("snapshot: range %s: %s", prefix, strerror(-err));
		return err;
	}
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "format", "rota-apiserver-snapshot/v1");
	cJSON_AddStringToObject(root, "store", s->ops->name);
	cJSON_AddNumberToObject(root, "revision", (double)l.rev);
	cJSON_AddStringToObject(root, "prefix", prefix);
	arr = cJSON_AddArrayToObject(root, "kvs");
	for (size_t i = 0; i < l.n; i++) {
		cJSON *e = cJSON_CreateObject();
		char *v = b64_encode(l.items[i].value, l.items[i].value_len);

		if (!v) {
			cJSON_Delete(e);
			err = -ENOMEM;
			goto out;
		}
		cJSON_AddStringToObject(e, "key", l.items[i].key + strlen(prefix));
		cJSON_AddStringToObject(e, "value", v);
		free(v);
		cJSON_AddItemToArray(arr, e);
	}
	text = cJSON_PrintUnformatted(root);
	if (!text) {
		err = -ENOMEM;
		goto out;
	}
	err = write_file(file, text, strlen(text), 0600);
	if (err)
		pr_warn("snapshot: write %s: %s", file, strerror(-err));
	else
		pr_info("snapshot: saved %zu keys at revision %lld to %s", l.n,
			(long long)l.rev, file);
out:
	free(text);
	cJSON_Delete(root);
	kv_list_free(&l);
	return err;
}

/* Applies ops in batches: etcd caps a transaction at 128 operations. */
static int txn_batched(struct store *s, struct txn_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i += 100) {
		size_t m = n - i < 100 ? n - i : 100, failed;
		int64_t rev;
		int err = s->ops->txn(s, ops + i, m, &rev, &failed);

		if (err)
			return err;
	}
	return 0;
}

int store_snapshot_restore(struct store *s, const char *prefix, const char *file)
{
	struct kv_list cur = { 0 };
	struct txn_op *ops = NULL;
	unsigned char **vals = NULL;
	char **keys = NULL;
	cJSON *root = NULL, *arr, *e;
	char *text = NULL;
	size_t n = 0, i;
	int err;

	err = read_file(file, &text, NULL);
	if (err) {
		pr_warn("restore: read %s: %s", file, strerror(-err));
		return err;
	}
	root = cJSON_Parse(text);
	arr = root ? cJSON_GetObjectItem(root, "kvs") : NULL;
	if (!cJSON_IsArray(arr) || !json_str(root, "format") ||
	    strcmp(json_str(root, "format"), "rota-apiserver-snapshot/v1")) {
		pr_warn("restore: %s is not a rota-apiserver snapshot", file);
		err = -EINVAL;
		goto out;
	}
	err = s->ops->range(s, prefix, NULL, 0, 0, &cur);
	if (err)
		goto out;
	n = cJSON_GetArraySize(arr);
	ops = calloc(n + cur.n + 1, sizeof(*ops));
	keys = calloc(n + 1, sizeof(*keys));
	vals = calloc(n + 1, sizeof(*vals));
	if (!ops || !keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < cur.n; i++)
		ops[i] = (struct txn_op){ TXN_DELETE, cur.items[i].key, NULL, 0, REV_ANY };
	err = txn_batched(s, ops, cur.n);
	if (err) {
		pr_warn("restore: clearing %s: %s", prefix, strerror(-err));
		goto out;
	}
	i = 0;
	cJSON_ArrayForEach(e, arr) {
		const char *k = json_str(e, "key"), *v = json_str(e, "value");
		size_t vlen;

		if (!k || !v || b64_decode(v, strlen(v), &vals[i], &vlen)) {
			pr_warn("restore: entry %zu of %s is malformed", i, file);
			err = -EINVAL;
			goto out;
		}
		if (asprintf(&keys[i], "%s%s", prefix, k) < 0) {
			err = -ENOMEM;
			goto out;
		}
		ops[i] = (struct txn_op){ TXN_PUT, keys[i], (char *)vals[i], vlen, REV_ANY };
		i++;
	}
	err = txn_batched(s, ops, i);
	if (err)
		pr_warn("restore: writing keys: %s", strerror(-err));
	else
		pr_info("restore: %zu keys from %s (replaced %zu)", i, file, cur.n);
out:
	for (i = 0; keys && i < n; i++) {
		free(keys[i]);
		free(vals[i]);
	}
	free(keys);
	free(vals);
	free(ops);
	kv_list_free(&cur);
	cJSON_Delete(root);
	free(text);
	return err;
}
