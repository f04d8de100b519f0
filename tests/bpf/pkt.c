/* Packet builder and independent RFC 1071 checksum routines for the BPF
 * unit tests (see pkt.h). Everything here is computed from scratch over
 * whole byte ranges, never incrementally, so it shares no logic with the
 * datapath it checks. */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include "pkt.h"

static const uint8_t mac_pod[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t mac_host[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };

uint32_t ip4(const char *dotted)
{
	struct in_addr a;

	if (inet_pton(AF_INET, dotted, &a) != 1) {
		fprintf(stderr, "bad address in test: %s\n", dotted);
		return 0;
	}
	return a.s_addr;
}

void put16(uint8_t *b, uint16_t v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static void put32n(uint8_t *b, uint32_t v_net)
{
	memcpy(b, &v_net, 4);
}

uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

uint32_t get32n(const uint8_t *b)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return v;
}

uint32_t sum16(const uint8_t *data, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(data[i] << 8 | data[i + 1]);
	if (len & 1)
		sum += (uint32_t)data[len - 1] << 8;
	return sum;
}

uint16_t csum_finish(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t pseudo_sum(uint32_t saddr, uint32_t daddr, uint8_t proto, size_t l4len)
{
	uint8_t ph[12];

	put32n(ph, saddr);
	put32n(ph + 4, daddr);
	ph[8] = 0;
	ph[9] = proto;
	put16(ph + 10, (uint16_t)l4len);
	return sum16(ph, sizeof(ph), 0);
}

static struct pkt pkt_base(const char *src, const char *dst, uint8_t proto)
{
	struct pkt p = {
		.saddr = ip4(src), .daddr = ip4(dst), .proto = proto,
		.id = 0x4242, .ttl = 64,
	};

	memcpy(p.smac, mac_pod, 6);
	memcpy(p.dmac, mac_host, 6);
	return p;
}

struct pkt pkt_tcp(const char *src, uint16_t sport, const char *dst, uint16_t dport, uint8_t flags)
{
	struct pkt p = pkt_base(src, dst, IPPROTO_TCP);

	p.sport = sport;
	p.dport = dport;
	p.tcp_flags = flags;
	p.seq = 0x11223344;
	p.ack = flags & 0x10 ? 0x55667788 : 0;
	return p;
}

struct pkt pkt_udp(const char *src, uint16_t sport, const char *dst, uint16_t dport,
		   const void *payload, size_t plen)
{
	struct pkt p = pkt_base(src, dst, IPPROTO_UDP);

	p.sport = sport;
	p.dport = dport;
	p.payload = payload;
	p.plen = plen;
	return p;
}

struct pkt pkt_icmp_err(const char *src, const char *dst, uint8_t type, uint8_t code,
			const void *quote, size_t qlen)
{
	struct pkt p = pkt_base(src, dst, IPPROTO_ICMP_);

	p.icmp_type = type;
	p.icmp_code = code;
	p.payload = quote;
	p.plen = qlen;
	return p;
}

size_t build_l4(uint8_t *out, const struct pkt *p)
{
	size_t len;
	uint16_t c;

	switch (p->proto) {
	case IPPROTO_TCP:
		len = 20 + p->plen;
		memset(out, 0, 20);
		put16(out, p->sport);
		put16(out + 2, p->dport);
		put32n(out + 4, htonl(p->seq));
		put32n(out + 8, htonl(p->ack));
		out[12] = 5 << 4;
		out[13] = p->tcp_flags;
		put16(out + 14, 0xffff);
		memcpy(out + 20, p->payload, p->plen);
		c = csum_finish(sum16(out, len, pseudo_sum(p->saddr, p->daddr, p->proto, len)));
		put16(out + 16, c);
		return len;
	case IPPROTO_UDP:
		len = 8 + p->plen;
		put16(out, p->sport);
		put16(out + 2, p->dport);
		put16(out + 4, (uint16_t)len);
		put16(out + 6, 0);
		memcpy(out + 8, p->payload, p->plen);
		if (!p->udp_no_csum) {
			c = csum_finish(sum16(out, len, pseudo_sum(p->saddr, p->daddr, p->proto, len)));
			put16(out + 6, c ? c : 0xffff);	/* RFC 768: computed 0 is sent as all ones */
		}
		return len;
	case IPPROTO_ICMP_:
		len = 8 + p->plen;
		out[0] = p->icmp_type;
		out[1] = p->icmp_code;
		put16(out + 2, 0);
		put32n(out + 4, p->icmp_rest);
		memcpy(out + 8, p->payload, p->plen);
		put16(out + 2, csum_finish(sum16(out, len, 0)));
		return len;
	}
	memcpy(out, p->payload, p->plen);
	return p->plen;
}

/* Record Route option (RFC 791) filling ihl-5 words, half its slots used,
 * padded with End of Option List. */
static void ip_options(uint8_t *o, size_t olen)
{
	size_t slots = (olen - 3) / 4, used = slots / 2;

	memset(o, 0, olen);
	o[0] = 7;
	o[1] = (uint8_t)(3 + 4 * slots);
	o[2] = (uint8_t)(4 + 4 * used);
	for (size_t i = 0; i < used; i++) {
		uint8_t *a = o + 3 + 4 * i;

		a[0] = 10, a[1] = 254, a[2] = 0, a[3] = (uint8_t)(i + 1);
	}
}

size_t build_ip_frame(uint8_t *out, const struct pkt *p, const uint8_t *l4, size_t l4len)
{
	uint8_t ihl = p->ihl ? p->ihl : 5;
	uint8_t *ip = out + ETH_LEN;
	size_t hlen = ihl * 4u;

	memcpy(out, p->dmac, 6);
	memcpy(out + 6, p->smac, 6);
	put16(out + 12, p->ethertype ? p->ethertype : 0x0800);

	ip[0] = 0x40 | ihl;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(hlen + l4len));
	put16(ip + 4, p->id);
	put16(ip + 6, p->frag);
	ip[8] = p->ttl ? p->ttl : 64;
	ip[9] = p->proto;
	put16(ip + 10, 0);
	put32n(ip + 12, p->saddr);
	put32n(ip + 16, p->daddr);
	if (hlen > 20)
		ip_options(ip + 20, hlen - 20);
	put16(ip + 10, csum_finish(sum16(ip, hlen, 0)));
	memmove(ip + hlen, l4, l4len);
	return ETH_LEN + hlen + l4len;
}

void build(struct frame *f, const struct pkt *p)
{
	uint8_t l4[FRAME_MAX];
	size_t n = build_l4(l4, p);

	f->len = build_ip_frame(f->b, p, l4, n);
}

size_t ip_hlen(const uint8_t *frame)
{
	return (frame[ETH_LEN] & 0x0f) * 4u;
}

size_t ip_totlen(const uint8_t *frame)
{
	return get16(frame + ETH_LEN + 2);
}

void ip_csum_set(uint8_t *frame, size_t hlen)
{
	uint8_t *ip = frame + ETH_LEN;

	put16(ip + 10, 0);
	put16(ip + 10, csum_finish(sum16(ip, hlen, 0)));
}

void icmp_csum_set(uint8_t *icmp, size_t len)
{
	put16(icmp + 2, 0);
	put16(icmp + 2, csum_finish(sum16(icmp, len, 0)));
}

bool ip_hdr_csum_ok_at(const uint8_t *ip)
{
	return csum_finish(sum16(ip, (ip[0] & 0x0f) * 4u, 0)) == 0;
}

bool ip_csum_ok(const uint8_t *frame)
{
	return ip_hdr_csum_ok_at(frame + ETH_LEN);
}

bool l4_csum_ok(const uint8_t *frame)
{
	const uint8_t *ip = frame + ETH_LEN;
	size_t hlen = ip_hlen(frame), l4len = ip_totlen(frame) - hlen;
	const uint8_t *l4 = ip + hlen;

	if (ip[9] == IPPROTO_UDP && get16(l4 + 6) == 0)
		return true;
	return csum_finish(sum16(l4, l4len, pseudo_sum(get32n(ip + 12), get32n(ip + 16), ip[9], l4len))) == 0;
}

bool icmp_csum_ok(const uint8_t *frame)
{
	size_t hlen = ip_hlen(frame);

	return csum_finish(sum16(frame + ETH_LEN + hlen, ip_totlen(frame) - hlen, 0)) == 0;
}

void frame_diff(const char *what, const uint8_t *got, size_t got_len,
		const uint8_t *want, size_t want_len)
{
	size_t n = got_len > want_len ? got_len : want_len;

	fprintf(stderr, "%s: got %zu bytes, want %zu\n", what, got_len, want_len);
	for (size_t i = 0; i < n; i++) {
		int g = i < got_len ? got[i] : -1, w = i < want_len ? want[i] : -1;

		char gs[4] = "--", ws[4] = "--";

		if (g == w)
			continue;
		if (g >= 0)
			snprintf(gs, sizeof(gs), "%02x", g);
		if (w >= 0)
			snprintf(ws, sizeof(ws), "%02x", w);
		fprintf(stderr, "  byte %3zu: got %s want %s\n", i, gs, ws);
	}
}
