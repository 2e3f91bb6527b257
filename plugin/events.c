/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The broker's half of the device timeline (issue 14) and its metrics.
 *
 * Events (source "mqtt", schema/006_events.sql): connect, connack_refused,
 * subscribe, publish_in, publish_out, acl_denied, ping_limit,
 * keepalive_timeout and disconnect, each with its own JSON fields (see
 * DESIGN.md "Device timeline"). The hooks (auth.c, acl.c, push.c,
 * presence.c, intercept.c) only format the fields and append one heap
 * record to a bounded queue (events_queue; a full queue drops the event and
 * counts it); no SQLite on the hot path. Every EV_FLUSH_MS the queue goes
 * down a pipe to the writer process (forked at plugin start; see struct
 * events for why not a thread), which appends the events in batches
 * (giz_store_event_append), prunes to the GService's bounds
 * (events_per_device, events_total) about once a second or every 4096
 * events, and records the drops with giz_store_event_count_dropped.
 *
 * Why a connection ended: mosquitto 2.0.11 gives MOSQ_EVT_DISCONNECT no
 * reason (always -1), but fires it right before it closes the socket
 * (src/context.c, context__disconnect), so the DISCONNECT is parked here and
 * completed by intercept.c's close wrapper, which knows how the socket's
 * reads ended (EOF, error, a guard limit), the type of the last packet (a
 * DISCONNECT packet) and how long the client had been silent (keepalive
 * timeout when that exceeds 1.5 x keepalive, mosquitto's own rule).
 *
 * Metrics: counters kept here (messages in/out by command code, ACL
 * denials, disconnect reasons, events written/dropped/pruned, outbox lag)
 * plus other modules' stats (logins, ping-limit closes, clients) are
 * rendered as Prometheus text into the broker row with every heartbeat;
 * the GService's GET /metrics appends them (one scrape, both processes).
 */
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ, close_range */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "giz/mqtt.h"
#include "events_format.h"
#include "plugin.h"

#define EV_BATCH                                                                                   \
    65536u /* events taken per writer pass (the default events_queue: a device's budget covers a   \
              whole backlog) */
#define EV_GATHER_MS 250 /* after the first event, the writer waits this long for more */
/* ... and this long while a device floods (its last pass was over a
 * device's budget): fewer passes, so fewer inserts the next prune deletes
 * (each pass inserts up to events_per_device of the flooding device). */
#define EV_FLOOD_GATHER_MS 1000
#define EV_PRUNE_EVERY_MS 1000
#define EV_IDLE_CLOSE_MS 2000 /* the writer closes its store connection after this long idle */
#define EV_PRUNE_EVERY_N 4096u
#define EV_CONN_PENDING_MAX 100000u
#define EV_FIELDS_CAP (GIZ_EVENT_FIELDS_MAX + 1)
#define EV_REFUSED_PER_S 100u
#define EV_FLUSH_MS 200        /* the broker hands its queue to the writer this often */
#define EV_OUT_MAX (16u << 20) /* bytes for the writer the pipe has not taken yet */
#define EV_READ_BUF (1u << 20)

/* One queued event. Most kinds are formatted on the broker thread (they
 * are rare: a login, a subscribe, a close) and data[] holds the fields
 * text. Publishes, one per message, are only copied (form EV_FORM_PUBLISH:
 * data[] = the topic's topic_len bytes, then the payload's first head_len
 * bytes) and the writer process formats them (evfmt__publish), only those
 * it keeps. */
enum {
    EV_FORM_TEXT = 0,
    EV_FORM_PUBLISH = 1,
    EV_FORM_DROPS = 2,  /* length = a drop count */
    EV_FORM_ONLINE = 3, /* a presence change: did, ts = unix s, length = 1 online / 0 offline */
    EV_FORM_CONN = 4    /* a device_conn row: did, data[] = struct giz_device_conn */
};
struct ev_rec {
    char did[GIZ_DID_SIZE];
    char kind[GIZ_EVENT_KIND_SIZE];
    int64_t ts;
    uint32_t cap; /* bytes of data[] */
    uint8_t form;
    int8_t qos;   /* EV_FORM_PUBLISH: -1 = no qos field */
    uint8_t from; /* EV_FORM_PUBLISH: enum evfmt_from */
    uint8_t topic_len;
    uint32_t head_len, hex; /* EV_FORM_PUBLISH: payload bytes copied / as hex */
    uint32_t superseded;    /* older events of its device this one replaced in the queue */
    uint64_t length;        /* EV_FORM_PUBLISH: the whole payload's length */
    uint64_t seq;           /* push order (the writer restores it after replacements) */
    uint64_t prev_pos;      /* queue position of its device's previous publish (flood tracking) */
    uint32_t dlen;          /* on the pipe: data[] bytes that follow the header */
    char data[];
};
/* data bytes of a new record (256 in all): a publish's topic and 64 payload
 * bytes, a connect's fields; larger ones get a record of their size */
#define EV_REC_MIN 176u
#define EV_OUT_KEEP 65536u /* pipe bytes buffer kept after a burst */

/* Flood tracking (struct ev_live's flood_* fields): the publishes a device
 * queued since the writer last took from the queue. Once they reach the
 * per-device bound, each new one replaces its device's oldest queued
 * publish in place (the writer would skip that one anyway: newest N kept),
 * so a flooding device holds at most the bound in the queue and its records
 * are reused while still warm.
 *
 * A session leaves its did_state when its DISCONNECT comes or a newer login
 * of its DID takes over: it is parked (with its DID) until its disconnect
 * event is queued. */
struct ev_parked {
    struct ev_live c;
    char did[GIZ_DID_SIZE];
};

/* A queued device_conn row. */
struct ev_conn_row {
    char did[GIZ_DID_SIZE];
    struct giz_device_conn c;
};

/* Command codes with their own message counters; slot 0 = another code,
 * the last = not a Gizwits frame. */
static const uint16_t cmd_codes[] = {0,      0x0010, 0x0011, 0x0012, 0x0090, 0x0091, 0x0093, 0x0094,
                                     0x020E, 0x020F, 0x0210, 0x0211, 0x021C, 0x021E, 0x022C};
#define CMD_SLOTS (sizeof(cmd_codes) / sizeof(cmd_codes[0]) + 1u)
#define CMD_SLOT_NONE (CMD_SLOTS - 1u)

enum { DEN_SUBSCRIBE, DEN_PUBLISH, DEN_READ, DEN__COUNT };
static const char *const den_names[DEN__COUNT] = {"subscribe", "publish", "read"};

enum {
    BYE_DISCONNECT,
    BYE_EOF,
    BYE_ERROR,
    BYE_PING,
    BYE_LIMIT,
    BYE_KEEPALIVE,
    BYE_TAKEOVER,
    BYE_KICKED,
    BYE_BROKER,
    BYE_SHUTDOWN,
    BYE__COUNT
};
static const char *const bye_names[BYE__COUNT] = {
    "disconnect", "closed_by_client", "error",  "ping_limit", "limit",
    "keepalive",  "taken_over",       "plugin", "broker",     "shutdown"};

/* Counters the writer process adds to (a shared anonymous page). */
struct ev_shared {
    _Atomic uint64_t written, pruned;
};

struct events {
    /* The writer is a process (forked at plugin start), not a thread: a
     * second thread in mosquitto's process makes every syscall and malloc of
     * the broker take the multi-threaded paths (shared descriptor table
     * reference counts, arena locks): +1.5-2 us per message measured with
     * an idle thread alone. The broker queues records here, hands them over
     * a pipe every EV_FLUSH_MS, and the writer formats and stores them. */
    pid_t child; /* the writer process, 0: none */
    int wfd;     /* the pipe's write end (non-blocking), -1: none */
    bool started, failed_start;
    int64_t first_ms;                  /* mono ms of the oldest queued record */
    char *out;                         /* serialized records the pipe has not taken yet */
    size_t out_len, out_cap, out_recs; /* out_recs: events among them (not store state) */
    int64_t out_since_ms;              /* mono ms out became non-empty */
    bool state_lost;      /* the writer died with store state in flight: presence re-writes it */
    struct ev_shared *sh; /* the writer's counters */
    struct ev_rec **ring; /* events_queue slots */
    size_t head, n, cap;
    uint64_t taken;            /* records the writer took, ever: position p (the p-th record
                                  queued, counting from 0) is in ring[p % cap] while p >= taken */
    unsigned flood_bound;      /* events_per_device (0: no replacement) */
    uint64_t unrecorded_drops; /* not yet sent to the writer (event_drops) */
    /* records of EV_REC_MIN data bytes (nearly all) come from this pool, off
     * malloc's heap: a login storm's thousands of short-lived records do not
     * leave holes between the broker's long-lived allocations, and the
     * slabs go back to the kernel once the writer has taken them */
    struct giz_pool rec_pool;
    struct ev_conn_row *rows;
    size_t nrows, rows_cap, rows_in_flight;
    /* A DID's live session is in presence's did_state (struct ev_live; a
     * device's client id is its DID, auth.c refuses anything else): no
     * record or map of its own per idle device. */
    size_t nlive;
    struct ev_parked **old; /* sessions taken over by a newer login of their DID, until
                             their DISCONNECT (owned; a few at a time) */
    size_t nold, old_cap;
    struct ev_parked *closing; /* DISCONNECT seen, waiting for the socket's close */
    /* the last CONNECT intercept.c gathered (BASIC_AUTH follows at once) */
    char seen_cid[GIZ_CLIENTID_SIZE > GIZ_DID_SIZE ? GIZ_CLIENTID_SIZE : GIZ_DID_SIZE];
    char seen_peer[GIZP_PEER_SIZE];
    int seen_keepalive;
    /* counters (metrics) */
    uint64_t msgs_in[CMD_SLOTS], msgs_out[CMD_SLOTS];
    uint64_t denied[DEN__COUNT];
    uint64_t bye[BYE__COUNT];
    uint64_t dropped;                /* queue full, oversize, no memory (main thread) */
    uint64_t pushed, pushed_at_tick; /* events queued (main thread): a burst is over when a
                                        TICK finds none since the last one */
    int64_t refused_window_ms;       /* connack_refused events: at most EV_REFUSED_PER_S a second */
    unsigned refused_in_window;
    int64_t outbox_lag_s, outbox_lag_max_s; /* -1 = no item yet */
    struct rate_limit rl_acl, rl_store;
};

/* ---- small helpers ------------------------------------------------------------ */

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned cmd_slot(uint16_t cmd)
{
    for (unsigned i = 1; i < CMD_SLOTS - 1u; i++)
        if (cmd_codes[i] == cmd) return i;
    return 0;
}

/* A record with at least need bytes of data (from the pool when
 * EV_REC_MIN do), or NULL (events off, no memory). */
static struct ev_rec *rec_get(struct events *ev, size_t need)
{
    struct ev_rec *r;
    if (!ev->started || need > UINT32_MAX) return NULL;
    if (need <= EV_REC_MIN) {
        r = giz_pool_alloc(&ev->rec_pool);
        if (r != NULL) r->cap = EV_REC_MIN;
        return r;
    }
    r = malloc(sizeof(*r) + need);
    if (r != NULL) r->cap = (uint32_t)need;
    return r;
}

static void rec_free(struct events *ev, struct ev_rec *r)
{
    if (r != NULL && r->cap == EV_REC_MIN)
        giz_pool_free(&ev->rec_pool, r);
    else
        free(r);
}

/* Queues r as conn's newest publish, replacing its oldest queued
 * one once conn has the bound queued in this epoch (see struct ev_parked).
 * False: r goes through the plain queue. */
static bool flood_queue(struct events *ev, struct ev_live *conn, struct ev_rec *r)
{
    uint32_t bound = ev->flood_bound;
    if (conn->flood_epoch != ev->taken) { /* the writer took: all positions are new */
        conn->flood_epoch = ev->taken;
        conn->flood_count = 0;
    }
    if (conn->flood_count >= bound && conn->flood_pos != NULL) {
        uint64_t pos = conn->flood_pos[conn->flood_next];
        struct ev_rec **slot = &ev->ring[pos % ev->cap];
        struct ev_rec *old = *slot;
        r->superseded = old->superseded < UINT32_MAX ? old->superseded + 1u : UINT32_MAX;
        r->seq = ev->pushed++;
        r->prev_pos = UINT64_MAX;
        *slot = r;
        conn->flood_next = (uint16_t)((conn->flood_next + 1u) % bound);
        rec_free(ev, old);
        return true;
    }
    if (ev->n >= ev->cap) return false; /* a drop */
    r->prev_pos = conn->flood_count > 0 ? conn->flood_last : UINT64_MAX;
    conn->flood_last = ev->taken + ev->n;
    if (conn->flood_count < bound && ++conn->flood_count == bound) {
        /* its bound is queued: remember where, oldest first, by the chain */
        if (conn->flood_pos == NULL) conn->flood_pos = malloc(bound * sizeof(uint64_t));
        if (conn->flood_pos != NULL) {
            uint64_t pos = conn->flood_last;
            ev->ring[pos % ev->cap] = r; /* (its slot; stored again below) */
            for (uint32_t i = bound; i-- > 0;) {
                conn->flood_pos[i] = pos;
                pos = ev->ring[pos % ev->cap]->prev_pos;
            }
            conn->flood_next = 0;
        }
    }
    return false;
}

/* Stamps r (did, kind, now) and queues it; a full queue drops it (freed)
 * and counts the drop. r NULL: only counts a drop. */
static void rec_queue(struct events *ev, struct ev_rec *r, const char *did, const char *kind,
                      struct ev_live *conn)
{
    bool queued = false;
    if (r != NULL) {
        size_t dl = strnlen(did, GIZ_DID_SIZE - 1), kl = strnlen(kind, GIZ_EVENT_KIND_SIZE - 1);
        memcpy(r->did, did, dl);
        r->did[dl] = '\0';
        memcpy(r->kind, kind, kl);
        r->kind[kl] = '\0';
        r->ts = unix_ms();
    }
    if (ev->n == 0) ev->first_ms = (int64_t)giz_mono_ms();
    if (r != NULL && conn != NULL && ev->flood_bound > 0 && flood_queue(ev, conn, r)) {
        queued = true;
    } else if (r != NULL && ev->n < ev->cap) {
        r->seq = ev->pushed++;
        ev->ring[(ev->head + ev->n) % ev->cap] = r;
        ev->n++;
        queued = true;
    } else if (ev->started) {
        ev->unrecorded_drops++;
    }
    if (!queued) {
        rec_free(ev, r);
        ev->dropped++;
    }
}

/* Queues one event with its fields text (copied); an oversize text, a
 * full queue or no memory drops it and counts the drop. */
static void ev_push(struct gizp *g, const char *did, const char *kind, struct evjson *j)
{
    struct events *ev = g->events;
    struct ev_rec *r = j->over ? NULL : rec_get(ev, j->n + 1u);
    if (r != NULL) {
        r->form = EV_FORM_TEXT;
        r->superseded = 0;
        memcpy(r->data, j->p, j->n + 1u);
    }
    if (r != NULL || ev->started) rec_queue(ev, r, did, kind, NULL);
}

static bool on(const struct gizp *g)
{
    return g->events != NULL && g->events->started;
}

/* Queues a publish event as its raw record (topic, the payload's first
 * bytes, lengths): the per-message cost on mosquitto's thread is this copy;
 * the writer formats it. qos -1: none; from: enum evfmt_from. */
static void ev_push_publish(struct gizp *g, struct ev_live *conn, const char *did, const char *kind,
                            const char *topic, const void *payload, size_t len, int qos, int from)
{
    struct events *ev = g->events;
    size_t tl = topic ? strnlen(topic, EVFMT_TOPIC_MAX) : 0;
    size_t hex = len < g->cfg.events_payload ? len : g->cfg.events_payload;
    size_t head = hex > EVFMT_HEAD_MIN ? hex : EVFMT_HEAD_MIN;
    struct ev_rec *r;
    if (payload == NULL) len = 0;
    if (head > len) head = len;
    if (hex > head) hex = head;
    r = rec_get(ev, tl + head);
    if (r != NULL) {
        r->form = EV_FORM_PUBLISH;
        r->qos = (int8_t)(qos < 0 ? -1 : qos > 2 ? 2 : qos);
        r->from = (uint8_t)from;
        r->topic_len = (uint8_t)tl;
        r->head_len = (uint32_t)head;
        r->hex = (uint32_t)hex;
        r->length = len;
        r->superseded = 0;
        if (tl > 0) memcpy(r->data, topic, tl);
        if (head > 0) memcpy(r->data + tl, payload, head);
    }
    rec_queue(ev, r, did, kind, conn);
}

/* ---- connections ---------------------------------------------------------------- */

/* ds's live session, or NULL. */
static struct ev_live *live_of(struct did_state *ds)
{
    return ds != NULL && ds->ev.ctx != NULL ? &ds->ev : NULL;
}

static struct ev_live *live_get(struct gizp *g, const char *did)
{
    return live_of(presence__did(g, did));
}

/* Records why the plugin ends a session (a copy: a few per kick, none per
 * idle device). Without memory the reason falls back to the default. */
static void conn_set_why(struct ev_live *c, const char *why)
{
    char *w = strdup(why);
    if (w == NULL) return;
    free(c->why);
    c->why = w;
}

static void parked_free(struct ev_parked *p)
{
    if (p != NULL) {
        free(p->c.why);
        free(p->c.flood_pos);
    }
    free(p);
}

/* Takes ds's live session out of it (NULL without memory: the session
 * then ends without its event). */
static struct ev_parked *park(struct gizp *g, struct did_state *ds)
{
    struct ev_parked *p = malloc(sizeof(*p));
    if (p != NULL) {
        p->c = ds->ev; /* its owned pointers go with it */
        memcpy(p->did, ds->did, sizeof(p->did));
    } else {
        free(ds->ev.why);
        free(ds->ev.flood_pos);
    }
    memset(&ds->ev, 0, sizeof(ds->ev));
    g->events->nlive--;
    return p;
}

/* Parks ds's live session with the taken-over ones until its DISCONNECT. */
static void park_old(struct gizp *g, struct did_state *ds, const char *why)
{
    struct events *ev = g->events;
    struct ev_parked *p = park(g, ds), **o;
    if (p == NULL) return;
    o = giz_array_reserve(ev->old, &ev->old_cap, ev->nold + 1u, sizeof(*o), 4u,
                          EV_CONN_PENDING_MAX);
    if (o == NULL) { /* no memory: it ends without its event */
        parked_free(p);
        return;
    }
    ev->old = o;
    ev->old[ev->nold++] = p;
    if (why != NULL) conn_set_why(&p->c, why);
}

void events__connect_seen(struct gizp *g, const char *client_id, unsigned keepalive_asked,
                          const char *peer)
{
    struct events *ev = g->events;
    if (ev == NULL) return;
    snprintf(ev->seen_cid, sizeof(ev->seen_cid), "%s", client_id ? client_id : "");
    snprintf(ev->seen_peer, sizeof(ev->seen_peer), "%s", peer ? peer : "");
    ev->seen_keepalive = (int)keepalive_asked;
}

static bool state_conn(struct gizp *g, const char *did, const struct giz_device_conn *c);

static void queue_conn_row(struct gizp *g, const char *did, const struct giz_device_conn *c)
{
    struct events *ev = g->events;
    struct ev_conn_row *rows;
    if (state_conn(g, did, c)) return;
    for (size_t i = ev->rows_in_flight; i < ev->nrows; i++) {
        if (strcmp(ev->rows[i].did, did) == 0) { /* a newer login of the same DID */
            ev->rows[i].c = *c;
            return;
        }
    }
    if (ev->nrows >= EV_CONN_PENDING_MAX) return;
    rows = giz_array_reserve(ev->rows, &ev->rows_cap, ev->nrows + 1u, sizeof(*rows), 64u,
                             EV_CONN_PENDING_MAX);
    if (rows == NULL) return;
    ev->rows = rows;
    snprintf(ev->rows[ev->nrows].did, GIZ_DID_SIZE, "%s", did);
    ev->rows[ev->nrows].c = *c;
    ev->nrows++;
}

void events__connect(struct gizp *g, const struct mosquitto *ctx, const char *did)
{
    struct events *ev = g->events;
    struct giz_device_conn dc;
    struct did_state *ds;
    const char *addr;
    char buf[512];
    struct evjson j;
    if (ev == NULL) return;
    memset(&dc, 0, sizeof(dc));
    addr = mosquitto_client_address(ctx);
    if (strcmp(ev->seen_cid, did) == 0 && ev->seen_peer[0]) {
        snprintf(dc.peer, sizeof(dc.peer), "%s", ev->seen_peer);
        dc.keepalive_asked = ev->seen_keepalive;
    } else {
        snprintf(dc.peer, sizeof(dc.peer), "%s", addr ? addr : "?");
        dc.keepalive_asked = -1;
    }
    dc.keepalive = mosquitto_client_keepalive(ctx);
    dc.protocol_level = mosquitto_client_protocol_version(ctx);
    dc.clean_session = mosquitto_client_clean_session(ctx);
    dc.connected_at_ms = unix_ms();
    queue_conn_row(g, did, &dc);

    ds = presence__did(g, did); /* presence__device_online made it (NULL: out of memory) */
    if (ds != NULL && ds->ev.ctx != ctx) {
        if (ds->ev.ctx != NULL) park_old(g, ds, "taken over by a new login");
        ds->ev.ctx = ctx;
        ev->nlive++;
    }
    if (ds != NULL) {
        ds->ev.since_ms = dc.connected_at_ms;
        ds->ev.keepalive = (uint16_t)(dc.keepalive > 0 ? dc.keepalive : 0);
        free(ds->ev.why);
        ds->ev.why = NULL;
    }
    if (!on(g)) return;
    evjson__open(&j, buf, sizeof(buf));
    evjson__str(&j, "peer", dc.peer);
    evjson__int(&j, "protocol_level", dc.protocol_level);
    if (dc.keepalive_asked >= 0) evjson__int(&j, "keepalive_asked", dc.keepalive_asked);
    evjson__int(&j, "keepalive", dc.keepalive);
    evjson__bool(&j, "clean_session", dc.clean_session);
    evjson__close(&j);
    ev_push(g, did, "connect", &j);
}

void events__refused(struct gizp *g, const struct mosquitto *ctx, const char *why)
{
    const char *user = mosquitto_client_username(ctx), *cid = mosquitto_client_id(ctx);
    const char *did = NULL, *addr;
    char buf[512];
    struct evjson j;
    if (!on(g)) return;
    if (user != NULL && giz_did_valid(user))
        did = user;
    else if (cid != NULL && giz_did_valid(cid))
        did = cid;
    if (did == NULL) return; /* not a device: nothing to put on a timeline */
    /* a login flood (any DIDs) must not push real history out of the total cap */
    int64_t now = (int64_t)giz_mono_ms();
    if (now - g->events->refused_window_ms >= 1000) {
        g->events->refused_window_ms = now;
        g->events->refused_in_window = 0;
    }
    if (g->events->refused_in_window >= EV_REFUSED_PER_S) {
        g->events->dropped++;
        g->events->unrecorded_drops++;
        return;
    }
    g->events->refused_in_window++;
    addr = mosquitto_client_address(ctx);
    evjson__open(&j, buf, sizeof(buf));
    if (g->events->seen_peer[0] && cid != NULL && strcmp(g->events->seen_cid, cid) == 0)
        evjson__str(&j, "peer", g->events->seen_peer);
    else
        evjson__str(&j, "peer", addr ? addr : "?");
    evjson__str(&j, "reason", why);
    if (cid != NULL && strcmp(cid, did) != 0) evjson__str(&j, "client_id", cid);
    evjson__close(&j);
    ev_push(g, did, "connack_refused", &j);
}

static void conn_free_rec(struct gizp *g, struct ev_parked *conn)
{
    struct events *ev = g->events;
    for (size_t i = 0; i < ev->nold; i++) {
        if (ev->old[i] == conn) {
            ev->old[i] = ev->old[--ev->nold];
            break;
        }
    }
    parked_free(conn);
}

/* Emits the disconnect (and keepalive_timeout) event of a parked context. */
static void finish_disconnect(struct gizp *g, struct ev_parked *conn, enum events_end end,
                              unsigned last_type, int64_t idle_ms, bool closed)
{
    struct events *ev = g->events;
    const char *reason;
    int bye;
    char buf[512];
    struct evjson j;
    if (end == EVENTS_END_PING) {
        reason = "ping limit", bye = BYE_PING;
    } else if (end == EVENTS_END_LIMIT) {
        reason = "guard limit", bye = BYE_LIMIT;
    } else if (last_type == GIZ_MQTT_DISCONNECT && closed) {
        reason = "client DISCONNECT", bye = BYE_DISCONNECT;
    } else if (end == EVENTS_END_EOF) {
        reason = "connection closed by the client", bye = BYE_EOF;
    } else if (end == EVENTS_END_ERROR) {
        reason = "connection error", bye = BYE_ERROR;
    } else if (conn->c.why != NULL) {
        reason = conn->c.why;
        bye = strncmp(conn->c.why, "taken over", 10) == 0   ? BYE_TAKEOVER
              : strcmp(conn->c.why, "broker shutdown") == 0 ? BYE_SHUTDOWN
                                                            : BYE_KICKED;
    } else if (closed && conn->c.keepalive > 0 &&
               idle_ms >= (int64_t)conn->c.keepalive * 1500 - 1000) {
        reason = "keepalive timeout", bye = BYE_KEEPALIVE;
    } else {
        reason = "closed by the broker", bye = BYE_BROKER;
    }
    ev->bye[bye]++;
    if (on(g) && bye == BYE_KEEPALIVE) {
        evjson__open(&j, buf, sizeof(buf));
        evjson__int(&j, "keepalive", conn->c.keepalive);
        evjson__int(&j, "idle_ms", idle_ms);
        evjson__close(&j);
        ev_push(g, conn->did, "keepalive_timeout", &j);
    }
    if (on(g)) {
        evjson__open(&j, buf, sizeof(buf));
        evjson__str(&j, "reason", reason);
        evjson__int(&j, "session_ms", unix_ms() - conn->c.since_ms);
        evjson__close(&j);
        ev_push(g, conn->did, "disconnect", &j);
    }
    conn_free_rec(g, conn);
}

void events__disconnect(struct gizp *g, const struct mosquitto *ctx)
{
    struct events *ev = g->events;
    struct ev_parked *conn = NULL;
    struct did_state *ds;
    const char *cid;
    if (ev == NULL || (cid = mosquitto_client_id(ctx)) == NULL) return;
    ds = presence__did(g, cid);
    if (ds != NULL && ds->ev.ctx == ctx) {
        conn = park(g, ds);
    } else {
        for (size_t i = 0; i < ev->nold && conn == NULL; i++) {
            if (ev->old[i]->c.ctx == ctx) {
                conn = ev->old[i];
                ev->old[i] = ev->old[--ev->nold];
            }
        }
    }
    if (conn == NULL) return;
    if (ev->closing != NULL) {
        struct ev_parked *prev = ev->closing;
        ev->closing = NULL;
        finish_disconnect(g, prev, EVENTS_END_NONE, 0, 0, false);
    }
    ev->closing = conn;
}

void events__socket_closed(struct gizp *g, const char *client_id, enum events_end end,
                           unsigned last_type, int64_t idle_ms)
{
    struct events *ev = g->events;
    struct ev_parked *conn;
    if (ev == NULL || ev->closing == NULL || client_id == NULL) return;
    if (strcmp(ev->closing->did, client_id) != 0) return;
    conn = ev->closing;
    ev->closing = NULL;
    finish_disconnect(g, conn, end, last_type, idle_ms, true);
}

void events__kicked(struct gizp *g, const char *did, const char *why)
{
    struct ev_live *conn = g->events ? live_get(g, did) : NULL;
    if (conn != NULL) conn_set_why(conn, why);
}

void events__did_gone(struct gizp *g, struct did_state *ds)
{
    if (g->events != NULL && ds->ev.ctx != NULL) park_old(g, ds, NULL);
}

void events__ping_limit(struct gizp *g, const char *client_id, const char *peer)
{
    char buf[256];
    struct evjson j;
    if (!on(g) || client_id == NULL || !giz_did_valid(client_id)) return;
    evjson__open(&j, buf, sizeof(buf));
    evjson__str(&j, "peer", peer);
    evjson__int(&j, "ping_max", g->cfg.ping_max);
    evjson__int(&j, "window_ms", g->cfg.ping_window_ms);
    evjson__close(&j);
    ev_push(g, client_id, "ping_limit", &j);
}

/* ---- ACL: subscribe, publishes, denials ---------------------------------------- */

static void count_msg(uint64_t *slots, const void *payload, size_t len)
{
    uint16_t cmd;
    size_t body;
    if (payload != NULL && evfmt__frame_cmd(payload, len, &cmd, &body))
        slots[cmd_slot(cmd)]++;
    else
        slots[CMD_SLOT_NONE]++;
}

/* Copies s into out (cap bytes) with anything but printable ASCII as '?'
 * (a log line must not carry the client's control characters). */
static void printable_copy(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < cap; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
}

static void denied(struct gizp *g, const struct mosquitto_evt_acl_check *ed, const struct client *c)
{
    struct events *ev = g->events;
    const char *cid = mosquitto_client_id(ed->client);
    int which = ed->access == MOSQ_ACL_SUBSCRIBE ? DEN_SUBSCRIBE
                : ed->access == MOSQ_ACL_WRITE   ? DEN_PUBLISH
                                                 : DEN_READ;
    char did[GIZ_DID_SIZE], buf[1024];
    struct evjson j;
    ev->denied[which]++;
    if (which == DEN_READ) return; /* a delivery to an app after its unbind: routine */
    if (plugin__rate_ok(&ev->rl_acl, 20, "ACL denial lines")) {
        char t[201], who[GIZ_CLIENTID_SIZE + 8];
        printable_copy(ed->topic ? ed->topic : "", t, sizeof(t));
        printable_copy(cid ? cid : "?", who, sizeof(who));
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: ACL denied %s by client %s on \"%s\"%s",
                             den_names[which], who, t,
                             ed->retain && which == DEN_PUBLISH ? " (retain)" : "");
    }
    if (!on(g)) return;
    if (c != NULL && c->kind == CLIENT_DEVICE && which == DEN_SUBSCRIBE)
        return; /* its subscribe event says granted false */
    /* Only a device's own denials go on its timeline: an app (or anyone)
     * publishing to topics naming another device could otherwise push
     * that device's history out of its per-device bound. Apps' denials are
     * in the log line and the counters. */
    if (c == NULL || c->kind != CLIENT_DEVICE || c->dev == NULL) return;
    snprintf(did, sizeof(did), "%s", c->dev->did);
    evjson__open(&j, buf, sizeof(buf));
    evjson__str(&j, "access", den_names[which]);
    evjson__str(&j, "topic", ed->topic ? ed->topic : "");
    evjson__str(&j, "client", c == NULL ? "unknown" : c->kind == CLIENT_DEVICE ? "device" : "app");
    if (cid != NULL && strcmp(cid, did) != 0) evjson__str(&j, "client_id", cid);
    if (ed->retain && which == DEN_PUBLISH) evjson__bool(&j, "retain", true);
    if (which == DEN_PUBLISH && ed->payload != NULL) {
        uint16_t cmd;
        size_t body;
        char cs[8];
        if (evfmt__frame_cmd(ed->payload, ed->payloadlen, &cmd, &body)) {
            evfmt__cmd_text(cmd, cs);
            evjson__str(&j, "cmd", cs);
        }
        evjson__int(&j, "length", ed->payloadlen);
    }
    evjson__close(&j);
    ev_push(g, did, "acl_denied", &j);
}

