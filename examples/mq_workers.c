/* SPDX-License-Identifier: MIT */
/*
 * mq_workers.c - a supervisor hands jobs to workers through message queues
 * found by key in a segment's table of contents, and gathers the results;
 * one worker is killed, and the supervisor sees it promptly.
 *
 *   mq_workers DATADIR
 *
 * The supervisor makes one segment holding a table of contents and, per
 * worker, a queue pair: jobs go out on KEY_JOBS + i, results come back on
 * KEY_RESULTS + i.  It forks the workers, attaches its ends, names each
 * worker as the peer of its queues, and sends each one a job: a range of
 * numbers to add up.  Each worker finds its queues by key, receives the
 * job, sends back the sum and waits for the next job until the supervisor
 * detaches.  Worker VICTIM is SIGKILLed after it took its job; waiting for
 * its result (with no timeout) returns -EPIPE within 100 ms instead of
 * hanging.  With dsm_crash_policy=reclaim the dead worker's reference is
 * released and the others carry on.  Public API only; built and run by
 * `make check` (test/examples.sh).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

#define NWORKERS 4
#define VICTIM 2
#define RING_BYTES 4096
#define KEY_JOBS UINT64_C(0x6a6f6200000000)    /* "job", + worker number */
#define KEY_RESULTS UINT64_C(0x72657300000000) /* "res", + worker number */

struct job {
    uint64_t first, last; /* add up first..last */
};

static dsm_handle seg_handle; /* the workers inherit it from the supervisor */

