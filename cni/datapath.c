/* rota-cni's side of the datapath: is it loaded in bpffsDir, attach rota's
 * tc programs to a pod's host veth and write its local-endpoint entry, undo
 * that, check it, and GC what vanished veths left behind. The pinned maps are opened once per call and kept until
 * the process exits (an ADD used to open all of them twice). */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "cni.h"
#include "dp.h"

static struct rota_dp dp;
static bool dp_open;

/* 0 or -errno; rota_dp_open also checks the maps' ABI version. */
static int dp_maps(const struct cni_conf *c)
{
	int err;

	if (dp_open)
		return 0;
	err = rota_dp_open(&dp, c->bpffs_dir);
	if (!err)
		dp_open = true;
	return err;
}

int dp_ready(const struct cni_conf *c, int code)
{
	char p[512];

	if (dp_maps(c))
		return cni_error(code, "rota datapath is not loaded in %s (run `rota load --bpffs-dir %s`)",
				 c->bpffs_dir, c->bpffs_dir);
	snprintf(p, sizeof(p), "%s/%s/rota_from_pod", c->bpffs_dir, ROTA_PROGS_SUBDIR);
	if (access(p, F_OK))
		return cni_error(code, "rota's tc programs are not pinned in %s/%s", c->bpffs_dir, ROTA_PROGS_SUBDIR);
	return 0;
}

int dp_wire(const struct cni_conf *c, const struct pod_link *l, in_addr_t ip)
{
	struct rota_endpoint ep = { .ifindex = (__u32)l->host_ifindex };
	int err;

	err = rota_dp_attach_veth(c->bpffs_dir, l->host_name);
	if (err)
		return cni_error(ROTA_ERR_DATAPATH, "attach rota's tc programs to %s from %s: %s", l->host_name,
				 c->bpffs_dir, strerror(-err));
	memcpy(ep.mac, l->pod_mac, 6);
	memcpy(ep.node_mac, l->host_mac, 6);
	err = dp_maps(c);
	if (err)
		return cni_error(ROTA_ERR_DATAPATH, "open maps in %s: %s", c->bpffs_dir, strerror(-err));
	if (bpf_map_update_elem(dp.endpoints_fd, &ip, &ep, BPF_ANY))
		return cni_error(ROTA_ERR_DATAPATH, "write %s entry: %s", ROTA_MAP_ENDPOINTS4, strerror(errno));
	return 0;
}

/* Best effort: links by ifindex (the veth may be gone with its netns),
 * the endpoint entry only if it is still ours. */
void dp_unwire(const struct cni_conf *c, int host_ifindex, in_addr_t ip)
{
	struct rota_endpoint ep;

	if (host_ifindex > 0)
		rota_dp_detach_ifindex(c->bpffs_dir, host_ifindex);
	if (!ip || dp_maps(c))
		return;
	if (bpf_map_lookup_elem(dp.endpoints_fd, &ip, &ep) == 0 &&
	    (host_ifindex <= 0 || ep.ifindex == (__u32)host_ifindex))
		bpf_map_delete_elem(dp.endpoints_fd, &ip);
}

/* For GC of a veth with no record: its address is the endpoint entry that
 * points at it. Walks the map (one entry per local pod). */
in_addr_t dp_endpoint_of(const struct cni_conf *c, int host_ifindex)
{
	struct rota_endpoint ep;
	__u32 key, next;
	__u32 *prev = NULL;

	if (host_ifindex <= 0 || dp_maps(c))
		return 0;
	while (bpf_map_get_next_key(dp.endpoints_fd, prev, &next) == 0) {
		if (bpf_map_lookup_elem(dp.endpoints_fd, &next, &ep) == 0 && ep.ifindex == (__u32)host_ifindex)
			return next;
		key = next;
		prev = &key;
	}
	return 0;
}

int dp_check(const struct cni_conf *c, const char *host_name, in_addr_t ip)
{
	struct rota_endpoint ep;
	char b[16];
	int ifindex;

	if (net_host_link(host_name, &ifindex))
		return cni_error(ROTA_ERR_CHECK, "host-side veth %s is missing", host_name);
	if (!rota_dp_veth_attached(c->bpffs_dir, ifindex))
		return cni_error(ROTA_ERR_CHECK, "rota's tc programs are not attached to %s (in %s)", host_name,
				 c->bpffs_dir);
	if (dp_maps(c))
		return cni_error(ROTA_ERR_CHECK, "rota datapath is not loaded in %s", c->bpffs_dir);
	if (bpf_map_lookup_elem(dp.endpoints_fd, &ip, &ep) || ep.ifindex != (__u32)ifindex)
		return cni_error(ROTA_ERR_CHECK, "%s has no entry for %s on %s", ROTA_MAP_ENDPOINTS4, ip_str(ip, b),
				 host_name);
	return 0;
}

/* The head of struct bpf_link_info with its tcx member (Linux 6.6; Debian
 * 12's UAPI headers predate it): the union starts 8-byte aligned. */
struct tcx_link_info {
	__u32 type, id, prog_id, pad;
	__u32 ifindex, attach_type;
};
#define LINK_TYPE_TCX 11

/* A pinned tc link whose veth is gone: the kernel detached it (ifindex 0)
 * but the pin keeps the link and its program alive. */
static bool link_pin_defunct(const char *path)
{
	struct tcx_link_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);
	bool defunct;

	if (fd < 0)
		return false;
	defunct = !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == LINK_TYPE_TCX && info.ifindex == 0;
	close(fd);
	return defunct;
}

int dp_gc(const struct cni_conf *c)
{
	char dir[512], path[1024], name[IF_NAMESIZE];
	struct rota_endpoint ep;
	struct dirent *de;
	__u32 key, next, *prev = NULL;
	int removed = 0;
	DIR *d;

	/* tc link pins (if<ifindex>-<hook>@<prog>) of veths that are gone. */
	snprintf(dir, sizeof(dir), "%s/%s", c->bpffs_dir, ROTA_LINKS_SUBDIR);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "if", 2))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (link_pin_defunct(path) && unlink(path) == 0) {
			fprintf(stderr, "rota-cni: GC: removed %s (its veth is gone)\n", path);
			removed++;
		}
	}
	if (d)
		closedir(d);
	/* Endpoint entries naming an interface this netns no longer has. */
	if (dp_maps(c))
		return removed;
	while (bpf_map_get_next_key(dp.endpoints_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(dp.endpoints_fd, &key, &ep) || if_indextoname(ep.ifindex, name))
			continue;
		if (bpf_map_delete_elem(dp.endpoints_fd, &key) == 0) {
			char b[16];

			fprintf(stderr, "rota-cni: GC: removed %s entry %s (ifindex %u is gone)\n", ROTA_MAP_ENDPOINTS4,
				ip_str(key, b), ep.ifindex);
			removed++;
			prev = NULL;	/* the walk restarts: the deleted key cannot lead on */
		}
	}
	return removed;
}
