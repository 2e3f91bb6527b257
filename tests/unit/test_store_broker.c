/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The broker registry (schema 012, lib/store_broker.c): several named
 * brokers with liveness, the device -> broker assignment provision uses
 * (stable while the broker lives, least-loaded otherwise, recorded so every
 * connection answers the same), presence writes scoped to the broker that
 * holds a device, and the sweep that marks a dead broker's devices offline
 * once, with an event each, when two connections race for it. Runs on the
 * SQLite file of a temporary folder, or on GIZ_TEST_PG_URI when set.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "giz/store.h"
#include "test.h"

static char dir[256];
static char dbpath[1024];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct giz_store *open_as(const char *broker)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    ASSERT_EQ(giz_store_open(dbpath, &s, &err), GIZ_OK);
    if (s != NULL && broker != NULL) ASSERT_EQ(giz_store_set_broker(s, broker), GIZ_OK);
    return s;
}

/* Registers s's broker (pid, port) with its heartbeat at `at`. */
static void reg(struct giz_store *s, int64_t pid, unsigned port, int64_t at)
{
    struct giz_broker b;
    memset(&b, 0, sizeof b);
    b.pid = pid;
    snprintf(b.host, sizeof b.host, "127.0.0.%u", port % 250u + 1u);
    b.port = port;
    ASSERT_EQ(giz_store_broker_register(s, &b, at), GIZ_OK);
}

static void new_device(struct giz_store *s, const char *pk, unsigned i, char did[GIZ_DID_SIZE])
{
    struct giz_device d;
    char mac[13];
    bool created = false;
    snprintf(mac, sizeof mac, "A0B1C2%06X", i);
    ASSERT_EQ(giz_store_device_register(s, pk, mac, "passcode01", &d, &created), GIZ_OK);
    memcpy(did, d.did, GIZ_DID_SIZE);
}

static bool online(struct giz_store *s, const char *did)
{
    struct giz_device d;
    return giz_store_device_get(s, did, &d) == GIZ_OK && d.online;
}

struct names {
    char name[8][GIZ_BROKER_NAME_SIZE];
    bool alive[8];
    int64_t devices[8];
    unsigned n;
};

static int names_cb(const struct giz_broker *b, void *ud)
{
    struct names *n = ud;
    if (n->n < 8) {
        memcpy(n->name[n->n], b->name, GIZ_BROKER_NAME_SIZE);
        n->alive[n->n] = b->alive;
        n->devices[n->n++] = b->devices;
    }
    return 0;
}

static int count_events_cb(const struct giz_event *ev, void *ud)
{
    int *n = ud;
    if (strcmp(ev->kind, "disconnect") == 0 && strstr(ev->fields, "broker lost") != NULL) (*n)++;
    return 0;
}

static int lost_events(struct giz_store *s, const char *did)
{
    struct giz_event_query q;
    int n = 0;
    memset(&q, 0, sizeof q);
    q.did = did;
    q.limit = 100;
    ASSERT_EQ(giz_store_event_list(s, &q, count_events_cb, &n), GIZ_OK);
    return n;
}

