/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Entry points of giz_plugin.so for mosquitto 2.0 (plugin interface 5):
 * version check, init (options, store, read interposition, callback table) and
 * cleanup, plus the TICK dispatcher and the log sink. The plugin's whole
 * state is one heap context (struct gizp) handed to mosquitto as userdata;
 * there are no file-static globals. Only mosquitto_plugin_version/init/
 * cleanup are exported (everything else is built with hidden visibility).
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "giz/crypto.h"
#include "plugin.h"

#define GIZP_EXPORT __attribute__((visibility("default")))

int64_t plugin__unix_now(void)
{
    return (int64_t)time(NULL);
}

bool plugin__rate_ok(struct rate_limit *rl, unsigned max_per_10s, const char *what)
{
    int64_t now = (int64_t)giz_mono_ms();
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
    double secs = (double)(now - g->tick.last_stats_ms) / 1000.0;
    double rate = secs > 0 ? (double)(g->tick.ticks - g->tick.ticks_at_stats) / secs : 0.0;
    struct intercept_stats is;
    struct presence_stats pr;
    struct push_stats ps;
    struct auth_stats as;
    intercept__stats(g, &is);
    auth__stats(g, &as);
    presence__stats(g, &pr);
    push__stats(g, &ps);
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "giz: stats: %.1f TICK/s, %zu clients, %zu DIDs tracked, %zu apps, "
                         "logins ok %llu refused %llu (cache hits %llu, throttled %llu), "
                         "client sockets %llu (without CONNECT %llu) accepted %llu refused %llu, "
                         "closed: ping limit %llu, other limits %llu, no CONNECT in time %llu, "
                         "device logs over rate %llu, "
                         "send queues %zu (%zu bytes) paced %llu dropped %llu held until "
                         "subscribed %llu",
                         rate, pr.clients, pr.dids, pr.apps, (unsigned long long)as.ok,
                         (unsigned long long)as.refused, (unsigned long long)as.cache_hits,
                         (unsigned long long)as.throttled, (unsigned long long)is.conns,
                         (unsigned long long)is.pre_connect, (unsigned long long)is.accepted,
                         (unsigned long long)is.refused, (unsigned long long)is.closed_ping,
                         (unsigned long long)is.closed_other, (unsigned long long)is.timeouts,
                         (unsigned long long)devlog__over_rate(g), ps.tracked, ps.queued_bytes,
                         (unsigned long long)ps.paced, (unsigned long long)ps.dropped,
                         (unsigned long long)ps.held_for_sub);
    g->tick.last_stats_ms = now;
    g->tick.ticks_at_stats = g->tick.ticks;
}

/* The DB batch, every poll_ms: the broker heartbeat, presence's online
 * changes and devlog's records in one transaction (the heartbeat alone
 * when nothing else is queued). On failure everything stays queued for the
 * next period (the GService may hold the write lock for a moment). */
static void db_flush(struct gizp *g)
{
    int64_t now = (int64_t)giz_mono_ms();
    bool beat = push__beat_due(g, now);
    bool logs = devlog__pending(g);
    bool dstate = devstate__pending(g);
    bool events = events__pending(g);
    int rc;
    if (g->store == NULL) return;
    if (!presence__pending(g) && !logs && !dstate && !events) {
        if (beat) {
            push__beat(g, now);
            events__metrics_write(g, now);
        }
        return;
    }
    rc = giz_store_begin(g->store);
    if (rc != GIZ_OK) goto fail;
    if (beat) { /* a failure is logged; the batch goes on */
        push__beat(g, now);
        events__metrics_write(g, now);
    }
    rc = presence__write(g);
    if (rc == GIZ_OK) rc = devlog__write(g);
    if (rc == GIZ_OK) rc = devstate__write(g);
    if (rc == GIZ_OK) rc = events__write(g);
    if (rc == GIZ_OK) rc = giz_store_commit(g->store);
    if (rc != GIZ_OK) {
        giz_store_rollback(g->store);
        goto fail;
    }
    presence__written(g);
    devlog__written(g);
    devstate__written(g);
    events__written(g);
    return;
fail:
    if (plugin__rate_ok(&g->tick.rl_batch, 5, "DB batch errors"))
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: DB batch failed (%s), will retry: %s",
                             giz_strerror(rc), giz_store_errmsg(g->store));
    devlog__failed(g);
    devstate__failed(g);
    events__failed(g);
}

