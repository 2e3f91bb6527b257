/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The broker's per-connection guard on a client -> broker MQTT byte stream:
 * framing that survives any split or coalescing of packets, the PINGREQ
 * limit (ping_max per sliding window; the next one closes), the MQTT
 * 3.1/3.1.1 CONNECT keepalive clamp (0 and > keepalive_max become
 * keepalive_max) and the packet-size limit. No I/O and no clock of its own:
 * the caller reads bytes and hands them in, so the same code runs inside the
 * plugin's read interposition and in unit tests and microbenchmarks.
 *
 * Two phases per connection:
 *  1. Gathering: the first packet is read exactly (never past its end: first
 *     2 bytes, then one byte per remaining-length continuation, then the
 *     body) into the guard's own buffer, so nothing of a CONNECT reaches the
 *     broker before the whole packet is checked and its keepalive rewritten.
 *     giz_guard_gather_want / _space / _commit drive the reads; the checked
 *     bytes are then handed over with giz_guard_take. A first packet that is
 *     not a CONNECT stops gathering after its header (the broker refuses it).
 *  2. Streaming: giz_guard_scan looks at every later byte where it lies in
 *     the caller's buffer (no copy) and says how many may be passed on.
 */
#ifndef GIZ_MQTT_GUARD_H
#define GIZ_MQTT_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "giz/error.h"

#define GIZ_GUARD_BUCKETS 18u                   /* window / BUCKETS = coarse bucket width */
#define GIZ_GUARD_RING (GIZ_GUARD_BUCKETS + 1u) /* the coarse ring spans window + one bucket */
#define GIZ_GUARD_EXACT_MAX                                                                        \
    65535u /* largest ping_max (the exact ring decides above ping_max / 2) */
#define GIZ_GUARD_CLIENT_ID_MAX 64u /* bytes of the client id kept for log lines */
/* (struct giz_guard below; the byte counts are checked by static asserts in
 * lib/mqtt_guard.c) */

struct giz_guard_limits {
    uint32_t ping_max;      /* PINGREQs allowed per window; the (ping_max + 1)-th closes */
    uint32_t window_ms;     /* sliding window length */
    uint16_t keepalive_max; /* CONNECT keepalive clamp, seconds (levels 3 and 4) */
    uint32_t max_packet;    /* largest packet (fixed header + body), bytes */
    /* Monotonic milliseconds; called only at a PINGREQ and at the end of the CONNECT. */
    uint64_t (*now_ms)(void *ud);
    void *now_ud;
};

enum giz_guard_verdict {
    GIZ_GUARD_PASS = 0,
    GIZ_GUARD_CLOSE_PING,     /* more than ping_max PINGREQ within window_ms */
    GIZ_GUARD_CLOSE_OVERSIZE, /* a packet announced larger than max_packet */
    GIZ_GUARD_CLOSE_BADLEN,   /* a remaining length longer than 4 bytes */
    GIZ_GUARD_CLOSE_CONNECT   /* an MQTT 3.1/3.1.1 CONNECT that does not parse */
};

struct giz_guard_exact; /* exact ring of recent PINGREQ times (busy pingers only) */
struct giz_guard_pkt;   /* the first packet while it is gathered or handed over */

#define GIZ_GUARD_PRE_CONNECT 24u      /* bytes free for the caller until the CONNECT */
#define GIZ_GUARD_CLIENT_ID_INLINE 23u /* client ids up to this long are kept inline */

/* One connection's state, kept small: an idle device costs this (104 bytes
 * on LP64) and nothing else on the heap, unless its client id is longer
 * than GIZ_GUARD_CLIENT_ID_INLINE (then that copy) or it pings more than
 * ping_max / 2 per window (then 4 x ping_max bytes). The first packet's
 * bytes live in their own allocation only while they are gathered. */
