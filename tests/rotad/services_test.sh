#!/usr/bin/env bash
# End-to-end: rotad driven by kubectl through rota-apiserver. Services get
# their ClusterIP from the API server; EndpointSlices point at 3 backend
# namespaces running real servers (HTTP, TCP greeter, UDP echo); rotad
# programs the datapath, and clients check the result on both paths: tc
# (from the client pod 10.244.1.2, in no socket-LB cgroup) and socket LB
# (from a second client pod, 10.244.2.2, whose processes run in the cgroup
# rotad attached). Covers scale up/down by editing the slice, several slices
# merged (and one of another namespace not), named ports, TCP and UDP on one
# port number, internalTrafficPolicy Local (this node's endpoints only; none:
# refused), only addresses[0] of an endpoint, ready=false,
# terminating+serving (established connections kept, fallback when nothing
# is ready), no usable endpoint (refused), changed ports, sessionAffinity,
# Services rotad must not proxy, parts it must skip with a log line,
# /healthz, /metrics, and Service deletion.
source "$(dirname "$0")/lib.sh"

require_rotad_env
setup_topology
add_socket_client
start_backends
make_plain_cgroup
start_apiserver
start_rotad --socket-lb on
wait_datapath
attach_veths h-cli h-cli2 h-b1 h-b2 h-b3
wait_synced || fail "rotad /healthz did not turn 200 after its first sync"

cli() { in_ns "$NS_CLI" "$@"; }
cg() { cg2 "$@"; }	# the socket-LB client pod
# who_n RUNNER PORT N: N TCP connections to the echo greeter behind VIP:PORT.
who_n() { "$1" "$PY" "$TOOL" who tcp "$VIP" "$2" "$3"; }
HP=$HTTP_PORT EP=$ECHO_PORT
ALL="1 2 3"

# ---- 1. a Service and a slice with one endpoint
log "1. Service with an allocated ClusterIP and one endpoint"
kapply service web http:80,echo:7000 || die "create service web"
VIP=$(vip_of web)
check "the API server allocated a ClusterIP for web (got: $VIP)" grep -qE '^10\.(9[6-9]|10[0-9]|11[01])\.' <<<"$VIP"
# The slice lists its ports in another order, plus one the Service lacks:
# ports are matched by name, not position.
SLICE_PORTS=echo:$EP,metrics:9100,http:$HP
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" || die "create slice web-a"
wait_backends "web: the http port maps to the slice's http target port" "$VIP:80/TCP" "$(be 1 $HP)"
wait_backends "web: the echo port maps to the slice's echo target port" "$VIP:7000/TCP" "$(be 1 $EP)"
check "web: the slice port no Service port names (metrics) is not programmed" svc_absent "$VIP:9100/TCP"
out=$(http_n 5 "http://$VIP/" cli)
check "tc: 5 curls to web reach its only endpoint b1 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == b1 ]

# ---- 2. scale up by applying the slice again
log "2. scale up to 3 endpoints (kubectl apply)"
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" || fail "apply web-a"
wait_backends "scale up: 3 backends" "$VIP:80/TCP" "$(be "$ALL" $HP)"
out=$(http_n 30 "http://$VIP/" cli)
assert_all_backends "tc: 30 curls to web reach all 3 backends" "$out"
out=$(http_n 30 "http://$VIP/" cg)
assert_all_backends "socket LB: 30 curls to web from the cgroup reach all 3 backends" "$out"
out=$(who_n cli 7000 30)
assert_all_backends "tc: 30 connections to the named echo port reach all 3 greeters on $EP" "$out"
out=$(who_n cg 7000 30)
assert_all_backends "socket LB: 30 connections to the named echo port reach all 3 greeters" "$out"
out=$(in_ns "$NS_CLI" curl -s --max-time 1 "http://$VIP/")
rc=$?
check "socket LB is only for the cgroup: the client outside it still goes through tc (got: $out)" \
	[ $rc -eq 0 -a -n "$out" ]

