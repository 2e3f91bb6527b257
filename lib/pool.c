/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Fixed-size object pools on 64 KiB slabs of their own (giz/pool.h).
 *
 * A slab is mapped at a 64 KiB boundary, so the slab of an object is its
 * address with the low 16 bits cleared. Its header is followed by the
 * objects; those never handed out are taken in address order (fresh), so
 * a new slab touches its pages only as it fills; freed ones go on the
 * slab's LIFO free list, threaded through their first 8 bytes.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "giz/pool.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SLAB_BYTES ((size_t)65536)

struct giz_pool_slab {
    struct giz_pool *pool;
    struct giz_pool_slab *prev, *next; /* in pool->avail */
    void *free;                        /* freed objects (LIFO) */
    size_t used;                       /* objects out */
    size_t fresh;                      /* objects ever handed out from the bump */
};

#define SLAB_HDR ((sizeof(struct giz_pool_slab) + 15u) & ~(size_t)15u)

static unsigned char *slab_obj(struct giz_pool_slab *s, size_t i)
{
    return (unsigned char *)s + SLAB_HDR + i * s->pool->size;
}

static struct giz_pool_slab *slab_of(const void *obj)
{
    return (struct giz_pool_slab *)((uintptr_t)obj & ~(uintptr_t)(SLAB_BYTES - 1u));
}

void giz_pool_init(struct giz_pool *p, size_t size)
{
    memset(p, 0, sizeof *p);
    if (size < sizeof(void *)) size = sizeof(void *);
    if (size > 4096u) size = 4096u;
    p->size = (size + 7u) & ~(size_t)7u;
    p->per_slab = (SLAB_BYTES - SLAB_HDR) / p->size;
}

/* Maps one slab at a SLAB_BYTES boundary (twice the size, then the
 * unaligned head and tail are unmapped). */
static struct giz_pool_slab *slab_map(struct giz_pool *p)
{
    unsigned char *m =
        mmap(NULL, 2u * SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uintptr_t a;
    size_t head;
    struct giz_pool_slab *s;
    if (m == MAP_FAILED) return NULL;
    a = ((uintptr_t)m + SLAB_BYTES - 1u) & ~(uintptr_t)(SLAB_BYTES - 1u);
    head = (size_t)(a - (uintptr_t)m);
    if (head > 0) munmap(m, head);
    munmap((unsigned char *)a + SLAB_BYTES, SLAB_BYTES - head);
    s = (struct giz_pool_slab *)a;
    s->pool = p; /* the rest is zero: a fresh anonymous mapping */
    p->slabs++;
    return s;
}

/* Lists of slabs (doubly linked through prev/next): every slab but the
 * spare is on pool->avail (has room) or pool->full. */
static void list_push(struct giz_pool_slab **head, struct giz_pool_slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head) (*head)->prev = s;
    *head = s;
}

static void list_unlink(struct giz_pool_slab **head, struct giz_pool_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void slab_unmap(struct giz_pool *p, struct giz_pool_slab *s)
{
    UNPOISON(s, SLAB_BYTES);
    munmap(s, SLAB_BYTES);
    p->slabs--;
}

void *giz_pool_alloc(struct giz_pool *p)
{
    struct giz_pool_slab *s = p->avail;
    unsigned char *obj;
    if (p->per_slab == 0) return NULL; /* never initialised */
    if (!s) {
        s = p->empty;
        p->empty = NULL;
        if (!s && !(s = slab_map(p))) return NULL;
        list_push(&p->avail, s);
    }
    if (s->free) {
        obj = s->free;
        UNPOISON(obj, p->size);
        memcpy(&s->free, obj, sizeof(void *));
    } else {
        obj = slab_obj(s, s->fresh++);
    }
    if (++s->used == p->per_slab) {
        list_unlink(&p->avail, s);
        list_push(&p->full, s);
    }
    p->live++;
    memset(obj, 0, p->size);
    return obj;
}

void giz_pool_free(struct giz_pool *p, void *obj)
{
    struct giz_pool_slab *s;
    if (!obj) return;
    s = slab_of(obj);
    if (s->used == p->per_slab) { /* it has room again */
        list_unlink(&p->full, s);
        list_push(&p->avail, s);
    }
    memcpy(obj, &s->free, sizeof(void *));
    s->free = obj;
    POISON(obj, p->size);
    s->used--;
    p->live--;
    if (s->used > 0) return;
    list_unlink(&p->avail, s);
    if (!p->empty) { /* kept for the next object, its pages still mapped */
        p->empty = s;
        return;
    }
    slab_unmap(p, s);
}

size_t giz_pool_destroy(struct giz_pool *p)
{
    size_t left = p->live, size = p->size;
    struct giz_pool_slab **lists[] = {&p->avail, &p->full};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        while (*lists[i]) {
            struct giz_pool_slab *s = *lists[i];
            list_unlink(lists[i], s);
            slab_unmap(p, s);
        }
    }
    if (p->empty) slab_unmap(p, p->empty);
    giz_pool_init(p, size);
    return left;
}

size_t giz_pool_live(const struct giz_pool *p)
{
    return p->live;
}
