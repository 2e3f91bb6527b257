/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The admin API of OTA campaigns (issue 16): POST /admin/ota/campaigns
 * creates one (targets resolved at once, 201 with the campaign), GET lists
 * them (paged, newest first), GET /admin/ota/campaigns/<id> shows one with
 * its counts per device state and its devices (paged, ?state= filter), and
 * POST /admin/ota/campaigns/<id>/pause|resume|cancel changes its state.
 * The states of the devices come from the engine (campaign.c), which every
 * change here wakes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"

#define LIST_MAX 10000       /* entries of a DID / MAC / canary list */
#define TIMEOUT_DEFAULT 600  /* s without progress after a notice */
#define TIMEOUT_MAX 604800   /* a week */
#define MAX_CHECKS_DEFAULT 3 /* OTA checks at the old version before "failed" */

static void store_error(struct gs_request *rq, int rc)
{
    giz_log(GIZ_LOG_ERR, "%s: store: %s", gs_route_name(rq->route), giz_strerror(rc));
    gs_respond_error(rq, 500, "server_error", giz_strerror(rc));
}

static bool bad(struct gs_request *rq, const char *msg)
{
    gs_respond_error(rq, 400, "bad_request", msg);
    return false;
}

/* An optional whole number field in [lo, hi] into *out (kept when absent). */
static bool num_field(struct gs_request *rq, const cJSON *body, const char *key, double lo,
                      double hi, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    char msg[128];
    if (v == NULL || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        snprintf(msg, sizeof msg, "%s must be a whole number from %.0f to %.0f", key, lo, hi);
        return bad(rq, msg);
    }
    *out = (int64_t)v->valuedouble;
    return true;
}

/* An optional string field (at most cap - 1 bytes, checked by ok) into out. */
static bool str_field(struct gs_request *rq, const cJSON *body, const char *key, char *out,
                      size_t cap, bool (*ok)(const char *))
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    char msg[128];
    if (v == NULL || cJSON_IsNull(v)) return true;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap ||
        !gs_utf8_valid((const unsigned char *)v->valuestring, strlen(v->valuestring)) ||
        (ok != NULL && !ok(v->valuestring))) {
        snprintf(msg, sizeof msg, "%s is not a valid value", key);
        return bad(rq, msg);
    }
    snprintf(out, cap, "%s", v->valuestring);
    return true;
}

static bool version_ok(const char *s)
{
    return gs_valid_version(s, false);
}

/* An optional array of DIDs (macs: MACs) re-serialised into *json (heap,
 * NULL when absent). */
static bool list_field(struct gs_request *rq, const cJSON *body, const char *key, bool macs,
                       char **json)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key), *e;
    char msg[160];
    int n = 0;
    *json = NULL;
    if (v == NULL || cJSON_IsNull(v)) return true;
    if (!cJSON_IsArray(v)) {
        snprintf(msg, sizeof msg, "%s must be an array of %s", key, macs ? "MACs" : "DIDs");
        return bad(rq, msg);
    }
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e) ||
            !(macs ? gs_valid_mac(e->valuestring) : gs_valid_did(e->valuestring)) ||
            ++n > LIST_MAX) {
            snprintf(msg, sizeof msg, "%s must be an array of at most %d %s", key, LIST_MAX,
                     macs ? "MACs (12 hex)" : "DIDs");
            return bad(rq, msg);
        }
    }
    *json = cJSON_PrintUnformatted(v);
    if (*json == NULL) {
        gs_respond_error(rq, 500, "server_error", "out of memory");
        return false;
    }
    return true;
}

/* "HH:MM-HH:MM" (UTC) into minutes of the day [start, end). */
static bool window_field(struct gs_request *rq, const cJSON *body, int *start, int *end)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "window");
    unsigned h1, m1, h2, m2;
    char tail;
    *start = *end = -1;
    if (v == NULL || cJSON_IsNull(v)) return true;
    if (!cJSON_IsString(v) ||
        sscanf(v->valuestring, "%2u:%2u-%2u:%2u%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 > 23 ||
        h2 > 24 || m1 > 59 || m2 > 59 || (h2 == 24 && m2 != 0) || strlen(v->valuestring) != 11)
        return bad(rq, "window must be \"HH:MM-HH:MM\" (UTC), e.g. \"02:00-05:00\"");
    *start = (int)(h1 * 60 + m1);
    *end = (int)(h2 * 60 + m2);
    return true;
}

