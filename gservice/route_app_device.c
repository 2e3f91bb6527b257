/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * App Open API on one bound device: its detail (GET /app/devices/<did>),
 * its history from the device timeline (GET /app/devices/<did>/raw_data,
 * type=cmd: the app2dev / dev2app business messages, type=online: its
 * connects and disconnects) and remote control (POST /app/control/<did>
 * with "raw" bytes, sent as a 0x0090 business message, or "attrs", encoded
 * as a p0 write with the product's data points). Control goes to the broker
 * plugin through the store's outbox (GIZ_OUTBOX_APP_PUBLISH): the plugin
 * publishes the framed 0x0090 on app2dev/<did>/<the user's MQTT client id>,
 * so the device's reply reaches the user's MQTT and WebSocket clients.
 * Every call is refused (401 9017) for a device the user has not bound.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "giz/log.h"
#include "giz/p0.h"
#include "giz/proto.h"
#include "giz/util.h"
#include "gservice.h"

/* Framed 0x0090 header: 00000003, Len (1-2 varint bytes here), flags, cmd. */
#define BIZ_HEADER_MAX 9u
#define RAW_MAX (GIZ_OUTBOX_PAYLOAD_MAX - BIZ_HEADER_MAX)
#define RAW_DATA_SCAN 500u       /* events read from the store per page */
#define RAW_DATA_MAX_LIMIT 1000  /* documented: limit <= 1000 */
#define RAW_DATA_MAX_WINDOW 5000 /* documented: skip + limit <= 5000 */

void gs_route_app_device(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_session s;
    struct giz_device d;
    struct giz_binding b;
    if (gs_app_begin(rq, &st, &s) && gs_app_bound_device(rq, st, &s, rq->param[0], &d, &b))
        gs_respond_json(rq, 200,
                        gs_app_device_json(rq, st, &d, &b, gs_broker_alive(rq->srv, st, NULL)));
    gs_store_release(&rq->srv->pool, st);
}

/* ---- raw_data: the timeline as the Open API's history ---------------------- */

enum raw_type { RAW_CMD, RAW_ONLINE };

struct raw_ctx {
    enum raw_type type;
    int64_t start_ms, end_ms;
    int64_t after_id; /* paging cursor through the device's events */
    unsigned seen;    /* events read this page */
    bool online;      /* the previous connect had no disconnect yet */
    cJSON *all;       /* matching objects, oldest first (at most RAW_DATA_MAX_WINDOW) */
    unsigned total;
    bool oom;
};

static const char *field_str(const cJSON *f, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "ip:port" or "[v6]:port" -> the address alone. */
static void peer_ip(const char *peer, char *out, size_t cap)
{
    out[0] = '\0';
    if (peer == NULL) return;
    const char *start = peer, *end = strrchr(peer, ':');
    if (peer[0] == '[') {
        start = peer + 1;
        end = strchr(start, ']');
    } else if (end != NULL && strchr(peer, ':') != end) {
        end = NULL; /* a bare IPv6 address */
    }
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= cap) n = cap - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

/* The Open API type of an event, or NULL if it is not in this history. */
static const char *raw_kind(struct raw_ctx *c, const char *kind, const cJSON *f)
{
    if (c->type == RAW_ONLINE) {
        if (strcmp(kind, "connect") == 0) {
            const char *t = c->online ? "dev_re_online" : "dev_online";
            c->online = true;
            return t;
        }
        if (strcmp(kind, "disconnect") == 0) {
            c->online = false;
            return "dev_offline";
        }
        return NULL;
    }
    const char *topic = field_str(f, "topic");
    if (topic != NULL) {
        if (strncmp(topic, "app2dev/", 8) == 0) return "app2dev";
        if (strncmp(topic, "dev2app/", 8) == 0) return "dev2app";
        return NULL;
    }
    if (strcmp(kind, "publish_out") == 0) return "app2dev";
    if (strcmp(kind, "publish_in") == 0) return "dev2app";
    return NULL;
}

static int raw_event_cb(const struct giz_event *ev, void *ud)
{
    struct raw_ctx *c = ud;
    c->seen++;
    c->after_id = ev->id;
    cJSON *f = ev->fields ? cJSON_Parse(ev->fields) : NULL;
    const char *type = raw_kind(c, ev->kind, f);
    if (type == NULL || ev->ts < c->start_ms || ev->ts > c->end_ms) goto out;
    c->total++;
    if (cJSON_GetArraySize(c->all) >= RAW_DATA_MAX_WINDOW) goto out;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        c->oom = true;
        goto out;
    }
    char ip[64];
    peer_ip(field_str(f, "peer"), ip, sizeof ip);
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "ip", ip);
    cJSON_AddNumberToObject(o, "timestamp", (double)ev->ts / 1000.0);
    if (c->type == RAW_CMD) {
        const char *hex = field_str(f, "payload");
        if (hex == NULL) hex = field_str(f, "payload_hex");
        if (hex == NULL) hex = field_str(f, "hex");
        cJSON_AddStringToObject(o, "payload_bin", hex ? hex : "");
        const char *cmd = field_str(f, "cmd");
        if (cmd != NULL) cJSON_AddStringToObject(o, "cmd", cmd);
        if (strcmp(type, "app2dev") == 0) {
            const char *uid = field_str(f, "uid"), *appid = field_str(f, "appid");
            cJSON_AddStringToObject(o, "source", "client");
            if (uid != NULL) cJSON_AddStringToObject(o, "uid", uid);
            if (appid != NULL) cJSON_AddStringToObject(o, "appid", appid);
        }
    }
    cJSON_AddItemToArray(c->all, o);
out:
    cJSON_Delete(f);
    return c->oom ? 1 : 0;
}

