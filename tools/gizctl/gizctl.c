/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl's entry point: the command table (operator commands against the
 * admin API, app commands against the app API and MQTT), the command line
 * parser shared by every command (global options anywhere, per-command
 * options, positional arguments), --help texts and exit codes.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "giz/log.h"

#define GIZCTL_VERSION "0.1.0"

/* ---- options of each command ---------------------------------------------- */
static const struct ctl_opt opts_device_list[] = {
    {"product", 'p', "PK", "only devices of this product key"},
    {"online", 0, NULL, "only devices that are online now"},
    {"limit", 0, "N", "at most N devices (the GService's default: 1000)"},
    {"offset", 0, "N", "skip the first N devices"},
    {0}};
static const struct ctl_opt opts_page[] = {
    {"limit", 0, "N", "at most N entries (the GService's default: 1000)"},
    {"offset", 0, "N", "skip the first N entries"},
    {0}};
static const struct ctl_opt opts_firmware[] = {
    {"product", 'p', "PK", "product key (required)"},
    {"type", 't', "1|2", "firmware type: 1 = WiFi module, 2 = MCU (default 1)"},
    {"soft-version", 's', "VER", "soft version, e.g. 04020021 (required)"},
    {"hard-version", 0, "VER", "hard version the firmware is for"},
    {"url", 'u', "URL", "where devices download it (register only; upload hosts it)"},
    {0}};
static const struct ctl_opt opts_ota_push[] = {
    {"did", 'd', "DID", "push to this device"},
    {"product", 'p', "PK", "push to every online device of this product"},
    {"type", 't', "1|2", "firmware type for a product push (default 1)"},
    {"ota-version", 0, "41|40",
     "41: 0x0211, devices run update_and_check (default); "
     "40: 0x020E, v4.0 target_fid flow"},
    {0}};
static const struct ctl_opt opts_firmware_list[] = {
    {"product", 'p', "PK", "only firmware of this product key"},
    {"limit", 0, "N", "at most N entries (the GService's default: 1000)"},
    {"offset", 0, "N", "skip the first N entries"},
    {0}};
static const struct ctl_opt opts_logs[] = {
    {"lines", 'n', "N", "show the last N records (default 100, at most 1000)"},
    {"follow", 'f', NULL, "keep polling and print new records as they are stored"},
    {"interval", 0, "SECONDS", "poll interval with --follow (default 2)"},
    {"count", 0, "N", "with --follow: exit after N new records"},
    {0}};
static const struct ctl_opt opts_events[] = {
    {"follow", 'f', NULL, "then follow the live stream and print new events as they happen"},
    {"kind", 'k', "KIND", "only events of this kind (register, provision, ota_check, ...)"},
    {"since", 0, "ID", "only events after this event id"},
    {"count", 0, "N", "with --follow: exit after N new events"},
    {0}};
static const struct ctl_opt opts_password[] = {
    {"password", 0, "PW", "password (visible to other users in ps; prefer the next two)"},
    {"password-stdin", 0, NULL, "read the password from the first line of stdin"},
    {"app-id", 0, "ID", "send X-Gizwits-Application-Id (login)"},
    {0}};
static const struct ctl_opt opts_send[] = {
    {"ack", 'a', NULL, "send 0x0093 with a serial number and wait for the device's 0x0094"},
    {"wait", 'w', NULL, "after a plain send, wait for the device's 0x0091 and print it"},
    {"sn", 0, "N", "serial number for --ack (default: random)"},
    {"count", 'c', "N", "send N times (with --ack: N round trips, then a summary)"},
    {"burst", 'b', NULL,
     "with --ack: send all N back to back, then wait for every ACK "
     "(N <= 64; exit 4 if one is missing)"},
    {0}};
static const struct ctl_opt opts_log_level[] = {
    {"no-wait", 0, NULL, "do not wait for the device's 0x0011 acknowledgement"}, {0}};
static const struct ctl_opt opts_watch[] = {
    {"count", 'c', "N", "exit after N messages"},
    {"for", 0, "SECONDS", "exit after this many seconds (exit code 0)"},
    {"all", 0, NULL, "also print messages of other types (raw hex)"},
    {0}};

