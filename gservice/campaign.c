/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The OTA campaign engine (issue 16): one thread with its own store
 * connection that turns the device timeline into per-device campaign
 * states and sends the notices. Every tick (GS_CAMPAIGN_TICK_MS, or at once
 * when a route wakes it) runs one transaction: read the events after the
 * persisted cursor that concern a device of a live campaign (OTA checks,
 * downloads, 0x022C / 0x021C reports in publish_in payloads, subscribes),
 * advance each device's state from that evidence, fail devices without
 * progress for the campaign's timeout, apply the canary gate, the failure
 * threshold, the validity period and completion, then queue 0x0211 notices
 * (GIZ_OUTBOX_OTA_PUSH rows with the DID) for pending devices that are
 * online, within the daily window, at most GS_CAMPAIGN_NOTICE_BATCH a tick;
 * a device that logs in again after a notice it never acted on (a lost
 * notice: the broker restarted, the device was gone) is told again, one
 * that checked but did not take the update only on a new UTC day or when
 * the campaign is forced. Every state change is also an "ota_campaign"
 * event in the device's timeline. The cursor is written in the same
 * transaction as the states, so a restart of the GService or the broker
 * neither loses nor repeats evidence.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "giz/map.h"
#include "giz/proto.h"
#include "gservice.h"

#define EVIDENCE_BATCH 2000u
#define EVIDENCE_ROUNDS 8 /* batches per tick at most */
#define LIVE_MAX 256      /* live campaigns handled per tick */
#define MS_PER_DAY 86400000

/* One live campaign of this tick. */
struct live {
    struct giz_campaign c;
};

/* A device row touched in this tick (the map's values). */
struct touched {
    struct giz_cdev row;
    int first_state; /* as read */
    bool renotice;   /* logged in again: tell it again if the rules allow */
};

struct tick {
    struct gs_server *srv;
    struct giz_store *st;
    int64_t now_ms, day;
    struct live *live;
    size_t n_live;
    struct giz_map rows; /* "<campaign id>/<did>" -> struct touched */
    struct giz_event *events;
    char **event_fields;
    size_t n_events, cap_events;
    bool nomem;
};

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct giz_campaign *live_find(const struct tick *t, int64_t id)
{
    for (size_t i = 0; i < t->n_live; i++)
        if (t->live[i].c.id == id) return &t->live[i].c;
    return NULL;
}

static struct touched *touch(struct tick *t, const struct giz_cdev *row)
{
    char key[48];
    int n = snprintf(key, sizeof key, "%" PRId64 "/%s", row->campaign_id, row->did);
    struct touched *tc = giz_map_get(&t->rows, key, (size_t)n);
    if (tc != NULL) return tc;
    tc = calloc(1, sizeof *tc);
    if (tc == NULL || giz_map_put(&t->rows, key, (size_t)n, tc, NULL) != GIZ_OK) {
        free(tc);
        t->nomem = true;
        return NULL;
    }
    tc->row = *row;
    tc->first_state = row->state;
    return tc;
}

/* Queues an "ota_campaign" timeline event for the row's device. */
static void note_event(struct tick *t, const struct giz_cdev *d, int from)
{
    if (t->n_events == t->cap_events) {
        size_t cap = t->cap_events ? t->cap_events * 2 : 256;
        struct giz_event *e = realloc(t->events, cap * sizeof *e);
        if (e == NULL) {
            t->nomem = true;
            return;
        }
        t->events = e;
        char **f = realloc(t->event_fields, cap * sizeof *f);
        if (f == NULL) {
            t->nomem = true;
            return;
        }
        t->event_fields = f;
        t->cap_events = cap;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return;
    cJSON_AddNumberToObject(o, "campaign", (double)d->campaign_id);
    cJSON_AddStringToObject(o, "state", giz_cdev_state_name(d->state));
    cJSON_AddStringToObject(o, "from", giz_cdev_state_name(from));
    if (d->reason[0]) cJSON_AddStringToObject(o, "reason", d->reason);
    if (d->version[0]) cJSON_AddStringToObject(o, "version", d->version);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) return;
    struct giz_event *e = &t->events[t->n_events];
    memset(e, 0, sizeof *e);
    snprintf(e->did, sizeof e->did, "%s", d->did);
    snprintf(e->kind, sizeof e->kind, "ota_campaign");
    e->ts = t->now_ms;
    e->source = "http"; /* the GService's events */
    e->fields = text;
    t->event_fields[t->n_events++] = text;
}

