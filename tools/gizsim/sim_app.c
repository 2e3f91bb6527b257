/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * One simulated app: create its user (POST /app/users), log in (POST
 * /app/login), bind its share of the simulated devices (POST /app/bindings),
 * log in on MQTT with the returned client id / uid / token, subscribe
 * dev2app/<DID> and dev2app/<DID>/<client id> for each device, then send a
 * command every interval (0x0093 with a serial number, or 0x0090) round
 * robin over its devices and measure the round trip to the 0x0094 / 0x0091.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/proto.h"
#include "sim.h"

static void app_connected_cb(struct mqttc *c);
static void app_packet_cb(struct mqttc *c, const uint8_t *pkt, size_t len);
static void app_closed_cb(struct mqttc *c, int reason);
static const struct mqttc_cbs app_cbs = {app_connected_cb, app_packet_cb, app_closed_cb};

static void app_http(struct sim_app *a);

void sim__app_init(struct sim *s, struct sim_app *a, uint32_t idx)
{
    memset(a, 0, sizeof *a);
    a->sim = s;
    a->idx = idx;
    mqttc__init(&a->mq, &app_cbs, a, 1u << 20);
    uv_timer_init(s->loop, &a->timer);
    a->timer.data = a;
    snprintf(a->username, sizeof a->username, "gizsim-%s-%u", s->run_hex, (unsigned)idx);
    for (int i = 0; i < 16; i++)
        a->password[i] = (char)('a' + util__rand(&s->rng) % 26);
    a->password[16] = '\0';
    a->ndevs = s->o.app_devices < s->o.devices ? s->o.app_devices : s->o.devices;
    a->first_dev = (uint32_t)(((uint64_t)idx * a->ndevs) % s->o.devices);
}

static struct sim_device *app_dev(const struct sim_app *a, uint32_t k)
{
    return &a->sim->devs[(a->first_dev + k) % a->sim->o.devices];
}

static void on_retry(uv_timer_t *t)
{
    struct sim_app *a = t->data;
    if (a->sim->stopping) return;
    if (a->token[0] != '\0' && a->phase == APP_BACKOFF) {
        a->phase = APP_HTTP;
        a->http_op = AOP_BIND; /* rebinding is harmless; then MQTT */
    } else {
        a->phase = APP_HTTP;
        a->http_op = AOP_CREATE;
    }
    app_http(a);
}

static void app_backoff(struct sim_app *a)
{
    double ms = 2000.0 * a->sim->o.backoff_scale;
    if (a->sim->stopping || a->phase == APP_STOPPED) return;
    a->phase = APP_BACKOFF;
    uv_timer_stop(&a->timer);
    uv_timer_start(&a->timer, on_retry, ms < 1 ? 1 : (uint64_t)ms, 0);
}

/* ---- commands ---------------------------------------------------------------------- */

/* Sends one command to the next device. Returns false when nothing was sent. */
static bool send_one(struct sim_app *a)
{
    struct sim *s = a->sim;
    struct sim_device *d;
    struct giz_msg m;
    uint8_t payload[1024], buf[1100];
    size_t plen = s->o.app_payload, len = 0, slot;
    char topic[96];

    if (a->phase != APP_READY || a->ndevs == 0 || mqttc__queued(&a->mq) > 65536) return false;
    if (s->o.app_window > 0 && a->inflight >= s->o.app_window) return false;
    d = app_dev(a, a->next_dev++ % a->ndevs);
    if (plen < 4) plen = 4;
    if (plen > sizeof payload) plen = sizeof payload;
    a->sn++;
    payload[0] = (uint8_t)(a->sn >> 24);
    payload[1] = (uint8_t)(a->sn >> 16);
    payload[2] = (uint8_t)(a->sn >> 8);
    payload[3] = (uint8_t)a->sn;
    for (size_t i = 4; i < plen; i++)
        payload[i] = (uint8_t)i;
    memset(&m, 0, sizeof m);
    if (s->o.app_plain) {
        m.cmd = GIZ_CMD_BIZ;
        m.u.biz.data.ptr = payload;
        m.u.biz.data.len = plen;
    } else {
        m.cmd = GIZ_CMD_BIZ_SN;
        m.u.biz_sn.sn = a->sn;
        m.u.biz_sn.data.ptr = payload;
        m.u.biz_sn.data.len = plen;
    }
    if (giz_msg_encode(&m, buf, sizeof buf, &len) != GIZ_OK) return false;
    slot = a->sn % SIM_APP_RING;
    if (a->ring_sn[slot] != 0 && a->ring_t[slot] >= 0) {
        sim__error(s, SIM_ERR_APP_ACK_LOST);
        a->inflight--;
    }
    a->ring_sn[slot] = a->sn;
    a->ring_t[slot] = util__now_ms();
    a->inflight++;
    snprintf(topic, sizeof topic, "app2dev/%s/%s", d->did, a->client_id);
    if (mqttc__publish(&a->mq, topic, buf, len) != 0) {
        a->ring_t[slot] = -1; /* never sent: not in flight */
        a->inflight--;
        return false;
    }
    s->st.app_cmds++;
    s->st.pub_out++;
    return true;
}

