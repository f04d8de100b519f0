/* Opening a loaded datapath: the pinned maps, the writers' lock and the
 * config entry. Everything the CLI and the agent read comes from here. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "dp.h"
#include "log.h"

static int open_pinned(const struct rota_dp *dp, const char *name, __u32 *max_entries)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dp->dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (max_entries) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			*max_entries = info.max_entries;
	}
	return fd;
}

int rota_dp_open(struct rota_dp *dp, const char *dir)
{
	struct { const char *name; int *fd; __u32 *max; } maps[] = {
		{ ROTA_MAP_SVC4, &dp->svc_fd, &dp->svc_max },
		{ ROTA_MAP_BACKENDS4, &dp->backends_fd, &dp->backends_max },
		{ ROTA_MAP_MAGLEV4, &dp->maglev_fd, NULL },
		{ ROTA_MAP_CT4, &dp->ct_fd, &dp->ct_max },
		{ ROTA_MAP_AFFINITY4, &dp->affinity_fd, NULL },
		{ ROTA_MAP_SK_REV4, &dp->sk_rev_fd, NULL },
		{ ROTA_MAP_SK_AFF4, &dp->sk_aff_fd, NULL },
		{ ROTA_MAP_FRAG4, &dp->frag_fd, NULL },
		{ ROTA_MAP_ENDPOINTS4, &dp->endpoints_fd, NULL },
		{ ROTA_MAP_CONFIG, &dp->config_fd, NULL },
		{ ROTA_MAP_STATS, &dp->stats_fd, NULL },
	};
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->lock_fd = -1;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		*maps[i].fd = -1;
	snprintf(dp->dir, sizeof(dp->dir), "%s", rota_dir_or_default(dir));

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		int fd = open_pinned(dp, maps[i].name, maps[i].max);

		if (fd < 0) {
			err = fd;
			if (err == -ENOENT)
				pr_warn("no rota datapath in %s (%s is not pinned there): load it with `rota load%s%s`",
					dp->dir, maps[i].name, dir ? " --bpffs-dir " : "", dir ? dp->dir : "");
			else
				pr_warn("open pinned map %s/%s: %s", dp->dir, maps[i].name, strerror(-err));
			rota_dp_close(dp);
			return err;
		}
		*maps[i].fd = fd;
	}
	err = rota_dp_config_read(dp);
	if (err) {
		rota_dp_close(dp);
		return err;
	}
	if (dp->cfg.abi_version != ROTA_ABI_VERSION) {
		pr_warn("maps in %s use map ABI v%u, this rota speaks v%u: `rota unload` and `rota load` again",
			dp->dir, dp->cfg.abi_version, ROTA_ABI_VERSION);
		rota_dp_close(dp);
		return -EPROTO;
	}
	return 0;
}

void rota_dp_close(struct rota_dp *dp)
{
	int *fds[] = { &dp->svc_fd, &dp->backends_fd, &dp->maglev_fd, &dp->ct_fd,
		       &dp->affinity_fd, &dp->sk_rev_fd, &dp->sk_aff_fd, &dp->frag_fd,
		       &dp->endpoints_fd, &dp->config_fd, &dp->stats_fd };

	rota_dp_unlock(dp);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int rota_dp_lock(struct rota_dp *dp)
{
	int err;

	if (dp->lock_depth++ > 0)
		return 0;
	dp->lock_fd = open(dp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->lock_fd < 0) {
		dp->lock_depth = 0;
		return -errno;
	}
	if (flock(dp->lock_fd, LOCK_EX) < 0) {
		err = -errno;
		close(dp->lock_fd);
		dp->lock_fd = -1;
		dp->lock_depth = 0;
		return err;
	}
	/* Another writer may have allocated IDs since we opened. */
	err = rota_dp_config_read(dp);
	if (err)
		rota_dp_unlock(dp);
	return err;
}

void rota_dp_unlock(struct rota_dp *dp)
{
	if (dp->lock_fd < 0 || --dp->lock_depth > 0)
		return;
	flock(dp->lock_fd, LOCK_UN);
	close(dp->lock_fd);
	dp->lock_fd = -1;
}

int rota_dp_config_read(struct rota_dp *dp)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(dp->config_fd, &zero, &dp->cfg)) {
		pr_warn("read %s/%s: %s", dp->dir, ROTA_MAP_CONFIG, strerror(errno));
		return -errno;
	}
	return 0;
}

int rota_dp_config_write(struct rota_dp *dp)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(dp->config_fd, &zero, &dp->cfg, BPF_ANY)) {
		pr_warn("write %s/%s: %s", dp->dir, ROTA_MAP_CONFIG, strerror(errno));
		return -errno;
	}
	return 0;
}
