/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Allocation-failure loop for the store. A counting allocator installed
 * with SQLITE_CONFIG_MALLOC fails SQLite's Nth allocation; for N = 1, 2, ...
 * a run performs open + product create + register + bind + log insert +
 * outbox fetch + unregister + close, until a run completes without reaching
 * N. Every run must either succeed or return a proper error code, must give
 * back every byte SQLite allocated, and must leave a database that opens
 * cleanly (allocator disarmed), passes PRAGMA integrity_check, and has no
 * half-written operation (each binding/disable has its outbox event).
 * Two phases: opening a brand-new file (migrations under failure), and the
 * operations on a copy of a prepared database.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "giz/log.h"
#include "giz/store.h"
#include "test.h"

#define MAX_RUNS 100000

static sqlite3_mem_methods real_mem;
static long fail_at;  /* 0 = disarmed */
static long alloc_no; /* allocations seen since arming */
static int injected;  /* a failure was injected in this run */
static long live;     /* outstanding SQLite allocations */

static void *count_malloc(int n)
{
    void *p;
    if (fail_at > 0 && ++alloc_no == fail_at) {
        injected = 1;
        return NULL;
    }
    p = real_mem.xMalloc(n);
    if (p) live++;
    return p;
}

static void count_free(void *p)
{
    if (p) live--;
    real_mem.xFree(p);
}

static void *count_realloc(void *p, int n)
{
    void *q;
    if (fail_at > 0 && ++alloc_no == fail_at) {
        injected = 1;
        return NULL;
    }
    q = real_mem.xRealloc(p, n);
    if (q && !p) live++;
    return q;
}

static int count_size(void *p)
{
    return real_mem.xSize(p);
}
static int count_roundup(int n)
{
    return real_mem.xRoundup(n);
}
static int count_init(void *ud)
{
    return real_mem.xInit(ud);
}
static void count_shutdown(void *ud)
{
    real_mem.xShutdown(ud);
}

static const sqlite3_mem_methods count_mem = {count_malloc,  count_free, count_realloc,  count_size,
                                              count_roundup, count_init, count_shutdown, NULL};

static int log_lines;
static void quiet_sink(enum giz_log_lvl lvl, const char *line, void *ud)
{
    (void)lvl;
    (void)line;
    (void)ud;
    log_lines++;
}

static char dir[256], tmpl_path[300], run_path[300];
static char tmpl_product[GIZ_PK_SIZE], tmpl_uid[GIZ_UID_SIZE];

static void remove_db(const char *path)
{
    char p[340];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static int copy_file(const char *from, const char *to)
{
    char buf[8192];
    size_t n;
    int ok = 1;
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) ok = 0;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) ok = 0;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = 0;
    return ok;
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int valid_code(int rc)
{
    return rc == GIZ_ERR_NOMEM || rc == GIZ_ERR_DB;
}

/* The operation sequence; returns GIZ_OK or the first error. */
static int run_ops(const char *path, int *step_out)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    struct giz_product p;
    struct giz_device d;
    bool created;
    int rc, step = 0;

    rc = giz_store_open(path, &s, &err);
    if (rc) {
        if (s != NULL) TEST_FAIL_("%s", "store handle returned on failure");
        if (err.code != rc) TEST_FAIL_("err.code %d != rc %d", err.code, rc);
        goto cleanup;
    }
    step++;
    if ((rc = giz_store_product_create(s, "alloc", &p)) != GIZ_OK) goto cleanup;
    step++;
    if ((rc = giz_store_device_register(s, tmpl_product, "a0a1a2a3a4a5", "ALLOCPASS", &d,
                                        &created)) != GIZ_OK)
        goto cleanup;
    step++;
    if ((rc = giz_store_binding_add(s, tmpl_uid, d.did, "ALLOCPASS")) != GIZ_OK) goto cleanup;
    step++;
    if ((rc = giz_store_log_insert(s, d.did, 3, "tag", 3, "src", 3, "content", 7, 1)) != GIZ_OK)
        goto cleanup;
    step++;
    {
        int64_t last = 0;
        struct giz_firmware f;
        if ((rc = giz_store_outbox_last_id(s, &last)) != GIZ_OK) goto cleanup;
        if ((rc = giz_store_firmware_latest(s, tmpl_product, 1, NULL, &f)) != GIZ_ERR_NOT_FOUND &&
            rc != GIZ_OK)
            goto cleanup;
    }
    step++;
    if ((rc = giz_store_device_unregister(s, d.did, "ALLOCPASS")) != GIZ_OK) goto cleanup;
    step++;
    if ((rc = giz_store_begin(s)) != GIZ_OK) goto cleanup;
    rc = giz_store_device_set_online(s, d.did, true, 5);
    if (rc == GIZ_OK)
        rc = giz_store_commit(s);
    else
        giz_store_rollback(s);
    if (rc) goto cleanup;
    step++;