static void on_send_tick(uv_timer_t *t)
{
    struct sim_app *a = t->data;
    struct sim *s = a->sim;

    if (s->o.app_window == 0) {
        (void)send_one(a);
        return;
    }
    /* Closed loop: 10 s without an answer counts as lost and frees the slot;
     * then fill the window. */
    double now = util__now_ms();
    for (size_t i = 0; i < SIM_APP_RING; i++)
        if (a->ring_sn[i] != 0 && a->ring_t[i] >= 0 && now - a->ring_t[i] > 10000.0) {
            a->ring_t[i] = -1;
            a->inflight--;
            sim__error(s, SIM_ERR_APP_ACK_LOST);
        }
    while (a->inflight < s->o.app_window && send_one(a))
        ;
}

static void settle(struct sim_app *a, uint32_t sn, bool ack)
{
    struct sim *s = a->sim;
    size_t slot = sn % SIM_APP_RING;
    if (a->ring_sn[slot] != sn || a->ring_t[slot] < 0) return;
    util__samples_add(&s->rtt, util__now_ms() - a->ring_t[slot]);
    a->ring_t[slot] = -1;
    a->inflight--;
    /* Closed loop: answer with the next command at once. */
    if (s->o.app_window > 0) (void)send_one(a);
    if (ack)
        s->st.app_acks++;
    else
        s->st.app_replies++;
}

static void handle_publish(struct sim_app *a, const struct giz_mqtt_publish *p)
{
    struct sim *s = a->sim;
    struct giz_msg m;
    bool to_me = p->topic.len > strlen(a->client_id) &&
                 memcmp(p->topic.ptr + p->topic.len - strlen(a->client_id), a->client_id,
                        strlen(a->client_id)) == 0;

    s->st.pub_in++;
    if (giz_msg_decode(p->payload.ptr, p->payload.len, &m, NULL) != GIZ_OK) {
        sim__error(s, SIM_ERR_BAD_PAYLOAD);
        return;
    }
    if (m.cmd == GIZ_CMD_BIZ_SN_ACK && to_me) {
        settle(a, m.u.biz_sn.sn, true);
    } else if (m.cmd == GIZ_CMD_BIZ_REPLY && to_me && m.u.biz.data.len >= 4) {
        const uint8_t *b = m.u.biz.data.ptr;
        settle(a, (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3], false);
    } else if (m.cmd == GIZ_CMD_LOG) {
        s->st.app_logs++;
    } else {
        s->st.app_other++;
    }
}

/* ---- MQTT ----------------------------------------------------------------------------- */

