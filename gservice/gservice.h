/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private header of giz-gservice, the HTTP half of gizcloud: configuration,
 * the server context, the per-request state shared by the libmicrohttpd
 * daemons (daemon.c), the request life cycle (request.c), the route table
 * (router.c) and the route handlers (route_*.c), the input and response
 * helpers (input.c, respond.c, validate.c, device_answer.c), the store pool
 * (store_pool.c) and the metrics. Nothing here is used outside gservice/.
 */
#ifndef GSERVICE_H
#define GSERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>

#include <microhttpd.h>

#include "giz/crypto.h"
#include "giz/store.h"
#include "giz/util.h"

struct cJSON;

/* ======================================================================
 * Configuration (config.c)
 * ====================================================================== */

#define GS_DEFAULT_MAX_BODY (64u * 1024u)
#define GS_DEFAULT_MAX_UPLOAD (16u * 1024u * 1024u)
#define GS_DEFAULT_TOKEN_TTL (7 * 24 * 3600)
#define GS_HOST_SIZE 256
#define GS_DEFAULT_HEAD_TIMEOUT 10
#define GS_DEFAULT_IDLE_TIMEOUT 30
#define GS_DEFAULT_PER_IP_LIMIT 256
#define GS_DEFAULT_MAX_CONNECTIONS 4000
#define GS_DEFAULT_ADMIN_FAIL_LIMIT 10
#define GS_DEFAULT_BROKER_MAX_AGE 8 /* s: four missed 2 s heartbeats */
#define GS_DEFAULT_EVENTS_PER_DEVICE 1000
#define GS_DEFAULT_EVENTS_TOTAL 1000000u
#define GS_DEFAULT_EVENTS_QUEUE 65536
#define GS_DEFAULT_EVENT_STREAMS 32
/* TLS 1.2 and 1.3 only; in 1.2 only ECDHE key exchange (forward secrecy)
 * with AEAD ciphers (no CBC, no SHA-1 MACs, no static RSA, no DHE). */
#define GS_DEFAULT_TLS_PRIORITIES                                                                  \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

struct gs_config {
    unsigned http_port;
    char bind_addr[64];
    char data_dir[GIZ_PATH_SIZE]; /* absolute after gs_config_finish() */
    char db_path[GIZ_PATH_SIZE];
    char db_shown[GIZ_PATH_SIZE];     /* db_path for log lines (a URI's password hidden) */
    char firmware_dir[GIZ_PATH_SIZE]; /* data_dir + "/firmware" */
    char admin_token[256];            /* never logged; wiped once its digest is made */
    char m2m_host[GS_HOST_SIZE];
    unsigned m2m_port;
    unsigned m2m_tls_port;         /* 0 = none */
    char public_url[GIZ_URL_SIZE]; /* no trailing slash, no ":80" after an http:// host */
    unsigned advertised_port;      /* HTTP port put in download URLs; 0 = http_port */
    unsigned https_port;           /* 0 = no HTTPS listener */
    char tls_cert[GIZ_PATH_SIZE];
    char tls_key[GIZ_PATH_SIZE];
    int log_level; /* enum giz_log_lvl */
    unsigned threads;
    size_t max_body;
    uint64_t max_upload;
    int64_t token_ttl;
    /* hostile clients (guard.c, daemon.c, request.c) */
    unsigned head_timeout;            /* s for a complete request head; 0 = off */
    unsigned idle_timeout;            /* s of inactivity before a connection is closed */
    unsigned per_ip_limit;            /* connections per client address; 0 = no limit */
    unsigned max_connections;         /* all connections, per daemon */
    unsigned admin_fail_limit;        /* wrong admin tokens per address per minute; 0 = off */
    char tls_priorities[256];         /* GnuTLS priority string of the HTTPS daemon */
    unsigned broker_max_age;          /* s of broker heartbeat silence before it counts as down */
    char passcode_key[GIZ_PATH_SIZE]; /* key file of the keyed passcode verifier; "" = beside db */
    /* the device timeline (events.c, route_events.c) */
    unsigned events;            /* 1 = record device-API events (default), 0 = off */
    unsigned events_per_device; /* newest events kept per device */
    uint64_t events_total;      /* events kept in all */
    unsigned events_queue;      /* events waiting for the writer; more are dropped */
    unsigned event_streams;     /* concurrent GET /admin/events/stream */
};

/* Fills `cfg` from defaults, then the environment, then argv (flags win).
 * Returns 0 to run, 1 when --help was printed (exit 0), -1 on a bad value or
 * a missing GIZ_ADMIN_TOKEN (a message has been printed to stderr). */
int gs_config_load(struct gs_config *cfg, int argc, char **argv);
/* Logs (once, at start-up, after giz_log_init) what in the configuration
 * real devices cannot use: download URLs that are not plain http:// on
 * port 80 (firmware ignores the URL's port and always connects to 80). */
void gs_config_warn(const struct gs_config *cfg);
/* Removes a redundant ":80" from the authority of an http:// URL in place
 * ("http://h:80/x" -> "http://h/x"): firmware takes everything between
 * "http://" and the first '/' as the host name. Other URLs are unchanged. */
