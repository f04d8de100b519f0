/* Where a Kubernetes API is and how to authenticate to it: from a
 * kubeconfig file (libyaml) or from the in-cluster service account. */
#pragma once
#include <stdbool.h>

#define K8S_ERR_LEN 512

struct k8s_config {
	char *server;		/* https://host:port, no trailing slash */
	char *ca_pem;		/* CA bundle (PEM) to verify the server; NULL: system CAs */
	char *ca_file;
	bool insecure;		/* insecure-skip-tls-verify */
	char *token;		/* bearer token */
	char *token_file;	/* re-read periodically (projected tokens expire) */
	char *cert_pem;		/* client certificate and key (PEM) */
	char *key_pem;
	char *cert_file;
	char *key_file;
	char *namespace;	/* context's namespace, or the pod's */
};

/* Reads the current context of a kubeconfig. Relative file paths in it are
 * resolved against the kubeconfig's directory, as kubectl does. */
int k8s_config_from_kubeconfig(const char *path, struct k8s_config *c, char err[K8S_ERR_LEN]);
/* KUBERNETES_SERVICE_HOST/PORT and /var/run/secrets/kubernetes.io/serviceaccount
 * (root overridable for tests with K8S_SA_DIR). */
int k8s_config_in_cluster(struct k8s_config *c, char err[K8S_ERR_LEN]);
void k8s_config_free(struct k8s_config *c);
