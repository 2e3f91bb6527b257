/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * One error enum for the whole shared library, generated from the X-macro
 * list GIZ_ERRNO_MAP so that the enum, giz_errname() and giz_strerror()
 * can never disagree. Codes are negative; GIZ_OK is 0.
 */
#ifndef GIZ_ERROR_H
#define GIZ_ERROR_H

#include <stddef.h>

#define GIZ_ERRNO_MAP(X)                                                                           \
    X(OK, 0, "success")                                                                            \
    X(TRUNCATED, -1, "input ends before the message does")                                         \
    X(BAD_HEADER, -2, "fixed header is not 0x00000003")                                            \
    X(BAD_VARINT, -3, "variable length is longer than 4 bytes")                                    \
    X(LENGTH_MISMATCH, -4, "length field disagrees with the input")                                \
    X(TRAILING, -5, "trailing bytes after the message")                                            \
    X(UNKNOWN_CMD, -6, "unknown command")                                                          \
    X(OVERSIZE, -7, "field exceeds its maximum size")                                              \
    X(BAD_UTF8, -8, "text is not valid UTF-8")                                                     \
    X(BAD_FLAGS, -9, "flags byte is not 0x00")                                                     \
    X(BAD_VALUE, -10, "field value out of range")                                                  \
    X(NOMEM, -11, "out of memory")                                                                 \
    X(NOSPACE, -12, "output buffer too small")                                                     \
    X(INVAL, -13, "invalid argument")                                                              \
    X(BAD_PACKET, -14, "malformed MQTT packet")                                                    \
    X(NOT_FOUND, -20, "not found")                                                                 \
    X(EXISTS, -21, "already exists")                                                               \
    X(DB, -22, "database error")                                                                   \
    X(SCHEMA_NEWER, -23, "database schema is newer than this program")                             \
    X(AUTH, -24, "authentication failed")                                                          \
    X(DISABLED, -25, "device is disabled")                                                         \
    X(EXPIRED, -26, "token expired")                                                               \
    X(IO, -27, "input/output error")                                                               \
    X(CRYPTO, -28, "cryptographic library error")

enum giz_err {
#define GIZ__ERR_ENUM(name, value, text) GIZ_ERR_##name = (value),
    GIZ_ERRNO_MAP(GIZ__ERR_ENUM)
#undef GIZ__ERR_ENUM
};
#define GIZ_OK GIZ_ERR_OK

/* Where and why a decoder stopped. `offset` is the byte offset into the
 * input at which the problem was found; `text` is a short, NUL-terminated
 * human-readable detail (never contains input bytes). */
struct giz_error {
    int code;
    size_t offset;
    char text[96];
};

/* Returns a static, human-readable description of `err` ("unknown error"
 * for values outside the map). Never NULL; nothing to free. */
const char *giz_strerror(int err);

/* Returns the static symbolic name of `err` without prefix, e.g. "TRUNCATED";
 * "UNKNOWN" for values outside the map. */
const char *giz_errname(int err);

/* Fills `e` (if not NULL) and returns `code`; a helper for decoders. */
int giz_error_set(struct giz_error *e, int code, size_t offset, const char *text);

#endif
