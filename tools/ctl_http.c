/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl's HTTP side: one JSON request to the GService with the right
 * credentials (admin bearer token or app user token), turning every failure
 * into a message that says what to do and into gizctl's exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
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

int ctl__http_raw(struct ctl *ctl, const char *method, const char *path, const char *ctype,
                  const void *body, size_t len, enum ctl_auth auth, cJSON **out)
{
    struct httpc_resp resp;
    char headers[1200] = "";
    char full_path[1200];
    int rc;

    if (out != NULL)
        *out = NULL;
    if (auth == CTL_AUTH_ADMIN) {
        if (ctl->admin_token[0] == '\0')
            return ctl__fail(CTL_USAGE, "no admin token: pass --admin-token or set "
                                        "GIZ_ADMIN_TOKEN (gizcloud-local prints it at start)");
        snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", ctl->admin_token);
    } else if (auth == CTL_AUTH_USER) {
        rc = ctl__need_login(ctl);
        if (rc != CTL_OK)
            return rc;
        snprintf(headers, sizeof headers, "X-Gizwits-User-token: %s\r\n", ctl->token);
    }
    if (ctl->app_id[0] != '\0') {
        size_t used = strlen(headers);
        snprintf(headers + used, sizeof headers - used, "X-Gizwits-Application-Id: %s\r\n",
                 ctl->app_id);
    }
    snprintf(full_path, sizeof full_path, "%s%s", ctl->http_prefix, path);
    if (ctl->verbose)
        fprintf(stderr, "gizctl: %s %s%s\n", method, ctl->http_url, path);
    rc = httpc__request(ctl->http_host, ctl->http_port, method, full_path, body ? ctype : NULL,
                        headers, body, len, ctl->timeout_ms, 64u << 20, &resp);
    if (rc == HTTPC_ERR_TIMEOUT)
        return ctl__fail(CTL_TIMEOUT, "%s %s: no answer from the GService within %.1f s "
                                      "(raise --timeout?)",
                         method, path, ctl->timeout_ms / 1000.0);
    if (rc == HTTPC_ERR_RESOLVE || rc == HTTPC_ERR_CONNECT || rc == HTTPC_ERR_IO)
        return ctl__fail(CTL_UNREACHABLE,
                         "cannot reach the GService at %s (%s). Is the cloud running? "
                         "Point gizctl at it with --http URL or GIZ_HTTP_URL.",
                         ctl->http_url, httpc__strerror(rc));
    if (rc != HTTPC_OK)
        return ctl__fail(CTL_SERVER, "%s %s: %s", method, path, httpc__strerror(rc));
    if (ctl->verbose)
        fprintf(stderr, "gizctl: -> %d (%zu bytes)\n", resp.status, resp.body_len);

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
        if (!msg[0] && !json)
            msg = resp.body_len > 0 ? resp.body : "";
        rc = ctl__fail(resp.status >= 500 ? CTL_SERVER : CTL_REFUSED,
                       "%s %s: the GService answered %d%s%s%s %.300s.%s", method, path,
                       resp.status, code[0] ? " (" : "", code, code[0] ? ")" : "", msg, hint);
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
        if (text == NULL)
            return ctl__fail(CTL_LOCAL, "out of memory");
    }
    rc = ctl__http_raw(ctl, method, path, "application/json", text, text ? strlen(text) : 0,
                       auth, out);
    free(text);
    return rc;
}
