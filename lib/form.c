/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * application/x-www-form-urlencoded bodies (`k=v&k=v`) as Gizwits firmware
 * and the GService exchange them: find one key's value and percent-decode
 * it, validate a whole body, percent-encode a value. Bodies are (ptr, len)
 * and need not be NUL-terminated; nothing reads past len.
 *
 * Firmware-style answers end with CRLF (e.g. the OTA v4.1 body), so a body
 * is taken to end at the first CR or LF; keys are compared byte for byte,
 * undecoded, and must match whole ("did" does not match "xdid" or "did2").
 */
#include <stdbool.h>
#include <string.h>

#include "giz/form.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the body proper: up to the first CR or LF. */
static size_t body_end(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (body[i] == '\r' || body[i] == '\n') return i;
    return len;
}

/* Percent-decodes s[0..n) into out[0..cap) (NUL-terminated). */
static int decode_value(const char *s, size_t n, char *out, size_t cap, size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;

            if (n - i < 3) return GIZ_ERR_INVAL;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return GIZ_ERR_INVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '\0') {
            return GIZ_ERR_INVAL; /* a raw NUL would silently cut the C string */
        }
        if (o + 1 >= cap) return GIZ_ERR_OVERSIZE;
        out[o++] = c;
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return GIZ_OK;
}

/* Finds the first `key` and decodes its value; see form.h. A pair without
 * '=' ("k") has an empty value. A NUL byte in the value, raw or as %00,
 * is GIZ_ERR_INVAL. NULL arguments are GIZ_ERR_INVAL, cap 0 is
 * GIZ_ERR_OVERSIZE. */
int giz_form_get(const char *body, size_t len, const char *key, char *out, size_t cap,
                 size_t *out_len)
{
    size_t klen, end, i = 0;

    if ((!body && len) || !key || !out) return GIZ_ERR_INVAL;
    if (cap == 0) return GIZ_ERR_OVERSIZE;
    klen = strlen(key);
    end = body ? body_end(body, len) : 0;
    while (i < end) {
        const char *pair = body + i;
        const char *amp = memchr(pair, '&', end - i);
        size_t plen = amp ? (size_t)(amp - pair) : end - i;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq ? (size_t)(eq - pair) : plen;

        if (nlen == klen && memcmp(pair, key, klen) == 0) {
            if (!eq) return decode_value(pair, 0, out, cap, out_len);
            return decode_value(eq + 1, plen - nlen - 1, out, cap, out_len);
        }
        i += plen + 1;
    }
    return GIZ_ERR_NOT_FOUND;
}

/* Validates a body; see form.h. Rules: the body (up to an optional final
 * CRLF or LF) is empty or pairs joined by '&'; each pair has a non-empty
 * key, one '=' and a value; bytes are printable ASCII except '%' escapes,
 * which need two hex digits and must not decode to NUL. */
int giz_form_validate(const char *body, size_t len, struct giz_error *err)
{
    size_t end, i, pair_start = 0;
    bool seen_eq = false;

    if (!body && len) return giz_error_set(err, GIZ_ERR_INVAL, 0, "NULL body");
    end = len;
    if (end && body[end - 1] == '\n') end--;
    if (end && body[end - 1] == '\r') end--;
    for (i = 0; i < end; i++) {
        char c = body[i];

        if (c == '&') {
            if (!seen_eq) return giz_error_set(err, GIZ_ERR_INVAL, i, "pair without '='");
            pair_start = i + 1;
            seen_eq = false;
        } else if (c == '=') {
            if (seen_eq) return giz_error_set(err, GIZ_ERR_INVAL, i, "second '=' in a pair");
            if (i == pair_start) return giz_error_set(err, GIZ_ERR_INVAL, i, "empty key");
            seen_eq = true;
        } else if (c == '%') {
            if (end - i < 3 || hexval(body[i + 1]) < 0 || hexval(body[i + 2]) < 0)
                return giz_error_set(err, GIZ_ERR_INVAL, i, "bad %-escape");
            if (body[i + 1] == '0' && body[i + 2] == '0')
                return giz_error_set(err, GIZ_ERR_INVAL, i, "%00 in a form");
            i += 2;
        } else if ((unsigned char)c < 0x21 || (unsigned char)c > 0x7E) {
            return giz_error_set(err, GIZ_ERR_INVAL, i, "byte not allowed in a form");
        }
    }
    if (end > 0 && !seen_eq) return giz_error_set(err, GIZ_ERR_INVAL, end, "pair without '='");
    return giz_error_set(err, GIZ_OK, len, "ok");
}

/* Percent-encodes `in`: A-Z a-z 0-9 - . _ ~ stay, space becomes '+',
 * everything else %XX (upper-case hex). */
int giz_form_encode_value(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (!in || !out) return GIZ_ERR_INVAL;
    for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
        unsigned char c = *s;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';

        if (plain || c == ' ') {
            if (cap - o < 2) return GIZ_ERR_NOSPACE;
            out[o++] = plain ? (char)c : '+';
        } else {
            if (cap - o < 4) return GIZ_ERR_NOSPACE;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (cap - o < 1) return GIZ_ERR_NOSPACE;
    out[o] = '\0';
    return GIZ_OK;
}
