/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * What the cloud itself says to devices (the device messages it reads are
 * message.c's).
 *
 * Out: bare 0x0210 (online-app count), 0x0211 (OTA v4.1 notice) and 0x020E
 * (OTA v4.0 with fid and URL) on ser2cli_res/<DID>, encoded with the shared
 * codec and sent with mosquitto_broker_publish_copy targeted at the device's
 * client id (the broker delivers it on its next loop iteration, without a
 * subscription or READ check; an offline target is skipped here, since the
 * broker's call succeeds even for absent clients).
 *
 * Toward a device everything goes through a per-device queue (struct devq,
 * see DESIGN.md "Toward a device"): cloud-initiated messages wait until the
 * device is "ready" (it holds all three of its subscriptions, or
 * ser2cli_res plus sub_wait_ms), and two packets the cloud sends one device
 * are at least device_gap_ms apart (firmware reads one packet per recv(),
 * so two packets in its receive buffer at once lose the second). App
 * messages to app2dev/<DID>/<cid> that come too soon after the previous
 * packet are taken out of mosquitto's routing in MESSAGE (MOSQ_ERR_ACL_DENIED
 * drops a message in 2.0.11) and re-published to the device's client id
 * from TICK. Queues are bounded and dropped when the device goes.
 *
 * The GService asks through the store's outbox table, polled every poll_ms
 * on TICK from the last id seen (items older than the plugin's start are
 * stale and skipped): OTA_PUSH (one DID or a product), DEVICE_DISABLED
 * (forget cached credentials, kick the session), BINDING (recount),
 * APP_PUBLISH (a control of the app Open API: its framed 0x0090 on
 * app2dev/<DID>/<the user's client id>, paced like app messages).
 *
 * Several brokers may share the store: the outbox is a broadcast (each
 * broker reads every item from its own position and acts for the devices
 * and apps connected to it; the others find no target and skip it).
 *
 * Liveness: this broker's row of the registry (giz_store_broker_*, schema
 * 012: name, advertised address, device count) written every 2 s inside
 * the DB batch, marked stopped at a clean stop. With each heartbeat the
 * broker also sweeps: the devices of a broker silent for broker_timeout are
 * marked offline (whichever live node gets there first does it once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "giz/proto.h"
#include "plugin.h"

#define OUTBOX_BATCH 256u
#define OUTBOX_GAPS 64u     /* skipped ids looked for again */
#define OUTBOX_GAP_MS 10000 /* ... for this long */
#define PUSH_BUF 640u
#define DEVQ_MAX_MSGS 32u            /* queued messages per device */
#define DEVQ_MAX_BYTES (32u * 1024u) /* queued payload bytes per device */
#define DEVQ_CLOUD_EXTRA 8u          /* more messages allowed for the cloud's own */
#define PUSHQ_MAX_BYTES (16u << 20)  /* all devices; beyond, app messages pass unpaced */
#define BEAT_MS GIZ_BROKER_BEAT_MS   /* broker heartbeat period (2 s) */

/* ---- per-device queue -------------------------------------------------------- */

enum { SUB_NOTI = 1u, SUB_RES = 2u, SUB_APP = 4u, SUB_ALL = 7u };
enum msg_kind { MSG_APP = 0, MSG_COUNT = 1, MSG_OTA = 2 };

struct devq_msg {
    struct devq_msg *next;
    uint32_t len; /* payload bytes */
    uint8_t kind; /* enum msg_kind: a queued MSG_COUNT is replaced by a newer count */
    uint8_t qos;
    uint8_t data[]; /* payload, then the topic with its NUL */
};

/* A DID with something to track: from its device's BASIC_AUTH until it is
 * ready, or while packets toward it are being paced. Absent = the device
 * is ready and nothing was sent to it for device_gap_ms. */
struct devq {
    struct devq *prev, *next; /* in waiting (a fallback timer runs, by timer_ms), in
                                 ready (by last_tx_ms), or in no list (not ready, no
                                 timer: waits for SUBSCRIBEs) */
    struct devq_msg *head, *tail;
    const struct mosquitto *ctx; /* the newest device context (NULL: ready before we looked) */
    int64_t login_ms;            /* BASIC_AUTH of ctx */
    int64_t res_ms;              /* ser2cli_res granted (0: not yet) */
    int64_t timer_ms;            /* start of the fallback timer (in waiting) */
    int64_t last_tx_ms;          /* last packet the cloud let go toward the device */
    uint32_t n, bytes;
    uint8_t subs; /* SUB_* granted on ctx */
    bool ready;
    bool persistent; /* clean session 0: may keep its subscriptions, not resend */
    char did[GIZ_DID_SIZE];
};

struct push_state {
    struct giz_map q;           /* DID -> struct devq */
    struct devq waiting, ready; /* list heads (sentinels); both ordered by their time */
    size_t bytes;               /* queued payload bytes, all devices */
    int64_t last_beat_ms;
    int64_t pid;
    bool beat_started; /* the broker row is ours */
    uint64_t paced, dropped, held_for_sub;
    int64_t outbox_last_id; /* outbox items up to this id were acted on (or are gaps) */
    struct {
        int64_t id, since_ms;
    } gaps[OUTBOX_GAPS]; /* ids below outbox_last_id not seen yet, ascending */
    size_t ngaps;
    uint64_t gaps_dropped;      /* more gaps at once than OUTBOX_GAPS */
    struct rate_limit rl;       /* "send queue full" lines */
    struct rate_limit rl_store; /* outbox / heartbeat errors */
};

static void list_init(struct devq *head)
{
    head->prev = head->next = head;
}

static void list_del(struct devq *q)
{
    if (q->prev == NULL) return;
    q->prev->next = q->next;
    q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void list_add_tail(struct devq *head, struct devq *q)
{
    list_del(q);
    q->prev = head->prev;
    q->next = head;
    head->prev->next = q;
    head->prev = q;
}

static struct push_state *ps_get(struct gizp *g)
{
    if (g->push == NULL) {
        struct push_state *ps = calloc(1, sizeof(*ps));
        if (ps == NULL) return NULL;
        if (giz_map_init(&ps->q) != 0) {
            free(ps);
            return NULL;
        }
        list_init(&ps->waiting);
        list_init(&ps->ready);
        ps->pid = (int64_t)getpid();
        g->push = ps;
    }
    return g->push;
}

static void devq_clear(struct push_state *ps, struct devq *q)
{
    struct devq_msg *m = q->head;
    while (m != NULL) {
        struct devq_msg *next = m->next;
        ps->bytes -= m->len;
        free(m);
        m = next;
    }
    q->head = q->tail = NULL;
    q->n = q->bytes = 0;
}

/* Frees a record and its messages without any bookkeeping (push__free). */
static void devq_drop(void *v)
{
    struct devq *q = v;
    struct devq_msg *m = q->head;
    while (m != NULL) {
        struct devq_msg *next = m->next;
        free(m);
        m = next;
    }
    free(q);
}

static void devq_free(struct push_state *ps, struct devq *q)
{
    list_del(q);
    devq_clear(ps, q);
    giz_map_remove(&ps->q, q->did, strlen(q->did));
    free(q);
}

static struct devq *devq_get(struct gizp *g, const char *did)
{
    return g->push != NULL ? giz_map_sget(&g->push->q, did) : NULL;
}

/* A ready entry created on first traffic (the device was ready and idle). */
static struct devq *devq_create(struct push_state *ps, const char *did)
{
    size_t n = strlen(did);
    void *old = NULL;
    struct devq *q;
    if (n == 0 || n >= GIZ_DID_SIZE) return NULL;
    q = calloc(1, sizeof(*q));
    if (q == NULL) return NULL;
    memcpy(q->did, did, n + 1);
    if (giz_map_put(&ps->q, q->did, n, q, &old) != 0) {
        free(q);
        return NULL;
    }
    q->ready = true;
    return q;
}

/* Marks the packet just let go toward the device. */
static void devq_sent(struct push_state *ps, struct devq *q, int64_t now)
{
    q->last_tx_ms = now;
    if (q->ready) list_add_tail(&ps->ready, q);
}

static void publish_to(struct gizp *g, const char *did, const char *topic, const uint8_t *buf,
                       size_t len, int qos)
{
    int rc = mosquitto_broker_publish_copy(did, topic, (int)len, buf, qos, false, NULL);
    if (rc == MOSQ_ERR_SUCCESS) events__cloud_publish(g, did, topic, buf, len);
    if (rc != MOSQ_ERR_SUCCESS)
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: publish to %s failed: mosquitto error %d", did,
                             rc); /* mosquitto_strerror is not exported by the 2.0.21 broker */
}

/* Appends a copy (a queued count is updated in place instead). false if
 * over the device's bounds or out of memory (the message is not queued). */
static bool devq_push(struct push_state *ps, struct devq *q, const char *topic, const uint8_t *buf,
                      size_t len, int qos, enum msg_kind kind)
{
    size_t tlen = strlen(topic);
    struct devq_msg *m;
    if (kind == MSG_COUNT) {
        for (m = q->head; m != NULL; m = m->next) {
            if (m->kind == MSG_COUNT && m->len == len) {
                memcpy(m->data, buf, len);
                return true;
            }
        }
    }
    /* The cloud's own few messages (one count at most, OTA notices) have
     * headroom over the app messages' bound: an app flood cannot crowd them out. */
    uint32_t max_n = kind == MSG_APP ? DEVQ_MAX_MSGS : DEVQ_MAX_MSGS + DEVQ_CLOUD_EXTRA;
    uint32_t max_b =
        kind == MSG_APP ? DEVQ_MAX_BYTES : DEVQ_MAX_BYTES + DEVQ_CLOUD_EXTRA * PUSH_BUF;
    if (q->n >= max_n || q->bytes > max_b || len > max_b - q->bytes) return false;
    m = malloc(sizeof(*m) + len + tlen + 1u);
    if (m == NULL) return false;
    m->next = NULL;
    m->len = (uint32_t)len;
    m->kind = (uint8_t)kind;
    m->qos = (uint8_t)qos;
    if (len > 0) memcpy(m->data, buf, len);
    memcpy(m->data + len, topic, tlen + 1u);
    if (q->tail != NULL)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->n++;
    q->bytes += (uint32_t)len;
    ps->bytes += len;
    return true;
}

/* Sends the oldest queued message of q. */
static void devq_send_one(struct gizp *g, struct push_state *ps, struct devq *q, int64_t now)
{
    struct devq_msg *m = q->head;
    if (m == NULL) return;
    q->head = m->next;
    if (q->head == NULL) q->tail = NULL;
    q->n--;
    q->bytes -= m->len;
    ps->bytes -= m->len;
    publish_to(g, q->did, (const char *)m->data + m->len, m->data, m->len, m->qos);
    free(m);
    devq_sent(ps, q, now);
}

static void log_dropped(struct gizp *g, struct push_state *ps, const char *did, const char *what)
{
    ps->dropped++;
    if (plugin__rate_ok(&ps->rl, 5, "device queue lines"))
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: device %s: %s dropped: its send queue is full (%u messages "
                             "or %u bytes; %llu dropped so far)",
                             did, what, DEVQ_MAX_MSGS, DEVQ_MAX_BYTES,
                             (unsigned long long)ps->dropped);
    (void)g;
}

/* A cloud-initiated message for an online device on `topic`: now if the
 * device is ready and the gap has passed, else queued. */
static void send_to_device_on(struct gizp *g, const char *did, const char *topic,
                              const uint8_t *buf, size_t len, enum msg_kind kind)
{
    struct push_state *ps = ps_get(g);
    struct devq *q;
    int64_t now = (int64_t)giz_mono_ms();
    q = ps != NULL ? giz_map_sget(&ps->q, did) : NULL;
    if (ps == NULL) {
        publish_to(g, did, topic, buf, len, 0);
        return;
    }
    if (q == NULL && g->cfg.device_gap_ms == 0) {
        publish_to(g, did, topic, buf, len, 0);
        return;
    }
    if (q == NULL) q = devq_create(ps, did);
    if (q == NULL) {
        publish_to(g, did, topic, buf, len, 0);
        return;
    }
    if (q->ready && q->n == 0 && now - q->last_tx_ms >= (int64_t)g->cfg.device_gap_ms) {
        publish_to(g, did, topic, buf, len, 0);
        devq_sent(ps, q, now);
        return;
    }
    if (!q->ready) ps->held_for_sub++;
    if (!devq_push(ps, q, topic, buf, len, 0, kind))
        log_dropped(g, ps, did,
                    kind == MSG_COUNT ? "0x0210"
                    : kind == MSG_APP ? "app control"
                                      : "OTA push");
}

/* The same on ser2cli_res/<DID>, the topic of the cloud's own messages. */
static void send_to_device(struct gizp *g, const char *did, const uint8_t *buf, size_t len,
                           enum msg_kind kind)
{
    char topic[sizeof("ser2cli_res/") + GIZ_DID_SIZE];
    snprintf(topic, sizeof(topic), "ser2cli_res/%s", did);
    send_to_device_on(g, did, topic, buf, len, kind);
}

/* APP_PUBLISH (the app Open API's POST /app/control): the framed business
 * message on app2dev/<DID>/<client id>, paced like an app's own publish;
 * dropped (logged) when the device is not connected. */
static void handle_app_publish(struct gizp *g, const struct giz_outbox_item *it)
{
    char topic[sizeof("app2dev//") + GIZ_DID_SIZE + GIZ_CLIENTID_SIZE];
    struct did_state *ds = presence__did(g, it->did);
    size_t n = strlen(it->client_id);
    bool id_ok = n > 0 && n < GIZ_CLIENTID_SIZE;
    for (size_t i = 0; id_ok && i < n; i++)
        if (!giz_char_is_base62(it->client_id[i])) id_ok = false;
    if (!giz_did_valid(it->did) || !id_ok || it->payload_len == 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: outbox item #%lld: malformed app publish",
                             (long long)it->id);
        return;
    }
    if (ds == NULL || ds->device_conns == 0) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             "giz: app control #%lld for %s dropped: the device is offline",
                             (long long)it->id, it->did);
        return;
    }
    snprintf(topic, sizeof(topic), "app2dev/%s/%s", it->did, it->client_id);
    send_to_device_on(g, it->did, topic, it->payload, it->payload_len, MSG_APP);
}

