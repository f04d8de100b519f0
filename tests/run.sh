#!/usr/bin/env bash
# Runs every test rota has: the cmocka/C binaries in build/tests/ and every
# tests/*/*_test.sh (and one folder deeper), run with bash whatever their
# mode, so a test never drops out unseen. A test passes with exit 0; exit 77 means
# "could not run here", which counts as a failure under CI=true.
# Usage: tests/run.sh [PATTERN]   (only tests whose name contains PATTERN)
set -uo pipefail
cd "$(dirname "$0")/.."

pattern=${1:-}
logdir=build/test-logs
mkdir -p "$logdir"
passed=0 failed=0 skipped=0
failures=()

run_one() {
	local name=$1; shift
	local log="$logdir/${name//\//_}.log" start rc
	[[ -n $pattern && $name != *"$pattern"* ]] && return
	start=$EPOCHREALTIME
	timeout --kill-after=10 600 "$@" >"$log" 2>&1
	rc=$?
	local secs
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	if ((rc == 0)); then
		passed=$((passed + 1))
		printf 'PASS  %-40s %6ss\n' "$name" "$secs"
	elif ((rc == 77)) && [[ ${CI:-} != true ]]; then
		skipped=$((skipped + 1))
		printf 'SKIP  %-40s (%s)\n' "$name" "$(tail -n1 "$log")"
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL  %-40s %6ss (exit %d, log %s)\n' "$name" "$secs" "$rc" "$log"
		tail -n 25 "$log" | sed 's/^/      /'
	fi
}

for t in build/tests/*; do
	[[ -x $t && -f $t ]] && run_one "$(basename "$t")" "$t"
done
for t in tests/*/*_test.sh tests/*/*/*_test.sh; do
	[[ -f $t ]] && run_one "${t#tests/}" bash "$t"
done

((${#failures[@]})) && echo "failed: ${failures[*]}"
if ((skipped)); then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
((failed == 0))