# ---- 3. scale down by patching the slice
log "3. scale down (kubectl patch)"
eps_json() {
	local a res=() st
	for a in "$@"; do
		st=${a#*/}
		[[ $st == "$a" ]] && st=""
		case $st in
		"") res+=("{\"addresses\":[\"${a%%/*}\"]}") ;;
		notready) res+=("{\"addresses\":[\"${a%%/*}\"],\"conditions\":{\"ready\":false,\"serving\":false}}") ;;
		esac
	done
	local IFS=,
	echo "{\"endpoints\":[${res[*]}]}"
}
k patch endpointslice web-a --type=merge -p "$(eps_json "${B_ADDR[1]}" "${B_ADDR[2]}")" >>"$TMP/kubectl.log" 2>&1 ||
	fail "kubectl patch web-a"
wait_backends "scale down: b3 removed" "$VIP:80/TCP" "$(be "1 2" $HP)"
out=$(get_n 30 "$VIP" cli)
check "tc: after scale down, 30 curls reach b1 and b2 only ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == "b1 b2" ]
out=$(get_n 30 "$VIP" cg)
check "socket LB: after scale down, 30 curls reach b1 and b2 only ($(summary <<<"$out"))" \
	[ "$(first_words <<<"$out")" == "b1 b2" ]
k patch endpointslice web-a --type=merge -p "$(eps_json "${B_ADDR[2]}")" >>"$TMP/kubectl.log" 2>&1 ||
	fail "kubectl patch web-a"
wait_backends "scale down to one: b2" "$VIP:80/TCP" "$(be 2 $HP)"
out=$(get_n 10 "$VIP" cli)
check "tc: 10 curls all reach b2 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == b2 ]

# ---- 4. several slices for one Service
log "4. several EndpointSlices merged"
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" || fail "apply web-a"
kapply slice web-b web "http:$HP,echo:$EP" "${B_ADDR[2]}" "${B_ADDR[3]}" || fail "create web-b"
# A third slice with only the http port: its endpoint joins http, not echo.
kapply slice web-c web "http:$HP" "${B_ADDR[3]}" || fail "create web-c"
wait_backends "3 slices merged (http)" "$VIP:80/TCP" "$(be "$ALL" $HP)"
wait_backends "3 slices merged (echo)" "$VIP:7000/TCP" "$(be "$ALL" $EP)"
out=$(get_n 30 "$VIP" cli)
assert_all_backends "tc: 30 curls reach the endpoints of both slices" "$out"
k delete endpointslice web-b >>"$TMP/kubectl.log" 2>&1 || fail "delete web-b"
wait_backends "slice web-b deleted: its endpoints go, web-c's b3 stays on http" "$VIP:80/TCP" "$(be "1 3" $HP)"
wait_backends "slice web-b deleted: echo keeps only web-a's b1" "$VIP:7000/TCP" "$(be 1 $EP)"
k delete endpointslice web-c >>"$TMP/kubectl.log" 2>&1 || fail "delete web-c"
wait_backends "slice web-c deleted" "$VIP:80/TCP" "$(be 1 $HP)"
# A slice in another namespace naming a Service "web" belongs to that
# namespace's web, not to default/web.
k create namespace other >>"$TMP/kubectl.log" 2>&1 || fail "create namespace other"
kapply slice web-x web "$SLICE_PORTS" "${B_ADDR[3]}" ns=other || fail "slice other/web-x"
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" "${B_ADDR[2]}" || fail "apply web-a"
wait_backends "a slice labelled for \"web\" in namespace other does not join default/web" "$VIP:80/TCP" "$(be "1 2" $HP)"

# ---- 4b. one port number, both protocols
log "4b. TCP and UDP on the same port number"
kapply service dns dns-udp:53/UDP,dns-tcp:53/TCP || fail "service dns"
kapply slice dns-1 dns "dns-tcp:$EP/TCP,dns-udp:$UDP_PORT/UDP" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" ||
	fail "slice dns-1"