void push__device_login(struct gizp *g, const struct mosquitto *ctx, const char *did)
{
    struct push_state *ps = ps_get(g);
    struct devq *q;
    if (ps == NULL) return;
    q = giz_map_sget(&ps->q, did);
    if (q == NULL) q = devq_create(ps, did);
    if (q == NULL) return;
    /* A new connection: whatever the old one had subscribed is gone (clean
     * session) — messages already queued stay for this one. */
    q->ctx = ctx;
    q->ready = false;
    q->subs = 0;
    q->res_ms = 0;
    q->login_ms = (int64_t)giz_mono_ms();
    q->last_tx_ms = q->login_ms; /* its CONNACK */
    q->persistent = !mosquitto_client_clean_session(ctx);
    list_del(q);
    if (q->persistent) { /* may hold its subscriptions from before: timer from login */
        q->timer_ms = q->login_ms;
        list_add_tail(&ps->waiting, q);
    }
}

void push__device_gone(struct gizp *g, const struct mosquitto *ctx, const char *did, bool last)
{
    struct devq *q = devq_get(g, did);
    if (q == NULL) return;
    /* A takeover's old context goes after the new one logged in: keep. */
    if (q->ctx == ctx || last) devq_free(g->push, q);
}

static void make_ready(struct push_state *ps, struct devq *q, int64_t now)
{
    q->ready = true;
    q->last_tx_ms = now; /* the SUBACK being queued right now (or nothing: fallback) */
    list_add_tail(&ps->ready, q);
}