static cJSON *campaign_json(const struct giz_campaign *c)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL) return NULL;
    cJSON_AddNumberToObject(j, "id", (double)c->id);
    cJSON_AddStringToObject(j, "state", giz_campaign_state_name(c->state));
    if (c->reason[0]) cJSON_AddStringToObject(j, "reason", c->reason);
    cJSON_AddStringToObject(j, "name", c->name);
    cJSON_AddStringToObject(j, "product_key", c->product_key);
    cJSON_AddNumberToObject(j, "type", c->fw_type);
    cJSON_AddNumberToObject(j, "firmware_id", (double)c->firmware_id);
    cJSON_AddStringToObject(j, "soft_version", c->soft_version);
    cJSON *t = cJSON_AddObjectToObject(j, "targets");
    cJSON_AddStringToObject(t, "kind", c->target_kind);
    if (c->version_min[0]) cJSON_AddStringToObject(t, "version_min", c->version_min);
    if (c->version_max[0]) cJSON_AddStringToObject(t, "version_max", c->version_max);
    if (strcmp(c->target_kind, "percent") == 0) cJSON_AddNumberToObject(t, "percent", c->percent);
    cJSON_AddNumberToObject(j, "devices", (double)c->devices);
    cJSON_AddNumberToObject(j, "canary", c->canary);
    cJSON_AddNumberToObject(j, "failure_threshold", c->failure_threshold);
    cJSON_AddNumberToObject(j, "starts_at", (double)c->starts_at);
    cJSON_AddNumberToObject(j, "ends_at", (double)c->ends_at);
    if (c->window_start >= 0 && c->window_end >= 0) {
        char w[48];
        snprintf(w, sizeof w, "%02d:%02d-%02d:%02d", c->window_start / 60, c->window_start % 60,
                 c->window_end / 60, c->window_end % 60);
        cJSON_AddStringToObject(j, "window", w);
    } else {
        cJSON_AddNullToObject(j, "window");
    }
    cJSON_AddBoolToObject(j, "force", c->force);
    cJSON_AddNumberToObject(j, "timeout_s", c->timeout_s);
    cJSON_AddNumberToObject(j, "max_checks", c->max_checks);
    cJSON_AddNumberToObject(j, "created_at", (double)c->created_at);
    cJSON_AddNumberToObject(j, "updated_at", (double)c->updated_at);
    return j;
}

static void add_ts(cJSON *o, const char *key, int64_t ms)
{
    if (ms > 0) cJSON_AddNumberToObject(o, key, (double)ms);
}

static int device_cb(const struct giz_cdev *d, void *ud)
{
    cJSON *arr = ud, *o = cJSON_CreateObject();
    if (o == NULL) return 1;
    cJSON_AddStringToObject(o, "did", d->did);
    cJSON_AddStringToObject(o, "state", giz_cdev_state_name(d->state));
    if (d->reason[0]) cJSON_AddStringToObject(o, "reason", d->reason);
    cJSON_AddStringToObject(o, "mac", d->mac);
    cJSON_AddBoolToObject(o, "canary", d->canary);
    cJSON_AddStringToObject(o, "from_version", d->from_version);
    cJSON_AddStringToObject(o, "version", d->version);
    cJSON_AddNumberToObject(o, "notices", (double)d->notices);
    cJSON_AddNumberToObject(o, "checks", (double)d->checks);
    cJSON_AddNumberToObject(o, "downloads", (double)d->downloads);
    cJSON_AddNumberToObject(o, "bytes", (double)d->bytes);
    if (d->percent >= 0) cJSON_AddNumberToObject(o, "percent", d->percent);
    add_ts(o, "notified_at", d->notified_at);
    add_ts(o, "checked_at", d->checked_at);
    add_ts(o, "offered_at", d->offered_at);
    add_ts(o, "downloading_at", d->downloading_at);
    add_ts(o, "downloaded_at", d->downloaded_at);
    add_ts(o, "done_at", d->done_at);
    add_ts(o, "progress_at", d->progress_at);
    cJSON_AddItemToArray(arr, o);
    return 0;
}

