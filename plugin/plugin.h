/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private header of giz_plugin.so, the mosquitto 2.0 plugin: the one heap
 * context every callback receives as userdata (struct gizp), the records
 * several modules read (a DID's and an app's presence state), and the
 * functions the plugin's files share (module__verb), one banner per file.
 * Each module's own state is a struct defined in its .c file and reached
 * through one pointer in the context (g->icpt, g->presence, g->devlog,
 * g->push, g->auth); nothing outside that file looks inside it. Monotonic
 * times are (int64_t)giz_mono_ms() throughout.
 *
 * Thread model (see plugin/DESIGN.md): everything runs on mosquitto's main
 * thread, inside its callbacks or inside the read/accept/close/epoll_wait
 * wrappers intercept.c puts into mosquitto's GOT (mosquitto 2.0 is
 * single-threaded).
 */
#ifndef GIZ_PLUGIN_PRIVATE_H
#define GIZ_PLUGIN_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "giz/log.h"
#include "giz/map.h"
#include "giz/pool.h"
#include "giz/proto.h"
#include "giz/store.h"
#include "giz/util.h"

struct gizp;

/* ==== plugin.c: the context, TICK dispatcher, shared helpers ============= */

/* At most max_per_10s lines per 10 s window (plugin__rate_ok). */
struct rate_limit {
    int64_t window_start; /* monotonic ms */
    unsigned count;
    unsigned suppressed;
};

/* ==== config.c: plugin_opt_* parsing and validation ====================== */
#define GIZP_TEST_OPT_SIZE 64

struct gizp_config {
    char db_path[GIZ_PATH_SIZE];
    char db_shown[GIZ_PATH_SIZE]; /* db_path for log lines (a URI's password hidden) */
    int log_level;                /* enum giz_log_lvl */
    unsigned poll_ms;             /* outbox poll + DB batch period on TICK */
    unsigned stats_interval;      /* seconds between stats log lines; 0 = never */
    /* intercept.c */
    unsigned ping_max;             /* PINGREQs allowed per window (181st closes) */
    unsigned ping_window_ms;       /* window length */
    unsigned keepalive_max;        /* CONNECT keepalive clamp, seconds */
    size_t max_packet;             /* client -> broker packet size cap, bytes */
    unsigned connect_timeout_ms;   /* shut down a connection without CONNECT after this */
    unsigned pre_connect_max;      /* connections without CONNECT, all sources; more are refused */
    unsigned pre_connect_per_addr; /* the same, per source address */
    char
        test_require_symbol[GIZP_TEST_OPT_SIZE]; /* tests only: refuse unless it is relocated too */
    char test_require_version[GIZP_TEST_OPT_SIZE]; /* tests only: refuse unless this string is there
                                                      too */
    /* auth.c */
    unsigned auth_cache_ttl; /* seconds a verified passcode stays cached; 0 = no cache */
    unsigned auth_cache_max; /* entries */
    unsigned auth_fail_max; /* wrong passcodes per DID+address per auth_backoff before back-off; 0 =
                               off */
    unsigned auth_fail_addr_max; /* wrong passcodes per address per auth_backoff before back-off; 0
                                    = off */
    unsigned auth_slow_rate;     /* PBKDF2 checks per second, all clients; 0 = no limit */
    char passcode_key[GIZ_PATH_SIZE]; /* key file; "" = passcode.key beside db_path */
    unsigned auth_backoff_ms;         /* failure window and back-off length */
    /* devlog.c */
    unsigned log_max;      /* queued device log records per batch before dropping */
    unsigned log_rate;     /* 0x0012 records stored per device per second (token bucket) */
    unsigned log_burst;    /* bucket size */
    unsigned log_keep;     /* newest records kept per device by pruning; 0 = no pruning */
    unsigned log_prune_ms; /* pruning period (device logs, outbox) */
    /* push.c */
    unsigned device_gap_ms; /* least gap between two cloud->device packets; 0 = no pacing */
    unsigned sub_wait_ms;   /* pushes wait this long after ser2cli_res for the others */
    /* events.c (the device timeline, MQTT side) */
    unsigned events;            /* 1 = record MQTT events (default), 0 = off */
    unsigned events_per_device; /* newest events kept per device (as GIZ_EVENTS_PER_DEVICE) */
    size_t events_total;        /* events kept in all (as GIZ_EVENTS_TOTAL) */
    unsigned events_queue;      /* events held for the writer process; more are dropped */
    unsigned events_payload;    /* payload bytes recorded as hex (events_payload) */
    /* push.c: the broker registry (schema 012) */
    char broker_name[GIZ_BROKER_NAME_SIZE];      /* "" until plugin.c sets the default */
    char advertise_host[GIZ_BROKER_HOST_SIZE];   /* "" = the GService's m2m host */
    unsigned advertise_port, advertise_tls_port; /* 0 = not advertised */
    unsigned broker_timeout_ms;                  /* heartbeat age that makes a broker dead */
};

