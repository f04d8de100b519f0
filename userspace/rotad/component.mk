PROGS += rotad
rotad_SRCS := $(wildcard userspace/rotad/*.c)
rotad_LIBS := -lmicrohttpd
