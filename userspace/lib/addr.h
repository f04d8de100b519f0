/* Parsing and printing of frontends (VIP:PORT/PROTO) and backends
 * (IP:PORT). Errors name the field and the value that was wrong. */
#pragma once
#include <stddef.h>
#include <linux/types.h>

#define ROTA_ERR_LEN 256
#define ROTA_ADDR_STR_LEN 48	/* "255.255.255.255:65535/SCTP" + NUL, with room */

struct rota_frontend {
	__be32 addr;
	__be16 port;
	__u8   proto;	/* IPPROTO_TCP / IPPROTO_UDP */
	__u8   scope;
};

/* "10.96.0.10:80/TCP" (protocol case-insensitive; /TCP if omitted). */
int rota_parse_frontend(const char *s, struct rota_frontend *fe, char err[ROTA_ERR_LEN]);
/* "10.0.0.5:8080"; what names the argument in messages ("backend"). */
int rota_parse_addr_port(const char *s, const char *what, __be32 *addr, __be16 *port,
			 char err[ROTA_ERR_LEN]);
/* "TCP"/"UDP" → IPPROTO_*; -EINVAL otherwise. */
int rota_parse_proto(const char *s, __u8 *proto);
const char *rota_proto_name(__u8 proto);

char *rota_fmt_addr(char buf[ROTA_ADDR_STR_LEN], __be32 addr);
/* buf: at least 22 bytes ("255.255.255.255:65535"). */
char *rota_fmt_addr_port(char buf[], __be32 addr, __be16 port);
char *rota_fmt_frontend(char buf[ROTA_ADDR_STR_LEN], const struct rota_frontend *fe);