/* Fills cfg from the broker's option array. Returns 0, or -1 after logging
 * one clear line per problem (unknown option, bad value, missing db_path). */
int config__parse(struct gizp_config *cfg, const struct mosquitto_opt *opts, int count);

/* ==== intercept.c: mosquitto's socket reads, interposed ================== */
#define GIZP_PEER_SIZE 72 /* "[v6]:port" + NUL fits */

struct icpt; /* intercept.c */

struct intercept_stats {
    uint64_t conns, pre_connect, accepted; /* open, of which without CONNECT; accepted in total */
    uint64_t closed_ping, closed_other;    /* closed by the PINGREQ limit / other limits */
    uint64_t timeouts, refused;            /* no CONNECT in time; refused at accept (caps, fds) */
};

/* Verifies the mosquitto build and its relocations, then points mosquitto's
 * GOT entries for read/SSL_read/accept(4)/close/epoll_wait at the plugin's
 * wrappers. Returns 0 (g->icpt set) or -1 after logging why (init must then
 * fail). */
int intercept__start(struct gizp *g);
/* Restores the GOT entries and frees all per-connection state. Accepts a
 * context where start failed or never ran. */
void intercept__stop(struct gizp *g);
/* TICK: pre-CONNECT timeout sweep, periodic "refused" summary line. */
void intercept__tick(struct gizp *g, int64_t now_ms);
void intercept__stats(const struct gizp *g, struct intercept_stats *out);

/* ==== presence.c: who is online, app counts ============================== */
/* Per-DID state: exists while the device is connected or an online app is
 * bound to it. Read by acl.c (DID, product key), push.c (counts) and
 * devlog.c (its token bucket lives here: the record exists exactly while
 * the device can publish). */
/* events.c's record of a device's live session, from its BASIC_AUTH to its
 * DISCONNECT, kept inside its did_state (one record per device for
 * presence and the timeline); ctx NULL = none. Fields are events.c's. */
struct ev_live {
    const struct mosquitto *ctx;
    int64_t since_ms; /* unix ms */
    char *why;        /* set by the plugin before it closes the session (owned), else NULL */
    /* flood tracking (events.c, flood_queue) */
    uint64_t flood_epoch, flood_last;
    uint64_t *flood_pos;              /* owned, else NULL */
    uint16_t flood_count, flood_next; /* the bound is at most 65,535 */
    uint16_t keepalive;               /* seconds, as granted */
};

/* A queue array grown by a burst (logins, presence rows) is freed once it
 * drains if it holds more than this: idle devices do not pay for a storm. */
#define GIZ_BURST_KEEP_BYTES 16384u

struct did_state {
    struct ev_live ev;         /* events.c: the DID's live session */
    struct giz_imap_link link; /* presence.c's table of DIDs (the record is the entry) */
    char did[GIZ_DID_SIZE];
    char product_key[GIZ_PK_SIZE]; /* "" until the device itself connects */
    unsigned device_conns;         /* live contexts authenticated as this DID */
    unsigned app_count;            /* distinct online app client ids bound to it */
    uint32_t log_tokens;           /* devlog.c: stored-log token bucket, in 1/1000 records */
    uint32_t log_refill_ms;        /* devlog.c: monotonic ms (truncated, never 0) of the last
                                      refill; 0 until the first 0x0012 (the bucket starts full) */
};
_Static_assert(sizeof(void *) != 8 || sizeof(struct did_state) <= 136,
               "a DID record (presence + timeline) stays within 136 bytes (one per device)");

