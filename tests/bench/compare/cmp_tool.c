/* Helpers of the kube-proxy comparison benchmark (tests/bench/compare/run.sh).
 *
 *   cmp_tool serve PORT THREADS     HTTP responder: per thread one SO_REUSEPORT
 *                                   listener and one epoll loop; answers every
 *                                   request with a fixed 200 (no fork: the server
 *                                   is not what limits conn/s). A request with
 *                                   "Connection: close" (or HTTP/1.0) gets that
 *                                   header back and the server closes when the
 *                                   client has; any other keeps the connection
 *                                   open for the next request.
 *   cmp_tool latency IP PORT C R    first packet: C sequential connect()s,
 *                                   each timed (SYN -> SYN-ACK through the
 *                                   dataplane) and closed with RST; then
 *                                   request latency: R requests one after the
 *                                   other over one persistent connection, each
 *                                   timed until its answer is in. Prints the
 *                                   p50 p99 p99.9 max of each in microseconds
 *                                   (see latency()).
 *   cmp_tool iptinfo TABLE          "ENTRIES BYTES" of the iptables-legacy
 *                                   TABLE in this netns: the size of the rule
 *                                   blob the kernel holds (IPT_SO_GET_INFO).
 *   cmp_tool ctflush                empties this netns's conntrack table
 *                                   (what `conntrack -F` does), so one N's
 *                                   entries do not count at the next.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char RESP_CLOSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
static const char RESP_KEEP[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
static int port;

/* One accepted connection: what has arrived of the request not yet answered
 * (a client may send a request in several writes: bash's printf does). */
struct conn {
	int fd;
	bool closing;		/* answered with "Connection: close" */
	size_t len;
	char buf[2048];
};

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c);
}

/* Answers every complete request in c->buf. After a closing answer the
 * server waits for the client to close first, so TIME_WAIT stays on the
 * client side (where tcp_tw_reuse recycles it) for every dataplane alike,
 * instead of piling up on one server address. 0, or -1 to drop c. */
static int conn_answer(struct conn *c)
{
	char *p = c->buf, *end = c->buf + c->len, *eoh;

	while (!c->closing && (eoh = memmem(p, (size_t)(end - p), "\r\n\r\n", 4))) {
		size_t len = (size_t)(eoh - p);
		c->closing = memmem(p, len, "onnection: close", 16) || memmem(p, len, "HTTP/1.0", 8);
		const char *resp = c->closing ? RESP_CLOSE : RESP_KEEP;
		size_t rlen = c->closing ? sizeof(RESP_CLOSE) - 1 : sizeof(RESP_KEEP) - 1;
		if (write(c->fd, resp, rlen) != (ssize_t)rlen)
			return -1;
		p = eoh + 4;
	}
	c->len = (size_t)(end - p);
	memmove(c->buf, p, c->len);
	return c->len == sizeof(c->buf) ? -1 : 0;	/* a header block larger than we take */
}

static void *serve_loop(void *arg)
{
	int one = 1, lfd, ep;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct epoll_event ev, evs[256];

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
	ev.data.ptr = NULL;	/* the listener */
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 0) {
				c->len += (size_t)r;
				if (conn_answer(c) == 0)
					continue;
			}
			conn_close(c);	/* closing fd also takes it out of ep */
		}
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double usec_between(const struct timespec *t0, const struct timespec *t1)
{
	return (double)(t1->tv_sec - t0->tv_sec) * 1e6 + (double)(t1->tv_nsec - t0->tv_nsec) / 1e3;
}

/* Prints "p50 p99 p999 max" of n samples (sorted in place). */
static void print_pcts(double *us, int n)
{
	qsort(us, (size_t)n, sizeof(double), cmp_double);
#define PCT(q) us[(size_t)((double)(n - 1) * (q))]
	printf("%.1f %.1f %.1f %.1f", PCT(0.50), PCT(0.99), PCT(0.999), us[n - 1]);
#undef PCT
}

static int tcp_socket(void)
{
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* COUNT sequential connect()s, each closed with RST: the time of the
 * connect() call is SYN -> SYN-ACK through the dataplane. */
static int connect_latency(const struct sockaddr_in *a, double *us, int count, int *fails)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int ok = 0;

	for (int i = 0; i < count; i++) {
		struct timespec t0, t1;
		int fd = tcp_socket();
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int r = connect(fd, (const struct sockaddr *)a, sizeof(*a));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r == 0)
			us[ok++] = usec_between(&t0, &t1);
		else
			(*fails)++;
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	return ok;
}

