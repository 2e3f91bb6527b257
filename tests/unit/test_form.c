/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of form bodies (lib/form.c): the firmware's request and answer
 * bodies from wire-formats.md, exact key matching, percent-decoding,
 * refusals, and reads that must stay inside `len` (checked by giving the
 * functions heap copies with no NUL, under ASan).
 */
#include <stdlib.h>

#include "giz/form.h"
#include "test.h"

/* giz_form_get on an exact-size heap copy (no terminator to lean on). */
static int get(const char *body, const char *key, char *out, size_t cap, size_t *n)
{
    size_t len = strlen(body);
    char *copy = malloc(len ? len : 1);
    int rc;

    memcpy(copy, body, len);
    rc = giz_form_get(copy, len, key, out, cap, n);
    free(copy);
    return rc;
}

TEST_CASE(get)
{
    char v[64];
    size_t n = 0;
    const char *reg =
        "passcode=0aeb9953f9&mac=00163E002CAC&product_key=0aeb9953f97c49d6be32c46487e59400";
    const char *prov =
        "host=127.0.0.1&port=1883&server_ts=1764150000&log_host=127.0.0.1&log_port=80"
        "&biz_log=0&sys_log=0";

    ASSERT_EQ(get(reg, "passcode", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "0aeb9953f9");
    ASSERT_EQ(n, 10);
    ASSERT_EQ(get(reg, "mac", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "00163E002CAC");
    ASSERT_EQ(get(reg, "product_key", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "0aeb9953f97c49d6be32c46487e59400");
    ASSERT_EQ(get(reg, "type", v, sizeof v, &n), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(get(prov, "port", v, sizeof v, &n), GIZ_OK); /* not "log_port" */
    ASSERT_STREQ(v, "1883");
    ASSERT_EQ(get(prov, "log_port", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "80");
    ASSERT_EQ(get(prov, "host", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "127.0.0.1");

    /* exact key match */
    ASSERT_EQ(get("xdid=1&did2=2", "did", v, sizeof v, &n), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(get("xdid=1&did2=2&did=3", "did", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "3");
    ASSERT_EQ(get("a=did&did=", "did", v, sizeof v, &n), GIZ_OK); /* empty value */
    ASSERT_STREQ(v, "");
    ASSERT_EQ(n, 0);
    ASSERT_EQ(get("did=1&did=2", "did", v, sizeof v, &n), GIZ_OK); /* first one */
    ASSERT_STREQ(v, "1");
    ASSERT_EQ(get("flag&did=x", "flag", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "");
    ASSERT_EQ(get("", "did", v, sizeof v, &n), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(get("did", "di", v, sizeof v, &n), GIZ_ERR_NOT_FOUND);

    /* decoding */
    ASSERT_EQ(get("u=http%3A%2F%2Fh%2Fdev%2Fota%2Fdownload%2F1&x=1", "u", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "http://h/dev/ota/download/1");
    ASSERT_EQ(get("r=a+b%20c%2b", "r", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "a b c+");
    ASSERT_EQ(get("r=%e2%82%ac", "r", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "\xE2\x82\xAC");
    ASSERT_EQ(n, 3);
    ASSERT_EQ(get("r=%4", "r", v, sizeof v, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(get("r=%zz", "r", v, sizeof v, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(get("r=a%00b", "r", v, sizeof v, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(get("r=%", "r", v, sizeof v, &n), GIZ_ERR_INVAL);
    /* a raw NUL inside len is refused too (found by fuzz_form) */
    ASSERT_EQ(giz_form_get("r=a\0b&s=1", 9, "r", v, sizeof v, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_form_get("r=a\0b&s=1", 9, "s", v, sizeof v, &n), GIZ_OK);

    /* firmware-style answer ending in CRLF: the value stops there */
    ASSERT_EQ(get("soft_ver=04020021&download_url=http://h/dev/ota/v4.1/download/7\r\n",
                  "download_url", v, sizeof v, &n),
              GIZ_OK);
    ASSERT_STREQ(v, "http://h/dev/ota/v4.1/download/7");

    /* capacity: the value plus NUL must fit */
    ASSERT_EQ(get("k=12345", "k", v, 6, &n), GIZ_OK);
    ASSERT_STREQ(v, "12345");
    ASSERT_EQ(get("k=12345", "k", v, 5, &n), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(get("k=", "k", v, 1, &n), GIZ_OK);
    ASSERT_EQ(get("k=", "k", v, 0, &n), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(giz_form_get(NULL, 0, "k", v, sizeof v, &n), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_form_get("k=1", 3, NULL, v, sizeof v, &n), GIZ_ERR_INVAL);

    /* len is respected: the bytes after len are not part of the body */
    ASSERT_EQ(giz_form_get("did=12345&x=1", 7, "did", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "123");
    ASSERT_EQ(giz_form_get("did=12345&x=1", 12, "x", v, sizeof v, &n), GIZ_OK);
    ASSERT_STREQ(v, "");
}

TEST_CASE(validate)
{
    struct giz_error e;
    static const struct {
        const char *body;
        int rc;
        size_t off;
    } vec[] = {
        {"passcode=0aeb9953f9&mac=00163E002CAC&product_key=0aeb9953f97c49d6be32c46487e59400", 0, 0},
        {"", 0, 0},
        {"a=", 0, 0},
        {"a=b%2Fc+d", 0, 0},
        {"soft_ver=1&download_url=http://h/x\r\n", 0, 0},
        {"a=1&", GIZ_ERR_INVAL, 4},     /* empty last pair */
        {"a=1&&b=2", GIZ_ERR_INVAL, 4}, /* empty pair */
        {"a", GIZ_ERR_INVAL, 1},        /* pair without '=' */
        {"a&b=1", GIZ_ERR_INVAL, 1},
        {"=1", GIZ_ERR_INVAL, 0}, /* empty key */
        {"a=1&=2", GIZ_ERR_INVAL, 4},
        {"a=1=2", GIZ_ERR_INVAL, 3}, /* second '=' */
        {"a=%4", GIZ_ERR_INVAL, 2},  /* cut escape */
        {"a=%G1", GIZ_ERR_INVAL, 2},
        {"a=%00", GIZ_ERR_INVAL, 2},
        {"a=b c", GIZ_ERR_INVAL, 3},      /* raw space */
        {"a=b\r\nc=d", GIZ_ERR_INVAL, 3}, /* CRLF in the middle */
        {"a=\x80", GIZ_ERR_INVAL, 2},
    };

    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        size_t len = strlen(vec[i].body);
        char *copy = malloc(len ? len : 1);
        int rc;

        memcpy(copy, vec[i].body, len);
        memset(&e, 0, sizeof e);
        rc = giz_form_validate(copy, len, &e);
        free(copy);
        if (rc != vec[i].rc || (rc && e.offset != vec[i].off))
            TEST_FAIL_("validate \"%s\": got %d at %zu, want %d at %zu", vec[i].body, rc, e.offset,
                       vec[i].rc, vec[i].off);
        test__checks++;
    }
}

TEST_CASE(encode)
{
    char out[128], back[128];
    size_t n = 0;
    const char *raw = "http://h:80/dev/ota/download/1?a=b&c=d e~_.-\xE2\x82\xAC";

    ASSERT_EQ(giz_form_encode_value("a b&c=d/e", out, sizeof out), GIZ_OK);
    ASSERT_STREQ(out, "a+b%26c%3Dd%2Fe");
    ASSERT_EQ(giz_form_encode_value("", out, sizeof out), GIZ_OK);
    ASSERT_STREQ(out, "");
    ASSERT_EQ(giz_form_encode_value("abc", out, 4), GIZ_OK);
    ASSERT_EQ(giz_form_encode_value("abc", out, 3), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_form_encode_value("/", out, 4), GIZ_OK);
    ASSERT_STREQ(out, "%2F");
    ASSERT_EQ(giz_form_encode_value("/", out, 3), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_form_encode_value("", out, 0), GIZ_ERR_NOSPACE);

    /* round trip through a body */
    char body[160];
    ASSERT_EQ(giz_form_encode_value(raw, out, sizeof out), GIZ_OK);
    snprintf(body, sizeof body, "x=1&v=%s&y=2", out);
    ASSERT_EQ(giz_form_validate(body, strlen(body), NULL), GIZ_OK);
    ASSERT_EQ(giz_form_get(body, strlen(body), "v", back, sizeof back, &n), GIZ_OK);
    ASSERT_STREQ(back, raw);
    ASSERT_EQ(n, strlen(raw));
}

TEST_LIST(TEST_ENTRY(get), TEST_ENTRY(validate), TEST_ENTRY(encode));
TEST_MAIN()
