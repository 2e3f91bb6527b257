/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * One simulated device, as the official firmware behaves: register (POST
 * /dev/devices) unless its DID is known, provision (GET /dev/devices/<DID>),
 * OTA v4.1 check, MQTT login (client id = username = DID, password =
 * passcode), three SUBSCRIBEs each awaiting its SUBACK, 0x020F on
 * cli2ser_req, PINGREQ every heartbeat (3 missed PINGRESPs = reconnect),
 * answers to 0x0090 / 0x0093 / 0x0010, 0x0012 logs at the enabled levels,
 * OTA re-check on 0x0211 / 0x020E, and reconnect back-off of 5 s + 10 s per
 * failed try (scaled), re-provisioning every 10 failures. Optional
 * misbehaviour: ping floods, malformed payloads, publishes to wrong topics.
 * By default a device keeps the firmware's limits (see tools/README.md,
 * "strict mode"): one recv(1024) per HTTP answer parsed with strstr, one
 * packet per MQTT recv(1024), PUBLISHes before the third SUBACK ignored, and
 * offered firmware actually downloaded with recv(600) and MD5-checked;
 * --lenient turns all of that off.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "giz/form.h"
#include "giz/proto.h"
#include "sim.h"

/* Encoding scratch for outgoing payloads; the loop is single-threaded. */
static uint8_t dev_payload_buf[70u * 1024u];

static void dev_connected_cb(struct mqttc *c);
static void dev_packet_cb(struct mqttc *c, const uint8_t *pkt, size_t len);
static void dev_closed_cb(struct mqttc *c, int reason);
static const struct mqttc_cbs dev_cbs = {dev_connected_cb, dev_packet_cb, dev_closed_cb};

static void mqtt_connect(struct sim_device *d);
static void schedule_backoff(struct sim_device *d);

void sim__dev_init(struct sim *s, struct sim_device *d, uint32_t idx)
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    /* Identity loaded from the state file (and misbehaviour flags) survive. */
    char did[sizeof d->did], passcode[sizeof d->passcode], mac[sizeof d->mac];
    uint8_t misbehave = d->misbehave;
    memcpy(did, d->did, sizeof did);
    memcpy(passcode, d->passcode, sizeof passcode);
    memcpy(mac, d->mac, sizeof mac);
    memset(d, 0, sizeof *d);
    d->sim = s;
    d->misbehave = misbehave;
    d->idx = idx;
    mqttc__init(&d->mq, &dev_cbs, d, 70u * 1024u);
    d->mq.strict = !s->o.lenient;
    (void)util__copy(d->soft_version, sizeof d->soft_version, s->o.soft_version);
    uv_timer_init(s->loop, &d->timer);
    d->timer.data = d;
    /* MAC: 3 bytes of the run tag (unicast), then the device index. */
    snprintf(d->mac, sizeof d->mac, "%02X%02X%02X%06X", s->run_tag[0] & 0xFEu, s->run_tag[1],
             s->run_tag[2], (unsigned)(idx & 0xFFFFFFu));
    for (int i = 0; i < 10; i++)
        d->passcode[i] = alphabet[util__rand(&s->rng) % (sizeof alphabet - 1)];
    d->passcode[10] = '\0';
    memcpy(d->did, did, sizeof did);
    if (passcode[0] != '\0') memcpy(d->passcode, passcode, sizeof passcode);
    if (mac[0] != '\0') memcpy(d->mac, mac, sizeof mac);
    if (sim__dev_picked(idx, s->o.ota_refuse_ratio)) d->ota_behave |= SIM_OTA_REFUSE;
    if (sim__dev_picked(idx, s->o.ota_corrupt_ratio)) d->ota_behave |= SIM_OTA_CORRUPT;
}

bool sim__dev_picked(uint32_t idx, double ratio)
{
    /* device idx is picked when floor(ratio * k) steps up at k = idx + 1:
     * exactly floor(ratio * n) of the first n devices, spread evenly */
    return ratio > 0 && (uint64_t)((idx + 1) * ratio + 1e-9) > (uint64_t)(idx * ratio + 1e-9);
}

/* ---- sending -------------------------------------------------------------------- */

static void dev_publish_raw(struct sim_device *d, const char *topic, const uint8_t *p, size_t n)
{
    if (mqttc__publish(&d->mq, topic, p, n) == 0) d->sim->st.pub_out++;
}

static void dev_publish_msg(struct sim_device *d, const char *topic, const struct giz_msg *m)
{
    size_t len = 0;
    if (giz_msg_encode(m, dev_payload_buf, sizeof dev_payload_buf, &len) != GIZ_OK) {
        sim__error(d->sim, SIM_ERR_NOMEM);
        return;
    }
    dev_publish_raw(d, topic, dev_payload_buf, len);
}

static void emit_logs(struct sim_device *d)
{
    static const char *const names[] = {"", "error", "warn", "info"};
    static const uint16_t bits[] = {0, GIZ_LOGBIT_ERROR, GIZ_LOGBIT_WARN, GIZ_LOGBIT_INFO};
    char topic[64], content[96];
    struct giz_msg m;

    snprintf(topic, sizeof topic, "dev2app/%s", d->did);
    for (uint8_t lvl = 1; lvl <= 3; lvl++) {
        if (!(d->log_bits & bits[lvl])) continue;
        int n = snprintf(content, sizeof content, "gizsim device %u %s log #%u", (unsigned)d->idx,
                         names[lvl], (unsigned)++d->log_seq);
        memset(&m, 0, sizeof m);
        m.cmd = GIZ_CMD_LOG;
        m.u.log.level = lvl;
        m.u.log.tags.ptr = (const uint8_t *)"gizsim";
        m.u.log.tags.len = 6;
        m.u.log.source.ptr = (const uint8_t *)"sim";
        m.u.log.source.len = 3;
        m.u.log.content.ptr = (const uint8_t *)content;
        m.u.log.content.len = n > 0 ? (size_t)n : 0;
        dev_publish_msg(d, topic, &m);
        d->sim->st.logs_sent++;
    }
}

