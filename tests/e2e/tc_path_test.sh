#!/usr/bin/env bash
# End-to-end: the tc path. rota's tc programs on the node-side veths of a
# client and 3 backends; the client is in no socket-LB cgroup, so every
# translation happens per packet on the veths. Real servers (busybox
# httpd, a UDP echo, a TCP greeter/echo) in the backend namespaces.
# IP fragments have their own script, fragments_test.sh.
source "$(dirname "$0")/lib.sh"

require_env
setup_topology
start_backends
rota_load
attach_veths h-cli h-b1 h-b2 h-b3

VIP=10.96.0.10
B_HTTP=("${B_ADDR[1]}:$HTTP_PORT" "${B_ADDR[2]}:$HTTP_PORT" "${B_ADDR[3]}:$HTTP_PORT")
B_UDP=("${B_ADDR[1]}:$UDP_PORT" "${B_ADDR[2]}:$UDP_PORT" "${B_ADDR[3]}:$UDP_PORT")
B_ECHO=("${B_ADDR[1]}:$ECHO_PORT" "${B_ADDR[2]}:$ECHO_PORT" "${B_ADDR[3]}:$ECHO_PORT")
cli() { in_ns "$NS_CLI" "$@"; }

# ---- 1. ClusterIP over TCP and UDP reaches every backend
log "1. TCP and UDP ClusterIP, random choice"
rota service add "$VIP:80/TCP" "${B_HTTP[@]}" || die "service add"
rota service add "$VIP:53/UDP" "${B_UDP[@]}" || die "service add"
rota service add "$VIP:7000/TCP" "${B_ECHO[@]}" || die "service add"
stats0=$(rota stats -o json)

out=$(http_n 30 "http://$VIP/" cli)
assert_all_backends "tc: 30 curls to $VIP:80 reach all 3 backends" "$out"

out=$(cli "$PY" "$TOOL" who udp "$VIP" 53 30)
assert_all_backends "tc: 30 UDP datagrams to $VIP:53 reach all 3 backends" "$out"
srcs=$(awk '{print $2}' <<<"$out" | sort -u | tr '\n' ' ')
check "tc: every UDP reply comes from the VIP $VIP:53 (saw: $srcs)" [ "$srcs" == "$VIP:53 " ]
check "tc: every UDP echo came back intact" [ "$(awk '{print $3}' <<<"$out" | sort -u)" == ok ]
out=$(cli "$PY" "$TOOL" udp-same "$VIP" 53 10)
assert_one_backend "tc: 10 datagrams from one UDP socket (one flow) stay on one backend" "$out"
out=$(cli "$PY" "$TOOL" udp-connected "$VIP" 53)
check "tc: a connected UDP socket to the VIP gets an answer (got: $out)" grep -qxE 'b[123]' <<<"$out"

big_download_test "tc" in_ns "$NS_CLI" "http://$VIP/big.bin"
# Each connection is reset, so the next SYN reuses a closed flow's tuple:
# a new flow, balanced anew (all 10 on one backend: p = 3^-9).
out=$(cli "$PY" "$TOOL" reuse "$VIP" 7000 40123 10)
check "tc: 10 TCP connections in a row from one client port (each reusing the reset one's tuple) answered and balanced anew ($(summary <<<"$out"))" \
	[ -z "$(grep -v '^b[123]$' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 10 -a "$(sort -u <<<"$out" | wc -l)" -ge 2 ]
out=$(cli curl -s --max-time 2 "http://${B_ADDR[2]}:$HTTP_PORT/")
check "tc: traffic straight to a backend address passes untouched (got: $out)" [ "$out" == b2 ]
out=$(cli "$PY" "$TOOL" who tcp "$VIP" 7000 10)
peers=$(awk '{print $3}' <<<"$out" | sort -u | tr '\n' ' ')
seen_by=$(awk '{print $2}' <<<"$out" | sort -u | tr '\n' ' ')
check "tc: getpeername() of a TCP connection to the VIP is $VIP:7000 (saw: $peers)" [ "$peers" == "$VIP:7000 " ]
check "tc: backends see the real client address $CLI_ADDR (saw: $seen_by)" [ "$seen_by" == "$CLI_ADDR " ]

svc=$(rota service list -o json | pyjq '[[s["mode"], s["affinityTimeoutSeconds"],
	sorted("%s:%d/%s" % (b["address"], b["port"], b["state"]) for b in s["backends"])] for s in d if s["frontend"] == f]' f="$VIP:80/TCP")
