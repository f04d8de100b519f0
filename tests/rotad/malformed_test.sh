#!/usr/bin/env bash
# End-to-end: objects rotad must skip, part by part, with one log line naming
# the object and the field, while every other Service keeps working.
#
# rota-apiserver validates what it stores: it refuses an EndpointSlice
# address that is not an IP, a Service port 0 and a protocol other than
# TCP/UDP/SCTP (422; tests/rotad/services_test.sh covers what it lets
# through: an SCTP port and an EndpointSlice port 0). So these objects come
# from a minimal fake API server (rotad_tool.py fake-apiserver, plain HTTP on
# loopback) that serves them as they are, in the list and as watch events
# written a few bytes at a time. At the end a second rotad (own bpffs dir,
# own ports) runs next to the first: separate maps, and its --cleanup leaves
# the first serving.
source "$(dirname "$0")/lib.sh"

require_rotad_env
setup_topology
start_backends
HP=$HTTP_PORT UP=$UDP_PORT
B1=${B_ADDR[1]} B2=${B_ADDR[2]} B3=${B_ADDR[3]}
cli() { in_ns "$NS_CLI" "$@"; }

# Namespaced object metadata.
md() {
	local labels=""
	[[ -n ${2:-} ]] && labels=",\"labels\":{\"kubernetes.io/service-name\":\"$2\"}"
	echo "\"metadata\":{\"name\":\"$1\",\"namespace\":\"default\"$labels}"
}
svc() { echo "{\"kind\":\"Service\",$(md "$1"),\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"$2\",\"ports\":$3}}"; }
slc() { echo "{\"kind\":\"EndpointSlice\",$(md "$1" "$2"),\"addressType\":\"IPv4\",\"ports\":$3,\"endpoints\":$4}"; }
eps() {
	local a res=()
	for a in "$@"; do res+=("{\"addresses\":[\"$a\"],\"conditions\":{\"ready\":true}}"); done
	local IFS=,
	echo "[${res[*]}]"
}

cat >"$TMP/objects.json" <<EOF
{"rv": "100",
 "services": [
  $(svc good 10.96.100.10 '[{"name":"http","port":80,"protocol":"TCP"}]'),
  $(svc badport 10.96.100.11 '[{"name":"zero","port":0,"protocol":"TCP"},{"name":"http","port":80,"protocol":"TCP"}]'),
  $(svc badproto 10.96.100.12 '[{"name":"weird","port":80,"protocol":"FOO"},{"name":"dns","port":53,"protocol":"UDP"}]'),
  $(svc badip 10.96.100.300 '[{"name":"http","port":80}]'),
  $(svc strport 10.96.100.15 '[{"name":"http","port":"80"}]'),
  {"kind":"Service","metadata":{"namespace":"default"},"spec":{"clusterIP":"10.96.100.14","ports":[{"port":80}]}}
 ],
 "endpointslices": [
  $(slc good-1 good '[{"name":"http","port":'$HP'}]' "$(eps "$B1" "$B2" "$B3")"),
  $(slc badport-1 badport '[{"name":"http","port":'$HP'},{"name":"zero","port":0}]' "$(eps 10.244.11.300 "$B2" not-an-ip)"),
  $(slc badproto-1 badproto '[{"name":"dns","port":'$UP',"protocol":"UDP"},{"name":"weird","port":'$HP',"protocol":"FOO"}]' "$(eps "$B1" "$B2" "$B3")"),
  $(slc badip-1 badip '[{"name":"http","port":'$HP'}]' "$(eps "$B1")"),
  $(slc strport-1 strport '[{"name":"http","port":'$HP'}]' "$(eps "$B1")")
 ],
 "nodes": [],
 "watch": {
  "services": [
   {"type":"ADDED","object":$(svc late 10.96.100.20 '[{"name":"http","port":80}]')},
   {"type":"ADDED","object":{"kind":"Service","metadata":{"namespace":"default"},"spec":{"clusterIP":"10.96.100.21","ports":[{"port":80}]}}}
  ],
  "endpointslices": [
   {"type":"ADDED","object":$(slc late-1 late '[{"name":"http","port":'$HP'}]' "$(eps 999.1.1.1 "$B3")")},
   {"type":"MODIFIED","object":$(slc good-1 good '[{"name":"http","port":'$HP'}]' "$(eps "$B1" "$B2" "$B3" "10.244.13.2x")")}
  ]
 }
}
EOF
"$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/objects.json" || die "objects.json is not JSON"

