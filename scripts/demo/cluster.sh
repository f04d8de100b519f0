# shellcheck shell=bash
# The demo cluster: rota-apiserver and rota-controller, nodes as network
# namespaces joined by a veth "underlay", one rotad per node, pods as network
# namespaces wired by rota-cni, and the Kubernetes objects that describe them.
# Sourced after lib.sh.
#
#   root netns: rota-apiserver (127.0.0.1), rota-controller, rotad node-1,
#               rotad node-2, kubectl
#
#   node-1 netns ──ul0 192.168.77.1 ═══ 192.168.77.2 ul0── node-2 netns
#   routes 10.244.2.0/24 via .2                   routes 10.244.1.0/24 via .1
#     │ rota<hash> (host veth, /32 route per pod)   │ rota<hash>
#   pod netns eth0 10.244.1.N/32                 pod netns eth0 10.244.2.N/32
#   default via 169.254.1.1 (the host veth)      default via 169.254.1.1
#
# Pods are created the way a container runtime does it: a netns, then
# rota-cni ADD (run in the node's netns, the node's conflist on stdin) which
# makes the veth pair, takes an address from the node's Pod CIDR, sets the
# routes and attaches rota's tc programs; DEL when the pod goes away. The
# demo then plays kubelet and reports the Pod's IP and Ready condition;
# rota-controller turns Pods into EndpointSlices, rotad turns those into
# BPF maps. Nothing is routed to or from the root namespace: all traffic
# stays inside the demo's namespaces.

API_PORT=""
KC=""			# admin kubeconfig written by rota-apiserver
NODES=()		# node names, in creation order
declare -A NODE_NS NODE_IDX NODE_BPFFS NODE_CG NODE_HEALTHZ NODE_METRICS
declare -A NODE_CNI_CONF NODE_CNI_PLUGIN
declare -A POD_NODE POD_IP POD_NS POD_CG POD_IF POD_CID
CNI_ATTACHED=()		# pods rota-cni ADD was called for and not yet DEL

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

# start_controller: rota-controller, the EndpointSlice controller (and node
# IPAM, which keeps the Pod CIDRs the Nodes are created with).
start_controller() {
	# shellcheck disable=SC2153 # set in lib.sh
	"$CONTROLLER_BIN" --kubeconfig "$KC" >"$DEMO_TMP/controller.log" 2>&1 &
	DEMO_PIDS+=($!)
	CONTROLLER_PID=$!
	sleep 0.2
	if ! kill -0 "$CONTROLLER_PID" 2>/dev/null; then
		tail -n 20 "$DEMO_TMP/controller.log" >&2
		die "rota-controller exited at start"
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
	NODE_BPFFS[$node]=/sys/fs/bpf/$DEMO_PREFIX-$node
	DEMO_BPFFS+=("${NODE_BPFFS[$node]}")
	NODE_CG[$node]=$CG_BASE/$DEMO_PREFIX-$node
	mkdir "${NODE_CG[$node]}" || die "mkdir ${NODE_CG[$node]}"
	DEMO_CGROUPS+=("${NODE_CG[$node]}")
	# the node's CNI config, as /etc/cni/net.d/10-rota.conflist would hold it
	# (cni/install.sh writes the same, without the portmap/bandwidth chain)
	NODE_CNI_CONF[$node]=$DEMO_TMP/cni-$node/net.d/10-rota.conflist
	mkdir -p "${NODE_CNI_CONF[$node]%/*}"
	cat >"${NODE_CNI_CONF[$node]}" <<-EOF
		{
		  "cniVersion": "1.0.0",
		  "name": "rota",
		  "plugins": [
		    {
		      "type": "rota-cni",
		      "bpffsDir": "${NODE_BPFFS[$node]}",
		      "dataDir": "$DEMO_TMP/cni-$node/state",
		      "logFile": "$DEMO_TMP/cni-$node/rota-cni.log",
		      "ipam": { "type": "rota-ipam", "subnet": "10.244.$k.0/24" }
		    }
		  ]
		}
	EOF
	# what libcni sends the (only) plugin: its object + the list's name and cniVersion
	NODE_CNI_PLUGIN[$node]=$DEMO_TMP/cni-$node/plugin-0.json
	"$PY" -c 'import json, sys
l = json.load(open(sys.argv[1]))
c = dict(l["plugins"][0], name=l["name"], cniVersion=l["cniVersion"])
json.dump(c, open(sys.argv[2], "w"))' "${NODE_CNI_CONF[$node]}" "${NODE_CNI_PLUGIN[$node]}" ||
		die "CNI config for $node"

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

# cni_exec COMMAND POD: runs rota-cni like a container runtime (libcni)
# does: in the node's network namespace (so the host veth lands there),
# CNI_* in the environment, the plugin's config on stdin (on DEL with the
# cached ADD result as prevResult). Prints the plugin's stdout.
cni_exec() {
	local cmd=$1 pod=$2 node=${POD_NODE[$2]} netns=/run/netns/${POD_NS[$2]} conf
	conf=$(<"${NODE_CNI_PLUGIN[$node]}")
	if [[ $cmd == DEL ]]; then
		[[ -s $DEMO_TMP/cni-$node/result-$pod.json ]] &&
			conf=${conf%\}}", \"prevResult\": $(<"$DEMO_TMP/cni-$node/result-$pod.json")}"
		[[ -e $netns ]] || netns=""
	fi
	nsenter --net="/run/netns/${NODE_NS[$node]}" env CNI_COMMAND="$cmd" \
		CNI_CONTAINERID="${POD_CID[$pod]}" CNI_NETNS="$netns" CNI_IFNAME=eth0 \
		CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$pod" CNI_PATH="$BIN_DIR" \
		timeout 20 "$CNI_BIN" <<<"$conf"
}

