/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The gizcloud store: one SQLite database file shared by the GService and the
 * broker plugin (two processes, one connection each, WAL mode, busy timeout).
 * Schema migrations (schema/NNN_*.sql, compiled in) are applied at open; a
 * database whose schema_version is newer than this build is refused.
 *
 * A struct giz_store is one connection with its prepared statements; it is
 * not thread-safe: use one per thread. Secrets (passcodes, passwords,
 * tokens) are stored only as salted/keyed hashes, never in clear.
 *
 * All functions return GIZ_OK or a negative enum giz_err. On GIZ_ERR_DB the
 * SQLite error has been logged (sqlite3_errstr + sqlite3_errmsg) and is also
 * available from giz_store_errmsg(). List functions call `cb` once per row
 * with a pointer valid only during the call; a non-zero return from `cb`
 * stops the iteration (the list function then returns GIZ_OK).
 */
#ifndef GIZ_STORE_H
#define GIZ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giz/error.h"

struct giz_store;

/* Fixed string sizes (including NUL). */
#define GIZ_PK_SIZE 33  /* product key / secret: 32 hex */
#define GIZ_DID_SIZE 23 /* DID: 22 base62 */
#define GIZ_MAC_SIZE 13 /* 12 hex, stored uppercase */
#define GIZ_VER_SIZE 33 /* soft/hard version strings */
#define GIZ_NAME_SIZE 129
#define GIZ_UID_SIZE 33      /* user id: 32 hex */
#define GIZ_CLIENTID_SIZE 24 /* "usr" + 20 base62 */
#define GIZ_TOKEN_SIZE 33    /* user token: 32 hex */
#define GIZ_URL_SIZE 513
#define GIZ_PATH_SIZE 1024
#define GIZ_MAX_PASSCODE 32 /* bytes; the store refuses longer passcodes */

/* Opens (creating if needed) the database at `path` and applies pending
 * migrations. On GIZ_ERR_SCHEMA_NEWER / GIZ_ERR_DB, `err` explains.
 * The caller owns *out and frees it with giz_store_close(). */
int giz_store_open(const char *path, struct giz_store **out, struct giz_error *err);
/* Finalizes statements and closes the connection. Accepts NULL. */
void giz_store_close(struct giz_store *s);
/* Text of the last SQLite error on this connection (static until next call). */
const char *giz_store_errmsg(struct giz_store *s);
/* Schema version this build applies, and the one found in the open database. */
int giz_store_schema_version_latest(void);
int giz_store_schema_version(struct giz_store *s);

/* Explicit transactions for batching (BEGIN IMMEDIATE / COMMIT / ROLLBACK). */
int giz_store_begin(struct giz_store *s);
int giz_store_commit(struct giz_store *s);
int giz_store_rollback(struct giz_store *s);

/* Online copy of the whole database into `dest_path` (SQLite backup API). */
int giz_store_backup(struct giz_store *s, const char *dest_path);

/* ---- products ------------------------------------------------------------ */
struct giz_product {
    char product_key[GIZ_PK_SIZE];
    char product_secret[GIZ_PK_SIZE]; /* needed in clear for the AES "safe" variants */
    char name[GIZ_NAME_SIZE];
    int64_t created_at;
};
typedef int (*giz_store_product_cb)(const struct giz_product *p, void *ud);

/* Creates a product with a fresh random key and secret; fills *out. */
int giz_store_product_create(struct giz_store *s, const char *name, struct giz_product *out);
/* Creates a product with a key (and optionally a secret) it already has —
 * the product key baked into existing firmware from the public cloud. Keys
 * are 32 hex digits (stored lowercase); NULL generates one. GIZ_ERR_EXISTS
 * if the key is taken, GIZ_ERR_INVAL if malformed. */
int giz_store_product_import(struct giz_store *s, const char *name, const char *product_key,
                             const char *product_secret, struct giz_product *out);
int giz_store_product_get(struct giz_store *s, const char *product_key, struct giz_product *out);
int giz_store_product_list(struct giz_store *s, giz_store_product_cb cb, void *ud);

/* ---- devices ------------------------------------------------------------- */
enum giz_device_status { GIZ_DEVICE_DISABLED = 0, GIZ_DEVICE_ACTIVE = 1 };

struct giz_device {
    char did[GIZ_DID_SIZE];
    char product_key[GIZ_PK_SIZE];
    char mac[GIZ_MAC_SIZE];
    int status; /* enum giz_device_status */
    char wifi_soft_version[GIZ_VER_SIZE], wifi_hard_version[GIZ_VER_SIZE];
    char mcu_soft_version[GIZ_VER_SIZE], mcu_hard_version[GIZ_VER_SIZE];
    bool online;
    int64_t last_seen; /* unix seconds, 0 = never */
    int64_t created_at;
};
typedef int (*giz_store_device_cb)(const struct giz_device *d, void *ud);

/* Registers a device. `mac` is 12 hex chars (any case; stored uppercase),
 * `passcode` 1..GIZ_MAX_PASSCODE printable ASCII.
 * Re-registration rule: an active device with the same product key and MAC
 * whose passcode matches gets its existing DID back (*created = false);
 * otherwise a new random DID is issued (*created = true) and any older DID
 * stays active until the firmware unregisters it with its old passcode.
 * GIZ_ERR_NOT_FOUND: unknown product key. GIZ_ERR_INVAL: bad mac/passcode. */
int giz_store_device_register(struct giz_store *s, const char *product_key, const char *mac,
                              const char *passcode, struct giz_device *out, bool *created);
/* Disables `did` if `passcode` matches; in the same transaction queues a
 * GIZ_OUTBOX_DEVICE_DISABLED event for the plugin (which kicks the session).
 * GIZ_ERR_NOT_FOUND, GIZ_ERR_AUTH (wrong passcode), GIZ_ERR_DISABLED (already). */
int giz_store_device_unregister(struct giz_store *s, const char *did, const char *passcode);
int giz_store_device_get(struct giz_store *s, const char *did, struct giz_device *out);
/* Verifies a device login. GIZ_OK (fills *out), GIZ_ERR_NOT_FOUND,
 * GIZ_ERR_DISABLED, GIZ_ERR_AUTH. Constant-time hash compare. */
int giz_store_device_auth(struct giz_store *s, const char *did, const char *passcode,
                          struct giz_device *out);
/* Lists devices, optionally of one product (NULL = all), ordered by creation,
 * at most `limit` rows (0 = no limit) after skipping `offset`. */
int giz_store_device_list(struct giz_store *s, const char *product_key, bool online_only,
                          unsigned limit, unsigned offset, giz_store_device_cb cb, void *ud);
/* Counts devices (all, or of one product; online_only to count online ones). */
int giz_store_device_count(struct giz_store *s, const char *product_key, bool online_only,
                           int64_t *count);
/* Records the firmware versions a device reported in an OTA check. type 1 WiFi, 2 MCU. */
int giz_store_device_set_versions(struct giz_store *s, const char *did, int type,
                                  const char *soft_version, const char *hard_version);
