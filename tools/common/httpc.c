/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * HTTP/1.1 client pieces shared by the tools: request building, an
 * incremental response parser that understands Content-Length, chunked and
 * close-delimited bodies, and a blocking client over plain sockets with one
 * overall timeout (non-blocking connect + poll).
 */
#include "httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

const char *httpc__strerror(int err)
{
    switch (err) {
    case HTTPC_OK:
        return "ok";
    case HTTPC_ERR_RESOLVE:
        return "host name does not resolve";
    case HTTPC_ERR_CONNECT:
        return "connection refused or unreachable";
    case HTTPC_ERR_TIMEOUT:
        return "timed out waiting for the answer";
    case HTTPC_ERR_IO:
        return "connection closed before the answer was complete";
    case HTTPC_ERR_PROTO:
        return "answer is not valid HTTP/1.1";
    case HTTPC_ERR_TOOBIG:
        return "answer is too large";
    case HTTPC_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown HTTP client error";
    }
}

void httpc__resp_free(struct httpc_resp *r)
{
    if (r == NULL) return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

void httpc__parser_init(struct httpc_parser *p, size_t max_size)
{
    memset(p, 0, sizeof *p);
    giz_buf_init(&p->raw, max_size);
    p->content_length = -1;
}

void httpc__parser_free(struct httpc_parser *p)
{
    if (p == NULL) return;
    giz_buf_free(&p->raw);
}

/* Finds needle in hay[0..n). */
/* The received bytes as text (NUL-terminated once anything was fed). */
static char *raw(const struct httpc_parser *p)
{
    return (char *)p->raw.data;
}

static const char *find_mem(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (n < k) return NULL;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return hay + i;
    return NULL;
}

/* Parses the status line and the headers we care about once "\r\n\r\n" is in. */
static int parse_head(struct httpc_parser *p)
{
    const char *end = find_mem(raw(p), p->raw.len, "\r\n\r\n");
    const char *line, *eol, *hend;
    uint64_t status;
    char num[4];

    if (end == NULL) return 0;
    p->header_end = (size_t)(end - raw(p)) + 4;
    if (p->raw.len < 12 || strncmp(raw(p), "HTTP/1.", 7) != 0 || raw(p)[8] != ' ')
        return HTTPC_ERR_PROTO;
    memcpy(num, raw(p) + 9, 3);
    num[3] = '\0';
    if (giz_parse_uint(num, 10, 100, 599, &status) != GIZ_OK) return HTTPC_ERR_PROTO;
    p->status = (int)status;
    hend = raw(p) + p->header_end - 2; /* the final empty line's CRLF */
    line = memchr(raw(p), '\n', p->header_end);
    line = line != NULL ? line + 1 : hend;
    while (line < hend) {
        const char *colon, *v;
        size_t nlen, vlen;
        eol = find_mem(line, (size_t)(hend + 2 - line), "\r\n");
        if (eol == NULL) break;
        colon = memchr(line, ':', (size_t)(eol - line));
        if (colon != NULL) {
            nlen = (size_t)(colon - line);
            v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            vlen = (size_t)(eol - v);
            if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                char tmp[24];
                uint64_t cl;
                if (vlen == 0 || vlen >= sizeof tmp) return HTTPC_ERR_PROTO;
                memcpy(tmp, v, vlen);
                tmp[vlen] = '\0';
                if (giz_parse_uint(tmp, 10, 0, 0x7fffffffUL, &cl) != GIZ_OK) return HTTPC_ERR_PROTO;
                p->content_length = (long long)cl;
            } else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                if (vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0) p->chunked = 1;
            } else if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
                size_t c = vlen < sizeof p->content_type - 1 ? vlen : sizeof p->content_type - 1;
                memcpy(p->content_type, v, c);
                p->content_type[c] = '\0';
            }
        }
        line = eol + 2;
    }
    if ((p->status >= 100 && p->status < 200) || p->status == 204 || p->status == 304)
        p->content_length = 0;
    return 1;
}

