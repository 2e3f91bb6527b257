/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device search for operators (the web console's fleet filter): devices
 * whose DID starts with a given text or whose MAC contains it, with the
 * number of all matches. Searches are rare and human-driven, so the
 * statement is prepared per call (not in the STORE_STMTS table); the query
 * scans the devices table (no index helps a MAC substring).
 */
#include <string.h>

#include "giz/util.h"
#include "store_int.h"

/* The search text: 1..22 of [0-9A-Za-z] (DIDs are base62, MACs hex), so it
 * holds no LIKE wildcard and needs no escaping. */
static bool search_text_ok(const char *q)
{
    size_t n = strlen(q);
    if (n == 0 || n >= GIZ_DID_SIZE) return false;
    for (size_t i = 0; i < n; i++)
        if (!giz_char_is_base62(q[i])) return false;
    return true;
}

#define SEARCH_WHERE                                                                               \
    " FROM devices WHERE (?1 IS NULL OR product_key = ?1) AND "                                    \
    "(substr(did, 1, length(?2)) = ?2 OR instr(mac, upper(?2)) > 0)"

static void search_finalize(struct giz_store *s, sq_stmt *st)
{
    if (st == NULL) return;
    s->bind_rc = SQLITE_OK;
    sq_finalize(st);
}

int giz_store_device_search(struct giz_store *s, const char *product_key, const char *q,
                            unsigned limit, unsigned offset, giz_store_device_cb cb, void *ud,
                            int64_t *total)
{
    sq_stmt *st = NULL;
    struct giz_device d;
    int rc, src;
    if (!s || !q || !cb || !total || !search_text_ok(q)) return GIZ_ERR_INVAL;
    *total = 0;
    src = sq_prepare_v2(s, "SELECT count(*)" SEARCH_WHERE, -1, &st, NULL);
    if (src != SQLITE_OK) {
        st = NULL;
        rc = store__db_err(s, src, "preparing the device search count");
        goto out;
    }
    store__bind_text(s, st, 1, product_key);
    store__bind_text(s, st, 2, q);
    rc = store__count(s, st, "counting device search matches", total);
    search_finalize(s, st);
    st = NULL;
    if (rc != GIZ_OK) goto out;
    src = sq_prepare_v2(s, "SELECT " DEVICE_COLS SEARCH_WHERE " ORDER BY rowid LIMIT ?3 OFFSET ?4",
                        -1, &st, NULL);
    if (src != SQLITE_OK) {
        st = NULL;
        rc = store__db_err(s, src, "preparing the device search");
        goto out;
    }
    store__bind_text(s, st, 1, product_key);
    store__bind_text(s, st, 2, q);
    store__bind_int(s, st, 3, limit ? (int64_t)limit : -1);
    store__bind_int(s, st, 4, offset);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        store__read_device_row(st, &d);
        if (cb(&d, ud)) break;
    }
    rc = store__list_end(s, st, src, "searching devices");
out:
    search_finalize(s, st);
    return rc;
}
