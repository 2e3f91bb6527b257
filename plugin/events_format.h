/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The MQTT timeline's text formatting (events_format.c), without mosquitto
 * or plugin state: a JSON object builder over a fixed buffer, the Gizwits
 * frame's command code, and the fields of a publish event built from its
 * raw record (what the broker thread copies; the writer process formats).
 * Linked into the plugin and into tests/fuzz/fuzz_events.c.
 */
#ifndef GIZ_PLUGIN_EVENTS_FORMAT_H
#define GIZ_PLUGIN_EVENTS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVFMT_TOPIC_MAX 200 /* topic bytes recorded */
/* Payload bytes a raw publish record keeps at least: enough for the frame
 * header (4 + varint up to 4 + flag + cmd) and the SN / count after it, so
 * cmd, sn, count and log_level come out as from the whole payload. */
#define EVFMT_HEAD_MIN 16u

/* A JSON object built into a caller's buffer; on overflow `over` is set
 * and the text must not be used. */
struct evjson {
    char *p;
    size_t n, cap;
    bool over, first;
};

/* Starts "{" in buf[cap] (cap >= 2). */
void evjson__open(struct evjson *j, char *buf, size_t cap);
/* "key": a JSON string of at most max bytes of s[0..len): valid UTF-8
 * passes, '"' '\\' and control characters are escaped, invalid bytes
 * become '?'. */
void evjson__strn(struct evjson *j, const char *key, const char *s, size_t len, size_t max);
/* evjson__strn of a NUL-terminated s, at most EVFMT_TOPIC_MAX bytes (s NULL: nothing). */
void evjson__str(struct evjson *j, const char *key, const char *s);
void evjson__int(struct evjson *j, const char *key, int64_t v);
void evjson__bool(struct evjson *j, const char *key, bool v);
/* "key": p[0..n) as lowercase hex in a JSON string. */
void evjson__hex(struct evjson *j, const char *key, const uint8_t *p, size_t n);
/* Ends the object with "}". */
void evjson__close(struct evjson *j);

/* "0x%04X" of cmd into out[7]. */
void evfmt__cmd_text(uint16_t cmd, char out[7]);
/* The command code of a Gizwits frame (00 00 00 03 | varint | flag | cmd,
 * or the bare 00 00 00 03 | cmd of 0x020E..0x0211) in p[0..len) and where
 * its body starts; false if the bytes are not one. */
bool evfmt__frame_cmd(const uint8_t *p, size_t len, uint16_t *cmd, size_t *body);

enum evfmt_from { EVFMT_FROM_NONE = 0, EVFMT_FROM_APP, EVFMT_FROM_CLOUD };

/* A publish event as the broker thread recorded it (views into the
 * record; nothing is owned). */
struct evfmt_publish {
    const char *topic; /* topic_len bytes, not NUL-terminated */
    size_t topic_len;
    const uint8_t *head; /* the payload's first head_len bytes */
    size_t head_len;
    uint64_t length; /* the whole payload's length */
    size_t hex;      /* payload bytes to write as hex: <= head_len */
    int qos;         /* -1: no "qos" field */
    int from;        /* enum evfmt_from: a "from" field unless NONE */
};

/* Writes the publish_in / publish_out fields of p (topic, cmd, length, sn,
 * count, ota, log_level, payload, payload_truncated, qos, from: see
 * DESIGN.md "Device timeline") as one JSON object into out[cap]. Returns
 * the text's length (out NUL-terminated), or 0 if it does not fit or p is
 * inconsistent (hex > head_len, head_len > length). */
size_t evfmt__publish(const struct evfmt_publish *p, char *out, size_t cap);

#endif
