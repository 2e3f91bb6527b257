/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizsim: a fleet of simulated Gizwits devices (and optional apps) on one
 * libuv loop, used to exercise gizcloud and as its load generator. This file
 * holds the options, the run's lifecycle (ramp-up, periodic tick, progress
 * line, stop on duration / signal / --until-ready), the shared HTTP slot
 * queue and the DID/passcode state file; the device and app behaviour live
 * in sim_device.c and sim_app.c, the reports in sim_report.c.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "giz/crypto.h"
#include "giz/error.h"
#include "giz/log.h"
#include "httpc.h"
#include "sim.h"

#define TICK_MS 100

static const char usage_text[] =
    "Usage: gizsim [OPTIONS]\n"
    "\n"
    "Simulates N Gizwits devices (and M apps) against a gizcloud on one libuv loop:\n"
    "register, provision, OTA check, MQTT login, heartbeat, subscriptions, answers to\n"
    "0x0090/0x0093/0x0010, logs, 0x020F, OTA pushes, reconnect back-off.\n"
    "\n"
    "Fleet:\n"
    "  -n, --devices N          devices to simulate (default 10)\n"
    "  -p, --product-key PK     product of the devices (env GIZ_PRODUCT_KEY)\n"
    "      --create-product NAME  create a product first (needs the admin token)\n"
    "  -s, --state FILE         reuse DIDs/passcodes saved there; save new ones (mode 0600)\n"
    "  -r, --rate N             device starts per second during ramp-up (default 200)\n"
    "  -d, --duration S         stop after S seconds (default: run until Ctrl-C)\n"
    "      --until-ready        stop as soon as every device (and app) is ready\n"
    "      --heartbeat S        PINGREQ interval (default 50)\n"
    "      --keepalive S        CONNECT keepalive (default 120)\n"
    "      --mqtt-version 3|4   3 = MQIsdp like the firmware (default), 4 = MQTT 3.1.1\n"
    "      --backoff-scale F    multiply the reconnect back-off (5 s + 10 s per failed try)\n"
    "      --connect-timeout S  CONNACK + SUBACKs deadline (default 30)\n"
    "      --no-http            skip register/provision/OTA (needs --mqtt-port; random DIDs)\n"
    "      --no-ota             skip the OTA check at boot\n"
    "      --no-app-count       do not send 0x020F after login\n"
    "      --ota-type 1|2       OTA check type (default 1)\n"
    "      --ota-version 41|40  OTA check flow: 41 = update_and_check (default),\n"
    "                           40 = target_fid (also after every 0x020E push)\n"
    "      --ota-refuse-ratio R   share of devices (0..1, spread over the indexes) that\n"
    "                           never download an offered firmware (a declined update)\n"
    "      --ota-corrupt-ratio R  share of devices whose downloads arrive corrupted (MD5\n"
    "                           check fails; reported with a 0x022C progress \"md5 fail\")\n"
    "      --lenient            read HTTP and MQTT like a tolerant client instead of like\n"
    "                           firmware (whole answers, several packets per read,\n"
    "                           PUBLISHes before the last SUBACK kept, no downloads)\n"
    "      --soft-version V     soft version reported in the OTA check (default 04020020)\n"
    "      --hard-version V     hard version (default 00000001)\n"
    "      --http-concurrency N HTTP requests in flight at most (default 64)\n"
    "      --http-timeout S     per HTTP request (default 10)\n"
    "      --report-rate N      0x0091 reports per second from the whole fleet (default 0)\n"
    "      --report-size B      bytes per report (default 8)\n"
    "      --log-interval S     0x0012 period per level while enabled (default 5)\n"
    "Apps:\n"
    "      --apps M             simulated apps (default 0); they start once all devices are up\n"
    "      --app-devices K      devices each app binds (default 1)\n"
    "      --app-interval S     one command per app every S seconds (default 1)\n"
    "      --app-plain          send 0x0090 (device answers 0x0091) instead of 0x0093 + ACK\n"
    "      --app-window W       closed loop: at most W (1..64) commands in flight per app,\n"
    "                           the next one sent as soon as an answer arrives\n"
    "      --app-payload B      command payload bytes (default 16)\n"
    "Misbehaving devices (the first N of the fleet):\n"
    "      --ping-flood N       N devices send 100 PINGREQ/s\n"
    "      --malformed N        N devices send bad payloads (10/s, 7 kinds in turn)\n"
    "      --wrong-topic N      N devices publish to topics they may not use (10/s)\n"
    "      --datapoints FILE    devices speak data points (p0) of this Gizwits data-point\n"
    "                           JSON: status report (0x04) after login and after a write,\n"
    "                           writes (0x01/0x11) applied, reads (0x02/0x12) answered\n"
    "Where:\n"
    "      --http URL           GService (env GIZ_HTTP_URL or GIZ_HOST + GIZ_HTTP_PORT;\n"
    "                           default http://127.0.0.1:8080)\n"
    "      --mqtt-host HOST     override the provisioned M2M host (env GIZ_MQTT_HOST)\n"
    "      --mqtt-port PORT     override the provisioned M2M port (env GIZ_MQTT_PORT)\n"
    "      --admin-token T      for --create-product (env GIZ_ADMIN_TOKEN)\n"
    "      --app-tls            apps use MQTT over TLS (MQTTS) on --mqtts-port\n"
    "      --device-tls         devices too (real firmware has no TLS)\n"
    "      --mqtts-port PORT    the broker's MQTTS port (default 8883)\n"
    "      --cacert FILE        PEM CA certificate(s) to trust for MQTTS (default: system)\n"
    "Output:\n"
    "  -j, --json FILE          write the JSON report there at the end (\"-\" = stdout);\n"
    "                           SIGUSR1 writes it at once too\n"
    "      --progress S         progress line period on stderr (default 1; 0 = off)\n"
    "  -q, --quiet              no progress line\n"
    "  -h, --help\n"
    "\n"
    "stderr gets a line \"gizsim: all N devices connected\" once every device is up.\n"
    "Exit codes: 0 done, 1 usage, 2 cloud refused (e.g. product creation),\n"
    "3 cloud unreachable at start, 6 local error (state/report file).\n";

