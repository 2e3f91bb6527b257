/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The broker's own socket reads, interposed: mosquitto reaches libc and
 * OpenSSL through its PLT, so redirecting the main program's GOT entries
 * for read, SSL_read, accept (and accept4 if present) and close to the
 * wrappers below lets the plugin see every byte mosquitto reads from a
 * client before mosquitto parses it, on mosquitto's own thread, with no
 * extra hop or descriptor (plugin/DESIGN.md, "Read interposition").
 *
 * - accept: every socket mosquitto accepts gets a small record (indexed by
 *   fd) with a giz_guard (lib/mqtt_guard.c); only those fds are framed,
 *   everything else mosquitto reads (pipes, files) goes straight to libc.
 *   Connections that have not completed a CONNECT are capped globally and
 *   per source address (over the cap: accepted and closed at once), a
 *   spare descriptor is kept so that at the fd limit a pending connection
 *   is still accepted and closed instead of making mosquitto's accept loop
 *   spin, and the refusals are logged once per interval with counts.
 * - read / SSL_read: the stream goes through giz_guard_read (the CONNECT is
 *   gathered whole and its keepalive clamped in mosquitto's buffer; PINGREQ
 *   window; packet-size limit). An offender's read fails with ECONNRESET (an
 *   OpenSSL error on TLS), mosquitto's normal disconnect path: the will is
 *   sent and MOSQ_EVT_DISCONNECT fires.
 * - close: forgets the record.
 * - epoll_wait (optional): the loop's sleep is cut to when push.c has a paced
 *   packet due (push__loop_timeout), so pacing does not wait for the 100 ms
 *   idle TICK.
 * - TICK (intercept__tick): connections without a CONNECT after
 *   connect_timeout are shut down (mosquitto then reads EOF and closes).
 *
 * Fail closed: intercept__start refuses (init fails, mosquitto exits) unless
 * the main program is a mosquitto build it knows (a version string it was
 * verified against) and has every relocation it needs. The real functions
 * are looked up with dlsym(RTLD_DEFAULT), i.e. what mosquitto's own lazy
 * binding would have found (libasan's interceptors when it is preloaded).
 * Page protection is restored after each GOT write; cleanup writes the
 * original entries back before the plugin is unloaded.
 *
 * The wrappers get libc's arguments only, so the state is the one
 * file-static pointer of the plugin (icpt); they run on mosquitto's main
 * thread only (the 2.0 broker is single-threaded), so there is no locking.
 */
#define _GNU_SOURCE /* dl_iterate_phdr, RTLD_DEFAULT, memmem, accept4 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "giz/mqtt_guard.h"
#include "plugin.h"

#if defined(__x86_64__)
#define R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB_DAT R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB_DAT R_AARCH64_GLOB_DAT
#else
#error "read interposition: only x86_64 and aarch64 relocations are known"
#endif

#define MAX_SLOTS 4         /* GOT entries per symbol (JUMP_SLOT + GLOB_DAT) */
#define ACCEPT_BURST 256    /* connections one accept call may shed before EAGAIN */
#define SWEEP_EVERY_MS 250  /* pre-CONNECT timeout sweep period (on TICK) */
#define REFUSE_LOG_MS 10000 /* "connections refused" summary interval */
#define PEER_SIZE GIZP_PEER_SIZE
#define FD_HEADROOM_MIN 16 /* descriptors left to mosquitto itself at the fd limit */

/* mosquitto builds this interposition was verified against (net__read calls
 * read/SSL_read on mosq->sock, accept/close through the PLT, one thread). */
static const char *const known_versions[] = {"2.0.11", "2.0.21"};

enum hook_id { H_READ, H_SSL_READ, H_ACCEPT, H_CLOSE, H_ACCEPT4, H_EPOLL_WAIT, H_TEST, H__COUNT };

struct got_slot {
    void **addr;
    void *orig;
    bool mprot;       /* the page is not writable: mprotect around the write */
    int restore_prot; /* the page's protection to restore after it */
};

struct hook {
    const char *name; /* NULL: unused */
    bool required;
    void *wrapper;
    struct got_slot slots[MAX_SLOTS];
    unsigned nslots;
};

/* A client's address, kept compact (formatted only for log lines). */
struct peer_addr {
    uint8_t family; /* AF_INET, AF_INET6, or 0 if unknown */
    uint16_t port;
    uint8_t addr[16]; /* 4 bytes for AF_INET */
};

/* One accepted client socket, kept small: an idle device costs this one
 * allocation (120 bytes, a 128-byte heap chunk) and nothing else. Until
 * the CONNECT, guard.bucket_t0 holds the accept time and guard.pre_connect
 * the peer address (struct peer_addr; it counts against the per-address
 * cap); after it, log lines ask the socket for its peer (getpeername). */
struct iconn {
    struct giz_guard guard;
    int fd;
    uint32_t last_in_ms; /* monotonic ms (low 32 bits) of the last bytes read: differences
                            wrap correctly (keepalive timeouts) */
    bool pre;            /* counted as a connection without CONNECT */
    bool doomed;         /* the next read fails (an offender got its last bytes) */
    bool tls;            /* read through SSL_read */
    uint8_t end;         /* enum events_end: how its reads ended (for the timeline) */
};
_Static_assert(sizeof(struct peer_addr) <= GIZ_GUARD_PRE_CONNECT, "the peer fits pre_connect");
_Static_assert(sizeof(void *) != 8 || sizeof(struct iconn) <= 120, "an idle connection grew");

typedef ssize_t (*read_t)(int, void *, size_t);
typedef int (*ssl_read_t)(void *, void *, int);
typedef int (*ssl_get_fd_t)(const void *);
typedef int (*accept_t)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_t)(int, struct sockaddr *, socklen_t *, int);
typedef int (*close_t)(int);
typedef int (*epoll_wait_t)(int, struct epoll_event *, int, int);

