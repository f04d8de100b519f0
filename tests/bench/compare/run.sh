#!/usr/bin/env bash
# rota vs kube-proxy's dataplanes, side by side in one run, as ratios.
#
# Every dataplane gets its own, identical set of network namespaces
# (topo.sh), built once; for each N (number of services, E endpoints each)
# its rules or maps are loaded, measured, and removed again with the
# conntrack entries the runs left:
#
#   client netns 10.244.1.2 --eth0==h-cli-- node netns (ip_forward) --h-b==eth0-- backend netns
#                                                                    10.244.11.2 .. 10.244.11.(E+1)
#
# The backend netns holds the E endpoint addresses of the services under
# test and runs cmp_tool's epoll HTTP responder (one process, 2 threads).
# Rules and maps are loaded in the node netns only (iptables and nft in a
# netns touch that netns alone; the root netns is never changed):
#
#   floor            no proxy: the client connects to 10.244.11.2:8080 directly
#   ipt-legacy       kube-proxy iptables layout, iptables-legacy-restore --noflush; service under test last in KUBE-SERVICES
#   ipt-legacy-rand  same rules, the service at a random position
#   ipt-nft          same layout through Debian's iptables-restore (nf_tables backend); time-boxed
#   nft              kube-proxy nftables layout, nft -f (one transaction, as kube-proxy's first sync)
#   rota-tc          rota load + tc programs on the node's veths (socket LB off), random backend choice
#   rota-tc-maglev   same, a Maglev service
#   rota-sock        rota socket LB: the client runs in a cgroup of ours with `rota attach cgroup` (no tc)
#   rota-sock-maglev same, a Maglev service
#
# Workloads (workloads.sh), RUNS rounds that alternate the dataplanes (each
# round starts at a different one):
#   new connections   wrk -t2 -c16 -H 'Connection: close', DURATION s; CPU
#                     time of the client's and backend's cgroups per connection
#   first packet      LATENCY sequential connect()s (SYN -> SYN-ACK), p50/p99
#   request latency   REQUESTS requests in turn over one persistent connection,
#                     p50/p99/p99.9
#   bulk throughput   iperf3 through the service, IPERF_DURATION s, at one N
# Control plane (control.sh): time to program N services from nothing, one
# endpoint change at N (kube-proxy's partial sync, its nft transaction,
# `rota service add`), kernel and BPF memory, and rotad programming N
# services from rota-apiserver (rota's real path).
#
# Output (build/bench or --out DIR, relative to the tree): compare.md
# (tables, machine, exact command, targets), compare.csv (one row per N and
# dataplane), compare-*.csv (every measurement) and PNG plots (gnuplot). Every namespace, bpffs directory,
# cgroup and process it makes is removed at the end, on error and on Ctrl-C.
#
# Usage: tests/bench/compare/run.sh [--full] [--services "100 1000 10000"]
#   [--endpoints 10] [--runs 3] [--duration 1] [--latency 300] [--requests 10000]
#   [--timebox 120] [--timebox-nft 15] [--timebox-iptnft 10] [--iperf-at max] [--iperf-duration 1]
#   [--api-at 1000] [--change-runs 2] [--dataplanes "floor ipt-legacy ..."] [--variants-at max]
#   [--out build/bench]
#   (--*-at: "all", "max", "none" or one N)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
cd "$ROOT" || exit 1
PY=/usr/bin/python3
ROTA=$ROOT/build/bin/rota
ROTAD=$ROOT/build/bin/rotad
APISERVER=$ROOT/build/bin/rota-apiserver
OUT=$ROOT/build/bench
TOOL=$ROOT/build/bench/cmp_tool
PROG=$ROOT/build/bench/cmp_rota_prog

SERVICES="100 1000 10000"
ENDPOINTS=10
RUNS=3
DURATION=1
LATENCY=300		# connect()s per round (first packet)
REQUESTS=10000		# requests per round over one persistent connection
TIMEBOX=120		# iptables-legacy-restore, rota, rotad
TIMEBOX_NFT=15		# quick grid: nft -f of 10,000 services takes minutes here (see the docs)
TIMEBOX_IPTNFT=10	# and iptables-restore (nf_tables) longer still
IPERF_AT=max
IPERF_DURATION=1
API_AT=1000		# quick grid: creating 10,000 Services and slices in the API costs 10-20 s
CHANGE_RUNS=2		# quick grid: one change at 10,000 services costs iptables-legacy 5-8 s
ALL_DP="floor ipt-legacy ipt-legacy-rand ipt-nft nft rota-tc rota-tc-maglev rota-sock rota-sock-maglev"
DATAPLANES=$ALL_DP
VARIANTS_AT=max		# N at which the -rand/-maglev variants run
MODE=quick
ARGS="$*"

