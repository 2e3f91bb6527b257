/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The gizcloud store on SQLite: one connection per struct giz_store, shared
 * on disk by the GService and the broker plugin (WAL, synchronous=NORMAL,
 * foreign keys, 5 s busy timeout with fine-grained retries). Opening applies the compiled-in
 * migrations one transaction each and refuses databases stamped newer than
 * this build. Every statement is prepared once at open with bound parameters
 * and used as bind -> step -> reset; every SQLite failure is logged with
 * sqlite3_errstr() and sqlite3_errmsg(). Writes spanning several statements
 * run in BEGIN IMMEDIATE (or a savepoint inside a caller's transaction), so a
 * failure leaves nothing half-written; expensive PBKDF2 work is done before
 * taking the write lock wherever the result allows it.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include "giz/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#ifndef SQLITE_DEFAULT_WAL_AUTOCHECKPOINT
#define SQLITE_DEFAULT_WAL_AUTOCHECKPOINT 1000
#endif

#include "giz/crypto.h"
#include "giz/log.h"
#include "schema_gen.h"

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
#define OUTBOX_COLS "id, kind, did, product_key, uid, fw_type, ota_version, fid, url, created_at"
#define BINDING_SELECT                                                                             \
    "SELECT b.uid, b.did, d.product_key, d.online, b.created_at FROM bindings b "                  \
    "JOIN devices d ON d.did = b.did "

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
                         "WHERE product_key = ?1 AND mac = ?2 AND status = 1 ORDER BY rowid")      \
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
    X(BINDING_INSERT, "INSERT OR IGNORE INTO bindings(uid, did, created_at) "                      \
                      "VALUES (?1, ?2, ?3)")                                                       \
    X(BINDING_DELETE, "DELETE FROM bindings WHERE uid = ?1 AND did = ?2")                          \
    X(BINDING_BY_USER, BINDING_SELECT "WHERE b.uid = ?1 ORDER BY b.created_at, b.did")             \
    X(BINDING_BY_DEVICE, BINDING_SELECT "WHERE b.did = ?1 ORDER BY b.created_at, b.uid")           \
    X(BINDING_EXISTS, "SELECT 1 FROM bindings WHERE uid = ?1 AND did = ?2")                        \
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
                     "fid, url, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")          \
    X(OUTBOX_FETCH, "SELECT " OUTBOX_COLS " FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2")       \
    X(OUTBOX_LAST, "SELECT coalesce(max(id), 0) FROM outbox")                                      \
    X(OUTBOX_PRUNE, "DELETE FROM outbox WHERE created_at < ?1")                                   \
    X(BROKER_START, "INSERT INTO broker(id, pid, started_at, heartbeat_at, stopped_at) "           \
                    "VALUES (1, ?1, ?2, ?2, NULL) ON CONFLICT(id) DO UPDATE SET pid = ?1, "        \
                    "started_at = ?2, heartbeat_at = ?2, stopped_at = NULL")                       \
    X(BROKER_BEAT, "UPDATE broker SET heartbeat_at = ?2 WHERE id = 1 AND pid = ?1 "                \
                   "AND stopped_at IS NULL")                                                       \
    X(BROKER_STOP, "UPDATE broker SET stopped_at = ?2, heartbeat_at = ?2 WHERE id = 1 "            \
                   "AND pid = ?1")                                                                 \
    X(BROKER_GET, "SELECT pid, started_at, heartbeat_at, stopped_at FROM broker WHERE id = 1")

enum store_stmt_id {
#define STORE__STMT_ENUM(name, sql) ST_##name,
    STORE_STMTS(STORE__STMT_ENUM)
#undef STORE__STMT_ENUM
        ST__COUNT
};

static const char *const store_stmt_sql[ST__COUNT] = {
#define STORE__STMT_SQL(name, sql) sql,
    STORE_STMTS(STORE__STMT_SQL)
#undef STORE__STMT_SQL
};

struct giz_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    int bind_rc; /* first failed bind since the last reset */
    int last_rc; /* extended code of the last failed step */
    int schema_version;
    uint8_t token_key[TOKEN_KEY_LEN];
    char errmsg[256];
    int64_t busy_since_us; /* when the current wait for a lock began */
    giz_store_wal_cb wal_cb; /* NULL: SQLite's automatic checkpoint */
    void *wal_ud;
    bool vcache_ref; /* counted in vcache_users (an open store) */
    int64_t log_pruned_upto; /* device_logs ids up to here were pruned by this connection */
    int64_t log_pruned_keep; /* with this `keep`; -1 = never pruned */
    /* keyed passcode verifier (helper "auth"): */
    struct giz_passcode_key pkey; /* valid if pkey_set */
    bool pkey_set;
    bool no_wait; /* the busy handler gives up at once (best-effort writes) */
};

static void vcache_ref(struct giz_store *s);
static void vcache_unref(struct giz_store *s);

enum txn_kind { TXN_TOP = 1, TXN_SAVEPOINT = 2 };

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* SQLite busy handler: retry a locked database for up to
 * STORE_BUSY_TIMEOUT_MS. SQLite's own timeout handler sleeps 1, 2, 5, 10 ...
 * 100 ms between tries, while our write transactions hold the lock for tens
 * of microseconds: under a steady stream of writes from the GService threads
 * and the plugin, waiters slept >= 1 ms per conflict (measured with gizsim,
 * 2,000 devices: 60 to 120 sleeps, 0.15 to 0.24 s asleep in the GService's
 * two request threads). Here the pause starts at 20 us and doubles up to
 * 1 ms (measured: 0.02 to 0.07 s). Returns nonzero to retry. */
static int store_busy(void *ud, int count)
{
    struct giz_store *s = ud;
    int64_t now = mono_us();
    long pause_us;
    struct timespec ts;

    if (s->no_wait) return 0;
    if (count == 0) s->busy_since_us = now;
    if (now - s->busy_since_us >= (int64_t)STORE_BUSY_TIMEOUT_MS * 1000) return 0;
    pause_us = count >= 6 ? 1000 : 20L << count;
    ts.tv_sec = 0;
    ts.tv_nsec = pause_us * 1000;
    nanosleep(&ts, NULL);
    return 1;
}

static void set_err(struct giz_error *err, int code, const char *text)
{
    if (!err) return;
    err->code = code;
    err->offset = 0;
    size_t n = text ? strlen(text) : 0;
    if (n >= sizeof err->text) n = sizeof err->text - 1;
    if (n) memcpy(err->text, text, n);
    err->text[n] = '\0';
}

/* Logs an SQLite failure and records it for giz_store_errmsg(). Returns
 * GIZ_ERR_NOMEM for SQLITE_NOMEM, GIZ_ERR_DB otherwise. */
static int db_err(struct giz_store *s, int rc, const char *what)
{
    snprintf(s->errmsg, sizeof s->errmsg, "%s: %s (%s)", what, sqlite3_errstr(rc),
             sqlite3_errmsg(s->db));
    giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
    return (rc & 0xff) == SQLITE_NOMEM ? GIZ_ERR_NOMEM : GIZ_ERR_DB;
}

static void st_reset(struct giz_store *s, sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    s->bind_rc = SQLITE_OK;
}

static void b_note(struct giz_store *s, int rc)
{
    if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK) s->bind_rc = rc;
}

static void b_text(struct giz_store *s, sqlite3_stmt *st, int i, const char *v)
{
    b_note(s, v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i));
}

static void b_textn(struct giz_store *s, sqlite3_stmt *st, int i, const char *v, size_t n)
{
    b_note(s, sqlite3_bind_text(st, i, n ? v : "", (int)n, SQLITE_STATIC));
}

static void b_int(struct giz_store *s, sqlite3_stmt *st, int i, int64_t v)
{
    b_note(s, sqlite3_bind_int64(st, i, v));
}

/* Steps st after checking the binds; returns the SQLite code. */
static int st_step(struct giz_store *s, sqlite3_stmt *st)
{
    int rc = s->bind_rc != SQLITE_OK ? s->bind_rc : sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) s->last_rc = rc;
    return rc;
}

/* Runs a statement expected to produce no rows, then resets it. */
static int st_exec(struct giz_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = st_step(s, st), ret = GIZ_OK;
    if (rc != SQLITE_DONE) ret = db_err(s, rc, what);
    st_reset(s, st);
    return ret;
}

static void col_text(sqlite3_stmt *st, int i, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(buf, t, n);
    buf[n] = '\0';
}

static bool fits(const char *v, size_t cap)
{
    return v && memchr(v, '\0', cap) != NULL;
}

/* ---- transactions -------------------------------------------------------- */

/* Starts a write transaction: BEGIN IMMEDIATE, or a savepoint when the
 * caller already opened one with giz_store_begin(). */
static int txn_open(struct giz_store *s, int *kind)
{
    if (sqlite3_get_autocommit(s->db)) {
        *kind = TXN_TOP;
        return st_exec(s, s->st[ST_BEGIN], "BEGIN IMMEDIATE");
    }
    *kind = TXN_SAVEPOINT;
    return st_exec(s, s->st[ST_SAVEPOINT], "SAVEPOINT");
}

static void txn_abort(struct giz_store *s, int kind)
{
    if (sqlite3_get_autocommit(s->db)) return; /* SQLite already rolled back */
    if (kind == TXN_TOP) {
        st_exec(s, s->st[ST_ROLLBACK], "ROLLBACK");
    } else {
        st_exec(s, s->st[ST_ROLLBACK_TO], "ROLLBACK TO");
        st_exec(s, s->st[ST_RELEASE], "RELEASE");
    }
}

/* Commits (rc == GIZ_OK) or rolls back; returns rc or the commit error. */
static int txn_close(struct giz_store *s, int kind, int rc)
{
    if (rc == GIZ_OK) {
        rc = st_exec(s, s->st[kind == TXN_TOP ? ST_COMMIT : ST_RELEASE],
                     kind == TXN_TOP ? "COMMIT" : "RELEASE");
        if (rc == GIZ_OK) return GIZ_OK;
    }
    txn_abort(s, kind);
    return rc;
}

int giz_store_begin(struct giz_store *s)
{
    if (!s) return GIZ_ERR_INVAL;
    if (!sqlite3_get_autocommit(s->db)) return GIZ_ERR_INVAL;
    return st_exec(s, s->st[ST_BEGIN], "BEGIN IMMEDIATE");
}

