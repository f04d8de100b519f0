/* Attaching pinned programs: socket LB to a cgroup v2 directory, the tc
 * programs to a veth (tcx). Each attachment is a bpf_link pinned under
 * <dir>/links as <target>@<program>, so it outlives the CLI, a reload can
 * move it to new programs, and unload can find and remove it. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "dp.h"
#include "log.h"

/* Not in Debian 12's UAPI headers; stable kernel ABI since Linux 6.6. */
#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS  47
#endif

struct hook {
	const char *suffix;	/* pin name part */
	const char *prog;	/* pinned program name */
	int attach_type;
};

static const struct hook cgroup_hooks[] = {
	{ "connect4", "rota_sock_connect4", BPF_CGROUP_INET4_CONNECT },
	{ "sendmsg4", "rota_sock_sendmsg4", BPF_CGROUP_UDP4_SENDMSG },
	{ "recvmsg4", "rota_sock_recvmsg4", BPF_CGROUP_UDP4_RECVMSG },
	{ "getpeername4", "rota_sock_getpeername4", BPF_CGROUP_INET4_GETPEERNAME },
};

static const struct hook veth_hooks[] = {
	{ "ingress", "rota_from_pod", BPF_TCX_INGRESS },	/* what the pod sends */
	{ "egress", "rota_to_pod", BPF_TCX_EGRESS },		/* what the pod receives */
};

static void link_path(char *buf, size_t len, const char *dir, const char *target,
		      const struct hook *h)
{
	snprintf(buf, len, "%s/%s/%s-%s@%s", dir, ROTA_LINKS_SUBDIR, target, h->suffix, h->prog);
}

/* Attaches (or re-points) one hook and pins its link. */
static int attach_one(const char *dir, const char *target, int target_fd, const struct hook *h,
		      const char *what)
{
	char lpath[512], ppath[512];
	int prog_fd, link_fd, err = 0;

	snprintf(ppath, sizeof(ppath), "%s/%s/%s", dir, ROTA_PROGS_SUBDIR, h->prog);
	prog_fd = bpf_obj_get(ppath);
	if (prog_fd < 0) {
		err = -errno;
		pr_warn("no program pinned at %s: run `rota load%s%s` first", ppath,
			strcmp(dir, ROTA_DEFAULT_BPFFS_DIR) ? " --bpffs-dir " : "",
			strcmp(dir, ROTA_DEFAULT_BPFFS_DIR) ? dir : "");
		return err;
	}
	link_path(lpath, sizeof(lpath), dir, target, h);
	link_fd = bpf_obj_get(lpath);
	if (link_fd >= 0) {
		/* Already attached: make sure it runs the current program. */
		if (bpf_link_update(link_fd, prog_fd, NULL))
			err = -errno;
		goto out;
	}
	link_fd = bpf_link_create(prog_fd, target_fd, h->attach_type, NULL);
	if (link_fd < 0) {
		err = -errno;
		pr_warn("attach %s %s on %s: %s", h->prog, h->suffix, what, strerror(-err));
		goto out;
	}
	if (bpf_obj_pin(link_fd, lpath)) {
		err = -errno;
		pr_warn("pin link %s: %s", lpath, strerror(-err));
	}
out:
	if (link_fd >= 0)
		close(link_fd);
	close(prog_fd);
	return err;
}

static int detach_one(const char *dir, const char *target, const struct hook *h)
{
	char lpath[512];

	link_path(lpath, sizeof(lpath), dir, target, h);
	if (unlink(lpath) < 0)
		return -errno;
	return 0;
}

static int cgroup_target(const char *cgroup, char *target, size_t len, int *fd)
{
	struct stat st;

	*fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st) < 0) {
		int err = -errno;

		pr_warn("cgroup %s: %s", cgroup, strerror(-err));
		return err;
	}
	/* The inode names the cgroup even if the path is spelled differently. */
	snprintf(target, len, "cg%llu", (unsigned long long)st.st_ino);
	return 0;
}

int rota_dp_attach_cgroup(const char *dir, const char *cgroup)
{
	char target[64];
	int fd, err;

	err = cgroup_target(cgroup, target, sizeof(target), &fd);
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(cgroup_hooks) / sizeof(cgroup_hooks[0]); i++) {
		err = attach_one(dir, target, fd, &cgroup_hooks[i], cgroup);
		if (err) {
			while (i--)
				detach_one(dir, target, &cgroup_hooks[i]);
			break;
		}
	}
	close(fd);
	return err;
}

int rota_dp_detach_cgroup(const char *dir, const char *cgroup)
{
	char target[64];
	int fd, err, ret = 0;

	err = cgroup_target(cgroup, target, sizeof(target), &fd);
	if (err)
		return err;
	close(fd);
	for (size_t i = 0; i < sizeof(cgroup_hooks) / sizeof(cgroup_hooks[0]); i++) {
		err = detach_one(dir, target, &cgroup_hooks[i]);
		if (err && !ret)
			ret = err;
	}
	if (ret == -ENOENT)
		pr_warn("nothing of rota's is attached to cgroup %s (in %s)", cgroup, dir);
	return ret;
}

static int veth_target(const char *ifname, char *target, size_t len, int *ifindex)
{
	*ifindex = (int)if_nametoindex(ifname);
	if (!*ifindex) {
		int err = -errno;

		pr_warn("interface %s: %s", ifname, strerror(-err));
		return err;
	}
	snprintf(target, len, "if%d", *ifindex);
	return 0;
}

int rota_dp_attach_veth(const char *dir, const char *ifname)
{
	char target[64];
	int ifindex, err;

	err = veth_target(ifname, target, sizeof(target), &ifindex);
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(veth_hooks) / sizeof(veth_hooks[0]); i++) {
		err = attach_one(dir, target, ifindex, &veth_hooks[i], ifname);
		if (err) {
			while (i--)
				detach_one(dir, target, &veth_hooks[i]);
			break;
		}
	}
	return err;
}

int rota_dp_detach_ifindex(const char *dir, int ifindex)
{
	char target[64];
	int err, ret = 0;

	snprintf(target, sizeof(target), "if%d", ifindex);
	for (size_t i = 0; i < sizeof(veth_hooks) / sizeof(veth_hooks[0]); i++) {
		err = detach_one(dir, target, &veth_hooks[i]);
		if (err && !ret)
			ret = err;
	}
	return ret;
}

int rota_dp_detach_veth(const char *dir, const char *ifname)
{
	char target[64];
	int ifindex, err;

	err = veth_target(ifname, target, sizeof(target), &ifindex);
	if (err)
		return err;
	err = rota_dp_detach_ifindex(dir, ifindex);
	if (err == -ENOENT)
		pr_warn("nothing of rota's is attached to %s (in %s)", ifname, dir);
	return err;
}

bool rota_dp_veth_attached(const char *dir, int ifindex)
{
	char target[64], path[512];

	snprintf(target, sizeof(target), "if%d", ifindex);
	for (size_t i = 0; i < sizeof(veth_hooks) / sizeof(veth_hooks[0]); i++) {
		link_path(path, sizeof(path), dir, target, &veth_hooks[i]);
		if (access(path, F_OK))
			return false;
	}
	return true;
}
