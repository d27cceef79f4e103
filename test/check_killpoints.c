/* SPDX-License-Identifier: MIT */
/*
 * check_killpoints.c - SIGKILL a supervisor at every step of a phase of its
 * life, on every backend, and prove the next start (or dsm_gc) leaves
 * nothing behind.
 *
 * A step is any system call the backends make (the dsm__sys table, wrapped
 * here) and any point the control layer marks with DSM_CTL_STEP() -- the
 * stores of every table operation and the writes of the state file.  For
 * each backend and phase, N runs from 1 until the phase completes without
 * reaching step N: a child runs the phase and kills itself just before its
 * Nth step, so every window between two steps is hit once.  Random kills
 * (check_crash.c's kill loops) land mostly in steady state and miss the
 * short windows of start-up, reset and shut-down; these do not.
 *
 * Phases:
 *   startup   start-up over a dead instance that left pinned and attached
 *             segments (start-up cleanup, then a new control segment);
 *   reset     a crash reset after a worker was killed holding a segment;
 *   shutdown  an explicit shut-down with pinned and attached segments;
 *   steady    create, attach, pin, unpin, detach.
 * After each kill the parent recovers one of two ways, alternating: a new
 * start-up (exactly its own control segment is left, then shut-down leaves
 * nothing) or dsm_gc() (nothing is left, not even the state file).  A
 * figure line per backend and phase goes to stdout for doc/reliability.md.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dynshm.h>
#include <dynshm/inspect.h>

#include "control/control.h"
#include "control/state_file.h"
#include "dsm_impl/syscalls.h"
#include "dsmtest.h"

#define LOOP(tc, fn) tcase_add_loop_test(tc, fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)

static long step_target, step_seen;

/* Called before every step: the Nth one is where this process dies. */
static void step(void)
{
    if (step_target > 0 && ++step_seen == step_target)
        raise(SIGKILL);
}

static int k_shm_open(const char *n, int f, mode_t m) { step(); return dsm__sys_default.shm_open(n, f, m); }
static int k_shm_unlink(const char *n) { step(); return dsm__sys_default.shm_unlink(n); }
static int k_openat(int d, const char *p, int f, mode_t m) { step(); return dsm__sys_default.openat(d, p, f, m); }
static int k_unlinkat(int d, const char *p, int f) { step(); return dsm__sys_default.unlinkat(d, p, f); }
static int k_mkdirat(int d, const char *p, mode_t m) { step(); return dsm__sys_default.mkdirat(d, p, m); }
static int k_ftruncate(int fd, off_t l) { step(); return dsm__sys_default.ftruncate(fd, l); }
static int k_posix_fallocate(int fd, off_t o, off_t l) { step(); return dsm__sys_default.posix_fallocate(fd, o, l); }
static int k_fstat(int fd, struct stat *st) { step(); return dsm__sys_default.fstat(fd, st); }
static int k_close(int fd) { step(); return dsm__sys_default.close(fd); }
static void *k_mmap(void *a, size_t l, int p, int f, int fd, off_t o) { step(); return dsm__sys_default.mmap(a, l, p, f, fd, o); }
static int k_munmap(void *a, size_t l) { step(); return dsm__sys_default.munmap(a, l); }
static int k_shmget(key_t k, size_t s, int f) { step(); return dsm__sys_default.shmget(k, s, f); }
static void *k_shmat(int id, const void *a, int f) { step(); return dsm__sys_default.shmat(id, a, f); }
static int k_shmdt(const void *a) { step(); return dsm__sys_default.shmdt(a); }
static int k_shmctl(int id, int c, struct shmid_ds *b) { step(); return dsm__sys_default.shmctl(id, c, b); }
static int k_memfd_create(const char *n, unsigned f) { step(); return dsm__sys_default.memfd_create(n, f); }
static int k_fchmod(int fd, mode_t m) { step(); return dsm__sys_default.fchmod(fd, m); }
static int k_fcntl(int fd, int c, int a) { step(); return dsm__sys_default.fcntl(fd, c, a); }