struct giz_guard {
    uint32_t remaining;         /* streaming: body bytes left in the current packet */
    uint32_t len_value;         /* streaming: remaining length being decoded */
    uint8_t state;              /* streaming: expecting type / length / body */
    uint8_t len_bytes;          /* streaming: remaining-length bytes seen */
    bool gathering;             /* phase 1 */
    bool connect_done;          /* a CONNECT was gathered and handed over */
    uint8_t hdr_len;            /* gathering: bytes in hdr */
    uint8_t hdr[5];             /* gathering: type byte + remaining length */
    uint8_t hdr_off, hdr_ready; /* a first packet that is not a CONNECT: hdr bytes taken / ready */
    uint8_t cur_bucket;
    uint8_t client_id_len;     /* 0: no client id */
    uint8_t last_type;         /* streaming: type nibble of the last packet begun (timeline) */
    uint16_t keepalive_asked;  /* the CONNECT's keepalive before the clamp (timeline) */
    struct giz_guard_pkt *pkt; /* the first packet being gathered / handed over, else NULL */
    struct giz_guard_exact *pex;
    uint64_t bucket_t0; /* start of the current ping bucket (before the CONNECT: free
                           for the caller, e.g. the accept time) */
    union {
        /* from the CONNECT on: pings per bucket, saturating; a bucket that
         * fills starts the exact ring (which then decides alone) */
        uint8_t buckets[GIZ_GUARD_RING];
        /* before the CONNECT: free for the caller (e.g. the peer address);
         * zeroed when the CONNECT completes */
        uint8_t pre_connect[GIZ_GUARD_PRE_CONNECT];
    };
    union {
        char inline_id[GIZ_GUARD_CLIENT_ID_INLINE + 1u]; /* client_id_len <= INLINE */
        char *heap_id;                                   /* longer (up to CLIENT_ID_MAX) */
    } cid;
};

/* Starts a connection in the gathering phase. Nothing to free yet. */
void giz_guard_init(struct giz_guard *g);

/* Frees what the guard holds (gathered bytes, client id, exact ring) and
 * leaves it in a state that may be freed again. Accepts NULL. */
void giz_guard_free(struct giz_guard *g);

/* Phase 1: how many bytes to read next (exactly that many, never more:
 * reading past the first packet would take bytes the broker's poll would
 * then not see); 0 when not gathering or when gathered bytes wait in
 * giz_guard_take. */
size_t giz_guard_gather_want(const struct giz_guard *g);

/* Phase 1: where to read those bytes (at least giz_guard_gather_want(g)
 * bytes of space). Returns NULL on out of memory (close the connection). */
uint8_t *giz_guard_gather_space(struct giz_guard *g);

/* Phase 1: n bytes (1..want) were read into the space. When the first packet
 * is complete (or is not a CONNECT), it is checked, a 3.1/3.1.1 keepalive is
 * clamped in place and the bytes become ready for giz_guard_take. Returns
 * GIZ_GUARD_PASS or a close verdict (err, optional, says why for CONNECT). */
enum giz_guard_verdict giz_guard_gather_commit(struct giz_guard *g,
                                               const struct giz_guard_limits *lim, size_t n,
                                               struct giz_error *err);

/* Bytes checked and waiting to be handed to the broker. */
size_t giz_guard_ready(const struct giz_guard *g);

/* Copies up to cap ready bytes into out and returns how many; frees the
 * gathered packet once all of it was taken. */
size_t giz_guard_take(struct giz_guard *g, uint8_t *out, size_t cap);

/* Phase 2: buf[0..n) are the next bytes of the stream. Sets *pass to how
 * many of them may go to the broker: n on GIZ_GUARD_PASS; on a close
 * verdict, the bytes before the offending packet's first byte within buf
 * (0 if it started in an earlier call). Never modifies buf. */
enum giz_guard_verdict giz_guard_scan(struct giz_guard *g, const struct giz_guard_limits *lim,
                                      const uint8_t *buf, size_t n, size_t *pass);

/* A read function like read(2): bytes read (> 0), 0 at end of stream, or -1
 * with errno set (EAGAIN when nothing is there yet). */
typedef ssize_t (*giz_guard_read_fn)(void *ud, void *buf, size_t count);

/* One read of the client stream on behalf of the broker, through the guard:
 * reads with fn(ud, ...) (while gathering: exactly the bytes the first
 * packet still needs, never more), checks, and returns what the broker's
 * read should: 1..count bytes in buf, 0 at end of stream, or -1 with fn's
 * errno (EAGAIN: the broker polls again; the guard keeps what it gathered).
 * On a close verdict *verdict says why (err, optional, for a bad CONNECT)
 * and it returns the bytes before the offending packet if there are any
 * (the caller must then fail the next read), else -1 with errno ECONNRESET.
 * *verdict is GIZ_GUARD_PASS otherwise. */
ssize_t giz_guard_read(struct giz_guard *g, const struct giz_guard_limits *lim, uint8_t *buf,
                       size_t count, giz_guard_read_fn fn, void *ud,
                       enum giz_guard_verdict *verdict, struct giz_error *err);

/* The CONNECT's client id as a NUL-terminated printable copy (other bytes
 * as '?', at most GIZ_GUARD_CLIENT_ID_MAX), owned by the guard; NULL if
 * there is none (no CONNECT yet, an empty id, no memory). */
const char *giz_guard_client_id(const struct giz_guard *g);

/* A static description of a close verdict for log lines. */
const char *giz_guard_verdict_text(enum giz_guard_verdict v);

#endif
