/* SPDX-License-Identifier: MIT */
/*
 * lock_int.h - what the area needs of lock.c beyond dynshm/lock.h; never installed.
 */
#ifndef DYNSHM_LOCK_INT_H
#define DYNSHM_LOCK_INT_H

#include <stdbool.h>

#include <dynshm/lock.h>

/* Is the lock held by a process that no longer runs? (a hint for diagnostics) */
bool dsm__lock_held_by_dead(dsm_lock *lock);

/*
 * dsm_lock_acquire() for locks that guard shared data of the library: a
 * dsm__critical section (services.h) begins just before the compare-and-
 * swap that takes the lock, so a death while holding it -- from its first
 * instant -- escalates the crash action, while a death while only waiting
 * does not.  On 0 and -EOWNERDEAD the section is open (the caller leaves it
 * after releasing); on any other result it is not.
 */
int dsm__lock_acquire_critical(dsm_lock *lock, int64_t timeout_ns);

#endif /* DYNSHM_LOCK_INT_H */