/* From here on, die at step n (counted from 1). */
static void arm(long n)
{
    step_seen = 0;
    step_target = n;
    dsm__sys.shm_open = k_shm_open;
    dsm__sys.shm_unlink = k_shm_unlink;
    dsm__sys.openat = k_openat;
    dsm__sys.unlinkat = k_unlinkat;
    dsm__sys.mkdirat = k_mkdirat;
    dsm__sys.ftruncate = k_ftruncate;
    dsm__sys.posix_fallocate = k_posix_fallocate;
    dsm__sys.fstat = k_fstat;
    dsm__sys.close = k_close;
    dsm__sys.mmap = k_mmap;
    dsm__sys.munmap = k_munmap;
    dsm__sys.shmget = k_shmget;
    dsm__sys.shmat = k_shmat;
    dsm__sys.shmdt = k_shmdt;
    dsm__sys.shmctl = k_shmctl;
    dsm__sys.memfd_create = k_memfd_create;
    dsm__sys.fchmod = k_fchmod;
    dsm__sys.fcntl = k_fcntl;
    dsm__control_step_hook = step;
}

enum phase { PH_STARTUP, PH_RESET, PH_SHUTDOWN, PH_STEADY, PH_N };
static const char *const phase_name[PH_N] = {"start-up", "reset", "shut-down", "steady"};

/* A supervisor with one pinned segment (not mapped) and one attached: 0 or a code. */
static int populate(struct sv *v, dsm_segment **held)
{
    dsm_segment *pinned;

    if (sv_restart(v, NULL) != 0)
        return 10;
    if (dsm_create(8192, 0, &pinned) != 0 || dsm_pin_segment(pinned) != 0)
        return 11;
    dsm_detach(pinned);
    if (dsm_create(4096, 0, held) != 0)
        return 12;
    return 0;
}

__attribute__((noreturn)) static int reset_victim(void *arg)
{
    dsm_segment *seg;

    if (dsm_attach((dsm_handle)(uintptr_t)arg, &seg) != 0)
        _exit(20);
    for (;;)
        pause(); /* until the SIGKILL: it dies holding the segment */
}

/* The child's work for one run: returns 0 when the phase completed unharmed. */
static int run_phase(struct sv *v, enum phase ph, long n)
{
    dsm_segment *held, *seg;
    dsm_handle h;
    int rc, st;
    pid_t w;

    switch (ph) {
    case PH_STARTUP:
        w = fork(); /* a previous instance that dies without shutting down */
        if (w == 0)
            _exit(populate(v, &held));
        if (w < 0 || waitpid(w, &st, 0) != w || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 30;
        arm(n);
        return sv_restart(v, NULL) == 0 ? 0 : 31;
    case PH_RESET:
        if ((rc = populate(v, &held)) != 0)
            return rc;
        w = sv_fork_worker(reset_victim, (void *)(uintptr_t)dsm_segment_handle(held));
        usleep(20000); /* it attaches (or not: the reset is the same) */
        kill(w, SIGKILL);
        if (waitpid(w, &st, 0) != w)
            return 32;
        arm(n);
        rc = dsm_supervisor_worker_exited(w, st);
        if (rc == DSM_CRASH_RESET)
            rc = dsm_supervisor_reset();
        if (rc != 0 && rc != DSM_CRASH_NONE)
            return 33;
        if (dsm_create(4096, 0, &seg) != 0) /* the reset instance works */
            return 34;
        return 0;
    case PH_SHUTDOWN:
        if ((rc = populate(v, &held)) != 0)
            return rc;
        arm(n);
        return dsm_supervisor_shutdown() == 0 ? 0 : 35;
    case PH_STEADY:
        if (sv_restart(v, NULL) != 0)
            return 10;
        arm(n);
        if (dsm_create(4096, 0, &held) != 0 || dsm_pin_segment(held) != 0)
            return 36;
        if (dsm_attach(dsm_segment_handle(held), &seg) == 0) /* already mapped: refused */
            return 37;
        h = dsm_segment_handle(held);
        dsm_detach(held);
        if (dsm_attach(h, &seg) != 0) {
            fprintf(stderr, "attach: %s\n", dsm_errmsg());
            return 38;
        }
        dsm_unpin_segment(dsm_segment_handle(seg));
        dsm_detach(seg); /* the last reference: destroyed */
        if (dsm_create(65536, 0, &seg) != 0)
            return 39;
        dsm_detach(seg);
        return 0;
    default:
        return 40;
    }
}

static bool state_file_exists(const struct sv *v)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", v->dir, DSM_STATE_FILE);
    return access(path, F_OK) == 0;
}

