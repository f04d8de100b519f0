#!/usr/bin/env bash
# 50 concurrent ADDs: 50 distinct addresses, every pod reachable from
# another pod through the node; pod-to-ClusterIP through the tc programs
# rota-cni attached (3 pods serve a service, a 4th curls its VIP, answers
# from all 3, conntrack and stats moved); then 50 concurrent DELs leave
# nothing behind.
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
setup_node
CONF=$TMP/net.conflist
NET=scale
N=50
write_conflist "$CONF" "$NET"
for i in $(seq $N); do new_netns "$T_PREFIX-p$i"; done

log "$N concurrent ADDs"
pids=()
for i in $(seq $N); do
	cni add "$CONF" "c$i" "/run/netns/$T_PREFIX-p$i" eth0 >"$TMP/add$i.json" 2>"$TMP/add$i.err" &
	pids+=($!)
done
ok=0
for i in $(seq $N); do wait "${pids[i - 1]}" && ok=$((ok + 1)); done
check "$N concurrent ADDs succeeded ($ok)" [ "$ok" -eq $N ]
for i in $(seq $N); do [[ -s $TMP/add$i.json ]] && pod_ip "$(cat "$TMP/add$i.json")"; done >"$TMP/ips"
distinct=$(sort -u "$TMP/ips" | grep -c .)
check "$N distinct addresses ($distinct)" [ "$distinct" -eq $N ]
check "all inside $POD_CIDR" [ "$(grep -c "^$POD_NET\." "$TMP/ips")" -eq $N ]
check "$N host veths" [ "$(host_veths | wc -l)" -eq $N ]
check "$((2 * N)) tc link pins" [ "$(ls "$BPFFS/links" | wc -l)" -eq $((2 * N)) ]
check "$N endpoint entries" [ "$(bpftool -j map dump pinned "$BPFFS/rota_endpoints4" | pyjq 'len(d)')" -eq $N ]

log "reachability: pod i pings pod i+1"
mapfile -t IPS <"$TMP/ips"
bad=()
for i in $(seq $N); do
	j=$((i % N + 1))
	in_ns "$T_PREFIX-p$i" busybox ping -c1 -W2 -q "${IPS[j - 1]}" >/dev/null 2>&1 || bad+=("p$i→p$j")
done
check "every pod reaches its neighbour pod through the node (unreachable: ${bad[*]:-none})" [ ${#bad[@]} -eq 0 ]

log "pod to ClusterIP through the attached tc programs"
for i in 1 2 3; do
	mkdir -p "$TMP/www$i"
	echo "pod$i" >"$TMP/www$i/index.html"
	bg_ns "$T_PREFIX-p$i" busybox httpd -f -p 8080 -h "$TMP/www$i"
done
sleep 0.5
VIP=10.96.$((RANDOM % 200)).$((RANDOM % 200 + 10))
"$ROTA_BIN" --bpffs-dir "$BPFFS" service add "$VIP:80/TCP" "${IPS[0]}:8080" "${IPS[1]}:8080" "${IPS[2]}:8080" ||
	fail "rota service add"
s0=$("$ROTA_BIN" --bpffs-dir "$BPFFS" stats -o json)
out=$(for k in $(seq 30); do in_ns "$T_PREFIX-p10" curl -s --max-time 2 "http://$VIP/" || echo ERR; done)
seen=$(sort -u <<<"$out" | tr '\n' ' ')
check "30 curls from pod10 to ClusterIP $VIP reach all 3 backend pods (saw: $seen)" [ "$seen" == "pod1 pod2 pod3 " ]
s1=$("$ROTA_BIN" --bpffs-dir "$BPFFS" stats -o json)
b=$(pyjq 'd["translated_forward"]["packets"]' <<<"$s0")
a=$(pyjq 'd["translated_forward"]["packets"]' <<<"$s1")
check "rota stats: translated_forward moved ($b → $a)" [ "$a" -gt "$b" ]
out=$(in_ns "$T_PREFIX-p1" curl -s --max-time 2 "http://${IPS[1]}:8080/")
check "pod1 curls pod2 directly (got: $out)" [ "$out" == pod2 ]

log "$N concurrent DELs"
pids=()
for i in $(seq $N); do
	cni del "$CONF" "c$i" "/run/netns/$T_PREFIX-p$i" eth0 >"$TMP/del$i.out" 2>&1 &
	pids+=($!)
done
ok=0
for i in $(seq $N); do wait "${pids[i - 1]}" && ok=$((ok + 1)); done
check "$N concurrent DELs succeeded ($ok)" [ "$ok" -eq $N ]
check "no host veths left" [ "$(host_veths | wc -l)" -eq 0 ]
check "no tc link pins left" [ "$(ls "$BPFFS/links" | wc -l)" -eq 0 ]
check "no endpoint entries left" [ "$(bpftool -j map dump pinned "$BPFFS/rota_endpoints4" | pyjq 'len(d)')" -eq 0 ]
check "no addresses allocated" [ "$(ls "$STATE/$NET/ipam" | grep -c '^[0-9]')" -eq 0 ]
check "no attachment records" [ "$(ls "$STATE/$NET/attachments" | wc -l)" -eq 0 ]
finish
