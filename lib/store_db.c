/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Opening the database: file modes (0600 for a new file, world bits taken
 * from old ones), WAL with retries, the busy handler, the compiled-in
 * migrations (one transaction each, newer databases refused), preparing the
 * statement table, the token key, close, online backup and WAL checkpoints.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"
#include "giz/crypto.h"
#include "giz/util.h"
#include "migrations.h"
#include "store_pg.h"

#ifndef SQLITE_DEFAULT_WAL_AUTOCHECKPOINT
#define SQLITE_DEFAULT_WAL_AUTOCHECKPOINT 1000
#endif

static const char *const store_stmt_sql[ST__COUNT] = {
#define STORE__STMT_SQL(name, sql) sql,
    STORE_STMTS(STORE__STMT_SQL)
#undef STORE__STMT_SQL
};

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
    int64_t now = (int64_t)(giz_mono_ns() / 1000);
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
    sq_stmt *st = NULL;
    int rc, ret = GIZ_OK;

    *version = 0;
    rc = sq_prepare_v2(s,
                       "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                       "AND name = 'schema_version'",
                       -1, &st, NULL);
    if (rc != SQLITE_OK) goto fail;
    rc = sq_step(st);
    if (rc != SQLITE_ROW) goto fail;
    if (sq_column_int(st, 0) == 0) goto cleanup;
    sq_finalize(st);
    st = NULL;
    rc = sq_prepare_v2(s, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK) goto fail;
    rc = sq_step(st);
    if (rc != SQLITE_ROW) goto fail;
    *version = sq_column_int(st, 0);
    goto cleanup;
fail:
    ret = store__db_err(s, rc, "reading schema_version");
cleanup:
    sq_finalize(st);
    return ret;
}

static int exec_sql(struct giz_store *s, const char *sql, const char *what)
{
    int rc = sq_exec(s, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? GIZ_OK : store__db_err(s, rc, what);
}

static int newer_error(int found, int latest, struct giz_error *err)
{
    char text[96];
    snprintf(text, sizeof text,
             "database schema version %d is newer than this build (%d); upgrade gizcloud", found,
             latest);
    giz_log(GIZ_LOG_ERR, "store: %s", text);
    store__set_err(err, GIZ_ERR_SCHEMA_NEWER, text);
    return GIZ_ERR_SCHEMA_NEWER;
}

/* Applies one migration in its own BEGIN IMMEDIATE transaction unless
 * another process applied it first. */
static int apply_migration(struct giz_store *s, const struct giz__migration *m, int latest,
                           struct giz_error *err)
{
    sq_stmt *st = NULL;
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
    if (sq_prepare_v2(s,
                      "INSERT INTO schema_version(version, name, applied_at) "
                      "VALUES (?1, ?2, ?3)",
                      -1, &st, NULL) != SQLITE_OK ||
        sq_bind_int(st, 1, m->version) != SQLITE_OK ||
        sq_bind_text(st, 2, m->name, -1, SQLITE_STATIC) != SQLITE_OK ||
        sq_bind_int64(st, 3, store__now_s()) != SQLITE_OK || sq_step(st) != SQLITE_DONE) {
        rc = store__db_err(s, sq_errcode(s), "stamping schema_version");
        goto cleanup;
    }
    giz_log(GIZ_LOG_INFO, "store: applied migration %s", m->name);
cleanup:
    sq_finalize(st);
    if (rc == GIZ_OK) rc = exec_sql(s, "COMMIT", "COMMIT (migration)");
    if (rc && !sq_get_autocommit(s)) sq_exec(s, "ROLLBACK", NULL, NULL, NULL);
    if (rc && rc != GIZ_ERR_SCHEMA_NEWER) {
        char text[96];
        snprintf(text, sizeof text, "migration %s failed: %s", m->name, sq_errmsg(s));
        store__set_err(err, rc, text);
    }
    return rc;
}

static int migrate(struct giz_store *s, struct giz_error *err)
{
    int latest = giz_store_schema_version_latest(), version = 0, rc;

    rc = read_version(s, &version);
    if (rc) {
        store__set_err(err, rc, s->errmsg);
        return rc;
    }
    if (version > latest) return newer_error(version, latest, err);
    for (unsigned i = 0; i < giz__schema_migration_count && version < latest; i++) {
        if (giz__schema_migrations[i].version <= version) continue;
        rc = apply_migration(s, &giz__schema_migrations[i], latest, err);
        if (rc) return rc;
    }
    rc = read_version(s, &s->schema_version);
    if (rc) store__set_err(err, rc, s->errmsg);
    return rc;
}

/* Loads meta('token_key'), creating it with 32 random bytes on first use. */
static int load_token_key(struct giz_store *s)
{
    sq_stmt *get = s->st[ST_META_GET], *ins = s->st[ST_META_INSERT];
    uint8_t fresh[TOKEN_KEY_LEN];
    int rc = GIZ_OK, src, kind;

    for (int attempt = 0; attempt < 2; attempt++) {
        store__bind_text(s, get, 1, "token_key");
        src = store__step(s, get);
        if (src == SQLITE_ROW && sq_column_bytes(get, 0) == TOKEN_KEY_LEN) {
            memcpy(s->token_key, sq_column_blob(get, 0), TOKEN_KEY_LEN);
            store__reset(s, get);
            return GIZ_OK;
        }
        if (src == SQLITE_ROW) {
            store__reset(s, get);
            snprintf(s->errmsg, sizeof s->errmsg, "meta token_key has the wrong size");
            giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
            return GIZ_ERR_DB;
        }
        if (src != SQLITE_DONE) {
            rc = store__db_err(s, src, "reading token key");
            store__reset(s, get);
            return rc;
        }
        store__reset(s, get);
        if (attempt > 0) break;
        rc = giz_random_bytes(fresh, sizeof fresh);
        if (rc) return rc;
        rc = store__txn_open(s, &kind);
        if (rc) return rc;
        store__bind_text(s, ins, 1, "token_key");
        store__bind_note(s, sq_bind_blob(ins, 2, fresh, (int)sizeof fresh, SQLITE_TRANSIENT));
        rc = store__txn_close(s, kind, store__exec(s, ins, "storing token key"));
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
            giz_log(GIZ_LOG_WARN,
                    "store: %s is mode %04o (world-accessible) and cannot be changed: %s", file,
                    (unsigned)(st.st_mode & 07777), strerror(errno));
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
        store__set_err(err, GIZ_ERR_INVAL, "no database path");
        return GIZ_ERR_INVAL;
    }
    pthread_once(&global_once, store_global_init);
    s = calloc(1, sizeof *s);
    if (!s) {
        store__set_err(err, GIZ_ERR_NOMEM, "out of memory");
        return GIZ_ERR_NOMEM;
    }
    s->log_pruned_keep = -1;
    if (store_pg_is_conninfo(path)) {
        rc = store_pg_open(s, path, err);
        if (rc) goto cleanup;
        goto prepare;
    }
    store_files_private(path);
    src = sqlite3_open_v2(path, &s->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        char text[96];
        snprintf(text, sizeof text, "cannot open %s: %s", path,
                 s->db ? sq_errmsg(s) : sqlite3_errstr(src));
        giz_log(GIZ_LOG_ERR, "store: %s", text);
        rc = (src & 0xff) == SQLITE_NOMEM ? GIZ_ERR_NOMEM : GIZ_ERR_DB;
        store__set_err(err, rc, text);
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
        src = sq_exec(s, "PRAGMA journal_mode = WAL", journal_cb, mode, NULL);
        if (src == SQLITE_OK && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0)) break;
        if (src != SQLITE_OK && (src & 0xff) != SQLITE_BUSY && (src & 0xff) != SQLITE_LOCKED) break;
        if (waited >= STORE_BUSY_TIMEOUT_MS) break;
        sqlite3_sleep(10);
    }
    if (src != SQLITE_OK) {
        rc = store__db_err(s, src, "setting journal_mode");
        store__set_err(err, rc, s->errmsg);
        goto cleanup;
    }
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)
        giz_log(GIZ_LOG_WARN, "store: journal_mode is %s, not wal", mode);
    rc = exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "setting pragmas");
    if (rc) {
        store__set_err(err, rc, s->errmsg);
        goto cleanup;
    }
    rc = migrate(s, err);
    if (rc) goto cleanup;