void events__acl(struct gizp *g, const struct mosquitto_evt_acl_check *ed, const struct client *c,
                 bool allowed)
{
    struct events *ev = g->events;
    bool device = c != NULL && c->kind == CLIENT_DEVICE && c->dev != NULL;
    char buf[1536]; /* a 200-byte filter, every byte escaped */
    ;
    struct evjson j;
    if (ev == NULL || ed->access == MOSQ_ACL_UNSUBSCRIBE) return;
    if (!allowed) {
        denied(g, ed, c);
        if (!(device && ed->access == MOSQ_ACL_SUBSCRIBE)) return;
    }
    if (ed->access == MOSQ_ACL_WRITE && device) count_msg(ev->msgs_in, ed->payload, ed->payloadlen);
    if (ed->access == MOSQ_ACL_READ && device) count_msg(ev->msgs_out, ed->payload, ed->payloadlen);
    if (!device || !on(g)) return;
    switch (ed->access) {
    case MOSQ_ACL_SUBSCRIBE:
        evjson__open(&j, buf, sizeof(buf));
        evjson__str(&j, "filter", ed->topic);
        evjson__int(&j, "qos", ed->qos);
        evjson__bool(&j, "granted", allowed);
        evjson__close(&j);
        ev_push(g, c->dev->did, "subscribe", &j);
        return;
    case MOSQ_ACL_WRITE:
        ev_push_publish(g, live_of(c->dev), c->dev->did, "publish_in", ed->topic, ed->payload,
                        ed->payloadlen, ed->qos, EVFMT_FROM_NONE);
        return;
    case MOSQ_ACL_READ:
        ev_push_publish(g, live_of(c->dev), c->dev->did, "publish_out", ed->topic, ed->payload,
                        ed->payloadlen, ed->qos, EVFMT_FROM_NONE);
        return;
    default:
        return;
    }
}