check "tc: service list -o json shows $VIP:80/TCP with its 3 active backends (got: $svc)" \
	[ "$svc" == '[["random",0,["10.244.11.2:8080/active","10.244.12.2:8080/active","10.244.13.2:8080/active"]]]' ]

# ---- 10. conntrack and stats
log "10. conntrack list -o json, stats"
stats1=$(rota stats -o json)
assert_stat_moved "tc: stats counters moved" "$stats0" "$stats1" ct_new ct_hit translated_forward translated_reply
ct=$(rota conntrack list -o json)
ct_type=$(pyjq 'type(d).__name__' <<<"$ct" 2>/dev/null)
check "tc: conntrack list -o json is a JSON array (got: ${ct_type:-invalid})" [ "$ct_type" == list ]
# ctq PYTHON_CONDITION: how many entries of $ct satisfy it (e: the entry).
ctq() { pyjq "len([e for e in d if $1])" vip="$VIP" cli="$CLI_ADDR" <<<"$ct"; }
n_fwd=$(ctq 'e["protocol"] == "TCP" and e["direction"] == "fwd" and e["destination"] == vip + ":80"
	and e["source"].startswith(cli + ":") and e["nat"].endswith(":8080") and e["packets"] > 0 and e["bytes"] > 0')
n_rev=$(ctq 'e["protocol"] == "TCP" and e["direction"] == "reply" and e["nat"] == vip + ":80"
	and e["destination"].startswith(cli + ":") and e["source"].endswith(":8080") and e["packets"] > 0 and e["bytes"] > 0')
n_udp=$(ctq 'e["protocol"] == "UDP" and e["direction"] == "fwd" and e["destination"] == vip + ":53"
	and e["packets"] > 0 and e["bytes"] > 0')
n_backends=$(pyjq 'len({e["nat"] for e in d if e["direction"] == "fwd" and e["destination"] == vip + ":80"})' vip="$VIP" <<<"$ct")
check "tc: conntrack holds the 30 HTTP flows forward with counters (found $n_fwd)" [ "$n_fwd" -ge 30 ]
check "tc: conntrack holds the 30 HTTP flows' reply direction with counters (found $n_rev)" [ "$n_rev" -ge 30 ]
check "tc: conntrack holds the 30 UDP flows with counters (found $n_udp)" [ "$n_udp" -ge 30 ]
check "tc: conntrack forward entries NAT to 3 distinct backends (found $n_backends)" [ "$n_backends" -eq 3 ]
n_est=$(ctq 'e["direction"] == "fwd" and e["destination"] == vip + ":80" and e["state"] != "new"')
check "tc: answered HTTP flows left the NEW state ($n_est of $n_fwd)" [ "$n_est" -eq "$n_fwd" ]
# gc: entries expired before it are gone after it; live UDP flows (60 s
# idle timeout) are all kept.
ct1=$(rota conntrack list -o json)
gc=$(rota conntrack gc -o json | pyjq 'd["removed"]')
ct2=$(rota conntrack list -o json)
K='" ".join([e["protocol"], e["direction"], e["source"], e["destination"]])'
expired1=$(pyjq "sorted($K for e in d if e['expired'])" <<<"$ct1")
live_udp1=$(pyjq "sorted($K for e in d if e['protocol'] == 'UDP' and not e['expired'])" <<<"$ct1")
left=$(pyjq "len([e for e in d if $K in json.loads(s)])" s="$expired1" <<<"$ct2")
kept=$(pyjq "len([e for e in d if $K in json.loads(s)])" s="$live_udp1" <<<"$ct2")
n_exp=$(pyjq 'len(d)' <<<"$expired1")
n_udp=$(pyjq 'len(d)' <<<"$live_udp1")
check "tc: conntrack gc removed $gc entries; none of the $n_exp expired ones is left (left: $left)" \
	[ "$gc" -ge "$n_exp" -a "$left" == 0 ]
check "tc: conntrack gc kept every live UDP entry ($kept of $n_udp)" [ "$n_udp" -gt 0 -a "$kept" == "$n_udp" ]

# ---- 3. deleting a backend (random choice)
log "3. backend deletion with a long-lived connection"
long_lived_test "tc random" in_ns "$NS_CLI" 10.96.0.30 7000 delete

long_lived_test "tc scale to zero" in_ns "$NS_CLI" 10.96.0.33 7000 empty

# ---- 5. Maglev
log "5. Maglev"
rota service add 10.96.0.11:80/TCP "${B_HTTP[@]}" --maglev || die "service add"
out=$(http_n 30 "http://10.96.0.11/" cli)
assert_all_backends "tc maglev: 30 curls reach all 3 backends" "$out"
long_lived_test "tc maglev" in_ns "$NS_CLI" 10.96.0.31 7000 delete --maglev

# ---- 4. ClientIP affinity
log "4. session affinity"
rota service add 10.96.0.12:80/TCP "${B_HTTP[@]}" --affinity 60 || die "service add"
s0=$(rota stats -o json)
out=$(http_n 20 "http://10.96.0.12/" cli)
assert_one_backend "tc affinity: 20 curls from one client hit one backend" "$out"
assert_stat_moved "tc affinity: affinity_hit counter moved" "$s0" "$(rota stats -o json)" affinity_hit
rota service add 10.96.0.13:80/TCP "${B_HTTP[@]}" --affinity 60 --maglev || die "service add"
out=$(http_n 20 "http://10.96.0.13/" cli)
assert_one_backend "tc affinity+maglev: 20 curls from one client hit one backend" "$out"
affinity_repick_test "tc affinity" in_ns "$NS_CLI" 10.96.0.15

# ---- 8. terminating backend
log "8. terminating backend"
rota service add 10.96.0.14:80/TCP "${B_HTTP[0]}" "${B_HTTP[1]}" --terminating "${B_HTTP[2]}" || die "service add"
out=$(http_n 30 "http://10.96.0.14/" cli)
seen=$(first_words <<<"$out")
check "tc terminating: 30 curls reach b1 and b2, never the terminating b3 (saw: $(summary <<<"$out"))" [ "$seen" == "b1 b2" ]
long_lived_test "tc terminating" in_ns "$NS_CLI" 10.96.0.32 7000 terminate

# ---- 6. endpoint-less service
log "6. service without endpoints"
rota service add 10.96.0.99:80/TCP || die "service add"
rota service add 10.96.0.99:53/UDP || die "service add"
s0=$(rota stats -o json)
start=$EPOCHREALTIME
cli curl -s --max-time 3 http://10.96.0.99/ >/dev/null 2>&1
rc=$?
ms=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
check "tc no endpoints: curl is refused (exit $rc, want 7) in ${ms} ms (want < 1000)" [ "$rc" -eq 7 -a "$ms" -lt 1000 ]
out=$(cli "$PY" "$TOOL" udp-connected 10.96.0.99 53)
check "tc no endpoints: connected UDP socket gets ECONNREFUSED (got: $out)" [ "$out" == "ERR ECONNREFUSED" ]
assert_stat_moved "tc no endpoints: rejected_no_backend counter moved" "$s0" "$(rota stats -o json)" rejected_no_backend

# ---- ICMP errors and resets from a backend, translated back
log "errors from the backend"
rota service add 10.96.0.40:53/UDP "${B_ADDR[1]}:5999" || die "service add"
rota service add 10.96.0.40:80/TCP "${B_ADDR[1]}:5998" || die "service add"
s0=$(rota stats -o json)
out=$(cli "$PY" "$TOOL" udp-connected 10.96.0.40 53)
check "tc: ICMP port-unreachable from a backend with no UDP listener reaches the client as ECONNREFUSED (got: $out)" \
	[ "$out" == "ERR ECONNREFUSED" ]
assert_stat_moved "tc: translated_icmp_error counter moved" "$s0" "$(rota stats -o json)" translated_icmp_error
cli curl -s --max-time 2 http://10.96.0.40/ >/dev/null 2>&1
rc=$?
check "tc: a TCP reset from a backend with no listener reaches the client (curl exit $rc, want 7)" [ "$rc" -eq 7 ]

# ---- 7. hairpin
log "7. hairpin"
rota service add 10.96.0.20:80/TCP "${B_HTTP[0]}" || die "service add"
rota service add 10.96.0.20:7000/TCP "${B_ECHO[0]}" || die "service add"
s0=$(rota stats -o json)
out=$(http_n 5 "http://10.96.0.20/" in_ns "${NS_B[1]}")
check "tc hairpin: b1 curls a ClusterIP whose only backend is b1 and gets its own page ($(summary <<<"$out"))" \
	[ "$(first_words <<<"$out")" == b1 -a "$(wc -l <<<"$out")" -eq 5 ]
out=$(in_ns "${NS_B[1]}" "$PY" "$TOOL" who tcp 10.96.0.20 7000 1)
check "tc hairpin: b1 sees itself as $HAIRPIN_ADDR and its peer as the VIP (got: $out)" \
	[ "$out" == "b1 $HAIRPIN_ADDR 10.96.0.20:7000" ]
rota service add 10.96.0.20:53/UDP "${B_UDP[0]}" || die "service add"
out=$(in_ns "${NS_B[1]}" "$PY" "$TOOL" who udp 10.96.0.20 53 3)
check "tc hairpin: b1's UDP to a ClusterIP backed by itself is answered from the VIP (got: $(sort -u <<<"$out"))" \
	[ "$(sort -u <<<"$out")" == "b1 10.96.0.20:53 ok" -a "$(wc -l <<<"$out")" -eq 3 ]
assert_stat_moved "tc hairpin: hairpin counter moved" "$s0" "$(rota stats -o json)" hairpin
n=$(rota conntrack list -o json |
	pyjq 'len([e for e in d if e["hairpin"] and e["direction"] == "fwd" and e["destination"] == "10.96.0.20:80"])')
check "tc hairpin: conntrack marks the hairpinned flows (found $n)" [ "$n" -ge 5 ]
out=$(http_n 30 "http://$VIP/" in_ns "${NS_B[1]}")
assert_all_backends "tc hairpin: b1 curling a ClusterIP of all 3 backends reaches all of them, itself included" "$out"

# ---- reload and detach
log "reload, detach, attach"
before=$(rota service list -o json)
rota load >/dev/null || fail "rota load again"
after=$(rota service list -o json)
check "tc: rota load on a loaded datapath (an upgrade) keeps every service" [ "$before" == "$after" ]
out=$(http_n 10 "http://$VIP/" cli)
check "tc: after the reload, 10 curls are answered by backends ($(summary <<<"$out"))" \
	[ -z "$(grep -v '^b[123]$' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 10 ]
rota_node detach veth h-cli || fail "rota detach veth h-cli"
links=("$BPFFS"/links/*)
n=${#links[@]}
check "tc: detach veth h-cli unpins its 2 links (6 of 8 left: $n)" [ "$n" -eq 6 ]
cli curl -s --max-time 1 "http://$VIP/" >/dev/null 2>&1
rc=$?
check "tc: with h-cli detached the VIP is no longer translated (curl exit $rc, want non-zero)" [ "$rc" -ne 0 ]
rota_node attach veth h-cli || fail "rota attach veth h-cli"
out=$(cli curl -s --max-time 2 "http://$VIP/")
check "tc: attached again, the VIP answers (got: $out)" grep -qxE 'b[123]' <<<"$out"

finish
