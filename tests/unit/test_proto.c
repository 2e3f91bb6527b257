/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the protocol v4 codec (lib/proto.c): golden byte vectors
 * written by hand from the spec tables and wire-formats.md, commented field
 * by field; encode/decode round trips of every message type; multi-byte Len
 * varints at the size limits; the varint and UTF-8 helpers; and the
 * data-driven invalid cases in $GIZ_TEST_DATA/proto/<case>/{input.bin,expected}.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "giz/proto.h"
#include "proto_eq.h"
#include "test.h"

#define DID "GdzuSRncfDPGHGo2LxwgM2" /* 22-char base62 DID from wire-formats.md */

static struct giz_view V(const void *p, size_t n) {
    struct giz_view v = {(const uint8_t *)p, n};
    return v;
}

/* Encodes `m`, checks the bytes against `wire`, decodes them back, checks
 * equality, the form flag, and that re-encoding gives the same bytes. */
static void
check_golden(const struct giz_msg *m, const uint8_t *wire, size_t wire_len, bool framed)
{
    static uint8_t buf[70000], buf2[70000];
    struct giz_msg d;
    struct giz_error e;
    size_t n = 0, n2 = 0;

    ASSERT_EQ(giz_msg_encoded_size(m), wire_len);
    ASSERT_EQ(giz_msg_encode(m, buf, sizeof buf, &n), GIZ_OK);
    ASSERT_EQ(n, wire_len);
    ASSERT_MEMEQ(buf, wire, wire_len);
    /* one byte too small is refused, exact size is fine */
    ASSERT_EQ(giz_msg_encode(m, buf2, wire_len - 1, &n2), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_msg_encode(m, buf2, wire_len, &n2), GIZ_OK);

    memset(&d, 0xA5, sizeof d);
    ASSERT_EQ(giz_msg_decode(wire, wire_len, &d, &e), GIZ_OK);
    ASSERT_TRUE(msg_eq(m, &d));
    ASSERT_EQ(d.framed, framed);
    ASSERT_EQ(d.flags, 0);
    ASSERT_EQ(giz_msg_encode(&d, buf2, sizeof buf2, &n2), GIZ_OK);
    ASSERT_EQ(n2, wire_len);
    ASSERT_MEMEQ(buf2, wire, wire_len);

    /* every strict prefix is refused, except 0x0211 cut right after the
     * type byte, which is the spec's short form */
    for (size_t cut = 0; cut < wire_len && cut < 64; cut++)
        if (!(m->cmd == GIZ_CMD_OTA_PUSH_V41 && cut == 7))
            ASSERT_TRUE(giz_msg_decode(wire, cut, &d, &e) != GIZ_OK);
}

TEST_CASE(biz)
{
    /* wire-formats.md: app -> device 0x0090 */
    static const uint8_t wire[] = {
        0x00, 0x00, 0x00, 0x03, /* fixed header */
        0x04,                   /* Len = flags + cmd + 1 body byte */
        0x00,                   /* flags */
        0x00, 0x90,             /* cmd 0x0090 */
        0x02,                   /* business message */
    };
    struct giz_msg m = {.cmd = GIZ_CMD_BIZ};

    m.u.biz.data = V("\x02", 1);
    check_golden(&m, wire, sizeof wire, true);

    /* 0x0091 device reply, empty body: Len 3 */
    static const uint8_t reply[] = {0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x91};
    struct giz_msg r = {.cmd = GIZ_CMD_BIZ_REPLY};
    check_golden(&r, reply, sizeof reply, true);
}

