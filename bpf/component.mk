# BPF objects; each also yields build/skel/<name>.skel.h.
BPF_PROGS += sock pod pod_compat bench
# pod_compat.bpf.c is pod.bpf.c built for kernels before 6.2.
$(BUILD)/bpf/pod_compat.tmp.o: bpf/pod.bpf.c