int giz_store_commit(struct giz_store *s)
{
    int rc;
    if (!s) return GIZ_ERR_INVAL;
    if (sqlite3_get_autocommit(s->db)) return GIZ_ERR_INVAL;
    rc = st_exec(s, s->st[ST_COMMIT], "COMMIT");
    if (rc) txn_abort(s, TXN_TOP);
    return rc;
}

int giz_store_rollback(struct giz_store *s)
{
    if (!s) return GIZ_ERR_INVAL;
    if (sqlite3_get_autocommit(s->db)) return GIZ_ERR_INVAL;
    return st_exec(s, s->st[ST_ROLLBACK], "ROLLBACK");
}

/* ---- open / migrations ----------------------------------------------------- */

static int journal_cb(void *ud, int ncol, char **vals, char **names)
{
    (void)names;
    if (ncol > 0 && vals[0]) snprintf(ud, 16, "%s", vals[0]);
    return 0;
}

/* Reads the highest applied schema version (0 for a new database). */
static int read_version(struct giz_store *s, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc, ret = GIZ_OK;

    *version = 0;
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'schema_version'",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) goto fail;
    if (sqlite3_column_int(st, 0) == 0) goto cleanup;
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st,
                            NULL);
    if (rc != SQLITE_OK) goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) goto fail;
    *version = sqlite3_column_int(st, 0);
    goto cleanup;
fail:
    ret = db_err(s, rc, "reading schema_version");
cleanup:
    sqlite3_finalize(st);
    return ret;
}

static int exec_sql(struct giz_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? GIZ_OK : db_err(s, rc, what);
}

static int newer_error(int found, int latest, struct giz_error *err)
{
    char text[96];
    snprintf(text, sizeof text,
             "database schema version %d is newer than this build (%d); upgrade gizcloud", found,
             latest);
    giz_log(GIZ_LOG_ERR, "store: %s", text);
    set_err(err, GIZ_ERR_SCHEMA_NEWER, text);
    return GIZ_ERR_SCHEMA_NEWER;
}

/* Applies one migration in its own BEGIN IMMEDIATE transaction unless
 * another process applied it first. */
static int apply_migration(struct giz_store *s, const struct giz__migration *m, int latest,
                           struct giz_error *err)
{
    sqlite3_stmt *st = NULL;
    char what[96];
    int version = 0, rc;

    rc = exec_sql(s, "BEGIN IMMEDIATE", "BEGIN IMMEDIATE (migration)");
    if (rc) return rc;
    rc = exec_sql(s,
                  "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                  "creating schema_version");
    if (rc) goto cleanup;
    rc = read_version(s, &version);
    if (rc) goto cleanup;
    if (version > latest) {
        rc = newer_error(version, latest, err);
        goto cleanup;
    }
    if (m->version <= version) goto cleanup;
    snprintf(what, sizeof what, "applying migration %s", m->name);
    rc = exec_sql(s, m->sql, what);
    if (rc) goto cleanup;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO schema_version(version, name, applied_at) "
                           "VALUES (?1, ?2, ?3)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int(st, 1, m->version) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, now_s()) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
        rc = db_err(s, sqlite3_errcode(s->db), "stamping schema_version");
        goto cleanup;
    }
    giz_log(GIZ_LOG_INFO, "store: applied migration %s", m->name);
cleanup:
    sqlite3_finalize(st);
    if (rc == GIZ_OK) rc = exec_sql(s, "COMMIT", "COMMIT (migration)");
    if (rc && !sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc && rc != GIZ_ERR_SCHEMA_NEWER) {
        char text[96];
        snprintf(text, sizeof text, "migration %s failed: %s", m->name, sqlite3_errmsg(s->db));
        set_err(err, rc, text);
    }
    return rc;
}

static int migrate(struct giz_store *s, struct giz_error *err)
{
    int latest = giz_store_schema_version_latest(), version = 0, rc;

    rc = read_version(s, &version);
    if (rc) {
        set_err(err, rc, s->errmsg);
        return rc;
    }
    if (version > latest) return newer_error(version, latest, err);
    for (unsigned i = 0; i < giz__schema_migration_count && version < latest; i++) {
        if (giz__schema_migrations[i].version <= version) continue;
        rc = apply_migration(s, &giz__schema_migrations[i], latest, err);
        if (rc) return rc;
    }
    rc = read_version(s, &s->schema_version);
    if (rc) set_err(err, rc, s->errmsg);
    return rc;
}

/* Loads meta('token_key'), creating it with 32 random bytes on first use. */
static int load_token_key(struct giz_store *s)
{
    sqlite3_stmt *get = s->st[ST_META_GET], *ins = s->st[ST_META_INSERT];
    uint8_t fresh[TOKEN_KEY_LEN];
    int rc = GIZ_OK, src, kind;

    for (int attempt = 0; attempt < 2; attempt++) {
        b_text(s, get, 1, "token_key");
        src = st_step(s, get);
        if (src == SQLITE_ROW && sqlite3_column_bytes(get, 0) == TOKEN_KEY_LEN) {
            memcpy(s->token_key, sqlite3_column_blob(get, 0), TOKEN_KEY_LEN);
            st_reset(s, get);
            return GIZ_OK;
        }
        if (src == SQLITE_ROW) {
            st_reset(s, get);
            snprintf(s->errmsg, sizeof s->errmsg, "meta token_key has the wrong size");
            giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
            return GIZ_ERR_DB;
        }
        if (src != SQLITE_DONE) {
            rc = db_err(s, src, "reading token key");
            st_reset(s, get);
            return rc;
        }
        st_reset(s, get);
        if (attempt > 0) break;
        rc = giz_random_bytes(fresh, sizeof fresh);
        if (rc) return rc;
        rc = txn_open(s, &kind);
        if (rc) return rc;
        b_text(s, ins, 1, "token_key");
        b_note(s, sqlite3_bind_blob(ins, 2, fresh, (int)sizeof fresh, SQLITE_TRANSIENT));
        rc = txn_close(s, kind, st_exec(s, ins, "storing token key"));
        if (rc) return rc;
    }
    snprintf(s->errmsg, sizeof s->errmsg, "token key missing after insert");
    return GIZ_ERR_DB;
}

int giz_store_schema_version_latest(void)
{
    int latest = 0;
    for (unsigned i = 0; i < giz__schema_migration_count; i++)
        if (giz__schema_migrations[i].version > latest) latest = giz__schema_migrations[i].version;
    return latest;
}

int giz_store_schema_version(struct giz_store *s)
{
    return s ? s->schema_version : 0;
}

/* Once per process, before SQLite initializes: no global memory statistics.
 * With them on (SQLite's default) every allocation inside SQLite takes one
 * process-wide mutex, which the GService's request threads fought over on
 * each query. Nothing here reads sqlite3_memory_used(). If SQLite is already
 * initialized (e.g. a test installed its own allocator) this is a no-op. */
static void store_global_init(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Takes world access away from one existing file of the database (the file
 * itself, its -wal or -shm): keeps the owner's and group's read/write bits,
 * drops the rest, and says so. A missing file is fine; a file this process
 * cannot change is left as it is with a warning. */
static void store_file_private(const char *file)
{
    struct stat st;
    mode_t want;

    /* By path, never open()+close(): closing any descriptor of the database
     * or its -shm drops every POSIX lock this process holds on it, i.e. the
     * locks of this process's other open connections (SQLite's documented
     * pitfall), and readers then miss commits of the other process. */
    if (stat(file, &st) != 0) return;
    if (S_ISREG(st.st_mode) && (st.st_mode & 0007) != 0) {
        want = st.st_mode & 0660;
        if (chmod(file, want) == 0)
            giz_log(GIZ_LOG_WARN, "store: %s was mode %04o (world-accessible); now %04o", file,
                    (unsigned)(st.st_mode & 07777), (unsigned)want);
        else
            giz_log(GIZ_LOG_WARN, "store: %s is mode %04o (world-accessible) and cannot be changed: %s",
                    file, (unsigned)(st.st_mode & 07777), strerror(errno));
    }
}

/* File modes of the database, before SQLite opens it: a new database file is
 * created 0600 whatever the umask (SQLite gives its -wal, -shm and -journal
 * files the mode of the database file), and an existing database, -wal or
 * -shm that others can read loses its world bits (0644 -> 0640). In-memory
 * databases are left alone. */
static void store_files_private(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char file[GIZ_PATH_SIZE + 16];
    int fd;

    if (path[0] == '\0' || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0) return;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd >= 0) close(fd);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        int n = snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        if (n > 0 && (size_t)n < sizeof file) store_file_private(file);
    }
}

int giz_store_open(const char *path, struct giz_store **out, struct giz_error *err)
{
    static pthread_once_t global_once = PTHREAD_ONCE_INIT;
    struct giz_store *s = NULL;
    char mode[16] = "";
    int rc, src;

    if (out) *out = NULL;
    if (!path || !out) {
        set_err(err, GIZ_ERR_INVAL, "no database path");
        return GIZ_ERR_INVAL;
    }
    pthread_once(&global_once, store_global_init);
    s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, GIZ_ERR_NOMEM, "out of memory");
        return GIZ_ERR_NOMEM;
    }
    s->log_pruned_keep = -1;
    store_files_private(path);
    src = sqlite3_open_v2(path, &s->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        char text[96];
        snprintf(text, sizeof text, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
        giz_log(GIZ_LOG_ERR, "store: %s", text);
        rc = (src & 0xff) == SQLITE_NOMEM ? GIZ_ERR_NOMEM : GIZ_ERR_DB;
        set_err(err, rc, text);
        goto cleanup;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_handler(s->db, store_busy, s);
    /* Converting a new file to WAL needs an exclusive lock; when two
     * processes open a new file at once SQLite may answer SQLITE_BUSY at
     * once (deadlock avoidance, no busy handler), or leave the old mode.
     * Retry for up to the busy timeout. */
    for (int waited = 0;; waited += 10) {
        mode[0] = '\0';
        src = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", journal_cb, mode, NULL);
        if (src == SQLITE_OK && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0)) break;
        if (src != SQLITE_OK && (src & 0xff) != SQLITE_BUSY && (src & 0xff) != SQLITE_LOCKED) break;
        if (waited >= STORE_BUSY_TIMEOUT_MS) break;
        sqlite3_sleep(10);
    }
    if (src != SQLITE_OK) {
        rc = db_err(s, src, "setting journal_mode");
        set_err(err, rc, s->errmsg);
        goto cleanup;
    }
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)
        giz_log(GIZ_LOG_WARN, "store: journal_mode is %s, not wal", mode);
    rc = exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "setting pragmas");
    if (rc) {
        set_err(err, rc, s->errmsg);
        goto cleanup;
    }
    rc = migrate(s, err);
    if (rc) goto cleanup;
    for (int i = 0; i < ST__COUNT; i++) {
        src = sqlite3_prepare_v3(s->db, store_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                 NULL);
        if (src != SQLITE_OK) {
            rc = db_err(s, src, "preparing statement");
            set_err(err, rc, s->errmsg);
            goto cleanup;
        }
    }
    rc = load_token_key(s);
    if (rc) set_err(err, rc, s->errmsg[0] ? s->errmsg : "cannot create token key");
