/* yamlbody.c: request bodies sent as application/yaml, turned into the JSON
 * object model from libyaml's event stream (first document only; plain
 * scalars resolved like YAML 1.2's core schema: null, booleans, numbers,
 * else strings). Built from events rather than a loaded document so that
 * the parse stops at the nesting limit: libyaml's scanner costs time
 * quadratic in depth, and a loaded document has paid it all. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "util.h"
#include "yamlbody.h"

#define YAML_MAX_DEPTH 64
#define YAML_MAX_ANCHORS 256

static bool is_number(const char *s, double *v)
{
	char *end;

	if (!*s || strchr(" \t", *s))
		return false;
	if (!strcmp(s, ".inf") || !strcmp(s, ".nan") || !strcmp(s, "-.inf"))
		return false;	/* not representable in JSON */
	*v = strtod(s, &end);
	return !*end && strspn(s, "+-0123456789.eE") == strlen(s);
}

static cJSON *scalar(const yaml_event_t *e)
{
	const char *s = (const char *)e->data.scalar.value;
	const char *tag = (const char *)e->data.scalar.tag;
	double v;

	if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && !strcmp(tag, YAML_STR_TAG)))
		return cJSON_CreateString(s);
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return cJSON_CreateNull();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return cJSON_CreateTrue();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return cJSON_CreateFalse();
	if (is_number(s, &v))
		return cJSON_CreateNumber(v);
	return cJSON_CreateString(s);
}

/* An open mapping or sequence: its node, the mapping key waiting for its
 * value, and the anchor to record when it closes. */
struct frame {
	cJSON *node;
	char *key;
	char *anchor;
};

struct anchor {
	char *name;
	cJSON *node;	/* a copy, duplicated again at each alias */
};

struct builder {
	struct frame st[YAML_MAX_DEPTH];
	int depth;
	struct anchor anchors[YAML_MAX_ANCHORS];
	int nanchors;
	size_t expanded, budget;	/* bytes duplicated by aliases, and the cap */
	cJSON *root;
	char *err;
	size_t errlen;
};

static int fail(struct builder *b, const yaml_event_t *e, const char *what)
{
	snprintf(b->err, b->errlen, "error converting YAML to JSON: yaml: line %lu: %s",
		 (unsigned long)e->start_mark.line + 1, what);
	return -EINVAL;
}

static int remember(struct builder *b, const yaml_event_t *e, const char *name, const cJSON *node)
{
	struct anchor *a;

	if (!name)
		return 0;
	if (b->nanchors == YAML_MAX_ANCHORS)
		return fail(b, e, "too many anchors");
	a = &b->anchors[b->nanchors];
	a->name = strdup(name);
	a->node = cJSON_Duplicate(node, 1);
	if (!a->name || !a->node) {
		free(a->name);
		cJSON_Delete(a->node);
		return -ENOMEM;
	}
	b->nanchors++;
	return 0;
}

/* Places v (consumed) in the open container, or as the root. */
static int place(struct builder *b, const yaml_event_t *e, cJSON *v)
{
	struct frame *f;

	if (!v)
		return -ENOMEM;
	if (!b->depth) {
		b->root = v;
		return 0;
	}
	f = &b->st[b->depth - 1];
	if (cJSON_IsArray(f->node)) {
		cJSON_AddItemToArray(f->node, v);
		return 0;
	}
	if (!f->key) {
		const char *k = cJSON_IsString(v) ? v->valuestring : NULL;
		char kbuf[64];

		if (!k && (cJSON_IsNumber(v) || cJSON_IsBool(v) || cJSON_IsNull(v)) &&
		    e->type == YAML_SCALAR_EVENT)
			k = (const char *)e->data.scalar.value;	/* a plain key is its text */
		if (!k) {
			cJSON_Delete(v);
			return fail(b, e, "mapping keys must be scalars");
		}
		if (cJSON_GetObjectItemCaseSensitive(f->node, k)) {
			snprintf(kbuf, sizeof(kbuf), "key \"%.40s\" already set in map", k);
			cJSON_Delete(v);
			return fail(b, e, kbuf);
		}
		f->key = strdup(k);
		cJSON_Delete(v);
		return f->key ? 0 : -ENOMEM;
	}
	cJSON_AddItemToObject(f->node, f->key, v);
	free(f->key);
	f->key = NULL;
	return 0;
}

