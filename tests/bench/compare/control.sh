# shellcheck shell=bash
# Control plane of the kube-proxy comparison (sourced by run.sh): programming
# N services from nothing, one endpoint change at N, memory, and rotad
# programming from rota-apiserver. Each appends CSV lines for report.py.

# kmem_kib: kernel memory nf_tables rules, chains and sets and BPF hash
# elements are allocated from: unreclaimable slab and per-CPU (/proc/meminfo,
# KiB). Not vmalloc: the other jobs on this machine create and drop BPF maps
# of a hundred MiB and more there while we measure (the iptables-legacy rule
# blob, which is vmalloc, is read exactly instead: ipt_blob). Machine-wide, so
# a delta also holds whatever else the machine allocated or freed meanwhile;
# kmem_idle gives the size of that noise.
kmem_kib() { awk '/^(SUnreclaim|Percpu):/ { s += $2 } END { print s + 0 }' /proc/meminfo; }

# kmem_idle N SECONDS: the same delta with nothing of ours running, as the
# noise reference of the deltas above.
kmem_idle() {
	local m0
	m0=$(kmem_kib)
	sleep "$2"
	echo "$1,idle-${2}s,kmem_delta,$((($(kmem_kib) - m0) * 1024))" >>"$MEM"
}

# load_timeboxed N DATAPLANE NS CMD...: runs CMD (stdin: the rules) in NS,
# records the time or "did not load in TIMEBOX s" and the kernel memory
# delta; status 0 if loaded.
load_timeboxed() {
	local n=$1 dp=$2 ns=$3 t0 s rc m0 TIMEBOX=$TIMEBOX
	shift 3
	[[ $dp == ipt-nft ]] && TIMEBOX=$TIMEBOX_IPTNFT
	[[ $dp == nft ]] && TIMEBOX=$TIMEBOX_NFT
	m0=$(kmem_kib)
	t0=$EPOCHREALTIME
	timeout --kill-after=5 "$TIMEBOX" nsenter --net="/run/netns/$ns" "$@" 2>"$TMP/load.err"
	rc=$?
	s=$(secs_since "$t0")
	if ((rc == 0)); then
		echo "$n,$dp,kmem_delta,$((($(kmem_kib) - m0) * 1024))" >>"$MEM"
		echo "$n,$dp,$s,ok" >>"$LOADS"
		log "  $dp: $n services loaded in $s s"
		return 0
	elif ((rc == 124 || rc == 137)); then
		echo "$n,$dp,$TIMEBOX,timeout" >>"$LOADS"
		log "  $dp: did not load in $TIMEBOX s"
	else
		echo "$n,$dp,$s,failed" >>"$LOADS"
		log "  $dp: load failed (exit $rc): $(head -c 300 "$TMP/load.err")"
	fi
	return 1
}

# memlock DIR: "TOTAL SERVICES" bytes of rota's maps pinned in DIR, as
# bpftool reports them (memlock: what the map holds in the kernel); SERVICES
# is the part of the service, backend and Maglev maps, the ones that grow
# with services.
memlock() {
	local f
	for f in "$1"/rota_*; do bpftool -j map show pinned "$f"; echo; done | "$PY" -c '
import json, sys
tot = svc = 0
for line in sys.stdin:
    if line.strip():
        m = json.loads(line)
        b = m.get("bytes_memlock", 0)
        tot += b
        if m["name"] in ("rota_svc4", "rota_backends4", "rota_maglev4"):
            svc += b
print(tot, svc)'
}

