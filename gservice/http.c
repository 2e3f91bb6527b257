/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The libmicrohttpd glue of giz-gservice: daemon start/stop, the request
 * life cycle (request line -> route -> body -> handler -> completion), the
 * route table with 404/405 handling, body caps, the access log, the response
 * helpers shared by every route, input validators and the store pool.
 *
 * Request life cycle: the URI-log callback allocates a struct gs_request
 * holding the raw request target (we parse paths and queries ourselves, so
 * bad %-encoding is seen rather than silently repaired); the first access
 * call routes it and may answer at once (404, 405, 401, 413 from
 * Content-Length); later calls buffer the body up to the cap, or stream it
 * into a firmware upload; the final call runs the handler; the completion
 * callback logs one access line, feeds the metrics and frees the request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/crypto.h"
#include "giz/form.h"
#include "giz/log.h"
#include "gservice.h"

/* ======================================================================
 * Time
 * ====================================================================== */

uint64_t gs_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t gs_unix_now(void)
{
    return (int64_t)time(NULL);
}

/* ======================================================================
 * Store pool
 * ====================================================================== */

/* WAL hook of pool connections (any request thread, after a commit). */
static void ckpt_wake(void *ud, int wal_frames)
{
    struct gs_store_pool *pool = ud;
    if (wal_frames < GS_CKPT_FRAMES)
        return;
    pthread_mutex_lock(&pool->ckpt_mu);
    if (!pool->ckpt_due) {
        pool->ckpt_due = true;
        pthread_cond_signal(&pool->ckpt_cv);
    }
    pthread_mutex_unlock(&pool->ckpt_mu);
}

static void *ckpt_main(void *arg)
{
    struct gs_store_pool *pool = arg;
    struct giz_store *st = NULL;
    struct giz_error err = {0};
    int rc = giz_store_open(pool->path, &st, &err);

    if (rc != GIZ_OK)
        giz_log(GIZ_LOG_ERR, "checkpoint thread: store open %s: %s (%s)", pool->path,
                giz_strerror(rc), err.text);
    else if (pool->pkey_set)
        giz_store_set_passcode_key(st, &pool->pkey);
    pthread_mutex_lock(&pool->ckpt_mu);
    for (;;) {
        while (!pool->ckpt_due && !pool->ckpt_stop)
            pthread_cond_wait(&pool->ckpt_cv, &pool->ckpt_mu);
        if (pool->ckpt_stop)
            break;
        pool->ckpt_due = false;
        pthread_mutex_unlock(&pool->ckpt_mu);
        if (st != NULL)
            giz_store_checkpoint(st, NULL, NULL);
        pthread_mutex_lock(&pool->ckpt_mu);
    }
    pthread_mutex_unlock(&pool->ckpt_mu);
    giz_store_close(st); /* the last connection to close checkpoints what is left */
    return NULL;
}

int gs_store_checkpointer_start(struct gs_store_pool *pool)
{
    if (pthread_mutex_init(&pool->ckpt_mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&pool->ckpt_cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->ckpt_mu);
        goto fail;
    }
    pool->ckpt_due = pool->ckpt_stop = false;
    if (pthread_create(&pool->ckpt_thread, NULL, ckpt_main, pool) != 0) {
        pthread_cond_destroy(&pool->ckpt_cv);
        pthread_mutex_destroy(&pool->ckpt_mu);
        goto fail;
    }
    pool->ckpt_started = true;
    pthread_mutex_lock(&pool->mu); /* connections opened before */
    for (unsigned i = 0; i < pool->n_idle; i++)
        giz_store_set_wal_cb(pool->idle[i], ckpt_wake, pool);
    pthread_mutex_unlock(&pool->mu);
    return 0;
fail:
    giz_log(GIZ_LOG_ERR, "cannot start the checkpoint thread; commits will checkpoint");
    return -1;
}

static void ckpt_stop(struct gs_store_pool *pool)
{
    if (!pool->ckpt_started)
        return;
    pthread_mutex_lock(&pool->ckpt_mu);
    pool->ckpt_stop = true;
    pthread_cond_signal(&pool->ckpt_cv);
    pthread_mutex_unlock(&pool->ckpt_mu);
    pthread_join(pool->ckpt_thread, NULL);
    pthread_cond_destroy(&pool->ckpt_cv);
    pthread_mutex_destroy(&pool->ckpt_mu);
    pool->ckpt_started = false;
}

