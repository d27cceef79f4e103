/* SPDX-License-Identifier: MIT */
/*
 * dynshm/hash.h - a concurrent hash table in a dynamic shared area, usable
 * by every process attached to the area at once.
 *
 * The table is split into partitions (a power of two, 128 by default),
 * chosen by the high bits of a key's hash.  Each partition is an
 * open-addressing table (linear probing, entries stored inline) of its own
 * in a block of the area, with its own robust lock and version counter,
 * and grows by doubling and shrinks by halving on its own: no single
 * operation ever rehashes more than one partition, i.e. about n / P
 * entries (the worst-case pause, and only writers of that partition wait
 * for it).  A partition that empties gives its block back to the area.
 *
 * Keys are fixed-size binary (key_size bytes) or strings (NUL-terminated,
 * at most key_size - 1 bytes; the entry holds them in a key_size buffer).
 * An entry is entry_size bytes and begins with its key.  Hash and compare
 * functions are given by each process, at create and at attach: function
 * pointers mean nothing in another process, so the table records only a
 * number (funcs_id) that every attacher must repeat.  NULL selects the
 * built-in functions for the key kind.
 *
 * Locking: dsm_hash_find(), dsm_hash_find_or_insert() and a scan hand out
 * a pointer to an entry with its partition locked; it stays valid until
 * dsm_hash_release() (or dsm_hash_delete_entry()).  Hold at most one
 * entry, or one scan, at a time per thread: the locks are not recursive,
 * and a second partition lock could deadlock.  The lock is exclusive in
 * both modes (DSM_HASH_SHARED is accepted and documented as a hint);
 * readers that only need a copy use dsm_hash_lookup(), which takes no lock
 * and writes nothing shared: it reads optimistically and validates the
 * read against the partition's version counter, falling back to the lock
 * after a few failed attempts.
 *
 * A dead process: one killed while holding a partition lock (found entry,
 * insert, delete, resize, scan) leaves the table *inconsistent*, by the
 * area's rule: every later operation fails with -ENOTRECOVERABLE, and the
 * supervisor's crash action for that worker is a reset unless its crash
 * hook decides otherwise.  A process killed anywhere else leaves the table
 * consistent.
 *
 * Error convention: see dynshm/common.h.  Operations that find return 1
 * (found) or 0 (not found), and a negative code on error.
 */
#ifndef DYNSHM_HASH_H
#define DYNSHM_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dynshm/area.h>
#include <dynshm/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsm_hash dsm_hash;

/* What other processes attach by: the relative pointer of the table's header. */
typedef dsm_pointer dsm_hash_handle;

typedef uint64_t (*dsm_hash_hash_fn)(const void *key, size_t key_size, void *arg);
/* 0 when the keys are equal. */
typedef int (*dsm_hash_compare_fn)(const void *a, const void *b, size_t key_size, void *arg);

#define DSM_HASH_KEY_BINARY 0
#define DSM_HASH_KEY_STRING 1

#define DSM_HASH_DEFAULT_PARTITIONS 128
#define DSM_HASH_MAX_PARTITIONS 4096
#define DSM_HASH_MAX_KEY_SIZE 4096
#define DSM_HASH_MAX_ENTRY_SIZE 65536

/* The parameter block, given at create and again (the same) at attach. */
typedef struct dsm_hash_params {
    size_t key_size;             /* binary: its bytes; string: buffer bytes, NUL included */
    size_t entry_size;           /* whole entry, key first (>= key_size) */
    int key_kind;                /* DSM_HASH_KEY_BINARY or DSM_HASH_KEY_STRING */
    unsigned partitions;         /* power of two; 0: DSM_HASH_DEFAULT_PARTITIONS (create only) */
    uint32_t funcs_id;           /* names the hash/compare pair; attach must match */
    dsm_hash_hash_fn hash;       /* NULL: built-in for the kind */
    dsm_hash_compare_fn compare; /* NULL: built-in for the kind */
    void *arg;                   /* passed to both */
} dsm_hash_params;

