/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The web console (GET /console/) and the few admin calls it needs beyond
 * the admin API: the static files of gservice/console/ compiled into the
 * binary (cmake/EmbedFile.cmake) and served with their content type, an
 * ETag (If-None-Match -> 304), Cache-Control: no-cache and a strict
 * Content-Security-Policy; GET / and GET /console redirect to /console/.
 * The live timeline: a browser's EventSource cannot send an Authorization
 * header, so POST /admin/events/ticket (admin token) mints a short-lived,
 * single-use ticket for one stream and GET /console/stream?ticket= (no
 * token) consumes it and runs the admin event stream; the admin token never
 * appears in a URL. POST /admin/devices/<DID>/send queues a 0x0090, 0x0093
 * or 0x0010 for a device through the outbox kind of the app API's control
 * (GIZ_OUTBOX_APP_PUBLISH, topic app2dev/<DID>/console): raw bytes, or
 * data point values encoded with the product's schema (p0 write). GET
 * /admin/device_search?q= finds devices by DID prefix or MAC part; GET
 * /admin/devices/<DID>/latest is the device's latest reported data points.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "giz/crypto.h"
#include "giz/log.h"
#include "giz/p0.h"
#include "giz/proto.h"
#include "giz/util.h"
#include "gservice.h"

/* ---- static files ----------------------------------------------------------- */

extern const char gs_console_index_html[], gs_console_css[], gs_console_js[];
extern const size_t gs_console_index_html_len, gs_console_css_len, gs_console_js_len;

struct asset {
    const char *name;
    const char *content_type;
    const char *data;
    const size_t *len;
    char etag[24]; /* "\"<16 hex>\"", filled once by assets_init */
};

static struct asset assets[] = {
    {"index.html", "text/html; charset=utf-8", gs_console_index_html, &gs_console_index_html_len,
     ""},
    {"console.css", "text/css; charset=utf-8", gs_console_css, &gs_console_css_len, ""},
    {"console.js", "text/javascript; charset=utf-8", gs_console_js, &gs_console_js_len, ""},
};

/* Everything from this origin, nothing inline, nothing from elsewhere. */
#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static pthread_once_t assets_once = PTHREAD_ONCE_INIT;

/* ETags: FNV-1a 64 of each file's bytes (they change only with a rebuild). */
static void assets_init(void)
{
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        uint64_t h = 14695981039346656037ull;
        for (size_t k = 0; k < *assets[i].len; k++) {
            h ^= (unsigned char)assets[i].data[k];
            h *= 1099511628211ull;
        }
        snprintf(assets[i].etag, sizeof assets[i].etag, "\"%016" PRIx64 "\"", h);
    }
}

static void add_security_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
}

static void redirect(struct gs_request *rq, unsigned status, const char *location)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp != NULL) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    gs_respond_mhd(rq, status, resp, 0);
}

void gs_route_root(struct gs_request *rq)
{
    redirect(rq, MHD_HTTP_FOUND, "/console/");
}

/* true if the If-None-Match header lists etag (or is "*"). */
static bool etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL) return false;
    if (strcmp(inm, "*") == 0) return true;
    size_t n = strlen(etag);
    for (const char *p = strstr(inm, etag); p != NULL; p = strstr(p + 1, etag)) {
        char after = p[n];
        if (after == '\0' || after == ',' || after == ' ') return true;
    }
    return false;
}

void gs_route_console(struct gs_request *rq)
{
    /* "/console" -> "/console/" (relative asset names resolve under it) */
    if (rq->path_len == 8) {
        redirect(rq, MHD_HTTP_MOVED_PERMANENTLY, "/console/");
        return;
    }
    const char *name = rq->param[0][0] != '\0' ? rq->param[0] : "index.html";
    const struct asset *a = NULL;
    pthread_once(&assets_once, assets_init);
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
        if (strcmp(assets[i].name, name) == 0) a = &assets[i];
    if (a == NULL) {
        gs_respond_error(rq, 404, "not_found", "no such console file");
        return;
    }
    bool fresh = etag_matches(gs_header(rq, MHD_HTTP_HEADER_IF_NONE_MATCH), a->etag);
    /* the files are static for the life of the binary: no copy */
    struct MHD_Response *resp =
        fresh ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(*a->len, (void *)(uintptr_t)a->data,
                                                MHD_RESPMEM_PERSISTENT);
    if (resp != NULL) {
        if (!fresh) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        add_security_headers(resp);
    }
    gs_respond_mhd(rq, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp, fresh ? 0 : *a->len);
}

