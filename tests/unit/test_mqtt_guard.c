/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the per-connection MQTT guard (lib/mqtt_guard.c), driven the
 * way the broker's read interposition drives it: a fake socket delivers the
 * client's bytes in chosen pieces, a fake broker reads with chosen sizes
 * (1 byte, as mosquitto reads fixed headers, or large), and a fake clock
 * moves the PINGREQ window. Covers every split point of a CONNECT (and every
 * pair of split points), the keepalive clamp, coalesced packets, the
 * remaining-length edge cases and the exact ping window.
 */
#include <errno.h>
#include <stdlib.h>

#include "giz/mqtt.h"
#include "giz/mqtt_guard.h"
#include "test.h"

static uint64_t fake_now;
static uint64_t clock_cb(void *ud)
{
    (void)ud;
    return fake_now;
}

static struct giz_guard_limits limits(void)
{
    struct giz_guard_limits l = {180, 180000, 600, 307200, clock_cb, NULL};
    return l;
}

/* The client's bytes; `arrived` of them are in the socket so far. */
struct fake_sock {
    const uint8_t *data;
    size_t len, arrived, pos;
    size_t max_pos_gather; /* furthest position read while the guard gathered */
    struct giz_guard *g;
};

static ssize_t sock_read(void *ud, void *buf, size_t count)
{
    struct fake_sock *s = ud;
    size_t n = s->arrived - s->pos;
    if (n == 0) {
        if (s->arrived == s->len && s->len > 0 && s->pos == s->len) return 0;
        errno = EAGAIN;
        return -1;
    }
    if (n > count) n = count;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    if (s->g->gathering && s->pos > s->max_pos_gather) s->max_pos_gather = s->pos;
    return (ssize_t)n;
}

/* The broker: reads with `rsize` until EAGAIN (or a close / EOF), appending
 * to out. Returns the verdict seen (PASS if none). */
static enum giz_guard_verdict broker_drain(struct fake_sock *s, const struct giz_guard_limits *l,
                                           size_t rsize, uint8_t *out, size_t *out_len, size_t cap)
{
    for (int guard = 0; guard < 1000000; guard++) {
        enum giz_guard_verdict v;
        size_t room = cap - *out_len;
        ssize_t r;
        if (room == 0) return GIZ_GUARD_PASS;
        r = giz_guard_read(s->g, l, out + *out_len, rsize < room ? rsize : room, sock_read, s, &v,
                           NULL);
        if (r > 0) *out_len += (size_t)r;
        if (v != GIZ_GUARD_PASS) return v;
        if (r <= 0) return GIZ_GUARD_PASS;
    }
    return GIZ_GUARD_PASS;
}

static size_t connect_bytes(uint8_t *buf, size_t cap, uint16_t keepalive, uint8_t level)
{
    struct giz_mqtt_connect_opts o = {
        "GdzuSRncfDPGHGo2LxwgM2", "GdzuSRncfDPGHGo2LxwgM2", "passcode12", keepalive, level, true};
    size_t n = 0;
    ASSERT_EQ(giz_mqtt_encode_connect(&o, buf, cap, &n), GIZ_OK);
    return n;
}

static uint16_t keepalive_of(const uint8_t *pkt, size_t len)
{
    struct giz_mqtt_connect cp;
    struct giz_error e;
    if (giz_mqtt_connect_parse(pkt, len, &cp, &e) != GIZ_OK) return 0xffff;
    return cp.keepalive;
}

/* Every split point (and every pair) of a CONNECT, read by a broker reading
 * 1 byte at a time and by one reading 4 KiB: nothing reaches the broker
 * before the CONNECT is whole, the keepalive arrives clamped, the bytes are
 * otherwise unchanged, and the guard never reads past the CONNECT. */
