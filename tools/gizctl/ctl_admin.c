/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl operator commands on the admin API (bearer GIZ_ADMIN_TOKEN):
 * products, devices with online state and last seen time, firmware
 * registration, upload, show and delete, OTA push, a device's stored logs,
 * and device control (disable, enable, kick, delete); lists take --limit
 * and --offset and print the GService's total.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "giz/form.h"
#include "util.h"

/* Percent-encodes v for a query string into out. */
static const char *q(const char *v, char *out, size_t cap)
{
    if (giz_form_encode_value(v, out, cap) != GIZ_OK) snprintf(out, cap, "%s", "");
    return out;
}

/* "2026-11-26T09:30:00Z (12s ago)" for a unix time, or the text as is. */
static const char *when(const cJSON *obj, const char *key, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v) && v->valuedouble > 0) {
        time_t t = (time_t)v->valuedouble;
        struct tm tm;
        char iso[32];
        long ago = (long)(time(NULL) - t);
        gmtime_r(&t, &tm);
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (ago >= 0)
            snprintf(buf, cap, "%s (%lds ago)", iso, ago);
        else
            snprintf(buf, cap, "%s", iso);
        return buf;
    }
    if (cJSON_IsNumber(v)) return "never";
    return ctl__jtext(obj, key, buf, cap);
}

/* Appends "<sep>limit=N&offset=N" for --limit / --offset to path. */
static int page_query(const struct ctl_args *a, char *path, size_t cap)
{
    const char *lim = ctl__opt(a, "limit"), *off = ctl__opt(a, "offset");
    uint64_t v;
    size_t used = strlen(path);
    if (lim != NULL && giz_parse_uint(lim, 10, 1, 10000, &v) != GIZ_OK)
        return ctl__fail(CTL_USAGE, "--limit wants a number 1..10000, not \"%s\"", lim);
    if (off != NULL && giz_parse_uint(off, 10, 0, UINT32_MAX, &v) != GIZ_OK)
        return ctl__fail(CTL_USAGE, "--offset wants a number, not \"%s\"", off);
    if (lim != NULL) {
        snprintf(path + used, cap - used, "%slimit=%s", strchr(path, '?') ? "&" : "?", lim);
        used = strlen(path);
    }
    if (off != NULL)
        snprintf(path + used, cap - used, "%soffset=%s", strchr(path, '?') ? "&" : "?", off);
    return CTL_OK;
}

/* "N of TOTAL <what>" under a text listing (the answer's total, if it has one). */
static void page_footer(const cJSON *out, int shown, const char *what)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(out, "total");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(out, "offset");
    if (cJSON_IsNumber(t))
        printf("%d of %.0f %s (from offset %.0f)\n", shown, t->valuedouble, what,
               cJSON_IsNumber(o) ? o->valuedouble : 0.0);
    else
        printf("%d %s\n", shown, what);
}

int ctl__cmd_product_create(struct ctl *ctl, const struct ctl_args *a)
{
    cJSON *body = cJSON_CreateObject(), *out = NULL;
    int rc;

    cJSON_AddStringToObject(body, "name", a->pos[0]);
    rc = ctl__http_json(ctl, "POST", "/admin/products", body, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) {
        if (ctl->json)
            ctl__print_json(out);
        else
            printf("product_key=%s\nproduct_secret=%s\nname=%s\n", ctl__jstr(out, "product_key"),
                   ctl__jstr(out, "product_secret"), ctl__jstr(out, "name"));
    }
    cJSON_Delete(body);
    cJSON_Delete(out);
    return rc;
}

static void products_text(const cJSON *out)
{
    const cJSON *item;
    int n = 0;

    printf("%-32s  %s\n", "PRODUCT KEY", "NAME");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(out, "products"))
    {
        printf("%-32s  %s\n", ctl__jstr(item, "product_key"), ctl__jstr(item, "name"));
        n++;
    }
    page_footer(out, n, "product(s)");
}

int ctl__cmd_product_list(struct ctl *ctl, const struct ctl_args *a)
{
    char path[256] = "/admin/products";
    int rc = page_query(a, path, sizeof path);
    if (rc != CTL_OK) return rc;
    return ctl__get_print(ctl, path, CTL_AUTH_ADMIN, products_text);
}

