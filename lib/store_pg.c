/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The PostgreSQL backend of the store (libpq), behind the sq_* layer of
 * store_sq.h: one connection per store handle, the SQLite statement text
 * translated by store_pg_sql.c, SQLite's result codes and column semantics.
 *
 * Open: PQconnectdb on the postgresql:// URI (its password never reaches a
 * log line or an error text), server 13 or newer, session settings, then
 * the schema/pg/ migrations under a session advisory lock (several GServices
 * and brokers may open one database at once) and the schema version, which
 * must be the one the SQLite migrations reach.
 * Statements: translated at prepare; the server-side prepare happens at the
 * first step, with the parameter types of that step's binds (text as text,
 * int64 as int8, blobs as bytea, NULL untyped so the server infers it, or
 * as text where nothing implies a type), and again if a later step binds
 * another type. Every value travels in text
 * format; the whole result is fetched at the first step and stepped row by
 * row. Column reads convert like SQLite: ints with strtoll, booleans t/f as
 * 1/0, bytea decoded, NULL as 0 or NULL text.
 * Errors: SQLSTATE to SQLite extended codes (unique and primary-key
 * violations told apart by the constraint's name, *_pkey), serialization
 * failures, deadlocks and lock timeouts as SQLITE_BUSY, the message of libpq
 * kept for giz_store_errmsg(). A lost connection fails the statement; the
 * next statement outside a transaction resets the connection (statements are
 * prepared again on their next step).
 * Not emulated: SQLite keeps a transaction usable after a failed statement,
 * PostgreSQL aborts it; the entity files roll back on any failure inside a
 * transaction except the DID-collision retry of registration, which on
 * PostgreSQL fails the registration instead (a 1 in 62^22 event).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store_int.h"
#include "store_pg.h"
#include "store_pg_sql.h"
#include "migrations.h"

/* Advisory lock keys (pg_advisory_*(bigint)): 'giz' plus a number. */
#define PG_LOCK_WRITE "x'67697a0001'::bigint"   /* BEGIN IMMEDIATE */
#define PG_LOCK_MIGRATE "x'67697a0002'::bigint" /* the migrations at open */
#define PG_MIN_SERVER 130000                    /* anycompatible in schema/pg */

#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

struct store_pg {
    PGconn *conn;
    struct giz_store *s; /* the handle (no_wait) */
    unsigned generation; /* bumped by each PQreset: prepared names are gone */
    unsigned next_name;
    int changes;
    bool inserted; /* an INSERT succeeded on this connection: lastval() is defined */
    int errcode;
    char errmsg[512];
};

struct store_pg_stmt {
    struct store_pg *pg;
    char *sql; /* translated */
    int kind;
    int nparams;
    char name[24];     /* server-side name, "" = not prepared */
    unsigned prep_gen; /* pg->generation when prepared */
    Oid *prep_types;   /* the types it was prepared with */
    Oid *types;        /* the bound values: type (0 = NULL) */
    char **vals;       /* NUL-terminated text, NULL for SQL NULL */
    PGresult *res;     /* NULL until stepped */
    int row;           /* current row, -1 before the first */
    int ncols;
    unsigned char **blob; /* bytea columns of the current row, decoded */
    size_t *blob_len;
};

/* ---- errors -------------------------------------------------------------- */

/* Keeps "what: msg" as one line (libpq's messages span several: newlines
 * and tabs become single spaces). */
static void pg_copy_msg(struct store_pg *pg, const char *what, const char *msg)
{
    char tmp[sizeof pg->errmsg];
    size_t j = 0;
    snprintf(tmp, sizeof tmp, "%s%s%s", what ? what : "", what ? ": " : "",
             msg && msg[0] ? msg : "unknown PostgreSQL error");
    for (size_t i = 0; tmp[i] && j + 1 < sizeof pg->errmsg; i++) {
        char c = (tmp[i] == '\n' || tmp[i] == '\t' || tmp[i] == '\r') ? ' ' : tmp[i];
        if (c == ' ' && (j == 0 || pg->errmsg[j - 1] == ' ')) continue;
        pg->errmsg[j++] = c;
    }
    while (j && pg->errmsg[j - 1] == ' ')
        j--;
    pg->errmsg[j] = '\0';
}

/* SQLSTATE (and constraint name) of a failed result to an SQLite code. */
static int pg_code(const PGresult *res, PGconn *conn)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(conn) == CONNECTION_BAD) return SQLITE_IOERR;
    if (!state) return res ? SQLITE_ERROR : SQLITE_NOMEM;
    if (strcmp(state, "23505") == 0) {
        const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        size_t n = c ? strlen(c) : 0;
        return n > 5 && strcmp(c + n - 5, "_pkey") == 0 ? SQLITE_CONSTRAINT_PRIMARYKEY
                                                        : SQLITE_CONSTRAINT_UNIQUE;
    }
    if (strcmp(state, "23503") == 0) return SQLITE_CONSTRAINT_FOREIGNKEY;
    if (strcmp(state, "23502") == 0) return SQLITE_CONSTRAINT_NOTNULL;
    if (strcmp(state, "23514") == 0) return SQLITE_CONSTRAINT_CHECK;
    if (strncmp(state, "23", 2) == 0) return SQLITE_CONSTRAINT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return SQLITE_BUSY;
    if (strcmp(state, "53200") == 0) return SQLITE_NOMEM;
    if (strcmp(state, "54000") == 0 || strcmp(state, "54001") == 0) return SQLITE_TOOBIG;
    if (strncmp(state, "08", 2) == 0) return SQLITE_IOERR;
    return SQLITE_ERROR;
}

