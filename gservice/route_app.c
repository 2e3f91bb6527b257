/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * App API, JSON in the shape of the public Gizwits open API: create a user
 * (username/password, email/password or the anonymous phone_id; the answer
 * carries a token at once), log in (token with expiry and the MQTT client
 * id), bind devices with DID + passcode or with product key + MAC and the
 * product-secret signature (bind_mac), unbind, list bindings with every
 * field clients read (M2M host/port of each DID, the GService's HTTP/HTTPS
 * ports as ws_port/wss_port, remark, dev_alias, type, role, ...) and edit a
 * binding's remark / dev_alias. The user token travels in
 * X-Gizwits-User-token; errors carry the Gizwits codes (9004 token invalid,
 * 9006 token expired, ...). Device detail, history and control are in
 * route_app_device.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/crypto.h"
#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"

#define MAX_BATCH 100
#define MAX_USERNAME 64
#define MAX_PASSWORD 128

void gs_app_store_error(struct gs_request *rq, int rc)
{
    giz_log(GIZ_LOG_ERR, "%s: store: %s", gs_route_name(rq->route), giz_strerror(rc));
    gs_respond_app_error(rq, 500, GS_E_SERVER_ERROR, "server error");
}
#define store_error gs_app_store_error

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

/* A short printable text field of the body: true with *out (NULL when
 * absent), or false after answering 400 9015. */
static bool opt_text(struct gs_request *rq, const cJSON *body, const char *key, size_t max,
                     const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v)) return true;
    if (!cJSON_IsString(v) || strlen(v->valuestring) > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a string of at most %zu bytes", key, max);
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, msg);
        return false;
    }
    for (const char *c = v->valuestring; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            char msg[96];
            snprintf(msg, sizeof msg, "%s has a control character", key);
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, msg);
            return false;
        }
    *out = v->valuestring;
    return true;
}

static bool appid_ok(const char *a);

/* The optional X-Gizwits-Application-Id: true with *appid (NULL if none),
 * or false after answering 400 9003. */
static bool app_appid(struct gs_request *rq, const char **appid)
{
    const char *a = gs_header(rq, "X-Gizwits-Application-Id");
    *appid = NULL;
    if (a == NULL || a[0] == '\0') return true;
    if (!appid_ok(a)) {
        gs_respond_app_error(rq, 400, GS_E_APPID_INVALID, "appid invalid");
        return false;
    }
    *appid = a;
    return true;
}

static void session_answer(struct gs_request *rq, unsigned status, struct giz_session *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "uid", s->uid);
    cJSON_AddStringToObject(j, "token", s->token);
    cJSON_AddNumberToObject(j, "expire_at", (double)s->expire_at);
    cJSON_AddStringToObject(j, "mqtt_client_id", s->mqtt_client_id);
    gs_respond_json(rq, status, j);
    explicit_bzero(s->token, sizeof s->token);
}

/* POST /app/users {phone_id}: the anonymous user of that id, made on first
 * use; each call answers a new token (anonymous users log in this way). */
static void create_anonymous(struct gs_request *rq, struct giz_store *st, const char *phone_id,
                             const char *appid)
{
    struct giz_session s;
    bool created = false;
    size_t n = strlen(phone_id);
    bool ok = n > 0 && n <= GIZ_PHONE_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)phone_id[i] <= 0x20 || (unsigned char)phone_id[i] >= 0x7f) ok = false;
    if (!ok) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "phone_id must be 1-64 printable ASCII bytes without spaces");
        return;
    }
    int rc = giz_store_user_anonymous(st, phone_id, appid, rq->srv->cfg.token_ttl, gs_unix_now(),
                                      &s, &created);
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return;
    }
    giz_log(GIZ_LOG_INFO, "anonymous user %s %s", s.uid, created ? "created" : "logged in");
    session_answer(rq, created ? 201 : 200, &s);
}

