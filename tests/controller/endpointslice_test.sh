#!/usr/bin/env bash
# rota-controller's EndpointSlice controller against rota-apiserver, driven
# with kubectl and the REST API: endpoints, ports (named targetPorts),
# conditions, terminating Pods, >100 Pods, selector changes, selector-less
# Services, minimal writes, controller and API server restarts.
source "$(dirname "$0")/lib.sh"

setup
start_controller --log-level debug

kubectl create namespace t1 >/dev/null
kubectl create namespace t2 >/dev/null
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/zone: z1}}
---
apiVersion: v1
kind: Node
metadata: {name: node-b, labels: {topology.kubernetes.io/zone: z2}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: t1, labels: {team: blue}}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: metrics, port: 9090, targetPort: 9100}
YAML

# A placeholder slice while nothing matches, as kube keeps one.
check "placeholder slice without endpoints" eventually 10 summary_is t1 web "slices=1 max=0"

mkpod t1 web-1 '{"app":"web"}' node-a '[{"name":"http","containerPort":8080}]'
mkpod t1 web-2 '{"app":"web"}' node-b '[{"name":"http","containerPort":8081}]'
mkpod t1 web-3 '{"app":"web"}' node-b '[{"name":"other","containerPort":7000}]'
mkpod t1 noip '{"app":"web"}' node-a '[{"name":"http","containerPort":8080}]'
mkpod t1 other '{"app":"db"}' node-a '[{"name":"http","containerPort":8080}]'
mkpod t2 web-1 '{"app":"web"}' node-a '[{"name":"http","containerPort":8080}]'
podstatus t1 web-1 10.244.0.11 True
podstatus t1 web-2 10.244.1.12 True
podstatus t1 web-3 10.244.1.13 True
podstatus t1 other 10.244.0.14 True
podstatus t2 web-1 10.244.0.15 True
api PATCH /api/v1/namespaces/t1/pods/noip/status '{"status":{"phase":"Pending"}}' application/merge-patch+json >/dev/null

WANT="10.244.0.11 http:8080/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-a zone=z1 pod=web-1
10.244.1.12 http:8081/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=web-2
10.244.1.13 metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=web-3
slices=3 max=1"
check "endpoints, named targetPorts resolved per Pod (one slice per port mapping), zones" \
	eventually 10 summary_is t1 web "$WANT"

slice_meta() {
	local uid
	uid=$(kubectl get svc -n t1 web -o jsonpath='{.metadata.uid}')
	kubectl get endpointslices -n t1 -l kubernetes.io/service-name=web -o json | $PY -c '
import json, re, sys
uid = sys.argv[1]
for s in json.load(sys.stdin)["items"]:
    m = s["metadata"]
    assert s["addressType"] == "IPv4", s
    assert m["labels"] == {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "rota-controller", "team": "blue"}, m["labels"]
    assert m.get("generateName") == "web-" and m["name"].startswith("web-"), m
    refs = m["ownerReferences"]
    assert len(refs) == 1 and refs[0]["uid"] == uid and refs[0]["kind"] == "Service" and refs[0]["name"] == "web" and refs[0]["controller"], refs
    t = m["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", t), t
    for e in s["endpoints"]:
        r = e["targetRef"]
        assert r["kind"] == "Pod" and r["namespace"] == "t1" and r["uid"], r
print("ok")
' "$uid"
}
check "slice labels (service labels copied), ownerReference, generateName, trigger-time annotation, targetRef" slice_meta

# slice_rvs NS SVC: "name=rv" of every slice, sorted.
slice_rvs() {
	kubectl get endpointslices -n "$1" -l "kubernetes.io/service-name=$2" \
		-o jsonpath='{range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}' | sort
}
writes() { grep -cE '^rota-controller: (POST|PUT|DELETE|PATCH) ' "$D/controller.log" || true; }

