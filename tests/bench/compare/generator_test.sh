#!/usr/bin/env bash
# Checks kpgen.py (kube-proxy's iptables and nftables layouts) against the
# examples of /work/shared/KUBE-PROXY-BASELINE.md and kube-proxy's own
# sources, and its endpoint-change deltas (kube-proxy's partial syncs); then,
# as root, loads full layouts and deltas into throwaway netns and reads back
# what the kernel holds.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GEN=$HERE/kpgen.py
PY=/usr/bin/python3
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS: $*"; }
ko() { failed=$((failed + 1)); echo "FAIL: $*"; }
eq() {	# eq DESC GOT WANT
	if [[ $2 == "$3" ]]; then ok "$1"; else ko "$1 (got '$2', want '$3')"; fi
}
TMP=$(mktemp -d)
NS=""
cleanup() { [[ -n $NS ]] && ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# Chain names. KUBE-SVC example from KUBE-PROXY-BASELINE.md; KUBE-SEP and
# the nftables names from kube-proxy's proxier_test.go / proxier.go comments.
eq "KUBE-SVC of ns1/svc1:p80 tcp" "$($PY "$GEN" hash svc ns1/svc1:p80)" KUBE-SVC-XPGD46QRK7WJZT7O
eq "KUBE-SEP of ns1/svc1:p80 tcp 10.180.0.1:80" "$($PY "$GEN" hash sep ns1/svc1:p80 10.180.0.1:80)" KUBE-SEP-SXIVWICOYRO3J4NJ
eq "nftables service chain" "$($PY "$GEN" hash nft-svc ns1 svc1 p80)" service-ULMVA6XW-ns1/svc1/tcp/p80
eq "nftables endpoint chain" "$($PY "$GEN" hash nft-ep ns1 svc1 p80 10.180.0.1:80)" endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80

# iptables layout, N=5 x E=3.
$PY "$GEN" iptables -n 5 -e 3 --test-ep 10.244.11.2:8080 --test-ep 10.244.11.3:8080 --test-ep 10.244.11.4:8080 >"$TMP/ipt" || ko "kpgen iptables"
svc=$($PY "$GEN" hash svc bench/svc-00004:http)
eq "N=3 endpoint probabilities: 1/3, 1/2, then unconditional" \
	"$(grep -- "^-A $svc .*-j KUBE-SEP-" "$TMP/ipt" | sed -E 's/.*--probability ([0-9.]+).*/\1/; s/.*-j KUBE-SEP-.*/none/' | tr '\n' ' ')" \
	"0.3333333333 0.5000000000 none "
eq "masquerade rule first in KUBE-SVC" "$(grep -m1 -- "^-A $svc " "$TMP/ipt")" \
	"-A $svc -m comment --comment \"bench/svc-00004:http cluster IP\" -m tcp -p tcp -d 10.96.1.4 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"
sep=$($PY "$GEN" hash sep bench/svc-00004:http 10.244.11.2:8080)
eq "KUBE-SEP rules: hairpin masquerade, DNAT" "$(grep -- "^-A $sep " "$TMP/ipt" | tr '\n' '|')" \
	"-A $sep -m comment --comment bench/svc-00004:http -s 10.244.11.2 -j KUBE-MARK-MASQ|-A $sep -m comment --comment bench/svc-00004:http -m tcp -p tcp -j DNAT --to-destination 10.244.11.2:8080|"
eq "service under test is the last service rule of KUBE-SERVICES" \
	"$(grep -- '^-A KUBE-SERVICES .*-j KUBE-SVC-' "$TMP/ipt" | tail -n1 | grep -o -- '-d [0-9.]* ')" "-d 10.96.1.4 "
eq "KUBE-NODEPORTS is the last rule of KUBE-SERVICES" \
	"$(grep -- '^-A KUBE-SERVICES' "$TMP/ipt" | tail -n1)" \
	'-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
eq "2 + 3E nat rules per service (N=5, E=3: 55)" \
	"$(sed -n '/^\*nat/,/^COMMIT/p' "$TMP/ipt" | grep -c -- '^-A \(KUBE-SERVICES .*KUBE-SVC-\|KUBE-SVC-\|KUBE-SEP-\)')" 55
eq "1 + E chains per service (N=5, E=3: 20)" "$(grep -c '^:KUBE-S[EV][PC]-' "$TMP/ipt")" 20
eq "hooks: PREROUTING, OUTPUT -> KUBE-SERVICES; POSTROUTING -> KUBE-POSTROUTING" \
	"$(grep -c -- '^-A \(PREROUTING\|OUTPUT\) .*-j KUBE-SERVICES$\|^-A POSTROUTING .*-j KUBE-POSTROUTING$' "$TMP/ipt")" 3
eq "KUBE-MARK-MASQ and KUBE-POSTROUTING" "$(grep -- '^-A KUBE-\(MARK-MASQ\|POSTROUTING\)' "$TMP/ipt" | tr '\n' '|')" \
	'-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000|-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN|-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000|-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully|'
read -r last rnd idx < <($PY "$GEN" info -n 5 -e 3)
eq "info: last VIP" "$last" 10.96.1.4
if ((idx >= 0 && idx <= 3)) && [[ $rnd == "10.96.1.$idx" ]]; then ok "info: random position $idx in 0..N-2"; else ko "info: random position '$rnd' '$idx'"; fi
eq "random-position service has the real endpoints" \
	"$(grep -c -- "DNAT --to-destination 10.244.11.2:8080" "$TMP/ipt")" 2
eq "random position is stable for a seed" "$($PY "$GEN" info -n 10000 --seed 3)" "$($PY "$GEN" info -n 10000 --seed 3)"
$PY "$GEN" iptables -n 300 -e 4 >"$TMP/ipt-large"
eq "above 1,000 endpoints, no per-endpoint comments" "$(grep -c -- '->\|^-A KUBE-SEP-.*--comment' "$TMP/ipt-large")" 0
$PY "$GEN" iptables -n 250 -e 4 >"$TMP/ipt-small"
eq "at 1,000 endpoints, per-endpoint comments kept" "$(grep -c -- ' -> ' "$TMP/ipt-small")" 1000

# nftables layout.
$PY "$GEN" nftables -n 5 -e 3 --test-ep 10.244.11.2:8080 --test-ep 10.244.11.3:8080 --test-ep 10.244.11.4:8080 >"$TMP/nft" || ko "kpgen nftables"
sc=$($PY "$GEN" hash nft-svc bench svc-00004 http)
eq "service-ips vmap entry for the service" \
	"$(grep -c "10.96.1.4 . tcp . 80 : goto $sc" "$TMP/nft")" 1
eq "services chain dispatches through one vmap" "$(grep -c 'chain services { ip daddr . meta l4proto . th dport vmap @service-ips; ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports; }' "$TMP/nft")" 1
ep0=$($PY "$GEN" hash nft-ep bench svc-00004 http 10.244.11.2:8080)
eq "service chain: numgen random mod 3 vmap" \
	"$(grep -c "numgen random mod 3 vmap { 0 : goto $ep0, " "$TMP/nft")" 1
eq "endpoint chain: masquerade hairpin, dnat" \
	"$(grep -A2 "chain $ep0 {" "$TMP/nft" | tail -n2 | sed 's/^\t*//' | tr '\n' '|')" \
	"ip saddr 10.244.11.2 jump mark-for-masquerade|meta l4proto tcp dnat to 10.244.11.2:8080|"
eq "nat hooks at dstnat / -100 / srcnat" \
	"$(grep -c 'type nat hook prerouting priority dstnat\|type nat hook output priority -100\|type nat hook postrouting priority srcnat' "$TMP/nft")" 3

# Endpoint change of service I (N=5, E=3; a service with unrouted endpoints,
# not the random-position one): its last endpoint 100.64.0.(3I+2) becomes
# 100.127.0.I.
TEST_EP=(--test-ep 10.244.11.2:8080 --test-ep 10.244.11.3:8080 --test-ep 10.244.11.4:8080)
read -r _ _ rnd_idx < <($PY "$GEN" info -n 5 -e 3)
I=0
((I == rnd_idx)) && I=1
$PY "$GEN" iptables-change -n 5 -e 3 "${TEST_EP[@]}" --index $I >"$TMP/ipt-chg" || ko "kpgen iptables-change"
svc2=$($PY "$GEN" hash svc bench/svc-0000$I:http)
old=$($PY "$GEN" hash sep bench/svc-0000$I:http 100.64.0.$((3 * I + 2)):8080)
new=$($PY "$GEN" hash sep bench/svc-0000$I:http 100.127.0.$I:8080)
eq "partial sync: every KUBE-SERVICES rule written again" \
	"$(grep -c -- '^-A KUBE-SERVICES .*-j KUBE-SVC-' "$TMP/ipt-chg")" 5
eq "partial sync: only the changed service's chains" \
	"$(grep -o -- '^-A KUBE-S[EV][PC]-[A-Z0-9]*' "$TMP/ipt-chg" | sort -u | wc -l)" 4
eq "partial sync: new endpoint's DNAT" "$(grep -c -- "^-A $new .*DNAT --to-destination 100.127.0.$I:8080" "$TMP/ipt-chg")" 1
eq "partial sync, at most 1,000 endpoints: stale chain flushed and deleted" \
	"$(grep -c -- "^:$old \|^-X $old$" "$TMP/ipt-chg")" 2
eq "partial sync: no hook rules (kube-proxy adds them once)" "$(grep -c -- '^-A \(FORWARD\|PREROUTING\|OUTPUT\|POSTROUTING\) ' "$TMP/ipt-chg")" 0
$PY "$GEN" iptables-change -n 300 -e 4 --index $I >"$TMP/ipt-chg-large"
eq "partial sync, above 1,000 endpoints: stale chain kept" "$(grep -c -- '^-X ' "$TMP/ipt-chg-large")" 0
$PY "$GEN" nftables-change -n 5 -e 3 "${TEST_EP[@]}" --index $I >"$TMP/nft-chg" || ko "kpgen nftables-change"
nsc=$($PY "$GEN" hash nft-svc bench svc-0000$I http)
nnew=$($PY "$GEN" hash nft-ep bench svc-0000$I http 100.127.0.$I:8080)
nold=$($PY "$GEN" hash nft-ep bench svc-0000$I http 100.64.0.$((3 * I + 2)):8080)
eq "nft transaction: new endpoint chain added before the service rule that jumps to it" \
	"$(grep -n -- "add chain ip kube-proxy $nnew\|add rule ip kube-proxy $nsc numgen" "$TMP/nft-chg" | cut -d: -f1 | tr '\n' ' ')" \
	"$(grep -n -- "add chain ip kube-proxy $nnew" "$TMP/nft-chg" | cut -d: -f1) $(grep -n -- "add rule ip kube-proxy $nsc numgen" "$TMP/nft-chg" | cut -d: -f1) "
eq "nft transaction: stale endpoint chain flushed, not deleted (kube-proxy deletes it later)" \
	"$(grep -c -- "chain ip kube-proxy $nold" "$TMP/nft-chg")" 1
eq "changed: the same new backends for rota" "$($PY "$GEN" changed -n 5 -e 3 "${TEST_EP[@]}" --index $I)" \
	"10.96.1.$I:80/TCP 100.64.0.$((3 * I)):8080 100.64.0.$((3 * I + 1)):8080 100.127.0.$I:8080"

# Both load into a kernel (a throwaway netns; needs root).
if ((EUID == 0)) && command -v iptables-legacy-restore >/dev/null && command -v nft >/dev/null; then
	NS=kpgen-test-$$
	ip netns add "$NS" || ko "ip netns add"
	if nsenter --net="/run/netns/$NS" iptables-legacy-restore --noflush <"$TMP/ipt"; then
		eq "iptables-legacy-restore loads it; KUBE-SERVICES holds N+1 rules" \
			"$(nsenter --net="/run/netns/$NS" iptables-legacy -t nat -S KUBE-SERVICES | grep -c '^-A')" 6
	else
		ko "iptables-legacy-restore --noflush rejected the iptables layout"
	fi
	# iptables-legacy: IPT_SO_GET_INFO counts every rule, two entries per
	# user chain (head and policy), one per built-in chain and the end.
	make_tool() { gcc -O2 -o "$TMP/cmp_tool" "$HERE/cmp_tool.c" -lpthread; }
	if make_tool && read -r entries bytes < <(nsenter --net="/run/netns/$NS" "$TMP/cmp_tool" iptinfo nat); then
		save=$(nsenter --net="/run/netns/$NS" iptables-legacy-save -t nat)
		eq "iptinfo: entries = rules + 2 x user chains + 4 built-in + 1" "$entries" \
			"$(($(grep -c '^-A ' <<<"$save") + 2 * $(grep -c '^:KUBE-' <<<"$save") + 5))"
		if ((bytes > entries * 100)); then ok "iptinfo: $bytes bytes of rules"; else ko "iptinfo: $bytes bytes for $entries entries"; fi
	else
		ko "cmp_tool iptinfo nat"
	fi
	if nsenter --net="/run/netns/$NS" iptables-legacy-restore --noflush <"$TMP/ipt-chg"; then
		save=$(nsenter --net="/run/netns/$NS" iptables-legacy-save -t nat)
		eq "partial sync applies: the service jumps to the new endpoint" "$(grep -c -- "^-A $svc2 .*-j $new$" <<<"$save")" 1
		eq "partial sync applies: the stale endpoint chain is gone" "$(grep -c -- "$old" <<<"$save")" 0
		eq "partial sync applies: KUBE-SERVICES still holds N+1 rules" "$(grep -c '^-A KUBE-SERVICES ' <<<"$save")" 6
	else
		ko "iptables-legacy-restore --noflush rejected the partial sync"
	fi
	if nsenter --net="/run/netns/$NS" nft -f "$TMP/nft"; then
		eq "nft -f loads it; service-ips has N elements" \
			"$(nsenter --net="/run/netns/$NS" nft list map ip kube-proxy service-ips | grep -o ' : goto ' | wc -l)" 5
		if nsenter --net="/run/netns/$NS" nft -f "$TMP/nft-chg"; then
			eq "nft transaction applies: the service's vmap holds the new endpoint" \
				"$(nsenter --net="/run/netns/$NS" nft list chain ip kube-proxy "$nsc" | grep -c "goto $nnew")" 1
			eq "nft transaction applies: the stale endpoint chain is empty" \
				"$(nsenter --net="/run/netns/$NS" nft list chain ip kube-proxy "$nold" | grep -c 'dnat\|jump')" 0
		else
			ko "nft -f rejected the endpoint-change transaction"
		fi
	else
		ko "nft -f rejected the nftables layout"
	fi
elif [[ ${CI:-} == true ]]; then
	ko "loading into a netns needs root, iptables-legacy-restore and nft (CI=true: not skipped)"
else
	echo "SKIP: loading into a netns (needs root, iptables-legacy-restore and nft)"
fi
echo "$passed passed, $failed failed"
((failed == 0))
