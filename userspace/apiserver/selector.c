/* selector.c: parses and evaluates label and field selectors as
 * kube-apiserver accepts them in ?labelSelector= and ?fieldSelector=. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "selector.h"

void selector_free(struct selector *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->r[i].key);
		for (size_t j = 0; j < s->r[i].nvals; j++)
			free(s->r[i].vals[j]);
		free(s->r[i].vals);
	}
	free(s->r);
	s->r = NULL;
	s->n = 0;
}

static struct sel_req *sel_push(struct selector *s)
{
	struct sel_req *r = realloc(s->r, (s->n + 1) * sizeof(*r));

	if (!r)
		return NULL;
	s->r = r;
	memset(&r[s->n], 0, sizeof(r[0]));
	return &r[s->n++];
}

static int add_val(struct sel_req *q, const char *v, size_t n)
{
	char **vals = realloc(q->vals, (q->nvals + 1) * sizeof(*vals));

	if (!vals)
		return -ENOMEM;
	q->vals = vals;
	vals[q->nvals] = strndup(v, n);
	if (!vals[q->nvals])
		return -ENOMEM;
	q->nvals++;
	return 0;
}

static bool keychar(int c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/';
}

static void skipsp(const char **p)
{
	while (**p == ' ')
		(*p)++;
}

int label_selector_parse(const char *s, struct selector *out, char *errbuf, size_t errlen)
{
	const char *p = s;

	memset(out, 0, sizeof(*out));
	skipsp(&p);
	while (*p) {
		struct sel_req *q = sel_push(out);
		const char *k;

		if (!q)
			goto nomem;
		skipsp(&p);
		if (*p == '!') {
			q->op = SEL_NOTEXISTS;
			p++;
			skipsp(&p);
		} else {
			q->op = SEL_EXISTS;
		}
		k = p;
		while (keychar(*p))
			p++;
		if (p == k) {
			snprintf(errbuf, errlen, "unable to parse requirement: found '%.20s', expected: identifier", p);
			goto bad;
		}
		q->key = strndup(k, p - k);
		if (!q->key)
			goto nomem;
		skipsp(&p);
		if (q->op == SEL_NOTEXISTS) {
			/* nothing more */
		} else if (p[0] == '=' || (p[0] == '!' && p[1] == '=')) {
			const char *v;

			q->op = p[0] == '!' ? SEL_NEQ : SEL_EQ;
			p += p[0] == '!' ? 2 : (p[1] == '=' ? 2 : 1);
			skipsp(&p);
			v = p;
			while (keychar(*p) && *p != '/')
				p++;
			if (add_val(q, v, p - v))
				goto nomem;
		} else if ((!strncmp(p, "in", 2) && (p[2] == ' ' || p[2] == '(')) ||
			   (!strncmp(p, "notin", 5) && (p[5] == ' ' || p[5] == '('))) {
			q->op = p[0] == 'i' ? SEL_IN : SEL_NOTIN;
			p += q->op == SEL_IN ? 2 : 5;
			skipsp(&p);
			if (*p != '(') {
				snprintf(errbuf, errlen, "unable to parse requirement: expected '(' after %s for key %s",
					 q->op == SEL_IN ? "in" : "notin", q->key);
				goto bad;
			}
			p++;
			for (;;) {
				const char *v;

				skipsp(&p);
				v = p;
				while (keychar(*p) && *p != '/')
					p++;
				if (add_val(q, v, p - v))
					goto nomem;
				skipsp(&p);
				if (*p == ',') {
					p++;
					continue;
				}
				if (*p == ')') {
					p++;
					break;
				}
				snprintf(errbuf, errlen, "unable to parse requirement: unterminated value set for key %s", q->key);
				goto bad;
			}
		}
		skipsp(&p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p) {
			snprintf(errbuf, errlen, "unable to parse requirement: unexpected '%.20s' after key %s", p, q->key);
			goto bad;
		}
	}
	return 0;
