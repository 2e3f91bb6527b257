/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * MOSQ_EVT_BASIC_AUTH: who may connect.
 *
 * Devices: client id == username == DID (22 base62), password = passcode,
 * checked with giz_store_device_auth_budget: one HMAC against the keyed
 * verifier (key file plugin_opt_passcode_key, loaded at start-up: a key
 * file open to other users refuses the start), PBKDF2 only for rows that
 * do not have it yet (then written: the upgrade), bounded by a global
 * budget of auth_slow_rate PBKDF2 checks per second (over it: refused as
 * "retry later", not as a wrong passcode). Verified passcodes are kept in
 * the one verified-passcode cache (struct giz_pcache, giz/store.h: a keyed
 * tag of DID + passcode with the product key), owned by the plugin and
 * attached to its store, which fills it after every successful check; it is
 * looked at here before SQLite, so a reconnect storm does not touch it. An
 * entry answers for auth_cache_ttl seconds (at most auth_cache_max DIDs)
 * and is dropped at once on a DEVICE_DISABLED outbox event (unregister),
 * which also kicks the live session. A wrong passcode never matches the
 * cache and is re-checked against the store.
 * Wrong passcodes are counted per source address (IPv6: per /64) and per
 * DID from that address, never per DID alone (DIDs are not secret: that
 * was a lockout): auth_fail_max misses for one DID from one address, or
 * auth_fail_addr_max from one address, within auth_backoff back that key
 * off for auth_backoff — refused without a check, one log line per key per
 * interval with the count — while the real device from its own address
 * still logs in. See DESIGN.md "Passcode verification".
 *
 * Apps: username = uid (32 hex) or "2$<appid>$<uid>", password = the user
 * token from /app/login, client id = that session's mqtt_client_id; the
 * session must exist and not be expired.
 *
 * Everything else is refused with CONNACK "not authorised". Log lines carry
 * identifiers and the real peer address, never the secret.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/crypto.h"
#include "plugin.h"

#define AUTH_FAILS_MAX_ENTRIES 100000u
#define AUTH_ADDR_SIZE 64
#define AUTH_FAIL_KEY_SIZE (2 + GIZ_DID_SIZE + 1 + AUTH_ADDR_SIZE)

/* Wrong-passcode throttling of one key: a source address ("a|<addr>") or
 * one DID from it ("d|<DID>|<addr>"). */
struct auth_fail {
    int64_t window_start;  /* monotonic ms of the first failure counted */
    int64_t blocked_until; /* monotonic ms; 0 = not blocked */
    int64_t logged_at;     /* monotonic ms of the last line about this key */
    unsigned count;
    unsigned refused; /* refused during the back-off since logged_at */
};

struct auth {
    struct giz_pcache *pcache; /* verified passcodes (auth_cache_ttl/_max), attached to the store */
    struct giz_map fails;      /* fail key -> struct auth_fail */
    int64_t last_fail_sweep_ms;
    int64_t slow_refill_ms; /* PBKDF2 budget (token bucket) */
    unsigned slow_tokens;
    struct auth_stats n;           /* counters for the stats line */
    struct rate_limit rl_throttle; /* back-off and "busy" lines */
};

/* true if the n characters at s are all hex digits (ASCII, either case). */
static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!giz_char_is_hex(s[i])) return false;
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
    if (strlen(u) != GIZ_UID_SIZE - 1 || !all_hex(u, GIZ_UID_SIZE - 1)) return false;
    memcpy(uid, u, GIZ_UID_SIZE);
    return true;
}

/* The client's source address as mosquitto has it (the real peer: the
 * plugin interposes on mosquitto's own listener, no relay in between). */
static void peer_of(struct mosquitto *ctx, char *out, size_t cap)
{
    const char *a = mosquitto_client_address(ctx);
    snprintf(out, cap, "%s", a != NULL && a[0] != '\0' ? a : "?");
}

static int refuse(struct gizp *g, struct mosquitto *ctx, const char *who, const char *why)
{
    char peer[GIZP_PEER_SIZE];
    peer_of(ctx, peer, sizeof(peer));
    g->auth->n.refused++;
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: login refused for %s from %s: %s", who, peer, why);
    events__refused(g, ctx, why);
    return MOSQ_ERR_AUTH;
}

void auth__forget(struct gizp *g, const char *did)
{
    giz_pcache_forget(g->auth->pcache, did);
}

