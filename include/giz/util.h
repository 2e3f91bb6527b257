/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Small helpers written once for every component (plugin, GService, tools):
 * strict unsigned-integer parsing, the monotonic clock, the identifier checks
 * of the Gizwits protocol (DID, product key, MAC; explicit ASCII ranges, never
 * the locale-dependent <ctype.h> classes), and a growable byte buffer with a
 * hard cap fixed at init (curl's dynbuf idea). No global state; every function
 * is safe to call from any thread.
 */
#ifndef GIZ_UTIL_H
#define GIZ_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- numbers ------------------------------------------------------------------------ */

/* Parses the whole NUL-terminated string `s` as an unsigned integer in
 * [min, max] and stores it in *out (untouched on failure).
 * base 10: decimal digits only. base 16: hex digits, optional "0x"/"0X".
 * base 0: decimal, or hex after a "0x"/"0X" prefix (a leading 0 is still
 * decimal: never octal). No sign, no white space, no empty string, nothing
 * after the digits. Returns GIZ_OK, GIZ_ERR_INVAL (NULL, junk, bad base) or
 * GIZ_ERR_BAD_VALUE (overflow or outside [min, max]). */
int giz_parse_uint(const char *s, int base, uint64_t min, uint64_t max, uint64_t *out);

/* ---- time --------------------------------------------------------------------------- */

/* Nanoseconds / milliseconds of CLOCK_MONOTONIC (arbitrary origin, never goes
 * back, not affected by setting the wall clock). */
uint64_t giz_mono_ns(void);
uint64_t giz_mono_ms(void);

/* ---- identifiers (wire-formats.md "Identifiers") ------------------------------------ */

#define GIZ_ID_DID_LEN 22u /* base62 [0-9A-Za-z] */
#define GIZ_ID_PK_LEN 32u  /* hex; canonical form lowercase */
#define GIZ_ID_MAC_LEN 12u /* hex, no separators; either case */

/* true for '0'-'9', 'a'-'f', 'A'-'F' (ASCII only, locale-independent). */
bool giz_char_is_hex(char c);
/* true for '0'-'9', 'a'-'z', 'A'-'Z' (ASCII only, locale-independent). */
bool giz_char_is_base62(char c);
/* true if s is exactly 22 base62 characters. NULL -> false. */
bool giz_did_valid(const char *s);
/* true if s is exactly 32 hex characters (either case: the GService accepts
 * upper case and stores the lowercase form). NULL -> false. */
bool giz_product_key_valid(const char *s);
/* true if s is exactly 12 hex characters (either case). NULL -> false. */
bool giz_mac_valid(const char *s);

/* ---- capped growable buffer --------------------------------------------------------- */

/* Bytes data[0..len), always followed by a NUL byte once anything was
 * appended (so text can be used as a C string). len never exceeds max, fixed
 * at init. Zero-initialise with giz_buf_init; release with giz_buf_free. */
struct giz_buf {
    uint8_t *data; /* NULL until the first append */
    size_t len;
    size_t alloc; /* bytes allocated (>= len + 1 once allocated) */
    size_t max;   /* hard cap on len */
};

/* Sets up an empty buffer that will never hold more than `max` bytes. */
void giz_buf_init(struct giz_buf *b, size_t max);
/* Appends n bytes (p may be NULL when n == 0). Returns GIZ_OK,
 * GIZ_ERR_OVERSIZE (len + n > max; nothing appended) or GIZ_ERR_NOMEM. */
int giz_buf_append(struct giz_buf *b, const void *p, size_t n);
/* Appends printf-formatted text (without its NUL). Same returns as
 * giz_buf_append; GIZ_ERR_INVAL on a formatting error. */
int giz_buf_printf(struct giz_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int giz_buf_vprintf(struct giz_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (all of them when n >= len); keeps the memory. */
void giz_buf_consume(struct giz_buf *b, size_t n);
/* Empties the buffer, keeps the memory and the cap. */
void giz_buf_reset(struct giz_buf *b);
/* Hands the memory to the caller (who frees it with free(); NULL if nothing
 * was ever appended) and stores the length in *len (if len != NULL). The
 * buffer is empty afterwards and can be reused. */
uint8_t *giz_buf_take(struct giz_buf *b, size_t *len);
/* Frees the memory; the buffer is empty afterwards (cap kept). NULL is ok. */
void giz_buf_free(struct giz_buf *b);

/* ---- growable arrays ---------------------------------------------------------------- */

/* Makes room for at least `need` elements of elem_size bytes in the array
 * `data` whose capacity (in elements) is *cap: returns data itself when it
 * is already big enough, else the reallocated array (capacity doubled from
 * min_cap until it holds need, never above max_cap -- SIZE_MAX means "as
 * many as fit in memory"; *cap updated; the new slots are zeroed). Returns NULL when need > max_cap
 * or out of memory: data and *cap are then unchanged and still valid. The caller stores the result
 * (p = giz_array_reserve(p, &cap, n + 1, sizeof(*p), 16, MAX)) and frees it with free(). data may
 * be NULL with *cap 0. */
void *giz_array_reserve(void *data, size_t *cap, size_t need, size_t elem_size, size_t min_cap,
                        size_t max_cap);

#endif
