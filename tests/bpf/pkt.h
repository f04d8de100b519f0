/* Packet crafting and checking for the BPF unit tests: builds Ethernet +
 * IPv4 (+ options, fragments) + TCP/UDP/ICMP frames byte by byte, and
 * verifies checksums with a plain RFC 1071 sum over the bytes. Shares no
 * code with bpf/: the datapath's incremental updates are checked against
 * sums computed from scratch here. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX 4096
#define ETH_LEN   14
#define IPPROTO_ICMP_ 1

struct frame {
	uint8_t b[FRAME_MAX];
	size_t  len;
};

/* One packet to craft. Addresses in network order, ports in host order. */
struct pkt {
	uint8_t  smac[6], dmac[6];
	uint16_t ethertype;	/* 0: IPv4 */
	uint32_t saddr, daddr;
	uint8_t  proto;
	uint8_t  ihl;		/* 0: 5; 6..15 adds a Record Route option */
	uint16_t id;
	uint16_t frag;		/* flags | offset in 8-byte units (host order) */
	uint8_t  ttl;		/* 0: 64 */
	uint16_t sport, dport;	/* TCP/UDP */
	uint8_t  tcp_flags;
	uint32_t seq, ack;
	bool     udp_no_csum;	/* UDP checksum field 0 ("none") */
	uint8_t  icmp_type, icmp_code;
	uint32_t icmp_rest;	/* ICMP bytes 4..7, network order */
	const uint8_t *payload;	/* TCP/UDP payload, or the ICMP error's quote */
	size_t   plen;
};

uint32_t ip4(const char *dotted);	/* network order */

/* A TCP/UDP/ICMP packet from a to b with default MACs and fields. */
struct pkt pkt_tcp(const char *src, uint16_t sport, const char *dst, uint16_t dport, uint8_t flags);
struct pkt pkt_udp(const char *src, uint16_t sport, const char *dst, uint16_t dport,
		   const void *payload, size_t plen);
struct pkt pkt_icmp_err(const char *src, const char *dst, uint8_t type, uint8_t code,
			const void *quote, size_t qlen);

/* The L4 part (header with checksum + payload) of p. */
size_t build_l4(uint8_t *out, const struct pkt *p);
/* Ethernet + IPv4 header (+ options) of p around l4 bytes; IP checksum set. */
size_t build_ip_frame(uint8_t *out, const struct pkt *p, const uint8_t *l4, size_t l4len);
/* The whole frame. */
void build(struct frame *f, const struct pkt *p);

/* RFC 1071: ones' complement sum of 16-bit big-endian words (odd length
 * padded with a zero byte), added to sum. */
uint32_t sum16(const uint8_t *data, size_t len, uint32_t sum);
/* Folds and complements: the checksum field value for a sum. */
uint16_t csum_finish(uint32_t sum);

/* Offsets into a frame holding IPv4 at ETH_LEN. */
size_t ip_hlen(const uint8_t *frame);
size_t ip_totlen(const uint8_t *frame);
uint16_t get16(const uint8_t *b);	/* big-endian read */
void put16(uint8_t *b, uint16_t v);	/* big-endian write */
uint32_t get32n(const uint8_t *b);	/* raw read, network order value */

/* Checksum checks over the bytes of a frame (IPv4 at ETH_LEN). */
bool ip_csum_ok(const uint8_t *frame);
/* TCP/UDP checksum incl. pseudo-header over the L4 bytes the IP header
 * says are there. UDP with checksum 0 counts as ok (no checksum). */
bool l4_csum_ok(const uint8_t *frame);
/* ICMP checksum over the ICMP message (IP total length minus header). */
bool icmp_csum_ok(const uint8_t *frame);
/* Same over a bare IPv4 datagram (a quote inside an ICMP error). */
bool ip_hdr_csum_ok_at(const uint8_t *ip);

/* Recompute a checksum after a test edited the bytes on purpose: the IPv4
 * header's over hlen bytes (given, as the IHL may be the defect), an ICMP
 * message's over len bytes. */
void ip_csum_set(uint8_t *frame, size_t hlen);
void icmp_csum_set(uint8_t *icmp, size_t len);

/* Hex dump of where two frames differ, for failure messages. */
void frame_diff(const char *what, const uint8_t *got, size_t got_len,
		const uint8_t *want, size_t want_len);
