# rota: top-level build. Everything lands in build/; components list their
# targets in <dir>/component.mk and the rules live in mk/common.mk.
BUILD ?= build

.PHONY: all deps test bench bench-datapath bench-kube-proxy bench-control-plane bench-full demo install clean
all:

include mk/common.mk
include $(sort $(wildcard bpf/component.mk userspace/*/component.mk cni/component.mk tests/*/component.mk))
include mk/rules.mk

all: $(ALL_TARGETS)

# Installs what a bare machine lacks (near-instant when all is present).
deps:
	$(Q)scripts/deps.sh

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run.sh

# make bench: every benchmark, quick form: per-packet cost of the datapath,
# rota against kube-proxy's iptables and nftables layouts on the same
# topology (quick grid), and the control plane at 10,000 services
# (rota-apiserver writes/watch, rotad sync and endpoint-change latency).
# Each also runs alone; bench-full adds 50k services and more runs.
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/run.sh
	$(Q)tests/bench/compare/run.sh
	$(Q)tests/bench/control_plane/run.sh

bench-datapath: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/run.sh

bench-kube-proxy: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/compare/run.sh

bench-control-plane: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/control_plane/run.sh

bench-full: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/run.sh
	$(Q)tests/bench/compare/run.sh --full
	$(Q)tests/bench/control_plane/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

# rota-cni into /opt/cni/bin and its conflist into /etc/cni/net.d; needs
# POD_CIDR=… or KUBECONFIG=… (see cni/install.sh).
install: all
	$(Q)cni/install.sh

clean:
	rm -rf $(BUILD)
