/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The per-device timeline (schema/006_events.sql): batched appends, lists
 * by device / cursor / time / kind (oldest first), drop counters, and the
 * bounded retention prune (newest N per device, a total cap) that only
 * visits devices with events newer than the previous prune. Statements are
 * prepared per call (one prepare per batch or list; the store's statement
 * table belongs to lib/store_int.h). Shared by the GService's writer thread
 * and, later, the broker plugin.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"

#define EVENT_LIST_DEFAULT 100u
#define EVENT_LIST_MAX 10000u

static bool source_ok(const char *src)
{
    return src && (strcmp(src, "http") == 0 || strcmp(src, "mqtt") == 0);
}

static int event_check(const struct giz_event *ev)
{
    size_t flen;
    if (!store__fits(ev->did, GIZ_DID_SIZE) || !store__fits(ev->kind, GIZ_EVENT_KIND_SIZE) ||
        !ev->kind[0] || !source_ok(ev->source))
        return GIZ_ERR_INVAL;
    if (!ev->fields) return GIZ_OK;
    flen = strnlen(ev->fields, GIZ_EVENT_FIELDS_MAX + 1);
    if (flen > GIZ_EVENT_FIELDS_MAX) return GIZ_ERR_OVERSIZE;
    if (flen < 2 || ev->fields[0] != '{' || ev->fields[flen - 1] != '}') return GIZ_ERR_INVAL;
    return GIZ_OK;
}

int giz_store_event_append(struct giz_store *s, const struct giz_event *ev, size_t n,
                           int64_t *last_id)
{
    sq_stmt *st = NULL;
    int rc = GIZ_OK, kind = 0;
    bool open = false;
    size_t i;

    if (!s || (!ev && n)) return GIZ_ERR_INVAL;
    for (i = 0; i < n; i++)
        if ((rc = event_check(&ev[i])) != GIZ_OK) return rc;
    if (n == 0) return GIZ_OK;
    rc = store__prepare(
        s, "INSERT INTO events(did, ts, kind, source, fields) VALUES (?1, ?2, ?3, ?4, ?5)", &st,
        "preparing event insert");
    if (rc) goto cleanup;
    rc = store__txn_open(s, &kind);
    if (rc) goto cleanup;
    open = true;
    for (i = 0; i < n && rc == GIZ_OK; i++) {
        store__bind_text(s, st, 1, ev[i].did);
        store__bind_int(s, st, 2, ev[i].ts);
        store__bind_text(s, st, 3, ev[i].kind);
        store__bind_text(s, st, 4, ev[i].source);
        store__bind_text(s, st, 5, ev[i].fields ? ev[i].fields : "{}");
        rc = store__exec(s, st, "inserting event");
    }
    if (rc == GIZ_OK && last_id) *last_id = sq_last_insert_rowid(s);
    rc = store__txn_close(s, kind, rc);
    open = false;
cleanup:
    if (open) store__txn_abort(s, kind);
    store__finalize(s, st);
    return rc;
}

int giz_store_event_list(struct giz_store *s, const struct giz_event_query *q,
                         giz_store_event_cb cb, void *ud)
{
    static const char sql[] =
        "SELECT id, did, ts, kind, source, fields, json_patch(json_object('id', id, 'ts', ts, "
        "'kind', kind, 'did', did, 'source', source), fields) FROM events "
        "WHERE id > ?1 AND (?2 IS NULL OR did = ?2) AND (?3 < 0 OR ts >= ?3) "
        "AND (?4 IS NULL OR kind = ?4) ORDER BY id LIMIT ?5";
    sq_stmt *st = NULL;
    struct giz_event ev;
    unsigned limit;
    int rc, src;

    if (!s || !q || !cb || q->after_id < 0) return GIZ_ERR_INVAL;
    if (q->did && !store__fits(q->did, GIZ_DID_SIZE)) return GIZ_ERR_INVAL;
    if (q->kind && !store__fits(q->kind, GIZ_EVENT_KIND_SIZE)) return GIZ_ERR_INVAL;
    limit = q->limit ? q->limit : EVENT_LIST_DEFAULT;
    if (limit > EVENT_LIST_MAX) limit = EVENT_LIST_MAX;
    rc = store__prepare(s, sql, &st, "preparing event list");
    if (rc) return rc;
    store__bind_int(s, st, 1, q->after_id);
    store__bind_text(s, st, 2, q->did);
    store__bind_int(s, st, 3, q->since_ts);
    store__bind_text(s, st, 4, q->kind);
    store__bind_int(s, st, 5, limit);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        memset(&ev, 0, sizeof ev);
        ev.id = sq_column_int64(st, 0);
        store__col_text(st, 1, ev.did, sizeof ev.did);
        ev.ts = sq_column_int64(st, 2);
        store__col_text(st, 3, ev.kind, sizeof ev.kind);
        ev.source = (const char *)sq_column_text(st, 4);
        ev.fields = (const char *)sq_column_text(st, 5);
        ev.json = (const char *)sq_column_text(st, 6);
        if (!ev.source || !ev.fields || !ev.json) {
            src = SQLITE_NOMEM;
            break;
        }
        if (cb(&ev, ud)) {
            src = SQLITE_DONE;
            break;
        }
    }
    rc = (src == SQLITE_DONE) ? GIZ_OK : store__db_err(s, src, "listing events");
    store__finalize(s, st);
    return rc;
}

