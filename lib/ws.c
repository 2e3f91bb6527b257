/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * RFC 6455 framing (giz/ws.h). The reader keeps unparsed bytes in `in`
 * (never more than one maximal frame, since the caller drains events before
 * pushing more), unmasks payloads in place and joins fragments in `msg`.
 * Event data points into those buffers and stays valid until the next call.
 */
#include "giz/ws.h"

#include <string.h>

#include "giz/error.h"

void giz_ws_reader_init(struct giz_ws_reader *r, size_t max_message, bool require_mask)
{
    memset(r, 0, sizeof *r);
    r->require_mask = require_mask;
    r->max_message = max_message;
    giz_buf_init(&r->in, max_message + GIZ_WS_MAX_HEADER);
    giz_buf_init(&r->msg, max_message);
}

void giz_ws_reader_free(struct giz_ws_reader *r)
{
    giz_buf_free(&r->in);
    giz_buf_free(&r->msg);
}

int giz_ws_reader_push(struct giz_ws_reader *r, const void *p, size_t n)
{
    if (r->consumed > 0) {
        giz_buf_consume(&r->in, r->consumed);
        r->consumed = 0;
    }
    return giz_buf_append(&r->in, p, n);
}

size_t giz_ws_reader_room(struct giz_ws_reader *r)
{
    if (r->consumed > 0) {
        giz_buf_consume(&r->in, r->consumed);
        r->consumed = 0;
    }
    return r->in.max - r->in.len;
}

bool giz_ws_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= need) return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

bool giz_ws_close_code_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999) return true;
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
}

static void fail(struct giz_ws_reader *r, struct giz_ws_event *ev, uint16_t code, const char *why)
{
    r->failed = true;
    r->fail_code = code;
    r->fail_why = why;
    ev->kind = GIZ_WS_EV_ERROR;
    ev->close_code = code;
    ev->why = why;
    ev->data = NULL;
    ev->len = 0;
}

void giz_ws_reader_next(struct giz_ws_reader *r, struct giz_ws_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (r->failed) {
        ev->kind = GIZ_WS_EV_ERROR;
        ev->close_code = r->fail_code;
        ev->why = r->fail_why;
        return;
    }
    if (r->consumed > 0) {
        giz_buf_consume(&r->in, r->consumed);
        r->consumed = 0;
    }
    if (r->msg_op == 0xFF) { /* the joined message was handed out last time */
        giz_buf_reset(&r->msg);
        r->msg_op = 0;
    }
    for (;;) {
        const uint8_t *b = r->in.data;
        size_t avail = r->in.len;
        if (avail < 2) return;
        bool fin = (b[0] & 0x80) != 0;
        uint8_t op = b[0] & 0x0F;
        bool masked = (b[1] & 0x80) != 0;
        uint64_t len = b[1] & 0x7F;
        size_t hdr = 2;
        if (b[0] & 0x70) return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "reserved bits set");
        bool control = (op & 0x8) != 0;
        if (control ? (op > GIZ_WS_OP_PONG) : (op > GIZ_WS_OP_BINARY))
            return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "unknown opcode");
        if (masked != r->require_mask)
            return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL,
                        r->require_mask ? "client frame not masked" : "server frame masked");
        if (control && (!fin || len > 125))
            return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "fragmented or long control frame");
        if (len == 126) {
            if (avail < 4) return;
            len = ((uint64_t)b[2] << 8) | b[3];
            hdr = 4;
            if (len < 126) return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "length not minimal");
        } else if (len == 127) {
            if (avail < 10) return;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | b[2 + i];
            hdr = 10;
            if (len >> 63) return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "length top bit set");
            if (len <= 0xFFFF) return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "length not minimal");
        }
        if (!control) {
            if (op == GIZ_WS_OP_CONT && r->msg_op == 0)
                return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "continuation without a message");
            if (op != GIZ_WS_OP_CONT && r->msg_op != 0)
                return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
            if (len > r->max_message || r->msg.len > r->max_message - len)
                return fail(r, ev, GIZ_WS_CLOSE_TOO_BIG, "message too big");
        }
        size_t mask_at = hdr;
        if (masked) hdr += 4;
        if (avail < hdr || avail - hdr < len) return; /* the rest has not arrived */
        uint8_t *pl = r->in.data + hdr;
        if (masked)
            for (size_t i = 0; i < (size_t)len; i++)
                pl[i] ^= r->in.data[mask_at + (i & 3)];
        r->consumed = hdr + (size_t)len;
        ev->data = pl;
        ev->len = (size_t)len;
        if (control) {
            if (op == GIZ_WS_OP_PING) {
                ev->kind = GIZ_WS_EV_PING;
            } else if (op == GIZ_WS_OP_PONG) {
                ev->kind = GIZ_WS_EV_PONG;
            } else {
                if (len == 1) return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "close payload of 1 byte");
                ev->kind = GIZ_WS_EV_CLOSE;
                ev->close_code = GIZ_WS_CLOSE_NO_STATUS;
                if (len >= 2) {
                    ev->close_code = (uint16_t)((pl[0] << 8) | pl[1]);
                    if (!giz_ws_close_code_valid(ev->close_code))
                        return fail(r, ev, GIZ_WS_CLOSE_PROTOCOL, "invalid close code");
                    if (!giz_ws_utf8_valid(pl + 2, (size_t)len - 2))
                        return fail(r, ev, GIZ_WS_CLOSE_BAD_DATA, "close reason not UTF-8");
                    ev->data = pl + 2;
                    ev->len = (size_t)len - 2;
                }
                r->failed = true; /* nothing may follow a close */
                r->fail_code = GIZ_WS_CLOSE_PROTOCOL;
                r->fail_why = "data after close";
            }
            return;
        }
        if (fin && r->msg_op == 0) { /* a whole message in one frame */
            if (op == GIZ_WS_OP_TEXT && !giz_ws_utf8_valid(pl, (size_t)len))
                return fail(r, ev, GIZ_WS_CLOSE_BAD_DATA, "text not UTF-8");
            ev->kind = op == GIZ_WS_OP_TEXT ? GIZ_WS_EV_TEXT : GIZ_WS_EV_BINARY;
            return;
        }
        if (giz_buf_append(&r->msg, pl, (size_t)len) != GIZ_OK)
            return fail(r, ev, GIZ_WS_CLOSE_INTERNAL, "out of memory");
        if (op != GIZ_WS_OP_CONT) r->msg_op = op;
        giz_buf_consume(&r->in, r->consumed);
        r->consumed = 0;
        memset(ev, 0, sizeof *ev);
        if (!fin) continue;
        uint8_t mop = r->msg_op;
        if (mop == GIZ_WS_OP_TEXT && !giz_ws_utf8_valid(r->msg.data, r->msg.len))
            return fail(r, ev, GIZ_WS_CLOSE_BAD_DATA, "text not UTF-8");
        ev->kind = mop == GIZ_WS_OP_TEXT ? GIZ_WS_EV_TEXT : GIZ_WS_EV_BINARY;
        ev->data = r->msg.data != NULL ? r->msg.data : (const uint8_t *)"";
        ev->len = r->msg.len;
        r->msg_op = 0xFF;
        return;
    }
}

