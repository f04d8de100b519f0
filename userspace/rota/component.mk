PROGS += rota
rota_SRCS := $(wildcard userspace/rota/*.c)
