/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of giz_array_reserve (include/giz/util.h, lib/util.c), the
 * growth step of the plugin's arrays: already big enough (same pointer, no
 * change), growth from an empty array with min_cap, doubling until `need`
 * fits, zeroed new slots with the old contents kept, the max_cap bound
 * (NULL, array and capacity untouched), SIZE_MAX as "no cap", a growth that
 * lands exactly on max_cap, and an element size whose product would wrap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "giz/util.h"
#include "test.h"

struct rec {
    char name[23];
    int n;
};

TEST_CASE(from_empty)
{
    size_t cap = 0;
    struct rec *a = giz_array_reserve(NULL, &cap, 1, sizeof(*a), 16, SIZE_MAX);
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(cap, 16);
    for (size_t i = 0; i < cap; i++) {
        ASSERT_EQ(a[i].n, 0);
        ASSERT_EQ(a[i].name[0], 0);
    }
    /* min_cap 0 still makes room */
    size_t cap2 = 0;
    int *b = giz_array_reserve(NULL, &cap2, 1, sizeof(*b), 0, SIZE_MAX);
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ(cap2, 1);
    free(b);
    free(a);
}

TEST_CASE(big_enough)
{
    size_t cap = 0;
    int *a = giz_array_reserve(NULL, &cap, 3, sizeof(*a), 4, 100);
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(cap, 4);
    /* need <= cap: the same array back, capacity unchanged */
    ASSERT_TRUE(giz_array_reserve(a, &cap, 4, sizeof(*a), 4, 100) == a);
    ASSERT_EQ(cap, 4);
    ASSERT_TRUE(giz_array_reserve(a, &cap, 0, sizeof(*a), 4, 100) == a);
    ASSERT_EQ(cap, 4);
    free(a);
}

TEST_CASE(doubling_keeps_and_zeroes)
{
    size_t cap = 0, n = 0;
    int *a = NULL;
    /* append 1000 values one by one, as the plugin's queues do */
    for (int v = 1; v <= 1000; v++) {
        int *p = giz_array_reserve(a, &cap, n + 1, sizeof(*a), 8, SIZE_MAX);
        ASSERT_TRUE(p != NULL);
        if (p == NULL) break;
        a = p;
        ASSERT_TRUE(cap >= n + 1);
        a[n++] = v;
    }
    ASSERT_EQ(n, 1000);
    ASSERT_EQ(cap, 1024); /* 8 doubled seven times */
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(a[i], (int)i + 1);
    for (size_t i = n; i < cap; i++)
        ASSERT_EQ(a[i], 0);
    /* one jump far beyond: doubled until it fits, new part zeroed */
    int *p = giz_array_reserve(a, &cap, 5000, sizeof(*a), 8, SIZE_MAX);
    ASSERT_TRUE(p != NULL);
    a = p;
    ASSERT_EQ(cap, 8192);
    ASSERT_EQ(a[999], 1000);
    ASSERT_EQ(a[4999], 0);
    ASSERT_EQ(a[8191], 0);
    free(a);
}

TEST_CASE(max_cap)
{
    size_t cap = 0;
    int *a = giz_array_reserve(NULL, &cap, 5, sizeof(*a), 4, 6);
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(cap, 6); /* 4 doubled is 8, clamped to the cap */
    a[5] = 42;
    /* over the cap: NULL, the array and its capacity are untouched */
    ASSERT_TRUE(giz_array_reserve(a, &cap, 7, sizeof(*a), 4, 6) == NULL);
    ASSERT_EQ(cap, 6);
    ASSERT_EQ(a[5], 42);
    /* a cap below min_cap wins */
    size_t cap2 = 0;
    int *b = giz_array_reserve(NULL, &cap2, 1, sizeof(*b), 64, 3);
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ(cap2, 3);
    free(b);
    free(a);
}

TEST_CASE(overflow)
{
    size_t cap = 0;
    /* need * elem_size would wrap: refused, not a short allocation */
    ASSERT_TRUE(giz_array_reserve(NULL, &cap, SIZE_MAX / 8 + 2, 16, 1, SIZE_MAX) == NULL);
    ASSERT_EQ(cap, 0);
    ASSERT_TRUE(giz_array_reserve(NULL, &cap, 1, 0, 1, SIZE_MAX) == NULL); /* no element size */
    ASSERT_EQ(cap, 0);
}

TEST_LIST(TEST_ENTRY(from_empty), TEST_ENTRY(big_enough), TEST_ENTRY(doubling_keeps_and_zeroes),
          TEST_ENTRY(max_cap), TEST_ENTRY(overflow));
TEST_MAIN()
