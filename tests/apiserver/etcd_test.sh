#!/usr/bin/env bash
# rota-apiserver on a real etcd (Debian's etcd, started here on loopback):
# the kubectl, watch, allocation and snapshot suites again with
# ROTA_STORE=etcd, then two API servers on one etcd: same objects, both
# deliver every watch event, conflicts and allocation hold across them.
source "$(dirname "$0")/lib.sh"
need "$APISERVER" kubectl curl etcd
HERE=$(dirname "$0")

for t in kubectl watch alloc snapshot; do
	check "the $t suite on etcd" env ROTA_STORE=etcd "$HERE/${t}_test.sh"
done

start_etcd
STORE_FLAGS=(--etcd-servers "$ETCD_URL" --etcd-prefix /two)
new_tmpdir
DA=$TMPD
new_tmpdir
DB=$TMPD
PA=$(free_port)
PB=$(free_port)
start_apiserver "$DA" "$PA"
start_apiserver "$DB" "$PB"
KA=$DA/kubeconfig
KB=$DB/kubeconfig

check "both API servers serve the same bootstrap objects" bash -c '
	a=$(kubectl --kubeconfig '"$KA"' get svc kubernetes -o "jsonpath={.metadata.uid}")
	b=$(kubectl --kubeconfig '"$KB"' get svc kubernetes -o "jsonpath={.metadata.uid}")
	[[ -n $a && $a == "$b" ]] || { echo "$a vs $b"; exit 1; }'
check "an object created on A is visible on B" bash -c '
	kubectl --kubeconfig '"$KA"' create configmap from-a --from-literal=k=v >/dev/null
	kubectl --kubeconfig '"$KB"' get cm from-a >/dev/null'
check "both API servers deliver every watch event, whichever server took the write" \
	$PY - "$KA" "$KB" <<'PY'
import sys, threading, time
from kubernetes import client, config, watch
def api(kc):
    return client.CoreV1Api(api_client=config.new_client_from_config(config_file=kc))
a, b = api(sys.argv[1]), api(sys.argv[2])
rv = a.list_namespaced_config_map("default").metadata.resource_version
got = {}
def run(name, v1):
    got[name] = [(e["type"], e["object"].metadata.name) for e in
                 watch.Watch().stream(v1.list_namespaced_config_map, "default",
                                      resource_version=rv, timeout_seconds=4)]
ts = [threading.Thread(target=run, args=(n, v)) for n, v in (("a", a), ("b", b))]
for t in ts: t.start()
time.sleep(0.5)
for i in range(10):
    (a if i % 2 else b).create_namespaced_config_map("default", {"metadata": {"name": "ev-%d" % i}})
(a).delete_namespaced_config_map("ev-3", "default")
for t in ts: t.join()
want = [("ADDED", "ev-%d" % i) for i in range(10)] + [("DELETED", "ev-3")]
assert got["a"] == want, got["a"]
assert got["b"] == want, got["b"]
PY
check "a stale update through B after a write through A -> 409 Conflict" bash -c '
	kubectl --kubeconfig '"$KB"' get cm from-a -o json >'"$DB"'/old.json
	kubectl --kubeconfig '"$KA"' label cm from-a x=1 >/dev/null
	out=$(kubectl --kubeconfig '"$KB"' replace -f '"$DB"'/old.json 2>&1) && exit 1
	grep -q "Conflict" <<<"$out" || { echo "$out"; exit 1; }'
check "100 concurrent creates on each API server: 200 distinct ClusterIPs" bash -c '
	for i in $(seq 1 100); do
		for s in "a '"$PA"' '"$DA"'" "b '"$PB"' '"$DB"'"; do
			set -- $s
			curl -sk -o /dev/null -w "%{http_code}\n" -H "Authorization: Bearer $(cat $3/admin.token)" \
				-H "Content-Type: application/json" -X POST "https://127.0.0.1:$2/api/v1/namespaces/default/services" \
				-d "{\"metadata\":{\"name\":\"s$1$i\"},\"spec\":{\"ports\":[{\"port\":80}]}}" &
		done
		(( i % 25 == 0 )) && wait
	done >'"$DA"'/codes; wait
	[[ $(grep -c "^201$" '"$DA"'/codes) -eq 200 ]] || { sort '"$DA"'/codes | uniq -c; exit 1; }
	ips=$(kubectl --kubeconfig '"$KA"' get svc -o "jsonpath={range .items[*]}{.spec.clusterIP}{\"\\n\"}{end}")
	[[ $(grep -c . <<<"$ips") -eq 201 && $(sort -u <<<"$ips" | grep -c .) -eq 201 ]] || { echo "duplicate ClusterIPs"; exit 1; }'
check "state survives restarting both API servers" bash -c '
	kill '"${T_PIDS[-1]}"' '"${T_PIDS[-2]}"'; sleep 0.5
	"'"$APISERVER"'" --data-dir '"$DA"' --secure-port '"$PA"' --etcd-servers '"$ETCD_URL"' --etcd-prefix /two >>'"$DA"'/apiserver.log 2>&1 & p=$!
	trap "kill $p" EXIT
	for i in $(seq 50); do curl -sk https://127.0.0.1:'"$PA"'/readyz | grep -q ok && break; sleep 0.1; done
	kubectl --kubeconfig '"$KA"' get cm from-a >/dev/null'
finish