cleanup:
    if (rc) {
        giz_store_close(s);
        s = NULL;
    } else {
        vcache_ref(s);
        set_err(err, GIZ_OK, "");
    }
    *out = s;
    return rc;
}

void giz_store_close(struct giz_store *s)
{
    if (!s) return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db) {
        if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        if (sqlite3_close(s->db) != SQLITE_OK)
            giz_log(GIZ_LOG_ERR, "store: close: %s", sqlite3_errmsg(s->db));
    }
    memset(s->token_key, 0, sizeof s->token_key);
    explicit_bzero(&s->pkey, sizeof s->pkey);
    vcache_unref(s);
    free(s);
}

const char *giz_store_errmsg(struct giz_store *s)
{
    if (!s) return "no store";
    return s->errmsg;
}

int giz_store_backup(struct giz_store *s, const char *dest_path)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *bk;
    int src, rc = GIZ_OK;

    if (!s || !dest_path) return GIZ_ERR_INVAL;
    store_files_private(dest_path); /* a backup holds the same secrets: 0600 */
    src = sqlite3_open_v2(dest_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK) {
        snprintf(s->errmsg, sizeof s->errmsg, "backup: cannot open %s: %s", dest_path,
                 dst ? sqlite3_errmsg(dst) : sqlite3_errstr(src));
        giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
        rc = GIZ_ERR_DB;
        goto cleanup;
    }
    bk = sqlite3_backup_init(dst, "main", s->db, "main");
    if (!bk) {
        snprintf(s->errmsg, sizeof s->errmsg, "backup: %s", sqlite3_errmsg(dst));
        giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
        rc = GIZ_ERR_DB;
        goto cleanup;
    }
    /* Bounded retries: the other process may hold a lock for a moment. */
    for (int tries = 0; tries < 100; tries++) {
        src = sqlite3_backup_step(bk, -1);
        if (src != SQLITE_BUSY && src != SQLITE_LOCKED) break;
        sqlite3_sleep(50);
    }
    sqlite3_backup_finish(bk);
    if (src != SQLITE_DONE) {
        snprintf(s->errmsg, sizeof s->errmsg, "backup to %s: %s (%s)", dest_path,
                 sqlite3_errstr(src), sqlite3_errmsg(dst));
        giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
        rc = (src & 0xff) == SQLITE_NOMEM ? GIZ_ERR_NOMEM : GIZ_ERR_DB;
    }
cleanup:
    sqlite3_close(dst);
    return rc;
}

/* ---- products ------------------------------------------------------------ */

static void read_product(sqlite3_stmt *st, struct giz_product *p)
{
    memset(p, 0, sizeof *p);
    col_text(st, 0, p->product_key, sizeof p->product_key);
    col_text(st, 1, p->product_secret, sizeof p->product_secret);
    col_text(st, 2, p->name, sizeof p->name);
    p->created_at = sqlite3_column_int64(st, 3);
}

/* Inserts a filled product row; GIZ_ERR_EXISTS if the key is taken. */
static int product_insert(struct giz_store *s, const struct giz_product *p)
{
    sqlite3_stmt *st = s->st[ST_PRODUCT_INSERT];
    int rc = GIZ_OK, src;

    b_text(s, st, 1, p->product_key);
    b_text(s, st, 2, p->product_secret);
    b_text(s, st, 3, p->name);
    b_int(s, st, 4, p->created_at);
    src = st_step(s, st);
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = GIZ_ERR_EXISTS;
    else if (src != SQLITE_DONE)
        rc = db_err(s, src, "inserting product");
    st_reset(s, st);
    return rc;
}

/* Copies a 32-hex-digit key into out (lowercased); false if malformed. */
static bool product_key_norm(const char *in, char out[GIZ_PK_SIZE])
{
    if (!in || strlen(in) != GIZ_PK_SIZE - 1) return false;
    for (size_t i = 0; i < GIZ_PK_SIZE - 1; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        out[i] = c;
    }
    out[GIZ_PK_SIZE - 1] = '\0';
    return true;
}

int giz_store_product_create(struct giz_store *s, const char *name, struct giz_product *out)
{
    return giz_store_product_import(s, name, NULL, NULL, out);
}

int giz_store_product_import(struct giz_store *s, const char *name, const char *product_key,
                             const char *product_secret, struct giz_product *out)
{
    struct giz_product p;
    int rc = GIZ_OK;

    if (!s || !name || !out || name[0] == '\0' || strlen(name) >= GIZ_NAME_SIZE)
        return GIZ_ERR_INVAL;
    memset(&p, 0, sizeof p);
    if (product_key) {
        if (!product_key_norm(product_key, p.product_key)) return GIZ_ERR_INVAL;
    } else {
        rc = giz_random_hex(p.product_key, sizeof p.product_key, 16);
    }
    if (rc == GIZ_OK && product_secret) {
        if (!product_key_norm(product_secret, p.product_secret)) return GIZ_ERR_INVAL;
    } else if (rc == GIZ_OK) {
        rc = giz_random_hex(p.product_secret, sizeof p.product_secret, 16);
    }
    if (rc) return rc;
    memcpy(p.name, name, strlen(name) + 1);
    p.created_at = now_s();
    rc = product_insert(s, &p);
    if (rc == GIZ_OK) *out = p;
    return rc;
}

int giz_store_product_get(struct giz_store *s, const char *product_key, struct giz_product *out)
{
    sqlite3_stmt *st;
    int rc, src;

    if (!s || !product_key || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_PRODUCT_GET];
    b_text(s, st, 1, product_key);
    src = st_step(s, st);
    if (src == SQLITE_ROW) {
        read_product(st, out);
        rc = GIZ_OK;
    } else {
        rc = src == SQLITE_DONE ? GIZ_ERR_NOT_FOUND : db_err(s, src, "reading product");
    }
    st_reset(s, st);
    return rc;
}

/* Refuses re-entrant use of a list statement from inside its own callback. */
static int list_guard(struct giz_store *s, sqlite3_stmt *st)
{
    if (!sqlite3_stmt_busy(st)) return GIZ_OK;
    snprintf(s->errmsg, sizeof s->errmsg, "list function called from its own callback");
    giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
    return GIZ_ERR_INVAL;
}

int giz_store_product_list(struct giz_store *s, giz_store_product_cb cb, void *ud)
{
    struct giz_product p;
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_PRODUCT_LIST];
    if (list_guard(s, st)) return GIZ_ERR_INVAL;
    while ((src = st_step(s, st)) == SQLITE_ROW) {
        read_product(st, &p);
        if (cb(&p, ud)) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = db_err(s, src, "listing products");
    st_reset(s, st);
    return rc;
}

/* ---- devices ------------------------------------------------------------- */

/* Checks 12 hex digits and writes them uppercase into out. */
static bool normalize_mac(const char *mac, char out[GIZ_MAC_SIZE])
{
    if (!mac || strlen(mac) != 12) return false;
    for (int i = 0; i < 12; i++) {
        if (!isxdigit((unsigned char)mac[i])) return false;
        out[i] = (char)toupper((unsigned char)mac[i]);
    }
    out[12] = '\0';
    return true;
}

/* 1..GIZ_MAX_PASSCODE printable ASCII, no space, no '&'. */
static bool passcode_ok(const char *passcode)
{
    size_t n;
    if (!passcode) return false;
    n = strnlen(passcode, GIZ_MAX_PASSCODE + 1);
    if (n == 0 || n > GIZ_MAX_PASSCODE) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)passcode[i];
        if (c < 0x21 || c > 0x7e || c == '&') return false;
    }
    return true;
}

static void read_device(sqlite3_stmt *st, struct giz_device *d)
{
    memset(d, 0, sizeof *d);
    col_text(st, 0, d->did, sizeof d->did);
    col_text(st, 1, d->product_key, sizeof d->product_key);
    col_text(st, 2, d->mac, sizeof d->mac);
    d->status = sqlite3_column_int(st, 3);
    col_text(st, 4, d->wifi_soft_version, sizeof d->wifi_soft_version);
    col_text(st, 5, d->wifi_hard_version, sizeof d->wifi_hard_version);
    col_text(st, 6, d->mcu_soft_version, sizeof d->mcu_soft_version);
    col_text(st, 7, d->mcu_hard_version, sizeof d->mcu_hard_version);
    d->online = sqlite3_column_int(st, 8) != 0;
    d->last_seen = sqlite3_column_int64(st, 9);
    d->created_at = sqlite3_column_int64(st, 10);
}

/* Reads one device and (if hash != NULL) its passcode hash and keyed
 * verifier (into pcmac, GIZ_PASSCODE_MAC_STR_MAX bytes; "" if none). */
static int device_read2(struct giz_store *s, const char *did, struct giz_device *out, char *hash,
                        size_t hash_cap, char *pcmac);

static int device_read(struct giz_store *s, const char *did, struct giz_device *out, char *hash,
                       size_t hash_cap)
{
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    return device_read2(s, did, out, hash, hash_cap, pcmac);
}

static int device_read2(struct giz_store *s, const char *did, struct giz_device *out, char *hash,
                        size_t hash_cap, char *pcmac)
{
    sqlite3_stmt *st = s->st[ST_DEVICE_GET];
    int rc, src;

    if (strlen(did) >= GIZ_DID_SIZE) return GIZ_ERR_NOT_FOUND;
    b_text(s, st, 1, did);
    src = st_step(s, st);
    if (src == SQLITE_ROW) {
        read_device(st, out);
        if (hash) col_text(st, 11, hash, hash_cap);
        if (hash) col_text(st, 12, pcmac, GIZ_PASSCODE_MAC_STR_MAX);
        rc = GIZ_OK;
    } else {
        rc = src == SQLITE_DONE ? GIZ_ERR_NOT_FOUND : db_err(s, src, "reading device");
    }
    st_reset(s, st);
    return rc;
}

