/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Gizwits device<->cloud protocol v4 payload codec (spec v4.0.5 and
 * wire-formats.md). One implementation used by the broker plugin, the
 * GService and the tools.
 *
 * Two wire forms exist:
 *   framed: 00 00 00 03 | Len (MQTT varint, 1-4 bytes, counts flags..end)
 *           | flags (1) | cmd (2, BE) | body
 *   bare:   00 00 00 03 | cmd (2, BE) | body
 * 0x020E, 0x020F, 0x0210 and 0x0211 are bare per the spec; the decoder also
 * accepts their framed form. Everything else is framed, except the newer
 * device -> cloud commands on cli2ser_req (not in spec v4.0.5; layouts as
 * newer firmware sends them, see wire-formats.md):
 *   sub-header: 00 00 00 03 | cmd (2, BE) | flags (2) | len (2) | data (len)
 *   0x021E reset notice: firmware sends just `len 0000` (no flags field);
 *          the sub-header form is accepted too
 *   0x021C version report: data = for each flag bit set, in this order,
 *          a 2-byte length + text: bit 0 sub-device id, bit 1 module
 *          "hw,sw", bit 2 MCU "hw,sw"; data of unknown bits is kept as `rest`
 *   0x022C OTA progress: data = percent (1) | len (2) + pending version
 *          "hw,sw" | len (2) + status text; flags 0x0002 = MCU upgrade
 *
 * Decoding allocates nothing: every variable-size field of struct giz_msg
 * is a view into the caller's input buffer, valid as long as that buffer.
 */
#ifndef GIZ_PROTO_H
#define GIZ_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giz/error.h"

#define GIZ_PROTO_HEADER 0x00000003u

enum giz_cmd {
    GIZ_CMD_LOG_LEVEL_SET = 0x0010, /* app -> device: set log level / LED bits */
    GIZ_CMD_LOG_LEVEL_ACK = 0x0011, /* device -> app: no body */
    GIZ_CMD_LOG = 0x0012,           /* device -> apps: a log record */
    GIZ_CMD_BIZ = 0x0090,           /* app -> device business message */
    GIZ_CMD_BIZ_REPLY = 0x0091,     /* device -> app business message */
    GIZ_CMD_BIZ_SN = 0x0093,        /* business message wanting an ACK */
    GIZ_CMD_BIZ_SN_ACK = 0x0094,    /* the ACK, SN echoed */
    GIZ_CMD_OTA_PUSH_V40 = 0x020E,  /* cloud -> device, bare */
    GIZ_CMD_APP_COUNT_REQ = 0x020F, /* device -> cloud, bare */
    GIZ_CMD_APP_COUNT = 0x0210,     /* cloud -> device, bare */
    GIZ_CMD_OTA_PUSH_V41 = 0x0211,  /* cloud -> device, bare */
    /* appended (newer firmware, cli2ser_req, sub-header form): */
    GIZ_CMD_VERSION_REPORT = 0x021C, /* device -> cloud: module / MCU versions */
    GIZ_CMD_RESET_NOTICE = 0x021E,   /* device -> cloud: the device was reset */
    GIZ_CMD_OTA_PROGRESS = 0x022C    /* device -> cloud: OTA percent + status text */
};

/* 0x021C flag bits. */
#define GIZ_VERFLAG_SUBDEV 0x0001u
#define GIZ_VERFLAG_MODULE 0x0002u
#define GIZ_VERFLAG_MCU 0x0004u
/* 0x022C flags seen: */
#define GIZ_OTAFLAG_MODULE 0x0001u
#define GIZ_OTAFLAG_MCU 0x0002u

/* Field limits from the spec tables. */
#define GIZ_MAX_BIZ 65535u
#define GIZ_MAX_LOG_TAGS 256u
#define GIZ_MAX_LOG_SOURCE 32u
#define GIZ_MAX_LOG_CONTENT 65535u
#define GIZ_MAX_OTA_URL 512u
#define GIZ_DID_LEN 22u
/* Largest value an MQTT-style varint of 4 bytes can hold. */
#define GIZ_VARINT_MAX 268435455u

/* Log-level bits of 0x0010 (bit0..bit15, wire order: bits 8-15 byte, then bits 0-7 byte). */
#define GIZ_LOGBIT_ERROR 0x0001u
#define GIZ_LOGBIT_WARN 0x0002u
#define GIZ_LOGBIT_INFO 0x0004u
#define GIZ_LOGBIT_LED 0x0008u

