/* SPDX-License-Identifier: MIT */
/*
 * check_process.c - what fork, threads and exit() mean for a process using
 * dynshm, with real processes on every backend:
 *   - a forked child inherits no segment mapping (the memory is released
 *     when the last counted reference goes, not when the last child exits);
 *   - fork while other threads create and detach segments never hands the
 *     child a half-updated mapping list;
 *   - exit() of a supervisor is not a shut-down (a server that daemonises
 *     keeps its segments) and runs no user callback; exit() of a worker
 *     leaves the facility without running callbacks either;
 *   - a data directory other users can write is refused, and sweeps remove
 *     only objects of this uid, even as root;
 *   - the public inspection API describes a running instance.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dynshm.h>
#include <dynshm/inspect.h>

#include "dsmtest.h"

#define LOOP(tc, fn) tcase_add_loop_test(tc, fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)

/* Is [addr, addr+len) mapped in this process?  (msync fails with ENOMEM on a hole.) */
static bool mapped(void *addr, size_t len)
{
    return msync(addr, len, MS_ASYNC) == 0;
}

START_TEST(test_fork_child_inherits_no_mapping)
{
    struct sv v;
    dsm_segment *seg;
    size_t len = 4u << 20;
    dsm_handle h;
    pid_t pid;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(len, 0, &seg), 0);
    memset(dsm_segment_address(seg), 0x5a, len);
    ck_assert(mapped(dsm_segment_address(seg), len));
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(mapped(dsm_segment_address(seg), 4096) ? 1 : 0);
    ck_assert_msg(sv_wait(pid) == 0, "a plain fork child still maps the parent's segment");

    /* A worker finds it again by handle, and sees the data.  (The child's
     * copy of seg is freed by worker init: take the handle first.) */
    h = dsm_segment_handle(seg);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dsm_segment *mine;

        if (dsm_worker_init_after_fork() != 0)
            _exit(2);
        if (dsm_find_mapping(h) != NULL)
            _exit(3); /* the parent's mapping is not the child's */
        if (dsm_attach(h, &mine) != 0) {
            fprintf(stderr, "attach: %s\n", dsm_errmsg());
            _exit(4);
        }
        _exit(((unsigned char *)dsm_segment_address(mine))[len - 1] == 0x5a ? 0 : 5);
    }
    ck_assert_int_eq(sv_wait(pid), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static volatile int churn_stop;

static void *churn(void *arg)
{
    (void)arg;
    while (!churn_stop) {
        dsm_segment *seg[4];
        int n = 0;

        for (int i = 0; i < 4; i++)
            if (dsm_create(4096, 0, &seg[n]) == 0)
                n++;
        while (n > 0)
            dsm_detach(seg[--n]);
    }
    return NULL;
}

START_TEST(test_fork_while_threads_churn)
{
    struct sv v;
    pthread_t t[2];

    if (!sv_start(&v, _i, NULL))
        return;
    churn_stop = 0;
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, NULL), 0);
    for (int k = 0; k < 40; k++) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            dsm_segment *seg;

            alarm(10); /* a child stuck on a lock taken mid-fork dies, and the test fails */
            if (dsm_worker_init_after_fork() != 0)
                _exit(2);
            if (dsm_create(4096, 0, &seg) != 0)
                _exit(3);
            dsm_detach(seg);
            /*
             * Leave explicitly, then _exit: the blocks the parent's threads
             * had just allocated are reachable only from their stacks, which
             * LeakSanitizer does not scan in a child (those threads do not
             * exist here), so an exit() would report them as leaks.
             */
            dsm_worker_exit();
            _exit(0);
        }
        ck_assert_msg(sv_wait(pid) == 0, "fork %d: the child failed", k);
    }
    churn_stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(dsm_supervisor_check_workers(), DSM_CRASH_NONE);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static int callback_pipe[2];

static void note_callback(dsm_segment *seg, void *arg)
{
    char c = *(const char *)arg;

    (void)seg;
    if (write(callback_pipe[1], &c, 1) != 1)
        _exit(90);
}

/* A supervisor that creates a pinned segment and an attached one, then exit()s. */
static int supervisor_then_exit(struct sv *v)
{
    dsm_segment *pinned, *held;

    if (sv_restart(v, NULL) != 0)
        return 10;
    if (dsm_create(8192, 0, &pinned) != 0 || dsm_pin_segment(pinned) != 0)
        return 11;
    dsm_detach(pinned);
    if (dsm_create(4096, 0, &held) != 0)
        return 12;
    dsm_on_detach(held, note_callback, "s");
    exit(0); /* not dsm_supervisor_shutdown(): what a daemonising parent does */
}

