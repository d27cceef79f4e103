/* SPDX-License-Identifier: MIT */
/*
 * check_lifecycle.c - the four cleanups with real processes, on every
 * backend: process exit, crash reset and shut-down, start-up after a kill -9
 * of everything; and what start-up does with a corrupt or foreign control
 * segment or state file, a lock whose holder died, an exec'd worker.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/state_file.h"
#include "dsm/dsm_int.h"
#include "dsmtest.h"

#define LOOP(tc, fn) tcase_add_loop_test(tc, fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)

static struct sync rv;
static dsm_handle shared;

/* ---- cleanup 2: process exit --------------------------------------------------- */

static int child_leaves_without_detaching(void *arg)
{
    dsm_resowner *owner;
    dsm_segment *a, *b, *c;

    (void)arg;
    if (dsm_attach(shared, &a) != 0 || dsm_create(4096, 0, &b) != 0)
        return 10;
    if (dsm_resowner_create(NULL, "work", &owner) != 0)
        return 11;
    dsm_resowner_set_current(owner);
    if (dsm_create(4096, 0, &c) != 0 || dsm_pin_mapping(c) != 0)
        return 12;
    return 0; /* exit(): everything must be detached by the exit handler */
}

START_TEST(test_exit_detaches_everything)
{
    struct sv v;
    dsm_segment *seg;
    pid_t pid;
    int st;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    pid = sv_fork_worker(child_leaves_without_detaching, NULL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_NONE);
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)shared].refcnt, 1);
    ck_assert_int_eq(dsm__p.ctl.hdr->procs_used, 1); /* the worker unregistered */
    ck_assert_int_eq(sv_objects(&v), 2);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- cleanup 3: crash reset and shut-down ---------------------------------------- */

static int child_holds(void *arg)
{
    dsm_segment *a, *b;

    (void)arg;
    if (dsm_attach(shared, &a) != 0 || dsm_create(1 << 20, 0, &b) != 0)
        return 10;
    sync_signal_parent(&rv, dsm_segment_handle(b));
    for (;;)
        pause();
}

static int child_reads_shared(void *arg)
{
    dsm_segment *a;

    (void)arg;
    if (dsm_attach(shared, &a) != 0)
        return 10;
    return strcmp(dsm_segment_address(a), "after reset") == 0 ? 0 : 11;
}

START_TEST(test_crash_reset_and_shutdown)
{
    struct sv v;
    struct dsm_state_record rec;
    dsm_segment *seg;
    dsm_handle old_control;
    pid_t victim, bystander;
    int st;

    if (!sv_start(&v, _i, NULL))
        return;
    log_capture_start();
    sync_init(&rv);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    victim = sv_fork_worker(child_holds, NULL);
    bystander = sv_fork_worker(child_holds, NULL);
    sync_wait_child(&rv);
    sync_wait_child(&rv);
    ck_assert_int_eq(sv_objects(&v), 4);

    kill(victim, SIGKILL);
    ck_assert_int_eq(waitpid(victim, &st, 0), victim);
    ck_assert_int_eq(dsm_supervisor_worker_exited(victim, st), DSM_CRASH_RESET);
    ck_assert_int_eq(log_count("crash reset is needed"), 1);
    /* The supervisor's part of a reset: stop every other worker, then reset. */
    kill(bystander, SIGKILL);
    sv_wait(bystander);
    old_control = dsm_control_handle();
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    ck_assert_int_eq(sv_objects(&v), 1); /* pinned ones too: only the new control */
    ck_assert_uint_ne(dsm_control_handle(), old_control);
    ck_assert_int_eq(dsm__state_read(v.dir, &rec), 0);
    ck_assert_uint_eq(rec.control, dsm_control_handle());

    /* The facility works after the reset, for new workers too. */
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    strcpy(dsm_segment_address(seg), "after reset");
    ck_assert_int_eq(sv_wait(sv_fork_worker(child_reads_shared, NULL)), 0);

    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    ck_assert_int_eq(dsm__state_read(v.dir, &rec), -ENOENT);
}
END_TEST

/* ---- cleanup 4: start-up after kill -9 of everything ---------------------------- */

/*
 * An old supervisor in its own process group: creates three segments (one
 * pinned), forks two workers holding them, reports the handles, and waits.
 */
