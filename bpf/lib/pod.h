/* The tc path on a pod's host-side veth: from_pod (packets the pod sends:
 * service lookup, backend choice, DNAT, conntrack) and to_pod (packets the
 * pod receives: reverse NAT of replies). Shared by pod.bpf.c and the
 * benchmark wrapper. Handlers return TC_ACT_* verdicts. */
#pragma once
#include "lib/lb.h"
#include "lib/hash.h"
#include "lib/ct.h"
#include "lib/nat.h"
#include "lib/icmp.h"

/* A later fragment carries no ports: it follows its first fragment's
 * translation, or passes untouched if that was never seen. */
static __always_inline int frag_follow(struct __sk_buff *skb, const struct pkt4 *p, __u32 addr_off)
{
	/* from_pod sees forward fragments, and hairpinned replies (to the
	 * hairpin address); to_pod sees replies. */
	struct rota_frag_key key = {
		.saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id, .proto = p->proto,
		.dir = addr_off == IP_DADDR_OFF && p->daddr != hairpin_addr ? ROTA_CT_FWD : ROTA_CT_REPLY,
	};
	struct rota_frag_val *v = bpf_map_lookup_elem(&rota_frag4, &key);
	__be32 old = addr_off == IP_DADDR_OFF ? p->daddr : p->saddr;

	if (!v) {
		stat_inc(ROTA_STAT_PASS_FRAGMENT, p->len);
		return TC_ACT_OK;
	}
	if (addr_off == IP_DADDR_OFF && p->daddr == hairpin_addr) {
		/* A hairpinned pod's reply: from the frontend, back into the pod
		 * (its client is itself), as lb_reply(hairpin) did the first. */
		if (nat_addr(skb, p, IP_SADDR_OFF, p->saddr, v->nat_addr, false) ||
		    nat_addr(skb, p, IP_DADDR_OFF, p->daddr, p->saddr, false) || eth_swap(skb))
			goto err;
		stat_inc(ROTA_STAT_HAIRPIN, p->len);
		return bpf_redirect(skb->ifindex, 0);
	}
	if (nat_addr(skb, p, addr_off, old, v->nat_addr, false))
		goto err;
	if (addr_off == IP_DADDR_OFF && v->nat_addr == p->saddr) {
		/* Hairpin: the pod is its own backend, as lb_forward() did the first. */
		if (nat_addr(skb, p, IP_SADDR_OFF, p->saddr, hairpin_addr, false) || eth_swap(skb))
			goto err;
		stat_inc(ROTA_STAT_HAIRPIN, p->len);
		return bpf_redirect(skb->ifindex, 0);
	}
	stat_inc(addr_off == IP_DADDR_OFF ? ROTA_STAT_XLATE_FWD : ROTA_STAT_XLATE_REPLY, p->len);
	return TC_ACT_OK;
err:
	stat_inc(ROTA_STAT_DROP_ERROR, p->len);
	return TC_ACT_SHOT;
}

static __always_inline void frag_record(const struct pkt4 *p, __be32 nat_addr, __u8 dir)
{
	struct rota_frag_key key = {
		.saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id, .proto = p->proto, .dir = dir,
	};
	struct rota_frag_val v = { .nat_addr = nat_addr, .sport = p->sport, .dport = p->dport };

	bpf_map_update_elem(&rota_frag4, &key, &v, BPF_ANY);
}

/* DNAT to the flow's backend (and SNAT to the hairpin address when the pod
 * reached itself): the rewrite every forward packet of a flow gets. */
static __always_inline int fwd_rewrite(struct __sk_buff *skb, const struct pkt4 *p,
				       __be32 baddr, __be16 bport, __u8 flags)
{
	if (p->frag_first)
		frag_record(p, baddr, ROTA_CT_FWD);
	if (nat_tuple(skb, p, true, baddr, bport))
		goto err;
	if (flags & ROTA_CT_F_HAIRPIN) {
		/* The pod is its own backend: it must see another source, and
		 * the packet goes straight back into it. */
		if (nat_addr(skb, p, IP_SADDR_OFF, p->saddr, hairpin_addr, true) || eth_swap(skb))
			goto err;
		stat_inc(ROTA_STAT_HAIRPIN, p->len);
		return bpf_redirect(skb->ifindex, 0);
	}
	stat_inc(ROTA_STAT_XLATE_FWD, p->len);
	return TC_ACT_OK;
err:
	stat_inc(ROTA_STAT_DROP_ERROR, p->len);
	return TC_ACT_SHOT;
}

/* The flow's conntrack entry, if it still decides where the packet goes.
 * Looked up before the service: an established flow keeps its backend
 * even after its Service is deleted, as with netfilter conntrack. Returns
 * NULL for a new flow: none yet, a SYN reusing a closed flow's tuple, or a
 * UDP flow whose backend was removed (kube-proxy flushes those, since UDP
 * has no close that would ever move the client on). */
