#!/usr/bin/env bash
# GC of what no attachment record covers any more: a host veth of this
# network whose record was lost while its pod still runs, the tc link pins
# and endpoint entry of a veth that vanished with its netns after its record
# was lost, and a veth whose alias names only the network (container ID too
# long to fit). Left alone: the valid pod, a pod of another rota network on
# the same node, and a foreign veth with a rota-like name.
T_NAME_PREFIX=cnx
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
setup_node
NET=gcn
CONF=$TMP/$NET.conflist
write_conflist "$CONF" "$NET"
# Another rota network on the node (its own pool), and one whose name is
# long enough that an alias cannot also hold a 200-character container ID.
POD_NET_B=$POD_NET
while [[ $POD_NET_B == "$POD_NET" ]]; do POD_NET_B="10.$((100 + RANDOM % 100)).$((RANDOM % 256))"; done
NET_B=gco
CONF_B=$TMP/$NET_B.conflist
write_conflist "$CONF_B" "$NET_B" "{\"type\": \"rota-ipam\", \"subnet\": \"$POD_NET_B.0/25\"}"
NET_L=gc-long-$(printf 'n%.0s' $(seq 37))
CONF_L=$TMP/long.conflist
write_conflist "$CONF_L" "$NET_L" "{\"type\": \"rota-ipam\", \"subnet\": \"$POD_NET_B.128/25\"}"
CID_L=c$(printf '%.0s5' $(seq 199))

declare -A IP HOST IFX
for spec in "$CONF c1 p1" "$CONF c2 p2" "$CONF c3 p3" "$CONF_B cb pb" "$CONF_L $CID_L pl"; do
	read -r conf cid pod <<<"$spec"
	new_netns "$T_PREFIX-$pod"
	res=$(cni add "$conf" "$cid" "/run/netns/$T_PREFIX-$pod" eth0) || fail "ADD $cid: $res"
	IP[$pod]=$(pod_ip "$res")
	HOST[$pod]=$(pyjq 'd["interfaces"][0]["name"]' <<<"$res")
	IFX[$pod]=$(ip -n "$NS_NODE" -o link show "${HOST[$pod]}" | cut -d: -f1)
done
alias_l=$(ip -n "$NS_NODE" -d link show "${HOST[pl]}" | awk '$1 == "alias" {$1 = ""; print substr($0, 2)}')
check "the long network's veth alias names only the network (\"${alias_l:0:40}…\")" [ "$alias_l" == "rota-cni $NET_L" ]
alias_1=$(ip -n "$NS_NODE" -d link show "${HOST[p1]}" | awk '$1 == "alias" {$1 = ""; print substr($0, 2)}')
check "a veth alias names network, container and interface ($alias_1)" [ "$alias_1" == "rota-cni $NET c1 eth0" ]
# A veth that merely looks like rota's (no alias): not ours to judge.
FOREIGN=rota0123456789a
ip -n "$NS_NODE" link add "$FOREIGN" type veth peer name cnx-foreign || fail "foreign veth"

# The records of c2 and c3 are lost, and the runtime has forgotten both;
# c3's pod netns goes too, taking its veth (the pins and entry stay).
rm -f "$STATE/$NET/attachments/c2_eth0" "$STATE/$NET/attachments/c3_eth0" \
	"$CACHE/results/$NET-c2-eth0" "$CACHE/results/$NET-c3-eth0"
rm -f "$STATE/$NET_L/attachments/${CID_L}_eth0" "$CACHE/results/$NET_L-$CID_L-eth0"
ip netns del "$T_PREFIX-p3"
for _ in $(seq 50); do ip -n "$NS_NODE" link show "${HOST[p3]}" >/dev/null 2>&1 || break; sleep 0.1; done
pins() { ls "$BPFFS/links" | grep -c "^if$1-" || true; }
entry() { quiet bpftool map lookup pinned "$BPFFS/rota_endpoints4" key $(tr . ' ' <<<"$1"); }
# intact POD: its veth, both link pins and its endpoint entry are there.
intact() { quiet ip -n "$NS_NODE" link show "${HOST[$1]}" && [ "$(pins "${IFX[$1]}")" -eq 2 ] && entry "${IP[$1]}"; }
# gone POD: its veth, link pins and endpoint entry are all gone.
gone() { not quiet ip -n "$NS_NODE" link show "${HOST[$1]}" && [ "$(pins "${IFX[$1]}")" -eq 0 ] && not entry "${IP[$1]}"; }
leftovers() { [ "$(pins "${IFX[p3]}")" -eq 2 ] && entry "${IP[p3]}"; }
check "before GC: c3's 2 link pins and its endpoint entry outlive its veth" leftovers

