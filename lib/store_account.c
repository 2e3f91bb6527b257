/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * App users, sessions and bindings: user rows (password, email and
 * anonymous phone_id accounts), session rows by token digest and their
 * minting, binding rows (remark, dev_alias, binding by MAC) with their
 * outbox events. The password check of a login is a rule and lives in
 * store_rules.c.
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

/* Inserts a new user under a fresh uid with the (checked) login name in the
 * column statement `which` writes: username or email. */
static int user_insert(struct giz_store *s, int which, const char *name, const char *password,
                       char uid_out[GIZ_UID_SIZE])
{
    char uid[GIZ_UID_SIZE], hash[GIZ_HASH_STR_MAX];
    sq_stmt *st;
    int rc, src;

    rc = giz_random_hex(uid, sizeof uid, 16);
    if (rc == GIZ_OK) rc = giz_secret_hash(password, GIZ_PASSWORD_ITERATIONS, hash, sizeof hash);
    if (rc) return rc;
    st = s->st[which];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, name);
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

int giz_store_user_create(struct giz_store *s, const char *username, const char *password,
                          char uid_out[GIZ_UID_SIZE])
{
    if (!s || !uid_out || !text_ok(username, MAX_USERNAME) || !text_ok(password, MAX_PASSWORD))
        return GIZ_ERR_INVAL;
    return user_insert(s, ST_USER_INSERT, username, password, uid_out);
}

int store__user_by_name(struct giz_store *s, const char *username, char uid[GIZ_UID_SIZE],
                        char *hash, size_t hash_cap)
{
    sq_stmt *st = s->st[ST_USER_BY_NAME];
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
    sq_stmt *st = s->st[ST_SESSION_PRUNE_USER];
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
    sq_stmt *st;
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
        out->expire_at = sq_column_int64(st, 3);
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
    sq_stmt *st;
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
    sq_stmt *st;
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
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_OK) rc = store__device_read(s, did, &dev, NULL, 0);
    if (rc == GIZ_OK) rc = binding_event(s, uid, &dev, now);
    return store__txn_close(s, kind, rc);
}

static void binding_row(sq_stmt *st, struct giz_binding *b);

static int binding_list(struct giz_store *s, sq_stmt *st, const char *key, giz_store_binding_cb cb,
                        void *ud)
{
    struct giz_binding b;
    int src;

    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_text(s, st, 1, key);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        binding_row(st, &b);
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
    sq_stmt *st;
    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    st = s->st[ST_BINDING_EXISTS];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, did);
    return store__row_exists(s, st, "reading binding");
}

/* ---- sessions minted outside a password login, app Open API (schema 009) --- */

int store__session_mint(struct giz_store *s, const char *uid, const char *appid, int64_t ttl_s,
                        int64_t now, struct giz_session *out)
{
    struct giz_session sess;
    char digest[65];
    int rc, kind;

    if (!s || !uid || !out || ttl_s <= 0 || now > INT64_MAX - ttl_s) return GIZ_ERR_INVAL;
    if (strnlen(uid, GIZ_UID_SIZE) >= GIZ_UID_SIZE) return GIZ_ERR_INVAL;
    if (appid && strnlen(appid, GIZ_PK_SIZE) >= GIZ_PK_SIZE) return GIZ_ERR_INVAL;
    memset(&sess, 0, sizeof sess);
    memcpy(sess.uid, uid, strlen(uid) + 1);
    memcpy(sess.mqtt_client_id, "usr", 3);
    rc = giz_random_hex(sess.token, sizeof sess.token, 16);
    if (rc == GIZ_OK)
        rc = giz_random_base62(sess.mqtt_client_id + 3, sizeof sess.mqtt_client_id - 3, 20);
    if (rc == GIZ_OK)
        rc = giz_token_digest(s->token_key, sizeof s->token_key, sess.token, digest, sizeof digest);
    if (rc) goto out;
    if (appid) memcpy(sess.appid, appid, strlen(appid) + 1);
    sess.expire_at = now + ttl_s;
    rc = store__txn_open(s, &kind);
    if (rc) goto out;
    rc = store__session_insert(s, &sess, digest, now);
    rc = store__txn_close(s, kind, rc);
    if (rc == GIZ_OK) *out = sess;
out:
    explicit_bzero(&sess, sizeof sess);
    explicit_bzero(digest, sizeof digest);
    return rc;
}

