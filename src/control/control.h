/* SPDX-License-Identifier: MIT */
/*
 * control.h - the control segment: the shared table of every live segment.
 *
 * The supervisor creates it before any worker, through the same backend as
 * the segments it tracks, and records its handle in the state file before
 * creating it, so the next supervisor can find it after a kill -9 at any
 * moment.  It holds no pointers (each process maps it at its own address):
 * lists are chains of 32-bit indexes.
 *
 * Layout: header | slots[nslots] | procs[nprocs] | refs[nrefs]
 *   slot  one segment: handle, size, OS id, reference count, pin, state
 *   proc  one process using the facility: its identity, its ref list
 *   ref   one reference a process holds: a mapping, or a claim to finish
 *         destroying a segment whose count reached zero
 *
 * Slot states (the refcount states PostgreSQL's dsm.c names 0/1/2+):
 *   FREE      on the free list; `handle` keeps the last handle for reuse
 *             checks
 *   CREATING  reserved by a creator that holds a ref; the OS object may or
 *             may not exist yet (cleanup destroys it if it does)
 *   LIVE      exists; refcnt = number of mapping refs + (pinned ? 1 : 0)
 *   DYING     refcnt reached 0; one ref names it: the claim of the process
 *             destroying the OS object, after which the slot is FREE
 *
 * Who finishes each state, whatever crashed (the closure rule; the unit
 * suite test/check_control.c kills at every store and checks it):
 *   CREATING, ref of a live process   the creator publishes or abandons it
 *   LIVE with refs / pinned           holders detach; unpin; shut-down
 *   DYING, claim of a live process    that process frees the slot
 *   any state, ref of a dead process  the supervisor's reclaim (or reset)
 *   not FREE, no ref, not pinned      an orphan: repair turns it DYING and
 *                                     gives its claim to the supervisor
 *                                     (flag ORPHAN), which finishes it in
 *                                     dsm_supervisor_check_workers(); with
 *                                     no supervisor, the next destroy-all
 *   the whole table                   shut-down, crash reset and start-up
 *                                     destroy every non-FREE slot, freeing
 *                                     each only after its object is gone,
 *                                     so a killed pass is finished by the
 *                                     next one (dsm__control_destroy_all)
 *
 * Every operation takes the lock once and touches O(1) entries: the handle
 * encodes its slot index (low 32 bits) next to 32 random bits, so lookup is
 * an index plus a comparison, and free slots, procs and refs are stacks.
 * Every index read from the table is bound-checked before it is followed;
 * a bad one fails the operation with DSM_ECORRUPT and the table is rebuilt
 * from its primary facts (a same-user scribble is an error, not a crash).
 *
 * The lock is a process-shared robust mutex.  If its holder dies, the next
 * locker gets it with EOWNERDEAD and runs dsm__control_repair(), which
 * rebuilds everything derived (free lists, per-process lists, counts) from
 * the primary facts (slot states, ref entries) before anyone continues.
 *
 * Crash ordering.  Repair reads what a process left when it died between
 * two stores.  The primary facts are therefore written in a fixed order:
 * a ref's `slot` (what makes it count) last on allocation and first on
 * release; a slot's `state` last when it becomes CREATING, LIVE or DYING,
 * and first when it becomes FREE.  C does not order plain stores, so those
 * writes go through DSM_CTL_STORE_LAST / DSM_CTL_STORE_FIRST below.  Between
 * live processes the lock orders everything; the macros matter only for a
 * writer that dies mid-section, where only the compiler could reorder (a
 * killed process stops at an instruction boundary, and the kernel's
 * robust-futex handling at its exit is ordered after its stores and before
 * the next locker's acquire).
 */
#ifndef DYNSHM_CONTROL_H
#define DYNSHM_CONTROL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <dynshm/dsm_impl.h>

#include "../common/limits.h"
#include "../common/procid.h"