void push__subscribed(struct gizp *g, const struct mosquitto *ctx, const struct did_state *dev,
                      const char *filter)
{
    struct devq *q = devq_get(g, dev->did);
    uint8_t bit;
    if (q == NULL || q->ctx != ctx || q->ready) return;
    if (strncmp(filter, "ser2cli_res/", 12) == 0)
        bit = SUB_RES;
    else if (strncmp(filter, "ser2cli_noti/", 13) == 0)
        bit = SUB_NOTI;
    else if (strncmp(filter, "app2dev/", 8) == 0)
        bit = SUB_APP;
    else
        return;
    int64_t now = (int64_t)giz_mono_ms();
    q->subs |= bit;
    if (bit == SUB_RES && q->res_ms == 0) { /* the fallback timer starts */
        q->res_ms = q->timer_ms = now;
        list_add_tail(&g->push->waiting, q);
    }
    /* mosquitto adds the subscription right after this check and queues the
     * SUBACK at the end of the SUBSCRIBE; anything we publish goes on the
     * next loop iteration at the earliest, after device_gap_ms. */
    if (q->subs == SUB_ALL) make_ready(g->push, q, now);
}

/* Fallback timers (ordered by start: only the head can be due). */
static void scan_waiting(struct gizp *g, struct push_state *ps, int64_t now)
{
    int64_t wait = (int64_t)g->cfg.sub_wait_ms;
    while (ps->waiting.next != &ps->waiting && now - ps->waiting.next->timer_ms >= wait)
        make_ready(ps, ps->waiting.next, now);
}