/* The back-off key of a peer: its host without the port; an IPv6 address
 * reduced to its /64 (one subscriber usually holds the whole prefix, so
 * per-address counting of single IPv6 addresses would be free to evade),
 * an IPv4-mapped one to the IPv4 address. */
static void addr_key(const char *peer, char out[AUTH_ADDR_SIZE])
{
    char host[AUTH_ADDR_SIZE];
    const char *end = NULL, *start = peer;
    const char *colon = strchr(peer, ':');
    struct in6_addr a6;
    size_t n;

    if (peer[0] == '[') {
        start = peer + 1;
        end = strchr(start, ']');
    } else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
        end = colon; /* "a.b.c.d:port" */
    }
    n = end != NULL ? (size_t)(end - start) : strlen(start);
    if (n >= sizeof(host)) n = sizeof(host) - 1;
    memcpy(host, start, n);
    host[n] = '\0';
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        char text[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            if (inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text)) != NULL) {
                snprintf(out, AUTH_ADDR_SIZE, "%s", text);
                return;
            }
        } else {
            memset(&a6.s6_addr[8], 0, 8);
            if (inet_ntop(AF_INET6, &a6, text, sizeof(text)) != NULL) {
                snprintf(out, AUTH_ADDR_SIZE, "%s/64", text);
                return;
            }
        }
    }
    snprintf(out, AUTH_ADDR_SIZE, "%s", host);
}

/* "a|<addr>" (the address) or "d|<did>|<addr>" (one DID from it). */
static void fail_key(char out[AUTH_FAIL_KEY_SIZE], const char *did, const char *addr)
{
    if (did == NULL)
        snprintf(out, AUTH_FAIL_KEY_SIZE, "a|%s", addr);
    else
        snprintf(out, AUTH_FAIL_KEY_SIZE, "d|%s|%s", did, addr);
}

/* Says which clients a fail key covers: "address A" or "device D from A". */
static void key_describe(const char *key, char *out, size_t cap)
{
    const char *bar;
    if (key[0] == 'd' && (bar = strchr(key + 2, '|')) != NULL)
        snprintf(out, cap, "device %.*s from %s", (int)(bar - (key + 2)), key + 2, bar + 1);
    else
        snprintf(out, cap, "address %s", key + 2);
}

/* The record of key if it is in its back-off at now, else NULL. */
static struct auth_fail *fail_blocked(struct gizp *g, const char *key, int64_t now)
{
    struct auth_fail *f;
    if (g->auth->fails.count == 0) return NULL;
    f = giz_map_sget(&g->auth->fails, key);
    return f != NULL && f->blocked_until > now ? f : NULL;
}

/* Counts one refusal of a backed-off key; says so at most once per
 * auth_backoff per key, with the count since the last line. */
static void fail_refused(struct gizp *g, struct auth_fail *f, const char *key, int64_t now)
{
    char what[AUTH_FAIL_KEY_SIZE + 16];
    f->refused++;
    if (now - f->logged_at < (int64_t)g->cfg.auth_backoff_ms) return;
    key_describe(key, what, sizeof(what));
    if (plugin__rate_ok(&g->auth->rl_throttle, 20, "back-off lines"))
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             "giz: %s: %u logins refused without a passcode check in the last "
                             "%lld ms (wrong-passcode back-off)",
                             what, f->refused, (long long)(now - f->logged_at));
    f->refused = 0;
    f->logged_at = now;
}

/* Counts a wrong passcode under key; starts its back-off on the max-th
 * within auth_backoff_ms (max 0 = never). true if the back-off started. */
static bool fail_count(struct gizp *g, const char *key, unsigned max, int64_t now)
{
    struct auth_fail *f;
    if (max == 0) return false;
    f = giz_map_sget(&g->auth->fails, key);
    if (f == NULL) {
        void *old = NULL;
        if (g->auth->fails.count >= AUTH_FAILS_MAX_ENTRIES) return false;
        f = calloc(1, sizeof(*f));
        if (f == NULL) return false;
        if (giz_map_put(&g->auth->fails, key, strlen(key), f, &old) != 0) {
            free(f);
            return false;
        }
    }
    if (f->count == 0 || now - f->window_start >= (int64_t)g->cfg.auth_backoff_ms) {
        f->window_start = now;
        f->count = 0;
    }
    if (++f->count < max) return false;
    f->blocked_until = now + (int64_t)g->cfg.auth_backoff_ms;
    f->count = 0;
    f->refused = 0;
    f->logged_at = now;
    return true;
}

