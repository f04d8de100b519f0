/* Services as librota's users see them: a frontend and its backends, written
 * to and read back from the pinned maps alone (so an agent can adopt what a
 * predecessor left). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "addr.h"
#include "dp.h"

struct rota_svc_backend {
	__be32 addr;
	__be16 port;
	bool   terminating;	/* keeps established flows, gets no new ones */
	__u32  id;		/* backend id, filled on read-back and upsert */
};

struct rota_service {
	struct rota_frontend fe;
	__u32 svc_id;			/* filled on read-back and upsert */
	__u8  type;			/* enum rota_svc_type */
	bool  maglev;
	__u32 maglev_m;			/* read back: entries in its Maglev table, 0 = none;
					 * upsert sizes the table itself (maglev_size_for) */
	__u32 affinity_timeout;		/* seconds; 0 = no ClientIP affinity */
	size_t n_backends;
	struct rota_svc_backend *backends;
};

/* Checks what the maps cannot hold or the datapath cannot serve. */
int rota_svc_validate(const struct rota_dp *dp, const struct rota_service *s, char err[ROTA_ERR_LEN]);
/* Creates or replaces a service so that no packet ever sees it half-written:
 * backends, then slots, then the Maglev table, then the master entry; stale
 * parts (a Maglev table of the old size among them) are removed only after.
 * On failure the maps are as they were. */
int rota_svc_upsert(struct rota_dp *dp, const struct rota_service *want, char err[ROTA_ERR_LEN]);
/* Removes a service, master entry first. -ENOENT if there is none. */
int rota_svc_delete(struct rota_dp *dp, const struct rota_frontend *fe);

/* Reads one service (backends in slot order: active, then terminating). */
int rota_svc_get(const struct rota_dp *dp, const struct rota_frontend *fe, struct rota_service *out);
/* Reads every service. */
int rota_svc_list(const struct rota_dp *dp, struct rota_service **out, size_t *n);
void rota_svc_free(struct rota_service *s);
void rota_svc_list_free(struct rota_service *list, size_t n);
size_t rota_svc_active_count(const struct rota_service *s);
