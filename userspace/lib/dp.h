/* The datapath as userspace sees it: the pinned maps under one bpffs
 * directory, how to load/unload programs there, and how to attach them. */
#pragma once
#include <stdbool.h>
#include <linux/types.h>
#include "rota/maps.h"

/* Open pinned maps of one datapath instance (one bpffs directory). */
struct rota_dp {
	char dir[256];
	int svc_fd;
	int backends_fd;
	int maglev_fd;
	int ct_fd;
	int affinity_fd;
	int sk_rev_fd;
	int sk_aff_fd;
	int frag_fd;
	int endpoints_fd;
	int config_fd;
	int stats_fd;
	int lock_fd;		/* flock()ed by writers, -1 when not held */
	int lock_depth;		/* rota_dp_lock calls not yet unlocked */
	__u32 svc_max;		/* max_entries of rota_svc4 */
	__u32 backends_max;
	__u32 ct_max;
	struct rota_config cfg;	/* as read at open */
};

/* Opens every pinned map in dir (NULL: the default). -ENOENT with a message
 * saying how to load when nothing is pinned there. */
int rota_dp_open(struct rota_dp *dp, const char *dir);
void rota_dp_close(struct rota_dp *dp);

/* Serialises writers (CLI, agent) on one directory. Nests: a caller that
 * holds it across many upserts (an agent's sync) spares each of them the
 * flock and the config read. */
int rota_dp_lock(struct rota_dp *dp);
void rota_dp_unlock(struct rota_dp *dp);

/* Reads/writes rota_config; the ID allocators live there. */
int rota_dp_config_read(struct rota_dp *dp);
int rota_dp_config_write(struct rota_dp *dp);

struct rota_load_opts {
	const char *dir;
	__u32 svc_entries;	/* 0: default or what is already pinned */
	__u32 backend_entries;
	__u32 ct_entries;
	__u32 maglev_m;		/* cap on each service's Maglev table; 0: what is
				 * pinned, else ROTA_MAGLEV_MAX_M */
};

/* Creates (or adopts) the maps and loads and pins every program. Running it
 * again on a loaded directory keeps all map contents and moves attached
 * cgroups to the new programs. */
int rota_dp_load(const struct rota_load_opts *opts);
/* Sizes the maps of another object that shares rota's pinned maps (tests,
 * benchmarks) so libbpf can adopt the pins in o->dir. */
struct bpf_object;
int rota_dp_size_maps(struct bpf_object *obj, const struct rota_load_opts *o);
/* Detaches everything attached from dir and removes every pin. */
int rota_dp_unload(const char *dir);

/* Makes sure a bpf filesystem is mounted at or above dir and creates it. */
int rota_bpffs_prepare(const char *dir);

/* Socket LB on a cgroup v2 directory; tc programs on a (host-side) veth. */
int rota_dp_attach_cgroup(const char *dir, const char *cgroup);
int rota_dp_detach_cgroup(const char *dir, const char *cgroup);
int rota_dp_attach_veth(const char *dir, const char *ifname);
int rota_dp_detach_veth(const char *dir, const char *ifname);
/* By ifindex: also works once the veth is gone (its netns was deleted). */
int rota_dp_detach_ifindex(const char *dir, int ifindex);
bool rota_dp_veth_attached(const char *dir, int ifindex);

/* Pin paths of programs and links. */
#define ROTA_PROGS_SUBDIR "progs"
#define ROTA_LINKS_SUBDIR "links"
#define ROTA_TC_PRIO   1	/* tc filter priority and handle rota uses */
#define ROTA_TC_HANDLE 0x726f	/* "ro" */

static inline const char *rota_dir_or_default(const char *dir)
{
	return dir && *dir ? dir : ROTA_DEFAULT_BPFFS_DIR;
}
