/* Loading and unloading the datapath: maps created or adopted by pin name,
 * programs loaded from the embedded skeletons and pinned, so that nothing
 * is compiled or read from disk at load time. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "dp.h"
#include "log.h"
#include "maglev.h"
#include "sock.skel.h"
#include "pod.skel.h"
#include "pod_compat.skel.h"

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

int rota_bpffs_prepare(const char *dir)
{
	char parent[256], sub[300];

	snprintf(parent, sizeof(parent), "%s", dir);
	dirname(parent);
	if (!is_bpffs(parent) && !is_bpffs(dir)) {
		if (strcmp(parent, "/sys/fs/bpf") == 0) {
			mkdir(parent, 0700);
			if (mount("bpf", parent, "bpf", 0, "mode=0700") < 0) {
				pr_warn("mount bpffs at %s: %s", parent, strerror(errno));
				return -errno;
			}
			pr_info("mounted bpffs at %s", parent);
		} else {
			pr_warn("%s is not on a bpf filesystem: mount one with `mount -t bpf bpf %s`",
				dir, parent);
			return -ENOTSUP;
		}
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		pr_warn("create %s: %s", dir, strerror(errno));
		return -errno;
	}
	snprintf(sub, sizeof(sub), "%s/%s", dir, ROTA_PROGS_SUBDIR);
	if (mkdir(sub, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(sub, sizeof(sub), "%s/%s", dir, ROTA_LINKS_SUBDIR);
	if (mkdir(sub, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The size a map will have: what is pinned already (its contents are kept),
 * else what was asked, else the compiled default. */
static int size_map(struct bpf_map *map, const char *dir, __u32 want)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		int err = bpf_obj_get_info_by_fd(fd, &info, &len);

		close(fd);
		if (err)
			return -errno;
		if (want && want != info.max_entries)
			pr_warn("%s already holds %u entries at most; keeping it (unload first to resize)",
				path, info.max_entries);
		return bpf_map__set_max_entries(map, info.max_entries);
	}
	return want ? bpf_map__set_max_entries(map, want) : 0;
}

int rota_dp_size_maps(struct bpf_object *obj, const struct rota_load_opts *o)
{
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		__u32 want = 0;

		if (bpf_map__is_internal(map))
			continue;
		/* Every service has a master slot in rota_svc4, so no more
		 * services than its slots can have a Maglev table. */
		if (!strcmp(name, ROTA_MAP_SVC4) || !strcmp(name, ROTA_MAP_MAGLEV4))
			want = o->svc_entries;
		else if (!strcmp(name, ROTA_MAP_BACKENDS4))
			want = o->backend_entries;
		else if (!strcmp(name, ROTA_MAP_CT4))
			want = o->ct_entries;
		err = size_map(map, o->dir, want);
		if (err)
			return err;
	}
	return 0;
}

/* Pins every program of obj under dir/progs, replacing older pins. */
static int pin_progs(struct bpf_object *obj, const char *dir)
{
	struct bpf_program *prog;
	char path[512];
	int err;

	bpf_object__for_each_program(prog, obj) {
		snprintf(path, sizeof(path), "%s/%s/%s", dir, ROTA_PROGS_SUBDIR, bpf_program__name(prog));
		unlink(path);
		err = bpf_program__pin(prog, path);
		if (err) {
			pr_warn("pin %s: %s", path, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* Existing attachments (pinned links) switch to the newly pinned programs. */
static void relink(const char *dir)
{
	char path[512], prog_path[512];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, ROTA_LINKS_SUBDIR);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *prog = strchr(de->d_name, '@');
		int link_fd, prog_fd;

		if (!prog)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, ROTA_LINKS_SUBDIR, de->d_name);
		snprintf(prog_path, sizeof(prog_path), "%s/%s/%s", dir, ROTA_PROGS_SUBDIR, prog + 1);
		link_fd = bpf_obj_get(path);
		prog_fd = bpf_obj_get(prog_path);
		if (link_fd >= 0 && prog_fd >= 0 && bpf_link_update(link_fd, prog_fd, NULL))
			pr_warn("update %s to the new %s: %s", path, prog + 1, strerror(errno));
		if (link_fd >= 0)
			close(link_fd);
		if (prog_fd >= 0)
			close(prog_fd);
	}
	closedir(d);
}

/* Reads the pinned config, if any, to keep its Maglev cap and allocators. */
static int pinned_config(const char *dir, struct rota_config *cfg)
{
	char path[512];
	__u32 zero = 0;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, ROTA_MAP_CONFIG);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_map_lookup_elem(fd, &zero, cfg) ? -errno : 0;
	close(fd);
	return err;
}

/* The tc programs read skb->ip_summed through this kfunc (Linux 6.2) to
 * rewrite checksums without helper calls; older kernels get pod_compat,
 * the same programs leaving the checksums to the helpers. */
static bool kernel_has_cast_to_kern_ctx(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool has = btf && btf__find_by_name_kind(btf, "bpf_cast_to_kern_ctx", BTF_KIND_FUNC) >= 0;

	btf__free(btf);
	return has;
}

#define SET_RODATA(skel, hp) do { \
	(skel)->rodata->hairpin_addr = (hp); \
} while (0)

/* A new Maglev cap on a loaded datapath: only librota reads it (when it
 * sizes a table), so it is rewritten in place, under the writers' lock.
 * Tables already built keep their size. */
