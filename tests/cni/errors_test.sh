#!/usr/bin/env bash
# Bad configuration and environment: rota-cni prints CNI error JSON on
# stdout with the spec's code and a message naming the problem, exits
# non-zero, and leaves nothing behind (no veth, no address, no record).
# shellcheck source=tests/cni/lib.sh
source "$(dirname "$0")/lib.sh"
require_env
setup_node
POD=$T_PREFIX-p1
new_netns "$POD"
NS=/run/netns/$POD
conf() { # conf [PY_DICT_UPDATES]: a valid single-plugin config, modified
	"$PY" -c 'import json,sys
c={"cniVersion":"1.0.0","name":"err","type":"rota-cni","bpffsDir":sys.argv[1],"dataDir":sys.argv[2],
   "ipam":{"type":"rota-ipam","subnet":sys.argv[3]}}
exec(sys.argv[4])
print(json.dumps(c))' "$BPFFS" "$STATE" "$POD_CIDR" "${1:-pass}"
}
# expect DESC CODE PATTERN CONF ENV...: run ADD-style call, check code+msg.
expect() {
	local desc=$1 code=$2 pat=$3 cfg=$4 out rc got msg
	shift 4
	out=$(plugin "${CMD:-ADD}" "$cfg" "$@")
	rc=$?
	got=$(pyjq 'd["code"]' <<<"$out" 2>/dev/null)
	msg=$(pyjq 'd["msg"]' <<<"$out" 2>/dev/null)
	if ((rc != 0)) && [[ $got == "$code" && $msg == *$pat* ]]; then
		pass "$desc: code $got, \"$msg\""
	else
		fail "$desc: want code $code and /$pat/, got rc $rc: $out"
	fi
}
ENV_OK=(CNI_CONTAINERID=e1 CNI_NETNS="$NS" CNI_IFNAME=eth0)

out=$(in_ns "$NS_NODE" env -i "$ROTA_CNI" <<<"$(conf)")
check "no CNI_COMMAND: code 4 (got: $(pyjq 'd["code"]' <<<"$out"))" [ "$(pyjq 'd["code"]' <<<"$out")" == 4 ]
CMD=FROB expect "unknown CNI_COMMAND" 4 'CNI_COMMAND "FROB" is unknown' "$(conf)" "${ENV_OK[@]}"
expect "stdin is not JSON" 6 "not a JSON object" '{"cniVersion": "1.0.0", name' "${ENV_OK[@]}"
expect "missing type" 7 "type is missing" "$(conf 'del c["type"]')" "${ENV_OK[@]}"
expect "missing name" 7 "name" "$(conf 'del c["name"]')" "${ENV_OK[@]}"
expect "bad CIDR" 7 'ipam.subnet: "10.0.0.0/33" is not an IPv4 CIDR' "$(conf 'c["ipam"]["subnet"]="10.0.0.0/33"')" "${ENV_OK[@]}"
expect "CIDR that is not an address" 7 'ipam.subnet: "banana/24"' "$(conf 'c["ipam"]["subnet"]="banana/24"')" "${ENV_OK[@]}"
expect "bad podCIDR" 7 'podCIDR: "10.1.2.0"' "$(conf 'del c["ipam"]["subnet"]; c["podCIDR"]="10.1.2.0"')" "${ENV_OK[@]}"
expect "no pod CIDR anywhere" 7 "no pod CIDR" "$(conf 'del c["ipam"]')" "${ENV_OK[@]}"
expect "unknown cniVersion" 1 "cniVersion 9.9.9 is not supported" "$(conf 'c["cniVersion"]="9.9.9"')" "${ENV_OK[@]}"
expect "bad mtu" 7 "mtu must be" "$(conf 'c["mtu"]=12')" "${ENV_OK[@]}"
expect "huge mtu (no int conversion before the range check)" 7 "mtu must be" "$(conf 'c["mtu"]=2e121')" "${ENV_OK[@]}"
expect "fractional mtu" 7 "mtu must be" "$(conf 'c["mtu"]=1400.5')" "${ENV_OK[@]}"
expect "ifname too long" 4 'CNI_IFNAME "eth0123456789abc" is too long' "$(conf)" CNI_CONTAINERID=e1 CNI_NETNS="$NS" CNI_IFNAME=eth0123456789abc
expect "ifname with /" 4 "must not contain '/'" "$(conf)" CNI_CONTAINERID=e1 CNI_NETNS="$NS" CNI_IFNAME=eth/0
expect "ifname .." 4 'CNI_IFNAME ".." is not a valid' "$(conf)" CNI_CONTAINERID=e1 CNI_NETNS="$NS" CNI_IFNAME=..
expect "malformed CNI_ARGS" 4 '"K8S_POD_NAME" is not KEY=VALUE' "$(conf)" "${ENV_OK[@]}" "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME"
expect "missing CNI_NETNS on ADD" 4 "CNI_NETNS is not set" "$(conf)" CNI_CONTAINERID=e1 CNI_IFNAME=eth0
expect "missing CNI_CONTAINERID" 4 "CNI_CONTAINERID is not set" "$(conf)" CNI_NETNS="$NS" CNI_IFNAME=eth0
expect "bad CNI_CONTAINERID" 4 "only letters, digits" "$(conf)" CNI_CONTAINERID='a;b' CNI_NETNS="$NS" CNI_IFNAME=eth0
expect "missing CNI_IFNAME on DEL" 4 "CNI_IFNAME is not set" "$(conf)" CNI_COMMAND=DEL CNI_CONTAINERID=e1
expect "netns that does not exist" 3 "CNI_NETNS /run/netns/$T_PREFIX-nope" "$(conf)" CNI_CONTAINERID=e1 CNI_NETNS="/run/netns/$T_PREFIX-nope" CNI_IFNAME=eth0
expect "datapath not loaded: try again" 11 "datapath is not loaded" "$(conf "c['bpffsDir']='/sys/fs/bpf/$T_PREFIX-none'")" "${ENV_OK[@]}"
expect "delegated IPAM plugin missing" 104 'IPAM plugin "no-such-ipam" not found in CNI_PATH' "$(conf 'c["ipam"]={"type":"no-such-ipam"}')" "${ENV_OK[@]}"
expect "host-local's own error passed through as is" 999 "no IP ranges specified" "$(conf 'c["ipam"]={"type":"host-local"}')" "${ENV_OK[@]}"
CMD=GC expect "GC without valid attachments" 7 "cni.dev/valid-attachments" "$(conf 'c["cniVersion"]="1.1.0"')"
CMD=STATUS expect "STATUS on a 1.0.0 config" 1 "STATUS needs cniVersion 1.1.0" "$(conf)"

