/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the generic hash map (include/giz/map.h, lib/map.c; the
 * plugin's tables): put / get / replace / remove with byte keys (empty,
 * with NULs, prefixes of each other), growth to many entries, foreach and
 * its early stop, freeing (values freed once, double free and never-
 * initialised maps harmless), pointer-keyed maps, a per-map random hash key,
 * SipHash-2-4 against the reference vectors, and random operations against
 * a plain array; the intrusive table (giz_imap: records with their own link
 * and key) the same way, plus duplicate keys refused, prefix keys apart,
 * growth, foreach and freeing each record once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/map.h"
#include "test.h"

TEST_CASE(basic)
{
    struct giz_map m;
    void *old = (void *)1;
    int a = 1, b = 2, c = 3;
    ASSERT_EQ(giz_map_init(&m), 0);
    ASSERT_EQ(m.count, 0);
    ASSERT_TRUE(giz_map_sget(&m, "x") == NULL);
    ASSERT_EQ(giz_map_put(&m, "alpha", 5, &a, &old), 0);
    ASSERT_TRUE(old == NULL);
    ASSERT_EQ(giz_map_put(&m, "beta", 4, &b, NULL), 0);
    ASSERT_EQ(m.count, 2);
    ASSERT_TRUE(giz_map_get(&m, "alpha", 5) == &a);
    ASSERT_TRUE(giz_map_sget(&m, "beta") == &b);
    /* replace: the old value comes back, the count stays */
    ASSERT_EQ(giz_map_put(&m, "alpha", 5, &c, &old), 0);
    ASSERT_TRUE(old == &a);
    ASSERT_EQ(m.count, 2);
    ASSERT_TRUE(giz_map_sget(&m, "alpha") == &c);
    /* a NULL value is stored (get cannot tell it from absent) */
    ASSERT_EQ(giz_map_put(&m, "nil", 3, NULL, &old), 0);
    ASSERT_EQ(m.count, 3);
    ASSERT_TRUE(giz_map_remove(&m, "nil", 3) == NULL);
    ASSERT_EQ(m.count, 2);
    ASSERT_TRUE(giz_map_remove(&m, "alpha", 5) == &c);
    ASSERT_TRUE(giz_map_remove(&m, "alpha", 5) == NULL);
    ASSERT_TRUE(giz_map_sget(&m, "alpha") == NULL);
    ASSERT_EQ(m.count, 1);
    giz_map_free(&m, NULL);
    ASSERT_EQ(m.count, 0);
}

/* Keys are byte strings: length matters, NULs are bytes, "" is a key. */
TEST_CASE(byte_keys)
{
    struct giz_map m;
    int v[6];
    ASSERT_EQ(giz_map_init(&m), 0);
    ASSERT_EQ(giz_map_put(&m, "", 0, &v[0], NULL), 0);
    ASSERT_EQ(giz_map_put(&m, "ab", 2, &v[1], NULL), 0);
    ASSERT_EQ(giz_map_put(&m, "ab\0", 3, &v[2], NULL), 0);
    ASSERT_EQ(giz_map_put(&m, "ab\0c", 4, &v[3], NULL), 0);
    ASSERT_EQ(giz_map_put(&m, "a", 1, &v[4], NULL), 0);
    ASSERT_EQ(giz_map_put(&m, "abcdefgh", 8, &v[5], NULL), 0); /* one SipHash block */
    ASSERT_EQ(m.count, 6);
    ASSERT_TRUE(giz_map_get(&m, "", 0) == &v[0]);
    ASSERT_TRUE(giz_map_sget(&m, "") == &v[0]);
    ASSERT_TRUE(giz_map_get(&m, "ab", 2) == &v[1]);
    ASSERT_TRUE(giz_map_get(&m, "ab\0", 3) == &v[2]);
    ASSERT_TRUE(giz_map_get(&m, "ab\0c", 4) == &v[3]);
    ASSERT_TRUE(giz_map_get(&m, "ab\0d", 4) == NULL);
    ASSERT_TRUE(giz_map_sget(&m, "ab") == &v[1]);
    ASSERT_TRUE(giz_map_sget(&m, "abcdefgh") == &v[5]);
    ASSERT_TRUE(giz_map_sget(&m, "abcdefg") == NULL);
    ASSERT_TRUE(giz_map_sget(&m, "abcdefghi") == NULL);
    ASSERT_TRUE(giz_map_remove(&m, "ab\0", 3) == &v[2]);
    ASSERT_TRUE(giz_map_get(&m, "ab", 2) == &v[1]);
    ASSERT_TRUE(giz_map_get(&m, "ab\0c", 4) == &v[3]);
    /* the stored key is a copy: changing the caller's buffer changes nothing */
    char key[16] = "volatile";
    ASSERT_EQ(giz_map_put(&m, key, 8, &v[0], NULL), 0);
    memcpy(key, "VOLATILE", 8);
    ASSERT_TRUE(giz_map_get(&m, "volatile", 8) == &v[0]);
    ASSERT_TRUE(giz_map_get(&m, key, 8) == NULL);
    giz_map_free(&m, NULL);
}

