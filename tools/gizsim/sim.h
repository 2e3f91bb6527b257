/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizsim's private header: options, the preallocated per-device and per-app
 * state, the run-wide counters and error kinds, and the functions the
 * simulator files share (gizsim.c main loop, sim_device.c device state
 * machine, sim_app.c simulated apps, sim_report.c summary and JSON report).
 */
#ifndef GIZ_TOOLS_SIM_H
#define GIZ_TOOLS_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "giz/crypto.h"
#include "http_uv.h"
#include "mqttc_uv.h"
#include "util.h"

#define SIM_M2M_MAX 16 /* distinct M2M endpoints (brokers) a run tracks */

struct cJSON;
struct giz_msg;
struct giz_p0_schema;

/* ---- options ---------------------------------------------------------------- */
struct sim_opts {
    unsigned devices;
    unsigned apps;
    unsigned app_devices; /* devices bound per app */
    char http_url[300];
    char http_host[256];
    uint16_t http_port;
    char http_prefix[128];
    char mqtt_host[256]; /* "" = from provision */
    uint16_t mqtt_port;  /* 0 = from provision */
    char product_key[64];
    char admin_token[256]; /* only for --create-product */
    const char *state_path;
    const char *json_path;
    const char *create_product; /* --create-product NAME */
    double rate;                /* device starts per second */
    double duration_s;          /* 0 = until SIGINT / --until-ready */
    bool until_ready;           /* stop once every device (and app) is ready */
    double heartbeat_s;
    uint16_t keepalive;
    uint8_t mqtt_level; /* 3 = MQIsdp (firmware), 4 = MQTT */
    double backoff_scale;
    double connect_timeout_s;
    bool no_http, no_ota, no_app_count;
    int ota_type;
    char soft_version[24], hard_version[32];
    unsigned http_concurrency;
    unsigned http_timeout_ms;
    double report_rate; /* device 0x0091 reports per second, whole fleet */
    unsigned report_size;
    double log_interval_s; /* 0x0012 period per device with log bits on */
    double app_interval_s; /* command period per app */
    bool app_plain;        /* apps send 0x0090 (reply 0x0091) instead of 0x0093 */
    unsigned app_window;   /* >0: closed loop, at most this many in flight per app */
    unsigned app_payload;
    unsigned ping_flood, malformed, wrong_topic; /* how many devices misbehave */
    bool quiet;
    double progress_s;
    bool lenient;        /* --lenient: the old tolerant reader (no firmware limits, no downloads) */
    int ota_version;     /* 41 (update_and_check) or 40 (target_fid) for the OTA check */
    const char *cacert;  /* --cacert: PEM CA for MQTTS (NULL = system store) */
    uint16_t mqtts_port; /* --mqtts-port (default 8883) */
    bool app_tls, device_tls; /* --app-tls / --device-tls: MQTT over TLS */
    const char *datapoints;   /* --datapoints FILE: devices speak p0 (sim_p0.c) */
    /* OTA behaviours of a share of the fleet (campaign tests) */
    double ota_refuse_ratio;  /* devices that never download what they are offered */
    double ota_corrupt_ratio; /* devices whose download is corrupted (MD5 failure) */
};

/* ---- error kinds -------------------------------------------------------------- */
#define SIM_ERRORS(X)                                                                              \
    X(HTTP_CONNECT, "http_connect")                                                                \
    X(HTTP_TIMEOUT, "http_timeout")                                                                \
    X(HTTP_IO, "http_io")                                                                          \
    X(REGISTER_REFUSED, "register_refused")                                                        \
    X(PROVISION_REFUSED, "provision_refused")                                                      \
    X(PROVISION_BAD, "provision_bad_answer")                                                       \
    X(OTA_STATUS, "ota_check_failed")                                                              \
    X(MQTT_CONNECT, "mqtt_connect")                                                                \
    X(CONNACK_REFUSED, "connack_refused")                                                          \
    X(LOGIN_TIMEOUT, "login_timeout")                                                              \
    X(SUBACK_REFUSED, "suback_refused")                                                            \
    X(PING_TIMEOUT, "ping_timeout")                                                                \
    X(PEER_CLOSED, "peer_closed")                                                                  \
    X(IO_ERROR, "io_error")                                                                        \
    X(BAD_STREAM, "bad_stream")                                                                    \
    X(BAD_PAYLOAD, "bad_payload_in")                                                               \
    X(BAD_TOPIC, "unexpected_topic")                                                               \
    X(APP_HTTP, "app_http")                                                                        \
    X(APP_BIND, "app_bind")                                                                        \
    X(APP_MQTT, "app_mqtt")                                                                        \
    X(APP_ACK_LOST, "app_ack_lost")                                                                \
    X(NOMEM, "out_of_memory")

