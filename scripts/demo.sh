#!/usr/bin/env bash
# make demo: a two-node Kubernetes-style cluster on this machine, with rota
# in place of kube-proxy, and the story rota exists for, step by step:
# service discovery, load balancing, self-healing, scaling, cross-node
# traffic and inspection of the pinned maps. Ends with a summary and exits
# non-zero if a step failed. Everything runs in network namespaces, cgroups
# and bpffs directories of its own, removed on exit (also on Ctrl-C).
#
# Usage: scripts/demo.sh            (as root; `make demo` builds first)
# Environment: NO_COLOR=1 disables colours (they are off when stdout is not
# a terminal anyway).
set -uo pipefail
DEMO_DIR=$(cd "$(dirname "$0")" && pwd)/demo
# shellcheck source=demo/lib.sh
. "$DEMO_DIR/lib.sh"
# shellcheck source=demo/cluster.sh
. "$DEMO_DIR/cluster.sh"

demo_require
demo_reap_stale

SVC=web
CLIENT=client-1

# ---------------------------------------------------------------- helpers

# requests N: N HTTP requests from the client pod to the Service's
# ClusterIP, 4 at a time, a fresh connection each; one line per request:
# the answering pod's name, or "ERR <curl exit code>".
requests() {
	# shellcheck disable=SC2016 # the inner shell expands these
	pod_exec "$CLIENT" sh -c 'for w in 1 2 3 4; do (i=$w; while [ $i -le "$1" ]; do
		if out=$(curl -s --max-time 2 "$2"); then echo "${out%% *}"; else echo "ERR $?"; fi
		i=$((i + 4)); done) & done; wait' _ "$1" "http://$VIP/"
}

# count_table: the per-backend table of requests' answers read on stdin.
count_table() {
	local lines total pod n bar
	lines=$(cat)
	total=$(grep -c . <<<"$lines")
	printf '    %-8s %-8s %-12s %8s\n' POD NODE "POD IP" REQUESTS
	for pod in $(grep -v '^ERR' <<<"$lines" | sort -u); do
		n=$(grep -cx "$pod" <<<"$lines")
		bar=$(printf '%*s' $((n * 40 / (total ? total : 1))) '' | tr ' ' '#')
		printf '    %-8s %-8s %-12s %8d  %s\n' "$pod" "${POD_NODE[$pod]:-?}" "${POD_IP[$pod]:-?}" "$n" "$bar"
	done
	n=$(grep -c '^ERR' <<<"$lines")
	((n)) && printf '    %-8s %-8s %-12s %8d\n' failed "" "" "$n"
	true
}
# count_of NAME: how many lines on stdin are exactly NAME.
count_of() { grep -cx "$1"; }

# tx_packets NODE IFNAME: packets the node has sent into that interface.
tx_packets() {
	nsenter --net="/run/netns/${NODE_NS[$1]}" cat /proc/net/dev | awk -v i="$2:" '$1 == i { print $11 }'
}

# ---------------------------------------------------------------- the cluster

heading "Setting up a two-node cluster on this machine"
say "Everything below runs in network namespaces: nothing touches this host's network."
note "  node-1 (netns, pods 10.244.1.0/24) ═══ veth underlay 192.168.77.0/24 ═══ node-2 (netns, pods 10.244.2.0/24)"
note "  each node: its own rotad, bpffs directory and cgroup; pods: a netns wired by rota-cni ADD, busybox httpd"

start_apiserver
say "  rota-apiserver      https://127.0.0.1:$API_PORT (sqlite store; kubectl talks to it)"
start_controller
say "  rota-controller     EndpointSlices from the Pods that match each Service's selector"
add_node node-1 1
add_node node-2 2
connect_nodes node-1 node-2
for n in node-1 node-2; do
	start_rotad "$n"
	say "  rotad on $n       bpffs ${NODE_BPFFS[$n]}, socket LB on cgroup ${NODE_CG[$n]#"$CG_BASE"/}"
done

create_pod "$CLIENT" node-1 "app: client"
pod_ready "$CLIENT"
for spec in web-1:node-1 web-2:node-2 web-3:node-2; do
	pod=${spec%%:*}
	create_pod "$pod" "${spec#*:}" "app: web"
	start_web "$pod"
	pod_ready "$pod"
done
say "  pods                rota-cni ADD in the node's netns (veth, IP from the node's Pod CIDR, tc programs):"
note "                      web-1 on node-1, web-2 and web-3 on node-2, client-1 on node-1"
kube get pods -o wide 2>&1 | indent

cat >"$DEMO_TMP/web-service.yaml" <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $SVC
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: $HTTP_PORT, protocol: TCP}
EOF
echo
cmd_echo "kubectl apply -f web-service.yaml"
kube apply -f "$DEMO_TMP/web-service.yaml" 2>&1 | indent
publish_endpoints "$SVC" || die "rota-controller did not write the EndpointSlice for $SVC"
CIP=$(kube get svc "$SVC" -o jsonpath='{.spec.clusterIP}')
VIP=$CIP:80
cmd_echo "kubectl get service,endpointslice"
kube get service "$SVC" 2>&1 | indent
kube get endpointslice -l "kubernetes.io/service-name=$SVC" 2>&1 | indent
wait_programmed "$VIP" web-1 web-2 web-3 || die "rotad did not program $VIP on every node; logs in $DEMO_TMP"
note "  rota-controller wrote the EndpointSlice from the Ready Pods; both rotads saw the Service and"
note "  the slice and wrote them into their node's BPF maps"