TEST_CASE(biz_sn)
{
    /* wire-formats.md: app -> device 0x0093 */
    static const uint8_t wire[] = {
        0x00, 0x00, 0x00, 0x03, /* fixed header */
        0x0A,                   /* Len = 1 flags + 2 cmd + 4 SN + 3 body */
        0x00,                   /* flags */
        0x00, 0x93,             /* cmd */
        0x00, 0x00, 0x00, 0x00, /* SN 0 */
        0x01, 0x01, 0x01,       /* business message */
    };
    struct giz_msg m = {.cmd = GIZ_CMD_BIZ_SN};
    m.u.biz_sn.sn = 0;
    m.u.biz_sn.data = V("\x01\x01\x01", 3);
    check_golden(&m, wire, sizeof wire, true);

    /* 0x0094 ACK echoing SN 0x12345678, no body */
    static const uint8_t ack[] = {
        0x00, 0x00, 0x00, 0x03, /* fixed header */
        0x07,                   /* Len = 1 + 2 + 4 */
        0x00,                   /* flags */
        0x00, 0x94,             /* cmd */
        0x12, 0x34, 0x56, 0x78, /* SN, big-endian */
    };
    struct giz_msg a = {.cmd = GIZ_CMD_BIZ_SN_ACK};
    a.u.biz_sn.sn = 0x12345678u;
    check_golden(&a, ack, sizeof ack, true);
}

TEST_CASE(log_level)
{
    static const uint8_t wire[] = {
        0x00, 0x00, 0x00, 0x03, /* fixed header */
        0x05,                   /* Len = 1 + 2 + 2 */
        0x00,                   /* flags */
        0x00, 0x10,             /* cmd */
        0x81,                   /* bits 8-15: bit15 and bit8 */
        0x0D,                   /* bits 0-7: error (0), info (2), LED (3) */
    };
    struct giz_msg m = {.cmd = GIZ_CMD_LOG_LEVEL_SET};
    m.u.log_level.bits = 0x8100u | GIZ_LOGBIT_ERROR | GIZ_LOGBIT_INFO | GIZ_LOGBIT_LED;
    check_golden(&m, wire, sizeof wire, true);

    static const uint8_t ackw[] = {0x00, 0x00, 0x00, 0x03, /* header */
                                   0x03, 0x00,             /* Len 3, flags */
                                   0x00, 0x11};            /* cmd, no body */
    struct giz_msg a = {.cmd = GIZ_CMD_LOG_LEVEL_ACK};
    check_golden(&a, ackw, sizeof ackw, true);
}

