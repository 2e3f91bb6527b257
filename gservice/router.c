/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The route table of giz-gservice: which path pattern (a "*" segment captures
 * one path segment into rq->param) and which methods go to which handler,
 * the route names used by the metrics and the access log, method parsing and
 * the Allow header of a 405. Nothing here answers a request.
 */
#include <stdio.h>
#include <string.h>

#include "gservice.h"

#define M_READ (GS_M_GET | GS_M_HEAD)
static const struct gs_route routes[] = {
    {"/healthz", GS_ROUTE_HEALTHZ, M_READ, gs_route_healthz},
    {"/metrics", GS_ROUTE_METRICS, M_READ, gs_route_metrics},
    {"/dev/devices", GS_ROUTE_DEV_DEVICES, GS_M_POST | GS_M_DELETE, gs_route_dev_devices},
    {"/dev/devices/*", GS_ROUTE_DEV_PROVISION, M_READ, gs_route_dev_provision},
    {"/dev/ota/v4.1/update_and_check/*", GS_ROUTE_OTA_CHECK, GS_M_POST, gs_route_ota_check},
    {"/dev/ota/target_fid", GS_ROUTE_OTA_TARGET_FID, M_READ, gs_route_ota_target_fid},
    {"/dev/ota/v4.1/latest", GS_ROUTE_OTA_LATEST, M_READ, gs_route_ota_latest},
    {"/dev/ota/v4.1/download/*", GS_ROUTE_OTA_DOWNLOAD, M_READ, gs_route_ota_download},
    {"/dev/ota/download/*", GS_ROUTE_OTA_DOWNLOAD, M_READ, gs_route_ota_download},
    {"/dev/*/device", GS_ROUTE_DEV_SAFE, M_READ | GS_M_POST, gs_route_dev_safe},
    {"/admin/products", GS_ROUTE_ADMIN_PRODUCTS, M_READ | GS_M_POST, gs_route_admin_products},
    {"/admin/devices", GS_ROUTE_ADMIN_DEVICES, M_READ, gs_route_admin_devices},
    {"/admin/brokers", GS_ROUTE_ADMIN_BROKERS, M_READ, gs_route_admin_brokers},
    {"/admin/devices/*", GS_ROUTE_ADMIN_DEVICE, M_READ | GS_M_DELETE, gs_route_admin_device},
    {"/admin/devices/*/logs", GS_ROUTE_ADMIN_DEVICE_LOGS, M_READ, gs_route_admin_device_logs},
    {"/admin/devices/*/events", GS_ROUTE_ADMIN_DEVICE_EVENTS, M_READ, gs_route_admin_device_events},
    {"/admin/events/stream", GS_ROUTE_ADMIN_EVENT_STREAM, GS_M_GET, gs_route_admin_event_stream},
    {"/admin/firmware", GS_ROUTE_ADMIN_FIRMWARE, M_READ | GS_M_POST, gs_route_admin_firmware},
    {"/admin/ota/push", GS_ROUTE_ADMIN_OTA_PUSH, GS_M_POST, gs_route_admin_ota_push},
    {"/app/users", GS_ROUTE_APP_USERS, M_READ | GS_M_POST | GS_M_PUT, gs_route_app_users},
    {"/app/login", GS_ROUTE_APP_LOGIN, GS_M_POST, gs_route_app_login},
    {"/app/bindings", GS_ROUTE_APP_BINDINGS, M_READ | GS_M_POST | GS_M_DELETE,
     gs_route_app_bindings},
    {"/app/bindings/*", GS_ROUTE_APP_BINDING, GS_M_PUT, gs_route_app_binding},
    {"/app/bind_mac", GS_ROUTE_APP_BIND_MAC, GS_M_POST, gs_route_app_bind_mac},
    {"/app/devices/*", GS_ROUTE_APP_DEVICE, M_READ, gs_route_app_device},
    {"/app/devices/*/raw_data", GS_ROUTE_APP_RAW_DATA, M_READ, gs_route_app_raw_data},
    {"/app/control/*", GS_ROUTE_APP_CONTROL, GS_M_POST, gs_route_app_control},
    {"/admin/products/*/datapoints", GS_ROUTE_ADMIN_DATAPOINTS, M_READ | GS_M_PUT,
     gs_route_admin_datapoints},
    {"/app/datapoint", GS_ROUTE_APP_DATAPOINT, M_READ, gs_route_app_datapoint},
    {"/app/devdata/*/latest", GS_ROUTE_APP_DEVDATA_LATEST, M_READ, gs_route_app_devdata_latest},
    {"/admin/devices/*/disable", GS_ROUTE_ADMIN_DEVICE_DISABLE, GS_M_POST,
     gs_route_admin_device_control},
    {"/admin/devices/*/enable", GS_ROUTE_ADMIN_DEVICE_ENABLE, GS_M_POST,
     gs_route_admin_device_control},
    {"/admin/devices/*/kick", GS_ROUTE_ADMIN_DEVICE_KICK, GS_M_POST, gs_route_admin_device_control},
    {"/admin/firmware/*", GS_ROUTE_ADMIN_FIRMWARE_ITEM, M_READ | GS_M_DELETE,
     gs_route_admin_firmware_item},
    {"/openapi.json", GS_ROUTE_OPENAPI, M_READ, gs_route_openapi},
    {"/ws/app/v1", GS_ROUTE_WS_APP, GS_M_GET, gs_route_ws_app},
    /* the web console (route_console.c); /console/stream before the files */
    {"/", GS_ROUTE_ROOT, M_READ, gs_route_root},
    {"/console", GS_ROUTE_CONSOLE, M_READ, gs_route_console},
    {"/console/", GS_ROUTE_CONSOLE, M_READ, gs_route_console},
    {"/console/stream", GS_ROUTE_CONSOLE_STREAM, GS_M_GET, gs_route_console_stream},
    {"/console/*", GS_ROUTE_CONSOLE, M_READ, gs_route_console},
    {"/admin/events/ticket", GS_ROUTE_ADMIN_STREAM_TICKET, GS_M_POST, gs_route_admin_stream_ticket},
    {"/admin/devices/*/send", GS_ROUTE_ADMIN_DEVICE_SEND, GS_M_POST, gs_route_admin_device_send},
    {"/admin/device_search", GS_ROUTE_ADMIN_DEVICE_SEARCH, M_READ, gs_route_admin_device_search},
    {"/admin/devices/*/latest", GS_ROUTE_ADMIN_DEVICE_LATEST, M_READ, gs_route_admin_device_latest},
    {"/admin/ota/campaigns", GS_ROUTE_ADMIN_CAMPAIGNS, M_READ | GS_M_POST,
     gs_route_admin_campaigns},
    {"/admin/ota/campaigns/*", GS_ROUTE_ADMIN_CAMPAIGN, M_READ, gs_route_admin_campaign},
    {"/admin/ota/campaigns/*/*", GS_ROUTE_ADMIN_CAMPAIGN_ACTION, GS_M_POST,
     gs_route_admin_campaign_action},
};

