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

/* Firmware-style reading (gizsim's strict mode). Every recv() the kernel
 * completes is handed over as it came, not parsed: recv_cb gets the bytes of
 * one read of at most `cap` bytes (the buffer is zeroed before each read,
 * as firmware memsets its buffer). It returns 1 to read again with *next_cap
 * (1..65536) bytes at most, 0 when the caller is done (the connection is
 * closed), or a negative httpc_err to abort. */
typedef int (*http_uv_recv_cb)(const char *data, size_t n, size_t *next_cap, void *ud);
/* Called exactly once per started, not cancelled raw request: HTTPC_OK when
 * recv_cb returned 0, HTTPC_ERR_IO when the peer closed before that (or
 * recv_cb's own error), HTTPC_ERR_CONNECT, HTTPC_ERR_TIMEOUT. */
typedef void (*http_uv_end_cb)(int rc, void *ud);

/* Like http_uv__start, but the answer goes through recv_cb in raw reads, the
 * first one of at most first_cap bytes. Same return and lifetime rules. */
struct http_uv_req *http_uv__start_raw(uv_loop_t *loop, const struct sockaddr *addr,
                                       const char *host_hdr, uint16_t port, const char *method,
                                       const char *path, const char *content_type,
                                       const char *extra_headers, const void *body, size_t body_len,
                                       unsigned timeout_ms, size_t first_cap,
                                       http_uv_recv_cb recv_cb, http_uv_end_cb end_cb, void *ud);

#endif