# A /30 has 2 pod addresses: the third ADD fails with 100 and is rolled back.
small=$(conf "c['ipam']['subnet']='$POD_NET.0/30'")
for i in 2 3 4; do new_netns "$T_PREFIX-p$i"; done
plugin ADD "$small" CNI_CONTAINERID=s2 CNI_NETNS="/run/netns/$T_PREFIX-p2" CNI_IFNAME=eth0 >/dev/null || fail "ADD s2"
plugin ADD "$small" CNI_CONTAINERID=s3 CNI_NETNS="/run/netns/$T_PREFIX-p3" CNI_IFNAME=eth0 >/dev/null || fail "ADD s3"
expect "address pool exhausted" 100 "no free address in $POD_NET.0/30" "$small" CNI_CONTAINERID=s4 CNI_NETNS="/run/netns/$T_PREFIX-p4" CNI_IFNAME=eth0
check "the failed ADD left no interface in its pod" [ -z "$(ip -n "$T_PREFIX-p4" link show eth0 2>/dev/null)" ]
check "the failed ADD left no record" [ ! -e "$STATE/err/attachments/s4_eth0" ]
plugin DEL "$small" CNI_CONTAINERID=s2 CNI_NETNS="/run/netns/$T_PREFIX-p2" CNI_IFNAME=eth0 >/dev/null || fail "DEL s2"
plugin DEL "$small" CNI_CONTAINERID=s3 CNI_NETNS="/run/netns/$T_PREFIX-p3" CNI_IFNAME=eth0 >/dev/null || fail "DEL s3"

# Failing after the veth exists (tc programs missing): everything rolled back.
mkdir -p "$TMP/fake"
"$ROTA_BIN" --bpffs-dir "$BPFFS" unload >/dev/null 2>&1
veths=$(host_veths | wc -l)
expect "ADD with the datapath unloaded" 11 "datapath is not loaded" "$(conf)" "${ENV_OK[@]}"
check "nothing left behind by any failed call: no veth ($veths), no pod eth0, no address, no record" \
	[ "$veths" -eq 0 -a -z "$(ip -n "$POD" link show eth0 2>/dev/null)" \
	-a "$(ls "$STATE/err/ipam" 2>/dev/null | grep -c '^[0-9]')" -eq 0 \
	-a "$(ls "$STATE/err/attachments" 2>/dev/null | wc -l)" -eq 0 ]
finish
