# Helpers for the rota-controller tests: an rota-apiserver on a temp data
# dir and free port, the controller against it, polling checks, and cleanup
# of every process and dir. Sourced by tests/controller/*_test.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
APISERVER=${APISERVER:-$ROOT/build/bin/rota-apiserver}
CONTROLLER=${CONTROLLER:-$ROOT/build/bin/rota-controller}
PY=/usr/bin/python3
T_PASS=0
T_FAIL=0
T_PIDS=()
T_DIRS=()

for what in "$APISERVER" "$CONTROLLER" kubectl curl "$PY"; do
	if ! command -v "$what" >/dev/null 2>&1 && [[ ! -x $what ]]; then
		echo "FAIL: $what is missing (make build/bin/rota-apiserver build/bin/rota-controller)" >&2
		exit 1
	fi
done

cleanup() {
	local p i
	# Newest first: the controller stops before the API server it talks to.
	for ((i = ${#T_PIDS[@]} - 1; i >= 0; i--)); do
		kill "${T_PIDS[i]}" 2>/dev/null || true
	done
	for p in "${T_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if ((T_FAIL)) || [[ ${KEEP_LOGS:-} ]]; then
		for p in "${T_DIRS[@]}"; do
			for f in "$p"/*.log; do
				[[ -f $f ]] || continue
				echo "---- $f (last 40 lines)"
				tail -n 40 "$f"
			done
		done
	fi
	for p in "${T_DIRS[@]}"; do
		rm -rf "$p"
	done
}
trap cleanup EXIT

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# setup: temp dir D, apiserver on PORT, KUBECONFIG, TOKEN, URL.
setup() {
	D=$(mktemp -d /tmp/rota-controller-test.XXXXXX)
	T_DIRS+=("$D")
	PORT=$(free_port)
	start_apiserver
	export KUBECONFIG=$D/kubeconfig
	TOKEN=$(cat "$D/admin.token")
	URL=https://127.0.0.1:$PORT
}

# start_apiserver [flags...]
start_apiserver() {
	local i
	"$APISERVER" --data-dir "$D" --secure-port "$PORT" --kubeconfig-out "$D/kubeconfig" "$@" \
		>>"$D/apiserver.log" 2>&1 &
	API_PID=$!
	T_PIDS+=("$API_PID")
	for i in $(seq 1 100); do
		if ! kill -0 "$API_PID" 2>/dev/null; then
			echo "rota-apiserver exited" >&2
			return 1
		fi
		curl -sk --max-time 1 "https://127.0.0.1:$PORT/readyz" 2>/dev/null | grep -qx ok && return 0
		sleep 0.1
	done
	echo "rota-apiserver on port $PORT not ready after 10s" >&2
	return 1
}

# start_controller [flags...]: sets CTL_PID.
start_controller() {
	"$CONTROLLER" --kubeconfig "$D/kubeconfig" "$@" >>"$D/controller.log" 2>&1 &
	CTL_PID=$!
	T_PIDS+=("$CTL_PID")
	sleep 0.2
	kill -0 "$CTL_PID" 2>/dev/null || { echo "rota-controller exited" >&2; return 1; }
}

stop_pid() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# api METHOD PATH [BODY [CONTENT-TYPE]]: prints the body; fails on HTTP >= 400.
api() {
	local m=$1 p=$2 body=${3:-} ct=${4:-application/json}
	if [[ -n $body ]]; then
		curl -sfk -X "$m" -H "Authorization: Bearer $TOKEN" -H "Content-Type: $ct" --data-binary "$body" "$URL$p"
	else
		curl -sfk -X "$m" -H "Authorization: Bearer $TOKEN" "$URL$p"
	fi
}

# mkpod NS NAME LABELS-JSON NODE [CONTAINER-PORTS-JSON]
mkpod() {
	local ns=$1 name=$2 labels=$3 node=$4 ports=${5:-[]}
	api POST "/api/v1/namespaces/$ns/pods" "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$name\",\"labels\":$labels},\"spec\":{\"nodeName\":\"$node\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"ports\":$ports}]}}" >/dev/null
}

# bulk: requests on stdin, one per line: METHOD PATH [CONTENT-TYPE BODY]
bulk() {
	$PY "$ROOT/tests/controller/bulk.py" "$URL" "$TOKEN"
}

# podstatus NS NAME IP READY(True|False) [PHASE]
podstatus() {
	local ns=$1 name=$2 ip=$3 ready=$4 phase=${5:-Running}
	api PATCH "/api/v1/namespaces/$ns/pods/$name/status" \
		"{\"status\":{\"phase\":\"$phase\",\"podIP\":\"$ip\",\"podIPs\":[{\"ip\":\"$ip\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"$ready\"}]}}" \
		application/merge-patch+json >/dev/null
}

# summary NS SVC: one line per endpoint, sorted, then "slices=N max=M":
#   IP PORTS ready=R serving=S terminating=T node=N zone=Z pod=P
summary() {
	kubectl get endpointslices -n "$1" -l "kubernetes.io/service-name=$2" -o json | $PY -c '
import json, sys
items = json.load(sys.stdin)["items"]
lines, mx = [], 0
for s in items:
    ports = ",".join(sorted("%s:%s/%s" % (p.get("name", ""), p["port"], p.get("protocol", "TCP")) for p in s.get("ports") or []))
    eps = s.get("endpoints") or []
    mx = max(mx, len(eps))
    for e in eps:
        c = e.get("conditions", {})
        b = lambda k: int(bool(c.get(k)))
        lines.append("%s %s ready=%d serving=%d terminating=%d node=%s zone=%s pod=%s" % (
            ",".join(e["addresses"]), ports or "-", b("ready"), b("serving"), b("terminating"),
            e.get("nodeName", "-"), e.get("zone", "-"), e.get("targetRef", {}).get("name", "-")))
for l in sorted(lines):
    print(l)
print("slices=%d max=%d" % (len(items), mx))
'
}

# eventually SECONDS CMD...: retries CMD until it succeeds.
eventually() {
	local deadline=$((SECONDS + $1))
	shift
	while ((SECONDS < deadline)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	"$@"
}

# summary_is NS SVC EXPECTED
summary_is() {
	local got
	got=$(summary "$1" "$2")
	if [[ $got != "$3" ]]; then
		echo "want:"
		echo "$3"
		echo "got:"
		echo "$got"
		return 1
	fi
}

# check NAME CMD...: records pass/fail by exit status.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "PASS: $name ($SECONDS s)"
		T_PASS=$((T_PASS + 1))
	else
		echo "FAIL: $name"
		sed 's/^/    /' <<<"$out" | tail -30
		T_FAIL=$((T_FAIL + 1))
	fi
}

finish() {
	echo "$(basename "$0"): $T_PASS passed, $T_FAIL failed"
	[[ $T_FAIL -eq 0 ]]
}