struct visit {
    size_t n, stop_after;
    unsigned char *seen;
};

static int visit_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct visit *v = ud;
    (void)key;
    (void)klen;
    (void)value;
    v->n++;
    return v->stop_after != 0 && v->n >= v->stop_after;
}

static int mark_cb(const void *key, size_t klen, void *value, void *ud)
{
    struct visit *v = ud;
    unsigned idx = *(const unsigned *)value;
    char expect[32];
    int n = snprintf(expect, sizeof expect, "key-%u", idx);
    if (n < 0 || (size_t)n != klen || memcmp(expect, key, klen) != 0)
        return 1; /* a key that does not belong to its value: stop, caught below */
    v->seen[idx]++;
    v->n++;
    return 0;
}

/* 20,000 entries: the bucket array grows (a power of two), every entry is
 * found and visited exactly once, and removing them all empties the map. */
TEST_CASE(grow)
{
    enum { N = 20000 };
    struct giz_map m;
    unsigned *vals = malloc(N * sizeof *vals);
    unsigned char *seen = calloc(N, 1);
    ASSERT_TRUE(vals != NULL && seen != NULL);
    if (vals == NULL || seen == NULL) goto out;
    ASSERT_EQ(giz_map_init(&m), 0);
    size_t initial = m.nbuckets;
    for (unsigned i = 0; i < N; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "key-%u", i);
        vals[i] = i;
        if (giz_map_put(&m, key, (size_t)n, &vals[i], NULL) != 0) TEST_FAIL_("put %u", i);
    }
    test__checks++;
    ASSERT_EQ(m.count, N);
    ASSERT_TRUE(m.nbuckets > initial);
    ASSERT_EQ(m.nbuckets & (m.nbuckets - 1), 0);
    ASSERT_TRUE(m.count <= 2 * m.nbuckets);
    unsigned missing = 0;
    for (unsigned i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%u", i);
        unsigned *p = giz_map_sget(&m, key);
        missing += p == NULL || *p != i;
    }
    ASSERT_EQ(missing, 0);
    struct visit v = {0, 0, seen};
    giz_map_foreach(&m, mark_cb, &v);
    ASSERT_EQ(v.n, N);
    unsigned twice = 0;
    for (unsigned i = 0; i < N; i++)
        twice += seen[i] != 1;
    ASSERT_EQ(twice, 0);
    /* an early stop: the callback's non-zero ends the walk */
    struct visit s = {0, 17, NULL};
    giz_map_foreach(&m, visit_cb, &s);
    ASSERT_EQ(s.n, 17);
    for (unsigned i = 0; i < N; i += 2) {
        char key[32];
        int n = snprintf(key, sizeof key, "key-%u", i);
        if (giz_map_remove(&m, key, (size_t)n) != &vals[i]) TEST_FAIL_("remove %u", i);
    }
    test__checks++;
    ASSERT_EQ(m.count, N / 2);
    ASSERT_TRUE(giz_map_sget(&m, "key-2") == NULL);
    ASSERT_TRUE(giz_map_sget(&m, "key-3") == &vals[3]);
    giz_map_free(&m, NULL);
out:
    free(vals);
    free(seen);
}

static unsigned freed;
static void count_free(void *p)
{
    freed++;
    free(p);
}

