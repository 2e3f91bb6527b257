/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Asynchronous HTTP/1.1 client on libuv: connect, one write of the whole
 * request, read into the shared parser until the answer is complete or the
 * peer closes, with a per-request timer. Each request owns its handles and
 * frees itself once both are closed. A raw request (gizsim's strict mode)
 * skips the parser and hands every read, bounded like firmware's recv(), to
 * its owner.
 */
#include "http_uv.h"

#include <stdlib.h>
#include <string.h>

struct http_uv_req {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    char *out;
    size_t out_len;
    struct httpc_parser parser;
    http_uv_done_cb cb;
    http_uv_recv_cb recv_cb; /* raw mode when set */
    http_uv_end_cb end_cb;
    size_t recv_cap; /* raw mode: bytes the next read may take */
    void *ud;
    int open_handles;
    int finished; /* callback called or cancelled */
};

/* Every read lands in this buffer and is copied into the parser at once. */
/* (+1: raw reads always end with a NUL, so strstr() stops inside.) */
static char http_uv_readbuf[65536 + 1];

static void on_handle_closed(uv_handle_t *h)
{
    struct http_uv_req *r = h->data;
    if (--r->open_handles == 0) {
        httpc__parser_free(&r->parser);
        free(r->out);
        free(r);
    }
}

static void shutdown_req(struct http_uv_req *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->tcp)) uv_close((uv_handle_t *)&r->tcp, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, on_handle_closed);
}

static void finish(struct http_uv_req *r, int rc)
{
    if (!r->finished && r->recv_cb != NULL) {
        r->finished = 1;
        r->end_cb(rc, r->ud);
    } else if (!r->finished) {
        r->finished = 1;
        if (rc == HTTPC_OK) {
            struct httpc_resp resp;
            rc = httpc__parser_take(&r->parser, &resp);
            if (rc == HTTPC_OK) {
                r->cb(HTTPC_OK, &resp, r->ud);
                httpc__resp_free(&resp);
            } else {
                r->cb(rc, NULL, r->ud);
            }
        } else {
            r->cb(rc, NULL, r->ud);
        }
    }
    shutdown_req(r);
}

static void on_timeout(uv_timer_t *t)
{
    finish(t->data, HTTPC_ERR_TIMEOUT);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    const struct http_uv_req *r = h->data;
    size_t cap = sizeof http_uv_readbuf - 1;
    (void)suggested;
    if (r->recv_cb != NULL) {
        /* one firmware recv(): at most recv_cap bytes into a zeroed buffer */
        cap = r->recv_cap < cap ? r->recv_cap : cap;
        memset(http_uv_readbuf, 0, cap + 1);
    }
    *buf = uv_buf_init(http_uv_readbuf, (unsigned)cap);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct http_uv_req *r = s->data;
    int rc;

    if (r->finished) return;
    if (nread == 0) return;
    if (r->recv_cb != NULL) {
        size_t next = r->recv_cap;
        if (nread < 0) {
            finish(r, HTTPC_ERR_IO); /* closed before the reader was done */
            return;
        }
        rc = r->recv_cb(buf->base, (size_t)nread, &next, r->ud);
        if (rc == 1 && next > 0 && next < sizeof http_uv_readbuf)
            r->recv_cap = next;
        else
            finish(r, rc == 1 ? HTTPC_ERR_PROTO : rc);
        return;
    }
    if (nread < 0)
        rc = nread == UV_EOF ? httpc__parser_eof(&r->parser) : HTTPC_ERR_IO;
    else
        rc = httpc__parser_feed(&r->parser, buf->base, (size_t)nread);
    if (rc == 1)
        finish(r, HTTPC_OK);
    else if (rc < 0)
        finish(r, rc);
}

static void on_write(uv_write_t *w, int status)
{
    struct http_uv_req *r = w->data;
    if (status < 0 && !r->finished) finish(r, HTTPC_ERR_IO);
}

static void on_connect(uv_connect_t *c, int status)
{
    struct http_uv_req *r = c->data;
    uv_buf_t b;

    if (r->finished) return;
    if (status < 0) {
        finish(r, HTTPC_ERR_CONNECT);
        return;
    }
    b = uv_buf_init(r->out, (unsigned)r->out_len);
    r->write.data = r;
    if (uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_write) != 0 ||
        uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read) != 0)
        finish(r, HTTPC_ERR_IO);
}

struct http_uv_req *http_uv__start(uv_loop_t *loop, const struct sockaddr *addr,
                                   const char *host_hdr, uint16_t port, const char *method,
                                   const char *path, const char *content_type,
                                   const char *extra_headers, const void *body, size_t body_len,
                                   unsigned timeout_ms, http_uv_done_cb cb, void *ud)
{
    struct http_uv_req *r = calloc(1, sizeof *r);

    if (r == NULL) return NULL;
    r->cb = cb;
    r->ud = ud;
    httpc__parser_init(&r->parser, 1u << 20);
    r->out = httpc__build(method, host_hdr, port, path, content_type, extra_headers, body, body_len,
                          &r->out_len);
    if (r->out == NULL || uv_tcp_init(loop, &r->tcp) != 0) {
        free(r->out);
        free(r);
        return NULL;
    }
    r->tcp.data = r;
    r->open_handles = 1;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->open_handles++;
    r->connect.data = r;
    uv_tcp_nodelay(&r->tcp, 1);
    if (uv_tcp_connect(&r->connect, &r->tcp, addr, on_connect) != 0) {
        r->finished = 1;
        shutdown_req(r);
        return NULL;
    }
    uv_timer_start(&r->timer, on_timeout, timeout_ms, 0);
    return r;
}

struct http_uv_req *http_uv__start_raw(uv_loop_t *loop, const struct sockaddr *addr,
                                       const char *host_hdr, uint16_t port, const char *method,
                                       const char *path, const char *content_type,
                                       const char *extra_headers, const void *body, size_t body_len,
                                       unsigned timeout_ms, size_t first_cap,
                                       http_uv_recv_cb recv_cb, http_uv_end_cb end_cb, void *ud)
{
    struct http_uv_req *r;

    if (recv_cb == NULL || end_cb == NULL || first_cap == 0 || first_cap >= sizeof http_uv_readbuf)
        return NULL;
    /* Start in parser mode with no callback yet: nothing can be read before
     * on_connect, which runs from the loop after we set the raw fields. */
    r = http_uv__start(loop, addr, host_hdr, port, method, path, content_type, extra_headers, body,
                       body_len, timeout_ms, NULL, ud);
    if (r == NULL) return NULL;
    r->recv_cb = recv_cb;
    r->end_cb = end_cb;
    r->recv_cap = first_cap;
    return r;
}

void http_uv__cancel(struct http_uv_req *req)
{
    if (req == NULL) return;
    req->finished = 1;
    shutdown_req(req);
}