DNS=$(vip_of dns)
wait_backends "dns: 53/UDP → the UDP echo port" "$DNS:53/UDP" "$(be "1 2 3" "$UDP_PORT")"
wait_backends "dns: 53/TCP → the TCP greeter port" "$DNS:53/TCP" "$(be "1 2 3" $EP)"
out=$(cli "$PY" "$TOOL" who udp "$DNS" 53 30)
assert_all_backends "tc: 30 datagrams to $DNS:53/UDP reach all 3 UDP echoes" "$out"
srcs=$(awk '{print $2}' <<<"$out" | sort -u | tr '\n' ' ')
check "tc: UDP replies come from the VIP (saw: $srcs)" [ "$srcs" == "$DNS:53 " ]
out=$(cg "$PY" "$TOOL" who udp "$DNS" 53 30)
assert_all_backends "socket LB: 30 datagrams to $DNS:53/UDP reach all 3 UDP echoes" "$out"
out=$(cli "$PY" "$TOOL" who tcp "$DNS" 53 30)
assert_all_backends "tc: 30 connections to $DNS:53/TCP reach all 3 greeters" "$out"
k delete svc dns >>"$TMP/kubectl.log" 2>&1 || fail "delete dns"

# ---- 4c. internalTrafficPolicy Local; addresses[0]
log "4c. internalTrafficPolicy Local, and only addresses[0] of an endpoint"
kapply service local http:80 itp=Local || fail "service local"
LOC=$(vip_of local)
# rotad runs as node1: b1 and b3 are this node's endpoints, b2 another node's.
kapply slice local-1 local "http:$HP" "${B_ADDR[1]}@node1" "${B_ADDR[2]}@node2" "${B_ADDR[3]}@node1" ||
	fail "slice local-1"
wait_backends "internalTrafficPolicy Local: only this node's endpoints" "$LOC:80/TCP" "$(be "1 3" $HP)"
out=$(get_n 30 "$LOC" cli)
check "tc: 30 requests to the Local Service reach only b1 and b3 ($(summary <<<"$out"))" \
	[ "$(first_words <<<"$out")" == "b1 b3" ]
out=$(get_n 30 "$LOC" cg)
check "socket LB: 30 requests to the Local Service reach only b1 and b3 ($(summary <<<"$out"))" \
	[ "$(first_words <<<"$out")" == "b1 b3" ]
kapply slice local-1 local "http:$HP" "${B_ADDR[2]}@node2" "${B_ADDR[3]}/notready@node1" || fail "slice local-1"
wait_backends "Local with no usable local endpoint (another node has a ready one): no backend" "$LOC:80/TCP" ""
expect_refused "tc: the Local Service without a local endpoint is refused" in_ns "$NS_CLI" "http://$LOC/"
expect_refused "socket LB: the Local Service without a local endpoint is refused" in_cg "$NS_CLI2" "http://$LOC/"
k patch svc local --type=merge -p '{"spec":{"internalTrafficPolicy":"Cluster"}}' >>"$TMP/kubectl.log" 2>&1 ||
	fail "kubectl patch internalTrafficPolicy"
wait_backends "internalTrafficPolicy back to Cluster: the other node's endpoint serves" "$LOC:80/TCP" "$(be 2 $HP)"
out=$(get_n 10 "$LOC" cli)
check "tc: requests reach b2 on the other node ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == b2 ]
kapply slice local-1 local "http:$HP" "${B_ADDR[1]}+${B_ADDR[2]}" "${B_ADDR[3]}+${B_ADDR[1]}" || fail "slice local-1"
wait_backends "endpoints with two addresses: only each one's addresses[0] is a backend" "$LOC:80/TCP" "$(be "1 3" $HP)"
out=$(get_n 30 "$LOC" cli)
check "tc: 30 requests reach b1 and b3, never b2, a second address ($(summary <<<"$out"))" \
	[ "$(first_words <<<"$out")" == "b1 b3" ]
