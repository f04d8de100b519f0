# shellcheck shell=bash
# Shared by scripts/demo.sh: output (headings, ✓/✗, colours only on a tty),
# a per-run name prefix, and the cleanup trap that removes every process,
# network namespace, pinned bpffs directory, cgroup and temp dir the run
# made, also on failure, Ctrl-C or SIGTERM.
set -uo pipefail

DEMO_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$DEMO_LIB_DIR/../.." && pwd)
BIN_DIR=${ROTA_BIN_DIR:-$ROOT_DIR/build/bin}
ROTA_BIN=$BIN_DIR/rota
ROTAD_BIN=$BIN_DIR/rotad
APISERVER_BIN=$BIN_DIR/rota-apiserver
CONTROLLER_BIN=$BIN_DIR/rota-controller
CNI_BIN=$BIN_DIR/rota-cni
PY=/usr/bin/python3

# Every name this run creates starts with $DEMO_PREFIX (netns, bpffs dirs,
# cgroups, temp dir), so leftovers are easy to spot: `ip netns | grep rota-demo`.
DEMO_PREFIX="rota-demo-$$"
DEMO_TMP=$(mktemp -d "/tmp/$DEMO_PREFIX.XXXXXX")
DEMO_START=$EPOCHREALTIME

DEMO_PIDS=()		# background processes we started (apiserver, rotads, loops)
DEMO_NETNS=()		# namespaces, removed in reverse order
DEMO_BPFFS=()		# bpffs directories (rota unload)
DEMO_CGROUPS=()		# cgroups, removed in reverse order (children first)
DEMO_CLEANUP_HOOKS=()	# functions run by the cleanup once the pods' processes are dead

# ---------------------------------------------------------------- output

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
	C_B=$'\e[1m' C_DIM=$'\e[2m' C_G=$'\e[32m' C_R=$'\e[31m' C_Y=$'\e[33m' C_C=$'\e[36m' C_0=$'\e[0m'
else
	C_B="" C_DIM="" C_G="" C_R="" C_Y="" C_C="" C_0=""
fi
OK_MARK="${C_G}✓${C_0}"
BAD_MARK="${C_R}✗${C_0}"

