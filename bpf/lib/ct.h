/* Connection tracking for the tc path: one LRU entry per direction, so the
 * backend of an established flow survives any change of the backend set.
 * Expiry is lazy here (an expired entry reads as absent) and swept by
 * userspace (`rota conntrack gc`). */
#pragma once
#include "lib/maps.h"
#include "lib/parse.h"

/* Seconds an entry in this state lives after its last packet. */
static __always_inline __u64 ct_lifetime_ns(__u8 proto, __u8 state)
{
	if (proto != IPPROTO_TCP)
		return (__u64)ct_udp_s * NSEC_PER_SEC;
	if (state == ROTA_CT_ESTABLISHED)
		return (__u64)ct_tcp_established_s * NSEC_PER_SEC;
	if (state == ROTA_CT_CLOSING)
		return (__u64)ct_tcp_close_s * NSEC_PER_SEC;
	return (__u64)ct_tcp_syn_s * NSEC_PER_SEC;
}

static __always_inline struct rota_ct_entry *ct_lookup(const struct rota_ct_key *key, __u64 now)
{
	struct rota_ct_entry *ct = bpf_map_lookup_elem(&rota_ct4, key);

	if (ct && now - ct->last_seen_ns > ct_lifetime_ns(key->proto, ct->state))
		return NULL;
	return ct;
}

/* Accounts one packet. Counters are plain adds: a rare lost increment
 * beats an atomic per packet. */
static __always_inline void ct_account(struct rota_ct_entry *ct, const struct pkt4 *p, __u64 now)
{
	ct->packets++;
	ct->bytes += p->len;
	ct->last_seen_ns = now;
}

/* A FIN or RST seen in one direction of a TCP flow. A flow is closing (and
 * ages out in ct_tcp_close_s) after a RST, or once both directions sent a
 * FIN: a half-closed connection (one FIN, data still flowing the other
 * way, for as long as it likes) keeps the established lifetime. */
static __always_inline void ct_close_mark(struct rota_ct_entry *ct, bool rst, bool own, __u64 now)
{
	if (ct->state == ROTA_CT_CLOSING)
		return;
	ct->flags |= own ? ROTA_CT_F_FIN : ROTA_CT_F_PEER_FIN;
	if (rst || (ct->flags & (ROTA_CT_F_FIN | ROTA_CT_F_PEER_FIN)) ==
		   (ROTA_CT_F_FIN | ROTA_CT_F_PEER_FIN)) {
		ct->state = ROTA_CT_CLOSING;
		ct->last_seen_ns = now;
	}
}

static __always_inline void ct_key_fill(struct rota_ct_key *k, __be32 saddr, __be32 daddr,
					__be16 sport, __be16 dport, __u8 proto, __u8 dir)
{
	k->saddr = saddr;
	k->daddr = daddr;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->dir = dir;
	k->pad = 0;
}

/* Follows TCP's FIN/RST in both entries of the flow: ct is the entry of
 * the packet's direction, the other is found by its tuple. */
static __always_inline void ct_track_close(struct rota_ct_entry *ct, const struct pkt4 *p,
					   __be32 saddr, __be32 daddr, __be16 sport, __be16 dport,
					   __u8 other_dir, __u64 now)
{
	bool rst = p->tcp_flags & TCP_FLAG_RST;
	struct rota_ct_key key;
	struct rota_ct_entry *other;

	if (p->proto != IPPROTO_TCP || !(p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)))
		return;
	ct_close_mark(ct, rst, true, now);
	ct_key_fill(&key, saddr, daddr, sport, dport, p->proto, other_dir);
	other = bpf_map_lookup_elem(&rota_ct4, &key);
	if (other)
		ct_close_mark(other, rst, false, now);
}

/* A SYN on the tuple of a flow this side already closed starts a new flow. */
static __always_inline bool ct_syn_reuses(const struct rota_ct_entry *ct, const struct pkt4 *p,
					  __u8 syn_flags)
{
	return p->proto == IPPROTO_TCP &&
	       (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == syn_flags &&
	       (ct->state == ROTA_CT_CLOSING || (ct->flags & ROTA_CT_F_FIN));
}

/* Creates both directions of a new flow. fwd_key is the tuple the client
 * sent; the reply tuple is the backend answering src (the client, or the
 * hairpin address). Returns 0 or a negative error. */
static __always_inline int ct_create(const struct rota_ct_key *fwd_key, const struct pkt4 *p,
				     const struct rota_backend *b, __u32 backend_id, __u32 svc_id,
				     __be32 reply_daddr, __u8 flags, __u64 now)
{
	struct rota_ct_entry fwd = {
		.created_ns = now, .last_seen_ns = now,
		.nat_addr = b->addr, .nat_port = b->port,
		.state = ROTA_CT_NEW, .flags = flags,
		.backend_id = backend_id, .svc_id = svc_id,
		.client_addr = fwd_key->saddr,
	};
	struct rota_ct_entry rev = fwd;
	struct rota_ct_key rkey;

	ct_account(&fwd, p, now);
	rev.nat_addr = fwd_key->daddr;
	rev.nat_port = fwd_key->dport;
	ct_key_fill(&rkey, b->addr, reply_daddr, b->port, fwd_key->sport, fwd_key->proto, ROTA_CT_REPLY);
	if (bpf_map_update_elem(&rota_ct4, &rkey, &rev, BPF_ANY))
		return -1;
	return bpf_map_update_elem(&rota_ct4, fwd_key, &fwd, BPF_ANY);
}

/* Deletes both directions of a flow, given either one: the entry's own
 * fields name the other direction's tuple. */
static __always_inline void ct_delete_flow(const struct rota_ct_key *key,
					   const struct rota_ct_entry *ct)
{
	struct rota_ct_key other;

	if (key->dir == ROTA_CT_FWD)
		ct_key_fill(&other, ct->nat_addr,
			    ct->flags & ROTA_CT_F_HAIRPIN ? hairpin_addr : key->saddr,
			    ct->nat_port, key->sport, key->proto, ROTA_CT_REPLY);
	else
		ct_key_fill(&other, ct->client_addr, ct->nat_addr, key->dport, ct->nat_port,
			    key->proto, ROTA_CT_FWD);
	bpf_map_delete_elem(&rota_ct4, &other);
	bpf_map_delete_elem(&rota_ct4, key);
}
