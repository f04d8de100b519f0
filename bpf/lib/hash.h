/* Bob Jenkins' lookup3 final mix: the flow hash Maglev indexes with. A fixed
 * seed, so every node hashes a flow alike. */
#pragma once
#include "lib/common.h"

#define ROTA_JHASH_INITVAL 0xdeadbeef
#define ROTA_FLOW_SEED     0x726f7461	/* "rota" */

static __always_inline __u32 rol32(__u32 w, __u32 s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += ROTA_JHASH_INITVAL;
	b += ROTA_JHASH_INITVAL;
	c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* Hash of a flow's client side and frontend (ports in network order). */
static __always_inline __u32 flow_hash4(__be32 saddr, __be32 daddr, __be16 sport,
					__be16 dport, __u8 proto)
{
	return jhash_3words(saddr, daddr, ((__u32)sport << 16 | dport) ^ proto, ROTA_FLOW_SEED);
}
