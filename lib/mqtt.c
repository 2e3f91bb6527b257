/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Minimal MQTT 3.1 ("MQIsdp", level 3) and 3.1.1 ("MQTT", level 4) framing,
 * parsing and encoding. giz_mqtt_frame() runs on live streams (the tools'
 * client, the fuzzer), so it looks at no more than the first 5 bytes and
 * never reads past `len`. Parsers take one complete packet and hand back
 * views into it; encoders write into the caller's buffer. Nothing allocates.
 *
 * Fixed header: byte 0 = type << 4 | flags, then Remaining Length (the same
 * 1-4 byte varint as the Gizwits payloads, giz_varint_*).
 */
#include <string.h>

#include "giz/mqtt.h"

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* Finds a whole packet at the start of a stream; see mqtt.h.
 * `max_packet` 0 means no limit. OVERSIZE is reported as soon as the
 * Remaining Length is known, before the body has arrived. */
int giz_mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet, size_t *pkt_len,
                   struct giz_error *err)
{
    uint32_t rem;
    size_t used, total;
    int rc;

    if (!buf || len < 2) return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "need the fixed header");
    rc = giz_varint_decode(buf + 1, len - 1, &rem, &used);
    if (rc == GIZ_ERR_TRUNCATED)
        return giz_error_set(err, rc, len, "need the rest of the remaining length");
    if (rc != GIZ_OK) return giz_error_set(err, rc, 1, "remaining length longer than 4 bytes");
    total = 1 + used + (size_t)rem;
    if (max_packet && total > max_packet)
        return giz_error_set(err, GIZ_ERR_OVERSIZE, 1, "packet larger than the limit");
    if (len < total)
        return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "need the rest of the packet");
    if (pkt_len) *pkt_len = total;
    return GIZ_OK;
}

/* Checks the fixed header of a complete packet of `type`; sets *pos to the
 * first byte after it. `flags_mask`/`flags_want` check the low nibble. */
static int fixed_header(const uint8_t *pkt, size_t len, unsigned type, unsigned flags_mask,
                        unsigned flags_want, size_t *pos, struct giz_error *err)
{
    uint32_t rem;
    size_t used;
    int rc;

    if (!pkt || len < 2)
        return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "packet shorter than 2 bytes");
    if ((unsigned)(pkt[0] >> 4) != type)
        return giz_error_set(err, GIZ_ERR_BAD_PACKET, 0, "unexpected packet type");
    if ((pkt[0] & flags_mask) != flags_want)
        return giz_error_set(err, GIZ_ERR_BAD_PACKET, 0, "bad fixed-header flags");
    rc = giz_varint_decode(pkt + 1, len - 1, &rem, &used);
    if (rc == GIZ_ERR_TRUNCATED)
        return giz_error_set(err, rc, len, "packet ends in the remaining length");
    if (rc != GIZ_OK)
        return giz_error_set(err, GIZ_ERR_BAD_PACKET, 1, "remaining length longer than 4 bytes");
    if ((size_t)rem > len - 1 - used)
        return giz_error_set(err, GIZ_ERR_TRUNCATED, len, "packet shorter than announced");
    if ((size_t)rem < len - 1 - used)
        return giz_error_set(err, GIZ_ERR_BAD_PACKET, 1 + used + rem,
                             "bytes after the announced packet");
    *pos = 1 + used;
    return GIZ_OK;
}

/* Reads a 2-byte length-prefixed string/blob at *pos. */
static int rd_str(const uint8_t *pkt, size_t len, size_t *pos, struct giz_view *out,
                  struct giz_error *err, const char *what)
{
    size_t p = *pos, n;

    if (len - p < 2) return giz_error_set(err, GIZ_ERR_BAD_PACKET, p, what);
    n = rd16(pkt + p);
    if (n > len - p - 2) return giz_error_set(err, GIZ_ERR_BAD_PACKET, p, what);
    out->ptr = pkt + p + 2;
    out->len = n;
    *pos = p + 2 + n;
    return GIZ_OK;
}

static bool view_is(struct giz_view v, const char *s)
{
    size_t n = strlen(s);

    return v.len == n && memcmp(v.ptr, s, n) == 0;
}

/* Parses a complete CONNECT packet; see mqtt.h. Protocol name/level pairs
 * other than MQIsdp/3 and MQTT/4 return GIZ_ERR_BAD_VALUE with
 * protocol_name and protocol_level filled in (nothing else is). */
