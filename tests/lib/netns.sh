# shellcheck shell=bash
# Network namespaces for the test suites and benchmarks: one way to enter
# one and one way to make one. Each suite keeps its own list of the
# namespaces it made, for its cleanup, and names that list here. Needs the
# suite's die().

# in_ns NS CMD...: CMD inside netns NS. nsenter, not `ip netns exec`,
# which remounts /sys and so hides /sys/fs/bpf.
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# netns_new NAME LIST: makes NAME (lo up, IPv6 off) and appends it to the
# array named LIST as soon as it exists, so cleanup finds it whatever fails
# next.
netns_new() {
	local -n netns_list=$2
	ip netns add "$1" || die "ip netns add $1"
	netns_list+=("$1")
	ip -n "$1" link set lo up
	in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
}
