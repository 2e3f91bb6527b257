/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * MOSQ_EVT_BASIC_AUTH: who may connect.
 *
 * Devices: client id == username == DID (22 base62), password = passcode,
 * checked with giz_store_device_auth (PBKDF2, constant-time). Verified
 * credentials are cached in memory as HMAC-SHA256(process-random key,
 * passcode) with the product key, so a reconnect storm does not run PBKDF2
 * and SQLite for every login; an entry lives auth_cache_ttl seconds and is
 * dropped at once on a DEVICE_DISABLED outbox event (unregister), which also
 * kicks the live session. A wrong passcode never matches the cache and is
 * re-checked against the store. After auth_fail_max wrong passcodes for a
 * DID within auth_backoff, that DID's logins are refused for auth_backoff
 * without PBKDF2 or SQLite (a correct passcode already in the cache still
 * logs in), so a wrong-passcode flood does not hold the broker thread.
 *
 * Apps: username = uid (32 hex) or "2$<appid>$<uid>", password = the user
 * token from /app/login, client id = that session's mqtt_client_id; the
 * session must exist and not be expired.
 *
 * Everything else is refused with CONNACK "not authorised". Log lines carry
 * identifiers and the real peer address, never the secret.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/crypto.h"
#include "plugin.h"

static bool is_base62(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i])) return false;
    }
    return true;
}

static bool is_did(const char *s)
{
    return strlen(s) == GIZ_DID_LEN && is_base62(s, GIZ_DID_LEN);
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i])) return false;
    }
    return true;
}

/* Splits an app username into uid (and appid, "" if absent). true if well formed. */
static bool parse_app_username(const char *username, char uid[GIZ_UID_SIZE],
                               char appid[GIZ_PK_SIZE])
{
    const char *u = username;
    appid[0] = '\0';
    if (username[0] == '2' && username[1] == '$') {
        const char *a = username + 2;
        const char *sep = strchr(a, '$');
        if (sep == NULL) return false;
        size_t alen = (size_t)(sep - a);
        if (alen >= GIZ_PK_SIZE) return false;
        memcpy(appid, a, alen);
        appid[alen] = '\0';
        u = sep + 1;
    }
    if (strlen(u) != GIZ_UID_SIZE - 1 || !is_hex(u, GIZ_UID_SIZE - 1)) return false;
    memcpy(uid, u, GIZ_UID_SIZE);
    return true;
}

static void peer_of(struct gizp *g, struct mosquitto *ctx, const char *client_id, char *out,
                    size_t cap)
{
    /* mosquitto accepts the client sockets itself: its address is the real one. */
    const char *a = mosquitto_client_address(ctx);
    (void)g;
    (void)client_id;
    snprintf(out, cap, "%s", a != NULL ? a : "?");
}

static int refuse(struct gizp *g, struct mosquitto *ctx, const char *client_id, const char *who,
                  const char *why)
{
    char peer[GIZP_PEER_SIZE];
    peer_of(g, ctx, client_id, peer, sizeof(peer));
    g->logins_refused++;
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: login refused for %s from %s: %s", who, peer, why);
    return MOSQ_ERR_AUTH;
}

void auth__forget(struct gizp *g, const char *did)
{
    free(map__sget(&g->creds, did) != NULL ? map__remove(&g->creds, did, strlen(did)) : NULL);
}

/* Remembers a verified passcode digest for did (best effort). */
static void cache_put(struct gizp *g, const char *did, const uint8_t digest[32],
                      const char *product_key)
{
    struct cred *c = map__sget(&g->creds, did);
    if (g->cfg.auth_cache_ttl == 0) return;
    if (c == NULL) {
        void *old = NULL;
        if (g->creds.count >= g->cfg.auth_cache_max) return;
        c = calloc(1, sizeof(*c));
        if (c == NULL) return;
        if (map__put(&g->creds, did, strlen(did), c, &old) != 0) {
            free(c);
            return;
        }
    }
    memcpy(c->digest, digest, sizeof(c->digest));
    snprintf(c->product_key, sizeof(c->product_key), "%s", product_key);
    c->verified_at = (uint32_t)(plugin__now_ms() / 1000);
}

#define AUTH_FAILS_MAX_ENTRIES 100000u

/* true if did is in its wrong-passcode back-off at now. */
static bool did_blocked(struct gizp *g, const char *did, int64_t now)
{
    struct auth_fail *f;
    if (g->cfg.auth_fail_max == 0 || g->fails.count == 0) return false;
    f = map__sget(&g->fails, did);
    return f != NULL && f->blocked_until > now;
}

/* Counts a wrong passcode for did; starts the back-off on the
 * auth_fail_max-th within auth_backoff_ms. */