void gs_url_drop_port80(char *url);

/* Where a device (or an app, for a device) finds its M2M broker. Every
 * answer that hands out a broker address goes through here. With brokers in
 * the store's registry (schema 012): the device's broker while it lives,
 * else the least-loaded live one (recorded for the device when `assign`:
 * provision); a broker that advertises no host/port gets the configured
 * GIZ_M2M_HOST / GIZ_M2M_PORT (/ GIZ_M2M_TLS_PORT). No live broker (or st
 * NULL, or a store error): the configured address, broker "". */
struct gs_server;
struct gs_m2m_route {
    char host[GIZ_BROKER_HOST_SIZE];
    unsigned port;
    unsigned port_s;                   /* TLS port, 0 = none */
    char broker[GIZ_BROKER_NAME_SIZE]; /* "" = no live broker: the configured address */
};
void gs_m2m_route_for_did(struct gs_server *srv, struct giz_store *st, const char *did, bool assign,
                          struct gs_m2m_route *out);
/* GIZ_BROKER_MAX_AGE in ms. */
int64_t gs_broker_max_age_ms(const struct gs_server *srv);

/* ======================================================================
 * Store pool (store_pool.c): giz_store handles are not thread-safe, so every
 * request borrows one for its duration.
 * ====================================================================== */

#define GS_POOL_MAX 16

/* Pool connections never checkpoint the WAL inside a commit (SQLite's
 * automatic checkpoint fsyncs there: 0.15 to 1.1 s of fdatasync in the
 * request threads per 2,000 gizsim devices on the shared bench disk); once a
 * commit leaves the WAL at GS_CKPT_FRAMES pages or more (SQLite's own
 * threshold), a checkpoint thread with its own connection runs a passive
 * checkpoint. */
#define GS_CKPT_FRAMES 1000

struct gs_store_pool {
    pthread_mutex_t mu;
    char path[GIZ_PATH_SIZE];
    char shown[GIZ_PATH_SIZE]; /* path for log lines (giz_store_path_display) */
    /* The keyed passcode verifier's key (GIZ_PASSCODE_KEY), loaded once by
     * gs_store_key_load() before the first request; set on every connection
     * the pool or the checkpoint thread opens. Wiped by gs_http_stop(). */
    struct giz_passcode_key pkey;
    bool pkey_set;
    struct giz_store *idle[GS_POOL_MAX];
    unsigned n_idle;
    /* checkpoint thread */
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    pthread_t ckpt_thread;
    bool ckpt_started, ckpt_due, ckpt_stop;
};

/* Loads the passcode key file `path` ("" = giz_store_passcode_key_default
 * of the pool's database; created 0600, or 0640 when the database file is
 * group-readable, if missing) into pool->pkey and sets it on `st` (a
 * connection already borrowed, may be NULL). 0, or -1 with one line logged
 * saying why (a key file open to other users, malformed, unreadable): the
 * caller must refuse to start. */
int gs_store_key_load(struct gs_store_pool *pool, const char *path, struct giz_store *st);
/* Borrows a connection (opening one if none is idle). NULL on failure
 * (logged). Give it back with gs_store_release(). */
struct giz_store *gs_store_acquire(struct gs_store_pool *pool);
/* Returns a connection to the pool (closes it if the pool is full). NULL ok. */
void gs_store_release(struct gs_store_pool *pool, struct giz_store *st);
/* Starts the checkpoint thread (0, or -1 logged; pool connections then fall
 * back to SQLite's automatic checkpoint). Stopped by gs_http_stop(). */
int gs_store_checkpointer_start(struct gs_store_pool *pool);
/* Closes the idle connections, stops the checkpoint thread and wipes the
 * passcode key (gs_http_stop calls it; safe on a half-started pool and twice). */
void gs_store_pool_close(struct gs_store_pool *pool);

/* ======================================================================
 * Routes and metrics
 * ====================================================================== */

