#!/usr/bin/env bash
# End-to-end: rotad and kubectl authenticating with client certificates.
# rota-apiserver runs with --client-ca-file (a client CA made here with
# openssl); kubeconfigs carry client-certificate(-data)/client-key(-data)
# and no token.
#  - kubectl with a certificate-only kubeconfig creates a Service; rotad
#    with the same kind of kubeconfig (inline data) syncs and programs it;
#    the API server logs the user as the certificate's CN;
#  - the same with file paths relative to the kubeconfig's directory;
#  - a certificate of another CA: 401, rotad never turns healthy and
#    programs nothing new;
#  - a kubeconfig with a certificate but no key: rotad exits at once,
#    naming the user.
source "$(dirname "$0")/lib.sh"

require_rotad_env
command -v openssl >/dev/null || die "openssl is missing"

CC=$TMP/certs
mkdir -p "$CC"
source "$(dirname "$0")/../lib/pki.sh"
new_ca rdx-client-ca && new_ca rdx-rogue-ca &&
	new_cert rdx-client-ca rotad "/O=system:node-proxiers/CN=system:rota:node1" &&
	new_cert rdx-client-ca admin "/O=system:masters/CN=rdx-admin" &&
	new_cert rdx-rogue-ca rogue "/O=system:node-proxiers/CN=system:rota:node1" || die "openssl: test certificates"

# First start writes pki/ca.crt (the serving CA); then serve with the client CA.
start_apiserver
stop_apiserver
start_apiserver --client-ca-file "$CC/rdx-client-ca.crt" -v debug
SERVER=https://127.0.0.1:$API_PORT

for u in rotad admin rogue; do cert_kubeconfig "$u" "$SERVER" "$API_DIR/pki/ca.crt"; done
# The same for rotad with files, relative to the kubeconfig's directory.
mkdir -p "$CC/byfile/pki"
cp "$CC/rotad.crt" "$CC/rotad.key" "$API_DIR/pki/ca.crt" "$CC/byfile/pki/"
cat >"$CC/byfile/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rdx
  cluster:
    server: $SERVER
    certificate-authority: pki/ca.crt
users:
- name: rotad
  user:
    client-certificate: pki/rotad.crt
    client-key: pki/rotad.key
contexts:
- name: rdx
  context: {cluster: rdx, user: rotad}
current-context: rdx
EOF
kca() { "$KUBECTL" --request-timeout=10s --cache-dir "$TMP/kube-cache-cert" --kubeconfig "$CC/admin.kubeconfig" "$@"; }
quiet() { "$@" >/dev/null 2>&1; }

log "1. kubectl and rotad with inline client certificates"
asks=$(openssl s_client -connect "127.0.0.1:$API_PORT" </dev/null 2>&1 | grep -A1 'Acceptable client certificate CA names')
check "the API server asks TLS clients for a certificate of the client CA (${asks//$'\n'/ })" \
	grep -q 'CN = rdx-client-ca' <<<"$asks"
check "kubectl with a certificate-only kubeconfig lists Services" quiet kca get svc kubernetes
"$PY" "$RTOOL" service one http:80 | kca apply -f - >>"$TMP/kubectl.log" 2>&1
check "kubectl with it creates a Service" quiet kca get svc one
"$PY" "$RTOOL" slice one-1 one http:8080 10.244.11.2 | kca apply -f - >>"$TMP/kubectl.log" 2>&1
mark=$(log_mark)
KUBECONFIG=$CC/rotad.kubeconfig start_rotad --socket-lb off
wait_datapath
wait_synced || fail "rotad did not sync with its client certificate"
check "rotad says it uses a client certificate" \
	grep -q "API server $SERVER (kubeconfig $CC/rotad.kubeconfig: client certificate)" <(rotad_log_since "$mark")
wait_backends "rotad programs the Service kubectl created" "$(vip_of one):80/TCP" "10.244.11.2:8080/active"
check "the API server knows rotad as its certificate's CN and O" \
	grep -q 'client certificate: user system:rota:node1, groups system:node-proxiers' "$TMP/apiserver.log"
check "... and kubectl as its own" grep -q 'client certificate: user rdx-admin, groups system:masters' "$TMP/apiserver.log"

log "2. certificate and key as files next to the kubeconfig"
stop_rotad
mark=$(log_mark)
KUBECONFIG=$CC/byfile/kubeconfig start_rotad --socket-lb off
wait_synced || fail "rotad did not sync with certificate files"
"$PY" "$RTOOL" service two http:80 | kca apply -f - >>"$TMP/kubectl.log" 2>&1
"$PY" "$RTOOL" slice two-1 two http:8080 10.244.12.2 | kca apply -f - >>"$TMP/kubectl.log" 2>&1
wait_backends "with relative certificate paths rotad programs a new Service" "$(vip_of two):80/TCP" "10.244.12.2:8080/active"

log "3. a certificate of another CA"
stop_rotad
mark=$(log_mark)
KUBECONFIG=$CC/rogue.kubeconfig start_rotad --socket-lb off
unauthorized() { grep -q 'list services: HTTP 401' <(rotad_log_since "$mark"); }
wait_until 10 unauthorized
check "the API server refuses it: rotad logs HTTP 401" unauthorized
out=$("$KUBECTL" --request-timeout=10s --kubeconfig "$CC/rogue.kubeconfig" get svc 2>&1)
rc=$?
check "kubectl with it is refused too (exit $rc: $out)" [ $rc -ne 0 ] && grep -q Unauthorized <<<"$out"
"$PY" "$RTOOL" service three http:80 | kca apply -f - >>"$TMP/kubectl.log" 2>&1
"$PY" "$RTOOL" slice three-1 three http:8080 10.244.13.2 | kca apply -f - >>"$TMP/kubectl.log" 2>&1
sleep 1
check "rotad never syncs: /healthz 503 and the new Service is not programmed ($(svc_state "$(vip_of three):80/TCP"))" \
	[ "$(healthz_code)" == 503 ] && svc_absent "$(vip_of three):80/TCP"
stop_rotad

log "4. a certificate without its key"
sed '/client-key-data/d' "$CC/rotad.kubeconfig" >"$CC/nokey.kubeconfig"
out=$("$ROTAD_BIN" --kubeconfig "$CC/nokey.kubeconfig" --bpffs-dir "$BPFFS" --healthz-bind "" --metrics-bind "" 2>&1)
rc=$?
check "rotad exits ($rc) naming the user and what is missing ($out)" \
	[ $rc -ne 0 ] && grep -q 'user "rotad" has client-certificate(-data) without client-key(-data)' <<<"$out"

finish
