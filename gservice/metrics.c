/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Operational endpoints of giz-gservice: lock-free request counters and a
 * latency histogram per route, rendered by GET /metrics in the Prometheus
 * text exposition format (with device gauges read from the store), and
 * GET /healthz, which answers 200 only when the store can be queried.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"
#include "ws_app.h"

/* Status codes with their own counter; anything else goes to slot 0. */
static const unsigned status_slots[16] = {0,   200, 201, 202, 206, 302, 400, 401,
                                          403, 404, 405, 409, 413, 416, 500, 503};

/* Upper bounds of the latency buckets, microseconds. */
static const uint64_t bucket_us[GS_HIST_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

/* Gizwits error_codes with their own counter (slot 0 = none answered, the
 * last slot = any other code). */
static const int code_slots[GS_CODE_SLOTS - 1] = {0,
                                                  GS_E_PRODUCT_KEY_INVALID,
                                                  GS_E_APPID_INVALID,
                                                  GS_E_TOKEN_INVALID,
                                                  GS_E_TOKEN_EXPIRED,
                                                  GS_E_SERVER_ERROR,
                                                  GS_E_DEVICE_NOT_FOUND,
                                                  GS_E_FORM_INVALID,
                                                  GS_E_DID_PASSCODE_INVALID,
                                                  GS_E_DEVICE_NOT_BOUND,
                                                  GS_E_USERNAME_UNAVAILABLE,
                                                  GS_E_USERNAME_PASSWORD_ERROR,
                                                  GS_E_DEVICE_DISABLED,
                                                  GS_E_OTA_NO_RULE,
                                                  GS_E_OTA_NOT_IN_EFFECT};

static unsigned code_slot(int code)
{
    if (code == 0) return 0;
    for (unsigned i = 1; i < GS_CODE_SLOTS - 1; i++)
        if (code_slots[i] == code) return i;
    return GS_CODE_SLOTS - 1;
}

static unsigned status_slot(unsigned status)
{
    for (unsigned i = 1; i < 16; i++)
        if (status_slots[i] == status) return i;
    return 0;
}

void gs_metrics_observe(struct gs_metrics *m, enum gs_route_id route, unsigned status,
                        uint64_t duration_us, uint64_t bytes)
{
    gs_metrics_observe_code(m, route, status, 0, duration_us, bytes);
}

void gs_metrics_observe_code(struct gs_metrics *m, enum gs_route_id route, unsigned status,
                             int giz_code, uint64_t duration_us, uint64_t bytes)
{
    if ((int)route < 0 || route >= GS_ROUTE_COUNT) route = GS_ROUTE_NONE;
    atomic_fetch_add_explicit(&m->requests[route][status_slot(status)][code_slot(giz_code)], 1,
                              memory_order_relaxed);
    unsigned b = 0;
    while (b < GS_HIST_BUCKETS && duration_us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&m->latency_bucket[route][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_us[route], duration_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_count[route], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->bytes_out, bytes, memory_order_relaxed);
}

/* The exposition text, capped (a full one is a few hundred KiB at most). */
#define METRICS_MAX (4u << 20)
struct text {
    struct giz_buf b;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    if (giz_buf_vprintf(&t->b, fmt, ap) != GIZ_OK) t->failed = true;
    va_end(ap);
}

static uint64_t ld(atomic_uint_fast64_t *v)
{
    return (uint64_t)atomic_load_explicit(v, memory_order_relaxed);
}

/* gizcloud_http_requests_total by route and status, and by the Gizwits
 * error_code where the answer carried one. */
static void put_requests(struct text *t, struct gs_metrics *m)
{
    put(t, "# HELP gizcloud_http_requests_total HTTP requests by route and status (and "
           "error_code: the Gizwits code answered, if any).\n"
           "# TYPE gizcloud_http_requests_total counter\n");
    for (unsigned r = 0; r < GS_ROUTE_COUNT; r++)
        for (unsigned s = 0; s < 16; s++)
            for (unsigned c = 0; c < GS_CODE_SLOTS; c++) {
                uint64_t v = ld(&m->requests[r][s][c]);
                if (v == 0) continue;
                char st[16], code[40] = "";
                if (s == 0)
                    snprintf(st, sizeof st, "other");
                else
                    snprintf(st, sizeof st, "%u", status_slots[s]);
                if (c == GS_CODE_SLOTS - 1)
                    snprintf(code, sizeof code, ",error_code=\"other\"");
                else if (c > 0)
                    snprintf(code, sizeof code, ",error_code=\"%d\"", code_slots[c]);
                put(t, "gizcloud_http_requests_total{route=\"%s\",status=\"%s\"%s} %" PRIu64 "\n",
                    gs_route_name((enum gs_route_id)r), st, code, v);
            }
}

/* gizcloud_http_request_duration_seconds histograms by route. */
static void put_latency(struct text *t, struct gs_metrics *m)
{
    put(t, "# HELP gizcloud_http_request_duration_seconds Time from request line to queued "
           "answer.\n"
           "# TYPE gizcloud_http_request_duration_seconds histogram\n");
    for (unsigned r = 0; r < GS_ROUTE_COUNT; r++) {
        uint64_t count = ld(&m->latency_count[r]);
        if (count == 0) continue;
        const char *name = gs_route_name((enum gs_route_id)r);
        uint64_t cum = 0;
        for (unsigned b = 0; b < GS_HIST_BUCKETS; b++) {
            cum += ld(&m->latency_bucket[r][b]);
            put(t,
                "gizcloud_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64
                "\n",
                name, (double)bucket_us[b] / 1e6, cum);
        }
        cum += ld(&m->latency_bucket[r][GS_HIST_BUCKETS]);
        put(t,
            "gizcloud_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
            name, cum);
        put(t, "gizcloud_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
            (double)ld(&m->latency_sum_us[r]) / 1e6);
        put(t, "gizcloud_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n", name,
            count);
    }
}

/* The process-wide counters. */
static void put_counters(struct text *t, struct gs_server *srv)
{
    struct gs_metrics *m = &srv->metrics;
    put(t,
        "# HELP gizcloud_http_response_bytes_total Response body bytes queued.\n"
        "# TYPE gizcloud_http_response_bytes_total counter\n"
        "gizcloud_http_response_bytes_total %" PRIu64 "\n",
        ld(&m->bytes_out));
    put(t,
        "# HELP gizcloud_ota_pushes_total OTA pushes handed to the broker outbox.\n"
        "# TYPE gizcloud_ota_pushes_total counter\n"
        "gizcloud_ota_pushes_total %" PRIu64 "\n",
        ld(&m->ota_pushes));
    put(t,
        "# HELP gizcloud_firmware_uploads_total Firmware files stored.\n"
        "# TYPE gizcloud_firmware_uploads_total counter\n"
        "gizcloud_firmware_uploads_total %" PRIu64 "\n",
        ld(&m->firmware_uploads));
    put(t,
        "# HELP gizcloud_http_head_timeouts_total Connections closed for not sending a "
        "complete request head within GIZ_HTTP_HEAD_TIMEOUT.\n"
        "# TYPE gizcloud_http_head_timeouts_total counter\n"
        "gizcloud_http_head_timeouts_total %" PRIu64 "\n",
        ld(&m->head_timeouts));
    struct gs_events *ev = &srv->events;
    put(t,
        "# HELP gizcloud_events_written_total Device timeline events written to the store.\n"
        "# TYPE gizcloud_events_written_total counter\n"
        "gizcloud_events_written_total %" PRIu64 "\n",
        ld(&ev->written));
    put(t,
        "# HELP gizcloud_events_dropped_total Device timeline events lost before the store "
        "(queue full, too large, failed write).\n"
        "# TYPE gizcloud_events_dropped_total counter\n"
        "gizcloud_events_dropped_total %" PRIu64 "\n",
        ld(&ev->dropped));
    put(t,
        "# HELP gizcloud_events_pruned_total Device timeline events removed by the retention "
        "bounds (this process's prunes).\n"
        "# TYPE gizcloud_events_pruned_total counter\n"
        "gizcloud_events_pruned_total %" PRIu64 "\n",
        ld(&ev->pruned));
    put(t,
        "# HELP gizcloud_event_streams Open GET /admin/events/stream answers.\n"
        "# TYPE gizcloud_event_streams gauge\n"
        "gizcloud_event_streams %u\n",
        atomic_load_explicit(&ev->streams, memory_order_relaxed));
    put(t,
        "# HELP gizcloud_admin_throttled_total Admin calls refused with 429 after too many "
        "wrong tokens from their address.\n"
        "# TYPE gizcloud_admin_throttled_total counter\n"
        "gizcloud_admin_throttled_total %" PRIu64 "\n",
        ld(&m->admin_throttled));
}

/* The brokers' own series (each live broker's snapshot in the registry,
 * schema 008/012): only lines of gizcloud_broker_* series and their
 * HELP/TYPE comments pass; every sample gets a broker="<name>" label (names
 * are [A-Za-z0-9._:-], nothing to escape), and the samples of one family
 * from all brokers follow its one HELP/TYPE pair, as the text format wants. */
#define SNAP_MAX 64     /* brokers shown */
#define FAMILY_MAX 256  /* families per scrape */
#define FAMILY_NAME 128 /* longest family name kept */

struct snap {
    char name[GIZ_BROKER_NAME_SIZE];
    char *text;
};
struct snaps {
    struct snap s[SNAP_MAX];
    unsigned n;
    bool nomem;
};

static int snap_cb(const char *name, const char *text, void *ud)
{
    struct snaps *ss = ud;
    if (ss->n >= SNAP_MAX) return 1;
    struct snap *x = &ss->s[ss->n];
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->text = strdup(text);
    if (x->text == NULL) {
        ss->nomem = true;
        return 1;
    }
    ss->n++;
    return 0;
}

static bool broker_line(const char *p, size_t n)
{
    return (n > 16 && strncmp(p, "gizcloud_broker_", 16) == 0) ||
           (n > 23 && (strncmp(p, "# HELP gizcloud_broker_", 23) == 0 ||
                       strncmp(p, "# TYPE gizcloud_broker_", 23) == 0));
}

/* The metric name a line is about (a sample's or a comment's) into out. */
static void line_metric(const char *p, size_t n, char *out, size_t cap)
{
    size_t i = 0, k = 0;
    if (p[0] == '#') i = 7; /* "# HELP " / "# TYPE " */
    while (i < n && p[i] != ' ' && p[i] != '{' && k + 1 < cap)
        out[k++] = p[i++];
    out[k] = '\0';
}

/* Calls fn for each kept line of text with its family name: a comment's
 * metric, or for a sample the family declared last if the sample's name
 * starts with it (histogram parts), else its own name. */
static void
each_line(const char *text,
          void (*fn)(void *ud, const char *p, size_t n, const char *family, bool comment), void *ud)
{
    char family[FAMILY_NAME] = "", m[FAMILY_NAME];
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (broker_line(p, n)) {
            line_metric(p, n, m, sizeof m);
            if (p[0] == '#') {
                memcpy(family, m, sizeof family);
                fn(ud, p, n, family, true);
            } else {
                size_t fl = strlen(family);
                fn(ud, p, n, fl > 0 && strncmp(m, family, fl) == 0 ? family : m, false);
            }
        }
        p += n;
        if (*p == '\n') p++;
    }
}

struct families {
    char name[FAMILY_MAX][FAMILY_NAME];
    unsigned n;
};

static void family_add_cb(void *ud, const char *p, size_t n, const char *family, bool comment)
{
    struct families *f = ud;
    (void)p;
    (void)n;
    (void)comment;
    for (unsigned i = 0; i < f->n; i++)
        if (strcmp(f->name[i], family) == 0) return;
    if (f->n < FAMILY_MAX) memcpy(f->name[f->n++], family, FAMILY_NAME);
}

struct emit {
    struct text *t;
    const char *family, *broker;
    bool comments; /* this pass writes the family's HELP/TYPE, else its samples */
    bool wrote_comment;
};

static void append(struct text *t, const char *p, size_t n)
{
    if (!t->failed && giz_buf_append(&t->b, p, n) != GIZ_OK) t->failed = true;
}

static void emit_cb(void *ud, const char *p, size_t n, const char *family, bool comment)
{
    struct emit *e = ud;
    if (strcmp(family, e->family) != 0 || comment != e->comments) return;
    if (comment) {
        append(e->t, p, n);
        append(e->t, "\n", 1);
        e->wrote_comment = true;
        return;
    }
    size_t k = 0; /* the metric name, then the label */
    while (k < n && p[k] != ' ' && p[k] != '{')
        k++;
    append(e->t, p, k);
    append(e->t, "{broker=\"", 9);
    append(e->t, e->broker, strlen(e->broker));
    if (k < n && p[k] == '{') {
        bool empty = k + 1 < n && p[k + 1] == '}';
        append(e->t, empty ? "\"" : "\",", empty ? 1 : 2);
        append(e->t, p + k + 1, n - k - 1);
    } else {
        append(e->t, "\"}", 2);
        append(e->t, p + k, n - k);
    }
    append(e->t, "\n", 1);
}

static void put_broker_series(struct text *t, const struct snaps *ss)
{
    struct families *f = calloc(1, sizeof *f);
    if (f == NULL) {
        t->failed = true;
        return;
    }
    for (unsigned i = 0; i < ss->n; i++)
        each_line(ss->s[i].text, family_add_cb, f);
    for (unsigned k = 0; k < f->n; k++) {
        struct emit e = {.t = t, .family = f->name[k], .comments = true};
        for (unsigned i = 0; i < ss->n && !e.wrote_comment; i++) /* one HELP/TYPE pair */
            each_line(ss->s[i].text, emit_cb, &e);
        e.comments = false;
        for (unsigned i = 0; i < ss->n; i++) {
            e.broker = ss->s[i].name;
            each_line(ss->s[i].text, emit_cb, &e);
        }
    }
    free(f);
}

struct up_walk {
    struct text *t;
};

static int up_cb(const struct giz_broker *b, void *ud)
{
    struct up_walk *w = ud;
    put(w->t, "gizcloud_broker_up{broker=\"%s\"} %d\n", b->name, b->alive ? 1 : 0);
    return 0;
}

/* What the store says: broker liveness, device counts, the broker's series. */
static void put_store(struct text *t, struct gs_request *rq)
{
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    int64_t all = -1, online = -1, age_ms = -1;
    bool alive = false;
    struct snaps *ss = calloc(1, sizeof *ss);
    if (ss == NULL) t->failed = true;
    if (st != NULL && ss != NULL) {
        alive = gs_broker_alive(rq->srv, st, &age_ms);
        /* dead brokers' counters are not shown */
        if (alive && (giz_store_broker_metrics_each(st, gs_broker_max_age_ms(rq->srv), snap_cb,
                                                    ss) != GIZ_OK ||
                      ss->nomem))
            ss->n = 0; /* what was copied is freed below */
        if (giz_store_device_count(st, NULL, false, &all) != GIZ_OK) all = -1;
        if (!alive)
            online = 0; /* stale flags of a dead broker are not presence */
        else if (giz_store_device_count(st, NULL, true, &online) != GIZ_OK)
            online = -1;
        put(t, "# HELP gizcloud_broker_up 1 while this broker's heartbeat in the store's "
               "registry is at most GIZ_BROKER_MAX_AGE old.\n"
               "# TYPE gizcloud_broker_up gauge\n");
        struct up_walk w = {t};
        if (giz_store_broker_list(st, gs_broker_max_age_ms(rq->srv), up_cb, &w) != GIZ_OK)
            giz_log(GIZ_LOG_WARN, "metrics: broker registry not readable");
        gs_store_release(&rq->srv->pool, st);
    }
    put(t,
        "# HELP gizcloud_broker_alive 1 while the broker's store heartbeat is at most "
        "GIZ_BROKER_MAX_AGE old.\n"
        "# TYPE gizcloud_broker_alive gauge\n"
        "gizcloud_broker_alive %d\n",
        alive ? 1 : 0);
    if (age_ms >= 0)
        put(t,
            "# HELP gizcloud_broker_heartbeat_age_seconds Age of the broker's last heartbeat.\n"
            "# TYPE gizcloud_broker_heartbeat_age_seconds gauge\n"
            "gizcloud_broker_heartbeat_age_seconds %.3f\n",
            (double)age_ms / 1000.0);
    if (all >= 0)
        put(t,
            "# HELP gizcloud_devices_registered Devices in the store (all states).\n"
            "# TYPE gizcloud_devices_registered gauge\n"
            "gizcloud_devices_registered %" PRId64 "\n",
            all);
    if (online >= 0)
        put(t,
            "# HELP gizcloud_devices_online Devices the broker reports online.\n"
            "# TYPE gizcloud_devices_online gauge\n"
            "gizcloud_devices_online %" PRId64 "\n",
            online);
    if (ss != NULL) {
        put_broker_series(t, ss);
        for (unsigned i = 0; i < SNAP_MAX; i++) /* snap_cb may have copied one past a failure */
            free(ss->s[i].text);
        free(ss);
    }
}

void gs_route_metrics(struct gs_request *rq)
{
    struct gs_metrics *m = &rq->srv->metrics;
    struct text t = {.failed = false};
    giz_buf_init(&t.b, METRICS_MAX);
    put_requests(&t, m);
    put_latency(&t, m);
    put_counters(&t, rq->srv);
    put_store(&t, rq);
    char *ws = gs_ws_metrics(rq->srv); /* the WebSocket hub (ws_hub.c) */
    if (ws != NULL) put(&t, "%s", ws);
    free(ws);
    char *campaigns = gs_campaigns_metrics(rq->srv); /* the engine's last tick (campaign.c) */
    if (campaigns != NULL) put(&t, "%s", campaigns);
    free(campaigns);
    put(&t,
        "# HELP gizcloud_start_time_seconds Unix time the GService started.\n"
        "# TYPE gizcloud_start_time_seconds gauge\n"
        "gizcloud_start_time_seconds %" PRId64 "\n",
        m->started_at);
    if (t.failed)
        gs_respond_error(rq, 500, "server_error", "out of memory");
    else
        gs_respond_buf(rq, 200, "text/plain; version=0.0.4; charset=utf-8", t.b.data, t.b.len);
    giz_buf_free(&t.b);
}

void gs_route_healthz(struct gs_request *rq)
{
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    int version = st ? giz_store_schema_version(st) : -1;
    gs_store_release(&rq->srv->pool, st);
    cJSON *j = cJSON_CreateObject();
    if (version <= 0) {
        cJSON_Delete(j);
        gs_respond_error(rq, 503, "store_unavailable", "the database cannot be read");
        return;
    }
    cJSON_AddStringToObject(j, "status", "ok");
    cJSON_AddNumberToObject(j, "schema_version", version);
    gs_respond_json(rq, 200, j);
}
