/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The front listener: an MQTT-aware TCP relay inside the plugin, on its own
 * libuv loop and thread, in front of mosquitto's unix-socket listener. It
 * exists because mosquitto 2.0's plugin API shows neither PINGREQ nor a way
 * to change a client's keepalive (plugin/DESIGN.md).
 *
 * Client -> broker bytes are framed with giz_mqtt_frame and forwarded only
 * as whole packets. On the way it
 *   - rewrites the CONNECT keepalive in place to min(k, keepalive_max), and
 *     0 ("never") to keepalive_max, for MQTT 3.1 and 3.1.1, and closes the
 *     connection if such a CONNECT does not parse (so no flag oddity mosquitto
 *     tolerates can skip the clamp);
 *   - counts PINGREQ per connection in a sliding window and closes the
 *     connection on the (ping_max + 1)-th within one window, with a log line
 *     naming the real peer and client id. A coarse ring of PING_BUCKETS + 1
 *     buckets (window/PING_BUCKETS each; it over-counts by up to one bucket)
 *     serves the common case; once it holds more than ping_max/2 pings the
 *     connection gets an exact ring of its last ping_max ping times, which
 *     alone decides from then on;
 *   - closes a connection announcing a packet larger than max_packet, or
 *     that has not completed CONNECT after connect_timeout;
 *   - records client id -> real peer address for the main thread's logs.
 * Broker -> client bytes are forwarded as they come, except toward devices
 * (username == client id), which get one write per MQTT packet because
 * firmware treats one recv() as one packet. Each direction stops reading
 * when the other side's write queue exceeds WQ_HIGH and resumes below WQ_LOW.
 *
 * TLS (plugin_opt_tls_listen): the same relay behind an OpenSSL server
 * session driven through memory BIOs, so libuv keeps owning the socket:
 * ciphertext read -> BIO -> SSL_read -> the plaintext path above;
 * plaintext toward the client -> SSL_write -> BIO -> socket (one TLS record
 * and one write per MQTT packet toward devices).
 *
 * This thread never calls mosquitto and never touches the store; it talks
 * to the main thread only through handoff.c (log lines, peer map).
 *
 * The thread runs under SCHED_BATCH: its wake-ups do not preempt mosquitto's
 * thread, so mosquitto writes several packets before the relay reads them
 * and each wake-up moves a batch instead of one packet (plugin/DESIGN.md,
 * "Cost": this alone took the relayed message rate from ~0.7x to ~0.9x of
 * bare mosquitto). Its CPU share is unchanged.
 */
#define _GNU_SOURCE /* SCHED_BATCH */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "giz/mqtt.h"
#include "plugin.h"

#define PING_BUCKETS 18u              /* window / PING_BUCKETS = bucket width */
#define PING_RING (PING_BUCKETS + 1u) /* the ring spans window + one bucket */
#define PING_EXACT_MAX 65536u         /* ping_max above this: the coarse ring alone decides */
#define READ_BUF 65536u
#define WQ_HIGH (1024u * 1024u)
#define WQ_LOW (256u * 1024u)
#define SWEEP_MAX_MS 5000u
#define LISTEN_BACKLOG 4096
#define CLIENT_ID_MAX 64u
#define PEER_SIZE GIZP_PEER_SIZE
#define PENDING_MAX (READ_BUF / 2u) /* larger incomplete packets are reassembled in place */

/* One relayed connection. Kept small: an idle connection costs this struct
 * (two libuv handles are most of it) and nothing else in this thread -- the
 * read buffer is shared, an incomplete packet's bytes are held only while
 * incomplete, the shutdown request exists only while half-closing. */
struct fconn {
    struct fconn *prev, *next;
    struct fconn *wprev, *wnext; /* in front.waiting while pending_fd >= 0 */
    uv_tcp_t client;
    uv_pipe_t broker;
    SSL *ssl;                     /* NULL on plain connections */
    uv_shutdown_t *shutdown_req;  /* while half-closing */
    char *client_id;              /* NUL-terminated copy from CONNECT, or NULL */
    struct pbuf *cpend;           /* client -> broker: an incomplete packet, or NULL */
    struct pbuf *bpend;           /* broker -> device: an incomplete packet, or NULL */
    struct ping_exact *pex;       /* exact PINGREQ times, only for busy pingers */
    uint64_t bucket_t0;           /* start of the current ping bucket; accept time until CONNECT */
    uint32_t buckets[PING_RING];
    int pending_fd;               /* unix socket still connecting to mosquitto, or -1 */
    struct peer_addr peer;        /* the client's address; also the peer-map value */
    uint8_t cur_bucket, open_handles, client_id_len;
    bool closing : 1, broker_connected : 1, shutting_down : 1;
    bool client_paused : 1, broker_paused : 1;
    bool connect_seen : 1, is_device : 1, peer_recorded : 1;
};

/* The times (uv_now, truncated to 32 bits: differences wrap correctly) of a
 * busy connection's last ping_max PINGREQs: t[head] is the oldest once n ==
 * ping_max. Allocated only when the coarse count passes ping_max / 2. */
struct ping_exact {
    uint32_t n, head;
    uint32_t t[];
};