/* Presence, written by the plugin. */
int giz_store_device_set_online(struct giz_store *s, const char *did, bool online, int64_t now);
/* Marks every device offline (plugin start-up: nothing is connected yet). */
int giz_store_device_all_offline(struct giz_store *s);

/* ---- firmware ------------------------------------------------------------ */
struct giz_firmware {
    int64_t id; /* also the v4.0 "firmware id" (fid) */
    char product_key[GIZ_PK_SIZE];
    int type; /* 1 WiFi, 2 MCU */
    char soft_version[GIZ_VER_SIZE];
    char hard_version[GIZ_VER_SIZE]; /* "" = any hard version */
    char url[GIZ_URL_SIZE];          /* external URL, or "" when hosted here */
    char file_path[GIZ_PATH_SIZE];   /* hosted file, or "" */
    char md5[33];                    /* "" if unknown (external URL) */
    char filename[GIZ_NAME_SIZE];
    int64_t size; /* bytes, -1 if unknown */
    int64_t created_at;
};
typedef int (*giz_store_firmware_cb)(const struct giz_firmware *f, void *ud);

/* Inserts `fw` (id and created_at are assigned and written back). */
int giz_store_firmware_insert(struct giz_store *s, struct giz_firmware *fw);
int giz_store_firmware_get(struct giz_store *s, int64_t id, struct giz_firmware *out);
/* The newest firmware for (product, type) applicable to `hard_version`
 * (rows with an empty hard_version apply to all; NULL = any). GIZ_ERR_NOT_FOUND if none. */
int giz_store_firmware_latest(struct giz_store *s, const char *product_key, int type,
                              const char *hard_version, struct giz_firmware *out);
int giz_store_firmware_list(struct giz_store *s, const char *product_key, giz_store_firmware_cb cb,
                            void *ud);

/* ---- app users, sessions, bindings -------------------------------------- */
struct giz_session {
    char uid[GIZ_UID_SIZE];
    char token[GIZ_TOKEN_SIZE]; /* in clear only in the login answer; stored hashed */
    char mqtt_client_id[GIZ_CLIENTID_SIZE];
    char appid[GIZ_PK_SIZE]; /* "" if none given */
    int64_t expire_at;
};

/* Creates a user; `password` hashed with PBKDF2. GIZ_ERR_EXISTS if taken.
 * uid_out gets the new 32-hex uid. */
int giz_store_user_create(struct giz_store *s, const char *username, const char *password,
                          char uid_out[GIZ_UID_SIZE]);
/* Checks the password and creates a session valid `ttl_s` seconds with a new
 * random token and MQTT client id ("usr" + 20 base62). GIZ_ERR_AUTH on a wrong
 * username or password (same error for both). `appid` may be NULL. */
int giz_store_user_login(struct giz_store *s, const char *username, const char *password,
                         const char *appid, int64_t ttl_s, int64_t now, struct giz_session *out);
/* Looks a session up by its token (keyed hash). Fills *out except out->token.
 * GIZ_ERR_AUTH unknown token, GIZ_ERR_EXPIRED past expire_at. */
int giz_store_session_by_token(struct giz_store *s, const char *token, int64_t now,
                               struct giz_session *out);

#define GIZ_BIND_TEXT_SIZE 257 /* remark / dev_alias: up to 256 bytes of UTF-8 */
struct giz_binding {
    char uid[GIZ_UID_SIZE];
    char did[GIZ_DID_SIZE];
    char product_key[GIZ_PK_SIZE];
    bool online;
    int64_t created_at;
    /* schema 009 */
    char remark[GIZ_BIND_TEXT_SIZE];
    char dev_alias[GIZ_BIND_TEXT_SIZE];
    bool special; /* the device's first binder (Open API role "special", else "normal") */
};
typedef int (*giz_store_binding_cb)(const struct giz_binding *b, void *ud);

/* Binds `did` to `uid` after checking the device passcode; idempotent.
 * Queues a GIZ_OUTBOX_BINDING event. GIZ_ERR_NOT_FOUND, GIZ_ERR_AUTH, GIZ_ERR_DISABLED. */
int giz_store_binding_add(struct giz_store *s, const char *uid, const char *did,
                          const char *passcode);
/* Unbinds; queues GIZ_OUTBOX_BINDING. GIZ_ERR_NOT_FOUND if not bound. */
int giz_store_binding_remove(struct giz_store *s, const char *uid, const char *did);
int giz_store_binding_list_by_user(struct giz_store *s, const char *uid, giz_store_binding_cb cb,
                                   void *ud);
int giz_store_binding_list_by_device(struct giz_store *s, const char *did, giz_store_binding_cb cb,
                                     void *ud);
/* GIZ_OK if bound, GIZ_ERR_NOT_FOUND if not. */
int giz_store_binding_exists(struct giz_store *s, const char *uid, const char *did);

/* ---- device logs (0x0012) ------------------------------------------------ */
struct giz_device_log {
    int64_t id;
    char did[GIZ_DID_SIZE];
    int level;                           /* 1 error, 2 warn, 3 info */
    const char *tags, *source, *content; /* NUL-terminated, valid during callback */
    int64_t ts;
};
typedef int (*giz_store_log_cb)(const struct giz_device_log *l, void *ud);

/* Stores one log record (texts given with lengths; need not be NUL-terminated). */
int giz_store_log_insert(struct giz_store *s, const char *did, int level, const char *tags,
                         size_t tags_len, const char *source, size_t source_len,
                         const char *content, size_t content_len, int64_t ts);
/* Newest first, at most `limit` (0 = 100), only ids < before_id if before_id > 0. */
int giz_store_log_list(struct giz_store *s, const char *did, unsigned limit, int64_t before_id,
                       giz_store_log_cb cb, void *ud);
/* Keeps at most `keep` newest records per device. Looks only at devices
 * with records newer than this connection's previous prune (the first call
 * on a connection looks at all), so calling it often stays cheap. */
int giz_store_log_prune(struct giz_store *s, unsigned keep);

/* ---- outbox: GService -> plugin ------------------------------------------ */
enum giz_outbox_kind {
    GIZ_OUTBOX_OTA_PUSH = 1,        /* did or product_key (+fw_type); fid/url for v4.0 */
    GIZ_OUTBOX_DEVICE_DISABLED = 2, /* did: drop cached credentials, kick the session */
    GIZ_OUTBOX_BINDING = 3,         /* uid + did: binding added or removed */
    GIZ_OUTBOX_APP_PUBLISH = 4      /* did + client_id + payload: publish the payload to
                                       app2dev/<did>/<client_id> (the app Open API's
                                       control; schema 009) */
};
#define GIZ_OUTBOX_PAYLOAD_MAX 1024u /* bytes of an APP_PUBLISH payload */
struct giz_outbox_item {
    int64_t id;
    int kind;                      /* enum giz_outbox_kind */
    char did[GIZ_DID_SIZE];        /* "" if product-wide */
    char product_key[GIZ_PK_SIZE]; /* "" if one DID */
    char uid[GIZ_UID_SIZE];
    int fw_type;     /* 1 WiFi, 2 MCU, 0 = both/unknown */
    int ota_version; /* 40 -> 0x020E, 41 -> 0x0211 */
    int64_t fid;
    char url[GIZ_URL_SIZE];
    int64_t created_at;
    /* APP_PUBLISH (schema 009): the last topic level and the bytes */
    char client_id[GIZ_CLIENTID_SIZE];
    uint32_t payload_len;
    uint8_t payload[GIZ_OUTBOX_PAYLOAD_MAX];
};
typedef int (*giz_store_outbox_cb)(const struct giz_outbox_item *it, void *ud);

