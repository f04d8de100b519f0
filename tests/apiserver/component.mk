# cmocka unit tests of rota-apiserver's parsers (land in build/tests/).
TEST_PROGS += test_apiserver_patch test_apiserver_parsers
test_apiserver_patch_SRCS := tests/apiserver/test_patch.c userspace/apiserver/patch.c \
	userspace/apiserver/util.c
test_apiserver_patch_LIBS := -lcmocka -lcjson
test_apiserver_parsers_SRCS := tests/apiserver/test_parsers.c userspace/apiserver/selector.c \
	userspace/apiserver/proto.c userspace/apiserver/status.c userspace/apiserver/util.c
test_apiserver_parsers_LIBS := -lcmocka -lcjson
$(BUILD)/obj/tests/apiserver/%.o: CFLAGS += -Wno-format-truncation
TEST_PROGS += test_apiserver_bodies
test_apiserver_bodies_SRCS := tests/apiserver/test_bodies.c userspace/apiserver/jsonbody.c \
	userspace/apiserver/yamlbody.c userspace/apiserver/util.c
test_apiserver_bodies_LIBS := -lcmocka -lcjson -lyaml
