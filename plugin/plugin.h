/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private header of giz_plugin.so, the mosquitto 2.0 plugin: the one heap
 * context every callback receives as userdata, and the internal functions
 * the plugin's files share (module__verb). Split by banners, one per file.
 *
 * Thread model (see plugin/DESIGN.md): everything runs on mosquitto's main
 * thread, inside its callbacks or inside the read/accept/close wrappers
 * intercept.c puts into mosquitto's GOT (mosquitto 2.0 is single-threaded).
 */
#ifndef GIZ_PLUGIN_PRIVATE_H
#define GIZ_PLUGIN_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "giz/log.h"
#include "giz/proto.h"
#include "giz/store.h"

struct icpt; /* intercept.c */
struct gizp;
struct push_state; /* push.c */

/* ==== map.c: string/bytes-keyed hash map (SipHash-2-4, random seed) ===== */
struct map_entry {
    struct map_entry *next;
    uint64_t hash;
    void *value;
    uint32_t klen;
    unsigned char key[]; /* klen bytes, then a NUL */
};
struct map {
    struct map_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    uint64_t k0, k1; /* SipHash key */
    bool ptr_keys;   /* keys are pointers (not chosen by clients): cheap keyed mix instead of SipHash */
};
/* Every map callback returns 0 to continue, non-zero to stop. It must not
 * change the map it iterates. */
typedef int (*map_foreach_cb)(const void *key, size_t klen, void *value, void *ud);

/* Initialises an empty map with a fresh random hash key. 0 or -1 (ENOMEM/RNG). */
int map__init(struct map *m);
/* Frees the map's own memory; calls free_value(value) on each value if given. */
void map__free(struct map *m, void (*free_value)(void *));
/* Returns the value stored under key, or NULL. */
void *map__get(const struct map *m, const void *key, size_t klen);
/* Stores value under key (replacing: *old gets the previous value or NULL).
 * Returns 0, or -1 on ENOMEM (the map is unchanged). */
int map__put(struct map *m, const void *key, size_t klen, void *value, void **old);
/* Removes key; returns its value or NULL if absent. */
void *map__remove(struct map *m, const void *key, size_t klen);
/* Calls cb for each entry in unspecified order. */
void map__foreach(const struct map *m, map_foreach_cb cb, void *ud);
/* Convenience for NUL-terminated string keys. */
void *map__sget(const struct map *m, const char *key);

/* ==== config.c: plugin_opt_* parsing and validation ===================== */
#define GIZP_HOST_SIZE 64
#define GIZP_TEST_OPT_SIZE 64

struct gizp_config {
    char db_path[GIZ_PATH_SIZE];
    unsigned ping_max;           /* PINGREQs allowed per window (181st closes) */
    unsigned ping_window_ms;     /* window length */
    unsigned keepalive_max;      /* CONNECT keepalive clamp, seconds */
    size_t max_packet;           /* client -> broker packet size cap, bytes */
    unsigned poll_ms;            /* outbox poll + DB batch period on TICK */
    unsigned auth_cache_ttl;     /* seconds a verified passcode stays cached; 0 = no cache */
    unsigned auth_cache_max;     /* entries */
    unsigned stats_interval;     /* seconds between stats log lines; 0 = never */
    unsigned log_max;            /* queued device log records per batch before dropping */
    unsigned log_rate;           /* 0x0012 records stored per device per second (token bucket) */
    unsigned log_burst;          /* bucket size */
    unsigned log_keep;           /* newest records kept per device by pruning; 0 = no pruning */
    unsigned log_prune_ms;       /* pruning period (device logs, outbox) */
    unsigned auth_fail_max;      /* wrong passcodes per DID+address per auth_backoff before back-off; 0 = off */
    unsigned auth_fail_addr_max; /* wrong passcodes per address per auth_backoff before back-off; 0 = off */
    unsigned auth_slow_rate;     /* PBKDF2 checks per second, all clients; 0 = no limit */
    char passcode_key[GIZ_PATH_SIZE]; /* key file; "" = passcode.key beside db_path */
    unsigned auth_backoff_ms;    /* failure window and back-off length */
    unsigned connect_timeout_ms; /* shut down a connection without CONNECT after this */
    unsigned pre_connect_max;      /* connections without CONNECT, all sources; more are refused */
    unsigned pre_connect_per_addr; /* the same, per source address */
    char test_require_symbol[GIZP_TEST_OPT_SIZE];  /* tests only: refuse unless it is relocated too */
    char test_require_version[GIZP_TEST_OPT_SIZE]; /* tests only: refuse unless this string is there too */
    int log_level;               /* enum giz_log_lvl */
    /* push.c (appended by helper "push"): */
    unsigned device_gap_ms;      /* least gap between two cloud->device packets; 0 = no pacing */
    unsigned sub_wait_ms;        /* pushes wait this long after ser2cli_res for the others */
};

