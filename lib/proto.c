/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Gizwits protocol v4 payload codec: decodes one payload into struct
 * giz_msg (views into the input, no allocation) and encodes it back in the
 * spec's form. Layouts, as they appear on the wire (hex, big-endian):
 *
 *   framed: 00000003 | Len varint (1-4 B, counts flags..end) | flags 00 | cmd (2) | body
 *   bare:   00000003 | cmd (2) | body            (0x020E, 0x020F, 0x0210, 0x0211)
 *
 *   0x0090/0x0091 body: data (<= 65535)
 *   0x0093/0x0094 body: SN (4) | data (<= 65535)
 *   0x0010 body:        bits 8-15 (1) | bits 0-7 (1)
 *   0x0011 body:        (none)
 *   0x0012 body:        level (1: 1..3) | tags len (2) | tags (<= 256)
 *                       | source len (2) | source (<= 32) | content len (2)
 *                       | content (<= 65535); all three texts UTF-8
 *   0x020E body:        type (1) | fid (4) | url len (2) | url (<= 512)
 *   0x020F body:        (none)
 *   0x0210 body:        count (2)
 *   0x0211 body:        type (1) [ | DID len (2) | DID (<= 64) ]  (public cloud sends the DID)
 *
 * Newer device -> cloud commands (bare, after the cmd a sub-header instead
 * of a varint): flags (2) | len (2, = the rest of the input) | data
 *   0x021E data:        (none expected; kept as a view). Firmware sends only
 *                       `0000` after the cmd (its "sub data length" 0): the
 *                       short form, exactly two zero bytes.
 *   0x021C data:        [subdev: len (2) | text] if flags bit 0, [module
 *                       "hw,sw": len (2) | text] if bit 1, [MCU "hw,sw": len
 *                       (2) | text] if bit 2; then, only if other bits are
 *                       set, their data (opaque)
 *   0x022C data:        percent (1) | version len (2) | "hw,sw" | info len (2) | info
 *
 * Telling the two forms apart: a framed message has Len >= 3, so a varint
 * starting with byte 0x02 at offset 4 is never framed; 02 0E/0F/10/11 there
 * is the bare form. Non-minimal varints (e.g. 83 00 for 3) are accepted.
 *
 * Error offsets: TRUNCATED reports the input length (where more bytes were
 * needed); every other error reports the offset of the offending field
 * (BAD_UTF8: of the first invalid byte; TRAILING: of the first extra byte).
 */
#include <string.h>

#include "giz/proto.h"

/* Largest DID accepted in a 0x0211 body (the public cloud sends 22). */
#define GIZ__MAX_OTA41_DID 64u

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *wrview(uint8_t *p, struct giz_view v)
{
    if (v.len) memcpy(p, v.ptr, v.len);
    return p + v.len;
}

static bool is_bare_cmd(uint16_t cmd)
{
    return cmd == GIZ_CMD_OTA_PUSH_V40 || cmd == GIZ_CMD_APP_COUNT_REQ ||
           cmd == GIZ_CMD_APP_COUNT || cmd == GIZ_CMD_OTA_PUSH_V41 ||
           cmd == GIZ_CMD_VERSION_REPORT || cmd == GIZ_CMD_RESET_NOTICE ||
           cmd == GIZ_CMD_OTA_PROGRESS;
}

#define GIZ__VERFLAGS_KNOWN (GIZ_VERFLAG_SUBDEV | GIZ_VERFLAG_MODULE | GIZ_VERFLAG_MCU)

