/* SPDX-License-Identifier: MIT */
/*
 * status.c - `dsmctl status`: is the instance alive, and how full is it.
 *
 * Alive means the data directory lock is held (see dsm_inspect_open(3));
 * the pids shown are what the lock file and state file recorded, for the
 * operator's information only.  Everything else comes from one snapshot of
 * the control segment, so the numbers agree with each other; the host
 * limits (limits.c) are read after it.
 *
 * The exit status answers the question scripts ask most: 0 running, 3 not
 * running with nothing left, 5 not running but not shut down either (a
 * dead instance: run gc), 1 something could not be read.  --json prints
 * the same facts as one document, with the counters an exporter scrapes.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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
    dsm_metrics m;

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
    field("segments:", "%u live, %s%s, %u pinned", (unsigned)i->live_segments,
          dsmctl_format_size(i->live_bytes, o->human, when, sizeof(when)),
          o->human ? "" : " bytes", (unsigned)i->pinned_segments);
    if (i->creating_segments || i->dying_segments)
        field("in transition:", "%u being created, %u being destroyed",
              (unsigned)i->creating_segments, (unsigned)i->dying_segments);
    if (i->orphans)
        field("orphans:", "%u (segments nobody held after a crash; the supervisor destroys "
                          "them at its next dsm_supervisor_check_workers())",
              (unsigned)i->orphans);
    field("activity:", "%llu created, %llu destroyed since start-up",
          (unsigned long long)i->creates, (unsigned long long)i->destroys);
    if (dsm_inspect_metrics(insp, &m, sizeof(m)) == 0) {
        field("references:", "%llu attaches, %llu detaches, %llu reclaimed from dead "
                             "processes", (unsigned long long)m.attaches,
              (unsigned long long)m.detaches, (unsigned long long)m.reclaims);
        field("failed creates:", "%llu for lack of memory, %llu otherwise",
              (unsigned long long)m.create_enospc, (unsigned long long)m.create_failed);
        if (m.region_size > 0)
            field("region:", "%s%s (min_dynamic_shared_memory); %llu creates served from it, "
                             "%llu fell back to the backend",
                  dsmctl_format_size(m.region_size, o->human, when, sizeof(when)),
                  o->human ? "" : " bytes", (unsigned long long)m.region_hits,
                  (unsigned long long)m.region_fallbacks);
        field("high water:", "%llu segments, %s%s, %llu processes",
              (unsigned long long)m.peak_segments,
              dsmctl_format_size(m.peak_bytes, o->human, when, sizeof(when)),
              o->human ? "" : " bytes",
              (unsigned long long)m.peak_processes);
        if (m.resets)
            field("crash resets:", "%llu", (unsigned long long)m.resets);
    }
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

/* 0 running, 3 stopped cleanly, 5 dead (a state file remains: gc has work). */
static int exit_code(const dsm_instance_info *i)
{
    if (i->state == DSM_INSTANCE_RUNNING)
        return DSMCTL_EXIT_OK;
    return i->state == DSM_INSTANCE_DEAD ? DSMCTL_EXIT_LEFTOVERS : DSMCTL_EXIT_NOT_RUNNING;
}

static const char *state_name(dsm_instance_state s)
{
    switch (s) {
    case DSM_INSTANCE_RUNNING: return "running";
    case DSM_INSTANCE_DEAD: return "dead";
    case DSM_INSTANCE_STOPPED: return "stopped";
    default: return "none";
    }
}

static void json_u64(const char *key, uint64_t v, bool last)
{
    printf("\"%s\": %llu%s", key, (unsigned long long)v, last ? "" : ", ");
}

static void json_metrics(dsm_inspection *insp)
{
    dsm_metrics m;

    printf(",\n  \"metrics\": ");
    if (dsm_inspect_metrics(insp, &m, sizeof(m)) != 0) {
        printf("null");
        return;
    }
    printf("{\"since_usec\": %lld, ", (long long)m.since_usec);
    json_u64("creates", m.creates, false);
    json_u64("destroys", m.destroys, false);
    json_u64("bytes_created", m.bytes_created, false);
    json_u64("attaches", m.attaches, false);
    json_u64("detaches", m.detaches, false);
    json_u64("repairs", m.repairs, false);
    json_u64("resets", m.resets, false);
    json_u64("reclaims", m.reclaims, false);
    json_u64("corruptions", m.corruptions, false);
    json_u64("create_enospc", m.create_enospc, false);
    json_u64("create_failed", m.create_failed, false);
    json_u64("segments", m.segments, false);
    json_u64("bytes", m.bytes, false);
    json_u64("processes", m.processes, false);
    json_u64("peak_segments", m.peak_segments, false);
    json_u64("peak_bytes", m.peak_bytes, false);
    json_u64("peak_processes", m.peak_processes, false);
    json_u64("region_size", m.region_size, false);
    json_u64("region_hits", m.region_hits, false);
    json_u64("region_fallbacks", m.region_fallbacks, true);
    printf("}");
}

