#!/usr/bin/env bash
# End-to-end: the rota CLI on bad input and on a missing datapath, and
# `rota unload` removing everything (pins, links, programs).
#
# Bad input must: exit non-zero, print exactly one line on stderr naming
# the field and the value, print nothing on stdout, and leave the maps as
# they were (`rota service list -o json` and raw dumps of rota_svc4,
# rota_backends4, rota_maglev4 and rota_config compared before/after).
# shellcheck disable=SC2046 # $(bs ...) is meant to split into backends
source "$(dirname "$0")/lib.sh"

require_env

# ---- bad input, against small maps holding two services already
log "9. bad input"
rota_load --backends 16 --services 16
bs() { # bs FIRST LAST NET: backends 10.0.NET.FIRST:80 .. 10.0.NET.LAST:80
	local i
	for ((i = $1; i <= $2; i++)); do printf '10.0.%d.%d:80 ' "$3" "$i"; done
}
rota service add 10.96.0.10:80/TCP $(bs 1 3 1) || die "service add"
rota service add 10.96.0.11:80/TCP $(bs 1 5 2) --maglev || die "service add"
rota service add 10.96.0.12:53/UDP $(bs 1 1 3) --affinity 30 || die "service add"
# Now 12 of 16 service slots (a master + one per backend) and 9 of 16
# backends are used.

# snapshot: every service and the raw content of the maps a service add
# writes, order-normalised; fails when a read fails (retried: a reader
# hiccup must not read as "maps changed").
snapshot_once() {
	local m out
	out=$(
		rota service list -o json || exit 1
		for m in rota_svc4 rota_backends4 rota_maglev4 rota_config; do
			bpftool -j map dump pinned "$BPFFS/$m" || exit 1
		done
	) || return 1
	pyjq '[docs[0]] + [sorted(json.dumps([e["key"], e.get("value")], sort_keys=True) for e in m)
		for m in docs[1:]]' <<<"$out"
}
snapshot() {
	local i
	for i in 1 2 3; do
		snapshot_once 2>"$TMP/snap.err" && return 0
		sleep 0.2
	done
	echo "snapshot failed: $(head -c 200 "$TMP/snap.err")"
	return 1
}

# bad_input DESC FIELD VALUE ARGS...: rota ARGS must fail as described above;
# stderr must contain FIELD and VALUE (as a token of its own).
bad_input() {
	local desc=$1 field=$2 value=$3 before after rc lines problems="" err re
	shift 3
	before=$(snapshot)
	rota "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	after=$(snapshot)
	lines=$(wc -l <"$TMP/err")
	err=$(tr '\n' '|' <"$TMP/err" | cut -c1-240)
	# shellcheck disable=SC2016,SC2001 # a sed expression, not a shell one
	re=$(sed 's/[].[\*^$()+?{|]/\\&/g' <<<"$value")
	((rc != 0)) || problems+="exit 0; "
	((lines == 1)) || problems+="$lines lines on stderr; "
	grep -qiF -- "$field" "$TMP/err" || problems+="field \"$field\" not named; "
	grep -qE -- "(^|[^0-9A-Za-z.])$re([^0-9A-Za-z.]|$)" "$TMP/err" || problems+="value \"$value\" not named; "
	[[ -s $TMP/out ]] && problems+="stdout: $(head -c 100 "$TMP/out"); "
	[[ $before == "$after" ]] || problems+="maps changed ($(diff <(tr ',' '\n' <<<"$before") <(tr ',' '\n' <<<"$after") | grep '^[<>]' | head -6 | tr '\n' ' ')); "
	if [[ -z $problems ]]; then
		pass "bad input: $desc → exit $rc, stderr: $err"
	else
		fail "bad input: $desc: ${problems}stderr: $err"
	fi
}

snap0=$(snapshot)
ok=$(pyjq 'len(d) == 5 and all(d[1:]) and "10.96.0.11:80/TCP" in json.dumps(d[0])' <<<"$snap0")
[[ $ok == true ]] || die "the maps snapshot is broken: $(head -c 300 <<<"$snap0")"

B=10.0.9.1:80
bad_input "frontend address 10.96.0.300" "frontend address" 10.96.0.300 service add 10.96.0.300:80/TCP $B
bad_input "frontend address 10.96.0" "frontend address" 10.96.0 service add 10.96.0:80/TCP $B
bad_input "frontend without port" "frontend" 10.96.0.20 service add 10.96.0.20/TCP $B
bad_input "backend address 10.0.0.x" "backend address" 10.0.0.x service add 10.96.0.20:80/TCP 10.0.0.x:80
bad_input "backend address 10.0.0.256 (existing service)" "backend address" 10.0.0.256 \
	service add 10.96.0.10:80/TCP 10.0.1.1:80 10.0.0.256:80