int giz_mqtt_connect_parse(const uint8_t *pkt, size_t len, struct giz_mqtt_connect *out,
                           struct giz_error *err)
{
    struct giz_mqtt_connect c;
    size_t p = 0;
    uint8_t f;
    int rc;

    memset(&c, 0, sizeof c);
    rc = fixed_header(pkt, len, GIZ_MQTT_CONNECT, 0x0Fu, 0x00u, &p, err);
    if (rc != GIZ_OK) goto done;
    rc = rd_str(pkt, len, &p, &c.protocol_name, err, "protocol name");
    if (rc != GIZ_OK) goto done;
    if (len - p < 1) {
        rc = giz_error_set(err, GIZ_ERR_BAD_PACKET, p, "no protocol level");
        goto done;
    }
    c.protocol_level = pkt[p++];
    if (!((c.protocol_level == 3 && view_is(c.protocol_name, "MQIsdp")) ||
          (c.protocol_level == 4 && view_is(c.protocol_name, "MQTT")))) {
        if (out) *out = c;
        rc = giz_error_set(err, GIZ_ERR_BAD_VALUE, p - 1, "unsupported protocol name/level");
        goto done;
    }
    if (len - p < 3) {
        rc = giz_error_set(err, GIZ_ERR_BAD_PACKET, p, "no connect flags/keepalive");
        goto done;
    }
    f = c.connect_flags = pkt[p++];
    c.keepalive_offset = p;
    c.keepalive = rd16(pkt + p);
    p += 2;
    c.has_will = (f & 0x04u) != 0;
    c.has_password = (f & 0x40u) != 0;
    c.has_username = (f & 0x80u) != 0;
    if ((f & 0x01u) || ((f >> 3) & 3u) == 3u || (!c.has_will && (f & 0x38u))) {
        rc = giz_error_set(err, GIZ_ERR_BAD_PACKET, p - 3, "bad connect flags");
        goto done;
    }
    rc = rd_str(pkt, len, &p, &c.client_id, err, "client id");
    if (rc == GIZ_OK && c.has_will) rc = rd_str(pkt, len, &p, &c.will_topic, err, "will topic");
    if (rc == GIZ_OK && c.has_will) rc = rd_str(pkt, len, &p, &c.will_payload, err, "will message");
    if (rc == GIZ_OK && c.has_username) rc = rd_str(pkt, len, &p, &c.username, err, "username");
    if (rc == GIZ_OK && c.has_password) rc = rd_str(pkt, len, &p, &c.password, err, "password");
    if (rc != GIZ_OK) goto done;
    if (p != len) {
        rc = giz_error_set(err, GIZ_ERR_BAD_PACKET, p, "trailing bytes in CONNECT");
        goto done;
    }
    if (out) *out = c;
done:
    return rc;
}

/* Parses a complete PUBLISH packet; see mqtt.h. QoS 3 and a zero packet id
 * at QoS > 0 are GIZ_ERR_BAD_PACKET. */
int giz_mqtt_publish_parse(const uint8_t *pkt, size_t len, struct giz_mqtt_publish *out,
                           struct giz_error *err)
{
    struct giz_mqtt_publish m;
    size_t p = 0;
    int rc;

    memset(&m, 0, sizeof m);
    rc = fixed_header(pkt, len, GIZ_MQTT_PUBLISH, 0x00u, 0x00u, &p, err);
    if (rc != GIZ_OK) return rc;
    m.qos = (uint8_t)((pkt[0] >> 1) & 3u);
    m.dup = (pkt[0] & 0x08u) != 0;
    m.retain = (pkt[0] & 0x01u) != 0;
    if (m.qos == 3) return giz_error_set(err, GIZ_ERR_BAD_PACKET, 0, "QoS 3");
    rc = rd_str(pkt, len, &p, &m.topic, err, "topic");
    if (rc != GIZ_OK) return rc;
    if (m.qos > 0) {
        if (len - p < 2) return giz_error_set(err, GIZ_ERR_BAD_PACKET, p, "no packet id");
        m.packet_id = rd16(pkt + p);
        if (m.packet_id == 0) return giz_error_set(err, GIZ_ERR_BAD_PACKET, p, "packet id 0");
        p += 2;
    }
    m.payload.ptr = pkt + p;
    m.payload.len = len - p;
    if (out) *out = m;
    return GIZ_OK;
}