TEST_CASE(registry)
{
    struct giz_store *a = open_as("b-one"), *b = open_as("b-two"), *r = open_as(NULL);
    struct giz_broker x;
    struct names n;
    bool alive = true, swept = true;
    int64_t t = now_ms();

    ASSERT_TRUE(!giz_broker_name_valid(""));
    ASSERT_TRUE(!giz_broker_name_valid("a b"));
    ASSERT_TRUE(!giz_broker_name_valid("a\"b"));
    ASSERT_TRUE(giz_broker_name_valid("host-1.example:1883"));
    ASSERT_EQ(giz_store_set_broker(r, "bad name"), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_store_broker_alive(r, 8000, &alive), GIZ_OK);
    ASSERT_TRUE(!alive);
    /* one alive, one silent for 20 s */
    reg(a, 100, 1883, t);
    reg(b, 200, 1884, t - 20000);
    ASSERT_EQ(giz_store_broker_alive(r, 8000, &alive), GIZ_OK);
    ASSERT_TRUE(alive);
    memset(&n, 0, sizeof n);
    ASSERT_EQ(giz_store_broker_list(r, 8000, names_cb, &n), GIZ_OK);
    ASSERT_EQ(n.n, 2u);
    ASSERT_STREQ(n.name[0], "b-one");
    ASSERT_TRUE(n.alive[0] && !n.alive[1]);
    ASSERT_EQ(giz_store_broker_find(r, "b-two", 8000, &x), GIZ_OK);
    ASSERT_EQ(x.port, 1884u);
    ASSERT_STREQ(x.host, "127.0.0.135");
    ASSERT_TRUE(!x.alive);
    ASSERT_EQ(giz_store_broker_find(r, "b-three", 8000, &x), GIZ_ERR_NOT_FOUND);
    /* a heartbeat with its device count; another pid's is refused */
    ASSERT_EQ(giz_store_broker_beat(b, 200, 7, t, &swept), GIZ_OK);
    ASSERT_TRUE(!swept);
    ASSERT_EQ(giz_store_broker_beat(b, 201, 7, t, NULL), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_broker_find(r, "b-two", 8000, &x), GIZ_OK);
    ASSERT_TRUE(x.alive);
    ASSERT_EQ(x.devices, 7);
    /* clean stop: not alive, beats refused until it registers again */
    ASSERT_EQ(giz_store_broker_stop(b, 200, t + 1), GIZ_OK);
    ASSERT_EQ(giz_store_broker_find(r, "b-two", 8000, &x), GIZ_OK);
    ASSERT_TRUE(x.stopped && !x.alive);
    ASSERT_EQ(giz_store_broker_beat(b, 200, 1, t + 2, NULL), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_broker_stop(a, 100, 0), GIZ_OK);
    giz_store_close(a);
    giz_store_close(b);
    giz_store_close(r);
}

TEST_CASE(assign)
{
    struct giz_store *a = open_as("as-a"), *b = open_as("as-b"), *g1 = open_as(NULL),
                     *g2 = open_as(NULL);
    struct giz_product p;
    struct giz_broker x, y;
    char did[6][GIZ_DID_SIZE], name[GIZ_BROKER_NAME_SIZE];
    unsigned on_a = 0, on_b = 0;
    int64_t t = now_ms(), at = 0;

    ASSERT_EQ(giz_store_product_create(g1, "assign", &p), GIZ_OK);
    for (unsigned i = 0; i < 6; i++)
        new_device(g1, p.product_key, 100 + i, did[i]);
    /* no live broker (the earlier case's are stopped or stale): nothing to answer */
    ASSERT_EQ(giz_store_device_broker_route(g1, did[0], 8000, true, &x), GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_device_broker(g1, did[0], name, NULL), GIZ_OK);
    ASSERT_STREQ(name, "");
    reg(a, 300, 2883, t);
    reg(b, 400, 2884, t);
    /* six new devices over two GService connections spread 3 / 3 */
    for (unsigned i = 0; i < 6; i++) {
        ASSERT_EQ(giz_store_device_broker_route(i % 2 ? g2 : g1, did[i], 8000, true, &x), GIZ_OK);
        ASSERT_TRUE(x.alive);
        if (strcmp(x.name, "as-a") == 0) on_a++;
        if (strcmp(x.name, "as-b") == 0) on_b++;
    }
    ASSERT_EQ(on_a, 3u);
    ASSERT_EQ(on_b, 3u);
    /* stable: every connection answers the recorded broker, reading does not move it */
    ASSERT_EQ(giz_store_device_broker_route(g1, did[0], 8000, true, &x), GIZ_OK);
    ASSERT_EQ(giz_store_device_broker_route(g2, did[0], 8000, false, &y), GIZ_OK);
    ASSERT_STREQ(x.name, y.name);
    ASSERT_EQ(giz_store_device_broker(g2, did[0], name, &at), GIZ_OK);
    ASSERT_STREQ(name, x.name);
    ASSERT_TRUE(at >= t);
    ASSERT_EQ(x.port, strcmp(x.name, "as-a") == 0 ? 2883u : 2884u);
    /* its broker dies: the next provision moves it to the live one and records that */
    struct giz_store *dead = strcmp(x.name, "as-a") == 0 ? a : b;
    const char *other = dead == a ? "as-b" : "as-a";
    reg(dead, dead == a ? 300 : 400, dead == a ? 2883 : 2884, t - 60000);
    ASSERT_EQ(giz_store_device_broker_route(g2, did[0], 8000, false, &y), GIZ_OK);
    ASSERT_STREQ(y.name, other); /* a read answers the live one ... */
    ASSERT_EQ(giz_store_device_broker(g1, did[0], name, NULL), GIZ_OK);
    ASSERT_TRUE(strcmp(name, other) != 0); /* ... without recording it */
    ASSERT_EQ(giz_store_device_broker_route(g2, did[0], 8000, true, &y), GIZ_OK);
    ASSERT_STREQ(y.name, other);
    ASSERT_EQ(giz_store_device_broker(g1, did[0], name, NULL), GIZ_OK);
    ASSERT_STREQ(name, other);
    /* unknown device */
    ASSERT_EQ(giz_store_device_broker_route(g1, "AAAAAAAAAAAAAAAAAAAAAA", 8000, true, &x),
              GIZ_ERR_NOT_FOUND);
    ASSERT_EQ(giz_store_broker_stop(a, 300, 0), GIZ_OK);
    ASSERT_EQ(giz_store_broker_stop(b, 400, 0), GIZ_OK);
    giz_store_close(a);
    giz_store_close(b);
    giz_store_close(g1);
    giz_store_close(g2);
}

