/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * OTA campaigns in the store (schema/011_campaigns.sql): creating a
 * campaign with its device rows resolved from the targets in SQL, reading
 * and listing campaigns, state changes, the device rows (lists, counts,
 * write-back), the engine's evidence query (events joined with the rows
 * they concern) and its cursor. Statements are prepared per call, as in
 * store_event.c: the engine batches its work, so a prepare is paid per
 * batch, not per device.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"

static const char *const campaign_states[GIZ_CAMPAIGN_STATE_COUNT] = {
    "running", "paused", "cancelled", "completed", "stopped"};
static const char *const cdev_states[GIZ_CDEV_STATE_COUNT] = {
    "pending", "notified", "checked", "offered", "downloading", "downloaded", "updated", "failed"};

const char *giz_campaign_state_name(int state)
{
    return state >= 0 && state < GIZ_CAMPAIGN_STATE_COUNT ? campaign_states[state] : "unknown";
}

int giz_campaign_state_parse(const char *name)
{
    for (int i = 0; name && i < GIZ_CAMPAIGN_STATE_COUNT; i++)
        if (strcmp(name, campaign_states[i]) == 0) return i;
    return -1;
}

const char *giz_cdev_state_name(int state)
{
    return state >= 0 && state < GIZ_CDEV_STATE_COUNT ? cdev_states[state] : "unknown";
}

int giz_cdev_state_parse(const char *name)
{
    for (int i = 0; name && i < GIZ_CDEV_STATE_COUNT; i++)
        if (strcmp(name, cdev_states[i]) == 0) return i;
    return -1;
}

/* Runs a one-shot statement; *changes (may be NULL) gets the rows changed. */
static int cp_exec(struct giz_store *s, sq_stmt *st, const char *what, int64_t *changes)
{
    int rc = store__exec(s, st, what);
    if (rc == GIZ_OK && changes) *changes = sq_changes(s);
    return rc;
}

#define CAMPAIGN_COLS                                                                              \
    "c.id, c.name, c.product_key, c.fw_type, c.firmware_id, c.soft_version, c.target_kind, "       \
    "c.version_min, c.version_max, c.percent, c.canary, c.failure_threshold, c.starts_at, "        \
    "c.ends_at, c.window_start, c.window_end, c.force, c.timeout_s, c.max_checks, c.state, "       \
    "c.reason, c.event_from, c.created_at, c.updated_at, "                                         \
    "(SELECT count(*) FROM campaign_devices d WHERE d.campaign_id = c.id)"

static void read_campaign(sq_stmt *st, struct giz_campaign *c)
{
    char state[16];
    memset(c, 0, sizeof *c);
    c->id = sq_column_int64(st, 0);
    store__col_text(st, 1, c->name, sizeof c->name);
    store__col_text(st, 2, c->product_key, sizeof c->product_key);
    c->fw_type = sq_column_int(st, 3);
    c->firmware_id = sq_column_int64(st, 4);
    store__col_text(st, 5, c->soft_version, sizeof c->soft_version);
    store__col_text(st, 6, c->target_kind, sizeof c->target_kind);
    store__col_text(st, 7, c->version_min, sizeof c->version_min);
    store__col_text(st, 8, c->version_max, sizeof c->version_max);
    c->percent = (unsigned)sq_column_int(st, 9);
    c->canary = (unsigned)sq_column_int(st, 10);
    c->failure_threshold = (unsigned)sq_column_int(st, 11);
    c->starts_at = sq_column_int64(st, 12);
    c->ends_at = sq_column_int64(st, 13);
    c->window_start = sq_column_int(st, 14);
    c->window_end = sq_column_int(st, 15);
    c->force = sq_column_int(st, 16) != 0;
    c->timeout_s = (unsigned)sq_column_int(st, 17);
    c->max_checks = (unsigned)sq_column_int(st, 18);
    store__col_text(st, 19, state, sizeof state);
    c->state = giz_campaign_state_parse(state);
    store__col_text(st, 20, c->reason, sizeof c->reason);
    c->event_from = sq_column_int64(st, 21);
    c->created_at = sq_column_int64(st, 22);
    c->updated_at = sq_column_int64(st, 23);
    c->devices = sq_column_int64(st, 24);
}

