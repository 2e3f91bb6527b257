/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for the data-point codec (giz/p0.h). The first input byte
 * picks the schema: 0-2 one of three built-in schemas (fixed-length with bit
 * groups, ratio and binary; variable-length; the GoKit pet house), anything
 * else: the input up to its first NUL is schema JSON and the rest the p0 body.
 * Invariants: the decoder returns one of its documented codes with an offset
 * inside the body; on success a status message re-encodes to a body that
 * decodes to the same attrs (or the values are outside uint_spec), a write
 * re-encodes as a write (attrs compared for the built-in schemas), reads and raw views stay inside
 * the input; schema parsing of any bytes returns a code and a schema or none.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "giz/p0.h"

static const char *const schemas[] = {
    "{\"entities\":[{\"attrs\":["
    "{\"name\":\"on\",\"type\":\"status_writable\",\"data_type\":\"bool\","
    "\"position\":{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":0,\"len\":1}},"
    "{\"name\":\"mode\",\"type\":\"status_writable\",\"data_type\":\"enum\",\"enum\":[\"a\",\"b\","
    "\"c\"],\"position\":{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":7,\"len\":3}},"
    "{\"name\":\"t\",\"type\":\"status_writable\",\"data_type\":\"uint16\",\"uint_spec\":{\"min\":"
    "0,\"max\":1200,\"ratio\":0.1,\"addition\":-40},\"position\":{\"unit\":\"byte\","
    "\"byte_offset\":2,\"len\":2}},"
    "{\"name\":\"blob\",\"type\":\"status_writable\",\"data_type\":\"binary\",\"position\":{"
    "\"unit\":\"byte\",\"byte_offset\":4,\"len\":3}},"
    "{\"name\":\"n\",\"type\":\"status_readonly\",\"data_type\":\"uint32\",\"position\":{\"unit\":"
    "\"byte\",\"byte_offset\":7,\"len\":4}},"
    "{\"name\":\"f\",\"type\":\"fault\",\"data_type\":\"bool\",\"position\":{\"unit\":\"bit\","
    "\"byte_offset\":11,\"bit_offset\":5,\"len\":1}}]}]}",
    "{\"protocolType\":\"var_len\",\"entities\":[{\"attrs\":["
    "{\"name\":\"on\",\"type\":\"status_writable\",\"data_type\":\"bool\","
    "\"position\":{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":0,\"len\":1}},"
    "{\"name\":\"mode\",\"type\":\"status_writable\",\"data_type\":\"enum\",\"enum\":[\"a\",\"b\","
    "\"c\"],\"position\":{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":0,\"len\":2}},"
    "{\"name\":\"lvl\",\"type\":\"status_writable\",\"data_type\":\"uint16\",\"position\":{"
    "\"unit\":\"byte\",\"byte_offset\":0,\"len\":2}},"
    "{\"name\":\"bin\",\"type\":\"status_readonly\",\"data_type\":\"binary\",\"position\":{"
    "\"unit\":\"byte\",\"byte_offset\":0,\"len\":2}},"
    "{\"name\":\"tmp\",\"type\":\"alert\",\"data_type\":\"uint8\",\"uint_spec\":{\"ratio\":0.5,"
    "\"addition\":-10},\"position\":{\"unit\":\"byte\",\"byte_offset\":0,\"len\":1}}]}]}",
    "{\"entities\":[{\"attrs\":["
    "{\"name\":\"LED_OnOff\",\"type\":\"status_writable\",\"data_type\":\"bool\","
    "\"position\":{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":0,\"len\":1}},"
    "{\"name\":\"LED_Color\",\"type\":\"status_writable\",\"data_type\":\"enum\",\"enum\":[\"C\","
    "\"Y\",\"P\",\"K\"],\"position\":{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":1,\"len\":"
    "2}},"
    "{\"name\":\"LED_R\",\"type\":\"status_writable\",\"data_type\":\"uint8\",\"uint_spec\":{"
    "\"min\":0,\"max\":254,\"ratio\":1,\"addition\":0},\"position\":{\"unit\":\"byte\","
    "\"byte_offset\":1,\"len\":1}},"
    "{\"name\":\"Motor_Speed\",\"type\":\"status_writable\",\"data_type\":\"uint8\",\"uint_spec\":{"
    "\"min\":0,\"max\":10,\"ratio\":1,\"addition\":-5},\"position\":{\"unit\":\"byte\","
    "\"byte_offset\":2,\"len\":1}},"
    "{\"name\":\"Infrared\",\"type\":\"status_readonly\",\"data_type\":\"bool\",\"position\":{"
    "\"unit\":\"bit\",\"byte_offset\":3,\"bit_offset\":0,\"len\":1}},"
    "{\"name\":\"Temperature\",\"type\":\"status_readonly\",\"data_type\":\"uint8\",\"uint_spec\":"
    "{\"min\":0,\"max\":200,\"ratio\":1,\"addition\":-13},\"position\":{\"unit\":\"byte\","
    "\"byte_offset\":4,\"len\":1}}]}]}",
};