/* Returns the name of a known command, NULL otherwise. */
const char *giz_cmd_name(uint16_t cmd)
{
    switch (cmd) {
    case GIZ_CMD_LOG_LEVEL_SET:
        return "log_level_set";
    case GIZ_CMD_LOG_LEVEL_ACK:
        return "log_level_ack";
    case GIZ_CMD_LOG:
        return "log";
    case GIZ_CMD_BIZ:
        return "biz";
    case GIZ_CMD_BIZ_REPLY:
        return "biz_reply";
    case GIZ_CMD_BIZ_SN:
        return "biz_sn";
    case GIZ_CMD_BIZ_SN_ACK:
        return "biz_sn_ack";
    case GIZ_CMD_OTA_PUSH_V40:
        return "ota_push_v40";
    case GIZ_CMD_APP_COUNT_REQ:
        return "app_count_req";
    case GIZ_CMD_APP_COUNT:
        return "app_count";
    case GIZ_CMD_OTA_PUSH_V41:
        return "ota_push_v41";
    case GIZ_CMD_VERSION_REPORT:
        return "version_report";
    case GIZ_CMD_RESET_NOTICE:
        return "reset_notice";
    case GIZ_CMD_OTA_PROGRESS:
        return "ota_progress";
    default:
        return NULL;
    }
}

/* Decodes an MQTT varint from buf[0..len); see proto.h. */
int giz_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, size_t *used)
{
    uint32_t v = 0;
    size_t i;

    for (i = 0; i < 4; i++) {
        if (i >= len) return GIZ_ERR_TRUNCATED;
        v |= (uint32_t)(buf[i] & 0x7Fu) << (7 * i);
        if (!(buf[i] & 0x80u)) {
            if (value) *value = v;
            if (used) *used = i + 1;
            return GIZ_OK;
        }
    }
    return GIZ_ERR_BAD_VARINT;
}

/* Encodes `value` as an MQTT varint; returns bytes written or 0. */
size_t giz_varint_encode(uint32_t value, uint8_t *buf, size_t cap)
{
    size_t n = 0;

    if (value > GIZ_VARINT_MAX) return 0;
    do {
        uint8_t b = (uint8_t)(value & 0x7Fu);
        value >>= 7;
        if (value) b |= 0x80u;
        if (n >= cap) return 0;
        buf[n++] = b;
    } while (value);
    return n;
}

/* Returns the index of the first byte of buf[0..len) that is not part of a
 * valid UTF-8 sequence, or len if all of it is valid. */
static size_t utf8_bad_at(const uint8_t *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = buf[i];
        size_t n;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
            min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((buf[i + k] & 0xC0u) != 0x80u) return i;
            cp = cp << 6 | (buf[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return i;
        i += n + 1;
    }
    return len;
}

/* Returns true if buf[0..len) is valid UTF-8. */
bool giz_utf8_valid(const uint8_t *buf, size_t len)
{
    if (!buf) return len == 0;
    return utf8_bad_at(buf, len) == len;
}

/* Reads a 2-byte length and the bytes it announces at *pos, up to `max`. */
static int rd_lenstr(const uint8_t *buf, size_t len, size_t *pos, size_t max, struct giz_view *out,
                     struct giz_error *err, const char *what)
{
    size_t p = *pos;
    size_t n;

    if (len - p < 2) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, what);
    n = rd16(buf + p);
    if (n > max) return giz_error_set(err, GIZ_ERR_OVERSIZE, p, what);
    if (n > len - p - 2) return giz_error_set(err, GIZ_ERR_LENGTH_MISMATCH, p, what);
    out->ptr = buf + p + 2;
    out->len = n;
    *pos = p + 2 + n;
    return GIZ_OK;
}

static int check_text(const uint8_t *buf, struct giz_view v, struct giz_error *err,
                      const char *what)
{
    size_t bad = utf8_bad_at(v.ptr, v.len);

    if (bad != v.len)
        return giz_error_set(err, GIZ_ERR_BAD_UTF8, (size_t)(v.ptr - buf) + bad, what);
    return GIZ_OK;
}

/* Reads the sub-header of the newer commands at *pos: flags (2) and a
 * length (2) that must announce exactly the rest of the input. */
static int rd_subhdr(const uint8_t *buf, size_t len, size_t *pos, uint16_t *flags,
                     struct giz_error *err)
{
    size_t p = *pos;

    if (len - p < 4) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "flags and length");
    *flags = rd16(buf + p);
    if (rd16(buf + p + 2) != len - p - 4)
        return giz_error_set(err, GIZ_ERR_LENGTH_MISMATCH, p + 2,
                             "length disagrees with the input");
    *pos = p + 4;
    return GIZ_OK;
}

