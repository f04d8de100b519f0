# shellcheck shell=bash
# Shared by tests/cni/*_test.sh and bench_add.sh: a unique prefix, a "node"
# network namespace the plugins run in (so nothing touches the root netns),
# rota's datapath loaded into a bpffs directory of our own, a CNI_PATH with
# rota-cni and Debian's reference plugins, a state/cache directory, and a
# trap that removes every namespace, pinned directory, state directory and
# process the run made, also on failure or Ctrl-C.
set -uo pipefail

CNI_TDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$CNI_TDIR/../.." && pwd)
ROTA_BIN=${ROTA_BIN:-$ROOT_DIR/build/bin/rota}
ROTA_CNI=${ROTA_CNI:-$ROOT_DIR/build/bin/rota-cni}
PY=/usr/bin/python3
RUNNER=$CNI_TDIR/cnirun.py
REF_PLUGINS=/usr/lib/cni

T_ID="$$x$(printf %04x $((RANDOM)))"
# A test may pick its own name prefix (T_NAME_PREFIX=... before sourcing).
T_PREFIX="${T_NAME_PREFIX:-rcni}-$T_ID"
BPFFS=/sys/fs/bpf/$T_PREFIX
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
STATE=$TMP/state		# dataDir of the network configs
CACHE=$TMP/cache		# the runner's result cache (libcni's /var/lib/cni)
PLUGDIR=$TMP/bin		# rota-cni; CNI_PATH=$PLUGDIR:/usr/lib/cni
CNI_PATH_T=$PLUGDIR:$REF_PLUGINS
NS_NODE=$T_PREFIX-node
# Pod CIDR unique enough per run: 10.<100..199>.<0..255>.0/24
POD_NET="10.$((100 + RANDOM % 100)).$((RANDOM % 256))"
POD_CIDR=$POD_NET.0/24

T_NETNS=()
T_PIDS=()
T_CLEANUP_HOOKS=()	# functions run first on exit (a test's own teardown)
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
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}
# skip REASON: exit 77, or fail when CI=true (CI's machine has everything).
skip() {
	echo "SKIP: $*"
	[[ ${CI:-} == true ]] && exit 1
	exit 77
}
finish() {
	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0)) && exit 0
	exit 1
}

cleanup() {
	local rc=$? p ns
	trap - EXIT INT TERM
	set +e
	for p in "${T_CLEANUP_HOOKS[@]}"; do "$p"; done
	for p in "${T_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ns in "${T_NETNS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for p in "${T_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	# iptables rules portmap made live in the node netns: they go with it.
	for ns in "${T_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [[ -e $BPFFS ]]; then
		"$ROTA_BIN" --bpffs-dir "$BPFFS" unload >/dev/null 2>&1
		[[ -e $BPFFS ]] && rm -rf "$BPFFS"
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

require_env() {
	local t
	((EUID == 0)) || die "cni tests need root"
	[[ -x $ROTA_BIN ]] || die "$ROTA_BIN not built: run 'make'"
	[[ -x $ROTA_CNI ]] || die "$ROTA_CNI not built: run 'make'"
	for t in ip nsenter curl busybox bpftool "$PY"; do
		command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs the test dependencies)"
	done
	[[ $(stat -fc %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || die "/sys/fs/bpf is not a bpf filesystem"
}

# shellcheck source=../lib/netns.sh
source "$CNI_TDIR/../lib/netns.sh"	# in_ns, netns_new
bg_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@" >>"$TMP/bg.log" 2>&1 &
	T_PIDS+=($!)
}

new_netns() { netns_new "$1" T_NETNS; }

# setup_node: the node netns (a router with no default route: pod traffic
# that is not for a pod dies there), rota loaded, the plugin directory.
setup_node() {
	new_netns "$NS_NODE"
	in_ns "$NS_NODE" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 || die "sysctl in node"
	"$ROTA_BIN" --bpffs-dir "$BPFFS" load >"$TMP/load.log" 2>&1 || {
		cat "$TMP/load.log" >&2
		die "rota load failed"
	}
	mkdir -p "$PLUGDIR" "$STATE" "$CACHE"
	ln -s "$ROTA_CNI" "$PLUGDIR/rota-cni"
}

# write_conflist FILE NAME [IPAM_JSON [EXTRA_PLUGINS_JSON]]: a conflist with
# rota-cni first (built-in IPAM over POD_CIDR unless IPAM_JSON).
write_conflist() {
	local file=$1 name=$2 ipam=${3:-} extra=${4:-}
	[[ -n $ipam ]] || ipam="{\"type\": \"rota-ipam\", \"subnet\": \"$POD_CIDR\"}"
	cat >"$file" <<-JSON
	{
	  "cniVersion": "1.0.0",
	  "cniVersions": ["1.0.0", "1.1.0"],
	  "name": "$name",
	  "plugins": [
	    {
	      "type": "rota-cni",
	      "bpffsDir": "$BPFFS",
	      "dataDir": "$STATE",
	      "mtu": 1400,
	      "logFile": "$TMP/rota-cni.log",
	      "ipam": $ipam
	    }${extra:+,$extra}
	  ]
	}
	JSON
}

# cni CMD CONFLIST ARGS...: the libcni-like runner, in the node netns.
cni() {
	local cmd=$1 conf=$2
	shift 2
	in_ns "$NS_NODE" "$PY" "$RUNNER" --cache "$CACHE" --cni-path "$CNI_PATH_T" "${CNI_RUNNER_OPTS[@]}" \
		"$cmd" "$conf" "$@"
}
CNI_RUNNER_OPTS=()

# plugin CMD CONF_JSON [ENV=VALUE...]: rota-cni called directly, the config
# on stdin, in the node netns; output on stdout, exit status as the plugin's.
plugin() {
	local cmd=$1 conf=$2
	shift 2
	in_ns "$NS_NODE" env -i PATH="$PATH" CNI_COMMAND="$cmd" CNI_PATH="$CNI_PATH_T" "$@" "$ROTA_CNI" <<<"$conf"
}

# pyjq EXPR: Python expression over the JSON on stdin (d), printed.
pyjq() {
	"$PY" -c 'import json,sys
d=json.load(sys.stdin)
r=eval(sys.argv[1])
print(json.dumps(r) if not isinstance(r, str) else r)' "$1"
}

# pod_ip RESULT_JSON: the address (without /32) of the result's first IP.
pod_ip() { pyjq 'd["ips"][0]["address"].split("/")[0]' <<<"$1"; }

# links_of_run: host-side veths in the node netns.
host_veths() { ip -n "$NS_NODE" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^rota' || true; }
# not CMD...: succeeds when CMD fails (for check).
not() { ! "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