/* Records a failed result (res may be NULL: out of memory or no connection)
 * and returns its SQLite code. Clears res. */
static int pg_fail(struct store_pg *pg, PGresult *res, const char *what)
{
    int code = pg_code(res, pg->conn);
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    pg_copy_msg(pg, what, msg && msg[0] ? msg : PQerrorMessage(pg->conn));
    pg->errcode = code;
    PQclear(res);
    return code;
}

/* Before a statement: a connection lost earlier is reset when no
 * transaction was open (the next statement inside one would fail anyway). */
static int pg_ready(struct store_pg *pg)
{
    if (PQstatus(pg->conn) == CONNECTION_OK) return SQLITE_OK;
    PQreset(pg->conn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        pg_copy_msg(pg, "reconnecting", PQerrorMessage(pg->conn));
        pg->errcode = SQLITE_IOERR;
        return SQLITE_IOERR;
    }
    pg->generation++;
    giz_log(GIZ_LOG_WARN, "store: PostgreSQL connection was lost; reconnected");
    return SQLITE_OK;
}

/* Runs one parameterless command (or several) and checks it succeeded. */
static int pg_command(struct store_pg *pg, const char *sql, const char *what)
{
    PGresult *res = PQexec(pg->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_fail(pg, res, what);
    PQclear(res);
    return SQLITE_OK;
}

/* ---- open, migrations ---------------------------------------------------- */

bool store_pg_is_conninfo(const char *path)
{
    return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

/* Replaces every occurrence of the URI's password (user:PASSWORD@host) in
 * text with "***", in place. */
static void pg_redact(const char *uri, char *text)
{
    const char *u = strstr(uri, "://"), *at, *colon, *slash;
    size_t n;
    char pw[256];
    char *hit;

    if (!u) return;
    u += 3;
    slash = strchr(u, '/');
    at = strrchr(u, '@');
    if (!at || (slash && at > slash)) {
        /* no userinfo; a password may still come as ?password= */
        const char *q = strstr(uri, "password=");
        if (!q) return;
        q += 9;
        n = strcspn(q, "&");
        if (n == 0 || n >= sizeof pw) return;
        memcpy(pw, q, n);
        pw[n] = '\0';
    } else {
        colon = memchr(u, ':', (size_t)(at - u));
        if (!colon || at - colon - 1 <= 0 || (size_t)(at - colon - 1) >= sizeof pw) return;
        n = (size_t)(at - colon - 1);
        memcpy(pw, colon + 1, n);
        pw[n] = '\0';
    }
    while ((hit = strstr(text, pw)) != NULL) {
        memmove(hit + 3, hit + n, strlen(hit + n) + 1);
        memcpy(hit, "***", 3);
    }
}

/* "cannot connect to PostgreSQL: <reason> (<where>)": libpq's message
 * "connection to server at ..., port N failed: FATAL:  <reason>" with the
 * reason first (error texts are short), whitespace runs collapsed. */
static void pg_connect_error(PGconn *conn, char *out, size_t cap)
{
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    const char *cut = strstr(msg, " failed: ");
    char tmp[512];
    size_t j = 0;

    if (cut)
        snprintf(tmp, sizeof tmp, "cannot connect to PostgreSQL: %s (%.*s)", cut + 9,
                 (int)(cut - msg), msg);
    else
        snprintf(tmp, sizeof tmp, "cannot connect to PostgreSQL: %s", msg);
    for (size_t i = 0; tmp[i] && j + 1 < cap; i++) {
        char c = (tmp[i] == '\n' || tmp[i] == '\t' || tmp[i] == '\r') ? ' ' : tmp[i];
        if (c == ' ' && (j == 0 || out[j - 1] == ' ')) continue;
        out[j++] = c;
    }
    while (j && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

const char *giz_store_path_display(const char *path, char *out, size_t cap)
{
    if (!out || cap == 0) return "";
    snprintf(out, cap, "%s", path ? path : "");
    if (path && store_pg_is_conninfo(path)) pg_redact(path, out);
    return out;
}

static int pg_scalar(struct store_pg *pg, const char *sql, int64_t *out, const char *what)
{
    PGresult *res = PQexec(pg->conn, sql);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        return pg_fail(pg, res, what);
    *out = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return SQLITE_OK;
}

static int pg_version(struct store_pg *pg, int64_t *v)
{
    return pg_scalar(pg, "SELECT coalesce(max(version), 0) FROM schema_version", v,
                     "reading schema_version");
}

/* Applies the schema/pg/ migrations above the database's version, each in
 * its own transaction, holding the migration lock. */
static int pg_migrate(struct giz_store *s, struct store_pg *pg, struct giz_error *err)
{
    int latest = giz_store_schema_version_latest(), rc;
    int64_t version = 0, dummy;
    char text[160];

    rc = pg_scalar(pg, "SELECT pg_advisory_lock(" PG_LOCK_MIGRATE ")", &dummy,
                   "taking the migration lock");
    if (rc) goto fail;
    rc = pg_command(pg,
                    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                    "creating schema_version");
    if (rc == SQLITE_OK) rc = pg_version(pg, &version);
    if (rc) goto fail;
    if (version > latest) {
        snprintf(text, sizeof text,
                 "database schema version %d is newer than this build (%d); upgrade gizcloud",
                 (int)version, latest);
        giz_log(GIZ_LOG_ERR, "store: %s", text);
        store__set_err(err, GIZ_ERR_SCHEMA_NEWER, text);
        PQclear(PQexec(pg->conn, "SELECT pg_advisory_unlock(" PG_LOCK_MIGRATE ")"));
        return GIZ_ERR_SCHEMA_NEWER;
    }
    for (unsigned i = 0; i < giz__schema_pg_migration_count; i++) {
        const struct giz__migration *m = &giz__schema_pg_migrations[i];
        const char *vals[3];
        char vbuf[24], tbuf[24];
        PGresult *res;

        if (m->version <= version) continue;
        rc = pg_command(pg, "BEGIN", "BEGIN (migration)");
        if (rc) goto fail;
        snprintf(text, sizeof text, "applying migration pg/%s", m->name);
        rc = pg_command(pg, m->sql, text);
        if (rc == SQLITE_OK) {
            snprintf(vbuf, sizeof vbuf, "%d", m->version);
            snprintf(tbuf, sizeof tbuf, "%" PRId64, store__now_s());
            vals[0] = vbuf;
            vals[1] = m->name;
            vals[2] = tbuf;
            res = PQexecParams(pg->conn,
                               "INSERT INTO schema_version(version, name, applied_at) "
                               "VALUES ($1::bigint, $2, $3::bigint)",
                               3, NULL, vals, NULL, NULL, 0);
            if (res && PQresultStatus(res) == PGRES_COMMAND_OK)
                PQclear(res);
            else
                rc = pg_fail(pg, res, "stamping schema_version");
        }
        if (rc == SQLITE_OK) rc = pg_command(pg, "COMMIT", "COMMIT (migration)");
        if (rc) {
            PQclear(PQexec(pg->conn, "ROLLBACK"));
            goto fail;
        }
        giz_log(GIZ_LOG_INFO, "store: applied migration pg/%s", m->name);
        version = m->version;
    }
    rc = pg_version(pg, &version);
    if (rc) goto fail;
    PQclear(PQexec(pg->conn, "SELECT pg_advisory_unlock(" PG_LOCK_MIGRATE ")"));
    s->schema_version = (int)version;
    if (version != latest) {
        snprintf(text, sizeof text,
                 "PostgreSQL schema version %d but the SQLite migrations reach %d: "
                 "schema/pg/ lacks a migration",
                 (int)version, latest);
        giz_log(GIZ_LOG_ERR, "store: %s", text);
        store__set_err(err, GIZ_ERR_DB, text);
        return GIZ_ERR_DB;
    }
    return GIZ_OK;
fail:
    snprintf(s->errmsg, sizeof s->errmsg, "%.*s", (int)sizeof s->errmsg - 1, pg->errmsg);
    giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
    store__set_err(err, GIZ_ERR_DB, pg->errmsg);
    return rc == SQLITE_NOMEM ? GIZ_ERR_NOMEM : GIZ_ERR_DB;
}

int store_pg_open(struct giz_store *s, const char *conninfo, struct giz_error *err)
{
    struct store_pg *pg = calloc(1, sizeof *pg);
    char text[512];
    int rc;

    if (!pg) {
        store__set_err(err, GIZ_ERR_NOMEM, "out of memory");
        return GIZ_ERR_NOMEM;
    }
    pg->s = s;
    pg->conn = PQconnectdb(conninfo);
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
        pg_connect_error(pg->conn, text, sizeof text);
        pg_redact(conninfo, text);
        giz_log(GIZ_LOG_ERR, "store: %s", text);
        store__set_err(err, GIZ_ERR_DB, text);
        snprintf(s->errmsg, sizeof s->errmsg, "%.*s", (int)sizeof s->errmsg - 1, text);
        store_pg_close(pg);
        return GIZ_ERR_DB;
    }
    if (PQserverVersion(pg->conn) < PG_MIN_SERVER) {
        snprintf(text, sizeof text, "PostgreSQL server %d is too old (13 or newer needed)",
                 PQserverVersion(pg->conn));
        giz_log(GIZ_LOG_ERR, "store: %s", text);
        store__set_err(err, GIZ_ERR_DB, text);
        store_pg_close(pg);
        return GIZ_ERR_DB;
    }
    /* notices (e.g. "relation exists, skipping") stay out of stderr; a lock
     * wait gives up after the SQLite busy timeout; READ COMMITTED, UTC. */
    rc = pg_command(pg,
                    "SET client_min_messages = warning; SET lock_timeout = '5s'; "
                    "SET TIME ZONE 'UTC'; SET standard_conforming_strings = on",
                    "setting the session");
    if (rc) {
        store__set_err(err, GIZ_ERR_DB, pg->errmsg);
        store_pg_close(pg);
        return GIZ_ERR_DB;
    }
    s->pg = pg;
    rc = pg_migrate(s, pg, err);
    return rc; /* on failure giz_store_open closes s and with it pg */
}

void store_pg_close(struct store_pg *pg)
{
    if (!pg) return;
    PQfinish(pg->conn);
    free(pg);
}

/* ---- statements ---------------------------------------------------------- */

static void stmt_clear_row(struct store_pg_stmt *st)
{
    if (!st->blob) return;
    for (int i = 0; i < st->ncols; i++) {
        PQfreemem(st->blob[i]);
        st->blob[i] = NULL;
    }
}

int store_pg_prepare(struct store_pg *pg, const char *sql, int n, struct store_pg_stmt **out)
{
    struct store_pg_stmt *st;
    char why[160];
    int rc;

    *out = NULL;
    st = calloc(1, sizeof *st);
    if (!st) return SQLITE_NOMEM;
    st->pg = pg;
    st->row = -1;
    rc = store_pg_sql_translate(sql, n, &st->sql, &st->nparams, &st->kind, why, sizeof why);
    if (rc) {
        char head[80];
        snprintf(head, sizeof head, "%.*s", n < 0 ? 70 : (n < 70 ? n : 70), sql);
        snprintf(pg->errmsg, sizeof pg->errmsg, "%s: %s", why, head);
        pg->errcode = rc == -1 ? SQLITE_NOMEM : SQLITE_ERROR;
        free(st);
        return pg->errcode;
    }
    if (st->nparams > 0) {
        size_t np = (size_t)st->nparams;
        st->types = calloc(np, sizeof *st->types);
        st->prep_types = calloc(np, sizeof *st->prep_types);
        st->vals = calloc(np, sizeof *st->vals);
        if (!st->types || !st->prep_types || !st->vals) {
            store_pg_finalize(st);
            return SQLITE_NOMEM;
        }
    }
    *out = st;
    return SQLITE_OK;
}

/* Prepares st on the server if it is not (or with other types, or before a
 * reconnection). */
static int stmt_prepare_server(struct store_pg_stmt *st)
{
    struct store_pg *pg = st->pg;
    bool again = st->name[0] == '\0' || st->prep_gen != pg->generation;
    PGresult *res;

    for (int i = 0; !again && i < st->nparams; i++)
        if (st->types[i] != 0 && st->prep_types[i] != 0 && st->types[i] != st->prep_types[i])
            again = true;
    if (!again) return SQLITE_OK;
    if (st->name[0] && st->prep_gen == pg->generation) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
        if (PQtransactionStatus(pg->conn) == PQTRANS_INERROR) {
            /* cannot run now; keep the old one under its name, take a new name */
        } else {
            PQclear(PQexec(pg->conn, sql));
        }
    }
    snprintf(st->name, sizeof st->name, "giz%u", ++pg->next_name);
    /* A NULL goes untyped (the server infers it from its use); where
     * nothing implies a type (`?1 IS NULL OR col = ?1`) the prepare fails and
     * is retried with NULLs as text. Inside a transaction that first failure
     * would abort it: a savepoint keeps it out. */
    bool untyped = false, sp = false;
    for (int i = 0; i < st->nparams; i++) {
        st->prep_types[i] = st->types[i];
        if (!st->types[i]) untyped = true;
    }
    if (untyped && PQtransactionStatus(pg->conn) == PQTRANS_INTRANS) {
        if (pg_command(pg, "SAVEPOINT giz_prepare", "preparing") != SQLITE_OK) return pg->errcode;
        sp = true;
    }
    res = PQprepare(pg->conn, st->name, st->sql, st->nparams, st->prep_types);
    if (res && PQresultStatus(res) != PGRES_COMMAND_OK && untyped) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* 42P18 indeterminate, 42P08 ambiguous */
        if (state && (strcmp(state, "42P18") == 0 || strcmp(state, "42P08") == 0) &&
            (sp || PQtransactionStatus(pg->conn) == PQTRANS_IDLE)) {
            PQclear(res);
            res = NULL;
            if (sp) PQclear(PQexec(pg->conn, "ROLLBACK TO SAVEPOINT giz_prepare"));
            for (int i = 0; i < st->nparams; i++)
                if (st->prep_types[i] == 0) st->prep_types[i] = OID_TEXT;
            res = PQprepare(pg->conn, st->name, st->sql, st->nparams, st->prep_types);
        }
    }
    if (sp && PQtransactionStatus(pg->conn) == PQTRANS_INTRANS)
        PQclear(PQexec(pg->conn, "RELEASE SAVEPOINT giz_prepare"));
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        st->name[0] = '\0';
        return pg_fail(pg, res, "preparing");
    }
    PQclear(res);
    st->prep_gen = pg->generation;
    return SQLITE_OK;
}

