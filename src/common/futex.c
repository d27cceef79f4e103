/* SPDX-License-Identifier: MIT */
/*
 * futex.c - the futex(2) calls behind futex.h.
 *
 * glibc has no wrapper for futex, so this is the one place that calls it
 * through syscall(2).  Linux only; configure refuses other kernels.
 */
#include "config.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "futex.h"

int dsm__futex_wait(const uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;

    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    /* A relative timeout: FUTEX_WAIT measures it on CLOCK_MONOTONIC. */
    if (syscall(SYS_futex, word, FUTEX_WAIT, expected, tp, NULL, 0) == 0)
        return 0;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

int dsm__futex_wake(const uint32_t *word, int n)
{
    long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);

    return r < 0 ? -errno : (int)r;
}