k delete svc local >>"$TMP/kubectl.log" 2>&1 || fail "delete local"

# ---- 5. ready=false
log "5. ready=false endpoints get no new connections"
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}/notready" || fail "apply"
wait_backends "ready=false: b3 not programmed" "$VIP:80/TCP" "$(be "1 2" $HP)"
out=$(get_n 30 "$VIP" cli)
check "tc: 30 curls never reach the not-ready b3 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == "b1 b2" ]
out=$(get_n 30 "$VIP" cg)
check "socket LB: 30 curls never reach the not-ready b3 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == "b1 b2" ]
# Explicit ready=true is the same as unset.
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}/ready" "${B_ADDR[2]}" "${B_ADDR[3]}/ready" || fail "apply"
wait_backends "ready=true and unset conditions both count as ready" "$VIP:80/TCP" "$(be "$ALL" $HP)"

# ---- 6. terminating + serving: established connections stay, new ones avoid it
log "6. terminating endpoints keep their connections"
rm -f "$TMP/long.tc" "$TMP/long.sock"
cli "$PY" "$TOOL" long "$VIP" 7000 4 0.1 "$TMP/long.tc" >"$TMP/long.tc.out" 2>&1 &
LONG_TC=$!
E2E_PIDS+=("$LONG_TC")
cg "$PY" "$TOOL" long "$VIP" 7000 4 0.1 "$TMP/long.sock" >"$TMP/long.sock.out" 2>&1 &
LONG_SOCK=$!
E2E_PIDS+=("$LONG_SOCK")
wait_until 5 test -s "$TMP/long.tc" -a -s "$TMP/long.sock"
V_TC=$(cat "$TMP/long.tc" 2>/dev/null)
V_SOCK=$(cat "$TMP/long.sock" 2>/dev/null)
if [[ $V_TC =~ ^b[123]$ && $V_SOCK =~ ^b[123]$ ]]; then
	eps=() parts=()
	for i in 1 2 3; do
		if [[ b$i == "$V_TC" || b$i == "$V_SOCK" ]]; then
			eps+=("${B_ADDR[i]}/terminating") parts+=("${B_ADDR[i]}:$EP/terminating")
		else
			eps+=("${B_ADDR[i]}") parts+=("${B_ADDR[i]}:$EP/active")
		fi
	done
	kapply slice web-a web "$SLICE_PORTS" "${eps[@]}" || fail "apply"
	want=$(IFS=,; echo "${parts[*]}")
	wait_backends "terminating+serving endpoints ($V_TC $V_SOCK) stay in the maps as terminating" "$VIP:7000/TCP" "$want"
	out=$(who_n cli 7000 20)
	check "tc: 20 new connections avoid the terminating $V_TC/$V_SOCK ($(summary <<<"$out"))" \
		[ -z "$(grep -E "^($V_TC|$V_SOCK) " <<<"$out")" -a -z "$(grep '^ERR' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 20 ]
	out=$(who_n cg 7000 20)
	check "socket LB: 20 new connections avoid the terminating $V_TC/$V_SOCK ($(summary <<<"$out"))" \
		[ -z "$(grep -E "^($V_TC|$V_SOCK) " <<<"$out")" -a -z "$(grep '^ERR' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 20 ]
	wait "$LONG_TC"
	rc=$?
	lo=$(cat "$TMP/long.tc.out")
	check "tc: the established connection to terminating $V_TC kept working (exit $rc: $lo)" \
		[ $rc -eq 0 -a "${lo%% *}" == ok ]
	wait "$LONG_SOCK"
	rc=$?
	lo=$(cat "$TMP/long.sock.out")
	check "socket LB: the established connection to terminating $V_SOCK kept working (exit $rc: $lo)" \
		[ $rc -eq 0 -a "${lo%% *}" == ok ]
else
	fail "long-lived connections did not start (tc: $(cat "$TMP/long.tc.out"), sock: $(cat "$TMP/long.sock.out"))"
fi
# Nothing ready, all terminating+serving: they take traffic (kube-proxy's fallback).
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}/terminating" "${B_ADDR[2]}/terminating" \
	"${B_ADDR[3]}/stopping" || fail "apply"
wait_backends "no ready endpoint: terminating+serving ones serve, serving=false ones go" "$VIP:80/TCP" "$(be "1 2" $HP)"
out=$(get_n 20 "$VIP" cli)
check "tc: with only terminating+serving endpoints, 20 curls are served by b1 and b2 ($(summary <<<"$out"))" \
	[ "$(first_words <<<"$out")" == "b1 b2" ]

# ---- 7. no usable endpoint: refused
log "7. all endpoints not ready: refused"
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}/notready" "${B_ADDR[2]}/stopping" || fail "apply"
wait_backends "nothing ready: the service stays with no backend" "$VIP:80/TCP" ""
expect_refused "tc: the VIP without endpoints is refused" in_ns "$NS_CLI" "http://$VIP/"
expect_refused "socket LB: the VIP without endpoints is refused" in_cg "$NS_CLI2" "http://$VIP/"
out=$(cg "$PY" "$TOOL" who tcp "$VIP" 7000 1)
check "socket LB: connect() to it fails with ECONNREFUSED (got: $out)" [ "$out" == "ERR ECONNREFUSED" ]
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" || fail "apply"
wait_backends "endpoints ready again" "$VIP:80/TCP" "$(be "$ALL" $HP)"

