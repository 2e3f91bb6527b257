/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The device timeline's admin API: GET /admin/devices/<DID>/events (a page
 * of one device's events, oldest first, with the next cursor and the
 * device's drop count) and GET /admin/events/stream[?did=] (Server-Sent
 * Events: "id: <event id>" and one JSON event per "data:" line; resumes
 * after Last-Event-ID; a comment line every GS_STREAM_HEARTBEAT_S). A
 * stream polls the events table by id (so events another process writes,
 * e.g. the broker plugin, appear too): its libmicrohttpd content callback
 * reads what is new and, when nothing is, suspends the connection; a ticker
 * thread resumes every suspended stream each GS_STREAM_TICK_MS. At most
 * cfg.event_streams streams are open at once (503 beyond).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"

#define EVENTS_LIMIT_MAX 1000u
#define STREAM_BATCH 200u
#define STREAM_BUF_MAX (4u << 20)

/* ---- query checks ------------------------------------------------------------- */

/* kind: 1..23 of [a-z0-9_] */
static bool kind_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n >= GIZ_EVENT_KIND_SIZE) return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return false;
    return true;
}

/* An optional decimal query parameter into *out (kept when absent).
 * false after answering 400. */
static bool query_i64(struct gs_request *rq, const char *key, uint64_t max, int64_t *out)
{
    char buf[32];
    uint64_t v = 0;
    int rc = gs_query_get(rq, key, buf, sizeof buf);
    if (rc == GIZ_ERR_NOT_FOUND) return true;
    if (rc != GIZ_OK || giz_parse_uint(buf, 10, 0, max, &v) != GIZ_OK) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a number up to %" PRIu64, key, max);
        gs_respond_error(rq, 400, "bad_request", msg);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* ---- GET /admin/devices/<DID>/events --------------------------------------- */

struct page {
    struct giz_buf b;
    unsigned n;
    int64_t last_id;
    bool failed;
};

static int page_cb(const struct giz_event *ev, void *ud)
{
    struct page *p = ud;
    if (giz_buf_printf(&p->b, "%s%s", p->n ? "," : "", ev->json) != GIZ_OK) {
        p->failed = true;
        return 1;
    }
    p->n++;
    p->last_id = ev->id;
    return 0;
}

void gs_route_admin_device_events(struct gs_request *rq)
{
    const char *did = rq->param[0];
    int64_t since = 0, since_ts = -1, limit = 100, dropped = 0;
    char kind[GIZ_EVENT_KIND_SIZE + 8] = "";
    if (!gs_valid_did(did)) {
        gs_respond_error(rq, 404, "not_found", "no such device");
        return;
    }
    if (!query_i64(rq, "since", INT64_MAX, &since) ||
        !query_i64(rq, "since_ts", INT64_MAX, &since_ts) ||
        !query_i64(rq, "limit", EVENTS_LIMIT_MAX, &limit))
        return;
    if (limit == 0) {
        gs_respond_error(rq, 400, "bad_request", "limit must be 1 to 1000");
        return;
    }
    int krc = gs_query_get(rq, "kind", kind, sizeof kind);
    if (krc != GIZ_ERR_NOT_FOUND && (krc != GIZ_OK || !kind_ok(kind))) {
        gs_respond_error(rq, 400, "bad_request", "kind must be 1 to 23 of [a-z0-9_]");
        return;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return;
    }
    struct page p = {.n = 0, .last_id = 0, .failed = false};
    giz_buf_init(&p.b, STREAM_BUF_MAX);
    struct giz_event_query q = {did, since, since_ts, krc == GIZ_OK ? kind : NULL, (unsigned)limit};
    int rc = giz_buf_printf(&p.b, "{\"did\":\"%s\",\"events\":[", did);
    if (rc == GIZ_OK) rc = giz_store_event_list(st, &q, page_cb, &p);
    if (rc == GIZ_OK) rc = giz_store_event_dropped(st, did, NULL, &dropped);
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_OK && !p.failed) {
        if (p.n == (unsigned)limit)
            rc = giz_buf_printf(&p.b, "],\"next\":%" PRId64 ",\"dropped\":%" PRId64 "}", p.last_id,
                                dropped);
        else
            rc = giz_buf_printf(&p.b, "],\"next\":null,\"dropped\":%" PRId64 "}", dropped);
    }
    if (rc != GIZ_OK || p.failed) {
        giz_log(GIZ_LOG_ERR, "events of %s: %s", did, giz_strerror(rc ? rc : GIZ_ERR_NOMEM));
        gs_respond_error(rq, 500, "server_error", "events cannot be read");
    } else {
        gs_respond_buf(rq, 200, "application/json", p.b.data, p.b.len);
    }
    giz_buf_free(&p.b);
}

