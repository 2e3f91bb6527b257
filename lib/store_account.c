/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * App users, sessions and bindings: user rows, session rows by token
 * digest, binding rows with their outbox events. Password checks and
 * session minting are rules and live in store_rules.c.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <string.h>

#include "store_int.h"
#include "giz/crypto.h"

/* ---- users, sessions, bindings -------------------------------------------- */

static bool text_ok(const char *v, size_t max)
{
    return v && v[0] != '\0' && strnlen(v, max + 1) <= max;
}

int giz_store_user_create(struct giz_store *s, const char *username, const char *password,
                          char uid_out[GIZ_UID_SIZE])
{
    char uid[GIZ_UID_SIZE], hash[GIZ_HASH_STR_MAX];
    sqlite3_stmt *st;
    int rc, src;

    if (!s || !uid_out || !text_ok(username, MAX_USERNAME) || !text_ok(password, MAX_PASSWORD))
        return GIZ_ERR_INVAL;
    rc = giz_random_hex(uid, sizeof uid, 16);
    if (rc == GIZ_OK) rc = giz_secret_hash(password, GIZ_PASSWORD_ITERATIONS, hash, sizeof hash);
    if (rc) return rc;
    st = s->st[ST_USER_INSERT];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, username);
    store__bind_text(s, st, 3, hash);
    store__bind_int(s, st, 4, store__now_s());
    src = store__step(s, st);
    if (src == SQLITE_DONE) {
        memcpy(uid_out, uid, sizeof uid);
        rc = GIZ_OK;
    } else if (src == SQLITE_CONSTRAINT_UNIQUE) {
        rc = GIZ_ERR_EXISTS;
    } else {
        rc = store__db_err(s, src, "inserting user");
    }
    store__reset(s, st);
    return rc;
}

int store__user_by_name(struct giz_store *s, const char *username, char uid[GIZ_UID_SIZE],
                        char *hash, size_t hash_cap)
{
    sqlite3_stmt *st = s->st[ST_USER_BY_NAME];
    int rc = GIZ_OK, src;

    if (strnlen(username, MAX_USERNAME + 1) > MAX_USERNAME) return GIZ_ERR_NOT_FOUND;
    store__bind_text(s, st, 1, username);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        store__col_text(st, 0, uid, GIZ_UID_SIZE);
        store__col_text(st, 1, hash, hash_cap);
    } else {
        rc = src == SQLITE_DONE ? GIZ_ERR_NOT_FOUND : store__db_err(s, src, "reading user");
    }
    store__reset(s, st);
    return rc;
}

int store__session_insert(struct giz_store *s, const struct giz_session *sess, const char *digest,
                          int64_t now)
{
    sqlite3_stmt *st = s->st[ST_SESSION_PRUNE_USER];
    int rc;

    store__bind_text(s, st, 1, sess->uid);
    store__bind_int(s, st, 2, now);
    rc = store__exec(s, st, "pruning expired sessions");
    if (rc != GIZ_OK) return rc;
    st = s->st[ST_SESSION_INSERT];
    store__bind_text(s, st, 1, digest);
    store__bind_text(s, st, 2, sess->uid);
    store__bind_text(s, st, 3, sess->mqtt_client_id);
    store__bind_text(s, st, 4, sess->appid);
    store__bind_int(s, st, 5, sess->expire_at);
    store__bind_int(s, st, 6, now);
    return store__exec(s, st, "inserting session");
}

int giz_store_session_by_token(struct giz_store *s, const char *token, int64_t now,
                               struct giz_session *out)
{
    char digest[65];
    sqlite3_stmt *st;
    int rc, src;

    if (!s || !token || !out) return GIZ_ERR_INVAL;
    if (token[0] == '\0' || strnlen(token, 256) >= 256) return GIZ_ERR_AUTH;
    rc = giz_token_digest(s->token_key, sizeof s->token_key, token, digest, sizeof digest);
    if (rc) return rc;
    st = s->st[ST_SESSION_GET];
    store__bind_text(s, st, 1, digest);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        store__col_text(st, 0, out->uid, sizeof out->uid);
        store__col_text(st, 1, out->mqtt_client_id, sizeof out->mqtt_client_id);
        store__col_text(st, 2, out->appid, sizeof out->appid);
        out->expire_at = sqlite3_column_int64(st, 3);
        rc = now >= out->expire_at ? GIZ_ERR_EXPIRED : GIZ_OK;
    } else {
        rc = src == SQLITE_DONE ? GIZ_ERR_AUTH : store__db_err(s, src, "reading session");
    }
    store__reset(s, st);
    return rc;
}

