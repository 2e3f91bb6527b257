/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The WebSocket hub: one thread owning every upgraded /ws/app/v1 socket in
 * an epoll set (level-triggered, non-blocking reads and writes), so no
 * WebSocket I/O ever runs on libmicrohttpd's workers. Each session has a
 * bounded output buffer (a client that lets GS_WS_MAX_OUT pile up is cut),
 * a frame reader (giz/ws.h) and, once logged in, its own libmosquitto
 * connection to the broker as the app user (client id = the session's
 * mqtt_client_id, username = uid, password = token): the broker's plugin
 * checks the token and applies the app ACL to every publish and delivery,
 * exactly as for an app speaking MQTT. libmosquitto's network thread only
 * queues CONNACK / message / disconnect items in the session's bounded inbox
 * and wakes the hub through an eventfd. Once a second the hub looks at the
 * store for binding changes and the online flags of subscribed devices.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#include "giz/error.h"
#include "giz/log.h"
#include "giz/proto.h"
#include "giz/util.h"
#include "ws_app.h"

uint64_t ws_now_ms(void)
{
    return giz_mono_ms();
}

static void wake(struct gs_ws *h)
{
    uint64_t one = 1;
    ssize_t r = write(h->evfd, &one, sizeof one);
    (void)r; /* a full counter already wakes the hub */
}

/* ---- broker links (callbacks on libmosquitto's thread) -------------------- */

static void inbox_push(struct ws_link *l, int kind, int rc, const char *topic, const void *p,
                       size_t n)
{
    struct gs_ws *h = l->hub;
    struct ws_item *it = malloc(sizeof *it + n);
    pthread_mutex_lock(&h->mu);
    if (kind == WS_IT_MESSAGE && l->in_n >= GS_WS_MAX_INBOX && !l->in_closing) {
        /* back-pressure: hold libmosquitto's thread (and so the broker's
         * TCP stream) until the hub drains, for a bounded time */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 2;
        while (l->in_n >= GS_WS_MAX_INBOX && !l->in_closing)
            if (pthread_cond_timedwait(&h->drained, &h->mu, &until) != 0) break;
    }
    if (it == NULL || (kind == WS_IT_MESSAGE && l->in_n >= GS_WS_MAX_INBOX)) {
        l->in_dropped++;
        atomic_fetch_add(&h->n_dropped, 1);
        pthread_mutex_unlock(&h->mu);
        free(it);
        return;
    }
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->rc = rc;
    if (topic != NULL) snprintf(it->topic, sizeof it->topic, "%s", topic);
    it->len = n;
    if (n > 0) memcpy(it->data, p, n);
    if (l->in_tail != NULL)
        l->in_tail->next = it;
    else
        l->in_head = it;
    l->in_tail = it;
    l->in_n++;
    bool need_wake = !l->in_ready;
    if (!l->in_ready) {
        l->in_ready = true;
        l->ready_next = h->ready;
        h->ready = l;
    }
    pthread_mutex_unlock(&h->mu);
    if (need_wake) wake(h);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    inbox_push(ud, WS_IT_CONNACK, rc, NULL, NULL, 0);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    /* no reconnect: the hub ends the sessions and the clients reconnect */
    mosquitto_disconnect(m);
    inbox_push(ud, WS_IT_GONE, rc, NULL, NULL, 0);
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    struct ws_link *l = ud;
    (void)m;
    (void)mid;
    if (atomic_load(&l->in_flight) > 0) atomic_fetch_sub(&l->in_flight, 1);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    if (msg->topic == NULL || strlen(msg->topic) >= sizeof((struct ws_item *)0)->topic) return;
    if (msg->payloadlen < 0 || (size_t)msg->payloadlen > GIZ_MAX_BIZ + 16u) return;
    inbox_push(ud, WS_IT_MESSAGE, 0, msg->topic, msg->payload, (size_t)msg->payloadlen);
}

/* ---- broker links (hub thread) ---------------------------------------------- */

