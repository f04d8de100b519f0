/* kubeconfig.c: writes the admin kubeconfig (--kubeconfig-out) that kubectl,
 * client-go, python-kubernetes and rotad read as-is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "apiserver.h"
#include "log.h"
#include "util.h"

int kubeconfig_write(const char *file, const char *server, const char *ca_pem,
		     const char *token)
{
	struct buf b = { 0 };
	char *ca = ca_pem ? b64_encode(ca_pem, strlen(ca_pem)) : NULL;
	int err;

	buf_addf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: rota\n  cluster:\n"
		     "    server: %s\n", server);
	if (ca)
		buf_addf(&b, "    certificate-authority-data: %s\n", ca);
	buf_addf(&b, "users:\n- name: rota-admin\n  user:\n    token: %s\n"
		     "contexts:\n- name: rota\n  context:\n    cluster: rota\n    user: rota-admin\n"
		     "    namespace: default\ncurrent-context: rota\npreferences: {}\n", token);
	free(ca);
	if (!b.p)
		return -12;
	err = write_file(file, b.p, b.len, 0600);
	if (err)
		pr_warn("write kubeconfig %s: %s", file, strerror(-err));
	buf_free(&b);
	return err;
}