enum sim_err {
#define SIM__ERR_ENUM(id, name) SIM_ERR_##id,
    SIM_ERRORS(SIM__ERR_ENUM)
#undef SIM__ERR_ENUM
        SIM_ERR_COUNT
};

/* ---- why a firmware download failed --------------------------------------------- */
#define SIM_DL_FAILS(X)                                                                            \
    X(UNKNOWN_HOST, "unknown_host") /* URL host has ':' / not http:// / no DNS */                  \
    X(CONNECT, "connect")           /* no TCP connection to the host */                            \
    X(STATUS, "http_status")        /* status between the first spaces != 200 */                   \
    X(MD5, "md5_mismatch")          /* the image written does not match */                         \
    X(SHORT, "short")               /* closed / timed out before Content-Length */

enum sim_dl_fail {
#define SIM__DLF_ENUM(id, name) SIM_DLF_##id,
    SIM_DL_FAILS(SIM__DLF_ENUM)
#undef SIM__DLF_ENUM
        SIM_DL_FAIL_COUNT
};

/* ---- counters ------------------------------------------------------------------- */
struct sim_stats {
    uint64_t registered, reused, provisioned, ota_checks, ota_offered;
    uint64_t ota_pushes_seen, ota_v41, ota_v40;
    uint64_t mqtt_attempts, connected_ever, ready_now, ready_at_stop, reconnects, disconnects;
    uint64_t app_count_msgs, noti_msgs, app_count_req;
    uint64_t biz_in, biz_replies, acks_sent, log_level_sets, logs_sent;
    uint64_t pings_sent, pongs, reports_sent;
    uint64_t p0_writes, p0_reads, p0_reports, p0_bad; /* sim_p0.c */
    uint64_t flood_pings, malformed_sent, wrong_topic_sent;
    uint64_t pub_in, pub_out;
    /* strict firmware emulation */
    uint64_t pub_before_suback; /* PUBLISHes dropped: arrived before the third SUBACK */
    uint64_t dl_started, dl_ok, dl_failed;
    uint64_t ota_refused, ota_progress_sent; /* offers declined; 0x022C reports */
    uint64_t dl_fail[SIM_DL_FAIL_COUNT];
    /* apps */
    uint64_t app_users, app_logins, app_bound, app_ready_now, app_ready_at_stop, app_cmds, app_acks,
        app_replies, app_logs, app_other;
    uint64_t errors[SIM_ERR_COUNT];
};

/* ---- devices ------------------------------------------------------------------------ */
enum dev_phase {
    DEV_IDLE = 0,   /* not started */
    DEV_HTTP,       /* register / provision / OTA check before MQTT */
    DEV_CONNECTING, /* TCP + CONNACK + 3 SUBACKs */
    DEV_READY,      /* logged in and subscribed */
    DEV_BACKOFF,    /* waiting to reconnect */
    DEV_STOPPED
};
enum dev_http_op { HOP_NONE = 0, HOP_REGISTER, HOP_PROVISION, HOP_OTA, HOP_OTA40, HOP_DOWNLOAD };

/* A firmware download in progress (strict mode), allocated while it runs. */
struct sim_download {
    struct giz_md5 *md5;      /* of the bytes "written", as firmware hashes them */
    uint64_t filelen, offset; /* Content-Length; bytes written so far */
    struct sockaddr_storage addr;
    char host[128]; /* the URL's host part (Host header) */
    char path[512];
    char want_md5[33];    /* Firmware-MD5 header ("" = none) */
    char new_version[32]; /* soft version offered */
    uint32_t new_fid;     /* v4.0 target fid (0 for v4.1) */
    int fail;             /* enum sim_dl_fail, -1 = none yet */
    bool first;           /* the next read is the first (headers) */
};