/* ---- options: one table drives getopt_long, the parsing and the bounds ----------------- */

enum opt_kind {
    OK_FLAG,        /* bool = true */
    OK_PTR,         /* const char * = the argument (argv outlives the run) */
    OK_TEXT,        /* char[size] = a truncated copy */
    OK_UINT,        /* unsigned in [min, max] */
    OK_U16,         /* uint16_t in [min, max] */
    OK_U8,          /* uint8_t in [min, max] */
    OK_INT,         /* int in [min, max] */
    OK_DBL,         /* double in [min, max] */
    OK_MS,          /* seconds as a double in [min, max], stored as unsigned milliseconds */
    OK_OTA_VERSION, /* "40" or "41" */
    OK_HELP,
};

struct opt_spec {
    const char *name; /* long name without "--" */
    char short_name;  /* 0: long only */
    enum opt_kind kind;
    size_t off, size; /* the field in struct sim_opts */
    double min, max;  /* numeric kinds */
    const char *err;  /* usage text for a bad value, followed by the value */
};

#define F(field) offsetof(struct sim_opts, field), sizeof(((struct sim_opts *)0)->field)
#define NOF 0, 0
static const struct opt_spec opt_table[] = {
    {"devices", 'n', OK_UINT, F(devices), 1, 1000000, "--devices wants 1..1000000, not"},
    {"product-key", 'p', OK_TEXT, F(product_key), 0, 0, NULL},
    {"state", 's', OK_PTR, F(state_path), 0, 0, NULL},
    {"rate", 'r', OK_DBL, F(rate), 0.01, 1e7, "--rate wants starts per second, not"},
    {"duration", 'd', OK_DBL, F(duration_s), 0, 1e8, "--duration wants seconds, not"},
    {"json", 'j', OK_PTR, F(json_path), 0, 0, NULL},
    {"quiet", 'q', OK_FLAG, F(quiet), 0, 0, NULL},
    {"help", 'h', OK_HELP, NOF, 0, 0, NULL},
    {"apps", 0, OK_UINT, F(apps), 0, 100000, "--apps wants 0..100000, not"},
    {"app-devices", 0, OK_UINT, F(app_devices), 1, 1000, "--app-devices wants 1..1000, not"},
    {"app-interval", 0, OK_DBL, F(app_interval_s), 0.0001, 1e6,
     "--app-interval wants seconds, not"},
    {"app-plain", 0, OK_FLAG, F(app_plain), 0, 0, NULL},
    {"app-window", 0, OK_UINT, F(app_window), 1, 64, "--app-window wants 1..64, not"},
    {"app-payload", 0, OK_UINT, F(app_payload), 4, 1024, "--app-payload wants 4..1024 bytes, not"},
    {"http", 0, OK_TEXT, F(http_url), 0, 0, NULL},
    {"mqtt-host", 0, OK_TEXT, F(mqtt_host), 0, 0, NULL},
    {"mqtt-port", 0, OK_U16, F(mqtt_port), 1, 65535, "--mqtt-port wants 1..65535, not"},
    {"create-product", 0, OK_PTR, F(create_product), 0, 0, NULL},
    {"admin-token", 0, OK_TEXT, F(admin_token), 0, 0, NULL},
    {"until-ready", 0, OK_FLAG, F(until_ready), 0, 0, NULL},
    {"heartbeat", 0, OK_DBL, F(heartbeat_s), 0.001, 86400, "--heartbeat wants seconds, not"},
    {"keepalive", 0, OK_U16, F(keepalive), 0, 65535, "--keepalive wants 0..65535, not"},
    {"mqtt-version", 0, OK_U8, F(mqtt_level), 3, 4, "--mqtt-version wants 3 or 4, not"},
    {"backoff-scale", 0, OK_DBL, F(backoff_scale), 0, 1000, "--backoff-scale wants a factor, not"},
    {"connect-timeout", 0, OK_DBL, F(connect_timeout_s), 0.01, 3600,
     "--connect-timeout wants seconds, not"},
    {"no-http", 0, OK_FLAG, F(no_http), 0, 0, NULL},
    {"no-ota", 0, OK_FLAG, F(no_ota), 0, 0, NULL},
    {"no-app-count", 0, OK_FLAG, F(no_app_count), 0, 0, NULL},
    {"ota-type", 0, OK_INT, F(ota_type), 1, 2, "--ota-type wants 1 or 2, not"},
    {"soft-version", 0, OK_TEXT, F(soft_version), 0, 0, NULL},
    {"hard-version", 0, OK_TEXT, F(hard_version), 0, 0, NULL},
    {"http-concurrency", 0, OK_UINT, F(http_concurrency), 1, 10000,
     "--http-concurrency wants 1..10000, not"},
    {"http-timeout", 0, OK_MS, F(http_timeout_ms), 0.01, 3600, "--http-timeout wants seconds, not"},
    {"report-rate", 0, OK_DBL, F(report_rate), 0, 1e8,
     "--report-rate wants messages per second, not"},
    {"report-size", 0, OK_UINT, F(report_size), 0, 1024, "--report-size wants 0..1024 bytes, not"},
    {"log-interval", 0, OK_DBL, F(log_interval_s), 0, 86400, "--log-interval wants seconds, not"},
    {"ping-flood", 0, OK_UINT, F(ping_flood), 0, 1000000,
     "misbehaving device count wants a number, not"},
    {"malformed", 0, OK_UINT, F(malformed), 0, 1000000,
     "misbehaving device count wants a number, not"},
    {"wrong-topic", 0, OK_UINT, F(wrong_topic), 0, 1000000,
     "misbehaving device count wants a number, not"},
    {"progress", 0, OK_DBL, F(progress_s), 0, 3600, "--progress wants seconds, not"},
    {"lenient", 0, OK_FLAG, F(lenient), 0, 0, NULL},
    {"ota-version", 0, OK_OTA_VERSION, F(ota_version), 0, 0, "--ota-version wants 40 or 41, not"},
    {"app-tls", 0, OK_FLAG, F(app_tls), 0, 0, NULL},
    {"device-tls", 0, OK_FLAG, F(device_tls), 0, 0, NULL},
    {"mqtts-port", 0, OK_U16, F(mqtts_port), 1, 65535, "--mqtts-port wants 1..65535, not"},
    {"cacert", 0, OK_PTR, F(cacert), 0, 0, NULL},
    {"datapoints", 0, OK_PTR, F(datapoints), 0, 0, NULL},
    {"ota-refuse-ratio", 0, OK_DBL, F(ota_refuse_ratio), 0, 1,
     "--ota-refuse-ratio wants a share from 0 to 1, not"},
    {"ota-corrupt-ratio", 0, OK_DBL, F(ota_corrupt_ratio), 0, 1,
     "--ota-corrupt-ratio wants a share from 0 to 1, not"},
};
#undef F
#undef NOF
#define OPT_COUNT (sizeof opt_table / sizeof opt_table[0])
#define OPT_LONG_BASE 256 /* getopt_long's value for a long-only option: base + index */

