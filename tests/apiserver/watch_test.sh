#!/usr/bin/env bash
# Watch semantics of rota-apiserver with python-kubernetes and kubectl:
# events from a resourceVersion, resume after an API server restart,
# bookmarks, 410 Expired past the retained history, selector transitions,
# initial events, and many/slow watchers not blocking other requests.
source "$(dirname "$0")/lib.sh"
need "$APISERVER" kubectl curl
$PY -c 'import kubernetes' 2>/dev/null || { echo "FAIL: python3-kubernetes missing for $PY"; exit 1; }

new_tmpdir
D=$TMPD
PORT=$(free_port)
FLAGS=(--watch-history 40 --bookmark-interval 1)
start_apiserver "$D" "$PORT" "${FLAGS[@]}"
PID=$LAST_PID
export KUBECONFIG=$D/kubeconfig

# pyw SCRIPT: python with a configured CoreV1Api as v1 and watch imported.
pyw() {
	$PY - "$@" <<PYEOF
import sys, json, threading, time
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
config.load_kube_config(config_file="$KUBECONFIG")
v1 = client.CoreV1Api()
def events(fn, *a, **kw):
    out = []
    for ev in watch.Watch().stream(fn, *a, **kw):
        o = ev["object"]
        name = o.metadata.name if hasattr(o, "metadata") and o.metadata else ev["raw_object"]["metadata"].get("name")
        rv = ev["raw_object"]["metadata"]["resourceVersion"]
        out.append((ev["type"], name, rv))
    return out
$(cat)
PYEOF
}

