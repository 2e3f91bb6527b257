/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private to lib/store_*.c: the PostgreSQL backend (store_pg.c, libpq) behind
 * the sq_* layer of store_sq.h. Same calls, same SQLite result codes, so the
 * entity files run unchanged on either backend.
 */
#ifndef GIZ_STORE_PG_H
#define GIZ_STORE_PG_H

#include <stdbool.h>
#include <stdint.h>

#include "giz/error.h"

struct giz_store;
struct store_pg;
struct store_pg_stmt;

/* true if path names a PostgreSQL database ("postgresql://..." or
 * "postgres://..." URI) rather than an SQLite file. */
bool store_pg_is_conninfo(const char *path);
/* Connects s to the database, applies the PostgreSQL migrations and sets
 * s->pg. GIZ_OK or an error (err filled). */
int store_pg_open(struct giz_store *s, const char *conninfo, struct giz_error *err);
void store_pg_close(struct store_pg *pg);

int store_pg_prepare(struct store_pg *pg, const char *sql, int n, struct store_pg_stmt **out);
int store_pg_step(struct store_pg_stmt *st);
int store_pg_reset(struct store_pg_stmt *st);
int store_pg_clear_bindings(struct store_pg_stmt *st);
void store_pg_finalize(struct store_pg_stmt *st);
int store_pg_busy(struct store_pg_stmt *st);
int store_pg_bind(struct store_pg_stmt *st, int i, int type, const void *v, int n);
int store_pg_bind_int64(struct store_pg_stmt *st, int i, int64_t v);
int store_pg_param_count(struct store_pg_stmt *st);
int64_t store_pg_column_int64(struct store_pg_stmt *st, int i);
const unsigned char *store_pg_column_text(struct store_pg_stmt *st, int i);
const void *store_pg_column_blob(struct store_pg_stmt *st, int i);
int store_pg_column_bytes(struct store_pg_stmt *st, int i);
int store_pg_column_type(struct store_pg_stmt *st, int i);

int store_pg_changes(struct store_pg *pg);
int64_t store_pg_last_insert_rowid(struct store_pg *pg);
int store_pg_get_autocommit(struct store_pg *pg);
const char *store_pg_errmsg(struct store_pg *pg);
int store_pg_errcode(struct store_pg *pg);
int store_pg_exec(struct store_pg *pg, const char *sql, int (*cb)(void *, int, char **, char **),
                  void *ud);

#endif
