#!/usr/bin/env bash
# `make demo` as a test. scripts/demo.sh is run twice, non-interactively:
#   1. interrupted with Ctrl-C (SIGINT to its process group) during setup:
#      exits 130 and leaves nothing behind;
#   2. to the end: exits 0, every step ✓, no colour codes when stdout is
#      not a terminal, and leaves nothing behind.
# "Nothing behind": no network namespace, bpffs directory, cgroup, temp dir
# or process carrying that run's name prefix (rota-demo-<pid>).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

if ((EUID != 0)); then
	echo "the demo needs root"
	exit 77
fi
for b in rota rotad rota-apiserver rota-controller rota-cni; do
	if [[ ! -x build/bin/$b ]]; then
		echo "FAIL: build/bin/$b is not built (make)"
		exit 1
	fi
done

PASSED=0
FAILED=0
pass() {
	PASSED=$((PASSED + 1))
	echo "PASS: $*"
}
fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL: $*"
}
LOGS=$(mktemp -d /tmp/rota-demo-test.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

# leftovers PID: one line per thing the demo run PID left behind.
leftovers() {
	local pfx=rota-demo-$1 d
	ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^$pfx-" | sed 's/^/netns /'
	for d in /sys/fs/bpf/"$pfx"-* /sys/fs/cgroup/unified/"$pfx"-* /sys/fs/cgroup/"$pfx"-* /tmp/"$pfx".*; do
		[[ -e $d ]] && echo "path $d"
	done
	pgrep -af -- "${pfx}[-.]" | sed 's/^/process /'
	true
}
check_clean() {
	local what=$1 pid=$2 left
	left=$(leftovers "$pid")
	if [[ -z $left ]]; then
		pass "$what left nothing behind"
	else
		fail "$what left behind:"
		local d
		while read -r d; do echo "    $d"; done <<<"$left"
	fi
}

# ---------------------------------------------------------------- 1. Ctrl-C during setup

set -m # the demo gets its own process group, as a terminal's foreground job would
scripts/demo.sh >"$LOGS/int.log" 2>&1 </dev/null &
pid=$!
set +m
for _ in $(seq 300); do
	grep -q 'rotad on node-2' "$LOGS/int.log" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
sleep 1 # mid-way through creating pods
kill -INT -- "-$pid"
wait "$pid"
rc=$?
if ((rc == 130)); then
	pass "Ctrl-C during setup: the demo stops with exit 130 (output ended: $(grep -v '^$' "$LOGS/int.log" | tail -n 3 | tr '\n' '|'))"
else
	fail "Ctrl-C during setup: exit $rc, expected 130"
	tail -n 20 "$LOGS/int.log"
fi
check_clean "the interrupted run" "$pid"

# ---------------------------------------------------------------- 2. a full run

start=$EPOCHREALTIME
scripts/demo.sh >"$LOGS/full.log" 2>&1 </dev/null &
pid=$!
wait "$pid"
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
echo "--- demo output (exit $rc, ${secs} s)"
cat "$LOGS/full.log"
echo "---"
if ((rc == 0)); then
	pass "a full run after the interrupted one exits 0 (${secs} s)"
else
	fail "the full run exited $rc"
fi
if grep -q '^all 6 steps passed' "$LOGS/full.log" && ((\
	$(sed -n '/== Summary ==/,$p' "$LOGS/full.log" | grep -c '^  ✓') == 6)); then
	pass "the summary shows 6 steps, all ✓"
else
	fail "the summary does not show 6 ✓ steps"
fi
if grep -q $'\e\[' "$LOGS/full.log"; then
	fail "colour codes in the output although stdout is not a terminal"
else
	pass "no colour codes when stdout is not a terminal"
fi
check_clean "the full run" "$pid"

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