gc_conf() { # gc_conf CONFLIST VALID_JSON: the plugin's GC config as libcni builds it
	pyjq 'dict(d["plugins"][0], name=d["name"], cniVersion="1.1.0", **{"cni.dev/valid-attachments": '"$2"'})' <"$1"
}
out=$(plugin GC "$(gc_conf "$CONF" '[{"containerID": "c1", "ifname": "eth0"}]')")
check "GC of $NET with only c1 valid succeeds (rc $?, $out)" [ -z "$out" ]
check "c2 (no record, pod running): host veth ${HOST[p2]}, link pins, endpoint entry gone" gone p2
check "... and with the veth eth0 in c2's pod" not quiet ip -n "$T_PREFIX-p2" link show eth0
check "... and ${IP[p2]} is released" [ ! -e "$STATE/$NET/ipam/${IP[p2]}" ]
check "c3 (veth gone with its netns): the defunct link pins are unpinned" [ "$(pins "${IFX[p3]}")" -eq 0 ]
check "... its endpoint entry ${IP[p3]} is removed" not entry "${IP[p3]}"
check "... and ${IP[p3]} is released" [ ! -e "$STATE/$NET/ipam/${IP[p3]}" ]
check "the log names the unrecorded attachment c2/eth0 it removed" grep -q "removed attachment c2/eth0 (${HOST[p2]}, no record)" "$TMP/rota-cni.log"
check "valid c1 keeps its veth, pins and entry" intact p1
check "... and its address ${IP[p1]}" [ -e "$STATE/$NET/ipam/${IP[p1]}" ]
check "... and still passes CHECK" cni check "$CONF" c1 "/run/netns/$T_PREFIX-p1" eth0
check "pod cb of network $NET_B is untouched (veth, pins, entry)" intact pb
check "... and its record" [ -e "$STATE/$NET_B/attachments/cb_eth0" ]
check "the long network's veth is untouched by $NET's GC" intact pl
check "the foreign veth $FOREIGN is untouched" quiet ip -n "$NS_NODE" link show "$FOREIGN"
check "c1 still reaches cb across networks through the node" in_ns "$T_PREFIX-p1" busybox ping -c1 -W2 -q "${IP[pb]}"

out=$(plugin GC "$(gc_conf "$CONF" '[{"containerID": "c1", "ifname": "eth0"}]')")
n=$(host_veths | wc -l)
check "a second GC succeeds and removes nothing more ($out; $n rota-named veths)" [ -z "$out" -a "$n" -eq 4 ]

# The long network: its veth's alias names no attachment, so GC goes by the
# veth's name (the hash of container ID and interface).
out=$(plugin GC "$(gc_conf "$CONF_L" '[{"containerID": "other", "ifname": "eth0"}]')")
check "GC of the long-named network succeeds (rc $?, $out)" [ -z "$out" ]
check "... removes its unrecorded veth by name, with its pins and entry" gone pl
check "... and releases ${IP[pl]}" [ ! -e "$STATE/$NET_L/ipam/${IP[pl]}" ]
check "... and leaves c1 alone" intact p1
check "... and cb" intact pb

cni del "$CONF" c1 "/run/netns/$T_PREFIX-p1" eth0 || fail "DEL c1"
cni del "$CONF_B" cb "/run/netns/$T_PREFIX-pb" eth0 || fail "DEL cb"
check "DEL of c1 and cb leaves no rota veth but the foreign one" [ "$(host_veths)" == "$FOREIGN" ]
check "no link pins left" [ "$(ls "$BPFFS/links" | wc -l)" -eq 0 ]
check "no endpoint entries left" [ "$(bpftool -j map dump pinned "$BPFFS/rota_endpoints4" | pyjq 'len(d)')" -eq 0 ]
finish
