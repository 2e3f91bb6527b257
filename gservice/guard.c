/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Protections of giz-gservice against hostile clients, beside the per-address
 * connection cap libmicrohttpd enforces itself (GIZ_HTTP_PER_IP_LIMIT):
 *  - a deadline for a complete request head (GIZ_HTTP_HEAD_TIMEOUT):
 *    libmicrohttpd's own timeout is per inactivity, so a client sending a
 *    byte every few seconds (slowloris) holds its connection forever. Every
 *    connection is tracked from libmicrohttpd's "started" to its "closed"
 *    notification with the time by which its current request head must be
 *    complete; a reaper thread shuts down the sockets that miss it (the
 *    event loop then closes them as it would any peer that hung up). The
 *    head of the next request on a kept-alive connection gets a new deadline.
 *  - a throttle on wrong admin tokens per client address (GIZ_ADMIN_FAIL_LIMIT
 *    per minute): past it, admin calls from that address get 429 with
 *    Retry-After before any token is checked; other addresses are unaffected.
 *  - a rate limit on libmicrohttpd's log lines (one line per message text per
 *    10 s, with the count of the ones held back), so a flood that makes it
 *    refuse thousands of connections a second writes a few lines, not millions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "giz/log.h"
#include "gservice.h"

#define REAP_INTERVAL_MS 250
#define LOG_INTERVAL_US (10u * 1000000u)
#define FAIL_WINDOW_US (60u * 1000000u)

/* One open connection of either daemon. */
struct gs_conn {
    struct gs_conn *prev, *next;
    int fd;
    atomic_uint_fast64_t deadline_us; /* monotonic; 0 = no head pending */
};

static uint64_t head_timeout_us(const struct gs_server *srv)
{
    return (uint64_t)srv->cfg.head_timeout * 1000000u;
}

/* ---- connection tracking ---------------------------------------------------- */

void gs_guard_notify_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode code)
{
    struct gs_server *srv = cls;
    struct gs_guard *g = &srv->guard;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct gs_conn *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (c == NULL) return; /* untracked: only the inactivity timeout applies */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci != NULL ? ci->connect_fd : -1;
        uint64_t to = head_timeout_us(srv);
        atomic_store(&c->deadline_us, to ? gs_now_us() + to : 0);
        pthread_mutex_lock(&g->mu);
        c->next = g->head;
        if (g->head != NULL) g->head->prev = c;
        g->head = c;
        g->n_conns++;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    struct gs_conn *c = *socket_context;
    *socket_context = NULL;
    if (c == NULL) return;
    /* libmicrohttpd closes the socket after this returns: while the reaper
     * holds the lock, a listed fd is still this connection's */
    pthread_mutex_lock(&g->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    g->n_conns--;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

static struct gs_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return ci != NULL ? ci->socket_context : NULL;
}

void gs_guard_head_done(struct MHD_Connection *conn)
{
    struct gs_conn *c = conn_of(conn);
    if (c != NULL) atomic_store(&c->deadline_us, 0);
}

void gs_guard_head_wait(struct gs_server *srv, struct MHD_Connection *conn)
{
    struct gs_conn *c = conn_of(conn);
    uint64_t to = head_timeout_us(srv);
    if (c != NULL && to != 0) atomic_store(&c->deadline_us, gs_now_us() + to);
}

/* ---- libmicrohttpd log limiter -------------------------------------------------- */

/* Writes the "held back" line for the current message. Caller holds lmu. */
static void log_flush_locked(struct gs_guard *g)
{
    if (g->log_held > 0)
        giz_log(GIZ_LOG_WARN, "libmicrohttpd: %s (%" PRIu64 " more in %" PRIu64 " s)", g->log_last,
                g->log_held, (gs_now_us() - g->log_last_us + 500000u) / 1000000u);
    g->log_held = 0;
}

void gs_guard_mhd_log(struct gs_server *srv, const char *msg)
{
    struct gs_guard *g = &srv->guard;
    uint64_t now = gs_now_us();
    pthread_mutex_lock(&g->lmu);
    if (g->log_last_us != 0 && now - g->log_last_us < LOG_INTERVAL_US &&
        strncmp(msg, g->log_last, sizeof g->log_last - 1) == 0) {
        g->log_held++;
        pthread_mutex_unlock(&g->lmu);
        return;
    }
    log_flush_locked(g);
    snprintf(g->log_last, sizeof g->log_last, "%s", msg);
    g->log_last_us = now;
    pthread_mutex_unlock(&g->lmu);
    giz_log(GIZ_LOG_WARN, "libmicrohttpd: %s", msg);
}

/* ---- reaper ------------------------------------------------------------------ */

static void reap_once(struct gs_server *srv)
{
    struct gs_guard *g = &srv->guard;
    uint64_t now = gs_now_us();
    unsigned cut = 0;
    pthread_mutex_lock(&g->mu);
    for (struct gs_conn *c = g->head; c != NULL; c = c->next) {
        uint64_t d = atomic_load(&c->deadline_us);
        if (d == 0 || d > now || c->fd < 0) continue;
        atomic_store(&c->deadline_us, 0); /* once; closing is up to the event loop */
        shutdown(c->fd, SHUT_RDWR);
        cut++;
    }
    pthread_mutex_unlock(&g->mu);
    if (cut > 0) {
        atomic_fetch_add(&srv->metrics.head_timeouts, cut);
        g->cut_pending += cut;
    }
    if (g->cut_pending > 0 && now - g->cut_reported_us >= LOG_INTERVAL_US) {
        giz_log(GIZ_LOG_WARN,
                "closed %" PRIu64 " connection(s) without a complete request head after %u s "
                "(GIZ_HTTP_HEAD_TIMEOUT; slow or hostile clients)",
                g->cut_pending, srv->cfg.head_timeout);
        g->cut_pending = 0;
        g->cut_reported_us = now;
    }
    pthread_mutex_lock(&g->lmu);
    if (g->log_held > 0 && now - g->log_last_us >= LOG_INTERVAL_US) {
        log_flush_locked(g);
        g->log_last_us = 0;
    }
    pthread_mutex_unlock(&g->lmu);
}

static void *reaper_main(void *arg)
{
    struct gs_server *srv = arg;
    struct gs_guard *g = &srv->guard;
    pthread_mutex_lock(&g->stop_mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += REAP_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->stop_cv, &g->stop_mu, &ts);
        if (g->stop) break;
        pthread_mutex_unlock(&g->stop_mu);
        reap_once(srv);
        pthread_mutex_lock(&g->stop_mu);
    }
    pthread_mutex_unlock(&g->stop_mu);
    return NULL;
}