/* Walks the chunked body from header_end. Returns 1 when the final chunk and
 * trailer are present, 0 when more is needed, HTTPC_ERR_PROTO when invalid.
 * When `decode` is set, compacts the chunk data in place after header_end and
 * sets *decoded_len. */
static int walk_chunks(struct httpc_parser *p, int decode, size_t *decoded_len)
{
    size_t pos = p->header_end, out = p->header_end;

    for (;;) {
        const char *eol = find_mem(raw(p) + pos, p->raw.len - pos, "\r\n");
        char tmp[20];
        size_t llen, hexlen = 0;
        unsigned long long size = 0;

        if (eol == NULL) return 0;
        llen = (size_t)(eol - (raw(p) + pos));
        while (hexlen < llen && hexlen < sizeof tmp - 1) {
            char c = raw(p)[pos + hexlen];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            size = size * 16 + (unsigned long long)d;
            hexlen++;
        }
        if (hexlen == 0 || size > p->raw.max) return HTTPC_ERR_PROTO;
        pos += llen + 2;
        if (size == 0) {
            /* trailers until an empty line */
            for (;;) {
                const char *t = find_mem(raw(p) + pos, p->raw.len - pos, "\r\n");
                if (t == NULL) return 0;
                if (t == raw(p) + pos) break;
                pos = (size_t)(t - raw(p)) + 2;
            }
            if (decode) *decoded_len = out - p->header_end;
            return 1;
        }
        if (p->raw.len - pos < size + 2) return 0;
        if (decode) {
            memmove(raw(p) + out, raw(p) + pos, (size_t)size);
            out += (size_t)size;
        }
        pos += (size_t)size + 2;
    }
}

int httpc__parser_feed(struct httpc_parser *p, const char *data, size_t n)
{
    int rc;

    rc = giz_buf_append(&p->raw, data, n);
    if (rc != GIZ_OK) return rc == GIZ_ERR_OVERSIZE ? HTTPC_ERR_TOOBIG : HTTPC_ERR_NOMEM;
    if (p->header_end == 0) {
        rc = parse_head(p);
        if (rc <= 0) return rc;
    }
    if (p->chunked) return walk_chunks(p, 0, NULL);
    if (p->content_length >= 0)
        return p->raw.len - p->header_end >= (size_t)p->content_length ? 1 : 0;
    return 0; /* close-delimited */
}

int httpc__parser_eof(struct httpc_parser *p)
{
    if (p->header_end == 0 || p->chunked) return HTTPC_ERR_IO;
    if (p->content_length >= 0)
        return p->raw.len - p->header_end >= (size_t)p->content_length ? 1 : HTTPC_ERR_IO;
    return 1;
}

int httpc__parser_take(struct httpc_parser *p, struct httpc_resp *r)
{
    size_t blen;
    char *body;

    memset(r, 0, sizeof *r);
    if (p->chunked) {
        if (walk_chunks(p, 1, &blen) != 1) return HTTPC_ERR_PROTO;
    } else if (p->content_length >= 0) {
        blen = (size_t)p->content_length;
    } else {
        blen = p->raw.len - p->header_end;
    }
    body = malloc(blen + 1);
    if (body == NULL) return HTTPC_ERR_NOMEM;
    if (blen > 0) memcpy(body, raw(p) + p->header_end, blen);
    body[blen] = '\0';
    r->status = p->status;
    memcpy(r->content_type, p->content_type, sizeof r->content_type);
    r->body = body;
    r->body_len = blen;
    httpc__parser_free(p);
    httpc__parser_init(p, p->raw.max);
    return HTTPC_OK;
}

