/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the GService's route table (gservice/router.c, linked from
 * the giz_gservice_core library): which paths match which route and capture
 * which segments, paths that match nothing (the 404 of request.c), method
 * names, the methods each route takes, the Allow value of a 405, route names
 * and the admin routes. The request is a bare struct gs_request with only
 * the path set, as request.c fills it before routing.
 */
#include <string.h>

#include "gservice.h"
#include "test.h"

#define DID "GdzuSRncfDPGHGo2LxwgM2"
#define PK "0123456789abcdef0123456789abcdef"

/* Routes `target` (a path, optionally "?query") the way request.c does:
 * raw_uri is the target, path_len stops at '?'. */
static const struct gs_route *find(struct gs_request *rq, char *buf, size_t cap, const char *target)
{
    memset(rq, 0, sizeof *rq);
    snprintf(buf, cap, "%s", target);
    rq->raw_uri = buf;
    const char *q = strchr(buf, '?');
    rq->path_len = q != NULL ? (size_t)(q - buf) : strlen(buf);
    return gs_route_find(rq);
}

struct match_case {
    const char *target;
    enum gs_route_id id;
    const char *param0, *param1;
};

TEST_CASE(match)
{
    static const struct match_case cases[] = {
        {"/healthz", GS_ROUTE_HEALTHZ, "", ""},
        {"/metrics", GS_ROUTE_METRICS, "", ""},
        {"/dev/devices", GS_ROUTE_DEV_DEVICES, "", ""},
        {"/dev/devices/" DID, GS_ROUTE_DEV_PROVISION, DID, ""},
        {"/dev/ota/v4.1/update_and_check/" DID, GS_ROUTE_OTA_CHECK, DID, ""},
        {"/dev/ota/target_fid", GS_ROUTE_OTA_TARGET_FID, "", ""},
        {"/dev/ota/v4.1/latest", GS_ROUTE_OTA_LATEST, "", ""},
        {"/dev/ota/v4.1/download/17", GS_ROUTE_OTA_DOWNLOAD, "17", ""},
        {"/dev/ota/download/17", GS_ROUTE_OTA_DOWNLOAD, "17", ""},
        {"/dev/" PK "/device", GS_ROUTE_DEV_SAFE, PK, ""},
        {"/admin/products", GS_ROUTE_ADMIN_PRODUCTS, "", ""},
        {"/admin/devices", GS_ROUTE_ADMIN_DEVICES, "", ""},
        {"/admin/devices/" DID, GS_ROUTE_ADMIN_DEVICE, DID, ""},
        {"/admin/devices/" DID "/logs", GS_ROUTE_ADMIN_DEVICE_LOGS, DID, ""},
        {"/admin/firmware", GS_ROUTE_ADMIN_FIRMWARE, "", ""},
        {"/admin/ota/push", GS_ROUTE_ADMIN_OTA_PUSH, "", ""},
        {"/app/users", GS_ROUTE_APP_USERS, "", ""},
        {"/app/login", GS_ROUTE_APP_LOGIN, "", ""},
        {"/app/bindings", GS_ROUTE_APP_BINDINGS, "", ""},
        /* the query is not part of the path */
        {"/dev/ota/v4.1/latest?product_key=" PK "&did=" DID, GS_ROUTE_OTA_LATEST, "", ""},
        {"/admin/devices/" DID "/logs?limit=5", GS_ROUTE_ADMIN_DEVICE_LOGS, DID, ""},
        /* "*" takes any one non-empty segment; validation is the handler's */
        {"/dev/devices/x", GS_ROUTE_DEV_PROVISION, "x", ""},
        {"/dev/devices/%20", GS_ROUTE_DEV_PROVISION, "%20", ""},
        /* "/dev/<pk>/device" takes any middle segment, even "ota" */
        {"/dev/ota/device", GS_ROUTE_DEV_SAFE, "ota", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gs_request rq;
        char buf[256];
        const struct gs_route *r = find(&rq, buf, sizeof buf, cases[i].target);
        ASSERT_TRUE(r != NULL);
        if (r == NULL) {
            fprintf(stderr, "  no route for %s\n", cases[i].target);
            continue;
        }
        ASSERT_EQ(r->id, cases[i].id);
        ASSERT_STREQ(rq.param[0], cases[i].param0);
        ASSERT_STREQ(rq.param[1], cases[i].param1);
        ASSERT_TRUE(r->fn != NULL);
    }
}

/* Paths request.c answers 404 for: nothing in the table matches. */
TEST_CASE(unknown_path)
{
    static const char *const targets[] = {
        "",
        "?healthz", /* ("/" redirects to the console) */
        "/nope",
        "/healthz/", /* trailing slash: one more (empty) segment */
        "//healthz",
        "/healthz/x",
        "/HEALTHZ", /* paths are case-sensitive */
        "/healthzz",
        "/health",
        "healthz", /* no leading slash */
        "/dev",
        "/dev/",
        "/dev/devices/", /* "*" needs a non-empty segment */
        "/dev/devices//",
        "/dev/devices/" DID "/",
        "/dev/devices/" DID "/x",
        "/dev//device",
        "/dev/ota/v4.1/update_and_check",
        "/dev/ota/v4.1/update_and_check/",
        "/dev/ota/v4.1/download",
        "/admin/devices/" DID "/logs/x",
        "/admin/devices/" DID "/log",
        "/admin",
        "/app",
        "/app/users/x",
        "http://h/healthz", /* request.c strips an absolute form before routing */
        "/metrics\x01",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        struct gs_request rq;
        char buf[256];
        const struct gs_route *r = find(&rq, buf, sizeof buf, targets[i]);
        ASSERT_TRUE(r == NULL);
        if (r != NULL) fprintf(stderr, "  \"%s\" matched %s\n", targets[i], gs_route_name(r->id));
    }
}

/* A path shorter than the buffer it lives in: only path_len counts. */
TEST_CASE(path_len)
{
    struct gs_request rq;
    char buf[] = "/healthzXYZ";
    memset(&rq, 0, sizeof rq);
    rq.raw_uri = buf;
    rq.path_len = 8;
    const struct gs_route *r = gs_route_find(&rq);
    ASSERT_TRUE(r != NULL && r->id == GS_ROUTE_HEALTHZ);
    rq.path_len = 7; /* "/health" */
    ASSERT_TRUE(gs_route_find(&rq) == NULL);
    rq.path_len = 0;
    ASSERT_TRUE(gs_route_find(&rq) == NULL);
}

/* A segment of GS_PARAM_SIZE bytes or more still routes but captures "",
 * which every handler's validation refuses; a segment that fits is kept
 * whole. A failed match leaves the previous capture alone. */
TEST_CASE(param_size)
{
    struct gs_request rq;
    char buf[512], target[512];
    char seg[GS_PARAM_SIZE + 1];
    memset(seg, 'a', sizeof seg - 1);
    seg[GS_PARAM_SIZE - 1] = '\0'; /* 63 bytes: fits */
    snprintf(target, sizeof target, "/dev/devices/%s", seg);
    const struct gs_route *r = find(&rq, buf, sizeof buf, target);
    ASSERT_TRUE(r != NULL && r->id == GS_ROUTE_DEV_PROVISION);
    ASSERT_EQ(strlen(rq.param[0]), GS_PARAM_SIZE - 1);
    seg[GS_PARAM_SIZE - 1] = 'a';
    seg[GS_PARAM_SIZE] = '\0'; /* 64 bytes: too long */
    snprintf(target, sizeof target, "/dev/devices/%s", seg);
    r = find(&rq, buf, sizeof buf, target);
    ASSERT_TRUE(r != NULL && r->id == GS_ROUTE_DEV_PROVISION);
    ASSERT_STREQ(rq.param[0], "");

    find(&rq, buf, sizeof buf, "/admin/devices/" DID);
    ASSERT_STREQ(rq.param[0], DID);
    snprintf(buf, sizeof buf, "/nothing/here");
    rq.path_len = strlen(buf);
    ASSERT_TRUE(gs_route_find(&rq) == NULL);
    ASSERT_STREQ(rq.param[0], DID);
}

TEST_CASE(methods)
{
    ASSERT_EQ(gs_method_parse("GET"), GS_M_GET);
    ASSERT_EQ(gs_method_parse("HEAD"), GS_M_HEAD);
    ASSERT_EQ(gs_method_parse("POST"), GS_M_POST);
    ASSERT_EQ(gs_method_parse("PUT"), GS_M_PUT);
    ASSERT_EQ(gs_method_parse("DELETE"), GS_M_DELETE);
    ASSERT_EQ(gs_method_parse("OPTIONS"), GS_M_OPTIONS);
    ASSERT_EQ(gs_method_parse("PATCH"), GS_M_PATCH);
    /* method names are case-sensitive (RFC 9110 9.1) */
    ASSERT_EQ(gs_method_parse("get"), GS_M_OTHER);
    ASSERT_EQ(gs_method_parse("Post"), GS_M_OTHER);
    ASSERT_EQ(gs_method_parse(""), GS_M_OTHER);
    ASSERT_EQ(gs_method_parse("GETX"), GS_M_OTHER);
    ASSERT_EQ(gs_method_parse("GE"), GS_M_OTHER);
    ASSERT_EQ(gs_method_parse("TRACE"), GS_M_OTHER);
    ASSERT_EQ(gs_method_parse("CONNECT"), GS_M_OTHER);
    ASSERT_EQ(gs_method_parse("BREW"), GS_M_OTHER);
    /* GS_M_OTHER is in no route's mask: an unknown method is always a 405 */
    ASSERT_EQ(GS_M_OTHER, 0);
}

/* What request.c answers for a method on a path: 404 with no route, 405
 * with the route's Allow value when the method is not in its mask, else the
 * route's handler runs (0 here). */
static unsigned outcome(const char *method, const char *target, char *allow, size_t cap)
{
    struct gs_request rq;
    char buf[256];
    allow[0] = '\0';
    const struct gs_route *r = find(&rq, buf, sizeof buf, target);
    if (r == NULL) return 404;
    if (!(r->methods & gs_method_parse(method))) {
        gs_route_allow(r->methods, allow, cap);
        return 405;
    }
    return 0;
}

struct method_case {
    const char *method, *target;
    unsigned status;
    const char *allow;
};

TEST_CASE(allow_405)
{
    static const struct method_case cases[] = {
        {"GET", "/healthz", 0, ""},
        {"HEAD", "/healthz", 0, ""},
        {"POST", "/healthz", 405, "GET, HEAD"},
        {"GET", "/dev/devices", 405, "POST, DELETE"},
        {"POST", "/dev/devices", 0, ""},
        {"DELETE", "/dev/devices", 0, ""},
        {"PUT", "/dev/devices", 405, "POST, DELETE"},
        {"DELETE", "/admin/products", 405, "GET, HEAD, POST"},
        {"POST", "/admin/products", 0, ""},
        {"PUT", "/app/login", 405, "POST"},
        {"GET", "/app/login", 405, "POST"},
        {"GET", "/dev/ota/v4.1/update_and_check/" DID, 405, "POST"},
        {"POST", "/dev/" PK "/device", 0, ""},
        {"GET", "/dev/" PK "/device", 0, ""},
        {"DELETE", "/dev/" PK "/device", 405, "GET, HEAD, POST"},
        {"OPTIONS", "/app/bindings", 405, "GET, HEAD, POST, DELETE"},
        {"DELETE", "/app/bindings", 0, ""},
        {"PATCH", "/admin/firmware", 405, "GET, HEAD, POST"},
        {"BREW", "/metrics", 405, "GET, HEAD"},
        {"get", "/metrics", 405, "GET, HEAD"},
        {"POST", "/admin/devices/" DID "/logs", 405, "GET, HEAD"},
        {"GET", "/admin/ota/push", 405, "POST"},
        /* an unknown path is a 404 whatever the method */
        {"GET", "/nope", 404, ""},
        {"BREW", "/nope", 404, ""},
        {"POST", "/healthz/", 404, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char allow[96];
        unsigned st = outcome(cases[i].method, cases[i].target, allow, sizeof allow);
        ASSERT_EQ(st, cases[i].status);
        ASSERT_STREQ(allow, cases[i].allow);
        if (st != cases[i].status || strcmp(allow, cases[i].allow) != 0)
            fprintf(stderr, "  %s %s\n", cases[i].method, cases[i].target);
    }
}

/* The Allow value itself: every method in a fixed order, ", " between. */
TEST_CASE(allow_value)
{
    char out[96];
    gs_route_allow(0, out, sizeof out);
    ASSERT_STREQ(out, "");
    gs_route_allow(GS_M_PATCH, out, sizeof out);
    ASSERT_STREQ(out, "PATCH");
    gs_route_allow(GS_M_DELETE | GS_M_GET, out, sizeof out);
    ASSERT_STREQ(out, "GET, DELETE");
    int all = GS_M_GET | GS_M_HEAD | GS_M_POST | GS_M_PUT | GS_M_DELETE | GS_M_OPTIONS | GS_M_PATCH;
    gs_route_allow(all, out, sizeof out);
    ASSERT_STREQ(out, "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
    /* bits outside the seven methods add nothing */
    gs_route_allow(GS_M_POST | (1 << 7) | (1 << 20), out, sizeof out);
    ASSERT_STREQ(out, "POST");
    /* a value that fits exactly; a smaller buffer always stays terminated */
    gs_route_allow(GS_M_GET | GS_M_HEAD, out, 10);
    ASSERT_STREQ(out, "GET, HEAD");
    for (size_t cap = 1; cap < 12; cap++) {
        char small[12];
        memset(small, 'x', sizeof small);
        gs_route_allow(all, small, cap);
        ASSERT_TRUE(memchr(small, '\0', cap) != NULL);
        ASSERT_EQ(small[cap], 'x'); /* nothing written past cap */
    }
}

TEST_CASE(names)
{
    ASSERT_STREQ(gs_route_name(GS_ROUTE_NONE), "unmatched");
    ASSERT_STREQ(gs_route_name(GS_ROUTE_HEALTHZ), "healthz");
    ASSERT_STREQ(gs_route_name(GS_ROUTE_OTA_DOWNLOAD), "ota_download");
    ASSERT_STREQ(gs_route_name(GS_ROUTE_APP_BINDINGS), "app_bindings");
    ASSERT_STREQ(gs_route_name(GS_ROUTE_COUNT), "unmatched");
    ASSERT_STREQ(gs_route_name((enum gs_route_id) - 1), "unmatched");
    ASSERT_STREQ(gs_route_name((enum gs_route_id)1000), "unmatched");
    /* every real route has its own name (metrics and the access log) */
    for (int a = GS_ROUTE_NONE + 1; a < GS_ROUTE_COUNT; a++) {
        const char *na = gs_route_name((enum gs_route_id)a);
        ASSERT_TRUE(strcmp(na, "unmatched") != 0);
        for (int b = a + 1; b < GS_ROUTE_COUNT; b++)
            if (strcmp(na, gs_route_name((enum gs_route_id)b)) == 0)
                TEST_FAIL_("routes %d and %d share the name %s", a, b, na);
    }
}

TEST_CASE(admin)
{
    struct gs_request rq;
    char buf[256];
    const char *admin[] = {"/admin/products",     "/admin/devices",
                           "/admin/devices/" DID, "/admin/devices/" DID "/logs",
                           "/admin/firmware",     "/admin/ota/push"};
    const char *other[] = {"/healthz",   "/metrics",   "/dev/devices",  "/dev/ota/v4.1/latest",
                           "/app/users", "/app/login", "/app/bindings", "/dev/" PK "/device"};
    for (size_t i = 0; i < sizeof admin / sizeof admin[0]; i++) {
        const struct gs_route *r = find(&rq, buf, sizeof buf, admin[i]);
        ASSERT_TRUE(r != NULL && gs_route_is_admin(r->id));
    }
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        const struct gs_route *r = find(&rq, buf, sizeof buf, other[i]);
        ASSERT_TRUE(r != NULL && !gs_route_is_admin(r->id));
    }
    ASSERT_TRUE(!gs_route_is_admin(GS_ROUTE_NONE));
    ASSERT_TRUE(!gs_route_is_admin(GS_ROUTE_COUNT));
}

TEST_LIST(TEST_ENTRY(match), TEST_ENTRY(unknown_path), TEST_ENTRY(path_len), TEST_ENTRY(param_size),
          TEST_ENTRY(methods), TEST_ENTRY(allow_405), TEST_ENTRY(allow_value), TEST_ENTRY(names),
          TEST_ENTRY(admin));
TEST_MAIN()