int giz_ws_frame_append(struct giz_buf *out, uint8_t opcode, const void *payload, size_t n,
                        const uint8_t *mask)
{
    uint8_t h[GIZ_WS_MAX_HEADER];
    size_t hl = 2;
    if ((opcode & 0x8) && n > 125) return GIZ_ERR_OVERSIZE;
    h[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    uint8_t mbit = mask != NULL ? 0x80 : 0;
    if (n < 126) {
        h[1] = (uint8_t)(mbit | n);
    } else if (n <= 0xFFFF) {
        h[1] = (uint8_t)(mbit | 126);
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = (uint8_t)(mbit | 127);
        uint64_t v = n;
        for (int i = 7; i >= 0; i--) {
            h[2 + i] = (uint8_t)v;
            v >>= 8;
        }
        hl = 10;
    }
    if (mask != NULL) {
        memcpy(h + hl, mask, 4);
        hl += 4;
    }
    if (out->len > out->max || hl + n > out->max - out->len) return GIZ_ERR_OVERSIZE;
    int rc = giz_buf_append(out, h, hl);
    if (rc != GIZ_OK) return rc;
    size_t at = out->len;
    rc = giz_buf_append(out, payload, n);
    if (rc != GIZ_OK) {
        out->len -= hl;
        return rc;
    }
    if (mask != NULL)
        for (size_t i = 0; i < n; i++)
            out->data[at + i] ^= mask[i & 3];
    return GIZ_OK;
}

int giz_ws_close_append(struct giz_buf *out, uint16_t code, const char *reason)
{
    uint8_t p[125];
    size_t rl = reason != NULL ? strlen(reason) : 0;
    if (rl > 123) rl = 123;
    while (rl > 0 && !giz_ws_utf8_valid((const uint8_t *)reason, rl))
        rl--; /* cut at a character boundary */
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rl > 0) memcpy(p + 2, reason, rl);
    return giz_ws_frame_append(out, GIZ_WS_OP_CLOSE, p, 2 + rl, NULL);
}