static const struct ctl_opt opts_campaign[] = {
    {"product", 'p', "PK", "create: the product (required)"},
    {"type", 't', "1|2", "create: firmware type (default 1)"},
    {"firmware", 'f', "ID", "create: firmware id (default: the product's latest of the type)"},
    {"name", 0, "TEXT", "create: a name"},
    {"dids", 0, "DID,...", "create: only these devices"},
    {"macs", 0, "MAC,...", "create: only the devices with these MACs"},
    {"versions", 0, "MIN:MAX", "create: only devices whose current version is in the range"},
    {"percent", 0, "N", "create: only the first N % of the devices (DID order)"},
    {"canary", 0, "N", "create: N devices first; the rest once they all updated"},
    {"canary-dids", 0, "DID,...", "create: these devices are the canaries"},
    {"threshold", 0, "N", "create: stop the campaign once N devices failed"},
    {"timeout", 0, "SECONDS", "create: no progress this long after a notice: failed (600)"},
    {"max-checks", 0, "N", "create: OTA checks still at the old version: failed (3)"},
    {"window", 0, "HH:MM-HH:MM", "create: send notices only in this daily UTC window"},
    {"force", 0, NULL, "create: notice on every login, not at most once a UTC day"},
    {0}};

static const struct ctl_cmd commands[] = {
    /* operator side: admin API */
    {"product", "create", "NAME", "create a product; prints its product key and secret", NULL, 1, 1,
     NULL, ctl__cmd_product_create},
    {"product", "list", "", "list products", NULL, 0, 0, opts_page, ctl__cmd_product_list},
    {"product", "datapoints", "PK import FILE | PK export",
     "import or export a product's data-point schema (the Gizwits data-point JSON)",
     "import sends FILE to PUT /admin/products/PK/datapoints (the GService checks it\n"
     "and names the offending point); export prints the stored JSON (--json: compact).",
     2, 3, NULL, ctl__cmd_product_datapoints},
    {"device", "list", "", "list devices with online state and last seen time", NULL, 0, 0,
     opts_device_list, ctl__cmd_device_list},
    {"device", "show", "DID", "show one device", NULL, 1, 1, NULL, ctl__cmd_device_show},
    {"broker", "list", "", "list the brokers registered in the store, with liveness and devices",
     "Every broker (mosquitto with the plugin) that registered in the store: its name,\n"
     "the address devices are told (\"-\" = the GService's GIZ_M2M_HOST/PORT), alive\n"
     "(heartbeat at most GIZ_BROKER_MAX_AGE old), devices held and heartbeat age.",
     0, 0, NULL, ctl__cmd_broker_list},
    {"device", "disable", "DID",
     "disable a device: its MQTT session is kicked, logins and provision are refused",
     "It stays disabled when it registers again with the same MAC and passcode,\n"
     "until `gizctl device enable DID`.",
     1, 1, NULL, ctl__cmd_device_control},
    {"device", "enable", "DID", "enable a disabled device again", NULL, 1, 1, NULL,
     ctl__cmd_device_control},
    {"device", "kick", "DID", "close the device's MQTT session (it may reconnect at once)", NULL, 1,
     1, NULL, ctl__cmd_device_control},
    {"device", "delete", "DID",
     "delete a device: bindings, logs and details go, its session is kicked",
     "Its timeline (gizctl device events) stays. The firmware gets 404/9014 for the\n"
     "DID and registers anew.",
     1, 1, NULL, ctl__cmd_device_delete},
    {"device", "events", "DID", "print a device's timeline, oldest first (-f: then follow it live)",
     "One line per event: ISO 8601 UTC time, kind, then its fields as key=value\n"
     "(status, error_code, versions, bytes, peer, ...). With --json one JSON\n"
     "object per line: {\"id\",\"ts\" (unix ms),\"kind\",\"did\",\"source\",...}.",
     1, 1, opts_events, ctl__cmd_device_events},
    {"firmware", "register", "", "register a firmware hosted elsewhere (--url)",
     "Example: gizctl firmware register -p PK -t 2 -s 04020021 --url http://files/mcu.bin", 0, 0,
     opts_firmware, ctl__cmd_firmware_register},
    {"firmware", "upload", "FILE", "upload a firmware file for the GService to host",
     "Example: gizctl firmware upload -p PK -t 1 -s 04020021 ./wifi.bin", 1, 1, opts_firmware,
     ctl__cmd_firmware_upload},
    {"firmware", "list", "", "list firmware (id, product, type, versions, MD5, size)", NULL, 0, 0,
     opts_firmware_list, ctl__cmd_firmware_list},
    {"firmware", "show", "ID", "show one firmware", NULL, 1, 1, NULL, ctl__cmd_firmware_show},
    {"firmware", "delete", "ID",
     "delete a firmware (and the file the GService hosts); devices are no longer offered it", NULL,
     1, 1, NULL, ctl__cmd_firmware_delete},
    {"ota", "push", "", "tell online devices to check for an update now (0x0211)",
     "Give --did DID, or --product PK [--type 1|2]. When no firmware matches, gizctl\n"
     "says so: devices will re-check and answer 9500 (no update).",
     0, 0, opts_ota_push, ctl__cmd_ota_push},
    {"ota", "campaign", "ACTION [ID]",
     "OTA campaigns: create | list | show ID | follow ID | pause ID | resume ID | cancel ID",
     "A campaign rolls a firmware out to a product's devices (all, --dids, --macs,\n"
     "--versions, --percent; those already at its version are left out), optionally\n"
     "canary devices first, and follows each device from its timeline: pending,\n"
     "notified, checked, offered, downloading, downloaded, updated or failed (with the\n"
     "reason). follow redraws a progress bar once a second until the campaign is\n"
     "completed, stopped or cancelled.",
     1, 2, opts_campaign, ctl__cmd_ota_campaign},
    {"logs", "tail", "DID", "print a device's stored 0x0012 logs", NULL, 1, 1, opts_logs,
     ctl__cmd_logs_tail},
    /* app side: app API + MQTT as an app */
    {"user", "create", "USERNAME", "create an app user", NULL, 1, 1, opts_password,
     ctl__cmd_user_create},
    {NULL, "login", "USERNAME",
     "log in as an app user; saves uid, token and MQTT client id in the config file",
     "The config file is written with mode 0600; `gizctl logout` removes the token.", 1, 1,
     opts_password, ctl__cmd_login},
    {NULL, "logout", "", "forget the saved app token", NULL, 0, 0, NULL, ctl__cmd_logout},
    {NULL, "bind", "DID PASSCODE", "bind a device to the logged-in user", NULL, 2, 2, NULL,
     ctl__cmd_bind},
    {NULL, "unbind", "DID", "unbind a device", NULL, 1, 1, NULL, ctl__cmd_unbind},
    {NULL, "bindings", "", "list the devices bound to the logged-in user", NULL, 0, 0, NULL,
     ctl__cmd_bindings},
    {NULL, "send", "DID PAYLOAD",
     "send a business message (0x0090, or 0x0093 with --ack) to a device",
     "PAYLOAD is hex (\"0102ff\", spaces and colons allowed) or @FILE for raw bytes.\n"
     "With --ack the device's 0x0094 is awaited and the round trip time printed.",
     2, 2, opts_send, ctl__cmd_send},
    {NULL, "log-level", "DID LEVELS",
     "set a device's log levels and LED switch (0x0010) and wait for its 0x0011",
     "LEVELS: a comma list of error,warn,info,led; \"none\"; or a number like 0x0007.", 2, 2,
     opts_log_level, ctl__cmd_log_level},
    {NULL, "watch", "[DID...]",
     "print decoded 0x0091 / 0x0094 / 0x0011 / 0x0012 messages live (all bound devices by default)",
     "With --json, one JSON object per line:\n"
     "  {\"ts\",\"did\",\"topic\",\"cmd\",\"name\",\"to_me\",...}; 0x0091: \"data\" (hex);\n"
     "  0x0094: \"sn\",\"data\"; 0x0012: \"level\",\"tags\",\"source\",\"content\".",
     0, CTL_MAX_POS, opts_watch, ctl__cmd_watch},
    {NULL, "config", "", "show the effective settings and where the config file is", NULL, 0, 0,
     NULL, ctl__cmd_config},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL}};

