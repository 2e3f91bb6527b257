/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * What the cloud itself says to devices, and the device messages it reads.
 *
 * Out: bare 0x0210 (online-app count), 0x0211 (OTA v4.1 notice) and 0x020E
 * (OTA v4.0 with fid and URL) on ser2cli_res/<DID>, encoded with the shared
 * codec and sent with mosquitto_broker_publish_copy targeted at the device's
 * client id (the broker delivers it on its next loop iteration, without a
 * subscription or READ check; an offline target is skipped here, since the
 * broker's call succeeds even for absent clients).
 *
 * The GService asks through the store's outbox table, polled every poll_ms
 * on TICK from the last id seen (items older than the plugin's start are
 * stale and skipped): OTA_PUSH (one DID or a product), DEVICE_DISABLED
 * (forget cached credentials, kick the session), BINDING (recount).
 *
 * In (MOSQ_EVT_MESSAGE): 0x020F on ser2cli_req or cli2ser_req from a device
 * is answered with 0x0210; 0x0012 log records a device publishes on
 * dev2app/<DID> are stored (and still delivered) up to log_rate per device
 * per second (token bucket of log_burst); over the rate they are delivered
 * but not stored. Payloads are decoded with
 * giz_msg_decode; malformed ones get a rate-limited log line and are never
 * acted on. Business messages pass through untouched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/proto.h"
#include "plugin.h"

#define OUTBOX_BATCH 256u
#define PUSH_BUF 640u

static void send_to_device(const char *did, const uint8_t *buf, size_t len)
{
    char topic[sizeof("ser2cli_res/") + GIZ_DID_SIZE];
    snprintf(topic, sizeof(topic), "ser2cli_res/%s", did);
    int rc = mosquitto_broker_publish_copy(did, topic, (int)len, buf, 0, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS)
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: publish to %s failed: %s", did,
                             mosquitto_strerror(rc));
}

void push__app_count(struct gizp *g, struct did_state *ds)
{
    struct giz_msg msg;
    uint8_t buf[16];
    size_t len = 0;
    (void)g;
    if (ds == NULL || ds->device_conns == 0) return;
    memset(&msg, 0, sizeof(msg));
    msg.cmd = GIZ_CMD_APP_COUNT;
    msg.u.app_count.count = ds->app_count > 0xffffu ? 0xffffu : (uint16_t)ds->app_count;
    if (giz_msg_encode(&msg, buf, sizeof(buf), &len) != GIZ_OK) return;
    send_to_device(ds->did, buf, len);
}

/* ---- OTA ------------------------------------------------------------------ */

static void ota_send(const struct giz_outbox_item *it, const char *did)
{
    struct giz_msg msg;
    uint8_t buf[PUSH_BUF];
    size_t len = 0;
    int rc;
    memset(&msg, 0, sizeof(msg));
    uint8_t type = (uint8_t)(it->fw_type == 2 ? 2 : 1);
    if (it->ota_version == 40) {
        msg.cmd = GIZ_CMD_OTA_PUSH_V40;
        msg.u.ota40.type = type;
        msg.u.ota40.fid = (uint32_t)it->fid;
        msg.u.ota40.url.ptr = (const uint8_t *)it->url;
        msg.u.ota40.url.len = strlen(it->url);
    } else {
        msg.cmd = GIZ_CMD_OTA_PUSH_V41;
        msg.u.ota41.type = type;
        msg.u.ota41.did.ptr = (const uint8_t *)did;
        msg.u.ota41.did.len = strlen(did);
    }
    rc = giz_msg_encode(&msg, buf, sizeof(buf), &len);
    if (rc != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: OTA push #%lld to %s not encodable: %s",
                             (long long)it->id, did, giz_strerror(rc));
        return;
    }
    send_to_device(did, buf, len);
}

struct ota_walk {
    const struct giz_outbox_item *it;
    unsigned sent;
};

static int ota_walk_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct ota_walk *w = ud;
    struct did_state *ds = value;
    (void)key;
    (void)klen;
    if (ds->device_conns > 0 && strcmp(ds->product_key, w->it->product_key) == 0) {
        ota_send(w->it, ds->did);
        w->sent++;
    }
    return 0;
}

static void handle_ota(struct gizp *g, const struct giz_outbox_item *it)
{
    struct ota_walk w = {it, 0};
    if (it->did[0] != '\0') {
        struct did_state *ds = presence__did(g, it->did);
        if (ds != NULL && ds->device_conns > 0) {
            ota_send(it, it->did);
            w.sent = 1;
        }
    } else if (it->product_key[0] != '\0') {
        map__foreach(&g->dids, ota_walk_cb, &w);
    }
    mosquitto_log_printf(
        MOSQ_LOG_NOTICE, "giz: OTA push #%lld (%s%s, v%d type %d) sent to %u online device(s)",
        (long long)it->id, it->did[0] ? "device " : "product ",
        it->did[0] ? it->did : it->product_key, it->ota_version, it->fw_type, w.sent);
}