static void devices_text(const cJSON *out)
{
    const cJSON *item;
    int shown = 0, online = 0;

    printf("%-22s  %-32s  %-12s  %-6s  %s\n", "DID", "PRODUCT KEY", "MAC", "ONLINE", "LAST SEEN");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(out, "devices"))
    {
        char seen[64];
        bool on = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "online"));
        printf("%-22s  %-32s  %-12s  %-6s  %s\n", ctl__jstr(item, "did"),
               ctl__jstr(item, "product_key"), ctl__jstr(item, "mac"), on ? "yes" : "no",
               when(item, "last_seen", seen, sizeof seen));
        shown++;
        online += on;
    }
    printf("%d device(s) shown, %d online\n", shown, online);
    page_footer(out, shown, "device(s)");
}

int ctl__cmd_device_list(struct ctl *ctl, const struct ctl_args *a)
{
    cJSON *out = NULL;
    char path[256], enc[128];
    const char *pk = ctl__opt(a, "product");
    int rc;

    if (pk != NULL)
        snprintf(path, sizeof path, "/admin/devices?product_key=%s", q(pk, enc, sizeof enc));
    else
        snprintf(path, sizeof path, "/admin/devices");
    rc = page_query(a, path, sizeof path);
    if (rc != CTL_OK) return rc;
    rc = ctl__http_json(ctl, "GET", path, NULL, CTL_AUTH_ADMIN, &out);
    if (rc != CTL_OK) return rc;
    if (ctl__flag(a, "online")) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(out, "devices");
        for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--) {
            const cJSON *d = cJSON_GetArrayItem(list, i);
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "online")))
                cJSON_DeleteItemFromArray(list, i);
        }
    }
    ctl__print_answer(ctl, out, devices_text);
    cJSON_Delete(out);
    return rc;
}

static void device_text(const cJSON *out)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, out)
    {
        char buf[512];
        if (strcmp(item->string, "last_seen") == 0 || strcmp(item->string, "created_at") == 0 ||
            strcmp(item->string, "connected_since") == 0 ||
            strcmp(item->string, "disabled_at") == 0)
            printf("%-16s %s\n", item->string, when(out, item->string, buf, sizeof buf));
        else
            printf("%-16s %s\n", item->string, ctl__jtext(out, item->string, buf, sizeof buf));
    }
}

int ctl__cmd_device_show(struct ctl *ctl, const struct ctl_args *a)
{
    char path[256], enc[128];

    snprintf(path, sizeof path, "/admin/devices/%s", q(a->pos[0], enc, sizeof enc));
    return ctl__get_print(ctl, path, CTL_AUTH_ADMIN, device_text);
}

static void brokers_text(const cJSON *out)
{
    const cJSON *item, *list = cJSON_GetObjectItemCaseSensitive(out, "brokers");
    int shown = 0, alive = 0;
    printf("%-24s  %-28s  %-5s  %-8s  %s\n", "NAME", "ADDRESS", "ALIVE", "DEVICES",
           "HEARTBEAT AGE");
    cJSON_ArrayForEach(item, list)
    {
        char addr[300], n1[32], n2[32], n3[32];
        bool on = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "alive"));
        const char *host = ctl__jstr(item, "host");
        ctl__jtext(item, "port", n1, sizeof n1);
        if (host[0] == '\0' || strcmp(n1, "0") == 0)
            snprintf(addr, sizeof addr, "-");
        else
            snprintf(addr, sizeof addr, "%s:%s", host, n1);
        printf("%-24s  %-28s  %-5s  %-8s  %s ms%s\n", ctl__jstr(item, "name"), addr,
               on ? "yes" : "no", ctl__jtext(item, "devices", n2, sizeof n2),
               ctl__jtext(item, "heartbeat_age_ms", n3, sizeof n3),
               cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(item, "stopped_at")) ? " (stopped)"
                                                                                    : "");
        shown++;
        alive += on;
    }
    printf("%d broker(s), %d alive\n", shown, alive);
}

int ctl__cmd_broker_list(struct ctl *ctl, const struct ctl_args *a)
{
    (void)a;
    return ctl__get_print(ctl, "/admin/brokers", CTL_AUTH_ADMIN, brokers_text);
}

