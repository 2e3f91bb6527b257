/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * `gizctl device events DID [-f] [--json]`: a device's timeline (the
 * GService's GET /admin/devices/<DID>/events, paged through `next`), one
 * readable line per event -- ISO 8601 UTC time with milliseconds, kind,
 * then the event's own fields as key=value -- or one JSON object per line
 * with --json. With -f it then follows GET /admin/events/stream?did=DID
 * (Server-Sent Events through libcurl, resuming after the last id printed
 * via Last-Event-ID) until interrupted, --count new events, or a silence of
 * three heartbeats (the stream is gone: exit 3).
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "giz/form.h"
#include "giz/util.h"

#define EVENTS_PAGE 1000
#define EVENTS_MAX_PAGES 10000
#define STREAM_SILENCE_S 45 /* three of the GService's 15 s heartbeats */

struct evctx {
    const struct ctl *ctl;
    long long last_id;
    uint64_t want, got; /* --count with -f: new events to print, printed */
    struct giz_buf line;
    char data[64 * 1024]; /* the current event's data: text */
    size_t data_len;
    bool done, bad;
};

/* Fields not repeated in the readable line (they are its prefix, or noise). */
static bool skip_field(const char *k)
{
    static const char *const skip[] = {"id",     "ts",     "kind",        "did",
                                       "source", "method", "duration_us", NULL};
    for (int i = 0; skip[i] != NULL; i++)
        if (strcmp(k, skip[i]) == 0) return true;
    return false;
}

static void print_event(const struct ctl *ctl, const cJSON *ev)
{
    if (ctl->json) {
        ctl__print_json(ev);
        return;
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(ev, "ts");
    char iso[40] = "-";
    if (cJSON_IsNumber(ts) && ts->valuedouble > 0) {
        long long ms = (long long)ts->valuedouble;
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        char s[32];
        gmtime_r(&t, &tm);
        strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(iso, sizeof iso, "%s.%03lldZ", s, ms % 1000);
    }
    printf("%s %-12s", iso, ctl__jstr(ev, "kind"));
    const cJSON *f;
    cJSON_ArrayForEach(f, ev)
    {
        char buf[512];
        if (f->string == NULL || skip_field(f->string)) continue;
        printf(" %s=%s", f->string, ctl__jtext(ev, f->string, buf, sizeof buf));
    }
    printf("\n");
}

static long long event_id(const cJSON *ev)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "id");
    return cJSON_IsNumber(id) ? (long long)id->valuedouble : 0;
}

/* Prints the stored events after ctx->last_id, page by page. */
static int print_stored(struct ctl *ctl, const char *did, const char *kind, struct evctx *ctx)
{
    char path[400], enc[128];
    for (int page = 0; page < EVENTS_MAX_PAGES; page++) {
        cJSON *out = NULL;
        int n = snprintf(path, sizeof path, "/admin/devices/%s/events?limit=%d&since=%lld", did,
                         EVENTS_PAGE, ctx->last_id);
        if (kind != NULL && n > 0 && (size_t)n < sizeof path &&
            giz_form_encode_value(kind, enc, sizeof enc) == GIZ_OK)
            snprintf(path + n, sizeof path - (size_t)n, "&kind=%s", enc);
        int rc = ctl__http_json(ctl, "GET", path, NULL, CTL_AUTH_ADMIN, &out);
        if (rc != CTL_OK) return rc;
        const cJSON *ev;
        cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(out, "events"))
        {
            print_event(ctl, ev);
            ctx->last_id = event_id(ev);
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(out, "next");
        bool more = cJSON_IsNumber(next);
        cJSON_Delete(out);
        fflush(stdout);
        if (!more) break;
    }
    return CTL_OK;
}

