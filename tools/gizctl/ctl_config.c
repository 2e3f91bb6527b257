/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl settings: resolves the GService URL, admin token, MQTT address and
 * timeout from flags, then the environment, then the config file
 * (key=value lines, default ~/.config/gizctl/config), and keeps the app login
 * state (username, uid, token, MQTT client id) in that file, mode 0600.
 * Also reads passwords without putting them on the command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

/* Keys of the config file we understand; unknown keys are kept on save. */
static void set_field(char *dst, size_t cap, const char *v)
{
    (void)util__copy(dst, cap, v);
}

static void default_config_path(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/')
        snprintf(out, cap, "%s/gizctl/config", xdg);
    else
        snprintf(out, cap, "%s/.config/gizctl/config", home ? home : ".");
}

/* The raw key=value pairs of the config file. */
struct kv {
    char key[32];
    char val[512];
};
#define MAX_KV 32

static int read_kv(const char *path, struct kv *kv, int *n)
{
    FILE *f = fopen(path, "r");
    char line[700];

    *n = 0;
    if (f == NULL) return errno == ENOENT ? 0 : -1;
    while (fgets(line, sizeof line, f) != NULL && *n < MAX_KV) {
        char *eq, *end;
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        eq = strchr(line, '=');
        if (eq == NULL) continue;
        *eq = '\0';
        end = eq;
        while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        eq++;
        while (*eq == ' ' || *eq == '\t')
            eq++;
        set_field(kv[*n].key, sizeof kv[*n].key, line);
        set_field(kv[*n].val, sizeof kv[*n].val, eq);
        (*n)++;
    }
    fclose(f);
    return 0;
}

static const char *kv_get(const struct kv *kv, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0) return kv[i].val;
    return NULL;
}

static const char *first_of(const char *a, const char *b, const char *c)
{
    if (a != NULL && a[0] != '\0') return a;
    if (b != NULL && b[0] != '\0') return b;
    if (c != NULL && c[0] != '\0') return c;
    return NULL;
}

/* Splits ctl->http_url (http:// or https://, default ports 80 / 443). */
static int parse_base_url(struct ctl *ctl)
{
    const char *url = ctl->http_url, *auth, *end;
    char tmp[sizeof ctl->http_url + 8];

    ctl->http_tls = strncmp(url, "https://", 8) == 0;
    if (!ctl->http_tls)
        return util__parse_http_url(url, ctl->http_host, sizeof ctl->http_host, &ctl->http_port,
                                    ctl->http_prefix, sizeof ctl->http_prefix);
    snprintf(tmp, sizeof tmp, "http://%s", url + 8);
    if (util__parse_http_url(tmp, ctl->http_host, sizeof ctl->http_host, &ctl->http_port,
                             ctl->http_prefix, sizeof ctl->http_prefix) != 0)
        return -1;
    auth = url + 8;
    end = strchr(auth, '/');
    if (memchr(auth, ':', end ? (size_t)(end - auth) : strlen(auth)) == NULL) ctl->http_port = 443;
    return 0;
}