static __always_inline struct rota_ct_entry *fwd_ct(const struct rota_ct_key *key,
						    const struct pkt4 *p, __u64 now)
{
	struct rota_ct_entry *ct = ct_lookup(key, now);
	struct rota_backend *b;

	if (!ct)
		return NULL;
	if (p->proto == IPPROTO_TCP)
		return ct_syn_reuses(ct, p, TCP_FLAG_SYN) ? NULL : ct;
	b = bpf_map_lookup_elem(&rota_backends4, &ct->backend_id);
	if (b && b->svc_id == ct->svc_id && b->addr == ct->nat_addr && b->port == ct->nat_port)
		return ct;
	ct_delete_flow(key, ct);
	return NULL;
}

/* Client → frontend, established: the backend conntrack recorded. */
static __always_inline int lb_established(struct __sk_buff *skb, const struct pkt4 *p,
					  struct rota_ct_entry *ct, __u64 now)
{
	ct_account(ct, p, now);
	ct_track_close(ct, p, ct->nat_addr, ct->flags & ROTA_CT_F_HAIRPIN ? hairpin_addr : p->saddr,
		       ct->nat_port, p->sport, ROTA_CT_REPLY, now);
	stat_inc(ROTA_STAT_CT_HIT, p->len);
	return fwd_rewrite(skb, p, ct->nat_addr, ct->nat_port, ct->flags);
}

/* Client → frontend, new flow: choose a backend, record both directions. */
static __always_inline int lb_new(struct __sk_buff *skb, const struct pkt4 *p,
				  const struct rota_ct_key *key, const struct rota_svc_entry *svc,
				  __u64 now)
{
	struct rota_backend *b;
	__u32 backend_id;
	__u8 flags;

	b = lb_select(p->daddr, p->dport, p->proto, svc,
		      flow_hash4(p->saddr, p->daddr, p->sport, p->dport, p->proto),
		      p->saddr, ROTA_AFF_CLIENT_ADDR, &backend_id);
	if (!b) {
		stat_inc(ROTA_STAT_NO_BACKEND, p->len);
		return icmp_reject(skb, p);
	}
	flags = b->addr == p->saddr ? ROTA_CT_F_HAIRPIN : 0;
	if (ct_create(key, p, b, backend_id, svc->svc_id, flags ? hairpin_addr : p->saddr, flags, now)) {
		stat_inc(ROTA_STAT_DROP_ERROR, p->len);
		return TC_ACT_SHOT;
	}
	stat_inc(ROTA_STAT_CT_NEW, p->len);
	return fwd_rewrite(skb, p, b->addr, b->port, flags);
}

/* Not for a frontend: the pod talks to an address directly (a pod IP, or a
 * backend socket LB already chose). If that tuple is the reply tuple of an
 * earlier translated flow from the same source port, the backend cannot
 * tell the two apart: the newer flow wins, or to_pod would rewrite its
 * replies to come from the old frontend. Checked on what can start a flow
 * (a TCP SYN, any UDP packet), so TCP's established traffic pays nothing. */
