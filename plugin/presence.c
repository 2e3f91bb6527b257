/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Who is online, tracked by mosquitto context pointer: BASIC_AUTH success
 * adds a context, MOSQ_EVT_DISCONNECT of that pointer removes it. A client id
 * can have two live contexts for a moment (session takeover: the old
 * context's DISCONNECT arrives after the new one's BASIC_AUTH), so devices
 * and apps are reference-counted per DID / per app client id and "online"
 * means "at least one live context".
 *
 * The online-app count of a DID is the number of distinct online app client
 * ids whose user is bound to it. It changes when an app client id comes
 * online or goes offline, and on bind/unbind (outbox BINDING events); each
 * change pushes 0x0210 to the device if it is online.
 *
 * Store writes (devices.online/last_seen, 0x0012 device logs) are queued
 * here and written in one transaction per poll period by presence__flush().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define PRESENCE_MAX_PENDING_ONLINE 200000u

static void did_maybe_free(struct gizp *g, struct did_state *ds)
{
    if (ds != NULL && ds->device_conns == 0 && ds->app_count == 0) {
        map__remove(&g->dids, ds->did, strlen(ds->did));
        free(ds);
    }
}

static struct did_state *did_get_or_create(struct gizp *g, const char *did, size_t did_len)
{
    struct did_state *ds = map__get(&g->dids, did, did_len);
    void *old = NULL;
    if (ds != NULL || did_len >= GIZ_DID_SIZE) return ds;
    ds = calloc(1, sizeof(*ds));
    if (ds == NULL) return NULL;
    memcpy(ds->did, did, did_len);
    ds->did[did_len] = '\0';
    if (map__put(&g->dids, ds->did, did_len, ds, &old) != 0) {
        free(ds);
        return NULL;
    }
    return ds;
}

struct did_state *presence__did(struct gizp *g, const char *did)
{
    return map__sget(&g->dids, did);
}

/* The clients map holds one tagged pointer per context: the did_state of a
 * device (bit 0 clear) or the app_state of an app (bit 0 set), so a
 * connection costs the map entry and nothing else here. */
static void *client_tag(const struct client *c)
{
    if (c->kind == CLIENT_APP) return (void *)((uintptr_t)c->app | 1u);
    return c->dev;
}

static bool client_untag(const void *v, struct client *out)
{
    uintptr_t u = (uintptr_t)v;
    memset(out, 0, sizeof(*out));
    if (v == NULL) return false;
    if (u & 1u) {
        out->kind = CLIENT_APP;
        out->app = (struct app_state *)(u & ~(uintptr_t)1u);
    } else {
        out->kind = CLIENT_DEVICE;
        out->dev = (struct did_state *)u;
    }
    return true;
}

bool presence__client(struct gizp *g, const struct mosquitto *ctx, struct client *out)
{
    return client_untag(map__get(&g->clients, &ctx, sizeof(ctx)), out);
}

static void queue_online(struct gizp *g, const char *did, bool online)
{
    if (g->pend_online_n == g->pend_online_cap) {
        size_t cap = g->pend_online_cap ? g->pend_online_cap * 2u : 64u;
        struct pending_online *p;
        if (cap > PRESENCE_MAX_PENDING_ONLINE) {
            if (plugin__rate_ok(&g->rl_payload, 5, "presence updates dropped"))
                mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: presence queue full, dropping update");
            return;
        }
        p = realloc(g->pend_online, cap * sizeof(*p));
        if (p == NULL) return;
        g->pend_online = p;
        g->pend_online_cap = cap;
    }
    struct pending_online *e = &g->pend_online[g->pend_online_n++];
    snprintf(e->did, sizeof(e->did), "%s", did);
    e->online = online;
    e->at = plugin__unix_now();
}

/* ---- apps' bound DIDs (sorted array) ------------------------------------ */

