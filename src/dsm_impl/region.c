/* SPDX-License-Identifier: MIT */
/*
 * region.c - the preallocated region: small segments without system calls.
 *
 * Creating a segment costs the operating system's floor (open, reserve,
 * map, unlink: ~15 us for 4 KiB here) and attaching one costs an open and
 * an mmap.  With min_dynamic_shared_memory set, the supervisor makes one
 * object at start-up, through the instance's own backend, and every
 * process maps it: forked workers inherit the mapping (it is, with the
 * control segment, the one mapping a child should inherit), exec'd workers
 * map it when they attach.  A segment that fits is then a run of the
 * region's pages: create, attach and detach touch only memory, and destroy
 * gives the pages back.  Everything above (refcounts, pins, resource
 * owners, reclaim, dsmctl) is unchanged: a region segment still has its
 * control slot and its handle, and the backend switch (dsm_impl.c) sends
 * attach, detach and destroy of such a handle here.
 *
 * The allocator.  Pages are 4 KiB; three bitmaps say, per page, whether it
 * is used, dirty (may hold a freed segment's bytes) and released (given
 * back to the OS).  A segment is a first-fit run found from `hint`, the
 * lowest page that may be free, so a create-destroy loop at any number of
 * live segments touches the same few words (flat to 100,000 live), and
 * freeing lowers the hint.  Why a bitmap and not a free-extent list or
 * PostgreSQL's FreePageManager (a btree of free runs): the bitmap is the
 * whole truth in a fixed place, so a crash repair is one pass that
 * recomputes it, and a scribble cannot send us through a chain of
 * pointers; its cost (a run search that can walk a fragmented stretch) is
 * paid only when small holes sit below the hint.
 *
 * What is primary and what is derived.  The primary fact is the extent
 * table, one entry per control slot (the handle's low 32 bits): the
 * handle, first page and page count of that slot's region segment.  An
 * entry's handle is written last when allocating and cleared first when
 * freeing, so a process killed at any instruction leaves either a whole
 * entry or none; the bitmaps and counts are derived.  The lock is a
 * process-shared robust mutex: the next locker after a dead holder
 * rebuilds `used` from the entries (a page used by no entry becomes free
 * and dirty), recounts, and continues -- a worker killed inside the
 * allocator never wedges or corrupts the others.  An entry whose creator
 * died before publishing its slot is freed by whoever finishes that slot
 * (reclaim, reset, shut-down), since destroy of a handle asks here first.
 * Everything read from shared memory is checked against this process's
 * own copy of the geometry before it is followed: a bad entry or hint is
 * counted as a corruption, the derived state is rebuilt and the call
 * fails with DSM_ECORRUPT, never a wild access.
 *
 * Zeroing and giving back.  Pages are zeroed when handed out (not when
 * freed), outside the lock, and only if dirty: fresh and released pages
 * are already zero, so a new segment never shows another's bytes whoever
 * freed them and however they died.  When the dirty free pages exceed a
 * threshold (a quarter of the region, at least 1 MiB), the free dirty runs
 * are given back with madvise(MADV_REMOVE) (a hole punched in the object)
 * so a burst does not pin memory for ever.  A released page has no
 * backing store any more: before it is handed out again it is populated
 * with MADV_POPULATE_WRITE, which fails with ENOMEM where a plain write
 * would SIGBUS, and the create then falls back to the backend (whose own
 * reservation reports the shortage).  That is the region's one system
 * call on the create path, and only after a release.
 *
 * Locks: the region lock is taken alone, or nested under the control lock
 * (dsm_create() carves inside the reservation's section, and a last detach
 * frees inside the release's: one control-lock round trip each instead of
 * three), never the other way round.  Zeroing and populating happen after
 * both are released (dsm__region_prepare()).  The test hook DSM_CTL_STEP()
 * marks every point between two stores, so test/check_region.c can kill a
 * process inside the allocator.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../common/robust_mutex.h"
#include "../control/control.h" /* the kill-point hook only (DSM_CTL_STEP) */
#include "region.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define NONE UINT32_MAX

