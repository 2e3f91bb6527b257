/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Logging for every component. By default lines go to stderr as
 * "2026-11-26T09:30:00.123Z gservice info: text"
 * (ISO 8601 UTC with milliseconds; the broker's mosquitto.conf sets the same
 * shape, to the second, for mosquitto's own prefix); the plugin installs a sink that
 * forwards to mosquitto_log_printf. Secrets (passcodes, passwords, tokens)
 * are never passed to these functions: callers log identifiers only.
 */
#ifndef GIZ_LOG_H
#define GIZ_LOG_H

#include <stdarg.h>

enum giz_log_lvl { GIZ_LOG_ERR = 0, GIZ_LOG_WARN = 1, GIZ_LOG_INFO = 2, GIZ_LOG_DEBUG = 3 };

typedef void (*giz_log_sink_cb)(enum giz_log_lvl lvl, const char *line, void *ud);

/* Sets the program name shown in lines and the most verbose level printed. */
void giz_log_init(const char *progname, enum giz_log_lvl max_level);
/* Replaces the stderr sink (NULL restores it). The sink gets the formatted
 * message without timestamp/program prefix. Not thread-safe vs logging. */
void giz_log_set_sink(giz_log_sink_cb cb, void *ud);
/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int giz_log_level_parse(const char *name);

#if defined(__GNUC__)
#define GIZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GIZ_PRINTF(a, b)
#endif

/* Thread-safe: one write(2) per line on the stderr sink. */
void giz_log(enum giz_log_lvl lvl, const char *fmt, ...) GIZ_PRINTF(2, 3);
void giz_logv(enum giz_log_lvl lvl, const char *fmt, va_list ap) GIZ_PRINTF(2, 0);

#endif