/* Runs sql (binding int64 a to ?1 if sql has it) and reads one int64. */
static int ev_scalar(struct giz_store *s, const char *sql, int64_t a, int64_t *out,
                     const char *what)
{
    sq_stmt *st = NULL;
    int rc = store__prepare(s, sql, &st, what), src;
    if (rc) return rc;
    if (sq_bind_parameter_count(st) >= 1) store__bind_int(s, st, 1, a);
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *out = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, src == SQLITE_DONE ? SQLITE_ERROR : src, what);
    store__finalize(s, st);
    return rc;
}

int giz_store_event_last_id(struct giz_store *s, int64_t *id)
{
    if (!s || !id) return GIZ_ERR_INVAL;
    *id = 0;
    return ev_scalar(s,
                     "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), "
                     "(SELECT max(id) FROM events), 0)",
                     0, id, "reading the last event id");
}

int giz_store_event_dropped(struct giz_store *s, const char *did, const char *source, int64_t *n)
{
    sq_stmt *st = NULL;
    int rc, src;
    if (!s || !n || (did && !store__fits(did, GIZ_DID_SIZE)) || (source && !source_ok(source)))
        return GIZ_ERR_INVAL;
    *n = 0;
    rc =
        store__prepare(s,
                       "SELECT coalesce(sum(n), 0) FROM event_drops WHERE (?1 IS NULL OR did = ?1) "
                       "AND (?2 IS NULL OR source = ?2)",
                       &st, "preparing event drop count");
    if (rc) return rc;
    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, source);
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *n = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, src, "counting dropped events");
    store__finalize(s, st);
    return rc;
}

/* Runs a no-row statement binding ?1 a, ?2 b, ?3 t1, ?4 t2 (as many as
 * sql has); adds the rows it changed to *changes (may be NULL). */
static int ev_exec_sql(struct giz_store *s, const char *sql, int64_t a, int64_t b, const char *t1,
                       const char *t2, const char *what, int64_t *changes)
{
    sq_stmt *st = NULL;
    int rc = store__prepare(s, sql, &st, what);
    int np;
    if (rc) return rc;
    np = sq_bind_parameter_count(st);
    if (np >= 1) store__bind_int(s, st, 1, a);
    if (np >= 2) store__bind_int(s, st, 2, b);
    if (np >= 3) store__bind_text(s, st, 3, t1);
    if (np >= 4) store__bind_text(s, st, 4, t2);
    rc = store__exec(s, st, what);
    if (rc == GIZ_OK && changes) *changes += sq_changes(s);
    store__finalize(s, st);
    return rc;
}

int giz_store_event_count_dropped(struct giz_store *s, const char *did, const char *source,
                                  int64_t n)
{
    if (!s || !store__fits(did, GIZ_DID_SIZE) || !source_ok(source) || n < 0) return GIZ_ERR_INVAL;
    if (n == 0) return GIZ_OK;
    return ev_exec_sql(s,
                       "INSERT INTO event_drops(did, source, reason, n) VALUES (?3, ?4, 'queue', "
                       "?1) ON CONFLICT(did, source, reason) DO UPDATE SET n = n + excluded.n",
                       n, 0, did, source, "counting queue-dropped events", NULL);
}

/* The per-device cap for every device with events above `upto`: counts and
 * deletes everything older than each one's newest `keep`. */
static int prune_devices(struct giz_store *s, unsigned keep, int64_t upto, int64_t *pruned)
{
    /* cut(did, id): the newest id to delete per touched device (NULL if
     * the device has no more than `keep`). */
    static const char cut[] =
        "WITH touched(did) AS (SELECT DISTINCT did FROM events WHERE id > ?2), "
        "cut(did, id) AS (SELECT did, (SELECT x.id FROM events x WHERE x.did = touched.did "
        "ORDER BY x.id DESC LIMIT 1 OFFSET ?1) FROM touched) ";
    int rc = ev_exec_sql(s,
                         "INSERT INTO event_drops(did, source, reason, n) "
                         "SELECT e.did, e.source, 'device', count(*) FROM ("
                         "WITH touched(did) AS (SELECT DISTINCT did FROM events WHERE id > ?2), "
                         "cut(did, id) AS (SELECT did, (SELECT x.id FROM events x WHERE "
                         "x.did = touched.did ORDER BY x.id DESC LIMIT 1 OFFSET ?1) FROM touched) "
                         "SELECT did, id FROM cut WHERE id IS NOT NULL) c "
                         "JOIN events e ON e.did = c.did AND e.id <= c.id WHERE true "
                         "GROUP BY e.did, e.source "
                         "ON CONFLICT(did, source, reason) DO UPDATE SET n = n + excluded.n",
                         keep, upto, NULL, NULL, "counting per-device pruned events", NULL);
    if (rc) return rc;
    {
        char sql[600];
        snprintf(sql, sizeof sql,
                 "%sDELETE FROM events WHERE id IN (SELECT e.id FROM cut JOIN events e "
                 "ON e.did = cut.did AND e.id <= cut.id WHERE cut.id IS NOT NULL)",
                 cut);
        rc = ev_exec_sql(s, sql, keep, upto, NULL, NULL, "pruning events per device", pruned);
    }
    return rc;
}