/* Decodes the body of `m->cmd` in buf[p..len). */
static int decode_body(const uint8_t *buf, size_t len, size_t p, struct giz_msg *m,
                       struct giz_error *err)
{
    int rc = GIZ_OK;

    switch (m->cmd) {
    case GIZ_CMD_BIZ:
    case GIZ_CMD_BIZ_REPLY:
        if (len - p > GIZ_MAX_BIZ)
            return giz_error_set(err, GIZ_ERR_OVERSIZE, p, "business message over 65535 bytes");
        m->u.biz.data.ptr = buf + p;
        m->u.biz.data.len = len - p;
        p = len;
        break;
    case GIZ_CMD_BIZ_SN:
    case GIZ_CMD_BIZ_SN_ACK:
        if (len - p < 4) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "SN");
        m->u.biz_sn.sn = rd32(buf + p);
        p += 4;
        if (len - p > GIZ_MAX_BIZ)
            return giz_error_set(err, GIZ_ERR_OVERSIZE, p, "business message over 65535 bytes");
        m->u.biz_sn.data.ptr = buf + p;
        m->u.biz_sn.data.len = len - p;
        p = len;
        break;
    case GIZ_CMD_LOG_LEVEL_SET:
        if (len - p < 2) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "log level bits");
        /* wire: bits 8-15 first, then bits 0-7 */
        m->u.log_level.bits = rd16(buf + p);
        p += 2;
        break;
    case GIZ_CMD_LOG:
        if (len - p < 1) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "log level");
        m->u.log.level = buf[p];
        if (m->u.log.level < GIZ_LOGLVL_ERROR || m->u.log.level > GIZ_LOGLVL_INFO)
            return giz_error_set(err, GIZ_ERR_BAD_VALUE, p, "log level not 1..3");
        p++;
        rc = rd_lenstr(buf, len, &p, GIZ_MAX_LOG_TAGS, &m->u.log.tags, err, "log tags");
        if (rc == GIZ_OK) rc = check_text(buf, m->u.log.tags, err, "log tags");
        if (rc == GIZ_OK)
            rc = rd_lenstr(buf, len, &p, GIZ_MAX_LOG_SOURCE, &m->u.log.source, err, "log source");
        if (rc == GIZ_OK) rc = check_text(buf, m->u.log.source, err, "log source");
        if (rc == GIZ_OK)
            rc =
                rd_lenstr(buf, len, &p, GIZ_MAX_LOG_CONTENT, &m->u.log.content, err, "log content");
        if (rc == GIZ_OK) rc = check_text(buf, m->u.log.content, err, "log content");
        if (rc != GIZ_OK) return rc;
        break;
    case GIZ_CMD_OTA_PUSH_V40:
        if (len - p < 5) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "OTA type and fid");
        m->u.ota40.type = buf[p];
        m->u.ota40.fid = rd32(buf + p + 1);
        p += 5;
        rc = rd_lenstr(buf, len, &p, GIZ_MAX_OTA_URL, &m->u.ota40.url, err, "OTA url");
        if (rc != GIZ_OK) return rc;
        break;
    case GIZ_CMD_APP_COUNT:
        if (len - p < 2) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "app count");
        m->u.app_count.count = rd16(buf + p);
        p += 2;
        break;
    case GIZ_CMD_OTA_PUSH_V41:
        if (len - p < 1) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "OTA type");
        m->u.ota41.type = buf[p++];
        m->u.ota41.did.ptr = buf + p;
        m->u.ota41.did.len = 0;
        if (p < len) {
            rc = rd_lenstr(buf, len, &p, GIZ__MAX_OTA41_DID, &m->u.ota41.did, err, "OTA DID");
            if (rc != GIZ_OK) return rc;
        }
        break;
    case GIZ_CMD_RESET_NOTICE:
        if (len - p == 2 && buf[p] == 0 && buf[p + 1] == 0) {
            m->u.reset.long_form = false; /* firmware: `0000` */
            m->u.reset.data.ptr = buf + len;
            p = len;
            break;
        }
        m->u.reset.long_form = true;
        rc = rd_subhdr(buf, len, &p, &m->u.reset.flags, err);
        if (rc != GIZ_OK) return rc;
        m->u.reset.data.ptr = buf + p;
        m->u.reset.data.len = len - p;
        p = len;
        break;
    case GIZ_CMD_VERSION_REPORT: {
        static const uint16_t bits[3] = {GIZ_VERFLAG_SUBDEV, GIZ_VERFLAG_MODULE, GIZ_VERFLAG_MCU};
        static const char *const what[3] = {"sub-device id", "module version", "MCU version"};
        struct giz_view *fields[3];
        uint16_t flags = 0;

        fields[0] = &m->u.version.subdev;
        fields[1] = &m->u.version.module;
        fields[2] = &m->u.version.mcu;
        rc = rd_subhdr(buf, len, &p, &flags, err);
        if (rc != GIZ_OK) return rc;
        m->u.version.flags = flags;
        for (int i = 0; i < 3; i++) {
            fields[i]->ptr = buf + p;
            fields[i]->len = 0;
            if (!(flags & bits[i])) continue;
            rc = rd_lenstr(buf, len, &p, 0xFFFFu, fields[i], err, what[i]);
            if (rc != GIZ_OK) return rc;
        }
        m->u.version.rest.ptr = buf + p;
        m->u.version.rest.len = 0;
        if (flags & ~GIZ__VERFLAGS_KNOWN) {
            m->u.version.rest.len = len - p;
            p = len;
        }
        break;
    }
    case GIZ_CMD_OTA_PROGRESS:
        rc = rd_subhdr(buf, len, &p, &m->u.ota_progress.flags, err);
        if (rc != GIZ_OK) return rc;
        if (len - p < 1) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "OTA percent");
        m->u.ota_progress.percent = buf[p++];
        rc = rd_lenstr(buf, len, &p, 0xFFFFu, &m->u.ota_progress.version, err, "OTA version");
        if (rc == GIZ_OK)
            rc = rd_lenstr(buf, len, &p, 0xFFFFu, &m->u.ota_progress.info, err, "OTA status");
        if (rc != GIZ_OK) return rc;
        break;
    case GIZ_CMD_LOG_LEVEL_ACK:
    case GIZ_CMD_APP_COUNT_REQ:
        break;
    default:
        return giz_error_set(err, GIZ_ERR_UNKNOWN_CMD, p - 2, "unknown command");
    }
    if (p != len) return giz_error_set(err, GIZ_ERR_TRAILING, p, "trailing bytes");
    return GIZ_OK;
}

