/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The Gizwits topic rules as pure functions (plugin/acl_rules.c): given who
 * a client is and a topic or filter, allowed or not. No mosquitto types and
 * no plugin state, so tests/unit/test_acl.c checks them directly; acl.c
 * maps mosquitto's ACL events onto them. The rule table is in acl.c's head
 * comment and plugin/DESIGN.md "ACL".
 */
#ifndef GIZ_PLUGIN_ACL_RULES_H
#define GIZ_PLUGIN_ACL_RULES_H

#include <stdbool.h>
#include <stddef.h>

/* What the client wants to do with the topic (UNSUBSCRIBE is always
 * allowed and never asked here). */
enum acl_access {
    ACL_SUBSCRIBE, /* a SUBSCRIBE filter, as sent (wildcards compared literally) */
    ACL_READ,      /* a concrete topic about to be delivered to the client */
    ACL_WRITE      /* a PUBLISH or will topic */
};

/* true if device `did` of product `product_key` ("" = not known yet: no
 * ser2cli_noti grant) may do `access` on topic. NULL arguments: false. */
bool acl__device_allowed(const char *did, const char *product_key, enum acl_access access,
                         const char *topic);

/* Whether the app's user is bound to the DID did[0..did_len) (not
 * NUL-terminated at did_len). */
typedef bool (*acl_bound_fn)(const void *ud, const char *did, size_t did_len);

/* true if app client `client_id`, whose user's bindings answer through
 * bound(ud, ...), may do `access` on topic. NULL arguments: false. */
bool acl__app_allowed(const char *client_id, acl_bound_fn bound, const void *ud,
                      enum acl_access access, const char *topic);

#endif
