/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of MQTT framing, parsing and encoding (lib/mqtt.c): the GAgent
 * CONNECT captured in wire-formats.md as a golden vector, stream framing
 * byte by byte, the parsers' refusals, the encoders' exact bytes and topic
 * filter matching.
 */
#include <stdlib.h>

#include "giz/mqtt.h"
#include "test.h"

#define DID "GdzuSRncfDPGHGo2LxwgM2" /* 22 chars */
#define PASSCODE "0aeb9953f9"        /* 10 chars */

/* GAgent CONNECT: 10 48 | 00 06 'MQIsdp' 03 | C2 | 00 78 | 00 16 <DID> | 00 16 <DID> | 00 0A <pc>.
 * Remaining length: variable header 2+6+1+1+2 = 12, payload 2+22 + 2+22 + 2+10 = 60;
 * 12 + 60 = 72 = 0x48. Total 74 bytes. */
static size_t gagent_connect(uint8_t *b)
{
    size_t n = 0;

    b[n++] = 0x10; /* CONNECT, flags 0 */
    b[n++] = 0x48; /* remaining length 72 */
    b[n++] = 0x00; /* protocol name length 6 */
    b[n++] = 0x06;
    memcpy(b + n, "MQIsdp", 6); /* MQTT 3.1 */
    n += 6;
    b[n++] = 0x03; /* protocol level 3 */
    b[n++] = 0xC2; /* username | password | clean session */
    b[n++] = 0x00; /* keepalive 120 at offset 12 */
    b[n++] = 0x78;
    b[n++] = 0x00; /* client id = DID */
    b[n++] = 0x16;
    memcpy(b + n, DID, 22);
    n += 22;
    b[n++] = 0x00; /* username = DID */
    b[n++] = 0x16;
    memcpy(b + n, DID, 22);
    n += 22;
    b[n++] = 0x00; /* password = passcode */
    b[n++] = 0x0A;
    memcpy(b + n, PASSCODE, 10);
    n += 10;
    return n;
}