#define HEAP_LOOK_MS 500   /* heap_tick looks this often */
#define HEAP_BURST 1000u   /* logins (accepted or refused) since the last trim */
#define HEAP_QUIET_MS 2000 /* ... then none for this long: the burst is over */

/* A login storm allocates and frees far more than the sessions it leaves
 * (event records, presence and connection rows, mosquitto's packets) and
 * glibc keeps the freed pages: after one, once logins stop, hand them back
 * to the kernel (one malloc_trim walk on this thread per storm; measured
 * 0.06 KiB per idle device at N = 19,000, bench/suite/analysis.md). */
static void heap_tick(struct gizp *g, int64_t now)
{
    struct auth_stats as;
    uint64_t n;
    if (now - g->tick.heap_ms < HEAP_LOOK_MS) return;
    g->tick.heap_ms = now;
    auth__stats(g, &as);
    n = as.ok + as.refused;
    if (n != g->tick.heap_logins) {
        g->tick.heap_logins = n;
        g->tick.heap_quiet_ms = now;
        return;
    }
    if (n - g->tick.heap_trimmed_at < HEAP_BURST || now - g->tick.heap_quiet_ms < HEAP_QUIET_MS)
        return;
    g->tick.heap_trimmed_at = n;
    uint64_t t0 = giz_mono_ns();
    int freed = malloc_trim(0);
    mosquitto_log_printf(MOSQ_LOG_DEBUG, "giz: heap trimmed after a login burst (%s, %.1f ms)",
                         freed ? "pages returned" : "nothing to return",
                         (double)(giz_mono_ns() - t0) / 1e6);
}

/* MOSQ_EVT_TICK: fires once per broker loop iteration (about 10/s idle, more
 * under load), so each module's periodic work checks its own period. */
static int tick_cb(int event, void *event_data, void *userdata)
{
    struct gizp *g = userdata;
    int64_t now = (int64_t)giz_mono_ms();
    (void)event;
    (void)event_data;
    g->tick.ticks++;
    presence__tick(g, now);
    intercept__tick(g, now);
    if (now - g->tick.last_poll_ms >= (int64_t)g->cfg.poll_ms) {
        g->tick.last_poll_ms = now;
        push__poll_outbox(g);
        db_flush(g);
    }
    push__tick(g, now); /* paced messages, fallback timers */
    devlog__prune(g, now);
    events__tick(g, now); /* timeline retention prune, queue drops */
    auth__fails_sweep(g, now);
    heap_tick(g, now);
    if (g->cfg.stats_interval > 0 &&
        now - g->tick.last_stats_ms >= (int64_t)g->cfg.stats_interval * 1000)
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
    struct presence_stats pr;
    struct auth_stats as;
    (void)event;
    (void)event_data;
    presence__stats(g, &pr);
    auth__stats(g, &as);
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "giz: reload: plugin options are not re-read; %zu cached device "
                         "credentials kept, %zu clients will be re-authenticated",
                         as.cached, pr.clients);
    return MOSQ_ERR_SUCCESS;
}

static const struct {
    int event;
    MOSQ_FUNC_generic_callback cb;
} callback_table[] = {
    {MOSQ_EVT_BASIC_AUTH, auth__basic_cb},
    {MOSQ_EVT_ACL_CHECK, acl__check_cb},
    {MOSQ_EVT_MESSAGE, message__cb},
    {MOSQ_EVT_DISCONNECT, presence__disconnect_cb},
    {MOSQ_EVT_TICK, tick_cb},
    {MOSQ_EVT_RELOAD, reload_cb},
};
#define CALLBACK_COUNT (sizeof(callback_table) / sizeof(callback_table[0]))

static void context_free(struct gizp *g)
{
    if (g == NULL) return;
    intercept__stop(g);
    push__free(g);   /* records the clean stop: needs the store, still open here */
    events__free(g); /* ends the open sessions: needs presence's DID records */
    presence__free(g);
    devlog__free(g);
    devstate__free(g);
    auth__free(g); /* detaches the passcode cache from the store */
    if (g->store != NULL) {
        giz_store_device_all_offline(g->store);
        giz_store_close(g->store);
    }
    giz_log_set_sink(NULL, NULL);
    free(g);
}

