#!/usr/bin/env bash
# Real containers: Debian's containerd 1.6 and runc run two busybox
# containers with `ctr run --cni`, and ctr calls the conflist that
# cni/install.sh writes (rota-cni, then portmap) through libcni, as a node's
# runtime does: ADD with the container's netns when the task is created,
# DEL once it has exited (netns gone). The containers serve HTTP; one
# reaches the other directly and through a ClusterIP on rota's tc
# programs. After each container is killed: no veth, link pin, endpoint
# entry, record or address is left.
#
# Nothing outside the test's temp dir, netns, bpffs dir and cgroup is
# touched: containerd has its own root, state, socket, runc root and CNI
# dirs in a temp config; it runs in the test's node netns and a private
# mount namespace whose /run/containerd is the test's (shim sockets). ctr
# reads its CNI config from the fixed /etc/cni/net.d and /opt/cni/bin and
# caches results in /var/lib/cni, so it runs in a private mount namespace
# where read-only overlays add those three as links to the test's dirs.
T_NAME_PREFIX=cnx
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
for t in containerd ctr runc unshare; do
	command -v "$t" >/dev/null || skip "$t is missing (scripts/deps.sh installs containerd and runc)"
done
grep -qw overlay /proc/filesystems || skip "the kernel has no overlayfs (containerd's snapshotter needs it)"
BUSYBOX=$(command -v busybox)
[[ $(ldd "$BUSYBOX" 2>&1) == *"not a dynamic executable"* ]] || skip "$BUSYBOX is not static (apt install busybox-static)"
for d in /etc /opt /var/lib /run; do [[ -d $d ]] || skip "$d is missing"; done
setup_node

CTD=$TMP/containerd		# containerd's root, state, socket, runc root, fifos
SOCK=$CTD/containerd.sock
NS=$T_PREFIX			# containerd namespace
IMAGE=cnx.local/busybox:1
HOST=$TMP/host			# the node's /opt/cni/bin and /etc/cni/net.d, as installed
VIEW=$TMP/view			# top layers of the overlays the test's processes see
CGROUP=$T_PREFIX		# cgroup parent of the containers
mkdir -p "$CTD"/{root,state,opt,runc,fifo,run} "$TMP/cni-cache" "$VIEW"/{etc/cni,opt/cni,var-lib,run}
ln -s "$HOST/etc/cni/net.d" "$VIEW/etc/cni/net.d"
ln -s "$HOST/opt/cni/bin" "$VIEW/opt/cni/bin"
ln -s "$TMP/cni-cache" "$VIEW/var-lib/cni"
ln -s "$CTD/run" "$VIEW/run/containerd"

# in_view OVERLAYS CMD...: CMD in the node netns and a private mount
# namespace where each listed dir (etc opt var-lib run) is overlaid,
# read-only, with the test's links on top.
in_view() {
	local dirs=$1
	shift
	nsenter --net="/run/netns/$NS_NODE" unshare -m --propagation private sh -c '
		view=$1 dirs=$2
		shift 2
		for d in $dirs; do
			real=/$(echo "$d" | tr - /)
			mount -t overlay cnx-view -o "lowerdir=$view/$d:$real" "$real" || exit 1
		done
		exec "$@"' sh "$VIEW" "$dirs" "$@"
}
# Every client call is bounded: a test must not hang on a stuck daemon.
ctr_() { timeout 30 ctr --address "$SOCK" --namespace "$NS" --connect-timeout 5s "$@"; }
# in_ctr NAME CMD...: CMD inside the running container NAME (its netns).
EXEC_N=0
in_ctr() {
	local name=$1
	shift
	EXEC_N=$((EXEC_N + 1))
	ctr_ task exec --fifo-dir "$CTD/fifo" --exec-id "x$EXEC_N" "$name" "$@"
}

