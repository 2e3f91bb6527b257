/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * App API, JSON in the shape of the public Gizwits open API: create a user,
 * log in (token with expiry and the MQTT client id), bind devices with DID +
 * passcode, unbind, and list bindings with the M2M host/port serving each
 * DID. The user token travels in X-Gizwits-User-token; errors carry the
 * Gizwits codes (9004 token invalid, 9006 token expired, ...).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"

#define MAX_BATCH 100
#define MAX_USERNAME 64
#define MAX_PASSWORD 128

static void store_error(struct gs_request *rq, int rc)
{
    giz_log(GIZ_LOG_ERR, "%s: store: %s", gs_route_name(rq->route), giz_strerror(rc));
    gs_respond_app_error(rq, 500, GS_E_SERVER_ERROR, "server error");
}

/* Gets username/password from the body; answers 400 if unusable. */
static bool credentials(struct gs_request *rq, const cJSON *body, const char **user,
                        const char **pass)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "username");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "password");
    if (!cJSON_IsString(u) || !cJSON_IsString(p)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "username and password are required");
        return false;
    }
    size_t ul = strlen(u->valuestring), pl = strlen(p->valuestring);
    bool ok = ul > 0 && ul <= MAX_USERNAME && pl > 0 && pl <= MAX_PASSWORD;
    for (size_t i = 0; ok && i < ul; i++)
        if ((unsigned char)u->valuestring[i] < 0x20 || u->valuestring[i] == 0x7f) ok = false;
    if (!ok) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "username must be 1-64 printable bytes, password 1-128 bytes");
        return false;
    }
    *user = u->valuestring;
    *pass = p->valuestring;
    return true;
}

void gs_route_app_users(struct gs_request *rq)
{
    cJSON *body = gs_body_json(rq);
    const char *user = NULL, *pass = NULL;
    struct giz_store *st = NULL;
    if (body == NULL || !credentials(rq, body, &user, &pass)) goto out;
    st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        goto out;
    }
    char uid[GIZ_UID_SIZE];
    int rc = giz_store_user_create(st, user, pass, uid);
    if (rc == GIZ_ERR_EXISTS) {
        gs_respond_app_error(rq, 409, GS_E_USERNAME_UNAVAILABLE, "username unavailable");
        goto out;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    giz_log(GIZ_LOG_INFO, "user %s created", uid);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "uid", uid);
    gs_respond_json(rq, 201, j);
out:
    gs_store_release(&rq->srv->pool, st);
    cJSON_Delete(body);
}

static bool appid_ok(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n >= GIZ_PK_SIZE) return false;
    for (size_t i = 0; i < n; i++)
        if (!giz_char_is_base62(a[i])) return false;
    return true;
}

void gs_route_app_login(struct gs_request *rq)
{
    cJSON *body = gs_body_json(rq);
    const char *user = NULL, *pass = NULL;
    struct giz_store *st = NULL;
    if (body == NULL || !credentials(rq, body, &user, &pass)) goto out;
    const char *appid = gs_header(rq, "X-Gizwits-Application-Id");
    if (appid != NULL && appid[0] != '\0' && !appid_ok(appid)) {
        gs_respond_app_error(rq, 400, GS_E_APPID_INVALID, "appid invalid");
        goto out;
    }
    if (appid != NULL && appid[0] == '\0') appid = NULL;
    st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        goto out;
    }
    struct giz_session s;
    int rc = giz_store_user_login(st, user, pass, appid, rq->srv->cfg.token_ttl, gs_unix_now(), &s);
    if (rc == GIZ_ERR_AUTH) {
        gs_respond_app_error(rq, 401, GS_E_USERNAME_PASSWORD_ERROR, "username or password error");
        goto out;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    giz_log(GIZ_LOG_INFO, "user %s logged in (client %s)", s.uid, s.mqtt_client_id);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "uid", s.uid);
    cJSON_AddStringToObject(j, "token", s.token);
    cJSON_AddNumberToObject(j, "expire_at", (double)s.expire_at);
    cJSON_AddStringToObject(j, "mqtt_client_id", s.mqtt_client_id);
    gs_respond_json(rq, 200, j);
    explicit_bzero(s.token, sizeof s.token);
out:
    gs_store_release(&rq->srv->pool, st);
    cJSON_Delete(body);
}

/* Resolves the X-Gizwits-User-token session; answers 401 if missing/bad. */
static bool app_session(struct gs_request *rq, struct giz_store *st, struct giz_session *s)
{
    const char *token = gs_header(rq, "X-Gizwits-User-token");
    if (token == NULL || token[0] == '\0' || strlen(token) >= 256) {
        gs_respond_app_error(rq, 401, GS_E_TOKEN_INVALID, "token invalid");
        return false;
    }
    int rc = giz_store_session_by_token(st, token, gs_unix_now(), s);
    if (rc == GIZ_OK) return true;
    if (rc == GIZ_ERR_EXPIRED)
        gs_respond_app_error(rq, 401, GS_E_TOKEN_EXPIRED, "token expired");
    else if (rc == GIZ_ERR_AUTH || rc == GIZ_ERR_NOT_FOUND)
        gs_respond_app_error(rq, 401, GS_E_TOKEN_INVALID, "token invalid");
    else
        store_error(rq, rc);
    return false;
}

