#!/usr/bin/env bash
# Installs rota-cni on a node: the binary into the CNI bin directory and a
# conflist (rota-cni, then portmap and bandwidth) into the CNI config
# directory. Both writes are atomic (temp file + rename), so a runtime never
# reads a half-written plugin or config. `make install` runs it, and so does
# the init container of deploy/rotad-daemonset.yaml (host dirs under /host).
#
# Environment (defaults in brackets):
#   DESTDIR        root to install under [/] (tests use a temp dir)
#   CNI_BIN_DIR    [/opt/cni/bin]      CNI_CONF_DIR  [/etc/cni/net.d]
#   ROTA_CNI_BIN   binary to install [build/bin/rota-cni next to this script];
#                  its -podcidr helper goes along
#   NETWORK_NAME   [rota]              CONF_NAME     [10-rota.conflist]
#   POD_CIDR       the node's pod CIDR for the built-in IPAM, or "node": this
#                  node's spec.podCIDR, read now (NODE_NAME; through
#                  KUBECONFIG if set, else the pod's in-cluster config) and
#                  written as the CIDR (a Node's podCIDR never changes)
#   KUBECONFIG     without POD_CIDR: a kubeconfig (path on the node) through
#                  which rota-cni reads the Node's spec.podCIDR on each ADD
#                  (NODE_NAME [hostname])
#   BPFFS_DIR      [/sys/fs/bpf/rota]  MTU [unset: kernel default]
#   DATA_DIR       rota-cni's state directory [unset: /var/lib/rota-cni]
#   CHAIN          extra plugins after rota-cni ["portmap bandwidth"]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DESTDIR=${DESTDIR:-}
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
CNI_CONF_DIR=${CNI_CONF_DIR:-/etc/cni/net.d}
ROTA_CNI_BIN=${ROTA_CNI_BIN:-$here/../build/bin/rota-cni}
NETWORK_NAME=${NETWORK_NAME:-rota}
CONF_NAME=${CONF_NAME:-10-rota.conflist}
BPFFS_DIR=${BPFFS_DIR:-/sys/fs/bpf/rota}
CHAIN=${CHAIN-portmap bandwidth}

die() {
	echo "rota-cni install: $*" >&2
	exit 1
}
[[ -x $ROTA_CNI_BIN ]] || die "$ROTA_CNI_BIN is not built (make build/bin/rota-cni)"
[[ $NETWORK_NAME =~ ^[A-Za-z0-9_.-]+$ ]] || die "NETWORK_NAME $NETWORK_NAME: letters, digits, _ . - only"
[[ -z ${DATA_DIR:-} || $DATA_DIR == /* ]] || die "DATA_DIR $DATA_DIR is not an absolute path"
if [[ ${POD_CIDR:-} == node ]]; then
	[[ -n ${NODE_NAME:-} ]] || die "POD_CIDR=node needs NODE_NAME (the Node to read spec.podCIDR from)"
	helper=$ROTA_CNI_BIN-podcidr
	[[ -x $helper ]] || die "$helper is missing (it reads the Node's podCIDR)"
	# Exit 3 (API unreachable, no podCIDR yet): an init container is retried.
	POD_CIDR=$("$helper" "${KUBECONFIG:---in-cluster}" "$NODE_NAME") ||
		die "could not read Node $NODE_NAME's spec.podCIDR (${KUBECONFIG:-in-cluster config}; see above)"
	echo "rota-cni install: Node $NODE_NAME has podCIDR $POD_CIDR"
fi
if [[ -n ${POD_CIDR:-} ]]; then
	[[ $POD_CIDR =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]] || die "POD_CIDR $POD_CIDR is not an IPv4 CIDR"
	ipam="{ \"type\": \"rota-ipam\", \"subnet\": \"$POD_CIDR\" }"
	kube=""
elif [[ -n ${KUBECONFIG:-} ]]; then
	ipam='{ "type": "rota-ipam" }'
	kube=",
      \"kubeconfig\": \"$KUBECONFIG\"${NODE_NAME:+,
      \"nodeName\": \"$NODE_NAME\"}"
else
	die "set POD_CIDR (the node's pod CIDR, or \"node\" to read it from the Node now) or KUBECONFIG (to read it on each ADD)"
fi
[[ -z ${MTU:-} || $MTU =~ ^[0-9]+$ ]] || die "MTU $MTU is not a number"

bindir=$DESTDIR$CNI_BIN_DIR
confdir=$DESTDIR$CNI_CONF_DIR
mkdir -p "$bindir" "$confdir"
for b in "$ROTA_CNI_BIN" "$ROTA_CNI_BIN-podcidr"; do
	[[ -x $b ]] || continue
	n=$(basename "$b")
	install -m 0755 "$b" "$bindir/.$n.tmp"
	mv -f "$bindir/.$n.tmp" "$bindir/$n"
done

chain=""
for p in $CHAIN; do
	case $p in
	portmap) chain+=',
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true }' ;;
	bandwidth) chain+=',
    { "type": "bandwidth", "capabilities": { "bandwidth": true } }' ;;
	*) die "CHAIN: unknown plugin $p (portmap, bandwidth)" ;;
	esac
done
tmp=$confdir/.$CONF_NAME.tmp
cat >"$tmp" <<JSON
{
  "cniVersion": "1.0.0",
  "cniVersions": ["1.0.0", "1.1.0"],
  "name": "$NETWORK_NAME",
  "plugins": [
    {
      "type": "rota-cni",
      "bpffsDir": "$BPFFS_DIR"${MTU:+,
      \"mtu\": $MTU}${DATA_DIR:+,
      \"dataDir\": \"$DATA_DIR\"}$kube,
      "ipam": $ipam
    }$chain
  ]
}
JSON
chmod 0644 "$tmp"
mv -f "$tmp" "$confdir/$CONF_NAME"
echo "rota-cni: installed $bindir/rota-cni and $confdir/$CONF_NAME"
