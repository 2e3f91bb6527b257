/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Asynchronous HTTP/1.1 requests on a libuv loop (one request per TCP
 * connection, as firmware does), using the parser of httpc.c. gizsim runs
 * thousands of these concurrently on one loop.
 */
#ifndef GIZ_TOOLS_HTTP_UV_H
#define GIZ_TOOLS_HTTP_UV_H

#include <uv.h>

#include "httpc.h"

struct http_uv_req;

/* Called exactly once per started, not cancelled request. rc is HTTPC_OK
 * with `resp` set (valid only during the call) or a negative httpc_err with
 * resp NULL. The request frees itself after the callback returns. */
typedef void (*http_uv_done_cb)(int rc, const struct httpc_resp *resp, void *ud);

/* Starts `method path` to addr (host_hdr/port go into the Host header).
 * The body is copied. Returns the request handle, or NULL when out of
 * memory or when the TCP handle cannot be set up (then cb is not called). */
struct http_uv_req *http_uv__start(uv_loop_t *loop, const struct sockaddr *addr,
                                   const char *host_hdr, uint16_t port, const char *method,
                                   const char *path, const char *content_type,
                                   const char *extra_headers, const void *body, size_t body_len,
                                   unsigned timeout_ms, http_uv_done_cb cb, void *ud);

/* Abandons a running request: its callback will not be called; its memory is
 * released once libuv has closed the handles. NULL is accepted. */
void http_uv__cancel(struct http_uv_req *req);

#endif