before=$(slice_rvs t1 web)
w0=$(writes)
kubectl annotate pod -n t1 web-1 note=irrelevant >/dev/null
kubectl label pod -n t1 web-2 extra=label >/dev/null
api PATCH /api/v1/namespaces/t1/pods/web-3/status '{"status":{"hostIP":"192.168.1.2"}}' application/merge-patch+json >/dev/null
sleep 1.5
check "Pod changes that do not touch an endpoint write nothing" \
	bash -c '[[ "$1" == "$2" && "$3" == "$4" ]] || { echo "$1 / $2 / writes $3 -> $4"; exit 1; }' _ "$before" "$(slice_rvs t1 web)" "$w0" "$(writes)"

# Readiness flips: only the slice holding the Pod is rewritten.
rv_of_slice_with() {
	kubectl get endpointslices -n t1 -l kubernetes.io/service-name=web -o json | $PY -c '
import json, sys
for s in json.load(sys.stdin)["items"]:
    if any(e["targetRef"]["name"] == sys.argv[1] for e in s.get("endpoints") or []):
        print(s["metadata"]["resourceVersion"])' "$1"
}
rv2=$(rv_of_slice_with web-2)
w0=$(writes)
podstatus t1 web-1 10.244.0.11 False
WANT="10.244.0.11 http:8080/TCP,metrics:9100/TCP ready=0 serving=0 terminating=0 node=node-a zone=z1 pod=web-1
10.244.1.12 http:8081/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=web-2
10.244.1.13 metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=web-3
slices=3 max=1"
check "Pod not Ready: ready=false serving=false" eventually 10 summary_is t1 web "$WANT"
sleep 0.5
check "only the changed slice was written (one write)" \
	bash -c '[[ "$1" == "$2" && $(($4 - $3)) -eq 1 ]] || { echo "rv $1 -> $2, writes $3 -> $4"; exit 1; }' _ "$rv2" "$(rv_of_slice_with web-2)" "$w0" "$(writes)"
podstatus t1 web-1 10.244.0.11 True

# Terminating: a scheduled Pod deleted with a grace period keeps existing.
kubectl delete pod -n t1 web-2 --grace-period=30 --wait=false >/dev/null
WANT="10.244.0.11 http:8080/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-a zone=z1 pod=web-1
10.244.1.12 http:8081/TCP,metrics:9100/TCP ready=0 serving=1 terminating=1 node=node-b zone=z2 pod=web-2
10.244.1.13 metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=web-3
slices=3 max=1"
check "terminating Pod: terminating=true, serving from readiness, ready=false" eventually 10 summary_is t1 web "$WANT"
kubectl delete pod -n t1 web-2 --grace-period=0 --force >/dev/null 2>&1
podstatus t1 web-3 10.244.1.13 True Succeeded
WANT="10.244.0.11 http:8080/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-a zone=z1 pod=web-1
slices=1 max=1"
check "deleted and Succeeded Pods leave; emptied slices are deleted" eventually 10 summary_is t1 web "$WANT"

# A hand-deleted or hand-edited slice of ours is put back.
name=$(kubectl get endpointslices -n t1 -l kubernetes.io/service-name=web -o jsonpath='{.items[0].metadata.name}')
kubectl delete endpointslice -n t1 "$name" >/dev/null
check "a deleted slice is recreated" eventually 10 summary_is t1 web "$WANT"
name=$(kubectl get endpointslices -n t1 -l kubernetes.io/service-name=web -o jsonpath='{.items[0].metadata.name}')
kubectl patch endpointslice -n t1 "$name" --type=json -p '[{"op":"replace","path":"/endpoints/0/conditions/ready","value":false}]' >/dev/null
check "an edited slice is repaired" eventually 10 summary_is t1 web "$WANT"

