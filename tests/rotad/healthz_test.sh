#!/usr/bin/env bash
# End-to-end: /healthz with kube-proxy's meaning of stale. rotad runs with
# --healthz-timeout 3 on a datapath loaded with small maps (16 service
# slots, 16 backends).
#  - fresh: 200, JSON body whose lastUpdated is the current time (as
#    kube-proxy writes it while healthy), /livez alike;
#  - not stale: a quiet cluster, and an API server that is stopped
#    (SIGSTOP), past the timeout: still 200, since no change waits;
#  - a stalled sync: another writer holds the datapath's lock (flock on the
#    bpffs directory, as the rota CLI takes it) while a Service is created:
#    503 once the change has waited past the timeout, lastUpdated the last
#    good sync; 200 and the Service programmed once the lock is released;
#  - a failing sync: more Services than the maps hold: the write fails,
#    rotad retries, 503 after the timeout (rota_sync_failures_total counts
#    it), and 200 again once Services are deleted and everything fits.
source "$(dirname "$0")/lib.sh"

require_rotad_env
TIMEOUT=3
rota_load --services 16 --backends 16
start_apiserver
start_rotad --socket-lb off --lb-algorithm random --healthz-timeout "$TIMEOUT"
wait_datapath
wait_synced || fail "rotad did not turn healthy after its first sync"

# hz URL: "CODE LASTUPDATED-EPOCH CURRENTTIME-EPOCH NODEELIGIBLE" (epochs with
# fractions; "none" for an empty lastUpdated), or "bad ..." if the body is
# not the JSON kube-proxy answers.
hz() {
	curl -s -w '\n%{http_code}' --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT${1:-/healthz}" | "$PY" -c '
import json, sys
from datetime import datetime
lines = sys.stdin.read().rsplit("\n", 1)
try:
    d = json.loads(lines[0])
    ep = lambda s: "%.3f" % datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() if s else "none"
    print(lines[1], ep(d["lastUpdated"]), ep(d["currentTime"]), d.get("nodeEligible", "absent"))
except Exception as e:
    print("bad", lines, e)'
}
hz_code() { hz | awk '{print $1}'; }
# lag: currentTime - lastUpdated of an answer line.
lag() { awk '{ if ($2 == "none") print "none"; else printf "%.1f", $3 - $2 }' <<<"$1"; }
now_near() { awk -v t="$(awk '{print $3}' <<<"$1")" -v n="$(date +%s.%N)" 'BEGIN { exit !(t - n < 2 && n - t < 2) }'; }
count503() { metric kubeproxy_proxy_healthz_total 'code="503"'; }

log "1. fresh"
h=$(hz)
check "/healthz is 200 after the first sync ($h)" [ "$(awk '{print $1}' <<<"$h")" == 200 ]
check "its body: lastUpdated = currentTime while healthy, as kube-proxy writes it (lag $(lag "$h") s), nodeEligible true" \
	[ "$(lag "$h")" == 0.0 -a "$(awk '{print $4}' <<<"$h")" == True ]
check "currentTime is now" now_near "$h"
h=$(hz /livez)
check "/livez is 200, same body without nodeEligible ($h)" [ "$(awk '{print $1, $4}' <<<"$h")" == "200 absent" ]
ctype=$(curl -s -D - -o /dev/null --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz" | tr -d '\r' |
	awk -F': ' 'tolower($1) == "content-type" {print $2}')
check "Content-Type application/json (got: $ctype)" [ "$ctype" == application/json ]

log "2. quiet, and the API server stopped: not stale"
sleep $((TIMEOUT + 1))
check "no change for longer than --healthz-timeout: still 200" [ "$(hz_code)" == 200 ]
kill -STOP "$API_PID"
sleep $((TIMEOUT + 1))
h=$(hz)
kill -CONT "$API_PID"
check "the API server stopped (SIGSTOP) past the timeout: still 200, nothing waits to be applied ($h)" \
	[ "$(awk '{print $1}' <<<"$h")" == 200 ]

