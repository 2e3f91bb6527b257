/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizsim devices that speak data points (--datapoints FILE, the product's
 * Gizwits data-point JSON): each device keeps its attribute values (a cJSON
 * object; a fixed-length product starts from the all-zero status area), and
 *   - reports its whole status (p0 0x04, or 0x14 for a var_len product) on
 *     dev2app/<DID> after login and after applying a write;
 *   - applies writes (0x01 / 0x11) in 0x0090 or 0x0093 (the latter is ACKed
 *     with an empty 0x0094 first);
 *   - answers reads (0x02 / 0x12) with a read reply (0x03 / 0x13) to the
 *     asking app: 0x0091 for 0x0090, 0x0094 with the SN for 0x0093.
 * Business messages that are not such p0 (pass-through 0x05, or bytes that
 * do not decode against the schema: counted as p0_bad) keep the plain echo
 * of sim_device.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "giz/p0.h"
#include "sim.h"
#include "util.h"

static uint8_t p0_buf[GIZ_P0_MAX];
static uint8_t p0_msg_buf[GIZ_P0_MAX + 64];

int sim__p0_load(struct sim *s, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct giz_error e;
    int rc;

    if (util__read_file(path, GIZ_P0_SCHEMA_MAX_JSON, &data, &len) != 0) {
        fprintf(stderr, "gizsim: cannot read data points %s\n", path);
        return 6;
    }
    rc = giz_p0_schema_parse((const char *)data, len, &s->p0, &e);
    free(data);
    if (rc != GIZ_OK) {
        fprintf(stderr, "gizsim: %s: not usable data points: %s (point %zu)\n", path, e.text,
                e.offset);
        return 1;
    }
    return 0;
}

void sim__p0_free(struct sim *s)
{
    for (uint32_t i = 0; s->devs && i < s->o.devices; i++) {
        cJSON_Delete(s->devs[i].p0_state);
        s->devs[i].p0_state = NULL;
    }
    giz_p0_schema_free(s->p0);
    s->p0 = NULL;
}

/* The device's attribute object, created on first use (a fixed-length
 * product: the values of the all-zero status area). NULL: out of memory. */
static cJSON *state_of(struct sim_device *d)
{
    struct sim *s = d->sim;
    struct giz_p0_msg m;
    cJSON *empty;
    size_t n = 0;

    if (d->p0_state) return d->p0_state;
    empty = cJSON_CreateObject();
    memset(&m, 0, sizeof m);
    if (empty && !giz_p0_schema_var_len(s->p0) &&
        giz_p0_encode_status(s->p0, GIZ_P0_REPORT, empty, p0_buf, sizeof p0_buf, &n, NULL) ==
            GIZ_OK &&
        giz_p0_decode(s->p0, p0_buf, n, &m, NULL) == GIZ_OK) {
        d->p0_state = m.attrs;
        m.attrs = NULL;
    }
    giz_p0_msg_clear(&m);
    if (!d->p0_state)
        d->p0_state = empty;
    else
        cJSON_Delete(empty);
    return d->p0_state;
}

static void publish(struct sim_device *d, const char *topic, uint16_t cmd, uint32_t sn,
                    const uint8_t *body, size_t n)
{
    struct giz_msg m;
    size_t len = 0;

    memset(&m, 0, sizeof m);
    m.cmd = cmd;
    if (cmd == GIZ_CMD_BIZ_SN_ACK || cmd == GIZ_CMD_BIZ_SN) {
        m.u.biz_sn.sn = sn;
        m.u.biz_sn.data.ptr = body;
        m.u.biz_sn.data.len = n;
    } else {
        m.u.biz.data.ptr = body;
        m.u.biz.data.len = n;
    }
    if (giz_msg_encode(&m, p0_msg_buf, sizeof p0_msg_buf, &len) != GIZ_OK) {
        sim__error(d->sim, SIM_ERR_NOMEM);
        return;
    }
    if (mqttc__publish(&d->mq, topic, p0_msg_buf, len) == 0) d->sim->st.pub_out++;
}

/* Encodes a status message of `attrs` (or the whole state) into p0_buf. */
static bool encode_status(struct sim_device *d, uint8_t fixed_action, const cJSON *attrs, size_t *n)
{
    struct sim *s = d->sim;
    bool var = giz_p0_schema_var_len(s->p0);
    const cJSON *what = attrs ? attrs : state_of(d);
    uint8_t action = var ? (uint8_t)(fixed_action + 0x10) : fixed_action;

    if (!what || (var && !what->child)) return false; /* var_len: nothing known yet */
    if (giz_p0_encode_status(s->p0, action, what, p0_buf, sizeof p0_buf, n, NULL) != GIZ_OK) {
        sim__error(s, SIM_ERR_NOMEM);
        return false;
    }
    return true;
}

