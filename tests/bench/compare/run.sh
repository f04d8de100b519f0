#!/usr/bin/env bash
# rota vs kube-proxy's dataplanes, side by side in one run, as ratios.
#
# For each N (number of services) every dataplane gets its own, identical
# set of network namespaces:
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
#   nft              kube-proxy nftables layout, nft -f
#   rota-tc          rota load + tc programs on the node's veths (socket LB off), random backend choice
#   rota-tc-maglev   same, a Maglev service
#   rota-sock        rota socket LB: the client runs in a cgroup of ours with `rota attach cgroup` (no tc)
#   rota-sock-maglev same, a Maglev service
#
# Workloads: wrk -t2 -c16 -H 'Connection: close' for DURATION s against the
# service (new-connection rate), RUNS rounds that alternate the dataplanes
# (each round starts at a different one); first-packet latency from COUNT
# sequential connect()s per round; control plane: the time each dataplane
# takes to program N services from nothing.
#
# Output: build/bench/compare.md, build/bench/compare.csv (summary) and
# build/bench/compare-raw.csv (every run). Every namespace, bpffs
# directory, cgroup and process it makes is removed at the end, on error and
# on Ctrl-C.
#
# Usage: tests/bench/compare/run.sh [--full] [--services "100 1000 10000"]
#   [--endpoints 4] [--runs 3] [--duration 2] [--timebox 60] [--timebox-iptnft 20] [--latency 300]
#   [--dataplanes "floor ipt-legacy ..."] [--variants-at N]
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
cd "$ROOT" || exit 1
PY=/usr/bin/python3
ROTA=$ROOT/build/bin/rota
OUT=$ROOT/build/bench
TOOL=$OUT/cmp_tool
PROG=$OUT/cmp_rota_prog

SERVICES="100 1000 10000"
ENDPOINTS=4
RUNS=3
DURATION=2
TIMEBOX=60
TIMEBOX_IPTNFT=20	# quick grid: iptables-restore (nf_tables) is known not to load 10k in minutes
LATENCY=300
ALL_DP="floor ipt-legacy ipt-legacy-rand ipt-nft nft rota-tc rota-tc-maglev rota-sock rota-sock-maglev"
DATAPLANES=$ALL_DP
VARIANTS_AT=max		# N at which the -rand/-maglev variants run ("all", "max" or a number)
MODE=quick
ARGS="$*"

usage() { sed -n '/^# Usage:/,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while (($#)); do
	case $1 in
	--full) MODE=full SERVICES="100 1000 10000 50000" RUNS=5 DURATION=5 TIMEBOX=600 TIMEBOX_IPTNFT=600 VARIANTS_AT=all LATENCY=1000 ;;
	--services) SERVICES=$2; shift ;;
	--endpoints) ENDPOINTS=$2; shift ;;
	--runs) RUNS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--timebox) TIMEBOX=$2 TIMEBOX_IPTNFT=$2; shift ;;
	--timebox-iptnft) TIMEBOX_IPTNFT=$2; shift ;;
	--latency) LATENCY=$2; shift ;;
	--dataplanes) DATAPLANES=$2; shift ;;
	--variants-at) VARIANTS_AT=$2; shift ;;
	-h | --help) usage ;;
	*) echo "run.sh: unknown argument $1" >&2; usage ;;
	esac
	shift
done

die() { echo "run.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

((EUID == 0)) || die "needs root (network namespaces, BPF, iptables in netns)"
for t in ip nsenter wrk nft iptables-legacy-restore iptables-nft-restore gcc timeout "$PY"; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install wrk nftables iptables gcc)"
done
[[ -x $ROTA ]] || die "$ROTA is not built: run make"
[[ -f build/lib/librota.a ]] || die "build/lib/librota.a is not built: run make"
((ENDPOINTS >= 1 && ENDPOINTS <= 200)) || die "--endpoints must be 1-200"
mkdir -p "$OUT"

# Helpers, built here (not part of the Makefile): an epoll HTTP responder and
# connect() latency probe, and the librota programmer.
gcc -O2 -Wall -Wextra -o "$TOOL" "$HERE/cmp_tool.c" -lpthread || die "building cmp_tool"
gcc -O2 -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -Iinclude -Iuserspace/lib -Ibuild/skel \
	-o "$PROG" "$HERE/cmp_rota_prog.c" build/lib/librota.a \
	-lbpf -lelf -lz -lcjson -lcurl -lyaml -lcrypto -lpthread || die "building cmp_rota_prog"

ID="rcmp-$$x$(printf %04x $RANDOM)"
TMP=$(mktemp -d "/tmp/$ID.XXXXXX")
NETNS=()	# every namespace we made
PIDS=()		# every background process we started
BPFDIRS=()	# every bpffs directory we loaded
CG=""

