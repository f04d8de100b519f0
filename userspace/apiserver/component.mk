# rota-apiserver: the Kubernetes API subset (see docs/apiserver.md).
PROGS += rota-apiserver
rota-apiserver_SRCS := $(wildcard userspace/apiserver/*.c)
rota-apiserver_LIBS := -lmicrohttpd -lgnutls -lsqlite3 -lssl -lcrypto -lcurl -lcjson -lyaml -lpthread
# Keys and paths are bounded (names <= 253, prefix <= 100) and checked where
# it matters; gcc's worst-case truncation analysis does not know that.
$(BUILD)/obj/userspace/apiserver/%.o: CFLAGS += -Wno-format-truncation
