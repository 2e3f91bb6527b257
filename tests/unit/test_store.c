/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the SQLite store on a real database file in a fresh temp
 * directory: migrations (applied once, idempotent, newer schema refused),
 * every public function's success and error paths, outbox events written in
 * the same transaction as the change that causes them, secrets never stored
 * in clear, and two connections sharing one file.
 * With GIZ_TEST_PG_URI set (tests/common/pgserver.py run, the CTest entries
 * unit_store_pg.<case>) the same cases run on PostgreSQL, each database of a
 * case a fresh one on that server; cases that test SQLite's files (file
 * modes, WAL contents, backup, integrity_check, a file shared by processes)
 * say they skip, or check the PostgreSQL equivalent where there is one.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "giz/crypto.h"
#include "giz/log.h"
#include "migrations.h"

/* Migrations compiled in (version numbers may have gaps while reserved
 * numbers are unused, so count them rather than use the latest version). */
#define MIGRATIONS ((long long)giz__schema_migration_count)
#include "giz/store.h"
#include "test.h"

static char dir[256];
static char dbpath[600];
/* GIZ_TEST_PG_URI: run on PostgreSQL (NULL: SQLite files in dir). */
static const char *pg_uri;

/* Prints why part of a case is skipped on PostgreSQL. */
#define PG_SKIP(what) fprintf(stderr, "SKIP on PostgreSQL: %s\n", what)

/* The database `name` of a case: a file in dir, or (PostgreSQL) a fresh
 * database on the server, created here, whose URI goes to out. */
static void db_path(char *out, size_t cap, const char *name)
{
    static unsigned seq;
    char db[64], sql[96];
    const char *slash;
    PGconn *c;
    PGresult *res;

    if (!pg_uri) {
        snprintf(out, cap, "%s/%s.db", dir, name);
        return;
    }
    snprintf(db, sizeof db, "t_%d_%u_%s", (int)getpid(), seq++, name);
    c = PQconnectdb(pg_uri);
    ASSERT_EQ(PQstatus(c), CONNECTION_OK);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    res = PQexec(c, sql);
    ASSERT_EQ(PQresultStatus(res), PGRES_COMMAND_OK);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) fprintf(stderr, "%s", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    slash = strrchr(pg_uri, '/');
    snprintf(out, cap, "%.*s/%s", (int)(slash - pg_uri), pg_uri, db);
}

/* raw_* on PostgreSQL: one libpq connection per call. */
static PGresult *pg_raw(const char *uri, const char *sql, PGconn **conn)
{
    *conn = PQconnectdb(uri);
    if (PQstatus(*conn) != CONNECTION_OK) return NULL;
    return PQexec(*conn, sql);
}
/* One verified-passcode cache for every connection this test opens, as the
 * GService's pool shares one (created in main, freed after the last close). */
static struct giz_pcache *pcache;

static struct giz_store *open_ok(const char *path)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    int rc = giz_store_open(path, &s, &err);
    ASSERT_EQ(rc, GIZ_OK);
    if (rc) fprintf(stderr, "open: %s\n", err.text);
    if (s) ASSERT_EQ(giz_store_set_pcache(s, pcache), GIZ_OK);
    return s;
}

static int raw_exec(const char *path, const char *sql)
{
    if (pg_uri) {
        PGconn *c;
        PGresult *r = pg_raw(path, sql, &c);
        int ok =
            r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
        if (!ok) fprintf(stderr, "raw_exec: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return ok ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static long long raw_int(const char *path, const char *sql)
{
    if (pg_uri) {
        PGconn *c;
        PGresult *r = pg_raw(path, sql, &c);
        long long v = -1;
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else
            fprintf(stderr, "raw_int: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static bool is_base62(const char *s, size_t n)
{
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", s[i]))
            return false;
    return true;
}

static bool is_lowhex(const char *s, size_t n)
{
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i])) return false;
    return true;
}

TEST_CASE(migrations)
{
    struct giz_store *s = open_ok(dbpath);
    ASSERT_TRUE(s != NULL);
    if (!s) return;
    ASSERT_TRUE(giz_store_schema_version_latest() >= 1);
    ASSERT_EQ(giz_store_schema_version(s), giz_store_schema_version_latest());
    giz_store_close(s);
    /* Reopen: nothing applied twice. */
    s = open_ok(dbpath);
    giz_store_close(s);
    if (pg_uri) { /* one consolidated file, schema/pg/011_init.sql, so far */
        ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM schema_version"),
                  giz__schema_pg_migration_count);
        ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM schema_version WHERE version = 11 AND "
                                  "name = '011_init.sql' AND applied_at > 0"),
                  1);
        ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM meta WHERE key = 'token_key' AND "
                                  "length(value) = 32"),
                  1);
        return;
    }
    ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM schema_version"), MIGRATIONS);
    ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM schema_version WHERE version = 1 AND "
                              "name = '001_init.sql' AND applied_at > 0"),
              1);
    ASSERT_EQ(
        raw_int(dbpath, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1);
    ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM meta WHERE key = 'token_key' AND "
                              "length(value) = 32"),
              1);
}

/* A database one migration behind (simulated by undoing the newest one) is
 * brought up to date on open; each migration is stamped once. */
TEST_CASE(upgrade)
{
    char path[600], sql[200];
    const int latest = giz_store_schema_version_latest();
    struct giz_store *s;

    if (latest < 2) {
        fprintf(stderr, "only one migration: upgrade path not exercised\n");
        return;
    }
    if (pg_uri && giz__schema_pg_migration_count < 2) {
        PG_SKIP("upgrade (schema/pg/ has one consolidated migration: no path to exercise)");
        ASSERT_TRUE(1);
        return;
    }
    /* What the newest migration creates, so it can be undone. */
    const char *newest = latest >= 6 ? "event_prune" : latest >= 5 ? "broker" : "outbox_created";
    const char *undo = latest >= 6   ? "DROP TABLE event_prune; DROP TABLE event_drops; "
                                       "DROP TABLE events"
                       : latest >= 5 ? "DROP TABLE broker"
                                     : "DROP INDEX outbox_created";
    if (latest == 9) { /* 009_app_api.sql: columns and indexes (the outbox rebuild re-runs) */
        newest = "users_phone_id";
        undo =
            "DROP INDEX users_phone_id; DROP INDEX users_email; "
            "ALTER TABLE users DROP COLUMN phone_id; ALTER TABLE users DROP COLUMN email; "
            "ALTER TABLE bindings DROP COLUMN remark; ALTER TABLE bindings DROP COLUMN dev_alias; "
            "DROP INDEX bindings_seq; ALTER TABLE bindings DROP COLUMN bound_seq; "
            "ALTER TABLE outbox DROP COLUMN client_id; ALTER TABLE outbox DROP COLUMN payload";
    }
    if (latest == 11) { /* 011_campaigns.sql: three tables */
        newest = "campaign_cursor";
        undo = "DROP TABLE campaign_cursor; DROP TABLE campaign_devices; DROP TABLE campaigns";
    }
    if (latest == 12) { /* 012_brokers.sql: the registry replaces schema 005's row */
        newest = "brokers";
        undo = "DROP INDEX devices_broker; ALTER TABLE devices DROP COLUMN broker_at; "
               "ALTER TABLE devices DROP COLUMN broker; DROP TABLE brokers; "
               "CREATE TABLE broker (id INTEGER PRIMARY KEY CHECK (id = 1), "
               "pid INTEGER NOT NULL, started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL, "
               "stopped_at INTEGER, metrics TEXT, metrics_at INTEGER) STRICT";
    }
    char probe[160];
    snprintf(probe, sizeof probe, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", newest);
    db_path(path, sizeof path, "upgrade");
    s = open_ok(path);
    giz_store_close(s);
    ASSERT_EQ(raw_int(path, probe), 1);
    ASSERT_EQ(raw_exec(path, undo), SQLITE_OK);
    snprintf(sql, sizeof sql, "DELETE FROM schema_version WHERE version = %d", latest);
    ASSERT_EQ(raw_exec(path, sql), SQLITE_OK);
    s = open_ok(path);
    if (s) ASSERT_EQ(giz_store_schema_version(s), latest);
    giz_store_close(s);
    ASSERT_EQ(raw_int(path, probe), 1);
    ASSERT_EQ(raw_int(path, "SELECT count(*) FROM schema_version"), MIGRATIONS);
    ASSERT_EQ(raw_int(path, "SELECT count(DISTINCT version) FROM schema_version"), MIGRATIONS);
}

TEST_CASE(schema_newer)
{
    char path[320];
    struct giz_store *s = NULL;
    struct giz_error err;
    db_path(path, sizeof path, "newer");
    s = open_ok(path);
    giz_store_close(s);
    ASSERT_EQ(raw_exec(path, "INSERT INTO schema_version(version, name, applied_at) "
                             "VALUES (999, '999_future.sql', 1)"),
              SQLITE_OK);
    memset(&err, 0, sizeof err);
    s = (struct giz_store *)&err; /* must be reset to NULL */
    ASSERT_EQ(giz_store_open(path, &s, &err), GIZ_ERR_SCHEMA_NEWER);
    ASSERT_TRUE(s == NULL);
    ASSERT_EQ(err.code, GIZ_ERR_SCHEMA_NEWER);
    ASSERT_TRUE(strstr(err.text, "999") != NULL);
    ASSERT_TRUE(strstr(err.text, "newer than this build") != NULL);
    ASSERT_TRUE(strstr(err.text, "upgrade gizcloud") != NULL);
    giz_store_close(s);
}

TEST_CASE(open_errors)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    char path[320];
    memset(&err, 0, sizeof err);
    ASSERT_EQ(giz_store_open(NULL, &s, &err), GIZ_ERR_INVAL);
    if (pg_uri) {
        /* unreachable server, wrong password, bad URI: clear errors, no password in them */
        ASSERT_EQ(
            giz_store_open("postgresql://giz:s3cretPW@127.0.0.1:1/giz?connect_timeout=5", &s, &err),
            GIZ_ERR_DB);
        ASSERT_TRUE(s == NULL);
        ASSERT_TRUE(strstr(err.text, "cannot connect to PostgreSQL") != NULL);
        ASSERT_TRUE(strstr(err.text, "s3cretPW") == NULL);
        fprintf(stderr, "unreachable: %s\n", err.text);
        {
            char bad[600];
            const char *at = strchr(pg_uri + 13, '@');
            snprintf(bad, sizeof bad, "postgresql://gizpg:WrongPw9@%s", at ? at + 1 : "");
            ASSERT_EQ(giz_store_open(bad, &s, &err), GIZ_ERR_DB);
            ASSERT_TRUE(strstr(err.text, "WrongPw9") == NULL);
            ASSERT_TRUE(strstr(err.text, "password authentication failed") != NULL);
            fprintf(stderr, "wrong password: %s\n", err.text);
        }
        ASSERT_EQ(giz_store_open("postgresql://u:p%zzW0rd@[::1/x", &s, &err), GIZ_ERR_DB);
        ASSERT_TRUE(strstr(err.text, "p%zzW0rd") == NULL);
        fprintf(stderr, "bad URI: %s\n", err.text);
        return;
    }
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", dir);
    ASSERT_EQ(giz_store_open(path, &s, &err), GIZ_ERR_DB);
    ASSERT_TRUE(s == NULL);
    ASSERT_TRUE(err.text[0] != '\0');
    /* Not a database at all. */
    snprintf(path, sizeof path, "%s/garbage.db", dir);
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    if (f) {
        for (int i = 0; i < 512; i++)
            fputs("this is not sqlite ", f);
        fclose(f);
    }
    ASSERT_EQ(giz_store_open(path, &s, &err), GIZ_ERR_DB);
    ASSERT_TRUE(s == NULL);
    ASSERT_TRUE(strstr(err.text, "not a database") != NULL || err.text[0] != '\0');
    giz_store_close(NULL);
}

