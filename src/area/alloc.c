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

uint32_t dsm__area_class_size[NCLASS];
uint32_t dsm__area_class_pages[NCLASS];
uint32_t dsm__area_class_cap[NCLASS];
static uint64_t class_inv[NCLASS]; /* ceil-ish 2^40 / size: exact object index for spans */
static uint32_t class_capacity[NCLASS];

void dsm__area_classes_init(void)
{
    for (unsigned c = 0; c < NCLASS; c++) {
        uint32_t size, pages = 4, cap;

        if (c < 8)
            size = (c + 1) * 16;
        else {
            unsigned k = c - 8, lg = 7 + k / 8;

            size = (8u + k % 8 + 1) << (lg - 3);
        }
        while (pages < 128 && ((uint64_t)pages * PAGE / size < 8 ||
                               ((uint64_t)pages * PAGE % size) * 32 > (uint64_t)pages * PAGE))
            pages *= 2;
        dsm__area_class_size[c] = size;
        dsm__area_class_pages[c] = pages;
        class_capacity[c] = (uint32_t)((uint64_t)pages * PAGE / size);
        class_inv[c] = ((UINT64_C(1) << 40) / size) + 1;
        cap = 128 * 1024 / size;
        dsm__area_class_cap[c] = cap < 4 ? 4 : cap > 1024 ? 1024 : cap;
    }
}

/* ---- addresses -------------------------------------------------------------------- */

/* Address of p, mapping its segment if needed; NULL (error set) if p is not in the area. */
static inline char *resolve(dsm_area *a, dsm_pointer p)
{
    uint32_t s = DSM_POINTER_SEGMENT(p);
    uint64_t o = DSM_POINTER_OFFSET(p);
    char *b;

    if (s < a->nsegs && (b = __atomic_load_n(&a->map[s].base, __ATOMIC_ACQUIRE)) != NULL &&
        o < a->map[s].limit)
        return b + o;
    if (p >> (DSM_POINTER_OFFSET_BITS + 10) || s >= a->nsegs) {
        dsm__error(-EINVAL, "invalid relative pointer %016llx", (unsigned long long)p);
        return NULL;
    }
    if (dsm__area_map(a, s) < 0)
        return NULL;
    if (o >= a->map[s].limit) {
        dsm__error(-EINVAL, "relative pointer %016llx is beyond its segment",
                   (unsigned long long)p);
        return NULL;
    }
    return a->map[s].base + o;
}

void *dsm_area_get_address(dsm_area *area, dsm_pointer p)
{
    if (area == NULL || p == DSM_POINTER_INVALID)
        return NULL;
    if (DSM_POINTER_SEGMENT(p) < area->nsegs && area->map[DSM_POINTER_SEGMENT(p)].base == NULL)
        dsm__area_sync_freed(area);
    return resolve(area, p);
}

/* The page entry for ref (packed segment and page), mapping if needed; NULL if bad. */
static struct pg *pg_at(dsm_area *a, uint32_t ref)
{
    uint32_t s = REF_SEG(ref), p = REF_PAGE(ref);

    if (s >= a->nsegs || (a->map[s].base == NULL && dsm__area_map(a, s) < 0))
        return NULL;
    if (p >= a->np[s])
        return NULL;
    return &a->pm[s][p];
}

/*
 * An upper bound on the objects of `unit` bytes the area can hold (unmapped
 * segments counted at the largest size), so a walk of a list read from
 * shared memory ends even if a scribble made the list a cycle.
 */
static uint64_t walk_bound(dsm_area *a, uint32_t unit)
{
    uint64_t bytes = 0;

    for (uint32_t s = 0; s < a->nsegs; s++)
        bytes += a->map[s].base ? a->map[s].limit : (uint64_t)MAX_SEG_PAGES * PAGE;
    return bytes / unit + 1;
}

/* ---- runs of pages ------------------------------------------------------------------ */

static unsigned bin_of(uint32_t n)
{
    unsigned b = 31u - (unsigned)__builtin_clz(n);

    return b < NBINS ? b : NBINS - 1;
}