/* Checks and reads --type (default 1). */
static int fw_type(const struct ctl_args *a, int *type)
{
    const char *t = ctl__opt(a, "type");
    uint64_t v = 1;
    if (t != NULL && giz_parse_uint(t, 0, 1, 2, &v) != GIZ_OK)
        return ctl__fail(CTL_USAGE, "--type must be 1 (WiFi module) or 2 (MCU), not \"%s\"", t);
    *type = (int)v;
    return CTL_OK;
}

static void print_firmware(const struct ctl *ctl, const cJSON *out)
{
    if (ctl->json) {
        ctl__print_json(out);
    } else {
        char id[64];
        printf("id=%s\ndownload_url=%s\nmd5=%s\n", ctl__jtext(out, "id", id, sizeof id),
               ctl__jstr(out, "download_url"), ctl__jstr(out, "md5"));
    }
}

int ctl__cmd_firmware_register(struct ctl *ctl, const struct ctl_args *a)
{
    const char *pk = ctl__opt(a, "product"), *sv = ctl__opt(a, "soft-version");
    const char *hv = ctl__opt(a, "hard-version"), *url = ctl__opt(a, "url");
    cJSON *body = NULL, *out = NULL;
    int type = 1, rc;

    if (pk == NULL || sv == NULL || url == NULL)
        return ctl__fail(CTL_USAGE, "firmware register needs --product PK, --soft-version VER "
                                    "and --url URL (or use `firmware upload FILE`)");
    rc = fw_type(a, &type);
    if (rc != CTL_OK) return rc;
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "product_key", pk);
    cJSON_AddNumberToObject(body, "type", type);
    cJSON_AddStringToObject(body, "soft_version", sv);
    if (hv != NULL) cJSON_AddStringToObject(body, "hard_version", hv);
    cJSON_AddStringToObject(body, "url", url);
    rc = ctl__http_json(ctl, "POST", "/admin/firmware", body, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) print_firmware(ctl, out);
    cJSON_Delete(body);
    cJSON_Delete(out);
    return rc;
}

int ctl__cmd_firmware_upload(struct ctl *ctl, const struct ctl_args *a)
{
    const char *pk = ctl__opt(a, "product"), *sv = ctl__opt(a, "soft-version");
    const char *hv = ctl__opt(a, "hard-version");
    const char *file = a->pos[0], *base;
    uint8_t *data = NULL;
    size_t len = 0;
    cJSON *out = NULL;
    char path[1024], e1[128], e2[128], e3[128], e4[256];
    int type = 1, rc;

    if (pk == NULL || sv == NULL)
        return ctl__fail(CTL_USAGE, "firmware upload needs --product PK and --soft-version VER");
    if (ctl__opt(a, "url") != NULL)
        return ctl__fail(CTL_USAGE, "--url is for `firmware register`; upload hosts the file");
    rc = fw_type(a, &type);
    if (rc != CTL_OK) return rc;
    if (util__read_file(file, 64u << 20, &data, &len) != 0)
        return ctl__fail(CTL_LOCAL, "cannot read %s (at most 64 MiB)", file);
    base = strrchr(file, '/');
    base = base ? base + 1 : file;
    snprintf(path, sizeof path,
             "/admin/firmware?product_key=%s&type=%d&soft_version=%s%s%s&filename=%s",
             q(pk, e1, sizeof e1), type, q(sv, e2, sizeof e2), hv ? "&hard_version=" : "",
             hv ? q(hv, e3, sizeof e3) : "", q(base, e4, sizeof e4));
    rc = ctl__http_raw(ctl, "POST", path, "application/octet-stream", data, len, CTL_AUTH_ADMIN,
                       &out);
    if (rc == CTL_OK) print_firmware(ctl, out);
    free(data);
    cJSON_Delete(out);
    return rc;
}

/* Whether the product has firmware of `type` (0 = any): 1 yes, 0 no, -1 could not tell
 * (for a GService whose push answer does not say it). */