/* Counts a wrong passcode under the fail key of did (NULL: the address
 * alone) from addr against max; logs the start of a back-off. */
static void fail_note(struct gizp *g, const char *did, const char *addr, unsigned max, int64_t now)
{
    char key[AUTH_FAIL_KEY_SIZE], what[AUTH_FAIL_KEY_SIZE + 16];
    fail_key(key, did, addr);
    if (!fail_count(g, key, max, now) ||
        !plugin__rate_ok(&g->auth->rl_throttle, 20, "back-off lines"))
        return;
    key_describe(key, what, sizeof(what));
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         "giz: %s: %u wrong passcodes within %u ms, %s refused for %u ms", what,
                         max, g->cfg.auth_backoff_ms,
                         did != NULL ? "its logins from that address" : "device logins from it",
                         g->cfg.auth_backoff_ms);
}

/* A wrong passcode for did from addr: counted per DID+address and per address. */
static void did_failed(struct gizp *g, const char *did, const char *addr, int64_t now)
{
    fail_note(g, did, addr, g->cfg.auth_fail_max, now);
    fail_note(g, NULL, addr, g->cfg.auth_fail_addr_max, now);
}

/* Takes one PBKDF2 check from the global budget (token bucket of
 * auth_slow_rate per second, one second deep). false if it is spent. */
static bool slow_budget_ok(struct gizp *g, int64_t now)
{
    uint64_t add;
    unsigned rate = g->cfg.auth_slow_rate;
    if (rate == 0) return true;
    if (g->auth->slow_refill_ms == 0) {
        g->auth->slow_refill_ms = now;
        g->auth->slow_tokens = rate;
    }
    if (now > g->auth->slow_refill_ms) {
        add = (uint64_t)(now - g->auth->slow_refill_ms) * rate / 1000u;
        if (add > 0) {
            g->auth->slow_tokens = add >= rate || g->auth->slow_tokens + add >= rate
                                       ? rate
                                       : g->auth->slow_tokens + (unsigned)add;
            g->auth->slow_refill_ms = now;
        }
    }
    return g->auth->slow_tokens > 0;
}

struct fail_sweep {
    int64_t now, window;
    char (*keys)[AUTH_FAIL_KEY_SIZE];
    size_t n, cap;
    struct gizp *g;
};

static int fail_sweep_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct fail_sweep *w = ud;
    const struct auth_fail *f = value;
    if (f->blocked_until > w->now || (f->count > 0 && w->now - f->window_start < w->window))
        return 0;
    if (klen >= AUTH_FAIL_KEY_SIZE) return 0;
    char(*k)[AUTH_FAIL_KEY_SIZE] =
        giz_array_reserve(w->keys, &w->cap, w->n + 1u, sizeof(*k), 64u, SIZE_MAX);
    if (k == NULL) return 1;
    w->keys = k;
    memcpy(w->keys[w->n], key, klen);
    w->keys[w->n][klen] = '\0';
    if (f->refused > 0 && plugin__rate_ok(&w->g->auth->rl_throttle, 20, "back-off lines")) {
        char what[AUTH_FAIL_KEY_SIZE + 16];
        key_describe(w->keys[w->n], what, sizeof(what));
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             "giz: %s: %u logins refused without a passcode check in the last "
                             "%lld ms (wrong-passcode back-off, now over)",
                             what, f->refused, (long long)(w->now - f->logged_at));
    }
    w->n++;
    return 0;
}

void auth__fails_sweep(struct gizp *g, int64_t now_ms)
{
    struct fail_sweep w = {now_ms, (int64_t)g->cfg.auth_backoff_ms, NULL, 0, 0, g};
    if (now_ms - g->auth->last_fail_sweep_ms < (int64_t)g->cfg.auth_backoff_ms) return;
    g->auth->last_fail_sweep_ms = now_ms;
    if (g->auth->fails.count == 0) return;
    giz_map_foreach(&g->auth->fails, fail_sweep_cb, &w);
    for (size_t i = 0; i < w.n; i++)
        free(giz_map_remove(&g->auth->fails, w.keys[i], strlen(w.keys[i])));
    free(w.keys);
}

