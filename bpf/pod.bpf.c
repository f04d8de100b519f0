// SPDX-License-Identifier: GPL-2.0
/* tc programs for a pod's host-side veth: rota_from_pod on ingress (what the
 * pod sends), rota_to_pod on egress (what the pod receives). */
#include "lib/pod.h"

SEC("tc")
int rota_from_pod(struct __sk_buff *skb)
{
	return from_pod(skb);
}

SEC("tc")
int rota_to_pod(struct __sk_buff *skb)
{
	return to_pod(skb);
}

char LICENSE[] SEC("license") = "GPL";
