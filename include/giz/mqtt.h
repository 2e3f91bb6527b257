/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Minimal MQTT 3.1 / 3.1.1 packet framing, parsing and encoding: enough for
 * the plugin's read interposition (lib/mqtt_guard.c parses the CONNECT
 * whose keepalive it clamps in place) and for the tools' client side
 * (gizsim, gizctl). QoS 0 focus; QoS 1 PUBLISH/PUBACK parse for robustness.
 * Nothing here allocates; parsers return views into the caller's packet.
 */
#ifndef GIZ_MQTT_H
#define GIZ_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giz/error.h"
#include "giz/proto.h"

enum giz_mqtt_type {
    GIZ_MQTT_CONNECT = 1,
    GIZ_MQTT_CONNACK = 2,
    GIZ_MQTT_PUBLISH = 3,
    GIZ_MQTT_PUBACK = 4,
    GIZ_MQTT_PUBREC = 5,
    GIZ_MQTT_PUBREL = 6,
    GIZ_MQTT_PUBCOMP = 7,
    GIZ_MQTT_SUBSCRIBE = 8,
    GIZ_MQTT_SUBACK = 9,
    GIZ_MQTT_UNSUBSCRIBE = 10,
    GIZ_MQTT_UNSUBACK = 11,
    GIZ_MQTT_PINGREQ = 12,
    GIZ_MQTT_PINGRESP = 13,
    GIZ_MQTT_DISCONNECT = 14
};

/* Looks at the start of a byte stream. If a whole packet is present, returns
 * GIZ_OK and sets *pkt_len to its total size (fixed header + remaining).
 * Returns GIZ_ERR_TRUNCATED when more bytes are needed (not an error for a
 * stream), GIZ_ERR_BAD_VARINT for a 5-byte remaining length, and
 * GIZ_ERR_OVERSIZE when the announced size exceeds `max_packet`. */
int giz_mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet, size_t *pkt_len,
                   struct giz_error *err);

/* Fields of a CONNECT packet; views point into the packet. */
struct giz_mqtt_connect {
    struct giz_view protocol_name; /* "MQIsdp" (3.1) or "MQTT" (3.1.1) */
    uint8_t protocol_level;        /* 3 or 4 */
    uint8_t connect_flags;
    uint16_t keepalive;
    size_t keepalive_offset; /* offset of the 2 keepalive bytes in the packet */
    struct giz_view client_id;
    bool has_will, has_username, has_password;
    struct giz_view will_topic, will_payload, username, password;
};

/* Parses a complete CONNECT packet (pkt from giz_mqtt_frame). Returns GIZ_OK
 * or GIZ_ERR_BAD_PACKET / GIZ_ERR_TRUNCATED with `err` set. Levels 3 and 4
 * are parsed; other levels return GIZ_ERR_BAD_VALUE (the caller may then
 * pass the packet through untouched and let the broker refuse it). */
int giz_mqtt_connect_parse(const uint8_t *pkt, size_t len, struct giz_mqtt_connect *out,
                           struct giz_error *err);

struct giz_mqtt_publish {
    uint8_t qos;
    bool retain, dup;
    uint16_t packet_id; /* 0 for QoS 0 */
    struct giz_view topic, payload;
};

/* Parses a complete PUBLISH packet (MQTT 3.1/3.1.1). */
int giz_mqtt_publish_parse(const uint8_t *pkt, size_t len, struct giz_mqtt_publish *out,
                           struct giz_error *err);

/* CONNACK: returns GIZ_OK and sets *return_code (0 = accepted). */
int giz_mqtt_connack_parse(const uint8_t *pkt, size_t len, uint8_t *return_code,
                           struct giz_error *err);

/* SUBACK: sets *packet_id and the first granted QoS / 0x80 failure code. */
int giz_mqtt_suback_parse(const uint8_t *pkt, size_t len, uint16_t *packet_id, uint8_t *granted,
                          struct giz_error *err);

/* Encoders. Each writes one complete packet into buf[0..cap), sets *out_len,
 * and returns GIZ_OK or GIZ_ERR_NOSPACE / GIZ_ERR_INVAL. Strings are given
 * as NUL-terminated C strings; NULL means "absent". */
struct giz_mqtt_connect_opts {
    const char *client_id;
    const char *username; /* NULL: no username */
    const char *password; /* NULL: no password */
    uint16_t keepalive;
    uint8_t protocol_level; /* 3 = MQIsdp, 4 = MQTT; 0 means 4 */
    bool clean_session;
};
int giz_mqtt_encode_connect(const struct giz_mqtt_connect_opts *o, uint8_t *buf, size_t cap,
                            size_t *out_len);
int giz_mqtt_encode_publish(const char *topic, const uint8_t *payload, size_t payload_len,
                            uint8_t qos, uint16_t packet_id, uint8_t *buf, size_t cap,
                            size_t *out_len);
int giz_mqtt_encode_subscribe(uint16_t packet_id, const char *topic, uint8_t qos, uint8_t *buf,
                              size_t cap, size_t *out_len);
/* PINGREQ (C0 00) and DISCONNECT (E0 00): 2 bytes each. */
int giz_mqtt_encode_simple(enum giz_mqtt_type type, uint8_t *buf, size_t cap, size_t *out_len);

/* Returns true if `filter` (may contain + and #) matches `topic`. */
bool giz_mqtt_topic_match(const char *filter, const char *topic);

#endif