static const struct ctl_opt global_opts[] = {
    {"http", 0, "URL", "GService base URL (env GIZ_HTTP_URL, or GIZ_HOST + GIZ_HTTP_PORT)"},
    {"admin-token", 0, "TOKEN", "admin API token (env GIZ_ADMIN_TOKEN)"},
    {"mqtt-host", 0, "HOST", "MQTT host (env GIZ_MQTT_HOST/GIZ_HOST; default: from bindings)"},
    {"mqtt-port", 0, "PORT", "MQTT port (env GIZ_MQTT_PORT; default: from bindings)"},
    {"config", 0, "FILE", "config file (env GIZCTL_CONFIG; default ~/.config/gizctl/config)"},
    {"timeout", 0, "SECONDS", "how long to wait for answers (default 10)"},
    {"json", 'j', NULL, "print machine-readable JSON instead of text"},
    {"verbose", 'v', NULL, "say more about what is happening (stderr)"},
    {"help", 'h', NULL, "show help"},
    {"cacert", 0, "FILE", "PEM CA certificate(s) to trust for HTTPS and MQTTS (env GIZ_CACERT)"},
    {"mqtts", 0, NULL, "MQTT over TLS (port: --mqtt-port, else port_s of the bindings answer)"},
    {0}};

static const char exit_codes_text[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  usage: bad arguments, not logged in, missing setting\n"
    "  2  refused by the cloud: HTTP 4xx, MQTT CONNACK refused, subscription refused\n"
    "  3  unreachable: GService or broker not reachable, connection lost\n"
    "  4  timeout: no answer (HTTP, CONNACK, device reply) within --timeout\n"
    "  5  server error: HTTP 5xx or an answer gizctl cannot understand\n"
    "  6  local error: file unreadable, config file not writable\n";

int ctl__fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("gizctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

const char *ctl__opt(const struct ctl_args *a, const char *name)
{
    if (a->cmd->opts == NULL) return NULL;
    for (int i = 0; a->cmd->opts[i].name != NULL && i < CTL_MAX_OPTS; i++)
        if (strcmp(a->cmd->opts[i].name, name) == 0) return a->val[i];
    return NULL;
}

bool ctl__flag(const struct ctl_args *a, const char *name)
{
    return ctl__opt(a, name) != NULL;
}

static void print_opts(FILE *f, const struct ctl_opt *o)
{
    for (; o != NULL && o->name != NULL; o++) {
        char left[64];
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(f, "  %-28s %s\n", left, o->help);
    }
}

static void cmd_name(const struct ctl_cmd *c, char *buf, size_t cap)
{
    if (c->group)
        snprintf(buf, cap, "%s %s", c->group, c->verb);
    else
        snprintf(buf, cap, "%s", c->verb);
}

static void usage_main(FILE *f)
{
    fprintf(f, "Usage: gizctl [OPTIONS] COMMAND [ARGS]\n\n"
               "Operate a gizcloud (admin API) and act as a Gizwits app (app API + MQTT).\n\n");
    fprintf(f, "Operator commands (need the admin token):\n");
    for (const struct ctl_cmd *c = commands; c->verb; c++) {
        char name[64];
        if (c->group != NULL && strcmp(c->group, "user") == 0 && strcmp(c->verb, "create") == 0)
            fprintf(f, "\nApp commands (log in first with `gizctl login`):\n");
        if (c->group == NULL && strcmp(c->verb, "config") == 0) fprintf(f, "\nOther:\n");
        cmd_name(c, name, sizeof name);
        fprintf(f, "  %-20s %s\n", name, c->summary);
    }
    fprintf(f, "\nGlobal options (also after the command):\n");
    print_opts(f, global_opts);
    fprintf(f,
            "\nSettings come from flags, then the environment, then the config file.\n"
            "`gizctl COMMAND --help` explains a command.\n\n%s",
            exit_codes_text);
}

static void usage_cmd(FILE *f, const struct ctl_cmd *c)
{
    char name[64];
    cmd_name(c, name, sizeof name);
    fprintf(f, "Usage: gizctl %s%s%s%s\n\n%s.\n", name, c->opts ? " [OPTIONS]" : "",
            c->usage[0] ? " " : "", c->usage, c->summary);
    if (c->details) fprintf(f, "%s\n", c->details);
    if (c->opts) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, c->opts);
    }
    fprintf(f, "\nGlobal options:\n");
    print_opts(f, global_opts);
    fprintf(f, "\n%s", exit_codes_text);
}