static const struct sim_opts opt_defaults = {
    .devices = 10,
    .app_devices = 1,
    .app_interval_s = 1.0,
    .app_payload = 16,
    .rate = 200,
    .heartbeat_s = 50,
    .keepalive = 120,
    .mqtt_level = 3,
    .backoff_scale = 1.0,
    .connect_timeout_s = 30,
    .ota_type = 1,
    .ota_version = 41,
    .mqtts_port = 8883,
    .soft_version = "04020020",
    .hard_version = "00000001",
    .http_concurrency = 64,
    .http_timeout_ms = 10000,
    .report_size = 8,
    .log_interval_s = 5,
    .progress_s = 1,
    .http_url = "http://127.0.0.1:8080",
};

static int usage_error(const char *fmt, const char *arg)
{
    fputs("gizsim: ", stderr);
    fprintf(stderr, "%s \"%s\"", fmt, arg ? arg : "");
    fputs("; see gizsim --help\n", stderr);
    return 1;
}

/* Stores one option's argument into its field. Returns 0, or 1 after a usage
 * message. --help prints the usage and exits. */
static int opt_apply(struct sim_opts *o, const struct opt_spec *sp, const char *arg)
{
    char *field = (char *)o + sp->off;
    uint64_t u = 0;
    double d = 0;

    switch (sp->kind) {
    case OK_FLAG:
        *(bool *)field = true;
        return 0;
    case OK_PTR:
        *(const char **)field = arg;
        return 0;
    case OK_TEXT:
        (void)util__copy(field, sp->size, arg);
        return 0;
    case OK_HELP:
        fputs(usage_text, stdout);
        exit(0);
    case OK_OTA_VERSION:
        if (strcmp(arg, "40") != 0 && strcmp(arg, "41") != 0) return usage_error(sp->err, arg);
        *(int *)field = arg[1] == '0' ? 40 : 41;
        return 0;
    case OK_DBL:
    case OK_MS:
        if (util__parse_double(arg, sp->min, sp->max, &d) != 0) return usage_error(sp->err, arg);
        if (sp->kind == OK_DBL)
            *(double *)field = d;
        else
            *(unsigned *)field = (unsigned)(d * 1000);
        return 0;
    case OK_UINT:
    case OK_U16:
    case OK_U8:
    case OK_INT:
        if (giz_parse_uint(arg, 0, (uint64_t)sp->min, (uint64_t)sp->max, &u) != GIZ_OK)
            return usage_error(sp->err, arg);
        if (sp->kind == OK_UINT)
            *(unsigned *)field = (unsigned)u;
        else if (sp->kind == OK_U16)
            *(uint16_t *)field = (uint16_t)u;
        else if (sp->kind == OK_U8)
            *(uint8_t *)field = (uint8_t)u;
        else
            *(int *)field = (int)u;
        return 0;
    }
    return 1;
}