static void create_user(struct gs_request *rq)
{
    cJSON *body = gs_body_json(rq);
    const char *user = NULL, *pass = NULL, *appid = NULL;
    struct giz_store *st = NULL;
    char uid[GIZ_UID_SIZE];
    int rc;
    if (body == NULL || !app_appid(rq, &appid)) goto out;
    const cJSON *phone_id = cJSON_GetObjectItemCaseSensitive(body, "phone_id");
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(body, "email");
    const cJSON *phone = cJSON_GetObjectItemCaseSensitive(body, "phone");
    bool has_user = cJSON_GetObjectItemCaseSensitive(body, "username") != NULL;
    if (phone != NULL && !has_user && email == NULL) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "phone registration needs an SMS code service, which gizcloud does "
                             "not have; register with username or email and password");
        goto out;
    }
    if (cJSON_IsString(phone_id) && !has_user && email == NULL) {
        st = gs_store_acquire(&rq->srv->pool);
        if (st == NULL)
            store_error(rq, GIZ_ERR_DB);
        else
            create_anonymous(rq, st, phone_id->valuestring, appid);
        goto out;
    }
    if (email != NULL && !has_user) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "password");
        if (!cJSON_IsString(email) || !cJSON_IsString(p) || p->valuestring[0] == '\0' ||
            strlen(p->valuestring) > MAX_PASSWORD) {
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                                 "email and password (1-128 bytes) are required");
            goto out;
        }
        st = gs_store_acquire(&rq->srv->pool);
        if (st == NULL) {
            store_error(rq, GIZ_ERR_DB);
            goto out;
        }
        rc = giz_store_user_create_email(st, email->valuestring, p->valuestring, uid);
        if (rc == GIZ_ERR_INVAL) {
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "email invalid");
            goto out;
        }
        if (rc == GIZ_ERR_EXISTS) {
            gs_respond_app_error(rq, 409, GS_E_EMAIL_UNAVAILABLE, "email unavailable");
            goto out;
        }
    } else {
        if (!credentials(rq, body, &user, &pass)) goto out;
        if (user[0] == '$') { /* the names of anonymous (phone_id) users */
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "username must not start with '$'");
            goto out;
        }
        st = gs_store_acquire(&rq->srv->pool);
        if (st == NULL) {
            store_error(rq, GIZ_ERR_DB);
            goto out;
        }
        rc = giz_store_user_create(st, user, pass, uid);
        if (rc == GIZ_ERR_EXISTS) {
            gs_respond_app_error(rq, 409, GS_E_USERNAME_UNAVAILABLE, "username unavailable");
            goto out;
        }
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    giz_log(GIZ_LOG_INFO, "user %s created", uid);
    /* SDKs use the token of the creation answer at once */
    struct giz_session s;
    rc = giz_store_session_create(st, uid, appid, rq->srv->cfg.token_ttl, gs_unix_now(), &s);
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    session_answer(rq, 201, &s);
out:
    gs_store_release(&rq->srv->pool, st);
    cJSON_Delete(body);
}

/* ISO 8601 UTC of now, as the Open API's updatedAt. */
static void iso_now(char *out, size_t cap)
{
    time_t t = (time_t)gs_unix_now();
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* GET /app/users: the token's user. */
static void show_user(struct gs_request *rq, struct giz_store *st, const struct giz_session *s)
{
    struct giz_user u;
    int rc = giz_store_user_get(st, s->uid, &u);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_app_error(rq, 401, GS_E_TOKEN_INVALID, "token invalid (no such user)");
        return;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "uid", u.uid);
    cJSON_AddStringToObject(j, "username", u.username);
    cJSON_AddStringToObject(j, "email", u.email);
    cJSON_AddStringToObject(j, "phone", "");
    cJSON_AddStringToObject(j, "name", "");
    cJSON_AddStringToObject(j, "gender", "N");
    cJSON_AddStringToObject(j, "birthday", "");
    cJSON_AddStringToObject(j, "address", "");
    cJSON_AddStringToObject(j, "lang", "en");
    cJSON_AddStringToObject(j, "remark", "");
    cJSON_AddBoolToObject(j, "is_anonymous", u.anonymous);
    gs_respond_json(rq, 200, j);
}

/* PUT /app/users: {old_pwd, new_pwd} changes the password; {username,
 * password} or {email, password} turns an anonymous user into a password
 * user. Profile fields (name, gender, ...) and phone numbers are not kept
 * by gizcloud: 400 saying so. */