# ---- 8. changed ports
log "8. port changes"
k patch svc web --type=json -p '[{"op":"replace","path":"/spec/ports/0/port","value":8081}]' \
	>>"$TMP/kubectl.log" 2>&1 || fail "kubectl patch web port"
wait_backends "service port 80 → 8081: the new frontend" "$VIP:8081/TCP" "$(be "$ALL" $HP)"
wait_until 10 svc_absent "$VIP:80/TCP"
check "service port 80 → 8081: the old frontend $VIP:80 is gone" svc_absent "$VIP:80/TCP"
out=$(get_n 30 "$VIP:8081" cli)
assert_all_backends "tc: 30 curls to the new port reach all 3 backends" "$out"
out=$(get_n 30 "$VIP:8081" cg)
assert_all_backends "socket LB: 30 curls to the new port reach all 3 backends" "$out"
cli curl -s --max-time 2 "http://$VIP:80/" >/dev/null 2>&1
rc=$?
check "tc: the old port answers no more (curl exit $rc)" [ $rc -ne 0 ]
cg curl -s --max-time 2 "http://$VIP:80/" >/dev/null 2>&1
rc=$?
check "socket LB: the old port answers no more (curl exit $rc)" [ $rc -ne 0 ]
# Target port change in the slice: http now points at the greeters.
kapply slice web-a web "echo:$EP,http:$EP" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" || fail "apply"
wait_backends "slice target port $HP → $EP" "$VIP:8081/TCP" "$(be "$ALL" $EP)"
out=$(who_n cli 8081 30)
assert_all_backends "tc: 30 connections to $VIP:8081 now reach the greeters on $EP" "$out"
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" "${B_ADDR[2]}" "${B_ADDR[3]}" || fail "apply"
wait_backends "slice target port back to $HP" "$VIP:8081/TCP" "$(be "$ALL" $HP)"

# ---- 9. sessionAffinity
log "9. sessionAffinity ClientIP"
k patch svc web --type=merge -p '{"spec":{"sessionAffinity":"ClientIP"}}' >>"$TMP/kubectl.log" 2>&1 ||
	fail "kubectl patch sessionAffinity"