/* The bytes of an incomplete packet, allocated only while it is incomplete. */
struct pbuf {
    uint32_t len, cap;
    uint8_t data[];
};

/* A connection's front: its handles' loop belongs to it (loop.data). */
#define FRONT(c) ((struct front *)(c)->client.loop->data)

struct wreq {
    uv_write_t req;
    struct fconn *c;
    bool to_broker;
    size_t len;
    uint8_t data[];
};

struct flistener {
    uv_tcp_t tcp;
    struct front *f;
    bool tls;
};

struct front {
    struct gizp *g;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t sweep;
    struct flistener listeners[2 * GIZP_MAX_LISTEN];
    unsigned nlisten;
    SSL_CTX *ssl_ctx;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool go, stop;
    struct fconn *conns;
    struct fconn *wait_head, *wait_tail; /* FIFO of connections mosquitto has no room for yet */
    uv_timer_t retry;
    atomic_ullong stat_conns, stat_accepted, stat_ping_closed, stat_waited;
    /* Config copies (read-only after start). */
    unsigned ping_max, window_ms, keepalive_max, connect_timeout_ms;
    size_t max_packet;
    char broker_socket[GIZP_SOCK_SIZE];
    uint8_t readbuf[READ_BUF];
    uint8_t plainbuf[READ_BUF]; /* TLS: decrypted client bytes */
};

static void conn_close(struct fconn *c);
static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void broker_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- helpers -------------------------------------------------------------- */

/* Read buffers. Every read lands in the loop's one shared buffer (libuv
 * calls alloc_cb, read() and the read callback back to back, so it is ours
 * until the callback returns). When a connection holds the start of an
 * incomplete packet, those few bytes are first copied to the front of the
 * shared buffer and the read appends to them, so the packet is whole and
 * contiguous without copying the new bytes; the read callback sees this as
 * buf->base != readbuf. */
static void pending_alloc(struct front *f, const struct pbuf *p, uv_buf_t *buf)
{
    size_t pre = 0;
    if (p != NULL && p->len <= PENDING_MAX) {
        memcpy(f->readbuf, p->data, p->len);
        pre = p->len;
    }
    *buf = uv_buf_init((char *)f->readbuf + pre, (unsigned)(READ_BUF - pre));
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fconn *c = h->data;
    (void)suggested;
    /* TLS: the ciphertext is read here; plaintext reassembly uses plainbuf. */
    pending_alloc(FRONT(c), c->ssl == NULL ? c->cpend : NULL, buf);
}

static void broker_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fconn *c = h->data;
    (void)suggested;
    pending_alloc(FRONT(c), c->bpend, buf);
}

static uint32_t pending_len(const struct pbuf *p)
{
    return p != NULL ? p->len : 0u;
}

/* Replaces a connection's pending bytes with data[0..n) (which may point
 * into the pending buffer itself); frees the buffer when n == 0, so an idle
 * connection holds none. Returns 0 or -1 (out of memory). */
static int pending_keep(struct pbuf **pp, const uint8_t *data, size_t n)
{
    struct pbuf *p = *pp;
    if (n == 0) {
        free(p);
        *pp = NULL;
        return 0;
    }
    if (p == NULL || n > p->cap) {
        size_t cap = n < 256u ? 256u : n;
        struct pbuf *np;
        if (cap > UINT32_MAX) return -1;
        np = malloc(sizeof(*np) + cap);
        if (np == NULL) return -1;
        memcpy(np->data, data, n);
        np->cap = (uint32_t)cap;
        free(p);
        *pp = p = np;
    } else {
        memmove(p->data, data, n);
    }
    p->len = (uint32_t)n;
    return 0;
}

/* Appends data[0..n) to the pending bytes (packets larger than PENDING_MAX). */
static int pending_append(struct pbuf **pp, const uint8_t *data, size_t n)
{
    struct pbuf *p = *pp;
    size_t len = pending_len(p), cap = p != NULL ? p->cap : 0u;
    if (len + n > cap) {
        size_t ncap = cap ? cap : 1024u;
        struct pbuf *np;
        while (ncap < len + n)
            ncap *= 2u;
        if (ncap > UINT32_MAX) return -1;
        np = realloc(p, sizeof(*np) + ncap);
        if (np == NULL) return -1;
        np->len = (uint32_t)len;
        np->cap = (uint32_t)ncap;
        *pp = p = np;
    }
    memcpy(p->data + len, data, n);
    p->len = (uint32_t)(len + n);
    return 0;
}

static void peer_addr_of(uv_tcp_t *tcp, struct peer_addr *out)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    memset(out, 0, sizeof(*out));
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        out->family = AF_INET;
        out->port = ntohs(a->sin_port);
        memcpy(out->addr, &a->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        out->family = AF_INET6;
        out->port = ntohs(a->sin6_port);
        memcpy(out->addr, &a->sin6_addr, 16);
    }
}

/* The client's "ip:port" for a log line, formatted into buf. */
static const char *peer_str(const struct fconn *c, char buf[PEER_SIZE])
{
    handoff__peer_format(&c->peer, buf, PEER_SIZE);
    return buf;
}