/* Fills cfg from the broker's option array. Returns 0, or -1 after logging
 * one clear line per problem (unknown option, bad value, missing db_path). */
int config__parse(struct gizp_config *cfg, const struct mosquitto_opt *opts, int count);

/* ==== intercept.c: mosquitto's socket reads, interposed ================= */
/* A client's address, kept compact (formatted only for log lines). */
struct peer_addr {
    uint8_t family; /* AF_INET, AF_INET6, or 0 if unknown */
    uint16_t port;
    uint8_t addr[16]; /* 4 bytes for AF_INET */
};
#define GIZP_PEER_SIZE (GIZP_HOST_SIZE + 8) /* "[v6]:port" + NUL fits */
/* Formats p as "ip:port" / "[ip6]:port" ("?" if unknown) into out (cap bytes). */
void intercept__peer_format(const struct peer_addr *p, char *out, size_t cap);

struct intercept_stats {
    uint64_t conns, pre_connect, accepted; /* open, of which without CONNECT; accepted in total */
    uint64_t closed_ping, closed_other;    /* closed by the PINGREQ limit / other limits */
    uint64_t timeouts, refused;            /* no CONNECT in time; refused at accept (caps, fds) */
};

/* Verifies the mosquitto build and its relocations, then points mosquitto's
 * GOT entries for read/SSL_read/accept(4)/close at the plugin's wrappers.
 * Returns 0 (g->icpt set) or -1 after logging why (init must then fail). */
int intercept__start(struct gizp *g);
/* Restores the GOT entries and frees all per-connection state. Accepts a
 * context where start failed or never ran. */
void intercept__stop(struct gizp *g);
/* TICK: pre-CONNECT timeout sweep, periodic "refused" summary line. */
void intercept__tick(struct gizp *g, int64_t now_ms);
void intercept__stats(const struct gizp *g, struct intercept_stats *out);

/* ==== presence.c: who is online, app counts, batched DB writes ========== */
/* Per-DID state: exists while the device is connected or an online app is
 * bound to it. */
struct did_state {
    char did[GIZ_DID_SIZE];
    char product_key[GIZ_PK_SIZE]; /* "" until the device itself connects */
    unsigned device_conns;         /* live contexts authenticated as this DID */
    unsigned app_count;            /* distinct online app client ids bound to it */
    uint32_t log_tokens;           /* stored-log token bucket, in 1/1000 records */
    uint32_t log_refill_ms;        /* monotonic ms (truncated, never 0) of the last refill;
                                      0 until the first 0x0012 (the bucket starts full) */
};

/* An online app client id (all its live contexts share one record). */
struct app_state {
    char client_id[GIZ_CLIENTID_SIZE];
    char uid[GIZ_UID_SIZE];
    int64_t expire_at; /* unix seconds; the session is kicked after it */
    unsigned conns;
    char (*dids)[GIZ_DID_SIZE]; /* sorted bound DIDs */
    size_t ndids, cap;
};

enum client_kind { CLIENT_DEVICE = 1, CLIENT_APP = 2 };

/* What an authenticated mosquitto context is (the clients map, keyed by the
 * context pointer, stores it as one tagged pointer; see presence.c). */
struct client {
    enum client_kind kind;
    struct did_state *dev; /* CLIENT_DEVICE */
    struct app_state *app; /* CLIENT_APP */
};

/* Pending DB writes, flushed in one transaction by presence__flush(). */
struct pending_online {
    char did[GIZ_DID_SIZE];
    bool online;
    int64_t at;
};
struct pending_log {
    char did[GIZ_DID_SIZE];
    int level;
    int64_t ts;
    size_t tags_len, source_len, content_len;
    char *text; /* tags, source, content back to back */
};

/* The identity of the context whose DISCONNECT ran last. mosquitto 2.0.11
 * (src/context.c, context__disconnect) fires MOSQ_EVT_DISCONNECT and then,
 * in the same call, checks the client's will with MOSQ_ACL_WRITE: the ACL
 * needs who the client was after presence has forgotten it. Copies (the
 * live records may be freed by then); cleared on the next TICK. */
struct gone_client {
    const struct mosquitto *ctx; /* NULL when empty */
    enum client_kind kind;
    struct did_state dev;  /* CLIENT_DEVICE: copy */
    struct app_state *app; /* CLIENT_APP: owned copy (with its DID list) */
};