/* COUNT requests one after the other on one persistent connection: each
 * sample is a request and its whole answer through the dataplane. */
static int request_latency(const struct sockaddr_in *a, double *us, int count, double *secs)
{
	static const char REQ[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
	const size_t want = sizeof(RESP_KEEP) - 1;
	struct timespec start, end;
	char buf[512];
	int one = 1, ok = 0;
	int fd = tcp_socket();

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)a, sizeof(*a))) {
		perror("cmp_tool latency: connect for requests");
		close(fd);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < count; i++) {
		struct timespec t0, t1;
		size_t got = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (write(fd, REQ, sizeof(REQ) - 1) != (ssize_t)(sizeof(REQ) - 1))
			break;
		while (got < want) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != want)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us[ok++] = usec_between(&t0, &t1);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	*secs = usec_between(&start, &end) / 1e6;
	close(fd);
	return ok;
}

/* Prints "CONNECT_P50 P99 P999 MAX FAILS REQUEST_P50 P99 P999 MAX REQUESTS
 * REQUESTS_PER_S" in microseconds. */
static int latency(const char *ip, int p, int connects, int requests)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p) };
	double *cus = calloc((size_t)connects + 1, sizeof(double));
	double *rus = calloc((size_t)requests + 1, sizeof(double));
	int fails = 0, cok, rok;
	double secs = 0;

	if (!cus || !rus || inet_pton(AF_INET, ip, &a.sin_addr) != 1 || connects < 1 || requests < 1) {
		fprintf(stderr, "cmp_tool latency: bad address %s or counts %d %d\n", ip, connects, requests);
		return 2;
	}
	cok = connect_latency(&a, cus, connects, &fails);
	if (!cok) {
		fprintf(stderr, "cmp_tool latency: no connection to %s:%d succeeded (%d failed)\n", ip, p, fails);
		return 1;
	}
	rok = request_latency(&a, rus, requests, &secs);
	if (rok < requests) {
		fprintf(stderr, "cmp_tool latency: %d of %d requests to %s:%d answered\n", rok, requests, ip, p);
		return 1;
	}
	print_pcts(cus, cok);
	printf(" %d ", fails);
	print_pcts(rus, rok);
	printf(" %d %.0f\n", rok, secs > 0 ? rok / secs : 0);
	return 0;
}

static int iptinfo(const char *table)
{
	struct ipt_getinfo info = { 0 };
	socklen_t len = sizeof(info);
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);

	if (fd < 0 || strlen(table) >= sizeof(info.name)) {
		fprintf(stderr, "cmp_tool iptinfo: %s\n", fd < 0 ? strerror(errno) : "table name too long");
		return 1;
	}
	strcpy(info.name, table);
	if (getsockopt(fd, IPPROTO_IP, IPT_SO_GET_INFO, &info, &len)) {
		fprintf(stderr, "cmp_tool iptinfo: table %s: %s\n", table, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	printf("%u %u\n", info.num_entries, info.size);
	return 0;
}

static int ctflush(void)
{
	struct {
		struct nlmsghdr nh;
		struct nfgenmsg nfg;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 1 },
		.nfg = { .nfgen_family = AF_INET, .version = NFNETLINK_V0 },
	};
	char buf[512];
	int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	ssize_t r;

	if (fd < 0 || send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req) || (r = recv(fd, buf, sizeof(buf), 0)) < 0) {
		fprintf(stderr, "cmp_tool ctflush: netlink: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	if ((size_t)r >= sizeof(*nh) + sizeof(struct nlmsgerr) && nh->nlmsg_type == NLMSG_ERROR) {
		int err = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
		if (err) {
			fprintf(stderr, "cmp_tool ctflush: %s\n", strerror(-err));
			return 1;
		}
	}
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
	if (argc == 6 && !strcmp(argv[1], "latency"))
		return latency(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc == 3 && !strcmp(argv[1], "iptinfo"))
		return iptinfo(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "ctflush"))
		return ctflush();
	fprintf(stderr, "usage: cmp_tool serve PORT THREADS | latency IP PORT CONNECTS REQUESTS | iptinfo TABLE | ctflush\n");
	return 2;
}