aff_is() { [[ $(svc_state "$1" | awk '{print $2}') == "$2" ]]; }
wait_until 10 aff_is "$VIP:8081/TCP" 10800
check "ClientIP without a timeout: the maps hold the API default 10800 s on every port ($(svc_state "$VIP:8081/TCP" | cut -d' ' -f1-2); echo: $(svc_state "$VIP:7000/TCP" | cut -d' ' -f1-2))" \
	[ "$(svc_state "$VIP:8081/TCP" | awk '{print $2}')" == 10800 -a "$(svc_state "$VIP:7000/TCP" | awk '{print $2}')" == 10800 ]
out=$(get_n 20 "$VIP:8081" cli)
assert_one_backend "tc: with ClientIP affinity 20 curls from one client hit one backend" "$out"
out=$(get_n 20 "$VIP:8081" cg)
assert_one_backend "socket LB: with ClientIP affinity 20 curls from one client hit one backend" "$out"
k patch svc web --type=merge -p '{"spec":{"sessionAffinityConfig":{"clientIP":{"timeoutSeconds":60}}}}' \
	>>"$TMP/kubectl.log" 2>&1 || fail "kubectl patch timeoutSeconds"
wait_until 10 aff_is "$VIP:8081/TCP" 60
check "timeoutSeconds 60 reaches the maps (got: $(svc_state "$VIP:8081/TCP" | cut -d' ' -f1-2))" aff_is "$VIP:8081/TCP" 60
k patch svc web --type=merge -p '{"spec":{"sessionAffinity":"None","sessionAffinityConfig":null}}' \
	>>"$TMP/kubectl.log" 2>&1 || fail "kubectl patch sessionAffinity None"
wait_until 10 aff_is "$VIP:8081/TCP" 0
check "sessionAffinity None: affinity off again (got: $(svc_state "$VIP:8081/TCP" | cut -d' ' -f1-2))" aff_is "$VIP:8081/TCP" 0
out=$(get_n 30 "$VIP:8081" cli)
assert_all_backends "tc: without affinity 30 curls spread again" "$out"

# ---- 10. Services rotad must not proxy, and parts it must skip
log "10. not proxied, and skipped with a log line"
mark=$(log_mark)
# (Concatenated documents, not a kind: List: for a List kubectl validates
# against /openapi/v2, which rota-apiserver does not serve.)
k apply -f - >>"$TMP/kubectl.log" 2>&1 <<EOF || fail "create the odd services"
{"apiVersion":"v1","kind":"Service","metadata":{"name":"headless"},"spec":{"clusterIP":"None","ports":[{"port":80}]}}
{"apiVersion":"v1","kind":"Service","metadata":{"name":"extname"},"spec":{"type":"ExternalName","externalName":"example.com"}}
{"apiVersion":"v1","kind":"Service","metadata":{"name":"other-proxy","labels":{"service.kubernetes.io/service-proxy-name":"someone-else"}},"spec":{"ports":[{"port":80}]}}
{"apiVersion":"v1","kind":"Service","metadata":{"name":"mixed"},"spec":{"ports":[{"name":"http","port":80},{"name":"sig","port":9999,"protocol":"SCTP"}]}}
EOF
for s in headless other-proxy; do
	kapply slice "$s-1" "$s" ":$HP" "${B_ADDR[1]}" || fail "slice for $s"
done
# port 0 passes rota-apiserver's validation of EndpointSlices; rotad skips that port.
kapply slice mixed-1 mixed "sig:9999/SCTP,zero:0,http:$HP" "${B_ADDR[1]}" "${B_ADDR[2]}" || fail "slice mixed-1"
MIXED=$(vip_of mixed)
OTHER=$(vip_of other-proxy)
wait_backends "mixed: the TCP port of a Service with an SCTP port is served" "$MIXED:80/TCP" "$(be "1 2" $HP)"
check "mixed: the SCTP port is not programmed" svc_absent "$MIXED:9999/SCTP"
check "other-proxy (service-proxy-name label): not programmed at $OTHER" svc_absent "$OTHER:80/TCP"
n_svc=$(rota service list -o json | pyjq 'len(d)')
# kubernetes:443, web:8081, web:7000, mixed:80.
check "headless and ExternalName Services add no frontend: 4 in the maps (got $n_svc)" [ "$n_svc" -eq 4 ]
out=$(get_n 20 "$MIXED" cli)
check "tc: mixed's TCP port is reached (b1, b2) ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == "b1 b2" ]
newlog=$(rotad_log_since "$mark")
check "log: the SCTP port is skipped with a line naming default/mixed and the protocol" \
	grep -qE 'service default/mixed: .*protocol "SCTP".*skipping' <<<"$newlog"
