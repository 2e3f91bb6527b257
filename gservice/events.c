/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The GService's half of the device timeline (issue 14): every device-API
 * request (register, provision, unregister, OTA checks v4.0/v4.1,
 * downloads) becomes one event: when its answer is queued (so one device's
 * sequential requests are in order), a download when libmicrohttpd reports
 * the transfer ended (completed or not). The request thread only builds
 * the event's JSON and puts it in a bounded in-memory queue (a full queue
 * drops it and counts the drop); one writer thread with its own store
 * connection appends what is queued in batches (one transaction each),
 * prunes to the retention bounds about once a second or every
 * EV_PRUNE_EVERY_N events, and records queue drops in the store's counters.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "gservice.h"

#define EV_BATCH 512
/* After the first event of a batch, the writer waits up to this long for
 * more (one transaction per event would cost more than the insert). */
#define EV_GATHER_MS 20
#define EV_PRUNE_EVERY_US 1000000u
/* ... or sooner, once this many were written since the last prune: a
 * device flooding requests overshoots its bound by at most about this. */
#define EV_PRUNE_EVERY_N 4096u

struct gs_event_item {
    char did[GIZ_DID_SIZE];
    char kind[GIZ_EVENT_KIND_SIZE];
    int64_t ts;
    char *fields; /* heap JSON object text */
};

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- per-request notes ------------------------------------------------------ */

static cJSON *ev_obj(struct gs_request *rq)
{
    if (rq->ev == NULL) rq->ev = cJSON_CreateObject();
    return rq->ev;
}

void gs_event_did(struct gs_request *rq, const char *did)
{
    if (did != NULL && gs_valid_did(did)) snprintf(rq->ev_did, sizeof rq->ev_did, "%s", did);
}

void gs_event_str(struct gs_request *rq, const char *key, const char *value)
{
    cJSON *o = ev_obj(rq);
    if (o != NULL && value != NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        cJSON_AddStringToObject(o, key, value);
    }
}

void gs_event_num(struct gs_request *rq, const char *key, double value)
{
    cJSON *o = ev_obj(rq);
    if (o != NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        cJSON_AddNumberToObject(o, key, value);
    }
}

/* The event kind of a request (NULL: not a device-API request). */
static const char *request_kind(const struct gs_request *rq, const char **ota)
{
    *ota = NULL;
    switch (rq->route) {
    case GS_ROUTE_DEV_DEVICES:
        return rq->method == GS_M_DELETE ? "unregister" : "register";
    case GS_ROUTE_DEV_PROVISION:
        return "provision";
    case GS_ROUTE_DEV_SAFE:
        return rq->method == GS_M_POST ? "register" : "provision";
    case GS_ROUTE_OTA_CHECK:
    case GS_ROUTE_OTA_LATEST:
        *ota = "4.1";
        return "ota_check";
    case GS_ROUTE_OTA_TARGET_FID:
        *ota = "4.0";
        return "ota_check";
    case GS_ROUTE_OTA_DOWNLOAD:
        return "download";
    default:
        return NULL;
    }
}

static void enqueue(struct gs_events *ev, const char *did, const char *kind, char *fields)
{
    bool ok = false;
    pthread_mutex_lock(&ev->mu);
    if (ev->started && !ev->stop && ev->n < ev->cap) {
        struct gs_event_item *it = &ev->ring[(ev->head + ev->n) % ev->cap];
        snprintf(it->did, sizeof it->did, "%s", did);
        snprintf(it->kind, sizeof it->kind, "%s", kind);
        it->ts = unix_ms();
        it->fields = fields;
        ev->n++;
        ok = true;
        if (ev->n == 1 || ev->n >= EV_BATCH) pthread_cond_signal(&ev->cv);
    } else if (ev->started) {
        ev->unrecorded_drops++;
    }
    pthread_mutex_unlock(&ev->mu);
    if (!ok) {
        free(fields);
        atomic_fetch_add_explicit(&ev->dropped, 1, memory_order_relaxed);
    }
}

/* Builds and queues rq's event; at_end: called from the completion
 * callback with its termination code toe. */
