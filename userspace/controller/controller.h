/* rota-controller: shared state. Informer threads keep one object store per
 * kind and mark work; one controller thread turns work into API writes. A
 * single mutex guards the stores and the work sets; it is released while a
 * request is in flight. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "hmap.h"
#include "k8s/client.h"
#include "log.h"


#define MANAGED_BY "rota-controller"
#define LABEL_SVC_NAME "kubernetes.io/service-name"
#define LABEL_MANAGED_BY "endpointslice.kubernetes.io/managed-by"
#define ANN_TRIGGER "endpoints.kubernetes.io/last-change-trigger-time"
#define MAX_ENDPOINTS_PER_SLICE 100

enum kind { K_SVC, K_POD, K_NODE, K_EPS, K_KINDS };

struct informer {
	struct ctl *ctl;
	enum kind kind;
	const char *resource;
	const char *path;
	const char *selector;	/* extra query or NULL */
	pthread_t thread;
	unsigned long relists, restarts;
};

struct cidr4 {
	uint32_t base;		/* host order, masked */
	int prefix;
};

struct ctl {
	struct k8s_client client;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* CLOCK_MONOTONIC */
	volatile int stop;

	struct store st[K_KINDS];
	bool synced[K_KINDS];
	struct informer inf[K_KINDS];

	/* Work. dirty: "ns/name" of Services whose slices to sync; t is the
	 * wall-clock time of the first change not yet synced (0: none known). */
	struct hmap dirty;
	bool full_resync, nodes_dirty, lb_dirty;
	/* Failed work: key ("e:ns/name", "n", "l") -> t due (monotonic), num backoff ms. */
	struct hmap retry;
	double next_resync;

	/* Options. */
	int resync_s;
	bool node_ipam;
	struct cidr4 cluster_cidr;
	int node_mask;
	uint32_t node_cursor;
	struct cidr4 *pools;
	int npools;

	/* Last IPAM warning per object ("l:ns/name", "n:name"), to say it once. */
	struct hmap warned;

	unsigned long writes, write_errors;
};

/* A write, planned under the lock and run without it. */
struct op {
	const char *method;
	char *path;
	const char *ctype;
	char *body;
	int apply;		/* store the response object in this kind's store, or -1 */
	enum kind del_kind;	/* DELETE / 404: drop ns/name from this store */
	char *ns, *name;
	char *retry_key;	/* requeued on failure */
	char *what;		/* for logs */
};

struct ops {
	struct op *v;
	size_t n, cap;
};

struct op *ops_add(struct ops *o, const char *method, const char *ctype, cJSON *body, int apply,
		   enum kind del_kind, const char *ns, const char *name, const char *retry_key,
		   const char *fmt_path, ...) __attribute__((format(printf, 10, 11)));
/* Runs o's writes with c->lock released (the caller holds it), applying
 * results and scheduling retries; frees o's contents. Returns failures. */
int ops_run(struct ctl *c, struct ops *o);

/* Logs a warning about key once while it stays the same (debug after);
 * warn_clear forgets it when the condition is gone. */
void warn_once(struct ctl *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void warn_clear(struct ctl *c, const char *key);

double now_mono(void);
double now_real(void);
void retry_later(struct ctl *c, const char *key);
void retry_done(struct ctl *c, const char *key);

/* Called by informers. */
void ctl_replace(struct ctl *c, enum kind k, cJSON *items);	/* takes items (an array) */
void ctl_event(struct ctl *c, enum kind k, const char *type, cJSON *obj);	/* copies obj */
int informer_start(struct informer *inf);

/* endpointslice.c */
void eps_on_pod(struct ctl *c, const cJSON *old, const cJSON *new, double t);
void eps_sync(struct ctl *c, const char *ns, const char *name, double trigger);
bool pod_selected(const cJSON *svc, const cJSON *pod);

/* ipam.c */
int cidr4_parse(const char *s, struct cidr4 *out);
void node_ipam_pass(struct ctl *c);
void lb_ipam_pass(struct ctl *c);
