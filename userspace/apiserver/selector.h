/* selector.h: label selectors (=, ==, !=, in, notin, exists, !exists) and
 * field selectors (=, ==, != on dotted paths) over JSON objects. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

enum sel_op { SEL_EQ, SEL_NEQ, SEL_IN, SEL_NOTIN, SEL_EXISTS, SEL_NOTEXISTS };

struct sel_req {
	char *key;
	enum sel_op op;
	char **vals;
	size_t nvals;
};

struct selector {
	struct sel_req *r;
	size_t n;
};

/* errbuf gets a message naming the problem on -EINVAL. */
int label_selector_parse(const char *s, struct selector *out, char *errbuf, size_t errlen);
int field_selector_parse(const char *s, struct selector *out, char *errbuf, size_t errlen);
bool label_selector_match(const struct selector *s, const cJSON *labels);
bool field_selector_match(const struct selector *s, const cJSON *obj);
/* The string value of a dotted field path, "" when absent. */
void field_value(const cJSON *obj, const char *path, char *out, size_t outlen);
/* A selector given as a JSON map (Service spec.selector) matched against labels. */
bool map_selector_match(const cJSON *sel, const cJSON *labels);
void selector_free(struct selector *s);
