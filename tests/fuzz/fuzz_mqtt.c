/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for MQTT framing and parsing. The input is treated as a
 * stream: giz_mqtt_frame() cuts it into packets (as the tools' client does
 * with what the broker sends) and each packet goes through the CONNECT, PUBLISH, CONNACK
 * and SUBACK parsers. Invariants: frame lengths are sane and never exceed
 * the input or the limit; parsed views lie inside the packet; the CONNECT
 * keepalive sits at keepalive_offset; PUBLISH and simple CONNECTs re-encode
 * and re-parse to the same fields. A final pass feeds the input, split at
 * its first NUL, to the topic matcher.
 */
#include <string.h>

#include "fuzz.h"
#include "giz/mqtt.h"

#define MAX_PACKET 4096u

static bool view_eq(struct giz_view a, struct giz_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Copies a view into a NUL-terminated string; false if it holds a NUL or
 * does not fit. */
static bool cstr(struct giz_view v, char *out, size_t cap)
{
    if (v.len >= cap || (v.len && memchr(v.ptr, 0, v.len))) return false;
    if (v.len) memcpy(out, v.ptr, v.len);
    out[v.len] = 0;
    return true;
}

static void check_connect(const uint8_t *pkt, size_t len)
{
    static char cid[MAX_PACKET], user[MAX_PACKET], pass[MAX_PACKET];
    static uint8_t enc[3 * MAX_PACKET + 64];
    struct giz_mqtt_connect c, c2;
    struct giz_error err;
    size_t n = 0;
    int rc = giz_mqtt_connect_parse(pkt, len, &c, &err);

    if (rc != GIZ_OK) {
        FUZZ_CHECK(err.code == rc && err.offset <= len);
        return;
    }
    FUZZ_CHECK(c.protocol_level == 3 || c.protocol_level == 4);
    FUZZ_CHECK(c.keepalive_offset + 2 <= len);
    FUZZ_CHECK(c.keepalive ==
               (uint16_t)(pkt[c.keepalive_offset] << 8 | pkt[c.keepalive_offset + 1]));
    FUZZ_CHECK(FUZZ_INSIDE(c.protocol_name.ptr, c.protocol_name.len, pkt, len));
    FUZZ_CHECK(FUZZ_INSIDE(c.client_id.ptr, c.client_id.len, pkt, len));
    FUZZ_CHECK(FUZZ_INSIDE(c.will_topic.ptr, c.will_topic.len, pkt, len));
    FUZZ_CHECK(FUZZ_INSIDE(c.will_payload.ptr, c.will_payload.len, pkt, len));
    FUZZ_CHECK(FUZZ_INSIDE(c.username.ptr, c.username.len, pkt, len));
    FUZZ_CHECK(FUZZ_INSIDE(c.password.ptr, c.password.len, pkt, len));
    FUZZ_CHECK(c.has_username || c.username.len == 0);
    FUZZ_CHECK(c.has_password || c.password.len == 0);

    /* re-encode the simple shapes the encoder can express */
    if (!c.has_will && (c.connect_flags & ~0xC2u) == 0 && (c.has_username || !c.has_password) &&
        cstr(c.client_id, cid, sizeof cid) && cstr(c.username, user, sizeof user) &&
        cstr(c.password, pass, sizeof pass)) {
        struct giz_mqtt_connect_opts o = {.client_id = cid,
                                          .username = c.has_username ? user : NULL,
                                          .password = c.has_password ? pass : NULL,
                                          .keepalive = c.keepalive,
                                          .protocol_level = c.protocol_level,
                                          .clean_session = (c.connect_flags & 0x02u) != 0};

        FUZZ_CHECK(giz_mqtt_encode_connect(&o, enc, sizeof enc, &n) == GIZ_OK);
        /* the same bytes, unless the input used a non-minimal remaining length */
        FUZZ_CHECK(n <= len);
        FUZZ_CHECK(giz_mqtt_connect_parse(enc, n, &c2, NULL) == GIZ_OK);
        FUZZ_CHECK(c2.connect_flags == c.connect_flags && c2.keepalive == c.keepalive);
        FUZZ_CHECK(view_eq(c2.client_id, c.client_id) && view_eq(c2.username, c.username) &&
                   view_eq(c2.password, c.password));
        FUZZ_CHECK(giz_mqtt_encode_connect(&o, enc, n - 1, &n) == GIZ_ERR_NOSPACE);
    }
}

static void check_publish(const uint8_t *pkt, size_t len)
{
    static char topic[MAX_PACKET];
    static uint8_t enc[MAX_PACKET + 64];
    struct giz_mqtt_publish p, p2;
    struct giz_error err;
    size_t n = 0;
    int rc = giz_mqtt_publish_parse(pkt, len, &p, &err);

    if (rc != GIZ_OK) {
        FUZZ_CHECK(err.code == rc && err.offset <= len);
        return;
    }
    FUZZ_CHECK(p.qos <= 2);
    FUZZ_CHECK((p.qos == 0) == (p.packet_id == 0));
    FUZZ_CHECK(FUZZ_INSIDE(p.topic.ptr, p.topic.len, pkt, len));
    FUZZ_CHECK(FUZZ_INSIDE(p.payload.ptr, p.payload.len, pkt, len));
    FUZZ_CHECK(p.payload.ptr + p.payload.len == pkt + len);
    if (cstr(p.topic, topic, sizeof topic)) {
        FUZZ_CHECK(giz_mqtt_encode_publish(topic, p.payload.ptr, p.payload.len, p.qos, p.packet_id,
                                           enc, sizeof enc, &n) == GIZ_OK);
        FUZZ_CHECK(n <= len);
        if (n == len && !p.dup && !p.retain) FUZZ_CHECK(memcmp(enc, pkt, len) == 0);
        FUZZ_CHECK(giz_mqtt_publish_parse(enc, n, &p2, NULL) == GIZ_OK);
        FUZZ_CHECK(p2.qos == p.qos && p2.packet_id == p.packet_id);
        FUZZ_CHECK(view_eq(p2.topic, p.topic) && view_eq(p2.payload, p.payload));
    }
}

static void check_acks(const uint8_t *pkt, size_t len)
{
    struct giz_error err;
    uint8_t code = 0xEE, granted = 0xEE;
    uint16_t pid = 0;
    int rc;

    rc = giz_mqtt_connack_parse(pkt, len, &code, &err);
    if (rc == GIZ_OK)
        FUZZ_CHECK(len >= 4 && pkt[0] == 0x20 &&
                   code == pkt[len - 1]); /* varint may be non-minimal */
    else
        FUZZ_CHECK(err.code == rc && err.offset <= len);
    rc = giz_mqtt_suback_parse(pkt, len, &pid, &granted, &err);
    if (rc == GIZ_OK)
        FUZZ_CHECK(pkt[0] == 0x90 && len >= 5 && (granted <= 2 || granted == 0x80));
    else
        FUZZ_CHECK(err.code == rc && err.offset <= len);
}

static void check_topics(const uint8_t *data, size_t size)
{
    static char filter[MAX_PACKET], topic[MAX_PACKET];
    const uint8_t *nul = memchr(data, 0, size);
    size_t flen, tlen;

    if (!nul) return;
    flen = (size_t)(nul - data);
    tlen = size - flen - 1;
    if (flen >= sizeof filter || tlen >= sizeof topic) return;
    memcpy(filter, data, flen);
    filter[flen] = 0;
    memcpy(topic, nul + 1, tlen);
    topic[tlen] = 0; /* an embedded NUL just shortens the topic */
    (void)giz_mqtt_topic_match(filter, topic);
    /* a topic without wildcards matches itself, "#" matches any non-$ topic */
    if (!strpbrk(filter, "+#")) FUZZ_CHECK(giz_mqtt_topic_match(filter, filter));
    if (!strpbrk(topic, "+#") && topic[0] != '$') FUZZ_CHECK(giz_mqtt_topic_match("#", topic));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    while (off < size) {
        struct giz_error err;
        size_t pkt_len = 0;
        int rc = giz_mqtt_frame(data + off, size - off, MAX_PACKET, &pkt_len, &err);

        if (rc != GIZ_OK) {
            FUZZ_CHECK(rc == GIZ_ERR_TRUNCATED || rc == GIZ_ERR_BAD_VARINT ||
                       rc == GIZ_ERR_OVERSIZE);
            FUZZ_CHECK(err.code == rc && err.offset <= size - off);
            break;
        }
        FUZZ_CHECK(pkt_len >= 2 && pkt_len <= size - off && pkt_len <= MAX_PACKET);
        /* the same answer without a limit */
        FUZZ_CHECK(giz_mqtt_frame(data + off, size - off, 0, &pkt_len, NULL) == GIZ_OK);
        /* the exact packet frames alone; one byte less does not */
        FUZZ_CHECK(giz_mqtt_frame(data + off, pkt_len, MAX_PACKET, &pkt_len, NULL) == GIZ_OK);
        FUZZ_CHECK(giz_mqtt_frame(data + off, pkt_len - 1, MAX_PACKET, NULL, NULL) ==
                   GIZ_ERR_TRUNCATED);
        check_connect(data + off, pkt_len);
        check_publish(data + off, pkt_len);
        check_acks(data + off, pkt_len);
        off += pkt_len;
    }
    check_topics(data, size);
    return 0;
}