/* Route ids; GS_ROUTE_NONE is "no path matched". Names in gs_route_name(). */
enum gs_route_id {
    GS_ROUTE_NONE = 0,
    GS_ROUTE_HEALTHZ,
    GS_ROUTE_METRICS,
    GS_ROUTE_DEV_DEVICES,    /* POST register, DELETE unregister */
    GS_ROUTE_DEV_PROVISION,  /* GET /dev/devices/<did> */
    GS_ROUTE_DEV_SAFE,       /* POST/GET /dev/<pk>/device */
    GS_ROUTE_OTA_CHECK,      /* POST /dev/ota/v4.1/update_and_check/<did> */
    GS_ROUTE_OTA_TARGET_FID, /* GET /dev/ota/target_fid */
    GS_ROUTE_OTA_LATEST,     /* GET /dev/ota/v4.1/latest */
    GS_ROUTE_OTA_DOWNLOAD,   /* GET /dev/ota[/v4.1]/download/<id> */
    GS_ROUTE_ADMIN_PRODUCTS,
    GS_ROUTE_ADMIN_DEVICES,
    GS_ROUTE_ADMIN_DEVICE,
    GS_ROUTE_ADMIN_DEVICE_LOGS,
    GS_ROUTE_ADMIN_FIRMWARE,
    GS_ROUTE_ADMIN_OTA_PUSH,
    GS_ROUTE_APP_USERS,
    GS_ROUTE_APP_LOGIN,
    GS_ROUTE_APP_BINDINGS,
    GS_ROUTE_ADMIN_DEVICE_EVENTS,  /* GET /admin/devices/<did>/events */
    GS_ROUTE_ADMIN_EVENT_STREAM,   /* GET /admin/events/stream */
    GS_ROUTE_ADMIN_DEVICE_DISABLE, /* POST /admin/devices/<did>/disable */
    GS_ROUTE_ADMIN_DEVICE_ENABLE,  /* POST /admin/devices/<did>/enable */
    GS_ROUTE_ADMIN_DEVICE_KICK,    /* POST /admin/devices/<did>/kick */
    GS_ROUTE_ADMIN_FIRMWARE_ITEM,  /* GET/DELETE /admin/firmware/<id> */
    GS_ROUTE_OPENAPI,              /* GET /openapi.json */
    GS_ROUTE_APP_BINDING,          /* PUT /app/bindings/<did> */
    GS_ROUTE_APP_BIND_MAC,         /* POST /app/bind_mac */
    GS_ROUTE_APP_DEVICE,           /* GET /app/devices/<did> */
    GS_ROUTE_APP_RAW_DATA,         /* GET /app/devices/<did>/raw_data */
    GS_ROUTE_APP_CONTROL,          /* POST /app/control/<did> */
    GS_ROUTE_WS_APP,               /* GET /ws/app/v1 (WebSocket upgrade; ws_route.c) */
    GS_ROUTE_ADMIN_DATAPOINTS,     /* PUT/GET /admin/products/<pk>/datapoints (route_datapoint.c) */
    GS_ROUTE_APP_DATAPOINT,        /* GET /app/datapoint?product_key= */
    GS_ROUTE_APP_DEVDATA_LATEST,   /* GET /app/devdata/<did>/latest */
    GS_ROUTE_ROOT,                 /* GET / -> 302 /console/ (route_console.c) */
    GS_ROUTE_CONSOLE,              /* GET /console/... the web console's files */
    GS_ROUTE_CONSOLE_STREAM,       /* GET /console/stream?ticket= (the event stream) */
    GS_ROUTE_ADMIN_STREAM_TICKET,  /* POST /admin/events/ticket */
    GS_ROUTE_ADMIN_DEVICE_SEND,    /* POST /admin/devices/<did>/send */
    GS_ROUTE_ADMIN_DEVICE_SEARCH,  /* GET /admin/device_search?q= */
    GS_ROUTE_ADMIN_DEVICE_LATEST,  /* GET /admin/devices/<did>/latest (data points) */
    GS_ROUTE_ADMIN_CAMPAIGNS,      /* GET/POST /admin/ota/campaigns (route_campaign.c) */
    GS_ROUTE_ADMIN_CAMPAIGN,       /* GET /admin/ota/campaigns/<id> */
    GS_ROUTE_ADMIN_CAMPAIGN_ACTION, /* POST /admin/ota/campaigns/<id>/pause|resume|cancel */
    GS_ROUTE_ADMIN_BROKERS,         /* GET /admin/brokers (route_admin.c) */
    GS_ROUTE_COUNT
};
const char *gs_route_name(enum gs_route_id id);

#define GS_HIST_BUCKETS 14 /* + Inf */
#define GS_CODE_SLOTS 16   /* Gizwits error_code slots of the request counters (metrics.c) */

struct gs_metrics {
    /* requests[route][status slot][error_code slot; 0 = none answered] */
    atomic_uint_fast64_t requests[GS_ROUTE_COUNT][16][GS_CODE_SLOTS];
    atomic_uint_fast64_t latency_bucket[GS_ROUTE_COUNT][GS_HIST_BUCKETS + 1];
    atomic_uint_fast64_t latency_sum_us[GS_ROUTE_COUNT];
    atomic_uint_fast64_t latency_count[GS_ROUTE_COUNT];
    atomic_uint_fast64_t bytes_out;
    atomic_uint_fast64_t ota_pushes;
    atomic_uint_fast64_t firmware_uploads;
    atomic_uint_fast64_t head_timeouts;   /* connections cut for a late request head */
    atomic_uint_fast64_t admin_throttled; /* admin calls refused with 429 */
    int64_t started_at;
};

/* Records one finished request (thread-safe, lock-free). */
void gs_metrics_observe(struct gs_metrics *m, enum gs_route_id route, unsigned status,
                        uint64_t duration_us, uint64_t bytes);
/* The same with the Gizwits error_code it answered (0 = none). */
void gs_metrics_observe_code(struct gs_metrics *m, enum gs_route_id route, unsigned status,
                             int giz_code, uint64_t duration_us, uint64_t bytes);

