/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The message set of the WebSocket app API (hub thread), as the public
 * Gizwits "Web Socket API" page documents it: {"cmd", "data"} JSON text.
 *   login_req {appid?, uid, token, p0_type attrs_v4|custom, heartbeat_interval
 *     <= 180, auto_subscribe = true} -> login_res {success} once the broker
 *     accepted the app user (the token is checked by the store here and by
 *     the broker's plugin again);
 *   subscribe_req [{did}] -> subscribe_res {success:[{did}], failed:[{did,
 *     error_code, msg}]} (bound devices only), then s2c_online_status;
 *   c2s_raw {did, raw: a whole 0x0090/0x0093/0x0094 message} -> published
 *     as is on app2dev/<did>/<client id>; s2c_raw {did, raw} for what the
 *     device sends (dev2app/<did>[/<client id>]);
 *   c2s_write {did, attrs} / c2s_read {did, names?} (attrs_v4, p0 from the
 *     product's data points), optional "req_sn" -> 0x0093 instead of 0x0090;
 *     s2c_noti {did, attrs, res_sn?|req_sn?}, s2c_ack {res_sn, did};
 *     c2s_ack {res_sn, did} -> 0x0094;
 *   s2c_online_status {did, mac, online} and s2c_binding_changed {did, bind}
 *     from the store (polled every GS_WS_POLL_MS);
 *   ping -> pong; anything else -> s2c_invalid_msg {error_code, msg}.
 * Binding rules are the app MQTT login's: only devices bound to the user,
 * checked here (so a refused message gets an answer) and enforced by the
 * broker's ACL on the session's own MQTT connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "giz/error.h"
#include "giz/log.h"
#include "giz/p0.h"
#include "giz/proto.h"
#include "giz/util.h"
#include "ws_app.h"

#define MAX_TOKEN 128
#define MAX_SUBSCRIBE_BATCH 100

void ws_dev_free(struct ws_dev *d)
{
    giz_p0_schema_free(d->schema);
    d->schema = NULL;
}

/* ---- bindings and subscriptions ---------------------------------------------- */

static int did_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static bool is_bound(const struct ws_sess *s, const char *did)
{
    return s->n_bound > 0 && bsearch(did, s->bound, s->n_bound, GIZ_DID_SIZE, did_cmp) != NULL;
}

static struct ws_dev *sub_find(struct ws_sess *s, const char *did)
{
    for (size_t i = 0; i < s->n_subs; i++)
        if (strcmp(s->subs[i].did, did) == 0) return &s->subs[i];
    return NULL;
}

struct bind_list {
    char (*d)[GIZ_DID_SIZE];
    size_t n, cap;
    bool oom;
};

static int bind_cb(const struct giz_binding *b, void *ud)
{
    struct bind_list *l = ud;
    void *p = giz_array_reserve(l->d, &l->cap, l->n + 1, GIZ_DID_SIZE, 16, 100000);
    if (p == NULL) {
        l->oom = true;
        return 1;
    }
    l->d = p;
    memcpy(l->d[l->n++], b->did, GIZ_DID_SIZE);
    return 0;
}

/* The user's bindings now, sorted; false on a store error. */
static bool load_bindings(struct ws_sess *s, struct giz_store *st, struct bind_list *l)
{
    memset(l, 0, sizeof *l);
    if (giz_store_binding_list_by_user(st, s->uid, bind_cb, l) != GIZ_OK || l->oom) {
        free(l->d);
        return false;
    }
    if (l->n > 1) qsort(l->d, l->n, GIZ_DID_SIZE, did_cmp);
    return true;
}

static void send_online(struct ws_sess *s, struct ws_dev *d, bool online)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "did", d->did);
    cJSON_AddStringToObject(o, "mac", d->mac);
    cJSON_AddBoolToObject(o, "online", online);
    ws_send_cmd(s, "s2c_online_status", o);
    d->online = online ? 1 : 0;
}