void events__cloud_publish(struct gizp *g, const char *did, const char *topic, const void *payload,
                           size_t len)
{
    struct events *ev = g->events;
    if (ev == NULL) return;
    count_msg(ev->msgs_out, payload, len);
    if (!on(g) || !giz_did_valid(did)) return;
    ev_push_publish(g, live_get(g, did), did, "publish_out", topic, payload, len, -1,
                    strncmp(topic, "app2dev/", 8) == 0 ? EVFMT_FROM_APP : EVFMT_FROM_CLOUD);
}

void events__outbox_seen(struct gizp *g, int64_t created_at)
{
    struct events *ev = g->events;
    int64_t lag;
    if (ev == NULL || created_at <= 0) return;
    lag = plugin__unix_now() - created_at;
    if (lag < 0) lag = 0;
    ev->outbox_lag_s = lag;
    if (lag > ev->outbox_lag_max_s) ev->outbox_lag_max_s = lag;
}

/* ---- the store side ---------------------------------------------------------------- */

/* The DB batch (plugin.c) writes only the device_conn rows (a few per
 * login); the events go through the writer process. */
bool events__pending(const struct gizp *g)
{
    const struct events *ev = g->events;
    return ev != NULL && ev->nrows > 0;
}

int events__write(struct gizp *g)
{
    struct events *ev = g->events;
    int rc = GIZ_OK;
    if (ev == NULL) return GIZ_OK;
    ev->rows_in_flight = ev->nrows;
    for (size_t r = 0; r < ev->rows_in_flight && rc == GIZ_OK; r++) {
        rc = giz_store_device_conn_set(g->store, ev->rows[r].did, &ev->rows[r].c);
        if (rc == GIZ_ERR_INVAL) rc = GIZ_OK; /* cannot happen (checked DIDs); never retried */
    }
    return rc;
}

