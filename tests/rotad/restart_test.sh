#!/usr/bin/env bash
# End-to-end: rotad dies and comes back, and finally removes everything.
#  - kill -9 while clients run (one request every 50 ms for 6 s on the tc
#    path and from the socket-LB cgroup) and long-lived TCP connections
#    exchange lines: no request fails, no connection breaks;
#  - while it is down a Service is added, one deleted and one rescaled; the
#    restarted agent adopts the maps ("adopted N services"), its first sync
#    writes exactly what differs, and what did not change keeps its ids;
#  - SIGTERM leaves the datapath serving;
#  - rotad --cleanup removes the bpffs directory, every link and program.
source "$(dirname "$0")/lib.sh"

require_rotad_env
setup_topology
add_socket_client
start_backends
make_plain_cgroup
start_apiserver
ROTAD_FLAGS=(--socket-lb on --lb-algorithm random)
start_rotad "${ROTAD_FLAGS[@]}"
wait_datapath
attach_veths h-cli h-cli2 h-b1 h-b2 h-b3
wait_synced || fail "rotad /healthz did not turn 200 after its first sync"

cli() { in_ns "$NS_CLI" "$@"; }
cg() { cg2 "$@"; }	# the socket-LB client pod
HP=$HTTP_PORT EP=$ECHO_PORT

log "setup: web (http+echo, 3 endpoints), keep (b1 b2), gone (b3)"
kapply service web http:80,echo:7000 || die "service web"
kapply service keep http:80 || die "service keep"
kapply service gone http:80 || die "service gone"
kapply slice web-1 web "http:$HP,echo:$EP" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" || die "slice web-1"
kapply slice keep-1 keep "http:$HP" "${B_ADDR[1]}" "${B_ADDR[2]}" || die "slice keep-1"
kapply slice gone-1 gone "http:$HP" "${B_ADDR[3]}" || die "slice gone-1"
WEB=$(vip_of web) KEEP=$(vip_of keep) GONE=$(vip_of gone)
wait_backends "web programmed" "$WEB:80/TCP" "$(be "1 2 3" $HP)"
wait_backends "web echo programmed" "$WEB:7000/TCP" "$(be "1 2 3" $EP)"
wait_backends "keep programmed" "$KEEP:80/TCP" "$(be "1 2" $HP)"
wait_backends "gone programmed" "$GONE:80/TCP" "$(be 3 $HP)"
n_before=$(n_frontends)
ids() { rota service list -o json | pyjq '{s["frontend"]: [s["id"], sorted(b["id"] for b in s["backends"])] for s in d if s["frontend"] in (a, b)}' a="$WEB:80/TCP" b="$WEB:7000/TCP"; }
ids_before=$(ids)

# ---- kill -9 under load
log "kill -9 of rotad while clients run"
cli "$PY" "$RTOOL" loop "$WEB" 80 6 0.05 >"$TMP/loop.tc" 2>&1 &
LOOP_TC=$!
cg "$PY" "$RTOOL" loop "$WEB" 80 6 0.05 >"$TMP/loop.sock" 2>&1 &
LOOP_SOCK=$!
cli "$PY" "$TOOL" long "$WEB" 7000 8 0.1 "$TMP/long.tc" >"$TMP/long.tc.out" 2>&1 &
LONG_TC=$!
cg "$PY" "$TOOL" long "$WEB" 7000 8 0.1 "$TMP/long.sock" >"$TMP/long.sock.out" 2>&1 &
LONG_SOCK=$!
E2E_PIDS+=("$LOOP_TC" "$LOOP_SOCK" "$LONG_TC" "$LONG_SOCK")
sleep 1
old_pid=$ROTAD_PID
stop_rotad KILL
check "rotad (pid $old_pid) is gone after kill -9" bash -c "! kill -0 $old_pid 2>/dev/null"
check "the pinned datapath outlives it ($BPFFS/progs, links)" test -e "$BPFFS/progs/rota_from_pod" -a -n "$(ls "$BPFFS/links")"
# While it is down: one Service added, one deleted, one rescaled.
kapply service added http:80 || fail "service added"
kapply slice added-1 added "http:$HP" "${B_ADDR[1]}" "${B_ADDR[3]}" || fail "slice added-1"
ADDED=$(vip_of added)
k delete svc gone >>"$TMP/kubectl.log" 2>&1 || fail "delete gone"
kapply slice keep-1 keep "http:$HP" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" || fail "rescale keep-1"
check "while rotad is down, nothing changes in the maps (added absent, gone present)" \
	[ "$(svc_state "$ADDED:80/TCP")" == absent -a "$(backends_of "$GONE:80/TCP")" == "$(be 3 $HP)" ]