/* Subscribes to a bound device: 0, or the Gizwits error code. */
static int subscribe_one(struct ws_sess *s, struct giz_store *st, const char *did, bool alive)
{
    if (!giz_did_valid(did)) return GS_E_DEVICE_NOT_FOUND;
    if (!is_bound(s, did)) return GS_E_DEVICE_NOT_BOUND;
    struct ws_dev *d = sub_find(s, did);
    if (d != NULL) return 0;
    if (s->n_subs >= GS_WS_MAX_SUBS) return GS_E_FORM_INVALID;
    struct giz_device dev;
    if (giz_store_device_get(st, did, &dev) != GIZ_OK) return GS_E_DEVICE_NOT_FOUND;
    void *p =
        giz_array_reserve(s->subs, &s->cap_subs, s->n_subs + 1, sizeof *s->subs, 8, GS_WS_MAX_SUBS);
    if (p == NULL) return GS_E_SERVER_ERROR;
    s->subs = p;
    if (ws_mqtt_subscribe(s, did, true) != GIZ_OK) return GS_E_SERVER_ERROR;
    d = &s->subs[s->n_subs++];
    memset(d, 0, sizeof *d);
    snprintf(d->did, sizeof d->did, "%s", dev.did);
    snprintf(d->mac, sizeof d->mac, "%s", dev.mac);
    snprintf(d->product_key, sizeof d->product_key, "%s", dev.product_key);
    send_online(s, d, alive && dev.online && dev.status == GIZ_DEVICE_ACTIVE);
    return 0;
}

static void unsubscribe_one(struct ws_sess *s, const char *did)
{
    for (size_t i = 0; i < s->n_subs; i++) {
        if (strcmp(s->subs[i].did, did) != 0) continue;
        ws_mqtt_subscribe(s, did, false);
        ws_dev_free(&s->subs[i]);
        s->subs[i] = s->subs[--s->n_subs];
        return;
    }
}

static const char *code_text(int code)
{
    switch (code) {
    case GS_E_DEVICE_NOT_BOUND:
        return "device not bound";
    case GS_E_DEVICE_NOT_FOUND:
        return "device not found";
    case GS_E_FORM_INVALID:
        return "too many subscriptions";
    default:
        return "server error";
    }
}

/* ---- client messages ------------------------------------------------------------ */

static void login_res(struct ws_sess *s, bool ok)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddBoolToObject(d, "success", ok);
    ws_send_cmd(s, "login_res", d);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void do_login(struct ws_sess *s, const cJSON *data)
{
    if (s->state != WS_WAIT_LOGIN) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "already logged in");
        return;
    }
    const char *uid = str_of(data, "uid");
    const char *token = str_of(data, "token");
    const char *appid = str_of(data, "appid");
    const char *p0 = str_of(data, "p0_type");
    const cJSON *hb = cJSON_GetObjectItemCaseSensitive(data, "heartbeat_interval");
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(data, "auto_subscribe");
    if (uid == NULL || token == NULL || strlen(uid) >= GIZ_UID_SIZE || token[0] == '\0' ||
        strlen(token) > MAX_TOKEN || (appid != NULL && strlen(appid) >= GIZ_PK_SIZE) ||
        (p0 != NULL && strcmp(p0, "attrs_v4") != 0 && strcmp(p0, "custom") != 0) ||
        (hb != NULL && (!cJSON_IsNumber(hb) || hb->valuedouble < 1 || hb->valuedouble > 180)) ||
        (as != NULL && !cJSON_IsBool(as))) {
        ws_send_invalid(s, GS_E_FORM_INVALID,
                        "login_req needs uid, token, p0_type attrs_v4|custom, "
                        "heartbeat_interval 1-180, auto_subscribe true|false");
        login_res(s, false);
        return;
    }
    struct giz_store *st = gs_store_acquire(&s->hub->srv->pool);
    if (st == NULL) {
        login_res(s, false);
        return;
    }
    struct giz_session sess;
    int rc = giz_store_session_by_token(st, token, gs_unix_now(), &sess);
    gs_store_release(&s->hub->srv->pool, st);
    const char *why = NULL;
    if (rc == GIZ_ERR_EXPIRED)
        why = "token expired";
    else if (rc != GIZ_OK)
        why = "token invalid";
    else if (strcmp(sess.uid, uid) != 0)
        why = "token of another user";
    else if (appid != NULL && appid[0] != '\0' && sess.appid[0] != '\0' &&
             strcmp(appid, sess.appid) != 0)
        why = "appid differs from the token's";
    if (why != NULL) {
        giz_log(GIZ_LOG_INFO, "ws %s: login refused: %s", s->peer, why);
        login_res(s, false);
        if (++s->login_failures >= GS_WS_MAX_LOGIN_FAILURES)
            ws_close(s, GIZ_WS_CLOSE_POLICY, "too many failed logins");
        return;
    }
    snprintf(s->uid, sizeof s->uid, "%s", sess.uid);
    snprintf(s->client_id, sizeof s->client_id, "%s", sess.mqtt_client_id);
    snprintf(s->appid, sizeof s->appid, "%s", sess.appid);
    s->expire_at = sess.expire_at;
    s->custom = p0 != NULL && strcmp(p0, "custom") == 0;
    s->heartbeat_s = hb != NULL ? (unsigned)hb->valuedouble : 180;
    s->auto_subscribe = as == NULL || cJSON_IsTrue(as);
    int lk = ws_link_attach(s, token);
    if (lk < 0) {
        s->uid[0] = '\0';
        s->state = WS_WAIT_LOGIN;
        login_res(s, false);
    } else if (lk == 1) {
        ws_msg_login_done(s);
    }
}