static bool cmd_changes_rows(const char *status)
{
    return strncmp(status, "INSERT", 6) == 0 || strncmp(status, "UPDATE", 6) == 0 ||
           strncmp(status, "DELETE", 6) == 0;
}

static int stmt_begin(struct store_pg_stmt *st)
{
    struct store_pg *pg = st->pg;
    PGresult *res;
    int rc;
    bool got;

    if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
        pg_copy_msg(pg, NULL, "cannot start a transaction within a transaction");
        pg->errcode = SQLITE_ERROR;
        return SQLITE_ERROR;
    }
    rc = pg_ready(pg);
    if (rc) return rc;
    if (pg->s && pg->s->no_wait) {
        res = PQexec(pg->conn, "BEGIN; SELECT pg_try_advisory_xact_lock(" PG_LOCK_WRITE ")");
        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = pg_fail(pg, res, "BEGIN");
            PQclear(PQexec(pg->conn, "ROLLBACK"));
            return rc;
        }
        got = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (!got) {
            PQclear(PQexec(pg->conn, "ROLLBACK"));
            pg_copy_msg(pg, NULL, "the store's write lock is held by another connection");
            pg->errcode = SQLITE_BUSY;
            return SQLITE_BUSY;
        }
        return SQLITE_DONE;
    }
    res = PQexec(pg->conn, "BEGIN; SELECT pg_advisory_xact_lock(" PG_LOCK_WRITE ")");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = pg_fail(pg, res, "BEGIN");
        if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE) PQclear(PQexec(pg->conn, "ROLLBACK"));
        return rc;
    }
    PQclear(res);
    return SQLITE_DONE;
}

