/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The broker liveness row (schema 005, written by the plugin): start,
 * heartbeat, stop, read, alive.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <string.h>
#include <time.h>

#include "store_int.h"

/* ---- broker liveness (schema 005; written by the plugin) ------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs a broker-row write (pid ?1, time ?2); GIZ_ERR_NOT_FOUND if no row changed. */
static int broker_write(struct giz_store *s, enum store_stmt_id id, int64_t pid, int64_t now_ms,
                        const char *what)
{
    sq_stmt *st;
    int rc;
    if (!s || pid <= 0) return GIZ_ERR_INVAL;
    st = s->st[id];
    store__bind_int(s, st, 1, pid);
    store__bind_int(s, st, 2, now_ms > 0 ? now_ms : wall_ms());
    rc = store__exec(s, st, what);
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

int giz_store_broker_start(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    return broker_write(s, ST_BROKER_START, pid, now_ms, "recording broker start");
}

int giz_store_broker_heartbeat(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    return broker_write(s, ST_BROKER_BEAT, pid, now_ms, "writing broker heartbeat");
}

int giz_store_broker_stop(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    return broker_write(s, ST_BROKER_STOP, pid, now_ms, "recording broker stop");
}

int giz_store_broker_get(struct giz_store *s, struct giz_broker_status *out)
{
    sq_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !out) return GIZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    st = s->st[ST_BROKER_GET];
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        out->pid = sq_column_int64(st, 0);
        out->started_at_ms = sq_column_int64(st, 1);
        out->heartbeat_at_ms = sq_column_int64(st, 2);
        out->stopped = sq_column_type(st, 3) != SQLITE_NULL;
        out->stopped_at_ms = out->stopped ? sq_column_int64(st, 3) : 0;
    } else if (src == SQLITE_DONE) {
        rc = GIZ_ERR_NOT_FOUND;
    } else {
        rc = store__db_err(s, src, "reading broker status");
    }
    store__reset(s, st);
    return rc;
}

int giz_store_broker_alive(struct giz_store *s, int64_t max_age_ms, bool *alive)
{
    struct giz_broker_status b;
    int rc;

    if (!s || !alive || max_age_ms < 0) return GIZ_ERR_INVAL;
    *alive = false;
    rc = giz_store_broker_get(s, &b);
    if (rc == GIZ_ERR_NOT_FOUND) return GIZ_OK; /* no broker ever ran on this database */
    if (rc != GIZ_OK) return rc;
    /* A heartbeat from the future (wall clock stepped back) counts as fresh. */
    *alive = !b.stopped && wall_ms() - b.heartbeat_at_ms <= max_age_ms;
    return GIZ_OK;
}
