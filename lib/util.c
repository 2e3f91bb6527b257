/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The helpers of include/giz/util.h: whole-string unsigned parsing over
 * strtoull, CLOCK_MONOTONIC in ns/ms, the protocol's identifier checks with
 * explicit ASCII ranges, and the capped growable buffer (giz_buf).
 */
#define _POSIX_C_SOURCE 200809L
#include "giz/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "giz/error.h"

/* ---- numbers ------------------------------------------------------------------------ */

static bool is_digit_in(char c, int base)
{
    return base == 16 ? giz_char_is_hex(c) : (c >= '0' && c <= '9');
}

int giz_parse_uint(const char *s, int base, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *digits;
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || out == NULL || (base != 0 && base != 10 && base != 16)) return GIZ_ERR_INVAL;
    digits = s;
    if (base != 10 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        digits = s + 2;
        base = 16;
    } else if (base == 0) {
        base = 10;
    }
    /* Every character must be a digit of the base: this refuses signs, white
     * space and a second "0x" that strtoull alone would accept. */
    if (digits[0] == '\0') return GIZ_ERR_INVAL;
    for (const char *p = digits; *p != '\0'; p++)
        if (!is_digit_in(*p, base)) return GIZ_ERR_INVAL;
    errno = 0;
    v = strtoull(digits, &end, base);
    if (end == NULL || *end != '\0') return GIZ_ERR_INVAL;
    if (errno == ERANGE || v < min || v > max) return GIZ_ERR_BAD_VALUE;
    *out = (uint64_t)v;
    return GIZ_OK;
}

/* ---- time --------------------------------------------------------------------------- */

uint64_t giz_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t giz_mono_ms(void)
{
    return giz_mono_ns() / 1000000u;
}

/* ---- identifiers -------------------------------------------------------------------- */

bool giz_char_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool giz_char_is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* true if s is exactly len characters, each accepted by ok(). Reads at most
 * len + 1 bytes of s. */
static bool all_of(const char *s, size_t len, bool (*ok)(char))
{
    size_t n = 0;

    if (s == NULL) return false;
    for (; s[n] != '\0'; n++)
        if (n >= len || !ok(s[n])) return false;
    return n == len;
}

bool giz_did_valid(const char *s)
{
    return all_of(s, GIZ_ID_DID_LEN, giz_char_is_base62);
}

bool giz_product_key_valid(const char *s)
{
    return all_of(s, GIZ_ID_PK_LEN, giz_char_is_hex);
}

bool giz_mac_valid(const char *s)
{
    return all_of(s, GIZ_ID_MAC_LEN, giz_char_is_hex);
}

/* ---- capped growable buffer --------------------------------------------------------- */

void giz_buf_init(struct giz_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
}

/* Makes room for `extra` more bytes plus the NUL. GIZ_OK, OVERSIZE or NOMEM. */
static int buf_reserve(struct giz_buf *b, size_t extra)
{
    size_t need, ncap;
    uint8_t *nd;

    if (extra > b->max || b->len > b->max - extra) return GIZ_ERR_OVERSIZE;
    need = b->len + extra + 1;
    if (need <= b->alloc) return GIZ_OK;
    ncap = b->alloc ? b->alloc : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap - 1 > b->max)
        ncap = b->max + 1; /* never past the cap (need - 1 <= max, so no overflow here) */
    nd = realloc(b->data, ncap);
    if (nd == NULL) return GIZ_ERR_NOMEM;
    b->data = nd;
    b->alloc = ncap;
    return GIZ_OK;
}

int giz_buf_append(struct giz_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc != GIZ_OK) return rc;
    if (n > 0) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return GIZ_OK;
}

int giz_buf_vprintf(struct giz_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, rc;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return GIZ_ERR_INVAL;
    rc = buf_reserve(b, (size_t)n);
    if (rc != GIZ_OK) return rc;
    if (vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap) != n) return GIZ_ERR_INVAL;
    b->len += (size_t)n;
    return GIZ_OK;
}

int giz_buf_printf(struct giz_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = giz_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void giz_buf_consume(struct giz_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data != NULL) b->data[b->len] = '\0';
}

void giz_buf_reset(struct giz_buf *b)
{
    giz_buf_consume(b, b->len);
}

uint8_t *giz_buf_take(struct giz_buf *b, size_t *len)
{
    uint8_t *d = b->data;

    if (len != NULL) *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return d;
}

void giz_buf_free(struct giz_buf *b)
{
    if (b == NULL) return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

/* ---- growable arrays ---------------------------------------------------------------- */

void *giz_array_reserve(void *data, size_t *cap, size_t need, size_t elem_size, size_t min_cap,
                        size_t max_cap)
{
    size_t n = *cap;
    unsigned char *p;
    if (need <= n) return data;
    if (elem_size == 0) return NULL;
    if (max_cap > SIZE_MAX / elem_size) max_cap = SIZE_MAX / elem_size; /* SIZE_MAX: no cap */
    if (need > max_cap) return NULL;
    if (n < min_cap) n = min_cap;
    if (n == 0) n = 1;
    while (n < need)
        n = n > max_cap / 2u ? max_cap : n * 2u;
    if (n > max_cap) n = max_cap;
    p = realloc(data, n * elem_size);
    if (p == NULL) return NULL;
    memset(p + *cap * elem_size, 0, (n - *cap) * elem_size);
    *cap = n;
    return p;
}