int giz_store_session_create(struct giz_store *s, const char *uid, const char *appid, int64_t ttl_s,
                             int64_t now, struct giz_session *out)
{
    sq_stmt *st;
    int rc;

    if (!s || !uid || !out) return GIZ_ERR_INVAL;
    if (strnlen(uid, GIZ_UID_SIZE) >= GIZ_UID_SIZE) return GIZ_ERR_NOT_FOUND;
    st = s->st[ST_USER_EXISTS];
    store__bind_text(s, st, 1, uid);
    rc = store__row_exists(s, st, "reading user");
    if (rc) return rc;
    return store__session_mint(s, uid, appid, ttl_s, now, out);
}

static bool printable(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f) return false;
    return true;
}

int giz_store_user_create_email(struct giz_store *s, const char *email, const char *password,
                                char uid_out[GIZ_UID_SIZE])
{
    size_t n;
    const char *at;

    if (!s || !uid_out || !email || !text_ok(password, MAX_PASSWORD)) return GIZ_ERR_INVAL;
    n = strnlen(email, 129);
    at = memchr(email, '@', n);
    if (n < 3 || n > 128 || !printable(email, n) || at == NULL || at == email ||
        at == email + n - 1 || memchr(at + 1, '@', (size_t)(email + n - at - 1)) != NULL)
        return GIZ_ERR_INVAL;
    return user_insert(s, ST_USER_INSERT_EMAIL, email, password, uid_out);
}

int giz_store_user_anonymous(struct giz_store *s, const char *phone_id, const char *appid,
                             int64_t ttl_s, int64_t now, struct giz_session *out, bool *created)
{
    char uid[GIZ_UID_SIZE];
    sq_stmt *st;
    int rc, src, kind;
    size_t n;

    if (created) *created = false;
    if (!s || !out || !phone_id) return GIZ_ERR_INVAL;
    n = strnlen(phone_id, GIZ_PHONE_ID_MAX + 1);
    if (n == 0 || n > GIZ_PHONE_ID_MAX || !printable(phone_id, n)) return GIZ_ERR_INVAL;
    rc = giz_random_hex(uid, sizeof uid, 16);
    if (rc) return rc;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_USER_INSERT_ANON];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, phone_id);
    store__bind_int(s, st, 3, now);
    src = store__step(s, st);
    if (src == SQLITE_DONE) {
        if (created) *created = sq_changes(s) > 0;
    } else {
        /* '$' + phone_id taken by a row of another phone_id cannot happen:
         * password accounts may not start with '$' (the GService refuses). */
        rc = store__db_err(s, src, "inserting anonymous user");
    }
    store__reset(s, st);
    if (rc == GIZ_OK) {
        st = s->st[ST_USER_BY_PHONE_ID];
        store__bind_text(s, st, 1, phone_id);
        src = store__step(s, st);
        if (src == SQLITE_ROW) store__col_text(st, 0, uid, sizeof uid);
        rc = store__row_end(s, st, src, "reading anonymous user");
    }
    if (rc == GIZ_OK) rc = store__session_mint(s, uid, appid, ttl_s, now, out);
    return store__txn_close(s, kind, rc);
}

static void binding_row(sq_stmt *st, struct giz_binding *b)
{
    memset(b, 0, sizeof *b);
    store__col_text(st, 0, b->uid, sizeof b->uid);
    store__col_text(st, 1, b->did, sizeof b->did);
    store__col_text(st, 2, b->product_key, sizeof b->product_key);
    b->online = sq_column_int(st, 3) != 0;
    b->created_at = sq_column_int64(st, 4);
    store__col_text(st, 5, b->remark, sizeof b->remark);
    store__col_text(st, 6, b->dev_alias, sizeof b->dev_alias);
    b->special = sq_column_int(st, 7) != 0;
}

