/* SPDX-License-Identifier: MIT */
/*
 * region.h - the preallocated region (min_dynamic_shared_memory): one
 * object made at start-up that small segments are carved from without a
 * system call.  See region.c for the allocator and why it is built so.
 */
#ifndef DYNSHM_REGION_H
#define DYNSHM_REGION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dsm_impl_int.h"

#define DSM_REGION_MAGIC UINT64_C(0x4e47455248534d44) /* "DMSHREGN" little-endian */
#define DSM_REGION_VERSION 1
#define DSM_REGION_PAGE 4096u
/* The largest region: page numbers stay well inside 32 bits. */
#define DSM_REGION_MAX_SIZE ((uint64_t)1 << 40)
/* seg->reserved[1] of a segment served from the region (reserved[0] is -1). */
#define DSM_REGION_MARK INT64_C(0x4e4f49474552) /* "REGION" */

/* One control slot's region segment; handle 0 when the slot has none. */
struct dsm_region_ext {
    uint64_t handle;   /* written last on allocation, cleared first on free */
    uint64_t size;     /* bytes asked for (what attach maps and checks) */
    uint32_t start;    /* first page */
    uint32_t npages;
};

/*
 * The region's first bytes.  The geometry is written once and covered by
 * the checksum; the rest is under `lock`.  Layout:
 *   header | ext[nslots] | used | dirty | released | (page-aligned) pages
 */
struct dsm_region_header {
    uint64_t magic;            /* stored last at creation */
    uint32_t version;
    uint32_t page_size;
    uint64_t instance_id;
    uint64_t handle;
    uint64_t total_size;       /* of the whole object */
    uint32_t npages, nslots;
    uint64_t ext_off, used_off, dirty_off, released_off, data_off;
    uint32_t release_pages;    /* dirty free pages above which they are given back */
    uint32_t can_release;      /* MADV_REMOVE and MADV_POPULATE_WRITE work here */
    uint64_t checksum;
    /* Mutable, under lock; derived from the extent table (repair recomputes). */
    uint32_t hint;             /* every page below is used */
    uint32_t free_pages, dirty_pages, released_pages, segments;
    uint32_t pad;
    uint64_t allocs, frees, releases, released_total, populates, repairs, corruptions;
    pthread_mutex_t lock;
} __attribute__((aligned(64)));

/* Is seg a segment carved from the region (not an object of its own)? */
static inline bool dsm__region_seg(const dsm_impl_segment *seg)
{
    return seg->reserved[1] == DSM_REGION_MARK;
}

/* The region's handle, derived from the control segment's: whoever can
 * find the control segment after a crash can find the region. */
dsm_handle dsm__region_handle(dsm_handle control);

/*
 * Supervisor: create the region object (through the instance's backend,
 * reserved like any segment) with `size` bytes of pages for a control
 * table of nslots slots, initialise it and map it into inst (inst->region).
 * Errors name the setting.
 */
int dsm__region_create(dsm_impl_instance *inst, dsm_handle handle, uint64_t size,
                       uint32_t nslots);

/*
 * A worker that joined through the state file: map the region and
 * validate its header (DSM_ECORRUPT or DSM_EFOREIGN with a message; nothing
 * stays mapped then).
 */
int dsm__region_attach(dsm_impl_instance *inst, dsm_handle handle, uint64_t size,
                       uint32_t nslots);

/* Validate a mapped region header without trusting anything in it. */
int dsm__region_validate(const void *addr, size_t len, uint64_t instance_id,
                         dsm_handle handle);

/* Unmap the region from this process (it lives on).  Never fails. */
void dsm__region_detach(dsm_impl_instance *inst);

/*
 * Carve a segment for handle (whose low 32 bits are its control slot).
 * 0: served, *seg filled (zeroed memory, no system call unless the pages
 * had been given back to the OS); 1: not served (too large or full: the
 * caller falls back to the backend); < 0: an error (a corrupt region).
 */
int dsm__region_alloc(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                      dsm_impl_segment *seg);

/*
 * dsm__region_alloc() in two steps, for a caller that carves under its own
 * lock (the control lock: dsm_create() reserves, carves and publishes in
 * one section) and prepares the memory after releasing it.  carve: as
 * alloc, without touching the pages; *prep says what prepare must do.
 * prepare: populate released pages and zero dirty ones; 1 if the system
 * has no memory for them (the pages are then given back and the caller
 * must destroy the segment and fall back), else 0.
 */
#define DSM_REGION_DIRTY 0x1u
#define DSM_REGION_RELEASED 0x2u
int dsm__region_carve(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                      dsm_impl_segment *seg, unsigned *prep);
int dsm__region_prepare(dsm_impl_instance *inst, dsm_impl_segment *seg, unsigned prep);

/*
 * The caller is about to call carve or free under a lock of its own (on),
 * or has released it (off): the log line of a repair waits until then.
 */
void dsm__region_nest(bool on);

/* Map a region segment by handle: 0, or -ENOENT if handle is not one. */
int dsm__region_lookup(const dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg);

/* Return a region segment's pages: 0, or -ENOENT if handle is not one. */
int dsm__region_free(dsm_impl_instance *inst, dsm_handle handle);

/* The region's mapping in this process (tests and operators), or NULL. */
const dsm_impl_segment *dsm__region_map(const dsm_impl_instance *inst);

/* A snapshot of the allocator for tests and operators (under its lock). */
struct dsm__region_stats {
    uint64_t size;            /* bytes of pages */
    uint32_t pages, free_pages, dirty_pages, released_pages, segments;
    uint64_t allocs, frees, releases, released_total, populates, repairs, corruptions;
};
int dsm__region_stats(dsm_impl_instance *inst, struct dsm__region_stats *out);

/* Check every invariant (lock taken); returns the number of problems, the first in why. */
unsigned dsm__region_verify(dsm_impl_instance *inst, char *why, size_t len);

#endif /* DYNSHM_REGION_H */