/* ---- admin-token throttle ----------------------------------------------------- */

/* Slot of `ip` (FNV-1a); a slot holds one address, the newest one to fail. */
static struct gs_fail_slot *fail_slot(struct gs_guard *g, const char *ip)
{
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &g->fails[h % GS_FAIL_SLOTS];
}

unsigned gs_guard_admin_blocked(struct gs_server *srv, const char *ip)
{
    struct gs_guard *g = &srv->guard;
    unsigned wait_s = 0;
    if (srv->cfg.admin_fail_limit == 0) return 0;
    uint64_t now = gs_now_us();
    pthread_mutex_lock(&g->amu);
    struct gs_fail_slot *s = fail_slot(g, ip);
    if (strcmp(s->ip, ip) == 0 && now - s->window_start_us < FAIL_WINDOW_US &&
        s->failures >= srv->cfg.admin_fail_limit) {
        uint64_t left = FAIL_WINDOW_US - (now - s->window_start_us);
        wait_s = (unsigned)((left + 999999u) / 1000000u);
    }
    pthread_mutex_unlock(&g->amu);
    return wait_s;
}

void gs_guard_admin_failed(struct gs_server *srv, const char *ip)
{
    struct gs_guard *g = &srv->guard;
    if (srv->cfg.admin_fail_limit == 0) return;
    uint64_t now = gs_now_us();
    bool report = false;
    pthread_mutex_lock(&g->amu);
    struct gs_fail_slot *s = fail_slot(g, ip);
    if (strcmp(s->ip, ip) != 0 || now - s->window_start_us >= FAIL_WINDOW_US) {
        snprintf(s->ip, sizeof s->ip, "%s", ip);
        s->window_start_us = now;
        s->failures = 0;
    }
    s->failures++;
    report = s->failures == srv->cfg.admin_fail_limit;
    pthread_mutex_unlock(&g->amu);
    if (report)
        giz_log(GIZ_LOG_WARN,
                "%u wrong admin tokens from %s within a minute: its admin calls get 429 for "
                "the rest of the minute (GIZ_ADMIN_FAIL_LIMIT)",
                srv->cfg.admin_fail_limit, ip);
}

/* ---- start / stop ----------------------------------------------------------- */

int gs_guard_init(struct gs_server *srv)
{
    struct gs_guard *g = &srv->guard;
    pthread_condattr_t ca;
    if (pthread_mutex_init(&g->mu, NULL) != 0 || pthread_mutex_init(&g->amu, NULL) != 0 ||
        pthread_mutex_init(&g->lmu, NULL) != 0 || pthread_mutex_init(&g->stop_mu, NULL) != 0 ||
        pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&g->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) return -1;
    g->initialized = true;
    return 0;
}

int gs_guard_start(struct gs_server *srv)
{
    struct gs_guard *g = &srv->guard;
    if (!g->initialized) return -1;
    if (pthread_create(&g->thread, NULL, reaper_main, srv) != 0) {
        giz_log(GIZ_LOG_ERR, "cannot start the request-head reaper thread");
        return -1;
    }
    g->started = true;
    return 0;
}

void gs_guard_stop(struct gs_server *srv)
{
    struct gs_guard *g = &srv->guard;
    if (g->started) {
        pthread_mutex_lock(&g->stop_mu);
        g->stop = true;
        pthread_cond_signal(&g->stop_cv);
        pthread_mutex_unlock(&g->stop_mu);
        pthread_join(g->thread, NULL);
        g->started = false;
    }
    if (g->initialized) {
        pthread_mutex_lock(&g->lmu);
        log_flush_locked(g);
        pthread_mutex_unlock(&g->lmu);
    }
}