check "log: the slice's port 0 is skipped with a line naming default/mixed-1 and ports[1].port" \
	grep -qE 'endpointslice default/mixed-1: ports\[1\]\.port 0 .*skipping' <<<"$newlog"
out=$(get_n 10 "$VIP:8081" cli)
check "tc: web is unaffected by the odd objects ($(summary <<<"$out"))" \
	[ -z "$(grep -v '^b[123]$' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 10 ]

# ---- 11. /healthz and /metrics
log "11. /healthz and /metrics"
code=$(healthz_code)
body=$(healthz_body)
check "/healthz answers 200 after syncs (got $code)" [ "$code" == 200 ]
hz=$(pyjq 'd["lastUpdated"] + " " + d["currentTime"]' <<<"$body" 2>/dev/null)
lu=$(date -ud "${hz%% *}" +%s 2>/dev/null) ct=$(date -ud "${hz##* }" +%s 2>/dev/null) now=$(date +%s)
ok=0
[[ -n $lu && -n $ct ]] && ((lu <= ct && ct - now <= 2 && now - ct <= 2 && now - lu < 120)) && ok=1
check "/healthz body is JSON with RFC 3339 lastUpdated ≤ currentTime ≈ now (body: $body)" [ $ok -eq 1 ]
ctype=$(curl -s -D - -o /dev/null --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz" | tr -d '\r' |
	awk -F': ' 'tolower($1) == "content-type" {print $2}')
check "/healthz Content-Type is application/json (got: $ctype)" [ "$ctype" == application/json ]
M=$(metrics)
missing=""
for name in kubeproxy_sync_proxy_rules_duration_seconds_bucket kubeproxy_sync_proxy_rules_duration_seconds_sum \
	kubeproxy_sync_proxy_rules_duration_seconds_count kubeproxy_network_programming_duration_seconds_bucket \
	kubeproxy_network_programming_duration_seconds_count kubeproxy_sync_proxy_rules_last_timestamp_seconds \
	rota_syncs_total rota_sync_failures_total rota_services rota_backends rota_conntrack_entries \
	rota_map_fill_ratio rota_watch_restarts_total rota_watch_relists_total rota_watch_events_total \
	rota_datapath_packets_total rota_datapath_bytes_total; do
	grep -qE "^$name(\{| )" <<<"$M" || missing+="$name "
done
check "/metrics has every expected metric (missing: ${missing:-none})" [ -z "$missing" ]
m() { "$PY" "$RTOOL" metric "$@" <<<"$M"; }
want_svc=$(n_frontends)
want_be=$(rota service list -o json | pyjq 'sum(len(s["backends"]) for s in d)')
check "rota_services equals the frontends in the maps ($(m rota_services) vs $want_svc)" \
	[ "$(m rota_services)" == "$want_svc" ]
check "rota_backends equals the backends in the maps ($(m rota_backends) vs $want_be)" \
	[ "$(m rota_backends)" == "$want_be" ]
read -r sc ss <<<"$("$PY" "$RTOOL" hist kubeproxy_sync_proxy_rules_duration_seconds <<<"$M")"
inf=$(m kubeproxy_sync_proxy_rules_duration_seconds_bucket 'le="+Inf"')
check "sync duration histogram: count $sc > 0, +Inf bucket = count ($inf), mean < 1 s (sum $ss)" \
	awk -v c="$sc" -v s="$ss" -v i="$inf" 'BEGIN { exit !(c > 0 && i == c && s / c < 1) }'
mono=$(grep '^kubeproxy_sync_proxy_rules_duration_seconds_bucket' <<<"$M" | awk '{ if ($2 < prev) bad = 1; prev = $2 } END { print bad ? "no" : "yes" }')
check "sync duration buckets are cumulative (non-decreasing)" [ "$mono" == yes ]
check "rota_syncs_total ($(m rota_syncs_total)) equals the histogram count ($sc)" [ "$(m rota_syncs_total)" == "$sc" ]
check "rota_sync_failures_total is 0 (got $(m rota_sync_failures_total))" [ "$(m rota_sync_failures_total)" == 0 ]
last=$(m kubeproxy_sync_proxy_rules_last_timestamp_seconds)
check "last sync timestamp is recent ($last vs now $(date +%s))" \
	awk -v l="$last" -v n="$(date +%s)" 'BEGIN { exit !(n - l < 120 && l - n < 2) }'
ev_s=$(m rota_watch_events_total 'resource="services"') ev_e=$(m rota_watch_events_total 'resource="endpointslices"')
check "watch events counted for services ($ev_s) and endpointslices ($ev_e)" [ "$ev_s" -gt 0 -a "$ev_e" -gt 0 ]
fill=$(m rota_map_fill_ratio 'map="rota_svc4"')
check "rota_map_fill_ratio{rota_svc4} is a small positive fraction ($fill)" awk -v f="$fill" 'BEGIN { exit !(f > 0 && f < 0.01) }'
tr_fwd=$(m rota_datapath_packets_total 'reason="translated_forward"')
check "datapath counters moved (translated_forward $tr_fwd)" [ "${tr_fwd:-0}" -gt 0 ]
# Network programming latency: a slice change carrying the trigger-time annotation.
read -r pc0 _ <<<"$(metrics | "$PY" "$RTOOL" hist kubeproxy_network_programming_duration_seconds)"
kapply slice web-a web "$SLICE_PORTS" "${B_ADDR[1]}" "${B_ADDR[2]}" trigger=now || fail "apply"
wait_backends "slice change with last-change-trigger-time applied" "$VIP:8081/TCP" "$(be "1 2" $HP)"
sleep 0.2
read -r pc ps <<<"$(metrics | "$PY" "$RTOOL" hist kubeproxy_network_programming_duration_seconds)"
check "network programming latency observed for the annotated change (count $pc0 → $pc, sum $ps)" \
	awk -v a="$pc0" -v b="$pc" -v s="$ps" 'BEGIN { exit !(b > a && s > 0 && s / b < 10) }'

# ---- 12. delete the Service
log "12. Service deleted"
k delete svc web >>"$TMP/kubectl.log" 2>&1 || fail "kubectl delete svc web"
wait_until 10 svc_absent "$VIP:8081/TCP"
check "deleted Service: its frontends are gone from the maps ($VIP:8081: $(svc_state "$VIP:8081/TCP"), $VIP:7000: $(svc_state "$VIP:7000/TCP"))" \
	[ "$(svc_state "$VIP:8081/TCP")" == absent -a "$(svc_state "$VIP:7000/TCP")" == absent ]
expect_refused "tc: the deleted Service's VIP fails at once" in_ns "$NS_CLI" "http://$VIP:8081/"
expect_refused "socket LB: the deleted Service's VIP fails at once" in_cg "$NS_CLI2" "http://$VIP:8081/"
out=$(get_n 20 "$MIXED" cli)	# 20: both backends answer with odds 1 - 2^-19
check "tc: the other Service still works ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == "b1 b2" ]
check "rotad is still running" kill -0 "$ROTAD_PID"
check "rotad logged no failed sync" [ "$(metric rota_sync_failures_total)" == 0 ]

finish