/* This process's view: geometry copied from a validated header, never re-read. */
struct dsm__region {
    dsm_impl_segment map;
    struct dsm_region_header *hdr;
    struct dsm_region_ext *ext;
    uint64_t *used, *dirty, *released;
    char *data;
    uint32_t npages, nslots, nwords;
};

/*
 * A repair found while locking is logged after unlocking (the log hook may
 * call us), and after the caller's own lock too when it nests ours
 * (dsm__region_nest()).
 */
static _Thread_local uint64_t pending_repair = UINT64_MAX;
static _Thread_local bool nested;

static void report_repair(void)
{
    uint64_t fixes = pending_repair;

    if (fixes == UINT64_MAX)
        return;
    pending_repair = UINT64_MAX;
    dsm__log(DSM_LOG_WARNING, "a process died inside the dynamic shared memory region's "
                              "allocator; its page map was rebuilt (%llu fixes)",
             (unsigned long long)fixes);
}

void dsm__region_nest(bool on)
{
    nested = on;
    if (!on)
        report_repair();
}

dsm_handle dsm__region_handle(dsm_handle control)
{
    dsm_handle h = control ^ UINT64_C(0x9e3779b97f4a7c15);

    return h == DSM_HANDLE_INVALID ? 1 : h;
}

static uint64_t checksum(const struct dsm_region_header *h, uint64_t magic)
{
    struct dsm_region_header copy;

    memcpy(&copy, h, offsetof(struct dsm_region_header, checksum));
    copy.magic = magic;
    return dsm__fnv1a64(&copy, offsetof(struct dsm_region_header, checksum));
}

/* ---- geometry ---------------------------------------------------------------- */

struct geometry {
    uint64_t ext_off, used_off, dirty_off, released_off, data_off, total;
    uint32_t nwords;
};

static uint64_t round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

static void layout(uint32_t npages, uint32_t nslots, struct geometry *g)
{
    g->nwords = (npages + 63) / 64;
    g->ext_off = round_up(sizeof(struct dsm_region_header), 64);
    g->used_off = round_up(g->ext_off + (uint64_t)nslots * sizeof(struct dsm_region_ext), 64);
    g->dirty_off = g->used_off + (uint64_t)g->nwords * 8;
    g->released_off = g->dirty_off + (uint64_t)g->nwords * 8;
    g->data_off = round_up(g->released_off + (uint64_t)g->nwords * 8, DSM_REGION_PAGE);
    g->total = g->data_off + (uint64_t)npages * DSM_REGION_PAGE;
}

static void bind(struct dsm__region *r, void *addr, uint32_t npages, uint32_t nslots)
{
    struct geometry g;
    char *base = addr;

    layout(npages, nslots, &g);
    r->hdr = addr;
    r->ext = (struct dsm_region_ext *)(void *)(base + g.ext_off);
    r->used = (uint64_t *)(void *)(base + g.used_off);
    r->dirty = (uint64_t *)(void *)(base + g.dirty_off);
    r->released = (uint64_t *)(void *)(base + g.released_off);
    r->data = base + g.data_off;
    r->npages = npages;
    r->nslots = nslots;
    r->nwords = g.nwords;
}

/* ---- bits ---------------------------------------------------------------------- */

static bool bit(const uint64_t *map, uint32_t i)
{
    return (map[i >> 6] >> (i & 63)) & 1;
}

static void set_bits(uint64_t *map, uint32_t start, uint32_t n, bool on)
{
    for (uint32_t i = start; i < start + n; i++) {
        uint64_t m = UINT64_C(1) << (i & 63);

        if (on)
            map[i >> 6] |= m;
        else
            map[i >> 6] &= ~m;
    }
}

static uint32_t count_bits(const uint64_t *map, uint32_t start, uint32_t n)
{
    uint32_t c = 0;

    for (uint32_t i = start; i < start + n; i++)
        c += bit(map, i);
    return c;
}

