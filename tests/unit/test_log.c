/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the logger: the exact stderr line format (captured by
 * pointing fd 2 at a temp file), level filtering, level names, the sink
 * override, truncation of long messages, whole lines when several
 * threads log at once, and a UTC stamp with milliseconds whatever TZ says.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "giz/log.h"
#include "test.h"

#define THREADS 4
#define PER_THREAD 500
#define TS_LEN 25 /* "2026-12-02T06:18:19.123Z " */

static char capture_path[256];
static int saved_stderr = -1;

static void capture_start(void)
{
    FILE *f = fopen(capture_path, "w");
    if (f) fclose(f);
    fflush(stderr);
    saved_stderr = dup(2);
    f = fopen(capture_path, "a");
    if (f) {
        dup2(fileno(f), 2);
        fclose(f);
    }
}

/* Restores stderr and returns the captured bytes (caller frees). */
static char *capture_end(size_t *len)
{
    char *buf = NULL;
    long size;
    FILE *f;

    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    *len = 0;
    f = fopen(capture_path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size + 1);
        if (buf) {
            *len = fread(buf, 1, (size_t)size, f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ " (ISO 8601 UTC with milliseconds) */
static bool is_timestamp(const char *p)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        if (shape[i] == 'd') {
            if (p[i] < '0' || p[i] > '9') return false;
        } else if (p[i] != shape[i]) {
            return false;
        }
    }
    return true;
}

TEST_CASE(format)
{
    size_t len;
    char *out;

    giz_log_init("gservice", GIZ_LOG_INFO);
    capture_start();
    giz_log(GIZ_LOG_INFO, "hello %s %d", "world", 42);
    giz_log(GIZ_LOG_ERR, "bad thing");
    giz_log(GIZ_LOG_WARN, "multi\nline\rtext");
    giz_log(GIZ_LOG_DEBUG, "hidden at info");
    out = capture_end(&len);
    ASSERT_TRUE(out != NULL);
    if (!out) return;
    {
        char *l1 = out, *l2 = l1 ? strchr(l1, '\n') : NULL, *l3;
        ASSERT_TRUE(l2 != NULL);
        if (!l2) goto done;
        *l2++ = '\0';
        l3 = strchr(l2, '\n');
        ASSERT_TRUE(l3 != NULL);
        if (!l3) goto done;
        *l3++ = '\0';
        ASSERT_TRUE(is_timestamp(l1));
        ASSERT_STREQ(l1 + TS_LEN, "gservice info: hello world 42");
        ASSERT_TRUE(is_timestamp(l2));
        ASSERT_STREQ(l2 + TS_LEN, "gservice error: bad thing");
        ASSERT_TRUE(is_timestamp(l3));
        ASSERT_STREQ(l3 + TS_LEN, "gservice warn: multi line text\n");
    }
done:
    ASSERT_TRUE(strstr(out, "hidden") == NULL);
    free(out);

    giz_log_init("plugin", GIZ_LOG_DEBUG);
    capture_start();
    giz_log(GIZ_LOG_DEBUG, "now visible");
    out = capture_end(&len);
    ASSERT_TRUE(out && strstr(out, " plugin debug: now visible\n") != NULL);
    free(out);

    giz_log_init(NULL, GIZ_LOG_ERR);
    capture_start();
    giz_log(GIZ_LOG_WARN, "filtered");
    giz_log(GIZ_LOG_ERR, "kept");
    out = capture_end(&len);
    ASSERT_TRUE(out && strstr(out, " plugin error: kept\n") != NULL);
    ASSERT_TRUE(out && strstr(out, "filtered") == NULL);
    free(out);
}

TEST_CASE(truncation)
{
    char *big = malloc(5000), *out;
    size_t len;
    if (!big) return;
    memset(big, 'x', 4999);
    big[4999] = '\0';
    giz_log_init("t", GIZ_LOG_INFO);
    capture_start();
    giz_log(GIZ_LOG_INFO, "%s", big);
    out = capture_end(&len);
    ASSERT_TRUE(out != NULL);
    if (out) {
        ASSERT_TRUE(len > 1000 && len < 1200);
        ASSERT_EQ(out[len - 1], '\n');
        ASSERT_TRUE(strstr(out, "...\n") != NULL);
        ASSERT_EQ(strchr(out, '\n') - out, (long)len - 1); /* one line */
    }
    free(out);
    free(big);
}

struct sink_rec {
    int calls;
    enum giz_log_lvl lvl;
    char line[256];
};

static void rec_sink(enum giz_log_lvl lvl, const char *line, void *ud)
{
    struct sink_rec *r = ud;
    r->calls++;
    r->lvl = lvl;
    snprintf(r->line, sizeof r->line, "%s", line);
}

TEST_CASE(sink)
{
    struct sink_rec r;
    size_t len;
    char *out;

    memset(&r, 0, sizeof r);
    giz_log_init("plugin", GIZ_LOG_INFO);
    giz_log_set_sink(rec_sink, &r);
    capture_start();
    giz_log(GIZ_LOG_WARN, "to the sink %d", 7);
    giz_log(GIZ_LOG_DEBUG, "filtered before the sink");
    out = capture_end(&len);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.lvl, GIZ_LOG_WARN);
    ASSERT_STREQ(r.line, "to the sink 7");
    ASSERT_EQ(len, 0); /* nothing on stderr */
    free(out);
    giz_log_set_sink(NULL, NULL);
    capture_start();
    giz_log(GIZ_LOG_INFO, "back on stderr");
    out = capture_end(&len);
    ASSERT_EQ(r.calls, 1);
    ASSERT_TRUE(out && strstr(out, "plugin info: back on stderr\n") != NULL);
    free(out);
}

