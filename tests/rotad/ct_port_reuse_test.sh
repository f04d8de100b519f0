#!/usr/bin/env bash
# End-to-end: a pod that talks to a Service through the tc path and then, from
# the same source port, straight to the backend it got (a direct pod-IP
# connection, or a socket-LB connection, which leaves the pod already
# translated). The kernel may hand out that port again at once: the two
# connections have different 4-tuples. The second connection must work, for
# TCP and for UDP.
#
# The tc path's reply entry of the first flow (backend:port → client:port)
# also matches the replies of the direct connection; left alone, rota_to_pod
# would rewrite them to come from the VIP and the client would never see its
# SYN-ACK or UDP answer. from_pod therefore lets the direct flow's first
# packet (SYN, or any UDP datagram) replace the older flow's entries.
source "$(dirname "$0")/lib.sh"

require_rotad_env
setup_topology
start_backends
make_plain_cgroup
start_apiserver
start_rotad --socket-lb on
wait_datapath
attach_veths h-cli h-b1 h-b2 h-b3
wait_synced || fail "rotad did not sync"
cli() { in_ns "$NS_CLI" "$@"; }
cg() { in_cg "$NS_CLI" "$@"; }
EP=$ECHO_PORT

# One endpoint, so the VIP flow and the direct one meet the same backend.
kapply service solo echo:7000,dns:53/UDP || die "service solo"
kapply slice solo-1 solo "echo:$EP,dns:$UDP_PORT/UDP" "${B_ADDR[1]}" || die "slice solo-1"
VIP=$(vip_of solo)
wait_backends "solo programmed" "$VIP:7000/TCP" "$(be 1 $EP)"
wait_backends "solo programmed (UDP)" "$VIP:53/UDP" "$(be 1 "$UDP_PORT")"

P=$((40000 + RANDOM % 10000))
out=$(cli "$PY" "$RTOOL" connect-from "$P" "$VIP" 7000)
check "tc: port $P → $VIP:7000 reaches b1 (got: $out)" [ "$out" == b1 ]
out=$(cli "$PY" "$RTOOL" connect-from "$P" "${B_ADDR[1]}" "$EP")
check "tc: port $P → ${B_ADDR[1]}:$EP directly, right after: answered (got: $out)" [ "$out" == b1 ]
out=$(cli "$PY" "$RTOOL" connect-from "$((P + 1))" "${B_ADDR[1]}" "$EP")
check "control: from another port the direct connection works (got: $out)" [ "$out" == b1 ]

P=$((P + 2))
out=$(cli "$PY" "$RTOOL" connect-from "$P" "$VIP" 7000)
check "tc: port $P → $VIP:7000 reaches b1 (got: $out)" [ "$out" == b1 ]
out=$(cg "$PY" "$RTOOL" connect-from "$P" "$VIP" 7000)
check "socket LB, same pod, same port $P, right after: answered (got: $out)" [ "$out" == b1 ]

# UDP: the same with a connected socket (the REPLY entry lives 60 s, and
# every rewritten reply refreshes it).
P=$((P + 2))
out=$(cli "$PY" "$RTOOL" udp-from "$P" "$VIP" 53)
check "tc: UDP port $P → $VIP:53 answered by b1 (got: $out)" [ "$out" == b1 ]
out=$(cli "$PY" "$RTOOL" udp-from "$P" "${B_ADDR[1]}" "$UDP_PORT")
check "tc: UDP port $P → ${B_ADDR[1]}:$UDP_PORT directly, right after: answered (got: $out)" [ "$out" == b1 ]
out=$(cli "$PY" "$RTOOL" udp-from "$((P + 1))" "${B_ADDR[1]}" "$UDP_PORT")
check "control: from another port the direct UDP exchange works (got: $out)" [ "$out" == b1 ]
rota conntrack list | sed 's/^/    /'

finish