static void old_instance(struct sv *v, dsm_handle *handles)
{
    pid_t pid;

    sync_init(&rv);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dsm_segment *seg[3];

        setpgid(0, 0);
        if (sv_restart(v, NULL) != 0)
            _exit(10);
        for (int i = 0; i < 3; i++)
            if (dsm_create(65536, 0, &seg[i]) != 0)
                _exit(11);
        dsm_pin_segment(seg[0]);
        shared = dsm_segment_handle(seg[1]);
        for (int w = 0; w < 2; w++) {
            if (fork() == 0) {
                dsm_segment *s;

                if (dsm_worker_init_after_fork() != 0 || dsm_attach(shared, &s) != 0)
                    _exit(12);
                sync_signal_parent(&rv, 0);
                for (;;)
                    pause();
            }
        }
        for (int i = 0; i < 3; i++)
            sync_signal_parent(&rv, dsm_segment_handle(seg[i]));
        for (;;)
            pause();
    }
    /* Two "ready" zeros from the workers and three handles, in any order. */
    for (int got = 0, i = 0; got < 5; got++) {
        dsm_handle x = sync_wait_child(&rv);

        if (x != 0)
            handles[i++] = x;
    }
    setpgid(pid, pid);
    shared = (dsm_handle)pid; /* the caller takes the leader's pid from here */
}

/* Kill the old instance's process group and reap all of it (we are a subreaper). */
static void kill_old_instance(pid_t leader, bool leader_only)
{
    int st;

    if (leader_only) {
        kill(leader, SIGKILL);
        waitpid(leader, &st, 0);
        return;
    }
    kill(-leader, SIGKILL);
    while (waitpid(-1, &st, 0) > 0)
        ;
}

