/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for the MQTT timeline's publish formatter
 * (plugin/events_format.c, evfmt__publish): the raw record the broker
 * thread queues for a publish, turned into the stored fields text by the
 * writer thread. Input: byte 0 = qos (low 2 bits, 3 = none) and from (bits
 * 2-3); byte 1 = topic length (mod 201); bytes 2-3 = payload bytes beyond
 * the copied head (big-endian); byte 4 = hex bytes (mod head + 1); byte 5 =
 * a small output cap; the rest = topic bytes, then the payload head.
 * Invariants: within the writer's bound (256 + 6 x topic + 2 x hex) the
 * text always fits; it parses as one JSON object whose length, payload and
 * qos/from fields are the record's; a smaller buffer gives either the same
 * text or nothing, never a cut one.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "events_format.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[8192], small[8192];
    struct evfmt_publish p;
    size_t tl, head, len, len2, cap, scap;
    cJSON *o, *v;
    if (size < 6) return 0;
    memset(&p, 0, sizeof p);
    p.qos = (data[0] & 3) == 3 ? -1 : data[0] & 3;
    p.from = (data[0] >> 2) & 3; /* 3: not a valid from, must give no field */
    tl = data[1] % (EVFMT_TOPIC_MAX + 1);
    if (tl > size - 6) tl = size - 6;
    head = size - 6 - tl;
    if (head > 3072) head = 3072;
    p.topic = (const char *)data + 6;
    p.topic_len = tl;
    p.head = data + 6 + tl;
    p.head_len = head;
    p.length = head + (((size_t)data[2] << 8) | data[3]);
    p.hex = data[4] % (head + 1);
    cap = 256u + 6u * tl + 2u * p.hex;
    FUZZ_CHECK(cap <= sizeof out);
    len = evfmt__publish(&p, out, cap);
    FUZZ_CHECK(len > 0 && len < cap);
    FUZZ_CHECK(strlen(out) == len && out[0] == '{' && out[len - 1] == '}');
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK((uint8_t)out[i] >= 0x20 && out[i] != 0x7f);
    o = cJSON_Parse(out);
    FUZZ_CHECK(o != NULL && cJSON_IsObject(o));
    v = cJSON_GetObjectItemCaseSensitive(o, "topic");
    FUZZ_CHECK(cJSON_IsString(v));
    v = cJSON_GetObjectItemCaseSensitive(o, "length");
    FUZZ_CHECK(cJSON_IsNumber(v) && v->valuedouble == (double)p.length);
    v = cJSON_GetObjectItemCaseSensitive(o, "payload");
    FUZZ_CHECK(p.hex == 0 ? v == NULL : cJSON_IsString(v) && strlen(v->valuestring) == 2 * p.hex);
    v = cJSON_GetObjectItemCaseSensitive(o, "payload_truncated");
    FUZZ_CHECK((p.hex > 0 && p.hex < p.length) == cJSON_IsTrue(v));
    v = cJSON_GetObjectItemCaseSensitive(o, "qos");
    FUZZ_CHECK(p.qos < 0 ? v == NULL : cJSON_IsNumber(v) && v->valueint == p.qos);
    v = cJSON_GetObjectItemCaseSensitive(o, "from");
    FUZZ_CHECK(p.from == EVFMT_FROM_APP || p.from == EVFMT_FROM_CLOUD ? cJSON_IsString(v)
                                                                      : v == NULL);
    cJSON_Delete(o);
    /* a tighter buffer: the whole text or nothing */
    scap = data[5] % (cap + 1);
    memset(small, 'x', sizeof small);
    len2 = evfmt__publish(&p, small, scap);
    FUZZ_CHECK(len2 == 0 || (len2 == len && memcmp(small, out, len + 1) == 0));
    /* an inconsistent record is refused */
    if (head > 0) {
        p.hex = head + 1;
        FUZZ_CHECK(evfmt__publish(&p, out, sizeof out) == 0);
    }
    return 0;
}
