/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/* lib/pool.c: fixed-size objects on slabs of their own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "giz/pool.h"
#include "test.h"

/* Objects are zeroed, distinct, 8-byte aligned and do not overlap; sizes
 * round up to 8; freeing everything leaves one spare slab and no object
 * out; destroy unmaps it. */
TEST_CASE(basic)
{
    struct giz_pool p;
    unsigned char *a, *b, *c;
    giz_pool_init(&p, 21);
    ASSERT_EQ(p.size, 24);
    a = giz_pool_alloc(&p);
    b = giz_pool_alloc(&p);
    ASSERT_TRUE(a != NULL && b != NULL && a != b);
    ASSERT_EQ((uintptr_t)a % 8u, 0);
    ASSERT_TRUE(a + 24 <= b || b + 24 <= a);
    for (int i = 0; i < 24; i++)
        ASSERT_EQ(a[i] | b[i], 0);
    memset(a, 0xab, 24);
    memset(b, 0xcd, 24);
    ASSERT_EQ(giz_pool_live(&p), 2);
    giz_pool_free(&p, a);
    c = giz_pool_alloc(&p); /* the object freed last comes back, zeroed */
    ASSERT_TRUE(c == a);
    for (int i = 0; i < 24; i++)
        ASSERT_EQ(c[i], 0);
    ASSERT_EQ(b[0], 0xcd); /* untouched by its neighbour's reuse */
    giz_pool_free(&p, b);
    giz_pool_free(&p, c);
    giz_pool_free(&p, NULL);
    ASSERT_EQ(giz_pool_live(&p), 0);
    ASSERT_EQ(p.slabs, 1); /* the spare */
    ASSERT_EQ(giz_pool_destroy(&p), 0);
    ASSERT_EQ(p.slabs, 0);
    ASSERT_TRUE(giz_pool_alloc(&p) != NULL); /* usable after destroy */
    ASSERT_EQ(giz_pool_destroy(&p), 1);      /* and says what was still out */
}

/* Many slabs: a full slab gets room again on a free, emptied slabs beyond
 * the one spare are unmapped, and a model of which objects are out agrees
 * with the pool after random allocs and frees (each live object keeps the
 * bytes written into it). */
TEST_CASE(random_ops)
{
    enum { N = 6000, STEPS = 200000, SIZE = 136 };
    static unsigned char *obj[N];
    struct giz_pool p;
    uint32_t s = 99;
    size_t live = 0;
    unsigned bad = 0;
    giz_pool_init(&p, SIZE);
    ASSERT_TRUE(p.per_slab > 100 && p.per_slab < N / 4);
    for (int step = 0; step < STEPS; step++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        unsigned k = s % N;
        if (obj[k] == NULL) {
            obj[k] = giz_pool_alloc(&p);
            if (obj[k] == NULL) {
                bad++;
                continue;
            }
            for (int i = 0; i < SIZE; i++)
                if (obj[k][i] != 0) bad++;
            memset(obj[k], (int)(k & 0xff), SIZE);
            live++;
        } else {
            for (int i = 0; i < SIZE; i++)
                if (obj[k][i] != (unsigned char)(k & 0xff)) bad++;
            giz_pool_free(&p, obj[k]);
            obj[k] = NULL;
            live--;
        }
        if (giz_pool_live(&p) != live) bad++;
    }
    ASSERT_EQ(bad, 0);
    ASSERT_TRUE(live > 0);
    ASSERT_TRUE(p.slabs >= (live + p.per_slab - 1) / p.per_slab); /* they hold the live ones */
    for (unsigned k = 0; k < N; k++)
        giz_pool_free(&p, obj[k]);
    ASSERT_EQ(giz_pool_live(&p), 0);
    ASSERT_EQ(p.slabs, 1); /* all emptied: only the spare is left mapped */
    ASSERT_EQ(giz_pool_destroy(&p), 0);
}

TEST_LIST(TEST_ENTRY(basic), TEST_ENTRY(random_ops));
TEST_MAIN()
