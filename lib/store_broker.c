/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The broker registry (schema 012, table brokers; written by the plugins):
 * registration, heartbeat, clean stop, the legacy single-broker liveness
 * calls on top of it, the device -> broker assignment provision uses, and
 * the sweep that marks the devices of a dead broker offline.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <string.h>
#include <time.h>

#include "store_int.h"

/* Statements run rarely (start, stop, an admin list, a sweep every 2 s and
 * what a dead broker needs once) are prepared per call: only the hot ones
 * (heartbeat, liveness, provision's assignment) are in the statement table. */
#define SQL_BROKER_START                                                                           \
    "INSERT INTO brokers(name, host, port, tls_port, pid, started_at, "                            \
    "heartbeat_at, stopped_at, devices, swept_at) "                                                \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, NULL, 0, NULL) "                                          \
    "ON CONFLICT(name) DO UPDATE SET host = ?2, port = ?3, tls_port = ?4, "                        \
    "pid = ?5, started_at = ?6, heartbeat_at = ?6, stopped_at = NULL, "                            \
    "devices = 0, swept_at = NULL"
#define SQL_BROKER_STOP                                                                            \
    "UPDATE brokers SET stopped_at = ?3, heartbeat_at = ?3, devices = 0 "                          \
    "WHERE name = ?1 AND pid = ?2"
#define SQL_BROKER_LIST "SELECT " BROKER_COLS " FROM brokers b ORDER BY b.name"
#define SQL_BROKER_STALE                                                                           \
    "SELECT name FROM brokers WHERE stopped_at IS NULL AND swept_at IS NULL "                      \
    "AND heartbeat_at < ?1 ORDER BY name"
#define SQL_BROKER_CLAIM                                                                           \
    "UPDATE brokers SET swept_at = ?3 WHERE name = ?1 AND stopped_at IS NULL "                     \
    "AND swept_at IS NULL AND heartbeat_at < ?2"
#define SQL_BROKER_SWEEP_EVENTS                                                                    \
    "INSERT INTO events(did, ts, kind, source, fields) "                                           \
    "SELECT did, ?2, 'disconnect', 'mqtt', "                                                       \
    "'{\"reason\": \"broker lost\", \"broker\": \"' || ?1 || '\"}' "                               \
    "FROM devices WHERE broker = ?1 AND online = 1"
#define SQL_BROKER_SWEEP_DEVICES "UPDATE devices SET online = 0 WHERE broker = ?1 AND online = 1"

#define LEGACY_NAME "broker" /* the row of a connection that named no broker */
#define PENDING_MS 60000     /* an assigned device counts as load this long before it connects */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *own_name(const struct giz_store *s)
{
    return s->broker_name[0] ? s->broker_name : LEGACY_NAME;
}

