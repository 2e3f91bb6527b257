/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Operator (admin) API, JSON with "Authorization: Bearer <GIZ_ADMIN_TOKEN>"
 * (checked in request.c before the body is read): products, devices, device
 * logs and OTA pushes. An OTA push is one row in the store's outbox, which
 * the broker plugin drains and turns into 0x0211 (v4.1) or 0x020E (v4.0)
 * messages to the online target devices.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "gservice.h"

static void store_error(struct gs_request *rq, int rc)
{
    giz_log(GIZ_LOG_ERR, "%s: store: %s", gs_route_name(rq->route), giz_strerror(rc));
    gs_respond_error(rq, 500, "server_error", giz_strerror(rc));
}

/* Reads an unsigned query parameter; `*out` keeps its default if absent.
 * Answers 400 and returns false if present but not a number <= max. */
static bool query_uint(struct gs_request *rq, const char *key, unsigned max, unsigned *out)
{
    if (gs_query_uint(rq, key, max, out)) return true;
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a number up to %u", key, max);
    gs_respond_error(rq, 400, "bad_request", msg);
    return false;
}

bool gs_admin_page(struct gs_request *rq, unsigned def_limit, unsigned max_limit, unsigned *limit,
                   unsigned *offset)
{
    *limit = def_limit;
    *offset = 0;
    if (!query_uint(rq, "limit", max_limit, limit) || !query_uint(rq, "offset", UINT32_MAX, offset))
        return false;
    if (*limit == 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "limit must be 1 to %u", max_limit);
        gs_respond_error(rq, 400, "bad_request", msg);
        return false;
    }
    return true;
}

void gs_admin_page_add(cJSON *j, int64_t total, unsigned limit, unsigned offset)
{
    cJSON_AddNumberToObject(j, "total", (double)total);
    cJSON_AddNumberToObject(j, "limit", limit);
    cJSON_AddNumberToObject(j, "offset", offset);
}

/* Prologue of the /admin/devices/<did> routes: a malformed DID is no such
 * device (404); then a store connection. NULL after answering. */
static struct giz_store *device_route_store(struct gs_request *rq)
{
    if (!gs_valid_did(rq->param[0])) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        return NULL;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) store_error(rq, GIZ_ERR_DB);
    return st;
}

/* ---- products ------------------------------------------------------------ */

static cJSON *product_json(const struct giz_product *p)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddStringToObject(o, "product_key", p->product_key);
    cJSON_AddStringToObject(o, "product_secret", p->product_secret);
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddNumberToObject(o, "created_at", (double)p->created_at);
    return o;
}

static int product_list_cb(const struct giz_product *p, void *ud)
{
    cJSON *o = product_json(p);
    if (o == NULL) return 1;
    cJSON_AddItemToArray(ud, o);
    return 0;
}

void gs_route_admin_products(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    cJSON *body = NULL;
    if (rq->method == GS_M_POST) {
        body = gs_body_json(rq);
        if (body == NULL) return;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
        if (!cJSON_IsString(name) || name->valuestring[0] == '\0' ||
            strlen(name->valuestring) >= GIZ_NAME_SIZE) {
            gs_respond_error(rq, 400, "bad_request", "name must be a string of 1-128 bytes");
            goto out;
        }
        st = gs_store_acquire(&rq->srv->pool);
        if (st == NULL) {
            store_error(rq, GIZ_ERR_DB);
            goto out;
        }
        /* Optional: the key (and secret) existing firmware already holds. */
        const cJSON *pk = cJSON_GetObjectItemCaseSensitive(body, "product_key");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(body, "product_secret");
        if ((pk && !cJSON_IsString(pk)) || (ps && !cJSON_IsString(ps)) || (ps && !pk)) {
            gs_respond_error(
                rq, 400, "bad_request",
                "product_key and product_secret must be strings; a secret needs a key");
            goto out;
        }
        struct giz_product p;
        int rc = giz_store_product_import(st, name->valuestring, pk ? pk->valuestring : NULL,
                                          ps ? ps->valuestring : NULL, &p);
        if (rc == GIZ_ERR_INVAL) {
            gs_respond_error(rq, 400, "bad_request",
                             "product_key and product_secret must be 32 hex digits");
            goto out;
        } else if (rc == GIZ_ERR_EXISTS) {
            gs_respond_error(rq, 409, "exists", "a product with this product_key exists");
            goto out;
        } else if (rc != GIZ_OK) {
            store_error(rq, rc);
            goto out;
        }
        giz_log(GIZ_LOG_INFO, "product %s created", p.product_key);
        gs_respond_json(rq, 201, product_json(&p));
        goto out;
    }
    unsigned limit, offset;
    if (!gs_admin_page(rq, 1000, 10000, &limit, &offset)) goto out;
    st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        goto out;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "products");
    int64_t total = 0;
    int rc = arr ? giz_store_product_page(st, limit, offset, product_list_cb, arr) : GIZ_ERR_NOMEM;
    if (rc == GIZ_OK) rc = giz_store_product_count(st, &total);
    if (rc != GIZ_OK) {
        cJSON_Delete(j);
        store_error(rq, rc);
        goto out;
    }
    gs_admin_page_add(j, total, limit, offset);
    gs_respond_json(rq, 200, j);
