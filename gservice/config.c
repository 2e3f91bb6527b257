/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Configuration of giz-gservice: defaults, then GIZ_* environment variables,
 * then command-line flags (flags win). Also the M2M routing function that
 * tells devices and apps which broker serves a DID.
 */
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"

static void usage(FILE *out)
{
    fputs(
        "usage: giz-gservice [options]\n"
        "\n"
        "The gizcloud HTTP service: device API (register, provision, OTA), firmware\n"
        "hosting, admin API and app API. Each option can also be given in the\n"
        "environment variable shown; flags win over the environment.\n"
        "\n"
        "  --port N            GIZ_HTTP_PORT      HTTP port [8080]\n"
        "  --bind ADDR         GIZ_BIND_ADDR      listen address (IPv4) [127.0.0.1]\n"
        "  --data-dir DIR      GIZ_DATA_DIR       data folder [./var]; firmware in DIR/firmware\n"
        "  --db PATH           GIZ_DB_PATH        SQLite database [$GIZ_DATA_DIR/gizcloud.db],\n"
        "                                         or a postgresql:// URI\n"
        "                      GIZ_ADMIN_TOKEN    admin API bearer token (required; environment "
        "only)\n"
        "  --m2m-host HOST     GIZ_M2M_HOST       broker host handed to devices [127.0.0.1]\n"
        "  --m2m-port N        GIZ_M2M_PORT       broker MQTT port [1883]\n"
        "  --m2m-tls-port N    GIZ_M2M_TLS_PORT   broker MQTTS port for apps (port_s) [8883; 0 = "
        "none]\n"
        "  --public-url URL    GIZ_PUBLIC_URL     base of firmware download URLs\n"
        "                                         [http://<GIZ_M2M_HOST>[:<advertised port>],\n"
        "                                         no port when it is 80]\n"
        "  --advertised-http-port N\n"
        "                      GIZ_ADVERTISED_HTTP_PORT  HTTP port devices are told in download\n"
        "                                         URLs [GIZ_HTTP_PORT]; real firmware always\n"
        "                                         downloads from port 80: set 80 behind a\n"
        "                                         port-80 forward\n"
        "  --https-port N      GIZ_HTTPS_PORT     also serve HTTPS on this port [0 = off]\n"
        "  --tls-cert FILE     GIZ_TLS_CERT       PEM certificate (chain) for HTTPS\n"
        "  --tls-key FILE      GIZ_TLS_KEY        PEM private key for HTTPS\n"
        "  --log-level LVL     GIZ_LOG_LEVEL      error|warn|info|debug [info]\n"
        "  --threads N         GIZ_HTTP_THREADS   HTTP worker threads [2]\n"
        "  --max-body BYTES    GIZ_MAX_BODY       request body cap (non-upload) [65536]\n"
        "  --max-upload BYTES  GIZ_MAX_UPLOAD     firmware upload cap [16777216]\n"
        "  --token-ttl SECS    GIZ_TOKEN_TTL      app user token lifetime [604800]\n"
        "  --head-timeout SECS GIZ_HTTP_HEAD_TIMEOUT  time for a complete request head, from\n"
        "                                         the connection (or the previous answer) [10; 0 = "
        "off]\n"
        "  --idle-timeout SECS GIZ_HTTP_IDLE_TIMEOUT  inactivity before a connection is closed "
        "[30]\n"
        "  --per-ip-limit N    GIZ_HTTP_PER_IP_LIMIT  connections per client address [256; 0 = "
        "none]\n"
        "  --max-connections N GIZ_HTTP_MAX_CONNECTIONS  connections in all, per listener [4000]\n"
        "  --admin-fail-limit N GIZ_ADMIN_FAIL_LIMIT  wrong admin tokens per address per minute\n"
        "                                         before 429 [10; 0 = off]\n"
        "  --tls-priorities S  GIZ_TLS_PRIORITIES GnuTLS priority string for HTTPS\n"
        "                                         [TLS 1.2/1.3, ECDHE + AEAD only]\n"
        "  --broker-max-age S  GIZ_BROKER_MAX_AGE broker heartbeat silence after which devices\n"
        "                                         count as offline and pushes get 503 [15]\n"
        "  --passcode-key FILE GIZ_PASSCODE_KEY   key file of the keyed passcode verifier, shared\n"
        "                                         with the broker (plugin_opt_passcode_key)\n"
        "                                         [passcode.key beside the database; created\n"
        "                                         if missing; refused if open to other users]\n"
        "  --events 0|1        GIZ_EVENTS         record device-API requests in the device\n"
        "                                         timeline [1]\n"
        "  --events-per-device N GIZ_EVENTS_PER_DEVICE  newest events kept per device [1000]\n"
        "  --events-total N    GIZ_EVENTS_TOTAL   events kept in all [1000000]\n"
        "  --events-queue N    GIZ_EVENTS_QUEUE   events waiting to be written; more are\n"
        "                                         dropped and counted [65536]\n"
        "  --event-streams N   GIZ_EVENT_STREAMS  concurrent /admin/events/stream [32]\n"
        "  --routes                               print the route table (pattern, methods, name)\n"
        "  --help                                 this text\n",
        out);
}

