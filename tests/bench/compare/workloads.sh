# shellcheck shell=bash
# Data-plane workloads of the kube-proxy comparison (sourced by run.sh).
# Each appends one CSV line per run; report.py turns them into tables.

# conn_run N DATAPLANE ROUND: new-connection rate. wrk with "Connection:
# close" (every request is a new TCP connection), and the CPU time of this
# dataplane's client and backend cgroups over the run divided by the
# connections completed.
conn_run() {
	local n=$1 dp=$2 r=$3 tp c0 c1 b0 b1 rps reqs errs
	tp=$(topo_of "$dp")
	c0=$(cg_usec "$tp") b0=$(busy_usec)
	run_in "$dp" wrk -t2 -c16 -d"${DURATION}s" -H 'Connection: close' --timeout 2s \
		"http://$(target_of "$dp")/" >"$TMP/wrk.out" 2>&1
	c1=$(cg_usec "$tp") b1=$(busy_usec)
	rps=$(awk '/^Requests\/sec/ { print $2 }' "$TMP/wrk.out")
	reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk.out")
	errs=$(awk '/Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 } /Non-2xx/ { e += $NF } END { print e + 0 }' "$TMP/wrk.out")
	echo "$n,$ENDPOINTS,$dp,$r,${rps:-0},${errs:-0},${reqs:-0},$((c1 - c0)),$((b1 - b0))" >>"$RAW"
	echo "${rps%.*}"
}

# lat_run N DATAPLANE ROUND: latency, from one cmp_tool run in the client.
# First packet: LATENCY sequential connect()s (SYN -> SYN-ACK through the
# dataplane). Then request latency over a persistent connection: REQUESTS
# requests one after the other on one connection, so a percentile is the
# time of one request and its answer through the dataplane (conntrack or
# the tc program on every packet, or nothing with socket LB), not time spent
# queued behind other requests.
lat_run() {
	local n=$1 dp=$2 r=$3 host l c50 c99 c999 cmax cfail q50 q99 q999 qmax qn qps
	host=$(target_of "$dp")
	if l=$(run_in "$dp" "$TOOL" latency "${host%:*}" "${host#*:}" "$LATENCY" "$REQUESTS" 2>&1); then
		read -r c50 c99 c999 cmax cfail q50 q99 q999 qmax qn qps <<<"$l"
		echo "$n,$dp,$r,$c50,$c99,$c999,$cmax,$cfail" >>"$LAT"
		echo "$n,$dp,$r,$qps,$q50,$q99,$q999,$qmax,$qn" >>"$KA"
	else
		log "  $dp: latency probe failed: $l"
	fi
}

# iperf_phase N DATAPLANE...: bulk throughput through each dataplane's
# service. The HTTP responders make way for an iperf3 server on the same
# port (8080 on every backend address), so the same service carries it.
# Rounds alternate the dataplanes.
iperf_phase() {
	local n=$1 dp tp r i k host bps
	shift
	local dps=("$@") tps=()
	for dp in "${dps[@]}"; do
		tp=$(topo_of "$dp")
		[[ " ${tps[*]} " == *" $tp "* ]] || tps+=("$tp")
	done
	for tp in "${tps[@]}"; do
		stop_server "$tp"
		start_server "$tp" iperf3 -s -p 8080
	done
	for tp in "${tps[@]}"; do
		for i in $(seq 100); do
			[[ -n $(in_ns "$ID-$tp-b" ss -Hltn 'sport = :8080') ]] && break
			sleep 0.05
		done
	done
	k=${#dps[@]}
	for ((r = 0; r < RUNS; r++)); do
		line=""
		for ((i = 0; i < k; i++)); do
			dp=${dps[(i + r) % k]}
			host=$(target_of "$dp")
			run_in "$dp" timeout $((IPERF_DURATION + 10)) iperf3 -c "${host%:*}" -p "${host#*:}" \
				-t "$IPERF_DURATION" -J >"$TMP/iperf.json" 2>&1
			bps=$("$PY" -c 'import json, sys
try:
    print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"])
except Exception:
    print("")' "$TMP/iperf.json")
			if [[ -n $bps ]]; then
				echo "$n,$dp,$r,$bps" >>"$IPERF"
				line+="$dp=$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 1e9 }') "
			else
				log "  $dp: iperf3 failed: $(tr '\n' ' ' <"$TMP/iperf.json" | head -c 200)"
			fi
		done
		log "  iperf3 round $((r + 1))/$RUNS (Gbit/s): $line"
	done
}
