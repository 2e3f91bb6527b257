/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * An MQTT 3.1/3.1.1 client connection on a libuv loop, built on the framing
 * and encoders of lib/mqtt.c. It owns the TCP handle, frames the incoming
 * stream into whole packets (handing each to packet_cb) and writes every
 * outgoing packet with its own write call (firmware reads one packet per
 * recv(); the tools keep the same shape). The struct is meant to be embedded
 * in preallocated per-connection state: it allocates only for a partial
 * packet that spans reads and for writes the kernel did not take at once.
 */
#ifndef GIZ_TOOLS_MQTTC_UV_H
#define GIZ_TOOLS_MQTTC_UV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "giz/mqtt.h"
#include "giz/util.h"

/* Receive buffer of firmware (MQTT side). */
#define MQTTC_STRICT_RECV 1024u

enum mqttc_state { MQTTC_IDLE = 0, MQTTC_CONNECTING, MQTTC_OPEN, MQTTC_CLOSING };

/* Why a connection ended (argument of closed_cb). */
enum mqttc_reason {
    MQTTC_BY_US = 0,      /* mqttc__close() */
    MQTTC_CONNECT_FAILED, /* TCP connect failed */
    MQTTC_PEER_CLOSED,    /* EOF from the peer */
    MQTTC_IO_ERROR,       /* read/write error */
    MQTTC_BAD_STREAM,     /* unframeable bytes or oversize packet */
    MQTTC_TLS_FAILED      /* TLS handshake failed (certificate not trusted, ...) */
};
const char *mqttc__reason_name(int reason);

struct mqttc;

struct mqttc_cbs {
    /* TCP connected and CONNECT written (status 0). On failure closed_cb
     * follows with MQTTC_CONNECT_FAILED instead; this is not called. */
    void (*connected_cb)(struct mqttc *c);
    /* One complete packet; pkt[0] >> 4 is its type. Valid during the call. */
    void (*packet_cb)(struct mqttc *c, const uint8_t *pkt, size_t len);
    /* The handle is closed and the struct may be reused (mqttc__connect again). */
    void (*closed_cb)(struct mqttc *c, int reason);
};

struct mqttc {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    const struct mqttc_cbs *cbs;
    void *ud; /* the owner's pointer */
    struct giz_buf
        pending; /* bytes of a packet split across reads (cap: max_packet + 8 + one read) */
    uint32_t max_packet;
    uint8_t state; /* enum mqttc_state */
    uint8_t close_reason;
    /* Firmware reading (set `strict` before mqttc__connect): every read is
     * one recv() of at most MQTTC_STRICT_RECV bytes and holds one packet,
     * as firmware reads it. Bytes after the first packet of a read are
     * lost, and a read that does not hold a whole packet is dropped; both
     * are counted here (never reset by the connection). */
    uint8_t strict;
    uint32_t lost_packets; /* packets (or packet pieces) dropped this way */
    uint32_t lost_bytes;
    /* MQTT over TLS (MQTTS): set tls_ctx (owned by the caller, outlives the
     * connection) and optionally tls_host (name or IP the certificate must
     * match; NULL = no name check) before mqttc__connect. CONNECT is sent
     * once the handshake is done; each packet is one TLS record and one write. */
    SSL_CTX *tls_ctx;
    const char *tls_host;
    SSL *ssl;
    BIO *tls_in, *tls_out; /* network -> SSL, SSL -> network (memory BIOs, owned by ssl) */
    bool tls_ready;        /* handshake done */
    struct giz_mqtt_connect_opts opts; /* strings owned by the caller, read at connect time */
};

/* Prepares an idle connection (no handle yet). */
void mqttc__init(struct mqttc *c, const struct mqttc_cbs *cbs, void *ud, uint32_t max_packet);

/* Starts a TCP connection to addr and, once connected, sends CONNECT built
 * from `opts` (its strings must stay valid until connected_cb/closed_cb).
 * Returns 0 (a connect that fails later, even at once, is reported through
 * closed_cb with MQTTC_CONNECT_FAILED), or a negative libuv error when no
 * TCP handle could be made (state stays IDLE, no callback), or UV_EBUSY
 * when the connection is not idle. */
int mqttc__connect(struct mqttc *c, uv_loop_t *loop, const struct sockaddr *addr,
                   const struct giz_mqtt_connect_opts *opts);

/* Writes one already-encoded packet. Returns 0, or -1 when the connection is
 * not open or the write failed (the connection is then being closed). */
int mqttc__send(struct mqttc *c, const uint8_t *pkt, size_t len);
/* Encodes and sends a QoS 0 PUBLISH / a SUBSCRIBE / a PINGREQ / DISCONNECT. */
int mqttc__publish(struct mqttc *c, const char *topic, const uint8_t *payload, size_t len);
int mqttc__subscribe(struct mqttc *c, uint16_t packet_id, const char *topic);
int mqttc__ping(struct mqttc *c);
int mqttc__disconnect(struct mqttc *c);

/* Closes the connection (no-op unless CONNECTING/OPEN); closed_cb follows
 * with MQTTC_BY_US. */
void mqttc__close(struct mqttc *c);

/* Makes a client TLS context (TLS >= 1.2) that trusts the PEM CA file
 * `cafile` (NULL = the system store). Returns NULL on error (message in
 * err). The caller frees it with SSL_CTX_free. */
SSL_CTX *mqttc__tls_ctx(const char *cafile, char *err, size_t err_cap);

/* Bytes written but not yet taken by the kernel. */
size_t mqttc__queued(const struct mqttc *c);

#endif
