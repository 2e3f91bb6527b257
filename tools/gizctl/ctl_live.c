/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl commands that act as an app on MQTT: `send` (0x0090, or 0x0093 with
 * --ack and the round trip to the device's 0x0094), `log-level` (0x0010,
 * waits for 0x0011) and `watch` (decoded device messages, text or JSON
 * lines). One libuv loop, one MQTT connection through mqttc_uv.c, logging in
 * with the saved uid / token / MQTT client id.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctl.h"
#include "giz/crypto.h"
#include "giz/proto.h"
#include "mqttc_uv.h"
#include "util.h"

enum live_mode { LIVE_SEND, LIVE_ACK, LIVE_LOG_LEVEL, LIVE_WATCH };
enum live_phase { PH_CONNECTING, PH_SUBSCRIBING, PH_WAITING, PH_DONE };

struct live {
    struct ctl *ctl;
    enum live_mode mode;
    enum live_phase phase;
    uv_loop_t loop;
    struct mqttc mq;
    uv_timer_t timer;
    uv_signal_t sigint;
    struct sockaddr_storage addr;
    char mqtt_host[256]; /* what the certificate must name (MQTTS) */
    char dids[CTL_MAX_POS][64];
    int ndids;
    char topics[2 * CTL_MAX_POS][160];
    int ntopics, suback_seen;
    int rc;
    /* send / ack / log-level */
    uint8_t *payload;
    size_t payload_len;
    bool wait_reply;
    uint32_t sn;
    unsigned long count, done;
    bool burst;     /* --burst: all `count` 0x0093 at once, then every ACK */
    uint32_t sn0;   /* first SN of the burst */
    uint64_t acked; /* burst: bit i = ACK of sn0 + i seen */
    double t_sent;
    struct util_samples rtt;
    uint16_t bits;
    /* watch */
    unsigned long watch_max;
    uint64_t watch_for_ms; /* 0 = until Ctrl-C or watch_max */
    bool watch_all;
};

/* ---- argument helpers ------------------------------------------------------ */

/* Parses hex with optional spaces, colons, dashes and a 0x prefix, or @FILE. */
static int parse_payload(const char *arg, uint8_t **out, size_t *len)
{
    size_t n = 0, cap;
    char *clean;
    int rc;

    if (arg[0] == '@') {
        if (util__read_file(arg + 1, GIZ_MAX_BIZ, out, len) != 0)
            return ctl__fail(CTL_LOCAL, "cannot read payload file %s (at most %u bytes)", arg + 1,
                             GIZ_MAX_BIZ);
        return CTL_OK;
    }
    if (arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X')) arg += 2;
    cap = strlen(arg) + 1;
    clean = malloc(cap);
    if (clean == NULL) return ctl__fail(CTL_LOCAL, "out of memory");
    for (const char *p = arg; *p; p++)
        if (*p != ' ' && *p != ':' && *p != '-') clean[n++] = *p;
    clean[n] = '\0';
    *out = malloc(n / 2 + 1);
    if (*out == NULL) {
        free(clean);
        return ctl__fail(CTL_LOCAL, "out of memory");
    }
    rc = giz_hex_decode(clean, n, *out, n / 2 + 1, len);
    free(clean);
    if (rc != GIZ_OK || n == 0) {
        free(*out);
        *out = NULL;
        return ctl__fail(CTL_USAGE, "payload \"%s\" is not hex bytes (e.g. 0102ff) or @FILE", arg);
    }
    if (*len > GIZ_MAX_BIZ) {
        free(*out);
        *out = NULL;
        return ctl__fail(CTL_USAGE, "payload is longer than %u bytes", GIZ_MAX_BIZ);
    }
    return CTL_OK;
}

/* "error,warn,info,led" | "none" | "all" | number -> bits. */
static int parse_bits(const char *s, uint16_t *bits)
{
    uint64_t v;
    char buf[128];
    const char *p = s;

    if (giz_parse_uint(s, 0, 0, 0xffff, &v) == GIZ_OK) {
        *bits = (uint16_t)v;
        return CTL_OK;
    }
    *bits = 0;
    if (strcmp(s, "none") == 0 || strcmp(s, "off") == 0) return CTL_OK;
    if (strcmp(s, "all") == 0) {
        *bits = GIZ_LOGBIT_ERROR | GIZ_LOGBIT_WARN | GIZ_LOGBIT_INFO | GIZ_LOGBIT_LED;
        return CTL_OK;
    }
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof buf) goto bad;
        memcpy(buf, p, n);
        buf[n] = '\0';
        if (strcmp(buf, "error") == 0)
            *bits |= GIZ_LOGBIT_ERROR;
        else if (strcmp(buf, "warn") == 0 || strcmp(buf, "warning") == 0)
            *bits |= GIZ_LOGBIT_WARN;
        else if (strcmp(buf, "info") == 0)
            *bits |= GIZ_LOGBIT_INFO;
        else if (strcmp(buf, "led") == 0)
            *bits |= GIZ_LOGBIT_LED;
        else
            goto bad;
        p += n;
        if (*p == ',') p++;
    }
    return CTL_OK;