/* First run of n free pages at or after `from`, or NONE.  Full words are skipped whole. */
static uint32_t find_run(const struct dsm__region *r, uint32_t from, uint32_t n)
{
    uint32_t i = from, start = from, run = 0;

    while (i < r->npages) {
        if ((i & 63) == 0 && r->used[i >> 6] == UINT64_MAX) {
            i += 64;
            start = i;
            run = 0;
            continue;
        }
        if (bit(r->used, i)) {
            run = 0;
            start = ++i;
            continue;
        }
        if (++run == n)
            return start;
        i++;
    }
    return NONE;
}

/* ---- repair ---------------------------------------------------------------------- */

/*
 * Rebuild the derived state from the extent table (lock held): `used` is
 * exactly the pages of valid entries; a page that was used and is no
 * longer becomes dirty (it may hold bytes).  An entry out of range or
 * overlapping an earlier one is a scribble: it is dropped (its pages then
 * belong to nobody; the segment's slot still names it, and its destroy
 * finds nothing) and counted.  Returns the number of fixes.
 */
static uint64_t repair(struct dsm__region *r)
{
    struct dsm_region_header *h = r->hdr;
    uint64_t *was = calloc(r->nwords ? r->nwords : 1, sizeof(uint64_t));
    uint64_t fixes = 0;
    uint32_t segs = 0;

    if (was != NULL)
        memcpy(was, r->used, (size_t)r->nwords * 8);
    memset(r->used, 0, (size_t)r->nwords * 8);
    for (uint32_t s = 0; s < r->nslots; s++) {
        struct dsm_region_ext *e = &r->ext[s];

        if (e->handle == 0)
            continue;
        if ((uint32_t)e->handle != s || e->npages == 0 || e->start >= r->npages ||
            e->npages > r->npages - e->start ||
            count_bits(r->used, e->start, e->npages) != 0) {
            DSM_CTL_STORE_FIRST(e->handle, 0);
            h->corruptions++;
            fixes++;
            continue;
        }
        set_bits(r->used, e->start, e->npages, true);
        segs++;
    }
    h->free_pages = h->dirty_pages = h->released_pages = 0;
    h->hint = NONE;
    for (uint32_t i = 0; i < r->npages; i++) {
        if (bit(r->used, i))
            continue;
        if (was == NULL || bit(was, i)) { /* freed by the repair (or unknown): may hold bytes */
            if (!bit(r->dirty, i) || bit(r->released, i))
                fixes++;
            set_bits(r->dirty, i, 1, true);
            set_bits(r->released, i, 1, false);
        }
        if (h->hint == NONE)
            h->hint = i;
        h->free_pages++;
        h->dirty_pages += bit(r->dirty, i);
        h->released_pages += bit(r->released, i) && !bit(r->dirty, i);
        if (bit(r->dirty, i) && bit(r->released, i))
            set_bits(r->released, i, 1, false); /* dirty wins: zeroed, and it has a page */
    }
    if (h->hint == NONE)
        h->hint = r->npages;
    if (segs != h->segments)
        fixes++;
    h->segments = segs;
    free(was);
    return fixes;
}

/* ---- the lock ---------------------------------------------------------------------- */

/*
 * Waits are sliced (src/common/robust_mutex.c): a holder SIGKILLed between
 * releasing the word and waking a waiter must cost a delay, not a hang.
 * Uncontended locking is one atomic, no system call.
 */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Sections under this lock are a few hundred nanoseconds: a short spin
 * (about a microsecond) finds it free far more often than not, where
 * sleeping would cost two system calls and a wake-up.
 */
#define REGION_SPINS 200

static int lock(struct dsm__region *r)
{
    struct dsm_region_header *h = r->hdr;
    int rc = pthread_mutex_trylock(&h->lock);

    for (int i = 0; rc == EBUSY && i < REGION_SPINS; i++) {
        cpu_relax();
        rc = pthread_mutex_trylock(&h->lock);
    }

    if (rc == EBUSY)
        rc = dsm__robust_mutex_lock(&h->lock, -1);
    if (rc == EOWNERDEAD) {
        pending_repair = repair(r);
        h->repairs++;
        pthread_mutex_consistent(&h->lock);
        return 0;
    }
    if (rc == ENOTRECOVERABLE)
        return dsm__error(DSM_ECORRUPT, "the dynamic shared memory region's lock is not "
                                        "recoverable; a crash reset is needed");
    if (rc != 0)
        return dsm__error(-rc, "could not lock the dynamic shared memory region: %s",
                          strerror(rc));
    return 0;
}