FAKE_PORT=$API_PORT	# no rota-apiserver in this test
"$PY" "$RTOOL" fake-apiserver "$FAKE_PORT" "$TMP/objects.json" >"$TMP/fake.log" 2>&1 &
RD_PIDS+=("$!")
wait_until 10 curl -sf "http://127.0.0.1:$FAKE_PORT/readyz" || die "fake API server did not start"
export KUBECONFIG=$TMP/fake.kubeconfig
cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://127.0.0.1:$FAKE_PORT
users:
- name: u
  user:
    token: not-checked
contexts:
- name: fake
  context:
    cluster: fake
    user: u
current-context: fake
EOF

start_rotad --socket-lb off
wait_datapath
attach_veths h-cli h-b1 h-b2 h-b3
wait_synced || fail "rotad did not sync against the fake API server"
# The watch events arrive a few bytes at a time, after the list.
wait_until 10 svc_present "10.96.100.20:80/TCP"

log "maps"
wait_backends "good: all 3 endpoints" "10.96.100.10:80/TCP" "$(be "1 2 3" $HP)"
check "good: the MODIFIED slice with one bad address keeps its 3 good ones" backends_are "10.96.100.10:80/TCP" "$(be "1 2 3" $HP)"
check "badport: the valid port 80 is served by the one valid address b2" backends_are "10.96.100.11:80/TCP" "$(be 2 $HP)"
check "badproto: the UDP port is served" backends_are "10.96.100.12:53/UDP" "$(be "1 2 3" $UP)"
check "badproto: the FOO port is not" svc_absent "10.96.100.12:80/TCP"
check "late (watch event): served by its one valid address b3" backends_are "10.96.100.20:80/TCP" "$(be 3 $HP)"
fes=$(rota service list -o json | pyjq 'sorted(s["frontend"] for s in d)')
check "exactly these 4 frontends, nothing for badip, strport or the nameless Services (got $fes)" \
	[ "$fes" == '["10.96.100.10:80/TCP","10.96.100.11:80/TCP","10.96.100.12:53/UDP","10.96.100.20:80/TCP"]' ]

log "log lines"
L=$(cat "$ROTAD_LOG")
logged() { grep -qE "$1" <<<"$L"; }
check "service port 0: logged with default/badport and ports[0].port" logged 'service default/badport: ports\[0\]\.port 0 .*skipping'
check "service protocol FOO: logged with default/badproto and the protocol" logged 'service default/badproto: .*protocol "FOO".*skipping'
check "slice protocol FOO: logged with default/badproto-1 and the protocol" logged 'endpointslice default/badproto-1: .*protocol "FOO".*skipping'
check "slice port 0: logged with default/badport-1 and ports[1].port" logged 'endpointslice default/badport-1: ports\[1\]\.port 0 .*skipping'
check "slice address 10.244.11.300: logged with default/badport-1 and endpoints[0].addresses[0]" \
	logged 'endpointslice default/badport-1: endpoints\[0\]\.addresses\[0\] "10\.244\.11\.300".*skipping'
check "slice address not-an-ip: logged with endpoints[2].addresses[0]" \
	logged 'endpointslice default/badport-1: endpoints\[2\]\.addresses\[0\] "not-an-ip"'
check "watch event slice address 999.1.1.1: logged with default/late-1 and endpoints[0].addresses[0]" \
	logged 'endpointslice default/late-1: endpoints\[0\]\.addresses\[0\] "999\.1\.1\.1"'
