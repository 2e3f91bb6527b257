/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * RFC 6455 framing (lib/ws.c): the RFC's own frame examples, fragments
 * with control frames between them, every rule a server must enforce
 * (masking, reserved bits, opcodes, minimal lengths, control-frame limits,
 * size caps, UTF-8, close codes), byte-at-a-time arrival, and the writer
 * read back by the reader.
 */
#include <stdlib.h>

#include "giz/error.h"
#include "giz/ws.h"
#include "test.h"

static struct giz_ws_event ev;

/* Pushes n bytes into r and returns the first event. */
static enum giz_ws_event_kind feed(struct giz_ws_reader *r, const void *p, size_t n)
{
    ASSERT_EQ(giz_ws_reader_push(r, p, n), GIZ_OK);
    giz_ws_reader_next(r, &ev);
    return ev.kind;
}

TEST_CASE(rfc_examples)
{
    struct giz_ws_reader r;
    /* 5.7: a single-frame masked text message "Hello" */
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58};
    giz_ws_reader_init(&r, 1024, true);
    ASSERT_EQ(feed(&r, masked, sizeof masked), GIZ_WS_EV_TEXT);
    ASSERT_EQ(ev.len, 5);
    ASSERT_MEMEQ(ev.data, "Hello", 5);
    giz_ws_reader_next(&r, &ev);
    ASSERT_EQ(ev.kind, GIZ_WS_EV_NONE);
    giz_ws_reader_free(&r);

    /* a client reader: unmasked single frame, fragmented "Hel"+"lo", ping, pong */
    static const uint8_t seq[] = {0x81, 0x05, 'H',  'e',  'l',  'l', 'o', 0x01, 0x03, 'H',
                                  'e',  'l',  0x89, 0x05, 'H',  'e', 'l', 'l',  'o',  0x80,
                                  0x02, 'l',  'o',  0x8A, 0x05, 'H', 'e', 'l',  'l',  'o'};
    giz_ws_reader_init(&r, 1024, false);
    ASSERT_EQ(feed(&r, seq, sizeof seq), GIZ_WS_EV_TEXT);
    ASSERT_MEMEQ(ev.data, "Hello", 5);
    giz_ws_reader_next(&r, &ev);
    ASSERT_EQ(ev.kind, GIZ_WS_EV_PING); /* between the fragments */
    ASSERT_EQ(ev.len, 5);
    giz_ws_reader_next(&r, &ev);
    ASSERT_EQ(ev.kind, GIZ_WS_EV_TEXT);
    ASSERT_EQ(ev.len, 5);
    ASSERT_MEMEQ(ev.data, "Hello", 5);
    giz_ws_reader_next(&r, &ev);
    ASSERT_EQ(ev.kind, GIZ_WS_EV_PONG);
    giz_ws_reader_next(&r, &ev);
    ASSERT_EQ(ev.kind, GIZ_WS_EV_NONE);
    giz_ws_reader_free(&r);

    /* 256 bytes (16-bit length) and 65536 bytes (64-bit length) binary */
    uint8_t *big = calloc(1, 65536 + 10);
    ASSERT_TRUE(big != NULL);
    big[0] = 0x82;
    big[1] = 0x7E;
    big[2] = 0x01;
    big[3] = 0x00;
    giz_ws_reader_init(&r, 70000, false);
    ASSERT_EQ(feed(&r, big, 4 + 256), GIZ_WS_EV_BINARY);
    ASSERT_EQ(ev.len, 256);
    memset(big, 0, 10);
    big[0] = 0x82;
    big[1] = 0x7F;
    big[7] = 0x01;
    ASSERT_EQ(feed(&r, big, 10 + 65536), GIZ_WS_EV_BINARY);
    ASSERT_EQ(ev.len, 65536);
    giz_ws_reader_free(&r);
    free(big);
}

/* The error close code a server reader reports for one client frame. */
static unsigned error_of(const uint8_t *p, size_t n, size_t max)
{
    struct giz_ws_reader r;
    giz_ws_reader_init(&r, max, true);
    int rc = giz_ws_reader_push(&r, p, n);
    unsigned code = 0;
    for (int i = 0; rc == GIZ_OK && i < 8; i++) {
        giz_ws_reader_next(&r, &ev);
        if (ev.kind == GIZ_WS_EV_ERROR) {
            code = ev.close_code;
            ASSERT_TRUE(ev.why != NULL);
            break;
        }
        if (ev.kind == GIZ_WS_EV_NONE || ev.kind == GIZ_WS_EV_CLOSE) break;
    }
    giz_ws_reader_free(&r);
    return code;
}