/* Moves d to state (campaign_evidence.c), noting the change in the timeline. */
static void changed_cb(void *ud, const struct giz_cdev *d, int from)
{
    note_event(ud, d, from);
}

static void set_state(struct tick *t, struct giz_cdev *d, int state, int64_t ts, const char *why)
{
    struct gs_cev_sink sink = {changed_cb, t};
    gs_cev_set_state(d, state, ts, why, &sink);
}

static int evidence_cb(const struct giz_event *ev, const struct giz_cdev *row, void *ud)
{
    struct tick *t = ud;
    const struct giz_campaign *c = live_find(t, row->campaign_id);
    if (c == NULL || c->state == GIZ_CAMPAIGN_CANCELLED) return 0;
    struct touched *tc = touch(t, row);
    if (tc == NULL) return 1;
    struct giz_cdev *d = &tc->row;
    struct gs_cev_sink sink = {changed_cb, t};
    if (gs_cev_apply(c, d, ev->kind, ev->fields, ev->ts, &sink)) tc->renotice = true;
    return 0;
}

/* ---- per-campaign rules --------------------------------------------------------- */

static bool in_window(const struct giz_campaign *c, int64_t now_ms)
{
    int64_t now_s = now_ms / 1000;
    if (c->starts_at > 0 && now_s < c->starts_at) return false;
    if (c->window_start < 0 || c->window_end < 0 || c->window_start == c->window_end) return true;
    int minute = (int)((now_s % 86400) / 60);
    if (c->window_start < c->window_end) return minute >= c->window_start && minute < c->window_end;
    return minute >= c->window_start || minute < c->window_end; /* across midnight */
}

static int notify(struct tick *t, const struct giz_campaign *c, struct giz_cdev *d);

static int stale_cb(const struct giz_cdev *d, void *ud)
{
    struct tick *t = ud;
    char key[48];
    int n = snprintf(key, sizeof key, "%" PRId64 "/%s", d->campaign_id, d->did);
    if (giz_map_get(&t->rows, key, (size_t)n) != NULL) return 0; /* moved in this tick */
    struct touched *tc = touch(t, d);
    if (tc == NULL) return 1;
    const struct giz_campaign *c = live_find(t, d->campaign_id);
    char why[GIZ_CAMPAIGN_REASON_SIZE];
    if (c != NULL && c->state == GIZ_CAMPAIGN_RUNNING && tc->row.state == GIZ_CDEV_NOTIFIED &&
        tc->row.checked_at < tc->row.notified_at &&
        tc->row.notices <= GS_CAMPAIGN_NOTICE_RETRIES) /* a lost notice: once more */
        return notify(t, c, &tc->row) == GIZ_OK ? 0 : 1;
    snprintf(why, sizeof why, "no progress within %u s (%s)", c ? c->timeout_s : 0,
             giz_cdev_state_name(d->state));
    set_state(t, &tc->row, GIZ_CDEV_FAILED, t->now_ms, why);
    return 0;
}

struct notice_ctx {
    struct tick *t;
    const struct giz_campaign *c;
    unsigned sent;
    int rc;
};

/* Queues one 0x0211 notice for d (already in the map). */
static int notify(struct tick *t, const struct giz_campaign *c, struct giz_cdev *d)
{
    struct giz_outbox_item it;
    memset(&it, 0, sizeof it);
    it.kind = GIZ_OUTBOX_OTA_PUSH;
    snprintf(it.did, sizeof it.did, "%s", d->did);
    snprintf(it.product_key, sizeof it.product_key, "%s", c->product_key);
    it.fw_type = c->fw_type;
    it.ota_version = 41;
    int rc = giz_store_outbox_push(t->st, &it, NULL);
    if (rc != GIZ_OK) return rc;
    d->notices++;
    d->notice_day = t->day;
    d->progress_at = t->now_ms;
    if (d->state == GIZ_CDEV_PENDING)
        set_state(t, d, GIZ_CDEV_NOTIFIED, t->now_ms, NULL);
    else
        d->notified_at = t->now_ms;
    atomic_fetch_add_explicit(&t->srv->campaigns.notices, 1, memory_order_relaxed);
    return GIZ_OK;
}