int giz_store_binding_get(struct giz_store *s, const char *uid, const char *did,
                          struct giz_binding *out)
{
    sq_stmt *st;
    int src;

    if (!s || !uid || !did || !out) return GIZ_ERR_INVAL;
    if (strnlen(uid, GIZ_UID_SIZE) >= GIZ_UID_SIZE || strnlen(did, GIZ_DID_SIZE) >= GIZ_DID_SIZE)
        return GIZ_ERR_NOT_FOUND;
    st = s->st[ST_BINDING_GET];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, did);
    src = store__step(s, st);
    if (src == SQLITE_ROW) binding_row(st, out);
    return store__row_end(s, st, src, "reading binding");
}

int giz_store_binding_update(struct giz_store *s, const char *uid, const char *did,
                             const char *remark, const char *dev_alias, struct giz_binding *out)
{
    sq_stmt *st;
    int rc;

    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    if ((remark && strnlen(remark, GIZ_BIND_TEXT_SIZE) >= GIZ_BIND_TEXT_SIZE) ||
        (dev_alias && strnlen(dev_alias, GIZ_BIND_TEXT_SIZE) >= GIZ_BIND_TEXT_SIZE))
        return GIZ_ERR_INVAL;
    if (strnlen(uid, GIZ_UID_SIZE) >= GIZ_UID_SIZE || strnlen(did, GIZ_DID_SIZE) >= GIZ_DID_SIZE)
        return GIZ_ERR_NOT_FOUND;
    st = s->st[ST_BINDING_UPDATE];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, did);
    store__bind_text(s, st, 3, remark);
    store__bind_text(s, st, 4, dev_alias);
    rc = store__exec(s, st, "updating binding");
    if (rc == GIZ_OK && sq_changes(s) == 0) rc = GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_OK && out) rc = giz_store_binding_get(s, uid, did, out);
    return rc;
}

int giz_store_binding_add_mac(struct giz_store *s, const char *uid, const char *product_key,
                              const char *mac, const char *remark, const char *dev_alias,
                              struct giz_device *dev)
{
    char did[GIZ_DID_SIZE] = "", umac[GIZ_MAC_SIZE];
    sq_stmt *st;
    int rc, src, kind;
    int64_t now = store__now_s();

    if (!s || !uid || !product_key || !mac || !dev) return GIZ_ERR_INVAL;
    if (strnlen(mac, GIZ_MAC_SIZE) != GIZ_MAC_SIZE - 1) return GIZ_ERR_INVAL;
    for (size_t i = 0; i < GIZ_MAC_SIZE - 1; i++) {
        char c = mac[i];
        if (c >= 'a' && c <= 'f') c = (char)(c - 'a' + 'A');
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return GIZ_ERR_INVAL;
        umac[i] = c;
    }
    umac[GIZ_MAC_SIZE - 1] = '\0';
    if ((remark && strnlen(remark, GIZ_BIND_TEXT_SIZE) >= GIZ_BIND_TEXT_SIZE) ||
        (dev_alias && strnlen(dev_alias, GIZ_BIND_TEXT_SIZE) >= GIZ_BIND_TEXT_SIZE))
        return GIZ_ERR_INVAL;
    if (strnlen(uid, GIZ_UID_SIZE) >= GIZ_UID_SIZE ||
        strnlen(product_key, GIZ_PK_SIZE) >= GIZ_PK_SIZE)
        return GIZ_ERR_NOT_FOUND;
    rc = store__txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_DEVICE_BY_MAC];
    store__bind_text(s, st, 1, product_key);
    store__bind_text(s, st, 2, umac);
    src = store__step(s, st);
    if (src == SQLITE_ROW) store__col_text(st, 0, did, sizeof did);
    rc = store__row_end(s, st, src, "reading device by MAC");
    if (rc == GIZ_OK) rc = store__device_read(s, did, dev, NULL, 0);
    if (rc == GIZ_OK) {
        st = s->st[ST_USER_EXISTS];
        store__bind_text(s, st, 1, uid);
        rc = store__row_exists(s, st, "reading user");
    }
    if (rc == GIZ_OK) {
        st = s->st[ST_BINDING_INSERT];
        store__bind_text(s, st, 1, uid);
        store__bind_text(s, st, 2, did);
        store__bind_int(s, st, 3, now);
        rc = store__exec(s, st, "inserting binding");
    }
    if (rc == GIZ_OK && (remark || dev_alias))
        rc = giz_store_binding_update(s, uid, did, remark, dev_alias, NULL);
    if (rc == GIZ_OK) rc = binding_event(s, uid, dev, now);
    return store__txn_close(s, kind, rc);
}

