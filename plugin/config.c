/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The plugin's options: every `plugin_opt_<name> <value>` line of
 * mosquitto.conf arrives here as (name, value). Each one is validated at
 * start-up; an unknown name, a malformed value or a missing database path
 * makes mosquitto_plugin_init fail, so the broker refuses to start with a
 * clear log line instead of running half-configured (fail closed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/mqtt_guard.h"
#include "plugin.h"

/* A duration: "<n>" seconds or "<n>ms"; result in milliseconds in [min_ms, max_ms]. */
static int parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out)
{
    char buf[32];
    size_t n = strlen(s);
    uint64_t v;
    if (n == 0 || n >= sizeof(buf)) return -1;
    memcpy(buf, s, n + 1);
    unsigned long mult = 1000;
    if (n > 2 && strcmp(buf + n - 2, "ms") == 0) {
        buf[n - 2] = '\0';
        mult = 1;
    } else if (n > 1 && buf[n - 1] == 's') {
        buf[n - 1] = '\0';
    }
    if (giz_parse_uint(buf, 10, 0, UINT64_MAX / 1000u, &v) != GIZ_OK) return -1;
    v *= mult;
    if (v < min_ms || v > max_ms) return -1;
    *out = v;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n >= cap) return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

enum opt_id {
    OPT_DB_PATH,
    OPT_PING_MAX,
    OPT_PING_WINDOW,
    OPT_KEEPALIVE_MAX,
    OPT_MAX_PACKET,
    OPT_POLL_MS,
    OPT_AUTH_CACHE_TTL,
    OPT_AUTH_CACHE_MAX,
    OPT_STATS_INTERVAL,
    OPT_LOG_LEVEL,
    OPT_LOG_QUEUE_MAX,
    OPT_LOG_RATE,
    OPT_LOG_BURST,
    OPT_LOG_KEEP,
    OPT_LOG_PRUNE_INTERVAL,
    OPT_AUTH_FAIL_MAX,
    OPT_AUTH_BACKOFF,
    OPT_CONNECT_TIMEOUT,
    OPT_PRE_CONNECT_MAX,
    OPT_PRE_CONNECT_PER_ADDR,
    OPT_TEST_REQUIRE_SYMBOL,
    OPT_TEST_REQUIRE_VERSION,
    OPT_DEVICE_GAP,         /* push.c (helper "push") */
    OPT_SUB_WAIT,           /* push.c */
    OPT_PASSCODE_KEY,       /* auth.c (helper "auth") */
    OPT_AUTH_FAIL_ADDR_MAX, /* auth.c */
    OPT_AUTH_SLOW_RATE,     /* auth.c */
    OPT__COUNT
};