struct collect {
    int n;
    char ids[16][64];
    int64_t nums[16];
    int stop_after;
};

static int product_cb(const struct giz_product *p, void *ud)
{
    struct collect *c = ud;
    if (c->n < 16) snprintf(c->ids[c->n], sizeof c->ids[0], "%s", p->product_key);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void test_products(struct giz_store *s)
{
    struct giz_product p1, p2, got;
    struct collect c;
    char longname[GIZ_NAME_SIZE + 1];

    ASSERT_EQ(giz_store_product_create(s, "lamp", &p1), GIZ_OK);
    ASSERT_TRUE(is_lowhex(p1.product_key, 32));
    ASSERT_TRUE(is_lowhex(p1.product_secret, 32));
    ASSERT_TRUE(strcmp(p1.product_key, p1.product_secret) != 0);
    ASSERT_TRUE(p1.created_at > 0);
    /* SQL metacharacters are stored literally. */
    const char *evil = "x'); DROP TABLE products; -- \"%_\\";
    ASSERT_EQ(giz_store_product_create(s, evil, &p2), GIZ_OK);
    ASSERT_EQ(giz_store_product_get(s, p2.product_key, &got), GIZ_OK);
    ASSERT_STREQ(got.name, evil);
    ASSERT_STREQ(got.product_secret, p2.product_secret);
    ASSERT_EQ(giz_store_product_get(s, "00000000000000000000000000000000", &got),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_product_get(s, "' OR 1=1 --", &got), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_product_create(s, "", &p2), GIZ_ERR_INVAL);
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ASSERT_EQ(giz_store_product_create(s, longname, &p2), GIZ_ERR_INVAL);
    longname[GIZ_NAME_SIZE - 1] = '\0';
    ASSERT_EQ(giz_store_product_create(s, longname, &p2), GIZ_OK);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_product_list(s, product_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 3);
    ASSERT_STREQ(c.ids[0], p1.product_key);
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    ASSERT_EQ(giz_store_product_list(s, product_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);

    /* Import: the key existing firmware holds, lowercased; secret generated or given. */
    struct giz_product imp;
    ASSERT_EQ(giz_store_product_import(s, "legacy", "0AEB9953F97C49D6BE32C46487E59400", NULL, &imp),
              GIZ_OK);
    ASSERT_STREQ(imp.product_key, "0aeb9953f97c49d6be32c46487e59400");
    ASSERT_EQ(strlen(imp.product_secret), 32);
    ASSERT_EQ(giz_store_product_get(s, "0aeb9953f97c49d6be32c46487e59400", &got), GIZ_OK);
    ASSERT_STREQ(got.product_secret, imp.product_secret);
    ASSERT_EQ(giz_store_product_import(s, "again", "0aeb9953f97c49d6be32c46487e59400", NULL, &got),
              GIZ_ERR_EXISTS);
    ASSERT_EQ(giz_store_product_import(s, "s", "11111111111111111111111111111111",
                                       "22222222222222222222222222222222", &got),
              GIZ_OK);
    ASSERT_STREQ(got.product_secret, "22222222222222222222222222222222");
    ASSERT_EQ(giz_store_product_import(s, "short", "0aeb", NULL, &got), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_product_import(s, "nothex", "0aeb9953f97c49d6be32c46487e5940g", NULL, &got),
              GIZ_ERR_INVAL);
    ASSERT_EQ(
        giz_store_product_import(s, "badsecret", "33333333333333333333333333333333", "x", &got),
        GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_product_get(s, "33333333333333333333333333333333", &got),
              GIZ_ERR_NOT_FOUND);
}

static int device_cb(const struct giz_device *d, void *ud)
{
    struct collect *c = ud;
    if (c->n < 16) snprintf(c->ids[c->n], sizeof c->ids[0], "%s", d->did);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static int outbox_cb(const struct giz_outbox_item *it, void *ud)
{
    struct collect *c = ud;
    if (c->n < 16) {
        snprintf(c->ids[c->n], sizeof c->ids[0], "%d:%s:%s", it->kind, it->did, it->uid);
        c->nums[c->n] = it->id;
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void test_devices(struct giz_store *s)
{
    struct giz_product p, q;
    struct giz_device d1, d2, d3, got;
    struct collect c;
    bool created = false;
    int64_t count = -1, last = -1;

    ASSERT_EQ(giz_store_product_create(s, "socket", &p), GIZ_OK);
    ASSERT_EQ(giz_store_product_create(s, "other", &q), GIZ_OK);
    ASSERT_EQ(giz_store_device_register(s, "ffffffffffffffffffffffffffffffff", "aabbccddeeff",
                                        "PASS1", &d1, &created),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeg0", "PASS1", &d1, &created),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddee", "PASS1", &d1, &created),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff", "", &d1, &created),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff", "a b", &d1, &created),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff", "a&b", &d1, &created),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff",
                                        "123456789012345678901234567890123", &d1, &created),
              GIZ_ERR_INVAL);

    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff", "PASS1", &d1, &created),
              GIZ_OK);
    ASSERT_TRUE(created);
    ASSERT_TRUE(is_base62(d1.did, 22));
    ASSERT_STREQ(d1.mac, "AABBCCDDEEFF");
    ASSERT_STREQ(d1.product_key, p.product_key);
    ASSERT_EQ(d1.status, GIZ_DEVICE_ACTIVE);
    ASSERT_EQ(d1.online, 0);

    /* Same product, MAC (other case) and passcode: same DID. */
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "AABBCCDDEEFF", "PASS1", &d2, &created),
              GIZ_OK);
    ASSERT_TRUE(!created);
    ASSERT_STREQ(d2.did, d1.did);
    /* Different passcode: new DID, old one stays active. */
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff", "PASS2", &d2, &created),
              GIZ_OK);
    ASSERT_TRUE(created);
    ASSERT_TRUE(strcmp(d2.did, d1.did) != 0);
    ASSERT_EQ(giz_store_device_get(s, d1.did, &got), GIZ_OK);
    ASSERT_EQ(got.status, GIZ_DEVICE_ACTIVE);
    /* Other product, same MAC and passcode: distinct device. */
    ASSERT_EQ(giz_store_device_register(s, q.product_key, "aabbccddeeff", "PASS1", &d3, &created),
              GIZ_OK);
    ASSERT_TRUE(created);
    ASSERT_TRUE(strcmp(d3.did, d1.did) != 0);
    /* Re-register with PASS2 now returns d2. */
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff", "PASS2", &got, &created),
              GIZ_OK);
    ASSERT_TRUE(!created);
    ASSERT_STREQ(got.did, d2.did);

    /* Auth. */
    ASSERT_EQ(giz_store_device_auth(s, d1.did, "PASS1", &got), GIZ_OK);
    ASSERT_STREQ(got.did, d1.did);
    ASSERT_EQ(giz_store_device_auth(s, d1.did, "PASS2", &got), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_device_auth(s, d1.did, "", &got), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_device_auth(s, d1.did, "' OR '1'='1", &got), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_device_auth(s, "nosuchdidnosuchdid0000", "PASS1", &got), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_auth(s, "' OR 1=1 --", "PASS1", &got), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_get(s, "nosuchdidnosuchdid0000", &got), GIZ_ERR_NOT_FOUND);

    /* Versions, presence, counts, listing. */
    ASSERT_EQ(giz_store_device_set_versions(s, d1.did, 1, "04020020", "00ESP826"), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_versions(s, d1.did, 2, "1.2", "H1"), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_versions(s, d1.did, 3, "1.2", "H1"), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_set_versions(s, "nosuchdidnosuchdid0000", 1, "1", "1"),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_set_versions(s, d1.did, 1, "012345678901234567890123456789012", "x"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_get(s, d1.did, &got), GIZ_OK);
    ASSERT_STREQ(got.wifi_soft_version, "04020020");
    ASSERT_STREQ(got.wifi_hard_version, "00ESP826");
    ASSERT_STREQ(got.mcu_soft_version, "1.2");
    ASSERT_STREQ(got.mcu_hard_version, "H1");

    ASSERT_EQ(giz_store_device_set_online(s, d1.did, true, 1000), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(s, "nosuchdidnosuchdid0000", true, 1000),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_get(s, d1.did, &got), GIZ_OK);
    ASSERT_TRUE(got.online);
    ASSERT_EQ(got.last_seen, 1000);
    ASSERT_EQ(giz_store_device_count(s, NULL, false, &count), GIZ_OK);
    ASSERT_EQ(count, 3);
    ASSERT_EQ(giz_store_device_count(s, p.product_key, false, &count), GIZ_OK);
    ASSERT_EQ(count, 2);
    ASSERT_EQ(giz_store_device_count(s, p.product_key, true, &count), GIZ_OK);
    ASSERT_EQ(count, 1);
    ASSERT_EQ(giz_store_device_count(s, q.product_key, true, &count), GIZ_OK);
    ASSERT_EQ(count, 0);

    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_device_list(s, NULL, false, 0, 0, device_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 3);
    ASSERT_STREQ(c.ids[0], d1.did);
    ASSERT_STREQ(c.ids[1], d2.did);
    ASSERT_STREQ(c.ids[2], d3.did);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_device_list(s, NULL, false, 1, 1, device_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    ASSERT_STREQ(c.ids[0], d2.did);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_device_list(s, p.product_key, true, 0, 0, device_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    ASSERT_STREQ(c.ids[0], d1.did);
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    ASSERT_EQ(giz_store_device_list(s, NULL, false, 0, 0, device_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);

    ASSERT_EQ(giz_store_device_all_offline(s), GIZ_OK);
    ASSERT_EQ(giz_store_device_count(s, NULL, true, &count), GIZ_OK);
    ASSERT_EQ(count, 0);

    /* Batched presence inside begin/commit, and rollback. */
    ASSERT_EQ(giz_store_begin(s), GIZ_OK);
    ASSERT_EQ(giz_store_begin(s), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_set_online(s, d1.did, true, 2000), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(s, d2.did, true, 2000), GIZ_OK);
    ASSERT_EQ(giz_store_commit(s), GIZ_OK);
    ASSERT_EQ(giz_store_commit(s), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_count(s, NULL, true, &count), GIZ_OK);
    ASSERT_EQ(count, 2);
    ASSERT_EQ(giz_store_begin(s), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(s, d3.did, true, 2000), GIZ_OK);
    ASSERT_EQ(giz_store_rollback(s), GIZ_OK);
    ASSERT_EQ(giz_store_rollback(s), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_device_count(s, NULL, true, &count), GIZ_OK);
    ASSERT_EQ(count, 2);

    /* Unregister: wrong passcode, then right, then again; outbox event. */
    ASSERT_EQ(giz_store_outbox_last_id(s, &last), GIZ_OK);
    ASSERT_EQ(giz_store_device_unregister(s, d1.did, "WRONG"), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_device_unregister(s, "nosuchdidnosuchdid0000", "PASS1"), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_unregister(s, d1.did, "PASS1"), GIZ_OK);
    ASSERT_EQ(giz_store_device_unregister(s, d1.did, "PASS1"), GIZ_ERR_DISABLED);
    ASSERT_EQ(giz_store_device_auth(s, d1.did, "PASS1", &got), GIZ_ERR_DISABLED);
    ASSERT_EQ(giz_store_device_get(s, d1.did, &got), GIZ_OK);
    ASSERT_EQ(got.status, GIZ_DEVICE_DISABLED);
    ASSERT_TRUE(!got.online);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_outbox_fetch(s, last, 0, outbox_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    {
        char want[64];
        snprintf(want, sizeof want, "%d:%s:", GIZ_OUTBOX_DEVICE_DISABLED, d1.did);
        ASSERT_STREQ(c.ids[0], want);
    }
    /* A disabled device no longer counts for re-registration: new DID. */
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "aabbccddeeff", "PASS1", &got, &created),
              GIZ_OK);
    ASSERT_TRUE(created);
    ASSERT_TRUE(strcmp(got.did, d1.did) != 0);
}

struct reenter {
    struct giz_store *s;
    int inner_rc, calls;
};

static int reenter_cb(const struct giz_product *p, void *ud)
{
    struct reenter *r = ud;
    struct giz_product got;
    r->calls++;
    /* Another statement is fine; the same list is refused. */
    if (giz_store_product_get(r->s, p->product_key, &got) != GIZ_OK)
        r->inner_rc = -1000;
    else
        r->inner_rc = giz_store_product_list(r->s, product_cb, NULL);
    return 1;
}

/* Multi-statement operations inside a caller's transaction use a savepoint:
 * a failing one leaves nothing behind and does not end the caller's
 * transaction. */
static void test_nested(struct giz_store *s)
{
    struct giz_product p;
    struct giz_device d, d2;
    struct reenter r;
    bool created;
    int64_t last0 = -1, last1 = -1, count = -1;
    char uid[GIZ_UID_SIZE];

    ASSERT_EQ(giz_store_product_create(s, "nested", &p), GIZ_OK);
    ASSERT_EQ(giz_store_user_create(s, "nested-user", "nested-pw", uid), GIZ_OK);
    ASSERT_EQ(giz_store_outbox_last_id(s, &last0), GIZ_OK);
    ASSERT_EQ(giz_store_begin(s), GIZ_OK);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "0f0e0d0c0b0a", "NESTPASS", &d, &created),
              GIZ_OK);
    ASSERT_TRUE(created);
    /* Unknown user: the savepoint is rolled back, the transaction goes on. */
    ASSERT_EQ(giz_store_binding_add(s, "ffffffffffffffffffffffffffffffff", d.did, "NESTPASS"),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_binding_add(s, uid, d.did, "NESTPASS"), GIZ_OK);
    ASSERT_EQ(giz_store_device_unregister(s, d.did, "NESTPASS"), GIZ_OK);
    ASSERT_EQ(giz_store_commit(s), GIZ_OK);
    {
        struct collect c;
        memset(&c, 0, sizeof c);
        ASSERT_EQ(giz_store_outbox_fetch(s, last0, 0, outbox_cb, &c), GIZ_OK);
        ASSERT_EQ(c.n, 2); /* one binding + one disable event, none from the failed bind */
        ASSERT_EQ(giz_store_outbox_last_id(s, &last1), GIZ_OK);
        ASSERT_EQ(last1, c.nums[1]);
    }
    ASSERT_EQ(giz_store_binding_exists(s, uid, d.did), GIZ_OK);

    /* Rolling the caller's transaction back removes what the operations did. */
    ASSERT_EQ(giz_store_begin(s), GIZ_OK);
    ASSERT_EQ(
        giz_store_device_register(s, p.product_key, "0f0e0d0c0b0b", "NESTPASS", &d2, &created),
        GIZ_OK);
    ASSERT_EQ(giz_store_rollback(s), GIZ_OK);
    ASSERT_EQ(giz_store_device_get(s, d2.did, &d), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_count(s, p.product_key, false, &count), GIZ_OK);
    ASSERT_EQ(count, 1);

    /* Callbacks may use the store, but not re-enter the same list. */
    memset(&r, 0, sizeof r);
    r.s = s;
    ASSERT_EQ(giz_store_product_list(s, reenter_cb, &r), GIZ_OK);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.inner_rc, GIZ_ERR_INVAL);
    /* And the list works again afterwards. */
    {
        struct collect c;
        memset(&c, 0, sizeof c);
        ASSERT_EQ(giz_store_product_list(s, product_cb, &c), GIZ_OK);
        ASSERT_TRUE(c.n > 1);
    }
}

