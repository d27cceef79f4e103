/* SPDX-License-Identifier: MIT */
/*
 * area_int.h - the shared layout of an area and each process's view of it;
 * never installed.
 *
 * Shared memory (every field is validated before it is followed):
 *
 *   segment 0  [struct area_hdr][attach table][cache slots][struct seg_hdr][page map][pages]
 *   segment k  [struct seg_hdr][page map][pages]                      (k >= 1)
 *
 * Pages are PAGE bytes, counted from the segment's start; the first pages
 * hold the metadata above.  Every page has a 32-byte entry in its
 * segment's page map saying what it is: the head or tail of a free run
 * (free runs sit in per-segment bins by log2 of their length, linked by
 * page number), the head of a large block, or a page of a span (a run of
 * pages cut into objects of one size class).  Spans with free objects are
 * linked, across segments, in their class's partial list; a span keeps its
 * own free list as 32-bit offsets in units of 16 bytes inside the segment.
 *
 * Per-thread caches (struct cache) also keep a few freed large blocks (up
 * to 1 MiB) whole, each published by one store of its pointer.
 *
 * Per-thread caches (struct cache) hold free objects per class as a chain
 * of dsm_pointers stored in the objects' first 8 bytes.  Only the owning
 * thread touches a cache, without a lock; the head is changed by one
 * store, so a cache is a valid chain at every instant and a dead owner's
 * cache can be walked and returned (its count is only a hint then).
 *
 * Everything else changes under the area lock (a dsm_lock), inside a
 * dsm__critical section so that a death there escalates the crash action.
 */
#ifndef DYNSHM_AREA_INT_H
#define DYNSHM_AREA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <dynshm/area.h>
#include <dynshm/lock.h>

#include "../common/internal.h"
#include "../common/procid.h"

#include <string.h>

#define PAGE_SHIFT 12
#define PAGE ((uint64_t)1 << PAGE_SHIFT)
#define NCLASS DSM_AREA_NCLASSES
#define SMALL_MAX 32768u
#define NBINS 24
#define NIL 0xffffffffu
#define MAX_SEG_PAGES (UINT32_C(1) << 22) /* 16 GiB: page links pack in 22 bits */

#define AREA_MAGIC UINT64_C(0x41455241444d5344) /* "DSMDAREA" */
#define SEG_MAGIC UINT64_C(0x47455341444d5344)  /* "DSMDASEG" */
#define CACHE_MAGIC 0x43414348u
#define AREA_VERSION 1u

enum pg_kind {
    PG_NONE = 0,
    PG_FREE_HEAD,
    PG_FREE_TAIL,
    PG_LARGE,
    PG_SPAN_HEAD,
    PG_SPAN,
    PG_LARGE_CACHED /* a large block freed into its owner's cache */
};

/* Large blocks up to LARGE_CACHE_MAX_PAGES are cached per thread too, at most
 * LARGE_SLOTS of them and LARGE_CACHE_PAGES pages in all. */
#define LARGE_SLOTS 8
#define LARGE_CACHE_MAX_PAGES 256
#define LARGE_CACHE_PAGES 1024

/* One page's entry (32 bytes). */
struct pg {
    uint8_t kind;
    uint8_t cls;      /* span head: size class */
    uint16_t reserved;
    uint32_t npages;  /* free head/tail, large, span head: run length */
    uint32_t start;   /* free head/tail, span pages: first page of the run */
    uint32_t nfree;   /* span head: free objects (list + not yet carved) */
    uint32_t carved;  /* span head: objects carved so far */
    uint32_t prev, next; /* free head: bin links (page); span head: partial list (packed) */
    uint32_t free_head;  /* span head: first free object, (offset / 16) + 1; 0 none */
};

struct seg_hdr {
    uint64_t magic;
    uint64_t area_id;
    uint32_t index;
    uint32_t npages;      /* pages in the segment (metadata included) */
    uint32_t first_page;  /* first page available for blocks */
    uint32_t free_pages;
    uint32_t bins[NBINS]; /* heads of free runs by floor(log2(length)) */
};

struct seg_ent {
    dsm_handle handle; /* 0: unused slot (segment 0: the area's handle or 0 in place) */
    uint64_t size;
};

struct attach_ent {
    struct dsm__procid id; /* pid 0: free */
};

struct cache {
    uint32_t magic;
    uint32_t reserved;
    struct dsm__procid owner; /* pid 0: free */
    uint64_t tid;
    dsm_pointer head[NCLASS];
    uint32_t count[NCLASS];
    dsm_pointer large[LARGE_SLOTS];      /* published last: 0 means empty */
    uint32_t large_pages[LARGE_SLOTS];
};

struct area_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;     /* bytes before segment 0's struct seg_hdr */
    uint64_t area_id;
    dsm_lock lock;
    uint32_t inconsistent; /* a process died holding the lock */
    uint32_t in_place;
    uint32_t pinned;
    uint32_t nattach;      /* attach table entries */
    uint32_t ncaches;
    uint32_t nsegmax;      /* segment table entries */
    uint32_t nsegs;        /* segment indexes in use are below this */
    uint32_t freed_gen;    /* bumped when a segment is destroyed */
    uint64_t seg0_size;
    uint64_t init_seg_size, max_seg_size, max_total_size;
    uint64_t total_size;
    uint64_t large_pages;  /* pages of large blocks in use */
    uint64_t class_out[NCLASS];  /* objects out of the spans: in caches or in use */
    uint32_t partial[NCLASS];    /* packed (segment, page) of spans with free objects */
    uint32_t attach_off, caches_off, segtab_off, seg0hdr_off;
};

