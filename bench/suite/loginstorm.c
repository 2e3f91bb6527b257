/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Login-storm driver for bench/suite/bench.py: logs every client of a
 * credentials file in once (TCP connect, MQTT 3.1.1 CONNECT with username =
 * client id, password, CONNACK, DISCONNECT, close), keeping K logins in flight
 * on one epoll loop so the driver costs a few microseconds per login and the
 * broker is what is measured. Prints "ok=<accepted> refused=<n> errors=<n>
 * seconds=<s>" on stdout. Usage: loginstorm PORT CREDFILE [INFLIGHT]
 * (CREDFILE: "<client id> <password>" per line). Built by bench/run with cc -O2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 256
#define MAX_CREDS 200000

struct cred {
    char id[64];
    char pw[64];
};

struct slot {
    int fd;
    int state; /* 0 connecting, 1 CONNECT sent */
    size_t got;
    unsigned char ack[4];
};

static struct cred *creds;
static size_t ncreds, next_cred;
static unsigned long ok, refused, errs;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (unsigned char)(n >> 8);
    p[1] = (unsigned char)(n & 0xffu);
    memcpy(p + 2, s, n);
    return n + 2;
}

/* CONNECT packet for one credential into out (>= 256 bytes); returns its length. */
static size_t connect_packet(const struct cred *c, unsigned char *out)
{
    unsigned char body[240];
    size_t n = 0;
    n += put_str(body + n, "MQTT");
    body[n++] = 4;    /* 3.1.1 */
    body[n++] = 0xC2; /* username, password, clean session */
    body[n++] = 0;
    body[n++] = 120; /* keepalive */
    n += put_str(body + n, c->id);
    n += put_str(body + n, c->id);
    n += put_str(body + n, c->pw);
    out[0] = 0x10;
    out[1] = (unsigned char)n; /* < 128 for ids and passwords under 64 bytes */
    memcpy(out + 2, body, n);
    return n + 2;
}

static int start(int ep, struct slot *s, const struct sockaddr_in *sa)
{
    struct epoll_event ev;
    int one = 1;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s->fd < 0) return -1;
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    s->state = 0;
    s->got = 0;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.ptr = s;
    return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void finish(int ep, struct slot *s, int accepted, int error)
{
    static const unsigned char disc[2] = {0xE0, 0x00};
    if (accepted) (void)!write(s->fd, disc, sizeof disc);
    (void)epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    if (error)
        errs++;
    else if (accepted)
        ok++;
    else
        refused++;
}

int main(int argc, char **argv)
{
    static struct slot slots[MAX_INFLIGHT];
    struct sockaddr_in sa;
    struct epoll_event evs[MAX_INFLIGHT];
    char line[256];
    unsigned char pkt[256];
    long port, inflight = 32;
    size_t active = 0;
    FILE *f;
    int ep;
    double t0;

    if (argc < 3) {
        fputs("usage: loginstorm PORT CREDFILE [INFLIGHT]\n", stderr);
        return 2;
    }
    port = strtol(argv[1], NULL, 10);
    if (argc > 3) inflight = strtol(argv[3], NULL, 10);
    if (port <= 0 || port > 65535 || inflight < 1 || inflight > MAX_INFLIGHT) {
        fputs("loginstorm: bad port or in-flight count\n", stderr);
        return 2;
    }
    creds = calloc(MAX_CREDS, sizeof *creds);
    f = fopen(argv[2], "r");
    if (creds == NULL || f == NULL) {
        fputs("loginstorm: cannot read the credentials\n", stderr);
        return 2;
    }
    while (ncreds < MAX_CREDS && fgets(line, sizeof line, f) != NULL) {
        struct cred *c = &creds[ncreds];
        if (sscanf(line, "%63s %63s", c->id, c->pw) == 2) ncreds++;
    }
    fclose(f);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ep = epoll_create1(0);
    if (ep < 0) return 2;

    t0 = now_s();
    for (long i = 0; i < inflight; i++)
        slots[i].fd = -1;
    for (;;) {
        for (long i = 0; i < inflight && next_cred < ncreds; i++) {
            if (slots[i].fd >= 0) continue;
            if (start(ep, &slots[i], &sa) != 0) {
                errs++;
                next_cred++;
                continue;
            }
            /* state: credential index << 1 | CONNECT sent */
            slots[i].state = (int)(next_cred++ << 1);
            active++;
        }
        if (active == 0) break;
        int n = epoll_wait(ep, evs, (int)inflight, 10000);
        if (n <= 0) {
            fputs("loginstorm: no progress for 10 s\n", stderr);
            break;
        }
        for (int k = 0; k < n; k++) {
            struct slot *s = evs[k].data.ptr;
            if (s->fd < 0) continue;
            if (evs[k].events & (EPOLLERR | EPOLLHUP) && !(evs[k].events & EPOLLIN)) {
                finish(ep, s, 0, 1);
                active--;
                continue;
            }
            if (!(s->state & 1) && (evs[k].events & EPOLLOUT)) {
                struct epoll_event ev;
                size_t len = connect_packet(&creds[(size_t)s->state >> 1], pkt);
                if (write(s->fd, pkt, len) != (ssize_t)len) {
                    finish(ep, s, 0, 1);
                    active--;
                    continue;
                }
                s->state |= 1;
                memset(&ev, 0, sizeof ev);
                ev.events = EPOLLIN;
                ev.data.ptr = s;
                (void)epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                continue;
            }
            if (evs[k].events & EPOLLIN) {
                ssize_t r = read(s->fd, s->ack + s->got, sizeof s->ack - s->got);
                if (r <= 0) {
                    finish(ep, s, 0, r < 0 || s->got < sizeof s->ack);
                    active--;
                    continue;
                }
                s->got += (size_t)r;
                if (s->got == sizeof s->ack) {
                    int accepted = s->ack[0] == 0x20 && s->ack[1] == 0x02 && s->ack[3] == 0;
                    finish(ep, s, accepted, s->ack[0] != 0x20);
                    active--;
                }
            }
        }
    }
    printf("ok=%lu refused=%lu errors=%lu seconds=%.6f\n", ok, refused, errs, now_s() - t0);
    free(creds);
    close(ep);
    return 0;
}
