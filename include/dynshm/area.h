/* SPDX-License-Identifier: MIT */
/*
 * dynshm/area.h - dynamic shared areas: a heap in shared memory made of
 * dsm segments, addressed by relative pointers valid in every process.
 *
 * An area starts as one segment (or as a region inside a segment the
 * caller already has, "in place") and grows by adding segments of
 * geometrically growing size, up to a configurable limit.  Any process may
 * create one and hand its handle to others, who attach by it.  Allocation
 * returns a dsm_pointer, not an address: convert it in each process with
 * dsm_area_get_address() (or the inline dsm_area_address()), which maps
 * the segment it names on first use.
 *
 * dsm_pointer layout (64 bits):
 *   bits  0..47  byte offset inside the segment (segments are < 16 GiB);
 *   bits 48..57  segment index (0 is the area's first segment; at most
 *                DSM_AREA_MAX_SEGMENTS segments);
 *   bits 58..63  zero.
 * 0 (DSM_POINTER_INVALID) never names a block: segment 0 starts with the
 * area's own header.  Blocks are 16-byte aligned (page-aligned above 32 KiB).
 *
 * Lifetime, like a segment's: an attachment belongs to the current resource
 * owner (released with it) unless its mapping is pinned; the area lives
 * while some process is attached or it is pinned, and then its segments are
 * destroyed.  dsm_worker_exit() detaches every area (its callbacks run).
 * exit() runs no callback (dsm's rule), and a killed process none at all:
 * their caches and attachments are returned by the supervisor's reclaim of
 * a dead worker (which also destroys an unpinned area that the dead worker
 * was the last to attach), and otherwise by the next process that attaches, detaches,
 * trims, reads statistics, or is about to grow the area -- a process that
 * no longer runs is found by its identity, so statistics are always exact.
 *
 * A dead process inside the allocator: a process killed while it holds an
 * area's lock leaves the area *inconsistent*: every later call that needs
 * the lock (and every allocation or free) fails with -ENOTRECOVERABLE, and
 * the supervisor's crash action for that worker is a reset unless its crash
 * hook decides otherwise.  A process killed anywhere else leaves the area
 * consistent: the blocks it cached for speed go back to the area when the
 * supervisor reclaims it, or when another process asks for statistics,
 * trims, attaches or detaches.  Blocks it had allocated stay allocated.
 *
 * Threads: every call may be made from any number of threads at once,
 * except that detaching (and dsm_area_trim()'s cache flush of the calling
 * thread) must not race with other threads using the same dsm_area.  Each
 * thread keeps a small cache of free blocks per size class inside the area
 * (DSM_AREA_DEFAULT_CACHES of them per area), so allocation and free of
 * small blocks take no lock in the common case.
 *
 * Error convention: see dynshm/common.h.
 */
#ifndef DYNSHM_AREA_H
#define DYNSHM_AREA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <dynshm/common.h>
#include <dynshm/dsm.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsm_area dsm_area;

typedef uint64_t dsm_pointer;
#define DSM_POINTER_INVALID ((dsm_pointer)0)
#define DSM_POINTER_IS_VALID(p) ((p) != DSM_POINTER_INVALID)
#define DSM_POINTER_OFFSET_BITS 48
#define DSM_AREA_MAX_SEGMENTS 1024
#define DSM_POINTER_SEGMENT(p) ((uint32_t)((p) >> DSM_POINTER_OFFSET_BITS))
#define DSM_POINTER_OFFSET(p) ((uint64_t)(p) & ((UINT64_C(1) << DSM_POINTER_OFFSET_BITS) - 1))
#define DSM_POINTER_MAKE(seg, off) \
    (((dsm_pointer)(seg) << DSM_POINTER_OFFSET_BITS) | (dsm_pointer)(off))

/* dsm_area_allocate() flags. */
#define DSM_AREA_ALLOC_ZERO 0x1   /* fill the block with zeros */
#define DSM_AREA_ALLOC_NO_OOM 0x2 /* out of memory: succeed with DSM_POINTER_INVALID */
#define DSM_AREA_ALLOC_HUGE 0x4   /* allow more than DSM_AREA_MAX_ALLOC bytes */
#define DSM_AREA_MAX_ALLOC ((size_t)1 << 30)

#define DSM_AREA_DEFAULT_CACHES 64

/* Creation options; NULL, or 0 in a field, means the default. */
typedef struct dsm_area_options {
    size_t init_segment_size; /* first segment (default 1 MiB; in place: the region) */
    size_t max_segment_size;  /* largest segment the area adds (default 1 GiB) */
    size_t max_total_size;    /* size limit of all segments together (default: none) */
    unsigned max_segments;    /* segment table size (default 1024; in place 16) */
    unsigned caches;          /* per-thread caches (default 64; in place: by size) */
} dsm_area_options;

/* ---- life cycle ---------------------------------------------------------- */

DSM_EXPORT int dsm_area_create(const dsm_area_options *options, dsm_area **out);

/*
 * Create an area whose first segment is the size bytes at place (16-byte
 * aligned; at least 64 KiB), typically inside a segment with a table of
 * contents.  host, if not NULL, is the segment holding place: detaching it
 * detaches the area.  Further segments, if the area grows, are ordinary
 * dsm segments.
 */
DSM_EXPORT int dsm_area_create_in_place(void *place, size_t size,
                                        const dsm_area_options *options, dsm_segment *host,
                                        dsm_area **out);

