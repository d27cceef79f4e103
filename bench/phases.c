/* SPDX-License-Identifier: MIT */
/*
 * bench/phases.c - the dynshm side of the latency measurements: create +
 * destroy and attach + detach per backend and size, then the same at
 * growing numbers of live segments.
 *
 * Everything dynshm does here goes through the public API (a supervisor
 * started with settings, dsm_create/dsm_attach/dsm_detach, pinning), as an
 * application would call it.  Each dynshm case is paired with its raw
 * counterpart (raw.c) in one interleaved group, so the two are timed
 * under the same conditions.  Whatever a phase creates it removes before
 * it returns, on failure too: pinned segments are unpinned, raw objects
 * destroyed, and the supervisor shut down (which destroys anything left).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

int bench_fail(int rc, const char *what)
{
    fprintf(stderr, "dsm_bench: %s: %s\n", what, dsm_errmsg());
    return rc;
}

int bench_datadir(const struct bench_opts *o, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", o->tmpdir, name);

    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "dsm_bench: could not create \"%s\": %s\n", buf, strerror(errno));
        return -errno;
    }
    return 0;
}

uint64_t bench_region_bytes;
const char *bench_label;

/* Start a supervisor on dir with this backend; capacities of 0 keep the defaults. */
int bench_start(dsm_impl_type type, const char *dir, uint32_t slots, uint32_t mappings)
{
    dsm_settings *s;
    char v[32];
    int rc;

    if ((rc = dsm_settings_new(&s)) < 0)
        return bench_fail(rc, "settings");
    rc = dsm_settings_set(s, "dynamic_shared_memory_type", dsm_impl_type_name(type));
    if (rc == 0 && slots) {
        snprintf(v, sizeof(v), "%" PRIu32, slots);
        rc = dsm_settings_set(s, "dsm_max_segments", v);
    }
    if (rc == 0 && mappings) {
        snprintf(v, sizeof(v), "%" PRIu32, mappings);
        rc = dsm_settings_set(s, "dsm_max_mappings", v);
    }
    if (rc == 0 && bench_region_bytes) {
        snprintf(v, sizeof(v), "%" PRIu64, bench_region_bytes);
        rc = dsm_settings_set(s, "min_dynamic_shared_memory", v);
    }
    if (rc == 0)
        rc = dsm_supervisor_start(dir, s);
    dsm_settings_free(s);
    if (rc < 0)
        return bench_fail(rc, "supervisor start-up");
    return 0;
}

/* ---- the timed operations ----------------------------------------------- */

static int op_dyn_create(void *p)
{
    struct dyn_arg *a = p;
    dsm_segment *seg;
    int rc = dsm_create(a->size, 0, &seg);

    if (rc < 0)
        return bench_fail(rc, "dsm_create");
    if ((rc = dsm_detach(seg)) < 0)
        return bench_fail(rc, "dsm_detach");
    return 0;
}

static int op_dyn_attach(void *p)
{
    struct dyn_arg *a = p;
    dsm_segment *seg;
    int rc = dsm_attach(a->handle, &seg);

    if (rc < 0)
        return bench_fail(rc, "dsm_attach");
    if ((rc = dsm_detach(seg)) < 0)
        return bench_fail(rc, "dsm_detach");
    return 0;
}

static int op_raw_create(void *p)
{
    struct raw_arg *a = p;
    int rc = raw_create(a->rb, a->size, &a->seg);

    if (rc == 0)
        rc = raw_detach(a->rb, &a->seg);
    if (rc == 0)
        rc = raw_destroy(a->rb, &a->seg);
    return rc;
}

static int op_raw_attach(void *p)
{
    struct raw_arg *a = p;
    int rc = raw_attach(a->rb, &a->seg);

    if (rc == 0)
        rc = raw_detach(a->rb, &a->seg);
    return rc;
}

/* A segment that stays alive unmapped: create, pin, detach. */
int bench_make_pinned(size_t size, dsm_handle *out)
{
    dsm_segment *seg;
    int rc = dsm_create(size, 0, &seg);

    if (rc < 0)
        return bench_fail(rc, "dsm_create");
    *out = dsm_segment_handle(seg);
    if ((rc = dsm_pin_segment(seg)) < 0) {
        bench_fail(rc, "dsm_pin_segment");
        dsm_detach(seg);
        return rc;
    }
    if ((rc = dsm_detach(seg)) < 0)
        return bench_fail(rc, "dsm_detach");
    return 0;
}