/* Like presence__client, for the context whose DISCONNECT just ran (will
 * check); false if ctx is not that context. */
bool presence__gone_client(struct gizp *g, const struct mosquitto *ctx, struct client *out);
/* Forgets the last disconnected context (TICK, cleanup). */
void presence__gone_clear(struct gizp *g);
/* Marks ctx online as device `did` of `product_key`. 0 or -1 (ENOMEM).
 * A context already online as that DID (mosquitto re-authenticates every
 * client on SIGHUP) is left as it is: no offline/online, no count change;
 * likewise for presence__app_online with the same client id and uid. */
int presence__device_online(struct gizp *g, struct mosquitto *ctx, const char *did,
                            const char *product_key);
/* Marks ctx online as app `client_id` of user `uid` whose session ends at
 * expire_at (loads its bindings on the first live context of that client
 * id). 0 or -1. */
int presence__app_online(struct gizp *g, struct mosquitto *ctx, const char *client_id,
                         const char *uid, int64_t expire_at);
/* TICK: sends 0x0210 to devices that logged in since the last TICK while
 * apps bound to them were online (their CONNACK has been sent by then; the
 * targeted publish needs no subscription). */
void presence__push_new_devices(struct gizp *g);
/* Kicks app sessions whose token has expired (called about once a second). */
void presence__expire_apps(struct gizp *g);
/* Fills *out and returns true if ctx is a client the plugin authenticated;
 * false otherwise. O(1), no allocation (ACL and MESSAGE fast path). */
bool presence__client(struct gizp *g, const struct mosquitto *ctx, struct client *out);
/* The DID's state, or NULL. */
struct did_state *presence__did(struct gizp *g, const char *did);
/* true if app is bound to did (binary search in its cached list). */
bool presence__app_bound(const struct app_state *app, const char *did, size_t did_len);
/* Re-reads whether uid is bound to did and updates every online app of uid
 * and the DID's count (pushing 0x0210 on change). */
void presence__binding_changed(struct gizp *g, const char *uid, const char *did);
/* Takes one token from ds's stored-log bucket (log_rate per second, up to
 * log_burst): true if the record may be stored. Over the rate: false and a
 * rate-limited log line (the record is still delivered to apps). */
bool presence__log_allow(struct gizp *g, struct did_state *ds);
/* TICK: every log_prune_ms, keeps the newest log_keep records per device and
 * deletes outbox items older than an hour. */
void presence__prune(struct gizp *g, int64_t now_ms);
/* Queues a device log record (copies the texts). */
void presence__log_add(struct gizp *g, const char *did, int level, const void *tags,
                       size_t tags_len, const void *source, size_t source_len, const void *content,
                       size_t content_len);
/* Writes queued presence changes and logs in one transaction. */
void presence__flush(struct gizp *g);
/* MOSQ_EVT_DISCONNECT. */
int presence__disconnect_cb(int event, void *event_data, void *userdata);
/* Frees all presence state (cleanup). */
void presence__free(struct gizp *g);

/* ==== auth.c: BASIC_AUTH and the credential cache ======================== */
struct cred {
    uint8_t digest[32]; /* HMAC-SHA256(cache_key, passcode) */
    char product_key[GIZ_PK_SIZE];
    uint32_t verified_at; /* monotonic seconds */
};
/* Wrong-passcode throttling per source address and per DID+address
 * (auth.c; g->fails keys "a|<addr>" and "d|<DID>|<addr>"). */
struct auth_fail {
    int64_t window_start; /* monotonic ms of the first failure counted */
    int64_t blocked_until; /* monotonic ms; 0 = not blocked */
    int64_t logged_at;     /* monotonic ms of the last line about this key */
    unsigned count;
    unsigned refused;      /* refused during the back-off since logged_at */
};
/* Loads the passcode key into the store (init; fails closed). 0 or -1 (logged). */
int auth__init(struct gizp *g);
int auth__basic_cb(int event, void *event_data, void *userdata);
/* Drops expired wrong-passcode records (TICK, every auth_backoff). */
void auth__fails_sweep(struct gizp *g, int64_t now_ms);
/* Drops the cached credentials of did (unregister, disable). */
void auth__forget(struct gizp *g, const char *did);

/* ==== acl.c ============================================================== */
int acl__check_cb(int event, void *event_data, void *userdata);