static void link_unlist(struct gs_ws *h, struct ws_link *l)
{
    if (!l->listed) return;
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        h->links = l->next;
    if (l->next != NULL) l->next->prev = l->prev;
    l->next = l->prev = NULL;
    l->listed = false;
}

static void link_free(struct gs_ws *h, struct ws_link *l)
{
    link_unlist(h, l);
    pthread_mutex_lock(&h->mu);
    l->in_closing = true; /* a held libmosquitto thread lets go */
    pthread_cond_broadcast(&h->drained);
    pthread_mutex_unlock(&h->mu);
    if (l->mosq != NULL) {
        mosquitto_disconnect(l->mosq);
        mosquitto_loop_stop(l->mosq, false);
        mosquitto_destroy(l->mosq);
        l->mosq = NULL;
    }
    pthread_mutex_lock(&h->mu);
    struct ws_item *it = l->in_head;
    l->in_head = l->in_tail = NULL;
    if (l->in_ready) {
        for (struct ws_link **pp = &h->ready; *pp != NULL; pp = &(*pp)->ready_next) {
            if (*pp == l) {
                *pp = l->ready_next;
                break;
            }
        }
        l->in_ready = false;
    }
    pthread_mutex_unlock(&h->mu);
    while (it != NULL) {
        struct ws_item *nx = it->next;
        free(it);
        it = nx;
    }
    if (l->in_dropped > 0)
        giz_log(GIZ_LOG_INFO, "ws: broker link %s ended, %" PRIu64 " messages dropped",
                l->client_id, l->in_dropped);
    free(l->subs);
    free(l->members);
    free(l);
}

int ws_link_attach(struct ws_sess *s, const char *token)
{
    struct gs_ws *h = s->hub;
    struct ws_link *l = h->links;
    while (l != NULL && (strcmp(l->client_id, s->client_id) != 0 || strcmp(l->uid, s->uid) != 0))
        l = l->next;
    bool fresh = l == NULL;
    if (fresh) {
        l = calloc(1, sizeof *l);
        if (l == NULL) return -1;
        l->hub = h;
        snprintf(l->client_id, sizeof l->client_id, "%s", s->client_id);
        snprintf(l->uid, sizeof l->uid, "%s", s->uid);
        l->mosq = mosquitto_new(l->client_id, true, l);
        if (l->mosq == NULL) {
            free(l);
            return -1;
        }
        mosquitto_connect_callback_set(l->mosq, on_connect);
        mosquitto_disconnect_callback_set(l->mosq, on_disconnect);
        mosquitto_message_callback_set(l->mosq, on_message);
        mosquitto_publish_callback_set(l->mosq, on_publish);
        char user[80];
        if (s->appid[0] != '\0')
            snprintf(user, sizeof user, "2$%s$%s", s->appid, s->uid);
        else
            snprintf(user, sizeof user, "%s", s->uid);
        int rc = mosquitto_username_pw_set(l->mosq, user, token);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_connect_async(l->mosq, h->broker_host, (int)h->broker_port, 60);
        if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop_start(l->mosq);
        if (rc != MOSQ_ERR_SUCCESS) {
            giz_log(GIZ_LOG_WARN, "ws %s: broker %s:%u: %s", s->peer, h->broker_host,
                    h->broker_port, mosquitto_strerror(rc));
            mosquitto_destroy(l->mosq);
            free(l);
            return -1;
        }
        l->next = h->links;
        if (h->links != NULL) h->links->prev = l;
        h->links = l;
        l->listed = true;
    }
    void *p = giz_array_reserve(l->members, &l->cap_members, l->n_members + 1, sizeof *l->members,
                                4, SIZE_MAX);
    if (p == NULL) {
        if (fresh) link_free(h, l);
        return -1;
    }
    l->members = p;
    l->members[l->n_members++] = s;
    s->link = l;
    s->state = WS_CONNECTING;
    s->login_at_ms = ws_now_ms();
    return l->ready ? 1 : 0;
}