struct candidate {
    char did[GIZ_DID_SIZE];
    char hash[GIZ_HASH_STR_MAX];
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX]; /* "" if none */
};

/* Collects up to `max` active devices with this product key and MAC whose
 * DID is not in skip[0..nskip). */
static int collect_candidates(struct giz_store *s, const char *pk, const char *mac,
                              const struct candidate *skip, unsigned nskip, struct candidate *out,
                              unsigned max, unsigned *n)
{
    sqlite3_stmt *st = s->st[ST_DEVICE_CANDIDATES];
    int rc = GIZ_OK, src = SQLITE_DONE;

    *n = 0;
    b_text(s, st, 1, pk);
    b_text(s, st, 2, mac);
    while (*n < max && (src = st_step(s, st)) == SQLITE_ROW) {
        const char *did = (const char *)sqlite3_column_text(st, 0);
        bool seen = false;
        for (unsigned i = 0; did && i < nskip; i++)
            if (strcmp(skip[i].did, did) == 0) seen = true;
        if (seen || !did) continue;
        col_text(st, 0, out[*n].did, sizeof out[*n].did);
        col_text(st, 1, out[*n].hash, sizeof out[*n].hash);
        col_text(st, 2, out[*n].pcmac, sizeof out[*n].pcmac);
        (*n)++;
    }
    if (*n < max && src != SQLITE_DONE) rc = db_err(s, src, "finding devices by mac");
    st_reset(s, st);
    return rc;
}

/* ---- verified-passcode cache ----------------------------------------------
 * PBKDF2 was ~60% of the GService's CPU in the gizsim device flow, where the
 * OTA check right after registration verifies the passcode the register
 * call has just hashed. A process-wide, direct-mapped table remembers, per
 * DID, HMAC-SHA256(process-random key, did \n passcode \n stored hash) of a
 * passcode that verified (or was hashed) recently. The tag covers the hash
 * read from the database on every call, so an entry can only vouch for the
 * exact (passcode, stored hash) pair PBKDF2 accepted: a changed or removed
 * hash, another passcode or another DID never match; the device's status is
 * still checked from the row every time. No clear passcode is kept; entries
 * expire after VCACHE_TTL_S like the broker plugin's credential cache. A
 * miss costs one HMAC on top of the PBKDF2, so a wrong passcode takes as
 * long as before. */
#define VCACHE_SLOTS 1024u
#define VCACHE_TTL_S 600

struct vcache_entry {
    char did[GIZ_DID_SIZE];
    char tag[65];
    int64_t at;
};

static pthread_mutex_t vcache_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t vcache_once = PTHREAD_ONCE_INIT;
static uint8_t vcache_key[32];
static bool vcache_ready;
static struct vcache_entry *vcache; /* VCACHE_SLOTS entries, allocated on first use */
static unsigned vcache_users;       /* open stores; the table is freed with the last one */

static void vcache_ref(struct giz_store *s)
{
    pthread_mutex_lock(&vcache_mu);
    vcache_users++;
    s->vcache_ref = true;
    pthread_mutex_unlock(&vcache_mu);
}

/* Frees the table when the last open store closes (the plugin can be
 * unloaded from a running broker; nothing may stay behind). */
static void vcache_unref(struct giz_store *s)
{
    if (!s->vcache_ref) return;
    pthread_mutex_lock(&vcache_mu);
    s->vcache_ref = false;
    if (--vcache_users == 0) {
        free(vcache);
        vcache = NULL;
    }
    pthread_mutex_unlock(&vcache_mu);
}

static void vcache_init(void)
{
    vcache_ready = giz_random_bytes(vcache_key, sizeof vcache_key) == GIZ_OK;
}