static int has_firmware(struct ctl *ctl, const char *did, const char *pk, int type)
{
    char path[256], enc[128], pkbuf[64] = "";
    cJSON *out = NULL;
    const cJSON *item;
    int found = 0;

    if (pk == NULL) {
        snprintf(path, sizeof path, "/admin/devices/%s", q(did, enc, sizeof enc));
        if (ctl__http_json(ctl, "GET", path, NULL, CTL_AUTH_ADMIN, &out) != CTL_OK) return -1;
        snprintf(pkbuf, sizeof pkbuf, "%s", ctl__jstr(out, "product_key"));
        cJSON_Delete(out);
        out = NULL;
        pk = pkbuf;
    }
    snprintf(path, sizeof path, "/admin/firmware?product_key=%s", q(pk, enc, sizeof enc));
    if (ctl__http_json(ctl, "GET", path, NULL, CTL_AUTH_ADMIN, &out) != CTL_OK) return -1;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(out, "firmware"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(item, "type");
        if (strcmp(ctl__jstr(item, "product_key"), pk) == 0 &&
            (type == 0 || (cJSON_IsNumber(t) && t->valueint == type)))
            found = 1;
    }
    cJSON_Delete(out);
    return found;
}

int ctl__cmd_ota_push(struct ctl *ctl, const struct ctl_args *a)
{
    const char *did = ctl__opt(a, "did"), *pk = ctl__opt(a, "product");
    const char *ov = ctl__opt(a, "ota-version");
    cJSON *body = NULL, *out = NULL;
    int type = 1, rc, ota_version = 41;

    if ((did == NULL) == (pk == NULL))
        return ctl__fail(CTL_USAGE, "ota push needs exactly one of --did DID or --product PK");
    if (ov != NULL && strcmp(ov, "40") != 0 && strcmp(ov, "41") != 0)
        return ctl__fail(CTL_USAGE,
                         "--ota-version must be 41 (0x0211, default) or 40 (0x020E), "
                         "not \"%s\"",
                         ov);
    if (ov != NULL) ota_version = ov[1] == '0' ? 40 : 41;
    rc = fw_type(a, &type);
    if (rc != CTL_OK) return rc;
    body = cJSON_CreateObject();
    if (did != NULL) {
        cJSON_AddStringToObject(body, "did", did);
        if (ctl__opt(a, "type") != NULL) cJSON_AddNumberToObject(body, "type", type);
    } else {
        cJSON_AddStringToObject(body, "product_key", pk);
        cJSON_AddNumberToObject(body, "type", type);
    }
    if (ota_version == 40) cJSON_AddNumberToObject(body, "ota_version", 40);
    rc = ctl__http_json(ctl, "POST", "/admin/ota/push", body, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) {
        /* The GService says whether firmware matched; an older one does not,
         * then look at the firmware list ourselves. */
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(out, "firmware_matched");
        int matched = cJSON_IsBool(m)
                          ? cJSON_IsTrue(m)
                          : has_firmware(ctl, did, pk, ctl__opt(a, "type") || pk ? type : 0);
        if (!cJSON_IsBool(m) && out != NULL)
            cJSON_AddBoolToObject(out, "firmware_matched", matched == 1);
        if (ctl->json) {
            ctl__print_json(out);
        } else {
            char n[32];
            ctl__jtext(out, "targets", n, sizeof n);
            if (matched == 0)
                printf("no firmware matches this %s%s: the push reached %s online device(s), "
                       "which will re-check and answer 9500 (no update). Upload one with "
                       "`gizctl firmware upload`.\n",
                       did ? "device's product" : "product",
                       ctl__opt(a, "type") || pk ? (type == 2 ? " (MCU)" : " (WiFi)") : "", n);
            else
                printf("pushed (OTA v%s) to %s online device(s)\n",
                       ota_version == 40 ? "4.0" : "4.1", n);
        }
    }
    cJSON_Delete(body);
    cJSON_Delete(out);
    return rc;
}

static void firmware_list_text(const cJSON *out)
{
    const cJSON *item;
    int n = 0;

    printf("%-6s  %-32s  %-4s  %-10s  %-10s  %-32s  %s\n", "ID", "PRODUCT KEY", "TYPE", "SOFT",
           "HARD", "MD5", "SIZE");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(out, "firmware"))
    {
        char id[32], type[16], size[32];
        printf("%-6s  %-32s  %-4s  %-10s  %-10s  %-32s  %s\n",
               ctl__jtext(item, "id", id, sizeof id), ctl__jstr(item, "product_key"),
               ctl__jtext(item, "type", type, sizeof type), ctl__jstr(item, "soft_version"),
               ctl__jstr(item, "hard_version"), ctl__jstr(item, "md5"),
               ctl__jtext(item, "size", size, sizeof size));
        n++;
    }
    page_footer(out, n, "firmware(s)");
}

