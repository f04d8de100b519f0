/* http.h: one HTTP request as the handlers see it, and the helpers that
 * answer it (JSON bodies, Status errors, query and header lookups). */
#pragma once
#include <microhttpd.h>
#include <cjson/cJSON.h>
#include "util.h"

struct apiserver;

struct req {
	struct apiserver *as;
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	struct buf body;
	bool too_large;
	bool answered_early;
	bool close;		/* answer with Connection: close */
	bool retry_after;	/* answer with Retry-After: 1 */
	unsigned *inflight;	/* the counter this request holds a place in */
	char user[128];
	char warnings[2048];	/* "\n"-separated; each becomes a Warning: 299 header */
	enum MHD_Result ret;	/* what the last reply_* returned */
};

enum MHD_Result reply_json(struct req *r, unsigned code, cJSON *obj);
enum MHD_Result reply_json_ctype(struct req *r, unsigned code, cJSON *obj, const char *ctype);
/* Sends a Status with its own code and frees it. */
enum MHD_Result reply_status(struct req *r, cJSON *st);
enum MHD_Result reply_text(struct req *r, unsigned code, const char *ctype, const char *text);
enum MHD_Result reply_bytes(struct req *r, unsigned code, const char *ctype, const void *data,
			    size_t len);
/* Adds a warning to the reply (kubectl prints it as "Warning: text"). */
void req_warn(struct req *r, const char *text);
const char *req_query(struct req *r, const char *name);
const char *req_header(struct req *r, const char *name);
