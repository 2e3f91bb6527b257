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
 * Online/offline changes (devices.online/last_seen) go to the timeline's
 * writer process while it runs (events__state_online: no SQLite on
 * mosquitto's thread for a login); without it they are queued here and
 * written by plugin.c's DB batch (presence__write) once per poll period,
 * in the same transaction as devlog.c's records. If the writer dies with
 * changes in flight, the next batch marks this broker's devices offline and
 * writes the connected ones online again (presence__resync).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define PRESENCE_MAX_PENDING_ONLINE 200000u

/* A queued devices.online/last_seen change. */
struct pending_online {
    char did[GIZ_DID_SIZE];
    bool online;
    int64_t at;
};

/* The identity of the context whose DISCONNECT ran last. mosquitto 2.0.11
 * (src/context.c, context__disconnect) fires MOSQ_EVT_DISCONNECT and then,
 * in the same call, checks the client's will with MOSQ_ACL_WRITE: the ACL
 * needs who the client was after presence has forgotten it. Copies (the
 * live records may be freed by then); cleared on the next TICK. */
struct gone_client {
    const struct mosquitto *ctx; /* NULL when empty */
    enum client_kind kind;
    struct did_state dev;  /* CLIENT_DEVICE: copy */
    struct app_state *app; /* CLIENT_APP: owned copy (with its DID list) */
};

struct presence {
    struct giz_map clients; /* struct mosquitto * -> tagged pointer (client_tag) */
    struct giz_imap dids;   /* struct did_state by its did */
    /* one of each per idle device, off malloc's heap (giz/pool.h) */
    struct giz_pool client_pool; /* the clients map's entries */
    struct giz_pool did_pool;    /* struct did_state */
    struct giz_map apps;         /* app client id -> struct app_state */
    struct pending_online *pend; /* queued for the DB batch */
    size_t pend_n, pend_cap;
    bool resync;        /* the batch starts with "all of this broker's devices offline" */
    size_t online_devs; /* DIDs with device_conns > 0 */
    char (*new_devs)[GIZ_DID_SIZE]; /* logged in since the last TICK (0x0210 push) */
    size_t new_devs_n, new_devs_cap;
    struct gone_client gone; /* last DISCONNECT, for its will's ACL check */
    int64_t last_expiry_ms;
    struct rate_limit rl; /* "presence queue full" lines */
};

static void did_maybe_free(struct gizp *g, struct did_state *ds)
{
    if (ds != NULL && ds->device_conns == 0 && ds->app_count == 0) {
        if (ds->ev.ctx != NULL) events__did_gone(g, ds); /* (its DISCONNECT comes first) */
        giz_imap_remove(&g->presence->dids, ds->did, strlen(ds->did));
        giz_pool_free(&g->presence->did_pool, ds);
    }
}

static struct did_state *did_get_or_create(struct gizp *g, const char *did, size_t did_len)
{
    struct did_state *ds = giz_imap_get(&g->presence->dids, did, did_len);
    if (ds != NULL || did_len >= GIZ_DID_SIZE) return ds;
    ds = giz_pool_alloc(&g->presence->did_pool);
    if (ds == NULL) return NULL;
    memcpy(ds->did, did, did_len);
    ds->did[did_len] = '\0';
    if (giz_imap_put(&g->presence->dids, ds) != 0) {
        giz_pool_free(&g->presence->did_pool, ds);
        return NULL;
    }
    return ds;
}

struct did_state *presence__did(struct gizp *g, const char *did)
{
    return giz_imap_get(&g->presence->dids, did, strlen(did));
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
    return client_untag(giz_map_get(&g->presence->clients, &ctx, sizeof(ctx)), out);
}

static void queue_online(struct gizp *g, const char *did, bool online)
{
    struct presence *pr = g->presence;
    struct pending_online *p;
    int64_t at = plugin__unix_now();
    if (events__state_online(g, did, online, at)) return;
    if (pr->pend_n >= PRESENCE_MAX_PENDING_ONLINE) {
        if (plugin__rate_ok(&pr->rl, 5, "presence updates dropped"))
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: presence queue full, dropping update");
        return;
    }
    p = giz_array_reserve(pr->pend, &pr->pend_cap, pr->pend_n + 1u, sizeof(*p), 64u,
                          PRESENCE_MAX_PENDING_ONLINE);
    if (p == NULL) return;
    pr->pend = p;
    struct pending_online *e = &pr->pend[pr->pend_n++];
    snprintf(e->did, sizeof(e->did), "%s", did);
    e->online = online;
    e->at = at;
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
    char(*d)[GIZ_DID_SIZE] =
        giz_array_reserve(app->dids, &app->cap, app->ndids + 1u, sizeof(*d), 8u, SIZE_MAX);
    if (d == NULL) return -1;
    app->dids = d;
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
    if (!client_untag(giz_map_remove(&g->presence->clients, &ctx, sizeof(ctx)), c)) return;
    if (c->kind == CLIENT_DEVICE && c->dev != NULL) {
        struct did_state *ds = c->dev;
        if (ds->device_conns > 0) ds->device_conns--;
        push__device_gone(g, ctx, ds->did, ds->device_conns == 0);
        if (ds->device_conns == 0) {
            queue_online(g, ds->did, false);
            if (g->presence->online_devs > 0) g->presence->online_devs--;
        }
        did_maybe_free(g, ds);
    } else if (c->kind == CLIENT_APP && c->app != NULL) {
        struct app_state *app = c->app;
        if (app->conns > 0) app->conns--;
        if (app->conns == 0) {
            giz_map_remove(&g->presence->apps, app->client_id, strlen(app->client_id));
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
    if (giz_map_put(&g->presence->clients, &ctx, sizeof(ctx), client_tag(c), &old) != 0) return -1;
    return 0;
}

/* Remembers that did logged in with apps online (0x0210 on the next TICK). */
static void new_dev_add(struct gizp *g, const char *did)
{
    struct presence *pr = g->presence;
    char(*d)[GIZ_DID_SIZE] = giz_array_reserve(pr->new_devs, &pr->new_devs_cap, pr->new_devs_n + 1u,
                                               sizeof(*d), 16u, SIZE_MAX);
    if (d == NULL) return;
    pr->new_devs = d;
    snprintf(pr->new_devs[pr->new_devs_n++], GIZ_DID_SIZE, "%s", did);
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
    if (ds->device_conns == 1) {
        queue_online(g, did, true);
        g->presence->online_devs++;
    }
    if (ds->app_count > 0) new_dev_add(g, ds->did);
    return 0;
}

static void push_new_devices(struct gizp *g)
{
    for (size_t i = 0; i < g->presence->new_devs_n; i++) {
        struct did_state *ds = presence__did(g, g->presence->new_devs[i]);
        if (ds != NULL && ds->app_count > 0) push__app_count(g, ds);
    }
    g->presence->new_devs_n = 0;
    if (g->presence->new_devs_cap * GIZ_DID_SIZE > GIZ_BURST_KEEP_BYTES) { /* after a storm */
        free(g->presence->new_devs);
        g->presence->new_devs = NULL;
        g->presence->new_devs_cap = 0;
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
    app = giz_map_sget(&g->presence->apps, client_id);
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
            giz_map_put(&g->presence->apps, app->client_id, strlen(app->client_id), app, &old) !=
                0) {
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
        giz_map_remove(&g->presence->apps, app->client_id, strlen(app->client_id));
        app_count_all(g, app, -1);
        app_free(app);
    }
    return -1;
}

static void gone_clear(struct gizp *g)
{
    if (g->presence->gone.app != NULL) app_free(g->presence->gone.app);
    memset(&g->presence->gone, 0, sizeof(g->presence->gone));
}

/* Remembers who ctx was, for the will check that follows its DISCONNECT. */
static void gone_remember(struct gizp *g, const struct mosquitto *ctx)
{
    struct client cl;
    gone_clear(g);
    if (!presence__client(g, ctx, &cl)) return;
    if (cl.kind == CLIENT_DEVICE && cl.dev != NULL) {
        g->presence->gone.dev = *cl.dev;
        /* not this copy's (the owned pointers stay with the record): its
         * will goes on the timeline without flood tracking */
        memset(&g->presence->gone.dev.ev, 0, sizeof(g->presence->gone.dev.ev));
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
        g->presence->gone.app = a;
    } else {
        return;
    }
    g->presence->gone.kind = cl.kind;
    g->presence->gone.ctx = ctx;
}

bool presence__gone_client(struct gizp *g, const struct mosquitto *ctx, struct client *out)
{
    memset(out, 0, sizeof(*out));
    if (ctx == NULL || g->presence->gone.ctx != ctx) return false;
    out->kind = g->presence->gone.kind;
    if (g->presence->gone.kind == CLIENT_DEVICE) out->dev = &g->presence->gone.dev;
    if (g->presence->gone.kind == CLIENT_APP) out->app = g->presence->gone.app;
    return true;
}

int presence__disconnect_cb(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_disconnect *ed = event_data;
    (void)event;
    events__disconnect(userdata, ed->client); /* completed by the socket's close */
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
    char(*ids)[GIZ_CLIENTID_SIZE] =
        giz_array_reserve(w->ids, &w->cap, w->n + 1u, sizeof(*ids), 16u, SIZE_MAX);
    if (ids == NULL) return 1;
    w->ids = ids;
    memcpy(w->ids[w->n++], app->client_id, GIZ_CLIENTID_SIZE);
    return 0;
}

/* Kicks app sessions whose token has expired. */
static void expire_apps(struct gizp *g)
{
    struct expiry_walk w = {plugin__unix_now(), NULL, 0, 0};
    if (g->presence->apps.count == 0) return;
    giz_map_foreach(&g->presence->apps, expiry_walk_cb, &w);
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
    giz_map_foreach(&g->presence->apps, binding_walk_cb, &w);
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

/* ---- life cycle, TICK, DB batch ------------------------------------------ */

int presence__init(struct gizp *g)
{
    struct presence *pr = calloc(1, sizeof(*pr));
    if (pr == NULL) return -1;
    g->presence = pr;
    giz_pool_init(&pr->client_pool, GIZ_MAP_ENTRY_SIZE(sizeof(void *)));
    giz_pool_init(&pr->did_pool, sizeof(struct did_state));
    if (giz_map_init(&pr->clients) != 0 ||
        giz_imap_init(&pr->dids, offsetof(struct did_state, link),
                      offsetof(struct did_state, did)) != 0 ||
        giz_map_init(&pr->apps) != 0)
        return -1;               /* presence__free releases what was made */
    pr->clients.ptr_keys = true; /* keyed by mosquitto context pointers */
    pr->clients.pool = &pr->client_pool;
    return 0;
}

void presence__tick(struct gizp *g, int64_t now_ms)
{
    struct presence *pr = g->presence;
    if (pr->gone.ctx != NULL) gone_clear(g);
    if (pr->new_devs_n > 0) push_new_devices(g);
    if (now_ms - pr->last_expiry_ms >= 1000) {
        pr->last_expiry_ms = now_ms;
        expire_apps(g);
    }
}

struct did_walk {
    int (*cb)(struct did_state *ds, void *ud);
    void *ud;
};

static int did_walk_cb(void *rec, void *ud)
{
    const struct did_walk *w = ud;
    return w->cb(rec, w->ud);
}

void presence__foreach_did(struct gizp *g, int (*cb)(struct did_state *ds, void *ud), void *ud)
{
    struct did_walk w = {cb, ud};
    giz_imap_foreach(&g->presence->dids, did_walk_cb, &w);
}

bool presence__pending(const struct gizp *g)
{
    return g->presence->pend_n > 0 || g->presence->resync;
}

int presence__write(struct gizp *g)
{
    const struct presence *pr = g->presence;
    if (pr->resync) {
        int rc = giz_store_device_all_offline(g->store);
        if (rc != GIZ_OK) return rc;
    }
    for (size_t i = 0; i < pr->pend_n; i++) {
        const struct pending_online *p = &pr->pend[i];
        int rc = giz_store_device_set_online(g->store, p->did, p->online, p->at);
        if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND) return rc;
    }
    return GIZ_OK;
}

void presence__written(struct gizp *g)
{
    struct presence *pr = g->presence;
    pr->pend_n = 0;
    pr->resync = false;
    if (pr->pend_cap * sizeof(*pr->pend) > GIZ_BURST_KEEP_BYTES) { /* after a login storm */
        free(pr->pend);
        pr->pend = NULL;
        pr->pend_cap = 0;
    }
}

void presence__stats(const struct gizp *g, struct presence_stats *out)
{
    const struct presence *pr = g->presence;
    memset(out, 0, sizeof(*out));
    if (pr == NULL) return;
    out->clients = pr->clients.count;
    out->dids = pr->dids.count;
    out->apps = pr->apps.count;
    out->devices = pr->online_devs;
}

static int requeue_cb(struct did_state *ds, void *ud)
{
    if (ds->device_conns > 0) queue_online(ud, ds->did, true);
    return 0;
}

void presence__requeue_online(struct gizp *g)
{
    presence__foreach_did(g, requeue_cb, g);
}

void presence__resync(struct gizp *g)
{
    g->presence->pend_n = 0; /* all superseded by the offline marks */
    g->presence->resync = true;
    presence__requeue_online(g);
}

void presence__free(struct gizp *g)
{
    struct presence *pr = g->presence;
    if (pr == NULL) return;
    gone_clear(g);
    free(pr->new_devs);
    giz_map_free(&pr->clients, NULL); /* values are tagged pointers into dids / apps */
    giz_map_free(&pr->apps, app_free);
    giz_imap_free(&pr->dids, NULL); /* the records go with their pool */
    giz_pool_destroy(&pr->did_pool);
    giz_pool_destroy(&pr->client_pool); /* after the map: its entries came from it */
    free(pr->pend);
    free(pr);
    g->presence = NULL;
}
