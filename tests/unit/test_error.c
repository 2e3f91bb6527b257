/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the error table (lib/error.c): every code of the X-macro has
 * its own name and text, unknown codes get the fallbacks, and
 * giz_error_set fills the struct and bounds its text.
 */
#include "giz/error.h"
#include "test.h"

TEST_CASE(table)
{
    static const struct {
        int code;
        const char *name, *text;
    } all[] = {
#define ROW(name, value, text) {(value), #name, (text)},
        GIZ_ERRNO_MAP(ROW)
#undef ROW
    };
    size_t n = sizeof all / sizeof all[0];

    ASSERT_TRUE(n >= 20);
    for (size_t i = 0; i < n; i++) {
        ASSERT_STREQ(giz_errname(all[i].code), all[i].name);
        ASSERT_STREQ(giz_strerror(all[i].code), all[i].text);
        for (size_t j = i + 1; j < n; j++)
            ASSERT_TRUE(all[i].code != all[j].code);
    }
    ASSERT_STREQ(giz_errname(GIZ_OK), "OK");
    ASSERT_STREQ(giz_errname(GIZ_ERR_TRUNCATED), "TRUNCATED");
    ASSERT_EQ(GIZ_ERR_TRUNCATED, -1);
    ASSERT_STREQ(giz_errname(GIZ_ERR_BAD_UTF8), "BAD_UTF8");
    ASSERT_STREQ(giz_strerror(GIZ_ERR_NOSPACE), "output buffer too small");
    ASSERT_STREQ(giz_errname(-999), "UNKNOWN");
    ASSERT_STREQ(giz_errname(1), "UNKNOWN");
    ASSERT_STREQ(giz_strerror(-999), "unknown error");
}

TEST_CASE(set)
{
    struct giz_error e;
    char longtext[300];

    memset(&e, 0x5A, sizeof e);
    ASSERT_EQ(giz_error_set(&e, GIZ_ERR_OVERSIZE, 17, "tags"), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(e.code, GIZ_ERR_OVERSIZE);
    ASSERT_EQ(e.offset, 17);
    ASSERT_STREQ(e.text, "tags");
    ASSERT_EQ(giz_error_set(&e, GIZ_ERR_IO, 0, NULL), GIZ_ERR_IO);
    ASSERT_STREQ(e.text, giz_strerror(GIZ_ERR_IO));
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    giz_error_set(&e, GIZ_ERR_INVAL, 1, longtext);
    ASSERT_EQ(strlen(e.text), sizeof e.text - 1);
    ASSERT_EQ(giz_error_set(NULL, GIZ_ERR_DB, 3, "x"), GIZ_ERR_DB);
}

TEST_LIST(TEST_ENTRY(table), TEST_ENTRY(set));
TEST_MAIN()
