#!/usr/bin/python3
"""Generates what kube-proxy would program for N services x E endpoints.

  kpgen.py iptables  [options]  > rules.txt   # iptables-restore --noflush input
  kpgen.py nftables  [options]  > rules.nft   # nft -f input
  kpgen.py iptables-change --index I [options] # kube-proxy's partial sync after one
  kpgen.py nftables-change --index I [options] # endpoint of service I changed
  kpgen.py changed   --index I [options]    # "VIP:80/TCP EP..." of service I after the change
  kpgen.py info      [options]                # "LAST_VIP RAND_VIP RAND_INDEX"
  kpgen.py hash KIND ARGS...                  # one chain name (for the tests)

The layout follows /work/shared/KUBE-PROXY-BASELINE.md (taken from
kubernetes' pkg/proxy/iptables and pkg/proxy/nftables): KUBE-SERVICES with one
rule per service port scanned linearly, KUBE-SVC-<hash> with the masquerade
rule and 1/(N-i) statistic rules, KUBE-SEP-<hash> with the hairpin masquerade
and the DNAT; in nftables mode one verdict-map dispatch, per-service chains
with `numgen random mod N vmap`, endpoint chains.

Services are bench/svc-NNNNN port "http" (80/TCP); service i has ClusterIP
10.96.0.0 + 256 + i (so i < 1,000,000). Services whose endpoints carry no
traffic get unrouted endpoint addresses 100.64.0.0/10 + i*E + j, port 8080.
Two services get the real endpoints given with --test-ep: the LAST one in
KUBE-SERVICES order (index N-1, the worst case of the linear scan) and one at
a random position (index drawn from --seed in 0..N-2; absent when N < 2).

The endpoint change replaces the last endpoint of service I with
100.127.0.0 + I (apiload.py makes the same change through rota-apiserver).
In iptables mode it is what kube-proxy's partial sync restores: the top-level
chains in full (declaring a chain flushes it, so every KUBE-SERVICES rule is
written again), the changed service's KUBE-SVC and KUBE-SEP chains, and, in a
cluster of at most 1,000 endpoints, `-X` of the stale KUBE-SEP chain (larger
clusters leave stale chains for a later full sync). In nftables mode it is
the transaction kube-proxy sends: the service chain and the new endpoint
chain added and flushed and their rules written, the stale endpoint chain
flushed (deleted in a later sync, as kube-proxy does).
"""
import argparse
import base64
import hashlib
import ipaddress
import random
import sys

NS = "bench"
PORT_NAME = "http"
SVC_PORT = 80
VIP_BASE = int(ipaddress.IPv4Address("10.96.0.0")) + 256
FAKE_EP_BASE = int(ipaddress.IPv4Address("100.64.0.0"))
FAKE_EP_PORT = 8080
MASQ_MARK = "0x4000"
LARGE_CLUSTER_ENDPOINTS = 1000	# kube-proxy: above this, endpoint comments go


CHANGED_EP_BASE = int(ipaddress.IPv4Address("100.127.0.0"))