static void run_insert(struct seg_hdr *sh, struct pg *pm, uint32_t np, uint32_t start,
                       uint32_t n)
{
    unsigned b = bin_of(n);
    struct pg *hd = &pm[start];

    memset(hd, 0, sizeof(*hd));
    hd->kind = PG_FREE_HEAD;
    hd->npages = n;
    hd->start = start;
    hd->prev = NIL;
    hd->next = sh->bins[b];
    if (n > 1) {
        struct pg *tl = &pm[start + n - 1];

        memset(tl, 0, sizeof(*tl));
        tl->kind = PG_FREE_TAIL;
        tl->npages = n;
        tl->start = start;
    }
    if (sh->bins[b] != NIL && sh->bins[b] < np)
        pm[sh->bins[b]].prev = start;
    else
        hd->next = NIL; /* an empty bin, or a scribbled head dropped rather than followed */
    sh->bins[b] = start;
}

static int run_unlink(struct seg_hdr *sh, struct pg *pm, uint32_t np, uint32_t start)
{
    struct pg *hd = &pm[start];
    unsigned b = bin_of(hd->npages);

    if ((hd->prev != NIL && hd->prev >= np) || (hd->next != NIL && hd->next >= np))
        return -1;
    if (hd->prev == NIL) {
        if (sh->bins[b] != start)
            return -1;
        sh->bins[b] = hd->next;
    } else
        pm[hd->prev].next = hd->next;
    if (hd->next != NIL)
        pm[hd->next].prev = hd->prev;
    return 0;
}

void dsm__seg_init(struct seg_hdr *sh, struct pg *pm, uint64_t area_id, uint32_t index,
                   uint32_t npages, uint32_t first_page)
{
    memset(sh, 0, sizeof(*sh));
    memset(pm, 0, (size_t)npages * sizeof(*pm));
    sh->area_id = area_id;
    sh->index = index;
    sh->npages = npages;
    sh->first_page = first_page;
    for (unsigned b = 0; b < NBINS; b++)
        sh->bins[b] = NIL;
    run_insert(sh, pm, npages, first_page, npages - first_page);
    sh->free_pages = npages - first_page;
    sh->magic = SEG_MAGIC;
}

/* Take n pages starting at free run `start` of segment s. */
static int take(dsm_area *a, uint32_t s, uint32_t start, uint32_t n)
{
    struct seg_hdr *sh = a->sh[s];
    struct pg *pm = a->pm[s];
    uint32_t len = pm[start].npages;

    if (run_unlink(sh, pm, a->np[s], start) < 0)
        return dsm__area_corrupt(a, "free page list");
    AREA_STEP();
    if (len > 1)
        memset(&pm[start + len - 1], 0, sizeof(struct pg));
    memset(&pm[start], 0, sizeof(struct pg));
    if (len > n)
        run_insert(sh, pm, a->np[s], start + n, len - n);
    sh->free_pages -= n;
    AREA_STEP();
    return 0;
}

int dsm__area_reclaim_dead(dsm_area *a);

/* Find n free pages (growing the area if needed); locked. */
static int alloc_pages_once(dsm_area *a, uint32_t n, uint32_t *seg_out, uint32_t *page_out,
                            bool retried)
{
    struct area_hdr *h = a->hdr;
    uint32_t s;
    int rc;

    for (s = 0; s < h->nsegs && s < a->nsegs; s++) {
        struct seg_hdr *sh;
        struct pg *pm;

        if (a->segtab[s].handle == 0 && s > 0)
            continue;
        if (a->map[s].base == NULL && dsm__area_map(a, s) < 0)
            return -EIO;
        sh = a->sh[s];
        pm = a->pm[s];
        if (sh->free_pages < n)
            continue;
        for (unsigned b = bin_of(n); b < NBINS; b++) {
            uint32_t guard = 0;

            for (uint32_t p = sh->bins[b]; p != NIL; p = pm[p].next) {
                if (p < a->fp[s] || p >= a->np[s] || pm[p].kind != PG_FREE_HEAD ||
                    pm[p].npages == 0 || pm[p].npages > a->np[s] - p || ++guard > a->np[s])
                    return dsm__area_corrupt(a, "free page list");
                if (pm[p].npages >= n) {
                    if ((rc = take(a, s, p, n)) < 0)
                        return rc;
                    *seg_out = s;
                    *page_out = p;
                    return 0;
                }
            }
        }
    }
    /* Before growing: what processes that no longer run kept in caches. */
    if (!retried && dsm__area_reclaim_dead(a) > 0)
        return alloc_pages_once(a, n, seg_out, page_out, true);
    if ((rc = dsm__area_new_segment(a, n, &s)) < 0)
        return rc;
    return alloc_pages_once(a, n, seg_out, page_out, true);
}