cleanup:
    giz_store_close(s);
    *step_out = step;
    return rc;
}

/* Disarmed checks after a run: opens, integrity ok, no half-written ops. */
static void check_db(const char *path, long n)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    int rc = giz_store_open(path, &s, &err);
    if (rc != GIZ_OK) {
        TEST_FAIL_("N=%ld: reopen failed: %d %s", n, rc, err.text);
        return;
    }
    giz_store_close(s);
    test__checks++;
    /* One bit per invariant, all on one fresh connection. */
    if (raw_int(path, "SELECT (SELECT count(*) FROM pragma_integrity_check "
                      "WHERE integrity_check = 'ok') "
                      "| (((SELECT count(*) FROM bindings) = "
                      "(SELECT count(*) FROM outbox WHERE kind = 3)) << 1) "
                      "| (((SELECT count(*) FROM devices WHERE status = 0) = "
                      "(SELECT count(*) FROM outbox WHERE kind = 2)) << 2) "
                      "| (((SELECT count(*) FROM meta WHERE key = 'token_key') = 1) << 3)") != 15) {
        if (raw_int(path, "SELECT count(*) FROM pragma_integrity_check "
                          "WHERE integrity_check = 'ok'") != 1)
            TEST_FAIL_("N=%ld: integrity_check failed", n);
        if (raw_int(path, "SELECT (SELECT count(*) FROM bindings) = "
                          "(SELECT count(*) FROM outbox WHERE kind = 3)") != 1)
            TEST_FAIL_("N=%ld: binding without its outbox event (or the reverse)", n);
        if (raw_int(path, "SELECT (SELECT count(*) FROM devices WHERE status = 0) = "
                          "(SELECT count(*) FROM outbox WHERE kind = 2)") != 1)
            TEST_FAIL_("N=%ld: disabled device without its outbox event (or the reverse)", n);
        if (raw_int(path, "SELECT count(*) FROM meta WHERE key = 'token_key'") != 1)
            TEST_FAIL_("N=%ld: token key missing", n);
    }
}

static void make_template(void)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    struct giz_product p;
    remove_db(tmpl_path);
    ASSERT_EQ(giz_store_open(tmpl_path, &s, &err), GIZ_OK);
    if (!s) return;
    ASSERT_EQ(giz_store_product_create(s, "template", &p), GIZ_OK);
    memcpy(tmpl_product, p.product_key, sizeof tmpl_product);
    ASSERT_EQ(giz_store_user_create(s, "alloc-user", "alloc-password", tmpl_uid), GIZ_OK);
    giz_store_close(s);
}

/* Phase: arms the allocator for N = 1.. and runs `fresh` (open of a new
 * file) or the operation sequence on a copy of the template. */
/* Runs of the open phase grow with every migration (each run replays them
 * all up to its failure point: quadratic). Past the first 500 allocations
 * the open phase tries every GIZ_ALLOC_STRIDE-th one (default 12; 1 = all,
 * for a thorough run by hand); the operations phase tries all of them. */