bool sim__dev_report(struct sim_device *d)
{
    struct sim *s = d->sim;
    char topic[64];
    uint8_t data[1024];
    struct giz_msg m;
    size_t n = s->o.report_size < sizeof data ? s->o.report_size : sizeof data;

    if (d->phase != DEV_READY || mqttc__queued(&d->mq) > 65536) return false;
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i + d->idx);
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_BIZ_REPLY;
    m.u.biz.data.ptr = data;
    m.u.biz.data.len = n;
    snprintf(topic, sizeof topic, "dev2app/%s", d->did);
    dev_publish_msg(d, topic, &m);
    s->st.reports_sent++;
    return true;
}

/* Malformed payloads, in turn. */
static void send_malformed(struct sim_device *d)
{
    static const uint8_t bad_header[] = {0x00, 0x00, 0x00, 0x04, 0x03, 0x00, 0x00, 0x91};
    static const uint8_t truncated[] = {0x00, 0x00, 0x00, 0x03, 0x10, 0x00, 0x00, 0x91, 0x01};
    static const uint8_t long_varint[] = {0x00, 0x00, 0x00, 0x03, 0xff, 0xff, 0xff, 0xff, 0x7f};
    static const uint8_t bad_flags[] = {0x00, 0x00, 0x00, 0x03, 0x04, 0x01, 0x00, 0x91, 0x01};
    static const uint8_t unknown_cmd[] = {0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x77, 0x77};
    static const uint8_t bad_utf8_log[] = {0x00, 0x00, 0x00, 0x03, 0x0c, 0x00, 0x00, 0x12, 0x01,
                                           0x00, 0x01, 'x',  0x00, 0x01, 'y',  0x00, 0x01, 0xff};
    char topic[64];
    snprintf(topic, sizeof topic, "dev2app/%s", d->did);
    switch (d->mis_seq++ % 7) {
    case 0:
        dev_publish_raw(d, topic, bad_header, sizeof bad_header);
        break;
    case 1:
        dev_publish_raw(d, topic, truncated, sizeof truncated);
        break;
    case 2:
        dev_publish_raw(d, topic, long_varint, sizeof long_varint);
        break;
    case 3:
        dev_publish_raw(d, topic, bad_flags, sizeof bad_flags);
        break;
    case 4:
        dev_publish_raw(d, topic, unknown_cmd, sizeof unknown_cmd);
        break;
    case 5:
        dev_publish_raw(d, topic, bad_utf8_log, sizeof bad_utf8_log);
        break;
    default: {
        /* oversize: a 0x0091 whose business message is 66 000 bytes (> 65535) */
        size_t n = 66000;
        memset(dev_payload_buf, 0x5a, n + 8);
        memcpy(dev_payload_buf, "\x00\x00\x00\x03", 4);
        size_t used = giz_varint_encode((uint32_t)(n + 3), dev_payload_buf + 4, 4);
        dev_payload_buf[4 + used] = 0x00;
        dev_payload_buf[5 + used] = 0x00;
        dev_payload_buf[6 + used] = 0x91;
        dev_publish_raw(d, topic, dev_payload_buf, 7 + used + n);
    }
    }
    d->sim->st.malformed_sent++;
}

static void send_wrong_topic(struct sim_device *d)
{
    static const uint8_t biz[] = {0x00, 0x00, 0x00, 0x03, 0x04, 0x00, 0x00, 0x91, 0x01};
    struct sim *s = d->sim;
    char topic[96];
    const struct sim_device *other = &s->devs[(d->idx + 1) % s->o.devices];

    switch (d->mis_seq++ % 5) {
    case 0:
        snprintf(topic, sizeof topic, "dev2app/%s",
                 other->did[0] ? other->did : "XXXXXXXXXXXXXXXXXXXXXX");
        break;
    case 1:
        snprintf(topic, sizeof topic, "app2dev/%s/usrSPOOFED", d->did);
        break;
    case 2:
        snprintf(topic, sizeof topic, "ser2cli_res/%s", d->did);
        break;
    case 3:
        snprintf(topic, sizeof topic, "ser2cli_noti/%s", s->o.product_key);
        break;
    default:
        snprintf(topic, sizeof topic, "gizsim/wrong/%s", d->did);
        break;
    }
    dev_publish_raw(d, topic, biz, sizeof biz);
    s->st.wrong_topic_sent++;
}

void sim__dev_tick(struct sim_device *d, double now)
{
    struct sim *s = d->sim;
    if (d->phase != DEV_READY) return;
    if (d->log_bits & (GIZ_LOGBIT_ERROR | GIZ_LOGBIT_WARN | GIZ_LOGBIT_INFO) && now >= d->t_log &&
        s->o.log_interval_s > 0) {
        emit_logs(d);
        d->t_log = now + s->o.log_interval_s * 1000.0;
    }
    if (d->misbehave & SIM_MIS_PING_FLOOD) {
        for (int i = 0; i < 10 && d->mq.state == MQTTC_OPEN; i++)
            if (mqttc__ping(&d->mq) == 0) s->st.flood_pings++;
    }
    if ((d->misbehave & SIM_MIS_MALFORMED) && d->mq.state == MQTTC_OPEN) send_malformed(d);
    if ((d->misbehave & SIM_MIS_WRONG_TOPIC) && d->mq.state == MQTTC_OPEN) send_wrong_topic(d);
}

/* ---- HTTP: register, provision, OTA check, firmware download ------------------------- */

static void dev_http_done(int rc, const struct httpc_resp *r, void *ud);
static int dev_strict_recv(const char *data, size_t n, size_t *next_cap, void *ud);
static void dev_strict_end(int rc, void *ud);
static int dev_dl_recv(const char *data, size_t n, size_t *next_cap, void *ud);
static void dev_dl_end(int rc, void *ud);

/* Firmware's receive sizes: one recv(1024) per answer, recv(600) for downloads. */
#define FW_ANSWER_RECV 1024u
#define FW_DOWNLOAD_RECV 600u

