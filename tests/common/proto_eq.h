/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Field-by-field equality of two decoded protocol messages (views compared
 * by content), shared by the codec unit test and the proto fuzz target.
 */
#ifndef GIZ_TESTS_PROTO_EQ_H
#define GIZ_TESTS_PROTO_EQ_H

#include <stdbool.h>
#include <string.h>

#include "giz/proto.h"

static inline bool view_eq(struct giz_view a, struct giz_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* True if a and b carry the same command and the same field values. */
static inline bool msg_eq(const struct giz_msg *a, const struct giz_msg *b)
{
    if (a->cmd != b->cmd) return false;
    switch (a->cmd) {
    case GIZ_CMD_BIZ:
    case GIZ_CMD_BIZ_REPLY:
        return view_eq(a->u.biz.data, b->u.biz.data);
    case GIZ_CMD_BIZ_SN:
    case GIZ_CMD_BIZ_SN_ACK:
        return a->u.biz_sn.sn == b->u.biz_sn.sn && view_eq(a->u.biz_sn.data, b->u.biz_sn.data);
    case GIZ_CMD_LOG_LEVEL_SET:
        return a->u.log_level.bits == b->u.log_level.bits;
    case GIZ_CMD_LOG:
        return a->u.log.level == b->u.log.level && view_eq(a->u.log.tags, b->u.log.tags) &&
               view_eq(a->u.log.source, b->u.log.source) &&
               view_eq(a->u.log.content, b->u.log.content);
    case GIZ_CMD_OTA_PUSH_V40:
        return a->u.ota40.type == b->u.ota40.type && a->u.ota40.fid == b->u.ota40.fid &&
               view_eq(a->u.ota40.url, b->u.ota40.url);
    case GIZ_CMD_OTA_PUSH_V41:
        return a->u.ota41.type == b->u.ota41.type && view_eq(a->u.ota41.did, b->u.ota41.did);
    case GIZ_CMD_APP_COUNT:
        return a->u.app_count.count == b->u.app_count.count;
    case GIZ_CMD_RESET_NOTICE:
        return a->u.reset.long_form == b->u.reset.long_form &&
               a->u.reset.flags == b->u.reset.flags && view_eq(a->u.reset.data, b->u.reset.data);
    case GIZ_CMD_VERSION_REPORT:
        return a->u.version.flags == b->u.version.flags &&
               view_eq(a->u.version.subdev, b->u.version.subdev) &&
               view_eq(a->u.version.module, b->u.version.module) &&
               view_eq(a->u.version.mcu, b->u.version.mcu) &&
               view_eq(a->u.version.rest, b->u.version.rest);
    case GIZ_CMD_OTA_PROGRESS:
        return a->u.ota_progress.flags == b->u.ota_progress.flags &&
               a->u.ota_progress.percent == b->u.ota_progress.percent &&
               view_eq(a->u.ota_progress.version, b->u.ota_progress.version) &&
               view_eq(a->u.ota_progress.info, b->u.ota_progress.info);
    default:
        return true;
    }
}

#endif