TEST_CASE(presence_scoped)
{
    struct giz_store *a = open_as("pr-a"), *b = open_as("pr-b"), *g = open_as(NULL);
    struct giz_product p;
    char d1[GIZ_DID_SIZE], d2[GIZ_DID_SIZE], name[GIZ_BROKER_NAME_SIZE];
    int64_t t = now_ms();

    ASSERT_EQ(giz_store_product_create(g, "scoped", &p), GIZ_OK);
    new_device(g, p.product_key, 200, d1);
    new_device(g, p.product_key, 201, d2);
    reg(a, 500, 3883, t);
    reg(b, 600, 3884, t);
    /* d1 logs in on A, then moves to B; A's late offline write leaves it online */
    ASSERT_EQ(giz_store_device_set_online(a, d1, true, 10), GIZ_OK);
    ASSERT_EQ(giz_store_device_broker(g, d1, name, NULL), GIZ_OK);
    ASSERT_STREQ(name, "pr-a");
    ASSERT_EQ(giz_store_device_set_online(b, d1, true, 11), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(a, d1, false, 12), GIZ_ERR_NOT_FOUND);
    ASSERT_TRUE(online(g, d1));
    ASSERT_EQ(giz_store_device_broker(g, d1, name, NULL), GIZ_OK);
    ASSERT_STREQ(name, "pr-b");
    /* A restarting marks only its own devices offline */
    ASSERT_EQ(giz_store_device_set_online(a, d2, true, 13), GIZ_OK);
    ASSERT_EQ(giz_store_device_all_offline(a), GIZ_OK);
    ASSERT_TRUE(online(g, d1));
    ASSERT_TRUE(!online(g, d2));
    ASSERT_EQ(giz_store_device_set_online(b, d1, false, 14), GIZ_OK);
    ASSERT_TRUE(!online(g, d1));
    ASSERT_EQ(giz_store_broker_stop(a, 500, 0), GIZ_OK);
    ASSERT_EQ(giz_store_broker_stop(b, 600, 0), GIZ_OK);
    giz_store_close(a);
    giz_store_close(b);
    giz_store_close(g);
}