bad:
    return ctl__fail(CTL_USAGE,
                     "LEVELS \"%s\": use a comma list of error,warn,info,led, "
                     "\"none\", \"all\" or a number such as 0x0007",
                     s);
}

/* Finds the MQTT address: flags/env/config, else the bindings answer. */
static int resolve_mqtt(struct live *lv)
{
    struct ctl *ctl = lv->ctl;
    char host[256];
    uint16_t port = ctl->mqtt_port;
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    int rc;

    snprintf(host, sizeof host, "%s", ctl->mqtt_host);
    if (host[0] == '\0' || port == 0) {
        cJSON *out = NULL;
        const cJSON *item, *found = NULL;
        rc = ctl__http_json(ctl, "GET", "/app/bindings", NULL, CTL_AUTH_USER, &out);
        if (rc != CTL_OK) return rc;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(
                                     out, "devices")) if (found == NULL ||
                                                          strcmp(ctl__jstr(item, "did"),
                                                                 lv->dids[0]) == 0) found = item;
        if (found != NULL) {
            /* port_s is the broker's TLS port */
            const cJSON *p =
                cJSON_GetObjectItemCaseSensitive(found, ctl->mqtts ? "port_s" : "port");
            uint64_t pv = 0;
            if (host[0] == '\0') snprintf(host, sizeof host, "%s", ctl__jstr(found, "host"));
            if (port == 0 && cJSON_IsNumber(p) && p->valueint > 0 && p->valueint < 65536)
                port = (uint16_t)p->valueint;
            else if (port == 0 && cJSON_IsString(p) &&
                     giz_parse_uint(p->valuestring, 0, 1, 65535, &pv) == GIZ_OK)
                port = (uint16_t)pv;
        }
        cJSON_Delete(out);
    }
    if (host[0] == '\0') snprintf(host, sizeof host, "%s", ctl->http_host);
    if (port == 0) port = ctl->mqtts ? 8883 : 1883;
    snprintf(lv->mqtt_host, sizeof lv->mqtt_host, "%s", host);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || res == NULL)
        return ctl__fail(CTL_UNREACHABLE, "MQTT host \"%s\" does not resolve (set --mqtt-host)",
                         host);
    memcpy(&lv->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ctl->verbose)
        fprintf(stderr, "gizctl: MQTT%s %s:%u as %s\n", ctl->mqtts ? "S" : "", host, (unsigned)port,
                ctl->mqtt_client_id);
    return CTL_OK;
}