static void emit(struct gs_request *rq, const char *kind, const char *ota, bool at_end, int toe)
{
    struct gs_events *ev = &rq->srv->events;
    rq->ev_sent = true;
    cJSON *o = ev_obj(rq);
    if (o == NULL) return;
    if (rq->route == GS_ROUTE_DEV_SAFE) cJSON_AddBoolToObject(o, "safe", 1);
    if (ota != NULL) cJSON_AddStringToObject(o, "ota", ota);
    cJSON_AddStringToObject(o, "method", rq->method_name[0] ? rq->method_name : "-");
    cJSON_AddNumberToObject(o, "status", rq->status);
    if (rq->giz_code != 0) cJSON_AddNumberToObject(o, "error_code", rq->giz_code);
    cJSON_AddStringToObject(o, "peer", rq->peer);
    bool completed = at_end && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (rq->route == GS_ROUTE_OTA_DOWNLOAD && at_end) {
        cJSON_AddNumberToObject(o, "bytes", (double)rq->resp_bytes);
        cJSON_AddBoolToObject(o, "completed", completed);
        /* libmicrohttpd reports only "all sent" or not: the byte count of
         * an interrupted transfer is unknown (null) */
        if (completed)
            cJSON_AddNumberToObject(o, "bytes_sent", (double)rq->resp_bytes);
        else
            cJSON_AddNullToObject(o, "bytes_sent");
    } else if (at_end && !completed) {
        cJSON_AddBoolToObject(o, "completed", 0);
    }
    cJSON_AddNumberToObject(o, "duration_us", (double)(gs_now_us() - rq->start_us));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    rq->ev = NULL;
    if (text == NULL || strlen(text) > GIZ_EVENT_FIELDS_MAX) {
        free(text);
        atomic_fetch_add_explicit(&ev->dropped, 1, memory_order_relaxed);
        return;
    }
    enqueue(ev, rq->ev_did, kind, text);
}

/* Device-API answers are recorded when queued, before the client can read
 * them, so one device's sequential requests are in order; a download only
 * when its transfer ended (its outcome is known then). */
void gs_event_answered(struct gs_request *rq)
{
    const char *ota = NULL, *kind = request_kind(rq, &ota);
    if (kind == NULL || rq->ev_sent || !rq->srv->events.started ||
        rq->route == GS_ROUTE_OTA_DOWNLOAD)
        return;
    emit(rq, kind, ota, false, 0);
}

void gs_event_request_done(struct gs_request *rq, int toe)
{
    const char *ota = NULL, *kind = request_kind(rq, &ota);
    if (kind != NULL && !rq->ev_sent && rq->srv->events.started) emit(rq, kind, ota, true, toe);
    cJSON_Delete(rq->ev);
    rq->ev = NULL;
}

/* ---- the writer thread -------------------------------------------------------- */

static void write_batch(struct gs_server *srv, struct giz_store **stp, struct gs_event_item *items,
                        size_t n)
{
    struct gs_events *ev = &srv->events;
    struct giz_event batch[EV_BATCH];
    if (*stp == NULL) {
        struct giz_error err;
        if (giz_store_open(srv->pool.path, stp, &err) != GIZ_OK) {
            *stp = NULL;
            giz_log(GIZ_LOG_ERR, "events: cannot open the store: %s", err.text);
        }
    }
    for (size_t i = 0; i < n; i++) {
        memset(&batch[i], 0, sizeof batch[i]);
        memcpy(batch[i].did, items[i].did, sizeof batch[i].did);
        memcpy(batch[i].kind, items[i].kind, sizeof batch[i].kind);
        batch[i].ts = items[i].ts;
        batch[i].source = "http";
        batch[i].fields = items[i].fields;
    }
    int rc = *stp ? giz_store_event_append(*stp, batch, n, NULL) : GIZ_ERR_DB;
    if (rc == GIZ_OK) {
        atomic_fetch_add_explicit(&ev->written, n, memory_order_relaxed);
    } else {
        giz_log(GIZ_LOG_WARN, "events: %zu not written: %s", n, giz_strerror(rc));
        atomic_fetch_add_explicit(&ev->dropped, n, memory_order_relaxed);
        pthread_mutex_lock(&ev->mu);
        ev->unrecorded_drops += n;
        pthread_mutex_unlock(&ev->mu);
    }
    for (size_t i = 0; i < n; i++)
        free(items[i].fields);
}

