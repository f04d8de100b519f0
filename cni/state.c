/* Attachment records: <data_dir>/attachments/<containerID>_<ifname>, one
 * JSON object each, written before anything is created on ADD and removed
 * last on DEL, so DEL and GC can undo whatever an interrupted ADD left. */
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

int state_write(const struct cni_conf *c, const struct att_rec *r)
{
	char p[900], tmp[920], ip[16];
	cJSON *o = cJSON_CreateObject();
	char *s;
	FILE *f;
	int ok;

	cJSON_AddStringToObject(o, "containerID", r->cid);
	cJSON_AddStringToObject(o, "ifname", r->ifname);
	cJSON_AddStringToObject(o, "hostInterface", r->host_name);
	cJSON_AddNumberToObject(o, "hostIfindex", r->host_ifindex);
	cJSON_AddStringToObject(o, "ip", r->ip ? ip_str(r->ip, ip) : "");
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	rec_path(c, r->cid, r->ifname, p, sizeof(p));
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	f = fopen(tmp, "we");
	ok = f && fputs(s, f) >= 0;
	if (f && fclose(f))
		ok = 0;
	free(s);
	if (!ok || rename(tmp, p) < 0) {
		unlink(tmp);
		return cni_error(CNI_ERR_IO, "write %s: %s", p, strerror(errno));
	}
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