/* A required or optional unsigned query number; false after answering 400. */
static bool query_num(struct gs_request *rq, const char *key, bool required, uint64_t max,
                      uint64_t *out)
{
    char buf[24], msg[96];
    uint64_t v = 0;
    int rc = gs_query_get(rq, key, buf, sizeof buf);
    if (rc == GIZ_ERR_NOT_FOUND || (rc == GIZ_OK && buf[0] == '\0')) {
        if (!required) return true;
        snprintf(msg, sizeof msg, "%s is required", key);
    } else if (rc == GIZ_OK && giz_parse_uint(buf, 10, 0, max, &v) == GIZ_OK) {
        *out = v;
        return true;
    } else {
        snprintf(msg, sizeof msg, "%s must be a number up to %" PRIu64, key, max);
    }
    gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, msg);
    return false;
}

void gs_route_app_raw_data(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_session s;
    struct giz_device d;
    struct raw_ctx c = {0};
    char type[16] = "", sort[8] = "";
    uint64_t start = 0, end = 0, skip = 0, limit = 20;
    if (!gs_app_begin(rq, &st, &s) || !gs_app_bound_device(rq, st, &s, rq->param[0], &d, NULL))
        goto out;
    if (gs_query_get(rq, "type", type, sizeof type) != GIZ_OK ||
        (strcmp(type, "cmd") != 0 && strcmp(type, "online") != 0)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "type must be cmd or online");
        goto out;
    }
    if (!query_num(rq, "start_time", true, UINT32_MAX, &start) ||
        !query_num(rq, "end_time", true, UINT32_MAX, &end) ||
        !query_num(rq, "skip", false, RAW_DATA_MAX_WINDOW, &skip) ||
        !query_num(rq, "limit", false, RAW_DATA_MAX_LIMIT, &limit))
        goto out;
    if (end <= start) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "end_time must be after start_time");
        goto out;
    }
    if (skip + limit > RAW_DATA_MAX_WINDOW) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "skip + limit must be at most 5000");
        goto out;
    }
    int rc = gs_query_get(rq, "sort", sort, sizeof sort);
    bool asc = rc == GIZ_OK && (strcmp(sort, "asc") == 0 || strcmp(sort, "ase") == 0);
    if (rc == GIZ_OK && !asc && sort[0] != '\0' && strcmp(sort, "desc") != 0 &&
        strcmp(sort, "dese") != 0) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "sort must be asc or desc");
        goto out;
    }
    c.type = type[0] == 'c' ? RAW_CMD : RAW_ONLINE;
    c.start_ms = (int64_t)start * 1000;
    c.end_ms = (int64_t)end * 1000 + 999;
    c.all = cJSON_CreateArray();
    /* Every event of the device from the start: the online/re-online state
     * needs the connects before the window; per-device retention bounds it. */
    for (;;) {
        struct giz_event_query q = {
            .did = d.did, .after_id = c.after_id, .since_ts = -1, .limit = RAW_DATA_SCAN};
        c.seen = 0;
        rc = giz_store_event_list(st, &q, raw_event_cb, &c);
        if (rc != GIZ_OK || c.oom || c.all == NULL) {
            gs_app_store_error(rq, rc != GIZ_OK ? rc : GIZ_ERR_NOMEM);
            goto out;
        }
        if (c.seen < RAW_DATA_SCAN) break;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(j, "meta");
    cJSON_AddStringToObject(meta, "sort", asc ? "asc" : "desc");
    cJSON_AddNumberToObject(meta, "limit", (double)limit);
    cJSON_AddNumberToObject(meta, "end_time", (double)end);
    cJSON_AddStringToObject(meta, "did", d.did);
    cJSON_AddNumberToObject(meta, "skip", (double)skip);
    cJSON_AddNumberToObject(meta, "start_time", (double)start);
    cJSON_AddNumberToObject(meta, "total", (double)c.total);
    cJSON_AddStringToObject(meta, "type", type);
    cJSON *objs = cJSON_AddArrayToObject(j, "objects");
    int n = cJSON_GetArraySize(c.all);
    for (uint64_t i = skip; i < skip + limit && i < (uint64_t)n; i++) {
        int idx = asc ? (int)i : n - 1 - (int)i;
        cJSON_AddItemReferenceToArray(objs, cJSON_GetArrayItem(c.all, idx));
    }
    /* references: print before the array they point into is freed */
    gs_respond_json(rq, 200, j);
out:
    cJSON_Delete(c.all);
    gs_store_release(&rq->srv->pool, st);
}