# Selector change.
mkpod t1 api-1 '{"app":"api"}' node-b '[{"name":"http","containerPort":9000}]'
podstatus t1 api-1 10.244.1.21 True
kubectl patch svc -n t1 web --type=merge -p '{"spec":{"selector":{"app":"api"}}}' >/dev/null
WANT="10.244.1.21 http:9000/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=api-1
slices=1 max=1"
check "selector change: endpoints follow the new selector" eventually 10 summary_is t1 web "$WANT"

# publishNotReadyAddresses.
podstatus t1 api-1 10.244.1.21 False
kubectl patch svc -n t1 web --type=merge -p '{"spec":{"publishNotReadyAddresses":true}}' >/dev/null
check "publishNotReadyAddresses: unready Pod is ready" eventually 10 summary_is t1 web "$WANT"

# More than 100 Pods: several slices of at most 100.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: big, namespace: t2}
spec:
  selector: {app: big}
  ports: [{port: 80, targetPort: 8080}]
YAML
for i in $(seq 1 250); do
	echo "POST /api/v1/namespaces/t2/pods application/json {\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"big-$i\",\"labels\":{\"app\":\"big\"}},\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}"
	echo "PATCH /api/v1/namespaces/t2/pods/big-$i/status application/merge-patch+json {\"status\":{\"phase\":\"Running\",\"podIP\":\"10.245.$((i / 200)).$((i % 200 + 1))\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"
done | bulk
big_ok() {
	local n=$1 out
	out=$(summary t2 big)
	[[ $(grep -c ' pod=big-' <<<"$out") -eq $n ]] || { echo "want $n endpoints: $(tail -1 <<<"$out")"; return 1; }
	[[ $(grep -v '^slices' <<<"$out" | awk '{print $1}' | sort -u | wc -l) -eq $n ]] || { echo "duplicates"; return 1; }
	tail -1 <<<"$out" | grep -qE "^slices=$2 max=$3$" || { echo "want slices=$2 max=$3: $(tail -1 <<<"$out")"; return 1; }
}
# big_ok_svc SVC N: N distinct endpoints of SVC.
big_ok_svc() {
	local out
	out=$(summary t2 "$1")
	[[ $(grep -v '^slices' <<<"$out" | awk '{print $1}' | sort -u | wc -l) -eq $2 &&
	   $(grep -vc '^slices' <<<"$out") -eq $2 ]] || { echo "want $2 endpoints: $(tail -1 <<<"$out")"; return 1; }
}
# big_down N: N endpoints, each once, in at most 3 slices of at most 100,
# none empty (slices are not repacked, as in kube).
big_down() {
	local out
	out=$(summary t2 big)
	[[ $(grep -c ' pod=big-' <<<"$out") -eq $1 ]] || { echo "want $1 endpoints: $(tail -1 <<<"$out")"; return 1; }
	[[ $(grep -v '^slices' <<<"$out" | awk '{print $1}' | sort -u | wc -l) -eq $1 ]] || { echo "duplicates"; return 1; }
	kubectl get endpointslices -n t2 -l kubernetes.io/service-name=big -o json | $PY -c '
import json, sys
items = json.load(sys.stdin)["items"]
sizes = [len(s.get("endpoints") or []) for s in items]
assert 1 <= len(items) <= 3 and all(1 <= n <= 100 for n in sizes), sizes'
}
check "250 Pods: 3 slices of at most 100, every Pod once" eventually 30 big_ok 250 3 100
for i in $(seq 101 250); do
	echo "DELETE /api/v1/namespaces/t2/pods/big-$i"
done | bulk
check "scale down to 100: every Pod once, no empty slice" eventually 30 big_down 100

# Selector-less Service: its slices are left alone, none created.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: t1}
spec:
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: manual-1
  namespace: t1
  labels: {kubernetes.io/service-name: manual, endpointslice.kubernetes.io/managed-by: someone-else}
