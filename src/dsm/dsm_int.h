/* SPDX-License-Identifier: MIT */
/*
 * dsm_int.h - the per-process state of the dsm layer, shared by its files.
 *
 * One process-wide struct: the backend instance, the mapped control
 * segment, this process's entry in it, and the process's own mappings.
 * `mu` guards the mappings and resource owners; the control table has its
 * own cross-process lock.  Lock order: mu, then the control lock.  Neither
 * is held while user callbacks run.
 */
#ifndef DYNSHM_DSM_INT_H
#define DYNSHM_DSM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <dynshm/dsm.h>

#include "../common/internal.h"
#include "../control/control.h"
#include "../dsm_impl/dsm_impl_int.h"

struct dsm_callback {
    dsm_on_detach_callback fn;
    void *arg;
    struct dsm_callback *next; /* registered earlier */
};

struct dsm_segment {
    dsm_handle handle;
    dsm_impl_segment impl;
    uint32_t slot, ref;              /* this mapping's entries in the control table */
    bool attaching;                  /* a placeholder while attach runs: not usable yet */
    bool detaching;                  /* claimed by one detach (under mu): nobody else may */
    bool dontfork;                   /* MADV_DONTFORK took: fork children never see it */
    bool region;                     /* carved from the preallocated region (region.c) */
    dsm_resowner *owner;             /* NULL: session lifetime */
    dsm_segment *owner_prev, *owner_next;
    dsm_segment *hash_next;
    dsm_segment *all_prev, *all_next;
    struct dsm_callback *callbacks;  /* most recent first */
};

struct dsm_resowner {
    /*
     * One reference for being alive (dropped by dsm_resowner_delete) plus
     * one per thread where it is current: freed when the last goes, so a
     * thread whose current owner another thread deleted never touches freed
     * memory.  `deleted` (under mu) sends that thread's new mappings to
     * session lifetime instead.
     */
    _Atomic int refs;
    bool deleted;
    char name[64];
    dsm_resowner *parent, *children, *sibling_prev, *sibling_next;
    dsm_segment *segs;
};

struct dsm_process {
    pthread_mutex_t mu;
    bool initialised;   /* control mapped (or backend none) and this process registered */
    bool supervisor;
    bool forked;        /* set in a fork child: state is the parent's until re-initialised */
    bool disabled;      /* backend "none" */
    bool reclaim;       /* dsm_crash_policy = reclaim */
    pid_t pid;
    char *datadir;
    dsm_impl_instance *inst;
    struct dsm_control ctl;
    uint32_t proc;
    int lock_fd;        /* supervisor: holds the data directory lock */
    uint32_t nslots, nprocs, nrefs;
    uint64_t region;    /* supervisor: min_dynamic_shared_memory (bytes; 0: none) */
    dsm_segment **buckets;
    size_t nbuckets, nsegs;
    dsm_segment *all;
};

extern struct dsm_process dsm__p;

/* 0 if the process may use segments now, else an error with a message. */
int dsm__check_ready(void);

/* Mapping table (mu held). */
dsm_segment *dsm__lookup(dsm_handle handle);
int dsm__remember(dsm_segment *seg);
void dsm__forget(dsm_segment *seg);

/* Resource owner links (mu held). */
void dsm__owner_link(dsm_segment *seg, dsm_resowner *owner);
void dsm__owner_unlink(dsm_segment *seg);

/* Run (and free) seg's on-detach callbacks, newest first; no lock held. */
void dsm__run_callbacks(dsm_segment *seg);

/* Drop a control reference; destroys the segment when it was the last. */
void dsm__release_ref(uint32_t slot, uint32_t ref);

/* Destroy the OS object of a claim this process holds, then free the slot;
 * returns 1 if an object was destroyed, 0 if it was already gone (or kept). */
int dsm__finish_claim(uint32_t slot, uint32_t ref);

/* Free every local mapping record without touching the control table
 * (after fork, and before a crash reset destroys everything anyway).
 * unmap: unmap them too; inherited: only those a fork child did inherit
 * (MADV_DONTFORK failed for them). */
void dsm__forget_all(bool unmap, bool inherited);

/*
 * Claim seg for one detach (mu held): false if it is a placeholder or
 * already claimed.  A claimed segment leaves its resource owner at once,
 * so dsm_detach_all() and an owner's release never both detach it.
 */
bool dsm__claim_detach(dsm_segment *seg);

/* Detach a claimed segment: callbacks (if run_callbacks), unmap, release. */
int dsm__detach_claimed(dsm_segment *seg, bool run_callbacks);

/* Register the fork handler and the exit handler, once per process image. */
void dsm__install_handlers(void);

#endif /* DYNSHM_DSM_INT_H */
