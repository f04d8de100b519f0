# rota-controller: EndpointSlices, Node Pod CIDRs and LoadBalancer IPs
# (see docs/controller.md).
PROGS += rota-controller
rota-controller_SRCS := $(wildcard userspace/controller/*.c)
rota-controller_LIBS :=
