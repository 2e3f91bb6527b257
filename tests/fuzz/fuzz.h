/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The libFuzzer entry point shared by the fuzz targets and the replay main,
 * and FUZZ_CHECK, which aborts (a finding for libFuzzer, a failed CTest for
 * the replay) when an invariant does not hold.
 */
#ifndef GIZ_FUZZ_H
#define GIZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* True if the view [p, p+n) lies inside [base, base+size). */
#define FUZZ_INSIDE(p, n, base, size)                                                              \
    ((n) == 0 ||                                                                                   \
     ((const uint8_t *)(p) >= (base) && (size_t)((const uint8_t *)(p) - (base)) <= (size) &&       \
      (n) <= (size) - (size_t)((const uint8_t *)(p) - (base))))

#endif