static void do_subscribe(struct ws_sess *s, const cJSON *data)
{
    if (!cJSON_IsArray(data) || cJSON_GetArraySize(data) > MAX_SUBSCRIBE_BATCH) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "subscribe_req data must be [{did}, ...] (<= 100)");
        return;
    }
    struct giz_store *st = gs_store_acquire(&s->hub->srv->pool);
    if (st == NULL) {
        ws_send_invalid(s, GS_E_SERVER_ERROR, "server error");
        return;
    }
    bool alive = gs_broker_alive(s->hub->srv, st, NULL);
    cJSON *res = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(res, "success");
    cJSON *failed = cJSON_AddArrayToObject(res, "failed");
    /* the answer first, then the online statuses: collect the DIDs */
    char dids[MAX_SUBSCRIBE_BATCH][GIZ_DID_SIZE];
    int codes[MAX_SUBSCRIBE_BATCH];
    size_t n = 0;
    const cJSON *e = NULL;
    cJSON_ArrayForEach(e, data)
    {
        const char *did = str_of(e, "did");
        snprintf(dids[n], GIZ_DID_SIZE, "%s", did != NULL ? did : "");
        codes[n] = (did == NULL || strlen(did) >= GIZ_DID_SIZE) ? GS_E_DEVICE_NOT_FOUND
                   : !giz_did_valid(did)                        ? GS_E_DEVICE_NOT_FOUND
                   : !is_bound(s, did)                          ? GS_E_DEVICE_NOT_BOUND
                                                                : 0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "did", dids[n]);
        cJSON_AddNumberToObject(o, "error_code", codes[n]);
        cJSON_AddStringToObject(o, "msg", codes[n] == 0 ? "ok" : code_text(codes[n]));
        cJSON_AddItemToArray(codes[n] == 0 ? ok : failed, o);
        n++;
    }
    ws_send_cmd(s, "subscribe_res", res);
    for (size_t i = 0; i < n; i++)
        if (codes[i] == 0) subscribe_one(s, st, dids[i], alive);
    gs_store_release(&s->hub->srv->pool, st);
}

/* The target of a c2s_*: a bound device; NULL after answering. */
static const char *target_did(struct ws_sess *s, const cJSON *data)
{
    const char *did = str_of(data, "did");
    if (did == NULL || !giz_did_valid(did)) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "data.did must be a device id");
        return NULL;
    }
    if (!is_bound(s, did)) {
        ws_send_invalid(s, GS_E_DEVICE_NOT_BOUND, "device not bound");
        return NULL;
    }
    return did;
}

