/* SPDX-License-Identifier: MIT */
/*
 * bench/procs.c - two processes creating, attaching and detaching at once.
 *
 * Every dynshm operation takes the control segment's lock, shared by all
 * processes of the instance.  If that lock were the bottleneck, a second
 * process on a second core would add little.  So one process, then two
 * (a forked worker on the other core), each run the same loop for the same
 * window of time: create + destroy a 4 KiB segment, attach + detach a
 * pinned segment both of them share.  The raw system-call sequence runs
 * the same way, because the kernel has shared locks of its own (the
 * /dev/shm directory, the IPC namespace): dynshm should scale as well as
 * the raw calls do, not better than the kernel allows.  Operations per
 * second count create, attach and each detach as one operation.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define OPS_PER_CYCLE 4 /* create, detach, attach, detach */
#define MAX_ROUNDS 64

enum { MODE_QUIT = 0, MODE_DYN = 1, MODE_RAW = 2 };

struct proc_ctx {
    dsm_handle shared;        /* pinned segment both processes attach */
    struct raw_backend *rb;
    struct raw_seg create;    /* this process's create/destroy descriptor */
    struct raw_seg target;    /* the raw object both processes attach */
};

struct proc_cmd {
    int mode;
    uint64_t start, end;      /* CLOCK_MONOTONIC nanoseconds */
};

static int cycle(struct proc_ctx *c, int mode)
{
    dsm_segment *seg;
    int rc;

    if (mode == MODE_DYN) {
        if ((rc = dsm_create(BENCH_PAGE, 0, &seg)) < 0)
            return bench_fail(rc, "dsm_create");
        if ((rc = dsm_detach(seg)) < 0)
            return bench_fail(rc, "dsm_detach");
        if ((rc = dsm_attach(c->shared, &seg)) < 0)
            return bench_fail(rc, "dsm_attach");
        if ((rc = dsm_detach(seg)) < 0)
            return bench_fail(rc, "dsm_detach");
        return 0;
    }
    if ((rc = raw_create(c->rb, BENCH_PAGE, &c->create)) < 0 ||
        (rc = raw_detach(c->rb, &c->create)) < 0 || (rc = raw_destroy(c->rb, &c->create)) < 0)
        return rc;
    if ((rc = raw_attach(c->rb, &c->target)) < 0 || (rc = raw_detach(c->rb, &c->target)) < 0)
        return rc;
    return 0;
}

/* Wait for start, then count cycles until end; -1 on failure. */
static int64_t run_window(struct proc_ctx *c, int mode, uint64_t start, uint64_t end)
{
    struct timespec ts = {.tv_sec = (time_t)(start / 1000000000u),
                          .tv_nsec = (long)(start % 1000000000u)};
    int64_t n = 0;

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    while (bench_now_ns() < end) {
        if (cycle(c, mode) < 0)
            return -1;
        n++;
    }
    return n;
}