/* Printable copy of a client id for log lines. */
static const char *cid_for_log(const struct fconn *c)
{
    return c->client_id != NULL ? c->client_id : "(no CONNECT yet)";
}

/* ---- writes and backpressure ------------------------------------------------ */

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct fconn *c = w->c;
    bool to_broker = w->to_broker;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED) conn_close(c);
        return;
    }
    if (c->closing) return;
    if (to_broker && c->client_paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->broker) < WQ_LOW) {
        c->client_paused = false;
        uv_read_start((uv_stream_t *)&c->client, client_alloc_cb, client_read_cb);
    } else if (!to_broker && c->broker_paused &&
               uv_stream_get_write_queue_size((uv_stream_t *)&c->client) < WQ_LOW) {
        c->broker_paused = false;
        uv_read_start((uv_stream_t *)&c->broker, broker_alloc_cb, broker_read_cb);
    }
}

/* Sends data[0..n) toward the broker (to_broker) or the client: written
 * at once with uv_try_write when nothing is queued (no copy, no allocation),
 * otherwise the unwritten rest is copied into a write request. Returns 0 or
 * -1 (the connection is then being closed). */
static int send_copy(struct fconn *c, bool to_broker, const uint8_t *data, size_t n)
{
    struct wreq *w;
    uv_buf_t b;
    uv_stream_t *dst = to_broker ? (uv_stream_t *)&c->broker : (uv_stream_t *)&c->client;
    if (n == 0) return 0;
    if (uv_stream_get_write_queue_size(dst) == 0) {
        b = uv_buf_init((char *)(uintptr_t)data, (unsigned)n);
        int wrote = uv_try_write(dst, &b, 1);
        if (wrote == (int)n) return 0;
        if (wrote > 0) {
            data += wrote;
            n -= (size_t)wrote;
        } else if (wrote != UV_EAGAIN) {
            conn_close(c);
            return -1;
        }
    }
    w = malloc(sizeof(*w) + n);
    if (w == NULL) {
        conn_close(c);
        return -1;
    }
    w->c = c;
    w->to_broker = to_broker;
    w->len = n;
    memcpy(w->data, data, n);
    b = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, dst, &b, 1, write_cb) != 0) {
        free(w);
        conn_close(c);
        return -1;
    }
    if (uv_stream_get_write_queue_size(dst) > WQ_HIGH) {
        if (to_broker && !c->client_paused) {
            c->client_paused = true;
            uv_read_stop((uv_stream_t *)&c->client);
        } else if (!to_broker && !c->broker_paused) {
            c->broker_paused = true;
            uv_read_stop((uv_stream_t *)&c->broker);
        }
    }
    return 0;
}

/* ---- TLS ------------------------------------------------------------------------- */

/* Sends whatever OpenSSL has queued in the write BIO (records, alerts). */
static int tls_flush(struct fconn *c)
{
    BIO *wbio = SSL_get_wbio(c->ssl);
    uint8_t buf[16384 + 512];
    while (BIO_ctrl_pending(wbio) > 0) {
        int n = BIO_read(wbio, buf, (int)sizeof(buf));
        if (n <= 0) break;
        if (send_copy(c, false, buf, (size_t)n) != 0) return -1;
    }
    return 0;
}