static void publish_or_say(struct ws_sess *s, const char *did, const uint8_t *p, size_t n)
{
    int rc = ws_mqtt_publish(s, did, p, n);
    if (rc == GIZ_ERR_OVERSIZE)
        ws_send_invalid(s, GS_E_SERVER_ERROR, "too many messages in flight to the broker: dropped");
    else if (rc != GIZ_OK)
        ws_send_invalid(s, GS_E_SERVER_ERROR, "broker connection lost");
}

static void do_raw(struct ws_sess *s, const cJSON *data)
{
    const char *did = target_did(s, data);
    if (did == NULL) return;
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(data, "raw");
    int n = cJSON_IsArray(raw) ? cJSON_GetArraySize(raw) : -1;
    if (n <= 0 || (size_t)n > GIZ_MAX_BIZ + 16u) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "data.raw must be an array of bytes");
        return;
    }
    uint8_t *buf = malloc((size_t)n);
    if (buf == NULL) {
        ws_send_invalid(s, GS_E_SERVER_ERROR, "out of memory");
        return;
    }
    size_t i = 0;
    const cJSON *b = NULL;
    cJSON_ArrayForEach(b, raw)
    {
        if (!cJSON_IsNumber(b) || b->valuedouble < 0 || b->valuedouble > 255 ||
            b->valuedouble != (double)(int)b->valuedouble) {
            ws_send_invalid(s, GS_E_FORM_INVALID, "data.raw: every byte must be 0-255");
            free(buf);
            return;
        }
        buf[i++] = (uint8_t)b->valueint;
    }
    struct giz_msg m;
    struct giz_error err = {0};
    if (giz_msg_decode(buf, i, &m, &err) != GIZ_OK || !m.framed ||
        (m.cmd != GIZ_CMD_BIZ && m.cmd != GIZ_CMD_BIZ_SN && m.cmd != GIZ_CMD_BIZ_SN_ACK)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "data.raw must be a whole 00000003 <len> 00 0090|0093|0094 message (%s)",
                 err.code != 0 ? giz_strerror(err.code) : "other command");
        ws_send_invalid(s, GS_E_FORM_INVALID, msg);
        free(buf);
        return;
    }
    publish_or_say(s, did, buf, i);
    free(buf);
}

/* The product schema of a subscribed or bound device (attrs_v4), or NULL. */
static const struct giz_p0_schema *schema_of(struct ws_sess *s, const char *did)
{
    struct ws_dev *d = sub_find(s, did);
    if (d == NULL) return NULL;
    if (!d->schema_tried) { /* read once, at the first use after subscribing */
        d->schema_tried = true;
        struct giz_store *st = gs_store_acquire(&s->hub->srv->pool);
        char *json = NULL;
        size_t len = 0;
        int rc = st != NULL ? giz_store_datapoints_get(st, d->product_key, &json, &len, NULL)
                            : GIZ_ERR_DB;
        gs_store_release(&s->hub->srv->pool, st);
        struct giz_error err = {0};
        if (rc == GIZ_OK && giz_p0_schema_parse(json, len, &d->schema, &err) != GIZ_OK) {
            giz_log(GIZ_LOG_WARN, "ws: data points of product %s do not parse: %s", d->product_key,
                    err.text);
            d->schema = NULL;
        } else if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND) {
            giz_log(GIZ_LOG_WARN, "ws: data points of product %s: %s", d->product_key,
                    giz_strerror(rc));
            d->schema_tried = false; /* a store error: try again next time */
        }
        free(json);
    }
    return d->schema;
}

/* Sends a p0 body as 0x0090, or 0x0093 with `sn` when has_sn. */
static void send_p0(struct ws_sess *s, const char *did, const uint8_t *p0, size_t n, bool has_sn,
                    uint32_t sn, uint16_t cmd_sn)
{
    struct giz_msg m = {0};
    if (has_sn) {
        m.cmd = cmd_sn;
        m.u.biz_sn.sn = sn;
        m.u.biz_sn.data = (struct giz_view){p0, n};
    } else {
        m.cmd = GIZ_CMD_BIZ;
        m.u.biz.data = (struct giz_view){p0, n};
    }
    size_t need = giz_msg_encoded_size(&m), len = 0;
    uint8_t *buf = need > 0 ? malloc(need) : NULL;
    if (buf == NULL || giz_msg_encode(&m, buf, need, &len) != GIZ_OK) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "message too long");
        free(buf);
        return;
    }
    publish_or_say(s, did, buf, len);
    free(buf);
}

