/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Fixed-size object pools (lib/pool.c) for records a broker keeps one of
 * per connected device (socket state, DID record, passcode-cache entry,
 * context map entry). Objects come from 64 KiB slabs of their own, mapped
 * with mmap, not from malloc's heap:
 *
 *  - no chunk header or size rounding (malloc adds 8 bytes and rounds to
 *    16: a 136-byte record takes 144);
 *  - the records of idle devices do not sit between the short-lived
 *    allocations of a login storm (packets, event records, row arrays), so
 *    the heap pages those freed can go back to the kernel instead of
 *    staying resident around one live record each (bench/suite/analysis.md);
 *  - a slab whose objects are all freed is unmapped (one empty slab is kept
 *    per pool, so a device that logs in and out does not map and unmap).
 *
 * Allocation takes the slab that last got room (a new one only when none
 * has any), and within it the object freed last.
 * Objects are zeroed by giz_pool_alloc. Under AddressSanitizer a freed
 * object is poisoned until it is handed out again (use-after-free is still
 * caught); giz_pool_live says how many are out (tests check for leaks).
 *
 * Not thread-safe: one owner, or the owner's lock (the passcode cache).
 */
#ifndef GIZ_POOL_H
#define GIZ_POOL_H

#include <stddef.h>

struct giz_pool_slab;

struct giz_pool {
    size_t size;                 /* object bytes (a multiple of 8) */
    size_t per_slab;             /* objects in one slab */
    struct giz_pool_slab *avail; /* slabs with a free object (doubly linked) */
    struct giz_pool_slab *full;  /* slabs without one */
    struct giz_pool_slab *empty; /* one spare slab with no object out, or NULL */
    size_t live, slabs;          /* objects out; slabs mapped (spare included) */
};

/* Initialises a pool of objects of size bytes (1 .. 4096; rounded up to 8). */
void giz_pool_init(struct giz_pool *p, size_t size);
/* A zeroed object, or NULL (out of memory). */
void *giz_pool_alloc(struct giz_pool *p);
/* Gives obj (from this pool; NULL is ok) back. */
void giz_pool_free(struct giz_pool *p, void *obj);
/* Unmaps every slab: objects still out become invalid. Returns how many
 * were still out (0 when every one was freed). The pool is empty after
 * it and may be used again. */
size_t giz_pool_destroy(struct giz_pool *p);
/* Objects out. */
size_t giz_pool_live(const struct giz_pool *p);

#endif
