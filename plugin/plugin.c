/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Entry points of giz_plugin.so for mosquitto 2.0 (plugin interface 5):
 * version check, init (options, store, read interposition, callback table) and
 * cleanup, plus the TICK dispatcher and the log sink. The plugin's whole
 * state is one heap context (struct gizp) handed to mosquitto as userdata;
 * there are no file-static globals. Only mosquitto_plugin_version/init/
 * cleanup are exported (everything else is built with hidden visibility).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "giz/crypto.h"
#include "plugin.h"

#define GIZP_EXPORT __attribute__((visibility("default")))

int64_t plugin__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t plugin__unix_now(void)
{
    return (int64_t)time(NULL);
}

bool plugin__rate_ok(struct rate_limit *rl, unsigned max_per_10s, const char *what)
{
    int64_t now = plugin__now_ms();
    if (now - rl->window_start >= 10000) {
        if (rl->suppressed > 0)
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: %u more %s not logged", rl->suppressed,
                                 what);
        rl->window_start = now;
        rl->count = 0;
        rl->suppressed = 0;
    }
    if (rl->count < max_per_10s) {
        rl->count++;
        return true;
    }
    rl->suppressed++;
    return false;
}

/* giz_log sink: mosquitto's log on the main thread (where everything runs);
 * a line from any other thread (none today) goes to stderr, because
 * mosquitto's log functions are not thread-safe. */
static void log_sink_cb(enum giz_log_lvl lvl, const char *line, void *ud)
{
    struct gizp *g = ud;
    if (pthread_equal(pthread_self(), g->main_thread)) {
        int mlvl = lvl == GIZ_LOG_ERR    ? MOSQ_LOG_ERR
                   : lvl == GIZ_LOG_WARN ? MOSQ_LOG_WARNING
                   : lvl == GIZ_LOG_INFO ? MOSQ_LOG_NOTICE
                                         : MOSQ_LOG_DEBUG;
        mosquitto_log_printf(mlvl, "giz: %s", line);
    } else {
        fprintf(stderr, "giz: %s\n", line);
    }
}

static void log_stats(struct gizp *g, int64_t now)
{
    double secs = (double)(now - g->last_stats_ms) / 1000.0;
    double rate = secs > 0 ? (double)(g->ticks - g->ticks_at_stats) / secs : 0.0;
    struct intercept_stats is;
    intercept__stats(g, &is);
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "giz: stats: %.1f TICK/s, %zu clients, %zu DIDs tracked, %zu apps, "
                         "logins ok %llu refused %llu (cache hits %llu, throttled %llu), "
                         "client sockets %llu (without CONNECT %llu) accepted %llu refused %llu, "
                         "closed: ping limit %llu, other limits %llu, no CONNECT in time %llu, "
                         "device logs over rate %llu",
                         rate, g->clients.count, g->dids.count, g->apps.count,
                         (unsigned long long)g->logins_ok, (unsigned long long)g->logins_refused,
                         (unsigned long long)g->cache_hits, (unsigned long long)g->logins_throttled,
                         (unsigned long long)is.conns, (unsigned long long)is.pre_connect,
                         (unsigned long long)is.accepted, (unsigned long long)is.refused,
                         (unsigned long long)is.closed_ping, (unsigned long long)is.closed_other,
                         (unsigned long long)is.timeouts,
                         (unsigned long long)g->logs_over_rate);
    g->last_stats_ms = now;
    g->ticks_at_stats = g->ticks;
}

/* MOSQ_EVT_TICK: fires once per broker loop iteration (about 10/s idle, more
 * under load), so the real work is throttled to every poll_ms. */
static int tick_cb(int event, void *event_data, void *userdata)
{
    struct gizp *g = userdata;
    (void)event;
    (void)event_data;
    g->ticks++;
    if (g->gone.ctx != NULL) presence__gone_clear(g);
    if (g->new_devs_n > 0) presence__push_new_devices(g);
    int64_t now = plugin__now_ms();
    intercept__tick(g, now);
    if (now - g->last_poll_ms >= (int64_t)g->cfg.poll_ms) {
        g->last_poll_ms = now;
        push__poll_outbox(g);
        presence__flush(g);
    }
    presence__prune(g, now);
    auth__fails_sweep(g, now);
    if (now - g->last_expiry_ms >= 1000) {
        g->last_expiry_ms = now;
        presence__expire_apps(g);
    }
    if (g->cfg.stats_interval > 0 &&
        now - g->last_stats_ms >= (int64_t)g->cfg.stats_interval * 1000)
        log_stats(g, now);
    return MOSQ_ERR_SUCCESS;
}

/* MOSQ_EVT_RELOAD (SIGHUP): options are not re-read by 2.0.11. The
 * credential cache is kept: right after this event mosquitto re-runs
 * BASIC_AUTH for every connected client, and an emptied cache made that a
 * PBKDF2 + SQLite lookup per device on the broker thread. */
static int reload_cb(int event, void *event_data, void *userdata)
{
    struct gizp *g = userdata;
    (void)event;
    (void)event_data;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "giz: reload: plugin options are not re-read; %zu cached device "
                         "credentials kept, %zu clients will be re-authenticated",
                         g->creds.count, g->clients.count);
    return MOSQ_ERR_SUCCESS;
}

