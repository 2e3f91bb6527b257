/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Domain rules on top of the persistence files: device registration
 * (re-registration of the same product key + MAC + passcode returns the
 * existing DID, else a new DID is drawn), unregistering (disable + outbox
 * event), and app login (password check, session minting).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdint.h>
#include <string.h>

#include "store_int.h"
#include "giz/crypto.h"
#include "giz/util.h"

/* ---- devices: registration and unregistering -------------------------------- */

/* Index of the first candidate whose hash matches passcode, or -1. */
static int match_candidate(struct giz_store *s, const struct candidate *c, unsigned n,
                           const char *product_key, const char *passcode)
{
    bool slow;
    for (unsigned i = 0; i < n; i++)
        if (store__passcode_verify(s, c[i].did, passcode, product_key, c[i].hash, c[i].pcmac, true,
                                   &slow) == GIZ_OK)
            return (int)i;
    return -1;
}

int giz_store_device_register(struct giz_store *s, const char *product_key, const char *mac,
                              const char *passcode, struct giz_device *out, bool *created)
{
    struct candidate checked[MAX_CANDIDATES], fresh[MAX_CANDIDATES];
    struct giz_product prod;
    char mac_norm[GIZ_MAC_SIZE], hash[GIZ_HASH_STR_MAX], did[GIZ_DID_SIZE];
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    unsigned nchecked = 0, nfresh = 0;
    int rc, kind, hit;
    int64_t now = store__now_s();

    if (!s || !product_key || !out || !created) return GIZ_ERR_INVAL;
    *created = false;
    if (!giz_mac_valid(mac) || !store__passcode_ok(passcode)) return GIZ_ERR_INVAL;
    for (size_t i = 0; i < GIZ_ID_MAC_LEN; i++) /* stored uppercase */
        mac_norm[i] = mac[i] >= 'a' && mac[i] <= 'f' ? (char)(mac[i] - 'a' + 'A') : mac[i];
    mac_norm[GIZ_ID_MAC_LEN] = '\0';
    rc = giz_store_product_get(s, product_key, &prod);
    if (rc) return rc;

    /* Outside the write lock: does an active device already own this passcode? */
    rc = store__device_candidates(s, product_key, mac_norm, NULL, 0, checked, MAX_CANDIDATES,
                                  &nchecked);
    if (rc) return rc;
    hit = match_candidate(s, checked, nchecked, product_key, passcode);
    if (hit >= 0) return store__device_read(s, checked[hit].did, out, NULL, 0);

    rc = giz_secret_hash(passcode, GIZ_PASSCODE_ITERATIONS, hash, sizeof hash);
    if (rc) return rc;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    /* Devices registered by the other process meanwhile (rare). */
    rc = store__device_candidates(s, product_key, mac_norm, checked, nchecked, fresh,
                                  MAX_CANDIDATES, &nfresh);
    if (rc) goto cleanup;
    hit = match_candidate(s, fresh, nfresh, product_key, passcode);
    if (hit >= 0) {
        memcpy(did, fresh[hit].did, sizeof did);
        store__txn_abort(s, kind);
        return store__device_read(s, did, out, NULL, 0);
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        rc = giz_random_base62(did, sizeof did, GIZ_DID_SIZE - 1);
        if (rc) goto cleanup;
        pcmac[0] = '\0';
        if (s->pkey_set) {
            rc = giz_passcode_mac(&s->pkey, did, passcode, pcmac, sizeof pcmac);
            if (rc) goto cleanup;
        }
        rc =
            store__device_insert(s, did, product_key, mac_norm, hash, pcmac[0] ? pcmac : NULL, now);
        if (rc == GIZ_ERR_EXISTS && attempt == 3)
            rc = store__db_err(s, SQLITE_CONSTRAINT_PRIMARYKEY, "inserting device");
        if (rc != GIZ_ERR_EXISTS) break; /* GIZ_ERR_EXISTS: DID collision, draw again */
    }
cleanup:
    rc = store__txn_close(s, kind, rc);
    if (rc == GIZ_OK) {
        giz_pcache_put(s->pcache, did, passcode, product_key,
                       hash); /* the OTA check and MQTT login follow */
        rc = store__device_read(s, did, out, NULL, 0);
        if (rc == GIZ_OK) *created = true;
    }
    return rc;
}

int giz_store_device_unregister(struct giz_store *s, const char *did, const char *passcode)
{
    struct giz_device dev;
    struct giz_outbox_item it;
    int rc, kind;
    int64_t now = store__now_s();

    if (!s || !did) return GIZ_ERR_INVAL;
    rc = store__device_verify(s, did, passcode, &dev);
    if (rc) return rc;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    rc = store__device_disable(s, did, now); /* GIZ_ERR_DISABLED: raced */
    if (rc == GIZ_OK) {
        memset(&it, 0, sizeof it);
        it.kind = GIZ_OUTBOX_DEVICE_DISABLED;
        memcpy(it.did, dev.did, sizeof it.did);
        memcpy(it.product_key, dev.product_key, sizeof it.product_key);
        rc = store__outbox_insert(s, &it, now, NULL);
    }
    rc = store__txn_close(s, kind, rc);
    if (rc == GIZ_OK) giz_pcache_forget(s->pcache, did);
    return rc;
}

/* ---- app login: password check and session minting -------------------------- */

int giz_store_user_login(struct giz_store *s, const char *username, const char *password,
                         const char *appid, int64_t ttl_s, int64_t now, struct giz_session *out)
{
    struct giz_session sess;
    char hash[GIZ_HASH_STR_MAX];
    int rc;
    bool found = false;

    if (!s || !out || !username || !password || ttl_s <= 0 || now > INT64_MAX - ttl_s)
        return GIZ_ERR_INVAL;
    if (appid && strlen(appid) >= GIZ_PK_SIZE) return GIZ_ERR_INVAL;
    memset(&sess, 0, sizeof sess);
    rc = store__user_by_name(s, username, sess.uid, hash, sizeof hash);
    if (rc == GIZ_OK)
        found = true;
    else if (rc != GIZ_ERR_NOT_FOUND)
        return rc;
    if (!found) {
        /* Same PBKDF2 work as a wrong password, so timing does not reveal
         * whether the username exists. */
        giz_secret_hash(password, GIZ_PASSWORD_ITERATIONS, hash, sizeof hash);
        return GIZ_ERR_AUTH;
    }
    if (giz_secret_verify(password, hash) != GIZ_OK) return GIZ_ERR_AUTH;
    return store__session_mint(s, sess.uid, appid, ttl_s, now, out);
}
