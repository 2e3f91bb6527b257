/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * A small HTTP/1.1 client for the tools: a request builder, an incremental
 * response parser (Content-Length, chunked and close-delimited bodies) used
 * both by the blocking client below (gizctl) and by http_uv.c (gizsim), and
 * a blocking one-request-per-connection client over plain sockets.
 */
#ifndef GIZ_TOOLS_HTTPC_H
#define GIZ_TOOLS_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "giz/util.h"

/* Result codes of the client (negative) beside HTTP statuses (positive). */
enum httpc_err {
    HTTPC_OK = 0,
    HTTPC_ERR_RESOLVE = -1, /* host name did not resolve */
    HTTPC_ERR_CONNECT = -2, /* connection refused / unreachable */
    HTTPC_ERR_TIMEOUT = -3, /* no (complete) answer in time */
    HTTPC_ERR_IO = -4,      /* connection broke mid-answer */
    HTTPC_ERR_PROTO = -5,   /* answer is not valid HTTP/1.x */
    HTTPC_ERR_TOOBIG = -6,  /* answer exceeds the size cap */
    HTTPC_ERR_NOMEM = -7
};
/* Static text for an httpc_err. */
const char *httpc__strerror(int err);

/* An HTTP answer. body is NUL-terminated (not counted in body_len). */
struct httpc_resp {
    int status;
    char content_type[96];
    char *body;
    size_t body_len;
};
void httpc__resp_free(struct httpc_resp *r);

/* Incremental response parser. Feed bytes as they arrive; it keeps them in
 * one growable buffer capped at max_size (raw.max). */
struct httpc_parser {
    struct giz_buf raw;       /* the answer as received, NUL-terminated */
    size_t header_end;        /* offset of body start, 0 until headers are complete */
    long long content_length; /* -1 when absent */
    int chunked;
    int status;
    char content_type[96];
};
void httpc__parser_init(struct httpc_parser *p, size_t max_size);
/* Appends data. Returns 1 when a complete answer is buffered, 0 when more is
 * needed, or a negative httpc_err. */
int httpc__parser_feed(struct httpc_parser *p, const char *data, size_t n);
/* Called at EOF: returns 1 if the answer is complete (close-delimited body),
 * HTTPC_ERR_IO otherwise. */
int httpc__parser_eof(struct httpc_parser *p);
/* After feed/eof returned 1: moves the answer into *r (body decoded from
 * chunks when needed). The parser is left empty. Returns 0 or an httpc_err. */
int httpc__parser_take(struct httpc_parser *p, struct httpc_resp *r);
void httpc__parser_free(struct httpc_parser *p);

/* Builds a request "METHOD path HTTP/1.1" with Host, Connection: close,
 * Content-Length (when body != NULL), Content-Type (when given) and extra
 * header lines `extra_headers` (each "Name: value\r\n", may be NULL).
 * Returns a malloc'd buffer (caller frees) and its length, or NULL. */
char *httpc__build(const char *method, const char *host, uint16_t port, const char *path,
                   const char *content_type, const char *extra_headers, const void *body,
                   size_t body_len, size_t *out_len);

/* Blocking request: connects to host:port (IPv4/IPv6), sends, and reads the
 * whole answer within timeout_ms overall. Returns HTTPC_OK with *r filled
 * (caller frees with httpc__resp_free) or a negative httpc_err. */
int httpc__request(const char *host, uint16_t port, const char *method, const char *path,
                   const char *content_type, const char *extra_headers, const void *body,
                   size_t body_len, int timeout_ms, size_t max_size, struct httpc_resp *r);

#endif
