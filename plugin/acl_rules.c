/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The topic rules of the Gizwits protocol as pure functions (acl_rules.h):
 * literal prefix and level comparisons, no allocation, no state. Filters
 * are compared as text, so a wildcard in a SUBSCRIBE can never widen a
 * grant (a "+" or "#" is just a character that does not match a DID).
 */
#include "acl_rules.h"

#include <string.h>

#include "giz/util.h"

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

/* true if topic is exactly ser2cli_res/<did> or (product key known)
 * ser2cli_noti/<product_key>: the cloud's topics toward the device, which it
 * may subscribe and read as they are. */
static bool cloud_topic(const char *topic, const char *did, const char *product_key)
{
    const char *r = after_level(after(topic, "ser2cli_res/"), did);
    if (r != NULL && *r == '\0') return true;
    r = after_level(after(topic, "ser2cli_noti/"), product_key);
    return product_key[0] != '\0' && r != NULL && *r == '\0';
}

bool acl__device_allowed(const char *did, const char *product_key, enum acl_access access,
                         const char *topic)
{
    const char *r;
    if (did == NULL || product_key == NULL || topic == NULL) return false;
    switch (access) {
    case ACL_SUBSCRIBE:
        if (cloud_topic(topic, did, product_key)) return true;
        r = after_level(after(topic, "app2dev/"), did);
        if (r != NULL && strcmp(r, "/#") == 0) return true;
        return false;
    case ACL_READ:
        if (cloud_topic(topic, did, product_key)) return true;
        r = after_level(after(topic, "app2dev/"), did);
        if (r != NULL && r[0] == '/' && r[1] != '\0') return true;
        return false;
    case ACL_WRITE:
        if (strcmp(topic, "ser2cli_req") == 0 || strcmp(topic, "cli2ser_req") == 0) return true;
        r = after_level(after(topic, "dev2app/"), did);
        if (r != NULL && (*r == '\0' || (r[0] == '/' && single_level(r + 1)))) return true;
        return false;
    default:
        return false;
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
    return *did_len == GIZ_ID_DID_LEN;
}

bool acl__app_allowed(const char *client_id, acl_bound_fn bound, const void *ud,
                      enum acl_access access, const char *topic)
{
    const char *r;
    const char *rest = NULL;
    size_t did_len = 0;
    const char *cid = client_id;
    if (client_id == NULL || bound == NULL || topic == NULL) return false;
    switch (access) {
    case ACL_WRITE:
        r = after(topic, "app2dev/");
        if (split_did(r, &did_len, &rest) && rest != NULL && strcmp(rest, cid) == 0 &&
            bound(ud, r, did_len))
            return true;
        return false;
    case ACL_SUBSCRIBE:
    case ACL_READ:
        r = after(topic, "dev2app/");
        if (split_did(r, &did_len, &rest) && (rest == NULL || strcmp(rest, cid) == 0) &&
            bound(ud, r, did_len))
            return true;
        r = after_level(after(topic, "ser2cli_res/"), cid);
        if (r != NULL) {
            if (access == ACL_SUBSCRIBE && strcmp(r, "/#") == 0) return true;
            if (access == ACL_READ && (r[0] == '\0' || r[0] == '/')) return true;
        }
        return false;
    default:
        return false;
    }
}
