# shellcheck shell=bash
# The demo cluster: rota-apiserver, nodes as network namespaces joined by a
# veth "underlay", one rotad per node, pods as network namespaces, and the
# Kubernetes objects that describe them. Sourced after lib.sh.
#
#   root netns: rota-apiserver (127.0.0.1), rotad node-1, rotad node-2, kubectl
#
#   node-1 netns ──ul0 192.168.77.1 ═══ 192.168.77.2 ul0── node-2 netns
#   routes 10.244.2.0/24 via .2                   routes 10.244.1.0/24 via .1
#     │ v-<pod> (10.244.1.1/32)                     │ v-<pod> (10.244.2.1/32)
#   pod netns eth0 10.244.1.N/32                 pod netns eth0 10.244.2.N/32
#
# Each pod is routed (/32 route to its veth on the node; the pod's default
# route is the node's 10.244.K.1), the CNI "ptp" style. Nothing is routed to
# or from the root namespace: all traffic stays inside the demo's namespaces.
#
# Where the parts being built slot in:
#   - create_pod does by hand what rota-cni ADD will do (veth, address,
#     routes, tc attach); swap its network half for a rota-cni call.
#   - publish_endpoints writes the EndpointSlice the way rota-controller
#     will; once rota-controller runs, it becomes a no-op (see there).

API_PORT=""
KC=""			# admin kubeconfig written by rota-apiserver
NODES=()		# node names, in creation order
declare -A NODE_NS NODE_IDX NODE_BPFFS NODE_CG NODE_HEALTHZ NODE_METRICS NODE_NEXT_IP
declare -A POD_NODE POD_IP POD_NS POD_CG POD_IF

HTTP_PORT=8080

kube() { kubectl --kubeconfig "$KC" "$@"; }
# rota_on NODE ARGS...: the rota CLI on NODE's pinned maps, run inside the
# node's netns (attach veth resolves interface names there).
rota_on() {
	local node=$1
	shift
	nsenter --net="/run/netns/${NODE_NS[$node]}" "$ROTA_BIN" --bpffs-dir "${NODE_BPFFS[$node]}" "$@"
}

# ---------------------------------------------------------------- API server

start_apiserver() {
	API_PORT=$(free_port)
	KC=$DEMO_TMP/kubeconfig
	"$APISERVER_BIN" --data-dir "$DEMO_TMP/apiserver" --secure-port "$API_PORT" \
		--kubeconfig-out "$KC" >"$DEMO_TMP/apiserver.log" 2>&1 &
	DEMO_PIDS+=($!)
	if ! wait_for 15 curl -skf "https://127.0.0.1:$API_PORT/readyz" -o /dev/null || [[ ! -s $KC ]]; then
		tail -n 20 "$DEMO_TMP/apiserver.log" >&2
		die "rota-apiserver did not become ready on 127.0.0.1:$API_PORT"
	fi
}

# ---------------------------------------------------------------- nodes

# add_node NAME INDEX: netns, routing, cgroup, Node object, rotad.
add_node() {
	local node=$1 k=$2 ns=$DEMO_PREFIX-$1
	ip netns add "$ns" || die "ip netns add $ns"
	DEMO_NETNS+=("$ns")
	ip -n "$ns" link set lo up
	nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null || die "sysctl in $ns"
	NODES+=("$node")
	NODE_NS[$node]=$ns
	NODE_IDX[$node]=$k
	NODE_NEXT_IP[$node]=2
	NODE_BPFFS[$node]=/sys/fs/bpf/$DEMO_PREFIX-$node
	DEMO_BPFFS+=("${NODE_BPFFS[$node]}")
	NODE_CG[$node]=$CG_BASE/$DEMO_PREFIX-$node
	mkdir "${NODE_CG[$node]}" || die "mkdir ${NODE_CG[$node]}"
	DEMO_CGROUPS+=("${NODE_CG[$node]}")

	kube apply -f - >/dev/null <<-EOF || die "create Node $node"
		apiVersion: v1
		kind: Node
		metadata:
		  name: $node
		  labels: {kubernetes.io/hostname: $node, kubernetes.io/os: linux}
		spec:
		  podCIDR: 10.244.$k.0/24
		  podCIDRs: [10.244.$k.0/24]
	EOF
	kube patch node "$node" --subresource=status --type=merge -p "{\"status\":{
		\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.168.77.$k\"},{\"type\":\"Hostname\",\"address\":\"$node\"}],
		\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\"}]}}" >/dev/null ||
		die "Node $node status"
}

# connect_nodes A B: the underlay veth and a route to each other's pod CIDR.
connect_nodes() {
	local a=$1 b=$2 ka=${NODE_IDX[$1]} kb=${NODE_IDX[$2]}
	local na=${NODE_NS[$1]} nb=${NODE_NS[$2]}
	ip -n "$na" link add ul0 type veth peer name ul0 netns "$nb" || die "underlay veth"
	ip -n "$na" addr add "192.168.77.$ka/24" dev ul0
	ip -n "$nb" addr add "192.168.77.$kb/24" dev ul0
	ip -n "$na" link set ul0 up
	ip -n "$nb" link set ul0 up
	ip -n "$na" route add "10.244.$kb.0/24" via "192.168.77.$kb" || die "route on $a"
	ip -n "$nb" route add "10.244.$ka.0/24" via "192.168.77.$ka" || die "route on $b"
}