/* The first read of the answer being handled (strict mode). Only valid
 * between dev_strict_recv and the dev_strict_end that follows it at once. */
static char strict_answer[FW_ANSWER_RECV + 1];

static bool is_ota_op(uint8_t op)
{
    return op == HOP_OTA || op == HOP_OTA40 || op == HOP_DOWNLOAD;
}

void sim__dev_start(struct sim_device *d)
{
    struct sim *s = d->sim;
    if (s->stopping) return;
    if (s->o.no_http) {
        if (!s->mqtt_addr_set) {
            sim__error(s, SIM_ERR_MQTT_CONNECT);
            return;
        }
        mqtt_connect(d);
        return;
    }
    d->phase = DEV_HTTP;
    d->http_op = d->did[0] ? HOP_PROVISION : HOP_REGISTER;
    d->ota_after = 1;
    sim__http_acquire(s, d);
}

/* Starts an OTA re-check while connected (after a push). */
static void ota_recheck(struct sim_device *d)
{
    struct sim *s = d->sim;
    if (s->o.no_http) return;
    if (d->http != NULL || d->http_queued || d->phase == DEV_HTTP) {
        d->ota_pending = 1; /* check again once the running request is done */
        return;
    }
    d->ota_pending = 0;
    d->http_op = HOP_OTA;
    d->ota_after = 0;
    sim__http_acquire(s, d);
}

/* The OTA chain (check, maybe download) is over: release the slot and go on
 * with the boot (MQTT login) or a push that came meanwhile. */
static void ota_done(struct sim_device *d)
{
    sim__http_release(d->sim);
    d->http_op = HOP_NONE;
    if (d->ota_after) {
        d->ota_after = 0;
        mqtt_connect(d);
    } else if (d->ota_pending) {
        ota_recheck(d);
    }
}

void sim__dev_http_go(struct sim_device *d)
{
    struct sim *s = d->sim;
    char path[640], body[256], v1[64], v2[64];
    const char *method = "GET", *ctype = NULL, *extra = NULL;
    size_t blen = 0;

    d->http_queued = 0;
    if (s->stopping || d->phase == DEV_STOPPED) {
        sim__http_release(s);
        return;
    }
    if (d->http_op == HOP_OTA && (s->o.ota_version == 40 || d->ota_v40_next))
        d->http_op = HOP_OTA40;
    if (is_ota_op(d->http_op) && d->http_op != HOP_DOWNLOAD) {
        d->ota_v40_next = 0;
        if (giz_form_encode_value(s->o.hard_version, v1, sizeof v1) != GIZ_OK ||
            giz_form_encode_value(d->soft_version, v2, sizeof v2) != GIZ_OK)
            v1[0] = v2[0] = '\0';
    }
    switch (d->http_op) {
    case HOP_REGISTER:
        method = "POST";
        ctype = "application/x-www-form-urlencoded";
        snprintf(path, sizeof path, "%s/dev/devices", s->o.http_prefix);
        blen = (size_t)snprintf(body, sizeof body, "passcode=%s&mac=%s&product_key=%s", d->passcode,
                                d->mac, s->o.product_key);
        break;
    case HOP_PROVISION:
        snprintf(path, sizeof path, "%s/dev/devices/%s", s->o.http_prefix, d->did);
        break;
    case HOP_OTA40:
        /* v4.0: GET target_fid, with the header the firmware sends */
        extra = "Content-Type: application/text\r\n";
        snprintf(path, sizeof path,
                 "%s/dev/ota/target_fid?did=%s&product_key=%s&type=%d&hard_version=%s"
                 "&soft_version=%s&current_fid=%u",
                 s->o.http_prefix, d->did, s->o.product_key, s->o.ota_type, v1, v2,
                 d->current_fid ? (unsigned)d->current_fid : 1u);
        break;
    default:
        method = "POST";
        ctype = "application/x-www-form-urlencoded";
        snprintf(path, sizeof path, "%s/dev/ota/v4.1/update_and_check/%s", s->o.http_prefix,
                 d->did);
        blen = (size_t)snprintf(body, sizeof body,
                                "passcode=%s&type=%d&hard_version=%s&soft_version=%s", d->passcode,
                                s->o.ota_type, v1, v2);
        break;
    }
    d->t_start = util__now_ms();
    if (s->o.lenient)
        d->http = http_uv__start(s->loop, (const struct sockaddr *)&s->http_addr, "api.gizwits.com",
                                 s->o.http_port, method, path, ctype, extra, ctype ? body : NULL,
                                 blen, s->o.http_timeout_ms, dev_http_done, d);
    else
        d->http = http_uv__start_raw(s->loop, (const struct sockaddr *)&s->http_addr,
                                     "api.gizwits.com", s->o.http_port, method, path, ctype, extra,
                                     ctype ? body : NULL, blen, s->o.http_timeout_ms,
                                     FW_ANSWER_RECV, dev_strict_recv, dev_strict_end, d);
    if (d->http == NULL) {
        sim__http_release(s);
        sim__error(s, SIM_ERR_HTTP_CONNECT);
        if (!is_ota_op(d->http_op) || d->ota_after) schedule_backoff(d);
    }
}

/* ---- parsing the way firmware parses --------------------------------------------- */

/* HTTP status as firmware reads it: the text between the first two spaces
 * (at most 10 characters), as a number; 0 when there is none. */
static int fw_status(const char *buf)
{
    const char *a = strchr(buf, ' '), *b;
    char code[11];
    long v;
    char *end = NULL;

    if (a == NULL) return 0;
    a++;
    b = strchr(a, ' ');
    if (b == NULL || b - a > 10 || b == a) return 0;
    memcpy(code, a, (size_t)(b - a));
    code[b - a] = '\0';
    v = strtol(code, &end, 10);
    return v > 0 && v < 1000 ? (int)v : 0;
}