int store_pg_step(struct store_pg_stmt *st)
{
    struct store_pg *pg = st->pg;
    ExecStatusType status;
    int rc;

    if (st->res) { /* next row */
        stmt_clear_row(st);
        if (st->row + 1 < PQntuples(st->res)) {
            st->row++;
            return SQLITE_ROW;
        }
        st->row = PQntuples(st->res);
        return SQLITE_DONE;
    }
    if (st->kind == PG_SQL_BEGIN) {
        rc = stmt_begin(st);
        if (rc == SQLITE_DONE) {
            st->res = PQmakeEmptyPGresult(pg->conn, PGRES_COMMAND_OK);
            if (!st->res) return SQLITE_NOMEM;
        }
        return rc;
    }
    if (PQtransactionStatus(pg->conn) == PQTRANS_IDLE ||
        PQtransactionStatus(pg->conn) == PQTRANS_UNKNOWN) {
        rc = pg_ready(pg);
        if (rc) return rc;
    }
    rc = stmt_prepare_server(st);
    if (rc) return rc;
    st->res = PQexecPrepared(pg->conn, st->name, st->nparams, (const char *const *)st->vals, NULL,
                             NULL, 0);
    status = st->res ? PQresultStatus(st->res) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK) {
        const char *cmd = PQcmdStatus(st->res);
        if (cmd_changes_rows(cmd)) {
            pg->changes = (int)strtol(PQcmdTuples(st->res), NULL, 10);
            if (strncmp(cmd, "INSERT", 6) == 0 && pg->changes > 0) pg->inserted = true;
        }
        return SQLITE_DONE;
    }
    if (status == PGRES_TUPLES_OK) {
        const char *cmd = PQcmdStatus(st->res);
        if (cmd_changes_rows(cmd)) pg->changes = (int)strtol(PQcmdTuples(st->res), NULL, 10);
        st->ncols = PQnfields(st->res);
        free(st->blob);
        free(st->blob_len);
        st->blob = st->ncols ? calloc((size_t)st->ncols, sizeof *st->blob) : NULL;
        st->blob_len = st->ncols ? calloc((size_t)st->ncols, sizeof *st->blob_len) : NULL;
        if (st->ncols && (!st->blob || !st->blob_len)) {
            PQclear(st->res);
            st->res = NULL;
            return SQLITE_NOMEM;
        }
        if (PQntuples(st->res) == 0) {
            st->row = 0;
            return SQLITE_DONE;
        }
        st->row = 0;
        return SQLITE_ROW;
    }
    rc = pg_fail(pg, st->res, NULL);
    st->res = NULL;
    if (rc == SQLITE_IOERR) st->name[0] = '\0';
    return rc;
}

