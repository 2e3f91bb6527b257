/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Text of the MQTT timeline events (events_format.h): a JSON object builder
 * over a fixed buffer (no allocation; an overflow marks the object unusable
 * instead of truncating it), the Gizwits frame's command code, and the
 * publish event fields from the raw record the broker thread queued. Pure
 * functions: the broker thread (events.c) formats the rare kinds at once,
 * the writer process formats publishes, the fuzz target drives both.
 */
#include "events_format.h"

#include <stdio.h>
#include <string.h>

#include "giz/proto.h"

static void raw(struct evjson *j, const char *s, size_t n)
{
    if (j->over || n >= j->cap - j->n) {
        j->over = true;
        return;
    }
    memcpy(j->p + j->n, s, n);
    j->n += n;
    j->p[j->n] = '\0';
}

void evjson__open(struct evjson *j, char *buf, size_t cap)
{
    j->p = buf;
    j->n = 0;
    j->cap = cap;
    j->over = cap < 2;
    j->first = true;
    if (!j->over) buf[0] = '\0';
    raw(j, "{", 1);
}

static void key(struct evjson *j, const char *k)
{
    size_t kl = strlen(k);
    if (j->over || kl + 4 >= j->cap - j->n) {
        j->over = true;
        return;
    }
    if (!j->first) j->p[j->n++] = ',';
    j->p[j->n++] = '"';
    memcpy(j->p + j->n, k, kl);
    j->n += kl;
    j->p[j->n++] = '"';
    j->p[j->n++] = ':';
    j->p[j->n] = '\0';
    j->first = false;
}

void evjson__strn(struct evjson *j, const char *k, const char *s, size_t len, size_t max)
{
    static const char hx[] = "0123456789abcdef";
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    if (len > max) len = max;
    key(j, k);
    raw(j, "\"", 1);
    while (i < len && !j->over) {
        uint8_t c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            raw(j, e, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
            raw(j, e, 6);
            i++;
        } else if (c < 0x80) {
            size_t k2 = i + 1;
            while (k2 < len && u[k2] >= 0x20 && u[k2] < 0x7f && u[k2] != '"' && u[k2] != '\\')
                k2++;
            raw(j, (const char *)&u[i], k2 - i);
            i = k2;
        } else {
            size_t k2 = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (k2 > 1 && i + k2 <= len && giz_utf8_valid(&u[i], k2)) {
                raw(j, (const char *)&u[i], k2);
                i += k2;
            } else {
                raw(j, "?", 1);
                i++;
            }
        }
    }
    raw(j, "\"", 1);
}

void evjson__str(struct evjson *j, const char *k, const char *s)
{
    if (s != NULL) evjson__strn(j, k, s, strlen(s), EVFMT_TOPIC_MAX);
}

void evjson__int(struct evjson *j, const char *k, int64_t v)
{
    char d[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    key(j, k);
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u > 0);
    if (v < 0) d[sizeof(d) - 1 - n++] = '-';
    raw(j, d + sizeof(d) - n, n);
}

void evjson__bool(struct evjson *j, const char *k, bool v)
{
    key(j, k);
    raw(j, v ? "true" : "false", v ? 4 : 5);
}

void evjson__hex(struct evjson *j, const char *k, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    key(j, k);
    if (j->over || n >= (j->cap - j->n) / 2 || 2 * n + 2 >= j->cap - j->n) {
        j->over = true;
        return;
    }
    j->p[j->n++] = '"';
    for (size_t i = 0; i < n; i++) {
        j->p[j->n++] = hx[p[i] >> 4];
        j->p[j->n++] = hx[p[i] & 15];
    }
    j->p[j->n++] = '"';
    j->p[j->n] = '\0';
}

void evjson__close(struct evjson *j)
{
    raw(j, "}", 1);
}

void evfmt__cmd_text(uint16_t cmd, char out[7])
{
    static const char hx[] = "0123456789ABCDEF";
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 4; i++)
        out[2 + i] = hx[(cmd >> (12 - 4 * i)) & 15];
    out[6] = '\0';
}

bool evfmt__frame_cmd(const uint8_t *p, size_t len, uint16_t *cmd, size_t *body)
{
    uint32_t v = 0;
    size_t used = 0;
    if (p == NULL || len < 6 || p[0] != 0 || p[1] != 0 || p[2] != 0 || p[3] != 3) return false;
    if (p[4] == 0x02) { /* the bare form (0x020E..0x0211): a framed Len is >= 3 */
        *cmd = (uint16_t)((p[4] << 8) | p[5]);
        *body = 6;
        return true;
    }
    if (len < 8) return false;
    if (giz_varint_decode(p + 4, len - 4, &v, &used) != GIZ_OK) return false;
    if (4 + used + 3 > len) return false;
    *cmd = (uint16_t)((p[4 + used + 1] << 8) | p[4 + used + 2]);
    *body = 4 + used + 3;
    return true;
}

size_t evfmt__publish(const struct evfmt_publish *e, char *out, size_t cap)
{
    struct evjson j;
    uint16_t cmd = 0;
    size_t body = 0, have = e->head_len; /* bytes of the payload we can read */
    bool framed;
    char c[8];
    if (e->hex > e->head_len || e->head_len > e->length || (e->head == NULL && e->head_len > 0) ||
        (e->topic == NULL && e->topic_len > 0))
        return 0;
    evjson__open(&j, out, cap);
    evjson__strn(&j, "topic", e->topic ? e->topic : "", e->topic_len, EVFMT_TOPIC_MAX);
    /* the head holds the whole payload or at least EVFMT_HEAD_MIN bytes of it */
    framed = evfmt__frame_cmd(e->head, have, &cmd, &body);
    if (framed) {
        evfmt__cmd_text(cmd, c);
        evjson__str(&j, "cmd", c);
    }
    evjson__int(&j, "length", e->length > INT64_MAX ? INT64_MAX : (int64_t)e->length);
    if (framed && (cmd == GIZ_CMD_BIZ_SN || cmd == GIZ_CMD_BIZ_SN_ACK) && body + 4 <= have)
        evjson__int(&j, "sn",
                    (int64_t)(((uint32_t)e->head[body] << 24) |
                              ((uint32_t)e->head[body + 1] << 16) |
                              ((uint32_t)e->head[body + 2] << 8) | e->head[body + 3]));
    if (framed && cmd == GIZ_CMD_APP_COUNT && body + 2 <= have)
        evjson__int(&j, "count", (int64_t)((e->head[body] << 8) | e->head[body + 1]));
    if (framed && cmd == GIZ_CMD_OTA_PUSH_V40) evjson__str(&j, "ota", "4.0");
    if (framed && cmd == GIZ_CMD_OTA_PUSH_V41) evjson__str(&j, "ota", "4.1");
    if (framed && cmd == GIZ_CMD_LOG && body < have) evjson__int(&j, "log_level", e->head[body]);
    if (e->hex > 0) {
        evjson__hex(&j, "payload", e->head, e->hex);
        if (e->hex < e->length) evjson__bool(&j, "payload_truncated", true);
    }
    if (e->qos >= 0) evjson__int(&j, "qos", e->qos);
    if (e->from == EVFMT_FROM_APP) evjson__str(&j, "from", "app");
    if (e->from == EVFMT_FROM_CLOUD) evjson__str(&j, "from", "cloud");
    evjson__close(&j);
    return j.over ? 0 : j.n;
}
