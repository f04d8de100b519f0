#!/usr/bin/env bash
# rota-apiserver against the requests an attacker sends (each a defect
# found by a probe, kept as a regression test): concurrent DELETEs of one
# object, JSON-patch index overflow and copy bombs, deep YAML, duplicate
# keys, NUL and invalid UTF-8, slowloris connections, unauthenticated
# clients, and writes past the in-flight cap. The cases are in hostile.py.
source "$(dirname "$0")/lib.sh"
need "$APISERVER" curl
H=$(dirname "$0")/hostile.py

new_tmpdir
D=$TMPD
PORT=$(free_port)
start_apiserver "$D" "$PORT"
PID=$LAST_PID
hostile() { timeout 120 $PY "$H" "$1" "$PORT" "$D" "$PID"; }
check "4 concurrent DELETEs of one object, 40 rounds: one 200, three 404 (was a double free)" hostile concurrent_delete
check "JSON-patch index >= 2^31: 422 at once (was a thread spinning for ever)" hostile patch_index
check "JSON-patch copy bomb: 413, object unchanged (was 3 GB); patches growing an object past the limit: 413" hostile copy_bomb
check "YAML nested 40k deep: 400 at level 64 (was parsed whole, quadratic)" hostile yaml_deep
check "duplicate keys, NUL in body/path/query refused; invalid UTF-8 stored as U+FFFD" hostile bad_strings
check "401 closes the connection" hostile unauth_closes
check "the server is still the one started (no crash)" kill -0 "$PID"
stop_pid "$PID"

# small caps so that the attack fits in a test
start_apiserver "$D" "$PORT" --max-connections 400 --max-connections-per-client 40 \
	--request-header-timeout 3 --max-mutating-requests-inflight 1
PID=$LAST_PID
check "slowloris from one address: capped per address, cut at the header deadline" \
	timeout 60 $PY "$H" slowloris "$PORT" "$D" 40 3
check "... and the server logs what it cut" grep -q 'sent no complete request headers in time' "$D/apiserver.log"
check "writes past --max-mutating-requests-inflight: 429 with Retry-After" \
	timeout 60 $PY "$H" inflight "$PORT" "$D"
check "bad limit flags are refused, naming the flag" expect_err 'max-connections-per-client 0: want a number' \
	"$APISERVER" --data-dir "$D" --max-connections-per-client 0
stop_pid "$PID"
finish