void ws_link_detach(struct ws_sess *s)
{
    struct ws_link *l = s->link;
    if (l == NULL) return;
    for (size_t i = 0; i < s->n_subs; i++)
        ws_mqtt_subscribe(s, s->subs[i].did, false);
    for (size_t i = 0; i < l->n_members; i++) {
        if (l->members[i] == s) {
            l->members[i] = l->members[--l->n_members];
            break;
        }
    }
    s->link = NULL;
    if (l->n_members == 0) link_free(s->hub, l);
}

int ws_mqtt_publish(struct ws_sess *s, const char *did, const uint8_t *p, size_t n)
{
    struct ws_link *l = s->link;
    char topic[96];
    if (l == NULL || l->mosq == NULL || !l->ready || l->gone) return GIZ_ERR_IO;
    snprintf(topic, sizeof topic, "app2dev/%s/%s", did, l->client_id);
    /* QoS 0 publishes wait in libmosquitto's queue until written: bounded */
    if (atomic_load(&l->in_flight) >= GS_WS_MAX_IN_FLIGHT) return GIZ_ERR_OVERSIZE;
    atomic_fetch_add(&l->in_flight, 1);
    int rc = mosquitto_publish(l->mosq, NULL, topic, (int)n, p, 0, false);
    if (rc != MOSQ_ERR_SUCCESS) atomic_fetch_sub(&l->in_flight, 1);
    return rc == MOSQ_ERR_SUCCESS ? GIZ_OK : GIZ_ERR_IO;
}

/* The broker subscription of a device is shared by the link's sessions:
 * subscribed with the first, unsubscribed with the last. */
int ws_mqtt_subscribe(struct ws_sess *s, const char *did, bool on)
{
    struct ws_link *l = s->link;
    if (l == NULL || l->mosq == NULL) return GIZ_ERR_IO;
    size_t i = 0;
    while (i < l->n_subs && strcmp(l->subs[i].did, did) != 0)
        i++;
    if (on && i < l->n_subs) {
        l->subs[i].refs++;
        return GIZ_OK;
    }
    if (!on && (i == l->n_subs || --l->subs[i].refs > 0)) return GIZ_OK;
    char t1[96], t2[96];
    char *const topics[2] = {t1, t2};
    snprintf(t1, sizeof t1, "dev2app/%s", did);
    snprintf(t2, sizeof t2, "dev2app/%s/%s", did, l->client_id);
    if (!on) {
        l->subs[i] = l->subs[--l->n_subs];
        if (!l->gone) mosquitto_unsubscribe_multiple(l->mosq, NULL, 2, topics, NULL);
        return GIZ_OK;
    }
    void *p = giz_array_reserve(l->subs, &l->cap_subs, l->n_subs + 1, sizeof *l->subs, 8, SIZE_MAX);
    if (p == NULL) return GIZ_ERR_NOMEM;
    l->subs = p;
    int rc = mosquitto_subscribe_multiple(l->mosq, NULL, 2, topics, 0, 0, NULL);
    if (rc != MOSQ_ERR_SUCCESS) return GIZ_ERR_IO;
    snprintf(l->subs[l->n_subs].did, GIZ_DID_SIZE, "%s", did);
    l->subs[l->n_subs++].refs = 1;
    return GIZ_OK;
}

/* ---- sessions (hub thread) -------------------------------------------------- */

/* The events the hub waits for: input unless our close frame is queued
 * (reads are shut then: a level-triggered EPOLLIN would spin), output while
 * bytes wait. */