struct giz_store *gs_store_acquire(struct gs_store_pool *pool)
{
    struct giz_store *st = NULL;
    pthread_mutex_lock(&pool->mu);
    if (pool->n_idle > 0)
        st = pool->idle[--pool->n_idle];
    pthread_mutex_unlock(&pool->mu);
    if (st != NULL)
        return st;
    struct giz_error err = {0};
    int rc = giz_store_open(pool->path, &st, &err);
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "store open %s: %s (%s)", pool->path, giz_strerror(rc), err.text);
        return NULL;
    }
    if (pool->pkey_set)
        giz_store_set_passcode_key(st, &pool->pkey);
    if (pool->ckpt_started)
        giz_store_set_wal_cb(st, ckpt_wake, pool);
    return st;
}

int gs_store_key_load(struct gs_store_pool *pool, const char *path, struct giz_store *st)
{
    char def[GIZ_PATH_SIZE], why[512] = "";
    struct stat sb;
    bool group_read;

    if (path == NULL || path[0] == '\0') {
        if (giz_store_passcode_key_default(pool->path, def, sizeof def) != GIZ_OK) {
            giz_log(GIZ_LOG_ERR, "no default passcode key file for database %s: set "
                                 "GIZ_PASSCODE_KEY; not starting",
                    pool->path);
            return -1;
        }
        path = def;
    }
    /* the same rule as the broker's giz_store_passcode_key_load: a new key
     * file is group-readable only if the database is */
    group_read = stat(pool->path, &sb) == 0 && (sb.st_mode & S_IRGRP);
    if (giz_passcode_key_load(path, group_read, &pool->pkey, why, sizeof why) != GIZ_OK) {
        explicit_bzero(&pool->pkey, sizeof pool->pkey);
        giz_log(GIZ_LOG_ERR, "%s; not starting (GIZ_PASSCODE_KEY)", why);
        return -1;
    }
    pool->pkey_set = true;
    if (st != NULL)
        giz_store_set_passcode_key(st, &pool->pkey);
    giz_log(GIZ_LOG_INFO, "passcode key %s (id %s)", path, pool->pkey.id);
    return 0;
}

void gs_store_release(struct gs_store_pool *pool, struct giz_store *st)
{
    if (st == NULL)
        return;
    pthread_mutex_lock(&pool->mu);
    if (pool->n_idle < GS_POOL_MAX) {
        pool->idle[pool->n_idle++] = st;
        st = NULL;
    }
    pthread_mutex_unlock(&pool->mu);
    giz_store_close(st);
}

/* ======================================================================
 * Routes
 * ====================================================================== */

struct route {
    const char *pattern; /* '/'-separated; a "*" segment captures one segment */
    enum gs_route_id id;
    int methods;
    gs_handler_fn fn;
};

#define M_READ (GS_M_GET | GS_M_HEAD)
static const struct route routes[] = {
    {"/healthz", GS_ROUTE_HEALTHZ, M_READ, gs_route_healthz},
    {"/metrics", GS_ROUTE_METRICS, M_READ, gs_route_metrics},
    {"/dev/devices", GS_ROUTE_DEV_DEVICES, GS_M_POST | GS_M_DELETE, gs_route_dev_devices},
    {"/dev/devices/*", GS_ROUTE_DEV_PROVISION, M_READ, gs_route_dev_provision},
    {"/dev/ota/v4.1/update_and_check/*", GS_ROUTE_OTA_CHECK, GS_M_POST, gs_route_ota_check},
    {"/dev/ota/target_fid", GS_ROUTE_OTA_TARGET_FID, M_READ, gs_route_ota_target_fid},
    {"/dev/ota/v4.1/latest", GS_ROUTE_OTA_LATEST, M_READ, gs_route_ota_latest},
    {"/dev/ota/v4.1/download/*", GS_ROUTE_OTA_DOWNLOAD, M_READ, gs_route_ota_download},
    {"/dev/ota/download/*", GS_ROUTE_OTA_DOWNLOAD, M_READ, gs_route_ota_download},
    {"/dev/*/device", GS_ROUTE_DEV_SAFE, M_READ | GS_M_POST, gs_route_dev_safe},
    {"/admin/products", GS_ROUTE_ADMIN_PRODUCTS, M_READ | GS_M_POST, gs_route_admin_products},
    {"/admin/devices", GS_ROUTE_ADMIN_DEVICES, M_READ, gs_route_admin_devices},
    {"/admin/devices/*", GS_ROUTE_ADMIN_DEVICE, M_READ, gs_route_admin_device},
    {"/admin/devices/*/logs", GS_ROUTE_ADMIN_DEVICE_LOGS, M_READ, gs_route_admin_device_logs},
    {"/admin/firmware", GS_ROUTE_ADMIN_FIRMWARE, M_READ | GS_M_POST, gs_route_admin_firmware},
    {"/admin/ota/push", GS_ROUTE_ADMIN_OTA_PUSH, GS_M_POST, gs_route_admin_ota_push},
    {"/app/users", GS_ROUTE_APP_USERS, GS_M_POST, gs_route_app_users},
    {"/app/login", GS_ROUTE_APP_LOGIN, GS_M_POST, gs_route_app_login},
    {"/app/bindings", GS_ROUTE_APP_BINDINGS, M_READ | GS_M_POST | GS_M_DELETE,
     gs_route_app_bindings},
};