static void update_user(struct gs_request *rq, struct giz_store *st, const struct giz_session *s)
{
    cJSON *body = gs_body_json(rq);
    char when[32];
    int rc;
    if (body == NULL) return;
    const cJSON *old_pwd = cJSON_GetObjectItemCaseSensitive(body, "old_pwd");
    const cJSON *new_pwd = cJSON_GetObjectItemCaseSensitive(body, "new_pwd");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(body, "username");
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(body, "email");
    const cJSON *pass = cJSON_GetObjectItemCaseSensitive(body, "password");
    static const char *const profile[] = {"name", "gender", "birthday", "address",
                                          "lang", "remark", "phone",    "code"};
    for (size_t i = 0; i < sizeof profile / sizeof profile[0]; i++) {
        if (cJSON_HasObjectItem(body, profile[i])) {
            char msg[128];
            snprintf(msg, sizeof msg, "gizcloud keeps no %s for users", profile[i]);
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, msg);
            goto out;
        }
    }
    if (old_pwd != NULL || new_pwd != NULL) {
        if (!cJSON_IsString(old_pwd) || !cJSON_IsString(new_pwd) ||
            new_pwd->valuestring[0] == '\0' || strlen(new_pwd->valuestring) > MAX_PASSWORD ||
            strlen(old_pwd->valuestring) > MAX_PASSWORD) {
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                                 "old_pwd and new_pwd (1-128 bytes) are required");
            goto out;
        }
        rc = giz_store_user_password_change(st, s->uid, old_pwd->valuestring, new_pwd->valuestring);
        if (rc == GIZ_ERR_AUTH) {
            gs_respond_app_error(rq, 401, GS_E_USERNAME_PASSWORD_ERROR, "old password wrong");
            goto out;
        }
    } else if ((user != NULL || email != NULL) && pass != NULL) {
        const char *u = NULL, *p = NULL;
        if (email != NULL) {
            if (!cJSON_IsString(email) || !cJSON_IsString(pass) || pass->valuestring[0] == '\0' ||
                strlen(pass->valuestring) > MAX_PASSWORD || strlen(email->valuestring) > 128 ||
                strchr(email->valuestring, '@') == NULL) {
                gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                                     "email and password (1-128 bytes) are required");
                goto out;
            }
            p = pass->valuestring;
        } else {
            if (!credentials(rq, body, &u, &p)) goto out;
            if (u[0] == '$') {
                gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                                     "username must not start with '$'");
                goto out;
            }
        }
        rc = giz_store_user_claim(st, s->uid, u, email ? email->valuestring : NULL, p);
        if (rc == GIZ_ERR_EXISTS) {
            gs_respond_app_error(rq, 409,
                                 email ? GS_E_EMAIL_UNAVAILABLE : GS_E_USERNAME_UNAVAILABLE,
                                 email ? "email unavailable" : "username unavailable");
            goto out;
        }
        if (rc == GIZ_ERR_DISABLED) {
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                                 "only an anonymous user can be given a username; change a "
                                 "password with old_pwd and new_pwd");
            goto out;
        }
        if (rc == GIZ_ERR_INVAL) {
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "username or email invalid");
            goto out;
        }
    } else {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "give old_pwd and new_pwd, or username (or email) and password");
        goto out;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    giz_log(GIZ_LOG_INFO, "user %s updated", s->uid);
    iso_now(when, sizeof when);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "updatedAt", when);
    gs_respond_json(rq, 200, j);
out:
    cJSON_Delete(body);
}

static bool app_session(struct gs_request *rq, struct giz_store *st, struct giz_session *s);