static int did_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static bool app_find(const struct app_state *app, const char *did, size_t did_len, size_t *pos)
{
    size_t lo = 0, hi = app->ndids;
    char key[GIZ_DID_SIZE];
    if (did_len >= GIZ_DID_SIZE) return false;
    memcpy(key, did, did_len);
    key[did_len] = '\0';
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2u;
        int c = strcmp(app->dids[mid], key);
        if (c == 0) {
            if (pos != NULL) *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1u;
        else
            hi = mid;
    }
    if (pos != NULL) *pos = lo;
    return false;
}

bool presence__app_bound(const struct app_state *app, const char *did, size_t did_len)
{
    return app_find(app, did, did_len, NULL);
}

static int app_append(struct app_state *app, const char *did)
{
    if (strlen(did) != GIZ_DID_LEN) return 0;
    if (app->ndids == app->cap) {
        size_t cap = app->cap ? app->cap * 2u : 8u;
        char(*d)[GIZ_DID_SIZE] = realloc(app->dids, cap * sizeof(*d));
        if (d == NULL) return -1;
        app->dids = d;
        app->cap = cap;
    }
    memcpy(app->dids[app->ndids], did, GIZ_DID_SIZE);
    app->ndids++;
    return 0;
}

static int binding_cb(const struct giz_binding *b, void *ud)
{
    return app_append(ud, b->did) != 0 ? 1 : 0;
}

/* Adds 1 (delta>0) or removes 1 from the app count of every DID bound to app. */
static void app_count_all(struct gizp *g, struct app_state *app, int delta)
{
    for (size_t i = 0; i < app->ndids; i++) {
        struct did_state *ds = did_get_or_create(g, app->dids[i], strlen(app->dids[i]));
        if (ds == NULL) continue;
        if (delta > 0)
            ds->app_count++;
        else if (ds->app_count > 0)
            ds->app_count--;
        push__app_count(g, ds);
        did_maybe_free(g, ds);
    }
}

static void app_free(void *p)
{
    struct app_state *app = p;
    if (app != NULL) free(app->dids);
    free(app);
}

/* ---- online / offline ---------------------------------------------------- */

static void client_offline(struct gizp *g, struct mosquitto *ctx)
{
    struct client cl;
    struct client *c = &cl;
    if (!client_untag(map__remove(&g->clients, &ctx, sizeof(ctx)), c)) return;
    if (c->kind == CLIENT_DEVICE && c->dev != NULL) {
        struct did_state *ds = c->dev;
        if (ds->device_conns > 0) ds->device_conns--;
        push__device_gone(g, ctx, ds->did, ds->device_conns == 0);
        if (ds->device_conns == 0) queue_online(g, ds->did, false);
        did_maybe_free(g, ds);
    } else if (c->kind == CLIENT_APP && c->app != NULL) {
        struct app_state *app = c->app;
        if (app->conns > 0) app->conns--;
        if (app->conns == 0) {
            map__remove(&g->apps, app->client_id, strlen(app->client_id));
            app_count_all(g, app, -1);
            app_free(app);
        }
    }
}

static int client_add(struct gizp *g, struct mosquitto *ctx, const struct client *c)
{
    void *old = NULL;
    /* A context authenticating twice would be a broker change; keep counts right. */
    client_offline(g, ctx);
    if (map__put(&g->clients, &ctx, sizeof(ctx), client_tag(c), &old) != 0) return -1;
    return 0;
}

/* Remembers that did logged in with apps online (0x0210 on the next TICK). */
static void new_dev_add(struct gizp *g, const char *did)
{
    if (g->new_devs_n == g->new_devs_cap) {
        size_t cap = g->new_devs_cap ? g->new_devs_cap * 2u : 16u;
        char(*d)[GIZ_DID_SIZE] = realloc(g->new_devs, cap * sizeof(*d));
        if (d == NULL) return;
        g->new_devs = d;
        g->new_devs_cap = cap;
    }
    snprintf(g->new_devs[g->new_devs_n++], GIZ_DID_SIZE, "%s", did);
}