cleanup() {
	local rc=$? p ns d
	trap - EXIT INT TERM HUP
	set +e
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ns in "${NETNS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	if [[ -n $CG && -f $CG/cgroup.procs ]]; then
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$CG/cgroup.procs"
	fi
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for d in "${BPFDIRS[@]}"; do
		[[ -e $d ]] || continue
		"$ROTA" --bpffs-dir "$d" unload >/dev/null 2>&1
		[[ -e $d ]] && rm -rf "$d"
	done
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [[ -n $CG && -d $CG ]]; then
		for p in $(seq 50); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
		[[ -d $CG ]] && echo "cleanup: could not remove cgroup $CG" >&2
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM
trap 'exit 129' HUP

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
# in_cg NS CMD...: in netns NS, from a process first moved into our cgroup.
in_cg() {
	local ns=$1; shift
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	nsenter --net="/run/netns/$ns" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"
}
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

new_netns() {
	ip netns add "$1" || die "ip netns add $1"
	NETNS+=("$1")
	ip -n "$1" link set lo up
	in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
}

TEST_EPS=()
for ((j = 0; j < ENDPOINTS; j++)); do TEST_EPS+=("10.244.11.$((2 + j)):8080"); done

# make_topo NAME: NAME-n (node), NAME-c (client), NAME-b (backend) and the
# responder; all alike for every dataplane.
make_topo() {
	local t=$ID-$1 j
	new_netns "$t-n"; new_netns "$t-c"; new_netns "$t-b"
	in_ns "$t-n" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 || die "sysctl in $t-n"
	ip -n "$t-n" link add h-cli type veth peer name eth0 netns "$t-c" || die "veth h-cli"
	ip -n "$t-n" link add h-b type veth peer name eth0 netns "$t-b" || die "veth h-b"
	ip -n "$t-n" addr add 10.244.1.1/24 dev h-cli
	ip -n "$t-n" addr add 10.244.11.1/24 dev h-b
	ip -n "$t-n" link set h-cli up
	ip -n "$t-n" link set h-b up
	ip -n "$t-c" addr add 10.244.1.2/24 dev eth0
	ip -n "$t-c" link set eth0 up
	ip -n "$t-c" route add default via 10.244.1.1
	for ((j = 0; j < ENDPOINTS; j++)); do ip -n "$t-b" addr add "10.244.11.$((2 + j))/24" dev eth0; done
	ip -n "$t-b" link set eth0 up
	ip -n "$t-b" route add default via 10.244.11.1
	# Many short connections: every port, reuse TIME_WAIT; a deep backlog.
	in_ns "$t-c" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
	in_ns "$t-b" sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
	# nsenter itself (not a function, which would fork a subshell) so that
	# $! is the responder's own PID.
	nsenter --net="/run/netns/$t-b" "$TOOL" serve 8080 2 >>"$TMP/serve.log" 2>&1 &
	PIDS+=($!)
}

wait_serving() {
	local t=$ID-$1 i
	for i in $(seq 100); do
		in_ns "$t-c" bash -c 'exec 3<>/dev/tcp/10.244.11.2/8080' 2>/dev/null && return 0
		sleep 0.05
	done
	die "the responder in $t-b does not answer"
}

# Dataplane → topology, target URL host:port, runner.
topo_of() {
	case $1 in
	floor) echo floor ;; ipt-legacy*) echo legacy ;; ipt-nft*) echo iptnft ;; nft*) echo nft ;;
	rota-tc*) echo rtc ;; rota-sock*) echo rsock ;;
	esac
}
target_of() {
	case $1 in
	floor) echo 10.244.11.2:8080 ;;
	*-rand) echo "$RAND_VIP:80" ;;
	*-maglev) echo "$MAGLEV_VIP:80" ;;
	*) echo "$LAST_VIP:80" ;;
	esac
}
run_in() {	# run_in DATAPLANE CMD...: in the dataplane's client
	local dp=$1; shift
	if [[ $dp == rota-sock* ]]; then in_cg "$ID-$(topo_of "$dp")-c" "$@"; else in_ns "$ID-$(topo_of "$dp")-c" "$@"; fi
}

MAGLEV_VIP=10.111.255.254
RAW=$TMP/raw.csv LOADS=$TMP/loads.csv LAT=$TMP/lat.csv
echo "n,endpoints,dataplane,round,conn_per_s,errors,requests" >"$RAW"
echo "n,dataplane,load_s,status" >"$LOADS"
echo "n,dataplane,round,p50_us,p99_us,p999_us,max_us,failures" >"$LAT"

