/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Data points over HTTP: the operator imports and exports a product's
 * data-point schema (PUT/GET /admin/products/<pk>/datapoints, the Gizwits
 * data-point JSON, checked with giz_p0_schema_parse before it is stored),
 * apps read it (GET /app/datapoint?product_key=, as the Open API) and read
 * the latest decoded state of a bound device (GET /app/devdata/<did>/latest:
 * {did, updated_at, attr}), which the broker plugin keeps from the device's
 * status reports (plugin/devstate.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "giz/log.h"
#include "giz/p0.h"
#include "gservice.h"

static void store_fail(struct gs_request *rq, int rc)
{
    giz_log(GIZ_LOG_ERR, "%s: store: %s", gs_route_name(rq->route), giz_strerror(rc));
    if (gs_is_app_path(rq))
        gs_respond_app_error(rq, 500, GS_E_SERVER_ERROR, "server error");
    else
        gs_respond_error(rq, 500, "internal", "store error");
}

/* PUT: validates and stores the body; answers what was understood. */
static void datapoints_put(struct gs_request *rq, struct giz_store *st, const char *pk)
{
    struct giz_p0_schema *schema = NULL;
    struct giz_error e;
    char msg[200];
    size_t writable = 0;
    int rc;

    if (rq->body == NULL || rq->body_len == 0) {
        gs_respond_error(rq, 400, "bad_request", "the body must be the data-point JSON");
        return;
    }
    memset(&e, 0, sizeof e);
    rc = giz_p0_schema_parse(rq->body, rq->body_len, &schema, &e);
    if (rc == GIZ_ERR_NOMEM) {
        store_fail(rq, rc);
        return;
    }
    if (rc != GIZ_OK) {
        if (e.offset && rc != GIZ_ERR_INVAL)
            snprintf(msg, sizeof msg, "%s (entities[0].attrs[%zu])", e.text, e.offset);
        else if (e.offset)
            snprintf(msg, sizeof msg, "%s (at %zu)", e.text, e.offset);
        else
            snprintf(msg, sizeof msg, "%s", e.text);
        gs_respond_error(rq, 400, "invalid_datapoints", msg);
        return;
    }
    for (size_t i = 0; i < giz_p0_schema_count(schema); i++)
        if (giz_p0_schema_writable(schema, i)) writable++;
    rc = giz_store_datapoints_put(st, pk, rq->body, rq->body_len, (int64_t)time(NULL));
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such product");
    } else if (rc == GIZ_ERR_OVERSIZE) {
        gs_respond_error(rq, 413, "too_large", "data-point JSON over 1 MiB");
    } else if (rc != GIZ_OK) {
        store_fail(rq, rc);
    } else {
        cJSON *j = cJSON_CreateObject();

        giz_log(GIZ_LOG_INFO, "product %s: %zu data points imported", pk,
                giz_p0_schema_count(schema));
        if (j) {
            cJSON_AddStringToObject(j, "product_key", pk);
            cJSON_AddNumberToObject(j, "datapoints", (double)giz_p0_schema_count(schema));
            cJSON_AddNumberToObject(j, "writable", (double)writable);
            cJSON_AddStringToObject(j, "protocol",
                                    giz_p0_schema_var_len(schema) ? "var_len" : "fixed");
        }
        gs_respond_json(rq, 200, j);
    }
    giz_p0_schema_free(schema);
}

void gs_route_admin_datapoints(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    char pk[GIZ_PK_SIZE];
    char *json = NULL;
    size_t len = 0;
    int rc;

    memcpy(pk, rq->param[0], sizeof pk - 1);
    pk[sizeof pk - 1] = 0;
    if (strlen(rq->param[0]) != GIZ_PK_SIZE - 1 || !gs_valid_product_key(pk)) {
        gs_respond_error(rq, 404, "not_found", "no such product");
        return;
    }
    st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        store_fail(rq, GIZ_ERR_DB);
        return;
    }
    if (rq->method == GS_M_PUT) {
        datapoints_put(rq, st, pk);
        goto out;
    }
    rc = giz_store_datapoints_get(st, pk, &json, &len, NULL);
    if (rc == GIZ_ERR_NOT_FOUND)
        gs_respond_error(rq, 404, "not_found", "no data points imported for this product");
    else if (rc != GIZ_OK)
        store_fail(rq, rc);
    else
        gs_respond_buf(rq, 200, "application/json", json, len);