static unsigned vcache_slot(const char *did)
{
    uint32_t h = 2166136261u;
    for (const char *p = did; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % VCACHE_SLOTS;
}

/* Computes the tag; false if the cache is unusable for these inputs. */
static bool vcache_tag(const char *did, const char *passcode, const char *hash, char tag[65])
{
    char text[GIZ_DID_SIZE + GIZ_MAX_PASSCODE + GIZ_HASH_STR_MAX + 4];
    int n;
    bool ok;

    pthread_once(&vcache_once, vcache_init);
    if (!vcache_ready || strlen(did) >= GIZ_DID_SIZE) return false;
    n = snprintf(text, sizeof text, "%s\n%s\n%s", did, passcode, hash);
    ok = n > 0 && (size_t)n < sizeof text &&
         giz_token_digest(vcache_key, sizeof vcache_key, text, tag, 65) == GIZ_OK;
    explicit_bzero(text, sizeof text);
    return ok;
}

/* True if passcode is known to verify against `hash` for `did`. */
static bool vcache_hit(const char *did, const char *passcode, const char *hash)
{
    char tag[65];
    bool hit = false;
    int64_t now = now_s();

    if (!vcache_tag(did, passcode, hash, tag)) return false;
    pthread_mutex_lock(&vcache_mu);
    if (vcache) {
        const struct vcache_entry *e = &vcache[vcache_slot(did)];
        hit = strcmp(e->did, did) == 0 && giz_consttime_eq(e->tag, tag, 64) &&
              now - e->at < VCACHE_TTL_S && now >= e->at;
    }
    pthread_mutex_unlock(&vcache_mu);
    return hit;
}

/* Remembers that passcode verifies against `hash` for `did`. */
static void vcache_put(const char *did, const char *passcode, const char *hash)
{
    char tag[65];
    struct vcache_entry *e;

    if (!vcache_tag(did, passcode, hash, tag)) return;
    pthread_mutex_lock(&vcache_mu);
    if (!vcache) vcache = calloc(VCACHE_SLOTS, sizeof *vcache);
    if (vcache) {
        e = &vcache[vcache_slot(did)];
        memcpy(e->did, did, strlen(did) + 1);
        memcpy(e->tag, tag, sizeof e->tag);
        e->at = now_s();
    }
    pthread_mutex_unlock(&vcache_mu);
}

/* Writes the keyed verifier of a row that verified through PBKDF2 (the
 * upgrade of rows from before schema 4, or written without the key). Best
 * effort and never waiting for the write lock: if the database is busy the
 * row stays as it is and the next PBKDF2 login tries again. Only rows still
 * holding `hash` are touched. */
static void pcmac_upgrade(struct giz_store *s, const char *did, const char *passcode,
                          const char *hash)
{
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    sqlite3_stmt *st = s->st[ST_DEVICE_SET_PCMAC];
    int src;

    if (giz_passcode_mac(&s->pkey, did, passcode, pcmac, sizeof pcmac) != GIZ_OK) return;
    b_text(s, st, 1, did);
    b_text(s, st, 2, hash);
    b_text(s, st, 3, pcmac);
    s->no_wait = true;
    src = st_step(s, st);
    s->no_wait = false;
    if (src != SQLITE_DONE && (src & 0xff) != SQLITE_BUSY && (src & 0xff) != SQLITE_LOCKED)
        db_err(s, src, "writing the keyed passcode verifier");
    st_reset(s, st);
    explicit_bzero(pcmac, sizeof pcmac);
}

/* Verifies passcode for did: through the keyed verifier `pcmac` when the
 * store has the key it was written under (one HMAC: a match or a miss is
 * final), otherwise through the verified cache or PBKDF2 — refused with
 * GIZ_ERR_AUTH and *slow = true without computing when !slow_ok — and a
 * PBKDF2 success writes the keyed verifier. *slow: PBKDF2 was needed. */
static int passcode_verify(struct giz_store *s, const char *did, const char *passcode,
                           const char *hash, const char *pcmac, bool slow_ok, bool *slow)
{
    int rc;
    *slow = false;
    if (s->pkey_set && pcmac[0] != '\0') {
        rc = giz_passcode_mac_verify(&s->pkey, did, passcode, pcmac);
        if (rc == GIZ_OK || rc == GIZ_ERR_AUTH) return rc;
        /* another key (rotated) or malformed: PBKDF2 decides, then rewrite */
    }
    if (vcache_hit(did, passcode, hash)) {
        rc = GIZ_OK;
    } else {
        *slow = true;
        if (!slow_ok) return GIZ_ERR_AUTH;
        rc = giz_secret_verify(passcode, hash);
        if (rc == GIZ_OK) vcache_put(did, passcode, hash);
    }
    if (rc == GIZ_OK && s->pkey_set) pcmac_upgrade(s, did, passcode, hash);
    return rc;
}

/* Index of the first candidate whose hash matches passcode, or -1. */
static int match_candidate(struct giz_store *s, const struct candidate *c, unsigned n,
                           const char *passcode)
{
    bool slow;
    for (unsigned i = 0; i < n; i++)
        if (passcode_verify(s, c[i].did, passcode, c[i].hash, c[i].pcmac, true, &slow) == GIZ_OK)
            return (int)i;
    return -1;
}

int giz_store_device_register(struct giz_store *s, const char *product_key, const char *mac,
                              const char *passcode, struct giz_device *out, bool *created)
{
    struct candidate checked[MAX_CANDIDATES], fresh[MAX_CANDIDATES];
    struct giz_product prod;
    char mac_norm[GIZ_MAC_SIZE], hash[GIZ_HASH_STR_MAX], did[GIZ_DID_SIZE];
    char pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    unsigned nchecked = 0, nfresh = 0;
    int rc, kind, hit;
    sqlite3_stmt *st;
    int64_t now = now_s();

    if (!s || !product_key || !out || !created) return GIZ_ERR_INVAL;
    *created = false;
    if (!normalize_mac(mac, mac_norm) || !passcode_ok(passcode)) return GIZ_ERR_INVAL;
    rc = giz_store_product_get(s, product_key, &prod);
    if (rc) return rc;

    /* Outside the write lock: does an active device already own this passcode? */
    rc = collect_candidates(s, product_key, mac_norm, NULL, 0, checked, MAX_CANDIDATES, &nchecked);
    if (rc) return rc;
    hit = match_candidate(s, checked, nchecked, passcode);
    if (hit >= 0) return device_read(s, checked[hit].did, out, NULL, 0);

    rc = giz_secret_hash(passcode, GIZ_PASSCODE_ITERATIONS, hash, sizeof hash);
    if (rc) return rc;
    rc = txn_open(s, &kind);
    if (rc) return rc;
    /* Devices registered by the other process meanwhile (rare). */
    rc = collect_candidates(s, product_key, mac_norm, checked, nchecked, fresh, MAX_CANDIDATES,
                            &nfresh);
    if (rc) goto cleanup;
    hit = match_candidate(s, fresh, nfresh, passcode);
    if (hit >= 0) {
        memcpy(did, fresh[hit].did, sizeof did);
        txn_abort(s, kind);
        return device_read(s, did, out, NULL, 0);
    }
    st = s->st[ST_DEVICE_INSERT];
    for (int attempt = 0; attempt < 4; attempt++) {
        int src;
        rc = giz_random_base62(did, sizeof did, GIZ_DID_SIZE - 1);
        if (rc) goto cleanup;
        b_text(s, st, 1, did);
        b_text(s, st, 2, product_key);
        b_text(s, st, 3, mac_norm);
        b_text(s, st, 4, hash);
        b_int(s, st, 5, now);
        pcmac[0] = '\0';
        if (s->pkey_set) {
            rc = giz_passcode_mac(&s->pkey, did, passcode, pcmac, sizeof pcmac);
            if (rc) goto cleanup;
        }
        b_text(s, st, 6, pcmac[0] ? pcmac : NULL);
        src = st_step(s, st);
        if (src == SQLITE_DONE) {
            rc = GIZ_OK;
        } else if (src == SQLITE_CONSTRAINT_PRIMARYKEY && attempt < 3) {
            rc = GIZ_ERR_EXISTS; /* DID collision: draw again */
        } else {
            rc = db_err(s, src, "inserting device");
        }
        st_reset(s, st);
        if (rc != GIZ_ERR_EXISTS) break;
    }
cleanup:
    rc = txn_close(s, kind, rc);
    if (rc == GIZ_OK) {
        vcache_put(did, passcode, hash); /* the OTA check and MQTT login follow */
        rc = device_read(s, did, out, NULL, 0);
        if (rc == GIZ_OK) *created = true;
    }
    return rc;
}

/* Inserts an outbox row (used alone and inside transactions). */
static int outbox_insert(struct giz_store *s, const struct giz_outbox_item *it, int64_t now,
                         int64_t *id_out)
{
    sqlite3_stmt *st = s->st[ST_OUTBOX_INSERT];
    int rc;

    b_int(s, st, 1, it->kind);
    b_text(s, st, 2, it->did);
    b_text(s, st, 3, it->product_key);
    b_text(s, st, 4, it->uid);
    b_int(s, st, 5, it->fw_type);
    b_int(s, st, 6, it->ota_version);
    b_int(s, st, 7, it->fid);
    b_text(s, st, 8, it->url);
    b_int(s, st, 9, now);
    rc = st_exec(s, st, "inserting outbox item");
    if (rc == GIZ_OK && id_out) *id_out = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int verify_device_ex(struct giz_store *s, const char *did, const char *passcode,
                            struct giz_device *dev, bool slow_ok, bool *slow)
{
    char hash[GIZ_HASH_STR_MAX], pcmac[GIZ_PASSCODE_MAC_STR_MAX];
    int rc = device_read2(s, did, dev, hash, sizeof hash, pcmac);
    *slow = false;
    if (rc) return rc;
    if (dev->status != GIZ_DEVICE_ACTIVE) return GIZ_ERR_DISABLED;
    if (!passcode_ok(passcode)) return GIZ_ERR_AUTH;
    rc = passcode_verify(s, did, passcode, hash, pcmac, slow_ok, slow);
    if (rc == GIZ_ERR_INVAL) {
        giz_log(GIZ_LOG_ERR, "store: device %s has a malformed passcode hash", did);
        rc = GIZ_ERR_AUTH;
    }
    return rc;
}

static int verify_device(struct giz_store *s, const char *did, const char *passcode,
                         struct giz_device *dev)
{
    bool slow;
    return verify_device_ex(s, did, passcode, dev, true, &slow);
}

int giz_store_device_unregister(struct giz_store *s, const char *did, const char *passcode)
{
    struct giz_device dev;
    struct giz_outbox_item it;
    sqlite3_stmt *st;
    int rc, kind;
    int64_t now = now_s();

    if (!s || !did) return GIZ_ERR_INVAL;
    rc = verify_device(s, did, passcode, &dev);
    if (rc) return rc;
    rc = txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_DEVICE_DISABLE];
    b_text(s, st, 1, did);
    b_int(s, st, 2, now);
    rc = st_exec(s, st, "disabling device");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_DISABLED; /* raced */
    if (rc == GIZ_OK) {
        memset(&it, 0, sizeof it);
        it.kind = GIZ_OUTBOX_DEVICE_DISABLED;
        memcpy(it.did, dev.did, sizeof it.did);
        memcpy(it.product_key, dev.product_key, sizeof it.product_key);
        rc = outbox_insert(s, &it, now, NULL);
    }
    return txn_close(s, kind, rc);
}

int giz_store_device_get(struct giz_store *s, const char *did, struct giz_device *out)
{
    if (!s || !did || !out) return GIZ_ERR_INVAL;
    return device_read(s, did, out, NULL, 0);
}

int giz_store_device_auth(struct giz_store *s, const char *did, const char *passcode,
                          struct giz_device *out)
{
    struct giz_device dev;
    int rc;

    if (!s || !did) return GIZ_ERR_INVAL;
    rc = verify_device(s, did, passcode, &dev);
    if (rc == GIZ_OK && out) *out = dev;
    return rc;
}

int giz_store_device_auth_budget(struct giz_store *s, const char *did, const char *passcode,
                                 bool slow_ok, struct giz_device *out, bool *slow)
{
    struct giz_device dev;
    bool was_slow = false;
    int rc;

    if (slow) *slow = false;
    if (!s || !did) return GIZ_ERR_INVAL;
    rc = verify_device_ex(s, did, passcode, &dev, slow_ok, &was_slow);
    if (slow) *slow = was_slow;
    if (rc == GIZ_OK && out) *out = dev;
    return rc;
}

int giz_store_passcode_key_default(const char *db_path, char *out, size_t cap)
{
    const char *slash;
    size_t dir_len;
    int n;

    if (!db_path || !out || cap == 0) return GIZ_ERR_INVAL;
    out[0] = '\0';
    if (!db_path[0] || strcmp(db_path, ":memory:") == 0) return GIZ_ERR_INVAL;
    slash = strrchr(db_path, '/');
    dir_len = slash ? (size_t)(slash - db_path) : 0;
    if (slash && dir_len == 0) dir_len = 1; /* "/x.db" -> "/" */
    if (!slash)
        n = snprintf(out, cap, "passcode.key");
    else if (dir_len == 1 && db_path[0] == '/')
        n = snprintf(out, cap, "/passcode.key");
    else
        n = snprintf(out, cap, "%.*s/passcode.key", (int)dir_len, db_path);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return GIZ_ERR_NOSPACE;
    }
    return GIZ_OK;
}

int giz_store_set_passcode_key(struct giz_store *s, const struct giz_passcode_key *k)
{
    if (!s) return GIZ_ERR_INVAL;
    explicit_bzero(&s->pkey, sizeof s->pkey);
    s->pkey_set = k != NULL;
    if (k) s->pkey = *k;
    return GIZ_OK;
}

int giz_store_passcode_key_load(struct giz_store *s, const char *path, char *why, size_t why_cap)
{
    char def[GIZ_PATH_SIZE];
    struct giz_passcode_key k;
    int rc;

    if (why && why_cap) why[0] = '\0';
    if (!s) return GIZ_ERR_INVAL;
    if (!path || !path[0]) {
        const char *db = sqlite3_db_filename(s->db, "main");
        rc = giz_store_passcode_key_default(db ? db : "", def, sizeof def);
        if (rc) {
            if (why && why_cap)
                snprintf(why, why_cap, "no passcode key file named and no database folder to "
                                       "put one in");
            return rc;
        }
        path = def;
    }
    {
        /* A new key file is group-readable only if the database is (a group
         * shared by the GService and the broker). */
        const char *db = sqlite3_db_filename(s->db, "main");
        struct stat st;
        bool group_read = db && db[0] && stat(db, &st) == 0 && (st.st_mode & S_IRGRP);
        rc = giz_passcode_key_load(path, group_read, &k, why, why_cap);
    }
    if (rc == GIZ_OK) {
        s->pkey = k;
        s->pkey_set = true;
    }
    explicit_bzero(&k, sizeof k);
    return rc;
}

int giz_store_device_list(struct giz_store *s, const char *product_key, bool online_only,
                          unsigned limit, unsigned offset, giz_store_device_cb cb, void *ud)
{
    struct giz_device d;
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_DEVICE_LIST];
    if (list_guard(s, st)) return GIZ_ERR_INVAL;
    b_text(s, st, 1, product_key);
    b_int(s, st, 2, online_only);
    b_int(s, st, 3, limit ? (int64_t)limit : -1);
    b_int(s, st, 4, offset);
    while ((src = st_step(s, st)) == SQLITE_ROW) {
        read_device(st, &d);
        if (cb(&d, ud)) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = db_err(s, src, "listing devices");
    st_reset(s, st);
    return rc;
}

int giz_store_device_count(struct giz_store *s, const char *product_key, bool online_only,
                           int64_t *count)
{
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !count) return GIZ_ERR_INVAL;
    *count = 0;
    st = s->st[ST_DEVICE_COUNT];
    b_text(s, st, 1, product_key);
    b_int(s, st, 2, online_only);
    src = st_step(s, st);
    if (src == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        rc = db_err(s, src, "counting devices");
    st_reset(s, st);
    return rc;
}

int giz_store_device_set_versions(struct giz_store *s, const char *did, int type,
                                  const char *soft_version, const char *hard_version)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !did || (type != 1 && type != 2)) return GIZ_ERR_INVAL;
    if (!soft_version) soft_version = "";
    if (!hard_version) hard_version = "";
    if (strlen(soft_version) >= GIZ_VER_SIZE || strlen(hard_version) >= GIZ_VER_SIZE)
        return GIZ_ERR_INVAL;
    st = s->st[type == 1 ? ST_DEVICE_SET_WIFI : ST_DEVICE_SET_MCU];
    b_text(s, st, 1, did);
    b_text(s, st, 2, soft_version);
    b_text(s, st, 3, hard_version);
    rc = st_exec(s, st, "updating device versions");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

