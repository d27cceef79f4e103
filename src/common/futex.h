/* SPDX-License-Identifier: MIT */
/*
 * futex.h - sleeping on a 32-bit word in shared memory.
 *
 * Every layer that waits for another process (user locks, queues, the
 * hash table's partitions) sleeps on a word it shares with that process,
 * not on a condition variable: a condition variable's state cannot be
 * trusted after its user is SIGKILLed, a futex word is just memory.  These
 * are the shared (not FUTEX_PRIVATE) operations, because the waiter and
 * the waker are different processes mapping the word at different
 * addresses.  Callers always re-check their condition after a wake-up:
 * wake-ups may be spurious and the word may have changed again.
 */
#ifndef DYNSHM_FUTEX_H
#define DYNSHM_FUTEX_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

/*
 * Sleep while *word == expected, at most timeout_ns nanoseconds (< 0: no
 * limit).  Returns 0 when woken (or spuriously), -EAGAIN if *word already
 * differed, -ETIMEDOUT, or -EINTR when a signal arrived; the caller decides
 * whether to wait again.  Never fails otherwise for a valid aligned word.
 */
int dsm__futex_wait(const uint32_t *word, uint32_t expected, int64_t timeout_ns);

/* Wake up to n sleepers on word (INT32_MAX: all); returns how many woke. */
int dsm__futex_wake(const uint32_t *word, int n);

/* CLOCK_MONOTONIC in nanoseconds: the one clock for deadlines. */
static inline int64_t dsm__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif /* DYNSHM_FUTEX_H */