int ctl__cmd_firmware_list(struct ctl *ctl, const struct ctl_args *a)
{
    const char *pk = ctl__opt(a, "product");
    char path[256], enc[128];

    if (pk != NULL)
        snprintf(path, sizeof path, "/admin/firmware?product_key=%s", q(pk, enc, sizeof enc));
    else
        snprintf(path, sizeof path, "/admin/firmware");
    int rc = page_query(a, path, sizeof path);
    if (rc != CTL_OK) return rc;
    return ctl__get_print(ctl, path, CTL_AUTH_ADMIN, firmware_list_text);
}

/* device disable|enable|kick DID: POST /admin/devices/<DID>/<verb>. */
int ctl__cmd_device_control(struct ctl *ctl, const struct ctl_args *a)
{
    const char *verb = a->cmd->verb;
    char path[256], enc[128];
    cJSON *out = NULL;
    int rc;

    snprintf(path, sizeof path, "/admin/devices/%s/%s", q(a->pos[0], enc, sizeof enc), verb);
    rc = ctl__http_json(ctl, "POST", path, NULL, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) {
        if (ctl->json) {
            ctl__print_json(out);
        } else {
            bool changed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "changed"));
            if (strcmp(verb, "kick") == 0)
                printf("device %s: %s\n", a->pos[0],
                       changed ? "session kicked" : "kick sent (it was not online)");
            else
                printf("device %s %s%s\n", a->pos[0],
                       strcmp(verb, "disable") == 0 ? "disabled" : "enabled",
                       changed ? "" : " (it already was)");
        }
    }
    cJSON_Delete(out);
    return rc;
}

int ctl__cmd_device_delete(struct ctl *ctl, const struct ctl_args *a)
{
    char path[256], enc[128], n[32];
    cJSON *out = NULL;
    int rc;

    snprintf(path, sizeof path, "/admin/devices/%s", q(a->pos[0], enc, sizeof enc));
    rc = ctl__http_json(ctl, "DELETE", path, NULL, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) {
        if (ctl->json)
            ctl__print_json(out);
        else
            printf("device %s deleted (%s binding(s) removed)\n", a->pos[0],
                   ctl__jtext(out, "bindings_removed", n, sizeof n));
    }
    cJSON_Delete(out);
    return rc;
}

/* Checks a firmware id and writes /admin/firmware/<id> into path. */
static int firmware_path(const struct ctl_args *a, char *path, size_t cap)
{
    uint64_t id;
    if (giz_parse_uint(a->pos[0], 10, 1, INT64_MAX, &id) != GIZ_OK)
        return ctl__fail(CTL_USAGE, "a firmware id is a number (see `gizctl firmware list`)");
    snprintf(path, cap, "/admin/firmware/%" PRIu64, id);
    return CTL_OK;
}

int ctl__cmd_firmware_show(struct ctl *ctl, const struct ctl_args *a)
{
    char path[64];
    int rc = firmware_path(a, path, sizeof path);
    if (rc != CTL_OK) return rc;
    return ctl__get_print(ctl, path, CTL_AUTH_ADMIN, device_text);
}

int ctl__cmd_firmware_delete(struct ctl *ctl, const struct ctl_args *a)
{
    char path[64], sv[64];
    cJSON *out = NULL;
    int rc = firmware_path(a, path, sizeof path);
    if (rc != CTL_OK) return rc;
    rc = ctl__http_json(ctl, "DELETE", path, NULL, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) {
        if (ctl->json)
            ctl__print_json(out);
        else
            printf("firmware %s (%s) deleted%s\n", a->pos[0],
                   ctl__jtext(out, "soft_version", sv, sizeof sv),
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "file_removed"))
                       ? ", hosted file removed"
                       : "");
    }
    cJSON_Delete(out);
    return rc;
}