void push__tick(struct gizp *g, int64_t now)
{
    struct push_state *ps = g->push;
    int64_t gap = (int64_t)g->cfg.device_gap_ms;
    size_t budget;
    if (ps == NULL || ps->q.count == 0) return;
    scan_waiting(g, ps, now);
    /* Ready entries are ordered by last_tx_ms: only the head can be due. One
     * message per device per pass (an entry sent to moves to the tail). */
    budget = ps->q.count;
    while (budget-- > 0 && ps->ready.next != &ps->ready) {
        struct devq *q = ps->ready.next;
        if (now - q->last_tx_ms < gap) break;
        if (q->n > 0) {
            devq_send_one(g, ps, q, now);
            ps->paced++;
        } else {
            devq_free(ps, q);
        }
    }
}

int push__loop_timeout(struct gizp *g, int timeout_ms)
{
    struct push_state *ps = g->push;
    int64_t due, now;
    if (ps == NULL || ps->ready.next == &ps->ready) return timeout_ms;
    now = (int64_t)giz_mono_ms();
    due = ps->ready.next->last_tx_ms + (int64_t)g->cfg.device_gap_ms - now;
    if (due < 0) due = 0;
    return timeout_ms < 0 || due < timeout_ms ? (int)due : timeout_ms;
}