int auth__init(struct gizp *g)
{
    char why[512], def[GIZ_PATH_SIZE];
    const char *path = g->cfg.passcode_key;
    int rc;

    g->auth = calloc(1, sizeof(*g->auth));
    if (g->auth == NULL || giz_map_init(&g->auth->fails) != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: out of memory or no randomness at start-up");
        return -1;
    }
    if (path[0] == '\0') {
        if (giz_store_passcode_key_default(g->cfg.db_path, def, sizeof(def)) != GIZ_OK) {
            mosquitto_log_printf(MOSQ_LOG_ERR,
                                 "giz: no default passcode key file for database %s: set "
                                 "plugin_opt_passcode_key",
                                 g->cfg.db_shown);
            return -1;
        }
        path = def;
    }
    rc = giz_store_passcode_key_load(g->store, path, why, sizeof(why));
    if (rc != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: %s; refusing to start", why);
        return -1;
    }
    /* The one verified-passcode cache: checked here before SQLite, and by
     * the store before PBKDF2; the store fills it after every success. */
    g->auth->pcache = giz_pcache_new(g->cfg.auth_cache_ttl, g->cfg.auth_cache_max);
    if (g->auth->pcache == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: out of memory or no randomness at start-up");
        return -1;
    }
    giz_store_set_pcache(g->store, g->auth->pcache);
    return 0;
}

void auth__free(struct gizp *g)
{
    struct auth *a = g->auth;
    if (a == NULL) return;
    if (g->store != NULL) giz_store_set_pcache(g->store, NULL); /* detached before it goes */
    giz_pcache_free(a->pcache);
    giz_map_free(&a->fails, free);
    free(a);
    g->auth = NULL;
}

void auth__stats(const struct gizp *g, struct auth_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (g->auth == NULL) return;
    *out = g->auth->n;
    out->cached = giz_pcache_count(g->auth->pcache);
}