static bool kind_ok(const char *k)
{
    static const char *const kinds[] = {"all", "dids", "macs", "versions", "percent"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(k, kinds[i]) == 0) return true;
    return false;
}

static bool campaign_fields_ok(const struct giz_campaign *c, const struct giz_campaign_targets *t)
{
    bool list = strcmp(c->target_kind, "dids") == 0 || strcmp(c->target_kind, "macs") == 0;
    return store__fits(c->name, GIZ_NAME_SIZE) && store__fits(c->product_key, GIZ_PK_SIZE) &&
           (c->fw_type == 1 || c->fw_type == 2) && c->soft_version[0] &&
           store__fits(c->soft_version, GIZ_VER_SIZE) &&
           store__fits(c->target_kind, GIZ_CAMPAIGN_KIND_SIZE) && kind_ok(c->target_kind) &&
           store__fits(c->version_min, GIZ_VER_SIZE) && store__fits(c->version_max, GIZ_VER_SIZE) &&
           c->percent >= 1 && c->percent <= 100 && c->window_start >= -1 &&
           c->window_start < 1440 && c->window_end >= -1 && c->window_end <= 1440 &&
           (!list || (t && t->list_json));
}

/* The target filter over devices d (binds: ?1 product, ?2 type, ?3 target
 * version, ?4 kind, ?5 list JSON, ?6 vmin, ?7 vmax). */
#define TARGET_VER "(CASE ?2 WHEN 1 THEN d.wifi_soft_version ELSE d.mcu_soft_version END)"
#define TARGET_WHERE                                                                               \
    "d.product_key = ?1 AND d.status = 1 AND (" TARGET_VER " = '' OR " TARGET_VER " < ?3) "        \
    "AND (?4 <> 'dids' OR d.did IN (SELECT value FROM json_each(?5))) "                            \
    "AND (?4 <> 'macs' OR d.mac IN (SELECT upper(value) FROM json_each(?5))) "                     \
    "AND (?4 <> 'versions' OR ((?6 = '' OR " TARGET_VER " >= ?6) AND (?7 = '' OR " TARGET_VER      \
    " <= ?7)))"

static void bind_targets(struct giz_store *s, sq_stmt *st, const struct giz_campaign *c,
                         const struct giz_campaign_targets *t)
{
    store__bind_text(s, st, 1, c->product_key);
    store__bind_int(s, st, 2, c->fw_type);
    store__bind_text(s, st, 3, c->soft_version);
    store__bind_text(s, st, 4, c->target_kind);
    store__bind_text(s, st, 5, t && t->list_json ? t->list_json : "[]");
    store__bind_text(s, st, 6, c->version_min);
    store__bind_text(s, st, 7, c->version_max);
}

/* count of a one-shot SELECT that binds like bind_targets (+ ?8 int). */
static int target_scalar(struct giz_store *s, const char *sql, const struct giz_campaign *c,
                         const struct giz_campaign_targets *t, int64_t extra, int64_t *out,
                         const char *what)
{
    sq_stmt *st = NULL;
    int rc = store__prepare(s, sql, &st, what), src;
    if (rc) return rc;
    bind_targets(s, st, c, t);
    if (sq_bind_parameter_count(st) >= 8) store__bind_int(s, st, 8, extra);
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *out = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, src == SQLITE_DONE ? SQLITE_ERROR : src, what);
    store__finalize(s, st);
    return rc;
}

