/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Golden tests of the data-point codec (giz/p0.h): schema parsing and its
 * checks, the fixed and variable-length actions, bit groups, ratio/addition,
 * enums, binary, and every decoder refusal (truncated, trailing, unknown
 * action, flags naming no point, enum past its labels). The byte vectors are
 * written out here by hand; where they come from the public Gizwits docs
 * (github:gizwits-docs/gizwits-docs) the case names the file.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "giz/p0.h"
#include "test.h"

/* A point as the Gizwits JSON writes it. */
#define PT(name, type, dt, unit, byte_off, bit_off, len, extra)                                    \
    "{\"name\":\"" name "\",\"type\":\"" type "\",\"data_type\":\"" dt                             \
    "\",\"position\":{\"unit\":\"" unit "\",\"byte_offset\":" #byte_off                            \
    ",\"bit_offset\":" #bit_off ",\"len\":" #len "}" extra "}"
#define SCHEMA(ptype, points)                                                                      \
    "{\"name\":\"t\",\"protocolType\":\"" ptype "\",\"packetVersion\":\"0x00000004\","             \
    "\"entities\":[{\"id\":0,\"name\":\"entity0\",\"attrs\":[" points "]}]}"

/* A schema that fits the raw_data byte examples of source/en-us/cloud/OpenAPI.md
 * (the docs give the bytes, not their product's schema): a 4-byte writable
 * area (power bit 0 of byte 0, speed byte 1, level bytes 2-3) and 3 read-only
 * bytes (temp with addition -20, humidity, an alert/fault bit group). */
static const char open_api_schema[] = SCHEMA(
    "standard",
    PT("power", "status_writable", "bool", "bit", 0, 0, 1, "") "," PT(
        "level", "status_writable", "uint16", "byte", 2, 0, 2,
        ",\"uint_spec\":{\"min\":0,\"max\":1000,\"ratio\":1,\"addition\":"
        "0}") "," PT("speed", "status_writable", "uint8", "byte", 1, 0, 1,
                     "") "," PT("temp", "status_readonly", "uint8", "byte", 4, 0, 1,
                                ",\"uint_spec\":{\"min\":0,"
                                "\"max\":200,\"ratio\":1,"
                                "\"addition\":-20}") "," PT("humid"
                                                            "ity",
                                                            "statu"
                                                            "s_"
                                                            "reado"
                                                            "nly",
                                                            "uint"
                                                            "8",
                                                            "byte", 5, 0, 1,
                                                            "") "," PT("alert_a", "alert", "bool",
                                                                       "bit", 6, 0, 1,
                                                                       "") "," PT("fault_b",
                                                                                  "fault", "bool",
                                                                                  "bit", 6, 1, 1,
                                                                                  ""));

/* The GoKit "WeChat Pet House" positions (its public data-point JSON; the
 * flag order of source/en-us/DeviceDev/GoKit/GokitSoCProgram.md: bit0
 * LED_OnOff ... bit5 Motor_Speed). */
static const char pet_schema[] = SCHEMA("standard",
                                        PT(
                                            "LED_OnOff", "status_writable", "bool", "bit", 0, 0, 1, "") "," PT("LED_Color", "status_writable", "enum", "bit", 0, 1, 2, ",\"enum\":[\"Customize\",\"Yellow\",\"Purple\",\"Pink\"]") "," PT("LED_R", "status_writable", "uint8", "byte", 1, 0, 1, ",\"uint_spec\":{\"min\":0,\"max\":254,\"ratio\":1,\"addition\":0}") "," PT("LED_G",
                                                                                                                                                                                                                                                                                                                                                                            "status_writable",
                                                                                                                                                                                                                                                                                                                                                                            "uint8",
                                                                                                                                                                                                                                                                                                                                                                            "byte",
                                                                                                                                                                                                                                                                                                                                                                            2,
                                                                                                                                                                                                                                                                                                                                                                            0,
                                                                                                                                                                                                                                                                                                                                                                            1, "") "," PT("LED_B",
                                                                                                                                                                                                                                                                                                                                                                                          "status_writable", "uint8", "byte", 3, 0, 1, "") "," PT("Motor_Speed", "status_writable", "uint8", "byte", 4, 0, 1, ",\"uint_spec\":{\"min\":0,\"max\":10,\"ratio\":1,\"addition\":-5}") "," PT("Infrared", "status_readonly",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "bool",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "bit", 5, 0, 1, "") "," PT("Temperature", "status_readonly", "uint8", "byte", 6, 0, 1, ",\"uint_spec\":{\"min\":0,\"max\":200,\"ratio\":1,\"addition\":-13}") "," PT("Humidity",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "status_readonly",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "uint8", "byte", 7, 0, 1, "") "," PT("Alert_1",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                    "alert", "bool", "bit", 8, 0, 1, "") "," PT("Alert_2",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                "alert",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                "bool",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                "bit",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                8,
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                1, 1, "") "," PT("Fault_LED",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                 "fault", "bool", "bit", 9, 0, 1, "") "," PT("Fault_IR",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             "fault",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             "bool",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             "bit",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             9,
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             3,
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                             1, ""));