/* POST (bind) or DELETE (unbind) a batch. */
static void bind_batch(struct gs_request *rq, struct giz_store *st, const struct giz_session *s,
                       bool bind)
{
    cJSON *body = gs_body_json(rq);
    if (body == NULL) return;
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(body, "devices");
    if (!cJSON_IsArray(devs) || cJSON_GetArraySize(devs) == 0 ||
        cJSON_GetArraySize(devs) > MAX_BATCH) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "devices must be an array of 1-100 {did, passcode} objects");
        cJSON_Delete(body);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(j, "success");
    cJSON *failed = cJSON_AddArrayToObject(j, "failed");
    const cJSON *d = NULL;
    cJSON_ArrayForEach(d, devs)
    {
        const cJSON *did = cJSON_GetObjectItemCaseSensitive(d, "did");
        const cJSON *pc = cJSON_GetObjectItemCaseSensitive(d, "passcode");
        if (!cJSON_IsString(did)) {
            cJSON_AddItemToArray(failed, cJSON_CreateString(""));
            continue;
        }
        int rc = GIZ_ERR_INVAL;
        if (gs_valid_did(did->valuestring)) {
            if (!bind)
                rc = giz_store_binding_remove(st, s->uid, did->valuestring);
            else if (cJSON_IsString(pc) && strlen(pc->valuestring) <= GIZ_MAX_PASSCODE)
                rc = giz_store_binding_add(st, s->uid, did->valuestring, pc->valuestring);
        }
        if (rc == GIZ_OK)
            giz_log(GIZ_LOG_INFO, "user %s %s %s", s->uid, bind ? "bound" : "unbound",
                    did->valuestring);
        else if (rc == GIZ_ERR_DB)
            giz_log(GIZ_LOG_ERR, "binding %s: %s", did->valuestring, giz_strerror(rc));
        cJSON_AddItemToArray(rc == GIZ_OK ? ok : failed, cJSON_CreateString(did->valuestring));
    }
    cJSON_Delete(body);
    gs_respond_json(rq, bind ? 201 : 200, j);
}

struct list_ctx {
    unsigned skip, limit, seen;
    struct giz_buf dids; /* n DIDs of GIZ_DID_SIZE bytes each */
    unsigned n;
    bool oom;
};

static const char *list_did(const struct list_ctx *c, unsigned i)
{
    return (const char *)c->dids.data + (size_t)i * GIZ_DID_SIZE;
}

static int binding_cb(const struct giz_binding *b, void *ud)
{
    struct list_ctx *c = ud;
    if (c->seen++ < c->skip) return 0;
    if (c->limit != 0 && c->n >= c->limit) return 1;
    if (giz_buf_append(&c->dids, b->did, GIZ_DID_SIZE) != GIZ_OK) {
        c->oom = true;
        return 1;
    }
    c->n++;
    return 0;
}

static void list_bindings(struct gs_request *rq, struct giz_store *st, const struct giz_session *s)
{
    struct list_ctx c = {.limit = 100};
    /* limit 0 lists every binding: no cap beyond memory (as before) */
    giz_buf_init(&c.dids, SIZE_MAX);
    if (!gs_query_uint(rq, "limit", 100000, &c.limit) ||
        !gs_query_uint(rq, "skip", 100000, &c.skip)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "limit/skip must be numbers");
        return;
    }
    int rc = giz_store_binding_list_by_user(st, s->uid, binding_cb, &c);
    if (rc != GIZ_OK || c.oom) {
        giz_buf_free(&c.dids);
        store_error(rq, rc != GIZ_OK ? rc : GIZ_ERR_NOMEM);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "devices");
    bool broker_alive = gs_broker_alive(rq->srv, st, NULL); /* stale flags are not presence */
    for (unsigned i = 0; i < c.n; i++) {
        struct giz_device d;
        if (giz_store_device_get(st, list_did(&c, i), &d) != GIZ_OK) continue;
        struct gs_m2m_route route;
        gs_m2m_route_for_did(&rq->srv->cfg, d.did, &route);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "did", d.did);
        cJSON_AddStringToObject(o, "product_key", d.product_key);
        cJSON_AddStringToObject(o, "mac", d.mac);
        cJSON_AddStringToObject(o, "host", route.host);
        cJSON_AddNumberToObject(o, "port", route.port);
        if (route.port_s != 0) cJSON_AddNumberToObject(o, "port_s", route.port_s);
        cJSON_AddBoolToObject(o, "is_online", broker_alive && d.online);
        cJSON_AddBoolToObject(o, "is_disabled", d.status != GIZ_DEVICE_ACTIVE);
        cJSON_AddStringToObject(o, "wifi_soft_version", d.wifi_soft_version);
        cJSON_AddStringToObject(o, "mcu_soft_version", d.mcu_soft_version);
        cJSON_AddItemToArray(arr, o);
    }
    giz_buf_free(&c.dids);
    gs_respond_json(rq, 200, j);
}

void gs_route_app_bindings(struct gs_request *rq)
{
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    struct giz_session s;
    if (st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        return;
    }
    if (app_session(rq, st, &s)) {
        if (rq->method == GS_M_POST)
            bind_batch(rq, st, &s, true);
        else if (rq->method == GS_M_DELETE)
            bind_batch(rq, st, &s, false);
        else
            list_bindings(rq, st, &s);
    }
    gs_store_release(&rq->srv->pool, st);
}
