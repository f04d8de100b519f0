/* yamlbody.h: application/yaml request bodies parsed to cJSON. */
#pragma once
#include <stddef.h>
#include <cjson/cJSON.h>

/* -EINVAL with err naming the line and problem for malformed YAML. */
int yaml_body_parse(const char *text, size_t len, cJSON **out, char *err, size_t errlen);