/* ---- control -------------------------------------------------------------- */

/* The "raw" member as bytes: an array of 0..255, or with binary_coding
 * "hex" / "base64" a string. true with out[0..*n), or false after 400. */
static bool raw_bytes(struct gs_request *rq, const cJSON *raw, const char *coding, uint8_t *out,
                      size_t cap, size_t *n)
{
    *n = 0;
    if (cJSON_IsArray(raw)) {
        const cJSON *v;
        cJSON_ArrayForEach(v, raw)
        {
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 255 ||
                v->valuedouble != (double)(int)v->valuedouble) {
                gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                                     "raw must be an array of integers 0-255");
                return false;
            }
            if (*n >= cap) goto too_long;
            out[(*n)++] = (uint8_t)v->valueint;
        }
    } else if (cJSON_IsString(raw) && coding != NULL && strcmp(coding, "hex") == 0) {
        size_t len = strlen(raw->valuestring);
        if (len / 2 > cap) goto too_long;
        if (giz_hex_decode(raw->valuestring, len, out, cap, n) != GIZ_OK) {
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                                 "raw is not an even number of hex digits");
            return false;
        }
    } else if (cJSON_IsString(raw) && coding != NULL && strcmp(coding, "base64") == 0) {
        size_t len = strlen(raw->valuestring);
        if (len % 4 != 0 || len / 4 * 3 > cap + 2 || len > (size_t)INT32_MAX) {
            if (len / 4 * 3 > cap + 2) goto too_long;
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "raw is not base64");
            return false;
        }
        uint8_t *tmp = malloc(len / 4 * 3 + 1);
        int got =
            tmp ? EVP_DecodeBlock(tmp, (const unsigned char *)raw->valuestring, (int)len) : -1;
        size_t pad = 0;
        if (len >= 1 && raw->valuestring[len - 1] == '=') pad++;
        if (len >= 2 && raw->valuestring[len - 2] == '=') pad++;
        if (got < 0 || (size_t)got < pad || (size_t)got - pad > cap) {
            free(tmp);
            if (got >= 0) goto too_long;
            gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "raw is not base64");
            return false;
        }
        *n = (size_t)got - pad;
        memcpy(out, tmp, *n);
        free(tmp);
    } else {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID,
                             "raw must be an array of bytes (or a string with binary_coding "
                             "hex or base64)");
        return false;
    }
    if (*n > 0) return true;
    gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "raw is empty");
    return false;
too_long : {
    char msg[64];
    snprintf(msg, sizeof msg, "raw is longer than %zu bytes", cap);
    gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, msg);
    return false;
}
}

/* "attrs" as a p0 write with the product's data points into out[0..*n);
 * false after answering (400 9029 no data points imported, 400 9025 attrs
 * invalid naming the problem, 500). */
