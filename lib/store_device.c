/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device rows: read (with or without the passcode secrets), the
 * re-registration candidates of a product key + MAC, insert and disable
 * primitives for the rules in store_rules.c, list/count, versions and
 * presence.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "giz/util.h"
#include "store_int.h"

void store__read_device_row(sq_stmt *st, struct giz_device *d)
{
    memset(d, 0, sizeof *d);
    store__col_text(st, 0, d->did, sizeof d->did);
    store__col_text(st, 1, d->product_key, sizeof d->product_key);
    store__col_text(st, 2, d->mac, sizeof d->mac);
    d->status = sq_column_int(st, 3);
    store__col_text(st, 4, d->wifi_soft_version, sizeof d->wifi_soft_version);
    store__col_text(st, 5, d->wifi_hard_version, sizeof d->wifi_hard_version);
    store__col_text(st, 6, d->mcu_soft_version, sizeof d->mcu_soft_version);
    store__col_text(st, 7, d->mcu_hard_version, sizeof d->mcu_hard_version);
    d->online = sq_column_int(st, 8) != 0;
    d->last_seen = sq_column_int64(st, 9);
    d->created_at = sq_column_int64(st, 10);
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
    sq_stmt *st = s->st[ST_DEVICE_GET];
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
    sq_stmt *st = s->st[ST_DEVICE_CANDIDATES];
    int rc = GIZ_OK, src = SQLITE_DONE;

    *n = 0;
    store__bind_text(s, st, 1, pk);
    store__bind_text(s, st, 2, mac);
    while (*n < max && (src = store__step(s, st)) == SQLITE_ROW) {
        const char *did = (const char *)sq_column_text(st, 0);
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
    sq_stmt *st;
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
    sq_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !count) return GIZ_ERR_INVAL;
    *count = 0;
    st = s->st[ST_DEVICE_COUNT];
    store__bind_text(s, st, 1, product_key);
    store__bind_int(s, st, 2, online_only);
    src = store__step(s, st);
    if (src == SQLITE_ROW)
        *count = sq_column_int64(st, 0);
    else
        rc = store__db_err(s, src, "counting devices");
    store__reset(s, st);
    return rc;
}

