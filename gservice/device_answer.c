/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * What the device API asks the store about a device, answered once: the
 * table that maps store results to Gizwits answers (HTTP status, error_code,
 * error_message — real firmware strstr()s these), the device look-up every
 * device route does (DID shape, exists, of this product, active, passcode),
 * and the broker's liveness, which decides whether presence and pushes are
 * trusted.
 */
#include <string.h>
#include <time.h>

#include "giz/log.h"
#include "gservice.h"

/* Store result -> device-API answer. GIZ_OK has no row; anything not listed
 * is a server error (logged). */
static const struct {
    int rc;
    unsigned status;
    int code;
    const char *message;
} device_answers[] = {
    {GIZ_ERR_NOT_FOUND, 404, GS_E_DEVICE_NOT_FOUND, "device not found"},
    {GIZ_ERR_DISABLED, 403, GS_E_DEVICE_DISABLED, "device disabled"},
    {GIZ_ERR_AUTH, 403, GS_E_DID_PASSCODE_INVALID, "did or passcode invalid"},
};

void gs_respond_device_rc(struct gs_request *rq, int rc, const char *what, const char *did)
{
    for (size_t i = 0; i < sizeof device_answers / sizeof device_answers[0]; i++) {
        if (device_answers[i].rc == rc) {
            gs_respond_form_error(rq, device_answers[i].status, device_answers[i].code,
                                  device_answers[i].message);
            return;
        }
    }
    giz_log(GIZ_LOG_ERR, "%s %s: %s", what, did, giz_strerror(rc));
    gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
}

struct giz_store *gs_device_store(struct gs_request *rq)
{
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
    return st;
}

bool gs_device_lookup(struct gs_request *rq, struct giz_store *st, const char *did,
                      const char *product_key, const char *passcode, const char *what,
                      struct giz_device *dev)
{
    int rc;
    if (!gs_valid_did(did)) {
        rc = GIZ_ERR_NOT_FOUND; /* not a DID: no such device */
    } else if (passcode != NULL) {
        rc = giz_store_device_auth(st, did, passcode, dev);
    } else {
        rc = giz_store_device_get(st, did, dev);
    }
    if (rc == GIZ_OK && product_key != NULL && strcmp(dev->product_key, product_key) != 0)
        rc = GIZ_ERR_NOT_FOUND; /* another product's device is not found here */
    if (rc == GIZ_OK && dev->status != GIZ_DEVICE_ACTIVE) rc = GIZ_ERR_DISABLED;
    if (rc == GIZ_OK) return true;
    gs_respond_device_rc(rq, rc, what, did);
    return false;
}

int64_t gs_broker_max_age_ms(const struct gs_server *srv)
{
    return (int64_t)srv->cfg.broker_max_age * 1000;
}

void gs_m2m_route_for_did(struct gs_server *srv, struct giz_store *st, const char *did, bool assign,
                          struct gs_m2m_route *out)
{
    const struct gs_config *cfg = &srv->cfg;
    struct giz_broker b;
    memset(out, 0, sizeof(*out));
    snprintf(out->host, sizeof(out->host), "%s", cfg->m2m_host);
    out->port = cfg->m2m_port;
    out->port_s = cfg->m2m_tls_port;
    if (st == NULL ||
        giz_store_device_broker_route(st, did, gs_broker_max_age_ms(srv), assign, &b) != GIZ_OK)
        return; /* no live broker (or no registry row yet): the configured address */
    memcpy(out->broker, b.name, sizeof(out->broker));
    if (b.host[0] != '\0') memcpy(out->host, b.host, sizeof(out->host));
    if (b.port != 0) {
        out->port = b.port;
        out->port_s = b.tls_port; /* a broker that advertises itself says its TLS port too */
    }
}

bool gs_broker_alive(struct gs_server *srv, struct giz_store *st, int64_t *age_ms)
{
    bool alive = false;
    struct giz_broker_status b;
    if (age_ms != NULL) *age_ms = -1;
    if (st == NULL ||
        giz_store_broker_alive(st, (int64_t)srv->cfg.broker_max_age * 1000, &alive) != GIZ_OK)
        return false;
    if (age_ms != NULL && giz_store_broker_get(st, &b) == GIZ_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        *age_ms = now_ms > b.heartbeat_at_ms ? now_ms - b.heartbeat_at_ms : 0;
    }
    return alive;
}
