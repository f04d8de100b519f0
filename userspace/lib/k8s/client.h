/* A small Kubernetes API client over libcurl: GET as JSON and watch
 * streams parsed incrementally, with TLS and bearer/client-cert auth. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "kubeconfig.h"

struct k8s_client {
	struct k8s_config cfg;
	pthread_mutex_t lock;	/* guards the token fields */
	char *token;
	time_t token_read_at;
	struct stat token_stat;	/* of the token file when read: a change means a new token */
	bool token_stale;	/* the server answered 401: read the file again */
};

/* Takes ownership of cfg's contents. */
int k8s_client_init(struct k8s_client *c, struct k8s_config *cfg);
void k8s_client_free(struct k8s_client *c);

/* GET server+path; *out is the parsed body (also for error statuses, which
 * carry a Status object). Returns 0 when a response arrived (check *status),
 * or a negative errno with err filled. */
int k8s_get(struct k8s_client *c, const char *path, cJSON **out, long *status, char err[K8S_ERR_LEN]);

/* Any verb: method "GET"|"POST"|"PUT"|"PATCH"|"DELETE"; content_type NULL
 * means application/json; body may be NULL. *out is the parsed response (a
 * Status on errors; NULL if the body was empty or not JSON). Returns 0 when a
 * response arrived (check *status), or a negative errno with err filled. */
int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, cJSON **out, long *status, char err[K8S_ERR_LEN]);
/* The message of a Status body, or a fallback. */
const char *k8s_status_msg(const cJSON *st);

/* Called for every complete watch event; returning non-zero ends the watch. */
typedef int (*k8s_watch_cb)(void *arg, const char *type, cJSON *object);

/* Streams a watch (path must carry watch=1). Returns 0 when the server
 * closed it, -ETIMEDOUT when not a byte arrived for idle_timeout_s seconds
 * (a silent stream on a connection that looks open; 0 disables the check),
 * -ECANCELED when *stop was set or cb asked to stop, other negative errors
 * otherwise. *status is the HTTP status. */
int k8s_watch(struct k8s_client *c, const char *path, int idle_timeout_s, k8s_watch_cb cb, void *arg,
	      const volatile int *stop, long *status, char err[K8S_ERR_LEN]);

/* Splits a byte stream into top-level JSON values, whatever the chunking. */
struct json_stream {
	char *buf;
	size_t len, cap;
	size_t scan;		/* bytes already scanned */
	int depth;
	int in_string, escape;
};
typedef int (*json_stream_cb)(void *arg, const char *json, size_t len);
/* Feeds bytes; cb gets each complete value. Returns cb's first non-zero
 * result, -ENOMEM, or 0. */
int json_stream_feed(struct json_stream *s, const char *data, size_t len, json_stream_cb cb, void *arg);
void json_stream_free(struct json_stream *s);