static const struct {
    const char *name;
    const char *help;
} opt_table[OPT__COUNT] = {
    [OPT_DB_PATH] = {"db_path", "path of the gizcloud SQLite database (required)"},
    [OPT_PING_MAX] = {"ping_max", "PINGREQs allowed per window, 1..65535"},
    [OPT_PING_WINDOW] = {"ping_window", "window, seconds or <n>ms, 100ms..1 day"},
    [OPT_KEEPALIVE_MAX] = {"keepalive_max", "keepalive clamp in seconds, 1..65535"},
    [OPT_MAX_PACKET] = {"max_packet", "largest client packet in bytes, 1024..268435455"},
    [OPT_POLL_MS] = {"poll_ms", "outbox poll / DB batch period, 10..5000 ms"},
    [OPT_AUTH_CACHE_TTL] = {"auth_cache_ttl", "seconds, 0..86400 (0 = no cache)"},
    [OPT_AUTH_CACHE_MAX] = {"auth_cache_max", "entries, 0..10000000"},
    [OPT_STATS_INTERVAL] = {"stats_interval", "seconds between stats lines, 0 = off"},
    [OPT_LOG_LEVEL] = {"log_level", "error|warn|info|debug"},
    [OPT_LOG_QUEUE_MAX] = {"log_queue_max", "device log records buffered per batch"},
    [OPT_LOG_RATE] = {"log_rate", "0x0012 records stored per device per second, 0..1000000"},
    [OPT_LOG_BURST] = {"log_burst", "0x0012 records a device may store at once, 1..1000000"},
    [OPT_LOG_KEEP] = {"log_keep", "newest 0x0012 records kept per device, 0..10000000 (0 = all)"},
    [OPT_LOG_PRUNE_INTERVAL] = {"log_prune_interval",
                                "device log / outbox pruning period, seconds or <n>ms, 1s..1 day"},
    [OPT_AUTH_FAIL_MAX] =
        {"auth_fail_max",
         "wrong passcodes per DID within auth_backoff before back-off, 0..1000 (0 = off)"},
    [OPT_PASSCODE_KEY] = {"passcode_key", "key file of the keyed passcode verifier (default: "
                                          "passcode.key beside db_path; created if missing)"},
    [OPT_AUTH_FAIL_ADDR_MAX] = {"auth_fail_addr_max",
                                "wrong passcodes from one address within auth_backoff before it "
                                "is backed off, 0..1000000 (0 = off)"},
    [OPT_AUTH_SLOW_RATE] = {"auth_slow_rate", "PBKDF2 passcode checks per second across all "
                                              "clients, 0..100000 (0 = no limit)"},
    [OPT_AUTH_BACKOFF] = {"auth_backoff",
                          "wrong-passcode window and back-off, seconds or <n>ms, 1s..1 day"},
    [OPT_CONNECT_TIMEOUT] = {"connect_timeout",
                             "shut down connections without CONNECT after, 1..3600 s or <n>ms"},
    [OPT_PRE_CONNECT_MAX] = {"pre_connect_max",
                             "connections without CONNECT at once, all sources, 1..10000000"},
    [OPT_PRE_CONNECT_PER_ADDR] =
        {"pre_connect_per_addr",
         "connections without CONNECT at once per source address, 1..10000000"},
    [OPT_TEST_REQUIRE_SYMBOL] = {"test_require_symbol",
                                 "tests only: also require a relocation for this symbol"},
    [OPT_TEST_REQUIRE_VERSION] = {"test_require_version",
                                  "tests only: also require this version string in mosquitto"},
    [OPT_DEVICE_GAP] = {"device_gap", "least time between two packets the cloud sends one device, "
                                      "<n>ms or seconds, 0..1000ms (0 = no pacing)"},
    [OPT_SUB_WAIT] = {"sub_wait", "how long pushes wait for a device's other subscriptions once "
                                  "ser2cli_res is granted, <n>ms or seconds, 0..60s"},
};

/* Options of the plugin's own listener (a relay in front of mosquitto),
 * which this version no longer has. */
static const char *const removed_opts[] = {"listen", "broker_socket", "tls_listen", "tls_cert",
                                           "tls_key"};

static bool is_removed(const char *key)
{
    for (size_t i = 0; i < sizeof(removed_opts) / sizeof(removed_opts[0]); i++) {
        if (strcmp(removed_opts[i], key) == 0) return true;
    }
    return false;
}

static int find_opt(const char *key)
{
    for (int i = 0; i < OPT__COUNT; i++) {
        if (strcmp(opt_table[i].name, key) == 0) return i;
    }
    return -1;
}

static void set_defaults(struct gizp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ping_max = 180;
    cfg->ping_window_ms = 180000;
    cfg->keepalive_max = 600;
    cfg->max_packet = 300u * 1024u;
    cfg->poll_ms = 50;
    cfg->auth_cache_ttl = 600;
    cfg->auth_cache_max = 200000;
    cfg->stats_interval = 300;
    cfg->log_level = GIZ_LOG_INFO;
    cfg->log_max = 10000;
    cfg->log_rate = 20;
    cfg->log_burst = 100;
    cfg->log_keep = 1000;
    cfg->log_prune_ms = 60000;
    cfg->auth_fail_max = 5;
    cfg->auth_backoff_ms = 60000;
    cfg->auth_fail_addr_max = 100;
    cfg->auth_slow_rate = 1000;
    cfg->connect_timeout_ms = 30000;
    cfg->pre_connect_max = 4000;
    cfg->pre_connect_per_addr = 1000;
    cfg->device_gap_ms = 30;
    cfg->sub_wait_ms = 1000;
}