/* ---- loop plumbing ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void finish(struct live *lv, int rc)
{
    if (lv->phase == PH_DONE) return;
    lv->phase = PH_DONE;
    lv->rc = rc;
    if (lv->mq.state == MQTTC_OPEN) mqttc__disconnect(&lv->mq);
    mqttc__close(&lv->mq);
    uv_timer_stop(&lv->timer);
    if (!uv_is_closing((uv_handle_t *)&lv->timer))
        uv_close((uv_handle_t *)&lv->timer, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&lv->sigint))
        uv_close((uv_handle_t *)&lv->sigint, on_handle_closed);
}

static void arm_timeout(struct live *lv, uint64_t ms, uv_timer_cb cb)
{
    uv_timer_stop(&lv->timer);
    uv_timer_start(&lv->timer, cb, ms, 0);
}

static void on_timeout(uv_timer_t *t)
{
    struct live *lv = t->data;
    const char *what, *hint = "";
    switch (lv->phase) {
    case PH_CONNECTING:
        what = "CONNACK from the broker";
        hint = " (is --mqtt-host/--mqtt-port an MQTT broker?)";
        break;
    case PH_SUBSCRIBING:
        what = "SUBACK from the broker";
        break;
    default:
        hint = " (is the device online? `gizctl device show DID`)";
        what = lv->mode == LIVE_ACK         ? "0x0094 ACK from the device"
               : lv->mode == LIVE_LOG_LEVEL ? "0x0011 from the device"
                                            : "0x0091 reply from the device";
    }
    finish(lv, ctl__fail(CTL_TIMEOUT, "no %s within %.1f s%s", what, lv->ctl->timeout_ms / 1000.0,
                         hint));
}

static void on_watch_end(uv_timer_t *t)
{
    finish(t->data, CTL_OK);
}

static void on_sigint(uv_signal_t *s, int signum)
{
    struct live *lv = s->data;
    (void)signum;
    finish(lv, lv->mode == LIVE_WATCH ? CTL_OK : CTL_USAGE);
}

static void publish_to_device(struct live *lv, const uint8_t *msg, size_t len)
{
    char topic[160];
    snprintf(topic, sizeof topic, "app2dev/%s/%s", lv->dids[0], lv->ctl->mqtt_client_id);
    if (mqttc__publish(&lv->mq, topic, msg, len) != 0)
        finish(lv, ctl__fail(CTL_UNREACHABLE, "lost the MQTT connection while sending"));
}

/* Encodes and publishes the message of this mode. */
static void send_action(struct live *lv)
{
    struct giz_msg m;
    uint8_t *buf;
    size_t cap, len = 0;

    memset(&m, 0, sizeof m);
    switch (lv->mode) {
    case LIVE_SEND:
        m.cmd = GIZ_CMD_BIZ;
        m.u.biz.data.ptr = lv->payload;
        m.u.biz.data.len = lv->payload_len;
        break;
    case LIVE_ACK:
        m.cmd = GIZ_CMD_BIZ_SN;
        m.u.biz_sn.sn = lv->sn;
        m.u.biz_sn.data.ptr = lv->payload;
        m.u.biz_sn.data.len = lv->payload_len;
        break;
    case LIVE_LOG_LEVEL:
        m.cmd = GIZ_CMD_LOG_LEVEL_SET;
        m.u.log_level.bits = lv->bits;
        break;
    case LIVE_WATCH:
        return;
    }
    cap = giz_msg_encoded_size(&m);
    buf = cap ? malloc(cap) : NULL;
    if (buf == NULL || giz_msg_encode(&m, buf, cap, &len) != GIZ_OK) {
        free(buf);
        finish(lv, ctl__fail(CTL_LOCAL, "cannot encode the message"));
        return;
    }
    lv->t_sent = util__now_ms();
    publish_to_device(lv, buf, len);
    if (lv->mode == LIVE_ACK && lv->burst) {
        /* the rest of the burst, back to back; only the SN differs */
        for (unsigned long i = 1; i < lv->count && lv->phase != PH_DONE; i++) {
            m.u.biz_sn.sn = lv->sn0 + (uint32_t)i;
            if (giz_msg_encode(&m, buf, cap, &len) == GIZ_OK) publish_to_device(lv, buf, len);
        }
    }
    free(buf);
    if (lv->phase == PH_DONE) return;
    lv->phase = PH_WAITING;
    if (lv->mode == LIVE_SEND && !lv->wait_reply) {
        if (++lv->done >= lv->count) {
            if (!lv->ctl->json)
                printf("sent %zu byte(s) to %s\n", lv->payload_len, lv->dids[0]);
            else
                printf("{\"did\":\"%s\",\"sent\":%lu}\n", lv->dids[0], lv->done);
            finish(lv, CTL_OK);
        } else {
            send_action(lv);
        }
        return;
    }
    if (lv->mode == LIVE_LOG_LEVEL && lv->wait_reply == false) {
        printf("log level 0x%04x sent to %s\n", lv->bits, lv->dids[0]);
        finish(lv, CTL_OK);
        return;
    }
    arm_timeout(lv, (uint64_t)lv->ctl->timeout_ms, on_timeout);
}

/* ---- printing decoded messages ------------------------------------------------ */

static void hex_of(const struct giz_view *v, char *out, size_t cap)
{
    if (giz_hex_encode(v->ptr, v->len, out, cap) != GIZ_OK)
        snprintf(out, cap, "(%zu bytes)", v->len);
}