/* Decodes one payload; see proto.h for the contract. */
int giz_msg_decode(const uint8_t *buf, size_t len, struct giz_msg *out, struct giz_error *err)
{
    static const uint8_t header[4] = {0x00, 0x00, 0x00, 0x03};
    struct giz_msg m;
    size_t p;
    int rc;

    memset(&m, 0, sizeof m);
    if (!buf && len) return giz_error_set(err, GIZ_ERR_INVAL, 0, "NULL input");
    if (memcmp(buf ? buf : header, header, len < 4 ? len : 4) != 0)
        return giz_error_set(err, GIZ_ERR_BAD_HEADER, 0, "fixed header is not 00000003");
    if (len < 5) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "input ends in the header");

    if (buf[4] == 0x02) {
        /* bare form: a framed Len is >= 3, so 0x02 here starts a command */
        if (len < 6) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "input ends in the command");
        m.cmd = rd16(buf + 4);
        m.framed = false;
        if (!is_bare_cmd(m.cmd))
            return giz_error_set(err, GIZ_ERR_UNKNOWN_CMD, 4, "unknown bare command");
        p = 6;
    } else {
        uint32_t vlen;
        size_t used;

        rc = giz_varint_decode(buf + 4, len - 4, &vlen, &used);
        if (rc == GIZ_ERR_TRUNCATED)
            return giz_error_set(err, rc, len, "input ends in the Len varint");
        if (rc != GIZ_OK) return giz_error_set(err, rc, 4, "Len varint longer than 4 bytes");
        p = 4 + used;
        if (vlen != len - p)
            return giz_error_set(err, GIZ_ERR_LENGTH_MISMATCH, 4, "Len disagrees with the input");
        if (len - p < 3)
            return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "message ends before the command");
        m.framed = true;
        m.flags = buf[p];
        if (m.flags != 0) return giz_error_set(err, GIZ_ERR_BAD_FLAGS, p, "flags byte is not 00");
        m.cmd = rd16(buf + p + 1);
        if (!giz_cmd_name(m.cmd))
            return giz_error_set(err, GIZ_ERR_UNKNOWN_CMD, p + 1, "unknown command");
        p += 3;
    }
    rc = decode_body(buf, len, p, &m, err);
    if (rc == GIZ_OK) {
        if (out) *out = m;
        giz_error_set(err, GIZ_OK, len, "ok");
    }
    return rc;
}

