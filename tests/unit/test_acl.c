/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the plugin's topic rules (plugin/acl_rules.c, pure
 * functions): for a device, the three subscriptions it needs and nothing
 * wider (wildcards are literal text, another DID or product is refused),
 * what it may read and publish; for an app, only DIDs its user is bound to
 * (answered by a callback over a fixed list), its own client id in
 * app2dev / dev2app, its ser2cli_res/<cid> tree; NULL and empty inputs
 * refused. tests/integration/test_plugin_acl.py checks the same rules
 * through a real mosquitto.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "acl_rules.h"
#include "test.h"

#define DID "VC6NvEgBTenVdWxAem6FZu"
#define DID2 "A0000000000000000000zz"
#define PK "5010b0e7306e9645a4d642a712274627"
#define CID "usrTkjYUnN3airb21HzHNXO"

static bool dev(enum acl_access a, const char *topic)
{
    return acl__device_allowed(DID, PK, a, topic);
}

/* The app's user is bound to DID only. */
static bool bound_to_did(const void *ud, const char *did, size_t did_len)
{
    const char *const *list = ud;
    for (size_t i = 0; list[i] != NULL; i++)
        if (strlen(list[i]) == did_len && memcmp(list[i], did, did_len) == 0) return true;
    return false;
}

static const char *const bindings[] = {DID, NULL};

static bool app(enum acl_access a, const char *topic)
{
    return acl__app_allowed(CID, bound_to_did, bindings, a, topic);
}

TEST_CASE(device_subscribe)
{
    ASSERT_TRUE(dev(ACL_SUBSCRIBE, "ser2cli_res/" DID));
    ASSERT_TRUE(dev(ACL_SUBSCRIBE, "ser2cli_noti/" PK));
    ASSERT_TRUE(dev(ACL_SUBSCRIBE, "app2dev/" DID "/#"));
    /* nothing wider, nothing of others */
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "ser2cli_res/#"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "ser2cli_res/+"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "ser2cli_res/" DID "/x"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "ser2cli_res/" DID2));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "ser2cli_noti/#"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "ser2cli_noti/00000000000000000000000000000000"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "app2dev/#"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "app2dev/+/#"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "app2dev/" DID2 "/#"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "app2dev/" DID "/" CID)); /* only the /# form */
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "app2dev/" DID "x/#"));   /* a longer level */
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "dev2app/" DID));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, "#"));
    ASSERT_TRUE(!dev(ACL_SUBSCRIBE, ""));
    /* product key not known yet: no ser2cli_noti grant, not even for "" */
    ASSERT_TRUE(!acl__device_allowed(DID, "", ACL_SUBSCRIBE, "ser2cli_noti/"));
    ASSERT_TRUE(!acl__device_allowed(DID, "", ACL_SUBSCRIBE, "ser2cli_noti/" PK));
    ASSERT_TRUE(acl__device_allowed(DID, "", ACL_SUBSCRIBE, "ser2cli_res/" DID));
}

TEST_CASE(device_read)
{
    ASSERT_TRUE(dev(ACL_READ, "ser2cli_res/" DID));
    ASSERT_TRUE(dev(ACL_READ, "ser2cli_noti/" PK));
    ASSERT_TRUE(dev(ACL_READ, "app2dev/" DID "/" CID));
    ASSERT_TRUE(dev(ACL_READ, "app2dev/" DID "/a/b"));
    ASSERT_TRUE(!dev(ACL_READ, "app2dev/" DID "/"));
    ASSERT_TRUE(!dev(ACL_READ, "app2dev/" DID));
    ASSERT_TRUE(!dev(ACL_READ, "app2dev/" DID2 "/" CID));
    ASSERT_TRUE(!dev(ACL_READ, "ser2cli_res/" DID2));
    ASSERT_TRUE(!dev(ACL_READ, "dev2app/" DID));
}

TEST_CASE(device_write)
{
    ASSERT_TRUE(dev(ACL_WRITE, "ser2cli_req"));
    ASSERT_TRUE(dev(ACL_WRITE, "cli2ser_req"));
    ASSERT_TRUE(dev(ACL_WRITE, "dev2app/" DID));
    ASSERT_TRUE(dev(ACL_WRITE, "dev2app/" DID "/" CID));
    ASSERT_TRUE(!dev(ACL_WRITE, "dev2app/" DID "/"));
    ASSERT_TRUE(!dev(ACL_WRITE, "dev2app/" DID "/a/b"));
    ASSERT_TRUE(!dev(ACL_WRITE, "dev2app/" DID "/+"));
    ASSERT_TRUE(!dev(ACL_WRITE, "dev2app/" DID "/#"));
    ASSERT_TRUE(!dev(ACL_WRITE, "dev2app/" DID2));
    ASSERT_TRUE(!dev(ACL_WRITE, "ser2cli_req/x"));
    ASSERT_TRUE(!dev(ACL_WRITE, "ser2cli_res/" DID));
    ASSERT_TRUE(!dev(ACL_WRITE, "app2dev/" DID "/" CID));
}

