/* The map contract: names, keys and values of every rota map, shared by the
 * BPF programs, librota, the rota CLI and (through BTF) bpftool. Only
 * fixed-width types; byte order in the type; every padding byte named. */
#pragma once
#include "rota/types.h"

/* Bumped when any struct below changes layout; stored in rota_config. */
#define ROTA_ABI_VERSION 2

/* Pinned names under the bpffs directory (default /sys/fs/bpf/rota). */
#define ROTA_DEFAULT_BPFFS_DIR "/sys/fs/bpf/rota"
#define ROTA_MAP_SVC4        "rota_svc4"
#define ROTA_MAP_BACKENDS4   "rota_backends4"
#define ROTA_MAP_MAGLEV4     "rota_maglev4"
#define ROTA_MAP_CT4         "rota_ct4"
#define ROTA_MAP_AFFINITY4   "rota_affinity4"
#define ROTA_MAP_SK_REV4     "rota_sk_rev4"
#define ROTA_MAP_SK_AFF4     "rota_sk_aff4"
#define ROTA_MAP_FRAG4       "rota_frag4"
#define ROTA_MAP_ENDPOINTS4  "rota_endpoints4"
#define ROTA_MAP_CONFIG      "rota_config"
#define ROTA_MAP_STATS       "rota_stats"

/* Default capacities; `rota load --services/--backends/--conntrack` override. */
#define ROTA_DEFAULT_SVC_ENTRIES      262144	/* service slots, masters included */
#define ROTA_DEFAULT_BACKEND_ENTRIES  262144
#define ROTA_DEFAULT_MAGLEV_ENTRIES   65536	/* Maglev tables (one per Maglev service) */
#define ROTA_DEFAULT_CT_ENTRIES       524288
#define ROTA_DEFAULT_AFFINITY_ENTRIES 65536
#define ROTA_DEFAULT_SK_ENTRIES       131072
#define ROTA_FRAG_ENTRIES             8192
#define ROTA_ENDPOINT_ENTRIES         65536

/* Maglev table sizes. Each service's table has its own size M: the smallest
 * prime of a fixed ladder (251, 509, 1021 … 131071; userspace/lib/maglev.c)
 * that is at least 100 × its active backends, so shares stay within 1 % of
 * even. rota_config.maglev_m caps M (`rota load --maglev-size`, default the
 * largest); a service that would need more is refused. */
#define ROTA_MAGLEV_MIN_M 251
#define ROTA_MAGLEV_MAX_M 131071

/* A Maglev table is an array of chunks of ROTA_MAGLEV_CHUNK backend ids:
 * entry j is backend_id[j % CHUNK] of element j / CHUNK. Whole chunks, not
 * one id per element: the kernel rounds array values up to 8 bytes and
 * copies element by element, so single ids would cost twice the memory and
 * several times the time to fill. Ids past M in the last chunk are 0 (no
 * backend). Every ladder prime lies just below a power of two, so that
 * padding is at most 19 ids. */
#define ROTA_MAGLEV_CHUNK 64

/* Address a pod sees as the source of its own hairpinned connections. */
#define ROTA_HAIRPIN_ADDR_DEFAULT 0xA9FE2A01u	/* 169.254.42.1, host order */

/* Frontend kinds (rota_svc_entry.type). NodePort and the external kinds use
 * the same maps with their own addresses; only ClusterIP is served today. */
enum rota_svc_type {
	ROTA_SVC_CLUSTER_IP   = 0,
	ROTA_SVC_NODE_PORT    = 1,
	ROTA_SVC_EXTERNAL_IP  = 2,
	ROTA_SVC_LOADBALANCER = 3,
};

/* Traffic-policy scope of a frontend (rota_svc_key.scope): the external
 * scope holds all backends; the internal one only node-local ones (for
 * internalTrafficPolicy/externalTrafficPolicy=Local, coming with NodePort). */
enum rota_svc_scope {
	ROTA_SCOPE_ALL   = 0,
	ROTA_SCOPE_LOCAL = 1,
};

/* rota_svc_entry.flags */
#define ROTA_SVC_F_MAGLEV   (1u << 0)	/* pick through the service's Maglev table */
#define ROTA_SVC_F_AFFINITY (1u << 1)	/* ClientIP session affinity */

/* Key of rota_svc4. slot 0 is the service's master entry; slots
 * 1..count hold active backends, count+1..count+terminating the
 * terminating ones (kept so state can be read back, never chosen). */
struct rota_svc_key {
	__be32 addr;
	__be16 port;
	__u8   proto;	/* IPPROTO_TCP / IPPROTO_UDP */
	__u8   scope;	/* enum rota_svc_scope */
	__u32  slot;
};
ROTA_ASSERT_SIZE(struct rota_svc_key, 12);

/* Value of rota_svc4: master fields are meaningful in slot 0, backend_id
 * in the other slots. */
