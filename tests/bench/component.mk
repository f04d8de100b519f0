# Datapath benchmark: `make bench` runs it fully (tests/bench/run.sh); with no
# arguments it is a quick self-check, which is how tests/run.sh runs it.
TEST_PROGS += bench_datapath
bench_datapath_SRCS := tests/bench/bench_datapath.c
