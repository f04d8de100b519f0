/* Addresses: the built-in allocator over the node's pod CIDR (one file per
 * address under <data_dir>/ipam, flock()ed, like host-local) or delegation
 * to the IPAM plugin named in ipam.type, found in CNI_PATH and run the way
 * the reference plugins run theirs (same environment and stdin). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cni.h"

extern char **environ;

/* ------------------------------------------------------------ delegation */

static int find_plugin(const struct cni_env *e, const char *type, char *out, size_t len)
{
	const char *p = e->path;

	while (p && *p) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);

		if (n) {
			snprintf(out, len, "%.*s/%s", (int)n, p, type);
			if (access(out, X_OK) == 0)
				return 0;
		}
		p = colon ? colon + 1 : NULL;
	}
	return -ENOENT;
}

static char *env_entry(const char *k, const char *v)
{
	char *s;

	if (asprintf(&s, "%s=%s", k, v) < 0)
		return NULL;
	return s;
}

int delegate_exec(const struct cni_env *e, const char *type, const char *command, const char *cid,
		  const char *ifname, const char *in, size_t in_len, cJSON **result)
{
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, status = 0, n_env = 0, n_mine = 0, ret = -1;
	char path[1024], *out = NULL, **env, *mine[3] = { NULL, NULL, NULL };
	size_t olen = 0, ocap = 0;
	pid_t pid;
	cJSON *res;

	*result = NULL;
	if (find_plugin(e, type, path, sizeof(path)))
		return cni_error(ROTA_ERR_DELEGATE, "IPAM plugin \"%s\" not found in CNI_PATH (%s)", type,
				 e->path ? e->path : "unset");
	for (char **p = environ; *p; p++)
		n_env++;
	env = calloc((size_t)n_env + 4, sizeof(*env));
	if (!env)
		return cni_error(ROTA_ERR_DELEGATE, "out of memory");
	n_env = 0;
	for (char **p = environ; *p; p++)
		if (strncmp(*p, "CNI_COMMAND=", 12) && (!cid || strncmp(*p, "CNI_CONTAINERID=", 16)) &&
		    (!ifname || strncmp(*p, "CNI_IFNAME=", 11)))
			env[n_env++] = *p;
	mine[n_mine++] = env_entry("CNI_COMMAND", command);
	if (cid)
		mine[n_mine++] = env_entry("CNI_CONTAINERID", cid);
	if (ifname)
		mine[n_mine++] = env_entry("CNI_IFNAME", ifname);
	for (int i = 0; i < n_mine; i++)
		if (mine[i])
			env[n_env++] = mine[i];
	if (pipe2(inp, O_CLOEXEC) || pipe2(outp, O_CLOEXEC)) {
		cni_error(ROTA_ERR_DELEGATE, "pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		cni_error(ROTA_ERR_DELEGATE, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		dup2(inp[0], 0);
		dup2(outp[1], 1);
		execve(path, (char *[]){ path, NULL }, env);
		_exit(127);
	}
	close(inp[0]);
	close(outp[1]);
	inp[0] = outp[1] = -1;
	signal(SIGPIPE, SIG_IGN);
	for (size_t off = 0; off < in_len;) {
		ssize_t w = write(inp[1], in + off, in_len - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(inp[1]);
	inp[1] = -1;
	for (;;) {
		ssize_t r;

		if (ocap - olen < 4096) {
			char *nb = realloc(out, ocap + 65536);

			if (!nb)
				break;
			out = nb;
			ocap += 65536;
		}
		r = read(outp[0], out + olen, ocap - olen - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		olen += (size_t)r;
	}
	if (out)
		out[olen] = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		res = out ? cJSON_Parse(out) : NULL;
		if (res && cJSON_IsNumber(cJSON_GetObjectItem(res, "code")))
			cni_error_raw(out);	/* the delegate's own error, as is */
		else
			cni_error(ROTA_ERR_DELEGATE, "IPAM plugin %s %s failed (exit %d) without an error result",
				  path, command, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		cJSON_Delete(res);
		goto out;
	}
	if (out && olen) {
		*result = cJSON_Parse(out);
		if (!*result) {
			cni_error(ROTA_ERR_DELEGATE, "IPAM plugin %s %s printed no JSON result", path, command);
			goto out;
		}
	}
	ret = 0;
out:
	free(out);
	for (int i = 0; i < 2; i++) {
		if (inp[i] >= 0)
			close(inp[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	for (int i = 0; i < n_mine; i++)
		free(mine[i]);
	free(env);
	return ret;
}

/* ------------------------------------------------------------ built-in */

static in_addr_t first_addr(const struct cni_conf *c)
{
	return c->range_start ? c->range_start : htonl(ntohl(c->subnet) + 1);
}

static in_addr_t last_addr(const struct cni_conf *c)
{
	uint32_t bcast = ntohl(c->subnet) | (c->prefix ? (1u << (32 - c->prefix)) - 1 : ~0u);

	return c->range_end ? c->range_end : htonl(bcast - 1);
}

static bool in_subnet(const struct cni_conf *c, in_addr_t a)
{
	uint32_t mask = c->prefix ? ~0u << (32 - c->prefix) : 0;

	return (ntohl(a) & mask) == ntohl(c->subnet);
}

/* Best effort (it only steers the next search). Overwritten in place and cut
 * to length: truncating to zero first would make ext4 flush the file to
 * disk on close (auto_da_alloc), on every ADD. */
static void last_reserved_write(const char *path, const char *ip)
{
	size_t len = strlen(ip);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return;
	if (pwrite(fd, ip, len, 0) != (ssize_t)len || ftruncate(fd, (off_t)len)) {
		/* the next ADD searches from the start of the range */
	}
	close(fd);
}

static int builtin_add(struct cni_conf *c, const struct cni_env *e, in_addr_t *ip)
{
	uint32_t first = ntohl(first_addr(c)), last = ntohl(last_addr(c)), cur, start;
	char p[700], lastp[700], b[16], content[300];
	FILE *f;
	int lock, fd;

	if (!in_subnet(c, htonl(first)) || !in_subnet(c, htonl(last)) || first > last)
		return cni_error(CNI_ERR_INVALID_CONFIG, "ipam.rangeStart/rangeEnd are not inside %s/%d",
				 ip_str(c->subnet, b), c->prefix);
	lock = state_lock(c);
	if (lock < 0)
		return -1;
	snprintf(lastp, sizeof(lastp), "%s/ipam/last_reserved_ip", c->data_dir);
	start = first;
	f = fopen(lastp, "re");
	if (f) {
		struct in_addr in;
		char line[32] = "";

		if (fgets(line, sizeof(line), f) && inet_pton(AF_INET, strtok(line, "\n") ?: "", &in) == 1 &&
		    ntohl(in.s_addr) >= first && ntohl(in.s_addr) < last)
			start = ntohl(in.s_addr) + 1;
		fclose(f);
	}
	snprintf(content, sizeof(content), "%s\n%s\n", e->container_id, e->ifname);
	cur = start;
	do {
		snprintf(p, sizeof(p), "%s/ipam/%s", c->data_dir, ip_str(htonl(cur), b));
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			ssize_t w = write(fd, content, strlen(content));

			close(fd);
			if (w != (ssize_t)strlen(content)) {
				unlink(p);
				close(lock);
				return cni_error(CNI_ERR_IO, "write %s", p);
			}
			last_reserved_write(lastp, b);
			close(lock);
			*ip = htonl(cur);
			return 0;
		}
		if (errno != EEXIST) {
			close(lock);
			return cni_error(ROTA_ERR_IPAM, "allocate %s: %s", p, strerror(errno));
		}
		cur = cur >= last ? first : cur + 1;
	} while (cur != start);
	close(lock);
	return cni_error(ROTA_ERR_IPAM, "no free address in %s/%d (from %s): all %u are allocated",
			 ip_str(c->subnet, b), c->prefix, c->subnet_src, last - first + 1);
}

static bool owned_by(const char *path, const char *cid, const char *ifname)
{
	char buf[600], want[600];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	snprintf(want, sizeof(want), "%s\n%s\n", cid, ifname);
	return !strcmp(buf, want);
}

/* Releases every address of (cid, ifname); missing ones are fine. */
static int builtin_del(struct cni_conf *c, const char *cid, const char *ifname)
{
	char d[600], p[1000];
	struct dirent *de;
	DIR *dir;
	int lock = state_lock(c);

	if (lock < 0)
		return -1;
	snprintf(d, sizeof(d), "%s/ipam", c->data_dir);
	dir = opendir(d);
	if (dir) {
		while ((de = readdir(dir))) {
			struct in_addr in;

			if (inet_pton(AF_INET, de->d_name, &in) != 1)
				continue;
			snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
			if (owned_by(p, cid, ifname))
				unlink(p);
		}
		closedir(dir);
	}
	close(lock);
	return 0;
}

/* ------------------------------------------------------------ entry points */

int ipam_add(struct cni_conf *c, const struct cni_env *e, in_addr_t *ip)
{
	cJSON *res = NULL, *ips, *it;
	int ret = -1;

	if (c->ipam_builtin)
		return conf_resolve_subnet(c) ? -1 : builtin_add(c, e, ip);
	if (delegate_exec(e, c->ipam_type, "ADD", NULL, NULL, c->raw, c->raw_len, &res))
		return -1;
	ips = cJSON_GetObjectItem(res, "ips");
	cJSON_ArrayForEach(it, ips) {
		const cJSON *a = cJSON_GetObjectItem(it, "address");
		in_addr_t net;
		int prefix;

		if (cJSON_IsString(a) && !parse_cidr(a->valuestring, &net, &prefix)) {
			*ip = net;
			ret = 0;
			break;
		}
	}
	if (ret)
		cni_error(ROTA_ERR_DELEGATE, "IPAM plugin %s returned no IPv4 address", c->ipam_type);
	cJSON_Delete(res);
	return ret;
}

int ipam_del(struct cni_conf *c, const struct cni_env *e, const char *cid, const char *ifname, in_addr_t ip)
{
	cJSON *res = NULL;
	int ret;

	(void)ip;
	if (c->ipam_builtin)
		return builtin_del(c, cid, ifname);
	ret = delegate_exec(e, c->ipam_type, "DEL", cid, ifname, c->raw, c->raw_len, &res);
	cJSON_Delete(res);
	return ret;
}

int ipam_check(struct cni_conf *c, const struct cni_env *e, in_addr_t ip)
{
	char p[700], b[16];
	cJSON *res = NULL;
	int ret;

	if (!c->ipam_builtin) {
		ret = delegate_exec(e, c->ipam_type, "CHECK", NULL, NULL, c->raw, c->raw_len, &res);
		cJSON_Delete(res);
		return ret;
	}
	snprintf(p, sizeof(p), "%s/ipam/%s", c->data_dir, ip_str(ip, b));
	if (!owned_by(p, e->container_id, e->ifname))
		return cni_error(ROTA_ERR_CHECK, "address %s is not allocated to %s/%s in %s/ipam", b,
				 e->container_id, e->ifname, c->data_dir);
	return 0;
}

int ipam_status(struct cni_conf *c, const struct cni_env *e)
{
	cJSON *res = NULL;
	int ret;

	if (!c->ipam_builtin) {
		if (c->version < 10100)
			return 0;
		ret = delegate_exec(e, c->ipam_type, "STATUS", NULL, NULL, c->raw, c->raw_len, &res);
		cJSON_Delete(res);
		return ret;
	}
	if (!c->subnet_src)
		return 0;	/* from the Node: the API is asked on ADD */
	{
		uint32_t first = ntohl(first_addr(c)), last = ntohl(last_addr(c)), used = 0;
		char d[600];
		struct dirent *de;
		DIR *dir;

		snprintf(d, sizeof(d), "%s/ipam", c->data_dir);
		dir = opendir(d);
		if (dir) {
			while ((de = readdir(dir))) {
				struct in_addr in;

				if (inet_pton(AF_INET, de->d_name, &in) == 1)
					used++;
			}
			closedir(dir);
		}
		if (used > last - first)
			return cni_error(CNI_ERR_LIMITED, "no free address in the pod CIDR (%u allocated)", used);
	}
	return 0;
}

/* Built-in: releases allocations of attachments not in valid (the GC's
 * valid-attachments). Delegated: GC the delegate (1.1.0). */
int ipam_gc(struct cni_conf *c, const struct cni_env *e, const cJSON *valid)
{
	char d[600], p[1000], buf[600];
	struct dirent *de;
	cJSON *res = NULL;
	DIR *dir;
	int lock, ret;

	if (!c->ipam_builtin) {
		if (c->version < 10100)
			return 0;
		ret = delegate_exec(e, c->ipam_type, "GC", NULL, NULL, c->raw, c->raw_len, &res);
		cJSON_Delete(res);
		return ret;
	}
	lock = state_lock(c);
	if (lock < 0)
		return -1;
	snprintf(d, sizeof(d), "%s/ipam", c->data_dir);
	dir = opendir(d);
	if (dir) {
		while ((de = readdir(dir))) {
			struct in_addr in;
			char *nl, *cid, *ifn;
			FILE *f;
			size_t n;

			if (inet_pton(AF_INET, de->d_name, &in) != 1)
				continue;
			snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
			f = fopen(p, "re");
			if (!f)
				continue;
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = 0;
			cid = buf;
			nl = strchr(buf, '\n');
			if (!nl)
				continue;
			*nl = 0;
			ifn = nl + 1;
			if ((nl = strchr(ifn, '\n')))
				*nl = 0;
			if (!gc_attachment_valid(valid, cid, ifn)) {
				fprintf(stderr, "rota-cni: GC: releasing %s of %s/%s\n", de->d_name, cid, ifn);
				unlink(p);
			}
		}
		closedir(dir);
	}
	close(lock);
	return 0;
}
