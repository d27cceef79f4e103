/* SPDX-License-Identifier: MIT */
/*
 * inspect.h - read-only views of an instance for operators: find a data
 * directory's control segment through its state file, take a consistent
 * snapshot of it, and check whether a segment's OS object still exists.
 *
 * Nothing here changes a table, registers a process or destroys an object;
 * the one side effect is the control lock's own recovery (see
 * dsm__control_lock()) when its last holder died holding it.
 */
#ifndef DYNSHM_CONTROL_INSPECT_H
#define DYNSHM_CONTROL_INSPECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "control.h"
#include "../dsm_impl/dsm_impl_int.h"
#include "state_file.h"

/*
 * The mmap backend's segment directory.  Opening an mmap instance creates
 * it; a read-only tool looks before it opens.
 */
#define DSM_INSPECT_MMAP_DIR DSM_IMPL_MMAP_DIR

/*
 * What a data directory's state file leads to.  dsm__inspect_open() fills
 * it step by step and stops at the first step that fails; the *_rc fields
 * say how far it got, msg says why it stopped.
 */
struct dsm__inspect_target {
    uint64_t instance_id;        /* the directory's own identity (device, inode) */
    char instance[17];           /* the same as 16 hex digits */
    int state_rc;                /* 0, -ENOENT (no state file), DSM_ECORRUPT, DSM_EFOREIGN
                                    (another owner, or written for another directory), ... */
    struct dsm_state_record rec; /* valid when state_rc == 0 */
    dsm_impl_instance *inst;     /* rec.backend on the directory, when state_rc == 0 */
    int control_rc;              /* 0 attached and valid; DSM_EDISABLED (backend none);
                                    -ENOENT (gone); DSM_ECORRUPT, DSM_EFOREIGN, ...;
                                    DSM_ESTATE when not tried (state_rc != 0) */
    struct dsm_control ctl;      /* mapped when control_rc == 0 */
    char msg[512];               /* why state_rc or control_rc is not 0 */
};

/*
 * Open the data directory's instance: identity, state file, the recorded
 * backend, the control segment (attached and validated, not registered
 * with).  Returns a negative error only when the directory itself cannot be
 * used (missing, not a directory, no permission); every later problem is
 * recorded in *t.  Release with dsm__inspect_close() in any case.
 */
int dsm__inspect_open(const char *datadir, struct dsm__inspect_target *t);
void dsm__inspect_close(struct dsm__inspect_target *t);

/* One segment of a snapshot, in slot order. */
struct dsm__snap_segment {
    dsm_handle handle;
    uint64_t size;           /* 0 while CREATING */
    int64_t os_id;           /* sysv shmid, else -1 */
    uint32_t slot;
    uint32_t refcnt;
    uint32_t created;        /* seconds since the epoch */
    uint8_t state;           /* enum dsm_slot_state, never FREE */
    uint8_t pinned;
    uint16_t flags;          /* DSM_SLOT_* (REGION: carved from the preallocated region) */
    uint32_t first_holder;   /* holders[first_holder .. + nholders] */
    uint32_t nholders;
};

/* One registered process. */
struct dsm__snap_proc {
    pid_t pid;
    uint64_t start_time;
    uint32_t nrefs;
    uint32_t flags;          /* DSM_PROC_* */
    uint64_t registered_usec;
    bool supervisor;
    bool alive;              /* the same pid with the same start time exists now */
};

/*
 * A consistent copy of a control segment: the header and every slot that
 * is not FREE, copied under the lock in one critical section that touches
 * only live entries (slots are scanned, refs walked per process).  Who owns
 * this: the caller, through dsm__inspect_free().
 */
struct dsm__snapshot {
    struct dsm_control_header hdr; /* the lock field is a dead copy: never use it */
    struct dsm__snap_segment *segs;
    uint32_t nsegs;
    struct dsm__snap_proc *procs;
    uint32_t nprocs;
    uint32_t *holders;             /* indexes into procs, grouped by segment */
    uint32_t nholders;
    uint64_t live_bytes;           /* sum of sizes over LIVE segments */
    uint32_t nlive, npinned;
    uint32_t nalive;               /* procs still running */
};

/*
 * Take a snapshot.  Locks the table (waiting for the holder at most
 * timeout_ms, -1 for no bound) and
 * copies what it needs; formatting happens after the lock is released.
 * Entries that cannot be true of a sound table (a handle not encoding its
 * slot, a ref naming no slot) are left out, never trusted.
 */
int dsm__inspect_snapshot(struct dsm_control *ctl, struct dsm__snapshot *snap, int timeout_ms);
void dsm__inspect_free(struct dsm__snapshot *snap);

/* "live", "creating", "dying" (or "free"/"invalid"). */
const char *dsm__inspect_state_name(unsigned state);

#endif /* DYNSHM_CONTROL_INSPECT_H */
