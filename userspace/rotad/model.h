/* The parts of Services and EndpointSlices rotad acts on, parsed and
 * validated once when an event arrives. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <cjson/cJSON.h>
#include "svc.h"

#define OBJ_KEY_LEN 320		/* "namespace/name" */
#define PORT_NAME_LEN 64

struct svc_port {
	char  name[PORT_NAME_LEN];
	__u16 port;
	__u8  proto;		/* IPPROTO_*; 0: not served (logged at parse) */
};

struct svc_obj {
	char key[OBJ_KEY_LEN];	/* namespace/name */
	bool proxied;		/* false: headless, ExternalName, other proxy, no IPv4 ClusterIP */
	__be32 cluster_ip;	/* IPv4 ClusterIP */
	__u32 affinity_timeout;	/* ClientIP affinity seconds; 0 = None */
	bool itp_local;		/* internalTrafficPolicy Local: only this node's endpoints */
	size_t n_ports;
	struct svc_port *ports;
};

struct slice_port {
	char  name[PORT_NAME_LEN];
	__u16 port;
	__u8  proto;
};

struct slice_ep {
	__be32 addr;		/* addresses[0]: the one kube-proxy uses */
	bool ready, serving, terminating;
	bool local;		/* nodeName is this node */
};

struct slice_obj {
	char key[OBJ_KEY_LEN];		/* namespace/name of the slice */
	char svc_key[OBJ_KEY_LEN];	/* namespace/<kubernetes.io/service-name>; "" if unowned */
	bool ipv4;			/* addressType IPv4 */
	double trigger_time;		/* endpoints.kubernetes.io/last-change-trigger-time, epoch s; 0 if absent */
	size_t n_ports, n_eps;
	struct slice_port *ports;
	struct slice_ep *eps;
};

/* Parse an object from the API. Problems with one field (a bad port, an
 * invalid address) are logged naming the object and field and that part is
 * skipped; a missing name fails the whole object (-EINVAL). */
int svc_parse(const cJSON *obj, struct svc_obj *out);
/* this_node: the node rotad runs on, for each endpoint's `local`. */
int slice_parse(const cJSON *obj, const char *this_node, struct slice_obj *out);
void svc_obj_free(struct svc_obj *s);
void slice_obj_free(struct slice_obj *s);
/* namespace/name of any object; -EINVAL when metadata lacks them. */
int obj_key(const cJSON *obj, char key[OBJ_KEY_LEN]);

/* The backends of one Service port, as kube-proxy picks them: the endpoints
 * of every slice of the Service whose port has the same name and protocol
 * (its number is the target port); with internalTrafficPolicy Local only
 * this node's. Ready endpoints are active; serving+terminating ones are
 * kept as terminating (established flows only) and become active when none
 * is ready. Sorted by address:port, without duplicates. *out is calloc'd
 * (free it), also when empty: a Service with no usable endpoint refuses. */
int svc_port_backends(const struct svc_obj *svc, const struct svc_port *sp, const struct slice_obj *const *slices,
		      size_t n_slices, struct rota_svc_backend **out, size_t *n_out);
/* qsort order of backends: address, then port (network order values). */
int backend_cmp(const void *a, const void *b);
