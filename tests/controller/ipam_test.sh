#!/usr/bin/env bash
# rota-controller's Node IPAM (spec.podCIDR/podCIDRs from --cluster-cidr)
# and LoadBalancer IPAM (status.loadBalancer.ingress from --lb-pool):
# uniqueness, pre-set values honoured, exhaustion, release and reuse,
# requested IPs, type changes, restart without churn.
source "$(dirname "$0")/lib.sh"

setup
# 4 node CIDRs; LB addresses 192.0.2.1, 192.0.2.2 (a /30 without network
# and broadcast) and 198.51.100.7.
FLAGS=(--cluster-cidr 10.250.0.0/22 --node-cidr-mask-size 24 --lb-pool 192.0.2.0/30 --lb-pool 198.51.100.7/32)
start_controller "${FLAGS[@]}"

cidr_of() { kubectl get node "$1" -o jsonpath='{.spec.podCIDR} {.spec.podCIDRs}'; }
cidr_is() { [[ $(cidr_of "$1") == "$2 [\"$2\"]" ]] || { echo "$1: $(cidr_of "$1")"; return 1; }; }
has_cidr() { [[ -n $(kubectl get node "$1" -o jsonpath='{.spec.podCIDR}') ]]; }

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Node
metadata: {name: pre}
spec: {podCIDR: 10.250.2.0/24, podCIDRs: [10.250.2.0/24]}
YAML
for n in n1 n2 n3; do
	kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: $n}
YAML
done
all_assigned() {
	local n
	for n in n1 n2 n3; do has_cidr "$n" || return 1; done
}
check "nodes without a Pod CIDR get one" eventually 10 all_assigned
unique_cidrs() {
	local out
	out=$(kubectl get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR} {.spec.podCIDRs[0]}{"\n"}{end}')
	echo "$out"
	[[ $(awk '$1 != "" {print $1}' <<<"$out" | sort -u | wc -l) -eq 4 ]] &&
	[[ $(awk '$1 != ""' <<<"$out" | wc -l) -eq 4 ]] &&
	! awk '$1 != $2 || $1 !~ /^10\.250\.[0-3]\.0\/24$/ {bad=1} END {exit !bad}' <<<"$out"
}
check "Pod CIDRs unique, inside --cluster-cidr, podCIDRs == [podCIDR]" unique_cidrs
check "a pre-set podCIDR is kept" cidr_is pre 10.250.2.0/24

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Node
metadata: {name: n4}
YAML
sleep 1.5
check "cluster CIDR full: the extra node gets none, the controller says why" \
	bash -c '! kubectl get node n4 -o jsonpath="{.spec.podCIDR}" | grep -q . && grep -q "cluster CIDR is full" "$1"' _ "$D/controller.log"
freed=$(kubectl get node n2 -o jsonpath='{.spec.podCIDR}')
kubectl delete node n2 >/dev/null
check "a deleted node's CIDR is released and reused" eventually 10 cidr_is n4 "$freed"

# LoadBalancer IPs.
lb_ip() { kubectl get svc -n default "$1" -o jsonpath='{.status.loadBalancer.ingress[*].ip}'; }
lb_is() { [[ $(lb_ip "$1") == "$2" ]] || { echo "$1: '$(lb_ip "$1")', want '$2'"; return 1; }; }
mklb() {
	local name=$1 extra=${2:-}
	kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: default}
spec:
  type: LoadBalancer
  ports: [{port: 80}]
  $extra
YAML
}
mklb lb1
check "LoadBalancer Service gets the first pool address" eventually 10 lb_is lb1 192.0.2.1
mklb lb2 "loadBalancerIP: 198.51.100.7"
check "a requested free IP is honoured" eventually 10 lb_is lb2 198.51.100.7
check "ipMode VIP is set" bash -c '[[ $(kubectl get svc lb2 -o jsonpath="{.status.loadBalancer.ingress[0].ipMode}") == VIP ]]'
mklb lb3
check "next Service gets the next free address" eventually 10 lb_is lb3 192.0.2.2
mklb lb4
sleep 1.5
check "pool exhausted: no IP, the controller says why" \
	bash -c '[[ -z $(kubectl get svc lb4 -o jsonpath="{.status.loadBalancer.ingress}") ]] && grep -q "every --lb-pool is exhausted" "$1"' _ "$D/controller.log"
mklb other "loadBalancerClass: example.com/other"
mklb outside "loadBalancerIP: 203.0.113.9"
kubectl delete svc lb1 >/dev/null
check "a deleted Service's IP is released and goes to the waiting one" eventually 10 lb_is lb4 192.0.2.1
kubectl patch svc lb3 --type=merge -p '{"spec":{"type":"ClusterIP"}}' >/dev/null
check "type change away from LoadBalancer clears status.loadBalancer" eventually 10 lb_is lb3 ""
mklb lb5
check "the released address is reused" eventually 10 lb_is lb5 192.0.2.2
check "a Service with another loadBalancerClass is left alone" lb_is other ""
check "a requested IP outside every pool is not assigned, with a warning" \
	bash -c '[[ -z $(kubectl get svc outside -o jsonpath="{.status.loadBalancer.ingress}") ]] && grep -q "203.0.113.9 is not in any --lb-pool" "$1"' _ "$D/controller.log"
mklb lb6
sleep 1
kubectl patch svc -n default lb6 --subresource=status --type=merge \
	-p '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.2"}]}}}' >/dev/null
sleep 1.5
check "a newer Service claiming an IP in use loses it (pool full: it gets none)" \
	bash -c '[[ $(kubectl get svc lb5 -o jsonpath="{.status.loadBalancer.ingress[0].ip}") == 192.0.2.2 && -z $(kubectl get svc lb6 -o jsonpath="{.status.loadBalancer.ingress}") ]]'

# Restart: everything stays, nothing is written.
writes() { grep -cE '^rota-controller: (POST|PUT|DELETE|PATCH) ' "$D/controller.log" || true; }
stop_pid "$CTL_PID"
w0=$(writes)
snap() {
	kubectl get svc,nodes -A -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.resourceVersion}{"\n"}{end}' | sort
}
before=$(snap)
start_controller "${FLAGS[@]}"
sleep 2
check "controller restart: no writes, same assignments" \
	bash -c '[[ "$1" == "$2" && "$3" == "$4" ]] || { diff <(echo "$1") <(echo "$2"); echo "writes $3 -> $4"; exit 1; }' _ "$before" "$(snap)" "$w0" "$(writes)"

finish
