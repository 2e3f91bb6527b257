/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The only meeting point of the front-listener thread and mosquitto's main
 * thread. mosquitto's API is not thread-safe, so the helper thread never
 * calls it: it queues log lines here and the main thread drains the queue
 * on MOSQ_EVT_TICK. The peer-address map (client id -> the front
 * connection's compact address, formatted on demand as "ip:port") lets
 * the main thread name the real client address in its log lines although
 * mosquitto only sees the unix socket. Both are guarded by mutexes; the
 * main thread's cheap "is anything queued?" check is one atomic load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "plugin.h"

#define HANDOFF_MAX_QUEUED 4096u

int handoff__init(struct handoff *h)
{
    memset(h, 0, sizeof(*h));
    if (pthread_mutex_init(&h->lock, NULL) != 0) return -1;
    if (pthread_mutex_init(&h->peer_lock, NULL) != 0) {
        pthread_mutex_destroy(&h->lock);
        return -1;
    }
    if (map__init(&h->peers) != 0) {
        pthread_mutex_destroy(&h->lock);
        pthread_mutex_destroy(&h->peer_lock);
        return -1;
    }
    atomic_init(&h->pending, 0u);
    return 0;
}

void handoff__free(struct handoff *h)
{
    struct handoff_item *it = h->head;
    while (it != NULL) {
        struct handoff_item *next = it->next;
        free(it);
        it = next;
    }
    h->head = h->tail = NULL;
    map__free(&h->peers, NULL); /* values point into the front's connections */
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->peer_lock);
}

void handoff__log(struct handoff *h, int level, const char *text)
{
    size_t n = strlen(text);
    struct handoff_item *it = malloc(sizeof(*it) + n + 1u);
    if (it == NULL) return;
    it->next = NULL;
    it->level = level;
    memcpy(it->text, text, n + 1u);
    pthread_mutex_lock(&h->lock);
    if (h->queued >= HANDOFF_MAX_QUEUED) {
        h->dropped++;
        pthread_mutex_unlock(&h->lock);
        free(it);
        return;
    }
    if (h->tail != NULL)
        h->tail->next = it;
    else
        h->head = it;
    h->tail = it;
    h->queued++;
    atomic_store(&h->pending, 1u);
    pthread_mutex_unlock(&h->lock);
}

static int mosq_level(int level)
{
    switch (level) {
    case GIZ_LOG_ERR:
        return MOSQ_LOG_ERR;
    case GIZ_LOG_WARN:
        return MOSQ_LOG_WARNING;
    case GIZ_LOG_INFO:
        return MOSQ_LOG_NOTICE;
    default:
        return MOSQ_LOG_DEBUG;
    }
}

void handoff__drain(struct handoff *h)
{
    struct handoff_item *it;
    unsigned dropped;
    if (atomic_load(&h->pending) == 0u) return;
    pthread_mutex_lock(&h->lock);
    it = h->head;
    h->head = h->tail = NULL;
    h->queued = 0;
    dropped = h->dropped;
    h->dropped = 0;
    atomic_store(&h->pending, 0u);
    pthread_mutex_unlock(&h->lock);
    while (it != NULL) {
        struct handoff_item *next = it->next;
        mosquitto_log_printf(mosq_level(it->level), "giz: %s", it->text);
        free(it);
        it = next;
    }
    if (dropped > 0)
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: %u front-listener log lines dropped", dropped);
}

void handoff__peer_format(const struct peer_addr *p, char *out, size_t cap)
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

void handoff__peer_set(struct handoff *h, const char *client_id, size_t id_len,
                       const struct peer_addr *addr)
{
    void *old = NULL;
    pthread_mutex_lock(&h->peer_lock);
    (void)map__put(&h->peers, client_id, id_len, (void *)(uintptr_t)addr, &old);
    pthread_mutex_unlock(&h->peer_lock);
}

void handoff__peer_forget(struct handoff *h, const char *client_id, size_t id_len,
                          const struct peer_addr *addr)
{
    pthread_mutex_lock(&h->peer_lock);
    if (map__get(&h->peers, client_id, id_len) == addr) map__remove(&h->peers, client_id, id_len);
    pthread_mutex_unlock(&h->peer_lock);
}

void handoff__peer_get(struct handoff *h, const char *client_id, char *out, size_t cap)
{
    const struct peer_addr *p;
    if (cap == 0) return;
    snprintf(out, cap, "?");
    if (client_id == NULL) return;
    pthread_mutex_lock(&h->peer_lock);
    p = map__sget(&h->peers, client_id);
    if (p != NULL) handoff__peer_format(p, out, cap);
    pthread_mutex_unlock(&h->peer_lock);
}