static void print_message(struct live *lv, const char *topic, const char *did,
                          const struct giz_mqtt_publish *p, const struct giz_msg *m, int drc,
                          const struct giz_error *err)
{
    char ts[40];
    bool to_me = strncmp(topic, "dev2app/", 8) == 0 && strchr(topic + 8, '/') != NULL;
    size_t hcap = 2 * (p->payload.len > 0 ? p->payload.len : 1) + 1;
    char *hex = malloc(hcap);
    if (hex == NULL) return;
    util__iso_now(ts, sizeof ts);
    if (lv->ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ts", ts);
        cJSON_AddStringToObject(o, "did", did);
        cJSON_AddStringToObject(o, "topic", topic);
        cJSON_AddBoolToObject(o, "to_me", to_me);
        if (drc != GIZ_OK) {
            hex_of(&p->payload, hex, hcap);
            cJSON_AddStringToObject(o, "name", "undecodable");
            cJSON_AddStringToObject(o, "error", giz_errname(drc));
            cJSON_AddStringToObject(o, "detail", err->text);
            cJSON_AddNumberToObject(o, "offset", (double)err->offset);
            cJSON_AddStringToObject(o, "raw", hex);
        } else {
            char cmd[8];
            const char *name = giz_cmd_name(m->cmd);
            snprintf(cmd, sizeof cmd, "0x%04x", m->cmd);
            cJSON_AddStringToObject(o, "cmd", cmd);
            cJSON_AddStringToObject(o, "name", name ? name : "?");
            if (m->cmd == GIZ_CMD_BIZ || m->cmd == GIZ_CMD_BIZ_REPLY) {
                hex_of(&m->u.biz.data, hex, hcap);
                cJSON_AddStringToObject(o, "data", hex);
            } else if (m->cmd == GIZ_CMD_BIZ_SN || m->cmd == GIZ_CMD_BIZ_SN_ACK) {
                hex_of(&m->u.biz_sn.data, hex, hcap);
                cJSON_AddNumberToObject(o, "sn", m->u.biz_sn.sn);
                cJSON_AddStringToObject(o, "data", hex);
            } else if (m->cmd == GIZ_CMD_LOG) {
                static const char *const lv_names[] = {"?", "error", "warn", "info"};
                char *t = strndup((const char *)m->u.log.tags.ptr, m->u.log.tags.len);
                char *s = strndup((const char *)m->u.log.source.ptr, m->u.log.source.len);
                char *c = strndup((const char *)m->u.log.content.ptr, m->u.log.content.len);
                cJSON_AddStringToObject(o, "level",
                                        m->u.log.level <= 3 ? lv_names[m->u.log.level] : "?");
                cJSON_AddStringToObject(o, "tags", t ? t : "");
                cJSON_AddStringToObject(o, "source", s ? s : "");
                cJSON_AddStringToObject(o, "content", c ? c : "");
                free(t);
                free(s);
                free(c);
            } else if (m->cmd == GIZ_CMD_LOG_LEVEL_SET) {
                cJSON_AddNumberToObject(o, "bits", m->u.log_level.bits);
            }
        }
        ctl__print_json(o);
        cJSON_Delete(o);
    } else if (drc != GIZ_OK) {
        hex_of(&p->payload, hex, hcap);
        printf("%s %s undecodable (%s at byte %zu: %s) %s\n", ts, did, giz_errname(drc),
               err->offset, err->text, hex);
    } else {
        const char *name = giz_cmd_name(m->cmd);
        printf("%s %s 0x%04x %-12s%s", ts, did, m->cmd, name ? name : "?", to_me ? " (to me)" : "");
        if (m->cmd == GIZ_CMD_BIZ || m->cmd == GIZ_CMD_BIZ_REPLY) {
            hex_of(&m->u.biz.data, hex, hcap);
            printf(" %s", hex);
        } else if (m->cmd == GIZ_CMD_BIZ_SN || m->cmd == GIZ_CMD_BIZ_SN_ACK) {
            hex_of(&m->u.biz_sn.data, hex, hcap);
            printf(" sn=%u %s", m->u.biz_sn.sn, hex);
        } else if (m->cmd == GIZ_CMD_LOG) {
            static const char *const lv_names[] = {"?", "error", "warn", "info"};
            printf(" %s [%.*s] %.*s: %.*s", m->u.log.level <= 3 ? lv_names[m->u.log.level] : "?",
                   (int)m->u.log.tags.len, (const char *)m->u.log.tags.ptr,
                   (int)m->u.log.source.len, (const char *)m->u.log.source.ptr,
                   (int)m->u.log.content.len, (const char *)m->u.log.content.ptr);
        }
        putchar('\n');
    }
    fflush(stdout);
    free(hex);
}