static int binding_cb(const struct giz_binding *b, void *ud)
{
    struct collect *c = ud;
    if (c->n < 16) {
        snprintf(c->ids[c->n], sizeof c->ids[0], "%s/%s", b->uid, b->did);
        c->nums[c->n] = b->online;
    }
    c->n++;
    return 0;
}

static void test_users_bindings(struct giz_store *s)
{
    struct giz_product p;
    struct giz_device d1, d2;
    struct giz_session sess, got;
    struct collect c;
    char uid[GIZ_UID_SIZE], uid2[GIZ_UID_SIZE];
    bool created;
    int64_t last = 0;
    const int64_t now = 1700000000;

    ASSERT_EQ(giz_store_user_create(s, "alice", "secret-pw", uid), GIZ_OK);
    ASSERT_TRUE(is_lowhex(uid, 32));
    ASSERT_EQ(giz_store_user_create(s, "alice", "other", uid2), GIZ_ERR_EXISTS);
    ASSERT_EQ(giz_store_user_create(s, "", "other", uid2), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_user_create(s, "bob'; --", "pw2", uid2), GIZ_OK);
    ASSERT_TRUE(strcmp(uid, uid2) != 0);

    ASSERT_EQ(giz_store_user_login(s, "alice", "wrong", NULL, 3600, now, &sess), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_user_login(s, "nobody", "secret-pw", NULL, 3600, now, &sess), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_user_login(s, "alice", "secret-pw", NULL, 0, now, &sess), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_user_login(s, "alice", "secret-pw", "appid123", 3600, now, &sess), GIZ_OK);
    ASSERT_STREQ(sess.uid, uid);
    ASSERT_TRUE(is_lowhex(sess.token, 32));
    ASSERT_TRUE(strncmp(sess.mqtt_client_id, "usr", 3) == 0);
    ASSERT_TRUE(is_base62(sess.mqtt_client_id + 3, 20));
    ASSERT_STREQ(sess.appid, "appid123");
    ASSERT_EQ(sess.expire_at, now + 3600);

    ASSERT_EQ(giz_store_session_by_token(s, sess.token, now + 10, &got), GIZ_OK);
    ASSERT_STREQ(got.uid, uid);
    ASSERT_STREQ(got.mqtt_client_id, sess.mqtt_client_id);
    ASSERT_STREQ(got.appid, "appid123");
    ASSERT_STREQ(got.token, "");
    ASSERT_EQ(giz_store_session_by_token(s, sess.token, now + 3600, &got), GIZ_ERR_EXPIRED);
    ASSERT_EQ(giz_store_session_by_token(s, "00000000000000000000000000000000", now, &got),
              GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_session_by_token(s, "", now, &got), GIZ_ERR_AUTH);
    /* A second login gets a different token; both valid. */
    {
        struct giz_session s2;
        ASSERT_EQ(giz_store_user_login(s, "alice", "secret-pw", NULL, 60, now, &s2), GIZ_OK);
        ASSERT_TRUE(strcmp(s2.token, sess.token) != 0);
        ASSERT_STREQ(s2.appid, "");
        ASSERT_EQ(giz_store_session_by_token(s, s2.token, now, &got), GIZ_OK);
        ASSERT_EQ(giz_store_session_by_token(s, sess.token, now, &got), GIZ_OK);
    }

    ASSERT_EQ(giz_store_product_create(s, "binder", &p), GIZ_OK);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "001122334455", "BP1", &d1, &created),
              GIZ_OK);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "001122334466", "BP2", &d2, &created),
              GIZ_OK);
    ASSERT_EQ(giz_store_outbox_last_id(s, &last), GIZ_OK);

    ASSERT_EQ(giz_store_binding_add(s, uid, d1.did, "WRONG"), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_store_binding_add(s, uid, "nosuchdidnosuchdid0000", "BP1"), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_binding_add(s, "ffffffffffffffffffffffffffffffff", d1.did, "BP1"),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_binding_exists(s, uid, d1.did), GIZ_ERR_NOT_FOUND);
    /* Failed attempts queued nothing. */
    {
        int64_t l2 = -1;
        ASSERT_EQ(giz_store_outbox_last_id(s, &l2), GIZ_OK);
        ASSERT_EQ(l2, last);
    }
    ASSERT_EQ(giz_store_binding_add(s, uid, d1.did, "BP1"), GIZ_OK);
    ASSERT_EQ(giz_store_binding_add(s, uid, d1.did, "BP1"), GIZ_OK); /* idempotent */
    ASSERT_EQ(giz_store_binding_add(s, uid, d2.did, "BP2"), GIZ_OK);
    ASSERT_EQ(giz_store_binding_add(s, uid2, d1.did, "BP1"), GIZ_OK);
    ASSERT_EQ(giz_store_binding_exists(s, uid, d1.did), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(s, d2.did, true, now), GIZ_OK);

    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_binding_list_by_user(s, uid, binding_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_binding_list_by_device(s, d1.did, binding_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_binding_list_by_device(s, d2.did, binding_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    ASSERT_EQ(c.nums[0], 1); /* online flag joined from devices */

    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_outbox_fetch(s, last, 0, outbox_cb, &c), GIZ_OK);
    ASSERT_TRUE(c.n >= 3);
    {
        char want[80];
        snprintf(want, sizeof want, "%d:%s:%s", GIZ_OUTBOX_BINDING, d1.did, uid);
        ASSERT_STREQ(c.ids[0], want);
    }
    ASSERT_EQ(giz_store_outbox_last_id(s, &last), GIZ_OK);

    ASSERT_EQ(giz_store_binding_remove(s, uid, d1.did), GIZ_OK);
    ASSERT_EQ(giz_store_binding_remove(s, uid, d1.did), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_binding_exists(s, uid, d1.did), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_binding_exists(s, uid2, d1.did), GIZ_OK);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_outbox_fetch(s, last, 0, outbox_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    {
        char want[80];
        snprintf(want, sizeof want, "%d:%s:%s", GIZ_OUTBOX_BINDING, d1.did, uid);
        ASSERT_STREQ(c.ids[0], want);
    }
    /* Disabled device cannot be bound. */
    ASSERT_EQ(giz_store_device_unregister(s, d2.did, "BP2"), GIZ_OK);
    ASSERT_EQ(giz_store_binding_add(s, uid2, d2.did, "BP2"), GIZ_ERR_DISABLED);
}

static int fw_cb(const struct giz_firmware *f, void *ud)
{
    struct collect *c = ud;
    if (c->n < 16) c->nums[c->n] = f->id;
    c->n++;
    return 0;
}

static void test_firmware(struct giz_store *s)
{
    struct giz_product p;
    struct giz_firmware a, b, c2, got;
    struct collect c;

    ASSERT_EQ(giz_store_product_create(s, "fw", &p), GIZ_OK);
    memset(&a, 0, sizeof a);
    memcpy(a.product_key, p.product_key, sizeof a.product_key);
    a.type = 1;
    snprintf(a.soft_version, sizeof a.soft_version, "04020021");
    snprintf(a.url, sizeof a.url, "http://example.invalid/a.bin");
    a.size = -1;
    ASSERT_EQ(giz_store_firmware_insert(s, &a), GIZ_OK);
    ASSERT_TRUE(a.id > 0);
    ASSERT_TRUE(a.created_at > 0);
    b = a;
    snprintf(b.soft_version, sizeof b.soft_version, "04020022");
    snprintf(b.hard_version, sizeof b.hard_version, "HW-A");
    snprintf(b.md5, sizeof b.md5, "d41d8cd98f00b204e9800998ecf8427e");
    snprintf(b.filename, sizeof b.filename, "b'.bin");
    b.size = 1234;
    ASSERT_EQ(giz_store_firmware_insert(s, &b), GIZ_OK);
    ASSERT_TRUE(b.id > a.id);
    c2 = a;
    c2.type = 2;
    snprintf(c2.soft_version, sizeof c2.soft_version, "MCU9");
    ASSERT_EQ(giz_store_firmware_insert(s, &c2), GIZ_OK);

    /* Error paths. */
    got = a;
    got.type = 3;
    ASSERT_EQ(giz_store_firmware_insert(s, &got), GIZ_ERR_INVAL);
    got = a;
    got.soft_version[0] = '\0';
    ASSERT_EQ(giz_store_firmware_insert(s, &got), GIZ_ERR_INVAL);
    got = a;
    memcpy(got.product_key, "ffffffffffffffffffffffffffffffff", 33);
    ASSERT_EQ(giz_store_firmware_insert(s, &got), GIZ_ERR_NOT_FOUND);

    ASSERT_EQ(giz_store_firmware_get(s, b.id, &got), GIZ_OK);
    ASSERT_STREQ(got.hard_version, "HW-A");
    ASSERT_STREQ(got.md5, "d41d8cd98f00b204e9800998ecf8427e");
    ASSERT_STREQ(got.filename, "b'.bin");
    ASSERT_EQ(got.size, 1234);
    ASSERT_EQ(giz_store_firmware_get(s, 999999, &got), GIZ_ERR_NOT_FOUND);

    ASSERT_EQ(giz_store_firmware_latest(s, p.product_key, 1, "HW-A", &got), GIZ_OK);
    ASSERT_EQ(got.id, b.id);
    ASSERT_EQ(giz_store_firmware_latest(s, p.product_key, 1, "HW-B", &got), GIZ_OK);
    ASSERT_EQ(got.id, a.id); /* b is for HW-A only; a applies to all */
    ASSERT_EQ(giz_store_firmware_latest(s, p.product_key, 1, NULL, &got), GIZ_OK);
    ASSERT_EQ(got.id, b.id);
    ASSERT_EQ(giz_store_firmware_latest(s, p.product_key, 2, "HW-A", &got), GIZ_OK);
    ASSERT_EQ(got.id, c2.id);
    ASSERT_STREQ(got.soft_version, "MCU9");
    ASSERT_EQ(giz_store_firmware_latest(s, "ffffffffffffffffffffffffffffffff", 1, NULL, &got),
              GIZ_ERR_NOT_FOUND);

    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_firmware_list(s, p.product_key, fw_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 3);
    ASSERT_EQ(c.nums[0], a.id);
    ASSERT_EQ(c.nums[2], c2.id);
}

static int log_cb(const struct giz_device_log *l, void *ud)
{
    struct collect *c = ud;
    if (c->n < 16) {
        snprintf(c->ids[c->n], sizeof c->ids[0], "%d|%s|%s|%s", l->level, l->tags, l->source,
                 l->content);
        c->nums[c->n] = l->id;
    }
    c->n++;
    return 0;
}

static void test_logs(struct giz_store *s)
{
    const char *did = "LOGDEVICE0000000000001", *other = "LOGDEVICE0000000000002";
    struct collect c;
    char content[32];

    for (int i = 0; i < 10; i++) {
        int n = snprintf(content, sizeof content, "line %d'\"", i);
        /* tags given with a length: trailing garbage must not be stored */
        ASSERT_EQ(giz_store_log_insert(s, did, 1 + i % 3, "tagXXX", 3, "src", 3, content, (size_t)n,
                                       100 + i),
                  GIZ_OK);
    }
    ASSERT_EQ(giz_store_log_insert(s, other, 3, NULL, 0, NULL, 0, "x", 1, 5), GIZ_OK);
    ASSERT_EQ(giz_store_log_insert(s, did, 4, "t", 1, "s", 1, "c", 1, 1), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_log_insert(s, did, 0, "t", 1, "s", 1, "c", 1, 1), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_log_insert(s, did, 1, NULL, 5, "s", 1, "c", 1, 1), GIZ_ERR_INVAL);

    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, did, 3, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 3);
    ASSERT_STREQ(c.ids[0], "1|tag|src|line 9'\"");
    ASSERT_STREQ(c.ids[1], "3|tag|src|line 8'\"");
    ASSERT_TRUE(c.nums[0] > c.nums[1] && c.nums[1] > c.nums[2]);
    {
        int64_t before = c.nums[2];
        memset(&c, 0, sizeof c);
        ASSERT_EQ(giz_store_log_list(s, did, 2, before, log_cb, &c), GIZ_OK);
        ASSERT_EQ(c.n, 2);
        ASSERT_STREQ(c.ids[0], "1|tag|src|line 6'\"");
    }
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, did, 0, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 10);
    ASSERT_EQ(giz_store_log_prune(s, 4), GIZ_OK);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, did, 0, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 4);
    ASSERT_STREQ(c.ids[3], "1|tag|src|line 6'\"");
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, other, 0, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    ASSERT_STREQ(c.ids[0], "3|||x");
    /* Incremental: a device with new records is pruned again, the others are not
     * looked at; a different `keep` looks at every device again. */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(giz_store_log_insert(s, did, 1, "tag", 3, "src", 3, "more", 4, 1000 + i), GIZ_OK);
    ASSERT_EQ(giz_store_log_prune(s, 4), GIZ_OK);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, did, 0, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 4);
    ASSERT_STREQ(c.ids[0], "1|tag|src|more");
    ASSERT_STREQ(c.ids[3], "1|tag|src|line 9'\"");
    ASSERT_EQ(giz_store_log_prune(s, 4), GIZ_OK); /* nothing new: no work, nothing lost */
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, did, 0, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 4);
    ASSERT_EQ(giz_store_log_prune(s, 0), GIZ_OK);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, other, 0, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 0);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_log_list(s, did, 0, 0, log_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 0);
}