# rota_program N DIR: rota load (maps + programs) and the N services through
# librota, each timed, with the BPF map memory before and after.
rota_program() {
	local n=$1 dir=$2 t0 slots m0 m1 s tot0 tot1 svc1
	slots=$((n * (ENDPOINTS + 1) + 1024))
	((slots < 262144)) && slots=262144
	t0=$EPOCHREALTIME
	"$ROTA" --bpffs-dir "$dir" load --services "$slots" --backends "$slots" >"$TMP/rota-load.log" 2>&1 ||
		{ cat "$TMP/rota-load.log" >&2; die "rota load"; }
	echo "$n,rota-load,$(secs_since "$t0"),ok" >>"$LOADS"
	read -r tot0 _ < <(memlock "$dir")
	m0=$(kmem_kib)
	if s=$("$PROG" "$dir" "$n" "$ENDPOINTS" "$RAND_IDX" "$MAGLEV_VIP" "${TEST_EPS[@]}"); then
		m1=$(kmem_kib)
		read -r tot1 svc1 < <(memlock "$dir")
		{
			echo "$n,rota,kmem_delta,$(((m1 - m0) * 1024))"
			echo "$n,rota,memlock_total,$tot1"
			echo "$n,rota,memlock_delta,$((tot1 - tot0))"
			echo "$n,rota,memlock_services,$svc1"
		} >>"$MEM"
		echo "$n,rota,$s,ok" >>"$LOADS"
		log "  rota: $n services programmed in $s s (rota load before it: $(grep "^$n,rota-load," "$LOADS" | cut -d, -f3) s)"
		return 0
	fi
	echo "$n,rota,0,failed" >>"$LOADS"
	return 1
}

# change_index N ROUND: the service whose endpoint changes in ROUND: from the
# middle on, never one of the services under test.
change_index() {
	local i=$(($1 / 2 + $2))
	while ((i >= $1 - 1 || i == RAND_IDX)); do i=$(((i + 1) % ($1 - 1))); done
	echo "$i"
}

# timed_apply N DATAPLANE ROUND CMD...: wall time of CMD (stdin: the delta).
timed_apply() {
	local n=$1 dp=$2 r=$3 t0 s
	shift 3
	t0=$EPOCHREALTIME
	if timeout 120 "$@" 2>"$TMP/change.err"; then
		s=$(secs_since "$t0")
		echo "$n,$dp,$r,$s,ok" >>"$CHG"
		printf '%s' "$dp=${s}s "
	else
		echo "$n,$dp,$r,0,failed" >>"$CHG"
		log "  $dp: endpoint change failed: $(head -c 300 "$TMP/change.err")" >&2
	fi
}

# change_phase N DIR LOADED...: one endpoint change, CHANGE_RUNS times (a
# different service each time), applied the way each dataplane's agent
# would: kube-proxy's partial iptables-restore, its nft transaction, and
# `rota service add` of the service's new backend list.
change_phase() {
	local n=$1 dir=$2 r idx line spec ep
	shift 2
	local loaded=" $* " eps=()
	for ep in "${TEST_EPS[@]}"; do eps+=(--test-ep "$ep"); done
	((n >= 3)) || return 0
	[[ $loaded == *" ipt-"* || $loaded == *" nft "* || $loaded == *" rota-"* ]] || return 0
	for ((r = 0; r < CHANGE_RUNS; r++)); do
		idx=$(change_index "$n" "$r")
		line=""
		if [[ $loaded == *" ipt-legacy "* || $loaded == *" ipt-nft "* ]]; then
			"$PY" "$HERE/kpgen.py" iptables-change -n "$n" -e "$ENDPOINTS" "${eps[@]}" --index "$idx" >"$TMP/chg.ipt"
			[[ $loaded == *" ipt-legacy "* ]] &&
				line+=$(timed_apply "$n" ipt-legacy "$r" nsenter --net="/run/netns/$ID-legacy-n" iptables-legacy-restore --noflush <"$TMP/chg.ipt")
			[[ $loaded == *" ipt-nft "* ]] &&
				line+=$(timed_apply "$n" ipt-nft "$r" nsenter --net="/run/netns/$ID-iptnft-n" iptables-nft-restore --noflush <"$TMP/chg.ipt")
		fi
		if [[ $loaded == *" nft "* ]]; then
			"$PY" "$HERE/kpgen.py" nftables-change -n "$n" -e "$ENDPOINTS" "${eps[@]}" --index "$idx" >"$TMP/chg.nft"
			line+=$(timed_apply "$n" nft "$r" nsenter --net="/run/netns/$ID-nft-n" nft -f - <"$TMP/chg.nft")
		fi
		if [[ $loaded == *" rota-"* ]]; then
			read -r -a spec < <("$PY" "$HERE/kpgen.py" changed -n "$n" -e "$ENDPOINTS" "${eps[@]}" --index "$idx")
			line+=$(timed_apply "$n" rota "$r" "$ROTA" --bpffs-dir "$dir" service add "${spec[@]}" </dev/null)
		fi
		log "  endpoint change $((r + 1))/$CHANGE_RUNS (service $idx): $line"
	done
	rm -f "$TMP/chg.ipt" "$TMP/chg.nft"
}