/* ---- outbox ----------------------------------------------------------------- */

struct outbox_batch {
    struct giz_outbox_item *items;
    size_t n;
};

static int outbox_cb(const struct giz_outbox_item *it, void *ud)
{
    struct outbox_batch *b = ud;
    if (b->n >= OUTBOX_BATCH) return 1;
    b->items[b->n++] = *it;
    return 0;
}

void push__poll_outbox(struct gizp *g)
{
    struct outbox_batch b;
    int rc;
    b.items = malloc(OUTBOX_BATCH * sizeof(*b.items));
    b.n = 0;
    if (b.items == NULL) return;
    rc = giz_store_outbox_fetch(g->store, g->outbox_last_id, OUTBOX_BATCH, outbox_cb, &b);
    if (rc != GIZ_OK) {
        if (plugin__rate_ok(&g->rl_payload, 5, "outbox errors"))
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: outbox read failed: %s: %s",
                                 giz_strerror(rc), giz_store_errmsg(g->store));
        free(b.items);
        return;
    }
    /* Acted on after the statement is done: a kick re-enters our DISCONNECT
     * callback, and BINDING needs the store again. */
    for (size_t i = 0; i < b.n; i++) {
        const struct giz_outbox_item *it = &b.items[i];
        if (it->id > g->outbox_last_id) g->outbox_last_id = it->id;
        switch (it->kind) {
        case GIZ_OUTBOX_OTA_PUSH:
            handle_ota(g, it);
            break;
        case GIZ_OUTBOX_DEVICE_DISABLED:
            if (it->did[0] != '\0') {
                auth__forget(g, it->did);
                int krc = mosquitto_kick_client_by_clientid(it->did, false);
                mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: device %s disabled%s", it->did,
                                     krc == MOSQ_ERR_SUCCESS ? ", live session closed" : "");
            }
            break;
        case GIZ_OUTBOX_BINDING:
            if (it->did[0] != '\0' && it->uid[0] != '\0')
                presence__binding_changed(g, it->uid, it->did);
            break;
        default:
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: outbox item #%lld of unknown kind %d",
                                 (long long)it->id, it->kind);
            break;
        }
    }
    free(b.items);
}

/* ---- MESSAGE ----------------------------------------------------------------- */

static void log_bad_payload(struct gizp *g, const char *did, const char *topic,
                            const struct giz_error *err)
{
    if (plugin__rate_ok(&g->rl_payload, 10, "malformed payload lines"))
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: dropped malformed payload from %s on %s: %s at byte %zu (%s)",
                             did, topic, giz_strerror(err->code), err->offset, err->text);
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

int push__message_cb(int event, void *event_data, void *userdata)
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
    if (c == NULL || c->kind != CLIENT_DEVICE || c->dev == NULL || ed->topic == NULL)
        return MOSQ_ERR_SUCCESS;
    struct did_state *ds = c->dev;
    if (strcmp(ed->topic, "ser2cli_req") == 0 || strcmp(ed->topic, "cli2ser_req") == 0) {
        memset(&err, 0, sizeof(err));
        if (giz_msg_decode(payload, len, &msg, &err) != GIZ_OK) {
            log_bad_payload(g, ds->did, ed->topic, &err);
        } else if (msg.cmd == GIZ_CMD_APP_COUNT_REQ) {
            push__app_count(g, ds);
        } else if (plugin__rate_ok(&g->rl_payload, 10, "unexpected request lines")) {
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: ignored command 0x%04x from %s on %s",
                                 msg.cmd, ds->did, ed->topic);
        }
        return MOSQ_ERR_SUCCESS;
    }
    if (strncmp(ed->topic, "dev2app/", 8) == 0 && framed_cmd_is(payload, len, GIZ_CMD_LOG)) {
        memset(&err, 0, sizeof(err));
        if (giz_msg_decode(payload, len, &msg, &err) != GIZ_OK) {
            log_bad_payload(g, ds->did, ed->topic, &err);
        } else if (presence__log_allow(g, ds)) {
            presence__log_add(g, ds->did, msg.u.log.level, msg.u.log.tags.ptr, msg.u.log.tags.len,
                              msg.u.log.source.ptr, msg.u.log.source.len, msg.u.log.content.ptr,
                              msg.u.log.content.len);
        }
    }
    return MOSQ_ERR_SUCCESS;
}