/* *n = the length of JSON array text; GIZ_ERR_INVAL if text is no array. */
static int json_array_len(struct giz_store *s, const char *text, int64_t *n)
{
    sq_stmt *st = NULL;
    int rc = store__prepare(s,
                            "SELECT CASE WHEN json_valid(?1) AND json_type(?1) = 'array' THEN "
                            "json_array_length(?1) ELSE -1 END",
                            &st, "preparing a JSON check");
    if (rc) return rc;
    store__bind_text(s, st, 1, text);
    if (store__step(s, st) == SQLITE_ROW)
        *n = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, SQLITE_ERROR, "checking a JSON list");
    store__finalize(s, st);
    return rc == GIZ_OK && *n < 0 ? GIZ_ERR_INVAL : rc;
}

int giz_store_campaign_create(struct giz_store *s, struct giz_campaign *c,
                              const struct giz_campaign_targets *t, int64_t *unmatched)
{
    sq_stmt *st = NULL;
    int rc, kind = 0;
    bool open = false;
    int64_t matched = 0, take = 0, inserted = 0, listed = 0, marked = 0, last_event = 0;
    int64_t canaries = 0; /* only checked */
    int64_t now = store__now_s();

    if (!s || !c || !campaign_fields_ok(c, t)) return GIZ_ERR_INVAL;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    open = true;
    /* the lists must be JSON arrays (json_each of other text fails) */
    if (t && t->list_json && (rc = json_array_len(s, t->list_json, &listed)) != GIZ_OK)
        goto cleanup;
    if (t && t->canary_json && (rc = json_array_len(s, t->canary_json, &canaries)) != GIZ_OK)
        goto cleanup;
    rc = target_scalar(s, "SELECT count(*) FROM devices d WHERE " TARGET_WHERE, c, t, 0, &matched,
                       "counting campaign targets");
    if (rc) goto cleanup;
    take = strcmp(c->target_kind, "percent") == 0 ? (matched * c->percent + 99) / 100 : matched;
    if (take == 0) {
        rc = GIZ_ERR_NOT_FOUND;
        goto cleanup;
    }
    rc = giz_store_event_last_id(s, &last_event);
    if (rc) goto cleanup;
    rc = store__prepare(
        s,
        "INSERT INTO campaigns(name, product_key, fw_type, firmware_id, soft_version, "
        "target_kind, version_min, version_max, percent, canary, failure_threshold, "
        "starts_at, ends_at, window_start, window_end, force, timeout_s, max_checks, "
        "state, reason, event_from, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, "
        "?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, 'running', "
        "'', ?18, ?19, ?19)",
        &st, "preparing campaign insert");
    if (rc) goto cleanup;
    store__bind_text(s, st, 1, c->name);
    store__bind_text(s, st, 2, c->product_key);
    store__bind_int(s, st, 3, c->fw_type);
    store__bind_int(s, st, 4, c->firmware_id);
    store__bind_text(s, st, 5, c->soft_version);
    store__bind_text(s, st, 6, c->target_kind);
    store__bind_text(s, st, 7, c->version_min);
    store__bind_text(s, st, 8, c->version_max);
    store__bind_int(s, st, 9, c->percent);
    store__bind_int(s, st, 10, c->failure_threshold);
    store__bind_int(s, st, 11, c->starts_at);
    store__bind_int(s, st, 12, c->ends_at);
    store__bind_int(s, st, 13, c->window_start);
    store__bind_int(s, st, 14, c->window_end);
    store__bind_int(s, st, 15, c->force ? 1 : 0);
    store__bind_int(s, st, 16, c->timeout_s);
    store__bind_int(s, st, 17, c->max_checks);
    store__bind_int(s, st, 18, last_event);
    store__bind_int(s, st, 19, now);
    rc = cp_exec(s, st, "inserting campaign", NULL);
    store__finalize(s, st);
    st = NULL;
    if (rc) goto cleanup;
    c->id = sq_last_insert_rowid(s);
    rc = store__prepare(s,
                        "INSERT INTO campaign_devices(campaign_id, did, mac, state, from_version, "
                        "version) SELECT ?8, d.did, d.mac, 'pending', " TARGET_VER ", " TARGET_VER
                        " FROM devices d WHERE " TARGET_WHERE " ORDER BY d.did LIMIT ?9",
                        &st, "preparing campaign devices");
    if (rc) goto cleanup;
    bind_targets(s, st, c, t);
    store__bind_int(s, st, 8, c->id);
    store__bind_int(s, st, 9, take);
    rc = cp_exec(s, st, "inserting campaign devices", &inserted);
    store__finalize(s, st);
    st = NULL;
    if (rc) goto cleanup;
    if (t && t->canary_json) {
        rc = store__prepare(
            s,
            "UPDATE campaign_devices SET canary = 1 WHERE campaign_id = ?1 AND did IN "
            "(SELECT value FROM json_each(?2) LIMIT ?3)",
            &st, "preparing canary marks");
        if (rc) goto cleanup;
        store__bind_int(s, st, 1, c->id);
        store__bind_text(s, st, 2, t->canary_json);
        store__bind_int(s, st, 3, c->canary > 0 ? (int64_t)c->canary : INT64_MAX);
        rc = cp_exec(s, st, "marking canaries", &marked);
        store__finalize(s, st);
        st = NULL;
        if (rc) goto cleanup;
    }
    if ((int64_t)c->canary > marked) {
        int64_t more = 0;
        rc = store__prepare(
            s,
            "UPDATE campaign_devices SET canary = 1 WHERE campaign_id = ?1 AND did IN "
            "(SELECT did FROM campaign_devices WHERE campaign_id = ?1 AND canary = 0 "
            "ORDER BY did LIMIT ?2)",
            &st, "preparing canary marks");
        if (rc) goto cleanup;
        store__bind_int(s, st, 1, c->id);
        store__bind_int(s, st, 2, (int64_t)c->canary - marked);
        rc = cp_exec(s, st, "marking canaries", &more);
        store__finalize(s, st);
        st = NULL;
        if (rc) goto cleanup;
        marked += more;
    }
    rc = store__prepare(s, "UPDATE campaigns SET canary = ?2 WHERE id = ?1", &st,
                        "preparing canary count");
    if (rc) goto cleanup;
    store__bind_int(s, st, 1, c->id);
    store__bind_int(s, st, 2, marked);
    rc = cp_exec(s, st, "writing canary count", NULL);
    store__finalize(s, st);
    st = NULL;
    if (rc) goto cleanup;
    c->canary = (unsigned)marked;
    c->state = GIZ_CAMPAIGN_RUNNING;
    c->reason[0] = '\0';
    c->event_from = last_event;
    c->created_at = c->updated_at = now;
    c->devices = inserted;
    if (unmatched) *unmatched = listed > inserted ? listed - inserted : 0;
    rc = store__txn_close(s, kind, GIZ_OK);
    open = false;
cleanup:
    store__finalize(s, st);
    if (open) store__txn_abort(s, kind);
    return rc;
}

