/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Logging for every component. The default sink writes each line to stderr
 * as "2026-11-26T09:30:00.123Z <prog> <level>: <text>\n"
 * (ISO 8601, UTC, milliseconds) with a single write(2),
 * so lines from several threads or processes sharing stderr never interleave
 * mid-line. The broker plugin replaces the sink with one that forwards the
 * bare message to mosquitto_log_printf. Messages longer than the line buffer
 * are truncated (marked with "...").
 */
#define _POSIX_C_SOURCE 200809L
#include "giz/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MSG_MAX 1024
#define LOG_PROG_MAX 32

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_prog[LOG_PROG_MAX] = "giz";
static enum giz_log_lvl log_max = GIZ_LOG_INFO;
static giz_log_sink_cb log_sink;
static void *log_sink_ud;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Sets the program name (truncated to 31 bytes; NULL keeps it) and the most
 * verbose level printed. */
void giz_log_init(const char *progname, enum giz_log_lvl max_level)
{
    pthread_mutex_lock(&log_lock);
    if (progname) snprintf(log_prog, sizeof log_prog, "%s", progname);
    if (max_level >= GIZ_LOG_ERR && max_level <= GIZ_LOG_DEBUG) log_max = max_level;
    pthread_mutex_unlock(&log_lock);
}

/* Replaces the stderr sink with cb (NULL restores stderr). */
void giz_log_set_sink(giz_log_sink_cb cb, void *ud)
{
    pthread_mutex_lock(&log_lock);
    log_sink = cb;
    log_sink_ud = ud;
    pthread_mutex_unlock(&log_lock);
}

/* Returns the level for "error|warn|info|debug" (also "err", "warning"),
 * or -1 if unknown or NULL. */
int giz_log_level_parse(const char *name)
{
    if (!name) return -1;
    if (strcmp(name, "error") == 0 || strcmp(name, "err") == 0) return GIZ_LOG_ERR;
    if (strcmp(name, "warn") == 0 || strcmp(name, "warning") == 0) return GIZ_LOG_WARN;
    if (strcmp(name, "info") == 0) return GIZ_LOG_INFO;
    if (strcmp(name, "debug") == 0) return GIZ_LOG_DEBUG;
    return -1;
}

static void write_all_once(const char *buf, size_t len)
{
    ssize_t n;
    do {
        n = write(STDERR_FILENO, buf, len);
    } while (n < 0 && errno == EINTR);
}

/* Writes the current time as "2026-12-02T06:18:19.123Z" (ISO 8601, UTC,
 * milliseconds) into ts (at least 25 bytes); the epoch on a clock failure. */
static void format_timestamp(char *ts, size_t size)
{
    struct timespec now;
    struct tm tm;
    char secs[24];
    long ms;

    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
        now.tv_sec = 0;
        now.tv_nsec = 0;
    }
    ms = now.tv_nsec / 1000000L;
    if (ms < 0 || ms > 999) ms = 0;
    if (!gmtime_r(&now.tv_sec, &tm) || strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(secs, sizeof secs, "1970-01-01T00:00:00");
    snprintf(ts, size, "%s.%03ldZ", secs, ms);
}

/* Formats and emits one message if lvl is enabled. Never fails visibly. */
void giz_logv(enum giz_log_lvl lvl, const char *fmt, va_list ap)
{
    char msg[LOG_MSG_MAX];
    char line[LOG_MSG_MAX + LOG_PROG_MAX + 48];
    char prog[LOG_PROG_MAX];
    giz_log_sink_cb sink;
    void *sink_ud;
    enum giz_log_lvl max;
    int n;

    if (lvl < GIZ_LOG_ERR || lvl > GIZ_LOG_DEBUG || !fmt) return;
    pthread_mutex_lock(&log_lock);
    max = log_max;
    sink = log_sink;
    sink_ud = log_sink_ud;
    memcpy(prog, log_prog, sizeof prog);
    pthread_mutex_unlock(&log_lock);
    if (lvl > max) return;

    n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0) {
        snprintf(msg, sizeof msg, "(unformattable log message)");
    } else if ((size_t)n >= sizeof msg) {
        memcpy(msg + sizeof msg - 4, "...", 4);
    }
    /* Keep one message one line. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';

    if (sink) {
        sink(lvl, msg, sink_ud);
    } else {
        char ts[32];
        format_timestamp(ts, sizeof ts);
        n = snprintf(line, sizeof line, "%s %s %s: %s\n", ts, prog, level_names[lvl], msg);
        if (n > 0) {
            size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
            line[len - 1] = '\n';
            write_all_once(line, len);
        }
    }
}

void giz_log(enum giz_log_lvl lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    giz_logv(lvl, fmt, ap);
    va_end(ap);
}