/* Applies one option; returns 0 or -1 (the caller logs). */
static int apply_opt(struct gizp_config *cfg, int id, const char *value)
{
    uint64_t v = 0;
    switch (id) {
    case OPT_DB_PATH:
        return copy_str(cfg->db_path, sizeof(cfg->db_path), value);
    case OPT_PING_MAX:
        if (giz_parse_uint(value, 10, 1, GIZ_GUARD_EXACT_MAX, &v) != GIZ_OK) return -1;
        cfg->ping_max = (unsigned)v;
        return 0;
    case OPT_PING_WINDOW:
        if (parse_duration_ms(value, 100, 86400000, &v) != 0) return -1;
        cfg->ping_window_ms = (unsigned)v;
        return 0;
    case OPT_KEEPALIVE_MAX:
        if (giz_parse_uint(value, 10, 1, 65535, &v) != GIZ_OK) return -1;
        cfg->keepalive_max = (unsigned)v;
        return 0;
    case OPT_MAX_PACKET:
        if (giz_parse_uint(value, 10, 1024, 268435455, &v) != GIZ_OK) return -1;
        cfg->max_packet = (size_t)v;
        return 0;
    case OPT_POLL_MS:
        if (giz_parse_uint(value, 10, 10, 5000, &v) != GIZ_OK) return -1;
        cfg->poll_ms = (unsigned)v;
        return 0;
    case OPT_AUTH_CACHE_TTL:
        if (giz_parse_uint(value, 10, 0, 86400, &v) != GIZ_OK) return -1;
        cfg->auth_cache_ttl = (unsigned)v;
        return 0;
    case OPT_AUTH_CACHE_MAX:
        if (giz_parse_uint(value, 10, 0, 10000000, &v) != GIZ_OK) return -1;
        cfg->auth_cache_max = (unsigned)v;
        return 0;
    case OPT_STATS_INTERVAL:
        if (giz_parse_uint(value, 10, 0, 86400, &v) != GIZ_OK) return -1;
        cfg->stats_interval = (unsigned)v;
        return 0;
    case OPT_LOG_LEVEL: {
        int lvl = giz_log_level_parse(value);
        if (lvl < 0) return -1;
        cfg->log_level = lvl;
        return 0;
    }
    case OPT_CONNECT_TIMEOUT:
        if (parse_duration_ms(value, 100, 3600000, &v) != 0) return -1;
        cfg->connect_timeout_ms = (unsigned)v;
        return 0;
    case OPT_PRE_CONNECT_MAX:
        if (giz_parse_uint(value, 10, 1, 10000000, &v) != GIZ_OK) return -1;
        cfg->pre_connect_max = (unsigned)v;
        return 0;
    case OPT_PRE_CONNECT_PER_ADDR:
        if (giz_parse_uint(value, 10, 1, 10000000, &v) != GIZ_OK) return -1;
        cfg->pre_connect_per_addr = (unsigned)v;
        return 0;
    case OPT_TEST_REQUIRE_SYMBOL:
        return copy_str(cfg->test_require_symbol, sizeof(cfg->test_require_symbol), value);
    case OPT_TEST_REQUIRE_VERSION:
        return copy_str(cfg->test_require_version, sizeof(cfg->test_require_version), value);
    case OPT_LOG_QUEUE_MAX:
        if (giz_parse_uint(value, 10, 0, 1000000, &v) != GIZ_OK) return -1;
        cfg->log_max = (unsigned)v;
        return 0;
    case OPT_LOG_RATE:
        if (giz_parse_uint(value, 10, 0, 1000000, &v) != GIZ_OK) return -1;
        cfg->log_rate = (unsigned)v;
        return 0;
    case OPT_LOG_BURST:
        if (giz_parse_uint(value, 10, 1, 1000000, &v) != GIZ_OK) return -1;
        cfg->log_burst = (unsigned)v;
        return 0;
    case OPT_LOG_KEEP:
        if (giz_parse_uint(value, 10, 0, 10000000, &v) != GIZ_OK) return -1;
        cfg->log_keep = (unsigned)v;
        return 0;
    case OPT_LOG_PRUNE_INTERVAL:
        if (parse_duration_ms(value, 1000, 86400000, &v) != 0) return -1;
        cfg->log_prune_ms = (unsigned)v;
        return 0;
    case OPT_AUTH_FAIL_MAX:
        if (giz_parse_uint(value, 10, 0, 1000, &v) != GIZ_OK) return -1;
        cfg->auth_fail_max = (unsigned)v;
        return 0;
    case OPT_PASSCODE_KEY:
        return copy_str(cfg->passcode_key, sizeof(cfg->passcode_key), value);
    case OPT_AUTH_FAIL_ADDR_MAX:
        if (giz_parse_uint(value, 10, 0, 1000000, &v) != GIZ_OK) return -1;
        cfg->auth_fail_addr_max = (unsigned)v;
        return 0;
    case OPT_AUTH_SLOW_RATE:
        if (giz_parse_uint(value, 10, 0, 100000, &v) != GIZ_OK) return -1;
        cfg->auth_slow_rate = (unsigned)v;
        return 0;
    case OPT_AUTH_BACKOFF:
        if (parse_duration_ms(value, 1000, 86400000, &v) != 0) return -1;
        cfg->auth_backoff_ms = (unsigned)v;
        return 0;
    case OPT_DEVICE_GAP:
        if (parse_duration_ms(value, 0, 1000, &v) != 0) return -1;
        cfg->device_gap_ms = (unsigned)v;
        return 0;
    case OPT_SUB_WAIT:
        if (parse_duration_ms(value, 0, 60000, &v) != 0) return -1;
        cfg->sub_wait_ms = (unsigned)v;
        return 0;
    default:
        return -1;
    }
}

