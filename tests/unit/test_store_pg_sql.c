/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the SQLite-to-PostgreSQL statement translator
 * (lib/store_pg_sql.c): parameters outside literals, the generic rewrites,
 * BEGIN IMMEDIATE, the fragment and override tables, refusal of SQLite-only
 * vocabulary, and that every statement of the store's table translates (a
 * statement needing a new override fails here, not at run time).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "store_pg_sql.h"
#include "test.h"

/* Translates sql and checks the text, the parameter count and the kind. */
static void check(const char *sql, const char *want, int want_params, int want_kind)
{
    char *out = NULL, why[128];
    int np = -1, kind = -1;
    int rc = store_pg_sql_translate(sql, -1, &out, &np, &kind, why, sizeof why);
    ASSERT_EQ(rc, 0);
    if (rc) fprintf(stderr, "  %s: %s\n", sql, why);
    ASSERT_STREQ(out, want);
    ASSERT_EQ(np, want_params);
    ASSERT_EQ(kind, want_kind);
    free(out);
}

static void refuse(const char *sql, const char *word)
{
    char *out = NULL, why[128];
    int np, kind;
    ASSERT_EQ(store_pg_sql_translate(sql, -1, &out, &np, &kind, why, sizeof why), -2);
    ASSERT_TRUE(out == NULL);
    if (out) fprintf(stderr, "  not refused: %s\n", sql);
    free(out);
    ASSERT_TRUE(strstr(why, word) != NULL);
}

TEST_CASE(params)
{
    check("SELECT a FROM t WHERE b = ?1 AND c = ?12", "SELECT a FROM t WHERE b = $1 AND c = $12",
          12, PG_SQL_PLAIN);
    check("INSERT INTO t VALUES (?, ?)", "INSERT INTO t VALUES ($1, $2)", 2, PG_SQL_PLAIN);
    /* not inside literals, quoted identifiers or comments */
    check("SELECT '?1', 'it''s ?2', \"odd?3\" FROM t WHERE x = ?1 -- ?4\n",
          "SELECT '?1', 'it''s ?2', \"odd?3\" FROM t WHERE x = $1 -- ?4\n", 1, PG_SQL_PLAIN);
    check("SELECT '$' || ?2", "SELECT '$' || $2", 2, PG_SQL_PLAIN);
    check("SELECT 1", "SELECT 1", 0, PG_SQL_PLAIN);
}