static void did_failed(struct gizp *g, const char *did, int64_t now)
{
    struct auth_fail *f;
    if (g->cfg.auth_fail_max == 0) return;
    f = map__sget(&g->fails, did);
    if (f == NULL) {
        void *old = NULL;
        if (g->fails.count >= AUTH_FAILS_MAX_ENTRIES) return;
        f = calloc(1, sizeof(*f));
        if (f == NULL) return;
        if (map__put(&g->fails, did, strlen(did), f, &old) != 0) {
            free(f);
            return;
        }
    }
    if (f->count == 0 || now - f->window_start >= (int64_t)g->cfg.auth_backoff_ms) {
        f->window_start = now;
        f->count = 0;
    }
    if (++f->count >= g->cfg.auth_fail_max) {
        f->blocked_until = now + (int64_t)g->cfg.auth_backoff_ms;
        f->count = 0;
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: device %s: %u wrong passcodes within %u ms, further logins "
                             "refused for %u ms",
                             did, g->cfg.auth_fail_max, g->cfg.auth_backoff_ms,
                             g->cfg.auth_backoff_ms);
    }
}

struct fail_sweep {
    int64_t now, window;
    char (*dids)[GIZ_DID_SIZE];
    size_t n, cap;
};

static int fail_sweep_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct fail_sweep *w = ud;
    const struct auth_fail *f = value;
    if (f->blocked_until > w->now || (f->count > 0 && w->now - f->window_start < w->window))
        return 0;
    if (klen >= GIZ_DID_SIZE) return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2u : 64u;
        char(*d)[GIZ_DID_SIZE] = realloc(w->dids, cap * sizeof(*d));
        if (d == NULL) return 1;
        w->dids = d;
        w->cap = cap;
    }
    memcpy(w->dids[w->n], key, klen);
    w->dids[w->n][klen] = '\0';
    w->n++;
    return 0;
}

void auth__fails_sweep(struct gizp *g, int64_t now_ms)
{
    struct fail_sweep w = {now_ms, (int64_t)g->cfg.auth_backoff_ms, NULL, 0, 0};
    if (now_ms - g->last_fail_sweep_ms < (int64_t)g->cfg.auth_backoff_ms) return;
    g->last_fail_sweep_ms = now_ms;
    if (g->fails.count == 0) return;
    map__foreach(&g->fails, fail_sweep_cb, &w);
    for (size_t i = 0; i < w.n; i++)
        free(map__remove(&g->fails, w.dids[i], strlen(w.dids[i])));
    free(w.dids);
}

static int device_login(struct gizp *g, struct mosquitto *ctx, const char *did,
                        const char *client_id, const char *passcode)
{
    char hex[65];
    uint8_t digest[32];
    size_t dlen = 0;
    char product_key[GIZ_PK_SIZE] = "";
    char who[64];
    struct cred *c;
    struct giz_device dev;
    size_t plen = strlen(passcode);
    bool ok = false;
    bool reauth;
    struct client cur;

    snprintf(who, sizeof(who), "device %s", did);
    if (strcmp(client_id, did) != 0) return refuse(g, ctx, client_id, who, "client id != username");
    if (plen == 0 || plen > GIZ_MAX_PASSCODE)
        return refuse(g, ctx, client_id, who, "bad passcode length");
    if (giz_token_digest(g->cache_key, sizeof(g->cache_key), passcode, hex, sizeof(hex)) !=
            GIZ_OK ||
        giz_hex_decode(hex, 64, digest, sizeof(digest), &dlen) != GIZ_OK || dlen != sizeof(digest))
        return refuse(g, ctx, client_id, who, "digest failed");

    /* mosquitto re-runs BASIC_AUTH for every client on SIGHUP: a context
     * already online as this DID is accepted from the cache even past the
     * TTL (it logged in with this passcode; disabling kicks it anyway), so a
     * reload does not run PBKDF2 for every device on the broker thread. */
    reauth = presence__client(g, ctx, &cur) && cur.kind == CLIENT_DEVICE && cur.dev != NULL &&
             strcmp(cur.dev->did, did) == 0;
    c = map__sget(&g->creds, did);
    if (c != NULL &&
        (reauth ||
         (uint32_t)(plugin__now_ms() / 1000) - c->verified_at < (uint32_t)g->cfg.auth_cache_ttl) &&
        giz_consttime_eq(c->digest, digest, sizeof(digest))) {
        snprintf(product_key, sizeof(product_key), "%s", c->product_key);
        g->cache_hits++;
        ok = true;
    } else if (did_blocked(g, did, plugin__now_ms())) {
        /* No PBKDF2 and no SQLite while the DID is in its back-off. */
        g->logins_throttled++;
        g->logins_refused++;
        if (plugin__rate_ok(&g->rl_throttle, 10, "throttled login lines")) {
            char peer[GIZP_PEER_SIZE];
            peer_of(g, ctx, client_id, peer, sizeof(peer));
            mosquitto_log_printf(MOSQ_LOG_NOTICE,
                                 "giz: login refused for %s from %s: too many wrong passcodes, "
                                 "retry later",
                                 who, peer);
        }
        return MOSQ_ERR_AUTH;
    } else {
        int rc = giz_store_device_auth(g->store, did, passcode, &dev);
        if (rc == GIZ_OK) {
            snprintf(product_key, sizeof(product_key), "%s", dev.product_key);
            cache_put(g, did, digest, product_key);
            if (g->fails.count > 0) free(map__remove(&g->fails, did, strlen(did)));
            ok = true;
        } else {
            if (rc == GIZ_ERR_AUTH) did_failed(g, did, plugin__now_ms());
            if (rc == GIZ_ERR_NOT_FOUND || rc == GIZ_ERR_DISABLED) auth__forget(g, did);
            return refuse(g, ctx, client_id, who,
                          rc == GIZ_ERR_NOT_FOUND  ? "unknown DID"
                          : rc == GIZ_ERR_DISABLED ? "device disabled"
                          : rc == GIZ_ERR_AUTH     ? "wrong passcode"
                                                   : giz_strerror(rc));
        }
    }
    if (ok && presence__device_online(g, ctx, did, product_key) != 0)
        return refuse(g, ctx, client_id, who, "out of memory");
    g->logins_ok++;
    if (g->cfg.log_level >= (reauth ? GIZ_LOG_DEBUG : GIZ_LOG_INFO)) {
        char peer[GIZP_PEER_SIZE];
        peer_of(g, ctx, client_id, peer, sizeof(peer));
        mosquitto_log_printf(reauth ? MOSQ_LOG_DEBUG : MOSQ_LOG_NOTICE,
                             "giz: device %s (product %s) %s from %s", did, product_key,
                             reauth ? "re-authenticated" : "logged in", peer);
    }
    return MOSQ_ERR_SUCCESS;
}

