/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Products: create (random key and secret) or import (given keys, stored
 * lowercase), read one, list all.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "giz/crypto.h"

/* ---- products ------------------------------------------------------------ */

static void read_product(sq_stmt *st, struct giz_product *p)
{
    memset(p, 0, sizeof *p);
    store__col_text(st, 0, p->product_key, sizeof p->product_key);
    store__col_text(st, 1, p->product_secret, sizeof p->product_secret);
    store__col_text(st, 2, p->name, sizeof p->name);
    p->created_at = sq_column_int64(st, 3);
}

/* Inserts a filled product row; GIZ_ERR_EXISTS if the key is taken. */
static int product_insert(struct giz_store *s, const struct giz_product *p)
{
    sq_stmt *st = s->st[ST_PRODUCT_INSERT];
    int rc = GIZ_OK, src;

    store__bind_text(s, st, 1, p->product_key);
    store__bind_text(s, st, 2, p->product_secret);
    store__bind_text(s, st, 3, p->name);
    store__bind_int(s, st, 4, p->created_at);
    src = store__step(s, st);
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = GIZ_ERR_EXISTS;
    else if (src != SQLITE_DONE)
        rc = store__db_err(s, src, "inserting product");
    store__reset(s, st);
    return rc;
}

/* Copies a 32-hex-digit key into out (lowercased); false if malformed. */
static bool store__product_key_norm(const char *in, char out[GIZ_PK_SIZE])
{
    if (!in || strlen(in) != GIZ_PK_SIZE - 1) return false;
    for (size_t i = 0; i < GIZ_PK_SIZE - 1; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        out[i] = c;
    }
    out[GIZ_PK_SIZE - 1] = '\0';
    return true;
}

int giz_store_product_create(struct giz_store *s, const char *name, struct giz_product *out)
{
    return giz_store_product_import(s, name, NULL, NULL, out);
}

int giz_store_product_import(struct giz_store *s, const char *name, const char *product_key,
                             const char *product_secret, struct giz_product *out)
{
    struct giz_product p;
    int rc = GIZ_OK;

    if (!s || !name || !out || name[0] == '\0' || strlen(name) >= GIZ_NAME_SIZE)
        return GIZ_ERR_INVAL;
    memset(&p, 0, sizeof p);
    if (product_key) {
        if (!store__product_key_norm(product_key, p.product_key)) return GIZ_ERR_INVAL;
    } else {
        rc = giz_random_hex(p.product_key, sizeof p.product_key, 16);
    }
    if (rc == GIZ_OK && product_secret) {
        if (!store__product_key_norm(product_secret, p.product_secret)) return GIZ_ERR_INVAL;
    } else if (rc == GIZ_OK) {
        rc = giz_random_hex(p.product_secret, sizeof p.product_secret, 16);
    }
    if (rc) return rc;
    memcpy(p.name, name, strlen(name) + 1);
    p.created_at = store__now_s();
    rc = product_insert(s, &p);
    if (rc == GIZ_OK) *out = p;
    return rc;
}

int giz_store_product_get(struct giz_store *s, const char *product_key, struct giz_product *out)
{
    sq_stmt *st;
    int src;

    if (!s || !product_key || !out) return GIZ_ERR_INVAL;
    st = s->st[ST_PRODUCT_GET];
    store__bind_text(s, st, 1, product_key);
    src = store__step(s, st);
    if (src == SQLITE_ROW) read_product(st, out);
    return store__row_end(s, st, src, "reading product");
}

int giz_store_product_list(struct giz_store *s, giz_store_product_cb cb, void *ud)
{
    struct giz_product p;
    sq_stmt *st;
    int src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_PRODUCT_LIST];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        read_product(st, &p);
        if (cb(&p, ud)) break;
    }
    return store__list_end(s, st, src, "listing products");
}

int giz_store_product_page(struct giz_store *s, unsigned limit, unsigned offset,
                           giz_store_product_cb cb, void *ud)
{
    struct giz_product p;
    sq_stmt *st;
    int src;

    if (!s || !cb) return GIZ_ERR_INVAL;
    st = s->st[ST_PRODUCT_PAGE];
    if (store__list_guard(s, st)) return GIZ_ERR_INVAL;
    store__bind_int(s, st, 1, limit ? (int64_t)limit : -1);
    store__bind_int(s, st, 2, offset);
    while ((src = store__step(s, st)) == SQLITE_ROW) {
        read_product(st, &p);
        if (cb(&p, ud)) break;
    }
    return store__list_end(s, st, src, "listing products");
}

int giz_store_product_count(struct giz_store *s, int64_t *count)
{
    if (!s || !count) return GIZ_ERR_INVAL;
    return store__count(s, s->st[ST_PRODUCT_COUNT], "counting products", count);
}
