/* SPDX-License-Identifier: MIT */
/*
 * dsmtest.h - helpers for the suites that exercise the dsm layer with real
 * processes: a supervisor per test on a fresh data directory, object
 * counting across all backends, and a log hook that records messages.
 */
#ifndef DYNSHM_DSMTEST_H
#define DYNSHM_DSMTEST_H

#include <stdbool.h>
#include <sys/types.h>

#include <dynshm/dynshm.h>

#include "testutil.h"

struct sv {
    char dir[256];
    dsm_impl_type type;
    char id[17]; /* the instance id of dir */
};

/*
 * Make a data directory and start a supervisor on it with backend `type`
 * and extra "name=value" settings (NULL-terminated list, may be NULL).
 * Returns 0 when the backend is not available (the test should return).
 */
int sv_start(struct sv *v, int type, const char *const *options);

/* Start (or restart) a supervisor on v->dir; returns dsm_supervisor_start's result. */
int sv_restart(struct sv *v, const char *const *options);

/*
 * Objects of v's instance that exist now: /dev/shm names with its prefix,
 * files in its mmap directory, and SysV segments created since the run
 * began (SysV has no names; see tu_sysv_*).
 */
int sv_objects(const struct sv *v);

/* Fork a child running fn(arg) as a worker (dsm_worker_init_after_fork first). */
pid_t sv_fork_worker(int (*fn)(void *), void *arg);

/* Wait for pid; returns its exit code, or 128 + signal. */
int sv_wait(pid_t pid);

/* A pipe pair for parent/child rendezvous. */
struct sync {
    int to_child[2], to_parent[2];
};
void sync_init(struct sync *s);
void sync_signal_parent(struct sync *s, dsm_handle value);
dsm_handle sync_wait_child(struct sync *s);
void sync_signal_child(struct sync *s);
void sync_wait_parent(struct sync *s);

/* Log hook that keeps the last messages and counts those containing a word. */
void log_capture_start(void);
int log_count(const char *substring);

#endif
