/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl's private header: the resolved configuration, the command table
 * types, exit codes and the helpers shared by the command files
 * (ctl_admin.c operator commands, ctl_app.c app account commands,
 * ctl_live.c MQTT commands, ctl_http.c HTTP+JSON, ctl_config.c settings).
 */
#ifndef GIZ_TOOLS_CTL_H
#define GIZ_TOOLS_CTL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- exit codes (documented in `gizctl help exit-codes`) ---------------- */
enum ctl_exit {
    CTL_OK = 0,          /* success */
    CTL_USAGE = 1,       /* bad command line, missing login or setting */
    CTL_REFUSED = 2,     /* the cloud refused: HTTP 4xx, CONNACK refused, SUBACK failure */
    CTL_UNREACHABLE = 3, /* GService or broker not reachable / connection lost */
    CTL_TIMEOUT = 4,     /* no (complete) answer in time: HTTP, CONNACK, device reply */
    CTL_SERVER = 5,      /* the cloud failed: HTTP 5xx or an answer we cannot parse */
    CTL_LOCAL = 6        /* local problem: file unreadable, config not writable */
};

/* ---- configuration -------------------------------------------------------- */
struct ctl {
    /* where settings came from is resolved once: flags > env > config file */
    char http_url[300];
    char http_host[256];
    uint16_t http_port;
    char http_prefix[128];
    bool http_tls;     /* https:// GService URL */
    char cacert[1024]; /* PEM CA file for HTTPS and MQTTS, "" = system store */
    bool mqtts;        /* MQTT over TLS (--mqtts) */
    char admin_token[256];
    char mqtt_host[256]; /* "" = take it from the bindings answer */
    uint16_t mqtt_port;  /* 0 = take it from the bindings answer */
    char config_path[1024];
    int timeout_ms;
    bool json;
    bool verbose;
    /* app login state, saved in the config file by `login` */
    char username[128];
    char uid[128];
    char token[512];
    char mqtt_client_id[64];
    long long expire_at;
    char app_id[64]; /* X-Gizwits-Application-Id to send, "" = none */
};

/* ---- command table ------------------------------------------------------- */
struct ctl_opt {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 = none */
    const char *arg;  /* argument placeholder, NULL for a flag */
    const char *help;
};

#define CTL_MAX_OPTS 16
#define CTL_MAX_POS 16

struct ctl_args {
    const struct ctl_cmd *cmd;
    const char *pos[CTL_MAX_POS];
    int npos;
    const char *val[CTL_MAX_OPTS]; /* by index into cmd->opts; flags get "1" */
};

struct ctl_cmd {
    const char *group; /* NULL for flat verbs like `login` */
    const char *verb;
    const char *usage; /* positional part, e.g. "DID PASSCODE" */
    const char *summary;
    const char *details; /* printed by --help, may be NULL */
    int min_pos, max_pos;
    const struct ctl_opt *opts; /* terminated by a zero entry; may be NULL */
    int (*run)(struct ctl *ctl, const struct ctl_args *a);
};

/* Value of a command option by long name, or NULL when not given. */
const char *ctl__opt(const struct ctl_args *a, const char *name);
/* True if a flag option was given. */
bool ctl__flag(const struct ctl_args *a, const char *name);

/* Prints "gizctl: <message>\n" to stderr and returns `code`. */
int ctl__fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- ctl_config.c ---------------------------------------------------------- */
/* Fills ctl from flags already stored in it (non-empty fields win), then the
 * environment, then the config file. Returns CTL_OK or CTL_USAGE. */
int ctl__config_resolve(struct ctl *ctl, const char *flag_http, const char *flag_mqtt_host,
                        const char *flag_mqtt_port, const char *flag_admin_token,
                        const char *flag_config, const char *flag_timeout, const char *flag_cacert);
/* Writes the login state (and nothing else we did not read) to the config
 * file with mode 0600, atomically. Returns CTL_OK or CTL_LOCAL. */
int ctl__config_save(const struct ctl *ctl);
/* Reads a password: --password-stdin (first line of stdin), GIZCTL_PASSWORD,
 * --password, or an echo-less prompt when stdin is a terminal. Returns
 * CTL_OK or CTL_USAGE. */
int ctl__read_password(const struct ctl_args *a, const char *prompt, char *out, size_t cap);
int ctl__cmd_config(struct ctl *ctl, const struct ctl_args *a);

/* ---- ctl_http.c ------------------------------------------------------------ */
enum ctl_auth { CTL_AUTH_NONE, CTL_AUTH_ADMIN, CTL_AUTH_USER };
/* Requests go through libcurl (http:// and https://, --cacert). */
/* One JSON request to the GService. `body` may be NULL. On success (2xx)
 * returns CTL_OK and sets *out (caller frees with cJSON_Delete; may be NULL
 * for an empty body). Any failure is reported on stderr with a hint and the
 * matching exit code is returned. */
int ctl__http_json(struct ctl *ctl, const char *method, const char *path, const cJSON *body,
                   enum ctl_auth auth, cJSON **out);
/* Same with a raw body (e.g. a firmware upload). */
int ctl__http_raw(struct ctl *ctl, const char *method, const char *path, const char *ctype,
                  const void *body, size_t len, enum ctl_auth auth, cJSON **out);
/* Prints a JSON value compactly (--json) to stdout. */
void ctl__print_json(const cJSON *v);
/* Prints an answer: compact JSON with --json, else through text(out). */
void ctl__print_answer(const struct ctl *ctl, const cJSON *out, void (*text)(const cJSON *out));
/* GETs path (JSON answer) and prints it with ctl__print_answer. Returns what
 * ctl__http_json returned (failures are reported there). */
int ctl__get_print(struct ctl *ctl, const char *path, enum ctl_auth auth,
                   void (*text)(const cJSON *out));
/* String field or "" / number field as text into buf. */
const char *ctl__jstr(const cJSON *obj, const char *key);
const char *ctl__jtext(const cJSON *obj, const char *key, char *buf, size_t cap);

/* ---- commands ---------------------------------------------------------------- */
int ctl__cmd_product_create(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_product_list(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_device_list(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_device_show(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_broker_list(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_firmware_register(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_firmware_upload(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_ota_push(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_firmware_list(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_logs_tail(struct ctl *ctl, const struct ctl_args *a);
/* operator control and paging (helper "admin") */
int ctl__cmd_device_control(struct ctl *ctl, const struct ctl_args *a); /* disable|enable|kick */
int ctl__cmd_device_delete(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_firmware_show(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_firmware_delete(struct ctl *ctl, const struct ctl_args *a);
/* ctl_events.c: the device timeline, stored and live. */
int ctl__cmd_device_events(struct ctl *ctl, const struct ctl_args *a);
/* ctl_datapoint.c: product datapoints PK import FILE | export. */
int ctl__cmd_product_datapoints(struct ctl *ctl, const struct ctl_args *a);

/* ctl_campaign.c: ota campaign create|list|show|follow|pause|resume|cancel. */
int ctl__cmd_ota_campaign(struct ctl *ctl, const struct ctl_args *a);

int ctl__cmd_user_create(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_login(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_logout(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_bind(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_unbind(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_bindings(struct ctl *ctl, const struct ctl_args *a);
/* Requires a saved login; prints the hint and returns CTL_USAGE otherwise. */
int ctl__need_login(const struct ctl *ctl);

int ctl__cmd_send(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_log_level(struct ctl *ctl, const struct ctl_args *a);
int ctl__cmd_watch(struct ctl *ctl, const struct ctl_args *a);

#endif
