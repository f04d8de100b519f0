/* resource.c: the resources rota-apiserver serves, as one table that the
 * REST handlers, discovery and OpenAPI documents are all generated from. */
#include <string.h>
#include "resource.h"

const struct resource resources[] = {
	{ "", "v1", "namespaces", "namespace", "Namespace", "NamespaceList", "v1",
	  .namespaced = false, .has_status = true, .has_spec = false,
	  .short_names = { "ns" }, .fields = { "status.phase" } },
	{ "", "v1", "services", "service", "Service", "ServiceList", "v1",
	  .namespaced = true, .has_status = true, .has_spec = true,
	  .short_names = { "svc" }, .categories = { "all" },
	  .fields = { "spec.clusterIP", "spec.type" } },
	{ "", "v1", "pods", "pod", "Pod", "PodList", "v1",
	  .namespaced = true, .has_status = true, .has_spec = true,
	  .short_names = { "po" }, .categories = { "all" },
	  .fields = { "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
		      "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
		      "status.podIP", "status.nominatedNodeName" } },
	{ "", "v1", "nodes", "node", "Node", "NodeList", "v1",
	  .namespaced = false, .has_status = true, .has_spec = true,
	  .short_names = { "no" }, .fields = { "spec.unschedulable" } },
	{ "", "v1", "configmaps", "configmap", "ConfigMap", "ConfigMapList", "v1",
	  .namespaced = true, .short_names = { "cm" } },
	{ "", "v1", "secrets", "secret", "Secret", "SecretList", "v1",
	  .namespaced = true, .fields = { "type" } },
	{ "discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice",
	  "EndpointSliceList", "discovery.k8s.io/v1", .namespaced = true, .fields = { "addressType" } },
};

const size_t n_resources = sizeof(resources) / sizeof(resources[0]);

const struct resource *resource_find(const char *group, const char *version,
				     const char *plural)
{
	for (size_t i = 0; i < n_resources; i++)
		if (!strcmp(resources[i].group, group) &&
		    !strcmp(resources[i].version, version) &&
		    !strcmp(resources[i].plural, plural))
			return &resources[i];
	return NULL;
}

const struct resource *resource_by_kind(const char *group, const char *kind)
{
	for (size_t i = 0; i < n_resources; i++)
		if (!strcmp(resources[i].group, group) && !strcmp(resources[i].kind, kind))
			return &resources[i];
	return NULL;
}
