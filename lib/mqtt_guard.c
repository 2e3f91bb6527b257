/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The per-connection MQTT guard (giz/mqtt_guard.h): gathers the first
 * packet exactly and checks / clamps a CONNECT before the broker sees any of
 * it, then frames the rest of the client stream byte-exactly across any
 * split or coalescing, counting PINGREQ in a sliding window and enforcing
 * the packet-size limit. Pure computation: the caller does the reads and
 * supplies the clock.
 *
 * PINGREQ window (unchanged from the relay it replaces): a coarse ring of
 * GIZ_GUARD_RING 8-bit buckets of window/GIZ_GUARD_BUCKETS each covers the last
 * window plus at most one bucket (it can over-count, never under-count: a
 * bucket that fills starts the exact ring, so only a failed allocation of
 * that ring leaves a saturated, low count).
 * Once it holds more than ping_max / 2 pings the connection gets an exact
 * ring of its last ping_max ping times, which alone decides from then on: a
 * ping is refused when the ping_max-th previous one is less than window_ms
 * ago. The pings the coarse ring held are entered at their bucket's start
 * (never later than they were), so the exact ring may be lenient by less
 * than one bucket during its first window, never strict.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "giz/mqtt.h"
#include "giz/mqtt_guard.h"

enum { ST_TYPE = 0, ST_LEN = 1, ST_BODY = 2 };

struct giz_guard_exact {
    uint32_t n, head;
    uint32_t t[]; /* ms, truncated to 32 bits: differences wrap correctly */
};

/* The first packet (a CONNECT) while it is gathered, then handed over. */
struct giz_guard_pkt {
    uint32_t len, have, ready_off; /* ready: [ready_off, len) once complete */
    uint8_t bytes[];
};

_Static_assert(sizeof(void *) != 8 || sizeof(struct giz_guard) <= 104,
               "an idle connection's guard grew (see the header's comment)");
_Static_assert(GIZ_GUARD_PRE_CONNECT >= GIZ_GUARD_RING, "the buckets share pre_connect");

void giz_guard_init(struct giz_guard *g)
{
    memset(g, 0, sizeof(*g));
    g->gathering = true;
}

void giz_guard_free(struct giz_guard *g)
{
    if (g == NULL) return;
    free(g->pkt);
    if (g->client_id_len > GIZ_GUARD_CLIENT_ID_INLINE) free(g->cid.heap_id);
    free(g->pex);
    g->pkt = NULL;
    g->client_id_len = 0;
    g->pex = NULL;
    g->hdr_off = g->hdr_ready = 0;
}

const char *giz_guard_client_id(const struct giz_guard *g)
{
    if (g->client_id_len == 0) return NULL;
    return g->client_id_len > GIZ_GUARD_CLIENT_ID_INLINE ? g->cid.heap_id : g->cid.inline_id;
}

const char *giz_guard_verdict_text(enum giz_guard_verdict v)
{
    switch (v) {
    case GIZ_GUARD_PASS:
        return "ok";
    case GIZ_GUARD_CLOSE_PING:
        return "too many PINGREQ";
    case GIZ_GUARD_CLOSE_OVERSIZE:
        return "packet larger than plugin_opt_max_packet";
    case GIZ_GUARD_CLOSE_BADLEN:
        return "malformed MQTT length";
    case GIZ_GUARD_CLOSE_CONNECT:
        return "malformed MQTT 3.1/3.1.1 CONNECT";
    }
    return "?";
}

/* ---- PINGREQ window ------------------------------------------------------ */

/* Allocates the exact ring and fills it with the pings the coarse ring
 * holds (excluding the current one), each at its bucket's start. */