TEST_CASE(log)
{
    static const uint8_t wire[] = {
        0x00, 0x00, 0x00, 0x03,                            /* fixed header */
        0x16,                                              /* Len = 22, counted below */
        0x00,                                              /* flags */
        0x00, 0x12,                                        /* cmd */
        0x02,                                              /* level 2 = warning */
        0x00, 0x03, 'n',  'e',  't',                       /* tags */
        0x00, 0x02, 'm',  'q',                             /* source */
        0x00, 0x07, 'l',  'o',  's', 't', ' ', 0xC3, 0xA9, /* content "lost é" (UTF-8) */
    };
    /* Len: flags 1 + cmd 2 + level 1 + tags 2+3 + source 2+2 + content 2+7 = 22 = 0x16 */
    struct giz_msg m = {.cmd = GIZ_CMD_LOG};
    m.u.log.level = GIZ_LOGLVL_WARN;
    m.u.log.tags = V("net", 3);
    m.u.log.source = V("mq", 2);
    m.u.log.content = V("lost \xC3\xA9", 7);
    check_golden(&m, wire, sizeof wire, true);

    /* encoder refuses what the decoder refuses */
    struct giz_msg bad = m;
    uint8_t buf[64];
    size_t n;
    bad.u.log.level = 0;
    ASSERT_EQ(giz_msg_encode(&bad, buf, sizeof buf, &n), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(giz_msg_encoded_size(&bad), 0);
    bad = m;
    bad.u.log.content = V("\xC0\xAF", 2);
    ASSERT_EQ(giz_msg_encode(&bad, buf, sizeof buf, &n), GIZ_ERR_BAD_UTF8);
    bad = m;
    bad.u.log.source = V("012345678901234567890123456789012", 33);
    ASSERT_EQ(giz_msg_encode(&bad, buf, sizeof buf, &n), GIZ_ERR_OVERSIZE);
    bad = m;
    bad.u.log.tags = V(NULL, 3);
    ASSERT_EQ(giz_msg_encode(&bad, buf, sizeof buf, &n), GIZ_ERR_INVAL);
}

TEST_CASE(bare)
{
    /* wire-formats.md: cloud -> device 0x0210 */
    static const uint8_t count[] = {0x00, 0x00, 0x00, 0x03, /* fixed header */
                                    0x02, 0x10,             /* cmd, bare: no Len, no flags */
                                    0x00, 0x01};            /* count 1, big-endian */
    struct giz_msg m = {.cmd = GIZ_CMD_APP_COUNT};
    m.u.app_count.count = 1;
    check_golden(&m, count, sizeof count, false);

    /* device -> cloud 0x020F */
    static const uint8_t req[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x0F};
    struct giz_msg q = {.cmd = GIZ_CMD_APP_COUNT_REQ};
    check_golden(&q, req, sizeof req, false);

    /* wire-formats.md: 0x0211 as the public cloud sends it */
    uint8_t ota41[4 + 2 + 1 + 2 + 22];
    memcpy(ota41,
           "\x00\x00\x00\x03" /* header */ "\x02\x11" /* cmd */ "\x01" /* type WiFi */
           "\x00\x16" /* DID len 22 */,
           9);
    memcpy(ota41 + 9, DID, 22);
    struct giz_msg o = {.cmd = GIZ_CMD_OTA_PUSH_V41};
    o.u.ota41.type = 1;
    o.u.ota41.did = V(DID, 22);
    check_golden(&o, ota41, sizeof ota41, false);

    /* 0x0211 as the spec table has it: type only */
    static const uint8_t ota41_short[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x11, 0x02};
    struct giz_msg os = {.cmd = GIZ_CMD_OTA_PUSH_V41};
    os.u.ota41.type = 2;
    check_golden(&os, ota41_short, sizeof ota41_short, false);

    /* 0x020E: type 1, fid 0x01020304, url len 0x0021, url */
    static const char url[] = "http://h:80/dev/ota/download/0001"; /* 33 bytes */
    uint8_t ota40[4 + 2 + 1 + 4 + 2 + 33];
    memcpy(ota40,
           "\x00\x00\x00\x03" /* header */ "\x02\x0E" /* cmd */ "\x01" /* type */
           "\x01\x02\x03\x04" /* fid BE */ "\x00\x21" /* url len 33 */,
           13);
    memcpy(ota40 + 13, url, 33);
    struct giz_msg o40 = {.cmd = GIZ_CMD_OTA_PUSH_V40};
    o40.u.ota40.type = 1;
    o40.u.ota40.fid = 0x01020304u;
    o40.u.ota40.url = V(url, 33);
    check_golden(&o40, ota40, sizeof ota40, false);
}

/* The decoder also accepts the framed form of the four bare commands; the
 * encoder writes them bare again. */
TEST_CASE(bare_cmds_framed)
{
    static const uint8_t framed_count[] = {0x00, 0x00, 0x00, 0x03,  /* header */
                                           0x05, 0x00,              /* Len 5, flags */
                                           0x02, 0x10, 0x00, 0x07}; /* cmd, count 7 */
    static const uint8_t bare_count[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x10, 0x00, 0x07};
    static const uint8_t framed_req[] = {0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x02, 0x0F};
    uint8_t did_framed[4 + 1 + 1 + 2 + 1 + 2 + 22];
    struct giz_msg m;
    uint8_t buf[64];
    size_t n = 0;

    ASSERT_EQ(giz_msg_decode(framed_count, sizeof framed_count, &m, NULL), GIZ_OK);
    ASSERT_EQ(m.cmd, GIZ_CMD_APP_COUNT);
    ASSERT_EQ(m.framed, true);
    ASSERT_EQ(m.u.app_count.count, 7);
    ASSERT_EQ(giz_msg_encode(&m, buf, sizeof buf, &n), GIZ_OK);
    ASSERT_EQ(n, sizeof bare_count);
    ASSERT_MEMEQ(buf, bare_count, sizeof bare_count);

    ASSERT_EQ(giz_msg_decode(framed_req, sizeof framed_req, &m, NULL), GIZ_OK);
    ASSERT_EQ(m.cmd, GIZ_CMD_APP_COUNT_REQ);
    ASSERT_EQ(m.framed, true);

    /* framed 0x0211 with DID: Len = 1 + 2 + 1 + 2 + 22 = 28 = 0x1C */
    memcpy(did_framed, "\x00\x00\x00\x03\x1C\x00\x02\x11\x01\x00\x16", 11);
    memcpy(did_framed + 11, DID, 22);
    ASSERT_EQ(giz_msg_decode(did_framed, sizeof did_framed, &m, NULL), GIZ_OK);
    ASSERT_EQ(m.u.ota41.did.len, 22);
    ASSERT_TRUE(m.u.ota41.did.ptr == did_framed + 11);
}

/* Len varints of 2 and 3 bytes at realistic and maximal sizes. */
TEST_CASE(multibyte_len)
{
    static uint8_t wire[70000], body[65535];
    struct giz_msg m = {.cmd = GIZ_CMD_BIZ};

    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7u);

    /* 300-byte body: Len = 303 = 0x12F -> AF 02 */
    memcpy(wire,
           "\x00\x00\x00\x03"
           "\xAF\x02"
           "\x00"
           "\x00\x90",
           9);
    memcpy(wire + 9, body, 300);
    m.u.biz.data = V(body, 300);
    check_golden(&m, wire, 9 + 300, true);

    /* 65535-byte body (the maximum): Len = 65538 = 0x10002 -> 82 80 04 */
    memcpy(wire,
           "\x00\x00\x00\x03"
           "\x82\x80\x04"
           "\x00"
           "\x00\x90",
           10);
    memcpy(wire + 10, body, 65535);
    m.u.biz.data = V(body, 65535);
    check_golden(&m, wire, 10 + 65535, true);
    m.u.biz.data = V(wire, 65536); /* one over the maximum */
    ASSERT_EQ(giz_msg_encoded_size(&m), 0);

    /* 0x0093 at its maximum: Len = 3 + 4 + 65535 = 65542 = 0x10006 -> 86 80 04 */
    struct giz_msg s = {.cmd = GIZ_CMD_BIZ_SN};
    memcpy(wire,
           "\x00\x00\x00\x03"
           "\x86\x80\x04"
           "\x00"
           "\x00\x93"
           "\xFF\xFF\xFF\xFF",
           14);
    memcpy(wire + 14, body, 65535);
    s.u.biz_sn.sn = 0xFFFFFFFFu;
    s.u.biz_sn.data = V(body, 65535);
    check_golden(&s, wire, 14 + 65535, true);

    /* 0x0012 at every maximum: Len = 3+1+2+256+2+32+2+65535 = 65833 -> A9 82 04 */
    static uint8_t text[65535];
    memset(text, 'x', sizeof text);
    struct giz_msg l = {.cmd = GIZ_CMD_LOG};
    l.u.log.level = GIZ_LOGLVL_INFO;
    l.u.log.tags = V(text, 256);
    l.u.log.source = V(text, 32);
    l.u.log.content = V(text, 65535);
    size_t o = 0;
    memcpy(wire,
           "\x00\x00\x00\x03"
           "\xA9\x82\x04"
           "\x00"
           "\x00\x12"
           "\x03",
           11);
    o = 11;
    memcpy(wire + o, "\x01\x00", 2); /* tags len 256 */
    o += 2;
    memcpy(wire + o, text, 256);
    o += 256;
    memcpy(wire + o, "\x00\x20", 2); /* source len 32 */
    o += 2;
    memcpy(wire + o, text, 32);
    o += 32;
    memcpy(wire + o, "\xFF\xFF", 2); /* content len 65535 */
    o += 2;
    memcpy(wire + o, text, 65535);
    o += 65535;
    check_golden(&l, wire, o, true);

    /* non-minimal varint (83 00 = 3) is accepted */
    static const uint8_t nonmin[] = {0x00, 0x00, 0x00, 0x03, 0x83, 0x00, 0x00, 0x00, 0x11};
    ASSERT_EQ(giz_msg_decode(nonmin, sizeof nonmin, &m, NULL), GIZ_OK);
    ASSERT_EQ(m.cmd, GIZ_CMD_LOG_LEVEL_ACK);
}

