#!/usr/bin/env bash
# End-to-end: rotad without --kubeconfig, configured the way a pod is:
# KUBERNETES_SERVICE_HOST/PORT and a service-account directory laid out as
# kubelet projects it (token, ca.crt and namespace behind a ..data symlink
# that is swapped atomically on rotation), found through K8S_SA_DIR.
# rota-apiserver authenticates the service account with --token-auth-file.
#  - configuration errors end rotad at once, naming what is missing, and
#    before it loads anything into its bpffs directory;
#  - the server is verified against the service account's ca.crt: with
#    another CA rotad refuses to talk and never turns healthy;
#  - with the right directory rotad syncs and programs Services;
#  - the token rotates: the file is swapped and the API server now accepts
#    only the new token (the old one gets 401): rotad picks the new token up
#    without a restart, never sends the old one to the new server, and keeps
#    programming Services;
#  - the server switches tokens before the file does: rotad gets 401s, and
#    recovers by itself once the file has the new token.
source "$(dirname "$0")/lib.sh"

require_rotad_env
command -v openssl >/dev/null || die "openssl is missing"

SA=$TMP/serviceaccount
new_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# sa_write TOKEN [CA]: a new timestamped data directory, then ..data swapped
# to it in one rename, as kubelet's atomic writer does.
sa_write() {
	local ts
	ts=..$(date +%Y_%m_%d_%H_%M_%S.%N)
	mkdir -p "$SA/$ts"
	printf '%s' "$1" >"$SA/$ts/token"
	cp "${2:-$API_DIR/pki/ca.crt}" "$SA/$ts/ca.crt"
	printf 'kube-system' >"$SA/$ts/namespace"
	ln -sfn "$ts" "$SA/..data_tmp"
	mv -T "$SA/..data_tmp" "$SA/..data"
	for f in token ca.crt namespace; do
		[[ -L $SA/$f ]] || ln -s "..data/$f" "$SA/$f"
	done
	find "$SA" -maxdepth 1 -name '..20*' ! -name "$ts" -exec rm -rf {} +
}
# tokens_for TOKEN: rota-apiserver's token file accepting just that token for rotad's account.
tokens_for() { echo "$1,system:serviceaccount:kube-system:rotad,rotad-uid,\"system:serviceaccounts\"" >"$TMP/tokens.csv"; }
in_cluster_env=(KUBERNETES_SERVICE_HOST=127.0.0.1 "KUBERNETES_SERVICE_PORT=$API_PORT" "K8S_SA_DIR=$SA")
# 401s are counted on the API side: curl with a token against a protected path.
api_code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$API_DIR/pki/ca.crt" -H "Authorization: Bearer $1" \
	"https://127.0.0.1:$API_PORT/api/v1/services?limit=1"; }

OLD=$(new_token) NEW=$(new_token) NEWER=$(new_token)
tokens_for "$OLD"
start_apiserver --token-auth-file "$TMP/tokens.csv"

log "1. configuration errors"
out=$(env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT "$ROTAD_BIN" --bpffs-dir "$BPFFS" \
	--healthz-bind "" --metrics-bind "" 2>&1)
rc=$?
check "no KUBERNETES_SERVICE_HOST and no --kubeconfig: exit $rc, says so ($out)" \
	[ $rc -ne 0 ] && grep -q 'KUBERNETES_SERVICE_HOST/PORT not set' <<<"$out"
mkdir -p "$SA"
out=$(env "${in_cluster_env[@]}" "$ROTAD_BIN" --bpffs-dir "$BPFFS" --healthz-bind "" --metrics-bind "" 2>&1)
rc=$?
check "no token in the service-account directory: exit $rc, naming the file ($out)" \
	[ $rc -ne 0 ] && grep -q "$SA/token: No such file" <<<"$out"
check "... and nothing was loaded into $BPFFS" [ ! -e "$BPFFS" ]

