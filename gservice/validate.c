/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Input checks shared by the routes of giz-gservice: the Gizwits identifiers
 * (DID, product key, MAC: the giz/util.h checks, explicit ASCII ranges),
 * firmware version strings, and UTF-8 for JSON bodies. Pure functions; none
 * of them answers a request.
 */
#include <stddef.h>

#include "giz/util.h"
#include "gservice.h"

bool gs_valid_did(const char *s)
{
    return giz_did_valid(s);
}

bool gs_valid_product_key(char *s)
{
    if (!giz_product_key_valid(s)) return false;
    for (size_t n = 0; s[n] != '\0'; n++)
        if (s[n] >= 'A' && s[n] <= 'F') s[n] = (char)(s[n] - 'A' + 'a');
    return true;
}

bool gs_valid_mac(const char *s)
{
    return giz_mac_valid(s);
}

bool gs_valid_version(const char *s, bool allow_empty)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= GIZ_VER_SIZE - 1 || !(giz_char_is_base62(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0 || allow_empty;
}

/* True if p[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). JSON text must be UTF-8 (RFC 8259);
 * cJSON copies any bytes into strings, which would end up in the store and
 * in other clients' answers. */
bool gs_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len) return false;
        unsigned cp = c & (0x7fu >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}
