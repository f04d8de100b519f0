/* status.c: builds the Status objects kube-apiserver answers errors with,
 * byte-compatible in the fields clients read (reason, code, details). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "status.h"
#include "util.h"

cJSON *status_new(int code, const char *reason, const char *fmt, ...)
{
	cJSON *st = cJSON_CreateObject();
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	cJSON_AddStringToObject(st, "kind", "Status");
	cJSON_AddStringToObject(st, "apiVersion", "v1");
	cJSON_AddItemToObject(st, "metadata", cJSON_CreateObject());
	cJSON_AddStringToObject(st, "status", code < 300 ? "Success" : "Failure");
	cJSON_AddStringToObject(st, "message", msg ? msg : reason);
	if (reason && *reason)
		cJSON_AddStringToObject(st, "reason", reason);
	cJSON_AddNumberToObject(st, "code", code);
	free(msg);
	return st;
}

void status_details(cJSON *st, const char *name, const char *group, const char *kind)
{
	cJSON *d = json_ensure_obj(st, "details");

	if (name && *name)
		json_set_str(d, "name", name);
	if (group && *group)
		json_set_str(d, "group", group);
	if (kind && *kind)
		json_set_str(d, "kind", kind);
	/* details goes before code in kube's output; order is cosmetic. */
}

int status_code(const cJSON *st)
{
	const cJSON *c = cJSON_GetObjectItem(st, "code");

	return cJSON_IsNumber(c) ? c->valueint : 500;
}

static void ferr_push(struct ferrs *e, const char *reason, const char *field, char *msg)
{
	struct ferr *v = realloc(e->v, (e->n + 1) * sizeof(*v));

	if (!v) {
		free(msg);
		return;
	}
	e->v = v;
	v[e->n].reason = reason;
	v[e->n].field = strdup(field);
	v[e->n].msg = msg;
	e->n++;
}

/* Go's %v of a JSON value as kube prints it in messages. */
static char *value_repr(const cJSON *v)
{
	char *s;

	if (!v)
		return strdup("null");
	if (cJSON_IsString(v))
		return asprintf(&s, "\"%s\"", v->valuestring) < 0 ? NULL : s;
	return cJSON_PrintUnformatted(v);
}

void ferr_required(struct ferrs *e, const char *field)
{
	ferr_push(e, "FieldValueRequired", field, strdup("Required value"));
}

void ferr_invalid(struct ferrs *e, const char *field, const cJSON *value, const char *fmt, ...)
{
	char *detail = NULL, *val = value_repr(value), *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&detail, fmt, ap) < 0)
		detail = NULL;
	va_end(ap);
	if (asprintf(&msg, "Invalid value: %s: %s", val ? val : "?", detail ? detail : "") < 0)
		msg = NULL;
	free(detail);
	free(val);
	if (msg)
		ferr_push(e, "FieldValueInvalid", field, msg);
}

void ferr_duplicate(struct ferrs *e, const char *field, const cJSON *value)
{
	char *val = value_repr(value), *msg;

	if (asprintf(&msg, "Duplicate value: %s", val ? val : "?") >= 0)
		ferr_push(e, "FieldValueDuplicate", field, msg);
	free(val);
}

void ferr_unsupported(struct ferrs *e, const char *field, const cJSON *value,
		      const char *const *supported)
{
	struct buf b = { 0 };
	char *val = value_repr(value);

	buf_addf(&b, "Unsupported value: %s: supported values: ", val ? val : "?");
	for (size_t i = 0; supported[i]; i++)
		buf_addf(&b, "%s\"%s\"", i ? ", " : "", supported[i]);
	free(val);
	if (b.p)
		ferr_push(e, "FieldValueNotSupported", field, b.p);
}

void ferr_forbidden(struct ferrs *e, const char *field, const char *fmt, ...)
{
	char *detail = NULL, *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&detail, fmt, ap) < 0)
		detail = NULL;
	va_end(ap);
	if (asprintf(&msg, "Forbidden: %s", detail ? detail : "") >= 0)
		ferr_push(e, "FieldValueForbidden", field, msg);
	free(detail);
}

void ferrs_free(struct ferrs *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].field);
		free(e->v[i].msg);
	}
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

cJSON *status_invalid(const char *group, const char *kind, const char *name,
		      const struct ferrs *e)
{
	struct buf b = { 0 };
	cJSON *st, *causes;

	if (e->n > 1)
		buf_add(&b, "[", 1);
	for (size_t i = 0; i < e->n; i++)
		buf_addf(&b, "%s%s: %s", i ? ", " : "", e->v[i].field, e->v[i].msg);
	if (e->n > 1)
		buf_add(&b, "]", 1);
	st = status_new(422, "Invalid", "%s \"%s\" is invalid: %s", kind,
			name ? name : "", b.p ? b.p : "");
	buf_free(&b);
	status_details(st, name, group, kind);
	causes = cJSON_AddArrayToObject(json_obj(st, "details"), "causes");
	for (size_t i = 0; i < e->n; i++) {
		cJSON *c = cJSON_CreateObject();

		cJSON_AddStringToObject(c, "reason", e->v[i].reason);
		cJSON_AddStringToObject(c, "message", e->v[i].msg);
		cJSON_AddStringToObject(c, "field", e->v[i].field);
		cJSON_AddItemToArray(causes, c);
	}
	return st;
}