static void unlock(struct dsm__region *r)
{
    pthread_mutex_unlock(&r->hdr->lock);
    if (!nested)
        report_repair();
}

/* A damaged field found under the lock: count it, rebuild, and fail the call. */
static int corrupt(struct dsm__region *r, const char *what, uint64_t value)
{
    r->hdr->corruptions++;
    repair(r);
    return dsm__error(DSM_ECORRUPT, "the dynamic shared memory region is corrupt: %s (%llu); "
                                    "its page map was rebuilt", what, (unsigned long long)value);
}

/* ---- creation and attachment ---------------------------------------------------------- */

int dsm__region_validate(const void *addr, size_t len, uint64_t instance_id, dsm_handle handle)
{
    const struct dsm_region_header *h = addr;
    struct geometry g;

    if (len < sizeof(*h))
        return dsm__error(DSM_ECORRUPT, "the dynamic shared memory region is too small for its "
                                        "header (%zu bytes)", len);
    if (h->magic != DSM_REGION_MAGIC)
        return dsm__error(DSM_EFOREIGN, "the dynamic shared memory region has no dynshm region "
                                        "header (bad magic number)");
    if (h->version != DSM_REGION_VERSION)
        return dsm__error(DSM_EFOREIGN, "the dynamic shared memory region has layout version "
                                        "%u; this library reads %u", h->version,
                          DSM_REGION_VERSION);
    if (h->checksum != checksum(h, h->magic))
        return dsm__error(DSM_ECORRUPT, "the dynamic shared memory region's header is corrupt "
                                        "(checksum mismatch)");
    if (h->instance_id != instance_id || h->handle != handle)
        return dsm__error(DSM_EFOREIGN, "the dynamic shared memory region belongs to another "
                                        "instance");
    if (h->page_size != DSM_REGION_PAGE || h->npages == 0 ||
        (uint64_t)h->npages * DSM_REGION_PAGE > DSM_REGION_MAX_SIZE || h->nslots == 0 ||
        h->nslots > DSM_CONTROL_MAX_SLOTS)
        return dsm__error(DSM_ECORRUPT, "the dynamic shared memory region's header is corrupt "
                                        "(%u pages of %u bytes, %u slots)", h->npages,
                          h->page_size, h->nslots);
    layout(h->npages, h->nslots, &g);
    if (g.total != h->total_size || g.total > len || h->ext_off != g.ext_off ||
        h->used_off != g.used_off || h->dirty_off != g.dirty_off ||
        h->released_off != g.released_off || h->data_off != g.data_off)
        return dsm__error(DSM_ECORRUPT, "the dynamic shared memory region's header is corrupt "
                                        "(its layout does not match its size of %zu bytes)",
                          len);
    return 0;
}

/* Can released pages be had back without SIGBUS (MADV_POPULATE_WRITE, Linux 5.14)? */
static bool probe_release(struct dsm__region *r)
{
    return madvise(r->hdr, DSM_REGION_PAGE, MADV_POPULATE_WRITE) == 0;
}

static int too_large(uint64_t size, uint32_t nslots)
{
    int rc = dsm__error(-EINVAL, "min_dynamic_shared_memory = %llu bytes is larger than the "
                                 "largest region (%llu bytes)", (unsigned long long)size,
                        (unsigned long long)DSM_REGION_MAX_SIZE);

    (void)nslots;
    return dsm__errhint(rc, "Lower min_dynamic_shared_memory.");
}

