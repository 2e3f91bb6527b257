/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The store pool of giz-gservice: giz_store handles are not thread-safe, so
 * every request borrows one (gs_store_acquire / gs_store_release). Every
 * connection the pool or its checkpoint thread opens gets the passcode key
 * loaded once at start-up (gs_store_key_load), so registrations store the
 * keyed verifier the broker checks. Pool connections never checkpoint the WAL
 * inside a commit: a WAL hook wakes the checkpoint thread, which runs a
 * passive checkpoint on its own connection (see GS_CKPT_FRAMES).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "giz/crypto.h"
#include "giz/log.h"
#include "gservice.h"

/* WAL hook of pool connections (any request thread, after a commit). */
static void ckpt_wake(void *ud, int wal_frames)
{
    struct gs_store_pool *pool = ud;
    if (wal_frames < GS_CKPT_FRAMES) return;
    pthread_mutex_lock(&pool->ckpt_mu);
    if (!pool->ckpt_due) {
        pool->ckpt_due = true;
        pthread_cond_signal(&pool->ckpt_cv);
    }
    pthread_mutex_unlock(&pool->ckpt_mu);
}

static void *ckpt_main(void *arg)
{
    struct gs_store_pool *pool = arg;
    struct giz_store *st = NULL;
    struct giz_error err = {0};
    int rc = giz_store_open(pool->path, &st, &err);

    if (rc != GIZ_OK)
        giz_log(GIZ_LOG_ERR, "checkpoint thread: store open %s: %s (%s)", pool->shown,
                giz_strerror(rc), err.text);
    else if (pool->pkey_set)
        giz_store_set_passcode_key(st, &pool->pkey);
    pthread_mutex_lock(&pool->ckpt_mu);
    for (;;) {
        while (!pool->ckpt_due && !pool->ckpt_stop)
            pthread_cond_wait(&pool->ckpt_cv, &pool->ckpt_mu);
        if (pool->ckpt_stop) break;
        pool->ckpt_due = false;
        pthread_mutex_unlock(&pool->ckpt_mu);
        if (st != NULL) giz_store_checkpoint(st, NULL, NULL);
        pthread_mutex_lock(&pool->ckpt_mu);
    }
    pthread_mutex_unlock(&pool->ckpt_mu);
    giz_store_close(st); /* the last connection to close checkpoints what is left */
    return NULL;
}

int gs_store_checkpointer_start(struct gs_store_pool *pool)
{
    if (pthread_mutex_init(&pool->ckpt_mu, NULL) != 0) goto fail;
    if (pthread_cond_init(&pool->ckpt_cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->ckpt_mu);
        goto fail;
    }
    pool->ckpt_due = pool->ckpt_stop = false;
    if (pthread_create(&pool->ckpt_thread, NULL, ckpt_main, pool) != 0) {
        pthread_cond_destroy(&pool->ckpt_cv);
        pthread_mutex_destroy(&pool->ckpt_mu);
        goto fail;
    }
    pool->ckpt_started = true;
    pthread_mutex_lock(&pool->mu); /* connections opened before */
    for (unsigned i = 0; i < pool->n_idle; i++)
        giz_store_set_wal_cb(pool->idle[i], ckpt_wake, pool);
    pthread_mutex_unlock(&pool->mu);
    return 0;
fail:
    giz_log(GIZ_LOG_ERR, "cannot start the checkpoint thread; commits will checkpoint");
    return -1;
}

static void ckpt_stop(struct gs_store_pool *pool)
{
    if (!pool->ckpt_started) return;
    pthread_mutex_lock(&pool->ckpt_mu);
    pool->ckpt_stop = true;
    pthread_cond_signal(&pool->ckpt_cv);
    pthread_mutex_unlock(&pool->ckpt_mu);
    pthread_join(pool->ckpt_thread, NULL);
    pthread_cond_destroy(&pool->ckpt_cv);
    pthread_mutex_destroy(&pool->ckpt_mu);
    pool->ckpt_started = false;
}

struct giz_store *gs_store_acquire(struct gs_store_pool *pool)
{
    struct giz_store *st = NULL;
    pthread_mutex_lock(&pool->mu);
    if (pool->n_idle > 0) st = pool->idle[--pool->n_idle];
    pthread_mutex_unlock(&pool->mu);
    if (st != NULL) return st;
    struct giz_error err = {0};
    int rc = giz_store_open(pool->path, &st, &err);
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "store open %s: %s (%s)", pool->shown, giz_strerror(rc), err.text);
        return NULL;
    }
    if (pool->pkey_set) giz_store_set_passcode_key(st, &pool->pkey);
    if (pool->ckpt_started) giz_store_set_wal_cb(st, ckpt_wake, pool);
    return st;
}

int gs_store_key_load(struct gs_store_pool *pool, const char *path, struct giz_store *st)
{
    char def[GIZ_PATH_SIZE], why[512] = "";
    struct stat sb;
    bool group_read;

    if (path == NULL || path[0] == '\0') {
        if (giz_store_passcode_key_default(pool->path, def, sizeof def) != GIZ_OK) {
            giz_log(GIZ_LOG_ERR,
                    "no default passcode key file for database %s: set "
                    "GIZ_PASSCODE_KEY; not starting",
                    pool->shown);
            return -1;
        }
        path = def;
    }
    /* the same rule as the broker's giz_store_passcode_key_load: a new key
     * file is group-readable only if the database is */
    group_read = stat(pool->path, &sb) == 0 && (sb.st_mode & S_IRGRP);
    if (giz_passcode_key_load(path, group_read, &pool->pkey, why, sizeof why) != GIZ_OK) {
        explicit_bzero(&pool->pkey, sizeof pool->pkey);
        giz_log(GIZ_LOG_ERR, "%s; not starting (GIZ_PASSCODE_KEY)", why);
        return -1;
    }
    pool->pkey_set = true;
    if (st != NULL) giz_store_set_passcode_key(st, &pool->pkey);
    giz_log(GIZ_LOG_INFO, "passcode key %s (id %s)", path, pool->pkey.id);
    return 0;
}

void gs_store_release(struct gs_store_pool *pool, struct giz_store *st)
{
    if (st == NULL) return;
    pthread_mutex_lock(&pool->mu);
    if (pool->n_idle < GS_POOL_MAX) {
        pool->idle[pool->n_idle++] = st;
        st = NULL;
    }
    pthread_mutex_unlock(&pool->mu);
    giz_store_close(st);
}

void gs_store_pool_close(struct gs_store_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    for (unsigned i = 0; i < pool->n_idle; i++)
        giz_store_close(pool->idle[i]);
    pool->n_idle = 0;
    pthread_mutex_unlock(&pool->mu);
    ckpt_stop(pool);
    explicit_bzero(&pool->pkey, sizeof pool->pkey);
    pool->pkey_set = false;
}
