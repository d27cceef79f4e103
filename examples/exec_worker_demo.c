/* SPDX-License-Identifier: MIT */
/*
 * exec_worker_demo.c - a supervisor whose workers are separate programs,
 * started with exec and told nothing but the data directory.
 *
 *   exec_worker_demo DATADIR [-c name=value ...]    the supervisor
 *   exec_worker_demo --worker DATADIR               a worker (started by it)
 *
 * An exec'd process inherits no dynshm state.  It joins with
 * dsm_worker_attach(DATADIR), which finds the supervisor's control segment
 * through the state file in the data directory.  The application's own
 * rendezvous works the same way here: the supervisor creates a "board"
 * segment and writes its handle to DATADIR/exec_worker_demo.handle.
 *
 * Each worker attaches the board and takes a ticket.  All but the last
 * write a note into a segment of their own, pin it (so it outlives them),
 * record its handle on the board and exit.  The last one creates a scratch
 * segment and waits, holding it, until the supervisor kills it.  The
 * supervisor did not wait for these programs through the library, so it
 * finds the dead one with dsm_supervisor_check_workers() (by pid and start
 * time).  This demo runs with dsm_crash_policy = reclaim unless told
 * otherwise: the dead worker's scratch segment, which only it used, is
 * destroyed; the board and the other workers' notes stay.
 *
 * Prints what happens and exits 0 if every check passed.  Public API only;
 * built and run by `make check` (test/examples.sh).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

#define NWORKERS 4
#define HANDLE_FILE "exec_worker_demo.handle"
#define TIMEOUT_S 20

/* The board, in a segment the supervisor creates. */
struct board {
    atomic_uint next_ticket;
    atomic_uint finished;       /* workers whose note is on the board */
    atomic_int holder_pid;      /* the last worker, once it holds its scratch segment */
    _Atomic uint64_t notes[NWORKERS]; /* handles of the workers' pinned notes */
    _Atomic uint64_t scratch;   /* the holder's segment, which nobody else maps */
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

static void log_hook(dsm_log_level level, const char *message, void *arg)
{
    printf("  [dynshm] %s\n", message);
    fflush(stdout);
}

static void handle_file(const char *datadir, char *path, size_t len, const char *suffix)
{
    snprintf(path, len, "%s/" HANDLE_FILE "%s", datadir, suffix);
}

/* ---- a worker -------------------------------------------------------------------- */

static int fail(const char *what)
{
    fprintf(stderr, "exec_worker_demo worker %d: %s: %s\n", (int)getpid(), what, dsm_errmsg());
    return 1;
}

static int worker(const char *datadir)
{
    char path[4096], text[64];
    dsm_segment *seg, *own;
    struct board *b;
    dsm_handle h;
    unsigned ticket;
    FILE *f;

    alarm(TIMEOUT_S); /* a watchdog: no worker outlives a broken run */
    /* The only thing this process knows is the data directory. */
    if (dsm_worker_attach(datadir) != 0)
        return fail("dsm_worker_attach");
    handle_file(datadir, path, sizeof(path), "");
    f = fopen(path, "r");
    if (f == NULL || fgets(text, sizeof(text), f) == NULL ||
        (text[strcspn(text, "\n")] = '\0', dsm_handle_parse(text, &h) != 0)) {
        fprintf(stderr, "exec_worker_demo: cannot read a handle from %s\n", path);
        return 1;
    }
    fclose(f);
    if (dsm_attach(h, &seg) != 0)
        return fail("attach the board");
    b = dsm_segment_address(seg);
    ticket = atomic_fetch_add(&b->next_ticket, 1);
    if (ticket >= NWORKERS)
        return 1;

    if (ticket == NWORKERS - 1) {
        /* The holder: a segment only it maps, and then it waits to be killed. */
        if (dsm_create(1 << 16, 0, &own) != 0)
            return fail("create the scratch segment");
        atomic_store(&b->scratch, dsm_segment_handle(own));
        atomic_store(&b->holder_pid, (int)getpid());
        for (;;)
            pause();
    }
    /* A note that outlives this process: pinned, it needs no mapping to live. */
    if (dsm_create(128, 0, &own) != 0)
        return fail("create a note");
    snprintf(dsm_segment_address(own), 128, "ticket %u: pid %d was here, started by exec",
             ticket, (int)getpid());
    if (dsm_pin_segment(own) != 0)
        return fail("pin the note");
    atomic_store(&b->notes[ticket], dsm_segment_handle(own));
    atomic_fetch_add(&b->finished, 1);
    return 0; /* exit() detaches both mappings and leaves; the pinned note stays */
}

/* ---- the supervisor ------------------------------------------------------------------ */

/* The application's rendezvous: the board's handle in a file, written atomically. */
static int publish(const char *datadir, dsm_handle h)
{
    char tmp[4096], path[4096], text[DSM_HANDLE_STRLEN];
    FILE *f;

    handle_file(datadir, tmp, sizeof(tmp), ".tmp");
    handle_file(datadir, path, sizeof(path), "");
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", dsm_handle_format(h, text)) < 0 || fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static pid_t start_worker(const char *self, const char *datadir)
{
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        /* No dynshm call between fork and exec: the new program starts clean. */
        execl(self, self, "--worker", datadir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Wait until every worker has reported on the board; reap the ones that exit. */
static int wait_for_workers(struct board *b, pid_t *pids)
{
    for (int i = 0; i < TIMEOUT_S * 100; i++) {
        int status;
        pid_t pid;

        if (atomic_load(&b->finished) == NWORKERS - 1 && atomic_load(&b->holder_pid) != 0)
            return 0;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int k = 0; k < NWORKERS; k++)
                if (pids[k] == pid)
                    pids[k] = -1;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                CHECK(0, "worker %d failed (wait status 0x%x)", (int)pid, (unsigned)status);
                return -1;
            }
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    CHECK(0, "the workers did not report within %d s", TIMEOUT_S);
    return -1;
}

/* Read each worker's note, unpin it and detach: the last reference goes. */
static void read_notes(struct board *b)
{
    for (int t = 0; t < NWORKERS - 1; t++) {
        dsm_handle h = atomic_load(&b->notes[t]);
        dsm_segment *note;

        if (dsm_attach(h, &note) != 0) {
            CHECK(0, "note %d: %s", t, dsm_errmsg());
            continue;
        }
        printf("  note %016llx: \"%s\"\n", (unsigned long long)h,
               (char *)dsm_segment_address(note));
        CHECK(dsm_unpin_segment(h) == 0, "unpin: %s", dsm_errmsg());
        dsm_detach(note);
        CHECK(dsm_attach(h, &note) == -ENOENT, "note %d outlived its unpin and detach", t);
    }
}

static int supervisor(const char *self, const char *datadir, dsm_settings *settings)
{
    pid_t pids[NWORKERS], holder;
    char path[4096];
    dsm_segment *seg, *probe;
    struct board *b;
    int action, status;

    if (dsm_supervisor_start(datadir, settings) != 0) {
        fprintf(stderr, "exec_worker_demo: %s\n", dsm_errmsg());
        return 1;
    }
    if (dsm_create(sizeof(struct board), 0, &seg) != 0 ||
        publish(datadir, dsm_segment_handle(seg)) != 0) {
        fprintf(stderr, "exec_worker_demo: cannot set up the board: %s\n", dsm_errmsg());
        dsm_supervisor_shutdown();
        return 1;
    }
    b = dsm_segment_address(seg); /* zero-filled: every counter starts at 0 */
    printf("supervisor: board %016llx published in %s/" HANDLE_FILE "\n",
           (unsigned long long)dsm_segment_handle(seg), datadir);

    printf("starting %d workers with exec, passing only the data directory\n", NWORKERS);
    for (int i = 0; i < NWORKERS; i++)
        pids[i] = start_worker(self, datadir);
    if (wait_for_workers(b, pids) == 0) {
        printf("%d workers left their notes; the last one holds a scratch segment\n",
               NWORKERS - 1);
        for (int i = 0; i < NWORKERS; i++) /* the ones that exited */
            if (pids[i] > 0 && pids[i] != atomic_load(&b->holder_pid))
                waitpid(pids[i], NULL, 0);
        CHECK(dsm_supervisor_check_workers() == DSM_CRASH_NONE,
              "a worker that exited cleanly counted as a crash");
        read_notes(b);

        holder = atomic_load(&b->holder_pid);
        printf("supervisor: kill -9 %d\n", (int)holder);
        kill(holder, SIGKILL);
        waitpid(holder, &status, 0);
        /* The supervisor only learns about the exec'd worker through the table. */
        action = dsm_supervisor_check_workers();
        if (action == DSM_CRASH_RECLAIMED) {
            printf("dsm_supervisor_check_workers: reclaimed the dead worker's references\n");
            CHECK(dsm_attach(atomic_load(&b->scratch), &probe) == -ENOENT,
                  "the dead worker's scratch segment survived");
            printf("  its scratch segment is gone; the board is still here (ticket counter %u)\n",
                   atomic_load(&b->next_ticket));
            CHECK(dsm_supervisor_check_workers() == DSM_CRASH_NONE, "reported twice");
        } else if (action == DSM_CRASH_RESET) {
            /* Every other worker has exited already: reset straight away. */
            printf("dsm_supervisor_check_workers: a crash reset is needed\n");
            CHECK(dsm_supervisor_reset() == 0, "reset: %s", dsm_errmsg());
            seg = NULL; /* the reset detached and destroyed the board */
        } else {
            CHECK(0, "the killed worker was not found dead (%d)", action);
        }
    } else {
        for (int i = 0; i < NWORKERS; i++)
            if (pids[i] > 0 && kill(pids[i], SIGKILL) == 0)
                waitpid(pids[i], NULL, 0);
    }

    if (seg != NULL)
        dsm_detach(seg);
    handle_file(datadir, path, sizeof(path), "");
    unlink(path);
    if (dsm_supervisor_shutdown() != 0) {
        fprintf(stderr, "exec_worker_demo: %s\n", dsm_errmsg());
        return 1;
    }
    printf("%s\n", failures ? "some checks FAILED" : "all checks passed");
    return failures ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: exec_worker_demo DATADIR [-c name=value ...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *self = access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv[0];
    dsm_settings *settings;
    int opt;

    if (argc == 3 && strcmp(argv[1], "--worker") == 0)
        return worker(argv[2]);

    if (dsm_settings_new(&settings) != 0)
        return 1;
    if (dsm_settings_set(settings, "dsm_crash_policy", "reclaim") != 0) { /* -c may override */
        dsm_settings_free(settings);
        return 1;
    }
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt != 'c' || dsm_settings_parse_option(settings, optarg) != 0) {
            if (opt == 'c')
                fprintf(stderr, "exec_worker_demo: %s\n", dsm_errmsg());
            dsm_settings_free(settings);
            return opt == 'c' ? 2 : usage();
        }
    }
    if (optind != argc - 1) {
        dsm_settings_free(settings);
        return usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dsm_set_log_hook(log_hook, NULL, DSM_LOG_INFO);
    opt = supervisor(self, argv[optind], settings);
    dsm_settings_free(settings);
    return opt;
}
