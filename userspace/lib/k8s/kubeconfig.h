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
/* The service account's directory, and the variable that overrides it
 * (tests, or a pod that mounts its token elsewhere). */
#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_SA_DIR_ENV "K8S_SA_DIR"

/* In a pod: https://KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, with
 * the service account's token (as token_file: re-read when it changes),
 * ca.crt (the server is verified against it) and namespace. Fails, naming
 * the file, when the token or the CA is missing or empty. */
int k8s_config_in_cluster(struct k8s_config *c, char err[K8S_ERR_LEN]);
void k8s_config_free(struct k8s_config *c);
