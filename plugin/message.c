/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * MOSQ_EVT_MESSAGE: what devices and apps publish, after the ACL allowed it.
 *
 * From a device: 0x020F on ser2cli_req or cli2ser_req is answered with
 * 0x0210 (push__answer_app_count); 0x021E (reset notice), 0x021C (version
 * report) and 0x022C (OTA progress) on either topic get an info log line
 * and a device log record; 0x0012 log records on dev2app/<DID> are stored
 * (devlog.c, up to log_rate per device per second) and still delivered.
 * Payloads are decoded with giz_msg_decode; malformed ones get a
 * rate-limited log line and are never acted on.
 *
 * From an app: app2dev/<DID>/<cid> goes through push.c's pacing (routed
 * now, or taken out and re-published later). Business messages pass
 * through untouched (only delayed).
 */
#include <stdio.h>
#include <string.h>

#include "giz/proto.h"
#include "plugin.h"

static void log_bad_payload(struct gizp *g, const char *did, const char *topic,
                            const struct giz_error *err)
{
    if (plugin__rate_ok(&g->msg.rl_payload, 10, "malformed payload lines"))
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: dropped malformed payload from %s on %s: %s at byte %zu (%s)",
                             did, topic, giz_strerror(err->code), err->offset, err->text);
}

/* Copies v into out (cap bytes) as printable ASCII ('?' for anything else). */
static void printable(struct giz_view v, char *out, size_t cap)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = v.ptr[i] >= 0x20 && v.ptr[i] < 0x7f ? (char)v.ptr[i] : '?';
    out[n] = '\0';
}

/* 0x021E / 0x021C / 0x022C from newer firmware: an info line (rate-limited)
 * and a device log record (level info, source "cli2ser_req", under the
 * device's log_rate bucket), so they show in GET /admin/devices/<DID>/logs. */
static void record_report(struct gizp *g, struct did_state *ds, const struct giz_msg *msg)
{
    char text[400], a[96], b[96], c[160];
    const char *tag = giz_cmd_name(msg->cmd);
    int n;
    switch (msg->cmd) {
    case GIZ_CMD_RESET_NOTICE:
        n = snprintf(text, sizeof(text), "device reset (0x021E%s)",
                     msg->u.reset.long_form ? ", with flags" : "");
        break;
    case GIZ_CMD_VERSION_REPORT:
        printable(msg->u.version.module, a, sizeof(a));
        printable(msg->u.version.mcu, b, sizeof(b));
        printable(msg->u.version.subdev, c, sizeof(c));
        n = snprintf(text, sizeof(text), "versions: module \"%s\" MCU \"%s\"%s%s%s (flags 0x%04x)",
                     a, b, c[0] ? " sub-device \"" : "", c, c[0] ? "\"" : "", msg->u.version.flags);
        break;
    case GIZ_CMD_OTA_PROGRESS:
        printable(msg->u.ota_progress.version, a, sizeof(a));
        printable(msg->u.ota_progress.info, c, sizeof(c));
        n = snprintf(text, sizeof(text), "OTA %s %u%% to \"%s\": %s",
                     msg->u.ota_progress.flags & GIZ_OTAFLAG_MCU ? "MCU" : "module",
                     (unsigned)msg->u.ota_progress.percent, a, c);
        break;
    default:
        return;
    }
    if (n < 0) return;
    if (plugin__rate_ok(&g->msg.rl_report, 20, "device report lines"))
        giz_log(GIZ_LOG_INFO, "device %s: %s", ds->did, text);
    if (devlog__allow(g, ds))
        devlog__add(g, ds->did, GIZ_LOGLVL_INFO, tag, strlen(tag), "cli2ser_req", 11, text,
                    strlen(text));
}

/* true if a framed payload announces command `cmd` (cheap peek before a full decode). */
static bool framed_cmd_is(const uint8_t *p, size_t len, uint16_t cmd)
{
    uint32_t v = 0;
    size_t used = 0;
    if (len < 8 || p[0] != 0 || p[1] != 0 || p[2] != 0 || p[3] != 3) return false;
    if (giz_varint_decode(p + 4, len - 4, &v, &used) != GIZ_OK) return false;
    if (4 + used + 3 > len) return false;
    return (uint16_t)((p[4 + used + 1] << 8) | p[4 + used + 2]) == cmd;
}

int message__cb(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_message *ed = event_data;
    struct gizp *g = userdata;
    struct client cl;
    const struct client *c = presence__client(g, ed->client, &cl) ? &cl : NULL;
    const uint8_t *payload = ed->payload;
    size_t len = ed->payloadlen;
    struct giz_msg msg;
    struct giz_error err;
    (void)event;
    if (c != NULL && c->kind == CLIENT_APP && ed->topic != NULL &&
        strncmp(ed->topic, "app2dev/", 8) == 0)
        return push__pace_app_message(g, ed);
    if (c == NULL || c->kind != CLIENT_DEVICE || c->dev == NULL || ed->topic == NULL)
        return MOSQ_ERR_SUCCESS;
    struct did_state *ds = c->dev;
    if (strcmp(ed->topic, "ser2cli_req") == 0 || strcmp(ed->topic, "cli2ser_req") == 0) {
        memset(&err, 0, sizeof(err));
        if (giz_msg_decode(payload, len, &msg, &err) != GIZ_OK) {
            log_bad_payload(g, ds->did, ed->topic, &err);
        } else if (msg.cmd == GIZ_CMD_APP_COUNT_REQ) {
            push__answer_app_count(g, ds);
        } else if (msg.cmd == GIZ_CMD_RESET_NOTICE || msg.cmd == GIZ_CMD_VERSION_REPORT ||
                   msg.cmd == GIZ_CMD_OTA_PROGRESS) {
            record_report(g, ds, &msg);
        } else if (plugin__rate_ok(&g->msg.rl_payload, 10, "unexpected request lines")) {
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: ignored command 0x%04x from %s on %s",
                                 msg.cmd, ds->did, ed->topic);
        }
        return MOSQ_ERR_SUCCESS;
    }
    if (strncmp(ed->topic, "dev2app/", 8) == 0) devstate__message(g, ds, payload, len);
    if (strncmp(ed->topic, "dev2app/", 8) == 0 && framed_cmd_is(payload, len, GIZ_CMD_LOG)) {
        memset(&err, 0, sizeof(err));
        if (giz_msg_decode(payload, len, &msg, &err) != GIZ_OK) {
            log_bad_payload(g, ds->did, ed->topic, &err);
        } else if (devlog__allow(g, ds)) {
            devlog__add(g, ds->did, msg.u.log.level, msg.u.log.tags.ptr, msg.u.log.tags.len,
                        msg.u.log.source.ptr, msg.u.log.source.len, msg.u.log.content.ptr,
                        msg.u.log.content.len);
        }
    }
    return MOSQ_ERR_SUCCESS;
}