# ---------------------------------------------------------------- 1. discovery

heading "1. Service discovery: a pod reaches the Service by its ClusterIP"
say "client-1 (on node-1) connects to $VIP. No pod listens there: rota's BPF program"
say "translates the address when curl calls connect(), inside the kernel."
cmd_echo "curl http://$VIP/        # in pod client-1"
answer=$(pod_exec "$CLIENT" curl -s --max-time 2 "http://$VIP/")
rc=$?
say "    ${answer:-"(no answer, curl exit $rc)"}"
if ((rc == 0)) && [[ $answer =~ ^web-[0-9]+\  ]]; then
	result "service discovery" 1 "client-1 → $VIP answered by ${answer%% *}"
else
	result "service discovery" 0 "client-1 → $VIP: no answer (curl exit $rc)"
fi

# ---------------------------------------------------------------- 2. load balancing

heading "2. Load balancing: 100 requests, each a new connection"
out=$(requests 100)
count_table <<<"$out"
ok_n=$(grep -vc '^ERR' <<<"$out")
used=$(grep -v '^ERR' <<<"$out" | sort -u | wc -l)
fig="$ok_n/100 answered, spread $(for p in web-1 web-2 web-3; do printf '%s/' "$(count_of "$p" <<<"$out")"; done)"
fig="${fig%/} over web-1/2/3"
result "load balancing" $((ok_n == 100 && used == 3)) "$fig"

# ---------------------------------------------------------------- 3. self-healing

heading "3. Self-healing: a backend dies while a client keeps sending requests"
victim=web-3
say "A client loop in client-1 sends requests back to back. Then $victim (on ${POD_NODE[$victim]}) is killed,"
say "its Pod deleted, rota-controller updates the EndpointSlice; rotad on each node rewrites its maps."
loop_log=$DEMO_TMP/loop.log
stop=$DEMO_TMP/loop.stop
# shellcheck disable=SC2016 # the inner shell expands these
pod_exec "$CLIENT" bash -c 'while [ ! -e "$1" ]; do t=$EPOCHREALTIME
	if out=$(curl -s --max-time 1 "$2"); then echo "$t ${out%% *}"; else echo "$t ERR$?"; fi; done' \
	_ "$stop" "http://$VIP/" >"$loop_log" 2>&1 &
