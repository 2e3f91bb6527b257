/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The libmicrohttpd daemons of giz-gservice: the HTTP listener and the
 * optional HTTPS one (certificate and key read once from files), their
 * options (bind address, thread pool, connection limits, timeouts, the
 * request callbacks of request.c, the guard's connection notifications), the
 * rate-limited MHD log, and the orderly stop: quiesce, stop the daemons,
 * then the guard, then the store pool and its checkpoint thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "giz/log.h"
#include "gservice.h"
#include "ws_app.h"

__attribute__((format(printf, 2, 0))) static void mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    gs_guard_mhd_log(cls, buf);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f == NULL) goto fail;
    if (fseek(f, 0, SEEK_END) != 0) goto fail;
    long sz = ftell(f);
    if (sz < 0 || sz > (1 << 20) || fseek(f, 0, SEEK_SET) != 0) goto fail;
    buf = malloc((size_t)sz + 1);
    if (buf == NULL || fread(buf, 1, (size_t)sz, f) != (size_t)sz) goto fail;
    buf[sz] = '\0';
    fclose(f);
    return buf;
fail:
    giz_log(GIZ_LOG_ERR, "cannot read %s: %s", path, strerror(errno));
    free(buf);
    if (f != NULL) fclose(f);
    return NULL;
}

static struct MHD_Daemon *start_daemon(struct gs_server *srv, unsigned port, bool tls)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* suspend/resume: idle event streams (route_events.c) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_ALLOW_UPGRADE; /* /ws/app/v1 (ws_route.c) */
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
    if (inet_pton(AF_INET, srv->cfg.bind_addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, srv->cfg.bind_addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        giz_log(GIZ_LOG_ERR, "GIZ_BIND_ADDR '%s' is not an IP address", srv->cfg.bind_addr);
        return NULL;
    }
    if (tls) flags |= MHD_USE_TLS;
    struct MHD_OptionItem ops[20];
    unsigned n = 0;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)gs_request_uri_cb, srv};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
                                       (intptr_t)gs_request_completed_cb, srv};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)gs_guard_notify_cb, srv};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                       (intptr_t)srv->cfg.idle_timeout, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                       (intptr_t)srv->cfg.max_connections, NULL};
    if (srv->cfg.per_ip_limit > 0)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                           (intptr_t)srv->cfg.per_ip_limit, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    if (srv->cfg.threads > 1)
        ops[n++] =
            (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)srv->cfg.threads, NULL};
    if (tls) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, srv->cfg.tls_priorities};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, gs_request_access_cb,
                                            srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, srv,
                                            MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (d == NULL)
        giz_log(GIZ_LOG_ERR, "cannot listen on %s port %u (%s%s)", srv->cfg.bind_addr, port,
                tls ? "https" : "http",
                tls ? "; or GIZ_TLS_PRIORITIES is not a valid GnuTLS priority string" : "");
    return d;
}

int gs_http_start(struct gs_server *srv)
{
    gs_store_checkpointer_start(&srv->pool); /* failure: automatic checkpoints */
    if (gs_events_start(srv) != 0 || gs_streams_init(srv) != 0) return -1;
    if (gs_campaigns_start(srv) != 0) return -1; /* the OTA campaign engine */
    if (srv->cfg.head_timeout > 0 && gs_guard_start(srv) != 0) return -1;
    if (gs_ws_start(srv) != 0) return -1;
    srv->http = start_daemon(srv, srv->cfg.http_port, false);
    if (srv->http == NULL) return -1;
    giz_log(GIZ_LOG_INFO,
            "listening on http://%s:%u (%u threads; request head within %u s, %u connections "
            "per address, %u in all)",
            srv->cfg.bind_addr, srv->cfg.http_port, srv->cfg.threads, srv->cfg.head_timeout,
            srv->cfg.per_ip_limit, srv->cfg.max_connections);
    if (srv->cfg.https_port == 0) return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        giz_log(GIZ_LOG_ERR, "this libmicrohttpd has no TLS support; unset GIZ_HTTPS_PORT");
        return -1;
    }
    srv->tls_cert_pem = read_file(srv->cfg.tls_cert);
    srv->tls_key_pem = read_file(srv->cfg.tls_key);
    if (srv->tls_cert_pem == NULL || srv->tls_key_pem == NULL) return -1;
    srv->https = start_daemon(srv, srv->cfg.https_port, true);
    if (srv->https == NULL) return -1;
    giz_log(GIZ_LOG_INFO, "listening on https://%s:%u", srv->cfg.bind_addr, srv->cfg.https_port);
    return 0;
}

void gs_http_stop(struct gs_server *srv)
{
    struct MHD_Daemon *ds[2] = {srv->http, srv->https};
    gs_streams_shutdown(srv); /* open streams end; suspended ones are resumed */
    for (int i = 0; i < 2; i++)
        if (ds[i] != NULL) MHD_quiesce_daemon(ds[i]);
    gs_ws_stop(srv); /* WebSocket sessions closed before their daemons stop */
    for (int i = 0; i < 2; i++)
        if (ds[i] != NULL) MHD_stop_daemon(ds[i]);
    gs_ws_free(srv);
    srv->http = srv->https = NULL;
    gs_guard_stop(srv); /* after the daemons: no more connection notifications */
    gs_streams_free(srv);
    gs_campaigns_stop(srv); /* after the daemons: no route wakes it any more */
    gs_events_stop(srv);    /* writes what the last requests queued */
    free(srv->tls_cert_pem);
    free(srv->tls_key_pem);
    srv->tls_cert_pem = srv->tls_key_pem = NULL;
    gs_store_pool_close(&srv->pool);
}
