/* The network configuration on stdin: versions, the keys rota-cni reads,
 * and their validation (errors name the key and the value). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cni.h"
#include <sys/wait.h>
#include "rota/maps.h"

const char *const cni_supported_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL };

int cni_version_parse(const char *s)
{
	unsigned a, b, c;
	char tail;

	if (!s || sscanf(s, "%u.%u.%u%c", &a, &b, &c, &tail) != 3 || b > 99 || c > 99)
		return -1;
	return (int)(a * 10000 + b * 100 + c);
}

bool cni_version_supported(const char *s)
{
	for (int i = 0; cni_supported_versions[i]; i++)
		if (s && !strcmp(s, cni_supported_versions[i]))
			return true;
	return false;
}

const char *ip_str(in_addr_t a, char buf[16])
{
	struct in_addr in = { .s_addr = a };

	return inet_ntop(AF_INET, &in, buf, 16);
}

int parse_cidr(const char *s, in_addr_t *net, int *prefix)
{
	char buf[32], *slash, *end;
	struct in_addr in;
	long p;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	if (inet_pton(AF_INET, buf, &in) != 1)
		return -EINVAL;
	errno = 0;
	p = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1 || p < 0 || p > 32)
		return -EINVAL;
	*prefix = (int)p;
	*net = in.s_addr;
	return 0;
}

static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
		      *p == '_' || *p == '.' || *p == '-'))
			return false;
	return strcmp(s, ".") && strcmp(s, "..");
}

static const char *str_item(const cJSON *o, const char *key, bool *bad)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v))
		return NULL;
	if (!cJSON_IsString(v)) {
		*bad = true;
		return NULL;
	}
	return v->valuestring;
}

static int ipv4_item(const cJSON *o, const char *key, in_addr_t *out)
{
	bool bad = false;
	const char *s = str_item(o, key, &bad);
	struct in_addr in;

	if (bad || (s && inet_pton(AF_INET, s, &in) != 1))
		return cni_error(CNI_ERR_INVALID_CONFIG, "ipam.%s: %s is not an IPv4 address", key,
				 s ? s : "(not a string)");
	if (s)
		*out = in.s_addr;
	return 0;
}

static int set_subnet(struct cni_conf *c, const char *s, const char *src)
{
	in_addr_t net;
	int prefix;

	if (parse_cidr(s, &net, &prefix))
		return cni_error(CNI_ERR_INVALID_CONFIG, "%s: \"%s\" is not an IPv4 CIDR (a.b.c.d/n)", src, s);
	if (prefix > 30)
		return cni_error(CNI_ERR_INVALID_CONFIG, "%s: %s leaves no pod addresses (need /30 or larger)",
				 src, s);
	c->prefix = prefix;
	c->subnet = net & htonl(prefix ? ~0u << (32 - prefix) : 0);
	c->subnet_src = src;
	return 0;
}

int conf_parse(struct cni_conf *c, const char *buf, size_t len, const char *command)
{
	const cJSON *ipam, *v;
	bool bad = false;
	const char *s;

	memset(c, 0, sizeof(*c));
	c->raw = buf;
	c->raw_len = len;
	c->root = cJSON_ParseWithLength(buf, len);
	if (!c->root || !cJSON_IsObject(c->root)) {
		const char *at = cJSON_GetErrorPtr();

		return cni_error(CNI_ERR_DECODE, "network configuration on stdin is not a JSON object%s%.20s",
				 at && c->root == NULL ? " near: " : "", at && !c->root ? at : "");
	}
	c->cni_version = str_item(c->root, "cniVersion", &bad);
	if (bad || !c->cni_version)
		return cni_error(CNI_ERR_INVALID_CONFIG, "cniVersion is missing or not a string");
	c->version = cni_version_parse(c->cni_version);
	if (!cni_version_supported(c->cni_version))
		return cni_error(CNI_ERR_INCOMPATIBLE_VERSION,
				 "cniVersion %s is not supported (supported: 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0)",
				 c->cni_version);
	if (!strcmp(command, "VERSION"))
		return 0;
	c->type = str_item(c->root, "type", &bad);
	if (bad || !c->type || !*c->type)
		return cni_error(CNI_ERR_INVALID_CONFIG, "type is missing: this plugin's config needs \"type\": \"rota-cni\"");
	c->name = str_item(c->root, "name", &bad);
	if (bad || !c->name || !name_ok(c->name))
		return cni_error(CNI_ERR_INVALID_CONFIG,
				 "name \"%s\" is missing or invalid (letters, digits, _ . - only)",
				 c->name ? c->name : "");
	s = str_item(c->root, "bpffsDir", &bad);
	if (bad || (s && (s[0] != '/' || strlen(s) >= sizeof(c->bpffs_dir))))
		return cni_error(CNI_ERR_INVALID_CONFIG, "bpffsDir must be an absolute path");
	snprintf(c->bpffs_dir, sizeof(c->bpffs_dir), "%s", s ? s : ROTA_DEFAULT_BPFFS_DIR);
	v = cJSON_GetObjectItemCaseSensitive(c->root, "mtu");
	if (v) {
		/* range first: converting 2e121 to int is undefined */
		if (!cJSON_IsNumber(v) || !(v->valuedouble >= 68 && v->valuedouble <= 65535) ||
		    v->valuedouble != (int)v->valuedouble)
			return cni_error(CNI_ERR_INVALID_CONFIG, "mtu must be an integer between 68 and 65535");
		c->mtu = v->valueint;
	}
	c->kubeconfig = str_item(c->root, "kubeconfig", &bad);
	c->node_name = str_item(c->root, "nodeName", &bad);
	if (bad)
		return cni_error(CNI_ERR_INVALID_CONFIG, "kubeconfig and nodeName must be strings");
	v = cJSON_GetObjectItemCaseSensitive(c->root, "prevResult");
	if (v && !cJSON_IsObject(v))
		return cni_error(CNI_ERR_DECODE, "prevResult is not a JSON object");
	c->prev_result = (cJSON *)v;

	ipam = cJSON_GetObjectItemCaseSensitive(c->root, "ipam");
	if (ipam && !cJSON_IsObject(ipam))
		return cni_error(CNI_ERR_INVALID_CONFIG, "ipam must be an object");
	c->ipam_type = ipam ? str_item(ipam, "type", &bad) : NULL;
	if (bad)
		return cni_error(CNI_ERR_INVALID_CONFIG, "ipam.type must be a string");
	if (!ipam || !c->ipam_type || !strcmp(c->ipam_type, ROTA_CNI_BUILTIN_IPAM)) {
		c->ipam_builtin = true;
		c->ipam_type = ROTA_CNI_BUILTIN_IPAM;
	} else if (!name_ok(c->ipam_type)) {
		return cni_error(CNI_ERR_INVALID_CONFIG, "ipam.type \"%s\" is not a plugin name", c->ipam_type);
	}
	/* State: attachment records always, built-in IPAM's allocations too. */
	s = ipam ? str_item(ipam, "dataDir", &bad) : NULL;
	if (!s)
		s = str_item(c->root, "dataDir", &bad);
	if (bad || (s && s[0] != '/'))
		return cni_error(CNI_ERR_INVALID_CONFIG, "dataDir must be an absolute path");
	snprintf(c->data_dir, sizeof(c->data_dir), "%s/%s", s ? s : ROTA_CNI_STATE_ROOT, c->name);
	if (c->ipam_builtin) {
		s = ipam ? str_item(ipam, "subnet", &bad) : NULL;
		if (bad)
			return cni_error(CNI_ERR_INVALID_CONFIG, "ipam.subnet must be a string");
		if (s && set_subnet(c, s, "ipam.subnet"))
			return -1;
		if (!s) {
			s = str_item(c->root, "podCIDR", &bad);
			if (bad)
				return cni_error(CNI_ERR_INVALID_CONFIG, "podCIDR must be a string");
			if (s && set_subnet(c, s, "podCIDR"))
				return -1;
		}
		if (!s && !c->kubeconfig)
			return cni_error(CNI_ERR_INVALID_CONFIG,
					 "no pod CIDR: set ipam.subnet, podCIDR or kubeconfig (to read the Node's spec.podCIDR)");
		if (ipam && (ipv4_item(ipam, "rangeStart", &c->range_start) ||
			     ipv4_item(ipam, "rangeEnd", &c->range_end)))
			return -1;
	}
	return 0;
}

