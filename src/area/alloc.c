/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - allocating and freeing inside an area: size classes, spans,
 * runs of pages, and the per-thread caches that keep the lock off the
 * common path.
 *
 * PostgreSQL's dsa takes one lock per size class for every allocation and
 * free (~38 ns here, 7-8x malloc) and almost never returns memory.  We keep
 * the shape of its design -- small requests from superblocks ("spans") of
 * one size class, large ones as page runs from a free-page manager -- but
 * put a cache of free objects per thread and class *inside the area*, so a
 * free followed by an allocation of the same class is a few loads and
 * stores with no atomic operation, and several processes allocating at
 * once meet at the lock only to refill or flush half a cache.  Because the
 * caches live in shared memory and are owned by a process identity, a dead
 * process's cache can be returned by anyone: the accounting stays exact.
 *
 * A cache holds up to 128 KiB per class (between 4 and 1024 objects) and
 * is refilled or flushed by half of that (at most 128 objects) under the
 * lock, so the lock is never held for long.
 *
 * Size classes: 16..128 by 16, then 8 classes per power of two up to
 * 32 KiB (internal waste < 1/8, about 1/16 on average).  Each class's span
 * is the smallest of 16, 32, 64 or 128 KiB (up to 512 KiB for the largest
 * classes) that holds 8 objects and wastes < 1/32 of itself at its end.
 * Above 32 KiB a block is a run of whole pages.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../dsm/services.h"
#include "area_int.h"

void *dsm_area_get_address(dsm_area *area, dsm_pointer p)
{
    if (area == NULL || p == DSM_POINTER_INVALID)
        return NULL;
    if (DSM_POINTER_SEGMENT(p) < area->nsegs && area->map[DSM_POINTER_SEGMENT(p)].base == NULL)
        dsm__area_sync_freed(area);
    return dsm__area_resolve(area, p);
}

/* ---- caches ------------------------------------------------------------------------- */

#define TL_ENTRIES 8

struct tl_ent {
    uint64_t id;
    struct cache *c;
};

/*
 * Not initial-exec: a library with initial-exec TLS cannot be dlopen()ed
 * once the static TLS surplus is used up (Python's ctypes, plugins).  The
 * library is built with TLS descriptors (-mtls-dialect=gnu2, configure),
 * which make this access nearly as cheap when the TLS block is static.
 */
static _Thread_local struct tl_ent tl[TL_ENTRIES];
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

dsm_area *dsm__area_find_locked(uint64_t id);
void dsm__area_find_unlock(void);

/* At thread exit: every cache this thread owns goes back to its area. */
static void thread_exit(void *arg)
{
    (void)arg;
    for (int i = 0; i < TL_ENTRIES; i++) {
        dsm_area *a;

        if (tl[i].id == 0)
            continue;
        if ((a = dsm__area_find_locked(tl[i].id)) != NULL) {
            if (dsm__area_lock(a) == 0) {
                dsm__area_flush_cache(a, tl[i].c, 0);
                tl[i].c->owner.pid = 0;
                dsm__area_unlock(a);
            }
            dsm__area_find_unlock();
        }
        tl[i].id = 0;
    }
}

static void tl_init(void)
{
    pthread_key_create(&tl_key, thread_exit);
}

static inline struct cache *cache_lookup(dsm_area *a)
{
    for (int i = 0; i < TL_ENTRIES; i++)
        if (tl[i].id == a->id)
            return tl[i].c;
    return NULL;
}

void dsm__area_forget_caches(dsm_area *a)
{
    for (int i = 0; i < TL_ENTRIES; i++)
        if (tl[i].id == a->id)
            tl[i].id = 0;
}

/* This thread's cache for a, claimed on first use (NULL: none free; go locked). */
struct cache *dsm__area_my_cache(dsm_area *a, bool create)
{
    struct cache *c = cache_lookup(a), *all;
    struct dsm__procid me;
    int slot = -1, entry = -1;

