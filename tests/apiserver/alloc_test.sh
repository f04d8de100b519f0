#!/usr/bin/env bash
# ClusterIP and NodePort allocation like kube-apiserver: requested values
# honoured when free, conflicts -> 422, 200 concurrent creates -> 200
# distinct ClusterIPs, a full range -> a clear error, release on delete and
# type change, reuse after release. sqlite store.
source "$(dirname "$0")/lib.sh"
need "$APISERVER" kubectl curl

new_tmpdir
D=$TMPD
PORT=$(free_port)
# /23: 510 usable addresses, .1 taken by the kubernetes Service
start_apiserver "$D" "$PORT" --service-cluster-ip-range 10.200.0.0/23 --service-node-port-range 30000-30009
export KUBECONFIG=$D/kubeconfig
TOKEN=$(cat "$D/admin.token")
URL=https://127.0.0.1:$PORT

svc() { # svc NAME [SPEC-JSON-FRAGMENT]
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"ports\":[{\"port\":80}]${2:+,$2}}}"
}
export -f svc

check "kubernetes Service holds .1 of the configured range" expect_out '^10\.200\.0\.1$' \
	kubectl get svc kubernetes -o 'jsonpath={.spec.clusterIP}'
check "requested free ClusterIP is honoured" bash -c '
	svc fixed "\"clusterIP\":\"10.200.1.77\"" | kubectl create -f - >/dev/null
	[[ $(kubectl get svc fixed -o "jsonpath={.spec.clusterIP} {.spec.clusterIPs[0]}") == "10.200.1.77 10.200.1.77" ]]'
check "requested ClusterIP already in use -> 422 already allocated" expect_err \
	'spec.clusterIPs.*10\.200\.1\.77.*provided IP is already allocated' \
	bash -c 'svc dup "\"clusterIP\":\"10.200.1.77\"" | kubectl create -f -'
check "ClusterIP outside the range -> 422 with the range" expect_err \
	'spec.clusterIPs\[0\]: Invalid value: "10.96.0.10": provided IP is not in the valid range. The range of valid IPs is 10.200.0.0/23' \
	bash -c 'svc out "\"clusterIP\":\"10.96.0.10\"" | kubectl create -f -'
check "headless Service: clusterIP None" bash -c '
	svc hl "\"clusterIP\":\"None\"" | kubectl create -f - >/dev/null
	[[ $(kubectl get svc hl -o "jsonpath={.spec.clusterIP}") == None ]]'
check "ExternalName gets no ClusterIP" bash -c '
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"ext\"},\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"example.com\"}}" | kubectl create -f - >/dev/null
	[[ -z $(kubectl get svc ext -o "jsonpath={.spec.clusterIP}") ]]'
check "selector on ExternalName -> 422" expect_err 'spec.selector: Forbidden' bash -c '
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"ext2\"},\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"example.com\",\"selector\":{\"a\":\"b\"}}}" | kubectl create -f -'
check "ClusterIP is immutable" expect_err 'may not change once set' \
	kubectl patch svc fixed --type merge -p '{"spec":{"clusterIP":"10.200.1.78","clusterIPs":["10.200.1.78"]}}'

check "requested NodePort honoured, duplicate -> 422" bash -c '
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"np2\"},\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":30009}]}}" | kubectl create -f - >/dev/null
	[[ $(kubectl get svc np2 -o "jsonpath={.spec.ports[0].nodePort}") == 30009 ]] || exit 1
	out=$(echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"np3\"},\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":30009}]}}" | kubectl create -f - 2>&1) && exit 1
	grep -q "spec.ports\[0\].nodePort: Invalid value: 30009: provided port is already allocated" <<<"$out" || { echo "$out"; exit 1; }'
check "NodePort allocated in range for type NodePort" bash -c '
	svc np1 "\"type\":\"NodePort\"" | kubectl create -f - >/dev/null
	p=$(kubectl get svc np1 -o "jsonpath={.spec.ports[0].nodePort}")
	(( p >= 30000 && p <= 30009 )) || { echo "nodePort $p"; exit 1; }'
check "NodePort outside the range -> 422" expect_err 'provided port is not in the valid range. The range of valid ports is 30000-30009' bash -c '
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"np4\"},\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":31000}]}}" | kubectl create -f -'
check "nodePort on a ClusterIP Service -> 422" expect_err "nodePort: Forbidden: may not be used when .type. is 'ClusterIP'" bash -c '
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"np5\"},\"spec\":{\"ports\":[{\"port\":80,\"nodePort\":30001}]}}" | kubectl create -f -'
check "LoadBalancer gets NodePorts too" bash -c '
	svc lb "\"type\":\"LoadBalancer\"" | kubectl create -f - >/dev/null
	[[ -n $(kubectl get svc lb -o "jsonpath={.spec.ports[0].nodePort}") ]]'
