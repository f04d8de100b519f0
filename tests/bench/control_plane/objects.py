"""The benchmark's Kubernetes objects: Service i and its one EndpointSlice
with E endpoints, named and addressed so that every run builds the same
ones. Pod addresses are distinct across all services (10.128.0.0/10)."""
import ipaddress

NAMESPACE = "cpb"
POD_BASE = int(ipaddress.IPv4Address("10.128.0.0"))
TARGET_PORT = 8080


def svc_name(i):
    return "cpb-svc-%05d" % i


def slice_name(i):
    return svc_name(i) + "-1"


def pod_addr(i, k, endpoints):
    """Address of endpoint k of service i; never the .0 of the /10."""
    return str(ipaddress.IPv4Address(POD_BASE + i * endpoints + k + 1))


def service(i):
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": svc_name(i), "namespace": NAMESPACE},
        "spec": {"selector": {"app": svc_name(i)},
                 "ports": [{"name": "http", "port": 80, "targetPort": TARGET_PORT, "protocol": "TCP"}]},
    }


def slice_endpoints(i, endpoints, not_ready=()):
    """The endpoint list; endpoints whose k is in not_ready are not ready."""
    return [{"addresses": [pod_addr(i, k, endpoints)], "conditions": {"ready": k not in not_ready}}
            for k in range(endpoints)]


def endpoint_slice(i, endpoints):
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice_name(i), "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": svc_name(i),
                                "endpointslice.kubernetes.io/managed-by": "cpb-bench"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": TARGET_PORT, "protocol": "TCP"}],
        "endpoints": slice_endpoints(i, endpoints),
    }


SERVICES_PATH = "/api/v1/namespaces/%s/services" % NAMESPACE
SLICES_PATH = "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % NAMESPACE
