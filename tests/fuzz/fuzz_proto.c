/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for the protocol v4 decoder. Invariants: an error names
 * itself in `err` with an offset inside the input; a decoded message's views
 * lie inside the input; it re-encodes to exactly giz_msg_encoded_size()
 * bytes, those bytes decode to the same message, and encoding that again
 * gives the same bytes. Also exercises the varint and UTF-8 helpers.
 */
#include <string.h>

#include "fuzz.h"
#include "giz/proto.h"
#include "proto_eq.h"

static void check_views(const struct giz_msg *m, const uint8_t *data, size_t size)
{
    switch (m->cmd) {
    case GIZ_CMD_BIZ:
    case GIZ_CMD_BIZ_REPLY:
        FUZZ_CHECK(FUZZ_INSIDE(m->u.biz.data.ptr, m->u.biz.data.len, data, size));
        break;
    case GIZ_CMD_BIZ_SN:
    case GIZ_CMD_BIZ_SN_ACK:
        FUZZ_CHECK(FUZZ_INSIDE(m->u.biz_sn.data.ptr, m->u.biz_sn.data.len, data, size));
        break;
    case GIZ_CMD_LOG:
        FUZZ_CHECK(FUZZ_INSIDE(m->u.log.tags.ptr, m->u.log.tags.len, data, size));
        FUZZ_CHECK(FUZZ_INSIDE(m->u.log.source.ptr, m->u.log.source.len, data, size));
        FUZZ_CHECK(FUZZ_INSIDE(m->u.log.content.ptr, m->u.log.content.len, data, size));
        FUZZ_CHECK(giz_utf8_valid(m->u.log.tags.ptr, m->u.log.tags.len));
        FUZZ_CHECK(giz_utf8_valid(m->u.log.content.ptr, m->u.log.content.len));
        FUZZ_CHECK(m->u.log.level >= 1 && m->u.log.level <= 3);
        break;
    case GIZ_CMD_OTA_PUSH_V40:
        FUZZ_CHECK(FUZZ_INSIDE(m->u.ota40.url.ptr, m->u.ota40.url.len, data, size));
        FUZZ_CHECK(m->u.ota40.url.len <= GIZ_MAX_OTA_URL);
        break;
    case GIZ_CMD_OTA_PUSH_V41:
        FUZZ_CHECK(FUZZ_INSIDE(m->u.ota41.did.ptr, m->u.ota41.did.len, data, size));
        break;
    case GIZ_CMD_RESET_NOTICE:
        FUZZ_CHECK(FUZZ_INSIDE(m->u.reset.data.ptr, m->u.reset.data.len, data, size));
        FUZZ_CHECK(m->u.reset.long_form || (m->u.reset.flags == 0 && m->u.reset.data.len == 0));
        break;
    case GIZ_CMD_VERSION_REPORT:
        FUZZ_CHECK(FUZZ_INSIDE(m->u.version.subdev.ptr, m->u.version.subdev.len, data, size));
        FUZZ_CHECK(FUZZ_INSIDE(m->u.version.module.ptr, m->u.version.module.len, data, size));
        FUZZ_CHECK(FUZZ_INSIDE(m->u.version.mcu.ptr, m->u.version.mcu.len, data, size));
        FUZZ_CHECK(FUZZ_INSIDE(m->u.version.rest.ptr, m->u.version.rest.len, data, size));
        FUZZ_CHECK(m->u.version.rest.len == 0 || (m->u.version.flags & ~7u) != 0);
        break;
    case GIZ_CMD_OTA_PROGRESS:
        FUZZ_CHECK(
            FUZZ_INSIDE(m->u.ota_progress.version.ptr, m->u.ota_progress.version.len, data, size));
        FUZZ_CHECK(FUZZ_INSIDE(m->u.ota_progress.info.ptr, m->u.ota_progress.info.len, data, size));
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t enc[70000], enc2[70000];
    struct giz_msg m, m2;
    struct giz_error err;
    size_t n = 0, n2 = 0, used = 0;
    uint32_t v = 0;
    int rc;

    memset(&err, 0, sizeof err);
    rc = giz_msg_decode(data, size, &m, &err);
    FUZZ_CHECK(err.code == rc);
    FUZZ_CHECK(err.offset <= size);
    FUZZ_CHECK(memchr(err.text, 0, sizeof err.text) != NULL);
    if (rc == GIZ_OK) {
        FUZZ_CHECK(giz_cmd_name(m.cmd) != NULL);
        FUZZ_CHECK(m.flags == 0);
        check_views(&m, data, size);
        n = giz_msg_encoded_size(&m);
        FUZZ_CHECK(n > 0 && n <= sizeof enc);
        FUZZ_CHECK(giz_msg_encode(&m, enc, sizeof enc, &n2) == GIZ_OK);
        FUZZ_CHECK(n2 == n);
        /* canonical input (spec form, minimal varint) re-encodes to itself */
        if (n == size && m.framed == !(m.cmd >= 0x020E && m.cmd <= 0x022C))
            FUZZ_CHECK(memcmp(enc, data, size) == 0);
        FUZZ_CHECK(giz_msg_encode(&m, enc2, n - 1, &n2) == GIZ_ERR_NOSPACE);
        FUZZ_CHECK(giz_msg_decode(enc, n, &m2, &err) == GIZ_OK);
        FUZZ_CHECK(msg_eq(&m, &m2));
        FUZZ_CHECK(giz_msg_encode(&m2, enc2, sizeof enc2, &n2) == GIZ_OK);
        FUZZ_CHECK(n2 == n && memcmp(enc, enc2, n) == 0);
        /* one byte less is never a valid encoding of the same message */
        if (giz_msg_decode(enc, n - 1, &m2, NULL) == GIZ_OK)
            FUZZ_CHECK(m.cmd == GIZ_CMD_OTA_PUSH_V41 || !msg_eq(&m, &m2));
    }

    rc = giz_varint_decode(data, size, &v, &used);
    if (rc == GIZ_OK) {
        uint8_t vb[4];
        uint32_t v2 = 0;
        size_t u2 = 0, w;

        FUZZ_CHECK(used >= 1 && used <= 4 && used <= size && v <= GIZ_VARINT_MAX);
        w = giz_varint_encode(v, vb, sizeof vb);
        FUZZ_CHECK(w >= 1 && w <= used);
        FUZZ_CHECK(giz_varint_decode(vb, w, &v2, &u2) == GIZ_OK && v2 == v && u2 == w);
    } else {
        FUZZ_CHECK(rc == GIZ_ERR_TRUNCATED || rc == GIZ_ERR_BAD_VARINT);
    }
    (void)giz_utf8_valid(data, size);
    return 0;
}