out:
    gs_store_release(&rq->srv->pool, st);
    cJSON_Delete(body);
}

/* ---- devices ------------------------------------------------------------- */

/* Presence is the broker's word: while its heartbeat is stale (killed,
 * stopped, never started) the stored flags are not trusted, devices are
 * reported offline with presence "unknown". */
static cJSON *device_json(const struct giz_device *d, bool broker_alive)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    cJSON_AddStringToObject(o, "did", d->did);
    cJSON_AddStringToObject(o, "product_key", d->product_key);
    cJSON_AddStringToObject(o, "mac", d->mac);
    cJSON_AddStringToObject(o, "status", d->status == GIZ_DEVICE_ACTIVE ? "active" : "disabled");
    cJSON_AddBoolToObject(o, "online", broker_alive && d->online);
    cJSON_AddStringToObject(o, "presence",
                            !broker_alive ? "unknown" : (d->online ? "online" : "offline"));
    cJSON_AddNumberToObject(o, "last_seen", (double)d->last_seen);
    cJSON_AddNumberToObject(o, "created_at", (double)d->created_at);
    cJSON_AddStringToObject(o, "wifi_soft_version", d->wifi_soft_version);
    cJSON_AddStringToObject(o, "wifi_hard_version", d->wifi_hard_version);
    cJSON_AddStringToObject(o, "mcu_soft_version", d->mcu_soft_version);
    cJSON_AddStringToObject(o, "mcu_hard_version", d->mcu_hard_version);
    return o;
}

struct device_list_ctx {
    cJSON *arr;
    bool broker_alive;
};

static int device_list_cb(const struct giz_device *d, void *ud)
{
    struct device_list_ctx *c = ud;
    cJSON *o = device_json(d, c->broker_alive);
    if (o == NULL) return 1;
    cJSON_AddItemToArray(c->arr, o);
    return 0;
}

/* "broker": {"alive", "heartbeat_age_ms" (null if it never beat)} */
static void add_broker(cJSON *j, bool alive, int64_t age_ms)
{
    cJSON *b = cJSON_AddObjectToObject(j, "broker");
    if (b == NULL) return;
    cJSON_AddBoolToObject(b, "alive", alive);
    if (age_ms >= 0)
        cJSON_AddNumberToObject(b, "heartbeat_age_ms", (double)age_ms);
    else
        cJSON_AddNullToObject(b, "heartbeat_age_ms");
}

/* GET /admin/brokers: the registry, by name. */
struct brokers_walk {
    cJSON *arr;
    int64_t now_ms;
    unsigned alive;
};

static void add_ms_or_null(cJSON *o, const char *key, int64_t v)
{
    if (v > 0)
        cJSON_AddNumberToObject(o, key, (double)v);
    else
        cJSON_AddNullToObject(o, key);
}

