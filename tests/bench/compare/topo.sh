# shellcheck shell=bash
# Topologies of the kube-proxy comparison (sourced by run.sh): one set of
# namespaces per dataplane, all alike, and the cgroups whose CPU time is
# what a connection costs.
#
#   client netns 10.244.1.2 --eth0==h-cli-- node netns (ip_forward) --h-b==eth0-- backend netns
#                                                                    10.244.11.2 .. 10.244.11.(E+1)
#
# Every client command and every server runs in a cgroup v2 directory of
# ours, $CGROOT/<topology>-c and -b: their cpu.stat is the CPU time of this
# run's own processes, whatever else the machine is doing. The socket-LB
# client's cgroup is the one rota attaches to.

# shellcheck source=../../lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../lib/netns.sh"	# in_ns, netns_new
# in_cg CGROUP NS CMD...: in netns NS, from a process first moved into CGROUP.
in_cg() {
	local cg=$1 ns=$2; shift 2
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	nsenter --net="/run/netns/$ns" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

new_netns() { netns_new "$1" NETNS; }

# make_cgroups: $CGROOT and a client and a backend cgroup per topology.
make_cgroups() {
	local base=/sys/fs/cgroup/unified tp
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || base=/sys/fs/cgroup
	[[ $(stat -fc %T $base 2>/dev/null) == cgroup2fs ]] || die "no cgroup v2 at /sys/fs/cgroup/unified or /sys/fs/cgroup"
	CGROOT=$base/$ID
	mkdir "$CGROOT" || die "mkdir $CGROOT"
	for tp in floor legacy iptnft nft rtc rsock; do
		mkdir "$CGROOT/$tp-c" "$CGROOT/$tp-b" || die "mkdir $CGROOT/$tp-{c,b}"
	done
}

# remove_cgroups: ends what is left in them, then removes them (children first).
remove_cgroups() {
	local d p _
	[[ -n ${CGROOT:-} && -d $CGROOT ]] || return 0
	for d in "$CGROOT"/*/; do
		[[ -f $d/cgroup.procs ]] || continue
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$d/cgroup.procs"
	done
	for d in "$CGROOT"/*/ "$CGROOT"; do
		[[ -d $d ]] || continue
		for _ in $(seq 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
		[[ -d $d ]] && echo "cleanup: could not remove cgroup $d" >&2
	done
}

# cg_usec TOPOLOGY: CPU time (µs) used so far by its client and backend cgroups.
cg_usec() {
	awk '/^usage_usec/ { s += $2 } END { print s + 0 }' "$CGROOT/$1-c/cpu.stat" "$CGROOT/$1-b/cpu.stat"
}
# busy_usec: CPU time (µs) the whole machine was not idle since boot (every
# process, ours or not; /proc/stat counts in 1/100 s).
busy_usec() { awk '/^cpu / { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 10000; exit }' /proc/stat; }

TEST_EPS=()
for ((j = 0; j < ENDPOINTS; j++)); do TEST_EPS+=("10.244.11.$((2 + j)):8080"); done

declare -A SERVER_PID	# topology -> the PID of what answers on 8080 in its backend netns

# start_server TOPOLOGY CMD...: CMD in the backend netns and cgroup of TOPOLOGY.
start_server() {
	local tp=$1; shift
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	nsenter --net="/run/netns/$ID-$tp-b" sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' \
		"$CGROOT/$tp-b" "$@" >>"$TMP/serve.log" 2>&1 &
	SERVER_PID[$tp]=$!
	PIDS+=($!)
}
stop_server() {
	local p=${SERVER_PID[$1]:-}
	[[ -n $p ]] || return 0
	kill -TERM "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	SERVER_PID[$1]=""
}

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
	start_server "$1" "$TOOL" serve 8080 2
}

wait_serving() {
	local t=$ID-$1 _
	for _ in $(seq 100); do
		in_ns "$t-c" bash -c 'exec 3<>/dev/tcp/10.244.11.2/8080' 2>/dev/null && return 0
		sleep 0.05
	done
	die "the responder in $t-b does not answer"
}

# Dataplane → topology, target host:port, runner.
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
# run_in DATAPLANE CMD...: in the dataplane's client netns and cgroup.
run_in() {
	local dp=$1 tp
	shift
	tp=$(topo_of "$dp")
	in_cg "$CGROOT/$tp-c" "$ID-$tp-c" "$@"
}