int store_pg_reset(struct store_pg_stmt *st)
{
    stmt_clear_row(st);
    PQclear(st->res);
    st->res = NULL;
    st->row = -1;
    return SQLITE_OK;
}

int store_pg_clear_bindings(struct store_pg_stmt *st)
{
    for (int i = 0; i < st->nparams; i++) {
        free(st->vals[i]);
        st->vals[i] = NULL;
        st->types[i] = 0;
    }
    return SQLITE_OK;
}

void store_pg_finalize(struct store_pg_stmt *st)
{
    if (!st) return;
    store_pg_reset(st);
    if (st->vals) store_pg_clear_bindings(st);
    if (st->name[0] && st->prep_gen == st->pg->generation &&
        PQtransactionStatus(st->pg->conn) == PQTRANS_IDLE) {
        char sql[48];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
        PQclear(PQexec(st->pg->conn, sql));
    }
    free(st->blob);
    free(st->blob_len);
    free(st->vals);
    free(st->types);
    free(st->prep_types);
    free(st->sql);
    free(st);
}

int store_pg_busy(struct store_pg_stmt *st)
{
    return st->res != NULL;
}

static int bind_set(struct store_pg_stmt *st, int i, Oid type, char *v)
{
    if (i < 1 || i > st->nparams) {
        free(v);
        return SQLITE_RANGE;
    }
    free(st->vals[i - 1]);
    st->vals[i - 1] = v;
    st->types[i - 1] = v ? type : 0;
    return SQLITE_OK;
}

