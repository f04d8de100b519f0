#!/usr/bin/env bash
# rota-cni lifecycle through a libcni-like runner: VERSION, STATUS, ADD
# (interfaces, /32, default route via 169.254.1.1, host route, tc links,
# endpoint entry, result JSON), CHECK (and CHECK noticing a removed route
# or address), DEL twice, DEL after the netns is gone, ADD on an existing
# interface, GC of leaked attachments with both attachment keys.
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
setup_node
CONF=$TMP/net.conflist
NET=lc
write_conflist "$CONF" "$NET"

# ---- VERSION / STATUS
out=$(cni version "$CONF")
check "VERSION lists 1.0.0 and 1.1.0 (got: $out)" grep -q '"1.0.0", "1.1.0"' <<<"$out"
out=$(cni status "$CONF")
check "STATUS succeeds with the datapath loaded (rc $?, out: $out)" [ -z "$out" ]

# ---- ADD
new_netns "$T_PREFIX-p1"
res=$(cni add "$CONF" ctr1 "/run/netns/$T_PREFIX-p1" eth0)
rc=$?
check "ADD succeeds (rc $rc)" [ $rc -eq 0 ]
echo "$res"
ip1=$(pod_ip "$res")
host1=$(pyjq 'd["interfaces"][0]["name"]' <<<"$res")
check "ADD result: cniVersion 1.1.0 picked from cniVersions" [ "$(pyjq 'd["cniVersion"]' <<<"$res")" == 1.1.0 ]
check "ADD result: address $ip1/32 in $POD_CIDR" grep -q "^$POD_NET\.[0-9]*$" <<<"$ip1"
check "ADD result: pod interface eth0 with sandbox and mtu" \
	[ "$(pyjq '[d["interfaces"][1]["name"], d["interfaces"][1]["sandbox"], d["interfaces"][1]["mtu"], d["ips"][0]["interface"]]' <<<"$res")" == "[\"eth0\", \"/run/netns/$T_PREFIX-p1\", 1400, 1]" ]
check "ADD result: default route via 169.254.1.1" \
	[ "$(pyjq 'd["routes"]' <<<"$res")" == '[{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}]' ]
check "host veth name $host1 is rota + 11 hex digits" grep -qE '^rota[0-9a-f]{11}$' <<<"$host1"
a=$(ip -n "$T_PREFIX-p1" -o -4 addr show dev eth0 | awk '{print $4}')
check "pod eth0 has $ip1/32 (got $a)" [ "$a" == "$ip1/32" ]
r=$(ip -n "$T_PREFIX-p1" route show default)
check "pod default route via 169.254.1.1 onlink (got: $r)" grep -q 'default via 169.254.1.1 dev eth0 onlink' <<<"$r"
m=$(ip -n "$T_PREFIX-p1" link show eth0 | grep -o 'mtu [0-9]*')
check "pod eth0 MTU is 1400 ($m)" [ "$m" == "mtu 1400" ]
r=$(ip -n "$NS_NODE" route show "$ip1")
check "host route $ip1 dev $host1 (got: $r)" grep -q "dev $host1 scope link" <<<"$r"
conf=$(in_ns "$NS_NODE" cat "/proc/sys/net/ipv4/conf/$host1/proxy_arp" "/proc/sys/net/ipv6/conf/$host1/disable_ipv6" | tr '\n' ' ')
check "host veth: proxy_arp 1, disable_ipv6 1 (got: $conf)" [ "$conf" == "1 1 " ]
ifx=$(ip -n "$NS_NODE" -o link show "$host1" | cut -d: -f1)
check "tc links pinned for if$ifx" [ -e "$BPFFS/links/if$ifx-ingress@rota_from_pod" -a -e "$BPFFS/links/if$ifx-egress@rota_to_pod" ]
ep=$(bpftool -j map lookup pinned "$BPFFS/rota_endpoints4" key $(tr . ' ' <<<"$ip1") 2>/dev/null | pyjq 'd["formatted"]["value"]["ifindex"] if "formatted" in d else d["value"]["ifindex"]' 2>/dev/null)
check "rota_endpoints4[$ip1] = ifindex $ifx (got $ep)" [ "$ep" == "$ifx" ]
out=$(in_ns "$T_PREFIX-p1" busybox ping -c1 -W2 169.254.1.1 2>&1)
nb=$(ip -n "$T_PREFIX-p1" neigh show 169.254.1.1)
check "pod resolves its gateway 169.254.1.1 statically ($nb)" grep -q PERMANENT <<<"$nb"

# ---- second pod; pod-to-pod through the node
new_netns "$T_PREFIX-p2"
res2=$(cni add "$CONF" ctr2 "/run/netns/$T_PREFIX-p2" eth0)
ip2=$(pod_ip "$res2")
check "second ADD gets another address ($ip1 vs $ip2)" [ -n "$ip2" -a "$ip1" != "$ip2" ]
check "pod1 pings pod2 through the node" in_ns "$T_PREFIX-p1" busybox ping -c2 -i0.2 -W2 -q "$ip2"

# ---- ADD again on an existing interface
out=$(cni add "$CONF" ctr1b "/run/netns/$T_PREFIX-p1" eth0)
code=$(pyjq 'd["code"]' <<<"$out" 2>/dev/null)
check "ADD of an existing eth0 fails with code 106 naming it (got: $out)" \
	[ "$code" == 106 ] && grep -q 'eth0 already exists' <<<"$out"
check "the failed ADD left no attachment record" [ ! -e "$STATE/$NET/attachments/ctr1b_eth0" ]

