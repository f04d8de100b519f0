/* kubeconfig parsing with libyaml's document API: find the current
 * context, then its cluster and user entries. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <openssl/evp.h>
#include "kubeconfig.h"


static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);

		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *scalar(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = map_get(doc, map, key);

	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The `sub` mapping of the entry named `name` in the list `list`
 * (clusters → cluster, users → user, contexts → context). */
static yaml_node_t *named_entry(yaml_document_t *doc, yaml_node_t *root, const char *list,
				const char *sub, const char *name)
{
	yaml_node_t *seq = map_get(doc, root, list);

	if (!seq || seq->type != YAML_SEQUENCE_NODE || !name)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
		yaml_node_t *e = yaml_document_get_node(doc, *i);
		const char *n = scalar(doc, e, "name");

		if (n && !strcmp(n, name))
			return map_get(doc, e, sub);
	}
	return NULL;
}

static char *b64_decode(const char *in)
{
	size_t len = strlen(in), out_len = len / 4 * 3 + 4;
	unsigned char *out = malloc(out_len + 1);
	int n;

	if (!out)
		return NULL;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0) {
		free(out);
		return NULL;
	}
	/* DecodeBlock counts padding bytes as zeros; PEM text has no NULs. */
	out[n] = '\0';
	return (char *)out;
}

static char *resolve(const char *base_dir, const char *p)
{
	char *out;

	if (!p)
		return NULL;
	if (p[0] == '/' || !base_dir)
		return strdup(p);
	if (asprintf(&out, "%s/%s", base_dir, p) < 0)
		return NULL;
	return out;
}

/* Takes inline *-data (base64) or a file path; one of them or neither. */
static int pem_or_file(yaml_document_t *doc, yaml_node_t *m, const char *data_key, const char *file_key,
		       const char *dir, char **pem, char **file, char err[K8S_ERR_LEN])
{
	const char *data = scalar(doc, m, data_key);

	if (data) {
		*pem = b64_decode(data);
		if (!*pem) {
			snprintf(err, K8S_ERR_LEN, "kubeconfig: %s is not valid base64", data_key);
			return -EINVAL;
		}
	}
	*file = resolve(dir, scalar(doc, m, file_key));
	return 0;
}

int k8s_config_from_kubeconfig(const char *path, struct k8s_config *c, char err[K8S_ERR_LEN])
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root, *ctx, *cluster, *user;
	const char *cur, *s;
	char *dir_buf = strdup(path), *dir;
	FILE *f;
	int ret = -EINVAL;

	memset(c, 0, sizeof(*c));
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, K8S_ERR_LEN, "kubeconfig %s: %s", path, strerror(errno));
		free(dir_buf);
		return -errno;
	}
	dir = dirname(dir_buf);
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, K8S_ERR_LEN, "kubeconfig %s: line %zu: %s", path, parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "invalid YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		free(dir_buf);
		return -EINVAL;
	}
	root = yaml_document_get_root_node(&doc);
	cur = scalar(&doc, root, "current-context");
	ctx = named_entry(&doc, root, "contexts", "context", cur);
	if (!ctx) {
		snprintf(err, K8S_ERR_LEN, "kubeconfig %s: current-context \"%s\" not found in contexts",
			 path, cur ? cur : "");
		goto out;
	}
	cluster = named_entry(&doc, root, "clusters", "cluster", scalar(&doc, ctx, "cluster"));
	user = named_entry(&doc, root, "users", "user", scalar(&doc, ctx, "user"));
	if (!cluster || !(s = scalar(&doc, cluster, "server"))) {
		snprintf(err, K8S_ERR_LEN, "kubeconfig %s: context \"%s\" has no cluster with a server", path, cur);
		goto out;
	}
	c->server = strdup(s);
	while (strlen(c->server) > 1 && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = '\0';
	s = scalar(&doc, cluster, "insecure-skip-tls-verify");
	c->insecure = s && !strcmp(s, "true");
	if (pem_or_file(&doc, cluster, "certificate-authority-data", "certificate-authority", dir,
			&c->ca_pem, &c->ca_file, err))
		goto out;
	if (user) {
		if ((s = scalar(&doc, user, "token")))
			c->token = strdup(s);
		c->token_file = resolve(dir, scalar(&doc, user, "tokenFile"));
		if (pem_or_file(&doc, user, "client-certificate-data", "client-certificate", dir,
				&c->cert_pem, &c->cert_file, err) ||
		    pem_or_file(&doc, user, "client-key-data", "client-key", dir, &c->key_pem, &c->key_file, err))
			goto out;
		/* As kubectl: a certificate is useless without its key and the other way round. */
		if (!(c->cert_pem || c->cert_file) != !(c->key_pem || c->key_file)) {
			snprintf(err, K8S_ERR_LEN, "kubeconfig %s: user \"%s\" has client-%s(-data) without client-%s(-data)",
				 path, scalar(&doc, ctx, "user"), c->cert_pem || c->cert_file ? "certificate" : "key",
				 c->cert_pem || c->cert_file ? "key" : "certificate");
			goto out;
		}
	}
	c->namespace = strdup((s = scalar(&doc, ctx, "namespace")) ? s : "default");
	ret = 0;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	free(dir_buf);
	if (ret)
		k8s_config_free(c);
	return ret;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		/* An empty file: "" (a read error reads as empty too). */
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

/* A file the service account must provide: readable and not empty. */
static int sa_file(const char *dir, const char *name, char **path, char err[K8S_ERR_LEN])
{
	char *text;

	if (asprintf(path, "%s/%s", dir, name) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	text = read_file(*path);
	if (!text || !*text) {
		int e = text ? ENODATA : errno;

		snprintf(err, K8S_ERR_LEN, "in-cluster config: %s: %s (is the service account mounted? %s)", *path,
			 text ? "empty" : strerror(e), K8S_SA_DIR_ENV " overrides the directory");
		free(text);
		return -e;
	}
	free(text);
	return 0;
}

int k8s_config_in_cluster(struct k8s_config *c, char err[K8S_ERR_LEN])
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *sa = getenv(K8S_SA_DIR_ENV) && *getenv(K8S_SA_DIR_ENV) ? getenv(K8S_SA_DIR_ENV) : K8S_SA_DIR;
	char path[512], *ns;
	int ret;

	memset(c, 0, sizeof(*c));
	if (!host || !*host || !port || !*port) {
		snprintf(err, K8S_ERR_LEN, "in-cluster config: KUBERNETES_SERVICE_HOST/PORT not set "
			 "(not running in a pod? pass --kubeconfig)");
		return -ENOENT;
	}
	if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0) {
		c->server = NULL;
		return -ENOMEM;
	}
	/* The token is read now to fail early, and again whenever it changes
	 * (client.c); the server is verified against the CA, never skipped. */
	if ((ret = sa_file(sa, "token", &c->token_file, err)) || (ret = sa_file(sa, "ca.crt", &c->ca_file, err))) {
		k8s_config_free(c);
		return ret;
	}
	snprintf(path, sizeof(path), "%s/namespace", sa);
	ns = read_file(path);
	if (ns) {
		ns[strcspn(ns, " \t\r\n")] = '\0';
		if (!*ns) {
			free(ns);
			ns = NULL;
		}
	}
	c->namespace = ns ? ns : strdup("default");
	return 0;
}

void k8s_config_free(struct k8s_config *c)
{
	char **fields[] = { &c->server, &c->ca_pem, &c->ca_file, &c->token, &c->token_file, &c->cert_pem,
			    &c->key_pem, &c->cert_file, &c->key_file, &c->namespace };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
}
