/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for form bodies. The input is split at its first NUL
 * into a key and a body (no NUL: fixed firmware keys against the whole
 * input). Invariants: giz_form_get's value is NUL-terminated, holds no NUL,
 * fits the capacity and is no longer than the body; a smaller capacity
 * fails only with OVERSIZE; validate reports offsets inside the body; a
 * value percent-encoded and put back into a body decodes to itself.
 */
#include <string.h>

#include "fuzz.h"
#include "giz/form.h"

static void check_get(const char *body, size_t len, const char *key)
{
    static char out[4096], small[8], enc[3 * 4096 + 1], body2[3 * 4096 + 16], back[4096];
    size_t n = 0, n2 = 0;
    int rc = giz_form_get(body, len, key, out, sizeof out, &n);

    FUZZ_CHECK(rc == GIZ_OK || rc == GIZ_ERR_NOT_FOUND || rc == GIZ_ERR_OVERSIZE ||
               rc == GIZ_ERR_INVAL);
    if (rc != GIZ_OK) return;
    FUZZ_CHECK(n < sizeof out && n <= len && out[n] == 0 && strlen(out) == n);
    rc = giz_form_get(body, len, key, small, sizeof small, &n2);
    FUZZ_CHECK(n < sizeof small ? (rc == GIZ_OK && n2 == n && memcmp(small, out, n) == 0)
                                : rc == GIZ_ERR_OVERSIZE);
    /* encode the value, make a body of it, read it back */
    FUZZ_CHECK(giz_form_encode_value(out, enc, sizeof enc) == GIZ_OK);
    snprintf(body2, sizeof body2, "a=1&k=%s&z=2", enc);
    FUZZ_CHECK(giz_form_validate(body2, strlen(body2), NULL) == GIZ_OK);
    FUZZ_CHECK(giz_form_get(body2, strlen(body2), "k", back, sizeof back, &n2) == GIZ_OK);
    FUZZ_CHECK(n2 == n && memcmp(back, out, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"did",  "passcode", "mac",      "product_key",
                                       "port", "host",     "soft_ver", "download_url",
                                       "type", "data",     ""};
    static char key[64];
    const uint8_t *nul = memchr(data, 0, size);
    const char *body = (const char *)data;
    size_t len = size;
    struct giz_error err;
    int rc;

    if (nul && (size_t)(nul - data) < sizeof key) {
        size_t klen = (size_t)(nul - data);

        memcpy(key, data, klen);
        key[klen] = 0;
        body = (const char *)nul + 1;
        len = size - klen - 1;
        check_get(body, len, key);
    } else {
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            check_get(body, len, keys[i]);
    }
    memset(&err, 0, sizeof err);
    rc = giz_form_validate(body, len, &err);
    FUZZ_CHECK(rc == GIZ_OK || rc == GIZ_ERR_INVAL);
    FUZZ_CHECK(err.code == rc && err.offset <= len);
    return 0;
}