RV0=$(kubectl get --raw /api/v1/namespaces/default/services | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
kubectl create -f - >/dev/null <<'JSON'
{"apiVersion":"v1","kind":"Service","metadata":{"name":"w1"},"spec":{"ports":[{"port":80}]}}
JSON
RV1=$(kubectl get svc w1 -o 'jsonpath={.metadata.resourceVersion}')

check "watch from a resourceVersion sees the later create" pyw "$RV0" <<'PY'
ev = events(v1.list_namespaced_service, "default", resource_version=sys.argv[1], timeout_seconds=2)
assert [e[:2] for e in ev] == [("ADDED", "w1")], ev
PY

stop_pid "$PID"
start_apiserver "$D" "$PORT" "${FLAGS[@]}"
PID=$LAST_PID
kubectl label svc w1 round=2 >/dev/null
check "watch resumes from a resourceVersion across an API server restart" pyw "$RV1" <<'PY'
ev = events(v1.list_namespaced_service, "default", resource_version=sys.argv[1], timeout_seconds=2)
assert [e[:2] for e in ev] == [("MODIFIED", "w1")], ev
assert int(ev[0][2]) > int(sys.argv[1]), ev
PY

# A client watching across an API server restart: the stream ends, the
# client re-watches from the last resourceVersion it saw and misses nothing.
RV2=$(kubectl get --raw /api/v1/namespaces/default/secrets | $PY -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
$PY - "$RV2" "$KUBECONFIG" >"$D/midwatch.out" 2>&1 <<'PY' &
import sys, time, urllib3
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[2])
v1 = client.CoreV1Api()
rv, seen, deadline = sys.argv[1], [], time.time() + 20
while time.time() < deadline and len(seen) < 4:
    try:
        for ev in watch.Watch().stream(v1.list_namespaced_secret, "default", resource_version=rv,
                                       timeout_seconds=2, _request_timeout=5):
            rv = ev["object"].metadata.resource_version
            seen.append((ev["type"], ev["object"].metadata.name))
    except Exception:
        time.sleep(0.2)  # server down: retry from rv
print(seen)
PY
MIDWATCH=$!
T_PIDS+=("$MIDWATCH")
sleep 1
kubectl create secret generic mid-1 --from-literal=a=b >/dev/null
kubectl create secret generic mid-2 --from-literal=a=b >/dev/null
stop_pid "$PID"
start_apiserver "$D" "$PORT" "${FLAGS[@]}"
PID=$LAST_PID
kubectl create secret generic mid-3 --from-literal=a=b >/dev/null
kubectl delete secret mid-1 >/dev/null
wait "$MIDWATCH" || true
check "a watch across an API server restart resumes and misses nothing" bash -c '
	out=$(cat '"$D"'/midwatch.out)
	[[ $out == "[('"'"'ADDED'"'"', '"'"'mid-1'"'"'), ('"'"'ADDED'"'"', '"'"'mid-2'"'"'), ('"'"'ADDED'"'"', '"'"'mid-3'"'"'), ('"'"'DELETED'"'"', '"'"'mid-1'"'"')]" ]] || { echo "$out"; exit 1; }'

check "watch without resourceVersion starts with ADDED for existing objects" pyw <<'PY'
ev = events(v1.list_namespaced_service, "default", timeout_seconds=1)
assert {e[1] for e in ev if e[0] == "ADDED"} == {"kubernetes", "w1"}, ev
PY

check "allowWatchBookmarks delivers BOOKMARK events with a resourceVersion" pyw <<'PY'
rv = v1.list_namespaced_config_map("default").metadata.resource_version
seen = []
resp = v1.list_namespaced_config_map("default", resource_version=rv, watch=True,
                                     allow_watch_bookmarks=True, timeout_seconds=3,
                                     _preload_content=False)
for line in resp.stream(amt=None):
    for l in line.decode().splitlines():
        if l.strip():
            seen.append(json.loads(l))
types = [e["type"] for e in seen]
assert "BOOKMARK" in types, types
bm = [e for e in seen if e["type"] == "BOOKMARK"][0]
assert int(bm["object"]["metadata"]["resourceVersion"]) >= int(rv), bm
assert bm["object"]["kind"] == "ConfigMap", bm
PY

check "sendInitialEvents ends the initial list with an annotated BOOKMARK" bash -c '
	out=$(curl -sk -H "Authorization: Bearer $(cat '"$D"'/admin.token)" --max-time 3 \
		"https://127.0.0.1:'"$PORT"'/api/v1/namespaces/default/services?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
	grep -q "\"type\":\"ADDED\".*\"name\":\"w1\"" <<<"$out" &&
	grep -q "\"type\":\"BOOKMARK\".*k8s.io/initial-events-end" <<<"$out" || { echo "$out"; exit 1; }'

check "label selector watch: objects moving in and out are ADDED/DELETED" pyw <<'PY'
rv = v1.list_namespaced_config_map("default").metadata.resource_version
def mutate():
    time.sleep(0.3)
    body = {"metadata": {"name": "sel", "labels": {"team": "a"}}}
    v1.create_namespaced_config_map("default", body)
    v1.patch_namespaced_config_map("sel", "default", {"metadata": {"labels": {"team": "b"}}})
    v1.patch_namespaced_config_map("sel", "default", {"metadata": {"labels": {"team": "a"}, "annotations": {"x": "1"}}})
    v1.patch_namespaced_config_map("sel", "default", {"data": {"k": "v"}})
    v1.delete_namespaced_config_map("sel", "default")
t = threading.Thread(target=mutate); t.start()
ev = events(v1.list_namespaced_config_map, "default", label_selector="team=a", resource_version=rv, timeout_seconds=3)
t.join()
assert [e[0] for e in ev] == ["ADDED", "DELETED", "ADDED", "MODIFIED", "DELETED"], ev
PY

check "field selector watch on pods by spec.nodeName" pyw <<'PY'
rv = v1.list_namespaced_pod("default").metadata.resource_version
for n, node in (("pa", "n1"), ("pb", "n2")):
    v1.create_namespaced_pod("default", {"metadata": {"name": n}, "spec": {"nodeName": node,
                             "containers": [{"name": "c", "image": "busybox"}]}})
ev = events(v1.list_pod_for_all_namespaces, field_selector="spec.nodeName=n2", resource_version=rv, timeout_seconds=1)
assert [e[:2] for e in ev] == [("ADDED", "pb")], ev
PY

check "kubectl get -w sees a create" bash -c '
	timeout 4 kubectl get svc -w >'"$D"'/kw.out 2>&1 & p=$!
	sleep 1
	kubectl create service clusterip watched --tcp=80 >/dev/null
	wait $p || true
	grep -q "^watched " '"$D"'/kw.out || { cat '"$D"'/kw.out; exit 1; }'

# Past the retained history (40 revisions) a watch gets 410 Expired.
for i in $(seq 1 140); do echo "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"churn-$i\"}}"; done |
	kubectl create -f - >/dev/null
check "watch from a compacted resourceVersion -> ERROR 410 Expired" pyw "$RV0" <<'PY'
try:
    ev = events(v1.list_namespaced_service, "default", resource_version=sys.argv[1], timeout_seconds=2)
    raise SystemExit("no error, events: %r" % ev)
except ApiException as e:
    assert e.status == 410, e
    assert "Expired" in str(e.reason) or "too old" in str(e.reason), e.reason
PY
check "410 arrives in-stream as an ERROR event with a Status" bash -c '
	out=$(curl -sk -H "Authorization: Bearer $(cat '"$D"'/admin.token)" --max-time 3 \
		"https://127.0.0.1:'"$PORT"'/api/v1/namespaces/default/services?watch=1&resourceVersion=2")
	grep -q "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\".*\"reason\":\"Expired\".*\"code\":410" <<<"$out" || { echo "$out"; exit 1; }'

SIZE=20000
check "200 concurrent watchers that never read do not block writes or lists" pyw "$PORT" "$D/admin.token" "$SIZE" <<'PY'
import socket, ssl, subprocess
port = int(sys.argv[1]); token = open(sys.argv[2]).read().strip(); size = int(sys.argv[3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
socks = []
for i in range(200):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    s.sendall(("GET /api/v1/configmaps?watch=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % token).encode())
    socks.append(s)
# none of them reads while 60 big events are produced for each
t0 = time.time()
big = "x" * size
for i in range(60):
    v1.create_namespaced_config_map("default", {"metadata": {"name": "big-%d" % i}, "data": {"d": big}})
t = time.time() - t0
t0 = time.time()
v1.list_namespace()
lat = time.time() - t0
for s in socks:
    s.close()
assert t < 30, "writes took %.1fs" % t
assert lat < 2, "list took %.1fs with 200 watchers" % lat
PY
check "API server still answers after the watchers went away" expect_out '^ok$' \
	curl -sk "https://127.0.0.1:$PORT/readyz"
finish
