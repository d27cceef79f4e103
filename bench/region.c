/* SPDX-License-Identifier: MIT */
/*
 * bench/region.c - the preallocated region (min_dynamic_shared_memory)
 * against the posix backend's system calls, in the same run.
 *
 * Issue 17's targets: create+destroy of 4 KiB - 64 KiB segments from the
 * region at least 20x faster than posix's create floor of the same size
 * (shm_open, ftruncate, fallocate, mmap, munmap, shm_unlink), attach +
 * detach at least 20x faster than posix's attach floor (shm_open, fstat,
 * mmap, close, munmap); flat to 100,000 live region segments; two
 * processes at once at least 1.5x one.  The first two are measured here
 * (rows "region" with metric raw/dyn, the speed-up); the last two reuse
 * the live and procs phases with a region configured, so their rows read
 * like every backend's, under the backend name "region".
 *
 * The region segments live in a posix instance's region; a check after
 * each measurement says whether any create fell back to the backend (a
 * fallback would time posix, not the region).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <dynshm/inspect.h>

#include "bench.h"

/* Fallbacks so far in the instance on dir (-1 if it cannot be read). */
static int64_t fallbacks(const char *dir)
{
    dsm_inspection *insp;
    dsm_metrics m;
    int64_t n = -1;

    if (dsm_inspect_open(dir, 1000, &insp) < 0)
        return -1;
    if (dsm_inspect_metrics(insp, &m, sizeof(m)) == 0)
        n = (int64_t)m.region_fallbacks;
    dsm_inspect_close(insp);
    return n;
}

/* Create and attach from the region, at each size up to 64 KiB, against posix. */
static int speed(const struct bench_opts *o, struct bench_results *r)
{
    static const size_t sizes[] = {4096, 16384, 65536};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    struct bench_case cases[4 * N];
    struct bench_quad q[N];
    struct raw_backend rb;
    char dir[600], mdir[700];
    int rc, nq = 0;
    int64_t fb;

    memset(cases, 0, sizeof(cases));
    if ((rc = bench_datadir(o, "region", dir, sizeof(dir))) < 0)
        return rc;
    if ((rc = bench_start(DSM_IMPL_POSIX, dir, 0, 0)) < 0)
        return rc;
    snprintf(mdir, sizeof(mdir), "%s/dynshm_mmap", dir);
    if ((rc = raw_open(&rb, DSM_IMPL_POSIX, o->guardian, mdir)) < 0)
        goto out;
    for (; nq < N; nq++) {
        if ((rc = bench_quad_setup(&q[nq], &rb, sizes[nq])) < 0) {
            nq++;
            goto out;
        }
        bench_quad_cases(&q[nq], &cases[4 * nq], 2 * nq);
    }
    fprintf(stderr, "dsm_bench: region: create/attach at %d size(s) against posix...\n", N);
    if ((rc = bench_run_group(cases, 4 * nq, o)) < 0)
        goto out;
    if ((fb = fallbacks(dir)) != 0)
        bench_note(r, "region: %" PRId64 " create(s) fell back to posix during the timing: "
                      "those samples are not the region's", fb);
    for (int i = 0; i < nq; i++) {
        for (int a = 0; a < 2; a++) {
            struct bench_row *row =
                bench_latency_row(r, a ? "attach+detach" : "create+destroy", DSM_IMPL_POSIX,
                                  sizes[i], 0, &cases[4 * i + 2 * a], &cases[4 * i + 2 * a + 1]);

            if (row == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            snprintf(row->metric, sizeof(row->metric), "raw/dyn");
            row->value = row->raw_med / row->dyn_med;
            row->check = CHECK_AT_LEAST;
            row->target = 20.0;
            snprintf(row->note, sizeof(row->note), "posix floor %.2f us, region %.3f us",
                     row->raw_med / 1e3, row->dyn_med / 1e3);
        }
    }
out:
    for (int i = 0; i < nq; i++)
        bench_quad_teardown(&q[i]);
    for (int i = 0; i < 4 * N; i++)
        bench_case_free(&cases[i]);
    raw_close(&rb);
    dsm_supervisor_shutdown();
    return rc;
}

int bench_phase_region(const struct bench_opts *o, struct bench_results *r)
{
    uint32_t most = o->nlive ? o->live[o->nlive - 1] : 0;
    int rc;

    if (!dsm_impl_type_available(DSM_IMPL_POSIX)) {
        bench_note(r, "region: not measured (its floor is the posix backend, not built here)");
        return 0;
    }
    bench_label = "region";
    /* 64 MiB for the speed cases; for the live phase, a page per live segment and room. */
    bench_region_bytes = UINT64_C(64) << 20;
    rc = speed(o, r);
    if (rc == 0 && most > 0) {
        bench_region_bytes = ((uint64_t)most + 1024) * BENCH_PAGE;
        rc = bench_phase_live(o, DSM_IMPL_POSIX, UINT32_MAX, r);
    }
    if (rc == 0) {
        bench_region_bytes = UINT64_C(64) << 20;
        rc = bench_phase_procs(o, DSM_IMPL_POSIX, r);
    }
    bench_label = NULL;
    bench_region_bytes = 0;
    if (rc == 0)
        bench_note(r, "region: rows \"region\" are posix with min_dynamic_shared_memory set; "
                      "create and attach rows give raw/dyn (the speed-up over posix's calls), "
                      "target >= 20; live rows and 2 processes read like every backend's");
    return rc;
}