TEST_CASE(free_values)
{
    struct giz_map m;
    ASSERT_EQ(giz_map_init(&m), 0);
    freed = 0;
    for (int i = 0; i < 300; i++) {
        char key[16];
        int n = snprintf(key, sizeof key, "%d", i);
        int *p = malloc(sizeof *p);
        ASSERT_TRUE(p != NULL);
        if (p == NULL) break;
        *p = i;
        ASSERT_EQ(giz_map_put(&m, key, (size_t)n, p, NULL), 0);
    }
    /* a replaced value is the caller's to free; the map frees only what it holds */
    void *old = NULL;
    int *p = malloc(sizeof *p);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ(giz_map_put(&m, "7", 1, p, &old), 0);
    free(old);
    giz_map_free(&m, count_free);
    ASSERT_EQ(freed, 300);
    ASSERT_TRUE(m.buckets == NULL && m.count == 0);
    giz_map_free(&m, count_free); /* again: nothing happens */
    ASSERT_EQ(freed, 300);
    giz_map_free(NULL, count_free);

    /* a map that was never initialised: free is harmless, put fails, get finds nothing */
    struct giz_map z;
    memset(&z, 0, sizeof z);
    int x = 0;
    giz_map_free(&z, NULL);
    ASSERT_EQ(giz_map_put(&z, "k", 1, &x, NULL), -1);
    ASSERT_TRUE(giz_map_sget(&z, "k") == NULL);
    ASSERT_TRUE(giz_map_remove(&z, "k", 1) == NULL);
    ASSERT_EQ(z.count, 0);
    /* and after a free, the same */
    ASSERT_EQ(giz_map_put(&m, "k", 1, &x, NULL), -1);
    /* init again to reuse */
    ASSERT_EQ(giz_map_init(&m), 0);
    ASSERT_EQ(giz_map_put(&m, "k", 1, &x, NULL), 0);
    ASSERT_TRUE(giz_map_sget(&m, "k") == &x);
    giz_map_free(&m, NULL);
}

/* Pointer-keyed maps (the plugin's clients by mosquitto context): 8-byte
 * keys take the cheap mix, other lengths still work. */
TEST_CASE(ptr_keys)
{
    enum { N = 5000 };
    struct giz_map m;
    char *objs = malloc(N);
    ASSERT_TRUE(objs != NULL);
    if (objs == NULL) return;
    ASSERT_EQ(giz_map_init(&m), 0);
    m.ptr_keys = true;
    for (size_t i = 0; i < N; i++) {
        const void *k = objs + i;
        if (giz_map_put(&m, &k, sizeof k, objs + i, NULL) != 0) TEST_FAIL_("put %zu", i);
    }
    test__checks++;
    ASSERT_EQ(m.count, N);
    unsigned wrong = 0;
    for (size_t i = 0; i < N; i++) {
        const void *k = objs + i;
        wrong += giz_map_get(&m, &k, sizeof k) != objs + i;
    }
    ASSERT_EQ(wrong, 0);
    ASSERT_EQ(giz_map_put(&m, "did-12345", 9, objs, NULL), 0);
    ASSERT_TRUE(giz_map_sget(&m, "did-12345") == objs);
    const void *k0 = objs;
    ASSERT_TRUE(giz_map_remove(&m, &k0, sizeof k0) == objs);
    ASSERT_TRUE(giz_map_get(&m, &k0, sizeof k0) == NULL);
    ASSERT_EQ(m.count, N);
    giz_map_free(&m, NULL);
    free(objs);
}

/* Each map draws its own hash key, so one client's colliding keys for one
 * map (or one process) are not colliding keys for another. */
TEST_CASE(random_key)
{
    struct giz_map a, b;
    ASSERT_EQ(giz_map_init(&a), 0);
    ASSERT_EQ(giz_map_init(&b), 0);
    ASSERT_TRUE(a.k0 != b.k0 || a.k1 != b.k1);
    ASSERT_TRUE(!(a.k0 == 0 && a.k1 == 0));
    ASSERT_EQ(giz_map_put(&a, "same", 4, &a, NULL), 0);
    ASSERT_EQ(giz_map_put(&b, "same", 4, &b, NULL), 0);
    ASSERT_TRUE(a.buckets != NULL && b.buckets != NULL);
    uint64_t ha = 0, hb = 0;
    for (size_t i = 0; i < a.nbuckets; i++)
        if (a.buckets[i] != NULL) ha = a.buckets[i]->hash;
    for (size_t i = 0; i < b.nbuckets; i++)
        if (b.buckets[i] != NULL) hb = b.buckets[i]->hash;
    ASSERT_TRUE(ha != hb);
    giz_map_free(&a, NULL);
    giz_map_free(&b, NULL);
}