sleep 0.5
mark=$(log_mark)
start_rotad "${ROTAD_FLAGS[@]}"
check "rotad restarted while the client loops still run" kill -0 "$LOOP_TC" "$LOOP_SOCK" "$LONG_TC" "$LONG_SOCK"
wait_until 10 grep -q "adopted" <(rotad_log_since "$mark")
adopt=$(rotad_log_since "$mark" | grep -o 'adopted [0-9]* services with [0-9]* backends' | head -1)
check "the restarted rotad adopts the $n_before services in the maps (log: ${adopt:-none})" \
	grep -q "^adopted $n_before services" <<<"$adopt"
check "it adopts the datapath rather than loading a new one" grep -q "adopting the datapath pinned in $BPFFS" <(rotad_log_since "$mark")
wait_backends "after the restart: the Service added while it was down is programmed" "$ADDED:80/TCP" "$(be "1 3" $HP)"
wait_until 10 svc_absent "$GONE:80/TCP"
check "after the restart: the Service deleted while it was down is gone" svc_absent "$GONE:80/TCP"
wait_backends "after the restart: the slice rescaled while it was down is applied" "$KEEP:80/TCP" "$(be "1 2 3" $HP)"
syncs=$(rotad_log_since "$mark" | grep '^rotad: sync:')
first=$(head -1 <<<"$syncs")
check "its first sync writes only what differs: 2 written (added, keep), 1 removed (gone) (log: $first)" \
	grep -q 'sync: 2 services written, 1 removed, 0 failed' <<<"$first"
check "no further sync rewrote anything (syncs after restart: $(wc -l <<<"$syncs"))" [ "$(wc -l <<<"$syncs")" -eq 1 ]
ids_after=$(ids)
check "web, unchanged, keeps its service and backend ids ($ids_after)" [ "$ids_before" == "$ids_after" ]
wait "$LOOP_TC"
rc=$?
check "tc: a request every 50 ms through kill -9 and restart: none failed ($(tail -1 "$TMP/loop.tc"))" \
	[ $rc -eq 0 ]
wait "$LOOP_SOCK"
rc=$?
check "socket LB: a request every 50 ms through kill -9 and restart: none failed ($(tail -1 "$TMP/loop.sock"))" \
	[ $rc -eq 0 ]
n_req=$(awk '/^requests/ {print $2}' "$TMP/loop.tc")
check "the client loop really ran (~120 requests: $n_req)" [ "${n_req:-0}" -ge 60 ]
wait "$LONG_TC"
rc=$?
lo=$(cat "$TMP/long.tc.out")
check "tc: a long-lived connection survives kill -9 and restart (exit $rc: $lo)" [ $rc -eq 0 -a "${lo%% *}" == ok ]
wait "$LONG_SOCK"
rc=$?
lo=$(cat "$TMP/long.sock.out")
check "socket LB: a long-lived connection survives kill -9 and restart (exit $rc: $lo)" [ $rc -eq 0 -a "${lo%% *}" == ok ]
out=$(get_n 20 "$ADDED" cli)
check "tc: the added Service answers from b1 and b3 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == "b1 b3" ]
out=$(get_n 20 "$ADDED" cg)
check "socket LB: the added Service answers from b1 and b3 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == "b1 b3" ]
cli curl -s --max-time 2 "http://$GONE/" >/dev/null 2>&1
rc=$?
check "tc: the deleted Service's VIP answers no more (curl exit $rc)" [ $rc -ne 0 ]
cg curl -s --max-time 2 "http://$GONE/" >/dev/null 2>&1
rc=$?
check "socket LB: the deleted Service's VIP answers no more (curl exit $rc)" [ $rc -ne 0 ]
wait_synced
check "/healthz is 200 after the restart" healthy
check "rota_services after the restart counts adopted + new ($(metric rota_services) vs maps $(n_frontends))" \
	[ "$(metric rota_services)" == "$(n_frontends)" ]