static int parse_u64(const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (giz_parse_uint(text, 10, min, max, &v) != GIZ_OK) {
        fprintf(stderr, "giz-gservice: %s: '%s' is not a number in [%llu, %llu]\n", name, text,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int copy_str(const char *name, const char *text, char *out, size_t cap)
{
    size_t n = strlen(text);
    if (n >= cap) {
        fprintf(stderr, "giz-gservice: %s: value longer than %zu bytes\n", name, cap - 1);
        return -1;
    }
    memcpy(out, text, n + 1);
    return 0;
}

/* One setting: its flag, its environment variable, how to store it. */
enum opt_kind { OPT_STR, OPT_PORT, OPT_PORT0, OPT_SIZE, OPT_U64, OPT_I64, OPT_LEVEL };
struct opt {
    const char *flag;
    const char *env;
    enum opt_kind kind;
    size_t offset;
    size_t size; /* string capacity or integer width */
    uint64_t min, max;
};

#define OFF(f) offsetof(struct gs_config, f)
#define SZ(f) sizeof(((struct gs_config *)0)->f)
static const struct opt opts[] = {
    {"--port", "GIZ_HTTP_PORT", OPT_PORT, OFF(http_port), SZ(http_port), 1, 65535},
    {"--bind", "GIZ_BIND_ADDR", OPT_STR, OFF(bind_addr), SZ(bind_addr), 0, 0},
    {"--data-dir", "GIZ_DATA_DIR", OPT_STR, OFF(data_dir), SZ(data_dir), 0, 0},
    {"--db", "GIZ_DB_PATH", OPT_STR, OFF(db_path), SZ(db_path), 0, 0},
    {NULL, "GIZ_ADMIN_TOKEN", OPT_STR, OFF(admin_token), SZ(admin_token), 0, 0},
    {"--m2m-host", "GIZ_M2M_HOST", OPT_STR, OFF(m2m_host), SZ(m2m_host), 0, 0},
    {"--m2m-port", "GIZ_M2M_PORT", OPT_PORT, OFF(m2m_port), SZ(m2m_port), 1, 65535},
    {"--m2m-tls-port", "GIZ_M2M_TLS_PORT", OPT_PORT0, OFF(m2m_tls_port), SZ(m2m_tls_port), 0,
     65535},
    {"--public-url", "GIZ_PUBLIC_URL", OPT_STR, OFF(public_url), SZ(public_url), 0, 0},
    {"--advertised-http-port", "GIZ_ADVERTISED_HTTP_PORT", OPT_PORT, OFF(advertised_port),
     SZ(advertised_port), 1, 65535},
    {"--https-port", "GIZ_HTTPS_PORT", OPT_PORT0, OFF(https_port), SZ(https_port), 0, 65535},
    {"--tls-cert", "GIZ_TLS_CERT", OPT_STR, OFF(tls_cert), SZ(tls_cert), 0, 0},
    {"--tls-key", "GIZ_TLS_KEY", OPT_STR, OFF(tls_key), SZ(tls_key), 0, 0},
    {"--log-level", "GIZ_LOG_LEVEL", OPT_LEVEL, OFF(log_level), SZ(log_level), 0, 0},
    {"--threads", "GIZ_HTTP_THREADS", OPT_PORT, OFF(threads), SZ(threads), 1, 64},
    {"--max-body", "GIZ_MAX_BODY", OPT_SIZE, OFF(max_body), SZ(max_body), 1024, 16u << 20},
    {"--max-upload", "GIZ_MAX_UPLOAD", OPT_U64, OFF(max_upload), SZ(max_upload), 1,
     (uint64_t)1 << 32},
    {"--token-ttl", "GIZ_TOKEN_TTL", OPT_I64, OFF(token_ttl), SZ(token_ttl), 60,
     (uint64_t)366 * 24 * 3600},
    {"--head-timeout", "GIZ_HTTP_HEAD_TIMEOUT", OPT_PORT0, OFF(head_timeout), SZ(head_timeout), 0,
     3600},
    {"--idle-timeout", "GIZ_HTTP_IDLE_TIMEOUT", OPT_PORT, OFF(idle_timeout), SZ(idle_timeout), 1,
     3600},
    {"--per-ip-limit", "GIZ_HTTP_PER_IP_LIMIT", OPT_PORT0, OFF(per_ip_limit), SZ(per_ip_limit), 0,
     1000000},
    {"--max-connections", "GIZ_HTTP_MAX_CONNECTIONS", OPT_PORT, OFF(max_connections),
     SZ(max_connections), 16, 1000000},
    {"--admin-fail-limit", "GIZ_ADMIN_FAIL_LIMIT", OPT_PORT0, OFF(admin_fail_limit),
     SZ(admin_fail_limit), 0, 100000},
    {"--tls-priorities", "GIZ_TLS_PRIORITIES", OPT_STR, OFF(tls_priorities), SZ(tls_priorities), 0,
     0},
    {"--broker-max-age", "GIZ_BROKER_MAX_AGE", OPT_PORT, OFF(broker_max_age), SZ(broker_max_age), 6,
     3600},
    {"--passcode-key", "GIZ_PASSCODE_KEY", OPT_STR, OFF(passcode_key), SZ(passcode_key), 0, 0},
    {"--events", "GIZ_EVENTS", OPT_PORT0, OFF(events), SZ(events), 0, 1},
    {"--events-per-device", "GIZ_EVENTS_PER_DEVICE", OPT_PORT, OFF(events_per_device),
     SZ(events_per_device), 1, 10000000},
    {"--events-total", "GIZ_EVENTS_TOTAL", OPT_U64, OFF(events_total), SZ(events_total), 1,
     (uint64_t)1 << 40},
    {"--events-queue", "GIZ_EVENTS_QUEUE", OPT_PORT, OFF(events_queue), SZ(events_queue), 1,
     16u << 20},
    {"--event-streams", "GIZ_EVENT_STREAMS", OPT_PORT0, OFF(event_streams), SZ(event_streams), 0,
     10000},
};
#undef OFF
#undef SZ

static int apply(struct gs_config *cfg, const struct opt *o, const char *value)
{
    char *base = (char *)cfg + o->offset;
    const char *name = o->flag ? o->flag : o->env;
    uint64_t v = 0;
    switch (o->kind) {
    case OPT_STR:
        return copy_str(name, value, base, o->size);
    case OPT_PORT:
    case OPT_PORT0:
        if (parse_u64(name, value, o->min, o->max, &v) != 0) return -1;
        *(unsigned *)(void *)base = (unsigned)v;
        return 0;
    case OPT_SIZE:
        if (parse_u64(name, value, o->min, o->max, &v) != 0) return -1;
        *(size_t *)(void *)base = (size_t)v;
        return 0;
    case OPT_U64:
        if (parse_u64(name, value, o->min, o->max, &v) != 0) return -1;
        *(uint64_t *)(void *)base = v;
        return 0;
    case OPT_I64:
        if (parse_u64(name, value, o->min, o->max, &v) != 0) return -1;
        *(int64_t *)(void *)base = (int64_t)v;
        return 0;
    case OPT_LEVEL: {
        int lvl = giz_log_level_parse(value);
        if (lvl < 0) {
            fprintf(stderr, "giz-gservice: %s: '%s' is not error|warn|info|debug\n", name, value);
            return -1;
        }
        cfg->log_level = lvl;
        return 0;
    }
    }
    return -1;
}

/* Makes `path` absolute (relative to the working directory). */
static int absolutize(const char *name, char *path, size_t cap)
{
    if (path[0] == '/') return 0;
    char cwd[GIZ_PATH_SIZE];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        fprintf(stderr, "giz-gservice: getcwd: %s\n", strerror(errno));
        return -1;
    }
    const char *rel = path;
    if (rel[0] == '.' && rel[1] == '/') rel += 2;
    char tmp[GIZ_PATH_SIZE];
    int n = snprintf(tmp, sizeof tmp, "%s/%s", cwd, rel);
    if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "giz-gservice: %s: path too long\n", name);
        return -1;
    }
    memcpy(path, tmp, (size_t)n + 1);
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[GIZ_PATH_SIZE];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char saved = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0750) != 0 && errno != EEXIST) return -1;
            tmp[i] = saved;
        }
    }
    return 0;
}