check "MODIFIED slice address 10.244.13.2x: logged with default/good-1 and endpoints[3].addresses[0]" \
	logged 'endpointslice default/good-1: endpoints\[3\]\.addresses\[0\] "10\.244\.13\.2x"'
check "invalid clusterIP: logged with default/badip and spec.clusterIP" logged 'service default/badip: spec\.clusterIP "10\.96\.100\.300"'
check "port given as a string: logged with default/strport and ports[0].port" logged 'service default/strport: ports\[0\]\.port'
check "a Service event without metadata.name: logged" logged 'service event without metadata\.name'
n_warn=$(grep -cE 'skipping|ignored|is not' <<<"$L")
check "one line per problem, not one per sync ($n_warn lines for 11 problems)" [ "$n_warn" -eq 11 ]

log "traffic"
out=$(get_n 30 "10.96.100.10" cli)
assert_all_backends "tc: good answers from all 3 backends" "$out"
out=$(get_n 10 "10.96.100.11" cli)
check "tc: badport's valid port answers from b2 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == b2 ]
out=$(cli "$PY" "$TOOL" who udp 10.96.100.12 53 30)
assert_all_backends "tc: badproto's UDP port answers from all 3" "$out"
out=$(get_n 10 "10.96.100.20" cli)
check "tc: late answers from b3 ($(summary <<<"$out"))" [ "$(first_words <<<"$out")" == b3 ]
check "/healthz is 200" healthy
check "no failed sync (rota_sync_failures_total $(metric rota_sync_failures_total))" [ "$(metric rota_sync_failures_total)" == 0 ]
check "rota_services is 4 ($(metric rota_services))" [ "$(metric rota_services)" == 4 ]
check "rotad is still running" kill -0 "$ROTAD_PID"
check "the fake API server saw rotad's lists and watches" \
	grep -q 'GET /apis/discovery.k8s.io/v1/endpointslices?watch=1' "$TMP/fake.log"

log "a second rotad on the same machine"
# Its own bpffs dir and ports; it gets the list (the fake server sends the
# watch events to the first watcher only, so no "late").
BPFFS2=$BPFFS-2
E2E_DIRS+=("$BPFFS2")
read -r hz2 m2 <<<"$(free_ports 2)"
"$ROTAD_BIN" --kubeconfig "$KUBECONFIG" --bpffs-dir "$BPFFS2" --socket-lb off --node-name node2 \
	--healthz-bind "127.0.0.1:$hz2" --metrics-bind "127.0.0.1:$m2" >"$TMP/rotad2.log" 2>&1 &
ROTAD2=$!
RD_PIDS+=("$ROTAD2")
ok2() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hz2/healthz") == 200 ]]; }
wait_until 15 ok2
fes2=$("$ROTA_BIN" --bpffs-dir "$BPFFS2" service list -o json | pyjq 'sorted(s["frontend"] for s in d)')
check "the second rotad programs its own maps in $BPFFS2 (got $fes2)" \
	[ "$fes2" == '["10.96.100.10:80/TCP","10.96.100.11:80/TCP","10.96.100.12:53/UDP"]' ]
fes=$(rota service list -o json | pyjq 'sorted(s["frontend"] for s in d)')
check "the first rotad's maps are untouched (4 frontends: $fes)" \
	[ "$fes" == '["10.96.100.10:80/TCP","10.96.100.11:80/TCP","10.96.100.12:53/UDP","10.96.100.20:80/TCP"]' ]
kill -TERM "$ROTAD2"
wait "$ROTAD2"
"$ROTAD_BIN" --cleanup --bpffs-dir "$BPFFS2" >/dev/null 2>&1
check "rotad --cleanup of the second removes its directory only" [ ! -e "$BPFFS2" -a -e "$BPFFS/progs/rota_from_pod" ]
out=$(get_n 30 "10.96.100.10" cli)
assert_all_backends "tc: after the second is cleaned up, good still answers from all 3 backends" "$out"
check "the first rotad is still healthy" healthy

finish