/* Appends an item (id, created_at assigned; *id_out optional). */
int giz_store_outbox_push(struct giz_store *s, const struct giz_outbox_item *it, int64_t *id_out);
/* Items with id > after_id, oldest first, at most `max`. */
int giz_store_outbox_fetch(struct giz_store *s, int64_t after_id, unsigned max,
                           giz_store_outbox_cb cb, void *ud);
/* Largest id present (0 if empty). */
int giz_store_outbox_last_id(struct giz_store *s, int64_t *id);
/* Deletes items created before `older_than` (unix seconds). */
int giz_store_outbox_prune(struct giz_store *s, int64_t older_than);

/* ---- WAL checkpoints (appended for the GService's checkpoint thread) ----- */
/* Called after every commit on a connection with the WAL's size in frames
 * (pages), from the committing thread; must be quick and not use `s`. */
typedef void (*giz_store_wal_cb)(void *ud, int wal_frames);
/* Replaces SQLite's automatic checkpoint on this connection (which runs,
 * fsyncs included, inside the commit once the WAL reaches 1000 pages) by
 * `cb`, whose owner is expected to run giz_store_checkpoint() on another
 * connection, off the request path. cb = NULL restores the automatic
 * checkpoint. GIZ_OK, GIZ_ERR_INVAL. */
int giz_store_set_wal_cb(struct giz_store *s, giz_store_wal_cb cb, void *ud);
/* Passive checkpoint: copies what it can of the WAL into the database
 * without waiting for readers or writers. *wal_frames / *done (optional)
 * get the WAL size and the frames now checkpointed. GIZ_OK or GIZ_ERR_DB
 * (logged; SQLITE_BUSY from another checkpoint in progress is GIZ_OK). */
int giz_store_checkpoint(struct giz_store *s, int *wal_frames, int *done);

/* ---- broker liveness (appended; schema 005, table broker) ---------------- */
/* One row per database: the broker plugin that serves it. Times are unix
 * milliseconds (wall clock, comparable across processes and containers).
 * Writer: the plugin, on the broker thread:
 *   giz_store_broker_start     once at start (replaces any older row; clears stopped),
 *   giz_store_broker_heartbeat about every 5 s (inside its DB batch transaction),
 *   giz_store_broker_stop      at a clean stop (a kill -9 leaves the heartbeat to age).
 * now_ms <= 0 means "now". pid must be > 0 (GIZ_ERR_INVAL). heartbeat and stop
 * return GIZ_ERR_NOT_FOUND when the row is not this pid's running row (another
 * broker started since, or start was never recorded): the caller re-runs start.
 * Reader: the GService (any connection, any thread owning it). */
struct giz_broker_status {
    int64_t pid;
    int64_t started_at_ms;
    int64_t heartbeat_at_ms; /* equals stopped_at_ms once stopped */
    bool stopped;            /* a clean stop was recorded */
    int64_t stopped_at_ms;   /* 0 while running */
};
int giz_store_broker_start(struct giz_store *s, int64_t pid, int64_t now_ms);
int giz_store_broker_heartbeat(struct giz_store *s, int64_t pid, int64_t now_ms);
int giz_store_broker_stop(struct giz_store *s, int64_t pid, int64_t now_ms);
/* Fills *out. GIZ_ERR_NOT_FOUND if no broker ever started on this database. */
int giz_store_broker_get(struct giz_store *s, struct giz_broker_status *out);
/* *alive = a broker row exists, is not stopped, and its heartbeat is at most
 * max_age_ms old by this process's wall clock (a heartbeat in the future
 * counts as fresh). No row: GIZ_OK with *alive = false. GIZ_ERR_INVAL on
 * NULL arguments or max_age_ms < 0; GIZ_ERR_DB on a read error (*alive =
 * false). One indexed read of one row, no write: cheap enough per request.
 * The plugin beats every 5 s, so max_age_ms of 15000 tolerates two missed
 * beats (a busy broker thread, a locked database). */
int giz_store_broker_alive(struct giz_store *s, int64_t max_age_ms, bool *alive);

/* ---- broker registry (schema 012, table brokers; issue 18) ---------------
 * Several brokers, one row each, keyed by name. The liveness calls above
 * act on the row of this connection's broker name (giz_store_set_broker;
 * "broker" when none was set), giz_store_broker_get reads the freshest row
 * and giz_store_broker_alive says whether any broker is alive, so one broker
 * behaves as before.
 * Liveness: not stopped and a heartbeat at most max_age_ms old by the
 * reader's wall clock (the plugin beats every GIZ_BROKER_BEAT_MS; readers
 * use GIZ_BROKER_MAX_AGE_MS unless configured). */
#define GIZ_BROKER_NAME_SIZE 65  /* 1..64 of [A-Za-z0-9._:-] */
#define GIZ_BROKER_HOST_SIZE 256 /* a DNS name or an address */
#define GIZ_BROKER_BEAT_MS 2000
#define GIZ_BROKER_MAX_AGE_MS 8000
struct giz_broker {
    char name[GIZ_BROKER_NAME_SIZE];
    char host[GIZ_BROKER_HOST_SIZE]; /* "" = not advertised (use the GService's m2m host) */
    unsigned port, tls_port;         /* 0 = not advertised / no TLS listener */
    int64_t pid, started_at_ms, heartbeat_at_ms, stopped_at_ms; /* stopped_at_ms 0: running */
    bool stopped;
    int64_t devices;     /* devices it held at its last heartbeat */
    int64_t swept_at_ms; /* its devices were marked offline then (0: not swept) */
    bool alive;          /* filled by the readers that take max_age_ms */
};
typedef int (*giz_store_broker_cb)(const struct giz_broker *b, void *ud);

/* true if name is 1..64 characters of [A-Za-z0-9._:-]. */
bool giz_broker_name_valid(const char *name);
/* Names the broker this connection speaks for (the plugin's). From then on
 * presence writes are scoped to it: giz_store_device_set_online(true)
 * records it as the device's broker, (false) only clears a device still
 * held by it (or by none), giz_store_device_all_offline only touches its
 * own devices (and those of no broker). GIZ_ERR_INVAL on a bad name. */
int giz_store_set_broker(struct giz_store *s, const char *name);
/* Records this connection's broker (name from giz_store_set_broker) as
 * started with b's host/port/tls_port and pid (replacing the row of an
 * earlier run of the same name; clears stopped and swept). */
