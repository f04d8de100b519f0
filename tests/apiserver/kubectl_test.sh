#!/usr/bin/env bash
# rota-apiserver with real kubectl: every kind through create/apply/get/
# list/label/patch/replace/delete, errors as kube-apiserver words them,
# selectors, paging, /status, discovery. sqlite store.
source "$(dirname "$0")/lib.sh"
need "$APISERVER" kubectl curl

new_tmpdir
D=$TMPD
PORT=$(free_port)
start_apiserver "$D" "$PORT"
export KUBECONFIG=$D/kubeconfig
TOKEN=$(cat "$D/admin.token")
api() { curl -sk -H "Authorization: Bearer $TOKEN" "$@"; }
export -f api
export TOKEN
URL=https://127.0.0.1:$PORT

cat >"$D/all.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: t1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: t1, labels: {app: web, tier: front}}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: t1, labels: {app: web}}
data: {key: value}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: t1}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: t1, labels: {app: web}}
spec:
  nodeName: node-a
  containers: [{name: c, image: busybox:1.36, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: t1, labels: {app: web, tier: back}}
spec:
  nodeName: node-b
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/zone: z1}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x1, namespace: t1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.1.0.5], conditions: {ready: true}, nodeName: node-a}]
ports: [{name: http, port: 8080, protocol: TCP}]
YAML

check "bootstrap namespaces default and kube-system" \
	expect_out '^default.*Active' kubectl get ns default kube-system --no-headers
check "bootstrap kubernetes Service at .1 of the range" \
	expect_out '^10\.96\.0\.1$' kubectl get svc kubernetes -o 'jsonpath={.spec.clusterIP}'
check "apply creates every kind" expect_out 'endpointslice.discovery.k8s.io/web-x1 created' \
	kubectl apply -f "$D/all.yaml"
check "re-apply unchanged" expect_out 'service/web unchanged' kubectl apply -f "$D/all.yaml"
sed -i 's/targetPort: 8080}/targetPort: 9090}/' "$D/all.yaml"
check "apply a change (strategic merge patch from kubectl)" expect_out 'service/web configured' \
	kubectl apply -f "$D/all.yaml"
check "applied change landed, other port kept, generation bumped" bash -c '
	out=$(kubectl -n t1 get svc web -o "jsonpath={.spec.ports[0].targetPort} {.spec.ports[1].port} {.metadata.generation}")
	[[ $out == "9090 443 2" ]] || { echo "got: $out"; exit 1; }'
check "object metadata: uid, resourceVersion, creationTimestamp" bash -c '
	kubectl -n t1 get cm cfg -o json | /usr/bin/python3 -c "