# A restart with nothing changed writes nothing at all.
stop_rotad KILL
mark=$(log_mark)
start_rotad "${ROTAD_FLAGS[@]}"
wait_synced
sleep 0.5
newlog=$(rotad_log_since "$mark")
check "a restart with nothing changed: no sync line (nothing written or removed): $(grep '^rotad: sync:' <<<"$newlog")" \
	[ -z "$(grep '^rotad: sync:' <<<"$newlog")" ]

# A restart with another --lb-algorithm rewrites every service, in place.
stop_rotad KILL
mark=$(log_mark)
n_all=$(n_frontends)
start_rotad --socket-lb on --lb-algorithm maglev
wait_synced
modes_are() { [[ $(rota service list -o json | pyjq '",".join(sorted({s["mode"] for s in d}))') == "$1" ]]; }
wait_until 10 modes_are maglev
first=$(rotad_log_since "$mark" | grep -m1 '^rotad: sync:')
check "restarted with --lb-algorithm maglev: every service now uses Maglev" modes_are maglev
check "... rewritten by one sync of all $n_all services, none removed (log: $first)" \
	grep -q "sync: $n_all services written, 0 removed, 0 failed" <<<"$first"
out=$(get_n 30 "$WEB" cli)
assert_all_backends "tc: web still reaches all 3 backends with Maglev" "$out"
ROTAD_FLAGS=(--socket-lb on --lb-algorithm maglev)

# ---- SIGTERM leaves the datapath serving
log "SIGTERM"
mark=$(log_mark)
stop_rotad TERM
check "SIGTERM: rotad says the datapath keeps serving" grep -q "the datapath keeps serving" <(rotad_log_since "$mark")
out=$(get_n 30 "$WEB" cli)
assert_all_backends "tc: with rotad stopped, web still answers from all backends" "$out"
out=$(get_n 20 "$WEB" cg)
check "socket LB: with rotad stopped, web still answers ($(summary <<<"$out"))" \
	[ -z "$(grep -v '^b[123]$' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 20 ]

# ---- rotad --cleanup
log "rotad --cleanup"
link_ids=() prog_ids=()
for f in "$BPFFS"/links/*; do
	link_ids+=("$(bpftool link show pinned "$f" -j | pyjq 'd["id"]')")
done
for f in "$BPFFS"/progs/*; do
	prog_ids+=("$(bpftool prog show pinned "$f" -j | pyjq 'd["id"]')")
done
check "before cleanup: links pinned (${#link_ids[@]}: 4 cgroup hooks + 2 per veth × 5)" [ "${#link_ids[@]}" -eq 14 ]
cg_before=$(bpftool cgroup show "$CG" 2>/dev/null | grep -c rota_)
"$ROTAD_BIN" --cleanup --bpffs-dir "$BPFFS" >"$TMP/cleanup.out" 2>&1
rc=$?
check "rotad --cleanup exits 0 ($(cat "$TMP/cleanup.out"))" [ $rc -eq 0 ]
check "the bpffs directory $BPFFS is gone" [ ! -e "$BPFFS" ]
links_json=$(bpftool link show -j 2>/dev/null)
left=$(pyjq 'sorted(l["id"] for l in (d or []) if str(l["id"]) in ids.split() or str(l.get("prog_id")) in progs.split())' \
	ids="${link_ids[*]}" progs="${prog_ids[*]}" <<<"$links_json")
check "bpftool link show lists none of our ${#link_ids[@]} links any more (left: $left)" [ "$left" == "[]" ]
cg_after=$(bpftool cgroup show "$CG" 2>/dev/null | grep -c rota_)
check "no rota program on the cgroup any more ($cg_before → $cg_after)" [ "$cg_before" -gt 0 -a "$cg_after" -eq 0 ]
progs_gone() {
	local p
	for p in "${prog_ids[@]}"; do bpftool prog show id "$p" >/dev/null 2>&1 && return 1; done
	return 0
}
wait_until 5 progs_gone
check "every program rota loaded is freed (${#prog_ids[@]} ids)" progs_gone
cli curl -s --max-time 2 "http://$WEB/" >/dev/null 2>&1
rc=$?
check "tc: after cleanup the VIP is not translated any more (curl exit $rc)" [ $rc -ne 0 ]
"$ROTAD_BIN" --cleanup --bpffs-dir "$BPFFS" >"$TMP/cleanup2.out" 2>&1
rc=$?
check "rotad --cleanup again (nothing left) still exits 0 ($(cat "$TMP/cleanup2.out"))" [ $rc -eq 0 ]

finish
