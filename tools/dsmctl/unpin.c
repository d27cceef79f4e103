/* SPDX-License-Identifier: MIT */
/*
 * unpin.c - `dsmctl unpin HANDLE`: drop the pin of a segment a running
 * instance leaked (pinned with dsm_pin_segment() and forgotten), by the
 * instance's own rules.
 *
 * How, and why this way.  Removing the OS object behind the supervisor's
 * back would leave a LIVE slot naming nothing, and an attach of it would
 * fail in some worker later; the table is the truth and must change first.
 * Two ways keep it so: a request channel the supervisor serves, or dsmctl
 * joining the instance for the length of one call.  dsmctl joins: it
 * registers as an exec'd worker with dsm_worker_attach(3) (the same path
 * any program started with the data directory takes), calls
 * dsm_unpin_segment(3), and leaves with dsm_worker_exit(3).  The unpin is
 * then exactly what a worker's would be: one critical section under the
 * control lock; if nobody maps the segment any more, dsmctl holds the
 * destroy claim and removes the object, and a crash of dsmctl in between
 * is a worker crash the supervisor already knows how to clean up.  A
 * request channel would need a new wait loop in every supervisor and a
 * protocol to version, for the same table operation.
 *
 * The price: for a few milliseconds dsmctl is a registered process.  Its
 * death there (only SIGKILL can cause it: the usual termination signals
 * are blocked for that window) is handled by the instance's crash policy
 * like any worker's; under the default policy that is a crash reset,
 * under `reclaim` only dsmctl's references are released.  The manual
 * says so.  Before joining, dsmctl checks in a read-only snapshot that the
 * instance runs and that HANDLE is a live, pinned segment, so a typo never
 * registers anything.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "dsmctl.h"

/* Where HANDLE stands in a fresh snapshot: 1 pinned, 0 live but not pinned, -1 absent. */
static int find(dsm_inspection *insp, dsm_handle h, uint32_t *refcnt)
{
    for (size_t i = 0; i < dsm_inspect_nsegments(insp); i++) {
        dsm_segment_info s;

        if (dsm_inspect_segment(insp, i, &s, sizeof(s)) == 0 && s.handle == h &&
            strcmp(s.state, "live") == 0) {
            *refcnt = s.refcnt;
            return s.pinned ? 1 : 0;
        }
    }
    return -1;
}

static void report(const struct dsmctl_options *o, const char *hb, bool destroyed,
                   uint32_t holders)
{
    if (o->json) {
        printf("{\n  \"format_version\": %d,\n  \"data_directory\": ", DSMCTL_JSON_FORMAT);
        dsmctl_json_string(stdout, o->datadir);
        printf(",\n  \"handle\": \"%s\",\n  \"unpinned\": true,\n  \"destroyed\": %s,\n  "
               "\"holders\": %u\n}\n", hb, destroyed ? "true" : "false", (unsigned)holders);
    } else if (destroyed) {
        printf("unpinned segment %s; nobody mapped it, so it was destroyed\n", hb);
    } else {
        printf("unpinned segment %s; it is destroyed when the last of its %u mapping%s is "
               "detached\n", hb, (unsigned)holders, holders == 1 ? "" : "s");
    }
}

int dsmctl_unpin(const struct dsmctl_options *o)
{
    char hb[DSM_HANDLE_STRLEN], msg[512];
    dsm_inspection *insp;
    dsm_instance_info info;
    dsm_handle h;
    sigset_t block, old;
    uint32_t refcnt = 0;
    int rc, where;

    if (dsm_handle_parse(o->arg, &h) < 0) {
        dsmctl_error("\"%s\" is not a segment handle (16 hexadecimal digits, as dsmctl list "
                     "shows them)", o->arg);
        return DSMCTL_EXIT_USAGE;
    }
    dsm_handle_format(h, hb);
    if ((rc = dsmctl_inspect(o->datadir, &insp, &info)) != 0)
        return rc;
    if (info.state != DSM_INSTANCE_RUNNING) {
        dsm_inspect_close(insp);
        dsmctl_error("no supervisor is running on \"%s\": unpin works through a running "
                     "instance (a dead one's segments are removed by \"dsmctl -D %s gc\")",
                     o->datadir, o->datadir);
        return DSMCTL_EXIT_NOT_RUNNING;
    }
    where = find(insp, h, &refcnt);
    dsm_inspect_close(insp);
    if (where < 0) {
        dsmctl_error("instance on \"%s\" has no live segment %s", o->datadir, hb);
        return DSMCTL_EXIT_FAIL;
    }
    if (where == 0) {
        dsmctl_error("segment %s is not pinned", hb);
        return DSMCTL_EXIT_FAIL;
    }

    /* Registered from here to dsm_worker_exit(): only SIGKILL may end us meanwhile. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    sigaddset(&block, SIGTSTP);
    sigprocmask(SIG_BLOCK, &block, &old);
    rc = dsm_worker_attach(o->datadir);
    if (rc == 0)
        rc = dsm_unpin_segment(h);
    /* The message before leaving, which may log or set its own. */
    snprintf(msg, sizeof(msg), "%s", rc < 0 ? dsm_errmsg() : "");
    dsm_worker_exit();
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        dsmctl_error("could not unpin segment %s: %s", hb, msg);
        return DSMCTL_EXIT_FAIL;
    }
    /* What is left now, from a fresh snapshot (another process may have attached). */
    refcnt = 0;
    if (dsm_inspect_open(o->datadir, DSMCTL_LOCK_TIMEOUT_MS, &insp) == 0) {
        where = find(insp, h, &refcnt);
        dsm_inspect_close(insp);
    } else {
        where = -1;
    }
    report(o, hb, where < 0, refcnt);
    return DSMCTL_EXIT_OK;
}