static void epoll_set(struct ws_sess *s, bool out)
{
    uint32_t mask = (s->closing ? 0 : (EPOLLIN | EPOLLRDHUP)) | (out ? EPOLLOUT : 0);
    if (mask == s->ep_mask) return;
    struct epoll_event ev = {.events = mask, .data.ptr = s};
    if (epoll_ctl(s->hub->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0) s->ep_mask = mask;
}

static void flush(struct ws_sess *s)
{
    while (s->out.len > 0 && !s->dead) {
        ssize_t n = send(s->fd, s->out.data, s->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            giz_buf_consume(&s->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        s->dead = true; /* the peer is gone */
    }
    if (s->dead) return;
    if (s->out.len == 0 && s->closing) {
        s->dead = true;
        return;
    }
    epoll_set(s, s->out.len > 0);
}

static void queue_frame(struct ws_sess *s, uint8_t op, const void *p, size_t n)
{
    if (s->dead || s->closing) return;
    int rc = giz_ws_frame_append(&s->out, op, p, n, NULL);
    if (rc == GIZ_ERR_OVERSIZE) {
        atomic_fetch_add(&s->hub->n_cut_slow, 1);
        giz_log(GIZ_LOG_WARN, "ws %s (%s): client too slow (%zu bytes waiting), cut", s->peer,
                s->uid[0] ? s->uid : "-", s->out.len);
        s->dead = true;
        return;
    }
    if (rc != GIZ_OK) {
        s->dead = true;
        return;
    }
    if (op == GIZ_WS_OP_TEXT) atomic_fetch_add(&s->hub->n_msgs_out, 1);
    flush(s);
}

void ws_send_json(struct ws_sess *s, cJSON *j)
{
    char *txt = j != NULL ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (txt == NULL) {
        s->dead = true;
        return;
    }
    queue_frame(s, GIZ_WS_OP_TEXT, txt, strlen(txt));
    cJSON_free(txt);
}

void ws_send_cmd(struct ws_sess *s, const char *cmd, cJSON *data)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL) {
        cJSON_Delete(data);
        s->dead = true;
        return;
    }
    cJSON_AddStringToObject(j, "cmd", cmd);
    if (data != NULL) cJSON_AddItemToObject(j, "data", data);
    ws_send_json(s, j);
}

void ws_send_invalid(struct ws_sess *s, int code, const char *msg)
{
    atomic_fetch_add(&s->hub->n_invalid, 1);
    cJSON *d = cJSON_CreateObject();
    if (d != NULL) {
        cJSON_AddNumberToObject(d, "error_code", code);
        cJSON_AddStringToObject(d, "msg", msg);
    }
    ws_send_cmd(s, "s2c_invalid_msg", d);
}

void ws_close(struct ws_sess *s, uint16_t code, const char *reason)
{
    if (s->dead || s->closing) return;
    /* room for the close frame even when the buffer is nearly full */
    if (s->out.len + 140 > s->out.max) {
        s->dead = true;
        return;
    }
    if (giz_ws_close_append(&s->out, code, reason) != GIZ_OK) {
        s->dead = true;
        return;
    }
    s->closing = true;
    s->close_at_ms = ws_now_ms() + GS_WS_CLOSE_WAIT_MS;
    shutdown(s->fd, SHUT_RD);
    flush(s);
}

static void sess_read(struct ws_sess *s)
{
    uint8_t buf[16384];
    size_t budget = 256u * 1024u; /* then let the others have a turn */
    while (!s->dead && !s->closing && budget > 0) {
        size_t room = giz_ws_reader_room(&s->rd);
        size_t want = room < sizeof buf ? room : sizeof buf;
        if (want == 0) {
            ws_close(s, GIZ_WS_CLOSE_TOO_BIG, "message too big");
            return;
        }
        ssize_t n = recv(s->fd, buf, want, 0);
        if (n == 0) {
            s->dead = true; /* peer closed without a close frame */
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) s->dead = true;
            return;
        }
        budget -= (size_t)n < budget ? (size_t)n : budget;
        s->last_rx_ms = ws_now_ms();
        if (giz_ws_reader_push(&s->rd, buf, (size_t)n) != GIZ_OK) {
            ws_close(s, GIZ_WS_CLOSE_TOO_BIG, "message too big");
            return;
        }
        for (;;) {
            struct giz_ws_event ev;
            giz_ws_reader_next(&s->rd, &ev);
            if (ev.kind == GIZ_WS_EV_NONE) break;
            if (ev.kind == GIZ_WS_EV_TEXT) {
                atomic_fetch_add(&s->hub->n_msgs_in, 1);
                ws_msg_text(s, ev.data, ev.len);
            } else if (ev.kind == GIZ_WS_EV_BINARY) {
                ws_send_invalid(s, GS_E_FORM_INVALID, "binary frames are not used: send JSON text");
            } else if (ev.kind == GIZ_WS_EV_PING) {
                queue_frame(s, GIZ_WS_OP_PONG, ev.data, ev.len);
            } else if (ev.kind == GIZ_WS_EV_CLOSE) {
                ws_close(s,
                         ev.close_code == GIZ_WS_CLOSE_NO_STATUS ? GIZ_WS_CLOSE_NORMAL
                                                                 : ev.close_code,
                         "");
                return;
            } else if (ev.kind == GIZ_WS_EV_ERROR) {
                giz_log(GIZ_LOG_INFO, "ws %s: %s, closing (%u)", s->peer, ev.why, ev.close_code);
                ws_close(s, ev.close_code, ev.why);
                return;
            }
            if (s->dead || s->closing) return;
        }
    }
}

