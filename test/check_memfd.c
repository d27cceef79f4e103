/* SPDX-License-Identifier: MIT */
/*
 * check_memfd.c - what only the memfd backend promises.
 *
 * The conformance, injection, crash and kill suites already run on memfd
 * like on every backend.  These cases prove the parts that have no
 * counterpart elsewhere: a segment stays attachable while any process
 * holds it, whoever created it; a descriptor number reused for another
 * file is never mapped in its place; the seals stop anyone shrinking a
 * segment under another's mapping; a registry left by dead processes is
 * emptied by the next opener; a pinned segment survives the kill -9 of the
 * worker that pinned it; and operators see where a segment is held.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dsm_impl.h>

#include "dsm/dsm_int.h"
#include "dsmtest.h"

static int open_raw(char *dir, size_t len, dsm_impl_instance **inst)
{
    if (!dsm_impl_type_available(DSM_IMPL_MEMFD)) {
        printf("SKIP: memfd backend not available on this platform\n");
        return 0;
    }
    tu_make_datadir(dir, len);
    ck_assert_msg(dsm_impl_instance_open(DSM_IMPL_MEMFD, dir, inst) == 0, "%s", dsm_errmsg());
    return 1;
}

static void write_byte(int fd, char c)
{
    ck_assert_int_eq(write(fd, &c, 1), 1);
}

static char read_byte(int fd)
{
    char c = 0;

    ck_assert_int_eq(read(fd, &c, 1), 1);
    return c;
}

/*
 * The creator detaches while a second process still maps the segment: a
 * third attaches through the second.  When the last holder goes, so does
 * the segment, destroyed or not.
 */
START_TEST(test_holders_hand_over)
{
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_segment seg, again;
    int go[2], done[2];
    pid_t a, b;
    int st;

    if (!open_raw(dir, sizeof(dir), &inst))
        return;
    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(done), 0);
    ck_assert_int_eq(dsm_impl_create(inst, 5, 8192, &seg), 0);
    strcpy(seg.address, "handed over");
    a = fork();
    ck_assert_int_ge(a, 0);
    if (a == 0) { /* the second holder: attach, then wait to be released */
        dsm_impl_segment s;

        if (dsm_impl_attach(inst, 5, &s) != 0)
            _exit(10);
        write_byte(done[1], 'a');
        read_byte(go[0]);
        _exit(dsm_impl_detach(inst, &s) == 0 ? 0 : 11);
    }
    ck_assert_int_eq(read_byte(done[0]), 'a');
    ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0); /* the creator lets go */
    b = fork();
    ck_assert_int_ge(b, 0);
    if (b == 0) { /* a newcomer finds it through the second holder */
        dsm_impl_segment s;

        if (dsm_impl_attach(inst, 5, &s) != 0)
            _exit(20);
        if (strcmp(s.address, "handed over") != 0)
            _exit(21);
        _exit(dsm_impl_detach(inst, &s) == 0 ? 0 : 22);
    }
    ck_assert_int_eq(waitpid(b, &st, 0), b);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "newcomer: %d", WEXITSTATUS(st));
    write_byte(go[1], 'g');
    ck_assert_int_eq(waitpid(a, &st, 0), a);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "second holder: %d", WEXITSTATUS(st));

    /* Nobody holds it any more: the kernel has freed it, and attach says so. */
    ck_assert_int_eq(tu_count_memfd(dsm_impl_instance_id(inst)), 0);
    ck_assert_int_eq(dsm_impl_attach(inst, 5, &again), -ENOENT);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "could not open shared memory segment"));
    ck_assert_int_eq(dsm_impl_destroy(inst, &seg), -ENOENT); /* the stale entry was pruned */
    close(go[0]), close(go[1]), close(done[0]), close(done[1]);
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/*
 * The registered holder's descriptor number now names another file (as
 * after a close and an unrelated open, or a reused pid): attach must notice
 * by the inode and map nothing.
 */