void gs_route_app_users(struct gs_request *rq)
{
    if (rq->method == GS_M_POST) {
        create_user(rq);
        return;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    struct giz_session s;
    if (st == NULL)
        store_error(rq, GIZ_ERR_DB);
    else if (app_session(rq, st, &s)) {
        if (rq->method == GS_M_PUT)
            update_user(rq, st, &s);
        else
            show_user(rq, st, &s);
    }
    gs_store_release(&rq->srv->pool, st);
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
    session_answer(rq, 200, &s);
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
            const cJSON *remark = cJSON_GetObjectItemCaseSensitive(d, "remark");
            const cJSON *alias = cJSON_GetObjectItemCaseSensitive(d, "dev_alias");
            if (bind && rc == GIZ_OK && (cJSON_IsString(remark) || cJSON_IsString(alias)))
                rc = giz_store_binding_update(st, s->uid, did->valuestring,
                                              cJSON_IsString(remark) ? remark->valuestring : NULL,
                                              cJSON_IsString(alias) ? alias->valuestring : NULL,
                                              NULL);
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

cJSON *gs_app_device_json(struct gs_request *rq, struct giz_store *st, const struct giz_device *d,
                          const struct giz_binding *b, bool broker_alive)
{
    const struct gs_config *cfg = &rq->srv->cfg;
    struct gs_m2m_route route;
    struct giz_device_info info;
    gs_m2m_route_for_did(rq->srv, st, d->did, false, &route);
    if (giz_store_device_info_get(st, d->did, &info) != GIZ_OK) memset(&info, 0, sizeof info);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "did", d->did);
    cJSON_AddStringToObject(o, "product_key", d->product_key);
    cJSON_AddStringToObject(o, "mac", d->mac);
    /* gizcloud keeps device passcodes only as hashes: never in an answer */
    cJSON_AddStringToObject(o, "passcode", "");
    cJSON_AddStringToObject(o, "host", route.host);
    cJSON_AddNumberToObject(o, "port", route.port);
    if (route.port_s != 0) cJSON_AddNumberToObject(o, "port_s", route.port_s);
    /* the WebSocket API /ws/app/v1 is served on the GService's own ports */
    cJSON_AddNumberToObject(o, "ws_port", cfg->http_port);
    cJSON_AddNumberToObject(o, "wss_port", cfg->https_port);
    cJSON_AddBoolToObject(o, "is_online", broker_alive && d->online);
    cJSON_AddBoolToObject(o, "is_disabled", d->status != GIZ_DEVICE_ACTIVE);
    cJSON_AddStringToObject(
        o, "type", strcmp(info.reg_type, "center_control") == 0 ? "center_control" : "normal");
    cJSON_AddStringToObject(o, "remark", b ? b->remark : "");
    cJSON_AddStringToObject(o, "dev_alias", b ? b->dev_alias : "");
    cJSON_AddArrayToObject(o, "dev_label");
    cJSON_AddStringToObject(o, "role", b && b->special ? "special" : "normal");
    cJSON_AddStringToObject(o, "proto_ver", "04");
    cJSON_AddBoolToObject(o, "is_sandbox", false);
    cJSON_AddStringToObject(o, "wifi_soft_version", d->wifi_soft_version);
    cJSON_AddStringToObject(o, "mcu_soft_version", d->mcu_soft_version);
    return o;
}

struct list_ctx {
    unsigned skip, limit, seen;
    int show_disabled; /* -1: not asked (all), 0 hide, 1 show */
    struct giz_store *st;
    struct giz_buf rows; /* n struct giz_binding */
    unsigned n;
    bool oom;
};

static int binding_cb(const struct giz_binding *b, void *ud)
{
    struct list_ctx *c = ud;
    if (c->seen++ < c->skip) return 0;
    if (c->limit != 0 && c->n >= c->limit) return 1;
    if (giz_buf_append(&c->rows, b, sizeof *b) != GIZ_OK) {
        c->oom = true;
        return 1;
    }
    c->n++;
    return 0;
}

static void list_bindings(struct gs_request *rq, struct giz_store *st, const struct giz_session *s)
{
    struct list_ctx c = {.limit = 100, .st = st};
    unsigned show_disabled = 2;
    /* limit 0 lists every binding: no cap beyond memory (as before) */
    giz_buf_init(&c.rows, SIZE_MAX);
    if (!gs_query_uint(rq, "limit", 100000, &c.limit) ||
        !gs_query_uint(rq, "skip", 100000, &c.skip) ||
        !gs_query_uint(rq, "show_disabled", 1, &show_disabled)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "limit/skip must be numbers, show_disabled 0 or 1");
        return;
    }
    int rc = giz_store_binding_list_by_user(st, s->uid, binding_cb, &c);
    if (rc != GIZ_OK || c.oom) {
        giz_buf_free(&c.rows);
        store_error(rq, rc != GIZ_OK ? rc : GIZ_ERR_NOMEM);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "devices");
    bool broker_alive = gs_broker_alive(rq->srv, st, NULL); /* stale flags are not presence */
    const struct giz_binding *rows = (const struct giz_binding *)(const void *)c.rows.data;
    for (unsigned i = 0; i < c.n; i++) {
        struct giz_device d;
        if (giz_store_device_get(st, rows[i].did, &d) != GIZ_OK) continue;
        if (show_disabled == 0 && d.status != GIZ_DEVICE_ACTIVE) continue;
        cJSON_AddItemToArray(arr, gs_app_device_json(rq, st, &d, &rows[i], broker_alive));
    }
    giz_buf_free(&c.rows);
    gs_respond_json(rq, 200, j);
}

