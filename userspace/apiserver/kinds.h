/* kinds.h: per-kind behaviour on write: defaults, validation, and how the
 * main resource and its /status subresource split the object. */
#pragma once
#include <cjson/cJSON.h>
#include "apiserver.h"
#include "status.h"

/* Fills defaulted fields the way kube-apiserver's defaulters do. */
void kind_default(const struct resource *res, cJSON *obj);
/* Field errors of obj (old is the stored object on update, else NULL). */
void kind_validate(const struct apiserver *as, const struct resource *res,
		   const cJSON *obj, const cJSON *old, struct ferrs *e);
/* Create-time status reset (Pods start Pending, Services with empty status). */
void kind_prepare_create(const struct resource *res, cJSON *obj);
/* Services on update: drops fields the new type cannot have when the
 * client left them as they were (NodePort -> ClusterIP loses nodePorts). */
void service_drop_type_fields(cJSON *obj, const cJSON *old);
/* Secrets: folds stringData into data (base64). */
void secret_fold_string_data(cJSON *obj);

bool is_dns1123_label(const char *s);
bool is_dns1123_subdomain(const char *s);
bool is_dns1035_label(const char *s);