static int broker_row_cb(const struct giz_broker *b, void *ud)
{
    struct brokers_walk *w = ud;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return 1;
    cJSON_AddStringToObject(o, "name", b->name);
    cJSON_AddStringToObject(o, "host", b->host);
    cJSON_AddNumberToObject(o, "port", b->port);
    cJSON_AddNumberToObject(o, "tls_port", b->tls_port);
    cJSON_AddNumberToObject(o, "pid", (double)b->pid);
    cJSON_AddNumberToObject(o, "started_at", (double)b->started_at_ms);
    cJSON_AddNumberToObject(o, "heartbeat_at", (double)b->heartbeat_at_ms);
    cJSON_AddNumberToObject(
        o, "heartbeat_age_ms",
        (double)(w->now_ms > b->heartbeat_at_ms ? w->now_ms - b->heartbeat_at_ms : 0));
    add_ms_or_null(o, "stopped_at", b->stopped ? b->stopped_at_ms : 0);
    add_ms_or_null(o, "swept_at", b->swept_at_ms);
    cJSON_AddBoolToObject(o, "alive", b->alive);
    cJSON_AddNumberToObject(o, "devices", b->alive ? (double)b->devices : 0);
    cJSON_AddItemToArray(w->arr, o);
    if (b->alive) w->alive++;
    return 0;
}