static const struct {
    int event;
    MOSQ_FUNC_generic_callback cb;
} callback_table[] = {
    {MOSQ_EVT_BASIC_AUTH, auth__basic_cb},
    {MOSQ_EVT_ACL_CHECK, acl__check_cb},
    {MOSQ_EVT_MESSAGE, push__message_cb},
    {MOSQ_EVT_DISCONNECT, presence__disconnect_cb},
    {MOSQ_EVT_TICK, tick_cb},
    {MOSQ_EVT_RELOAD, reload_cb},
};
#define CALLBACK_COUNT (sizeof(callback_table) / sizeof(callback_table[0]))

static void context_free(struct gizp *g)
{
    if (g == NULL) return;
    intercept__stop(g);
    presence__free(g);
    map__free(&g->creds, free);
    map__free(&g->fails, free);
    if (g->store != NULL) {
        giz_store_device_all_offline(g->store);
        giz_store_close(g->store);
    }
    giz_log_set_sink(NULL, NULL);
    free(g);
}

GIZP_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5) return 5;
    }
    return -1;
}

GIZP_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                      struct mosquitto_opt *options, int option_count)
{
    struct gizp *g = calloc(1, sizeof(*g));
    struct giz_error err = {0};
    int rc;
    size_t registered = 0;
    if (g == NULL) return MOSQ_ERR_NOMEM;
    g->pid = identifier;
    g->main_thread = pthread_self();
    if (config__parse(&g->cfg, options, option_count) != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: refusing to start: bad plugin options");
        free(g);
        return MOSQ_ERR_INVAL;
    }
    giz_log_init("giz", (enum giz_log_lvl)g->cfg.log_level);
    giz_log_set_sink(log_sink_cb, g);
    /* Fail closed before anything else: an unknown mosquitto build, or one
     * without the relocations, would run without the PINGREQ limit,
     * keepalive clamp and connection caps. */
    if (intercept__start(g) != 0) {
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    if (map__init(&g->creds) != 0 || map__init(&g->fails) != 0 || map__init(&g->clients) != 0 ||
        map__init(&g->dids) != 0 ||
        map__init(&g->apps) != 0 ||
        giz_random_bytes(g->cache_key, sizeof(g->cache_key)) != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: out of memory or no randomness at start-up");
        rc = MOSQ_ERR_NOMEM;
        goto fail;
    }
    g->clients.ptr_keys = true; /* keyed by mosquitto context pointers */
    rc = giz_store_open(g->cfg.db_path, &g->store, &err);
    if (rc != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: cannot open database %s: %s (%s)", g->cfg.db_path,
                             giz_strerror(rc), err.text);
        g->store = NULL;
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    if (giz_store_outbox_last_id(g->store, &g->outbox_last_id) != GIZ_OK ||
        giz_store_device_all_offline(g->store) != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: database %s not usable: %s", g->cfg.db_path,
                             giz_store_errmsg(g->store));
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    if (auth__init(g) != 0) { /* the passcode key (auth.c) */
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    g->start_ms = g->last_stats_ms = g->last_prune_ms = plugin__now_ms();
    g->logs_since_prune = true; /* the first prune also trims what an older run left */
    for (registered = 0; registered < CALLBACK_COUNT; registered++) {
        rc = mosquitto_callback_register(identifier, callback_table[registered].event,
                                         callback_table[registered].cb, NULL, g);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "giz: cannot register callback for event %d",
                                 callback_table[registered].event);
            goto fail;
        }
    }
    mosquitto_log_printf(
        MOSQ_LOG_NOTICE,
        "giz: plugin ready: db %s, ping limit %u per %u ms, keepalive max %u s, "
        "connections without CONNECT: %u s timeout, at most %u (%u per address), "
        "outbox after id %lld",
        g->cfg.db_path, g->cfg.ping_max, g->cfg.ping_window_ms, g->cfg.keepalive_max,
        g->cfg.connect_timeout_ms / 1000u, g->cfg.pre_connect_max, g->cfg.pre_connect_per_addr,
        (long long)g->outbox_last_id);
    *userdata = g;
    return MOSQ_ERR_SUCCESS;

fail:
    while (registered > 0) {
        registered--;
        mosquitto_callback_unregister(identifier, callback_table[registered].event,
                                      callback_table[registered].cb, NULL);
    }
    context_free(g);
    return rc;
}

GIZP_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options,
                                         int option_count)
{
    struct gizp *g = userdata;
    (void)options;
    (void)option_count;
    if (g == NULL) return MOSQ_ERR_SUCCESS;
    for (size_t i = 0; i < CALLBACK_COUNT; i++) {
        mosquitto_callback_unregister(g->pid, callback_table[i].event, callback_table[i].cb, NULL);
    }
    int64_t now = plugin__now_ms();
    double secs = (double)(now - g->start_ms) / 1000.0;
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: stopping: %llu TICKs in %.1f s (%.1f/s)",
                         (unsigned long long)g->ticks, secs,
                         secs > 0 ? (double)g->ticks / secs : 0.0);
    presence__flush(g);
    context_free(g);
    return MOSQ_ERR_SUCCESS;
}
