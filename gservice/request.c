/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The request life cycle of giz-gservice (libmicrohttpd callbacks): the
 * URI-log callback allocates a struct gs_request holding the raw request
 * target (paths and queries are parsed here, so bad %-encoding is seen rather
 * than silently repaired); the first access call routes it and may answer at
 * once (404, 405, 400 for a bad query, 429/401 for admin calls, 413 from
 * Content-Length); later calls buffer the body up to the cap, or stream it
 * into a firmware upload; the final call runs the handler; the completion
 * callback logs one access line, feeds the metrics and frees the request.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/form.h"
#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"

uint64_t gs_now_us(void)
{
    return giz_mono_ns() / 1000u;
}

int64_t gs_unix_now(void)
{
    return (int64_t)time(NULL);
}

static struct gs_request *request_new(struct gs_server *srv, struct MHD_Connection *conn,
                                      const char *uri)
{
    struct gs_request *rq = calloc(1, sizeof *rq);
    if (rq == NULL) return NULL;
    rq->srv = srv;
    rq->start_us = gs_now_us();
    rq->raw_uri = strdup(uri ? uri : "");
    if (rq->raw_uri == NULL) {
        free(rq);
        return NULL;
    }
    rq->raw_target_len = strlen(rq->raw_uri);
    giz_buf_init(&rq->body_buf, srv->cfg.max_body);
    const char *q = strchr(rq->raw_uri, '?');
    rq->path_len = q ? (size_t)(q - rq->raw_uri) : strlen(rq->raw_uri);
    rq->query = q ? q + 1 : "";
    rq->query_len = strlen(rq->query);
    /* an absolute-form target ("http://host/path") is reduced to its path */
    if (strncmp(rq->raw_uri, "http://", 7) == 0) {
        const char *slash = strchr(rq->raw_uri + 7, '/');
        if (slash != NULL && (q == NULL || slash < q)) {
            size_t skip = (size_t)(slash - rq->raw_uri);
            memmove(rq->raw_uri, slash, strlen(slash) + 1);
            rq->path_len -= skip;
            if (q != NULL) rq->query -= skip;
        }
    }
    const union MHD_ConnectionInfo *ci =
        conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        char ip[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
            port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
            port = ntohs(in6->sin6_port);
        }
        snprintf(rq->peer, sizeof rq->peer, "%s:%u", ip, port);
        snprintf(rq->peer_ip, sizeof rq->peer_ip, "%s", ip);
    } else {
        snprintf(rq->peer, sizeof rq->peer, "-");
        snprintf(rq->peer_ip, sizeof rq->peer_ip, "-");
    }
    return rq;
}

static void request_free(struct gs_request *rq)
{
    if (rq == NULL) return;
    gs_firmware_upload_free(rq->upload);
    cJSON_Delete(rq->ev);
    giz_buf_free(&rq->body_buf);
    free(rq->raw_uri);
    free(rq);
}

void *gs_request_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    return request_new(cls, conn, uri);
}

/* Copies the path for the access log: printable ASCII only, capped. */
static void log_path(const struct gs_request *rq, char *out, size_t cap)
{
    size_t n = rq->path_len < cap - 1 ? rq->path_len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        char c = rq->raw_uri[i];
        out[i] = (c > 0x20 && c < 0x7f) ? c : '?';
    }
    out[n] = '\0';
}

void gs_request_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
    struct gs_server *srv = cls;
    struct gs_request *rq = *con_cls;
    gs_guard_head_wait(srv, conn); /* a kept-alive connection's next request head */
    if (rq == NULL) return;
    *con_cls = NULL;
    uint64_t dur = gs_now_us() - rq->start_us;
    char path[160];
    log_path(rq, path, sizeof path);
    const char *how = "";
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        how = " (timeout)";
    else if (toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT)
        how = " (client closed)";
    else if (toe == MHD_REQUEST_TERMINATED_WITH_ERROR)
        how = " (error)";
    else if (toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
        how = " (shutdown)";
    char code[24] = "";
    if (rq->giz_code != 0) snprintf(code, sizeof code, " error_code=%d", rq->giz_code);
    giz_log(GIZ_LOG_INFO, "%s %s %u%s %" PRIu64 "B %" PRIu64 "us %s%s",
            rq->method_name[0] ? rq->method_name : "-", path, rq->status, code, rq->resp_bytes, dur,
            rq->peer, how);
    if (!rq->responded) /* answered by libmicrohttpd itself (e.g. 431), or aborted */
        gs_metrics_observe(&srv->metrics, rq->route, rq->status, dur, rq->resp_bytes);
    gs_event_request_done(rq, (int)toe);
    request_free(rq);
}

/* Buffers body bytes up to GIZ_MAX_BODY; past it the request is marked too
 * large (answered 413 at the end) and a client that keeps streaming far past
 * the cap is cut off (false). false also when out of memory. */
static bool body_append(struct gs_request *rq, const char *data, size_t len)
{
    size_t cap_max = rq->srv->cfg.max_body;
    if (rq->body_too_large || len > cap_max - rq->body_len) {
        rq->body_too_large = true;
        rq->body_discarded += len;
        return rq->body_discarded <= 4 * (uint64_t)cap_max;
    }
    if (giz_buf_append(&rq->body_buf, data, len) != GIZ_OK) return false;
    rq->body = (char *)rq->body_buf.data;
    rq->body_len = rq->body_buf.len;
    return true;
}

/* libmicrohttpd hands the target over as a C string: a NUL byte in it would
 * silently cut the path. In its buffer the target ends one byte before the
 * version string; a shorter C string means a NUL inside. */