out:
    free(json);
    gs_store_release(&rq->srv->pool, st);
}

void gs_route_app_datapoint(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    char pk[GIZ_PK_SIZE + 1];
    char *json = NULL;
    cJSON *j = NULL;
    size_t len = 0;
    int rc = gs_query_get(rq, "product_key", pk, sizeof pk);

    if (rc == GIZ_ERR_NOT_FOUND || (rc == GIZ_OK && pk[0] == 0)) {
        gs_respond_app_error(rq, 400, GS_E_FORM_INVALID, "product_key is required");
        return;
    }
    if (rc != GIZ_OK || strlen(pk) != GIZ_PK_SIZE - 1 || !gs_valid_product_key(pk)) {
        gs_respond_app_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return;
    }
    st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        store_fail(rq, GIZ_ERR_DB);
        return;
    }
    rc = giz_store_datapoints_get(st, pk, &json, &len, NULL);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_app_error(rq, 404, GS_E_DATAPOINT_NOT_FOUND,
                             "no data points for this product_key");
    } else if (rc != GIZ_OK) {
        store_fail(rq, rc);
    } else if ((j = cJSON_ParseWithLength(json, len)) == NULL || !cJSON_IsObject(j)) {
        store_fail(rq, GIZ_ERR_DB); /* stored JSON is checked on import: never here */
    } else {
        /* The Open API shape: the schema with its product_key. */
        cJSON *k = cJSON_CreateString(pk);

        if (k && cJSON_GetObjectItemCaseSensitive(j, "product_key"))
            cJSON_ReplaceItemInObjectCaseSensitive(j, "product_key", k);
        else if (k)
            cJSON_AddItemToObject(j, "product_key", k);
        gs_respond_json(rq, 200, j);
        j = NULL;
    }
    cJSON_Delete(j);
    free(json);
    gs_store_release(&rq->srv->pool, st);
}

struct latest {
    cJSON *answer;
    int rc;
};

static int latest_cb(const struct giz_device_state *ds, void *ud)
{
    struct latest *l = ud;
    cJSON *attr = cJSON_Parse(ds->attrs);

    if (!attr || !cJSON_IsObject(attr)) {
        cJSON_Delete(attr);
        l->rc = GIZ_ERR_DB;
        return 1;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(l->answer, "attr", attr);
    cJSON_ReplaceItemInObjectCaseSensitive(l->answer, "updated_at",
                                           cJSON_CreateNumber((double)(ds->updated_at / 1000)));
    cJSON_AddNumberToObject(l->answer, "updated_at_ms", (double)ds->updated_at);
    cJSON_AddNumberToObject(l->answer, "reports", (double)ds->reports);
    cJSON_AddNumberToObject(l->answer, "malformed_count", (double)ds->malformed_count);
    if (ds->malformed_count > 0) {
        cJSON *m = cJSON_AddObjectToObject(l->answer, "last_malformed");

        if (m) {
            cJSON_AddNumberToObject(m, "at_ms", (double)ds->malformed_at);
            cJSON_AddStringToObject(m, "error", ds->malformed_error);
            cJSON_AddStringToObject(m, "p0_hex", ds->malformed_hex);
        }
    }
    return 0;
}

void gs_route_app_devdata_latest(struct gs_request *rq)
{
    struct giz_store *st = NULL;
    struct giz_session s;
    struct giz_device d;
    struct latest l = {NULL, GIZ_OK};
    int rc;

    if (!gs_app_begin(rq, &st, &s) || !gs_app_bound_device(rq, st, &s, rq->param[0], &d, NULL))
        goto out;
    l.answer = cJSON_CreateObject();
    if (!l.answer || !cJSON_AddStringToObject(l.answer, "did", d.did) ||
        !cJSON_AddNumberToObject(l.answer, "updated_at", 0) ||
        !cJSON_AddObjectToObject(l.answer, "attr")) {
        store_fail(rq, GIZ_ERR_NOMEM);
        goto out;
    }
    rc = giz_store_device_state_get(st, d.did, latest_cb, &l);
    if (rc == GIZ_OK) rc = l.rc;
    if (rc != GIZ_OK && rc != GIZ_ERR_NOT_FOUND) {
        store_fail(rq, rc);
        goto out;
    }
    gs_respond_json(rq, 200, l.answer);
    l.answer = NULL;
out:
    cJSON_Delete(l.answer);
    gs_store_release(&rq->srv->pool, st);
}