void gs_route_admin_brokers(struct gs_request *rq)
{
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    struct timespec ts;
    if (st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    cJSON *j = cJSON_CreateObject();
    struct brokers_walk w = {cJSON_AddArrayToObject(j, "brokers"),
                             (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, 0};
    int rc = w.arr ? giz_store_broker_list(st, gs_broker_max_age_ms(rq->srv), broker_row_cb, &w)
                   : GIZ_ERR_NOMEM;
    gs_store_release(&rq->srv->pool, st);
    if (rc != GIZ_OK) {
        cJSON_Delete(j);
        store_error(rq, rc);
        return;
    }
    cJSON_AddNumberToObject(j, "alive", w.alive);
    cJSON_AddNumberToObject(j, "max_age_ms", (double)gs_broker_max_age_ms(rq->srv));
    gs_respond_json(rq, 200, j);
}

void gs_route_admin_devices(struct gs_request *rq)
{
    char pk[GIZ_PK_SIZE], online_s[8];
    unsigned limit, offset;
    if (!gs_query_product_key(rq, pk)) return;
    bool online_only = gs_query_get(rq, "online", online_s, sizeof online_s) == GIZ_OK &&
                       (strcmp(online_s, "1") == 0 || strcmp(online_s, "true") == 0);
    if (!gs_admin_page(rq, 1000, 10000, &limit, &offset)) return;
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        return;
    }
    cJSON *j = cJSON_CreateObject();
    int64_t age_ms = -1;
    struct device_list_ctx c = {cJSON_AddArrayToObject(j, "devices"),
                                gs_broker_alive(rq->srv, st, &age_ms)};
    int64_t total = 0;
    int rc;
    if (online_only && !c.broker_alive) {
        rc = c.arr ? GIZ_OK : GIZ_ERR_NOMEM; /* nothing is known to be online */
    } else {
        rc = c.arr ? giz_store_device_list(st, pk[0] ? pk : NULL, online_only, limit, offset,
                                           device_list_cb, &c)
                   : GIZ_ERR_NOMEM;
        if (rc == GIZ_OK) rc = giz_store_device_count(st, pk[0] ? pk : NULL, online_only, &total);
    }
    gs_store_release(&rq->srv->pool, st);
    add_broker(j, c.broker_alive, age_ms);
    if (rc != GIZ_OK) {
        cJSON_Delete(j);
        store_error(rq, rc);
        return;
    }
    gs_admin_page_add(j, total, limit, offset);
    gs_respond_json(rq, 200, j);
}

/* "disabled_by": "admin" (the operator), "device" (unregistered) or null,
 * "disabled_at": unix s or null. */
static void add_disabled(cJSON *j, const struct giz_device *d, bool by_admin, int64_t at)
{
    if (d->status == GIZ_DEVICE_ACTIVE) {
        cJSON_AddNullToObject(j, "disabled_by");
        cJSON_AddNullToObject(j, "disabled_at");
    } else {
        cJSON_AddStringToObject(j, "disabled_by", by_admin ? "admin" : "device");
        cJSON_AddNumberToObject(j, "disabled_at", (double)at);
    }
}

static void device_delete(struct gs_request *rq);

/* The broker's record of the device's current (or last) MQTT connection
 * (device_conn, schema 008): peer, keepalive granted (and asked), protocol
 * level, clean session; nulls if it never connected. */
static void add_conn(cJSON *j, const struct giz_device_conn *c)
{
    if (c == NULL) {
        cJSON_AddNullToObject(j, "peer");
        cJSON_AddNullToObject(j, "keepalive");
        cJSON_AddNullToObject(j, "protocol_level");
        return;
    }
    cJSON_AddStringToObject(j, "peer", c->peer);
    cJSON_AddNumberToObject(j, "keepalive", c->keepalive);
    if (c->keepalive_asked >= 0) cJSON_AddNumberToObject(j, "keepalive_asked", c->keepalive_asked);
    cJSON_AddNumberToObject(j, "protocol_level", c->protocol_level);
    cJSON_AddBoolToObject(j, "clean_session", c->clean_session);
    cJSON_AddNumberToObject(j, "connected_at_ms", (double)c->connected_at_ms);
}

void gs_route_admin_device(struct gs_request *rq)
{
    if (rq->method == GS_M_DELETE) {
        device_delete(rq);
        return;
    }
    struct giz_store *st = device_route_store(rq);
    if (st == NULL) return;
    struct giz_device d;
    struct giz_device_info info;
    int64_t age_ms = -1, disabled_at = 0;
    bool alive = gs_broker_alive(rq->srv, st, &age_ms), by_admin = false;
    int rc = giz_store_device_get(st, rq->param[0], &d);
    if (rc == GIZ_OK) rc = giz_store_device_info_get(st, rq->param[0], &info);
    if (rc == GIZ_OK) rc = giz_store_device_admin_state(st, rq->param[0], &by_admin, &disabled_at);
    struct giz_device_conn conn;
    bool have_conn = rc == GIZ_OK && giz_store_device_conn_get(st, rq->param[0], &conn) == GIZ_OK;
    char broker[GIZ_BROKER_NAME_SIZE] = "";
    struct giz_broker own;
    bool own_known =
        rc == GIZ_OK && giz_store_device_broker(st, rq->param[0], broker, NULL) == GIZ_OK &&
        broker[0] != '\0' &&
        giz_store_broker_find(st, broker, gs_broker_max_age_ms(rq->srv), &own) == GIZ_OK;
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such device");
    } else if (rc != GIZ_OK) {
        store_error(rq, rc);
    } else {
        cJSON *j = device_json(&d, alive);
        if (j != NULL) {
            add_broker(j, alive, age_ms);
            /* its own broker (schema 012): the one provision gave it, then the one holding it */
            cJSON *bo = cJSON_GetObjectItemCaseSensitive(j, "broker");
            if (bo != NULL && broker[0] != '\0') {
                cJSON_AddStringToObject(bo, "name", broker);
                cJSON_AddBoolToObject(bo, "name_alive", own_known && own.alive);
            } else if (bo != NULL) {
                cJSON_AddNullToObject(bo, "name");
            }
            add_disabled(j, &d, by_admin, disabled_at);
            /* the broker stamps last_seen when presence changes: while
             * online that is when the current connection began; its
             * peer, keepalive and protocol level are in device_conn. */
            if (alive && d.online)
                cJSON_AddNumberToObject(j, "connected_since", (double)d.last_seen);
            else
                cJSON_AddNullToObject(j, "connected_since");
            add_conn(j, have_conn ? &conn : NULL);
        }
        cJSON *o = j ? cJSON_AddObjectToObject(j, "details") : NULL;
        if (o != NULL) {
            cJSON_AddStringToObject(o, "type", info.reg_type);
            cJSON_AddStringToObject(o, "extra", info.extra);
            cJSON_AddStringToObject(o, "sdk_hard_version", info.sdk_hard_version);
            cJSON_AddStringToObject(o, "sdk_soft_version", info.sdk_soft_version);
            cJSON_AddStringToObject(o, "is_reset", info.is_reset);
            cJSON_AddStringToObject(o, "random_code", info.random_code);
            cJSON_AddStringToObject(o, "lan_proto_ver", info.lan_proto_ver);
            cJSON_AddBoolToObject(o, "auth_key_set", info.auth_key_set);
            cJSON_AddNumberToObject(o, "updated_at", (double)info.updated_at);
        }
        gs_respond_json(rq, 200, j);
    }
}