START_TEST(test_startup_after_kill_everything)
{
    struct sv v;
    dsm_handle h[3];
    dsm_segment *seg;
    char path[600];
    pid_t leader;

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0); /* only the directory is wanted */
    old_instance(&v, h);
    leader = (pid_t)shared;
    ck_assert_int_eq(sv_objects(&v), 4);

    /* While a worker of the old instance lives, no new supervisor may start. */
    kill_old_instance(leader, true);
    ck_assert_int_eq(sv_restart(&v, NULL), -EBUSY);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "in use"));
    kill_old_instance(leader, false);
    if (v.type == DSM_IMPL_MEMFD) {
        /* Nothing outlives the processes: nothing to clean, and none is attempted. */
        ck_assert_int_eq(sv_objects(&v), 0);
        log_capture_start();
        ck_assert_msg(sv_restart(&v, NULL) == 0, "%s", dsm_errmsg());
        ck_assert_int_eq(log_count("removed shared memory segment"), 0);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(dsm_attach(h[i], &seg), -ENOENT);
        ck_assert_int_eq(sv_objects(&v), 1);
        ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
        ck_assert_int_eq(sv_objects(&v), 0);
        return;
    }
    ck_assert_int_eq(sv_objects(&v), 4);

    if (v.type == DSM_IMPL_MMAP) {
        /* A stray file with our prefix (not in any table) goes; a foreign one stays. */
        snprintf(path, sizeof(path), "%s/dynshm_mmap/dynshm.%s.00000000deadbeef", v.dir, v.id);
        close(open(path, O_CREAT | O_WRONLY, 0600));
        snprintf(path, sizeof(path), "%s/dynshm_mmap/notes.txt", v.dir);
        close(open(path, O_CREAT | O_WRONLY, 0600));
    }
    log_capture_start();
    ck_assert_msg(sv_restart(&v, NULL) == 0, "%s", dsm_errmsg());
    ck_assert_int_eq(log_count("removed shared memory segment"), 3);
    ck_assert_int_eq(log_count("removed the previous control segment"), 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(dsm_attach(h[i], &seg), -ENOENT);
    if (v.type == DSM_IMPL_MMAP) {
        ck_assert_int_eq(access(path, F_OK), 0);
        ck_assert_int_eq(unlink(path), 0);
    }
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- corrupt or foreign control segment and state file ---------------------------- */

START_TEST(test_corrupt_control_segment)
{
    struct sv v;
    struct dsm_state_record rec;
    dsm_impl_instance *inst;
    dsm_impl_segment cseg;
    dsm_handle h[3];
    pid_t leader;

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (_i == DSM_IMPL_MEMFD)
        return; /* a dead instance's memfd control segment is gone with it: nothing to damage */
    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    old_instance(&v, h);
    leader = (pid_t)shared;
    kill_old_instance(leader, false);

    /* Damage the old table's header: from now on nothing in it may be believed. */
    ck_assert_int_eq(dsm__state_read(v.dir, &rec), 0);
    ck_assert_int_eq(dsm_impl_instance_open(v.type, v.dir, &inst), 0);
    ck_assert_int_eq(dsm_impl_attach(inst, rec.control, &cseg), 0);
    ((unsigned char *)cseg.address)[40] ^= 0xff;
    ck_assert_int_eq(dsm_impl_detach(inst, &cseg), 0);

    log_capture_start();
    ck_assert_msg(sv_restart(&v, NULL) == 0, "%s", dsm_errmsg());
    ck_assert_int_eq(log_count("not trusting the previous control segment"), 1);
    ck_assert_int_eq(log_count("bad header checksum"), 1);
    if (v.type == DSM_IMPL_SYSV) {
        /* No names to prove ownership by: the old segments are left alone... */
        ck_assert_int_eq(sv_objects(&v), 5);
        for (int i = 0; i < 3; i++) {
            dsm_impl_segment s = {.handle = h[i], .os_id = -1};

            ck_assert_int_eq(dsm_impl_destroy(inst, &s), 0); /* ...for an operator to remove */
        }
        cseg.size = rec.size;
        ck_assert_int_eq(dsm_impl_destroy(inst, &cseg), 0);
    }
    /* posix and mmap: every name with the instance prefix was swept. */
    ck_assert_int_eq(sv_objects(&v), 1);
    dsm_impl_instance_close(inst);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[600];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

START_TEST(test_bad_state_files)
{
    static const char *const bad[] = {
        "garbage\n",
        "version 1\ninstance 0\nbackend posix\ncontrol 1\nos_id -1\nsize 1\npid 1\n",
        "version 9\n",
        "",
    };
    struct sv v;
    struct dsm_state_record rec = {.instance_id = 0x1234, .backend = DSM_IMPL_POSIX,
                                   .control = 0x99, .os_id = -1, .size = 4096, .pid = 1};
    char text[1024], path[600];

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(v.dir, DSM_STATE_FILE, bad[i]);
        log_capture_start();
        ck_assert_msg(sv_restart(&v, NULL) == 0, "%s", dsm_errmsg());
        ck_assert_int_eq(log_count("not trusting the state file"), 1);
        ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    }
    /* A well-formed state file of another data directory (copied here). */
    ck_assert_int_gt(dsm__state_format(&rec, text, sizeof(text)), 0);
    write_file(v.dir, DSM_STATE_FILE, text);
    log_capture_start();
    ck_assert_int_eq(sv_restart(&v, NULL), 0);
    ck_assert_int_eq(log_count("was it copied"), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    /* A symbolic link is never followed. */
    snprintf(path, sizeof(path), "%s/" DSM_STATE_FILE, v.dir);
    ck_assert_int_eq(symlink("/etc/passwd", path), 0);
    log_capture_start();
    ck_assert_int_eq(sv_restart(&v, NULL), 0);
    ck_assert_int_eq(log_count("not trusting the state file"), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

START_TEST(test_state_file_parser)
{
    struct dsm_state_record rec = {.instance_id = 0xabc, .backend = DSM_IMPL_SYSV,
                                   .control = 0x1234567800000009ULL, .os_id = 42,
                                   .size = 123456, .pid = 777},
                            out;
    char text[1024];
    int n = dsm__state_format(&rec, text, sizeof(text));

    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(dsm__state_parse(text, (size_t)n, &out), 0);
    ck_assert_uint_eq(out.instance_id, rec.instance_id);
    ck_assert_int_eq(out.backend, rec.backend);
    ck_assert_uint_eq(out.control, rec.control);
    ck_assert_int_eq(out.os_id, rec.os_id);
    ck_assert_uint_eq(out.size, rec.size);
    ck_assert_int_eq(out.pid, rec.pid);
    /* Every truncation and every single-byte change is refused. */
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(dsm__state_parse(text, (size_t)i, &out), DSM_ECORRUPT);
    for (int i = 0; i < n; i++) {
        text[i] ^= 0x01;
        ck_assert_msg(dsm__state_parse(text, (size_t)n, &out) != 0, "byte %d", i);
        text[i] ^= 0x01;
    }
    ck_assert_int_eq(dsm__state_format(&rec, text, 20), -ERANGE);
}
END_TEST

/* ---- a lock whose holder died ---------------------------------------------------- */

static int child_dies_holding_lock(void *arg)
{
    (void)arg;
    if (dsm__control_lock(&dsm__p.ctl) != 0)
        return 10;
    /* Half an update: a derived field wrong, as if killed mid-operation. */
    dsm__p.ctl.hdr->slot_free = DSM_CONTROL_NONE;
    _exit(0);
}

START_TEST(test_lock_holder_dies)
{
    struct sv v;
    dsm_segment *seg;

    if (!sv_start(&v, _i, NULL))
        return;
    log_capture_start();
    ck_assert_int_eq(sv_wait(sv_fork_worker(child_dies_holding_lock, NULL)), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0); /* lock recovered, free list rebuilt */
    ck_assert_int_eq(log_count("recovered the dynamic shared memory control lock"), 1);
    ck_assert_int_eq(dsm__p.ctl.hdr->repairs, 1);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* ---- a worker started by exec ------------------------------------------------------ */

START_TEST(test_exec_worker)
{
    struct sv v;
    dsm_segment *seg;
    char hb[DSM_HANDLE_STRLEN];
    pid_t pid;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    strcpy(dsm_segment_address(seg), "from the supervisor");
    dsm_handle_format(dsm_segment_handle(seg), hb);
    pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);

        dup2(fd, 1);
        execl("test/exec_worker", "exec_worker", v.dir, hb, "write", (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(sv_wait(pid), 0);
    ck_assert_str_eq(dsm_segment_address(seg), "exec was here");
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)dsm_segment_handle(seg)].refcnt, 1);
    ck_assert_int_eq(dsm__p.ctl.hdr->procs_used, 1);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- what an operator's log gets ----------------------------------------------- */

static int info_lines, debug_lines;
static char last_info[512];

static void count_levels(dsm_log_level level, const char *msg, void *arg)
{
    (void)arg;
    if (level >= DSM_LOG_INFO) {
        info_lines++;
        snprintf(last_info, sizeof(last_info), "%s", msg);
    } else {
        debug_lines++;
    }
}

/*
 * A crash reset or a shut-down of many segments is one INFO line with the
 * count; each segment removed is a DEBUG line an operator sees only if asked.
 */
START_TEST(test_cleanup_logs_one_summary)
{
    struct sv v;
    enum { N = 300 };

    if (!sv_start(&v, _i, NULL))
        return;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            dsm_segment *seg;

            ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
            ck_assert_int_eq(dsm_pin_segment(seg), 0);
            ck_assert_int_eq(dsm_detach(seg), 0);
        }
        info_lines = debug_lines = 0;
        dsm_set_log_hook(count_levels, NULL, DSM_LOG_DEBUG);
        ck_assert_int_eq(round == 0 ? dsm_supervisor_reset() : dsm_supervisor_shutdown(), 0);
        dsm_set_log_hook(NULL, NULL, DSM_LOG_DEBUG);
        ck_assert_msg(info_lines == 1, "%s: %d INFO-or-higher lines (last: %s)",
                      round == 0 ? "reset" : "shut-down", info_lines, last_info);
        ck_assert_ptr_nonnull(strstr(last_info, "destroyed 300 dynamic shared memory segment"));
        ck_assert_int_ge(debug_lines, N); /* the detail is there for whoever asks */
    }
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

Suite *suite_lifecycle(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("cleanups");

    tcase_set_timeout(tc, 60);
    LOOP(tc, test_exit_detaches_everything);
    LOOP(tc, test_crash_reset_and_shutdown);
    LOOP(tc, test_startup_after_kill_everything);
    LOOP(tc, test_corrupt_control_segment);
    tcase_add_test(tc, test_bad_state_files);
    tcase_add_test(tc, test_state_file_parser);
    LOOP(tc, test_lock_holder_dies);
    LOOP(tc, test_exec_worker);
    LOOP(tc, test_cleanup_logs_one_summary);
    suite_add_tcase(s, tc);
    return s;
}