static bool view_ok(struct giz_view v)
{
    return v.ptr || v.len == 0;
}

/* Data size of a 0x021C (after flags and length), or GIZ_ERR_*. */
static int version_data_size(const struct giz_msg *msg, size_t *out)
{
    const struct giz_view *f[4] = {&msg->u.version.subdev, &msg->u.version.module,
                                   &msg->u.version.mcu, &msg->u.version.rest};
    static const uint16_t bits[3] = {GIZ_VERFLAG_SUBDEV, GIZ_VERFLAG_MODULE, GIZ_VERFLAG_MCU};
    uint16_t flags = msg->u.version.flags;
    size_t n = 0;

    for (int i = 0; i < 4; i++) {
        if (!view_ok(*f[i])) return GIZ_ERR_INVAL;
        if (f[i]->len > 0xFFFFu) return GIZ_ERR_OVERSIZE;
    }
    for (int i = 0; i < 3; i++) {
        if (flags & bits[i])
            n += 2 + f[i]->len;
        else if (f[i]->len)
            return GIZ_ERR_BAD_VALUE; /* a field without its flag bit */
    }
    if (f[3]->len && !(flags & ~GIZ__VERFLAGS_KNOWN))
        return GIZ_ERR_BAD_VALUE; /* opaque data needs an unknown flag bit */
    n += f[3]->len;
    if (n > 0xFFFFu) return GIZ_ERR_OVERSIZE;
    *out = n;
    return GIZ_OK;
}