TEST_CASE(connect_splits)
{
    const uint16_t kas[] = {700, 0, 65535, 600, 30};
    const uint8_t levels[] = {4, 3};
    struct giz_guard_limits l = limits();
    for (size_t li = 0; li < sizeof(levels); li++) {
        for (size_t ki = 0; ki < sizeof(kas) / sizeof(kas[0]); ki++) {
            uint8_t in[256], expect[256], out[512];
            size_t n = connect_bytes(in, sizeof(in), kas[ki], levels[li]);
            const uint8_t sub[] = {0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00};
            uint16_t want_ka = (kas[ki] == 0 || kas[ki] > 600) ? 600 : kas[ki];
            memcpy(expect, in, n);
            memcpy(in + n, sub, sizeof(sub)); /* a SUBSCRIBE right behind it */
            for (size_t a = 1; a <= n + sizeof(sub); a++) {
                for (size_t b = a; b <= n + sizeof(sub); b += (a < 3 || b < 12) ? 1 : 3) {
                    size_t rsizes[] = {1, 4096};
                    for (size_t ri = 0; ri < 2; ri++) {
                        struct giz_guard g;
                        struct fake_sock s = {in, n + sizeof(sub), a, 0, 0, &g};
                        size_t out_len = 0;
                        enum giz_guard_verdict v;
                        giz_guard_init(&g);
                        v = broker_drain(&s, &l, rsizes[ri], out, &out_len, sizeof(out));
                        ASSERT_EQ(v, GIZ_GUARD_PASS);
                        if (a < n) ASSERT_EQ(out_len, 0);
                        s.arrived = b;
                        v = broker_drain(&s, &l, rsizes[ri], out, &out_len, sizeof(out));
                        ASSERT_EQ(v, GIZ_GUARD_PASS);
                        if (b < n) ASSERT_EQ(out_len, 0);
                        s.arrived = s.len;
                        v = broker_drain(&s, &l, rsizes[ri], out, &out_len, sizeof(out));
                        ASSERT_EQ(v, GIZ_GUARD_PASS);
                        ASSERT_EQ(out_len, n + sizeof(sub));
                        ASSERT_EQ(keepalive_of(out, n), want_ka);
                        /* only the two keepalive bytes may differ */
                        size_t diff = 0;
                        for (size_t i = 0; i < n; i++)
                            diff += out[i] != expect[i];
                        ASSERT_TRUE(diff <= 2);
                        ASSERT_MEMEQ(out + n, sub, sizeof(sub));
                        ASSERT_TRUE(s.max_pos_gather <= n);
                        ASSERT_STREQ(giz_guard_client_id(&g), "GdzuSRncfDPGHGo2LxwgM2");
                        ASSERT_TRUE(g.pkt == NULL); /* nothing held after the CONNECT */
                        giz_guard_free(&g);
                    }
                }
            }
        }
    }
}

/* CONNECT flags mosquitto 2.0.11 tolerates but the parser refuses close the
 * connection before the broker sees a byte; MQTT 5 passes untouched. */
TEST_CASE(connect_odd)
{
    struct giz_guard_limits l = limits();
    uint8_t in[256], out[256];
    size_t n = connect_bytes(in, sizeof(in), 700, 4);
    struct giz_guard g;
    struct giz_error err;
    struct fake_sock s;
    size_t out_len = 0;
    in[9] |= 0x01; /* reserved flag bit */
    giz_guard_init(&g);
    s = (struct fake_sock){in, n, n, 0, 0, &g};
    ASSERT_EQ(broker_drain(&s, &l, 4096, out, &out_len, sizeof(out)), GIZ_GUARD_CLOSE_CONNECT);
    ASSERT_EQ(out_len, 0);
    giz_guard_free(&g);

    n = connect_bytes(in, sizeof(in), 700, 4);
    in[8] = 5; /* protocol level 5: not ours to parse */
    giz_guard_init(&g);
    s = (struct fake_sock){in, n, n, 0, 0, &g};
    out_len = 0;
    ASSERT_EQ(broker_drain(&s, &l, 4096, out, &out_len, sizeof(out)), GIZ_GUARD_PASS);
    ASSERT_EQ(out_len, n);
    ASSERT_MEMEQ(out, in, n);
    giz_guard_free(&g);

    /* A lying string length inside the CONNECT. */
    const uint8_t lying[] = {0x10, 0x0c, 0x00, 0x04, 'M',  'Q',  'T',
                             'T',  0x04, 0x02, 0x00, 0x3c, 0x00, 0x40};
    giz_guard_init(&g);
    s = (struct fake_sock){lying, sizeof(lying), sizeof(lying), 0, 0, &g};
    out_len = 0;
    memset(&err, 0, sizeof(err));
    enum giz_guard_verdict v;
    ssize_t r = giz_guard_read(&g, &l, out, sizeof(out), sock_read, &s, &v, &err);
    ASSERT_EQ(r, -1);
    ASSERT_EQ(errno, ECONNRESET);
    ASSERT_EQ(v, GIZ_GUARD_CLOSE_CONNECT);
    ASSERT_TRUE(err.text[0] != '\0');
    giz_guard_free(&g);

    /* Not a CONNECT first: passed on as is (the broker refuses it). */
    const uint8_t pub[] = {0x30, 0x05, 0x00, 0x01, 'x', 'h', 'i'};
    giz_guard_init(&g);
    s = (struct fake_sock){pub, sizeof(pub), sizeof(pub), 0, 0, &g};
    out_len = 0;
    ASSERT_EQ(broker_drain(&s, &l, 1, out, &out_len, sizeof(out)), GIZ_GUARD_PASS);
    ASSERT_EQ(out_len, sizeof(pub));
    ASSERT_MEMEQ(out, pub, sizeof(pub));
    giz_guard_free(&g);

    /* End of stream in the middle of a CONNECT: the broker sees EOF. */
    n = connect_bytes(in, sizeof(in), 60, 4);
    giz_guard_init(&g);
    s = (struct fake_sock){in, 9, 9, 0, 0, &g};
    r = giz_guard_read(&g, &l, out, sizeof(out), sock_read, &s, &v, NULL);
    ASSERT_EQ(r, 0);
    giz_guard_free(&g);

    /* A CONNECT larger than max_packet. */
    struct giz_guard_limits small = l;
    small.max_packet = 20;
    n = connect_bytes(in, sizeof(in), 60, 4);
    giz_guard_init(&g);
    s = (struct fake_sock){in, n, n, 0, 0, &g};
    out_len = 0;
    ASSERT_EQ(broker_drain(&s, &small, 4096, out, &out_len, sizeof(out)), GIZ_GUARD_CLOSE_OVERSIZE);
    ASSERT_EQ(out_len, 0);
    giz_guard_free(&g);
}