# Seconds since the start, one decimal.
elapsed() { awk -v a="$DEMO_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

heading() { printf '\n%s== %s ==%s\n' "$C_B$C_C" "$*" "$C_0"; }
say() { printf '%s\n' "$*"; }
note() { printf '%s%s%s\n' "$C_DIM" "$*" "$C_0"; }
# cmd_echo CMD...: shows a command the way a user would type it.
cmd_echo() { printf '%s$ %s%s\n' "$C_Y" "$*" "$C_0"; }
indent() { sed 's/^/    /'; }
die() {
	printf '%sdemo: %s%s\n' "$C_R" "$*" "$C_0" >&2
	exit 1
}

# Step results for the summary: name, ✓/✗ and a figure.
STEP_NAMES=()
STEP_OK=()
STEP_FIG=()
result() {
	local name=$1 ok=$2 fig=$3
	STEP_NAMES+=("$name")
	STEP_OK+=("$ok")
	STEP_FIG+=("$fig")
	if ((ok)); then
		printf '%s %s%s%s: %s\n' "$OK_MARK" "$C_B" "$name" "$C_0" "$fig"
	else
		printf '%s %s%s%s: %s\n' "$BAD_MARK" "$C_B" "$name" "$C_0" "$fig"
	fi
}

# ---------------------------------------------------------------- cleanup

demo_cleanup() {
	local rc=$?
	# No second Ctrl-C half-way through: the cleanup is bounded (a few s).
	trap '' INT TERM
	trap - EXIT
	set +e
	local p ns d cg i
	printf '\n%scleaning up…%s\n' "$C_DIM" "$C_0"
	# Processes in our pod cgroups (httpd, client loops), then ours by PID.
	for ((i = ${#DEMO_CGROUPS[@]} - 1; i >= 0; i--)); do
		cg=${DEMO_CGROUPS[i]}
		[[ -e $cg/cgroup.kill ]] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
		if [[ -f $cg/cgroup.procs ]]; then
			while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$cg/cgroup.procs"
		fi
	done
	# e.g. rota-cni DEL of every pod still attached (needs the netns and bpffs dirs)
	for p in "${DEMO_CLEANUP_HOOKS[@]}"; do "$p"; done
	for p in "${DEMO_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ns in "${DEMO_NETNS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for p in "${DEMO_PIDS[@]}"; do
		for i in $(seq 30); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# Pinned links go with the directory: that detaches tc and cgroup programs.
	for d in "${DEMO_BPFFS[@]}"; do
		[[ -e $d ]] || continue
		"$ROTA_BIN" --bpffs-dir "$d" unload >/dev/null 2>&1
		[[ -e $d ]] && rm -rf "$d"
	done
	for ((i = ${#DEMO_NETNS[@]} - 1; i >= 0; i--)); do
		ip netns del "${DEMO_NETNS[i]}" 2>/dev/null
	done
	for ((i = ${#DEMO_CGROUPS[@]} - 1; i >= 0; i--)); do
		cg=${DEMO_CGROUPS[i]}
		for p in $(seq 50); do
			[[ -d $cg ]] || break
			rmdir "$cg" 2>/dev/null && break
			sleep 0.1
		done
		[[ -d $cg ]] && echo "cleanup: could not remove cgroup $cg" >&2
	done
	rm -rf "$DEMO_TMP"
	exit "$rc"
}
trap demo_cleanup EXIT
trap 'echo; echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# ---------------------------------------------------------------- prerequisites

demo_require() {
	local t
	((EUID == 0)) || die "the demo needs root (network namespaces, BPF, cgroups)"
	for t in "$ROTA_BIN" "$ROTAD_BIN" "$APISERVER_BIN" "$CONTROLLER_BIN" "$CNI_BIN"; do
		[[ -x $t ]] || die "$t is not built: run 'make'"
	done
	for t in ip nsenter curl busybox bpftool kubectl "$PY"; do
		command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
	done
	[[ $(stat -fc %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || die "/sys/fs/bpf is not a bpf filesystem"
	CG_BASE=/sys/fs/cgroup/unified
	[[ $(stat -fc %T $CG_BASE 2>/dev/null) == cgroup2fs ]] || CG_BASE=/sys/fs/cgroup
	[[ $(stat -fc %T $CG_BASE 2>/dev/null) == cgroup2fs ]] ||
		die "no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup"
}

# A free TCP port on loopback.
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for SECONDS CMD...: until CMD succeeds (every 50 ms); 1 on timeout.
wait_for() {
	local deadline=$(($(date +%s%N) / 1000000 + $1 * 1000))
	shift
	until "$@"; do
		(($(date +%s%N) / 1000000 > deadline)) && return 1
		sleep 0.05
	done
}

# demo_reap_stale: removes what an earlier run killed with SIGKILL (which no
# trap sees) left behind: its processes, namespaces, bpffs directories,
# cgroups and temp dir. Only names rota-demo-<pid>… whose run <pid> is gone.
demo_reap_stale() {
	local items=() it pid pids=() p cg d
	mapfile -t items < <(
		ip netns list 2>/dev/null | awk '{ print $1 }'
		ls -d /sys/fs/bpf/rota-demo-* "$CG_BASE"/rota-demo-* /tmp/rota-demo-[0-9]*.* 2>/dev/null
	)
	for it in "${items[@]}"; do
		[[ $it =~ rota-demo-([0-9]+)[-.] ]] || continue
		pid=${BASH_REMATCH[1]}
		((pid == $$)) && continue
		grep -qs 'demo\.sh' "/proc/$pid/cmdline" && continue
		[[ " ${pids[*]} " == *" $pid "* ]] || pids+=("$pid")
	done
	((${#pids[@]})) || return 0
	note "removing what earlier demo runs (pid ${pids[*]}) left behind"
	for pid in "${pids[@]}"; do
		for p in $(pgrep -f -- "rota-demo-${pid}[-.]"); do kill -KILL "$p" 2>/dev/null; done
		for cg in "$CG_BASE"/rota-demo-"$pid"-*/* "$CG_BASE"/rota-demo-"$pid"-*; do
			[[ -e $cg/cgroup.kill ]] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
		done
		while read -r it; do
			[[ $it == rota-demo-$pid-* ]] || continue
			for p in $(ip netns pids "$it" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
			ip netns del "$it" 2>/dev/null
		done < <(ip netns list 2>/dev/null | awk '{ print $1 }')
		for d in /sys/fs/bpf/rota-demo-"$pid"-*; do
			[[ -e $d ]] || continue
			"$ROTA_BIN" --bpffs-dir "$d" unload >/dev/null 2>&1
			[[ -e $d ]] && rm -rf "$d"
		done
		sleep 0.2
		for cg in "$CG_BASE"/rota-demo-"$pid"-*/* "$CG_BASE"/rota-demo-"$pid"-*; do
			[[ -d $cg ]] && rmdir "$cg" 2>/dev/null
		done
		rm -rf /tmp/rota-demo-"$pid".*
	done
}
