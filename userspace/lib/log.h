/* One logging module for every rota binary: levels, a prefix, and libbpf's
 * messages routed through the same path. */
#pragma once
#include <stdarg.h>

enum rota_log_level {
	ROTA_LOG_WARN = 0,
	ROTA_LOG_INFO = 1,
	ROTA_LOG_DEBUG = 2,
};

void rota_log_init(const char *prog, enum rota_log_level level);
void rota_log_set_level(enum rota_log_level level);
/* Parses "warn|info|debug"; returns -EINVAL for anything else. */
int rota_log_parse_level(const char *s, enum rota_log_level *out);
void rota_log(enum rota_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_warn(...)  rota_log(ROTA_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  rota_log(ROTA_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) rota_log(ROTA_LOG_DEBUG, __VA_ARGS__)