static const char *const route_names[GS_ROUTE_COUNT] = {
    [GS_ROUTE_NONE] = "unmatched",
    [GS_ROUTE_HEALTHZ] = "healthz",
    [GS_ROUTE_METRICS] = "metrics",
    [GS_ROUTE_DEV_DEVICES] = "dev_devices",
    [GS_ROUTE_DEV_PROVISION] = "dev_provision",
    [GS_ROUTE_DEV_SAFE] = "dev_safe",
    [GS_ROUTE_OTA_CHECK] = "ota_check",
    [GS_ROUTE_OTA_TARGET_FID] = "ota_target_fid",
    [GS_ROUTE_OTA_LATEST] = "ota_latest",
    [GS_ROUTE_OTA_DOWNLOAD] = "ota_download",
    [GS_ROUTE_ADMIN_PRODUCTS] = "admin_products",
    [GS_ROUTE_ADMIN_DEVICES] = "admin_devices",
    [GS_ROUTE_ADMIN_DEVICE] = "admin_device",
    [GS_ROUTE_ADMIN_DEVICE_LOGS] = "admin_device_logs",
    [GS_ROUTE_ADMIN_FIRMWARE] = "admin_firmware",
    [GS_ROUTE_ADMIN_OTA_PUSH] = "admin_ota_push",
    [GS_ROUTE_APP_USERS] = "app_users",
    [GS_ROUTE_APP_LOGIN] = "app_login",
    [GS_ROUTE_APP_BINDINGS] = "app_bindings",
};

const char *gs_route_name(enum gs_route_id id)
{
    if ((int)id < 0 || id >= GS_ROUTE_COUNT || route_names[id] == NULL)
        return "unmatched";
    return route_names[id];
}

/* Matches path[0..len) against `pattern`; fills rq->param on success. */
static bool route_match(const char *pattern, const char *path, size_t len, struct gs_request *rq)
{
    const char *p = pattern;
    size_t i = 0;
    unsigned n_param = 0;
    char params[2][GS_PARAM_SIZE] = {{0}};
    while (*p != '\0') {
        if (*p != '/' || i >= len || path[i] != '/')
            return false;
        p++;
        i++;
        size_t seg_start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t seg_len = i - seg_start;
        const char *pend = strchr(p, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        if (plen == 1 && p[0] == '*') {
            if (seg_len == 0 || n_param >= 2)
                return false;
            if (seg_len < GS_PARAM_SIZE)
                memcpy(params[n_param], path + seg_start, seg_len);
            /* an oversize segment captures "" and fails validation later */
            n_param++;
        } else if (plen != seg_len || memcmp(p, path + seg_start, seg_len) != 0) {
            return false;
        }
        p += plen;
    }
    if (i != len)
        return false;
    memcpy(rq->param, params, sizeof params);
    return true;
}

static int method_parse(const char *m)
{
    static const struct {
        const char *name;
        int bit;
    } methods[] = {{"GET", GS_M_GET},       {"HEAD", GS_M_HEAD},       {"POST", GS_M_POST},
                   {"PUT", GS_M_PUT},       {"DELETE", GS_M_DELETE},   {"OPTIONS", GS_M_OPTIONS},
                   {"PATCH", GS_M_PATCH}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].bit;
    return GS_M_OTHER;
}

static void allow_header(int methods, char *out, size_t cap)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(methods & (1 << i)))
            continue;
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
}

static bool is_device_path(const struct gs_request *rq)
{
    return rq->path_len >= 5 && memcmp(rq->raw_uri, "/dev/", 5) == 0;
}

static bool is_admin_route(enum gs_route_id id)
{
    return id >= GS_ROUTE_ADMIN_PRODUCTS && id <= GS_ROUTE_ADMIN_OTA_PUSH;
}

/* ======================================================================
 * Validators
 * ====================================================================== */

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool gs_valid_did(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n >= GIZ_DID_SIZE - 1 || !is_base62(s[n]))
            return false;
    return n == GIZ_DID_SIZE - 1;
}

bool gs_valid_product_key(char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= GIZ_PK_SIZE - 1 || !is_hex(s[n]))
            return false;
        if (s[n] >= 'A' && s[n] <= 'F')
            s[n] = (char)(s[n] - 'A' + 'a');
    }
    return n == GIZ_PK_SIZE - 1;
}