TEST_CASE(rewrites)
{
    check("INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
          "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, PG_SQL_PLAIN);
    check("SELECT DISTINCT did FROM device_logs NOT INDEXED WHERE id > ?2",
          "SELECT DISTINCT did FROM device_logs WHERE id > $2", 2, PG_SQL_PLAIN);
    check("WITH t(did) AS (SELECT did FROM e), c AS (SELECT 1) SELECT * FROM t, c",
          "WITH t(did) AS MATERIALIZED (SELECT did FROM e), c AS MATERIALIZED (SELECT 1) "
          "SELECT * FROM t, c",
          0, PG_SQL_PLAIN);
    check("SELECT x FROM t ORDER BY id LIMIT ?3 OFFSET ?4",
          "SELECT x FROM t ORDER BY id LIMIT giz_limit($3) OFFSET giz_offset($4)", 4, PG_SQL_PLAIN);
    check("SELECT x FROM t LIMIT 1 OFFSET ?1", "SELECT x FROM t LIMIT 1 OFFSET giz_offset($1)", 1,
          PG_SQL_PLAIN);
    check("SELECT json_patch(json_object('id', id), fields) FROM events",
          "SELECT json_patch(json_build_object('id', id), fields) FROM events", 0, PG_SQL_PLAIN);
    check("SELECT 1 WHERE u >= CAST(strftime('%s', 'now') AS INTEGER) - 60",
          "SELECT 1 WHERE u >= CAST(extract(epoch FROM now()) AS BIGINT) - 60", 0, PG_SQL_PLAIN);
    /* upserts: the right-hand columns are the existing row's */
    check("INSERT INTO event_drops(did, n) VALUES (?1, ?2) ON CONFLICT(did) DO UPDATE SET "
          "n = n + excluded.n",
          "INSERT INTO event_drops(did, n) VALUES ($1, $2) ON CONFLICT(did) DO UPDATE SET "
          "n = event_drops.n + excluded.n",
          2, PG_SQL_PLAIN);
    check("INSERT INTO d(a, b) VALUES (?1, ?2) ON CONFLICT(a) DO UPDATE SET "
          "b = iif(?2 <> '', ?2, b), c = max(c, ?1), e = 'x''y', f = NULL",
          "INSERT INTO d(a, b) VALUES ($1, $2) ON CONFLICT(a) DO UPDATE SET "
          "b = iif($2 <> '', $2, d.b), c = max(d.c, $1), e = 'x''y', f = NULL",
          2, PG_SQL_PLAIN);
    /* a name merely containing a rewritten word is left alone */
    check("SELECT my_json_object(1)", "SELECT my_json_object(1)", 0, PG_SQL_PLAIN);
}

TEST_CASE(transactions)
{
    check("BEGIN IMMEDIATE", "BEGIN", 0, PG_SQL_BEGIN);
    check("begin exclusive;", "BEGIN", 0, PG_SQL_BEGIN);
    check("COMMIT", "COMMIT", 0, PG_SQL_PLAIN);
    check("ROLLBACK", "ROLLBACK", 0, PG_SQL_PLAIN);
    check("SAVEPOINT giz_op", "SAVEPOINT giz_op", 0, PG_SQL_PLAIN);
    check("RELEASE giz_op", "RELEASE giz_op", 0, PG_SQL_PLAIN);
    check("ROLLBACK TO giz_op", "ROLLBACK TO giz_op", 0, PG_SQL_PLAIN);
}

TEST_CASE(refused)
{
    refuse("SELECT name FROM sqlite_master", "sqlite_");
    refuse("SELECT * FROM pragma_table_info('x')", "pragma");
    refuse("PRAGMA foreign_keys = ON", "pragma");
    refuse("SELECT strftime('%Y', 'now')", "strftime(");
    refuse("SELECT typeof(x) FROM t", "typeof(");
    refuse("SELECT a FROM t WHERE a GLOB 'x*'", "glob");
    refuse("SELECT ?0", "parameter");
    /* the same words inside a literal are data */
    check("SELECT 'sqlite_master pragma strftime('", "SELECT 'sqlite_master pragma strftime('", 0,
          PG_SQL_PLAIN);
}

TEST_CASE(overrides)
{
    char *out = NULL;
    int np, kind;
    ASSERT_EQ(store_pg_sql_translate("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE "
                                     "name = 'events'), (SELECT max(id) FROM events), 0)",
                                     -1, &out, &np, &kind, NULL, 0),
              0);
    ASSERT_TRUE(out && strstr(out, "events_id_seq") != NULL);
    free(out);
}

/* Every statement the store prepares at open translates. */
TEST_CASE(store_table)
{
    static const struct {
        const char *name, *sql;
    } stmts[] = {
#define ENTRY(name, sql) {#name, sql},
        STORE_STMTS(ENTRY)
#undef ENTRY
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        char *out = NULL, why[128];
        int np, kind;
        if (store_pg_sql_translate(stmts[i].sql, -1, &out, &np, &kind, why, sizeof why) != 0) {
            fprintf(stderr, "ST_%s: %s\n", stmts[i].name, why);
            failed++;
        } else if (strstr(out, "?") && !strstr(stmts[i].sql, "'")) {
            fprintf(stderr, "ST_%s: a ? left: %s\n", stmts[i].name, out);
            failed++;
        }
        free(out);
    }
    ASSERT_EQ(failed, 0);
    ASSERT_TRUE(sizeof stmts / sizeof stmts[0] == ST__COUNT);
}

TEST_LIST(TEST_ENTRY(params), TEST_ENTRY(rewrites), TEST_ENTRY(transactions), TEST_ENTRY(refused),
          TEST_ENTRY(overrides), TEST_ENTRY(store_table));
TEST_MAIN()