int ctl__config_resolve(struct ctl *ctl, const char *flag_http, const char *flag_mqtt_host,
                        const char *flag_mqtt_port, const char *flag_admin_token,
                        const char *flag_config, const char *flag_timeout, const char *flag_cacert)
{
    struct kv kv[MAX_KV];
    int n = 0;
    const char *v;
    char env_url[300] = "";
    uint64_t num;

    v = first_of(flag_config, getenv("GIZCTL_CONFIG"), NULL);
    if (v != NULL)
        set_field(ctl->config_path, sizeof ctl->config_path, v);
    else
        default_config_path(ctl->config_path, sizeof ctl->config_path);
    if (read_kv(ctl->config_path, kv, &n) != 0)
        return ctl__fail(CTL_LOCAL, "cannot read config file %s: %s", ctl->config_path,
                         strerror(errno));

    /* GService URL: --http > GIZ_HTTP_URL > GIZ_HOST/GIZ_HTTP_PORT > file > default */
    if (getenv("GIZ_HTTP_URL") == NULL && (getenv("GIZ_HTTP_PORT") || getenv("GIZ_HOST"))) {
        const char *h = getenv("GIZ_HOST");
        const char *p = getenv("GIZ_HTTP_PORT");
        snprintf(env_url, sizeof env_url, "http://%s:%s", h && h[0] ? h : "127.0.0.1",
                 p && p[0] ? p : "8080");
    }
    v = first_of(flag_http, getenv("GIZ_HTTP_URL"), env_url);
    if (v == NULL) v = first_of(kv_get(kv, n, "http_url"), "http://127.0.0.1:8080", NULL);
    set_field(ctl->http_url, sizeof ctl->http_url, v);
    if (parse_base_url(ctl) != 0)
        return ctl__fail(CTL_USAGE,
                         "GService URL \"%s\" is not of the form http(s)://HOST[:PORT]; fix "
                         "--http, GIZ_HTTP_URL or http_url in %s",
                         ctl->http_url, ctl->config_path);
    v = first_of(flag_cacert, getenv("GIZ_CACERT"), kv_get(kv, n, "cacert"));
    set_field(ctl->cacert, sizeof ctl->cacert, v ? v : "");
    if (ctl->cacert[0] != '\0' && access(ctl->cacert, R_OK) != 0)
        return ctl__fail(CTL_USAGE, "CA file %s is not readable (--cacert / GIZ_CACERT)",
                         ctl->cacert);

    v = first_of(flag_admin_token, getenv("GIZ_ADMIN_TOKEN"), kv_get(kv, n, "admin_token"));
    set_field(ctl->admin_token, sizeof ctl->admin_token, v ? v : "");

    v = first_of(flag_mqtt_host, getenv("GIZ_MQTT_HOST"), getenv("GIZ_HOST"));
    if (v == NULL) v = kv_get(kv, n, "mqtt_host");
    set_field(ctl->mqtt_host, sizeof ctl->mqtt_host, v ? v : "");
    v = first_of(flag_mqtt_port, getenv("GIZ_MQTT_PORT"), kv_get(kv, n, "mqtt_port"));
    if (v != NULL) {
        if (giz_parse_uint(v, 0, 1, 65535, &num) != GIZ_OK)
            return ctl__fail(CTL_USAGE, "MQTT port \"%s\" is not a number in 1..65535", v);
        ctl->mqtt_port = (uint16_t)num;
    }
    v = first_of(flag_timeout, getenv("GIZCTL_TIMEOUT"), kv_get(kv, n, "timeout"));
    ctl->timeout_ms = 10000;
    if (v != NULL) {
        double secs;
        if (util__parse_double(v, 0.05, 86400, &secs) != 0)
            return ctl__fail(CTL_USAGE, "timeout \"%s\" is not a number of seconds", v);
        ctl->timeout_ms = (int)(secs * 1000);
    }

    /* Login state only comes from the file. */
    v = kv_get(kv, n, "username");
    set_field(ctl->username, sizeof ctl->username, v ? v : "");
    v = kv_get(kv, n, "uid");
    set_field(ctl->uid, sizeof ctl->uid, v ? v : "");
    v = kv_get(kv, n, "token");
    set_field(ctl->token, sizeof ctl->token, v ? v : "");
    v = kv_get(kv, n, "mqtt_client_id");
    set_field(ctl->mqtt_client_id, sizeof ctl->mqtt_client_id, v ? v : "");
    v = kv_get(kv, n, "expire_at");
    if (v != NULL && giz_parse_uint(v, 0, 0, 0xffffffffffUL, &num) == GIZ_OK)
        ctl->expire_at = (long long)num;
    return CTL_OK;
}

/* Creates the parent directory of path (one level, mode 0700) if missing. */
static void make_parent(const char *path)
{
    char dir[1024];
    char *slash;
    set_field(dir, sizeof dir, path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) return;
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno == ENOENT) {
        char *up = strrchr(dir, '/');
        if (up != NULL && up != dir) {
            *up = '\0';
            (void)mkdir(dir, 0700);
            *up = '/';
            (void)mkdir(dir, 0700);
        }
    }
}

int ctl__config_save(const struct ctl *ctl)
{
    static const char *const ours[] = {"username", "uid", "token", "mqtt_client_id", "expire_at"};
    struct kv kv[MAX_KV];
    int n = 0, fd = -1, rc = CTL_LOCAL;
    char tmp[1100];
    FILE *f = NULL;

    if (read_kv(ctl->config_path, kv, &n) != 0) n = 0;
    make_parent(ctl->config_path);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", ctl->config_path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) goto cleanup;
    fd = -1;
    fprintf(f, "# gizctl settings and app login state (written by `gizctl login`).\n");
    for (int i = 0; i < n; i++) {
        bool skip = false;
        for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++)
            if (strcmp(kv[i].key, ours[k]) == 0) skip = true;
        if (!skip) fprintf(f, "%s=%s\n", kv[i].key, kv[i].val);
    }
    if (ctl->token[0] != '\0') {
        fprintf(f, "username=%s\nuid=%s\ntoken=%s\nmqtt_client_id=%s\nexpire_at=%lld\n",
                ctl->username, ctl->uid, ctl->token, ctl->mqtt_client_id, ctl->expire_at);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) goto cleanup;
    if (fclose(f) != 0) {
        f = NULL;
        goto cleanup;
    }
    f = NULL;
    if (rename(tmp, ctl->config_path) != 0) goto cleanup;
    rc = CTL_OK;