/* ---- stream tickets ------------------------------------------------------------ */

#define TICKET_MAX 64
#define TICKET_TTL_US (30u * 1000u * 1000u)
#define TICKET_HEX 32 /* 128 random bits */

struct ticket {
    char tok[TICKET_HEX + 1]; /* "" = free slot */
    char did[GIZ_DID_SIZE];   /* the one stream it opens ("" = all devices) */
    uint64_t expires_us;
};

/* Process-wide: tickets are random, so servers sharing the table (unit
 * tests start several) cannot use each other's by accident. */
static struct ticket tickets[TICKET_MAX];
static pthread_mutex_t tickets_mu = PTHREAD_MUTEX_INITIALIZER;

void gs_route_admin_stream_ticket(struct gs_request *rq)
{
    char did[GIZ_DID_SIZE] = "";
    if (rq->body_len > 0) {
        cJSON *body = gs_body_json(rq);
        if (body == NULL) return;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "did");
        bool ok =
            d == NULL || cJSON_IsNull(d) || (cJSON_IsString(d) && gs_valid_did(d->valuestring));
        if (ok && cJSON_IsString(d)) snprintf(did, sizeof did, "%s", d->valuestring);
        cJSON_Delete(body);
        if (!ok) {
            gs_respond_error(rq, 400, "bad_request", "did must be 22 base62 characters");
            return;
        }
    }
    char tok[TICKET_HEX + 1];
    if (giz_random_hex(tok, sizeof tok, TICKET_HEX / 2) != GIZ_OK) {
        gs_respond_error(rq, 500, "server_error", "no random bytes");
        return;
    }
    uint64_t now = gs_now_us();
    pthread_mutex_lock(&tickets_mu);
    size_t slot = 0; /* a free or expired slot, else the one expiring first */
    for (size_t i = 0; i < TICKET_MAX; i++) {
        if (tickets[i].tok[0] == '\0' || tickets[i].expires_us <= now) {
            slot = i;
            break;
        }
        if (tickets[i].expires_us < tickets[slot].expires_us) slot = i;
    }
    memcpy(tickets[slot].tok, tok, sizeof tok);
    memcpy(tickets[slot].did, did, sizeof did);
    tickets[slot].expires_us = now + TICKET_TTL_US;
    pthread_mutex_unlock(&tickets_mu);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "ticket", tok);
    cJSON_AddNumberToObject(j, "expires_in", TICKET_TTL_US / 1000000u);
    if (did[0] != '\0')
        cJSON_AddStringToObject(j, "did", did);
    else
        cJSON_AddNullToObject(j, "did");
    explicit_bzero(tok, sizeof tok);
    gs_respond_json(rq, 201, j);
}

/* Takes the ticket tok for a stream of did ("" = all): true once, if it
 * exists, has not expired and was minted for that stream. */
static bool ticket_take(const char *tok, const char *did)
{
    bool ok = false;
    uint64_t now = gs_now_us();
    if (strlen(tok) != TICKET_HEX) return false;
    pthread_mutex_lock(&tickets_mu);
    for (size_t i = 0; i < TICKET_MAX; i++) {
        if (tickets[i].tok[0] == '\0' || !giz_consttime_eq(tickets[i].tok, tok, TICKET_HEX))
            continue;
        ok = tickets[i].expires_us > now && strcmp(tickets[i].did, did) == 0;
        memset(&tickets[i], 0, sizeof tickets[i]); /* single use, also when refused */
        break;
    }
    pthread_mutex_unlock(&tickets_mu);
    return ok;
}

void gs_route_console_stream(struct gs_request *rq)
{
    char tok[TICKET_HEX + 8] = "", did[GIZ_DID_SIZE + 8] = "";
    int trc = gs_query_get(rq, "ticket", tok, sizeof tok);
    int drc = gs_query_get(rq, "did", did, sizeof did);
    if (drc != GIZ_OK) did[0] = '\0';
    if (trc != GIZ_OK || !ticket_take(tok, did)) {
        explicit_bzero(tok, sizeof tok);
        gs_respond_error(rq, 401, "bad_ticket",
                         "missing, used, expired or foreign stream ticket "
                         "(POST /admin/events/ticket)");
        return;
    }
    explicit_bzero(tok, sizeof tok);
    gs_route_admin_event_stream(rq);
}

