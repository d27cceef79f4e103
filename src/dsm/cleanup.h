/* SPDX-License-Identifier: MIT */
/*
 * cleanup.h - cleanup 4 (what a dead instance left), shared by supervisor
 * start-up and dsm_gc(); see cleanup.c for the order that makes it
 * restartable.
 */
#ifndef DYNSHM_CLEANUP_H
#define DYNSHM_CLEANUP_H

#include <stdbool.h>

#include <dynshm/inspect.h>

#include "../dsm_impl/dsm_impl_int.h"

struct dsm__gc {
    unsigned flags;          /* DSM_GC_* */
    dsm_gc_report report;    /* may be NULL */
    void *arg;
    unsigned removed;        /* removed (or, dry run, would be) */
    unsigned kept;           /* ours, but could not be removed */
    unsigned unproven;       /* may be ours, cannot be proven: left */
    bool untrusted;          /* the state file named a control segment we could not trust */
    bool sweep_all;          /* sweep every backend with names, not just old and current */
    /* Dry run: names already reported through the control segment, so the
     * sweep (which finds them too, since nothing was removed) skips them. */
    char **seen;
    size_t nseen, seen_cap;
};

/*
 * Clean the data directory's previous instance.  current, if not NULL, is
 * the instance about to start there (its backend is swept too).  The
 * caller holds the data directory lock.  Returns 0 (what happened is in
 * *g and was reported), -EBUSY if a process of that instance still runs
 * (nothing was removed), or another error.
 */
int dsm__gc_run(const char *datadir, dsm_impl_instance *current, struct dsm__gc *g);

#endif /* DYNSHM_CLEANUP_H */