log "2. the server is verified against the service account's CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=rdx-other-ca \
	-keyout "$TMP/other-ca.key" -out "$TMP/other-ca.crt" >/dev/null 2>&1 || die "openssl: other CA"
sa_write "$OLD" "$TMP/other-ca.crt"
# From here on every rotad of this test runs in that environment
# (kubectl keeps using $KUBECONFIG, which takes precedence).
export "${in_cluster_env[@]}"
# shellcheck disable=SC2034 # read by start_rotad
ROTAD_IN_CLUSTER=1
mark=$(log_mark)
start_rotad --socket-lb off
wait_datapath
wait_until 10 grep -q 'list services: ' <(rotad_log_since "$mark")
new=$(rotad_log_since "$mark")
check "rotad says where it got its configuration" \
	grep -q "API server https://127.0.0.1:$API_PORT (in-cluster: token $SA/token, CA $SA/ca.crt, namespace kube-system)" <<<"$new"
check "with another CA in ca.crt the server's certificate is refused ($(grep -m1 'list services: ' <<<"$new"))" \
	grep -qiE 'list services: .*(certificate|SSL)' <<<"$new"
sleep 1
check "... so rotad never syncs: /healthz 503, no Service in the maps ($(n_frontends))" \
	[ "$(healthz_code)" == 503 -a "$(n_frontends)" -eq 0 ]
stop_rotad

log "3. the right service account"
sa_write "$OLD"
mark=$(log_mark)
start_rotad --socket-lb off
wait_synced || fail "rotad did not sync with in-cluster config"
check "in-cluster config: synced, the kubernetes Service is programmed" svc_present "10.96.0.1:443/TCP"
kapply service one http:80 || die "service one"
kapply slice one-1 one http:8080 10.244.11.2 || die "slice one-1"
wait_backends "a Service is programmed" "$(vip_of one):80/TCP" "10.244.11.2:8080/active"

log "4. the token rotates; the API server accepts only the new one"
mark=$(log_mark)
stop_apiserver
sa_write "$NEW"
tokens_for "$NEW"
start_apiserver --token-auth-file "$TMP/tokens.csv"
check "the restarted API server refuses the old token ($(api_code "$OLD")) and takes the new one ($(api_code "$NEW"))" \
	[ "$(api_code "$OLD")" == 401 -a "$(api_code "$NEW")" == 200 ]
kapply service two http:80 || fail "service two"
kapply slice two-1 two http:8080 10.244.12.2 || fail "slice two-1"
wait_backends "rotad, not restarted, programs a Service created after the rotation" \
	"$(vip_of two):80/TCP" "10.244.12.2:8080/active"
new=$(rotad_log_since "$mark")
check "it logged that it read the new token" grep -q "token file $SA/token changed: using the new token" <<<"$new"
check "it never sent the old token to the new server (no HTTP 401 since the rotation)" \
	bash -c '! grep -q "HTTP 401" <<<"$1"' _ "$new"
check "rotad is the same process" kill -0 "$ROTAD_PID"

log "5. the server switches first; the file follows"
mark=$(log_mark)
tokens_for "$NEWER"
stop_apiserver
start_apiserver --token-auth-file "$TMP/tokens.csv"
got401() { grep -q 'HTTP 401' <(rotad_log_since "$mark"); }
wait_until 20 got401
check "rotad's token is refused now (HTTP 401 logged)" got401
kapply service three http:80 || fail "service three"
kapply slice three-1 three http:8080 10.244.13.2 || fail "slice three-1"
THREE=$(vip_of three)
check "... so the new Service does not reach it" svc_absent "$THREE:80/TCP"
sa_write "$NEWER"
# (rotad retries with a capped backoff, up to 30 s between attempts)
wait_until 40 backends_are "$THREE:80/TCP" "10.244.13.2:8080/active"
wait_backends "once the file has the new token rotad recovers by itself" "$THREE:80/TCP" "10.244.13.2:8080/active"
wait_until 10 healthy
check "/healthz is 200" healthy
check "rotad is still the same process" kill -0 "$ROTAD_PID"

finish
