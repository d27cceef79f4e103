/* SPDX-License-Identifier: MIT */
/*
 * fork_server.c - a supervisor that forks workers which share a counter in
 * a dynamic shared memory segment; one worker is killed along the way.
 *
 *   fork_server DATADIR [-c name=value ...]
 *
 * Every round, a "creator" worker makes a segment, puts a counter and a
 * process-shared robust mutex in it, and publishes the segment's handle
 * through a pipe; "adder" workers read the handle, attach, and add to the
 * counter under the mutex.  The supervisor attaches too, checks the total,
 * and lets the creator go; the last detach destroys the segment.
 *
 *   round 1  a creator and three adders
 *   round 2  a creator, one adder and a victim that attaches and is then
 *            killed with SIGKILL: dsm_crash_policy decides what follows.
 *            reset (the default): every other worker is stopped and
 *            dsm_supervisor_reset() destroys every segment.  reclaim: only
 *            the victim's reference is released, the segment survives.
 *   round 3  a normal round again: the facility works after the crash
 *
 * Then dsm_supervisor_shutdown() destroys whatever is left.  The program
 * prints what happens and exits 0 if every check passed.  It uses the
 * public API only, and is built and run by `make check` (test/examples.sh).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

#define ADDS_PER_WORKER 1000
#define TIMEOUT_MS 20000

/* What lives in the shared segment. */
struct counter {
    pthread_mutex_t lock; /* process-shared and robust: a dead holder cannot wedge us */
    uint64_t value;       /* under lock */
    atomic_int go_away;   /* set by the supervisor: the creator may detach */
};

/* Workers report to the supervisor through a pipe, one fixed-size record each
 * (smaller than PIPE_BUF, so every write arrives whole). */
enum { EV_CREATED, EV_ATTACHED, EV_ADDED };
struct event {
    pid_t pid;
    int what;
    uint64_t value; /* EV_CREATED: the handle; EV_ADDED: the counter after our adds */
};

enum role { CREATOR, ADDER, VICTIM };

struct round {
    int handles[2]; /* creator -> adders and victim: handles as text */
    int events[2];  /* workers -> supervisor */
    int nreaders;   /* how many workers read a handle */
    pid_t pids[8];
    enum role roles[8];
    int nworkers;
};

static int failures;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            failures++;                                                                   \
            printf("FAILED: " __VA_ARGS__);                                               \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

/* The library reports what it does (start-up, crashes, resets) through this hook. */
static void log_hook(dsm_log_level level, const char *message, void *arg)
{
    printf("  [dynshm] %s\n", message);
    fflush(stdout);
}

/* ---- the shared counter -------------------------------------------------------- */

static int counter_init(struct counter *c)
{
    pthread_mutexattr_t a;
    int rc;

    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    rc = pthread_mutex_init(&c->lock, &a);
    pthread_mutexattr_destroy(&a);
    c->value = 0;
    atomic_init(&c->go_away, 0);
    return rc;
}

