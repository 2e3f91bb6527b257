/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The outbox, GService -> plugin events: insert (alone or inside a rule's
 * transaction), fetch after an id, last id, prune.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <string.h>

#include "store_int.h"

int store__outbox_insert(struct giz_store *s, const struct giz_outbox_item *it, int64_t now,
                         int64_t *id_out)
{
    sq_stmt *st = s->st[ST_OUTBOX_INSERT];
    int rc;

    store__bind_int(s, st, 1, it->kind);
    store__bind_text(s, st, 2, it->did);
    store__bind_text(s, st, 3, it->product_key);
    store__bind_text(s, st, 4, it->uid);
    store__bind_int(s, st, 5, it->fw_type);
    store__bind_int(s, st, 6, it->ota_version);
    store__bind_int(s, st, 7, it->fid);
    store__bind_text(s, st, 8, it->url);
    store__bind_int(s, st, 9, now);
    store__bind_text(s, st, 10, it->client_id);
    store__bind_note(s, sq_bind_blob(st, 11, it->payload, (int)it->payload_len, SQLITE_STATIC));
    rc = store__exec(s, st, "inserting outbox item");
    if (rc == GIZ_OK && id_out) *id_out = sq_last_insert_rowid(s);
    return rc;
}

/* ---- outbox --------------------------------------------------------------- */

int giz_store_outbox_push(struct giz_store *s, const struct giz_outbox_item *it, int64_t *id_out)
{
    if (!s || !it || it->kind < GIZ_OUTBOX_OTA_PUSH || it->kind > GIZ_OUTBOX_APP_PUBLISH)
        return GIZ_ERR_INVAL;
    if (it->payload_len > GIZ_OUTBOX_PAYLOAD_MAX ||
        !store__fits(it->client_id, sizeof it->client_id))
        return GIZ_ERR_INVAL;
    if (!store__fits(it->did, sizeof it->did) ||
        !store__fits(it->product_key, sizeof it->product_key) ||
        !store__fits(it->uid, sizeof it->uid) || !store__fits(it->url, sizeof it->url))
        return GIZ_ERR_INVAL;
    return store__outbox_insert(s, it, store__now_s(), id_out);
}

int giz_store_outbox_fetch(struct giz_store *s, int64_t after_id, unsigned max,
                           giz_store_outbox_cb cb, void *ud)
{
    struct giz_outbox_item it;
    sq_stmt *st;
    int src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_OUTBOX_FETCH];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_int(s, st, 1, after_id);
    store__bind_int(s, st, 2, max ? (int64_t)max : -1);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        memset(&it, 0, sizeof it);
        it.id = sq_column_int64(st, 0);
        it.kind = sq_column_int(st, 1);
        store__col_text(st, 2, it.did, sizeof it.did);
        store__col_text(st, 3, it.product_key, sizeof it.product_key);
        store__col_text(st, 4, it.uid, sizeof it.uid);
        it.fw_type = sq_column_int(st, 5);
        it.ota_version = sq_column_int(st, 6);
        it.fid = sq_column_int64(st, 7);
        store__col_text(st, 8, it.url, sizeof it.url);
        it.created_at = sq_column_int64(st, 9);
        store__col_text(st, 10, it.client_id, sizeof it.client_id);
        int plen = sq_column_bytes(st, 11);
        const void *p = sq_column_blob(st, 11);
        if (p != NULL && plen > 0 && (unsigned)plen <= GIZ_OUTBOX_PAYLOAD_MAX) {
            memcpy(it.payload, p, (size_t)plen);
            it.payload_len = (uint32_t)plen;
        }
        if (cb(&it, ud)) break;
    }
    return store__list_end(s, st, src, "fetching outbox");
}

int giz_store_outbox_last_id(struct giz_store *s, int64_t *id)
{
    sq_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !id) return GIZ_ERR_INVAL;
    *id = 0;
    st = s->st[ST_OUTBOX_LAST];
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *id = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, src, "reading outbox last id");
    store__reset(s, st);
    return rc;
}

int giz_store_outbox_prune(struct giz_store *s, int64_t older_than)
{
    sq_stmt *st;
    if (!s) return GIZ_ERR_INVAL;
    st = s->st[ST_OUTBOX_PRUNE];
    store__bind_int(s, st, 1, older_than);
    return store__exec(s, st, "pruning outbox");
}