    if (c || !create)
        return c;
    for (int i = 0; i < TL_ENTRIES && entry < 0; i++)
        if (tl[i].id == 0)
            entry = i;
    if (entry < 0 || a->ncaches == 0)
        return NULL;
    pthread_once(&tl_once, tl_init);
    dsm__self_identity(&me);
    if (dsm__area_lock(a) < 0)
        return NULL;
    all = a->caches;
    for (uint32_t i = 0; i < a->ncaches; i++)
        if (all[i].owner.pid == 0 && all[i].magic == CACHE_MAGIC) {
            slot = (int)i;
            break;
        }
    if (slot >= 0) {
        c = &all[slot];
        for (int k = 0; k < NCLASS; k++) {
            c->head[k] = DSM_POINTER_INVALID;
            c->count[k] = 0;
        }
        for (int k = 0; k < LARGE_SLOTS; k++)
            c->large[k] = DSM_POINTER_INVALID;
        c->tid = (uint64_t)syscall(SYS_gettid);
        c->owner = me;
    }
    dsm__area_unlock(a);
    if (c == NULL)
        return NULL;
    tl[entry].c = c;
    tl[entry].id = a->id;
    pthread_setspecific(tl_key, (void *)1);
    return c;
}

/* Return all but `keep` objects of every class of c to the spans (locked). */
/* Give back the large blocks cached in c (locked). */
static int flush_large(dsm_area *a, struct cache *c)
{
    int rc = 0;

    for (int i = 0; i < LARGE_SLOTS; i++) {
        dsm_pointer p = c->large[i];
        uint32_t s = DSM_POINTER_SEGMENT(p), page, n;
        struct pg *e;

        if (p == DSM_POINTER_INVALID)
            continue;
        c->large[i] = DSM_POINTER_INVALID;
        page = (uint32_t)(DSM_POINTER_OFFSET(p) >> PAGE_SHIFT);
        if (dsm__area_resolve(a, p) == NULL || DSM_POINTER_OFFSET(p) != (uint64_t)page * PAGE ||
            (e = &a->pm[s][page])->npages == 0 || e->npages > a->np[s] - page ||
            (e->kind != PG_LARGE && e->kind != PG_LARGE_CACHED)) {
            rc = dsm__area_corrupt(a, "cached large block");
            continue;
        }
        n = e->npages;
        memset(e, 0, sizeof(*e));
        a->hdr->large_pages -= n;
        AREA_STEP();
        if ((rc = dsm__area_free_pages(a, s, page, n)) < 0)
            return rc;
    }
    return rc;
}

int dsm__area_flush_cache(dsm_area *a, struct cache *c, uint32_t keep)
{
    int rc = 0;

    if (keep == 0 && (rc = flush_large(a, c)) < 0)
        return rc;

    for (unsigned cls = 0; cls < NCLASS; cls++) {
        uint64_t n = 0, limit = c->head[cls] ? dsm__area_walk_bound(a, 16) : 0;

        while (c->head[cls] != DSM_POINTER_INVALID && (keep == 0 || c->count[cls] > keep)) {
            dsm_pointer p = c->head[cls];
            char *addr = (p & 15) ? NULL : dsm__area_resolve(a, p);

            if (addr == NULL || ++n > limit) {
                c->head[cls] = DSM_POINTER_INVALID;
                c->count[cls] = 0;
                return dsm__area_corrupt(a, "cache chain");
            }
            c->head[cls] = *(dsm_pointer *)(void *)addr;
            if (c->count[cls])
                c->count[cls]--;
            a->hdr->class_out[cls]--;
            if ((rc = dsm__area_span_put(a, p)) < 0)
                return rc;
        }
        if (keep == 0)
            c->count[cls] = 0;
    }
    return 0;
}

/* Objects moved per refill or flush: half a cache, at most 128, so the lock is held briefly. */
static inline uint32_t batch_of(unsigned cls)
{
    uint32_t b = dsm__area_class_cap[cls] / 2;

    return b > 128 ? 128 : b;
}

/* Flush one class down to its capacity less a batch (locked). */
static int flush_class(dsm_area *a, struct cache *c, unsigned cls)
{
    uint32_t keep = dsm__area_class_cap[cls] - batch_of(cls);

    while (c->count[cls] > keep && c->head[cls] != DSM_POINTER_INVALID) {
        dsm_pointer p = c->head[cls];
        char *addr = (p & 15) ? NULL : dsm__area_resolve(a, p);
        int rc;

        if (addr == NULL) {
            c->head[cls] = DSM_POINTER_INVALID;
            c->count[cls] = 0;
            return dsm__area_corrupt(a, "cache chain");
        }
        c->head[cls] = *(dsm_pointer *)(void *)addr;
        c->count[cls]--;
        a->hdr->class_out[cls]--;
        if ((rc = dsm__area_span_put(a, p)) < 0)
            return rc;
    }
    return 0;
}