/* A guard past its CONNECT, for streaming tests. */
static void connected(struct giz_guard *g, const struct giz_guard_limits *l)
{
    uint8_t in[256], out[256];
    size_t n = connect_bytes(in, sizeof(in), 60, 4), out_len = 0;
    struct fake_sock s = {in, n, n, 0, 0, g};
    giz_guard_init(g);
    ASSERT_EQ(broker_drain(&s, l, 4096, out, &out_len, sizeof(out)), GIZ_GUARD_PASS);
    ASSERT_EQ(out_len, n);
}

static size_t hdr(uint8_t *p, uint8_t type, uint32_t rem)
{
    size_t i = 0;
    p[i++] = type;
    do {
        uint8_t b = rem % 128u;
        rem /= 128u;
        if (rem) b |= 0x80u;
        p[i++] = b;
    } while (rem);
    return i;
}

/* Remaining-length encodings at every size boundary, split byte by byte or
 * whole; a 5-byte length and a packet one byte over max_packet close. */
TEST_CASE(lengths)
{
    const uint32_t rems[] = {0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455};
    struct giz_guard_limits l = limits();
    l.max_packet = 268435455u + 5u;
    for (size_t i = 0; i < sizeof(rems) / sizeof(rems[0]); i++) {
        struct giz_guard g;
        uint8_t h[8];
        size_t hl = hdr(h, 0x30, rems[i]), pass = 0;
        connected(&g, &l);
        for (size_t k = 0; k < hl; k++) {
            ASSERT_EQ(giz_guard_scan(&g, &l, h + k, 1, &pass), GIZ_GUARD_PASS);
            ASSERT_EQ(pass, 1);
        }
        ASSERT_EQ(g.remaining, rems[i]);
        /* Feed the body in pieces of 64 KiB (skip the biggest: same code path). */
        if (rems[i] <= 2097152u) {
            static uint8_t body[65536];
            uint32_t left = rems[i];
            while (left > 0) {
                uint32_t k = left < sizeof(body) ? left : (uint32_t)sizeof(body);
                ASSERT_EQ(giz_guard_scan(&g, &l, body, k, &pass), GIZ_GUARD_PASS);
                left -= k;
            }
            /* framing is back at a packet boundary: a PINGREQ is counted */
            const uint8_t ping[] = {0xc0, 0x00};
            uint32_t before = 0, after = 0;
            for (unsigned b = 0; b < GIZ_GUARD_RING; b++)
                before += g.buckets[b];
            ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_PASS);
            for (unsigned b = 0; b < GIZ_GUARD_RING; b++)
                after += g.buckets[b];
            ASSERT_EQ(after, before + 1);
        }
        giz_guard_free(&g);
    }
    /* 5-byte remaining length: closes, the bytes before the packet pass. */
    {
        struct giz_guard g;
        const uint8_t bad[] = {0xc0, 0x00, 0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
        size_t pass = 99;
        connected(&g, &l);
        ASSERT_EQ(giz_guard_scan(&g, &l, bad, sizeof(bad), &pass), GIZ_GUARD_CLOSE_BADLEN);
        ASSERT_EQ(pass, 2);
        giz_guard_free(&g);
    }
    /* max_packet exactly passes, one more closes (even when the header is split). */
    {
        struct giz_guard g;
        struct giz_guard_limits m = limits();
        uint8_t h[8];
        size_t hl, pass = 0;
        m.max_packet = 1000;
        connected(&g, &m);
        hl = hdr(h, 0x30, 1000 - 3); /* 2-byte length: total 1000 */
        ASSERT_EQ(giz_guard_scan(&g, &m, h, hl, &pass), GIZ_GUARD_PASS);
        giz_guard_free(&g);
        connected(&g, &m);
        hl = hdr(h, 0x30, 1000 - 2);
        ASSERT_EQ(giz_guard_scan(&g, &m, h, 1, &pass), GIZ_GUARD_PASS);
        ASSERT_EQ(giz_guard_scan(&g, &m, h + 1, hl - 1, &pass), GIZ_GUARD_CLOSE_OVERSIZE);
        ASSERT_EQ(pass, 0); /* the packet started in the earlier call */
        giz_guard_free(&g);
    }
}

