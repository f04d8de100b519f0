/* alloc.h: ClusterIP and NodePort allocation. Every allocated value is a
 * key in the store (<prefix>/ranges/serviceips/IP, .../servicenodeports/N);
 * a Service write claims its new keys (must be absent) and releases old
 * ones in the same transaction, so no value is ever handed out twice, also
 * across several API servers sharing one etcd. */
#pragma once
#include <stdbool.h>
#include <cjson/cJSON.h>
#include "apiserver.h"

#define ALLOC_MAX 70

struct claim {
	char key[160];
	bool dynamic;		/* picked by us: on a race, pick again */
	char field[64];		/* spec.clusterIPs / spec.ports[1].nodePort */
	char value[48];		/* "10.96.0.10" / "30080" */
};

struct claims {
	struct claim put[ALLOC_MAX];
	int nput;
	char del[ALLOC_MAX][160];
	int ndel;
	char owner[320];	/* value stored under claim keys: ns/name */
	bool optimistic;	/* first dynamic pick unread: the write's must-not-exist
				 * condition checks it (a lost race picks again) */
};

int alloc_parse_cidr(const char *cidr, uint32_t *net, unsigned *bits);
int alloc_ip_key(const struct apiserver *as, uint32_t ip, char *out, size_t len);
/* Sets spec.clusterIP(s) and nodePorts of svc (old: the stored Service on
 * update, else NULL) and fills c. On a user error returns -EINVAL with a
 * Status in *st; -ENOSPC with a Status when a range is full. */
int service_allocate(struct apiserver *as, cJSON *svc, const cJSON *old,
		     struct claims *c, cJSON **st);
/* Keys a deleted Service gives back. */
void service_releases(const struct apiserver *as, const cJSON *svc, struct claims *c);