/* ---- sending to a device ------------------------------------------------------- */

#define CONSOLE_CLIENT_ID "console" /* app2dev/<DID>/console; the device answers on dev2app */
#define SEND_RAW_MAX 900u           /* body bytes; the framed message fits the outbox */

/* "attrs" (data point name -> value) as a p0 write (0x01 / 0x11) with the
 * product's data points into out[0..*n); false after answering 400 / 500. */
static bool attrs_encode(struct gs_request *rq, struct giz_store *st, const struct giz_device *d,
                         const cJSON *attrs, uint8_t *out, size_t cap, size_t *n)
{
    char *json = NULL;
    size_t len = 0;
    struct giz_p0_schema *schema = NULL;
    struct giz_error err;
    bool ok = false;
    int rc = giz_store_datapoints_get(st, d->product_key, &json, &len, NULL);
    memset(&err, 0, sizeof err);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 400, "no_datapoints", "the device's product has no data points");
    } else if (rc != GIZ_OK || giz_p0_schema_parse(json, len, &schema, &err) != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "data points of %s: %s", d->product_key,
                rc != GIZ_OK ? giz_strerror(rc) : err.text);
        gs_respond_error(rq, 500, "server_error", "the product's data points cannot be read");
    } else if (!cJSON_IsObject(attrs) || attrs->child == NULL) {
        gs_respond_error(rq, 400, "bad_request", "attrs must be an object of data point values");
    } else if ((rc = giz_p0_encode_write(schema, attrs, GIZ_P0_FORM_AUTO, out, cap, n, &err)) !=
               GIZ_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "attrs: %s", err.text[0] ? err.text : giz_strerror(rc));
        gs_respond_error(rq, 400, "bad_attrs", msg);
    } else {
        ok = true;
    }
    giz_p0_schema_free(schema);
    free(json);
    return ok;
}

/* The message of a send body into *m (views into raw[0..cap)); false after
 * answering 400 (or 500 for unreadable data points). */
static bool send_message(struct gs_request *rq, struct giz_store *st, const struct giz_device *d,
                         const cJSON *body, struct giz_msg *m, uint8_t *raw, size_t cap)
{
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive(body, "raw");
    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(body, "sn");
    const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(body, "log_level");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(body, "attrs");
    size_t n = 0;
    memset(m, 0, sizeof *m);
    if ((hex != NULL) + (lvl != NULL) + (attrs != NULL) != 1) {
        gs_respond_error(rq, 400, "bad_request", "give one of raw (hex), attrs or log_level");
        return false;
    }
    if (lvl != NULL) {
        if (!cJSON_IsNumber(lvl) || lvl->valuedouble < 0 || lvl->valuedouble > 65535 ||
            lvl->valuedouble != (double)(int)lvl->valuedouble) {
            gs_respond_error(rq, 400, "bad_request", "log_level must be an integer 0-65535");
            return false;
        }
        m->cmd = GIZ_CMD_LOG_LEVEL_SET;
        m->u.log_level.bits = (uint16_t)lvl->valueint;
        return true;
    }
    size_t len = cJSON_IsString(hex) ? strlen(hex->valuestring) : 0;
    if (attrs != NULL) {
        if (!attrs_encode(rq, st, d, attrs, raw, cap, &n)) return false;
    } else if (len == 0 || len / 2 > cap ||
               giz_hex_decode(hex->valuestring, len, raw, cap, &n) != GIZ_OK) {
        char msg[96];
        snprintf(msg, sizeof msg, "raw must be 1 to %zu bytes as an even number of hex digits",
                 cap);
        gs_respond_error(rq, 400, "bad_request", msg);
        return false;
    }
    if (sn == NULL) {
        m->cmd = GIZ_CMD_BIZ;
        m->u.biz.data.ptr = raw;
        m->u.biz.data.len = n;
    } else if (cJSON_IsNumber(sn) && sn->valuedouble >= 0 && sn->valuedouble <= 4294967295.0 &&
               sn->valuedouble == (double)(uint32_t)sn->valuedouble) {
        m->cmd = GIZ_CMD_BIZ_SN;
        m->u.biz_sn.sn = (uint32_t)sn->valuedouble;
        m->u.biz_sn.data.ptr = raw;
        m->u.biz_sn.data.len = n;
    } else {
        gs_respond_error(rq, 400, "bad_request", "sn must be an integer 0-4294967295");
        return false;
    }
    return true;
}