TEST_CASE(parse)
{
    ASSERT_EQ(giz_log_level_parse("error"), GIZ_LOG_ERR);
    ASSERT_EQ(giz_log_level_parse("warn"), GIZ_LOG_WARN);
    ASSERT_EQ(giz_log_level_parse("info"), GIZ_LOG_INFO);
    ASSERT_EQ(giz_log_level_parse("debug"), GIZ_LOG_DEBUG);
    ASSERT_EQ(giz_log_level_parse("verbose"), -1);
    ASSERT_EQ(giz_log_level_parse(""), -1);
    ASSERT_EQ(giz_log_level_parse(NULL), -1);
}

static void *log_thread(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < PER_THREAD; i++)
        giz_log(GIZ_LOG_INFO, "thread %ld message %d %s", id, i,
                "padding-padding-padding-padding-padding-padding-padding-padding");
    return NULL;
}

TEST_CASE(threads)
{
    pthread_t th[THREADS];
    int counts[THREADS] = {0}, bad = 0, lines = 0;
    size_t len;
    char *out, *line, *next;

    giz_log_init("mt", GIZ_LOG_INFO);
    capture_start();
    for (long i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, log_thread, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    out = capture_end(&len);
    ASSERT_TRUE(out != NULL);
    if (!out) return;
    for (line = out; *line; line = next) {
        long id = -1;
        int n = -1;
        char tail[80];
        next = strchr(line, '\n');
        if (!next) {
            bad++; /* unterminated last line */
            break;
        }
        *next++ = '\0';
        lines++;
        if (!is_timestamp(line) ||
            sscanf(line + TS_LEN, "mt info: thread %ld message %d %79s", &id, &n, tail) != 3 ||
            id < 0 || id >= THREADS ||
            strcmp(tail, "padding-padding-padding-padding-padding-"
                         "padding-padding-padding") != 0) {
            bad++;
            continue;
        }
        counts[id]++;
    }
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(lines, THREADS * PER_THREAD);
    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ(counts[i], PER_THREAD);
    free(out);
}

/* Seconds since the epoch of a "YYYY-MM-DDTHH:MM:SS" prefix read as UTC
 * (days-from-civil, so the test does not depend on timegm or TZ). */
static long long utc_seconds(const char *p)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
    long long era, yoe, doy, doe;
    if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6) return -1;
    y -= mo <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153LL * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (era * 146097 + doe - 719468) * 86400LL + h * 3600LL + mi * 60LL + se;
}

/* The stamp is UTC even when TZ says otherwise: under TZ=UTC-8 a local-time
 * stamp would be 8 h off the epoch clock. */
TEST_CASE(utc)
{
    size_t len;
    char *out;
    long long stamp, now;

    setenv("TZ", "UTC-8", 1);
    tzset();
    giz_log_init("tz", GIZ_LOG_INFO);
    capture_start();
    giz_log(GIZ_LOG_INFO, "which zone");
    out = capture_end(&len);
    now = (long long)time(NULL);
    ASSERT_TRUE(out != NULL && is_timestamp(out));
    if (out) {
        stamp = utc_seconds(out);
        ASSERT_TRUE(stamp > 0);
        ASSERT_TRUE(stamp <= now && now - stamp < 3600);
        ASSERT_STREQ(out + TS_LEN, "tz info: which zone\n");
    }
    free(out);
    unsetenv("TZ");
    tzset();
}

/* The capture file of this process (TMPDIR or /tmp), set before any case runs. */
static void capture_path_set(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(capture_path, sizeof capture_path, "%s/giz_log_test_%ld.txt",
             tmp && *tmp ? tmp : "/tmp", (long)getpid());
}

static void capture_path_remove(void)
{
    unlink(capture_path);
}

TEST_LIST(TEST_ENTRY(parse), TEST_ENTRY(format), TEST_ENTRY(truncation), TEST_ENTRY(sink),
          TEST_ENTRY(threads), TEST_ENTRY(utc));
TEST_MAIN_WITH(capture_path_set, capture_path_remove)
