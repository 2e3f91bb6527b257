/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Names and descriptions for enum giz_err, expanded from the one X-macro
 * list GIZ_ERRNO_MAP in include/giz/error.h, and the decoders' helper that
 * fills a struct giz_error.
 */
#include <stdio.h>
#include <string.h>

#include "giz/error.h"

/* Returns the static description of `err`, "unknown error" if unmapped. */
const char *giz_strerror(int err)
{
    switch (err) {
#define GIZ__ERR_TEXT(name, value, text)                                                           \
    case (value):                                                                                  \
        return (text);
        GIZ_ERRNO_MAP(GIZ__ERR_TEXT)
#undef GIZ__ERR_TEXT
    default:
        return "unknown error";
    }
}

/* Returns the static symbolic name of `err`, "UNKNOWN" if unmapped. */
const char *giz_errname(int err)
{
    switch (err) {
#define GIZ__ERR_NAME(name, value, text)                                                           \
    case (value):                                                                                  \
        return #name;
        GIZ_ERRNO_MAP(GIZ__ERR_NAME)
#undef GIZ__ERR_NAME
    default:
        return "UNKNOWN";
    }
}

/* Fills `e` (when not NULL) with code, offset and a copy of `text`
 * (truncated to fit, NULL = the code's description); returns `code`. */
int giz_error_set(struct giz_error *e, int code, size_t offset, const char *text)
{
    if (e) {
        e->code = code;
        e->offset = offset;
        snprintf(e->text, sizeof e->text, "%s", text ? text : giz_strerror(code));
    }
    return code;
}