int giz_store_device_set_online(struct giz_store *s, const char *did, bool online, int64_t now)
{
    sqlite3_stmt *st;
    int rc;

    if (!s || !did) return GIZ_ERR_INVAL;
    st = s->st[ST_DEVICE_SET_ONLINE];
    b_text(s, st, 1, did);
    b_int(s, st, 2, online ? 1 : 0);
    b_int(s, st, 3, now);
    rc = st_exec(s, st, "updating presence");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

int giz_store_device_all_offline(struct giz_store *s)
{
    if (!s) return GIZ_ERR_INVAL;
    return st_exec(s, s->st[ST_DEVICE_ALL_OFFLINE], "marking devices offline");
}

/* ---- firmware ------------------------------------------------------------ */

static void read_firmware(sqlite3_stmt *st, struct giz_firmware *f)
{
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, f->product_key, sizeof f->product_key);
    f->type = sqlite3_column_int(st, 2);
    col_text(st, 3, f->soft_version, sizeof f->soft_version);
    col_text(st, 4, f->hard_version, sizeof f->hard_version);
    col_text(st, 5, f->url, sizeof f->url);
    col_text(st, 6, f->file_path, sizeof f->file_path);
    col_text(st, 7, f->md5, sizeof f->md5);
    col_text(st, 8, f->filename, sizeof f->filename);
    f->size = sqlite3_column_int64(st, 9);
    f->created_at = sqlite3_column_int64(st, 10);
}

int giz_store_firmware_insert(struct giz_store *s, struct giz_firmware *fw)
{
    sqlite3_stmt *st;
    int rc, src;
    int64_t now = now_s();

    if (!s || !fw || (fw->type != 1 && fw->type != 2)) return GIZ_ERR_INVAL;
    if (!fits(fw->product_key, sizeof fw->product_key) ||
        !fits(fw->soft_version, sizeof fw->soft_version) || fw->soft_version[0] == '\0' ||
        !fits(fw->hard_version, sizeof fw->hard_version) || !fits(fw->url, sizeof fw->url) ||
        !fits(fw->file_path, sizeof fw->file_path) || !fits(fw->md5, sizeof fw->md5) ||
        !fits(fw->filename, sizeof fw->filename))
        return GIZ_ERR_INVAL;
    st = s->st[ST_FW_INSERT];
    b_text(s, st, 1, fw->product_key);
    b_int(s, st, 2, fw->type);
    b_text(s, st, 3, fw->soft_version);
    b_text(s, st, 4, fw->hard_version);
    b_text(s, st, 5, fw->url);
    b_text(s, st, 6, fw->file_path);
    b_text(s, st, 7, fw->md5);
    b_text(s, st, 8, fw->filename);
    b_int(s, st, 9, fw->size);
    b_int(s, st, 10, now);
    src = st_step(s, st);
    if (src == SQLITE_DONE) {
        fw->id = sqlite3_last_insert_rowid(s->db);
        fw->created_at = now;
        rc = GIZ_OK;
    } else if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
        rc = GIZ_ERR_NOT_FOUND; /* unknown product key */
    } else {
        rc = db_err(s, src, "inserting firmware");
    }
    st_reset(s, st);
    return rc;
}

static int firmware_one(struct giz_store *s, sqlite3_stmt *st, struct giz_firmware *out)
{
    int rc, src = st_step(s, st);
    if (src == SQLITE_ROW) {
        read_firmware(st, out);
        rc = GIZ_OK;
    } else {
        rc = src == SQLITE_DONE ? GIZ_ERR_NOT_FOUND : db_err(s, src, "reading firmware");
    }
    st_reset(s, st);
    return rc;
}

int giz_store_firmware_get(struct giz_store *s, int64_t id, struct giz_firmware *out)
{
    sqlite3_stmt *st;
    if (!s || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_GET];
    b_int(s, st, 1, id);
    return firmware_one(s, st, out);
}

int giz_store_firmware_latest(struct giz_store *s, const char *product_key, int type,
                              const char *hard_version, struct giz_firmware *out)
{
    sqlite3_stmt *st;
    if (!s || !product_key || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_LATEST];
    b_text(s, st, 1, product_key);
    b_int(s, st, 2, type);
    b_text(s, st, 3, hard_version);
    return firmware_one(s, st, out);
}

int giz_store_firmware_list(struct giz_store *s, const char *product_key, giz_store_firmware_cb cb,
                            void *ud)
{
    struct giz_firmware f;
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_LIST];
    if (list_guard(s, st)) return GIZ_ERR_INVAL;
    b_text(s, st, 1, product_key);
    while ((src = st_step(s, st)) == SQLITE_ROW) {
        read_firmware(st, &f);
        if (cb(&f, ud)) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = db_err(s, src, "listing firmware");
    st_reset(s, st);
    return rc;
}

int giz_store_firmware_find(struct giz_store *s, const char *product_key, int type,
                            const char *soft_version, const char *hard_version,
                            struct giz_firmware *out)
{
    sqlite3_stmt *st;
    if (!s || !product_key || !soft_version || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_FW_FIND];
    b_text(s, st, 1, product_key);
    b_int(s, st, 2, type);
    b_text(s, st, 3, soft_version);
    b_text(s, st, 4, hard_version ? hard_version : "");
    return firmware_one(s, st, out);
}

/* ---- device details from newer firmware ------------------------------------- */

#define AUTH_KEY_DIGEST_PREFIX "hmac-sha256:"
#define AUTH_KEY_DIGEST_SIZE (sizeof AUTH_KEY_DIGEST_PREFIX - 1 + 65)

/* "hmac-sha256:<hex>" of auth_key under the store's token key. */
static int auth_key_digest(struct giz_store *s, const char *auth_key, char *out, size_t cap)
{
    char hex[65];
    size_t pl = sizeof AUTH_KEY_DIGEST_PREFIX - 1;
    if (cap < AUTH_KEY_DIGEST_SIZE) return GIZ_ERR_INVAL;
    int rc = giz_token_digest(s->token_key, sizeof s->token_key, auth_key, hex, sizeof hex);
    if (rc != GIZ_OK) return rc;
    memcpy(out, AUTH_KEY_DIGEST_PREFIX, pl);
    memcpy(out + pl, hex, 65);
    explicit_bzero(hex, sizeof hex);
    return GIZ_OK;
}

int giz_store_device_info_update(struct giz_store *s, const char *did,
                                 const struct giz_device_info *info, const char *auth_key)
{
    char digest[AUTH_KEY_DIGEST_SIZE] = "";
    sqlite3_stmt *st;
    int rc, src;

    if (!s || !did || !info) return GIZ_ERR_INVAL;
    if (!fits(info->reg_type, sizeof info->reg_type) || !fits(info->extra, sizeof info->extra) ||
        !fits(info->sdk_hard_version, sizeof info->sdk_hard_version) ||
        !fits(info->sdk_soft_version, sizeof info->sdk_soft_version) ||
        !fits(info->is_reset, sizeof info->is_reset) ||
        !fits(info->random_code, sizeof info->random_code) ||
        !fits(info->lan_proto_ver, sizeof info->lan_proto_ver))
        return GIZ_ERR_INVAL;
    if (auth_key && auth_key[0] != '\0') {
        if (strnlen(auth_key, 1025) > 1024) return GIZ_ERR_INVAL;
        rc = auth_key_digest(s, auth_key, digest, sizeof digest);
        if (rc != GIZ_OK) return rc;
    }
    st = s->st[ST_DEVINFO_UPSERT];
    b_text(s, st, 1, did);
    b_text(s, st, 2, info->reg_type);
    b_text(s, st, 3, info->extra);
    b_text(s, st, 4, info->sdk_hard_version);
    b_text(s, st, 5, info->sdk_soft_version);
    b_text(s, st, 6, info->is_reset);
    b_text(s, st, 7, info->random_code);
    b_text(s, st, 8, info->lan_proto_ver);
    b_text(s, st, 9, digest);
    b_int(s, st, 10, now_s());
    src = st_step(s, st);
    if (src == SQLITE_DONE)
        rc = GIZ_OK;
    else if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = GIZ_ERR_NOT_FOUND;
    else
        rc = db_err(s, src, "recording device details");
    st_reset(s, st);
    return rc;
}

/* Reads the DID's device_info row into *out and its digest into digest. */
static int device_info_read(struct giz_store *s, const char *did, struct giz_device_info *out,
                            char *digest, size_t digest_cap)
{
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    memset(out, 0, sizeof *out);
    digest[0] = '\0';
    st = s->st[ST_DEVINFO_GET];
    b_text(s, st, 1, did);
    src = st_step(s, st);
    if (src == SQLITE_ROW) {
        col_text(st, 0, out->reg_type, sizeof out->reg_type);
        col_text(st, 1, out->extra, sizeof out->extra);
        col_text(st, 2, out->sdk_hard_version, sizeof out->sdk_hard_version);
        col_text(st, 3, out->sdk_soft_version, sizeof out->sdk_soft_version);
        col_text(st, 4, out->is_reset, sizeof out->is_reset);
        col_text(st, 5, out->random_code, sizeof out->random_code);
        col_text(st, 6, out->lan_proto_ver, sizeof out->lan_proto_ver);
        col_text(st, 7, digest, digest_cap);
        out->auth_key_set = digest[0] != '\0';
        out->updated_at = sqlite3_column_int64(st, 8);
    } else if (src != SQLITE_DONE) {
        rc = db_err(s, src, "reading device details");
    }
    st_reset(s, st);
    return rc;
}

int giz_store_device_info_get(struct giz_store *s, const char *did, struct giz_device_info *out)
{
    char digest[AUTH_KEY_DIGEST_SIZE];
    if (!s || !did || !out) return GIZ_ERR_INVAL;
    return device_info_read(s, did, out, digest, sizeof digest);
}

