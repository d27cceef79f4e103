/*
 * crash.c - what the supervisor does when a worker dies without leaving.
 *
 * PostgreSQL answers any worker crash with a full reset, because nobody
 * knows what the dead process left half done.  dynshm keeps that as the
 * default and adds `reclaim`: the control table records every reference a
 * process holds, so exactly those can be released, and the robust lock
 * (with its repair pass) covers a death in the middle of a table update.
 * What the dead worker left inside a segment's *contents* is the
 * application's business: the crash hook lets it escalate to a reset.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "dsm_int.h"

static dsm_crash_hook crash_hook;
static void *crash_hook_arg;

void dsm_set_crash_hook(dsm_crash_hook hook, void *arg)
{
    crash_hook = hook;
    crash_hook_arg = arg;
}

static void describe(int status, char *buf, size_t len)
{
    if (status == -1)
        snprintf(buf, len, "vanished");
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was terminated by signal %d", WTERMSIG(status));
    else if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d without leaving dynamic shared memory",
                 WEXITSTATUS(status));
    else
        snprintf(buf, len, "ended (status 0x%x)", (unsigned)status);
}

/* Release everything proc `dead` held; returns the number of segments destroyed. */
static int reclaim(uint32_t dead)
{
    struct dsm_claim claims[64];
    int n, total = 0;

    do {
        n = dsm__control_reclaim(&dsm__p.ctl, dead, dsm__p.proc, claims,
                                 (int)DSM_ARRAY_LEN(claims));
        for (int i = 0; i < n; i++) {
            dsm_impl_segment seg;

            dsm__control_slot_segment(&dsm__p.ctl, claims[i].slot, &seg);
            if (dsm_impl_destroy(dsm__p.inst, &seg) == 0)
                total++;
            else if (errno != ENOENT)
                dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
            dsm__control_slot_release(&dsm__p.ctl, claims[i].slot, claims[i].ref);
        }
    } while (n == (int)DSM_ARRAY_LEN(claims));
    return n < 0 ? n : total;
}

static int handle_crash(pid_t pid, int status, uint32_t proc)
{
    dsm_crash_action action = dsm__p.reclaim ? DSM_CRASH_RECLAIMED : DSM_CRASH_RESET;
    char how[96];
    int n;

    describe(status, how, sizeof(how));
    if (crash_hook)
        action = crash_hook(pid, status, crash_hook_arg) == DSM_CRASH_RECLAIMED
                     ? DSM_CRASH_RECLAIMED
                     : DSM_CRASH_RESET;
    if (action == DSM_CRASH_RESET) {
        dsm__log(DSM_LOG_WARNING, "worker %d %s; a crash reset is needed", (int)pid, how);
        return DSM_CRASH_RESET;
    }
    n = reclaim(proc);
    if (n < 0)
        return n;
    dsm__log(DSM_LOG_WARNING, "worker %d %s; released its references (%d segment(s) destroyed)",
             (int)pid, how, n);
    return DSM_CRASH_RECLAIMED;
}

int dsm_supervisor_worker_exited(pid_t pid, int wait_status)
{
    uint32_t proc;

    if (!dsm__p.initialised || !dsm__p.supervisor || dsm__p.forked)
        return dsm__error(DSM_ESTATE, "only a started supervisor can handle worker exits");
    if (dsm__p.disabled)
        return DSM_CRASH_NONE;
    proc = dsm__control_proc_find(&dsm__p.ctl, pid);
    /* Not registered: it left properly (or never joined).  Registered but alive
     * with the recorded start time: the worker itself still runs (the
     * report is early or wrong), so nothing is released. */
    if (proc == DSM_CONTROL_NONE || proc == dsm__p.proc ||
        dsm__proc_start_time(pid) == dsm__p.ctl.procs[proc].start_time)
        return DSM_CRASH_NONE;
    return handle_crash(pid, wait_status, proc);
}

int dsm_supervisor_check_workers(void)
{
    pid_t pids[64];
    int n, worst = DSM_CRASH_NONE;

    if (!dsm__p.initialised || !dsm__p.supervisor || dsm__p.forked)
        return dsm__error(DSM_ESTATE, "only a started supervisor can check workers");
    if (dsm__p.disabled)
        return DSM_CRASH_NONE;
    n = dsm__control_dead_procs(&dsm__p.ctl, dsm__p.proc, pids, (int)DSM_ARRAY_LEN(pids));
    for (int i = 0; i < n; i++) {
        int rc = dsm_supervisor_worker_exited(pids[i], -1);

        if (rc < 0)
            return rc;
        if (rc == DSM_CRASH_RESET)
            return rc; /* the reset takes care of every other dead worker too */
        if (rc > worst)
            worst = rc;
    }
    return n < 0 ? n : worst;
}