struct icpt {
    struct gizp *g;
    uint32_t loop_ms; /* monotonic ms (low 32 bits) when mosquitto's epoll_wait last returned:
                         a read's time to the loop iteration, without a clock call per read */
    struct hook hooks[H__COUNT];
    ElfW(Addr) relro_start, relro_end; /* PT_GNU_RELRO of the main program, or 0 */
    char version[16];
    bool bind_now;
    read_t real_read;
    ssl_read_t real_ssl_read;
    ssl_get_fd_t real_ssl_get_fd;
    accept_t real_accept;
    accept4_t real_accept4;
    close_t real_close;
    epoll_wait_t real_epoll_wait;

    struct giz_guard_limits lim;
    struct iconn **conns;      /* indexed by fd */
    struct giz_pool conn_pool; /* the struct iconn records (giz/pool.h: one per idle device) */
    size_t nconns_cap;
    size_t fd_end; /* no record at or above this fd */
    unsigned pre_count;
    struct giz_map per_addr; /* family + address bytes -> count of pre-CONNECT conns (as pointer) */
    int reserve_fd;          /* /dev/null, given up at EMFILE to accept-and-close */
    int fd_high; /* an accepted fd at or above this is refused (RLIMIT_NOFILE - headroom) */
    int64_t last_sweep_ms, refuse_window_ms;

    /* counters: totals (stats line) and this refusal interval */
    uint64_t open_conns, accepted, closed_ping, closed_other, timeouts;
    uint64_t shed_cap, shed_addr, shed_fd, accept_errors;
    uint64_t w_shed_cap, w_shed_addr, w_shed_fd, w_errors, w_no_reserve;
    struct peer_addr last_shed_peer;
    struct rate_limit rl_close, rl_timeout;
};

static struct icpt *icpt;

/* ---- helpers ------------------------------------------------------------ */

static uint64_t now_cb(void *ud)
{
    (void)ud;
    return giz_mono_ms();
}

static void peer_from(const struct sockaddr_storage *ss, struct peer_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        out->family = AF_INET;
        out->port = ntohs(a->sin_port);
        memcpy(out->addr, &a->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        out->family = AF_INET6;
        out->port = ntohs(a->sin6_port);
        memcpy(out->addr, &a->sin6_addr, 16);
    }
}

/* Formats p as "ip:port" / "[ip6]:port" ("?" if unknown) into out (cap bytes). */
static void peer_format(const struct peer_addr *p, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (cap == 0) return;
    snprintf(out, cap, "?");
    if (p->family == AF_INET) {
        if (inet_ntop(AF_INET, p->addr, ip, sizeof(ip)) != NULL)
            snprintf(out, cap, "%s:%u", ip, (unsigned)p->port);
    } else if (p->family == AF_INET6) {
        if (inet_ntop(AF_INET6, p->addr, ip, sizeof(ip)) != NULL)
            snprintf(out, cap, "[%s]:%u", ip, (unsigned)p->port);
    }
}

/* The per-address key: family byte + 4 or 16 address bytes; 0 for none. */
static size_t addr_key(const struct peer_addr *p, uint8_t key[17])
{
    size_t n = p->family == AF_INET ? 4u : p->family == AF_INET6 ? 16u : 0u;
    if (n == 0) return 0;
    key[0] = p->family;
    memcpy(key + 1, p->addr, n);
    return n + 1u;
}

static unsigned addr_count(struct icpt *ic, const struct peer_addr *p)
{
    uint8_t key[17];
    size_t klen = addr_key(p, key);
    return klen ? (unsigned)(uintptr_t)giz_map_get(&ic->per_addr, key, klen) : 0u;
}

/* Adds delta (+1 / -1) to the address's pre-CONNECT count; 0 or -1 (ENOMEM). */
static int addr_add(struct icpt *ic, const struct peer_addr *p, int delta)
{
    uint8_t key[17];
    size_t klen = addr_key(p, key);
    unsigned n;
    if (klen == 0) return 0;
    n = (unsigned)(uintptr_t)giz_map_get(&ic->per_addr, key, klen);
    n = delta > 0 ? n + 1u : (n > 0 ? n - 1u : 0u);
    if (n == 0) {
        (void)giz_map_remove(&ic->per_addr, key, klen);
        return 0;
    }
    return giz_map_put(&ic->per_addr, key, klen, (void *)(uintptr_t)n, NULL);
}

/* c's peer address: kept until the CONNECT, then the socket's (family 0,
 * "?", if it has none any more). */
static void conn_peer(const struct iconn *c, struct peer_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (c->pre) {
        memcpy(out, c->guard.pre_connect, sizeof(*out));
        return;
    }
    memset(&ss, 0, sizeof(ss));
    if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0) ss.ss_family = AF_UNSPEC;
    peer_from(&ss, out);
}