/* Parses a complete CONNACK (20 02 flags rc); see mqtt.h. */
int giz_mqtt_connack_parse(const uint8_t *pkt, size_t len, uint8_t *return_code,
                           struct giz_error *err)
{
    size_t p = 0;
    int rc = fixed_header(pkt, len, GIZ_MQTT_CONNACK, 0x0Fu, 0x00u, &p, err);

    if (rc != GIZ_OK) return rc;
    if (len - p != 2)
        return giz_error_set(err, GIZ_ERR_BAD_PACKET, 1, "CONNACK remaining length is not 2");
    if (return_code) *return_code = pkt[p + 1];
    return GIZ_OK;
}

/* Parses a complete SUBACK (90 len id return-codes...); every return code
 * must be 0, 1, 2 or 0x80. */
int giz_mqtt_suback_parse(const uint8_t *pkt, size_t len, uint16_t *packet_id, uint8_t *granted,
                          struct giz_error *err)
{
    size_t p = 0;
    int rc = fixed_header(pkt, len, GIZ_MQTT_SUBACK, 0x0Fu, 0x00u, &p, err);

    if (rc != GIZ_OK) return rc;
    if (len - p < 3)
        return giz_error_set(err, GIZ_ERR_BAD_PACKET, p, "SUBACK without return codes");
    for (size_t i = p + 2; i < len; i++)
        if (pkt[i] > 2 && pkt[i] != 0x80)
            return giz_error_set(err, GIZ_ERR_BAD_PACKET, i, "bad SUBACK return code");
    if (packet_id) *packet_id = rd16(pkt + p);
    if (granted) *granted = pkt[p + 2];
    return GIZ_OK;
}

/* Writes the fixed header for `rem` bytes of remaining length; returns the
 * header size or 0 when it or the packet does not fit. */
static size_t put_header(uint8_t first, size_t rem, uint8_t *buf, size_t cap)
{
    uint8_t tmp[4];
    size_t n;

    if (rem > GIZ_VARINT_MAX) return 0;
    n = giz_varint_encode((uint32_t)rem, tmp, sizeof tmp);
    if (cap < 1 + n || cap - 1 - n < rem) return 0;
    buf[0] = first;
    memcpy(buf + 1, tmp, n);
    return 1 + n;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    if (n) memcpy(p + 2, s, n);
    return p + 2 + n;
}

/* Encodes a CONNECT; see mqtt.h. A password without a username, a level
 * other than 0/3/4 or a string over 65535 bytes is GIZ_ERR_INVAL. */
int giz_mqtt_encode_connect(const struct giz_mqtt_connect_opts *o, uint8_t *buf, size_t cap,
                            size_t *out_len)
{
    const char *name;
    const char *cid;
    size_t cid_len, user_len = 0, pass_len = 0, rem, h;
    uint8_t level, flags = 0;
    uint8_t *p;

    if (!o || !buf) return GIZ_ERR_INVAL;
    level = o->protocol_level ? o->protocol_level : 4;
    if (level == 3)
        name = "MQIsdp";
    else if (level == 4)
        name = "MQTT";
    else
        return GIZ_ERR_INVAL;
    if (o->password && !o->username) return GIZ_ERR_INVAL;
    cid = o->client_id ? o->client_id : "";
    cid_len = strlen(cid);
    if (o->username) user_len = strlen(o->username);
    if (o->password) pass_len = strlen(o->password);
    if (cid_len > 0xFFFF || user_len > 0xFFFF || pass_len > 0xFFFF) return GIZ_ERR_INVAL;
    rem = 2 + strlen(name) + 1 + 1 + 2 + 2 + cid_len;
    if (o->username) {
        rem += 2 + user_len;
        flags |= 0x80;
    }
    if (o->password) {
        rem += 2 + pass_len;
        flags |= 0x40;
    }
    if (o->clean_session) flags |= 0x02;
    h = put_header(0x10, rem, buf, cap);
    if (!h) return GIZ_ERR_NOSPACE;
    p = put_str(buf + h, name, strlen(name));
    *p++ = level;
    *p++ = flags;
    *p++ = (uint8_t)(o->keepalive >> 8);
    *p++ = (uint8_t)o->keepalive;
    p = put_str(p, cid, cid_len);
    if (o->username) p = put_str(p, o->username, user_len);
    if (o->password) p = put_str(p, o->password, pass_len);
    if (out_len) *out_len = (size_t)(p - buf);
    return GIZ_OK;
}

/* Encodes a PUBLISH (retain 0, dup 0); see mqtt.h. QoS > 2, a NULL or
 * over-long topic, packet id 0 at QoS > 0, or a NULL payload with a
 * non-zero length is GIZ_ERR_INVAL. */
