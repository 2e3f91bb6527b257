/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Implementation of the small shared helpers of the tools (see util.h):
 * floating-point parsing, file reading (into a capped giz_buf), URL
 * splitting, the wall clock, the file descriptor limit and bounded latency
 * sample sets.
 */
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

int util__parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double v;

    if (s == NULL || *s == '\0') return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || isnan(v) || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int util__read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
    FILE *f = NULL;
    struct giz_buf buf;
    uint8_t chunk[4096];
    int rc = -1;

    giz_buf_init(&buf, max);
    f = fopen(path, "rb");
    if (f == NULL) goto cleanup;
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, f);
        int brc = giz_buf_append(&buf, chunk, n);
        if (brc != GIZ_OK) {
            errno = brc == GIZ_ERR_OVERSIZE ? EFBIG : ENOMEM;
            goto cleanup;
        }
        if (n == 0) {
            if (ferror(f)) goto cleanup;
            break;
        }
    }
    if (buf.data == NULL) { /* not reached: the first append allocates, even of 0 bytes */
        errno = ENOMEM;
        goto cleanup;
    }
    *out = giz_buf_take(&buf, len);
    rc = 0;
cleanup:
    if (f != NULL) fclose(f);
    giz_buf_free(&buf);
    return rc;
}

int util__parse_http_url(const char *url, char *host, size_t host_cap, uint16_t *port, char *prefix,
                         size_t prefix_cap)
{
    const char *p = url, *host_end, *slash, *colon;
    size_t hlen;
    uint64_t pv = 80;

    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://") != NULL)
        return -1;
    slash = strchr(p, '/');
    host_end = slash != NULL ? slash : p + strlen(p);
    colon = memchr(p, ':', (size_t)(host_end - p));
    hlen = (size_t)((colon != NULL ? colon : host_end) - p);
    if (hlen == 0 || hlen >= host_cap) return -1;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    if (colon != NULL) {
        char num[8];
        size_t nlen = (size_t)(host_end - colon - 1);
        if (nlen == 0 || nlen >= sizeof num) return -1;
        memcpy(num, colon + 1, nlen);
        num[nlen] = '\0';
        if (giz_parse_uint(num, 10, 1, 65535, &pv) != GIZ_OK) return -1;
    }
    *port = (uint16_t)pv;
    if (prefix != NULL) {
        size_t plen = slash != NULL ? strlen(slash) : 0;
        while (plen > 0 && slash[plen - 1] == '/')
            plen--;
        if (plen >= prefix_cap) return -1;
        if (plen > 0) memcpy(prefix, slash, plen);
        prefix[plen] = '\0';
    }
    return 0;
}

void util__iso_now(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    char base[24];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03ldZ", base, ts.tv_nsec / 1000000L);
}

unsigned long util__raise_nofile(unsigned long want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < want) {
        rlim_t target = want;
        if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max) target = rl.rlim_max;
        rl.rlim_cur = target;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (unsigned long)rl.rlim_cur;
}

int util__copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    int rc = 0;
    if (n >= cap) {
        n = cap - 1;
        rc = -1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return rc;
}

uint64_t util__rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

int util__samples_init(struct util_samples *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    s->v = malloc((cap > 0 ? cap : 1) * sizeof *s->v);
    if (s->v == NULL) return -1;
    s->cap = cap > 0 ? cap : 1;
    s->rng = 0x9E3779B97F4A7C15ULL;
    return 0;
}

void util__samples_add(struct util_samples *s, double value)
{
    if (s->v == NULL) return;
    if (s->count == 0 || value < s->min) s->min = value;
    if (s->count == 0 || value > s->max) s->max = value;
    s->sum += value;
    s->count++;
    if (s->n < s->cap) {
        s->v[s->n++] = value;
    } else {
        uint64_t j = util__rand(&s->rng) % s->count;
        if (j < s->cap) s->v[j] = value;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double util__samples_pct(struct util_samples *s, double p)
{
    size_t rank;

    if (s->v == NULL || s->n == 0) return 0.0;
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    rank = (size_t)ceil(p / 100.0 * (double)s->n);
    if (rank < 1) rank = 1;
    if (rank > s->n) rank = s->n;
    return s->v[rank - 1];
}

void util__samples_free(struct util_samples *s)
{
    if (s == NULL) return;
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}