base=/sys/fs/cgroup/unified
[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || base=/sys/fs/cgroup
[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || die "no cgroup v2 at /sys/fs/cgroup/unified or /sys/fs/cgroup"
[[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] || die "/sys/fs/bpf is not a bpf filesystem"

wants() { [[ " $DATAPLANES " == *" $1 "* ]]; }
max_n=0
for n in $SERVICES; do ((n > max_n)) && max_n=$n; done
start_all=$EPOCHREALTIME
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# load_timeboxed N DATAPLANE NS CMD...: runs CMD (stdin: the rules) in NS,
# records the time or "did not load in TIMEBOX s"; status 0 if loaded.
load_timeboxed() {
	local n=$1 dp=$2 ns=$3 t0 s rc TIMEBOX=$TIMEBOX
	shift 3
	[[ $dp == ipt-nft ]] && TIMEBOX=$TIMEBOX_IPTNFT
	t0=$EPOCHREALTIME
	timeout --kill-after=5 "$TIMEBOX" nsenter --net="/run/netns/$ns" "$@" 2>"$TMP/load.err"
	rc=$?
	s=$(secs_since "$t0")
	if ((rc == 0)); then
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

for n in $SERVICES; do
	log "== N = $n services x $ENDPOINTS endpoints"
	read -r LAST_VIP RAND_VIP RAND_IDX < <("$PY" "$HERE/kpgen.py" info -n "$n" -e "$ENDPOINTS")
	active=()
	for dp in $DATAPLANES; do
		if [[ $dp == *-rand || $dp == *-maglev ]]; then
			[[ $VARIANTS_AT == all || ($VARIANTS_AT == max && $n == "$max_n") || $VARIANTS_AT == "$n" ]] || continue
		fi
		active+=("$dp")
	done
	topos=()
	for dp in "${active[@]}"; do
		tp=$(topo_of "$dp")
		[[ " ${topos[*]} " == *" $tp "* ]] || topos+=("$tp")
	done
	for tp in "${topos[@]}"; do make_topo "$tp"; done
	for tp in "${topos[@]}"; do wait_serving "$tp"; done

	epargs=()
	for ep in "${TEST_EPS[@]}"; do epargs+=(--test-ep "$ep"); done
	loaded=(floor)
	if [[ " ${topos[*]} " == *" legacy "* || " ${topos[*]} " == *" iptnft "* ]]; then
		"$PY" "$HERE/kpgen.py" iptables -n "$n" -e "$ENDPOINTS" "${epargs[@]}" >"$TMP/ipt.rules" || die "kpgen iptables"
	fi
	if [[ " ${topos[*]} " == *" legacy "* ]] &&
		load_timeboxed "$n" ipt-legacy "$ID-legacy-n" iptables-legacy-restore --noflush <"$TMP/ipt.rules"; then
		loaded+=(ipt-legacy ipt-legacy-rand)
	fi
	if [[ " ${topos[*]} " == *" nft "* ]]; then
		"$PY" "$HERE/kpgen.py" nftables -n "$n" -e "$ENDPOINTS" "${epargs[@]}" >"$TMP/nft.rules" || die "kpgen nftables"
		load_timeboxed "$n" nft "$ID-nft-n" nft -f - <"$TMP/nft.rules" && loaded+=(nft)
	fi
	if [[ " ${topos[*]} " == *" iptnft "* ]] &&
		load_timeboxed "$n" ipt-nft "$ID-iptnft-n" iptables-nft-restore --noflush <"$TMP/ipt.rules"; then
		loaded+=(ipt-nft)
	fi
	rm -f "$TMP/ipt.rules" "$TMP/nft.rules"
	if [[ " ${topos[*]} " == *" rtc "* || " ${topos[*]} " == *" rsock "* ]]; then
		dir=/sys/fs/bpf/$ID-$n
		BPFDIRS+=("$dir")
		slots=$(( (n * (ENDPOINTS + 1) + 1024) ))
		((slots < 262144)) && slots=262144
		t0=$EPOCHREALTIME
		"$ROTA" --bpffs-dir "$dir" load --services "$slots" --backends "$slots" >"$TMP/rota-load.log" 2>&1 ||
			{ cat "$TMP/rota-load.log" >&2; die "rota load"; }
		echo "$n,rota-load,$(secs_since "$t0"),ok" >>"$LOADS"
		if s=$("$PROG" "$dir" "$n" "$ENDPOINTS" "$RAND_IDX" "$MAGLEV_VIP" "${TEST_EPS[@]}"); then
			echo "$n,rota,$s,ok" >>"$LOADS"
			log "  rota: $n services programmed in $s s (rota load before it: $(grep "^$n,rota-load," "$LOADS" | cut -d, -f3) s)"
			if [[ " ${topos[*]} " == *" rtc "* ]]; then
				for ifc in h-cli h-b; do
					in_ns "$ID-rtc-n" "$ROTA" --bpffs-dir "$dir" attach veth "$ifc" || die "rota attach veth $ifc"
				done
				loaded+=(rota-tc rota-tc-maglev)
			fi
			if [[ " ${topos[*]} " == *" rsock "* ]]; then
				if [[ -z $CG ]]; then
					CG=$base/$ID
					mkdir "$CG" || die "mkdir $CG"
				fi
				"$ROTA" --bpffs-dir "$dir" attach cgroup "$CG" || die "rota attach cgroup $CG"
				loaded+=(rota-sock rota-sock-maglev)
			fi
		else
			echo "$n,rota,0,failed" >>"$LOADS"
		fi
	fi

	todo=()
	for dp in "${active[@]}"; do
		[[ " ${loaded[*]} " == *" $dp "* ]] && todo+=("$dp")
	done
	# Sanity: each dataplane answers through its target before measuring.
	good=()
	for dp in "${todo[@]}"; do
		host=$(target_of "$dp")
		# shellcheck disable=SC2016 # the inner shell expands $0 and $1
		ok=0
		for try in 1 2; do
			run_in "$dp" timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET / HTTP/1.0\r\n\r\n" >&3 && head -c 15 <&3' \
				"${host%:*}" "${host#*:}" >"$TMP/probe" 2>&1
			echo " (exit $?, try $try)" >>"$TMP/probe"
			grep -q '^HTTP/1.1 200' "$TMP/probe" && { ok=1; break; }
		done
		# A failed probe is reported, not skipped: wrk's error count then
		# shows whether the dataplane really does not answer.
		((ok)) || log "  $dp: probe through $(target_of "$dp") got no answer: $(tr '\n' ' ' <"$TMP/probe" | head -c 200)"
		good+=("$dp")
	done
	k=${#good[@]}
	for ((r = 0; r < RUNS; r++)); do
		line=""
		for ((i = 0; i < k; i++)); do
			dp=${good[(i + r) % k]}
			run_in "$dp" wrk -t2 -c16 -d"${DURATION}s" -H 'Connection: close' --timeout 2s \
				"http://$(target_of "$dp")/" >"$TMP/wrk.out" 2>&1
			rps=$(awk '/^Requests\/sec/ { print $2 }' "$TMP/wrk.out")
			reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk.out")
			errs=$(awk '/Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 } /Non-2xx/ { e += $NF } END { print e + 0 }' "$TMP/wrk.out")
			echo "$n,$ENDPOINTS,$dp,$r,${rps:-0},${errs:-0},${reqs:-0}" >>"$RAW"
			line+="$dp=${rps%.*} "
			if ((LATENCY > 0)); then
				host=$(target_of "$dp")
				if l=$(run_in "$dp" "$TOOL" connlat "${host%:*}" "${host#*:}" "$LATENCY" 2>&1); then
					echo "$n,$dp,$r,${l// /,}" >>"$LAT"
				fi
			fi
		done
		log "  round $((r + 1))/$RUNS: $line"
	done

	# Tear this N down: processes, rota, namespaces (their rules go with them).
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ns in "${NETNS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
	if [[ -n ${dir:-} && -e ${dir:-/nonexistent} ]]; then
		"$ROTA" --bpffs-dir "$dir" unload >/dev/null 2>&1
		[[ -e $dir ]] && rm -rf "$dir"
	fi
	dir=""
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	NETNS=()
done

total=$(secs_since "$start_all")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$RAW" "$OUT/compare-raw.csv"
cp "$LOADS" "$OUT/compare-loads.csv"
cp "$LAT" "$OUT/compare-latency.csv"
"$PY" "$HERE/report.py" --raw "$RAW" --loads "$LOADS" --lat "$LAT" \
	--md "$OUT/compare.md" --csv "$OUT/compare.csv" \
	--command "tests/bench/compare/run.sh${ARGS:+ $ARGS}" --mode "$MODE" --seconds "${total%.*}" \
	--load-before "$load_before" --load-after "$load_after" \
	--settings "services: $SERVICES; endpoints: $ENDPOINTS; runs: $RUNS; duration: ${DURATION}s; timebox: ${TIMEBOX}s (iptables-restore nf_tables: ${TIMEBOX_IPTNFT}s); connect() probes per round: $LATENCY; variants at: $VARIANTS_AT" ||
	die "report.py failed"
cat "$OUT/compare.md"
log "done in ${total%.*} s: $OUT/compare.md, $OUT/compare.csv"
