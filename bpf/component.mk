# BPF objects; each also yields build/skel/<name>.skel.h.
BPF_PROGS += sock pod bench