int giz_store_broker_register(struct giz_store *s, const struct giz_broker *b, int64_t now_ms);
/* Heartbeat of this connection's broker with its device count (devices < 0:
 * keep the last). *was_swept (may be NULL): a sweep had marked its devices
 * offline since its previous heartbeat (the broker then writes its live
 * devices online again). GIZ_ERR_NOT_FOUND: not this pid's running row. */
int giz_store_broker_beat(struct giz_store *s, int64_t pid, int64_t devices, int64_t now_ms,
                          bool *was_swept);
/* Every broker, by name, with alive computed for max_age_ms. */
int giz_store_broker_list(struct giz_store *s, int64_t max_age_ms, giz_store_broker_cb cb,
                          void *ud);
/* One broker by name: GIZ_OK, GIZ_ERR_NOT_FOUND. */
int giz_store_broker_find(struct giz_store *s, const char *name, int64_t max_age_ms,
                          struct giz_broker *out);
/* The broker a device should use. Its recorded broker if that one is alive;
 * otherwise the least-loaded live broker (load: its devices online, plus
 * those assigned to it in the last 60 s that have not connected yet; ties
 * by name), which is recorded for the device when `assign` (so every
 * GService answers the same; a concurrent assignment that won is used
 * instead). GIZ_OK with *out filled (alive true); GIZ_ERR_NOT_FOUND when no
 * broker is alive (or no such device), *out zeroed. */
int giz_store_device_broker_route(struct giz_store *s, const char *did, int64_t max_age_ms,
                                  bool assign, struct giz_broker *out);
/* The name of the device's broker into name (GIZ_BROKER_NAME_SIZE; "" if
 * none); *assigned_at_ms (may be NULL) when provision assigned it.
 * GIZ_ERR_NOT_FOUND: no such device. */
int giz_store_device_broker(struct giz_store *s, const char *did, char *name,
                            int64_t *assigned_at_ms);
/* Broker death: for every broker neither stopped nor swept whose heartbeat
 * is older than max_age_ms, marks its online devices offline, with a
 * `disconnect` event (reason "broker lost", broker <name>) on each one's
 * timeline, and records the sweep. One transaction per broker; several
 * processes may race (a broker is swept once: the claim is a conditional
 * UPDATE). *devices (may be NULL): devices marked offline by this call. */
int giz_store_broker_sweep(struct giz_store *s, int64_t max_age_ms, int64_t *devices);
/* Calls cb(name, text, ud) for the metrics snapshot of every live broker,
 * by name; text is valid during the call. */
typedef int (*giz_store_broker_metrics_cb)(const char *name, const char *text, void *ud);
int giz_store_broker_metrics_each(struct giz_store *s, int64_t max_age_ms,
                                  giz_store_broker_metrics_cb cb, void *ud);

/* ---- device details from newer firmware (appended by gsvc, schema 003) --
 * What newer firmware sends besides MAC and passcode: register and OTA
 * check bodies may carry type (normal | center_control), extra, and the SDK
 * versions; the safe register plaintext is_reset, auth_key, random_code,
 * lan_proto_ver. Texts are stored as given (the GService keeps only
 * printable ASCII that fits). auth_key is a device secret: only a keyed
 * digest (HMAC-SHA256 with the store's token key) is stored, never the key. */
#define GIZ_DEVINFO_SIZE 65
struct giz_device_info {
    char reg_type[GIZ_DEVINFO_SIZE]; /* the register body's "type" */
    char extra[GIZ_DEVINFO_SIZE];
    char sdk_hard_version[GIZ_VER_SIZE];
    char sdk_soft_version[GIZ_VER_SIZE];
    char is_reset[GIZ_DEVINFO_SIZE];
    char random_code[GIZ_DEVINFO_SIZE];
    char lan_proto_ver[GIZ_VER_SIZE];
    bool auth_key_set;  /* out: a digest of an auth_key is stored */
    int64_t updated_at; /* out: unix seconds, 0 = nothing recorded */
};
/* Merges `info` into the DID's record: a non-empty field replaces the stored
 * one, an empty field keeps it; `auth_key` (NULL or "" = keep) is stored as
 * its keyed digest only. info->auth_key_set/updated_at are ignored.
 * GIZ_ERR_NOT_FOUND unknown DID, GIZ_ERR_INVAL a field that does not fit. */
int giz_store_device_info_update(struct giz_store *s, const char *did,
                                 const struct giz_device_info *info, const char *auth_key);
/* Fills *out; a DID with nothing recorded gives GIZ_OK with empty fields and
 * updated_at 0 (also for an unknown DID). */
int giz_store_device_info_get(struct giz_store *s, const char *did, struct giz_device_info *out);
/* GIZ_OK if `auth_key` matches the stored digest (constant time),
 * GIZ_ERR_AUTH if not, GIZ_ERR_NOT_FOUND if no digest is stored. */
int giz_store_device_info_auth_key_check(struct giz_store *s, const char *did,
                                         const char *auth_key);

/* ---- firmware by version (appended by gsvc) --------------------------------
 * The firmware row with exactly this (product, type, soft_version,
 * hard_version) — hard_version "" matches only rows without one. The newest
 * such row if several exist (databases from before uploads were checked).
 * GIZ_ERR_NOT_FOUND if none. */
int giz_store_firmware_find(struct giz_store *s, const char *product_key, int type,
                            const char *soft_version, const char *hard_version,
                            struct giz_firmware *out);

/* ---- keyed passcode verifier (appended by helper "auth", schema 004) -----
 * plugin/DESIGN.md "Passcode verification". With a key loaded, a connection
 * writes HMAC-SHA256(key, did, passcode) beside the PBKDF2 hash of every
 * device it registers, checks device passcodes against it (one HMAC instead
 * of PBKDF2; a miss is final, no PBKDF2 is run), and fills it in for rows
 * that verified through PBKDF2 (older rows, other key): best effort, never
 * waiting for the write lock. Without a key nothing changes. */
/* Writes path as log lines and error texts may show it into out (cap
 * bytes, truncated) and returns out: an SQLite path as it is, a
 * postgresql:// URI with its password replaced by "***". */
const char *giz_store_path_display(const char *path, char *out, size_t cap);
/* Writes the default key file path for a database, "<db folder>/passcode.key",
 * into out. GIZ_ERR_INVAL (no file database, e.g. ":memory:"), GIZ_ERR_NOSPACE. */
int giz_store_passcode_key_default(const char *db_path, char *out, size_t cap);
/* Loads (creating it once if missing, see giz_passcode_key_load; 0600, or
 * 0640 when the database file is group-readable) the key file `path` (NULL or "" = the default
 * beside this connection's database) and uses it on this connection. GIZ_OK; GIZ_ERR_INVAL
 * (refused: mode open to other users, symlink, malformed) or GIZ_ERR_IO, with one sentence in `why`
 * (optional) for the operator — the caller should refuse to start. */