/* ---- MQTT callbacks ------------------------------------------------------------ */

static void on_connected(struct mqttc *c)
{
    (void)c;
}

static void on_publish(struct live *lv, const struct giz_mqtt_publish *p)
{
    char topic[256], did[64];
    struct giz_msg m;
    struct giz_error err;
    int drc;
    const char *slash;

    if (p->topic.len >= sizeof topic || p->topic.len < 8) return;
    memcpy(topic, p->topic.ptr, p->topic.len);
    topic[p->topic.len] = '\0';
    if (strncmp(topic, "dev2app/", 8) != 0) return;
    slash = strchr(topic + 8, '/');
    snprintf(did, sizeof did, "%.*s",
             (int)(slash ? (size_t)(slash - topic - 8) : strlen(topic + 8)), topic + 8);
    memset(&err, 0, sizeof err);
    drc = giz_msg_decode(p->payload.ptr, p->payload.len, &m, &err);

    if (lv->mode == LIVE_WATCH) {
        bool interesting = drc != GIZ_OK || m.cmd == GIZ_CMD_BIZ_REPLY ||
                           m.cmd == GIZ_CMD_BIZ_SN_ACK || m.cmd == GIZ_CMD_LOG ||
                           m.cmd == GIZ_CMD_LOG_LEVEL_ACK || m.cmd == GIZ_CMD_BIZ_SN;
        if (interesting || lv->watch_all) {
            print_message(lv, topic, did, p, &m, drc, &err);
            if (lv->watch_max > 0 && ++lv->done >= lv->watch_max) finish(lv, CTL_OK);
        }
        return;
    }
    if (lv->phase != PH_WAITING || drc != GIZ_OK || strcmp(did, lv->dids[0]) != 0) return;
    if (lv->mode == LIVE_ACK && lv->burst && m.cmd == GIZ_CMD_BIZ_SN_ACK &&
        m.u.biz_sn.sn - lv->sn0 < lv->count && !(lv->acked >> (m.u.biz_sn.sn - lv->sn0) & 1u)) {
        double rtt = util__now_ms() - lv->t_sent;
        lv->acked |= (uint64_t)1 << (m.u.biz_sn.sn - lv->sn0);
        util__samples_add(&lv->rtt, rtt);
        if (lv->ctl->json)
            printf("{\"did\":\"%s\",\"sn\":%u,\"rtt_ms\":%.3f}\n", did, m.u.biz_sn.sn, rtt);
        else
            printf("ack from %s sn=%u rtt=%.2f ms\n", did, m.u.biz_sn.sn, rtt);
        fflush(stdout);
        if (++lv->done >= lv->count) {
            if (!lv->ctl->json)
                printf("burst of %lu: all acknowledged, last after %.2f ms\n", lv->count,
                       lv->rtt.max);
            finish(lv, CTL_OK);
        }
    } else if (lv->mode == LIVE_ACK && m.cmd == GIZ_CMD_BIZ_SN_ACK && m.u.biz_sn.sn == lv->sn) {
        double rtt = util__now_ms() - lv->t_sent;
        util__samples_add(&lv->rtt, rtt);
        if (lv->ctl->json)
            printf("{\"did\":\"%s\",\"sn\":%u,\"rtt_ms\":%.3f}\n", did, lv->sn, rtt);
        else
            printf("ack from %s sn=%u rtt=%.2f ms\n", did, lv->sn, rtt);
        fflush(stdout);
        lv->sn++;
        if (++lv->done >= lv->count) {
            if (lv->count > 1 && !lv->ctl->json)
                printf("%lu round trips: min %.2f p50 %.2f p90 %.2f p99 %.2f max %.2f ms\n",
                       lv->done, lv->rtt.min, util__samples_pct(&lv->rtt, 50),
                       util__samples_pct(&lv->rtt, 90), util__samples_pct(&lv->rtt, 99),
                       lv->rtt.max);
            finish(lv, CTL_OK);
        } else {
            send_action(lv);
        }
    } else if (lv->mode == LIVE_SEND && m.cmd == GIZ_CMD_BIZ_REPLY) {
        print_message(lv, topic, did, p, &m, drc, &err);
        if (++lv->done >= lv->count)
            finish(lv, CTL_OK);
        else
            send_action(lv);
    } else if (lv->mode == LIVE_LOG_LEVEL && m.cmd == GIZ_CMD_LOG_LEVEL_ACK) {
        double rtt = util__now_ms() - lv->t_sent;
        if (lv->ctl->json)
            printf("{\"did\":\"%s\",\"bits\":%u,\"acked\":true,\"rtt_ms\":%.3f}\n", did, lv->bits,
                   rtt);
        else
            printf("%s acknowledged log level 0x%04x (%.2f ms)\n", did, lv->bits, rtt);
        finish(lv, CTL_OK);
    }
}

