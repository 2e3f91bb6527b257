/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/* Hand-written: the type of the compiled-in migrations table that
 * cmake/EmbedSchema.cmake generates (schema_gen.c in the build folder) from
 * schema/NNN_*.sql, and schema_pg_gen.c from schema/pg/NNN_*.sql; private to
 * the store (store_db.c, store_pg.c). */
#ifndef GIZ_MIGRATIONS_H
#define GIZ_MIGRATIONS_H
struct giz__migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct giz__migration giz__schema_migrations[];
extern const unsigned giz__schema_migration_count;
/* schema/pg/NNN_*.sql, the same versions for PostgreSQL (store_pg.c). */
extern const struct giz__migration giz__schema_pg_migrations[];
extern const unsigned giz__schema_pg_migration_count;
#endif