/* strstr(buf, key), then the text up to `stop` (a string, or NULL = to the
 * end). False when either is missing or the value does not fit. */
static bool fw_field(const char *buf, const char *key, const char *stop, char *out, size_t cap)
{
    const char *p = strstr(buf, key), *e;
    size_t n;

    if (p == NULL) return false;
    p += strlen(key);
    e = stop ? strstr(p, stop) : p + strlen(p);
    if (e == NULL) return false;
    n = (size_t)(e - p);
    if (n >= cap) return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* ---- firmware download (strict mode) ---------------------------------------------- */

static void dl_failed(struct sim_device *d, enum sim_dl_fail why)
{
    struct sim *s = d->sim;
    s->st.dl_failed++;
    s->st.dl_fail[why]++;
    d->downloads_failed++;
    if (!s->o.quiet)
        fprintf(stderr, "gizsim: device %s: firmware download failed: %s\n", d->did,
                sim__dl_fail_name(why));
}

static void dl_free(struct sim_device *d)
{
    if (d->dl != NULL) {
        giz_md5_free(d->dl->md5);
        free(d->dl);
        d->dl = NULL;
    }
}

/* Resolves a download URL's host the way firmware does: everything between
 * "http://" and the first '/' is the host name (a port in it makes the name
 * unresolvable); IPv4 only. The port used is the configured GService port
 * (firmware always uses 80, which tests cannot bind). */
static bool dl_resolve(struct sim_device *d, const char *url, struct sim_download *dl)
{
    const struct sim *s = d->sim;
    const char *p = strstr(url, "http://"), *slash;
    struct addrinfo hints, *res = NULL;
    size_t hl;

    if (p == NULL) return false;
    p += 7;
    slash = strchr(p, '/');
    if (slash == NULL || slash == p) return false;
    hl = (size_t)(slash - p);
    if (hl >= sizeof dl->host || strlen(slash) >= sizeof dl->path) return false;
    memcpy(dl->host, p, hl);
    dl->host[hl] = '\0';
    memcpy(dl->path, slash, strlen(slash) + 1);
    if (strchr(dl->host, ':') != NULL) return false; /* "127.0.0.1:80" is not a host name */
    if (uv_ip4_addr(dl->host, s->o.http_port, (struct sockaddr_in *)&dl->addr) == 0) return true;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(dl->host, NULL, &hints, &res) != 0 || res == NULL) return false;
    memcpy(&dl->addr, res->ai_addr, res->ai_addrlen);
    ((struct sockaddr_in *)&dl->addr)->sin_port = htons(s->o.http_port);
    freeaddrinfo(res);
    return true;
}

/* Starts downloading `url` (the slot of the OTA check is kept). Returns
 * false when nothing was started (failure counted); ota_done is then up to
 * the caller. */
static bool dl_start(struct sim_device *d, const char *url, const char *version, uint32_t fid)
{
    struct sim *s = d->sim;
    struct sim_download *dl = calloc(1, sizeof *dl);

    s->st.dl_started++;
    if (dl == NULL || (dl->md5 = giz_md5_new()) == NULL) {
        free(dl);
        sim__error(s, SIM_ERR_NOMEM);
        return false;
    }
    dl->fail = -1;
    dl->first = true;
    dl->new_fid = fid;
    (void)util__copy(dl->new_version, sizeof dl->new_version, version);
    d->dl = dl;
    if (!dl_resolve(d, url, dl)) {
        dl_free(d);
        dl_failed(d, SIM_DLF_UNKNOWN_HOST);
        return false;
    }
    d->http_op = HOP_DOWNLOAD;
    d->t_start = util__now_ms();
    d->http =
        http_uv__start_raw(s->loop, (const struct sockaddr *)&dl->addr, dl->host, 80, "GET",
                           dl->path, NULL, "Content-Type: application/text\r\n", NULL, 0,
                           s->o.http_timeout_ms, FW_DOWNLOAD_RECV, dev_dl_recv, dev_dl_end, d);
    if (d->http == NULL) {
        dl_free(d);
        dl_failed(d, SIM_DLF_CONNECT);
        return false;
    }
    return true;
}

/* One recv() of the download, handled as the firmware handles it: the first
 * must hold the headers and the body start, and (600 - header length) bytes
 * of that buffer are written whatever recv returned; later reads ask for
 * min(600, bytes still due) and write what came. */
static int dev_dl_recv(const char *data, size_t n, size_t *next_cap, void *ud)
{
    struct sim_device *d = ud;
    struct sim_download *dl = d->dl;
    size_t write_len = n;
    const char *from = data;

    if (dl == NULL) return HTTPC_ERR_IO;
    if (dl->first) {
        char v[40];
        const char *end;
        size_t head_len;
        unsigned long long len = 0;

        dl->first = false;
        if (fw_status(data) != 200) {
            dl->fail = SIM_DLF_STATUS;
            return HTTPC_ERR_PROTO;
        }
        end = strstr(data, "\r\n\r\n");
        head_len = end ? (size_t)(end + 4 - data) : 0; /* firmware: 0 when not found */
        if (fw_field(data, "Content-Length: ", "\r\n", v, sizeof v)) len = strtoull(v, NULL, 10);
        dl->filelen = len;
        if (!fw_field(data, "Firmware-MD5: ", "\r\n", dl->want_md5, sizeof dl->want_md5) ||
            strlen(dl->want_md5) != 32)
            dl->want_md5[0] = '\0';
        if (dl->new_version[0] == '\0' && fw_field(data, "Soft-Version: ", "\r\n", v, sizeof v))
            (void)util__copy(dl->new_version, sizeof dl->new_version, v);
        /* data[n..600] are zero bytes (http_uv zeroes the buffer before a read) */
        from = data + head_len;
        write_len = FW_DOWNLOAD_RECV - head_len;
    }
    (void)giz_md5_update(dl->md5, from, write_len);
    if (dl->offset == 0 && (d->ota_behave & SIM_OTA_CORRUPT))
        (void)giz_md5_update(dl->md5, "!", 1); /* a flipped flash write: the MD5 fails */
    dl->offset += write_len;
    if (dl->offset >= dl->filelen) return 0;
    *next_cap = dl->filelen - dl->offset < FW_DOWNLOAD_RECV ? (size_t)(dl->filelen - dl->offset)
                                                            : FW_DOWNLOAD_RECV;
    return 1;
}