# cni_del POD: rota-cni DEL, once (idempotent anyway).
cni_del() {
	local pod=$1 i
	for i in "${!CNI_ATTACHED[@]}"; do
		[[ ${CNI_ATTACHED[i]} == "$pod" ]] || continue
		cni_exec DEL "$pod" >>"$DEMO_TMP/cni-${POD_NODE[$pod]}/rota-cni.out" 2>&1 ||
			echo "rota-cni DEL $pod failed (see $DEMO_TMP/cni-${POD_NODE[$pod]}/rota-cni.log)" >&2
		unset 'CNI_ATTACHED[i]'
	done
}
# cni_del_all: the cleanup hook, DEL for every pod still attached.
cni_del_all() {
	local pod
	for pod in "${CNI_ATTACHED[@]}"; do cni_del "$pod"; done
}
DEMO_CLEANUP_HOOKS+=(cni_del_all)

# create_pod NAME NODE [LABELS]: a pod as a network namespace wired to NODE
# by rota-cni ADD, its processes in a cgroup under the node's (so the node's
# socket LB applies to them), and a Pod object. Does not start anything in
# it; see start_web.
create_pod() {
	local pod=$1 node=$2 labels=${3:-} ns=$DEMO_PREFIX-$1 out ip hostif
	ip netns add "$ns" || die "ip netns add $ns"
	DEMO_NETNS+=("$ns")
	ip -n "$ns" link set lo up
	nsenter --net="/run/netns/$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null
	POD_NODE[$pod]=$node
	POD_NS[$pod]=$ns
	POD_CID[$pod]=$DEMO_PREFIX-$pod
	# --- the CNI part: veth, address, routes, tc programs ---
	CNI_ATTACHED+=("$pod") # before ADD: an interrupted ADD is undone by DEL
	out=$(cni_exec ADD "$pod" 2>>"$DEMO_TMP/cni-$node/rota-cni.out") || die "rota-cni ADD for $pod on $node: $out"
	printf '%s\n' "$out" >"$DEMO_TMP/cni-$node/result-$pod.json"
	read -r ip hostif < <("$PY" -c 'import json, sys
r = json.load(sys.stdin)
print(r["ips"][0]["address"].split("/")[0], r["interfaces"][0]["name"])' <<<"$out") ||
		die "rota-cni ADD for $pod: unexpected result $out"
	POD_IP[$pod]=$ip
	# --- the runtime part: a cgroup for the pod's processes ---
	mkdir "${NODE_CG[$node]}/$pod" || die "cgroup for $pod"
	DEMO_CGROUPS+=("${NODE_CG[$node]}/$pod")
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
	cni_del "$pod"
	ip netns del "${POD_NS[$pod]}" 2>/dev/null
	rmdir "${POD_CG[$pod]}" 2>/dev/null
}

# ---------------------------------------------------------------- endpoints

# publish_endpoints SERVICE: waits (10 s at most) until rota-controller's
# EndpointSlices for SERVICE list as ready exactly the endpoints it should:
# the Pods matching the Service's selector, Ready and not being deleted,
# with status.podIP (computed here from the API, the way the controller does).
# rota-controller writes the slices; this only waits for them. Returns 1 (and
# says so) on timeout.
publish_endpoints() {
	local svc=$1 sel want
	# shellcheck disable=SC2016 # a Go template, not shell
	sel=$(kube get svc "$svc" -o go-template='{{range $k, $v := .spec.selector}}{{$k}}={{$v}},{{end}}')
	sel=${sel%,}
	# shellcheck disable=SC2016 # a Go template, not shell
	want=$(kube get pods -l "$sel" -o go-template='{{range .items}}{{$ip := .status.podIP}}{{if and $ip (not .metadata.deletionTimestamp)}}
		{{- range .status.conditions}}{{if and (eq .type "Ready") (eq .status "True")}}{{$ip}}{{end}}{{end}}{{end}}
{{end}}' | grep . | sort | tr '\n' ' ')
	if ! wait_for 10 slice_ready_is "$svc" "$want"; then
		echo "demo: rota-controller's EndpointSlices for $svc do not list [${want% }] as ready" \
			"(they list [$(slice_ready "$svc")]); log: $DEMO_TMP/controller.log" >&2
		return 1
	fi
}
# slice_ready SERVICE: the ready addresses in rota-controller's slices, sorted.
slice_ready() {
	kube get endpointslice -l "kubernetes.io/service-name=$1,endpointslice.kubernetes.io/managed-by=rota-controller" \
		-o go-template='{{range .items}}{{range .endpoints}}{{if .conditions.ready}}{{range .addresses}}{{.}}
{{end}}{{end}}{{end}}{{end}}' 2>/dev/null | grep . | sort | tr '\n' ' '
}
slice_ready_is() { [[ $(slice_ready "$1") == "$2" ]]; }

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