/* ==== push.c: outbox, 0x0210/0x0211/0x020E, MESSAGE ====================== */
/* Sends bare 0x0210 with the DID's current app count, if the device is online. */
void push__app_count(struct gizp *g, struct did_state *ds);
/* Reads new outbox items and acts on them. */
void push__poll_outbox(struct gizp *g);
int push__message_cb(int event, void *event_data, void *userdata);
/* Per-device send queue (push.c; see DESIGN.md "Toward a device"). Called
 * by presence for a new device context (BASIC_AUTH) and when a device
 * context goes (last = no live context of that DID is left), by the ACL
 * for each device SUBSCRIBE it grants, and on every TICK. */
void push__device_login(struct gizp *g, const struct mosquitto *ctx, const char *did);
void push__device_gone(struct gizp *g, const struct mosquitto *ctx, const char *did, bool last);
void push__subscribed(struct gizp *g, const struct mosquitto *ctx, const struct did_state *dev,
                      const char *filter);
void push__tick(struct gizp *g, int64_t now_ms);
/* How long mosquitto's loop may sleep (timeout_ms as epoll_wait takes it,
 * -1 = forever) before push__tick has a paced packet to send: min(timeout,
 * ms until the earliest due one). For an epoll_wait wrapper (intercept.c):
 * without one, paced packets wait for the next TICK (idle: up to 100 ms). */
int push__loop_timeout(struct gizp *g, int timeout_ms);
/* Counters for the stats line: devices with a queue record, bytes queued,
 * messages sent late by pacing, dropped (queue full), held until subscribed. */
struct push_stats {
    size_t tracked, queued_bytes;
    uint64_t paced, dropped, held_for_sub;
};
void push__stats(const struct gizp *g, struct push_stats *out);
/* Broker liveness row: true if a heartbeat is due (every 5 s); push__beat
 * writes it (inside the caller's transaction if one is open). */
bool push__beat_due(struct gizp *g, int64_t now_ms);
void push__beat(struct gizp *g, int64_t now_ms);
/* Frees the queues; records a clean stop in the broker row (cleanup). */
void push__free(struct gizp *g);

/* ==== plugin.c: the context =============================================== */
struct rate_limit {
    int64_t window_start; /* monotonic ms */
    unsigned count;
    unsigned suppressed;
};

struct gizp {
    mosquitto_plugin_id_t *pid;
    struct gizp_config cfg;
    struct giz_store *store;
    pthread_t main_thread;
    uint8_t cache_key[32];

    struct map creds;   /* DID -> struct cred */
    struct map fails;   /* DID -> struct auth_fail (wrong-passcode throttling) */
    int64_t last_fail_sweep_ms;
    uint64_t logins_throttled;
    struct rate_limit rl_throttle; /* "login throttled" lines */
    struct map clients; /* struct mosquitto * -> struct client */
    struct map dids;    /* DID -> struct did_state */
    struct map apps;    /* app client id -> struct app_state */

    struct pending_online *pend_online;
    size_t pend_online_n, pend_online_cap;
    struct pending_log *pend_log;
    size_t pend_log_n, pend_log_cap;
    unsigned log_dropped;

    int64_t outbox_last_id;
    int64_t last_poll_ms, last_stats_ms, start_ms, last_expiry_ms;
    uint64_t ticks, ticks_at_stats;
    uint64_t logins_ok, logins_refused, cache_hits;

    char (*new_devs)[GIZ_DID_SIZE]; /* logged in since the last TICK (0x0210 push) */
    size_t new_devs_n, new_devs_cap;
    int64_t last_prune_ms;
    bool logs_since_prune;        /* a 0x0012 record was stored since the last prune */
    uint64_t logs_over_rate;      /* records not stored (over log_rate), for the log line */
    struct rate_limit rl_lograte; /* "over log_rate" lines */
    struct gone_client gone;      /* last DISCONNECT, for its will's ACL check */
    struct rate_limit rl_payload; /* malformed payload log lines */
    struct icpt *icpt;            /* intercept.c */
    struct push_state *push;      /* push.c: per-device queues, pacing, heartbeat (lazy) */
    /* auth.c (appended by helper "auth"): global PBKDF2 budget (token bucket) */
    int64_t slow_refill_ms;
    unsigned slow_tokens;
    uint64_t logins_busy;         /* refused: PBKDF2 budget spent */
};

/* Monotonic clock in milliseconds / seconds; wall clock in unix seconds. */
int64_t plugin__now_ms(void);
int64_t plugin__unix_now(void);
/* true if a line may be logged now under rl (max per 10 s); a summary of
 * suppressed lines is logged when the window rolls over. */
bool plugin__rate_ok(struct rate_limit *rl, unsigned max_per_10s, const char *what);

#endif
