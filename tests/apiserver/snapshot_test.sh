#!/usr/bin/env bash
# `rota-apiserver snapshot save|restore` and secrets encrypted at rest
# (AES-256-GCM with --encryption-key-file). sqlite by default,
# ROTA_STORE=etcd for a real etcd.
source "$(dirname "$0")/lib.sh"
need "$APISERVER" kubectl curl

new_tmpdir
D=$TMPD
PORT=$(free_port)
head -c 32 /dev/urandom | base64 >"$D/enc.key"
start_apiserver "$D" "$PORT" --encryption-key-file "$D/enc.key"
PID=$LAST_PID
export KUBECONFIG=$D/kubeconfig
SNAP_FLAGS=(--data-dir "$D" "${STORE_FLAGS[@]}")

# raw_value KEY-SUFFIX: the stored bytes of <prefix>/KEY-SUFFIX, base64.
raw_value() {
	if [[ ${ROTA_STORE:-sqlite} == etcd ]]; then
		curl -s -X POST "$ETCD_URL/v3/kv/range" \
			-d "{\"key\":\"$(printf '%s' "$ETCD_PREFIX/$1" | base64 -w0)\"}" |
			$PY -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["value"])'
	else
		$PY -c 'import sqlite3,sys,base64
db = sqlite3.connect(sys.argv[1])
v = db.execute("select value from kv where key = ?", ("/registry/" + sys.argv[2],)).fetchone()[0]
print(base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode())' "$D/state.db" "$1"
	fi
}

export -f raw_value
export D PY ROTA_STORE ETCD_URL=${ETCD_URL:-} ETCD_PREFIX=${ETCD_PREFIX:-}
export STORE_FLAGS_STR="${STORE_FLAGS[*]}"

kubectl create secret generic s1 --from-literal=password=hunter2-plaintext >/dev/null
kubectl create configmap c1 --from-literal=k=visible-plaintext >/dev/null
kubectl create service nodeport keep --tcp=80 >/dev/null
check "secret is stored encrypted (k8s:enc:aesgcm:v1 prefix, no plaintext)" bash -c '
	v=$(raw_value secrets/default/s1 | base64 -d | tr -d "\0")
	[[ $v == k8s:enc:aesgcm:v1:key1:* ]] || { echo "stored: ${v:0:60}"; exit 1; }
	! grep -q "hunter2\|aHVudGVyMi1wbGFpbnRleHQ" <<<"$v"'
check "secret reads back decrypted through the API" expect_out '^hunter2-plaintext$' \
	bash -c 'kubectl get secret s1 -o "jsonpath={.data.password}" | base64 -d'
check "configmaps stay plaintext" bash -c 'raw_value configmaps/default/c1 | base64 -d | grep -q visible-plaintext'

check "snapshot save while serving" "$APISERVER" snapshot save "$D/snap.json" "${SNAP_FLAGS[@]}"
NP=$(kubectl get svc keep -o 'jsonpath={.spec.ports[0].nodePort}')
kubectl delete secret s1 >/dev/null
kubectl delete svc keep >/dev/null
kubectl create configmap after-snapshot >/dev/null
stop_pid "$PID"
check "snapshot restore" "$APISERVER" snapshot restore "$D/snap.json" "${SNAP_FLAGS[@]}"
start_apiserver "$D" "$PORT" --encryption-key-file "$D/enc.key"
PID=$LAST_PID
check "restored objects are back (secret decrypts)" expect_out '^hunter2-plaintext$' \
	bash -c 'kubectl get secret s1 -o "jsonpath={.data.password}" | base64 -d'
check "objects created after the snapshot are gone" expect_err 'NotFound' kubectl get cm after-snapshot
check "restored Service keeps its NodePort, and the port stays allocated" bash -c '
	[[ $(kubectl get svc keep -o "jsonpath={.spec.ports[0].nodePort}") == '"$NP"' ]] || exit 1
	out=$(echo "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"clash\"},\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":'"$NP"'}]}}" | kubectl create -f - 2>&1) && exit 1
	grep -q "already allocated" <<<"$out" || { echo "$out"; exit 1; }'
check "resourceVersions keep increasing after a restore" bash -c '
	a=$(kubectl get cm c1 -o "jsonpath={.metadata.resourceVersion}")
	kubectl label cm c1 x=y >/dev/null
	b=$(kubectl get cm c1 -o "jsonpath={.metadata.resourceVersion}")
	(( b > a ))'
stop_pid "$PID"
start_apiserver "$D" "$PORT"
PID=$LAST_PID
check "without the key the secret is not readable (500 naming the problem), others are" bash -c '
	out=$(kubectl get secret s1 2>&1) && { echo "read without key: $out"; exit 1; }
	grep -qi "decode stored object\|InternalError" <<<"$out" || { echo "$out"; exit 1; }
	kubectl get cm c1 >/dev/null'
check "a broken snapshot file is refused" expect_err 'not a rota-apiserver snapshot' \
	bash -c 'echo "{}" >"$D/bad.json"; "$0" snapshot restore "$D/bad.json" --data-dir "$D" $STORE_FLAGS_STR' "$APISERVER"
finish