/* One complete SSE line (without its newline). */
static void sse_line(struct evctx *c, const char *l, size_t n)
{
    if (n == 0) { /* end of an event */
        if (c->data_len > 0) {
            c->data[c->data_len] = '\0';
            cJSON *ev = cJSON_Parse(c->data);
            if (ev != NULL && event_id(ev) > c->last_id) {
                print_event(c->ctl, ev);
                fflush(stdout);
                c->last_id = event_id(ev);
                c->got++;
                if (c->want > 0 && c->got >= c->want) c->done = true;
            } else if (ev == NULL) {
                c->bad = true;
            }
            cJSON_Delete(ev);
        }
        c->data_len = 0;
        return;
    }
    if (n >= 6 && memcmp(l, "data: ", 6) == 0) {
        size_t k = n - 6;
        if (c->data_len + k + 1 < sizeof c->data) {
            memcpy(c->data + c->data_len, l + 6, k);
            c->data_len += k;
        } else {
            c->bad = true;
        }
    }
    /* "id:", "retry:" and ": heartbeat" comments need nothing here */
}

static size_t on_stream(char *data, size_t size, size_t nmemb, void *ud)
{
    struct evctx *c = ud;
    size_t n = size * nmemb;
    for (size_t i = 0; i < n && !c->done; i++) {
        if (data[i] == '\n') {
            sse_line(c, (const char *)c->line.data, c->line.len);
            c->line.len = 0;
        } else if (data[i] != '\r' && giz_buf_append(&c->line, data + i, 1) != GIZ_OK) {
            return 0;
        }
    }
    return c->done ? 0 : n; /* 0 ends the transfer once --count is reached */
}

static int follow(struct ctl *ctl, const char *did, struct evctx *ctx)
{
    char url[1600], auth[320], last[64];
    struct curl_slist *hl = NULL;
    CURL *h = curl_easy_init();
    int rc = CTL_OK;
    if (h == NULL) return ctl__fail(CTL_LOCAL, "out of memory");
    snprintf(url, sizeof url, "%s://%s:%u%s/admin/events/stream?did=%s",
             ctl->http_tls ? "https" : "http", ctl->http_host, (unsigned)ctl->http_port,
             ctl->http_prefix, did);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", ctl->admin_token);
    snprintf(last, sizeof last, "Last-Event-ID: %lld", ctx->last_id);
    hl = curl_slist_append(hl, auth);
    hl = curl_slist_append(hl, last);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "gizctl");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ctl->timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)STREAM_SILENCE_S);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ctx);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    if (ctl->cacert[0] != '\0') curl_easy_setopt(h, CURLOPT_CAINFO, ctl->cacert);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (ctx->done)
        rc = CTL_OK;
    else if (cc == CURLE_HTTP_RETURNED_ERROR)
        rc = ctl__fail(code >= 500 ? CTL_SERVER : CTL_REFUSED, "event stream refused: HTTP %ld",
                       code);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = ctl__fail(CTL_TIMEOUT, "event stream silent for %d s", STREAM_SILENCE_S);
    else
        rc = ctl__fail(CTL_UNREACHABLE, "event stream ended: %s", curl_easy_strerror(cc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

int ctl__cmd_device_events(struct ctl *ctl, const struct ctl_args *a)
{
    const char *did = a->pos[0], *kind = ctl__opt(a, "kind"), *since = ctl__opt(a, "since");
    const char *count = ctl__opt(a, "count");
    struct evctx ctx;
    uint64_t v = 0;
    int rc;

    memset(&ctx, 0, sizeof ctx);
    ctx.ctl = ctl;
    if (!giz_did_valid(did))
        return ctl__fail(CTL_USAGE, "a DID is 22 base62 characters, not \"%s\"", did);
    if (since != NULL) {
        if (giz_parse_uint(since, 10, 0, INT64_MAX, &v) != GIZ_OK)
            return ctl__fail(CTL_USAGE, "--since wants an event id");
        ctx.last_id = (long long)v;
    }
    if (count != NULL) {
        if (giz_parse_uint(count, 10, 1, 100000000, &v) != GIZ_OK)
            return ctl__fail(CTL_USAGE, "--count wants a number");
        ctx.want = v;
    }
    rc = print_stored(ctl, did, kind, &ctx);
    if (rc != CTL_OK || !ctl__flag(a, "follow")) return rc;
    if (kind != NULL) return ctl__fail(CTL_USAGE, "--kind cannot be combined with --follow");
    giz_buf_init(&ctx.line, sizeof ctx.data);
    rc = follow(ctl, did, &ctx);
    giz_buf_free(&ctx.line);
    return rc;
}
