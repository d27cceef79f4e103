/* SPDX-License-Identifier: MIT */
/*
 * dynshm/dsm.h - reference-counted dynamic shared memory segments.
 *
 * The palatable layer over dynshm/dsm_impl.h.  A supervisor process starts
 * the facility (creating the control segment that lists every live segment)
 * before it starts workers; any process may then create a segment, hand its
 * handle to others, and attach by that handle.  A segment is destroyed when
 * its last mapping is detached and it is not pinned.  Nothing leaks:
 *   (1) a mapping belongs to the current resource owner, and releasing the
 *       owner detaches it (an error path cannot forget a mapping);
 *   (2) process exit detaches whatever the process still holds;
 *   (3) the supervisor destroys every segment when a worker crashes (crash
 *       reset) and when it shuts down;
 *   (4) a supervisor starting after a kill -9 of everything finds the old
 *       control segment through the state file in the data directory and
 *       destroys what it lists (and, for names scoped to the instance,
 *       anything else left with the instance's prefix).
 *
 * Error convention: see dynshm/common.h (0 or a negative code, message in
 * dsm_errmsg()).  Threads: creating, attaching, detaching, finding, pinning
 * and resource owners may be used from any number of threads at once.  The
 * process lifecycle calls (start, reset, shut-down, worker init/exit, crash
 * reporting) belong to one thread while no other thread uses dynshm, and one
 * segment's callbacks must not be changed while another thread detaches it.
 */
#ifndef DYNSHM_DSM_H
#define DYNSHM_DSM_H

#include <stdbool.h>
#include <sys/types.h>

#include <dynshm/common.h>
#include <dynshm/settings.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsm_segment dsm_segment;
typedef struct dsm_resowner dsm_resowner;

/* ---- process lifecycle ------------------------------------------------ */

/*
 * Supervisor start-up: validate settings, lock the data directory (one
 * supervisor per directory), remove what a previous instance left behind
 * (found through the state file and, for mmap, the segment directory),
 * create the control segment and record its handle in the state file.
 * settings may be NULL for the defaults.
 */
DSM_EXPORT int dsm_supervisor_start(const char *datadir, const dsm_settings *settings);

/*
 * Crash reset, after a worker died uncleanly: destroy every segment (pinned
 * ones too) and recreate the control segment.  Call it after every other
 * worker has exited; the supervisor's own mappings are detached first.
 */
DSM_EXPORT int dsm_supervisor_reset(void);

/* Orderly shut-down: destroy every segment and the control segment, remove
 * the state file, release the data directory lock. */
DSM_EXPORT int dsm_supervisor_shutdown(void);

/*
 * In a child created by fork(): forget the mappings inherited from the
 * parent (they stay mapped but are never detached or counted for this
 * process) and register the child as a worker.  Must be the child's first
 * dynshm call.
 */
DSM_EXPORT int dsm_worker_init_after_fork(void);

/*
 * In a process started by exec (or any process that did not inherit the
 * supervisor's state): attach the control segment of the supervisor running
 * on datadir, found through its state file, and register as a worker.
 */
DSM_EXPORT int dsm_worker_attach(const char *datadir);

/*
 * Leave the facility: run on-detach callbacks and detach every mapping
 * (pinned ones too), unregister the worker.  Also done automatically by
 * exit() in a process that initialised dynshm.
 */
DSM_EXPORT void dsm_worker_exit(void);

/*
 * Dead workers.  When a worker exits, the supervisor reports it with
 * dsm_supervisor_worker_exited(pid, status from waitpid).  A worker that
 * left the facility properly (dsm_worker_exit(), or exit() which calls it)
 * needs nothing.  One that died holding references (killed, _exit, abort)
 * is a crash, handled by the dsm_crash_policy setting:
 *   reset    (default, PostgreSQL's behaviour) the call returns
 *            DSM_CRASH_RESET: stop every other worker, wait for them, then
 *            call dsm_supervisor_reset();
 *   reclaim  release exactly the references the dead worker held (segments
 *            only it used are destroyed, others stay, pins stay) and return
 *            DSM_CRASH_RECLAIMED; other workers keep running.
 * A crash hook, if installed, decides each crash instead of the policy: it
 * can escalate to a reset (for example when the dead worker was writing a
 * shared structure) or reclaim where the policy says reset.
 */
typedef enum dsm_crash_action {
    DSM_CRASH_NONE = 0,      /* clean exit: nothing to do */
    DSM_CRASH_RESET = 1,     /* the caller must perform a crash reset */
    DSM_CRASH_RECLAIMED = 2  /* the dead worker's references were released */
} dsm_crash_action;

typedef dsm_crash_action (*dsm_crash_hook)(pid_t pid, int wait_status, void *arg);

