/* SPDX-License-Identifier: MIT */
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
#include "services.h"
#include "keeper.h"

static dsm_crash_hook crash_hook;
static void *crash_hook_arg;
static dsm__reclaim_listener listeners[DSM_MAX_RECLAIM_LISTENERS];
static pthread_mutex_t listeners_mu = PTHREAD_MUTEX_INITIALIZER;

void dsm__add_reclaim_listener(dsm__reclaim_listener fn)
{
    pthread_mutex_lock(&listeners_mu);
    for (int i = 0; i < DSM_MAX_RECLAIM_LISTENERS; i++) {
        if (listeners[i] == fn)
            break;
        if (listeners[i] == NULL) {
            listeners[i] = fn;
            break;
        }
    }
    pthread_mutex_unlock(&listeners_mu);
}

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

/* Release everything member `dead` held; returns the number of segments destroyed. */
static int reclaim(const struct dsm_control_member *dead)
{
    struct dsm_claim claims[64];
    int n, total = 0;

    do {
        n = dsm__control_reclaim(&dsm__p.ctl, dead, dsm__p.proc, claims,
                                 (int)DSM_ARRAY_LEN(claims));
        for (int i = 0; i < n; i++)
            total += dsm__finish_claim(claims[i].slot, claims[i].ref);
    } while (n == (int)DSM_ARRAY_LEN(claims));
    return n < 0 ? n : total;
}

/* What the hook may ask about the crash it is deciding (0 outside a hook). */
static _Thread_local int deciding_critical;

int dsm_crash_critical(void)
{
    return deciding_critical;
}

/* Decide and carry out what one dead member's crash needs. */
static int handle_crash(const struct dsm_control_member *m, int status)
{
    dsm_crash_action action = dsm__p.reclaim ? DSM_CRASH_RECLAIMED : DSM_CRASH_RESET;
    pid_t pid = (pid_t)m->id.pid;
    char how[96];
    int critical, n;

    critical = dsm__control_member_critical(&dsm__p.ctl, m);
    if (critical == -ESRCH)
        return DSM_CRASH_NONE; /* reclaimed meanwhile (reported twice) */
    if (critical < 0)
        return critical;
    /* A structure it was updating may be half done: nothing short of a reset is safe. */
    if (critical > 0)
        action = DSM_CRASH_RESET;
    describe(status, how, sizeof(how));
    if (crash_hook) {
        deciding_critical = critical;
        action = crash_hook(pid, status, crash_hook_arg) == DSM_CRASH_RECLAIMED
                     ? DSM_CRASH_RECLAIMED
                     : DSM_CRASH_RESET;
        deciding_critical = 0;
    }
    if (action == DSM_CRASH_RESET) {
        if (critical > 0)
            dsm__log(DSM_LOG_WARNING, "worker %d %s inside %d critical section(s) of shared "
                                      "data; a crash reset is needed", (int)pid, how, critical);
        else
            dsm__log(DSM_LOG_WARNING, "worker %d %s; a crash reset is needed", (int)pid, how);
        return DSM_CRASH_RESET;
    }
    /* The layers above return what the dead worker held inside their structures first. */
    if (listeners[0]) {
        dsm_handle *mapped = malloc(DSM_RECLAIM_MAPPED_MAX * sizeof(*mapped));
        int nmapped = mapped ? dsm__control_member_handles(&dsm__p.ctl, m, mapped,
                                                           DSM_RECLAIM_MAPPED_MAX)
                             : 0;

        for (int i = 0; i < DSM_MAX_RECLAIM_LISTENERS && listeners[i]; i++)
            listeners[i](&m->id, mapped, nmapped > 0 ? nmapped : 0);
        free(mapped);
    }
    n = reclaim(m);
    if (n < 0)
        return n;
    dsm__log(DSM_LOG_WARNING, "worker %d %s; released its references (%d segment(s) destroyed)",
             (int)pid, how, n);
    return DSM_CRASH_RECLAIMED;
}

static int check_ready(const char *what)
{
    if (!dsm__p.initialised || !dsm__p.supervisor || dsm__p.forked)
        return dsm__error(DSM_ESTATE, "only a started supervisor can %s", what);
    return 0;
}

/*
 * Finish the orphans repair handed to this supervisor: segments nobody held
 * after a process died in the middle of a table update (control.h's
 * closure rule).  Returns the number destroyed.
 */
static int finish_orphans(void)
{
    struct dsm_claim claims[64];
    int n, total = 0;

    do {
        n = dsm__control_orphans(&dsm__p.ctl, dsm__p.proc, claims, (int)DSM_ARRAY_LEN(claims));
        for (int i = 0; i < n; i++)
            dsm__finish_claim(claims[i].slot, claims[i].ref);
        total += n > 0 ? n : 0;
    } while (n == (int)DSM_ARRAY_LEN(claims));
    if (total > 0)
        dsm__log(DSM_LOG_WARNING, "destroyed %d orphaned dynamic shared memory segment(s) "
                                  "(nobody held them after a process died mid-update)", total);
    return total;
}

/*
 * Handle every registered member that is dead (with pid > 0: only entries
 * of that pid).  Identities are copied under the lock and checked after
 * unlocking; each dead one is then handled by index.  Returns the most
 * severe action, stopping at the first reset (it takes care of the rest).
 */
static int handle_dead(pid_t pid, int status)
{
    struct dsm_control_member m[64];
    uint32_t cursor = 0;
    int n, worst = DSM_CRASH_NONE;

    do {
        n = dsm__control_members(&dsm__p.ctl, dsm__p.proc, pid, m, (int)DSM_ARRAY_LEN(m),
                                 &cursor);
        for (int i = 0; i < n; i++) {
            int rc;

            if (dsm__procid_alive(&m[i].id))
                continue; /* this one still runs (a report too early, or a reused pid) */
            rc = handle_crash(&m[i], status);
            if (rc < 0 || rc == DSM_CRASH_RESET)
                return rc;
            if (rc > worst)
                worst = rc;
        }
    } while (n == (int)DSM_ARRAY_LEN(m));
    if (n >= 0)
        finish_orphans();
    dsm__keeper_prune(); /* memfd: holds whose pin a dead process left half done */
    return n < 0 ? n : worst;
}

int dsm_supervisor_worker_exited(pid_t pid, int wait_status)
{
    int rc;

    if ((rc = check_ready("handle worker exits")) < 0)
        return rc;
    if (dsm__p.disabled || pid <= 0)
        return DSM_CRASH_NONE;
    /* Not registered: it left properly (or never joined). */
    return handle_dead(pid, wait_status);
}

int dsm_supervisor_check_workers(void)
{
    int rc;

    if ((rc = check_ready("check workers")) < 0)
        return rc;
    if (dsm__p.disabled)
        return DSM_CRASH_NONE;
    return handle_dead(0, -1);
}