int giz_store_passcode_key_load(struct giz_store *s, const char *path, char *why, size_t why_cap);
/* Uses a key already loaded with giz_passcode_key_load (giz/crypto.h) on
 * this connection (copied; NULL = stop using one). For a process that opens
 * connections on demand: load the file once at start-up (fail closed), then
 * set it on each new connection. GIZ_OK, GIZ_ERR_INVAL (s NULL). */
struct giz_passcode_key;
int giz_store_set_passcode_key(struct giz_store *s, const struct giz_passcode_key *k);
/* giz_store_device_auth with a cost budget: slow_ok false forbids PBKDF2 —
 * a row that would need it (no usable keyed verifier, not in the verified
 * cache) gives GIZ_ERR_AUTH with *slow = true and nothing checked; the
 * caller should answer "busy, retry" rather than "wrong passcode". *slow
 * (optional) is true whenever PBKDF2 was needed (run or refused). */
int giz_store_device_auth_budget(struct giz_store *s, const char *did, const char *passcode,
                                 bool slow_ok, struct giz_device *out, bool *slow);

/* ---- verified-passcode cache (one object, owned by whoever needs it) -----
 * plugin/DESIGN.md "Passcode verification". Remembers, per DID, that a
 * passcode verified recently: HMAC-SHA256(cache-random key, did \n passcode)
 * with the device's product key and, when known, a tag of the stored
 * PBKDF2 hash (an entry put by a store only vouches for the hash it saw).
 * No clear passcode is kept. At most max_entries DIDs (further puts are
 * dropped while full; an expired entry is reused); an entry answers for
 * ttl_s seconds of CLOCK_MONOTONIC. The broker plugin owns one (options
 * auth_cache_ttl / auth_cache_max) and checks it before SQLite; a process
 * with several connections (the GService pool) shares one between them.
 * Thread-safe (one mutex); a miss costs one HMAC, so a wrong passcode takes
 * as long as without it. */
struct giz_pcache;
/* Creates an empty cache (the table is allocated on the first put). ttl_s
 * 0 or max_entries 0: a cache that never answers. NULL on out of memory or
 * no random key. Free with giz_pcache_free (NULL is ok). */
struct giz_pcache *giz_pcache_new(unsigned ttl_s, unsigned max_entries);
void giz_pcache_free(struct giz_pcache *c);
/* true if passcode verified for did within the TTL (any_age: at any time
 * since it was put); with stored_hash != NULL the entry must also have
 * been put for that hash. Copies the product key into product_key (if not
 * NULL; GIZ_PK_SIZE bytes). c NULL: false. */
bool giz_pcache_check(struct giz_pcache *c, const char *did, const char *passcode,
                      const char *stored_hash, bool any_age, char *product_key);
/* Remembers that passcode verified for did (product key and stored hash
 * may be NULL; a NULL hash keeps the hash tag an entry for the same
 * passcode had). Best effort: nothing happens when full or out of memory. */
void giz_pcache_put(struct giz_pcache *c, const char *did, const char *passcode,
                    const char *product_key, const char *stored_hash);
/* Drops did's entry (unregister, disable, unknown DID). */
void giz_pcache_forget(struct giz_pcache *c, const char *did);
/* Number of entries held (expired ones included until reused). */
size_t giz_pcache_count(struct giz_pcache *c);
/* Makes connection s use c (NULL: none; the default): device passcode
 * checks consult it before PBKDF2 and fill it after every success, and
 * giz_store_device_unregister drops the DID. c stays the caller's and must
 * outlive s (or be detached first). GIZ_OK, GIZ_ERR_INVAL (s NULL). */
int giz_store_set_pcache(struct giz_store *s, struct giz_pcache *c);

/* ==== events: the per-device timeline (helper "timeline", issue 14) ========
 * One table shared by both processes (schema/006_events.sql). The GService
 * appends HTTP device-API events (source "http") from its writer thread;
 * the broker plugin appends MQTT events (source "mqtt") the same way,
 * batched from its TICK: giz_store_event_append() with the batch, then now
 * and then giz_store_event_prune(), and giz_store_event_count_dropped()
 * for events its own queue had to drop. Event ids only grow (never reused);
 * they are the stream's cursor. */
#define GIZ_EVENT_KIND_SIZE 24    /* "download", "ota_check", "publish_in", ... */
#define GIZ_EVENT_FIELDS_MAX 8192 /* bytes of the JSON object text */

struct giz_event {
    int64_t id;             /* set by the store (append ignores it) */
    char did[GIZ_DID_SIZE]; /* "" = no device known (e.g. a download without ?did=) */
    int64_t ts;             /* unix milliseconds */
    char kind[GIZ_EVENT_KIND_SIZE];
    const char *source; /* "http" or "mqtt" */
    const char *fields; /* a JSON object ("{...}"); NULL = "{}" */
    /* list only: the whole event as one JSON object {"id","ts","kind","did",
     * "source", ...fields} (fields merged in), valid during the callback. */
    const char *json;
};
typedef int (*giz_store_event_cb)(const struct giz_event *ev, void *ud);

/* Appends n events in one transaction (a savepoint inside the caller's).
 * *last_id (may be NULL) gets the id of the last one. GIZ_OK; GIZ_ERR_INVAL
 * (bad did/kind/source, fields not "{...}") or GIZ_ERR_OVERSIZE (fields over
 * GIZ_EVENT_FIELDS_MAX) for any event — then nothing is written; or a DB
 * error. */
int giz_store_event_append(struct giz_store *s, const struct giz_event *ev, size_t n,
                           int64_t *last_id);

/* What giz_store_event_list() returns: events with id > after_id (0: from
 * the start) and, if since_ts >= 0, ts >= since_ts; of one device (did) or
 * all (did NULL); of one kind (kind NULL: any); at most limit (0: 100),
 * oldest first. */
struct giz_event_query {
    const char *did;
    int64_t after_id;
    int64_t since_ts;
    const char *kind;
    unsigned limit;
};
/* Calls cb once per event (pointers valid during the call). GIZ_OK,
 * GIZ_ERR_INVAL, or a DB error. */
int giz_store_event_list(struct giz_store *s, const struct giz_event_query *q,
                         giz_store_event_cb cb, void *ud);
/* Highest event id ever assigned (0 if none) into *id. */
int giz_store_event_last_id(struct giz_store *s, int64_t *id);
/* Events dropped so far (pruned by either cap or refused by a full queue),
 * of one device (did; NULL = all, including folded ones) and one source
 * (NULL = both), into *n. */
int giz_store_event_dropped(struct giz_store *s, const char *did, const char *source, int64_t *n);
/* Adds n events a writer's queue had to drop (reason "queue") for did
 * ("" if none) and source. */
int giz_store_event_count_dropped(struct giz_store *s, const char *did, const char *source,
                                  int64_t n);
/* Keeps the newest per_device events of each device with events newer than
 * the last prune (any process's), and the newest `total` overall (0: no
 * cap). Counts what it deletes in event_drops; *pruned (may be NULL) gets
 * the number deleted. One transaction. */