/* The registry name: plugin_opt_broker_name, else <hostname>:<advertise_port>,
 * else <hostname> (set before the writer process is forked: its store
 * connection scopes presence writes to it too). */
static void broker_name_default(struct gizp *g)
{
    char host[GIZ_BROKER_NAME_SIZE] = "";
    char *name = g->cfg.broker_name;
    size_t n;
    if (name[0] == '\0') {
        if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
        host[sizeof(host) - 1] = '\0';
        for (char *p = host; *p; p++) { /* keep the registry's character set */
            char one[2] = {*p, '\0'};
            if (!giz_broker_name_valid(one)) *p = '-';
        }
        if (host[0] == '\0') memcpy(host, "broker", sizeof("broker"));
        if (g->cfg.advertise_port != 0) {
            n = strlen(host);
            if (n > GIZ_BROKER_NAME_SIZE - 7u) n = GIZ_BROKER_NAME_SIZE - 7u;
            snprintf(host + n, sizeof(host) - n, ":%u", g->cfg.advertise_port);
        }
        memcpy(name, host, strlen(host) + 1);
    }
}

/* Gives the registry name to the store connection, which scopes presence
 * writes to it. 0 or -1 after logging. */
static int broker_identity(struct gizp *g)
{
    const char *name = g->cfg.broker_name;
    if (giz_store_set_broker(g->store, name) != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: refusing to start: broker name \"%s\" unusable",
                             name);
        return -1;
    }
    return 0;
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
    if (presence__init(g) != 0 || devlog__init(g) != 0 || devstate__init(g) != 0 ||
        events__init(g) != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: out of memory or no randomness at start-up");
        rc = MOSQ_ERR_NOMEM;
        goto fail;
    }
    broker_name_default(g);
    events__start(g); /* before the store opens: the writer process must not inherit it */
    rc = giz_store_open(g->cfg.db_path, &g->store, &err);
    if (rc != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: cannot open database %s: %s (%s)", g->cfg.db_shown,
                             giz_strerror(rc), err.text);
        g->store = NULL;
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    if (broker_identity(g) != 0) {
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    /* Only this broker's devices (and those of no broker): others may be
     * online on other brokers sharing the store. */
    if (giz_store_device_all_offline(g->store) != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: database %s not usable: %s", g->cfg.db_shown,
                             giz_store_errmsg(g->store));
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    if (push__init(g) != 0 || auth__init(g) != 0) { /* outbox position; the passcode key */
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    g->tick.start_ms = g->tick.last_stats_ms = (int64_t)giz_mono_ms();
    for (registered = 0; registered < CALLBACK_COUNT; registered++) {
        rc = mosquitto_callback_register(identifier, callback_table[registered].event,
                                         callback_table[registered].cb, NULL, g);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "giz: cannot register callback for event %d",
                                 callback_table[registered].event);
            goto fail;
        }
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "giz: plugin ready: db %s, ping limit %u per %u ms, keepalive max %u s, "
                         "connections without CONNECT: %u s timeout, at most %u (%u per address), "
                         "pacing %u ms; broker %s (advertised %s:%u, dead after %u ms)",
                         g->cfg.db_shown, g->cfg.ping_max, g->cfg.ping_window_ms,
                         g->cfg.keepalive_max, g->cfg.connect_timeout_ms / 1000u,
                         g->cfg.pre_connect_max, g->cfg.pre_connect_per_addr, g->cfg.device_gap_ms,
                         g->cfg.broker_name,
                         g->cfg.advertise_host[0] ? g->cfg.advertise_host : "(GIZ_M2M_HOST)",
                         g->cfg.advertise_port, g->cfg.broker_timeout_ms);
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
    int64_t now = (int64_t)giz_mono_ms();
    double secs = (double)(now - g->tick.start_ms) / 1000.0;
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: stopping: %llu TICKs in %.1f s (%.1f/s)",
                         (unsigned long long)g->tick.ticks, secs,
                         secs > 0 ? (double)g->tick.ticks / secs : 0.0);
    db_flush(g);
    context_free(g);
    return MOSQ_ERR_SUCCESS;
}
