/* rota-cni: a CNI 1.0/1.1 plugin. Shared declarations of its parts:
 * main.c (environment, dispatch, ADD/DEL/CHECK/STATUS, results, errors),
 * gc.c (GC), conf.c (network config), ipam.c (built-in allocator,
 * delegation), net.c (netlink via libnl-route-3), datapath.c (tc attach and
 * endpoint entries), state.c (attachment records for DEL/GC). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <cjson/cJSON.h>

/* CNI error codes (SPEC.md "Error"); 100+ are rota-cni's own. */
enum {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_NOT_AVAILABLE = 50,
	CNI_ERR_LIMITED = 51,
	ROTA_ERR_IPAM = 100,		/* no free address, state dir unusable */
	ROTA_ERR_NETLINK = 101,		/* link/address/route/neighbour */
	ROTA_ERR_DATAPATH = 102,	/* tc attach, endpoint map */
	ROTA_ERR_CHECK = 103,		/* CHECK found a difference */
	ROTA_ERR_DELEGATE = 104,	/* delegated IPAM plugin could not run */
	ROTA_ERR_KUBE = 105,		/* Node podCIDR from the API */
	ROTA_ERR_EXISTS = 106,		/* ADD: the interface is already there */
};

#define ROTA_CNI_GATEWAY "169.254.1.1"
#define ROTA_CNI_BUILTIN_IPAM "rota-ipam"
#define ROTA_CNI_HOST_PREFIX "rota"
#define ROTA_CNI_STATE_ROOT "/var/lib/rota-cni"
/* Host veth alias: "rota-cni <network> <containerID> <ifname>", so GC can
 * tell this network's veths from others' and undo one without a record. */
#define ROTA_CNI_ALIAS_PREFIX "rota-cni"

/* Sets the error to report (first one wins); returns -1. */
int cni_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adopts a delegated plugin's error JSON verbatim; returns -1. */
int cni_error_raw(const char *json);
int cni_error_code(void);
const char *cni_error_msg(void);
/* Forgets the error (GC logs one attachment's failure and goes on). */
void cni_error_clear(void);

struct cni_env {
	const char *command;
	const char *container_id;
	const char *netns;
	const char *ifname;
	const char *args;
	const char *path;
};

struct cni_conf {
	cJSON *root;			/* the whole stdin config */
	const char *raw;		/* stdin bytes, passed to delegates as is */
	size_t raw_len;
	const char *cni_version;
	int version;			/* major*10000 + minor*100 + patch */
	const char *name;
	const char *type;
	char bpffs_dir[256];
	int mtu;			/* 0: kernel default */
	char data_dir[512];		/* attachment records, built-in IPAM state */
	/* IPAM */
	bool ipam_builtin;
	const char *ipam_type;
	in_addr_t subnet;		/* network order; 0 until resolved */
	int prefix;
	in_addr_t range_start, range_end;	/* network order, 0: whole subnet */
	const char *subnet_src;		/* where the subnet came from, for messages */
	const char *kubeconfig;
	const char *node_name;
	cJSON *prev_result;		/* may be NULL */
};

/* conf.c */
int cni_version_parse(const char *s);
bool cni_version_supported(const char *s);
extern const char *const cni_supported_versions[];
int conf_parse(struct cni_conf *c, const char *buf, size_t len, const char *command);
int conf_resolve_subnet(struct cni_conf *c);	/* kubeconfig lookup when needed */
int parse_cidr(const char *s, in_addr_t *net, int *prefix);
const char *ip_str(in_addr_t a, char buf[16]);

/* net.c */
struct pod_link {
	char host_name[16];
	int host_ifindex;
	unsigned char host_mac[6];
	int pod_ifindex;
	unsigned char pod_mac[6];
};
int net_init(void);			/* remembers the host netns */
int net_open_netns(const char *path);	/* fd or -errno */
int net_pod_exists(int nsfd, const char *ifname);	/* 1, 0, <0 */
int net_add(int nsfd, const char *ifname, const char *host_name, int mtu, in_addr_t ip,
	    const char *alias, struct pod_link *out);
int net_host_link(const char *host_name, int *ifindex);	/* 0, -ENODEV */
int net_del_host(const char *host_name);	/* 0 also when gone */
int net_check(int nsfd, const char *ifname, const char *host_name, in_addr_t ip);
void net_host_name(const char *cid, const char *ifname, char out[16]);
/* Every veth in the host netns named like rota's host side; a non-zero
 * return from cb stops the walk and is returned. */
struct host_veth {
	char name[16];
	int ifindex;
	const char *alias;	/* NULL when it has none */
};
typedef int (*host_veth_cb)(const struct host_veth *v, void *arg);
int net_foreach_host_veth(host_veth_cb cb, void *arg);

/* ipam.c */
int ipam_add(struct cni_conf *c, const struct cni_env *e, in_addr_t *ip);
int ipam_del(struct cni_conf *c, const struct cni_env *e, const char *cid, const char *ifname,
	     in_addr_t ip);
int ipam_check(struct cni_conf *c, const struct cni_env *e, in_addr_t ip);
int ipam_status(struct cni_conf *c, const struct cni_env *e);
int ipam_gc(struct cni_conf *c, const struct cni_env *e, const cJSON *valid);
int delegate_exec(const struct cni_env *e, const char *type, const char *command,
		  const char *cid, const char *ifname, const char *in, size_t in_len, cJSON **result);

/* state.c: one record per attachment under <data_dir>/attachments. */
struct att_rec {
	char cid[256];
	char ifname[16];
	char host_name[16];
	int host_ifindex;
	in_addr_t ip;
};
int state_prepare(const struct cni_conf *c);
int state_write(const struct cni_conf *c, const struct att_rec *r);
int state_read(const struct cni_conf *c, const char *cid, const char *ifname, struct att_rec *r);
int state_remove(const struct cni_conf *c, const char *cid, const char *ifname);
typedef int (*state_cb)(const struct att_rec *r, void *arg);
int state_foreach(const struct cni_conf *c, state_cb cb, void *arg);
int state_lock(const struct cni_conf *c);	/* fd, flock()ed; close() to unlock */
/* The host veth alias (ROTA_CNI_ALIAS_PREFIX); parse: 0 if it is rota-cni's
 * for network name (cid/ifname empty when the alias only names the network). */
void state_alias(const struct cni_conf *c, const char *cid, const char *ifname, char *out, size_t len);
int state_alias_parse(const struct cni_conf *c, const char *alias, char cid[256], char ifname[16]);

/* datapath.c: the pinned maps are opened once per call. */
int dp_ready(const struct cni_conf *c, int code);	/* error code to report when not loaded */
int dp_wire(const struct cni_conf *c, const struct pod_link *l, in_addr_t ip);
void dp_unwire(const struct cni_conf *c, int host_ifindex, in_addr_t ip);
int dp_check(const struct cni_conf *c, const char *host_name, in_addr_t ip);
in_addr_t dp_endpoint_of(const struct cni_conf *c, int host_ifindex);	/* 0: none */
/* GC: tc link pins whose veth is gone, endpoint entries naming a missing
 * interface. Returns how many were removed. */
int dp_gc(const struct cni_conf *c);

/* main.c: undoes one attachment whatever is left of it (DEL, GC). */
int attachment_teardown(struct cni_conf *c, const struct cni_env *e, const char *cid, const char *ifname,
			in_addr_t ip_hint, bool gc);
/* gc.c */
int cmd_gc(struct cni_conf *c, const struct cni_env *e);
/* Whether GC's valid-attachments list names this container and ifname. */
bool gc_attachment_valid(const cJSON *valid, const char *cid, const char *ifname);