void events__written(struct gizp *g)
{
    struct events *ev = g->events;
    if (ev == NULL || ev->rows_in_flight == 0) return;
    memmove(ev->rows, ev->rows + ev->rows_in_flight,
            (ev->nrows - ev->rows_in_flight) * sizeof(*ev->rows));
    ev->nrows -= ev->rows_in_flight;
    ev->rows_in_flight = 0;
    if (ev->nrows == 0 && ev->rows_cap * sizeof(*ev->rows) > GIZ_BURST_KEEP_BYTES) {
        free(ev->rows); /* after a login storm, give the memory back */
        ev->rows = NULL;
        ev->rows_cap = 0;
    }
}

void events__failed(struct gizp *g)
{
    if (g->events != NULL) g->events->rows_in_flight = 0; /* kept for the next batch */
}

/* ---- the writer process ------------------------------------------------------ */
/* Its own store connection; it never calls mosquitto (the broker's state in
 * it is a stale copy): its log lines go to stderr (child_log_sink). */

/* A store-state record the writer has read and not yet written. */
struct ev_state {
    char did[GIZ_DID_SIZE];
    bool conn; /* a device_conn row; else a presence change */
    bool online;
    int64_t at;
    struct giz_device_conn c;
};
#define EV_STATE_MAX 200000u /* held by the writer (a store that refuses writes for long) */