int presence__device_online(struct gizp *g, struct mosquitto *ctx, const char *did,
                            const char *product_key)
{
    struct client c;
    struct did_state *ds;
    if (presence__client(g, ctx, &c) && c.kind == CLIENT_DEVICE && c.dev != NULL &&
        strcmp(c.dev->did, did) == 0)
        return 0; /* re-authentication of a live context (SIGHUP): nothing changes */
    client_offline(g, ctx);
    ds = did_get_or_create(g, did, strlen(did));
    if (ds == NULL) return -1;
    memset(&c, 0, sizeof(c));
    c.kind = CLIENT_DEVICE;
    c.dev = ds;
    if (client_add(g, ctx, &c) != 0) {
        did_maybe_free(g, ds);
        return -1;
    }
    snprintf(ds->product_key, sizeof(ds->product_key), "%s", product_key);
    ds->device_conns++;
    push__device_login(g, ctx, ds->did);
    if (ds->device_conns == 1) queue_online(g, did, true);
    if (ds->app_count > 0) new_dev_add(g, ds->did);
    return 0;
}

void presence__push_new_devices(struct gizp *g)
{
    for (size_t i = 0; i < g->new_devs_n; i++) {
        struct did_state *ds = presence__did(g, g->new_devs[i]);
        if (ds != NULL && ds->app_count > 0) push__app_count(g, ds);
    }
    g->new_devs_n = 0;
    if (g->new_devs_cap > 1024u) { /* after a login storm, give the memory back */
        free(g->new_devs);
        g->new_devs = NULL;
        g->new_devs_cap = 0;
    }
}

int presence__app_online(struct gizp *g, struct mosquitto *ctx, const char *client_id,
                         const char *uid, int64_t expire_at)
{
    struct client c;
    struct app_state *app;
    if (presence__client(g, ctx, &c) && c.kind == CLIENT_APP && c.app != NULL &&
        strcmp(c.app->client_id, client_id) == 0 && strcmp(c.app->uid, uid) == 0) {
        c.app->expire_at = expire_at; /* re-authentication (SIGHUP): counts unchanged */
        return 0;
    }
    client_offline(g, ctx);
    app = map__sget(&g->apps, client_id);
    if (app != NULL && strcmp(app->uid, uid) != 0) {
        /* Same client id, other user: cannot happen with store-issued ids;
         * re-derive the bindings rather than trusting the old ones. */
        app_count_all(g, app, -1);
        app->ndids = 0;
        snprintf(app->uid, sizeof(app->uid), "%s", uid);
        if (giz_store_binding_list_by_user(g->store, uid, binding_cb, app) != GIZ_OK) return -1;
        if (app->ndids > 1) qsort(app->dids, app->ndids, sizeof(*app->dids), did_cmp);
        app_count_all(g, app, +1);
    }
    if (app == NULL) {
        void *old = NULL;
        if (strlen(client_id) >= GIZ_CLIENTID_SIZE) return -1;
        app = calloc(1, sizeof(*app));
        if (app == NULL) return -1;
        snprintf(app->client_id, sizeof(app->client_id), "%s", client_id);
        snprintf(app->uid, sizeof(app->uid), "%s", uid);
        if (giz_store_binding_list_by_user(g->store, uid, binding_cb, app) != GIZ_OK ||
            map__put(&g->apps, app->client_id, strlen(app->client_id), app, &old) != 0) {
            app_free(app);
            return -1;
        }
        if (app->ndids > 1) qsort(app->dids, app->ndids, sizeof(*app->dids), did_cmp);
        app_count_all(g, app, +1);
    }
    memset(&c, 0, sizeof(c));
    c.kind = CLIENT_APP;
    c.app = app;
    if (client_add(g, ctx, &c) != 0) goto fail;
    app->conns++;
    app->expire_at = expire_at;
    return 0;
fail:
    if (app->conns == 0) {
        map__remove(&g->apps, app->client_id, strlen(app->client_id));
        app_count_all(g, app, -1);
        app_free(app);
    }
    return -1;
}

void presence__gone_clear(struct gizp *g)
{
    if (g->gone.app != NULL) app_free(g->gone.app);
    memset(&g->gone, 0, sizeof(g->gone));
}

