/* SPDX-License-Identifier: MIT */
/*
 * keeper.h - the supervisor's keeper of pinned memfd segments.
 *
 * A memfd segment exists only while some process holds a descriptor of it
 * (src/dsm_impl/dsm_impl_memfd.c).  Mappers hold theirs while they map it;
 * a pinned segment must outlive every mapping, so its descriptor is handed
 * to the supervisor, which keeps it until unpin, reset or shut-down.  On
 * every other backend these calls do nothing.  See keeper.c for why a
 * thread and a socket.
 */
#ifndef DYNSHM_KEEPER_H
#define DYNSHM_KEEPER_H

#include <dynshm/common.h>

#include "dsm_int.h"

/* Supervisor start-up: start the keeper if the backend needs one. 0 or an error. */
int dsm__keeper_start(void);

/* Supervisor shut-down (and failed start-up): stop it, close what it holds. */
void dsm__keeper_stop(void);

/* In a fork child: close the keeper's inherited descriptors (the thread is not there). */
void dsm__keeper_after_fork(void);

/*
 * Before dsm_pin_segment's table update: make the supervisor hold seg.
 * Returns 1 if it holds it now, 0 if it held it already (or the backend
 * needs no keeper), or an error.  A process killed between this and the
 * table update leaves a hold without a pin: prune removes it once the
 * segment is destroyed.
 */
int dsm__keeper_pin(const dsm_segment *seg);

/* After dsm_unpin_segment's table update (or a failed pin): drop the hold. */
void dsm__keeper_unpin(dsm_handle handle);

/* Supervisor, when it checks workers: drop holds whose segment no longer lives. */
void dsm__keeper_prune(void);

#endif /* DYNSHM_KEEPER_H */