static void worker(int cmd_fd, int res_fd, struct proc_ctx ctx, const struct bench_opts *o,
                   pid_t parent)
{
    struct proc_cmd cmd;
    bool ok;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    bench_pin_cpu(o, 1);
    ok = dsm_worker_init_after_fork() == 0;
    if (!ok)
        bench_fail(-1, "dsm_worker_init_after_fork");
    if (ok && raw_seg_init(&ctx.create) < 0)
        ok = false;
    while (read(cmd_fd, &cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd) && cmd.mode != MODE_QUIT) {
        int64_t n = ok ? run_window(&ctx, cmd.mode, cmd.start, cmd.end) : -1;

        if (write(res_fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
            break;
    }
    raw_destroy(ctx.rb, &ctx.create);
    if (ok)
        dsm_worker_exit();
    _exit(ok ? 0 : 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One window: this process alone, or with the worker; returns operations per second. */
static int window(struct proc_ctx *ctx, int mode, bool two, const struct bench_opts *o,
                  int cmd_fd, int res_fd, double *rate)
{
    uint64_t len = (uint64_t)(o->proc_seconds * 1e9);
    struct proc_cmd cmd = {.mode = mode, .start = bench_now_ns() + 5000000u};
    int64_t mine, theirs = 0;

    cmd.end = cmd.start + len;
    if (two && write(cmd_fd, &cmd, sizeof(cmd)) != (ssize_t)sizeof(cmd))
        return -EPIPE;
    mine = run_window(ctx, mode, cmd.start, cmd.end);
    if (two && read(res_fd, &theirs, sizeof(theirs)) != (ssize_t)sizeof(theirs))
        theirs = -1;
    if (mine < 0 || theirs < 0) {
        fprintf(stderr, "dsm_bench: the two-process run failed\n");
        return -EIO;
    }
    *rate = (double)(mine + theirs) * OPS_PER_CYCLE / o->proc_seconds;
    return 0;
}

int bench_phase_procs(const struct bench_opts *o, dsm_impl_type type, struct bench_results *r)
{
    double rates[4][MAX_ROUNDS], med[4];
    int cmd[2] = {-1, -1}, res[2] = {-1, -1}, rc, rounds = o->proc_rounds, status = 0;
    struct raw_backend rb;
    struct proc_ctx ctx;
    bool pinned = false, raw_live = false;
    char dir[600], mdir[700];
    pid_t pid = -1;

    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;
    if (rounds < 1)
        rounds = 1;
    memset(&ctx, 0, sizeof(ctx));
    ctx.create.shmid = ctx.target.shmid = -1;
    if ((rc = bench_datadir(o, dsm_impl_type_name(type), dir, sizeof(dir))) < 0)
        return rc;
    if ((rc = bench_start(type, dir, 0, 0)) < 0)
        return rc;
    snprintf(mdir, sizeof(mdir), "%s/dynshm_mmap", dir);
    if ((rc = raw_open(&rb, type, o->guardian, mdir)) < 0)
        goto out;
    ctx.rb = &rb;
    if ((rc = bench_make_pinned(BENCH_PAGE, &ctx.shared)) < 0)
        goto out;
    pinned = true;
    if ((rc = raw_seg_init(&ctx.create)) < 0 || (rc = raw_seg_init(&ctx.target)) < 0)
        goto out;
    if ((rc = raw_create(&rb, BENCH_PAGE, &ctx.target)) < 0)
        goto out;
    raw_live = true;
    if ((rc = raw_detach(&rb, &ctx.target)) < 0)
        goto out;
    if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(res, O_CLOEXEC) != 0) {
        rc = -errno;
        goto out;
    }
    fprintf(stderr, "dsm_bench: %s: one process against two...\n", dsm_impl_type_name(type));
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto out;
    }
    if (pid == 0) {
        close(cmd[1]);
        close(res[0]);
        worker(cmd[0], res[1], ctx, o, getppid());
    }
    close(cmd[0]);
    close(res[1]);
    cmd[0] = res[1] = -1;
    for (int k = 0; k < rounds; k++) {
        int order[4] = {0, 1, 2, 3};

        /* A different order each round, so neither mode always runs first. */
        for (int i = 3; i > 0; i--) {
            int j = (int)((bench_now_ns() >> 4) % (uint64_t)(i + 1)), t = order[i];

            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < 4; i++) {
            int m = order[i];

            rc = window(&ctx, m < 2 ? MODE_DYN : MODE_RAW, m % 2 == 1, o, cmd[1], res[0],
                        &rates[m][k]);
            if (rc < 0)
                goto out;
        }
    }
    for (int m = 0; m < 4; m++)
        med[m] = median(rates[m], rounds);
    {
        struct bench_row *row = bench_add_row(r);

        if (row == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        row->kind = ROW_PROCS;
        snprintf(row->test, sizeof(row->test), "2 processes");
        snprintf(row->backend, sizeof(row->backend), "%s",
                 bench_label ? bench_label : dsm_impl_type_name(type));
        row->size = BENCH_PAGE;
        row->dyn_med = med[0];
        row->dyn_p90 = med[1];
        row->raw_med = med[2];
        row->raw_p90 = med[3];
        row->samples = (size_t)rounds;
        snprintf(row->metric, sizeof(row->metric), "2p/1p");
        row->value = med[1] / med[0];
        /* Issue 17: two processes at once at least 1.5x one, from the region. */
        row->check = bench_label ? CHECK_AT_LEAST : CHECK_NONE;
        row->target = 1.5;
        snprintf(row->note, sizeof(row->note),
                 "raw 2p/1p %.2f; dynshm/raw scaling %.3f; dyn/raw time 1p %.3f, 2p %.3f",
                 med[3] / med[2], (med[1] / med[0]) / (med[3] / med[2]), med[2] / med[0],
                 med[3] / med[1]);
    }
out:
    if (cmd[1] >= 0)
        close(cmd[1]); /* the worker reads end-of-file and leaves */
    if (pid > 0) {
        if (rc < 0)
            kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        dsm_supervisor_worker_exited(pid, status);
    }
    if (cmd[0] >= 0)
        close(cmd[0]);
    for (int i = 0; i < 2; i++)
        if (res[i] >= 0)
            close(res[i]);
    if (raw_live) {
        raw_detach(&rb, &ctx.target);
        raw_destroy(&rb, &ctx.target);
    }
    raw_destroy(&rb, &ctx.create);
    if (pinned)
        dsm_unpin_segment(ctx.shared);
    raw_close(&rb);
    dsm_supervisor_shutdown();
    return rc;
}