/* c has its CONNECT (or is being closed): no longer counted as pre-CONNECT.
 * peer: its address as accepted. */
static void pre_leave(struct icpt *ic, struct iconn *c, const struct peer_addr *peer)
{
    if (!c->pre) return;
    c->pre = false;
    ic->pre_count--;
    (void)addr_add(ic, peer, -1);
}

static void conn_free(struct icpt *ic, int fd)
{
    struct iconn *c = ic->conns[fd];
    struct peer_addr peer;
    ic->conns[fd] = NULL;
    if (c->pre) {
        conn_peer(c, &peer);
        pre_leave(ic, c, &peer);
    }
    giz_guard_free(&c->guard);
    giz_pool_free(&ic->conn_pool, c);
    ic->open_conns--;
}

static struct iconn *conn_of(const struct icpt *ic, int fd)
{
    return (fd >= 0 && (size_t)fd < ic->nconns_cap) ? ic->conns[fd] : NULL;
}

/* A record for a freshly accepted fd; NULL on ENOMEM. */
static struct iconn *conn_new(struct icpt *ic, int fd, const struct peer_addr *peer)
{
    struct iconn *c;
    struct iconn **t = giz_array_reserve(ic->conns, &ic->nconns_cap, (size_t)fd + 1u, sizeof(*t),
                                         1024u, (size_t)INT_MAX + 1u);
    if (t == NULL) return NULL;
    ic->conns = t;                                /* slots past the old end are zeroed */
    if (ic->conns[fd] != NULL) conn_free(ic, fd); /* closed behind our back */
    c = giz_pool_alloc(&ic->conn_pool);
    if (c == NULL) return NULL;
    if (addr_add(ic, peer, +1) != 0) {
        giz_pool_free(&ic->conn_pool, c);
        return NULL;
    }
    giz_guard_init(&c->guard);
    c->guard.bucket_t0 = giz_mono_ms(); /* accept time until the CONNECT */
    c->last_in_ms = (uint32_t)c->guard.bucket_t0;
    c->fd = fd;
    memcpy(c->guard.pre_connect, peer, sizeof(*peer)); /* until the CONNECT */
    c->pre = true;
    ic->pre_count++;
    if ((size_t)fd >= ic->fd_end) ic->fd_end = (size_t)fd + 1u;
    ic->conns[fd] = c;
    ic->open_conns++;
    ic->accepted++;
    return c;
}

/* ---- read / SSL_read ------------------------------------------------------ */

struct rd_ctx {
    struct icpt *ic;
    int fd;
    void *ssl;
};

static ssize_t plain_cb(void *ud, void *buf, size_t n)
{
    struct rd_ctx *x = ud;
    return x->ic->real_read(x->fd, buf, n);
}

static ssize_t tls_cb(void *ud, void *buf, size_t n)
{
    struct rd_ctx *x = ud;
    return x->ic->real_ssl_read(x->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
}

/* Makes mosquitto's SSL_get_error() report a hard error for our -1. */
static void tls_fail(void)
{
    ERR_raise_data(ERR_LIB_USER, 1, "giz: connection closed by the plugin");
}

/* pre_peer: the peer address if c was before its CONNECT at this read
 * (else NULL: the socket is asked). */
static void log_close(struct icpt *ic, struct iconn *c, enum giz_guard_verdict v,
                      const struct giz_error *err, const struct peer_addr *pre_peer)
{
    char peer[PEER_SIZE];
    struct peer_addr pa;
    const char *id = giz_guard_client_id(&c->guard);
    const char *cid = id != NULL ? id : "(no CONNECT yet)";
    if (v == GIZ_GUARD_CLOSE_PING)
        ic->closed_ping++;
    else
        ic->closed_other++;
    c->end = (uint8_t)(v == GIZ_GUARD_CLOSE_PING ? EVENTS_END_PING : EVENTS_END_LIMIT);
    if (pre_peer != NULL)
        pa = *pre_peer;
    else
        conn_peer(c, &pa);
    peer_format(&pa, peer, sizeof(peer));
    if (v == GIZ_GUARD_CLOSE_PING && id != NULL) events__ping_limit(ic->g, id, peer);
    if (!plugin__rate_ok(&ic->rl_close, 50, "connection-close lines")) return;
    if (v == GIZ_GUARD_CLOSE_PING)
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: closing %s (client %s): more than %u PINGREQ within %u ms", peer,
                             cid, ic->lim.ping_max, ic->lim.window_ms);
    else if (v == GIZ_GUARD_CLOSE_CONNECT)
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: closing %s: malformed MQTT 3.1/3.1.1 CONNECT: %s at byte %zu",
                             peer, err->text[0] ? err->text : "?", err->offset);
    else
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: closing %s (client %s): %s", peer, cid,
                             giz_guard_verdict_text(v));
}

/* Discards what the client has already sent (bounded) before mosquitto
 * closes the socket: closing with unread bytes makes the kernel answer with
 * a reset, and a reset can destroy the answers (PINGRESPs, CONNACK) the
 * client has not read yet. */
static void drain_input(int fd)
{
    uint8_t junk[4096];
    for (int i = 0; i < 16; i++) {
        if (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) <= 0) break;
    }
}

