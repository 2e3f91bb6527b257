/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * MQTT client connection on libuv (see mqttc_uv.h). Reads land in one shared
 * 64 KiB buffer and whole packets are handed out from it directly; only the
 * tail of a packet that spans reads is copied into a per-connection buffer.
 * Writes try uv_try_write first and queue a copy of what is left. In strict
 * mode a read is one firmware recv(): 1024 bytes at most, one packet taken
 * from its start, the rest lost and counted. (libuv calls the read callback
 * once per read(2), so one callback is one recv().) With a TLS context the
 * stream goes through OpenSSL memory BIOs: ciphertext in and out on the same
 * libuv handle, packets framed from the decrypted bytes.
 */
#include "mqttc_uv.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t mqttc_readbuf[65536];
/* Strict (firmware) reads: one recv() into 1024 bytes. */
static uint8_t mqttc_strictbuf[MQTTC_STRICT_RECV];

struct mqttc_write {
    uv_write_t req;
    struct mqttc *c;
    size_t len;
    uint8_t data[];
};

const char *mqttc__reason_name(int reason)
{
    switch (reason) {
    case MQTTC_BY_US:
        return "closed";
    case MQTTC_CONNECT_FAILED:
        return "connect_failed";
    case MQTTC_PEER_CLOSED:
        return "peer_closed";
    case MQTTC_IO_ERROR:
        return "io_error";
    case MQTTC_BAD_STREAM:
        return "bad_stream";
    case MQTTC_TLS_FAILED:
        return "tls_handshake_failed";
    default:
        return "unknown";
    }
}

void mqttc__init(struct mqttc *c, const struct mqttc_cbs *cbs, void *ud, uint32_t max_packet)
{
    memset(c, 0, sizeof *c);
    c->cbs = cbs;
    c->ud = ud;
    c->max_packet = max_packet ? max_packet : (1u << 20);
    giz_buf_init(&c->pending, (size_t)c->max_packet + 8u + sizeof mqttc_readbuf);
}

static void on_closed(uv_handle_t *h)
{
    struct mqttc *c = h->data;
    if (c->ssl != NULL) {
        SSL_free(c->ssl); /* frees both BIOs */
        c->ssl = NULL;
        c->tls_in = c->tls_out = NULL;
    }
    c->tls_ready = false;
    giz_buf_free(&c->pending);
    c->state = MQTTC_IDLE;
    c->cbs->closed_cb(c, c->close_reason);
}

static void close_with(struct mqttc *c, int reason)
{
    if (c->state == MQTTC_IDLE || c->state == MQTTC_CLOSING) return;
    c->state = MQTTC_CLOSING;
    c->close_reason = (uint8_t)reason;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void mqttc__close(struct mqttc *c)
{
    close_with(c, MQTTC_BY_US);
}

size_t mqttc__queued(const struct mqttc *c)
{
    return c->state == MQTTC_OPEN ? c->tcp.write_queue_size : 0;
}

static void on_write(uv_write_t *req, int status)
{
    struct mqttc_write *w = (struct mqttc_write *)req;
    struct mqttc *c = w->c;
    free(w);
    if (status < 0 && status != UV_ECANCELED) close_with(c, MQTTC_IO_ERROR);
}

/* Writes bytes on the socket (try_write, then a queued copy). */
static int raw_send(struct mqttc *c, const uint8_t *pkt, size_t len)
{
    uv_buf_t b;
    int n;
    struct mqttc_write *w;

    if (c->state != MQTTC_OPEN) return -1;
    b = uv_buf_init((char *)(uintptr_t)pkt, (unsigned)len);
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n >= 0 && (size_t)n == len) return 0;
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
        close_with(c, MQTTC_IO_ERROR);
        return -1;
    }
    if (n < 0) n = 0;
    w = malloc(sizeof *w + len - (size_t)n);
    if (w == NULL) {
        close_with(c, MQTTC_IO_ERROR);
        return -1;
    }
    w->c = c;
    w->len = len - (size_t)n;
    memcpy(w->data, pkt + n, w->len);
    b = uv_buf_init((char *)w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w);
        close_with(c, MQTTC_IO_ERROR);
        return -1;
    }
    return 0;
}

/* Sends what OpenSSL has produced for the network, as one write. */
static int tls_flush(struct mqttc *c)
{
    size_t n = (size_t)BIO_ctrl_pending(c->tls_out);
    uint8_t stack[4096], *buf = stack;
    int rc = 0, got;

    if (n == 0) return 0;
    if (n > sizeof stack && (buf = malloc(n)) == NULL) {
        close_with(c, MQTTC_IO_ERROR);
        return -1;
    }
    got = BIO_read(c->tls_out, buf, (int)n);
    if (got > 0) rc = raw_send(c, buf, (size_t)got);
    if (buf != stack) free(buf);
    return rc;
}

int mqttc__send(struct mqttc *c, const uint8_t *pkt, size_t len)
{
    if (c->state != MQTTC_OPEN) return -1;
    if (c->ssl == NULL) return raw_send(c, pkt, len);
    if (!c->tls_ready || len > INT32_MAX || SSL_write(c->ssl, pkt, (int)len) != (int)len) {
        close_with(c, MQTTC_IO_ERROR);
        return -1;
    }
    return tls_flush(c);
}