/* Coalesced packets: PUBLISH + PINGREQ + SUBSCRIBE + PUBLISH in one read,
 * and the same read one byte at a time, frame identically. */
TEST_CASE(coalesced)
{
    struct giz_guard_limits l = limits();
    uint8_t buf[512];
    size_t n = 0, pass = 0;
    uint8_t pub[64];
    size_t pl = 0;
    ASSERT_EQ(giz_mqtt_encode_publish("dev2app/x", (const uint8_t *)"hello", 5, 0, 0, pub,
                                      sizeof(pub), &pl),
              GIZ_OK);
    memcpy(buf + n, pub, pl);
    n += pl;
    buf[n++] = 0xc0;
    buf[n++] = 0x00;
    const uint8_t sub[] = {0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00};
    memcpy(buf + n, sub, sizeof(sub));
    n += sizeof(sub);
    memcpy(buf + n, pub, pl);
    n += pl;
    for (int split = 0; split < 2; split++) {
        struct giz_guard g;
        connected(&g, &l);
        if (split) {
            for (size_t i = 0; i < n; i++)
                ASSERT_EQ(giz_guard_scan(&g, &l, buf + i, 1, &pass), GIZ_GUARD_PASS);
        } else {
            ASSERT_EQ(giz_guard_scan(&g, &l, buf, n, &pass), GIZ_GUARD_PASS);
            ASSERT_EQ(pass, n);
        }
        ASSERT_EQ(g.state, 0); /* at a packet boundary */
        ASSERT_EQ(g.buckets[g.cur_bucket], 1);
        giz_guard_free(&g);
    }
}

/* 180 PINGREQs within the window pass, the 181st closes; in one coalesced
 * write of 200 the broker gets exactly the first 180 (plus what came
 * before). Byte by byte the same. */
TEST_CASE(ping_limit)
{
    struct giz_guard_limits l = limits();
    uint8_t pings[400];
    for (size_t i = 0; i < sizeof(pings); i += 2) {
        pings[i] = 0xc0;
        pings[i + 1] = 0x00;
    }
    {
        struct giz_guard g;
        size_t pass = 0;
        fake_now = 1000000;
        connected(&g, &l);
        ASSERT_EQ(giz_guard_scan(&g, &l, pings, 400, &pass), GIZ_GUARD_CLOSE_PING);
        ASSERT_EQ(pass, 360);
        giz_guard_free(&g);
    }
    {
        struct giz_guard g;
        size_t pass = 0;
        int closed_at = -1;
        fake_now = 2000000;
        connected(&g, &l);
        for (int i = 0; i < 400 && closed_at < 0; i++) {
            if (giz_guard_scan(&g, &l, pings + i, 1, &pass) != GIZ_GUARD_PASS) closed_at = i;
        }
        ASSERT_EQ(closed_at, 360);
        giz_guard_free(&g);
    }
    /* Through giz_guard_read: 200 coalesced -> 180 pings' bytes, then ECONNRESET. */
    {
        struct giz_guard g;
        uint8_t in[512], out[1024];
        size_t cn = connect_bytes(in, sizeof(in), 60, 4), out_len = 0;
        memcpy(in + cn, pings, 400);
        struct fake_sock s = {in, cn + 400, cn + 400, 0, 0, &g};
        fake_now = 3000000;
        giz_guard_init(&g);
        ASSERT_EQ(broker_drain(&s, &l, 4096, out, &out_len, sizeof(out)), GIZ_GUARD_CLOSE_PING);
        ASSERT_EQ(out_len, cn + 360);
        giz_guard_free(&g);
    }
}