struct writer {
    char db_path[GIZ_PATH_SIZE];
    char broker[GIZ_BROKER_NAME_SIZE]; /* scopes the presence writes, as the broker's store */
    unsigned state_ms;                 /* poll_ms: store state waits at most this long */
    struct ev_state *states;
    size_t nstates, states_cap;
    uint64_t states0_ms; /* mono ms the oldest of them came */
    uint64_t states_lost;
    unsigned per_device;
    uint64_t total;
    struct ev_shared *sh;
    uint64_t drops; /* to add to event_drops */
    char *arena;    /* the formatted publish texts of one pass */
    size_t arena_cap;
};

struct budget {
    unsigned left;    /* more of this device's events this pass may keep */
    uint64_t skipped; /* older ones the per-device bound would prune at once */
};

struct budget_walk {
    struct giz_store *st; /* NULL: only free */
    uint64_t counted;
};

static int budget_count_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct budget_walk *w = ud;
    struct budget *b = value;
    char did[GIZ_DID_SIZE];
    if (w->st != NULL && b->skipped > 0 && klen < sizeof(did)) {
        memcpy(did, key, klen);
        did[klen] = '\0';
        if (giz_store_event_count_pruned(w->st, did, "mqtt", (int64_t)b->skipped) == GIZ_OK)
            w->counted += b->skipped;
    }
    return 0;
}

static int rec_seq_cmp(const void *a, const void *b)
{
    uint64_t x = (*(struct ev_rec *const *)a)->seq, y = (*(struct ev_rec *const *)b)->seq;
    return x < y ? -1 : x > y;
}

/* The most text evfmt__publish can make of r (every topic byte escaped). */
static size_t publish_text_max(const struct ev_rec *r)
{
    size_t m = 256u + 6u * r->topic_len + 2u * (size_t)r->hex;
    return m < EV_FIELDS_CAP ? m : EV_FIELDS_CAP;
}

/* Writes items[0..n) (oldest first) in one transaction. Of a device with
 * more than per_device events in this pass only its newest per_device are
 * inserted: the older ones would be deleted by the next prune before
 * anyone could page to them, so they are counted as pruned ('device')
 * without a write (a flooding device costs at most per_device inserts per
 * pass; the live stream shows what is kept) and never formatted. The kept
 * publishes are formatted here into the writer's text arena. Returns the
 * events inserted; *flooded: some device was over its budget. */