START_TEST(test_exit_is_not_shutdown)
{
    struct sv v;
    dsm_inspection *insp;
    dsm_instance_info info;
    pid_t pid;
    char c;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(pipe(callback_pipe), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(supervisor_then_exit(&v));
    ck_assert_int_eq(sv_wait(pid), 0);
    close(callback_pipe[1]);
    ck_assert_msg(read(callback_pipe[0], &c, 1) == 0, "exit() ran a detach callback");
    close(callback_pipe[0]);
    if (v.type == DSM_IMPL_MEMFD) {
        /* Its segments went with its descriptors: exit() destroyed nothing, the kernel did. */
        ck_assert_int_eq(sv_objects(&v), 0);
        ck_assert_int_eq(dsm_gc(v.dir, 0, NULL, NULL), 0);
        return;
    }
    /* Everything it made is still there, and the directory says "not shut down". */
    ck_assert_int_eq(sv_objects(&v), 3);
    ck_assert_int_eq(dsm_inspect_open(v.dir, 1000, &insp), 0);
    ck_assert_int_eq(dsm_inspect_instance(insp, &info, sizeof(info)), 0);
    ck_assert_int_eq(info.state, DSM_INSTANCE_DEAD);
    ck_assert_int_eq(info.control_status, 0);
    ck_assert_uint_eq(info.live_segments, 2);
    ck_assert_uint_eq(info.pinned_segments, 1);
    dsm_inspect_close(insp);
    ck_assert_int_eq(dsm_gc(v.dir, 0, NULL, NULL), 3);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static int worker_then_exit(void *arg)
{
    dsm_segment *seg;

    if (dsm_attach((dsm_handle)(uintptr_t)arg, &seg) != 0)
        return 20;
    dsm_on_detach(seg, note_callback, "w");
    return 0; /* sv_fork_worker exit()s with this */
}

START_TEST(test_worker_exit_leaves_without_callbacks)
{
    struct sv v;
    dsm_segment *seg;
    pid_t pid;
    char c;
    int st;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(pipe(callback_pipe), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    pid = sv_fork_worker(worker_then_exit, (void *)(uintptr_t)dsm_segment_handle(seg));
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(callback_pipe[1]);
    ck_assert_msg(read(callback_pipe[0], &c, 1) == 0, "a worker's exit() ran a callback");
    close(callback_pipe[0]);
    /* It left properly: no crash, and its reference is gone. */
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_NONE);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 1); /* only the control segment */
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

START_TEST(test_writable_datadir_refused)
{
    static const mode_t bad[] = {0777, 0770, 0702, 0720};
    struct sv v;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(chmod(v.dir, bad[i]), 0);
        ck_assert_int_eq(sv_restart(&v, NULL), -EPERM);
        ck_assert_msg(strstr(dsm_errmsg(), "other users") && strstr(dsm_errhint(), "chmod go-w"),
                      "%s", dsm_errmsg());
        ck_assert_int_eq(dsm_gc(v.dir, 0, NULL, NULL), -EPERM);
    }
    ck_assert_int_eq(chmod(v.dir, 0750), 0); /* group may read: fine */
    ck_assert_int_eq(sv_restart(&v, NULL), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(chmod(v.dir, 0700), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

struct hold {
    struct sync s;
    dsm_handle handle; /* set before the fork */
};

static int worker_holds(void *arg)
{
    struct hold *h = arg;
    dsm_segment *seg;

    if (dsm_attach(h->handle, &seg) != 0)
        return 30;
    sync_signal_parent(&h->s, 1);
    sync_wait_parent(&h->s);
    return 0;
}

START_TEST(test_inspection_of_running_instance)
{
    struct sv v;
    struct hold s;
    dsm_segment *seg, *pinned;
    dsm_inspection *insp;
    dsm_instance_info info;
    dsm_segment_info si;
    dsm_process_info pi;
    size_t n, found = 0;
    pid_t pid, holders[4];
    int st;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(65536, 0, &seg), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &pinned), 0);
    ck_assert_int_eq(dsm_pin_segment(pinned), 0);
    ck_assert_int_eq(dsm_detach(pinned), 0);
    sync_init(&s.s);
    s.handle = dsm_segment_handle(seg);
    pid = sv_fork_worker(worker_holds, &s);
    ck_assert_int_eq(sync_wait_child(&s.s), 1);

    ck_assert_int_eq(dsm_inspect_open(v.dir, 1000, &insp), 0);
    ck_assert_int_eq(dsm_inspect_instance(insp, &info, sizeof(info)), 0);
    ck_assert_int_eq(info.state, DSM_INSTANCE_RUNNING);
    ck_assert_int_eq(info.backend, v.type);
    ck_assert_uint_eq(info.live_segments, 2);
    ck_assert_uint_eq(info.pinned_segments, 1);
    ck_assert_uint_eq(info.live_bytes, 65536 + 4096);
    ck_assert_uint_eq(info.processes, 2);
    ck_assert_uint_eq(info.alive_processes, 2);
    n = dsm_inspect_nsegments(insp);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(dsm_inspect_segment(insp, i, &si, sizeof(si)), 0);
        if (si.handle != dsm_segment_handle(seg))
            continue;
        found++;
        ck_assert_str_eq(si.state, "live");
        ck_assert_uint_eq(si.size, 65536);
        ck_assert_uint_eq(si.refcnt, 2);
        ck_assert(!si.pinned);
        ck_assert_uint_eq(dsm_inspect_segment_holders(insp, i, holders, 4), 2);
        ck_assert(holders[0] == pid || holders[1] == pid);
    }
    ck_assert_uint_eq(found, 1);
    ck_assert_int_eq(dsm_inspect_segment(insp, n, &si, sizeof(si)), -ERANGE);
    ck_assert_uint_eq(dsm_inspect_nprocesses(insp), 2);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(dsm_inspect_process(insp, i, &pi, sizeof(pi)), 0);
        ck_assert(pi.alive);
        ck_assert_str_eq(pi.kind, pi.pid == pid ? "forked" : "supervisor");
    }
    /* A caller built against a smaller struct gets its prefix only. */
    memset(&si, 0xee, sizeof(si));
    ck_assert_int_eq(dsm_inspect_segment(insp, 0, &si, offsetof(dsm_segment_info, size)), 0);
    ck_assert_uint_eq(si.size, 0xeeeeeeeeeeeeeeeeULL);
    dsm_inspect_close(insp);
    /* A running instance is not collected. */
    ck_assert_int_eq(dsm_gc(v.dir, 0, NULL, NULL), -EBUSY);

    sync_signal_child(&s.s);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_NONE);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(dsm_inspect_open(v.dir, 1000, &insp), 0);
    ck_assert_int_eq(dsm_inspect_instance(insp, &info, sizeof(info)), 0);
    ck_assert_int_eq(info.state, DSM_INSTANCE_STOPPED);
    dsm_inspect_close(insp);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* A name with the instance's prefix owned by another uid is not ours: sweeps leave it. */