TEST_CASE(sweep)
{
    struct giz_store *a = open_as("sw-a"), *b = open_as("sw-b"), *g1 = open_as(NULL),
                     *g2 = open_as(NULL);
    struct giz_product p;
    struct giz_broker x;
    char d[3][GIZ_DID_SIZE];
    int64_t t = now_ms(), n1 = -1, n2 = -1;
    bool swept = false;

    ASSERT_EQ(giz_store_product_create(g1, "sweep", &p), GIZ_OK);
    for (unsigned i = 0; i < 3; i++)
        new_device(g1, p.product_key, 300 + i, d[i]);
    reg(a, 700, 4883, t);
    reg(b, 800, 4884, t);
    ASSERT_EQ(giz_store_device_set_online(a, d[0], true, 1), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(a, d[1], true, 1), GIZ_OK);
    ASSERT_EQ(giz_store_device_set_online(b, d[2], true, 1), GIZ_OK);
    /* nobody stale yet */
    ASSERT_EQ(giz_store_broker_sweep(g1, 8000, &n1), GIZ_OK);
    ASSERT_EQ(n1, 0);
    /* A's heartbeat goes stale (20 s): the first sweeper marks its two devices
     * offline with an event each, the second finds nothing left to do */
    ASSERT_EQ(giz_store_broker_beat(a, 700, 2, t - 20000, NULL), GIZ_OK);
    ASSERT_EQ(giz_store_broker_sweep(g1, 8000, &n1), GIZ_OK);
    ASSERT_EQ(giz_store_broker_sweep(g2, 8000, &n2), GIZ_OK);
    ASSERT_EQ(n1, 2);
    ASSERT_EQ(n2, 0);
    ASSERT_TRUE(!online(g2, d[0]) && !online(g2, d[1]) && online(g2, d[2]));
    ASSERT_EQ(lost_events(g2, d[0]), 1);
    ASSERT_EQ(lost_events(g2, d[1]), 1);
    ASSERT_EQ(lost_events(g2, d[2]), 0);
    ASSERT_EQ(giz_store_broker_find(g2, "sw-a", 8000, &x), GIZ_OK);
    ASSERT_TRUE(x.swept_at_ms > 0);
    /* a swept broker that was only slow learns it from its next heartbeat */
    ASSERT_EQ(giz_store_broker_beat(a, 700, 2, 0, &swept), GIZ_OK);
    ASSERT_TRUE(swept);
    ASSERT_EQ(giz_store_broker_beat(a, 700, 2, 0, &swept), GIZ_OK);
    ASSERT_TRUE(!swept);
    ASSERT_EQ(giz_store_broker_find(g2, "sw-a", 8000, &x), GIZ_OK);
    ASSERT_EQ(x.swept_at_ms, 0);
    ASSERT_EQ(giz_store_broker_stop(a, 700, 0), GIZ_OK);
    ASSERT_EQ(giz_store_broker_stop(b, 800, 0), GIZ_OK);
    /* a cleanly stopped broker is not swept (its plugin marked its devices) */
    ASSERT_EQ(giz_store_broker_sweep(g1, 0, &n1), GIZ_OK);
    ASSERT_EQ(n1, 0);
    ASSERT_TRUE(online(g2, d[2]));
    giz_store_close(a);
    giz_store_close(b);
    giz_store_close(g1);
    giz_store_close(g2);
}

TEST_LIST(TEST_ENTRY(registry), TEST_ENTRY(assign), TEST_ENTRY(presence_scoped), TEST_ENTRY(sweep));

static bool on_pg;

static void setup(void)
{
    const char *uri = getenv("GIZ_TEST_PG_URI");
    if (uri != NULL && uri[0] != '\0') { /* a fresh database per run is the caller's */
        snprintf(dbpath, sizeof dbpath, "%s", uri);
        on_pg = true;
        return;
    }
    snprintf(dir, sizeof dir, "/tmp/giz_test_broker_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(dbpath, sizeof dbpath, "%s/brokers.db", dir);
}

static void teardown(void)
{
    char p[1100];
    if (on_pg) return;
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s/passcode.key", dir);
    unlink(p);
    rmdir(dir);
}

TEST_MAIN_WITH(setup, teardown)