static size_t write_batch(struct writer *w, struct giz_store *st, struct giz_event *batch,
                          struct ev_rec **items, size_t n, bool *flooded)
{
    unsigned per_device = w->per_device;
    struct giz_map budgets;
    struct budget_walk bw = {NULL, 0};
    size_t k = 0, skipped = 0, need = 0, used = 0;
    int rc = GIZ_OK;
    bool have_map = per_device > 0 && giz_map_init(&budgets) == 0;
    *flooded = false;
    for (size_t i = 1; i < n; i++) { /* replacements put newer records at older positions */
        if (items[i]->seq < items[i - 1]->seq) {
            qsort(items, n, sizeof(*items), rec_seq_cmp);
            break;
        }
    }
    for (size_t i = n; have_map && i-- > 0;) { /* newest first: who keeps what */
        struct budget *b = giz_map_sget(&budgets, items[i]->did);
        if (b == NULL) {
            b = calloc(1, sizeof(*b));
            if (b == NULL ||
                giz_map_put(&budgets, items[i]->did, strlen(items[i]->did), b, NULL) != 0) {
                free(b);
                continue; /* no memory: this one is kept */
            }
            b->left = per_device;
        }
        if (items[i]->superseded > 0) {
            b->skipped += items[i]->superseded;
            *flooded = true;
        }
        if (b->left > 0) {
            b->left--;
        } else {
            b->skipped++;
            *flooded = true;
            items[i]->kind[0] = '\0'; /* marks it skipped */
        }
    }
    for (size_t i = 0; i < n; i++)
        if (items[i]->kind[0] != '\0' && items[i]->form == EV_FORM_PUBLISH)
            need += publish_text_max(items[i]);
    if (need > w->arena_cap) {
        char *a = realloc(w->arena, need);
        if (a != NULL) {
            w->arena = a;
            w->arena_cap = need;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct ev_rec *r = items[i];
        const char *fields = r->data;
        if (r->kind[0] != '\0' && r->form == EV_FORM_PUBLISH) {
            size_t cap = publish_text_max(r), len = 0;
            struct evfmt_publish p = {
                r->data,     r->topic_len, (const uint8_t *)r->data + r->topic_len,
                r->head_len, r->length,    r->hex,
                r->qos,      r->from};
            if (used + cap <= w->arena_cap) len = evfmt__publish(&p, w->arena + used, cap);
            if (len == 0) {
                r->kind[0] = '\0'; /* no memory or too long: counted as a queue drop */
            } else {
                fields = w->arena + used;
                used += len + 1u;
            }
        }
        if (r->kind[0] == '\0') {
            skipped++;
            continue;
        }
        memset(&batch[k], 0, sizeof(batch[k]));
        memcpy(batch[k].did, r->did, sizeof(batch[k].did));
        memcpy(batch[k].kind, r->kind, sizeof(batch[k].kind));
        batch[k].ts = r->ts;
        batch[k].source = "mqtt";
        batch[k].fields = fields;
        k++;
    }
    if (st == NULL) rc = GIZ_ERR_DB;
    if (rc == GIZ_OK) rc = giz_store_begin(st);
    if (rc == GIZ_OK) rc = giz_store_event_append(st, batch, k, NULL);
    if (have_map) {
        bw.st = rc == GIZ_OK ? st : NULL;
        giz_map_foreach(&budgets, budget_count_cb, &bw);
        giz_map_free(&budgets, free);
    }
    if (rc == GIZ_OK) rc = giz_store_commit(st);
    if (rc != GIZ_OK && st != NULL) giz_store_rollback(st);
    if (rc == GIZ_OK) {
        atomic_fetch_add(&w->sh->written, k);
        atomic_fetch_add(&w->sh->pruned, bw.counted);
        w->drops += skipped - bw.counted; /* a failed count: still counted, as queue */
    } else {
        w->drops += n;
    }
    if (rc != GIZ_OK)
        giz_log(GIZ_LOG_WARN, "events: %zu MQTT events not written: %s", n, giz_strerror(rc));
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    return rc == GIZ_OK ? k : 0;
}

/* Lines of the writer process go to stderr (mosquitto's log is the
 * broker's: its file or topic is not the child's to write). */
static void child_log_sink(enum giz_log_lvl lvl, const char *line, void *ud)
{
    (void)lvl;
    (void)ud;
    fprintf(stderr, "giz-events: %s\n", line);
}

/* Keeps one store-state record (h, its data at d) for the next state pass. */
static void state_take(struct writer *w, const struct ev_rec *h, const char *d)
{
    struct ev_state *st;
    if (h->form == EV_FORM_CONN && h->dlen != sizeof(st->c)) return; /* cannot happen */
    st = w->nstates < EV_STATE_MAX ? giz_array_reserve(w->states, &w->states_cap, w->nstates + 1u,
                                                       sizeof(*st), 1024u, EV_STATE_MAX)
                                   : NULL;
    if (st == NULL) {
        w->states_lost++;
        return;
    }
    w->states = st;
    if (w->nstates == 0) w->states0_ms = giz_mono_ms();
    st = &w->states[w->nstates++];
    memcpy(st->did, h->did, sizeof(st->did));
    st->did[sizeof(st->did) - 1] = '\0';
    st->conn = h->form == EV_FORM_CONN;
    st->online = h->length != 0;
    st->at = h->ts;
    if (st->conn) memcpy(&st->c, d, sizeof(st->c));
}

/* Writes the held store state in one transaction, in the order it came
 * (a DID's offline after its online). GIZ_OK: written and forgotten; on a
 * failure it is kept for the next pass. */
static int state_write(struct writer *w, struct giz_store *st)
{
    int rc = st != NULL ? giz_store_begin(st) : GIZ_ERR_DB;
    for (size_t i = 0; rc == GIZ_OK && i < w->nstates; i++) {
        const struct ev_state *x = &w->states[i];
        rc = x->conn ? giz_store_device_conn_set(st, x->did, &x->c)
                     : giz_store_device_set_online(st, x->did, x->online, x->at);
        if (rc == GIZ_ERR_NOT_FOUND || rc == GIZ_ERR_INVAL) rc = GIZ_OK; /* unregistered since */
    }
    if (rc == GIZ_OK) rc = giz_store_commit(st);
    if (rc != GIZ_OK) {
        if (st != NULL) giz_store_rollback(st);
        giz_log(GIZ_LOG_WARN,
                "events: %zu presence and connection rows not written (%s), will retry", w->nstates,
                giz_strerror(rc));
        w->states0_ms = giz_mono_ms(); /* the next try after another state_ms */
        return rc;
    }
    w->nstates = 0;
    if (w->states_cap * sizeof(*w->states) > GIZ_BURST_KEEP_BYTES) {
        free(w->states); /* after a login storm */
        w->states = NULL;
        w->states_cap = 0;
    }
    return GIZ_OK;
}

/* Takes the whole records in buf[0..*len) into items (up to EV_BATCH) and
 * moves what is left to the front. */
static void child_parse(struct writer *w, char *buf, size_t *len, struct ev_rec **items, size_t *n)
{
    const size_t hdr = offsetof(struct ev_rec, data);
    size_t off = 0;
    while (*n < EV_BATCH && *len - off >= hdr) {
        struct ev_rec h, *r;
        memcpy(&h, buf + off, hdr);
        if (h.dlen > EV_OUT_MAX) { /* cannot happen (one binary on both ends) */
            giz_log(GIZ_LOG_ERR, "events: a corrupt record on the pipe; the rest dropped");
            *len = off;
            break;
        }
        if (*len - off < hdr + h.dlen) break;
        if (h.form == EV_FORM_DROPS) {
            w->drops += h.length;
        } else if (h.form == EV_FORM_ONLINE || h.form == EV_FORM_CONN) {
            state_take(w, &h, buf + off + hdr);
        } else if ((r = malloc(sizeof(*r) + h.dlen + 1u)) != NULL) {
            memcpy(r, buf + off, hdr + h.dlen);
            r->cap = h.dlen;
            r->data[h.dlen] = '\0';
            items[(*n)++] = r;
        } else {
            w->drops++;
        }
        off += hdr + h.dlen;
    }
    memmove(buf, buf + off, *len - off);
    *len -= off;
}

/* The writer process: reads records from the pipe, writes them in batches
 * (gathered EV_GATHER_MS after the first, longer while a device floods),
 * prunes about once a second, and ends at the pipe's end (the broker
 * stopped, or died) after writing what it has. */
static void child_main(struct writer *w, int rfd)
{
    struct giz_store *st = NULL;
    struct giz_error err;
    struct ev_rec **items = malloc(EV_BATCH * sizeof(*items));
    struct giz_event *batch = malloc(EV_BATCH * sizeof(*batch));
    char *buf = malloc(EV_READ_BUF);
    size_t n = 0, len = 0;
    uint64_t last_prune = giz_mono_ms(), since_prune = 0, last_work = giz_mono_ms(), gather0 = 0;
    bool dirty = false, flooded = false, eof = false;
    if (items == NULL || batch == NULL || buf == NULL) {
        giz_log(GIZ_LOG_ERR, "events: the writer is out of memory");
        return;
    }
    while (!eof || n > 0 || w->drops > 0 || w->nstates > 0) {
        uint64_t now = giz_mono_ms();
        long wait = 1000;
        bool sdue;
        if (n > 0) {
            uint64_t g = (uint64_t)(flooded ? EV_FLOOD_GATHER_MS : EV_GATHER_MS);
            wait = now - gather0 >= g ? 0 : (long)(g - (now - gather0));
        } else if (dirty) {
            wait = now - last_prune >= EV_PRUNE_EVERY_MS
                       ? 0
                       : (long)(EV_PRUNE_EVERY_MS - (now - last_prune));
        }
        if (w->nstates > 0) {
            long sw = now - w->states0_ms >= w->state_ms
                          ? 0
                          : (long)(w->state_ms - (now - w->states0_ms));
            if (sw < wait) wait = sw;
        }
        if (len > 0 && n < EV_BATCH) { /* records read before the last batch was full */
            size_t before = n;
            child_parse(w, buf, &len, items, &n);
            if (before == 0 && n > 0) gather0 = now;
        }
        if (len == EV_READ_BUF && n < EV_BATCH) len = 0; /* cannot happen: a record is < 1 MB */
        if (!eof && n < EV_BATCH && len < EV_READ_BUF) {
            struct pollfd pfd = {rfd, POLLIN, 0};
            int pr = poll(&pfd, 1, (int)wait);
            if (pr > 0) {
                ssize_t r = read(rfd, buf + len, EV_READ_BUF - len);
                if (r > 0) {
                    size_t before = n;
                    len += (size_t)r;
                    child_parse(w, buf, &len, items, &n);
                    if (before == 0 && n > 0) gather0 = giz_mono_ms();
                } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                    eof = true;
                }
            } else if (pr < 0 && errno != EINTR) {
                eof = true;
            }
        }
        now = giz_mono_ms();
        bool due =
            n > 0 && (eof || n >= EV_BATCH ||
                      now - gather0 >= (uint64_t)(flooded ? EV_FLOOD_GATHER_MS : EV_GATHER_MS));
        sdue = w->nstates > 0 && (eof || now - w->states0_ms >= w->state_ms);
        if ((due || sdue || (eof && w->drops > 0) || (n == 0 && dirty)) && st == NULL) {
            if (giz_store_open(w->db_path, &st, &err) != GIZ_OK) {
                giz_log(GIZ_LOG_ERR, "events: the writer cannot open the store: %s", err.text);
                st = NULL;
            } else if (w->broker[0] != '\0' && giz_store_set_broker(st, w->broker) != GIZ_OK) {
                giz_log(GIZ_LOG_ERR, "events: broker name \"%s\" refused", w->broker);
            }
        }
        if (sdue) { /* presence first: the GService waits for it, not for events */
            if (state_write(w, st) != GIZ_OK && eof) {
                giz_log(GIZ_LOG_ERR, "events: the broker stopped; %zu presence rows not written",
                        w->nstates);
                w->nstates = 0;
            }
            last_work = now;
        }
        if (w->states_lost > 0) {
            giz_log(GIZ_LOG_ERR, "events: %llu presence and connection rows lost (%u held)",
                    (unsigned long long)w->states_lost, EV_STATE_MAX);
            w->states_lost = 0;
        }
        if (due) {
            since_prune += write_batch(w, st, batch, items, n, &flooded);
            n = 0;
            dirty = true;
            last_work = now;
        } else if (n == 0 && !eof) {
            flooded = false;
        }
        if (w->drops > 0 && (n == 0 || eof)) {
            if (st == NULL ||
                giz_store_event_count_dropped(st, "", "mqtt", (int64_t)w->drops) != GIZ_OK)
                giz_log(GIZ_LOG_WARN, "events: %llu dropped MQTT events not counted",
                        (unsigned long long)w->drops);
            w->drops = 0;
        }
        now = giz_mono_ms();
        if (st != NULL && dirty &&
            (now - last_prune >= EV_PRUNE_EVERY_MS || since_prune >= EV_PRUNE_EVERY_N ||
             (eof && n == 0))) {
            int64_t pruned = 0;
            int rc = giz_store_event_prune(st, w->per_device, w->total, &pruned);
            if (rc == GIZ_OK) {
                atomic_fetch_add(&w->sh->pruned, (uint64_t)pruned);
                dirty = false;
                since_prune = 0;
            } else {
                giz_log(GIZ_LOG_WARN, "events: prune failed (%s), will retry: %s", giz_strerror(rc),
                        giz_store_errmsg(st));
                if (eof) dirty = false; /* the last try */
            }
            last_prune = now;
        }
        if (st != NULL && !dirty && n == 0 && w->nstates == 0 &&
            now - last_work >= EV_IDLE_CLOSE_MS) {
            /* idle: give the connection's page cache back (up to SQLite's
             * default 2 MB), reopened with the next event */
            giz_store_close(st);
            st = NULL;
        }
        if (eof && n == 0 && !dirty && w->nstates == 0) break;
    }
    giz_store_close(st);
    free(w->states);
    free(items);
    free(batch);
    free(buf);
    free(w->arena);
}

/* ---- handing the queue to the writer ------------------------------------------ */

/* Appends one record (or a drop count) to the bytes for the pipe; false
 * when that would pass EV_OUT_MAX (the caller counts a drop). */
static bool out_add(struct events *ev, const struct ev_rec *r)
{
    const size_t hdr = offsetof(struct ev_rec, data);
    size_t need = hdr + r->dlen;
    if (ev->out_len + need > EV_OUT_MAX) return false;
    if (ev->out_len == 0) ev->out_since_ms = (int64_t)giz_mono_ms();
    if (ev->out_len + need > ev->out_cap) {
        size_t cap = ev->out_cap ? ev->out_cap : 65536u;
        while (cap < ev->out_len + need)
            cap *= 2;
        char *o = realloc(ev->out, cap);
        if (o == NULL) return false;
        ev->out = o;
        ev->out_cap = cap;
    }
    memcpy(ev->out + ev->out_len, r, need);
    ev->out_len += need;
    if (r->form < EV_FORM_ONLINE) ev->out_recs++;
    return true;
}

/* ---- store state through the writer -------------------------------------------- */
/* While the writer runs, the per-login store writes (devices.online and
 * last_seen, the device_conn row) go down its pipe too and it applies them
 * in its own transactions, so a login costs mosquitto's thread no SQLite
 * (measured: a third of the plugin's CPU per warm login, bench/suite/
 * analysis.md). They are not events: never dropped for a full queue,
 * never pruned, and handed over within poll_ms (events__tick) so the
 * GService sees a device online about as soon as with the DB batch. Without
 * the writer (events off, or it died) presence.c and queue_conn_row keep
 * them for the DB batch as before. */
static bool writer_on(const struct gizp *g)
{
    return g->events != NULL && g->events->started && g->events->wfd >= 0;
}