int push__pace_app_message(struct gizp *g, const struct mosquitto_evt_message *ed)
{
    const char *did = ed->topic + 8;
    const char *slash = strchr(did, '/');
    char key[GIZ_DID_SIZE];
    struct push_state *ps;
    struct did_state *ds;
    struct devq *q;
    int64_t now;
    if (g->cfg.device_gap_ms == 0 || slash == NULL || (size_t)(slash - did) != GIZ_DID_LEN)
        return MOSQ_ERR_SUCCESS;
    memcpy(key, did, GIZ_DID_LEN);
    key[GIZ_DID_LEN] = '\0';
    ds = presence__did(g, key);
    if (ds == NULL || ds->device_conns == 0) return MOSQ_ERR_SUCCESS; /* nobody to pace for */
    ps = ps_get(g);
    if (ps == NULL) return MOSQ_ERR_SUCCESS;
    now = (int64_t)giz_mono_ms();
    q = giz_map_sget(&ps->q, key);
    if (q == NULL) {
        q = devq_create(ps, key);
        if (q != NULL) devq_sent(ps, q, now);
        return MOSQ_ERR_SUCCESS;
    }
    if (!q->ready) {
        /* Not subscribed yet: mosquitto's routing decides, as without us. */
        q->last_tx_ms = now;
        return MOSQ_ERR_SUCCESS;
    }
    if (q->n == 0 && now - q->last_tx_ms >= (int64_t)g->cfg.device_gap_ms) {
        devq_sent(ps, q, now);
        return MOSQ_ERR_SUCCESS;
    }
    if (ps->bytes + ed->payloadlen > PUSHQ_MAX_BYTES) return MOSQ_ERR_SUCCESS; /* unpaced */
    if (!devq_push(ps, q, ed->topic, ed->payload, ed->payloadlen, ed->qos > 1 ? 1 : ed->qos,
                   MSG_APP)) {
        log_dropped(g, ps, key, "app message");
    }
    return MOSQ_ERR_ACL_DENIED;
}

void push__stats(const struct gizp *g, struct push_stats *out)
{
    const struct push_state *ps = g->push;
    memset(out, 0, sizeof(*out));
    if (ps == NULL) return;
    out->tracked = ps->q.count;
    out->queued_bytes = ps->bytes;
    out->paced = ps->paced;
    out->dropped = ps->dropped;
    out->held_for_sub = ps->held_for_sub;
}

