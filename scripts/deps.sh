#!/usr/bin/env bash
# Installs what a bare Debian 12 machine lacks to build, test and demo rota.
# Idempotent: checks each package with dpkg first, so a ready machine costs
# one dpkg-query call.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libnl-3-dev libnl-route-3-dev libcjson-dev libyaml-dev libcurl4-openssl-dev
	libmicrohttpd-dev libgnutls28-dev libsqlite3-dev libssl-dev libcmocka-dev
	# tests, bench and demo
	iproute2 iptables nftables ethtool curl busybox-static python3 wrk iperf3
	python3-kubernetes etcd-server etcd-client containerd runc gnuplot-nox
	containernetworking-plugins kmod openssl
)

missing=()
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
for p in "${PKGS[@]}"; do
	grep -qx "$p installed" <<<"$installed" || missing+=("$p")
done

if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: need root to install packages" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# containerd starts its own service on install; rota's tests and demo run
# their own instance, so a packaged one that is not running is fine.

# bpffs: pinned maps live here.
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
	mkdir -p /sys/fs/bpf
	mount -t bpf bpf /sys/fs/bpf
fi