bool gs_valid_mac(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n >= GIZ_MAC_SIZE - 1 || !is_hex(s[n]))
            return false;
    return n == GIZ_MAC_SIZE - 1;
}

bool gs_valid_version(const char *s, bool allow_empty)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= GIZ_VER_SIZE - 1 || !(is_base62(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0 || allow_empty;
}

bool gs_broker_alive(struct gs_server *srv, struct giz_store *st, int64_t *age_ms)
{
    bool alive = false;
    struct giz_broker_status b;
    if (age_ms != NULL)
        *age_ms = -1;
    if (st == NULL ||
        giz_store_broker_alive(st, (int64_t)srv->cfg.broker_max_age * 1000, &alive) != GIZ_OK)
        return false;
    if (age_ms != NULL && giz_store_broker_get(st, &b) == GIZ_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        *age_ms = now_ms > b.heartbeat_at_ms ? now_ms - b.heartbeat_at_ms : 0;
    }
    return alive;
}

void gs_firmware_url(const struct gs_server *srv, const struct giz_firmware *fw, bool v41,
                     char *out, size_t cap)
{
    if (fw->url[0] != '\0' && fw->file_path[0] == '\0')
        snprintf(out, cap, "%s", fw->url);
    else
        snprintf(out, cap, "%s/dev/ota/%sdownload/%" PRId64, srv->cfg.public_url,
                 v41 ? "v4.1/" : "", fw->id);
    gs_url_drop_port80(out); /* also in URLs registered before the rule */
}

/* ======================================================================
 * Request helpers
 * ====================================================================== */

const char *gs_header(struct gs_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

int gs_query_get(struct gs_request *rq, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    return giz_form_get(rq->query, rq->query_len, key, out, cap, &n);
}

bool gs_admin_authorized(struct gs_request *rq)
{
    const char *h = gs_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    char digest[65];
    if (giz_token_digest(rq->srv->token_key, sizeof rq->srv->token_key, h, digest,
                         sizeof digest) != GIZ_OK)
        return false;
    return giz_consttime_eq(digest, rq->srv->admin_token_digest, 64);
}

/* True if p[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). JSON text must be UTF-8 (RFC 8259);
 * cJSON copies any bytes into strings, which would end up in the store and
 * in other clients' answers. */
static bool utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        unsigned cp = c & (0x7fu >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

struct cJSON *gs_body_json(struct gs_request *rq)
{
    cJSON *j = NULL;
    if (rq->body_len > 0 && !utf8_valid((const unsigned char *)rq->body, rq->body_len)) {
        gs_respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json",
                         "the body is not valid UTF-8 (JSON text must be UTF-8)");
        return NULL;
    }
    if (rq->body_len > 0)
        j = cJSON_ParseWithLength(rq->body, rq->body_len);
    if (j == NULL) {
        gs_respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json",
                         "the body must be a JSON object");
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        gs_respond_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json",
                         "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ======================================================================
 * Responses
 * ====================================================================== */

void gs_respond_mhd(struct gs_request *rq, unsigned status, struct MHD_Response *resp,
                    uint64_t body_bytes)
{
    if (rq->responded) {
        giz_log(GIZ_LOG_ERR, "bug: second answer (%u) for %s %s", status, rq->method_name,
                gs_route_name(rq->route));
        if (resp != NULL)
            MHD_destroy_response(resp);
        return;
    }
    rq->responded = true;
    rq->status = status;
    rq->resp_bytes = body_bytes;
    /* counted when queued, so a client that has its answer sees it counted */
    gs_metrics_observe(&rq->srv->metrics, rq->route, resp ? status : 500,
                       gs_now_us() - rq->start_us, body_bytes);
    if (resp == NULL) {
        rq->status = 500;
        rq->queue_failed = true;
        return;
    }
    if (MHD_queue_response(rq->conn, status, resp) != MHD_YES) {
        giz_log(GIZ_LOG_WARN, "could not queue a %u answer", status);
        rq->queue_failed = true;
    }
    MHD_destroy_response(resp);
}

void gs_respond_buf(struct gs_request *rq, unsigned status, const char *content_type,
                    const void *data, size_t len)
{
    /* cast: MHD_RESPMEM_MUST_COPY copies and never writes through it */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL && content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    gs_respond_mhd(rq, status, resp, len);
}

#define FORM_CT "application/x-www-form-urlencoded"

void gs_respond_form(struct gs_request *rq, unsigned status, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        giz_log(GIZ_LOG_ERR, "device answer too long for %s", gs_route_name(rq->route));
        gs_respond_buf(rq, 500, FORM_CT, "error_code=9008&error_message=server error",
                       strlen("error_code=9008&error_message=server error"));
        return;
    }
    gs_respond_buf(rq, status, FORM_CT, buf, (size_t)n);
}

void gs_respond_form_error(struct gs_request *rq, unsigned status, int code, const char *message)
{
    if (!rq->responded)
        rq->giz_code = code; /* for the access log */
    gs_respond_form(rq, status, "error_code=%d&error_message=%s", code, message);
}

bool gs_form_field(struct gs_request *rq, const char *src, size_t len, const char *key, char *out,
                   size_t cap, bool required)
{
    size_t n = 0;
    int rc = giz_form_get(src, len, key, out, cap, &n);
    if (rc == GIZ_OK)
        return true;
    char msg[96];
    if (rc == GIZ_ERR_NOT_FOUND) {
        out[0] = '\0';
        if (!required)
            return true;
        snprintf(msg, sizeof msg, "%s is missing", key);
    } else if (rc == GIZ_ERR_OVERSIZE) {
        snprintf(msg, sizeof msg, "%s is too long", key);
    } else {
        snprintf(msg, sizeof msg, "%s is badly encoded", key);
    }
    gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, msg);
    return false;
}

bool gs_form_ok(struct gs_request *rq, const char *src, size_t len)
{
    struct giz_error err = {0};
    if (len == 0 || giz_form_validate(src, len, &err) == GIZ_OK)
        return true;
    gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "malformed form");
    return false;
}