int dsm__region_create(dsm_impl_instance *inst, dsm_handle handle, uint64_t size,
                       uint32_t nslots)
{
    struct dsm__region *r;
    struct dsm_region_header *h;
    struct geometry g;
    uint32_t npages;
    bool huge = inst->huge_active;
    int rc;

    if (size == 0 || size > DSM_REGION_MAX_SIZE)
        return too_large(size, nslots);
    if (nslots == 0 || nslots > DSM_CONTROL_MAX_SLOTS)
        return dsm__error(-EINVAL, "invalid slot count %u for the region", nslots);
    npages = (uint32_t)(round_up(size, DSM_REGION_PAGE) / DSM_REGION_PAGE);
    layout(npages, nslots, &g);
    if (g.total > DSM_IMPL_MAX_SIZE)
        return too_large(size, nslots);
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    /* Its size is recorded and checked on attach: never rounded to huge pages. */
    inst->huge_active = false;
    rc = dsm_impl_create(inst, handle, g.total, &r->map);
    inst->huge_active = huge;
    if (rc < 0) {
        char detail[512];

        snprintf(detail, sizeof(detail), "%s", dsm_errdetail());
        free(r);
        if (rc == -EEXIST)
            return dsm__error(-EEXIST, "the dynamic shared memory region's name is taken by "
                                       "another object");
        dsm__errdetail(rc, "It is the region of min_dynamic_shared_memory = %llu bytes (%llu "
                           "with its page map).%s%s", (unsigned long long)size,
                       (unsigned long long)g.total, detail[0] ? " " : "", detail);
        return dsm__errhint(rc, "Lower min_dynamic_shared_memory, or set it to 0.");
    }
    DSM_CTL_STEP(); /* a kill point: the object exists, its header does not */
    bind(r, r->map.address, npages, nslots);
    h = r->hdr;
    /* The object is new and zero: only the header needs writing. */
    h->version = DSM_REGION_VERSION;
    h->page_size = DSM_REGION_PAGE;
    h->instance_id = inst->id;
    h->handle = handle;
    h->total_size = g.total;
    h->npages = npages;
    h->nslots = nslots;
    h->ext_off = g.ext_off;
    h->used_off = g.used_off;
    h->dirty_off = g.dirty_off;
    h->released_off = g.released_off;
    h->data_off = g.data_off;
    h->release_pages = npages / 4 > 256 ? npages / 4 : 256;
    h->can_release = probe_release(r);
    h->hint = 0;
    h->free_pages = npages;
    if ((rc = dsm__robust_mutex_init(&h->lock)) != 0) {
        rc = dsm__error(-rc, "could not initialise the dynamic shared memory region's lock: %s",
                        strerror(rc));
        dsm_impl_detach(inst, &r->map);
        dsm_impl_destroy(inst, &r->map);
        free(r);
        return rc;
    }
    h->checksum = checksum(h, DSM_REGION_MAGIC);
    DSM_CTL_STORE_LAST(h->magic, DSM_REGION_MAGIC);
    inst->region = r;
    return 0;
}