static bool req_sn(struct ws_sess *s, const cJSON *root, const char *key, uint32_t *sn, bool *has)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *has = false;
    if (v == NULL) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4294967295.0 ||
        v->valuedouble != (double)(uint32_t)v->valuedouble) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s must be an integer 0-4294967295", key);
        ws_send_invalid(s, GS_E_FORM_INVALID, msg);
        return false;
    }
    *sn = (uint32_t)v->valuedouble;
    *has = true;
    return true;
}

static void do_write_read(struct ws_sess *s, const cJSON *root, const cJSON *data, bool write)
{
    if (s->custom) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "p0_type custom: use c2s_raw");
        return;
    }
    const char *did = target_did(s, data);
    uint32_t sn = 0;
    bool has_sn = false;
    if (did == NULL || !req_sn(s, root, "req_sn", &sn, &has_sn)) return;
    const struct giz_p0_schema *sc = schema_of(s, did);
    if (sc == NULL) {
        ws_send_invalid(s, GS_E_FORM_INVALID,
                        sub_find(s, did) == NULL ? "subscribe to the device first"
                                                 : "the product has no data-point schema");
        return;
    }
    uint8_t p0[4096];
    size_t n = 0;
    struct giz_error err = {0};
    int rc = write ? giz_p0_encode_write(sc, cJSON_GetObjectItemCaseSensitive(data, "attrs"),
                                         GIZ_P0_FORM_AUTO, p0, sizeof p0, &n, &err)
                   : giz_p0_encode_read(sc, cJSON_GetObjectItemCaseSensitive(data, "names"), p0,
                                        sizeof p0, &n, &err);
    if (rc != GIZ_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: %s", write ? "attrs" : "names",
                 err.text[0] ? err.text : giz_strerror(rc));
        ws_send_invalid(s, GS_E_FORM_INVALID, msg);
        return;
    }
    send_p0(s, did, p0, n, has_sn, sn, GIZ_CMD_BIZ_SN);
}

static void do_ack(struct ws_sess *s, const cJSON *root, const cJSON *data)
{
    /* the docs put res_sn and did at the top level; accept them in data too */
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "did") != NULL ? root : data;
    const char *did = target_did(s, src);
    uint32_t sn = 0;
    bool has = false;
    if (did == NULL || !req_sn(s, src, "res_sn", &sn, &has)) return;
    if (!has) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "c2s_ack needs res_sn");
        return;
    }
    send_p0(s, did, NULL, 0, true, sn, GIZ_CMD_BIZ_SN_ACK);
}

void ws_msg_text(struct ws_sess *s, const uint8_t *p, size_t n)
{
    cJSON *root = cJSON_ParseWithLength((const char *)p, n);
    const char *cmd = root != NULL ? str_of(root, "cmd") : NULL;
    if (!cJSON_IsObject(root) || cmd == NULL) {
        ws_send_invalid(s, GS_E_FORM_INVALID, "not a JSON object with a \"cmd\"");
        cJSON_Delete(root);
        return;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (strcmp(cmd, "ping") == 0) {
        ws_send_cmd(s, "pong", NULL);
    } else if (strcmp(cmd, "login_req") == 0) {
        if (!cJSON_IsObject(data))
            ws_send_invalid(s, GS_E_FORM_INVALID, "login_req needs a data object");
        else
            do_login(s, data);
    } else if (strcmp(cmd, "subscribe_req") == 0 || strcmp(cmd, "c2s_raw") == 0 ||
               strcmp(cmd, "c2s_write") == 0 || strcmp(cmd, "c2s_read") == 0 ||
               strcmp(cmd, "c2s_ack") == 0) {
        if (s->state != WS_READY)
            ws_send_invalid(s, GS_WS_E_LOGIN, "log in first (login_req)");
        else if (strcmp(cmd, "subscribe_req") == 0)
            do_subscribe(s, data);
        else if (strcmp(cmd, "c2s_ack") == 0)
            do_ack(s, root, data);
        else if (!cJSON_IsObject(data))
            ws_send_invalid(s, GS_E_FORM_INVALID, "data must be an object");
        else if (strcmp(cmd, "c2s_raw") == 0)
            do_raw(s, data);
        else
            do_write_read(s, root, data, strcmp(cmd, "c2s_write") == 0);
    } else {
        ws_send_invalid(s, GS_E_FORM_INVALID, "unknown cmd");
    }
    cJSON_Delete(root);
}

/* ---- broker items ------------------------------------------------------------------ */

static cJSON *bytes_array(const uint8_t *p, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(p[i]));
    return a;
}