/* The status as one JSON document; the exit code as for the text. */
static int print_json(const struct dsmctl_options *o, dsm_inspection *insp,
                      const dsm_instance_info *i, int rc)
{
    bool has_state = i->state_status == 0, has_control = has_state && i->control_status == 0;
    char hb[DSM_HANDLE_STRLEN];
    struct dsmctl_limits l;

    if ((i->state_status < 0 && i->state_status != -ENOENT) ||
        (has_state && i->control_status < 0 && i->control_status != DSM_EDISABLED))
        rc = DSMCTL_EXIT_FAIL;
    printf("{\n  \"format_version\": %d,\n  \"data_directory\": ", DSMCTL_JSON_FORMAT);
    dsmctl_json_string(stdout, o->datadir);
    printf(",\n  \"instance\": \"%s\",\n  \"state\": \"%s\",\n  \"running\": %s,\n  "
           "\"exit_code\": %d,\n  \"lock_pid\": ", i->id, state_name(i->state),
           i->state == DSM_INSTANCE_RUNNING ? "true" : "false", rc);
    if (i->lock_pid > 0)
        printf("%ld", (long)i->lock_pid);
    else
        printf("null");
    printf(",\n  \"state_file\": %s,\n  \"backend\": ", has_state ? "true" : "false");
    if (has_state)
        dsmctl_json_string(stdout, dsm_impl_type_name(i->backend));
    else
        printf("null");
    printf(",\n  \"control_segment\": ");
    if (has_control) {
        printf("{\"handle\": \"%s\", \"name\": ", dsm_handle_format(i->control, hb));
        dsmctl_json_string(stdout, i->control_name);
        printf(", \"size\": %llu, \"supervisor_pid\": %d, \"created_usec\": %llu, "
               "\"recorded_data_directory\": ", (unsigned long long)i->control_size,
               (int)i->supervisor_pid, (unsigned long long)i->created_usec);
        dsmctl_json_string(stdout, i->recorded_datadir ? i->recorded_datadir : "");
        printf("}");
    } else {
        printf("null");
    }
    printf(",\n  \"error\": ");
    if ((i->state_status < 0 && i->state_status != -ENOENT) ||
        (has_state && i->control_status < 0 && i->control_status != DSM_EDISABLED))
        dsmctl_json_string(stdout, i->message);
    else
        printf("null");
    if (has_control) {
        printf(",\n  \"capacity\": {\"segments\": %u, \"processes\": %u, \"mappings\": %u}",
               (unsigned)i->max_segments, (unsigned)i->max_processes,
               (unsigned)i->max_mappings);
        printf(",\n  \"usage\": {\"segments\": %u, \"live_segments\": %u, "
               "\"creating_segments\": %u, \"dying_segments\": %u, \"pinned_segments\": %u, "
               "\"live_bytes\": %llu, \"processes\": %u, \"alive_processes\": %u, "
               "\"mappings\": %u, \"orphans\": %u}",
               (unsigned)i->segments, (unsigned)i->live_segments,
               (unsigned)i->creating_segments, (unsigned)i->dying_segments,
               (unsigned)i->pinned_segments, (unsigned long long)i->live_bytes,
               (unsigned)i->processes, (unsigned)i->alive_processes, (unsigned)i->mappings,
               (unsigned)i->orphans);
    } else {
        printf(",\n  \"capacity\": null,\n  \"usage\": null");
    }
    json_metrics(insp);
    printf(",\n");
    dsmctl_limits(insp, i, o->datadir, &l);
    dsmctl_limits_json(&l);
    printf("\n}\n");
    return rc;
}

int dsmctl_status(const struct dsmctl_options *o)
{
    struct dsmctl_limits l;
    dsm_inspection *insp;
    dsm_instance_info i;
    int rc;

    if ((rc = dsmctl_inspect(o->datadir, &insp, &i)) != 0)
        return rc;
    rc = exit_code(&i);
    if (o->json) {
        rc = print_json(o, insp, &i, rc);
        dsm_inspect_close(insp);
        return rc;
    }

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
        field("left behind:", "only the state file (memfd: the kernel freed every segment); "
                              "\"dsmctl -D %s gc\" removes it", o->datadir);
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
    dsmctl_limits(insp, &i, o->datadir, &l);
    dsmctl_limits_print(&l, o->human);
out:
    dsm_inspect_close(insp);
    return rc;
}