/* Remembers who ctx was, for the will check that follows its DISCONNECT. */
static void gone_remember(struct gizp *g, const struct mosquitto *ctx)
{
    struct client cl;
    presence__gone_clear(g);
    if (!presence__client(g, ctx, &cl)) return;
    if (cl.kind == CLIENT_DEVICE && cl.dev != NULL) {
        g->gone.dev = *cl.dev;
    } else if (cl.kind == CLIENT_APP && cl.app != NULL) {
        struct app_state *a = malloc(sizeof(*a));
        if (a == NULL) return;
        *a = *cl.app;
        a->dids = NULL;
        a->cap = a->ndids;
        if (a->ndids > 0) {
            a->dids = malloc(a->ndids * sizeof(*a->dids));
            if (a->dids == NULL) {
                free(a);
                return;
            }
            memcpy(a->dids, cl.app->dids, a->ndids * sizeof(*a->dids));
        }
        g->gone.app = a;
    } else {
        return;
    }
    g->gone.kind = cl.kind;
    g->gone.ctx = ctx;
}

bool presence__gone_client(struct gizp *g, const struct mosquitto *ctx, struct client *out)
{
    memset(out, 0, sizeof(*out));
    if (ctx == NULL || g->gone.ctx != ctx) return false;
    out->kind = g->gone.kind;
    if (g->gone.kind == CLIENT_DEVICE) out->dev = &g->gone.dev;
    if (g->gone.kind == CLIENT_APP) out->app = g->gone.app;
    return true;
}

int presence__disconnect_cb(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_disconnect *ed = event_data;
    (void)event;
    gone_remember(userdata, ed->client);
    client_offline(userdata, ed->client);
    return MOSQ_ERR_SUCCESS;
}

/* ---- session expiry -------------------------------------------------------- */

struct expiry_walk {
    int64_t now;
    char (*ids)[GIZ_CLIENTID_SIZE];
    size_t n, cap;
};

static int expiry_walk_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct expiry_walk *w = ud;
    struct app_state *app = value;
    (void)key;
    (void)klen;
    if (app->expire_at <= 0 || app->expire_at > w->now) return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2u : 16u;
        char(*ids)[GIZ_CLIENTID_SIZE] = realloc(w->ids, cap * sizeof(*ids));
        if (ids == NULL) return 1;
        w->ids = ids;
        w->cap = cap;
    }
    memcpy(w->ids[w->n++], app->client_id, GIZ_CLIENTID_SIZE);
    return 0;
}

void presence__expire_apps(struct gizp *g)
{
    struct expiry_walk w = {plugin__unix_now(), NULL, 0, 0};
    if (g->apps.count == 0) return;
    map__foreach(&g->apps, expiry_walk_cb, &w);
    /* Kicked after the walk: each kick re-enters presence__disconnect_cb. */
    for (size_t i = 0; i < w.n; i++) {
        if (w.ids[i][0] == '\0') continue;
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: app %s: session expired, disconnecting",
                             w.ids[i]);
        mosquitto_kick_client_by_clientid(w.ids[i], false);
    }
    free(w.ids);
}

/* ---- bindings ------------------------------------------------------------ */

struct binding_walk {
    struct gizp *g;
    const char *uid;
    const char *did;
    bool bound;
    int delta;
};

static int binding_walk_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct binding_walk *w = ud;
    struct app_state *app = value;
    size_t pos = 0;
    bool has;
    (void)key;
    (void)klen;
    if (strcmp(app->uid, w->uid) != 0) return 0;
    has = app_find(app, w->did, strlen(w->did), &pos);
    if (w->bound && !has) {
        if (app_append(app, w->did) != 0) return 0;
        /* app_append put it last; move it to its sorted place. */
        memmove(&app->dids[pos + 1], &app->dids[pos], (app->ndids - 1u - pos) * sizeof(*app->dids));
        memcpy(app->dids[pos], w->did, GIZ_DID_SIZE);
        w->delta++;
    } else if (!w->bound && has) {
        memmove(&app->dids[pos], &app->dids[pos + 1], (app->ndids - pos - 1u) * sizeof(*app->dids));
        app->ndids--;
        w->delta--;
    }
    return 0;
}

