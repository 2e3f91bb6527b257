/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private to the store: the SQLite-to-PostgreSQL statement translator of
 * store_pg_sql.c (see its header comment for the rules). Pure text work, no
 * connection: tests/unit/test_store_pg_sql.c checks it, including that every
 * statement of the store's table translates.
 */
#ifndef GIZ_STORE_PG_SQL_H
#define GIZ_STORE_PG_SQL_H

#include <stddef.h>

enum store_pg_sql_kind {
    PG_SQL_PLAIN = 0, /* run the text as is */
    PG_SQL_BEGIN = 1, /* BEGIN IMMEDIATE: BEGIN plus the store's write lock */
};

/* Translates SQLite text sql (len bytes, len < 0: up to its NUL) into
 * PostgreSQL text. On success returns 0 and sets *out (NUL-terminated,
 * malloc'd: the caller frees it), *nparams (the highest $N used) and *kind.
 * Returns -1 for out of memory and -2 for a statement no rule translates
 * (SQLite-only vocabulary without an override: why says what); *out is then
 * NULL. why (may be NULL) gets a short reason on failure. */
int store_pg_sql_translate(const char *sql, long len, char **out, int *nparams, int *kind,
                           char *why, size_t why_cap);

#endif
