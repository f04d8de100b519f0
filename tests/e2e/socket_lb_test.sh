#!/usr/bin/env bash
# End-to-end: the socket-LB path. rota's cgroup programs on a cgroup v2
# directory of this test's own; clients run in the client netns from inside
# that cgroup. No tc program is attached until the last section, so a VIP
# that socket LB failed to translate goes nowhere (the node has no route
# for it); the last section adds the tc path and detaches socket LB.
source "$(dirname "$0")/lib.sh"

require_env
setup_topology
start_backends
rota_load
make_cgroup

VIP=10.96.0.10
B_HTTP=("${B_ADDR[1]}:$HTTP_PORT" "${B_ADDR[2]}:$HTTP_PORT" "${B_ADDR[3]}:$HTTP_PORT")
B_UDP=("${B_ADDR[1]}:$UDP_PORT" "${B_ADDR[2]}:$UDP_PORT" "${B_ADDR[3]}:$UDP_PORT")
B_ECHO=("${B_ADDR[1]}:$ECHO_PORT" "${B_ADDR[2]}:$ECHO_PORT" "${B_ADDR[3]}:$ECHO_PORT")
cg() { in_cg "$NS_CLI" "$@"; }

# ---- 2. ClusterIP over TCP and UDP reaches every backend
log "2. TCP and UDP ClusterIP, random choice"
rota service add "$VIP:80/TCP" "${B_HTTP[@]}" || die "service add"
rota service add "$VIP:53/UDP" "${B_UDP[@]}" || die "service add"
rota service add "$VIP:7000/TCP" "${B_ECHO[@]}" || die "service add"
stats0=$(rota stats -o json)

out=$(in_ns "$NS_CLI" curl -s --max-time 1 "http://$VIP/")
rc=$?
check "sock: the same curl from outside the cgroup is not translated (exit $rc, want non-zero)" [ "$rc" -ne 0 ]

out=$(http_n 30 "http://$VIP/" cg)
assert_all_backends "sock: 30 curls to $VIP:80 from the cgroup reach all 3 backends" "$out"

out=$(cg "$PY" "$TOOL" who udp "$VIP" 53 30)
assert_all_backends "sock: 30 UDP datagrams to $VIP:53 reach all 3 backends" "$out"
srcs=$(awk '{print $2}' <<<"$out" | sort -u | tr '\n' ' ')
check "sock: recvfrom() shows the VIP $VIP:53 as the source of every reply (saw: $srcs)" [ "$srcs" == "$VIP:53 " ]

check "sock: every UDP echo came back intact" [ "$(awk '{print $3}' <<<"$out" | sort -u)" == ok ]
out=$(cg "$PY" "$TOOL" udp-same "$VIP" 53 10)
assert_one_backend "sock: 10 datagrams from one unconnected UDP socket stay on one backend" "$out"
out=$(cg "$PY" "$TOOL" who udp "$VIP" 53 4 4000)
check "sock: 4000-byte UDP datagrams echo intact from the VIP ($(awk '{print $1, $2, $3}' <<<"$out" | sort | uniq -c | tr -s ' \n' ' '))" \
	[ "$(awk '{print $2, $3}' <<<"$out" | sort -u)" == "$VIP:53 ok" -a "$(wc -l <<<"$out")" -eq 4 ]
big_download_test "sock" in_cg "$NS_CLI" "http://$VIP/big.bin"
out=$(cg "$PY" "$TOOL" who tcp "$VIP" 7000 10)
peers=$(awk '{print $3}' <<<"$out" | sort -u | tr '\n' ' ')
seen_by=$(awk '{print $2}' <<<"$out" | sort -u | tr '\n' ' ')
check "sock: getpeername() of a TCP connection to the VIP is $VIP:7000 (saw: $peers)" [ "$peers" == "$VIP:7000 " ]
check "sock: backends see the real client address $CLI_ADDR (saw: $seen_by)" [ "$seen_by" == "$CLI_ADDR " ]

out=$(cg "$PY" "$TOOL" udp-connected "$VIP" 53)
check "sock: a connected UDP socket to the VIP gets an answer (got: $out)" grep -qxE 'b[123]' <<<"$out"

stats1=$(rota stats -o json)
assert_stat_moved "sock: stats counters moved" "$stats0" "$stats1" socket_translated socket_reverse
ct_n=$(rota conntrack list -o json | pyjq 'len(d)')
check "sock: socket LB needs no conntrack (entries: $ct_n)" [ "$ct_n" == 0 ]

# ---- 3. deleting a backend (random choice)
log "3. backend deletion with a long-lived connection"
long_lived_test "sock random" in_cg "$NS_CLI" 10.96.0.30 7000 delete

long_lived_test "sock scale to zero" in_cg "$NS_CLI" 10.96.0.33 7000 empty

# ---- 5. Maglev
log "5. Maglev"
rota service add 10.96.0.11:80/TCP "${B_HTTP[@]}" --maglev || die "service add"
out=$(http_n 30 "http://10.96.0.11/" cg)
assert_all_backends "sock maglev: 30 curls reach all 3 backends" "$out"
long_lived_test "sock maglev" in_cg "$NS_CLI" 10.96.0.31 7000 delete --maglev