static void config_defaults(struct gs_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->http_port = 8080;
    memcpy(cfg->bind_addr, "127.0.0.1", sizeof "127.0.0.1");
    memcpy(cfg->data_dir, "./var", sizeof "./var");
    memcpy(cfg->m2m_host, "127.0.0.1", sizeof "127.0.0.1");
    cfg->m2m_port = 1883;
    cfg->m2m_tls_port = 8883;
    cfg->log_level = GIZ_LOG_INFO;
    cfg->threads = 2;
    cfg->max_body = GS_DEFAULT_MAX_BODY;
    cfg->max_upload = GS_DEFAULT_MAX_UPLOAD;
    cfg->token_ttl = GS_DEFAULT_TOKEN_TTL;
    cfg->head_timeout = GS_DEFAULT_HEAD_TIMEOUT;
    cfg->idle_timeout = GS_DEFAULT_IDLE_TIMEOUT;
    cfg->per_ip_limit = GS_DEFAULT_PER_IP_LIMIT;
    cfg->max_connections = GS_DEFAULT_MAX_CONNECTIONS;
    cfg->admin_fail_limit = GS_DEFAULT_ADMIN_FAIL_LIMIT;
    cfg->broker_max_age = GS_DEFAULT_BROKER_MAX_AGE;
    cfg->events = 1;
    cfg->events_per_device = GS_DEFAULT_EVENTS_PER_DEVICE;
    cfg->events_total = GS_DEFAULT_EVENTS_TOTAL;
    cfg->events_queue = GS_DEFAULT_EVENTS_QUEUE;
    cfg->event_streams = GS_DEFAULT_EVENT_STREAMS;
    snprintf(cfg->tls_priorities, sizeof cfg->tls_priorities, "%s", GS_DEFAULT_TLS_PRIORITIES);
}