TEST_CASE(encode_refusals)
{
    uint8_t buf[1024];
    size_t n;
    struct giz_msg m = {.cmd = 0x0092};

    ASSERT_EQ(giz_msg_encode(&m, buf, sizeof buf, &n), GIZ_ERR_UNKNOWN_CMD);
    ASSERT_EQ(giz_msg_encoded_size(&m), 0);
    ASSERT_EQ(giz_msg_encode(NULL, buf, sizeof buf, &n), GIZ_ERR_INVAL);
    m.cmd = GIZ_CMD_OTA_PUSH_V40;
    m.u.ota40.url = V(buf, 513);
    ASSERT_EQ(giz_msg_encode(&m, buf, sizeof buf, &n), GIZ_ERR_OVERSIZE);
    m.u.ota40.url = V(buf, 512);
    ASSERT_EQ(giz_msg_encoded_size(&m), 4 + 2 + 1 + 4 + 2 + 512);
    m.cmd = GIZ_CMD_OTA_PUSH_V41;
    m.u.ota41.did = V(buf, 65);
    ASSERT_EQ(giz_msg_encode(&m, buf, sizeof buf, &n), GIZ_ERR_OVERSIZE);
    m.cmd = GIZ_CMD_APP_COUNT;
    ASSERT_EQ(giz_msg_encode(&m, NULL, 0, &n), GIZ_ERR_NOSPACE);
}

