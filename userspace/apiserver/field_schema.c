/* field_schema.c: unknown-field detection against the generated tables,
 * with kube-apiserver's paths ("spec.ports[0].nmae", "data[key].x"). */
#include <stdio.h>
#include <string.h>
#include "field_schema.h"

int field_validation_parse(const char *v)
{
	if (!v || !strcmp(v, "Warn"))
		return FV_WARN;
	if (!strcmp(v, "Strict"))
		return FV_STRICT;
	if (!strcmp(v, "Ignore"))
		return FV_IGNORE;
	return -1;
}

struct walk {
	void (*each)(const char *path, void *arg);
	void *arg;
	size_t n;
};

static void add_unknown(struct walk *w, const char *path)
{
	w->each(path, w->arg);
	w->n++;
}

static const struct fs_field *field_find(const struct fs_type *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->fields[i].name, name))
			return &t->fields[i];
	return NULL;
}

static void walk_object(struct walk *w, const struct fs_type *t, const cJSON *obj, const char *path)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, obj) {
		const struct fs_field *f = field_find(t, c->string);
		char sub[512];

		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", c->string);
		if (!f) {
			add_unknown(w, sub);
			continue;
		}
		if (f->shape == FS_OBJECT && cJSON_IsObject(c)) {
			walk_object(w, &fs_types[f->type], c, sub);
		} else if ((f->shape == FS_LIST && cJSON_IsArray(c)) ||
			   (f->shape == FS_MAP && cJSON_IsObject(c))) {
			const cJSON *e;
			int i = 0;

			cJSON_ArrayForEach(e, c) {
				char elem[600];

				if (f->shape == FS_LIST)
					snprintf(elem, sizeof(elem), "%s[%d]", sub, i++);
				else
					snprintf(elem, sizeof(elem), "%s[%s]", sub, e->string);
				if (cJSON_IsObject(e))
					walk_object(w, &fs_types[f->type], e, elem);
			}
		}
	}
}

size_t field_schema_unknown(const char *group, const char *kind, const cJSON *obj,
			    void (*each)(const char *path, void *arg), void *arg)
{
	struct walk w = { each, arg, 0 };

	for (const struct fs_root *r = fs_roots; r->kind; r++)
		if (!strcmp(r->group, group) && !strcmp(r->kind, kind)) {
			walk_object(&w, &fs_types[r->type], obj, "");
			break;
		}
	return w.n;
}
