/* rest.h: what the REST handlers share with watch and table output:
 * parsed list options (selectors) and list/object replies. */
#pragma once
#include <stdbool.h>
#include <cjson/cJSON.h>
#include "http.h"
#include "resource.h"
#include "selector.h"

struct list_opts {
	struct selector labels, fields;
	bool has_labels, has_fields;
};

/* Parses ?labelSelector and ?fieldSelector; answers 400 itself on error. */
int parse_selectors(struct req *r, const struct resource *res, struct list_opts *o,
		    enum MHD_Result *ret);
bool list_opts_match(const struct list_opts *o, const cJSON *obj);

/* watch.c: streams events for a list request with ?watch=true; name
 * (legacy /watch/.../NAME) limits it to one object. */
enum MHD_Result watch_serve(struct req *r, const struct resource *res, const char *ns,
			    const char *name);

/* table.c: a list or an object as the Table kubectl asks for, or as JSON. */
enum MHD_Result reply_list(struct req *r, const struct resource *res, cJSON *list);
enum MHD_Result reply_object(struct req *r, const struct resource *res, unsigned code, cJSON *obj);
bool table_wanted(struct req *r);
cJSON *table_for_object(const struct resource *res, const cJSON *obj, const char *include);
bool query_bool(const char *v);