/* The timeline writer (events.c): a bounded queue drained by one thread. */
struct gs_event_item;
struct gs_events {
    bool started, stop; /* started: set before the daemons, cleared after */
    pthread_mutex_t mu; /* ring, n, head, stop, unrecorded_drops */
    pthread_cond_t cv;
    pthread_t thread;
    struct gs_event_item *ring;
    unsigned cap, head, n;
    uint64_t unrecorded_drops;    /* dropped, not yet counted in the store */
    atomic_uint_fast64_t written; /* appended to the store */
    atomic_uint_fast64_t dropped; /* queue full, too big, or a failed write */
    atomic_uint_fast64_t pruned;  /* removed by the retention bounds */
    atomic_uint streams;          /* open GET /admin/events/stream answers */
    /* live streams (route_events.c): suspended while nothing is new; a
     * ticker thread resumes them every GS_STREAM_TICK_MS to poll the store */
    bool streams_init, streams_stop, ticker_started;
    pthread_mutex_t smu; /* the stream list, each one's suspended flag */
    pthread_cond_t scv;
    pthread_t ticker;
    struct gs_stream *stream_head;
};
struct gs_stream;

/* ======================================================================
 * Server and request
 * ====================================================================== */

/* Hostile-client protections (guard.c). */
#define GS_FAIL_SLOTS 1024
struct gs_fail_slot {
    char ip[48];
    uint64_t window_start_us;
    unsigned failures;
};
struct gs_conn;
struct gs_guard {
    bool initialized, started, stop;
    pthread_mutex_t mu; /* the connection list */
    struct gs_conn *head;
    unsigned n_conns;
    pthread_t thread;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    uint64_t cut_pending, cut_reported_us; /* reaper thread only */
    pthread_mutex_t amu;                   /* fails[] */
    struct gs_fail_slot fails[GS_FAIL_SLOTS];
    pthread_mutex_t lmu; /* log limiter */
    char log_last[256];
    uint64_t log_last_us, log_held;
};

/* The OTA campaign engine (campaign.c): its thread and what GET /metrics shows. */
#define GS_CAMPAIGN_TICK_MS 500
#define GS_CAMPAIGN_NOTICE_BATCH 2000u /* notices per campaign and tick */
#define GS_CAMPAIGN_NOTICE_RETRIES 1   /* a notice never acted on is repeated once */
/* Evidence of a device that finished less than this long ago still fills in
 * its counters and times: the two processes' event writers commit in their
 * own batches, so a download event can land after the version report. */
#define GS_CAMPAIGN_LATE_MS 30000
struct gs_campaigns {
    bool started, stop, wake;
    int64_t started_ms; /* unix ms: timeouts only count time the engine watched */
    pthread_mutex_t mu; /* stop, wake, metrics */
    pthread_cond_t cv;
    pthread_t thread;
    char *metrics; /* Prometheus text of the last tick (heap) */
    atomic_uint_fast64_t notices, transitions, ticks;
};

struct gs_server {
    struct gs_config cfg;
    struct gs_guard guard;
    struct gs_store_pool pool;
    struct gs_metrics metrics;
    struct gs_events events;
    uint8_t token_key[32]; /* random, for comparing the admin token */
    char admin_token_digest[65];
    struct MHD_Daemon *http;
    struct MHD_Daemon *https;
    char *tls_cert_pem, *tls_key_pem;
    struct gs_ws *ws;              /* the WebSocket app API's hub (ws_hub.c) */
    struct gs_campaigns campaigns; /* the OTA campaign engine (campaign.c) */
};

enum gs_method {
    GS_M_OTHER = 0,
    GS_M_GET = 1 << 0,
    GS_M_HEAD = 1 << 1,
    GS_M_POST = 1 << 2,
    GS_M_PUT = 1 << 3,
    GS_M_DELETE = 1 << 4,
    GS_M_OPTIONS = 1 << 5,
    GS_M_PATCH = 1 << 6
};

struct gs_upload; /* route_firmware.c */

#define GS_PARAM_SIZE 64

/* One HTTP request, from the request line to the completion callback. */
struct gs_request {
    struct gs_server *srv;
    struct MHD_Connection *conn; /* valid while a handler runs */
    uint64_t start_us;
    char *raw_uri;     /* request target as sent (heap) */
    size_t path_len;   /* raw_uri[0..path_len) is the path */
    const char *query; /* after '?', or "" */
    size_t query_len;
    int method; /* enum gs_method */
    char method_name[12];
    enum gs_route_id route;
    char param[2][GS_PARAM_SIZE]; /* captured path segments */
    bool started, responded, streaming, queue_failed;
    /* buffered body (non-upload requests): body_buf capped at GIZ_MAX_BODY;
     * body/body_len mirror its data/len (NULL/0 until a byte arrives) */
    struct giz_buf body_buf;
    char *body;
    size_t body_len;
    bool body_too_large;
    uint64_t body_discarded;
    /* firmware upload state (streaming requests) */
    struct gs_upload *upload;
    /* outcome */
    unsigned status;
    int giz_code; /* Gizwits error_code of a device-API error answer, 0 = none */
    uint64_t resp_bytes;
    char peer[64];
    char peer_ip[48];      /* peer without the port ("-" if unknown) */
    size_t raw_target_len; /* strlen of the request target as libmicrohttpd gave it */
    /* timeline event of a device-API request (events.c) */
    char ev_did[GIZ_DID_SIZE]; /* "" = no device known */
    struct cJSON *ev;          /* fields noted by the handler (owned) */
    bool ev_sent;              /* the event was queued */
};