/* ---- the API ------------------------------------------------------------------------ */

static int out_of_memory(dsm_area *a, size_t size, int flags, dsm_pointer *out)
{
    *out = DSM_POINTER_INVALID;
    if (flags & DSM_AREA_ALLOC_NO_OOM)
        return 0;
    return dsm__error(-ENOMEM, "could not allocate %zu bytes in a shared memory area of %llu "
                               "bytes (limit %llu)", size,
                      (unsigned long long)a->hdr->total_size,
                      (unsigned long long)a->hdr->max_total_size);
}

static int alloc_large(dsm_area *a, size_t size, int flags, dsm_pointer *out)
{
    uint64_t n = (size + PAGE - 1) / PAGE;
    uint32_t s = 0, p = 0;
    int rc;

    if (n >= MAX_SEG_PAGES)
        return out_of_memory(a, size, flags, out);
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    rc = dsm__area_alloc_pages(a, (uint32_t)n, &s, &p);
    if (rc == 0) {
        struct pg *e = &a->pm[s][p];

        e->npages = (uint32_t)n;
        e->start = p;
        e->kind = PG_LARGE;
        a->hdr->large_pages += n;
        AREA_STEP();
    }
    dsm__area_unlock(a);
    if (rc == -ENOMEM)
        return out_of_memory(a, size, flags, out);
    if (rc < 0)
        return rc;
    *out = DSM_POINTER_MAKE(s, (uint64_t)p * PAGE);
    if (flags & DSM_AREA_ALLOC_ZERO)
        memset(a->map[s].base + (uint64_t)p * PAGE, 0, size);
    return 0;
}