static void *writer_main(void *arg)
{
    struct gs_server *srv = arg;
    struct gs_events *ev = &srv->events;
    struct giz_store *st = NULL;
    struct gs_event_item items[EV_BATCH];
    uint64_t last_prune = gs_now_us();
    bool dirty = false;
    size_t since_prune = 0;
    for (;;) {
        size_t n = 0;
        uint64_t drops = 0;
        bool stop;
        pthread_mutex_lock(&ev->mu);
        while (!ev->stop && ev->n == 0 && ev->unrecorded_drops == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            if (pthread_cond_timedwait(&ev->cv, &ev->mu, &until) != 0) break;
        }
        if (ev->n > 0 && ev->n < EV_BATCH && !ev->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += EV_GATHER_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            while (!ev->stop && ev->n < EV_BATCH)
                if (pthread_cond_timedwait(&ev->cv, &ev->mu, &until) != 0) break;
        }
        while (n < EV_BATCH && ev->n > 0) {
            items[n++] = ev->ring[ev->head];
            ev->head = (ev->head + 1) % ev->cap;
            ev->n--;
        }
        drops = ev->unrecorded_drops;
        ev->unrecorded_drops = 0;
        stop = ev->stop && ev->n == 0;
        pthread_mutex_unlock(&ev->mu);
        if (n > 0) {
            write_batch(srv, &st, items, n);
            dirty = true;
            since_prune += n;
        }
        if (drops > 0 && st != NULL &&
            giz_store_event_count_dropped(st, "", "http", (int64_t)drops) != GIZ_OK)
            giz_log(GIZ_LOG_WARN, "events: %" PRIu64 " queue drops not counted", drops);
        uint64_t now = gs_now_us();
        if (st != NULL && dirty &&
            (now - last_prune >= EV_PRUNE_EVERY_US || since_prune >= EV_PRUNE_EVERY_N || stop)) {
            int64_t pruned = 0;
            if (giz_store_event_prune(st, srv->cfg.events_per_device, srv->cfg.events_total,
                                      &pruned) == GIZ_OK)
                atomic_fetch_add_explicit(&ev->pruned, (uint64_t)pruned, memory_order_relaxed);
            last_prune = now;
            dirty = false;
            since_prune = 0;
        }
        if (stop) break;
    }
    giz_store_close(st);
    return NULL;
}

int gs_events_start(struct gs_server *srv)
{
    struct gs_events *ev = &srv->events;
    if (!srv->cfg.events || ev->started) return 0;
    ev->cap = srv->cfg.events_queue;
    ev->ring = calloc(ev->cap, sizeof *ev->ring);
    if (ev->ring == NULL || pthread_mutex_init(&ev->mu, NULL) != 0) {
        free(ev->ring);
        ev->ring = NULL;
        giz_log(GIZ_LOG_ERR, "events: out of memory");
        return -1;
    }
    pthread_cond_init(&ev->cv, NULL);
    ev->started = true;
    if (pthread_create(&ev->thread, NULL, writer_main, srv) != 0) {
        ev->started = false;
        pthread_cond_destroy(&ev->cv);
        pthread_mutex_destroy(&ev->mu);
        free(ev->ring);
        ev->ring = NULL;
        giz_log(GIZ_LOG_ERR, "events: cannot start the writer thread");
        return -1;
    }
    giz_log(GIZ_LOG_INFO, "events on: newest %u per device, %" PRIu64 " in all, queue %u",
            srv->cfg.events_per_device, srv->cfg.events_total, ev->cap);
    return 0;
}

void gs_events_stop(struct gs_server *srv)
{
    struct gs_events *ev = &srv->events;
    if (!ev->started) return;
    pthread_mutex_lock(&ev->mu);
    ev->stop = true;
    pthread_cond_signal(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
    pthread_join(ev->thread, NULL); /* writes what is queued first */
    ev->started = false;
    for (unsigned i = 0; i < ev->n; i++)
        free(ev->ring[(ev->head + i) % ev->cap].fields);
    free(ev->ring);
    ev->ring = NULL;
    pthread_cond_destroy(&ev->cv);
    pthread_mutex_destroy(&ev->mu);
}