TEST_CASE(app_bound_only)
{
    ASSERT_TRUE(app(ACL_WRITE, "app2dev/" DID "/" CID));
    ASSERT_TRUE(app(ACL_SUBSCRIBE, "dev2app/" DID));
    ASSERT_TRUE(app(ACL_SUBSCRIBE, "dev2app/" DID "/" CID));
    ASSERT_TRUE(app(ACL_READ, "dev2app/" DID));
    ASSERT_TRUE(app(ACL_READ, "dev2app/" DID "/" CID));
    /* a DID the user is not bound to */
    ASSERT_TRUE(!app(ACL_WRITE, "app2dev/" DID2 "/" CID));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "dev2app/" DID2));
    ASSERT_TRUE(!app(ACL_READ, "dev2app/" DID2 "/" CID));
    /* the same rules with no bindings at all */
    static const char *const none[] = {NULL};
    ASSERT_TRUE(!acl__app_allowed(CID, bound_to_did, none, ACL_SUBSCRIBE, "dev2app/" DID));
    ASSERT_TRUE(!acl__app_allowed(CID, bound_to_did, none, ACL_WRITE, "app2dev/" DID "/" CID));
}

TEST_CASE(app_own_client_id)
{
    ASSERT_TRUE(!app(ACL_WRITE, "app2dev/" DID "/otherclient"));
    ASSERT_TRUE(!app(ACL_WRITE, "app2dev/" DID));
    ASSERT_TRUE(!app(ACL_WRITE, "app2dev/" DID "/" CID "/x"));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "dev2app/" DID "/otherclient"));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "dev2app/" DID "/#"));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "dev2app/+"));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "dev2app/#"));
    /* its own ser2cli_res tree */
    ASSERT_TRUE(app(ACL_SUBSCRIBE, "ser2cli_res/" CID "/#"));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "ser2cli_res/" CID));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "ser2cli_res/otherclient/#"));
    ASSERT_TRUE(app(ACL_READ, "ser2cli_res/" CID));
    ASSERT_TRUE(app(ACL_READ, "ser2cli_res/" CID "/x"));
    ASSERT_TRUE(!app(ACL_READ, "ser2cli_res/" CID "x"));
    /* apps never write device topics */
    ASSERT_TRUE(!app(ACL_WRITE, "dev2app/" DID));
    ASSERT_TRUE(!app(ACL_WRITE, "ser2cli_req"));
    ASSERT_TRUE(!app(ACL_WRITE, "cli2ser_req"));
}

TEST_CASE(bad_input)
{
    ASSERT_TRUE(!acl__device_allowed(NULL, PK, ACL_WRITE, "ser2cli_req"));
    ASSERT_TRUE(!acl__device_allowed(DID, NULL, ACL_WRITE, "ser2cli_req"));
    ASSERT_TRUE(!acl__device_allowed(DID, PK, ACL_WRITE, NULL));
    ASSERT_TRUE(!acl__device_allowed(DID, PK, (enum acl_access)99, "ser2cli_req"));
    ASSERT_TRUE(!acl__app_allowed(NULL, bound_to_did, bindings, ACL_READ, "dev2app/" DID));
    ASSERT_TRUE(!acl__app_allowed(CID, NULL, bindings, ACL_READ, "dev2app/" DID));
    ASSERT_TRUE(!acl__app_allowed(CID, bound_to_did, bindings, ACL_READ, NULL));
    ASSERT_TRUE(
        !acl__app_allowed(CID, bound_to_did, bindings, (enum acl_access)99, "dev2app/" DID));
    /* a DID level of the wrong length never reaches the binding check */
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "dev2app/VC6NvEgBTenVdWxAem6FZ"));
    ASSERT_TRUE(!app(ACL_SUBSCRIBE, "dev2app/"));
}

TEST_LIST(TEST_ENTRY(device_subscribe), TEST_ENTRY(device_read), TEST_ENTRY(device_write),
          TEST_ENTRY(app_bound_only), TEST_ENTRY(app_own_client_id), TEST_ENTRY(bad_input));
TEST_MAIN()
