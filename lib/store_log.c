/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device log records (0x0012): insert, list newest first, prune to the
 * newest `keep` per device.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdint.h>
#include <string.h>

#include "store_int.h"

/* ---- device logs ----------------------------------------------------------- */

int giz_store_log_insert(struct giz_store *s, const char *did, int level, const char *tags,
                         size_t tags_len, const char *source, size_t source_len,
                         const char *content, size_t content_len, int64_t ts)
{
    sq_stmt *st;

    if (!s || !did || strlen(did) >= GIZ_DID_SIZE || level < 1 || level > 3) return GIZ_ERR_INVAL;
    if ((!tags && tags_len) || (!source && source_len) || (!content && content_len))
        return GIZ_ERR_INVAL;
    if (tags_len > MAX_LOG_TEXT || source_len > MAX_LOG_TEXT || content_len > MAX_LOG_TEXT)
        return GIZ_ERR_OVERSIZE;
    st = s->st[ST_LOG_INSERT];
    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, level);
    store__bind_textn(s, st, 3, tags, tags_len);
    store__bind_textn(s, st, 4, source, source_len);
    store__bind_textn(s, st, 5, content, content_len);
    store__bind_int(s, st, 6, ts);
    return store__exec(s, st, "inserting device log");
}

/* Calls cb for each row of a LOG_LIST / LOG_PAGE statement (binds done). */
static int log_rows(struct giz_store *s, sq_stmt *st, giz_store_log_cb cb, void *ud)
{
    struct giz_device_log l;
    int src;

    while ((src = store__step(s, st)) == SQLITE_ROW) {
        memset(&l, 0, sizeof l);
        l.id = sq_column_int64(st, 0);
        store__col_text(st, 1, l.did, sizeof l.did);
        l.level = sq_column_int(st, 2);
        l.tags = (const char *)sq_column_text(st, 3);
        l.source = (const char *)sq_column_text(st, 4);
        l.content = (const char *)sq_column_text(st, 5);
        l.ts = sq_column_int64(st, 6);
        if (!l.tags || !l.source || !l.content) {
            src = SQLITE_NOMEM;
            break;
        }
        if (cb(&l, ud)) break;
    }
    return store__list_end(s, st, src, "listing device logs");
}

int giz_store_log_list(struct giz_store *s, const char *did, unsigned limit, int64_t before_id,
                       giz_store_log_cb cb, void *ud)
{
    sq_stmt *st;

    if (!s || !did || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_LOG_LIST];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, before_id > 0 ? before_id : INT64_MAX);
    store__bind_int(s, st, 3, limit ? limit : 100);
    return log_rows(s, st, cb, ud);
}

int giz_store_log_page(struct giz_store *s, const char *did, unsigned limit, unsigned offset,
                       int64_t before_id, giz_store_log_cb cb, void *ud)
{
    sq_stmt *st;

    if (!s || !did || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_LOG_PAGE];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, before_id > 0 ? before_id : INT64_MAX);
    store__bind_int(s, st, 3, limit ? (int64_t)limit : -1);
    store__bind_int(s, st, 4, offset);
    return log_rows(s, st, cb, ud);
}

int giz_store_log_count(struct giz_store *s, const char *did, int64_t before_id, int64_t *count)
{
    sq_stmt *st;

    if (!s || !did || !count) return GIZ_ERR_INVAL;
    st = s->st[ST_LOG_COUNT];
    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, before_id > 0 ? before_id : INT64_MAX);
    return store__count(s, st, "counting device logs", count);
}

int giz_store_log_prune(struct giz_store *s, unsigned keep)
{
    sq_stmt *st;
    int64_t max_id = 0;
    int rc, src;
    if (!s) return GIZ_ERR_INVAL;
    /* Only devices with records newer than this connection's last prune can
     * be over `keep`: one index walk each instead of a scan of every log. */
    st = s->st[ST_LOG_MAX_ID];
    src = store__step(s, st);
    if (src == SQLITE_ROW) max_id = sq_column_int64(st, 0);
    rc = src == SQLITE_ROW ? GIZ_OK : store__db_err(s, src, "reading the newest device log");
    store__reset(s, st);
    if (rc != GIZ_OK) return rc;
    if (s->log_pruned_keep != (int64_t)keep) s->log_pruned_upto = 0; /* new limit: look at all */
    if (max_id <= s->log_pruned_upto) return GIZ_OK;
    st = s->st[ST_LOG_PRUNE];
    store__bind_int(s, st, 1, keep);
    store__bind_int(s, st, 2, s->log_pruned_upto);
    rc = store__exec(s, st, "pruning device logs");
    if (rc == GIZ_OK) {
        s->log_pruned_upto = max_id;
        s->log_pruned_keep = keep;
    }
    return rc;
}