/* The OTA reports newer firmware sends on cli2ser_req after a download:
 * 0x022C progress (100 %, "success" or "md5 fail") and, after a success, a
 * 0x021C version report with the new module / MCU version. Sent once the
 * device is logged in (become_ready calls this again). */
static void ota_reports(struct sim_device *d)
{
    struct sim *s = d->sim;
    char ver[64];
    struct giz_msg m;
    if (d->ota_report == 0 || d->phase != DEV_READY) return;
    snprintf(ver, sizeof ver, "%s,%s", s->o.hard_version, d->soft_version);
    memset(&m, 0, sizeof m);
    m.cmd = GIZ_CMD_OTA_PROGRESS;
    m.u.ota_progress.flags = s->o.ota_type == 2 ? GIZ_OTAFLAG_MCU : GIZ_OTAFLAG_MODULE;
    m.u.ota_progress.percent = 100;
    m.u.ota_progress.version.ptr = (const uint8_t *)ver;
    m.u.ota_progress.version.len = strlen(ver);
    m.u.ota_progress.info.ptr =
        (const uint8_t *)(d->ota_report == SIM_REPORT_SUCCESS ? "success" : "md5 fail");
    m.u.ota_progress.info.len = strlen((const char *)m.u.ota_progress.info.ptr);
    dev_publish_msg(d, "cli2ser_req", &m);
    s->st.ota_progress_sent++;
    if (d->ota_report == SIM_REPORT_SUCCESS) {
        memset(&m, 0, sizeof m);
        m.cmd = GIZ_CMD_VERSION_REPORT;
        m.u.version.flags = s->o.ota_type == 2 ? GIZ_VERFLAG_MCU : GIZ_VERFLAG_MODULE;
        if (s->o.ota_type == 2) {
            m.u.version.mcu.ptr = (const uint8_t *)ver;
            m.u.version.mcu.len = strlen(ver);
        } else {
            m.u.version.module.ptr = (const uint8_t *)ver;
            m.u.version.module.len = strlen(ver);
        }
        dev_publish_msg(d, "cli2ser_req", &m);
    }
    d->ota_report = 0;
}

static void dev_dl_end(int rc, void *ud)
{
    struct sim_device *d = ud;
    struct sim *s = d->sim;
    struct sim_download *dl = d->dl;

    d->http = NULL;
    util__samples_add(&s->http_ms, util__now_ms() - d->t_start);
    if (s->stopping || d->phase == DEV_STOPPED || dl == NULL) {
        dl_free(d);
        sim__http_release(s);
        return;
    }
    if (rc == HTTPC_OK) {
        char got[33];
        struct giz_md5 *ctx = dl->md5;
        dl->md5 = NULL;
        if (giz_md5_final(ctx, got) == GIZ_OK && dl->offset == dl->filelen &&
            dl->want_md5[0] != '\0' && strcasecmp(got, dl->want_md5) == 0) {
            s->st.dl_ok++;
            d->downloads_ok++;
            if (dl->new_version[0] != '\0')
                (void)util__copy(d->soft_version, sizeof d->soft_version, dl->new_version);
            if (dl->new_fid != 0) d->current_fid = dl->new_fid;
            /* newer firmware: 0x022C 100 %, then (after its reboot) a 0x021C
             * version report; both wait for the MQTT login if not logged in */
            d->ota_report = SIM_REPORT_SUCCESS;
            ota_reports(d);
        } else {
            dl_failed(d, SIM_DLF_MD5);
            d->ota_report = SIM_REPORT_MD5_FAIL;
            ota_reports(d);
        }
    } else {
        dl_failed(d, dl->fail >= 0             ? (enum sim_dl_fail)dl->fail
                     : rc == HTTPC_ERR_CONNECT ? SIM_DLF_CONNECT
                                               : SIM_DLF_SHORT);
    }
    dl_free(d);
    ota_done(d);
}

/* ---- answers ------------------------------------------------------------------------ */

/* true if the 22 characters at p (firmware copies exactly that many after
 * "did=", whatever follows) form a DID. */
static bool is_did(const char *p)
{
    char did[GIZ_ID_DID_LEN + 1];

    if (strnlen(p, GIZ_ID_DID_LEN) < GIZ_ID_DID_LEN) return false;
    memcpy(did, p, GIZ_ID_DID_LEN);
    did[GIZ_ID_DID_LEN] = '\0';
    return giz_did_valid(did);
}

/* No update for this device (9500 / 9502): the normal "no" answer. */
static bool no_update_answer(int status, const char *text)
{
    return status >= 400 && status < 500 &&
           (strstr(text, "9500") || strstr(text, "9502") || strstr(text, "push rule"));
}

/* One answer: `text` is what firmware parses (the first recv in strict mode,
 * the body in lenient mode), status as firmware reads it. */