/* The Node's spec.podCIDR through the kubeconfig; only when the config names
 * no subnet. Node name: nodeName, $KUBERNETES_NODE_NAME or the hostname.
 * The API call runs in rota-cni-podcidr (next to this binary, or in
 * CNI_PATH) so rota-cni itself never loads libcurl. */
int conf_resolve_subnet(struct cni_conf *c)
{
	char host[256], self[512], helper[600], line[128] = "";
	const char *node = c->node_name;
	static char cidr[64];
	ssize_t n;
	FILE *p;
	int st;

	if (c->subnet_src || !c->ipam_builtin)
		return 0;
	if (!node)
		node = getenv("KUBERNETES_NODE_NAME");
	if (!node) {
		if (gethostname(host, sizeof(host)))
			return cni_error(ROTA_ERR_KUBE, "cannot tell the node name: set nodeName");
		host[sizeof(host) - 1] = 0;
		node = host;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return cni_error(ROTA_ERR_KUBE, "readlink /proc/self/exe");
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(helper, sizeof(helper), "%s/rota-cni-podcidr", self);
	if (access(helper, X_OK))
		return cni_error(ROTA_ERR_KUBE, "%s is missing: install it next to rota-cni", helper);
	{
		/* popen via sh would need quoting: fork/exec by hand. */
		int fds[2];
		pid_t pid;

		if (pipe(fds))
			return cni_error(ROTA_ERR_KUBE, "pipe");
		pid = fork();
		if (pid == 0) {
			dup2(fds[1], 1);
			close(fds[0]);
			close(fds[1]);
			execl(helper, helper, c->kubeconfig, node, (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		p = fdopen(fds[0], "r");
		if (p) {
			if (!fgets(line, sizeof(line), p))
				line[0] = 0;
			fclose(p);
		}
		if (pid < 0 || waitpid(pid, &st, 0) < 0)
			return cni_error(ROTA_ERR_KUBE, "run %s", helper);
	}
	st = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	if (st)
		return cni_error(st == 2 ? CNI_ERR_INVALID_CONFIG : st == 3 ? CNI_ERR_TRY_AGAIN : ROTA_ERR_KUBE,
				 "Node %s's podCIDR via kubeconfig %s failed (see the log for %s's message)", node,
				 c->kubeconfig, helper);
	line[strcspn(line, "\n")] = 0;
	snprintf(cidr, sizeof(cidr), "%s", line);
	return set_subnet(c, cidr, "Node spec.podCIDR");
}
