#!/usr/bin/env bash
# Control-plane benchmark: rota-apiserver and rotad with 10,000 Services ×
# 10 endpoints (docs/benchmarks-control-plane.md says what and how).
#
#  1. For each store (sqlite, then a real etcd started here on loopback): a
#     fresh rota-apiserver; a watcher opened before the load; 10,000 Services
#     then 10,000 EndpointSlices from several keep-alive clients. Writes/s,
#     the time from the first write until the watcher has every event, and
#     the API server's peak RSS.
#  2. Against the sqlite API server, still loaded: rotad on an empty bpffs
#     directory of its own (socket LB off: it attaches nothing), for each LB
#     algorithm: full sync from empty, N single-endpoint changes, RSS.
#
# Prints a table and writes build/bench/control-plane.md and .csv. Every
# process, temp dir, etcd data dir and bpffs dir it makes is removed on exit,
# error or Ctrl-C. Run as root (rotad loads BPF programs).
#
#   tests/bench/control_plane/run.sh [--services N] [--endpoints E] [--clients P]
#       [--changes N] [--stores "sqlite etcd"] [--lb-algorithms "maglev random"]
#
# APISERVER=, ROTAD=, ROTA= measure other builds than build/bin's.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1	# no __pycache__ left in the source tree
OUT=$ROOT/build/bench

ARGS="$*"
SERVICES=10000
ENDPOINTS=10
CLIENTS=4
CHANGES=200
STORES="sqlite etcd"
ALGOS="maglev random"

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}
while (($#)); do
	case $1 in
	--services) SERVICES=$2; shift 2 ;;
	--endpoints) ENDPOINTS=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	--changes) CHANGES=$2; shift 2 ;;
	--stores) STORES=$2; shift 2 ;;
	--lb-algorithms) ALGOS=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "run.sh: unknown argument \"$1\"" >&2; usage 2 >&2 ;;
	esac
done
for v in SERVICES ENDPOINTS CLIENTS CHANGES; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "run.sh: --${v,,} \"${!v}\": not a number" >&2; exit 2; }
done
for v in SERVICES ENDPOINTS CLIENTS; do
	((${!v} > 0)) || { echo "run.sh: --${v,,}: at least 1" >&2; exit 2; }
done
for s in $STORES; do
	[[ $s == sqlite || $s == etcd ]] || { echo "run.sh: --stores: \"$s\" is neither sqlite nor etcd" >&2; exit 2; }
done
for a in $ALGOS; do
	[[ $a == maglev || $a == random ]] || { echo "run.sh: --lb-algorithms: \"$a\" is neither maglev nor random" >&2; exit 2; }
done

# ---------------------------------------------------------------- prerequisites

die() {
	echo "run.sh: $*" >&2
	exit 1
}
((EUID == 0)) || die "rotad loads BPF programs and pins maps: run as root"
# Other builds can be measured with APISERVER=, ROTAD=, ROTA= (paths).
APISERVER=${APISERVER:-$ROOT/build/bin/rota-apiserver}
ROTAD=${ROTAD:-$ROOT/build/bin/rotad}
ROTA=${ROTA:-$ROOT/build/bin/rota}
for b in "$APISERVER" "$ROTAD" "$ROTA"; do
	[[ -x $b ]] || die "$b is missing: run 'make'"