int config__parse(struct gizp_config *cfg, const struct mosquitto_opt *opts, int count)
{
    int errors = 0;
    bool seen[OPT__COUNT] = {false};
    set_defaults(cfg);
    for (int i = 0; i < count; i++) {
        const char *key = opts[i].key != NULL ? opts[i].key : "";
        const char *value = opts[i].value != NULL ? opts[i].value : "";
        int id = find_opt(key);
        if (id < 0 && is_removed(key)) {
            mosquitto_log_printf(
                MOSQ_LOG_ERR,
                "giz: bad value for plugin_opt_%s: the option was removed in this version: "
                "mosquitto itself listens on the public ports now; use a mosquitto "
                "`listener <port> <address>` line (and cafile/certfile/keyfile with "
                "tls_version tlsv1.2 for TLS) instead of the plugin's own listener "
                "(see plugin/DESIGN.md)",
                key);
            errors++;
            continue;
        }
        if (id < 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "giz: unknown option plugin_opt_%s", key);
            errors++;
            continue;
        }
        if (seen[id]) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "giz: plugin_opt_%s given twice", key);
            errors++;
            continue;
        }
        seen[id] = true;
        if (apply_opt(cfg, id, value) != 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "giz: bad value for plugin_opt_%s: \"%s\" (%s)", key,
                                 value, opt_table[id].help);
            errors++;
        }
    }
    if (cfg->db_path[0] == '\0') {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: plugin_opt_db_path is required (%s)",
                             opt_table[OPT_DB_PATH].help);
        errors++;
    }
    return errors == 0 ? 0 : -1;
}