static long alloc_stride(int fresh)
{
    const char *e = getenv("GIZ_ALLOC_STRIDE");
    long v = 12; /* 6 took 258 s under ASan in CI with twelve migrations */
    if (!fresh) return 1;
    if (e != NULL && *e != '\0') {
        char *end = NULL;
        long x = strtol(e, &end, 10);
        if (end != NULL && *end == '\0' && x >= 1) v = x;
    }
    return v;
}

static void phase(const char *name, int fresh)
{
    long n, base_live, failed_runs = 0;
    int step_hist[10] = {0};
    const long stride = alloc_stride(fresh);

    for (n = 1; n <= MAX_RUNS; n += (n < 500 ? 1 : stride)) {
        int rc, step = 0;
        remove_db(run_path);
        if (!fresh && !copy_file(tmpl_path, run_path)) {
            TEST_FAIL_("%s", "copy template");
            return;
        }
        base_live = live;
        alloc_no = 0;
        injected = 0;
        fail_at = n;
        if (fresh) {
            struct giz_store *s = NULL;
            struct giz_error err;
            rc = giz_store_open(run_path, &s, &err);
            if (rc == GIZ_OK) {
                step = 1;
                giz_store_close(s);
            } else if (s != NULL) {
                TEST_FAIL_("N=%ld: handle returned on failure", n);
            }
        } else {
            rc = run_ops(run_path, &step);
        }
        fail_at = 0;
        if (live != base_live)
            TEST_FAIL_("N=%ld: %ld SQLite allocations not freed", n, live - base_live);
        if (rc != GIZ_OK && !valid_code(rc))
            TEST_FAIL_("N=%ld: unexpected code %d at step %d", n, rc, step);
        if (rc != GIZ_OK && !injected)
            TEST_FAIL_("N=%ld: failed (%d) without an injected failure", n, rc);
        if (rc != GIZ_OK) failed_runs++;
        if (step >= 0 && step < 10) step_hist[step]++;
        check_db(run_path, n);
        if (!injected) break; /* the whole run fit under N: done */
    }
    ASSERT_TRUE(n <= MAX_RUNS);
    fprintf(stderr, "%s: %ld runs, %ld failed with an error code, last run complete\n", name, n,
            failed_runs);
    fprintf(stderr, "%s: runs by steps completed:", name);
    for (int i = 0; i < 10; i++)
        fprintf(stderr, " %d", step_hist[i]);
    fprintf(stderr, "\n");
}

/* The counting allocator, a fresh directory (tmpfs if there is one) and the
 * template database, before any case (exits 1 when the allocator or the
 * directory cannot be set up). */
static void alloc_setup(void)
{
    const char *tmp = getenv("TMPDIR");

    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MALLOC, &count_mem) != SQLITE_OK ||
        sqlite3_initialize() != SQLITE_OK) {
        fprintf(stderr, "cannot install the counting allocator\n");
        exit(1);
    }
    giz_log_init("test_store_alloc", GIZ_LOG_ERR);
    giz_log_set_sink(quiet_sink, NULL);
    /* Thousands of databases are created: prefer tmpfs so fsync is free. */
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/giz_alloc_XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(tmpl_path, sizeof tmpl_path, "%s/template.db", dir);
    snprintf(run_path, sizeof run_path, "%s/run.db", dir);
    make_template();
}

static void alloc_teardown(void)
{
    char cmd[300];
    fprintf(stderr, "store error lines logged: %d\n", log_lines);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Every allocation of opening a new database (migrations) fails in turn. */
TEST_CASE(open_migrations)
{
    phase("open (migrations)", 1);
}

/* Every allocation of the operation sequence on a copy of the template. */
TEST_CASE(operations)
{
    phase("operations", 0);
}

TEST_LIST(TEST_ENTRY(open_migrations), TEST_ENTRY(operations));
TEST_MAIN_WITH(alloc_setup, alloc_teardown)