static const char *const route_names[GS_ROUTE_COUNT] = {
    [GS_ROUTE_NONE] = "unmatched",
    [GS_ROUTE_HEALTHZ] = "healthz",
    [GS_ROUTE_METRICS] = "metrics",
    [GS_ROUTE_DEV_DEVICES] = "dev_devices",
    [GS_ROUTE_DEV_PROVISION] = "dev_provision",
    [GS_ROUTE_DEV_SAFE] = "dev_safe",
    [GS_ROUTE_OTA_CHECK] = "ota_check",
    [GS_ROUTE_OTA_TARGET_FID] = "ota_target_fid",
    [GS_ROUTE_OTA_LATEST] = "ota_latest",
    [GS_ROUTE_OTA_DOWNLOAD] = "ota_download",
    [GS_ROUTE_ADMIN_PRODUCTS] = "admin_products",
    [GS_ROUTE_ADMIN_DEVICES] = "admin_devices",
    [GS_ROUTE_ADMIN_DEVICE] = "admin_device",
    [GS_ROUTE_ADMIN_DEVICE_LOGS] = "admin_device_logs",
    [GS_ROUTE_ADMIN_FIRMWARE] = "admin_firmware",
    [GS_ROUTE_ADMIN_OTA_PUSH] = "admin_ota_push",
    [GS_ROUTE_APP_USERS] = "app_users",
    [GS_ROUTE_APP_LOGIN] = "app_login",
    [GS_ROUTE_APP_BINDINGS] = "app_bindings",
    [GS_ROUTE_APP_BINDING] = "app_binding",
    [GS_ROUTE_APP_BIND_MAC] = "app_bind_mac",
    [GS_ROUTE_APP_DEVICE] = "app_device",
    [GS_ROUTE_APP_RAW_DATA] = "app_raw_data",
    [GS_ROUTE_APP_CONTROL] = "app_control",
    [GS_ROUTE_ADMIN_DATAPOINTS] = "admin_datapoints",
    [GS_ROUTE_APP_DATAPOINT] = "app_datapoint",
    [GS_ROUTE_APP_DEVDATA_LATEST] = "app_devdata_latest",
    [GS_ROUTE_ADMIN_DEVICE_EVENTS] = "admin_device_events",
    [GS_ROUTE_ADMIN_EVENT_STREAM] = "admin_event_stream",
    [GS_ROUTE_ADMIN_DEVICE_DISABLE] = "admin_device_disable",
    [GS_ROUTE_ADMIN_DEVICE_ENABLE] = "admin_device_enable",
    [GS_ROUTE_ADMIN_DEVICE_KICK] = "admin_device_kick",
    [GS_ROUTE_ADMIN_FIRMWARE_ITEM] = "admin_firmware_item",
    [GS_ROUTE_OPENAPI] = "openapi",
    [GS_ROUTE_WS_APP] = "ws_app",
    [GS_ROUTE_ROOT] = "root",
    [GS_ROUTE_CONSOLE] = "console",
    [GS_ROUTE_CONSOLE_STREAM] = "console_stream",
    [GS_ROUTE_ADMIN_STREAM_TICKET] = "admin_stream_ticket",
    [GS_ROUTE_ADMIN_DEVICE_SEND] = "admin_device_send",
    [GS_ROUTE_ADMIN_DEVICE_SEARCH] = "admin_device_search",
    [GS_ROUTE_ADMIN_DEVICE_LATEST] = "admin_device_latest",
    [GS_ROUTE_ADMIN_CAMPAIGNS] = "admin_campaigns",
    [GS_ROUTE_ADMIN_CAMPAIGN] = "admin_campaign",
    [GS_ROUTE_ADMIN_CAMPAIGN_ACTION] = "admin_campaign_action",
    [GS_ROUTE_ADMIN_BROKERS] = "admin_brokers",
};