#define SIM_MIS_PING_FLOOD 0x01u
#define SIM_MIS_MALFORMED 0x02u
#define SIM_MIS_WRONG_TOPIC 0x04u
#define SIM_OTA_REFUSE 0x01u   /* --ota-refuse-ratio picked this device */
#define SIM_OTA_CORRUPT 0x02u  /* --ota-corrupt-ratio picked this device */
#define SIM_REPORT_SUCCESS 1u  /* 0x022C "success" + 0x021C new version */
#define SIM_REPORT_MD5_FAIL 2u /* 0x022C "md5 fail" */

struct sim;

struct sim_device {
    struct sim *sim;
    uint8_t m2m; /* the endpoint its last provision answered (sim__set_m2m) */
    struct mqttc mq;
    uv_timer_t timer; /* login timeout / heartbeat / back-off */
    struct http_uv_req *http;
    double t_start; /* when this connection attempt began (ms) */
    double t_log;   /* next 0x0012 due (ms) */
    uint32_t idx;
    uint32_t failures; /* consecutive failed attempts */
    uint32_t ota_checks, ota_pushes, app_count_msgs, attempts;
    uint32_t log_seq, mis_seq;
    uint16_t log_bits;
    uint16_t app_count;
    uint8_t phase;   /* enum dev_phase */
    uint8_t http_op; /* enum dev_http_op */
    uint8_t http_queued;
    uint8_t sub_step; /* SUBACKs received in this attempt */
    uint8_t missed_pongs;
    uint8_t misbehave;
    uint8_t ota_behave; /* SIM_OTA_* */
    uint8_t ota_report; /* SIM_REPORT_*: OTA reports due once logged in */
    uint8_t ever_ready;
    uint8_t ota_after;    /* 1: boot chain (OTA then MQTT), 2: provision then MQTT */
    uint8_t ota_pending;  /* a push arrived while a request was running */
    uint8_t ota_v40_next; /* the next OTA check is v4.0 (after a 0x020E) */
    uint32_t current_fid; /* v4.0: fid of the installed firmware, 0 = none */
    uint32_t downloads_ok, downloads_failed;
    struct sim_download *dl;
    char soft_version[24]; /* installed; starts at --soft-version, bumped by downloads */
    char did[24];
    char passcode[17];
    char mac[13];
    struct cJSON *p0_state; /* sim_p0.c: attribute values (NULL until first used) */
};

/* ---- apps ------------------------------------------------------------------------------ */
enum app_phase { APP_IDLE = 0, APP_HTTP, APP_CONNECTING, APP_READY, APP_BACKOFF, APP_STOPPED };
enum app_http_op { AOP_NONE = 0, AOP_CREATE, AOP_LOGIN, AOP_BIND };
#define SIM_APP_RING 64

struct sim_app {
    struct sim *sim;
    struct mqttc mq;
    uv_timer_t timer;
    struct http_uv_req *http;
    uint32_t idx;
    uint32_t first_dev, ndevs, next_dev;
    uint32_t subs_pending;
    uint32_t sn;
    uint32_t inflight; /* commands awaiting their answer */
    uint32_t ring_sn[SIM_APP_RING];
    double ring_t[SIM_APP_RING];
    uint8_t phase, http_op;
    char username[48];
    char password[24];
    char uid[64];
    char token[160];
    char client_id[40];
};

/* ---- the run ------------------------------------------------------------------------------ */
struct sim {
    struct sim_opts o;
    uv_loop_t *loop;
    struct sim_device *devs;
    struct sim_app *apps;
    struct sim_stats st;
    struct util_samples rtt, connect_ms, http_ms;
    struct sockaddr_storage http_addr;
    struct sockaddr_storage mqtt_addr;
    bool mqtt_addr_set;
    struct sockaddr_storage mqtts_addr;
    bool mqtts_addr_set;
    SSL_CTX *tls;       /* client context for MQTTS, NULL when unused */
    char m2m_host[256]; /* the first provisioned M2M endpoint (and --mqtt-host/--mqtt-port) */
    uint16_t m2m_port;
    /* Further endpoints provision handed out (several brokers, issue 18): device
     * d connects to endpoint d->m2m (0 = the one above, i = m2m_more[i - 1]). */
    struct {
        char host[256];
        uint16_t port;
        struct sockaddr_storage addr, tls_addr;
        bool tls_set;
    } m2m_more[SIM_M2M_MAX - 1];
    unsigned m2m_more_n;
    uv_timer_t ramp_timer, tick_timer, progress_timer, stop_timer;
    uv_signal_t sig_int, sig_term, sig_usr1;
    uint32_t started;     /* devices started by the ramp */
    uint32_t *http_queue; /* FIFO of device indices waiting for an HTTP slot */
    uint32_t hq_head, hq_len;
    unsigned http_inflight;
    uint32_t report_cursor;
    double report_credit;
    double t0, t_ramp_done, t_all_ready, t_stop;
    bool apps_started, stopping, all_ready_said, state_dirty;
    uint64_t last_in, last_out;
    double last_progress;
    double peak_in_rate, peak_out_rate, in_rate, out_rate;
    uint32_t ticks;
    uint64_t rng;
    uint8_t run_tag[8];       /* distinguishes users / MACs of this run */
    struct giz_p0_schema *p0; /* --datapoints, NULL = devices do not speak p0 */
    char run_hex[17];
};

