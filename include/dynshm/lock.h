/* SPDX-License-Identifier: MIT */
/*
 * dynshm/lock.h - a robust lock users embed in their own shared structures.
 *
 * A dsm_lock is 24 bytes of plain memory: put it in a segment or an area
 * block, initialise it once with dsm_lock_init(), and any process mapping
 * it may lock it.  It holds no address, so it works wherever each process
 * maps it.  Waiters sleep on a futex on the lock word (no signal handler,
 * no spinning); while they sleep they check, at growing intervals (1 ms up
 * to 64 ms), whether the holder process still runs.  When it died holding
 * the lock, the next locker gets the lock with -EOWNERDEAD: the structure
 * the lock guards may be half updated.  That locker repairs it and calls
 * dsm_lock_mark_consistent(), or releases without doing so, which declares
 * the structure lost: every later acquisition fails with -ENOTRECOVERABLE
 * until dsm_lock_init() runs again.
 *
 * Holders are processes, not threads: a thread that exits (without its
 * process dying) while holding a lock is not detected.  A holder whose pid
 * is reused before its death is noticed is seen as alive until that pid
 * goes too (the start time recorded with the pid makes this a window of a
 * few instructions after locking).  The lock is not recursive.
 */
#ifndef DYNSHM_LOCK_H
#define DYNSHM_LOCK_H

#include <stdint.h>

#include <dynshm/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque: only the functions below may touch it.  8-byte aligned, 24 bytes. */
typedef struct dsm_lock {
    uint64_t opaque[3];
} dsm_lock;

/* Make *lock a free, consistent lock (also how a lost one is reused). */
DSM_EXPORT void dsm_lock_init(dsm_lock *lock);

/*
 * Acquire, waiting at most timeout_ns nanoseconds (< 0: no limit).
 * Returns 0 (held), -EOWNERDEAD (held; the previous holder died holding
 * it), -ETIMEDOUT, -ENOTRECOVERABLE (not held: the structure was declared
 * lost), or DSM_ECORRUPT (not held: *lock is not an initialised lock).
 */
DSM_EXPORT int dsm_lock_acquire(dsm_lock *lock, int64_t timeout_ns);

/* Acquire without waiting: as dsm_lock_acquire(), or -EBUSY if held by a live process. */
DSM_EXPORT int dsm_lock_try_acquire(dsm_lock *lock);

/*
 * Release.  If the lock came with -EOWNERDEAD and dsm_lock_mark_consistent()
 * was not called, the lock becomes not recoverable.  -EPERM if this process
 * does not hold it.
 */
DSM_EXPORT int dsm_lock_release(dsm_lock *lock);

/* After -EOWNERDEAD and a repair: the structure is consistent again. */
DSM_EXPORT int dsm_lock_mark_consistent(dsm_lock *lock);

/*
 * A reader/writer lock, robust too.  Up to DSM_RWLOCK_READERS threads may
 * hold it shared at once (more wait for a free reader slot); a writer
 * waits for them to leave and, while it waits, keeps new readers out.
 * Holders are threads here (a reader slot records its thread id), so a
 * holder thread that is gone is noticed like a dead process.  A dead
 * reader's slot is simply freed: it changed nothing.  A dead writer's lock
 * goes to the next acquirer, reader or writer, *exclusively* and with
 * -EOWNERDEAD; it repairs, calls dsm_rwlock_mark_consistent() and
 * releases, or releases without, which declares the structure lost.
 * 128 bytes, 8-byte aligned.
 */
#define DSM_RWLOCK_READERS 26

typedef struct dsm_rwlock {
    uint64_t opaque[16];
} dsm_rwlock;

DSM_EXPORT void dsm_rwlock_init(dsm_rwlock *lock);

/* Acquire shared (exclusive == 0) or exclusive; results as dsm_lock_acquire(). */
DSM_EXPORT int dsm_rwlock_acquire(dsm_rwlock *lock, int exclusive, int64_t timeout_ns);

/* Release whichever hold the calling thread has; -EPERM if none. */
DSM_EXPORT int dsm_rwlock_release(dsm_rwlock *lock);

DSM_EXPORT int dsm_rwlock_mark_consistent(dsm_rwlock *lock);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_LOCK_H */