static struct giz_p0_schema *load(const char *json)
{
    struct giz_p0_schema *s = NULL;
    struct giz_error e;
    int rc = giz_p0_schema_parse(json, strlen(json), &s, &e);

    if (rc) fprintf(stderr, "schema: %s at %zu\n", e.text, e.offset);
    ASSERT_EQ(rc, GIZ_OK);
    return s;
}

/* Encodes a write of the JSON text `attrs`; returns the rc, bytes in out. */
static int write_of(const struct giz_p0_schema *s, const char *attrs, int form, uint8_t *out,
                    size_t *n, struct giz_error *e)
{
    cJSON *a = cJSON_Parse(attrs);
    int rc = giz_p0_encode_write(s, a, form, out, 512, n, e);

    cJSON_Delete(a);
    return rc;
}

static int status_of(const struct giz_p0_schema *s, uint8_t action, const char *attrs, uint8_t *out,
                     size_t *n)
{
    cJSON *a = cJSON_Parse(attrs);
    struct giz_error e;
    int rc = giz_p0_encode_status(s, action, a, out, 512, n, &e);

    cJSON_Delete(a);
    return rc;
}

/* Decodes and compares attrs with the JSON text `want` (NULL: expect none). */
static int decode_eq(const struct giz_p0_schema *s, const uint8_t *b, size_t n, const char *want,
                     struct giz_error *e)
{
    struct giz_p0_msg m;
    int rc = giz_p0_decode(s, b, n, &m, e);

    if (rc == GIZ_OK && want) {
        cJSON *w = cJSON_Parse(want);
        char *got = cJSON_PrintUnformatted(m.attrs);

        ASSERT_TRUE(w != NULL);
        if (!cJSON_Compare(w, m.attrs, true)) {
            fprintf(stderr, "attrs %s, want %s\n", got ? got : "(null)", want);
            ASSERT_TRUE(0);
        }
        cJSON_free(got);
        cJSON_Delete(w);
    }
    giz_p0_msg_clear(&m);
    return rc;
}