/* Route handlers. Each answers exactly once through a gs_respond_* call. */
typedef void (*gs_handler_fn)(struct gs_request *rq);

/* The route table (router.c). */
struct gs_route {
    const char *pattern; /* '/'-separated; a "*" segment captures one segment */
    enum gs_route_id id;
    int methods; /* enum gs_method bits */
    gs_handler_fn fn;
};
/* The route whose pattern matches rq's path (captures into rq->param), or
 * NULL. Methods are not checked. */
const struct gs_route *gs_route_find(struct gs_request *rq);
/* Runs the handler of rq->route (nothing for GS_ROUTE_NONE). */
void gs_route_dispatch(struct gs_request *rq);
/* enum gs_method bit of a method name (GS_M_OTHER if unknown). */
int gs_method_parse(const char *m);
/* Writes the Allow header value ("GET, HEAD") of a methods mask into out. */
void gs_route_allow(int methods, char *out, size_t cap);
/* true for the /admin/... routes (bearer token, wrong-token throttle). */
bool gs_route_is_admin(enum gs_route_id id);
/* Writes the route table to f, one route a line: "<pattern>\t<METHODS,...>\t<name>"
 * (giz-gservice --routes; tests compare it with the OpenAPI document). */
void gs_route_print(FILE *f);

/* libmicrohttpd callbacks of the request life cycle (request.c; cls = the
 * server), installed by daemon.c. */
void *gs_request_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result gs_request_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls);
void gs_request_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe);

void gs_route_dev_devices(struct gs_request *rq);
void gs_route_dev_provision(struct gs_request *rq);
void gs_route_dev_safe(struct gs_request *rq);
void gs_route_ota_check(struct gs_request *rq);
void gs_route_ota_target_fid(struct gs_request *rq);
void gs_route_ota_latest(struct gs_request *rq);
void gs_route_ota_download(struct gs_request *rq);
void gs_route_admin_products(struct gs_request *rq);
void gs_route_admin_devices(struct gs_request *rq);
void gs_route_admin_brokers(struct gs_request *rq);
void gs_route_admin_device(struct gs_request *rq);
void gs_route_admin_device_logs(struct gs_request *rq);
void gs_route_admin_firmware(struct gs_request *rq);
void gs_route_admin_ota_push(struct gs_request *rq);
void gs_route_app_users(struct gs_request *rq);
void gs_route_app_login(struct gs_request *rq);
void gs_route_app_bindings(struct gs_request *rq);
/* The app Open API beyond users and bindings (route_app.c, route_app_device.c). */
void gs_route_app_binding(struct gs_request *rq);
void gs_route_app_bind_mac(struct gs_request *rq);
void gs_route_app_device(struct gs_request *rq);
void gs_route_app_raw_data(struct gs_request *rq);
void gs_route_app_control(struct gs_request *rq);
/* Data points (route_datapoint.c). */
void gs_route_admin_datapoints(struct gs_request *rq);
void gs_route_app_datapoint(struct gs_request *rq);
void gs_route_app_devdata_latest(struct gs_request *rq);
/* Shared by the app routes (route_app.c): a borrowed store and the session
 * of X-Gizwits-User-token, or false after answering (500 / 401 9004 / 9006;
 * the store, if borrowed, is in *st for the caller to release). */
bool gs_app_begin(struct gs_request *rq, struct giz_store **st, struct giz_session *s);
/* The user's bound device `did` (rq->param[0] style input): true with *d
 * (and *b if not NULL) filled, or false after answering 401 9017 (not bound
 * or no such device: the same answer, so DIDs cannot be probed) / 500. */
bool gs_app_bound_device(struct gs_request *rq, struct giz_store *st, const struct giz_session *s,
                         const char *did, struct giz_device *d, struct giz_binding *b);
/* The Open API device object of bindings, bind_mac and device detail: did,
 * product_key, mac, passcode (always "": only hashes are kept), host, port,
 * port_s (TLS on), ws_port / wss_port (this GService's HTTP / HTTPS port, 0 =
 * none), is_online (and the broker alive), is_disabled, type, remark,
 * dev_alias, dev_label, role, proto_ver, is_sandbox, versions. b may be NULL.
 * The caller owns the object. */
struct cJSON *gs_app_device_json(struct gs_request *rq, struct giz_store *st,
                                 const struct giz_device *d, const struct giz_binding *b,
                                 bool broker_alive);
/* A store failure of an app route: logged, answered 500 9008. */
void gs_app_store_error(struct gs_request *rq, int rc);
/* true for paths under /app (respond.c): their errors use the Open API shape. */
bool gs_is_app_path(const struct gs_request *rq);
void gs_route_admin_device_events(struct gs_request *rq);
void gs_route_admin_event_stream(struct gs_request *rq);
void gs_route_admin_device_control(struct gs_request *rq); /* disable, enable, kick */
void gs_route_admin_firmware_item(struct gs_request *rq);
void gs_route_openapi(struct gs_request *rq);
/* Paging of the admin lists (route_admin.c): reads ?limit= (def_limit when
 * absent, 1..max_limit) and ?offset=; false after answering
 * 400. gs_admin_page_add puts "total", "limit", "offset" into an answer. */
