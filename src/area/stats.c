/* SPDX-License-Identifier: MIT */
/*
 * stats.c - what an area knows about itself: statistics, trimming, the
 * debug dump, and returning what dead processes held.
 *
 * A process that dies leaves two things in an area besides the blocks it
 * allocated: its per-thread caches of free objects and its attachment.
 * Both record the owner's identity, so whoever holds the area lock can
 * test them with dsm__procid_alive() and give them back.  That happens
 * when the supervisor reclaims the dead worker (through the reclaim
 * listener, if the supervisor has the area attached), and otherwise
 * whenever any process attaches, detaches, trims or asks for statistics:
 * exact accounting does not depend on the supervisor mapping the area.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <dynshm/dsm.h>

#include "../dsm/services.h"
#include "area_int.h"

static int reclaim_matching(dsm_area *a, const struct dsm__procid *who)
{
    struct cache *caches = a->caches;
    struct attach_ent *t = a->attach;
    int n = 0, rc = 0;

    for (uint32_t i = 0; i < a->ncaches; i++) {
        struct cache *c = &caches[i];
        struct dsm__procid id = c->owner;

        if (id.pid == 0)
            continue;
        if (who ? !dsm__procid_same(&id, who) : dsm__procid_alive(&id))
            continue;
        if (c->magic != CACHE_MAGIC) {
            rc = dsm__area_corrupt(a, "cache slot");
            continue;
        }
        if (dsm__area_flush_cache(a, c, 0) < 0)
            rc = -1;
        AREA_STEP();
        c->owner.pid = 0;
        n++;
    }
    for (uint32_t i = 0; i < a->nattach; i++) {
        struct dsm__procid id = t[i].id;

        if (id.pid == 0)
            continue;
        if (who ? !dsm__procid_same(&id, who) : dsm__procid_alive(&id))
            continue;
        t[i].id.pid = 0;
        n++;
    }
    return rc < 0 ? rc : n;
}

int dsm__area_reclaim_dead(dsm_area *a)
{
    return reclaim_matching(a, NULL);
}

int dsm__area_reclaim_proc(dsm_area *a, const struct dsm__procid *dead)
{
    return reclaim_matching(a, dead);
}

int dsm_area_stats_get(dsm_area *a, dsm_area_stats *out)
{
    struct area_hdr *h;
    struct cache *caches;
    uint64_t cached[NCLASS] = {0}, large_cached = 0;
    int rc;

    if (a == NULL || out == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    memset(out, 0, sizeof(*out));
    h = a->hdr;
    out->inconsistent = __atomic_load_n(&h->inconsistent, __ATOMIC_RELAXED) != 0;
    dsm__area_sync_freed(a);
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    dsm__area_reclaim_dead(a);
    caches = a->caches;
    for (uint32_t i = 0; i < a->ncaches; i++) {
        if (caches[i].owner.pid == 0)
            continue;
        for (unsigned c = 0; c < NCLASS; c++)
            cached[c] += __atomic_load_n(&caches[i].count[c], __ATOMIC_RELAXED);
        for (unsigned k = 0; k < LARGE_SLOTS; k++)
            if (__atomic_load_n(&caches[i].large[k], __ATOMIC_RELAXED))
                large_cached += caches[i].large_pages[k];
    }
    out->total_size = h->total_size;
    for (unsigned c = 0; c < NCLASS; c++) {
        uint64_t outn = h->class_out[c];
        uint64_t used = outn > cached[c] ? outn - cached[c] : 0;

        out->class_size[c] = dsm__area_class_size[c];
        out->class_in_use[c] = used * dsm__area_class_size[c];
        out->bytes_in_use += used * dsm__area_class_size[c];
        out->bytes_cached += cached[c] * dsm__area_class_size[c];
    }
    out->large_in_use = (h->large_pages > large_cached ? h->large_pages - large_cached : 0) * PAGE;
    out->bytes_cached += large_cached * PAGE;
    out->bytes_in_use += out->large_in_use;
    for (uint32_t s = 0; s < h->nsegs && s < a->nsegs; s++) {
        struct seg_hdr *sh;
        struct pg *pm;

        if (s > 0 && a->segtab[s].handle == 0)
            continue;
        if (a->map[s].base == NULL && dsm__area_map(a, s) < 0)
            continue;
        out->segments++;
        sh = a->sh[s];
        pm = a->pm[s];
        out->free_pages_bytes += sh->free_pages * PAGE;
        for (unsigned b = 0; b < NBINS; b++) {
            uint32_t guard = 0;

            for (uint32_t p = sh->bins[b]; p != NIL && p < a->np[s] && ++guard <= a->np[s];
                 p = pm[p].next)
                if (pm[p].npages * PAGE > out->largest_free_run)
                    out->largest_free_run = pm[p].npages * PAGE;
        }
    }
    dsm__area_unlock(a);
    out->fragmentation = out->free_pages_bytes
                             ? 1.0 - (double)out->largest_free_run / (double)out->free_pages_bytes
                             : 0.0;
    return 0;
}

int dsm_area_trim(dsm_area *a)
{
    dsm_handle gone[DSM_AREA_MAX_SEGMENTS];
    struct area_hdr *h;
    struct cache *c;
    uint32_t ngone = 0;
    int rc;

    if (a == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    h = a->hdr;
    dsm__area_sync_freed(a);
    c = dsm__area_my_cache(a, false);
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    dsm__area_reclaim_dead(a);
    if (c && (rc = dsm__area_flush_cache(a, c, 0)) < 0)
        goto out;
    if ((rc = dsm__area_release_empty_spans(a)) < 0)
        goto out;
    for (uint32_t s = 1; s < h->nsegs && s < a->nsegs; s++) {
        struct seg_ent *st = &a->segtab[s];
        struct seg_hdr *sh;

        if (st->handle == 0 || (a->map[s].base == NULL && dsm__area_map(a, s) < 0))
            continue;
        sh = a->sh[s];
        if (sh->free_pages != a->np[s] - a->fp[s])
            continue;
        gone[ngone++] = st->handle;
        AREA_STEP();
        __atomic_store_n(&st->handle, 0, __ATOMIC_RELEASE);
        h->total_size -= st->size;
        st->size = 0;
        AREA_STEP();
    }
    while (h->nsegs > 1 && h->nsegs <= a->nsegs && a->segtab[h->nsegs - 1].handle == 0)
        h->nsegs--;
    if (ngone)
        __atomic_add_fetch(&h->freed_gen, 1, __ATOMIC_RELEASE);
    /* Unpinned under the lock: a new segment cannot reuse the slot before. */
    for (uint32_t i = 0; i < ngone; i++)
        dsm_unpin_segment(gone[i]);
    rc = (int)ngone;