static int device_login(struct gizp *g, struct mosquitto *ctx, const char *did,
                        const char *client_id, const char *passcode)
{
    char product_key[GIZ_PK_SIZE] = "";
    char who[64];
    struct giz_device dev;
    size_t plen = strlen(passcode);
    bool ok = false;
    bool reauth;
    struct client cur;

    snprintf(who, sizeof(who), "device %s", did);
    if (strcmp(client_id, did) != 0) return refuse(g, ctx, who, "client id != username");
    if (plen == 0 || plen > GIZ_MAX_PASSCODE) return refuse(g, ctx, who, "bad passcode length");
    /* mosquitto re-runs BASIC_AUTH for every client on SIGHUP: a context
     * already online as this DID is accepted from the cache even past the
     * TTL (it logged in with this passcode; disabling kicks it anyway), so a
     * reload does not run PBKDF2 for every device on the broker thread. */
    reauth = presence__client(g, ctx, &cur) && cur.kind == CLIENT_DEVICE && cur.dev != NULL &&
             strcmp(cur.dev->did, did) == 0;
    if (reauth && giz_pcache_check(g->auth->pcache, did, passcode, NULL, true, product_key)) {
        g->auth->n.cache_hits++;
        ok = true;
    } else {
        /* The back-off is keyed by where the wrong passcodes come from (the
         * address, and the DID from that address), never by the DID alone:
         * DIDs are not secret, and the real device elsewhere keeps logging
         * in. A backed-off key is refused without SQLite or a check — and
         * before the credential cache, which would otherwise keep answering
         * guesses for cached DIDs during the back-off. */
        char peer[GIZP_PEER_SIZE], addr[AUTH_ADDR_SIZE], key[AUTH_FAIL_KEY_SIZE];
        int64_t now = (int64_t)giz_mono_ms();
        struct auth_fail *f;
        bool slow = false, slow_ok;
        int rc;

        peer_of(ctx, peer, sizeof(peer));
        addr_key(peer, addr);
        fail_key(key, NULL, addr);
        f = fail_blocked(g, key, now);
        if (f == NULL) {
            fail_key(key, did, addr);
            f = fail_blocked(g, key, now);
        }
        if (f != NULL) {
            g->auth->n.throttled++;
            g->auth->n.refused++;
            fail_refused(g, f, key, now);
            return MOSQ_ERR_AUTH;
        }
        if (giz_pcache_check(g->auth->pcache, did, passcode, NULL, false, product_key)) {
            g->auth->n.cache_hits++;
            ok = true;
        }
        if (!ok) {
            slow_ok = slow_budget_ok(g, now);
            rc = giz_store_device_auth_budget(g->store, did, passcode, slow_ok, &dev, &slow);
            if (slow && slow_ok && g->auth->slow_tokens > 0) g->auth->slow_tokens--;
            if (rc == GIZ_ERR_AUTH && slow && !slow_ok) {
                /* Not checked: the PBKDF2 budget is spent (a legacy row, see
                 * DESIGN.md "Passcode verification"); not a wrong passcode. */
                g->auth->n.busy++;
                g->auth->n.refused++;
                if (plugin__rate_ok(&g->auth->rl_throttle, 10, "busy login lines"))
                    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                                         "giz: login refused for %s from %s: passcode check budget "
                                         "(auth_slow_rate %u/s) spent, retry later",
                                         who, peer, g->cfg.auth_slow_rate);
                return MOSQ_ERR_AUTH;
            }
            if (rc == GIZ_OK) {
                snprintf(product_key, sizeof(product_key), "%s", dev.product_key);
                /* the store has put it into g->auth->pcache */
                fail_key(key, did, addr);
                if (g->auth->fails.count > 0)
                    free(giz_map_remove(&g->auth->fails, key, strlen(key)));
                ok = true;
            } else {
                if (rc == GIZ_ERR_AUTH) did_failed(g, did, addr, now);
                if (rc == GIZ_ERR_NOT_FOUND || rc == GIZ_ERR_DISABLED) auth__forget(g, did);
                return refuse(g, ctx, who,
                              rc == GIZ_ERR_NOT_FOUND  ? "unknown DID"
                              : rc == GIZ_ERR_DISABLED ? "device disabled"
                              : rc == GIZ_ERR_AUTH     ? "wrong passcode"
                                                       : giz_strerror(rc));
            }
        }
    }
    if (ok && presence__device_online(g, ctx, did, product_key) != 0)
        return refuse(g, ctx, who, "out of memory");
    g->auth->n.ok++;
    if (!reauth) events__connect(g, ctx, did);
    if (g->cfg.log_level >= (reauth ? GIZ_LOG_DEBUG : GIZ_LOG_INFO)) {
        char peer[GIZP_PEER_SIZE];
        peer_of(ctx, peer, sizeof(peer));
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
        return refuse(g, ctx, who, "username is neither a DID nor an app user");
    }
    snprintf(who, sizeof(who), "app %.40s (uid %s)", client_id, uid);
    if (strlen(token) == 0 || strlen(token) > 128) return refuse(g, ctx, who, "bad token");
    rc = giz_store_session_by_token(g->store, token, plugin__unix_now(), &sess);
    if (rc == GIZ_ERR_AUTH || rc == GIZ_ERR_NOT_FOUND) return refuse(g, ctx, who, "unknown token");
    if (rc == GIZ_ERR_EXPIRED) return refuse(g, ctx, who, "token expired");
    if (rc != GIZ_OK) return refuse(g, ctx, who, giz_strerror(rc));
    if (strcmp(sess.uid, uid) != 0) return refuse(g, ctx, who, "token of another user");
    if (strcmp(sess.mqtt_client_id, client_id) != 0)
        return refuse(g, ctx, who, "client id is not the session's mqtt_client_id");
    if (appid[0] != '\0' && sess.appid[0] != '\0' && strcmp(appid, sess.appid) != 0)
        return refuse(g, ctx, who, "appid differs from the session's");
    if (presence__app_online(g, ctx, client_id, uid, sess.expire_at) != 0)
        return refuse(g, ctx, who, "out of memory or database error");
    g->auth->n.ok++;
    if (g->cfg.log_level >= GIZ_LOG_INFO) {
        char peer[GIZP_PEER_SIZE];
        peer_of(ctx, peer, sizeof(peer));
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
        return refuse(g, ed->client, "a client", "empty client id");
    if (ed->username == NULL || ed->password == NULL) {
        char who[64];
        snprintf(who, sizeof(who), "client %.40s", client_id);
        return refuse(g, ed->client, who, "no username or password");
    }
    if (giz_did_valid(ed->username))
        return device_login(g, ed->client, ed->username, client_id, ed->password);
    return app_login(g, ed->client, ed->username, client_id, ed->password);
}