/* Reads the creation body into *c and *t (lists heap, freed by the caller). */
static bool create_parse(struct gs_request *rq, struct giz_store *st, const cJSON *body,
                         struct giz_campaign *c, char **list, char **canaries)
{
    int64_t type = 1, fid = 0, percent = 100, canary = 0, threshold = 0, starts = 0, ends = 0;
    int64_t timeout = TIMEOUT_DEFAULT, checks = MAX_CHECKS_DEFAULT;
    char *dids = NULL, *macs = NULL;
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(body, "force");
    struct giz_firmware fw;
    int rc, kinds = 0;

    memset(c, 0, sizeof *c);
    *list = *canaries = NULL;
    if (!str_field(rq, body, "product_key", c->product_key, sizeof c->product_key, NULL) ||
        !str_field(rq, body, "name", c->name, sizeof c->name, NULL) ||
        !num_field(rq, body, "type", 1, 2, &type) ||
        !num_field(rq, body, "firmware_id", 1, 9007199254740991.0, &fid) ||
        !num_field(rq, body, "percent", 1, 100, &percent) ||
        !num_field(rq, body, "canary", 0, LIST_MAX, &canary) ||
        !num_field(rq, body, "failure_threshold", 0, 1e9, &threshold) ||
        !num_field(rq, body, "starts_at", 0, 1e11, &starts) ||
        !num_field(rq, body, "ends_at", 0, 1e11, &ends) ||
        !num_field(rq, body, "timeout_s", 1, TIMEOUT_MAX, &timeout) ||
        !num_field(rq, body, "max_checks", 0, 1000, &checks) ||
        !str_field(rq, body, "version_min", c->version_min, sizeof c->version_min, version_ok) ||
        !str_field(rq, body, "version_max", c->version_max, sizeof c->version_max, version_ok) ||
        !window_field(rq, body, &c->window_start, &c->window_end))
        return false;
    if (force != NULL && !cJSON_IsBool(force)) return bad(rq, "force must be true or false");
    if (!gs_valid_product_key(c->product_key)) return bad(rq, "product_key (32 hex) is required");
    if (ends > 0 && ends <= starts) return bad(rq, "ends_at must be after starts_at");
    if (!list_field(rq, body, "dids", false, &dids)) return false;
    if (!list_field(rq, body, "macs", true, &macs)) {
        free(dids);
        return false;
    }
    if (!list_field(rq, body, "canary_dids", false, canaries)) {
        free(dids);
        free(macs);
        return false;
    }
    kinds = (dids != NULL) + (macs != NULL) + (c->version_min[0] || c->version_max[0]) +
            (cJSON_GetObjectItemCaseSensitive(body, "percent") != NULL);
    if (kinds > 1) {
        free(dids);
        free(macs);
        return bad(rq, "give at most one of dids, macs, version_min/version_max, percent");
    }
    snprintf(c->target_kind, sizeof c->target_kind, "%s",
             dids                                       ? "dids"
             : macs                                     ? "macs"
             : (c->version_min[0] || c->version_max[0]) ? "versions"
             : kinds                                    ? "percent"
                                                        : "all");
    *list = dids ? dids : macs;
    c->fw_type = (int)type;
    c->percent = (unsigned)percent;
    c->canary = (unsigned)canary;
    c->failure_threshold = (unsigned)threshold;
    c->starts_at = starts;
    c->ends_at = ends;
    c->force = cJSON_IsTrue(force);
    c->timeout_s = (unsigned)timeout;
    c->max_checks = (unsigned)checks;
    rc = fid ? giz_store_firmware_get(st, fid, &fw)
             : giz_store_firmware_latest(st, c->product_key, c->fw_type, NULL, &fw);
    if (rc == GIZ_OK && (strcmp(fw.product_key, c->product_key) != 0 || fw.type != c->fw_type))
        rc = GIZ_ERR_NOT_FOUND;
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "no_firmware",
                         fid ? "no such firmware for this product and type"
                             : "the product has no firmware of this type");
        return false;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        return false;
    }
    c->firmware_id = fw.id;
    snprintf(c->soft_version, sizeof c->soft_version, "%s", fw.soft_version);
    return true;
}

