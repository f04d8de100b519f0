# rota-cni: the CNI plugin that wires pods into the datapath (see docs/cni.md).
PROGS += rota-cni
rota-cni_SRCS := $(wildcard cni/*.c)
# libnl and libbpf (with its libelf and zlib) linked in: the runtime starts
# rota-cni once per pod, and resolving those shared libraries' symbols and
# running their constructors was a third of an ADD's CPU time. It also
# means a node needs only glibc and libcjson to run it. --as-needed (the
# default) then drops the shared -lbpf -lelf -lz of LIB_LDLIBS.
rota-cni_LIBS := -Wl,-Bstatic -lnl-route-3 -lnl-3 -lbpf -lelf -lz -Wl,-Bdynamic
# CPPFLAGS is global (mk/common.mk); libnl's headers live in their own dir.
CPPFLAGS += $(shell pkg-config --cflags libnl-route-3.0)

# The Node's podCIDR through a kubeconfig, in its own binary so rota-cni
# does not load libcurl on every ADD.
PROGS += rota-cni-podcidr
rota-cni-podcidr_SRCS := cni/podcidr/main.c