static void app_mqtt_connect(struct sim_app *a)
{
    struct sim *s = a->sim;
    struct giz_mqtt_connect_opts o;

    memset(&o, 0, sizeof o);
    o.client_id = a->client_id;
    o.username = a->uid;
    o.password = a->token;
    o.keepalive = 120;
    o.protocol_level = 4;
    o.clean_session = true;
    a->phase = APP_CONNECTING;
    const struct sockaddr *to = sim__mqtt_target(s, &a->mq, s->o.app_tls, 0);
    if (to == NULL || mqttc__connect(&a->mq, s->loop, to, &o) != 0) {
        sim__error(s, SIM_ERR_APP_MQTT);
        app_backoff(a);
    }
}

static void app_connected_cb(struct mqttc *c)
{
    (void)c;
}

static void app_packet_cb(struct mqttc *c, const uint8_t *pkt, size_t len)
{
    struct sim_app *a = c->ud;
    struct sim *s = a->sim;
    uint8_t type = pkt[0] >> 4;

    if (type == GIZ_MQTT_CONNACK) {
        uint8_t code = 0xff;
        char topic[96];
        if (giz_mqtt_connack_parse(pkt, len, &code, NULL) != GIZ_OK || code != 0) {
            sim__error(s, SIM_ERR_APP_MQTT);
            mqttc__close(c);
            return;
        }
        a->subs_pending = 0;
        for (uint32_t k = 0; k < a->ndevs; k++) {
            struct sim_device *d = app_dev(a, k);
            snprintf(topic, sizeof topic, "dev2app/%s/%s", d->did, a->client_id);
            if (mqttc__subscribe(c, (uint16_t)(2 * k + 1), topic) == 0) a->subs_pending++;
            snprintf(topic, sizeof topic, "dev2app/%s", d->did);
            if (mqttc__subscribe(c, (uint16_t)(2 * k + 2), topic) == 0) a->subs_pending++;
        }
    } else if (type == GIZ_MQTT_SUBACK) {
        uint16_t id = 0;
        uint8_t granted = 0x80;
        if (giz_mqtt_suback_parse(pkt, len, &id, &granted, NULL) != GIZ_OK || granted == 0x80) {
            sim__error(s, SIM_ERR_APP_MQTT);
            mqttc__close(c);
            return;
        }
        if (a->subs_pending > 0 && --a->subs_pending == 0) {
            uint64_t ms = (uint64_t)(s->o.app_interval_s * 1000.0);
            a->phase = APP_READY;
            s->st.app_ready_now++;
            if (ms == 0) ms = 1;
            uv_timer_stop(&a->timer);
            uv_timer_start(&a->timer, on_send_tick, ms, ms);
            sim__check_ready(s);
        }
    } else if (type == GIZ_MQTT_PUBLISH) {
        struct giz_mqtt_publish p;
        if (giz_mqtt_publish_parse(pkt, len, &p, NULL) == GIZ_OK) handle_publish(a, &p);
    }
}