static int alloc_slow(dsm_area *a, size_t size, int flags, dsm_pointer *out)
{
    struct cache *c;
    unsigned cls;
    char *addr;
    int rc = 0;

    if (a == NULL || out == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    *out = DSM_POINTER_INVALID;
    if (size == 0 || (size > DSM_AREA_MAX_ALLOC && !(flags & DSM_AREA_ALLOC_HUGE)) ||
        (flags & ~(DSM_AREA_ALLOC_ZERO | DSM_AREA_ALLOC_NO_OOM | DSM_AREA_ALLOC_HUGE)))
        return dsm__error(-EINVAL, "invalid allocation request of %zu bytes (flags 0x%x)", size,
                          (unsigned)flags);
    if (__atomic_load_n(&a->hdr->inconsistent, __ATOMIC_RELAXED))
        return dsm__error(-ENOTRECOVERABLE, "shared memory area is inconsistent: a process died "
                                            "while updating it");
    dsm__area_sync_freed(a);
    if (size > SMALL_MAX)
        return alloc_large(a, size, flags, out);
    cls = size_class(size);
    c = dsm__area_my_cache(a, true);
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    if (c == NULL) {
        rc = dsm__area_span_take(a, cls, out);
        if (rc == 0)
            a->hdr->class_out[cls]++;
    } else {
        uint32_t want = batch_of(cls), got = 0;

        while (got < want) {
            dsm_pointer p = DSM_POINTER_INVALID;
            char *obj;

            if ((rc = dsm__area_span_take(a, cls, &p)) < 0)
                break;
            if ((obj = dsm__area_resolve(a, p)) == NULL) {
                rc = -EIO;
                break;
            }
            *(dsm_pointer *)(void *)obj = c->head[cls];
            c->head[cls] = p;
            c->count[cls]++;
            a->hdr->class_out[cls]++;
            got++;
        }
        if (got > 0) {
            rc = 0;
            *out = c->head[cls];
            c->head[cls] = *(dsm_pointer *)(void *)dsm__area_resolve(a, *out); /* mapped just above */
            c->count[cls]--;
        }
    }
    dsm__area_unlock(a);
    if (rc == -ENOMEM)
        return out_of_memory(a, size, flags, out);
    if (rc < 0)
        return rc;
    if ((flags & DSM_AREA_ALLOC_ZERO) && (addr = dsm__area_resolve(a, *out)) != NULL)
        memset(addr, 0, size);
    return 0;
}

/* A cached large block of n..n+n/4 pages, taken without the lock, or 0. */
static dsm_pointer large_from_cache(dsm_area *a, struct cache *c, uint32_t n)
{
    for (int i = 0; i < LARGE_SLOTS; i++) {
        dsm_pointer p = c->large[i];
        uint32_t s, page;
        struct pg *e;

        if (p == DSM_POINTER_INVALID || c->large_pages[i] < n || c->large_pages[i] > n + n / 4)
            continue;
        s = DSM_POINTER_SEGMENT(p);
        page = (uint32_t)(DSM_POINTER_OFFSET(p) >> PAGE_SHIFT);
        if (s >= a->nsegs || a->map[s].base == NULL || page >= a->np[s])
            continue;
        e = &a->pm[s][page];
        /* The page map, not the cache's hint, says how long the block is. */
        if (e->kind != PG_LARGE_CACHED || e->npages < n || e->npages > a->np[s] - page ||
            DSM_POINTER_OFFSET(p) != (uint64_t)page * PAGE)
            continue;
        c->large[i] = DSM_POINTER_INVALID; /* the one store that takes it */
        e->kind = PG_LARGE;
        return p;
    }
    return DSM_POINTER_INVALID;
}

int dsm_area_allocate(dsm_area *a, size_t size, int flags, dsm_pointer *out)
{
    struct cache *c;
    dsm_pointer p, next;
    unsigned cls;
    char *addr, *b;
    uint32_t s;

    if (size > SMALL_MAX && size <= LARGE_CACHE_MAX_PAGES * PAGE && a != NULL && out != NULL &&
        !(flags & ~(DSM_AREA_ALLOC_ZERO | DSM_AREA_ALLOC_NO_OOM)) &&
        (c = cache_lookup(a)) != NULL &&
        !__atomic_load_n(&a->hdr->inconsistent, __ATOMIC_RELAXED) &&
        (p = large_from_cache(a, c, (uint32_t)((size + PAGE - 1) / PAGE))) != 0) {
        if (flags & DSM_AREA_ALLOC_ZERO)
            memset(a->map[DSM_POINTER_SEGMENT(p)].base + DSM_POINTER_OFFSET(p), 0, size);
        *out = p;
        return 0;
    }

    if (__builtin_expect(a == NULL || out == NULL || size - 1 >= SMALL_MAX ||
                             (flags & ~(DSM_AREA_ALLOC_ZERO | DSM_AREA_ALLOC_NO_OOM)), 0))
        return alloc_slow(a, size, flags, out);
    cls = size_class(size);
    if (__builtin_expect((c = cache_lookup(a)) == NULL || (p = c->head[cls]) == 0, 0))
        return alloc_slow(a, size, flags, out);
    if (__builtin_expect(__atomic_load_n(&a->hdr->inconsistent, __ATOMIC_RELAXED) != 0, 0))
        return alloc_slow(a, size, flags, out);
    s = DSM_POINTER_SEGMENT(p);
    if (__builtin_expect(s >= a->nsegs || (b = a->map[s].base) == NULL, 0))
        return alloc_slow(a, size, flags, out);
    /* A scribbled head or link must not become a block (links are checked when popped). */
    if (__builtin_expect((p & 15) || DSM_POINTER_OFFSET(p) + size > a->map[s].limit, 0)) {
        c->head[cls] = DSM_POINTER_INVALID;
        c->count[cls] = 0;
        return dsm__area_corrupt(a, "cache chain");
    }
    addr = b + DSM_POINTER_OFFSET(p);
    next = *(dsm_pointer *)(void *)addr;
    /* A scribbled link must not become a block: it is checked when popped next. */
    if (__builtin_expect((next >> (DSM_POINTER_OFFSET_BITS + 10)) != 0, 0)) {
        c->head[cls] = DSM_POINTER_INVALID;
        c->count[cls] = 0;
        return dsm__area_corrupt(a, "cache chain");
    }
    c->head[cls] = next;
    c->count[cls]--;
    if (flags & DSM_AREA_ALLOC_ZERO)
        memset(addr, 0, size);
    *out = p;
    return 0;
}

static int free_slow(dsm_area *a, dsm_pointer p)
{
    uint32_t s = DSM_POINTER_SEGMENT(p), page, start;
    struct cache *c;
    struct pg *e;
    int cls, rc;

    if (a == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    if (__atomic_load_n(&a->hdr->inconsistent, __ATOMIC_RELAXED))
        return dsm__error(-ENOTRECOVERABLE, "shared memory area is inconsistent: a process died "
                                            "while updating it");
    if (p == DSM_POINTER_INVALID || dsm__area_resolve(a, p) == NULL)
        return dsm__error(-EINVAL, "cannot free %016llx: not a block of this area",
                          (unsigned long long)p);
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    if ((cls = dsm__area_small_class(a, p, &start)) >= 0) {
        c = dsm__area_my_cache(a, false);
        if (c && c->count[cls] >= dsm__area_class_cap[cls])
            rc = flush_class(a, c, (unsigned)cls);
        if (rc == 0 && c) {
            *(dsm_pointer *)(void *)dsm__area_resolve(a, p) = c->head[cls];
            c->head[cls] = p;
            c->count[cls]++;
        } else if (rc == 0) {
            a->hdr->class_out[cls]--;
            rc = dsm__area_span_put(a, p);
        }
        dsm__area_unlock(a);
        return rc;
    }
    page = (uint32_t)(DSM_POINTER_OFFSET(p) >> PAGE_SHIFT);
    e = &a->pm[s][page];
    if (e->kind == PG_LARGE_CACHED) {
        dsm__area_unlock(a);
        return dsm__error(-EINVAL, "cannot free %016llx: freed already", (unsigned long long)p);
    }
    if (e->kind != PG_LARGE || DSM_POINTER_OFFSET(p) != (uint64_t)page * PAGE ||
        e->npages == 0 || e->npages > a->np[s] - page) {
        dsm__area_unlock(a);
        return dsm__error(-EINVAL, "cannot free %016llx: not an allocated block",
                          (unsigned long long)p);
    }
    {
        uint32_t n = e->npages;

        memset(e, 0, sizeof(*e));
        a->hdr->large_pages -= n;
        AREA_STEP();
        rc = dsm__area_free_pages(a, s, page, n);
    }
    dsm__area_unlock(a);
    return rc;
}

/* A large block into this thread's cache if it fits, else under the lock. */
static int free_large(dsm_area *a, dsm_pointer p)
{
    uint32_t s = DSM_POINTER_SEGMENT(p), page = (uint32_t)(DSM_POINTER_OFFSET(p) >> PAGE_SHIFT);
    uint32_t cached = 0;
    struct cache *c;
    struct pg *e;
    int slot = -1;

    if (page >= a->np[s] || DSM_POINTER_OFFSET(p) != (uint64_t)page * PAGE)
        return free_slow(a, p);
    e = &a->pm[s][page];
    if (e->kind == PG_LARGE_CACHED)
        return dsm__error(-EINVAL, "cannot free %016llx: freed already",
                          (unsigned long long)p);
    if (e->kind != PG_LARGE || e->npages > LARGE_CACHE_MAX_PAGES || e->npages == 0 ||
        (c = cache_lookup(a)) == NULL || __atomic_load_n(&a->hdr->inconsistent, __ATOMIC_RELAXED))
        return free_slow(a, p);
    for (int i = 0; i < LARGE_SLOTS; i++) {
        if (c->large[i] != DSM_POINTER_INVALID)
            cached += c->large_pages[i];
        else if (slot < 0)
            slot = i;
    }
    if (slot < 0 || cached + e->npages > LARGE_CACHE_PAGES)
        return free_slow(a, p);
    e->kind = PG_LARGE_CACHED;
    c->large_pages[slot] = e->npages;
    c->large[slot] = p; /* published */
    return 0;
}

int dsm_area_free(dsm_area *a, dsm_pointer p)
{
    uint32_t s = DSM_POINTER_SEGMENT(p), start;
    struct cache *c;
    char *b;
    int cls;

    if (__builtin_expect(a == NULL || s >= a->nsegs || (b = a->map[s].base) == NULL ||
                             DSM_POINTER_OFFSET(p) >= a->map[s].limit || p == 0, 0))
        return free_slow(a, p);
    if (__builtin_expect((cls = dsm__area_small_class(a, p, &start)) < 0, 0))
        return free_large(a, p);
    if (__builtin_expect((c = cache_lookup(a)) == NULL ||
                             c->count[cls] >= dsm__area_class_cap[cls] ||
                             __atomic_load_n(&a->hdr->inconsistent, __ATOMIC_RELAXED) != 0, 0))
        return free_slow(a, p);
    *(dsm_pointer *)(void *)(b + DSM_POINTER_OFFSET(p)) = c->head[cls];
    c->head[cls] = p; /* the one store that publishes it: a death before leaves it out */
    c->count[cls]++;
    return 0;
}