static int log_list_cb(const struct giz_device_log *l, void *ud)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return 1;
    cJSON_AddNumberToObject(o, "id", (double)l->id);
    cJSON_AddNumberToObject(o, "level", l->level);
    cJSON_AddStringToObject(o, "tags", l->tags ? l->tags : "");
    cJSON_AddStringToObject(o, "source", l->source ? l->source : "");
    cJSON_AddStringToObject(o, "content", l->content ? l->content : "");
    cJSON_AddNumberToObject(o, "ts", (double)l->ts);
    cJSON_AddItemToArray(ud, o);
    return 0;
}

void gs_route_admin_device_logs(struct gs_request *rq)
{
    unsigned limit, offset, before = 0;
    if (!gs_valid_did(rq->param[0])) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        return;
    }
    if (!gs_admin_page(rq, 100, 1000, &limit, &offset) ||
        !query_uint(rq, "before", UINT32_MAX, &before))
        return;
    struct giz_store *st = device_route_store(rq);
    if (st == NULL) return;
    struct giz_device d;
    cJSON *j = NULL;
    int rc = giz_store_device_get(st, rq->param[0], &d);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        goto out;
    }
    j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "logs");
    int64_t total = 0;
    if (rc == GIZ_OK)
        rc = arr ? giz_store_log_page(st, rq->param[0], limit, offset, (int64_t)before, log_list_cb,
                                      arr)
                 : GIZ_ERR_NOMEM;
    if (rc == GIZ_OK) rc = giz_store_log_count(st, rq->param[0], (int64_t)before, &total);
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    cJSON_AddStringToObject(j, "did", rq->param[0]);
    gs_admin_page_add(j, total, limit, offset);
    gs_respond_json(rq, 200, j);
    j = NULL;
out:
    cJSON_Delete(j);
    gs_store_release(&rq->srv->pool, st);
}

/* ---- operator control: disable, enable, kick, delete ----------------------- */

/* The broker acts on these through the outbox (GIZ_OUTBOX_DEVICE_DISABLED:
 * drop the DID's cached credentials, kick its session). Disable and enable
 * change the store, which every later login and provision consults, so they
 * answer 200 whether the broker is up or not ("broker" says which); a kick
 * does nothing but that, so it answers 503 while the broker is down. */