static void send_raw(struct ws_sess *s, const char *did, const uint8_t *p, size_t n)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "did", did);
    cJSON_AddItemToObject(d, "raw", bytes_array(p, n));
    ws_send_cmd(s, "s2c_raw", d);
}

/* A device message in attrs_v4: s2c_noti / s2c_ack, s2c_raw for pass-through. */
static void device_attrs(struct ws_sess *s, const char *did, const uint8_t *p, size_t n)
{
    struct giz_msg m;
    if (giz_msg_decode(p, n, &m, NULL) != GIZ_OK ||
        (m.cmd != GIZ_CMD_BIZ_REPLY && m.cmd != GIZ_CMD_BIZ_SN && m.cmd != GIZ_CMD_BIZ_SN_ACK &&
         m.cmd != GIZ_CMD_BIZ)) {
        send_raw(s, did, p, n); /* not a business message: as it came */
        return;
    }
    bool sn_cmd = m.cmd == GIZ_CMD_BIZ_SN || m.cmd == GIZ_CMD_BIZ_SN_ACK;
    struct giz_view body = sn_cmd ? m.u.biz_sn.data : m.u.biz.data;
    if (m.cmd == GIZ_CMD_BIZ_SN_ACK && body.len == 0) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "cmd", "s2c_ack");
        cJSON_AddNumberToObject(j, "res_sn", m.u.biz_sn.sn);
        cJSON_AddStringToObject(j, "did", did);
        ws_send_json(s, j);
        return;
    }
    const struct giz_p0_schema *sc = schema_of(s, did);
    if (sc == NULL || body.len == 0 || body.ptr[0] == GIZ_P0_RAW_FROM_DEV) {
        send_raw(s, did, p, n);
        return;
    }
    struct giz_p0_msg pm;
    struct giz_error err = {0};
    if (giz_p0_decode(sc, body.ptr, body.len, &pm, &err) != GIZ_OK ||
        !giz_p0_action_is_status(pm.action)) {
        char msg[160];
        snprintf(msg, sizeof msg, "device %s sent data that does not match its data points (%s)",
                 did, err.text[0] ? err.text : "not a status");
        giz_p0_msg_clear(&pm);
        ws_send_invalid(s, GS_E_FORM_INVALID, msg);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "cmd", "s2c_noti");
    if (m.cmd == GIZ_CMD_BIZ_SN) cJSON_AddNumberToObject(j, "req_sn", m.u.biz_sn.sn);
    if (m.cmd == GIZ_CMD_BIZ_SN_ACK) cJSON_AddNumberToObject(j, "res_sn", m.u.biz_sn.sn);
    cJSON *d = cJSON_AddObjectToObject(j, "data");
    cJSON_AddStringToObject(d, "did", did);
    cJSON_AddItemToObject(d, "attrs", pm.attrs);
    pm.attrs = NULL;
    giz_p0_msg_clear(&pm);
    ws_send_json(s, j);
}

void ws_msg_login_done(struct ws_sess *s)
{
    s->state = WS_READY;
    s->last_rx_ms = ws_now_ms();
    giz_log(GIZ_LOG_INFO, "ws %s: user %s logged in (client %s, %s)", s->peer, s->uid, s->client_id,
            s->custom ? "custom" : "attrs_v4");
    struct giz_store *st = gs_store_acquire(&s->hub->srv->pool);
    struct bind_list l;
    if (st != NULL && load_bindings(s, st, &l)) {
        free(s->bound);
        s->bound = l.d;
        s->n_bound = l.n;
        s->bound_known = true;
    }
    login_res(s, true);
    if (st != NULL && s->auto_subscribe) {
        bool alive = gs_broker_alive(s->hub->srv, st, NULL);
        for (size_t i = 0; i < s->n_bound; i++)
            subscribe_one(s, st, s->bound[i], alive);
    }
    gs_store_release(&s->hub->srv->pool, st);
}