static void campaigns_create(struct gs_request *rq, struct giz_store *st)
{
    struct giz_campaign c;
    char *list = NULL, *canaries = NULL;
    int64_t unmatched = 0;
    cJSON *body = gs_body_json(rq);
    if (body == NULL) return;
    if (!create_parse(rq, st, body, &c, &list, &canaries)) goto out;
    struct giz_product p;
    int rc = giz_store_product_get(st, c.product_key, &p);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such product");
        goto out;
    }
    struct giz_campaign_targets t = {list, canaries};
    if (rc == GIZ_OK) rc = giz_store_campaign_create(st, &c, &t, &unmatched);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 409, "no_targets",
                         "no active device of the product matches the targets below the "
                         "firmware's version");
        goto out;
    }
    if (rc != GIZ_OK) {
        store_error(rq, rc);
        goto out;
    }
    giz_log(GIZ_LOG_INFO,
            "campaign %" PRId64 " created: product %s type %d firmware %" PRId64 " (%s), %" PRId64
            " device(s), canary %u",
            c.id, c.product_key, c.fw_type, c.firmware_id, c.soft_version, c.devices, c.canary);
    gs_campaigns_wake(rq->srv);
    cJSON *j = campaign_json(&c);
    if (j != NULL && list != NULL) cJSON_AddNumberToObject(j, "unmatched", (double)unmatched);
    gs_respond_json(rq, 201, j);
out:
    free(list);
    free(canaries);
    cJSON_Delete(body);
}

static int list_cb(const struct giz_campaign *c, void *ud)
{
    cJSON *o = campaign_json(c);
    if (o == NULL) return 1;
    cJSON_AddItemToArray(ud, o);
    return 0;
}

void gs_route_admin_campaigns(struct gs_request *rq)
{
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    unsigned limit = 100, offset = 0;
    int64_t total = 0;
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return;
    }
    if (rq->method == GS_M_POST) {
        campaigns_create(rq, st);
        goto out;
    }
    if (!gs_admin_page(rq, 100, 1000, &limit, &offset)) goto out;
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "campaigns");
    int rc = giz_store_campaign_list(st, false, limit, offset, list_cb, arr);
    if (rc == GIZ_OK) rc = giz_store_campaign_count(st, false, &total);
    if (rc != GIZ_OK) {
        cJSON_Delete(j);
        store_error(rq, rc);
        goto out;
    }
    gs_admin_page_add(j, total, limit, offset);
    gs_respond_json(rq, 200, j);
out:
    gs_store_release(&rq->srv->pool, st);
}

/* The campaign id of the path, or false after answering 404. */
static bool path_id(struct gs_request *rq, int64_t *id)
{
    uint64_t v = 0;
    if (giz_parse_uint(rq->param[0], 10, 1, INT64_MAX, &v) != GIZ_OK) {
        gs_respond_error(rq, 404, "not_found", "no such campaign");
        return false;
    }
    *id = (int64_t)v;
    return true;
}