usage() { sed -n '/^# Usage:/,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while (($#)); do
	case $1 in
	--full) MODE=full SERVICES="100 1000 10000 50000" RUNS=5 DURATION=5 REQUESTS=50000 TIMEBOX=600 \
		TIMEBOX_NFT=600 TIMEBOX_IPTNFT=600 VARIANTS_AT=all LATENCY=1000 IPERF_DURATION=3 API_AT=all CHANGE_RUNS=5 ;;
	--services) SERVICES=$2; shift ;;
	--endpoints) ENDPOINTS=$2; shift ;;
	--runs) RUNS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--requests) REQUESTS=$2; shift ;;
	--latency) LATENCY=$2; shift ;;
	--timebox) TIMEBOX=$2 TIMEBOX_NFT=$2 TIMEBOX_IPTNFT=$2; shift ;;
	--timebox-nft) TIMEBOX_NFT=$2; shift ;;
	--timebox-iptnft) TIMEBOX_IPTNFT=$2; shift ;;
	--iperf-at) IPERF_AT=$2; shift ;;
	--iperf-duration) IPERF_DURATION=$2; shift ;;
	--api-at) API_AT=$2; shift ;;
	--change-runs) CHANGE_RUNS=$2; shift ;;
	--dataplanes) DATAPLANES=$2; shift ;;
	--variants-at) VARIANTS_AT=$2; shift ;;
	--out) OUT=$(realpath -m "$2"); shift ;;
	-h | --help) usage ;;
	*) echo "run.sh: unknown argument $1" >&2; usage ;;
	esac
	shift
done