check "LoadBalancer with externalTrafficPolicy Local gets a healthCheckNodePort, released on Cluster" bash -c '
	svc lbl "\"type\":\"LoadBalancer\",\"externalTrafficPolicy\":\"Local\"" | kubectl create -f - >/dev/null
	hc=$(kubectl get svc lbl -o "jsonpath={.spec.healthCheckNodePort}")
	(( hc >= 30000 && hc <= 30009 )) || { echo "healthCheckNodePort=$hc"; exit 1; }
	kubectl patch svc lbl --type merge -p "{\"spec\":{\"externalTrafficPolicy\":\"Cluster\"}}" >/dev/null
	[[ -z $(kubectl get svc lbl -o "jsonpath={.spec.healthCheckNodePort}") ]] || exit 1
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"hcre\"},\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":$hc}]}}" | kubectl create -f - >/dev/null
	kubectl delete svc lbl hcre >/dev/null'
check "type change NodePort -> ClusterIP releases the NodePort for reuse" bash -c '
	kubectl patch svc np2 --type merge -p "{\"spec\":{\"type\":\"ClusterIP\"}}" >/dev/null
	[[ -z $(kubectl get svc np2 -o "jsonpath={.spec.ports[0].nodePort}") ]] || exit 1
	echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"np6\"},\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":30009}]}}" | kubectl create -f - >/dev/null'
check "NodePort range exhaustion -> clear error" bash -c '
	for i in $(seq 1 12); do svc "fill-$i" "\"type\":\"NodePort\"" | kubectl create -f - >/dev/null 2>&1 || true; done
	out=$(svc npfull "\"type\":\"NodePort\"" | kubectl create -f - 2>&1) && exit 1
	grep -q "failed to allocate a nodePort: range is full" <<<"$out" || { echo "$out"; exit 1; }
	n=$(kubectl get svc -o "jsonpath={range .items[*]}{.spec.ports[*].nodePort}{\"\\n\"}{end}" | grep -c .)
	[[ $n -eq 10 ]] || { echo "$n services hold nodePorts"; exit 1; }'
check "delete releases the NodePort" bash -c '
	kubectl delete svc fill-1 np1 >/dev/null 2>&1 || kubectl delete svc np1 >/dev/null
	svc npagain "\"type\":\"NodePort\"" | kubectl create -f - >/dev/null'
kubectl delete svc $(kubectl get svc -o name | grep -E 'fill-|np|lb' | sed 's|service/||') >/dev/null 2>&1 || true

check "200 concurrent creates get 200 distinct ClusterIPs" bash -c '
	for i in $(seq 1 200); do
		curl -sk -o /dev/null -w "%{http_code}\n" -H "Authorization: Bearer '"$TOKEN"'" -H "Content-Type: application/json" \
			-X POST "'"$URL"'/api/v1/namespaces/default/services" -d "$(svc "c$i")" &
	done >'"$D"'/codes; wait
	[[ $(grep -c "^201$" '"$D"'/codes) -eq 200 ]] || { sort '"$D"'/codes | uniq -c; exit 1; }
	ips=$(kubectl get svc -o "jsonpath={range .items[*]}{.spec.clusterIP}{\"\\n\"}{end}" | grep -v None | grep .)
	total=$(wc -l <<<"$ips"); uniq=$(sort -u <<<"$ips" | wc -l)
	[[ $total -eq $uniq ]] || { echo "$total IPs, $uniq distinct"; exit 1; }
	[[ $(grep -c "^10\.200\.[01]\." <<<"$ips") -eq $total ]] || { echo "IP outside range"; exit 1; }'
check "ClusterIP range exhaustion -> clear error, nothing half-written" bash -c '
	for i in $(seq 201 520); do
		curl -sk -o /dev/null -H "Authorization: Bearer '"$TOKEN"'" -H "Content-Type: application/json" \
			-X POST "'"$URL"'/api/v1/namespaces/default/services" -d "$(svc "c$i")" &
		(( i % 50 == 0 )) && wait
	done; wait
	out=$(svc overflow | kubectl create -f - 2>&1) && exit 1
	grep -q "failed to allocate a serviceIP: range is full" <<<"$out" || { echo "$out"; exit 1; }
	kubectl get svc overflow 2>&1 | grep -q NotFound
	n=$(kubectl get svc -o "jsonpath={range .items[*]}{.spec.clusterIP}{\"\\n\"}{end}" | grep -c "^10\.200\.")
	[[ $n -eq 510 ]] || { echo "$n services with IPs, want 510 (the whole /23)"; exit 1; }'
check "a released ClusterIP is reused" bash -c '
	ip=$(kubectl get svc c7 -o "jsonpath={.spec.clusterIP}")
	kubectl delete svc c7 >/dev/null
	svc again | kubectl create -f - >/dev/null
	[[ $(kubectl get svc again -o "jsonpath={.spec.clusterIP}") == "$ip" ]]'
finish