static bool view_is(struct giz_view v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

TEST_CASE(gagent_connect)
{
    uint8_t pkt[128], enc[128];
    size_t n = gagent_connect(pkt), plen = 0, elen = 0;
    struct giz_mqtt_connect c;
    struct giz_error e;
    struct giz_mqtt_connect_opts o = {.client_id = DID,
                                      .username = DID,
                                      .password = PASSCODE,
                                      .keepalive = 120,
                                      .protocol_level = 3,
                                      .clean_session = true};

    ASSERT_EQ(n, 74);
    ASSERT_EQ(giz_mqtt_frame(pkt, n, 1024, &plen, &e), GIZ_OK);
    ASSERT_EQ(plen, 74);
    ASSERT_EQ(giz_mqtt_connect_parse(pkt, n, &c, &e), GIZ_OK);
    ASSERT_TRUE(view_is(c.protocol_name, "MQIsdp"));
    ASSERT_EQ(c.protocol_level, 3);
    ASSERT_EQ(c.connect_flags, 0xC2);
    ASSERT_EQ(c.keepalive, 120);
    ASSERT_EQ(c.keepalive_offset, 12);
    ASSERT_TRUE(view_is(c.client_id, DID));
    ASSERT_TRUE(c.has_username && c.has_password && !c.has_will);
    ASSERT_TRUE(view_is(c.username, DID));
    ASSERT_TRUE(view_is(c.password, PASSCODE));
    ASSERT_TRUE(c.password.ptr >= pkt && c.password.ptr + c.password.len == pkt + n);

    /* the proxy rewrites keepalive in place, the packet still parses */
    pkt[c.keepalive_offset] = 0x02;
    pkt[c.keepalive_offset + 1] = 0x58; /* 600 */
    ASSERT_EQ(giz_mqtt_connect_parse(pkt, n, &c, &e), GIZ_OK);
    ASSERT_EQ(c.keepalive, 600);

    /* the encoder writes the same 74 bytes */
    gagent_connect(pkt);
    ASSERT_EQ(giz_mqtt_encode_connect(&o, enc, sizeof enc, &elen), GIZ_OK);
    ASSERT_EQ(elen, 74);
    ASSERT_MEMEQ(enc, pkt, 74);
    ASSERT_EQ(giz_mqtt_encode_connect(&o, enc, 73, &elen), GIZ_ERR_NOSPACE);

    /* every truncation is refused; a byte in the wrong place too */
    for (size_t cut = 0; cut < n; cut++)
        ASSERT_TRUE(giz_mqtt_connect_parse(pkt, cut, &c, &e) != GIZ_OK);
}

TEST_CASE(connect_311_will)
{
    /* MQTT 3.1.1 with a will, no credentials:
     * 10 1A | 00 04 'MQTT' 04 | 0E (will, will QoS 1, clean) | 00 3C
     * | 00 02 'c1' | 00 03 't/w' | 00 03 'bye'
     * remaining = 2+4+1+1+2 + 2+2 + 2+3 + 2+3 = 24 = 0x18 */
    static const uint8_t pkt[] = {0x10, 0x18, 0x00, 0x04, 'M',  'Q', 'T', 'T',  0x04,
                                  0x0E, 0x00, 0x3C, 0x00, 0x02, 'c', '1', 0x00, 0x03,
                                  't',  '/',  'w',  0x00, 0x03, 'b', 'y', 'e'};
    struct giz_mqtt_connect c;
    struct giz_error e;
    uint8_t bad[sizeof pkt];

    ASSERT_EQ(giz_mqtt_connect_parse(pkt, sizeof pkt, &c, &e), GIZ_OK);
    ASSERT_EQ(c.protocol_level, 4);
    ASSERT_EQ(c.keepalive, 60);
    ASSERT_EQ(c.keepalive_offset, 10);
    ASSERT_TRUE(c.has_will && !c.has_username && !c.has_password);
    ASSERT_TRUE(view_is(c.client_id, "c1"));
    ASSERT_TRUE(view_is(c.will_topic, "t/w"));
    ASSERT_TRUE(view_is(c.will_payload, "bye"));

    /* reserved flag bit set */
    memcpy(bad, pkt, sizeof pkt);
    bad[9] |= 0x01;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_BAD_PACKET);
    /* will QoS 3 */
    memcpy(bad, pkt, sizeof pkt);
    bad[9] = 0x1E;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_BAD_PACKET);
    /* will length running past the end */
    memcpy(bad, pkt, sizeof pkt);
    bad[22] = 0x09;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_BAD_PACKET);
    /* level 5: refused as BAD_VALUE so the proxy can pass it through */
    memcpy(bad, pkt, sizeof pkt);
    bad[8] = 0x05;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(c.protocol_level, 5);
    /* "MQTT" with level 3 */
    bad[8] = 0x03;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_BAD_VALUE);
    /* not a CONNECT */
    memcpy(bad, pkt, sizeof pkt);
    bad[0] = 0x30;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_BAD_PACKET);
    /* remaining length says more than present */
    memcpy(bad, pkt, sizeof pkt);
    bad[1] = 0x19;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_TRUNCATED);
    /* remaining length says less: bytes after the packet */
    bad[1] = 0x17;
    ASSERT_EQ(giz_mqtt_connect_parse(bad, sizeof bad, &c, &e), GIZ_ERR_BAD_PACKET);
}

