/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/* The compiled-in migrations (generated schema_gen.c), private to the store. */
#ifndef GIZ_SCHEMA_GEN_H
#define GIZ_SCHEMA_GEN_H
struct giz__migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct giz__migration giz__schema_migrations[];
extern const unsigned giz__schema_migration_count;
#endif