die() { echo "run.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

((EUID == 0)) || die "needs root (network namespaces, BPF, iptables in netns)"
for t in ip nsenter wrk iperf3 nft iptables-legacy-restore iptables-nft-restore bpftool gcc timeout curl ss "$PY"; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
done
for b in "$ROTA" "$ROTAD" "$APISERVER"; do [[ -x $b ]] || die "$b is not built: run make"; done
[[ -f build/lib/librota.a ]] || die "build/lib/librota.a is not built: run make"
((ENDPOINTS >= 1 && ENDPOINTS <= 200)) || die "--endpoints must be 1-200"
((RUNS >= 1)) || die "--runs must be >= 1"
((LATENCY >= 1 && REQUESTS >= 1)) || die "--latency and --requests must be >= 1"
mkdir -p "$OUT" "$ROOT/build/bench"

# Helpers, built here when their sources are newer (not part of the
# Makefile): the HTTP responder and latency probe, and the librota programmer.
[[ $TOOL -nt $HERE/cmp_tool.c ]] ||
	gcc -O2 -Wall -Wextra -o "$TOOL" "$HERE/cmp_tool.c" -lpthread || die "building cmp_tool"
[[ $PROG -nt $HERE/cmp_rota_prog.c && $PROG -nt build/lib/librota.a ]] ||
	gcc -O2 -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -Iinclude -Iuserspace/lib -Ibuild/skel \
		-o "$PROG" "$HERE/cmp_rota_prog.c" build/lib/librota.a \
		-lbpf -lelf -lz -lcjson -lcurl -lyaml -lcrypto -lpthread || die "building cmp_rota_prog"

# Every name we make starts with rcmp-<pid>x<random>: namespaces, bpffs
# directories, cgroups, temp files.
ID="rcmp-$$x$(printf %04x $RANDOM)"
TMP=""
NETNS=()	# every namespace we made
PIDS=()		# every background process we started
BPFDIRS=()	# every bpffs directory we loaded
CGROOT=""

# shellcheck source=topo.sh
source "$HERE/topo.sh"
# shellcheck source=workloads.sh
source "$HERE/workloads.sh"
# shellcheck source=control.sh
source "$HERE/control.sh"

# teardown: every process, rota instance and namespace we made.
teardown() {
	local p ns d
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ns in "${NETNS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
	for d in "${BPFDIRS[@]}"; do
		[[ -e $d ]] || continue
		"$ROTA" --bpffs-dir "$d" unload >/dev/null 2>&1
		[[ -e $d ]] && rm -rf "$d"
	done
	BPFDIRS=()
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	NETNS=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	teardown
	remove_cgroups
	[[ -n $TMP ]] && rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM
trap 'exit 129' HUP

TMP=$(mktemp -d "/tmp/$ID.XXXXXX")
# The binaries as they are now: a rebuild in the tree during the run must not
# swap them (or leave them half-written) under it.
{ mkdir "$TMP/bin" && cp "$ROTA" "$ROTAD" "$APISERVER" "$TMP/bin/"; } || die "copying the binaries to $TMP/bin"
ROTA=$TMP/bin/rota ROTAD=$TMP/bin/rotad APISERVER=$TMP/bin/rota-apiserver

secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

MAGLEV_VIP=10.111.255.254
RAW=$TMP/raw.csv LOADS=$TMP/loads.csv LAT=$TMP/firstpacket.csv KA=$TMP/persistent.csv IPERF=$TMP/iperf.csv
CHG=$TMP/change.csv MEM=$TMP/mem.csv
echo "n,endpoints,dataplane,round,conn_per_s,errors,requests,cpu_us,busy_us" >"$RAW"
echo "n,dataplane,load_s,status" >"$LOADS"
echo "n,dataplane,round,p50_us,p99_us,p999_us,max_us,failures" >"$LAT"
echo "n,dataplane,round,req_per_s,p50_us,p99_us,p999_us,max_us,requests" >"$KA"
echo "n,dataplane,round,bits_per_s" >"$IPERF"
echo "n,dataplane,round,seconds,status" >"$CHG"
echo "n,dataplane,what,value" >"$MEM"

[[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || die "/sys/fs/bpf is not a bpf filesystem"
make_cgroups

max_n=0
for n in $SERVICES; do ((n > max_n)) && max_n=$n; done
# at SETTING N: whether a --*-at setting ("all", "max", "none", one N) selects N.
at() { [[ $1 == all || ($1 == max && $2 == "$max_n") || $1 == "$2" ]]; }
start_all=$EPOCHREALTIME
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
kmem_idle 0 1

# The topologies, once for every N: between two N only the rules, maps and
# conntrack entries go (reset_topos).
topos=()
for dp in $DATAPLANES; do
	tp=$(topo_of "$dp")
	[[ -n $tp ]] || die "unknown dataplane $dp (known: $ALL_DP)"
	[[ " ${topos[*]} " == *" $tp "* ]] || topos+=("$tp")
done
has() { [[ " ${topos[*]} " == *" $1 "* ]]; }
for tp in "${topos[@]}"; do make_topo "$tp"; done
for tp in "${topos[@]}"; do wait_serving "$tp"; done

# reset_topos DIR: the node namespaces back to no rules, no maps and an empty
# conntrack table; responders back where iperf3 servers ran.
reset_topos() {
	local tp
	has legacy && printf '*nat\nCOMMIT\n*filter\nCOMMIT\n' | in_ns "$ID-legacy-n" iptables-legacy-restore
	has iptnft && in_ns "$ID-iptnft-n" nft flush ruleset
	has nft && in_ns "$ID-nft-n" nft flush ruleset
	if [[ -n $1 && -e $1 ]]; then
		"$ROTA" --bpffs-dir "$1" unload >/dev/null 2>&1
		[[ -e $1 ]] && rm -rf "$1"
	fi
	for tp in "${topos[@]}"; do
		in_ns "$ID-$tp-n" "$TOOL" ctflush
		if [[ $(ps -o comm= -p "${SERVER_PID[$tp]:-0}" 2>/dev/null) != cmp_tool ]]; then
			stop_server "$tp"
			start_server "$tp" "$TOOL" serve 8080 2
			wait_serving "$tp"
		fi
	done
}

# A baseline that did not load at one N is not tried at a larger one.
declare -A GAVE_UP
# try_load N DATAPLANE NS CMD...: load_timeboxed unless DATAPLANE gave up.
try_load() {
	if [[ -n ${GAVE_UP[$2]:-} ]]; then
		echo "$1,$2,0,skipped: ${GAVE_UP[$2]}" >>"$LOADS"
		log "  $2: not tried (${GAVE_UP[$2]})"
		return 1
	fi
	load_timeboxed "$@" && return 0
	GAVE_UP[$2]="did not load at N=$1 ($(tail -n1 "$LOADS" | cut -d, -f4) after $(tail -n1 "$LOADS" | cut -d, -f3) s)"
	return 1
}

first=1
for n in $SERVICES; do
	log "== N = $n services x $ENDPOINTS endpoints"
	((first)) || reset_topos "$dir"
	first=0
	read -r LAST_VIP RAND_VIP RAND_IDX < <("$PY" "$HERE/kpgen.py" info -n "$n" -e "$ENDPOINTS")
	active=()
	for dp in $DATAPLANES; do
		if [[ $dp == *-rand || $dp == *-maglev ]]; then at "$VARIANTS_AT" "$n" || continue; fi
		active+=("$dp")
	done

	# Programming N services from nothing, one dataplane at a time.
	epargs=()
	for ep in "${TEST_EPS[@]}"; do epargs+=(--test-ep "$ep"); done
	loaded=(floor)
	if has legacy || has iptnft; then
		"$PY" "$HERE/kpgen.py" iptables -n "$n" -e "$ENDPOINTS" "${epargs[@]}" >"$TMP/ipt.rules" || die "kpgen iptables"
	fi
	if has legacy && try_load "$n" ipt-legacy "$ID-legacy-n" iptables-legacy-restore --noflush <"$TMP/ipt.rules"; then
		loaded+=(ipt-legacy ipt-legacy-rand)
		ipt_blob "$n"
	fi
	if has nft; then
		"$PY" "$HERE/kpgen.py" nftables -n "$n" -e "$ENDPOINTS" "${epargs[@]}" >"$TMP/nft.rules" || die "kpgen nftables"
		try_load "$n" nft "$ID-nft-n" nft -f - <"$TMP/nft.rules" && loaded+=(nft)
	fi
	if has iptnft && try_load "$n" ipt-nft "$ID-iptnft-n" iptables-nft-restore --noflush <"$TMP/ipt.rules"; then
		loaded+=(ipt-nft)
	fi
	rm -f "$TMP/ipt.rules" "$TMP/nft.rules"
	dir=""
	if has rtc || has rsock; then
		dir=/sys/fs/bpf/$ID-$n
		BPFDIRS+=("$dir")
		if rota_program "$n" "$dir"; then
			if has rtc; then
				for ifc in h-cli h-b; do
					in_ns "$ID-rtc-n" "$ROTA" --bpffs-dir "$dir" attach veth "$ifc" || die "rota attach veth $ifc"
				done
				loaded+=(rota-tc rota-tc-maglev)
			fi
			if has rsock; then
				"$ROTA" --bpffs-dir "$dir" attach cgroup "$CGROOT/rsock-c" || die "rota attach cgroup $CGROOT/rsock-c"
				loaded+=(rota-sock rota-sock-maglev)
			fi
		fi
	fi

	good=()
	for dp in "${active[@]}"; do
		[[ " ${loaded[*]} " == *" $dp "* ]] && good+=("$dp")
	done
	# Sanity: each dataplane answers through its target before measuring. A
	# failed probe is reported, not skipped: wrk's error count then shows
	# whether the dataplane really does not answer.
	for dp in "${good[@]}"; do
		host=$(target_of "$dp")
		# shellcheck disable=SC2016 # the inner shell expands $0 and $1
		run_in "$dp" timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET / HTTP/1.0\r\n\r\n" >&3 && head -c 15 <&3' \
			"${host%:*}" "${host#*:}" >"$TMP/probe" 2>&1
		grep -q '^HTTP/1.1 200' "$TMP/probe" ||
			log "  $dp: probe through $host got no answer: $(tr '\n' ' ' <"$TMP/probe" | head -c 200)"
	done

	# The data-plane rounds.
	k=${#good[@]}
	for ((r = 0; r < RUNS; r++)); do
		line=""
		for ((i = 0; i < k; i++)); do
			dp=${good[(i + r) % k]}
			line+="$dp=$(conn_run "$n" "$dp" "$r") "
			lat_run "$n" "$dp" "$r"
		done
		log "  round $((r + 1))/$RUNS (conn/s): $line"
	done

	for d in ipt-legacy ipt-nft nft; do
		[[ " ${loaded[*]} " == *" $d "* ]] && conntrack_memory "$n" "$(topo_of "$d")" "$d"
	done
	if at "$IPERF_AT" "$n"; then
		bulk=()
		for dp in "${good[@]}"; do [[ $dp == *-rand || $dp == *-maglev ]] || bulk+=("$dp"); done
		((${#bulk[@]})) && iperf_phase "$n" "${bulk[@]}"
	fi
	change_phase "$n" "$dir" "${loaded[@]}"
	at "$API_AT" "$n" && api_phase "$n"
done
teardown

total=$(secs_since "$start_all")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
for f in raw loads firstpacket persistent iperf change mem; do cp "$TMP/$f.csv" "$OUT/compare-$f.csv"; done
"$PY" -B "$HERE/report.py" --dir "$OUT" \
	--command "tests/bench/compare/run.sh${ARGS:+ $ARGS}" --mode "$MODE" --seconds "${total%.*}" \
	--load-before "$load_before" --load-after "$load_after" \
	--settings "services: $SERVICES; endpoints: $ENDPOINTS; runs: $RUNS; new-connection runs: ${DURATION} s; per round $LATENCY connect()s and $REQUESTS requests on one persistent connection; iperf3: ${IPERF_DURATION} s at N = $IPERF_AT; rotad from the API at N = $API_AT; endpoint changes: $CHANGE_RUNS; time-box per load: ${TIMEBOX} s (nft -f: ${TIMEBOX_NFT} s, iptables-restore nf_tables: ${TIMEBOX_IPTNFT} s); variants at N = $VARIANTS_AT" ||
	die "report.py failed"
log "done in ${total%.*} s: $OUT/compare.md, $OUT/compare.csv, $OUT/compare-*.png"
