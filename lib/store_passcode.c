/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device passcode verification: the keyed verifier (one HMAC under the
 * passcode key file), PBKDF2 for rows without it (then upgraded, best
 * effort), the verified-passcode cache, and loading or setting the key.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"
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

/* ---- verified-passcode cache ----------------------------------------------
 * PBKDF2 was ~60% of the GService's CPU in the gizsim device flow, where the
 * OTA check right after registration verifies the passcode the register
 * call has just hashed. A process-wide, direct-mapped table remembers, per
 * DID, HMAC-SHA256(process-random key, did \n passcode \n stored hash) of a
 * passcode that verified (or was hashed) recently. The tag covers the hash
 * read from the database on every call, so an entry can only vouch for the
 * exact (passcode, stored hash) pair PBKDF2 accepted: a changed or removed
 * hash, another passcode or another DID never match; the device's status is
 * still checked from the row every time. No clear passcode is kept; entries
 * expire after VCACHE_TTL_S like the broker plugin's credential cache. A
 * miss costs one HMAC on top of the PBKDF2, so a wrong passcode takes as
 * long as before. */
#define VCACHE_SLOTS 1024u
#define VCACHE_TTL_S 600

struct vcache_entry {
    char did[GIZ_DID_SIZE];
    char tag[65];
    int64_t at;
};

static pthread_mutex_t vcache_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t vcache_once = PTHREAD_ONCE_INIT;
static uint8_t vcache_key[32];
static bool vcache_ready;
static struct vcache_entry *vcache; /* VCACHE_SLOTS entries, allocated on first use */
static unsigned vcache_users;       /* open stores; the table is freed with the last one */

void store__vcache_ref(struct giz_store *s)
{
    pthread_mutex_lock(&vcache_mu);
    vcache_users++;
    s->vcache_ref = true;
    pthread_mutex_unlock(&vcache_mu);
}

/* Frees the table when the last open store closes (the plugin can be
 * unloaded from a running broker; nothing may stay behind). */
void store__vcache_unref(struct giz_store *s)
{
    if (!s->vcache_ref) return;
    pthread_mutex_lock(&vcache_mu);
    s->vcache_ref = false;
    if (--vcache_users == 0) {
        free(vcache);
        vcache = NULL;
    }
    pthread_mutex_unlock(&vcache_mu);
}

static void vcache_init(void)
{
    vcache_ready = giz_random_bytes(vcache_key, sizeof vcache_key) == GIZ_OK;
}

static unsigned vcache_slot(const char *did)
{
    uint32_t h = 2166136261u;
    for (const char *p = did; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % VCACHE_SLOTS;
}

/* Computes the tag; false if the cache is unusable for these inputs. */
static bool vcache_tag(const char *did, const char *passcode, const char *hash, char tag[65])
{
    char text[GIZ_DID_SIZE + GIZ_MAX_PASSCODE + GIZ_HASH_STR_MAX + 4];
    int n;
    bool ok;

    pthread_once(&vcache_once, vcache_init);
    if (!vcache_ready || strlen(did) >= GIZ_DID_SIZE) return false;
    n = snprintf(text, sizeof text, "%s\n%s\n%s", did, passcode, hash);
    ok = n > 0 && (size_t)n < sizeof text &&
         giz_token_digest(vcache_key, sizeof vcache_key, text, tag, 65) == GIZ_OK;
    explicit_bzero(text, sizeof text);
    return ok;
}

/* True if passcode is known to verify against `hash` for `did`. */
static bool vcache_hit(const char *did, const char *passcode, const char *hash)
{
    char tag[65];
    bool hit = false;
    int64_t now = store__now_s();

    if (!vcache_tag(did, passcode, hash, tag)) return false;
    pthread_mutex_lock(&vcache_mu);
    if (vcache) {
        const struct vcache_entry *e = &vcache[vcache_slot(did)];
        hit = strcmp(e->did, did) == 0 && giz_consttime_eq(e->tag, tag, 64) &&
              now - e->at < VCACHE_TTL_S && now >= e->at;
    }
    pthread_mutex_unlock(&vcache_mu);
    return hit;
}

/* Remembers that passcode verifies against `hash` for `did`. */
void store__vcache_put(struct giz_store *s, const char *did, const char *passcode, const char *hash)
{
    char tag[65];
    (void)s;
    struct vcache_entry *e;

    if (!vcache_tag(did, passcode, hash, tag)) return;
    pthread_mutex_lock(&vcache_mu);
    if (!vcache) vcache = calloc(VCACHE_SLOTS, sizeof *vcache);
    if (vcache) {
        e = &vcache[vcache_slot(did)];
        memcpy(e->did, did, strlen(did) + 1);
        memcpy(e->tag, tag, sizeof e->tag);
        e->at = store__now_s();
    }
    pthread_mutex_unlock(&vcache_mu);
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
    sqlite3_stmt *st = s->st[ST_DEVICE_SET_PCMAC];
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
 * final), otherwise through the verified cache or PBKDF2 — refused with
 * GIZ_ERR_AUTH and *slow = true without computing when !slow_ok — and a
 * PBKDF2 success writes the keyed verifier. *slow: PBKDF2 was needed. */
int store__passcode_verify(struct giz_store *s, const char *did, const char *passcode,
                           const char *hash, const char *pcmac, bool slow_ok, bool *slow)
{
    int rc;
    *slow = false;
    if (s->pkey_set && pcmac[0] != '\0') {
        rc = giz_passcode_mac_verify(&s->pkey, did, passcode, pcmac);
        if (rc == GIZ_OK || rc == GIZ_ERR_AUTH) return rc;
        /* another key (rotated) or malformed: PBKDF2 decides, then rewrite */
    }
    if (vcache_hit(did, passcode, hash)) {
        rc = GIZ_OK;
    } else {
        *slow = true;
        if (!slow_ok) return GIZ_ERR_AUTH;
        rc = giz_secret_verify(passcode, hash);
        if (rc == GIZ_OK) store__vcache_put(s, did, passcode, hash);
    }
    if (rc == GIZ_OK && s->pkey_set) pcmac_upgrade(s, did, passcode, hash);
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
    rc = store__passcode_verify(s, did, passcode, hash, pcmac, slow_ok, slow);
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
    if (!path || !path[0]) {
        const char *db = sqlite3_db_filename(s->db, "main");
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
        const char *db = sqlite3_db_filename(s->db, "main");
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