/* The total cap: deletes every event older than the newest `total`,
 * counting them, then folds counters of devices without events into '*'. */
static int prune_total(struct giz_store *s, uint64_t total, int64_t *pruned)
{
    int64_t lo = 0, hi = 0, cutid = 0;
    int rc;
    if (total == 0 || total > INT64_MAX) return GIZ_OK;
    rc = ev_scalar(s, "SELECT coalesce(min(id), 0) FROM events", 0, &lo, "reading oldest event");
    if (!rc)
        rc =
            ev_scalar(s, "SELECT coalesce(max(id), 0) FROM events", 0, &hi, "reading newest event");
    if (rc) return rc;
    if (hi == 0 || hi - lo + 1 <= (int64_t)total) return GIZ_OK; /* ids bound the count */
    rc = ev_scalar(s,
                   "SELECT coalesce((SELECT id FROM events ORDER BY id DESC LIMIT 1 "
                   "OFFSET ?1), 0)",
                   (int64_t)total, &cutid, "finding the total cut");
    if (rc || cutid == 0) return rc;
    rc = ev_exec_sql(s,
                     "INSERT INTO event_drops(did, source, reason, n) SELECT did, source, "
                     "'total', count(*) FROM events WHERE id <= ?1 GROUP BY did, source "
                     "ON CONFLICT(did, source, reason) DO UPDATE SET n = n + excluded.n",
                     cutid, 0, NULL, NULL, "counting total-pruned events", NULL);
    if (!rc)
        rc = ev_exec_sql(s, "DELETE FROM events WHERE id <= ?1", cutid, 0, NULL, NULL,
                         "pruning events to the total cap", pruned);
    if (!rc)
        rc = ev_exec_sql(s,
                         "INSERT INTO event_drops(did, source, reason, n) SELECT '*', source, "
                         "reason, sum(n) FROM event_drops d WHERE did <> '*' AND NOT EXISTS "
                         "(SELECT 1 FROM events e WHERE e.did = d.did) GROUP BY source, reason "
                         "ON CONFLICT(did, source, reason) DO UPDATE SET n = n + excluded.n",
                         0, 0, NULL, NULL, "folding drop counters", NULL);
    if (!rc)
        rc = ev_exec_sql(s,
                         "DELETE FROM event_drops WHERE did <> '*' AND NOT EXISTS "
                         "(SELECT 1 FROM events e WHERE e.did = event_drops.did)",
                         0, 0, NULL, NULL, "dropping folded counters", NULL);
    return rc;
}

int giz_store_event_prune(struct giz_store *s, unsigned per_device, uint64_t total, int64_t *pruned)
{
    int64_t upto = 0, keep = -1, max_id = 0, n = 0;
    int rc, kind = 0;
    bool open = false;

    if (!s) return GIZ_ERR_INVAL;
    if (pruned) *pruned = 0;
    rc = store__txn_open(s, &kind);
    if (rc) goto cleanup;
    open = true;
    rc = ev_scalar(s, "SELECT upto FROM event_prune WHERE id = 1", 0, &upto, "reading prune mark");
    if (!rc)
        rc = ev_scalar(s, "SELECT keep FROM event_prune WHERE id = 1", 0, &keep,
                       "reading prune keep");
    if (!rc)
        rc = ev_scalar(s, "SELECT coalesce(max(id), 0) FROM events", 0, &max_id,
                       "reading newest event");
    if (rc) goto cleanup;
    if (keep != (int64_t)per_device) upto = 0; /* a new limit: look at every device */
    if (per_device > 0 && max_id > upto) rc = prune_devices(s, per_device, upto, &n);
    if (!rc) rc = prune_total(s, total, &n);
    if (!rc)
        rc = ev_exec_sql(s, "UPDATE event_prune SET upto = ?1, keep = ?2 WHERE id = 1", max_id,
                         (int64_t)per_device, NULL, NULL, "writing prune mark", NULL);
    rc = store__txn_close(s, kind, rc);
    open = false;
    if (rc == GIZ_OK && pruned) *pruned = n;
cleanup:
    if (open) store__txn_abort(s, kind);
    return rc;
}