static void dev_http_answer(struct sim_device *d, int rc, int status, const char *text)
{
    struct sim *s = d->sim;
    bool boot = !is_ota_op(d->http_op) || d->ota_after;
    char host[256], port[16], sv[40], url[600], fid[16];
    const char *p;
    uint64_t pv;
    int m2m = 0;

    d->http = NULL;
    util__samples_add(&s->http_ms, util__now_ms() - d->t_start);
    if (s->stopping || d->phase == DEV_STOPPED) {
        sim__http_release(s);
        return;
    }
    if (rc != HTTPC_OK) {
        sim__http_release(s);
        sim__error(s, rc == HTTPC_ERR_TIMEOUT   ? SIM_ERR_HTTP_TIMEOUT
                      : rc == HTTPC_ERR_CONNECT ? SIM_ERR_HTTP_CONNECT
                                                : SIM_ERR_HTTP_IO);
        if (boot)
            schedule_backoff(d);
        else
            d->http_op = HOP_NONE;
        return;
    }
    switch (d->http_op) {
    case HOP_REGISTER:
        /* firmware copies exactly 22 characters after "did=" */
        p = strstr(text, "did=");
        if (status != 201 || p == NULL || !is_did(p + 4)) {
            sim__http_release(s);
            sim__error(s, SIM_ERR_REGISTER_REFUSED);
            schedule_backoff(d);
            return;
        }
        memcpy(d->did, p + 4, GIZ_DID_LEN);
        d->did[GIZ_DID_LEN] = '\0';
        s->st.registered++;
        s->state_dirty = true;
        d->http_op = HOP_PROVISION;
        sim__dev_http_go(d); /* keeps the slot */
        return;
    case HOP_PROVISION:
        if (status != 200) {
            sim__http_release(s);
            sim__error(s, SIM_ERR_PROVISION_REFUSED);
            schedule_backoff(d);
            return;
        }
        /* host= up to '&', then port= up to '&' */
        p = strstr(text, "host=");
        if (!fw_field(text, "host=", "&", host, sizeof host) || p == NULL ||
            !fw_field(p, "port=", "&", port, sizeof port) ||
            giz_parse_uint(port, 10, 1, 65535, &pv) != GIZ_OK ||
            (m2m = sim__set_m2m(s, host, (uint16_t)pv)) < 0) {
            sim__http_release(s);
            sim__error(s, SIM_ERR_PROVISION_BAD);
            schedule_backoff(d);
            return;
        }
        d->m2m = (uint8_t)m2m; /* its broker (several brokers: each device its own) */
        s->st.provisioned++;
        if (!s->o.no_ota && d->ota_after == 1) {
            d->http_op = HOP_OTA;
            sim__dev_http_go(d);
            return;
        }
        sim__http_release(s);
        d->http_op = HOP_NONE;
        mqtt_connect(d);
        return;
    case HOP_OTA40:
        s->st.ota_checks++;
        d->ota_checks++;
        if (status == 200) {
            uint64_t f = 0;
            /* target_fid= up to '&', download_url= up to '&' (v4.0 firmware) */
            if (!fw_field(text, "target_fid=", "&", fid, sizeof fid) ||
                giz_parse_uint(fid, 10, 1, 0xFFFFFFFFul, &f) != GIZ_OK ||
                !fw_field(text, "download_url=", "&", url, sizeof url) ||
                strstr(url, "/dev/ota/download") == NULL) {
                sim__error(s, SIM_ERR_OTA_STATUS);
            } else {
                s->st.ota_offered++;
                if (!fw_field(text, "soft_ver=", "&", sv, sizeof sv) &&
                    !fw_field(text, "soft_ver=", "\r\n", sv, sizeof sv))
                    sv[0] = '\0';
                if (d->ota_behave & SIM_OTA_REFUSE)
                    s->st.ota_refused++;
                else if (!s->o.lenient && f != d->current_fid && dl_start(d, url, sv, (uint32_t)f))
                    return;
            }
        } else if (!no_update_answer(status, text)) {
            sim__error(s, SIM_ERR_OTA_STATUS);
        }
        ota_done(d);
        return;
    default:
        s->st.ota_checks++;
        d->ota_checks++;
        if (status == 200) {
            /* soft_ver= up to '&', download_url= up to CRLF (v4.1 firmware) */
            if (!fw_field(text, "soft_ver=", "&", sv, sizeof sv) ||
                !fw_field(text, "download_url=", "\r\n", url, sizeof url)) {
                sim__error(s, SIM_ERR_OTA_STATUS);
            } else {
                s->st.ota_offered++;
                if (d->ota_behave & SIM_OTA_REFUSE)
                    s->st.ota_refused++; /* the user declined: nothing is downloaded */
                else if (!s->o.lenient && strcmp(d->soft_version, sv) < 0 &&
                         dl_start(d, url, sv, 0))
                    return;
            }
        } else if (!no_update_answer(status, text)) {
            sim__error(s, SIM_ERR_OTA_STATUS);
        }
        ota_done(d);
        return;
    }
}

static void dev_http_done(int rc, const struct httpc_resp *r, void *ud)
{
    dev_http_answer(ud, rc, r ? r->status : 0, r ? r->body : "");
}

static int dev_strict_recv(const char *data, size_t n, size_t *next_cap, void *ud)
{
    (void)next_cap;
    (void)ud;
    if (n > FW_ANSWER_RECV) n = FW_ANSWER_RECV;
    memcpy(strict_answer, data, n);
    strict_answer[n] = '\0';
    return 0; /* firmware reads once */
}

static void dev_strict_end(int rc, void *ud)
{
    dev_http_answer(ud, rc, rc == HTTPC_OK ? fw_status(strict_answer) : 0, strict_answer);
}

/* ---- MQTT ---------------------------------------------------------------------------- */

static void on_login_timeout(uv_timer_t *t)
{
    struct sim_device *d = t->data;
    sim__error(d->sim, SIM_ERR_LOGIN_TIMEOUT);
    mqttc__close(&d->mq);
}

static void on_heartbeat(uv_timer_t *t)
{
    struct sim_device *d = t->data;
    struct sim *s = d->sim;
    if (d->phase != DEV_READY) return;
    if (d->missed_pongs >= 3) {
        sim__error(s, SIM_ERR_PING_TIMEOUT);
        mqttc__close(&d->mq);
        return;
    }
    d->missed_pongs++;
    if (mqttc__ping(&d->mq) == 0) s->st.pings_sent++;
}

