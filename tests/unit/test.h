/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * A tiny assertion header and case runner for the unit tests: each failed
 * check prints file:line and the values and counts a failure. A converted
 * test file defines its cases with TEST_CASE(name), lists them once with
 * TEST_LIST(TEST_ENTRY(name), ...) and ends with TEST_MAIN(): the program
 * then runs every case in list order, or only the case named in argv[1]
 * (tests/unit/CMakeLists.txt registers each TEST_CASE line as its own CTest
 * entry unit_<file>.<case>). A case passes when it made at least one check
 * and none failed. Files not converted keep their own main() returning
 * TEST_EXIT() (non-zero if anything failed or nothing was checked).
 */
#ifndef GIZ_TEST_H
#define GIZ_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test__failures;
static int test__checks;

#define TEST_FAIL_(fmt, ...)                                                                       \
    do {                                                                                           \
        test__failures++;                                                                          \
        fprintf(stderr, "%s:%d: FAIL: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);                \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        test__checks++;                                                                            \
        if (!(c)) TEST_FAIL_("%s", #c);                                                            \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long test__a = (long long)(a), test__b = (long long)(b);                              \
        test__checks++;                                                                            \
        if (test__a != test__b) TEST_FAIL_("%s == %s (%lld != %lld)", #a, #b, test__a, test__b);   \
    } while (0)

#define ASSERT_STREQ(a, b)                                                                         \
    do {                                                                                           \
        const char *test__sa = (a), *test__sb = (b);                                               \
        test__checks++;                                                                            \
        if (!test__sa || !test__sb || strcmp(test__sa, test__sb) != 0)                             \
            TEST_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, test__sa ? test__sa : "(null)",      \
                       test__sb ? test__sb : "(null)");                                            \
    } while (0)

#define ASSERT_MEMEQ(a, b, n)                                                                      \
    do {                                                                                           \
        test__checks++;                                                                            \
        if (memcmp((a), (b), (n)) != 0) TEST_FAIL_("%s == %s (%zu bytes)", #a, #b, (size_t)(n));   \
    } while (0)

#define TEST_EXIT()                                                                                \
    (fprintf(stderr, "%d checks, %d failures\n", test__checks, test__failures),                    \
     (test__failures || test__checks == 0) ? 1 : 0)

/* ---- case runner ----------------------------------------------------------- */

struct test_case {
    const char *name;
    void (*fn)(void);
};

/* Defines case `name` (the function test_<name>). Keep it at the start of a
 * line: CMake reads the case names from these lines. */
#define TEST_CASE(name) static void test_##name(void)
#define TEST_ENTRY(name)                                                                           \
    {                                                                                              \
#name, test_##name                                                                         \
    }
/* The cases, in the order a run of all of them takes. A TEST_CASE missing
 * here is an unused static function (an error under -Werror); an entry
 * without its TEST_CASE does not compile. */
#define TEST_LIST(...) static const struct test_case test__list[] = {__VA_ARGS__}

/* Runs one case and prints its result line; returns true if it passed. */
static inline int test__run_one(const char *file, const struct test_case *tc)
{
    int checks0 = test__checks, failures0 = test__failures;
    tc->fn();
    int checks = test__checks - checks0, failures = test__failures - failures0;
    int ok = failures == 0 && checks > 0;
    fprintf(stderr, "%s %s.%s: %d checks, %d failures%s\n", ok ? "ok  " : "FAIL", file, tc->name,
            checks, failures, checks == 0 ? " (a case with no checks fails)" : "");
    return ok;
}

/* main() of a converted file: argv[1] names one case ("--list" prints the
 * names); no argument runs all. setup/teardown (may be NULL) run once around
 * whatever runs. Exit 0 if every case run passed, 1 if not, 2 for an unknown
 * case name (the known names are printed). */
static inline int test__main(int argc, char **argv, const struct test_case *list, size_t n,
                             void (*setup)(void), void (*teardown)(void))
{
    const char *file = argc > 0 && argv[0] != NULL ? argv[0] : "test";
    const char *slash = strrchr(file, '/');
    file = slash != NULL ? slash + 1 : file;
    if (strncmp(file, "test_", 5) == 0) file += 5;
    size_t pick = n;
    if (argc > 1) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], list[i].name) == 0) pick = i;
        if (pick == n) {
            int listing = strcmp(argv[1], "--list") == 0;
            if (!listing) fprintf(stderr, "%s: no case \"%s\"; cases:\n", file, argv[1]);
            for (size_t i = 0; i < n; i++)
                fprintf(listing ? stdout : stderr, "%s\n", list[i].name);
            return listing ? 0 : 2;
        }
    }
    if (setup != NULL) setup();
    int failed_cases = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (pick != n && i != pick) continue;
        ran++;
        if (!test__run_one(file, &list[i])) failed_cases++;
    }
    if (teardown != NULL) teardown();
    fprintf(stderr, "%d checks, %d failures (%d of %d cases failed)\n", test__checks,
            test__failures, failed_cases, ran);
    return failed_cases > 0 || test__failures > 0 ? 1 : 0;
}

#define TEST_MAIN_WITH(setup, teardown)                                                            \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return test__main(argc, argv, test__list, sizeof test__list / sizeof test__list[0],        \
                          (setup), (teardown));                                                    \
    }
#define TEST_MAIN() TEST_MAIN_WITH(NULL, NULL)

#endif
