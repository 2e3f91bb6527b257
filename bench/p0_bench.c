/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Data-point micro-benchmark (not a test): what the broker plugin spends per
 * device status report (plugin/devstate.c) against its baseline, the frame
 * decode every device publish already gets. Per iteration, on the 11-byte
 * GoKit pet house report inside a 0x0091 frame:
 *   baseline: giz_msg_decode of the frame;
 *   p0:       giz_msg_decode + giz_p0_decode + the row text the DB batch
 *             writes + freeing it all, the text by cJSON_PrintUnformatted
 *             and by giz_p0_attrs_text (what devstate.c uses);
 *   write:    giz_p0_encode_write of a 3-attr write (what POST /app/control
 *             and c2s_write do per command).
 * Prints ns per operation and the ratio p0 / baseline. Build and run:
 *   cc -O2 -Iinclude bench/p0_bench.c lib/p0.c lib/proto.c lib/error.c \
 *      -lcjson -lm -o /tmp/p0_bench && /tmp/p0_bench [iterations]
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "giz/p0.h"
#include "giz/proto.h"

static const char schema_json[] =
    "{\"entities\":[{\"attrs\":["
    "{\"name\":\"LED_OnOff\",\"type\":\"status_writable\",\"data_type\":\"bool\",\"position\":"
    "{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":0,\"len\":1}},"
    "{\"name\":\"LED_Color\",\"type\":\"status_writable\",\"data_type\":\"enum\",\"enum\":[\"C\","
    "\"Y\",\"P\",\"K\"],\"position\":{\"unit\":\"bit\",\"byte_offset\":0,\"bit_offset\":1,\"len\":"
    "2}},"
    "{\"name\":\"LED_R\",\"type\":\"status_writable\",\"data_type\":\"uint8\",\"position\":{"
    "\"unit\":\"byte\",\"byte_offset\":1,\"len\":1}},"
    "{\"name\":\"LED_G\",\"type\":\"status_writable\",\"data_type\":\"uint8\",\"position\":{"
    "\"unit\":\"byte\",\"byte_offset\":2,\"len\":1}},"
    "{\"name\":\"LED_B\",\"type\":\"status_writable\",\"data_type\":\"uint8\",\"position\":{"
    "\"unit\":\"byte\",\"byte_offset\":3,\"len\":1}},"
    "{\"name\":\"Motor_Speed\",\"type\":\"status_writable\",\"data_type\":\"uint8\",\"uint_spec\":"
    "{\"min\":0,\"max\":10,\"ratio\":1,\"addition\":-5},\"position\":{\"unit\":\"byte\","
    "\"byte_offset\":4,\"len\":1}},"
    "{\"name\":\"Infrared\",\"type\":\"status_readonly\",\"data_type\":\"bool\",\"position\":{"
    "\"unit\":\"bit\",\"byte_offset\":5,\"bit_offset\":0,\"len\":1}},"
    "{\"name\":\"Temperature\",\"type\":\"status_readonly\",\"data_type\":\"uint8\",\"uint_spec\":"
    "{\"min\":0,\"max\":200,\"ratio\":1,\"addition\":-13},\"position\":{\"unit\":\"byte\","
    "\"byte_offset\":6,\"len\":1}},"
    "{\"name\":\"Humidity\",\"type\":\"status_readonly\",\"data_type\":\"uint8\",\"position\":{"
    "\"unit\":\"byte\",\"byte_offset\":7,\"len\":1}},"
    "{\"name\":\"Alert_1\",\"type\":\"alert\",\"data_type\":\"bool\",\"position\":{\"unit\":"
    "\"bit\",\"byte_offset\":8,\"bit_offset\":0,\"len\":1}},"
    "{\"name\":\"Fault_LED\",\"type\":\"fault\",\"data_type\":\"bool\",\"position\":{\"unit\":"
    "\"bit\",\"byte_offset\":9,\"bit_offset\":0,\"len\":1}}]}]}";

/* 00000003 | len 0x0e | flags 00 | 0091 | p0 04 + 10 status bytes */
static const uint8_t frame[] = {0x00, 0x00, 0x00, 0x03, 0x0e, 0x00, 0x00, 0x91, 0x04, 0x07,
                                0xc8, 0x00, 0x00, 0x0a, 0x01, 0x26, 0x3c, 0x01, 0x00};

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    struct giz_p0_schema *s = NULL;
    struct giz_error e;
    struct giz_msg msg;
    volatile size_t sink = 0;
    uint8_t out[64];
    size_t olen = 0;
    cJSON *attrs = cJSON_Parse("{\"LED_OnOff\":true,\"LED_Color\":\"K\",\"Motor_Speed\":5}");
    double t0, base, p0[2], wr;

    if (n <= 0 || !attrs || giz_p0_schema_parse(schema_json, strlen(schema_json), &s, &e)) {
        fprintf(stderr, "p0_bench: setup failed (%s)\n", e.text);
        return 1;
    }
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (giz_msg_decode(frame, sizeof frame, &msg, NULL) != GIZ_OK) return 1;
        sink += msg.u.biz.data.len;
    }
    base = (now_ns() - t0) / (double)n;
    for (int fast = 0; fast < 2; fast++) {
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            struct giz_p0_msg m;
            char *text;

            if (giz_msg_decode(frame, sizeof frame, &msg, NULL) != GIZ_OK ||
                giz_p0_decode(s, msg.u.biz.data.ptr, msg.u.biz.data.len, &m, NULL) != GIZ_OK)
                return 1;
            text = fast ? giz_p0_attrs_text(m.attrs) : cJSON_PrintUnformatted(m.attrs);
            sink += text ? strlen(text) : 0;
            cJSON_free(text);
            giz_p0_msg_clear(&m);
        }
        p0[fast] = (now_ns() - t0) / (double)n;
    }
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (giz_p0_encode_write(s, attrs, GIZ_P0_FORM_FIXED, out, sizeof out, &olen, NULL))
            return 1;
        sink += olen;
    }
    wr = (now_ns() - t0) / (double)n;
    printf("iterations %ld\nbaseline frame decode               %8.1f ns\n"
           "frame + p0 decode + row (cJSON print) %8.1f ns  (%.1fx baseline)\n"
           "frame + p0 decode + row (attrs_text)  %8.1f ns  (%.1fx baseline)\n"
           "p0 encode write                     %8.1f ns\n",
           n, base, p0[0], p0[0] / base, p0[1], p0[1] / base, wr);
    giz_p0_schema_free(s);
    cJSON_Delete(attrs);
    return sink == 0;
}