/* Settings from the environment (below the flags): GIZ_HTTP_URL or GIZ_HOST +
 * GIZ_HTTP_PORT, GIZ_MQTT_HOST, GIZ_MQTT_PORT, GIZ_PRODUCT_KEY, GIZ_ADMIN_TOKEN. */
static void opts_from_env(struct sim_opts *o)
{
    const char *env;
    uint64_t v;

    if ((env = getenv("GIZ_HTTP_URL")) != NULL && env[0]) {
        (void)util__copy(o->http_url, sizeof o->http_url, env);
    } else if (getenv("GIZ_HTTP_PORT") || getenv("GIZ_HOST")) {
        const char *h = getenv("GIZ_HOST"), *p = getenv("GIZ_HTTP_PORT");
        snprintf(o->http_url, sizeof o->http_url, "http://%s:%s", h && h[0] ? h : "127.0.0.1",
                 p && p[0] ? p : "8080");
    }
    if ((env = getenv("GIZ_MQTT_HOST")) != NULL)
        (void)util__copy(o->mqtt_host, sizeof o->mqtt_host, env);
    if ((env = getenv("GIZ_MQTT_PORT")) != NULL && giz_parse_uint(env, 0, 1, 65535, &v) == GIZ_OK)
        o->mqtt_port = (uint16_t)v;
    if ((env = getenv("GIZ_PRODUCT_KEY")) != NULL)
        (void)util__copy(o->product_key, sizeof o->product_key, env);
    if ((env = getenv("GIZ_ADMIN_TOKEN")) != NULL)
        (void)util__copy(o->admin_token, sizeof o->admin_token, env);
}

/* The checks across options, after all of them are read. 0, or 1 after a usage message. */
static int opts_check(struct sim_opts *o)
{
    if (util__parse_http_url(o->http_url, o->http_host, sizeof o->http_host, &o->http_port,
                             o->http_prefix, sizeof o->http_prefix) != 0)
        return usage_error("--http wants http://HOST[:PORT], not", o->http_url);
    if (o->no_http && o->mqtt_port == 0)
        return usage_error("--no-http needs --mqtt-port (nothing to provision from)", "");
    if (o->no_http && o->apps > 0)
        return usage_error("--apps needs the GService (drop --no-http)", "");
    return 0;
}

/* Fills *o from defaults, the environment and argv (in rising priority).
 * Returns 0, or 1 after a usage message on stderr. */
static int parse_args(struct sim_opts *o, int argc, char **argv)
{
    struct option long_opts[OPT_COUNT + 1];
    char short_opts[2 * OPT_COUNT + 1];
    size_t ns = 0;
    int c;

    *o = opt_defaults;
    opts_from_env(o);
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const struct opt_spec *sp = &opt_table[i];
        bool arg = sp->kind != OK_FLAG && sp->kind != OK_HELP;
        long_opts[i] = (struct option){sp->name, arg ? required_argument : no_argument, NULL,
                                       sp->short_name ? sp->short_name : OPT_LONG_BASE + (int)i};
        if (sp->short_name) {
            short_opts[ns++] = sp->short_name;
            if (arg) short_opts[ns++] = ':';
        }
    }
    long_opts[OPT_COUNT] = (struct option){NULL, 0, NULL, 0};
    short_opts[ns] = '\0';

    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        const struct opt_spec *sp = NULL;
        if (c >= OPT_LONG_BASE && (size_t)(c - OPT_LONG_BASE) < OPT_COUNT)
            sp = &opt_table[c - OPT_LONG_BASE];
        for (size_t i = 0; sp == NULL && c > 0 && c < OPT_LONG_BASE && i < OPT_COUNT; i++)
            if (opt_table[i].short_name == c) sp = &opt_table[i];
        if (sp == NULL) {
            fputs("gizsim: see gizsim --help\n", stderr);
            return 1;
        }
        if (opt_apply(o, sp, optarg) != 0) return 1;
    }
    if (optind < argc) return usage_error("unexpected argument", argv[optind]);
    return opts_check(o);
}