/* Both wrappers: one read of c for mosquitto. */
static ssize_t conn_read(struct icpt *ic, struct iconn *c, void *buf, size_t count, void *ssl)
{
    struct rd_ctx x = {ic, c->fd, ssl};
    enum giz_guard_verdict v;
    struct giz_error err;
    ssize_t r;
    if (c->doomed) {
        drain_input(c->fd);
        if (ssl != NULL) tls_fail();
        errno = ECONNRESET;
        return -1;
    }
    bool had_connect = c->guard.connect_done, was_pre = c->pre;
    struct peer_addr pre_peer = {0};
    if (was_pre) conn_peer(c, &pre_peer); /* the CONNECT's completion reuses pre_connect */
    err.text[0] = '\0';
    err.offset = 0;
    r = giz_guard_read(&c->guard, &ic->lim, buf, count, ssl != NULL ? tls_cb : plain_cb, &x, &v,
                       &err);
    if (r > 0) {
        c->last_in_ms = ic->loop_ms != 0 ? ic->loop_ms : (uint32_t)giz_mono_ms();
    } else if (c->end == EVENTS_END_NONE) {
        if (r == 0)
            c->end = EVENTS_END_EOF;
        else if (ssl == NULL && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            c->end = EVENTS_END_ERROR;
    }
    if (!had_connect && c->guard.connect_done && giz_guard_client_id(&c->guard) != NULL) {
        char peer[PEER_SIZE];
        struct peer_addr pa;
        if (was_pre)
            pa = pre_peer;
        else
            conn_peer(c, &pa);
        peer_format(&pa, peer, sizeof(peer));
        events__connect_seen(ic->g, giz_guard_client_id(&c->guard), c->guard.keepalive_asked, peer);
    }
    if (c->pre && !c->guard.gathering) pre_leave(ic, c, &pre_peer);
    if (v != GIZ_GUARD_PASS) {
        log_close(ic, c, v, &err, was_pre ? &pre_peer : NULL);
        if (r > 0) {
            /* mosquitto gets the bytes before the offending packet; make sure
             * it comes back to read (and fail) even if nothing else arrives. */
            c->doomed = true;
            shutdown(c->fd, SHUT_RD);
        } else {
            drain_input(c->fd);
            if (ssl != NULL) tls_fail();
            errno = ECONNRESET; /* mosquitto's "connection lost" (drain_input changed it) */
        }
    }
    return r;
}

static ssize_t w_read(int fd, void *buf, size_t count)
{
    struct icpt *ic = icpt;
    struct iconn *c = conn_of(ic, fd);
    if (c == NULL) return ic->real_read(fd, buf, count);
    return conn_read(ic, c, buf, count, NULL);
}

static int w_ssl_read(void *ssl, void *buf, int num)
{
    struct icpt *ic = icpt;
    struct iconn *c = num > 0 ? conn_of(ic, ic->real_ssl_get_fd(ssl)) : NULL;
    if (c == NULL) return ic->real_ssl_read(ssl, buf, num);
    c->tls = true;
    return (int)conn_read(ic, c, buf, (size_t)num, ssl);
}

/* mosquitto's loop sleeps in epoll_wait(…, 100 ms) and runs TICK once per
 * iteration: wake it when push.c has a paced packet due (push__loop_timeout). */
static int w_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    struct icpt *ic = icpt;
    int n = ic->real_epoll_wait(epfd, events, maxevents, push__loop_timeout(ic->g, timeout));
    ic->loop_ms = (uint32_t)giz_mono_ms() | 1u; /* (never 0: 0 = not yet) */
    return n;
}

static int w_close(int fd)
{
    struct icpt *ic = icpt;
    struct iconn *c = conn_of(ic, fd);
    if (c != NULL && giz_guard_client_id(&c->guard) != NULL)
        events__socket_closed(ic->g, giz_guard_client_id(&c->guard), (enum events_end)c->end,
                              c->guard.last_type,
                              (int64_t)(uint32_t)((uint32_t)giz_mono_ms() - c->last_in_ms));
    if (c != NULL) conn_free(ic, fd);
    return ic->real_close(fd);
}

/* ---- accept ------------------------------------------------------------ */

/* At the fd limit: gives up the spare descriptor to accept one pending
 * connection and close it. 1 shed, 0 nothing pending, -1 no spare. */
static int shed_with_reserve(struct icpt *ic, int lfd)
{
    int fd;
    if (ic->reserve_fd < 0) ic->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (ic->reserve_fd < 0) return -1;
    close(ic->reserve_fd);
    fd = ic->real_accept(lfd, NULL, NULL);
    if (fd >= 0) close(fd);
    ic->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? 1 : 0;
}