TEST_CASE(openapi_examples)
{
    /* source/en-us/cloud/OpenAPI.md, raw_data: payload_bin
     * 0000000309000090 010200000010 (write), 000000030b000091 0400000010000000
     * (report), 0000000304000090 02 (read); the p0 part after the command. */
    static const uint8_t write[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x10};
    static const uint8_t report[] = {0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00};
    static const uint8_t read[] = {0x02};
    struct giz_p0_schema *s = load(open_api_schema);
    struct giz_p0_msg m;
    struct giz_error e;
    uint8_t out[512];
    size_t n = 0;

    ASSERT_EQ(giz_p0_schema_count(s), 7);
    ASSERT_STREQ(giz_p0_schema_name(s, 1), "level");
    ASSERT_TRUE(giz_p0_schema_writable(s, 2) && !giz_p0_schema_writable(s, 3));
    ASSERT_EQ(write_of(s, "{\"level\":16}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_OK);
    ASSERT_EQ(n, sizeof write);
    ASSERT_MEMEQ(out, write, sizeof write);
    ASSERT_EQ(decode_eq(s, write, sizeof write, "{\"level\":16}", &e), GIZ_OK);
    ASSERT_EQ(decode_eq(s, report, sizeof report,
                        "{\"power\":false,\"level\":16,\"speed\":0,\"temp\":-20,\"humidity\":0,"
                        "\"alert_a\":false,\"fault_b\":false}",
                        &e),
              GIZ_OK);
    ASSERT_EQ(status_of(s, GIZ_P0_REPORT, "{\"level\":16,\"temp\":-20}", out, &n), GIZ_OK);
    ASSERT_EQ(n, sizeof report);
    ASSERT_MEMEQ(out, report, sizeof report);
    ASSERT_EQ(giz_p0_encode_read(s, NULL, out, sizeof out, &n, &e), GIZ_OK);
    ASSERT_EQ(n, 1);
    ASSERT_MEMEQ(out, read, 1);
    ASSERT_EQ(giz_p0_decode(s, read, 1, &m, &e), GIZ_OK);
    ASSERT_EQ(m.action, GIZ_P0_READ);
    ASSERT_TRUE(m.attrs == NULL && m.names == NULL);
    giz_p0_msg_clear(&m);
    giz_p0_schema_free(s);
}

TEST_CASE(pet_house)
{
    /* Write LED_OnOff on, LED_Color Pink (3), Motor_Speed 5 (wire 10 with
     * addition -5): flags 0b100011, byte 0 = bit0 1 | bits 1-2 = 3. */
    static const uint8_t write[] = {0x01, 0x23, 0x07, 0x00, 0x00, 0x00, 0x0a};
    /* Report: + LED_R 200, Temperature 25 (wire 38), Humidity 60, Infrared,
     * Alert_2 (bit 1 of byte 8), Fault_IR (bit 3 of byte 9). */
    static const uint8_t report[] = {0x04, 0x07, 0xc8, 0x00, 0x00, 0x0a,
                                     0x01, 0x26, 0x3c, 0x02, 0x08};
    struct giz_p0_schema *s = load(pet_schema);
    struct giz_error e;
    uint8_t out[512];
    size_t n = 0;

    ASSERT_EQ(write_of(s, "{\"LED_OnOff\":true,\"LED_Color\":\"Pink\",\"Motor_Speed\":5}",
                       GIZ_P0_FORM_FIXED, out, &n, &e),
              GIZ_OK);
    ASSERT_EQ(n, sizeof write);
    ASSERT_MEMEQ(out, write, sizeof write);
    /* 1 accepted for a bool, an index for an enum: same bytes */
    ASSERT_EQ(write_of(s, "{\"LED_OnOff\":1,\"LED_Color\":3,\"Motor_Speed\":5}", GIZ_P0_FORM_FIXED,
                       out, &n, &e),
              GIZ_OK);
    ASSERT_MEMEQ(out, write, sizeof write);
    ASSERT_EQ(decode_eq(s, write, sizeof write,
                        "{\"LED_OnOff\":true,\"LED_Color\":\"Pink\",\"Motor_Speed\":5}", &e),
              GIZ_OK);
    ASSERT_EQ(decode_eq(s, report, sizeof report,
                        "{\"LED_OnOff\":true,\"LED_Color\":\"Pink\",\"LED_R\":200,\"LED_G\":0,"
                        "\"LED_B\":0,\"Motor_Speed\":5,\"Infrared\":true,\"Temperature\":25,"
                        "\"Humidity\":60,\"Alert_1\":false,\"Alert_2\":true,\"Fault_LED\":false,"
                        "\"Fault_IR\":true}",
                        &e),
              GIZ_OK);
    ASSERT_EQ(status_of(s, GIZ_P0_REPORT,
                        "{\"LED_OnOff\":true,\"LED_Color\":\"Pink\",\"LED_R\":200,"
                        "\"Motor_Speed\":5,\"Infrared\":true,\"Temperature\":25,\"Humidity\":60,"
                        "\"Alert_2\":true,\"Fault_IR\":true}",
                        out, &n),
              GIZ_OK);
    ASSERT_EQ(n, sizeof report);
    ASSERT_MEMEQ(out, report, sizeof report);
    /* a read reply has the same layout */
    out[0] = GIZ_P0_READ_REPLY;
    ASSERT_EQ(decode_eq(s, out, n, NULL, &e), GIZ_OK);
    giz_p0_schema_free(s);
}

TEST_CASE(bit_groups)
{
    /* A 2-byte bit group at byte 0 (big-endian, bit_offset from the least
     * significant end): a at bit 0, b 3 bits at 7..9, c at bit 13. */
    static const char js[] =
        SCHEMA("standard",
               PT("a", "status_writable", "bool", "bit", 0, 0, 1, "") "," PT(
                   "b", "status_writable", "enum", "bit", 0, 7, 3,
                   ",\"enum\":[\"0\",\"1\",\"2\",\"3\","
                   "\"4\",\"5\"]") "," PT("c", "status_readonly", "bool", "bit", 0, 13, 1, ""));
    struct giz_p0_schema *s = load(js);
    uint8_t out[512];
    size_t n = 0;

    /* b = 5 = 0b101: bits 7 and 9 -> byte 1 bit 7, byte 0 bit 1; c: byte 0 bit 5 */
    ASSERT_EQ(status_of(s, GIZ_P0_REPORT, "{\"a\":true,\"b\":\"5\",\"c\":true}", out, &n), GIZ_OK);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(out[1], 0x22);
    ASSERT_EQ(out[2], 0x81);
    ASSERT_EQ(decode_eq(s, out, n, "{\"a\":true,\"b\":\"5\",\"c\":true}", NULL), GIZ_OK);
    /* b = 6 is past its labels: the report is malformed */
    out[1] = 0x01;
    out[2] = 0x00; /* bits 7..9 = 0b010 -> fine */
    ASSERT_EQ(decode_eq(s, out, n, "{\"a\":false,\"b\":\"2\",\"c\":false}", NULL), GIZ_OK);
    out[1] = 0x03;
    ASSERT_EQ(decode_eq(s, out, n, NULL, NULL), GIZ_ERR_BAD_VALUE);
    giz_p0_schema_free(s);
}

TEST_CASE(ratio_binary)
{
    /* uint16 with ratio 0.1 and addition -40: 23.5 -> (23.5+40)/0.1 = 635 = 0x027b;
     * binary of 3 bytes; uint32 big-endian. */
    static const char js[] =
        SCHEMA("standard", PT("t", "status_writable", "uint16", "byte", 0, 0, 2,
                              ",\"uint_spec\":{\"min\":0,\"max\":1200,\"ratio\":0.1,\"addition\":-"
                              "40}") "," PT("blob", "status_writable", "binary", "byte", 2, 0, 3,
                                            "") "," PT("count", "status_readonly", "uint32", "byte",
                                                       5, 0, 4, ""));
    static const uint8_t want[] = {0x01, 0x03, 0x02, 0x7b, 0x0a, 0x0b, 0xfc};
    static const uint8_t rep[] = {0x04, 0x02, 0x7b, 0x0a, 0x0b, 0xfc, 0x01, 0x02, 0x03, 0x04};
    struct giz_p0_schema *s = load(js);
    struct giz_error e;
    uint8_t out[512];
    size_t n = 0;

    ASSERT_EQ(write_of(s, "{\"t\":23.5,\"blob\":\"0a0bFC\"}", GIZ_P0_FORM_AUTO, out, &n, &e),
              GIZ_OK);
    ASSERT_EQ(n, sizeof want);
    ASSERT_MEMEQ(out, want, sizeof want);
    ASSERT_EQ(
        decode_eq(s, rep, sizeof rep, "{\"t\":23.5,\"blob\":\"0a0bfc\",\"count\":16909060}", &e),
        GIZ_OK);
    /* min/max are wire values: 1200 -> 80.0 is the largest */
    ASSERT_EQ(write_of(s, "{\"t\":80}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_OK);
    ASSERT_EQ(write_of(s, "{\"t\":80.2}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(write_of(s, "{\"t\":-40.1}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(write_of(s, "{\"t\":\"1\"}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_INVAL);
    ASSERT_EQ(write_of(s, "{\"blob\":\"0a0b\"}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(write_of(s, "{\"blob\":\"0a0bxz\"}", GIZ_P0_FORM_AUTO, out, &n, &e),
              GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(write_of(s, "{\"count\":1}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_INVAL);
    ASSERT_EQ(e.offset, 0);
    ASSERT_EQ(write_of(s, "{\"t\":1,\"nope\":1}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_INVAL);
    ASSERT_EQ(e.offset, 1);
    ASSERT_EQ(write_of(s, "{}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_INVAL);
    ASSERT_EQ(write_of(s, "[1]", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_ERR_INVAL);
    {
        cJSON *a = cJSON_Parse("{\"t\":1}");

        ASSERT_EQ(giz_p0_encode_write(s, a, GIZ_P0_FORM_AUTO, out, 3, &n, &e), GIZ_ERR_NOSPACE);
        cJSON_Delete(a);
    }
    giz_p0_schema_free(s);
}

TEST_CASE(variable_length)
{
    /* protocolType var_len: flags, then the flagged bit-unit points packed
     * from bit 0 (one big-endian segment), then the flagged byte-unit ones. */
    static const char js[] = SCHEMA(
        "var_len",
        PT("on", "status_writable", "bool", "bit", 0, 0, 1, "") "," PT(
            "mode", "status_writable", "enum", "bit", 0, 0, 2,
            ",\"enum\":[\"a\",\"b\",\"c\"]") "," PT("level", "status_writable", "uint16", "byte", 0,
                                                    0, 2, "") "," PT("temp", "status_readonly",
                                                                     "uint8", "byte", 0, 0, 1,
                                                                     ",\"uint_spec\":{\"ratio\":0."
                                                                     "5,\"addition\":0}"));
    static const uint8_t write[] = {0x11, 0x05, 0x01, 0x01, 0x2c}; /* on, level 300 */
    static const uint8_t report[] = {0x14, 0x0a, 0x02, 0x2d};      /* mode c, temp 22.5 */
    static const uint8_t read[] = {0x12, 0x09};                    /* on, temp */
    static const uint8_t both[] = {0x11, 0x03, 0x05}; /* on (bit 0), mode c (bits 1-2) */
    static const uint8_t all[] = {0x14, 0x0f, 0x02,
                                  0x00, 0x01, 0x14};       /* mode b, level 1, temp 10 */
    static const uint8_t bad_bits[] = {0x14, 0x02, 0x04};  /* mode: bit 2 past its 2 bits */
    static const uint8_t bad_flag[] = {0x14, 0x10};        /* point 4 */
    static const uint8_t short_val[] = {0x14, 0x04, 0x01}; /* level: 1 of 2 */
    static const uint8_t trail[] = {0x14, 0x01, 0x01, 0x00};
    struct giz_p0_schema *s = load(js);
    struct giz_p0_msg m;
    struct giz_error e;
    uint8_t out[512];
    size_t n = 0;
    cJSON *names;
    char *txt;

    ASSERT_TRUE(giz_p0_schema_var_len(s));
    ASSERT_EQ(write_of(s, "{\"on\":true,\"level\":300}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_OK);
    ASSERT_EQ(n, sizeof write);
    ASSERT_MEMEQ(out, write, sizeof write);
    ASSERT_EQ(write_of(s, "{\"on\":true}", GIZ_P0_FORM_FIXED, out, &n, &e), GIZ_ERR_INVAL);
    ASSERT_EQ(decode_eq(s, write, sizeof write, "{\"on\":true,\"level\":300}", &e), GIZ_OK);
    ASSERT_EQ(status_of(s, GIZ_P0_REPORT_VAR, "{\"mode\":\"c\",\"temp\":22.5}", out, &n), GIZ_OK);
    ASSERT_EQ(n, sizeof report);
    ASSERT_MEMEQ(out, report, sizeof report);
    ASSERT_EQ(decode_eq(s, report, sizeof report, "{\"mode\":\"c\",\"temp\":22.5}", &e), GIZ_OK);
    names = cJSON_Parse("[\"temp\",\"on\"]");
    ASSERT_EQ(giz_p0_encode_read(s, names, out, sizeof out, &n, &e), GIZ_OK);
    ASSERT_EQ(n, sizeof read);
    ASSERT_MEMEQ(out, read, sizeof read);
    ASSERT_EQ(giz_p0_decode(s, read, sizeof read, &m, &e), GIZ_OK);
    txt = cJSON_PrintUnformatted(m.names);
    ASSERT_STREQ(txt, "[\"on\",\"temp\"]");
    cJSON_free(txt);
    giz_p0_msg_clear(&m);
    cJSON_Delete(names);
    ASSERT_EQ(write_of(s, "{\"mode\":\"c\",\"on\":true}", GIZ_P0_FORM_AUTO, out, &n, &e), GIZ_OK);
    ASSERT_EQ(n, sizeof both);
    ASSERT_MEMEQ(out, both, sizeof both);
    ASSERT_EQ(decode_eq(s, both, sizeof both, "{\"on\":true,\"mode\":\"c\"}", &e), GIZ_OK);
    ASSERT_EQ(status_of(s, GIZ_P0_REPORT_VAR,
                        "{\"on\":false,\"mode\":\"b\",\"level\":1,\"temp\":10}", out, &n),
              GIZ_OK);
    ASSERT_EQ(n, sizeof all);
    ASSERT_MEMEQ(out, all, sizeof all);
    ASSERT_EQ(
        decode_eq(s, all, sizeof all, "{\"on\":false,\"mode\":\"b\",\"level\":1,\"temp\":10}", &e),
        GIZ_OK);
    ASSERT_EQ(decode_eq(s, all, 2, NULL, &e), GIZ_ERR_TRUNCATED); /* ends before the bits */
    ASSERT_EQ(decode_eq(s, bad_bits, sizeof bad_bits, NULL, &e), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(decode_eq(s, bad_flag, sizeof bad_flag, NULL, &e), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(decode_eq(s, short_val, sizeof short_val, NULL, &e), GIZ_ERR_TRUNCATED);
    ASSERT_EQ(decode_eq(s, trail, sizeof trail, NULL, &e), GIZ_ERR_TRAILING);
    ASSERT_EQ(e.offset, 3);
    /* fixed actions are refused for a var_len product */
    ASSERT_EQ(decode_eq(s, (const uint8_t *)"\x04\x00", 2, NULL, &e), GIZ_ERR_BAD_VALUE);
    giz_p0_schema_free(s);
}

TEST_CASE(malformed_reports)
{
    static const uint8_t rep[] = {0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00};
    static const uint8_t flag_past[] = {0x01, 0x08, 0x00, 0x00, 0x00, 0x00}; /* 3 writable */
    struct giz_p0_schema *s = load(open_api_schema);
    struct giz_p0_msg m;
    struct giz_error e;
    uint8_t raw[] = {0x06, 'a', 'b'};

    ASSERT_EQ(decode_eq(s, rep, sizeof rep - 1, NULL, &e), GIZ_ERR_TRUNCATED);
    ASSERT_EQ(decode_eq(s, rep, 1, NULL, &e), GIZ_ERR_TRUNCATED);
    ASSERT_EQ(decode_eq(s, rep, 0, NULL, &e), GIZ_ERR_TRUNCATED);
    {
        uint8_t longer[sizeof rep + 1];

        memcpy(longer, rep, sizeof rep);
        longer[sizeof rep] = 0;
        ASSERT_EQ(decode_eq(s, longer, sizeof longer, NULL, &e), GIZ_ERR_TRAILING);
        ASSERT_EQ(e.offset, sizeof rep);
    }
    ASSERT_EQ(decode_eq(s, flag_past, sizeof flag_past, NULL, &e), GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(decode_eq(s, (const uint8_t *)"\x07", 1, NULL, &e), GIZ_ERR_UNKNOWN_CMD);
    ASSERT_EQ(decode_eq(s, (const uint8_t *)"\x02\x00", 2, NULL, &e), GIZ_ERR_TRAILING);
    ASSERT_EQ(giz_p0_decode(NULL, rep, sizeof rep, &m, &e), GIZ_ERR_INVAL);
    giz_p0_msg_clear(&m);
    ASSERT_EQ(giz_p0_decode(s, raw, sizeof raw, &m, &e), GIZ_OK);
    ASSERT_EQ(m.action, GIZ_P0_RAW_FROM_DEV);
    ASSERT_EQ(m.raw.len, 2);
    ASSERT_TRUE(m.raw.ptr == raw + 1);
    giz_p0_msg_clear(&m);
    ASSERT_TRUE(giz_p0_action_is_status(0x14) && !giz_p0_action_is_status(0x01));
    ASSERT_STREQ(giz_p0_action_name(0x04), "report");
    ASSERT_TRUE(giz_p0_action_name(0x99) == NULL);
    giz_p0_schema_free(s);
}

static int parse_rc(const char *json, struct giz_error *e)
{
    struct giz_p0_schema *s = NULL;
    int rc = giz_p0_schema_parse(json, strlen(json), &s, e);

    ASSERT_TRUE(rc == GIZ_OK ? s != NULL : s == NULL);
    giz_p0_schema_free(s);
    return rc;
}

TEST_CASE(schema_errors)
{
    struct giz_error e;

    ASSERT_EQ(parse_rc("{", &e), GIZ_ERR_INVAL);
    ASSERT_EQ(parse_rc("[]", &e), GIZ_ERR_INVAL);
    ASSERT_EQ(parse_rc("{\"entities\":[]}", &e), GIZ_ERR_INVAL);
    ASSERT_EQ(parse_rc(SCHEMA("standard", ""), &e), GIZ_ERR_INVAL);
    /* duplicate names; offset = the second one */
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "bool", "bit", 0, 0, 1, "") "," PT(
                                        "a", "status_writable", "bool", "bit", 0, 1, 1, "")),
                 &e),
        GIZ_ERR_INVAL);
    ASSERT_EQ(e.offset, 1);
    /* two points on the same bit, and a byte field inside a bit group */
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "bool", "bit", 0, 0, 1, "") "," PT(
                                        "b", "status_writable", "bool", "bit", 0, 0, 1, "")),
                 &e),
        GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "bool", "bit", 0, 9, 1, "") "," PT(
                                        "b", "status_writable", "uint8", "byte", 1, 0, 1, "")),
                 &e),
        GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(parse_rc(SCHEMA("standard", PT("a", "bogus", "bool", "bit", 0, 0, 1, "")), &e),
              GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "float", "byte", 0, 0, 4, "")), &e),
        GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "uint16", "byte", 0, 0, 1, "")), &e),
        GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "bool", "bit", 0, 0, 2, "")), &e),
        GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(parse_rc(SCHEMA("standard", PT("a", "status_writable", "enum", "bit", 0, 0, 1,
                                             ",\"enum\":[\"x\",\"y\",\"z\"]")),
                       &e),
              GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "enum", "bit", 0, 0, 1, "")), &e),
        GIZ_ERR_INVAL);
    ASSERT_EQ(parse_rc(SCHEMA("standard", PT("a", "status_writable", "uint8", "byte", 0, 0, 1,
                                             ",\"uint_spec\":{\"ratio\":0}")),
                       &e),
              GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(parse_rc(SCHEMA("standard", PT("a", "status_writable", "uint8", "byte", 0, 0, 1,
                                             ",\"uint_spec\":{\"min\":5,\"max\":4}")),
                       &e),
              GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(parse_rc(SCHEMA("standard", PT("a", "status_writable", "uint8", "byte", 0, 0, 1,
                                             ",\"uint_spec\":{\"max\":256}")),
                       &e),
              GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "uint8", "byte", -1, 0, 1, "")), &e),
        GIZ_ERR_BAD_VALUE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "binary", "byte", 65535, 0, 10, "")),
                 &e),
        GIZ_ERR_OVERSIZE);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("", "status_writable", "bool", "bit", 0, 0, 1, "")), &e),
        GIZ_ERR_INVAL);
    ASSERT_EQ(
        parse_rc(SCHEMA("standard", PT("a", "status_writable", "bool", "nibble", 0, 0, 1, "")), &e),
        GIZ_ERR_INVAL);
    /* the same bytes are fine for a var_len product (offsets are 0 there) */
    ASSERT_EQ(
        parse_rc(SCHEMA("var_len", PT("a", "status_writable", "bool", "bit", 0, 0, 1, "") "," PT(
                                       "b", "status_writable", "bool", "bit", 0, 0, 1, "")),
                 &e),
        GIZ_OK);
    ASSERT_EQ(parse_rc(pet_schema, &e), GIZ_OK);
}