/* ---- broker liveness ---------------------------------------------------------- */

bool push__beat_due(struct gizp *g, int64_t now_ms)
{
    struct push_state *ps = ps_get(g);
    return g->store != NULL && ps != NULL &&
           (!ps->beat_started || now_ms - ps->last_beat_ms >= BEAT_MS);
}

void push__beat(struct gizp *g, int64_t now_ms)
{
    struct push_state *ps = ps_get(g);
    struct presence_stats pr;
    bool swept = false;
    int rc;
    if (ps == NULL || g->store == NULL) return;
    ps->last_beat_ms = now_ms;
    presence__stats(g, &pr);
    rc = ps->beat_started ? giz_store_broker_beat(g->store, ps->pid, (int64_t)pr.devices, 0, &swept)
                          : GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_ERR_NOT_FOUND) {
        struct giz_broker b;
        if (ps->beat_started)
            mosquitto_log_printf(MOSQ_LOG_WARNING,
                                 "giz: another broker named %s took over its registry row in %s; "
                                 "recording this one (pid %lld) again",
                                 g->cfg.broker_name, g->cfg.db_shown, (long long)ps->pid);
        memset(&b, 0, sizeof(b));
        b.pid = ps->pid;
        memcpy(b.host, g->cfg.advertise_host, sizeof(b.host));
        b.port = g->cfg.advertise_port;
        b.tls_port = g->cfg.advertise_tls_port;
        rc = giz_store_broker_register(g->store, &b, 0);
        if (rc == GIZ_OK && ps->beat_started) swept = true; /* our devices may be marked offline */
        if (rc == GIZ_OK) ps->beat_started = true;
    }
    if (rc != GIZ_OK && plugin__rate_ok(&ps->rl_store, 5, "heartbeat errors"))
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: broker heartbeat not written: %s: %s",
                             giz_strerror(rc), giz_store_errmsg(g->store));
    if (swept) {
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: this broker (%s) was taken for dead while it was slow; "
                             "writing its %zu connected devices online again",
                             g->cfg.broker_name, pr.devices);
        presence__requeue_online(g);
    }
    /* Other brokers' deaths: a failure is only logged (the next beat retries). */
    rc = giz_store_broker_sweep(g->store, g->cfg.broker_timeout_ms, NULL);
    if (rc != GIZ_OK && plugin__rate_ok(&ps->rl_store, 5, "sweep errors"))
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: dead-broker sweep failed: %s: %s",
                             giz_strerror(rc), giz_store_errmsg(g->store));
}

int push__init(struct gizp *g)
{
    struct push_state *ps = ps_get(g);
    if (ps == NULL) return -1;
    if (giz_store_outbox_last_id(g->store, &ps->outbox_last_id) != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "giz: database %s not usable: %s", g->cfg.db_shown,
                             giz_store_errmsg(g->store));
        return -1;
    }
    return 0;
}

void push__free(struct gizp *g)
{
    struct push_state *ps = g->push;
    if (ps == NULL) return;
    if (ps->beat_started && g->store != NULL) {
        int rc = giz_store_broker_stop(g->store, ps->pid, 0);
        if (rc != GIZ_OK)
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: clean stop not recorded: %s",
                                 giz_strerror(rc));
    }
    giz_map_free(&ps->q, devq_drop); /* every record, in a list or not */
    free(ps);
    g->push = NULL;
}

/* ---- cloud messages ------------------------------------------------------------- */

static bool app_count_encode(const struct did_state *ds, uint8_t *buf, size_t cap, size_t *len)
{
    struct giz_msg msg;
    memset(&msg, 0, sizeof(msg));
    msg.cmd = GIZ_CMD_APP_COUNT;
    msg.u.app_count.count = ds->app_count > 0xffffu ? 0xffffu : (uint16_t)ds->app_count;
    return giz_msg_encode(&msg, buf, cap, len) == GIZ_OK;
}

void push__app_count(struct gizp *g, struct did_state *ds)
{
    uint8_t buf[16];
    size_t len = 0;
    if (ds == NULL || ds->device_conns == 0) return;
    if (!app_count_encode(ds, buf, sizeof(buf), &len)) return;
    send_to_device(g, ds->did, buf, len, MSG_COUNT);
}