#define JSON_CT "application/json"

void gs_respond_json(struct gs_request *rq, unsigned status, struct cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (text == NULL) {
        static const char oom[] = "{\"error\":\"server_error\",\"message\":\"out of memory\"}";
        gs_respond_buf(rq, 500, JSON_CT, oom, sizeof oom - 1);
        return;
    }
    gs_respond_buf(rq, status, JSON_CT, text, strlen(text));
    cJSON_free(text);
}

void gs_respond_error(struct gs_request *rq, unsigned status, const char *code,
                      const char *message)
{
    cJSON *j = cJSON_CreateObject();
    if (j != NULL) {
        cJSON_AddStringToObject(j, "error", code);
        cJSON_AddStringToObject(j, "message", message);
    }
    gs_respond_json(rq, status, j);
}

void gs_respond_app_error(struct gs_request *rq, unsigned status, int code, const char *message)
{
    char code_text[16];
    snprintf(code_text, sizeof code_text, "%d", code);
    cJSON *j = cJSON_CreateObject();
    if (j != NULL) {
        cJSON_AddStringToObject(j, "error", code_text);
        cJSON_AddStringToObject(j, "message", message);
        cJSON_AddNumberToObject(j, "error_code", code);
        cJSON_AddStringToObject(j, "error_message", message);
    }
    gs_respond_json(rq, status, j);
}

/* An error in the format of the endpoint: form for /dev/..., JSON elsewhere. */
static void respond_generic_error(struct gs_request *rq, unsigned status, const char *code,
                                  const char *message)
{
    if (is_device_path(rq))
        gs_respond_form_error(rq, status, GS_E_FORM_INVALID, message);
    else
        gs_respond_error(rq, status, code, message);
}

/* 405 with an Allow header, in the endpoint's format. */
static void respond_405(struct gs_request *rq, const char *allow)
{
    char body[256];
    int n;
    const char *ct;
    if (is_device_path(rq)) {
        n = snprintf(body, sizeof body, "error_code=%d&error_message=method not allowed; use %s",
                     GS_E_FORM_INVALID, allow);
        rq->giz_code = GS_E_FORM_INVALID;
        ct = FORM_CT;
    } else {
        n = snprintf(body, sizeof body,
                     "{\"error\":\"method_not_allowed\",\"message\":\"use %s\"}", allow);
        ct = JSON_CT;
    }
    size_t len = (n < 0) ? 0 : ((size_t)n >= sizeof body ? sizeof body - 1 : (size_t)n);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    gs_respond_mhd(rq, MHD_HTTP_METHOD_NOT_ALLOWED, resp, len);
}

/* ======================================================================
 * libmicrohttpd callbacks
 * ====================================================================== */