int giz_store_event_prune(struct giz_store *s, unsigned per_device, uint64_t total,
                          int64_t *pruned);
/* ==== end of events ======================================================== */

/* ==== app Open API accounts and bindings (helper "appapi", schema 009) ======
 * POST /app/users by email or anonymous phone_id, a session minted at
 * creation, remark / dev_alias of a binding, binding by product key + MAC. */
#define GIZ_PHONE_ID_MAX 64 /* bytes of an anonymous phone_id */
/* Creates a password user whose username is `email` (also stored as its
 * email; 3..128 printable bytes with one '@' not first or last).
 * GIZ_ERR_EXISTS if the name or email is taken, GIZ_ERR_INVAL if malformed. */
int giz_store_user_create_email(struct giz_store *s, const char *email, const char *password,
                                char uid_out[GIZ_UID_SIZE]);
/* The anonymous user of `phone_id` (1..GIZ_PHONE_ID_MAX printable bytes), made
 * on first use (*created = true), and a new session for it as
 * giz_store_user_login mints (ttl_s, now, appid NULL or base62). GIZ_ERR_INVAL. */
int giz_store_user_anonymous(struct giz_store *s, const char *phone_id, const char *appid,
                             int64_t ttl_s, int64_t now, struct giz_session *out, bool *created);
/* A new session for the existing user `uid` (after POST /app/users), as
 * giz_store_user_login mints it. GIZ_ERR_NOT_FOUND unknown uid. */
int giz_store_session_create(struct giz_store *s, const char *uid, const char *appid, int64_t ttl_s,
                             int64_t now, struct giz_session *out);
/* The binding (uid, did) with its device's product key and presence flag.
 * GIZ_ERR_NOT_FOUND if not bound. */
int giz_store_binding_get(struct giz_store *s, const char *uid, const char *did,
                          struct giz_binding *out);
/* Sets remark and/or dev_alias (NULL = keep; at most GIZ_BIND_TEXT_SIZE-1
 * bytes, else GIZ_ERR_INVAL) of the binding and fills *out (may be NULL)
 * with the result. GIZ_ERR_NOT_FOUND if not bound. */
int giz_store_binding_update(struct giz_store *s, const char *uid, const char *did,
                             const char *remark, const char *dev_alias, struct giz_binding *out);
/* Binds the newest active device of (product_key, mac) to uid without a
 * passcode (the caller checked the product-secret signature), setting
 * remark / dev_alias when not NULL; idempotent; queues GIZ_OUTBOX_BINDING.
 * *dev gets the device. GIZ_ERR_NOT_FOUND (no such active device or user),
 * GIZ_ERR_INVAL. */
int giz_store_binding_add_mac(struct giz_store *s, const char *uid, const char *product_key,
                              const char *mac, const char *remark, const char *dev_alias,
                              struct giz_device *dev);
/* A user as GET /app/users shows it. */
struct giz_user {
    char uid[GIZ_UID_SIZE];
    char username[129]; /* "" for an anonymous user */
    char email[129];    /* "" if none */
    bool anonymous;     /* made by phone_id and not yet given a username */
    int64_t created_at;
};
/* GIZ_OK with *out, GIZ_ERR_NOT_FOUND. */
int giz_store_user_get(struct giz_store *s, const char *uid, struct giz_user *out);
/* Checks old_password, then stores new_password (PBKDF2). GIZ_ERR_AUTH wrong
 * old password (or an anonymous user: it has none), GIZ_ERR_INVAL empty or
 * oversize, GIZ_ERR_NOT_FOUND. */
int giz_store_user_password_change(struct giz_store *s, const char *uid, const char *old_password,
                                   const char *new_password);
/* Turns the anonymous user uid into a password user named `username` (or,
 * with email not NULL, named and mailed `email`; then username is ignored);
 * its phone_id is forgotten (a later {phone_id} login makes a new user).
 * GIZ_ERR_EXISTS name/email taken, GIZ_ERR_DISABLED not anonymous,
 * GIZ_ERR_INVAL, GIZ_ERR_NOT_FOUND. */
int giz_store_user_claim(struct giz_store *s, const char *uid, const char *username,
                         const char *email, const char *password);
/* ==== end of app Open API ================================================== */

/* ==== operator control and list pages (helper "admin", issue 15) ==========
 * Device disable/enable/kick/delete for the admin API (schema/010_admin.sql:
 * devices.admin_disabled), and the paged lists with their totals. Every
 * change that must reach the broker queues a GIZ_OUTBOX_DEVICE_DISABLED row
 * in the same transaction (the plugin drops the DID's cached credentials and
 * kicks its session; an active device may log in again at once). */
/* Disables did as the operator: status 0, offline, admin_disabled (it keeps
 * the DID, disabled, if it registers again with the same MAC + passcode).
 * *changed (optional): it was active; then the kick is queued (a disabled
 * device has no session: logins are refused).
 * GIZ_ERR_NOT_FOUND. */
int giz_store_device_admin_disable(struct giz_store *s, const char *did, bool *changed);
/* Makes did active again (whether the operator disabled it or the firmware
 * unregistered it). *changed (optional): it was disabled. GIZ_ERR_NOT_FOUND. */
int giz_store_device_admin_enable(struct giz_store *s, const char *did, bool *changed);
/* Queues a kick of did's MQTT session (nothing else changes). GIZ_ERR_NOT_FOUND. */
int giz_store_device_kick(struct giz_store *s, const char *did);
/* Who disabled did: *admin_disabled (the operator), *disabled_at (unix s,
 * 0 = active). GIZ_ERR_NOT_FOUND. */
int giz_store_device_admin_state(struct giz_store *s, const char *did, bool *admin_disabled,
                                 int64_t *disabled_at);
/* Deletes did in one transaction: its bindings (a GIZ_OUTBOX_BINDING row per
 * user, so app sessions lose it), the rows of every other table with a `did`
 * column (device logs, device_info, later per-device tables), the device
 * row; queues the kick. The timeline (events, event_drops) and the outbox
 * stay: history. *unbound (optional) gets the bindings removed.
 * GIZ_ERR_NOT_FOUND; GIZ_ERR_EXISTS if another table still references it. */
int giz_store_device_delete(struct giz_store *s, const char *did, unsigned *unbound);
/* Pages: at most limit rows (0 = no limit) after skipping offset, in the
 * order of the matching _list function; the _count functions count what
 * the same filter matches (for "total"). */
int giz_store_product_page(struct giz_store *s, unsigned limit, unsigned offset,
                           giz_store_product_cb cb, void *ud);
int giz_store_product_count(struct giz_store *s, int64_t *count);
int giz_store_firmware_page(struct giz_store *s, const char *product_key, unsigned limit,
                            unsigned offset, giz_store_firmware_cb cb, void *ud);
int giz_store_firmware_count(struct giz_store *s, const char *product_key, int64_t *count);
/* Device logs newest first, ids < before_id when before_id > 0. */
int giz_store_log_page(struct giz_store *s, const char *did, unsigned limit, unsigned offset,
                       int64_t before_id, giz_store_log_cb cb, void *ud);