/* Plaintext toward the client: encrypted on TLS connections. */
static int to_client(struct fconn *c, const uint8_t *data, size_t n)
{
    if (c->ssl == NULL) return send_copy(c, false, data, n);
    while (n > 0) {
        int chunk = n > 16384u ? 16384 : (int)n;
        int w = SSL_write(c->ssl, data, chunk);
        if (w <= 0) {
            conn_close(c);
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return tls_flush(c);
}

/* ---- closing ------------------------------------------------------------------ */

static void close_cb(uv_handle_t *h)
{
    struct fconn *c = h->data;
    if (--c->open_handles > 0) return;
    struct front *f = FRONT(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    free(c->cpend);
    free(c->bpend);
    free(c->pex);
    free(c->client_id);
    free(c->shutdown_req);
    SSL_free(c->ssl);
    free(c);
    atomic_fetch_sub(&f->stat_conns, 1u);
}

static void wait_unlink(struct fconn *c)
{
    struct front *f = FRONT(c);
    if (c->wprev != NULL)
        c->wprev->wnext = c->wnext;
    else if (f->wait_head == c)
        f->wait_head = c->wnext;
    if (c->wnext != NULL)
        c->wnext->wprev = c->wprev;
    else if (f->wait_tail == c)
        f->wait_tail = c->wprev;
    c->wprev = c->wnext = NULL;
}

static void conn_close(struct fconn *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->pending_fd >= 0) {
        wait_unlink(c);
        close(c->pending_fd);
        c->pending_fd = -1;
    }
    if (c->peer_recorded)
        handoff__peer_forget(&FRONT(c)->g->handoff, c->client_id, c->client_id_len, &c->peer);
    uv_close((uv_handle_t *)&c->client, close_cb);
    uv_close((uv_handle_t *)&c->broker, close_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct fconn *c = req->data;
    (void)status;
    conn_close(c);
}

/* One side said EOF: flush what we owe the other side, then close both. */
static void half_close(struct fconn *c, bool toward_broker)
{
    uv_stream_t *dst = toward_broker ? (uv_stream_t *)&c->broker : (uv_stream_t *)&c->client;
    if (c->closing || c->shutting_down) {
        conn_close(c);
        return;
    }
    c->shutting_down = true;
    if (!toward_broker && c->ssl != NULL && SSL_is_init_finished(c->ssl)) {
        SSL_shutdown(c->ssl);
        if (tls_flush(c) != 0) return;
    }
    uv_read_stop((uv_stream_t *)&c->client);
    uv_read_stop((uv_stream_t *)&c->broker);
    c->shutdown_req = malloc(sizeof(*c->shutdown_req));
    if (c->shutdown_req == NULL) {
        conn_close(c);
        return;
    }
    c->shutdown_req->data = c;
    if (uv_shutdown(c->shutdown_req, dst, shutdown_cb) != 0) conn_close(c);
}

/* ---- client -> broker ----------------------------------------------------------- */

/* Allocates c->pex and fills it with the pings the coarse ring holds
 * (excluding the current one), each at its bucket's start: never later than
 * it was, so the exact ring can only under-estimate those few (at most
 * ping_max / 2, off by less than one bucket, within the first window). */
static void ping_exact_start(struct fconn *c, struct front *f, uint64_t width)
{
    struct ping_exact *x = malloc(sizeof(*x) + (size_t)f->ping_max * sizeof(x->t[0]));
    if (x == NULL) return;
    x->n = x->head = 0;
    for (unsigned k = PING_RING; k-- > 0;) {
        unsigned idx = (c->cur_bucket + PING_RING - k) % PING_RING;
        uint32_t cnt = c->buckets[idx] - (k == 0 ? 1u : 0u);
        uint32_t at = (uint32_t)(c->bucket_t0 - (uint64_t)k * width);
        for (uint32_t i = 0; i < cnt && x->n < f->ping_max; i++)
            x->t[x->n++] = at;
    }
    c->pex = x;
}

/* Records a PINGREQ at now in the exact ring; false if it is the
 * (ping_max + 1)-th within the window (ping_max earlier ones less than
 * window_ms ago). */
static bool ping_exact_allowed(struct ping_exact *x, const struct front *f, uint64_t now)
{
    uint32_t now32 = (uint32_t)now;
    if (x->n < f->ping_max) {
        x->t[(x->head + x->n) % f->ping_max] = now32;
        x->n++;
        return true;
    }
    if ((uint32_t)(now32 - x->t[x->head]) < f->window_ms) return false;
    x->t[x->head] = now32;
    x->head = (x->head + 1u) % f->ping_max;
    return true;
}

static bool ping_allowed(struct fconn *c)
{
    struct front *f = FRONT(c);
    uint64_t now = uv_now(&f->loop);
    uint64_t width = f->window_ms / PING_BUCKETS;
    uint32_t total = 0;
    /* Before CONNECT mosquitto refuses the connection anyway; bucket_t0
     * still holds the accept time the CONNECT timeout is measured from. */
    if (!c->connect_seen) return true;
    if (width == 0) width = 1;
    if (now - c->bucket_t0 >= (uint64_t)PING_RING * width) {
        memset(c->buckets, 0, sizeof(c->buckets));
        c->bucket_t0 = now;
    }
    while (now - c->bucket_t0 >= width) {
        c->cur_bucket = (uint8_t)((c->cur_bucket + 1u) % PING_RING);
        c->buckets[c->cur_bucket] = 0;
        c->bucket_t0 += width;
    }
    c->buckets[c->cur_bucket]++;
    if (c->pex != NULL) return ping_exact_allowed(c->pex, f, now);
    for (unsigned i = 0; i < PING_RING; i++)
        total += c->buckets[i];
    if (total > f->ping_max / 2u && f->ping_max <= PING_EXACT_MAX) {
        ping_exact_start(c, f, width);
        if (c->pex != NULL) return ping_exact_allowed(c->pex, f, now);
    }
    return total <= f->ping_max;
}

/* The first CONNECT: clamps the keepalive in place and records the client
 * id. Returns false if the connection must be closed: a CONNECT claiming
 * MQTT 3.1 / 3.1.1 that our parser rejects (mosquitto 2.0.11 accepts some
 * such packets, e.g. the reserved flag bit or will QoS without a will flag,
 * and would then keep an unclamped keepalive). Other protocol levels
 * (MQTT 5) pass untouched. err describes the problem. */
static bool on_connect_packet(struct fconn *c, uint8_t *pkt, size_t len, struct giz_error *err)
{
    struct front *f = FRONT(c);
    struct giz_mqtt_connect cp;
    int rc;
    c->connect_seen = true;
    c->bucket_t0 = uv_now(&f->loop); /* the ping window starts here */
    rc = giz_mqtt_connect_parse(pkt, len, &cp, err);
    if (rc == GIZ_ERR_BAD_VALUE) return true; /* not 3.1/3.1.1: the broker decides */
    if (rc != GIZ_OK) return false;
    if (cp.keepalive == 0 || cp.keepalive > f->keepalive_max) {
        uint16_t ka = (uint16_t)f->keepalive_max;
        if (cp.keepalive_offset + 2u <= len) {
            pkt[cp.keepalive_offset] = (uint8_t)(ka >> 8);
            pkt[cp.keepalive_offset + 1u] = (uint8_t)(ka & 0xffu);
        }
    }
    c->is_device = cp.has_username && cp.username.len == cp.client_id.len && cp.client_id.len > 0 &&
                   memcmp(cp.username.ptr, cp.client_id.ptr, cp.client_id.len) == 0;
    if (cp.client_id.len == 0) return true;
    c->client_id_len = (uint8_t)(cp.client_id.len < CLIENT_ID_MAX ? cp.client_id.len : CLIENT_ID_MAX);
    c->client_id = malloc((size_t)c->client_id_len + 1u);
    if (c->client_id == NULL) {
        c->client_id_len = 0;
        return true;
    }
    memcpy(c->client_id, cp.client_id.ptr, c->client_id_len);
    c->client_id[c->client_id_len] = '\0';
    if (cp.client_id.len <= CLIENT_ID_MAX && memchr(c->client_id, '\0', c->client_id_len) == NULL) {
        handoff__peer_set(&f->g->handoff, c->client_id, c->client_id_len, &c->peer);
        c->peer_recorded = true;
    }
    return true;
}

/* Frames and inspects buf[0..len) (modifying a CONNECT in place), forwards
 * every complete packet and returns how many bytes that was; -1 if the
 * connection is being closed. */
static ssize_t client_packets(struct fconn *c, uint8_t *buf, size_t len)
{
    struct front *f = FRONT(c);
    struct giz_error err;
    size_t off = 0;
    memset(&err, 0, sizeof(err));
    for (;;) {
        size_t pkt_len = 0;
        int rc = giz_mqtt_frame(buf + off, len - off, f->max_packet, &pkt_len, &err);
        if (rc == GIZ_ERR_TRUNCATED) break;
        if (rc != GIZ_OK) {
            char peer[PEER_SIZE];
            giz_log(GIZ_LOG_WARN, "front: closing %s (client %s): %s", peer_str(c, peer),
                    cid_for_log(c),
                    rc == GIZ_ERR_OVERSIZE ? "packet larger than plugin_opt_max_packet"
                                           : "malformed MQTT length");
            conn_close(c);
            return -1;
        }
        uint8_t *pkt = buf + off;
        unsigned type = pkt[0] >> 4;
        if (type == GIZ_MQTT_CONNECT && !c->connect_seen) {
            if (!on_connect_packet(c, pkt, pkt_len, &err)) {
                char peer[PEER_SIZE];
                giz_log(GIZ_LOG_WARN, "front: closing %s: malformed MQTT 3.1/3.1.1 CONNECT: %s at byte %zu",
                        peer_str(c, peer), err.text, err.offset);
                conn_close(c);
                return -1;
            }
        } else if (type == GIZ_MQTT_PINGREQ && !ping_allowed(c)) {
            char peer[PEER_SIZE];
            atomic_fetch_add(&f->stat_ping_closed, 1u);
            giz_log(GIZ_LOG_WARN,
                    "front: closing %s (client %s): more than %u PINGREQ within %u ms",
                    peer_str(c, peer), cid_for_log(c), f->ping_max, f->window_ms);
            /* Forward what came before the offending ping, then close. */
            if (send_copy(c, true, buf, off) == 0) half_close(c, true);
            return -1;
        }
        off += pkt_len;
    }
    if (send_copy(c, true, buf, off) != 0) return -1;
    return (ssize_t)off;
}

/* Client bytes: buf[0..len) is the connection's pending bytes followed by
 * the new ones, in scratch space that is ours to modify (the shared read
 * buffer or plainbuf); whatever cbuf held is superseded. Complete packets
 * are forwarded straight from buf; only an incomplete tail is kept. */
static void client_chunk(struct fconn *c, uint8_t *buf, size_t len)
{
    ssize_t used = client_packets(c, buf, len);
    if (used < 0) return;
    if (pending_keep(&c->cpend, buf + used, len - (size_t)used) != 0)
        conn_close(c);
}

/* New client bytes data[0..n) in scratch space, not preceded by the pending
 * ones: with nothing pending they are framed in place; a packet larger than
 * PENDING_MAX is reassembled in cbuf. */
static void client_data(struct fconn *c, uint8_t *data, size_t n)
{
    ssize_t used;
    if (pending_len(c->cpend) == 0) {
        client_chunk(c, data, n);
        return;
    }
    if (pending_append(&c->cpend, data, n) != 0) {
        conn_close(c);
        return;
    }
    used = client_packets(c, c->cpend->data, c->cpend->len);
    if (used < 0) return;
    if (pending_keep(&c->cpend, c->cpend->data + used, c->cpend->len - (size_t)used) != 0)
        conn_close(c);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fconn *c = s->data;
    struct front *f = FRONT(c);
    if (c->closing) return;
    if (nread < 0) {
        if (nread == UV_EOF)
            half_close(c, true);
        else
            conn_close(c);
        return;
    }
    if (nread == 0) return;
    if (c->ssl == NULL) {
        uint8_t *base = (uint8_t *)buf->base;
        if (base != f->readbuf) /* preceded by the pending bytes (client_alloc_cb) */
            client_chunk(c, f->readbuf, (size_t)(base - f->readbuf) + (size_t)nread);
        else
            client_data(c, base, (size_t)nread);
        return;
    }
    if (BIO_write(SSL_get_rbio(c->ssl), buf->base, (int)nread) != (int)nread) {
        conn_close(c);
        return;
    }
    for (;;) {
        size_t pre = 0;
        if (c->cpend != NULL && c->cpend->len <= PENDING_MAX) {
            memcpy(f->plainbuf, c->cpend->data, c->cpend->len);
            pre = c->cpend->len;
        }
        int n = SSL_read(c->ssl, f->plainbuf + pre, (int)(READ_BUF - pre));
        if (n > 0) {
            if (pre > 0)
                client_chunk(c, f->plainbuf, pre + (size_t)n);
            else
                client_data(c, f->plainbuf, (size_t)n);
            if (c->closing || c->shutting_down) return;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (tls_flush(c) != 0) return; /* handshake records, alerts */
        if (e == SSL_ERROR_WANT_READ) return;
        if (e == SSL_ERROR_ZERO_RETURN) {
            half_close(c, true);
        } else {
            unsigned long code = ERR_get_error();
            char why[160];
            char peer[PEER_SIZE];
            ERR_error_string_n(code, why, sizeof(why));
            ERR_clear_error();
            giz_log(GIZ_LOG_INFO, "front: TLS error from %s: %s", peer_str(c, peer),
                    code != 0 ? why : "connection not TLS or closed");
            conn_close(c);
        }
        return;
    }
}

/* ---- broker -> client ------------------------------------------------------------- */

/* Broker bytes toward a device, buf[0..len) = pending bytes + new ones (may
 * be bbuf itself): one write per MQTT packet, the incomplete tail kept. */
static void device_chunk(struct fconn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t pkt_len = 0;
        struct giz_error err;
        int rc = giz_mqtt_frame(buf + off, len - off, GIZ_VARINT_MAX + 5u, &pkt_len, &err);
        if (rc == GIZ_ERR_TRUNCATED) break;
        if (rc != GIZ_OK) {
            /* Cannot happen with mosquitto; stop framing and relay raw. */
            c->is_device = false;
            if (to_client(c, buf + off, len - off) == 0)
                (void)pending_keep(&c->bpend, NULL, 0);
            return;
        }
        if (to_client(c, buf + off, pkt_len) != 0) return;
        off += pkt_len;
    }
    if (pending_keep(&c->bpend, buf + off, len - off) != 0) conn_close(c);
}

static void device_data(struct fconn *c, const uint8_t *data, size_t n)
{
    if (pending_len(c->bpend) == 0) {
        device_chunk(c, data, n);
        return;
    }
    if (pending_append(&c->bpend, data, n) != 0) {
        conn_close(c);
        return;
    }
    device_chunk(c, c->bpend->data, c->bpend->len);
}

static void broker_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fconn *c = s->data;
    struct front *f = FRONT(c);
    const uint8_t *base = (const uint8_t *)buf->base;
    if (c->closing) return;
    if (nread < 0) {
        if (nread == UV_EOF)
            half_close(c, false);
        else
            conn_close(c);
        return;
    }
    if (nread == 0) return;
    if (base != f->readbuf) /* preceded by the pending bytes (broker_alloc_cb) */
        device_chunk(c, f->readbuf, (size_t)(base - f->readbuf) + (size_t)nread);
    else if (c->is_device)
        device_data(c, base, (size_t)nread);
    else
        to_client(c, base, (size_t)nread);
}

/* ---- accept ---------------------------------------------------------------------- */

/* The relay is complete: start reading both sides. */
static void broker_connected(struct fconn *c)
{
    c->broker_connected = true;
    if (uv_read_start((uv_stream_t *)&c->client, client_alloc_cb, client_read_cb) != 0 ||
        uv_read_start((uv_stream_t *)&c->broker, broker_alloc_cb, broker_read_cb) != 0)
        conn_close(c);
}

/* Connects the conn's unix socket to mosquitto without blocking. mosquitto
 * listens with a small backlog, so under a connection storm connect() says
 * EAGAIN: the socket is kept and retried (front.retry) instead of dropping
 * the client. Returns 0 connected, 1 to retry later, -1 failed (logged, closed). */
static int broker_try_connect(struct fconn *c)
{
    struct front *f = FRONT(c);
    struct sockaddr_un sa;
    char peer[PEER_SIZE];
    int rc;
    if (c->pending_fd < 0) {
        c->pending_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->pending_fd < 0) goto fail;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, f->broker_socket, strlen(f->broker_socket));
    do {
        rc = connect(c->pending_fd, (const struct sockaddr *)&sa, sizeof(sa));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && (errno == EAGAIN || errno == EINPROGRESS)) return 1;
    if (rc != 0) goto fail;
    rc = uv_pipe_open(&c->broker, c->pending_fd);
    if (rc != 0) {
        errno = -rc;
        goto fail;
    }
    c->pending_fd = -1;
    broker_connected(c);
    return 0;
fail:
    giz_log(GIZ_LOG_ERR, "front: cannot reach mosquitto at %s: %s; closing %s", f->broker_socket,
            strerror(errno), peer_str(c, peer));
    conn_close(c);
    return -1;
}

static void retry_cb(uv_timer_t *t)
{
    struct front *f = t->data;
    while (f->wait_head != NULL) {
        struct fconn *c = f->wait_head;
        wait_unlink(c);
        if (broker_try_connect(c) == 1) {
            /* Still no room: put it back first in line and try again later. */
            c->wnext = f->wait_head;
            if (f->wait_head != NULL)
                f->wait_head->wprev = c;
            else
                f->wait_tail = c;
            f->wait_head = c;
            return;
        }
    }
    uv_timer_stop(t);
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct flistener *l = server->data;
    struct front *f = l->f;
    struct fconn *c;
    if (status < 0) return;
    c = calloc(1, sizeof(*c));
    if (c == NULL) return;
    c->client.data = c;
    c->broker.data = c;
    c->pending_fd = -1;
    if (uv_tcp_init(&f->loop, &c->client) != 0) {
        free(c);
        return;
    }
    c->open_handles = 1;
    c->next = f->conns;
    if (f->conns != NULL) f->conns->prev = c;
    f->conns = c;
    atomic_fetch_add(&f->stat_conns, 1u);
    atomic_fetch_add(&f->stat_accepted, 1u);
    if (uv_pipe_init(&f->loop, &c->broker, 0) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->client, close_cb);
        return;
    }
    c->open_handles = 2;
    c->bucket_t0 = uv_now(&f->loop);
    if (uv_accept(server, (uv_stream_t *)&c->client) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    peer_addr_of(&c->client, &c->peer);
    if (l->tls) {
        BIO *rbio = BIO_new(BIO_s_mem());
        BIO *wbio = BIO_new(BIO_s_mem());
        c->ssl = SSL_new(f->ssl_ctx);
        if (c->ssl == NULL || rbio == NULL || wbio == NULL) {
            BIO_free(rbio);
            BIO_free(wbio);
            conn_close(c);
            return;
        }
        SSL_set_bio(c->ssl, rbio, wbio);
        SSL_set_accept_state(c->ssl);
    }
    if (broker_try_connect(c) == 1) {
        atomic_fetch_add(&f->stat_waited, 1u);
        c->wprev = f->wait_tail;
        if (f->wait_tail != NULL)
            f->wait_tail->wnext = c;
        else
            f->wait_head = c;
        f->wait_tail = c;
        if (!uv_is_active((uv_handle_t *)&f->retry)) uv_timer_start(&f->retry, retry_cb, 2, 2);
    }
}

/* Closes connections that never completed their CONNECT. */
static void sweep_cb(uv_timer_t *t)
{
    struct front *f = t->data;
    uint64_t now = uv_now(&f->loop);
    struct fconn *c = f->conns;
    while (c != NULL) {
        struct fconn *next = c->next;
        if (!c->connect_seen && !c->closing && now - c->bucket_t0 > f->connect_timeout_ms) {
            char peer[PEER_SIZE];
            giz_log(GIZ_LOG_INFO, "front: closing %s: no CONNECT within %u ms", peer_str(c, peer),
                    f->connect_timeout_ms);
            conn_close(c);
        }
        c = next;
    }
}

/* ---- thread ---------------------------------------------------------------------- */

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void stop_everything(struct front *f)
{
    struct fconn *c = f->conns;
    while (c != NULL) {
        struct fconn *next = c->next;
        conn_close(c);
        c = next;
    }
    for (unsigned i = 0; i < f->nlisten; i++) {
        if (!uv_is_closing((uv_handle_t *)&f->listeners[i].tcp))
            uv_close((uv_handle_t *)&f->listeners[i].tcp, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&f->sweep)) uv_close((uv_handle_t *)&f->sweep, NULL);
    if (!uv_is_closing((uv_handle_t *)&f->retry)) uv_close((uv_handle_t *)&f->retry, NULL);
    if (!uv_is_closing((uv_handle_t *)&f->async)) uv_close((uv_handle_t *)&f->async, NULL);
}

static void async_cb(uv_async_t *a)
{
    struct front *f = a->data;
    bool stop;
    pthread_mutex_lock(&f->lock);
    stop = f->stop;
    pthread_mutex_unlock(&f->lock);
    if (stop) stop_everything(f);
}

static void *front_thread(void *arg)
{
    struct front *f = arg;
    struct sched_param sp;
    bool stop;
    memset(&sp, 0, sizeof(sp));
    if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp) != 0)
        giz_log(GIZ_LOG_DEBUG, "front: SCHED_BATCH not available; relaying with default policy");
    pthread_mutex_lock(&f->lock);
    while (!f->go && !f->stop)
        pthread_cond_wait(&f->cond, &f->lock);
    stop = f->stop;
    pthread_mutex_unlock(&f->lock);
    if (stop)
        stop_everything(f);
    else {
        uint64_t every = f->connect_timeout_ms / 2u;
        if (every > SWEEP_MAX_MS) every = SWEEP_MAX_MS;
        uv_timer_start(&f->sweep, sweep_cb, every, every);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int listen_one(struct front *f, const struct gizp_listen *l, bool tls)
{
    struct sockaddr_storage ss;
    struct flistener *fl = &f->listeners[f->nlisten];
    uv_tcp_t *tcp = &fl->tcp;
    int rc;
    fl->f = f;
    fl->tls = tls;
    if (strchr(l->host, ':') != NULL)
        rc = uv_ip6_addr(l->host, l->port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(l->host, l->port, (struct sockaddr_in *)&ss);
    if (rc == 0) rc = uv_tcp_init(&f->loop, tcp);
    if (rc != 0) goto fail;
    tcp->data = fl;
    f->nlisten++;
    rc = uv_tcp_bind(tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)tcp, LISTEN_BACKLOG, accept_cb);
    if (rc != 0) goto fail;
    return 0;
fail:
    mosquitto_log_printf(MOSQ_LOG_ERR, "giz: cannot listen%s on %s port %d: %s",
                         tls ? " (TLS)" : "", l->host, l->port, uv_strerror(rc));
    return -1;
}

/* The server context: TLS 1.2+, certificate chain and key from PEM files,
 * checked to match. Logs and returns NULL on any problem (init then fails). */
static SSL_CTX *tls_ctx_new(const char *cert, const char *key)
{
    char why[200] = "";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) goto fail;
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) goto fail;
    if (SSL_CTX_check_private_key(ctx) != 1) goto fail;
    return ctx;