cleanup:
    if (f != NULL) fclose(f);
    if (fd >= 0) close(fd);
    if (rc != CTL_OK) {
        (void)unlink(tmp);
        ctl__fail(CTL_LOCAL, "cannot write config file %s: %s (use --config FILE or GIZCTL_CONFIG)",
                  ctl->config_path, strerror(errno));
    }
    return rc;
}

int ctl__read_password(const struct ctl_args *a, const char *prompt, char *out, size_t cap)
{
    const char *v;
    size_t len;

    if (ctl__flag(a, "password-stdin")) {
        if (fgets(out, (int)cap, stdin) == NULL)
            return ctl__fail(CTL_USAGE, "--password-stdin: nothing on stdin");
    } else if ((v = getenv("GIZCTL_PASSWORD")) != NULL && v[0] != '\0') {
        set_field(out, cap, v);
    } else if ((v = ctl__opt(a, "password")) != NULL) {
        set_field(out, cap, v);
    } else if (isatty(STDIN_FILENO)) {
        struct termios old, quiet;
        bool restored = false;
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
            restored = true;
        }
        v = fgets(out, (int)cap, stdin);
        if (restored) (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
        if (v == NULL) return ctl__fail(CTL_USAGE, "no password given");
    } else {
        return ctl__fail(CTL_USAGE, "no password: use --password-stdin, GIZCTL_PASSWORD or "
                                    "--password");
    }
    len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    if (len == 0) return ctl__fail(CTL_USAGE, "empty password");
    return CTL_OK;
}

int ctl__cmd_config(struct ctl *ctl, const struct ctl_args *a)
{
    (void)a;
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "config_file", ctl->config_path);
        cJSON_AddStringToObject(o, "http_url", ctl->http_url);
        cJSON_AddStringToObject(o, "cacert", ctl->cacert);
        cJSON_AddBoolToObject(o, "mqtts", ctl->mqtts);
        cJSON_AddBoolToObject(o, "admin_token_set", ctl->admin_token[0] != '\0');
        cJSON_AddStringToObject(o, "mqtt_host", ctl->mqtt_host);
        cJSON_AddNumberToObject(o, "mqtt_port", ctl->mqtt_port);
        cJSON_AddNumberToObject(o, "timeout_s", ctl->timeout_ms / 1000.0);
        cJSON_AddStringToObject(o, "username", ctl->username);
        cJSON_AddStringToObject(o, "uid", ctl->uid);
        cJSON_AddBoolToObject(o, "logged_in", ctl->token[0] != '\0');
        cJSON_AddStringToObject(o, "mqtt_client_id", ctl->mqtt_client_id);
        ctl__print_json(o);
        cJSON_Delete(o);
        return CTL_OK;
    }
    printf("config file     %s\n", ctl->config_path);
    printf("GService        %s\n", ctl->http_url);
    if (ctl->cacert[0]) printf("CA file         %s\n", ctl->cacert);
    printf("admin token     %s\n", ctl->admin_token[0] ? "(set)" : "(not set)");
    if (ctl->mqtt_port)
        printf("MQTT            %s:%u\n",
               ctl->mqtt_host[0] ? ctl->mqtt_host : "(host from bindings)",
               (unsigned)ctl->mqtt_port);
    else
        printf("MQTT            %s (port from bindings)\n",
               ctl->mqtt_host[0] ? ctl->mqtt_host : "(host from bindings)");
    printf("timeout         %.1f s\n", ctl->timeout_ms / 1000.0);
    if (ctl->token[0])
        printf("logged in as    %s (uid %s, MQTT client id %s)\n", ctl->username, ctl->uid,
               ctl->mqtt_client_id);
    else
        printf("logged in as    nobody (gizctl login USERNAME)\n");
    return CTL_OK;
}