/* Every decoded report re-encodes to the same bytes (fixed form, all bits used). */
TEST_CASE(roundtrip)
{
    struct giz_p0_schema *s = load(pet_schema);
    uint8_t in[11], out[512];
    size_t n = 0;
    unsigned seed = 12345;
    int same = 0;

    for (int k = 0; k < 2000; k++) {
        struct giz_p0_msg m;
        struct giz_error e;
        cJSON *attrs;
        int rc;

        in[0] = GIZ_P0_REPORT;
        for (size_t i = 1; i < sizeof in; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (uint8_t)(seed >> 16);
        }
        in[1] &= 0x07; /* only the bits the schema defines */
        in[6] &= 0x01;
        in[9] &= 0x03;
        in[10] &= 0x09;
        if (k % 2) { /* inside uint_spec: must come back byte for byte */
            in[2] = (uint8_t)(in[2] % 255);
            in[5] = (uint8_t)(in[5] % 11);
            in[7] = (uint8_t)(in[7] % 201);
        }
        rc = giz_p0_decode(s, in, sizeof in, &m, &e);
        if (rc != GIZ_OK) {
            ASSERT_EQ(rc, GIZ_OK);
            giz_p0_msg_clear(&m);
            break;
        }
        attrs = m.attrs;
        rc = giz_p0_encode_status(s, GIZ_P0_REPORT, attrs, out, sizeof out, &n, &e);
        if (rc == GIZ_OK && n == sizeof in && memcmp(in, out, n) == 0) {
            same++;
            giz_p0_msg_clear(&m);
            continue;
        }
        /* Motor_Speed / LED_R out of their uint_spec range cannot be written back */
        ASSERT_TRUE(rc == GIZ_ERR_BAD_VALUE);
        giz_p0_msg_clear(&m);
    }
    ASSERT_TRUE(same >= 1000);
    giz_p0_schema_free(s);
}

