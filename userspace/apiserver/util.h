/* util.h: small helpers shared by the apiserver files: growable buffers,
 * base64, random ids and timestamps. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct buf {
	char *p;
	size_t len, cap;
};

int buf_add(struct buf *b, const void *data, size_t len);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

/* Standard base64 with padding; returns a malloc'd NUL-terminated string. */
char *b64_encode(const void *data, size_t len);
/* Accepts padded or unpadded standard base64; -EINVAL on bad input. */
int b64_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen);

int random_bytes(void *p, size_t n);
/* RFC 4122 version 4 UUID into out[37]. */
int uuid_v4(char out[37]);
/* RFC 3339 UTC timestamp, seconds precision, into out[21]. */
void now_rfc3339(char out[32]);

int read_file(const char *path, char **out, size_t *len);
/* Writes atomically (temp file + rename) with the given mode. */
int write_file(const char *path, const void *data, size_t len, int mode);

/* cJSON helpers: NULL when missing or of another type. */
const char *json_str(const cJSON *o, const char *name);
cJSON *json_obj(const cJSON *o, const char *name);
/* Returns o[name], creating an empty object there if missing or not an object. */
cJSON *json_ensure_obj(cJSON *o, const char *name);
void json_set_str(cJSON *o, const char *name, const char *v);
void json_set(cJSON *o, const char *name, cJSON *v);
/* Bytes v takes printed unformatted (strings counted unescaped): cheap
 * enough to bound growth before a copy is made. */
size_t json_size(const cJSON *v);