bool gs_app_begin(struct gs_request *rq, struct giz_store **st, struct giz_session *s)
{
    *st = gs_store_acquire(&rq->srv->pool);
    if (*st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        return false;
    }
    return app_session(rq, *st, s);
}

bool gs_app_bound_device(struct gs_request *rq, struct giz_store *st, const struct giz_session *s,
                         const char *did, struct giz_device *d, struct giz_binding *b)
{
    struct giz_binding tmp;
    int rc = gs_valid_did(did) ? giz_store_binding_get(st, s->uid, did, b ? b : &tmp)
                               : GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_OK) rc = giz_store_device_get(st, did, d);
    if (rc == GIZ_OK) return true;
    if (rc == GIZ_ERR_NOT_FOUND)
        gs_respond_app_error(rq, 401, GS_E_DEVICE_NOT_BOUND,
                             "this device is not bound to the user (or does not exist)");
    else
        store_error(rq, rc);
    return false;
}

void gs_route_app_bindings(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_session s;
    if (gs_app_begin(rq, &st, &s)) {
        if (rq->method == GS_M_POST)
            bind_batch(rq, st, &s, true);
        else if (rq->method == GS_M_DELETE)
            bind_batch(rq, st, &s, false);
        else
            list_bindings(rq, st, &s);
    }
    gs_store_release(&rq->srv->pool, st);
}

/* PUT /app/bindings/<did> {remark?, dev_alias?, dev_label?}: this user's
 * texts for the device; answers them. */
void gs_route_app_binding(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_session s;
    cJSON *body = NULL;
    const char *remark = NULL, *alias = NULL;
    struct giz_device d;
    struct giz_binding b;
    if (!gs_app_begin(rq, &st, &s)) goto out;
    body = gs_body_json(rq);
    if (body == NULL) goto out;
    if (!opt_text(rq, body, "remark", GIZ_BIND_TEXT_SIZE - 1, &remark) ||
        !opt_text(rq, body, "dev_alias", GIZ_BIND_TEXT_SIZE - 1, &alias))
        goto out;
    if (remark == NULL && alias == NULL && !cJSON_HasObjectItem(body, "dev_label")) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "give at least one of remark, dev_alias, dev_label");
        goto out;
    }
    if (!gs_app_bound_device(rq, st, &s, rq->param[0], &d, &b)) goto out;
    int rc = giz_store_binding_update(st, s.uid, d.did, remark, alias, &b);
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "remark", b.remark);
    cJSON_AddStringToObject(j, "dev_alias", b.dev_alias);
    cJSON_AddArrayToObject(j, "dev_label");
    gs_respond_json(rq, 200, j);
out:
    cJSON_Delete(body);
    gs_store_release(&rq->srv->pool, st);
}

/* lower(md5(product_secret + timestamp)) compared with sig in constant time. */
static bool signature_ok(const char *product_secret, const char *timestamp, const char *sig)
{
    char want[33], got[33];
    size_t n = strlen(sig);
    if (n != 32) return false;
    for (size_t i = 0; i < n; i++)
        got[i] = (sig[i] >= 'A' && sig[i] <= 'F') ? (char)(sig[i] - 'A' + 'a') : sig[i];
    got[32] = '\0';
    struct giz_md5 *md = giz_md5_new();
    bool ok = md != NULL && giz_md5_update(md, product_secret, strlen(product_secret)) == GIZ_OK &&
              giz_md5_update(md, timestamp, strlen(timestamp)) == GIZ_OK;
    if (ok)
        ok = giz_md5_final(md, want) == GIZ_OK; /* frees md */
    else
        giz_md5_free(md);
    bool eq = ok && giz_consttime_eq(want, got, 32);
    explicit_bzero(want, sizeof want);
    return eq;
}