TEST_CASE(frame)
{
    uint8_t stream[512];
    size_t n = gagent_connect(stream), plen = 0;
    struct giz_error e;

    /* PINGREQ right behind the CONNECT */
    stream[n++] = 0xC0;
    stream[n++] = 0x00;
    /* fed one byte at a time: TRUNCATED until all 74 bytes are there */
    for (size_t have = 0; have < 74; have++)
        ASSERT_EQ(giz_mqtt_frame(stream, have, 1024, &plen, &e), GIZ_ERR_TRUNCATED);
    ASSERT_EQ(giz_mqtt_frame(stream, n, 1024, &plen, &e), GIZ_OK);
    ASSERT_EQ(plen, 74);
    ASSERT_EQ(giz_mqtt_frame(stream + 74, n - 74, 1024, &plen, &e), GIZ_OK);
    ASSERT_EQ(plen, 2);
    /* over the limit: known as soon as the remaining length is */
    ASSERT_EQ(giz_mqtt_frame(stream, 2, 73, &plen, &e), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(giz_mqtt_frame(stream, 2, 74, &plen, &e), GIZ_ERR_TRUNCATED);
    /* 0 = no limit */
    ASSERT_EQ(giz_mqtt_frame(stream, n, 0, &plen, &e), GIZ_OK);

    /* 5-byte remaining length */
    static const uint8_t five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    ASSERT_EQ(giz_mqtt_frame(five, sizeof five, 0, &plen, &e), GIZ_ERR_BAD_VARINT);
    ASSERT_EQ(e.offset, 1);
    ASSERT_EQ(giz_mqtt_frame(five, 4, 0, &plen, &e), GIZ_ERR_TRUNCATED);
    /* the parsers call it a malformed packet */
    struct giz_mqtt_publish pub;
    ASSERT_EQ(giz_mqtt_publish_parse(five, sizeof five, &pub, &e), GIZ_ERR_BAD_PACKET);
    ASSERT_EQ(e.offset, 1);
    /* biggest remaining length: FF FF FF 7F, over any sane limit */
    static const uint8_t big[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    ASSERT_EQ(giz_mqtt_frame(big, sizeof big, 1 << 20, &plen, &e), GIZ_ERR_OVERSIZE);
    ASSERT_EQ(giz_mqtt_frame(big, sizeof big, 0, &plen, &e), GIZ_ERR_TRUNCATED);
    /* 2-byte remaining length: 200 = C8 01 */
    memset(stream, 0, sizeof stream);
    stream[0] = 0x30;
    stream[1] = 0xC8;
    stream[2] = 0x01;
    ASSERT_EQ(giz_mqtt_frame(stream, 202, 0, &plen, &e), GIZ_ERR_TRUNCATED);
    ASSERT_EQ(giz_mqtt_frame(stream, 203, 0, &plen, &e), GIZ_OK);
    ASSERT_EQ(plen, 203);
    ASSERT_EQ(giz_mqtt_frame(NULL, 0, 0, &plen, &e), GIZ_ERR_TRUNCATED);
}

TEST_CASE(publish)
{
    uint8_t buf[256];
    size_t n = 0;
    struct giz_mqtt_publish p;
    struct giz_error e;
    static const uint8_t payload[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x10, 0x00, 0x01};
    /* 0x0210 push: 30 | 2C | 00 22 'ser2cli_res/<DID>' (34 bytes) | 8 payload bytes */
    const char *topic = "ser2cli_res/" DID;

    ASSERT_EQ(giz_mqtt_encode_publish(topic, payload, sizeof payload, 0, 0, buf, sizeof buf, &n),
              GIZ_OK);
    /* remaining = 2 + 34 + 8 = 44 = 0x2C */
    ASSERT_EQ(n, 2 + 44);
    ASSERT_EQ(buf[0], 0x30);
    ASSERT_EQ(buf[1], 0x2C);
    ASSERT_EQ(buf[2], 0x00);
    ASSERT_EQ(buf[3], 34);
    ASSERT_MEMEQ(buf + 4, topic, 34);
    ASSERT_MEMEQ(buf + 38, payload, 8);
    ASSERT_EQ(giz_mqtt_publish_parse(buf, n, &p, &e), GIZ_OK);
    ASSERT_EQ(p.qos, 0);
    ASSERT_EQ(p.packet_id, 0);
    ASSERT_TRUE(view_is(p.topic, topic));
    ASSERT_EQ(p.payload.len, 8);
    ASSERT_TRUE(p.payload.ptr == buf + 38);

    /* QoS 1: 32 | rem | 00 01 't' | 12 34 | 'x' */
    static const uint8_t q1[] = {0x32, 0x06, 0x00, 0x01, 't', 0x12, 0x34, 'x'};
    ASSERT_EQ(giz_mqtt_encode_publish("t", (const uint8_t *)"x", 1, 1, 0x1234, buf, sizeof buf, &n),
              GIZ_OK);
    ASSERT_EQ(n, sizeof q1);
    ASSERT_MEMEQ(buf, q1, sizeof q1);
    ASSERT_EQ(giz_mqtt_publish_parse(q1, sizeof q1, &p, &e), GIZ_OK);
    ASSERT_EQ(p.qos, 1);
    ASSERT_EQ(p.packet_id, 0x1234);
    ASSERT_TRUE(view_is(p.payload, "x"));

    /* flags: dup + retain at QoS 0 */
    static const uint8_t dr[] = {0x39, 0x03, 0x00, 0x01, 't'};
    ASSERT_EQ(giz_mqtt_publish_parse(dr, sizeof dr, &p, &e), GIZ_OK);
    ASSERT_TRUE(p.dup && p.retain);
    ASSERT_EQ(p.payload.len, 0);
    /* refusals */
    static const uint8_t q3[] = {0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01};
    ASSERT_EQ(giz_mqtt_publish_parse(q3, sizeof q3, &p, &e), GIZ_ERR_BAD_PACKET);
    static const uint8_t pid0[] = {0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00};
    ASSERT_EQ(giz_mqtt_publish_parse(pid0, sizeof pid0, &p, &e), GIZ_ERR_BAD_PACKET);
    static const uint8_t tlie[] = {0x30, 0x03, 0x00, 0x05, 't'};
    ASSERT_EQ(giz_mqtt_publish_parse(tlie, sizeof tlie, &p, &e), GIZ_ERR_BAD_PACKET);
    static const uint8_t nopid[] = {0x32, 0x04, 0x00, 0x01, 't', 0x01};
    ASSERT_EQ(giz_mqtt_publish_parse(nopid, sizeof nopid, &p, &e), GIZ_ERR_BAD_PACKET);
    ASSERT_EQ(giz_mqtt_encode_publish("t", NULL, 1, 0, 0, buf, sizeof buf, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_mqtt_encode_publish("t", NULL, 0, 1, 0, buf, sizeof buf, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_mqtt_encode_publish("t", NULL, 0, 3, 1, buf, sizeof buf, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_mqtt_encode_publish(NULL, NULL, 0, 0, 0, buf, sizeof buf, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_mqtt_encode_publish("t", (const uint8_t *)"x", 1, 0, 0, buf, 5, &n),
              GIZ_ERR_NOSPACE);

    /* 200-byte payload: 2-byte remaining length 2+1+200 = 203 = CB 01 */
    static uint8_t big[200];
    ASSERT_EQ(giz_mqtt_encode_publish("t", big, sizeof big, 0, 0, buf, sizeof buf, &n), GIZ_OK);
    ASSERT_EQ(n, 3 + 203);
    ASSERT_EQ(buf[1], 0xCB);
    ASSERT_EQ(buf[2], 0x01);
    ASSERT_EQ(giz_mqtt_publish_parse(buf, n, &p, &e), GIZ_OK);
    ASSERT_EQ(p.payload.len, 200);
}

TEST_CASE(subscribe_suback_connack)
{
    uint8_t buf[128];
    size_t n = 0;
    uint16_t pid = 0;
    uint8_t granted = 0xFF, rc = 0xFF;
    struct giz_error e;
    /* the third SUBSCRIBE of official firmware:
     * 82 | 25 | 00 03 (id 3) | 00 20 'app2dev/<DID>/#' | 00 (QoS 0) */
    const char *topic = "app2dev/" DID "/#"; /* 8 + 22 + 2 = 32 */

    ASSERT_EQ(giz_mqtt_encode_subscribe(3, topic, 0, buf, sizeof buf, &n), GIZ_OK);
    /* remaining = 2 (id) + 2 + 32 + 1 (QoS) = 37 = 0x25 */
    ASSERT_EQ(n, 2 + 37);
    ASSERT_EQ(buf[0], 0x82);
    ASSERT_EQ(buf[1], 0x25);
    ASSERT_EQ(buf[2], 0x00);
    ASSERT_EQ(buf[3], 0x03);
    ASSERT_EQ(buf[4], 0x00);
    ASSERT_EQ(buf[5], 32);
    ASSERT_MEMEQ(buf + 6, topic, 32);
    ASSERT_EQ(buf[38], 0x00);
    ASSERT_EQ(giz_mqtt_encode_subscribe(0, topic, 0, buf, sizeof buf, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_mqtt_encode_subscribe(1, topic, 0, buf, 38, &n), GIZ_ERR_NOSPACE);

    static const uint8_t suback[] = {0x90, 0x03, 0x00, 0x03, 0x00};
    ASSERT_EQ(giz_mqtt_suback_parse(suback, sizeof suback, &pid, &granted, &e), GIZ_OK);
    ASSERT_EQ(pid, 3);
    ASSERT_EQ(granted, 0);
    static const uint8_t subfail[] = {0x90, 0x03, 0x00, 0x07, 0x80};
    ASSERT_EQ(giz_mqtt_suback_parse(subfail, sizeof subfail, &pid, &granted, &e), GIZ_OK);
    ASSERT_EQ(granted, 0x80);
    static const uint8_t subbad[] = {0x90, 0x03, 0x00, 0x07, 0x03};
    ASSERT_EQ(giz_mqtt_suback_parse(subbad, sizeof subbad, &pid, &granted, &e), GIZ_ERR_BAD_PACKET);
    static const uint8_t subshort[] = {0x90, 0x02, 0x00, 0x07};
    ASSERT_EQ(giz_mqtt_suback_parse(subshort, sizeof subshort, &pid, &granted, &e),
              GIZ_ERR_BAD_PACKET);

    static const uint8_t connack[] = {0x20, 0x02, 0x00, 0x00};
    ASSERT_EQ(giz_mqtt_connack_parse(connack, sizeof connack, &rc, &e), GIZ_OK);
    ASSERT_EQ(rc, 0);
    static const uint8_t refused[] = {0x20, 0x02, 0x00, 0x05};
    ASSERT_EQ(giz_mqtt_connack_parse(refused, sizeof refused, &rc, &e), GIZ_OK);
    ASSERT_EQ(rc, 5);
    static const uint8_t long_ack[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    ASSERT_EQ(giz_mqtt_connack_parse(long_ack, sizeof long_ack, &rc, &e), GIZ_ERR_BAD_PACKET);
    ASSERT_EQ(giz_mqtt_connack_parse(suback, sizeof suback, &rc, &e), GIZ_ERR_BAD_PACKET);
    ASSERT_EQ(giz_mqtt_connack_parse(connack, 3, &rc, &e), GIZ_ERR_TRUNCATED);

    ASSERT_EQ(giz_mqtt_encode_simple(GIZ_MQTT_PINGREQ, buf, sizeof buf, &n), GIZ_OK);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(buf[0], 0xC0);
    ASSERT_EQ(buf[1], 0x00);
    ASSERT_EQ(giz_mqtt_encode_simple(GIZ_MQTT_DISCONNECT, buf, sizeof buf, &n), GIZ_OK);
    ASSERT_EQ(buf[0], 0xE0);
    ASSERT_EQ(giz_mqtt_encode_simple(GIZ_MQTT_PINGREQ, buf, 1, &n), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_mqtt_encode_simple(GIZ_MQTT_PUBLISH, buf, sizeof buf, &n), GIZ_ERR_INVAL);
}

TEST_CASE(connect_encode)
{
    uint8_t buf[128];
    size_t n = 0;
    struct giz_mqtt_connect c;
    struct giz_mqtt_connect_opts o = {.client_id = "usr6U9jtyINX27hmwBGLV05", .keepalive = 30};

    /* level 0 means 4 ("MQTT"), no credentials, no clean session */
    ASSERT_EQ(giz_mqtt_encode_connect(&o, buf, sizeof buf, &n), GIZ_OK);
    ASSERT_EQ(giz_mqtt_connect_parse(buf, n, &c, NULL), GIZ_OK);
    ASSERT_EQ(c.protocol_level, 4);
    ASSERT_TRUE(view_is(c.protocol_name, "MQTT"));
    ASSERT_EQ(c.connect_flags, 0x00);
    ASSERT_EQ(c.keepalive, 30);
    ASSERT_TRUE(view_is(c.client_id, "usr6U9jtyINX27hmwBGLV05"));
    o.password = "x";
    ASSERT_EQ(giz_mqtt_encode_connect(&o, buf, sizeof buf, &n), GIZ_ERR_INVAL);
    o.username = "2$app$uid";
    ASSERT_EQ(giz_mqtt_encode_connect(&o, buf, sizeof buf, &n), GIZ_OK);
    ASSERT_EQ(giz_mqtt_connect_parse(buf, n, &c, NULL), GIZ_OK);
    ASSERT_TRUE(view_is(c.username, "2$app$uid"));
    ASSERT_TRUE(view_is(c.password, "x"));
    o.protocol_level = 5;
    ASSERT_EQ(giz_mqtt_encode_connect(&o, buf, sizeof buf, &n), GIZ_ERR_INVAL);
}

TEST_CASE(topic_match)
{
    ASSERT_TRUE(giz_mqtt_topic_match("app2dev/+/#", "app2dev/" DID "/usr1"));
    ASSERT_TRUE(giz_mqtt_topic_match("app2dev/" DID "/#", "app2dev/" DID "/usr1"));
    ASSERT_TRUE(giz_mqtt_topic_match("app2dev/" DID "/#", "app2dev/" DID)); /* parent */
    ASSERT_TRUE(giz_mqtt_topic_match("#", "a/b/c"));
    ASSERT_TRUE(giz_mqtt_topic_match("a/+/c", "a/b/c"));
    ASSERT_TRUE(giz_mqtt_topic_match("a/+", "a/")); /* empty level */
    ASSERT_TRUE(giz_mqtt_topic_match("+/+", "/x"));
    ASSERT_TRUE(giz_mqtt_topic_match("dev2app/x", "dev2app/x"));
    ASSERT_TRUE(giz_mqtt_topic_match("+", "abc"));
    ASSERT_TRUE(!giz_mqtt_topic_match("+", "a/b"));
    ASSERT_TRUE(!giz_mqtt_topic_match("a/+", "a/b/c"));
    ASSERT_TRUE(!giz_mqtt_topic_match("a/+", "a"));
    ASSERT_TRUE(!giz_mqtt_topic_match("dev2app/x", "dev2app/xy"));
    ASSERT_TRUE(!giz_mqtt_topic_match("dev2app/xy", "dev2app/x"));
    ASSERT_TRUE(!giz_mqtt_topic_match("a/b", "a/b/"));
    ASSERT_TRUE(!giz_mqtt_topic_match("#", "$SYS/x"));
    ASSERT_TRUE(!giz_mqtt_topic_match("+/x", "$SYS/x"));
    ASSERT_TRUE(giz_mqtt_topic_match("$SYS/#", "$SYS/x"));
    ASSERT_TRUE(!giz_mqtt_topic_match("a/#/b", "a/x/b")); /* malformed filters */
    ASSERT_TRUE(!giz_mqtt_topic_match("a+", "a+"));
    ASSERT_TRUE(!giz_mqtt_topic_match("a#", "a"));
    ASSERT_TRUE(!giz_mqtt_topic_match("a/b", "a/+")); /* wildcard in a topic */
    ASSERT_TRUE(!giz_mqtt_topic_match(NULL, "a"));
    ASSERT_TRUE(!giz_mqtt_topic_match("a", NULL));
}

TEST_LIST(TEST_ENTRY(gagent_connect), TEST_ENTRY(connect_311_will), TEST_ENTRY(frame),
          TEST_ENTRY(publish), TEST_ENTRY(subscribe_suback_connack), TEST_ENTRY(connect_encode),
          TEST_ENTRY(topic_match));
TEST_MAIN()