/* It asked, so it listens: the answer skips the subscription wait but is
 * still paced. */
void push__answer_app_count(struct gizp *g, struct did_state *ds)
{
    uint8_t buf[16];
    size_t len = 0;
    struct devq *q = devq_get(g, ds->did);
    if (!app_count_encode(ds, buf, sizeof(buf), &len)) return;
    if (q != NULL && !q->ready) {
        char topic[sizeof("ser2cli_res/") + GIZ_DID_SIZE];
        snprintf(topic, sizeof(topic), "ser2cli_res/%s", ds->did);
        publish_to(g, ds->did, topic, buf, len, 0);
        q->last_tx_ms = (int64_t)giz_mono_ms();
        return;
    }
    send_to_device(g, ds->did, buf, len, MSG_COUNT);
}

/* ---- OTA ------------------------------------------------------------------ */

static void ota_send(struct gizp *g, const struct giz_outbox_item *it, const char *did)
{
    struct giz_msg msg;
    uint8_t buf[PUSH_BUF];
    size_t len = 0;
    int rc;
    memset(&msg, 0, sizeof(msg));
    uint8_t type = (uint8_t)(it->fw_type == 2 ? 2 : 1);
    if (it->ota_version == 40) {
        msg.cmd = GIZ_CMD_OTA_PUSH_V40;
        msg.u.ota40.type = type;
        msg.u.ota40.fid = (uint32_t)it->fid;
        msg.u.ota40.url.ptr = (const uint8_t *)it->url;
        msg.u.ota40.url.len = strlen(it->url);
    } else {
        msg.cmd = GIZ_CMD_OTA_PUSH_V41;
        msg.u.ota41.type = type;
        msg.u.ota41.did.ptr = (const uint8_t *)did;
        msg.u.ota41.did.len = strlen(did);
    }
    rc = giz_msg_encode(&msg, buf, sizeof(buf), &len);
    if (rc != GIZ_OK) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: OTA push #%lld to %s not encodable: %s",
                             (long long)it->id, did, giz_strerror(rc));
        return;
    }
    send_to_device(g, did, buf, len, MSG_OTA);
}

struct ota_walk {
    struct gizp *g;
    const struct giz_outbox_item *it;
    unsigned sent;
};

static int ota_walk_cb(struct did_state *ds, void *ud)
{
    struct ota_walk *w = ud;
    if (ds->device_conns > 0 && strcmp(ds->product_key, w->it->product_key) == 0) {
        ota_send(w->g, w->it, ds->did);
        w->sent++;
    }
    return 0;
}

static void handle_ota(struct gizp *g, const struct giz_outbox_item *it)
{
    struct ota_walk w = {g, it, 0};
    if (it->did[0] != '\0') {
        struct did_state *ds = presence__did(g, it->did);
        if (ds != NULL && ds->device_conns > 0) {
            ota_send(g, it, it->did);
            w.sent = 1;
        }
    } else if (it->product_key[0] != '\0') {
        presence__foreach_did(g, ota_walk_cb, &w);
    }
    mosquitto_log_printf(
        MOSQ_LOG_NOTICE, "giz: OTA push #%lld (%s%s, v%d type %d) sent to %u online device(s)",
        (long long)it->id, it->did[0] ? "device " : "product ",
        it->did[0] ? it->did : it->product_key, it->ota_version, it->fw_type, w.sent);
}

/* ---- outbox ----------------------------------------------------------------- */

struct outbox_batch {
    struct giz_outbox_item *items;
    size_t n;
};

static int outbox_cb(const struct giz_outbox_item *it, void *ud)
{
    struct outbox_batch *b = ud;
    if (b->n >= OUTBOX_BATCH) return 1;
    b->items[b->n++] = *it;
    return 0;
}

/* Acts on one outbox item (after the fetch statement is done: a kick
 * re-enters our DISCONNECT callback, and BINDING needs the store again). */