/* Kill at every step of one phase on one backend; returns the number of kill points. */
static long kill_every_step(int type, enum phase ph)
{
    struct sv v;
    long n;

    if (!sv_start(&v, type, NULL))
        return 0;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    for (n = 1;; n++) {
        pid_t pid = fork();
        int st, left;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            setpgid(0, 0);
            _exit(run_phase(&v, ph, n));
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        kill(-pid, SIGKILL); /* a worker of the dead supervisor, if any */
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (WIFEXITED(st)) {
            ck_assert_msg(WEXITSTATUS(st) == 0, "%s %s step %ld: the phase failed (%d)",
                          dsm_impl_type_name(v.type), phase_name[ph], n, WEXITSTATUS(st));
        } else {
            ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s %s step %ld: died of "
                          "signal %d", dsm_impl_type_name(v.type), phase_name[ph], n,
                          WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        }
        if (n % 2 == 1) {
            int removed = dsm_gc(v.dir, 0, NULL, NULL);

            ck_assert_msg(removed >= 0, "%s %s step %ld: gc: %s", dsm_impl_type_name(v.type),
                          phase_name[ph], n, dsm_errmsg());
            left = sv_objects(&v);
            ck_assert_msg(left == 0, "%s %s killed at step %ld: dsm_gc left %d object(s)",
                          dsm_impl_type_name(v.type), phase_name[ph], n, left);
            ck_assert_msg(!state_file_exists(&v), "%s %s step %ld: dsm_gc left the state file",
                          dsm_impl_type_name(v.type), phase_name[ph], n);
        } else {
            ck_assert_msg(sv_restart(&v, NULL) == 0, "%s %s step %ld: restart: %s",
                          dsm_impl_type_name(v.type), phase_name[ph], n, dsm_errmsg());
            left = sv_objects(&v);
            ck_assert_msg(left == 1, "%s %s killed at step %ld: start-up left %d object(s), not "
                          "just its control segment", dsm_impl_type_name(v.type), phase_name[ph],
                          n, left);
            ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
            ck_assert_int_eq(sv_objects(&v), 0);
        }
        if (WIFEXITED(st))
            break; /* the phase has fewer than n steps: every one was hit */
        ck_assert_msg(n < 5000, "%s %s: no end to the steps", dsm_impl_type_name(v.type),
                      phase_name[ph]);
    }
    tu_remove_datadir(v.dir);
    printf("kill points (%s, %s): %ld steps, each killed once, leaked 0\n",
           dsm_impl_type_name(v.type), phase_name[ph], n - 1);
    return n - 1;
}

START_TEST(test_kill_startup) { kill_every_step(_i, PH_STARTUP); }
END_TEST
START_TEST(test_kill_reset) { kill_every_step(_i, PH_RESET); }
END_TEST
START_TEST(test_kill_shutdown) { kill_every_step(_i, PH_SHUTDOWN); }
END_TEST
START_TEST(test_kill_steady) { kill_every_step(_i, PH_STEADY); }
END_TEST

Suite *suite_killpoints(void)
{
    Suite *s = suite_create("killpoints");
    TCase *tc = tcase_create("every_step");

    tcase_set_timeout(tc, 300);
    LOOP(tc, test_kill_startup);
    LOOP(tc, test_kill_reset);
    LOOP(tc, test_kill_shutdown);
    LOOP(tc, test_kill_steady);
    suite_add_tcase(s, tc);
    return s;
}
