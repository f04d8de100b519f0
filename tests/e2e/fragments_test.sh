#!/usr/bin/env bash
# End-to-end: IP fragments on the tc path. 4000-byte UDP datagrams leave
# the client (and come back from the backend) as 3 fragments each; only the
# first carries the ports, the others must follow its translation. The
# datagram is echoed whole, so the client checks both directions.
source "$(dirname "$0")/lib.sh"

require_env
setup_topology
start_backends
rota_load

VIP=10.96.0.10
# big N ADDR PORT [RUNNER...]: N 4000-byte echoes; "ok" when every reply
# came back intact from ADDR:PORT.
big() {
	local n=$1 addr=$2 port=$3 out
	shift 3
	out=$("${@:-in_ns}" "$PY" "$TOOL" who udp "$addr" "$port" "$n" 4000)
	if [[ $(awk '{print $2, $3}' <<<"$out" | sort -u) == "$addr:$port ok" && $(wc -l <<<"$out") -eq $n ]]; then
		echo ok
	else
		awk '{print $1, $2, $3}' <<<"$out" | sort | uniq -c | tr -s ' \n' ' '
	fi
}

rota service add "$VIP:53/UDP" "${B_ADDR[1]}:$UDP_PORT" "${B_ADDR[2]}:$UDP_PORT" || die "service add"
rota service add 10.96.0.20:53/UDP "${B_ADDR[1]}:$UDP_PORT" || die "service add"

# Control: rota only on the client's veth. Reply fragments meet rota once,
# on their way into the client.
attach_veths h-cli
got=$(big 3 "$VIP" 53 in_ns "$NS_CLI")
check "frag, rota on the client's veth only: 3 fragmented UDP echoes via the VIP intact (got: $got)" [ "$got" == ok ]

# A node: rota on every pod's veth. Reply fragments first leave the
# backend through its veth's from-pod program, then enter the client.
attach_veths h-b1 h-b2 h-b3
s0=$(rota stats -o json)
got=$(big 3 "$VIP" 53 in_ns "$NS_CLI")
check "frag, rota on every veth: 3 fragmented UDP echoes via the VIP intact (got: $got)" [ "$got" == ok ]
s1=$(rota stats -o json)
fwd=$(($(stat_packets "$s1" translated_forward) - $(stat_packets "$s0" translated_forward)))
rev=$(($(stat_packets "$s1" translated_reply) - $(stat_packets "$s0" translated_reply)))
check "frag: each of the 3×3 fragments translated once each way (translated_forward +$fwd, translated_reply +$rev; want +9, +9)" \
	[ "$fwd" -eq 9 -a "$rev" -eq 9 ]
got=$(big 2 "${B_ADDR[3]}" "$UDP_PORT" in_ns "$NS_CLI")
check "frag: fragmented UDP straight to a backend address (no service) passes untouched (got: $got)" [ "$got" == ok ]

# Hairpin: b1 to a ClusterIP whose only backend is b1.
got=$(big 2 10.96.0.20 53 in_ns "${NS_B[1]}")
check "frag hairpin: b1's fragmented UDP to its own ClusterIP echoes intact from the VIP (got: $got)" [ "$got" == ok ]

finish
