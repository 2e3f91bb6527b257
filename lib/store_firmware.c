/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Firmware rows: insert, by id, latest for a product/type/hardware, by
 * exact version, list.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <string.h>

#include "store_int.h"

/* ---- firmware ------------------------------------------------------------ */

static void read_firmware(sq_stmt *st, struct giz_firmware *f)
{
    memset(f, 0, sizeof *f);
    f->id = sq_column_int64(st, 0);
    store__col_text(st, 1, f->product_key, sizeof f->product_key);
    f->type = sq_column_int(st, 2);
    store__col_text(st, 3, f->soft_version, sizeof f->soft_version);
    store__col_text(st, 4, f->hard_version, sizeof f->hard_version);
    store__col_text(st, 5, f->url, sizeof f->url);
    store__col_text(st, 6, f->file_path, sizeof f->file_path);
    store__col_text(st, 7, f->md5, sizeof f->md5);
    store__col_text(st, 8, f->filename, sizeof f->filename);
    f->size = sq_column_int64(st, 9);
    f->created_at = sq_column_int64(st, 10);
}

int giz_store_firmware_insert(struct giz_store *s, struct giz_firmware *fw)
{
    sq_stmt *st;
    int rc, src;
    int64_t now = store__now_s();

    if (!s || !fw || (fw->type != 1 && fw->type != 2)) return GIZ_ERR_INVAL;
    if (!store__fits(fw->product_key, sizeof fw->product_key) ||
        !store__fits(fw->soft_version, sizeof fw->soft_version) || fw->soft_version[0] == '\0' ||
        !store__fits(fw->hard_version, sizeof fw->hard_version) ||
        !store__fits(fw->url, sizeof fw->url) ||
        !store__fits(fw->file_path, sizeof fw->file_path) ||
        !store__fits(fw->md5, sizeof fw->md5) || !store__fits(fw->filename, sizeof fw->filename))
        return GIZ_ERR_INVAL;
    st = s->st[ST_FW_INSERT];
    store__bind_text(s, st, 1, fw->product_key);
    store__bind_int(s, st, 2, fw->type);
    store__bind_text(s, st, 3, fw->soft_version);
    store__bind_text(s, st, 4, fw->hard_version);
    store__bind_text(s, st, 5, fw->url);
    store__bind_text(s, st, 6, fw->file_path);
    store__bind_text(s, st, 7, fw->md5);
    store__bind_text(s, st, 8, fw->filename);
    store__bind_int(s, st, 9, fw->size);
    store__bind_int(s, st, 10, now);
    src = store__step(s, st);
    if (src == SQLITE_DONE) {
        fw->id = sq_last_insert_rowid(s);
        fw->created_at = now;
        rc = GIZ_OK;
    } else if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
        rc = GIZ_ERR_NOT_FOUND; /* unknown product key */
    } else {
        rc = store__db_err(s, src, "inserting firmware");
    }
    store__reset(s, st);
    return rc;
}

static int firmware_one(struct giz_store *s, sq_stmt *st, struct giz_firmware *out)
{
    int src = store__step(s, st);
    if (src == SQLITE_ROW) read_firmware(st, out);
    return store__row_end(s, st, src, "reading firmware");
}

int giz_store_firmware_get(struct giz_store *s, int64_t id, struct giz_firmware *out)
{
    sq_stmt *st;
    if (!s || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_GET];
    store__bind_int(s, st, 1, id);
    return firmware_one(s, st, out);
}

int giz_store_firmware_latest(struct giz_store *s, const char *product_key, int type,
                              const char *hard_version, struct giz_firmware *out)
{
    sq_stmt *st;
    if (!s || !product_key || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_LATEST];
    store__bind_text(s, st, 1, product_key);
    store__bind_int(s, st, 2, type);
    store__bind_text(s, st, 3, hard_version);
    return firmware_one(s, st, out);
}

int giz_store_firmware_list(struct giz_store *s, const char *product_key, giz_store_firmware_cb cb,
                            void *ud)
{
    struct giz_firmware f;
    sq_stmt *st;
    int src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_LIST];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, product_key);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        read_firmware(st, &f);
        if (cb(&f, ud)) break;
    }
    return store__list_end(s, st, src, "listing firmware");
}

int giz_store_firmware_find(struct giz_store *s, const char *product_key, int type,
                            const char *soft_version, const char *hard_version,
                            struct giz_firmware *out)
{
    sq_stmt *st;
    if (!s || !product_key || !soft_version || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_FIND];
    store__bind_text(s, st, 1, product_key);
    store__bind_int(s, st, 2, type);
    store__bind_text(s, st, 3, soft_version);
    store__bind_text(s, st, 4, hard_version ? hard_version : "");
    return firmware_one(s, st, out);
}

int giz_store_firmware_page(struct giz_store *s, const char *product_key, unsigned limit,
                            unsigned offset, giz_store_firmware_cb cb, void *ud)
{
    struct giz_firmware f;
    sq_stmt *st;
    int src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_PAGE];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, product_key);
    store__bind_int(s, st, 2, limit ? (int64_t)limit : -1);
    store__bind_int(s, st, 3, offset);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        read_firmware(st, &f);
        if (cb(&f, ud)) break;
    }
    return store__list_end(s, st, src, "listing firmware");
}

int giz_store_firmware_count(struct giz_store *s, const char *product_key, int64_t *count)
{
    sq_stmt *st;
    if (!s || !count) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_COUNT];
    store__bind_text(s, st, 1, product_key);
    return store__count(s, st, "counting firmware", count);
}

int giz_store_firmware_delete(struct giz_store *s, int64_t id, struct giz_firmware *out)
{
    struct giz_firmware f;
    sq_stmt *st;
    int rc, kind, src;

    if (!s) return GIZ_ERR_INVAL;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    rc = giz_store_firmware_get(s, id, &f);
    if (rc == GIZ_OK) {
        st = s->st[ST_FW_DELETE];
        store__bind_int(s, st, 1, id);
        src = store__step(s, st);
        if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
            rc = GIZ_ERR_EXISTS;
        else if (src != SQLITE_DONE)
            rc = store__db_err(s, src, "deleting firmware");
        store__reset(s, st);
    }
    rc = store__txn_close(s, kind, rc);
    if (rc == GIZ_OK && out) *out = f;
    return rc;
}