#define DSM_CONTROL_MAGIC UINT64_C(0x4c5254434d485344) /* "DSHMCTRL" little-endian */
#define DSM_CONTROL_VERSION 4 /* 3: the data directory and the counters; 4: anchors */
#define DSM_CONTROL_NONE UINT32_MAX /* end of an index chain */

/* Upper bounds that keep every size computation far from overflow (limits.h). */
#define DSM_CONTROL_MAX_SLOTS DSM_LIMIT_SEGMENTS
#define DSM_CONTROL_MAX_PROCS DSM_LIMIT_PROCESSES
#define DSM_CONTROL_MAX_REFS DSM_LIMIT_MAPPINGS

enum dsm_slot_state { DSM_SLOT_FREE = 0, DSM_SLOT_CREATING = 1, DSM_SLOT_LIVE = 2, DSM_SLOT_DYING = 3 };
enum dsm_proc_state { DSM_PROC_FREE = 0, DSM_PROC_ACTIVE = 1 };

/* slot flags */
#define DSM_SLOT_ORPHAN 0x1u /* adopted by repair: the supervisor holds its claim */
#define DSM_SLOT_REGION 0x2u /* carved from the preallocated region (for operators: the
                                region's own extent table is what destroy trusts) */

struct dsm_control_slot { /* 48 bytes */
    uint64_t handle;
    uint64_t size;
    int64_t os_id;     /* sysv shmid, else -1 */
    uint32_t refcnt;
    uint8_t state;     /* enum dsm_slot_state: written by the STORE macros */
    uint8_t pinned;
    uint16_t flags;    /* DSM_SLOT_* */
    uint32_t next_free;
    uint32_t created;  /* seconds since the epoch, for operators */
    uint64_t reserved;
};

/* flags of a process entry */
#define DSM_PROC_SUPERVISOR 0x1u
#define DSM_PROC_FORKED 0x2u     /* a worker that joined after fork() */
#define DSM_PROC_EXECED 0x4u     /* a worker that joined through the state file */

/*
 * One process: 64 bytes, a cache line of its own, because `critical` is
 * written by its process on every critical section of shared data and
 * must not share a line with another process's entry.
 */
struct dsm_control_proc {
    struct dsm__procid id; /* pid + start time: compared only by dsm__procid_alive() */
    uint32_t state;        /* enum dsm_proc_state */
    uint32_t flags;        /* DSM_PROC_* */
    uint32_t ref_head;
    uint32_t nrefs;
    uint32_t next_free;
    /*
     * Critical sections of shared data this process is inside (see
     * dsm__critical_enter()); written by the process itself without the
     * lock, read by the supervisor after the process died.  Non-zero at
     * death means a structure may be half updated: the crash escalates.
     */
    _Atomic uint32_t critical;
    uint64_t registered_usec; /* when it registered, for operators */
    uint64_t reserved[2];
};

struct dsm_control_ref { /* 16 bytes; slot == NONE when free */
    uint32_t slot;     /* written by the STORE macros */
    uint32_t proc;
    uint32_t next;     /* in the proc's list, or in the free list */
    uint32_t prev;
};

/*
 * Layout 3: the data directory, for host-wide discovery (dsmctl scan finds
 * a control segment and learns whose it is), and the metrics operators
 * scrape.  The path is absolute, NUL-terminated, NUL-padded and covered by
 * the checksum; "" when it did not fit (the instance then cannot be named
 * by a scan, only by its data directory).
 */
#define DSM_CONTROL_DATADIR_MAX 512

/*
 * Counters for operators and exporters, under the lock (every update is in
 * a critical section that already holds it, so they cost a store or two),
 * except the two create-failure counts, which a failed create adds to
 * after releasing the lock: those two are only ever changed by relaxed
 * atomic adds.
 * They count since the supervisor started: a crash reset carries them into
 * the new control segment (dsm__control_carry_counters()).  live_bytes is
 * derived, and recomputed by repair; the rest are monotonic totals or
 * high-water marks.  Append only.
 */