/* The attach target of the raw side: created once, left unmapped. */
static int raw_target(struct raw_arg *a, struct raw_backend *rb, size_t size)
{
    int rc;

    a->rb = rb;
    a->size = size;
    if ((rc = raw_seg_init(&a->seg)) < 0)
        return rc;
    if ((rc = raw_create(rb, size, &a->seg)) < 0)
        return rc;
    a->live = true;
    return raw_detach(rb, &a->seg);
}

static void raw_target_drop(struct raw_arg *a)
{
    if (a->live) {
        raw_detach(a->rb, &a->seg);
        raw_destroy(a->rb, &a->seg);
        a->live = false;
    }
}

int bench_quad_setup(struct bench_quad *q, struct raw_backend *rb, size_t size)
{
    int rc;

    memset(q, 0, sizeof(*q));
    q->dc.size = q->da.size = size;
    q->rc.rb = rb;
    q->rc.size = size;
    if ((rc = raw_seg_init(&q->rc.seg)) < 0)
        return rc;
    if ((rc = bench_make_pinned(size, &q->da.handle)) < 0)
        return rc;
    q->pinned = true;
    return raw_target(&q->ra, rb, size);
}

void bench_quad_teardown(struct bench_quad *q)
{
    raw_target_drop(&q->ra);
    if (q->pinned && dsm_unpin_segment(q->da.handle) < 0)
        bench_fail(-1, "dsm_unpin_segment");
    q->pinned = false;
}

void bench_quad_cases(struct bench_quad *q, struct bench_case *c, int group)
{
    c[0] = (struct bench_case){.label = "dyn create", .op = op_dyn_create, .arg = &q->dc,
                               .group = group};
    c[1] = (struct bench_case){.label = "raw create", .op = op_raw_create, .arg = &q->rc,
                               .group = group};
    c[2] = (struct bench_case){.label = "dyn attach", .op = op_dyn_attach, .arg = &q->da,
                               .group = group + 1};
    c[3] = (struct bench_case){.label = "raw attach", .op = op_raw_attach, .arg = &q->ra,
                               .group = group + 1};
}

/* Fill a latency row from a dynshm case and its raw partner. */
struct bench_row *bench_latency_row(struct bench_results *r, const char *test,
                                     dsm_impl_type type, size_t size, uint64_t live,
                                     struct bench_case *dyn, struct bench_case *raw)
{
    struct bench_row *row = bench_add_row(r);

    if (row == NULL)
        return NULL;
    row->kind = ROW_LATENCY;
    snprintf(row->test, sizeof(row->test), "%s", test);
    snprintf(row->backend, sizeof(row->backend), "%s",
             bench_label ? bench_label : dsm_impl_type_name(type));
    row->size = size;
    row->live = live;
    bench_stats(dyn, &row->dyn_med, &row->dyn_p90);
    bench_stats(raw, &row->raw_med, &row->raw_p90);
    row->samples = dyn->n < raw->n ? dyn->n : raw->n;
    return row;
}

/* ---- phase 1: every size, no other segments ----------------------------------- */