static void on_packet(struct mqttc *c, const uint8_t *pkt, size_t len)
{
    struct live *lv = c->ud;
    uint8_t type = pkt[0] >> 4;

    if (lv->phase == PH_DONE) return;
    if (type == GIZ_MQTT_CONNACK) {
        uint8_t code = 0xff;
        if (giz_mqtt_connack_parse(pkt, len, &code, NULL) != GIZ_OK) {
            finish(lv, ctl__fail(CTL_SERVER, "malformed CONNACK"));
        } else if (code != 0) {
            finish(lv,
                   ctl__fail(CTL_REFUSED,
                             "the broker refused the app login (CONNACK code %u%s). Log in "
                             "again with `gizctl login USERNAME`.",
                             code,
                             code == 4 || code == 5 ? ": bad credentials / not authorized" : ""));
        } else if (lv->ntopics == 0) {
            send_action(lv);
        } else {
            lv->phase = PH_SUBSCRIBING;
            for (int i = 0; i < lv->ntopics; i++)
                mqttc__subscribe(&lv->mq, (uint16_t)(i + 1), lv->topics[i]);
            arm_timeout(lv, (uint64_t)lv->ctl->timeout_ms, on_timeout);
        }
    } else if (type == GIZ_MQTT_SUBACK) {
        uint16_t id = 0;
        uint8_t granted = 0x80;
        if (giz_mqtt_suback_parse(pkt, len, &id, &granted, NULL) != GIZ_OK) {
            finish(lv, ctl__fail(CTL_SERVER, "malformed SUBACK"));
            return;
        }
        if (granted == 0x80) {
            finish(lv, ctl__fail(CTL_REFUSED,
                                 "the broker refused the subscription to %s: is the "
                                 "device bound to you (`gizctl bindings`)?",
                                 id >= 1 && id <= lv->ntopics ? lv->topics[id - 1] : "?"));
            return;
        }
        if (++lv->suback_seen == lv->ntopics) {
            if (lv->mode == LIVE_WATCH) {
                lv->phase = PH_WAITING;
                uv_timer_stop(&lv->timer);
                if (!lv->ctl->json)
                    fprintf(stderr, "gizctl: watching %d device(s); Ctrl-C to stop\n", lv->ndids);
                else
                    fprintf(stderr, "gizctl: watching\n");
                if (lv->watch_for_ms > 0) arm_timeout(lv, lv->watch_for_ms, on_watch_end);
            } else {
                send_action(lv);
            }
        }
    } else if (type == GIZ_MQTT_PUBLISH) {
        struct giz_mqtt_publish p;
        if (giz_mqtt_publish_parse(pkt, len, &p, NULL) == GIZ_OK) on_publish(lv, &p);
    }
}

static void on_closed(struct mqttc *c, int reason)
{
    struct live *lv = c->ud;
    if (lv->phase == PH_DONE) return;
    if (reason == MQTTC_CONNECT_FAILED)
        finish(lv, ctl__fail(CTL_UNREACHABLE, "cannot connect to the MQTT broker (set "
                                              "--mqtt-host/--mqtt-port or GIZ_MQTT_PORT)"));
    else if (reason == MQTTC_TLS_FAILED)
        finish(lv, ctl__fail(CTL_UNREACHABLE,
                             "MQTTS: the TLS handshake with %s failed (is the "
                             "port a TLS port? trust its CA with --cacert)",
                             lv->mqtt_host));
    else if (lv->phase == PH_CONNECTING)
        finish(lv, ctl__fail(CTL_REFUSED,
                             "the broker closed the connection during login (%s); "
                             "log in again with `gizctl login USERNAME`",
                             mqttc__reason_name(reason)));
    else
        finish(lv, ctl__fail(CTL_UNREACHABLE, "the MQTT connection was closed (%s)",
                             mqttc__reason_name(reason)));
}

