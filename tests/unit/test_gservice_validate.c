/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the GService's input checks (gservice/validate.c, linked
 * from the giz_gservice_core library): DIDs (22 base62), product keys (32
 * hex, lowercased in place), MACs (12 hex), firmware version strings
 * ([0-9A-Za-z._-]{1,32}, empty only when allowed) and UTF-8 for JSON bodies
 * (RFC 3629: every boundary of the 1- to 4-byte forms, overlong forms,
 * surrogates, values above U+10FFFF, truncated and broken sequences, NUL).
 * Every byte 0x00-0xff is tried in each identifier position class, so a
 * locale-dependent isalnum() or a signed-char slip would show.
 */
#include <locale.h>
#include <string.h>

#include "gservice.h"
#include "test.h"

#define DID "GdzuSRncfDPGHGo2LxwgM2"
#define PK "0123456789abcdef0123456789abcdef"

static bool is_base62(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

TEST_CASE(did)
{
    ASSERT_TRUE(gs_valid_did(DID));
    ASSERT_TRUE(gs_valid_did("0000000000000000000000"));
    ASSERT_TRUE(gs_valid_did("zzzzzzzzzzzzzzzzzzzzzz"));
    ASSERT_TRUE(!gs_valid_did(""));
    ASSERT_TRUE(!gs_valid_did(NULL));
    ASSERT_TRUE(!gs_valid_did("GdzuSRncfDPGHGo2LxwgM"));   /* 21 */
    ASSERT_TRUE(!gs_valid_did("GdzuSRncfDPGHGo2LxwgM2x")); /* 23 */
    ASSERT_TRUE(!gs_valid_did("GdzuSRncfDPGHGo2LxwgM "));
    ASSERT_TRUE(!gs_valid_did("GdzuSRncfDPGHGo2Lxwg/2"));
    ASSERT_TRUE(!gs_valid_did("GdzuSRncfDPGHGo2Lxwg-2"));
    ASSERT_TRUE(!gs_valid_did("GdzuSRncfDPGHGo2Lxwg_2"));
    /* a NUL inside ends the string: 21 characters */
    ASSERT_TRUE(!gs_valid_did("GdzuSRncfDPGHGo2LxwgM\0"
                              "2"));
    /* every byte in the first, a middle and the last position */
    size_t positions[] = {0, 11, 21};
    for (size_t p = 0; p < 3; p++) {
        for (unsigned c = 1; c < 256; c++) {
            char s[] = DID;
            s[positions[p]] = (char)c;
            if (gs_valid_did(s) != is_base62(c))
                TEST_FAIL_("DID with byte 0x%02x at %zu", c, positions[p]);
            test__checks++;
        }
    }
}

TEST_CASE(product_key)
{
    char pk[GIZ_PK_SIZE + 8];
    snprintf(pk, sizeof pk, "%s", PK);
    ASSERT_TRUE(gs_valid_product_key(pk));
    ASSERT_STREQ(pk, PK);
    /* upper case is accepted and lowercased in place */
    snprintf(pk, sizeof pk, "0123456789ABCDEF0123456789AbCdEf");
    ASSERT_TRUE(gs_valid_product_key(pk));
    ASSERT_STREQ(pk, PK);
    /* a refused key is left as it was */
    snprintf(pk, sizeof pk, "0123456789ABCDEF0123456789ABCDEG");
    ASSERT_TRUE(!gs_valid_product_key(pk));
    ASSERT_STREQ(pk, "0123456789ABCDEF0123456789ABCDEG");
    snprintf(pk, sizeof pk, "%.31s", PK);
    ASSERT_TRUE(!gs_valid_product_key(pk));
    snprintf(pk, sizeof pk, "%sa", PK);
    ASSERT_TRUE(!gs_valid_product_key(pk));
    pk[0] = '\0';
    ASSERT_TRUE(!gs_valid_product_key(pk));
    for (unsigned c = 1; c < 256; c++) {
        snprintf(pk, sizeof pk, "%s", PK);
        pk[31] = (char)c;
        if (gs_valid_product_key(pk) != is_hex(c))
            TEST_FAIL_("product key ending in byte 0x%02x", c);
        test__checks++;
    }
}

TEST_CASE(mac)
{
    ASSERT_TRUE(gs_valid_mac("a0b1c2d3e4f5"));
    ASSERT_TRUE(gs_valid_mac("A0B1C2D3E4F5"));
    ASSERT_TRUE(!gs_valid_mac("a0b1c2d3e4f"));
    ASSERT_TRUE(!gs_valid_mac("a0b1c2d3e4f56"));
    ASSERT_TRUE(!gs_valid_mac("a0:b1:c2:d3:e4:f5"));
    ASSERT_TRUE(!gs_valid_mac("a0b1c2d3e4g5"));
    ASSERT_TRUE(!gs_valid_mac(""));
    ASSERT_TRUE(!gs_valid_mac(NULL));
    for (unsigned c = 1; c < 256; c++) {
        char s[] = "a0b1c2d3e4f5";
        s[5] = (char)c;
        if (gs_valid_mac(s) != is_hex(c)) TEST_FAIL_("MAC with byte 0x%02x", c);
        test__checks++;
    }
}

TEST_CASE(version)
{
    ASSERT_TRUE(gs_valid_version("04020015", false));
    ASSERT_TRUE(gs_valid_version("1.0.2-rc_1", false));
    ASSERT_TRUE(gs_valid_version("X", false));
    ASSERT_TRUE(!gs_valid_version("", false));
    ASSERT_TRUE(gs_valid_version("", true));
    ASSERT_TRUE(!gs_valid_version("1.0 beta", true));
    ASSERT_TRUE(!gs_valid_version("1.0/2", true));
    ASSERT_TRUE(!gs_valid_version("1.0+2", true));
    ASSERT_TRUE(!gs_valid_version("\xc3\xa9", true));
    /* 32 characters fit GIZ_VER_SIZE, 33 do not */
    char v[GIZ_VER_SIZE + 2];
    memset(v, '7', sizeof v);
    v[GIZ_VER_SIZE - 1] = '\0';
    ASSERT_EQ(strlen(v), 32);
    ASSERT_TRUE(gs_valid_version(v, false));
    v[GIZ_VER_SIZE - 1] = '7';
    v[GIZ_VER_SIZE] = '\0';
    ASSERT_TRUE(!gs_valid_version(v, false));
    ASSERT_TRUE(!gs_valid_version(v, true));
    for (unsigned c = 1; c < 256; c++) {
        char s[] = "1.2.3";
        s[1] = (char)c;
        bool want = is_base62(c) || c == '.' || c == '_' || c == '-';
        if (gs_valid_version(s, false) != want) TEST_FAIL_("version with byte 0x%02x", c);
        test__checks++;
    }
}

/* The same checks under a UTF-8 locale (isalnum() would then differ for
 * some bytes on some C libraries; the checks must not). */
TEST_CASE(locale)
{
    const char *loc = setlocale(LC_CTYPE, "C.UTF-8");
    char pk[GIZ_PK_SIZE];
    for (unsigned c = 0x80; c < 256; c++) {
        char s[] = DID;
        s[3] = (char)c;
        ASSERT_TRUE(!gs_valid_did(s));
        snprintf(pk, sizeof pk, "%s", PK);
        pk[0] = (char)c;
        ASSERT_TRUE(!gs_valid_product_key(pk));
    }
    ASSERT_TRUE(gs_valid_did(DID));
    if (loc != NULL) setlocale(LC_CTYPE, "C");
}

struct utf8_case {
    const char *bytes;
    size_t len;
    bool valid;
    const char *what;
};
#define U(s, v, w)                                                                                 \
    {                                                                                              \
        s, sizeof(s) - 1, v, w                                                                     \
    }

TEST_CASE(utf8)
{
    static const struct utf8_case cases[] = {
        U("", true, "empty"),
        U("plain ASCII {\"a\":1}", true, "ASCII"),
        U("\x7f", true, "U+007F, the last 1-byte form"),
        U("\xc2\x80", true, "U+0080, the first 2-byte form"),
        U("\xdf\xbf", true, "U+07FF, the last 2-byte form"),
        U("\xe0\xa0\x80", true, "U+0800, the first 3-byte form"),
        U("\xed\x9f\xbf", true, "U+D7FF, just below the surrogates"),
        U("\xee\x80\x80", true, "U+E000, just above the surrogates"),
        U("\xef\xbf\xbd", true, "U+FFFD"),
        U("\xef\xbf\xbf", true, "U+FFFF, the last 3-byte form"),
        U("\xf0\x90\x80\x80", true, "U+10000, the first 4-byte form"),
        U("\xf4\x8f\xbf\xbf", true, "U+10FFFF, the last code point"),
        U("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", true, "mixed"),
        /* overlong forms */
        U("\xc0\x80", false, "overlong NUL (C0 80)"),
        U("\xc0\xaf", false, "overlong '/' (C0 AF)"),
        U("\xc1\xbf", false, "overlong U+007F (C1 BF)"),
        U("\xe0\x80\x80", false, "overlong NUL, 3 bytes"),
        U("\xe0\x80\xaf", false, "overlong '/', 3 bytes"),
        U("\xe0\x9f\xbf", false, "overlong U+07FF, 3 bytes"),
        U("\xf0\x80\x80\x80", false, "overlong NUL, 4 bytes"),
        U("\xf0\x80\x80\xaf", false, "overlong '/', 4 bytes"),
        U("\xf0\x8f\xbf\xbf", false, "overlong U+FFFF, 4 bytes"),
        /* UTF-16 surrogates (CESU-8) */
        U("\xed\xa0\x80", false, "U+D800, first high surrogate"),
        U("\xed\xad\xbf", false, "U+DB7F"),
        U("\xed\xb0\x80", false, "U+DC00, first low surrogate"),
        U("\xed\xbf\xbf", false, "U+DFFF, last low surrogate"),
        U("\xed\xa0\xbd\xed\xb8\x80", false, "surrogate pair for U+1F600"),
        /* above U+10FFFF, bytes never used */
        U("\xf4\x90\x80\x80", false, "U+110000"),
        U("\xf5\x80\x80\x80", false, "F5 lead"),
        U("\xf7\xbf\xbf\xbf", false, "F7 lead"),
        U("\xf8\x88\x80\x80\x80", false, "5-byte form"),
        U("\xfc\x84\x80\x80\x80\x80", false, "6-byte form"),
        U("\xfe", false, "FE"),
        U("\xff", false, "FF"),
        U("\xff\xfe", false, "a UTF-16 BOM"),
        /* truncated sequences, at the end and before more text */
        U("\xc3", false, "2-byte lead at the end"),
        U("\xe2\x82", false, "3-byte form missing 1"),
        U("\xe2", false, "3-byte form missing 2"),
        U("\xf0\x9f\x98", false, "4-byte form missing 1"),
        U("\xf0\x9f", false, "4-byte form missing 2"),
        U("\xf0", false, "4-byte form missing 3"),
        U("ab\xc3", false, "truncated after ASCII"),
        U("\xc3 x", false, "2-byte lead before a space"),
        U("\xe2\x82x", false, "3-byte form broken by ASCII"),
        U("\xf0\x9f\x98x", false, "4-byte form broken by ASCII"),
        U("\xc3\xc3\xa9", false, "lead followed by a lead"),
        U("\xe2\x82\xac\xac", false, "one continuation too many"),
        /* lone continuation bytes */
        U("\x80", false, "lone 80"),
        U("\xbf", false, "lone BF"),
        U("a\x80"
          "b",
          false, "continuation between ASCII"),
        /* NUL is U+0000: valid UTF-8, and the check goes on past it */
        U("\0", true, "a NUL byte"),
        U("a\0b", true, "NUL inside"),
        U("a\0\xff", false, "FF after a NUL"),
        U("a\0\xc0\x80", false, "overlong NUL after a NUL"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = gs_utf8_valid((const unsigned char *)cases[i].bytes, cases[i].len);
        if (got != cases[i].valid)
            TEST_FAIL_("%s: got %s", cases[i].what, got ? "valid" : "invalid");
        test__checks++;
    }
    /* Only the given length is read: a valid prefix of an invalid buffer. */
    const unsigned char buf[] = {'o', 'k', 0xe2, 0x82, 0xac, 0xff};
    ASSERT_TRUE(gs_utf8_valid(buf, 5));
    ASSERT_TRUE(!gs_utf8_valid(buf, 6));
    ASSERT_TRUE(!gs_utf8_valid(buf, 4)); /* cut inside the euro sign */
    ASSERT_TRUE(gs_utf8_valid(buf, 0));
}

/* Every 2-byte and 3-byte sequence against a decoder written from the
 * RFC 3629 table (section 4), and every 4-byte lead with every second byte. */
TEST_CASE(utf8_exhaustive)
{
    unsigned bad = 0;
    for (unsigned a = 0x80; a < 0x100; a++) {
        for (unsigned b = 0; b < 0x100; b++) {
            unsigned char s[2] = {(unsigned char)a, (unsigned char)b};
            bool want = a >= 0xc2 && a <= 0xdf && b >= 0x80 && b <= 0xbf;
            if (gs_utf8_valid(s, 2) != want && bad++ < 5) TEST_FAIL_("2 bytes %02x %02x", a, b);
        }
    }
    for (unsigned a = 0xe0; a <= 0xef; a++) {
        for (unsigned b = 0x80; b <= 0xbf; b++) {
            for (unsigned c = 0; c < 0x100; c++) {
                unsigned char s[3] = {(unsigned char)a, (unsigned char)b, (unsigned char)c};
                bool cont = c >= 0x80 && c <= 0xbf;
                bool want = cont && (a == 0xe0 ? b >= 0xa0 : a == 0xed ? b <= 0x9f : true);
                if (gs_utf8_valid(s, 3) != want && bad++ < 5)
                    TEST_FAIL_("3 bytes %02x %02x %02x", a, b, c);
            }
        }
    }
    for (unsigned a = 0xf0; a < 0x100; a++) {
        for (unsigned b = 0; b < 0x100; b++) {
            unsigned char s[4] = {(unsigned char)a, (unsigned char)b, 0x80, 0x80};
            bool cont = b >= 0x80 && b <= 0xbf;
            bool want = a <= 0xf4 && cont && (a == 0xf0 ? b >= 0x90 : a == 0xf4 ? b <= 0x8f : true);
            if (gs_utf8_valid(s, 4) != want && bad++ < 5)
                TEST_FAIL_("4 bytes %02x %02x 80 80", a, b);
        }
    }
    ASSERT_EQ(bad, 0);
}

TEST_LIST(TEST_ENTRY(did), TEST_ENTRY(product_key), TEST_ENTRY(mac), TEST_ENTRY(version),
          TEST_ENTRY(locale), TEST_ENTRY(utf8), TEST_ENTRY(utf8_exhaustive));
TEST_MAIN()