int store_pg_bind(struct store_pg_stmt *st, int i, int type, const void *v, int n)
{
    char *copy = NULL;
    size_t len;

    if (type == SQLITE_NULL || v == NULL) return bind_set(st, i, 0, NULL);
    if (type == SQLITE_TEXT) {
        len = n < 0 ? strlen(v) : (size_t)n;
        if (memchr(v, '\0', len)) len = strlen(v); /* PostgreSQL text holds no NUL */
        copy = malloc(len + 1);
        if (!copy) return SQLITE_NOMEM;
        memcpy(copy, v, len);
        copy[len] = '\0';
        return bind_set(st, i, OID_TEXT, copy);
    }
    /* a blob: bytea in hex text form */
    len = n < 0 ? 0 : (size_t)n;
    copy = malloc(2 * len + 3);
    if (!copy) return SQLITE_NOMEM;
    copy[0] = '\\';
    copy[1] = 'x';
    for (size_t k = 0; k < len; k++) {
        static const char hex[] = "0123456789abcdef";
        copy[2 + 2 * k] = hex[((const unsigned char *)v)[k] >> 4];
        copy[3 + 2 * k] = hex[((const unsigned char *)v)[k] & 15];
    }
    copy[2 + 2 * len] = '\0';
    return bind_set(st, i, OID_BYTEA, copy);
}