static bool known_rc(int rc)
{
    return rc == GIZ_OK || rc == GIZ_ERR_TRUNCATED || rc == GIZ_ERR_TRAILING ||
           rc == GIZ_ERR_UNKNOWN_CMD || rc == GIZ_ERR_BAD_VALUE || rc == GIZ_ERR_OVERSIZE;
}

static void check_body(const struct giz_p0_schema *s, const uint8_t *b, size_t n, bool strict)
{
    static uint8_t out[GIZ_P0_MAX];
    struct giz_p0_msg m, m2;
    struct giz_error e;
    size_t olen = 0;
    int rc = giz_p0_decode(s, b, n, &m, &e);

    FUZZ_CHECK(known_rc(rc));
    FUZZ_CHECK(e.code == rc && e.offset <= n);
    if (rc != GIZ_OK) goto cleanup;
    FUZZ_CHECK(m.action == b[0]);
    if (m.action == GIZ_P0_RAW_TO_DEV || m.action == GIZ_P0_RAW_FROM_DEV)
        FUZZ_CHECK(FUZZ_INSIDE(m.raw.ptr, m.raw.len, b, n) && m.raw.len == n - 1);
    if (m.action == GIZ_P0_READ_VAR) {
        FUZZ_CHECK(m.names != NULL);
        FUZZ_CHECK(giz_p0_encode_read(s, m.names, out, sizeof out, &olen, &e) == GIZ_OK);
        FUZZ_CHECK(cJSON_GetArraySize(m.names) == 0 ? olen == 1
                                                    : (olen == n && memcmp(out, b, n) == 0));
    }
    if (m.attrs) { /* the fast printer's text is the same JSON */
        char *text = giz_p0_attrs_text(m.attrs);
        cJSON *back = text ? cJSON_Parse(text) : NULL;

        FUZZ_CHECK(text != NULL && back != NULL && cJSON_Compare(back, m.attrs, true));
        cJSON_Delete(back);
        cJSON_free(text);
    }
    if (m.attrs && m.attrs->child) {
        bool write = !giz_p0_action_is_status(m.action);

        FUZZ_CHECK(cJSON_IsObject(m.attrs));
        rc = write ? giz_p0_encode_write(
                         s, m.attrs, m.action == GIZ_P0_WRITE ? GIZ_P0_FORM_FIXED : GIZ_P0_FORM_VAR,
                         out, sizeof out, &olen, &e)
                   : giz_p0_encode_status(s, m.action, m.attrs, out, sizeof out, &olen, &e);
        FUZZ_CHECK(rc == GIZ_OK || rc == GIZ_ERR_BAD_VALUE || (!strict && rc == GIZ_ERR_INVAL));
        if (rc == GIZ_OK) {
            FUZZ_CHECK(olen == n && out[0] == b[0]);
            FUZZ_CHECK(giz_p0_decode(s, out, olen, &m2, &e) == GIZ_OK);
            FUZZ_CHECK(!strict || cJSON_Compare(m.attrs, m2.attrs, true));
            giz_p0_msg_clear(&m2);
        }
    }
cleanup:
    giz_p0_msg_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct giz_p0_schema *builtin[3];
    struct giz_p0_schema *s = NULL;
    struct giz_error e;

    if (!builtin[0])
        for (size_t i = 0; i < 3; i++)
            FUZZ_CHECK(giz_p0_schema_parse(schemas[i], strlen(schemas[i]), &builtin[i], &e) ==
                       GIZ_OK);
    if (size == 0) return 0;
    if (data[0] < 3) {
        check_body(builtin[data[0]], data + 1, size - 1, true);
        return 0;
    }
    {
        const uint8_t *nul = memchr(data, 0, size);
        size_t jlen = nul ? (size_t)(nul - data) : size;
        int rc = giz_p0_schema_parse((const char *)data, jlen, &s, &e);

        FUZZ_CHECK(rc == GIZ_OK ? s != NULL : s == NULL);
        FUZZ_CHECK(rc == GIZ_OK || rc == GIZ_ERR_INVAL || rc == GIZ_ERR_BAD_VALUE ||
                   rc == GIZ_ERR_OVERSIZE || rc == GIZ_ERR_BAD_UTF8 || rc == GIZ_ERR_NOMEM);
        if (s && nul) check_body(s, nul + 1, size - jlen - 1, false);
        giz_p0_schema_free(s);
    }
    return 0;
}