static const struct mqttc_cbs live_cbs = {on_connected, on_packet, on_closed};

/* ---- command driver -------------------------------------------------------------- */

static int run_live(struct live *lv)
{
    struct giz_mqtt_connect_opts o;
    SSL_CTX *tls = NULL;
    int rc;

    rc = resolve_mqtt(lv);
    if (rc != CTL_OK) return rc;
    if (lv->ctl->mqtts) {
        char err[256];
        tls = mqttc__tls_ctx(lv->ctl->cacert[0] ? lv->ctl->cacert : NULL, err, sizeof err);
        if (tls == NULL) return ctl__fail(CTL_LOCAL, "MQTTS: %s (--cacert)", err);
    }
    uv_loop_init(&lv->loop);
    uv_timer_init(&lv->loop, &lv->timer);
    lv->timer.data = lv;
    uv_signal_init(&lv->loop, &lv->sigint);
    lv->sigint.data = lv;
    uv_signal_start(&lv->sigint, on_sigint, SIGINT);
    mqttc__init(&lv->mq, &live_cbs, lv, 1u << 20);
    lv->mq.tls_ctx = tls;
    lv->mq.tls_host = lv->mqtt_host;
    memset(&o, 0, sizeof o);
    o.client_id = lv->ctl->mqtt_client_id;
    o.username = lv->ctl->uid;
    o.password = lv->ctl->token;
    o.keepalive = 120;
    o.protocol_level = 4;
    o.clean_session = true;
    lv->phase = PH_CONNECTING;
    rc = mqttc__connect(&lv->mq, &lv->loop, (const struct sockaddr *)&lv->addr, &o);
    if (rc != 0) {
        finish(lv, ctl__fail(CTL_LOCAL, "cannot create a socket: %s", uv_strerror(rc)));
    } else {
        arm_timeout(lv, (uint64_t)lv->ctl->timeout_ms, on_timeout);
    }
    uv_run(&lv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&lv->loop);
    SSL_CTX_free(tls);
    return lv->rc;
}

/* Adds dev2app/<did> (cid NULL) or dev2app/<did>/<cid> to the subscriptions. */
static void add_topic(struct live *lv, const char *did, const char *cid)
{
    if (lv->ntopics < (int)(sizeof lv->topics / sizeof lv->topics[0]))
        snprintf(lv->topics[lv->ntopics++], sizeof lv->topics[0], "dev2app/%s%s%s", did,
                 cid ? "/" : "", cid ? cid : "");
}

static int live_init(struct live *lv, struct ctl *ctl, enum live_mode mode)
{
    memset(lv, 0, sizeof *lv);
    lv->ctl = ctl;
    lv->mode = mode;
    lv->count = 1;
    if (util__samples_init(&lv->rtt, 100000) != 0) return ctl__fail(CTL_LOCAL, "out of memory");
    return ctl__need_login(ctl);
}

/* Reads --count (1..max) into *out when given. CTL_OK or CTL_USAGE. */
static int opt_count(const struct ctl_args *a, uint64_t max, unsigned long *out)
{
    const char *s = ctl__opt(a, "count");
    uint64_t v;

    if (s == NULL) return CTL_OK;
    if (giz_parse_uint(s, 0, 1, max, &v) != GIZ_OK)
        return ctl__fail(CTL_USAGE, "--count wants a positive number");
    *out = (unsigned long)v;
    return CTL_OK;
}