int store_pg_bind_int64(struct store_pg_stmt *st, int i, int64_t v)
{
    char *t = malloc(24);
    if (!t) return SQLITE_NOMEM;
    snprintf(t, 24, "%" PRId64, v);
    return bind_set(st, i, OID_INT8, t);
}

int store_pg_param_count(struct store_pg_stmt *st)
{
    return st->nparams;
}

/* ---- columns ------------------------------------------------------------- */

static bool col_ok(struct store_pg_stmt *st, int i)
{
    return st->res && st->row >= 0 && st->row < PQntuples(st->res) && i >= 0 && i < st->ncols;
}

int64_t store_pg_column_int64(struct store_pg_stmt *st, int i)
{
    const char *v;
    if (!col_ok(st, i) || PQgetisnull(st->res, st->row, i)) return 0;
    v = PQgetvalue(st->res, st->row, i);
    if (PQftype(st->res, i) == OID_BOOL) return v[0] == 't';
    return strtoll(v, NULL, 10);
}

/* The bytes of a bytea column, decoded once per row. */
static const unsigned char *col_bytea(struct store_pg_stmt *st, int i, size_t *len)
{
    if (!st->blob[i]) {
        st->blob[i] = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, i),
                                      &st->blob_len[i]);
        if (!st->blob[i]) return NULL;
    }
    *len = st->blob_len[i];
    return st->blob[i];
}

const unsigned char *store_pg_column_text(struct store_pg_stmt *st, int i)
{
    const char *v;
    size_t len;
    if (!col_ok(st, i) || PQgetisnull(st->res, st->row, i)) return NULL;
    v = PQgetvalue(st->res, st->row, i);
    switch (PQftype(st->res, i)) {
    case OID_BOOL:
        return (const unsigned char *)(v[0] == 't' ? "1" : "0");
    case OID_BYTEA:
        return col_bytea(st, i, &len);
    default:
        return (const unsigned char *)v;
    }
}

const void *store_pg_column_blob(struct store_pg_stmt *st, int i)
{
    size_t len;
    if (!col_ok(st, i) || PQgetisnull(st->res, st->row, i)) return NULL;
    if (PQftype(st->res, i) == OID_BYTEA) return col_bytea(st, i, &len);
    return store_pg_column_text(st, i);
}