static int binding_event(struct giz_store *s, const char *uid, const struct giz_device *dev,
                         int64_t now)
{
    struct giz_outbox_item it;
    memset(&it, 0, sizeof it);
    it.kind = GIZ_OUTBOX_BINDING;
    memcpy(it.did, dev->did, sizeof it.did);
    memcpy(it.product_key, dev->product_key, sizeof it.product_key);
    memcpy(it.uid, uid, strlen(uid) + 1);
    return store__outbox_insert(s, &it, now, NULL);
}

int giz_store_binding_add(struct giz_store *s, const char *uid, const char *did,
                          const char *passcode)
{
    struct giz_device dev;
    sqlite3_stmt *st;
    int rc, kind;
    int64_t now = store__now_s();

    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    if (strlen(uid) >= GIZ_UID_SIZE) return GIZ_ERR_NOT_FOUND;
    rc = store__device_verify(s, did, passcode, &dev);
    if (rc) return rc;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_USER_EXISTS];
    store__bind_text(s, st, 1, uid);
    rc = store__row_exists(s, st, "reading user");
    if (rc == GIZ_OK) {
        st = s->st[ST_BINDING_INSERT];
        store__bind_text(s, st, 1, uid);
        store__bind_text(s, st, 2, did);
        store__bind_int(s, st, 3, now);
        rc = store__exec(s, st, "inserting binding");
    }
    if (rc == GIZ_OK) rc = binding_event(s, uid, &dev, now);
    return store__txn_close(s, kind, rc);
}

int giz_store_binding_remove(struct giz_store *s, const char *uid, const char *did)
{
    struct giz_device dev;
    sqlite3_stmt *st;
    int rc, kind;
    int64_t now = store__now_s();

    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    if (strlen(uid) >= GIZ_UID_SIZE || strlen(did) >= GIZ_DID_SIZE) return GIZ_ERR_NOT_FOUND;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_BINDING_DELETE];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, did);
    rc = store__exec(s, st, "deleting binding");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_OK) rc = store__device_read(s, did, &dev, NULL, 0);
    if (rc == GIZ_OK) rc = binding_event(s, uid, &dev, now);
    return store__txn_close(s, kind, rc);
}

static int binding_list(struct giz_store *s, sqlite3_stmt *st, const char *key,
                        giz_store_binding_cb cb, void *ud)
{
    struct giz_binding b;
    int src;

    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, key);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        memset(&b, 0, sizeof b);
        store__col_text(st, 0, b.uid, sizeof b.uid);
        store__col_text(st, 1, b.did, sizeof b.did);
        store__col_text(st, 2, b.product_key, sizeof b.product_key);
        b.online = sqlite3_column_int(st, 3) != 0;
        b.created_at = sqlite3_column_int64(st, 4);
        if (cb(&b, ud)) break;
    }
    return store__list_end(s, st, src, "listing bindings");
}

int giz_store_binding_list_by_user(struct giz_store *s, const char *uid, giz_store_binding_cb cb,
                                   void *ud)
{
    if (!s || !uid || !cb) return GIZ_ERR_INVAL;
    return binding_list(s, s->st[ST_BINDING_BY_USER], uid, cb, ud);
}

int giz_store_binding_list_by_device(struct giz_store *s, const char *did, giz_store_binding_cb cb,
                                     void *ud)
{
    if (!s || !did || !cb) return GIZ_ERR_INVAL;
    return binding_list(s, s->st[ST_BINDING_BY_DEVICE], did, cb, ud);
}

int giz_store_binding_exists(struct giz_store *s, const char *uid, const char *did)
{
    sqlite3_stmt *st;
    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    st = s->st[ST_BINDING_EXISTS];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, did);
    return store__row_exists(s, st, "reading binding");
}