static void sess_free(struct gs_ws *h, struct ws_sess *s)
{
    epoll_ctl(h->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    ws_link_detach(s); /* the last session of a link ends its broker connection */
    if (s->prev != NULL)
        s->prev->next = s->next;
    else if (h->sessions == s)
        h->sessions = s->next;
    if (s->next != NULL) s->next->prev = s->prev;
    h->n_sessions--;
    atomic_fetch_sub(&h->live, 1);
    giz_log(GIZ_LOG_INFO, "ws %s (%s) ended", s->peer, s->uid[0] ? s->uid : "not logged in");
    MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
    giz_ws_reader_free(&s->rd);
    giz_buf_free(&s->out);
    for (size_t i = 0; i < s->n_subs; i++)
        ws_dev_free(&s->subs[i]);
    free(s->subs);
    free(s->bound);
    free(s);
}

void gs_ws_adopt(struct gs_server *srv, int fd, struct MHD_UpgradeResponseHandle *urh,
                 const char *extra, size_t extra_len, const char *peer)
{
    struct gs_ws *h = srv->ws;
    struct ws_sess *s = NULL;
    if (h != NULL && atomic_load(&h->live) < h->max_sessions) s = calloc(1, sizeof *s);
    if (s == NULL) {
        giz_log(GIZ_LOG_WARN, "ws %s: refused (hub stopped or %u sessions)", peer,
                h != NULL ? h->max_sessions : 0);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    s->hub = h;
    s->fd = fd;
    s->urh = urh;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    giz_ws_reader_init(&s->rd, GS_WS_MAX_MESSAGE, true);
    giz_buf_init(&s->out, GS_WS_MAX_OUT);
    s->opened_ms = s->last_rx_ms = ws_now_ms();
    s->heartbeat_s = 180;
    if (extra_len > 0 && giz_ws_reader_push(&s->rd, extra, extra_len) != GIZ_OK) s->dead = true;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    atomic_fetch_add(&h->live, 1);
    atomic_fetch_add(&h->n_sessions_total, 1);
    pthread_mutex_lock(&h->mu);
    bool stopped = h->stop;
    if (!stopped) {
        s->next = h->incoming;
        h->incoming = s;
    }
    pthread_mutex_unlock(&h->mu);
    if (stopped) {
        atomic_fetch_sub(&h->live, 1);
        giz_ws_reader_free(&s->rd);
        free(s);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    wake(h);
}

static void take_incoming(struct gs_ws *h)
{
    pthread_mutex_lock(&h->mu);
    struct ws_sess *s = h->incoming;
    h->incoming = NULL;
    pthread_mutex_unlock(&h->mu);
    while (s != NULL) {
        struct ws_sess *nx = s->next;
        s->prev = NULL;
        s->next = h->sessions;
        if (h->sessions != NULL) h->sessions->prev = s;
        h->sessions = s;
        h->n_sessions++;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
        if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) s->dead = true;
        s->ep_mask = EPOLLIN | EPOLLRDHUP;
        giz_log(GIZ_LOG_INFO, "ws %s opened", s->peer);
        if (!s->dead && s->rd.in.len > 0) { /* bytes that came with the handshake */
            for (;;) {
                struct giz_ws_event e;
                giz_ws_reader_next(&s->rd, &e);
                if (e.kind == GIZ_WS_EV_NONE || s->dead || s->closing) break;
                if (e.kind == GIZ_WS_EV_TEXT) ws_msg_text(s, e.data, e.len);
                if (e.kind == GIZ_WS_EV_ERROR || e.kind == GIZ_WS_EV_CLOSE)
                    ws_close(s, e.kind == GIZ_WS_EV_ERROR ? e.close_code : GIZ_WS_CLOSE_NORMAL, "");
            }
        }
        s = nx;
    }
}

static void take_ready(struct gs_ws *h)
{
    pthread_mutex_lock(&h->mu);
    struct ws_link *l = h->ready;
    h->ready = NULL;
    for (struct ws_link *x = l; x != NULL; x = x->ready_next)
        x->in_ready = false;
    pthread_mutex_unlock(&h->mu);
    while (l != NULL) {
        struct ws_link *nx = l->ready_next;
        pthread_mutex_lock(&h->mu);
        struct ws_item *it = l->in_head;
        l->in_head = l->in_tail = NULL;
        l->in_n = 0;
        pthread_cond_broadcast(&h->drained);
        pthread_mutex_unlock(&h->mu);
        while (it != NULL) {
            struct ws_item *inx = it->next;
            if (it->kind == WS_IT_CONNACK) {
                l->ready = it->rc == 0;
                if (!l->ready) {
                    l->gone = true;
                    link_unlist(h, l); /* refused: the next login makes a new link */
                }
            } else if (it->kind == WS_IT_GONE) {
                l->gone = true;
                l->ready = false;
                link_unlist(h, l);
            }
            /* a session may end (and the link with it) only at the sweep */
            for (size_t i = 0; i < l->n_members; i++)
                if (!l->members[i]->dead) ws_msg_broker(l->members[i], it);
            free(it);
            it = inx;
        }
        l = nx;
    }
}

static void timers(struct gs_ws *h, uint64_t now)
{
    for (struct ws_sess *s = h->sessions; s != NULL; s = s->next) {
        if (s->dead) continue;
        if (s->closing) {
            if (now >= s->close_at_ms) s->dead = true;
            continue;
        }
        if (s->state == WS_WAIT_LOGIN && now - s->opened_ms > GS_WS_LOGIN_WAIT_MS) {
            ws_close(s, GIZ_WS_CLOSE_POLICY, "no login_req");
        } else if (s->state == WS_CONNECTING && now - s->login_at_ms > GS_WS_CONNECT_WAIT_MS) {
            giz_log(GIZ_LOG_WARN, "ws %s: broker %s:%u did not answer", s->peer, h->broker_host,
                    h->broker_port);
            cJSON *d = cJSON_CreateObject();
            cJSON_AddBoolToObject(d, "success", false);
            ws_send_cmd(s, "login_res", d);
            ws_close(s, GIZ_WS_CLOSE_INTERNAL, "broker unreachable");
        } else if (s->state == WS_READY &&
                   now - s->last_rx_ms > 2u * 1000u * (uint64_t)s->heartbeat_s + 5000u) {
            ws_close(s, GIZ_WS_CLOSE_POLICY, "heartbeat missed");
        }
    }
    if (now < h->next_poll_ms) return;
    h->next_poll_ms = now + GS_WS_POLL_MS;
    bool any = false;
    for (struct ws_sess *s = h->sessions; s != NULL && !any; s = s->next)
        any = s->state == WS_READY && !s->dead;
    if (!any) return;
    struct giz_store *st = gs_store_acquire(&h->srv->pool);
    if (st == NULL) return;
    bool alive = gs_broker_alive(h->srv, st, NULL);
    for (struct ws_sess *s = h->sessions; s != NULL; s = s->next)
        if (s->state == WS_READY && !s->dead && !s->closing) ws_msg_poll(s, st, alive);
    gs_store_release(&h->srv->pool, st);
}

static void sweep(struct gs_ws *h)
{
    struct ws_sess *s = h->sessions;
    while (s != NULL) {
        struct ws_sess *nx = s->next;
        if (s->dead) sess_free(h, s);
        s = nx;
    }
}

static void *hub_main(void *arg)
{
    struct gs_ws *h = arg;
    struct epoll_event evs[64];
    for (;;) {
        pthread_mutex_lock(&h->mu);
        bool stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        if (stop) break;
        int n = epoll_wait(h->epfd, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            struct ws_sess *s = evs[i].data.ptr;
            if (s == NULL) {
                uint64_t v;
                ssize_t r = read(h->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            if (s->dead) continue;
            if (evs[i].events & EPOLLOUT) flush(s);
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
                if (s->closing) {
                    /* reads are shut: wait for the flush or the deadline */
                    if (evs[i].events & (EPOLLHUP | EPOLLERR)) s->dead = true;
                } else {
                    sess_read(s);
                }
            }
        }
        take_incoming(h);
        take_ready(h);
        timers(h, ws_now_ms());
        sweep(h);
    }
    /* stopping: say goodbye to everyone, then end them */
    take_incoming(h);
    for (struct ws_sess *s = h->sessions; s != NULL; s = s->next)
        ws_close(s, GIZ_WS_CLOSE_GOING_AWAY, "server stopping");
    for (struct ws_sess *s = h->sessions; s != NULL; s = s->next)
        s->dead = true;
    sweep(h);
    return NULL;
}

char *gs_ws_metrics(struct gs_server *srv)
{
    struct gs_ws *h = srv->ws;
    struct giz_buf b;
    if (h == NULL) return NULL;
    giz_buf_init(&b, 4096);
    giz_buf_printf(&b,
                   "# HELP gizcloud_ws_sessions Open /ws/app/v1 sessions.\n"
                   "# TYPE gizcloud_ws_sessions gauge\n"
                   "gizcloud_ws_sessions %u\n"
                   "# HELP gizcloud_ws_sessions_total /ws/app/v1 sessions accepted.\n"
                   "# TYPE gizcloud_ws_sessions_total counter\n"
                   "gizcloud_ws_sessions_total %" PRIu64 "\n"
                   "# HELP gizcloud_ws_messages_total WebSocket JSON messages by direction.\n"
                   "# TYPE gizcloud_ws_messages_total counter\n"
                   "gizcloud_ws_messages_total{direction=\"in\"} %" PRIu64 "\n"
                   "gizcloud_ws_messages_total{direction=\"out\"} %" PRIu64 "\n"
                   "# HELP gizcloud_ws_invalid_total s2c_invalid_msg answers sent.\n"
                   "# TYPE gizcloud_ws_invalid_total counter\n"
                   "gizcloud_ws_invalid_total %" PRIu64 "\n"
                   "# HELP gizcloud_ws_slow_cut_total WebSocket clients cut for not reading.\n"
                   "# TYPE gizcloud_ws_slow_cut_total counter\n"
                   "gizcloud_ws_slow_cut_total %" PRIu64 "\n"
                   "# HELP gizcloud_ws_broker_dropped_total Broker messages dropped for a full "
                   "session inbox.\n"
                   "# TYPE gizcloud_ws_broker_dropped_total counter\n"
                   "gizcloud_ws_broker_dropped_total %" PRIu64 "\n",
                   atomic_load(&h->live), (uint64_t)atomic_load(&h->n_sessions_total),
                   (uint64_t)atomic_load(&h->n_msgs_in), (uint64_t)atomic_load(&h->n_msgs_out),
                   (uint64_t)atomic_load(&h->n_invalid), (uint64_t)atomic_load(&h->n_cut_slow),
                   (uint64_t)atomic_load(&h->n_dropped));
    return (char *)giz_buf_take(&b, NULL);
}

static unsigned env_uint(const char *name, unsigned def, unsigned min, unsigned max)
{
    const char *v = getenv(name);
    uint64_t x = 0;
    if (v == NULL || v[0] == '\0') return def;
    if (giz_parse_uint(v, 10, min, max, &x) != GIZ_OK) {
        giz_log(GIZ_LOG_WARN, "%s=%s is not a number in [%u, %u]; using %u", name, v, min, max,
                def);
        return def;
    }
    return (unsigned)x;
}

int gs_ws_start(struct gs_server *srv)
{
    struct gs_ws *h = calloc(1, sizeof *h);
    if (h == NULL) return -1;
    h->srv = srv;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->drained, &ca);
    pthread_condattr_destroy(&ca);
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const char *bh = getenv("GIZ_WS_BROKER_HOST");
    snprintf(h->broker_host, sizeof h->broker_host, "%s",
             bh != NULL && bh[0] != '\0' ? bh : srv->cfg.m2m_host);
    h->broker_port = env_uint("GIZ_WS_BROKER_PORT", srv->cfg.m2m_port, 1, 65535);
    h->max_sessions = env_uint("GIZ_WS_MAX_SESSIONS", GS_WS_DEFAULT_MAX_SESSIONS, 0, 1000000);
    srv->ws = h;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (h->epfd < 0 || h->evfd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->evfd, &ev) != 0) {
        giz_log(GIZ_LOG_ERR, "ws: epoll/eventfd: %s", strerror(errno));
        return -1;
    }
    mosquitto_lib_init();
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
        giz_log(GIZ_LOG_ERR, "ws: cannot start the hub thread");
        mosquitto_lib_cleanup();
        return -1;
    }
    h->started = true;
    giz_log(GIZ_LOG_INFO, "ws: /ws/app/v1 ready (broker %s:%u, at most %u sessions)",
            h->broker_host, h->broker_port, h->max_sessions);
    return 0;
}