bool giz_broker_name_valid(const char *name)
{
    size_t n;
    if (name == NULL) return false;
    n = strnlen(name, GIZ_BROKER_NAME_SIZE);
    if (n == 0 || n >= GIZ_BROKER_NAME_SIZE) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

int giz_store_set_broker(struct giz_store *s, const char *name)
{
    if (!s || !giz_broker_name_valid(name)) return GIZ_ERR_INVAL;
    memcpy(s->broker_name, name, strlen(name) + 1);
    return GIZ_OK;
}

/* Fills *b from a BROKER_COLS row; alive for cutoff (heartbeat >= cutoff). */
static void read_broker(sq_stmt *st, struct giz_broker *b, int64_t cutoff_ms)
{
    memset(b, 0, sizeof(*b));
    store__col_text(st, 0, b->name, sizeof(b->name));
    store__col_text(st, 1, b->host, sizeof(b->host));
    b->port = (unsigned)sq_column_int64(st, 2);
    b->tls_port = (unsigned)sq_column_int64(st, 3);
    b->pid = sq_column_int64(st, 4);
    b->started_at_ms = sq_column_int64(st, 5);
    b->heartbeat_at_ms = sq_column_int64(st, 6);
    b->stopped_at_ms = sq_column_int64(st, 7);
    b->stopped = sq_column_int(st, 8) != 0;
    b->devices = sq_column_int64(st, 9);
    b->swept_at_ms = sq_column_int64(st, 10);
    /* A heartbeat from the future (wall clock stepped back) counts as fresh. */
    b->alive = !b->stopped && b->heartbeat_at_ms >= cutoff_ms;
}

/* ---- registration, heartbeat, stop ------------------------------------------ */

int giz_store_broker_register(struct giz_store *s, const struct giz_broker *b, int64_t now_ms)
{
    sq_stmt *st = NULL;
    int rc;
    if (!s || !b || b->pid <= 0 || !store__fits(b->host, GIZ_BROKER_HOST_SIZE) || b->port > 65535 ||
        b->tls_port > 65535)
        return GIZ_ERR_INVAL;
    rc = store__prepare(s, SQL_BROKER_START, &st, "preparing broker start");
    if (rc != GIZ_OK) return rc;
    store__bind_text(s, st, 1, own_name(s));
    store__bind_text(s, st, 2, b->host);
    store__bind_int(s, st, 3, b->port);
    store__bind_int(s, st, 4, b->tls_port);
    store__bind_int(s, st, 5, b->pid);
    store__bind_int(s, st, 6, now_ms > 0 ? now_ms : wall_ms());
    rc = store__exec(s, st, "recording broker start");
    store__finalize(s, st);
    return rc;
}

int giz_store_broker_beat(struct giz_store *s, int64_t pid, int64_t devices, int64_t now_ms,
                          bool *was_swept)
{
    sq_stmt *st;
    int rc, src;
    int64_t swept = 0;
    if (was_swept) *was_swept = false;
    if (!s || pid <= 0) return GIZ_ERR_INVAL;
    st = s->st[ST_BROKER_SWEPT];
    store__bind_text(s, st, 1, own_name(s));
    store__bind_int(s, st, 2, pid);
    src = store__step(s, st);
    if (src == SQLITE_ROW) swept = sq_column_int64(st, 0);
    rc = store__row_end(s, st, src, "reading broker sweep");
    if (rc != GIZ_OK) return rc; /* GIZ_ERR_NOT_FOUND: not our running row */
    st = s->st[ST_BROKER_BEAT];
    store__bind_text(s, st, 1, own_name(s));
    store__bind_int(s, st, 2, pid);
    store__bind_int(s, st, 3, now_ms > 0 ? now_ms : wall_ms());
    if (devices >= 0) store__bind_int(s, st, 4, devices); /* else NULL: keep */
    rc = store__exec(s, st, "writing broker heartbeat");
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_OK && was_swept) *was_swept = swept != 0;
    return rc;
}

int giz_store_broker_start(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    struct giz_broker b;
    if (!s || pid <= 0) return GIZ_ERR_INVAL;
    memset(&b, 0, sizeof(b));
    b.pid = pid;
    return giz_store_broker_register(s, &b, now_ms);
}

int giz_store_broker_heartbeat(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    return giz_store_broker_beat(s, pid, -1, now_ms, NULL);
}

int giz_store_broker_stop(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    sq_stmt *st;
    int rc;
    if (!s || pid <= 0) return GIZ_ERR_INVAL;
    rc = store__prepare(s, SQL_BROKER_STOP, &st, "preparing broker stop");
    if (rc != GIZ_OK) return rc;
    store__bind_text(s, st, 1, own_name(s));
    store__bind_int(s, st, 2, pid);
    store__bind_int(s, st, 3, now_ms > 0 ? now_ms : wall_ms());
    rc = store__exec(s, st, "recording broker stop");
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    store__finalize(s, st);
    return rc;
}

/* ---- readers ------------------------------------------------------------------ */

int giz_store_broker_get(struct giz_store *s, struct giz_broker_status *out)
{
    sq_stmt *st;
    struct giz_broker b;
    int src;

    if (!s || !out) return GIZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    st = s->st[ST_BROKER_GET];
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        read_broker(st, &b, 0);
        out->pid = b.pid;
        out->started_at_ms = b.started_at_ms;
        out->heartbeat_at_ms = b.heartbeat_at_ms;
        out->stopped = b.stopped;
        out->stopped_at_ms = b.stopped_at_ms;
    }
    return store__row_end(s, st, src, "reading broker status");
}