int bench_phase_base(const struct bench_opts *o, dsm_impl_type type, struct bench_results *r)
{
    struct bench_case cases[4 * BENCH_MAX_SIZES];
    struct bench_quad q[BENCH_MAX_SIZES];
    struct raw_backend rb;
    char dir[600], mdir[700];
    int rc, nq = 0;

    memset(cases, 0, sizeof(cases));
    if ((rc = bench_datadir(o, dsm_impl_type_name(type), dir, sizeof(dir))) < 0)
        return rc;
    if ((rc = bench_start(type, dir, 0, 0)) < 0)
        return rc;
    snprintf(mdir, sizeof(mdir), "%s/dynshm_mmap", dir);
    if ((rc = raw_open(&rb, type, o->guardian, mdir)) < 0)
        goto out;
    for (; nq < o->nsizes; nq++) {
        if ((rc = bench_quad_setup(&q[nq], &rb, o->sizes[nq])) < 0) {
            nq++;
            goto out;
        }
        bench_quad_cases(&q[nq], &cases[4 * nq], 2 * nq);
    }
    fprintf(stderr, "dsm_bench: %s: create/attach at %d size(s)...\n", dsm_impl_type_name(type),
            o->nsizes);
    if ((rc = bench_run_group(cases, 4 * nq, o)) < 0)
        goto out;
    for (int i = 0; i < nq; i++) {
        struct bench_row *row;

        row = bench_latency_row(r, "create+destroy", type, o->sizes[i], 0, &cases[4 * i],
                          &cases[4 * i + 1]);
        if (row == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(row->metric, sizeof(row->metric), "dyn/raw");
        row->value = row->dyn_med / row->raw_med;
        row->check = CHECK_AT_MOST;
        /* memfd's raw floor is posix's system calls (raw.c): issue 17's targets */
        row->target = type == DSM_IMPL_MEMFD ? 1.30 : 1.05;
        snprintf(row->note, sizeof(row->note), "%+.2f us", (row->dyn_med - row->raw_med) / 1e3);
        row = bench_latency_row(r, "attach+detach", type, o->sizes[i], 0, &cases[4 * i + 2],
                          &cases[4 * i + 3]);
        if (row == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(row->metric, sizeof(row->metric), "dyn/raw");
        row->value = row->dyn_med / row->raw_med;
        row->check = CHECK_AT_MOST;
        row->target = type == DSM_IMPL_MEMFD ? 1.50 : 1.10;
        snprintf(row->note, sizeof(row->note), "%+.2f us", (row->dyn_med - row->raw_med) / 1e3);
    }
out:
    for (int i = 0; i < nq; i++)
        bench_quad_teardown(&q[i]);
    for (int i = 0; i < 4 * BENCH_MAX_SIZES; i++)
        bench_case_free(&cases[i]);
    raw_close(&rb);
    dsm_supervisor_shutdown();
    return rc;
}

/* ---- phase 2: growing numbers of live segments --------------------------------- */

/* The table sizes this backend can hold: SysV may be capped by kernel.shmmni. */
static int live_counts(const struct bench_opts *o, dsm_impl_type type, uint32_t sysv_limit,
                       uint32_t *out, struct bench_results *r)
{
    int n = 0;

    for (int i = 0; i < o->nlive; i++) {
        uint32_t v = o->live[i];

        if (type == DSM_IMPL_SYSV && v > sysv_limit) {
            bench_note(r, "sysv: %" PRIu32 " live segments exceed kernel.shmmni; measured "
                          "at %" PRIu32 " instead (the largest that fits)", v, sysv_limit);
            v = sysv_limit;
        }
        if (n == 0 || v > out[n - 1])
            out[n++] = v;
    }
    return n;
}

/* Change the number of pinned live segments to want: create more, or unpin the newest. */
static int set_live(dsm_handle *handles, uint32_t *have, uint32_t want, uint64_t *fill_ns,
                    uint64_t *filled, uint64_t *unpin_ns, uint64_t *unpinned)
{
    uint64_t t0 = bench_now_ns();
    int rc;

    if (*have < want) {
        for (; *have < want; (*have)++, (*filled)++)
            if ((rc = bench_make_pinned(BENCH_PAGE, &handles[*have])) < 0)
                return rc;
        *fill_ns += bench_now_ns() - t0;
    } else if (*have > want) {
        for (; *have > want; (*have)--, (*unpinned)++)
            if ((rc = dsm_unpin_segment(handles[*have - 1])) < 0)
                return bench_fail(rc, "dsm_unpin_segment");
        *unpin_ns += bench_now_ns() - t0;
    }
    return 0;
}

/*
 * The table grows 10 -> 1,000 -> ... -> 100,000 and shrinks back, measuring
 * at every step on the way up and again on the way down (an ABBA design):
 * the two passes are pooled, so a slow drift of the machine during the
 * phase cancels instead of looking like an effect of the table size.
 */
int bench_phase_live(const struct bench_opts *o, dsm_impl_type type, uint32_t sysv_limit,
                     struct bench_results *r)
{
    uint32_t counts[BENCH_MAX_LIVE], have = 0;
    struct bench_case cases[4 * BENCH_MAX_LIVE];
    dsm_handle *handles = NULL;
    struct raw_backend rb;
    struct bench_quad q;
    char dir[600], mdir[700];
    int rc, ncounts = live_counts(o, type, sysv_limit, counts, r);
    uint64_t fill_ns = 0, filled = 0, unpin_ns = 0, unpinned = 0;

    memset(cases, 0, sizeof(cases));
    memset(&q, 0, sizeof(q));
    if (ncounts == 0)
        return 0;
    if ((rc = bench_datadir(o, dsm_impl_type_name(type), dir, sizeof(dir))) < 0)
        return rc;
    handles = calloc(counts[ncounts - 1] ? counts[ncounts - 1] : 1, sizeof(*handles));
    if (handles == NULL)
        return -ENOMEM;
    /* Room for every live segment, the attach target and what the cases create. */
    if ((rc = bench_start(type, dir, counts[ncounts - 1] + 64, counts[ncounts - 1] + 64)) < 0)
        goto out_free;
    snprintf(mdir, sizeof(mdir), "%s/dynshm_mmap", dir);
    if ((rc = raw_open(&rb, type, o->guardian, mdir)) < 0)
        goto out;
    if ((rc = bench_quad_setup(&q, &rb, BENCH_PAGE)) < 0)
        goto out;
    for (int k = 0; k < ncounts; k++)
        bench_quad_cases(&q, &cases[4 * k], 0);
    for (int step = 0; step < 2 * ncounts; step++) {
        int k = step < ncounts ? step : 2 * ncounts - 1 - step;

        fprintf(stderr, "dsm_bench: %s: %" PRIu32 " live segments (%s)...\n",
                dsm_impl_type_name(type), counts[k], step < ncounts ? "up" : "down");
        rc = set_live(handles, &have, counts[k], &fill_ns, &filled, &unpin_ns, &unpinned);
        if (rc < 0)
            goto out;
        if ((rc = bench_run_group(&cases[4 * k], 4, o)) < 0)
            goto out;
    }
    for (int k = 0; k < ncounts; k++) {
        for (int a = 0; a < 2; a++) {
            struct bench_case *dyn = &cases[4 * k + 2 * a], *base = &cases[2 * a];
            struct bench_row *row = bench_latency_row(r, a ? "attach+detach" : "create+destroy", type,
                                                BENCH_PAGE, counts[k], dyn, dyn + 1);
            double base_med, base_p90, raw_base;

            if (row == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            bench_stats(base, &base_med, &base_p90);
            bench_stats(base + 1, &raw_base, &base_p90);
            snprintf(row->metric, sizeof(row->metric), "vs %" PRIu32 " live", counts[0]);
            row->value = row->dyn_med / base_med;
            row->check = k == 0 ? CHECK_NONE : CHECK_AT_MOST;
            row->target = 1.15;
            snprintf(row->note, sizeof(row->note), "raw vs %" PRIu32 " live %.3f; %+.2f us%s",
                     counts[0], row->raw_med / raw_base, (row->dyn_med - row->raw_med) / 1e3,
                     counts[k] < o->live[o->nlive - 1] && k == ncounts - 1
                         ? "; the most kernel.shmmni allows"
                         : "");
        }
    }
out:
    if (set_live(handles, &have, 0, &fill_ns, &filled, &unpin_ns, &unpinned) < 0 && rc == 0)
        rc = -1;
    if (rc == 0 && filled > 0 && unpinned > 0)
        bench_note(r, "%s: live segments made at %.1f us each (create+pin+detach), "
                      "unpinned at %.1f us each",
                   dsm_impl_type_name(type), (double)fill_ns / (double)filled / 1e3,
                   (double)unpin_ns / (double)unpinned / 1e3);
    bench_quad_teardown(&q);
    for (int i = 0; i < 4 * BENCH_MAX_LIVE; i++)
        bench_case_free(&cases[i]);
    raw_close(&rb);
    dsm_supervisor_shutdown();
out_free:
    free(handles);
    return rc;
}
