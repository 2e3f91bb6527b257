/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Small helpers shared by gizctl and gizsim on top of include/giz/util.h
 * (which gives them integer parsing, the monotonic clock, identifier checks
 * and the capped buffer): floating-point parsing, whole-file reading, URL
 * splitting, wall-clock time, raising the file descriptor limit, and a
 * bounded latency sample set with percentiles.
 */
#ifndef GIZ_TOOLS_UTIL_H
#define GIZ_TOOLS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giz/error.h"
#include "giz/util.h"

/* Parses a whole floating-point string into [min,max]; 0 or -1. */
int util__parse_double(const char *s, double min, double max, double *out);

/* Reads a whole file (at most `max` bytes) into a malloc'd buffer with a NUL
 * appended (not counted in *len). Returns 0, or -1 with errno set (EFBIG when
 * over max). Caller frees *out. */
int util__read_file(const char *path, size_t max, uint8_t **out, size_t *len);

/* Splits "http://host[:port][/prefix]" into host (cap bytes), port (default 80)
 * and a path prefix without trailing slash (may be ""). Returns 0 or -1. */
int util__parse_http_url(const char *url, char *host, size_t host_cap, uint16_t *port, char *prefix,
                         size_t prefix_cap);

/* Milliseconds (with fraction, for latencies) of the one monotonic clock,
 * giz_mono_ns() of include/giz/util.h. */
static inline double util__now_ms(void)
{
    return (double)giz_mono_ns() / 1e6;
}
/* Writes the current UTC time as "2026-11-26T09:30:00.123Z" into out (cap >= 32). */
void util__iso_now(char *out, size_t cap);

/* Raises RLIMIT_NOFILE's soft limit to at least `want` (capped by the hard
 * limit). Returns the soft limit in effect afterwards. */
unsigned long util__raise_nofile(unsigned long want);

/* A latency sample set: keeps every sample up to `cap`, then a uniform
 * reservoir sample; count/min/max/sum are exact. */
struct util_samples {
    double *v;
    size_t n, cap;
    uint64_t count;
    double min, max, sum;
    uint64_t rng;
};
/* Allocates room for cap samples. Returns 0 or -1 (ENOMEM). */
int util__samples_init(struct util_samples *s, size_t cap);
void util__samples_add(struct util_samples *s, double value);
/* Sorts the kept samples (once; adding afterwards is allowed) and returns the
 * p-th percentile (0..100, nearest rank), or 0 when empty. */
double util__samples_pct(struct util_samples *s, double p);
void util__samples_free(struct util_samples *s);

/* Copies the NUL-terminated src into dst[0..cap) (cap > 0), truncating.
 * Returns 0, or -1 when src did not fit (dst then holds the truncated text). */
int util__copy(char *dst, size_t cap, const char *src);

/* xorshift64* step; state must be non-zero. */
uint64_t util__rand(uint64_t *state);

#endif
