#!/usr/bin/python3
"""Puts the benchmark's services into rota-apiserver, so that rotad programs
them through its real path (list/watch, reconcile, librota).

  apiload.py create URL TOKEN -n N -e E
      N Services bench/svc-NNNNN (ClusterIP 10.96.1.0 + i, port "http" 80 ->
      8080/TCP) and one EndpointSlice each with E ready endpoints
      100.64.0.0 + i*E + j: the services kpgen.py gives kube-proxy, all with
      unrouted endpoints (rotad's figures need no traffic). Two keep-alive
      connections (a process or a TLS handshake per object would cost more
      than the object). Prints the seconds it took.
  apiload.py change URL TOKEN -n N -e E --index I
      replaces the last endpoint of service I's slice with 100.127.0.0 + I
      (kpgen.py's endpoint change), printing it,
      stamping endpoints.kubernetes.io/last-change-trigger-time with the
      moment the request leaves, which rotad's
      kubeproxy_network_programming_duration_seconds measures from.

Exits 1 at the first HTTP status >= 400, naming the object."""
import argparse
import http.client
import ipaddress
import json
import ssl
import sys
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlparse

NS = "bench"
VIP_BASE = int(ipaddress.IPv4Address("10.96.0.0")) + 256	# as kpgen.py
FAKE_EP_BASE = int(ipaddress.IPv4Address("100.64.0.0"))
CHANGED_EP_BASE = int(ipaddress.IPv4Address("100.127.0.0"))	# not used by any service above


class Api:
	"""One keep-alive HTTPS connection with the bearer token."""

	def __init__(self, url, token):
		u = urlparse(url)
		self.conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=60,
							context=ssl._create_unverified_context())
		self.token = token

	def call(self, method, path, body=None, ctype="application/json", ok404=False):
		h = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
		data = None
		if body is not None:
			h["Content-Type"] = ctype
			data = json.dumps(body).encode()
		self.conn.request(method, path, body=data, headers=h)
		r = self.conn.getresponse()
		out = r.read()
		if r.status >= 400 and not (ok404 and r.status in (404, 409)):
			raise SystemExit("apiload: %s %s: HTTP %d: %s" % (method, path, r.status,
								    out[:300].decode(errors="replace")))
		return r.status


def service(i):
	return {"apiVersion": "v1", "kind": "Service",
		"metadata": {"name": "svc-%05d" % i, "namespace": NS},
		"spec": {"clusterIP": str(ipaddress.IPv4Address(VIP_BASE + i)),
			 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def endpoints(i, e):
	return [str(ipaddress.IPv4Address(FAKE_EP_BASE + i * e + j)) for j in range(e)]


def slice_(i, addrs, trigger=None):
	md = {"name": "svc-%05d-bench" % i, "namespace": NS,
	      "labels": {"kubernetes.io/service-name": "svc-%05d" % i}}
	if trigger:
		md["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": trigger}
	return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": md,
		"addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
		"endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addrs]}


def create(a):
	Api(a.url, a.token).call("POST", "/api/v1/namespaces",
				 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, ok404=True)
	t0 = time.monotonic()
	failed = []

	def worker(k, step):
		try:
			api = Api(a.url, a.token)
			for i in range(k, a.services, step):
				api.call("POST", "/api/v1/namespaces/%s/services" % NS, service(i))
				api.call("POST", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % NS,
					 slice_(i, endpoints(i, a.endpoints)))
		except SystemExit as e:
			failed.append(str(e))
		except OSError as e:
			failed.append("apiload: %s" % e)
	threads = [threading.Thread(target=worker, args=(k, 2)) for k in range(2)]
	for t in threads:
		t.start()
	for t in threads:
		t.join()
	if failed:
		print(failed[0], file=sys.stderr)
		return 1
	print("%.3f" % (time.monotonic() - t0))
	return 0


def change(a):
	i = a.index
	addrs = endpoints(i, a.endpoints)
	addrs[-1] = str(ipaddress.IPv4Address(CHANGED_EP_BASE + i))
	api = Api(a.url, a.token)
	path = "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/svc-%05d-bench" % (NS, i)
	api.call("GET", path)	# opens the connection: the timed request pays no handshake
	now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
	api.call("PUT", path, slice_(i, addrs, trigger=now))
	print(addrs[-1])
	return 0


def main():
	ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
	ap.add_argument("mode", choices=["create", "change"])
	ap.add_argument("url")
	ap.add_argument("token")
	ap.add_argument("--services", "-n", type=int, required=True)
	ap.add_argument("--endpoints", "-e", type=int, required=True)
	ap.add_argument("--index", type=int, default=0)
	a = ap.parse_args()
	if a.services < 1 or a.endpoints < 1:
		raise SystemExit("apiload: --services and --endpoints must be >= 1")
	if not 0 <= a.index < a.services:
		raise SystemExit("apiload: --index must be in 0..N-1")
	return create(a) if a.mode == "create" else change(a)


if __name__ == "__main__":
	sys.exit(main())