START_TEST(test_sweep_skips_other_users)
{
    struct sv v;
    char path[256], other[256];
    int fd;

    if (geteuid() != 0 || !sv_start(&v, DSM_IMPL_POSIX, NULL))
        return; /* only root can make a file of another uid */
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    snprintf(path, sizeof(path), "/dev/shm/dynshm.%s.00000000000000aa", v.id);
    snprintf(other, sizeof(other), "/dev/shm/dynshm.%s.00000000000000bb", v.id);
    ck_assert_int_ge(fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600), 0);
    ck_assert_int_eq(fchown(fd, 65534, 65534), 0);
    close(fd);
    ck_assert_int_ge(fd = open(other, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600), 0);
    close(fd); /* ours: a genuine leftover */
    ck_assert_int_eq(sv_restart(&v, NULL), 0);
    ck_assert_int_eq(access(other, F_OK), -1); /* the start-up sweep removed ours */
    ck_assert_int_eq(access(path, F_OK), 0);   /* and left the other user's */
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_ge(fd = open(other, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600), 0);
    close(fd);
    ck_assert_int_eq(dsm_gc(v.dir, 0, NULL, NULL), 1); /* gc: the same rule */
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

Suite *suite_process(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("fork_exit");

    tcase_set_timeout(tc, 60);
    LOOP(tc, test_fork_child_inherits_no_mapping);
    LOOP(tc, test_fork_while_threads_churn);
    LOOP(tc, test_exit_is_not_shutdown);
    LOOP(tc, test_worker_exit_leaves_without_callbacks);
    tcase_add_test(tc, test_writable_datadir_refused);
    LOOP(tc, test_inspection_of_running_instance);
    tcase_add_test(tc, test_sweep_skips_other_users);
    suite_add_tcase(s, tc);
    return s;
}