SSL_CTX *mqttc__tls_ctx(const char *cafile, char *err, size_t err_cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        snprintf(err, err_cap, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((cafile != NULL && SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) ||
        (cafile == NULL && SSL_CTX_set_default_verify_paths(ctx) != 1)) {
        snprintf(err, err_cap, "cannot load the CA certificates%s%s", cafile ? " from " : "",
                 cafile ? cafile : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int mqttc__publish(struct mqttc *c, const char *topic, const uint8_t *payload, size_t len)
{
    uint8_t stack[2048];
    uint8_t *buf = stack;
    size_t cap = sizeof stack, out = 0;
    int rc;

    if (len + strlen(topic) + 16 > cap) {
        cap = len + strlen(topic) + 16;
        buf = malloc(cap);
        if (buf == NULL) return -1;
    }
    rc = giz_mqtt_encode_publish(topic, payload, len, 0, 0, buf, cap, &out);
    rc = rc == GIZ_OK ? mqttc__send(c, buf, out) : -1;
    if (buf != stack) free(buf);
    return rc;
}

int mqttc__subscribe(struct mqttc *c, uint16_t packet_id, const char *topic)
{
    uint8_t buf[512];
    size_t out = 0;
    if (giz_mqtt_encode_subscribe(packet_id, topic, 0, buf, sizeof buf, &out) != GIZ_OK) return -1;
    return mqttc__send(c, buf, out);
}

/* Sends a packet of just a fixed header (PINGREQ, DISCONNECT). 0 or -1. */
static int send_simple(struct mqttc *c, enum giz_mqtt_type type)
{
    uint8_t buf[2];
    size_t out = 0;
    if (giz_mqtt_encode_simple(type, buf, sizeof buf, &out) != GIZ_OK) return -1;
    return mqttc__send(c, buf, out);
}

int mqttc__ping(struct mqttc *c)
{
    return send_simple(c, GIZ_MQTT_PINGREQ);
}

int mqttc__disconnect(struct mqttc *c)
{
    return send_simple(c, GIZ_MQTT_DISCONNECT);
}

/* Hands out every whole packet of data[0..len); returns how many bytes were
 * consumed, or -1 when the stream is bad (the connection is then closing). */
static long deliver(struct mqttc *c, const uint8_t *data, size_t len)
{
    size_t off = 0;

    while (off < len && c->state == MQTTC_OPEN) {
        size_t pkt_len = 0;
        int rc = giz_mqtt_frame(data + off, len - off, c->max_packet, &pkt_len, NULL);
        if (rc == GIZ_ERR_TRUNCATED) break;
        if (rc != GIZ_OK) {
            close_with(c, MQTTC_BAD_STREAM);
            return -1;
        }
        c->cbs->packet_cb(c, data + off, pkt_len);
        off += pkt_len;
    }
    return (long)off;
}

static int keep_tail(struct mqttc *c, const uint8_t *data, size_t len)
{
    giz_buf_reset(&c->pending);
    return giz_buf_append(&c->pending, data, len) == GIZ_OK ? 0 : -1;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    const struct mqttc *c = h->data;
    (void)suggested;
    if (c->strict)
        *buf = uv_buf_init((char *)mqttc_strictbuf, sizeof mqttc_strictbuf);
    else
        *buf = uv_buf_init((char *)mqttc_readbuf, sizeof mqttc_readbuf);
}

/* One firmware recv(): the packet at the start, if whole, is handled; the
 * bytes after it are lost (counted as the packets they frame, at least one);
 * a read without a whole packet at its start is dropped entirely. */
static void strict_read(struct mqttc *c, const uint8_t *data, size_t len)
{
    size_t pkt_len = 0, off;

    if (giz_mqtt_frame(data, len, MQTTC_STRICT_RECV, &pkt_len, NULL) != GIZ_OK) {
        c->lost_packets++;
        c->lost_bytes += (uint32_t)len;
        return;
    }
    c->cbs->packet_cb(c, data, pkt_len);
    off = pkt_len;
    if (off < len) {
        uint32_t n = 0;
        c->lost_bytes += (uint32_t)(len - off);
        while (off < len &&
               giz_mqtt_frame(data + off, len - off, MQTTC_STRICT_RECV, &pkt_len, NULL) == GIZ_OK) {
            n++;
            off += pkt_len;
        }
        if (off < len) n++; /* a piece of one more */
        c->lost_packets += n;
    }
}

/* Plain bytes of the stream (decrypted, with TLS): frames and delivers. */
static void handle_bytes(struct mqttc *c, const uint8_t *data, size_t len)
{
    long used;

    if (len == 0 || c->state != MQTTC_OPEN) return;
    if (c->strict) {
        strict_read(c, data, len);
        return;
    }
    if (c->pending.len > 0) {
        /* Complete the split packet first, from the pending buffer. */
        int brc = giz_buf_append(&c->pending, data, len);
        if (brc != GIZ_OK) {
            close_with(c, brc == GIZ_ERR_OVERSIZE ? MQTTC_BAD_STREAM : MQTTC_IO_ERROR);
            return;
        }
        used = deliver(c, c->pending.data, c->pending.len);
        if (used < 0 || c->state != MQTTC_OPEN) return;
        giz_buf_consume(&c->pending, (size_t)used);
        return;
    }
    used = deliver(c, data, len);
    if (used < 0 || c->state != MQTTC_OPEN) return;
    if ((size_t)used < len && keep_tail(c, data + used, len - (size_t)used) != 0)
        close_with(c, MQTTC_IO_ERROR);
}

static void send_connect(struct mqttc *c);

/* Feeds ciphertext to OpenSSL: finishes the handshake (then CONNECT), and
 * hands every decrypted chunk (one TLS record at most) to handle_bytes. */
static void tls_read(struct mqttc *c, const uint8_t *data, size_t len)
{
    static uint8_t plain[16384];
    int n = 0;

    if (BIO_write(c->tls_in, data, (int)len) != (int)len) {
        close_with(c, MQTTC_IO_ERROR);
        return;
    }
    if (!c->tls_ready) {
        int rc = SSL_do_handshake(c->ssl);
        if (tls_flush(c) != 0) return;
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                close_with(c, MQTTC_TLS_FAILED);
            }
            return;
        }
        c->tls_ready = true;
        send_connect(c);
    }
    while (c->state == MQTTC_OPEN && (n = SSL_read(c->ssl, plain, (int)sizeof plain)) > 0)
        handle_bytes(c, plain, (size_t)n);
    if (c->state == MQTTC_OPEN) {
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN)
            close_with(c, MQTTC_PEER_CLOSED);
        else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            close_with(c, MQTTC_IO_ERROR);
        else
            (void)tls_flush(c);
    }
    ERR_clear_error();
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mqttc *c = s->data;

    if (nread < 0) {
        close_with(c, nread == UV_EOF ? MQTTC_PEER_CLOSED : MQTTC_IO_ERROR);
        return;
    }
    if (nread == 0 || c->state != MQTTC_OPEN) return;
    if (c->ssl != NULL)
        tls_read(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        handle_bytes(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void send_connect(struct mqttc *c)
{
    uint8_t buf[512];
    size_t out = 0;

    if (giz_mqtt_encode_connect(&c->opts, buf, sizeof buf, &out) != GIZ_OK ||
        mqttc__send(c, buf, out) != 0) {
        close_with(c, MQTTC_IO_ERROR);
        return;
    }
    c->cbs->connected_cb(c);
}

/* Starts the client handshake over memory BIOs. 0 or -1. */
static int tls_start(struct mqttc *c)
{
    int rc;

    c->ssl = SSL_new(c->tls_ctx);
    c->tls_in = BIO_new(BIO_s_mem());
    c->tls_out = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->tls_in == NULL || c->tls_out == NULL) {
        if (c->ssl == NULL) {
            BIO_free(c->tls_in);
            BIO_free(c->tls_out);
        } else {
            SSL_set_bio(c->ssl, c->tls_in, c->tls_out);
        }
        return -1;
    }
    SSL_set_bio(c->ssl, c->tls_in, c->tls_out);
    if (c->tls_host != NULL && c->tls_host[0] != '\0') {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(c->tls_host);
        if (ip != NULL) {
            ASN1_OCTET_STRING_free(ip);
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->tls_host) != 1) return -1;
        } else if (SSL_set1_host(c->ssl, c->tls_host) != 1 ||
                   SSL_set_tlsext_host_name(c->ssl, c->tls_host) != 1) {
            return -1;
        }
    }
    SSL_set_connect_state(c->ssl);
    rc = SSL_do_handshake(c->ssl);
    (void)rc; /* WANT_READ: the ClientHello is in tls_out */
    ERR_clear_error();
    return tls_flush(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct mqttc *c = req->data;

    if (c->state != MQTTC_CONNECTING) return; /* closed meanwhile */
    if (status < 0) {
        close_with(c, MQTTC_CONNECT_FAILED);
        return;
    }
    c->state = MQTTC_OPEN;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        close_with(c, MQTTC_IO_ERROR);
        return;
    }
    if (c->tls_ctx != NULL) {
        if (tls_start(c) != 0 && c->state == MQTTC_OPEN) close_with(c, MQTTC_TLS_FAILED);
        return; /* CONNECT once the handshake is done */
    }
    send_connect(c);
}

int mqttc__connect(struct mqttc *c, uv_loop_t *loop, const struct sockaddr *addr,
                   const struct giz_mqtt_connect_opts *opts)
{
    int rc;

    if (c->state != MQTTC_IDLE) return UV_EBUSY;
    rc = uv_tcp_init(loop, &c->tcp);
    if (rc != 0) return rc;
    c->tcp.data = c;
    c->connect_req.data = c;
    c->opts = *opts;
    giz_buf_reset(&c->pending);
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = MQTTC_CONNECTING;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect);
    if (rc != 0) {
        /* Close the handle; report through closed_cb like any failed connect. */
        close_with(c, MQTTC_CONNECT_FAILED);
        return 0;
    }
    return 0;
}