void sim__p0_report(struct sim_device *d)
{
    char topic[64];
    size_t n = 0;

    if (!encode_status(d, GIZ_P0_REPORT, NULL, &n)) return;
    snprintf(topic, sizeof topic, "dev2app/%s", d->did);
    publish(d, topic, GIZ_CMD_BIZ_REPLY, 0, p0_buf, n);
    d->sim->st.p0_reports++;
}

/* Merges written attrs into the device's state. */
static void apply(struct sim_device *d, cJSON *attrs)
{
    cJSON *st = state_of(d);

    while (st && attrs->child) {
        cJSON *item = cJSON_DetachItemViaPointer(attrs, attrs->child);
        const char *name = item->string;

        cJSON *had = cJSON_GetObjectItemCaseSensitive(st, name);

        /* via the pointer: item keeps its own key (the by-name call would
         * free the key it is given, which is item's) */
        if (had)
            cJSON_ReplaceItemViaPointer(st, had, item);
        else
            cJSON_AddItemToObject(st, name, item);
    }
}

/* The values of `names` (an array) from the state, for a 0x12 read. */
static cJSON *pick(struct sim_device *d, const cJSON *names)
{
    cJSON *out = cJSON_CreateObject(), *st = state_of(d);
    const cJSON *n;

    cJSON_ArrayForEach(n, names)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, n->valuestring);

        if (out && v) cJSON_AddItemToObject(out, n->valuestring, cJSON_Duplicate(v, true));
    }
    return out;
}

bool sim__p0_handle(struct sim_device *d, const char *cid, const struct giz_msg *in)
{
    struct sim *s = d->sim;
    bool with_sn = in->cmd == GIZ_CMD_BIZ_SN;
    struct giz_view body = with_sn ? in->u.biz_sn.data : in->u.biz.data;
    uint32_t sn = with_sn ? in->u.biz_sn.sn : 0;
    struct giz_p0_msg m;
    char topic[96];
    size_t n = 0;
    bool handled = false;

    if (body.len == 0) return false;
    if (giz_p0_decode(s->p0, body.ptr, body.len, &m, NULL) != GIZ_OK) {
        s->st.p0_bad++;
        giz_p0_msg_clear(&m);
        return false;
    }
    if (cid[0])
        snprintf(topic, sizeof topic, "dev2app/%s/%s", d->did, cid);
    else
        snprintf(topic, sizeof topic, "dev2app/%s", d->did);
    switch (m.action) {
    case GIZ_P0_WRITE:
    case GIZ_P0_WRITE_VAR:
        s->st.p0_writes++;
        if (with_sn) {
            publish(d, topic, GIZ_CMD_BIZ_SN_ACK, sn, NULL, 0);
            s->st.acks_sent++;
        }
        if (giz_p0_schema_var_len(s->p0)) { /* report what changed */
            cJSON *changed = cJSON_Duplicate(m.attrs, true);

            apply(d, m.attrs);
            if (changed && encode_status(d, GIZ_P0_REPORT, changed, &n)) {
                char all[64];

                snprintf(all, sizeof all, "dev2app/%s", d->did);
                publish(d, all, GIZ_CMD_BIZ_REPLY, 0, p0_buf, n);
                s->st.p0_reports++;
            }
            cJSON_Delete(changed);
        } else {
            apply(d, m.attrs);
            sim__p0_report(d);
        }
        handled = true;
        break;
    case GIZ_P0_READ:
    case GIZ_P0_READ_VAR: {
        cJSON *subset = m.names && giz_p0_schema_var_len(s->p0) ? pick(d, m.names) : NULL;

        s->st.p0_reads++;
        if (encode_status(d, GIZ_P0_READ_REPLY, subset, &n)) {
            publish(d, topic, with_sn ? GIZ_CMD_BIZ_SN_ACK : GIZ_CMD_BIZ_REPLY, sn, p0_buf, n);
            if (with_sn) s->st.acks_sent++;
        }
        cJSON_Delete(subset);
        handled = true;
        break;
    }
    default:
        break; /* pass-through and status bytes from an app: the plain echo */
    }
    giz_p0_msg_clear(&m);
    return handled;
}