int giz_store_log_count(struct giz_store *s, const char *did, int64_t before_id, int64_t *count);
/* Deletes firmware id; *out (optional) gets the row as it was (the caller
 * removes a hosted file). GIZ_ERR_NOT_FOUND; GIZ_ERR_EXISTS if another
 * table still references it. */
int giz_store_firmware_delete(struct giz_store *s, int64_t id, struct giz_firmware *out);
/* ==== end of operator control ============================================== */

/* ==== broker metrics and device connections (helper "timeline", schema 008) =
 * The plugin's counters as Prometheus text (only gizcloud_broker_* lines),
 * written with its heartbeat; the GService's GET /metrics appends them. */
#define GIZ_BROKER_METRICS_MAX 65536
/* GIZ_ERR_NOT_FOUND if no broker row exists yet (start not recorded). */
int giz_store_broker_metrics_put(struct giz_store *s, const char *text, int64_t now_ms);
/* *text: malloc'd copy (the caller frees); *at_ms (may be NULL): when taken.
 * GIZ_ERR_NOT_FOUND if no broker row or no snapshot. */
int giz_store_broker_metrics_get(struct giz_store *s, char **text, int64_t *at_ms);

/* A device's current (or last) MQTT connection, kept beside devices.online. */
#define GIZ_CONN_PEER_SIZE 72 /* "[v6]:port" */
struct giz_device_conn {
    char peer[GIZ_CONN_PEER_SIZE];
    int keepalive;       /* granted (after the plugin's clamp), seconds */
    int keepalive_asked; /* what the CONNECT asked; -1 unknown */
    int protocol_level;  /* 3 (3.1), 4 (3.1.1), 5 */
    bool clean_session;
    int64_t connected_at_ms; /* unix ms */
};
int giz_store_device_conn_set(struct giz_store *s, const char *did,
                              const struct giz_device_conn *c);
/* GIZ_ERR_NOT_FOUND if the device never connected. */
int giz_store_device_conn_get(struct giz_store *s, const char *did, struct giz_device_conn *out);
/* Adds n events of did a writer did not insert because the per-device
 * bound would have pruned them at once (reason "device", as the prune
 * counts them). */
int giz_store_event_count_pruned(struct giz_store *s, const char *did, const char *source,
                                 int64_t n);
/* ==== end of broker metrics and device connections ========================= */

/* ==== data points (helper "datapoints", schema 007) ==========================
 * A product's data-point schema (the Gizwits data-point JSON, giz/p0.h) and
 * each device's latest decoded data points. */

/* Most bytes of a stored schema. */
#define GIZ_DATAPOINTS_MAX_JSON (1024u * 1024u)

/* Stores (replaces) the data-point JSON json[0..len) of a product; the caller
 * has validated it (giz_p0_schema_parse). GIZ_ERR_NOT_FOUND: no such product;
 * GIZ_ERR_OVERSIZE: over GIZ_DATAPOINTS_MAX_JSON. */
int giz_store_datapoints_put(struct giz_store *s, const char *product_key, const char *json,
                             size_t len, int64_t now_s);
/* Reads a product's data-point JSON into a new NUL-terminated *json (the
 * caller frees it with free()), its length and when it was stored (unix s,
 * optional). GIZ_ERR_NOT_FOUND: the product has none. */
int giz_store_datapoints_get(struct giz_store *s, const char *product_key, char **json, size_t *len,
                             int64_t *updated_at);

/* A device's latest state; text pointers valid only during the callback. */
struct giz_device_state {
    char did[GIZ_DID_SIZE];
    const char *attrs;           /* JSON object name -> value ("{}" before the first report) */
    int64_t updated_at;          /* unix ms of the newest report that decoded (0: none) */
    int64_t reports;             /* reports that decoded */
    int64_t malformed_at;        /* unix ms of the newest that did not (0: none) */
    const char *malformed_error; /* its decoder error ("" if none) */
    const char *malformed_hex;   /* its first p0 bytes as hex ("" if none) */
    int64_t malformed_count;
};
typedef int (*giz_store_device_state_cb)(const struct giz_device_state *st, void *ud);

/* Records a decoded status report: attrs_json (a JSON object) replaces the
 * state when `replace` (a full, fixed-length report), else it is merged in
 * (a variable-length report carries only what changed). ts_ms: when it came.
 * GIZ_ERR_NOT_FOUND: no such device; GIZ_ERR_INVAL: attrs_json not an object. */
int giz_store_device_state_report(struct giz_store *s, const char *did, const char *attrs_json,
                                  bool replace, int64_t ts_ms);
/* Records a report that did not decode (the state's attrs stay as they were):
 * error text and hex are copied (each cut at 512 bytes). */
int giz_store_device_state_malformed(struct giz_store *s, const char *did, const char *error,
                                     const char *hex, int64_t ts_ms);
/* Calls cb once with the device's state: GIZ_OK, GIZ_ERR_NOT_FOUND (nothing
 * recorded yet) or an error. */
int giz_store_device_state_get(struct giz_store *s, const char *did, giz_store_device_state_cb cb,
                               void *ud);
/* ==== end of data points =================================================== */

/* ==== OTA campaigns (helper "campaign", issue 16, schema 011) ===============
 * A campaign rolls one firmware out to the devices its targets resolved to
 * at creation; each device's state comes from its timeline, advanced by the
 * GService's campaign engine (gservice/campaign.c), which reads the events
 * table from a cursor kept in the store. Times: campaigns in unix s,
 * device progress in unix ms. */
enum giz_campaign_state {
    GIZ_CAMPAIGN_RUNNING = 0,
    GIZ_CAMPAIGN_PAUSED,
    GIZ_CAMPAIGN_CANCELLED,
    GIZ_CAMPAIGN_COMPLETED,
    GIZ_CAMPAIGN_STOPPED, /* by the failure threshold, a failed canary or the validity end */
    GIZ_CAMPAIGN_STATE_COUNT
};
enum giz_cdev_state {
    GIZ_CDEV_PENDING = 0,
    GIZ_CDEV_NOTIFIED,
    GIZ_CDEV_CHECKED,
    GIZ_CDEV_OFFERED,
    GIZ_CDEV_DOWNLOADING,
    GIZ_CDEV_DOWNLOADED,
    GIZ_CDEV_UPDATED,
    GIZ_CDEV_FAILED,
    GIZ_CDEV_STATE_COUNT
};
/* Names as stored and answered ("running", "pending", ...); parse returns
 * -1 for an unknown name. */
const char *giz_campaign_state_name(int state);
int giz_campaign_state_parse(const char *name);
const char *giz_cdev_state_name(int state);
int giz_cdev_state_parse(const char *name);