/* ---- shared helpers for the other files -------------------------------------------------- */

void sim__error(struct sim *s, enum sim_err kind)
{
    s->st.errors[kind]++;
}

void sim__http_acquire(struct sim *s, struct sim_device *d)
{
    if (s->http_inflight < s->o.http_concurrency) {
        s->http_inflight++;
        sim__dev_http_go(d);
        return;
    }
    if (d->http_queued || s->hq_len >= s->o.devices) return;
    d->http_queued = 1;
    s->http_queue[(s->hq_head + s->hq_len) % s->o.devices] = d->idx;
    s->hq_len++;
}

void sim__http_release(struct sim *s)
{
    if (s->http_inflight > 0) s->http_inflight--;
    while (!s->stopping && s->hq_len > 0 && s->http_inflight < s->o.http_concurrency) {
        struct sim_device *d = &s->devs[s->http_queue[s->hq_head]];
        s->hq_head = (s->hq_head + 1) % s->o.devices;
        s->hq_len--;
        if (d->phase == DEV_STOPPED) {
            d->http_queued = 0;
            continue;
        }
        s->http_inflight++;
        sim__dev_http_go(d);
    }
}

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *out)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];

    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0) return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0) return 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || res == NULL) return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int sim__set_m2m(struct sim *s, const char *host, uint16_t port)
{
    if (s->o.mqtt_port != 0) return 0; /* overridden on the command line */
    if (!s->mqtt_addr_set) {
        if (resolve(host, port, &s->mqtt_addr) != 0) return -1;
        (void)util__copy(s->m2m_host, sizeof s->m2m_host, host);
        s->m2m_port = port;
        s->mqtt_addr_set = true;
        return 0;
    }
    if (port == s->m2m_port && strcmp(host, s->m2m_host) == 0) return 0;
    for (unsigned i = 0; i < s->m2m_more_n; i++)
        if (port == s->m2m_more[i].port && strcmp(host, s->m2m_more[i].host) == 0)
            return (int)i + 1;
    if (s->m2m_more_n >= SIM_M2M_MAX - 1) return 0; /* more brokers than tracked: the first */
    unsigned n = s->m2m_more_n;
    if (resolve(host, port, &s->m2m_more[n].addr) != 0) return -1;
    (void)util__copy(s->m2m_more[n].host, sizeof s->m2m_more[n].host, host);
    s->m2m_more[n].port = port;
    s->m2m_more[n].tls_set = false;
    s->m2m_more_n++;
    return (int)n + 1;
}

const struct sockaddr *sim__mqtt_target(struct sim *s, struct mqttc *c, bool tls, unsigned m2m)
{
    if (m2m > 0 && m2m <= s->m2m_more_n) {
        struct sockaddr_storage *a = &s->m2m_more[m2m - 1].addr;
        c->tls_ctx = tls ? s->tls : NULL;
        c->tls_host = tls ? s->m2m_more[m2m - 1].host : NULL;
        if (!tls) return (const struct sockaddr *)a;
        if (!s->m2m_more[m2m - 1].tls_set) {
            if (resolve(s->m2m_more[m2m - 1].host, s->o.mqtts_port,
                        &s->m2m_more[m2m - 1].tls_addr) != 0)
                return NULL;
            s->m2m_more[m2m - 1].tls_set = true;
        }
        return (const struct sockaddr *)&s->m2m_more[m2m - 1].tls_addr;
    }
    c->tls_ctx = tls ? s->tls : NULL;
    c->tls_host = tls ? s->m2m_host : NULL;
    if (!tls) return (const struct sockaddr *)&s->mqtt_addr;
    if (!s->mqtts_addr_set) {
        if (resolve(s->m2m_host, s->o.mqtts_port, &s->mqtts_addr) != 0) return NULL;
        s->mqtts_addr_set = true;
    }
    return (const struct sockaddr *)&s->mqtts_addr;
}

/* ---- state file ------------------------------------------------------------------------------ */

