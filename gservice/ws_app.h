/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Private header of the WebSocket app API (/ws/app/v1): the hub (ws_hub.c:
 * one thread owning every upgraded socket in an epoll set, the sessions and
 * their libmosquitto connections) and the message set (ws_msg.c: login_req,
 * subscribe_req, c2s_*, the s2c_* answers). ws_route.c answers the HTTP
 * handshake on libmicrohttpd's worker and hands the upgraded socket over.
 */
#ifndef GS_WS_APP_H
#define GS_WS_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include "giz/store.h"
#include "giz/ws.h"
#include "gservice.h"

struct cJSON;
struct mosquitto;
struct giz_p0_schema;

#define GS_WS_MAX_MESSAGE (64u * 1024u) /* one client message (fragments joined) */
#define GS_WS_MAX_OUT (1024u * 1024u)   /* queued toward a client: past it the client is cut */
#define GS_WS_MAX_INBOX 1024u           /* broker messages waiting for the hub, per session */
#define GS_WS_MAX_SUBS 1000u            /* subscribed devices per session */
#define GS_WS_MAX_IN_FLIGHT 512u        /* publishes not yet written to the broker */
#define GS_WS_LOGIN_WAIT_MS 30000u      /* from the upgrade to login_req */
#define GS_WS_CONNECT_WAIT_MS 10000u    /* login_req to the broker's CONNACK */
#define GS_WS_CLOSE_WAIT_MS 2000u       /* our close frame to the socket's end */
#define GS_WS_POLL_MS 1000u             /* online status and bindings from the store */
#define GS_WS_DEFAULT_MAX_SESSIONS 1024u
#define GS_WS_MAX_LOGIN_FAILURES 5u /* refused tokens per connection, then close 1008 */
/* s2c_invalid_msg error_code for "log in (again)": the Gizwits JS SDK re-sends login_req on it */
#define GS_WS_E_LOGIN 1009

/* Broker -> hub items (filled on a libmosquitto thread). */
enum ws_item_kind { WS_IT_CONNACK = 1, WS_IT_MESSAGE, WS_IT_GONE };
struct ws_item {
    struct ws_item *next;
    int kind;
    int rc;
    char topic[96];
    size_t len;
    uint8_t data[];
};

enum ws_state { WS_WAIT_LOGIN = 0, WS_CONNECTING, WS_READY };

/* A subscribed device. */
struct ws_dev {
    char did[GIZ_DID_SIZE];
    char mac[GIZ_MAC_SIZE];
    char product_key[GIZ_PK_SIZE];
    int online;                   /* -1 unknown (nothing sent yet), 0, 1 */
    struct giz_p0_schema *schema; /* attrs_v4: the product's data points (NULL = none) */
    bool schema_tried;
};

/* One broker connection per app client id (the login's mqtt_client_id),
 * shared by every WebSocket session logged in with that token: the JS SDK
 * opens two (attrs_v4 and custom) at once, and the broker keeps one
 * connection per client id. Device subscriptions are counted per DID. */
struct ws_link_sub {
    char did[GIZ_DID_SIZE];
    unsigned refs;
};
struct ws_link {
    struct ws_link *next, *prev; /* the hub's list of links new logins may join */
    struct gs_ws *hub;
    char client_id[GIZ_CLIENTID_SIZE];
    char uid[GIZ_UID_SIZE];
    struct mosquitto *mosq;
    bool listed, ready, gone;
    struct ws_sess **members;
    size_t n_members, cap_members;
    struct ws_link_sub *subs;
    size_t n_subs, cap_subs;
    atomic_uint in_flight; /* publishes libmosquitto has not written yet */
    /* under hub->mu: */
    struct ws_link *ready_next;
    bool in_ready, in_closing;
    struct ws_item *in_head, *in_tail;
    unsigned in_n;
    uint64_t in_dropped;
};

