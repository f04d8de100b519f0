/* Incremental splitter for a stream of JSON objects (a watch body): tracks
 * brace depth outside strings, so an event split across chunks, or several
 * events in one chunk, come out whole. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "client.h"

int json_stream_feed(struct json_stream *s, const char *data, size_t len, json_stream_cb cb, void *arg)
{
	size_t start = 0;
	int ret = 0;

	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *b;

		while (cap < s->len + len + 1)
			cap *= 2;
		b = realloc(s->buf, cap);
		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;

	for (size_t i = s->scan; i < s->len; i++) {
		char ch = s->buf[i];

		if (s->in_string) {
			if (s->escape)
				s->escape = 0;
			else if (ch == '\\')
				s->escape = 1;
			else if (ch == '"')
				s->in_string = 0;
			continue;
		}
		if (ch == '"') {
			s->in_string = 1;
		} else if (ch == '{' || ch == '[') {
			if (s->depth++ == 0)
				start = i;
		} else if ((ch == '}' || ch == ']') && s->depth > 0 && --s->depth == 0) {
			/* Find the value's start: the first '{' or '[' after the previous value. */
			size_t b = start;

			ret = cb(arg, s->buf + b, i + 1 - b);
			if (ret)
				break;
		} else if (s->depth == 0) {
			start = i + 1;
		}
	}
	/* Keep only the unfinished value. */
	if (s->depth == 0 && !ret) {
		s->len = 0;
		s->scan = 0;
	} else {
		size_t keep_from = ret ? s->len : start;

		if (ret) {
			s->len = 0;
			s->scan = 0;
			s->depth = 0;
			s->in_string = s->escape = 0;
		} else {
			memmove(s->buf, s->buf + keep_from, s->len - keep_from);
			s->len -= keep_from;
			s->scan = s->len;
		}
	}
	return ret;
}

void json_stream_free(struct json_stream *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}
