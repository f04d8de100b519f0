/* The write verbs librota's read-only client lacks: POST, PUT, PATCH and
 * DELETE with a JSON body, with the same TLS and bearer-token handling. */
#pragma once
#include "k8s/client.h"

/* method "POST"|"PUT"|"PATCH"|"DELETE"; content_type NULL means
 * application/json; body may be NULL. *out is the parsed response (a Status
 * on errors; NULL if the body was empty or not JSON). Returns 0 when a
 * response arrived (check *status), or a negative errno with err filled. */
int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, cJSON **out, long *status, char err[K8S_ERR_LEN]);

/* The message of a Status body, or a fallback. */
const char *k8s_status_msg(const cJSON *st);