struct dsm_control_counters {
    uint64_t attaches;       /* references taken by attach */
    uint64_t detaches;       /* references given back by detach */
    uint64_t reclaims;       /* references of dead processes released by the supervisor */
    uint64_t resets;         /* crash resets */
    uint64_t create_enospc;  /* creates refused for lack of memory (ENOSPC, ENOMEM) */
    uint64_t create_failed;  /* every other failed create (full table, collisions, ...) */
    uint64_t live_bytes;     /* sizes of the LIVE and DYING slots (derived; verified) */
    uint64_t peak_segments, peak_bytes, peak_processes; /* high-water marks */
    uint64_t since_usec;     /* when counting began (the first control segment) */
    uint64_t bytes_created;  /* sum of the sizes of the segments created */
    /*
     * The preallocated region (min_dynamic_shared_memory), in what were
     * spare words (zero in a table without one, so the layout stays 3):
     * its size in bytes of pages, written once by the supervisor before
     * any worker joins (0: no region), and the creates it served and
     * those that fell back to the backend (relaxed atomic adds, like the
     * create-failure counts).
     */
    uint64_t region_size;
    uint64_t region_hits;
    uint64_t region_fallbacks;
    uint64_t reserved[1];
};

#define DSM_CONTROL_ANCHORS 4

struct dsm_control_header {
    /* Written once at creation and covered by `checksum`. */
    uint64_t magic;
    uint32_t version;
    uint32_t backend;          /* dsm_impl_type */
    uint64_t instance_id;      /* the data directory's identity */
    uint64_t control_handle;
    uint64_t total_size;       /* bytes of the whole control segment */
    uint64_t created_usec;
    uint32_t nslots, nprocs, nrefs;
    int32_t supervisor_pid;
    char datadir[DSM_CONTROL_DATADIR_MAX]; /* layout 3; see above */
    uint64_t checksum;
    /* Mutable, under `lock`. */
    uint32_t slot_free, proc_free, ref_free;
    uint32_t slots_used, procs_used, refs_used;
    uint64_t repairs;          /* times the table was repaired after a holder died */
    uint64_t creates, destroys;
    uint32_t orphans;          /* slots flagged ORPHAN: the supervisor must finish them */
    uint32_t reserved32;
    uint64_t corruptions;      /* bad indexes found (and the table rebuilt) */
    struct dsm_control_counters counters; /* layout 3 */
    /*
     * Layout 4: words the layers above dsm publish their instance-wide
     * roots in (DSM_ANCHOR_* in src/dsm/services.h), changed only by
     * compare-and-swap.  Zero in a new control segment, so a crash reset,
     * which recreates it, forgets every root with the segments it named.
     */
    uint64_t anchors[DSM_CONTROL_ANCHORS];
    pthread_mutex_t lock;
} __attribute__((aligned(64)));

/* See "Crash ordering" above. */
#define DSM_CTL_STORE_LAST(lv, v) __atomic_store_n(&(lv), (v), __ATOMIC_RELEASE)
#define DSM_CTL_STORE_FIRST(lv, v)                                                            \
    do {                                                                                      \
        __atomic_store_n(&(lv), (v), __ATOMIC_RELAXED);                                      \
        atomic_signal_fence(memory_order_seq_cst);                                            \
    } while (0)
#define DSM_CTL_LOAD(lv) __atomic_load_n(&(lv), __ATOMIC_ACQUIRE)

/*
 * A test hook between the stores of every table operation (NULL, one
 * predictable branch, in production): test/check_control.c makes it kill
 * the process at the Nth step and checks what repair leaves.
 */
extern void (*dsm__control_step_hook)(void);
#define DSM_CTL_STEP()                                                                        \
    do {                                                                                      \
        if (__builtin_expect(dsm__control_step_hook != NULL, 0))                             \
            dsm__control_step_hook();                                                         \
    } while (0)