nomem:
	selector_free(out);
	snprintf(errbuf, errlen, "out of memory");
	return -ENOMEM;
bad:
	selector_free(out);
	return -EINVAL;
}

int field_selector_parse(const char *s, struct selector *out, char *errbuf, size_t errlen)
{
	const char *p = s;

	memset(out, 0, sizeof(*out));
	while (*p) {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
		const char *op = NULL;
		struct sel_req *q;
		size_t oplen = 0;

		for (const char *c = p; c < end; c++) {
			if (c[0] == '!' && c + 1 < end && c[1] == '=') {
				op = c;
				oplen = 2;
				break;
			}
			if (c[0] == '=') {
				op = c;
				oplen = c + 1 < end && c[1] == '=' ? 2 : 1;
				break;
			}
		}
		if (!op || op == p) {
			snprintf(errbuf, errlen, "invalid selector: '%.*s'; can't understand '%.*s'",
				 (int)strlen(s), s, (int)(end - p), p);
			selector_free(out);
			return -EINVAL;
		}
		q = sel_push(out);
		if (!q || !(q->key = strndup(p, op - p)) ||
		    add_val(q, op + oplen, end - (op + oplen))) {
			selector_free(out);
			return -ENOMEM;
		}
		q->op = op[0] == '!' ? SEL_NEQ : SEL_EQ;
		p = comma ? comma + 1 : end;
	}
	return 0;
}

static bool in_vals(const struct sel_req *q, const char *v)
{
	for (size_t i = 0; i < q->nvals; i++)
		if (!strcmp(q->vals[i], v))
			return true;
	return false;
}

bool label_selector_match(const struct selector *s, const cJSON *labels)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct sel_req *q = &s->r[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, q->key);
		const char *val = cJSON_IsString(v) ? v->valuestring : NULL;

		switch (q->op) {
		case SEL_EQ:
		case SEL_IN:
			if (!val || !in_vals(q, val))
				return false;
			break;
		case SEL_NEQ:
		case SEL_NOTIN:
			if (val && in_vals(q, val))
				return false;
			break;
		case SEL_EXISTS:
			if (!val)
				return false;
			break;
		case SEL_NOTEXISTS:
			if (val)
				return false;
			break;
		}
	}
	return true;
}

void field_value(const cJSON *obj, const char *path, char *out, size_t outlen)
{
	const cJSON *cur = obj;
	char part[128];
	const char *p = path;

	out[0] = 0;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(part))
			return;
		memcpy(part, p, n);
		part[n] = 0;
		cur = cJSON_GetObjectItemCaseSensitive(cur, part);
		p = dot ? dot + 1 : p + n;
	}
	if (!cur)
		return;
	if (cJSON_IsString(cur))
		snprintf(out, outlen, "%s", cur->valuestring);
	else if (cJSON_IsBool(cur))
		snprintf(out, outlen, "%s", cJSON_IsTrue(cur) ? "true" : "false");
	else if (cJSON_IsNumber(cur))
		snprintf(out, outlen, "%lld", (long long)cur->valuedouble);
}

bool field_selector_match(const struct selector *s, const cJSON *obj)
{
	char v[512];

	for (size_t i = 0; i < s->n; i++) {
		const struct sel_req *q = &s->r[i];

		field_value(obj, q->key, v, sizeof(v));
		if ((q->op == SEL_EQ) != !strcmp(v, q->vals[0]))
			return false;
	}
	return true;
}

bool map_selector_match(const cJSON *sel, const cJSON *labels)
{
	const cJSON *e;

	if (!cJSON_IsObject(sel))
		return false;
	cJSON_ArrayForEach(e, sel) {
		const char *v = cJSON_IsString(e) ? e->valuestring : "";
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(labels, e->string);

		if (!cJSON_IsString(l) || strcmp(l->valuestring, v))
			return false;
	}
	return true;
}
