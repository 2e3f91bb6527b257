/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device passcode verification: the keyed verifier (one HMAC under the
 * passcode key file), PBKDF2 for rows without it (then upgraded, best
 * effort), the attached verified-passcode cache (passcode_cache.c), and
 * loading or setting the key.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"
#include "store_pg.h"
#include "giz/crypto.h"

bool store__passcode_ok(const char *passcode)
{
    size_t n;
    if (!passcode) return false;
    n = strnlen(passcode, GIZ_MAX_PASSCODE + 1);
    if (n == 0 || n > GIZ_MAX_PASSCODE) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)passcode[i];
        if (c < 0x21 || c > 0x7e || c == '&') return false;
    }
    return true;
}

/* Writes the keyed verifier of a row that verified through PBKDF2 (the
 * upgrade of rows from before schema 4, or written without the key). Best
 * effort and never waiting for the write lock: if the database is busy the
 * row stays as it is and the next PBKDF2 login tries again. Only rows still
 * holding `hash` are touched. */
static void pcmac_upgrade(struct giz_store *s, const char *did, const char *passcode,
                          const char *hash)
{
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    sq_stmt *st = s->st[ST_DEVICE_SET_PCMAC];
    int src;

    if (giz_passcode_mac(&s->pkey, did, passcode, pcmac, sizeof pcmac) != GIZ_OK) return;
    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, hash);
    store__bind_text(s, st, 3, pcmac);
    s->no_wait = true;
    src = store__step(s, st);
    s->no_wait = false;
    if (src != SQLITE_DONE && (src & 0xff) != SQLITE_BUSY && (src & 0xff) != SQLITE_LOCKED)
        store__db_err(s, src, "writing the keyed passcode verifier");
    store__reset(s, st);
    explicit_bzero(pcmac, sizeof pcmac);
}

/* Verifies passcode for did: through the keyed verifier `pcmac` when the
 * store has the key it was written under (one HMAC: a match or a miss is
 * final), otherwise through the attached verified-passcode cache (an entry
 * for this exact stored hash) or PBKDF2 — refused with GIZ_ERR_AUTH and
 * *slow = true without computing when !slow_ok — and a PBKDF2 success
 * writes the keyed verifier. Every success is put into the cache with
 * product_key (PBKDF2 was ~60% of the GService's CPU in the gizsim device
 * flow: the OTA check right after registration; the plugin checks the
 * cache before SQLite). *slow: PBKDF2 was needed. */
int store__passcode_verify(struct giz_store *s, const char *did, const char *passcode,
                           const char *product_key, const char *hash, const char *pcmac,
                           bool slow_ok, bool *slow)
{
    int rc = GIZ_ERR_AUTH;
    bool keyed = false;

    *slow = false;
    if (s->pkey_set && pcmac[0] != '\0') {
        rc = giz_passcode_mac_verify(&s->pkey, did, passcode, pcmac);
        keyed = rc == GIZ_OK || rc == GIZ_ERR_AUTH;
        /* else another key (rotated) or malformed: PBKDF2 decides, then rewrite */
    }
    if (keyed) {
        /* final */
    } else if (giz_pcache_check(s->pcache, did, passcode, hash, false, NULL)) {
        rc = GIZ_OK;
    } else {
        *slow = true;
        if (!slow_ok) return GIZ_ERR_AUTH;
        rc = giz_secret_verify(passcode, hash);
    }
    /* The stored hash is vouched for only when PBKDF2 (or a cache entry
     * from it) accepted it; a keyed success puts an entry without it. */
    if (rc == GIZ_OK) giz_pcache_put(s->pcache, did, passcode, product_key, keyed ? NULL : hash);
    if (rc == GIZ_OK && !keyed && s->pkey_set) pcmac_upgrade(s, did, passcode, hash);
    return rc;
}

int store__device_verify_ex(struct giz_store *s, const char *did, const char *passcode,
                            struct giz_device *dev, bool slow_ok, bool *slow)
{
    char hash[GIZ_HASH_STR_MAX], pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    int rc = store__device_read_secret(s, did, dev, hash, sizeof hash, pcmac);
    *slow = false;
    if (rc) return rc;
    if (dev->status != GIZ_DEVICE_ACTIVE) return GIZ_ERR_DISABLED;
    if (!store__passcode_ok(passcode)) return GIZ_ERR_AUTH;
    rc = store__passcode_verify(s, did, passcode, dev->product_key, hash, pcmac, slow_ok, slow);
    if (rc == GIZ_ERR_INVAL) {
        giz_log(GIZ_LOG_ERR, "store: device %s has a malformed passcode hash", did);
        rc = GIZ_ERR_AUTH;
    }
    return rc;
}