#define DSM_CTL_STEP_EXPR()                                                                   \
    (__builtin_expect(dsm__control_step_hook != NULL, 0) ? dsm__control_step_hook() : (void)0)

/* A process's view of a mapped control segment. */
struct dsm_control {
    struct dsm_control_header *hdr;
    struct dsm_control_slot *slots;
    struct dsm_control_proc *procs;
    struct dsm_control_ref *refs;
    dsm_impl_segment map;
};

/* The header checksum: FNV-1a over the fields written once at creation. */
uint64_t dsm__control_checksum(const struct dsm_control_header *h);

/* Bytes needed for a table of this capacity (0 if a count is out of range). */
size_t dsm__control_size(uint32_t nslots, uint32_t nprocs, uint32_t nrefs);

/*
 * Create the control segment under `handle` (recorded in the state file
 * beforehand, so a kill at any point leaves it findable) and initialise
 * it, the magic number last.  -EEXIST, silently, if the name is taken.
 */
int dsm__control_create(dsm_impl_instance *inst, dsm_handle handle, uint32_t nslots,
                        uint32_t nprocs, uint32_t nrefs, struct dsm_control *ctl);

/* A mapped control segment whose creator died before initialising it (magic still 0). */
bool dsm__control_uninitialised(const void *addr, size_t size);

/*
 * Attach an existing control segment and validate it (see validate below).
 * -ENODATA if it exists but was never initialised (its magic is still 0).
 * On failure nothing stays mapped.
 */
int dsm__control_attach(dsm_impl_instance *inst, dsm_handle handle, struct dsm_control *ctl);

/*
 * Check that `size` bytes at addr are a control segment of this version,
 * for this instance id and handle, with a correct checksum and counts that
 * fit the size.  DSM_ECORRUPT or DSM_EFOREIGN with a message otherwise.
 * Never reads outside [addr, addr + size).
 */
int dsm__control_validate(const void *addr, size_t size, uint64_t instance_id,
                          dsm_handle handle);

/* Set the pointers of ctl from a validated mapping. */
void dsm__control_bind(struct dsm_control *ctl, void *addr, size_t size);

/*
 * A crash reset made a new control segment: carry the counters of the old
 * one (a copy of its header taken before it was destroyed) into ctl, and
 * count the reset.  Takes the lock.
 */
void dsm__control_carry_counters(struct dsm_control *ctl, const struct dsm_control_header *old);

/*
 * A create failed after its slot was reserved (errno-style rc): count it.
 * Lock-free (relaxed atomic add): the failure path has already released
 * the lock.
 */
void dsm__control_count_create_failure(struct dsm_control *ctl, int rc);

/* Unmap (the segment lives on). */
void dsm__control_detach(dsm_impl_instance *inst, struct dsm_control *ctl);

/* Lock / unlock; lock repairs the table first if the previous holder died. */
int dsm__control_lock(struct dsm_control *ctl);
/* The same, giving up with -ETIMEDOUT after timeout_ms (-1: never). */
int dsm__control_lock_timed(struct dsm_control *ctl, int timeout_ms);
void dsm__control_unlock(struct dsm_control *ctl);

/*
 * Check every invariant of the table (counts, free lists, per-process
 * lists, refcounts, the closure rule), lock held.  Returns the number of
 * problems; the first is described in why.  For tests and operators.
 */
unsigned dsm__control_verify(struct dsm_control *ctl, char *why, size_t len);

/* Rebuild derived state from primary facts; returns the number of fixes. Under lock. */
uint64_t dsm__control_repair(struct dsm_control *ctl);

/* ---- O(1) table operations (each takes and releases the lock) -------- */

/* Register process id (flags: DSM_PROC_*); *proc receives its index. */
int dsm__control_proc_register(struct dsm_control *ctl, const struct dsm__procid *id,
                               uint32_t flags, uint32_t *proc);
