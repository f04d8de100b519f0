// SPDX-License-Identifier: GPL-2.0
/* Socket LB: cgroup v2 hooks that translate a ClusterIP when a socket
 * connects or sends, so pods and host processes talk to a backend with no
 * per-packet NAT; recvmsg/getpeername show the ClusterIP again. */
#include "lib/lb.h"
#include "lib/hash.h"

/* Remembers which frontend a socket reached through this backend, for
 * recvmsg()/getpeername(). */
static __always_inline void sock_rev_record(struct bpf_sock_addr *ctx, __u64 cookie,
					    const struct rota_backend *b, __be32 vip,
					    __be16 vport, __u32 svc_id)
{
	struct rota_sk_rev_key key = { .cookie = cookie, .addr = b->addr, .port = b->port };
	struct rota_sk_rev_val val = { .addr = vip, .port = vport, .svc_id = svc_id };

	bpf_map_update_elem(&rota_sk_rev4, &key, &val, BPF_ANY);
}

/* Unconnected UDP: keep a socket's datagrams to one frontend on one backend
 * while it stays usable. */
static __always_inline struct rota_backend *sock_sticky_get(__u64 cookie, __be32 vip, __be16 vport,
							   __u32 svc_id, __u32 *backend_id)
{
	struct rota_sk_aff_key key = { .cookie = cookie, .addr = vip, .port = vport };
	struct rota_sk_aff_val *v = bpf_map_lookup_elem(&rota_sk_aff4, &key);
	struct rota_backend *b;

	if (!v || v->svc_id != svc_id)
		return NULL;
	b = backend_active(v->backend_id, svc_id);
	if (b)
		*backend_id = v->backend_id;
	return b;
}

static __always_inline void sock_sticky_set(__u64 cookie, __be32 vip, __be16 vport,
					    __u32 svc_id, __u32 backend_id)
{
	struct rota_sk_aff_key key = { .cookie = cookie, .addr = vip, .port = vport };
	struct rota_sk_aff_val v = { .backend_id = backend_id, .svc_id = svc_id };

	bpf_map_update_elem(&rota_sk_aff4, &key, &v, BPF_ANY);
}

/* Returns 0 (not a service, or translated), or -ECONNREFUSED. */
static __always_inline int sock4_xlate(struct bpf_sock_addr *ctx, bool sticky)
{
	__be32 vip = ctx->user_ip4;
	__be16 vport = (__be16)ctx->user_port;
	struct rota_svc_entry *svc;
	struct rota_backend *b = NULL;
	__u32 backend_id = 0;
	__u64 cookie;
	__u8 proto;

	if (ctx->type == SOCK_STREAM)
		proto = IPPROTO_TCP;
	else if (ctx->type == SOCK_DGRAM)
		proto = IPPROTO_UDP;
	else
		return 0;
	if (ctx->protocol && ctx->protocol != proto)
		return 0;

	svc = svc_lookup(vip, vport, proto);
	if (!svc)
		return 0;

	cookie = bpf_get_socket_cookie(ctx);
	if (sticky)
		b = sock_sticky_get(cookie, vip, vport, svc->svc_id, &backend_id);
	if (!b)
		b = lb_select(vip, vport, proto, svc, jhash_3words(cookie, cookie >> 32, vip, ROTA_FLOW_SEED),
			      bpf_get_netns_cookie(ctx), ROTA_AFF_NETNS, &backend_id);
	if (!b) {
		stat_inc(ROTA_STAT_NO_BACKEND, 0);
		return -ECONNREFUSED;
	}
	if (sticky)
		sock_sticky_set(cookie, vip, vport, svc->svc_id, backend_id);
	sock_rev_record(ctx, cookie, b, vip, vport, svc->svc_id);
	ctx->user_ip4 = b->addr;
	ctx->user_port = b->port;
	stat_inc(ROTA_STAT_SOCK_XLATE, 0);
	return 0;
}

/* Shows the frontend instead of the backend a socket really talks to. */
static __always_inline void sock4_rev(struct bpf_sock_addr *ctx)
{
	struct rota_sk_rev_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	struct rota_sk_rev_val *v = bpf_map_lookup_elem(&rota_sk_rev4, &key);

	if (!v)
		return;
	ctx->user_ip4 = v->addr;
	ctx->user_port = v->port;
	stat_inc(ROTA_STAT_SOCK_REV, 0);
}

SEC("cgroup/connect4")
int rota_sock_connect4(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate(ctx, false);

	if (err) {
		/* kube-proxy rejects an endpoint-less service; so does connect(). */
		bpf_set_retval(err);
		return 0;
	}
	return 1;
}

SEC("cgroup/sendmsg4")
int rota_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate(ctx, true);

	if (err) {
		bpf_set_retval(err);
		return 0;
	}
	return 1;
}

SEC("cgroup/recvmsg4")
int rota_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock4_rev(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int rota_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	sock4_rev(ctx);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
