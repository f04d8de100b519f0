/* conn_guard.h: fixed deadlines for request headers (see conn_guard.c). */
#pragma once
#include <stdbool.h>
#include <microhttpd.h>

struct conn_guard;

int conn_guard_start(unsigned header_timeout, unsigned idle_timeout, struct conn_guard **out);
/* After MHD_stop_daemon. */
void conn_guard_stop(struct conn_guard *g);
/* MHD_OPTION_NOTIFY_CONNECTION callback, cls the guard. */
void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		       enum MHD_ConnectionNotificationCode code);
/* A request's headers are all in: no deadline while it is served. */
void conn_guard_headers_in(struct conn_guard *g, struct MHD_Connection *conn);
/* A request was answered: the next one's headers are due within the idle timeout. */
void conn_guard_answered(struct conn_guard *g, struct MHD_Connection *conn);