void gs_route_admin_device_control(struct gs_request *rq)
{
    struct giz_store *st = device_route_store(rq);
    if (st == NULL) return;
    struct giz_device d;
    int64_t age_ms = -1, disabled_at = 0;
    bool changed = false, by_admin = false;
    bool alive = gs_broker_alive(rq->srv, st, &age_ms);
    const char *what = "kicked";
    int rc;
    if (rq->route == GS_ROUTE_ADMIN_DEVICE_KICK && !alive) {
        gs_store_release(&rq->srv->pool, st);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", "broker_unavailable");
        cJSON_AddStringToObject(e, "message",
                                "no broker is running on this database: nothing to kick");
        gs_respond_json(rq, 503, e);
        return;
    }
    if (rq->route == GS_ROUTE_ADMIN_DEVICE_DISABLE) {
        what = "disabled";
        rc = giz_store_device_admin_disable(st, rq->param[0], &changed);
    } else if (rq->route == GS_ROUTE_ADMIN_DEVICE_ENABLE) {
        what = "enabled";
        rc = giz_store_device_admin_enable(st, rq->param[0], &changed);
    } else {
        rc = giz_store_device_get(st, rq->param[0], &d);
        changed = rc == GIZ_OK && d.online && alive;
        if (rc == GIZ_OK) rc = giz_store_device_kick(st, rq->param[0]);
    }
    if (rc == GIZ_OK) rc = giz_store_device_get(st, rq->param[0], &d);
    if (rc == GIZ_OK) rc = giz_store_device_admin_state(st, rq->param[0], &by_admin, &disabled_at);
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        return;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return;
    }
    giz_log(GIZ_LOG_INFO, "device %s %s by the operator%s", d.did, what,
            changed ? "" : " (no change)");
    cJSON *j = device_json(&d, alive);
    if (j != NULL) {
        add_broker(j, alive, age_ms);
        add_disabled(j, &d, by_admin, disabled_at);
        /* disable/enable: the status changed; kick: a live session was
         * there to be closed (as far as the broker's presence knew) */
        cJSON_AddBoolToObject(j, "changed", changed);
        cJSON_AddBoolToObject(j, "kick_queued",
                              rq->route == GS_ROUTE_ADMIN_DEVICE_KICK ||
                                  (rq->route == GS_ROUTE_ADMIN_DEVICE_DISABLE && changed));
    }
    gs_respond_json(rq, rq->route == GS_ROUTE_ADMIN_DEVICE_KICK ? 202 : 200, j);
}

static void device_delete(struct gs_request *rq)
{
    struct giz_store *st = device_route_store(rq);
    if (st == NULL) return;
    unsigned unbound = 0;
    int rc = giz_store_device_delete(st, rq->param[0], &unbound);
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        return;
    }
    if (rc == GIZ_ERR_EXISTS) {
        gs_respond_error(rq, 409, "in_use", "another table still references this device");
        return;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return;
    }
    giz_log(GIZ_LOG_INFO, "device %s deleted by the operator (%u binding(s) removed)", rq->param[0],
            unbound);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "did", rq->param[0]);
    cJSON_AddBoolToObject(j, "deleted", true);
    cJSON_AddNumberToObject(j, "bindings_removed", unbound);
    gs_respond_json(rq, 200, j);
}

/* ---- OTA push -------------------------------------------------------------- */

/* One OTA push being built: the request's choices, then the outbox rows. */
struct ota_push {
    struct giz_outbox_item it; /* kind, did or product_key, fw_type (0 = all), ota_version */
    const cJSON *did, *pk;     /* exactly one is set */
    char product_key[GIZ_PK_SIZE];
    int64_t targets;                 /* online devices among the targets */
    struct giz_outbox_item items[2]; /* one row per firmware type */
    unsigned n_items;
    struct giz_firmware matched[2]; /* latest firmware per pushed type, if any */
    unsigned n_matched;
    int64_t id; /* id of the last outbox row */
};

/* Reads {"did"} or {"product_key", "type"} [+ "type", "ota_version"]. */
static bool push_parse(struct gs_request *rq, const cJSON *body, struct ota_push *p)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(body, "type");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(body, "ota_version");
    p->it.kind = GIZ_OUTBOX_OTA_PUSH;
    p->did = cJSON_GetObjectItemCaseSensitive(body, "did");
    p->pk = cJSON_GetObjectItemCaseSensitive(body, "product_key");
    if ((p->did == NULL) == (p->pk == NULL)) {
        gs_respond_error(rq, 400, "bad_request", "give either \"did\" or \"product_key\"");
        return false;
    }
    if (type != NULL &&
        !(cJSON_IsNumber(type) && (type->valuedouble == 1 || type->valuedouble == 2))) {
        gs_respond_error(rq, 400, "bad_request", "type must be 1 (WiFi) or 2 (MCU)");
        return false;
    }
    p->it.fw_type = type ? (int)type->valuedouble : 0;
    if (ver != NULL &&
        !(cJSON_IsNumber(ver) && (ver->valuedouble == 40 || ver->valuedouble == 41))) {
        gs_respond_error(rq, 400, "bad_request", "ota_version must be 40 or 41");
        return false;
    }
    p->it.ota_version = ver ? (int)ver->valuedouble : 41;
    if (p->pk != NULL && p->it.fw_type == 0) {
        gs_respond_error(rq, 400, "bad_request", "a product-wide push needs \"type\" (1 or 2)");
        return false;
    }
    return true;
}