/* ---- GET /admin/events/stream ----------------------------------------------- */

struct gs_stream {
    struct gs_server *srv;
    struct MHD_Connection *conn;
    char did[GIZ_DID_SIZE]; /* "" = all devices */
    bool one_device;
    int64_t cursor; /* last event id sent */
    uint64_t last_send_us;
    bool suspended;     /* under smu */
    struct giz_buf out; /* text not yet handed to libmicrohttpd */
    size_t out_off;
    struct gs_stream *next; /* under smu */
};

static int stream_cb(const struct giz_event *ev, void *ud)
{
    struct gs_stream *s = ud;
    if (giz_buf_printf(&s->out, "id: %" PRId64 "\ndata: %s\n\n", ev->id, ev->json) != GIZ_OK)
        return 1;
    s->cursor = ev->id;
    return 0;
}

/* Reads what is new into s->out. */
static void stream_poll(struct gs_stream *s)
{
    struct giz_store *st = gs_store_acquire(&s->srv->pool);
    if (st == NULL) return;
    struct giz_event_query q = {s->one_device ? s->did : NULL, s->cursor, -1, NULL, STREAM_BATCH};
    int rc = giz_store_event_list(st, &q, stream_cb, s);
    gs_store_release(&s->srv->pool, st);
    if (rc != GIZ_OK) giz_log(GIZ_LOG_WARN, "event stream: %s", giz_strerror(rc));
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct gs_stream *s = cls;
    struct gs_events *ev = &s->srv->events;
    if (s->out_off >= s->out.len) {
        s->out.len = 0;
        s->out_off = 0;
        stream_poll(s);
        uint64_t now = gs_now_us();
        if (s->out.len > 0)
            s->last_send_us = now;
        else if (now - s->last_send_us >= (uint64_t)GS_STREAM_HEARTBEAT_S * 1000000u) {
            if (giz_buf_printf(&s->out, ": heartbeat\n\n") == GIZ_OK) s->last_send_us = now;
        }
    }
    if (s->out_off < s->out.len) {
        size_t n = s->out.len - s->out_off;
        if (n > max) n = max;
        memcpy(buf, s->out.data + s->out_off, n);
        s->out_off += n;
        return (ssize_t)n;
    }
    /* nothing new: sleep until the ticker resumes us */
    pthread_mutex_lock(&ev->smu);
    bool stop = ev->streams_stop;
    if (!stop) {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&ev->smu);
    return stop ? MHD_CONTENT_READER_END_OF_STREAM : 0;
}

static void stream_free(void *cls)
{
    struct gs_stream *s = cls;
    struct gs_events *ev = &s->srv->events;
    pthread_mutex_lock(&ev->smu);
    for (struct gs_stream **pp = &ev->stream_head; *pp != NULL; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&ev->smu);
    atomic_fetch_sub_explicit(&ev->streams, 1, memory_order_relaxed);
    giz_buf_free(&s->out);
    free(s);
}

/* Where a new stream starts: after Last-Event-ID, else after ?since=, else
 * after the newest event now (live only). false after answering. */