static struct gs_request *request_new(struct gs_server *srv, struct MHD_Connection *conn,
                                      const char *uri)
{
    struct gs_request *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        return NULL;
    rq->srv = srv;
    rq->start_us = gs_now_us();
    rq->raw_uri = strdup(uri ? uri : "");
    if (rq->raw_uri == NULL) {
        free(rq);
        return NULL;
    }
    rq->raw_target_len = strlen(rq->raw_uri);
    const char *q = strchr(rq->raw_uri, '?');
    rq->path_len = q ? (size_t)(q - rq->raw_uri) : strlen(rq->raw_uri);
    rq->query = q ? q + 1 : "";
    rq->query_len = strlen(rq->query);
    /* an absolute-form target ("http://host/path") is reduced to its path */
    if (strncmp(rq->raw_uri, "http://", 7) == 0) {
        const char *slash = strchr(rq->raw_uri + 7, '/');
        if (slash != NULL && (q == NULL || slash < q)) {
            size_t skip = (size_t)(slash - rq->raw_uri);
            memmove(rq->raw_uri, slash, strlen(slash) + 1);
            rq->path_len -= skip;
            if (q != NULL)
                rq->query -= skip;
        }
    }
    const union MHD_ConnectionInfo *ci =
        conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        char ip[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
            port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
            port = ntohs(in6->sin6_port);
        }
        snprintf(rq->peer, sizeof rq->peer, "%s:%u", ip, port);
        snprintf(rq->peer_ip, sizeof rq->peer_ip, "%s", ip);
    } else {
        snprintf(rq->peer, sizeof rq->peer, "-");
        snprintf(rq->peer_ip, sizeof rq->peer_ip, "-");
    }
    return rq;
}

static void request_free(struct gs_request *rq)
{
    if (rq == NULL)
        return;
    gs_firmware_upload_free(rq->upload);
    free(rq->body);
    free(rq->raw_uri);
    free(rq);
}

static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    return request_new(cls, conn, uri);
}

/* Copies the path for the access log: printable ASCII only, capped. */
static void log_path(const struct gs_request *rq, char *out, size_t cap)
{
    size_t n = rq->path_len < cap - 1 ? rq->path_len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        char c = rq->raw_uri[i];
        out[i] = (c > 0x20 && c < 0x7f) ? c : '?';
    }
    out[n] = '\0';
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct gs_server *srv = cls;
    struct gs_request *rq = *con_cls;
    gs_guard_head_wait(srv, conn); /* a kept-alive connection's next request head */
    if (rq == NULL)
        return;
    *con_cls = NULL;
    uint64_t dur = gs_now_us() - rq->start_us;
    char path[160];
    log_path(rq, path, sizeof path);
    const char *how = "";
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        how = " (timeout)";
    else if (toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT)
        how = " (client closed)";
    else if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR)
        how = " (error)";
    else if (toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
        how = " (shutdown)";
    char code[24] = "";
    if (rq->giz_code != 0)
        snprintf(code, sizeof code, " error_code=%d", rq->giz_code);
    giz_log(GIZ_LOG_INFO, "%s %s %u%s %" PRIu64 "B %" PRIu64 "us %s%s",
            rq->method_name[0] ? rq->method_name : "-", path, rq->status, code, rq->resp_bytes,
            dur, rq->peer, how);
    if (!rq->responded) /* answered by libmicrohttpd itself (e.g. 431), or aborted */
        gs_metrics_observe(&srv->metrics, rq->route, rq->status, dur, rq->resp_bytes);
    request_free(rq);
}

static bool body_append(struct gs_request *rq, const char *data, size_t len)
{
    size_t cap_max = rq->srv->cfg.max_body;
    if (rq->body_too_large || len > cap_max - rq->body_len) {
        rq->body_too_large = true;
        rq->body_discarded += len;
        /* a client that keeps streaming far past the cap is cut off */
        return rq->body_discarded <= 4 * (uint64_t)cap_max;
    }
    if (rq->body_len + len > rq->body_cap) {
        size_t ncap = rq->body_cap ? rq->body_cap : 1024;
        while (ncap < rq->body_len + len)
            ncap *= 2;
        if (ncap > cap_max)
            ncap = cap_max;
        char *nb = realloc(rq->body, ncap + 1);
        if (nb == NULL)
            return false;
        rq->body = nb;
        rq->body_cap = ncap;
    }
    memcpy(rq->body + rq->body_len, data, len);
    rq->body_len += len;
    rq->body[rq->body_len] = '\0';
    return true;
}

