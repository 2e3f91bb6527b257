/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The evidence rules of OTA campaigns (issue 16): how one timeline event
 * (ota_check, download, publish_in with a 0x022C / 0x021C payload,
 * subscribe) moves a campaign device's state, and the state change itself.
 * Pure functions over the event's kind and fields text (no store, no
 * threads), used by the engine (campaign.c) and the fuzz target
 * tests/fuzz/fuzz_campaign.c: fields come from either process's writer and
 * are parsed defensively (missing or mistyped fields are ignored, payload
 * hex is checked, the payload goes through the shared codec).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr (the GService defines it for all its files) */
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "giz/proto.h"
#include "gservice.h"

/* Moves d to state (forward only, terminal states stay). */
void gs_cev_set_state(struct giz_cdev *d, int state, int64_t ts, const char *why,
                      const struct gs_cev_sink *sink)
{
    int from = d->state;
    if (from == GIZ_CDEV_UPDATED || from == GIZ_CDEV_FAILED) return;
    if (state <= from && state != GIZ_CDEV_FAILED) return;
    d->state = state;
    d->progress_at = ts;
    if (why != NULL) snprintf(d->reason, sizeof d->reason, "%s", why);
    switch (state) {
    case GIZ_CDEV_NOTIFIED:
        d->notified_at = ts;
        break;
    case GIZ_CDEV_CHECKED:
        d->checked_at = ts;
        break;
    case GIZ_CDEV_OFFERED:
        d->offered_at = ts;
        break;
    case GIZ_CDEV_DOWNLOADING:
        d->downloading_at = ts;
        break;
    case GIZ_CDEV_DOWNLOADED:
        d->downloaded_at = ts;
        break;
    default:
        d->done_at = ts;
        break;
    }
    if (sink != NULL && sink->changed != NULL) sink->changed(sink->ud, d, from);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes the publish event's "payload" hex into buf; its length or 0. */
static size_t payload_bytes(const cJSON *f, uint8_t *buf, size_t cap)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "payload");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(f, "payload_truncated");
    if (!cJSON_IsString(p) || cJSON_IsTrue(tr)) return 0;
    size_t n = strlen(p->valuestring);
    if (n % 2 != 0 || n / 2 > cap) return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int a = hexval(p->valuestring[2 * i]), b = hexval(p->valuestring[2 * i + 1]);
        if (a < 0 || b < 0) return 0;
        buf[i] = (uint8_t)(a << 4 | b);
    }
    return n / 2;
}