int giz_mqtt_encode_publish(const char *topic, const uint8_t *payload, size_t payload_len,
                            uint8_t qos, uint16_t packet_id, uint8_t *buf, size_t cap,
                            size_t *out_len)
{
    size_t tlen, rem, h;
    uint8_t *p;

    if (!topic || !buf || qos > 2 || (qos && !packet_id) || (!payload && payload_len))
        return GIZ_ERR_INVAL;
    tlen = strlen(topic);
    if (tlen > 0xFFFF || payload_len > GIZ_VARINT_MAX) return GIZ_ERR_INVAL;
    rem = 2 + tlen + (qos ? 2u : 0u) + payload_len;
    if (rem > GIZ_VARINT_MAX) return GIZ_ERR_INVAL;
    h = put_header((uint8_t)(0x30u | (unsigned)qos << 1), rem, buf, cap);
    if (!h) return GIZ_ERR_NOSPACE;
    p = put_str(buf + h, topic, tlen);
    if (qos) {
        *p++ = (uint8_t)(packet_id >> 8);
        *p++ = (uint8_t)packet_id;
    }
    if (payload_len) memcpy(p, payload, payload_len);
    p += payload_len;
    if (out_len) *out_len = (size_t)(p - buf);
    return GIZ_OK;
}

/* Encodes a SUBSCRIBE with one topic filter; packet id 0, QoS > 2 or a
 * NULL/over-long filter is GIZ_ERR_INVAL. */
int giz_mqtt_encode_subscribe(uint16_t packet_id, const char *topic, uint8_t qos, uint8_t *buf,
                              size_t cap, size_t *out_len)
{
    size_t tlen, h;
    uint8_t *p;

    if (!topic || !buf || !packet_id || qos > 2) return GIZ_ERR_INVAL;
    tlen = strlen(topic);
    if (tlen > 0xFFFF) return GIZ_ERR_INVAL;
    h = put_header(0x82, 2 + 2 + tlen + 1, buf, cap);
    if (!h) return GIZ_ERR_NOSPACE;
    p = buf + h;
    *p++ = (uint8_t)(packet_id >> 8);
    *p++ = (uint8_t)packet_id;
    p = put_str(p, topic, tlen);
    *p++ = qos;
    if (out_len) *out_len = (size_t)(p - buf);
    return GIZ_OK;
}

/* Encodes a 2-byte packet: PINGREQ (C0 00), PINGRESP (D0 00) or DISCONNECT
 * (E0 00); other types are GIZ_ERR_INVAL. */
int giz_mqtt_encode_simple(enum giz_mqtt_type type, uint8_t *buf, size_t cap, size_t *out_len)
{
    if (!buf ||
        (type != GIZ_MQTT_PINGREQ && type != GIZ_MQTT_PINGRESP && type != GIZ_MQTT_DISCONNECT))
        return GIZ_ERR_INVAL;
    if (cap < 2) return GIZ_ERR_NOSPACE;
    buf[0] = (uint8_t)((unsigned)type << 4);
    buf[1] = 0;
    if (out_len) *out_len = 2;
    return GIZ_OK;
}

/* Returns true if `filter` matches `topic` under MQTT rules: '+' matches
 * exactly one level, '#' (last level only) matches the parent and
 * everything below, wildcards in the first level do not match topics
 * starting with '$'. A malformed filter ("a+", "#/a", "a#") matches nothing;
 * a topic containing '+' or '#' matches nothing. NULL matches nothing. */
bool giz_mqtt_topic_match(const char *filter, const char *topic)
{
    const char *f = filter, *t = topic;

    if (!filter || !topic || strpbrk(topic, "+#")) return false;
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
    for (;;) {
        /* f and t each point at the start of a level */
        const char *fe = strchr(f, '/');
        const char *te = strchr(t, '/');
        size_t fl = fe ? (size_t)(fe - f) : strlen(f);
        size_t tl = te ? (size_t)(te - t) : strlen(t);

        if (fl == 1 && f[0] == '#') return fe == NULL;
        if (memchr(f, '#', fl) || (memchr(f, '+', fl) && fl != 1)) return false;
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0)) return false;
        if (!fe && !te) return true;
        if (!fe) return false;
        if (!te) {
            /* topic ended: only a trailing "/#" can still match */
            return strcmp(fe, "/#") == 0;
        }
        f = fe + 1;
        t = te + 1;
    }
}
