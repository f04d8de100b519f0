/* field_schema.h: which fields each served kind has, for fieldValidation:
 * kube-apiserver warns about unknown fields (Warn, the default), rejects
 * them (Strict: 400 "strict decoding error") or ignores them (Ignore). The
 * tables are generated (field_schema_gen.c); only names are checked here,
 * values are kind_validate()'s business. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

enum fs_shape {
	FS_SCALAR,	/* string, number, bool, scalar list or map, any: not descended */
	FS_OBJECT,
	FS_LIST,	/* list of objects */
	FS_MAP,		/* map of objects */
};

struct fs_field {
	const char *name;	/* JSON name */
	uint8_t shape;		/* enum fs_shape */
	uint16_t type;		/* index in fs_types of the object type (OBJECT, LIST, MAP) */
};

struct fs_type {
	const char *name;
	const struct fs_field *fields;
	size_t n;
};

struct fs_root {
	const char *group;
	const char *kind;
	uint16_t type;
};

extern const struct fs_type fs_types[];
extern const struct fs_root fs_roots[];

enum field_validation {
	FV_IGNORE,
	FV_WARN,
	FV_STRICT,
};

/* Parses the fieldValidation query value (NULL → Warn, kube-apiserver's
 * default). Returns -1 for anything else. */
int field_validation_parse(const char *v);

/* Calls each(path, arg) for every field of obj that kind does not have
 * ("spec.ports[0].nmae"); returns how many. Kinds without a table have none. */
size_t field_schema_unknown(const char *group, const char *kind, const cJSON *obj,
			    void (*each)(const char *path, void *arg), void *arg);
