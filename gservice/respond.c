/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The answers of giz-gservice: every response goes out through
 * gs_respond_mhd (first answer wins, status and bytes recorded for the access
 * log and the metrics), in the three formats the clients expect: form-encoded
 * for the device API (/dev/..., firmware strstr()s it), JSON for the admin
 * API and Gizwits open-API JSON ({error_code, error_message, detail}) for
 * every /app answer, unknown /app paths included; plus the generic 400/404,
 * 405 with Allow and 429 with Retry-After answers of the request life cycle.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "gservice.h"

#define FORM_CT "application/x-www-form-urlencoded"
#define JSON_CT "application/json"

static bool is_device_path(const struct gs_request *rq)
{
    return rq->path_len >= 5 && memcmp(rq->raw_uri, "/dev/", 5) == 0;
}

bool gs_is_app_path(const struct gs_request *rq)
{
    return (rq->path_len >= 5 && memcmp(rq->raw_uri, "/app/", 5) == 0) ||
           (rq->path_len == 4 && memcmp(rq->raw_uri, "/app", 4) == 0);
}

/* The Open API's error_message of a code (its error table), NULL if we
 * have none. */
static const char *app_code_text(int code)
{
    static const struct {
        int code;
        const char *text;
    } t[] = {{9002, "product_key invalid!"},
             {9003, "appid invalid!"},
             {9004, "token invalid!"},
             {9005, "user not exist!"},
             {9006, "token expired!"},
             {9008, "server error!"},
             {9014, "device not found!"},
             {9015, "form invalid!"},
             {9016, "did or passcode invalid!"},
             {9017, "device not bound!"},
             {9019, "username unavailable!"},
             {9020, "username or password error!"},
             {9021, "send command failed!"},
             {9022, "email unavailable!"},
             {9023, "device is disabled!"},
             {9025, "attr invalid!"},
             {9029, "datapoint data not found!"},
             {9041, "request was throttled"},
             {9042, "device offline!"},
             {9043, "X-Gizwits-Timestamp invalid!"},
             {9044, "X-Gizwits-Signature invalid!"},
             {GS_E_NO_SUCH_API, "api not found!"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].code == code) return t[i].text;
    return NULL;
}

/* The Gizwits error_code of a generic answer of the request life cycle. */
static int app_code_for_status(unsigned status)
{
    if (status == 404) return GS_E_NO_SUCH_API;
    if (status >= 500) return GS_E_SERVER_ERROR;
    return GS_E_FORM_INVALID;
}

void gs_respond_mhd(struct gs_request *rq, unsigned status, struct MHD_Response *resp,
                    uint64_t body_bytes)
{
    if (rq->responded) {
        giz_log(GIZ_LOG_ERR, "bug: second answer (%u) for %s %s", status, rq->method_name,
                gs_route_name(rq->route));
        if (resp != NULL) MHD_destroy_response(resp);
        return;
    }
    rq->responded = true;
    rq->status = status;
    rq->resp_bytes = body_bytes;
    /* counted when queued, so a client that has its answer sees it counted */
    gs_metrics_observe_code(&rq->srv->metrics, rq->route, resp ? status : 500, rq->giz_code,
                            gs_now_us() - rq->start_us, body_bytes);
    if (resp == NULL) {
        rq->status = 500;
        rq->queue_failed = true;
        return;
    }
    gs_event_answered(rq);
    if (MHD_queue_response(rq->conn, status, resp) != MHD_YES) {
        giz_log(GIZ_LOG_WARN, "could not queue a %u answer", status);
        rq->queue_failed = true;
    }
    MHD_destroy_response(resp);
}

void gs_respond_buf(struct gs_request *rq, unsigned status, const char *content_type,
                    const void *data, size_t len)
{
    /* cast: MHD_RESPMEM_MUST_COPY copies and never writes through it */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL && content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    gs_respond_mhd(rq, status, resp, len);
}

void gs_respond_form(struct gs_request *rq, unsigned status, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        giz_log(GIZ_LOG_ERR, "device answer too long for %s", gs_route_name(rq->route));
        gs_respond_buf(rq, 500, FORM_CT, "error_code=9008&error_message=server error",
                       strlen("error_code=9008&error_message=server error"));
        return;
    }
    gs_respond_buf(rq, status, FORM_CT, buf, (size_t)n);
}

