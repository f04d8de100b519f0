# shellcheck shell=bash
# Shared by tests/e2e/*_test.sh: a per-run unique prefix, a node/client/
# backend network-namespace topology, servers, rota in its own bpffs
# directory, a socket-LB cgroup, assertions, and a trap that removes every
# namespace, cgroup, pinned directory and process the run made, also on
# failure or Ctrl-C.
#
# Topology (all inside namespaces; nothing is routed to or from the root netns):
#
#   client netns (10.244.1.2/24) --eth0 == h-cli-- node netns (ip_forward=1)
#   backend i netns (10.244.1i.2/24) --eth0 == h-bi-- node netns   (i = 1..3)
#
# Pods route everything via the node side (.1). The node has no default
# route, so anything not translated dies there (unreachable), never leaves.
set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$E2E_DIR/../.." && pwd)
ROTA_BIN=${ROTA_BIN:-$ROOT_DIR/build/bin/rota}
PY=/usr/bin/python3
TOOL=$E2E_DIR/e2e_tool.py

# Unique per run: PID + random, so parallel runs and leftovers never collide.
E2E_ID="$$x$(printf %04x $((RANDOM)))"
E2E_PREFIX="rota-e2e-$E2E_ID"
BPFFS=/sys/fs/bpf/$E2E_PREFIX
CG=""			# socket-LB cgroup, set by make_cgroup
TMP=$(mktemp -d "/tmp/$E2E_PREFIX.XXXXXX")

NS_NODE=$E2E_PREFIX-node
NS_CLI=$E2E_PREFIX-cli
NS_B=("" "$E2E_PREFIX-b1" "$E2E_PREFIX-b2" "$E2E_PREFIX-b3")

CLI_ADDR=10.244.1.2
B_ADDR=("" 10.244.11.2 10.244.12.2 10.244.13.2)
# shellcheck disable=SC2034 # used by the test scripts
HAIRPIN_ADDR=169.254.42.1
HTTP_PORT=8080		# busybox httpd in each backend
UDP_PORT=5353		# UDP answerer in each backend
ECHO_PORT=7070		# TCP greeter/echo in each backend

E2E_NETNS=()		# every namespace we created
E2E_PIDS=()		# every background process we started
E2E_DIRS=()		# extra bpffs dirs to unload
BIG_SHA=""
PASSED=0
FAILED=0

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
die() {
	echo "ERROR: $*" >&2
	exit 1
}
pass() {
	PASSED=$((PASSED + 1))
	echo "PASS: $*"
}
fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL: $*"
}
# check DESCRIPTION COMMAND...: PASS/FAIL line from the command's status.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# Ends the script: summary line and exit status (the EXIT trap cleans up).
finish() {
	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0)) && exit 0
	exit 1
}