static int load_state(struct sim *s)
{
    FILE *f = fopen(s->o.state_path, "r");
    char line[256];
    uint32_t i = 0;

    if (f == NULL) return errno == ENOENT ? 0 : -1;
    while (i < s->o.devices && fgets(line, sizeof line, f) != NULL) {
        char did[64], pc[64], mac[64], pk[96];
        if (line[0] == '#') continue;
        if (sscanf(line, "%63s %63s %63s %95s", did, pc, mac, pk) != 4 ||
            strlen(did) != GIZ_DID_LEN || strlen(pc) >= sizeof s->devs[i].passcode ||
            strlen(mac) != 12)
            continue;
        if (s->o.product_key[0] == '\0')
            (void)util__copy(s->o.product_key, sizeof s->o.product_key, pk);
        if (strcmp(pk, s->o.product_key) != 0) continue;
        struct sim_device *d = &s->devs[i++];
        (void)util__copy(d->did, sizeof d->did, did);
        (void)util__copy(d->passcode, sizeof d->passcode, pc);
        (void)util__copy(d->mac, sizeof d->mac, mac);
        s->st.reused++;
    }
    fclose(f);
    return 0;
}

static int save_state(struct sim *s)
{
    char tmp[1100];
    FILE *f;
    int fd;

    snprintf(tmp, sizeof tmp, "%s.tmp", s->o.state_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    fprintf(f, "# gizsim state: did passcode mac product_key (keep private)\n");
    for (uint32_t i = 0; i < s->o.devices; i++)
        if (s->devs[i].did[0])
            fprintf(f, "%s %s %s %s\n", s->devs[i].did, s->devs[i].passcode, s->devs[i].mac,
                    s->o.product_key);
    if (fclose(f) != 0 || rename(tmp, s->o.state_path) != 0) return -1;
    s->state_dirty = false;
    return 0;
}

/* ---- lifecycle
 * ----------------------------------------------------------------------------------- */

static void stop_run(struct sim *s);

void sim__check_ready(struct sim *s)
{
    double now = util__now_ms();
    if (!s->all_ready_said && s->st.connected_ever >= s->o.devices) {
        s->all_ready_said = true;
        s->t_all_ready = now;
        /* State first: scripts may read it as soon as they see the line. */
        if (s->o.state_path != NULL && s->state_dirty && save_state(s) != 0)
            fprintf(stderr, "gizsim: cannot write state file %s: %s\n", s->o.state_path,
                    strerror(errno));
        fprintf(stderr, "gizsim: all %u devices connected after %.2f s\n", s->o.devices,
                (now - s->t0) / 1000.0);
        if (s->o.apps > 0 && !s->apps_started) {
            s->apps_started = true;
            for (uint32_t i = 0; i < s->o.apps; i++)
                sim__app_start(&s->apps[i]);
        }
    }
    if (s->apps_started && s->st.app_ready_now == s->o.apps && s->o.apps > 0) {
        static bool said;
        if (!said) {
            said = true;
            fprintf(stderr, "gizsim: all %u apps ready after %.2f s\n", s->o.apps,
                    (now - s->t0) / 1000.0);
        }
    }
    if (s->o.until_ready && s->all_ready_said &&
        (s->o.apps == 0 || s->st.app_ready_now == s->o.apps))
        stop_run(s);
}

static void on_ramp(uv_timer_t *t)
{
    struct sim *s = t->data;
    double elapsed = (util__now_ms() - s->t0) / 1000.0;
    double target_d = s->o.rate * elapsed + 1.0;
    uint32_t target = target_d >= (double)s->o.devices ? s->o.devices : (uint32_t)target_d;

    while (s->started < target && !s->stopping)
        sim__dev_start(&s->devs[s->started++]);
    if (s->started >= s->o.devices) {
        uv_timer_stop(t);
        s->t_ramp_done = util__now_ms();
    }
}

static void on_tick(uv_timer_t *t)
{
    struct sim *s = t->data;
    double now = util__now_ms();
    bool need_scan =
        s->st.log_level_sets > 0 || s->o.ping_flood || s->o.malformed || s->o.wrong_topic;

    if (++s->ticks % (1000 / TICK_MS) == 0) sim__rates(s, now);
    if (need_scan)
        for (uint32_t i = 0; i < s->o.devices; i++)
            sim__dev_tick(&s->devs[i], now);
    if (s->o.report_rate > 0 && s->st.ready_now > 0) {
        uint32_t scanned = 0;
        s->report_credit += s->o.report_rate * TICK_MS / 1000.0;
        if (s->report_credit > s->o.report_rate)
            s->report_credit = s->o.report_rate; /* do not pile up more than 1 s */
        while (s->report_credit >= 1.0 && scanned < s->o.devices) {
            struct sim_device *d = &s->devs[s->report_cursor];
            s->report_cursor = (s->report_cursor + 1) % s->o.devices;
            if (sim__dev_report(d)) {
                s->report_credit -= 1.0;
                scanned = 0;
            } else {
                scanned++;
            }
        }
    }
}

static void on_progress(uv_timer_t *t)
{
    struct sim *s = t->data;
    sim__progress(s, util__now_ms());
}

static void on_stop_timer(uv_timer_t *t)
{
    stop_run(t->data);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct sim *s = h->data;
    if (signum == SIGUSR1) {
        if (s->o.json_path != NULL) (void)sim__write_json(s, s->o.json_path);
        return;
    }
    stop_run(s);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void stop_run(struct sim *s)
{
    if (s->stopping) return;
    s->stopping = true;
    s->st.ready_at_stop = s->st.ready_now;
    s->st.app_ready_at_stop = s->st.app_ready_now;
    s->t_stop = util__now_ms();
    close_handle((uv_handle_t *)&s->ramp_timer);
    close_handle((uv_handle_t *)&s->tick_timer);
    close_handle((uv_handle_t *)&s->progress_timer);
    close_handle((uv_handle_t *)&s->stop_timer);
    close_handle((uv_handle_t *)&s->sig_int);
    close_handle((uv_handle_t *)&s->sig_term);
    close_handle((uv_handle_t *)&s->sig_usr1);
    if (!s->o.quiet && s->o.progress_s > 0) sim__progress(s, s->t_stop);
    for (uint32_t i = 0; i < s->o.apps; i++)
        sim__app_stop(&s->apps[i]);
    for (uint32_t i = 0; i < s->o.devices; i++)
        sim__dev_stop(&s->devs[i]);
}

/* Creates a product over the admin API (blocking, before the loop starts). */
static int create_product(struct sim *s, const char *name)
{
    struct httpc_resp r;
    char headers[400], path[200], *text;
    cJSON *req, *ans;
    const cJSON *pk;
    int rc;

    if (s->o.admin_token[0] == '\0') {
        fprintf(stderr, "gizsim: --create-product needs --admin-token or GIZ_ADMIN_TOKEN\n");
        return 1;
    }
    snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", s->o.admin_token);
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "name", name);
    text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (text == NULL) return 6;
    snprintf(path, sizeof path, "%s/admin/products", s->o.http_prefix);
    rc = httpc__request(s->o.http_host, s->o.http_port, "POST", path, "application/json", headers,
                        text, strlen(text), 10000, 1u << 20, &r);
    free(text);
    if (rc != HTTPC_OK) {
        fprintf(stderr, "gizsim: cannot reach the GService at %s: %s\n", s->o.http_url,
                httpc__strerror(rc));
        return 3;
    }
    ans = cJSON_ParseWithLength(r.body, r.body_len);
    pk = cJSON_GetObjectItemCaseSensitive(ans, "product_key");
    if (r.status != 201 || !cJSON_IsString(pk)) {
        fprintf(stderr, "gizsim: product creation refused (%d): %.200s\n", r.status, r.body);
        cJSON_Delete(ans);
        httpc__resp_free(&r);
        return 2;
    }
    (void)util__copy(s->o.product_key, sizeof s->o.product_key, pk->valuestring);
    cJSON_Delete(ans);
    httpc__resp_free(&r);
    fprintf(stderr, "gizsim: created product %s\n", s->o.product_key);
    return 0;
}

/* Allocates the fleet, loads the state file and checks what the run needs.
 * Returns 0 or an exit code; on failure nothing is registered on the loop. */
static int setup(struct sim *s)
{
    unsigned long fds;
    int rc;

    if (giz_random_bytes(s->run_tag, sizeof s->run_tag) != GIZ_OK) return 6;
    memcpy(&s->rng, s->run_tag, sizeof s->rng);
    s->rng |= 1;
    (void)giz_hex_encode(s->run_tag, sizeof s->run_tag, s->run_hex, sizeof s->run_hex);

    if (!s->o.no_http && resolve(s->o.http_host, s->o.http_port, &s->http_addr) != 0) {
        fprintf(stderr, "gizsim: GService host %s does not resolve\n", s->o.http_host);
        return 3;
    }
    if (s->o.create_product != NULL && (rc = create_product(s, s->o.create_product)) != 0)
        return rc;
    if (s->o.datapoints != NULL && (rc = sim__p0_load(s, s->o.datapoints)) != 0) return rc;
    if (s->o.mqtt_port != 0) {
        const char *h = s->o.mqtt_host[0] ? s->o.mqtt_host : s->o.http_host;
        if (resolve(h, s->o.mqtt_port, &s->mqtt_addr) != 0) {
            fprintf(stderr, "gizsim: MQTT host %s does not resolve\n", h);
            return 3;
        }
        (void)util__copy(s->m2m_host, sizeof s->m2m_host, h);
        s->m2m_port = s->o.mqtt_port;
        s->mqtt_addr_set = true;
    }
    if (s->o.app_tls || s->o.device_tls) {
        char err[256];
        s->tls = mqttc__tls_ctx(s->o.cacert, err, sizeof err);
        if (s->tls == NULL) {
            fprintf(stderr, "gizsim: MQTTS: %s\n", err);
            return 6;
        }
    }
    fds = util__raise_nofile(s->o.devices + s->o.apps + s->o.http_concurrency + 64);
    if (fds < s->o.devices + s->o.apps + 32)
        fprintf(stderr,
                "gizsim: warning: only %lu file descriptors allowed (ulimit -n); "
                "%u connections will not all fit\n",
                fds, s->o.devices + s->o.apps);

    s->devs = calloc(s->o.devices, sizeof *s->devs);
    s->apps = s->o.apps ? calloc(s->o.apps, sizeof *s->apps) : NULL;
    s->http_queue = calloc(s->o.devices, sizeof *s->http_queue);
    if (s->devs == NULL || (s->o.apps && s->apps == NULL) || s->http_queue == NULL ||
        util__samples_init(&s->rtt, 200000) != 0 ||
        util__samples_init(&s->connect_ms, 200000) != 0 ||
        util__samples_init(&s->http_ms, 200000) != 0) {
        fprintf(stderr, "gizsim: out of memory for %u devices\n", s->o.devices);
        return 6;
    }
    if (s->o.state_path != NULL && load_state(s) != 0) {
        fprintf(stderr, "gizsim: cannot read state file %s: %s\n", s->o.state_path,
                strerror(errno));
        return 6;
    }
    if (s->o.product_key[0] == '\0') {
        fprintf(stderr, "gizsim: no product key: give --product-key PK (or GIZ_PRODUCT_KEY), "
                        "--create-product NAME, or a --state file\n");
        return 1;
    }
    for (uint32_t i = 0; i < s->o.devices; i++) {
        struct sim_device *d = &s->devs[i];
        if (s->o.no_http && !d->did[0]) {
            if (giz_random_base62(d->did, sizeof d->did, GIZ_DID_LEN) != GIZ_OK) return 6;
            s->state_dirty = true;
        }
        if (i < s->o.ping_flood) d->misbehave |= SIM_MIS_PING_FLOOD;
        if (i < s->o.malformed) d->misbehave |= SIM_MIS_MALFORMED;
        if (i < s->o.wrong_topic) d->misbehave |= SIM_MIS_WRONG_TOPIC;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct sim sim;
    struct sim *s = &sim;
    uv_loop_t loop;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    giz_log_init("gizsim", GIZ_LOG_WARN);
    rc = parse_args(&s->o, argc, argv);
    if (rc != 0) return rc;
    rc = setup(s);
    if (rc != 0) goto cleanup;

    uv_loop_init(&loop);
    s->loop = &loop;
    for (uint32_t i = 0; i < s->o.devices; i++)
        sim__dev_init(s, &s->devs[i], i);
    for (uint32_t i = 0; i < s->o.apps; i++)
        sim__app_init(s, &s->apps[i], i);

    s->t0 = util__now_ms();
    s->last_progress = s->t0;
    uv_timer_init(&loop, &s->ramp_timer);
    uv_timer_init(&loop, &s->tick_timer);
    uv_timer_init(&loop, &s->progress_timer);
    uv_timer_init(&loop, &s->stop_timer);
    s->ramp_timer.data = s->tick_timer.data = s->progress_timer.data = s->stop_timer.data = s;
    uv_signal_init(&loop, &s->sig_int);
    uv_signal_init(&loop, &s->sig_term);
    uv_signal_init(&loop, &s->sig_usr1);
    s->sig_int.data = s->sig_term.data = s->sig_usr1.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_usr1, on_signal, SIGUSR1);
    uv_timer_start(&s->ramp_timer, on_ramp, 0, 10);
    uv_timer_start(&s->tick_timer, on_tick, TICK_MS, TICK_MS);
    if (!s->o.quiet && s->o.progress_s > 0) {
        uint64_t ms = (uint64_t)(s->o.progress_s * 1000);
        uv_timer_start(&s->progress_timer, on_progress, ms, ms);
    }
    if (s->o.duration_s > 0)
        uv_timer_start(&s->stop_timer, on_stop_timer, (uint64_t)(s->o.duration_s * 1000), 0);

    uv_run(&loop, UV_RUN_DEFAULT);
    if (!s->stopping) stop_run(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);

    sim__summary(s);
    if (s->o.json_path != NULL && sim__write_json(s, s->o.json_path) != 0) {
        fprintf(stderr, "gizsim: cannot write the report to %s: %s\n", s->o.json_path,
                strerror(errno));
        rc = 6;
    }
    if (s->o.state_path != NULL && s->state_dirty && save_state(s) != 0) {
        fprintf(stderr, "gizsim: cannot write state file %s: %s\n", s->o.state_path,
                strerror(errno));
        rc = 6;
    }
cleanup:
    sim__p0_free(s);
    SSL_CTX_free(s->tls);
    free(s->devs);
    free(s->apps);
    free(s->http_queue);
    util__samples_free(&s->rtt);
    util__samples_free(&s->connect_ms);
    util__samples_free(&s->http_ms);
    return rc;
}