bool events__state_online(struct gizp *g, const char *did, bool online, int64_t at)
{
    struct ev_rec r;
    if (!writer_on(g) || strlen(did) >= sizeof(r.did)) return false;
    memset(&r, 0, sizeof(r));
    memcpy(r.did, did, strlen(did) + 1);
    r.form = EV_FORM_ONLINE;
    r.ts = at;
    r.length = online ? 1u : 0u;
    return out_add(g->events, &r);
}

static bool state_conn(struct gizp *g, const char *did, const struct giz_device_conn *c)
{
    _Alignas(struct ev_rec) unsigned char buf[sizeof(struct ev_rec) + sizeof(*c)];
    struct ev_rec *r = (struct ev_rec *)buf;
    if (!writer_on(g) || strlen(did) >= sizeof(r->did)) return false;
    memset(buf, 0, sizeof(buf));
    memcpy(r->did, did, strlen(did) + 1);
    r->form = EV_FORM_CONN;
    r->dlen = (uint32_t)sizeof(*c);
    memcpy(r->data, c, sizeof(*c));
    return out_add(g->events, r);
}

/* The writer died (or its pipe broke): MQTT events are off until the
 * broker restarts (a new writer would be forked from a process whose
 * SQLite state it must not inherit; see writer_start). */
static void writer_lost(struct events *ev, const char *why)
{
    mosquitto_log_printf(MOSQ_LOG_ERR,
                         "giz: the MQTT timeline writer (pid %ld) is gone (%s); %zu events "
                         "dropped; MQTT timeline events off until the broker restarts",
                         (long)ev->child, why, ev->out_recs + ev->n);
    close(ev->wfd);
    ev->wfd = -1;
    if (ev->child > 0) waitpid(ev->child, NULL, 0); /* its pipe is closed: it ends */
    ev->child = 0;
    ev->dropped += ev->out_recs + ev->n; /* as the line says: the queue goes nowhere now */
    ev->out_len = ev->out_recs = 0;
    ev->started = false;
    ev->failed_start = true;
    ev->state_lost = true;
}

/* Writes what the pipe takes (all of it when block: the broker stops). */
static void out_push(struct events *ev, bool block)
{
    size_t off = 0;
    if (ev->wfd < 0) return;
    if (block) fcntl(ev->wfd, F_SETFL, fcntl(ev->wfd, F_GETFL) & ~O_NONBLOCK);
    while (off < ev->out_len) {
        ssize_t w = write(ev->wfd, ev->out + off, ev->out_len - off);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break; /* the writer is busy: the rest goes next tick */
        } else {
            writer_lost(ev, w < 0 ? strerror(errno) : "no progress");
            return;
        }
    }
    memmove(ev->out, ev->out + off, ev->out_len - off);
    ev->out_len -= off;
    if (ev->out_len == 0) ev->out_recs = 0;
}

/* Moves every queued record (and the drop count) to the bytes for the
 * pipe: the writer has "taken" them (flood tracking starts over). */
static void ring_flush(struct events *ev)
{
    for (size_t i = 0; i < ev->n; i++) {
        struct ev_rec *r = ev->ring[(ev->head + i) % ev->cap];
        r->dlen = r->form == EV_FORM_PUBLISH ? (uint32_t)r->topic_len + r->head_len
                                             : (uint32_t)strlen(r->data) + 1u;
        if (!out_add(ev, r)) {
            ev->dropped++;
            ev->unrecorded_drops++;
        }
        rec_free(ev, r);
    }
    ev->head = (ev->head + ev->n) % ev->cap;
    ev->taken += ev->n;
    ev->n = 0;
    if (ev->unrecorded_drops > 0) {
        struct ev_rec d;
        memset(&d, 0, sizeof(d));
        d.form = EV_FORM_DROPS;
        d.length = ev->unrecorded_drops;
        if (out_add(ev, &d)) ev->unrecorded_drops = 0;
    }
}

/* Forks the writer process. Called by mosquitto_plugin_init before the
 * plugin opens its store: SQLite keeps per-process state about open
 * databases (descriptors, locks) that a child forked later would inherit
 * and must not use; forked first, the child opens its own connection when
 * the first events come. */
static void writer_start(struct gizp *g)
{
    struct events *ev = g->events;
    struct writer w;
    int fds[2];
    pid_t pid;
    ev->failed_start = true; /* tried once */
    if (ev->ring == NULL) {
        ev->cap = g->cfg.events_queue;
        ev->ring = calloc(ev->cap, sizeof(*ev->ring));
    }
    if (ev->sh == NULL) {
        void *m = mmap(NULL, sizeof(struct ev_shared), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ev->sh = m == MAP_FAILED ? NULL : m;
    }
    if (ev->ring == NULL || ev->sh == NULL || pipe2(fds, O_CLOEXEC) != 0) goto fail;
    memset(&w, 0, sizeof(w));
    snprintf(w.db_path, sizeof(w.db_path), "%s", g->cfg.db_path);
    snprintf(w.broker, sizeof(w.broker), "%s", g->cfg.broker_name); /* plugin__broker_name set it */
    w.state_ms = g->cfg.poll_ms;
    w.per_device = g->cfg.events_per_device;
    w.total = (uint64_t)g->cfg.events_total;
    w.sh = ev->sh;
    /* (a bound above 65,535 is above the default queue too: such a device
     * fills the queue and its excess is dropped, not replaced) */
    ev->flood_bound = g->cfg.events_per_device <= UINT16_MAX ? g->cfg.events_per_device : 0;
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        goto fail;
    }
    if (pid == 0) { /* the writer: nothing of the broker's but the store path */
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
        int rfd = fds[0];
        if (rfd != 3) {
            if (dup2(rfd, 3) != 3) _exit(1);
            rfd = 3;
        }
        close_range(4, ~0U, 0); /* the listeners, client sockets, the broker's store */
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_IGN); /* it ends at the pipe's end, after writing */
        prctl(PR_SET_NAME, "giz-events", 0, 0, 0);
        giz_log_set_sink(child_log_sink, NULL);
        child_main(&w, rfd);
        _exit(0);
    }
    close(fds[0]);
    ev->wfd = fds[1];
    fcntl(ev->wfd, F_SETFL, fcntl(ev->wfd, F_GETFL) | O_NONBLOCK);
    fcntl(ev->wfd, F_SETPIPE_SZ, 1 << 20); /* may be refused: the default 64 KiB works */
    ev->child = pid;
    ev->started = true;
    ev->failed_start = false;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "giz: MQTT timeline events on (writer pid %ld): newest %u per device, "
                         "%zu in all, queue %u, payload %u bytes",
                         (long)pid, g->cfg.events_per_device, g->cfg.events_total,
                         g->cfg.events_queue, g->cfg.events_payload);
    return;
fail:
    mosquitto_log_printf(MOSQ_LOG_ERR, "giz: MQTT timeline events off: cannot start the writer");
}

int events__start(struct gizp *g)
{
    if (g->events != NULL && g->cfg.events && !g->events->started && !g->events->failed_start)
        writer_start(g);
    return 0;
}

void events__tick(struct gizp *g, int64_t now_ms)
{
    struct events *ev = g->events;
    int64_t mono;
    (void)now_ms;
    if (ev == NULL || g->store == NULL) return;
    mono = (int64_t)giz_mono_ms();
    /* every EV_FLUSH_MS, or sooner when a large queue is half full (a small
     * one, as tests configure, holds what comes within the period) */
    bool flushed = false;
    if (ev->started && ev->n > 0 &&
        (mono - ev->first_ms >= EV_FLUSH_MS || (ev->cap >= 1024u && ev->n >= ev->cap / 2u))) {
        ring_flush(ev);
        flushed = true;
    }
    /* store state alone waits up to poll_ms (one write for a login storm's
     * worth of rows, not one per broker loop) */
    if (ev->started && ev->out_len > 0 &&
        (flushed || mono - ev->out_since_ms >= (int64_t)g->cfg.poll_ms))
        out_push(ev, false);
    if (ev->state_lost) { /* online marks the dead writer never wrote: the DB batch re-writes */
        ev->state_lost = false;
        presence__resync(g);
    }
    bool quiet = ev->pushed == ev->pushed_at_tick;
    ev->pushed_at_tick = ev->pushed;
    if (quiet && ev->out_len == 0 && ev->out_cap > EV_OUT_KEEP) { /* a burst's (mmap'd) buffer */
        free(ev->out);
        ev->out = NULL;
        ev->out_cap = 0;
    }
    if (ev->closing != NULL) { /* its close never came through our wrapper */
        struct ev_parked *conn = ev->closing;
        ev->closing = NULL;
        finish_disconnect(g, conn, EVENTS_END_NONE, 0, 0, false);
    }
}

/* ---- metrics ----------------------------------------------------------------------- */

static void metric(struct giz_buf *b, const char *name, const char *type, const char *help)
{
    giz_buf_printf(b, "# HELP gizcloud_broker_%s %s\n# TYPE gizcloud_broker_%s %s\n", name, help,
                   name, type);
}

static void cmd_label(unsigned slot, char out[12])
{
    if (slot == 0)
        snprintf(out, 12, "other");
    else if (slot == CMD_SLOT_NONE)
        snprintf(out, 12, "none");
    else
        snprintf(out, 12, "0x%04X", cmd_codes[slot]);
}