out:
    dsm__area_unlock(a);
    dsm__area_sync_freed(a); /* our own mappings of what went */
    return rc;
}

static const char *kind_name(unsigned k)
{
    static const char *const names[] = {"none", "free", "free-tail", "large", "span", "span-page", "large (cached)"};

    return k < DSM_ARRAY_LEN(names) ? names[k] : "?";
}

int dsm_area_dump(dsm_area *a, FILE *f)
{
    dsm_area_stats st;
    struct area_hdr *h;
    int rc;

    if (a == NULL || f == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area or stream");
    if ((rc = dsm_area_stats_get(a, &st)) < 0)
        return rc;
    h = a->hdr;
    fprintf(f, "area %016" PRIx64 ": %zu bytes in %u segment(s), limit %" PRIu64 "%s%s\n",
            h->area_id, st.total_size, st.segments, h->max_total_size,
            h->in_place ? ", in place" : "", st.inconsistent ? ", INCONSISTENT" : "");
    fprintf(f, "  in use %zu bytes (large %zu), cached %zu, free pages %zu, largest free run "
               "%zu, fragmentation %.3f\n", st.bytes_in_use, st.large_in_use, st.bytes_cached,
            st.free_pages_bytes, st.largest_free_run, st.fragmentation);
    for (unsigned c = 0; c < NCLASS; c++)
        if (st.class_in_use[c] || h->partial[c] != NIL)
            fprintf(f, "  class %2u (%5zu bytes): %zu bytes in use%s\n", c, st.class_size[c],
                    st.class_in_use[c], h->partial[c] != NIL ? ", has partial spans" : "");
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    for (uint32_t s = 0; s < h->nsegs && s < a->nsegs; s++) {
        struct seg_hdr *sh;
        uint32_t p;

        if ((s > 0 && a->segtab[s].handle == 0) ||
            (a->map[s].base == NULL && dsm__area_map(a, s) < 0))
            continue;
        sh = a->sh[s];
        fprintf(f, "  segment %u: handle %016" PRIx64 ", %u pages (%u metadata), %u free\n", s,
                a->segtab[s].handle, sh->npages, sh->first_page, sh->free_pages);
        for (p = a->fp[s]; p < a->np[s];) {
            const struct pg *e = &a->pm[s][p];
            uint32_t n = e->kind == PG_NONE || e->kind == PG_SPAN || e->npages == 0 ? 1 : e->npages;

            if (e->kind == PG_SPAN_HEAD)
                fprintf(f, "    page %u: span of class %u, %u page(s), %u free, %u carved\n", p,
                        e->cls, n, e->nfree, e->carved);
            else if (e->kind != PG_NONE && e->kind != PG_SPAN)
                fprintf(f, "    page %u: %s, %u page(s)\n", p, kind_name(e->kind), n);
            p += n > a->np[s] - p ? a->np[s] - p : n;
        }
    }
    dsm__area_unlock(a);
    return 0;
}
