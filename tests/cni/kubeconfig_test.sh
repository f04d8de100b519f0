#!/usr/bin/env bash
# Built-in IPAM with no subnet in the config: the pod CIDR comes from the
# Node's spec.podCIDR, read through a kubeconfig (rota-cni-podcidr). A
# stand-in API server inside the node netns serves /api/v1/nodes/<name>.
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
[[ -x $ROOT_DIR/build/bin/rota-cni-podcidr ]] || die "build/bin/rota-cni-podcidr not built: run 'make'"
setup_node
ln -s "$ROOT_DIR/build/bin/rota-cni-podcidr" "$PLUGDIR/rota-cni-podcidr" 2>/dev/null
PORT=$((20000 + RANDOM % 20000))
cat >"$TMP/api.py" <<PY
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/v1/nodes/node-a":
            body, code = {"kind": "Node", "metadata": {"name": "node-a"}, "spec": {"podCIDR": "$POD_CIDR"}}, 200
        elif self.path == "/api/v1/nodes/node-new":
            body, code = {"kind": "Node", "metadata": {"name": "node-new"}, "spec": {}}, 200
        else:
            body, code = {"kind": "Status", "code": 404, "reason": "NotFound"}, 404
        b = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", $PORT), H).serve_forever()
PY
bg_ns "$NS_NODE" "$PY" "$TMP/api.py"
cat >"$TMP/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: http://127.0.0.1:$PORT
users:
- name: u
  user:
    token: test-token
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
YAML
for i in $(seq 50); do in_ns "$NS_NODE" curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
conf() {
	echo "{\"cniVersion\":\"1.0.0\",\"name\":\"kc\",\"type\":\"rota-cni\",\"bpffsDir\":\"$BPFFS\",\"dataDir\":\"$STATE\",
	 \"kubeconfig\":\"$TMP/kubeconfig\",\"nodeName\":\"$1\",\"ipam\":{\"type\":\"rota-ipam\"}}"
}
new_netns "$T_PREFIX-p1"
E=(CNI_CONTAINERID=k1 CNI_NETNS="/run/netns/$T_PREFIX-p1" CNI_IFNAME=eth0)
# the helper must sit next to the plugin binary: call it through the symlink dir copy
cp "$ROTA_CNI" "$PLUGDIR/rota-cni-copy"
ROTA_CNI=$PLUGDIR/rota-cni-copy
out=$(plugin ADD "$(conf node-a)" "${E[@]}")
ip=$(pod_ip "$out" 2>/dev/null)
check "ADD takes its address from Node node-a's spec.podCIDR $POD_CIDR (got ${ip:-$out})" grep -q "^$POD_NET\." <<<"$ip"
plugin DEL "$(conf node-a)" "${E[@]}" >/dev/null
check "DEL succeeds" [ $? -eq 0 ]
out=$(plugin ADD "$(conf node-new)" "${E[@]}")
check "a Node without podCIDR yet: code 11, try again (got: $out)" [ "$(pyjq 'd["code"]' <<<"$out")" == 11 ]
out=$(plugin ADD "$(conf node-gone)" "${E[@]}")
check "no such Node: code 105 (got: $out)" [ "$(pyjq 'd["code"]' <<<"$out")" == 105 ]
check "the failed ADDs left no interface" [ -z "$(host_veths)" ]
finish