static int copy_cb(const struct giz_outbox_item *it, void *ud)
{
    *(struct giz_outbox_item *)ud = *it;
    return 0;
}

static void test_outbox(struct giz_store *s)
{
    struct giz_outbox_item it;
    struct collect c;
    int64_t base = 0, id1 = 0, id2 = 0, id3 = 0, last = 0;

    ASSERT_EQ(giz_store_outbox_last_id(s, &base), GIZ_OK);
    memset(&it, 0, sizeof it);
    it.kind = GIZ_OUTBOX_OTA_PUSH;
    snprintf(it.did, sizeof it.did, "OTADEVICE0000000000001");
    it.fw_type = 1;
    it.ota_version = 40;
    it.fid = 7;
    snprintf(it.url, sizeof it.url, "http://127.0.0.1/fw/7");
    ASSERT_EQ(giz_store_outbox_push(s, &it, &id1), GIZ_OK);
    memset(&it, 0, sizeof it);
    it.kind = GIZ_OUTBOX_OTA_PUSH;
    snprintf(it.product_key, sizeof it.product_key, "0123456789abcdef0123456789abcdef");
    it.fw_type = 2;
    it.ota_version = 41;
    ASSERT_EQ(giz_store_outbox_push(s, &it, &id2), GIZ_OK);
    ASSERT_EQ(giz_store_outbox_push(s, &it, NULL), GIZ_OK);
    ASSERT_EQ(giz_store_outbox_push(s, &it, &id3), GIZ_OK);
    ASSERT_TRUE(id1 > base && id2 > id1 && id3 > id2 + 1);
    it.kind = 9;
    ASSERT_EQ(giz_store_outbox_push(s, &it, NULL), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_outbox_last_id(s, &last), GIZ_OK);
    ASSERT_EQ(last, id3);

    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_outbox_fetch(s, base, 2, outbox_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);
    ASSERT_EQ(c.nums[0], id1);
    ASSERT_EQ(c.nums[1], id2);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_outbox_fetch(s, id2, 0, outbox_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);
    ASSERT_EQ(c.nums[1], id3);
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    ASSERT_EQ(giz_store_outbox_fetch(s, base, 0, outbox_cb, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);

    /* Full field round trip of the first item. */
    {
        struct giz_outbox_item seen;
        memset(&seen, 0, sizeof seen);
        ASSERT_EQ(giz_store_outbox_fetch(s, base, 1, copy_cb, &seen), GIZ_OK);
        ASSERT_EQ(seen.id, id1);
        ASSERT_EQ(seen.kind, GIZ_OUTBOX_OTA_PUSH);
        ASSERT_STREQ(seen.did, "OTADEVICE0000000000001");
        ASSERT_STREQ(seen.product_key, "");
        ASSERT_EQ(seen.fw_type, 1);
        ASSERT_EQ(seen.ota_version, 40);
        ASSERT_EQ(seen.fid, 7);
        ASSERT_STREQ(seen.url, "http://127.0.0.1/fw/7");
        ASSERT_TRUE(seen.created_at > 0);
    }
    /* Prune: everything is older than now + 10. */
    ASSERT_EQ(giz_store_outbox_prune(s, (int64_t)time(NULL) - 3600), GIZ_OK);
    ASSERT_EQ(giz_store_outbox_last_id(s, &last), GIZ_OK);
    ASSERT_EQ(last, id3);
    ASSERT_EQ(giz_store_outbox_prune(s, (int64_t)time(NULL) + 10), GIZ_OK);
    ASSERT_EQ(giz_store_outbox_last_id(s, &last), GIZ_OK);
    ASSERT_EQ(last, 0);
}

/* Reads the whole file and its WAL and looks for needle. */
static bool file_contains(const char *path, const char *needle)
{
    bool found = false;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t cap = 1 << 20, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    size_t nl = strlen(needle);
    for (size_t i = 0; buf && i + nl <= len && !found; i++)
        if (memcmp(buf + i, needle, nl) == 0) found = true;
    free(buf);
    return found;
}

/* Broker liveness row (schema 005): start, heartbeat, age, clean stop, a
 * second broker taking over, and what a reader on another connection sees. */
static void test_broker(struct giz_store *s)
{
    struct giz_store *r = open_ok(dbpath);
    struct giz_broker_status b;
    struct timespec ts;
    bool alive = true;
    int64_t now;

    ASSERT_TRUE(r != NULL);
    if (!r) return;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    /* Never started: not alive, no row. */
    ASSERT_EQ(giz_store_broker_alive(r, 15000, &alive), GIZ_OK);
    ASSERT_TRUE(!alive);
    ASSERT_EQ(giz_store_broker_get(r, &b), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_broker_heartbeat(s, 4242, now), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_broker_alive(NULL, 15000, &alive), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_broker_alive(r, -1, &alive), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_broker_start(s, 0, now), GIZ_ERR_INVAL);

    /* Started 20 s ago and silent since: dead for a 15 s limit, alive for 30 s. */
    ASSERT_EQ(giz_store_broker_start(s, 4242, now - 20000), GIZ_OK);
    ASSERT_EQ(giz_store_broker_alive(r, 15000, &alive), GIZ_OK);
    ASSERT_TRUE(!alive);
    ASSERT_EQ(giz_store_broker_alive(r, 30000, &alive), GIZ_OK);
    ASSERT_TRUE(alive);
    /* A heartbeat inside the plugin's batch transaction makes it fresh. */
    ASSERT_EQ(giz_store_begin(s), GIZ_OK);
    ASSERT_EQ(giz_store_broker_heartbeat(s, 4242, now), GIZ_OK);
    ASSERT_EQ(giz_store_commit(s), GIZ_OK);
    ASSERT_EQ(giz_store_broker_alive(r, 15000, &alive), GIZ_OK);
    ASSERT_TRUE(alive);
    ASSERT_EQ(giz_store_broker_get(r, &b), GIZ_OK);
    ASSERT_EQ(b.pid, 4242);
    ASSERT_EQ(b.started_at_ms, now - 20000);
    ASSERT_EQ(b.heartbeat_at_ms, now);
    ASSERT_TRUE(!b.stopped);
    ASSERT_EQ(b.stopped_at_ms, 0);
    /* now_ms <= 0 means the store's own clock. */
    ASSERT_EQ(giz_store_broker_heartbeat(s, 4242, 0), GIZ_OK);
    ASSERT_EQ(giz_store_broker_get(r, &b), GIZ_OK);
    ASSERT_TRUE(b.heartbeat_at_ms >= now && b.heartbeat_at_ms < now + 60000);
    /* Another pid's heartbeat does not count: that broker must start first. */
    ASSERT_EQ(giz_store_broker_heartbeat(s, 777, now), GIZ_ERR_NOT_FOUND);
    /* Clean stop: not alive however fresh; a stopped broker's beat is refused. */
    ASSERT_EQ(giz_store_broker_stop(s, 4242, now + 1), GIZ_OK);
    ASSERT_EQ(giz_store_broker_alive(r, 15000, &alive), GIZ_OK);
    ASSERT_TRUE(!alive);
    ASSERT_EQ(giz_store_broker_get(r, &b), GIZ_OK);
    ASSERT_TRUE(b.stopped);
    ASSERT_EQ(b.stopped_at_ms, now + 1);
    ASSERT_EQ(giz_store_broker_heartbeat(s, 4242, now + 2), GIZ_ERR_NOT_FOUND);
    /* The next broker (new pid) replaces the row and is alive. */
    ASSERT_EQ(giz_store_broker_start(s, 5151, now + 3), GIZ_OK);
    ASSERT_EQ(giz_store_broker_alive(r, 15000, &alive), GIZ_OK);
    ASSERT_TRUE(alive);
    ASSERT_EQ(giz_store_broker_get(r, &b), GIZ_OK);
    ASSERT_EQ(b.pid, 5151);
    ASSERT_TRUE(!b.stopped);
    ASSERT_EQ(b.started_at_ms, now + 3);
    ASSERT_EQ(giz_store_broker_stop(s, 4242, now + 4), GIZ_ERR_NOT_FOUND); /* not its row now */
    /* A heartbeat from the future (the reader's clock is behind) counts as fresh. */
    ASSERT_EQ(giz_store_broker_heartbeat(s, 5151, now + 600000), GIZ_OK);
    ASSERT_EQ(giz_store_broker_alive(r, 15000, &alive), GIZ_OK);
    ASSERT_TRUE(alive);
    ASSERT_EQ(giz_store_broker_alive(r, 0, &alive), GIZ_OK);
    ASSERT_TRUE(alive);
    ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM brokers"), 1); /* one named row (schema 012) */
    giz_store_close(r);
}

TEST_CASE(no_clear_secrets)
{
    char path[320], wal[340];
    struct giz_store *s;
    struct giz_product p;
    struct giz_device d;
    struct giz_session sess;
    char uid[GIZ_UID_SIZE];
    bool created;

    if (pg_uri) {
        PG_SKIP("no_clear_secrets (greps SQLite's database and WAL files)");
        ASSERT_TRUE(1);
        return;
    }
    snprintf(path, sizeof path, "%s/secrets.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    s = open_ok(path);
    if (!s) return;
    ASSERT_EQ(giz_store_product_create(s, "sec", &p), GIZ_OK);
    ASSERT_EQ(
        giz_store_device_register(s, p.product_key, "a1b2c3d4e5f6", "Zq7PasscodeX9", &d, &created),
        GIZ_OK);
    ASSERT_EQ(giz_store_user_create(s, "carol", "Hunter2Password", uid), GIZ_OK);
    ASSERT_EQ(giz_store_user_login(s, "carol", "Hunter2Password", NULL, 60, 1, &sess), GIZ_OK);
    /* Checkpoint so everything is in the main file too. */
    giz_store_close(s);
    ASSERT_TRUE(file_contains(path, p.product_key)); /* sanity: the grep works */
    ASSERT_TRUE(file_contains(path, "pbkdf2-sha256$"));
    ASSERT_TRUE(!file_contains(path, "Zq7PasscodeX9"));
    ASSERT_TRUE(!file_contains(path, "Hunter2Password"));
    ASSERT_TRUE(!file_contains(path, sess.token));
    ASSERT_TRUE(!file_contains(wal, "Zq7PasscodeX9"));
    ASSERT_TRUE(!file_contains(wal, sess.token));
}

TEST_CASE(two_connections)
{
    char path[320];
    struct giz_store *a, *b;
    struct giz_product p, got;
    struct giz_device d, dg;
    bool created;
    int64_t count = -1, last = -1;

    db_path(path, sizeof path, "shared");
    a = open_ok(path);
    b = open_ok(path);
    if (!a || !b) goto cleanup;
    ASSERT_EQ(giz_store_product_create(a, "shared", &p), GIZ_OK);
    ASSERT_EQ(giz_store_product_get(b, p.product_key, &got), GIZ_OK);
    ASSERT_STREQ(got.product_secret, p.product_secret);
    ASSERT_EQ(giz_store_device_register(a, p.product_key, "0a0b0c0d0e0f", "SHARED1", &d, &created),
              GIZ_OK);
    ASSERT_EQ(giz_store_device_auth(b, d.did, "SHARED1", &dg), GIZ_OK);
    /* b writes inside an explicit transaction; a sees it only after commit. */
    ASSERT_EQ(giz_store_begin(b), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(b, d.did, true, 42), GIZ_OK);
    ASSERT_EQ(giz_store_device_count(a, NULL, true, &count), GIZ_OK);
    ASSERT_EQ(count, 0);
    ASSERT_EQ(giz_store_commit(b), GIZ_OK);
    ASSERT_EQ(giz_store_device_count(a, NULL, true, &count), GIZ_OK);
    ASSERT_EQ(count, 1);
    /* Outbox written by a is drained by b. */
    ASSERT_EQ(giz_store_device_unregister(a, d.did, "SHARED1"), GIZ_OK);
    ASSERT_EQ(giz_store_outbox_last_id(b, &last), GIZ_OK);
    ASSERT_TRUE(last > 0);
    ASSERT_EQ(giz_store_device_auth(b, d.did, "SHARED1", &dg), GIZ_ERR_DISABLED);
    /* Both share one token key: a session made by a is found by b. */
    {
        char uid[GIZ_UID_SIZE];
        struct giz_session sess, sg;
        ASSERT_EQ(giz_store_user_create(a, "dave", "pw-dave", uid), GIZ_OK);
        ASSERT_EQ(giz_store_user_login(a, "dave", "pw-dave", NULL, 60, 100, &sess), GIZ_OK);
        ASSERT_EQ(giz_store_session_by_token(b, sess.token, 100, &sg), GIZ_OK);
        ASSERT_STREQ(sg.uid, uid);
    }
    /* Backup while both are open (PostgreSQL: refused, pg_dump's job). */
    if (pg_uri) {
        char bpath[340];
        snprintf(bpath, sizeof bpath, "%s/backup.db", dir);
        ASSERT_EQ(giz_store_backup(a, bpath), GIZ_ERR_INVAL);
        ASSERT_TRUE(strstr(giz_store_errmsg(a), "pg_dump") != NULL);
    } else {
        char bpath[340];
        struct giz_store *c;
        snprintf(bpath, sizeof bpath, "%s/backup.db", dir);
        ASSERT_EQ(giz_store_backup(a, bpath), GIZ_OK);
        c = open_ok(bpath);
        if (c) {
            ASSERT_EQ(giz_store_product_get(c, p.product_key, &got), GIZ_OK);
            giz_store_close(c);
        }
    }
cleanup:
    giz_store_close(a);
    giz_store_close(b);
}

/* Two processes open one new file at the same moment (racing to apply the
 * migration), then write concurrently: the child flips presence in batched
 * transactions and pushes outbox items while the parent registers devices.
 * Neither may see a busy/locked error; all writes must land. */
TEST_CASE(two_processes)
{
    enum { NDEV = 60, NBATCH = 30, PER_BATCH = 20 };
    char path[320];
    struct giz_store *s;
    struct giz_product p;
    struct giz_device d;
    bool created;
    int status = -1, ok = 0;
    int64_t count = -1, last = -1;
    pid_t pid;

    if (pg_uri) {
        PG_SKIP("two_processes (two processes on one SQLite file; open_race covers PostgreSQL)");
        ASSERT_TRUE(1);
        return;
    }
    snprintf(path, sizeof path, "%s/procs.db", dir);
    fflush(stderr);
    pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        /* Child: open (maybe applying the migration), then write batches. */
        struct giz_store *c = NULL;
        struct giz_error err;
        struct giz_outbox_item it;
        int fails = 0;
        if (giz_store_open(path, &c, &err) != GIZ_OK) _exit(2);
        memset(&it, 0, sizeof it);
        it.kind = GIZ_OUTBOX_OTA_PUSH;
        for (int b = 0; b < NBATCH; b++) {
            if (giz_store_begin(c) != GIZ_OK) {
                fails++;
                continue;
            }
            for (int i = 0; i < PER_BATCH; i++) {
                /* Unknown DIDs: the UPDATE still takes the write lock. */
                if (giz_store_device_set_online(c, "nosuchdidnosuchdid0000", true, i) !=
                    GIZ_ERR_NOT_FOUND)
                    fails++;
            }
            if (giz_store_outbox_push(c, &it, NULL) != GIZ_OK) fails++;
            if (giz_store_commit(c) != GIZ_OK) fails++;
            if (giz_store_device_all_offline(c) != GIZ_OK) fails++;
        }
        giz_store_close(c);
        _exit(fails ? 1 : 0);
    }
    s = open_ok(path);
    if (s) {
        ASSERT_EQ(giz_store_product_create(s, "procs", &p), GIZ_OK);
        for (int i = 0; i < NDEV; i++) {
            char mac[13];
            snprintf(mac, sizeof mac, "%012X", 0xC0000000u + (unsigned)i);
            ok += giz_store_device_register(s, p.product_key, mac, "PROCPASS", &d, &created) ==
                  GIZ_OK;
        }
        ASSERT_EQ(ok, NDEV);
    }
    if (pid > 0) {
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    if (s) {
        ASSERT_EQ(giz_store_device_count(s, p.product_key, false, &count), GIZ_OK);
        ASSERT_EQ(count, NDEV);
        ASSERT_EQ(giz_store_outbox_last_id(s, &last), GIZ_OK);
        ASSERT_EQ(last, NBATCH);
        giz_store_close(s);
    }
    ASSERT_EQ(raw_int(path, "SELECT count(*) FROM schema_version"), MIGRATIONS);
}

/* Several processes released at the same instant open one brand-new file:
 * exactly one converts it to WAL and applies the migrations, the others
 * wait; none may fail (SQLite answers the WAL conversion race with an
 * immediate SQLITE_BUSY that the store must retry). */
TEST_CASE(open_race)
{
    enum { ROUNDS = 15, NPROC = 5, PRODUCTS = 5 };
    int bad = 0;

    for (int r = 0; r < ROUNDS; r++) {
        char path[320];
        int gate[2];
        pid_t pids[NPROC];

        {
            char name[16];
            snprintf(name, sizeof name, "race%d", r);
            db_path(path, sizeof path, name);
        }
        if (pipe(gate) != 0) {
            ASSERT_TRUE(0);
            return;
        }
        fflush(stderr);
        for (int i = 0; i < NPROC; i++) {
            pids[i] = fork();
            if (pids[i] == 0) {
                struct giz_store *c = NULL;
                struct giz_error err;
                struct giz_product p;
                char b;
                close(gate[1]);
                if (read(gate[0], &b, 1) < 0) _exit(3); /* EOF = go */
                if (giz_store_open(path, &c, &err) != GIZ_OK) {
                    fprintf(stderr, "race child: %s\n", err.text);
                    _exit(1);
                }
                for (int k = 0; k < PRODUCTS; k++)
                    if (giz_store_product_create(c, "race", &p) != GIZ_OK) _exit(2);
                giz_store_close(c);
                _exit(0);
            }
        }
        close(gate[0]);
        close(gate[1]); /* releases every child at once */
        for (int i = 0; i < NPROC; i++) {
            int status = -1;
            if (pids[i] < 0 || waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0)
                bad++;
        }
        if (raw_int(path, "SELECT count(*) FROM products") != NPROC * PRODUCTS) bad++;
        if (raw_int(path, "SELECT count(*) FROM schema_version") !=
            (pg_uri ? (long long)giz__schema_pg_migration_count : MIGRATIONS))
            bad++;
    }
    ASSERT_EQ(bad, 0);
}

struct log_capture {
    int lines;
    char last[512];
};

static void capture_sink(enum giz_log_lvl lvl, const char *line, void *ud)
{
    struct log_capture *lc = ud;
    (void)lvl;
    lc->lines++;
    snprintf(lc->last, sizeof lc->last, "%s", line);
}

/* A real SQLite failure (table dropped behind the store's back) comes back
 * as GIZ_ERR_DB with SQLite's own words in the log and in errmsg. */
TEST_CASE(db_error_reporting)
{
    char path[320];
    struct giz_store *s;
    struct log_capture lc;

    db_path(path, sizeof path, "errors");
    s = open_ok(path);
    if (!s) return;
    ASSERT_STREQ(giz_store_errmsg(s), "");
    ASSERT_EQ(raw_exec(path, "DROP TABLE device_logs"), SQLITE_OK);
    memset(&lc, 0, sizeof lc);
    giz_log_set_sink(capture_sink, &lc);
    ASSERT_EQ(giz_store_log_insert(s, "ERRDEVICE0000000000001", 1, "t", 1, "s", 1, "c", 1, 1),
              GIZ_ERR_DB);
    giz_log_set_sink(NULL, NULL);
    /* PostgreSQL: relation "device_logs" does not exist */
    const char *missing = pg_uri ? "\"device_logs\" does not exist" : "no such table: device_logs";
    ASSERT_TRUE(strstr(giz_store_errmsg(s), missing) != NULL);
    ASSERT_TRUE(strstr(giz_store_errmsg(s), "inserting device log") != NULL);
    ASSERT_EQ(lc.lines, 1);
    ASSERT_TRUE(strstr(lc.last, missing) != NULL);
    ASSERT_TRUE(strstr(lc.last, "SQL logic error") != NULL || strstr(lc.last, "error") != NULL);
    fprintf(stderr, "logged: %s\n", lc.last);
    /* The connection stays usable for everything else. */
    {
        struct giz_product p;
        ASSERT_EQ(giz_store_product_create(s, "after error", &p), GIZ_OK);
    }
    giz_store_close(s);
}

static void rm_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- keyed passcode verifier (appended by helper "auth") ------------------
 * Registered with a key: the row carries the verifier and logins use it
 * (the PBKDF2 hash is not even needed, shown by corrupting it); a legacy
 * row is refused unchecked when PBKDF2 is not allowed, verified and
 * upgraded when it is; a row under another key falls back and is rewritten. */
static char *raw_text(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (pg_uri) {
        PGconn *c;
        PGresult *r = pg_raw(path, sql, &c);
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        return out;
    }
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0) != NULL)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

TEST_CASE(passcode_verifier)
{
    char path[320], keypath[340], why[512], sql[512], text[256], first[256];
    struct giz_store *plain, *keyed, *other;
    struct giz_product p;
    struct giz_device d, legacy, got;
    bool created = false, slow = true;
    struct stat st;

    db_path(path, sizeof path, "pcmac");
    plain = open_ok(path);
    keyed = open_ok(path);
    if (!plain || !keyed) goto cleanup;
    if (pg_uri) { /* no folder beside the database: the key file must be named */
        ASSERT_EQ(giz_store_passcode_key_default(path, keypath, sizeof keypath), GIZ_ERR_INVAL);
        ASSERT_EQ(giz_store_passcode_key_load(keyed, NULL, why, sizeof why), GIZ_ERR_INVAL);
        ASSERT_TRUE(strstr(why, "PostgreSQL") != NULL);
        fprintf(stderr, "no key file named: %s\n", why);
        snprintf(keypath, sizeof keypath, "%s/passcode.key", dir);
        ASSERT_EQ(giz_store_passcode_key_load(keyed, keypath, why, sizeof why), GIZ_OK);
    } else {
        ASSERT_EQ(giz_store_passcode_key_default(path, keypath, sizeof keypath), GIZ_OK);
        ASSERT_TRUE(strstr(keypath, "/passcode.key") != NULL);
        ASSERT_EQ(giz_store_passcode_key_default(":memory:", text, sizeof text), GIZ_ERR_INVAL);
        ASSERT_EQ(giz_store_passcode_key_default("x.db", text, sizeof text), GIZ_OK);
        ASSERT_STREQ(text, "passcode.key");
        ASSERT_EQ(giz_store_passcode_key_load(keyed, NULL, why, sizeof why), GIZ_OK);
    }
    ASSERT_EQ(stat(keypath, &st), 0);
    ASSERT_EQ((int)(st.st_mode & 0077), 0);
    ASSERT_EQ(giz_store_product_create(plain, "pcmac", &p), GIZ_OK);

    /* Registered through the keyed connection: verifier written. */
    ASSERT_EQ(
        giz_store_device_register(keyed, p.product_key, "a1a2a3a4a5a6", "0aeb9953f9", &d, &created),
        GIZ_OK);
    snprintf(sql, sizeof sql, "SELECT passcode_mac FROM devices WHERE did = '%s'", d.did);
    ASSERT_TRUE(strncmp(raw_text(path, sql, text, sizeof text), "hmac-sha256$", 12) == 0);
    /* Only the verifier decides now: break the PBKDF2 hash. */
    snprintf(sql, sizeof sql,
             "UPDATE devices SET passcode_hash = 'pbkdf2-sha256$1000$00$00' "
             "WHERE did = '%s'",
             d.did);
    ASSERT_EQ(raw_exec(path, sql), SQLITE_OK);
    ASSERT_EQ(giz_store_device_auth_budget(keyed, d.did, "0aeb9953f9", false, &got, &slow), GIZ_OK);
    ASSERT_TRUE(!slow);
    ASSERT_STREQ(got.did, d.did);
    ASSERT_EQ(giz_store_device_auth_budget(keyed, d.did, "0aeb9953f8", true, &got, &slow),
              GIZ_ERR_AUTH);
    ASSERT_TRUE(!slow); /* a miss is final: no PBKDF2 */
    ASSERT_EQ(giz_store_device_auth(keyed, d.did, "0aeb9953f9", &got), GIZ_OK);
    /* Re-registration (same MAC and passcode) matches through the verifier too. */
    ASSERT_EQ(giz_store_device_register(keyed, p.product_key, "a1a2a3a4a5a6", "0aeb9953f9", &got,
                                        &created),
              GIZ_OK);
    ASSERT_TRUE(!created);
    ASSERT_STREQ(got.did, d.did);
    /* The connection without the key knows only PBKDF2 (now broken). */
    ASSERT_EQ(giz_store_device_auth(plain, d.did, "0aeb9953f9", &got), GIZ_ERR_AUTH);

    /* Legacy row (registered without the key, hash replaced by a fresh one
     * so that no verified-cache entry vouches for it). */
    ASSERT_EQ(giz_store_device_register(plain, p.product_key, "b1b2b3b4b5b6", "LEGACY0001", &legacy,
                                        &created),
              GIZ_OK);
    {
        char hash[GIZ_HASH_STR_MAX];
        ASSERT_EQ(giz_secret_hash("LEGACY0001", GIZ_PASSCODE_ITERATIONS, hash, sizeof hash),
                  GIZ_OK);
        snprintf(sql, sizeof sql, "UPDATE devices SET passcode_hash = '%s' WHERE did = '%s'", hash,
                 legacy.did);
        ASSERT_EQ(raw_exec(path, sql), SQLITE_OK);
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM devices WHERE did = '%s' AND "
             "passcode_mac IS NULL",
             legacy.did);
    ASSERT_EQ(raw_int(path, sql), 1);
    /* PBKDF2 not allowed: refused unchecked, nothing written. */
    ASSERT_EQ(giz_store_device_auth_budget(keyed, legacy.did, "LEGACY0001", false, &got, &slow),
              GIZ_ERR_AUTH);
    ASSERT_TRUE(slow);
    ASSERT_EQ(raw_int(path, sql), 1);
    /* A wrong passcode through PBKDF2 writes nothing either. */
    ASSERT_EQ(giz_store_device_auth_budget(keyed, legacy.did, "LEGACY0002", true, &got, &slow),
              GIZ_ERR_AUTH);
    ASSERT_TRUE(slow);
    ASSERT_EQ(raw_int(path, sql), 1);
    /* Allowed: verified by PBKDF2 and upgraded; the next check is fast. */
    ASSERT_EQ(giz_store_device_auth_budget(keyed, legacy.did, "LEGACY0001", true, &got, &slow),
              GIZ_OK);
    ASSERT_TRUE(slow);
    ASSERT_EQ(raw_int(path, sql), 0);
    snprintf(sql, sizeof sql, "SELECT passcode_mac FROM devices WHERE did = '%s'", legacy.did);
    raw_text(path, sql, first, sizeof first);
    ASSERT_TRUE(strncmp(first, "hmac-sha256$", 12) == 0);
    ASSERT_EQ(giz_store_device_auth_budget(keyed, legacy.did, "LEGACY0001", false, &got, &slow),
              GIZ_OK);
    ASSERT_TRUE(!slow);

    /* Rotation: another key file. Rows under the old id fall back to
     * PBKDF2 and are rewritten under the new one. */
    snprintf(keypath, sizeof keypath, "%s/rotated.key", dir);
    {
        char hash[GIZ_HASH_STR_MAX], q[512];
        ASSERT_EQ(giz_secret_hash("LEGACY0001", GIZ_PASSCODE_ITERATIONS, hash, sizeof hash),
                  GIZ_OK); /* out of the verified cache again */
        snprintf(q, sizeof q, "UPDATE devices SET passcode_hash = '%s' WHERE did = '%s'", hash,
                 legacy.did);
        ASSERT_EQ(raw_exec(path, q), SQLITE_OK);
    }
    other = open_ok(path);
    if (other) {
        ASSERT_EQ(giz_store_passcode_key_load(other, keypath, why, sizeof why), GIZ_OK);
        ASSERT_EQ(giz_store_device_auth_budget(other, legacy.did, "LEGACY0001", false, &got, &slow),
                  GIZ_ERR_AUTH);
        ASSERT_TRUE(slow);
        ASSERT_EQ(giz_store_device_auth_budget(other, legacy.did, "LEGACY0001", true, &got, &slow),
                  GIZ_OK);
        ASSERT_TRUE(slow);
        raw_text(path, sql, text, sizeof text);
        ASSERT_TRUE(strncmp(text, "hmac-sha256$", 12) == 0 && strcmp(text, first) != 0);
        ASSERT_EQ(giz_store_device_auth_budget(other, legacy.did, "LEGACY0001", false, &got, &slow),
                  GIZ_OK);
        ASSERT_TRUE(!slow);
        /* A world-readable key file is refused with the reason. */
        ASSERT_EQ(chmod(keypath, 0604), 0);
        ASSERT_EQ(giz_store_passcode_key_load(other, keypath, why, sizeof why), GIZ_ERR_INVAL);
        ASSERT_TRUE(strstr(why, "0604") != NULL);
        giz_store_close(other);
    }
    /* A key set from memory works like a loaded one; NULL stops using it. */
    other = open_ok(path);
    if (other) {
        struct giz_passcode_key k;
        ASSERT_EQ(giz_passcode_key_load(keypath, false, &k, why, sizeof why), GIZ_ERR_INVAL);
        ASSERT_EQ(chmod(keypath, 0600), 0);
        ASSERT_EQ(giz_passcode_key_load(keypath, false, &k, why, sizeof why), GIZ_OK);
        ASSERT_EQ(giz_store_set_passcode_key(other, &k), GIZ_OK);
        ASSERT_EQ(giz_store_device_auth_budget(other, legacy.did, "LEGACY0001", false, &got, &slow),
                  GIZ_OK);
        ASSERT_TRUE(!slow);
        ASSERT_EQ(giz_store_set_passcode_key(other, NULL), GIZ_OK);
        ASSERT_EQ(giz_store_device_auth_budget(other, legacy.did, "LEGACY0001", false, &got, &slow),
                  GIZ_OK); /* verified cache of this process */
        giz_store_close(other);
    }
    /* Disabled devices stay refused through the fast path. */
    ASSERT_EQ(giz_store_device_unregister(keyed, d.did, "0aeb9953f9"), GIZ_OK);
    ASSERT_EQ(giz_store_device_auth_budget(keyed, d.did, "0aeb9953f9", true, &got, &slow),
              GIZ_ERR_DISABLED);
    /* No passcode in clear anywhere in the file. */
    {
        char wal[340];
        snprintf(wal, sizeof wal, "%s-wal", path);
        ASSERT_TRUE(!file_contains(path, "LEGACY0001") && !file_contains(wal, "LEGACY0001"));
        ASSERT_TRUE(!file_contains(path, "0aeb9953f9") && !file_contains(wal, "0aeb9953f9"));
    }
cleanup:
    giz_store_close(plain);
    giz_store_close(keyed);
}

/* The verified-passcode cache object on its own: TTL 0 never answers, a
 * hit needs the same DID and passcode (and the same stored hash when one is
 * given), forget drops the entry, a full cache takes no new DID. */
TEST_CASE(pcache)
{
    struct giz_pcache *c = giz_pcache_new(600, 2), *off = giz_pcache_new(0, 10);
    char pk[GIZ_PK_SIZE] = "";
    const char *d1 = "AAAAAAAAAAAAAAAAAAAAA1", *d2 = "AAAAAAAAAAAAAAAAAAAAA2";
    const char *d3 = "AAAAAAAAAAAAAAAAAAAAA3";

    ASSERT_TRUE(c != NULL && off != NULL);
    if (!c || !off) goto cleanup;
    ASSERT_TRUE(!giz_pcache_check(NULL, d1, "pass", NULL, false, pk));
    giz_pcache_put(off, d1, "pass", "pk1", NULL);
    ASSERT_TRUE(!giz_pcache_check(off, d1, "pass", NULL, true, pk));
    ASSERT_EQ(giz_pcache_count(off), 0);

    ASSERT_TRUE(!giz_pcache_check(c, d1, "pass", NULL, false, pk));
    giz_pcache_put(c, d1, "pass", "0123456789abcdef0123456789abcdef", "hash-a");
    ASSERT_TRUE(giz_pcache_check(c, d1, "pass", NULL, false, pk));
    ASSERT_STREQ(pk, "0123456789abcdef0123456789abcdef");
    ASSERT_TRUE(giz_pcache_check(c, d1, "pass", "hash-a", false, NULL));
    ASSERT_TRUE(!giz_pcache_check(c, d1, "pass", "hash-b", false, NULL));
    ASSERT_TRUE(!giz_pcache_check(c, d1, "wrong", NULL, false, NULL));
    ASSERT_TRUE(!giz_pcache_check(c, d2, "pass", NULL, false, NULL));
    /* put without a hash: answers only hash-less checks */
    giz_pcache_put(c, d2, "pass2", NULL, NULL);
    ASSERT_TRUE(giz_pcache_check(c, d2, "pass2", NULL, false, pk));
    ASSERT_STREQ(pk, "");
    ASSERT_TRUE(!giz_pcache_check(c, d2, "pass2", "hash-a", false, NULL));
    giz_pcache_put(c, d1, "pass", NULL, NULL); /* same passcode: the hash tag stays */
    ASSERT_TRUE(giz_pcache_check(c, d1, "pass", "hash-a", false, NULL));
    ASSERT_EQ(giz_pcache_count(c), 2);
    giz_pcache_put(c, d3, "pass3", NULL, NULL); /* full, nothing expired */
    ASSERT_TRUE(!giz_pcache_check(c, d3, "pass3", NULL, true, NULL));
    ASSERT_EQ(giz_pcache_count(c), 2);
    giz_pcache_forget(c, d1);
    ASSERT_TRUE(!giz_pcache_check(c, d1, "pass", NULL, true, NULL));
    ASSERT_EQ(giz_pcache_count(c), 1);
    giz_pcache_put(c, d3, "pass3", NULL, NULL);
    ASSERT_TRUE(giz_pcache_check(c, d3, "pass3", NULL, false, NULL));
    giz_pcache_forget(c, "not-in-the-cache");
    ASSERT_EQ(giz_pcache_count(c), 2);
cleanup:
    giz_pcache_free(c);
    giz_pcache_free(off);
}

/* Products, devices, users and bindings, firmware, logs, outbox, nested
 * transactions and the broker heartbeat, in this order on one store (later
 * steps use what earlier ones created), then an integrity check. */
TEST_CASE(operations)
{
    struct giz_store *s = open_ok(dbpath);
    if (s) {
        test_products(s);
        test_devices(s);
        test_users_bindings(s);
        test_firmware(s);
        test_logs(s);
        test_outbox(s);
        test_nested(s);
        test_broker(s);
        giz_store_close(s);
        if (pg_uri)
            PG_SKIP("integrity_check (SQLite's file check)");
        else
            ASSERT_EQ(raw_int(dbpath, "SELECT count(*) FROM pragma_integrity_check "
                                      "WHERE integrity_check = 'ok'"),
                      1);
    }
}

/* PostgreSQL: the server ends the session (pg_terminate_backend, as a
 * server restart or a failover would). The statement running then fails
 * with an error carrying libpq's message; the next one outside a transaction
 * reconnects, prepares its statement again and works, writes included. */
TEST_CASE(pg_reconnect)
{
    char path[600];
    struct giz_store *s;
    struct giz_product p, got;
    int rc;

    if (!pg_uri) {
        fprintf(stderr, "SKIP on SQLite: pg_reconnect (a PostgreSQL connection)\n");
        ASSERT_TRUE(1);
        return;
    }
    db_path(path, sizeof path, "reconnect");
    s = open_ok(path);
    if (!s) return;
    ASSERT_EQ(giz_store_product_create(s, "before", &p), GIZ_OK);
    ASSERT_EQ(raw_exec(path, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                             "datname = current_database() AND pid <> pg_backend_pid()"),
              SQLITE_OK);
    rc = giz_store_product_get(s, p.product_key, &got);
    ASSERT_EQ(rc, GIZ_ERR_DB);
    fprintf(stderr, "after the session ended: %s\n", giz_store_errmsg(s));
    ASSERT_TRUE(strstr(giz_store_errmsg(s), "terminat") != NULL ||
                strstr(giz_store_errmsg(s), "closed") != NULL);
    ASSERT_EQ(giz_store_product_get(s, p.product_key, &got), GIZ_OK);
    ASSERT_STREQ(got.product_secret, p.product_secret);
    ASSERT_EQ(giz_store_product_create(s, "after", &got), GIZ_OK);
    /* inside a transaction too, once reconnected */
    ASSERT_EQ(giz_store_begin(s), GIZ_OK);
    ASSERT_EQ(giz_store_product_get(s, got.product_key, &p), GIZ_OK);
    ASSERT_EQ(giz_store_commit(s), GIZ_OK);
    giz_store_close(s);
}

/* One temporary directory and one verified-passcode cache for all cases
 * (exits 1 if the directory cannot be made). */
static void store_setup(void)
{
    const char *tmp = getenv("TMPDIR");

    giz_log_init("test_store", GIZ_LOG_INFO);
    snprintf(dir, sizeof dir, "%s/giz_store_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    pg_uri = getenv("GIZ_TEST_PG_URI");
    if (pg_uri && !pg_uri[0]) pg_uri = NULL;
    if (pg_uri) fprintf(stderr, "store on PostgreSQL (GIZ_TEST_PG_URI)\n");
    db_path(dbpath, sizeof dbpath, "store");
    pcache = giz_pcache_new(600, 1024);
    ASSERT_TRUE(pcache != NULL);
}

static void store_teardown(void)
{
    giz_pcache_free(pcache);
    rm_dir();
}

TEST_LIST(TEST_ENTRY(migrations), TEST_ENTRY(upgrade), TEST_ENTRY(schema_newer),
          TEST_ENTRY(open_errors), TEST_ENTRY(operations), TEST_ENTRY(no_clear_secrets),
          TEST_ENTRY(two_connections), TEST_ENTRY(two_processes), TEST_ENTRY(open_race),
          TEST_ENTRY(db_error_reporting), TEST_ENTRY(passcode_verifier), TEST_ENTRY(pcache),
          TEST_ENTRY(pg_reconnect));
TEST_MAIN_WITH(store_setup, store_teardown)
