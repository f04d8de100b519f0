/* Programs rota with the same N services as kpgen.py generates for
 * kube-proxy, through librota's rota_svc_upsert (what `rota service add`
 * does, without a process per service, under one hold of the writers' lock
 * as rotad's sync does), and prints the seconds it took.
 *
 *   cmp_rota_prog DIR N E RAND_INDEX MAGLEV_VIP TEST_EP...
 *
 * Service i: 10.96.1.0+i:80/TCP. Index N-1 and RAND_INDEX get the TEST_EPs
 * (IP:PORT), the others E unrouted endpoints 100.64.0.0+i*E+j:8080. After
 * the N services, MAGLEV_VIP:80/TCP gets the TEST_EPs with Maglev (not
 * counted in the time; "-" for none). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "svc.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char err[ROTA_ERR_LEN] = "";
	struct rota_dp dp;
	struct rota_svc_backend *test, *fake;
	size_t ntest;
	long n, e, rnd;
	double t0, t1;

	if (argc < 7) {
		fprintf(stderr, "usage: cmp_rota_prog DIR N E RAND_INDEX MAGLEV_VIP TEST_EP...\n");
		return 2;
	}
	n = atol(argv[2]);
	e = atol(argv[3]);
	rnd = atol(argv[4]);
	ntest = (size_t)(argc - 6);
	test = calloc(ntest, sizeof(*test));
	fake = calloc((size_t)e, sizeof(*fake));
	if (!test || !fake || n < 1 || e < 1)
		return 2;
	for (size_t k = 0; k < ntest; k++)
		if (rota_parse_addr_port(argv[6 + k], "backend", &test[k].addr, &test[k].port, err)) {
			fprintf(stderr, "cmp_rota_prog: %s\n", err);
			return 2;
		}
	if (rota_dp_open(&dp, argv[1]))
		return 1;
	t0 = now();
	/* Held across the whole batch, as rotad holds it across a sync. */
	if (rota_dp_lock(&dp)) {
		fprintf(stderr, "cmp_rota_prog: cannot lock %s\n", argv[1]);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		struct rota_service s = { .fe = { .addr = htonl(0x0a600100u + (__u32)i), .port = htons(80),
						  .proto = IPPROTO_TCP } };
		if (i == n - 1 || i == rnd) {
			s.backends = test;
			s.n_backends = ntest;
		} else {
			for (long j = 0; j < e; j++) {
				fake[j] = (struct rota_svc_backend){ .addr = htonl(0x64400000u + (__u32)(i * e + j)),
								     .port = htons(8080) };
			}
			s.backends = fake;
			s.n_backends = (size_t)e;
		}
		if (rota_svc_upsert(&dp, &s, err)) {
			fprintf(stderr, "cmp_rota_prog: service %ld: %s\n", i, err);
			return 1;
		}
	}
	rota_dp_unlock(&dp);
	t1 = now();
	if (strcmp(argv[5], "-")) {
		struct rota_service s = { .fe = { .port = htons(80), .proto = IPPROTO_TCP }, .maglev = true,
					  .backends = test, .n_backends = ntest };
		if (inet_pton(AF_INET, argv[5], &s.fe.addr) != 1 || rota_svc_upsert(&dp, &s, err)) {
			fprintf(stderr, "cmp_rota_prog: maglev service %s: %s\n", argv[5], err);
			return 1;
		}
	}
	rota_dp_close(&dp);
	printf("%.3f\n", t1 - t0);
	return 0;
}