/* The bucket hash is SipHash-2-4: with the reference key 00 01 .. 0f, the
 * stored hash of the messages "" and 00 01 .. 0e is the reference output
 * (Aumasson & Bernstein, vectors 0 and 15). */
TEST_CASE(siphash_vectors)
{
    static const struct {
        size_t len;
        uint64_t want;
    } vec[] = {{0, UINT64_C(0x726fdb47dd0e0e31)},
               {8, UINT64_C(0x93f5f5799a932462)},
               {15, UINT64_C(0xa129ca6149be45e5)}};
    unsigned char msg[16];
    for (unsigned i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)i;
    for (size_t v = 0; v < sizeof vec / sizeof vec[0]; v++) {
        struct giz_map m;
        int x = 0;
        ASSERT_EQ(giz_map_init(&m), 0);
        m.k0 = UINT64_C(0x0706050403020100);
        m.k1 = UINT64_C(0x0f0e0d0c0b0a0908);
        ASSERT_EQ(giz_map_put(&m, msg, vec[v].len, &x, NULL), 0);
        uint64_t got = 0;
        for (size_t i = 0; i < m.nbuckets; i++)
            if (m.buckets[i] != NULL) got = m.buckets[i]->hash;
        if (got != vec[v].want)
            TEST_FAIL_("SipHash of %zu bytes: %016" PRIx64 " != %016" PRIx64, vec[v].len, got,
                       vec[v].want);
        test__checks++;
        giz_map_free(&m, NULL);
    }
}

/* Random puts, replaces and removes over a small key space, checked after
 * every step against an array indexed by key. */
TEST_CASE(random_ops)
{
    enum { KEYS = 512, STEPS = 60000 };
    static int slots[KEYS];
    static void *model[KEYS];
    struct giz_map m;
    uint32_t s = 12345;
    size_t live = 0;
    unsigned bad = 0;
    ASSERT_EQ(giz_map_init(&m), 0);
    for (int step = 0; step < STEPS; step++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        unsigned k = s % KEYS;
        char key[8];
        int n = snprintf(key, sizeof key, "%u", k);
        if ((s >> 16) % 3u != 0) {
            void *old = (void *)&s;
            if (giz_map_put(&m, key, (size_t)n, &slots[(s >> 8) % KEYS], &old) != 0) bad++;
            if (old != model[k]) bad++;
            if (model[k] == NULL) live++;
            model[k] = &slots[(s >> 8) % KEYS];
        } else {
            if (giz_map_remove(&m, key, (size_t)n) != model[k]) bad++;
            if (model[k] != NULL) live--;
            model[k] = NULL;
        }
        if (giz_map_get(&m, key, (size_t)n) != model[k] || m.count != live) bad++;
    }
    for (unsigned k = 0; k < KEYS; k++) {
        char key[8];
        snprintf(key, sizeof key, "%u", k);
        if (giz_map_sget(&m, key) != model[k]) bad++;
    }
    ASSERT_EQ(bad, 0);
    ASSERT_TRUE(live > 0);
    giz_map_free(&m, NULL);
}

/* A record as the plugin's DID table holds it: payload, key, link apart. */
struct irec {
    int value;
    char key[24];
    struct giz_imap_link link;
    int freed;
};

static int irec_sum_cb(void *rec, void *ud)
{
    *(long *)ud += ((struct irec *)rec)->value;
    return 0;
}

static int irec_stop_cb(void *rec, void *ud)
{
    (void)rec;
    return ++*(int *)ud == 3;
}

static void irec_free(void *rec)
{
    ((struct irec *)rec)->freed++;
}