/* The window slides and is exact: 18 per 3,600 ms spaced 207 ms apart for
 * 2.5 windows never close (19 consecutive span 3,726 ms); 180 then a full
 * window later 180 more pass, one more closes; pings before the CONNECT are
 * not counted. */
TEST_CASE(ping_window)
{
    struct giz_guard_limits l = limits();
    const uint8_t ping[] = {0xc0, 0x00};
    size_t pass = 0;
    {
        struct giz_guard g;
        l.ping_max = 18;
        l.window_ms = 3600;
        for (uint64_t phase = 0; phase < 400; phase += 37) {
            fake_now = 5000000 + phase;
            connected(&g, &l);
            int bad = 0;
            for (int i = 0; i < 45; i++) {
                fake_now += 207;
                if (giz_guard_scan(&g, &l, ping, 2, &pass) != GIZ_GUARD_PASS) bad++;
            }
            ASSERT_EQ(bad, 0);
            /* 19 at once: the 19th within the window closes (18 came in the last 3.6 s...
             * at most 17 + these): some of them must close. */
            int closed = 0;
            for (int i = 0; i < 19 && !closed; i++)
                closed = giz_guard_scan(&g, &l, ping, 2, &pass) != GIZ_GUARD_PASS;
            ASSERT_TRUE(closed);
            giz_guard_free(&g);
        }
    }
    {
        struct giz_guard g;
        l = limits();
        fake_now = 9000000;
        connected(&g, &l);
        for (int i = 0; i < 180; i++)
            ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_PASS);
        fake_now += 180000;
        for (int i = 0; i < 180; i++)
            ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_PASS);
        ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_CLOSE_PING);
        giz_guard_free(&g);
    }
    {
        /* Just inside the window: the 181st 179,999 ms after the first closes. */
        struct giz_guard g;
        fake_now = 12000000;
        connected(&g, &l);
        for (int i = 0; i < 180; i++) {
            ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_PASS);
            fake_now += 1000;
        }
        fake_now = 12000000 + 179999;
        ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_CLOSE_PING);
        giz_guard_free(&g);
        fake_now = 13000000;
        connected(&g, &l);
        for (int i = 0; i < 180; i++) {
            ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_PASS);
            fake_now += 1000;
        }
        fake_now = 13000000 + 180000;
        ASSERT_EQ(giz_guard_scan(&g, &l, ping, 2, &pass), GIZ_GUARD_PASS);
        giz_guard_free(&g);
    }
    {
        /* Pings before any CONNECT are the broker's business (it refuses them). */
        struct giz_guard g;
        uint8_t in[400], out[400];
        size_t out_len = 0;
        for (size_t i = 0; i < sizeof(in); i += 2) {
            in[i] = 0xc0;
            in[i + 1] = 0;
        }
        struct fake_sock s = {in, sizeof(in), sizeof(in), 0, 0, &g};
        giz_guard_init(&g);
        ASSERT_EQ(broker_drain(&s, &l, 4096, out, &out_len, sizeof(out)), GIZ_GUARD_PASS);
        ASSERT_EQ(out_len, sizeof(in));
        giz_guard_free(&g);
    }
}

/* One PINGREQ at fake time t; true if the guard let it pass. */
static bool ping_at(struct giz_guard *g, const struct giz_guard_limits *l, uint64_t t)
{
    const uint8_t ping[] = {0xc0, 0x00};
    size_t pass = 0;
    fake_now = t;
    return giz_guard_scan(g, l, ping, 2, &pass) == GIZ_GUARD_PASS;
}

