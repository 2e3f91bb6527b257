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

struct giz_pool;

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
    /* Set after init (optional, the owner's): entries of at most its object
     * size (GIZ_MAP_ENTRY_SIZE of the key length) come from it, not malloc. */
    struct giz_pool *pool;
};

/* The bytes of an entry with a key of klen bytes. */
#define GIZ_MAP_ENTRY_SIZE(klen) (offsetof(struct giz_map_entry, key) + (size_t)(klen) + 1u)

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

/* ---- intrusive table ------------------------------------------------------
 * For the tables that hold one record per connected device: the record
 * carries its own chain link and its key (a NUL-terminated char array), so
 * an entry costs the record's link and its share of the bucket array (about
 * 16 bytes) instead of a separate copy of the key (an allocation of 64 bytes
 * for a DID). Same keyed SipHash-2-4 buckets as giz_map; chains compare keys
 * (no stored hash), growth rehashes. Not thread-safe. */
struct giz_imap_link {
    struct giz_imap_link *next;
};

struct giz_imap {
    struct giz_imap_link **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t link_off, key_off; /* offsetof the record's link and of its key */
    uint64_t k0, k1;
};

/* An empty table of records whose struct giz_imap_link is at link_off and
 * whose key (char array, NUL-terminated) is at key_off. 0, or -1 (out of
 * memory, no randomness; the table is then empty and safe to free). */
int giz_imap_init(struct giz_imap *m, size_t link_off, size_t key_off);
/* Frees the bucket array, calling free_rec on each record if not NULL. */
void giz_imap_free(struct giz_imap *m, void (*free_rec)(void *));
/* The record whose key is key[0..klen), or NULL. */
void *giz_imap_get(const struct giz_imap *m, const char *key, size_t klen);
/* Links rec in under its key, which must not be in the table yet (-1 if it
 * is, or the table was never initialised; the table is unchanged). */
int giz_imap_put(struct giz_imap *m, void *rec);
/* Unlinks and returns the record under key, or NULL if absent. */
void *giz_imap_remove(struct giz_imap *m, const char *key, size_t klen);
/* Calls cb(rec, ud) for each record until it returns non-zero; cb must not
 * add or remove records. */
void giz_imap_foreach(const struct giz_imap *m, int (*cb)(void *rec, void *ud), void *ud);

#endif