# ---- CHECK
out=$(cni check "$CONF" ctr1 "/run/netns/$T_PREFIX-p1" eth0)
check "CHECK on a healthy pod succeeds (rc $?, $out)" [ -z "$out" ]
ip -n "$T_PREFIX-p1" route del default
out=$(cni check "$CONF" ctr1 "/run/netns/$T_PREFIX-p1" eth0)
check "CHECK reports the removed default route (got: $out)" grep -q 'default route via 169.254.1.1 dev eth0 is missing' <<<"$out"
ip -n "$T_PREFIX-p1" route add default via 169.254.1.1 dev eth0 onlink
ip -n "$NS_NODE" route del "$ip1"
out=$(cni check "$CONF" ctr1 "/run/netns/$T_PREFIX-p1" eth0)
check "CHECK reports the removed host route (got: $out)" grep -q "host route $ip1/32 dev $host1 is missing" <<<"$out"
ip -n "$NS_NODE" route add "$ip1" dev "$host1" scope link
ip -n "$T_PREFIX-p1" addr del "$ip1/32" dev eth0
out=$(cni check "$CONF" ctr1 "/run/netns/$T_PREFIX-p1" eth0)
check "CHECK reports the removed address (got: $out)" grep -q "address $ip1/32 is missing on eth0" <<<"$out"

# ---- DEL twice
cni del "$CONF" ctr1 "/run/netns/$T_PREFIX-p1" eth0
check "DEL succeeds" [ $? -eq 0 ]
check "DEL removed $host1" [ -z "$(ip -n "$NS_NODE" link show "$host1" 2>/dev/null)" ]
check "DEL removed eth0 from the pod" [ -z "$(ip -n "$T_PREFIX-p1" link show eth0 2>/dev/null)" ]
check "DEL unpinned the tc links of if$ifx" [ ! -e "$BPFFS/links/if$ifx-ingress@rota_from_pod" -a ! -e "$BPFFS/links/if$ifx-egress@rota_to_pod" ]
check "DEL removed the endpoint entry" not quiet bpftool map lookup pinned "$BPFFS/rota_endpoints4" key $(tr . ' ' <<<"$ip1")
check "DEL released $ip1" [ ! -e "$STATE/$NET/ipam/$ip1" ]
out=$(cni del "$CONF" ctr1 "/run/netns/$T_PREFIX-p1" eth0)
check "second DEL succeeds too (rc $?, $out)" [ -z "$out" ]

# ---- DEL after the netns is gone
ifx2=$(ip -n "$NS_NODE" -o link show "$(pyjq 'd["interfaces"][0]["name"]' <<<"$res2")" | cut -d: -f1)
ip netns del "$T_PREFIX-p2"
sleep 0.2
out=$(cni del "$CONF" ctr2 "/run/netns/$T_PREFIX-p2" eth0)
check "DEL after the netns was deleted succeeds (rc $?, $out)" [ -z "$out" ]
check "... and unpins the links of the vanished veth if$ifx2" [ ! -e "$BPFFS/links/if$ifx2-ingress@rota_from_pod" ]
check "... and releases $ip2" [ ! -e "$STATE/$NET/ipam/$ip2" ]
check "... and removes its endpoint entry" not quiet bpftool map lookup pinned "$BPFFS/rota_endpoints4" key $(tr . ' ' <<<"$ip2")

# ---- GC: two leaked attachments (not in the runtime's cache), one valid
for i in 3 4 5; do new_netns "$T_PREFIX-p$i"; done
for i in 3 4 5; do
	cni add "$CONF" "ctr$i" "/run/netns/$T_PREFIX-p$i" eth0 >/dev/null || fail "ADD ctr$i"
done
rm -f "$CACHE"/results/"$NET"-ctr4-eth0 "$CACHE"/results/"$NET"-ctr5-eth0	# runtime forgot them
n_before=$(host_veths | wc -l)
cni gc "$CONF" ctr3/eth0
check "GC succeeds" [ $? -eq 0 ]
n_after=$(host_veths | wc -l)
check "GC removed the 2 leaked veths ($n_before → $n_after)" [ "$n_before" -eq 3 -a "$n_after" -eq 1 ]
left=$(ls "$STATE/$NET/ipam" | grep -c '^[0-9]')
check "GC released the 2 leaked addresses (1 left: $left)" [ "$left" -eq 1 ]
check "ctr3 still works after GC" cni check "$CONF" ctr3 "/run/netns/$T_PREFIX-p3" eth0
# only the older key
conf_gc=$(pyjq 'dict(d["plugins"][0], name=d["name"], cniVersion="1.1.0", **{"cni.dev/attachments": []})' <"$CONF")
out=$(plugin GC "$conf_gc")
check "GC with only cni.dev/attachments (empty) removes the rest (rc $?, veths left: $(host_veths | wc -l))" \
	[ "$(host_veths | wc -l)" -eq 0 -a "$(ls "$STATE/$NET/ipam" | grep -c '^[0-9]')" -eq 0 ]
links=$(ls "$BPFFS/links" | wc -l)
check "no tc link pins left ($links)" [ "$links" -eq 0 ]
eps=$(bpftool -j map dump pinned "$BPFFS/rota_endpoints4" | pyjq 'len(d)')
check "no endpoint entries left ($eps)" [ "$eps" -eq 0 ]

# ---- STATUS without a datapath
conf_st=$(pyjq 'dict(d["plugins"][0], name=d["name"], cniVersion="1.1.0", bpffsDir="/sys/fs/bpf/'"$T_PREFIX"'-none")' <"$CONF")
out=$(plugin STATUS "$conf_st")
check "STATUS with no datapath loaded: code 50 (got: $out)" [ "$(pyjq 'd["code"]' <<<"$out")" == 50 ]
finish