void gs_respond_form_error(struct gs_request *rq, unsigned status, int code, const char *message)
{
    if (!rq->responded) rq->giz_code = code; /* for the access log */
    gs_respond_form(rq, status, "error_code=%d&error_message=%s", code, message);
}

void gs_respond_json(struct gs_request *rq, unsigned status, struct cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (text == NULL) {
        static const char oom[] = "{\"error\":\"server_error\",\"message\":\"out of memory\"}";
        gs_respond_buf(rq, 500, JSON_CT, oom, sizeof oom - 1);
        return;
    }
    gs_respond_buf(rq, status, JSON_CT, text, strlen(text));
    cJSON_free(text);
}

void gs_respond_error(struct gs_request *rq, unsigned status, const char *code, const char *message)
{
    cJSON *j = cJSON_CreateObject();
    if (j != NULL) {
        cJSON_AddStringToObject(j, "error", code);
        cJSON_AddStringToObject(j, "message", message);
    }
    gs_respond_json(rq, status, j);
}

/* The Open API error object (also "error" / "message", the admin API's
 * names, which gizctl reads). */
static cJSON *app_error_json(int code, const char *message)
{
    char code_text[16];
    const char *text = app_code_text(code);
    snprintf(code_text, sizeof code_text, "%d", code);
    cJSON *j = cJSON_CreateObject();
    if (j != NULL) {
        cJSON_AddStringToObject(j, "error", code_text);
        cJSON_AddStringToObject(j, "message", message);
        cJSON_AddNumberToObject(j, "error_code", code);
        cJSON_AddStringToObject(j, "error_message", text != NULL ? text : message);
        cJSON_AddStringToObject(j, "detail", message);
    }
    return j;
}

void gs_respond_app_error(struct gs_request *rq, unsigned status, int code, const char *message)
{
    if (!rq->responded) rq->giz_code = code; /* metrics label, access log */
    gs_respond_json(rq, status, app_error_json(code, message));
}

void gs_respond_generic_error(struct gs_request *rq, unsigned status, const char *code,
                              const char *message)
{
    if (is_device_path(rq))
        gs_respond_form_error(rq, status, GS_E_FORM_INVALID, message);
    else if (gs_is_app_path(rq))
        gs_respond_app_error(rq, status, app_code_for_status(status), message);
    else
        gs_respond_error(rq, status, code, message);
}

void gs_respond_405(struct gs_request *rq, const char *allow)
{
    char body[256];
    int n;
    const char *ct;
    if (is_device_path(rq)) {
        n = snprintf(body, sizeof body, "error_code=%d&error_message=method not allowed; use %s",
                     GS_E_FORM_INVALID, allow);
        rq->giz_code = GS_E_FORM_INVALID;
        ct = FORM_CT;
    } else if (gs_is_app_path(rq)) {
        char msg[128];
        snprintf(msg, sizeof msg, "method not allowed; use %s", allow);
        cJSON *j = app_error_json(GS_E_FORM_INVALID, msg);
        char *text = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        n = snprintf(body, sizeof body, "%s", text ? text : "{}");
        cJSON_free(text);
        rq->giz_code = GS_E_FORM_INVALID;
        ct = JSON_CT;
    } else {
        n = snprintf(body, sizeof body, "{\"error\":\"method_not_allowed\",\"message\":\"use %s\"}",
                     allow);
        ct = JSON_CT;
    }
    size_t len = (n < 0) ? 0 : ((size_t)n >= sizeof body ? sizeof body - 1 : (size_t)n);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    gs_respond_mhd(rq, MHD_HTTP_METHOD_NOT_ALLOWED, resp, len);
}

void gs_respond_429(struct gs_request *rq, unsigned wait_s)
{
    char ra[16], msg[128];
    snprintf(ra, sizeof ra, "%u", wait_s);
    snprintf(msg, sizeof msg, "too many wrong admin tokens from this address; retry in %u s",
             wait_s);
    cJSON *j = cJSON_CreateObject();
    if (j != NULL) {
        cJSON_AddStringToObject(j, "error", "too_many_requests");
        cJSON_AddStringToObject(j, "message", msg);
    }
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    size_t len = text ? strlen(text) : 0;
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_COPY) : NULL;
    cJSON_free(text);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    gs_respond_mhd(rq, MHD_HTTP_TOO_MANY_REQUESTS, resp, len);
}