static void outbox_act(struct gizp *g, const struct giz_outbox_item *it)
{
    events__outbox_seen(g, it->created_at);
    switch (it->kind) {
    case GIZ_OUTBOX_OTA_PUSH:
        handle_ota(g, it);
        break;
    case GIZ_OUTBOX_DEVICE_DISABLED:
        if (it->did[0] != '\0') {
            auth__forget(g, it->did);
            events__kicked(g, it->did, "device disabled");
            int krc = mosquitto_kick_client_by_clientid(it->did, false);
            mosquitto_log_printf(MOSQ_LOG_NOTICE, "giz: device %s disabled%s", it->did,
                                 krc == MOSQ_ERR_SUCCESS ? ", live session closed" : "");
        }
        break;
    case GIZ_OUTBOX_BINDING:
        if (it->did[0] != '\0' && it->uid[0] != '\0')
            presence__binding_changed(g, it->uid, it->did);
        break;
    case GIZ_OUTBOX_APP_PUBLISH:
        handle_app_publish(g, it);
        break;
    default:
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: outbox item #%lld of unknown kind %d",
                             (long long)it->id, it->kind);
        break;
    }
}

/* Ids skipped by the position (a gap below a newer item) are looked for again
 * for OUTBOX_GAP_MS: on PostgreSQL two GServices' inserts may commit out of
 * id order (SQLite has one writer: no gaps but from rollbacks, which never
 * fill). A gap older than that is a rolled-back insert. */
static void gaps_note(struct push_state *ps, int64_t from, int64_t to, int64_t now)
{
    int64_t n = to - from, room = (int64_t)(OUTBOX_GAPS - ps->ngaps);
    for (int64_t i = 0; i < n && i < room; i++) {
        ps->gaps[ps->ngaps].id = from + i;
        ps->gaps[ps->ngaps++].since_ms = now;
    }
    if (n > room && plugin__rate_ok(&ps->rl_store, 5, "outbox gaps"))
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: outbox ids %lld..%lld skipped; %lld of them are not looked for "
                             "again (more than %u gaps at once)",
                             (long long)from, (long long)(to - 1), (long long)(n - room),
                             OUTBOX_GAPS);
}

static void gaps_check(struct gizp *g, struct push_state *ps, struct outbox_batch *b, int64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < ps->ngaps; i++) /* expire, keeping the order (ascending ids) */
        if (now - ps->gaps[i].since_ms < OUTBOX_GAP_MS) ps->gaps[keep++] = ps->gaps[i];
    ps->ngaps = keep;
    if (ps->ngaps == 0) return;
    b->n = 0;
    if (giz_store_outbox_fetch(g->store, ps->gaps[0].id - 1, OUTBOX_BATCH, outbox_cb, b) != GIZ_OK)
        return;
    for (size_t i = 0; i < b->n; i++) {
        const struct giz_outbox_item *it = &b->items[i];
        for (size_t k = 0; k < ps->ngaps; k++) {
            if (ps->gaps[k].id != it->id) continue;
            memmove(&ps->gaps[k], &ps->gaps[k + 1], (ps->ngaps - k - 1) * sizeof(ps->gaps[0]));
            ps->ngaps--;
            mosquitto_log_printf(MOSQ_LOG_INFO,
                                 "giz: outbox item #%lld committed late; acting on it",
                                 (long long)it->id);
            outbox_act(g, it);
            break;
        }
    }
}

void push__poll_outbox(struct gizp *g)
{
    struct push_state *ps = g->push;
    struct outbox_batch b;
    int64_t now = (int64_t)giz_mono_ms();
    int rc;
    if (ps == NULL) return;
    b.items = malloc(OUTBOX_BATCH * sizeof(*b.items));
    b.n = 0;
    if (b.items == NULL) return;
    rc = giz_store_outbox_fetch(g->store, ps->outbox_last_id, OUTBOX_BATCH, outbox_cb, &b);
    if (rc != GIZ_OK) {
        if (plugin__rate_ok(&ps->rl_store, 5, "outbox errors"))
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: outbox read failed: %s: %s",
                                 giz_strerror(rc), giz_store_errmsg(g->store));
        free(b.items);
        return;
    }
    for (size_t i = 0; i < b.n; i++) {
        const struct giz_outbox_item *it = &b.items[i];
        if (it->id <= ps->outbox_last_id) continue;
        gaps_note(ps, ps->outbox_last_id + 1, it->id, now);
        ps->outbox_last_id = it->id;
        outbox_act(g, it);
    }
    gaps_check(g, ps, &b, now);
    free(b.items);
}