static void on_backoff_done(uv_timer_t *t)
{
    struct sim_device *d = t->data;
    struct sim *s = d->sim;
    if (s->stopping || d->phase == DEV_STOPPED) return;
    if (!s->o.no_http && (!d->did[0] || !s->mqtt_addr_set || !d->ever_ready)) {
        sim__dev_start(d); /* the boot chain never completed: start over */
    } else if (!s->o.no_http && d->failures % 10 == 0 && d->http == NULL && !d->http_queued) {
        d->phase = DEV_HTTP;
        d->http_op = HOP_PROVISION;
        d->ota_after = 2; /* provision, then straight to MQTT */
        sim__http_acquire(s, d);
    } else {
        mqtt_connect(d);
    }
}

static void schedule_backoff(struct sim_device *d)
{
    struct sim *s = d->sim;
    double secs, ms;

    if (s->stopping || d->phase == DEV_STOPPED) return;
    d->failures++;
    secs = 5.0 + 10.0 * (double)(d->failures - 1);
    ms = secs * 1000.0 * s->o.backoff_scale;
    if (ms < 1) ms = 1;
    d->phase = DEV_BACKOFF;
    uv_timer_stop(&d->timer);
    uv_timer_start(&d->timer, on_backoff_done, (uint64_t)ms, 0);
}

static void mqtt_connect(struct sim_device *d)
{
    struct sim *s = d->sim;
    struct giz_mqtt_connect_opts o;
    int rc;

    if (s->stopping) return;
    memset(&o, 0, sizeof o);
    o.client_id = d->did;
    o.username = d->did;
    o.password = d->passcode;
    o.keepalive = s->o.keepalive;
    o.protocol_level = s->o.mqtt_level;
    o.clean_session = true;
    d->phase = DEV_CONNECTING;
    d->sub_step = 0;
    d->missed_pongs = 0;
    d->t_start = util__now_ms();
    s->st.mqtt_attempts++;
    if (d->attempts++ > 0) s->st.reconnects++;
    {
        const struct sockaddr *to = sim__mqtt_target(s, &d->mq, s->o.device_tls, d->m2m);
        rc = to ? mqttc__connect(&d->mq, s->loop, to, &o) : -1;
    }
    if (rc != 0) {
        sim__error(s, SIM_ERR_MQTT_CONNECT);
        schedule_backoff(d);
        return;
    }
    uv_timer_stop(&d->timer);
    uv_timer_start(&d->timer, on_login_timeout, (uint64_t)(s->o.connect_timeout_s * 1000.0), 0);
}

static void dev_connected_cb(struct mqttc *c)
{
    (void)c; /* CONNECT is on its way; CONNACK decides */
}

static void subscribe_step(struct sim_device *d)
{
    char topic[96];
    struct sim *s = d->sim;
    switch (d->sub_step) {
    case 0:
        snprintf(topic, sizeof topic, "ser2cli_noti/%s", s->o.product_key);
        break;
    case 1:
        snprintf(topic, sizeof topic, "ser2cli_res/%s", d->did);
        break;
    default:
        snprintf(topic, sizeof topic, "app2dev/%s/#", d->did);
        break;
    }
    (void)mqttc__subscribe(&d->mq, (uint16_t)(d->sub_step + 1), topic);
}

static void become_ready(struct sim_device *d)
{
    static const uint8_t req[] = {0x00, 0x00, 0x00, 0x03, 0x02, 0x0F};
    struct sim *s = d->sim;
    uint64_t hb = (uint64_t)(s->o.heartbeat_s * 1000.0);

    d->phase = DEV_READY;
    d->failures = 0;
    s->st.ready_now++;
    if (!d->ever_ready) {
        d->ever_ready = 1;
        s->st.connected_ever++;
    }
    util__samples_add(&s->connect_ms, util__now_ms() - d->t_start);
    uv_timer_stop(&d->timer);
    uv_timer_start(&d->timer, on_heartbeat, hb ? hb : 1, hb ? hb : 1);
    if (!s->o.no_app_count) {
        dev_publish_raw(d, "cli2ser_req", req, sizeof req);
        s->st.app_count_req++;
    }
    if (d->log_bits) d->t_log = 0;
    if (s->p0) sim__p0_report(d); /* sim_p0.c: status after login */
    ota_reports(d);               /* after a download made before this login */
    sim__check_ready(s);
}

static void reply_to_app(struct sim_device *d, const char *app_cid, const struct giz_msg *m)
{
    char topic[96];
    snprintf(topic, sizeof topic, "dev2app/%s/%s", d->did, app_cid);
    dev_publish_msg(d, topic, m);
}

static void handle_app2dev(struct sim_device *d, const char *cid, const struct giz_mqtt_publish *p)
{
    struct sim *s = d->sim;
    struct giz_msg in, out;

    if (cid[0] == '\0' || strlen(cid) > 23 || strchr(cid, '/') != NULL) {
        sim__error(s, SIM_ERR_BAD_TOPIC);
        return;
    }
    if (giz_msg_decode(p->payload.ptr, p->payload.len, &in, NULL) != GIZ_OK) {
        sim__error(s, SIM_ERR_BAD_PAYLOAD);
        return;
    }
    memset(&out, 0, sizeof out);
    switch (in.cmd) {
    case GIZ_CMD_BIZ:
        s->st.biz_in++;
        if (s->p0 && sim__p0_handle(d, cid, &in)) break;
        out.cmd = GIZ_CMD_BIZ_REPLY;
        out.u.biz.data = in.u.biz.data;
        reply_to_app(d, cid, &out);
        s->st.biz_replies++;
        break;
    case GIZ_CMD_BIZ_SN:
        s->st.biz_in++;
        if (s->p0 && sim__p0_handle(d, cid, &in)) break;
        out.cmd = GIZ_CMD_BIZ_SN_ACK;
        out.u.biz_sn.sn = in.u.biz_sn.sn;
        out.u.biz_sn.data = in.u.biz_sn.data;
        reply_to_app(d, cid, &out);
        s->st.acks_sent++;
        break;
    case GIZ_CMD_LOG_LEVEL_SET:
        s->st.log_level_sets++;
        d->log_bits = in.u.log_level.bits;
        out.cmd = GIZ_CMD_LOG_LEVEL_ACK;
        reply_to_app(d, cid, &out);
        emit_logs(d); /* the first records at once */
        d->t_log = util__now_ms() + s->o.log_interval_s * 1000.0;
        break;
    default:
        sim__error(s, SIM_ERR_BAD_PAYLOAD);
        break;
    }
}