static int due_cb(const struct giz_cdev *d, void *ud)
{
    struct notice_ctx *n = ud;
    struct touched *tc = touch(n->t, d);
    if (tc == NULL) return 1;
    if (tc->row.state != GIZ_CDEV_PENDING) return 0;
    n->rc = notify(n->t, n->c, &tc->row);
    if (n->rc != GIZ_OK) return 1;
    n->sent++;
    return 0;
}

struct renotice_ctx {
    struct tick *t;
    int rc;
    unsigned sent;
};

/* Devices that logged in again: a lost notice (no check since it) is
 * repeated; one that checked but did not take the update hears again only
 * on a new UTC day or when the campaign is forced. */
static int renotice_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct renotice_ctx *r = ud;
    struct touched *tc = value;
    struct giz_cdev *d = &tc->row;
    const struct giz_campaign *c = live_find(r->t, d->campaign_id);
    (void)key;
    (void)klen;
    if (!tc->renotice || c == NULL || c->state != GIZ_CAMPAIGN_RUNNING ||
        !in_window(c, r->t->now_ms))
        return 0;
    tc->renotice = false;
    bool lost = d->state == GIZ_CDEV_NOTIFIED && d->checked_at < d->notified_at;
    bool again = (d->state == GIZ_CDEV_CHECKED || d->state == GIZ_CDEV_OFFERED) &&
                 (c->force || d->notice_day < r->t->day);
    if (!lost && !again) return 0;
    r->rc = notify(r->t, c, d);
    if (r->rc == GIZ_OK) r->sent++;
    return r->rc != GIZ_OK;
}

struct put_ctx {
    struct giz_cdev *rows;
    size_t n;
};

static int collect_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct put_ctx *p = ud;
    struct touched *tc = value;
    (void)key;
    (void)klen;
    p->rows[p->n++] = tc->row;
    return 0;
}

static int count_cb(const void *key, size_t klen, void *value, void *ud)
{
    (void)key;
    (void)klen;
    (void)value;
    (*(size_t *)ud)++;
    return 0;
}

/* Writes the touched rows and the queued events; empties both. */
static int flush(struct tick *t)
{
    size_t n = 0;
    int rc = GIZ_OK;
    giz_map_foreach(&t->rows, count_cb, &n);
    if (n > 0) {
        struct put_ctx p = {calloc(n, sizeof(struct giz_cdev)), 0};
        if (p.rows == NULL) return GIZ_ERR_NOMEM;
        giz_map_foreach(&t->rows, collect_cb, &p);
        rc = giz_store_cdev_put(t->st, p.rows, p.n);
        free(p.rows);
    }
    giz_map_free(&t->rows, free);
    giz_map_init(&t->rows);
    if (rc == GIZ_OK && t->n_events > 0) {
        for (size_t i = 0; i < t->n_events; i += 512) {
            size_t k = t->n_events - i < 512 ? t->n_events - i : 512;
            rc = giz_store_event_append(t->st, t->events + i, k, NULL);
            if (rc != GIZ_OK) break;
        }
        if (rc == GIZ_OK)
            atomic_fetch_add_explicit(&t->srv->campaigns.transitions, t->n_events,
                                      memory_order_relaxed);
    }
    for (size_t i = 0; i < t->n_events; i++)
        free(t->event_fields[i]);
    t->n_events = 0;
    return rc;
}

static int campaign_end(struct tick *t, struct giz_campaign *c, int state, const char *why)
{
    int rc = giz_store_campaign_set_state(t->st, c->id, 1u << c->state, state, why, NULL);
    if (rc == GIZ_OK) {
        giz_log(GIZ_LOG_INFO, "campaign %" PRId64 ": %s%s%s", c->id, giz_campaign_state_name(state),
                why && why[0] ? ": " : "", why ? why : "");
        c->state = state;
    }
    return rc == GIZ_ERR_EXISTS ? GIZ_OK : rc;
}