/* First call for a request: route it, and answer at once when we can. */
static void request_begin(struct gs_request *rq, const char *method, const char *url,
                          const char *version)
{
    snprintf(rq->method_name, sizeof rq->method_name, "%s", method);
    rq->method = method_parse(method);
    /* libmicrohttpd hands the target over as a C string: a NUL byte in it
     * would silently cut the path. In its buffer the target ends one byte
     * before the version string; a shorter C string means a NUL inside. */
    if (version != NULL && version[0] != '\0' && url != NULL && version > url &&
        rq->raw_target_len != SIZE_MAX && (size_t)(version - url - 1) != rq->raw_target_len) {
        respond_generic_error(rq, MHD_HTTP_BAD_REQUEST, "bad_request",
                              "NUL byte in the request target");
        return;
    }
    const struct route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (route_match(routes[i].pattern, rq->raw_uri, rq->path_len, rq)) {
            r = &routes[i];
            break;
        }
    }
    if (r == NULL) {
        respond_generic_error(rq, MHD_HTTP_NOT_FOUND, "not_found", "no such path");
        return;
    }
    rq->route = r->id;
    if (!(r->methods & rq->method)) {
        char allow[96];
        allow_header(r->methods, allow, sizeof allow);
        respond_405(rq, allow);
        return;
    }
    struct giz_error qerr = {0};
    if (rq->query_len > 0 && giz_form_validate(rq->query, rq->query_len, &qerr) != GIZ_OK) {
        respond_generic_error(rq, MHD_HTTP_BAD_REQUEST, "bad_request",
                              "malformed query string (bad %-encoding)");
        return;
    }
    if (is_admin_route(r->id)) {
        unsigned wait_s = gs_guard_admin_blocked(rq->srv, rq->peer_ip);
        if (wait_s > 0) {
            char ra[16], msg[128];
            snprintf(ra, sizeof ra, "%u", wait_s);
            snprintf(msg, sizeof msg,
                     "too many wrong admin tokens from this address; retry in %u s", wait_s);
            cJSON *j = cJSON_CreateObject();
            if (j != NULL) {
                cJSON_AddStringToObject(j, "error", "too_many_requests");
                cJSON_AddStringToObject(j, "message", msg);
            }
            char *text = j ? cJSON_PrintUnformatted(j) : NULL;
            cJSON_Delete(j);
            struct MHD_Response *resp =
                text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY)
                     : NULL;
            size_t len = text ? strlen(text) : 0;
            cJSON_free(text);
            if (resp != NULL) {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CT);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
            }
            atomic_fetch_add_explicit(&rq->srv->metrics.admin_throttled, 1,
                                      memory_order_relaxed);
            gs_respond_mhd(rq, MHD_HTTP_TOO_MANY_REQUESTS, resp, len);
            return;
        }
        if (!gs_admin_authorized(rq)) {
            /* a guess is a request that offers a token; none at all is not one */
            if (gs_header(rq, MHD_HTTP_HEADER_AUTHORIZATION) != NULL)
                gs_guard_admin_failed(rq->srv, rq->peer_ip);
            gs_respond_error(rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                             "missing or wrong admin token (Authorization: Bearer <token>)");
            return;
        }
    }
    bool upload = r->id == GS_ROUTE_ADMIN_FIRMWARE && rq->method == GS_M_POST;
    const char *ct = gs_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (upload && ct != NULL && strncasecmp(ct, "application/json", 16) == 0)
        upload = false;
    uint64_t cap = upload ? rq->srv->cfg.max_upload : rq->srv->cfg.max_body;
    const char *cl = gs_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && v > cap) {
            char msg[96];
            snprintf(msg, sizeof msg, "request body larger than %" PRIu64 " bytes", cap);
            respond_generic_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg);
            return;
        }
    }
    if (upload) {
        rq->streaming = true;
        gs_firmware_upload_begin(rq);
    }
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    struct gs_server *srv = cls;
    struct gs_request *rq = *con_cls;
    if (rq == NULL) {
        rq = request_new(srv, conn, url);
        if (rq == NULL)
            return MHD_NO;
        rq->raw_target_len = SIZE_MAX; /* url is already unescaped: length unknown */
        *con_cls = rq;
    }
    rq->conn = conn;
    if (!rq->started) {
        rq->started = true;
        gs_guard_head_done(conn);
        request_begin(rq, method, url, version);
        goto out;
    }
    if (*upload_data_size > 0) {
        size_t len = *upload_data_size;
        *upload_data_size = 0;
        if (rq->responded)
            goto out;
        if (rq->streaming) {
            if (!gs_firmware_upload_data(rq, upload_data, len))
                return MHD_NO;
        } else if (!body_append(rq, upload_data, len)) {
            return MHD_NO;
        }
        goto out;
    }
    if (rq->responded)
        goto out;
    if (rq->body_too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", srv->cfg.max_body);
        respond_generic_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg);
        goto out;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].id == rq->route) {
            routes[i].fn(rq);
            break;
        }
    }
    if (!rq->responded) {
        giz_log(GIZ_LOG_ERR, "bug: %s gave no answer", gs_route_name(rq->route));
        respond_generic_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error",
                              "internal error");
    }
out:
    rq->conn = NULL;
    return rq->queue_failed ? MHD_NO : MHD_YES;
}