/* An online app client id (all its live contexts share one record). Read
 * by acl.c (client id, bound DIDs through presence__app_bound). */
struct app_state {
    char client_id[GIZ_CLIENTID_SIZE];
    char uid[GIZ_UID_SIZE];
    int64_t expire_at; /* unix seconds; the session is kicked after it */
    unsigned conns;
    char (*dids)[GIZ_DID_SIZE]; /* sorted bound DIDs */
    size_t ndids, cap;
};

enum client_kind { CLIENT_DEVICE = 1, CLIENT_APP = 2 };

/* What an authenticated mosquitto context is. */
struct client {
    enum client_kind kind;
    struct did_state *dev; /* CLIENT_DEVICE */
    struct app_state *app; /* CLIENT_APP */
};

struct presence; /* presence.c */

struct presence_stats {
    size_t clients, dids, apps; /* authenticated contexts, DID records, app client ids */
    size_t devices;             /* DIDs with a live device connection */
};

/* Creates the (empty) presence state in g->presence. 0 or -1 (ENOMEM/RNG). */
int presence__init(struct gizp *g);
/* Frees all presence state (cleanup; g->presence may be NULL). */
void presence__free(struct gizp *g);
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
/* Fills *out and returns true if ctx is a client the plugin authenticated;
 * false otherwise. O(1), no allocation (ACL and MESSAGE fast path). */
bool presence__client(struct gizp *g, const struct mosquitto *ctx, struct client *out);
/* Like presence__client, for the context whose DISCONNECT ran last (its
 * will is checked right after, see presence.c); false if ctx is not it. */
bool presence__gone_client(struct gizp *g, const struct mosquitto *ctx, struct client *out);
/* The DID's state, or NULL. */
struct did_state *presence__did(struct gizp *g, const char *did);
/* Calls cb for every DID record (stops when cb returns non-zero). cb must
 * not add or remove DID records. */
void presence__foreach_did(struct gizp *g, int (*cb)(struct did_state *ds, void *ud), void *ud);
/* true if app is bound to did (binary search in its cached list). */
bool presence__app_bound(const struct app_state *app, const char *did, size_t did_len);
/* Re-reads whether uid is bound to did and updates every online app of uid
 * and the DID's count (pushing 0x0210 on change). */
void presence__binding_changed(struct gizp *g, const char *uid, const char *did);
/* TICK: forgets the last disconnected context, sends 0x0210 to devices
 * that logged in since the last TICK while bound apps were online, and
 * about once a second kicks app sessions whose token has expired. */
void presence__tick(struct gizp *g, int64_t now_ms);
/* DB batch (plugin.c): true if online/offline changes are queued;
 * presence__write writes them (inside the caller's transaction; GIZ_OK or
 * the store's error), presence__written forgets them after the commit. */
bool presence__pending(const struct gizp *g);
int presence__write(struct gizp *g);
void presence__written(struct gizp *g);
/* Queues an online row for every connected device (after a sweep by another
 * node marked them offline while this broker was only slow). */
void presence__requeue_online(struct gizp *g);
/* The store may have missed changes (the writer process died with some in
 * flight): the next DB batch marks this broker's devices offline, then the
 * connected ones online. */
void presence__resync(struct gizp *g);
/* MOSQ_EVT_DISCONNECT. */
int presence__disconnect_cb(int event, void *event_data, void *userdata);
void presence__stats(const struct gizp *g, struct presence_stats *out);

/* ==== devlog.c: device log records (0x0012 and reports) ================== */
struct devlog; /* devlog.c */