# ---------------------------------------------------------------- cleanup

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	# Processes first: ours by PID, then whatever still runs in our
	# namespaces or our cgroup (clients killed mid-way, children).
	local p ns
	for p in "${E2E_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ns in "${E2E_NETNS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	if [[ -n $CG && -f $CG/cgroup.procs ]]; then
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$CG/cgroup.procs"
	fi
	for p in "${E2E_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	# rota: unpinning the links detaches the programs; then maps go.
	local d
	for d in "$BPFFS" "${E2E_DIRS[@]}"; do
		[[ -n $d && -e $d ]] || continue
		"$ROTA_BIN" --bpffs-dir "$d" unload >/dev/null 2>&1
		[[ -e $d ]] && rm -rf "$d"
	done
	for ns in "${E2E_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [[ -n $CG && -d $CG ]]; then
		local i
		for i in $(seq 50); do
			rmdir "$CG" 2>/dev/null && break
			sleep 0.1
		done
		[[ -d $CG ]] && echo "cleanup: could not remove cgroup $CG" >&2
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# ---------------------------------------------------------------- prerequisites

require_env() {
	local t
	((EUID == 0)) || die "e2e tests need root"
	[[ -x $ROTA_BIN ]] || die "$ROTA_BIN not built: run 'make build/bin/rota'"
	for t in ip nsenter curl busybox bpftool ss "$PY"; do
		command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs the test dependencies)"
	done
	[[ $(stat -fc %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || die "/sys/fs/bpf is not a bpf filesystem"
}

# ---------------------------------------------------------------- running things

# in_ns NS CMD...: runs CMD in netns NS without remounting /sys (unlike
# `ip netns exec`), so /sys/fs/bpf and /sys/fs/cgroup stay visible.
# shellcheck source=../lib/netns.sh
source "$E2E_DIR/../lib/netns.sh"	# in_ns, netns_new

# in_cg NS CMD...: like in_ns, from a process first moved into the
# socket-LB cgroup.
in_cg() {
	local ns=$1
	shift
	[[ -n $CG ]] || die "in_cg before make_cgroup"
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	nsenter --net="/run/netns/$ns" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"
}

# bg_ns NS CMD...: starts CMD in NS in the background, remembered for cleanup.
bg_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@" >>"$TMP/bg.log" 2>&1 &
	E2E_PIDS+=($!)
}

# pyjq EXPR [NAME=VALUE]...: a Python expression over the JSON on stdin
# (see e2e_tool.py json); the tests need no jq.
pyjq() { "$PY" "$TOOL" json "$@"; }

# rota ARGS...: the CLI on this run's bpffs dir (from the root netns: only
# map work; attach veth must run in the node netns, see rota_node).
rota() { "$ROTA_BIN" --bpffs-dir "$BPFFS" "$@"; }
rota_node() { in_ns "$NS_NODE" "$ROTA_BIN" --bpffs-dir "$BPFFS" "$@"; }

# ---------------------------------------------------------------- topology

new_netns() { netns_new "$1" E2E_NETNS; }

# add_pod NS HOSTIF POD_ADDR: a veth pair, eth0 in NS, HOSTIF in the node;
# /24 with the node side as .1 and the default route.
add_pod() {
	local ns=$1 hostif=$2 addr=$3 gw=${3%.*}.1
	ip -n "$NS_NODE" link add "$hostif" type veth peer name eth0 netns "$ns" || die "veth $hostif"
	ip -n "$NS_NODE" addr add "$gw/24" dev "$hostif"
	ip -n "$NS_NODE" link set "$hostif" up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$gw" || die "default route in $ns"
}

setup_topology() {
	local i
	new_netns "$NS_NODE"
	in_ns "$NS_NODE" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 || die "sysctl in node"
	new_netns "$NS_CLI"
	add_pod "$NS_CLI" h-cli "$CLI_ADDR"
	for i in 1 2 3; do
		new_netns "${NS_B[i]}"
		add_pod "${NS_B[i]}" "h-b$i" "${B_ADDR[i]}"
	done
}

# wait_listen NS tcp|udp PORT: until something listens (5 s at most).
wait_listen() {
	local ns=$1 proto=$2 port=$3 flag i
	[[ $proto == tcp ]] && flag=-Hltn || flag=-Hlun
	for i in $(seq 100); do
		in_ns "$ns" ss "$flag" "sport = :$port" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	die "nothing listens on $proto/$port in $ns"
}

# start_backends: in backend i, "bi" served by busybox httpd (HTTP_PORT) as
# index.html (and a 3 MB big.bin, the same everywhere, sha256 in BIG_SHA),
# the UDP echo (UDP_PORT) and the TCP greeter/echo (ECHO_PORT).
start_backends() {
	local i
	head -c 3000000 /dev/urandom >"$TMP/big.bin"
	BIG_SHA=$(sha256sum <"$TMP/big.bin" | cut -d' ' -f1)
	for i in 1 2 3; do
		mkdir -p "$TMP/www$i"
		echo "b$i" >"$TMP/www$i/index.html"
		cp "$TMP/big.bin" "$TMP/www$i/big.bin"
		bg_ns "${NS_B[i]}" busybox httpd -f -p "$HTTP_PORT" -h "$TMP/www$i"
		bg_ns "${NS_B[i]}" "$PY" "$TOOL" udp-server "b$i" "$UDP_PORT"
		bg_ns "${NS_B[i]}" "$PY" "$TOOL" tcp-server "b$i" "$ECHO_PORT"
	done
	for i in 1 2 3; do
		wait_listen "${NS_B[i]}" tcp "$HTTP_PORT"
		wait_listen "${NS_B[i]}" udp "$UDP_PORT"
		wait_listen "${NS_B[i]}" tcp "$ECHO_PORT"
	done
}

# rota_load [LOAD OPTIONS]: rota load into this run's directory, or die.
# shellcheck disable=SC2120 # options are optional
rota_load() {
	rota load "$@" >"$TMP/load.log" 2>&1 || {
		cat "$TMP/load.log" >&2
		die "rota load failed"
	}
}

# attach_veths IFNAME...: the tc programs on those node-side veths.
attach_veths() {
	local ifc
	for ifc in "$@"; do
		rota_node attach veth "$ifc" || die "rota attach veth $ifc"
	done
}

# make_cgroup: a cgroup v2 directory of our own (never the root), with
# socket LB attached.
make_cgroup() {
	local base=/sys/fs/cgroup/unified
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || base=/sys/fs/cgroup
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || die "no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup"
	CG=$base/$E2E_PREFIX
	mkdir "$CG" || die "mkdir $CG"
	rota attach cgroup "$CG" || die "rota attach cgroup $CG"
}

# ---------------------------------------------------------------- clients

# curl_n N CMD...: runs CMD (a curl, prefixed by its runner) N times; one
# line each: the body, or "ERR <exit>".
curl_n() {
	local n=$1 i out rc
	shift
	for ((i = 0; i < n; i++)); do
		out=$("$@" 2>/dev/null)
		rc=$?
		if ((rc == 0)); then echo "$out"; else echo "ERR $rc"; fi
	done
}
# http_n N URL RUNNER...: curl_n with `curl -s --max-time 2 URL`.
http_n() {
	local n=$1 url=$2
	shift 2
	curl_n "$n" "$@" curl -s --max-time 2 "$url"
}

# first_words: the first word of every line, sorted, unique.
first_words() { awk '{print $1}' | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# assert_all_backends DESC OUTPUT: every line names a backend and all of
# b1 b2 b3 are present.
assert_all_backends() {
	local desc=$1 out=$2 seen
	seen=$(first_words <<<"$out")
	if [[ $seen == "b1 b2 b3" ]]; then
		pass "$desc (saw: $(summary <<<"$out"))"
	else
		fail "$desc (wanted b1 b2 b3, saw: $(summary <<<"$out"))"
	fi
}
# assert_one_backend DESC OUTPUT: every line names the same backend.
assert_one_backend() {
	local desc=$1 out=$2 seen
	seen=$(first_words <<<"$out")
	if [[ $seen =~ ^b[123]$ ]]; then
		pass "$desc (all $(wc -l <<<"$out") on $seen)"
	else
		fail "$desc (saw: $(summary <<<"$out"))"
	fi
}
# summary: "b1×10 b2×12 ..." from lines whose first word is the result.
summary() { awk '{print $1" "$2}' | sed -E 's/^(b[0-9]) .*/\1/' | sort | uniq -c | awk '{c=$1; $1=""; printf "%s%s×%d", sep, substr($0,2), c; sep=" "}'; }

# stat_packets JSON NAME: packets counter NAME from `rota stats -o json`.
stat_packets() { pyjq 'd[n]["packets"]' n="$2" <<<"$1"; }

# assert_stat_moved DESC BEFORE AFTER NAME...: each counter grew.
assert_stat_moved() {
	local desc=$1 before=$2 after=$3 name b a ok=1 detail=""
	shift 3
	for name in "$@"; do
		b=$(stat_packets "$before" "$name")
		a=$(stat_packets "$after" "$name")
		detail+="$name $b→$a "
		[[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] && ((a > b)) || ok=0
	done
	if ((ok)); then pass "$desc (${detail% })"; else fail "$desc (${detail% })"; fi
}

# ---------------------------------------------------------------- scenarios shared by both paths

# long_lived_test LABEL RUNNER_NS_ARGS VIP PORT CHANGE
#   Opens a long-lived TCP connection to VIP:PORT (through RUNNER), learns
#   its backend, then re-adds the service without it (CHANGE=delete), with
#   it terminating (CHANGE=terminate) or with no backend at all
#   (CHANGE=empty), keeping the service's extra flags (the remaining
#   arguments). Asserts that new connections never reach that backend (are
#   refused, for empty) and that the long-lived one works to its end.
# RUNNER is a function name (in_ns / in_cg) and NS its namespace.
long_lived_test() {
	local label=$1 runner=$2 ns=$3 vip=$4 port=$5 change=$6
	shift 6
	local flags=("$@") namefile=$TMP/long.$RANDOM pid victim i others=() out rc long_out
	rota service add "$vip:$port/TCP" "${B_ADDR[1]}:$ECHO_PORT" "${B_ADDR[2]}:$ECHO_PORT" \
		"${B_ADDR[3]}:$ECHO_PORT" "${flags[@]}" || {
		fail "$label: service add"
		return
	}
	"$runner" "$ns" "$PY" "$TOOL" long "$vip" "$port" 2 0.1 "$namefile" >"$namefile.out" 2>&1 &
	pid=$!
	E2E_PIDS+=("$pid")
	for i in $(seq 60); do
		[[ -s $namefile ]] && break
		sleep 0.05
	done
	victim=$(cat "$namefile" 2>/dev/null)
	if [[ ! $victim =~ ^b[123]$ ]]; then
		fail "$label: long-lived connection did not start ($(cat "$namefile.out"))"
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return
	fi
	for i in 1 2 3; do
		[[ b$i == "$victim" ]] && continue
		others+=("${B_ADDR[i]}:$ECHO_PORT")
	done
	if [[ $change == delete ]]; then
		rota service add "$vip:$port/TCP" "${others[@]}" "${flags[@]}"
	elif [[ $change == empty ]]; then
		rota service add "$vip:$port/TCP" "${flags[@]}"
	else
		rota service add "$vip:$port/TCP" "${others[@]}" "${flags[@]}" \
			--terminating "${B_ADDR[${victim#b}]}:$ECHO_PORT"
	fi || fail "$label: service update"
	# New connections right after the change: never the old backend.
	out=$("$runner" "$ns" "$PY" "$TOOL" who tcp "$vip" "$port" 20)
	if [[ $change == empty ]]; then
		if [[ $(sort -u <<<"$out") == "ERR ECONNREFUSED" && $(wc -l <<<"$out") -eq 20 ]]; then
			pass "$label: with no backends left, 20 new connections are refused"
		else
			fail "$label: with no backends left, new connections: $(summary <<<"$out")"
		fi
	elif ! grep -q "^$victim " <<<"$out" && ! grep -q '^ERR' <<<"$out" && [[ $(wc -l <<<"$out") -eq 20 ]]; then
		pass "$label: after ${change} of $victim, 20 new connections avoid it ($(summary <<<"$out"))"
	else
		fail "$label: after ${change} of $victim, new connections: $(summary <<<"$out")"
	fi
	wait "$pid"
	rc=$?
	long_out=$(cat "$namefile.out")
	if ((rc == 0)) && [[ $long_out == "ok "* ]]; then
		pass "$label: long-lived connection to $victim kept working (${long_out})"
	else
		fail "$label: long-lived connection to $victim broke (exit $rc: $long_out)"
	fi
}

# affinity_repick_test LABEL RUNNER NS VIP: an --affinity HTTP service on
# VIP:80; 10 curls pin one backend; that backend is removed; the next 10
# curls all go to one other backend (affinity moves, never to the gone one).
affinity_repick_test() {
	local label=$1 runner=$2 ns=$3 vip=$4 out first second i others=()
	rota service add "$vip:80/TCP" "${B_ADDR[1]}:$HTTP_PORT" "${B_ADDR[2]}:$HTTP_PORT" \
		"${B_ADDR[3]}:$HTTP_PORT" --affinity 60 || {
		fail "$label: service add"
		return
	}
	out=$(http_n 10 "http://$vip/" "$runner" "$ns")
	first=$(first_words <<<"$out")
	if [[ ! $first =~ ^b[123]$ ]]; then
		fail "$label: 10 curls did not stick to one backend ($(summary <<<"$out"))"
		return
	fi
	for i in 1 2 3; do [[ b$i == "$first" ]] || others+=("${B_ADDR[i]}:$HTTP_PORT"); done
	rota service add "$vip:80/TCP" "${others[@]}" --affinity 60 || fail "$label: service update"
	out=$(http_n 10 "http://$vip/" "$runner" "$ns")
	second=$(first_words <<<"$out")
	if [[ $second =~ ^b[123]$ && $second != "$first" ]]; then
		pass "$label: affinity moved from removed $first to $second for all 10 next curls"
	else
		fail "$label: after removing $first, 10 curls went to: $(summary <<<"$out")"
	fi
}

# big_download_test LABEL RUNNER NS URL: 3 downloads of the 3 MB file
# (many full-size and GSO segments through the datapath) arrive intact.
big_download_test() {
	local label=$1 runner=$2 ns=$3 url=$4 i sums=""
	for i in 1 2 3; do
		sums+="$("$runner" "$ns" curl -s --max-time 5 "$url" | sha256sum | cut -c1-64) "
	done
	if [[ $sums == "$BIG_SHA $BIG_SHA $BIG_SHA " ]]; then
		pass "$label: 3 downloads of a 3 MB file through the VIP arrive intact"
	else
		fail "$label: 3 MB downloads through the VIP corrupted or failed (sha256 want ${BIG_SHA:0:12}…, got: $(sed -E 's/([0-9a-f]{12})[0-9a-f]+/\1…/g' <<<"$sums"))"
	fi
}