static int app_login(struct gizp *g, struct mosquitto *ctx, const char *username,
                     const char *client_id, const char *token)
{
    char uid[GIZ_UID_SIZE];
    char appid[GIZ_PK_SIZE];
    char who[96];
    struct giz_session sess;
    int rc;

    if (!parse_app_username(username, uid, appid)) {
        snprintf(who, sizeof(who), "client %.40s", client_id);
        return refuse(g, ctx, client_id, who, "username is neither a DID nor an app user");
    }
    snprintf(who, sizeof(who), "app %.40s (uid %s)", client_id, uid);
    if (strlen(token) == 0 || strlen(token) > 128)
        return refuse(g, ctx, client_id, who, "bad token");
    rc = giz_store_session_by_token(g->store, token, plugin__unix_now(), &sess);
    if (rc == GIZ_ERR_AUTH || rc == GIZ_ERR_NOT_FOUND)
        return refuse(g, ctx, client_id, who, "unknown token");
    if (rc == GIZ_ERR_EXPIRED) return refuse(g, ctx, client_id, who, "token expired");
    if (rc != GIZ_OK) return refuse(g, ctx, client_id, who, giz_strerror(rc));
    if (strcmp(sess.uid, uid) != 0) return refuse(g, ctx, client_id, who, "token of another user");
    if (strcmp(sess.mqtt_client_id, client_id) != 0)
        return refuse(g, ctx, client_id, who, "client id is not the session's mqtt_client_id");
    if (appid[0] != '\0' && sess.appid[0] != '\0' && strcmp(appid, sess.appid) != 0)
        return refuse(g, ctx, client_id, who, "appid differs from the session's");
    if (presence__app_online(g, ctx, client_id, uid, sess.expire_at) != 0)
        return refuse(g, ctx, client_id, who, "out of memory or database error");
    g->logins_ok++;
    if (g->cfg.log_level >= GIZ_LOG_INFO) {
        char peer[GIZP_PEER_SIZE];
        peer_of(g, ctx, client_id, peer, sizeof(peer));
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: %s logged in from %s", who, peer);
    }
    return MOSQ_ERR_SUCCESS;
}

int auth__basic_cb(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_basic_auth *ed = event_data;
    struct gizp *g = userdata;
    const char *client_id = mosquitto_client_id(ed->client);
    (void)event;
    if (client_id == NULL || client_id[0] == '\0')
        return refuse(g, ed->client, NULL, "a client", "empty client id");
    if (ed->username == NULL || ed->password == NULL) {
        char who[64];
        snprintf(who, sizeof(who), "client %.40s", client_id);
        return refuse(g, ed->client, client_id, who, "no username or password");
    }
    if (is_did(ed->username))
        return device_login(g, ed->client, ed->username, client_id, ed->password);
    return app_login(g, ed->client, ed->username, client_id, ed->password);
}