/* Log levels of 0x0012. */
enum giz_log_level { GIZ_LOGLVL_ERROR = 1, GIZ_LOGLVL_WARN = 2, GIZ_LOGLVL_INFO = 3 };

/* A read-only view into someone else's bytes. */
struct giz_view {
    const uint8_t *ptr;
    size_t len;
};

struct giz_msg {
    uint16_t cmd;  /* enum giz_cmd */
    bool framed;   /* decode: which form was on the wire; encode: ignored
                      (the encoder always uses the spec's form) */
    uint8_t flags; /* framed form only; encoder writes 0x00 */
    union {
        struct {
            struct giz_view data;
        } biz; /* 0x0090, 0x0091 */
        struct {
            uint32_t sn;
            struct giz_view data;
        } biz_sn; /* 0x0093, 0x0094 */
        struct {
            uint16_t bits;
        } log_level; /* 0x0010 */
        struct {
            uint8_t level;                         /* 1..3 */
            struct giz_view tags, source, content; /* UTF-8 */
        } log;                                     /* 0x0012 */
        struct {
            uint8_t type;
            uint32_t fid;
            struct giz_view url;
        } ota40; /* 0x020E */
        struct {
            uint8_t type;
            struct giz_view did;
        } ota41; /* 0x0211; did may be empty */
        struct {
            uint16_t count;
        } app_count; /* 0x0210 */
        /* 0x021E: long_form false = firmware's `0000` (flags 0, no data);
           true = flags | len | data. Encoding honours long_form. */
        struct {
            bool long_form;
            uint16_t flags;
            struct giz_view data;
        } reset;
        /* 0x021C: views are empty unless their flag bit is set; rest holds
           the data of flag bits this codec does not know (empty otherwise) */
        struct {
            uint16_t flags;
            struct giz_view subdev, module, mcu, rest;
        } version;
        struct { /* 0x022C */
            uint16_t flags;
            uint8_t percent;               /* as sent (0..100 seen) */
            struct giz_view version, info; /* "hw,sw"; status text */
        } ota_progress;
    } u; /* 0x0011 and 0x020F have no body */
};

/* Decodes one complete payload `buf[0..len)` into `out`.
 * Returns GIZ_OK or a negative enum giz_err; on error `err` (optional) gets
 * the code, the byte offset where decoding stopped and a short text.
 * Views in `out` point into `buf`; nothing is allocated. Accepted input:
 * exactly one message, no trailing bytes. Unknown commands, wrong header,
 * truncation, varints longer than 4 bytes, Len disagreeing with the input,
 * oversize fields, non-zero flags and invalid UTF-8 in 0x0012 texts are errors. */
int giz_msg_decode(const uint8_t *buf, size_t len, struct giz_msg *out, struct giz_error *err);

/* Returns the exact number of bytes giz_msg_encode() will write for `msg`,
 * or 0 if `msg` is not encodable (unknown cmd, field over its limit). */
size_t giz_msg_encoded_size(const struct giz_msg *msg);

/* Encodes `msg` in its spec form into `buf` (capacity `cap`).
 * Returns GIZ_OK and sets *out_len, GIZ_ERR_NOSPACE if `cap` is too small,
 * GIZ_ERR_OVERSIZE / GIZ_ERR_BAD_VALUE / GIZ_ERR_UNKNOWN_CMD / GIZ_ERR_BAD_UTF8
 * for messages the decoder would refuse. Allocates nothing. */
int giz_msg_encode(const struct giz_msg *msg, uint8_t *buf, size_t cap, size_t *out_len);

/* MQTT-style variable length ("Remaining Length"), 1-4 bytes.
 * giz_varint_decode: reads from buf[0..len), sets *value and *used.
 * Returns GIZ_OK, GIZ_ERR_TRUNCATED or GIZ_ERR_BAD_VARINT (5th byte needed). */
int giz_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, size_t *used);
/* Writes `value` (<= GIZ_VARINT_MAX) into buf (cap >= 4 suffices); returns
 * the number of bytes written, 0 if value too large or cap too small. */
size_t giz_varint_encode(uint32_t value, uint8_t *buf, size_t cap);

/* Returns true if buf[0..len) is valid UTF-8 (no overlongs, no surrogates,
 * <= U+10FFFF). */
bool giz_utf8_valid(const uint8_t *buf, size_t len);

/* Returns a static name for a command ("biz", "biz_reply", "app_count", ...)
 * or NULL if unknown. */
const char *giz_cmd_name(uint16_t cmd);

#endif
