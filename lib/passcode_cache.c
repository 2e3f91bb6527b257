/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The verified-passcode cache (struct giz_pcache, giz/store.h): one object
 * per owner (the broker plugin, the GService's connection pool, a test)
 * instead of the process-wide table and the plugin's separate credential
 * map. A chained hash table keyed by DID, allocated on the first put and
 * sized from max_entries; one mutex. Entries hold keyed tags only, never a
 * passcode.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* explicit_bzero */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "giz/crypto.h"
#include "giz/pool.h"
#include "giz/store.h"
#include "giz/util.h"

#define PCACHE_MAX_BUCKETS (1u << 17)
/* Tag bytes kept: 128 bits of HMAC-SHA256 under a random per-cache key that
 * never leaves the process (a forged hit needs 2^128 guesses, each a login
 * attempt, against the back-off): the entry is 104 bytes instead of 120,
 * one per device the broker has seen. */
#define PCACHE_TAG 16u

struct pcache_entry {
    struct pcache_entry *next;
    char did[GIZ_DID_SIZE];
    char product_key[GIZ_PK_SIZE];
    uint8_t tag[PCACHE_TAG]; /* HMAC-SHA256(key, did \n passcode), first half */
    uint8_t hash_tag[16];    /* HMAC-SHA256(key, "hash" \n stored hash), first half */
    bool has_hash;           /* false: put without a stored hash */
    uint32_t at_s;           /* monotonic seconds when put */
};

_Static_assert(sizeof(void *) != 8 || sizeof(struct pcache_entry) <= 104,
               "a cache entry stays within 104 bytes");

struct giz_pcache {
    pthread_mutex_t mu;   /* also serializes mac */
    struct giz_hmac *mac; /* under a random key that never leaves the process */
    struct giz_pool pool; /* the entries (giz/pool.h: one per device, off the heap) */
    unsigned ttl_s, max;
    struct pcache_entry **buckets; /* nbuckets heads; NULL until the first put */
    size_t nbuckets, count;
};

struct giz_pcache *giz_pcache_new(unsigned ttl_s, unsigned max_entries)
{
    uint8_t key[32];
    struct giz_pcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (giz_random_bytes(key, sizeof key) == GIZ_OK) c->mac = giz_hmac_new(key, sizeof key);
    explicit_bzero(key, sizeof key);
    if (!c->mac || pthread_mutex_init(&c->mu, NULL) != 0) {
        giz_hmac_free(c->mac);
        free(c);
        return NULL;
    }
    c->ttl_s = ttl_s;
    c->max = max_entries;
    giz_pool_init(&c->pool, sizeof(struct pcache_entry));
    return c;
}

void giz_pcache_free(struct giz_pcache *c)
{
    if (!c) return;
    for (size_t i = 0; c->buckets && i < c->nbuckets; i++) {
        struct pcache_entry *e = c->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            explicit_bzero(e, sizeof *e);
            giz_pool_free(&c->pool, e);
        }
    }
    giz_pool_destroy(&c->pool);
    free(c->buckets);
    giz_hmac_free(c->mac);
    pthread_mutex_destroy(&c->mu);
    explicit_bzero(c, sizeof *c);
    free(c);
}

static size_t bucket_of(const struct giz_pcache *c, const char *did)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = did; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h & (c->nbuckets - 1);
}

/* HMAC-SHA256 of text under the cache key, n (<= 32) bytes of it (the
 * caller holds c->mu). */
static bool mac(const struct giz_pcache *c, const char *text, size_t len, uint8_t *out, size_t n)
{
    uint8_t full[32];
    bool ok = giz_hmac_sha256(c->mac, text, len, full) == GIZ_OK;
    if (ok) memcpy(out, full, n);
    explicit_bzero(full, sizeof full);
    return ok;
}

/* The tags of (did, passcode) and, if hash != NULL, of the stored hash;
 * false if the inputs do not fit or the HMAC fails. */
static bool make_tags(const struct giz_pcache *c, const char *did, const char *passcode,
                      const char *hash, uint8_t tag[PCACHE_TAG], uint8_t hash_tag[16])
{
    char text[GIZ_DID_SIZE + GIZ_MAX_PASSCODE + GIZ_HASH_STR_MAX + 8];
    int n;
    bool ok;

    if (!did || !passcode || strlen(did) >= GIZ_DID_SIZE) return false;
    n = snprintf(text, sizeof text, "%s\n%s", did, passcode);
    ok = n > 0 && (size_t)n < sizeof text && mac(c, text, (size_t)n, tag, PCACHE_TAG);
    memset(hash_tag, 0, 16);
    if (ok && hash) {
        n = snprintf(text, sizeof text, "hash\n%s", hash);
        ok = n > 0 && (size_t)n < sizeof text && mac(c, text, (size_t)n, hash_tag, 16);
    }
    explicit_bzero(text, sizeof text);
    return ok;
}

static struct pcache_entry *find(struct giz_pcache *c, const char *did, struct pcache_entry ***link)
{
    struct pcache_entry **pp = &c->buckets[bucket_of(c, did)];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->did, did) == 0) break;
    if (link) *link = pp;
    return *pp;
}

