/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * A chained hash map keyed by byte strings (lib/map.c), for tables whose
 * keys come from the network: buckets are chosen with SipHash-2-4 under a
 * random key drawn per map at init, so a client cannot aim collisions at
 * one bucket. A map set to ptr_keys (keys are 8-byte pointers nobody else
 * chooses) uses a cheaper keyed 64-bit mix for those keys. The map stores
 * the caller's value pointers and copies of the keys; it never frees a
 * value unless giz_map_free is given a function for it. Not thread-safe:
 * one owner (the plugin uses it on mosquitto's main thread only).
 */
#ifndef GIZ_MAP_H
#define GIZ_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct giz_map_entry {
    struct giz_map_entry *next;
    uint64_t hash;
    void *value;
    uint32_t klen;
    unsigned char key[]; /* klen bytes, then a NUL */
};

/* Zero-initialised until giz_map_init; the fields are read-only for users
 * (count is the number of entries). */
struct giz_map {
    struct giz_map_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    uint64_t k0, k1; /* SipHash key */
    bool ptr_keys;   /* set after init: 8-byte keys get the cheap keyed mix instead of SipHash */
};

/* Called for each entry; returns 0 to continue, non-zero to stop. It must
 * not change the map it iterates. */
typedef int (*giz_map_foreach_cb)(const void *key, size_t klen, void *value, void *ud);

/* Initialises an empty map with a fresh random hash key. Returns 0, or -1
 * (out of memory, no randomness; the map is then empty and safe to free). */
int giz_map_init(struct giz_map *m);
/* Frees the map's own memory, calling free_value(value) on each value if
 * free_value is not NULL. The map is empty afterwards (init again to reuse).
 * NULL or a map that was never initialised is ok. */
void giz_map_free(struct giz_map *m, void (*free_value)(void *));
/* The value stored under key (klen bytes), or NULL if absent. */
void *giz_map_get(const struct giz_map *m, const void *key, size_t klen);
/* Same for a NUL-terminated string key (its bytes without the NUL). */
void *giz_map_sget(const struct giz_map *m, const char *key);
/* Stores value under key, replacing an existing entry: *old (if old is not
 * NULL) gets the previous value, or NULL for a new key. Returns 0, or -1 on
 * out of memory or an uninitialised map (the map is unchanged). */
int giz_map_put(struct giz_map *m, const void *key, size_t klen, void *value, void **old);
/* Removes key; returns its value, or NULL if it was absent. */
void *giz_map_remove(struct giz_map *m, const void *key, size_t klen);
/* Calls cb for each entry in unspecified order until cb returns non-zero. */
void giz_map_foreach(const struct giz_map *m, giz_map_foreach_cb cb, void *ud);

#endif
