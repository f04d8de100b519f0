# rota-cni: the CNI plugin that wires pods into the datapath (see docs/cni.md).
PROGS += rota-cni
rota-cni_SRCS := $(wildcard cni/*.c)
rota-cni_LIBS := -lnl-route-3 -lnl-3
# CPPFLAGS is global (mk/common.mk); libnl's headers live in their own dir.
CPPFLAGS += $(shell pkg-config --cflags libnl-route-3.0)

# The Node's podCIDR through a kubeconfig, in its own binary so rota-cni
# does not load libcurl on every ADD.
PROGS += rota-cni-podcidr
rota-cni-podcidr_SRCS := cni/podcidr/main.c
