/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * RFC 6455 WebSocket framing (no extensions): an incremental reader that
 * takes bytes as they arrive and hands out whole messages (fragments joined,
 * control frames in between), checking everything a server must check --
 * reserved bits, opcodes, masking, minimal lengths, control-frame rules,
 * size caps, UTF-8 of text and close reasons, close codes -- and a frame
 * writer. Pure code: no I/O, no threads; the caller owns the buffers.
 */
#ifndef GIZ_WS_H
#define GIZ_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giz/util.h"

#define GIZ_WS_OP_CONT 0x0
#define GIZ_WS_OP_TEXT 0x1
#define GIZ_WS_OP_BINARY 0x2
#define GIZ_WS_OP_CLOSE 0x8
#define GIZ_WS_OP_PING 0x9
#define GIZ_WS_OP_PONG 0xA

/* Close codes (RFC 6455 7.4.1) the reader reports and the server sends. */
#define GIZ_WS_CLOSE_NORMAL 1000
#define GIZ_WS_CLOSE_GOING_AWAY 1001
#define GIZ_WS_CLOSE_PROTOCOL 1002
#define GIZ_WS_CLOSE_UNSUPPORTED 1003
#define GIZ_WS_CLOSE_NO_STATUS 1005 /* never on the wire: a close frame without a code */
#define GIZ_WS_CLOSE_BAD_DATA 1007  /* text that is not UTF-8 */
#define GIZ_WS_CLOSE_POLICY 1008
#define GIZ_WS_CLOSE_TOO_BIG 1009
#define GIZ_WS_CLOSE_INTERNAL 1011

/* The handshake GUID of RFC 6455 1.3 (Sec-WebSocket-Accept). */
#define GIZ_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Largest frame header: 2 + 8 (length) + 4 (mask). */
#define GIZ_WS_MAX_HEADER 14

enum giz_ws_event_kind {
    GIZ_WS_EV_NONE = 0, /* need more bytes */
    GIZ_WS_EV_TEXT,     /* a whole text message, valid UTF-8 */
    GIZ_WS_EV_BINARY,   /* a whole binary message */
    GIZ_WS_EV_PING,
    GIZ_WS_EV_PONG,
    GIZ_WS_EV_CLOSE, /* the peer's close frame; close_code (1005 if none), data = reason */
    GIZ_WS_EV_ERROR  /* protocol violation: close the connection with close_code */
};

struct giz_ws_event {
    enum giz_ws_event_kind kind;
    const uint8_t *data; /* valid until the next call on the reader */
    size_t len;
    uint16_t close_code;
    const char *why; /* short static text for EV_ERROR (never input bytes) */
};

struct giz_ws_reader {
    bool require_mask; /* a server's reader: every client frame must be masked */
    size_t max_message;
    struct giz_buf in;  /* bytes received, not yet parsed (capped) */
    struct giz_buf msg; /* the fragmented message being joined */
    uint8_t msg_op;     /* opcode of that message, 0 = none */
    size_t consumed;    /* bytes of `in` handed out by the last event */
    bool failed;        /* an EV_ERROR was returned: only EV_ERROR from now on */
    uint16_t fail_code;
    const char *fail_why;
};

/* Sets up a reader for messages of at most max_message bytes (payloads of
 * single frames included). require_mask: true on a server. */
void giz_ws_reader_init(struct giz_ws_reader *r, size_t max_message, bool require_mask);
void giz_ws_reader_free(struct giz_ws_reader *r);
/* Adds received bytes. GIZ_OK, GIZ_ERR_OVERSIZE (more unparsed input than
 * one maximal frame: the caller must close with 1009) or GIZ_ERR_NOMEM. */
int giz_ws_reader_push(struct giz_ws_reader *r, const void *p, size_t n);
/* How many bytes the next push may add (read at most this much). */
size_t giz_ws_reader_room(struct giz_ws_reader *r);
/* The next event from what was pushed (EV_NONE: push more). Call it until
 * EV_NONE; after EV_ERROR or EV_CLOSE stop reading. */
void giz_ws_reader_next(struct giz_ws_reader *r, struct giz_ws_event *ev);

/* Appends one frame to out: FIN set, unmasked when mask is NULL (a server's
 * frames), else masked with the 4 bytes of mask (a client's). GIZ_OK,
 * GIZ_ERR_OVERSIZE (out's cap, or a control payload over 125 bytes),
 * GIZ_ERR_NOMEM. */
int giz_ws_frame_append(struct giz_buf *out, uint8_t opcode, const void *payload, size_t n,
                        const uint8_t *mask);
/* Appends a close frame with `code` and a reason (cut to fit 125 bytes at a
 * UTF-8 character boundary). */
int giz_ws_close_append(struct giz_buf *out, uint16_t code, const char *reason);

/* true if p[0..n) is well-formed UTF-8 (RFC 3629). */
bool giz_ws_utf8_valid(const uint8_t *p, size_t n);
/* true if `code` may be sent in a close frame (RFC 6455 7.4). */
bool giz_ws_close_code_valid(unsigned code);

#endif