TEST_CASE(violations)
{
    static const uint8_t m[4] = {0, 0, 0, 0}; /* zero mask: payload bytes as written */
    uint8_t f[64];
#define FRAME(b0, b1, ...)                                                                         \
    do {                                                                                           \
        static const uint8_t rest_[] = {__VA_ARGS__};                                              \
        f[0] = (b0);                                                                               \
        f[1] = (b1);                                                                               \
        memcpy(f + 2, rest_, sizeof rest_);                                                        \
        n = 2 + sizeof rest_;                                                                      \
    } while (0)
    size_t n;
    (void)m;
    FRAME(0x81, 0x02, 'h', 'i'); /* not masked */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0xC1, 0x82, 0, 0, 0, 0, 'h', 'i'); /* RSV1 */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x83, 0x82, 0, 0, 0, 0, 'h', 'i'); /* opcode 3 */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x8B, 0x80, 0, 0, 0, 0); /* opcode 0xB */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x09, 0x80, 0, 0, 0, 0); /* fragmented ping */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x89, 0xFE, 0x00, 0x7E); /* ping, 126 bytes */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x82, 0xFE, 0x00, 0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5); /* 16-bit length for 5 */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0); /* 64-bit length, top bit */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00); /* 64-bit length for 256 */
    ASSERT_EQ(error_of(f, n, 1000), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF); /* huge: too big */
    ASSERT_EQ(error_of(f, n, 1000), GIZ_WS_CLOSE_TOO_BIG);
    FRAME(0x82, 0xFE, 0x01, 0x00); /* 256 > cap 100, seen from the header alone */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_TOO_BIG);
    FRAME(0x80, 0x82, 0, 0, 0, 0, 'h', 'i'); /* continuation first */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x01, 0x81, 0, 0, 0, 0, 'a', 0x81, 0x81, 0, 0, 0, 0, 'b'); /* new text inside one */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28); /* bad UTF-8 */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_BAD_DATA);
    FRAME(0x81, 0x83, 0, 0, 0, 0, 0xED, 0xA0, 0x80); /* surrogate */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_BAD_DATA);
    FRAME(0x01, 0x82, 0, 0, 0, 0, 0xE2, 0x80, 0x80, 0x81, 0, 0, 0, 0, 0x81); /* split char: fine */
    ASSERT_EQ(error_of(f, n, 100), 0);
    FRAME(0x01, 0x81, 0, 0, 0, 0, 'a', 0x80, 0x81, 0, 0, 0, 0, 0x82); /* joined text bad */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_BAD_DATA);
    FRAME(0x01, 0x84, 0, 0, 0, 0, 'a', 'b', 'c', 'd', 0x80, 0x84, 0, 0, 0, 0, 'a', 'b', 'c',
          'd'); /* two fragments past cap 6 */
    ASSERT_EQ(error_of(f, n, 6), GIZ_WS_CLOSE_TOO_BIG);
    FRAME(0x88, 0x81, 0, 0, 0, 0, 0x03); /* close with 1 byte */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x88, 0x82, 0, 0, 0, 0, 0x03, 0xED); /* close 1005 on the wire */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE7); /* close 999 */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_PROTOCOL);
    FRAME(0x88, 0x83, 0, 0, 0, 0, 0x03, 0xE8, 0xFF); /* reason not UTF-8 */
    ASSERT_EQ(error_of(f, n, 100), GIZ_WS_CLOSE_BAD_DATA);
#undef FRAME
    ASSERT_TRUE(giz_ws_close_code_valid(1000) && giz_ws_close_code_valid(4999));
    ASSERT_TRUE(!giz_ws_close_code_valid(1004) && !giz_ws_close_code_valid(1006) &&
                !giz_ws_close_code_valid(1015) && !giz_ws_close_code_valid(5000));
}

