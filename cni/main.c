/* rota-cni: a CNI 1.0/1.1 plugin (SPEC.md). It gives a pod a veth pair, a
 * /32 with a default route via a link-local gateway, and puts the pod
 * behind rota's tc programs (attached from the pinned programs) with a
 * local-endpoint entry. Result or error JSON on stdout, logs on stderr
 * (or the config's logFile). See docs/cni.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cni.h"
#include "log.h"

/* ------------------------------------------------------------ errors */

static int err_code;
static char err_msg[1024];
static char *err_raw;
static const char *out_version = "1.1.0";

int cni_error(int code, const char *fmt, ...)
{
	va_list ap;

	if (err_code)
		return -1;
	err_code = code;
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	return -1;
}

int cni_error_raw(const char *json)
{
	if (!err_code) {
		cJSON *o = cJSON_Parse(json), *m = cJSON_GetObjectItem(o, "msg");

		err_code = cJSON_GetObjectItem(o, "code")->valueint;
		snprintf(err_msg, sizeof(err_msg), "%s", cJSON_IsString(m) ? m->valuestring : "");
		err_raw = strdup(json);
		cJSON_Delete(o);
	}
	return -1;
}

int cni_error_code(void)
{
	return err_code;
}

const char *cni_error_msg(void)
{
	return err_msg;
}

void cni_error_clear(void)
{
	err_code = 0;
	err_msg[0] = 0;
	free(err_raw);
	err_raw = NULL;
}

static int print_error(void)
{
	cJSON *o;
	char *s;

	if (!err_code)
		cni_error(ROTA_ERR_NETLINK, "unknown failure");
	fprintf(stderr, "rota-cni: error %d: %s\n", err_code, err_msg);
	if (err_raw) {
		fputs(err_raw, stdout);
		return 1;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "cniVersion", out_version);
	cJSON_AddNumberToObject(o, "code", err_code);
	cJSON_AddStringToObject(o, "msg", err_msg);
	s = cJSON_Print(o);
	puts(s);
	free(s);
	cJSON_Delete(o);
	return 1;
}

/* ------------------------------------------------------------ environment */