/* A dead broker drains no outbox and its online flags are stale: answers 503
 * rather than count targets that will never get the push. */
static bool push_broker_ok(struct gs_request *rq, struct giz_store *st)
{
    int64_t age_ms = -1;
    if (gs_broker_alive(rq->srv, st, &age_ms)) return true;
    char msg[160];
    if (age_ms >= 0)
        snprintf(msg, sizeof msg,
                 "the broker has not reported for %" PRId64 " s: the push cannot be delivered",
                 age_ms / 1000);
    else
        snprintf(msg, sizeof msg,
                 "no broker is running on this database: the push cannot be delivered");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "error", "broker_unavailable");
    cJSON_AddStringToObject(e, "message", msg);
    gs_respond_json(rq, 503, e);
    return false;
}

/* The device push's target: its product and whether it is online. */
static bool push_target_device(struct gs_request *rq, struct giz_store *st, struct ota_push *p)
{
    struct giz_device d;
    if (!cJSON_IsString(p->did) || !gs_valid_did(p->did->valuestring)) {
        gs_respond_error(rq, 400, "bad_request", "did must be 22 base62 characters");
        return false;
    }
    int rc = giz_store_device_get(st, p->did->valuestring, &d);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        return false;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return false;
    }
    memcpy(p->it.did, d.did, sizeof p->it.did);
    memcpy(p->product_key, d.product_key, sizeof p->product_key);
    p->targets = (d.online && d.status == GIZ_DEVICE_ACTIVE) ? 1 : 0;
    return true;
}

/* The product push's target: the product and its online devices. */
static bool push_target_product(struct gs_request *rq, struct giz_store *st, struct ota_push *p)
{
    struct giz_product prod;
    if (!cJSON_IsString(p->pk) || strlen(p->pk->valuestring) >= GIZ_PK_SIZE) {
        gs_respond_error(rq, 400, "bad_request", "product_key must be 32 hex digits");
        return false;
    }
    memcpy(p->product_key, p->pk->valuestring, strlen(p->pk->valuestring) + 1);
    if (!gs_valid_product_key(p->product_key)) {
        gs_respond_error(rq, 400, "bad_request", "product_key must be 32 hex digits");
        return false;
    }
    int rc = giz_store_product_get(st, p->product_key, &prod);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such product");
        return false;
    }
    if (rc == GIZ_OK) rc = giz_store_device_count(st, p->product_key, true, &p->targets);
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return false;
    }
    memcpy(p->it.product_key, p->product_key, sizeof p->it.product_key);
    return true;
}

/* Without "type" a device push goes out for every firmware type the product
 * has (WiFi and/or MCU; WiFi if it has none yet), one outbox row each:
 * firmware re-checks OTA for the type it is told. v4.0 needs a firmware
 * (409 without one). */
static bool push_items(struct gs_request *rq, struct giz_store *st, struct ota_push *p)
{
    struct giz_firmware fw;
    for (int t = 1; t <= 2; t++) {
        if (p->it.fw_type != 0 && p->it.fw_type != t) continue;
        int rc = giz_store_firmware_latest(st, p->product_key, t, NULL, &fw);
        if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND) {
            store_error(rq, rc);
            return false;
        }
        if (rc == GIZ_OK) p->matched[p->n_matched++] = fw;
        if (rc == GIZ_ERR_NOT_FOUND && (p->it.ota_version == 40 || p->it.fw_type == 0)) continue;
        struct giz_outbox_item *item = &p->items[p->n_items++];
        *item = p->it;
        item->fw_type = t;
        if (p->it.ota_version == 40) {
            item->fid = fw.id;
            gs_firmware_url(rq->srv, &fw, false, item->url, sizeof item->url);
        }
    }
    if (p->n_items == 0 && p->it.ota_version == 40) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "error", "no_firmware");
        cJSON_AddStringToObject(e, "message",
                                "OTA v4.0 pushes need a firmware for this product and type");
        cJSON_AddBoolToObject(e, "firmware_matched", false);
        gs_respond_json(rq, 409, e);
        return false;
    }
    if (p->n_items == 0) { /* v4.1, no firmware of any type yet: a WiFi re-check is harmless */
        p->items[0] = p->it;
        p->items[0].fw_type = 1;
        p->n_items = 1;
    }
    return true;
}