void presence__binding_changed(struct gizp *g, const char *uid, const char *did)
{
    struct binding_walk w = {g, uid, did, false, 0};
    struct did_state *ds;
    int rc;
    if (strlen(did) != GIZ_DID_LEN) return;
    rc = giz_store_binding_exists(g->store, uid, did);
    if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: binding check %s/%s failed: %s", uid, did,
                             giz_strerror(rc));
        return;
    }
    w.bound = rc == GIZ_OK;
    map__foreach(&g->apps, binding_walk_cb, &w);
    if (w.delta == 0) return;
    ds = did_get_or_create(g, did, strlen(did));
    if (ds == NULL) return;
    if (w.delta > 0)
        ds->app_count += (unsigned)w.delta;
    else
        ds->app_count =
            ds->app_count >= (unsigned)-w.delta ? ds->app_count - (unsigned)-w.delta : 0;
    push__app_count(g, ds);
    did_maybe_free(g, ds);
}

/* ---- device logs and the DB batch ---------------------------------------- */

bool presence__log_allow(struct gizp *g, struct did_state *ds)
{
    uint32_t now = (uint32_t)plugin__now_ms();
    uint64_t cap = (uint64_t)g->cfg.log_burst * 1000u;
    uint64_t tokens;
    if (now == 0) now = 1; /* 0 means "no record yet" */
    if (ds->log_refill_ms == 0) {
        ds->log_tokens = (uint32_t)cap;
        ds->log_refill_ms = now;
    }
    tokens = ds->log_tokens + (uint64_t)(uint32_t)(now - ds->log_refill_ms) * g->cfg.log_rate;
    ds->log_tokens = (uint32_t)(tokens > cap ? cap : tokens);
    ds->log_refill_ms = now;
    if (ds->log_tokens >= 1000u) {
        ds->log_tokens -= 1000u;
        return true;
    }
    g->logs_over_rate++;
    if (plugin__rate_ok(&g->rl_lograte, 5, "over-rate device log lines"))
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: device %s: 0x0012 log records over plugin_opt_log_rate (%u/s, "
                             "burst %u) are not stored (%llu so far)",
                             ds->did, g->cfg.log_rate, g->cfg.log_burst,
                             (unsigned long long)g->logs_over_rate);
    return false;
}

void presence__prune(struct gizp *g, int64_t now_ms)
{
    int rc;
    /* Runs on every TICK: also the hook of push.c's queue (releases paced
     * messages, fallback timers). */
    push__tick(g, now_ms);
    if (now_ms - g->last_prune_ms < (int64_t)g->cfg.log_prune_ms || g->store == NULL) return;
    g->last_prune_ms = now_ms;
    /* The prune looks only at devices that logged since the last one. */
    if (g->cfg.log_keep > 0 && g->logs_since_prune) {
        g->logs_since_prune = false;
        rc = giz_store_log_prune(g->store, g->cfg.log_keep);
        if (rc != GIZ_OK && plugin__rate_ok(&g->rl_payload, 5, "prune errors"))
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: device log pruning failed: %s: %s",
                                 giz_strerror(rc), giz_store_errmsg(g->store));
    }
    rc = giz_store_outbox_prune(g->store, plugin__unix_now() - 3600);
    if (rc != GIZ_OK && plugin__rate_ok(&g->rl_payload, 5, "prune errors"))
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: outbox pruning failed: %s: %s",
                             giz_strerror(rc), giz_store_errmsg(g->store));
}

