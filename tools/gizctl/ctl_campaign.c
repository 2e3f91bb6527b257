/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl ota campaign ACTION [ID]: the OTA campaigns of the admin API
 * (/admin/ota/campaigns). create (targets, canary, threshold, window,
 * timeout from the options), list, show ID (counts per device state and the
 * devices), pause|resume|cancel ID, and follow ID: polls once a second and
 * redraws a progress bar (updated + failed of all devices) until the
 * campaign is completed, stopped or cancelled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static const char *const dev_states[] = {"pending",     "notified",   "checked", "offered",
                                         "downloading", "downloaded", "updated", "failed"};
#define N_STATES (sizeof dev_states / sizeof dev_states[0])

static bool is_id(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 18) return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

/* "a,b,c" into a JSON array of strings. */
static cJSON *csv_array(const char *csv)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = csv;
    while (arr != NULL && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char item[64];
        if (n > 0 && n < sizeof item) {
            memcpy(item, p, n);
            item[n] = '\0';
            cJSON_AddItemToArray(arr, cJSON_CreateString(item));
        }
        p += n;
        if (*p == ',') p++;
    }
    return arr;
}

/* Adds option `opt` as a number field `key` (false after reporting a bad value). */
static bool add_num(cJSON *body, const struct ctl_args *a, const char *opt, const char *key)
{
    const char *v = ctl__opt(a, opt);
    char *end = NULL;
    if (v == NULL) return true;
    double d = strtod(v, &end);
    if (end == v || *end != '\0') {
        ctl__fail(CTL_USAGE, "--%s wants a number, not \"%s\"", opt, v);
        return false;
    }
    cJSON_AddNumberToObject(body, key, d);
    return true;
}

static void counts_line(const cJSON *c)
{
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(c, "counts");
    for (size_t i = 0; i < N_STATES; i++) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(counts, dev_states[i]);
        printf("%s%s %d", i ? ", " : "  ", dev_states[i], cJSON_IsNumber(n) ? n->valueint : 0);
    }
    printf("\n");
}

static void campaign_head(const cJSON *c)
{
    char id[32], devices[32], canary[32], fid[32];
    const char *reason = ctl__jstr(c, "reason");
    printf("campaign %s %s%s%s%s: product %s type %s firmware %s (%s), %s device(s), canary %s\n",
           ctl__jtext(c, "id", id, sizeof id), ctl__jstr(c, "state"), reason[0] ? " (" : "", reason,
           reason[0] ? ")" : "", ctl__jstr(c, "product_key"),
           cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c, "type")) &&
                   cJSON_GetObjectItemCaseSensitive(c, "type")->valueint == 2
               ? "2"
               : "1",
           ctl__jtext(c, "firmware_id", fid, sizeof fid), ctl__jstr(c, "soft_version"),
           ctl__jtext(c, "devices", devices, sizeof devices),
           ctl__jtext(c, "canary", canary, sizeof canary));
}

static void show_text(const cJSON *c)
{
    const cJSON *d;
    campaign_head(c);
    counts_line(c);
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(c, "devices"))
    {
        const char *reason = ctl__jstr(d, "reason");
        printf("  %s %-11s %-10s%s%s\n", ctl__jstr(d, "did"), ctl__jstr(d, "state"),
               ctl__jstr(d, "version"), reason[0] ? " " : "", reason);
    }
}

static void list_text(const cJSON *out)
{
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(out, "campaigns"))
    {
        char id[32], devices[32];
        printf("%-6s %-10s %-32s %-10s %6s  %s\n", ctl__jtext(c, "id", id, sizeof id),
               ctl__jstr(c, "state"), ctl__jstr(c, "product_key"), ctl__jstr(c, "soft_version"),
               ctl__jtext(c, "devices", devices, sizeof devices), ctl__jstr(c, "name"));
        n++;
    }
    if (n == 0) printf("no campaigns\n");
}

static int create(struct ctl *ctl, const struct ctl_args *a)
{
    const char *pk = ctl__opt(a, "product"), *v;
    cJSON *body, *out = NULL;
    int rc = CTL_USAGE;
    if (pk == NULL) return ctl__fail(CTL_USAGE, "ota campaign create needs --product PK");
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "product_key", pk);
    if ((v = ctl__opt(a, "name")) != NULL) cJSON_AddStringToObject(body, "name", v);
    if ((v = ctl__opt(a, "dids")) != NULL) cJSON_AddItemToObject(body, "dids", csv_array(v));
    if ((v = ctl__opt(a, "macs")) != NULL) cJSON_AddItemToObject(body, "macs", csv_array(v));
    if ((v = ctl__opt(a, "canary-dids")) != NULL)
        cJSON_AddItemToObject(body, "canary_dids", csv_array(v));
    if ((v = ctl__opt(a, "window")) != NULL) cJSON_AddStringToObject(body, "window", v);
    if ((v = ctl__opt(a, "versions")) != NULL) {
        const char *colon = strchr(v, ':');
        char lo[64] = "";
        size_t n = colon ? (size_t)(colon - v) : strlen(v);
        if (n >= sizeof lo) n = sizeof lo - 1;
        memcpy(lo, v, n);
        lo[n] = '\0';
        if (lo[0]) cJSON_AddStringToObject(body, "version_min", lo);
        if (colon && colon[1]) cJSON_AddStringToObject(body, "version_max", colon + 1);
    }
    if (ctl__flag(a, "force")) cJSON_AddBoolToObject(body, "force", 1);
    if (add_num(body, a, "type", "type") && add_num(body, a, "firmware", "firmware_id") &&
        add_num(body, a, "percent", "percent") && add_num(body, a, "canary", "canary") &&
        add_num(body, a, "threshold", "failure_threshold") &&
        add_num(body, a, "timeout", "timeout_s") && add_num(body, a, "max-checks", "max_checks"))
        rc = ctl__http_json(ctl, "POST", "/admin/ota/campaigns", body, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) {
        if (ctl->json)
            ctl__print_json(out);
        else
            campaign_head(out);
    }
    cJSON_Delete(body);
    cJSON_Delete(out);
    return rc;
}

