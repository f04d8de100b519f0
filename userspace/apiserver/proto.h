/* proto.h: Kubernetes protobuf request bodies (k8s\0 + runtime.Unknown) of
 * the kinds kubectl's typed clients create, decoded to JSON. */
#pragma once
#include <stddef.h>
#include <cjson/cJSON.h>

/* -EINVAL malformed, -ENOTSUP a kind or field not modelled; err says which. */
int proto_decode(const void *body, size_t len, cJSON **out, char *err, size_t errlen);