addressType: IPv4
ports: [{name: "", port: 80, protocol: TCP}]
endpoints: [{addresses: [10.9.9.9]}]
YAML
rv=$(kubectl get endpointslice -n t1 manual-1 -o jsonpath='{.metadata.resourceVersion}')
sleep 1.5
check "selector-less Service: foreign slice untouched, none created" \
	bash -c '[[ $(kubectl get endpointslice -n t1 manual-1 -o jsonpath="{.metadata.resourceVersion}") == "$1" &&
		    $(kubectl get endpointslices -n t1 -l kubernetes.io/service-name=manual -o name | wc -l) -eq 1 ]]' _ "$rv"

# Selector removed: the slices this controller made for it go.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: sel, namespace: t2}
spec:
  selector: {app: big}
  ports: [{port: 80}]
YAML
check "a second Service over the same Pods gets its own slices" eventually 20 big_ok_svc sel 100
kubectl patch svc -n t2 sel --type=json -p '[{"op":"remove","path":"/spec/selector"}]' >/dev/null
check "selector removed: its managed slices are deleted" eventually 10 summary_is t2 sel "slices=0 max=0"

# Service deletion removes its slices.
kubectl delete svc -n t2 big >/dev/null
check "deleted Service: its slices are deleted" eventually 10 summary_is t2 big "slices=0 max=0"

# Controller restart: converges to the same state, no duplicates, and
# writes nothing when nothing changed.
stop_pid "$CTL_PID"
before=$(slice_rvs t1 web)
w0=$(writes)
start_controller
sleep 2
check "restart with nothing changed: no writes, same slices" \
	bash -c '[[ "$1" == "$2" && "$3" == "$4" ]] || { echo "$1 / $2 / writes $3 -> $4"; exit 1; }' _ "$before" "$(slice_rvs t1 web)" "$w0" "$(writes)"
stop_pid "$CTL_PID"
mkpod t1 api-2 '{"app":"api"}' node-a '[{"name":"http","containerPort":9001}]'
podstatus t1 api-2 10.244.0.22 True
kubectl delete pod -n t1 api-1 >/dev/null
start_controller
WANT="10.244.0.22 http:9001/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-a zone=z1 pod=api-2
slices=1 max=1"
check "changes made while the controller was down are picked up after restart" eventually 10 summary_is t1 web "$WANT"

# API server restart: the controller reconnects and keeps working.
stop_pid "$API_PID"
sleep 1
start_apiserver
mkpod t1 api-3 '{"app":"api"}' node-b '[{"name":"http","containerPort":9001}]'
podstatus t1 api-3 10.244.1.23 True
WANT="10.244.0.22 http:9001/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-a zone=z1 pod=api-2
10.244.1.23 http:9001/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=api-3
slices=1 max=2"
check "API server restart: the controller reconnects and converges" eventually 40 summary_is t1 web "$WANT"

# 410 Gone: the controller's resourceVersion falls out of the API server's
# watch history while it is frozen; it relists and converges.
kill -STOP "$CTL_PID"
stop_pid "$API_PID"
start_apiserver --watch-history 5
kubectl delete pod -n t1 api-2 >/dev/null
# (sqlite compacts its event history every 64 transactions)
for i in $(seq 1 80); do
	echo "POST /api/v1/namespaces/t1/configmaps application/json {\"metadata\":{\"name\":\"filler-$i\"}}"
done | bulk
kill -CONT "$CTL_PID"
WANT="10.244.1.23 http:9001/TCP,metrics:9100/TCP ready=1 serving=1 terminating=0 node=node-b zone=z2 pod=api-3
slices=1 max=1"
check "410 Gone after a long pause: relist and converge" eventually 40 summary_is t1 web "$WANT"
check "the controller relisted on 410" eventually 20 grep -q "is gone.*relisting" "$D/controller.log"

check "controller still running, no write errors other than conflicts" \
	bash -c 'kill -0 "$1" && ! grep -E "HTTP (4[0-8][0-9]|5[0-9][0-9])" "$2" | grep -v "HTTP 409"' _ "$CTL_PID" "$D/controller.log"

finish