__attribute__((format(printf, 2, 0))) static void mhd_log_cb(void *cls, const char *fmt,
                                                              va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    gs_guard_mhd_log(cls, buf);
}

/* ======================================================================
 * Start / stop
 * ====================================================================== */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL)
        goto fail;
    if (fseek(f, 0, SEEK_END) != 0)
        goto fail;
    long sz = ftell(f);
    if (sz < 0 || sz > (1 << 20) || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)sz + 1);
    if (buf == NULL || fread(buf, 1, (size_t)sz, f) != (size_t)sz)
        goto fail;
    buf[sz] = '\0';
    fclose(f);
    return buf;
fail:
    giz_log(GIZ_LOG_ERR, "cannot read %s: %s", path, strerror(errno));
    free(buf);
    if (f != NULL)
        fclose(f);
    return NULL;
}

static struct MHD_Daemon *start_daemon(struct gs_server *srv, unsigned port, bool tls)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC;
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
    if (inet_pton(AF_INET, srv->cfg.bind_addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, srv->cfg.bind_addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        giz_log(GIZ_LOG_ERR, "GIZ_BIND_ADDR '%s' is not an IP address", srv->cfg.bind_addr);
        return NULL;
    }
    if (tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem ops[20];
    unsigned n = 0;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log_cb, srv};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb, srv};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)gs_guard_notify_cb,
                                       srv};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                       (intptr_t)srv->cfg.idle_timeout, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                       (intptr_t)srv->cfg.max_connections, NULL};
    if (srv->cfg.per_ip_limit > 0)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                           (intptr_t)srv->cfg.per_ip_limit, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    if (srv->cfg.threads > 1)
        ops[n++] =
            (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)srv->cfg.threads, NULL};
    if (tls) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                           srv->cfg.tls_priorities};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, access_cb, srv,
                                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, srv,
                                            MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (d == NULL)
        giz_log(GIZ_LOG_ERR, "cannot listen on %s port %u (%s%s)", srv->cfg.bind_addr, port,
                tls ? "https" : "http",
                tls ? "; or GIZ_TLS_PRIORITIES is not a valid GnuTLS priority string" : "");
    return d;
}

int gs_http_start(struct gs_server *srv)
{
    gs_store_checkpointer_start(&srv->pool); /* failure: automatic checkpoints */
    if (srv->cfg.head_timeout > 0 && gs_guard_start(srv) != 0)
        return -1;
    srv->http = start_daemon(srv, srv->cfg.http_port, false);
    if (srv->http == NULL)
        return -1;
    giz_log(GIZ_LOG_INFO,
            "listening on http://%s:%u (%u threads; request head within %u s, %u connections "
            "per address, %u in all)",
            srv->cfg.bind_addr, srv->cfg.http_port, srv->cfg.threads, srv->cfg.head_timeout,
            srv->cfg.per_ip_limit, srv->cfg.max_connections);
    if (srv->cfg.https_port == 0)
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        giz_log(GIZ_LOG_ERR, "this libmicrohttpd has no TLS support; unset GIZ_HTTPS_PORT");
        return -1;
    }
    srv->tls_cert_pem = read_file(srv->cfg.tls_cert);
    srv->tls_key_pem = read_file(srv->cfg.tls_key);
    if (srv->tls_cert_pem == NULL || srv->tls_key_pem == NULL)
        return -1;
    srv->https = start_daemon(srv, srv->cfg.https_port, true);
    if (srv->https == NULL)
        return -1;
    giz_log(GIZ_LOG_INFO, "listening on https://%s:%u", srv->cfg.bind_addr, srv->cfg.https_port);
    return 0;
}

void gs_http_stop(struct gs_server *srv)
{
    struct MHD_Daemon *ds[2] = {srv->http, srv->https};
    for (int i = 0; i < 2; i++)
        if (ds[i] != NULL)
            MHD_quiesce_daemon(ds[i]);
    for (int i = 0; i < 2; i++)
        if (ds[i] != NULL)
            MHD_stop_daemon(ds[i]);
    srv->http = srv->https = NULL;
    gs_guard_stop(srv); /* after the daemons: no more connection notifications */
    free(srv->tls_cert_pem);
    free(srv->tls_key_pem);
    srv->tls_cert_pem = srv->tls_key_pem = NULL;
    pthread_mutex_lock(&srv->pool.mu);
    for (unsigned i = 0; i < srv->pool.n_idle; i++)
        giz_store_close(srv->pool.idle[i]);
    srv->pool.n_idle = 0;
    pthread_mutex_unlock(&srv->pool.mu);
    ckpt_stop(&srv->pool);
    explicit_bzero(&srv->pool.pkey, sizeof srv->pool.pkey);
    srv->pool.pkey_set = false;
}
