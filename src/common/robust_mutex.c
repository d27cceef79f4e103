/* SPDX-License-Identifier: MIT */
/*
 * robust_mutex.c - locking a robust, process-shared pthread mutex in slices.
 *
 * Why slices: a process SIGKILLed between releasing the mutex word and
 * waking a waiter leaves that waiter asleep on an unlocked mutex.  The
 * kernel's robust-list walk at exit covers a holder that dies *holding*
 * the lock (the next locker gets EOWNERDEAD), but not every window of an
 * unlock, and it was seen here: first on the control lock, later on the
 * memfd registry's lock, where one kill in a few thousand hung a worker
 * for good.  So no waiter ever sleeps unboundedly: it waits at most one
 * slice, then tries again.  A lost wake-up costs one slice (20 ms) instead
 * of a hang; an uncontended lock never waits at all (trylock first).
 */
#include "config.h"

#include <errno.h>
#include <time.h>

#include "futex.h"
#include "robust_mutex.h"

#define DSM_LOCK_SLICE_NS (20L * 1000 * 1000)

int dsm__robust_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc;

    if ((rc = pthread_mutexattr_init(&a)) != 0)
        return rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

int dsm__robust_mutex_lock(pthread_mutex_t *m, int64_t deadline_ns)
{
    int rc = pthread_mutex_trylock(m);

    while (rc == EBUSY || rc == ETIMEDOUT) {
        struct timespec t; /* pthread_mutex_timedlock takes CLOCK_REALTIME */

        if (rc == ETIMEDOUT && deadline_ns >= 0 && dsm__now_ns() >= deadline_ns)
            return ETIMEDOUT;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += DSM_LOCK_SLICE_NS;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        rc = pthread_mutex_timedlock(m, &t);
    }
    return rc;
}