done
for t in curl bpftool "$PY"; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
done
[[ " $STORES " != *" etcd "* ]] || command -v etcd >/dev/null || die "etcd is missing (scripts/deps.sh installs it), or pass --stores sqlite"
[[ $(stat -fc %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || die "/sys/fs/bpf is not a bpf filesystem"

# ---------------------------------------------------------------- run state and cleanup

PREFIX=cpb-$$-$(printf %04x $((RANDOM)))
TMP=$(mktemp -d "/tmp/$PREFIX.XXXXXX")
BPFFS=/sys/fs/bpf/$PREFIX
BIN=$TMP/bin
PIDS=()			# every process started here, newest last

cleanup() {
	local rc=$? i p
	trap - EXIT INT TERM HUP
	set +e
	# rotad is rotad_bench.py's child; its PID file lets us end it even if
	# rotad_bench.py itself died first.
	for p in "$TMP"/rotad-*.pid; do
		[[ -s $p ]] || continue
		p=$(cat "$p")
		[[ $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) == "$BIN/rotad "* ]] && kill -TERM "$p"
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
	if [[ -e $BPFFS ]]; then
		"$BIN/rota" --bpffs-dir "$BPFFS" unload >/dev/null 2>&1
		rm -rf "$BPFFS"
	fi
	if ((rc != 0 && rc < 128)); then	# a failure, not Ctrl-C/SIGTERM
		for p in "$TMP"/*/*.log "$TMP"/*.log; do
			[[ -s $p ]] || continue
			echo "---- $p (last 15 lines)" >&2
			tail -n 15 "$p" >&2
		done
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Private copies: a rebuild in the tree during the run must not swap binaries.
mkdir -p "$BIN"
cp "$APISERVER" "$BIN/rota-apiserver"
cp "$ROTAD" "$BIN/rotad"
cp "$ROTA" "$BIN/rota"

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# forget PID: an ended and reaped process leaves the cleanup list (its PID
# may be someone else's by the time we clean up).
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# bg LOG CMD...: starts CMD in the background, remembered for cleanup; sets LAST_PID.
bg() {
	local out=$1
	shift
	"$@" >"$out" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# run_py OUT ERR SCRIPT ARGS...: one of the Python steps, in the background
# and waited for, so that Ctrl-C reaches the trap at once.
run_py() {
	local out=$1 err=$2 name pid rc=0
	name=$(basename "$3")
	shift 2
	"$PY" "$@" >"$out" 2>"$err" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget "$pid"
	((rc < 128)) || exit "$rc"	# it got our Ctrl-C or SIGTERM too
	((rc == 0)) || { cat "$err" >&2; die "$name failed"; }
}

# free_ports N: N loopback ports free right now, below the ephemeral range
# (never handed out as some connection's local port meanwhile).
FREE_PORTS_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../lib" && pwd)/free_ports.py
free_ports() { "$PY" "$FREE_PORTS_PY" "$1"; }

wait_for() {	# wait_for SECONDS WHAT CMD...
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 20; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	die "$what not ready after $secs s"
}

mem_of() {	# mem_of PID FILE: VmHWM and VmRSS lines of /proc/PID/status
	grep -E '^(VmHWM|VmRSS):' "/proc/$1/status" >"$2"
}

# cpu_of PID: CPU seconds (user + system) the process has used so far. On a
# shared machine this says more about cost than wall time does.
CLK_TCK=$(getconf CLK_TCK)
cpu_of() {
	awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# ---------------------------------------------------------------- the API server, per store

# start_etcd DIR: Debian's etcd on two free loopback ports, data in DIR.
start_etcd() {
	local d=$1 cport pport
	read -r cport pport <<<"$(free_ports 2)"
	bg "$d/etcd.log" etcd --name "$PREFIX" --data-dir "$d/etcd-data" \
		--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "$PREFIX=http://127.0.0.1:$pport"
	ETCD_PID=$LAST_PID
	ETCD_URL=http://127.0.0.1:$cport
	wait_for 20 etcd curl -sf -X POST -d '{}' "$ETCD_URL/v3/maintenance/status"
}

# start_apiserver DIR PORT [FLAGS...]: sets API_PID.
start_apiserver() {
	local d=$1 port=$2
	shift 2
	mkdir -p "$d/api"
	bg "$d/apiserver.log" "$BIN/rota-apiserver" --data-dir "$d/api" --secure-port "$port" \
		--kubeconfig-out "$d/api/kubeconfig" "$@"
	API_PID=$LAST_PID
	wait_for 30 "rota-apiserver on port $port" bash -c "[[ \$(curl -sk --max-time 1 https://127.0.0.1:$port/readyz) == ok ]]"
}

stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget "$1"
}

# bench_store STORE: load and watch on a fresh API server of that store;
# leaves it running (API_PID, API_URL, API_DIR) for rotad.
bench_store() {
	local store=$1 d=$TMP/$1 port flags=()
	mkdir -p "$d"
	if [[ $store == etcd ]]; then
		start_etcd "$d"
		flags=(--etcd-servers "$ETCD_URL" --etcd-prefix "/$PREFIX")
	fi
	port=$(free_ports 1)
	start_apiserver "$d" "$port" "${flags[@]}"
	API_URL=https://127.0.0.1:$port
	API_DIR=$d/api
	log "$store: rota-apiserver on $API_URL (pid $API_PID); loading $SERVICES Services and EndpointSlices × $ENDPOINTS endpoints, $CLIENTS clients"
	"$PY" "$HERE/load.py" "$API_URL" "$API_DIR" --namespace || die "$store: could not create the namespace"
	"$PY" "$HERE/watch.py" "$API_URL" "$API_DIR" "$SERVICES" "$d/watch.ready" --timeout 900 \
		>"$d/watch.json" 2>"$d/watch.log" &
	local watch_pid=$!
	PIDS+=("$watch_pid")
	wait_for 30 "the watcher" test -e "$d/watch.ready"
	local api_cpu0 etcd_cpu0=0 etcd_cpu1=0
	api_cpu0=$(cpu_of "$API_PID")
	if [[ $store == etcd ]]; then etcd_cpu0=$(cpu_of "$ETCD_PID"); fi
	run_py "$d/load.json" "$d/load.log" "$HERE/load.py" "$API_URL" "$API_DIR" \
		--services "$SERVICES" --endpoints "$ENDPOINTS" --clients "$CLIENTS"
	wait "$watch_pid" || { forget "$watch_pid"; cat "$d/watch.log" >&2; die "$store: the watcher failed"; }
	forget "$watch_pid"
	mem_of "$API_PID" "$d/apiserver-mem-load.txt"
	if [[ $store == etcd ]]; then etcd_cpu1=$(cpu_of "$ETCD_PID"); fi
	awk -v a0="$api_cpu0" -v a1="$(cpu_of "$API_PID")" -v e0="$etcd_cpu0" -v e1="$etcd_cpu1" \
		'BEGIN { printf "{\"apiserver\": %.2f, \"etcd\": %.2f}\n", a1 - a0, e1 - e0 }' >"$d/cpu.json"
	log "$store: loaded; $("$PY" "$HERE/report.py" --brief-load "$d")"
}

# ---------------------------------------------------------------- rotad

bench_rotad() {
	local algo=$1 d=$TMP/$ROTAD_STORE healthz metrics
	read -r healthz metrics <<<"$(free_ports 2)"
	log "rotad ($algo): full sync from an empty $BPFFS, then $CHANGES single-endpoint changes"
	run_py "$TMP/rotad-$algo.json" "$TMP/rotad-$algo.err" "$HERE/rotad_bench.py" "$API_URL" "$API_DIR" "$d/load.json" \
		--rotad "$BIN/rotad" --kubeconfig "$API_DIR/kubeconfig" --bpffs-dir "$BPFFS" \
		--healthz-bind "127.0.0.1:$healthz" --metrics-bind "127.0.0.1:$metrics" \
		--pid-file "$TMP/rotad-$algo.pid" --log "$TMP/rotad-$algo.log" --lb-algorithm "$algo" \
		--endpoints "$ENDPOINTS" --changes "$CHANGES"
	# Cross-check with the CLI, off the clock: every frontend is in the maps.
	local n
	n=$("$BIN/rota" --bpffs-dir "$BPFFS" service list -o json | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin) or []))')
	echo "$n" >"$TMP/rotad-$algo.cli-count"
	log "rotad ($algo): $("$PY" "$HERE/report.py" --brief-rotad "$TMP/rotad-$algo.json"); rota service list: $n frontends"
	"$BIN/rota" --bpffs-dir "$BPFFS" unload >/dev/null
	rm -rf "$BPFFS"
}

# ---------------------------------------------------------------- main

ROTAD_STORE=${STORES%% *}
start=$EPOCHREALTIME
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for store in $STORES; do
	bench_store "$store"
	if [[ $store == "$ROTAD_STORE" ]]; then
		for algo in $ALGOS; do bench_rotad "$algo"; done
	fi
	mem_of "$API_PID" "$TMP/$store/apiserver-mem-end.txt"
	stop_pid "$API_PID"
	if [[ $store == etcd ]]; then stop_pid "$ETCD_PID"; fi
done
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$OUT"
"$PY" "$HERE/report.py" --dir "$TMP" --stores "$STORES" --algorithms "$ALGOS" --rotad-store "$ROTAD_STORE" \
	--services "$SERVICES" --endpoints "$ENDPOINTS" --clients "$CLIENTS" --changes "$CHANGES" \
	--seconds "$secs" --load "$load_before / $load_after" \
	--command "tests/bench/control_plane/run.sh${ARGS:+ $ARGS}" \
	--md "$OUT/control-plane.md" --csv "$OUT/control-plane.csv"
echo
echo "wrote $OUT/control-plane.md and $OUT/control-plane.csv (${secs} s)"