static bool attrs_encode(struct gs_request *rq, struct giz_store *st, const struct giz_device *d,
                         const cJSON *attrs, uint8_t *out, size_t cap, size_t *n)
{
    char *json = NULL;
    size_t len = 0;
    struct giz_p0_schema *schema = NULL;
    struct giz_error err;
    bool ok = false;
    *n = 0;
    int rc = giz_store_datapoints_get(st, d->product_key, &json, &len, NULL);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_app_error(rq, 400, GS_E_DATAPOINT_NOT_FOUND,
                             "this product has no data points imported");
        goto out;
    }
    if (rc != GIZ_OK) {
        gs_app_store_error(rq, rc);
        goto out;
    }
    memset(&err, 0, sizeof err);
    if (giz_p0_schema_parse(json, len, &schema, &err) != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "product %s: stored data points do not parse: %s", d->product_key,
                err.text);
        gs_respond_app_error(rq, 500, GS_E_SERVER_ERROR, "the product's data points are unusable");
        goto out;
    }
    if (!cJSON_IsObject(attrs) || attrs->child == NULL) {
        gs_respond_app_error(rq, 400, GS_E_ATTR_INVALID,
                             "attrs must be an object of data point names and values");
        goto out;
    }
    memset(&err, 0, sizeof err);
    rc = giz_p0_encode_write(schema, attrs, GIZ_P0_FORM_AUTO, out, cap, n, &err);
    if (rc != GIZ_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "attrs: %s", err.text[0] ? err.text : giz_strerror(rc));
        gs_respond_app_error(rq, 400, GS_E_ATTR_INVALID, msg);
        goto out;
    }
    ok = true;
out:
    giz_p0_schema_free(schema);
    free(json);
    return ok;
}

/* Queues the framed 0x0090 with body[0..n) for the plugin to publish. */
static int queue_biz(struct giz_store *st, const struct giz_session *s, const char *did,
                     const uint8_t *body, size_t n)
{
    struct giz_msg m;
    struct giz_outbox_item *it = calloc(1, sizeof *it);
    size_t len = 0;
    if (it == NULL) return GIZ_ERR_NOMEM;
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_BIZ;
    m.u.biz.data.ptr = body;
    m.u.biz.data.len = n;
    int rc = giz_msg_encode(&m, it->payload, sizeof it->payload, &len);
    if (rc == GIZ_OK) {
        it->kind = GIZ_OUTBOX_APP_PUBLISH;
        it->payload_len = (uint32_t)len;
        memcpy(it->did, did, strlen(did) + 1);
        memcpy(it->uid, s->uid, strlen(s->uid) + 1);
        memcpy(it->client_id, s->mqtt_client_id, strlen(s->mqtt_client_id) + 1);
        rc = giz_store_outbox_push(st, it, NULL);
    }
    free(it);
    return rc;
}

void gs_route_app_control(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_session s;
    struct giz_device d;
    cJSON *body = NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    if (!gs_app_begin(rq, &st, &s)) goto out;
    body = gs_body_json(rq);
    if (body == NULL || !gs_app_bound_device(rq, st, &s, rq->param[0], &d, NULL)) goto out;
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(body, "raw");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(body, "attrs");
    const cJSON *coding = cJSON_GetObjectItemCaseSensitive(body, "binary_coding");
    if ((raw == NULL) == (attrs == NULL)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "give one of raw or attrs");
        goto out;
    }
    buf = malloc(RAW_MAX);
    if (buf == NULL) {
        gs_app_store_error(rq, GIZ_ERR_NOMEM);
        goto out;
    }
    if (raw != NULL) {
        if (!raw_bytes(rq, raw, cJSON_IsString(coding) ? coding->valuestring : NULL, buf, RAW_MAX,
                       &n))
            goto out;
    } else if (!attrs_encode(rq, st, &d, attrs, buf, RAW_MAX, &n)) {
        goto out;
    }
    if (d.status != GIZ_DEVICE_ACTIVE) {
        gs_respond_app_error(rq, 400, GS_E_DEVICE_DISABLED, "device is disabled");
        goto out;
    }
    if (!gs_broker_alive(rq->srv, st, NULL) || !d.online) {
        gs_respond_app_error(rq, 400, GS_E_DEVICE_OFFLINE, "device offline");
        goto out;
    }
    int rc = queue_biz(st, &s, d.did, buf, n);
    if (rc != GIZ_OK) {
        gs_app_store_error(rq, rc);
        goto out;
    }
    giz_log(GIZ_LOG_INFO, "user %s: control of %s queued (%zu bytes, %s)", s.uid, d.did, n,
            raw ? "raw" : "attrs");
    gs_respond_json(rq, 200, cJSON_CreateObject());
out:
    free(buf);
    cJSON_Delete(body);
    gs_store_release(&rq->srv->pool, st);
}