static int alloc_pages(dsm_area *a, uint32_t n, uint32_t *seg_out, uint32_t *page_out)
{
    return alloc_pages_once(a, n, seg_out, page_out, false);
}

int dsm__area_free_pages(dsm_area *a, uint32_t s, uint32_t p, uint32_t n)
{
    struct seg_hdr *sh = a->sh[s];
    struct pg *pm = a->pm[s];
    uint32_t start = p, len = n, q = p + n;

    if (q < a->np[s] && pm[q].kind == PG_FREE_HEAD) {
        uint32_t l = pm[q].npages;

        if (l == 0 || l > a->np[s] - q || run_unlink(sh, pm, a->np[s], q) < 0)
            return dsm__area_corrupt(a, "free page list");
        AREA_STEP();
        memset(&pm[q + l - 1], 0, sizeof(struct pg));
        memset(&pm[q], 0, sizeof(struct pg));
        len += l;
    }
    if (p > a->fp[s] &&
        (pm[p - 1].kind == PG_FREE_TAIL || pm[p - 1].kind == PG_FREE_HEAD)) {
        uint32_t st = pm[p - 1].start, l;

        if (st >= p || st < a->fp[s] || pm[st].kind != PG_FREE_HEAD ||
            st + pm[st].npages != p || run_unlink(sh, pm, a->np[s], st) < 0)
            return dsm__area_corrupt(a, "free page list");
        AREA_STEP();
        l = pm[st].npages;
        memset(&pm[p - 1], 0, sizeof(struct pg));
        memset(&pm[st], 0, sizeof(struct pg));
        start = st;
        len += l;
    }
    run_insert(sh, pm, a->np[s], start, len);
    sh->free_pages += n;
    AREA_STEP();
    return 0;
}

/* ---- spans ------------------------------------------------------------------------- */

static int partial_unlink(dsm_area *a, unsigned cls, uint32_t ref, struct pg *hd)
{
    struct pg *x;

    if (hd->prev == NIL) {
        if (a->hdr->partial[cls] != ref)
            return dsm__area_corrupt(a, "span list");
        a->hdr->partial[cls] = hd->next;
    } else {
        if ((x = pg_at(a, hd->prev)) == NULL || x->kind != PG_SPAN_HEAD)
            return dsm__area_corrupt(a, "span list");
        x->next = hd->next;
    }
    if (hd->next != NIL) {
        if ((x = pg_at(a, hd->next)) == NULL || x->kind != PG_SPAN_HEAD)
            return dsm__area_corrupt(a, "span list");
        x->prev = hd->prev;
    }
    hd->prev = hd->next = NIL;
    return 0;
}

static int partial_push(dsm_area *a, unsigned cls, uint32_t ref, struct pg *hd)
{
    uint32_t old = a->hdr->partial[cls];
    struct pg *x;

    hd->prev = NIL;
    hd->next = old;
    if (old != NIL) {
        if ((x = pg_at(a, old)) == NULL || x->kind != PG_SPAN_HEAD)
            return dsm__area_corrupt(a, "span list");
        x->prev = ref;
    }
    a->hdr->partial[cls] = ref;
    return 0;
}

static int new_span(dsm_area *a, unsigned cls, uint32_t *ref_out)
{
    uint32_t n = dsm__area_class_pages[cls], s = 0, p = 0;
    struct pg *pm;
    int rc;

    if ((rc = alloc_pages(a, n, &s, &p)) < 0)
        return rc;
    pm = a->pm[s];
    for (uint32_t i = 1; i < n; i++) {
        memset(&pm[p + i], 0, sizeof(struct pg));
        pm[p + i].kind = PG_SPAN;
        pm[p + i].start = p;
    }
    memset(&pm[p], 0, sizeof(struct pg));
    pm[p].cls = (uint8_t)cls;
    pm[p].npages = n;
    pm[p].start = p;
    pm[p].nfree = class_capacity[cls];
    pm[p].kind = PG_SPAN_HEAD;
    AREA_STEP();
    *ref_out = pack_ref(s, p);
    return partial_push(a, cls, *ref_out, &pm[p]);
}

