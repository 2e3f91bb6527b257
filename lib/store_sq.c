/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The sq_* statement layer (store_sq.h): each call goes to SQLite or to the
 * PostgreSQL backend (store_pg.c), whichever holds the statement or the
 * store's connection.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "store_int.h"
#include "store_pg.h"

/* Prepares sql into slot on whichever backend s uses. */
static int prepare_into(struct giz_store *s, const char *sql, int n, unsigned flags, sq_stmt *slot)
{
    slot->lite = NULL;
    slot->pg = NULL;
    if (s->pg) return store_pg_prepare(s->pg, sql, n, &slot->pg);
    return sqlite3_prepare_v3(s->db, sql, n, flags, &slot->lite, NULL);
}

int sq_prepare_slot(struct giz_store *s, const char *sql, unsigned flags, sq_stmt *slot)
{
    return prepare_into(s, sql, -1, flags, slot);
}

void sq_close_slot(sq_stmt *slot)
{
    if (slot->pg) store_pg_finalize(slot->pg);
    if (slot->lite) sqlite3_finalize(slot->lite);
    slot->lite = NULL;
    slot->pg = NULL;
}

int sq_prepare_v3(struct giz_store *s, const char *sql, int n, unsigned flags, sq_stmt **out,
                  const char **tail)
{
    sq_stmt slot;
    int rc;

    *out = NULL;
    if (tail) *tail = NULL;
    rc = prepare_into(s, sql, n, flags, &slot);
    if (rc != SQLITE_OK) return rc;
    *out = malloc(sizeof **out);
    if (!*out) {
        sq_close_slot(&slot);
        return SQLITE_NOMEM;
    }
    **out = slot;
    return SQLITE_OK;
}

int sq_prepare_v2(struct giz_store *s, const char *sql, int n, sq_stmt **out, const char **tail)
{
    return sq_prepare_v3(s, sql, n, 0, out, tail);
}

int sq_step(sq_stmt *st)
{
    return st->pg ? store_pg_step(st->pg) : sqlite3_step(st->lite);
}

int sq_reset(sq_stmt *st)
{
    return st->pg ? store_pg_reset(st->pg) : sqlite3_reset(st->lite);
}

int sq_clear_bindings(sq_stmt *st)
{
    return st->pg ? store_pg_clear_bindings(st->pg) : sqlite3_clear_bindings(st->lite);
}

int sq_finalize(sq_stmt *st)
{
    int rc = SQLITE_OK;
    if (!st) return SQLITE_OK;
    if (st->lite) rc = sqlite3_finalize(st->lite);
    st->lite = NULL;
    sq_close_slot(st);
    free(st);
    return rc;
}

int sq_stmt_busy(sq_stmt *st)
{
    return st->pg ? store_pg_busy(st->pg) : sqlite3_stmt_busy(st->lite);
}

int sq_bind_text(sq_stmt *st, int i, const char *v, int n, void (*del)(void *))
{
    if (st->pg) return store_pg_bind(st->pg, i, SQLITE_TEXT, v, n);
    return sqlite3_bind_text(st->lite, i, v, n, del);
}

int sq_bind_blob(sq_stmt *st, int i, const void *v, int n, void (*del)(void *))
{
    if (st->pg) return store_pg_bind(st->pg, i, SQLITE_BLOB, v, n);
    return sqlite3_bind_blob(st->lite, i, v, n, del);
}

int sq_bind_int(sq_stmt *st, int i, int v)
{
    return sq_bind_int64(st, i, v);
}

int sq_bind_int64(sq_stmt *st, int i, sqlite3_int64 v)
{
    return st->pg ? store_pg_bind_int64(st->pg, i, v) : sqlite3_bind_int64(st->lite, i, v);
}

int sq_bind_null(sq_stmt *st, int i)
{
    return st->pg ? store_pg_bind(st->pg, i, SQLITE_NULL, NULL, 0) : sqlite3_bind_null(st->lite, i);
}

int sq_bind_parameter_count(sq_stmt *st)
{
    return st->pg ? store_pg_param_count(st->pg) : sqlite3_bind_parameter_count(st->lite);
}

int sq_column_int(sq_stmt *st, int i)
{
    return (int)sq_column_int64(st, i);
}

sqlite3_int64 sq_column_int64(sq_stmt *st, int i)
{
    return st->pg ? store_pg_column_int64(st->pg, i) : sqlite3_column_int64(st->lite, i);
}

const unsigned char *sq_column_text(sq_stmt *st, int i)
{
    return st->pg ? store_pg_column_text(st->pg, i) : sqlite3_column_text(st->lite, i);
}

const void *sq_column_blob(sq_stmt *st, int i)
{
    return st->pg ? store_pg_column_blob(st->pg, i) : sqlite3_column_blob(st->lite, i);
}

int sq_column_bytes(sq_stmt *st, int i)
{
    return st->pg ? store_pg_column_bytes(st->pg, i) : sqlite3_column_bytes(st->lite, i);
}

int sq_column_type(sq_stmt *st, int i)
{
    return st->pg ? store_pg_column_type(st->pg, i) : sqlite3_column_type(st->lite, i);
}

int sq_changes(struct giz_store *s)
{
    return s->pg ? store_pg_changes(s->pg) : sqlite3_changes(s->db);
}

sqlite3_int64 sq_last_insert_rowid(struct giz_store *s)
{
    return s->pg ? store_pg_last_insert_rowid(s->pg) : sqlite3_last_insert_rowid(s->db);
}

int sq_get_autocommit(struct giz_store *s)
{
    return s->pg ? store_pg_get_autocommit(s->pg) : sqlite3_get_autocommit(s->db);
}

const char *sq_errmsg(struct giz_store *s)
{
    if (s->pg) return store_pg_errmsg(s->pg);
    return s->db ? sqlite3_errmsg(s->db) : "no database";
}

int sq_errcode(struct giz_store *s)
{
    return s->pg ? store_pg_errcode(s->pg) : sqlite3_extended_errcode(s->db);
}

int sq_exec(struct giz_store *s, const char *sql, int (*cb)(void *, int, char **, char **),
            void *ud, char **errmsg)
{
    if (errmsg) *errmsg = NULL;
    return s->pg ? store_pg_exec(s->pg, sql, cb, ud) : sqlite3_exec(s->db, sql, cb, ud, NULL);
}