void gs_route_admin_device_send(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_outbox_item *it = NULL;
    struct giz_device d;
    struct giz_msg m;
    uint8_t *raw = NULL;
    size_t len = 0;
    cJSON *body = NULL;
    const char *did = rq->param[0];
    if (!gs_valid_did(did)) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        goto out;
    }
    body = gs_body_json(rq);
    raw = malloc(SEND_RAW_MAX);
    it = calloc(1, sizeof *it);
    if (body == NULL) goto out;
    if (raw == NULL || it == NULL) {
        gs_respond_error(rq, 500, "server_error", "out of memory");
        goto out;
    }
    st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        goto out;
    }
    int rc = giz_store_device_get(st, did, &d);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        goto out;
    }
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "send to %s: %s", did, giz_strerror(rc));
        gs_respond_error(rq, 500, "server_error", "store error");
        goto out;
    }
    if (!send_message(rq, st, &d, body, &m, raw, SEND_RAW_MAX)) goto out;
    if (giz_msg_encode(&m, it->payload, sizeof it->payload, &len) != GIZ_OK) {
        gs_respond_error(rq, 400, "bad_request", "the message does not fit");
        goto out;
    }
    if (!gs_broker_alive(rq->srv, st, NULL)) {
        gs_respond_error(rq, 503, "broker_unavailable", "the broker is down: nothing was queued");
        goto out;
    }
    if (d.status != GIZ_DEVICE_ACTIVE || !d.online) {
        gs_respond_error(rq, 409,
                         d.status != GIZ_DEVICE_ACTIVE ? "device_disabled" : "device_offline",
                         "the device is not connected: nothing was queued");
        goto out;
    }
    it->kind = GIZ_OUTBOX_APP_PUBLISH;
    it->payload_len = (uint32_t)len;
    snprintf(it->did, sizeof it->did, "%s", d.did);
    snprintf(it->client_id, sizeof it->client_id, "%s", CONSOLE_CLIENT_ID);
    int64_t id = 0;
    rc = giz_store_outbox_push(st, it, &id);
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "send to %s: %s", did, giz_strerror(rc));
        gs_respond_error(rq, 500, "server_error", "store error");
        goto out;
    }
    giz_log(GIZ_LOG_INFO, "admin: 0x%04X to %s queued (%zu bytes)", m.cmd, d.did, len);
    cJSON *j = cJSON_CreateObject();
    char cmd[8];
    snprintf(cmd, sizeof cmd, "0x%04X", m.cmd);
    cJSON_AddStringToObject(j, "did", d.did);
    cJSON_AddStringToObject(j, "cmd", cmd);
    cJSON_AddNumberToObject(j, "length", (double)len);
    cJSON_AddStringToObject(j, "topic", "app2dev/<did>/" CONSOLE_CLIENT_ID);
    cJSON_AddNumberToObject(j, "outbox_id", (double)id);
    gs_respond_json(rq, 202, j);
out:
    gs_store_release(&rq->srv->pool, st);
    cJSON_Delete(body);
    free(raw);
    free(it);
}

/* ---- device search ------------------------------------------------------------- */

struct search_ctx {
    cJSON *arr;
    bool broker_alive;
};