static void exact_start(struct giz_guard *g, const struct giz_guard_limits *lim, uint64_t width)
{
    struct giz_guard_exact *x = malloc(sizeof(*x) + (size_t)lim->ping_max * sizeof(x->t[0]));
    if (x == NULL) return; /* the coarse ring keeps deciding */
    x->n = x->head = 0;
    for (unsigned k = GIZ_GUARD_RING; k-- > 0;) {
        unsigned idx = (g->cur_bucket + GIZ_GUARD_RING - k) % GIZ_GUARD_RING;
        uint32_t cnt = (uint32_t)g->buckets[idx] - (k == 0 ? 1u : 0u);
        uint32_t at = (uint32_t)(g->bucket_t0 - (uint64_t)k * width);
        for (uint32_t i = 0; i < cnt && x->n < lim->ping_max; i++)
            x->t[x->n++] = at;
    }
    g->pex = x;
}

/* Records a PINGREQ at now in the exact ring; false if it is the
 * (ping_max + 1)-th within the window. */
static bool exact_allowed(struct giz_guard_exact *x, const struct giz_guard_limits *lim,
                          uint64_t now)
{
    uint32_t now32 = (uint32_t)now;
    if (x->n < lim->ping_max) {
        x->t[(x->head + x->n) % lim->ping_max] = now32;
        x->n++;
        return true;
    }
    if ((uint32_t)(now32 - x->t[x->head]) < lim->window_ms) return false;
    x->t[x->head] = now32;
    x->head = (x->head + 1u) % lim->ping_max;
    return true;
}

static bool ping_allowed(struct giz_guard *g, const struct giz_guard_limits *lim)
{
    uint64_t now = lim->now_ms(lim->now_ud);
    uint64_t width = lim->window_ms / GIZ_GUARD_BUCKETS;
    uint32_t total = 0;
    if (width == 0) width = 1;
    if (now < g->bucket_t0) now = g->bucket_t0; /* a clock that went back: treat as no time */
    if (now - g->bucket_t0 >= (uint64_t)GIZ_GUARD_RING * width) {
        memset(g->buckets, 0, sizeof(g->buckets));
        g->bucket_t0 = now;
    }
    while (now - g->bucket_t0 >= width) {
        g->cur_bucket = (uint8_t)((g->cur_bucket + 1u) % GIZ_GUARD_RING);
        g->buckets[g->cur_bucket] = 0;
        g->bucket_t0 += width;
    }
    if (g->buckets[g->cur_bucket] < UINT8_MAX) g->buckets[g->cur_bucket]++;
    if (g->pex != NULL) return exact_allowed(g->pex, lim, now);
    for (unsigned i = 0; i < GIZ_GUARD_RING; i++)
        total += g->buckets[i];
    /* a full bucket would under-count from now on: the exact ring takes
     * over (only if it cannot be allocated may the coarse count be low) */
    if (total > lim->ping_max / 2u || g->buckets[g->cur_bucket] == UINT8_MAX) {
        exact_start(g, lim, width);
        if (g->pex != NULL) return exact_allowed(g->pex, lim, now);
    }
    return total <= lim->ping_max;
}

/* ---- streaming ------------------------------------------------------------ */

enum giz_guard_verdict giz_guard_scan(struct giz_guard *g, const struct giz_guard_limits *lim,
                                      const uint8_t *buf, size_t n, size_t *pass)
{
    size_t i = 0, start = 0;
    bool here = false; /* the current packet started within buf (at start) */
    while (i < n) {
        switch (g->state) {
        case ST_TYPE:
            start = i;
            here = true;
            g->last_type = (uint8_t)(buf[i] >> 4);
            if ((buf[i] >> 4) == GIZ_MQTT_PINGREQ && g->connect_done && !ping_allowed(g, lim)) {
                *pass = i;
                return GIZ_GUARD_CLOSE_PING;
            }
            g->state = ST_LEN;
            g->len_value = 0;
            g->len_bytes = 0;
            i++;
            break;
        case ST_LEN: {
            uint8_t b = buf[i++];
            g->len_value |= (uint32_t)(b & 0x7fu) << (7u * g->len_bytes);
            g->len_bytes++;
            if (b & 0x80u) {
                if (g->len_bytes == 4) {
                    *pass = here ? start : 0;
                    return GIZ_GUARD_CLOSE_BADLEN;
                }
                break;
            }
            if ((uint64_t)1u + g->len_bytes + g->len_value > lim->max_packet) {
                *pass = here ? start : 0;
                return GIZ_GUARD_CLOSE_OVERSIZE;
            }
            g->remaining = g->len_value;
            g->state = g->remaining ? ST_BODY : ST_TYPE;
            break;
        }
        default: { /* ST_BODY */
            size_t take = n - i;
            if (take > g->remaining) take = g->remaining;
            i += take;
            g->remaining -= (uint32_t)take;
            if (g->remaining == 0) g->state = ST_TYPE;
            break;
        }
        }
    }
    *pass = n;
    return GIZ_GUARD_PASS;
}