struct ws_sess {
    struct ws_sess *next, *prev; /* the hub's list (hub thread) */
    struct gs_ws *hub;
    /* hub thread only: */
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    char peer[64];
    struct giz_ws_reader rd;
    struct giz_buf out;
    uint32_t ep_mask; /* the epoll events registered */
    bool closing;     /* our close frame is queued: flush, then end */
    bool dead;        /* end at the next sweep */
    uint64_t opened_ms, last_rx_ms, close_at_ms, login_at_ms;
    enum ws_state state;
    char uid[GIZ_UID_SIZE];
    char client_id[GIZ_CLIENTID_SIZE];
    char appid[GIZ_PK_SIZE];
    bool custom; /* p0_type "custom" */
    bool auto_subscribe;
    unsigned login_failures;
    unsigned heartbeat_s;
    int64_t expire_at;
    struct ws_link *link;        /* the broker connection of its client id (shared) */
    char (*bound)[GIZ_DID_SIZE]; /* the user's bindings, sorted (store poll) */
    size_t n_bound;
    bool bound_known;
    struct ws_dev *subs;
    size_t n_subs, cap_subs;
};

struct gs_ws {
    struct gs_server *srv;
    pthread_t thread;
    bool started;
    int epfd, evfd;
    pthread_mutex_t mu;     /* incoming, every session's inbox, the ready list, stop */
    pthread_cond_t drained; /* an inbox was emptied (a held libmosquitto thread goes on) */
    struct ws_sess *incoming;
    struct ws_link *ready; /* links with broker items waiting */
    bool stop;
    /* hub thread */
    struct ws_sess *sessions;
    unsigned n_sessions;
    struct ws_link *links;
    uint64_t next_poll_ms;
    char broker_host[GS_HOST_SIZE];
    unsigned broker_port;
    unsigned max_sessions;
    atomic_uint live; /* sessions accepted and not yet ended (any thread reads) */
    atomic_uint_fast64_t n_sessions_total, n_msgs_in, n_msgs_out, n_cut_slow, n_dropped, n_invalid;
};

/* ws_hub.c */
/* start before the daemons (0 / -1 logged); stop after quiescing them
 * (every session is closed, later upgrades are refused); free after
 * MHD_stop_daemon. Both are safe on an unstarted hub and twice. */
int gs_ws_start(struct gs_server *srv);
void gs_ws_stop(struct gs_server *srv);
void gs_ws_free(struct gs_server *srv);
/* The hub's series for GET /metrics (gizcloud_ws_*), malloc'd text; NULL
 * when no hub runs or out of memory. */
char *gs_ws_metrics(struct gs_server *srv);
/* From the upgrade callback (a libmicrohttpd thread): gives the socket to
 * the hub; closes it through urh when the hub is stopped or full. */
void gs_ws_adopt(struct gs_server *srv, int fd, struct MHD_UpgradeResponseHandle *urh,
                 const char *extra, size_t extra_len, const char *peer);
/* Queues a JSON text frame (takes `j`); a client too slow to take it is cut. */
void ws_send_json(struct ws_sess *s, struct cJSON *j);
/* {"cmd": cmd, "data": data} (data may be NULL: no "data" member). */
void ws_send_cmd(struct ws_sess *s, const char *cmd, struct cJSON *data);
void ws_send_invalid(struct ws_sess *s, int code, const char *msg);
/* Queues a close frame and ends the session once it is written. */
void ws_close(struct ws_sess *s, uint16_t code, const char *reason);
/* Joins the broker link of s->client_id, starting it (as the app user,
 * password `token`) if there is none; state -> WS_CONNECTING. 1 when the
 * link is already up (the login is complete now), 0 when its CONNACK is
 * awaited, -1 on failure. */
int ws_link_attach(struct ws_sess *s, const char *token);
/* Leaves the link (its subscriptions counted down; the last session ends it). */
void ws_link_detach(struct ws_sess *s);
/* Publishes payload on app2dev/<did>/<client id>. */
int ws_mqtt_publish(struct ws_sess *s, const char *did, const uint8_t *p, size_t n);
int ws_mqtt_subscribe(struct ws_sess *s, const char *did, bool on);
uint64_t ws_now_ms(void);

/* ws_msg.c (hub thread) */
void ws_msg_text(struct ws_sess *s, const uint8_t *p, size_t n);
void ws_msg_broker(struct ws_sess *s, struct ws_item *it);
/* The login completed (the broker accepted the user): login_res, bindings,
 * auto_subscribe. */
void ws_msg_login_done(struct ws_sess *s);
/* The periodic look at the store: bindings and online flags of one session
 * (st borrowed by the caller; broker_alive as gs_broker_alive said). */
void ws_msg_poll(struct ws_sess *s, struct giz_store *st, bool broker_alive);
void ws_dev_free(struct ws_dev *d);

#endif
