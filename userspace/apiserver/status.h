/* status.h: Kubernetes Status objects (errors as kube-apiserver sends
 * them) and field error lists that become 422 Invalid causes. */
#pragma once
#include <stddef.h>
#include <cjson/cJSON.h>

/* A Status with status Failure, the reason and code given, and message. */
cJSON *status_new(int code, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Adds details {name, group, kind}; NULL or "" members are left out. */
void status_details(cJSON *st, const char *name, const char *group, const char *kind);
int status_code(const cJSON *st);

struct ferr {
	const char *reason;	/* FieldValueInvalid, FieldValueRequired, ... */
	char *field;		/* spec.ports[0].port */
	char *msg;		/* Invalid value: 0: must be between 1 and 65535, inclusive */
};

struct ferrs {
	struct ferr *v;
	size_t n;
};

void ferr_required(struct ferrs *e, const char *field);
void ferr_invalid(struct ferrs *e, const char *field, const cJSON *value,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void ferr_duplicate(struct ferrs *e, const char *field, const cJSON *value);
void ferr_unsupported(struct ferrs *e, const char *field, const cJSON *value,
		      const char *const *supported);
void ferr_forbidden(struct ferrs *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ferrs_free(struct ferrs *e);
/* 422 Invalid: `Kind "name" is invalid: field: msg` (or [a, b] for several). */
cJSON *status_invalid(const char *group, const char *kind, const char *name,
		      const struct ferrs *e);