static bool target_has_nul(const struct gs_request *rq, const char *url, const char *version)
{
    return version != NULL && version[0] != '\0' && url != NULL && version > url &&
           rq->raw_target_len != SIZE_MAX && (size_t)(version - url - 1) != rq->raw_target_len;
}

/* Admin calls: an address that sent too many wrong tokens waits (429), a
 * missing or wrong token is refused (401). true = go ahead. */
static bool admin_gate(struct gs_request *rq)
{
    unsigned wait_s = gs_guard_admin_blocked(rq->srv, rq->peer_ip);
    if (wait_s > 0) {
        atomic_fetch_add_explicit(&rq->srv->metrics.admin_throttled, 1, memory_order_relaxed);
        gs_respond_429(rq, wait_s);
        return false;
    }
    if (gs_admin_authorized(rq)) return true;
    /* a guess is a request that offers a token; none at all is not one */
    if (gs_header(rq, MHD_HTTP_HEADER_AUTHORIZATION) != NULL)
        gs_guard_admin_failed(rq->srv, rq->peer_ip);
    gs_respond_error(rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                     "missing or wrong admin token (Authorization: Bearer <token>)");
    return false;
}

/* A declared Content-Length over the cap is answered 413 before any body
 * byte is read. true = go ahead. */
static bool length_ok(struct gs_request *rq, uint64_t cap)
{
    const char *cl = gs_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t v = 0;
    if (cl == NULL || giz_parse_uint(cl, 10, 0, UINT64_MAX, &v) != GIZ_OK || v <= cap) return true;
    char msg[96];
    snprintf(msg, sizeof msg, "request body larger than %" PRIu64 " bytes", cap);
    gs_respond_generic_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg);
    return false;
}

/* The route r (found by gs_route_find; NULL = none) takes rq's method and
 * query: true, or false after answering 404 / 405 with Allow / 400. */
static bool route_checks(struct gs_request *rq, const struct gs_route *r)
{
    if (r == NULL) {
        gs_respond_generic_error(rq, MHD_HTTP_NOT_FOUND, "not_found", "no such path");
        return false;
    }
    rq->route = r->id;
    if (!(r->methods & rq->method)) {
        char allow[96];
        gs_route_allow(r->methods, allow, sizeof allow);
        gs_respond_405(rq, allow);
        return false;
    }
    struct giz_error qerr = {0};
    if (rq->query_len > 0 && giz_form_validate(rq->query, rq->query_len, &qerr) != GIZ_OK) {
        gs_respond_generic_error(rq, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "malformed query string (bad %-encoding)");
        return false;
    }
    return true;
}

/* First call for a request: route it, and answer at once when we can. */
static void request_begin(struct gs_request *rq, const char *method, const char *url,
                          const char *version)
{
    snprintf(rq->method_name, sizeof rq->method_name, "%s", method);
    rq->method = gs_method_parse(method);
    if (target_has_nul(rq, url, version)) {
        gs_respond_generic_error(rq, MHD_HTTP_BAD_REQUEST, "bad_request",
                                 "NUL byte in the request target");
        return;
    }
    const struct gs_route *r = gs_route_find(rq);
    if (gs_is_app_path(rq)) {
        /* App clients keep their connection, and libmicrohttpd closes one
         * answered before the request was read: /app paths are checked
         * (route_checks) when the request is complete. */
        if (r == NULL) return;
        rq->route = r->id;
    } else if (!route_checks(rq, r)) {
        return;
    }
    if (gs_route_is_admin(r->id) && !admin_gate(rq)) return;
    bool upload = r->id == GS_ROUTE_ADMIN_FIRMWARE && rq->method == GS_M_POST;
    const char *ct = gs_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (upload && ct != NULL && strncasecmp(ct, "application/json", 16) == 0) upload = false;
    if (!length_ok(rq, upload ? rq->srv->cfg.max_upload : rq->srv->cfg.max_body)) return;
    if (upload) {
        rq->streaming = true;
        gs_firmware_upload_begin(rq);
    }
}

enum MHD_Result gs_request_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    struct gs_server *srv = cls;
    struct gs_request *rq = *con_cls;
    if (rq == NULL) {
        rq = request_new(srv, conn, url);
        if (rq == NULL) return MHD_NO;
        rq->raw_target_len = SIZE_MAX; /* url is already unescaped: length unknown */
        *con_cls = rq;
    }
    rq->conn = conn;
    if (!rq->started) {
        rq->started = true;
        gs_guard_head_done(conn);
        request_begin(rq, method, url, version);
        goto out;
    }
    if (*upload_data_size > 0) {
        size_t len = *upload_data_size;
        *upload_data_size = 0;
        if (rq->responded) goto out;
        if (rq->streaming) {
            if (!gs_firmware_upload_data(rq, upload_data, len)) return MHD_NO;
        } else if (!body_append(rq, upload_data, len)) {
            return MHD_NO;
        }
        goto out;
    }
    if (rq->responded) goto out;
    if (rq->body_too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", srv->cfg.max_body);
        gs_respond_generic_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", msg);
        goto out;
    }
    if (gs_is_app_path(rq) && !route_checks(rq, gs_route_find(rq))) goto out;
    gs_route_dispatch(rq);
    if (!rq->responded) {
        giz_log(GIZ_LOG_ERR, "bug: %s gave no answer", gs_route_name(rq->route));
        gs_respond_generic_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error",
                                 "internal error");
    }
out:
    rq->conn = NULL;
    return rq->queue_failed ? MHD_NO : MHD_YES;
}
