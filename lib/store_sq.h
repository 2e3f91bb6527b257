/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private to lib/store_*.c: the statement layer both store backends share.
 * The entity files speak SQLite's vocabulary (result codes SQLITE_ROW,
 * SQLITE_DONE, SQLITE_CONSTRAINT_*, column and bind calls of the same shape)
 * through these sq_* calls; each one dispatches to SQLite or to the
 * PostgreSQL backend of store_pg.c, which runs the same statement text
 * after store_pg_sql.c translated it. Nothing outside lib/store_*.c sees it.
 */
#ifndef GIZ_STORE_SQ_H
#define GIZ_STORE_SQ_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

struct giz_store;
struct store_pg_stmt;

/* One prepared statement of either backend (exactly one pointer is set). */
typedef struct sq_stmt {
    sqlite3_stmt *lite;
    struct store_pg_stmt *pg;
} sq_stmt;

/* Prepares sql (n < 0: up to its NUL) into *out (NULL on failure); tail is
 * unused and may be NULL. Returns an SQLite result code. _v3 passes SQLite's
 * prepare flags (ignored on PostgreSQL). */
int sq_prepare_v2(struct giz_store *s, const char *sql, int n, sq_stmt **out, const char **tail);
int sq_prepare_v3(struct giz_store *s, const char *sql, int n, unsigned flags, sq_stmt **out,
                  const char **tail);
/* Prepares into a caller-owned slot (the store's statement table: no
 * allocation of its own); sq_close_slot releases what it holds. */
int sq_prepare_slot(struct giz_store *s, const char *sql, unsigned flags, sq_stmt *slot);
void sq_close_slot(sq_stmt *slot);
int sq_step(sq_stmt *st);
int sq_reset(sq_stmt *st);
int sq_clear_bindings(sq_stmt *st);
/* NULL allowed. */
int sq_finalize(sq_stmt *st);
/* Nonzero between the first step and the reset. */
int sq_stmt_busy(sq_stmt *st);

/* Binds, 1-based. Text and blobs are copied by the PostgreSQL backend;
 * SQLite keeps SQLITE_STATIC pointers until the step, as always. */
int sq_bind_text(sq_stmt *st, int i, const char *v, int n, void (*del)(void *));
int sq_bind_blob(sq_stmt *st, int i, const void *v, int n, void (*del)(void *));
int sq_bind_int(sq_stmt *st, int i, int v);
int sq_bind_int64(sq_stmt *st, int i, sqlite3_int64 v);
int sq_bind_null(sq_stmt *st, int i);
int sq_bind_parameter_count(sq_stmt *st);

/* Columns of the current row, 0-based; SQLite's conversions (NULL reads as
 * 0 or NULL text; PostgreSQL booleans read as 1/0). */
int sq_column_int(sq_stmt *st, int i);
sqlite3_int64 sq_column_int64(sq_stmt *st, int i);
const unsigned char *sq_column_text(sq_stmt *st, int i);
const void *sq_column_blob(sq_stmt *st, int i);
int sq_column_bytes(sq_stmt *st, int i);
/* SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT or SQLITE_BLOB. */
int sq_column_type(sq_stmt *st, int i);

/* Connection state: rows changed by the last INSERT/UPDATE/DELETE, the id
 * of the last insert, 1 outside a transaction, the last error. */
int sq_changes(struct giz_store *s);
sqlite3_int64 sq_last_insert_rowid(struct giz_store *s);
int sq_get_autocommit(struct giz_store *s);
const char *sq_errmsg(struct giz_store *s);
int sq_errcode(struct giz_store *s);
/* Runs one or more statements without parameters; cb (may be NULL) sees
 * each result row as text. errmsg must be NULL. */
int sq_exec(struct giz_store *s, const char *sql, int (*cb)(void *, int, char **, char **),
            void *ud, char **errmsg);

#endif
