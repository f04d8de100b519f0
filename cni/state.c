/* Attachment records: <data_dir>/attachments/<containerID>_<ifname>, one
 * JSON object each, written before anything is created on ADD and removed
 * last on DEL, so DEL and GC can undo whatever an interrupted ADD left.
 * The host veth's alias is the second copy of who owns it, on the link
 * itself, for GC when the record is gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "cni.h"

static int mkdir_p(const char *path)
{
	char buf[512], *p;

	/* Nearly always there already: one syscall, not one per component. */
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int state_prepare(const struct cni_conf *c)
{
	char p[600];
	int err;

	snprintf(p, sizeof(p), "%s/attachments", c->data_dir);
	err = mkdir_p(p);
	if (!err && c->ipam_builtin) {
		snprintf(p, sizeof(p), "%s/ipam", c->data_dir);
		err = mkdir_p(p);
	}
	if (err)
		return cni_error(ROTA_ERR_IPAM, "state directory %s: %s", p, strerror(-err));
	return 0;
}

int state_lock(const struct cni_conf *c)
{
	char p[600];
	int fd;

	snprintf(p, sizeof(p), "%s/lock", c->data_dir);
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		return cni_error(ROTA_ERR_IPAM, "lock %s: %s", p, strerror(err));
	}
	return fd;
}

static void rec_path(const struct cni_conf *c, const char *cid, const char *ifname, char *p, size_t len)
{
	snprintf(p, len, "%s/attachments/%s_%s", c->data_dir, cid, ifname);
}

/* Written where it stays, without a temp file and rename: each new inode
 * is one of the dearer steps of an ADD (ext4's allocator), and a record cut
 * short by a crash reads as no record, which DEL and GC handle anyway (the
 * first write happens before anything is created). ADD's second write
 * (the host ifindex, once known) rewrites it in place: renaming over it
 * would also make ext4 flush it to disk there and then (auto_da_alloc). A
 * shorter rewrite is cut to its length, never to zero first (that would
 * trigger the same flush). */
int state_write(const struct cni_conf *c, const struct att_rec *r)
{
	char p[900], ip[16];
	cJSON *o = cJSON_CreateObject();
	size_t len;
	char *s;
	int ok, fd, err;

	cJSON_AddStringToObject(o, "containerID", r->cid);
	cJSON_AddStringToObject(o, "ifname", r->ifname);
	cJSON_AddStringToObject(o, "hostInterface", r->host_name);
	cJSON_AddNumberToObject(o, "hostIfindex", r->host_ifindex);
	cJSON_AddStringToObject(o, "ip", r->ip ? ip_str(r->ip, ip) : "");
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return cni_error(CNI_ERR_IO, "record of %s/%s: out of memory", r->cid, r->ifname);
	len = strlen(s);
	rec_path(c, r->cid, r->ifname, p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ok = fd >= 0 && pwrite(fd, s, len, 0) == (ssize_t)len && ftruncate(fd, (off_t)len) == 0;
	err = errno;
	if (fd >= 0 && close(fd) && ok) {
		ok = 0;
		err = errno;
	}
	free(s);
	if (!ok)
		return cni_error(CNI_ERR_IO, "write %s: %s", p, strerror(err));
	return 0;
}

static int read_path(const char *p, struct att_rec *r)
{
	char buf[2048];
	FILE *f = fopen(p, "re");
	size_t n;
	cJSON *o, *v;
	int ret = -EINVAL;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	memset(r, 0, sizeof(*r));
	o = cJSON_Parse(buf);
	if (!o)
		return -EINVAL;
	if (cJSON_IsString(v = cJSON_GetObjectItem(o, "containerID")))
		snprintf(r->cid, sizeof(r->cid), "%s", v->valuestring);
	if (cJSON_IsString(v = cJSON_GetObjectItem(o, "ifname")))
		snprintf(r->ifname, sizeof(r->ifname), "%s", v->valuestring);
	if (cJSON_IsString(v = cJSON_GetObjectItem(o, "hostInterface")))
		snprintf(r->host_name, sizeof(r->host_name), "%s", v->valuestring);
	if (cJSON_IsNumber(v = cJSON_GetObjectItem(o, "hostIfindex")))
		r->host_ifindex = v->valueint;
	if (cJSON_IsString(v = cJSON_GetObjectItem(o, "ip")))
		inet_pton(AF_INET, v->valuestring, &r->ip);
	if (r->cid[0] && r->ifname[0])
		ret = 0;
	cJSON_Delete(o);
	return ret;
}

int state_read(const struct cni_conf *c, const char *cid, const char *ifname, struct att_rec *r)
{
	char p[900];

	rec_path(c, cid, ifname, p, sizeof(p));
	return read_path(p, r);
}

int state_remove(const struct cni_conf *c, const char *cid, const char *ifname)
{
	char p[900];

	rec_path(c, cid, ifname, p, sizeof(p));
	if (unlink(p) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int state_foreach(const struct cni_conf *c, state_cb cb, void *arg)
{
	char d[600], p[1000];
	struct dirent *de;
	struct att_rec r;
	DIR *dir;
	int ret = 0;

	snprintf(d, sizeof(d), "%s/attachments", c->data_dir);
	dir = opendir(d);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		if (read_path(p, &r))
			continue;
		ret = cb(&r, arg);
		if (ret)
			break;
	}
	closedir(dir);
	return ret;
}

void state_alias(const struct cni_conf *c, const char *cid, const char *ifname, char *out, size_t len)
{
	/* IFALIASZ is 256; a name too long for the whole alias keeps just the
	 * network, and one too long for that gets none (GC then leaves it). */
	if ((size_t)snprintf(out, len, "%s %s %s %s", ROTA_CNI_ALIAS_PREFIX, c->name, cid, ifname) >= len &&
	    (size_t)snprintf(out, len, "%s %s", ROTA_CNI_ALIAS_PREFIX, c->name) >= len)
		out[0] = 0;
}

int state_alias_parse(const struct cni_conf *c, const char *alias, char cid[256], char ifname[16])
{
	size_t pl = strlen(ROTA_CNI_ALIAS_PREFIX), nl = strlen(c->name);
	const char *p = alias, *sp;

	cid[0] = ifname[0] = 0;
	if (strncmp(p, ROTA_CNI_ALIAS_PREFIX, pl) || p[pl] != ' ')
		return -1;
	p += pl + 1;
	if (strncmp(p, c->name, nl) || (p[nl] != ' ' && p[nl] != 0))
		return -1;
	p += nl;
	if (!*p)
		return 0;
	p++;
	sp = strchr(p, ' ');
	if (!sp || sp == p || (size_t)(sp - p) >= 256 || !sp[1] || strlen(sp + 1) >= 16 || strchr(sp + 1, ' '))
		return -1;
	memcpy(cid, p, (size_t)(sp - p));
	cid[sp - p] = 0;
	snprintf(ifname, 16, "%s", sp + 1);
	return 0;
}
