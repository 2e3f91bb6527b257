/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device rows: read (with or without the passcode secrets), the
 * re-registration candidates of a product key + MAC, insert and disable
 * primitives for the rules in store_rules.c, list/count, versions and
 * presence.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <string.h>

#include "store_int.h"

void store__read_device_row(sqlite3_stmt *st, struct giz_device *d)
{
    memset(d, 0, sizeof *d);
    store__col_text(st, 0, d->did, sizeof d->did);
    store__col_text(st, 1, d->product_key, sizeof d->product_key);
    store__col_text(st, 2, d->mac, sizeof d->mac);
    d->status = sqlite3_column_int(st, 3);
    store__col_text(st, 4, d->wifi_soft_version, sizeof d->wifi_soft_version);
    store__col_text(st, 5, d->wifi_hard_version, sizeof d->wifi_hard_version);
    store__col_text(st, 6, d->mcu_soft_version, sizeof d->mcu_soft_version);
    store__col_text(st, 7, d->mcu_hard_version, sizeof d->mcu_hard_version);
    d->online = sqlite3_column_int(st, 8) != 0;
    d->last_seen = sqlite3_column_int64(st, 9);
    d->created_at = sqlite3_column_int64(st, 10);
}

int store__device_read(struct giz_store *s, const char *did, struct giz_device *out, char *hash,
                       size_t hash_cap)
{
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    return store__device_read_secret(s, did, out, hash, hash_cap, pcmac);
}

int store__device_read_secret(struct giz_store *s, const char *did, struct giz_device *out,
                              char *hash, size_t hash_cap, char *pcmac)
{
    sqlite3_stmt *st = s->st[ST_DEVICE_GET];
    int src;

    if (strlen(did) >= GIZ_DID_SIZE) return GIZ_ERR_NOT_FOUND;
    store__bind_text(s, st, 1, did);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        store__read_device_row(st, out);
        if (hash) store__col_text(st, 11, hash, hash_cap);
        if (hash) store__col_text(st, 12, pcmac, GIZ_PASSCODE_MAC_STR_MAX);
    }
    return store__row_end(s, st, src, "reading device");
}

/* Collects up to `max` active devices with this product key and MAC whose
 * DID is not in skip[0..nskip). */
int store__device_candidates(struct giz_store *s, const char *pk, const char *mac,
                             const struct candidate *skip, unsigned nskip, struct candidate *out,
                             unsigned max, unsigned *n)
{
    sqlite3_stmt *st = s->st[ST_DEVICE_CANDIDATES];
    int rc = GIZ_OK, src = SQLITE_DONE;

    *n = 0;
    store__bind_text(s, st, 1, pk);
    store__bind_text(s, st, 2, mac);
    while (*n < max && (src = store__step(s, st)) == SQLITE_ROW) {
        const char *did = (const char *)sqlite3_column_text(st, 0);
        bool seen = false;
        for (unsigned i = 0; did && i < nskip; i++)
            if (strcmp(skip[i].did, did) == 0) seen = true;
        if (seen || !did) continue;
        store__col_text(st, 0, out[*n].did, sizeof out[*n].did);
        store__col_text(st, 1, out[*n].hash, sizeof out[*n].hash);
        store__col_text(st, 2, out[*n].pcmac, sizeof out[*n].pcmac);
        (*n)++;
    }
    if (*n < max && src != SQLITE_DONE) rc = store__db_err(s, src, "finding devices by mac");
    store__reset(s, st);
    return rc;
}

int giz_store_device_get(struct giz_store *s, const char *did, struct giz_device *out)
{
    if (!s || !did || !out) return GIZ_ERR_INVAL;
    return store__device_read(s, did, out, NULL, 0);
}

int giz_store_device_list(struct giz_store *s, const char *product_key, bool online_only,
                          unsigned limit, unsigned offset, giz_store_device_cb cb, void *ud)
{
    struct giz_device d;
    sqlite3_stmt *st;
    int src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_DEVICE_LIST];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, product_key);
    store__bind_int(s, st, 2, online_only);
    store__bind_int(s, st, 3, limit ? (int64_t)limit : -1);
    store__bind_int(s, st, 4, offset);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        store__read_device_row(st, &d);
        if (cb(&d, ud)) break;
    }
    return store__list_end(s, st, src, "listing devices");
}

int giz_store_device_count(struct giz_store *s, const char *product_key, bool online_only,
                           int64_t *count)
{
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !count) return GIZ_ERR_INVAL;
    *count = 0;
    st = s->st[ST_DEVICE_COUNT];
    store__bind_text(s, st, 1, product_key);
    store__bind_int(s, st, 2, online_only);
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        rc = store__db_err(s, src, "counting devices");
    store__reset(s, st);
    return rc;
}

int giz_store_device_set_versions(struct giz_store *s, const char *did, int type,
                                  const char *soft_version, const char *hard_version)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !did || (type != 1 && type != 2)) return GIZ_ERR_INVAL;
    if (!soft_version) soft_version = "";
    if (!hard_version) hard_version = "";
    if (strlen(soft_version) >= GIZ_VER_SIZE || strlen(hard_version) >= GIZ_VER_SIZE)
        return GIZ_ERR_INVAL;
    st = s->st[type == 1 ? ST_DEVICE_SET_WIFI : ST_DEVICE_SET_MCU];
    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, soft_version);
    store__bind_text(s, st, 3, hard_version);
    rc = store__exec(s, st, "updating device versions");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

int giz_store_device_set_online(struct giz_store *s, const char *did, bool online, int64_t now)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !did) return GIZ_ERR_INVAL;
    st = s->st[ST_DEVICE_SET_ONLINE];
    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, online ? 1 : 0);
    store__bind_int(s, st, 3, now);
    rc = store__exec(s, st, "updating presence");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

int giz_store_device_all_offline(struct giz_store *s)
{
    if (!s) return GIZ_ERR_INVAL;
    return store__exec(s, s->st[ST_DEVICE_ALL_OFFLINE], "marking devices offline");
}

int store__device_insert(struct giz_store *s, const char *did, const char *product_key,
                         const char *mac, const char *hash, const char *pcmac, int64_t now)
{
    sqlite3_stmt *st = s->st[ST_DEVICE_INSERT];
    int rc = GIZ_OK, src;

    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, product_key);
    store__bind_text(s, st, 3, mac);
    store__bind_text(s, st, 4, hash);
    store__bind_int(s, st, 5, now);
    store__bind_text(s, st, 6, pcmac);
    src = store__step(s, st);
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = GIZ_ERR_EXISTS;
    else if (src != SQLITE_DONE)
        rc = store__db_err(s, src, "inserting device");
    store__reset(s, st);
    return rc;
}

int store__device_disable(struct giz_store *s, const char *did, int64_t now)
{
    sqlite3_stmt *st = s->st[ST_DEVICE_DISABLE];
    int rc;

    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, now);
    rc = store__exec(s, st, "disabling device");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_DISABLED;
    return rc;
}