struct rota_svc_entry {
	union {
		__u32 backend_id;	/* slots: key into rota_backends4 */
		__u32 maglev_m;		/* master: entries in this service's Maglev
					 * table, 0 = none (see rota_maglev_key) */
	};
	__u32 count;		/* master: active backends */
	__u32 terminating;	/* master: terminating backends after them */
	__u32 svc_id;		/* master and slots: the service's id */
	__u32 affinity_timeout;	/* master: ClientIP affinity, seconds; 0 = off */
	__u16 flags;		/* ROTA_SVC_F_* */
	__u8  type;		/* enum rota_svc_type */
	__u8  pad;
};
ROTA_ASSERT_SIZE(struct rota_svc_entry, 24);

enum rota_backend_state {
	ROTA_BACKEND_ACTIVE      = 0,
	ROTA_BACKEND_TERMINATING = 1,	/* serves established flows only */
};

/* Value of rota_backends4 (key: __u32 backend id). A backend belongs to one
 * service, so its state is exactly what that service's endpoints say. */
struct rota_backend {
	__be32 addr;
	__be16 port;
	__u8   proto;
	__u8   state;	/* enum rota_backend_state */
	__u32  svc_id;
};
ROTA_ASSERT_SIZE(struct rota_backend, 12);

/* Key of rota_maglev4 (hash of maps; value: the table, an array of
 * struct rota_maglev_chunk). The size is part of the key: a table of a new
 * size is published beside the old one, the master entry switches to it in
 * one write and the old one is removed after, so a packet never pairs one
 * table with the other's size. A table of the same size is rewritten in
 * place (its ids are checked by the programs, so a mix of old and new is
 * safe). */
struct rota_maglev_key {
	__u32 svc_id;
	__u32 maglev_m;		/* the master entry's maglev_m */
};
ROTA_ASSERT_SIZE(struct rota_maglev_key, 8);

/* Value of a Maglev table's elements (see ROTA_MAGLEV_CHUNK). */
struct rota_maglev_chunk {
	__u32 backend_id[ROTA_MAGLEV_CHUNK];
};
ROTA_ASSERT_SIZE(struct rota_maglev_chunk, 4 * ROTA_MAGLEV_CHUNK);

/* Value of rota_config (array, key 0): settings every program reads. */
struct rota_config {
	__u32  abi_version;	/* ROTA_ABI_VERSION of the loader */
	__u32  maglev_m;	/* largest Maglev table a service may get (a prime
				 * ROTA_MAGLEV_MIN_M..MAX_M); read by librota only */
	__be32 hairpin_addr;	/* source a pod sees on its own hairpinned flows */
	__u32  tcp_established_timeout;	/* seconds */
	__u32  tcp_syn_timeout;
	__u32  tcp_close_timeout;
	__u32  udp_timeout;
	__u32  next_svc_id;	/* ID allocators, advanced under the writers' lock */
	__u32  next_backend_id;
	__u32  flags;		/* ROTA_CFG_F_* */
};
ROTA_ASSERT_SIZE(struct rota_config, 40);

/* rota_config.flags */
#define ROTA_CFG_F_BACKEND_IDS_WRAPPED (1u << 0)	/* next_backend_id went past 2^32 - 1:
							 * ids below it may be in use */

enum rota_ct_dir {
	ROTA_CT_FWD   = 0,	/* client → frontend, as the client sent it */
	ROTA_CT_REPLY = 1,	/* backend → client (or hairpin address), as the backend sends it */
};

/* Key of rota_ct4: a flow tuple as seen on the wire in one direction. */
struct rota_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8   proto;
	__u8   dir;	/* enum rota_ct_dir */
	__u16  pad;
};
ROTA_ASSERT_SIZE(struct rota_ct_key, 16);

enum rota_ct_state {
	ROTA_CT_NEW         = 0,	/* forward packets only so far (TCP SYN, first UDP) */
	ROTA_CT_ESTABLISHED = 1,	/* the other side answered */
	ROTA_CT_CLOSING     = 2,	/* FIN or RST seen */
};

/* rota_ct_entry.flags */
#define ROTA_CT_F_HAIRPIN (1u << 0)	/* source rewritten to the hairpin address */
#define ROTA_CT_F_SEEN_REPLY (1u << 1)
#define ROTA_CT_F_FIN        (1u << 2)	/* this direction sent a FIN */
#define ROTA_CT_F_PEER_FIN   (1u << 3)	/* the other direction sent a FIN */

/* Value of rota_ct4. FWD entries carry the backend to DNAT to; REPLY
 * entries the frontend to restore as the source. */
struct rota_ct_entry {
	__u64  created_ns;	/* bpf_ktime_get_ns() at creation */
	__u64  last_seen_ns;
	__u64  packets;
	__u64  bytes;
	__be32 nat_addr;	/* FWD: backend; REPLY: frontend */
	__be16 nat_port;
	__u8   state;		/* enum rota_ct_state */
	__u8   flags;		/* ROTA_CT_F_* */
	__u32  backend_id;
	__u32  svc_id;
	__be32 client_addr;	/* REPLY: the client's real address (differs when hairpinned) */
	__u32  pad;
};
ROTA_ASSERT_SIZE(struct rota_ct_entry, 56);