bool gs_admin_page(struct gs_request *rq, unsigned def_limit, unsigned max_limit, unsigned *limit,
                   unsigned *offset);
void gs_admin_page_add(struct cJSON *j, int64_t total, unsigned limit, unsigned offset);
void gs_route_healthz(struct gs_request *rq);
void gs_route_metrics(struct gs_request *rq);
void gs_route_ws_app(struct gs_request *rq); /* ws_route.c */
/* The web console (route_console.c): its files, the redirect of GET /, the
 * stream tickets (POST /admin/events/ticket mints, GET /console/stream
 * consumes one and runs gs_route_admin_event_stream), admin sends to a
 * device and the device search. */
void gs_route_root(struct gs_request *rq);
void gs_route_console(struct gs_request *rq);
void gs_route_console_stream(struct gs_request *rq);
void gs_route_admin_stream_ticket(struct gs_request *rq);
void gs_route_admin_device_send(struct gs_request *rq);
void gs_route_admin_device_search(struct gs_request *rq);
void gs_route_admin_device_latest(struct gs_request *rq);

/* Firmware uploads (route_firmware.c), streamed to a temporary file.
 * gs_firmware_upload_begin is called once the headers are in, for
 * POST /admin/firmware with a non-JSON body; returns false after having
 * answered (bad metadata, no space). gs_firmware_upload_data consumes body
 * bytes; returns false to abort (answered or will answer at the end).
 * gs_firmware_upload_free removes a leftover temporary file. */
bool gs_firmware_upload_begin(struct gs_request *rq);
bool gs_firmware_upload_data(struct gs_request *rq, const char *data, size_t len);
void gs_firmware_upload_free(struct gs_upload *up);

/* Hostile clients (guard.c). init once before gs_http_start (0 / -1),
 * start the reaper thread with the daemons, stop it after them. */
int gs_guard_init(struct gs_server *srv);
int gs_guard_start(struct gs_server *srv);
void gs_guard_stop(struct gs_server *srv);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the server). */
void gs_guard_notify_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode code);
/* The connection's request head is complete / a new one is awaited. */
void gs_guard_head_done(struct MHD_Connection *conn);
void gs_guard_head_wait(struct gs_server *srv, struct MHD_Connection *conn);
/* Seconds an address must wait before its admin token is checked again
 * (0 = go ahead), and the record of one wrong token. */
unsigned gs_guard_admin_blocked(struct gs_server *srv, const char *ip);
void gs_guard_admin_failed(struct gs_server *srv, const char *ip);
/* libmicrohttpd's log lines, rate-limited (one per message per 10 s + a count). */
void gs_guard_mhd_log(struct gs_server *srv, const char *msg);

/* ======================================================================
 * Daemons (daemon.c), request input (input.c), answers (respond.c)
 * ====================================================================== */

/* Starts the HTTP (and optional HTTPS) daemons. 0 or -1 (logged). */
int gs_http_start(struct gs_server *srv);
/* Stops accepting, finishes and frees everything. Accepts a half-started server. */
void gs_http_stop(struct gs_server *srv);

/* Value of request header `name` (case-insensitive) or NULL. */
const char *gs_header(struct gs_request *rq, const char *name);
/* Query parameter `key`, %-decoded into out. Returns giz_form_get() codes. */
int gs_query_get(struct gs_request *rq, const char *key, char *out, size_t cap);
/* Query parameter `key` as a decimal number <= max into *out (untouched when
 * absent or empty). false if present but not such a number (nothing is
 * answered: the caller answers in its API's format). */
bool gs_query_uint(struct gs_request *rq, const char *key, unsigned max, unsigned *out);
/* The optional product_key filter of the admin list calls: "" when absent or
 * empty, else 32 hex (lowercased). false after answering 400 (JSON). */
bool gs_query_product_key(struct gs_request *rq, char pk[GIZ_PK_SIZE]);

/* Responses. Each queues exactly one answer and records its status; the
 * first call wins, later calls are ignored (and logged as a bug). */
void gs_respond_buf(struct gs_request *rq, unsigned status, const char *content_type,
                    const void *data, size_t len);
