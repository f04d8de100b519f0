/* jsonbody.c: what cJSON does not check in a JSON request body and
 * kube-apiserver refuses or mends: NUL characters (cJSON would cut the
 * string there), nesting beyond the depth limit, duplicate keys (a Go
 * client would read another value than the one validated), and invalid
 * UTF-8 (replaced by U+FFFD as Go's encoding/json does). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonbody.h"

int json_text_check(const char *p, size_t len, char *err, size_t errlen)
{
	bool in_str = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (!c) {
			snprintf(err, errlen, "invalid JSON: a NUL byte at offset %zu", i);
			return -EINVAL;
		}
		if (in_str) {
			if (c == '"') {
				in_str = false;
			} else if (c == '\\' && i + 1 < len) {
				i++;
				if (p[i] == 'u' && i + 4 < len && !memcmp(p + i + 1, "0000", 4)) {
					snprintf(err, errlen, "invalid JSON: \\u0000 (NUL) in a string at offset %zu",
						 i - 1);
					return -EINVAL;
				}
			}
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > JSON_MAX_DEPTH) {
				snprintf(err, errlen, "invalid JSON: nested deeper than %d levels at offset %zu",
					 JSON_MAX_DEPTH, i);
				return -EINVAL;
			}
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are not). */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

/* Replaces each invalid byte of *sp by U+FFFD (reallocating); 0 or -ENOMEM.
 * A string cJSON does not own (const flag) is left alone. */
static int utf8_mend(char **sp)
{
	const unsigned char *s = (const unsigned char *)*sp;
	size_t bad = 0, n, o = 0;
	char *out;

	if (!s)
		return 0;
	for (size_t i = 0; s[i]; i += n ? n : 1) {
		n = utf8_seq(s + i);
		bad += !n;
	}
	if (!bad)
		return 0;
	out = malloc(strlen(*sp) + 2 * bad + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; s[i];) {
		n = utf8_seq(s + i);
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = 0;
	free(*sp);
	*sp = out;
	return 0;
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key that appears twice among o's members, or NULL. Sorting
 * keeps a body of many keys O(n log n). */
static const char *duplicate_key(const cJSON *o)
{
	const char *found = NULL, **keys;
	size_t n = 0, i = 0;
	const cJSON *c;

	cJSON_ArrayForEach(c, o)
		n++;
	if (n < 2)
		return NULL;
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return NULL;
	cJSON_ArrayForEach(c, o)
		keys[i++] = c->string ? c->string : "";
	qsort(keys, n, sizeof(*keys), cmp_keys);
	for (i = 1; i < n && !found; i++)
		if (!strcmp(keys[i - 1], keys[i]))
			found = keys[i];	/* a key of the tree, not of the array */
	free(keys);
	return found;
}

/* The chain of keys from the root to a member, walked only to name a
 * field in an error ("" stands for an array element). */
struct path_el {
	const struct path_el *up;
	const char *key;
};

static void path_print(const struct path_el *p, const char *last, char *out, size_t outlen)
{
	const char *keys[JSON_MAX_DEPTH + 2];
	size_t n = 0, o = 0;

	keys[n++] = last;
	for (; p && n < sizeof(keys) / sizeof(keys[0]); p = p->up)
		keys[n++] = p->key;
	out[0] = 0;
	while (n-- && o < outlen) {
		const char *k = keys[n];

		o += snprintf(out + o, outlen - o, "%s%s", *k && o ? "." : "", *k ? k : "[]");
	}
}

static int tree_check(cJSON *v, const struct path_el *path, char *err, size_t errlen)
{
	cJSON *c;
	int rc;

	if (!(v->type & cJSON_StringIsConst) && (rc = utf8_mend(&v->string)))
		return rc;
	if (cJSON_IsString(v))
		return utf8_mend(&v->valuestring);
	if (cJSON_IsObject(v)) {
		const char *dup = duplicate_key(v);

		if (dup) {
			char field[512];

			path_print(path, dup, field, sizeof(field));
			snprintf(err, errlen, "duplicate field \"%s\"", field);
			return -EINVAL;
		}
	}
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	cJSON_ArrayForEach(c, v) {
		struct path_el el = { path, cJSON_IsObject(v) && c->string ? c->string : "" };

		if ((rc = tree_check(c, &el, err, errlen)))
			return rc;
	}
	return 0;
}

int json_tree_check(cJSON *root, char *err, size_t errlen)
{
	int rc = tree_check(root, NULL, err, errlen);

	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory checking the body");
	return rc;
}

cJSON *json_body_parse(const char *p, size_t len, char *err, size_t errlen)
{
	cJSON *obj;

	if (json_text_check(p, len, err, errlen))
		return NULL;
	obj = cJSON_ParseWithLength(p, len);
	if (!obj) {
		const char *at = cJSON_GetErrorPtr();

		snprintf(err, errlen, "%s%.40s", len ? "invalid JSON near: " : "empty request body",
			 len && at ? at : "");
		return NULL;
	}
	if (json_tree_check(obj, err, errlen)) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}
