/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl app-account commands on the app API: create a user, log in (saving
 * uid, token and MQTT client id in the config file), log out, bind, unbind
 * and list bound devices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

int ctl__need_login(const struct ctl *ctl)
{
    if (ctl->token[0] == '\0' || ctl->uid[0] == '\0')
        return ctl__fail(CTL_USAGE, "not logged in (config %s): run `gizctl login USERNAME` first",
                         ctl->config_path);
    return CTL_OK;
}

int ctl__cmd_user_create(struct ctl *ctl, const struct ctl_args *a)
{
    char password[256];
    cJSON *body = NULL, *out = NULL;
    int rc;

    rc = ctl__read_password(a, "New password: ", password, sizeof password);
    if (rc != CTL_OK) return rc;
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "username", a->pos[0]);
    cJSON_AddStringToObject(body, "password", password);
    rc = ctl__http_json(ctl, "POST", "/app/users", body, CTL_AUTH_NONE, &out);
    if (rc == CTL_OK) {
        if (ctl->json) {
            ctl__print_json(out);
        } else {
            char uid[128];
            printf("created user %s (uid %s)\n", a->pos[0],
                   ctl__jtext(out, "uid", uid, sizeof uid));
        }
    }
    memset(password, 0, sizeof password);
    cJSON_Delete(body); /* holds the password; freed right away */
    cJSON_Delete(out);
    return rc;
}

int ctl__cmd_login(struct ctl *ctl, const struct ctl_args *a)
{
    char password[256], uid[128];
    cJSON *body = NULL, *out = NULL;
    const cJSON *exp;
    int rc;

    rc = ctl__read_password(a, "Password: ", password, sizeof password);
    if (rc != CTL_OK) return rc;
    if (ctl__opt(a, "app-id") != NULL)
        (void)util__copy(ctl->app_id, sizeof ctl->app_id, ctl__opt(a, "app-id"));
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "username", a->pos[0]);
    cJSON_AddStringToObject(body, "password", password);
    memset(password, 0, sizeof password);
    rc = ctl__http_json(ctl, "POST", "/app/login", body, CTL_AUTH_NONE, &out);
    cJSON_Delete(body);
    if (rc != CTL_OK) goto cleanup;
    if (ctl__jstr(out, "token")[0] == '\0' || ctl__jstr(out, "mqtt_client_id")[0] == '\0') {
        rc = ctl__fail(CTL_SERVER, "login answer lacks token or mqtt_client_id");
        goto cleanup;
    }
    snprintf(ctl->username, sizeof ctl->username, "%s", a->pos[0]);
    snprintf(ctl->uid, sizeof ctl->uid, "%s", ctl__jtext(out, "uid", uid, sizeof uid));
    snprintf(ctl->token, sizeof ctl->token, "%s", ctl__jstr(out, "token"));
    snprintf(ctl->mqtt_client_id, sizeof ctl->mqtt_client_id, "%s",
             ctl__jstr(out, "mqtt_client_id"));
    exp = cJSON_GetObjectItemCaseSensitive(out, "expire_at");
    ctl->expire_at = cJSON_IsNumber(exp) ? (long long)exp->valuedouble : 0;
    rc = ctl__config_save(ctl);
    if (rc != CTL_OK) goto cleanup;
    if (ctl->json) {
        /* never print the token */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "username", ctl->username);
        cJSON_AddStringToObject(o, "uid", ctl->uid);
        cJSON_AddStringToObject(o, "mqtt_client_id", ctl->mqtt_client_id);
        cJSON_AddNumberToObject(o, "expire_at", (double)ctl->expire_at);
        cJSON_AddStringToObject(o, "config_file", ctl->config_path);
        ctl__print_json(o);
        cJSON_Delete(o);
    } else {
        printf("logged in as %s (uid %s, MQTT client id %s); saved in %s\n", ctl->username,
               ctl->uid, ctl->mqtt_client_id, ctl->config_path);
    }
cleanup:
    cJSON_Delete(out);
    return rc;
}

int ctl__cmd_logout(struct ctl *ctl, const struct ctl_args *a)
{
    (void)a;
    ctl->token[0] = '\0';
    ctl->uid[0] = '\0';
    ctl->mqtt_client_id[0] = '\0';
    if (ctl__config_save(ctl) != CTL_OK) return CTL_LOCAL;
    if (!ctl->json) printf("logged out\n");
    return CTL_OK;
}

/* Prints a {"success":[...],"failed":[...]} answer; returns CTL_REFUSED when
 * the device landed in "failed". */
static int print_outcome(const struct ctl *ctl, const cJSON *out, const char *did, const char *verb)
{
    const cJSON *item;
    bool ok = false;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(
                                 out, "success")) if (cJSON_IsString(item) &&
                                                      strcmp(item->valuestring, did) == 0) ok =
        true;
    if (ctl->json)
        ctl__print_json(out);
    else if (ok)
        printf("%s %s\n", verb, did);
    if (!ok)
        return ctl__fail(CTL_REFUSED, "the cloud did not %s %s (wrong DID or passcode?)",
                         strcmp(verb, "bound") == 0 ? "bind" : "unbind", did);
    return CTL_OK;
}

/* POST (bind, with the passcode) or DELETE (unbind, passcode NULL) one device
 * on /app/bindings and prints the outcome ("bound" / "unbound"). */
static int change_binding(struct ctl *ctl, const char *method, const char *did,
                          const char *passcode, const char *verb)
{
    cJSON *body = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(body, "devices");
    cJSON *dev = cJSON_CreateObject(), *out = NULL;
    int rc;

    cJSON_AddStringToObject(dev, "did", did);
    if (passcode != NULL) cJSON_AddStringToObject(dev, "passcode", passcode);
    cJSON_AddItemToArray(list, dev);
    rc = ctl__http_json(ctl, method, "/app/bindings", body, CTL_AUTH_USER, &out);
    if (rc == CTL_OK) rc = print_outcome(ctl, out, did, verb);
    cJSON_Delete(body);
    cJSON_Delete(out);
    return rc;
}

int ctl__cmd_bind(struct ctl *ctl, const struct ctl_args *a)
{
    return change_binding(ctl, "POST", a->pos[0], a->pos[1], "bound");
}

int ctl__cmd_unbind(struct ctl *ctl, const struct ctl_args *a)
{
    return change_binding(ctl, "DELETE", a->pos[0], NULL, "unbound");
}

static void bindings_text(const cJSON *out)
{
    const cJSON *item;

    printf("%-22s  %-32s  %-6s  %s\n", "DID", "PRODUCT KEY", "ONLINE", "MQTT");
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(out, "devices"))
    {
        char port[16];
        printf("%-22s  %-32s  %-6s  %s:%s\n", ctl__jstr(item, "did"),
               ctl__jstr(item, "product_key"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "is_online")) ? "yes" : "no",
               ctl__jstr(item, "host"), ctl__jtext(item, "port", port, sizeof port));
    }
}

int ctl__cmd_bindings(struct ctl *ctl, const struct ctl_args *a)
{
    (void)a;
    return ctl__get_print(ctl, "/app/bindings", CTL_AUTH_USER, bindings_text);
}