prepare:
    for (int i = 0; i < ST__COUNT; i++) {
        src = sq_prepare_slot(s, store_stmt_sql[i], SQLITE_PREPARE_PERSISTENT, &s->st_slot[i]);
        if (src == SQLITE_OK) s->st[i] = &s->st_slot[i];
        if (src != SQLITE_OK) {
            rc = store__db_err(s, src, "preparing statement");
            store__set_err(err, rc, s->errmsg);
            goto cleanup;
        }
    }
    rc = load_token_key(s);
    if (rc) store__set_err(err, rc, s->errmsg[0] ? s->errmsg : "cannot create token key");
cleanup:
    if (rc) {
        giz_store_close(s);
        s = NULL;
    } else {
        store__set_err(err, GIZ_OK, "");
    }
    *out = s;
    return rc;
}

void giz_store_close(struct giz_store *s)
{
    if (!s) return;
    for (int i = 0; i < ST__COUNT; i++)
        sq_close_slot(&s->st_slot[i]);
    if (s->db) {
        if (!sq_get_autocommit(s)) sq_exec(s, "ROLLBACK", NULL, NULL, NULL);
        if (sqlite3_close(s->db) != SQLITE_OK)
            giz_log(GIZ_LOG_ERR, "store: close: %s", sq_errmsg(s));
    }
    if (s->pg) {
        if (!sq_get_autocommit(s)) sq_exec(s, "ROLLBACK", NULL, NULL, NULL);
        store_pg_close(s->pg);
    }
    memset(s->token_key, 0, sizeof s->token_key);
    explicit_bzero(&s->pkey, sizeof s->pkey);
    free(s);
}

int giz_store_backup(struct giz_store *s, const char *dest_path)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *bk;
    int src, rc = GIZ_OK;

    if (!s || !dest_path) return GIZ_ERR_INVAL;
    if (s->pg) {
        snprintf(s->errmsg, sizeof s->errmsg, "backup: the store is PostgreSQL; use pg_dump");
        return GIZ_ERR_INVAL;
    }
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
    if (s->pg) return GIZ_OK; /* no WAL to checkpoint: PostgreSQL does its own */
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
    if (s->pg) {
        if (wal_frames) *wal_frames = 0;
        if (done) *done = 0;
        return GIZ_OK;
    }
    src = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt);
    if (wal_frames) *wal_frames = log;
    if (done) *done = ckpt;
    if (src == SQLITE_OK || (src & 0xff) == SQLITE_BUSY) return GIZ_OK;
    return store__db_err(s, src, "checkpoint");
}