int giz_store_campaign_get(struct giz_store *s, int64_t id, struct giz_campaign *out)
{
    sq_stmt *st = NULL;
    int rc, src;
    if (!s || !out) return GIZ_ERR_INVAL;
    rc = store__prepare(s, "SELECT " CAMPAIGN_COLS " FROM campaigns c WHERE c.id = ?1", &st,
                        "preparing campaign get");
    if (rc) return rc;
    store__bind_int(s, st, 1, id);
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        read_campaign(st, out);
    else if (src == SQLITE_DONE)
        rc = GIZ_ERR_NOT_FOUND;
    else
        rc = store__db_err(s, src, "reading campaign");
    store__finalize(s, st);
    return rc;
}

#define LIVE_STATES "('running', 'paused', 'stopped')"
/* live, or completed in the last minute (its devices' late evidence) */
#define LIVE_OR_RECENT(c)                                                                          \
    "(" c ".state IN " LIVE_STATES " OR (" c ".state = 'completed' AND " c ".updated_at >= "       \
    "CAST(strftime('%s', 'now') AS INTEGER) - 60))"

int giz_store_campaign_list(struct giz_store *s, bool live_only, unsigned limit, unsigned offset,
                            giz_store_campaign_cb cb, void *ud)
{
    sq_stmt *st = NULL;
    struct giz_campaign c;
    int rc, src;
    if (!s || !cb) return GIZ_ERR_INVAL;
    rc = store__prepare(s,
                        "SELECT " CAMPAIGN_COLS " FROM campaigns c WHERE ?1 = 0 OR " LIVE_OR_RECENT(
                            "c") " ORDER BY c.id DESC LIMIT ?2 OFFSET ?3",
                        &st, "preparing campaign list");
    if (rc) return rc;
    store__bind_int(s, st, 1, live_only ? 1 : 0);
    store__bind_int(s, st, 2, limit ? (int64_t)limit : -1);
    store__bind_int(s, st, 3, offset);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        read_campaign(st, &c);
        if (cb(&c, ud)) {
            src = SQLITE_DONE;
            break;
        }
    }
    rc = src == SQLITE_DONE ? GIZ_OK : store__db_err(s, src, "listing campaigns");
    store__finalize(s, st);
    return rc;
}

