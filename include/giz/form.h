/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * application/x-www-form-urlencoded bodies, as Gizwits firmware sends and
 * reads them (`k=v&k=v`). Used by the GService to parse device requests and
 * by the tools to parse GService answers.
 */
#ifndef GIZ_FORM_H
#define GIZ_FORM_H

#include <stddef.h>

#include "giz/error.h"

/* Finds the first `key` in body[0..len) and percent-decodes its value
 * ('+' is a space) into out[0..cap), NUL-terminated, setting *out_len.
 * Returns GIZ_OK, GIZ_ERR_NOT_FOUND, GIZ_ERR_OVERSIZE (value does not fit
 * in cap-1 bytes) or GIZ_ERR_INVAL (bad %-escape, or a decoded NUL byte).
 * Never reads beyond body[len-1]; `body` need not be NUL-terminated. */
int giz_form_get(const char *body, size_t len, const char *key, char *out, size_t cap,
                 size_t *out_len);

/* Checks that body[0..len) is a syntactically valid form body (pairs
 * separated by '&', each with '=', valid %-escapes). Returns GIZ_OK or
 * GIZ_ERR_INVAL with err->offset at the first bad byte. */
int giz_form_validate(const char *body, size_t len, struct giz_error *err);

/* Percent-encodes `in` for use as a form value into out[0..cap) (NUL
 * terminated). Returns GIZ_OK or GIZ_ERR_NOSPACE. */
int giz_form_encode_value(const char *in, char *out, size_t cap);

#endif