/* Timeouts, gates, thresholds, completion and notices of one campaign. */
static int campaign_step(struct tick *t, struct giz_campaign *c, bool broker_alive)
{
    int64_t counts[GIZ_CDEV_STATE_COUNT], canary[GIZ_CDEV_STATE_COUNT];
    char why[GIZ_CAMPAIGN_REASON_SIZE];
    int rc = GIZ_OK;
    if (c->state == GIZ_CAMPAIGN_RUNNING && c->ends_at > 0 && t->now_ms / 1000 >= c->ends_at) {
        rc = campaign_end(t, c, GIZ_CAMPAIGN_STOPPED, "validity period over");
        if (rc) return rc;
    }
    if (c->state != GIZ_CAMPAIGN_RUNNING && c->state != GIZ_CAMPAIGN_STOPPED) return GIZ_OK;
    /* timeouts count only time the engine was watching (not a GService
     * stop, when devices could not reach it) */
    if (c->timeout_s > 0 &&
        t->now_ms - t->srv->campaigns.started_ms >= (int64_t)c->timeout_s * 1000) {
        struct giz_cdev_query q = {.campaign_id = c->id,
                                   .state = -1,
                                   .stale_before_ms = t->now_ms - (int64_t)c->timeout_s * 1000};
        rc = giz_store_cdev_list(t->st, &q, stale_cb, t);
        if (rc == GIZ_OK) rc = flush(t);
        if (rc) return rc;
    }
    rc = giz_store_cdev_counts(t->st, c->id, false, counts);
    if (rc == GIZ_OK) rc = giz_store_cdev_counts(t->st, c->id, true, canary);
    if (rc) return rc;
    int64_t total = 0, n_canary = 0;
    for (int i = 0; i < GIZ_CDEV_STATE_COUNT; i++) {
        total += counts[i];
        n_canary += canary[i];
    }
    if (c->state != GIZ_CAMPAIGN_RUNNING) return GIZ_OK;
    if (counts[GIZ_CDEV_UPDATED] + counts[GIZ_CDEV_FAILED] == total)
        return campaign_end(t, c, GIZ_CAMPAIGN_COMPLETED, "");
    if (canary[GIZ_CDEV_FAILED] > 0) {
        snprintf(why, sizeof why, "canary failed (%" PRId64 " of %" PRId64 ")",
                 canary[GIZ_CDEV_FAILED], n_canary);
        return campaign_end(t, c, GIZ_CAMPAIGN_STOPPED, why);
    }
    if (c->failure_threshold > 0 && counts[GIZ_CDEV_FAILED] >= c->failure_threshold) {
        snprintf(why, sizeof why, "failure threshold reached (%" PRId64 " failed, threshold %u)",
                 counts[GIZ_CDEV_FAILED], c->failure_threshold);
        return campaign_end(t, c, GIZ_CAMPAIGN_STOPPED, why);
    }
    if (!broker_alive || !in_window(c, t->now_ms)) return GIZ_OK;
    bool canary_phase = n_canary > 0 && canary[GIZ_CDEV_UPDATED] < n_canary;
    struct notice_ctx n = {t, c, 0, GIZ_OK};
    struct giz_cdev_query q = {.campaign_id = c->id,
                               .state = -1,
                               .due_online = true,
                               .canary_only = canary_phase,
                               .limit = GS_CAMPAIGN_NOTICE_BATCH};
    rc = giz_store_cdev_list(t->st, &q, due_cb, &n);
    if (rc == GIZ_OK) rc = n.rc;
    if (rc == GIZ_OK) rc = flush(t);
    if (rc == GIZ_OK && n.sent > 0)
        giz_log(GIZ_LOG_DEBUG, "campaign %" PRId64 ": %u notice(s)%s", c->id, n.sent,
                canary_phase ? " (canary phase)" : "");
    return rc;
}

static int live_cb(const struct giz_campaign *c, void *ud)
{
    struct tick *t = ud;
    if (t->n_live >= LIVE_MAX) return 1;
    t->live[t->n_live++].c = *c;
    return 0;
}