int giz_store_campaign_count(struct giz_store *s, bool live_only, int64_t *count)
{
    sq_stmt *st = NULL;
    int rc, src;
    if (!s || !count) return GIZ_ERR_INVAL;
    rc = store__prepare(s, "SELECT count(*) FROM campaigns WHERE ?1 = 0 OR state IN " LIVE_STATES,
                        &st, "preparing campaign count");
    if (rc) return rc;
    store__bind_int(s, st, 1, live_only ? 1 : 0);
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *count = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, src, "counting campaigns");
    store__finalize(s, st);
    return rc;
}

int giz_store_campaign_set_state(struct giz_store *s, int64_t id, unsigned from_mask, int state,
                                 const char *reason, int *old)
{
    struct giz_campaign c;
    sq_stmt *st = NULL;
    int rc, kind = 0;
    bool open = false;
    if (!s || state < 0 || state >= GIZ_CAMPAIGN_STATE_COUNT ||
        (reason && !store__fits(reason, GIZ_CAMPAIGN_REASON_SIZE)))
        return GIZ_ERR_INVAL;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    open = true;
    rc = giz_store_campaign_get(s, id, &c);
    if (rc) goto cleanup;
    if (old) *old = c.state;
    if (c.state < 0 || !(from_mask & (1u << c.state))) {
        rc = GIZ_ERR_EXISTS;
        goto cleanup;
    }
    rc = store__prepare(
        s, "UPDATE campaigns SET state = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1", &st,
        "preparing campaign state");
    if (rc) goto cleanup;
    store__bind_int(s, st, 1, id);
    store__bind_text(s, st, 2, giz_campaign_state_name(state));
    store__bind_text(s, st, 3, reason ? reason : "");
    store__bind_int(s, st, 4, store__now_s());
    rc = cp_exec(s, st, "writing campaign state", NULL);
    if (rc) goto cleanup;
    rc = store__txn_close(s, kind, GIZ_OK);
    open = false;
cleanup:
    store__finalize(s, st);
    if (open) store__txn_abort(s, kind);
    return rc;
}

/* ---- device rows ---------------------------------------------------------- */

#define CDEV_COLS                                                                                  \
    "cd.campaign_id, cd.did, cd.mac, cd.canary, cd.state, cd.reason, cd.from_version, "            \
    "cd.version, cd.notices, cd.checks, cd.downloads, cd.bytes, cd.percent, cd.notice_day, "       \
    "cd.notified_at, cd.checked_at, cd.offered_at, cd.downloading_at, cd.downloaded_at, "          \
    "cd.done_at, cd.progress_at"
#define CDEV_NCOLS 21