#define N_OPTS (sizeof opts / sizeof opts[0])

/* The GIZ_* environment variables (empty ones are ignored). 0 or -1. */
static int config_env(struct gs_config *cfg)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v != NULL && v[0] != '\0' && apply(cfg, &opts[i], v) != 0) return -1;
    }
    return 0;
}

/* The flags ("--flag value" or "--flag=value"). 0, 1 after --help, -1. */
static int config_args(struct gs_config *cfg, int argc, char **argv)
{
    const size_t n_opts = N_OPTS;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(argv[a], "--routes") == 0) { /* the route table, for tests and docs */
            gs_route_print(stdout);
            return 1;
        }
        const struct opt *o = NULL;
        const char *value = NULL;
        for (size_t i = 0; i < n_opts && o == NULL; i++) {
            if (opts[i].flag == NULL) continue;
            size_t fl = strlen(opts[i].flag);
            if (strncmp(argv[a], opts[i].flag, fl) == 0 && argv[a][fl] == '=') {
                o = &opts[i];
                value = argv[a] + fl + 1;
            } else if (strcmp(argv[a], opts[i].flag) == 0) {
                o = &opts[i];
                if (a + 1 >= argc) {
                    fprintf(stderr, "giz-gservice: %s needs a value\n", argv[a]);
                    return -1;
                }
                value = argv[++a];
            }
        }
        if (o == NULL) {
            fprintf(stderr, "giz-gservice: unknown option '%s' (try --help)\n", argv[a]);
            return -1;
        }
        if (apply(cfg, o, value) != 0) return -1;
    }
    return 0;
}

/* Builds the public download URL base when none is given and normalises it
 * (no trailing '/', no ":80"). 0 or -1. */
static int config_public_url(struct gs_config *cfg)
{
    int n;
    if (cfg->public_url[0] == '\0') {
        /* firmware takes everything up to the first '/' as the host: no ":80" */
        char port_s[8] = "";
        if (cfg->advertised_port != 80)
            snprintf(port_s, sizeof port_s, ":%u", cfg->advertised_port);
        n = snprintf(cfg->public_url, sizeof cfg->public_url, "http://%s%s", cfg->m2m_host, port_s);
        if (n < 0 || (size_t)n >= sizeof cfg->public_url) {
            fprintf(stderr, "giz-gservice: GIZ_PUBLIC_URL: too long\n");
            return -1;
        }
    }
    size_t ul = strlen(cfg->public_url);
    while (ul > 0 && cfg->public_url[ul - 1] == '/')
        cfg->public_url[--ul] = '\0';
    if (strncmp(cfg->public_url, "http://", 7) != 0 &&
        strncmp(cfg->public_url, "https://", 8) != 0) {
        fprintf(stderr, "giz-gservice: GIZ_PUBLIC_URL must start with http:// (firmware has no "
                        "TLS) or https://\n");
        return -1;
    }
    gs_url_drop_port80(cfg->public_url);
    return 0;
}

