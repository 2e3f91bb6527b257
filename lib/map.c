/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The generic hash map of include/giz/map.h: chained buckets keyed by byte
 * strings (the plugin's tables: clients by context pointer, DIDs, apps,
 * back-off records, per-address counts, send queues). Keys come from the
 * network (client ids, DIDs), so buckets are chosen with SipHash-2-4 under a
 * per-map random key: a client cannot predict collisions and slow the
 * broker's thread down. Pointer-keyed maps use a cheaper keyed mix.
 */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include <stdlib.h>
#include <string.h>

#include "giz/crypto.h"
#include "giz/error.h"
#include "giz/map.h"
#include "giz/pool.h"

#define MAP_INITIAL_BUCKETS 64u

static uint64_t rotl64(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64u - b));
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8u * i);
    return v;
}

#define SIP_ROUND(v0, v1, v2, v3)                                                                  \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = rotl64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = rotl64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = rotl64(v2, 32);                                                                       \
    } while (0)

/* SipHash-2-4 of in[0..len) under key (k0, k1). */
static uint64_t siphash24(uint64_t k0, uint64_t k1, const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t full = len - (len % 8u);
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t last = (uint64_t)(len & 0xffu) << 56;
    for (size_t i = 0; i < len % 8u; i++)
        last |= (uint64_t)in[full + i] << (8u * i);
    v3 ^= last;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xffu;
    for (int i = 0; i < 4; i++)
        SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Keys of maps with ptr_keys: 8-byte pointers, which no client chooses, so a
 * keyed 64-bit finalizer (splitmix64) spreads them well at a fraction of
 * SipHash's cost -- this map is looked up up to three times per message. */
static uint64_t ptr_hash(uint64_t k0, const unsigned char *in)
{
    uint64_t x;
    memcpy(&x, in, sizeof(x));
    x ^= k0;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t map_hash(const struct giz_map *m, const void *key, size_t klen)
{
    if (m->ptr_keys && klen == sizeof(uint64_t)) return ptr_hash(m->k0, key);
    return siphash24(m->k0, m->k1, key, klen);
}

/* Both tables' start: a fresh random hash key into *k0, *k1 and the initial
 * bucket array of MAP_INITIAL_BUCKETS NULL heads (NULL on failure). */
static void *table_new(uint64_t *k0, uint64_t *k1)
{
    uint64_t key[2];
    if (giz_random_bytes(key, sizeof(key)) != GIZ_OK) return NULL;
    *k0 = key[0];
    *k1 = key[1];
    return calloc(MAP_INITIAL_BUCKETS, sizeof(void *));
}

int giz_map_init(struct giz_map *m)
{
    memset(m, 0, sizeof(*m));
    m->buckets = table_new(&m->k0, &m->k1);
    if (m->buckets == NULL) return -1;
    m->nbuckets = MAP_INITIAL_BUCKETS;
    return 0;
}

static bool pooled(const struct giz_map *m, size_t klen)
{
    return m->pool != NULL && GIZ_MAP_ENTRY_SIZE(klen) <= m->pool->size;
}

static struct giz_map_entry *entry_alloc(struct giz_map *m, size_t klen)
{
    return pooled(m, klen) ? giz_pool_alloc(m->pool) : malloc(GIZ_MAP_ENTRY_SIZE(klen));
}

static void entry_free(struct giz_map *m, struct giz_map_entry *e)
{
    if (pooled(m, e->klen))
        giz_pool_free(m->pool, e);
    else
        free(e);
}

void giz_map_free(struct giz_map *m, void (*free_value)(void *))
{
    if (m == NULL || m->buckets == NULL) return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct giz_map_entry *e = m->buckets[i];
        while (e != NULL) {
            struct giz_map_entry *next = e->next;
            if (free_value != NULL) free_value(e->value);
            entry_free(m, e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

static struct giz_map_entry **map_slot(const struct giz_map *m, const void *key, size_t klen,
                                       uint64_t hash)
{
    struct giz_map_entry **pe = &m->buckets[hash & (m->nbuckets - 1u)];
    while (*pe != NULL) {
        if ((*pe)->hash == hash && (*pe)->klen == klen && memcmp((*pe)->key, key, klen) == 0) break;
        pe = &(*pe)->next;
    }
    return pe;
}

void *giz_map_get(const struct giz_map *m, const void *key, size_t klen)
{
    if (m->buckets == NULL) return NULL;
    uint64_t hash = map_hash(m, key, klen);
    struct giz_map_entry **pe = map_slot(m, key, klen, hash);
    return *pe != NULL ? (*pe)->value : NULL;
}

void *giz_map_sget(const struct giz_map *m, const char *key)
{
    return giz_map_get(m, key, strlen(key));
}

/* Doubles the bucket array; on ENOMEM the map simply stays denser. */
static void map_grow(struct giz_map *m)
{
    size_t n = m->nbuckets * 2u;
    struct giz_map_entry **b = calloc(n, sizeof(*b));
    if (b == NULL) return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct giz_map_entry *e = m->buckets[i];
        while (e != NULL) {
            struct giz_map_entry *next = e->next;
            e->next = b[e->hash & (n - 1u)];
            b[e->hash & (n - 1u)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int giz_map_put(struct giz_map *m, const void *key, size_t klen, void *value, void **old)
{
    if (old != NULL) *old = NULL;
    if (m->buckets == NULL || klen > UINT32_MAX) return -1;
    uint64_t hash = map_hash(m, key, klen);
    struct giz_map_entry **pe = map_slot(m, key, klen, hash);
    if (*pe != NULL) {
        if (old != NULL) *old = (*pe)->value;
        (*pe)->value = value;
        return 0;
    }
    /* The key starts at offsetof(key), inside the struct's tail padding. */
    struct giz_map_entry *e = entry_alloc(m, klen);
    if (e == NULL) return -1;
    e->next = NULL;
    e->hash = hash;
    e->value = value;
    e->klen = (uint32_t)klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    *pe = e;
    m->count++;
    /* Up to two entries per bucket on average: 4-8 bytes of bucket array per
     * entry; chains stay short and compare the full hash first. */
    if (m->count > 2u * m->nbuckets) map_grow(m);
    return 0;
}

void *giz_map_remove(struct giz_map *m, const void *key, size_t klen)
{
    if (m->buckets == NULL) return NULL;
    uint64_t hash = map_hash(m, key, klen);
    struct giz_map_entry **pe = map_slot(m, key, klen, hash);
    struct giz_map_entry *e = *pe;
    if (e == NULL) return NULL;
    void *value = e->value;
    *pe = e->next;
    entry_free(m, e);
    m->count--;
    return value;
}

void giz_map_foreach(const struct giz_map *m, giz_map_foreach_cb cb, void *ud)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct giz_map_entry *e = m->buckets[i]; e != NULL; e = e->next) {
            if (cb(e->key, e->klen, e->value, ud) != 0) return;
        }
    }
}

/* ---- intrusive table ------------------------------------------------------ */

static void *imap_rec(const struct giz_imap *m, struct giz_imap_link *l)
{
    return (char *)l - m->link_off;
}

static const char *imap_key(const struct giz_imap *m, const struct giz_imap_link *l)
{
    return (const char *)l - m->link_off + m->key_off;
}

static size_t imap_bucket(const struct giz_imap *m, const char *key, size_t klen)
{
    return (size_t)(siphash24(m->k0, m->k1, (const unsigned char *)key, klen) & (m->nbuckets - 1u));
}

/* The link pointing at key's record (or at the NULL ending its chain). */
static struct giz_imap_link **imap_slot(const struct giz_imap *m, const char *key, size_t klen)
{
    struct giz_imap_link **pl = &m->buckets[imap_bucket(m, key, klen)];
    while (*pl != NULL) {
        const char *k = imap_key(m, *pl);
        /* strnlen first: never reads past the record's key */
        if (strnlen(k, klen + 1u) == klen && memcmp(k, key, klen) == 0) break;
        pl = &(*pl)->next;
    }
    return pl;
}

int giz_imap_init(struct giz_imap *m, size_t link_off, size_t key_off)
{
    memset(m, 0, sizeof(*m));
    m->link_off = link_off;
    m->key_off = key_off;
    m->buckets = table_new(&m->k0, &m->k1);
    if (m->buckets == NULL) return -1;
    m->nbuckets = MAP_INITIAL_BUCKETS;
    return 0;
}

void giz_imap_free(struct giz_imap *m, void (*free_rec)(void *))
{
    if (m == NULL || m->buckets == NULL) return;
    for (size_t i = 0; i < m->nbuckets && free_rec != NULL; i++) {
        struct giz_imap_link *l = m->buckets[i];
        while (l != NULL) {
            struct giz_imap_link *next = l->next;
            free_rec(imap_rec(m, l));
            l = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void *giz_imap_get(const struct giz_imap *m, const char *key, size_t klen)
{
    if (m->buckets == NULL) return NULL;
    struct giz_imap_link **pl = imap_slot(m, key, klen);
    return *pl != NULL ? imap_rec(m, *pl) : NULL;
}

/* Doubles the bucket array (rehashing each key); on ENOMEM the table simply
 * stays denser. */
static void imap_grow(struct giz_imap *m)
{
    size_t n = m->nbuckets * 2u, oldn = m->nbuckets;
    struct giz_imap_link **b = calloc(n, sizeof(*b)), **old = m->buckets;
    if (b == NULL) return;
    m->buckets = b;
    m->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct giz_imap_link *l = old[i];
        while (l != NULL) {
            struct giz_imap_link *next = l->next;
            const char *k = imap_key(m, l);
            size_t at = imap_bucket(m, k, strlen(k));
            l->next = b[at];
            b[at] = l;
            l = next;
        }
    }
    free(old);
}

int giz_imap_put(struct giz_imap *m, void *rec)
{
    if (m->buckets == NULL || rec == NULL) return -1;
    const char *key = (const char *)rec + m->key_off;
    size_t klen = strlen(key);
    struct giz_imap_link **pl = imap_slot(m, key, klen);
    if (*pl != NULL) return -1;
    struct giz_imap_link *l = (struct giz_imap_link *)((char *)rec + m->link_off);
    l->next = NULL;
    *pl = l;
    m->count++;
    /* up to two records per bucket on average, as in giz_map */
    if (m->count > 2u * m->nbuckets) imap_grow(m);
    return 0;
}

void *giz_imap_remove(struct giz_imap *m, const char *key, size_t klen)
{
    if (m->buckets == NULL) return NULL;
    struct giz_imap_link **pl = imap_slot(m, key, klen), *l = *pl;
    if (l == NULL) return NULL;
    *pl = l->next;
    l->next = NULL;
    m->count--;
    return imap_rec(m, l);
}

void giz_imap_foreach(const struct giz_imap *m, int (*cb)(void *rec, void *ud), void *ud)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct giz_imap_link *l = m->buckets[i]; l != NULL; l = l->next) {
            if (cb(imap_rec(m, l), ud) != 0) return;
        }
    }
}