TEST_CASE(varint)
{
    static const struct {
        uint32_t v;
        size_t n;
        uint8_t b[4];
    } vec[] = {
        {0, 1, {0x00}},
        {127, 1, {0x7F}},
        {128, 2, {0x80, 0x01}},
        {16383, 2, {0xFF, 0x7F}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {2097151, 3, {0xFF, 0xFF, 0x7F}},
        {2097152, 4, {0x80, 0x80, 0x80, 0x01}},
        {268435455, 4, {0xFF, 0xFF, 0xFF, 0x7F}},
    };
    uint8_t buf[8];
    uint32_t v;
    size_t used;

    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        ASSERT_EQ(giz_varint_encode(vec[i].v, buf, sizeof buf), vec[i].n);
        ASSERT_MEMEQ(buf, vec[i].b, vec[i].n);
        ASSERT_EQ(giz_varint_encode(vec[i].v, buf, vec[i].n - 1), 0);
        ASSERT_EQ(giz_varint_decode(vec[i].b, vec[i].n, &v, &used), GIZ_OK);
        ASSERT_EQ(v, vec[i].v);
        ASSERT_EQ(used, vec[i].n);
        ASSERT_EQ(giz_varint_decode(vec[i].b, vec[i].n - 1, &v, &used), GIZ_ERR_TRUNCATED);
    }
    ASSERT_EQ(giz_varint_encode(268435456u, buf, sizeof buf), 0);
    static const uint8_t five[] = {0x80, 0x80, 0x80, 0x80, 0x01};
    ASSERT_EQ(giz_varint_decode(five, sizeof five, &v, &used), GIZ_ERR_BAD_VARINT);
    ASSERT_EQ(giz_varint_decode(five, 4, &v, &used), GIZ_ERR_BAD_VARINT);
    ASSERT_EQ(giz_varint_decode(five, 0, &v, &used), GIZ_ERR_TRUNCATED);
}

