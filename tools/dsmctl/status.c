/* SPDX-License-Identifier: MIT */
/*
 * status.c - `dsmctl status`: is the instance alive, and how full is it.
 *
 * Alive means the data directory lock is held (see dsm_inspect_open(3));
 * the pids shown are what the lock file and state file recorded, for the
 * operator's information only.  Everything else comes from one snapshot of
 * the control segment, so the numbers agree with each other.
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

static void print_supervisor(const dsm_instance_info *i)
{
    if (i->state == DSM_INSTANCE_RUNNING)
        field("supervisor:", "running (the data directory lock is held by the supervisor or "
                             "its workers; supervisor pid %ld)", (long)i->lock_pid);
    else if (i->lock_file)
        field("supervisor:", "not running (the data directory lock is free; last supervisor "
                             "pid %ld)", (long)i->lock_pid);
    else
        field("supervisor:", "not running (no lock file)");
}

/* The lines that need a valid control segment. */
static void print_control(const struct dsmctl_options *o, dsm_inspection *insp,
                          const dsm_instance_info *i)
{
    char when[64], age[32];
    int64_t created = (int64_t)(i->created_usec / 1000000);

    field("control segment:", "%016llx \"%s\" (%llu bytes), valid",
          (unsigned long long)i->control, i->control_name, (unsigned long long)i->control_size);
    dsmctl_format_time(created, when, sizeof(when));
    dsmctl_format_age((int64_t)time(NULL) - created, age, sizeof(age));
    field("created:", "%s (%s ago) by supervisor pid %d", when, age, (int)i->supervisor_pid);
    field("slots:", "%u used of %u (dsm_max_segments)", (unsigned)i->segments,
          (unsigned)i->max_segments);
    field("processes:", "%u registered of %u (dsm_max_processes), %u running",
          (unsigned)i->processes, (unsigned)i->max_processes, (unsigned)i->alive_processes);
    field("mappings:", "%u used of %u (dsm_max_mappings)", (unsigned)i->mappings,
          (unsigned)i->max_mappings);
    field("segments:", "%u live, %llu bytes, %u pinned", (unsigned)i->live_segments,
          (unsigned long long)i->live_bytes, (unsigned)i->pinned_segments);
    if (i->creating_segments || i->dying_segments)
        field("in transition:", "%u being created, %u being destroyed",
              (unsigned)i->creating_segments, (unsigned)i->dying_segments);
    if (i->orphans)
        field("orphans:", "%u (segments nobody held after a crash; the supervisor destroys "
                          "them at its next dsm_supervisor_check_workers())",
              (unsigned)i->orphans);
    field("activity:", "%llu created, %llu destroyed since start-up",
          (unsigned long long)i->creates, (unsigned long long)i->destroys);
    field("repairs:", "%llu (times the table was rebuilt after a process died holding its "
                      "lock)", (unsigned long long)i->repairs);
    if (i->corruptions)
        field("corruptions:", "%llu (damaged entries found; the table was rebuilt each time)",
              (unsigned long long)i->corruptions);
    if (i->state != DSM_INSTANCE_RUNNING) {
        field("left behind:", "%u segment(s) and the control segment; \"dsmctl -D %s gc\" "
                              "removes them", (unsigned)i->segments, o->datadir);
        for (size_t k = 0; k < dsm_inspect_nprocesses(insp); k++) {
            dsm_process_info p;

            if (dsm_inspect_process(insp, k, &p, sizeof(p)) == 0 && p.alive)
                field("warning:", "process %d registered with this instance is still "
                                  "running; stop it before gc", (int)p.pid);
        }
    }
}

int dsmctl_status(const struct dsmctl_options *o)
{
    dsm_inspection *insp;
    dsm_instance_info i;
    int rc;

    if ((rc = dsmctl_inspect(o->datadir, &insp, &i)) != 0)
        return rc;
    rc = i.state == DSM_INSTANCE_RUNNING ? DSMCTL_EXIT_OK : DSMCTL_EXIT_NOT_RUNNING;

    field("data directory:", "%s", o->datadir);
    field("instance:", "%s", i.id);
    print_supervisor(&i);
    if (i.state_status == -ENOENT) {
        field("state file:", "none (%s)", i.state == DSM_INSTANCE_RUNNING
                                              ? "the supervisor is still starting"
                                              : "the last supervisor shut down cleanly, or gc "
                                                "cleaned up after it");
        goto out;
    }
    if (i.state_status < 0) {
        field("state file:", "INVALID: %s", i.message);
        dsmctl_error("%s", i.message);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    field("state file:", "valid, written by supervisor pid %d", (int)i.state_pid);
    field("backend:", "%s", dsm_impl_type_name(i.backend));
    if (i.control_status == DSM_EDISABLED) {
        field("control segment:", "none (the backend none keeps no shared memory)");
        goto out;
    }
    if (i.control_status == -ENOENT && i.backend == DSM_IMPL_MEMFD &&
        i.state != DSM_INSTANCE_RUNNING) {
        /* Expected: memfd segments, the control segment too, die with their processes. */
        field("control segment:", "%016llx gone with the instance's processes",
              (unsigned long long)i.control);
        field("left behind:", "nothing (memfd: the kernel freed every segment)");
        goto out;
    }
    if (i.control_status < 0) {
        field("control segment:", "%016llx INVALID: %s", (unsigned long long)i.control,
              i.message);
        if (i.control_status == -ENOENT)
            dsmctl_error("the control segment %016llx recorded in the state file of \"%s\" "
                         "does not exist", (unsigned long long)i.control, o->datadir);
        else
            dsmctl_error("the control segment of \"%s\" is not valid: %s", o->datadir,
                         i.message);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    print_control(o, insp, &i);
out:
    dsm_inspect_close(insp);
    return rc;
}