void events__metrics_write(struct gizp *g, int64_t now_ms)
{
    struct events *ev = g->events;
    struct giz_buf b;
    struct auth_stats as;
    struct intercept_stats is;
    struct presence_stats pr;
    struct push_stats ps;
    char lbl[12];
    uint64_t other;
    int rc;
    (void)now_ms;
    if (ev == NULL || g->store == NULL) return;
    auth__stats(g, &as);
    intercept__stats(g, &is);
    presence__stats(g, &pr);
    push__stats(g, &ps);
    giz_buf_init(&b, GIZ_BROKER_METRICS_MAX);
    metric(&b, "devices_connected", "gauge", "Device MQTT connections logged in.");
    giz_buf_printf(&b, "gizcloud_broker_devices_connected %zu\n", ev->nlive + ev->nold);
    metric(&b, "apps_connected", "gauge", "App client ids with a live MQTT connection.");
    giz_buf_printf(&b, "gizcloud_broker_apps_connected %zu\n", pr.apps);
    metric(&b, "client_sockets", "gauge", "Client sockets open (with or without a CONNECT).");
    giz_buf_printf(&b, "gizcloud_broker_client_sockets %" PRIu64 "\n", is.conns);
    metric(&b, "logins_total", "counter", "MQTT logins by result.");
    other = as.refused >= as.throttled + as.busy ? as.refused - as.throttled - as.busy : 0;
    giz_buf_printf(&b,
                   "gizcloud_broker_logins_total{result=\"ok\"} %" PRIu64 "\n"
                   "gizcloud_broker_logins_total{result=\"refused\"} %" PRIu64 "\n"
                   "gizcloud_broker_logins_total{result=\"throttled\"} %" PRIu64 "\n"
                   "gizcloud_broker_logins_total{result=\"busy\"} %" PRIu64 "\n",
                   as.ok, other, as.throttled, as.busy);
    metric(&b, "login_cache_hits_total", "counter",
           "Device logins accepted from the verified-passcode cache.");
    giz_buf_printf(&b, "gizcloud_broker_login_cache_hits_total %" PRIu64 "\n", as.cache_hits);
    metric(&b, "ping_limit_closes_total", "counter",
           "Connections closed for sending too many PINGREQ.");
    giz_buf_printf(&b, "gizcloud_broker_ping_limit_closes_total %" PRIu64 "\n", is.closed_ping);
    metric(&b, "limit_closes_total", "counter",
           "Connections closed by the other guard limits (size, framing, CONNECT).");
    giz_buf_printf(&b, "gizcloud_broker_limit_closes_total %" PRIu64 "\n", is.closed_other);
    metric(&b, "acl_denials_total", "counter", "ACL checks denied, by access.");
    for (unsigned i = 0; i < DEN__COUNT; i++)
        giz_buf_printf(&b, "gizcloud_broker_acl_denials_total{access=\"%s\"} %" PRIu64 "\n",
                       den_names[i], ev->denied[i]);
    metric(&b, "messages_in_total", "counter",
           "Messages devices published, by Gizwits command code.");
    for (unsigned i = 0; i < CMD_SLOTS; i++) {
        cmd_label(i, lbl);
        giz_buf_printf(&b, "gizcloud_broker_messages_in_total{cmd=\"%s\"} %" PRIu64 "\n", lbl,
                       ev->msgs_in[i]);
    }
    metric(&b, "messages_out_total", "counter",
           "Messages delivered to devices (apps' and the cloud's), by Gizwits command code.");
    for (unsigned i = 0; i < CMD_SLOTS; i++) {
        cmd_label(i, lbl);
        giz_buf_printf(&b, "gizcloud_broker_messages_out_total{cmd=\"%s\"} %" PRIu64 "\n", lbl,
                       ev->msgs_out[i]);
    }
    metric(&b, "disconnects_total", "counter", "Device connections ended, by reason.");
    for (unsigned i = 0; i < BYE__COUNT; i++)
        giz_buf_printf(&b, "gizcloud_broker_disconnects_total{reason=\"%s\"} %" PRIu64 "\n",
                       bye_names[i], ev->bye[i]);
    if (ev->outbox_lag_s >= 0) {
        metric(&b, "outbox_lag_seconds", "gauge",
               "Age of the last outbox item when the broker acted on it.");
        giz_buf_printf(&b, "gizcloud_broker_outbox_lag_seconds %" PRId64 "\n", ev->outbox_lag_s);
        metric(&b, "outbox_lag_max_seconds", "gauge",
               "Largest outbox item age seen since the broker started.");
        giz_buf_printf(&b, "gizcloud_broker_outbox_lag_max_seconds %" PRId64 "\n",
                       ev->outbox_lag_max_s);
    }
    metric(&b, "send_queue_dropped_total", "counter",
           "Cloud/app messages dropped because a device's send queue was full.");
    giz_buf_printf(&b, "gizcloud_broker_send_queue_dropped_total %" PRIu64 "\n", ps.dropped);
    metric(&b, "events_written_total", "counter", "MQTT timeline events written to the store.");
    uint64_t written = ev->sh ? atomic_load(&ev->sh->written) : 0;
    uint64_t pruned = ev->sh ? atomic_load(&ev->sh->pruned) : 0;
    size_t queued = ev->n + ev->out_recs;
    giz_buf_printf(&b, "gizcloud_broker_events_written_total %" PRIu64 "\n", written);
    metric(&b, "events_dropped_total", "counter",
           "MQTT timeline events dropped before the store (queue full, oversize).");
    giz_buf_printf(&b, "gizcloud_broker_events_dropped_total %" PRIu64 "\n", ev->dropped);
    metric(&b, "events_pruned_total", "counter",
           "Timeline events the broker's retention prune removed.");
    giz_buf_printf(&b, "gizcloud_broker_events_pruned_total %" PRIu64 "\n", pruned);
    metric(&b, "events_queued", "gauge", "MQTT timeline events waiting for the writer process.");
    giz_buf_printf(&b, "gizcloud_broker_events_queued %zu\n", queued);
    metric(&b, "events_enabled", "gauge", "1 if the broker records MQTT timeline events.");
    giz_buf_printf(&b, "gizcloud_broker_events_enabled %u\n", ev->started ? 1u : 0u);
    if (b.data == NULL) return;
    rc = giz_store_broker_metrics_put(g->store, (const char *)b.data, unix_ms());
    if (rc != GIZ_OK && plugin__rate_ok(&ev->rl_store, 5, "metrics write errors"))
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: metrics snapshot not written (%s): %s",
                             giz_strerror(rc), giz_store_errmsg(g->store));
    giz_buf_free(&b);
}

/* ---- init / free ---------------------------------------------------------------------- */

int events__init(struct gizp *g)
{
    struct events *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) return -1;
    g->events = ev;
    giz_pool_init(&ev->rec_pool, sizeof(struct ev_rec) + EV_REC_MIN);
    ev->outbox_lag_s = ev->outbox_lag_max_s = -1;
    ev->wfd = -1;
    return 0;
}

static int shutdown_cb(struct did_state *ds, void *ud)
{
    struct gizp *g = ud;
    struct ev_parked *conn = ds->ev.ctx != NULL ? park(g, ds) : NULL;
    if (conn != NULL) {
        conn_set_why(&conn->c, "broker shutdown");
        finish_disconnect(g, conn, EVENTS_END_NONE, 0, 0, false);
    }
    return 0;
}

/* The broker is stopping: mosquitto 2.0.11 closes its clients without a
 * MOSQ_EVT_DISCONNECT, so every session still open ends here, with reason
 * "broker shutdown" and its length, before the writer's last pass. */
static void shutdown_sessions(struct gizp *g)
{
    struct events *ev = g->events;
    if (ev->closing != NULL) { /* a DISCONNECT whose close did not come */
        struct ev_parked *conn = ev->closing;
        ev->closing = NULL;
        finish_disconnect(g, conn, EVENTS_END_NONE, 0, 0, false);
    }
    while (ev->nold > 0) { /* taken over, their DISCONNECT not seen */
        struct ev_parked *conn = ev->old[--ev->nold];
        finish_disconnect(g, conn, EVENTS_END_NONE, 0, 0, false);
    }
    if (g->presence != NULL) presence__foreach_did(g, shutdown_cb, g);
}

void events__free(struct gizp *g)
{
    struct events *ev = g->events;
    if (ev == NULL) return;
    shutdown_sessions(g);
    if (ev->started) { /* the writer writes what it gets, then stops at the pipe's end */
        ring_flush(ev);
        out_push(ev, true);
    }
    if (ev->wfd >= 0) close(ev->wfd);
    if (ev->child > 0) waitpid(ev->child, NULL, 0);
    ev->started = false;
    for (size_t i = 0; i < ev->n; i++)
        rec_free(ev, ev->ring[(ev->head + i) % ev->cap]);
    free(ev->ring);
    giz_pool_destroy(&ev->rec_pool);
    free(ev->out);
    if (ev->sh != NULL) munmap(ev->sh, sizeof(*ev->sh));
    free(ev->rows);
    parked_free(ev->closing);
    for (size_t i = 0; i < ev->nold; i++)
        parked_free(ev->old[i]);
    free(ev->old);
    free(ev);
    g->events = NULL;
}