static int accept_common(int lfd, struct sockaddr *addr, socklen_t *alen, int flags, bool four)
{
    struct icpt *ic = icpt;
    const struct gizp_config *cfg = &ic->g->cfg;
    for (unsigned i = 0; i < ACCEPT_BURST; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct peer_addr peer;
        int fd;
        memset(&ss, 0, sizeof(ss));
        fd = four ? ic->real_accept4(lfd, (struct sockaddr *)&ss, &sl, flags)
                  : ic->real_accept(lfd, (struct sockaddr *)&ss, &sl);
        if (fd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE) {
                int s = shed_with_reserve(ic, lfd);
                if (s == 1) {
                    ic->shed_fd++;
                    ic->w_shed_fd++;
                    continue;
                }
                if (s < 0) {
                    /* No spare either: back off a little instead of letting
                     * mosquitto's loop spin on a readable listener. */
                    struct timespec ts = {0, 1000000};
                    ic->w_no_reserve++;
                    nanosleep(&ts, NULL);
                }
                errno = EAGAIN;
                return -1;
            }
            if (e == ECONNABORTED || e == EPROTO || e == ENOBUFS || e == ENOMEM) {
                ic->accept_errors++;
                ic->w_errors++;
            }
            errno = e;
            return -1;
        }
        peer_from(&ss, &peer);
        if (fd >= ic->fd_high) {
            /* The kernel hands out the lowest free descriptor, so all below
             * are taken: leave the rest to mosquitto itself (its log, the
             * database, tcpd's hosts files -- without them it would refuse
             * and log every connection itself). */
            ic->shed_fd++;
            ic->w_shed_fd++;
            ic->last_shed_peer = peer;
            close(fd);
            continue;
        }
        if (ic->pre_count >= cfg->pre_connect_max) {
            ic->shed_cap++;
            ic->w_shed_cap++;
            ic->last_shed_peer = peer;
            close(fd);
            continue;
        }
        if (peer.family != 0 && addr_count(ic, &peer) >= cfg->pre_connect_per_addr) {
            ic->shed_addr++;
            ic->w_shed_addr++;
            ic->last_shed_peer = peer;
            close(fd);
            continue;
        }
        if (conn_new(ic, fd, &peer) == NULL) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        if (addr != NULL && alen != NULL) {
            memcpy(addr, &ss, *alen < sl ? *alen : sl);
            *alen = sl;
        }
        return fd;
    }
    errno = EAGAIN;
    return -1;
}

static int w_accept(int lfd, struct sockaddr *addr, socklen_t *alen)
{
    return accept_common(lfd, addr, alen, 0, false);
}

static int w_accept4(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
    return accept_common(lfd, addr, alen, flags, true);
}

/* ---- TICK ---------------------------------------------------------------- */

static void log_refusals(struct icpt *ic, int64_t now)
{
    uint64_t total = ic->w_shed_cap + ic->w_shed_addr + ic->w_shed_fd;
    char peer[PEER_SIZE];
    struct rlimit rl;
    if (total == 0 && ic->w_errors == 0 && ic->w_no_reserve == 0) {
        ic->refuse_window_ms = now;
        return;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = 0;
    peer_format(&ic->last_shed_peer, peer, sizeof(peer));
    mosquitto_log_printf(
        MOSQ_LOG_WARNING,
        "giz: refused %llu connections in the last %lld s: %llu over plugin_opt_pre_connect_max "
        "%u, %llu over plugin_opt_pre_connect_per_addr %u (last from %s), %llu at the fd limit "
        "(%llu, %d kept for mosquitto); %llu accept errors, %llu times without a spare fd; %u "
        "connections without "
        "CONNECT now",
        (unsigned long long)total, (long long)((now - ic->refuse_window_ms) / 1000),
        (unsigned long long)ic->w_shed_cap, ic->g->cfg.pre_connect_max,
        (unsigned long long)ic->w_shed_addr, ic->g->cfg.pre_connect_per_addr, peer,
        (unsigned long long)ic->w_shed_fd, (unsigned long long)rl.rlim_cur,
        (int)(rl.rlim_cur > (rlim_t)ic->fd_high ? rl.rlim_cur - (rlim_t)ic->fd_high : 0u),
        (unsigned long long)ic->w_errors, (unsigned long long)ic->w_no_reserve, ic->pre_count);
    ic->w_shed_cap = ic->w_shed_addr = ic->w_shed_fd = ic->w_errors = ic->w_no_reserve = 0;
    ic->refuse_window_ms = now;
}

/* The fd number from which accepted sockets are refused. */
static int fd_high_now(void)
{
    struct rlimit rl;
    rlim_t room;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX)
        return INT_MAX;
    room = rl.rlim_cur / 100u;
    if (room < FD_HEADROOM_MIN) room = FD_HEADROOM_MIN;
    return rl.rlim_cur > room ? (int)(rl.rlim_cur - room) : (int)rl.rlim_cur;
}

void intercept__tick(struct gizp *g, int64_t now)
{
    struct icpt *ic = g->icpt;
    if (ic == NULL || now - ic->last_sweep_ms < SWEEP_EVERY_MS) return;
    ic->last_sweep_ms = now;
    ic->fd_high = fd_high_now();
    for (size_t fd = 0; ic->pre_count > 0 && fd < ic->fd_end; fd++) {
        struct iconn *c = ic->conns[fd];
        if (c == NULL || !c->pre ||
            now - (int64_t)c->guard.bucket_t0 < (int64_t)ic->g->cfg.connect_timeout_ms)
            continue;
        ic->timeouts++;
        struct peer_addr pa;
        conn_peer(c, &pa);
        if (plugin__rate_ok(&ic->rl_timeout, 20, "connect-timeout lines")) {
            char peer[PEER_SIZE];
            peer_format(&pa, peer, sizeof(peer));
            mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: closing %s: no CONNECT within %u ms", peer,
                                 ic->g->cfg.connect_timeout_ms);
        }
        pre_leave(ic, c, &pa);
        shutdown(c->fd, SHUT_RDWR); /* mosquitto reads EOF and closes it */
    }
    if (now - ic->refuse_window_ms >= REFUSE_LOG_MS) log_refusals(ic, now);
}