TEST_CASE(utf8)
{
#define U(s, ok) ASSERT_EQ(giz_utf8_valid((const uint8_t *)(s), sizeof(s) - 1), ok)
    U("", true);
    U("plain ascii", true);
    U("\xC2\x80", true);          /* U+0080, smallest 2-byte */
    U("\xDF\xBF", true);          /* U+07FF */
    U("\xE0\xA0\x80", true);      /* U+0800 */
    U("\xED\x9F\xBF", true);      /* U+D7FF, just below surrogates */
    U("\xEE\x80\x80", true);      /* U+E000, just above */
    U("\xEF\xBF\xBF", true);      /* U+FFFF */
    U("\xF0\x90\x80\x80", true);  /* U+10000 */
    U("\xF4\x8F\xBF\xBF", true);  /* U+10FFFF */
    U("\xC0\x80", false);         /* overlong NUL */
    U("\xC1\xBF", false);         /* overlong */
    U("\xE0\x9F\xBF", false);     /* overlong 3-byte */
    U("\xF0\x8F\xBF\xBF", false); /* overlong 4-byte */
    U("\xED\xA0\x80", false);     /* U+D800 surrogate */
    U("\xED\xBF\xBF", false);     /* U+DFFF surrogate */
    U("\xF4\x90\x80\x80", false); /* U+110000 */
    U("\xF5\x80\x80\x80", false);
    U("\xFF", false);
    U("\x80", false);     /* lone continuation */
    U("\xE2\x82", false); /* cut sequence */
    U("a\xE2\x82\xAC"
      "b",
      true);                  /* euro sign */
    U("\xE2\x28\xA1", false); /* bad continuation */
#undef U
    ASSERT_EQ(giz_utf8_valid(NULL, 0), true);
}

TEST_CASE(cmd_names)
{
    ASSERT_STREQ(giz_cmd_name(GIZ_CMD_BIZ), "biz");
    ASSERT_STREQ(giz_cmd_name(GIZ_CMD_BIZ_REPLY), "biz_reply");
    ASSERT_STREQ(giz_cmd_name(GIZ_CMD_APP_COUNT), "app_count");
    ASSERT_STREQ(giz_cmd_name(GIZ_CMD_OTA_PUSH_V41), "ota_push_v41");
    ASSERT_TRUE(giz_cmd_name(0x0092) == NULL);
    ASSERT_TRUE(giz_cmd_name(0xFFFF) == NULL);
    unsigned known = 0;
    for (unsigned c = 0; c <= 0xFFFF; c++)
        known += giz_cmd_name((uint16_t)c) != NULL;
    ASSERT_EQ(known, 14);
    ASSERT_STREQ(giz_cmd_name(GIZ_CMD_RESET_NOTICE), "reset_notice");
    ASSERT_STREQ(giz_cmd_name(GIZ_CMD_VERSION_REPORT), "version_report");
    ASSERT_STREQ(giz_cmd_name(GIZ_CMD_OTA_PROGRESS), "ota_progress");
}

/* The newer cli2ser_req commands (0x021E, 0x021C, 0x022C), as newer
 * firmware sends them: bare, then flags (2) | len (2) | data. */
