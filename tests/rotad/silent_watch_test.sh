#!/usr/bin/env bash
# End-to-end: a watch that goes silent is restarted. rotad talks to
# rota-apiserver through a TCP proxy (rotad_tool.py tcp-proxy) that, on
# SIGUSR1, keeps every open connection open but forwards nothing more: the
# watches look alive and say nothing, as behind a middlebox that lost its
# state. rota-apiserver sends a BOOKMARK every second, so a healthy watch is
# never quiet for long; rotad runs with --watch-idle-timeout 6.
#  - through the proxy rotad syncs and programs a Service; with bookmarks
#    flowing, no watch is restarted as silent;
#  - the proxy freezes; a Service created now does not reach rotad over the
#    frozen watches;
#  - rotad notices the silence (log line, rota_watch_restarts_total
#    {reason="silent"}), reconnects (through the proxy, which forwards new
#    connections), resumes from its resourceVersion without relisting, and
#    programs the Service created during the silence; /healthz stays 200
#    throughout (nothing was queued and left unapplied).
source "$(dirname "$0")/lib.sh"

require_rotad_env
IDLE=6

start_apiserver --bookmark-interval 1
read -r PROXY_PORT <<<"$(free_ports 1)"
"$PY" "$RTOOL" tcp-proxy "$PROXY_PORT" "$API_PORT" 2>"$TMP/proxy.log" &
PROXY_PID=$!
RD_PIDS+=("$PROXY_PID")
wait_until 10 grep -q listening "$TMP/proxy.log" || die "the TCP proxy did not start"
# rotad reaches the API through the proxy; kubectl goes straight to it.
sed "s#https://127.0.0.1:$API_PORT#https://127.0.0.1:$PROXY_PORT#" "$KUBECONFIG" >"$TMP/proxy.kubeconfig"
grep -q "127.0.0.1:$PROXY_PORT" "$TMP/proxy.kubeconfig" || die "no server line to rewrite in $KUBECONFIG"
KUBECONFIG=$TMP/proxy.kubeconfig start_rotad --socket-lb off --watch-timeout 60 --watch-idle-timeout "$IDLE"
wait_datapath
wait_synced || fail "rotad did not sync through the proxy"

sum_metric() { metrics | awk -v re="$1" '$0 ~ re {s += $2} END {print s + 0}'; }
silent() { sum_metric "^rota_watch_restarts_total\\{resource=\"$1\",reason=\"silent\"\\}"; }
errors() { sum_metric '^rota_watch_restarts_total\{.*reason="error"\}'; }
relists() { sum_metric '^rota_watch_relists_total'; }

log "1. through the proxy, bookmarks flowing"
kapply service before http:80 || die "service before"
kapply slice before-1 before http:8080 10.244.11.2 || die "slice before-1"
BEFORE=$(vip_of before)
wait_backends "a Service reaches rotad through the proxy" "$BEFORE:80/TCP" "10.244.11.2:8080/active"
n_conn=$(grep -c ' open$' "$TMP/proxy.log")
check "rotad's lists and watches go through the proxy ($n_conn connections so far, 3 lists + 3 watches at least)" \
	[ "$n_conn" -ge 6 ]
sleep $((IDLE + 2))
check "with a bookmark every second, no watch was restarted as silent in $((IDLE + 2)) s (services $(silent services), endpointslices $(silent endpointslices), nodes $(silent nodes))" \
	[ "$(silent services)" == 0 -a "$(silent endpointslices)" == 0 -a "$(silent nodes)" == 0 ]
errors0=$(errors) relists0=$(relists)

log "2. the proxy freezes every open connection"
mark=$(log_mark)
kill -USR1 "$PROXY_PID"
frozen_at=$EPOCHREALTIME
wait_until 5 grep -q 'froze' "$TMP/proxy.log"
check "the proxy froze rotad's open watches ($(grep froze "$TMP/proxy.log"))" \
	grep -qE 'froze [3-9] open connections' "$TMP/proxy.log"
kapply service during http:80 || fail "service during"
kapply slice during-1 during http:8080 10.244.12.2 || fail "slice during-1"
DURING=$(vip_of during)
check "a Service created now does not reach rotad over the frozen watches (maps: $(svc_state "$DURING:80/TCP"))" \
	svc_absent "$DURING:80/TCP"
check "/healthz stays 200 while the watches are silent (nothing is waiting to be applied)" healthy

log "3. rotad notices the silence and reconnects"
restarted() { [[ $(silent services) -ge 1 && $(silent endpointslices) -ge 1 ]]; }
wait_until 40 restarted
check "rota_watch_restarts_total{reason=\"silent\"} counts the silent watches (services $(silent services), endpointslices $(silent endpointslices), nodes $(silent nodes))" restarted
new=$(rotad_log_since "$mark")
check "rotad logs each silent watch it restarts" \
	grep -qE "watch services: silent for $IDLE s \(no event, no bookmark\): restarting it from resourceVersion [0-9]+" <<<"$new"
check "... also the endpointslices watch" grep -qE "watch endpointslices: silent for $IDLE s" <<<"$new"
wait_backends "the Service created during the silence is programmed after the restart" "$DURING:80/TCP" "10.244.12.2:8080/active"
secs=$(awk -v a="$frozen_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
log "measured: $secs s from the freeze to the new Service in the maps, with --watch-idle-timeout $IDLE"
check "the restarted watches resumed from their resourceVersion: no relist (rota_watch_relists_total $relists0 → $(relists))" \
	[ "$(relists)" == "$relists0" ]
check "no error restarts: the silence was the only reason (reason=\"error\" $errors0 → $(errors))" \
	[ "$(errors)" == "$errors0" ]
kapply slice during-1 during http:8080 10.244.12.2 10.244.13.2 || fail "slice during-1"
wait_backends "a change after the restart arrives over the new watches" "$DURING:80/TCP" \
	"10.244.12.2:8080/active,10.244.13.2:8080/active"
check "/healthz is 200" healthy
check "no sync failed (rota_sync_failures_total $(metric rota_sync_failures_total))" \
	[ "$(metric rota_sync_failures_total)" == 0 ]

finish