# start_rotad NODE: the node agent with its own bpffs dir and cgroup; it
# loads the datapath, attaches socket LB to the node's cgroup and watches
# the API. Waits for /healthz (first sync done).
start_rotad() {
	local node=$1
	NODE_HEALTHZ[$node]=$(free_port)
	NODE_METRICS[$node]=$(free_port)
	"$ROTAD_BIN" --kubeconfig "$KC" --node-name "$node" --bpffs-dir "${NODE_BPFFS[$node]}" \
		--cgroup "${NODE_CG[$node]}" \
		--healthz-bind "127.0.0.1:${NODE_HEALTHZ[$node]}" \
		--metrics-bind "127.0.0.1:${NODE_METRICS[$node]}" >"$DEMO_TMP/rotad-$node.log" 2>&1 &
	DEMO_PIDS+=($!)
	if ! wait_for 15 curl -sf "http://127.0.0.1:${NODE_HEALTHZ[$node]}/healthz" -o /dev/null; then
		tail -n 20 "$DEMO_TMP/rotad-$node.log" >&2
		die "rotad on $node did not become healthy"
	fi
}

# ---------------------------------------------------------------- pods

# create_pod NAME NODE [LABELS]: a pod as a network namespace wired to NODE
# (what rota-cni ADD will do), its processes in a cgroup under the node's
# (so the node's socket LB applies to them), and a Pod object. Does not
# start anything in it; see start_web.
create_pod() {
	local pod=$1 node=$2 labels=${3:-} k=${NODE_IDX[$2]} ns=$DEMO_PREFIX-$1 hostif=v-$1
	local ip=10.244.$k.${NODE_NEXT_IP[$node]} gw=10.244.$k.1 nodens=${NODE_NS[$node]}
	NODE_NEXT_IP[$node]=$((NODE_NEXT_IP[$node] + 1))
	ip netns add "$ns" || die "ip netns add $ns"
	DEMO_NETNS+=("$ns")
	ip -n "$ns" link set lo up
	nsenter --net="/run/netns/$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null
	# --- the rota-cni part: veth, addresses, routes, tc programs ---
	ip -n "$nodens" link add "$hostif" type veth peer name eth0 netns "$ns" || die "veth for $pod"
	ip -n "$nodens" addr add "$gw/32" dev "$hostif"
	ip -n "$nodens" link set "$hostif" up
	ip -n "$nodens" route add "$ip/32" dev "$hostif" || die "route to $pod"
	ip -n "$ns" addr add "$ip/32" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add "$gw" dev eth0 scope link
	ip -n "$ns" route add default via "$gw" dev eth0 || die "default route in $pod"
	rota_on "$node" attach veth "$hostif" >/dev/null || die "rota attach veth $hostif on $node"
	# --- the runtime part: a cgroup for the pod's processes ---
	mkdir "${NODE_CG[$node]}/$pod" || die "cgroup for $pod"
	DEMO_CGROUPS+=("${NODE_CG[$node]}/$pod")
	POD_NODE[$pod]=$node
	POD_IP[$pod]=$ip
	POD_NS[$pod]=$ns
	POD_CG[$pod]=${NODE_CG[$node]}/$pod
	# shellcheck disable=SC2034 # read by demo.sh
	POD_IF[$pod]=$hostif
	# --- the kubelet part: the Pod object, scheduled and then Ready ---
	kube apply -f - >/dev/null <<-EOF || die "create Pod $pod"
		apiVersion: v1
		kind: Pod
		metadata:
		  name: $pod
		  labels: {${labels}}
		spec:
		  nodeName: $node
		  containers:
		  - name: main
		    image: busybox
		    ports: [{name: http, containerPort: $HTTP_PORT}]
	EOF
}

# pod_ready POD: status.podIP, phase Running and the Ready condition
# (the status subresource, as a kubelet reports them).
pod_ready() {
	local pod=$1 now
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	kube patch pod "$pod" --subresource=status --type=merge -p "{\"status\":{
		\"phase\":\"Running\",\"podIP\":\"${POD_IP[$pod]}\",\"podIPs\":[{\"ip\":\"${POD_IP[$pod]}\"}],
		\"hostIP\":\"192.168.77.${NODE_IDX[${POD_NODE[$pod]}]}\",\"startTime\":\"$now\",
		\"containerStatuses\":[{\"name\":\"main\",\"image\":\"busybox\",\"imageID\":\"\",\"ready\":true,
		  \"started\":true,\"restartCount\":0,\"state\":{\"running\":{\"startedAt\":\"$now\"}}}],
		\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"},
		  {\"type\":\"ContainersReady\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"}]}}" \
		>/dev/null || die "Pod $pod status"
}

