# shellcheck shell=bash
# Shared by tests/rotad/*_test.sh: everything tests/e2e/lib.sh gives (the
# node/client/backend netns topology, servers, assertions, cleanup) plus a
# rota-apiserver and a rotad of this run's own, kubectl against it, object
# generators, waits on the pinned maps, and a cleanup that also ends the
# agent and the API server (resuming a SIGSTOPped one first).
#
# Control-plane traffic (kubectl, rotad ↔ rota-apiserver, /healthz, /metrics)
# stays on 127.0.0.1 in the root netns, on free ports picked per run. All
# data traffic goes between namespaces of the topology.

# shellcheck source=../e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../e2e/lib.sh"

# This suite's names carry its own prefix, rdx-<pid>x<random>: namespaces,
# the bpffs directory, the cgroup and the temp directory.
rmdir "$TMP"
E2E_PREFIX=rdx-$E2E_ID
BPFFS=/sys/fs/bpf/$E2E_PREFIX
TMP=$(mktemp -d "/tmp/$E2E_PREFIX.XXXXXX")
# shellcheck disable=SC2034 # used by tests/e2e/lib.sh
NS_NODE=$E2E_PREFIX-node
# shellcheck disable=SC2034
NS_CLI=$E2E_PREFIX-cli
# shellcheck disable=SC2034
NS_B=("" "$E2E_PREFIX-b1" "$E2E_PREFIX-b2" "$E2E_PREFIX-b3")

RD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROTAD_BIN=${ROTAD_BIN:-$ROOT_DIR/build/bin/rotad}
APISERVER_BIN=${APISERVER_BIN:-$ROOT_DIR/build/bin/rota-apiserver}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
RTOOL=$RD_DIR/rotad_tool.py

API_DIR=$TMP/api		# rota-apiserver's data dir (pki, sqlite, admin token)
API_PID=""
ROTAD_PID=""
ROTAD_LOG=$TMP/rotad.log
RD_PIDS=()			# every rotad / apiserver / fake server we started
export KUBECONFIG=$TMP/kubeconfig

# ---------------------------------------------------------------- cleanup

