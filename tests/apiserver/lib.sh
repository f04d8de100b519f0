# Helpers for the rota-apiserver tests: start servers on free ports in temp
# dirs, wait for /readyz, record checks, clean up every process and dir.
# Sourced by tests/apiserver/*_test.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
APISERVER=${APISERVER:-$ROOT/build/bin/rota-apiserver}
PY=/usr/bin/python3
T_PASS=0
T_FAIL=0
T_PIDS=()
T_DIRS=()

need() {
	local what
	for what in "$@"; do
		if ! command -v "$what" >/dev/null 2>&1 && [[ ! -x $what ]]; then
			echo "FAIL: $what is missing (make build/bin/rota-apiserver; scripts/deps.sh)" >&2
			exit 1
		fi
	done
}

cleanup() {
	local p
	for p in "${T_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${T_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	for p in "${T_DIRS[@]}"; do
		rm -rf "$p"
	done
}
trap cleanup EXIT

# new_tmpdir: a temp dir removed at exit, in $TMPD (not a subshell, so
# the cleanup list sees it).
new_tmpdir() {
	TMPD=$(mktemp -d /tmp/rota-apiserver-test.XXXXXX)
	T_DIRS+=("$TMPD")
}

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_etcd: a real etcd on loopback in a temp dir; sets ETCD_URL.
start_etcd() {
	local d cport pport i
	need etcd
	new_tmpdir
	d=$TMPD
	cport=$(free_port)
	pport=$(free_port)
	etcd --name t --data-dir "$d/data" \
		--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "t=http://127.0.0.1:$pport" >"$d/etcd.log" 2>&1 &
	T_PIDS+=("$!")
	ETCD_URL=http://127.0.0.1:$cport
	for i in $(seq 1 100); do
		curl -sf -X POST -d '{}' "$ETCD_URL/v3/maintenance/status" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "etcd did not start; log:" >&2
	cat "$d/etcd.log" >&2
	return 1
}

# ROTA_STORE=etcd runs a test against a real etcd instead of sqlite.
STORE_FLAGS=()
if [[ ${ROTA_STORE:-sqlite} == etcd ]]; then
	start_etcd
	ETCD_PREFIX=/t$$
	STORE_FLAGS=(--etcd-servers "$ETCD_URL" --etcd-prefix "$ETCD_PREFIX")
fi
echo "store: ${ROTA_STORE:-sqlite}"

# start_apiserver DIR PORT [flags...]: runs in the background, sets LAST_PID.
start_apiserver() {
	local dir=$1 port=$2
	shift 2
	"$APISERVER" --data-dir "$dir" --secure-port "$port" --kubeconfig-out "$dir/kubeconfig" \
		"${STORE_FLAGS[@]}" "$@" >>"$dir/apiserver.log" 2>&1 &
	LAST_PID=$!
	T_PIDS+=("$LAST_PID")
	wait_ready "$port" "$LAST_PID" "$dir"
}

wait_ready() {
	local port=$1 pid=$2 dir=$3 i
	for i in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "rota-apiserver exited; log:" >&2
			cat "$dir/apiserver.log" >&2
			return 1
		fi
		if curl -sk --max-time 1 "https://127.0.0.1:$port/readyz" 2>/dev/null | grep -qx ok ||
		   curl -s --max-time 1 "http://127.0.0.1:$port/readyz" 2>/dev/null | grep -qx ok; then
			return 0
		fi
		sleep 0.1
	done
	echo "rota-apiserver on port $port not ready after 10s; log:" >&2
	cat "$dir/apiserver.log" >&2
	return 1
}

stop_pid() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# check NAME CMD...: runs CMD, records pass/fail by exit status.
check() {
	local name=$1
	shift
	if "$@" >/tmp/rota-check.$$ 2>&1; then
		echo "PASS: $name"
		T_PASS=$((T_PASS + 1))
	else
		echo "FAIL: $name"
		sed 's/^/    /' /tmp/rota-check.$$ | tail -20
		T_FAIL=$((T_FAIL + 1))
	fi
	rm -f /tmp/rota-check.$$
}

# expect_fail_with NAME PATTERN CMD...: CMD must fail and print PATTERN.
expect_err() {
	local pattern=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "unexpected success: $out"
		return 1
	fi
	if ! grep -qE -- "$pattern" <<<"$out"; then
		echo "output does not match /$pattern/: $out"
		return 1
	fi
}

# expect_out PATTERN CMD...: CMD must succeed and print PATTERN.
expect_out() {
	local pattern=$1 out
	shift
	out=$("$@" 2>&1) || { echo "failed: $out"; return 1; }
	if ! grep -qE -- "$pattern" <<<"$out"; then
		echo "output does not match /$pattern/: $out"
		return 1
	fi
}

finish() {
	echo "$(basename "$0"): $T_PASS passed, $T_FAIL failed"
	[[ $T_FAIL -eq 0 ]]
}
