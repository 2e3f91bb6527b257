/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * A tiny assertion header for the unit tests: each failed check prints
 * file:line and the values, counts a failure, and the test's main returns
 * TEST_EXIT() (non-zero if anything failed).
 */
#ifndef GIZ_TEST_H
#define GIZ_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test__failures;
static int test__checks;

#define TEST_FAIL_(fmt, ...)                                                          \
    do {                                                                              \
        test__failures++;                                                             \
        fprintf(stderr, "%s:%d: FAIL: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);   \
    } while (0)

#define ASSERT_TRUE(c)                                                                \
    do {                                                                              \
        test__checks++;                                                               \
        if (!(c)) TEST_FAIL_("%s", #c);                                               \
    } while (0)

#define ASSERT_EQ(a, b)                                                               \
    do {                                                                              \
        long long test__a = (long long)(a), test__b = (long long)(b);                 \
        test__checks++;                                                               \
        if (test__a != test__b)                                                       \
            TEST_FAIL_("%s == %s (%lld != %lld)", #a, #b, test__a, test__b);          \
    } while (0)

#define ASSERT_STREQ(a, b)                                                            \
    do {                                                                              \
        const char *test__sa = (a), *test__sb = (b);                                  \
        test__checks++;                                                               \
        if (!test__sa || !test__sb || strcmp(test__sa, test__sb) != 0)                \
            TEST_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, test__sa ? test__sa : "(null)", \
                       test__sb ? test__sb : "(null)");                               \
    } while (0)

#define ASSERT_MEMEQ(a, b, n)                                                         \
    do {                                                                              \
        test__checks++;                                                               \
        if (memcmp((a), (b), (n)) != 0) TEST_FAIL_("%s == %s (%zu bytes)", #a, #b, (size_t)(n)); \
    } while (0)

#define TEST_EXIT()                                                                   \
    (fprintf(stderr, "%d checks, %d failures\n", test__checks, test__failures),       \
     (test__failures || test__checks == 0) ? 1 : 0)

#endif