/* One object of class cls from the spans (locked). */
static int span_take(dsm_area *a, unsigned cls, dsm_pointer *out)
{
    uint32_t ref = a->hdr->partial[cls], size = dsm__area_class_size[cls], s, off;
    struct pg *hd;
    int rc;

    if (ref == NIL && (rc = new_span(a, cls, &ref)) < 0)
        return rc;
    if ((hd = pg_at(a, ref)) == NULL || hd->kind != PG_SPAN_HEAD || hd->cls != cls ||
        hd->nfree == 0 || hd->nfree > class_capacity[cls] || hd->carved > class_capacity[cls])
        return dsm__area_corrupt(a, "span header");
    s = REF_SEG(ref);
    if (hd->free_head != 0) {
        uint64_t o = (uint64_t)(hd->free_head - 1) * 16, base = (uint64_t)REF_PAGE(ref) * PAGE;

        if (o < base || o >= base + (uint64_t)hd->carved * size || (o - base) % size)
            return dsm__area_corrupt(a, "span free list");
        off = (uint32_t)o;
        hd->free_head = *(uint32_t *)(void *)(a->map[s].base + off);
    } else {
        if (hd->carved >= class_capacity[cls])
            return dsm__area_corrupt(a, "span header");
        off = REF_PAGE(ref) * (uint32_t)PAGE + hd->carved * size;
        hd->carved++;
    }
    hd->nfree--;
    AREA_STEP();
    if (hd->nfree == 0 && (rc = partial_unlink(a, cls, ref, hd)) < 0)
        return rc;
    *out = DSM_POINTER_MAKE(s, off);
    return 0;
}

/*
 * The span entry and class of small object p (no lock: the entries of an
 * allocated object's span do not change).  Returns the class or -1.
 */
static inline int small_class(dsm_area *a, dsm_pointer p, uint32_t *head_page)
{
    uint32_t s = DSM_POINTER_SEGMENT(p), page, start, delta;
    uint64_t o = DSM_POINTER_OFFSET(p), idx;
    const struct pg *e, *hd;
    unsigned cls;

    page = (uint32_t)(o >> PAGE_SHIFT);
    if (page >= a->np[s])
        return -1;
    e = &a->pm[s][page];
    if (e->kind != PG_SPAN && e->kind != PG_SPAN_HEAD)
        return -1;
    start = e->start;
    if (start > page)
        return -1;
    hd = &a->pm[s][start];
    cls = hd->cls;
    if (hd->kind != PG_SPAN_HEAD || cls >= NCLASS)
        return -1;
    delta = (uint32_t)(o - (uint64_t)start * PAGE);
    idx = ((uint64_t)delta * class_inv[cls]) >> 40;
    if (idx * dsm__area_class_size[cls] != delta || idx >= hd->carved)
        return -1;
    *head_page = start;
    return (int)cls;
}

/* Give small object p back to its span (locked). */
static int span_put(dsm_area *a, dsm_pointer p)
{
    uint32_t s = DSM_POINTER_SEGMENT(p), start, ref;
    struct pg *hd;
    int cls, rc;

    if (resolve(a, p) == NULL)
        return -EINVAL;
    if ((cls = small_class(a, p, &start)) < 0)
        return dsm__area_corrupt(a, "a cached block is not a small block");
    hd = &a->pm[s][start];
    if (hd->nfree >= class_capacity[cls])
        return dsm__area_corrupt(a, "span count");
    *(uint32_t *)(void *)(a->map[s].base + DSM_POINTER_OFFSET(p)) = hd->free_head;
    hd->free_head = (uint32_t)(DSM_POINTER_OFFSET(p) / 16) + 1;
    hd->nfree++;
    AREA_STEP();
    ref = pack_ref(s, start);
    if (hd->nfree == 1 && (rc = partial_push(a, (unsigned)cls, ref, hd)) < 0)
        return rc;
    if (hd->nfree == class_capacity[cls] &&
        !(a->hdr->partial[cls] == ref && hd->next == NIL)) {
        /* Empty and not the class's only span: its pages go back. */
        if ((rc = partial_unlink(a, (unsigned)cls, ref, hd)) < 0)
            return rc;
        for (uint32_t i = 0; i < dsm__area_class_pages[cls] && start + i < a->np[s]; i++)
            a->pm[s][start + i].kind = PG_NONE;
        AREA_STEP();
        return dsm__area_free_pages(a, s, start, dsm__area_class_pages[cls]);
    }
    return 0;
}

