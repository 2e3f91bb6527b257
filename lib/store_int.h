/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private to lib/store_*.c: the store handle (one SQLite connection with its
 * prepared statements), the statement table, and the bind -> step -> reset,
 * error and transaction helpers every entity file uses (store_exec.c). The
 * store on SQLite: WAL, synchronous=NORMAL, foreign keys, a busy handler with
 * fine-grained retries; every statement prepared once at open; writes
 * spanning several statements run in BEGIN IMMEDIATE (or a savepoint inside
 * a caller's transaction), so a failure leaves nothing half-written;
 * expensive PBKDF2 work is done before taking the write lock wherever the
 * result allows it. Where things live: store_db.c (open, migrations, file
 * modes, backup, checkpoints), store_product.c, store_device.c (+
 * store_device_info.c), store_passcode.c (verification, keyed verifier,
 * the attached verified-passcode cache of passcode_cache.c),
 * store_account.c (users, sessions, bindings), store_firmware.c,
 * store_outbox.c, store_log.c, store_broker.c, store_event.c (the events
 * timeline); the domain rules
 * (registration, unregistering, login) in store_rules.c.
 */
#ifndef GIZ_STORE_INT_H
#define GIZ_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store_sq.h"
#include "giz/crypto.h"
#include "giz/log.h"
#include "giz/store.h"

#define STORE_BUSY_TIMEOUT_MS 5000
#define TOKEN_KEY_LEN 32
#define MAX_CANDIDATES 16
#define MAX_LOG_TEXT (1u << 20)
#define MAX_USERNAME 128
#define MAX_PASSWORD 1024

#define DEVICE_COLS                                                                                \
    "did, product_key, mac, status, wifi_soft_version, wifi_hard_version, mcu_soft_version, "      \
    "mcu_hard_version, online, last_seen, created_at"
#define FW_COLS                                                                                    \
    "id, product_key, type, soft_version, hard_version, url, file_path, md5, filename, size, "     \
    "created_at"
#define OUTBOX_COLS                                                                                \
    "id, kind, did, product_key, uid, fw_type, ota_version, fid, url, created_at, client_id, "     \
    "payload"
#define BROKER_COLS                                                                                \
    "b.name, b.host, b.port, b.tls_port, b.pid, b.started_at, b.heartbeat_at, "                    \
    "coalesce(b.stopped_at, 0), b.stopped_at IS NOT NULL, b.devices, coalesce(b.swept_at, 0)"
#define BINDING_SELECT                                                                             \
    "SELECT b.uid, b.did, d.product_key, d.online, b.created_at, b.remark, b.dev_alias, "          \
    "(SELECT x.uid FROM bindings x WHERE x.did = b.did ORDER BY x.created_at, x.bound_seq, "       \
    "x.uid LIMIT 1) "                                                                              \
    "= b.uid FROM bindings b JOIN devices d ON d.did = b.did "

/* Every statement the store runs, prepared once at open. */
#define STORE_STMTS(X)                                                                             \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(SAVEPOINT, "SAVEPOINT giz_op")                                                               \
    X(RELEASE, "RELEASE giz_op")                                                                   \
    X(ROLLBACK_TO, "ROLLBACK TO giz_op")                                                           \
    X(META_GET, "SELECT value FROM meta WHERE key = ?1")                                           \
    X(META_INSERT, "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)")                       \
    X(PRODUCT_INSERT, "INSERT INTO products(product_key, product_secret, name, created_at) "       \
                      "VALUES (?1, ?2, ?3, ?4)")                                                   \
    X(PRODUCT_GET, "SELECT product_key, product_secret, name, created_at FROM products "           \
                   "WHERE product_key = ?1")                                                       \
    X(PRODUCT_LIST, "SELECT product_key, product_secret, name, created_at FROM products "          \
                    "ORDER BY rowid")                                                              \
    X(DEVICE_CANDIDATES, "SELECT did, passcode_hash, passcode_mac FROM devices "                   \
                         "WHERE product_key = ?1 AND mac = ?2 AND (status = 1 OR "                 \
                         "admin_disabled = 1) ORDER BY rowid")                                     \
    X(DEVICE_INSERT, "INSERT INTO devices(did, product_key, mac, passcode_hash, status, "          \
                     "created_at, passcode_mac) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)")               \
    X(DEVICE_GET, "SELECT " DEVICE_COLS ", passcode_hash, passcode_mac FROM devices "              \
                  "WHERE did = ?1")                                                                \
    X(DEVICE_SET_PCMAC, "UPDATE devices SET passcode_mac = ?3 WHERE did = ?1 "                     \
                        "AND passcode_hash = ?2 AND status = 1")                                   \
    X(DEVICE_DISABLE, "UPDATE devices SET status = 0, online = 0, disabled_at = ?2 "               \
                      "WHERE did = ?1 AND status = 1")                                             \
    X(DEVICE_LIST, "SELECT " DEVICE_COLS " FROM devices WHERE (?1 IS NULL OR "                     \
                   "product_key = ?1) AND (?2 = 0 OR online = 1) ORDER BY rowid "                  \
                   "LIMIT ?3 OFFSET ?4")                                                           \
    X(DEVICE_COUNT, "SELECT count(*) FROM devices WHERE (?1 IS NULL OR product_key = ?1) "         \
                    "AND (?2 = 0 OR online = 1)")                                                  \
    X(DEVICE_SET_WIFI, "UPDATE devices SET wifi_soft_version = ?2, wifi_hard_version = ?3 "        \
                       "WHERE did = ?1")                                                           \
    X(DEVICE_SET_MCU, "UPDATE devices SET mcu_soft_version = ?2, mcu_hard_version = ?3 "           \
                      "WHERE did = ?1")                                                            \
    X(DEVICE_SET_ONLINE, "UPDATE devices SET online = ?2, last_seen = ?3 WHERE did = ?1")          \
    X(DEVICE_ALL_OFFLINE, "UPDATE devices SET online = 0 WHERE online <> 0")                       \
    X(FW_INSERT, "INSERT INTO firmware(product_key, type, soft_version, hard_version, url, "       \
                 "file_path, md5, filename, size, created_at) "                                    \
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")                               \
    X(FW_GET, "SELECT " FW_COLS " FROM firmware WHERE id = ?1")                                    \
    X(FW_LATEST, "SELECT " FW_COLS " FROM firmware WHERE product_key = ?1 AND type = ?2 "          \
                 "AND (hard_version = '' OR ?3 IS NULL OR hard_version = ?3) "                     \
                 "ORDER BY id DESC LIMIT 1")                                                       \
    X(FW_LIST, "SELECT " FW_COLS " FROM firmware WHERE ?1 IS NULL OR product_key = ?1 "            \
               "ORDER BY id")                                                                      \
    X(FW_FIND, "SELECT " FW_COLS " FROM firmware WHERE product_key = ?1 AND type = ?2 "            \
               "AND soft_version = ?3 AND hard_version = ?4 ORDER BY id DESC LIMIT 1")             \
    X(DEVINFO_UPSERT, "INSERT INTO device_info(did, reg_type, extra, sdk_hard_version, "           \
                      "sdk_soft_version, is_reset, random_code, lan_proto_ver, auth_key_digest, "  \
                      "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "              \
                      "ON CONFLICT(did) DO UPDATE SET "                                            \
                      "reg_type = iif(?2 <> '', ?2, reg_type), "                                   \
                      "extra = iif(?3 <> '', ?3, extra), "                                         \
                      "sdk_hard_version = iif(?4 <> '', ?4, sdk_hard_version), "                   \
                      "sdk_soft_version = iif(?5 <> '', ?5, sdk_soft_version), "                   \
                      "is_reset = iif(?6 <> '', ?6, is_reset), "                                   \
                      "random_code = iif(?7 <> '', ?7, random_code), "                             \
                      "lan_proto_ver = iif(?8 <> '', ?8, lan_proto_ver), "                         \
                      "auth_key_digest = iif(?9 <> '', ?9, auth_key_digest), "                     \
                      "updated_at = ?10")                                                          \
    X(DEVINFO_GET, "SELECT reg_type, extra, sdk_hard_version, sdk_soft_version, is_reset, "        \
                   "random_code, lan_proto_ver, auth_key_digest, updated_at FROM device_info "     \
                   "WHERE did = ?1")                                                               \
    X(USER_INSERT, "INSERT INTO users(uid, username, password_hash, created_at) "                  \
                   "VALUES (?1, ?2, ?3, ?4)")                                                      \
    X(USER_BY_NAME, "SELECT uid, password_hash FROM users WHERE username = ?1")                    \
    X(USER_EXISTS, "SELECT 1 FROM users WHERE uid = ?1")                                           \
    X(SESSION_INSERT, "INSERT INTO sessions(token_digest, uid, mqtt_client_id, appid, "            \
                      "expire_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                    \
    X(SESSION_PRUNE_USER, "DELETE FROM sessions WHERE uid = ?1 AND expire_at <= ?2")               \
    X(SESSION_GET, "SELECT uid, mqtt_client_id, appid, expire_at FROM sessions "                   \
                   "WHERE token_digest = ?1")                                                      \
    X(BINDING_INSERT,                                                                              \
      "INSERT OR IGNORE INTO bindings(uid, did, created_at, bound_seq) "                           \
      "VALUES (?1, ?2, ?3, (SELECT coalesce(max(bound_seq), 0) + 1 FROM bindings))")               \
    X(BINDING_DELETE, "DELETE FROM bindings WHERE uid = ?1 AND did = ?2")                          \
    X(BINDING_BY_USER, BINDING_SELECT "WHERE b.uid = ?1 ORDER BY b.created_at, b.did")             \
    X(BINDING_BY_DEVICE, BINDING_SELECT "WHERE b.did = ?1 ORDER BY b.created_at, b.uid")           \
    X(BINDING_EXISTS, "SELECT 1 FROM bindings WHERE uid = ?1 AND did = ?2")                        \
    X(BINDING_GET, BINDING_SELECT "WHERE b.uid = ?1 AND b.did = ?2")                               \
    X(BINDING_UPDATE, "UPDATE bindings SET remark = coalesce(?3, remark), "                        \
                      "dev_alias = coalesce(?4, dev_alias) WHERE uid = ?1 AND did = ?2")           \
    X(DEVICE_BY_MAC, "SELECT did FROM devices WHERE product_key = ?1 AND mac = ?2 "                \
                     "AND status = 1 ORDER BY rowid DESC LIMIT 1")                                 \
    X(USER_INSERT_EMAIL, "INSERT INTO users(uid, username, password_hash, created_at, email) "     \
                         "VALUES (?1, ?2, ?3, ?4, ?2)")                                            \
    X(USER_INSERT_ANON, "INSERT OR IGNORE INTO users(uid, username, password_hash, created_at, "   \
                        "phone_id) VALUES (?1, '$' || ?2, '!', ?3, ?2)")                           \
    X(USER_BY_PHONE_ID, "SELECT uid FROM users WHERE phone_id = ?1")                               \
    X(USER_GET, "SELECT uid, username, coalesce(email, ''), phone_id IS NOT NULL, "                \
                "password_hash, created_at FROM users WHERE uid = ?1")                             \
    X(USER_SET_PASSWORD, "UPDATE users SET password_hash = ?2 WHERE uid = ?1")                     \
    X(USER_CLAIM, "UPDATE users SET username = ?2, password_hash = ?3, email = ?4, "               \
                  "phone_id = NULL WHERE uid = ?1 AND phone_id IS NOT NULL")                       \
    X(LOG_INSERT, "INSERT INTO device_logs(did, level, tags, source, content, ts) "                \
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                               \
    X(LOG_LIST, "SELECT id, did, level, tags, source, content, ts FROM device_logs "               \
                "WHERE did = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3")                            \
    X(LOG_MAX_ID, "SELECT coalesce(max(id), 0) FROM device_logs")                                  \
    X(LOG_PRUNE, "WITH recent(did) AS (SELECT DISTINCT did FROM device_logs NOT INDEXED "          \
                 "WHERE id > ?2), "                                                                \
                 "cut(did, id) AS (SELECT did, (SELECT x.id FROM device_logs x WHERE x.did = "     \
                 "recent.did ORDER BY x.id DESC LIMIT 1 OFFSET ?1) FROM recent) "                  \
                 "DELETE FROM device_logs WHERE id IN (SELECT l.id FROM cut JOIN device_logs l "   \
                 "ON l.did = cut.did AND l.id <= cut.id)")                                         \
    X(OUTBOX_INSERT, "INSERT INTO outbox(kind, did, product_key, uid, fw_type, ota_version, "      \
                     "fid, url, created_at, client_id, payload) "                                  \
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")                      \
    X(OUTBOX_FETCH, "SELECT " OUTBOX_COLS " FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")       \
    X(OUTBOX_LAST, "SELECT coalesce(max(id), 0) FROM outbox")                                      \
    X(OUTBOX_PRUNE, "DELETE FROM outbox WHERE created_at < ?1")                                    \
    /* broker registry (schema 012, lib/store_broker.c) */                                         \
    X(BROKER_SWEPT, "SELECT coalesce(swept_at, 0) FROM brokers WHERE name = ?1 AND pid = ?2 "      \
                    "AND stopped_at IS NULL")                                                      \
    X(BROKER_BEAT, "UPDATE brokers SET heartbeat_at = ?3, devices = coalesce(?4, devices), "       \
                   "swept_at = NULL WHERE name = ?1 AND pid = ?2 AND stopped_at IS NULL")          \
    X(BROKER_LIVE_COUNT, "SELECT count(*) FROM brokers WHERE stopped_at IS NULL "                  \
                         "AND heartbeat_at >= ?1")                                                 \
    X(BROKER_LEAST, "SELECT " BROKER_COLS ", (SELECT count(*) FROM devices d WHERE "               \
                    "d.broker = b.name AND (d.online = 1 OR d.broker_at >= ?2)) AS load "          \
                    "FROM brokers b WHERE b.stopped_at IS NULL AND b.heartbeat_at >= ?1 "          \
                    "ORDER BY load, b.name LIMIT 1")                                               \
    X(BROKER_FIND, "SELECT " BROKER_COLS " FROM brokers b WHERE b.name = ?1")                      \
    X(DEVICE_BROKER_GET, "SELECT coalesce(broker, ''), coalesce(broker_at, 0) FROM devices "       \
                         "WHERE did = ?1")                                                         \
    X(DEVICE_BROKER_SET, "UPDATE devices SET broker = ?2, broker_at = ?3 WHERE did = ?1 "          \
                         "AND coalesce(broker, '') = ?4")                                          \
    X(DEVICE_SET_ONLINE_AT, "UPDATE devices SET online = 1, last_seen = ?2, broker = ?3 "          \
                            "WHERE did = ?1")                                                      \
    X(DEVICE_SET_OFFLINE_AT, "UPDATE devices SET online = 0, last_seen = ?2 WHERE did = ?1 "       \
                             "AND (broker IS NULL OR broker = ?3)")                                \
    /* a login's connection details (the plugin's DB batch: one per login) */                      \
    X(DEVICE_CONN_SET, "INSERT INTO device_conn(did, peer, keepalive, keepalive_asked, "           \
                       "protocol_level, clean_session, connected_at) VALUES (?1, ?2, ?3, ?4, "     \
                       "?5, ?6, ?7) ON CONFLICT(did) DO UPDATE SET peer = excluded.peer, "         \
                       "keepalive = excluded.keepalive, keepalive_asked = "                        \
                       "excluded.keepalive_asked, protocol_level = excluded.protocol_level, "      \
                       "clean_session = excluded.clean_session, connected_at = "                   \
                       "excluded.connected_at")                                                    \
    /* data points (helper "datapoints", schema 007; lib/store_datapoint.c) */                     \
    X(DP_PUT, "INSERT INTO product_datapoints(product_key, schema_json, updated_at) "              \
              "VALUES (?1, ?2, ?3) ON CONFLICT(product_key) DO UPDATE SET schema_json = ?2, "      \
              "updated_at = ?3")                                                                   \
    X(DP_GET, "SELECT schema_json, updated_at FROM product_datapoints WHERE product_key = ?1")     \
    X(DSTATE_REPORT, "INSERT INTO device_state(did, attrs, updated_at, reports) "                  \
                     "VALUES (?1, json(?2), ?3, 1) ON CONFLICT(did) DO UPDATE SET "                \
                     "attrs = iif(?4, json(?2), json_patch(attrs, ?2)), "                          \
                     "updated_at = max(updated_at, ?3), reports = reports + 1")                    \
    X(DSTATE_MALFORMED, "INSERT INTO device_state(did, malformed_at, malformed_error, "            \
                        "malformed_hex, malformed_count) VALUES (?1, ?2, ?3, ?4, 1) "              \
                        "ON CONFLICT(did) DO UPDATE SET malformed_at = ?2, malformed_error = ?3, " \
                        "malformed_hex = ?4, malformed_count = malformed_count + 1")               \
    X(DSTATE_GET, "SELECT did, attrs, updated_at, reports, malformed_at, malformed_error, "        \
                  "malformed_hex, malformed_count FROM device_state WHERE did = ?1")               \
    X(BROKER_GET, "SELECT " BROKER_COLS " FROM brokers b ORDER BY b.heartbeat_at DESC, b.name "    \
                  "LIMIT 1")                                                                       \
    /* operator device control, admin list pages (helper "admin", schema 010) */                   \
    X(DEVICE_ADMIN_DISABLE, "UPDATE devices SET status = 0, online = 0, admin_disabled = 1, "      \
                            "disabled_at = coalesce(disabled_at, ?2) WHERE did = ?1")              \
    X(DEVICE_ADMIN_ENABLE,                                                                         \
      "UPDATE devices SET status = 1, admin_disabled = 0, disabled_at = NULL "                     \
      "WHERE did = ?1")                                                                            \
    X(DEVICE_ADMIN_STATE, "SELECT admin_disabled, coalesce(disabled_at, 0) FROM devices "          \
                          "WHERE did = ?1")                                                        \
    X(DEVICE_DELETE, "DELETE FROM devices WHERE did = ?1")                                         \
    X(DEVICE_DID_TABLES, "SELECT m.name FROM sqlite_schema m, pragma_table_info(m.name) p "        \
                         "WHERE m.type = 'table' AND p.name = 'did' AND m.name NOT IN "            \
                         "('devices', 'bindings', 'outbox', 'events', 'event_drops', "             \
                         "'event_prune') ORDER BY m.name")                                         \
    X(BINDING_DELETE_DEVICE, "DELETE FROM bindings WHERE did = ?1")                                \
    X(PRODUCT_PAGE, "SELECT product_key, product_secret, name, created_at FROM products "          \
                    "ORDER BY rowid LIMIT ?1 OFFSET ?2")                                           \
    X(PRODUCT_COUNT, "SELECT count(*) FROM products")                                              \
    X(FW_PAGE, "SELECT " FW_COLS " FROM firmware WHERE ?1 IS NULL OR product_key = ?1 "            \
               "ORDER BY id LIMIT ?2 OFFSET ?3")                                                   \
    X(FW_COUNT, "SELECT count(*) FROM firmware WHERE ?1 IS NULL OR product_key = ?1")              \
    X(FW_DELETE, "DELETE FROM firmware WHERE id = ?1")                                             \
    X(LOG_PAGE, "SELECT id, did, level, tags, source, content, ts FROM device_logs "               \
                "WHERE did = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3 OFFSET ?4")                  \
    X(LOG_COUNT, "SELECT count(*) FROM device_logs WHERE did = ?1 AND id < ?2")

enum store_stmt_id {
#define STORE__STMT_ENUM(name, sql) ST_##name,
    STORE_STMTS(STORE__STMT_ENUM)
#undef STORE__STMT_ENUM
        ST__COUNT
};

/* ---- the handle ----------------------------------------------------------- */

struct giz_store {
    sqlite3 *db;            /* the SQLite backend, or NULL */
    struct store_pg *pg;    /* the PostgreSQL backend (store_pg.c), or NULL */
    sq_stmt *st[ST__COUNT]; /* points into st_slot once prepared */
    sq_stmt st_slot[ST__COUNT];
    int bind_rc; /* first failed bind since the last reset */
    int last_rc; /* extended code of the last failed step */
    int schema_version;
    uint8_t token_key[TOKEN_KEY_LEN];
    char errmsg[256];
    int64_t busy_since_us;   /* when the current wait for a lock began */
    giz_store_wal_cb wal_cb; /* NULL: SQLite's automatic checkpoint */
    void *wal_ud;
    struct giz_pcache *pcache; /* verified-passcode cache, the caller's; NULL = none */
    int64_t log_pruned_upto;   /* device_logs ids up to here were pruned by this connection */
    int64_t log_pruned_keep;   /* with this `keep`; -1 = never pruned */
    /* keyed passcode verifier (helper "auth"): */
    struct giz_passcode_key pkey; /* valid if pkey_set */
    bool pkey_set;
    bool no_wait; /* the busy handler gives up at once (best-effort writes) */
    /* the broker this connection speaks for (giz_store_set_broker; "" = none:
     * presence writes are not scoped, the legacy liveness calls use "broker") */
    char broker_name[GIZ_BROKER_NAME_SIZE];
};

struct candidate {
    char did[GIZ_DID_SIZE];
    char hash[GIZ_HASH_STR_MAX];
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX]; /* "" if none */
};

enum txn_kind { TXN_TOP = 1, TXN_SAVEPOINT = 2 };

/* ---- store_exec.c: errors, binds, steps, transactions --------------------- */

/* Wall-clock seconds. */
int64_t store__now_s(void);
/* Fills err (may be NULL) with code and text. */
void store__set_err(struct giz_error *err, int code, const char *text);
/* Logs an SQLite failure and records it for giz_store_errmsg(). Returns
 * GIZ_ERR_NOMEM for SQLITE_NOMEM, GIZ_ERR_DB otherwise. */
int store__db_err(struct giz_store *s, int rc, const char *what);
/* Resets st and clears its bindings and the remembered bind failure. */
void store__reset(struct giz_store *s, sq_stmt *st);
/* Binds; the first failure is remembered and returned by store__step. A
 * NULL text binds NULL; textn binds n bytes (SQLITE_STATIC: v must outlive
 * the step). */
void store__bind_note(struct giz_store *s, int rc);
void store__bind_text(struct giz_store *s, sq_stmt *st, int i, const char *v);
void store__bind_textn(struct giz_store *s, sq_stmt *st, int i, const char *v, size_t n);
void store__bind_int(struct giz_store *s, sq_stmt *st, int i, int64_t v);
/* A one-off statement (not in the statement table): prepares sql into *st
 * (NULL on failure) and returns GIZ_OK or the store__db_err code;
 * store__finalize (NULL allowed) clears the remembered bind failure. */
int store__prepare(struct giz_store *s, const char *sql, sq_stmt **st, const char *what);
void store__finalize(struct giz_store *s, sq_stmt *st);
/* Steps st after checking the binds; returns the SQLite code. */
int store__step(struct giz_store *s, sq_stmt *st);
/* Runs a statement expected to produce no rows, then resets it. GIZ_OK or
 * the store__db_err code. */
int store__exec(struct giz_store *s, sq_stmt *st, const char *what);
/* Copies column i as text into buf (truncated to cap - 1, NUL-terminated). */
void store__col_text(sq_stmt *st, int i, char *buf, size_t cap);
/* true if v is non-NULL and NUL-terminated within cap bytes. */
bool store__fits(const char *v, size_t cap);
/* Refuses re-entrant use of a list statement from inside its own callback. */
int store__list_guard(struct giz_store *s, sq_stmt *st);
/* Ends a list loop on the last step's code src: GIZ_OK (SQLITE_ROW: the
 * callback stopped it, or SQLITE_DONE) or the store__db_err code; resets st. */
int store__list_end(struct giz_store *s, sq_stmt *st, int src, const char *what);
/* Ends a one-row read: GIZ_OK (SQLITE_ROW), GIZ_ERR_NOT_FOUND (SQLITE_DONE)
 * or the store__db_err code; resets st. */
int store__row_end(struct giz_store *s, sq_stmt *st, int src, const char *what);
/* Steps a SELECT 1 and resets: GIZ_OK (a row), GIZ_ERR_NOT_FOUND or an error. */
int store__row_exists(struct giz_store *s, sq_stmt *st, const char *what);
/* Steps a SELECT count(*) (binds done) into *out and resets: GIZ_OK or an error. */
int store__count(struct giz_store *s, sq_stmt *st, const char *what, int64_t *out);
/* Write transaction: BEGIN IMMEDIATE, or a savepoint when the caller opened
 * one with giz_store_begin(); *kind says which. store__txn_close commits
 * (rc == GIZ_OK) or rolls back and returns rc or the commit error. */
int store__txn_open(struct giz_store *s, int *kind);
void store__txn_abort(struct giz_store *s, int kind);
int store__txn_close(struct giz_store *s, int kind, int rc);

/* ---- store_device.c ------------------------------------------------------- */

/* Fills *d from a DEVICE_COLS row. */
void store__read_device_row(sq_stmt *st, struct giz_device *d);
/* Reads one device: GIZ_OK, GIZ_ERR_NOT_FOUND or an error. _secret also
 * copies its passcode hash (hash_cap bytes) and keyed verifier (pcmac,
 * GIZ_PASSCODE_MAC_STR_MAX bytes; "" if none) when hash != NULL. */
int store__device_read(struct giz_store *s, const char *did, struct giz_device *out, char *hash,
                       size_t hash_cap);
int store__device_read_secret(struct giz_store *s, const char *did, struct giz_device *out,
                              char *hash, size_t hash_cap, char *pcmac);
/* Collects up to `max` active devices with this product key and MAC whose
 * DID is not in skip[0..nskip). */
int store__device_candidates(struct giz_store *s, const char *pk, const char *mac,
                             const struct candidate *skip, unsigned nskip, struct candidate *out,
                             unsigned max, unsigned *n);
/* Inserts an active device row (pcmac NULL: none). GIZ_OK, GIZ_ERR_EXISTS
 * (the DID is taken) or an error. */
int store__device_insert(struct giz_store *s, const char *did, const char *product_key,
                         const char *mac, const char *hash, const char *pcmac, int64_t now);
/* Disables an active device: GIZ_OK, GIZ_ERR_DISABLED (no active row) or an error. */
int store__device_disable(struct giz_store *s, const char *did, int64_t now);

/* ---- store_passcode.c ----------------------------------------------------- */

/* 1..GIZ_MAX_PASSCODE printable ASCII, no space, no '&'. */
bool store__passcode_ok(const char *passcode);
/* Verifies passcode for did against the row's hash / keyed verifier (see
 * store_passcode.c). *slow: PBKDF2 was needed (or refused when !slow_ok). */
int store__passcode_verify(struct giz_store *s, const char *did, const char *passcode,
                           const char *product_key, const char *hash, const char *pcmac,
                           bool slow_ok, bool *slow);
/* Reads the active device did and verifies passcode: GIZ_OK, GIZ_ERR_AUTH,
 * GIZ_ERR_DISABLED, GIZ_ERR_NOT_FOUND or an error; *dev filled when found. */
int store__device_verify_ex(struct giz_store *s, const char *did, const char *passcode,
                            struct giz_device *dev, bool slow_ok, bool *slow);
int store__device_verify(struct giz_store *s, const char *did, const char *passcode,
                         struct giz_device *dev);

/* ---- store_account.c ------------------------------------------------------ */

/* Reads uid and password hash of a user: GIZ_OK, GIZ_ERR_NOT_FOUND or an error. */
int store__user_by_name(struct giz_store *s, const char *username, char uid[GIZ_UID_SIZE],
                        char *hash, size_t hash_cap);
/* Drops the user's expired sessions and inserts sess under its token digest
 * (inside the caller's transaction). */
int store__session_insert(struct giz_store *s, const struct giz_session *sess, const char *digest,
                          int64_t now);
/* Mints a session for uid (new random token and MQTT client id, expiry now
 * + ttl_s, appid NULL or < GIZ_PK_SIZE bytes) and inserts it in its own
 * transaction (or the caller's savepoint). *out filled on GIZ_OK. */
int store__session_mint(struct giz_store *s, const char *uid, const char *appid, int64_t ttl_s,
                        int64_t now, struct giz_session *out);

/* ---- store_outbox.c ------------------------------------------------------- */

/* Inserts an outbox row (used alone and inside transactions). */
int store__outbox_insert(struct giz_store *s, const struct giz_outbox_item *it, int64_t now,
                         int64_t *id_out);

#endif