log "3. a stalled sync: another writer holds the datapath lock"
kapply service early http:80 || die "service early"
kapply slice early-1 early http:8080 10.244.11.2 || die "slice early-1"
EARLY=$(vip_of early)
wait_backends "a Service before the stall is programmed" "$EARLY:80/TCP" "10.244.11.2:8080/active"
"$PY" -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(600)' "$BPFFS" "$TMP/locked" &
LOCKER=$!
E2E_PIDS+=("$LOCKER")
wait_until 10 test -e "$TMP/locked" || die "could not take the lock on $BPFFS"
sleep $((TIMEOUT + 1))
check "lock held, nothing to apply, past the timeout: still 200" [ "$(hz_code)" == 200 ]
last_good=$(metric kubeproxy_sync_proxy_rules_last_timestamp_seconds)
n503=$(count503)
kapply service stalled http:80 || fail "service stalled"
kapply slice stalled-1 stalled http:8080 10.244.12.2 || fail "slice stalled-1"
STALLED=$(vip_of stalled)
stale() { [[ $(hz_code) == 503 ]]; }
wait_until $((TIMEOUT + 15)) stale
h=$(hz)
check "a change waits behind the held lock past --healthz-timeout: 503 ($h)" [ "$(awk '{print $1}' <<<"$h")" == 503 ]
check "the 503 body: lastUpdated is the last good sync ($(awk '{print $2}' <<<"$h") vs metric $last_good), currentTime now, $(lag "$h") s apart" \
	awk -v lu="$(awk '{print $2}' <<<"$h")" -v m="$last_good" -v l="$(lag "$h")" -v t="$TIMEOUT" \
	'BEGIN { d = lu - m; exit !(d < 0.01 && d > -0.01 && l >= t) }'
check "currentTime of the 503 is now" now_near "$h"
check "the stalled Service is not in the maps" svc_absent "$STALLED:80/TCP"
check "/metrics still answers during the stall and counts the 503s (kubeproxy_proxy_healthz_total{code=\"503\"} $n503 → $(count503))" \
	[ "$(count503)" -gt "$n503" ]
kill "$LOCKER"
wait "$LOCKER" 2>/dev/null
wait_backends "the lock released: the stalled sync completes" "$STALLED:80/TCP" "10.244.12.2:8080/active"
wait_until 10 healthy
h=$(hz)
check "/healthz is 200 again, lastUpdated now ($h)" [ "$(awk '{print $1}' <<<"$h")" == 200 -a "$(lag "$h")" == 0.0 ]

log "4. a failing sync: more Services than the maps hold"
fails0=$(metric rota_sync_failures_total)
syncs0=$(metric rota_syncs_total)
mark=$(log_mark)
# Each takes 4 of the 16 service slots (frontend + 3 backends): 5 cannot fit.
for i in 1 2 3 4 5; do
	kapply service "fill-$i" http:80 || fail "service fill-$i"
	kapply slice "fill-$i-a" "fill-$i" http:8080 10.244.11.2 10.244.12.2 10.244.13.2 || fail "slice fill-$i-a"
done
failing() { [[ $(metric rota_sync_failures_total) -gt $fails0 ]]; }
wait_until 15 failing
check "the maps are full: map writes fail (rota_sync_failures_total $fails0 → $(metric rota_sync_failures_total))" failing
new=$(rotad_log_since "$mark")
check "rotad logs the failed write naming the Service" grep -qE '^rotad: service default/fill-[1-5]:http: ' <<<"$new"
wait_until $((TIMEOUT + 15)) stale
h=$(hz)
check "changes left unapplied past --healthz-timeout by failing syncs: 503 ($h)" [ "$(awk '{print $1}' <<<"$h")" == 503 ]
retried() { [[ $(rotad_log_since "$mark" | grep -c 'sync: retrying in') -ge 2 ]]; }
wait_until 15 retried
check "rotad retries the failed sync by itself ($(rotad_log_since "$mark" | grep -c 'sync: retrying in') retries logged, rota_syncs_total $syncs0 → $(metric rota_syncs_total))" retried
for i in 3 4 5; do
	k delete svc "fill-$i" >>"$TMP/kubectl.log" 2>&1 || fail "delete fill-$i"
done
wait_until 15 healthy
h=$(hz)
check "Services deleted, everything fits: /healthz 200 again ($h)" [ "$(awk '{print $1}' <<<"$h")" == 200 ]
for i in 1 2; do
	wait_backends "fill-$i is programmed" "$(vip_of "fill-$i"):80/TCP" \
		"10.244.11.2:8080/active,10.244.12.2:8080/active,10.244.13.2:8080/active"
done
fails1=$(metric rota_sync_failures_total)
sleep 2
check "and the failures stopped (rota_sync_failures_total stays $fails1)" [ "$(metric rota_sync_failures_total)" == "$fails1" ]
check "the Services from before are still programmed" backends_are "$EARLY:80/TCP" "10.244.11.2:8080/active"

finish