/* ---- gathering the first packet -------------------------------------------- */

size_t giz_guard_gather_want(const struct giz_guard *g)
{
    if (!g->gathering) return 0;
    if (g->pkt != NULL) return g->pkt->len - g->pkt->have;
    return g->hdr_len < 2 ? 2u - g->hdr_len : 1u;
}

uint8_t *giz_guard_gather_space(struct giz_guard *g)
{
    return g->pkt != NULL ? g->pkt->bytes + g->pkt->have : g->hdr + g->hdr_len;
}

/* The whole CONNECT is in g->pkt: parse, clamp, remember the client id. */
static enum giz_guard_verdict
connect_complete(struct giz_guard *g, const struct giz_guard_limits *lim, struct giz_error *err)
{
    struct giz_mqtt_connect cp;
    struct giz_error e;
    int rc;
    memset(&e, 0, sizeof(e));
    g->gathering = false;
    g->connect_done = true;
    g->state = ST_TYPE;
    g->bucket_t0 = lim->now_ms(lim->now_ud);           /* the ping window starts here */
    memset(g->pre_connect, 0, sizeof(g->pre_connect)); /* the caller's until now */
    rc = giz_mqtt_connect_parse(g->pkt->bytes, g->pkt->len, &cp, &e);
    if (rc == GIZ_ERR_BAD_VALUE) goto ready; /* not 3.1/3.1.1: the broker decides */
    if (rc != GIZ_OK) {
        if (err != NULL) *err = e;
        return GIZ_GUARD_CLOSE_CONNECT;
    }
    g->keepalive_asked = cp.keepalive;
    if ((cp.keepalive == 0 || cp.keepalive > lim->keepalive_max) &&
        cp.keepalive_offset + 2u <= g->pkt->len) {
        g->pkt->bytes[cp.keepalive_offset] = (uint8_t)(lim->keepalive_max >> 8);
        g->pkt->bytes[cp.keepalive_offset + 1u] = (uint8_t)(lim->keepalive_max & 0xffu);
    }
    if (cp.client_id.len > 0 && g->client_id_len == 0) {
        size_t len =
            cp.client_id.len < GIZ_GUARD_CLIENT_ID_MAX ? cp.client_id.len : GIZ_GUARD_CLIENT_ID_MAX;
        char *dst = g->cid.inline_id;
        if (len > GIZ_GUARD_CLIENT_ID_INLINE) dst = g->cid.heap_id = malloc(len + 1u);
        if (dst != NULL) {
            const uint8_t *src = (const uint8_t *)cp.client_id.ptr;
            for (size_t i = 0; i < len; i++)
                dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
            dst[len] = '\0';
            g->client_id_len = (uint8_t)len;
        }
    }
ready:
    g->pkt->ready_off = 0;
    return GIZ_GUARD_PASS;
}