# pod_exec POD CMD...: runs CMD in the pod (its netns and its cgroup).
pod_exec() {
	local pod=$1
	shift
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	nsenter --net="/run/netns/${POD_NS[$pod]}" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
		"${POD_CG[$pod]}" "$@"
}

# start_web POD: busybox httpd on :8080 answering "<pod> on <node> (<ip>)".
start_web() {
	local pod=$1 www=$DEMO_TMP/www-$1
	mkdir -p "$www"
	echo "$pod on ${POD_NODE[$pod]} (${POD_IP[$pod]})" >"$www/index.html"
	pod_exec "$pod" busybox httpd -f -p "$HTTP_PORT" -h "$www" >>"$DEMO_TMP/pods.log" 2>&1 &
	# the process lives in the pod's cgroup; cleanup kills it from there
	wait_for 5 pod_listens "$pod" || die "httpd in $pod did not start"
}
pod_listens() {
	nsenter --net="/run/netns/${POD_NS[$1]}" ss -Hltn "sport = :$HTTP_PORT" 2>/dev/null | grep -q .
}

# kill_pod POD: every process of the pod dies at once (a crash / OOM kill).
kill_pod() {
	local cg=${POD_CG[$1]} p
	if [[ -e $cg/cgroup.kill ]]; then
		echo 1 >"$cg/cgroup.kill"
	else
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$cg/cgroup.procs"
	fi
}

# remove_pod_sandbox POD: what the runtime does after the pod is gone.
remove_pod_sandbox() {
	local pod=$1
	kill_pod "$pod"
	ip netns del "${POD_NS[$pod]}" 2>/dev/null
	rmdir "${POD_CG[$pod]}" 2>/dev/null
}

# ---------------------------------------------------------------- endpoints

# publish_endpoints SERVICE: the EndpointSlice for SERVICE, computed from
# the API alone like the EndpointSlice controller does: the Pods matching
# the Service's selector, Ready and not being deleted, with status.podIP;
# the Service's port name/protocol and targetPort.
#
# This is rota-controller's job. When build/bin/rota-controller is running
# it keeps the slice itself, so this function only has to wait for the
# controller's slice to list the Ready pods (replace the body below with
# that wait, and start the controller next to the API server).
publish_endpoints() {
	local svc=$1 sel port_name target proto now eps="" name ip node ready deleting first=1
	# shellcheck disable=SC2016 # a Go template, not shell
	read -r sel port_name target proto < <(kube get svc "$svc" -o go-template='{{range $k, $v := .spec.selector}}
		{{- $k}}={{$v}},{{end}} {{with index .spec.ports 0}}{{.name}} {{.targetPort}} {{.protocol}}{{end}}')
	sel=${sel%,}
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	while read -r name ip node ready deleting; do
		[[ -n $name && -n $ip && $ready == True && $deleting == - ]] || continue
		((first)) || eps+=","
		first=0
		eps+="{\"addresses\":[\"$ip\"],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},"
		eps+="\"nodeName\":\"$node\",\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"default\",\"name\":\"$name\"}}"
	done < <(kube get pods -l "$sel" -o go-template='{{range .items}}{{.metadata.name}} {{or .status.podIP ""}} {{.spec.nodeName}} {{range .status.conditions}}{{if eq .type "Ready"}}{{.status}}{{end}}{{end}} {{if .metadata.deletionTimestamp}}yes{{else}}-{{end}}
{{end}}')
	kube apply -f - >/dev/null <<-EOF || die "write EndpointSlice for $svc"
		{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
		 "metadata": {"name": "$svc-demo",
		   "labels": {"kubernetes.io/service-name": "$svc",
		              "endpointslice.kubernetes.io/managed-by": "rota-demo"},
		   "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "$now"}},
		 "addressType": "IPv4",
		 "ports": [{"name": "$port_name", "port": $target, "protocol": "$proto"}],
		 "endpoints": [$eps]}
	EOF
}

# ---------------------------------------------------------------- reading the datapath

# node_backends NODE VIP:PORT: the active backends rota has programmed on
# NODE for that frontend (sorted "ip:port" words), read from the pinned maps.
node_backends() {
	rota_on "$1" service list 2>/dev/null | awk -v fe="$2/TCP" '
		$1 == fe { for (i = 5; i <= NF; i++) { b = $i; sub(/,$/, "", b); if (b ~ /^[0-9.]+:[0-9]+$/) print b } }' |
		sort | tr '\n' ' ' | sed 's/ $//'
}

# wait_programmed VIP:PORT POD...: until every node has exactly these pods
# as the frontend's backends (10 s at most).
backends_are() { [[ $(node_backends "$1" "$2") == "$3" ]]; }
wait_programmed() {
	local fe=$1 want node p
	shift
	want=$(for p in "$@"; do echo "${POD_IP[$p]}:$HTTP_PORT"; done | sort | tr '\n' ' ' | sed 's/ $//')
	for node in "${NODES[@]}"; do
		wait_for 10 backends_are "$node" "$fe" "$want" || return 1
	done
}
