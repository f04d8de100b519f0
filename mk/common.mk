# Shared build settings: compilers, flags and the libraries rota links.
CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
AR      ?= ar

ifeq ($(V),1)
Q :=
else
Q := @
endif

.DELETE_ON_ERROR:

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	    -Wno-missing-field-initializers -Wno-format-truncation -fno-strict-aliasing
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Iuserspace/lib -I$(BUILD)/skel -MMD -MP
LDFLAGS  ?=

# clang -target bpf against the committed vmlinux.h (CO-RE).
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
	      -Iinclude -Ivmlinux -Ibpf

# Libraries librota needs; components add their own in <name>_LIBS.
LIB_LDLIBS := -lbpf -lelf -lz -lcjson -lcurl -lyaml -lcrypto -lpthread

# Every header the kernel/user contract lives in: a change rebuilds both sides.
CONTRACT_HDRS := $(wildcard include/rota/*.h)