import json,sys; o=json.load(sys.stdin); m=o[\"metadata\"]
assert o[\"apiVersion\"]==\"v1\" and o[\"kind\"]==\"ConfigMap\", o
assert len(m[\"uid\"])==36 and int(m[\"resourceVersion\"])>0 and m[\"creationTimestamp\"].endswith(\"Z\"), m"'
check "list kinds carry metadata.resourceVersion" bash -c '
	kubectl get --raw /api/v1/namespaces/t1/pods | /usr/bin/python3 -c "
import json,sys; o=json.load(sys.stdin)
assert o[\"kind\"]==\"PodList\" and int(o[\"metadata\"][\"resourceVersion\"])>0 and len(o[\"items\"])==2, o"'
check "secret stringData folded into base64 data" expect_out '^aHVudGVyMg==$' \
	kubectl -n t1 get secret sec -o 'jsonpath={.data.password}'
check "get every kind in a table" expect_out 'web-x1' \
	kubectl get ns,svc,cm,secret,pods,endpointslices -n t1
check "get nodes (cluster-scoped)" expect_out '^node-a ' kubectl get nodes --no-headers
check "short names svc/cm/po/no/ns" kubectl get svc,cm,po -n t1 --no-headers
check "label" expect_out 'labeled' kubectl -n t1 label cm cfg color=blue
check "label selector =" expect_out '^cfg ' kubectl -n t1 get cm -l color=blue --no-headers
check "label selector in/notin/!" bash -c '
	a=$(kubectl -n t1 get pods -l "tier in (back)" -o name)
	b=$(kubectl -n t1 get pods -l "app=web,tier notin (back)" -o name)
	c=$(kubectl -n t1 get pods -l "!tier" -o name)
	[[ $a == pod/web-2 && $b == pod/web-1 && $c == pod/web-1 ]] || { echo "$a|$b|$c"; exit 1; }'
check "field selector spec.nodeName on pods across namespaces" bash -c '
	out=$(kubectl get pods -A --field-selector spec.nodeName=node-b -o name)
	[[ $out == pod/web-2 ]] || { echo "got $out"; exit 1; }'
check "field selector metadata.name" expect_out '^pod/web-1$' \
	kubectl -n t1 get pods --field-selector metadata.name=web-1 -o name
check "unsupported field selector rejected" expect_err 'field label not supported: spec.bogus' \
	kubectl -n t1 get pods --field-selector spec.bogus=x
check "annotate" expect_out 'annotated' kubectl -n t1 annotate svc web note=hello
check "merge patch" expect_out 'patched' kubectl -n t1 patch cm cfg --type merge -p '{"data":{"k2":"v2"}}'
check "json patch" expect_out 'patched' kubectl -n t1 patch cm cfg --type json \
	-p '[{"op":"replace","path":"/data/key","value":"v9"},{"op":"remove","path":"/data/k2"}]'
check "patches applied" expect_out '^\{"key":"v9"\}$' kubectl -n t1 get cm cfg -o 'jsonpath={.data}'
check "strategic merge patch merges service ports by port" bash -c '
	kubectl -n t1 patch svc web -p "{\"spec\":{\"ports\":[{\"port\":443,\"targetPort\":8443}]}}" >/dev/null
	out=$(kubectl -n t1 get svc web -o "jsonpath={.spec.ports[*].port}/{.spec.ports[1].targetPort}")
	[[ $out == "80 443/8443" ]] || { echo "got $out"; exit 1; }'
check "strategic merge patch \$patch: delete on a port" bash -c '
	kubectl -n t1 patch svc web -p "{\"spec\":{\"ports\":[{\"port\":443,\"\$patch\":\"delete\"}]}}" >/dev/null
	out=$(kubectl -n t1 get svc web -o "jsonpath={.spec.ports[*].port}")
	[[ $out == "80" ]] || { echo "got $out"; exit 1; }'
check "strategic merge patch merges containers by name" bash -c '
	kubectl -n t1 patch pod web-1 -p "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1.37\"}]}}" >/dev/null
	out=$(kubectl -n t1 get pod web-1 -o "jsonpath={.spec.containers[0].image} {.spec.containers[0].ports[0].containerPort}")
	[[ $out == "busybox:1.37 8080" ]] || { echo "got $out"; exit 1; }'
kubectl -n t1 get cm cfg -o json >"$D/cfg-old.json"
kubectl -n t1 label cm cfg bump=1 >/dev/null
check "update with a stale resourceVersion -> 409 Conflict" \
	expect_err 'Conflict.*the object has been modified' kubectl replace -f "$D/cfg-old.json"
check "create existing -> 409 AlreadyExists" \
	expect_err 'AlreadyExists.*configmaps "cfg" already exists' kubectl -n t1 create -f "$D/cfg-old.json"
check "get missing -> NotFound" expect_err 'NotFound.*services "nope" not found' kubectl -n t1 get svc nope
check "create in a missing namespace -> NotFound" bash -c '
	out=$(api -X POST "'"$URL"'/api/v1/namespaces/nosuch/configmaps" -H "Content-Type: application/json" \
		-d "{\"metadata\":{\"name\":\"x\"}}")
	grep -q "\"reason\":\"NotFound\"" <<<"$out" && grep -q "namespaces \\\\\"nosuch\\\\\" not found" <<<"$out" || { echo "$out"; exit 1; }'
check "invalid service -> 422 with field paths" bash -c '
	out=$(kubectl -n t1 create -f - 2>&1 <<JSON
{"apiVersion":"v1","kind":"Service","metadata":{"name":"bad"},"spec":{"ports":[{"port":0},{"name":"a","port":80,"protocol":"XYZ"}]}}
JSON
) && exit 1
	for f in "spec.ports\[0\].port: Invalid value: 0" "spec.ports\[0\].name: Required value" \
		"spec.ports\[1\].protocol: Unsupported value: \"XYZ\""; do
		grep -q "$f" <<<"$out" || { echo "missing $f in: $out"; exit 1; }
	done'
check "422 Status has details.causes[].field" bash -c '
	out=$(api -X POST "'"$URL"'/api/v1/namespaces/t1/services" -H "Content-Type: application/json" \
		-d "{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"ports\":[{\"port\":70000}]}}")
	/usr/bin/python3 -c "
import json,sys; s=json.loads(sys.argv[1])
assert s[\"code\"]==422 and s[\"reason\"]==\"Invalid\", s
assert \"spec.ports[0].port\" in [c[\"field\"] for c in s[\"details\"][\"causes\"]], s" "$out"'
check "malformed JSON -> 400 BadRequest" bash -c '
	out=$(api -o /dev/null -w "%{http_code}" -X POST "'"$URL"'/api/v1/namespaces/t1/configmaps" \
		-H "Content-Type: application/json" -d "{nope")
	[[ $out == 400 ]] || { echo "got $out"; exit 1; }'
check "YAML body is accepted" bash -c '
	out=$(api -o /dev/null -w "%{http_code}" -X POST "'"$URL"'/api/v1/namespaces/default/configmaps" \
		-H "Content-Type: application/yaml" --data-binary $'"'"'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  port: "80"\n  on: "yes"\n'"'"')
	[[ $out == 201 ]] || { echo "got $out"; exit 1; }
	[[ $(kubectl get cm from-yaml -o "jsonpath={.data.port}") == 80 ]]'
check "malformed YAML -> 400 naming the line" bash -c '
	out=$(api -X POST "'"$URL"'/api/v1/namespaces/t1/configmaps" -H "Content-Type: application/yaml" \
		--data-binary $'"'"'metadata:\n  name: x\n data: [\n'"'"')
	grep -q "\"code\":400" <<<"$out" && grep -q "yaml: line" <<<"$out" || { echo "$out"; exit 1; }'
check "unknown resource -> 404" expect_err 'NotFound|could not find' kubectl get --raw /api/v1/widgets
check "unknown group -> 404" expect_err 'NotFound|could not find' kubectl get --raw /apis/apps/v1/deployments
check "kind mismatch in body -> 400" bash -c '
	out=$(api -X POST "'"$URL"'/api/v1/namespaces/t1/configmaps" -H "Content-Type: application/json" \
		-d "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\"}}")
	grep -q "\"code\":400" <<<"$out" || { echo "$out"; exit 1; }'

check "limit/continue pages through a list" bash -c '
	for i in 1 2 3 4 5; do kubectl -n t1 create configmap "page-$i" --dry-run=client -o json | kubectl create -f - >/dev/null; done
	names=(); cont=""
	for page in 1 2 3 4 5 6 7 8; do
		out=$(api "'"$URL"'/api/v1/namespaces/t1/configmaps?limit=2&labelSelector=&continue=$cont")
		read -r n c < <(/usr/bin/python3 -c "
import json,sys; o=json.loads(sys.argv[1])
print(\",\".join(i[\"metadata\"][\"name\"] for i in o[\"items\"]), o[\"metadata\"].get(\"continue\",\"\"))" "$out")
		names+=("$n"); cont=$c
		[[ -z $cont ]] && break
	done
	all=$(IFS=,; echo "${names[*]}")
	[[ $all == "cfg,page-1,page-2,page-3,page-4,page-5" ]] || { echo "pages: ${names[*]}"; exit 1; }'
check "kubectl get --chunk-size=2 sees everything" bash -c '
	[[ $(kubectl -n t1 get cm --chunk-size=2 --no-headers | wc -l) -eq 6 ]]'

check "status subresource: patch changes status only" bash -c '
	kubectl -n t1 patch pod web-1 --subresource=status --type merge \
		-p "{\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.0.5\"},\"spec\":{\"nodeName\":\"evil\"}}" >/dev/null
	out=$(kubectl -n t1 get pod web-1 -o "jsonpath={.status.phase} {.status.podIP} {.spec.nodeName}")
	[[ $out == "Running 10.1.0.5 node-a" ]] || { echo "got $out"; exit 1; }'
check "main resource update leaves status alone" bash -c '
	kubectl -n t1 patch pod web-1 --type merge -p "{\"status\":{\"phase\":\"Failed\"}}" >/dev/null
	[[ $(kubectl -n t1 get pod web-1 -o "jsonpath={.status.phase}") == Running ]]'
check "node status via /status" bash -c '
	kubectl patch node node-a --subresource=status --type merge \
		-p "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}" >/dev/null
	kubectl get node node-a --no-headers | grep -q " Ready "'
check "service status via /status" bash -c '
	kubectl -n t1 patch svc web --subresource=status --type merge \
		-p "{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"192.0.2.7\"}]}}}" >/dev/null
	[[ $(kubectl -n t1 get svc web -o "jsonpath={.status.loadBalancer.ingress[0].ip}") == 192.0.2.7 ]]'

check "discovery: api-resources with short names" bash -c '
	out=$(kubectl api-resources --no-headers)
	for r in "services +svc +v1 +true +Service" "namespaces +ns +v1 +false" "endpointslices +discovery.k8s.io/v1 +true" \
		"pods +po" "nodes +no" "configmaps +cm" "secrets +v1"; do
		grep -qE "^$r" <<<"$out" || { echo "missing $r in $out"; exit 1; }
	done'
check "aggregated discovery (apidiscovery.k8s.io/v2)" bash -c '
	out=$(api -H "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" "'"$URL"'/apis")
	grep -q "\"kind\":\"APIGroupDiscoveryList\"" <<<"$out" && grep -q "\"resource\":\"endpointslices\"" <<<"$out" || { echo "$out"; exit 1; }'
check "/version" expect_out 'Server Version: v1\.32' kubectl version
check "/healthz /livez /readyz answer ok without a token" bash -c '
	for p in healthz livez readyz; do [[ $(curl -sk "'"$URL"'/$p") == ok ]] || exit 1; done'
check "kubectl create namespace (typed client)" expect_out 'namespace/t2 created' kubectl create namespace t2
check "kubectl create configmap (typed client)" expect_out 'configmap/c2 created' \
	kubectl -n t2 create configmap c2 --from-literal=a=b
check "kubectl create secret generic (typed client)" expect_out 'secret/s2 created' \
	kubectl -n t2 create secret generic s2 --from-literal=a=b
check "kubectl create service (typed client)" expect_out 'service/s3 created' \
	kubectl -n t2 create service nodeport s3 --tcp=80:8080

check "delete" expect_out 'deleted' kubectl -n t1 delete cm page-1
check "finalizers: delete marks deletionTimestamp, removing the last finalizer deletes" bash -c '
	kubectl -n t1 create -f - >/dev/null <<JSON
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fin","finalizers":["example.com/hold"]}}
JSON
	kubectl -n t1 delete cm fin --wait=false >/dev/null
	[[ -n $(kubectl -n t1 get cm fin -o "jsonpath={.metadata.deletionTimestamp}") ]] || { echo "no deletionTimestamp"; exit 1; }
	kubectl -n t1 patch cm fin --type json -p "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]" >/dev/null
	kubectl -n t1 get cm fin 2>&1 | grep -q NotFound'
check "pod deleted with a grace period stays Terminating until deleted with 0" bash -c '
	kubectl -n t1 delete pod web-2 --grace-period=30 --wait=false >/dev/null
	kubectl -n t1 get pod web-2 --no-headers | grep -q Terminating || { kubectl -n t1 get pod web-2; exit 1; }
	[[ $(kubectl -n t1 get pod web-2 -o "jsonpath={.metadata.deletionGracePeriodSeconds}") == 30 ]] || exit 1
	kubectl -n t1 delete pod web-2 --grace-period=0 --force >/dev/null 2>&1
	kubectl -n t1 get pod web-2 2>&1 | grep -q NotFound'
check "pod deleted without a grace period goes at once (no kubelet here)" bash -c '
	kubectl -n t1 delete pod web-1 >/dev/null && kubectl -n t1 get pod web-1 2>&1 | grep -q NotFound' 
check "deletecollection with a label selector" bash -c '
	for i in 1 2 3; do kubectl -n t1 create configmap "dc-$i" >/dev/null; done
	kubectl -n t1 label cm dc-1 dc-2 sweep=yes >/dev/null
	out=$(api -X DELETE "'"$URL"'/api/v1/namespaces/t1/configmaps?labelSelector=sweep%3Dyes")
	grep -q "\"kind\":\"ConfigMapList\"" <<<"$out" || { echo "$out"; exit 1; }
	[[ $(kubectl -n t1 get cm -o name | grep -c dc-) -eq 1 ]] && kubectl -n t1 get cm dc-3 >/dev/null'
check "legacy /watch/ path for one named object" bash -c '
	out=$(api --max-time 3 "'"$URL"'/api/v1/watch/namespaces/t1/configmaps/dc-3?timeoutSeconds=1")
	[[ $(grep -c "\"type\":\"ADDED\"" <<<"$out") -eq 1 ]] && grep -q "\"name\":\"dc-3\"" <<<"$out" || { echo "$out"; exit 1; }'
# fieldValidation: kubectl's default --validate=strict sends Strict.
cat >"$D/typo.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: typo, namespace: t1}
spec: {selector: {app: a}, sessionAfinity: ClientIP, ports: [{port: 80, nmae: http}]}
YAML
check "unknown fields, Strict (kubectl default) -> 400 naming each field, nothing stored" bash -c '
	out=$(kubectl apply -f "'"$D"'/typo.yaml" 2>&1) && { echo "created: $out"; exit 1; }
	grep -q "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.ports\[0\].nmae\", unknown field \"spec.sessionAfinity\"" <<<"$out" || { echo "$out"; exit 1; }
	kubectl -n t1 get svc typo 2>&1 | grep -q NotFound'
check "unknown fields, --validate=warn -> created, one warning per field" bash -c '
	out=$(kubectl apply --validate=warn -f "'"$D"'/typo.yaml" 2>&1) || { echo "$out"; exit 1; }
	grep -q "Warning: unknown field \"spec.sessionAfinity\"" <<<"$out" &&
	grep -q "Warning: unknown field \"spec.ports\[0\].nmae\"" <<<"$out" &&
	grep -q "service/typo created" <<<"$out" || { echo "$out"; exit 1; }
	kubectl -n t1 delete svc typo >/dev/null'
check "unknown fields, --validate=false (Ignore) -> created, no warning" bash -c '
	out=$(kubectl apply --validate=false -f "'"$D"'/typo.yaml" 2>&1) || { echo "$out"; exit 1; }
	! grep -q Warning <<<"$out" || { echo "$out"; exit 1; }
	kubectl -n t1 delete svc typo >/dev/null'
check "unknown field in a merge patch, Strict -> 400" expect_err 'strict decoding error: unknown field ."data2."' \
	api --fail-with-body -X PATCH "$URL/api/v1/namespaces/t1/configmaps/cfg?fieldValidation=Strict" \
	-H "Content-Type: application/merge-patch+json" -d '{"data2":{"a":"b"}}'
check "bad fieldValidation value -> 400" expect_err 'fieldValidation must be one of' \
	api --fail-with-body -X PATCH "$URL/api/v1/namespaces/t1/configmaps/cfg?fieldValidation=Loose" \
	-H "Content-Type: application/merge-patch+json" -d '{"data":{"a":"b"}}'
cat >"$D/list.yaml" <<YAML
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: l1, namespace: t1}, data: {a: "1"}}
- {apiVersion: v1, kind: Service, metadata: {name: l2, namespace: t1}, spec: {ports: [{port: 81}]}}
YAML
check "kubectl apply of a kind: List (reads /openapi/v2)" bash -c '
	out=$(kubectl apply -f "'"$D"'/list.yaml" 2>&1) || { echo "$out"; exit 1; }
	grep -q "configmap/l1 created" <<<"$out" && grep -q "service/l2 created" <<<"$out" || { echo "$out"; exit 1; }'
check "/openapi/v2 as JSON" expect_out '"swagger":"2.0"' api "$URL/openapi/v2"

check "default namespace cannot be deleted" expect_err 'Forbidden|may not be deleted' kubectl delete ns default --wait=false
check "deleting a namespace deletes its contents" bash -c '
	kubectl delete ns t1 >/dev/null
	out=$(kubectl get --raw /api/v1/namespaces/t1/configmaps)
	grep -q "\"items\":\[\]" <<<"$out" || { echo "$out"; exit 1; }
	kubectl get ns t1 2>&1 | grep -q NotFound'
check "deleted service released its ClusterIP" bash -c '
	! api "'"$URL"'/api/v1/services" | grep -q "\"name\":\"web\""'
finish