static void usage_group(FILE *f, const char *group)
{
    fprintf(f, "Usage: gizctl %s VERB ...\n\nVerbs:\n", group);
    for (const struct ctl_cmd *c = commands; c->verb; c++)
        if (c->group && strcmp(c->group, group) == 0)
            fprintf(f, "  %-12s %s\n", c->verb, c->summary);
}

static bool is_group(const char *w)
{
    for (const struct ctl_cmd *c = commands; c->verb; c++)
        if (c->group && strcmp(c->group, w) == 0) return true;
    return false;
}

static const struct ctl_cmd *find_cmd(const char *group, const char *verb)
{
    for (const struct ctl_cmd *c = commands; c->verb; c++) {
        if ((group == NULL) != (c->group == NULL)) continue;
        if (group && strcmp(group, c->group) != 0) continue;
        if (strcmp(verb, c->verb) == 0) return c;
    }
    return NULL;
}

/* Matches argv[*i] against `opts`; returns the index or -1, sets *val. */
static int match_opt(const struct ctl_opt *opts, int argc, char **argv, int *i, const char **val,
                     int *err)
{
    const char *arg = argv[*i];
    *err = 0;
    for (int k = 0; opts != NULL && opts[k].name != NULL; k++) {
        const struct ctl_opt *o = &opts[k];
        size_t nl = strlen(o->name);
        const char *inline_val = NULL;
        bool hit = false;
        if (arg[0] == '-' && arg[1] == '-' && strncmp(arg + 2, o->name, nl) == 0 &&
            (arg[2 + nl] == '\0' || arg[2 + nl] == '=')) {
            hit = true;
            if (arg[2 + nl] == '=') inline_val = arg + 3 + nl;
        } else if (o->short_name && arg[0] == '-' && arg[1] == o->short_name && arg[2] == '\0') {
            hit = true;
        }
        if (!hit) continue;
        if (o->arg == NULL) {
            if (inline_val) {
                *err = ctl__fail(CTL_USAGE, "option --%s takes no value", o->name);
                return -1;
            }
            *val = "1";
        } else if (inline_val) {
            *val = inline_val;
        } else if (*i + 1 < argc) {
            *val = argv[++*i];
        } else {
            *err = ctl__fail(CTL_USAGE, "option --%s needs a value (%s)", o->name, o->arg);
            return -1;
        }
        return k;
    }
    return -1;
}