/* Queues all rows in one transaction. */
static bool push_queue(struct gs_request *rq, struct giz_store *st, struct ota_push *p)
{
    int rc = giz_store_begin(st);
    if (rc == GIZ_OK) {
        for (unsigned i = 0; rc == GIZ_OK && i < p->n_items; i++)
            rc = giz_store_outbox_push(st, &p->items[i], &p->id);
        if (rc == GIZ_OK)
            rc = giz_store_commit(st);
        else
            giz_store_rollback(st);
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return false;
    }
    return true;
}

/* 202 with what was queued; logs one line. */
static void push_answer(struct gs_request *rq, struct ota_push *p)
{
    int fw_type = p->n_items == 2 ? 0 : p->items[0].fw_type;
    atomic_fetch_add_explicit(&rq->srv->metrics.ota_pushes, 1, memory_order_relaxed);
    giz_log(GIZ_LOG_INFO, "ota push %" PRId64 ": %s%s type %s v%d, %" PRId64 " online target(s)",
            p->id, p->it.did[0] ? "device " : "product ",
            p->it.did[0] ? p->it.did : p->it.product_key,
            fw_type == 0 ? "1+2" : (fw_type == 1 ? "1" : "2"), p->it.ota_version, p->targets);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "targets", (double)p->targets);
    cJSON_AddNumberToObject(j, "push_id", (double)p->id);
    cJSON_AddNumberToObject(j, "ota_version", p->it.ota_version);
    cJSON *types = cJSON_AddArrayToObject(j, "types");
    for (unsigned i = 0; i < p->n_items; i++)
        cJSON_AddItemToArray(types, cJSON_CreateNumber(p->items[i].fw_type));
    /* A v4.1 push with no firmware still goes out (the re-check is harmless
     * and finds firmware registered later), but devices will answer 9500:
     * say so instead of looking like a push that will update something. */
    cJSON_AddBoolToObject(j, "firmware_matched", p->n_matched > 0);
    cJSON *fws = cJSON_AddArrayToObject(j, "firmware");
    for (unsigned i = 0; i < p->n_matched; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "type", p->matched[i].type);
        cJSON_AddNumberToObject(f, "id", (double)p->matched[i].id);
        cJSON_AddStringToObject(f, "soft_version", p->matched[i].soft_version);
        cJSON_AddItemToArray(fws, f);
    }
    if (p->n_matched == 0)
        cJSON_AddStringToObject(j, "message",
                                "no firmware matches this product and type: devices will "
                                "re-check and answer 9500 (no update)");
    gs_respond_json(rq, 202, j);
}

void gs_route_admin_ota_push(struct gs_request *rq)
{
    struct ota_push p;
    struct giz_store *st = NULL;
    cJSON *body = gs_body_json(rq);
    if (body == NULL) return;
    memset(&p, 0, sizeof p);
    if (!push_parse(rq, body, &p)) goto out;
    st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        store_error(rq, GIZ_ERR_DB);
        goto out;
    }
    if (!push_broker_ok(rq, st)) goto out;
    if (!(p.did != NULL ? push_target_device(rq, st, &p) : push_target_product(rq, st, &p)))
        goto out;
    if (push_items(rq, st, &p) && push_queue(rq, st, &p)) push_answer(rq, &p);
out:
    gs_store_release(&rq->srv->pool, st);
    cJSON_Delete(body);
}