void intercept__stats(const struct gizp *g, struct intercept_stats *out)
{
    const struct icpt *ic = g->icpt;
    memset(out, 0, sizeof(*out));
    if (ic == NULL) return;
    out->conns = ic->open_conns;
    out->pre_connect = ic->pre_count;
    out->accepted = ic->accepted;
    out->closed_ping = ic->closed_ping;
    out->closed_other = ic->closed_other;
    out->timeouts = ic->timeouts;
    out->refused = ic->shed_cap + ic->shed_addr + ic->shed_fd;
}

/* ---- finding and patching the GOT ------------------------------------------ */

struct main_prog {
    ElfW(Addr) base;
    const ElfW(Phdr) * phdr;
    ElfW(Half) phnum;
    bool found;
};

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct main_prog *m = data;
    (void)size;
    /* The first object is the main program. */
    m->base = info->dlpi_addr;
    m->phdr = info->dlpi_phdr;
    m->phnum = info->dlpi_phnum;
    m->found = true;
    return 1;
}

/* A pointer from the dynamic section: glibc relocates some in place, others
 * (or other loaders) leave them as offsets from the load base. */
static ElfW(Addr) dyn_ptr(ElfW(Addr) base, ElfW(Addr) v)
{
    return v < base ? base + v : v;
}

static void note_slot(struct icpt *ic, const char *name, ElfW(Addr) where)
{
    for (unsigned h = 0; h < H__COUNT; h++) {
        struct hook *k = &ic->hooks[h];
        if (k->name != NULL && strcmp(k->name, name) == 0 && k->nslots < MAX_SLOTS) {
            k->slots[k->nslots].addr = (void **)where;
            k->slots[k->nslots].orig = NULL;
            k->nslots++;
        }
    }
}

static void scan_relocs(struct icpt *ic, ElfW(Addr) base, const ElfW(Rela) * r, size_t bytes,
                        const ElfW(Sym) * symtab, const char *strtab)
{
    for (size_t i = 0; i < bytes / sizeof(*r); i++) {
        unsigned long type = ELF64_R_TYPE(r[i].r_info);
        unsigned long sym = ELF64_R_SYM(r[i].r_info);
        if ((type != R_JUMP_SLOT && type != R_GLOB_DAT) || sym == 0) continue;
        note_slot(ic, strtab + symtab[sym].st_name, base + r[i].r_offset);
    }
}

/* true if the NUL-delimited string str is in one of the main program's
 * read-only segments (where the compiler puts string literals). */
static bool has_string(const struct main_prog *m, const char *str)
{
    char needle[48];
    int n = snprintf(needle, sizeof(needle), "%c%s", '\0', str);
    if (n <= 1 || (size_t)n >= sizeof(needle)) return false;
    for (ElfW(Half) i = 0; i < m->phnum; i++) {
        const ElfW(Phdr) *p = &m->phdr[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_R) || (p->p_flags & PF_W)) continue;
        /* the terminating NUL of needle is part of the match */
        if (memmem((const void *)(m->base + p->p_vaddr), p->p_filesz, needle, (size_t)n + 1u) !=
            NULL)
            return true;
    }
    return false;
}

/* Fills ic->version with the known version string the executable contains;
 * false if none (or if the test hook's extra string is missing). */
static bool find_version(struct icpt *ic, const struct main_prog *m, const char *extra)
{
    for (size_t v = 0; v < sizeof(known_versions) / sizeof(known_versions[0]); v++) {
        if (has_string(m, known_versions[v])) {
            snprintf(ic->version, sizeof(ic->version), "%s", known_versions[v]);
            break;
        }
    }
    if (ic->version[0] == '\0') return false;
    return extra == NULL || extra[0] == '\0' || has_string(m, extra);
}

/* Whether writing slot needs an mprotect, and what to restore: RELRO pages
 * (read-only once relocated, e.g. BIND_NOW builds) and pages of segments
 * mapped without PF_W do; the lazy-binding .got.plt of a writable segment
 * does not. */
static void slot_protection(const struct icpt *ic, const struct main_prog *m, struct got_slot *sl)
{
    ElfW(Addr) a = (ElfW(Addr))sl->addr;
    sl->mprot = true;
    sl->restore_prot = PROT_READ;
    if (a >= ic->relro_start && a < ic->relro_end) return;
    for (ElfW(Half) i = 0; i < m->phnum; i++) {
        const ElfW(Phdr) *p = &m->phdr[i];
        ElfW(Addr) lo = m->base + p->p_vaddr;
        if (p->p_type != PT_LOAD || a < lo || a >= lo + p->p_memsz) continue;
        if (p->p_flags & PF_W) {
            sl->mprot = false;
        } else {
            sl->restore_prot =
                ((p->p_flags & PF_R) ? PROT_READ : 0) | ((p->p_flags & PF_X) ? PROT_EXEC : 0);
        }
        return;
    }
}

/* Reads the main program's dynamic section: every GOT slot of our symbols,
 * BIND_NOW, the RELRO range. Returns 0 or -1 after logging why. */
