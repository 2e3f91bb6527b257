/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of include/giz/util.h (lib/util.c): whole-string unsigned
 * parsing (bases, bounds, signs, junk, overflow), the monotonic clock, the
 * DID / product key / MAC checks against wire-formats.md examples and
 * near-misses (including bytes above 0x7f that a locale's isalnum may
 * accept), and the capped buffer (append, printf, cap, consume, take).
 */
#include <stdint.h>
#include <stdlib.h>

#include "giz/error.h"
#include "giz/util.h"
#include "test.h"

TEST_CASE(parse_uint)
{
    uint64_t v = 7;

    ASSERT_EQ(giz_parse_uint("0", 10, 0, 10, &v), GIZ_OK);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(giz_parse_uint("1883", 10, 1, 65535, &v), GIZ_OK);
    ASSERT_EQ(v, 1883);
    ASSERT_EQ(giz_parse_uint("010", 0, 0, 100, &v), GIZ_OK);
    ASSERT_EQ(v, 10); /* never octal */
    ASSERT_EQ(giz_parse_uint("0x1F", 0, 0, 100, &v), GIZ_OK);
    ASSERT_EQ(v, 31);
    ASSERT_EQ(giz_parse_uint("ff", 16, 0, 1000, &v), GIZ_OK);
    ASSERT_EQ(v, 255);
    ASSERT_EQ(giz_parse_uint("0XfF", 16, 0, 1000, &v), GIZ_OK);
    ASSERT_EQ(v, 255);
    ASSERT_EQ(giz_parse_uint("18446744073709551615", 10, 0, UINT64_MAX, &v), GIZ_OK);
    ASSERT_TRUE(v == UINT64_MAX);

    v = 42;
    ASSERT_EQ(giz_parse_uint("", 10, 0, 10, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint(NULL, 10, 0, 10, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("-1", 10, 0, UINT64_MAX, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("+1", 10, 0, 10, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint(" 1", 10, 0, 10, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("1 ", 10, 0, 10, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("12a", 10, 0, 1000, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("0x10", 10, 0, 1000, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("0x", 0, 0, 1000, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("0x0x1", 16, 0, 1000, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("1", 8, 0, 10, &v), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_parse_uint("11", 10, 0, 10, &v), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(giz_parse_uint("0", 10, 1, 10, &v), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(giz_parse_uint("18446744073709551616", 10, 0, UINT64_MAX, &v), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(v, 42); /* untouched on failure */
}

TEST_CASE(clock)
{
    uint64_t a = giz_mono_ns(), b, ms;
    b = giz_mono_ns();
    ms = giz_mono_ms();
    ASSERT_TRUE(b >= a);
    ASSERT_TRUE(ms >= a / 1000000u);
    ASSERT_TRUE(ms <= giz_mono_ns() / 1000000u);
}

TEST_CASE(identifiers)
{
    ASSERT_TRUE(giz_did_valid("GdzuSRncfDPGHGo2LxwgM2"));
    ASSERT_TRUE(!giz_did_valid("GdzuSRncfDPGHGo2LxwgM"));   /* 21 */
    ASSERT_TRUE(!giz_did_valid("GdzuSRncfDPGHGo2LxwgM2x")); /* 23 */
    ASSERT_TRUE(!giz_did_valid("GdzuSRncfDPGHGo2Lxwg-2"));
    ASSERT_TRUE(!giz_did_valid("GdzuSRncfDPGHGo2Lxwg_2"));
    ASSERT_TRUE(!giz_did_valid("GdzuSRncfDPGHGo2Lxwg\xe9"
                               "2")); /* Latin-1 e-acute */
    ASSERT_TRUE(!giz_did_valid(""));
    ASSERT_TRUE(!giz_did_valid(NULL));

    ASSERT_TRUE(giz_product_key_valid("0aeb9953f97c49d6be32c46487e59400"));
    ASSERT_TRUE(giz_product_key_valid("0AEB9953F97C49D6BE32C46487E59400"));
    ASSERT_TRUE(!giz_product_key_valid("0aeb9953f97c49d6be32c46487e5940"));
    ASSERT_TRUE(!giz_product_key_valid("0aeb9953f97c49d6be32c46487e594000"));
    ASSERT_TRUE(!giz_product_key_valid("0aeb9953f97c49d6be32c46487e5940g"));
    ASSERT_TRUE(!giz_product_key_valid(NULL));

    ASSERT_TRUE(giz_mac_valid("00163E002CAC"));
    ASSERT_TRUE(giz_mac_valid("00163e002cac"));
    ASSERT_TRUE(!giz_mac_valid("00:16:3E:00:2C:AC"));
    ASSERT_TRUE(!giz_mac_valid("00163E002CA"));
    ASSERT_TRUE(!giz_mac_valid("00163E002CAG"));

    for (int c = 1; c < 256; c++) {
        char ch = (char)c;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        bool b62 = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        ASSERT_TRUE(giz_char_is_hex(ch) == hex);
        ASSERT_TRUE(giz_char_is_base62(ch) == b62);
    }
}

TEST_CASE(buf)
{
    struct giz_buf b;
    uint8_t *p;
    size_t n = 99;

    giz_buf_init(&b, 10);
    ASSERT_TRUE(b.data == NULL);
    ASSERT_EQ(giz_buf_append(&b, NULL, 0), GIZ_OK);
    ASSERT_EQ(giz_buf_append(&b, "abc", 3), GIZ_OK);
    ASSERT_EQ(b.len, 3);
    ASSERT_STREQ((const char *)b.data, "abc");
    ASSERT_EQ(giz_buf_printf(&b, "%d-%s", 42, "xy"), GIZ_OK);
    ASSERT_STREQ((const char *)b.data, "abc42-xy");
    ASSERT_EQ(giz_buf_append(&b, "123", 3), GIZ_ERR_OVERSIZE); /* 11 > 10 */
    ASSERT_EQ(giz_buf_printf(&b, "%s", "123"), GIZ_ERR_OVERSIZE);
    ASSERT_STREQ((const char *)b.data, "abc42-xy"); /* unchanged */
    ASSERT_EQ(giz_buf_append(&b, "12", 2), GIZ_OK); /* exactly the cap */
    ASSERT_EQ(b.len, 10);
    ASSERT_TRUE(b.alloc <= 11);
    ASSERT_EQ(giz_buf_append(&b, "", 1), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(giz_buf_append(&b, "x", SIZE_MAX), GIZ_ERR_OVERSIZE);

    giz_buf_consume(&b, 3);
    ASSERT_STREQ((const char *)b.data, "42-xy12");
    giz_buf_reset(&b);
    ASSERT_EQ(b.len, 0);
    ASSERT_STREQ((const char *)b.data, "");
    ASSERT_EQ(giz_buf_append(&b, "hello", 5), GIZ_OK);
    p = giz_buf_take(&b, &n);
    ASSERT_EQ(n, 5);
    ASSERT_STREQ((const char *)p, "hello");
    free(p);
    ASSERT_TRUE(b.data == NULL && b.len == 0 && b.max == 10);
    ASSERT_EQ(giz_buf_append(&b, "again", 5), GIZ_OK);
    giz_buf_free(&b);
    giz_buf_free(&b);
    giz_buf_free(NULL);
    ASSERT_TRUE(b.data == NULL);

    /* Growth over many appends, binary bytes kept. */
    giz_buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++) {
        uint8_t byte = (uint8_t)i;
        if (giz_buf_append(&b, &byte, 1) != GIZ_OK) break;
    }
    ASSERT_EQ(b.len, 10000);
    ASSERT_EQ(b.data[0], 0);
    ASSERT_EQ(b.data[9999], (uint8_t)9999);
    ASSERT_EQ(b.data[10000], 0);
    giz_buf_free(&b);

    /* No cap at all (SIZE_MAX): the cap arithmetic must not wrap. */
    giz_buf_init(&b, SIZE_MAX);
    ASSERT_EQ(giz_buf_append(&b, "abc", 3), GIZ_OK);
    ASSERT_EQ(giz_buf_printf(&b, "%05d", 7), GIZ_OK);
    ASSERT_STREQ((const char *)b.data, "abc00007");
    ASSERT_TRUE(b.alloc >= b.len + 1);
    giz_buf_free(&b);
}

TEST_LIST(TEST_ENTRY(parse_uint), TEST_ENTRY(clock), TEST_ENTRY(identifiers), TEST_ENTRY(buf));
TEST_MAIN()