/* ---- gizsim.c ---------------------------------------------------------------------------- */
/* Counts one error of `kind`. */
void sim__error(struct sim *s, enum sim_err kind);
/* Asks for an HTTP slot for device d; sim_device.c's sim__dev_http_go is
 * called once one is free (maybe at once). */
void sim__http_acquire(struct sim *s, struct sim_device *d);
/* Returns a slot taken by a device (call when its request finished). */
void sim__http_release(struct sim *s);
/* Checks whether everything is ready (stops with --until-ready, starts apps). */
void sim__check_ready(struct sim *s);
/* The endpoint index of a provision answer's M2M host/port, resolved once per
 * distinct endpoint (several brokers answer different ones; beyond
 * SIM_M2M_MAX the first is used). >= 0, or -1 if it does not resolve. */
int sim__set_m2m(struct sim *s, const char *host, uint16_t port);
/* Prepares c for a connection (TLS or not) to endpoint `m2m` (0: the first)
 * and returns where it goes, or NULL when the MQTTS address does not resolve. */
const struct sockaddr *sim__mqtt_target(struct sim *s, struct mqttc *c, bool tls, unsigned m2m);

/* ---- sim_device.c ------------------------------------------------------------------------ */
void sim__dev_init(struct sim *s, struct sim_device *d, uint32_t idx);
/* true if device idx belongs to the share `ratio` (0..1) of the fleet:
 * floor(ratio * n) of the first n devices, spread over the indexes. */
bool sim__dev_picked(uint32_t idx, double ratio);
void sim__dev_start(struct sim_device *d);
void sim__dev_http_go(struct sim_device *d);
/* Periodic work (logs, floods, malformed traffic), called by the tick timer. */
void sim__dev_tick(struct sim_device *d, double now);
/* Sends one 0x0091 report on dev2app/<DID>; returns false when not ready. */
bool sim__dev_report(struct sim_device *d);
void sim__dev_stop(struct sim_device *d);

/* ---- sim_p0.c: devices that speak data points ------------------------------------------- */
/* Reads and parses --datapoints FILE into s->p0. 0, or an exit code after a message. */
int sim__p0_load(struct sim *s, const char *path);
/* Frees the devices' states and the schema. */
void sim__p0_free(struct sim *s);
/* Publishes the device's whole status (0x04 / 0x14) on dev2app/<DID>. */
void sim__p0_report(struct sim_device *d);
/* A 0x0090 / 0x0093 from app `cid`: applies a write or answers a read and
 * returns true; false for anything else (the caller echoes it). */
bool sim__p0_handle(struct sim_device *d, const char *cid, const struct giz_msg *in);

/* ---- sim_app.c ------------------------------------------------------------------------------ */
void sim__app_init(struct sim *s, struct sim_app *a, uint32_t idx);
void sim__app_start(struct sim_app *a);
void sim__app_stop(struct sim_app *a);

/* ---- sim_report.c -----------------------------------------------------------------------------
 */
const char *sim__err_name(enum sim_err kind);
const char *sim__dl_fail_name(enum sim_dl_fail kind);
/* Updates the current and peak publish rates (called once a second). */
void sim__rates(struct sim *s, double now);
/* Prints the one-line progress (stderr). */
void sim__progress(struct sim *s, double now);
/* Prints the human summary to stderr. */
void sim__summary(struct sim *s);
/* Writes the JSON report to path ("-" = stdout). Returns 0 or -1. */
int sim__write_json(struct sim *s, const char *path);

#endif