static int find_slots(struct icpt *ic, const struct main_prog *m)
{
    const ElfW(Dyn) *dyn = NULL;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *jmprel = NULL, *rela = NULL;
    size_t pltrelsz = 0, relasz = 0;
    long pltrel = DT_RELA;
    for (ElfW(Half) i = 0; i < m->phnum; i++) {
        const ElfW(Phdr) *p = &m->phdr[i];
        if (p->p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(m->base + p->p_vaddr);
        if (p->p_type == PT_GNU_RELRO) {
            ic->relro_start = m->base + p->p_vaddr;
            ic->relro_end = ic->relro_start + p->p_memsz;
        }
    }
    if (dyn == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: refusing to start: the mosquitto executable has "
                                           "no dynamic section (statically linked?)");
        return -1;
    }
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB:
            symtab = (const ElfW(Sym) *)dyn_ptr(m->base, dyn->d_un.d_ptr);
            break;
        case DT_STRTAB:
            strtab = (const char *)dyn_ptr(m->base, dyn->d_un.d_ptr);
            break;
        case DT_JMPREL:
            jmprel = (const ElfW(Rela) *)dyn_ptr(m->base, dyn->d_un.d_ptr);
            break;
        case DT_PLTRELSZ:
            pltrelsz = dyn->d_un.d_val;
            break;
        case DT_PLTREL:
            pltrel = (long)dyn->d_un.d_val;
            break;
        case DT_RELA:
            rela = (const ElfW(Rela) *)dyn_ptr(m->base, dyn->d_un.d_ptr);
            break;
        case DT_RELASZ:
            relasz = dyn->d_un.d_val;
            break;
        case DT_FLAGS:
            if (dyn->d_un.d_val & DF_BIND_NOW) ic->bind_now = true;
            break;
        case DT_FLAGS_1:
            if (dyn->d_un.d_val & DF_1_NOW) ic->bind_now = true;
            break;
        default:
            break;
        }
    }
    if (symtab == NULL || strtab == NULL || pltrel != DT_RELA) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: refusing to start: cannot read the mosquitto "
                                           "executable's symbol or relocation tables");
        return -1;
    }
    if (jmprel != NULL) scan_relocs(ic, m->base, jmprel, pltrelsz, symtab, strtab);
    if (rela != NULL) scan_relocs(ic, m->base, rela, relasz, symtab, strtab);
    for (unsigned h = 0; h < H__COUNT; h++) {
        for (unsigned k = 0; k < ic->hooks[h].nslots; k++)
            slot_protection(ic, m, &ic->hooks[h].slots[k]);
    }
    for (unsigned h = 0; h < H__COUNT; h++) {
        if (ic->hooks[h].name != NULL && ic->hooks[h].required && ic->hooks[h].nslots == 0) {
            mosquitto_log_printf(MOSQ_LOG_ERR,
                                 "giz: refusing to start: mosquitto %s has no relocation for "
                                 "%s(), so the plugin cannot see client reads (PINGREQ limit, "
                                 "keepalive clamp, connection caps would be off)%s",
                                 ic->version, ic->hooks[h].name,
                                 h == H_TEST ? " [plugin_opt_test_require_symbol]" : "");
            return -1;
        }
    }
    return 0;
}

/* Writes value into a GOT slot, making a read-only (RELRO) page writable
 * for the write only and restoring its protection. Returns 0 or -1 (errno
 * from mprotect). */
static int got_write(const struct got_slot *sl, void *value)
{
    ElfW(Addr) a = (ElfW(Addr))sl->addr;
    long pg = sysconf(_SC_PAGESIZE);
    void *page = (void *)(a & ~((ElfW(Addr))pg - 1u));
    if (sl->mprot && mprotect(page, (size_t)pg, PROT_READ | PROT_WRITE) != 0) return -1;
    __atomic_store_n(sl->addr, value, __ATOMIC_SEQ_CST);
    if (sl->mprot && mprotect(page, (size_t)pg, sl->restore_prot) != 0) return -1;
    return 0;
}

static void unpatch(struct icpt *ic)
{
    for (unsigned h = 0; h < H__COUNT; h++) {
        struct hook *k = &ic->hooks[h];
        for (unsigned s = 0; s < k->nslots; s++) {
            if (k->slots[s].orig != NULL) {
                if (got_write(&k->slots[s], k->slots[s].orig) != 0)
                    mosquitto_log_printf(MOSQ_LOG_ERR,
                                         "giz: cannot restore the GOT entry of %s: %s", k->name,
                                         strerror(errno));
                k->slots[s].orig = NULL;
            }
        }
    }
}

static int patch(struct icpt *ic)
{
    for (unsigned h = 0; h < H__COUNT; h++) {
        struct hook *k = &ic->hooks[h];
        if (k->wrapper == NULL) continue; /* checked, not patched */
        for (unsigned s = 0; s < k->nslots; s++) {
            void *orig = __atomic_load_n(k->slots[s].addr, __ATOMIC_SEQ_CST);
            if (got_write(&k->slots[s], k->wrapper) != 0) {
                mosquitto_log_printf(MOSQ_LOG_ERR,
                                     "giz: refusing to start: cannot write the GOT entry of %s: %s",
                                     k->name, strerror(errno));
                unpatch(ic);
                return -1;
            }
            k->slots[s].orig = orig;
        }
    }
    return 0;
}

static void *real_sym(const char *name)
{
    void *p = dlsym(RTLD_DEFAULT, name);
    if (p == NULL)
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: refusing to start: %s() not found in the process",
                             name);
    return p;
}

