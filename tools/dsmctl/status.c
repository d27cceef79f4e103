/*
 * status.c - `dsmctl status`: is the instance alive, and how full is it.
 *
 * Alive means the data directory lock is held (see datadir.c); the pids
 * shown are what the lock file and state file recorded, for the operator's
 * information only.  Everything else comes from one snapshot of the
 * control segment, so the numbers agree with each other.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "dsmctl.h"

static void field(const char *name, const char *fmt, ...) DSM_PRINTF(2, 3);
static void field(const char *name, const char *fmt, ...)
{
    va_list ap;

    printf("%-17s ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void print_supervisor(const struct dsmctl_lock_state *ls)
{
    if (ls->held)
        field("supervisor:", "running (the data directory lock is held by the supervisor or "
                             "its workers; supervisor pid %ld)", ls->pid);
    else if (ls->lock_file)
        field("supervisor:", "not running (the data directory lock is free; last supervisor "
                             "pid %ld)", ls->pid);
    else
        field("supervisor:", "not running (no lock file)");
}

/* The lines that need a valid control segment. */
static int print_control(const struct dsmctl_options *o, struct dsm_inspect_target *t,
                         const struct dsmctl_lock_state *ls)
{
    const struct dsm_control_header *h;
    struct dsm_inspect snap;
    char name[4096], when[64], age[32];
    uint32_t creating = 0, dying = 0;
    int64_t created;

    if (dsmctl_snapshot(t, &snap) < 0) {
        dsmctl_error("could not read the control segment of \"%s\": %s", o->datadir,
                     dsm_errmsg());
        return DSMCTL_EXIT_FAIL;
    }
    h = &snap.hdr;
    dsm_impl_segment_name(t->inst, t->rec.control, name, sizeof(name));
    field("control segment:", "%016llx \"%s\" (%llu bytes), valid",
          (unsigned long long)t->rec.control, name, (unsigned long long)h->total_size);
    created = (int64_t)(h->created_usec / 1000000);
    dsmctl_format_time(created, when, sizeof(when));
    dsmctl_format_age((int64_t)time(NULL) - created, age, sizeof(age));
    field("created:", "%s (%s ago) by supervisor pid %d", when, age, (int)h->supervisor_pid);
    for (uint32_t i = 0; i < snap.nsegs; i++) {
        creating += snap.segs[i].state == DSM_SLOT_CREATING;
        dying += snap.segs[i].state == DSM_SLOT_DYING;
    }
    field("slots:", "%u used of %u (dsm_max_segments)", (unsigned)snap.nsegs,
          (unsigned)h->nslots);
    field("processes:", "%u registered of %u (dsm_max_processes), %u running",
          (unsigned)snap.nprocs, (unsigned)h->nprocs, (unsigned)snap.nalive);
    field("mappings:", "%u used of %u (dsm_max_mappings)", (unsigned)h->refs_used,
          (unsigned)h->nrefs);
    field("segments:", "%u live, %llu bytes, %u pinned", (unsigned)snap.nlive,
          (unsigned long long)snap.live_bytes, (unsigned)snap.npinned);
    if (creating || dying)
        field("in transition:", "%u being created, %u being destroyed", (unsigned)creating,
              (unsigned)dying);
    field("activity:", "%llu created, %llu destroyed since start-up",
          (unsigned long long)h->creates, (unsigned long long)h->destroys);
    field("repairs:", "%llu (times the table was rebuilt after a process died holding its "
                      "lock)", (unsigned long long)h->repairs);
    if (!ls->held) {
        field("left behind:", "%u segment(s) and the control segment; \"dsmctl -D %s gc\" "
                              "removes them", (unsigned)snap.nsegs, o->datadir);
        for (uint32_t i = 0; i < snap.nprocs; i++)
            if (snap.procs[i].alive)
                field("warning:", "process %d registered with this instance is still "
                                  "running; stop it before gc", (int)snap.procs[i].pid);
    }
    dsm__inspect_free(&snap);
    return 0;
}

int dsmctl_status(const struct dsmctl_options *o)
{
    struct dsmctl_lock_state ls;
    struct dsm_inspect_target t;
    int rc;

    if ((rc = dsmctl_inspect_begin(o->datadir, &ls, &t)) != 0)
        return rc;
    rc = ls.held ? DSMCTL_EXIT_OK : DSMCTL_EXIT_NOT_RUNNING;

    field("data directory:", "%s", o->datadir);
    field("instance:", "%s", t.instance);
    print_supervisor(&ls);
    if (t.state_rc == -ENOENT) {
        field("state file:", "none (%s)", ls.held ? "the supervisor is still starting"
                                                  : "the last supervisor shut down cleanly, "
                                                    "or gc cleaned up after it");
        goto out;
    }
    if (t.state_rc < 0) {
        field("state file:", "INVALID: %s", t.msg);
        dsmctl_error("%s", t.msg);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    field("state file:", "valid, written by supervisor pid %d", (int)t.rec.pid);
    field("backend:", "%s", dsm_impl_type_name(t.rec.backend));
    if (t.control_rc == DSM_EDISABLED) {
        field("control segment:", "none (the backend none keeps no shared memory)");
        goto out;
    }
    if (t.control_rc < 0) {
        field("control segment:", "%016llx INVALID: %s", (unsigned long long)t.rec.control,
              t.msg);
        if (t.control_rc == -ENOENT)
            dsmctl_error("the control segment %016llx recorded in the state file of \"%s\" "
                         "does not exist", (unsigned long long)t.rec.control, o->datadir);
        else
            dsmctl_error("the control segment of \"%s\" is not valid: %s", o->datadir, t.msg);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    if (print_control(o, &t, &ls) != 0)
        rc = DSMCTL_EXIT_FAIL;
out:
    dsm__inspect_close(&t);
    return rc;
}
