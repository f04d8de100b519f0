#!/usr/bin/env bash
# rota-apiserver security: TLS with the generated CA, bearer tokens (admin
# and --token-auth-file), 401 without one, plain HTTP only on loopback,
# request body limit, and a slow client not stalling others.
source "$(dirname "$0")/lib.sh"
need "$APISERVER" kubectl curl

new_tmpdir
D=$TMPD
PORT=$(free_port)
cat >"$D/tokens.csv" <<'CSV'
# token,user,uid,groups
alice-token-0123456789,alice,1001,"dev,ops"
CSV
start_apiserver "$D" "$PORT" --token-auth-file "$D/tokens.csv" --max-request-bytes 65536
export KUBECONFIG=$D/kubeconfig
URL=https://127.0.0.1:$PORT

check "CA and serving certificate generated in the data dir" \
	test -s "$D/pki/ca.crt" -a -s "$D/pki/apiserver.crt" -a -s "$D/pki/apiserver.key"
check "serving certificate verifies against the CA for 127.0.0.1" \
	curl -sf --cacert "$D/pki/ca.crt" "$URL/readyz"
check "serving certificate verifies for localhost" \
	curl -sf --cacert "$D/pki/ca.crt" "https://localhost:$PORT/readyz"
check "private keys are mode 0600" bash -c '[[ $(stat -c %a '"$D"'/pki/apiserver.key) == 600 && $(stat -c %a '"$D"'/pki/ca.key) == 600 ]]'
check "kubeconfig-out is usable by kubectl as-is (CA data + token)" kubectl get ns default
check "no token -> 401 Unauthorized Status" bash -c '
	out=$(curl -s --cacert '"$D"'/pki/ca.crt -w " %{http_code}" '"$URL"'/api/v1/namespaces)
	grep -q "\"reason\":\"Unauthorized\".*401$" <<<"$out" || { echo "$out"; exit 1; }'
check "wrong token -> kubectl says Unauthorized" expect_err 'Unauthorized' \
	kubectl --token wrong-token get ns
check "token file user is accepted" bash -c '
	curl -sf --cacert '"$D"'/pki/ca.crt -H "Authorization: Bearer alice-token-0123456789" '"$URL"'/api/v1/namespaces >/dev/null'
check "health and version need no token" bash -c '
	for p in healthz livez readyz version; do curl -sf --cacert '"$D"'/pki/ca.crt '"$URL"'/$p >/dev/null || exit 1; done'
check "discovery needs a token" bash -c '
	[[ $(curl -s -o /dev/null -w "%{http_code}" --cacert '"$D"'/pki/ca.crt '"$URL"'/api) == 401 ]]'
check "body over --max-request-bytes -> 413" bash -c '
	big=$(head -c 70000 /dev/zero | tr "\0" a)
	out=$(curl -s -w " %{http_code}" --cacert '"$D"'/pki/ca.crt -H "Authorization: Bearer $(cat '"$D"'/admin.token)" \
		-H "Content-Type: application/json" -X POST '"$URL"'/api/v1/namespaces/default/configmaps \
		-d "{\"metadata\":{\"name\":\"big\"},\"data\":{\"a\":\"$big\"}}")
	grep -q "RequestEntityTooLarge.*413$" <<<"$out" || { echo "$out" | tail -c 300; exit 1; }
	kubectl get cm big 2>&1 | grep -q NotFound'
check "slow clients (half-sent requests) do not stall others" $PY - "$PORT" <<'PY'
import socket, ssl, sys, time, subprocess
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
slow = []
for i in range(50):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    slow.append(s)
raw = socket.create_connection(("127.0.0.1", port))  # TCP connected, no TLS handshake
t0 = time.time()
subprocess.run(["kubectl", "get", "ns", "default"], check=True, capture_output=True)
assert time.time() - t0 < 3, "kubectl took %.1fs" % (time.time() - t0)
PY
stop_pid "$LAST_PID"

check "--insecure-http refused on a non-loopback address" expect_err 'needs a loopback --bind-address' \
	"$APISERVER" --data-dir "$D" --insecure-http --bind-address 0.0.0.0 --secure-port "$PORT"