/* The soft version of "hw,sw" (or the whole text without a comma) into out. */
static void version_sw(struct giz_view v, char *out, size_t cap)
{
    size_t start = 0, n;
    for (size_t i = 0; i < v.len; i++)
        if (v.ptr[i] == ',') start = i + 1;
    n = v.len - start;
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = v.ptr[start + i];
        out[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[n] = '\0';
}

static bool text_says_failed(const char *s)
{
    static const char *const words[] = {"fail", "error", "md5", "mismatch", "refuse", "invalid"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(s, words[i]) != NULL) return true;
    return false;
}

static const char *fstr(const cJSON *f, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double fnum(const cJSON *f, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* A whole-number field as int64 (dflt when absent, not a number, or outside
 * +-2^53: a cast of such a double would be undefined). */
static int64_t fint(const cJSON *f, const char *key, int64_t dflt)
{
    double v = fnum(f, key, (double)dflt);
    return v >= -9007199254740992.0 && v <= 9007199254740992.0 ? (int64_t)v : dflt;
}

/* The device reported version v (of the campaign's type). */
static void reported(const struct giz_campaign *c, struct giz_cdev *d, const char *v, int64_t ts,
                     const struct gs_cev_sink *sink)
{
    if (v == NULL || v[0] == '\0') return;
    snprintf(d->version, sizeof d->version, "%s", v);
    if (strcmp(v, c->soft_version) >= 0) gs_cev_set_state(d, GIZ_CDEV_UPDATED, ts, "", sink);
}

static void on_ota_check(const struct giz_campaign *c, struct giz_cdev *d, const cJSON *f,
                         int64_t ts, const struct gs_cev_sink *sink)
{
    char why[GIZ_CAMPAIGN_REASON_SIZE];
    const char *sv = fstr(f, "soft_version"), *offered = fstr(f, "offered");
    int64_t status = fint(f, "status", 0), code = fint(f, "error_code", 0);
    if (fint(f, "type", 0) != c->fw_type || sv == NULL) return;
    reported(c, d, sv, ts, sink);
    if (d->state == GIZ_CDEV_UPDATED) return;
    d->checks++;
    d->progress_at = ts;
    gs_cev_set_state(d, GIZ_CDEV_CHECKED, ts, NULL, sink);
    if (status == 200 && offered != NULL && strcmp(offered, c->soft_version) >= 0)
        gs_cev_set_state(d, GIZ_CDEV_OFFERED, ts, NULL, sink);
    if (status == 400 && (code == GS_E_OTA_NOT_IN_EFFECT || code == GS_E_OTA_NO_RULE)) {
        snprintf(why, sizeof why, "refused as up to date at %s (%" PRId64 ")", sv, code);
        if (code == GS_E_OTA_NO_RULE)
            snprintf(why, sizeof why, "no firmware applies to the device at %s (%" PRId64 ")", sv,
                     code);
        gs_cev_set_state(d, GIZ_CDEV_FAILED, ts, why, sink);
        return;
    }
    if (c->max_checks > 0 && d->checks >= c->max_checks && d->state != GIZ_CDEV_DOWNLOADING) {
        snprintf(why, sizeof why, "still %s after %" PRId64 " checks", sv, d->checks);
        gs_cev_set_state(d, GIZ_CDEV_FAILED, ts, why, sink);
    }
}

static void on_download(const struct giz_campaign *c, struct giz_cdev *d, const cJSON *f,
                        int64_t ts, const struct gs_cev_sink *sink)
{
    int64_t status = fint(f, "status", 0);
    if (fint(f, "fid", -1) != c->firmware_id || (status != 200 && status != 206)) return;
    d->downloads++;
    int64_t bytes = fint(f, "bytes", 0);
    if (bytes > 0 && bytes <= INT64_MAX - d->bytes) d->bytes += bytes;
    d->progress_at = ts;
    gs_cev_set_state(d, GIZ_CDEV_DOWNLOADING, ts, NULL, sink);
    const cJSON *done = cJSON_GetObjectItemCaseSensitive(f, "completed");
    double size = fnum(f, "size", -1), rs = fnum(f, "range_start", -1),
           rl = fnum(f, "range_len", -1);
    bool to_end = status == 200 || (rs >= 0 && rl >= 0 && rs + rl >= size);
    if (cJSON_IsTrue(done) && to_end) gs_cev_set_state(d, GIZ_CDEV_DOWNLOADED, ts, NULL, sink);
}

static void on_publish(const struct giz_campaign *c, struct giz_cdev *d, const cJSON *f, int64_t ts,
                       const struct gs_cev_sink *sink)
{
    uint8_t buf[1024];
    struct giz_msg m;
    char v[GIZ_VER_SIZE], info[96], why[GIZ_CAMPAIGN_REASON_SIZE];
    size_t n = payload_bytes(f, buf, sizeof buf);
    if (n == 0 || giz_msg_decode(buf, n, &m, NULL) != GIZ_OK) return;
    if (m.cmd == GIZ_CMD_VERSION_REPORT) {
        struct giz_view vv = c->fw_type == 2 ? m.u.version.mcu : m.u.version.module;
        if (vv.len == 0) return;
        version_sw(vv, v, sizeof v);
        reported(c, d, v, ts, sink);
        return;
    }
    if (m.cmd != GIZ_CMD_OTA_PROGRESS) return;
    if ((m.u.ota_progress.flags & GIZ_OTAFLAG_MCU ? 2 : 1) != c->fw_type) return;
    {
        /* the status text as a whole, printable */
        size_t k = m.u.ota_progress.info.len < sizeof info - 1 ? m.u.ota_progress.info.len
                                                               : sizeof info - 1;
        for (size_t i = 0; i < k; i++) {
            uint8_t ch = m.u.ota_progress.info.ptr[i];
            info[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        info[k] = '\0';
    }
    d->percent = m.u.ota_progress.percent;
    d->progress_at = ts;
    if (text_says_failed(info)) {
        snprintf(why, sizeof why, "device reported \"%s\" at %u%%", info,
                 (unsigned)m.u.ota_progress.percent);
        gs_cev_set_state(d, GIZ_CDEV_FAILED, ts, why, sink);
        return;
    }
    gs_cev_set_state(d, GIZ_CDEV_DOWNLOADING, ts, NULL, sink);
}

/* Evidence that arrived after d finished (updated / failed): the counters
 * and the times not yet set are filled in, the state stays. */
static void late(const struct giz_campaign *c, struct giz_cdev *d, const char *kind, const cJSON *f,
                 int64_t ts)
{
    int64_t status = fint(f, "status", 0);
    if (strcmp(kind, "ota_check") == 0 && fint(f, "type", 0) == c->fw_type) {
        const char *offered = fstr(f, "offered");
        d->checks++;
        if (d->checked_at == 0) d->checked_at = ts;
        if (status == 200 && offered != NULL && strcmp(offered, c->soft_version) >= 0 &&
            d->offered_at == 0)
            d->offered_at = ts;
    } else if (strcmp(kind, "download") == 0 && fint(f, "fid", -1) == c->firmware_id &&
               (status == 200 || status == 206)) {
        int64_t bytes = fint(f, "bytes", 0);
        d->downloads++;
        if (bytes > 0 && bytes <= INT64_MAX - d->bytes) d->bytes += bytes;
        if (d->downloading_at == 0) d->downloading_at = ts;
        if (d->downloaded_at == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "completed")))
            d->downloaded_at = ts;
    }
}

bool gs_cev_apply(const struct giz_campaign *c, struct giz_cdev *d, const char *kind,
                  const char *fields, int64_t ts, const struct gs_cev_sink *sink)
{
    bool relogin = false;
    if (c == NULL || d == NULL || kind == NULL) return false;
    cJSON *f = cJSON_Parse(fields ? fields : "{}");
    if (f == NULL || !cJSON_IsObject(f)) {
        cJSON_Delete(f);
        return false;
    }
    if (d->state == GIZ_CDEV_UPDATED || d->state == GIZ_CDEV_FAILED) {
        late(c, d, kind, f, ts);
        cJSON_Delete(f);
        return false;
    }
    if (strcmp(kind, "ota_check") == 0) {
        on_ota_check(c, d, f, ts, sink);
    } else if (strcmp(kind, "download") == 0) {
        on_download(c, d, f, ts, sink);
    } else if (strcmp(kind, "publish_in") == 0) {
        on_publish(c, d, f, ts, sink);
    } else if (strcmp(kind, "subscribe") == 0) {
        /* a granted subscription to ser2cli_res/<did>: the device (re)logged in */
        const char *filter = fstr(f, "filter");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(f, "granted");
        relogin = filter != NULL && strncmp(filter, "ser2cli_res/", 12) == 0 && !cJSON_IsFalse(g);
    }
    cJSON_Delete(f);
    return relogin;
}