static int search_cb(const struct giz_device *d, void *ud)
{
    struct search_ctx *c = ud;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return 1;
    cJSON_AddStringToObject(o, "did", d->did);
    cJSON_AddStringToObject(o, "product_key", d->product_key);
    cJSON_AddStringToObject(o, "mac", d->mac);
    cJSON_AddStringToObject(o, "status", d->status == GIZ_DEVICE_ACTIVE ? "active" : "disabled");
    cJSON_AddBoolToObject(o, "online", c->broker_alive && d->online);
    cJSON_AddStringToObject(o, "presence",
                            !c->broker_alive ? "unknown" : (d->online ? "online" : "offline"));
    cJSON_AddNumberToObject(o, "last_seen", (double)d->last_seen);
    cJSON_AddNumberToObject(o, "created_at", (double)d->created_at);
    cJSON_AddStringToObject(o, "wifi_soft_version", d->wifi_soft_version);
    cJSON_AddStringToObject(o, "wifi_hard_version", d->wifi_hard_version);
    cJSON_AddStringToObject(o, "mcu_soft_version", d->mcu_soft_version);
    cJSON_AddStringToObject(o, "mcu_hard_version", d->mcu_hard_version);
    cJSON_AddItemToArray(c->arr, o);
    return 0;
}

void gs_route_admin_device_search(struct gs_request *rq)
{
    char pk[GIZ_PK_SIZE], q[GIZ_DID_SIZE + 8] = "";
    unsigned limit, offset;
    if (!gs_query_product_key(rq, pk)) return;
    if (!gs_admin_page(rq, 100, 1000, &limit, &offset)) return;
    bool q_ok =
        gs_query_get(rq, "q", q, sizeof q) == GIZ_OK && q[0] != '\0' && strlen(q) < GIZ_DID_SIZE;
    for (size_t i = 0; q_ok && q[i] != '\0'; i++)
        if (!giz_char_is_base62(q[i])) q_ok = false;
    if (!q_ok) {
        gs_respond_error(rq, 400, "bad_request",
                         "q must be 1 to 22 letters or digits (a DID prefix or part of a MAC)");
        return;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    struct search_ctx c = {cJSON_AddArrayToObject(j, "devices"),
                           gs_broker_alive(rq->srv, st, NULL)};
    int64_t total = 0;
    int rc = c.arr ? giz_store_device_search(st, pk[0] ? pk : NULL, q, limit, offset, search_cb, &c,
                                             &total)
                   : GIZ_ERR_NOMEM;
    gs_store_release(&rq->srv->pool, st);
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "device search: %s", giz_strerror(rc));
        cJSON_Delete(j);
        gs_respond_error(rq, 500, "server_error", "store error");
        return;
    }
    cJSON_AddStringToObject(j, "q", q);
    gs_admin_page_add(j, total, limit, offset);
    gs_respond_json(rq, 200, j);
}

/* ---- latest data points -------------------------------------------------------- */

static int latest_cb(const struct giz_device_state *ds, void *ud)
{
    cJSON *j = ud;
    cJSON *attr = cJSON_Parse(ds->attrs);
    if (attr == NULL || !cJSON_IsObject(attr)) {
        cJSON_Delete(attr);
        return 1;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(j, "attr", attr);
    cJSON_AddNumberToObject(j, "updated_at", (double)(ds->updated_at / 1000));
    cJSON_AddNumberToObject(j, "updated_at_ms", (double)ds->updated_at);
    cJSON_AddNumberToObject(j, "reports", (double)ds->reports);
    cJSON_AddNumberToObject(j, "malformed_count", (double)ds->malformed_count);
    if (ds->malformed_count > 0) {
        cJSON_AddStringToObject(j, "malformed_error", ds->malformed_error);
        cJSON_AddStringToObject(j, "malformed_hex", ds->malformed_hex);
    }
    return 0;
}

void gs_route_admin_device_latest(struct gs_request *rq)
{
    const char *did = rq->param[0];
    struct giz_device d;
    if (!gs_valid_did(did)) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        return;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "did", did);
    cJSON_AddObjectToObject(j, "attr");
    int rc = giz_store_device_get(st, did, &d);
    if (rc == GIZ_OK) {
        rc = giz_store_device_state_get(st, did, latest_cb, j);
        if (rc == GIZ_ERR_NOT_FOUND) rc = GIZ_OK; /* nothing reported yet */
    }
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_NOT_FOUND) {
        cJSON_Delete(j);
        gs_respond_error(rq, 404, "not_found", "no such device");
    } else if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "latest state of %s: %s", did, giz_strerror(rc));
        cJSON_Delete(j);
        gs_respond_error(rq, 500, "server_error", "store error");
    } else {
        gs_respond_json(rq, 200, j);
    }
}