/* Indexes into global_opts (and into the values main collects for them). */
enum global_opt {
    G_HTTP,
    G_ADMIN_TOKEN,
    G_MQTT_HOST,
    G_MQTT_PORT,
    G_CONFIG,
    G_TIMEOUT,
    G_JSON,
    G_VERBOSE,
    G_HELP,
    G_CACERT,
    G_MQTTS,
    G_COUNT
};
_Static_assert(sizeof global_opts / sizeof global_opts[0] == G_COUNT + 1,
               "enum global_opt follows global_opts");

static bool argv_has(int argc, char **argv, const char *a, const char *b)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], a) == 0 || (b != NULL && strcmp(argv[i], b) == 0)) return true;
    return false;
}

/* First pass: the command words, i.e. the first non-option argument and, when
 * it names a group ("device", "firmware", ...), the next one. Values of global
 * options given as "--name VALUE" are skipped. Returns how many were found (0..2). */
static int find_words(int argc, char **argv, const char *words[2])
{
    int nwords = 0;

    for (int i = 1; i < argc && nwords < 2; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] != '\0') {
            for (int k = 0; global_opts[k].name; k++) {
                size_t nl = strlen(global_opts[k].name);
                if (global_opts[k].arg && strncmp(a, "--", 2) == 0 &&
                    strncmp(a + 2, global_opts[k].name, nl) == 0 && a[2 + nl] == '\0')
                    i++;
            }
            continue;
        }
        words[nwords++] = a;
        if (nwords == 1 && !is_group(a)) break;
    }
    return nwords;
}

/* Finds the command named on the command line. Sets *cmd and returns CTL_OK,
 * or leaves *cmd NULL and returns the exit code after printing a usage text
 * (CTL_OK when help or the version was asked for). */