def b32sha(s, chars):
	"""The first CHARS of base32(sha256(s)). Base32 turns every 5 bytes into
	8 characters on its own, so only the bytes behind them are encoded."""
	return base64.b32encode(hashlib.sha256(s.encode()).digest()[:(chars * 5 + 7) // 8]).decode()[:chars]


def svc_chain(spn, proto="tcp"):
	"""KUBE-SVC-: base32(sha256(servicePortName + protocol))[:16]."""
	return "KUBE-SVC-" + b32sha(spn + proto, 16)


def sep_chain(spn, ep, proto="tcp"):
	"""KUBE-SEP-: the same string + endpoint "IP:port"."""
	return "KUBE-SEP-" + b32sha(spn + proto + ep, 16)


def nft_hash_truncate(name, maxlen=240):
	name = b32sha(name, 8) + "-" + name
	if len(name) > maxlen:
		name = name[:maxlen - 3] + "..."
	return name


def nft_svc_chain(ns, svc, port_name, proto="tcp"):
	return "service-" + nft_hash_truncate(f"{ns}/{svc}/{proto}/{port_name}")


def nft_ep_chain(ns, svc, port_name, ep, proto="tcp"):
	ip, port = ep.rsplit(":", 1)
	return "endpoint-" + nft_hash_truncate(f"{ns}/{svc}/{proto}/{port_name}__{ip}/{port}")


def probability(n, i):
	"""Rule i of n (0-based) picks with 1/(n-i), printed like kube-proxy."""
	return "%0.10f" % (1.0 / (n - i))


def vip(i):
	return str(ipaddress.IPv4Address(VIP_BASE + i))


class Layout:
	def __init__(self, n, e, test_eps, seed, rand_index=None):
		if n < 1:
			raise SystemExit("kpgen: --services must be >= 1")
		if n > 1000000:
			raise SystemExit("kpgen: --services must be <= 1000000")
		self.n, self.e = n, e
		self.test_eps = test_eps or []
		if rand_index is not None:
			self.rand = rand_index
		elif n >= 2:
			self.rand = random.Random(seed).randrange(0, n - 1)
		else:
			self.rand = None

	def endpoints(self, i):
		if (i == self.n - 1 or i == self.rand) and self.test_eps:
			return list(self.test_eps)
		return ["%s:%d" % (ipaddress.IPv4Address(FAKE_EP_BASE + i * self.e + j), FAKE_EP_PORT)
			for j in range(self.e)]

	def service(self, i, eps=None):
		"""(index, servicePortName, svc name, cluster IP, [ep "IP:port"])."""
		name = "svc-%05d" % i
		return i, f"{NS}/{name}:{PORT_NAME}", name, vip(i), eps if eps is not None else self.endpoints(i)

	def services(self, start=0, stop=None):
		for i in range(start, self.n if stop is None else stop):
			yield self.service(i)

	def changed(self, i):
		"""Service I after the endpoint change, and the endpoint it lost."""
		if not 0 <= i < self.n:
			raise SystemExit("kpgen: --index must be in 0..N-1")
		eps = self.endpoints(i)
		old = eps[-1]
		eps[-1] = "%s:%d" % (ipaddress.IPv4Address(CHANGED_EP_BASE + i), int(old.rsplit(":", 1)[1]))
		return self.service(i, eps), old

	def total_endpoints(self):
		return sum(len(s[4]) for s in self.services())


def ipt_filter(w, hooks):
	# filter table: what kube-proxy keeps there when every service has
	# endpoints (the per-service REJECT rules only exist without endpoints).
	w("*filter\n")
	for c in ("KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL",
		  "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"):
		w(f":{c} - [0:0]\n")
	w("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n")
	w(f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT\n')
	w('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n')
	if hooks:
		# Hooks (kube-proxy adds these with `iptables -I`, once; appended here).
		w('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL\n')
		w('-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD\n')
		w('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n')
		w('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES\n')
	w("COMMIT\n")


def ipt_service_chains(w, svc, cluster_cidr, large):
	_, spn, _, cip, eps = svc
	sc = svc_chain(spn)
	seps = [sep_chain(spn, ep) for ep in eps]
	w(f'-A {sc} -m comment --comment "{spn} cluster IP" -m tcp -p tcp -d {cip} --dport {SVC_PORT} ! -s {cluster_cidr} -j KUBE-MARK-MASQ\n')
	n = len(eps)
	for i, ep in enumerate(eps):
		comment = "" if large else f'-m comment --comment "{spn} -> {ep}" '
		stat = f"-m statistic --mode random --probability {probability(n, i)} " if i < n - 1 else ""
		w(f"-A {sc} {comment}{stat}-j {seps[i]}\n")
	comment = "" if large else f"-m comment --comment {spn} "
	for ep, sep in zip(eps, seps):
		ip = ep.rsplit(":", 1)[0]
		w(f"-A {sep} {comment}-s {ip} -j KUBE-MARK-MASQ\n")
		w(f"-A {sep} {comment}-m tcp -p tcp -j DNAT --to-destination {ep}\n")


def ipt_nat(w, lay, cluster_cidr, chains_of, hooks, delete=()):
	"""The nat table with the top-level chains, KUBE-SERVICES for every
	service, and the KUBE-SVC/KUBE-SEP chains of the services chains_of
	gives; the chains in DELETE are flushed and deleted (-X)."""
	large = lay.total_endpoints() > LARGE_CLUSTER_ENDPOINTS
	w("*nat\n")
	for c in ("KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"):
		w(f":{c} - [0:0]\n")
	for _, spn, _, _, eps in chains_of:
		w(f":{svc_chain(spn)} - [0:0]\n")
		for ep in eps:
			w(f":{sep_chain(spn, ep)} - [0:0]\n")
	for c in delete:
		w(f":{c} - [0:0]\n")
	if hooks:
		w('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n')
		w('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n')
		w('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING\n')
	for _, spn, _, cip, _ in lay.services():
		w(f'-A KUBE-SERVICES -m comment --comment "{spn} cluster IP" -m tcp -p tcp -d {cip} --dport {SVC_PORT} -j {svc_chain(spn)}\n')
	w('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n')
	w(f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}\n")
	w(f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN\n")
	w(f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}\n")
	w('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully\n')
	for svc in chains_of:
		ipt_service_chains(w, svc, cluster_cidr, large)
	for c in delete:
		w(f"-X {c}\n")
	w("COMMIT\n")


def gen_iptables(lay, cluster_cidr, w):
	ipt_filter(w, hooks=True)
	ipt_nat(w, lay, cluster_cidr, list(lay.services()), hooks=True)


def gen_iptables_change(lay, cluster_cidr, index, w):
	svc, old = lay.changed(index)
	large = lay.total_endpoints() > LARGE_CLUSTER_ENDPOINTS
	# The stale chain: flushed and deleted in a small cluster; a large one
	# keeps it until a full sync (kube-proxy's largeClusterMode).
	ipt_filter(w, hooks=False)
	ipt_nat(w, lay, cluster_cidr, [svc], hooks=False, delete=() if large else (sep_chain(svc[1], old),))


def nft_service_chain(svc, cluster_cidr):
	_, _, name, cip, eps = svc
	sc = nft_svc_chain(NS, name, PORT_NAME)
	epc = [nft_ep_chain(NS, name, PORT_NAME, ep) for ep in eps]
	vm = ", ".join(f"{j} : goto {c}" for j, c in enumerate(epc))
	return sc, epc, [f"ip daddr {cip} tcp dport {SVC_PORT} ip saddr != {cluster_cidr} jump mark-for-masquerade",
			 f"numgen random mod {len(eps)} vmap {{ {vm} }}"]


def nft_endpoint_rules(ep):
	return [f"ip saddr {ep.rsplit(':', 1)[0]} jump mark-for-masquerade", f"meta l4proto tcp dnat to {ep}"]


def nft_base(w):
	w("add table ip kube-proxy { comment \"rules for kube-proxy\" ; }\n")
	w("flush table ip kube-proxy\n")
	w("table ip kube-proxy {\n")
	w("\tset cluster-ips { type ipv4_addr; comment \"Active ClusterIPs\"; }\n")
	w("\tset nodeport-ips { type ipv4_addr; comment \"IPs that accept NodePort traffic\"; }\n")
	w("\tmap service-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\"; }\n")
	w("\tmap service-nodeports { type inet_proto . inet_service : verdict; comment \"NodePort traffic\"; }\n")
	w("\tmap no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; comment \"vmap to drop or reject packets to services with no endpoints\"; }\n")
	w("\tmap firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment \"destinations that are subject to LoadBalancerSourceRanges\"; }\n")
	w("\tchain mark-for-masquerade { mark set mark or 0x4000; }\n")
	w("\tchain masquerading { mark and 0x4000 == 0 return; mark set mark xor 0x4000; masquerade fully-random; }\n")
	w("\tchain services { ip daddr . meta l4proto . th dport vmap @service-ips; "
	  "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports; }\n")
	w("\tchain firewall-check { ip daddr . meta l4proto . th dport vmap @firewall-ips; }\n")
	w("\tchain service-endpoints-check { ip daddr . meta l4proto . th dport vmap @no-endpoint-services; }\n")
	w("\tchain cluster-ips-check { ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"; }\n")
	w("\tchain reject-chain { reject; }\n")
	w("\tchain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }\n")
	w("\tchain nat-output { type nat hook output priority -100; policy accept; jump services; }\n")
	w("\tchain nat-postrouting { type nat hook postrouting priority srcnat; policy accept; jump masquerading; }\n")
	w("\tchain filter-prerouting { type filter hook prerouting priority -110; policy accept; ct state new jump firewall-check; }\n")
	w("\tchain filter-forward { type filter hook forward priority -110; policy accept; "
	  "ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }\n")
	w("\tchain filter-output { type filter hook output priority -110; policy accept; "
	  "ct state new jump service-endpoints-check; ct state new jump cluster-ips-check; }\n")
	w("}\n")


def nft_services(w, svcs, cluster_cidr):
	"""Service and endpoint chains, then the elements that point at them
	(in batches of 1,000, like knftables)."""
	w("table ip kube-proxy {\n")
	for svc in svcs:
		sc, epc, rules = nft_service_chain(svc, cluster_cidr)
		w(f"\tchain {sc} {{\n")
		for r in rules:
			w(f"\t\t{r}\n")
		w("\t}\n")
		for ep, c in zip(svc[4], epc):
			w(f"\tchain {c} {{\n")
			for r in nft_endpoint_rules(ep):
				w(f"\t\t{r}\n")
			w("\t}\n")
	w("}\n")
	batch = 1000
	for k in range(0, len(svcs), batch):
		part = svcs[k:k + batch]
		w("add element ip kube-proxy cluster-ips { " + ", ".join(s[3] for s in part) + " }\n")
		w("add element ip kube-proxy service-ips { " + ", ".join(
			f"{s[3]} . tcp . {SVC_PORT} : goto {nft_svc_chain(NS, s[2], PORT_NAME)}" for s in part) + " }\n")


def gen_nftables(lay, cluster_cidr, w):
	nft_base(w)
	nft_services(w, list(lay.services()), cluster_cidr)


def gen_nftables_change(lay, cluster_cidr, index, w):
	svc, old = lay.changed(index)
	sc, epc, rules = nft_service_chain(svc, cluster_cidr)
	t = "ip kube-proxy"
	new_ep, new_chain = svc[4][-1], epc[-1]
	# Chains before the rules that jump to them, as knftables orders a
	# transaction.
	for c in (new_chain, sc):
		w(f"add chain {t} {c}\nflush chain {t} {c}\n")
	for r in nft_endpoint_rules(new_ep):
		w(f"add rule {t} {new_chain} {r}\n")
	for r in rules:
		w(f"add rule {t} {sc} {r}\n")
	w(f"flush chain {t} {nft_ep_chain(NS, svc[2], PORT_NAME, old)}\n")


def main():
	ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
	ap.add_argument("mode", choices=["iptables", "nftables", "iptables-change", "nftables-change", "changed", "info",
						 "hash"])
	ap.add_argument("args", nargs="*", help="for hash: svc SPN | sep SPN IP:PORT | nft-svc NS SVC PORT | nft-ep NS SVC PORT IP:PORT")
	ap.add_argument("--services", "-n", type=int, default=100)
	ap.add_argument("--endpoints", "-e", type=int, default=4)
	ap.add_argument("--test-ep", action="append", default=[], metavar="IP:PORT",
			help="real endpoint of the two services under test (repeat)")
	ap.add_argument("--seed", type=int, default=7, help="seed of the random position")
	ap.add_argument("--rand-index", type=int, default=None, help="force the random position")
	ap.add_argument("--cluster-cidr", default="10.244.0.0/16")
	ap.add_argument("--index", type=int, default=0, help="the service whose endpoint changes")
	a = ap.parse_args()
	if a.mode == "hash":
		kind, rest = a.args[0], a.args[1:]
		f = {"svc": svc_chain, "sep": sep_chain, "nft-svc": nft_svc_chain, "nft-ep": nft_ep_chain}[kind]
		print(f(*rest))
		return
	if a.endpoints < 1:
		raise SystemExit("kpgen: --endpoints must be >= 1")
	lay = Layout(a.services, a.endpoints, a.test_ep, a.seed, a.rand_index)
	if a.mode == "info":
		r = lay.rand if lay.rand is not None else a.services - 1
		print(vip(a.services - 1), vip(r), r)
		return
	if a.mode == "changed":
		svc, _ = lay.changed(a.index)
		print(f"{svc[3]}:{SVC_PORT}/TCP", " ".join(svc[4]))
		return
	# One write at the end: a write per line costs more than generating it.
	parts = []
	w = parts.append
	if a.mode == "iptables":
		gen_iptables(lay, a.cluster_cidr, w)
	elif a.mode == "nftables":
		gen_nftables(lay, a.cluster_cidr, w)
	elif a.mode == "iptables-change":
		gen_iptables_change(lay, a.cluster_cidr, a.index, w)
	else:
		gen_nftables_change(lay, a.cluster_cidr, a.index, w)
	sys.stdout.write("".join(parts))


if __name__ == "__main__":
	main()