static int maglev_cap_set(const char *dir, __u32 cap)
{
	struct rota_dp dp;
	int err;

	err = rota_dp_open(&dp, dir);
	if (err)
		return err;
	err = rota_dp_lock(&dp);
	if (!err && dp.cfg.maglev_m != cap) {
		pr_info("%s: Maglev tables capped at %u entries (was %u)", dir, cap, dp.cfg.maglev_m);
		dp.cfg.maglev_m = cap;
		err = rota_dp_config_write(&dp);
	}
	rota_dp_close(&dp);
	return err;
}

int rota_dp_load(const struct rota_load_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o->dir);
	struct rota_config cfg = {};
	struct rota_sock *sock = NULL;
	struct rota_pod *pod = NULL;
	struct rota_pod_compat *pod_compat = NULL;
	struct bpf_object *pod_obj;
	bool fresh;
	__u32 m;
	int err;

	err = rota_bpffs_prepare(o->dir);
	if (err)
		return err;

	fresh = pinned_config(o->dir, &cfg) != 0 || cfg.abi_version == 0;
	if (!fresh && cfg.abi_version != ROTA_ABI_VERSION) {
		pr_warn("%s holds maps of ABI v%u, this rota is v%u: `rota unload` first",
			o->dir, cfg.abi_version, ROTA_ABI_VERSION);
		return -EPROTO;
	}
	/* The cap on every service's Maglev table: asked for, else what is
	 * pinned, else the largest table there is. */
	m = o->maglev_m ? o->maglev_m : fresh ? ROTA_MAGLEV_MAX_M : cfg.maglev_m;
	if (!maglev_size_valid(m)) {
		pr_warn("maglev table size %u: must be a prime between %u and %u", m, ROTA_MAGLEV_MIN_M,
			ROTA_MAGLEV_MAX_M);
		return -EINVAL;
	}
	if (fresh) {
		cfg = (struct rota_config){
			.abi_version = ROTA_ABI_VERSION,
			.maglev_m = m,
			.hairpin_addr = htonl(ROTA_HAIRPIN_ADDR_DEFAULT),
			.tcp_established_timeout = 86400,
			.tcp_syn_timeout = 60,
			.tcp_close_timeout = 10,
			.udp_timeout = 60,
			.next_svc_id = 1,
			.next_backend_id = 1,
		};
	}

	sock = rota_sock__open_opts(&oo);
	if (kernel_has_cast_to_kern_ctx())
		pod = rota_pod__open_opts(&oo);
	else
		pod_compat = rota_pod_compat__open_opts(&oo);
	if (!sock || (!pod && !pod_compat)) {
		err = -errno;
		pr_warn("open embedded BPF objects: %s", strerror(-err));
		goto out;
	}
	SET_RODATA(sock, cfg.hairpin_addr);
	if (pod)
		SET_RODATA(pod, cfg.hairpin_addr);
	else
		SET_RODATA(pod_compat, cfg.hairpin_addr);
	pod_obj = pod ? pod->obj : pod_compat->obj;
	err = rota_dp_size_maps(sock->obj, o);
	if (!err)
		err = rota_dp_size_maps(pod_obj, o);
	if (err) {
		pr_warn("size maps in %s: %s", o->dir, strerror(-err));
		goto out;
	}
	err = rota_sock__load(sock);
	if (err) {
		pr_warn("load socket LB programs: %s", strerror(-err));
		goto out;
	}
	err = pod ? rota_pod__load(pod) : rota_pod_compat__load(pod_compat);
	if (err) {
		pr_warn("load tc programs: %s", strerror(-err));
		goto out;
	}
	err = pin_progs(sock->obj, o->dir);
	if (!err)
		err = pin_progs(pod_obj, o->dir);
	if (err)
		goto out;
	relink(o->dir);

	if (fresh) {
		__u32 zero = 0;

		if (bpf_map_update_elem(bpf_map__fd(sock->maps.rota_config), &zero, &cfg, BPF_ANY)) {
			err = -errno;
			pr_warn("write %s/%s: %s", o->dir, ROTA_MAP_CONFIG, strerror(-err));
		}
	} else if (m != cfg.maglev_m) {
		err = maglev_cap_set(o->dir, m);
	}
out:
	rota_pod__destroy(pod);
	rota_pod_compat__destroy(pod_compat);
	rota_sock__destroy(sock);
	return err;
}

static int unpin_dir(const char *path)
{
	struct dirent *de;
	char p[600];
	DIR *d = opendir(path);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (unlink(p) < 0 && errno == EISDIR)
			unpin_dir(p);
	}
	closedir(d);
	return rmdir(path) < 0 ? -errno : 0;
}

int rota_dp_unload(const char *dir)
{
	char path[512];
	int err;

	/* Links first: unpinning the last reference detaches the program. */
	snprintf(path, sizeof(path), "%s/%s", dir, ROTA_LINKS_SUBDIR);
	unpin_dir(path);
	snprintf(path, sizeof(path), "%s/%s", dir, ROTA_PROGS_SUBDIR);
	unpin_dir(path);
	err = unpin_dir(dir);
	if (err && err != -ENOENT)
		pr_warn("remove %s: %s", dir, strerror(-err));
	return err == -ENOENT ? 0 : err;
}
