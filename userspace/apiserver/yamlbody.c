/* yaml.c: request bodies sent as application/yaml, turned into the JSON
 * object model with libyaml (first document only; plain scalars resolved
 * like YAML 1.2's core schema: null, booleans, numbers, else strings). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "util.h"
#include "yamlbody.h"

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

static cJSON *scalar(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	double v;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    (n->tag && !strcmp((const char *)n->tag, YAML_STR_TAG)))
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

static cJSON *convert(yaml_document_t *doc, yaml_node_t *n, int depth, char *err, size_t errlen)
{
	cJSON *out;

	if (!n || depth > 64) {
		snprintf(err, errlen, "YAML nested too deeply or empty");
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return scalar(n);
	case YAML_SEQUENCE_NODE:
		out = cJSON_CreateArray();
		for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
			cJSON *c = convert(doc, yaml_document_get_node(doc, *i), depth + 1, err, errlen);

			if (!c) {
				cJSON_Delete(out);
				return NULL;
			}
			cJSON_AddItemToArray(out, c);
		}
		return out;
	case YAML_MAPPING_NODE:
		out = cJSON_CreateObject();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			cJSON *c;

			if (!k || k->type != YAML_SCALAR_NODE) {
				snprintf(err, errlen, "YAML mapping keys must be scalars (line %lu)",
					 k ? (unsigned long)k->start_mark.line + 1 : 0UL);
				cJSON_Delete(out);
				return NULL;
			}
			c = convert(doc, yaml_document_get_node(doc, p->value), depth + 1, err, errlen);
			if (!c) {
				cJSON_Delete(out);
				return NULL;
			}
			json_set(out, (const char *)k->data.scalar.value, c);
		}
		return out;
	default:
		snprintf(err, errlen, "unsupported YAML node");
		return NULL;
	}
}

int yaml_body_parse(const char *text, size_t len, cJSON **out, char *err, size_t errlen)
{
	yaml_parser_t p;
	yaml_document_t doc;
	cJSON *obj = NULL;
	int rc = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &doc)) {
		snprintf(err, errlen, "error converting YAML to JSON: yaml: line %lu: %s",
			 (unsigned long)p.problem_mark.line + 1, p.problem ? p.problem : "parse error");
		yaml_parser_delete(&p);
		return -EINVAL;
	}
	obj = convert(&doc, yaml_document_get_root_node(&doc), 0, err, errlen);
	if (!obj)
		rc = -EINVAL;
	else if (!cJSON_IsObject(obj)) {
		snprintf(err, errlen, "error converting YAML to JSON: the document is not a mapping");
		cJSON_Delete(obj);
		rc = -EINVAL;
	} else {
		*out = obj;
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return rc;
}