int store__device_verify(struct giz_store *s, const char *did, const char *passcode,
                         struct giz_device *dev)
{
    bool slow;
    return store__device_verify_ex(s, did, passcode, dev, true, &slow);
}

int giz_store_device_auth(struct giz_store *s, const char *did, const char *passcode,
                          struct giz_device *out)
{
    struct giz_device dev;
    int rc;

    if (!s || !did) return GIZ_ERR_INVAL;
    rc = store__device_verify(s, did, passcode, &dev);
    if (rc == GIZ_OK && out) *out = dev;
    return rc;
}

int giz_store_device_auth_budget(struct giz_store *s, const char *did, const char *passcode,
                                 bool slow_ok, struct giz_device *out, bool *slow)
{
    struct giz_device dev;
    bool was_slow = false;
    int rc;

    if (slow) *slow = false;
    if (!s || !did) return GIZ_ERR_INVAL;
    rc = store__device_verify_ex(s, did, passcode, &dev, slow_ok, &was_slow);
    if (slow) *slow = was_slow;
    if (rc == GIZ_OK && out) *out = dev;
    return rc;
}

int giz_store_passcode_key_default(const char *db_path, char *out, size_t cap)
{
    const char *slash;
    size_t dir_len;
    int n;

    if (!db_path || !out || cap == 0) return GIZ_ERR_INVAL;
    out[0] = '\0';
    if (!db_path[0] || strcmp(db_path, ":memory:") == 0) return GIZ_ERR_INVAL;
    if (store_pg_is_conninfo(db_path)) return GIZ_ERR_INVAL; /* no folder: name the file */
    slash = strrchr(db_path, '/');
    dir_len = slash ? (size_t)(slash - db_path) : 0;
    if (slash && dir_len == 0) dir_len = 1; /* "/x.db" -> "/" */
    if (!slash)
        n = snprintf(out, cap, "passcode.key");
    else if (dir_len == 1 && db_path[0] == '/')
        n = snprintf(out, cap, "/passcode.key");
    else
        n = snprintf(out, cap, "%.*s/passcode.key", (int)dir_len, db_path);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return GIZ_ERR_NOSPACE;
    }
    return GIZ_OK;
}

int giz_store_set_pcache(struct giz_store *s, struct giz_pcache *c)
{
    if (!s) return GIZ_ERR_INVAL;
    s->pcache = c;
    return GIZ_OK;
}

int giz_store_set_passcode_key(struct giz_store *s, const struct giz_passcode_key *k)
{
    if (!s) return GIZ_ERR_INVAL;
    explicit_bzero(&s->pkey, sizeof s->pkey);
    s->pkey_set = k != NULL;
    if (k) s->pkey = *k;
    return GIZ_OK;
}

int giz_store_passcode_key_load(struct giz_store *s, const char *path, char *why, size_t why_cap)
{
    char def[GIZ_PATH_SIZE];
    struct giz_passcode_key k;
    int rc;

    if (why && why_cap) why[0] = '\0';
    if (!s) return GIZ_ERR_INVAL;
    if ((!path || !path[0]) && s->pg) {
        if (why && why_cap)
            snprintf(why, why_cap,
                     "the store is PostgreSQL: name the passcode key file (every GService "
                     "and broker on the database must share the same key)");
        return GIZ_ERR_INVAL;
    }
    if (!path || !path[0]) {
        const char *db = (s->db ? sqlite3_db_filename(s->db, "main") : NULL);
        rc = giz_store_passcode_key_default(db ? db : "", def, sizeof def);
        if (rc) {
            if (why && why_cap)
                snprintf(why, why_cap,
                         "no passcode key file named and no database folder to "
                         "put one in");
            return rc;
        }
        path = def;
    }
    {
        /* A new key file is group-readable only if the database is (a group
         * shared by the GService and the broker). */
        const char *db = (s->db ? sqlite3_db_filename(s->db, "main") : NULL);
        struct stat st;
        bool group_read = db && db[0] && stat(db, &st) == 0 && (st.st_mode & S_IRGRP);
        rc = giz_passcode_key_load(path, group_read, &k, why, why_cap);
    }
    if (rc == GIZ_OK) {
        s->pkey = k;
        s->pkey_set = true;
    }
    explicit_bzero(&k, sizeof k);
    return rc;
}
