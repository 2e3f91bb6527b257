/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device details from newer firmware (schema 003): upsert keeping known
 * fields, read, and the auth key kept only as an HMAC under the token key.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <string.h>

#include "store_int.h"
#include "giz/crypto.h"

/* ---- device details from newer firmware ------------------------------------- */

#define AUTH_KEY_DIGEST_PREFIX "hmac-sha256:"
#define AUTH_KEY_DIGEST_SIZE (sizeof AUTH_KEY_DIGEST_PREFIX - 1 + 65)

/* "hmac-sha256:<hex>" of auth_key under the store's token key. */
static int auth_key_digest(struct giz_store *s, const char *auth_key, char *out, size_t cap)
{
    char hex[65];
    size_t pl = sizeof AUTH_KEY_DIGEST_PREFIX - 1;
    if (cap < AUTH_KEY_DIGEST_SIZE) return GIZ_ERR_INVAL;
    int rc = giz_token_digest(s->token_key, sizeof s->token_key, auth_key, hex, sizeof hex);
    if (rc != GIZ_OK) return rc;
    memcpy(out, AUTH_KEY_DIGEST_PREFIX, pl);
    memcpy(out + pl, hex, 65);
    explicit_bzero(hex, sizeof hex);
    return GIZ_OK;
}

int giz_store_device_info_update(struct giz_store *s, const char *did,
                                 const struct giz_device_info *info, const char *auth_key)
{
    char digest[AUTH_KEY_DIGEST_SIZE] = "";
    sq_stmt *st;
    int rc, src;

    if (!s || !did || !info) return GIZ_ERR_INVAL;
    if (!store__fits(info->reg_type, sizeof info->reg_type) ||
        !store__fits(info->extra, sizeof info->extra) ||
        !store__fits(info->sdk_hard_version, sizeof info->sdk_hard_version) ||
        !store__fits(info->sdk_soft_version, sizeof info->sdk_soft_version) ||
        !store__fits(info->is_reset, sizeof info->is_reset) ||
        !store__fits(info->random_code, sizeof info->random_code) ||
        !store__fits(info->lan_proto_ver, sizeof info->lan_proto_ver))
        return GIZ_ERR_INVAL;
    if (auth_key && auth_key[0] != '\0') {
        if (strnlen(auth_key, 1025) > 1024) return GIZ_ERR_INVAL;
        rc = auth_key_digest(s, auth_key, digest, sizeof digest);
        if (rc != GIZ_OK) return rc;
    }
    st = s->st[ST_DEVINFO_UPSERT];
    store__bind_text(s, st, 1, did);
    store__bind_text(s, st, 2, info->reg_type);
    store__bind_text(s, st, 3, info->extra);
    store__bind_text(s, st, 4, info->sdk_hard_version);
    store__bind_text(s, st, 5, info->sdk_soft_version);
    store__bind_text(s, st, 6, info->is_reset);
    store__bind_text(s, st, 7, info->random_code);
    store__bind_text(s, st, 8, info->lan_proto_ver);
    store__bind_text(s, st, 9, digest);
    store__bind_int(s, st, 10, store__now_s());
    src = store__step(s, st);
    if (src == SQLITE_DONE)
        rc = GIZ_OK;
    else if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = GIZ_ERR_NOT_FOUND;
    else
        rc = store__db_err(s, src, "recording device details");
    store__reset(s, st);
    return rc;
}

/* Reads the DID's device_info row into *out and its digest into digest. */
static int device_info_read(struct giz_store *s, const char *did, struct giz_device_info *out,
                            char *digest, size_t digest_cap)
{
    sq_stmt *st;
    int rc = GIZ_OK, src;

    memset(out, 0, sizeof *out);
    digest[0] = '\0';
    st = s->st[ST_DEVINFO_GET];
    store__bind_text(s, st, 1, did);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        store__col_text(st, 0, out->reg_type, sizeof out->reg_type);
        store__col_text(st, 1, out->extra, sizeof out->extra);
        store__col_text(st, 2, out->sdk_hard_version, sizeof out->sdk_hard_version);
        store__col_text(st, 3, out->sdk_soft_version, sizeof out->sdk_soft_version);
        store__col_text(st, 4, out->is_reset, sizeof out->is_reset);
        store__col_text(st, 5, out->random_code, sizeof out->random_code);
        store__col_text(st, 6, out->lan_proto_ver, sizeof out->lan_proto_ver);
        store__col_text(st, 7, digest, digest_cap);
        out->auth_key_set = digest[0] != '\0';
        out->updated_at = sq_column_int64(st, 8);
    } else if (src != SQLITE_DONE) {
        rc = store__db_err(s, src, "reading device details");
    }
    store__reset(s, st);
    return rc;
}

int giz_store_device_info_get(struct giz_store *s, const char *did, struct giz_device_info *out)
{
    char digest[AUTH_KEY_DIGEST_SIZE];
    if (!s || !did || !out) return GIZ_ERR_INVAL;
    return device_info_read(s, did, out, digest, sizeof digest);
}

int giz_store_device_info_auth_key_check(struct giz_store *s, const char *did, const char *auth_key)
{
    char stored[AUTH_KEY_DIGEST_SIZE], want[AUTH_KEY_DIGEST_SIZE];
    struct giz_device_info info;
    int rc;

    if (!s || !did || !auth_key) return GIZ_ERR_INVAL;
    rc = device_info_read(s, did, &info, stored, sizeof stored);
    if (rc != GIZ_OK) return rc;
    if (stored[0] == '\0') return GIZ_ERR_NOT_FOUND;
    rc = auth_key_digest(s, auth_key, want, sizeof want);
    if (rc != GIZ_OK) return rc;
    if (strlen(stored) != strlen(want)) return GIZ_ERR_AUTH;
    return giz_consttime_eq(stored, want, strlen(want)) ? GIZ_OK : GIZ_ERR_AUTH;
}