void presence__log_add(struct gizp *g, const char *did, int level, const void *tags,
                       size_t tags_len, const void *source, size_t source_len, const void *content,
                       size_t content_len)
{
    struct pending_log *e;
    if (g->pend_log_n >= g->cfg.log_max) {
        g->log_dropped++;
        return;
    }
    if (g->pend_log_n == g->pend_log_cap) {
        size_t cap = g->pend_log_cap ? g->pend_log_cap * 2u : 32u;
        struct pending_log *p = realloc(g->pend_log, cap * sizeof(*p));
        if (p == NULL) return;
        g->pend_log = p;
        g->pend_log_cap = cap;
    }
    e = &g->pend_log[g->pend_log_n];
    e->text = malloc(tags_len + source_len + content_len + 1u);
    if (e->text == NULL) return;
    if (tags_len) memcpy(e->text, tags, tags_len);
    if (source_len) memcpy(e->text + tags_len, source, source_len);
    if (content_len) memcpy(e->text + tags_len + source_len, content, content_len);
    e->text[tags_len + source_len + content_len] = '\0';
    snprintf(e->did, sizeof(e->did), "%s", did);
    e->level = level;
    e->ts = plugin__unix_now();
    e->tags_len = tags_len;
    e->source_len = source_len;
    e->content_len = content_len;
    g->pend_log_n++;
}

static void pending_logs_clear(struct gizp *g)
{
    for (size_t i = 0; i < g->pend_log_n; i++)
        free(g->pend_log[i].text);
    g->pend_log_n = 0;
}

void presence__flush(struct gizp *g)
{
    int rc;
    size_t i;
    if (g->log_dropped > 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: %u device log records dropped (queue full)",
                             g->log_dropped);
        g->log_dropped = 0;
    }
    bool beat = push__beat_due(g, plugin__now_ms());
    if (g->store == NULL || (g->pend_online_n == 0 && g->pend_log_n == 0)) {
        if (beat) push__beat(g, plugin__now_ms()); /* alone: nothing else to write */
        return;
    }
    rc = giz_store_begin(g->store);
    if (rc != GIZ_OK) goto fail;
    if (beat) push__beat(g, plugin__now_ms()); /* a failure is logged; the batch goes on */
    for (i = 0; i < g->pend_online_n; i++) {
        const struct pending_online *p = &g->pend_online[i];
        rc = giz_store_device_set_online(g->store, p->did, p->online, p->at);
        if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND) goto fail_rollback;
    }
    for (i = 0; i < g->pend_log_n; i++) {
        const struct pending_log *l = &g->pend_log[i];
        rc = giz_store_log_insert(g->store, l->did, l->level, l->text, l->tags_len,
                                  l->text + l->tags_len, l->source_len,
                                  l->text + l->tags_len + l->source_len, l->content_len, l->ts);
        if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND && rc != GIZ_ERR_INVAL) goto fail_rollback;
    }
    rc = giz_store_commit(g->store);
    if (rc != GIZ_OK) goto fail_rollback;
    if (g->pend_log_n > 0) g->logs_since_prune = true;
    g->pend_online_n = 0;
    pending_logs_clear(g);
    return;

fail_rollback:
    giz_store_rollback(g->store);
fail:
    /* Kept for the next period (the DB may be briefly locked by the GService);
     * logs are dropped if they pile up, presence changes are bounded. */
    if (plugin__rate_ok(&g->rl_payload, 5, "DB batch errors"))
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: DB batch failed (%s), will retry: %s",
                             giz_strerror(rc), giz_store_errmsg(g->store));
    if (g->pend_log_n >= g->cfg.log_max) {
        g->log_dropped += (unsigned)g->pend_log_n;
        pending_logs_clear(g);
    }
}

void presence__free(struct gizp *g)
{
    push__free(g); /* records the clean stop: needs the store, still open here */
    presence__gone_clear(g);
    free(g->new_devs);
    g->new_devs = NULL;
    g->new_devs_n = g->new_devs_cap = 0;
    map__free(&g->clients, NULL); /* values are tagged pointers into dids / apps */
    map__free(&g->apps, app_free);
    map__free(&g->dids, free);
    free(g->pend_online);
    g->pend_online = NULL;
    g->pend_online_n = g->pend_online_cap = 0;
    pending_logs_clear(g);
    free(g->pend_log);
    g->pend_log = NULL;
    g->pend_log_cap = 0;
}