/* Creates g->devlog. 0 or -1 (ENOMEM). */
int devlog__init(struct gizp *g);
/* Frees queued records and the state (g->devlog may be NULL). */
void devlog__free(struct gizp *g);
/* Takes one token from ds's stored-log bucket (log_rate per second, up to
 * log_burst): true if the record may be stored. Over the rate: false and a
 * rate-limited log line (the record is still delivered to apps). */
bool devlog__allow(struct gizp *g, struct did_state *ds);
/* Queues a device log record for the next DB batch (copies the texts);
 * over log_max queued records it is counted as dropped. */
void devlog__add(struct gizp *g, const char *did, int level, const void *tags, size_t tags_len,
                 const void *source, size_t source_len, const void *content, size_t content_len);
/* DB batch (plugin.c): devlog__pending is true if records are queued;
 * devlog__write inserts them inside the caller's transaction (GIZ_OK or the
 * store's error); devlog__written forgets them after the commit and
 * devlog__failed after a rollback (kept for the next batch unless they
 * reached log_max). */
bool devlog__pending(struct gizp *g);
int devlog__write(struct gizp *g);
void devlog__written(struct gizp *g);
void devlog__failed(struct gizp *g);
/* TICK: every log_prune_ms, keeps the newest log_keep records per device
 * (if any were stored since the last prune) and deletes outbox items older
 * than an hour. */
void devlog__prune(struct gizp *g, int64_t now_ms);
/* Records not stored because they were over log_rate, since start. */
uint64_t devlog__over_rate(const struct gizp *g);

/* ==== auth.c: BASIC_AUTH, the verified-passcode cache, back-off ========= */
struct auth; /* auth.c */

struct auth_stats {
    uint64_t ok, refused; /* logins accepted / refused (every reason) */
    uint64_t cache_hits;  /* accepted from the verified-passcode cache */
    uint64_t throttled;   /* refused by the wrong-passcode back-off */
    uint64_t busy;        /* refused: PBKDF2 budget spent */
    size_t cached;        /* entries in the verified-passcode cache */
};

/* Creates g->auth, loads the passcode key into the store and attaches the
 * verified-passcode cache to it (init, after the store is open; fails
 * closed). 0 or -1 (logged). */
int auth__init(struct gizp *g);
/* Detaches the cache from the store (if still open) and frees g->auth
 * (may be NULL). */
void auth__free(struct gizp *g);
int auth__basic_cb(int event, void *event_data, void *userdata);
/* Drops expired wrong-passcode records (TICK, every auth_backoff). */
void auth__fails_sweep(struct gizp *g, int64_t now_ms);
/* Drops the cached credentials of did (unregister, disable). */
void auth__forget(struct gizp *g, const char *did);
void auth__stats(const struct gizp *g, struct auth_stats *out);

/* ==== acl.c: MOSQ_EVT_ACL_CHECK ========================================== */
int acl__check_cb(int event, void *event_data, void *userdata);

/* ==== message.c: MOSQ_EVT_MESSAGE (what devices and apps publish) ======== */
/* Device requests (0x020F answered, 0x021E/0x021C/0x022C recorded), 0x0012
 * captured into devlog, app2dev messages handed to push's pacing. */
int message__cb(int event, void *event_data, void *userdata);

/* ==== push.c: outbox, per-device send queue, heartbeat ==================== */
struct push_state; /* push.c */

/* Creates g->push and reads the outbox's last id (older items are stale).
 * 0 or -1 (logged). */
int push__init(struct gizp *g);
/* Frees the queues; records a clean stop in the broker row while the store
 * is still open (cleanup). g->push may be NULL. */
void push__free(struct gizp *g);
/* Sends bare 0x0210 with the DID's current app count, if the device is online. */
void push__app_count(struct gizp *g, struct did_state *ds);
/* The answer to a device's own 0x020F (skips the subscription wait, paced). */
void push__answer_app_count(struct gizp *g, struct did_state *ds);
/* MESSAGE from an app on app2dev/<DID>/<cid>, after the ACL allowed it:
 * MOSQ_ERR_SUCCESS to let mosquitto route it now, MOSQ_ERR_ACL_DENIED when
 * it was taken out to be sent later (or dropped, queue full). */