int giz_store_device_set_versions(struct giz_store *s, const char *did, int type,
                                  const char *soft_version, const char *hard_version)
{
    sq_stmt *st;
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
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

int giz_store_device_set_online(struct giz_store *s, const char *did, bool online, int64_t now)
{
    sq_stmt *st;
    int rc;

    if (!s || !did) return GIZ_ERR_INVAL;
    if (s->broker_name[0] != '\0') { /* a named broker: scoped to its devices */
        st = s->st[online ? ST_DEVICE_SET_ONLINE_AT : ST_DEVICE_SET_OFFLINE_AT];
        store__bind_text(s, st, 1, did);
        store__bind_int(s, st, 2, now);
        store__bind_text(s, st, 3, s->broker_name);
    } else {
        st = s->st[ST_DEVICE_SET_ONLINE];
        store__bind_text(s, st, 1, did);
        store__bind_int(s, st, 2, online ? 1 : 0);
        store__bind_int(s, st, 3, now);
    }
    rc = store__exec(s, st, "updating presence");
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

/* A named broker's start-up and clean stop (prepared per call: twice a run). */
#define SQL_DEVICE_MINE_OFFLINE                                                                    \
    "UPDATE devices SET online = 0 WHERE online <> 0 "                                             \
    "AND (broker IS NULL OR broker = ?1)"

int giz_store_device_all_offline(struct giz_store *s)
{
    sq_stmt *st = NULL;
    int rc;
    if (!s) return GIZ_ERR_INVAL;
    if (s->broker_name[0] == '\0')
        return store__exec(s, s->st[ST_DEVICE_ALL_OFFLINE], "marking devices offline");
    rc = store__prepare(s, SQL_DEVICE_MINE_OFFLINE, &st, "preparing the broker's offline marks");
    if (rc != GIZ_OK) return rc;
    store__bind_text(s, st, 1, s->broker_name);
    rc = store__exec(s, st, "marking this broker's devices offline");
    store__finalize(s, st);
    return rc;
}

int store__device_insert(struct giz_store *s, const char *did, const char *product_key,
                         const char *mac, const char *hash, const char *pcmac, int64_t now)
{
    sq_stmt *st = s->st[ST_DEVICE_INSERT];
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
    sq_stmt *st = s->st[ST_DEVICE_DISABLE];
    int rc;

    store__bind_text(s, st, 1, did);
    store__bind_int(s, st, 2, now);
    rc = store__exec(s, st, "disabling device");
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_DISABLED;
    return rc;
}

/* ---- operator control (helper "admin", schema 010) ------------------------ */

/* The outbox row that makes the plugin drop did's cached credentials and
 * kick its session (inside the caller's transaction). */
static int kick_event(struct giz_store *s, const struct giz_device *d, int64_t now)
{
    struct giz_outbox_item it;
    memset(&it, 0, sizeof it);
    it.kind = GIZ_OUTBOX_DEVICE_DISABLED;
    memcpy(it.did, d->did, sizeof it.did);
    memcpy(it.product_key, d->product_key, sizeof it.product_key);
    return store__outbox_insert(s, &it, now, NULL);
}

enum kick_when { KICK_NEVER, KICK_ALWAYS, KICK_IF_ACTIVE };

/* Reads did, runs stmt (did = ?1, now = ?2 if it has it), queues the kick.
 * A disabled device has no session to kick (logins are refused): a kick
 * queued for it would only hit the session it opens after being enabled. */
static int admin_change(struct giz_store *s, const char *did, enum store_stmt_id id,
                        enum kick_when when, bool *was_active)
{
    bool kick = false;
    struct giz_device d;
    int rc, kind;
    int64_t now = store__now_s();

    if (!s || !did) return GIZ_ERR_INVAL;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    rc = store__device_read(s, did, &d, NULL, 0);
    if (rc == GIZ_OK && was_active) *was_active = d.status == GIZ_DEVICE_ACTIVE;
    if (rc == GIZ_OK)
        kick = when == KICK_ALWAYS || (when == KICK_IF_ACTIVE && d.status == GIZ_DEVICE_ACTIVE);
    if (rc == GIZ_OK && id != ST__COUNT) {
        sq_stmt *st = s->st[id];
        store__bind_text(s, st, 1, did);
        if (sq_bind_parameter_count(st) >= 2) store__bind_int(s, st, 2, now);
        rc = store__exec(s, st, "changing device status");
    }
    if (rc == GIZ_OK && kick) rc = kick_event(s, &d, now);
    rc = store__txn_close(s, kind, rc);
    if (rc == GIZ_OK && kick) giz_pcache_forget(s->pcache, did);
    return rc;
}

int giz_store_device_admin_disable(struct giz_store *s, const char *did, bool *changed)
{
    return admin_change(s, did, ST_DEVICE_ADMIN_DISABLE, KICK_IF_ACTIVE, changed);
}

int giz_store_device_admin_enable(struct giz_store *s, const char *did, bool *changed)
{
    bool was_active = false;
    int rc = admin_change(s, did, ST_DEVICE_ADMIN_ENABLE, KICK_NEVER, &was_active);
    if (rc == GIZ_OK && changed) *changed = !was_active;
    return rc;
}

int giz_store_device_kick(struct giz_store *s, const char *did)
{
    return admin_change(s, did, ST__COUNT, KICK_ALWAYS, NULL);
}

int giz_store_device_admin_state(struct giz_store *s, const char *did, bool *admin_disabled,
                                 int64_t *disabled_at)
{
    sq_stmt *st;
    int src;

    if (!s || !did || !admin_disabled || !disabled_at) return GIZ_ERR_INVAL;
    st = s->st[ST_DEVICE_ADMIN_STATE];
    store__bind_text(s, st, 1, did);
    src = store__step(s, st);
    *admin_disabled = src == SQLITE_ROW && sq_column_int(st, 0) != 0;
    *disabled_at = src == SQLITE_ROW ? sq_column_int64(st, 1) : 0;
    return store__row_end(s, st, src, "reading device state");
}

struct uid_set {
    char (*uid)[GIZ_UID_SIZE];
    size_t n, cap;
    bool nomem;
};

static int uid_collect_cb(const struct giz_binding *b, void *ud)
{
    struct uid_set *u = ud;
    void *p = giz_array_reserve(u->uid, &u->cap, u->n + 1, sizeof *u->uid, 16, SIZE_MAX);
    if (p == NULL) {
        u->nomem = true;
        return 1;
    }
    u->uid = p;
    memcpy(u->uid[u->n++], b->uid, GIZ_UID_SIZE);
    return 0;
}

/* DELETE FROM <every other table with a did column> WHERE did = ?1. */
static int delete_did_rows(struct giz_store *s, const char *did)
{
    sq_stmt *st = s->st[ST_DEVICE_DID_TABLES];
    char names[32][64];
    unsigned n = 0;
    int src, rc;

    while (n < 32 && (src = store__step(s, st)) == SQLITE_ROW)
        store__col_text(st, 0, names[n++], sizeof names[0]);
    rc = store__list_end(s, st, n < 32 ? src : SQLITE_DONE, "listing per-device tables");
    for (unsigned i = 0; rc == GIZ_OK && i < n; i++) {
        char *sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE did = ?1", names[i]);
        sq_stmt *del = NULL;
        if (sql == NULL) return GIZ_ERR_NOMEM;
        src = sq_prepare_v2(s, sql, -1, &del, NULL);
        sqlite3_free(sql);
        if (src != SQLITE_OK) return store__db_err(s, src, "deleting per-device rows");
        store__bind_text(s, del, 1, did);
        src = store__step(s, del);
        if (src != SQLITE_DONE) rc = store__db_err(s, src, "deleting per-device rows");
        sq_finalize(del);
    }
    return rc;
}

int giz_store_device_delete(struct giz_store *s, const char *did, unsigned *unbound)
{
    struct giz_device d;
    struct uid_set u = {NULL, 0, 0, false};
    sq_stmt *st;
    int rc, kind, src;
    int64_t now = store__now_s();

    if (!s || !did) return GIZ_ERR_INVAL;
    if (unbound) *unbound = 0;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    rc = store__device_read(s, did, &d, NULL, 0);
    if (rc == GIZ_OK) rc = giz_store_binding_list_by_device(s, did, uid_collect_cb, &u);
    if (rc == GIZ_OK && u.nomem) rc = GIZ_ERR_NOMEM;
    for (size_t i = 0; rc == GIZ_OK && i < u.n; i++) {
        struct giz_outbox_item it;
        memset(&it, 0, sizeof it);
        it.kind = GIZ_OUTBOX_BINDING;
        memcpy(it.did, d.did, sizeof it.did);
        memcpy(it.product_key, d.product_key, sizeof it.product_key);
        memcpy(it.uid, u.uid[i], sizeof it.uid);
        rc = store__outbox_insert(s, &it, now, NULL);
    }
    if (rc == GIZ_OK) {
        st = s->st[ST_BINDING_DELETE_DEVICE];
        store__bind_text(s, st, 1, did);
        rc = store__exec(s, st, "deleting the device's bindings");
    }
    if (rc == GIZ_OK) rc = delete_did_rows(s, did);
    if (rc == GIZ_OK) {
        st = s->st[ST_DEVICE_DELETE];
        store__bind_text(s, st, 1, did);
        src = store__step(s, st);
        if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
            rc = GIZ_ERR_EXISTS;
        else if (src != SQLITE_DONE)
            rc = store__db_err(s, src, "deleting device");
        store__reset(s, st);
    }
    if (rc == GIZ_OK) rc = kick_event(s, &d, now);
    rc = store__txn_close(s, kind, rc);
    if (rc == GIZ_OK) {
        giz_pcache_forget(s->pcache, did);
        if (unbound) *unbound = (unsigned)u.n;
    }
    free(u.uid);
    return rc;
}