static inline uint32_t pack_ref(uint32_t seg, uint32_t page)
{
    return (seg << 22) | page;
}
#define REF_SEG(r) ((r) >> 22)
#define REF_PAGE(r) ((r)&0x3fffffu)

/* ---- per process ------------------------------------------------------- */

struct dsm_area {
    /* struct dsm__area_view: must stay first (the inline fast path reads it).
     * Every per-segment array has DSM_AREA_MAX_SEGMENTS entries. */
    struct dsm__area_map map[DSM_AREA_MAX_SEGMENTS]; /* mapped address and length */
    uint32_t nsegs;           /* = hdr->nsegmax, validated at attach */

    struct area_hdr *hdr;
    struct seg_hdr **sh;      /* per segment: its header, or NULL if unmapped */
    struct pg **pm;           /* per segment: its page map */
    dsm_segment **seg;        /* per segment: our dsm mapping (NULL: in place seg 0) */
    dsm_handle *handle;       /* per segment: handle of what we map */
    uint32_t *np, *fp;        /* per segment: pages and first page, validated when mapped */
    /* Validated once at attach: never re-read from shared memory. */
    struct cache *caches;
    struct attach_ent *attach;
    struct seg_ent *segtab;
    uint32_t ncaches, nattach;
    pthread_mutex_t mu;       /* guards mappings */
    uint32_t seen_gen;
    uint64_t id;              /* unique in this process image */
    dsm_segment *host;        /* in place: the segment holding it */
    bool detaching;
    bool mapping_pinned;
    struct dsm_area *next;    /* registry of this process's areas */
};

/* Size classes (computed once; the same in every process). */
extern uint32_t dsm__area_class_size[NCLASS];
extern uint32_t dsm__area_class_pages[NCLASS];
extern uint32_t dsm__area_class_cap[NCLASS];
void dsm__area_classes_init(void);

static inline unsigned size_class(size_t size)
{
    unsigned lg;

    if (size <= 128)
        return (unsigned)((size - 1) >> 4);
    lg = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    return 8u + (lg - 7u) * 8u + (unsigned)((size - 1) >> (lg - 3u)) - 8u;
}

static inline struct cache *area_caches(struct area_hdr *h)
{
    return (struct cache *)(void *)((char *)h + h->caches_off);
}
static inline struct attach_ent *area_attach(struct area_hdr *h)
{
    return (struct attach_ent *)(void *)((char *)h + h->attach_off);
}
static inline struct seg_ent *area_segtab(struct area_hdr *h)
{
    return (struct seg_ent *)(void *)((char *)h + h->segtab_off);
}

/* Test hook: called at every step of a locked update (kill points). */
extern void (*dsm__area_step_hook)(void);
#define AREA_STEP()                  \
    do {                             \
        if (dsm__area_step_hook)     \
            dsm__area_step_hook();   \
    } while (0)

/* area.c */
int dsm__area_lock(dsm_area *a);
void dsm__area_unlock(dsm_area *a);
int dsm__area_map(dsm_area *a, uint32_t s);        /* map segment s (mu not held) */
int dsm__area_new_segment(dsm_area *a, uint64_t min_pages, uint32_t *out); /* locked */
void dsm__area_sync_freed(dsm_area *a);            /* unmap segments freed by others */
int dsm__area_corrupt(dsm_area *a, const char *what);
void dsm__seg_init(struct seg_hdr *sh, struct pg *pm, uint64_t area_id, uint32_t index,
                   uint32_t npages, uint32_t first_page);

/* pages.c: size classes, runs of pages, spans (all locked but the class tables) */
extern uint64_t dsm__area_class_inv[NCLASS];      /* ~2^40 / size: exact object index */
extern uint32_t dsm__area_class_capacity[NCLASS]; /* objects per span */
uint64_t dsm__area_walk_bound(dsm_area *a, uint32_t unit);
int dsm__area_alloc_pages(dsm_area *a, uint32_t n, uint32_t *seg_out, uint32_t *page_out);
int dsm__area_span_take(dsm_area *a, unsigned cls, dsm_pointer *out);
int dsm__area_span_put(dsm_area *a, dsm_pointer p);

/* Address of p, mapping its segment if needed; NULL (error set) if p is not in the area. */
static inline char *dsm__area_resolve(dsm_area *a, dsm_pointer p)
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

/*
 * The span entry and class of small object p (no lock: the entries of an
 * allocated object's span do not change).  Returns the class or -1.
 */
static inline int dsm__area_small_class(dsm_area *a, dsm_pointer p, uint32_t *head_page)
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
    idx = ((uint64_t)delta * dsm__area_class_inv[cls]) >> 40;
    if (idx * dsm__area_class_size[cls] != delta || idx >= hd->carved)
        return -1;
    *head_page = start;
    return (int)cls;
}


/* alloc.c */
struct cache *dsm__area_my_cache(dsm_area *a, bool create);
int dsm__area_flush_cache(dsm_area *a, struct cache *c, uint32_t keep); /* locked */
void dsm__area_forget_caches(dsm_area *a);  /* this thread's TLS entries for a */
int dsm__area_free_pages(dsm_area *a, uint32_t s, uint32_t page, uint32_t n); /* locked */
int dsm__area_release_empty_spans(dsm_area *a); /* locked */

/* stats.c */
int dsm__area_reclaim_dead(dsm_area *a);     /* locked: caches and attachments of the dead */
int dsm__area_reclaim_proc(dsm_area *a, const struct dsm__procid *dead); /* locked */

#endif /* DYNSHM_AREA_INT_H */