static void read_cdev(sq_stmt *st, int base, struct giz_cdev *d)
{
    char state[16];
    memset(d, 0, sizeof *d);
    d->campaign_id = sq_column_int64(st, base + 0);
    store__col_text(st, base + 1, d->did, sizeof d->did);
    store__col_text(st, base + 2, d->mac, sizeof d->mac);
    d->canary = sq_column_int(st, base + 3) != 0;
    store__col_text(st, base + 4, state, sizeof state);
    d->state = giz_cdev_state_parse(state);
    store__col_text(st, base + 5, d->reason, sizeof d->reason);
    store__col_text(st, base + 6, d->from_version, sizeof d->from_version);
    store__col_text(st, base + 7, d->version, sizeof d->version);
    d->notices = sq_column_int64(st, base + 8);
    d->checks = sq_column_int64(st, base + 9);
    d->downloads = sq_column_int64(st, base + 10);
    d->bytes = sq_column_int64(st, base + 11);
    d->percent = sq_column_int(st, base + 12);
    d->notice_day = sq_column_int64(st, base + 13);
    d->notified_at = sq_column_int64(st, base + 14);
    d->checked_at = sq_column_int64(st, base + 15);
    d->offered_at = sq_column_int64(st, base + 16);
    d->downloading_at = sq_column_int64(st, base + 17);
    d->downloaded_at = sq_column_int64(st, base + 18);
    d->done_at = sq_column_int64(st, base + 19);
    d->progress_at = sq_column_int64(st, base + 20);
}

int giz_store_cdev_list(struct giz_store *s, const struct giz_cdev_query *q, giz_store_cdev_cb cb,
                        void *ud)
{
    sq_stmt *st = NULL;
    struct giz_cdev d;
    int rc, src;
    if (!s || !q || !cb || q->state >= GIZ_CDEV_STATE_COUNT) return GIZ_ERR_INVAL;
    rc = store__prepare(
        s,
        "SELECT " CDEV_COLS " FROM campaign_devices cd WHERE cd.campaign_id = ?1 "
        "AND (?2 IS NULL OR cd.state = ?2) "
        "AND (?3 = 0 OR (cd.state IN ('notified', 'checked', 'offered', 'downloading', "
        "'downloaded') AND cd.progress_at < ?3)) "
        "AND (?4 = 0 OR (cd.state = 'pending' AND (?5 = 0 OR cd.canary = 1) AND EXISTS "
        "(SELECT 1 FROM devices d WHERE d.did = cd.did AND d.online = 1 AND d.status = 1))) "
        "ORDER BY iif(?4 = 0, 0, -cd.canary), cd.did LIMIT ?6 OFFSET ?7",
        &st, "preparing campaign device list");
    if (rc) return rc;
    store__bind_int(s, st, 1, q->campaign_id);
    store__bind_text(s, st, 2, q->state >= 0 ? giz_cdev_state_name(q->state) : NULL);
    store__bind_int(s, st, 3, q->stale_before_ms > 0 ? q->stale_before_ms : 0);
    store__bind_int(s, st, 4, q->due_online ? 1 : 0);
    store__bind_int(s, st, 5, q->canary_only ? 1 : 0);
    store__bind_int(s, st, 6, q->limit ? (int64_t)q->limit : -1);
    store__bind_int(s, st, 7, q->offset);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        read_cdev(st, 0, &d);
        if (cb(&d, ud)) {
            src = SQLITE_DONE;
            break;
        }
    }
    rc = src == SQLITE_DONE ? GIZ_OK : store__db_err(s, src, "listing campaign devices");
    store__finalize(s, st);
    return rc;
}

int giz_store_cdev_counts(struct giz_store *s, int64_t campaign_id, bool canary_only,
                          int64_t counts[GIZ_CDEV_STATE_COUNT])
{
    sq_stmt *st = NULL;
    int rc, src;
    if (!s || !counts) return GIZ_ERR_INVAL;
    for (int i = 0; i < GIZ_CDEV_STATE_COUNT; i++)
        counts[i] = 0;
    rc = store__prepare(s,
                        "SELECT state, count(*) FROM campaign_devices WHERE campaign_id = ?1 "
                        "AND (?2 = 0 OR canary = 1) GROUP BY state",
                        &st, "preparing campaign counts");
    if (rc) return rc;
    store__bind_int(s, st, 1, campaign_id);
    store__bind_int(s, st, 2, canary_only ? 1 : 0);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        int i = giz_cdev_state_parse((const char *)sq_column_text(st, 0));
        if (i >= 0) counts[i] = sq_column_int64(st, 1);
    }
    rc = src == SQLITE_DONE ? GIZ_OK : store__db_err(s, src, "counting campaign devices");
    store__finalize(s, st);
    return rc;
}

