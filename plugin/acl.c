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
 */
#include <string.h>

#include "plugin.h"

/* If topic starts with prefix, returns the rest; else NULL. */
static const char *after(const char *topic, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(topic, prefix, n) == 0 ? topic + n : NULL;
}

/* If s starts with word followed by '/' or the end, returns the rest after
 * word (pointing at '/' or '\0'); else NULL. */
static const char *after_level(const char *s, const char *word)
{
    size_t n = strlen(word);
    if (s == NULL || strncmp(s, word, n) != 0) return NULL;
    if (s[n] != '/' && s[n] != '\0') return NULL;
    return s + n;
}

/* true if s is one non-empty topic level without wildcards. */
static bool single_level(const char *s)
{
    if (*s == '\0') return false;
    return strpbrk(s, "/+#") == NULL;
}

static int device_acl(const struct did_state *dev, int access, const char *topic)
{
    const char *r;
    const char *did = dev->did;
    switch (access) {
    case MOSQ_ACL_SUBSCRIBE:
        r = after_level(after(topic, "ser2cli_res/"), did);
        if (r != NULL && *r == '\0') return MOSQ_ERR_SUCCESS;
        r = after_level(after(topic, "ser2cli_noti/"), dev->product_key);
        if (dev->product_key[0] != '\0' && r != NULL && *r == '\0') return MOSQ_ERR_SUCCESS;
        r = after_level(after(topic, "app2dev/"), did);
        if (r != NULL && strcmp(r, "/#") == 0) return MOSQ_ERR_SUCCESS;
        return MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_READ:
        r = after_level(after(topic, "ser2cli_res/"), did);
        if (r != NULL && *r == '\0') return MOSQ_ERR_SUCCESS;
        r = after_level(after(topic, "ser2cli_noti/"), dev->product_key);
        if (dev->product_key[0] != '\0' && r != NULL && *r == '\0') return MOSQ_ERR_SUCCESS;
        r = after_level(after(topic, "app2dev/"), did);
        if (r != NULL && r[0] == '/' && r[1] != '\0') return MOSQ_ERR_SUCCESS;
        return MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_WRITE:
        if (strcmp(topic, "ser2cli_req") == 0 || strcmp(topic, "cli2ser_req") == 0)
            return MOSQ_ERR_SUCCESS;
        r = after_level(after(topic, "dev2app/"), did);
        if (r != NULL && (*r == '\0' || (r[0] == '/' && single_level(r + 1))))
            return MOSQ_ERR_SUCCESS;
        return MOSQ_ERR_ACL_DENIED;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

/* Splits "<DID>/<rest>" or "<DID>": returns true and sets did_len and rest
 * (NULL if no '/'). */
static bool split_did(const char *s, size_t *did_len, const char **rest)
{
    const char *slash;
    if (s == NULL) return false;
    slash = strchr(s, '/');
    *did_len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    *rest = slash != NULL ? slash + 1 : NULL;
    return *did_len == GIZ_DID_LEN;
}

static int app_acl(const struct app_state *app, int access, const char *topic)
{
    const char *r;
    const char *rest = NULL;
    size_t did_len = 0;
    const char *cid = app->client_id;
    switch (access) {
    case MOSQ_ACL_WRITE:
        r = after(topic, "app2dev/");
        if (split_did(r, &did_len, &rest) && rest != NULL && strcmp(rest, cid) == 0 &&
            presence__app_bound(app, r, did_len))
            return MOSQ_ERR_SUCCESS;
        return MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_SUBSCRIBE:
    case MOSQ_ACL_READ:
        r = after(topic, "dev2app/");
        if (split_did(r, &did_len, &rest) && (rest == NULL || strcmp(rest, cid) == 0) &&
            presence__app_bound(app, r, did_len))
            return MOSQ_ERR_SUCCESS;
        r = after_level(after(topic, "ser2cli_res/"), cid);
        if (r != NULL) {
            if (access == MOSQ_ACL_SUBSCRIBE && strcmp(r, "/#") == 0) return MOSQ_ERR_SUCCESS;
            if (access == MOSQ_ACL_READ && (r[0] == '\0' || r[0] == '/')) return MOSQ_ERR_SUCCESS;
        }
        return MOSQ_ERR_ACL_DENIED;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

int acl__check_cb(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_acl_check *ed = event_data;
    struct gizp *g = userdata;
    struct client cl;
    const struct client *c = &cl;
    (void)event;
    if (ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
    if (ed->topic == NULL) return MOSQ_ERR_ACL_DENIED;
    if (ed->access == MOSQ_ACL_WRITE && ed->retain) return MOSQ_ERR_ACL_DENIED;
    /* A will is checked right after its client's DISCONNECT (2.0.11), when
     * presence has already forgotten the context: use what it was. */
    if (!presence__client(g, ed->client, &cl) &&
        !(ed->access == MOSQ_ACL_WRITE && presence__gone_client(g, ed->client, &cl)))
        return MOSQ_ERR_ACL_DENIED;
    if (c->kind == CLIENT_DEVICE && c->dev != NULL) {
        int rc = device_acl(c->dev, ed->access, ed->topic);
        /* The push queue waits for the device's subscriptions. */
        if (rc == MOSQ_ERR_SUCCESS && ed->access == MOSQ_ACL_SUBSCRIBE)
            push__subscribed(g, ed->client, c->dev, ed->topic);
        return rc;
    }
    if (c->kind == CLIENT_APP && c->app != NULL) return app_acl(c->app, ed->access, ed->topic);
    return MOSQ_ERR_ACL_DENIED;
}