bad_input "frontend port 0" "frontend port" 0 service add 10.96.0.20:0/TCP $B
bad_input "backend port 0" "backend port" 0 service add 10.96.0.20:80/TCP 10.0.9.1:0
bad_input "frontend port 65536" "frontend port" 65536 service add 10.96.0.20:65536/TCP $B
bad_input "backend port 65536" "backend port" 65536 service add 10.96.0.20:80/TCP 10.0.9.1:65536
bad_input "frontend port -1" "frontend port" -1 service add 10.96.0.20:-1/TCP $B
bad_input "protocol SCTP" "protocol" SCTP service add 10.96.0.20:80/SCTP $B
bad_input "protocol FOO" "protocol" FOO service add 10.96.0.20:80/FOO $B
bad_input "protocol FOO on service del" "protocol" FOO service del 10.96.0.10:80/FOO
bad_input "duplicate backends" "duplicate backend" 10.0.9.1:80 service add 10.96.0.20:80/TCP $B 10.0.9.2:80 $B
bad_input "duplicate backends, one terminating (existing service)" "duplicate backend" 10.0.1.1:80 \
	service add 10.96.0.10:80/TCP 10.0.1.1:80 --terminating 10.0.1.1:80
bad_input "16 backends, maps sized for 16" "backends" 16 service add 10.96.0.20:80/TCP $(bs 1 16 9)
bad_input "new service with 9 backends, 7 backend entries left" "service" 10.96.0.20:80/TCP \
	service add 10.96.0.20:80/TCP $(bs 1 9 9)
bad_input "existing service grown to 10 backends, 4 service slots left" "service" 10.96.0.10:80/TCP \
	service add 10.96.0.10:80/TCP $(bs 1 10 1)
bad_input "existing Maglev service grown to 11 backends, 4 service slots left" "service" 10.96.0.11:80/TCP \
	service add 10.96.0.11:80/TCP $(bs 1 11 2) --maglev
bad_input "--affinity 0" "--affinity" 0 service add 10.96.0.20:80/TCP $B --affinity 0
bad_input "--affinity 86401" "--affinity" 86401 service add 10.96.0.20:80/TCP $B --affinity 86401
bad_input "unknown option --bogus" "option" --bogus service add 10.96.0.20:80/TCP $B --bogus
bad_input "service del of a missing service" "service" 10.96.0.99:80/TCP service del 10.96.0.99:80/TCP

# The maps still work after all that: a change that fills the service map
# to the last slot goes through.
rota service add 10.96.0.20:80/TCP $(bs 1 3 9) >/dev/null 2>"$TMP/err"
rc=$?
n=$(rota service list -o json | pyjq 'sum(len(s["backends"]) for s in d if s["frontend"] == "10.96.0.20:80/TCP")')
check "a valid service add filling the last 4 slots works afterwards (exit $rc, backends listed: $n)" \
	[ "$rc" -eq 0 -a "$n" == 3 ]
check "... and the maps snapshot sees that change (so it would see others)" [ "$snap0" != "$(snapshot)" ]
bad_input "one more service when all 16 slots are used" "service" 10.96.0.21:80/TCP \
	service add 10.96.0.21:80/TCP 10.0.9.9:80
rota unload || fail "rota unload"

# ---- a directory with no pinned maps
log "9. no datapath loaded"
EMPTY=/sys/fs/bpf/$E2E_PREFIX-none
E2E_DIRS+=("$EMPTY")
# no_datapath DESC ARGS...: fails, says there is no datapath and how to load it.
# NO_DATAPATH_NS: netns to run in (attach veth), else the root netns.
NO_DATAPATH_NS=""
no_datapath() {
	local desc=$1 rc err
	shift
	if [[ -n $NO_DATAPATH_NS ]]; then
		in_ns "$NO_DATAPATH_NS" "$ROTA_BIN" --bpffs-dir "$EMPTY" "$@" >"$TMP/out" 2>"$TMP/err"
	else
		"$ROTA_BIN" --bpffs-dir "$EMPTY" "$@" >"$TMP/out" 2>"$TMP/err"
	fi
	rc=$?
	err=$(tr '\n' '|' <"$TMP/err" | cut -c1-240)
	if ((rc != 0)) && grep -qiE 'no rota datapath|not pinned|no program pinned' "$TMP/err" &&
		grep -qF 'rota load' "$TMP/err" && [[ ! -s $TMP/out ]]; then
		pass "no datapath ($desc): exit $rc, stderr: $err"
	else
		fail "no datapath ($desc): exit $rc, stdout: $(head -c 100 "$TMP/out"), stderr: $err"
	fi
}
for when in "missing dir" "empty dir"; do
	[[ $when == "empty dir" ]] && { mkdir "$EMPTY" || die "mkdir $EMPTY"; }
	no_datapath "$when: service list" service list
	no_datapath "$when: service list -o json" service list -o json
	no_datapath "$when: service add" service add 10.96.0.10:80/TCP 10.0.0.1:80
	no_datapath "$when: service del" service del 10.96.0.10:80/TCP
	no_datapath "$when: backend list" backend list
	no_datapath "$when: conntrack list" conntrack list
	no_datapath "$when: conntrack gc" conntrack gc
	no_datapath "$when: stats" stats