static bool cdev_ok(const struct giz_cdev *d)
{
    return store__fits(d->did, GIZ_DID_SIZE) && d->state >= 0 && d->state < GIZ_CDEV_STATE_COUNT &&
           store__fits(d->reason, GIZ_CAMPAIGN_REASON_SIZE) &&
           store__fits(d->version, GIZ_VER_SIZE);
}

int giz_store_cdev_put(struct giz_store *s, const struct giz_cdev *rows, size_t n)
{
    sq_stmt *st = NULL;
    int rc = GIZ_OK, kind = 0;
    bool open = false;
    if (!s || (!rows && n)) return GIZ_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!cdev_ok(&rows[i])) return GIZ_ERR_INVAL;
    if (n == 0) return GIZ_OK;
    rc = store__prepare(
        s,
        "UPDATE campaign_devices SET state = ?3, reason = ?4, version = ?5, "
        "notices = ?6, checks = ?7, downloads = ?8, bytes = ?9, percent = ?10, "
        "notice_day = ?11, notified_at = ?12, checked_at = ?13, offered_at = ?14, "
        "downloading_at = ?15, downloaded_at = ?16, done_at = ?17, progress_at = ?18 "
        "WHERE campaign_id = ?1 AND did = ?2",
        &st, "preparing campaign device update");
    if (rc) return rc;
    rc = store__txn_open(s, &kind);
    if (rc) goto cleanup;
    open = true;
    for (size_t i = 0; i < n && rc == GIZ_OK; i++) {
        const struct giz_cdev *d = &rows[i];
        store__bind_int(s, st, 1, d->campaign_id);
        store__bind_text(s, st, 2, d->did);
        store__bind_text(s, st, 3, giz_cdev_state_name(d->state));
        store__bind_text(s, st, 4, d->reason);
        store__bind_text(s, st, 5, d->version);
        store__bind_int(s, st, 6, d->notices);
        store__bind_int(s, st, 7, d->checks);
        store__bind_int(s, st, 8, d->downloads);
        store__bind_int(s, st, 9, d->bytes);
        store__bind_int(s, st, 10, d->percent);
        store__bind_int(s, st, 11, d->notice_day);
        store__bind_int(s, st, 12, d->notified_at);
        store__bind_int(s, st, 13, d->checked_at);
        store__bind_int(s, st, 14, d->offered_at);
        store__bind_int(s, st, 15, d->downloading_at);
        store__bind_int(s, st, 16, d->downloaded_at);
        store__bind_int(s, st, 17, d->done_at);
        store__bind_int(s, st, 18, d->progress_at);
        rc = store__exec(s, st, "updating campaign device");
    }
    rc = store__txn_close(s, kind, rc);
    open = false;
cleanup:
    if (open) store__txn_abort(s, kind);
    store__finalize(s, st);
    return rc;
}

/* ---- the engine's evidence and cursor -------------------------------------------- */

/* Evidence is what came after the campaign's creation: events stored after
 * it (ids past event_from) that were also recorded after it (ts; the
 * broker's timeline writer stores events up to ~0.5 s after they happen). */
