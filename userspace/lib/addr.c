/* Address parsing for the CLI and the agent: strict (no octal, no
 * trailing junk, ports 1-65535) so typos fail loudly instead of landing in a map. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "addr.h"

int rota_parse_proto(const char *s, __u8 *proto)
{
	if (!strcasecmp(s, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcasecmp(s, "udp"))
		*proto = IPPROTO_UDP;
	else
		return -EINVAL;
	return 0;
}

const char *rota_proto_name(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP: return "TCP";
	case IPPROTO_UDP: return "UDP";
	case IPPROTO_SCTP: return "SCTP";
	default: return "?";
	}
}

static int parse_port(const char *s, __be16 *port)
{
	char *end;
	long v;

	if (!*s || *s == '+' || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*port = htons((__u16)v);
	return 0;
}

int rota_parse_addr_port(const char *s, const char *what, __be32 *addr, __be16 *port,
			 char err[ROTA_ERR_LEN])
{
	const char *colon = strrchr(s, ':');
	char host[INET_ADDRSTRLEN];
	struct in_addr in;
	size_t len;

	if (!colon) {
		snprintf(err, ROTA_ERR_LEN, "%s \"%s\": expected ADDRESS:PORT", what, s);
		return -EINVAL;
	}
	len = (size_t)(colon - s);
	if (len == 0 || len >= sizeof(host)) {
		snprintf(err, ROTA_ERR_LEN, "%s address in \"%s\": not an IPv4 address", what, s);
		return -EINVAL;
	}
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &in) != 1) {
		snprintf(err, ROTA_ERR_LEN, "%s address \"%s\" in \"%s\": not an IPv4 address", what, host, s);
		return -EINVAL;
	}
	if (parse_port(colon + 1, port)) {
		snprintf(err, ROTA_ERR_LEN, "%s port \"%s\" in \"%s\": must be 1-65535", what, colon + 1, s);
		return -EINVAL;
	}
	*addr = in.s_addr;
	return 0;
}

int rota_parse_frontend(const char *s, struct rota_frontend *fe, char err[ROTA_ERR_LEN])
{
	char buf[64];
	char *slash;
	int ret;

	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, ROTA_ERR_LEN, "frontend \"%.40s...\": too long", s);
		return -EINVAL;
	}
	strcpy(buf, s);
	memset(fe, 0, sizeof(*fe));
	fe->proto = IPPROTO_TCP;
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (rota_parse_proto(slash + 1, &fe->proto)) {
			snprintf(err, ROTA_ERR_LEN, "protocol \"%s\" in \"%s\": must be TCP or UDP", slash + 1, s);
			return -EINVAL;
		}
	}
	ret = rota_parse_addr_port(buf, "frontend", &fe->addr, &fe->port, err);
	if (ret)
		return ret;
	return 0;
}

char *rota_fmt_addr(char buf[ROTA_ADDR_STR_LEN], __be32 addr)
{
	struct in_addr in = { .s_addr = addr };

	inet_ntop(AF_INET, &in, buf, ROTA_ADDR_STR_LEN);
	return buf;
}

char *rota_fmt_addr_port(char buf[], __be32 addr, __be16 port)
{
	char a[INET_ADDRSTRLEN];
	struct in_addr in = { .s_addr = addr };

	inet_ntop(AF_INET, &in, a, sizeof(a));
	snprintf(buf, 22, "%s:%u", a, ntohs(port));
	return buf;
}

char *rota_fmt_frontend(char buf[ROTA_ADDR_STR_LEN], const struct rota_frontend *fe)
{
	char a[24];

	snprintf(buf, ROTA_ADDR_STR_LEN, "%s/%s", rota_fmt_addr_port(a, fe->addr, fe->port),
		 rota_proto_name(fe->proto));
	return buf;
}