static void print_log(const struct ctl *ctl, const cJSON *rec)
{
    static const char *const names[] = {"?", "error", "warn", "info"};
    char ts[64], lvl[16];
    const cJSON *l;

    if (ctl->json) {
        ctl__print_json(rec);
        return;
    }
    l = cJSON_GetObjectItemCaseSensitive(rec, "level");
    if (cJSON_IsNumber(l) && l->valueint >= 1 && l->valueint <= 3)
        snprintf(lvl, sizeof lvl, "%s", names[l->valueint]);
    else
        ctl__jtext(rec, "level", lvl, sizeof lvl);
    if (cJSON_GetObjectItemCaseSensitive(rec, "ts"))
        when(rec, "ts", ts, sizeof ts);
    else if (cJSON_GetObjectItemCaseSensitive(rec, "received_at"))
        when(rec, "received_at", ts, sizeof ts);
    else
        when(rec, "created_at", ts, sizeof ts);
    printf("%s %-5s [%s] %s: %s\n", ts, lvl, ctl__jstr(rec, "tags"), ctl__jstr(rec, "source"),
           ctl__jstr(rec, "content"));
}

/* Sort key of a log record: its id (the store's order), else its time. */
static double log_key(const cJSON *rec)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "id");
    if (!cJSON_IsNumber(v)) v = cJSON_GetObjectItemCaseSensitive(rec, "ts");
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int cmp_log(const void *a, const void *b)
{
    double x = log_key(*(const cJSON *const *)a), y = log_key(*(const cJSON *const *)b);
    return (x > y) - (x < y);
}

int ctl__cmd_logs_tail(struct ctl *ctl, const struct ctl_args *a)
{
    char path[320], enc[128];
    const char *nstr = ctl__opt(a, "lines"), *istr = ctl__opt(a, "interval");
    const char *cstr = ctl__opt(a, "count");
    uint64_t lines = 100, want = 0;
    double interval = 2.0, last_key = -1;
    bool follow = ctl__flag(a, "follow");
    unsigned long printed_new = 0;
    int rc = CTL_OK;

    if (nstr != NULL && giz_parse_uint(nstr, 0, 1, 1000, &lines) != GIZ_OK)
        return ctl__fail(CTL_USAGE, "--lines wants a number 1..1000");
    if (istr != NULL && util__parse_double(istr, 0.05, 3600, &interval) != 0)
        return ctl__fail(CTL_USAGE, "--interval wants seconds");
    if (cstr != NULL && giz_parse_uint(cstr, 0, 1, 100000000, &want) != GIZ_OK)
        return ctl__fail(CTL_USAGE, "--count wants a number");
    for (bool first = true;; first = false) {
        cJSON *out = NULL;
        const cJSON **recs = NULL;
        const cJSON *item;
        int n = 0;

        /* The GService answers newest first, at most `limit` records. */
        snprintf(path, sizeof path, "/admin/devices/%s/logs?limit=%" PRIu64,
                 q(a->pos[0], enc, sizeof enc), first ? lines : (uint64_t)1000);
        rc = ctl__http_json(ctl, "GET", path, NULL, CTL_AUTH_ADMIN, &out);
        if (rc != CTL_OK) return rc;
        recs = calloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(out, "logs")) + 1,
                      sizeof *recs);
        if (recs == NULL) {
            cJSON_Delete(out);
            return ctl__fail(CTL_LOCAL, "out of memory");
        }
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(out, "logs")) recs[n++] = item;
        qsort(recs, (size_t)n, sizeof *recs, cmp_log);
        if (first && ctl->json && !follow) {
            cJSON *arr = cJSON_CreateArray(), *o = cJSON_CreateObject();
            for (int i = 0; i < n; i++)
                cJSON_AddItemReferenceToArray(arr, (cJSON *)(uintptr_t)recs[i]);
            cJSON_AddStringToObject(o, "did", a->pos[0]);
            cJSON_AddItemToObject(o, "logs", arr);
            ctl__print_json(o);
            cJSON_Delete(o);
        } else {
            for (int i = 0; i < n; i++) {
                if (log_key(recs[i]) <= last_key) continue;
                print_log(ctl, recs[i]);
                if (!first) printed_new++;
                if (want > 0 && printed_new >= want) break;
            }
        }
        if (n > 0 && log_key(recs[n - 1]) > last_key) last_key = log_key(recs[n - 1]);
        fflush(stdout);
        free(recs);
        cJSON_Delete(out);
        if (!follow || (want > 0 && printed_new >= want)) break;
        {
            struct timespec ts = {(time_t)interval,
                                  (long)((interval - (double)(time_t)interval) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    return CTL_OK;
}
