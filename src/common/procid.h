/* SPDX-License-Identifier: MIT */
/*
 * procid.h - the one identity of a process: its pid and its start time.
 *
 * A pid alone does not name a process for long: the kernel hands a dead
 * worker's pid to the next process it starts.  Every layer that records
 * "who holds this" in shared memory (the control table, area caches, queue
 * peers, lock owners) records a struct dsm__procid and asks the one
 * predicate below whether that process still runs, so they all agree.
 */
#ifndef DYNSHM_PROCID_H
#define DYNSHM_PROCID_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* 16 bytes, no padding holes: stored as is in shared memory. */
struct dsm__procid {
    int32_t pid;         /* > 0 for a real identity; 0 names nobody */
    uint32_t reserved;   /* zero */
    uint64_t start_time; /* /proc/<pid>/stat field 22 (clock ticks since boot); 0 if unknown */
};

/*
 * Start time of pid (clock ticks since boot), or 0 if no such process runs:
 * it does not exist, cannot be read, or is a zombie (a zombie holds no
 * mapping and no lock; it is dead for every purpose here).
 */
uint64_t dsm__proc_start_time(pid_t pid);

/*
 * This process's identity.  The start time is read from /proc once per
 * process image and again after fork (the pid changes); later calls cost
 * a getpid().
 */
void dsm__procid_self(struct dsm__procid *out);

/*
 * Does the process `id` names still run?  The rule, in one place:
 *   - pid <= 0 names nobody: not alive;
 *   - a known start time (!= 0) must match the running process's, so a
 *     reused pid is never mistaken for the process that had it;
 *   - an unknown start time (recorded where /proc could not be read) falls
 *     back to "a process with this pid exists" (kill(pid, 0)), the best
 *     proof available there.
 * It never blocks for long: one small /proc read, or one kill(2).
 */
bool dsm__procid_alive(const struct dsm__procid *id);

/* Do a and b name the same process (same pid and start time)? */
static inline bool dsm__procid_same(const struct dsm__procid *a, const struct dsm__procid *b)
{
    return a->pid == b->pid && a->start_time == b->start_time;
}

#endif /* DYNSHM_PROCID_H */