# ---- 4. session affinity (per client netns)
log "4. session affinity"
rota service add 10.96.0.12:80/TCP "${B_HTTP[@]}" --affinity 60 || die "service add"
s0=$(rota stats -o json)
out=$(http_n 20 "http://10.96.0.12/" cg)
assert_one_backend "sock affinity: 20 curls from one client hit one backend" "$out"
assert_stat_moved "sock affinity: affinity_hit counter moved" "$s0" "$(rota stats -o json)" affinity_hit
rota service add 10.96.0.12:53/UDP "${B_UDP[@]}" --affinity 60 || die "service add"
out=$(cg "$PY" "$TOOL" who udp 10.96.0.12 53 20)
assert_one_backend "sock affinity: 20 UDP sockets from one client hit one backend" "$out"
affinity_repick_test "sock affinity" in_cg "$NS_CLI" 10.96.0.15

# ---- 8. terminating backend
log "8. terminating backend"
rota service add 10.96.0.14:80/TCP "${B_HTTP[0]}" "${B_HTTP[1]}" --terminating "${B_HTTP[2]}" || die "service add"
out=$(http_n 30 "http://10.96.0.14/" cg)
seen=$(first_words <<<"$out")
check "sock terminating: 30 curls reach b1 and b2, never the terminating b3 (saw: $(summary <<<"$out"))" [ "$seen" == "b1 b2" ]
long_lived_test "sock terminating" in_cg "$NS_CLI" 10.96.0.32 7000 terminate

# ---- 6. endpoint-less service
log "6. service without endpoints"
rota service add 10.96.0.99:80/TCP || die "service add"
rota service add 10.96.0.99:53/UDP || die "service add"
s0=$(rota stats -o json)
start=$EPOCHREALTIME
cg curl -s --max-time 3 http://10.96.0.99/ >/dev/null 2>&1
rc=$?
ms=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
check "sock no endpoints: curl is refused at connect() (exit $rc, want 7) in ${ms} ms (want < 1000)" [ "$rc" -eq 7 -a "$ms" -lt 1000 ]
out=$(cg "$PY" "$TOOL" udp-connected 10.96.0.99 53)
check "sock no endpoints: UDP connect() gets ECONNREFUSED (got: $out)" [ "$out" == "ERR ECONNREFUSED" ]
out=$(cg "$PY" "$TOOL" who udp 10.96.0.99 53 1)
check "sock no endpoints: UDP sendto() gets ECONNREFUSED (got: $out)" [ "$out" == "ERR ECONNREFUSED" ]
assert_stat_moved "sock no endpoints: rejected_no_backend counter moved" "$s0" "$(rota stats -o json)" rejected_no_backend

# ---- ICMP errors from a backend (the socket talks to the backend itself)
rota service add 10.96.0.40:53/UDP "${B_ADDR[1]}:5999" || die "service add"
out=$(cg "$PY" "$TOOL" udp-connected 10.96.0.40 53)
check "sock: ICMP port-unreachable from a backend with no UDP listener gives ECONNREFUSED (got: $out)" \
	[ "$out" == "ERR ECONNREFUSED" ]

# ---- reload, detach, and both paths at once
log "reload, detach, both paths"
before=$(rota service list -o json)
rota load >/dev/null || fail "rota load again"
check "sock: rota load on a loaded datapath (an upgrade) keeps every service" [ "$before" == "$(rota service list -o json)" ]
out=$(http_n 10 "http://$VIP/" cg)
check "sock: after the reload, 10 curls from the cgroup are answered by backends ($(summary <<<"$out"))" \
	[ -z "$(grep -v '^b[123]$' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 10 ]
attach_veths h-cli h-b1 h-b2 h-b3
s0=$(rota stats -o json)
out=$(http_n 10 "http://$VIP/" cg)
check "sock: with the tc programs attached too, 10 curls from the cgroup are answered ($(summary <<<"$out"))" \
	[ -z "$(grep -v '^b[123]$' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 10 ]
s1=$(rota stats -o json)
check "sock: ... translated once, by socket LB only (no new conntrack flow: ct_new $(stat_packets "$s0" ct_new)→$(stat_packets "$s1" ct_new))" \
	[ "$(stat_packets "$s0" ct_new)" == "$(stat_packets "$s1" ct_new)" ]
rota detach cgroup "$CG" || fail "rota detach cgroup"
n=$(bpftool -j cgroup show "$CG" | pyjq 'len(d or [])')
check "sock: detach cgroup removes its 4 programs (left: $n)" [ "$n" == 0 ]
out=$(http_n 3 "http://$VIP/" cg)
check "sock: detached, the cgroup's connections are translated by the tc path instead ($(summary <<<"$out"))" \
	[ -z "$(grep -v '^b[123]$' <<<"$out")" -a "$(wc -l <<<"$out")" -eq 3 ]

finish