TEST_CASE(close_and_after)
{
    struct giz_ws_reader r;
    static const uint8_t c[] = {0x88,    0x85,    1,    2,    3, 4, 0x03 ^ 1, 0xE8 ^ 2, 'b' ^ 3,
                                'y' ^ 4, 'e' ^ 1, 0x81, 0x80, 0, 0, 0,        0};
    giz_ws_reader_init(&r, 100, true);
    ASSERT_EQ(feed(&r, c, sizeof c), GIZ_WS_EV_CLOSE);
    ASSERT_EQ(ev.close_code, 1000);
    ASSERT_EQ(ev.len, 3);
    ASSERT_MEMEQ(ev.data, "bye", 3);
    giz_ws_reader_next(&r, &ev);
    ASSERT_EQ(ev.kind, GIZ_WS_EV_ERROR); /* nothing after a close */
    giz_ws_reader_free(&r);
    static const uint8_t bare[] = {0x88, 0x80, 9, 9, 9, 9};
    giz_ws_reader_init(&r, 100, true);
    ASSERT_EQ(feed(&r, bare, sizeof bare), GIZ_WS_EV_CLOSE);
    ASSERT_EQ(ev.close_code, GIZ_WS_CLOSE_NO_STATUS);
    giz_ws_reader_free(&r);
}

TEST_CASE(byte_at_a_time)
{
    struct giz_buf w;
    static const uint8_t mask[4] = {0xA1, 0x5E, 0x00, 0xFF};
    giz_buf_init(&w, 1 << 20);
    char text[300];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    ASSERT_EQ(giz_ws_frame_append(&w, GIZ_WS_OP_TEXT, text, sizeof text, mask), GIZ_OK);
    ASSERT_EQ(giz_ws_frame_append(&w, GIZ_WS_OP_PING, "p", 1, mask), GIZ_OK);
    ASSERT_EQ(giz_ws_frame_append(&w, GIZ_WS_OP_BINARY, "", 0, mask), GIZ_OK);
    struct giz_ws_reader r;
    giz_ws_reader_init(&r, 1000, true);
    enum giz_ws_event_kind got[3] = {0};
    size_t lens[3] = {0};
    unsigned n = 0;
    for (size_t i = 0; i < w.len; i++) {
        ASSERT_TRUE(giz_ws_reader_room(&r) > 0);
        ASSERT_EQ(giz_ws_reader_push(&r, w.data + i, 1), GIZ_OK);
        for (;;) {
            giz_ws_reader_next(&r, &ev);
            if (ev.kind == GIZ_WS_EV_NONE) break;
            if (n < 3) {
                if (ev.kind == GIZ_WS_EV_TEXT) ASSERT_MEMEQ(ev.data, text, sizeof text);
                lens[n] = ev.len;
                got[n] = ev.kind;
            }
            n++;
        }
    }
    ASSERT_EQ(n, 3);
    ASSERT_EQ(got[0], GIZ_WS_EV_TEXT);
    ASSERT_EQ(lens[0], sizeof text);
    ASSERT_EQ(got[1], GIZ_WS_EV_PING);
    ASSERT_EQ(got[2], GIZ_WS_EV_BINARY);
    ASSERT_EQ(lens[2], 0);
    giz_ws_reader_free(&r);

    /* server frames: unmasked, 16- and 64-bit lengths; the cap is kept */
    giz_buf_reset(&w);
    ASSERT_EQ(giz_ws_frame_append(&w, GIZ_WS_OP_TEXT, text, 200, NULL), GIZ_OK);
    ASSERT_EQ(w.data[0], 0x81);
    ASSERT_EQ(w.data[1], 126);
    ASSERT_EQ(w.len, 4 + 200);
    ASSERT_EQ(giz_ws_frame_append(&w, GIZ_WS_OP_PING, text, 126, NULL), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(giz_ws_close_append(&w, 1008, "policy"), GIZ_OK);
    ASSERT_EQ(w.data[204], 0x88);
    ASSERT_EQ(w.data[205], 8);
    ASSERT_EQ(w.data[206], 0x03);
    ASSERT_EQ(w.data[207], 0xF0);
    giz_buf_free(&w);
    struct giz_buf small;
    giz_buf_init(&small, 10);
    ASSERT_EQ(giz_ws_frame_append(&small, GIZ_WS_OP_TEXT, text, 9, NULL), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(small.len, 0);
    giz_buf_free(&small);
}

TEST_LIST(TEST_ENTRY(rfc_examples), TEST_ENTRY(violations), TEST_ENTRY(close_and_after),
          TEST_ENTRY(byte_at_a_time));
TEST_MAIN()