int dsm__area_release_empty_spans(dsm_area *a)
{
    for (unsigned cls = 0; cls < NCLASS; cls++) {
        uint32_t ref = a->hdr->partial[cls];
        uint64_t guard = 0, bound = walk_bound(a, (uint32_t)(4 * PAGE));

        while (ref != NIL) {
            struct pg *hd = pg_at(a, ref);
            uint32_t next, s = REF_SEG(ref), start = REF_PAGE(ref);
            int rc;

            if (hd == NULL || hd->kind != PG_SPAN_HEAD || ++guard > bound)
                return dsm__area_corrupt(a, "span list");
            next = hd->next;
            if (hd->nfree == class_capacity[cls]) {
                if ((rc = partial_unlink(a, cls, ref, hd)) < 0)
                    return rc;
                for (uint32_t i = 0; i < dsm__area_class_pages[cls] && start + i < a->np[s]; i++)
                    a->pm[s][start + i].kind = PG_NONE;
                if ((rc = dsm__area_free_pages(a, s, start, dsm__area_class_pages[cls])) < 0)
                    return rc;
            }
            ref = next;
        }
    }
    return 0;
}

/* ---- caches ------------------------------------------------------------------------- */

#define TL_ENTRIES 8

struct tl_ent {
    uint64_t id;
    struct cache *c;
};

/* initial-exec: the general TLS model costs a __tls_get_addr call per access. */
static _Thread_local struct tl_ent tl[TL_ENTRIES] __attribute__((tls_model("initial-exec")));
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
        if (resolve(a, p) == NULL || DSM_POINTER_OFFSET(p) != (uint64_t)page * PAGE ||
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
        uint64_t n = 0, limit = c->head[cls] ? walk_bound(a, 16) : 0;

        while (c->head[cls] != DSM_POINTER_INVALID && (keep == 0 || c->count[cls] > keep)) {
            dsm_pointer p = c->head[cls];
            char *addr = (p & 15) ? NULL : resolve(a, p);

            if (addr == NULL || ++n > limit) {
                c->head[cls] = DSM_POINTER_INVALID;
                c->count[cls] = 0;
                return dsm__area_corrupt(a, "cache chain");
            }
            c->head[cls] = *(dsm_pointer *)(void *)addr;
            if (c->count[cls])
                c->count[cls]--;
            a->hdr->class_out[cls]--;
            if ((rc = span_put(a, p)) < 0)
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
        char *addr = (p & 15) ? NULL : resolve(a, p);
        int rc;

        if (addr == NULL) {
            c->head[cls] = DSM_POINTER_INVALID;
            c->count[cls] = 0;
            return dsm__area_corrupt(a, "cache chain");
        }
        c->head[cls] = *(dsm_pointer *)(void *)addr;
        c->count[cls]--;
        a->hdr->class_out[cls]--;
        if ((rc = span_put(a, p)) < 0)
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
    rc = alloc_pages(a, (uint32_t)n, &s, &p);
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
        rc = span_take(a, cls, out);
        if (rc == 0)
            a->hdr->class_out[cls]++;
    } else {
        uint32_t want = batch_of(cls), got = 0;

        while (got < want) {
            dsm_pointer p = DSM_POINTER_INVALID;
            char *obj;

            if ((rc = span_take(a, cls, &p)) < 0)
                break;
            if ((obj = resolve(a, p)) == NULL) {
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
            c->head[cls] = *(dsm_pointer *)(void *)resolve(a, *out); /* mapped just above */
            c->count[cls]--;
        }
    }
    dsm__area_unlock(a);
    if (rc == -ENOMEM)
        return out_of_memory(a, size, flags, out);
    if (rc < 0)
        return rc;
    if ((flags & DSM_AREA_ALLOC_ZERO) && (addr = resolve(a, *out)) != NULL)
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
    if (__builtin_expect(next >> (DSM_POINTER_OFFSET_BITS + 10), 0)) {
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
    if (p == DSM_POINTER_INVALID || resolve(a, p) == NULL)
        return dsm__error(-EINVAL, "cannot free %016llx: not a block of this area",
                          (unsigned long long)p);
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    if ((cls = small_class(a, p, &start)) >= 0) {
        c = dsm__area_my_cache(a, false);
        if (c && c->count[cls] >= dsm__area_class_cap[cls])
            rc = flush_class(a, c, (unsigned)cls);
        if (rc == 0 && c) {
            *(dsm_pointer *)(void *)resolve(a, p) = c->head[cls];
            c->head[cls] = p;
            c->count[cls]++;
        } else if (rc == 0) {
            a->hdr->class_out[cls]--;
            rc = span_put(a, p);
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
    if (__builtin_expect((cls = small_class(a, p, &start)) < 0, 0))
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