void ws_msg_broker(struct ws_sess *s, struct ws_item *it)
{
    if (it->kind == WS_IT_CONNACK) {
        if (s->state != WS_CONNECTING) return;
        if (it->rc != 0) {
            giz_log(GIZ_LOG_INFO, "ws %s: broker refused user %s (CONNACK %d)", s->peer, s->uid,
                    it->rc);
            login_res(s, false);
            ws_close(s, GIZ_WS_CLOSE_POLICY, "login refused");
            return;
        }
        ws_msg_login_done(s);
        return;
    }
    if (it->kind == WS_IT_GONE) {
        if (s->state == WS_CONNECTING) login_res(s, false);
        giz_log(GIZ_LOG_INFO, "ws %s: broker connection of %s ended (%d)", s->peer, s->uid, it->rc);
        ws_close(s, GIZ_WS_CLOSE_GOING_AWAY, "broker connection ended");
        return;
    }
    /* dev2app/<did> or dev2app/<did>/<client id> */
    if (strncmp(it->topic, "dev2app/", 8) != 0) return;
    char did[GIZ_DID_SIZE];
    const char *d0 = it->topic + 8;
    const char *slash = strchr(d0, '/');
    size_t dl = slash != NULL ? (size_t)(slash - d0) : strlen(d0);
    if (dl >= sizeof did) return;
    memcpy(did, d0, dl);
    did[dl] = '\0';
    if (sub_find(s, did) == NULL) return; /* unsubscribed or unbound meanwhile */
    if (s->custom)
        send_raw(s, did, it->data, it->len);
    else
        device_attrs(s, did, it->data, it->len);
}

/* ---- the periodic store look ---------------------------------------------------------- */

void ws_msg_poll(struct ws_sess *s, struct giz_store *st, bool broker_alive)
{
    struct bind_list l;
    if (load_bindings(s, st, &l)) {
        /* merge-compare two sorted lists */
        size_t i = 0, j = 0;
        while (s->bound_known && (i < s->n_bound || j < l.n)) {
            int c = i >= s->n_bound ? 1 : j >= l.n ? -1 : strcmp(s->bound[i], l.d[j]);
            const char *did = c < 0 ? s->bound[i] : l.d[j];
            if (c != 0) {
                cJSON *d = cJSON_CreateObject();
                cJSON_AddStringToObject(d, "did", did);
                cJSON_AddBoolToObject(d, "bind", c > 0);
                ws_send_cmd(s, "s2c_binding_changed", d);
                if (c < 0) unsubscribe_one(s, did);
            }
            if (c <= 0) i++;
            if (c >= 0) j++;
        }
        free(s->bound);
        s->bound = l.d;
        s->n_bound = l.n;
        s->bound_known = true;
        if (s->auto_subscribe)
            for (size_t k = 0; k < s->n_bound; k++)
                if (sub_find(s, s->bound[k]) == NULL)
                    subscribe_one(s, st, s->bound[k], broker_alive);
    }
    for (size_t k = 0; k < s->n_subs && !s->dead; k++) {
        struct ws_dev *d = &s->subs[k];
        struct giz_device dev;
        if (giz_store_device_get(st, d->did, &dev) != GIZ_OK) continue;
        bool on = broker_alive && dev.online && dev.status == GIZ_DEVICE_ACTIVE;
        if (d->online != (on ? 1 : 0)) send_online(s, d, on);
    }
    if (s->expire_at > 0 && gs_unix_now() >= s->expire_at) {
        ws_send_invalid(s, GS_WS_E_LOGIN, "token expired: log in again");
        ws_close(s, GIZ_WS_CLOSE_POLICY, "token expired");
    }
}
