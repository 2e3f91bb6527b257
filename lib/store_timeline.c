/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The broker's side of the timeline in the store (schema/008): the plugin's
 * metrics snapshot in the broker row (Prometheus text the GService appends
 * to its /metrics) and each device's current MQTT connection (device_conn:
 * peer, keepalive asked and granted, protocol level, clean session, since
 * when). Statements are prepared per call (a few a second at most).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"

int giz_store_broker_metrics_put(struct giz_store *s, const char *text, int64_t now_ms)
{
    sq_stmt *st = NULL;
    int rc;
    if (!s || !text || strnlen(text, GIZ_BROKER_METRICS_MAX + 1) > GIZ_BROKER_METRICS_MAX)
        return GIZ_ERR_INVAL;
    rc = store__prepare(s, "UPDATE brokers SET metrics = ?1, metrics_at = ?2 WHERE name = ?3", &st,
                        "preparing broker metrics");
    if (rc) return rc;
    store__bind_text(s, st, 1, text);
    store__bind_int(s, st, 2, now_ms);
    store__bind_text(s, st, 3, s->broker_name[0] ? s->broker_name : "broker");
    rc = store__exec(s, st, "writing broker metrics");
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    store__finalize(s, st);
    return rc;
}

int giz_store_broker_metrics_get(struct giz_store *s, char **text, int64_t *at_ms)
{
    sq_stmt *st = NULL;
    int rc, src;
    if (!s || !text) return GIZ_ERR_INVAL;
    *text = NULL;
    if (at_ms) *at_ms = 0;
    /* the freshest broker's (one broker: its own) */
    rc = store__prepare(s,
                        "SELECT metrics, coalesce(metrics_at, 0) FROM brokers "
                        "ORDER BY heartbeat_at DESC, name LIMIT 1",
                        &st, "preparing broker metrics read");
    if (rc) return rc;
    src = store__step(s, st);
    if (src == SQLITE_ROW && sq_column_type(st, 0) == SQLITE_TEXT) {
        const unsigned char *t = sq_column_text(st, 0);
        int n = sq_column_bytes(st, 0);
        *text = t ? malloc((size_t)n + 1u) : NULL;
        if (*text == NULL) {
            rc = GIZ_ERR_NOMEM;
        } else {
            memcpy(*text, t, (size_t)n);
            (*text)[n] = '\0';
            if (at_ms) *at_ms = sq_column_int64(st, 1);
        }
    } else if (src == SQLITE_ROW || src == SQLITE_DONE) {
        rc = GIZ_ERR_NOT_FOUND;
    } else {
        rc = store__db_err(s, src, "reading broker metrics");
    }
    store__finalize(s, st);
    return rc;
}

int giz_store_broker_metrics_each(struct giz_store *s, int64_t max_age_ms,
                                  giz_store_broker_metrics_cb cb, void *ud)
{
    sq_stmt *st = NULL;
    struct timespec ts;
    int rc, src;
    if (!s || !cb || max_age_ms < 0) return GIZ_ERR_INVAL;
    clock_gettime(CLOCK_REALTIME, &ts);
    rc = store__prepare(s,
                        "SELECT name, metrics FROM brokers WHERE stopped_at IS NULL AND "
                        "heartbeat_at >= ?1 AND metrics IS NOT NULL ORDER BY name",
                        &st, "preparing broker metrics list");
    if (rc) return rc;
    store__bind_int(s, st, 1, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - max_age_ms);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        const unsigned char *name = sq_column_text(st, 0), *text = sq_column_text(st, 1);
        if (name && text && cb((const char *)name, (const char *)text, ud) != 0) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = store__db_err(s, src, "listing broker metrics");
    store__finalize(s, st);
    return rc;
}

int giz_store_device_conn_set(struct giz_store *s, const char *did, const struct giz_device_conn *c)
{
    sq_stmt *st;
    if (!s || !c || !store__fits(did, GIZ_DID_SIZE) || !did[0] ||
        !store__fits(c->peer, GIZ_CONN_PEER_SIZE))
        return GIZ_ERR_INVAL;
    st = s->st[ST_DEVICE_CONN_SET];
    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, c->peer);
    store__bind_int(s, st, 3, c->keepalive);
    if (c->keepalive_asked >= 0)
        store__bind_int(s, st, 4, c->keepalive_asked);
    else
        store__bind_text(s, st, 4, NULL);
    store__bind_int(s, st, 5, c->protocol_level);
    store__bind_int(s, st, 6, c->clean_session ? 1 : 0);
    store__bind_int(s, st, 7, c->connected_at_ms);
    return store__exec(s, st, "writing device connection");
}

int giz_store_device_conn_get(struct giz_store *s, const char *did, struct giz_device_conn *out)
{
    sq_stmt *st = NULL;
    int rc, src;
    if (!s || !out || !store__fits(did, GIZ_DID_SIZE)) return GIZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    out->keepalive_asked = -1;
    rc = store__prepare(s,
                        "SELECT peer, keepalive, coalesce(keepalive_asked, -1), protocol_level, "
                        "clean_session, connected_at FROM device_conn WHERE did = ?1",
                        &st, "preparing device connection read");
    if (rc) return rc;
    store__bind_text(s, st, 1, did);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        store__col_text(st, 0, out->peer, sizeof(out->peer));
        out->keepalive = sq_column_int(st, 1);
        out->keepalive_asked = sq_column_int(st, 2);
        out->protocol_level = sq_column_int(st, 3);
        out->clean_session = sq_column_int(st, 4) != 0;
        out->connected_at_ms = sq_column_int64(st, 5);
    } else if (src == SQLITE_DONE) {
        rc = GIZ_ERR_NOT_FOUND;
    } else {
        rc = store__db_err(s, src, "reading device connection");
    }
    store__finalize(s, st);
    return rc;
}

int giz_store_event_count_pruned(struct giz_store *s, const char *did, const char *source,
                                 int64_t n)
{
    sq_stmt *st = NULL;
    int rc;
    if (!s || !store__fits(did, GIZ_DID_SIZE) || !source ||
        (strcmp(source, "http") != 0 && strcmp(source, "mqtt") != 0) || n < 0)
        return GIZ_ERR_INVAL;
    if (n == 0) return GIZ_OK;
    rc = store__prepare(
        s,
        "INSERT INTO event_drops(did, source, reason, n) VALUES (?1, ?2, 'device', ?3) "
        "ON CONFLICT(did, source, reason) DO UPDATE SET n = n + excluded.n",
        &st, "preparing pruned-event count");
    if (rc) return rc;
    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, source);
    store__bind_int(s, st, 3, n);
    rc = store__exec(s, st, "counting pruned events");
    store__finalize(s, st);
    return rc;
}
