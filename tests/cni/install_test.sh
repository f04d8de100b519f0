#!/usr/bin/env bash
# cni/install.sh into a temporary root (never the real /etc/cni): the binary
# lands in opt/cni/bin, the conflist in etc/cni/net.d is valid JSON that the
# libcni-like runner can use for a real ADD/DEL, its options (DATA_DIR,
# CHAIN, KUBECONFIG) land in it, and bad input is refused. POD_CIDR=node
# (the Node's podCIDR at install time) is deploy_test.sh's.
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
setup_node
ROOT=$TMP/root
INSTALL=$ROOT_DIR/cni/install.sh
out=$(DESTDIR=$ROOT POD_CIDR=$POD_CIDR BPFFS_DIR=$BPFFS MTU=1450 "$INSTALL" 2>&1)
check "install.sh succeeds ($out)" [ $? -eq 0 ]
check "rota-cni is in <root>/opt/cni/bin, executable" [ -x "$ROOT/opt/cni/bin/rota-cni" ]
check "it is the built binary" cmp -s "$ROOT/opt/cni/bin/rota-cni" "$ROTA_CNI"
CONF=$ROOT/etc/cni/net.d/10-rota.conflist
types=$(pyjq '[p["type"] for p in d["plugins"]]' <"$CONF")
check "conflist: rota-cni, portmap, bandwidth (got $types)" [ "$types" == '["rota-cni", "portmap", "bandwidth"]' ]
check "conflist carries the pod CIDR, bpffs dir and MTU" \
	[ "$(pyjq '[d["plugins"][0]["ipam"]["subnet"], d["plugins"][0]["bpffsDir"], d["plugins"][0]["mtu"]]' <"$CONF")" == "[\"$POD_CIDR\", \"$BPFFS\", 1450]" ]
check "no temp files left" [ -z "$(find "$ROOT" -name '.*tmp')" ]
# A real ADD/DEL with the installed plugin and config (state in our temp dir).
pyjq 'dict(d, plugins=[dict(d["plugins"][0], dataDir="'"$STATE"'")])' <"$CONF" >"$TMP/use.conflist"
new_netns "$T_PREFIX-p1"
CNI_PATH_T=$ROOT/opt/cni/bin
res=$(cni add "$TMP/use.conflist" i1 "/run/netns/$T_PREFIX-p1" eth0)
check "the installed plugin and conflist ADD a pod ($(pod_ip "$res" 2>/dev/null))" grep -q "^$POD_NET\." <<<"$(pod_ip "$res" 2>/dev/null)"
check "... and DEL it" cni del "$TMP/use.conflist" i1 "/run/netns/$T_PREFIX-p1" eth0
out=$(DESTDIR=$ROOT/x "$INSTALL" 2>&1)
check "install.sh without POD_CIDR or KUBECONFIG refuses (got: $out)" grep -q "set POD_CIDR" <<<"$out"
out=$(DESTDIR=$ROOT/x POD_CIDR=10.1.2.3 "$INSTALL" 2>&1)
check "install.sh with a bad POD_CIDR refuses (got: $out)" grep -q "not an IPv4 CIDR" <<<"$out"
check "the refused runs wrote nothing" [ ! -e "$ROOT/x" ]
out=$(DESTDIR=$ROOT/x POD_CIDR=node "$INSTALL" 2>&1)
check "install.sh with POD_CIDR=node but no NODE_NAME refuses (got: $out)" grep -q "POD_CIDR=node needs NODE_NAME" <<<"$out"
out=$(DESTDIR=$ROOT/x POD_CIDR=$POD_CIDR DATA_DIR=state "$INSTALL" 2>&1)
check "install.sh with a relative DATA_DIR refuses (got: $out)" grep -q "DATA_DIR state is not an absolute path" <<<"$out"
check "the refused runs wrote nothing" [ ! -e "$ROOT/x" ]
out=$(DESTDIR=$ROOT/d POD_CIDR=$POD_CIDR DATA_DIR=/var/lib/rota-cni-x CHAIN=portmap "$INSTALL" 2>&1)
d=$(pyjq '[d["plugins"][0].get("dataDir"), [p["type"] for p in d["plugins"]]]' <"$ROOT/d/etc/cni/net.d/10-rota.conflist")
check "DATA_DIR lands in the conflist, CHAIN=portmap keeps only portmap (got $d)" [ "$d" == '["/var/lib/rota-cni-x", ["rota-cni", "portmap"]]' ]
out=$(DESTDIR=$ROOT/k KUBECONFIG=/etc/rota/kubeconfig NODE_NAME=n1 CHAIN= "$INSTALL" 2>&1)
k=$(pyjq '[d["plugins"][0].get("kubeconfig"), d["plugins"][0].get("nodeName"), len(d["plugins"])]' <"$ROOT/k/etc/cni/net.d/10-rota.conflist")
check "KUBECONFIG mode writes kubeconfig/nodeName and CHAIN= drops the chain (got $k)" [ "$k" == '["/etc/rota/kubeconfig", "n1", 1]' ]
finish
