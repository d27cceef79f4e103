/* SPDX-License-Identifier: MIT */
/*
 * dynshm/registry.h - named shared memory: find a segment, an area or a
 * hash table by name instead of passing its handle around.
 *
 * The first process to ask for a name creates the object and runs the
 * caller's initialiser on it, exactly once; every process that asks while
 * that runs waits, then attaches; later callers attach at once.  A process
 * keeps what it got by name for its whole life (the mapping is pinned, as
 * PostgreSQL's GetNamedDSMSegment does): asking again for the same name
 * returns the same object, from a cache that takes no lock.  Do not detach
 * a named object yourself while its entry exists.
 *
 * The initialiser may fail (return a negative code): the object is
 * destroyed, no entry is left, and that code is returned to its caller;
 * a waiter then tries to create it itself.  If the initialising process
 * dies (SIGKILL included), its half-made object is destroyed and the next
 * caller initialises afresh; nobody ever attaches an object whose
 * initialiser did not return 0.
 *
 * dsm_named_delete() removes an entry: later requests for the name create
 * a new object; the old one lives until the last process that maps it
 * detaches (or exits), then its memory is destroyed.
 *
 * Names are 1 to DSM_NAMED_MAX_LEN bytes, NUL-terminated.  The registry
 * itself lives in an area the first caller creates; a crash reset
 * forgets it with every segment.
 *
 * Error convention: see dynshm/common.h.
 */
#ifndef DYNSHM_REGISTRY_H
#define DYNSHM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dynshm/area.h>
#include <dynshm/common.h>
#include <dynshm/dsm.h>
#include <dynshm/hash.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DSM_NAMED_MAX_LEN 63

typedef enum dsm_named_type {
    DSM_NAMED_SEGMENT = 1,
    DSM_NAMED_AREA = 2,
    DSM_NAMED_HASH = 3
} dsm_named_type;

/* Initialisers: 0 on success, a negative code to give up (nothing is left). */
typedef int (*dsm_named_segment_init)(void *address, size_t size, void *arg);
typedef int (*dsm_named_area_init)(dsm_area *area, void *arg);
typedef int (*dsm_named_hash_init)(dsm_hash *table, void *arg);

/*
 * Get the segment named `name`, of `size` bytes: create and initialise it
 * (init may be NULL: the memory is zero) or attach the existing one.
 * *found (may be NULL) says which.  An existing entry of another type or
 * size is an error (-EEXIST, with both in the message).
 */
DSM_EXPORT int dsm_named_segment_get(const char *name, size_t size, dsm_named_segment_init init,
                                     void *arg, dsm_segment **out, bool *found);

/* The same for an area (options: as dsm_area_create(), only at creation). */
DSM_EXPORT int dsm_named_area_get(const char *name, const dsm_area_options *options,
                                  dsm_named_area_init init, void *arg, dsm_area **out,
                                  bool *found);

/*
 * The same for a hash table in an area of its own.  params are checked
 * against the existing table's (key kind and size, entry size, funcs_id).
 */
DSM_EXPORT int dsm_named_hash_get(const char *name, const dsm_hash_params *params,
                                  dsm_named_hash_init init, void *arg, dsm_hash **out,
                                  bool *found);

/*
 * Remove the entry: 0, -ENOENT if there is none, -EBUSY while its
 * initialiser runs.  Its memory goes when the last process detaches.
 */
DSM_EXPORT int dsm_named_delete(const char *name);

/* One entry, as dsm_named_list() reports it. */
typedef struct dsm_named_info {
    char name[DSM_NAMED_MAX_LEN + 1];
    dsm_named_type type;
    bool ready;          /* false while its initialiser runs (or died in it) */
    pid_t initialiser;   /* the process that created it (or is creating it) */
    dsm_handle handle;   /* the segment, or the area's handle */
    uint64_t size;       /* segment bytes; area or table: the area's total size when listed */
    uint32_t holders;    /* processes mapping it (the first segment's mappings) */
    int64_t created_usec; /* µs since the epoch */
} dsm_named_info;

/*
 * Every entry, in no particular order: *out (free with free()) and *count.
 * 0 and an empty list when no name was ever registered.
 */
DSM_EXPORT int dsm_named_list(dsm_named_info **out, size_t *count);

/* "segment", "area", "hash table" (or "unknown"). */
DSM_EXPORT const char *dsm_named_type_name(dsm_named_type type);

#ifdef __cplusplus
}
#endif

#endif /* DYNSHM_REGISTRY_H */