done
[[ -d $EMPTY ]] && rmdir "$EMPTY"

# ---- rota unload removes everything
log "9. unload"
new_netns "$NS_NODE"
new_netns "$NS_CLI"
add_pod "$NS_CLI" h-cli "$CLI_ADDR"
make_cgroup_dir() {
	local base=/sys/fs/cgroup/unified
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || base=/sys/fs/cgroup
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || die "no cgroup v2 hierarchy"
	CG=$base/$E2E_PREFIX
	mkdir "$CG" || die "mkdir $CG"
}
make_cgroup_dir
no_datapath "attach cgroup before load" attach cgroup "$CG"
NO_DATAPATH_NS=$NS_NODE no_datapath "attach veth before load" attach veth h-cli
rota_load
rota attach cgroup "$CG" || die "attach cgroup"
rota_node attach veth h-cli || die "attach veth"
rota service add 10.96.0.10:80/TCP 10.0.0.1:80 --maglev || die "service add"

link_ids=() prog_ids=() map_ids=()
for f in "$BPFFS"/links/*; do link_ids+=("$(bpftool -j link show pinned "$f" | pyjq 'd["id"]')"); done
for f in "$BPFFS"/progs/*; do prog_ids+=("$(bpftool -j prog show pinned "$f" | pyjq 'd["id"]')"); done
for f in "$BPFFS"/rota_*; do map_ids+=("$(bpftool -j map show pinned "$f" | pyjq 'd["id"]')"); done
check "before unload: 6 links pinned (4 cgroup + 2 tcx; found ${#link_ids[@]})" [ "${#link_ids[@]}" -eq 6 ]
n=$(bpftool -j cgroup show "$CG" | pyjq 'len(d or [])')
check "before unload: 4 programs on the test cgroup (found $n)" [ "$n" -eq 4 ]
# Debian 12's bpftool shows tcx links as type 11 and not in `net show`.
tcx=$(for id in "${link_ids[@]}"; do bpftool -j link show id "$id"; done |
	pyjq 'len([l for l in docs if l["type"] in (11, "tcx")])')
check "before unload: bpftool link show lists our 2 tcx links (found $tcx)" [ "$tcx" == 2 ]

rota unload >"$TMP/out" 2>"$TMP/err"
rc=$?
check "rota unload exits 0 (exit $rc, stderr: $(head -c 200 "$TMP/err"))" [ "$rc" -eq 0 ]
check "rota unload removed $BPFFS" [ ! -e "$BPFFS" ]
ids_alive() { # ids_alive link|prog|map ID...: the ones bpftool still shows
	local kind=$1 id
	shift
	for id in "$@"; do bpftool "$kind" show id "$id" >/dev/null 2>&1 && echo -n "$id "; done
}
left=$(ids_alive link "${link_ids[@]}")
check "after unload: none of our links exist (left: ${left:-none})" [ -z "$left" ]
ours=$(bpftool -j link show | pyjq 'len([l for l in (d or []) if str(l["prog_id"]) in ids.split()])' ids="${prog_ids[*]}")
check "after unload: bpftool link show lists no link to our programs (found $ours)" [ "$ours" == 0 ]
n=$(bpftool -j cgroup show "$CG" | pyjq 'len(d or [])')
check "after unload: nothing attached to the test cgroup (found $n)" [ "$n" == 0 ]
for i in $(seq 40); do
	left=$(ids_alive prog "${prog_ids[@]}")$(ids_alive map "${map_ids[@]}")
	[[ -z $left ]] && break
	sleep 0.1
done
check "after unload: our programs and maps are freed (left: ${left:-none})" [ -z "$left" ]
rota unload >/dev/null 2>&1
rc=$?
check "a second rota unload is a no-op (exit $rc)" [ "$rc" -eq 0 ]

finish