static void log_hook(dsm_log_level level, const char *message, void *arg)
{
    (void)level;
    (void)arg;
    printf("  [dynshm] %s\n", message);
    fflush(stdout);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Find the queue stored under key and attach to it as role. */
static int open_queue(dsm_toc *toc, uint64_t key, dsm_mq_role role, dsm_mq **mq)
{
    size_t size = dsm_mq_estimate(RING_BYTES);
    void *q;
    int rc;

    if ((rc = dsm_toc_lookup(toc, key, &q)) != 0)
        return rc;
    return dsm_mq_attach(q, size, role, mq);
}

/* ---- a worker -------------------------------------------------------------------- */

static int worker(int i)
{
    dsm_segment *seg;
    dsm_toc *toc;
    dsm_mq *jobs, *results;
    void *msg;
    size_t len;
    int rc;

    if (dsm_worker_init_after_fork() != 0 || dsm_attach(seg_handle, &seg) != 0 ||
        dsm_pin_mapping(seg) != 0 ||
        dsm_toc_attach(dsm_segment_address(seg), dsm_segment_map_length(seg), &toc) != 0 ||
        open_queue(toc, KEY_JOBS + (uint64_t)i, DSM_MQ_RECEIVER, &jobs) != 0 ||
        open_queue(toc, KEY_RESULTS + (uint64_t)i, DSM_MQ_SENDER, &results) != 0) {
        fprintf(stderr, "worker %d: %s\n", i, dsm_errmsg());
        return 1;
    }
    while ((rc = dsm_mq_receive(jobs, &msg, &len, -1)) == 0) {
        struct job job;
        uint64_t sum = 0;

        if (len != sizeof(job))
            return 1;
        memcpy(&job, msg, sizeof(job));
        for (uint64_t n = job.first; n <= job.last; n++)
            sum += n;
        if (i == VICTIM)
            for (;;)
                pause(); /* took the job, never answers: the supervisor kills it */
        if (dsm_mq_send(results, &sum, sizeof(sum), -1) != 0)
            return 1;
    }
    /* -EPIPE: the supervisor detached, no more jobs. */
    dsm_mq_detach(jobs);
    dsm_mq_detach(results);
    dsm_toc_release(toc);
    return rc == -EPIPE ? 0 : 1;
}

/* ---- the supervisor -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    dsm_settings *settings;
    dsm_toc_estimator est;
    dsm_segment *seg;
    dsm_toc *toc;
    dsm_mq *jobs[NWORKERS], *results[NWORKERS];
    pid_t pids[NWORKERS];
    size_t qsize = dsm_mq_estimate(RING_BYTES);
    int failures = 0, rc;

    if (argc != 2) {
        fprintf(stderr, "usage: mq_workers DATADIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dsm_set_log_hook(log_hook, NULL, DSM_LOG_INFO);
    if (dsm_settings_new(&settings) != 0 ||
        dsm_settings_set(settings, "dsm_crash_policy", "reclaim") != 0 ||
        dsm_supervisor_start(argv[1], settings) != 0) {
        fprintf(stderr, "start: %s\n", dsm_errmsg());
        return 1;
    }
    dsm_settings_free(settings);

    /* One segment: the table of contents and two queues per worker. */
    dsm_toc_estimator_init(&est);
    for (int i = 0; i < 2 * NWORKERS; i++)
        dsm_toc_estimate_chunk(&est, qsize);
    dsm_toc_estimate_keys(&est, 2 * NWORKERS);
    if (dsm_create(dsm_toc_estimate(&est), 0, &seg) != 0 || dsm_pin_mapping(seg) != 0 ||
        dsm_toc_create(dsm_segment_address(seg), dsm_segment_map_length(seg), 2 * NWORKERS,
                       &toc) != 0)
        goto fail;
    for (int i = 0; i < NWORKERS; i++) {
        void *q;

        for (int dir = 0; dir < 2; dir++) {
            uint64_t key = (dir == 0 ? KEY_JOBS : KEY_RESULTS) + (uint64_t)i;

            if (dsm_toc_allocate(toc, qsize, &q) != 0 || dsm_mq_create(q, qsize) != 0 ||
                dsm_toc_insert(toc, key, q) != 0)
                goto fail;
        }
        if (open_queue(toc, KEY_JOBS + (uint64_t)i, DSM_MQ_SENDER, &jobs[i]) != 0 ||
            open_queue(toc, KEY_RESULTS + (uint64_t)i, DSM_MQ_RECEIVER, &results[i]) != 0)
            goto fail;
    }
    seg_handle = dsm_segment_handle(seg);

    /* Fork the workers; each queue knows which process is on its other end. */
    for (int i = 0; i < NWORKERS; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            goto fail;
        if (pids[i] == 0) {
            rc = worker(i);
            dsm_worker_exit(); /* leave cleanly: detach, unregister */
            _exit(rc);
        }
        if (dsm_mq_set_peer(jobs[i], pids[i]) != 0 || dsm_mq_set_peer(results[i], pids[i]) != 0)
            goto fail;
    }
    for (int i = 0; i < NWORKERS; i++) {
        struct job job = {.first = 1, .last = 1000 * (uint64_t)(i + 1)};

        if (dsm_mq_send(jobs[i], &job, sizeof(job), -1) != 0)
            goto fail;
    }
    usleep(50000);
    printf("supervisor: killing worker %d (pid %d) with SIGKILL\n", VICTIM, (int)pids[VICTIM]);
    kill(pids[VICTIM], SIGKILL);

    /* Gather: no timeout anywhere, and still no hang. */
    for (int i = 0; i < NWORKERS; i++) {
        uint64_t n = 1000 * (uint64_t)(i + 1), want = n * (n + 1) / 2;
        struct timespec t0;
        void *msg;
        size_t len;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = dsm_mq_receive(results[i], &msg, &len, -1);
        if (rc == 0 && len == sizeof(uint64_t) && *(uint64_t *)msg == want) {
            printf("worker %d: result %llu\n", i, (unsigned long long)want);
        } else if (rc == -EPIPE && i == VICTIM) {
            double ms = ms_since(&t0);

            printf("worker %d: gone (-EPIPE) after %.1f ms: %s\n", i, ms, dsm_errmsg());
            failures += ms > 150.0;
        } else {
            printf("worker %d: unexpected result %d: %s\n", i, rc, dsm_errmsg());
            failures++;
        }
    }
    /* Detaching tells the workers there are no more jobs. */
    for (int i = 0; i < NWORKERS; i++) {
        int st;

        dsm_mq_detach(jobs[i]);
        dsm_mq_detach(results[i]);
        if (waitpid(pids[i], &st, 0) != pids[i])
            failures++;
        rc = dsm_supervisor_worker_exited(pids[i], st);
        if (i == VICTIM ? rc != DSM_CRASH_RECLAIMED : rc != DSM_CRASH_NONE)
            failures++;
    }
    dsm_toc_release(toc);
    dsm_detach(seg);
    if (dsm_supervisor_shutdown() != 0)
        failures++;
    printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
    return failures == 0 ? 0 : 1;

fail:
    fprintf(stderr, "supervisor: %s\n", dsm_errmsg());
    dsm_supervisor_shutdown();
    return 1;
}
