/* conn_guard.c: deadlines libmicrohttpd does not keep. Its connection
 * timeout restarts on every byte, so a client that sends one header line
 * every few seconds holds a connection (and its thread) for ever. The guard
 * gives each connection a fixed deadline to finish its request headers:
 * --request-header-timeout from accept (TLS handshake included), then the
 * idle timeout from each answer to the next request's headers. A
 * connection past its deadline is shut down (its thread then sees EOF and
 * libmicrohttpd closes it as usual). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <microhttpd.h>
#include "conn_guard.h"
#include "log.h"

struct guarded {
	struct guarded *prev, *next;
	int fd;
	time_t deadline;	/* monotonic seconds; 0: headers are in */
};

struct conn_guard {
	pthread_mutex_t mu;
	pthread_cond_t wake;
	struct guarded head;	/* circular list of open connections */
	unsigned header_timeout, idle_timeout;
	unsigned long cut;	/* connections shut down for a missed deadline */
	bool stop;
	pthread_t thread;
};

static time_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void *watchdog(void *arg)
{
	struct conn_guard *g = arg;
	unsigned long reported = 0;

	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec until;
		time_t now = now_mono();

		/* libmicrohttpd reports a connection closed before it closes the
		 * socket, under this lock here: every fd on the list is open */
		for (struct guarded *c = g->head.next; c != &g->head; c = c->next) {
			if (c->deadline && now >= c->deadline) {
				shutdown(c->fd, SHUT_RDWR);
				c->deadline = 0;
				g->cut++;
			}
		}
		if (g->cut != reported) {
			pr_info("closed %lu connection(s) that sent no complete request headers in time (%lu in all)",
				g->cut - reported, g->cut);
			reported = g->cut;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&g->wake, &g->mu, &until);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int conn_guard_start(unsigned header_timeout, unsigned idle_timeout, struct conn_guard **out)
{
	struct conn_guard *g = calloc(1, sizeof(*g));
	int err;

	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->wake, NULL);
	g->head.next = g->head.prev = &g->head;
	g->header_timeout = header_timeout;
	g->idle_timeout = idle_timeout;
	err = pthread_create(&g->thread, NULL, watchdog, g);
	if (err) {
		free(g);
		return -err;
	}
	*out = g;
	return 0;
}

void conn_guard_stop(struct conn_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	/* the daemon is stopped first: no connection is left on the list */
	free(g);
}

void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		       enum MHD_ConnectionNotificationCode code)
{
	struct conn_guard *g = cls;
	struct guarded *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		c = calloc(1, sizeof(*c));
		if (!c || !fd) {
			free(c);
			return;	/* unguarded: the idle timeout still applies */
		}
		c->fd = fd->connect_fd;
		pthread_mutex_lock(&g->mu);
		c->deadline = now_mono() + g->header_timeout;
		c->next = g->head.next;
		c->prev = &g->head;
		g->head.next->prev = c;
		g->head.next = c;
		pthread_mutex_unlock(&g->mu);
		*socket_context = c;
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&g->mu);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	pthread_mutex_unlock(&g->mu);
	free(c);
	*socket_context = NULL;
}

static void set_deadline(struct conn_guard *g, struct MHD_Connection *conn, unsigned secs)
{
	const union MHD_ConnectionInfo *i = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct guarded *c = i ? i->socket_context : NULL;

	if (!c)
		return;
	pthread_mutex_lock(&g->mu);
	c->deadline = secs ? now_mono() + secs : 0;
	pthread_mutex_unlock(&g->mu);
}

void conn_guard_headers_in(struct conn_guard *g, struct MHD_Connection *conn)
{
	set_deadline(g, conn, 0);
}

void conn_guard_answered(struct conn_guard *g, struct MHD_Connection *conn)
{
	set_deadline(g, conn, g->idle_timeout);
}