/* The configuration's extremes (plugin/config.c: ping_max 1..65535, window
 * >= 100 ms): one ping per 100 ms window, and 65535 per window (the 16-bit
 * buckets saturate there; the exact ring decides). */
TEST_CASE(ping_extremes)
{
    struct giz_guard_limits l = limits();
    struct giz_guard g;
    l.ping_max = 1;
    l.window_ms = 100; /* bucket width 5 ms */
    fake_now = 20000000;
    connected(&g, &l);
    ASSERT_TRUE(ping_at(&g, &l, 20000000));
    ASSERT_TRUE(!ping_at(&g, &l, 20000099));
    giz_guard_free(&g);
    fake_now = 20000000;
    connected(&g, &l);
    ASSERT_TRUE(ping_at(&g, &l, 20000000));
    ASSERT_TRUE(ping_at(&g, &l, 20000100));
    ASSERT_TRUE(ping_at(&g, &l, 20000200));
    ASSERT_TRUE(!ping_at(&g, &l, 20000250));
    giz_guard_free(&g);

    /* a window shorter than GIZ_GUARD_BUCKETS ms (bucket width 0 -> 1 ms) */
    l.ping_max = 2;
    l.window_ms = 5;
    fake_now = 21000000;
    connected(&g, &l);
    ASSERT_TRUE(ping_at(&g, &l, 21000000));
    ASSERT_TRUE(ping_at(&g, &l, 21000000));
    ASSERT_TRUE(ping_at(&g, &l, 21000005)); /* the first two are 5 ms old: expired */
    ASSERT_TRUE(ping_at(&g, &l, 21000005));
    ASSERT_TRUE(!ping_at(&g, &l, 21000009)); /* two pings 4 ms old */
    giz_guard_free(&g);

    l.ping_max = GIZ_GUARD_EXACT_MAX;
    l.window_ms = 180000;
    fake_now = 22000000;
    connected(&g, &l);
    {
        static uint8_t pings[2u * GIZ_GUARD_EXACT_MAX + 2u];
        size_t pass = 0;
        for (size_t i = 0; i < sizeof pings; i += 2) {
            pings[i] = 0xc0;
            pings[i + 1] = 0x00;
        }
        ASSERT_EQ(giz_guard_scan(&g, &l, pings, sizeof pings, &pass), GIZ_GUARD_CLOSE_PING);
        ASSERT_EQ(pass, 2u * GIZ_GUARD_EXACT_MAX);
    }
    giz_guard_free(&g);
}

/* A clock that goes back counts as no time passing: it neither empties the
 * window nor lets older pings expire, before and after the exact ring. */
TEST_CASE(ping_clock_back)
{
    struct giz_guard_limits l = limits();
    struct giz_guard g;
    int ok = 0;
    fake_now = 30000000;
    connected(&g, &l);
    for (int i = 0; i < 90; i++) /* coarse ring only (90 = ping_max / 2) */
        ok += ping_at(&g, &l, 30000000);
    for (int i = 0; i < 90; i++)
        ok += ping_at(&g, &l, 30000000 - 1000000);
    ASSERT_EQ(ok, 180);
    ASSERT_TRUE(!ping_at(&g, &l, 1));
    giz_guard_free(&g);

    fake_now = 31000000;
    connected(&g, &l);
    ok = 0;
    for (int i = 0; i < 180; i++)
        ok += ping_at(&g, &l, 31000000 + (uint64_t)i);
    ASSERT_EQ(ok, 180);
    ASSERT_TRUE(g.pex != NULL);
    ASSERT_TRUE(!ping_at(&g, &l, 31000000 - 50000));
    giz_guard_free(&g);
}

/* A pause longer than the coarse ring's span empties it; with the exact
 * ring a pause of one window is enough for a full new window. */
TEST_CASE(ping_idle)
{
    struct giz_guard_limits l = limits();
    struct giz_guard g;
    int ok = 0;
    uint64_t t = 40000000;
    fake_now = t;
    connected(&g, &l);
    for (int i = 0; i < 90; i++)
        ok += ping_at(&g, &l, t);
    ASSERT_TRUE(g.pex == NULL);
    t += 10u * 180000u;
    for (int i = 0; i < 180; i++)
        ok += ping_at(&g, &l, t);
    ASSERT_EQ(ok, 270);
    ASSERT_TRUE(!ping_at(&g, &l, t));
    giz_guard_free(&g);

    t = 50000000;
    fake_now = t;
    connected(&g, &l);
    ok = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 180; i++)
            ok += ping_at(&g, &l, t);
        t += 180000;
    }
    ASSERT_EQ(ok, 5 * 180);
    ASSERT_TRUE(g.pex != NULL);
    for (int i = 0; i < 180; i++)
        ok += ping_at(&g, &l, t);
    ASSERT_EQ(ok, 6 * 180);
    ASSERT_TRUE(!ping_at(&g, &l, t + 179999)); /* the 181st of this window */
    giz_guard_free(&g);
}

