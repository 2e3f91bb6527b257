/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The data-point part of the store (schema 007, lib/store_datapoint.c): a
 * product's schema JSON stored and replaced, unknown products and devices
 * refused, full reports replacing and partial ones merging into the
 * device's state, malformed reports recorded without touching attrs.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "giz/store.h"
#include "test.h"

static char dir[256];
static char dbpath[600];

struct state_copy {
    int calls;
    char attrs[512];
    char err[128];
    char hex[128];
    int64_t updated_at, reports, malformed_at, malformed_count;
};

static int copy_cb(const struct giz_device_state *st, void *ud)
{
    struct state_copy *c = ud;

    c->calls++;
    snprintf(c->attrs, sizeof c->attrs, "%s", st->attrs);
    snprintf(c->err, sizeof c->err, "%s", st->malformed_error);
    snprintf(c->hex, sizeof c->hex, "%s", st->malformed_hex);
    c->updated_at = st->updated_at;
    c->reports = st->reports;
    c->malformed_at = st->malformed_at;
    c->malformed_count = st->malformed_count;
    return 0;
}

static struct giz_store *open_db(void)
{
    struct giz_store *s = NULL;
    struct giz_error err;

    ASSERT_EQ(giz_store_open(dbpath, &s, &err), GIZ_OK);
    return s;
}

TEST_CASE(schema_put_get)
{
    struct giz_store *s = open_db();
    struct giz_product p;
    char *json = NULL;
    size_t len = 0;
    int64_t at = 0;

    ASSERT_EQ(giz_store_product_create(s, "lamp", &p), GIZ_OK);
    ASSERT_EQ(giz_store_datapoints_get(s, p.product_key, &json, &len, &at), GIZ_ERR_NOT_FOUND);
    ASSERT_TRUE(json == NULL);
    ASSERT_EQ(giz_store_datapoints_put(s, p.product_key, "{\"a\":1}", 7, 100), GIZ_OK);
    ASSERT_EQ(giz_store_datapoints_put(s, p.product_key, "{\"b\":2}", 7, 200), GIZ_OK);
    ASSERT_EQ(giz_store_datapoints_get(s, p.product_key, &json, &len, &at), GIZ_OK);
    ASSERT_STREQ(json, "{\"b\":2}");
    ASSERT_EQ(len, 7);
    ASSERT_EQ(at, 200);
    free(json);
    ASSERT_EQ(giz_store_datapoints_put(s, "0123456789abcdef0123456789abcdef", "{}", 2, 1),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_datapoints_put(s, p.product_key, "{}", GIZ_DATAPOINTS_MAX_JSON + 1, 1),
              GIZ_ERR_OVERSIZE);
    ASSERT_EQ(giz_store_datapoints_put(s, p.product_key, NULL, 0, 1), GIZ_ERR_INVAL);
    giz_store_close(s);
}

TEST_CASE(state_report_merge_malformed)
{
    struct giz_store *s = open_db();
    struct giz_product p;
    struct giz_device d;
    struct state_copy c;
    bool created = false;

    ASSERT_EQ(giz_store_product_create(s, "lamp2", &p), GIZ_OK);
    ASSERT_EQ(giz_store_device_register(s, p.product_key, "A0B1C2D3E4F5", "pass1", &d, &created),
              GIZ_OK);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_device_state_get(s, d.did, copy_cb, &c), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(c.calls, 0);
    ASSERT_EQ(giz_store_device_state_report(s, d.did, "{\"on\":true,\"level\":3}", true, 1000),
              GIZ_OK);
    ASSERT_EQ(giz_store_device_state_report(s, d.did, "{\"level\":7}", false, 2000), GIZ_OK);
    ASSERT_EQ(giz_store_device_state_get(s, d.did, copy_cb, &c), GIZ_OK);
    ASSERT_EQ(c.calls, 1);
    ASSERT_STREQ(c.attrs, "{\"on\":true,\"level\":7}");
    ASSERT_EQ(c.updated_at, 2000);
    ASSERT_EQ(c.reports, 2);
    ASSERT_EQ(c.malformed_count, 0);
    /* a malformed report leaves attrs alone */
    ASSERT_EQ(giz_store_device_state_malformed(s, d.did, "TRUNCATED at 3: short", "0400", 3000),
              GIZ_OK);
    /* a full report replaces */
    ASSERT_EQ(giz_store_device_state_report(s, d.did, "{\"on\":false}", true, 4000), GIZ_OK);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(giz_store_device_state_get(s, d.did, copy_cb, &c), GIZ_OK);
    ASSERT_STREQ(c.attrs, "{\"on\":false}");
    ASSERT_STREQ(c.err, "TRUNCATED at 3: short");
    ASSERT_STREQ(c.hex, "0400");
    ASSERT_EQ(c.malformed_at, 3000);
    ASSERT_EQ(c.malformed_count, 1);
    ASSERT_EQ(c.reports, 3);
    /* unknown device, not an object */
    ASSERT_EQ(giz_store_device_state_report(s, "AAAAAAAAAAAAAAAAAAAAAA", "{}", true, 1),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_state_malformed(s, "AAAAAAAAAAAAAAAAAAAAAA", "x", "", 1),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_state_report(s, d.did, "[1]", true, 1), GIZ_ERR_INVAL);
    giz_store_close(s);
}

TEST_LIST(TEST_ENTRY(schema_put_get), TEST_ENTRY(state_report_merge_malformed));

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/giz_test_dp_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(dbpath, sizeof dbpath, "%s/dp.db", dir);
    /* unit_store_datapoint_pg.<case>: one fresh PostgreSQL server per case */
    if (getenv("GIZ_TEST_PG_URI") && getenv("GIZ_TEST_PG_URI")[0]) {
        snprintf(dbpath, sizeof dbpath, "%s", getenv("GIZ_TEST_PG_URI"));
        fprintf(stderr, "store on PostgreSQL (GIZ_TEST_PG_URI)\n");
    }
}

static void teardown(void)
{
    char p[640];

    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
    rmdir(dir);
}

TEST_MAIN_WITH(setup, teardown)