/* Form-encoded device answer built from a printf format. */
void gs_respond_form(struct gs_request *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Device error: "error_code=<code>&error_message=<message>" (message is sent
 * as is: firmware strstr()s it, so it must not be %-encoded). */
void gs_respond_form_error(struct gs_request *rq, unsigned status, int code, const char *message);
/* Reads form field `key` from src[0..len) (a body or a query string) into
 * out[0..cap). Returns true on success, or when the field is absent and not
 * `required` (out = ""). Otherwise answers 400 (missing / too long / badly
 * encoded, naming the field) and returns false. */
bool gs_form_field(struct gs_request *rq, const char *src, size_t len, const char *key, char *out,
                   size_t cap, bool required);
/* True if src[0..len) is empty or a well-formed form; otherwise answers 400. */
bool gs_form_ok(struct gs_request *rq, const char *src, size_t len);
/* JSON answer; takes ownership of `json` (freed here, NULL gives a 500). */
void gs_respond_json(struct gs_request *rq, unsigned status, struct cJSON *json);
/* JSON error {"error": code, "message": message}. */
void gs_respond_error(struct gs_request *rq, unsigned status, const char *code,
                      const char *message);
/* App error in the Gizwits open-API form: {"error": "<n>", "message",
 * "error_code": n, "error_message"}. */
void gs_respond_app_error(struct gs_request *rq, unsigned status, int code, const char *message);
/* An error in the format of the endpoint: form (error_code 9015) for
 * /dev/..., JSON {"error": code, "message"} elsewhere. */
void gs_respond_generic_error(struct gs_request *rq, unsigned status, const char *code,
                              const char *message);
/* 405 with an Allow header (`allow`), in the endpoint's format. */
void gs_respond_405(struct gs_request *rq, const char *allow);
/* 429 with Retry-After: wait_s for an address that sent too many wrong admin tokens. */
void gs_respond_429(struct gs_request *rq, unsigned wait_s);
/* Queues a prepared response (takes ownership of `resp`). */
void gs_respond_mhd(struct gs_request *rq, unsigned status, struct MHD_Response *resp,
                    uint64_t body_bytes);

/* Parses the buffered body as a JSON object. Returns NULL after answering
 * 400 (invalid JSON / not an object); the caller frees with cJSON_Delete. */
struct cJSON *gs_body_json(struct gs_request *rq);
/* Checks "Authorization: Bearer <GIZ_ADMIN_TOKEN>" in constant time. */
bool gs_admin_authorized(struct gs_request *rq);

/* Input checks shared by the routes (validate.c). */
bool gs_valid_did(const char *s);
bool gs_valid_product_key(char *s);                     /* 32 hex; lowercases s in place */
bool gs_valid_mac(const char *s);                       /* 12 hex */
bool gs_valid_version(const char *s, bool allow_empty); /* [0-9A-Za-z._-]{1,32} */
/* true if p[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool gs_utf8_valid(const unsigned char *p, size_t n);

/* Device look-up of the device API (device_answer.c). Answers store result
 * rc (not GIZ_OK) as firmware expects: GIZ_ERR_NOT_FOUND 404/9014,
 * GIZ_ERR_DISABLED 403/9023, GIZ_ERR_AUTH 403/9016, anything else 500/9008
 * logged as "<what> <did>: <error>". */
void gs_respond_device_rc(struct gs_request *rq, int rc, const char *what, const char *did);
/* Borrows a store connection for a device-API route; NULL after answering
 * 500/9008 (the open failure is logged by the pool). */
struct giz_store *gs_device_store(struct gs_request *rq);
/* Finds the active device `did` in st: a malformed DID, a device of another
 * product (product_key not NULL) count as not found; with passcode not NULL
 * the passcode is checked (giz_store_device_auth). true with *dev filled, or
 * false after answering through gs_respond_device_rc. */
bool gs_device_lookup(struct gs_request *rq, struct giz_store *st, const char *did,
                      const char *product_key, const char *passcode, const char *what,
                      struct giz_device *dev);

/* Newer firmware fields (route_device.c). Reads the optional fields of a
 * register / OTA check body or a safe-register plaintext src[0..len) into
 * *info: `with_type` takes "type" as the register type (not in OTA checks,
 * where type is the firmware type); `auth_key` (cap bytes, may be NULL)
 * receives the safe-register auth_key. Fields that are missing, too long,
 * badly encoded or not printable ASCII are left empty: they never fail a
 * request. Returns true if anything was found. */
bool gs_device_info_parse(const char *src, size_t len, bool with_type, struct giz_device_info *info,
                          char *auth_key, size_t cap);
/* Stores what gs_device_info_parse found for `did` (failures are logged,
 * not answered; auth_key is never logged and stored only as a digest). */
void gs_device_info_record(struct gs_request *rq, struct giz_store *st, const char *did,
                           const struct giz_device_info *info, const char *auth_key);

/* Broker liveness (device_answer.c): true if the broker's heartbeat in the store is
 * at most GIZ_BROKER_MAX_AGE old (false also when no broker ever ran on this
 * database, after a clean stop, or on a store error). *age_ms (optional) gets
 * the heartbeat's age, -1 when there is none. Presence flags and pushes are
 * only trusted while this holds. */
bool gs_broker_alive(struct gs_server *srv, struct giz_store *st, int64_t *age_ms);

/* Download URL of hosted firmware `id` for OTA v4.1 (v41 = true) or v4.0
 * (route_firmware.c). */
void gs_firmware_url(const struct gs_server *srv, const struct giz_firmware *fw, bool v41,
                     char *out, size_t cap);

/* The timeline (events.c). gs_events_start before the daemons (0, or -1
 * logged; nothing is started when cfg.events is 0); gs_events_stop after
 * them writes what is queued and frees it all (safe twice / unstarted). */
int gs_events_start(struct gs_server *srv);
void gs_events_stop(struct gs_server *srv);
/* Handler notes for the request's event: the device (ignored unless a
 * well-formed DID) and string / number fields (a later note of the same key
 * replaces it). Never fail the request; out of memory loses the note. */
void gs_event_did(struct gs_request *rq, const char *did);
void gs_event_str(struct gs_request *rq, const char *key, const char *value);
void gs_event_num(struct gs_request *rq, const char *key, double value);
/* Called by the completion callback with its termination code: a device-API
 * request not yet recorded (downloads; requests libmicrohttpd answered
 * itself) becomes one queued event (kind by route and method; status,
 * error_code, peer, duration, and for downloads bytes / completed); the
 * notes are freed. */
void gs_event_request_done(struct gs_request *rq, int toe);
/* Called by gs_respond_mhd before the answer is queued: a device-API
 * answer other than a download is recorded now (ordered before anything
 * the client does after reading it). */
void gs_event_answered(struct gs_request *rq);
/* Live streams (route_events.c): init before the daemons start (0 / -1),
 * gs_streams_shutdown before MHD_stop_daemon (ends every stream, resumes
 * suspended ones), gs_streams_free after it. */
#define GS_STREAM_TICK_MS 250
#define GS_STREAM_HEARTBEAT_S 15
int gs_streams_init(struct gs_server *srv);
void gs_streams_shutdown(struct gs_server *srv);
void gs_streams_free(struct gs_server *srv);
/* Firmware URL for a known device: gs_firmware_url plus "?did=<did>" for
 * firmware this GService hosts (did NULL or "" = none), so the download is
 * tied to the device. */
void gs_firmware_url_did(const struct gs_server *srv, const struct giz_firmware *fw, bool v41,
                         const char *did, char *out, size_t cap);

/* Current time (request.c). */
uint64_t gs_now_us(void);  /* monotonic microseconds */
int64_t gs_unix_now(void); /* wall-clock seconds */

/* Gizwits open-API error codes used in answers. */
enum gs_giz_code {
    GS_E_PRODUCT_KEY_INVALID = 9002,
    GS_E_APPID_INVALID = 9003,
    GS_E_TOKEN_INVALID = 9004,
    GS_E_TOKEN_EXPIRED = 9006,
    GS_E_SERVER_ERROR = 9008,
    GS_E_DEVICE_NOT_FOUND = 9014,
    GS_E_FORM_INVALID = 9015,
    GS_E_DID_PASSCODE_INVALID = 9016,
    GS_E_DEVICE_NOT_BOUND = 9017,
    GS_E_USERNAME_UNAVAILABLE = 9019,
    GS_E_USERNAME_PASSWORD_ERROR = 9020,
    GS_E_DEVICE_DISABLED = 9023,
    GS_E_SEND_COMMAND_FAILED = 9021,
    GS_E_EMAIL_UNAVAILABLE = 9022,
    GS_E_ATTR_INVALID = 9025,
    GS_E_DATAPOINT_NOT_FOUND = 9029,
    GS_E_DEVICE_OFFLINE = 9042,
    GS_E_TIMESTAMP_INVALID = 9043,
    GS_E_SIGNATURE_INVALID = 9044,
    GS_E_NO_SUCH_API = 9999, /* unknown /app path (the table's "reserved" code) */
    GS_E_OTA_NO_RULE = 9500,
    GS_E_OTA_NOT_IN_EFFECT = 9502
};

/* OTA campaigns (campaign.c): the engine thread, started after the store
 * pool and before the daemons (0 / -1 logged), stopped after them (safe
 * twice / unstarted); a route that changed a campaign wakes it for an
 * immediate tick. gs_campaigns_metrics: a heap copy of the last tick's
 * Prometheus lines (NULL: none yet), freed by the caller. */
int gs_campaigns_start(struct gs_server *srv);
void gs_campaigns_stop(struct gs_server *srv);
void gs_campaigns_wake(struct gs_server *srv);
char *gs_campaigns_metrics(struct gs_server *srv);
/* The evidence rules (campaign_evidence.c). gs_cev_set_state moves d to
 * state at ts (forward only; failed from anywhere; updated and failed are
 * final), sets the state's timestamp, progress_at and reason (why, NULL =
 * keep) and tells sink->changed (sink may be NULL). gs_cev_apply applies
 * one timeline event (kind, fields JSON text) of d's device; returns true
 * if it shows the device logged in again (a granted ser2cli_res/<did>
 * subscription). */
struct gs_cev_sink {
    void (*changed)(void *ud, const struct giz_cdev *d, int from);
    void *ud;
};
void gs_cev_set_state(struct giz_cdev *d, int state, int64_t ts, const char *why,
                      const struct gs_cev_sink *sink);
bool gs_cev_apply(const struct giz_campaign *c, struct giz_cdev *d, const char *kind,
                  const char *fields, int64_t ts, const struct gs_cev_sink *sink);
/* Routes (route_campaign.c). */
void gs_route_admin_campaigns(struct gs_request *rq);
void gs_route_admin_campaign(struct gs_request *rq);
void gs_route_admin_campaign_action(struct gs_request *rq);

#endif
