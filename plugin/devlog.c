/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device-log storage: the records devices send as 0x0012 on dev2app/<DID>
 * (and the 0x021E / 0x021C / 0x022C reports message.c turns into records)
 * are stored through a per-device token bucket (log_rate per second, up to
 * log_burst; the bucket lives in the DID's presence record), queued in
 * memory (at most log_max per batch) and inserted by plugin.c's DB batch
 * in the same transaction as the presence changes. Every log_prune_ms the
 * table is trimmed to the newest log_keep records per device (only after
 * records were stored since the last prune: that statement scans the whole
 * table) and outbox items older than an hour are deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

/* A queued record; text holds tags, source and content back to back. */
struct pending_log {
    char did[GIZ_DID_SIZE];
    int level;
    int64_t ts;
    size_t tags_len, source_len, content_len;
    char *text;
};

struct devlog {
    struct pending_log *pend;
    size_t pend_n, pend_cap;
    unsigned dropped; /* records dropped (queue full) since the last line */
    int64_t last_prune_ms;
    bool since_prune;           /* a record was stored since the last prune */
    uint64_t over_rate;         /* records not stored (over log_rate), for the log line */
    struct rate_limit rl_rate;  /* "over log_rate" lines */
    struct rate_limit rl_store; /* prune errors */
};

int devlog__init(struct gizp *g)
{
    struct devlog *d = calloc(1, sizeof(*d));
    if (d == NULL) return -1;
    d->last_prune_ms = (int64_t)giz_mono_ms();
    d->since_prune = true; /* the first prune also trims what an older run left */
    g->devlog = d;
    return 0;
}

bool devlog__allow(struct gizp *g, struct did_state *ds)
{
    struct devlog *d = g->devlog;
    uint32_t now = (uint32_t)giz_mono_ms();
    uint64_t cap = (uint64_t)g->cfg.log_burst * 1000u;
    uint64_t tokens;
    if (now == 0) now = 1; /* 0 means "no record yet" */
    if (ds->log_refill_ms == 0) {
        ds->log_tokens = (uint32_t)cap;
        ds->log_refill_ms = now;
    }
    tokens = ds->log_tokens + (uint64_t)(uint32_t)(now - ds->log_refill_ms) * g->cfg.log_rate;
    ds->log_tokens = (uint32_t)(tokens > cap ? cap : tokens);
    ds->log_refill_ms = now;
    if (ds->log_tokens >= 1000u) {
        ds->log_tokens -= 1000u;
        return true;
    }
    d->over_rate++;
    if (plugin__rate_ok(&d->rl_rate, 5, "over-rate device log lines"))
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "giz: device %s: 0x0012 log records over plugin_opt_log_rate (%u/s, "
                             "burst %u) are not stored (%llu so far)",
                             ds->did, g->cfg.log_rate, g->cfg.log_burst,
                             (unsigned long long)d->over_rate);
    return false;
}

uint64_t devlog__over_rate(const struct gizp *g)
{
    return g->devlog != NULL ? g->devlog->over_rate : 0;
}

void devlog__prune(struct gizp *g, int64_t now_ms)
{
    struct devlog *d = g->devlog;
    int rc;
    if (now_ms - d->last_prune_ms < (int64_t)g->cfg.log_prune_ms || g->store == NULL) return;
    d->last_prune_ms = now_ms;
    /* The prune looks only at devices that logged since the last one. */
    if (g->cfg.log_keep > 0 && d->since_prune) {
        d->since_prune = false;
        rc = giz_store_log_prune(g->store, g->cfg.log_keep);
        if (rc != GIZ_OK && plugin__rate_ok(&d->rl_store, 5, "prune errors"))
            mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: device log pruning failed: %s: %s",
                                 giz_strerror(rc), giz_store_errmsg(g->store));
    }
    rc = giz_store_outbox_prune(g->store, plugin__unix_now() - 3600);
    if (rc != GIZ_OK && plugin__rate_ok(&d->rl_store, 5, "prune errors"))
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: outbox pruning failed: %s: %s",
                             giz_strerror(rc), giz_store_errmsg(g->store));
}

void devlog__add(struct gizp *g, const char *did, int level, const void *tags, size_t tags_len,
                 const void *source, size_t source_len, const void *content, size_t content_len)
{
    struct devlog *d = g->devlog;
    struct pending_log *e;
    if (d->pend_n >= g->cfg.log_max) {
        d->dropped++;
        return;
    }
    e = giz_array_reserve(d->pend, &d->pend_cap, d->pend_n + 1u, sizeof(*e), 32u, SIZE_MAX);
    if (e == NULL) return;
    d->pend = e;
    e = &d->pend[d->pend_n];
    e->text = malloc(tags_len + source_len + content_len + 1u);
    if (e->text == NULL) return;
    if (tags_len) memcpy(e->text, tags, tags_len);
    if (source_len) memcpy(e->text + tags_len, source, source_len);
    if (content_len) memcpy(e->text + tags_len + source_len, content, content_len);
    e->text[tags_len + source_len + content_len] = '\0';
    snprintf(e->did, sizeof(e->did), "%s", did);
    e->level = level;
    e->ts = plugin__unix_now();
    e->tags_len = tags_len;
    e->source_len = source_len;
    e->content_len = content_len;
    d->pend_n++;
}

static void pending_clear(struct devlog *d)
{
    for (size_t i = 0; i < d->pend_n; i++)
        free(d->pend[i].text);
    d->pend_n = 0;
}

bool devlog__pending(struct gizp *g)
{
    struct devlog *d = g->devlog;
    if (d->dropped > 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "giz: %u device log records dropped (queue full)",
                             d->dropped);
        d->dropped = 0;
    }
    return d->pend_n > 0;
}

int devlog__write(struct gizp *g)
{
    const struct devlog *d = g->devlog;
    for (size_t i = 0; i < d->pend_n; i++) {
        const struct pending_log *l = &d->pend[i];
        int rc = giz_store_log_insert(g->store, l->did, l->level, l->text, l->tags_len,
                                      l->text + l->tags_len, l->source_len,
                                      l->text + l->tags_len + l->source_len, l->content_len, l->ts);
        if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND && rc != GIZ_ERR_INVAL) return rc;
    }
    return GIZ_OK;
}

void devlog__written(struct gizp *g)
{
    struct devlog *d = g->devlog;
    if (d->pend_n > 0) d->since_prune = true;
    pending_clear(d);
}

void devlog__failed(struct gizp *g)
{
    struct devlog *d = g->devlog;
    /* Kept for the next batch (the DB may be briefly locked by the
     * GService); dropped if they pile up. */
    if (d->pend_n >= g->cfg.log_max) {
        d->dropped += (unsigned)d->pend_n;
        pending_clear(d);
    }
}

void devlog__free(struct gizp *g)
{
    struct devlog *d = g->devlog;
    if (d == NULL) return;
    pending_clear(d);
    free(d->pend);
    free(d);
    g->devlog = NULL;
}