TEST_CASE(imap_basic)
{
    static struct irec r[3000];
    struct giz_imap m;
    struct irec dup = {0, "k7", {NULL}, 0}, pre = {0, "k", {NULL}, 0};
    long sum = 0, want = 0;
    int calls = 0;
    ASSERT_EQ(giz_imap_init(&m, offsetof(struct irec, link), offsetof(struct irec, key)), 0);
    ASSERT_TRUE(giz_imap_get(&m, "k1", 2) == NULL);
    ASSERT_TRUE(giz_imap_remove(&m, "k1", 2) == NULL);
    for (int i = 0; i < 3000; i++) {
        r[i].value = i;
        snprintf(r[i].key, sizeof r[i].key, "k%d", i);
        ASSERT_EQ(giz_imap_put(&m, &r[i]), 0);
        want += i;
    }
    ASSERT_EQ(m.count, 3000);
    ASSERT_TRUE(m.nbuckets >= 1024);       /* it grew: about two per bucket */
    ASSERT_EQ(giz_imap_put(&m, &dup), -1); /* "k7" is there: refused, unchanged */
    ASSERT_EQ(m.count, 3000);
    ASSERT_TRUE(giz_imap_get(&m, "k", 1) == NULL); /* a prefix of every key */
    ASSERT_EQ(giz_imap_put(&m, &pre), 0);
    ASSERT_TRUE(giz_imap_get(&m, "k", 1) == &pre);
    ASSERT_TRUE(giz_imap_get(&m, "k12", 2) == &r[1]); /* klen bytes of the argument */
    ASSERT_TRUE(giz_imap_remove(&m, "k", 1) == &pre);
    for (int i = 0; i < 3000; i++) {
        char key[24];
        int n = snprintf(key, sizeof key, "k%d", i);
        if (giz_imap_get(&m, key, (size_t)n) != &r[i]) ASSERT_TRUE(0);
    }
    giz_imap_foreach(&m, irec_sum_cb, &sum);
    ASSERT_EQ(sum, want);
    giz_imap_foreach(&m, irec_stop_cb, &calls);
    ASSERT_EQ(calls, 3);
    ASSERT_TRUE(giz_imap_remove(&m, "k42", 3) == &r[42]);
    ASSERT_TRUE(giz_imap_get(&m, "k42", 3) == NULL);
    ASSERT_EQ(m.count, 2999);
    giz_imap_free(&m, irec_free);
    for (int i = 0; i < 3000; i++)
        ASSERT_EQ(r[i].freed, i == 42 ? 0 : 1);
    ASSERT_EQ(m.count, 0);
    giz_imap_free(&m, irec_free); /* again: harmless */
    ASSERT_EQ(r[0].freed, 1);
}

TEST_CASE(imap_random_ops)
{
    enum { KEYS = 512, STEPS = 60000 };
    static struct irec recs[KEYS];
    static bool in[KEYS];
    struct giz_imap m;
    uint32_t s = 4242;
    size_t live = 0;
    unsigned bad = 0;
    ASSERT_EQ(giz_imap_init(&m, offsetof(struct irec, link), offsetof(struct irec, key)), 0);
    for (unsigned k = 0; k < KEYS; k++)
        snprintf(recs[k].key, sizeof recs[k].key, "%u", k);
    for (int step = 0; step < STEPS; step++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        unsigned k = s % KEYS;
        size_t n = strlen(recs[k].key);
        if ((s >> 16) % 3u != 0) {
            if (giz_imap_put(&m, &recs[k]) != (in[k] ? -1 : 0)) bad++;
            if (!in[k]) live++;
            in[k] = true;
        } else {
            if (giz_imap_remove(&m, recs[k].key, n) != (in[k] ? &recs[k] : NULL)) bad++;
            if (in[k]) live--;
            in[k] = false;
        }
        if (giz_imap_get(&m, recs[k].key, n) != (in[k] ? &recs[k] : NULL) || m.count != live) bad++;
    }
    ASSERT_EQ(bad, 0);
    ASSERT_TRUE(live > 0);
    giz_imap_free(&m, NULL);
}

TEST_LIST(TEST_ENTRY(basic), TEST_ENTRY(byte_keys), TEST_ENTRY(grow), TEST_ENTRY(free_values),
          TEST_ENTRY(ptr_keys), TEST_ENTRY(random_key), TEST_ENTRY(siphash_vectors),
          TEST_ENTRY(random_ops), TEST_ENTRY(imap_basic), TEST_ENTRY(imap_random_ops));
TEST_MAIN()
