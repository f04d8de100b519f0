#!/usr/bin/env bash
# Checks the measuring tools of the kube-proxy comparison with real parts:
# cmp_tool's responder (requests split over several writes, keep-alive and
# closing answers, wrk through it without errors), its latency probe, its
# conntrack flush, and apiload.py against a rota-apiserver of its own (the
# objects rotad is measured on, and that its endpoint change is the one
# kpgen.py gives kube-proxy). Needs root; about 5 s.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PY=/usr/bin/python3
APISERVER=$ROOT/build/bin/rota-apiserver
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS: $*"; }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
eq() {	# eq DESC GOT WANT
	if [[ $2 == "$3" ]]; then ok "$1"; else ko "$1 (got '$2', want '$3')"; fi
}
skip() {
	echo "SKIP: $*"
	[[ ${CI:-} == true ]] && exit 1
	exit 77
}
((EUID == 0)) || skip "needs root (network namespaces, conntrack)"
for t in gcc wrk iptables-legacy curl "$PY"; do command -v "$t" >/dev/null || skip "$t is missing"; done

ID=rcmpt-$$
TMP=$(mktemp -d "/tmp/$ID.XXXXXX")
NS=$ID
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gcc -O2 -Wall -Wextra -Werror -o "$TMP/cmp_tool" "$HERE/cmp_tool.c" -lpthread || { ko "cmp_tool builds without warnings"; exit 1; }
ok "cmp_tool builds without warnings"
ip netns add "$NS" || exit 1
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
in_ns ip link set lo up
# Conntrack on in this netns, as netfilter's users turn it on.
in_ns iptables-legacy -A OUTPUT -m conntrack --ctstate NEW -j ACCEPT
# nsenter itself (not the in_ns function, a subshell) so that $! is the server.
nsenter --net="/run/netns/$NS" "$TMP/cmp_tool" serve 8080 2 >"$TMP/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' 2>/dev/null && break; sleep 0.05; done

# A request in two writes (bash's printf sends "\r\n\r\n" apart), five times.
# The closing answer is 60 bytes; the server then waits for us to close.
answered=0
for _ in 1 2 3 4 5; do
	out=$(in_ns timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && printf "GET / HTTP/1.0\r\n" >&3 && sleep 0.05 && printf "\r\n" >&3 && head -c 60 <&3')
	[[ $out == *"Connection: close"*"ok" ]] && answered=$((answered + 1))
done
eq "a request split over two writes is answered, with Connection: close" "$answered" 5

got=$(in_ns "$PY" - <<'EOF'
import socket
s = socket.create_connection(("127.0.0.1", 8080), timeout=3)
s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
data = b""
while data.count(b"ok\n") < 2:
    data += s.recv(4096)
s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
more = s.recv(4096)
print(data.count(b"HTTP/1.1 200"), b"Connection: close" in data, more.startswith(b"HTTP/1.1 200"))
EOF
)
eq "keep-alive: two pipelined requests, two answers, connection kept for a third" "$got" "2 False True"

read -r -a l < <(in_ns "$TMP/cmp_tool" latency 127.0.0.1 8080 50 500)
eq "latency: 11 fields" "${#l[@]}" 11
eq "latency: no connect() failed" "${l[4]:-}" 0
eq "latency: 500 requests on one connection" "${l[9]:-}" 500
if awk -v a="${l[0]:-0}" -v b="${l[1]:-0}" -v c="${l[5]:-0}" -v d="${l[6]:-0}" 'BEGIN { exit !(a > 0 && b >= a && c > 0 && d >= c) }'; then
	ok "latency: p50 > 0 and p99 >= p50 for connects (${l[0]} / ${l[1]} µs) and requests (${l[5]} / ${l[6]} µs)"
else
	ko "latency: percentiles out of order: ${l[*]}"
fi
if in_ns "$TMP/cmp_tool" latency 127.0.0.1 8081 3 3 2>/dev/null; then
	ko "latency: a port nobody listens on fails"
else
	ok "latency: a port nobody listens on fails"
fi

in_ns wrk -t2 -c8 -d1s -H 'Connection: close' http://127.0.0.1:8080/ >"$TMP/wrk.out" 2>&1
reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk.out")
if ((${reqs:-0} > 100)) && ! grep -q 'Socket errors\|Non-2xx' "$TMP/wrk.out"; then
	ok "wrk with Connection: close: $reqs requests, no errors"
else
	ko "wrk with Connection: close: $(tr '\n' ' ' <"$TMP/wrk.out")"
fi

count() { in_ns cat /proc/sys/net/netfilter/nf_conntrack_count; }
before=$(count)
if ((before > 0)); then ok "conntrack holds $before entries after the runs"; else ko "conntrack holds no entries after the runs"; fi
in_ns "$TMP/cmp_tool" ctflush || ko "ctflush exit status"
eq "ctflush empties this netns's conntrack table" "$(count)" 0

# apiload.py against a rota-apiserver of ours (loopback, a free port).
if [[ -x $APISERVER ]]; then
	port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$APISERVER" --data-dir "$TMP/api" --secure-port "$port" --kubeconfig-out "$TMP/kubeconfig" >"$TMP/api.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do
		[[ $(curl -sk --max-time 1 "https://127.0.0.1:$port/readyz") == ok ]] && break
		sleep 0.1
	done
	url=https://127.0.0.1:$port
	token=$(cat "$TMP/api/admin.token")
	get() { curl -sk -H "Authorization: Bearer $token" "$url$1"; }
	if "$PY" "$HERE/apiload.py" create "$url" "$token" -n 7 -e 3 >/dev/null; then
		eq "create: 7 Services with ClusterIPs 10.96.1.0-6" \
			"$(get /api/v1/namespaces/bench/services | "$PY" -c 'import json, sys; print(" ".join(sorted(s["spec"]["clusterIP"] for s in json.load(sys.stdin)["items"])))')" \
			"10.96.1.0 10.96.1.1 10.96.1.2 10.96.1.3 10.96.1.4 10.96.1.5 10.96.1.6"
		eq "create: service 3's slice holds kpgen's endpoints, ready" \
			"$(get /apis/discovery.k8s.io/v1/namespaces/bench/endpointslices/svc-00003-bench | "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(d["metadata"]["labels"]["kubernetes.io/service-name"], " ".join(e["addresses"][0] + ("/ready" if e["conditions"]["ready"] else "") for e in d["endpoints"]))')" \
			"svc-00003 100.64.0.9/ready 100.64.0.10/ready 100.64.0.11/ready"
		"$PY" "$HERE/apiload.py" change "$url" "$token" -n 7 -e 3 --index 3 >/dev/null || ko "apiload change"
		want=$("$PY" "$HERE/kpgen.py" changed -n 7 -e 3 --index 3 | cut -d' ' -f2- | sed 's/:8080//g')
		eq "change: the slice now holds kpgen's changed endpoints, with a trigger time" \
			"$(get /apis/discovery.k8s.io/v1/namespaces/bench/endpointslices/svc-00003-bench | "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(" ".join(e["addresses"][0] for e in d["endpoints"]), "endpoints.kubernetes.io/last-change-trigger-time" in d["metadata"].get("annotations", {}))')" \
			"$want True"
	else
		ko "apiload create"
	fi
else
	echo "SKIP: apiload checks ($APISERVER is not built)"
fi

echo "$passed passed, $failed failed"
((failed == 0))