#define BIND_MAC_SKEW_S 300 /* X-Gizwits-Timestamp within 5 minutes of ours */

/* POST /app/bind_mac {product_key, mac, remark?, dev_alias?} with
 * X-Gizwits-Timestamp and X-Gizwits-Signature = lower(md5(product_secret +
 * timestamp)): binds the product's device with that MAC, no passcode. */
void gs_route_app_bind_mac(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_session s;
    cJSON *body = NULL;
    const char *remark = NULL, *alias = NULL;
    char pk[GIZ_PK_SIZE], mac[GIZ_MAC_SIZE];
    if (!gs_app_begin(rq, &st, &s)) goto out;
    body = gs_body_json(rq);
    if (body == NULL) goto out;
    const cJSON *jpk = cJSON_GetObjectItemCaseSensitive(body, "product_key");
    const cJSON *jmac = cJSON_GetObjectItemCaseSensitive(body, "mac");
    if (!cJSON_IsString(jpk) || strlen(jpk->valuestring) != GIZ_PK_SIZE - 1) {
        gs_respond_app_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        goto out;
    }
    memcpy(pk, jpk->valuestring, GIZ_PK_SIZE);
    if (!gs_valid_product_key(pk)) {
        gs_respond_app_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        goto out;
    }
    if (!cJSON_IsString(jmac) || !gs_valid_mac(jmac->valuestring)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "mac must be 12 hex digits");
        goto out;
    }
    memcpy(mac, jmac->valuestring, GIZ_MAC_SIZE);
    if (!opt_text(rq, body, "remark", GIZ_BIND_TEXT_SIZE - 1, &remark) ||
        !opt_text(rq, body, "dev_alias", GIZ_BIND_TEXT_SIZE - 1, &alias))
        goto out;
    const char *ts = gs_header(rq, "X-Gizwits-Timestamp");
    const char *sig = gs_header(rq, "X-Gizwits-Signature");
    uint64_t t = 0;
    int64_t now = gs_unix_now();
    if (ts == NULL || giz_parse_uint(ts, 10, 0, UINT32_MAX, &t) != GIZ_OK ||
        (int64_t)t < now - BIND_MAC_SKEW_S || (int64_t)t > now + BIND_MAC_SKEW_S) {
        gs_respond_app_error(rq, 400, GS_E_TIMESTAMP_INVALID,
                             "X-Gizwits-Timestamp must be unix seconds within 5 minutes of the "
                             "server's time");
        goto out;
    }
    struct giz_product prod;
    int rc = giz_store_product_get(st, pk, &prod);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_app_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        goto out;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    bool sig_ok = sig != NULL && signature_ok(prod.product_secret, ts, sig);
    explicit_bzero(prod.product_secret, sizeof prod.product_secret);
    if (!sig_ok) {
        gs_respond_app_error(rq, 400, GS_E_SIGNATURE_INVALID,
                             "X-Gizwits-Signature must be lower(md5(product_secret + "
                             "X-Gizwits-Timestamp))");
        goto out;
    }
    struct giz_device d;
    rc = giz_store_binding_add_mac(st, s.uid, pk, mac, remark, alias, &d);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_app_error(rq, 404, GS_E_DEVICE_NOT_FOUND,
                             "no active device of this product has that MAC");
        goto out;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    giz_log(GIZ_LOG_INFO, "user %s bound %s (by MAC)", s.uid, d.did);
    struct giz_binding b;
    if (giz_store_binding_get(st, s.uid, d.did, &b) != GIZ_OK) memset(&b, 0, sizeof b);
    gs_respond_json(rq, 201,
                    gs_app_device_json(rq, st, &d, &b, gs_broker_alive(rq->srv, st, NULL)));
out:
    cJSON_Delete(body);
    gs_store_release(&rq->srv->pool, st);
}
