/* rota-cni-podcidr KUBECONFIG|--in-cluster NODE: prints the Node's
 * spec.podCIDR. A separate helper so that rota-cni itself does not load
 * libcurl and its TLS stack on every ADD (process start-up dominates ADD
 * latency); rota-cni runs it only when its config has a kubeconfig and no
 * subnet, and cni/install.sh with POD_CIDR=node (--in-cluster: the
 * service account of the pod it runs in, as the DaemonSet's init step).
 * Exit: 0 printed, 2 bad kubeconfig, 3 not yet (API unreachable, no
 * podCIDR yet: try again), 4 the API refused or has no such Node. */
#include <stdio.h>
#include <string.h>
#include "k8s/client.h"

int main(int argc, char **argv)
{
	char err[K8S_ERR_LEN] = "", path[512];
	struct k8s_config kc = { 0 };
	struct k8s_client cl;
	cJSON *obj = NULL, *cidr;
	long status = 0;
	int ret;

	if (argc != 3 || !*argv[2]) {
		fprintf(stderr, "usage: rota-cni-podcidr KUBECONFIG|--in-cluster NODE\n");
		return 2;
	}
	ret = strcmp(argv[1], "--in-cluster") ? k8s_config_from_kubeconfig(argv[1], &kc, err)
					       : k8s_config_in_cluster(&kc, err);
	if (ret) {
		fprintf(stderr, "%s%s: %s\n", strcmp(argv[1], "--in-cluster") ? "kubeconfig " : "", argv[1], err);
		return 2;
	}
	if (k8s_client_init(&cl, &kc)) {
		k8s_config_free(&kc);
		fprintf(stderr, "%s: cannot set up a client\n", argv[1]);
		return 2;
	}
	snprintf(path, sizeof(path), "/api/v1/nodes/%s", argv[2]);
	ret = k8s_get(&cl, path, &obj, &status, err);
	if (ret) {
		fprintf(stderr, "GET %s: %s\n", path, err);
		ret = 3;
	} else if (status != 200) {
		fprintf(stderr, "GET %s: HTTP %ld%s\n", path, status, status == 404 ? " (no such Node)" : "");
		ret = 4;
	} else {
		cidr = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "podCIDR");
		if (cJSON_IsString(cidr)) {
			printf("%s\n", cidr->valuestring);
			ret = 0;
		} else {
			fprintf(stderr, "Node %s has no spec.podCIDR yet\n", argv[2]);
			ret = 3;
		}
	}
	cJSON_Delete(obj);
	k8s_client_free(&cl);
	return ret;
}
