# Pure-C unit tests (no BPF, no root).
TEST_PROGS += test_maglev test_encoding
test_maglev_SRCS := tests/unit/test_maglev.c
test_maglev_LIBS := -lcmocka
test_encoding_SRCS := tests/unit/test_encoding.c
test_encoding_LIBS := -lcmocka
