/* resource.h: the table of API resources rota-apiserver serves (group,
 * version, kind, scope, short names, subresources, field selectors). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct resource {
	const char *group;	/* "" for the core group */
	const char *version;
	const char *plural;
	const char *singular;
	const char *kind;
	const char *list_kind;
	const char *api_version;	/* "v1", "discovery.k8s.io/v1" */
	bool namespaced;
	bool has_status;	/* a /status subresource with its own write path */
	bool has_spec;		/* spec changes bump metadata.generation */
	const char *short_names[3];
	const char *categories[2];
	/* Field selector labels beyond metadata.name and metadata.namespace. */
	const char *fields[10];
};

extern const struct resource resources[];
extern const size_t n_resources;

const struct resource *resource_find(const char *group, const char *version,
				     const char *plural);
const struct resource *resource_by_kind(const char *group, const char *kind);