/* dsm_hash_find() and scan flags. */
#define DSM_HASH_SHARED 0x0
#define DSM_HASH_EXCLUSIVE 0x1

/* ---- life cycle ---------------------------------------------------------- */

DSM_EXPORT int dsm_hash_create(dsm_area *area, const dsm_hash_params *params, dsm_hash **out);
DSM_EXPORT int dsm_hash_attach(dsm_area *area, dsm_hash_handle handle,
                               const dsm_hash_params *params, dsm_hash **out);
DSM_EXPORT dsm_hash_handle dsm_hash_get_handle(const dsm_hash *table);
/* Forget this process's view (the table stays). */
DSM_EXPORT int dsm_hash_detach(dsm_hash *table);
/* Free every block of the table and this view; nobody else may still use it. */
DSM_EXPORT int dsm_hash_destroy(dsm_hash *table);

/* ---- operations ---------------------------------------------------------- */

/* 1 and *entry (partition locked), or 0 (nothing locked). */
DSM_EXPORT int dsm_hash_find(dsm_hash *table, const void *key, int flags, void **entry);
/* 1 found or 0 inserted (entry zeroed, key copied), *entry locked either way. */
DSM_EXPORT int dsm_hash_find_or_insert(dsm_hash *table, const void *key, void **entry);
/* Unlock an entry from find/find_or_insert. */
DSM_EXPORT int dsm_hash_release(dsm_hash *table, void *entry);
/* Delete a found (locked) entry and unlock it. */
DSM_EXPORT int dsm_hash_delete_entry(dsm_hash *table, void *entry);
/* 1 deleted or 0 absent. */
DSM_EXPORT int dsm_hash_delete_key(dsm_hash *table, const void *key);
/* Copy the entry (entry_size bytes) into *copy without taking a lock: 1 or 0. */
DSM_EXPORT int dsm_hash_lookup(dsm_hash *table, const void *key, void *copy);

/* ---- sequential scan ----------------------------------------------------- */

/*
 * A scan visits partitions one after the other, holding one partition's
 * lock while it returns that partition's entries.  Guarantee: an entry
 * present for the whole scan is returned exactly once; one inserted or
 * deleted during the scan is returned at most once.  Only the scanning
 * thread may delete the current entry (dsm_hash_scan_delete_current); it
 * must not call other operations on the table until dsm_hash_scan_end().
 */
typedef struct dsm_hash_scan {
    dsm_hash *table;
    uint64_t opaque[6];
} dsm_hash_scan;

DSM_EXPORT int dsm_hash_scan_begin(dsm_hash *table, int flags, dsm_hash_scan *scan);
/* 1 and *entry, or 0 at the end (no lock held then). */
DSM_EXPORT int dsm_hash_scan_next(dsm_hash_scan *scan, void **entry);
DSM_EXPORT int dsm_hash_scan_delete_current(dsm_hash_scan *scan);
DSM_EXPORT int dsm_hash_scan_end(dsm_hash_scan *scan);

/* ---- statistics and checking ------------------------------------------- */

typedef struct dsm_hash_stats {
    uint64_t entries;     /* sum of the partitions' counts */
    uint64_t slots;       /* sum of the partitions' capacities */
    size_t bytes;         /* area bytes the table holds (header and arrays) */
    unsigned partitions;
    uint64_t largest_partition; /* entries in the fullest partition */
    bool inconsistent;
} dsm_hash_stats;

DSM_EXPORT int dsm_hash_stats_get(dsm_hash *table, dsm_hash_stats *out);

/*
 * Check every invariant, locking each partition in turn: every entry lies
 * in the partition its hash names and is reachable from its home slot, no
 * key appears twice, each count is exact and each capacity a power of two
 * within bounds.  0, or DSM_ECORRUPT with a message saying what is wrong.
 */
DSM_EXPORT int dsm_hash_validate(dsm_hash *table);

/* The built-in functions, for callers who wrap them. */
DSM_EXPORT uint64_t dsm_hash_bytes(const void *key, size_t key_size, void *arg);
DSM_EXPORT uint64_t dsm_hash_string(const void *key, size_t key_size, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_HASH_H */
