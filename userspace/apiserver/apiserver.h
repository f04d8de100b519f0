/* apiserver.h: the running server's shared state and the entry points
 * each part of rota-apiserver offers to the others. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "resource.h"
#include "store.h"

struct tokens;
struct req;
struct x509_store_st;		/* OpenSSL's X509_STORE */
struct MHD_Connection;

struct apiserver {
	struct store *store;
	char prefix[256];		/* key prefix, "/registry" */

	/* --service-cluster-ip-range, host byte order */
	uint32_t svc_net;
	unsigned svc_bits;
	char svc_cidr[64];
	/* --service-node-port-range */
	int np_lo, np_hi;

	size_t max_body;
	int bookmark_secs;
	/* what one client may take of the HTTP front (http.c, docs/apiserver.md) */
	struct http_limits {
		unsigned max_conns;		/* --max-connections */
		unsigned max_conns_per_client;	/* --max-connections-per-client (per address) */
		unsigned header_timeout;	/* --request-header-timeout, seconds */
		unsigned idle_timeout;		/* --idle-timeout, seconds */
		unsigned max_inflight;		/* --max-requests-inflight (reads) */
		unsigned max_mutating;		/* --max-mutating-requests-inflight */
	} limits;
	unsigned inflight, inflight_mutating;	/* atomics */
	struct conn_guard *guard;
	char bind_addr[64];
	int port;
	bool tls;
	struct tokens *tokens;
	/* --client-ca-file: client certificates signed by these CAs
	 * authenticate as their subject's CN (groups: O), as in kube-apiserver.
	 * The PEM goes to the TLS layer (it asks clients for a certificate),
	 * the store verifies what they present. NULL: no x509 authentication. */
	char *client_ca_pem;
	struct x509_store_st *client_cas;

	/* secrets at rest: AES-256-GCM, key name goes into the value prefix */
	bool enc;
	unsigned char enc_key[32];
	char enc_name[64];

	volatile int ready;
	volatile int stopping;
};

/* http.c: starts the daemon; http_stop ends it. */
struct MHD_Daemon;
int http_start(struct apiserver *as, const char *cert_pem, const char *key_pem,
	       struct MHD_Daemon **out);
void http_stop(struct apiserver *as, struct MHD_Daemon *d);

/* auth.c */
struct token_user {
	char *token, *user, *uid, *groups;
};
int tokens_load(struct tokens **t, const char *file);
int tokens_add(struct tokens **t, const char *token, const char *user, const char *uid,
	       const char *groups);
const struct token_user *tokens_check(const struct tokens *t, const char *token);
void tokens_free(struct tokens *t);
/* data_dir/admin.token, generated on first start. out: 64 hex chars. */
int admin_token(const char *data_dir, char out[65]);
/* x509 client-certificate authentication: 0 and the user (the verified
 * certificate's CN) when the connection presented a certificate that
 * verifies against --client-ca-file for client use; -ENOENT when it
 * presented none (or x509 authentication is off); -EACCES when it does not
 * verify (logged with the reason). */
int client_cert_user(const struct apiserver *as, struct MHD_Connection *conn, char *user, size_t len);

/* tls.c: CA and serving certificate in data_dir/pki, generated once. */
int tls_ensure(const char *data_dir, const char *bind_addr, uint32_t svc_ip,
	       char **cert_pem, char **key_pem, char **ca_pem);
/* --client-ca-file: every PEM certificate of the file into as->client_cas
 * and as->client_ca_pem. Fails, naming the file, when it holds none. */
int client_ca_load(struct apiserver *as, const char *file);
void client_ca_free(struct apiserver *as);
/* kubeconfig.c */
int kubeconfig_write(const char *file, const char *server, const char *ca_pem,
		     const char *token);

/* rest.c */
int rest_handle(struct req *r, const char *group, const char *version,
		char **seg, int nseg);
/* Builds the key of an object; ns NULL for cluster-scoped. */
int object_key(const struct apiserver *as, const struct resource *res,
	       const char *ns, const char *name, char *out, size_t outlen);
/* Store value -> object with resourceVersion set; NULL on a corrupt value. */
cJSON *object_decode(const struct apiserver *as, const struct resource *res,
		     const char *value, size_t len, int64_t rev);
/* Creates default/kube-system namespaces and the kubernetes Service. */
int rest_bootstrap(struct apiserver *as);

/* discovery.c: 1 if it answered the request (reply in r->ret), 0 if the path is not its. */
int discovery_handle(struct req *r, const char *path);

/* crypt.c: secrets at rest */
int crypt_load_key(struct apiserver *as, const char *file);
int crypt_seal(const struct apiserver *as, const char *plain, size_t len,
	       char **out, size_t *outlen);
int crypt_open(const struct apiserver *as, const char *value, size_t len,
	       char **out, size_t *outlen);
