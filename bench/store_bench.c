/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Store micro-benchmark (moved out of tests/unit/test_store.c): rough
 * per-call costs of PBKDF2, giz_store_device_register (new devices, then
 * from two threads with one connection each as the GService pool does),
 * giz_store_device_auth, batched giz_store_device_set_online and
 * giz_store_device_get on a real database file in a fresh temporary folder
 * (removed afterwards), all connections sharing one verified-passcode
 * cache and no passcode key (the PBKDF2 paths). Prints "bench: ..." lines on stderr; exits 1 only
 * if a call returned a wrong result, never because of a time.
 *
 * Usage: store_bench [TMPDIR]   (default $TMPDIR or /tmp)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "giz/crypto.h"
#include "giz/log.h"
#include "giz/store.h"
#include "giz/util.h"

static double mono_s(void)
{
    return (double)giz_mono_ns() / 1e9;
}

static int failures;
/* One verified-passcode cache for every connection, as the GService's pool
 * or the plugin would own it (register -> auth of the same passcode). */
static struct giz_pcache *pcache;

/* Counts a failed correctness check (the run goes on; exit status 1). */
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "store_bench: %s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__,  \
                    #a, a_, b_);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

struct bench_thread {
    const char *path;
    const char *product_key;
    unsigned base, n, ok;
};

static void *bench_register_thread(void *arg)
{
    struct bench_thread *bt = arg;
    struct giz_store *s = NULL;
    struct giz_error err;
    struct giz_device d;
    bool created;
    if (giz_store_open(bt->path, &s, &err) != GIZ_OK) return NULL;
    giz_store_set_pcache(s, pcache);
    for (unsigned i = 0; i < bt->n; i++) {
        char mac[13];
        snprintf(mac, sizeof mac, "%012X", bt->base + i);
        bt->ok +=
            giz_store_device_register(s, bt->product_key, mac, "BENCHPASS", &d, &created) == GIZ_OK;
    }
    giz_store_close(s);
    return NULL;
}

/* Registers from two threads, one connection each, as the GService's
 * connection pool does. */
static void bench_threads(const char *path, const char *product_key)
{
    enum { NT = 2, PER = 200 };
    pthread_t th[NT];
    struct bench_thread bt[NT];
    double t0 = mono_s(), t1;
    unsigned ok = 0;

    for (int i = 0; i < NT; i++) {
        bt[i].path = path;
        bt[i].product_key = product_key;
        bt[i].base = 0xD0000000u + (unsigned)i * 0x100000u;
        bt[i].n = PER;
        bt[i].ok = 0;
        pthread_create(&th[i], NULL, bench_register_thread, &bt[i]);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        ok += bt[i].ok;
    }
    t1 = mono_s();
    CHECK_EQ(ok, NT * PER);
    fprintf(stderr, "bench: giz_store_device_register, %d threads: %.0f/s total\n", NT,
            NT * PER / (t1 - t0));
}

/* Prints rough per-call costs (information only: nothing is judged on
 * time). Correctness of each call is still checked. */
static void bench(const char *dir)
{
    enum { NREG = 400, NAUTH = 400, NONLINE = 2000 };
    char path[320], hash[GIZ_HASH_STR_MAX], (*dids)[GIZ_DID_SIZE];
    struct giz_store *s;
    struct giz_product p;
    struct giz_device d;
    bool created;
    double t0, t1;
    int ok = 0;

    snprintf(path, sizeof path, "%s/bench.db", dir);
    {
        struct giz_error err;
        if (giz_store_open(path, &s, &err) != GIZ_OK) {
            fprintf(stderr, "store_bench: cannot open %s: %s\n", path, err.text);
            failures++;
            s = NULL;
        }
    }
    if (s) giz_store_set_pcache(s, pcache);
    dids = calloc(NREG, sizeof *dids);
    if (!s || !dids) goto cleanup;
    CHECK_EQ(giz_store_product_create(s, "bench", &p), GIZ_OK);

    t0 = mono_s();
    for (int i = 0; i < NAUTH; i++)
        ok += giz_secret_hash("BENCHPASS", GIZ_PASSCODE_ITERATIONS, hash, sizeof hash) == GIZ_OK;
    t1 = mono_s();
    CHECK_EQ(ok, NAUTH);
    fprintf(stderr, "bench: giz_secret_hash(%u iterations): %.1f us/call\n",
            GIZ_PASSCODE_ITERATIONS, (t1 - t0) / NAUTH * 1e6);

    ok = 0;
    t0 = mono_s();
    for (int i = 0; i < NREG; i++) {
        char mac[13];
        snprintf(mac, sizeof mac, "%012X", 0xB0000000u + (unsigned)i);
        ok += giz_store_device_register(s, p.product_key, mac, "BENCHPASS", &d, &created) == GIZ_OK;
        memcpy(dids[i], d.did, GIZ_DID_SIZE);
    }
    t1 = mono_s();
    CHECK_EQ(ok, NREG);
    fprintf(stderr, "bench: giz_store_device_register (new): %.1f us/call, %.0f/s\n",
            (t1 - t0) / NREG * 1e6, NREG / (t1 - t0));

    ok = 0;
    t0 = mono_s();
    for (int i = 0; i < NAUTH; i++)
        ok += giz_store_device_auth(s, dids[i % NREG], "BENCHPASS", &d) == GIZ_OK;
    t1 = mono_s();
    CHECK_EQ(ok, NAUTH);
    fprintf(stderr, "bench: giz_store_device_auth: %.1f us/call, %.0f/s\n", (t1 - t0) / NAUTH * 1e6,
            NAUTH / (t1 - t0));

    ok = 0;
    t0 = mono_s();
    CHECK_EQ(giz_store_begin(s), GIZ_OK);
    for (int i = 0; i < NONLINE; i++)
        ok += giz_store_device_set_online(s, dids[i % NREG], (i / NREG) % 2 == 0, i) == GIZ_OK;
    CHECK_EQ(giz_store_commit(s), GIZ_OK);
    t1 = mono_s();
    CHECK_EQ(ok, NONLINE);
    fprintf(stderr, "bench: giz_store_device_set_online batched: %.2f us/call\n",
            (t1 - t0) / NONLINE * 1e6);

    ok = 0;
    t0 = mono_s();
    for (int i = 0; i < NAUTH; i++)
        ok += giz_store_device_get(s, dids[i % NREG], &d) == GIZ_OK;
    t1 = mono_s();
    CHECK_EQ(ok, NAUTH);
    fprintf(stderr, "bench: giz_store_device_get: %.2f us/call\n", (t1 - t0) / NAUTH * 1e6);
    bench_threads(path, p.product_key);
cleanup:
    free(dids);
    giz_store_close(s);
}

int main(int argc, char **argv)
{
    const char *tmp = argc > 1 ? argv[1] : getenv("TMPDIR");
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char dir[256], file[320];

    giz_log_init("store_bench", GIZ_LOG_WARN);
    snprintf(dir, sizeof dir, "%s/giz_store_bench_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    pcache = giz_pcache_new(600, 100000);
    if (!pcache) {
        fprintf(stderr, "store_bench: out of memory\n");
        return 1;
    }
    bench(dir);
    giz_pcache_free(pcache);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(file, sizeof file, "%s/bench.db%s", dir, suffixes[i]);
        unlink(file);
    }
    rmdir(dir);
    return failures ? 1 : 0;
}