static int resolve_cmd(int argc, char **argv, const struct ctl_cmd **cmd)
{
    const char *words[2] = {0};
    int nwords = find_words(argc, argv, words);
    bool asked = argv_has(argc, argv, "-h", "--help");

    *cmd = NULL;
    if (nwords == 0) {
        if (argv_has(argc, argv, "--version", NULL)) {
            printf("gizctl %s\n", GIZCTL_VERSION);
            return CTL_OK;
        }
        usage_main(asked ? stdout : stderr);
        return asked ? CTL_OK : CTL_USAGE;
    }
    if (strcmp(words[0], "help") == 0) {
        usage_main(stdout);
        return CTL_OK;
    }
    if (!is_group(words[0])) {
        *cmd = find_cmd(NULL, words[0]);
        return *cmd ? CTL_OK
                    : ctl__fail(CTL_USAGE, "unknown command \"%s\"; see `gizctl --help`", words[0]);
    }
    if (nwords < 2) {
        usage_group(asked ? stdout : stderr, words[0]);
        return asked ? CTL_OK : CTL_USAGE;
    }
    *cmd = find_cmd(words[0], words[1]);
    if (*cmd == NULL) {
        usage_group(stderr, words[0]);
        return ctl__fail(CTL_USAGE, "unknown command \"%s %s\"", words[0], words[1]);
    }
    return CTL_OK;
}

/* Second pass: the command's options and the global ones anywhere (up to "--"),
 * the positional arguments in order after the command words. Fills a->val,
 * g_val[G_COUNT] and a->pos/npos (checked against the command's bounds unless
 * help was asked for). Returns CTL_OK or CTL_USAGE after a message. */
static int parse_cmd_args(int argc, char **argv, struct ctl_args *a, const char *g_val[G_COUNT])
{
    const struct ctl_cmd *cmd = a->cmd;
    int skip_words = cmd->group ? 2 : 1;
    bool no_more_opts = false;
    char name[64];

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL;
        int k, err;
        if (!no_more_opts && strcmp(arg, "--") == 0) {
            no_more_opts = true;
            continue;
        }
        if (!no_more_opts && arg[0] == '-' && arg[1] != '\0') {
            if ((k = match_opt(cmd->opts, argc, argv, &i, &val, &err)) >= 0)
                a->val[k] = val;
            else if (!err && (k = match_opt(global_opts, argc, argv, &i, &val, &err)) >= 0)
                g_val[k] = val;
            if (err) return err;
            if (k < 0)
                return ctl__fail(CTL_USAGE, "unknown option %s; see `gizctl %s%s%s --help`", arg,
                                 cmd->group ? cmd->group : "", cmd->group ? " " : "", cmd->verb);
            continue;
        }
        if (skip_words > 0) {
            skip_words--;
            continue;
        }
        if (a->npos >= CTL_MAX_POS) return ctl__fail(CTL_USAGE, "too many arguments");
        a->pos[a->npos++] = arg;
    }
    if (g_val[G_HELP] == NULL && (a->npos < cmd->min_pos || a->npos > cmd->max_pos)) {
        cmd_name(cmd, name, sizeof name);
        return ctl__fail(CTL_USAGE, "usage: gizctl %s %s (see `gizctl %s --help`)", name,
                         cmd->usage, name);
    }
    return CTL_OK;
}

int main(int argc, char **argv)
{
    struct ctl ctl;
    struct ctl_args args;
    const char *g_val[G_COUNT] = {0};
    int rc;

    memset(&ctl, 0, sizeof ctl);
    memset(&args, 0, sizeof args);
    signal(SIGPIPE, SIG_IGN); /* a broker closing on us is an error code, not a kill */
    giz_log_init("gizctl", GIZ_LOG_WARN);

    rc = resolve_cmd(argc, argv, &args.cmd);
    if (args.cmd == NULL) return rc;
    rc = parse_cmd_args(argc, argv, &args, g_val);
    if (rc != CTL_OK) return rc;
    if (g_val[G_HELP] != NULL) {
        usage_cmd(stdout, args.cmd);
        return CTL_OK;
    }
    ctl.json = g_val[G_JSON] != NULL;
    ctl.verbose = g_val[G_VERBOSE] != NULL;
    ctl.mqtts = g_val[G_MQTTS] != NULL;
    rc = ctl__config_resolve(&ctl, g_val[G_HTTP], g_val[G_MQTT_HOST], g_val[G_MQTT_PORT],
                             g_val[G_ADMIN_TOKEN], g_val[G_CONFIG], g_val[G_TIMEOUT],
                             g_val[G_CACERT]);
    if (rc != CTL_OK) return rc;
    rc = args.cmd->run(&ctl, &args);
    fflush(stdout);
    return rc;
}
