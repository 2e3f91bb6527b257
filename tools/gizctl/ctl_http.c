/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl's HTTP side: one JSON request to the GService with the right
 * credentials (admin bearer token or app user token), turning every failure
 * into a message that says what to do and into gizctl's exit codes. The
 * transport is libcurl, so https:// GService URLs work (CA from --cacert).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "giz/error.h"
#include "giz/util.h"
#include "httpc.h"

void ctl__print_json(const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    if (s != NULL) {
        puts(s);
        free(s);
    }
}

const char *ctl__jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

const char *ctl__jtext(const cJSON *obj, const char *key, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v))
        snprintf(buf, cap, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "yes" : "no");
    else if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.15g", v->valuedouble);
    else if (cJSON_IsNull(v) || v == NULL)
        snprintf(buf, cap, "-");
    else {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(buf, cap, "%s", s ? s : "?");
        free(s);
    }
    return buf;
}

/* The answer body as it arrives, capped at CTL_HTTP_BODY_MAX. */
#define CTL_HTTP_BODY_MAX ((size_t)64 << 20)

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct giz_buf *b = ud;
    size_t n = size * nmemb;

    /* too big or out of memory: 0 makes curl fail with CURLE_WRITE_ERROR */
    return giz_buf_append(b, data, n) == GIZ_OK ? n : 0;
}

/* One request with libcurl. Fills *r like httpc__request (status, content
 * type, NUL-terminated body; caller frees) and returns HTTPC_OK, or an
 * httpc_err; a TLS failure is reported on stderr here and returns
 * HTTPC_ERR_CONNECT with *tls_failed set. */