int push__pace_app_message(struct gizp *g, const struct mosquitto_evt_message *ed);
/* Reads new outbox items and acts on them (TICK, every poll_ms). */
void push__poll_outbox(struct gizp *g);
/* Per-device send queue (see DESIGN.md "Toward a device"). Called by
 * presence for a new device context (BASIC_AUTH) and when a device context
 * goes (last = no live context of that DID is left), by the ACL for each
 * device SUBSCRIBE it grants. */
void push__device_login(struct gizp *g, const struct mosquitto *ctx, const char *did);
void push__device_gone(struct gizp *g, const struct mosquitto *ctx, const char *did, bool last);
void push__subscribed(struct gizp *g, const struct mosquitto *ctx, const struct did_state *dev,
                      const char *filter);
/* TICK: fallback timers and paced messages that are due. */
void push__tick(struct gizp *g, int64_t now_ms);
/* How long mosquitto's loop may sleep (timeout_ms as epoll_wait takes it,
 * -1 = forever) before push__tick has a paced packet to send: min(timeout,
 * ms until the earliest due one). For intercept.c's epoll_wait wrapper. */
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

/* ==== events.c: the device timeline (MQTT side), broker metrics ========== */
struct events; /* events.c */

/* How intercept.c saw a client socket end (events__socket_closed). */
enum events_end {
    EVENTS_END_NONE = 0, /* closed by the broker without a read failing */
    EVENTS_END_EOF,      /* the client closed the connection */
    EVENTS_END_ERROR,    /* a read failed (reset, TLS error) */
    EVENTS_END_PING,     /* the PINGREQ limit */
    EVENTS_END_LIMIT,    /* another guard limit (packet size, bad framing) */
};

/* Creates g->events. 0 or -1 (ENOMEM). */
int events__init(struct gizp *g);
/* Frees queued events and the state (g->events may be NULL). */
void events__free(struct gizp *g);
/* BASIC_AUTH accepted device ctx as did (connect event, device_conn row). */
void events__connect(struct gizp *g, const struct mosquitto *ctx, const char *did);
/* BASIC_AUTH refused ctx (a connack_refused event if its username is a DID). */
void events__refused(struct gizp *g, const struct mosquitto *ctx, const char *why);
/* ACL checks of device / app contexts (subscribe, publish_in, publish_out,
 * acl_denied events; counters). c may be NULL (unknown context). */
void events__acl(struct gizp *g, const struct mosquitto_evt_acl_check *ed, const struct client *c,
                 bool allowed);
/* A message the cloud sends a device with mosquitto_broker_publish (push.c). */
void events__cloud_publish(struct gizp *g, const char *did, const char *topic, const void *payload,
                           size_t len);
/* intercept.c: the PINGREQ limit closes client_id's connection from peer. */
void events__ping_limit(struct gizp *g, const char *client_id, const char *peer);
/* intercept.c: the client's CONNECT was gathered (keepalive as asked, peer). */
void events__connect_seen(struct gizp *g, const char *client_id, unsigned keepalive_asked,
                          const char *peer);
/* MOSQ_EVT_DISCONNECT of ctx (before presence forgets it); the event is
 * completed by the socket's close (events__socket_closed) right after. */
void events__disconnect(struct gizp *g, const struct mosquitto *ctx);
/* intercept.c: a client socket with a CONNECT is closed. idle_ms: since
 * its last bytes arrived; last_type: the type nibble of its last packet. */
void events__socket_closed(struct gizp *g, const char *client_id, enum events_end end,
                           unsigned last_type, int64_t idle_ms);
/* push.c: the plugin is about to kick did (why goes into its disconnect). */
void events__kicked(struct gizp *g, const char *did, const char *why);
/* presence.c frees ds: its live session (ds->ev.ctx set) waits for its
 * DISCONNECT with the taken-over ones. */