/*
 * Drop a process entry.  -EBUSY if it still lists references: the entry
 * then stays, and the supervisor releases them once the process is gone
 * (they are never dropped uncounted).
 */
int dsm__control_proc_unregister(struct dsm_control *ctl, uint32_t proc);

/*
 * Reserve a slot for a new segment: state CREATING, a fresh handle, one ref
 * for proc.  DSM_ENOSLOTS when the table (or the ref pool) is full.
 */
int dsm__control_slot_reserve(struct dsm_control *ctl, uint32_t proc, dsm_handle *handle,
                              uint32_t *slot, uint32_t *ref);
/*
 * Memory for a new segment found inside the reservation's critical section
 * (the preallocated region): serve(arg, handle, size) returns 0 when it
 * served the request, 1 when it did not, or an error.  Called with the
 * control lock held; it may take only locks below it (the region's).
 */
typedef int (*dsm_control_serve)(void *arg, dsm_handle handle, size_t size);

/*
 * Reserve, serve and publish in one critical section: 0 with the slot LIVE
 * (refcnt 1, flagged DSM_SLOT_REGION); 1 with the slot reserved and
 * CREATING, as after dsm__control_slot_reserve() (the caller goes on to the
 * backend); or an error (nothing reserved, unless serve failed: then the
 * slot is CREATING with the caller's claim, to release).  One lock round
 * trip instead of two: the region's create is all bookkeeping.
 */
int dsm__control_slot_create_served(struct dsm_control *ctl, uint32_t proc, size_t size,
                                    dsm_control_serve serve, void *arg, dsm_handle *handle,
                                    uint32_t *slot, uint32_t *ref);

/* After a name collision: give the reserved slot a new handle. */
int dsm__control_slot_rehandle(struct dsm_control *ctl, uint32_t slot, uint32_t ref,
                               dsm_handle *handle);
/* The OS object exists: CREATING -> LIVE with refcnt 1. */
int dsm__control_slot_publish(struct dsm_control *ctl, uint32_t slot, uint32_t ref,
                              size_t size, int64_t os_id);

/*
 * Take a mapping reference on a live segment.  -ENOENT (with a message) if
 * handle names no live segment.  *seg receives what attach needs (handle,
 * size, os_id) for an ownership check.
 */
int dsm__control_ref_acquire(struct dsm_control *ctl, uint32_t proc, dsm_handle handle,
                             uint32_t *slot, uint32_t *ref, dsm_impl_segment *seg);
/*
 * Drop a reference.  Returns 1 if the count reached zero: the slot is now
 * DYING, ref is kept as the destroy claim, and the caller must destroy the
 * OS object and then call dsm__control_slot_release().  Returns 0 otherwise,
 * or an error (the reference then stays counted, for a reset to remove).
 */
int dsm__control_ref_release(struct dsm_control *ctl, uint32_t slot, uint32_t ref);
/*
 * dsm__control_ref_release(), except that a slot flagged DSM_SLOT_REGION
 * whose count reaches zero is finished in the same section: give(arg,
 * handle) returns its pages (0 on success) and the slot becomes FREE, and
 * 2 is returned.  If give fails the slot stays DYING with the claim and 1
 * is returned, as from dsm__control_ref_release().
 */
int dsm__control_ref_release_served(struct dsm_control *ctl, uint32_t slot, uint32_t ref,
                                    int (*give)(void *arg, dsm_handle handle), void *arg);

/*
 * Finish destroying (or abandon a creation whose object does not exist):
 * the CREATING or DYING slot becomes FREE and the claim ref is freed.
 */
int dsm__control_slot_release(struct dsm_control *ctl, uint32_t slot, uint32_t ref);

/* Pin: one more reference that belongs to no process.  -EALREADY if pinned. */
int dsm__control_pin(struct dsm_control *ctl, uint32_t slot, dsm_handle handle);
/*
 * Unpin by handle; like ref_release it returns 1 when the caller must
 * destroy (then *slot and *ref are the claim to pass to slot_release).
 */