enum rota_affinity_kind {
	ROTA_AFF_CLIENT_ADDR = 0,	/* tc path: client IPv4 address */
	ROTA_AFF_NETNS       = 1,	/* socket LB: the client's netns cookie */
};

/* Key of rota_affinity4 (LRU): who talked to which service. */
struct rota_affinity_key {
	__u64 client;	/* IPv4 address (network order, zero-extended) or netns cookie */
	__u32 svc_id;
	__u8  kind;	/* enum rota_affinity_kind */
	__u8  pad[3];
};
ROTA_ASSERT_SIZE(struct rota_affinity_key, 16);

/* Value of rota_affinity4. */
struct rota_affinity_val {
	__u64 last_used_ns;
	__u32 backend_id;
	__u32 pad;
};
ROTA_ASSERT_SIZE(struct rota_affinity_val, 16);

/* Key of rota_sk_rev4 (LRU): a socket and the backend it was sent to. */
struct rota_sk_rev_key {
	__u64  cookie;	/* bpf_get_socket_cookie() */
	__be32 addr;	/* backend */
	__be16 port;
	__u16  pad;
};
ROTA_ASSERT_SIZE(struct rota_sk_rev_key, 16);

/* Value of rota_sk_rev4: what recvmsg()/getpeername() must show instead. */
struct rota_sk_rev_val {
	__be32 addr;	/* frontend */
	__be16 port;
	__u16  pad;
	__u32  svc_id;
};
ROTA_ASSERT_SIZE(struct rota_sk_rev_val, 12);

/* Key of rota_sk_aff4 (LRU): an unconnected UDP socket sending to a
 * frontend; keeps its datagrams on one backend. */
struct rota_sk_aff_key {
	__u64  cookie;
	__be32 addr;	/* frontend */
	__be16 port;
	__u16  pad;
};
ROTA_ASSERT_SIZE(struct rota_sk_aff_key, 16);

/* Value of rota_sk_aff4. */
struct rota_sk_aff_val {
	__u32 backend_id;
	__u32 svc_id;
};
ROTA_ASSERT_SIZE(struct rota_sk_aff_val, 8);

/* Key of rota_frag4 (LRU): a fragmented datagram whose first fragment was
 * translated; later fragments carry no ports and follow it. */
struct rota_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8   proto;
	__u8   dir;	/* enum rota_ct_dir of the first fragment: a reply's later
			 * fragments also cross the backend's from-pod hook */
};
ROTA_ASSERT_SIZE(struct rota_frag_key, 12);

/* Value of rota_frag4. */
struct rota_frag_val {
	__be32 nat_addr;	/* backend the first fragment went to */
	__be16 sport;
	__be16 dport;
};
ROTA_ASSERT_SIZE(struct rota_frag_val, 8);

/* Value of rota_endpoints4 (key: __be32 pod address): pods on this node,
 * written by rota-cni for direct delivery. */
struct rota_endpoint {
	__u32 ifindex;		/* host-side veth */
	__u8  mac[6];		/* pod interface */
	__u8  node_mac[6];	/* host-side veth */
	__u32 flags;
};
ROTA_ASSERT_SIZE(struct rota_endpoint, 20);

/* Key of rota_stats (per-CPU array): why a packet or socket call went the
 * way it did. Userspace sums the CPUs. */
enum rota_stat {
	ROTA_STAT_PASS_NOT_SERVICE = 0,	/* not addressed to a frontend */
	ROTA_STAT_PASS_NOT_IP,
	ROTA_STAT_PASS_MALFORMED,	/* too short or inconsistent: left alone */
	ROTA_STAT_PASS_FRAGMENT,	/* later fragment with no known first fragment */
	ROTA_STAT_CT_NEW,		/* new flow, backend chosen */
	ROTA_STAT_CT_HIT,		/* established flow */
	ROTA_STAT_XLATE_FWD,		/* DNAT done */
	ROTA_STAT_XLATE_REPLY,		/* reverse NAT done */
	ROTA_STAT_XLATE_ICMP,		/* ICMP error about a translated flow */
	ROTA_STAT_HAIRPIN,
	ROTA_STAT_NO_BACKEND,		/* rejected: service has no usable backend */
	ROTA_STAT_DROP_ERROR,		/* a helper failed mid-rewrite */
	ROTA_STAT_SOCK_XLATE,		/* socket LB translated connect/sendmsg */
	ROTA_STAT_SOCK_REV,		/* socket LB restored recvmsg/getpeername */
	ROTA_STAT_AFFINITY_HIT,
	ROTA_STAT_MAX,
};

/* Value of rota_stats. */
struct rota_stat_val {
	__u64 packets;
	__u64 bytes;
};
ROTA_ASSERT_SIZE(struct rota_stat_val, 16);
