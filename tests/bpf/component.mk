TEST_PROGS += test_bpf_datapath
test_bpf_datapath_SRCS := $(wildcard tests/bpf/*.c)
test_bpf_datapath_LIBS := -lcmocka