/* Renders the gauges of this tick's campaigns for GET /metrics. */
static void metrics_snapshot(struct tick *t)
{
    struct gs_campaigns *cp = &t->srv->campaigns;
    struct giz_buf b;
    int64_t by_state[GIZ_CAMPAIGN_STATE_COUNT] = {0};
    int64_t all = 0;
    giz_buf_init(&b, 1u << 20);
    if (giz_store_campaign_count(t->st, false, &all) != GIZ_OK) all = 0;
    for (size_t i = 0; i < t->n_live; i++)
        if (t->live[i].c.state >= 0) by_state[t->live[i].c.state]++;
    (void)giz_buf_printf(&b,
                         "# HELP gizcloud_campaigns OTA campaigns in the store (any state).\n"
                         "# TYPE gizcloud_campaigns gauge\n"
                         "gizcloud_campaigns %" PRId64 "\n"
                         "# HELP gizcloud_campaigns_live Live OTA campaigns by state.\n"
                         "# TYPE gizcloud_campaigns_live gauge\n",
                         all);
    for (int s = 0; s < GIZ_CAMPAIGN_STATE_COUNT; s++)
        if (s != GIZ_CAMPAIGN_CANCELLED && s != GIZ_CAMPAIGN_COMPLETED)
            (void)giz_buf_printf(&b, "gizcloud_campaigns_live{state=\"%s\"} %" PRId64 "\n",
                                 giz_campaign_state_name(s), by_state[s]);
    (void)giz_buf_printf(&b, "# HELP gizcloud_campaign_devices Devices of each live campaign "
                             "by state.\n# TYPE gizcloud_campaign_devices gauge\n");
    for (size_t i = 0; i < t->n_live; i++) {
        int64_t counts[GIZ_CDEV_STATE_COUNT];
        if (giz_store_cdev_counts(t->st, t->live[i].c.id, false, counts) != GIZ_OK) continue;
        for (int s = 0; s < GIZ_CDEV_STATE_COUNT; s++)
            (void)giz_buf_printf(&b,
                                 "gizcloud_campaign_devices{campaign=\"%" PRId64
                                 "\",state=\"%s\"} %" PRId64 "\n",
                                 t->live[i].c.id, giz_cdev_state_name(s), counts[s]);
    }
    (void)giz_buf_printf(&b,
                         "# HELP gizcloud_campaign_notices_total OTA notices queued by "
                         "campaigns.\n# TYPE gizcloud_campaign_notices_total counter\n"
                         "gizcloud_campaign_notices_total %" PRIu64 "\n"
                         "# HELP gizcloud_campaign_transitions_total Campaign device state "
                         "changes.\n# TYPE gizcloud_campaign_transitions_total counter\n"
                         "gizcloud_campaign_transitions_total %" PRIu64 "\n"
                         "# HELP gizcloud_campaign_ticks_total Campaign engine passes.\n"
                         "# TYPE gizcloud_campaign_ticks_total counter\n"
                         "gizcloud_campaign_ticks_total %" PRIu64 "\n",
                         (uint64_t)atomic_load(&cp->notices),
                         (uint64_t)atomic_load(&cp->transitions),
                         (uint64_t)atomic_load(&cp->ticks) + 1);
    char *text = (char *)giz_buf_take(&b, NULL);
    pthread_mutex_lock(&cp->mu);
    free(cp->metrics);
    cp->metrics = text;
    pthread_mutex_unlock(&cp->mu);
}

/* One tick in one transaction. */
static int tick_run(struct gs_server *srv, struct giz_store *st)
{
    struct live *live = calloc(LIVE_MAX, sizeof *live);
    struct tick t = {.srv = srv, .st = st, .live = live};
    int64_t cursor = 0, upto = 0;
    int rc;
    if (live == NULL) return GIZ_ERR_NOMEM;
    t.now_ms = unix_ms();
    t.day = t.now_ms / MS_PER_DAY;
    giz_map_init(&t.rows);
    bool alive = gs_broker_alive(srv, st, NULL);
    rc = giz_store_begin(st);
    if (rc) goto out;
    rc = giz_store_campaign_cursor_get(st, &cursor);
    if (rc == GIZ_OK) rc = giz_store_event_last_id(st, &upto);
    if (rc == GIZ_OK) rc = giz_store_campaign_list(st, true, LIVE_MAX, 0, live_cb, &t);
    if (rc) goto fail;
    for (int round = 0; t.n_live > 0 && cursor < upto && round < EVIDENCE_ROUNDS; round++) {
        int64_t last = cursor;
        unsigned n_ev = 0;
        rc = giz_store_campaign_evidence(st, cursor, upto, EVIDENCE_BATCH,
                                         t.now_ms - GS_CAMPAIGN_LATE_MS, evidence_cb, &t, &last,
                                         &n_ev);
        if (rc == GIZ_OK && t.nomem) rc = GIZ_ERR_NOMEM;
        if (rc) goto fail;
        cursor = n_ev < EVIDENCE_BATCH ? upto : last;
    }
    if (t.n_live == 0) cursor = upto; /* nothing to follow: skip what happened */
    {
        struct renotice_ctx r = {&t, GIZ_OK, 0};
        giz_map_foreach(&t.rows, renotice_cb, &r);
        rc = r.rc;
    }
    if (rc == GIZ_OK) rc = flush(&t);
    if (rc == GIZ_OK) rc = giz_store_campaign_cursor_set(st, cursor);
    for (size_t i = 0; rc == GIZ_OK && i < t.n_live; i++)
        rc = campaign_step(&t, &t.live[i].c, alive);
    if (rc == GIZ_OK && t.nomem) rc = GIZ_ERR_NOMEM;
    if (rc) goto fail;
    rc = giz_store_commit(st);
    if (rc) goto fail;
    metrics_snapshot(&t);
    goto out;
fail:
    giz_store_rollback(st);
out:
    for (size_t i = 0; i < t.n_events; i++)
        free(t.event_fields[i]);
    free(t.events);
    free(t.event_fields);
    giz_map_free(&t.rows, free);
    free(live);
    return rc;
}