int store_pg_column_bytes(struct store_pg_stmt *st, int i)
{
    size_t len = 0;
    if (!col_ok(st, i) || PQgetisnull(st->res, st->row, i)) return 0;
    switch (PQftype(st->res, i)) {
    case OID_BOOL:
        return 1;
    case OID_BYTEA:
        return col_bytea(st, i, &len) ? (int)len : 0;
    default:
        return PQgetlength(st->res, st->row, i);
    }
}

int store_pg_column_type(struct store_pg_stmt *st, int i)
{
    if (!col_ok(st, i) || PQgetisnull(st->res, st->row, i)) return SQLITE_NULL;
    switch (PQftype(st->res, i)) {
    case OID_BOOL:
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return SQLITE_INTEGER;
    case OID_NUMERIC:
        return strchr(PQgetvalue(st->res, st->row, i), '.') ? SQLITE_FLOAT : SQLITE_INTEGER;
    case OID_FLOAT4:
    case OID_FLOAT8:
        return SQLITE_FLOAT;
    case OID_BYTEA:
        return SQLITE_BLOB;
    default:
        return SQLITE_TEXT;
    }
}

/* ---- connection state ---------------------------------------------------- */

int store_pg_changes(struct store_pg *pg)
{
    return pg->changes;
}

int64_t store_pg_last_insert_rowid(struct store_pg *pg)
{
    int64_t v = 0;
    /* lastval() fails (and would abort an open transaction) before the
     * session's first sequence use: only ask after an INSERT wrote rows */
    if (!pg->inserted || PQtransactionStatus(pg->conn) == PQTRANS_INERROR) return 0;
    if (pg_scalar(pg, "SELECT lastval()", &v, "reading lastval()") != SQLITE_OK) return 0;
    return v;
}

int store_pg_get_autocommit(struct store_pg *pg)
{
    PGTransactionStatusType t = PQtransactionStatus(pg->conn);
    return t == PQTRANS_IDLE || t == PQTRANS_UNKNOWN;
}

const char *store_pg_errmsg(struct store_pg *pg)
{
    return pg->errmsg[0] ? pg->errmsg : "not an error";
}

int store_pg_errcode(struct store_pg *pg)
{
    return pg->errcode;
}

int store_pg_exec(struct store_pg *pg, const char *sql, int (*cb)(void *, int, char **, char **),
                  void *ud)
{
    struct store_pg_stmt *st = NULL;
    PGresult *res;
    int rc = store_pg_prepare(pg, sql, -1, &st), code = SQLITE_OK;

    if (rc) return rc;
    if (st->kind == PG_SQL_BEGIN || st->nparams > 0) {
        /* one statement: step it (a BEGIN IMMEDIATE takes the write lock) */
        while ((rc = store_pg_step(st)) == SQLITE_ROW)
            ;
        store_pg_finalize(st);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (PQtransactionStatus(pg->conn) == PQTRANS_IDLE ||
        PQtransactionStatus(pg->conn) == PQTRANS_UNKNOWN) {
        rc = pg_ready(pg);
        if (rc) {
            store_pg_finalize(st);
            return rc;
        }
    }
    if (!PQsendQuery(pg->conn, st->sql)) {
        store_pg_finalize(st);
        return pg_fail(pg, NULL, NULL);
    }
    while ((res = PQgetResult(pg->conn)) != NULL) {
        ExecStatusType t = PQresultStatus(res);
        if (code == SQLITE_OK && t == PGRES_TUPLES_OK && cb) {
            int nf = PQnfields(res);
            char **vals = calloc((size_t)nf + 1, sizeof *vals);
            char **names = calloc((size_t)nf + 1, sizeof *names);
            for (int r = 0; vals && names && r < PQntuples(res) && code == SQLITE_OK; r++) {
                for (int c = 0; c < nf; c++) {
                    vals[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
                    names[c] = PQfname(res, c);
                }
                if (cb(ud, nf, vals, names)) code = SQLITE_ABORT;
            }
            if (!vals || !names) code = SQLITE_NOMEM;
            free(vals);
            free(names);
        } else if (code == SQLITE_OK && t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK &&
                   t != PGRES_EMPTY_QUERY) {
            code = pg_code(res, pg->conn);
            pg_copy_msg(pg, NULL, PQresultErrorMessage(res));
            pg->errcode = code;
        }
        PQclear(res);
    }
    store_pg_finalize(st);
    return code;
}