int giz_store_broker_alive(struct giz_store *s, int64_t max_age_ms, bool *alive)
{
    sq_stmt *st;
    int64_t n = 0;
    int rc;

    if (!s || !alive || max_age_ms < 0) return GIZ_ERR_INVAL;
    *alive = false;
    st = s->st[ST_BROKER_LIVE_COUNT];
    store__bind_int(s, st, 1, wall_ms() - max_age_ms);
    rc = store__count(s, st, "counting live brokers", &n);
    *alive = rc == GIZ_OK && n > 0;
    return rc;
}

int giz_store_broker_list(struct giz_store *s, int64_t max_age_ms, giz_store_broker_cb cb, void *ud)
{
    sq_stmt *st = NULL;
    struct giz_broker b;
    int src, rc;
    int64_t cutoff;
    if (!s || !cb || max_age_ms < 0) return GIZ_ERR_INVAL;
    rc = store__prepare(s, SQL_BROKER_LIST, &st, "preparing the broker list");
    if (rc != GIZ_OK) return rc;
    cutoff = wall_ms() - max_age_ms;
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        read_broker(st, &b, cutoff);
        if (cb(&b, ud) != 0) break;
    }
    rc = store__list_end(s, st, src, "listing brokers");
    store__finalize(s, st);
    return rc;
}

int giz_store_broker_find(struct giz_store *s, const char *name, int64_t max_age_ms,
                          struct giz_broker *out)
{
    sq_stmt *st;
    int src;
    if (!s || !out || !name || max_age_ms < 0) return GIZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    st = s->st[ST_BROKER_FIND];
    store__bind_text(s, st, 1, name);
    src = store__step(s, st);
    if (src == SQLITE_ROW) read_broker(st, out, wall_ms() - max_age_ms);
    return store__row_end(s, st, src, "reading a broker");
}

/* ---- assignment ------------------------------------------------------------- */

int giz_store_device_broker(struct giz_store *s, const char *did, char *name,
                            int64_t *assigned_at_ms)
{
    sq_stmt *st;
    int src;
    if (!s || !did || !name) return GIZ_ERR_INVAL;
    name[0] = '\0';
    if (assigned_at_ms) *assigned_at_ms = 0;
    st = s->st[ST_DEVICE_BROKER_GET];
    store__bind_text(s, st, 1, did);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        store__col_text(st, 0, name, GIZ_BROKER_NAME_SIZE);
        if (assigned_at_ms) *assigned_at_ms = sq_column_int64(st, 1);
    }
    return store__row_end(s, st, src, "reading a device's broker");
}

/* The least-loaded live broker into *out: GIZ_OK or GIZ_ERR_NOT_FOUND. */
static int least_loaded(struct giz_store *s, int64_t now, int64_t max_age_ms,
                        struct giz_broker *out)
{
    sq_stmt *st = s->st[ST_BROKER_LEAST];
    int src;
    store__bind_int(s, st, 1, now - max_age_ms);
    store__bind_int(s, st, 2, now - PENDING_MS);
    src = store__step(s, st);
    if (src == SQLITE_ROW) read_broker(st, out, now - max_age_ms);
    return store__row_end(s, st, src, "choosing a broker");
}

int giz_store_device_broker_route(struct giz_store *s, const char *did, int64_t max_age_ms,
                                  bool assign, struct giz_broker *out)
{
    char cur[GIZ_BROKER_NAME_SIZE];
    int64_t now = wall_ms();
    int rc = GIZ_OK;

    if (!s || !did || !out || max_age_ms < 0) return GIZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    /* Two rounds at most: a lost race re-reads the winner's choice. */
    for (int round = 0; round < 2; round++) {
        sq_stmt *st;
        rc = giz_store_device_broker(s, did, cur, NULL);
        if (rc != GIZ_OK) break;
        if (cur[0] != '\0') {
            rc = giz_store_broker_find(s, cur, max_age_ms, out);
            if (rc == GIZ_OK && out->alive) break; /* stable while its broker lives */
            if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND) break;
        }
        rc = least_loaded(s, now, max_age_ms, out);
        if (rc != GIZ_OK || !assign) break;
        st = s->st[ST_DEVICE_BROKER_SET];
        store__bind_text(s, st, 1, did);
        store__bind_text(s, st, 2, out->name);
        store__bind_int(s, st, 3, now);
        store__bind_text(s, st, 4, cur);
        rc = store__exec(s, st, "assigning a broker");
        if (rc != GIZ_OK || sq_changes(s) > 0) break;
        /* Another process assigned it meanwhile: read its choice (twice
         * raced: the last choice stands, unrecorded). */
    }
    if (rc != GIZ_OK) memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- broker death ------------------------------------------------------------ */

