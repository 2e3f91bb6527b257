/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Reading a request in giz-gservice: headers, query parameters (also as
 * bounded unsigned numbers), form fields of device bodies and queries, the
 * JSON body of admin and app calls, and the admin bearer token (compared as
 * keyed digests in constant time). The helpers that can fail on client input
 * answer 400 themselves and say so in their contract (gservice.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "giz/crypto.h"
#include "giz/form.h"
#include "giz/util.h"
#include "gservice.h"

const char *gs_header(struct gs_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

int gs_query_get(struct gs_request *rq, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    return giz_form_get(rq->query, rq->query_len, key, out, cap, &n);
}

bool gs_admin_authorized(struct gs_request *rq)
{
    const char *h = gs_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ')
        h++;
    char digest[65];
    if (giz_token_digest(rq->srv->token_key, sizeof rq->srv->token_key, h, digest, sizeof digest) !=
        GIZ_OK)
        return false;
    return giz_consttime_eq(digest, rq->srv->admin_token_digest, 64);
}

bool gs_query_product_key(struct gs_request *rq, char pk[GIZ_PK_SIZE])
{
    int rc = gs_query_get(rq, "product_key", pk, GIZ_PK_SIZE);
    if (rc == GIZ_ERR_NOT_FOUND || (rc == GIZ_OK && pk[0] == '\0')) {
        pk[0] = '\0';
        return true;
    }
    if (rc == GIZ_OK && gs_valid_product_key(pk)) return true;
    gs_respond_error(rq, 400, "bad_request", "product_key must be 32 hex digits");
    return false;
}

bool gs_query_uint(struct gs_request *rq, const char *key, unsigned max, unsigned *out)
{
    char buf[24];
    uint64_t v = 0;
    int rc = gs_query_get(rq, key, buf, sizeof buf);
    if (rc == GIZ_ERR_NOT_FOUND || (rc == GIZ_OK && buf[0] == '\0')) return true;
    if (rc != GIZ_OK || giz_parse_uint(buf, 10, 0, max, &v) != GIZ_OK) return false;
    *out = (unsigned)v;
    return true;
}

struct cJSON *gs_body_json(struct gs_request *rq)
{
    cJSON *j = NULL;
    if (rq->body_len > 0 && !gs_utf8_valid((const unsigned char *)rq->body, rq->body_len)) {
        gs_respond_generic_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json",
                                 "the body is not valid UTF-8 (JSON text must be UTF-8)");
        return NULL;
    }
    if (rq->body_len > 0) j = cJSON_ParseWithLength(rq->body, rq->body_len);
    if (j == NULL) {
        gs_respond_generic_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json",
                                 "the body must be a JSON object");
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        gs_respond_generic_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_json",
                                 "the body must be a JSON object");
        return NULL;
    }
    return j;
}

bool gs_form_field(struct gs_request *rq, const char *src, size_t len, const char *key, char *out,
                   size_t cap, bool required)
{
    size_t n = 0;
    int rc = giz_form_get(src, len, key, out, cap, &n);
    if (rc == GIZ_OK) return true;
    char msg[96];
    if (rc == GIZ_ERR_NOT_FOUND) {
        out[0] = '\0';
        if (!required) return true;
        snprintf(msg, sizeof msg, "%s is missing", key);
    } else if (rc == GIZ_ERR_OVERSIZE) {
        snprintf(msg, sizeof msg, "%s is too long", key);
    } else {
        snprintf(msg, sizeof msg, "%s is badly encoded", key);
    }
    gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, msg);
    return false;
}

bool gs_form_ok(struct gs_request *rq, const char *src, size_t len)
{
    struct giz_error err = {0};
    if (len == 0 || giz_form_validate(src, len, &err) == GIZ_OK) return true;
    gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "malformed form");
    return false;
}