static void state_free(struct icpt *ic)
{
    if (ic == NULL) return;
    for (size_t fd = 0; fd < ic->nconns_cap; fd++) {
        if (ic->conns[fd] != NULL) conn_free(ic, (int)fd);
    }
    free(ic->conns);
    giz_pool_destroy(&ic->conn_pool); /* every record was freed just above */
    giz_map_free(&ic->per_addr, NULL);
    if (ic->reserve_fd >= 0) close(ic->reserve_fd);
    free(ic);
}

int intercept__start(struct gizp *g)
{
    struct icpt *ic;
    struct main_prog m = {0, NULL, 0, false};
    const struct gizp_config *cfg = &g->cfg;
    if (icpt != NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: refusing to start: the plugin is loaded twice "
                                           "(per_listener_settings must be false)");
        return -1;
    }
    ic = calloc(1, sizeof(*ic));
    if (ic == NULL) return -1;
    ic->g = g;
    giz_pool_init(&ic->conn_pool, sizeof(struct iconn));
    ic->reserve_fd = -1;
    ic->hooks[H_READ] = (struct hook){"read", true, (void *)w_read, {{0}}, 0};
    ic->hooks[H_SSL_READ] = (struct hook){"SSL_read", true, (void *)w_ssl_read, {{0}}, 0};
    ic->hooks[H_ACCEPT] = (struct hook){"accept", true, (void *)w_accept, {{0}}, 0};
    ic->hooks[H_CLOSE] = (struct hook){"close", true, (void *)w_close, {{0}}, 0};
    ic->hooks[H_ACCEPT4] = (struct hook){"accept4", false, (void *)w_accept4, {{0}}, 0};
    ic->hooks[H_EPOLL_WAIT] = (struct hook){"epoll_wait", false, (void *)w_epoll_wait, {{0}}, 0};
    /* test hook: one more required symbol, checked but not patched */
    ic->hooks[H_TEST] = (struct hook){
        cfg->test_require_symbol[0] ? cfg->test_require_symbol : NULL, true, NULL, {{0}}, 0};
    if (giz_map_init(&ic->per_addr) != 0) goto fail;
    dl_iterate_phdr(phdr_cb, &m);
    if (!m.found) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: refusing to start: cannot find the main program");
        goto fail;
    }
    if (!find_version(ic, &m, cfg->test_require_version)) {
        mosquitto_log_printf(
            MOSQ_LOG_ERR,
            "giz: refusing to start: this mosquitto build is not one the plugin's read "
            "interposition was verified against (looked for the version string %s or %s%s%s in "
            "the executable); see plugin/DESIGN.md, \"Supported mosquitto builds\"",
            known_versions[0], known_versions[1], cfg->test_require_version[0] ? " and " : "",
            cfg->test_require_version);
        goto fail;
    }
    if (find_slots(ic, &m) != 0) goto fail;
    ic->real_read = (read_t)real_sym("read");
    ic->real_ssl_read = (ssl_read_t)real_sym("SSL_read");
    ic->real_ssl_get_fd = (ssl_get_fd_t)real_sym("SSL_get_fd");
    ic->real_accept = (accept_t)real_sym("accept");
    ic->real_accept4 = (accept4_t)real_sym("accept4");
    ic->real_close = (close_t)real_sym("close");
    ic->real_epoll_wait = (epoll_wait_t)real_sym("epoll_wait");
    if (ic->real_read == NULL || ic->real_ssl_read == NULL || ic->real_ssl_get_fd == NULL ||
        ic->real_accept == NULL || ic->real_accept4 == NULL || ic->real_close == NULL ||
        ic->real_epoll_wait == NULL)
        goto fail;
    ic->lim.ping_max = cfg->ping_max;
    ic->lim.window_ms = cfg->ping_window_ms;
    ic->lim.keepalive_max = (uint16_t)cfg->keepalive_max;
    ic->lim.max_packet = (uint32_t)cfg->max_packet;
    ic->lim.now_ms = now_cb;
    ic->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ic->fd_high = fd_high_now();
    ic->last_sweep_ms = ic->refuse_window_ms = (int64_t)giz_mono_ms();
    icpt = ic; /* before patching: the wrappers may run as soon as they are in */
    if (patch(ic) != 0) {
        icpt = NULL;
        goto fail;
    }
    g->icpt = ic;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "giz: reading client sockets through the plugin: mosquitto %s (%s), "
                         "%u GOT entries (read, SSL_read, accept%s, close%s)",
                         ic->version,
                         ic->bind_now ? "BIND_NOW, RELRO pages re-protected" : "lazy binding",
                         ic->hooks[H_READ].nslots + ic->hooks[H_SSL_READ].nslots +
                             ic->hooks[H_ACCEPT].nslots + ic->hooks[H_CLOSE].nslots +
                             ic->hooks[H_ACCEPT4].nslots + ic->hooks[H_EPOLL_WAIT].nslots,
                         ic->hooks[H_ACCEPT4].nslots ? ", accept4" : "",
                         ic->hooks[H_EPOLL_WAIT].nslots ? ", epoll_wait" : "");
    return 0;
fail:
    state_free(ic);
    return -1;
}

void intercept__stop(struct gizp *g)
{
    struct icpt *ic = g->icpt;
    if (ic == NULL) return;
    unpatch(ic);
    icpt = NULL;
    g->icpt = NULL;
    state_free(ic);
}