int dsm__region_attach(dsm_impl_instance *inst, dsm_handle handle, uint64_t size,
                       uint32_t nslots)
{
    struct dsm__region *r = calloc(1, sizeof(*r));
    const struct dsm_region_header *h;
    int rc;

    if (r == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    rc = dsm_impl_attach(inst, handle, &r->map);
    if (rc < 0) {
        free(r);
        return dsm__error_prefix(rc, "could not map the dynamic shared memory region: ");
    }
    rc = dsm__region_validate(r->map.address, r->map.size, inst->id, handle);
    h = r->map.address;
    if (rc == 0 && (h->nslots != nslots ||
                    round_up(size, DSM_REGION_PAGE) != (uint64_t)h->npages * DSM_REGION_PAGE))
        rc = dsm__error(DSM_ECORRUPT, "the dynamic shared memory region (%u pages, %u slots) "
                                      "does not match the control segment's record",
                        h->npages, h->nslots);
    if (rc < 0) {
        dsm_impl_detach(inst, &r->map);
        free(r);
        return rc;
    }
    bind(r, r->map.address, h->npages, h->nslots);
    inst->region = r;
    return 0;
}

const dsm_impl_segment *dsm__region_map(const dsm_impl_instance *inst)
{
    return inst && inst->region ? &inst->region->map : NULL;
}

void dsm__region_detach(dsm_impl_instance *inst)
{
    struct dsm__region *r = inst ? inst->region : NULL;

    if (r == NULL)
        return;
    inst->region = NULL;
    if (r->map.address)
        dsm_impl_detach(inst, &r->map);
    free(r);
}

/* ---- segments ------------------------------------------------------------------------ */

static void fill(const struct dsm__region *r, dsm_handle handle, uint32_t start, size_t size,
                 dsm_impl_segment *seg)
{
    memset(seg, 0, sizeof(*seg));
    seg->handle = handle;
    seg->address = r->data + (size_t)start * DSM_REGION_PAGE;
    seg->size = size;
    seg->os_id = -1;
    seg->reserved[0] = -1;
    seg->reserved[1] = DSM_REGION_MARK;
}

/*
 * Give the free dirty pages back to the OS (lock held): each run is one
 * madvise(MADV_REMOVE).  A failure (a file system without hole punching)
 * stops releasing for good in this region.
 */
static void release(struct dsm__region *r)
{
    struct dsm_region_header *h = r->hdr;

    for (uint32_t i = 0; i < r->npages;) {
        uint32_t start, n;

        if ((i & 63) == 0 && r->dirty[i >> 6] == 0) {
            i += 64;
            continue;
        }
        if (!bit(r->dirty, i) || bit(r->used, i)) {
            i++;
            continue;
        }
        for (start = i; i < r->npages && bit(r->dirty, i) && !bit(r->used, i); i++)
            ;
        n = i - start;
        if (madvise(r->data + (size_t)start * DSM_REGION_PAGE, (size_t)n * DSM_REGION_PAGE,
                    MADV_REMOVE) != 0) {
            h->can_release = 0;
            dsm__log(DSM_LOG_INFO, "the dynamic shared memory region cannot give freed pages "
                                   "back to the system (%m); they stay allocated");
            return;
        }
        set_bits(r->released, start, n, true);
        DSM_CTL_STEP();
        set_bits(r->dirty, start, n, false);
        h->dirty_pages -= n;
        h->released_pages += n;
        h->released_total += n;
        h->releases++;
    }
}

/* Free an entry's pages (lock held, entry validated); `released`: they have no backing. */
static void free_locked(struct dsm__region *r, struct dsm_region_ext *e, bool released)
{
    struct dsm_region_header *h = r->hdr;
    uint32_t start = e->start, n = e->npages;

    DSM_CTL_STORE_FIRST(e->handle, 0); /* first: the pages stop belonging to it */
    DSM_CTL_STEP();
    set_bits(released ? r->released : r->dirty, start, n, true);
    DSM_CTL_STEP();
    set_bits(r->used, start, n, false);
    h->free_pages += n;
    if (released)
        h->released_pages += n;
    else
        h->dirty_pages += n;
    h->segments--;
    h->frees++;
    if (start < h->hint)
        h->hint = start;
    DSM_CTL_STEP();
    if (h->can_release && h->dirty_pages > h->release_pages)
        release(r);
}

/* A shared field this process is about to follow: in range, or a corruption. */
static int check_state(struct dsm__region *r)
{
    const struct dsm_region_header *h = r->hdr;

    if (h->magic != DSM_REGION_MAGIC || h->npages != r->npages || h->nslots != r->nslots)
        return dsm__error(DSM_ECORRUPT, "the dynamic shared memory region's header was "
                                        "overwritten");
    if (h->hint > r->npages || h->free_pages > r->npages || h->dirty_pages > h->free_pages ||
        h->released_pages > h->free_pages)
        return corrupt(r, "its counts are out of range", h->hint);
    return 0;
}

int dsm__region_carve(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                      dsm_impl_segment *seg, unsigned *prep)
{
    struct dsm__region *r = inst->region;
    struct dsm_region_header *h;
    uint32_t slot = (uint32_t)handle, n, start = 0;
    bool dirty = false, released = false;
    int rc;

    *prep = 0;
    if (r == NULL || size == 0 || size > (size_t)r->npages * DSM_REGION_PAGE)
        return 1;
    if (slot >= r->nslots)
        return dsm__error(-EINVAL, "handle %016llx names no slot of the region",
                          (unsigned long long)handle);
    n = (uint32_t)((size + DSM_REGION_PAGE - 1) / DSM_REGION_PAGE);
    h = r->hdr;
    if ((rc = lock(r)) < 0)
        return rc;
    if ((rc = check_state(r)) < 0)
        goto out;
    if (r->ext[slot].handle != 0) {
        /* A slot is reserved by one creator at a time: an entry here is a leftover. */
        rc = corrupt(r, "a new segment's slot already has pages", slot);
        goto out;
    }
    if (h->free_pages < n || (start = find_run(r, h->hint, n)) == NONE) {
        rc = 1;
        goto out;
    }
    set_bits(r->used, start, n, true);
    DSM_CTL_STEP();
    r->ext[slot].start = start;
    r->ext[slot].npages = n;
    r->ext[slot].size = size;
    DSM_CTL_STEP();
    DSM_CTL_STORE_LAST(r->ext[slot].handle, handle); /* last: now the pages are its */
    DSM_CTL_STEP();
    dirty = count_bits(r->dirty, start, n) != 0;
    released = count_bits(r->released, start, n) != 0;
    h->dirty_pages -= count_bits(r->dirty, start, n);
    h->released_pages -= count_bits(r->released, start, n);
    set_bits(r->dirty, start, n, false);
    set_bits(r->released, start, n, false);
    h->free_pages -= n;
    h->segments++;
    h->allocs++;
    if (start == h->hint)
        h->hint = start + n;
    if (released)
        h->populates++;
    rc = 0;
out:
    unlock(r);
    if (rc != 0)
        return rc;
    fill(r, handle, start, size, seg);
    *prep = (dirty ? DSM_REGION_DIRTY : 0) | (released ? DSM_REGION_RELEASED : 0);
    return 0;
}

int dsm__region_prepare(dsm_impl_instance *inst, dsm_impl_segment *seg, unsigned prep)
{
    struct dsm__region *r = inst->region;
    size_t len = (seg->size + DSM_REGION_PAGE - 1) / DSM_REGION_PAGE * DSM_REGION_PAGE;
    uint32_t slot = (uint32_t)seg->handle;

    /* The pages are this segment's alone until it is published: no lock. */
    if ((prep & DSM_REGION_RELEASED) && madvise(seg->address, len, MADV_POPULATE_WRITE) != 0) {
        /* No memory for them: give them back as released (a write would SIGBUS). */
        if (lock(r) == 0) {
            if (slot < r->nslots && r->ext[slot].handle == seg->handle)
                free_locked(r, &r->ext[slot], true);
            unlock(r);
        }
        return 1;
    }
    if (prep & DSM_REGION_DIRTY)
        memset(seg->address, 0, len);
    return 0;
}

int dsm__region_alloc(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                      dsm_impl_segment *seg)
{
    unsigned prep;
    int rc = dsm__region_carve(inst, handle, size, seg, &prep);

    if (rc == 0 && dsm__region_prepare(inst, seg, prep) != 0) {
        memset(seg, 0, sizeof(*seg));
        rc = 1;
    }
    return rc;
}

/* The entry of handle, validated (lock not needed: the caller holds a reference). */
static const struct dsm_region_ext *entry(const struct dsm__region *r, dsm_handle handle)
{
    uint32_t slot = (uint32_t)handle;
    const struct dsm_region_ext *e;

    if (slot >= r->nslots)
        return NULL;
    e = &r->ext[slot];
    if (DSM_CTL_LOAD(e->handle) != handle || e->npages == 0 || e->start >= r->npages ||
        e->npages > r->npages - e->start || e->size == 0 ||
        e->size > (uint64_t)e->npages * DSM_REGION_PAGE)
        return NULL;
    return e;
}

int dsm__region_lookup(const dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    const struct dsm__region *r = inst->region;
    const struct dsm_region_ext *e;

    if (r == NULL || (e = entry(r, handle)) == NULL)
        return -ENOENT;
    /* The caller checks the size against the control slot's record. */
    fill(r, handle, e->start, (size_t)e->size, seg);
    return 0;
}

int dsm__region_free(dsm_impl_instance *inst, dsm_handle handle)
{
    struct dsm__region *r = inst->region;
    uint32_t slot = (uint32_t)handle;
    int rc;

    if (r == NULL || slot >= r->nslots)
        return -ENOENT;
    if ((rc = lock(r)) < 0)
        return rc;
    if ((rc = check_state(r)) == 0) {
        struct dsm_region_ext *e = &r->ext[slot];

        if (e->handle != handle)
            rc = -ENOENT;
        else if (e->npages == 0 || e->start >= r->npages || e->npages > r->npages - e->start)
            rc = corrupt(r, "a segment's pages are out of range", slot);
        else
            free_locked(r, e, false);
    }
    unlock(r);
    return rc;
}

int dsm__region_stats(dsm_impl_instance *inst, struct dsm__region_stats *out)
{
    struct dsm__region *r = inst ? inst->region : NULL;
    const struct dsm_region_header *h;
    int rc;

    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return -ENOENT;
    if ((rc = lock(r)) < 0)
        return rc;
    h = r->hdr;
    out->size = (uint64_t)r->npages * DSM_REGION_PAGE;
    out->pages = r->npages;
    out->free_pages = h->free_pages;
    out->dirty_pages = h->dirty_pages;
    out->released_pages = h->released_pages;
    out->segments = h->segments;
    out->allocs = h->allocs;
    out->frees = h->frees;
    out->releases = h->releases;
    out->released_total = h->released_total;
    out->populates = h->populates;
    out->repairs = h->repairs;
    out->corruptions = h->corruptions;
    unlock(r);
    return 0;
}

unsigned dsm__region_verify(dsm_impl_instance *inst, char *why, size_t len)
{
    struct dsm__region *r = inst ? inst->region : NULL;
    const struct dsm_region_header *h;
    uint32_t used = 0, dirty = 0, released = 0, segs = 0, lowest = NONE;
    unsigned problems = 0;

#define PROBLEM(...)                                                                           \
    do {                                                                                       \
        if (problems++ == 0)                                                                   \
            snprintf(why, len, __VA_ARGS__);                                                   \
    } while (0)
    if (len)
        why[0] = '\0';
    if (r == NULL || lock(r) < 0)
        return 1;
    h = r->hdr;
    for (uint32_t s = 0; s < r->nslots; s++) {
        const struct dsm_region_ext *e = &r->ext[s];

        if (e->handle == 0)
            continue;
        segs++;
        if ((uint32_t)e->handle != s || e->start >= r->npages ||
            e->npages > r->npages - e->start)
            PROBLEM("entry %u is out of range", s);
        else if (count_bits(r->used, e->start, e->npages) != e->npages)
            PROBLEM("entry %u's pages are not all marked used", s);
        else
            used += e->npages;
    }
    for (uint32_t i = 0; i < r->npages; i++) {
        if (bit(r->used, i))
            continue;
        if (lowest == NONE)
            lowest = i;
        dirty += bit(r->dirty, i);
        released += bit(r->released, i);
        if (bit(r->dirty, i) && bit(r->released, i))
            PROBLEM("page %u is both dirty and released", i);
    }
    if (count_bits(r->used, 0, r->npages) != used)
        PROBLEM("%u pages marked used, %u belong to segments", count_bits(r->used, 0, r->npages),
                used);
    if (h->free_pages != r->npages - used)
        PROBLEM("free_pages %u, counted %u", h->free_pages, r->npages - used);
    if (h->dirty_pages != dirty || h->released_pages != released)
        PROBLEM("dirty/released %u/%u, counted %u/%u", h->dirty_pages, h->released_pages, dirty,
                released);
    if (h->segments != segs)
        PROBLEM("segments %u, counted %u", h->segments, segs);
    if (lowest != NONE && h->hint > lowest)
        PROBLEM("hint %u is above free page %u", h->hint, lowest);
    unlock(r);
#undef PROBLEM
    return problems;
}
