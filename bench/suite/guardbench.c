/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Microbenchmark of the broker's per-connection MQTT guard (lib/mqtt_guard.c):
 * what the read interposition adds per message on mosquitto's thread, without
 * the syscalls (those are mosquitto's own reads either way). Compiled and run
 * by bench/run; prints key=value lines (ns per message):
 *   publish80_stream  80-byte PUBLISHes scanned in 64 KiB reads (coalesced)
 *   publish80_read    the same through giz_guard_read, one PUBLISH per call the
 *                     way mosquitto 2.0 reads (1-byte type, 1-byte length, body);
 *                     publish80_read_baseline is that read pattern on the memory
 *                     "socket" alone (the difference is the guard's share)
 *   pingreq           a PINGREQ at the limit check (coarse ring, then exact ring)
 *   connect           a whole CONNECT gathered, parsed and clamped (one login)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "giz/mqtt.h"
#include "giz/mqtt_guard.h"

static uint64_t clock_ms;
static uint64_t now_cb(void *ud)
{
    (void)ud;
    return clock_ms;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct mem_sock {
    const uint8_t *data;
    size_t len, pos;
};

static ssize_t mem_read(void *ud, void *buf, size_t count)
{
    struct mem_sock *s = ud;
    size_t n = s->len - s->pos;
    if (n > count) n = count;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
}

static void connected(struct giz_guard *g, const struct giz_guard_limits *lim, const uint8_t *cpkt,
                      size_t clen)
{
    uint8_t out[512];
    struct mem_sock s = {cpkt, clen, 0};
    enum giz_guard_verdict v;
    giz_guard_init(g);
    while (giz_guard_read(g, lim, out, sizeof(out), mem_read, &s, &v, NULL) > 0 && s.pos < clen) {
    }
    while (giz_guard_ready(g) > 0)
        giz_guard_take(g, out, sizeof(out));
}

int main(void)
{
    struct giz_guard_limits lim = {180, 180000, 600, 307200, now_cb, NULL};
    struct giz_mqtt_connect_opts o = {
        "GdzuSRncfDPGHGo2LxwgM2", "GdzuSRncfDPGHGo2LxwgM2", "passcode12", 700, 4, true};
    uint8_t cpkt[256], pub[128];
    size_t clen = 0, plen = 0;
    uint8_t payload[80 - 2 - 2 - 31];
    static uint8_t stream[65536];
    size_t per = 0, n_msgs = 0, pass = 0;
    struct giz_guard g;
    volatile size_t sink = 0;
    memset(payload, 'x', sizeof(payload));
    if (giz_mqtt_encode_connect(&o, cpkt, sizeof(cpkt), &clen) != GIZ_OK) return 1;
    if (giz_mqtt_encode_publish("dev2app/GdzuSRncfDPGHGo2LxwgM2xx", payload, sizeof(payload), 0, 0,
                                pub, sizeof(pub), &plen) != GIZ_OK)
        return 1;
    for (per = 0; per + plen <= sizeof(stream); per += plen)
        memcpy(stream + per, pub, plen);
    n_msgs = per / plen;

    /* coalesced stream */
    connected(&g, &lim, cpkt, clen);
    {
        const int rounds = 2000;
        double t0 = now_s();
        for (int r = 0; r < rounds; r++) {
            giz_guard_scan(&g, &lim, stream, per, &pass);
            sink += pass;
        }
        double dt = now_s() - t0;
        printf("publish80_bytes=%zu\n", plen);
        printf("publish80_stream_ns=%.2f\n", dt * 1e9 / ((double)rounds * (double)n_msgs));
    }
    giz_guard_free(&g);

    /* mosquitto 2.0's read pattern: 1 + 1 + body per packet, through giz_guard_read */
    connected(&g, &lim, cpkt, clen);
    {
        const int rounds = 200;
        uint8_t out[128];
        double t0 = now_s();
        for (int r = 0; r < rounds; r++) {
            struct mem_sock s = {stream, per, 0};
            enum giz_guard_verdict v;
            while (s.pos < s.len) {
                sink += (size_t)giz_guard_read(&g, &lim, out, 1, mem_read, &s, &v, NULL);
                sink += (size_t)giz_guard_read(&g, &lim, out, 1, mem_read, &s, &v, NULL);
                sink += (size_t)giz_guard_read(&g, &lim, out, plen - 2, mem_read, &s, &v, NULL);
            }
        }
        double dt = now_s() - t0;
        printf("publish80_read_ns=%.2f\n", dt * 1e9 / ((double)rounds * (double)n_msgs));
        /* the same reads straight from the memory "socket": the part that is not the guard */
        t0 = now_s();
        for (int r = 0; r < rounds; r++) {
            struct mem_sock s = {stream, per, 0};
            ssize_t (*volatile rd)(void *, void *, size_t) = mem_read;
            while (s.pos < s.len) {
                sink += (size_t)rd(&s, out, 1);
                sink += (size_t)rd(&s, out, 1);
                sink += (size_t)rd(&s, out, plen - 2);
            }
        }
        dt = now_s() - t0;
        printf("publish80_read_baseline_ns=%.2f\n", dt * 1e9 / ((double)rounds * (double)n_msgs));
    }
    giz_guard_free(&g);

    /* PINGREQ: 90 on the coarse ring, then the exact ring; one every 1.1 s */
    {
        const int n = 200000;
        const uint8_t ping[2] = {0xc0, 0x00};
        double t0;
        clock_ms = 1000;
        connected(&g, &lim, cpkt, clen);
        t0 = now_s();
        for (int i = 0; i < n; i++) {
            clock_ms += 1100;
            sink += (size_t)giz_guard_scan(&g, &lim, ping, 2, &pass);
        }
        printf("pingreq_ns=%.2f\n", (now_s() - t0) * 1e9 / n);
        giz_guard_free(&g);
    }

    /* CONNECT: gather (2 + body reads), parse, clamp */
    {
        const int n = 200000;
        uint8_t out[256];
        double t0 = now_s();
        for (int i = 0; i < n; i++) {
            struct mem_sock s = {cpkt, clen, 0};
            enum giz_guard_verdict v;
            giz_guard_init(&g);
            while (s.pos < clen || giz_guard_ready(&g) > 0)
                sink += (size_t)giz_guard_read(&g, &lim, out, sizeof(out), mem_read, &s, &v, NULL);
            giz_guard_free(&g);
        }
        printf("connect_ns=%.2f\n", (now_s() - t0) * 1e9 / n);
    }
    printf("sink=%zu\n", (size_t)sink % 10u);
    return 0;
}
