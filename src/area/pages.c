/* SPDX-License-Identifier: MIT */
/*
 * pages.c - the memory of an area: size classes, runs of pages, spans.
 *
 * Every segment's pages are described by its page map (area_int.h).  Free
 * runs sit in per-segment bins by log2 of their length, first fit within a
 * bin, and are coalesced with both neighbours when freed, so a segment
 * whose blocks are all freed becomes one free run and dsm_area_trim() can
 * give it back -- PostgreSQL's free-page manager is the model, our runs
 * are simpler (no B-tree: a segment holds at most 2^22 pages and the bins
 * keep the search short).  A span is a run cut into objects of one class;
 * spans with free objects are linked per class across segments, and an
 * empty span goes back to the pages unless it is its class's last.
 *
 * Everything here runs under the area lock and validates what it reads
 * from the page map before following it; a walk of a shared list is
 * bounded by what the area could hold.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "area_int.h"

uint32_t dsm__area_class_size[NCLASS];
uint32_t dsm__area_class_pages[NCLASS];
uint32_t dsm__area_class_cap[NCLASS];
uint64_t dsm__area_class_inv[NCLASS]; /* ceil-ish 2^40 / size: exact object index for spans */
uint32_t dsm__area_class_capacity[NCLASS];

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
        dsm__area_class_capacity[c] = (uint32_t)((uint64_t)pages * PAGE / size);
        dsm__area_class_inv[c] = ((UINT64_C(1) << 40) / size) + 1;
        cap = 128 * 1024 / size;
        dsm__area_class_cap[c] = cap < 4 ? 4 : cap > 1024 ? 1024 : cap;
    }
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
uint64_t dsm__area_walk_bound(dsm_area *a, uint32_t unit)
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

int dsm__area_alloc_pages(dsm_area *a, uint32_t n, uint32_t *seg_out, uint32_t *page_out)
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

    if ((rc = dsm__area_alloc_pages(a, n, &s, &p)) < 0)
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
    pm[p].nfree = dsm__area_class_capacity[cls];
    pm[p].kind = PG_SPAN_HEAD;
    AREA_STEP();
    *ref_out = pack_ref(s, p);
    return partial_push(a, cls, *ref_out, &pm[p]);
}

/* One object of class cls from the spans (locked). */
int dsm__area_span_take(dsm_area *a, unsigned cls, dsm_pointer *out)
{
    uint32_t ref = a->hdr->partial[cls], size = dsm__area_class_size[cls], s, off;
    struct pg *hd;
    int rc;

    if (ref == NIL && (rc = new_span(a, cls, &ref)) < 0)
        return rc;
    if ((hd = pg_at(a, ref)) == NULL || hd->kind != PG_SPAN_HEAD || hd->cls != cls ||
        hd->nfree == 0 || hd->nfree > dsm__area_class_capacity[cls] || hd->carved > dsm__area_class_capacity[cls])
        return dsm__area_corrupt(a, "span header");
    s = REF_SEG(ref);
    if (hd->free_head != 0) {
        uint64_t o = (uint64_t)(hd->free_head - 1) * 16, base = (uint64_t)REF_PAGE(ref) * PAGE;

        if (o < base || o >= base + (uint64_t)hd->carved * size || (o - base) % size)
            return dsm__area_corrupt(a, "span free list");
        off = (uint32_t)o;
        hd->free_head = *(uint32_t *)(void *)(a->map[s].base + off);
    } else {
        if (hd->carved >= dsm__area_class_capacity[cls])
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

/* Give small object p back to its span (locked). */
int dsm__area_span_put(dsm_area *a, dsm_pointer p)
{
    uint32_t s = DSM_POINTER_SEGMENT(p), start, ref;
    struct pg *hd;
    int cls, rc;

    if (dsm__area_resolve(a, p) == NULL)
        return -EINVAL;
    if ((cls = dsm__area_small_class(a, p, &start)) < 0)
        return dsm__area_corrupt(a, "a cached block is not a small block");
    hd = &a->pm[s][start];
    if (hd->nfree >= dsm__area_class_capacity[cls])
        return dsm__area_corrupt(a, "span count");
    *(uint32_t *)(void *)(a->map[s].base + DSM_POINTER_OFFSET(p)) = hd->free_head;
    hd->free_head = (uint32_t)(DSM_POINTER_OFFSET(p) / 16) + 1;
    hd->nfree++;
    AREA_STEP();
    ref = pack_ref(s, start);
    if (hd->nfree == 1 && (rc = partial_push(a, (unsigned)cls, ref, hd)) < 0)
        return rc;
    if (hd->nfree == dsm__area_class_capacity[cls] &&
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
        uint64_t guard = 0, bound = dsm__area_walk_bound(a, (uint32_t)(4 * PAGE));

        while (ref != NIL) {
            struct pg *hd = pg_at(a, ref);
            uint32_t next, s = REF_SEG(ref), start = REF_PAGE(ref);
            int rc;

            if (hd == NULL || hd->kind != PG_SPAN_HEAD || ++guard > bound)
                return dsm__area_corrupt(a, "span list");
            next = hd->next;
            if (hd->nfree == dsm__area_class_capacity[cls]) {
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
