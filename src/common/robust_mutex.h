/* SPDX-License-Identifier: MIT */
/*
 * robust_mutex.h - the one way dynshm locks a pthread mutex that lives in
 * shared memory and may be held by a process that gets SIGKILLed.
 *
 * Used by the control segment's lock and the memfd registry's lock; the
 * user-facing locks (dsm_lock, dsm_rwlock) sleep on futex words instead
 * (src/area/lock.c) and follow the same slice rule.
 */
#ifndef DYNSHM_ROBUST_MUTEX_H
#define DYNSHM_ROBUST_MUTEX_H

#include <pthread.h>
#include <stdint.h>

/* A process-shared, robust mutex; 0 or a pthread error number. */
int dsm__robust_mutex_init(pthread_mutex_t *m);

/*
 * Lock m, waiting in bounded slices until it is had or until deadline_ns
 * (CLOCK_MONOTONIC nanoseconds, as dsm__now_ns(); < 0: no limit).  Returns
 * 0, EOWNERDEAD (had, and the caller must repair what it guards and call
 * pthread_mutex_consistent), ETIMEDOUT, or another pthread error number
 * (ENOTRECOVERABLE: an earlier owner-died repair was never completed).
 */
int dsm__robust_mutex_lock(pthread_mutex_t *m, int64_t deadline_ns);

#endif /* DYNSHM_ROBUST_MUTEX_H */