static void handle_publish(struct sim_device *d, const struct giz_mqtt_publish *p)
{
    struct sim *s = d->sim;
    char topic[160];
    size_t dl = strlen(d->did);
    struct giz_msg m;

    s->st.pub_in++;
    if (p->topic.len >= sizeof topic) {
        sim__error(s, SIM_ERR_BAD_TOPIC);
        return;
    }
    memcpy(topic, p->topic.ptr, p->topic.len);
    topic[p->topic.len] = '\0';
    if (strncmp(topic, "app2dev/", 8) == 0 && strncmp(topic + 8, d->did, dl) == 0 &&
        topic[8 + dl] == '/') {
        handle_app2dev(d, topic + 9 + dl, p);
    } else if (strncmp(topic, "app2dev/", 8) == 0 && strcmp(topic + 8, d->did) == 0) {
        handle_app2dev(d, "", p);
    } else if (strncmp(topic, "ser2cli_res/", 12) == 0 && strcmp(topic + 12, d->did) == 0) {
        if (giz_msg_decode(p->payload.ptr, p->payload.len, &m, NULL) != GIZ_OK) {
            sim__error(s, SIM_ERR_BAD_PAYLOAD);
            return;
        }
        switch (m.cmd) {
        case GIZ_CMD_APP_COUNT:
            s->st.app_count_msgs++;
            d->app_count_msgs++;
            d->app_count = m.u.app_count.count;
            break;
        case GIZ_CMD_OTA_PUSH_V41:
        case GIZ_CMD_OTA_PUSH_V40:
            s->st.ota_pushes_seen++;
            if (m.cmd == GIZ_CMD_OTA_PUSH_V41) {
                s->st.ota_v41++;
            } else {
                s->st.ota_v40++;
                d->ota_v40_next = 1; /* answered by a v4.0 target_fid check */
            }
            d->ota_pushes++;
            ota_recheck(d);
            break;
        default:
            sim__error(s, SIM_ERR_BAD_PAYLOAD);
        }
    } else if (strncmp(topic, "ser2cli_noti/", 13) == 0) {
        s->st.noti_msgs++;
    } else {
        sim__error(s, SIM_ERR_BAD_TOPIC);
    }
}

static void dev_packet_cb(struct mqttc *c, const uint8_t *pkt, size_t len)
{
    struct sim_device *d = c->ud;
    struct sim *s = d->sim;
    uint8_t type = pkt[0] >> 4;

    switch (type) {
    case GIZ_MQTT_CONNACK: {
        uint8_t code = 0xff;
        if (d->phase != DEV_CONNECTING || giz_mqtt_connack_parse(pkt, len, &code, NULL) != GIZ_OK ||
            code != 0) {
            sim__error(s, SIM_ERR_CONNACK_REFUSED);
            mqttc__close(c);
            return;
        }
        subscribe_step(d);
        break;
    }
    case GIZ_MQTT_SUBACK: {
        uint16_t id = 0;
        uint8_t granted = 0x80;
        if (d->phase != DEV_CONNECTING ||
            giz_mqtt_suback_parse(pkt, len, &id, &granted, NULL) != GIZ_OK || granted == 0x80 ||
            id != d->sub_step + 1) {
            sim__error(s, SIM_ERR_SUBACK_REFUSED);
            mqttc__close(c);
            return;
        }
        if (++d->sub_step < 3)
            subscribe_step(d);
        else
            become_ready(d);
        break;
    }
    case GIZ_MQTT_PUBLISH: {
        struct giz_mqtt_publish p;
        if (!s->o.lenient && d->phase != DEV_READY) {
            /* firmware ignores PUBLISHes until its third SUBACK */
            s->st.pub_before_suback++;
            return;
        }
        if (giz_mqtt_publish_parse(pkt, len, &p, NULL) != GIZ_OK) {
            sim__error(s, SIM_ERR_BAD_STREAM);
            return;
        }
        handle_publish(d, &p);
        break;
    }
    case GIZ_MQTT_PINGRESP:
        d->missed_pongs = 0;
        s->st.pongs++;
        break;
    default:
        break;
    }
}

static void dev_closed_cb(struct mqttc *c, int reason)
{
    struct sim_device *d = c->ud;
    struct sim *s = d->sim;

    if (d->phase == DEV_READY) {
        s->st.ready_now--;
        s->st.disconnects++;
    }
    switch (reason) {
    case MQTTC_CONNECT_FAILED:
        sim__error(s, SIM_ERR_MQTT_CONNECT);
        break;
    case MQTTC_PEER_CLOSED:
        sim__error(s, SIM_ERR_PEER_CLOSED);
        break;
    case MQTTC_IO_ERROR:
        sim__error(s, SIM_ERR_IO_ERROR);
        break;
    case MQTTC_BAD_STREAM:
        sim__error(s, SIM_ERR_BAD_STREAM);
        break;
    default:
        break;
    }
    if (s->stopping || d->phase == DEV_STOPPED) {
        d->phase = DEV_STOPPED;
        return;
    }
    uv_timer_stop(&d->timer);
    schedule_backoff(d);
}

void sim__dev_stop(struct sim_device *d)
{
    uint8_t was = d->phase;
    d->phase = DEV_STOPPED;
    if (was == DEV_READY) d->sim->st.ready_now--;
    if (d->http != NULL) {
        http_uv__cancel(d->http);
        d->http = NULL;
    }
    dl_free(d);
    uv_timer_stop(&d->timer);
    if (!uv_is_closing((uv_handle_t *)&d->timer)) uv_close((uv_handle_t *)&d->timer, NULL);
    if (d->mq.state == MQTTC_OPEN) (void)mqttc__disconnect(&d->mq);
    mqttc__close(&d->mq);
}