/* The exact ring keeps 32-bit times: a window straddling 2^32 ms (49.7 days
 * of monotonic clock) decides exactly as anywhere else. */
TEST_CASE(ping_wrap32)
{
    struct giz_guard_limits l = limits();
    struct giz_guard g;
    const uint64_t t0 = (UINT64_C(1) << 32) - 90000; /* the ring's times wrap mid-window */
    for (int k = 0; k < 2; k++) {
        uint64_t t = t0;
        int ok = 0;
        fake_now = t;
        connected(&g, &l);
        for (int i = 0; i < 180; i++, t += 1000)
            ok += ping_at(&g, &l, t);
        ASSERT_EQ(ok, 180);
        /* 181st 179,999 ms after the first closes, at 180,000 ms passes */
        ASSERT_EQ(ping_at(&g, &l, t0 + 179999 + (uint64_t)k), k == 1);
        giz_guard_free(&g);
    }
}

/* Deterministic xorshift for the schedule below. */
static uint32_t rnd_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* Random ping schedules (bursts, steady streams, pauses) against a model of
 * the documented rule: a ping must pass if fewer than ping_max earlier ones
 * are less than window_ms old (never strict), and must close if ping_max
 * earlier ones are less than window_ms - bucket width old (lenient by less
 * than one bucket). Checked up to the first close of each connection. */
TEST_CASE(ping_model)
{
    static const struct {
        uint32_t ping_max, window_ms;
    } shapes[] = {{180, 180000}, {18, 3600}, {5, 1000}, {1, 100}, {64, 100}};
    uint32_t seed = 0x9e3779b9u;
    uint64_t *seen = malloc(4096 * sizeof *seen);
    unsigned closes = 0, strict = 0, lenient = 0;
    ASSERT_TRUE(seen != NULL);
    if (seen == NULL) return;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        struct giz_guard_limits l = limits();
        l.ping_max = shapes[si].ping_max;
        l.window_ms = shapes[si].window_ms;
        uint64_t width = l.window_ms / GIZ_GUARD_BUCKETS ? l.window_ms / GIZ_GUARD_BUCKETS : 1;
        for (int conn = 0; conn < 60; conn++) {
            struct giz_guard g;
            uint64_t t = 60000000 + (uint64_t)conn * 7919u;
            size_t n = 0;
            /* mean gap around window / ping_max, scaled per connection */
            uint64_t mean = l.window_ms / l.ping_max * (uint64_t)(1 + conn % 4) / 2u + 1u;
            fake_now = t;
            connected(&g, &l);
            while (n < 4096) {
                uint32_t r = rnd_next(&seed);
                if (r % 50u == 0)
                    t += l.window_ms * (uint64_t)(r % 3u); /* a pause */
                else if (r % 5u != 0)
                    t += (uint64_t)(rnd_next(&seed) % (2u * mean + 1u));
                /* else: a burst, same millisecond */
                size_t young = 0, younger = 0;
                for (size_t i = 0; i < n; i++) {
                    young += t - seen[i] < l.window_ms;
                    younger += t - seen[i] + width < l.window_ms;
                }
                bool pass = ping_at(&g, &l, t);
                if (!pass && young < l.ping_max) strict++;
                if (pass && younger >= l.ping_max) lenient++;
                if (!pass) {
                    closes++;
                    break;
                }
                seen[n++] = t;
            }
            giz_guard_free(&g);
        }
    }
    free(seen);
    ASSERT_EQ(strict, 0);
    ASSERT_EQ(lenient, 0);
    ASSERT_TRUE(closes > 100); /* the schedules do reach the limit */
}

/* The guard's small contracts: free on NULL and twice, a zero-byte read
 * goes straight to the read function, every verdict has its own text. */
