/* SPDX-License-Identifier: MIT */
/*
 * dynshm/toc.h - a table of contents at the start of a shared buffer.
 *
 * Processes that share a segment need to agree where things are in it: "the
 * queue to worker 3 starts here", "the job description is there".  A table
 * of contents, written once at the start of the segment, maps 64-bit keys
 * to offsets (never addresses: every process maps the segment elsewhere)
 * and hands out aligned chunks of the space behind it.  One process
 * creates it; any process that maps the buffer attaches and looks keys up
 * without taking a lock, in constant time (an open-addressing hash table
 * sized at creation).  Inserts and allocations are lock free too and may
 * run in several processes at once; entries are never removed.
 *
 * Everything read from the shared header is validated: a table whose magic,
 * version or bounds are wrong is DSM_ECORRUPT, and an offset found by a
 * lookup is checked against the buffer's size before it becomes a pointer.
 *
 * Error convention: see dynshm/common.h.
 */
#ifndef DYNSHM_TOC_H
#define DYNSHM_TOC_H

#include <stddef.h>
#include <stdint.h>

#include <dynshm/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsm_toc dsm_toc;

/* Every chunk dsm_toc_allocate() returns starts on this boundary (a cache line). */
#define DSM_TOC_ALIGN 64

/*
 * Sizing a buffer before creating it: start with dsm_toc_estimator_init(),
 * add each chunk that will be allocated and the number of keys, then ask
 * dsm_toc_estimate() for the number of bytes to create.
 */
typedef struct dsm_toc_estimator {
    size_t space; /* bytes of chunks, each rounded up to DSM_TOC_ALIGN */
    size_t nkeys;
} dsm_toc_estimator;

DSM_EXPORT void dsm_toc_estimator_init(dsm_toc_estimator *e);
DSM_EXPORT void dsm_toc_estimate_chunk(dsm_toc_estimator *e, size_t size);
DSM_EXPORT void dsm_toc_estimate_keys(dsm_toc_estimator *e, size_t nkeys);
/* Bytes needed for the table and every chunk; SIZE_MAX if that overflows. */
DSM_EXPORT size_t dsm_toc_estimate(const dsm_toc_estimator *e);

/*
 * Create a table for up to max_keys keys at base (size bytes, aligned to
 * 8 bytes at least), overwriting whatever is there, and return this
 * process's handle on it.  -ENOSPC if the table itself does not fit.
 */
DSM_EXPORT int dsm_toc_create(void *base, size_t size, size_t max_keys, dsm_toc **out);

/*
 * Attach a table another process created at base (this process's mapping
 * of the same buffer, size bytes).  DSM_ECORRUPT if it fails validation.
 */
DSM_EXPORT int dsm_toc_attach(void *base, size_t size, dsm_toc **out);

/* Free this process's handle; the shared table is untouched.  NULL is fine. */
DSM_EXPORT void dsm_toc_release(dsm_toc *toc);

/*
 * Take size bytes (rounded up to DSM_TOC_ALIGN) from the free space behind
 * the table; *addr is this process's address of the chunk.  -ENOSPC when
 * the buffer is full.  Chunks are never freed.
 */
DSM_EXPORT int dsm_toc_allocate(dsm_toc *toc, size_t size, void **addr);

/*
 * Publish key (any value but 0) -> addr, an address inside the buffer (it
 * is stored as an offset).  Readers in other processes see the entry as
 * soon as this returns, and see everything written before the call (the
 * entry is published with release ordering).  -EEXIST if the key is taken,
 * -ENOSPC if max_keys keys are already in the table, -EINVAL for key 0 or
 * an address outside the buffer.
 */
DSM_EXPORT int dsm_toc_insert(dsm_toc *toc, uint64_t key, const void *addr);

/*
 * Find key: *addr is this process's address of what was inserted.
 * -ENOENT if no such key (yet), DSM_ECORRUPT if the entry fails its bounds
 * check.  Lock free, constant time.
 */
DSM_EXPORT int dsm_toc_lookup(const dsm_toc *toc, uint64_t key, void **addr);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_TOC_H */
