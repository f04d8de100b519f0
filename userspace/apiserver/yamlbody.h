/* yamlbody.h: application/yaml request bodies parsed to cJSON. */
#pragma once
#include <stddef.h>
#include <cjson/cJSON.h>

/* -EINVAL with err naming the line and problem for malformed YAML, a
 * duplicate key, nesting deeper than 64 levels, or aliases that would
 * expand to more than alias_budget bytes. */
int yaml_body_parse(const char *text, size_t len, size_t alias_budget, cJSON **out, char *err,
		    size_t errlen);