# conntrack_memory N TOPOLOGY DATAPLANE: kernel conntrack entries left in
# the node netns by the runs (TIME_WAIT ones live 120 s) and their size.
conntrack_memory() {
	local n=$1 tp=$2 dp=$3 count size
	count=$(in_ns "$ID-$tp-n" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null) || count=0
	size=$(awk '$1 == "nf_conntrack" { print $4; exit }' /proc/slabinfo 2>/dev/null)
	echo "$n,$dp,conntrack_entries,${count:-0}" >>"$MEM"
	echo "$n,$dp,conntrack_bytes,$((${count:-0} * ${size:-0}))" >>"$MEM"
}

# ipt_blob N: the iptables-legacy nat table's rule blob (exact size).
ipt_blob() {
	local entries bytes
	read -r entries bytes < <(in_ns "$ID-legacy-n" "$TOOL" iptinfo nat) || return 0
	echo "$1,ipt-legacy,blob_bytes,$bytes" >>"$MEM"
	echo "$1,ipt-legacy,blob_entries,$entries" >>"$MEM"
}

# free_ports K: K loopback TCP ports free now, below the ephemeral range.
FREE_PORTS_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../lib" && pwd)/free_ports.py
free_ports() { "$PY" "$FREE_PORTS_PY" "$1"; }

metric() {	# metric PORT NAME: one sample's value from rotad's /metrics
	curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'
}