#define GIZ_CAMPAIGN_REASON_SIZE 160
#define GIZ_CAMPAIGN_KIND_SIZE 12 /* "all", "dids", "macs", "versions", "percent" */
struct giz_campaign {
    int64_t id;
    char name[GIZ_NAME_SIZE];
    char product_key[GIZ_PK_SIZE];
    int fw_type; /* 1 WiFi, 2 MCU */
    int64_t firmware_id;
    char soft_version[GIZ_VER_SIZE]; /* the firmware's: what "updated" means */
    char target_kind[GIZ_CAMPAIGN_KIND_SIZE];
    char version_min[GIZ_VER_SIZE], version_max[GIZ_VER_SIZE]; /* "" = open */
    unsigned percent;                                          /* 1..100 */
    unsigned canary;              /* devices notified first; the rest wait until they all update */
    unsigned failure_threshold;   /* failed devices that stop the campaign; 0 = never */
    int64_t starts_at, ends_at;   /* validity, unix s; 0 = open */
    int window_start, window_end; /* notices in [start, end) UTC minutes of the day; -1 = any */
    bool force;                   /* notice on every login, not at most once a UTC day */
    unsigned timeout_s;           /* no progress this long after a notice: failed */
    unsigned max_checks;          /* OTA checks still at the old version: failed */
    int state;                    /* enum giz_campaign_state */
    char reason[GIZ_CAMPAIGN_REASON_SIZE];
    int64_t event_from; /* events with a higher id count as evidence */
    int64_t created_at, updated_at;
    int64_t devices; /* get / list: number of devices */
};
typedef int (*giz_store_campaign_cb)(const struct giz_campaign *c, void *ud);

/* Which devices a new campaign takes: the active devices of c->product_key
 * whose current version of c->fw_type is below c->soft_version (or
 * unknown), and further by c->target_kind: "dids" / "macs": only those in
 * list_json (a JSON array of strings); "versions": current version within
 * [version_min, version_max] ("" = open); "percent": the first percent %
 * (rounded up) in DID order. Canaries: the DIDs of canary_json (a JSON
 * array or NULL) that are targets, then more in DID order up to c->canary. */
struct giz_campaign_targets {
    const char *list_json;
    const char *canary_json;
};
/* Creates the campaign (running) and its device rows (pending) in one
 * transaction; fills c->id, state, event_from, created_at, updated_at,
 * devices and c->canary (canaries actually marked). *unmatched (may be
 * NULL): entries of list_json that are no target. GIZ_ERR_NOT_FOUND when no
 * device matches (nothing written), GIZ_ERR_INVAL (bad fields / JSON). */
int giz_store_campaign_create(struct giz_store *s, struct giz_campaign *c,
                              const struct giz_campaign_targets *t, int64_t *unmatched);
int giz_store_campaign_get(struct giz_store *s, int64_t id, struct giz_campaign *out);
/* Newest first; live_only: running, paused or stopped, or completed in the
 * last minute (the engine still takes its devices' late evidence). limit 0
 * = no limit. giz_store_campaign_count's live_only: the first three only. */
int giz_store_campaign_list(struct giz_store *s, bool live_only, unsigned limit, unsigned offset,
                            giz_store_campaign_cb cb, void *ud);
int giz_store_campaign_count(struct giz_store *s, bool live_only, int64_t *count);
/* Sets the state and reason (NULL = "") if the campaign is in one of the
 * states of from_mask (bits 1 << state); *old (may be NULL) gets the state
 * it had. GIZ_ERR_NOT_FOUND; GIZ_ERR_EXISTS if its state is not in the mask
 * (nothing changed). */
int giz_store_campaign_set_state(struct giz_store *s, int64_t id, unsigned from_mask, int state,
                                 const char *reason, int *old);

struct giz_cdev {
    int64_t campaign_id;
    char did[GIZ_DID_SIZE];
    char mac[GIZ_MAC_SIZE];
    bool canary;
    int state; /* enum giz_cdev_state */
    char reason[GIZ_CAMPAIGN_REASON_SIZE];
    char from_version[GIZ_VER_SIZE], version[GIZ_VER_SIZE]; /* at creation, last reported */
    int64_t notices, checks, downloads, bytes;
    int percent;        /* last 0x022C percent, -1 = none */
    int64_t notice_day; /* UTC day of the last notice, -1 = none */
    int64_t notified_at, checked_at, offered_at, downloading_at, downloaded_at, done_at;
    int64_t progress_at; /* the last evidence or notice (the timeout runs from it) */
};
typedef int (*giz_store_cdev_cb)(const struct giz_cdev *d, void *ud);

/* Device rows of one campaign in DID order: state >= 0 only that state;
 * stale_before_ms > 0 only rows in notified..downloaded with progress_at
 * below it; due_online: only pending rows whose device is online (canary
 * first; canary_only: only canaries). limit 0 = no limit. */
struct giz_cdev_query {
    int64_t campaign_id;
    int state;
    int64_t stale_before_ms;
    bool due_online, canary_only;
    unsigned limit, offset;
};
int giz_store_cdev_list(struct giz_store *s, const struct giz_cdev_query *q, giz_store_cdev_cb cb,
                        void *ud);
/* Rows per state (counts[GIZ_CDEV_STATE_COUNT]); canary_only counts canaries. */
int giz_store_cdev_counts(struct giz_store *s, int64_t campaign_id, bool canary_only,
                          int64_t counts[GIZ_CDEV_STATE_COUNT]);
/* Writes n rows back (all their mutable fields), one savepoint. */
int giz_store_cdev_put(struct giz_store *s, const struct giz_cdev *rows, size_t n);

/* Evidence for the engine: events with after < id <= upto of the kinds
 * ota_check, download, publish_in, subscribe whose device has a row not
 * updated or failed (or finished after done_after_ms: the other process's
 * late evidence) in a running, paused or stopped campaign created before
 * the event, at most `limit` events (oldest first); cb is called once per
 * (event, row) pair with ev (json unset) and a copy of the row as stored.
 * *last_id gets the id of the last event read (after when none). */
typedef int (*giz_store_evidence_cb)(const struct giz_event *ev, const struct giz_cdev *row,
                                     void *ud);
int giz_store_campaign_evidence(struct giz_store *s, int64_t after, int64_t upto, unsigned limit,
                                int64_t done_after_ms, giz_store_evidence_cb cb, void *ud,
                                int64_t *last_id, unsigned *events);
/* The engine's event cursor. */
int giz_store_campaign_cursor_get(struct giz_store *s, int64_t *event_id);
int giz_store_campaign_cursor_set(struct giz_store *s, int64_t event_id);
/* ==== end of OTA campaigns ================================================= */

/* ==== device search (web console, lib/store_device_search.c) ================ */
/* Devices whose DID starts with q or whose MAC contains q (any case), of one
 * product (NULL = all), ordered by creation, at most `limit` (0 = no limit)
 * after skipping `offset`; *total gets the number of all matches. q is 1..22
 * characters of [0-9A-Za-z], else GIZ_ERR_INVAL. */
int giz_store_device_search(struct giz_store *s, const char *product_key, const char *q,
                            unsigned limit, unsigned offset, giz_store_device_cb cb, void *ud,
                            int64_t *total);

#endif