/* Checks that `msg` is encodable; on success sets *body to its body size. */
static int body_size(const struct giz_msg *msg, size_t *body)
{
    const struct giz_view *t[3];
    size_t n = 0;
    int rc;

    switch (msg->cmd) {
    case GIZ_CMD_BIZ:
    case GIZ_CMD_BIZ_REPLY:
        if (!view_ok(msg->u.biz.data)) return GIZ_ERR_INVAL;
        if (msg->u.biz.data.len > GIZ_MAX_BIZ) return GIZ_ERR_OVERSIZE;
        *body = msg->u.biz.data.len;
        return GIZ_OK;
    case GIZ_CMD_BIZ_SN:
    case GIZ_CMD_BIZ_SN_ACK:
        if (!view_ok(msg->u.biz_sn.data)) return GIZ_ERR_INVAL;
        if (msg->u.biz_sn.data.len > GIZ_MAX_BIZ) return GIZ_ERR_OVERSIZE;
        *body = 4 + msg->u.biz_sn.data.len;
        return GIZ_OK;
    case GIZ_CMD_LOG_LEVEL_SET:
    case GIZ_CMD_APP_COUNT:
        *body = 2;
        return GIZ_OK;
    case GIZ_CMD_LOG_LEVEL_ACK:
    case GIZ_CMD_APP_COUNT_REQ:
        *body = 0;
        return GIZ_OK;
    case GIZ_CMD_LOG:
        if (msg->u.log.level < GIZ_LOGLVL_ERROR || msg->u.log.level > GIZ_LOGLVL_INFO)
            return GIZ_ERR_BAD_VALUE;
        t[0] = &msg->u.log.tags;
        t[1] = &msg->u.log.source;
        t[2] = &msg->u.log.content;
        for (int i = 0; i < 3; i++)
            if (!view_ok(*t[i])) return GIZ_ERR_INVAL;
        if (t[0]->len > GIZ_MAX_LOG_TAGS || t[1]->len > GIZ_MAX_LOG_SOURCE ||
            t[2]->len > GIZ_MAX_LOG_CONTENT)
            return GIZ_ERR_OVERSIZE;
        for (int i = 0; i < 3; i++)
            if (!giz_utf8_valid(t[i]->ptr, t[i]->len)) return GIZ_ERR_BAD_UTF8;
        *body = 1 + 6 + t[0]->len + t[1]->len + t[2]->len;
        return GIZ_OK;
    case GIZ_CMD_OTA_PUSH_V40:
        if (!view_ok(msg->u.ota40.url)) return GIZ_ERR_INVAL;
        if (msg->u.ota40.url.len > GIZ_MAX_OTA_URL) return GIZ_ERR_OVERSIZE;
        *body = 1 + 4 + 2 + msg->u.ota40.url.len;
        return GIZ_OK;
    case GIZ_CMD_OTA_PUSH_V41:
        if (!view_ok(msg->u.ota41.did)) return GIZ_ERR_INVAL;
        if (msg->u.ota41.did.len > GIZ__MAX_OTA41_DID) return GIZ_ERR_OVERSIZE;
        *body = 1 + (msg->u.ota41.did.len ? 2 + msg->u.ota41.did.len : 0);
        return GIZ_OK;
    case GIZ_CMD_RESET_NOTICE:
        if (!view_ok(msg->u.reset.data)) return GIZ_ERR_INVAL;
        if (!msg->u.reset.long_form) {
            if (msg->u.reset.flags != 0 || msg->u.reset.data.len != 0)
                return GIZ_ERR_BAD_VALUE; /* the short form carries nothing */
            *body = 2;
            return GIZ_OK;
        }
        if (msg->u.reset.data.len > 0xFFFFu) return GIZ_ERR_OVERSIZE;
        *body = 4 + msg->u.reset.data.len;
        return GIZ_OK;
    case GIZ_CMD_VERSION_REPORT:
        rc = version_data_size(msg, &n);
        if (rc != GIZ_OK) return rc;
        *body = 4 + n;
        return GIZ_OK;
    case GIZ_CMD_OTA_PROGRESS:
        if (!view_ok(msg->u.ota_progress.version) || !view_ok(msg->u.ota_progress.info))
            return GIZ_ERR_INVAL;
        n = 1 + 2 + msg->u.ota_progress.version.len + 2 + msg->u.ota_progress.info.len;
        if (n > 0xFFFFu) return GIZ_ERR_OVERSIZE;
        *body = 4 + n;
        return GIZ_OK;
    default:
        return GIZ_ERR_UNKNOWN_CMD;
    }
}

/* Computes the total encoded size; returns GIZ_OK or the refusal code. */
static int total_size(const struct giz_msg *msg, size_t *total)
{
    size_t body = 0;
    uint8_t tmp[4];
    int rc;

    if (!msg) return GIZ_ERR_INVAL;
    rc = body_size(msg, &body);
    if (rc != GIZ_OK) return rc;
    if (is_bare_cmd(msg->cmd))
        *total = 4 + 2 + body;
    else
        *total = 4 + giz_varint_encode((uint32_t)(3 + body), tmp, sizeof tmp) + 3 + body;
    return GIZ_OK;
}

/* Returns the encoded size of `msg`, 0 if it is not encodable. */
size_t giz_msg_encoded_size(const struct giz_msg *msg)
{
    size_t total = 0;

    return total_size(msg, &total) == GIZ_OK ? total : 0;
}