/* Allocation failure: the Nth allocation fails, for every N until the whole
 * sequence (parse, decode, encode write and status) runs without a failure;
 * each step answers GIZ_OK or GIZ_ERR_NOMEM (cJSON's parser reports a failed
 * allocation as bad JSON: INVAL), and nothing leaks (LeakSanitizer). */
static long fail_at, allocs;

static void *failing_malloc(size_t n)
{
    if (++allocs == fail_at) return NULL;
    return malloc(n);
}

TEST_CASE(alloc_failure)
{
    static const uint8_t report[] = {0x04, 0x07, 0xc8, 0x00, 0x00, 0x0a,
                                     0x01, 0x26, 0x3c, 0x02, 0x08};
    cJSON_Hooks hooks = {failing_malloc, free};
    cJSON *attrs = cJSON_Parse("{\"LED_OnOff\":true,\"LED_Color\":\"Pink\",\"Motor_Speed\":5}");
    int clean = 0;

    ASSERT_TRUE(attrs != NULL);
    cJSON_InitHooks(&hooks);
    for (fail_at = 1; fail_at < 5000 && !clean; fail_at++) {
        struct giz_p0_schema *s = NULL;
        struct giz_p0_msg m;
        struct giz_error e;
        uint8_t out[512];
        size_t n = 0;
        int rc, bad = 0;

        allocs = 0;
        rc = giz_p0_schema_parse(pet_schema, strlen(pet_schema), &s, &e);
        if (rc != GIZ_OK && rc != GIZ_ERR_NOMEM && rc != GIZ_ERR_INVAL) bad = 1;
        if (rc == GIZ_OK) {
            rc = giz_p0_decode(s, report, sizeof report, &m, &e);
            if (rc != GIZ_OK && rc != GIZ_ERR_NOMEM) bad = 1;
            giz_p0_msg_clear(&m);
            rc = giz_p0_encode_write(s, attrs, GIZ_P0_FORM_FIXED, out, sizeof out, &n, &e);
            if (rc != GIZ_OK && rc != GIZ_ERR_NOMEM) bad = 1;
            rc = giz_p0_encode_status(s, GIZ_P0_REPORT, attrs, out, sizeof out, &n, &e);
            if (rc != GIZ_OK && rc != GIZ_ERR_NOMEM) bad = 1;
        }
        giz_p0_schema_free(s);
        if (bad) {
            fprintf(stderr, "allocation %ld failed: rc %d\n", fail_at, rc);
            ASSERT_TRUE(0);
            break;
        }
        clean = allocs < fail_at; /* no allocation failed this time: all paths done */
    }
    cJSON_InitHooks(NULL);
    ASSERT_TRUE(clean);
    ASSERT_TRUE(fail_at > 20); /* the sequence does allocate */
    cJSON_Delete(attrs);
}