static int env_validate(struct cni_env *e)
{
	const char *cmd = e->command;
	bool add = !strcmp(cmd, "ADD"), del = !strcmp(cmd, "DEL"), check = !strcmp(cmd, "CHECK");

	if (add || del || check) {
		const char *p;

		if (!e->container_id || !*e->container_id)
			return cni_error(CNI_ERR_INVALID_ENV, "CNI_CONTAINERID is not set");
		if (!isalnum((unsigned char)e->container_id[0]) || strlen(e->container_id) > 200)
			return cni_error(CNI_ERR_INVALID_ENV,
					 "CNI_CONTAINERID \"%s\" is invalid: must start with a letter or digit (and be at most 200 characters)",
					 e->container_id);
		for (p = e->container_id; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
				return cni_error(CNI_ERR_INVALID_ENV,
						 "CNI_CONTAINERID \"%s\" is invalid: only letters, digits, _ . - are allowed",
						 e->container_id);
		if (!e->ifname || !*e->ifname)
			return cni_error(CNI_ERR_INVALID_ENV, "CNI_IFNAME is not set");
		if (strlen(e->ifname) > 15)
			return cni_error(CNI_ERR_INVALID_ENV, "CNI_IFNAME \"%s\" is too long (%zu characters, at most 15)",
					 e->ifname, strlen(e->ifname));
		if (!strcmp(e->ifname, ".") || !strcmp(e->ifname, ".."))
			return cni_error(CNI_ERR_INVALID_ENV, "CNI_IFNAME \"%s\" is not a valid interface name", e->ifname);
		for (p = e->ifname; *p; p++)
			if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
				return cni_error(CNI_ERR_INVALID_ENV,
						 "CNI_IFNAME \"%s\" is invalid: it must not contain '/', ':' or spaces",
						 e->ifname);
		if ((add || check) && (!e->netns || !*e->netns))
			return cni_error(CNI_ERR_INVALID_ENV, "CNI_NETNS is not set (required for %s)", cmd);
	}
	if (e->args && *e->args) {
		char *dup = strdup(e->args), *save = NULL, *tok;
		int bad = 0;

		for (tok = strtok_r(dup, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(tok, '=');

			if (!eq || eq == tok || strchr(eq + 1, '=')) {
				cni_error(CNI_ERR_INVALID_ENV, "CNI_ARGS \"%s\": \"%s\" is not KEY=VALUE", e->args, tok);
				bad = 1;
				break;
			}
		}
		free(dup);
		if (bad)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ commands */

static void mac_str(const unsigned char m[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static cJSON *array_item(cJSON *o, const char *key)
{
	cJSON *a = cJSON_GetObjectItem(o, key);

	if (!cJSON_IsArray(a)) {
		cJSON_DeleteItemFromObject(o, key);
		a = cJSON_AddArrayToObject(o, key);
	}
	return a;
}

static cJSON *add_result(const struct cni_conf *c, const struct cni_env *e, const struct pod_link *l,
			 in_addr_t ip)
{
	cJSON *r = c->prev_result ? cJSON_Duplicate(c->prev_result, 1) : cJSON_CreateObject();
	cJSON *ifs, *ips, *routes, *o;
	char mac[18], addr[32], b[16];
	int pod_idx;

	cJSON_DeleteItemFromObject(r, "cniVersion");
	cJSON_AddStringToObject(r, "cniVersion", c->cni_version);
	ifs = array_item(r, "interfaces");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", l->host_name);
	mac_str(l->host_mac, mac);
	cJSON_AddStringToObject(o, "mac", mac);
	if (c->mtu && c->version >= 10100)
		cJSON_AddNumberToObject(o, "mtu", c->mtu);
	cJSON_AddItemToArray(ifs, o);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", e->ifname);
	mac_str(l->pod_mac, mac);
	cJSON_AddStringToObject(o, "mac", mac);
	if (c->mtu && c->version >= 10100)
		cJSON_AddNumberToObject(o, "mtu", c->mtu);
	cJSON_AddStringToObject(o, "sandbox", e->netns);
	pod_idx = cJSON_GetArraySize(ifs);
	cJSON_AddItemToArray(ifs, o);
	ips = array_item(r, "ips");
	o = cJSON_CreateObject();
	if (c->version < 10000)
		cJSON_AddStringToObject(o, "version", "4");
	snprintf(addr, sizeof(addr), "%s/32", ip_str(ip, b));
	cJSON_AddStringToObject(o, "address", addr);
	cJSON_AddStringToObject(o, "gateway", ROTA_CNI_GATEWAY);
	cJSON_AddNumberToObject(o, "interface", pod_idx);
	cJSON_AddItemToArray(ips, o);
	routes = array_item(r, "routes");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "dst", "0.0.0.0/0");
	cJSON_AddStringToObject(o, "gw", ROTA_CNI_GATEWAY);
	cJSON_AddItemToArray(routes, o);
	if (!cJSON_GetObjectItem(r, "dns")) {
		cJSON *dns = cJSON_GetObjectItem(c->root, "dns");

		cJSON_AddItemToObject(r, "dns", dns ? cJSON_Duplicate(dns, 1) : cJSON_CreateObject());
	}
	return r;
}

static int cmd_add(struct cni_conf *c, const struct cni_env *e)
{
	struct att_rec rec = { 0 };
	struct pod_link l;
	in_addr_t ip = 0;
	char host[16], alias[256];
	int nsfd, ex;
	cJSON *res;
	char *s;

	nsfd = net_open_netns(e->netns);
	if (nsfd < 0)
		return cni_error(CNI_ERR_UNKNOWN_CONTAINER, "CNI_NETNS %s: %s", e->netns, strerror(-nsfd));
	ex = net_pod_exists(nsfd, e->ifname);
	if (ex != 0)
		return cni_error(ex > 0 ? ROTA_ERR_EXISTS : ROTA_ERR_NETLINK,
				 ex > 0 ? "interface %s already exists in %s" : "cannot list interfaces of %s in %s",
				 e->ifname, e->netns);
	net_host_name(e->container_id, e->ifname, host);
	if (!net_host_link(host, &ex))
		return cni_error(ROTA_ERR_EXISTS, "host interface %s for %s/%s already exists (DEL the old attachment first)",
				 host, e->container_id, e->ifname);
	if (dp_ready(c, CNI_ERR_TRY_AGAIN) || state_prepare(c))
		return -1;
	if (ipam_add(c, e, &ip))
		return -1;
	snprintf(rec.cid, sizeof(rec.cid), "%s", e->container_id);
	snprintf(rec.ifname, sizeof(rec.ifname), "%s", e->ifname);
	snprintf(rec.host_name, sizeof(rec.host_name), "%s", host);
	rec.ip = ip;
	if (state_write(c, &rec))
		goto undo_ipam;
	state_alias(c, e->container_id, e->ifname, alias, sizeof(alias));
	if (net_add(nsfd, e->ifname, host, c->mtu, ip, alias, &l))
		goto undo_net;
	rec.host_ifindex = l.host_ifindex;
	if (state_write(c, &rec) || dp_wire(c, &l, ip))
		goto undo_dp;
	close(nsfd);
	res = add_result(c, e, &l, ip);
	s = cJSON_Print(res);
	puts(s);
	free(s);
	cJSON_Delete(res);
	return 0;
undo_dp:
	dp_unwire(c, l.host_ifindex, ip);
undo_net:
	net_del_host(host);
	state_remove(c, e->container_id, e->ifname);
undo_ipam:
	{
		/* Keep the first error; the rollback's own errors are only logged. */
		int saved = err_code;
		char msg[sizeof(err_msg)];

		memcpy(msg, err_msg, sizeof(msg));
		err_code = 0;
		if (ipam_del(c, e, e->container_id, e->ifname, ip))
			fprintf(stderr, "rota-cni: rollback: releasing %s failed: %s\n", e->container_id, err_msg);
		err_code = saved;
		memcpy(err_msg, msg, sizeof(msg));
	}
	close(nsfd);
	return -1;
}

/* The record, if any, names the host veth, its ifindex (the links' pins
 * are named by it, and the veth may be gone) and the address; without one
 * they come from the name hash, the live veth and its endpoint entry. */
int attachment_teardown(struct cni_conf *c, const struct cni_env *e, const char *cid, const char *ifname,
			in_addr_t ip_hint, bool gc)
{
	struct att_rec rec;
	char host[16];
	int ifindex = 0;
	in_addr_t ip = ip_hint;
	bool recorded = state_read(c, cid, ifname, &rec) == 0;

	if (recorded) {
		snprintf(host, sizeof(host), "%s", rec.host_name);
		ifindex = rec.host_ifindex;
		if (rec.ip)
			ip = rec.ip;
	} else {
		net_host_name(cid, ifname, host);
	}
	if (!host[0])
		net_host_name(cid, ifname, host);
	if (net_host_link(host, &ifindex) && !ifindex)
		ifindex = 0;
	if (!ip)
		ip = dp_endpoint_of(c, ifindex);
	dp_unwire(c, ifindex, ip);
	if (net_del_host(host))
		return cni_error(ROTA_ERR_NETLINK, "delete %s", host);
	if (ipam_del(c, e, cid, ifname, ip))
		return -1;
	if (gc)
		fprintf(stderr, "rota-cni: GC: removed attachment %s/%s (%s%s)\n", cid, ifname, host,
			recorded ? "" : ", no record");
	state_remove(c, cid, ifname);
	return 0;
}

static in_addr_t prev_ip(const struct cni_conf *c)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItem(c->prev_result, "ips")) {
		const cJSON *a = cJSON_GetObjectItem(it, "address");
		in_addr_t net;
		int prefix;

		if (cJSON_IsString(a) && !parse_cidr(a->valuestring, &net, &prefix) && prefix == 32)
			return net;
	}
	return 0;
}

static int cmd_del(struct cni_conf *c, const struct cni_env *e)
{
	return attachment_teardown(c, e, e->container_id, e->ifname, prev_ip(c), false);
}

static int cmd_check(struct cni_conf *c, const struct cni_env *e)
{
	struct att_rec rec;
	char host[16], b[16];
	int nsfd, ret;

	if (c->version < 400)
		return cni_error(CNI_ERR_INCOMPATIBLE_VERSION, "CHECK needs cniVersion 0.4.0 or later (got %s)",
				 c->cni_version);
	if (!c->prev_result)
		return cni_error(CNI_ERR_INVALID_CONFIG, "CHECK needs prevResult (the cached ADD result)");
	if (state_read(c, e->container_id, e->ifname, &rec) || !rec.ip)
		return cni_error(ROTA_ERR_CHECK, "no attachment %s/%s is recorded in %s", e->container_id, e->ifname,
				 c->data_dir);
	if (prev_ip(c) != rec.ip)
		return cni_error(ROTA_ERR_CHECK, "prevResult does not list %s/32, the address of %s/%s",
				 ip_str(rec.ip, b), e->container_id, e->ifname);
	nsfd = net_open_netns(e->netns);
	if (nsfd < 0)
		return cni_error(CNI_ERR_UNKNOWN_CONTAINER, "CNI_NETNS %s: %s", e->netns, strerror(-nsfd));
	net_host_name(e->container_id, e->ifname, host);
	ret = net_check(nsfd, e->ifname, host, rec.ip);
	close(nsfd);
	if (ret || dp_check(c, host, rec.ip) || ipam_check(c, e, rec.ip))
		return -1;
	return 0;
}

static int cmd_status(struct cni_conf *c, const struct cni_env *e)
{
	if (c->version < 10100)
		return cni_error(CNI_ERR_INCOMPATIBLE_VERSION, "STATUS needs cniVersion 1.1.0 (got %s)", c->cni_version);
	if (dp_ready(c, CNI_ERR_NOT_AVAILABLE))
		return -1;
	return ipam_status(c, e);
}

static int cmd_version(const char *buf, size_t len)
{
	cJSON *in = len ? cJSON_ParseWithLength(buf, len) : NULL, *o = cJSON_CreateObject(), *a;
	const cJSON *v = cJSON_GetObjectItem(in, "cniVersion");
	char *s;

	cJSON_AddStringToObject(o, "cniVersion",
				cJSON_IsString(v) && cni_version_supported(v->valuestring) ? v->valuestring : "1.1.0");
	a = cJSON_AddArrayToObject(o, "supportedVersions");
	for (int i = 0; cni_supported_versions[i]; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(cni_supported_versions[i]));
	s = cJSON_Print(o);
	puts(s);
	free(s);
	cJSON_Delete(o);
	cJSON_Delete(in);
	return 0;
}

/* ------------------------------------------------------------ main */

static char *read_all(int fd, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *b = malloc(cap);

	while (b) {
		ssize_t r = read(fd, b + n, cap - n - 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (cap - n < 2) {
			char *nb = realloc(b, cap * 2);

			if (!nb) {
				free(b);
				return NULL;
			}
			b = nb;
			cap *= 2;
		}
	}
	if (b)
		b[n] = 0;
	*len = n;
	return b;
}

/* logFile in the config: stderr goes there (appended). */
static void redirect_log(const cJSON *root)
{
	const cJSON *lf = cJSON_GetObjectItem(root, "logFile");
	int fd;

	if (cJSON_IsString(lf) && lf->valuestring[0] == '/') {
		fd = open(lf->valuestring, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
	}
}

int main(void)
{
	struct cni_env e = {
		.command = getenv("CNI_COMMAND"),
		.container_id = getenv("CNI_CONTAINERID"),
		.netns = getenv("CNI_NETNS"),
		.ifname = getenv("CNI_IFNAME"),
		.args = getenv("CNI_ARGS"),
		.path = getenv("CNI_PATH"),
	};
	static const char *const cmds[] = { "ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", NULL };
	struct cni_conf c;
	size_t len = 0;
	char *buf;
	int ret = -1, known = 0;

	rota_log_init("rota-cni", ROTA_LOG_WARN);
	if (!e.command || !*e.command) {
		cni_error(CNI_ERR_INVALID_ENV, "CNI_COMMAND is not set");
		return print_error();
	}
	for (int i = 0; cmds[i]; i++)
		known |= !strcmp(e.command, cmds[i]);
	if (!known) {
		cni_error(CNI_ERR_INVALID_ENV, "CNI_COMMAND \"%s\" is unknown (ADD DEL CHECK VERSION STATUS GC)", e.command);
		return print_error();
	}
	buf = read_all(0, &len);
	if (!buf) {
		cni_error(CNI_ERR_IO, "read stdin: out of memory");
		return print_error();
	}
	if (!strcmp(e.command, "VERSION"))
		return cmd_version(buf, len);
	if (conf_parse(&c, buf, len, e.command) == 0 && cni_version_supported(c.cni_version))
		out_version = c.cni_version;
	else if (c.cni_version && cni_version_supported(c.cni_version))
		out_version = c.cni_version;
	redirect_log(c.root);
	if (err_code)
		goto out;
	if (env_validate(&e))
		goto out;
	if (net_init()) {
		cni_error(CNI_ERR_IO, "open /proc/self/ns/net: %s", strerror(errno));
		goto out;
	}
	if (!strcmp(e.command, "ADD"))
		ret = cmd_add(&c, &e);
	else if (!strcmp(e.command, "DEL"))
		ret = cmd_del(&c, &e);
	else if (!strcmp(e.command, "CHECK"))
		ret = cmd_check(&c, &e);
	else if (!strcmp(e.command, "STATUS"))
		ret = cmd_status(&c, &e);
	else
		ret = cmd_gc(&c, &e);
out:
	if (ret)
		ret = print_error();
	cJSON_Delete(c.root);
	free(buf);
	return ret;
}