/* Encodes `msg` in its spec form; see proto.h. */
int giz_msg_encode(const struct giz_msg *msg, uint8_t *buf, size_t cap, size_t *out_len)
{
    size_t total = 0;
    uint8_t *p;
    int rc;

    rc = total_size(msg, &total);
    if (rc != GIZ_OK) return rc;
    if (!buf || cap < total) return GIZ_ERR_NOSPACE;
    p = wr32(buf, GIZ_PROTO_HEADER);
    if (!is_bare_cmd(msg->cmd)) {
        size_t body = 0;

        (void)body_size(msg, &body);                        /* already checked by total_size() */
        p += giz_varint_encode((uint32_t)(3 + body), p, 4); /* Len: flags..end */
        *p++ = 0x00;                                        /* flags */
    }
    p = wr16(p, msg->cmd);
    switch (msg->cmd) {
    case GIZ_CMD_BIZ:
    case GIZ_CMD_BIZ_REPLY:
        p = wrview(p, msg->u.biz.data);
        break;
    case GIZ_CMD_BIZ_SN:
    case GIZ_CMD_BIZ_SN_ACK:
        p = wr32(p, msg->u.biz_sn.sn);
        p = wrview(p, msg->u.biz_sn.data);
        break;
    case GIZ_CMD_LOG_LEVEL_SET:
        p = wr16(p, msg->u.log_level.bits);
        break;
    case GIZ_CMD_LOG:
        *p++ = msg->u.log.level;
        p = wr16(p, (uint16_t)msg->u.log.tags.len);
        p = wrview(p, msg->u.log.tags);
        p = wr16(p, (uint16_t)msg->u.log.source.len);
        p = wrview(p, msg->u.log.source);
        p = wr16(p, (uint16_t)msg->u.log.content.len);
        p = wrview(p, msg->u.log.content);
        break;
    case GIZ_CMD_OTA_PUSH_V40:
        *p++ = msg->u.ota40.type;
        p = wr32(p, msg->u.ota40.fid);
        p = wr16(p, (uint16_t)msg->u.ota40.url.len);
        p = wrview(p, msg->u.ota40.url);
        break;
    case GIZ_CMD_APP_COUNT:
        p = wr16(p, msg->u.app_count.count);
        break;
    case GIZ_CMD_OTA_PUSH_V41:
        *p++ = msg->u.ota41.type;
        if (msg->u.ota41.did.len) {
            p = wr16(p, (uint16_t)msg->u.ota41.did.len);
            p = wrview(p, msg->u.ota41.did);
        }
        break;
    case GIZ_CMD_RESET_NOTICE:
        if (!msg->u.reset.long_form) {
            p = wr16(p, 0);
            break;
        }
        p = wr16(p, msg->u.reset.flags);
        p = wr16(p, (uint16_t)msg->u.reset.data.len);
        p = wrview(p, msg->u.reset.data);
        break;
    case GIZ_CMD_VERSION_REPORT: {
        size_t n = 0;
        const struct giz_view *f[3] = {&msg->u.version.subdev, &msg->u.version.module,
                                       &msg->u.version.mcu};
        static const uint16_t bits[3] = {GIZ_VERFLAG_SUBDEV, GIZ_VERFLAG_MODULE, GIZ_VERFLAG_MCU};

        (void)version_data_size(msg, &n); /* already checked by total_size() */
        p = wr16(p, msg->u.version.flags);
        p = wr16(p, (uint16_t)n);
        for (int i = 0; i < 3; i++) {
            if (!(msg->u.version.flags & bits[i])) continue;
            p = wr16(p, (uint16_t)f[i]->len);
            p = wrview(p, *f[i]);
        }
        p = wrview(p, msg->u.version.rest);
        break;
    }
    case GIZ_CMD_OTA_PROGRESS:
        p = wr16(p, msg->u.ota_progress.flags);
        p = wr16(p, (uint16_t)(1 + 2 + msg->u.ota_progress.version.len + 2 +
                               msg->u.ota_progress.info.len));
        *p++ = msg->u.ota_progress.percent;
        p = wr16(p, (uint16_t)msg->u.ota_progress.version.len);
        p = wrview(p, msg->u.ota_progress.version);
        p = wr16(p, (uint16_t)msg->u.ota_progress.info.len);
        p = wrview(p, msg->u.ota_progress.info);
        break;
    default:
        break;
    }
    if (out_len) *out_len = (size_t)(p - buf);
    return GIZ_OK;
}
