/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The plugin's options: every `plugin_opt_<name> <value>` line of
 * mosquitto.conf arrives here as (name, value). Each one is validated at
 * start-up; an unknown name, a malformed value or a missing database path
 * makes mosquitto_plugin_init fail, so the broker refuses to start with a
 * clear log line instead of running half-configured (fail closed).
 */
#include <stddef.h>
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

/* How an option's value is read. */
enum opt_kind {
    OPT_UINT,  /* decimal integer in [min, max] */
    OPT_MS,    /* duration: "<n>" seconds or "<n>ms", in ms in [min, max] */
    OPT_STR,   /* non-empty string that fits the field */
    OPT_LEVEL, /* error|warn|info|debug */
};

/* One plugin_opt_<name>: where its value goes in struct gizp_config. */
struct opt_def {
    const char *name;
    enum opt_kind kind;
    uint64_t min, max;
    size_t off, size; /* the field */
    const char *help;
};

#define FIELD(f) offsetof(struct gizp_config, f), sizeof(((struct gizp_config *)0)->f)
#define OPT(name, kind, min, max, f, help)                                                         \
    {                                                                                              \
        name, kind, min, max, FIELD(f), help                                                       \
    }

static const struct opt_def opt_table[] = {
    OPT("db_path", OPT_STR, 0, 0, db_path,
        "path of the gizcloud SQLite database, or a postgresql:// URI (required)"),
    OPT("ping_max", OPT_UINT, 1, GIZ_GUARD_EXACT_MAX, ping_max,
        "PINGREQs allowed per window, 1..65535"),
    OPT("ping_window", OPT_MS, 100, 86400000, ping_window_ms,
        "window, seconds or <n>ms, 100ms..1 day"),
    OPT("keepalive_max", OPT_UINT, 1, 65535, keepalive_max, "keepalive clamp in seconds, 1..65535"),
    OPT("max_packet", OPT_UINT, 1024, 268435455, max_packet,
        "largest client packet in bytes, 1024..268435455"),
    OPT("poll_ms", OPT_UINT, 10, 5000, poll_ms, "outbox poll / DB batch period, 10..5000 ms"),
    OPT("auth_cache_ttl", OPT_UINT, 0, 86400, auth_cache_ttl, "seconds, 0..86400 (0 = no cache)"),
    OPT("auth_cache_max", OPT_UINT, 0, 10000000, auth_cache_max, "entries, 0..10000000"),
    OPT("stats_interval", OPT_UINT, 0, 86400, stats_interval,
        "seconds between stats lines, 0 = off"),
    OPT("log_level", OPT_LEVEL, 0, 0, log_level, "error|warn|info|debug"),
    OPT("log_queue_max", OPT_UINT, 0, 1000000, log_max, "device log records buffered per batch"),
    OPT("log_rate", OPT_UINT, 0, 1000000, log_rate,
        "0x0012 records stored per device per second, 0..1000000"),
    OPT("log_burst", OPT_UINT, 1, 1000000, log_burst,
        "0x0012 records a device may store at once, 1..1000000"),
    OPT("log_keep", OPT_UINT, 0, 10000000, log_keep,
        "newest 0x0012 records kept per device, 0..10000000 (0 = all)"),
    OPT("log_prune_interval", OPT_MS, 1000, 86400000, log_prune_ms,
        "device log / outbox pruning period, seconds or <n>ms, 1s..1 day"),
    OPT("auth_fail_max", OPT_UINT, 0, 1000, auth_fail_max,
        "wrong passcodes per DID within auth_backoff before back-off, 0..1000 (0 = off)"),
    OPT("auth_backoff", OPT_MS, 1000, 86400000, auth_backoff_ms,
        "wrong-passcode window and back-off, seconds or <n>ms, 1s..1 day"),
    OPT("passcode_key", OPT_STR, 0, 0, passcode_key,
        "key file of the keyed passcode verifier (default: passcode.key beside db_path; "
        "created if missing)"),
    OPT("auth_fail_addr_max", OPT_UINT, 0, 1000000, auth_fail_addr_max,
        "wrong passcodes from one address within auth_backoff before it is backed off, "
        "0..1000000 (0 = off)"),
    OPT("auth_slow_rate", OPT_UINT, 0, 100000, auth_slow_rate,
        "PBKDF2 passcode checks per second across all clients, 0..100000 (0 = no limit)"),
    OPT("connect_timeout", OPT_MS, 100, 3600000, connect_timeout_ms,
        "shut down connections without CONNECT after, 1..3600 s or <n>ms"),
    OPT("pre_connect_max", OPT_UINT, 1, 10000000, pre_connect_max,
        "connections without CONNECT at once, all sources, 1..10000000"),
    OPT("pre_connect_per_addr", OPT_UINT, 1, 10000000, pre_connect_per_addr,
        "connections without CONNECT at once per source address, 1..10000000"),
    OPT("test_require_symbol", OPT_STR, 0, 0, test_require_symbol,
        "tests only: also require a relocation for this symbol"),
    OPT("test_require_version", OPT_STR, 0, 0, test_require_version,
        "tests only: also require this version string in mosquitto"),
    OPT("device_gap", OPT_MS, 0, 1000, device_gap_ms,
        "least time between two packets the cloud sends one device, <n>ms or seconds, "
        "0..1000ms (0 = no pacing)"),
    OPT("sub_wait", OPT_MS, 0, 60000, sub_wait_ms,
        "how long pushes wait for a device's other subscriptions once ser2cli_res is "
        "granted, <n>ms or seconds, 0..60s"),
    OPT("events", OPT_UINT, 0, 1, events,
        "1 = record MQTT events in the device timeline (default), 0 = off"),
    OPT("events_per_device", OPT_UINT, 1, 10000000, events_per_device,
        "newest timeline events kept per device, 1..10000000 (as GIZ_EVENTS_PER_DEVICE)"),
    OPT("events_total", OPT_UINT, 1, 1099511627776ull, events_total,
        "timeline events kept in all, 1..2^40 (as GIZ_EVENTS_TOTAL)"),
    OPT("events_queue", OPT_UINT, 1, 16777216, events_queue,
        "MQTT events held for the writer process between hand-overs before new ones are "
        "dropped, 1..16777216"),
    OPT("events_payload", OPT_UINT, 0, 3072, events_payload,
        "payload bytes recorded (as hex) per publish event, 0..3072 (3072 = full payloads "
        "up to that size)"),
    OPT("broker_name", OPT_STR, 0, 0, broker_name,
        "this broker's name in the store's registry, 1..64 of [A-Za-z0-9._:-] (default "
        "<hostname>:<advertise_port>, or <hostname>)"),
    OPT("advertise_host", OPT_STR, 0, 0, advertise_host,
        "the host devices and apps are told for this broker (default: the GService's "
        "GIZ_M2M_HOST)"),
    OPT("advertise_port", OPT_UINT, 1, 65535, advertise_port,
        "the MQTT port devices and apps are told for this broker (default: GIZ_M2M_PORT)"),
    OPT("advertise_tls_port", OPT_UINT, 1, 65535, advertise_tls_port,
        "the MQTT-over-TLS port apps are told for this broker (default: none advertised)"),
    OPT("broker_timeout", OPT_MS, 2000, 600000, broker_timeout_ms,
        "a broker whose heartbeat is older than this is dead: its devices are marked "
        "offline, seconds or <n>ms, 2s..600s"),
};
#define OPT_COUNT (sizeof(opt_table) / sizeof(opt_table[0]))
#define OPT_DB_PATH 0u /* opt_table[0] */

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
    for (size_t i = 0; i < OPT_COUNT; i++) {
        if (strcmp(opt_table[i].name, key) == 0) return (int)i;
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
    cfg->events = 1;
    cfg->events_per_device = 1000; /* GIZ_EVENTS_PER_DEVICE's default */
    cfg->events_total = 1000000;   /* GIZ_EVENTS_TOTAL's default */
    cfg->events_queue = 65536;     /* GIZ_EVENTS_QUEUE's default */
    cfg->events_payload = 64;
    cfg->broker_timeout_ms = GIZ_BROKER_MAX_AGE_MS;
}

