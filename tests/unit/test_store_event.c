/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the events timeline in the store (lib/store_event.c) on a
 * real SQLite file in a fresh temp directory (or, with GIZ_TEST_PG_URI, on
 * PostgreSQL, the schema dropped before each case): batched appends (all or
 * nothing), lists by device, cursor, time and kind (oldest first) with the
 * merged JSON, ids never reused, the per-device and total retention caps
 * with their drop counters, the prune visiting only touched devices, and
 * two connections (the GService and the broker) writing one table.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "giz/store.h"
#include "test.h"

static char dir[256];
static char dbpath[600];
static bool on_pg; /* GIZ_TEST_PG_URI: the store on PostgreSQL (unit_store_event_pg.<case>) */

static struct giz_store *open_db(void)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    int rc = giz_store_open(dbpath, &s, &err);
    ASSERT_EQ(rc, GIZ_OK);
    return s;
}

static struct giz_event mk(const char *did, int64_t ts, const char *kind, const char *src,
                           const char *fields)
{
    struct giz_event e;
    memset(&e, 0, sizeof e);
    snprintf(e.did, sizeof e.did, "%s", did);
    e.ts = ts;
    snprintf(e.kind, sizeof e.kind, "%s", kind);
    e.source = src;
    e.fields = fields;
    return e;
}

struct collect {
    int n;
    int64_t ids[64];
    char kinds[64][GIZ_EVENT_KIND_SIZE];
    char json[64][256];
};

static int collect_cb(const struct giz_event *ev, void *ud)
{
    struct collect *c = ud;
    if (c->n >= 64) return 1;
    c->ids[c->n] = ev->id;
    snprintf(c->kinds[c->n], sizeof c->kinds[0], "%s", ev->kind);
    snprintf(c->json[c->n], sizeof c->json[0], "%s", ev->json);
    c->n++;
    return 0;
}

static int list(struct giz_store *s, const char *did, int64_t after, int64_t since,
                const char *kind, unsigned limit, struct collect *c)
{
    struct giz_event_query q = {did, after, since, kind, limit};
    memset(c, 0, sizeof *c);
    return giz_store_event_list(s, &q, collect_cb, c);
}