static int curl_request(const struct ctl *ctl, const char *method, const char *path,
                        const char *ctype, const char *headers, const void *body, size_t len,
                        struct httpc_resp *r, bool *tls_failed)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    struct giz_buf b;
    char url[1600], line[1300], errbuf[CURL_ERROR_SIZE] = "";
    const char *p = headers;
    CURLcode cc;
    long code = 0;
    char *ct = NULL;
    int rc = HTTPC_OK;

    memset(r, 0, sizeof *r);
    giz_buf_init(&b, CTL_HTTP_BODY_MAX);
    *tls_failed = false;
    if (h == NULL) return HTTPC_ERR_NOMEM;
    snprintf(url, sizeof url, "%s://%s:%u%s", ctl->http_tls ? "https" : "http", ctl->http_host,
             (unsigned)ctl->http_port, path);
    while (p != NULL && *p != '\0') {
        const char *e = strstr(p, "\r\n");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n < sizeof line) {
            memcpy(line, p, n);
            line[n] = '\0';
            hl = curl_slist_append(hl, line);
        }
        p = e ? e + 2 : NULL;
    }
    if (body != NULL && ctype != NULL) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        hl = curl_slist_append(hl, line);
    }
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "gizctl");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ctl->timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (ctl->cacert[0] != '\0') curl_easy_setopt(h, CURLOPT_CAINFO, ctl->cacert);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "GET") == 0 && body == NULL)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    cc = curl_easy_perform(h);
    switch (cc) {
    case CURLE_OK:
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        rc = HTTPC_ERR_RESOLVE;
        break;
    case CURLE_COULDNT_CONNECT:
        rc = HTTPC_ERR_CONNECT;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        rc = HTTPC_ERR_TIMEOUT;
        break;
    case CURLE_WRITE_ERROR:
        rc = HTTPC_ERR_TOOBIG;
        break;
    case CURLE_OUT_OF_MEMORY:
        rc = HTTPC_ERR_NOMEM;
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WEIRD_SERVER_REPLY:
        rc = HTTPC_ERR_PROTO;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
        *tls_failed = true;
        rc = HTTPC_ERR_CONNECT;
        ctl__fail(CTL_UNREACHABLE,
                  "TLS with the GService at %s failed: %s. Trust its CA with --cacert FILE "
                  "(GIZ_CACERT; gizcloud-local writes var/tls/ca.pem)",
                  ctl->http_url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        break;
    default:
        rc = HTTPC_ERR_IO;
        break;
    }
    if (rc == HTTPC_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        r->status = (int)code;
        if (ct != NULL) snprintf(r->content_type, sizeof r->content_type, "%s", ct);
        if (giz_buf_append(&b, "", 0) != GIZ_OK) /* an empty body still gets its NUL */
            rc = HTTPC_ERR_NOMEM;
        r->body = (char *)giz_buf_take(&b, &r->body_len);
    }
    giz_buf_free(&b);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

int ctl__http_raw(struct ctl *ctl, const char *method, const char *path, const char *ctype,
                  const void *body, size_t len, enum ctl_auth auth, cJSON **out)
{
    struct httpc_resp resp;
    char headers[1200] = "";
    char full_path[1200];
    int rc;

    if (out != NULL) *out = NULL;
    if (auth == CTL_AUTH_ADMIN) {
        if (ctl->admin_token[0] == '\0')
            return ctl__fail(CTL_USAGE, "no admin token: pass --admin-token or set "
                                        "GIZ_ADMIN_TOKEN (gizcloud-local prints it at start)");
        snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", ctl->admin_token);
    } else if (auth == CTL_AUTH_USER) {
        rc = ctl__need_login(ctl);
        if (rc != CTL_OK) return rc;
        snprintf(headers, sizeof headers, "X-Gizwits-User-token: %s\r\n", ctl->token);
    }
    if (ctl->app_id[0] != '\0') {
        size_t used = strlen(headers);
        snprintf(headers + used, sizeof headers - used, "X-Gizwits-Application-Id: %s\r\n",
                 ctl->app_id);
    }
    snprintf(full_path, sizeof full_path, "%s%s", ctl->http_prefix, path);
    if (ctl->verbose) fprintf(stderr, "gizctl: %s %s%s\n", method, ctl->http_url, path);
    bool tls_failed = false;
    rc = curl_request(ctl, method, full_path, ctype, headers, body, len, &resp, &tls_failed);
    if (tls_failed) return CTL_UNREACHABLE;
    if (rc == HTTPC_ERR_TIMEOUT)
        return ctl__fail(CTL_TIMEOUT,
                         "%s %s: no answer from the GService within %.1f s "
                         "(raise --timeout?)",
                         method, path, ctl->timeout_ms / 1000.0);
    if (rc == HTTPC_ERR_RESOLVE || rc == HTTPC_ERR_CONNECT || rc == HTTPC_ERR_IO)
        return ctl__fail(CTL_UNREACHABLE,
                         "cannot reach the GService at %s (%s). Is the cloud running? "
                         "Point gizctl at it with --http URL or GIZ_HTTP_URL.",
                         ctl->http_url, httpc__strerror(rc));
    if (rc != HTTPC_OK)
        return ctl__fail(CTL_SERVER, "%s %s: %s", method, path, httpc__strerror(rc));
    if (ctl->verbose) fprintf(stderr, "gizctl: -> %d (%zu bytes)\n", resp.status, resp.body_len);

    cJSON *json = resp.body_len > 0 ? cJSON_ParseWithLength(resp.body, resp.body_len) : NULL;
    if (resp.status >= 200 && resp.status < 300) {
        if (resp.body_len > 0 && json == NULL) {
            rc = ctl__fail(CTL_SERVER, "%s %s: the answer is not JSON: %.200s", method, path,
                           resp.body);
        } else {
            rc = CTL_OK;
            if (out != NULL) {
                *out = json;
                json = NULL;
            }
        }
    } else {
        const char *code = json ? ctl__jstr(json, "error") : "";
        const char *msg = json ? ctl__jstr(json, "message") : "";
        const char *hint = "";
        if (resp.status == 401 || resp.status == 403) {
            if (auth == CTL_AUTH_ADMIN)
                hint = " Check --admin-token / GIZ_ADMIN_TOKEN.";
            else if (auth == CTL_AUTH_USER)
                hint = " Your login may have expired: run `gizctl login USERNAME` again.";
        } else if (resp.status == 404 && strcmp(code, "") == 0) {
            hint = " Is --http pointing at a gizcloud GService?";
        }
        if (!msg[0] && !json) msg = resp.body_len > 0 ? resp.body : "";
        rc = ctl__fail(resp.status >= 500 ? CTL_SERVER : CTL_REFUSED,
                       "%s %s: the GService answered %d%s%s%s %.300s.%s", method, path, resp.status,
                       code[0] ? " (" : "", code, code[0] ? ")" : "", msg, hint);
    }
    cJSON_Delete(json);
    httpc__resp_free(&resp);
    return rc;
}

int ctl__http_json(struct ctl *ctl, const char *method, const char *path, const cJSON *body,
                   enum ctl_auth auth, cJSON **out)
{
    char *text = NULL;
    int rc;

    if (body != NULL) {
        text = cJSON_PrintUnformatted(body);
        if (text == NULL) return ctl__fail(CTL_LOCAL, "out of memory");
    }
    rc = ctl__http_raw(ctl, method, path, "application/json", text, text ? strlen(text) : 0, auth,
                       out);
    free(text);
    return rc;
}

void ctl__print_answer(const struct ctl *ctl, const cJSON *out, void (*text)(const cJSON *out))
{
    if (ctl->json)
        ctl__print_json(out);
    else
        text(out);
}

int ctl__get_print(struct ctl *ctl, const char *path, enum ctl_auth auth,
                   void (*text)(const cJSON *out))
{
    cJSON *out = NULL;
    int rc = ctl__http_json(ctl, "GET", path, NULL, auth, &out);

    if (rc == CTL_OK) ctl__print_answer(ctl, out, text);
    cJSON_Delete(out);
    return rc;
}