/* Stores v into an unsigned or size_t field of cfg. */
static void store_uint(struct gizp_config *cfg, const struct opt_def *o, uint64_t v)
{
    unsigned char *field = (unsigned char *)cfg + o->off;
    if (o->size == sizeof(size_t)) {
        size_t z = (size_t)v;
        memcpy(field, &z, sizeof(z));
    } else {
        unsigned u = (unsigned)v; /* every bound in the table fits */
        memcpy(field, &u, sizeof(u));
    }
}

/* Applies one option; returns 0 or -1 (the caller logs). */
static int apply_opt(struct gizp_config *cfg, const struct opt_def *o, const char *value)
{
    uint64_t v = 0;
    switch (o->kind) {
    case OPT_UINT:
        if (giz_parse_uint(value, 10, o->min, o->max, &v) != GIZ_OK) return -1;
        store_uint(cfg, o, v);
        return 0;
    case OPT_MS:
        if (parse_duration_ms(value, o->min, o->max, &v) != 0) return -1;
        store_uint(cfg, o, v);
        return 0;
    case OPT_STR:
        return copy_str((char *)cfg + o->off, o->size, value);
    case OPT_LEVEL: {
        int lvl = giz_log_level_parse(value);
        if (lvl < 0) return -1;
        cfg->log_level = lvl;
        return 0;
    }
    default:
        return -1;
    }
}

int config__parse(struct gizp_config *cfg, const struct mosquitto_opt *opts, int count)
{
    int errors = 0;
    bool seen[OPT_COUNT] = {false};
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
        if (apply_opt(cfg, &opt_table[id], value) != 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "giz: bad value for plugin_opt_%s: \"%s\" (%s)", key,
                                 value, opt_table[id].help);
            errors++;
        }
    }
    giz_store_path_display(cfg->db_path, cfg->db_shown, sizeof cfg->db_shown);
    if (cfg->broker_name[0] != '\0' && !giz_broker_name_valid(cfg->broker_name)) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: bad value for plugin_opt_broker_name: \"%s\" (%s)",
                             cfg->broker_name, opt_table[find_opt("broker_name")].help);
        errors++;
    }
    if (cfg->db_path[0] == '\0') {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: plugin_opt_db_path is required (%s)",
                             opt_table[OPT_DB_PATH].help);
        errors++;
    }
    return errors == 0 ? 0 : -1;
}
