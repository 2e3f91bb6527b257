/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * MOSQ_EVT_ACL_CHECK: the topic rules of the Gizwits protocol. In 2.0.11 the
 * broker asks with four access kinds (src/security.c, mosquitto_acl_check):
 * MOSQ_ACL_SUBSCRIBE with the subscription filter as sent (wildcards and
 * all) when a SUBSCRIBE arrives, MOSQ_ACL_READ with the concrete topic for
 * every message about to be delivered (src/subs.c), MOSQ_ACL_WRITE for every
 * PUBLISH and will, and MOSQ_ACL_UNSUBSCRIBE (always allowed here). Filters
 * are compared literally, so a wildcard can never widen a grant; READ
 * re-checks every delivery, so an unbind takes effect at once even for an
 * existing subscription.
 *
 * Device <DID> (product <pk>):
 *   subscribe  ser2cli_res/<DID>, ser2cli_noti/<pk>, app2dev/<DID>/#
 *   publish    dev2app/<DID>, dev2app/<DID>/<app client id>, ser2cli_req, cli2ser_req
 * App <cid> of user <uid>, for each DID bound to <uid>:
 *   publish    app2dev/<DID>/<cid>
 *   subscribe  dev2app/<DID>, dev2app/<DID>/<cid>  (and ser2cli_res/<cid>/#, harmless)
 * Anything else, and any context the plugin did not authenticate: denied.
 * A PUBLISH or will with the retain flag is denied for everyone (Gizwits
 * traffic is retain 0; a retained app2dev command would be replayed to the
 * device on every reconnect, even after its sender unbound, and retained
 * dev2app messages would pile up in broker memory). This does not rely on
 * mosquitto's `retain_available false`.
 *
 * Wills: 2.0.11 checks a will (MOSQ_ACL_WRITE) right after MOSQ_EVT_DISCONNECT
 * of its client, so WRITE also accepts the context presence remembers as
 * the one that just disconnected, under the same rules as a PUBLISH.
 *
 * The rules themselves are pure functions in acl_rules.c (unit-tested);
 * this file maps mosquitto's check onto them, tells push.c about every
 * device SUBSCRIBE it grants and events.c about every answer (the device
 * timeline's subscribe / publish_in / publish_out / acl_denied, metrics).
 */
#include "acl_rules.h"
#include "plugin.h"

/* The ACL access of a mosquitto check (UNSUBSCRIBE handled by the caller). */
static bool access_of(int mosq_access, enum acl_access *out)
{
    switch (mosq_access) {
    case MOSQ_ACL_SUBSCRIBE:
        *out = ACL_SUBSCRIBE;
        return true;
    case MOSQ_ACL_READ:
        *out = ACL_READ;
        return true;
    case MOSQ_ACL_WRITE:
        *out = ACL_WRITE;
        return true;
    default:
        return false;
    }
}

static bool app_bound(const void *ud, const char *did, size_t did_len)
{
    return presence__app_bound(ud, did, did_len);
}

/* The rules' answer for ed (c: who the client is, NULL if not ours). */
static bool check(struct gizp *g, const struct mosquitto_evt_acl_check *ed, const struct client *c,
                  enum acl_access access)
{
    if (c == NULL) return false;
    if (c->kind == CLIENT_DEVICE && c->dev != NULL) {
        if (!acl__device_allowed(c->dev->did, c->dev->product_key, access, ed->topic)) return false;
        /* The push queue waits for the device's subscriptions. */
        if (access == ACL_SUBSCRIBE) push__subscribed(g, ed->client, c->dev, ed->topic);
        return true;
    }
    if (c->kind == CLIENT_APP && c->app != NULL)
        return acl__app_allowed(c->app->client_id, app_bound, c->app, access, ed->topic);
    return false;
}

int acl__check_cb(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_acl_check *ed = event_data;
    struct gizp *g = userdata;
    struct client cl;
    const struct client *c = &cl;
    enum acl_access access;
    bool ok;
    (void)event;
    if (ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
    if (ed->topic == NULL || !access_of(ed->access, &access)) return MOSQ_ERR_ACL_DENIED;
    /* A will is checked right after its client's DISCONNECT (2.0.11), when
     * presence has already forgotten the context: use what it was. */
    if (!presence__client(g, ed->client, &cl) &&
        !(ed->access == MOSQ_ACL_WRITE && presence__gone_client(g, ed->client, &cl)))
        c = NULL;
    ok = !(ed->access == MOSQ_ACL_WRITE && ed->retain) && check(g, ed, c, access);
    events__acl(g, ed, c, ok); /* timeline events, counters, the denial line */
    return ok ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}
