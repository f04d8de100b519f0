/* jsonbody.h: JSON request bodies checked as kube-apiserver checks them,
 * beyond what cJSON's parser does. */
#pragma once
#include <stddef.h>
#include <cjson/cJSON.h>

/* Deepest nesting of objects and arrays a body may have (cJSON's own
 * parse limit, so every stored document can be walked recursively). */
#define JSON_MAX_DEPTH CJSON_NESTING_LIMIT

/* The raw text: -EINVAL with err naming the offset for a NUL byte, a
 * \u0000 escape or nesting deeper than JSON_MAX_DEPTH. */
int json_text_check(const char *p, size_t len, char *err, size_t errlen);
/* The parsed tree: -EINVAL with err naming the field for a duplicate key;
 * invalid UTF-8 in keys and strings replaced by U+FFFD. */
int json_tree_check(cJSON *root, char *err, size_t errlen);
/* Both checks around cJSON_ParseWithLength: the tree, or NULL with err. */
cJSON *json_body_parse(const char *p, size_t len, char *err, size_t errlen);