# The e2e cleanup, run after ours: it kills by PID with SIGTERM and waits,
# which a stopped process would never answer.
eval "e2e_$(declare -f cleanup)"
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${RD_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${RD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if ((rc != 0)) && [[ -s $ROTAD_LOG ]]; then
		echo "---- last lines of the rotad log ($rc)"
		tail -n 30 "$ROTAD_LOG"
	fi
	_rc() { return "$1"; }
	_rc "$rc"
	e2e_cleanup
}

# ---------------------------------------------------------------- prerequisites

require_rotad_env() {
	require_env
	[[ -x $ROTAD_BIN ]] || die "$ROTAD_BIN not built: run 'make'"
	[[ -x $APISERVER_BIN ]] || die "$APISERVER_BIN not built: run 'make'"
	[[ -x $KUBECTL ]] || die "kubectl is missing at $KUBECTL"
}

# free_ports N: N distinct loopback TCP ports, free right now, picked at
# random below the ephemeral range: a port of ours that is briefly unbound
# (an API server restarting) is never handed out as some connection's
# local port or as another test's "free port 0".
FREE_PORTS_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/free_ports.py
free_ports() { "$PY" "$FREE_PORTS_PY" "$1"; }
free_port() { free_ports 1; }
# This run's control-plane ports, reserved together so they never collide.
read -r API_PORT HEALTHZ_PORT METRICS_PORT <<<"$(free_ports 3)"

# ---------------------------------------------------------------- waiting

# wait_until SECONDS CMD...: polls CMD every 0.1 s; status 0 once it succeeds.
wait_until() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- rota-apiserver

# start_apiserver [FLAGS...]: on API_PORT (picked on first use) with API_DIR;
# writes $KUBECONFIG; waits for /readyz.
start_apiserver() {
	mkdir -p "$API_DIR"
	"$APISERVER_BIN" --data-dir "$API_DIR" --secure-port "$API_PORT" --kubeconfig-out "$KUBECONFIG" \
		"$@" >>"$TMP/apiserver.log" 2>&1 &
	API_PID=$!
	RD_PIDS+=("$API_PID")
	local i
	for i in $(seq 300); do
		kill -0 "$API_PID" 2>/dev/null || {
			tail -n 20 "$TMP/apiserver.log" >&2
			die "rota-apiserver exited"
		}
		[[ $(curl -sk --max-time 2 "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null) == ok ]] && return 0
		sleep 0.1
	done
	tail -n 20 "$TMP/apiserver.log" >&2
	die "rota-apiserver on port $API_PORT not ready after 30 s"
}

# stop_apiserver [SIGNAL]: default SIGTERM; waits for it to end.
stop_apiserver() {
	[[ -n $API_PID ]] || return 0
	kill "-${1:-TERM}" "$API_PID" 2>/dev/null
	wait "$API_PID" 2>/dev/null
	API_PID=""
}

# kubectl on this run's API server; its discovery cache stays in $TMP.
k() { "$KUBECTL" --request-timeout=10s --cache-dir "$TMP/kube-cache" "$@"; }

# kapply ARGS...: rotad_tool.py ARGS | kubectl apply -f -
kapply() {
	"$PY" "$RTOOL" "$@" | k apply -f - >>"$TMP/kubectl.log" 2>&1 || {
		echo "kubectl apply of '$*' failed:" >&2
		tail -n 3 "$TMP/kubectl.log" >&2
		return 1
	}
}

# vip_of SERVICE: the ClusterIP the API server allocated.
vip_of() { k get svc "$1" -o 'jsonpath={.spec.clusterIP}'; }

# ---------------------------------------------------------------- rotad

# Where rotad finds the API: --kubeconfig $KUBECONFIG (as it is when
# start_rotad runs), or with ROTAD_IN_CLUSTER=1 the in-cluster config that
# the environment describes (KUBERNETES_SERVICE_HOST/PORT, K8S_SA_DIR).
ROTAD_IN_CLUSTER=0

# start_rotad [FLAGS...]: this run's rotad on $BPFFS and $CG, health and
# metrics on free loopback ports (kept across restarts), log appended to
# $ROTAD_LOG. Returns at once; see wait_synced.
start_rotad() {
	local cg=() src=(--kubeconfig "$KUBECONFIG")
	[[ -n $CG ]] && cg=(--cgroup "$CG")
	((ROTAD_IN_CLUSTER)) && src=()
	echo "==== rotad $* ($(date +%T.%N))" >>"$ROTAD_LOG"
	"$ROTAD_BIN" "${src[@]}" --bpffs-dir "$BPFFS" "${cg[@]}" \
		--healthz-bind "127.0.0.1:$HEALTHZ_PORT" --metrics-bind "127.0.0.1:$METRICS_PORT" \
		--node-name node1 "$@" >>"$ROTAD_LOG" 2>&1 &
	ROTAD_PID=$!
	RD_PIDS+=("$ROTAD_PID")
}

# stop_rotad [SIGNAL]: default SIGTERM; waits for it to end.
stop_rotad() {
	[[ -n $ROTAD_PID ]] || return 0
	kill "-${1:-TERM}" "$ROTAD_PID" 2>/dev/null
	wait "$ROTAD_PID" 2>/dev/null
	ROTAD_PID=""
}

healthz_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz"; }
healthz_body() { curl -s --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz"; }
metrics() { curl -s --max-time 2 "http://127.0.0.1:$METRICS_PORT/metrics"; }
# metric NAME [LABELS]: one sample's value ("absent" if none).
metric() { metrics | "$PY" "$RTOOL" metric "$@"; }
healthy() { [[ $(healthz_code) == 200 ]]; }

# wait_synced: rotad answers /healthz with 200 (it has synced), 15 s at most.
wait_synced() { wait_until 15 healthy; }

# rotad_log_since MARK: the log after byte offset MARK (see log_mark).
log_mark() { stat -c %s "$ROTAD_LOG" 2>/dev/null || echo 0; }
rotad_log_since() { tail -c +"$(($1 + 1))" "$ROTAD_LOG"; }

# ---------------------------------------------------------------- maps

# svc_state FRONTEND: "MODE AFFINITY ADDR:PORT/STATE,..." (backends sorted)
# of the frontend in the maps, or "absent".
svc_state() {
	rota service list -o json 2>/dev/null | pyjq '(" ".join([s["mode"], str(s["affinityTimeoutSeconds"]),
		",".join(sorted("%s:%d/%s" % (b["address"], b["port"], b["state"]) for b in s["backends"]))])
		if (s := next((s for s in (d or []) if s["frontend"] == f), None)) else "absent")' f="$1"
}
# backends_of FRONTEND: just the sorted backend list of svc_state.
backends_of() { svc_state "$1" | awk '{print $3}'; }
backends_are() { [[ $(backends_of "$1") == "$2" ]]; }
svc_absent() { [[ $(svc_state "$1") == absent ]]; }
svc_present() { [[ $(svc_state "$1") != absent ]]; }
n_frontends() { rota service list -o json | pyjq 'len(d or [])'; }

# wait_backends DESC FRONTEND BACKENDS: the maps reach that backend list
# (as backends_of prints it) within 10 s; a PASS/FAIL line.
wait_backends() {
	local desc=$1 fe=$2 want=$3
	if wait_until 10 backends_are "$fe" "$want"; then
		pass "$desc ($fe → ${want:-none})"
	else
		fail "$desc ($fe: want ${want:-none}, maps hold: $(svc_state "$fe"))"
	fi
}

# be LIST PORT STATE: "A:PORT/STATE,..." for backend numbers LIST ("1 2 3").
be() {
	local i res=()
	for i in $1; do res+=("${B_ADDR[i]}:$2/${3:-active}"); done
	local IFS=,
	echo "${res[*]}"
}

# ---------------------------------------------------------------- topology

# make_plain_cgroup: a cgroup v2 directory of our own for socket LB, left
# for rotad to attach (the e2e make_cgroup attaches it with the CLI).
make_plain_cgroup() {
	local base=/sys/fs/cgroup/unified
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || base=/sys/fs/cgroup
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || die "no cgroup v2 hierarchy"
	CG=$base/$E2E_PREFIX
	mkdir "$CG" || die "mkdir $CG"
}

# add_socket_client: a second client pod, 10.244.2.2 behind h-cli2, whose
# processes run in the socket-LB cgroup (see cg2). The tc-path client
# (10.244.1.2) and the socket-LB one are different pods on purpose: when one
# pod mixes both paths, a socket-LB (direct) connection can reuse the source
# port of a recent tc-path flow to the same backend and have its replies
# rewritten by that flow's conntrack entry (ct_port_reuse_repro.sh shows it).
NS_CLI2=$E2E_PREFIX-cli2
CLI2_ADDR=10.244.2.2
add_socket_client() {
	new_netns "$NS_CLI2"
	add_pod "$NS_CLI2" h-cli2 "$CLI2_ADDR"
}
cg2() { in_cg "$NS_CLI2" "$@"; }

# wait_datapath: rotad has loaded (or adopted) the datapath in $BPFFS.
wait_datapath() {
	wait_until 10 test -e "$BPFFS/progs/rota_from_pod" || die "rotad did not load the datapath into $BPFFS"
}

# ---------------------------------------------------------------- traffic

# get_n N VIP[:PORT] RUNNER...: like the e2e http_n (one line per request:
# the backend's name or "ERR ..."), from one Python process rather than N
# curls. RUNNER is a function that runs a command in the client (cli, cg).
get_n() {
	local n=$1 hp=$2 host port
	shift 2
	host=${hp%:*}
	port=80
	[[ $hp == *:* ]] && port=${hp##*:}
	"$@" "$PY" "$RTOOL" get "$n" "$host" "$port"
}

# expect_refused DESC RUNNER NS URL: curl fails fast with "connection
# refused"/unreachable (exit 7) rather than timing out.
expect_refused() {
	local desc=$1 runner=$2 ns=$3 url=$4 rc start ms
	start=$EPOCHREALTIME
	"$runner" "$ns" curl -s --max-time 3 "$url" >/dev/null 2>&1
	rc=$?
	ms=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	check "$desc (curl exit $rc, want 7, in $ms ms)" [ "$rc" -eq 7 -a "$ms" -lt 2000 ]
}
