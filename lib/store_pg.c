/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/* Placeholder until the libpq backend lands: PostgreSQL URIs are refused. */
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"
#include "store_pg.h"

bool store_pg_is_conninfo(const char *path)
{
    return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

int store_pg_open(struct giz_store *s, const char *conninfo, struct giz_error *err)
{
    (void)s;
    (void)conninfo;
    store__set_err(err, GIZ_ERR_DB, "this build has no PostgreSQL backend");
    return GIZ_ERR_DB;
}

void store_pg_close(struct store_pg *pg)
{
    (void)pg;
}
int store_pg_prepare(struct store_pg *pg, const char *sql, int n, struct store_pg_stmt **out)
{
    (void)pg;
    (void)sql;
    (void)n;
    *out = NULL;
    return SQLITE_MISUSE;
}
int store_pg_step(struct store_pg_stmt *st)
{
    (void)st;
    return SQLITE_MISUSE;
}
int store_pg_reset(struct store_pg_stmt *st)
{
    (void)st;
    return SQLITE_MISUSE;
}
int store_pg_clear_bindings(struct store_pg_stmt *st)
{
    (void)st;
    return SQLITE_MISUSE;
}
void store_pg_finalize(struct store_pg_stmt *st)
{
    (void)st;
}
int store_pg_busy(struct store_pg_stmt *st)
{
    (void)st;
    return 0;
}
int store_pg_bind(struct store_pg_stmt *st, int i, int type, const void *v, int n)
{
    (void)st;
    (void)i;
    (void)type;
    (void)v;
    (void)n;
    return SQLITE_MISUSE;
}
int store_pg_bind_int64(struct store_pg_stmt *st, int i, int64_t v)
{
    (void)st;
    (void)i;
    (void)v;
    return SQLITE_MISUSE;
}
int store_pg_param_count(struct store_pg_stmt *st)
{
    (void)st;
    return 0;
}
int64_t store_pg_column_int64(struct store_pg_stmt *st, int i)
{
    (void)st;
    (void)i;
    return 0;
}
const unsigned char *store_pg_column_text(struct store_pg_stmt *st, int i)
{
    (void)st;
    (void)i;
    return NULL;
}
const void *store_pg_column_blob(struct store_pg_stmt *st, int i)
{
    (void)st;
    (void)i;
    return NULL;
}
int store_pg_column_bytes(struct store_pg_stmt *st, int i)
{
    (void)st;
    (void)i;
    return 0;
}
int store_pg_column_type(struct store_pg_stmt *st, int i)
{
    (void)st;
    (void)i;
    return SQLITE_NULL;
}
int store_pg_changes(struct store_pg *pg)
{
    (void)pg;
    return 0;
}
int64_t store_pg_last_insert_rowid(struct store_pg *pg)
{
    (void)pg;
    return 0;
}
int store_pg_get_autocommit(struct store_pg *pg)
{
    (void)pg;
    return 1;
}
const char *store_pg_errmsg(struct store_pg *pg)
{
    (void)pg;
    return "no PostgreSQL backend";
}
int store_pg_errcode(struct store_pg *pg)
{
    (void)pg;
    return SQLITE_MISUSE;
}
int store_pg_exec(struct store_pg *pg, const char *sql, int (*cb)(void *, int, char **, char **),
                  void *ud)
{
    (void)pg;
    (void)sql;
    (void)cb;
    (void)ud;
    return SQLITE_MISUSE;
}