/* Attach an area by handle (-EEXIST if this process already has it attached). */
DSM_EXPORT int dsm_area_attach(dsm_handle handle, dsm_area **out);
DSM_EXPORT int dsm_area_attach_in_place(void *place, dsm_segment *host, dsm_area **out);

/* Return this thread's cache, release this process's reference, unmap; area is freed. */
DSM_EXPORT int dsm_area_detach(dsm_area *area);

/* The handle others attach by (DSM_HANDLE_INVALID for an in-place area). */
DSM_EXPORT dsm_handle dsm_area_handle(const dsm_area *area);

/* Keep the area alive with nobody attached, until dsm_area_unpin(). */
DSM_EXPORT int dsm_area_pin(dsm_area *area);
DSM_EXPORT int dsm_area_unpin(dsm_area *area);

/* Session lifetime for this process's attachment (not released with the owner). */
DSM_EXPORT int dsm_area_pin_mapping(dsm_area *area);
DSM_EXPORT int dsm_area_unpin_mapping(dsm_area *area);

/* ---- allocation ---------------------------------------------------------- */

DSM_EXPORT int dsm_area_allocate(dsm_area *area, size_t size, int flags, dsm_pointer *out);
DSM_EXPORT int dsm_area_free(dsm_area *area, dsm_pointer p);

/* Address of p in this process (mapping its segment if needed); NULL and an
 * error message if p does not name memory of this area. */
DSM_EXPORT void *dsm_area_get_address(dsm_area *area, dsm_pointer p);

/* Sum of the sizes of the area's segments, and the limit on that sum. */
DSM_EXPORT size_t dsm_area_total_size(dsm_area *area);
DSM_EXPORT int dsm_area_set_size_limit(dsm_area *area, size_t limit);

#define DSM_AREA_NCLASSES 72

typedef struct dsm_area_stats {
    size_t total_size;        /* bytes of all segments */
    unsigned segments;        /* live segments */
    size_t bytes_in_use;      /* blocks allocated and not freed (class size, or pages) */
    size_t bytes_cached;      /* free blocks held in per-thread caches */
    size_t free_pages_bytes;  /* bytes of free pages */
    size_t largest_free_run;  /* bytes of the largest run of free pages */
    double fragmentation;     /* 1 - largest_free_run / free_pages_bytes (0 if none free) */
    size_t large_in_use;      /* bytes of large (page-run) blocks in use */
    size_t class_size[DSM_AREA_NCLASSES];
    size_t class_in_use[DSM_AREA_NCLASSES]; /* bytes per size class in use */
    bool inconsistent;
} dsm_area_stats;

/* Statistics (after returning the caches of dead processes to the area). */
DSM_EXPORT int dsm_area_stats_get(dsm_area *area, dsm_area_stats *out);

/* Return this thread's cache and every empty span, then destroy every
 * segment (other than the first) that is entirely free.  Returns the number
 * of segments destroyed. */
DSM_EXPORT int dsm_area_trim(dsm_area *area);

/* Write a description of the area (segments, classes, free runs) to f. */
DSM_EXPORT int dsm_area_dump(dsm_area *area, FILE *f);

/* ---- inline conversion --------------------------------------------------- */

/* The start of struct dsm_area, for the inline fast path only. */
struct dsm__area_map {
    char *base;     /* mapped address of the segment, or NULL */
    uint64_t limit; /* its mapped length */
};

struct dsm__area_view {
    struct dsm__area_map map[DSM_AREA_MAX_SEGMENTS];
};

/*
 * dsm_area_get_address() without a call when the segment is already
 * mapped: one table load.  Like PostgreSQL's dsa_get_address() it trusts
 * the offset of a pointer into a mapped segment (an offset past the
 * segment's end gives an address past it); pointers from places you do not
 * trust go through dsm_area_get_address(), which checks the bounds.
 * DSM_POINTER_INVALID gives NULL.  Bits 58 to 63 are ignored here.
 */
static inline void *dsm_area_address(dsm_area *area, dsm_pointer p)
{
    const struct dsm__area_view *v = (const struct dsm__area_view *)(const void *)area;
    char *b = v->map[DSM_POINTER_SEGMENT(p) & (DSM_AREA_MAX_SEGMENTS - 1)].base;

    if (b != NULL && p != DSM_POINTER_INVALID)
        return b + DSM_POINTER_OFFSET(p);
    return dsm_area_get_address(area, p);
}

/* ---- pointers inside one mapping ------------------------------------------- */

/*
 * An offset pointer (as Boost's offset_ptr) stores the distance from itself
 * to its target, so a structure linked with them can be copied or mapped
 * anywhere as long as source and target stay in one mapping.  0 means NULL
 * (a pointer to itself cannot be stored).
 */
typedef struct dsm_offptr {
    int64_t delta;
} dsm_offptr;

static inline void dsm_offptr_set(dsm_offptr *p, const void *target)
{
    p->delta = target ? (int64_t)((intptr_t)target - (intptr_t)p) : 0;
}

static inline void *dsm_offptr_get(const dsm_offptr *p)
{
    return p->delta ? (void *)((intptr_t)p + (intptr_t)p->delta) : NULL;
}

/* Offsets from the start of a segment: portable between segments' users too. */
static inline uint64_t dsm_segment_offset_of(const void *base, const void *addr)
{
    return (uint64_t)((const char *)addr - (const char *)base);
}

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_AREA_H */