static bool fresh(const struct giz_pcache *c, const struct pcache_entry *e, uint32_t now)
{
    return now - e->at_s < c->ttl_s;
}

static uint32_t now_s(void)
{
    return (uint32_t)(giz_mono_ms() / 1000);
}

bool giz_pcache_check(struct giz_pcache *c, const char *did, const char *passcode,
                      const char *stored_hash, bool any_age, char *product_key)
{
    uint8_t tag[PCACHE_TAG], hash_tag[16];
    const struct pcache_entry *e;
    bool hit = false;

    if (!c || c->ttl_s == 0 || c->max == 0) return false;
    pthread_mutex_lock(&c->mu);
    if (!make_tags(c, did, passcode, stored_hash, tag, hash_tag)) {
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    e = c->buckets ? find(c, did, NULL) : NULL;
    if (e && giz_consttime_eq(e->tag, tag, sizeof tag) &&
        (!stored_hash ||
         (e->has_hash && giz_consttime_eq(e->hash_tag, hash_tag, sizeof hash_tag))) &&
        (any_age || fresh(c, e, now_s()))) {
        hit = true;
        if (product_key) memcpy(product_key, e->product_key, GIZ_PK_SIZE);
    }
    pthread_mutex_unlock(&c->mu);
    explicit_bzero(tag, sizeof tag);
    return hit;
}

/* The bucket table grows with the entries (chains of about two), up to a
 * power of two near max / 4 (512 KiB for the plugin's 200,000): a broker with a
 * few devices does not pay for the largest table on its first login. */
static size_t table_cap(const struct giz_pcache *c)
{
    size_t n = 16;
    while (n < c->max / 4 && n < PCACHE_MAX_BUCKETS)
        n *= 2;
    return n;
}

static void table_rehash(struct giz_pcache *c, struct pcache_entry **nb, size_t n)
{
    struct pcache_entry **old = c->buckets;
    size_t oldn = c->nbuckets;
    c->buckets = nb;
    c->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct pcache_entry *e = old[i], *next;
        for (; e; e = next) {
            size_t b = bucket_of(c, e->did);
            next = e->next;
            e->next = nb[b];
            nb[b] = e;
        }
    }
    free(old);
}

/* Makes room for one more entry: allocates the table on first use, doubles it
 * when chains would pass two entries; false only if the first allocation fails
 * (a failed growth keeps the current table). */
static bool table_ready(struct giz_pcache *c)
{
    size_t cap = table_cap(c);
    if (!c->buckets) {
        size_t n = cap < 64 ? cap : 64;
        c->buckets = calloc(n, sizeof *c->buckets);
        if (!c->buckets) return false;
        c->nbuckets = n;
        return true;
    }
    if (c->count >= 2 * c->nbuckets && c->nbuckets < cap) {
        struct pcache_entry **nb = calloc(c->nbuckets * 2, sizeof *nb);
        if (nb) table_rehash(c, nb, c->nbuckets * 2);
    }
    return true;
}

void giz_pcache_put(struct giz_pcache *c, const char *did, const char *passcode,
                    const char *product_key, const char *stored_hash)
{
    uint8_t tag[PCACHE_TAG], hash_tag[16];
    struct pcache_entry *e, **link;
    uint32_t now = now_s();

    if (!c || c->ttl_s == 0 || c->max == 0) return;
    pthread_mutex_lock(&c->mu);
    if (!make_tags(c, did, passcode, stored_hash, tag, hash_tag) || !table_ready(c)) goto cleanup;
    e = find(c, did, &link);
    if (!e && c->count >= c->max) {
        /* Full: reuse an expired entry of the same bucket, if any. */
        for (e = c->buckets[bucket_of(c, did)]; e && fresh(c, e, now); e = e->next) {
        }
        if (!e) goto cleanup;
    } else if (!e) {
        e = giz_pool_alloc(&c->pool);
        if (!e) goto cleanup;
        *link = e;
        c->count++;
    }
    memcpy(e->did, did, strlen(did) + 1);
    snprintf(e->product_key, sizeof e->product_key, "%s", product_key ? product_key : "");
    /* A put without a hash keeps the hash tag of the same passcode's entry. */
    if (stored_hash || !giz_consttime_eq(e->tag, tag, sizeof tag)) {
        memcpy(e->hash_tag, hash_tag, sizeof e->hash_tag);
        e->has_hash = stored_hash != NULL;
    }
    memcpy(e->tag, tag, sizeof e->tag);
    e->at_s = now;
cleanup:
    pthread_mutex_unlock(&c->mu);
    explicit_bzero(tag, sizeof tag);
}

void giz_pcache_forget(struct giz_pcache *c, const char *did)
{
    struct pcache_entry *e, **link;
    if (!c || !did || strlen(did) >= GIZ_DID_SIZE) return;
    pthread_mutex_lock(&c->mu);
    e = c->buckets ? find(c, did, &link) : NULL;
    if (e) {
        *link = e->next;
        c->count--;
        explicit_bzero(e, sizeof *e);
        giz_pool_free(&c->pool, e);
    }
    pthread_mutex_unlock(&c->mu);
}

size_t giz_pcache_count(struct giz_pcache *c)
{
    size_t n;
    if (!c) return 0;
    pthread_mutex_lock(&c->mu);
    n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}