int giz_store_device_info_auth_key_check(struct giz_store *s, const char *did,
                                         const char *auth_key)
{
    char stored[AUTH_KEY_DIGEST_SIZE], want[AUTH_KEY_DIGEST_SIZE];
    struct giz_device_info info;
    int rc;

    if (!s || !did || !auth_key) return GIZ_ERR_INVAL;
    rc = device_info_read(s, did, &info, stored, sizeof stored);
    if (rc != GIZ_OK) return rc;
    if (stored[0] == '\0') return GIZ_ERR_NOT_FOUND;
    rc = auth_key_digest(s, auth_key, want, sizeof want);
    if (rc != GIZ_OK) return rc;
    if (strlen(stored) != strlen(want)) return GIZ_ERR_AUTH;
    return giz_consttime_eq(stored, want, strlen(want)) ? GIZ_OK : GIZ_ERR_AUTH;
}

/* ---- users, sessions, bindings -------------------------------------------- */

static bool text_ok(const char *v, size_t max)
{
    return v && v[0] != '\0' && strnlen(v, max + 1) <= max;
}

int giz_store_user_create(struct giz_store *s, const char *username, const char *password,
                          char uid_out[GIZ_UID_SIZE])
{
    char uid[GIZ_UID_SIZE], hash[GIZ_HASH_STR_MAX];
    sqlite3_stmt *st;
    int rc, src;

    if (!s || !uid_out || !text_ok(username, MAX_USERNAME) || !text_ok(password, MAX_PASSWORD))
        return GIZ_ERR_INVAL;
    rc = giz_random_hex(uid, sizeof uid, 16);
    if (rc == GIZ_OK) rc = giz_secret_hash(password, GIZ_PASSWORD_ITERATIONS, hash, sizeof hash);
    if (rc) return rc;
    st = s->st[ST_USER_INSERT];
    b_text(s, st, 1, uid);
    b_text(s, st, 2, username);
    b_text(s, st, 3, hash);
    b_int(s, st, 4, now_s());
    src = st_step(s, st);
    if (src == SQLITE_DONE) {
        memcpy(uid_out, uid, sizeof uid);
        rc = GIZ_OK;
    } else if (src == SQLITE_CONSTRAINT_UNIQUE) {
        rc = GIZ_ERR_EXISTS;
    } else {
        rc = db_err(s, src, "inserting user");
    }
    st_reset(s, st);
    return rc;
}

int giz_store_user_login(struct giz_store *s, const char *username, const char *password,
                         const char *appid, int64_t ttl_s, int64_t now, struct giz_session *out)
{
    struct giz_session sess;
    char hash[GIZ_HASH_STR_MAX], digest[65];
    sqlite3_stmt *st;
    int rc, src, kind;
    bool found = false;

    if (!s || !out || !username || !password || ttl_s <= 0 || now > INT64_MAX - ttl_s)
        return GIZ_ERR_INVAL;
    if (appid && strlen(appid) >= GIZ_PK_SIZE) return GIZ_ERR_INVAL;
    memset(&sess, 0, sizeof sess);
    if (strnlen(username, MAX_USERNAME + 1) <= MAX_USERNAME) {
        st = s->st[ST_USER_BY_NAME];
        b_text(s, st, 1, username);
        src = st_step(s, st);
        if (src == SQLITE_ROW) {
            col_text(st, 0, sess.uid, sizeof sess.uid);
            col_text(st, 1, hash, sizeof hash);
            found = true;
        } else if (src != SQLITE_DONE) {
            rc = db_err(s, src, "reading user");
            st_reset(s, st);
            return rc;
        }
        st_reset(s, st);
    }
    if (!found) {
        /* Same PBKDF2 work as a wrong password, so timing does not reveal
         * whether the username exists. */
        giz_secret_hash(password, GIZ_PASSWORD_ITERATIONS, hash, sizeof hash);
        return GIZ_ERR_AUTH;
    }
    if (giz_secret_verify(password, hash) != GIZ_OK) return GIZ_ERR_AUTH;

    memcpy(sess.mqtt_client_id, "usr", 3);
    rc = giz_random_hex(sess.token, sizeof sess.token, 16);
    if (rc == GIZ_OK)
        rc = giz_random_base62(sess.mqtt_client_id + 3, sizeof sess.mqtt_client_id - 3, 20);
    if (rc == GIZ_OK)
        rc = giz_token_digest(s->token_key, sizeof s->token_key, sess.token, digest, sizeof digest);
    if (rc) return rc;
    if (appid) memcpy(sess.appid, appid, strlen(appid) + 1);
    sess.expire_at = now + ttl_s;

    rc = txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_SESSION_PRUNE_USER];
    b_text(s, st, 1, sess.uid);
    b_int(s, st, 2, now);
    rc = st_exec(s, st, "pruning expired sessions");
    if (rc == GIZ_OK) {
        st = s->st[ST_SESSION_INSERT];
        b_text(s, st, 1, digest);
        b_text(s, st, 2, sess.uid);
        b_text(s, st, 3, sess.mqtt_client_id);
        b_text(s, st, 4, sess.appid);
        b_int(s, st, 5, sess.expire_at);
        b_int(s, st, 6, now);
        rc = st_exec(s, st, "inserting session");
    }
    rc = txn_close(s, kind, rc);
    if (rc == GIZ_OK) *out = sess;
    memset(&sess, 0, sizeof sess);
    return rc;
}

int giz_store_session_by_token(struct giz_store *s, const char *token, int64_t now,
                               struct giz_session *out)
{
    char digest[65];
    sqlite3_stmt *st;
    int rc, src;

    if (!s || !token || !out) return GIZ_ERR_INVAL;
    if (token[0] == '\0' || strnlen(token, 256) >= 256) return GIZ_ERR_AUTH;
    rc = giz_token_digest(s->token_key, sizeof s->token_key, token, digest, sizeof digest);
    if (rc) return rc;
    st = s->st[ST_SESSION_GET];
    b_text(s, st, 1, digest);
    src = st_step(s, st);
    if (src == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        col_text(st, 0, out->uid, sizeof out->uid);
        col_text(st, 1, out->mqtt_client_id, sizeof out->mqtt_client_id);
        col_text(st, 2, out->appid, sizeof out->appid);
        out->expire_at = sqlite3_column_int64(st, 3);
        rc = now >= out->expire_at ? GIZ_ERR_EXPIRED : GIZ_OK;
    } else {
        rc = src == SQLITE_DONE ? GIZ_ERR_AUTH : db_err(s, src, "reading session");
    }
    st_reset(s, st);
    return rc;
}

static int row_exists(struct giz_store *s, sqlite3_stmt *st, const char *what)
{
    int rc, src = st_step(s, st);
    if (src == SQLITE_ROW)
        rc = GIZ_OK;
    else
        rc = src == SQLITE_DONE ? GIZ_ERR_NOT_FOUND : db_err(s, src, what);
    st_reset(s, st);
    return rc;
}

static int binding_event(struct giz_store *s, const char *uid, const struct giz_device *dev,
                         int64_t now)
{
    struct giz_outbox_item it;
    memset(&it, 0, sizeof it);
    it.kind = GIZ_OUTBOX_BINDING;
    memcpy(it.did, dev->did, sizeof it.did);
    memcpy(it.product_key, dev->product_key, sizeof it.product_key);
    memcpy(it.uid, uid, strlen(uid) + 1);
    return outbox_insert(s, &it, now, NULL);
}

int giz_store_binding_add(struct giz_store *s, const char *uid, const char *did,
                          const char *passcode)
{
    struct giz_device dev;
    sqlite3_stmt *st;
    int rc, kind;
    int64_t now = now_s();

    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    if (strlen(uid) >= GIZ_UID_SIZE) return GIZ_ERR_NOT_FOUND;
    rc = verify_device(s, did, passcode, &dev);
    if (rc) return rc;
    rc = txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_USER_EXISTS];
    b_text(s, st, 1, uid);
    rc = row_exists(s, st, "reading user");
    if (rc == GIZ_OK) {
        st = s->st[ST_BINDING_INSERT];
        b_text(s, st, 1, uid);
        b_text(s, st, 2, did);
        b_int(s, st, 3, now);
        rc = st_exec(s, st, "inserting binding");
    }
    if (rc == GIZ_OK) rc = binding_event(s, uid, &dev, now);
    return txn_close(s, kind, rc);
}

int giz_store_binding_remove(struct giz_store *s, const char *uid, const char *did)
{
    struct giz_device dev;
    sqlite3_stmt *st;
    int rc, kind;
    int64_t now = now_s();

    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    if (strlen(uid) >= GIZ_UID_SIZE || strlen(did) >= GIZ_DID_SIZE) return GIZ_ERR_NOT_FOUND;
    rc = txn_open(s, &kind);
    if (rc) return rc;
    st = s->st[ST_BINDING_DELETE];
    b_text(s, st, 1, uid);
    b_text(s, st, 2, did);
    rc = st_exec(s, st, "deleting binding");
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_OK) rc = device_read(s, did, &dev, NULL, 0);
    if (rc == GIZ_OK) rc = binding_event(s, uid, &dev, now);
    return txn_close(s, kind, rc);
}