/* Checks what must be set and derives paths (made absolute, firmware folder
 * created) and URLs. 0 or -1 (a message on stderr). */
static int config_finish(struct gs_config *cfg)
{
    if (cfg->admin_token[0] == '\0') {
        fprintf(stderr, "giz-gservice: GIZ_ADMIN_TOKEN is not set; refusing to start without an "
                        "admin token (set it in the environment)\n");
        return -1;
    }
    if (absolutize("GIZ_DATA_DIR", cfg->data_dir, sizeof cfg->data_dir) != 0) return -1;
    if (cfg->db_path[0] == '\0') {
        int n = snprintf(cfg->db_path, sizeof cfg->db_path, "%s/gizcloud.db", cfg->data_dir);
        if (n < 0 || (size_t)n >= sizeof cfg->db_path) {
            fprintf(stderr, "giz-gservice: GIZ_DB_PATH: path too long\n");
            return -1;
        }
    }
    giz_store_path_display(cfg->db_path, cfg->db_shown, sizeof cfg->db_shown);
    int n = snprintf(cfg->firmware_dir, sizeof cfg->firmware_dir, "%s/firmware", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof cfg->firmware_dir) {
        fprintf(stderr, "giz-gservice: GIZ_DATA_DIR: path too long\n");
        return -1;
    }
    if (mkdir_p(cfg->firmware_dir) != 0) {
        fprintf(stderr, "giz-gservice: cannot create %s: %s\n", cfg->firmware_dir, strerror(errno));
        return -1;
    }
    if (cfg->advertised_port == 0) cfg->advertised_port = cfg->http_port;
    if (config_public_url(cfg) != 0) return -1;
    if (cfg->https_port != 0 && (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0')) {
        fprintf(stderr, "giz-gservice: GIZ_HTTPS_PORT needs GIZ_TLS_CERT and GIZ_TLS_KEY\n");
        return -1;
    }
    return 0;
}

int gs_config_load(struct gs_config *cfg, int argc, char **argv)
{
    config_defaults(cfg);
    if (config_env(cfg) != 0) return -1;
    int rc = config_args(cfg, argc, argv);
    if (rc != 0) return rc;
    return config_finish(cfg);
}

void gs_url_drop_port80(char *url)
{
    if (strncmp(url, "http://", 7) != 0) return;
    char *host = url + 7;
    size_t alen = strcspn(host, "/?#");
    if (alen > 3 && memcmp(host + alen - 3, ":80", 3) == 0 && host[alen - 4] != ':' &&
        strchr(host, '@') == NULL)
        memmove(host + alen - 3, host + alen, strlen(host + alen) + 1);
}

/* The port an http:// URL names (80 when none), 0 when not http:// or unparsable. */
static unsigned url_http_port(const char *url)
{
    if (strncmp(url, "http://", 7) != 0) return 0;
    const char *host = url + 7;
    size_t alen = strcspn(host, "/?#");
    const char *colon = NULL;
    for (size_t i = 0; i < alen; i++)
        if (host[i] == ':') colon = host + i;
    if (colon == NULL || (host[0] == '[' && memchr(colon, ']', alen - (size_t)(colon - host))))
        return 80;
    char *end = NULL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (end != host + alen || p == 0 || p > 65535) return 0;
    return (unsigned)p;
}

void gs_config_warn(const struct gs_config *cfg)
{
    unsigned port = url_http_port(cfg->public_url);
    if (port == 80) return;
    if (port == 0)
        giz_log(GIZ_LOG_WARN,
                "download URLs start with %s: real firmware has no TLS and downloads only "
                "plain http:// from port 80, so OTA downloads will fail on real devices "
                "(GIZ_PUBLIC_URL)",
                cfg->public_url);
    else
        giz_log(GIZ_LOG_WARN,
                "download URLs point to port %u (GIZ_ADVERTISED_HTTP_PORT, default "
                "GIZ_HTTP_PORT, or GIZ_PUBLIC_URL): real firmware ignores the URL's port and "
                "always downloads from port 80, so OTA downloads will fail on real devices; "
                "serve port 80 (GIZ_HTTP_PORT=80, or a port-80 forward with "
                "GIZ_ADVERTISED_HTTP_PORT=80)",
                port);
}
