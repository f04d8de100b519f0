# cmocka unit tests of rotad's object parsing (userspace/rotad/model.c) and
# the watch-stream JSON splitter (userspace/lib/k8s/json_stream.c, in
# librota), no root, no BPF; and of the reconciler on a real datapath
# (root). End-to-end tests are tests/rotad/*_test.sh.
TEST_PROGS += test_rotad_model test_json_stream test_rotad_reconcile
test_rotad_model_SRCS := tests/rotad/test_rotad_model.c userspace/rotad/model.c
test_rotad_model_LIBS := -lcmocka
test_json_stream_SRCS := tests/rotad/test_json_stream.c
test_json_stream_LIBS := -lcmocka
test_rotad_reconcile_SRCS := tests/rotad/test_reconcile.c userspace/rotad/reconcile.c \
	userspace/rotad/cache.c userspace/rotad/model.c userspace/rotad/keyed_list.c
test_rotad_reconcile_LIBS := -lcmocka
$(BUILD)/obj/tests/rotad/%.o: CPPFLAGS += -Iuserspace/rotad
