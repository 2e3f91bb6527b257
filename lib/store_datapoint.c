/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Data points in the store (schema 007): each product's data-point JSON
 * (product_datapoints) and each device's latest decoded state (device_state:
 * attrs replaced by full reports, merged with json_patch by partial ones, and
 * the last report that did not decode). The JSON is checked by the callers
 * (giz_p0_schema_parse, giz_p0_decode); the store checks sizes and that the
 * product or device exists (the foreign keys).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define MAX_MALFORMED_TEXT 512u

/* Runs a write whose only possible constraint failure is its foreign key:
 * GIZ_ERR_NOT_FOUND for that (no log line: an unknown key is the caller's
 * answer, not a store failure), GIZ_OK, or the store__db_err code. */
static int exec_fk(struct giz_store *s, sq_stmt *st, const char *what)
{
    int rc = store__step(s, st), ret = GIZ_OK;

    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        ret = GIZ_ERR_NOT_FOUND;
    else if (rc != SQLITE_DONE)
        ret = store__db_err(s, rc, what);
    store__reset(s, st);
    return ret;
}

int giz_store_datapoints_put(struct giz_store *s, const char *product_key, const char *json,
                             size_t len, int64_t now_s)
{
    sq_stmt *st;

    if (!s || !store__fits(product_key, GIZ_PK_SIZE) || !json || len == 0) return GIZ_ERR_INVAL;
    if (len > GIZ_DATAPOINTS_MAX_JSON) return GIZ_ERR_OVERSIZE;
    st = s->st[ST_DP_PUT];
    store__bind_text(s, st, 1, product_key);
    store__bind_textn(s, st, 2, json, len);
    store__bind_int(s, st, 3, now_s);
    return exec_fk(s, st, "storing data points");
}

int giz_store_datapoints_get(struct giz_store *s, const char *product_key, char **json, size_t *len,
                             int64_t *updated_at)
{
    sq_stmt *st;
    int src, rc;

    if (!s || !store__fits(product_key, GIZ_PK_SIZE) || !json) return GIZ_ERR_INVAL;
    *json = NULL;
    st = s->st[ST_DP_GET];
    store__bind_text(s, st, 1, product_key);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        const unsigned char *t = sq_column_text(st, 0);
        size_t n = (size_t)sq_column_bytes(st, 0);

        if (!t || !(*json = malloc(n + 1))) {
            store__reset(s, st);
            return GIZ_ERR_NOMEM;
        }
        memcpy(*json, t, n);
        (*json)[n] = 0;
        if (len) *len = n;
        if (updated_at) *updated_at = sq_column_int64(st, 1);
    }
    rc = store__row_end(s, st, src, "reading data points");
    return rc;
}

int giz_store_device_state_report(struct giz_store *s, const char *did, const char *attrs_json,
                                  bool replace, int64_t ts_ms)
{
    sq_stmt *st;

    if (!s || !store__fits(did, GIZ_DID_SIZE) || !attrs_json || attrs_json[0] != '{')
        return GIZ_ERR_INVAL;
    if (strlen(attrs_json) > GIZ_DATAPOINTS_MAX_JSON) return GIZ_ERR_OVERSIZE;
    st = s->st[ST_DSTATE_REPORT];
    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, attrs_json);
    store__bind_int(s, st, 3, ts_ms);
    store__bind_int(s, st, 4, replace ? 1 : 0);
    return exec_fk(s, st, "recording device state");
}

int giz_store_device_state_malformed(struct giz_store *s, const char *did, const char *error,
                                     const char *hex, int64_t ts_ms)
{
    sq_stmt *st;

    if (!s || !store__fits(did, GIZ_DID_SIZE)) return GIZ_ERR_INVAL;
    if (!error) error = "";
    if (!hex) hex = "";
    st = s->st[ST_DSTATE_MALFORMED];
    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, ts_ms);
    store__bind_textn(s, st, 3, error, strnlen(error, MAX_MALFORMED_TEXT));
    store__bind_textn(s, st, 4, hex, strnlen(hex, MAX_MALFORMED_TEXT));
    return exec_fk(s, st, "recording a malformed report");
}

int giz_store_device_state_get(struct giz_store *s, const char *did, giz_store_device_state_cb cb,
                               void *ud)
{
    struct giz_device_state ds;
    sq_stmt *st;
    int src;

    if (!s || !store__fits(did, GIZ_DID_SIZE) || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_DSTATE_GET];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, did);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        memset(&ds, 0, sizeof ds);
        store__col_text(st, 0, ds.did, sizeof ds.did);
        ds.attrs = (const char *)sq_column_text(st, 1);
        ds.updated_at = sq_column_int64(st, 2);
        ds.reports = sq_column_int64(st, 3);
        ds.malformed_at = sq_column_int64(st, 4);
        ds.malformed_error = (const char *)sq_column_text(st, 5);
        ds.malformed_hex = (const char *)sq_column_text(st, 6);
        ds.malformed_count = sq_column_int64(st, 7);
        if (!ds.attrs) {
            store__reset(s, st);
            return GIZ_ERR_NOMEM;
        }
        if (!ds.malformed_error) ds.malformed_error = "";
        if (!ds.malformed_hex) ds.malformed_hex = "";
        cb(&ds, ud);
    }
    return store__row_end(s, st, src, "reading device state");
}