static void *engine_main(void *arg)
{
    struct gs_server *srv = arg;
    struct gs_campaigns *cp = &srv->campaigns;
    struct giz_store *st = NULL;
    int64_t last_sweep_ms = 0;
    for (;;) {
        pthread_mutex_lock(&cp->mu);
        if (!cp->stop && !cp->wake) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long)GS_CAMPAIGN_TICK_MS * 1000000L;
            while (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            while (!cp->stop && !cp->wake)
                if (pthread_cond_timedwait(&cp->cv, &cp->mu, &until) != 0) break;
        }
        bool stop = cp->stop;
        cp->wake = false;
        pthread_mutex_unlock(&cp->mu);
        if (stop) break;
        if (st == NULL) {
            struct giz_error err;
            if (giz_store_open(srv->pool.path, &st, &err) != GIZ_OK) {
                st = NULL;
                giz_log(GIZ_LOG_ERR, "campaigns: cannot open the store: %s", err.text);
                continue;
            }
        }
        int rc = tick_run(srv, st);
        atomic_fetch_add_explicit(&cp->ticks, 1, memory_order_relaxed);
        /* This thread also sweeps for dead brokers (schema 012) every 2 s:
         * their devices marked offline, whichever node gets there first. */
        int64_t now = unix_ms();
        if (now - last_sweep_ms >= GIZ_BROKER_BEAT_MS || now < last_sweep_ms) {
            last_sweep_ms = now;
            int src = giz_store_broker_sweep(st, gs_broker_max_age_ms(srv), NULL);
            if (src != GIZ_OK)
                giz_log(GIZ_LOG_WARN, "dead-broker sweep failed: %s", giz_strerror(src));
        }
        if (rc != GIZ_OK) giz_log(GIZ_LOG_WARN, "campaigns: tick failed: %s", giz_strerror(rc));
    }
    giz_store_close(st);
    return NULL;
}

int gs_campaigns_start(struct gs_server *srv)
{
    struct gs_campaigns *cp = &srv->campaigns;
    if (cp->started) return 0;
    if (pthread_mutex_init(&cp->mu, NULL) != 0) return -1;
    pthread_cond_init(&cp->cv, NULL);
    cp->stop = cp->wake = false;
    cp->started = true;
    cp->started_ms = unix_ms();
    if (pthread_create(&cp->thread, NULL, engine_main, srv) != 0) {
        cp->started = false;
        pthread_cond_destroy(&cp->cv);
        pthread_mutex_destroy(&cp->mu);
        giz_log(GIZ_LOG_ERR, "campaigns: cannot start the engine thread");
        return -1;
    }
    return 0;
}

void gs_campaigns_wake(struct gs_server *srv)
{
    struct gs_campaigns *cp = &srv->campaigns;
    if (!cp->started) return;
    pthread_mutex_lock(&cp->mu);
    cp->wake = true;
    pthread_cond_signal(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
}

char *gs_campaigns_metrics(struct gs_server *srv)
{
    struct gs_campaigns *cp = &srv->campaigns;
    char *out = NULL;
    if (!cp->started) return NULL;
    pthread_mutex_lock(&cp->mu);
    if (cp->metrics != NULL) out = strdup(cp->metrics);
    pthread_mutex_unlock(&cp->mu);
    return out;
}

void gs_campaigns_stop(struct gs_server *srv)
{
    struct gs_campaigns *cp = &srv->campaigns;
    if (!cp->started) return;
    pthread_mutex_lock(&cp->mu);
    cp->stop = true;
    pthread_cond_signal(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    pthread_join(cp->thread, NULL);
    cp->started = false;
    free(cp->metrics);
    cp->metrics = NULL;
    pthread_cond_destroy(&cp->cv);
    pthread_mutex_destroy(&cp->mu);
}