static __always_inline int pass_direct(const struct pkt4 *p)
{
	if (p->proto == IPPROTO_UDP ||
	    (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
		struct rota_ct_key rkey;
		struct rota_ct_entry *rev;

		ct_key_fill(&rkey, p->daddr, p->saddr, p->dport, p->sport, p->proto, ROTA_CT_REPLY);
		rev = bpf_map_lookup_elem(&rota_ct4, &rkey);
		if (rev && rev->client_addr == p->saddr)
			ct_delete_flow(&rkey, rev);
	}
	stat_inc(ROTA_STAT_PASS_NOT_SERVICE, p->len);
	return TC_ACT_OK;
}

/* Backend → client: restore the frontend as the source. hairpin: the
 * reply was sent to the hairpin address and goes back into the same pod. */
static __always_inline int lb_reply(struct __sk_buff *skb, const struct pkt4 *p, bool hairpin)
{
	__u64 now = rota_now_ns();
	struct rota_ct_key key;
	struct rota_ct_entry *ct;
	__be32 client;

	ct_key_fill(&key, p->saddr, p->daddr, p->sport, p->dport, p->proto, ROTA_CT_REPLY);
	ct = ct_lookup(&key, now);
	if (!ct) {
		stat_inc(ROTA_STAT_PASS_NOT_SERVICE, p->len);
		return TC_ACT_OK;
	}
	/* A SYN-ACK on the reply tuple of a closed flow answers a new
	 * connection reusing the client's port straight to this backend (pod
	 * IP or socket LB): not ours to rewrite. */
	if (ct_syn_reuses(ct, p, TCP_FLAG_SYN | TCP_FLAG_ACK)) {
		bpf_map_delete_elem(&rota_ct4, &key);
		stat_inc(ROTA_STAT_PASS_NOT_SERVICE, p->len);
		return TC_ACT_OK;
	}
	ct_account(ct, p, now);
	client = ct->client_addr;
	ct_track_close(ct, p, client, ct->nat_addr, p->dport, ct->nat_port, ROTA_CT_FWD, now);
	if (!(ct->flags & ROTA_CT_F_SEEN_REPLY)) {
		/* First answer: the flow is established in both directions. */
		struct rota_ct_key fkey;
		struct rota_ct_entry *fwd;

		ct->flags |= ROTA_CT_F_SEEN_REPLY;
		if (ct->state == ROTA_CT_NEW)
			ct->state = ROTA_CT_ESTABLISHED;
		ct_key_fill(&fkey, client, ct->nat_addr, p->dport, ct->nat_port, p->proto, ROTA_CT_FWD);
		fwd = bpf_map_lookup_elem(&rota_ct4, &fkey);
		if (fwd && fwd->state == ROTA_CT_NEW)
			fwd->state = ROTA_CT_ESTABLISHED;
	}
	if (p->frag_first)
		frag_record(p, ct->nat_addr, ROTA_CT_REPLY);
	if (nat_tuple(skb, p, false, ct->nat_addr, ct->nat_port))
		goto err;
	if (hairpin) {
		if (nat_addr(skb, p, IP_DADDR_OFF, p->daddr, client, true) || eth_swap(skb))
			goto err;
		stat_inc(ROTA_STAT_HAIRPIN, p->len);
		return bpf_redirect(skb->ifindex, 0);
	}
	stat_inc(ROTA_STAT_XLATE_REPLY, p->len);
	return TC_ACT_OK;
err:
	stat_inc(ROTA_STAT_DROP_ERROR, p->len);
	return TC_ACT_SHOT;
}

static __always_inline int icmp_path(struct __sk_buff *skb, const struct pkt4 *p, bool to_pod)
{
	int ret = icmp_error_xlate(skb, p, to_pod);

	if (ret < 0) {
		stat_inc(ROTA_STAT_DROP_ERROR, p->len);
		return TC_ACT_SHOT;
	}
	stat_inc(ret ? ROTA_STAT_XLATE_ICMP : ROTA_STAT_PASS_NOT_SERVICE, p->len);
	return TC_ACT_OK;
}

/* Common front of both directions: parse, count what is not ours. Returns
 * 1 when the packet is TCP/UDP/ICMP worth looking at. */
static __always_inline int pod_parse(struct __sk_buff *skb, struct pkt4 *p)
{
	int ret = parse_ipv4(skb, p);

	if (ret == PARSE_NOT_IP) {
		stat_inc(ROTA_STAT_PASS_NOT_IP, skb->len);
		return 0;
	}
	if (ret) {
		stat_inc(ROTA_STAT_PASS_MALFORMED, skb->len);
		return 0;
	}
	return 1;
}

static __always_inline int from_pod(struct __sk_buff *skb)
{
	struct rota_svc_entry *svc;
	struct rota_ct_entry *ct;
	struct rota_ct_key key;
	struct pkt4 p = {};
	__u64 now;

	if (!pod_parse(skb, &p))
		return TC_ACT_OK;
	if (p.frag_later)
		return frag_follow(skb, &p, IP_DADDR_OFF);
	if (p.proto == IPPROTO_ICMP)
		return icmp_path(skb, &p, false);
	if (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP) {
		stat_inc(ROTA_STAT_PASS_NOT_SERVICE, p.len);
		return TC_ACT_OK;
	}
	if (p.daddr == hairpin_addr)
		return lb_reply(skb, &p, true);
	now = rota_now_ns();
	ct_key_fill(&key, p.saddr, p.daddr, p.sport, p.dport, p.proto, ROTA_CT_FWD);
	ct = fwd_ct(&key, &p, now);
	if (ct)
		return lb_established(skb, &p, ct, now);
	svc = svc_lookup(p.daddr, p.dport, p.proto);
	if (!svc)
		return pass_direct(&p);
	return lb_new(skb, &p, &key, svc, now);
}

static __always_inline int to_pod(struct __sk_buff *skb)
{
	struct pkt4 p = {};

	if (!pod_parse(skb, &p))
		return TC_ACT_OK;
	if (p.frag_later)
		return frag_follow(skb, &p, IP_SADDR_OFF);
	if (p.proto == IPPROTO_ICMP)
		return icmp_path(skb, &p, true);
	if (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP) {
		stat_inc(ROTA_STAT_PASS_NOT_SERVICE, p.len);
		return TC_ACT_OK;
	}
	return lb_reply(skb, &p, false);
}