static int open_container(struct builder *b, const yaml_event_t *e, cJSON *node, const yaml_char_t *anchor)
{
	struct frame *f;

	if (!node)
		return -ENOMEM;
	if (b->depth && cJSON_IsObject(b->st[b->depth - 1].node) && !b->st[b->depth - 1].key) {
		cJSON_Delete(node);
		return fail(b, e, "mapping keys must be scalars");
	}
	if (b->depth == YAML_MAX_DEPTH) {
		char msg[64];

		cJSON_Delete(node);
		snprintf(msg, sizeof(msg), "nested deeper than %d levels", YAML_MAX_DEPTH);
		return fail(b, e, msg);
	}
	f = &b->st[b->depth++];
	*f = (struct frame){ .node = node };
	if (anchor && !(f->anchor = strdup((const char *)anchor)))
		return -ENOMEM;
	return 0;
}

static int close_container(struct builder *b, const yaml_event_t *e)
{
	struct frame f = b->st[--b->depth];
	int err;

	free(f.key);
	err = remember(b, e, f.anchor, f.node);
	free(f.anchor);
	if (err) {
		cJSON_Delete(f.node);
		return err;
	}
	return place(b, e, f.node);
}

static int alias(struct builder *b, const yaml_event_t *e)
{
	const char *name = (const char *)e->data.alias.anchor;

	for (int i = b->nanchors - 1; i >= 0; i--) {
		if (strcmp(b->anchors[i].name, name))
			continue;
		/* aliases of aliases multiply: bound what they add up to */
		b->expanded += json_size(b->anchors[i].node);
		if (b->expanded > b->budget)
			return fail(b, e, "aliases expand beyond the request size limit");
		return place(b, e, cJSON_Duplicate(b->anchors[i].node, 1));
	}
	return fail(b, e, "unknown anchor referenced");
}

static int on_event(struct builder *b, const yaml_event_t *e)
{
	cJSON *v;
	int err;

	switch (e->type) {
	case YAML_SCALAR_EVENT:
		v = scalar(e);
		if (!v)
			return -ENOMEM;
		err = remember(b, e, (const char *)e->data.scalar.anchor, v);
		if (err) {
			cJSON_Delete(v);
			return err;
		}
		return place(b, e, v);
	case YAML_ALIAS_EVENT:
		return alias(b, e);
	case YAML_SEQUENCE_START_EVENT:
		return open_container(b, e, cJSON_CreateArray(), e->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return open_container(b, e, cJSON_CreateObject(), e->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return close_container(b, e);
	default:
		return 0;
	}
}

static void builder_free(struct builder *b)
{
	while (b->depth) {
		struct frame *f = &b->st[--b->depth];

		cJSON_Delete(f->node);
		free(f->key);
		free(f->anchor);
	}
	for (int i = 0; i < b->nanchors; i++) {
		free(b->anchors[i].name);
		cJSON_Delete(b->anchors[i].node);
	}
	cJSON_Delete(b->root);
}

int yaml_body_parse(const char *text, size_t len, size_t alias_budget, cJSON **out, char *err,
		    size_t errlen)
{
	struct builder *b = calloc(1, sizeof(*b));
	yaml_parser_t p;
	bool done = false;
	int rc = 0;

	if (!b)
		return -ENOMEM;
	b->err = err;
	b->errlen = errlen;
	b->budget = alias_budget;
	if (!yaml_parser_initialize(&p)) {
		free(b);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && !rc) {
		yaml_event_t e;

		if (!yaml_parser_parse(&p, &e)) {
			snprintf(err, errlen, "error converting YAML to JSON: yaml: line %lu: %s",
				 (unsigned long)p.problem_mark.line + 1, p.problem ? p.problem : "parse error");
			rc = -EINVAL;
			break;
		}
		rc = on_event(b, &e);
		done = e.type == YAML_DOCUMENT_END_EVENT || e.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&e);
	}
	if (rc == -ENOMEM)
		snprintf(err, errlen, "error converting YAML to JSON: out of memory");
	if (!rc && !cJSON_IsObject(b->root)) {
		snprintf(err, errlen, "error converting YAML to JSON: the document is not a mapping");
		rc = -EINVAL;
	}
	if (!rc) {
		*out = b->root;
		b->root = NULL;
	}
	builder_free(b);
	free(b);
	yaml_parser_delete(&p);
	return rc;
}