static void counter_lock(struct counter *c)
{
    /* EOWNERDEAD: the previous holder died holding the lock.  An increment is
     * all it could have been doing, so the value is whole: mark it usable. */
    if (pthread_mutex_lock(&c->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&c->lock);
}

/* ---- workers ---------------------------------------------------------------------- */

static void send_event(int fd, int what, uint64_t value)
{
    struct event ev = {.pid = getpid(), .what = what, .value = value};

    if (write(fd, &ev, sizeof(ev)) != (ssize_t)sizeof(ev))
        exit(3);
}

/* Read a handle the creator published: 16 hex digits and a newline. */
static dsm_handle receive_handle(int fd)
{
    char text[DSM_HANDLE_STRLEN];
    size_t got = 0;
    dsm_handle h;

    while (got < sizeof(text)) {
        ssize_t n = read(fd, text + got, sizeof(text) - got);

        if (n <= 0)
            return DSM_HANDLE_INVALID;
        got += (size_t)n;
    }
    text[DSM_HANDLE_STRLEN - 1] = '\0';
    return dsm_handle_parse(text, &h) == 0 ? h : DSM_HANDLE_INVALID;
}

static int creator(struct round *r)
{
    char text[DSM_HANDLE_STRLEN];
    struct counter *c;
    dsm_segment *seg;

    if (dsm_create(sizeof(struct counter), 0, &seg) != 0) {
        fprintf(stderr, "creator: %s\n", dsm_errmsg());
        return 1;
    }
    c = dsm_segment_address(seg);
    if (counter_init(c) != 0)
        return 1;
    /* Publish: one copy of the handle for each worker that waits for it. */
    dsm_handle_format(dsm_segment_handle(seg), text);
    text[DSM_HANDLE_STRLEN - 1] = '\n';
    for (int i = 0; i < r->nreaders; i++)
        if (write(r->handles[1], text, sizeof(text)) != (ssize_t)sizeof(text))
            return 1;
    send_event(r->events[1], EV_CREATED, dsm_segment_handle(seg));
    /* Keep the segment alive (our mapping is a reference) until told to go. */
    while (!atomic_load(&c->go_away))
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    dsm_detach(seg); /* the last reference: this destroys the segment */
    return 0;
}

static int adder(struct round *r, bool victim)
{
    dsm_handle h = receive_handle(r->handles[0]);
    struct counter *c;
    dsm_segment *seg;
    uint64_t value;

    if (h == DSM_HANDLE_INVALID || dsm_attach(h, &seg) != 0) {
        fprintf(stderr, "adder: %s\n", dsm_errmsg());
        return 1;
    }
    if (victim) {
        send_event(r->events[1], EV_ATTACHED, 0);
        for (;;)
            pause(); /* holding a reference until SIGKILL arrives */
    }
    c = dsm_segment_address(seg);
    for (int i = 0; i < ADDS_PER_WORKER; i++) {
        counter_lock(c);
        value = ++c->value;
        pthread_mutex_unlock(&c->lock);
    }
    send_event(r->events[1], EV_ADDED, value);
    dsm_detach(seg);
    return 0; /* exit() would also detach: it leaves the facility */
}

/* ---- the supervisor ------------------------------------------------------------------ */

static pid_t start_worker(struct round *r, enum role role)
{
    pid_t pid;

    fflush(stdout); /* or the child would print our buffered lines again */
    pid = fork();
    if (pid == 0) {
        int rc;

        alarm(TIMEOUT_MS / 1000); /* a watchdog: no worker outlives a broken run */
        /* The first dynshm call in a forked child. */
        if (dsm_worker_init_after_fork() != 0) {
            fprintf(stderr, "worker: %s\n", dsm_errmsg());
            exit(1);
        }
        close(role == CREATOR ? r->handles[0] : r->handles[1]);
        close(r->events[0]);
        rc = role == CREATOR ? creator(r) : adder(r, role == VICTIM);
        exit(rc); /* exit() leaves dynamic shared memory properly */
    }
    if (pid > 0) {
        r->pids[r->nworkers] = pid;
        r->roles[r->nworkers++] = role;
    }
    return pid;
}

static int wait_event(struct round *r, struct event *ev)
{
    struct pollfd p = {.fd = r->events[0], .events = POLLIN};

    if (poll(&p, 1, TIMEOUT_MS) != 1 || read(r->events[0], ev, sizeof(*ev)) != sizeof(*ev)) {
        printf("FAILED: no word from the workers\n");
        failures++;
        return -1;
    }
    return 0;
}

static pid_t pid_of(const struct round *r, enum role role)
{
    for (int i = 0; i < r->nworkers; i++)
        if (r->roles[i] == role)
            return r->pids[i];
    return -1;
}

/* Reap one worker and tell the library; returns the dsm_crash_action. */
static int reap(struct round *r, pid_t pid)
{
    int status, action;

    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    for (int i = 0; i < r->nworkers; i++)
        if (r->pids[i] == pid)
            r->pids[i] = -1; /* reaped: never signal that pid again */
    action = dsm_supervisor_worker_exited(pid, status);
    if (action < 0)
        printf("  could not account for worker %d: %s\n", (int)pid, dsm_errmsg());
    return action;
}

/* Attach the round's segment, check the counter, let the creator detach. */
static void finish_round(struct round *r, dsm_handle h, uint64_t expect)
{
    struct counter *c;
    dsm_segment *seg;

    if (dsm_attach(h, &seg) != 0) {
        CHECK(0, "attach %016llx: %s", (unsigned long long)h, dsm_errmsg());
        return;
    }
    c = dsm_segment_address(seg);
    counter_lock(c);
    printf("  supervisor: counter = %llu\n", (unsigned long long)c->value);
    CHECK(c->value == expect, "counter is %llu, expected %llu", (unsigned long long)c->value,
          (unsigned long long)expect);
    pthread_mutex_unlock(&c->lock);
    atomic_store(&c->go_away, 1);
    dsm_detach(seg);
    CHECK(reap(r, pid_of(r, CREATOR)) == DSM_CRASH_NONE, "the creator did not leave cleanly");
}

static void segment_is_gone(dsm_handle h, const char *why)
{
    dsm_segment *seg;
    int rc = dsm_attach(h, &seg);

    CHECK(rc == -ENOENT, "segment %016llx still exists", (unsigned long long)h);
    if (rc == -ENOENT)
        printf("  segment %016llx is gone: %s\n", (unsigned long long)h, why);
    else if (rc == 0)
        dsm_detach(seg);
}

/* Something went wrong: end the round's workers and start over with a reset. */
static void abandon_round(struct round *r)
{
    for (int i = 0; i < r->nworkers; i++)
        if (r->pids[i] > 0)
            kill(r->pids[i], SIGKILL);
    for (int i = 0; i < r->nworkers; i++)
        if (r->pids[i] > 0)
            waitpid(r->pids[i], NULL, 0);
    if (dsm_supervisor_reset() != 0)
        printf("  reset: %s\n", dsm_errmsg());
}

static int open_round(struct round *r, int nreaders)
{
    memset(r, 0, sizeof(*r));
    r->nreaders = nreaders;
    return pipe(r->handles) == 0 && pipe(r->events) == 0 ? 0 : -1;
}

/* Once the workers run, the supervisor keeps only the events' read end, so a
 * worker that fails early ends in end-of-file for those waiting on it. */
static void workers_started(struct round *r)
{
    close(r->handles[0]);
    close(r->handles[1]);
    close(r->events[1]);
}

static void close_round(struct round *r)
{
    close(r->events[0]);
}

/* Rounds 1 and 3: a creator and `nadders` adders, nobody dies. */
static void normal_round(int nadders)
{
    struct round r;
    struct event ev;
    dsm_handle h = DSM_HANDLE_INVALID;
    int added = 0;

    if (open_round(&r, nadders) != 0)
        return;
    start_worker(&r, CREATOR);
    for (int i = 0; i < nadders; i++)
        start_worker(&r, ADDER);
    workers_started(&r);
    while (wait_event(&r, &ev) == 0) {
        if (ev.what == EV_CREATED) {
            h = ev.value;
            printf("  worker %d created segment %016llx and published its handle\n",
                   (int)ev.pid, (unsigned long long)h);
        } else if (ev.what == EV_ADDED) {
            printf("  worker %d attached, added %d (counter now %llu), detached\n", (int)ev.pid,
                   ADDS_PER_WORKER, (unsigned long long)ev.value);
            CHECK(reap(&r, ev.pid) == DSM_CRASH_NONE, "adder %d did not leave cleanly",
                  (int)ev.pid);
            added++;
        }
        if (h != DSM_HANDLE_INVALID && added == nadders)
            break;
    }
    if (added == nadders) {
        finish_round(&r, h, (uint64_t)nadders * ADDS_PER_WORKER);
        segment_is_gone(h, "its last mapping was detached");
    } else {
        abandon_round(&r);
    }
    close_round(&r);
}

/* Round 2: a victim attaches and is killed; the crash policy answers. */
static void crash_round(void)
{
    struct round r;
    struct event ev;
    dsm_handle h = DSM_HANDLE_INVALID;
    int seen = 0, action;
    pid_t victim;

    if (open_round(&r, 2) != 0)
        return;
    start_worker(&r, CREATOR);
    start_worker(&r, ADDER);
    victim = start_worker(&r, VICTIM);
    workers_started(&r);
    while (seen < 3 && wait_event(&r, &ev) == 0) {
        seen++;
        if (ev.what == EV_CREATED) {
            h = ev.value;
            printf("  worker %d created segment %016llx\n", (int)ev.pid, (unsigned long long)h);
        } else if (ev.what == EV_ADDED) {
            printf("  worker %d added %d and left\n", (int)ev.pid, ADDS_PER_WORKER);
            CHECK(reap(&r, ev.pid) == DSM_CRASH_NONE, "adder did not leave cleanly");
        } else {
            printf("  worker %d attached the segment and holds it\n", (int)ev.pid);
        }
    }
    if (seen < 3) {
        abandon_round(&r);
        close_round(&r);
        return;
    }

    printf("  supervisor: kill -9 %d\n", (int)victim);
    kill(victim, SIGKILL);
    action = reap(&r, victim);
    if (action == DSM_CRASH_RESET) {
        /* Nobody knows what the dead worker left half done: every other worker
         * goes (SIGKILL: it must not touch shared memory again), then the reset. */
        pid_t c = pid_of(&r, CREATOR);

        printf("  crash policy says reset: stopping worker %d, then dsm_supervisor_reset()\n",
               (int)c);
        kill(c, SIGKILL);
        waitpid(c, NULL, 0); /* not reported: the reset forgets every process */
        r.nworkers = 0;
        CHECK(dsm_supervisor_reset() == 0, "reset: %s", dsm_errmsg());
        segment_is_gone(h, "the crash reset destroyed it");
    } else if (action == DSM_CRASH_RECLAIMED) {
        printf("  crash policy says reclaim: only the victim's reference was released\n");
        finish_round(&r, h, ADDS_PER_WORKER); /* the segment survived */
        segment_is_gone(h, "its last mapping was detached");
    } else {
        CHECK(0, "a killed worker holding a reference was not treated as a crash");
    }
    close_round(&r);
}

static int usage(void)
{
    fprintf(stderr, "usage: fork_server DATADIR [-c name=value ...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    dsm_settings *settings;
    const char *datadir;
    int opt;

    if (dsm_settings_new(&settings) != 0)
        return 1;
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt != 'c' || dsm_settings_parse_option(settings, optarg) != 0) {
            if (opt == 'c')
                fprintf(stderr, "fork_server: %s\n", dsm_errmsg());
            dsm_settings_free(settings);
            return opt == 'c' ? 2 : usage();
        }
    }
    if (optind != argc - 1) {
        dsm_settings_free(settings);
        return usage();
    }
    datadir = argv[optind];

    setvbuf(stdout, NULL, _IOLBF, 0);
    dsm_set_log_hook(log_hook, NULL, DSM_LOG_INFO);
    opt = dsm_supervisor_start(datadir, settings);
    dsm_settings_free(settings); /* read once, at start-up */
    if (opt != 0) {
        fprintf(stderr, "fork_server: %s\n", dsm_errmsg());
        return 1;
    }
    if (dsm_control_handle() == DSM_HANDLE_INVALID) {
        /* dynamic_shared_memory_type = none: the server runs, segments fail. */
        dsm_segment *seg;
        int rc = dsm_create(64, 0, &seg);

        printf("dsm_create: %s (%s)\n", dsm_errmsg(),
               rc == DSM_EDISABLED ? "DSM_EDISABLED, as expected" : "unexpected");
        dsm_supervisor_shutdown();
        return rc == DSM_EDISABLED ? 0 : 1;
    }

    printf("round 1: a creator and three adders\n");
    normal_round(3);
    printf("round 2: a worker is killed while it holds the segment\n");
    crash_round();
    printf("round 3: business as usual after the crash\n");
    normal_round(2);

    if (dsm_supervisor_shutdown() != 0) {
        fprintf(stderr, "fork_server: %s\n", dsm_errmsg());
        return 1;
    }
    printf("%s\n", failures ? "some checks FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