fail:
    ERR_error_string_n(ERR_get_error(), why, sizeof(why));
    ERR_clear_error();
    mosquitto_log_printf(MOSQ_LOG_ERR, "giz: TLS setup failed (cert %s, key %s): %s", cert, key,
                         why);
    SSL_CTX_free(ctx);
    return NULL;
}

/* Closes every handle of a loop that never ran, then the loop. */
static void loop_teardown(struct front *f)
{
    uv_walk(&f->loop, close_walk_cb, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
}

int ping__start(struct gizp *g, struct front **out)
{
    struct front *f = calloc(1, sizeof(*f));
    sigset_t all, old;
    *out = NULL;
    if (f == NULL) return -1;
    f->g = g;
    f->ping_max = g->cfg.ping_max;
    f->window_ms = g->cfg.ping_window_ms;
    f->keepalive_max = g->cfg.keepalive_max;
    f->connect_timeout_ms = g->cfg.connect_timeout_ms;
    f->max_packet = g->cfg.max_packet;
    snprintf(f->broker_socket, sizeof(f->broker_socket), "%s", g->cfg.broker_socket);
    atomic_init(&f->stat_conns, 0u);
    atomic_init(&f->stat_accepted, 0u);
    atomic_init(&f->stat_ping_closed, 0u);
    atomic_init(&f->stat_waited, 0u);
    if (uv_loop_init(&f->loop) != 0) {
        free(f);
        return -1;
    }
    f->loop.data = f; /* FRONT(c) */
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        uv_loop_close(&f->loop);
        free(f);
        return -1;
    }
    pthread_cond_init(&f->cond, NULL);
    f->async.data = f;
    f->sweep.data = f;
    f->retry.data = f;
    if (uv_async_init(&f->loop, &f->async, async_cb) != 0 ||
        uv_timer_init(&f->loop, &f->sweep) != 0 || uv_timer_init(&f->loop, &f->retry) != 0)
        goto fail;
    if (g->cfg.tls_listen_count > 0) {
        f->ssl_ctx = tls_ctx_new(g->cfg.tls_cert, g->cfg.tls_key);
        if (f->ssl_ctx == NULL) goto fail;
    }
    for (unsigned i = 0; i < g->cfg.listen_count; i++) {
        if (listen_one(f, &g->cfg.listen[i], false) != 0) goto fail;
    }
    for (unsigned i = 0; i < g->cfg.tls_listen_count; i++) {
        if (listen_one(f, &g->cfg.tls_listen[i], true) != 0) goto fail;
    }
    /* The thread must not take mosquitto's signals (SIGINT/TERM/HUP...). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&f->thread, NULL, front_thread, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) goto fail;
    f->thread_started = true;
    *out = f;
    return 0;
fail:
    loop_teardown(f);
    SSL_CTX_free(f->ssl_ctx);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
    return -1;
}

void ping__go(struct front *f)
{
    if (f == NULL) return;
    pthread_mutex_lock(&f->lock);
    f->go = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

void ping__stop(struct front *f)
{
    bool running;
    if (f == NULL) return;
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    running = f->go;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    if (running) uv_async_send(&f->async);
    if (f->thread_started) pthread_join(f->thread, NULL);
    /* Anything still open (cannot normally happen) is closed here. */
    uv_walk(&f->loop, close_walk_cb, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    SSL_CTX_free(f->ssl_ctx);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
}

void ping__stats(struct front *f, uint64_t *conns, uint64_t *pings_closed, uint64_t *accepted,
                 uint64_t *waited)
{
    if (f == NULL) return;
    *waited = atomic_load(&f->stat_waited);
    *conns = atomic_load(&f->stat_conns);
    *pings_closed = atomic_load(&f->stat_ping_closed);
    *accepted = atomic_load(&f->stat_accepted);
}