char *httpc__build(const char *method, const char *host, uint16_t port, const char *path,
                   const char *content_type, const char *extra_headers, const void *body,
                   size_t body_len, size_t *out_len)
{
    char head[2048];
    int hl;
    char *out;

    if (body != NULL)
        hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                      "User-Agent: gizcloud-tools\r\n%s%s%sContent-Length: %zu\r\n%s\r\n",
                      method, path, host, (unsigned)port, content_type ? "Content-Type: " : "",
                      content_type ? content_type : "", content_type ? "\r\n" : "", body_len,
                      extra_headers ? extra_headers : "");
    else
        hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                      "User-Agent: gizcloud-tools\r\n%s\r\n",
                      method, path, host, (unsigned)port, extra_headers ? extra_headers : "");
    if (hl < 0 || (size_t)hl >= sizeof head) return NULL;
    out = malloc((size_t)hl + (body != NULL ? body_len : 0) + 1);
    if (out == NULL) return NULL;
    memcpy(out, head, (size_t)hl);
    if (body != NULL && body_len > 0) memcpy(out + hl, body, body_len);
    *out_len = (size_t)hl + (body != NULL ? body_len : 0);
    out[*out_len] = '\0';
    return out;
}

static int remaining_ms(double deadline)
{
    double left = deadline - util__now_ms();
    return left <= 0 ? 0 : (int)left + 1;
}

/* poll()s fd for `events` until the deadline, again after EINTR. Returns
 * poll's answer: > 0 ready, 0 timed out, < 0 error. */
static int wait_fd(int fd, short events, double deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int prc;

    do
        prc = poll(&pfd, 1, remaining_ms(deadline));
    while (prc < 0 && errno == EINTR);
    return prc;
}

/* Connects a non-blocking socket to one of the resolved addresses before the deadline. */
static int connect_any(const char *host, uint16_t port, double deadline, int *out_fd)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    int rc = HTTPC_ERR_CONNECT, fd = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0) return HTTPC_ERR_RESOLVE;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int err = 0, prc;
        socklen_t elen = sizeof err;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) goto next;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        if (errno != EINPROGRESS) goto next;
        prc = wait_fd(fd, POLLOUT, deadline);
        if (prc == 0) {
            rc = HTTPC_ERR_TIMEOUT;
            goto next;
        }
        if (prc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0) break;
    next:
        close(fd);
        fd = -1;
        if (rc == HTTPC_ERR_TIMEOUT) break;
    }
    freeaddrinfo(res);
    if (fd < 0) return rc;
    *out_fd = fd;
    return HTTPC_OK;
}

int httpc__request(const char *host, uint16_t port, const char *method, const char *path,
                   const char *content_type, const char *extra_headers, const void *body,
                   size_t body_len, int timeout_ms, size_t max_size, struct httpc_resp *r)
{
    double deadline = util__now_ms() + timeout_ms;
    struct httpc_parser parser;
    char *req = NULL;
    size_t req_len = 0, sent = 0;
    int fd = -1, rc;

    httpc__parser_init(&parser, max_size);
    memset(r, 0, sizeof *r);
    req = httpc__build(method, host, port, path, content_type, extra_headers, body, body_len,
                       &req_len);
    if (req == NULL) {
        rc = HTTPC_ERR_NOMEM;
        goto cleanup;
    }
    rc = connect_any(host, port, deadline, &fd);
    if (rc != HTTPC_OK) goto cleanup;
    while (sent < req_len) {
        ssize_t n;
        if (wait_fd(fd, POLLOUT, deadline) == 0) {
            rc = HTTPC_ERR_TIMEOUT;
            goto cleanup;
        }
        n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
            rc = HTTPC_ERR_IO;
            goto cleanup;
        }
        sent += (size_t)n;
    }
    for (;;) {
        char buf[16384];
        ssize_t n;
        if (wait_fd(fd, POLLIN, deadline) == 0) {
            rc = HTTPC_ERR_TIMEOUT;
            goto cleanup;
        }
        n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) {
            rc = HTTPC_ERR_IO;
            goto cleanup;
        }
        rc = n == 0 ? httpc__parser_eof(&parser) : httpc__parser_feed(&parser, buf, (size_t)n);
        if (rc < 0) goto cleanup;
        if (rc == 1) break;
    }
    rc = httpc__parser_take(&parser, r);
cleanup:
    if (fd >= 0) close(fd);
    free(req);
    httpc__parser_free(&parser);
    return rc;
}
