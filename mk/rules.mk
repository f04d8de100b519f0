# Rules. Components declare, before this file is included:
#   BPF_PROGS += name          bpf/name.bpf.c -> build/bpf/name.bpf.o + build/skel/name.skel.h
#   PROGS += name              build/bin/name from $(name_SRCS), linked with librota + $(name_LIBS)
#   TEST_PROGS += name         build/tests/name, same variables as PROGS
# userspace/lib/**/*.c form build/lib/librota.a.

BPF_OBJS  := $(patsubst %,$(BUILD)/bpf/%.bpf.o,$(BPF_PROGS))
SKELS     := $(patsubst %,$(BUILD)/skel/%.skel.h,$(BPF_PROGS))
LIB_SRCS  := $(shell find userspace/lib -name '*.c' | sort)
LIB_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIBROTA   := $(BUILD)/lib/librota.a

ALL_TARGETS += $(BPF_OBJS) $(SKELS) $(LIBROTA) \
	       $(patsubst %,$(BUILD)/bin/%,$(PROGS)) \
	       $(patsubst %,$(BUILD)/tests/%,$(TEST_PROGS))

$(BUILD)/bpf/%.tmp.o: bpf/%.bpf.c $(CONTRACT_HDRS) $(wildcard bpf/lib/*.h)
	@mkdir -p $(@D)
	@echo "  BPF     $<"
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.bpf.o: $(BUILD)/bpf/%.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $<

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@mkdir -p $(@D)
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name rota_$(subst -,_,$*) > $@

# Userspace objects may include any skeleton; -MMD tracks the rest.
$(BUILD)/obj/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBROTA): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

define link_rule
$(2)/$(1): $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRCS)) $$(LIBROTA)
	@mkdir -p $$(@D)
	@echo "  LINK    $$@"
	$$(Q)$$(CC) $$(LDFLAGS) $$(filter %.o,$$^) $$(LIBROTA) $$($(1)_LIBS) $$(LIB_LDLIBS) -o $$@
endef
$(foreach p,$(PROGS),$(eval $(call link_rule,$(p),$(BUILD)/bin)))
$(foreach p,$(TEST_PROGS),$(eval $(call link_rule,$(p),$(BUILD)/tests)))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