const char *gs_route_name(enum gs_route_id id)
{
    if ((int)id < 0 || id >= GS_ROUTE_COUNT || route_names[id] == NULL) return "unmatched";
    return route_names[id];
}

/* Matches path[0..len) against `pattern`; fills rq->param on success. */
static bool route_match(const char *pattern, const char *path, size_t len, struct gs_request *rq)
{
    const char *p = pattern;
    size_t i = 0;
    unsigned n_param = 0;
    char params[2][GS_PARAM_SIZE] = {{0}};
    while (*p != '\0') {
        if (*p != '/' || i >= len || path[i] != '/') return false;
        p++;
        i++;
        size_t seg_start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t seg_len = i - seg_start;
        const char *pend = strchr(p, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        if (plen == 1 && p[0] == '*') {
            if (seg_len == 0 || n_param >= 2) return false;
            if (seg_len < GS_PARAM_SIZE) memcpy(params[n_param], path + seg_start, seg_len);
            /* an oversize segment captures "" and fails validation later */
            n_param++;
        } else if (plen != seg_len || memcmp(p, path + seg_start, seg_len) != 0) {
            return false;
        }
        p += plen;
    }
    if (i != len) return false;
    memcpy(rq->param, params, sizeof params);
    return true;
}

int gs_method_parse(const char *m)
{
    static const struct {
        const char *name;
        int bit;
    } methods[] = {{"GET", GS_M_GET},    {"HEAD", GS_M_HEAD},     {"POST", GS_M_POST},
                   {"PUT", GS_M_PUT},    {"DELETE", GS_M_DELETE}, {"OPTIONS", GS_M_OPTIONS},
                   {"PATCH", GS_M_PATCH}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0) return methods[i].bit;
    return GS_M_OTHER;
}

void gs_route_allow(int methods, char *out, size_t cap)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(methods & (1 << i))) continue;
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= cap - used) break;
        used += (size_t)n;
    }
}

/* Every route under /admin/ needs the token: new admin routes need no list here. */
bool gs_route_is_admin(enum gs_route_id id)
{
    if (id == GS_ROUTE_NONE) return false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].id == id) return strncmp(routes[i].pattern, "/admin/", 7) == 0;
    return false;
}

void gs_route_print(FILE *f)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char allow[64];
        gs_route_allow(routes[i].methods, allow, sizeof allow);
        for (char *c = allow; *c != '\0'; c++) /* "GET, HEAD" -> "GET,HEAD" */
            if (*c == ' ') memmove(c, c + 1, strlen(c));
        fprintf(f, "%s\t%s\t%s\n", routes[i].pattern, allow, gs_route_name(routes[i].id));
    }
}

const struct gs_route *gs_route_find(struct gs_request *rq)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (route_match(routes[i].pattern, rq->raw_uri, rq->path_len, rq)) return &routes[i];
    return NULL;
}

void gs_route_dispatch(struct gs_request *rq)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].id == rq->route) {
            routes[i].fn(rq);
            return;
        }
    }
}
