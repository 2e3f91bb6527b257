/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Entry point of giz-gservice: loads the configuration, opens the store
 * once (applying migrations, refusing a newer schema) and loads the passcode
 * key (a key file open to other users refuses the start), starts the HTTP
 * daemons and waits for SIGTERM/SIGINT, then shuts down gracefully (stops
 * accepting, lets in-flight answers finish, closes the store) and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/crypto.h"
#include "giz/log.h"
#include "gservice.h"

/* Opens the store once (migrations; a newer schema refuses the start) and
 * loads the passcode key. 0, or -1 logged. */
static int store_prepare(struct gs_server *srv)
{
    snprintf(srv->pool.path, sizeof srv->pool.path, "%s", srv->cfg.db_path);
    snprintf(srv->pool.shown, sizeof srv->pool.shown, "%s", srv->cfg.db_shown);
    struct giz_store *st = gs_store_acquire(&srv->pool);
    if (st == NULL) {
        giz_log(GIZ_LOG_ERR, "cannot open the store at %s; not starting", srv->cfg.db_shown);
        return -1;
    }
    giz_log(GIZ_LOG_INFO, "store %s, schema version %d", srv->cfg.db_shown,
            giz_store_schema_version(st));
    /* fail closed: without the broker's key, registrations would write no
     * keyed verifier and the first MQTT login of every device would pay
     * PBKDF2 and a write */
    int rc = gs_store_key_load(&srv->pool, srv->cfg.passcode_key, st);
    gs_store_release(&srv->pool, st);
    return rc;
}

/* Keeps only a keyed digest of the admin token (compared in constant time)
 * and wipes the token itself. 0, or -1 logged. */
static int admin_token_prepare(struct gs_server *srv)
{
    if (giz_random_bytes(srv->token_key, sizeof srv->token_key) != GIZ_OK ||
        giz_token_digest(srv->token_key, sizeof srv->token_key, srv->cfg.admin_token,
                         srv->admin_token_digest, sizeof srv->admin_token_digest) != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "cannot prepare the admin token check (crypto error)");
        return -1;
    }
    if (strlen(srv->cfg.admin_token) < 16)
        giz_log(GIZ_LOG_WARN, "GIZ_ADMIN_TOKEN is shorter than 16 characters");
    explicit_bzero(srv->cfg.admin_token, sizeof srv->cfg.admin_token);
    return 0;
}

int main(int argc, char **argv)
{
    int exit_code = 1;
    struct gs_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        fputs("giz-gservice: out of memory\n", stderr);
        return 1;
    }
    int rc = gs_config_load(&srv->cfg, argc, argv);
    if (rc != 0) {
        exit_code = rc > 0 ? 0 : 2;
        goto done;
    }
    giz_log_init("gservice", (enum giz_log_lvl)srv->cfg.log_level);
    gs_config_warn(&srv->cfg);

    /* Signals are taken synchronously by this thread; the MHD threads
     * started below inherit the blocked mask. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (pthread_mutex_init(&srv->pool.mu, NULL) != 0) goto done;
    if (store_prepare(srv) != 0 || admin_token_prepare(srv) != 0) goto done_mutex;
    srv->metrics.started_at = gs_unix_now();
    if (gs_guard_init(srv) != 0) {
        giz_log(GIZ_LOG_ERR, "cannot initialise the connection guard");
        goto done_mutex;
    }

    if (gs_http_start(srv) != 0) {
        gs_http_stop(srv);
        goto done_mutex;
    }
    giz_log(GIZ_LOG_INFO, "gservice ready: m2m %s:%u (tls %u), downloads at %s", srv->cfg.m2m_host,
            srv->cfg.m2m_port, srv->cfg.m2m_tls_port, srv->cfg.public_url);

    int sig = 0;
    while (sigwait(&stop_set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    giz_log(GIZ_LOG_INFO, "signal %d: shutting down", sig);
    gs_http_stop(srv);
    giz_log(GIZ_LOG_INFO, "stopped");
    exit_code = 0;
done_mutex:
    gs_http_stop(srv);
    pthread_mutex_destroy(&srv->pool.mu);
done:
    explicit_bzero(srv->cfg.admin_token, sizeof srv->cfg.admin_token);
    free(srv);
    return exit_code;
}
