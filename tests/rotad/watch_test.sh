#!/usr/bin/env bash
# End-to-end: rotad against an API server that is not there, goes away, and
# forgets. rota-apiserver keeps only 20 revisions of watch history.
#  - rotad started before the API server answers: /healthz 503 (JSON body,
#    no lastUpdated) while /metrics already serves; 200 once it has synced;
#  - the API server killed and restarted on the same data dir and port in
#    the middle of the watches while a client sends a request every 50 ms:
#    nothing fails, the watches come back (rota_watch_restarts_total), and a
#    change made after the restart reaches the maps;
#  - a forced 410: rotad stopped (SIGSTOP) until the server has ended its
#    watches, more changes than the history holds, SIGCONT: rotad's next
#    watch gets 410 Gone, it relists (rota_watch_relists_total) and the maps
#    converge; traffic keeps flowing throughout.
source "$(dirname "$0")/lib.sh"

require_rotad_env
setup_topology
start_backends
HP=$HTTP_PORT
cli() { in_ns "$NS_CLI" "$@"; }
API_FLAGS=(--watch-history 20 --bookmark-interval 1)

# First start writes the kubeconfig, CA and token; then the server goes away.
start_apiserver "${API_FLAGS[@]}"
stop_apiserver
# The tc path only: no socket LB (also checks --socket-lb off needs no cgroup).
start_rotad --socket-lb off --watch-timeout 5
wait_datapath
attach_veths h-cli h-b1 h-b2 h-b3

# ---- 1. before the first sync
log "1. API server unreachable: not healthy"
wait_until 10 grep -q 'list endpointslices: ' "$ROTAD_LOG"
code=$(healthz_code)
body=$(healthz_body)
check "/healthz is 503 before the first sync (got $code)" [ "$code" == 503 ]
lu=$(pyjq 'd["lastUpdated"]' <<<"$body" 2>/dev/null)
ct=$(pyjq 'd["currentTime"]' <<<"$body" 2>/dev/null)
ct_ok=no
[[ -n $ct ]] && date -ud "$ct" >/dev/null 2>&1 && ct_ok=yes
check "its body is JSON with an empty lastUpdated and a currentTime (body: $body)" [ -z "$lu" -a $ct_ok == yes ]
check "/metrics serves meanwhile, with 0 syncs (rota_syncs_total $(metric rota_syncs_total))" \
	[ "$(metric rota_syncs_total)" == 0 ]
check "rotad logs that it cannot list" grep -q 'list services: ' "$ROTAD_LOG"
check "nothing was written to the maps (0 services)" [ "$(n_frontends)" -eq 0 ]
start=$EPOCHREALTIME
start_apiserver "${API_FLAGS[@]}"
wait_synced
code=$(healthz_code)
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
check "/healthz turns 200 once the API server is up and rotad has synced (${secs} s after the start)" [ "$code" == 200 ]
check "the kubernetes Service is programmed" svc_present "10.96.0.1:443/TCP"

# ---- 2. API server restart mid-watch
log "2. API server killed and restarted mid-watch"
kapply service web http:80 || die "service web"
kapply slice web-1 web "http:$HP" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" || die "slice web-1"
WEB=$(vip_of web)
wait_backends "web programmed" "$WEB:80/TCP" "$(be "1 2 3" $HP)"
restarts0=$(metrics | awk '/^rota_watch_restarts_total/ {s += $2} END {print s + 0}')
cli "$PY" "$RTOOL" loop "$WEB" 80 6 0.05 >"$TMP/loop1" 2>&1 &
LOOP=$!
E2E_PIDS+=("$LOOP")
sleep 1
stop_apiserver KILL
check "API server killed (kill -9)" bash -c "! curl -sk --max-time 1 https://127.0.0.1:$API_PORT/readyz"
sleep 1.5
start_apiserver "${API_FLAGS[@]}"
# A change after the restart must reach rotad through its re-established watch.
kapply slice web-1 web "http:$HP" "${B_ADDR[1]}" "${B_ADDR[2]}" || fail "apply web-1"
wait_until 15 backends_are "$WEB:80/TCP" "$(be "1 2" $HP)"
check "a slice change after the API server restart reaches the maps ($(svc_state "$WEB:80/TCP"))" \
	backends_are "$WEB:80/TCP" "$(be "1 2" $HP)"
kapply service web2 http:80 || fail "service web2"
kapply slice web2-1 web2 "http:$HP" "${B_ADDR[3]}" || fail "slice web2-1"
WEB2=$(vip_of web2)
wait_backends "a Service created after the API server restart is programmed" "$WEB2:80/TCP" "$(be 3 $HP)"
wait "$LOOP"
rc=$?
check "tc: a request every 50 ms while the API server died and came back: none failed ($(tail -1 "$TMP/loop1"))" [ $rc -eq 0 ]
restarts1=$(metrics | awk '/^rota_watch_restarts_total/ {s += $2} END {print s + 0}')
check "rota_watch_restarts_total counts the broken watches ($restarts0 → $restarts1)" [ "$restarts1" -gt "$restarts0" ]
check "/healthz stays 200" healthy