/* giz_p0_attrs_text: the same JSON as cJSON's printer for decoded attrs, and
 * correct escapes for names and labels with quotes, backslashes and controls. */
TEST_CASE(attrs_text)
{
    static const uint8_t report[] = {0x04, 0x07, 0xc8, 0x00, 0x00, 0x0a,
                                     0x01, 0x26, 0x3c, 0x02, 0x08};
    struct giz_p0_schema *s = load(pet_schema);
    struct giz_p0_msg m;
    cJSON *odd = cJSON_Parse("{\"a\\\"b\":\"x\\\\y\\n\\u0001\",\"n\":-2.5,\"i\":123456789012,"
                             "\"z\":0,\"t\":true,\"f\":false,\"u\":\"\u00e9\",\"nul\":null}");
    char *text, *ref;
    cJSON *back;

    ASSERT_EQ(giz_p0_decode(s, report, sizeof report, &m, NULL), GIZ_OK);
    text = giz_p0_attrs_text(m.attrs);
    ref = cJSON_PrintUnformatted(m.attrs);
    ASSERT_STREQ(text, ref);
    cJSON_free(text);
    cJSON_free(ref);
    giz_p0_msg_clear(&m);
    ASSERT_TRUE(odd != NULL);
    text = giz_p0_attrs_text(odd);
    ASSERT_STREQ(text, "{\"a\\\"b\":\"x\\\\y\\u000a\\u0001\",\"n\":-2.5,\"i\":123456789012,"
                       "\"z\":0,\"t\":true,\"f\":false,\"u\":\"\u00e9\",\"nul\":null}");
    back = text ? cJSON_Parse(text) : NULL;
    ASSERT_TRUE(back != NULL && cJSON_Compare(back, odd, true));
    cJSON_Delete(back);
    cJSON_free(text);
    cJSON_Delete(odd);
    ASSERT_TRUE(giz_p0_attrs_text(NULL) == NULL);
    giz_p0_schema_free(s);
}

TEST_LIST(TEST_ENTRY(openapi_examples), TEST_ENTRY(pet_house), TEST_ENTRY(bit_groups),
          TEST_ENTRY(ratio_binary), TEST_ENTRY(variable_length), TEST_ENTRY(malformed_reports),
          TEST_ENTRY(schema_errors), TEST_ENTRY(roundtrip), TEST_ENTRY(alloc_failure),
          TEST_ENTRY(attrs_text));
TEST_MAIN()