static void app_closed_cb(struct mqttc *c, int reason)
{
    struct sim_app *a = c->ud;
    struct sim *s = a->sim;
    (void)reason;
    if (a->phase == APP_READY) s->st.app_ready_now--;
    if (s->stopping || a->phase == APP_STOPPED) {
        a->phase = APP_STOPPED;
        return;
    }
    sim__error(s, SIM_ERR_APP_MQTT);
    app_backoff(a);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static void app_http_done(int rc, const struct httpc_resp *r, void *ud)
{
    struct sim_app *a = ud;
    struct sim *s = a->sim;
    cJSON *j = NULL;
    const cJSON *v;

    a->http = NULL;
    if (s->stopping || a->phase == APP_STOPPED) return;
    if (rc != HTTPC_OK) {
        sim__error(s, SIM_ERR_APP_HTTP);
        app_backoff(a);
        return;
    }
    j = cJSON_ParseWithLength(r->body, r->body_len);
    switch (a->http_op) {
    case AOP_CREATE:
        if (r->status == 201) s->st.app_users++;
        /* anything else (e.g. the user exists): try to log in anyway */
        a->http_op = AOP_LOGIN;
        app_http(a);
        break;
    case AOP_LOGIN:
        v = cJSON_GetObjectItemCaseSensitive(j, "uid");
        if (r->status != 200 || j == NULL) {
            sim__error(s, SIM_ERR_APP_HTTP);
            app_backoff(a);
            break;
        }
        if (cJSON_IsString(v))
            (void)util__copy(a->uid, sizeof a->uid, v->valuestring);
        else if (cJSON_IsNumber(v))
            snprintf(a->uid, sizeof a->uid, "%.0f", v->valuedouble);
        v = cJSON_GetObjectItemCaseSensitive(j, "token");
        if (cJSON_IsString(v)) (void)util__copy(a->token, sizeof a->token, v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(j, "mqtt_client_id");
        if (cJSON_IsString(v)) (void)util__copy(a->client_id, sizeof a->client_id, v->valuestring);
        if (!a->uid[0] || !a->token[0] || !a->client_id[0]) {
            sim__error(s, SIM_ERR_APP_HTTP);
            app_backoff(a);
            break;
        }
        s->st.app_logins++;
        a->http_op = AOP_BIND;
        app_http(a);
        break;
    default:
        v = cJSON_GetObjectItemCaseSensitive(j, "success");
        if (r->status != 201 && r->status != 200) {
            sim__error(s, SIM_ERR_APP_BIND);
            app_backoff(a);
            break;
        }
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "failed")) > 0)
            sim__error(s, SIM_ERR_APP_BIND);
        s->st.app_bound += (uint64_t)cJSON_GetArraySize(v);
        a->http_op = AOP_NONE;
        app_mqtt_connect(a);
        break;
    }
    cJSON_Delete(j);
}

static void app_http(struct sim_app *a)
{
    struct sim *s = a->sim;
    cJSON *body = cJSON_CreateObject();
    char *text = NULL, path[160], headers[300] = "";
    const char *method = "POST";

    switch (a->http_op) {
    case AOP_CREATE:
    case AOP_LOGIN:
        cJSON_AddStringToObject(body, "username", a->username);
        cJSON_AddStringToObject(body, "password", a->password);
        snprintf(path, sizeof path, "%s/app/%s", s->o.http_prefix,
                 a->http_op == AOP_CREATE ? "users" : "login");
        break;
    default: {
        cJSON *list = cJSON_AddArrayToObject(body, "devices");
        for (uint32_t k = 0; k < a->ndevs; k++) {
            struct sim_device *d = app_dev(a, k);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "did", d->did);
            cJSON_AddStringToObject(o, "passcode", d->passcode);
            cJSON_AddItemToArray(list, o);
        }
        snprintf(path, sizeof path, "%s/app/bindings", s->o.http_prefix);
        snprintf(headers, sizeof headers, "X-Gizwits-User-token: %s\r\n", a->token);
        break;
    }
    }
    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    a->http = text ? http_uv__start(s->loop, (const struct sockaddr *)&s->http_addr, s->o.http_host,
                                    s->o.http_port, method, path, "application/json", headers, text,
                                    strlen(text), s->o.http_timeout_ms, app_http_done, a)
                   : NULL;
    free(text);
    if (a->http == NULL) {
        sim__error(s, SIM_ERR_APP_HTTP);
        app_backoff(a);
    }
}

void sim__app_start(struct sim_app *a)
{
    if (a->sim->stopping || a->sim->o.no_http) return;
    a->phase = APP_HTTP;
    a->http_op = AOP_CREATE;
    app_http(a);
}

void sim__app_stop(struct sim_app *a)
{
    uint8_t was = a->phase;
    a->phase = APP_STOPPED;
    if (was == APP_READY) a->sim->st.app_ready_now--;
    if (a->http != NULL) {
        http_uv__cancel(a->http);
        a->http = NULL;
    }
    uv_timer_stop(&a->timer);
    if (!uv_is_closing((uv_handle_t *)&a->timer)) uv_close((uv_handle_t *)&a->timer, NULL);
    if (a->mq.state == MQTTC_OPEN) (void)mqttc__disconnect(&a->mq);
    mqttc__close(&a->mq);
}