int giz_store_campaign_evidence(struct giz_store *s, int64_t after, int64_t upto, unsigned limit,
                                int64_t done_after_ms, giz_store_evidence_cb cb, void *ud,
                                int64_t *last_id, unsigned *events)
{
    static const char sql[] =
        "WITH tracked(did) AS (SELECT DISTINCT cd.did FROM campaign_devices cd JOIN campaigns c "
        "ON c.id = cd.campaign_id WHERE " LIVE_OR_RECENT(
            "c") " AND (cd.state NOT IN ('updated', 'failed') OR cd.done_at > ?4)), "
                 "ev AS (SELECT e.id, e.did, e.ts, e.kind, e.source, e.fields FROM events e "
                 "WHERE e.id > ?1 AND e.id <= ?2 AND e.kind IN ('ota_check', 'download', "
                 "'publish_in', "
                 "'subscribe') AND e.did IN (SELECT did FROM tracked) ORDER BY e.id LIMIT ?3) "
                 "SELECT ev.id, ev.did, ev.ts, ev.kind, ev.source, ev.fields, " CDEV_COLS
                 " FROM ev "
                 "LEFT JOIN (campaign_devices cd JOIN campaigns c ON c.id = cd.campaign_id "
                 "AND " LIVE_OR_RECENT(
                     "c") ") ON cd.did = ev.did AND (cd.state NOT IN ('updated', 'failed') OR "
                          "cd.done_at > ?4) "
                          "AND ev.id > c.event_from AND ev.ts >= c.created_at * 1000 "
                          "ORDER BY ev.id, cd.campaign_id";
    sq_stmt *st = NULL;
    struct giz_event ev;
    struct giz_cdev row;
    int64_t prev = -1;
    unsigned n = 0;
    int rc, src;
    if (!s || !cb || !last_id) return GIZ_ERR_INVAL;
    *last_id = after;
    rc = store__prepare(s, sql, &st, "preparing campaign evidence");
    if (rc) return rc;
    store__bind_int(s, st, 1, after);
    store__bind_int(s, st, 2, upto);
    store__bind_int(s, st, 3, limit ? limit : 1000);
    store__bind_int(s, st, 4, done_after_ms);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        memset(&ev, 0, sizeof ev);
        ev.id = sq_column_int64(st, 0);
        store__col_text(st, 1, ev.did, sizeof ev.did);
        ev.ts = sq_column_int64(st, 2);
        store__col_text(st, 3, ev.kind, sizeof ev.kind);
        ev.source = (const char *)sq_column_text(st, 4);
        ev.fields = (const char *)sq_column_text(st, 5);
        if (ev.id != prev) n++;
        prev = ev.id;
        *last_id = ev.id;
        if (sq_column_type(st, 6) == SQLITE_NULL) continue; /* an older campaign's */
        read_cdev(st, 6, &row);
        if (cb(&ev, &row, ud)) {
            src = SQLITE_DONE;
            break;
        }
    }
    rc = src == SQLITE_DONE ? GIZ_OK : store__db_err(s, src, "reading campaign evidence");
    store__finalize(s, st);
    if (events) *events = n;
    return rc;
}

int giz_store_campaign_cursor_get(struct giz_store *s, int64_t *event_id)
{
    sq_stmt *st = NULL;
    int rc, src;
    if (!s || !event_id) return GIZ_ERR_INVAL;
    rc = store__prepare(s, "SELECT event_id FROM campaign_cursor WHERE id = 1", &st,
                        "preparing campaign cursor");
    if (rc) return rc;
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *event_id = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, src == SQLITE_DONE ? SQLITE_ERROR : src, "reading campaign cursor");
    store__finalize(s, st);
    return rc;
}

int giz_store_campaign_cursor_set(struct giz_store *s, int64_t event_id)
{
    sq_stmt *st = NULL;
    int rc;
    if (!s || event_id < 0) return GIZ_ERR_INVAL;
    rc = store__prepare(s, "UPDATE campaign_cursor SET event_id = ?1 WHERE id = 1", &st,
                        "preparing campaign cursor");
    if (rc) return rc;
    store__bind_int(s, st, 1, event_id);
    rc = cp_exec(s, st, "writing campaign cursor", NULL);
    store__finalize(s, st);
    return rc;
}