#define SWEEP_MAX 32 /* dead brokers handled per call */

/* Sweeps one dead broker in its own transaction: the claim, the events,
 * the devices. *changed: devices marked offline (0 if another node won). */
static int sweep_one(struct giz_store *s, const char *name, int64_t now, int64_t max_age_ms,
                     int *changed)
{
    sq_stmt *claim = NULL, *events = NULL, *devs = NULL;
    int kind = 0, rc;
    *changed = 0;
    rc = store__prepare(s, SQL_BROKER_CLAIM, &claim, "preparing a broker sweep");
    if (rc == GIZ_OK)
        rc = store__prepare(s, SQL_BROKER_SWEEP_EVENTS, &events, "preparing broker-lost events");
    if (rc == GIZ_OK)
        rc = store__prepare(s, SQL_BROKER_SWEEP_DEVICES, &devs, "preparing a broker sweep");
    if (rc == GIZ_OK) rc = store__txn_open(s, &kind);
    if (rc == GIZ_OK) {
        store__bind_text(s, claim, 1, name);
        store__bind_int(s, claim, 2, now - max_age_ms);
        store__bind_int(s, claim, 3, now);
        rc = store__exec(s, claim, "claiming a broker sweep");
        if (rc == GIZ_OK && sq_changes(s) > 0) { /* ours: no other node won it */
            store__bind_text(s, events, 1, name);
            store__bind_int(s, events, 2, now);
            rc = store__exec(s, events, "recording broker-lost events");
            if (rc == GIZ_OK) {
                store__bind_text(s, devs, 1, name);
                rc = store__exec(s, devs, "marking a dead broker's devices offline");
                if (rc == GIZ_OK) *changed = sq_changes(s);
            }
        }
        rc = store__txn_close(s, kind, rc);
    }
    store__finalize(s, claim);
    store__finalize(s, events);
    store__finalize(s, devs);
    if (rc != GIZ_OK) *changed = 0;
    return rc;
}

int giz_store_broker_sweep(struct giz_store *s, int64_t max_age_ms, int64_t *devices)
{
    char names[SWEEP_MAX][GIZ_BROKER_NAME_SIZE];
    unsigned n = 0;
    sq_stmt *st = NULL;
    int64_t now = wall_ms(), total = 0;
    int src = SQLITE_DONE, rc;

    if (devices) *devices = 0;
    if (!s || max_age_ms < 0) return GIZ_ERR_INVAL;
    rc = store__prepare(s, SQL_BROKER_STALE, &st, "preparing the dead-broker check");
    if (rc != GIZ_OK) return rc;
    store__bind_int(s, st, 1, now - max_age_ms);
    while (n < SWEEP_MAX && (src = store__step(s, st)) == SQLITE_ROW)
        store__col_text(st, 0, names[n++], GIZ_BROKER_NAME_SIZE);
    if (n == SWEEP_MAX) src = SQLITE_DONE;
    rc = store__list_end(s, st, src, "finding dead brokers");
    store__finalize(s, st);
    for (unsigned i = 0; rc == GIZ_OK && i < n; i++) {
        int changed = 0;
        rc = sweep_one(s, names[i], now, max_age_ms, &changed);
        if (rc != GIZ_OK) break;
        total += changed;
        if (changed > 0)
            giz_log(GIZ_LOG_WARN,
                    "store: broker %s silent for over %lld ms: %d device(s) marked offline",
                    names[i], (long long)max_age_ms, changed);
    }
    if (devices) *devices = total;
    return rc;
}
