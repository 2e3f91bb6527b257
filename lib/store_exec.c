/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Statement plumbing shared by every store_*.c file: errors (logged and kept
 * for giz_store_errmsg), bind -> step -> reset with the first bind failure
 * remembered, column copies, and the write-transaction helpers (BEGIN
 * IMMEDIATE, or a savepoint inside a caller's transaction) with the public
 * giz_store_begin/commit/rollback.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store_int.h"

int64_t store__now_s(void)
{
    return (int64_t)time(NULL);
}

void store__set_err(struct giz_error *err, int code, const char *text)
{
    if (!err) return;
    err->code = code;
    err->offset = 0;
    size_t n = text ? strlen(text) : 0;
    if (n >= sizeof err->text) n = sizeof err->text - 1;
    if (n) memcpy(err->text, text, n);
    err->text[n] = '\0';
}

int store__db_err(struct giz_store *s, int rc, const char *what)
{
    snprintf(s->errmsg, sizeof s->errmsg, "%s: %s (%s)", what, sqlite3_errstr(rc), sq_errmsg(s));
    giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
    return (rc & 0xff) == SQLITE_NOMEM ? GIZ_ERR_NOMEM : GIZ_ERR_DB;
}

void store__reset(struct giz_store *s, sq_stmt *st)
{
    sq_reset(st);
    sq_clear_bindings(st);
    s->bind_rc = SQLITE_OK;
}

void store__bind_note(struct giz_store *s, int rc)
{
    if (rc != SQLITE_OK && s->bind_rc == SQLITE_OK) s->bind_rc = rc;
}

void store__bind_text(struct giz_store *s, sq_stmt *st, int i, const char *v)
{
    store__bind_note(s, v ? sq_bind_text(st, i, v, -1, SQLITE_STATIC) : sq_bind_null(st, i));
}

void store__bind_textn(struct giz_store *s, sq_stmt *st, int i, const char *v, size_t n)
{
    store__bind_note(s, sq_bind_text(st, i, n ? v : "", (int)n, SQLITE_STATIC));
}

void store__bind_int(struct giz_store *s, sq_stmt *st, int i, int64_t v)
{
    store__bind_note(s, sq_bind_int64(st, i, v));
}

/* Steps st after checking the binds; returns the SQLite code. */
int store__step(struct giz_store *s, sq_stmt *st)
{
    int rc = s->bind_rc != SQLITE_OK ? s->bind_rc : sq_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) s->last_rc = rc;
    return rc;
}

/* Runs a statement expected to produce no rows, then resets it. */
int store__exec(struct giz_store *s, sq_stmt *st, const char *what)
{
    int rc = store__step(s, st), ret = GIZ_OK;
    if (rc != SQLITE_DONE) ret = store__db_err(s, rc, what);
    store__reset(s, st);
    return ret;
}

void store__col_text(sq_stmt *st, int i, char *buf, size_t cap)
{
    const unsigned char *t = sq_column_text(st, i);
    size_t n = t ? (size_t)sq_column_bytes(st, i) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(buf, t, n);
    buf[n] = '\0';
}

bool store__fits(const char *v, size_t cap)
{
    return v && memchr(v, '\0', cap) != NULL;
}

/* ---- transactions -------------------------------------------------------- */

/* Starts a write transaction: BEGIN IMMEDIATE, or a savepoint when the
 * caller already opened one with giz_store_begin(). */
int store__txn_open(struct giz_store *s, int *kind)
{
    if (sq_get_autocommit(s)) {
        *kind = TXN_TOP;
        return store__exec(s, s->st[ST_BEGIN], "BEGIN IMMEDIATE");
    }
    *kind = TXN_SAVEPOINT;
    return store__exec(s, s->st[ST_SAVEPOINT], "SAVEPOINT");
}

void store__txn_abort(struct giz_store *s, int kind)
{
    if (sq_get_autocommit(s)) return; /* SQLite already rolled back */
    if (kind == TXN_TOP) {
        store__exec(s, s->st[ST_ROLLBACK], "ROLLBACK");
    } else {
        store__exec(s, s->st[ST_ROLLBACK_TO], "ROLLBACK TO");
        store__exec(s, s->st[ST_RELEASE], "RELEASE");
    }
}

/* Commits (rc == GIZ_OK) or rolls back; returns rc or the commit error. */
int store__txn_close(struct giz_store *s, int kind, int rc)
{
    if (rc == GIZ_OK) {
        rc = store__exec(s, s->st[kind == TXN_TOP ? ST_COMMIT : ST_RELEASE],
                         kind == TXN_TOP ? "COMMIT" : "RELEASE");
        if (rc == GIZ_OK) return GIZ_OK;
    }
    store__txn_abort(s, kind);
    return rc;
}

int giz_store_begin(struct giz_store *s)
{
    if (!s) return GIZ_ERR_INVAL;
    if (!sq_get_autocommit(s)) return GIZ_ERR_INVAL;
    return store__exec(s, s->st[ST_BEGIN], "BEGIN IMMEDIATE");
}

int giz_store_commit(struct giz_store *s)
{
    int rc;
    if (!s) return GIZ_ERR_INVAL;
    if (sq_get_autocommit(s)) return GIZ_ERR_INVAL;
    rc = store__exec(s, s->st[ST_COMMIT], "COMMIT");
    if (rc) store__txn_abort(s, TXN_TOP);
    return rc;
}

int giz_store_rollback(struct giz_store *s)
{
    if (!s) return GIZ_ERR_INVAL;
    if (sq_get_autocommit(s)) return GIZ_ERR_INVAL;
    return store__exec(s, s->st[ST_ROLLBACK], "ROLLBACK");
}

const char *giz_store_errmsg(struct giz_store *s)
{
    if (!s) return "no store";
    return s->errmsg;
}

/* Refuses re-entrant use of a list statement from inside its own callback. */
int store__list_guard(struct giz_store *s, sq_stmt *st)
{
    if (!sq_stmt_busy(st)) return GIZ_OK;
    snprintf(s->errmsg, sizeof s->errmsg, "list function called from its own callback");
    giz_log(GIZ_LOG_ERR, "store: %s", s->errmsg);
    return GIZ_ERR_INVAL;
}

int store__list_end(struct giz_store *s, sq_stmt *st, int src, const char *what)
{
    int rc = GIZ_OK;
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = store__db_err(s, src, what);
    store__reset(s, st);
    return rc;
}

int store__row_end(struct giz_store *s, sq_stmt *st, int src, const char *what)
{
    int rc = GIZ_OK;
    if (src == SQLITE_DONE)
        rc = GIZ_ERR_NOT_FOUND;
    else if (src != SQLITE_ROW)
        rc = store__db_err(s, src, what);
    store__reset(s, st);
    return rc;
}

int store__row_exists(struct giz_store *s, sq_stmt *st, const char *what)
{
    return store__row_end(s, st, store__step(s, st), what);
}

int store__count(struct giz_store *s, sq_stmt *st, const char *what, int64_t *out)
{
    int src = store__step(s, st);
    *out = src == SQLITE_ROW ? sq_column_int64(st, 0) : 0;
    return store__row_end(s, st, src, what);
}

int store__prepare(struct giz_store *s, const char *sql, sq_stmt **st, const char *what)
{
    int rc = sq_prepare_v2(s, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return store__db_err(s, rc, what);
    }
    return GIZ_OK;
}

void store__finalize(struct giz_store *s, sq_stmt *st)
{
    if (st == NULL) return;
    s->bind_rc = SQLITE_OK;
    sq_finalize(st);
}