static int binding_list(struct giz_store *s, sqlite3_stmt *st, const char *key,
                        giz_store_binding_cb cb, void *ud)
{
    struct giz_binding b;
    int rc = GIZ_OK, src;

    if (list_guard(s, st)) return GIZ_ERR_INVAL;
    b_text(s, st, 1, key);
    while ((src = st_step(s, st)) == SQLITE_ROW) {
        memset(&b, 0, sizeof b);
        col_text(st, 0, b.uid, sizeof b.uid);
        col_text(st, 1, b.did, sizeof b.did);
        col_text(st, 2, b.product_key, sizeof b.product_key);
        b.online = sqlite3_column_int(st, 3) != 0;
        b.created_at = sqlite3_column_int64(st, 4);
        if (cb(&b, ud)) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = db_err(s, src, "listing bindings");
    st_reset(s, st);
    return rc;
}

int giz_store_binding_list_by_user(struct giz_store *s, const char *uid, giz_store_binding_cb cb,
                                   void *ud)
{
    if (!s || !uid || !cb) return GIZ_ERR_INVAL;
    return binding_list(s, s->st[ST_BINDING_BY_USER], uid, cb, ud);
}

int giz_store_binding_list_by_device(struct giz_store *s, const char *did, giz_store_binding_cb cb,
                                     void *ud)
{
    if (!s || !did || !cb) return GIZ_ERR_INVAL;
    return binding_list(s, s->st[ST_BINDING_BY_DEVICE], did, cb, ud);
}

int giz_store_binding_exists(struct giz_store *s, const char *uid, const char *did)
{
    sqlite3_stmt *st;
    if (!s || !uid || !did) return GIZ_ERR_INVAL;
    st = s->st[ST_BINDING_EXISTS];
    b_text(s, st, 1, uid);
    b_text(s, st, 2, did);
    return row_exists(s, st, "reading binding");
}

/* ---- device logs ----------------------------------------------------------- */

int giz_store_log_insert(struct giz_store *s, const char *did, int level, const char *tags,
                         size_t tags_len, const char *source, size_t source_len,
                         const char *content, size_t content_len, int64_t ts)
{
    sqlite3_stmt *st;

    if (!s || !did || strlen(did) >= GIZ_DID_SIZE || level < 1 || level > 3) return GIZ_ERR_INVAL;
    if ((!tags && tags_len) || (!source && source_len) || (!content && content_len))
        return GIZ_ERR_INVAL;
    if (tags_len > MAX_LOG_TEXT || source_len > MAX_LOG_TEXT || content_len > MAX_LOG_TEXT)
        return GIZ_ERR_OVERSIZE;
    st = s->st[ST_LOG_INSERT];
    b_text(s, st, 1, did);
    b_int(s, st, 2, level);
    b_textn(s, st, 3, tags, tags_len);
    b_textn(s, st, 4, source, source_len);
    b_textn(s, st, 5, content, content_len);
    b_int(s, st, 6, ts);
    return st_exec(s, st, "inserting device log");
}

int giz_store_log_list(struct giz_store *s, const char *did, unsigned limit, int64_t before_id,
                       giz_store_log_cb cb, void *ud)
{
    struct giz_device_log l;
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !did || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_LOG_LIST];
    if (list_guard(s, st)) return GIZ_ERR_INVAL;
    b_text(s, st, 1, did);
    b_int(s, st, 2, before_id > 0 ? before_id : INT64_MAX);
    b_int(s, st, 3, limit ? limit : 100);
    while ((src = st_step(s, st)) == SQLITE_ROW) {
        memset(&l, 0, sizeof l);
        l.id = sqlite3_column_int64(st, 0);
        col_text(st, 1, l.did, sizeof l.did);
        l.level = sqlite3_column_int(st, 2);
        l.tags = (const char *)sqlite3_column_text(st, 3);
        l.source = (const char *)sqlite3_column_text(st, 4);
        l.content = (const char *)sqlite3_column_text(st, 5);
        l.ts = sqlite3_column_int64(st, 6);
        if (!l.tags || !l.source || !l.content) {
            src = SQLITE_NOMEM;
            break;
        }
        if (cb(&l, ud)) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = db_err(s, src, "listing device logs");
    st_reset(s, st);
    return rc;
}

int giz_store_log_prune(struct giz_store *s, unsigned keep)
{
    sqlite3_stmt *st;
    int64_t max_id = 0;
    int rc, src;
    if (!s) return GIZ_ERR_INVAL;
    /* Only devices with records newer than this connection's last prune can
     * be over `keep`: one index walk each instead of a scan of every log. */
    st = s->st[ST_LOG_MAX_ID];
    src = st_step(s, st);
    if (src == SQLITE_ROW) max_id = sqlite3_column_int64(st, 0);
    rc = src == SQLITE_ROW ? GIZ_OK : db_err(s, src, "reading the newest device log");
    st_reset(s, st);
    if (rc != GIZ_OK) return rc;
    if (s->log_pruned_keep != (int64_t)keep) s->log_pruned_upto = 0; /* new limit: look at all */
    if (max_id <= s->log_pruned_upto) return GIZ_OK;
    st = s->st[ST_LOG_PRUNE];
    b_int(s, st, 1, keep);
    b_int(s, st, 2, s->log_pruned_upto);
    rc = st_exec(s, st, "pruning device logs");
    if (rc == GIZ_OK) {
        s->log_pruned_upto = max_id;
        s->log_pruned_keep = keep;
    }
    return rc;
}

/* ---- outbox --------------------------------------------------------------- */

int giz_store_outbox_push(struct giz_store *s, const struct giz_outbox_item *it, int64_t *id_out)
{
    if (!s || !it || it->kind < GIZ_OUTBOX_OTA_PUSH || it->kind > GIZ_OUTBOX_BINDING)
        return GIZ_ERR_INVAL;
    if (!fits(it->did, sizeof it->did) || !fits(it->product_key, sizeof it->product_key) ||
        !fits(it->uid, sizeof it->uid) || !fits(it->url, sizeof it->url))
        return GIZ_ERR_INVAL;
    return outbox_insert(s, it, now_s(), id_out);
}

int giz_store_outbox_fetch(struct giz_store *s, int64_t after_id, unsigned max,
                           giz_store_outbox_cb cb, void *ud)
{
    struct giz_outbox_item it;
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_OUTBOX_FETCH];
    if (list_guard(s, st)) return GIZ_ERR_INVAL;
    b_int(s, st, 1, after_id);
    b_int(s, st, 2, max ? (int64_t)max : -1);
    while ((src = st_step(s, st)) == SQLITE_ROW) {
        memset(&it, 0, sizeof it);
        it.id = sqlite3_column_int64(st, 0);
        it.kind = sqlite3_column_int(st, 1);
        col_text(st, 2, it.did, sizeof it.did);
        col_text(st, 3, it.product_key, sizeof it.product_key);
        col_text(st, 4, it.uid, sizeof it.uid);
        it.fw_type = sqlite3_column_int(st, 5);
        it.ota_version = sqlite3_column_int(st, 6);
        it.fid = sqlite3_column_int64(st, 7);
        col_text(st, 8, it.url, sizeof it.url);
        it.created_at = sqlite3_column_int64(st, 9);
        if (cb(&it, ud)) break;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = db_err(s, src, "fetching outbox");
    st_reset(s, st);
    return rc;
}

int giz_store_outbox_last_id(struct giz_store *s, int64_t *id)
{
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !id) return GIZ_ERR_INVAL;
    *id = 0;
    st = s->st[ST_OUTBOX_LAST];
    src = st_step(s, st);
    if (src == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else
        rc = db_err(s, src, "reading outbox last id");
    st_reset(s, st);
    return rc;
}

int giz_store_outbox_prune(struct giz_store *s, int64_t older_than)
{
    sqlite3_stmt *st;
    if (!s) return GIZ_ERR_INVAL;
    st = s->st[ST_OUTBOX_PRUNE];
    b_int(s, st, 1, older_than);
    return st_exec(s, st, "pruning outbox");
}

/* ---- broker liveness (schema 005; written by the plugin) ------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs a broker-row write (pid ?1, time ?2); GIZ_ERR_NOT_FOUND if no row changed. */
static int broker_write(struct giz_store *s, enum store_stmt_id id, int64_t pid, int64_t now_ms,
                        const char *what)
{
    sqlite3_stmt *st;
    int rc;
    if (!s || pid <= 0) return GIZ_ERR_INVAL;
    st = s->st[id];
    b_int(s, st, 1, pid);
    b_int(s, st, 2, now_ms > 0 ? now_ms : wall_ms());
    rc = st_exec(s, st, what);
    if (rc == GIZ_OK && sqlite3_changes(s->db) == 0) rc = GIZ_ERR_NOT_FOUND;
    return rc;
}

int giz_store_broker_start(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    return broker_write(s, ST_BROKER_START, pid, now_ms, "recording broker start");
}

int giz_store_broker_heartbeat(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    return broker_write(s, ST_BROKER_BEAT, pid, now_ms, "writing broker heartbeat");
}

int giz_store_broker_stop(struct giz_store *s, int64_t pid, int64_t now_ms)
{
    return broker_write(s, ST_BROKER_STOP, pid, now_ms, "recording broker stop");
}

int giz_store_broker_get(struct giz_store *s, struct giz_broker_status *out)
{
    sqlite3_stmt *st;
    int rc = GIZ_OK, src;

    if (!s || !out) return GIZ_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    st = s->st[ST_BROKER_GET];
    src = st_step(s, st);
    if (src == SQLITE_ROW) {
        out->pid = sqlite3_column_int64(st, 0);
        out->started_at_ms = sqlite3_column_int64(st, 1);
        out->heartbeat_at_ms = sqlite3_column_int64(st, 2);
        out->stopped = sqlite3_column_type(st, 3) != SQLITE_NULL;
        out->stopped_at_ms = out->stopped ? sqlite3_column_int64(st, 3) : 0;
    } else if (src == SQLITE_DONE) {
        rc = GIZ_ERR_NOT_FOUND;
    } else {
        rc = db_err(s, src, "reading broker status");
    }
    st_reset(s, st);
    return rc;
}

int giz_store_broker_alive(struct giz_store *s, int64_t max_age_ms, bool *alive)
{
    struct giz_broker_status b;
    int rc;

    if (!s || !alive || max_age_ms < 0) return GIZ_ERR_INVAL;
    *alive = false;
    rc = giz_store_broker_get(s, &b);
    if (rc == GIZ_ERR_NOT_FOUND) return GIZ_OK; /* no broker ever ran on this database */
    if (rc != GIZ_OK) return rc;
    /* A heartbeat from the future (wall clock stepped back) counts as fresh. */
    *alive = !b.stopped && wall_ms() - b.heartbeat_at_ms <= max_age_ms;
    return GIZ_OK;
}

static int store_wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    struct giz_store *s = ud;
    (void)db;
    (void)name;
    if (s->wal_cb) s->wal_cb(s->wal_ud, frames);
    return SQLITE_OK;
}

int giz_store_set_wal_cb(struct giz_store *s, giz_store_wal_cb cb, void *ud)
{
    if (!s) return GIZ_ERR_INVAL;
    s->wal_cb = cb;
    s->wal_ud = ud;
    if (cb)
        sqlite3_wal_hook(s->db, store_wal_hook, s);
    else
        sqlite3_wal_autocheckpoint(s->db, SQLITE_DEFAULT_WAL_AUTOCHECKPOINT);
    return GIZ_OK;
}

int giz_store_checkpoint(struct giz_store *s, int *wal_frames, int *done)
{
    int log = 0, ckpt = 0, src;

    if (!s) return GIZ_ERR_INVAL;
    src = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt);
    if (wal_frames) *wal_frames = log;
    if (done) *done = ckpt;
    if (src == SQLITE_OK || (src & 0xff) == SQLITE_BUSY) return GIZ_OK;
    return db_err(s, src, "checkpoint");
}