TEST_CASE(newer_cmds)
{
    struct giz_msg m, d;
    struct giz_error e;

    /* 0x021E reset notice exactly as firmware publishes it: 00000003 021E 0000 */
    static const uint8_t reset[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x1E, 0x00, 0x00};
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_RESET_NOTICE;
    check_golden(&m, reset, sizeof reset, false);
    ASSERT_EQ(giz_msg_decode(reset, sizeof reset, &d, &e), GIZ_OK);
    ASSERT_TRUE(!d.u.reset.long_form);
    ASSERT_EQ(d.u.reset.flags, 0);
    ASSERT_EQ(d.u.reset.data.len, 0);

    /* the sub-header form: flags 0x0001, 2 data bytes */
    static const uint8_t reset_long[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x1E, /* header, cmd */
                                         0x00, 0x01,                         /* flags */
                                         0x00, 0x02,                         /* len */
                                         0xAB, 0xCD};
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_RESET_NOTICE;
    m.u.reset.long_form = true;
    m.u.reset.flags = 1;
    m.u.reset.data = V("\xAB\xCD", 2);
    check_golden(&m, reset_long, sizeof reset_long, false);
    /* flags 0, no data, long form: 00000003 021E 0000 0000 */
    static const uint8_t reset_zero4[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x1E, 0, 0, 0, 0};
    ASSERT_EQ(giz_msg_decode(reset_zero4, sizeof reset_zero4, &d, &e), GIZ_OK);
    ASSERT_TRUE(d.u.reset.long_form);
    /* the short form carries nothing: the encoder refuses flags or data there */
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_RESET_NOTICE;
    m.u.reset.flags = 2;
    ASSERT_EQ(giz_msg_encoded_size(&m), 0);

    /* 0x021C version report: flags 0x0006 (module + MCU versions), len 0x0018 */
    static const uint8_t ver[] = {
        0x00, 0x00, 0x00, 0x03, 0x02, 0x1C, /* header, cmd */
        0x00, 0x06,                         /* flags: bit 1 module, bit 2 MCU */
        0x00, 0x1A,                         /* len 26 = 2+12 + 2+10 */
        0x00, 0x0C, 'E',  'S',  'P',  '3',  '2', ',', '1', '.', '2', '.', '3',
        '4',  0x00, 0x0A, 'M',  'C',  'U',  '1', ',', '0', '4', '0', '2', 'X',
    };
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_VERSION_REPORT;
    m.u.version.flags = GIZ_VERFLAG_MODULE | GIZ_VERFLAG_MCU;
    m.u.version.module = V("ESP32,1.2.34", 12);
    m.u.version.mcu = V("MCU1,0402X", 10);
    check_golden(&m, ver, sizeof ver, false);
    ASSERT_EQ(giz_msg_decode(ver, sizeof ver, &d, &e), GIZ_OK);
    ASSERT_EQ(d.u.version.subdev.len, 0);
    ASSERT_EQ(d.u.version.rest.len, 0);
    ASSERT_TRUE(d.u.version.module.ptr == ver + 12);
    /* with a sub-device id and a flag bit this codec does not know (bit 5):
     * its data is kept opaque in `rest` */
    static const uint8_t ver2[] = {
        0x00, 0x00, 0x00, 0x03, 0x02, 0x1C, 0x00, 0x21, /* flags: bit 0 + bit 5 */
        0x00, 0x07, 0x00, 0x02, 's',  '1',  0xDE, 0xAD, 0xBE,
    };
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_VERSION_REPORT;
    m.u.version.flags = 0x0021;
    m.u.version.subdev = V("s1", 2);
    m.u.version.rest = V("\xDE\xAD\xBE", 3);
    check_golden(&m, ver2, sizeof ver2, false);
    /* no flags at all: 00000003 021C 0000 0000 */
    static const uint8_t ver0[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x1C, 0, 0, 0, 0};
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_VERSION_REPORT;
    check_golden(&m, ver0, sizeof ver0, false);
    /* encoder refusals: a field without its bit, opaque data without an unknown bit */
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_VERSION_REPORT;
    m.u.version.mcu = V("x,y", 3);
    ASSERT_EQ(giz_msg_encoded_size(&m), 0);
    m.u.version.flags = GIZ_VERFLAG_MCU;
    m.u.version.rest = V("z", 1);
    ASSERT_EQ(giz_msg_encoded_size(&m), 0);
    /* extra bytes after the known fields with only known bits set: trailing */
    static const uint8_t ver_tr[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x1C, 0x00,
                                     0x01, 0x00, 0x03, 0x00, 0x00, 0x77};
    memset(&e, 0, sizeof e);
    ASSERT_EQ(giz_msg_decode(ver_tr, sizeof ver_tr, &d, &e), GIZ_ERR_TRAILING);
    ASSERT_EQ(e.offset, 12);

    /* 0x022C OTA progress: MCU upgrade, 45 %, version "GoKit,04020020", "downloading" */
    static const uint8_t prog[] = {
        0x00, 0x00, 0x00, 0x03, 0x02, 0x2C, /* header, cmd */
        0x00, 0x02,                         /* flags: MCU upgrade */
        0x00, 0x1E,                         /* len 30 = 1 + 2+14 + 2+11 */
        45,                                 /* percent */
        0x00, 0x0E, 'G',  'o',  'K',  'i',  't', ',', '0', '4', '0', '2', '0', '0', '2',
        '0',  0x00, 0x0B, 'd',  'o',  'w',  'n', 'l', 'o', 'a', 'd', 'i', 'n', 'g',
    };
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_OTA_PROGRESS;
    m.u.ota_progress.flags = GIZ_OTAFLAG_MCU;
    m.u.ota_progress.percent = 45;
    m.u.ota_progress.version = V("GoKit,04020020", 14);
    m.u.ota_progress.info = V("downloading", 11);
    check_golden(&m, prog, sizeof prog, false);
    ASSERT_EQ(giz_msg_decode(prog, sizeof prog, &d, &e), GIZ_OK);
    ASSERT_EQ(d.u.ota_progress.percent, 45);
    ASSERT_EQ(d.u.ota_progress.flags, GIZ_OTAFLAG_MCU);

    /* the framed form of a newer command is accepted; the encoder writes it bare */
    static const uint8_t reset_framed[] = {0x00, 0x00, 0x00, 0x03, 0x05, 0x00, 0x02, 0x1E, 0, 0};
    ASSERT_EQ(giz_msg_decode(reset_framed, sizeof reset_framed, &d, &e), GIZ_OK);
    ASSERT_EQ(d.cmd, GIZ_CMD_RESET_NOTICE);
    ASSERT_TRUE(d.framed);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* Runs every $GIZ_TEST_DATA/proto/<case>: the decoder must fail with the
 * expected error name at the expected offset. */
TEST_CASE(data_cases)
{
    const char *root = getenv("GIZ_TEST_DATA");
    char dir[4096], path[4096 + 512];
    struct dirent *de;
    DIR *d;
    int cases = 0;

    ASSERT_TRUE(root != NULL);
    if (!root) return;
    snprintf(dir, sizeof dir, "%s/proto", root);
    d = opendir(dir);
    ASSERT_TRUE(d != NULL);
    if (!d) return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        size_t in_len = 0, ex_len = 0;
        uint8_t *in, *ex;
        char want_name[64] = "";
        unsigned long want_off = 0;
        struct giz_msg m;
        struct giz_error e;
        int rc;

        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        snprintf(path, sizeof path, "%s/%s/input.bin", dir, de->d_name);
        in = read_file(path, &in_len);
        snprintf(path, sizeof path, "%s/%s/expected", dir, de->d_name);
        ex = read_file(path, &ex_len);
        ASSERT_TRUE(in != NULL && ex != NULL);
        if (in && ex) {
            ex[ex_len] = 0;
            ASSERT_EQ(sscanf((char *)ex, "%63s %lu", want_name, &want_off), 2);
            memset(&e, 0, sizeof e);
            rc = giz_msg_decode(in, in_len, &m, &e);
            ASSERT_EQ(rc, e.code);
            if (strcmp(giz_errname(rc), want_name) != 0 || e.offset != want_off)
                TEST_FAIL_("case %s: got %s %zu (%s), want %s %lu", de->d_name, giz_errname(rc),
                           e.offset, e.text, want_name, want_off);
            test__checks++;
            cases++;
        }
        free(in);
        free(ex);
    }
    closedir(d);
    fprintf(stderr, "%d data cases\n", cases);
    ASSERT_TRUE(cases >= 25);
}

TEST_LIST(TEST_ENTRY(biz), TEST_ENTRY(biz_sn), TEST_ENTRY(log_level), TEST_ENTRY(log),
          TEST_ENTRY(bare), TEST_ENTRY(bare_cmds_framed), TEST_ENTRY(newer_cmds),
          TEST_ENTRY(multibyte_len), TEST_ENTRY(encode_refusals), TEST_ENTRY(varint),
          TEST_ENTRY(utf8), TEST_ENTRY(cmd_names), TEST_ENTRY(data_cases));
TEST_MAIN()
