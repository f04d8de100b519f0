/* Helpers of the kube-proxy comparison benchmark (tests/bench/compare/run.sh).
 *
 *   cmp_tool serve PORT THREADS     HTTP responder: per thread one SO_REUSEPORT
 *                                   listener and one epoll loop; answers every
 *                                   request with a fixed 200 and closes when the
 *                                   client has (no fork: the server is not what
 *                                   limits conn/s).
 *   cmp_tool connlat IP PORT COUNT  COUNT sequential connect()s; prints
 *                                   "p50 p99 p999 max" in microseconds of the
 *                                   connect() call (SYN -> SYN-ACK through the
 *                                   dataplane), closing each with RST.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
static int port;

static void *serve_loop(void *arg)
{
	int one = 1, lfd, ep;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct epoll_event ev, evs[256];
	char buf[4096];

	(void)arg;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096)) {
		perror("cmp_tool serve: bind/listen");
		exit(1);
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					ev.events = EPOLLIN;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0 && errno == EAGAIN)
				continue;
			/* One small request per connection (wrk, curl): answer
			 * when its header block is in, then wait for the client
			 * to close first, so TIME_WAIT stays on the client side
			 * (where tcp_tw_reuse recycles it) for every dataplane
			 * alike, instead of piling up on one server address. */
			if (r > 0) {
				if (memmem(buf, (size_t)r, "\r\n\r\n", 4) &&
				    write(fd, RESP, sizeof(RESP) - 1) < 0)
					close(fd);
				continue;
			}
			close(fd);
		}
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int connlat(const char *ip, int p, int count)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p) };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	double *us = calloc((size_t)count, sizeof(double));
	int ok = 0, fails = 0;

	if (!us || inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "cmp_tool connlat: bad address %s\n", ip);
		return 2;
	}
	for (int i = 0; i < count; i++) {
		struct timespec t0, t1;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct timeval tv = { .tv_sec = 2 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r == 0)
			us[ok++] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
		else
			fails++;
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	if (!ok) {
		fprintf(stderr, "cmp_tool connlat: no connection succeeded (%d failed)\n", fails);
		return 1;
	}
	qsort(us, (size_t)ok, sizeof(double), cmp_double);
#define PCT(q) us[(size_t)((double)(ok - 1) * (q))]
	printf("%.1f %.1f %.1f %.1f %d\n", PCT(0.50), PCT(0.99), PCT(0.999), us[ok - 1], fails);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "serve")) {
		int threads = atoi(argv[3]);
		pthread_t t;
		port = atoi(argv[2]);
		for (int i = 1; i < threads; i++)
			pthread_create(&t, NULL, serve_loop, NULL);
		serve_loop(NULL);
	}
	if (argc == 5 && !strcmp(argv[1], "connlat"))
		return connlat(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: cmp_tool serve PORT THREADS | connlat IP PORT COUNT\n");
	return 2;
}