void gs_route_admin_campaign(struct gs_request *rq)
{
    struct giz_campaign c;
    int64_t id = 0, counts[GIZ_CDEV_STATE_COUNT];
    unsigned limit = 1000, offset = 0;
    char state_s[24] = "";
    int state = -1;
    if (!path_id(rq, &id) || !gs_admin_page(rq, 1000, 10000, &limit, &offset)) return;
    if (gs_query_get(rq, "state", state_s, sizeof state_s) == GIZ_OK && state_s[0] &&
        (state = giz_cdev_state_parse(state_s)) < 0) {
        gs_respond_error(rq, 400, "bad_request",
                         "state must be one of pending, notified, checked, offered, downloading, "
                         "downloaded, updated, failed");
        return;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return;
    }
    int rc = giz_store_campaign_get(st, id, &c);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such campaign");
        goto out;
    }
    if (rc == GIZ_OK) rc = giz_store_cdev_counts(st, id, false, counts);
    cJSON *j = rc == GIZ_OK ? campaign_json(&c) : NULL;
    if (j != NULL) {
        cJSON *co = cJSON_AddObjectToObject(j, "counts");
        for (int i = 0; i < GIZ_CDEV_STATE_COUNT; i++)
            cJSON_AddNumberToObject(co, giz_cdev_state_name(i), (double)counts[i]);
        cJSON *arr = cJSON_AddArrayToObject(j, "devices");
        struct giz_cdev_query q = {
            .campaign_id = id, .state = state, .limit = limit, .offset = offset};
        rc = giz_store_cdev_list(st, &q, device_cb, arr);
        gs_admin_page_add(j, state >= 0 ? counts[state] : c.devices, limit, offset);
    }
    if (rc != GIZ_OK) {
        cJSON_Delete(j);
        store_error(rq, rc);
        goto out;
    }
    gs_respond_json(rq, 200, j);
out:
    gs_store_release(&rq->srv->pool, st);
}

void gs_route_admin_campaign_action(struct gs_request *rq)
{
    static const struct {
        const char *name;
        unsigned from;
        int to;
    } actions[] = {
        {"pause", 1u << GIZ_CAMPAIGN_RUNNING, GIZ_CAMPAIGN_PAUSED},
        {"resume", 1u << GIZ_CAMPAIGN_PAUSED, GIZ_CAMPAIGN_RUNNING},
        {"cancel",
         (1u << GIZ_CAMPAIGN_RUNNING) | (1u << GIZ_CAMPAIGN_PAUSED) | (1u << GIZ_CAMPAIGN_STOPPED),
         GIZ_CAMPAIGN_CANCELLED},
    };
    int64_t id = 0;
    int old = -1, rc;
    size_t a = 0;
    struct giz_campaign c;
    char msg[128];
    if (!path_id(rq, &id)) return;
    while (a < sizeof actions / sizeof actions[0] && strcmp(actions[a].name, rq->param[1]) != 0)
        a++;
    if (a == sizeof actions / sizeof actions[0]) {
        gs_respond_error(rq, 404, "not_found", "actions are pause, resume and cancel");
        return;
    }
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return;
    }
    snprintf(msg, sizeof msg, "%s by the operator",
             actions[a].to == GIZ_CAMPAIGN_PAUSED      ? "paused"
             : actions[a].to == GIZ_CAMPAIGN_CANCELLED ? "cancelled"
                                                       : "resumed");
    rc = giz_store_campaign_set_state(st, id, actions[a].from, actions[a].to,
                                      actions[a].to == GIZ_CAMPAIGN_RUNNING ? "" : msg, &old);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such campaign");
    } else if (rc == GIZ_ERR_EXISTS) {
        snprintf(msg, sizeof msg, "a %s campaign cannot be %s", giz_campaign_state_name(old),
                 actions[a].to == GIZ_CAMPAIGN_PAUSED      ? "paused"
                 : actions[a].to == GIZ_CAMPAIGN_CANCELLED ? "cancelled"
                                                           : "resumed");
        gs_respond_error(rq, 409, "conflict", msg);
    } else if (rc != GIZ_OK) {
        store_error(rq, rc);
    } else if ((rc = giz_store_campaign_get(st, id, &c)) != GIZ_OK) {
        store_error(rq, rc);
    } else {
        giz_log(GIZ_LOG_INFO, "campaign %" PRId64 ": %s -> %s", id, giz_campaign_state_name(old),
                giz_campaign_state_name(c.state));
        gs_campaigns_wake(rq->srv);
        gs_respond_json(rq, 200, campaign_json(&c));
    }
    gs_store_release(&rq->srv->pool, st);
}
