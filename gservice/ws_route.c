/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * GET /ws/app/v1: the RFC 6455 opening handshake on libmicrohttpd's worker
 * (Upgrade: websocket, Connection: upgrade, Sec-WebSocket-Version: 13, a
 * 16-byte Sec-WebSocket-Key), answered 101 with Sec-WebSocket-Accept through
 * libmicrohttpd's upgrade support; the upgraded socket (for HTTPS the
 * plaintext end of libmicrohttpd's TLS forwarding) then goes to the hub
 * (ws_hub.c) at once. A plain GET gets 426 in the app API's error shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "giz/log.h"
#include "ws_app.h"

/* true if the comma-separated header value has `token` (case-insensitive). */
static bool has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v != NULL && *v != '\0') {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *e = v;
        while (*e != '\0' && *e != ',')
            e++;
        const char *t = e;
        while (t > v && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - v) == tl && strncasecmp(v, token, tl) == 0) return true;
        v = e;
    }
    return false;
}

/* Sec-WebSocket-Key must be base64 of 16 bytes: 22 characters + "==". */
static bool key_ok(const char *k)
{
    if (k == NULL || strlen(k) != 24 || strcmp(k + 22, "==") != 0) return false;
    for (size_t i = 0; i < 22; i++) {
        char c = k[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return true;
}

static void upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                     size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct gs_request *rq = con_cls; /* still alive: completion comes after this */
    char peer[64] = "-";
    if (rq != NULL) snprintf(peer, sizeof peer, "%s", rq->peer);
    gs_guard_head_done(conn); /* no request-head deadline on a WebSocket */
    gs_ws_adopt(cls, sock, urh, extra, extra_len, peer);
}

void gs_route_ws_app(struct gs_request *rq)
{
    const char *up = gs_header(rq, "Upgrade");
    const char *co = gs_header(rq, "Connection");
    const char *ver = gs_header(rq, "Sec-WebSocket-Version");
    const char *key = gs_header(rq, "Sec-WebSocket-Key");
    if (!has_token(up, "websocket") || !has_token(co, "upgrade")) {
        gs_respond_app_error(rq, 426, GS_E_FORM_INVALID,
                             "this is the WebSocket app API: send a WebSocket handshake");
        return;
    }
    if (ver == NULL || strcmp(ver, "13") != 0) {
        gs_respond_app_error(rq, 426, GS_E_FORM_INVALID, "Sec-WebSocket-Version must be 13");
        return;
    }
    if (!key_ok(key)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "bad Sec-WebSocket-Key");
        return;
    }
    if (rq->srv->ws == NULL) {
        gs_respond_app_error(rq, 503, GS_E_SERVER_ERROR, "WebSocket hub not running");
        return;
    }
    char cat[24 + sizeof GIZ_WS_GUID];
    snprintf(cat, sizeof cat, "%s%s", key, GIZ_WS_GUID);
    unsigned char dig[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, strlen(cat), dig);
    char accept[32];
    EVP_EncodeBlock((unsigned char *)accept, dig, SHA_DIGEST_LENGTH);
    struct MHD_Response *resp = MHD_create_response_for_upgrade(upgraded, rq->srv);
    if (resp == NULL) {
        gs_respond_app_error(rq, 500, GS_E_SERVER_ERROR, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    gs_respond_mhd(rq, MHD_HTTP_SWITCHING_PROTOCOLS, resp, 0);
}