loop_pid=$!
DEMO_PIDS+=("$loop_pid")
sleep 1
t_kill=$EPOCHREALTIME
kill_pod "$victim"
say "  → every process of $victim killed at once (SIGKILL through its cgroup, like a crash)"
cmd_echo "kubectl delete pod $victim"
kube delete pod "$victim" --wait=false 2>&1 | indent
publish_endpoints "$SVC"
t_published=$EPOCHREALTIME
wait_programmed "$VIP" web-1 web-2
programmed=$?
t_update=$EPOCHREALTIME
tx_before=$(tx_packets "${POD_NODE[$victim]}" "${POD_IF[$victim]}")
sleep 2
tx_after=$(tx_packets "${POD_NODE[$victim]}" "${POD_IF[$victim]}")
touch "$stop"
wait "$loop_pid" 2>/dev/null
read -r total _ window window_fail after after_fail after_victim < <(awk -v k="$t_kill" -v u="$t_update" \
	-v v="$victim" '
	{ n++; fail = ($2 ~ /^ERR/) }
	$1 < k { bf += fail; next }
	$1 < u { w++; wf += fail; next }
	{ a++; af += fail; if ($2 == v) av++ }
	END { printf "%d %d %d %d %d %d %d\n", n, bf, w, wf, a, af, av }' "$loop_log")
window_s=$(awk -v k="$t_kill" -v u="$t_update" 'BEGIN { printf "%.1f", u - k }')
api_s=$(awk -v k="$t_kill" -v p="$t_published" 'BEGIN { printf "%.1f", p - k }')
rotad_ms=$(awk -v p="$t_published" -v u="$t_update" 'BEGIN { printf "%d", (u - p) * 1000 }')
dead_pkts=$((tx_after - tx_before))
say "    requests sent:                                   $total"
say "    kill → endpoints updated in every node's maps:   ${window_s} s ($window requests, $window_fail failed: the pod was dead but still listed)"
note "      of which: Pod deleted (kubectl) and EndpointSlice updated (rota-controller): $api_s s; slice → both nodes' maps (rotad): $rotad_ms ms"
say "    after the update:                                $after requests, $after_fail failed, $after_victim answered by $victim"
say "    packets sent to $victim's veth after the update:   $dead_pkts"
remove_pod_sandbox "$victim"
fig="0 of $after requests failed after the update"
((after_fail)) && fig="$after_fail of $after requests failed after the update"
fig+=" ($window_s s from kill to update), $victim got $dead_pkts packets"
result "self-healing" $((programmed == 0 && after > 0 && after_fail == 0 && after_victim == 0 &&
	dead_pkts == 0)) "$fig"

# ---------------------------------------------------------------- 4. scaling

heading "4. Scaling out: two more pods join the Service"
create_pod web-4 node-1 "app: web"
start_web web-4
create_pod web-5 node-2 "app: web"
start_web web-5
say "  → web-4 on node-1 and web-5 on node-2 start, become Ready, and rota-controller adds them to the EndpointSlice"
pod_ready web-4
pod_ready web-5
publish_endpoints "$SVC"
wait_programmed "$VIP" web-1 web-2 web-4 web-5
programmed=$?
out=$(requests 100)
count_table <<<"$out"
n4=$(count_of web-4 <<<"$out")
n5=$(count_of web-5 <<<"$out")
nerr=$(grep -c '^ERR' <<<"$out")
fig="new pods web-4/web-5 answered $n4 and $n5 of 100 requests, $nerr failed"
result "scaling" $((programmed == 0 && n4 > 0 && n5 > 0 && nerr == 0)) "$fig"

# ---------------------------------------------------------------- 5. cross-node

heading "5. Cross-node: client-1 on node-1 reaches pods on node-2"
say "rota picks any ready backend, on any node; packets to a node-2 pod cross the underlay."
ul_before=$(tx_packets node-1 ul0)
out=$(requests 60)
ul_after=$(tx_packets node-1 ul0)
n1=0 n2=0
for p in $(grep -v '^ERR' <<<"$out"); do
	[[ ${POD_NODE[$p]:-} == node-1 ]] && n1=$((n1 + 1))
	[[ ${POD_NODE[$p]:-} == node-2 ]] && n2=$((n2 + 1))
done
nerr=$(grep -c '^ERR' <<<"$out")
say "    answered on node-1: $n1    on node-2: $n2    failed: $nerr"
say "    packets node-1 sent over the underlay meanwhile: $((ul_after - ul_before))"
fig="$n2 of 60 requests from node-1 answered by pods on node-2, $nerr failed"
result "cross-node" $((n2 > 0 && nerr == 0 && ul_after > ul_before)) "$fig"

# ---------------------------------------------------------------- 6. inspection

heading "6. Inspection: what rota wrote into node-1's kernel"
say "All state is in pinned BPF maps. The rota CLI reads them directly:"
cmd_echo "rota --bpffs-dir ${NODE_BPFFS[node-1]} service list"
svc_list=$(rota_on node-1 service list 2>&1)
indent <<<"$svc_list"
echo
say "The maps carry BTF, so plain bpftool prints them with field names"
say "(addresses and ports in network byte order; slot 0 is the service's master entry):"
cmd_echo "bpftool map dump pinned ${NODE_BPFFS[node-1]}/rota_svc4    # trimmed to $VIP"
dump=$(bpftool map dump pinned "${NODE_BPFFS[node-1]}/rota_svc4" 2>&1)
# The entries of our Service only, one line each.
web_entries=$("$PY" "$DEMO_DIR/svc4_entries.py" "$CIP" 80 <<<"$dump")
grep '^"key"' <<<"$web_entries" | head -n 8 | indent
n_entries=$(grep -c '^"key"' <<<"$web_entries")
((n_entries > 8)) && note "    … $((n_entries - 8)) more"
grep -v '^"key"' <<<"$web_entries" | indent
n_svc=$(grep -c '^[0-9]' <<<"$svc_list")
fields_ok=0
grep -q '"backend_id"' <<<"$dump" && grep -q '"slot"' <<<"$dump" && fields_ok=1
fig="$n_svc services in node-1's maps; bpftool shows $n_entries named entries for $VIP"
listed=0
grep -q "^$VIP/TCP" <<<"$svc_list" && listed=1
result "inspection" $((n_svc > 0 && listed && fields_ok && n_entries == 5)) "$fig"

# ---------------------------------------------------------------- summary

failed=0
heading "Summary"
for i in "${!STEP_NAMES[@]}"; do
	mark=$OK_MARK
	((STEP_OK[i])) || {
		mark=$BAD_MARK
		failed=$((failed + 1))
	}
	printf '  %s %-18s %s\n' "$mark" "${STEP_NAMES[i]}" "${STEP_FIG[i]}"
done
echo
if ((failed)); then
	say "${C_R}$failed of ${#STEP_NAMES[@]} steps failed${C_0} (logs were in $DEMO_TMP; rerun to see them live)"
	echo "--- rota-controller (last lines)"
	tail -n 8 "$DEMO_TMP/controller.log"
	for n in "${NODES[@]}"; do
		echo "--- rotad $n (last lines)"
		tail -n 8 "$DEMO_TMP/rotad-$n.log"
	done
else
	say "${C_G}all ${#STEP_NAMES[@]} steps passed${C_0} in $(elapsed) s"
fi
((failed == 0))
