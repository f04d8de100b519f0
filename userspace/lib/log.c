/* Logging to stderr with a program prefix; libbpf warnings go through it so
 * users see them once, formatted alike. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "log.h"

static const char *log_prog = "rota";
static enum rota_log_level log_level = ROTA_LOG_INFO;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum rota_log_level l = level == LIBBPF_WARN ? ROTA_LOG_WARN :
				level == LIBBPF_INFO ? ROTA_LOG_INFO : ROTA_LOG_DEBUG;

	/* libbpf's info lines are loader chatter: show them only when debugging. */
	if (l != ROTA_LOG_WARN && log_level < ROTA_LOG_DEBUG)
		return 0;
	fprintf(stderr, "%s: libbpf: ", log_prog);
	return vfprintf(stderr, fmt, ap);
}

void rota_log_init(const char *prog, enum rota_log_level level)
{
	log_prog = prog;
	log_level = level;
	libbpf_set_print(libbpf_print);
}

void rota_log_set_level(enum rota_log_level level)
{
	log_level = level;
}

int rota_log_parse_level(const char *s, enum rota_log_level *out)
{
	if (!strcmp(s, "warn"))
		*out = ROTA_LOG_WARN;
	else if (!strcmp(s, "info"))
		*out = ROTA_LOG_INFO;
	else if (!strcmp(s, "debug"))
		*out = ROTA_LOG_DEBUG;
	else
		return -EINVAL;
	return 0;
}

void rota_log(enum rota_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	/* One locked write per line: agents log from several threads. */
	flockfile(stderr);
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", log_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	funlockfile(stderr);
}
