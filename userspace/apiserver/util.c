/* util.c: growable buffers, base64, random ids, timestamps, file I/O and
 * cJSON conveniences used across rota-apiserver. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "util.h"

int buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = 0;
	return 0;
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, err;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	err = buf_add(b, s, n);
	free(s);
	return err;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = b64chars[in[i] >> 2];
		*o++ = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*o++ = b64chars[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*o++ = b64chars[in[i + 2] & 63];
	}
	if (i < len) {
		*o++ = b64chars[in[i] >> 2];
		if (i + 1 < len) {
			*o++ = b64chars[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*o++ = b64chars[(in[i + 1] & 15) << 2];
		} else {
			*o++ = b64chars[(in[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = 0;
	return out;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int b64_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen)
{
	unsigned char *o = malloc(slen / 4 * 3 + 3);
	size_t n = 0, i, q = 0;
	uint32_t acc = 0;

	if (!o)
		return -ENOMEM;
	while (slen && s[slen - 1] == '=')
		slen--;
	for (i = 0; i < slen; i++) {
		int v = b64val((unsigned char)s[i]);

		if (v < 0) {
			free(o);
			return -EINVAL;
		}
		acc = acc << 6 | v;
		if (++q == 4) {
			o[n++] = acc >> 16;
			o[n++] = acc >> 8;
			o[n++] = acc;
			q = 0;
			acc = 0;
		}
	}
	if (q == 1) {
		free(o);
		return -EINVAL;
	}
	if (q == 2)
		o[n++] = acc >> 4;
	else if (q == 3) {
		o[n++] = acc >> 10;
		o[n++] = acc >> 2;
	}
	o[n] = 0;
	*out = o;
	*outlen = n;
	return 0;
}

int random_bytes(void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom((char *)p + got, n - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += r;
	}
	return 0;
}

int uuid_v4(char out[37])
{
	unsigned char b[16];
	int err = random_bytes(b, sizeof(b));

	if (err)
		return err;
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

void now_rfc3339(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b = { 0 };
	char tmp[65536];
	size_t n;
	int err = 0;

	if (!f)
		return -errno;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		err = buf_add(&b, tmp, n);
		if (err)
			break;
	}
	if (!err && ferror(f))
		err = -EIO;
	fclose(f);
	if (err) {
		buf_free(&b);
		return err;
	}
	if (!b.p && (err = buf_add(&b, "", 0)))
		return err;
	*out = b.p;
	if (len)
		*len = b.len;
	return 0;
}

int write_file(const char *path, const void *data, size_t len, int mode)
{
	char tmp[4096];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t w = write(fd, data, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		data = (const char *)data + w;
		len -= w;
	}
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

const char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

cJSON *json_obj(const cJSON *o, const char *name)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsObject(v) ? v : NULL;
}

cJSON *json_ensure_obj(cJSON *o, const char *name)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (cJSON_IsObject(v))
		return v;
	v = cJSON_CreateObject();
	json_set(o, name, v);
	return v;
}

void json_set(cJSON *o, const char *name, cJSON *v)
{
	if (cJSON_GetObjectItemCaseSensitive(o, name))
		cJSON_ReplaceItemInObjectCaseSensitive(o, name, v);
	else
		cJSON_AddItemToObject(o, name, v);
}

void json_set_str(cJSON *o, const char *name, const char *v)
{
	json_set(o, name, cJSON_CreateString(v));
}

size_t json_size(const cJSON *v)
{
	size_t n = v->string ? strlen(v->string) + 3 : 0;	/* "key": */
	const cJSON *c;

	if (cJSON_IsString(v))
		return n + strlen(v->valuestring) + 2;
	if (cJSON_IsNumber(v))
		return n + 8;
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return n + 5;	/* true, false, null */
	n += 2;
	cJSON_ArrayForEach(c, v)
		n += json_size(c) + 1;
	return n;
}