/* An empty database: the file removed, or (PostgreSQL) the schema dropped. */
static void fresh(void)
{
    if (on_pg) {
        PGconn *c = PQconnectdb(dbpath);
        PGresult *r = PQexec(c, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(c);
        return;
    }
    unlink(dbpath);
    char p[640];
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
}

TEST_CASE(append_list)
{
    fresh();
    struct giz_store *s = open_db();
    struct giz_event b[3] = {
        mk("AAAAAAAAAAAAAAAAAAAAA1", 1000, "register", "http", "{\"status\":201}"),
        mk("AAAAAAAAAAAAAAAAAAAAA1", 2000, "provision", "http", NULL),
        mk("BBBBBBBBBBBBBBBBBBBBB2", 3000, "connect", "mqtt", "{\"keepalive\":120}"),
    };
    int64_t last = 0, top = -1;
    struct collect c;
    ASSERT_EQ(giz_store_event_append(s, b, 3, &last), GIZ_OK);
    ASSERT_TRUE(last > 0);
    ASSERT_EQ(giz_store_event_last_id(s, &top), GIZ_OK);
    ASSERT_EQ(top, last);

    ASSERT_EQ(list(s, "AAAAAAAAAAAAAAAAAAAAA1", 0, -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);
    ASSERT_STREQ(c.kinds[0], "register");
    ASSERT_STREQ(c.kinds[1], "provision");
    ASSERT_TRUE(c.ids[0] < c.ids[1]);
    ASSERT_TRUE(strstr(c.json[0], "\"status\":201") != NULL);
    ASSERT_TRUE(strstr(c.json[0], "\"kind\":\"register\"") != NULL);
    ASSERT_TRUE(strstr(c.json[0], "\"ts\":1000") != NULL);
    ASSERT_TRUE(strstr(c.json[1], "\"source\":\"http\"") != NULL);

    /* all devices after a cursor; time and kind filters; limit */
    ASSERT_EQ(list(s, NULL, c.ids[0], -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);
    ASSERT_STREQ(c.kinds[1], "connect");
    ASSERT_EQ(list(s, NULL, 0, 2000, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 2);
    ASSERT_STREQ(c.kinds[0], "provision");
    ASSERT_EQ(list(s, NULL, 0, -1, "connect", 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    ASSERT_EQ(list(s, NULL, 0, -1, NULL, 1, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    ASSERT_STREQ(c.kinds[0], "register");
    ASSERT_EQ(list(s, "CCCCCCCCCCCCCCCCCCCCC3", 0, -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 0);
    giz_store_close(s);
}

TEST_CASE(append_refuses_whole_batch)
{
    fresh();
    struct giz_store *s = open_db();
    char big[GIZ_EVENT_FIELDS_MAX + 8];
    struct collect c;
    memset(big, 'x', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    struct giz_event b[2] = {mk("D1", 1, "register", "http", NULL),
                             mk("D1", 2, "register", "ftp", NULL)};
    ASSERT_EQ(giz_store_event_append(s, b, 2, NULL), GIZ_ERR_INVAL);
    b[1] = mk("D1", 2, "register", "http", "not json");
    ASSERT_EQ(giz_store_event_append(s, b, 2, NULL), GIZ_ERR_INVAL);
    b[1] = mk("D1", 2, "", "http", NULL);
    ASSERT_EQ(giz_store_event_append(s, b, 2, NULL), GIZ_ERR_INVAL);
    b[1] = mk("D1", 2, "register", "http", big);
    ASSERT_EQ(giz_store_event_append(s, b, 2, NULL), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(list(s, NULL, 0, -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 0);
    ASSERT_EQ(giz_store_event_append(s, NULL, 0, NULL), GIZ_OK);
    struct giz_event_query q = {NULL, -1, -1, NULL, 0};
    ASSERT_EQ(giz_store_event_list(s, &q, collect_cb, &c), GIZ_ERR_INVAL);
    giz_store_close(s);
}

TEST_CASE(prune_per_device)
{
    fresh();
    struct giz_store *s = open_db();
    struct giz_event b[20];
    struct collect c;
    int64_t pruned = -1, dropped = -1, last = 0, top = 0;
    for (int i = 0; i < 10; i++)
        b[i] = mk("DEV_A", i, "publish_in", i % 2 ? "mqtt" : "http", NULL);
    for (int i = 10; i < 13; i++)
        b[i] = mk("DEV_B", i, "register", "http", NULL);
    ASSERT_EQ(giz_store_event_append(s, b, 13, &last), GIZ_OK);
    ASSERT_EQ(giz_store_event_prune(s, 4, 0, &pruned), GIZ_OK);
    ASSERT_EQ(pruned, 6);
    ASSERT_EQ(list(s, "DEV_A", 0, -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 4);
    ASSERT_TRUE(strstr(c.json[0], "\"ts\":6") != NULL); /* the newest 4 kept */
    ASSERT_EQ(list(s, "DEV_B", 0, -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 3);
    ASSERT_EQ(giz_store_event_dropped(s, "DEV_A", NULL, &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 6);
    ASSERT_EQ(giz_store_event_dropped(s, "DEV_A", "mqtt", &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 3);
    ASSERT_EQ(giz_store_event_dropped(s, "DEV_B", NULL, &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 0);
    /* nothing new: nothing visited, nothing pruned */
    ASSERT_EQ(giz_store_event_prune(s, 4, 0, &pruned), GIZ_OK);
    ASSERT_EQ(pruned, 0);
    /* only DEV_B touched: DEV_A is over a smaller cap now but the same cap is
     * kept, so a new cap re-visits everybody */
    b[0] = mk("DEV_B", 99, "register", "http", NULL);
    ASSERT_EQ(giz_store_event_append(s, b, 1, NULL), GIZ_OK);
    ASSERT_EQ(giz_store_event_prune(s, 4, 0, &pruned), GIZ_OK);
    ASSERT_EQ(pruned, 0);
    ASSERT_EQ(giz_store_event_prune(s, 2, 0, &pruned), GIZ_OK);
    ASSERT_EQ(pruned, 4); /* A: 4 -> 2, B: 4 -> 2 */
    /* ids are never reused after the newest rows are gone */
    ASSERT_EQ(giz_store_event_last_id(s, &top), GIZ_OK);
    ASSERT_EQ(top, last + 1);
    giz_store_close(s);
}

TEST_CASE(prune_total_and_fold)
{
    fresh();
    struct giz_store *s = open_db();
    struct giz_event b[30];
    struct collect c;
    int64_t pruned = -1, dropped = -1;
    char did[16];
    for (int i = 0; i < 30; i++) {
        snprintf(did, sizeof did, "DEV_%02d", i / 3); /* 10 devices, 3 each */
        b[i] = mk(did, i, "ota_check", "http", NULL);
    }
    ASSERT_EQ(giz_store_event_append(s, b, 30, NULL), GIZ_OK);
    ASSERT_EQ(giz_store_event_prune(s, 100, 10, &pruned), GIZ_OK);
    ASSERT_EQ(pruned, 20);
    ASSERT_EQ(list(s, NULL, 0, -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 10);
    ASSERT_TRUE(strstr(c.json[0], "\"ts\":20") != NULL);
    /* every drop is still counted, in total */
    ASSERT_EQ(giz_store_event_dropped(s, NULL, NULL, &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 20);
    /* DEV_06 lost 2 of 3 and keeps its own counter; DEV_00 (no events left)
     * was folded into '*' */
    ASSERT_EQ(giz_store_event_dropped(s, "DEV_06", NULL, &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 2);
    ASSERT_EQ(giz_store_event_dropped(s, "DEV_00", NULL, &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 0);
    ASSERT_EQ(giz_store_event_dropped(s, "*", NULL, &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 18);
    /* queue drops */
    ASSERT_EQ(giz_store_event_count_dropped(s, "DEV_09", "mqtt", 5), GIZ_OK);
    ASSERT_EQ(giz_store_event_dropped(s, "DEV_09", "mqtt", &dropped), GIZ_OK);
    ASSERT_EQ(dropped, 5);
    ASSERT_EQ(giz_store_event_count_dropped(s, "DEV_09", "smtp", 5), GIZ_ERR_INVAL);
    giz_store_close(s);
}

TEST_CASE(two_connections)
{
    fresh();
    struct giz_store *g = open_db(), *b = open_db();
    struct giz_event e1 = mk("DEV_X", 1, "download", "http", "{\"bytes\":10}");
    struct giz_event e2 = mk("DEV_X", 2, "connect", "mqtt", NULL);
    struct collect c;
    int64_t id1 = 0, id2 = 0;
    ASSERT_EQ(giz_store_event_append(g, &e1, 1, &id1), GIZ_OK);
    ASSERT_EQ(giz_store_event_append(b, &e2, 1, &id2), GIZ_OK);
    ASSERT_TRUE(id2 > id1);
    /* the stream's view: the other process's event appears after the cursor */
    ASSERT_EQ(list(g, NULL, id1, -1, NULL, 0, &c), GIZ_OK);
    ASSERT_EQ(c.n, 1);
    ASSERT_EQ(c.ids[0], id2);
    ASSERT_STREQ(c.kinds[0], "connect");
    giz_store_close(b);
    giz_store_close(g);
}

TEST_LIST(TEST_ENTRY(append_list), TEST_ENTRY(append_refuses_whole_batch),
          TEST_ENTRY(prune_per_device), TEST_ENTRY(prune_total_and_fold),
          TEST_ENTRY(two_connections));

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/giz_test_event_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(dbpath, sizeof dbpath, "%s/events.db", dir);
    if (getenv("GIZ_TEST_PG_URI") && getenv("GIZ_TEST_PG_URI")[0]) {
        snprintf(dbpath, sizeof dbpath, "%s", getenv("GIZ_TEST_PG_URI"));
        on_pg = true;
        fprintf(stderr, "store on PostgreSQL (GIZ_TEST_PG_URI)\n");
    }
}

static void teardown(void)
{
    fresh();
    rmdir(dir);
}

TEST_MAIN_WITH(setup, teardown)