# ---- teardown, also on failure and Ctrl-C (runs before lib.sh's cleanup)
CTD_PID=
RUN_PIDS=()
declare -A RUN_PID		# container name -> its `ctr run` process
ctd_teardown() {
	local t p d
	if [[ -S $SOCK ]]; then
		for t in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s KILL "$t" >/dev/null 2>&1; done
		# ctr run, seeing its task exit, DELs the network and removes the container.
		for p in "${RUN_PIDS[@]}"; do
			for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$p" 2>/dev/null
		done
		for t in $(ctr_ task ls -q 2>/dev/null); do ctr_ task delete -f "$t" >/dev/null 2>&1; done
		for t in $(ctr_ container ls -q 2>/dev/null); do ctr_ container delete "$t" >/dev/null 2>&1; done
	fi
	if [[ -n $CTD_PID ]]; then
		kill -TERM "$CTD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CTD_PID" 2>/dev/null
	fi
	# Shims this containerd started (they outlive it): named by our socket.
	for p in $(grep -lsF -- "$SOCK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
		[[ $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) == *containerd-shim* ]] && kill -KILL "$p" 2>/dev/null
	done
	# Container processes still alive (containerd gone before it could stop
	# them): they are the processes in the containers' cgroups.
	for p in $(cat /sys/fs/cgroup/*/"$CGROUP"/*/cgroup.procs 2>/dev/null | sort -u); do kill -KILL "$p" 2>/dev/null; done
	grep -F " $TMP/" /proc/mounts | cut -d' ' -f2 | sort -r | while read -r m; do umount -l "$m"; done
	for _ in $(seq 20); do
		[[ -z $(cat /sys/fs/cgroup/*/"$CGROUP"/*/cgroup.procs 2>/dev/null) ]] && break
		sleep 0.1
	done
	for d in /sys/fs/cgroup/*/"$CGROUP"; do
		[[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}
T_CLEANUP_HOOKS+=(ctd_teardown)

# ---- the node's CNI config, by the repo's installer
out=$(DESTDIR=$HOST NETWORK_NAME=$NS POD_CIDR=$POD_CIDR BPFFS_DIR=$BPFFS DATA_DIR=$STATE CHAIN=portmap \
	"$ROOT_DIR/cni/install.sh" 2>&1) || die "cni/install.sh: $out"
ln -s "$REF_PLUGINS/portmap" "$HOST/opt/cni/bin/portmap"
CONFLIST=$HOST/etc/cni/net.d/10-rota.conflist
check "conflist: rota-cni first, then portmap" \
	[ "$(pyjq '[p["type"] for p in d["plugins"]]' <"$CONFLIST")" == '["rota-cni", "portmap"]' ]

# ---- containerd of our own
cat >"$CTD/config.toml" <<TOML
version = 2
root = "$CTD/root"
state = "$CTD/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$HOST/opt/cni/bin"
    conf_dir = "$HOST/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CTD/opt"
TOML
# Its own session: a Ctrl-C meant for the test must not stop it before the
# teardown has stopped the containers through it.
in_view run setsid containerd --config "$CTD/config.toml" >"$TMP/containerd.log" 2>&1 &
CTD_PID=$!
for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
ctr_ version >/dev/null 2>&1 || {
	tail -20 "$TMP/containerd.log" >&2
	die "containerd did not come up (log above)"
}
pass "containerd runs with its own root, state and socket ($CTD)"

# ---- an OCI image from a local rootfs: static busybox
ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS"/{bin,dev,proc,sys,tmp,etc,www}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for a in sh httpd wget nc ip mkdir echo cat sleep timeout; do ln -s busybox "$ROOTFS/bin/$a"; done
"$PY" "$CNI_TDIR/oci_image.py" "$ROOTFS" "$IMAGE" "$TMP/image.tar" || die "building the image"
out=$(ctr_ images import "$TMP/image.tar" 2>&1)
check "ctr images import of the built OCI archive ($IMAGE)" grep -q "$IMAGE" <<<"$(ctr_ images ls -q)"

# run_ctr NAME: a container serving its name over HTTP on :8080, started by
# `ctr run --cni --rm` in the background (it stays until the task exits).
run_ctr() {
	local name=$1
	in_view "etc opt var-lib" ctr --address "$SOCK" --namespace "$NS" run --cni --rm --null-io \
		--runc-root "$CTD/runc" --fifo-dir "$CTD/fifo" --cgroup "$CGROUP/$name" "$IMAGE" "$name" \
		sh -c "mkdir -p /www && echo $name >/www/index.html && exec httpd -f -p 8080 -h /www" \
		>"$TMP/run-$name.log" 2>&1 &
	RUN_PIDS+=($!)
	RUN_PID[$name]=$!
}
# pod_addr NAME: the container's eth0 address, as the container sees it.
pod_addr() { in_ctr "$1" ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}'; }
wait_addr() {
	local a
	for _ in $(seq 100); do
		a=$(pod_addr "$1")
		[[ -n $a ]] && break
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	echo "$a"
}
run_ctr c1
a1=$(wait_addr c1 "${RUN_PID[c1]}")
run_ctr c2
a2=$(wait_addr c2 "${RUN_PID[c2]}")
cat "$TMP/run-c1.log" "$TMP/run-c2.log"
ip1=${a1%/32}
ip2=${a2%/32}
check "c1 runs with eth0 $a1 from the pod CIDR $POD_CIDR" grep -qE "^$POD_NET\.[0-9]+/32$" <<<"$a1"
check "c2 runs with eth0 $a2, another address" [ -n "$a2" -a "$a2" != "$a1" ]
host1=$(pyjq 'd["hostInterface"]' <"$STATE/$NS/attachments/$NS-c1_eth0")
host2=$(pyjq 'd["hostInterface"]' <"$STATE/$NS/attachments/$NS-c2_eth0")
check "ctr's ADD used CNI_CONTAINERID $NS-c1 and eth0: record and veth $host1 in the node" \
	quiet ip -n "$NS_NODE" link show "$host1"
check "libcni cached c1's ADD result in the test's /var/lib/cni" \
	[ -n "$(ls "$TMP/cni-cache/results" 2>/dev/null | grep -- "-$NS-c1-eth0")" ]
r=$(in_ctr c1 ip route show default)
check "c1's default route is via 169.254.1.1 (got: $r)" grep -q 'default via 169.254.1.1 dev eth0' <<<"$r"
ifx1=$(ip -n "$NS_NODE" -o link show "$host1" | cut -d: -f1)
ifx2=$(ip -n "$NS_NODE" -o link show "$host2" | cut -d: -f1)
check "rota's tc programs are attached to both veths (4 link pins)" \
	[ "$(ls "$BPFFS/links" | grep -cE "^if($ifx1|$ifx2)-")" -eq 4 ]

get() { in_ctr "$1" timeout 5 wget -qO- "$2" 2>/dev/null; }
out=$(get c1 "http://$ip2:8080/")
check "pod to pod: c1 fetches http://$ip2:8080/ from c2 (got: $out)" [ "$out" == c2 ]
out=$(get c2 "http://$ip1:8080/")
check "pod to pod: c2 fetches http://$ip1:8080/ from c1 (got: $out)" [ "$out" == c1 ]

VIP=10.96.$((RANDOM % 200)).$((RANDOM % 200 + 10))
"$ROTA_BIN" --bpffs-dir "$BPFFS" service add "$VIP:80/TCP" "$ip1:8080" "$ip2:8080" >/dev/null ||
	fail "rota service add $VIP"
s0=$("$ROTA_BIN" --bpffs-dir "$BPFFS" stats -o json | pyjq 'd["translated_forward"]["packets"]')
seen=$(for _ in $(seq 12); do get c1 "http://$VIP/" || echo ERR; done | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
s1=$("$ROTA_BIN" --bpffs-dir "$BPFFS" stats -o json | pyjq 'd["translated_forward"]["packets"]')
check "pod to ClusterIP: 12 fetches of http://$VIP/ from c1 reach both c1 and c2 (${seen% })" \
	grep -qE '^c1=[0-9]+ c2=[0-9]+ $' <<<"$seen"
check "... translated by rota's tc program (translated_forward $s0 → $s1)" [ "$s1" -gt "$s0" ]

# ---- DEL: kill a container's task; ctr DELs its network, then removes it
ep() { quiet bpftool map lookup pinned "$BPFFS/rota_endpoints4" key $(tr . ' ' <<<"$1"); }
cleaned() { # cleaned NAME IP HOSTVETH IFINDEX: nothing of the attachment is left
	not quiet ip -n "$NS_NODE" link show "$3" && [ "$(ls "$BPFFS/links" | grep -c "^if$4-")" -eq 0 ] &&
		not ep "$2" && [ ! -e "$STATE/$NS/ipam/$2" ] && [ ! -e "$STATE/$NS/attachments/$NS-$1_eth0" ]
}
for spec in "c1 $ip1 $host1 $ifx1 ${RUN_PID[c1]}" "c2 $ip2 $host2 $ifx2 ${RUN_PID[c2]}"; do
	read -r name ip hv ifx pid <<<"$spec"
	ctr_ task kill -s KILL "$name" >/dev/null 2>&1
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	check "ctr run $name ended once its task was killed" not quiet kill -0 "$pid"
	check "$name is removed from containerd" not grep -qx "$name" <<<"$(ctr_ container ls -q)"
	check "DEL of $name: veth $hv, its link pins, endpoint entry, record and address $ip are gone" \
		cleaned "$name" "$ip" "$hv" "$ifx"
	check "... and libcni's cached result for $name is gone" \
		[ -z "$(ls "$TMP/cni-cache/results" 2>/dev/null | grep -- "-$NS-$name-")" ]
done
check "no rota veth is left in the node" [ -z "$(host_veths)" ]
check "no address is allocated" [ "$(ls "$STATE/$NS/ipam" | grep -c '^[0-9]')" -eq 0 ]
check "no endpoint entries are left" [ "$(bpftool -j map dump pinned "$BPFFS/rota_endpoints4" | pyjq 'len(d)')" -eq 0 ]
grep -h 'rota-cni' "$TMP"/run-*.log | head -5
finish