TEST_CASE(guard_misc)
{
    struct giz_guard g;
    struct giz_guard_limits l = limits();
    giz_guard_free(NULL);
    connected(&g, &l);
    giz_guard_free(&g);
    giz_guard_free(&g);
    ASSERT_TRUE(g.pkt == NULL && giz_guard_client_id(&g) == NULL && g.pex == NULL);

    uint8_t in[4] = {0x10, 0x00, 0, 0}, out[4];
    struct fake_sock s = {in, 2, 2, 0, 0, &g};
    enum giz_guard_verdict v = GIZ_GUARD_CLOSE_PING;
    giz_guard_init(&g);
    ASSERT_EQ(giz_guard_read(&g, &l, out, 0, sock_read, &s, &v, NULL), 0);
    ASSERT_EQ(v, GIZ_GUARD_PASS);
    ASSERT_EQ(s.pos, 0);
    giz_guard_free(&g);

    const enum giz_guard_verdict all[] = {GIZ_GUARD_PASS, GIZ_GUARD_CLOSE_PING,
                                          GIZ_GUARD_CLOSE_OVERSIZE, GIZ_GUARD_CLOSE_BADLEN,
                                          GIZ_GUARD_CLOSE_CONNECT};
    for (size_t i = 0; i < 5; i++) {
        const char *a = giz_guard_verdict_text(all[i]);
        ASSERT_TRUE(a != NULL && a[0] != '\0');
        for (size_t j = 0; j < i; j++)
            ASSERT_TRUE(strcmp(a, giz_guard_verdict_text(all[j])) != 0);
    }
    ASSERT_STREQ(giz_guard_verdict_text((enum giz_guard_verdict)99), "?");
}

/* The client id copy: up to GIZ_GUARD_CLIENT_ID_INLINE bytes inline, longer
 * ones (an app's) on the heap, cut at GIZ_GUARD_CLIENT_ID_MAX; bytes outside
 * printable ASCII as '?'; the pre-CONNECT scratch is zeroed at the CONNECT. */
TEST_CASE(client_ids)
{
    const size_t lens[] = {1, 22, 23, 24, 40, 64, 65, 200};
    struct giz_guard_limits l = limits();
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char id[201];
        uint8_t in[512], out[512];
        size_t n = 0, out_len = 0;
        for (size_t k = 0; k < lens[i]; k++)
            id[k] = (char)('a' + k % 26);
        id[lens[i]] = '\0';
        if (lens[i] > 3) id[2] = '\t';
        struct giz_mqtt_connect_opts o = {id, "user", "passcode12", 60, 4, true};
        ASSERT_EQ(giz_mqtt_encode_connect(&o, in, sizeof(in), &n), GIZ_OK);
        struct giz_guard g;
        struct fake_sock s = {in, n, n, 0, 0, &g};
        giz_guard_init(&g);
        memset(g.pre_connect, 0xab, sizeof(g.pre_connect)); /* the caller's until then */
        ASSERT_EQ(broker_drain(&s, &l, 4096, out, &out_len, sizeof(out)), GIZ_GUARD_PASS);
        ASSERT_EQ(out_len, n);
        const char *got = giz_guard_client_id(&g);
        size_t want = lens[i] < GIZ_GUARD_CLIENT_ID_MAX ? lens[i] : GIZ_GUARD_CLIENT_ID_MAX;
        ASSERT_TRUE(got != NULL);
        ASSERT_EQ(strlen(got), want);
        if (lens[i] > 3) ASSERT_EQ(got[2], '?');
        ASSERT_TRUE(strncmp(got + 3, id + 3, want > 3 ? want - 3 : 0) == 0);
        for (size_t b = 0; b < GIZ_GUARD_RING; b++)
            ASSERT_EQ(g.buckets[b], 0);
        giz_guard_free(&g);
        ASSERT_TRUE(giz_guard_client_id(&g) == NULL);
    }
}

TEST_LIST(TEST_ENTRY(connect_splits), TEST_ENTRY(connect_odd), TEST_ENTRY(lengths),
          TEST_ENTRY(coalesced), TEST_ENTRY(ping_limit), TEST_ENTRY(ping_window),
          TEST_ENTRY(ping_extremes), TEST_ENTRY(ping_clock_back), TEST_ENTRY(ping_idle),
          TEST_ENTRY(ping_wrap32), TEST_ENTRY(ping_model), TEST_ENTRY(guard_misc),
          TEST_ENTRY(client_ids));
TEST_MAIN()