void events__did_gone(struct gizp *g, struct did_state *ds);
/* push.c: an outbox item created at created_at (unix s) is being acted on. */
void events__outbox_seen(struct gizp *g, int64_t created_at);
/* DB batch (plugin.c): events__pending true if events or connection rows
 * are queued; events__write appends them inside the caller's transaction;
 * events__written forgets them after the commit, events__failed keeps
 * them for the next batch. */
/* Hands a presence change to the writer process; false when it is not
 * running (the caller queues it for the DB batch). */
bool events__state_online(struct gizp *g, const char *did, bool online, int64_t at);
bool events__pending(const struct gizp *g);
int events__write(struct gizp *g);
void events__written(struct gizp *g);
void events__failed(struct gizp *g);
/* TICK: retention prune (every second or 4096 events), queue drops into
 * the store's counters, a disconnect whose close never came. */
/* Plugin start, before the store opens: forks the writer process (if
 * events are on). */
int events__start(struct gizp *g);
void events__tick(struct gizp *g, int64_t now_ms);
/* With the heartbeat (plugin.c's DB batch): the counters as Prometheus
 * text into the broker row. */
void events__metrics_write(struct gizp *g, int64_t now_ms);

/* ==== devstate.c: devices' latest data points (helper "datapoints") ====== */
struct devstate; /* devstate.c */
/* Creates g->devstate. 0 or -1 (ENOMEM). */
int devstate__init(struct gizp *g);
/* Frees queued rows and cached schemas (g->devstate may be NULL). */
void devstate__free(struct gizp *g);
/* A device publish on dev2app/<DID>...: status reports (p0 0x03/0x04/0x13/
 * 0x14 in 0x0091/0x0093/0x0094) of a product with data points are decoded
 * and queued for the DB batch; malformed ones are queued as such. */
void devstate__message(struct gizp *g, const struct did_state *ds, const uint8_t *payload,
                       size_t len);
/* DB batch (plugin.c), as devlog's: pending / write (in the caller's
 * transaction) / written (after the commit) / failed (kept for the next). */
bool devstate__pending(const struct gizp *g);
int devstate__write(struct gizp *g);
void devstate__written(struct gizp *g);
void devstate__failed(struct gizp *g);
/* Counters since start: reports decoded, malformed, rows dropped. */
void devstate__stats(const struct gizp *g, uint64_t *reports, uint64_t *malformed,
                     uint64_t *dropped);

/* ==== the context (plugin.c) ============================================== */
struct gizp {
    mosquitto_plugin_id_t *pid;
    struct gizp_config cfg;
    struct giz_store *store;
    pthread_t main_thread;

    struct { /* plugin.c: TICK dispatcher and the stats line */
        uint64_t ticks, ticks_at_stats;
        int64_t start_ms, last_poll_ms, last_stats_ms;
        struct rate_limit rl_batch;            /* "DB batch failed" lines */
        int64_t heap_ms, heap_quiet_ms;        /* heap_tick: last look, last login seen */
        uint64_t heap_logins, heap_trimmed_at; /* logins then, and at the last trim */
    } tick;

    struct icpt *icpt;         /* intercept.c: per-socket records, GOT patches */
    struct presence *presence; /* presence.c: contexts, DIDs, apps, queued online changes */
    struct devlog *devlog;     /* devlog.c: queued records, pruning */
    struct devstate *devstate; /* devstate.c: cached data-point schemas, queued state rows */
    struct push_state *push;   /* push.c: per-device queues, pacing, outbox, heartbeat */
    struct auth *auth;         /* auth.c: passcode cache, back-off records, PBKDF2 budget */
    struct events *events;     /* events.c: timeline queue, connection records, metrics */

    struct {                          /* message.c */
        struct rate_limit rl_payload; /* malformed / unexpected payload lines */
        struct rate_limit rl_report;  /* 0x021E / 0x021C / 0x022C info lines */
    } msg;
};

/* Wall clock in unix seconds. */
int64_t plugin__unix_now(void);
/* true if a line may be logged now under rl (max per 10 s); a summary of
 * suppressed lines is logged when the window rolls over. */
bool plugin__rate_ok(struct rate_limit *rl, unsigned max_per_10s, const char *what);

#endif