check "--insecure-http on loopback: plain HTTP without authentication, kubectl works" bash -c '
	"'"$APISERVER"'" --data-dir "'"$D"'" --insecure-http --secure-port '"$PORT"' --kubeconfig-out "'"$D"'/kc-http" >"'"$D"'/http.log" 2>&1 & p=$!
	trap "kill $p" EXIT
	for i in $(seq 50); do curl -sf http://127.0.0.1:'"$PORT"'/readyz >/dev/null && break; sleep 0.1; done
	[[ $(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:'"$PORT"'/api/v1/namespaces) == 200 ]] || exit 1
	grep -q "server: http://127.0.0.1:'"$PORT"'" "'"$D"'/kc-http" || exit 1
	kubectl --kubeconfig "'"$D"'/kc-http" get ns default >/dev/null'

# ---- client certificates: kube-apiserver's x509 authentication
need openssl base64
CC=$D/client-certs
mkdir -p "$CC"
source "$(dirname "$0")/../lib/pki.sh"
# code_with NAME: HTTP status of a list made with NAME's certificate and no token.
code_with() {
	curl -s -o /dev/null -w '%{http_code}' --cacert "$D/pki/ca.crt" --cert "$CC/$1.crt" --key "$CC/$1.key" \
		"$URL/api/v1/namespaces"
}
is() { [[ $1 == "$2" ]]; }
new_ca client-ca && new_ca rogue-ca &&
	new_cert client-ca alice "/O=dev/O=ops/CN=alice" clientAuth 2 &&
	new_cert rogue-ca mallory "/CN=alice" clientAuth 2 &&
	new_cert client-ca server-only "/CN=bob" serverAuth 2 &&
	new_cert client-ca expired "/CN=carol" clientAuth -1 ||
	{ echo "FAIL: openssl could not make the test certificates"; exit 1; }
for u in alice mallory; do cert_kubeconfig "$u" "$URL" "$D/pki/ca.crt"; done

check "--client-ca-file with no certificate in it is refused, naming the file" \
	expect_err "client-ca-file $D/tokens.csv: no PEM certificate" \
	"$APISERVER" --data-dir "$D" --secure-port "$PORT" --client-ca-file "$D/tokens.csv"
check "--client-ca-file goes with TLS only" expect_err 'client-ca-file needs TLS' \
	"$APISERVER" --data-dir "$D" --secure-port "$PORT" --insecure-http --client-ca-file "$CC/client-ca.crt"
start_apiserver "$D" "$PORT"
check "without --client-ca-file a client certificate does not authenticate (401)" is "$(code_with alice)" 401
stop_pid "$LAST_PID"

start_apiserver "$D" "$PORT" --client-ca-file "$CC/client-ca.crt" -v debug
check "the server asks TLS clients for a certificate of the client CA" bash -c \
	'openssl s_client -connect "127.0.0.1:$1" </dev/null 2>&1 | grep -A1 "Acceptable client certificate CA names" |
	 grep -q "CN = client-ca"' _ "$PORT"
check "a certificate from the client CA authenticates without a token (200)" is "$(code_with alice)" 200
check "... as its CN, with its O entries as groups (log)" \
	grep -q 'client certificate: user alice, groups dev,ops' "$D/apiserver.log"
check "kubectl with only a client certificate in its kubeconfig works" \
	kubectl --kubeconfig "$CC/alice.kubeconfig" get ns default
check "kubectl creates an object with it" kubectl --kubeconfig "$CC/alice.kubeconfig" create configmap cc-made
check "a certificate from another CA (same CN) is refused: kubectl says Unauthorized" expect_err 'Unauthorized' \
	kubectl --kubeconfig "$CC/mallory.kubeconfig" get ns default
check "... and the server logs why" \
	grep -q 'client certificate CN=alice: unable to get local issuer certificate: unauthorized' "$D/apiserver.log"
check "a certificate not for client use (serverAuth only) is refused (401)" is "$(code_with server-only)" 401
check "... logged as the wrong purpose" grep -qE 'client certificate CN=bob: (unsuitable|unsupported) certificate purpose' \
	"$D/apiserver.log"
check "an expired certificate is refused (401)" is "$(code_with expired)" 401
check "... logged as expired" grep -q 'client certificate CN=carol: certificate has expired' "$D/apiserver.log"
check "bearer tokens still work next to client certificates" kubectl get ns default
check "no certificate and no token: still 401" \
	is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/pki/ca.crt" "$URL/api/v1/namespaces")" 401
stop_pid "$LAST_PID"
finish
