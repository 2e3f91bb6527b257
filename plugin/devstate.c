/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Devices' latest data points. message.c hands every device publish on
 * dev2app/<DID>[/...] to devstate__message: for 0x0091 and 0x0093 (and a
 * read reply in the 0x0094 that answers an app's 0x0093) whose p0
 * action is a status (0x03/0x04 fixed, 0x13/0x14 variable) and whose product
 * has a data-point schema, the p0 is decoded (giz_p0_decode) and the attrs
 * are queued for plugin.c's DB batch, which writes them with the other
 * batched rows (giz_store_device_state_report: a fixed report replaces the
 * state, a variable one is merged). Reports of one DID within a batch are
 * folded into one row. A report that does not decode is queued as malformed
 * (its error and first bytes), never acted on, and logged (rate-limited).
 * Schemas are read from the store on first use per product key and cached
 * for SCHEMA_TTL_MS (an operator's re-import is seen within that time; "no
 * schema" is cached the same way).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "giz/p0.h"
#include "plugin.h"

#define SCHEMA_TTL_MS 5000
#define MAX_PENDING 8192u  /* queued rows per batch; more are dropped (counted) */
#define MALFORMED_HEX 128u /* p0 bytes kept of a malformed report */

struct cached_schema {
    struct giz_p0_schema *schema; /* NULL: the product has none */
    int64_t loaded_ms;
};

/* One queued row: a report (attrs) or a malformed record (error, hex). */
struct pending_state {
    char did[GIZ_DID_SIZE];
    bool malformed;
    bool replace;
    int64_t ts_ms;
    cJSON *attrs;
    char *error, *hex;
};

struct devstate {
    struct giz_map schemas; /* product key -> struct cached_schema */
    struct pending_state *pend;
    size_t pend_n, pend_cap;
    struct giz_map pend_by_did; /* DID -> index + 1 of its report row in pend */
    uint64_t reports, malformed, dropped;
    struct rate_limit rl_bad;
};

static void cached_free(void *v)
{
    struct cached_schema *c = v;

    if (c) giz_p0_schema_free(c->schema);
    free(c);
}

static void pending_clear(struct pending_state *p)
{
    cJSON_Delete(p->attrs);
    free(p->error);
    free(p->hex);
    memset(p, 0, sizeof *p);
}

int devstate__init(struct gizp *g)
{
    struct devstate *d = calloc(1, sizeof *d);

    if (!d) return -1;
    if (giz_map_init(&d->schemas) != GIZ_OK || giz_map_init(&d->pend_by_did) != GIZ_OK) {
        giz_map_free(&d->schemas, NULL);
        free(d);
        return -1;
    }
    g->devstate = d;
    return 0;
}

void devstate__free(struct gizp *g)
{
    struct devstate *d = g ? g->devstate : NULL;

    if (!d) return;
    for (size_t i = 0; i < d->pend_n; i++)
        pending_clear(&d->pend[i]);
    free(d->pend);
    giz_map_free(&d->pend_by_did, NULL);
    giz_map_free(&d->schemas, cached_free);
    free(d);
    g->devstate = NULL;
}

/* The product's schema (NULL: none or not readable now), from the cache or the store. */
static const struct giz_p0_schema *schema_for(struct gizp *g, const char *pk, int64_t now)
{
    struct devstate *d = g->devstate;
    struct cached_schema *c = giz_map_sget(&d->schemas, pk);
    char *json = NULL;
    size_t len = 0;
    struct giz_error e;
    int rc;

    if (c && now - c->loaded_ms < SCHEMA_TTL_MS) return c->schema;
    if (!c) {
        void *old = NULL;

        if (!(c = calloc(1, sizeof *c))) return NULL;
        if (giz_map_put(&d->schemas, pk, strlen(pk), c, &old) != GIZ_OK) {
            free(c);
            return NULL;
        }
    }
    c->loaded_ms = now;
    rc = giz_store_datapoints_get(g->store, pk, &json, &len, NULL);
    if (rc == GIZ_ERR_NOT_FOUND) {
        giz_p0_schema_free(c->schema);
        c->schema = NULL;
    } else if (rc == GIZ_OK) {
        struct giz_p0_schema *s = NULL;

        if (giz_p0_schema_parse(json, len, &s, &e) == GIZ_OK) {
            giz_p0_schema_free(c->schema);
            c->schema = s;
        } else if (plugin__rate_ok(&d->rl_bad, 10, "data-point lines")) {
            giz_log(GIZ_LOG_WARN, "product %s: stored data points do not parse: %s", pk, e.text);
        }
    } /* a store error keeps the previous schema; retried after the TTL */
    free(json);
    return c->schema;
}

static struct pending_state *pend_add(struct devstate *d, const char *did)
{
    struct pending_state *p;

    if (d->pend_n >= MAX_PENDING) {
        d->dropped++;
        return NULL;
    }
    if (d->pend_n == d->pend_cap) {
        size_t cap = d->pend_cap ? d->pend_cap * 2 : 64;
        struct pending_state *n = realloc(d->pend, cap * sizeof *n);

        if (!n) {
            d->dropped++;
            return NULL;
        }
        d->pend = n;
        d->pend_cap = cap;
    }
    p = &d->pend[d->pend_n++];
    memset(p, 0, sizeof *p);
    memcpy(p->did, did, strnlen(did, GIZ_DID_SIZE - 1));
    return p;
}

/* Queues decoded attrs (takes them): folded into the DID's row of this batch. */
static void queue_report(struct devstate *d, const char *did, cJSON *attrs, bool full,
                         int64_t ts_ms)
{
    uintptr_t idx = (uintptr_t)giz_map_sget(&d->pend_by_did, did);
    struct pending_state *p;

    if (idx) {
        p = &d->pend[idx - 1];
        if (full) {
            cJSON_Delete(p->attrs);
            p->attrs = attrs;
            p->replace = true;
        } else {
            while (attrs->child) {
                cJSON *item = cJSON_DetachItemViaPointer(attrs, attrs->child);
                const char *name = item->string;

                cJSON *had = cJSON_GetObjectItemCaseSensitive(p->attrs, name);

                /* via the pointer: item keeps its own key (the by-name call would
                 * free the key it is given, which is item's) */
                if (had)
                    cJSON_ReplaceItemViaPointer(p->attrs, had, item);
                else
                    cJSON_AddItemToObject(p->attrs, name, item);
            }
            cJSON_Delete(attrs);
        }
        p->ts_ms = ts_ms;
        return;
    }
    if (!(p = pend_add(d, did))) {
        cJSON_Delete(attrs);
        return;
    }
    p->attrs = attrs;
    p->replace = full;
    p->ts_ms = ts_ms;
    /* on failure the row is still written, only not folded with later ones */
    (void)giz_map_put(&d->pend_by_did, p->did, strlen(p->did), (void *)(uintptr_t)d->pend_n, NULL);
}

static void queue_malformed(struct gizp *g, const char *did, const uint8_t *p0, size_t len,
                            const struct giz_error *e, int64_t ts_ms)
{
    static const char digits[] = "0123456789abcdef";
    struct devstate *d = g->devstate;
    struct pending_state *p;
    char text[200];
    size_t n = len < MALFORMED_HEX ? len : MALFORMED_HEX;

    d->malformed++;
    snprintf(text, sizeof text, "%s at byte %zu: %s", giz_errname(e->code), e->offset, e->text);
    if (plugin__rate_ok(&d->rl_bad, 10, "malformed data-point lines"))
        giz_log(GIZ_LOG_WARN, "device %s: data points did not decode: %s", did, text);
    if (!(p = pend_add(d, did))) return;
    p->malformed = true;
    p->ts_ms = ts_ms;
    p->error = strdup(text);
    p->hex = malloc(2 * n + 1);
    if (p->hex) {
        for (size_t i = 0; i < n; i++) {
            p->hex[2 * i] = digits[p0[i] >> 4];
            p->hex[2 * i + 1] = digits[p0[i] & 15];
        }
        p->hex[2 * n] = 0;
    }
}

/* Wall clock in unix milliseconds (the rows' updated_at / malformed_at). */
static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Cheap peek: the command of a framed payload, or 0. */
static uint16_t framed_cmd(const uint8_t *p, size_t len)
{
    uint32_t v = 0;
    size_t used = 0;

    if (len < 8 || p[0] != 0 || p[1] != 0 || p[2] != 0 || p[3] != 3) return 0;
    if (giz_varint_decode(p + 4, len - 4, &v, &used) != GIZ_OK || 4 + used + 3 > len) return 0;
    return (uint16_t)(p[4 + used + 1] << 8 | p[4 + used + 2]);
}

void devstate__message(struct gizp *g, const struct did_state *ds, const uint8_t *payload,
                       size_t len)
{
    struct devstate *d = g->devstate;
    uint16_t cmd = framed_cmd(payload, len);
    const struct giz_p0_schema *schema;
    struct giz_msg msg;
    struct giz_p0_msg m;
    struct giz_error e;
    struct giz_view body;
    int64_t now = (int64_t)giz_mono_ms();
    int rc;

    if (!d || (cmd != GIZ_CMD_BIZ_REPLY && cmd != GIZ_CMD_BIZ_SN && cmd != GIZ_CMD_BIZ_SN_ACK) ||
        ds->product_key[0] == 0)
        return;
    if (!(schema = schema_for(g, ds->product_key, now))) return;
    memset(&e, 0, sizeof e);
    if (giz_msg_decode(payload, len, &msg, &e) != GIZ_OK) {
        queue_malformed(g, ds->did, payload, len, &e, wall_ms());
        return;
    }
    body = cmd == GIZ_CMD_BIZ_REPLY ? msg.u.biz.data : msg.u.biz_sn.data;
    if (body.len == 0 ||
        (!giz_p0_action_is_status(body.ptr[0]) && giz_p0_action_name(body.ptr[0]) != NULL))
        return; /* writes, reads and pass-through are not state */
    rc = giz_p0_decode(schema, body.ptr, body.len, &m, &e);
    if (rc == GIZ_OK && m.attrs) {
        d->reports++;
        queue_report(d, ds->did, m.attrs,
                     m.action == GIZ_P0_READ_REPLY || m.action == GIZ_P0_REPORT, wall_ms());
        m.attrs = NULL;
    } else if (rc == GIZ_ERR_NOMEM) {
        d->dropped++;
    } else if (rc != GIZ_OK) {
        queue_malformed(g, ds->did, body.ptr, body.len, &e, wall_ms());
    }
    giz_p0_msg_clear(&m);
}

bool devstate__pending(const struct gizp *g)
{
    return g->devstate && g->devstate->pend_n > 0;
}

int devstate__write(struct gizp *g)
{
    struct devstate *d = g->devstate;

    for (size_t i = 0; d && i < d->pend_n; i++) {
        struct pending_state *p = &d->pend[i];
        int rc;

        if (p->malformed) {
            rc = giz_store_device_state_malformed(g->store, p->did, p->error, p->hex, p->ts_ms);
        } else {
            char *text = giz_p0_attrs_text(p->attrs);

            if (!text) {
                d->dropped++;
                continue;
            }
            rc = giz_store_device_state_report(g->store, p->did, text, p->replace, p->ts_ms);
            cJSON_free(text);
        }
        if (rc == GIZ_ERR_NOT_FOUND || rc == GIZ_ERR_INVAL) continue; /* device deleted */
        if (rc != GIZ_OK) return rc;
    }
    return GIZ_OK;
}

void devstate__written(struct gizp *g)
{
    struct devstate *d = g->devstate;

    if (!d) return;
    for (size_t i = 0; i < d->pend_n; i++) {
        if (!d->pend[i].malformed)
            giz_map_remove(&d->pend_by_did, d->pend[i].did, strlen(d->pend[i].did));
        pending_clear(&d->pend[i]);
    }
    d->pend_n = 0;
}

void devstate__failed(struct gizp *g)
{
    (void)g; /* rows stay queued for the next batch (bounded by MAX_PENDING) */
}

void devstate__stats(const struct gizp *g, uint64_t *reports, uint64_t *malformed,
                     uint64_t *dropped)
{
    const struct devstate *d = g->devstate;

    *reports = d ? d->reports : 0;
    *malformed = d ? d->malformed : 0;
    *dropped = d ? d->dropped : 0;
}