static bool settled(const cJSON *c)
{
    const char *s = ctl__jstr(c, "state");
    return strcmp(s, "completed") == 0 || strcmp(s, "stopped") == 0 || strcmp(s, "cancelled") == 0;
}

/* Polls once a second, redrawing a bar of done (updated + failed) devices. */
static int follow(struct ctl *ctl, const char *id)
{
    char path[96];
    bool tty = isatty(STDOUT_FILENO) != 0;
    snprintf(path, sizeof path, "/admin/ota/campaigns/%s?limit=1", id);
    for (;;) {
        cJSON *c = NULL;
        int rc = ctl__http_json(ctl, "GET", path, NULL, CTL_AUTH_ADMIN, &c);
        if (rc != CTL_OK) return rc;
        const cJSON *counts = cJSON_GetObjectItemCaseSensitive(c, "counts");
        const cJSON *up = cJSON_GetObjectItemCaseSensitive(counts, "updated");
        const cJSON *fail = cJSON_GetObjectItemCaseSensitive(counts, "failed");
        const cJSON *all = cJSON_GetObjectItemCaseSensitive(c, "devices");
        (void)all;
        double total = 0;
        for (size_t i = 0; i < N_STATES; i++) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(counts, dev_states[i]);
            if (cJSON_IsNumber(n)) total += n->valuedouble;
        }
        double u = cJSON_IsNumber(up) ? up->valuedouble : 0,
               f = cJSON_IsNumber(fail) ? fail->valuedouble : 0;
        int width = 40, fill_u = total > 0 ? (int)(width * u / total) : 0,
            fill_f = total > 0 ? (int)(width * f / total) : 0;
        bool end = settled(c);
        if (ctl->json) {
            ctl__print_json(c);
        } else {
            char bar[64];
            int k = 0;
            for (; k < fill_u && k < width; k++)
                bar[k] = '#';
            for (; k < fill_u + fill_f && k < width; k++)
                bar[k] = 'x';
            for (; k < width; k++)
                bar[k] = '.';
            bar[width] = '\0';
            printf("%s[%s] %3.0f%% updated %.0f failed %.0f of %.0f  %s%s", tty ? "\r" : "", bar,
                   total > 0 ? 100.0 * (u + f) / total : 100.0, u, f, total, ctl__jstr(c, "state"),
                   tty && !end ? "" : "\n");
            if (end) counts_line(c);
        }
        fflush(stdout);
        cJSON_Delete(c);
        if (end) return CTL_OK;
        sleep(1);
    }
}

int ctl__cmd_ota_campaign(struct ctl *ctl, const struct ctl_args *a)
{
    const char *action = a->pos[0], *id = a->npos > 1 ? a->pos[1] : NULL;
    char path[96];
    if (strcmp(action, "create") == 0) return create(ctl, a);
    if (strcmp(action, "list") == 0)
        return ctl__get_print(ctl, "/admin/ota/campaigns?limit=1000", CTL_AUTH_ADMIN, list_text);
    if (strcmp(action, "show") != 0 && strcmp(action, "follow") != 0 &&
        strcmp(action, "pause") != 0 && strcmp(action, "resume") != 0 &&
        strcmp(action, "cancel") != 0)
        return ctl__fail(CTL_USAGE,
                         "ota campaign wants create, list, show, follow, pause, resume or "
                         "cancel, not \"%s\"",
                         action);
    if (!is_id(id)) return ctl__fail(CTL_USAGE, "ota campaign %s needs a campaign ID", action);
    if (strcmp(action, "show") == 0) {
        snprintf(path, sizeof path, "/admin/ota/campaigns/%s?limit=10000", id);
        return ctl__get_print(ctl, path, CTL_AUTH_ADMIN, show_text);
    }
    if (strcmp(action, "follow") == 0) return follow(ctl, id);
    cJSON *out = NULL;
    snprintf(path, sizeof path, "/admin/ota/campaigns/%s/%s", id, action);
    int rc = ctl__http_json(ctl, "POST", path, NULL, CTL_AUTH_ADMIN, &out);
    if (rc == CTL_OK) {
        if (ctl->json)
            ctl__print_json(out);
        else
            campaign_head(out);
    }
    cJSON_Delete(out);
    return rc;
}