int dsm__control_unpin(struct dsm_control *ctl, uint32_t proc, dsm_handle handle,
                       uint32_t *slot, uint32_t *ref, dsm_impl_segment *seg);

/* What a slot records, as the argument dsm_impl_destroy() needs. */
void dsm__control_slot_segment(const struct dsm_control *ctl, uint32_t slot,
                               dsm_impl_segment *seg);

/*
 * Report a damaged index found at `what` (lock held): count it, rebuild the
 * table from its primary facts, and return DSM_ECORRUPT with a message.
 */
int dsm__control_corrupt(struct dsm_control *ctl, const char *what, uint32_t index,
                         uint32_t n);

/*
 * Destroy the OS object of every slot that is not FREE (cleanup paths:
 * crash reset, shut-down, start-up after a crash), restartably: slots are
 * marked DYING and stay listed until their object is gone (or found
 * already gone), and only then become FREE, so a pass killed part-way is
 * finished by the next.  Objects that fail the ownership check stay listed
 * and are logged.  report(name, arg), if given, is told of each object
 * removed.  Returns the number destroyed and sets *left (if not NULL) to
 * the number that could not be.  Call without the lock held by this process.
 */
int dsm__control_destroy_all(dsm_impl_instance *inst, struct dsm_control *ctl,
                             void (*report)(const char *name, void *arg), void *arg,
                             unsigned *left);

/* ---- dead processes (crash paths only: these scan the process table) ---- */

/*
 * A registered process as copied out of the table.  Crash paths copy
 * members under the lock and ask dsm__procid_alive() after unlocking (it
 * reads /proc, which must never stall every create and attach); whatever
 * they then do to a member is done by index and rechecked under the lock
 * against the copied identity, so a member reclaimed meanwhile, or an
 * entry reused by another process, is never touched.
 */
struct dsm_control_member {
    uint32_t index;
    uint32_t flags;
    struct dsm__procid id;
};

/*
 * Copy up to max ACTIVE entries other than `self` (with pid > 0: only those
 * with that pid), starting at entry *cursor; *cursor is advanced past the
 * last entry examined, so a caller loops until it returns fewer than max.
 * Returns the number copied or an error.
 */
int dsm__control_members(struct dsm_control *ctl, uint32_t self, pid_t pid,
                         struct dsm_control_member *out, int max, uint32_t *cursor);

/* The member's critical-section count, or -ESRCH if it is no longer registered. */
int dsm__control_member_critical(struct dsm_control *ctl, const struct dsm_control_member *m);

/* A segment whose destruction this process has taken over. */
struct dsm_claim {
    uint32_t slot, ref;
};

/*
 * Release every reference of process `dead`: shares of segments others
 * still hold are dropped; for the rest (last reference, half-created,
 * half-destroyed) the claim moves to process `self`, which must destroy the
 * OS object and call dsm__control_slot_release() for each of the returned
 * claims.  The dead entry is freed once it holds nothing.  Returns the
 * number of claims (at most max; call again while it returns max); 0 if
 * `dead` is no longer registered as that process.
 */
/*
 * The handles of the live, pinned segments member m references (at most
 * max), for the layers that look inside them before a reclaim (an area's
 * segments are pinned: see area.c); or an error.
 */
int dsm__control_member_handles(struct dsm_control *ctl, const struct dsm_control_member *m,
                                dsm_handle *out, int max);

int dsm__control_reclaim(struct dsm_control *ctl, const struct dsm_control_member *dead,
                         uint32_t self, struct dsm_claim *claims, int max);

/*
 * The orphans whose claims repair gave to `self` (the supervisor): up to
 * max claims to finish like reclaim's.  Costs one load when there are none.
 */
int dsm__control_orphans(struct dsm_control *ctl, uint32_t self, struct dsm_claim *claims,
                         int max);

#endif /* DYNSHM_CONTROL_H */