int ctl__cmd_send(struct ctl *ctl, const struct ctl_args *a)
{
    struct live lv;
    const char *s;
    uint64_t v;
    int rc;

    rc = live_init(&lv, ctl, ctl__flag(a, "ack") ? LIVE_ACK : LIVE_SEND);
    if (rc != CTL_OK) goto cleanup;
    snprintf(lv.dids[0], sizeof lv.dids[0], "%s", a->pos[0]);
    lv.ndids = 1;
    rc = parse_payload(a->pos[1], &lv.payload, &lv.payload_len);
    if (rc != CTL_OK) goto cleanup;
    rc = opt_count(a, 100000000, &lv.count);
    if (rc != CTL_OK) goto cleanup;
    if ((s = ctl__opt(a, "sn")) != NULL) {
        if (giz_parse_uint(s, 0, 0, 0xffffffffUL, &v) != GIZ_OK) {
            rc = ctl__fail(CTL_USAGE, "--sn wants a number 0..4294967295");
            goto cleanup;
        }
        lv.sn = (uint32_t)v;
    } else {
        (void)giz_random_bytes(&lv.sn, sizeof lv.sn);
        lv.sn &= 0x7fffffffu;
    }
    lv.burst = ctl__flag(a, "burst");
    if (lv.burst && (lv.mode != LIVE_ACK || lv.count > 64)) {
        rc = ctl__fail(CTL_USAGE, "--burst goes with --ack and a --count of at most 64");
        goto cleanup;
    }
    lv.sn0 = lv.sn;
    lv.wait_reply = ctl__flag(a, "wait") || lv.mode == LIVE_ACK;
    if (lv.wait_reply) {
        add_topic(&lv, lv.dids[0], ctl->mqtt_client_id);
        add_topic(&lv, lv.dids[0], NULL);
    }
    rc = run_live(&lv);
cleanup:
    free(lv.payload);
    util__samples_free(&lv.rtt);
    return rc;
}

int ctl__cmd_log_level(struct ctl *ctl, const struct ctl_args *a)
{
    struct live lv;
    int rc;

    rc = live_init(&lv, ctl, LIVE_LOG_LEVEL);
    if (rc != CTL_OK) goto cleanup;
    snprintf(lv.dids[0], sizeof lv.dids[0], "%s", a->pos[0]);
    lv.ndids = 1;
    rc = parse_bits(a->pos[1], &lv.bits);
    if (rc != CTL_OK) goto cleanup;
    lv.wait_reply = !ctl__flag(a, "no-wait");
    if (lv.wait_reply) {
        add_topic(&lv, lv.dids[0], ctl->mqtt_client_id);
        add_topic(&lv, lv.dids[0], NULL);
    }
    rc = run_live(&lv);
cleanup:
    util__samples_free(&lv.rtt);
    return rc;
}

int ctl__cmd_watch(struct ctl *ctl, const struct ctl_args *a)
{
    struct live lv;
    const char *s;
    double secs;
    int rc;

    rc = live_init(&lv, ctl, LIVE_WATCH);
    if (rc != CTL_OK) goto cleanup;
    rc = opt_count(a, 1000000000, &lv.watch_max);
    if (rc != CTL_OK) goto cleanup;
    if ((s = ctl__opt(a, "for")) != NULL) {
        if (util__parse_double(s, 0.01, 1e7, &secs) != 0) {
            rc = ctl__fail(CTL_USAGE, "--for wants seconds");
            goto cleanup;
        }
        lv.watch_for_ms = (uint64_t)(secs * 1000);
    }
    lv.watch_all = ctl__flag(a, "all");
    for (int i = 0; i < a->npos; i++)
        snprintf(lv.dids[lv.ndids++], sizeof lv.dids[0], "%s", a->pos[i]);
    if (lv.ndids == 0) {
        cJSON *out = NULL;
        const cJSON *item;
        rc = ctl__http_json(ctl, "GET", "/app/bindings", NULL, CTL_AUTH_USER, &out);
        if (rc != CTL_OK) goto cleanup;
        cJSON_ArrayForEach(
            item, cJSON_GetObjectItemCaseSensitive(out, "devices")) if (lv.ndids < CTL_MAX_POS &&
                                                                        ctl__jstr(item, "did")[0])
            snprintf(lv.dids[lv.ndids++], sizeof lv.dids[0], "%s", ctl__jstr(item, "did"));
        cJSON_Delete(out);
        if (lv.ndids == 0) {
            rc =
                ctl__fail(CTL_USAGE, "no bound devices to watch: `gizctl bind DID PASSCODE` first");
            goto cleanup;
        }
    }
    for (int i = 0; i < lv.ndids; i++) {
        add_topic(&lv, lv.dids[i], NULL);
        add_topic(&lv, lv.dids[i], ctl->mqtt_client_id);
    }
    rc = run_live(&lv);
cleanup:
    util__samples_free(&lv.rtt);
    return rc;
}