enum giz_guard_verdict giz_guard_gather_commit(struct giz_guard *g,
                                               const struct giz_guard_limits *lim, size_t n,
                                               struct giz_error *err)
{
    if (g->pkt != NULL) {
        g->pkt->have += (uint32_t)n;
        if (g->pkt->have < g->pkt->len) return GIZ_GUARD_PASS;
        return connect_complete(g, lim, err);
    }
    g->hdr_len = (uint8_t)(g->hdr_len + n);
    if ((g->hdr[0] >> 4) != GIZ_MQTT_CONNECT) {
        /* Not a CONNECT: stop gathering; the broker refuses it. Frame what
         * we hold so the stream position stays right. */
        size_t pass = 0;
        enum giz_guard_verdict v;
        g->gathering = false;
        v = giz_guard_scan(g, lim, g->hdr, g->hdr_len, &pass);
        g->hdr_off = 0;
        g->hdr_ready = (uint8_t)pass;
        return v;
    }
    if (g->hdr_len < 2) return GIZ_GUARD_PASS;
    if (g->hdr[g->hdr_len - 1u] & 0x80u)
        return g->hdr_len == 5 ? GIZ_GUARD_CLOSE_BADLEN : GIZ_GUARD_PASS;
    {
        uint32_t rem = 0;
        for (unsigned i = 1; i < g->hdr_len; i++)
            rem |= (uint32_t)(g->hdr[i] & 0x7fu) << (7u * (i - 1u));
        uint64_t total = (uint64_t)g->hdr_len + rem;
        if (total > lim->max_packet) return GIZ_GUARD_CLOSE_OVERSIZE;
        g->pkt = malloc(sizeof(*g->pkt) + (size_t)total);
        if (g->pkt == NULL) {
            if (err != NULL) giz_error_set(err, GIZ_ERR_NOMEM, 0, "out of memory");
            return GIZ_GUARD_CLOSE_CONNECT;
        }
        memcpy(g->pkt->bytes, g->hdr, g->hdr_len);
        g->pkt->len = (uint32_t)total;
        g->pkt->have = g->hdr_len;
        g->pkt->ready_off = 0;
        if (g->pkt->have == g->pkt->len) return connect_complete(g, lim, err);
    }
    return GIZ_GUARD_PASS;
}

size_t giz_guard_ready(const struct giz_guard *g)
{
    if (g->pkt != NULL) return g->gathering ? 0u : (size_t)(g->pkt->len - g->pkt->ready_off);
    return (size_t)(g->hdr_ready - g->hdr_off);
}

size_t giz_guard_take(struct giz_guard *g, uint8_t *out, size_t cap)
{
    size_t n = giz_guard_ready(g);
    if (n > cap) n = cap;
    if (n == 0) return 0;
    if (g->pkt != NULL) {
        memcpy(out, g->pkt->bytes + g->pkt->ready_off, n);
        g->pkt->ready_off += (uint32_t)n;
        if (g->pkt->ready_off < g->pkt->len) return n;
        free(g->pkt);
        g->pkt = NULL;
    } else {
        memcpy(out, g->hdr + g->hdr_off, n);
        g->hdr_off = (uint8_t)(g->hdr_off + n);
        if (g->hdr_off < g->hdr_ready) return n;
        g->hdr_off = g->hdr_ready = 0;
    }
    g->hdr_len = 0;
    return n;
}

ssize_t giz_guard_read(struct giz_guard *g, const struct giz_guard_limits *lim, uint8_t *buf,
                       size_t count, giz_guard_read_fn fn, void *ud,
                       enum giz_guard_verdict *verdict, struct giz_error *err)
{
    enum giz_guard_verdict v;
    size_t pass = 0;
    ssize_t r;
    *verdict = GIZ_GUARD_PASS;
    if (count == 0) return fn(ud, buf, 0);
    for (;;) {
        size_t want;
        uint8_t *space;
        if (giz_guard_ready(g) > 0) return (ssize_t)giz_guard_take(g, buf, count);
        want = giz_guard_gather_want(g);
        if (want == 0) break;
        space = giz_guard_gather_space(g);
        if (space == NULL) {
            errno = ENOMEM;
            return -1;
        }
        r = fn(ud, space, want);
        if (r <= 0) return r; /* end of stream, or nothing there yet */
        v = giz_guard_gather_commit(g, lim, (size_t)r, err);
        if (v != GIZ_GUARD_PASS) {
            *verdict = v;
            errno = ECONNRESET;
            return -1;
        }
    }
    r = fn(ud, buf, count);
    if (r <= 0) return r;
    v = giz_guard_scan(g, lim, buf, (size_t)r, &pass);
    if (v == GIZ_GUARD_PASS) return r;
    *verdict = v;
    if (pass > 0) return (ssize_t)pass;
    errno = ECONNRESET;
    return -1;
}