static bool stream_start_id(struct gs_request *rq, int64_t *cursor)
{
    const char *h = gs_header(rq, MHD_HTTP_HEADER_LAST_EVENT_ID);
    uint64_t v = 0;
    if (h != NULL && h[0] != '\0') {
        if (giz_parse_uint(h, 10, 0, INT64_MAX, &v) != GIZ_OK) {
            gs_respond_error(rq, 400, "bad_request", "Last-Event-ID must be an event id");
            return false;
        }
        *cursor = (int64_t)v;
        return true;
    }
    int64_t since = -1;
    if (!query_i64(rq, "since", INT64_MAX, &since)) return false;
    if (since >= 0) {
        *cursor = since;
        return true;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    int rc = st ? giz_store_event_last_id(st, cursor) : GIZ_ERR_DB;
    gs_store_release(&rq->srv->pool, st);
    if (rc != GIZ_OK) {
        gs_respond_error(rq, 500, "server_error", "events cannot be read");
        return false;
    }
    return true;
}

void gs_route_admin_event_stream(struct gs_request *rq)
{
    struct gs_events *ev = &rq->srv->events;
    char did[GIZ_DID_SIZE + 8] = "";
    int drc = gs_query_get(rq, "did", did, sizeof did);
    if (drc != GIZ_ERR_NOT_FOUND && (drc != GIZ_OK || !gs_valid_did(did))) {
        gs_respond_error(rq, 400, "bad_request", "did must be 22 base62 characters");
        return;
    }
    int64_t cursor = 0;
    if (!stream_start_id(rq, &cursor)) return;
    if (!ev->streams_init || ev->streams_stop) {
        gs_respond_error(rq, 503, "unavailable", "event streams are off");
        return;
    }
    unsigned open = atomic_fetch_add_explicit(&ev->streams, 1, memory_order_relaxed);
    if (open >= rq->srv->cfg.event_streams) {
        atomic_fetch_sub_explicit(&ev->streams, 1, memory_order_relaxed);
        gs_respond_error(rq, 503, "too_many_streams", "too many event streams are open");
        return;
    }
    struct gs_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        atomic_fetch_sub_explicit(&ev->streams, 1, memory_order_relaxed);
        gs_respond_error(rq, 500, "server_error", "out of memory");
        return;
    }
    s->srv = rq->srv;
    s->conn = rq->conn;
    s->one_device = drc == GIZ_OK;
    snprintf(s->did, sizeof s->did, "%.*s", (int)(sizeof s->did - 1), s->one_device ? did : "");
    s->cursor = cursor;
    s->last_send_us = gs_now_us();
    giz_buf_init(&s->out, STREAM_BUF_MAX);
    giz_buf_printf(&s->out, "retry: 2000\n\n");
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, stream_free);
    if (resp == NULL) {
        giz_buf_free(&s->out);
        free(s);
        atomic_fetch_sub_explicit(&ev->streams, 1, memory_order_relaxed);
        gs_respond_error(rq, 500, "server_error", "out of memory");
        return;
    }
    pthread_mutex_lock(&ev->smu);
    s->next = ev->stream_head;
    ev->stream_head = s;
    pthread_mutex_unlock(&ev->smu);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    gs_respond_mhd(rq, 200, resp, 0);
}

/* ---- the ticker ------------------------------------------------------------------ */

static void resume_all(struct gs_events *ev)
{
    for (struct gs_stream *s = ev->stream_head; s != NULL; s = s->next)
        if (s->suspended) {
            s->suspended = false;
            MHD_resume_connection(s->conn);
        }
}

static void *ticker_main(void *arg)
{
    struct gs_events *ev = arg;
    pthread_mutex_lock(&ev->smu);
    while (ev->streams_init) {
        resume_all(ev);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += GS_STREAM_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ev->scv, &ev->smu, &until);
    }
    pthread_mutex_unlock(&ev->smu);
    return NULL;
}

int gs_streams_init(struct gs_server *srv)
{
    struct gs_events *ev = &srv->events;
    if (ev->streams_init) return 0;
    if (pthread_mutex_init(&ev->smu, NULL) != 0) return -1;
    pthread_cond_init(&ev->scv, NULL);
    ev->streams_init = true;
    ev->streams_stop = false;
    if (pthread_create(&ev->ticker, NULL, ticker_main, ev) != 0) {
        ev->streams_init = false;
        pthread_cond_destroy(&ev->scv);
        pthread_mutex_destroy(&ev->smu);
        giz_log(GIZ_LOG_ERR, "events: cannot start the stream ticker");
        return -1;
    }
    ev->ticker_started = true;
    return 0;
}

void gs_streams_shutdown(struct gs_server *srv)
{
    struct gs_events *ev = &srv->events;
    if (!ev->streams_init) return;
    pthread_mutex_lock(&ev->smu);
    ev->streams_stop = true;
    resume_all(ev);
    pthread_mutex_unlock(&ev->smu);
}

void gs_streams_free(struct gs_server *srv)
{
    struct gs_events *ev = &srv->events;
    if (!ev->streams_init) return;
    pthread_mutex_lock(&ev->smu);
    ev->streams_init = false;
    pthread_cond_signal(&ev->scv);
    pthread_mutex_unlock(&ev->smu);
    if (ev->ticker_started) pthread_join(ev->ticker, NULL);
    ev->ticker_started = false;
    pthread_cond_destroy(&ev->scv);
    pthread_mutex_destroy(&ev->smu);
}