void gs_ws_stop(struct gs_server *srv)
{
    struct gs_ws *h = srv->ws;
    if (h == NULL) return;
    pthread_mutex_lock(&h->mu);
    h->stop = true; /* from now on gs_ws_adopt closes what it is given */
    pthread_mutex_unlock(&h->mu);
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stop = true;
        pthread_mutex_unlock(&h->mu);
        wake(h);
        pthread_join(h->thread, NULL);
        h->started = false;
        mosquitto_lib_cleanup();
        giz_log(GIZ_LOG_INFO,
                "ws: stopped (%" PRIu64 " sessions, %" PRIu64 " messages in, %" PRIu64
                " out, %" PRIu64 " invalid, %" PRIu64 " slow clients cut, %" PRIu64
                " broker messages dropped)",
                (uint64_t)atomic_load(&h->n_sessions_total), (uint64_t)atomic_load(&h->n_msgs_in),
                (uint64_t)atomic_load(&h->n_msgs_out), (uint64_t)atomic_load(&h->n_invalid),
                (uint64_t)atomic_load(&h->n_cut_slow), (uint64_t)atomic_load(&h->n_dropped));
    }
}

void gs_ws_free(struct gs_server *srv)
{
    struct gs_ws *h = srv->ws;
    if (h == NULL) return;
    gs_ws_stop(srv);
    if (h->epfd >= 0) close(h->epfd);
    if (h->evfd >= 0) close(h->evfd);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->drained);
    srv->ws = NULL;
    free(h);
}
