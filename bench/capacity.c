/* SPDX-License-Identifier: MIT */
/*
 * bench/capacity.c - what one slot of the control table costs, and how
 * large a table can really be configured.
 *
 * PostgreSQL sizes its control segment from a fixed formula (64 + 5 per
 * backend); dynshm takes dsm_max_segments as a setting.  A capacity only
 * counts if a supervisor actually starts with it, so this starts one with
 * the requested number of slots (and as many mappings, at the default
 * number of processes), measures the control segment the backend really
 * made (stat of the object, found through the public raw-layer API, and
 * checked against the layout's own size formula), creates one segment in
 * it, and reports the start-up and shut-down times.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "control/control.h"

#include "bench.h"

/* Size of the OS object behind the running supervisor's control segment. */
static int control_object_size(dsm_impl_type type, const char *dir, uint64_t *out)
{
    dsm_impl_instance *inst;
    char name[4096], path[4200];
    struct stat st;
    int rc;

    if ((rc = dsm_impl_instance_open(type, dir, &inst)) < 0)
        return bench_fail(rc, "dsm_impl_instance_open");
    rc = dsm_impl_segment_name(inst, dsm_control_handle(), name, sizeof(name));
    dsm_impl_instance_close(inst);
    if (rc < 0)
        return bench_fail(rc, "dsm_impl_segment_name");
    if (type == DSM_IMPL_SYSV) {
        struct shmid_ds ds;
        unsigned key;
        int id;

        if (sscanf(name, "key 0x%x", &key) != 1)
            return -EINVAL;
        id = shmget((key_t)key, 0, 0);
        if (id < 0 || shmctl(id, IPC_STAT, &ds) != 0)
            return -errno;
        *out = ds.shm_segsz;
        return 0;
    }
    snprintf(path, sizeof(path), "%s%s", type == DSM_IMPL_POSIX ? "/dev/shm" : "", name);
    if (stat(path, &st) != 0)
        return -errno;
    *out = (uint64_t)st.st_size;
    return 0;
}

static int64_t default_int(const char *name)
{
    dsm_settings *s;
    int64_t v = 0;

    if (dsm_settings_new(&s) == 0) {
        dsm_settings_get_int(s, name, &v);
        dsm_settings_free(s);
    }
    return v;
}

int bench_phase_capacity(const struct bench_opts *o, dsm_impl_type type, uint32_t slots,
                         struct bench_results *r)
{
    struct bench_row *row = bench_add_row(r);
    int64_t nprocs = default_int("dsm_max_processes");
    uint64_t t0, t1, t2, bytes = 0;
    dsm_segment *seg;
    char dir[600];
    size_t want;
    int rc;

    if (row == NULL)
        return -ENOMEM;
    row->kind = ROW_CAPACITY;
    snprintf(row->test, sizeof(row->test), "capacity");
    snprintf(row->backend, sizeof(row->backend), "%s", dsm_impl_type_name(type));
    row->live = slots;
    snprintf(row->metric, sizeof(row->metric), "B/slot");
    row->check = CHECK_AT_MOST;
    row->target = 64;
    row->value = NAN;
    if ((rc = bench_datadir(o, "capacity", dir, sizeof(dir))) < 0)
        return rc;
    fprintf(stderr, "dsm_bench: %s: a control segment of %" PRIu32 " slots...\n",
            dsm_impl_type_name(type), slots);
    t0 = bench_now_ns();
    rc = bench_start(type, dir, slots, slots);
    t1 = bench_now_ns();
    if (rc < 0) {
        snprintf(row->note, sizeof(row->note), "start-up failed: %.120s", dsm_errmsg());
        return 0; /* a result, not a failure of the benchmark */
    }
    rc = control_object_size(type, dir, &bytes);
    want = dsm__control_size(slots, (uint32_t)nprocs, slots);
    if (rc == 0 && (rc = dsm_create(BENCH_PAGE, 0, &seg)) == 0)
        rc = dsm_detach(seg);
    t2 = bench_now_ns();
    dsm_supervisor_shutdown();
    if (rc < 0) {
        snprintf(row->note, sizeof(row->note), "failed after start-up: %.120s", dsm_errmsg());
        return 0;
    }
    row->dyn_med = (double)bytes;
    row->dyn_p90 = (double)(t1 - t0);
    row->raw_med = (double)(bench_now_ns() - t2);
    row->value = (double)bytes / slots;
    snprintf(row->note, sizeof(row->note),
             "%" PRIu32 " slots, %" PRId64 " processes, %" PRIu32 " mappings: %.1f MiB%s; "
             "start-up %.0f ms, shut-down %.0f ms",
             slots, nprocs, slots, (double)bytes / 1048576,
             bytes == want ? " (as the layout says)" : " (NOT the layout's size!)",
             row->dyn_p90 / 1e6, row->raw_med / 1e6);
    return 0;
}
