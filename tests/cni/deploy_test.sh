#!/usr/bin/env bash
# deploy/: every manifest parses and uses only fields the Kubernetes API
# defines (a misspelt field is caught); the DaemonSet's install-cni init
# container, its command line and env taken from the YAML as kubelet would
# run it, installs rota-cni into a temp root standing for the node (its
# hostPath mounts), reading the Node's spec.podCIDR over TLS with the
# service account's token from a stand-in API server; the installed plugin
# and conflist then ADD and DEL a pod. A Node without a podCIDR, or a token
# the API refuses, fails the init step and writes nothing.
T_NAME_PREFIX=cnx
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
command -v openssl >/dev/null || die "openssl is missing"
"$PY" -c 'import yaml, kubernetes' 2>/dev/null || die "python3-yaml and python3-kubernetes are missing for $PY"
setup_node
SPEC=$CNI_TDIR/podspec.py
DS=$ROOT_DIR/deploy/rotad-daemonset.yaml

# ---- the manifests
out=$("$PY" "$SPEC" validate "$ROOT_DIR"/deploy/*.yaml 2>&1)
rc=$?
echo "$out"
check "every manifest in deploy/ parses and uses only API fields (rc $rc)" [ $rc -eq 0 ]
check "... among them DaemonSet kube-system/rotad" grep -q 'apps/v1 DaemonSet/rotad' <<<"$out"
sed 's/^\(  *\)volumeMounts:/\1volumeMount:/' "$DS" >"$TMP/typo.yaml"
out=$("$PY" "$SPEC" validate "$TMP/typo.yaml" 2>&1)
check "a misspelt field is refused, naming where (${out##*ERROR: })" grep -q 'volumeMount: V1Container has no such field' <<<"$out"
mounts=$("$PY" - "$DS" <<'PY'
import sys, yaml
ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]
pod = ds["spec"]["template"]["spec"]
vols = {v["name"]: v for v in pod["volumes"]}
c = [c for c in pod["initContainers"] if c["name"] == "install-cni"][0]
print(" ".join(sorted("%s<-%s" % (m["mountPath"], vols[m["name"]]["hostPath"]["path"]) for m in c["volumeMounts"])))
PY
)
check "install-cni mounts the host's /etc/cni/net.d and /opt/cni/bin ($mounts)" \
	[ "$mounts" == "/host/etc/cni/net.d<-/etc/cni/net.d /host/opt/cni/bin<-/opt/cni/bin" ]

# ---- a stand-in API server: TLS, bearer token, /api/v1/nodes/<name>
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$TMP/api.key" -out "$TMP/api.crt" >/dev/null 2>&1 || die "openssl req"
SA=$TMP/sa			# what kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$SA"
cp "$TMP/api.crt" "$SA/ca.crt"
echo "cnx-token-$RANDOM$RANDOM" >"$SA/token"
echo kube-system >"$SA/namespace"
PORT=$((20000 + RANDOM % 20000))
cat >"$TMP/api.py" <<'PY'
import http.server, json, ssl, sys
port, cert, key, token_file, cidr = sys.argv[1:]
token = open(token_file).read().strip()
nodes = {"cnx-node-a": {"podCIDR": cidr}, "cnx-node-new": {}}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path[len("/api/v1/nodes/"):] if self.path.startswith("/api/v1/nodes/") else None
        if self.headers.get("Authorization") != "Bearer " + token:
            code, body = 401, {"kind": "Status", "code": 401, "reason": "Unauthorized"}
        elif name in nodes:
            code, body = 200, {"kind": "Node", "metadata": {"name": name}, "spec": nodes[name]}
        else:
            code, body = 404, {"kind": "Status", "code": 404, "reason": "NotFound"}
        b = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", int(port)), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
bg_ns "$NS_NODE" "$PY" "$TMP/api.py" "$PORT" "$TMP/api.crt" "$TMP/api.key" "$SA/token" "$POD_CIDR"
for _ in $(seq 50); do in_ns "$NS_NODE" curl -s --cacert "$TMP/api.crt" "https://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done

# init NODE ROOT [SA_DIR]: the install-cni init container, as kubelet runs it
# on node NODE whose / is ROOT: image paths are the repo's files, kubelet's
# service variables and service-account mount point at the stand-in.
init() {
	in_ns "$NS_NODE" "$PY" "$SPEC" run-init "$DS" install-cni --root "$2" \
		--image-path /usr/local/share/rota/cni/install.sh="$ROOT_DIR/cni/install.sh" \
		--image-path /usr/local/bin="$ROOT_DIR/build/bin" \
		--field spec.nodeName="$1" \
		--env KUBERNETES_SERVICE_HOST=127.0.0.1 --env KUBERNETES_SERVICE_PORT="$PORT" \
		--env K8S_SA_DIR="${3:-$SA}"
}
ROOT=$TMP/node-a
out=$(init cnx-node-a "$ROOT" 2>&1)
rc=$?
echo "$out"
check "the install-cni command line from the YAML succeeds (rc $rc)" [ $rc -eq 0 ]
check "... it ran the repo's cni/install.sh" grep -q "run-init: $ROOT_DIR/cni/install.sh" <<<"$out"
check "rota-cni is in the node's /opt/cni/bin, the built binary" cmp -s "$ROOT/opt/cni/bin/rota-cni" "$ROTA_CNI"
check "... with rota-cni-podcidr" [ -x "$ROOT/opt/cni/bin/rota-cni-podcidr" ]
CONF=$ROOT/etc/cni/net.d/10-rota.conflist
got=$(pyjq '[[p["type"] for p in d["plugins"]], d["plugins"][0]["ipam"], d["plugins"][0]["bpffsDir"]]' <"$CONF")
check "the conflist in /etc/cni/net.d: rota-cni, portmap, bandwidth; the Node's podCIDR $POD_CIDR; /sys/fs/bpf/rota ($got)" \
	[ "$got" == "[[\"rota-cni\", \"portmap\", \"bandwidth\"], {\"type\": \"rota-ipam\", \"subnet\": \"$POD_CIDR\"}, \"/sys/fs/bpf/rota\"]" ]
check "nothing else was written (no temp files, no other paths)" \
	[ "$(cd "$ROOT" && find . -type f | sort | tr '\n' ' ')" == "./etc/cni/net.d/10-rota.conflist ./opt/cni/bin/rota-cni ./opt/cni/bin/rota-cni-podcidr " ]

# The installed plugin and conflist serve a real ADD/DEL (this test's
# datapath and state dir instead of the node's).
pyjq 'dict(d, plugins=[dict(d["plugins"][0], bpffsDir="'"$BPFFS"'", dataDir="'"$STATE"'")])' <"$CONF" >"$TMP/use.conflist"
new_netns "$T_PREFIX-p1"
CNI_PATH_T=$ROOT/opt/cni/bin:$REF_PLUGINS
res=$(cni add "$TMP/use.conflist" d1 "/run/netns/$T_PREFIX-p1" eth0)
ip=$(pod_ip "$res" 2>/dev/null)
check "the installed rota-cni ADDs a pod from the Node's podCIDR ($ip)" grep -q "^$POD_NET\." <<<"$ip"
a=$(ip -n "$T_PREFIX-p1" -o -4 addr show dev eth0 | awk '{print $4}')
check "... the pod's eth0 has $a" [ "$a" == "$ip/32" ]
check "... and DEL removes it" cni del "$TMP/use.conflist" d1 "/run/netns/$T_PREFIX-p1" eth0
check "... leaving no veth" [ -z "$(host_veths)" ]

# ---- the init step fails, writing nothing, when it cannot get the podCIDR
failed_with() { [ "$1" -ne 0 ] && grep -q "$2" <<<"$3"; }	# failed_with RC PATTERN OUTPUT
out=$(init cnx-node-new "$TMP/node-new" 2>&1)
rc=$?
check "a Node without spec.podCIDR fails the init step (rc $rc: ${out##*install: })" \
	failed_with $rc "could not read Node cnx-node-new's spec.podCIDR" "$out"
check "... and writes nothing on the node" [ ! -e "$TMP/node-new" ]
mkdir -p "$TMP/sa-bad"
cp "$SA/ca.crt" "$SA/namespace" "$TMP/sa-bad/"
echo wrong-token >"$TMP/sa-bad/token"
out=$(init cnx-node-a "$TMP/node-bad" "$TMP/sa-bad" 2>&1)
rc=$?
check "a token the API refuses fails the init step (rc $rc: $(grep -o 'HTTP [0-9]*' <<<"$out"))" \
	failed_with $rc 'HTTP 401' "$out"
check "... and writes nothing on the node" [ ! -e "$TMP/node-bad" ]
finish
