/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for the RFC 6455 reader (lib/ws.c). The first input byte
 * picks the chunk size the rest arrives in (as a socket would split it) and
 * whether the reader is a server's (masks required) or a client's.
 * Invariants: events never exceed the message cap; text and close reasons
 * are valid UTF-8; close codes are sendable ones (or 1005); after an error
 * or a close only errors follow; every message, written again as a frame,
 * reads back unchanged.
 */
#include <string.h>

#include "fuzz.h"
#include "giz/error.h"
#include "giz/ws.h"

#define MAX_MSG 4096

static void round_trip(uint8_t op, const uint8_t *p, size_t n)
{
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    struct giz_buf w;
    struct giz_ws_reader r;
    struct giz_ws_event ev;
    giz_buf_init(&w, MAX_MSG + GIZ_WS_MAX_HEADER);
    FUZZ_CHECK(giz_ws_frame_append(&w, op, p, n, mask) == GIZ_OK);
    giz_ws_reader_init(&r, MAX_MSG, true);
    FUZZ_CHECK(giz_ws_reader_push(&r, w.data, w.len) == GIZ_OK);
    giz_ws_reader_next(&r, &ev);
    FUZZ_CHECK(ev.kind == (op == GIZ_WS_OP_TEXT ? GIZ_WS_EV_TEXT : GIZ_WS_EV_BINARY));
    FUZZ_CHECK(ev.len == n && (n == 0 || memcmp(ev.data, p, n) == 0));
    giz_ws_reader_free(&r);
    giz_buf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t chunk = (size_t)(data[0] & 0x3F) + 1;
    bool server = (data[0] & 0x40) == 0;
    data++;
    size--;
    struct giz_ws_reader r;
    giz_ws_reader_init(&r, MAX_MSG, server);
    bool ended = false;
    for (size_t off = 0; off < size && !ended;) {
        size_t room = giz_ws_reader_room(&r);
        FUZZ_CHECK(room > 0);
        size_t n = size - off < chunk ? size - off : chunk;
        if (n > room) n = room;
        FUZZ_CHECK(giz_ws_reader_push(&r, data + off, n) == GIZ_OK);
        off += n;
        for (;;) {
            struct giz_ws_event ev;
            giz_ws_reader_next(&r, &ev);
            if (ev.kind == GIZ_WS_EV_NONE) break;
            if (ev.kind == GIZ_WS_EV_ERROR) {
                FUZZ_CHECK(ev.why != NULL && ev.close_code >= 1000 && ev.close_code <= 1011);
                giz_ws_reader_next(&r, &ev);
                FUZZ_CHECK(ev.kind == GIZ_WS_EV_ERROR);
                ended = true;
                break;
            }
            FUZZ_CHECK(ev.len <= MAX_MSG);
            if (ev.kind == GIZ_WS_EV_TEXT) FUZZ_CHECK(giz_ws_utf8_valid(ev.data, ev.len));
            if (ev.kind == GIZ_WS_EV_PING || ev.kind == GIZ_WS_EV_PONG) FUZZ_CHECK(ev.len <= 125);
            if (ev.kind == GIZ_WS_EV_TEXT || ev.kind == GIZ_WS_EV_BINARY)
                round_trip(ev.kind == GIZ_WS_EV_TEXT ? GIZ_WS_OP_TEXT : GIZ_WS_OP_BINARY, ev.data,
                           ev.len);
            if (ev.kind == GIZ_WS_EV_CLOSE) {
                FUZZ_CHECK(ev.close_code == GIZ_WS_CLOSE_NO_STATUS ||
                           giz_ws_close_code_valid(ev.close_code));
                FUZZ_CHECK(giz_ws_utf8_valid(ev.data, ev.len));
                giz_ws_reader_next(&r, &ev);
                FUZZ_CHECK(ev.kind == GIZ_WS_EV_ERROR);
                ended = true;
                break;
            }
        }
    }
    giz_ws_reader_free(&r);
    return 0;
}