# api_phase N: rota through its real path. N Services and EndpointSlices go
# into a rota-apiserver of ours first; then rotad starts on a freshly loaded,
# empty bpffs directory and the time until its maps hold the N services is
# what "programming N services from the API" costs (list, parse, reconcile,
# map writes; sizing and loading the maps is `rota load`, timed apart). Then
# CHANGE_RUNS endpoint changes, each timed by rotad's own
# kubeproxy_network_programming_duration_seconds (the slice's trigger time,
# stamped as the update leaves, to the end of the sync that wrote it).
api_phase() {
	local n=$1
	local dir=/sys/fs/bpf/$ID-api-$n data=$TMP/api-$n api_port hport mport token url
	local t0 s i r c0 s0 c1 s1 slots api_pid rotad_pid have idx
	read -r api_port hport mport < <(free_ports 3)
	mkdir -p "$data"
	slots=$((n * (ENDPOINTS + 1) + 1024))
	((slots < 262144)) && slots=262144
	BPFDIRS+=("$dir")
	"$ROTA" --bpffs-dir "$dir" load --services "$slots" --backends "$slots" >"$TMP/rota-load.log" 2>&1 ||
		{ cat "$TMP/rota-load.log" >&2; die "rota load for rotad"; }
	"$APISERVER" --data-dir "$data" --secure-port "$api_port" --kubeconfig-out "$data/kubeconfig" \
		>>"$TMP/apiserver.log" 2>&1 &
	api_pid=$!
	PIDS+=("$api_pid")
	for i in $(seq 300); do
		[[ $(curl -sk --max-time 2 "https://127.0.0.1:$api_port/readyz" 2>/dev/null) == ok ]] && break
		kill -0 "$api_pid" 2>/dev/null || { tail -n 5 "$TMP/apiserver.log" >&2; die "rota-apiserver exited"; }
		sleep 0.1
	done
	token=$(cat "$data/admin.token")
	url=https://127.0.0.1:$api_port
	if ! s=$("$PY" "$HERE/apiload.py" create "$url" "$token" -n "$n" -e "$ENDPOINTS" 2>"$TMP/apiload.err"); then
		log "  rotad: creating the API objects failed: $(head -c 300 "$TMP/apiload.err")"
		echo "$n,rotad,0,failed" >>"$LOADS"
		kill "$api_pid"; wait "$api_pid" 2>/dev/null
		return 1
	fi
	echo "$n,api-create,$s,ok" >>"$LOADS"
	log "  rotad: $n Services and EndpointSlices created in rota-apiserver in $s s"

	t0=$EPOCHREALTIME
	"$ROTAD" --kubeconfig "$data/kubeconfig" --bpffs-dir "$dir" --socket-lb off --lb-algorithm random \
		--healthz-bind "127.0.0.1:$hport" --metrics-bind "127.0.0.1:$mport" --node-name "$ID" \
		>"$TMP/rotad.log" 2>&1 &
	rotad_pid=$!
	PIDS+=("$rotad_pid")
	s=""
	while (($(secs_since "$t0" | cut -d. -f1) < TIMEBOX)); do
		have=$(metric "$mport" rota_services)
		if ((${have:-0} >= n)); then
			s=$(secs_since "$t0")
			break
		fi
		kill -0 "$rotad_pid" 2>/dev/null || break
		sleep 0.02
	done
	if [[ -z $s ]]; then
		log "  rotad: did not program $n services in $TIMEBOX s: $(tail -n 3 "$TMP/rotad.log" | tr '\n' ' ')"
		echo "$n,rotad,$TIMEBOX,timeout" >>"$LOADS"
	else
		echo "$n,rotad,$s,ok" >>"$LOADS"
		# The sync alone, as rotad logs it (its first "sync: ... in X ms").
		awk '/sync: .* services written/ { for (i = 1; i < NF; i++) if ($(i + 1) == "ms") { printf "%.4f\n", $i / 1000; exit } }' \
			"$TMP/rotad.log" | while read -r v; do echo "$n,rotad-sync,$v,ok" >>"$LOADS"; done
		echo "$n,rotad,rss_bytes,$(($(awk '/^VmRSS/ { print $2 }' "/proc/$rotad_pid/status") * 1024))" >>"$MEM"
		echo "$n,rotad,memlock_total,$(memlock "$dir" | cut -d' ' -f1)" >>"$MEM"
		log "  rotad: $n services from the API in $s s (start to maps; sync $(grep "^$n,rotad-sync," "$LOADS" | cut -d, -f3) s)"
		for ((r = 0; r < CHANGE_RUNS && n >= 3; r++)); do
			idx=$(change_index "$n" "$r")
			c0=$(metric "$mport" kubeproxy_network_programming_duration_seconds_count)
			s0=$(metric "$mport" kubeproxy_network_programming_duration_seconds_sum)
			"$PY" "$HERE/apiload.py" change "$url" "$token" -n "$n" -e "$ENDPOINTS" --index "$idx" >/dev/null ||
				{ echo "$n,rotad,$r,0,failed" >>"$CHG"; continue; }
			for i in $(seq 500); do
				c1=$(metric "$mport" kubeproxy_network_programming_duration_seconds_count)
				((${c1:-0} > ${c0:-0})) && break
				sleep 0.02
			done
			s1=$(metric "$mport" kubeproxy_network_programming_duration_seconds_sum)
			if ((${c1:-0} > ${c0:-0})); then
				echo "$n,rotad,$r,$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.4f", b - a }'),ok" >>"$CHG"
			else
				echo "$n,rotad,$r,0,failed" >>"$CHG"
			fi
		done
	fi
	kill -TERM "$rotad_pid" 2>/dev/null
	wait "$rotad_pid" 2>/dev/null
	kill -TERM "$api_pid" 2>/dev/null
	wait "$api_pid" 2>/dev/null
	"$ROTA" --bpffs-dir "$dir" unload >/dev/null 2>&1
	[[ -e $dir ]] && rm -rf "$dir"
	rm -rf "$data"
}
