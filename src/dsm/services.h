/* SPDX-License-Identifier: MIT */
/*
 * services.h - what the dsm layer offers the shared-data layers above it
 * (areas, locks, queues, hash tables, the registry); never installed.
 *
 * Those layers keep their state inside segments and need three things
 * from the process lifecycle that only this layer knows: who this process
 * is (to record holders and peers in shared memory), whether a recorded
 * process still runs, and a way to say "I am changing shared data now" so
 * that a death in the middle escalates the supervisor's crash action.
 */
#ifndef DYNSHM_DSM_SERVICES_H
#define DYNSHM_DSM_SERVICES_H

#include <stdbool.h>
#include <stdint.h>

#include <dynshm/common.h>

#include "../common/procid.h"

/*
 * Critical sections of shared data.  Between enter and leave, a death of
 * this process (SIGKILL included) may leave a structure in shared memory
 * half updated; the supervisor then answers the crash with a reset whatever
 * dsm_crash_policy says (the crash hook may still decide otherwise; it can
 * ask dsm_crash_critical()).  Nesting and threads are fine: it is a count
 * in this process's entry of the control table.  Cost: one uncontended
 * atomic add on a cache line no other process writes.  Outside an
 * initialised process both are no-ops.
 */
void dsm__critical_enter(void);
void dsm__critical_leave(void);

/* This process's identity (pid + start time), for records in shared memory. */
static inline void dsm__self_identity(struct dsm__procid *out)
{
    dsm__procid_self(out);
}

/*
 * This process's index in the control table (a small dense number, stable
 * while it stays registered), or UINT32_MAX if it is not registered.
 */
uint32_t dsm__self_index(void);

/*
 * Reclaim listeners: a shared-data layer that records per-process state in
 * shared memory (an area's per-thread caches and attachments) registers one
 * to return a dead worker's share when the supervisor reclaims that worker
 * (dsm_crash_policy = reclaim, or the crash hook chose it).  Called in the
 * supervisor, before the dead worker's segment references are released,
 * with its identity and the live pinned segments it mapped (up to
 * DSM_RECLAIM_MAPPED_MAX of them); never during a reset.  At most DSM_MAX_RECLAIM_LISTENERS
 * (4), registered once per process image; a duplicate is ignored.
 */
typedef void (*dsm__reclaim_listener)(const struct dsm__procid *dead, const dsm_handle *mapped,
                                      int nmapped);
#define DSM_MAX_RECLAIM_LISTENERS 4
#define DSM_RECLAIM_MAPPED_MAX 4096
void dsm__add_reclaim_listener(dsm__reclaim_listener fn);

/*
 * Anchors: a layer that keeps one root per instance (the registry's root
 * segment) publishes its handle in a word of the control segment, where
 * every process of the instance, forked or exec'd, can find it.  A new
 * control segment (start-up, crash reset) has every anchor 0.
 * dsm__anchor_load returns 0 outside an attached process.
 * dsm__anchor_cas sets it to desired if it still holds expected: true if
 * it did.
 */
enum { DSM_ANCHOR_REGISTRY = 0 };

/*
 * A snapshot of a live segment's size and the number of processes that map
 * it (its references less its pin), without taking the control lock:
 * -ENOENT if handle names no live segment now.  For listings only.
 */
int dsm__segment_usage(dsm_handle handle, uint64_t *size, uint32_t *holders);
uint64_t dsm__anchor_load(unsigned which);
bool dsm__anchor_cas(unsigned which, uint64_t expected, uint64_t desired);

#endif /* DYNSHM_DSM_SERVICES_H */