/* ---- GET / PUT /app/users ---------------------------------------------------- */

/* Reads uid's row; hash (may be NULL) gets the password hash. */
static int user_read(struct giz_store *s, const char *uid, struct giz_user *out, char *hash,
                     size_t hash_cap)
{
    sq_stmt *st;
    int src;

    if (strnlen(uid, GIZ_UID_SIZE) >= GIZ_UID_SIZE) return GIZ_ERR_NOT_FOUND;
    st = s->st[ST_USER_GET];
    store__bind_text(s, st, 1, uid);
    src = store__step(s, st);
    if (src == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        store__col_text(st, 0, out->uid, sizeof out->uid);
        out->anonymous = sq_column_int(st, 3) != 0;
        if (!out->anonymous) store__col_text(st, 1, out->username, sizeof out->username);
        store__col_text(st, 2, out->email, sizeof out->email);
        if (hash) store__col_text(st, 4, hash, hash_cap);
        out->created_at = sq_column_int64(st, 5);
    }
    return store__row_end(s, st, src, "reading user");
}

int giz_store_user_get(struct giz_store *s, const char *uid, struct giz_user *out)
{
    if (!s || !uid || !out) return GIZ_ERR_INVAL;
    return user_read(s, uid, out, NULL, 0);
}

int giz_store_user_password_change(struct giz_store *s, const char *uid, const char *old_password,
                                   const char *new_password)
{
    struct giz_user u;
    char hash[GIZ_HASH_STR_MAX];
    sq_stmt *st;
    int rc;

    if (!s || !uid || !old_password || !text_ok(new_password, MAX_PASSWORD)) return GIZ_ERR_INVAL;
    rc = user_read(s, uid, &u, hash, sizeof hash);
    if (rc) return rc;
    if (u.anonymous || giz_secret_verify(old_password, hash) != GIZ_OK) return GIZ_ERR_AUTH;
    rc = giz_secret_hash(new_password, GIZ_PASSWORD_ITERATIONS, hash, sizeof hash);
    if (rc) return rc;
    st = s->st[ST_USER_SET_PASSWORD];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, hash);
    return store__exec(s, st, "changing password");
}

int giz_store_user_claim(struct giz_store *s, const char *uid, const char *username,
                         const char *email, const char *password)
{
    struct giz_user u;
    char hash[GIZ_HASH_STR_MAX];
    sq_stmt *st;
    int rc, src;
    const char *name = email ? email : username;

    if (!s || !uid || !name || !text_ok(name, MAX_USERNAME) || name[0] == '$' ||
        !text_ok(password, MAX_PASSWORD))
        return GIZ_ERR_INVAL;
    rc = user_read(s, uid, &u, NULL, 0);
    if (rc) return rc;
    if (!u.anonymous) return GIZ_ERR_DISABLED;
    rc = giz_secret_hash(password, GIZ_PASSWORD_ITERATIONS, hash, sizeof hash);
    if (rc) return rc;
    st = s->st[ST_USER_CLAIM];
    store__bind_text(s, st, 1, uid);
    store__bind_text(s, st, 2, name);
    store__bind_text(s, st, 3, hash);
    store__bind_text(s, st, 4, email);
    src = store__step(s, st);
    if (src == SQLITE_DONE)
        rc = sq_changes(s) > 0 ? GIZ_OK : GIZ_ERR_DISABLED;
    else if (src == SQLITE_CONSTRAINT_UNIQUE)
        rc = GIZ_ERR_EXISTS;
    else
        rc = store__db_err(s, src, "claiming anonymous user");
    store__reset(s, st);
    return rc;
}