# ---- 3. forced 410 Gone
log "3. rotad stopped past its watches' end; more changes than the history holds"
relists0=$(metrics | awk '/^rota_watch_relists_total/ {s += $2} END {print s + 0}')
mark=$(log_mark)
cli "$PY" "$RTOOL" loop "$WEB" 80 12 0.05 >"$TMP/loop2" 2>&1 &
LOOP=$!
E2E_PIDS+=("$LOOP")
kill -STOP "$ROTAD_PID"
# Watches carry timeoutSeconds 5-6 (--watch-timeout 5): after 7.5 s the
# server has ended every one rotad had open.
sleep 7.5
rv_of_list() { k get --raw /api/v1/services | pyjq 'd["metadata"]["resourceVersion"]'; }
rv0=$(rv_of_list)
objs=$TMP/many.json
MANY=36
: >"$objs"
# rota-apiserver compacts its history every 64 writes: 72 writes here.
for i in $(seq 1 $MANY); do
	"$PY" "$RTOOL" service "many-$i" http:80 >>"$objs"
	"$PY" "$RTOOL" slice "many-$i-a" "many-$i" "http:$HP" "${B_ADDR[$((i % 3 + 1))]}" >>"$objs"
done
k apply -f "$objs" >>"$TMP/kubectl.log" 2>&1 || fail "create $MANY services and slices"
k delete svc web2 >>"$TMP/kubectl.log" 2>&1 || fail "delete web2"
kapply slice web-1 web "http:$HP" "${B_ADDR[3]}" || fail "apply web-1"
rv1=$(rv_of_list)
check "meanwhile the store moved on by more than 64 revisions, past the 20 of history ($rv0 → $rv1)" \
	[ $((${rv1:-0} - ${rv0:-0})) -gt 64 ]
check "rotad, stopped, has not seen any of it" svc_present "$WEB2:80/TCP"
kill -CONT "$ROTAD_PID"
relisted() { [[ $(metrics | awk '/^rota_watch_relists_total/ {s += $2} END {print s + 0}') -gt $relists0 ]]; }
wait_until 15 relisted
relists1=$(metrics | awk '/^rota_watch_relists_total/ {s += $2} END {print s + 0}')
check "after SIGCONT rotad relists (rota_watch_relists_total $relists0 → $relists1)" [ "$relists1" -gt "$relists0" ]
check "it logged the 410 (resourceVersion gone, relisting)" \
	grep -qE 'watch (services|endpointslices|nodes): resourceVersion [0-9]+ is gone .*relisting' <(rotad_log_since "$mark")
wait_until 15 svc_absent "$WEB2:80/TCP"
check "converged: web2, deleted while rotad was stopped, is gone" svc_absent "$WEB2:80/TCP"
wait_backends "converged: web's slice change made while it was stopped" "$WEB:80/TCP" "$(be 3 $HP)"
# many_bad: how many of the many-N Services are not programmed with their
# one endpoint (b(N % 3 + 1)).
many_bad() {
	local svcs maps
	svcs=$(k get svc -o json) || return 1
	maps=$(rota service list -o json)
	pyjq 'len([1 for s in d["items"] if s["metadata"]["name"].startswith("many-") and
		[("%s:%d" % (b["address"], b["port"])) for m in json.loads(maps) if m["frontend"] == s["spec"]["clusterIP"] + ":80/TCP"
		 for b in m["backends"]] != [addrs.split()[int(s["metadata"]["name"][5:]) % 3] + ":" + port]])' \
		maps="$maps" addrs="${B_ADDR[*]:1}" port="$HP" <<<"$svcs"
}
many_ok() { [[ $(many_bad) == 0 ]]; }
wait_until 15 many_ok
check "converged: all $MANY Services created while it was stopped are programmed with their endpoint (wrong: $(many_bad))" many_ok
out=$(get_n 10 "$WEB" cli)
check "tc: web now answers from b3 only, its endpoint since the change ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == b3 ]
vip=$(vip_of many-5)
out=$(get_n 5 "$vip" cli)
check "tc: one of them answers from its endpoint b3 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == b3 ]
wait "$LOOP"
rc=$?
check "tc: a request every 50 ms through the stop, the 410 and the relist: none failed ($(tail -1 "$TMP/loop2"))" [ $rc -eq 0 ]
check "/healthz is 200 after the relist" healthy
check "rota_services matches the maps ($(metric rota_services) vs $(n_frontends))" [ "$(metric rota_services)" == "$(n_frontends)" ]
check "no sync failed (rota_sync_failures_total $(metric rota_sync_failures_total))" [ "$(metric rota_sync_failures_total)" == 0 ]

finish