START_TEST(test_descriptor_reuse_is_refused)
{
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_segment seg;
    int other, fd, maps;
    pid_t pid;
    int st;

    if (!open_raw(dir, sizeof(dir), &inst))
        return;
    ck_assert_int_eq(dsm_impl_create(inst, 6, 4096, &seg), 0);
    strcpy(seg.address, "the real one");
    fd = (int)seg.reserved[0];
    /* An impostor of ours, same owner, mode and size, under the holder's number. */
    other = memfd_create("impostor", MFD_CLOEXEC);
    ck_assert_int_ge(other, 0);
    ck_assert_int_eq(fchmod(other, 0600), 0);
    ck_assert_int_eq(ftruncate(other, 4096), 0);
    ck_assert_int_eq(dup3(other, fd, O_CLOEXEC), fd);
    close(other);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dsm_impl_segment s;

        maps = tu_count_maps();
        if (dsm_impl_attach(inst, 6, &s) != -ENOENT || s.address != NULL)
            _exit(10);
        _exit(tu_count_maps() == maps ? 0 : 11);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %d", WEXITSTATUS(st));
    ck_assert_str_eq(seg.address, "the real one"); /* our mapping was never touched */
    ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0); /* closes the impostor's number */
    dsm_impl_destroy(inst, &seg);
    ck_assert_int_eq(tu_count_memfd(dsm_impl_instance_id(inst)), 0);
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/* Nobody holding a descriptor can shrink, grow or unseal a segment. */
START_TEST(test_sealed)
{
    char dir[256], path[64];
    dsm_impl_instance *inst;
    dsm_impl_segment seg;
    int fd;

    if (!open_raw(dir, sizeof(dir), &inst))
        return;
    ck_assert_int_eq(dsm_impl_create(inst, 7, 65536, &seg), 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", (int)seg.reserved[0]);
    fd = open(path, O_RDWR | O_CLOEXEC); /* what any holder can get */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    ck_assert_int_eq(ftruncate(fd, 4096), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(ftruncate(fd, 1 << 20), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    ck_assert_int_eq(errno, EPERM);
    memset(seg.address, 1, 65536); /* every page still there: no SIGBUS */
    close(fd);
    ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/*
 * A process killed with segments leaves nothing anywhere; the registry it
 * leaves is emptied by the next process to open it alone.
 */
START_TEST(test_kill_leaves_nothing)
{
    char dir[256], reg[300];
    dsm_impl_instance *inst;
    dsm_impl_segment s;
    struct stat st;
    int ready[2], status;
    pid_t pid;

    if (!dsm_impl_type_available(DSM_IMPL_MEMFD))
        return;
    tu_make_datadir(dir, sizeof(dir));
    ck_assert_int_eq(pipe(ready), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dsm_impl_instance *mine;
        dsm_impl_segment segs[3];

        if (dsm_impl_instance_open(DSM_IMPL_MEMFD, dir, &mine) != 0)
            _exit(10);
        for (int i = 0; i < 3; i++)
            if (dsm_impl_create(mine, 100 + i, 1 << 20, &segs[i]) != 0)
                _exit(11);
        write_byte(ready[1], 'r');
        pause();
        _exit(12);
    }
    ck_assert_int_eq(read_byte(ready[0]), 'r');
    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_MEMFD, dir, &inst), 0);
    ck_assert_int_eq(tu_count_memfd(dsm_impl_instance_id(inst)), 3);
    ck_assert_int_eq(dsm_impl_attach(inst, 101, &s), 0); /* shared while both have it open */
    ck_assert_int_eq(dsm_impl_detach(inst, &s), 0);
    dsm_impl_instance_close(inst);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);

    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_MEMFD, dir, &inst), 0);
    ck_assert_int_eq(tu_count_memfd(dsm_impl_instance_id(inst)), 0); /* no cleanup ran */
    ck_assert_int_eq(tu_count_posix(dsm_impl_instance_id(inst)), 0);
    for (int i = 0; i < 3; i++) {
        dsm_impl_segment gone = {.handle = 100 + (dsm_handle)i, .os_id = -1};

        /* Opened alone, the registry started empty: not even a stale entry. */
        ck_assert_int_eq(dsm_impl_destroy(inst, &gone), -ENOENT);
    }
    snprintf(reg, sizeof(reg), "%s/dynshm_memfd", dir);
    ck_assert_int_eq(stat(reg, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_msg((long long)st.st_blocks * 512 < (1 << 20), "registry uses %lld bytes on disk",
                  (long long)st.st_blocks * 512);
    dsm_impl_instance_close(inst);
    close(ready[0]), close(ready[1]);
    tu_remove_datadir(dir);
}
END_TEST

static struct sync rv;

static int pin_then_wait(void *arg)
{
    dsm_segment *seg;

    (void)arg;
    if (dsm_create(16384, 0, &seg) != 0 || dsm_pin_segment(seg) != 0)
        return 10;
    strcpy(dsm_segment_address(seg), "kept by the supervisor");
    sync_signal_parent(&rv, dsm_segment_handle(seg));
    pause(); /* killed here, still mapping it */
    return 11;
}

/* pin returns once the supervisor holds the segment: a kill -9 right after loses nothing. */
START_TEST(test_pin_survives_kill)
{
    static const char *const opts[] = {"dsm_crash_policy=reclaim", NULL};
    struct sv v;
    dsm_segment *seg;
    dsm_handle h;
    char name[DSM_HANDLE_STRLEN + 4096];
    pid_t pid;
    int st;

    if (!sv_start(&v, DSM_IMPL_MEMFD, opts))
        return;
    sync_init(&rv);
    pid = sv_fork_worker(pin_then_wait, NULL);
    h = sync_wait_child(&rv);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RECLAIMED);
    ck_assert_int_eq(sv_objects(&v), 2); /* the control segment and the pinned one */
    ck_assert_msg(dsm_attach(h, &seg) == 0, "%s", dsm_errmsg());
    ck_assert_str_eq(dsm_segment_address(seg), "kept by the supervisor");
    /* Operators see where it is held: the name alone leads nowhere. */
    ck_assert_int_eq(dsm_impl_segment_name(dsm__p.inst, h, name, sizeof(name)), 0);
    ck_assert_msg(strstr(name, "memfd:dynshm.") == name && strstr(name, " (pid ") != NULL,
                  "name: %s", name);
    ck_assert_int_eq(dsm_unpin_segment(h), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    tu_remove_datadir(v.dir);
}
END_TEST

Suite *suite_memfd(void)
{
    Suite *s = suite_create("memfd");
    TCase *tc = tcase_create("memfd");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_holders_hand_over);
    tcase_add_test(tc, test_descriptor_reuse_is_refused);
    tcase_add_test(tc, test_sealed);
    tcase_add_test(tc, test_kill_leaves_nothing);
    tcase_add_test(tc, test_pin_survives_kill);
    suite_add_tcase(s, tc);
    return s;
}