/* Install (or remove, with NULL) the per-crash decision hook; it returns
 * DSM_CRASH_RESET or DSM_CRASH_RECLAIMED. */
DSM_EXPORT void dsm_set_crash_hook(dsm_crash_hook hook, void *arg);

/*
 * Inside a crash hook: the number of critical sections of shared data the
 * dead worker was inside when it died (an area, hash table or queue being
 * updated).  Non-zero means a shared structure may be half updated; the
 * default decision is then a reset whatever dsm_crash_policy says.  0
 * outside a hook.
 */
DSM_EXPORT int dsm_crash_critical(void);

/* Report a worker's exit; returns a dsm_crash_action (>= 0) or an error. */
DSM_EXPORT int dsm_supervisor_worker_exited(pid_t pid, int wait_status);

/*
 * For workers the supervisor did not fork (exec'd helpers, processes that
 * attached through the state file): find registered processes that no
 * longer exist (pid and start time, so a reused pid is not mistaken for the
 * worker) and treat each as a crash.  Returns the action needed (the most
 * severe over all dead ones) or an error.
 */
DSM_EXPORT int dsm_supervisor_check_workers(void);

/* The control segment's handle (for logs and operators; exec'd workers find
 * it through the state file); 0 if not started or disabled. */
DSM_EXPORT dsm_handle dsm_control_handle(void);

/* ---- segments ----------------------------------------------------------- */

/* dsm_create() flags. */
#define DSM_CREATE_NULL_IF_MAXSEGMENTS 0x1 /* no free slot: succeed with *out = NULL */

/* Create a segment of size bytes, mapped in this process, owned by the current
 * resource owner (or pinned to the session if there is none). */
DSM_EXPORT int dsm_create(size_t size, int flags, dsm_segment **out);

/* Map an existing segment.  -ENOENT if no live segment has this handle;
 * -EEXIST if this process already maps it (see dsm_find_mapping()). */
DSM_EXPORT int dsm_attach(dsm_handle handle, dsm_segment **out);

/* Run on-detach callbacks, unmap, drop the reference; the last reference
 * destroys the segment unless it is pinned.  seg is freed. */
DSM_EXPORT int dsm_detach(dsm_segment *seg);

/* Detach every mapping of this process (callbacks run for each). */
DSM_EXPORT void dsm_detach_all(void);

DSM_EXPORT void *dsm_segment_address(const dsm_segment *seg);
DSM_EXPORT size_t dsm_segment_map_length(const dsm_segment *seg);
DSM_EXPORT dsm_handle dsm_segment_handle(const dsm_segment *seg);

/* This process's mapping of handle, or NULL. */
DSM_EXPORT dsm_segment *dsm_find_mapping(dsm_handle handle);

/* Session lifetime: take the mapping away from its resource owner, so it
 * lives until detached explicitly or the process exits; and give it back. */
DSM_EXPORT int dsm_pin_mapping(dsm_segment *seg);
DSM_EXPORT int dsm_unpin_mapping(dsm_segment *seg);

/* Server lifetime: keep the segment alive with no mapping at all until
 * dsm_unpin_segment() or supervisor shut-down/reset.  -EALREADY if pinned. */
DSM_EXPORT int dsm_pin_segment(dsm_segment *seg);
DSM_EXPORT int dsm_unpin_segment(dsm_handle handle);

typedef void (*dsm_on_detach_callback)(dsm_segment *seg, void *arg);

/* Register fn(seg, arg) to run when seg is detached; callbacks run in reverse
 * order of registration, each removed before it runs. */
DSM_EXPORT int dsm_on_detach(dsm_segment *seg, dsm_on_detach_callback fn, void *arg);

/* Remove a registration (the most recent matching one); -ENOENT if none. */
DSM_EXPORT int dsm_cancel_on_detach(dsm_segment *seg, dsm_on_detach_callback fn, void *arg);

/* ---- resource owners ---------------------------------------------------- */

/*
 * Resource owners form a tree.  New mappings belong to the calling thread's
 * current owner.  Releasing an owner releases its children first, then
 * detaches its mappings; with is_commit true (a success path) each mapping
 * still held is also reported as a leak through the log hook.
 */
DSM_EXPORT int dsm_resowner_create(dsm_resowner *parent, const char *name, dsm_resowner **out);
DSM_EXPORT void dsm_resowner_release(dsm_resowner *owner, bool is_commit);
/* Release (as on an error path) and free owner and its children. */
DSM_EXPORT void dsm_resowner_delete(dsm_resowner *owner);
DSM_EXPORT dsm_resowner *dsm_resowner_current(void);
/* Make owner (may be NULL) current in this thread; returns the previous one. */
DSM_EXPORT dsm_resowner *dsm_resowner_set_current(dsm_resowner *owner);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_DSM_H */
