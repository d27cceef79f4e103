/* SPDX-License-Identifier: MIT */
/*
 * check_inject.c - failure injection into every system call of every backend.
 *
 * The syscall table (src/dsm_impl/syscalls.h) is replaced by wrappers that
 * count calls and make the k-th one fail with a chosen errno.  For each
 * backend, operation and errno, k runs from 1 until an operation completes
 * without reaching the injection point, so every step is failed once.  After
 * each failure: the error is returned with errno equal to it, a message is
 * set, and no object, descriptor or mapping is left behind.  The
 * reservation keeps only stop signals deliverable, fails on one, and
 * writes the pages itself where posix_fallocate cannot reserve.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dynshm/dsm_impl.h>

#include "dsm_impl/syscalls.h"
#include "testutil.h"

static struct {
    int target;        /* fail the call with this sequence number (1-based); 0 = never */
    int err;           /* with this errno */
    int seen;          /* calls so far */
    const char *fired; /* name of the call that was failed, or NULL */
    int unsupported;   /* posix_fallocate answers EOPNOTSUPP */
    int open_stop;     /* during posix_fallocate: SIGTERM, SIGQUIT, SIGINT deliverable */
    int closed_other;  /* ... and SIGUSR1, SIGCHLD, SIGALRM blocked */
} inj;

/* 1 if this call must fail; the caller then returns its failure value. */
static int should_fail(const char *name)
{
    if (++inj.seen != inj.target)
        return 0;
    inj.fired = name;
    errno = inj.err;
    return 1;
}

#define INJ(name, fail_value, call)                                                           \
    do {                                                                                      \
        if (should_fail(#name))                                                               \
            return fail_value;                                                                \
        return dsm__sys_default.call;                                                         \
    } while (0)

static int w_shm_open(const char *n, int f, mode_t m) { INJ(shm_open, -1, shm_open(n, f, m)); }
static int w_shm_unlink(const char *n) { INJ(shm_unlink, -1, shm_unlink(n)); }
static int w_openat(int d, const char *p, int f, mode_t m) { INJ(openat, -1, openat(d, p, f, m)); }
static int w_unlinkat(int d, const char *p, int f) { INJ(unlinkat, -1, unlinkat(d, p, f)); }
static int w_mkdirat(int d, const char *p, mode_t m) { INJ(mkdirat, -1, mkdirat(d, p, m)); }
static int w_ftruncate(int fd, off_t l) { INJ(ftruncate, -1, ftruncate(fd, l)); }
static int w_fstat(int fd, struct stat *st) { INJ(fstat, -1, fstat(fd, st)); }
static int w_fstatat(int d, const char *p, struct stat *st, int f)
{
    INJ(fstatat, -1, fstatat(d, p, st, f));
}
static ssize_t w_pwrite(int fd, const void *b, size_t n, off_t o)
{
    INJ(pwrite, -1, pwrite(fd, b, n, o));
}
static int w_close(int fd)
{
    /* A failed close has still released the descriptor (Linux semantics). */
    if (should_fail("close")) {
        dsm__sys_default.close(fd);
        return -1;
    }
    return dsm__sys_default.close(fd);
}
static void *w_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
    INJ(mmap, MAP_FAILED, mmap(a, l, p, f, fd, o));
}
static int w_munmap(void *a, size_t l) { INJ(munmap, -1, munmap(a, l)); }
static int w_shmget(key_t k, size_t s, int f) { INJ(shmget, -1, shmget(k, s, f)); }
static void *w_shmat(int id, const void *a, int f) { INJ(shmat, (void *)-1, shmat(id, a, f)); }
static int w_shmdt(const void *a) { INJ(shmdt, -1, shmdt(a)); }
static int w_shmctl(int id, int c, struct shmid_ds *b) { INJ(shmctl, -1, shmctl(id, c, b)); }
static int w_sig_mask(int h, const sigset_t *s, sigset_t *o)
{
    INJ(sig_mask, inj.err, sig_mask(h, s, o));
}
static int w_memfd_create(const char *n, unsigned f) { INJ(memfd_create, -1, memfd_create(n, f)); }
static int w_fchmod(int fd, mode_t m) { INJ(fchmod, -1, fchmod(fd, m)); }
static int w_fcntl(int fd, int c, int a) { INJ(fcntl, -1, fcntl(fd, c, a)); }
static int w_posix_fallocate(int fd, off_t o, off_t l)
{
    sigset_t now;

    /* Which signals could interrupt the reservation? */
    if (pthread_sigmask(SIG_BLOCK, NULL, &now) == 0) {
        inj.open_stop = !sigismember(&now, SIGTERM) && !sigismember(&now, SIGQUIT) &&
                        !sigismember(&now, SIGINT);
        inj.closed_other = sigismember(&now, SIGUSR1) && sigismember(&now, SIGCHLD) &&
                           sigismember(&now, SIGALRM);
    }
    if (inj.unsupported)
        return EOPNOTSUPP; /* a file system (or a libc) that cannot reserve */
    if (should_fail("posix_fallocate"))
        return inj.err; /* returns the error number, as the real one does */
    return dsm__sys_default.posix_fallocate(fd, o, l);
}

static int w_eintr_fallocate(int fd, off_t o, off_t l)
{
    (void)fd, (void)o, (void)l;
    return EINTR;
}

static void inject_install(int target, int err)
{
    memset(&inj, 0, sizeof(inj));
    inj.target = target;
    inj.err = err;
    dsm__sys = (struct dsm__syscalls){
        .shm_open = w_shm_open,     .shm_unlink = w_shm_unlink, .openat = w_openat,
        .unlinkat = w_unlinkat,     .mkdirat = w_mkdirat,       .ftruncate = w_ftruncate,
        .posix_fallocate = w_posix_fallocate,
        .fstat = w_fstat,           .fstatat = w_fstatat,       .pwrite = w_pwrite,
        .close = w_close,           .mmap = w_mmap,
        .munmap = w_munmap,         .shmget = w_shmget,         .shmat = w_shmat,
        .shmdt = w_shmdt,           .shmctl = w_shmctl,         .sig_mask = w_sig_mask,
        .memfd_create = w_memfd_create, .fchmod = w_fchmod,     .fcntl = w_fcntl,
    };
}

static void inject_remove(void)
{
    dsm__sys = dsm__sys_default;
}

/* Failures the library deliberately ignores or retries, so success is right. */
static int failure_is_tolerated(const char *call, int err)
{
    if (strcmp(call, "close") == 0 || strcmp(call, "sig_mask") == 0)
        return 1;
    return 0;
}

static const int errnos[] = {ENOSPC, EEXIST, EMFILE, ENOMEM, EINTR, EACCES};

static void open_instance(int type, char *dir, size_t len, dsm_impl_instance **inst)
{
    tu_make_datadir(dir, len);
    ck_assert_msg(dsm_impl_instance_open((dsm_impl_type)type, dir, inst) == 0, "%s",
                  dsm_errmsg());
}

static int leftovers(dsm_impl_instance *inst, const char *dir, dsm_handle h)
{
    dsm_impl_segment s;
    int n = tu_count_posix(dsm_impl_instance_id(inst)) + tu_count_mmap(dir) +
            tu_count_memfd(dsm_impl_instance_id(inst));

    if (dsm_impl_instance_type(inst) == DSM_IMPL_SYSV && dsm_impl_attach(inst, h, &s) == 0) {
        dsm_impl_detach(inst, &s);
        n++;
    }
    return n;
}

/* Fail every step of create in turn, with every errno. */
START_TEST(test_inject_create)
{
    char dir[256];
    dsm_impl_instance *inst;
    int steps_failed = 0;

    if (!dsm_impl_type_available((dsm_impl_type)_i))
        return;
    open_instance(_i, dir, sizeof(dir), &inst);
    for (size_t e = 0; e < sizeof(errnos) / sizeof(errnos[0]); e++) {
        for (int k = 1; k < 64; k++) {
            int fds = tu_count_fds(), maps = tu_count_maps();
            dsm_impl_segment seg;
            int rc;

            inject_install(k, errnos[e]);
            rc = dsm_impl_create(inst, 1, 65536, &seg);
            inject_remove();
            if (inj.fired == NULL) { /* k passed the last call: all steps done */
                ck_assert_int_eq(rc, 0);
                ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
                ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);
                break;
            }
            if (rc == 0) {
                ck_assert_msg(failure_is_tolerated(inj.fired, errnos[e]),
                              "create succeeded although %s failed with %s", inj.fired,
                              strerror(errnos[e]));
                ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
                ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);
            } else {
                steps_failed++;
                ck_assert_msg(rc == -errnos[e], "%s failed with %s but create returned %d",
                              inj.fired, strerror(errnos[e]), rc);
                ck_assert_int_eq(errno, errnos[e]);
                if (errnos[e] != EEXIST)
                    ck_assert_msg(strstr(dsm_errmsg(), "shared memory segment") != NULL,
                                  "message: %s", dsm_errmsg());
            }
            ck_assert_msg(leftovers(inst, dir, 1) == 0, "object left after %s failed with %s",
                          inj.fired, strerror(errnos[e]));
            ck_assert_msg(tu_count_fds() == fds, "descriptor leaked after %s failed", inj.fired);
            ck_assert_msg(tu_count_maps() == maps, "mapping leaked after %s failed", inj.fired);
        }
    }
    ck_assert_int_ge(steps_failed, 2 * 6); /* at least two real steps per errno */
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/* Fail every step of attach, detach and destroy; the segment must survive intact. */
START_TEST(test_inject_attach_detach_destroy)
{
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_segment owner;

    if (!dsm_impl_type_available((dsm_impl_type)_i))
        return;
    open_instance(_i, dir, sizeof(dir), &inst);
    ck_assert_int_eq(dsm_impl_create(inst, 2, 8192, &owner), 0);
    strcpy(owner.address, "intact");
    for (size_t e = 0; e < sizeof(errnos) / sizeof(errnos[0]); e++) {
        for (int k = 1; k < 64; k++) {
            int fds = tu_count_fds(), maps = tu_count_maps();
            dsm_impl_segment seg;
            int rc;

            inject_install(k, errnos[e]);
            rc = dsm_impl_attach(inst, 2, &seg);
            inject_remove();
            if (inj.fired == NULL) {
                ck_assert_int_eq(rc, 0);
                ck_assert_str_eq(seg.address, "intact");
                /* now detach with the same injection point */
                inject_install(1, errnos[e]);
                rc = dsm_impl_detach(inst, &seg);
                inject_remove();
                ck_assert_int_eq(rc, -errnos[e]);
                ck_assert_ptr_nonnull(seg.address); /* still mapped: caller may retry */
                ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
                break;
            }
            if (rc == 0) {
                ck_assert(failure_is_tolerated(inj.fired, errnos[e]));
                ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
            } else {
                ck_assert_int_eq(rc, -errnos[e]);
                ck_assert_int_eq(errno, errnos[e]);
                ck_assert_ptr_null(seg.address);
            }
            ck_assert_msg(tu_count_fds() == fds, "descriptor leaked after %s failed", inj.fired);
            ck_assert_msg(tu_count_maps() == maps, "mapping leaked after %s failed", inj.fired);
        }
        /* destroy: any injected failure leaves the segment in place (memfd's
         * destroy only updates its registry: no system call to fail) */
        for (int k = 1; k < 16 && _i != DSM_IMPL_MEMFD; k++) {
            dsm_impl_segment probe;
            int rc;

            inject_install(k, errnos[e]);
            rc = dsm_impl_destroy(inst, &owner);
            inject_remove();
            ck_assert_msg(inj.fired != NULL, "destroy must make at least %d calls", k);
            ck_assert_int_eq(rc, -errnos[e]);
            ck_assert_int_eq(dsm_impl_attach(inst, 2, &probe), 0);
            ck_assert_str_eq(probe.address, "intact");
            ck_assert_int_eq(dsm_impl_detach(inst, &probe), 0);
            if (dsm_impl_instance_type(inst) != DSM_IMPL_SYSV || k == 3)
                break; /* posix/mmap: one call; sysv: shmget, IPC_STAT, IPC_RMID */
        }
    }
    ck_assert_int_eq(dsm_impl_detach(inst, &owner), 0);
    ck_assert_int_eq(dsm_impl_destroy(inst, &owner), 0);
    ck_assert_int_eq(leftovers(inst, dir, 2), 0);
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/* The mmap backend's directory set-up, failed at each step. */
START_TEST(test_inject_mmap_open)
{
    char dir[256];
    dsm_impl_instance *inst = NULL;

    tu_make_datadir(dir, sizeof(dir));
    for (int k = 1; k < 16; k++) {
        int fds = tu_count_fds();
        int rc;

        inject_install(k, EACCES);
        rc = dsm_impl_instance_open(DSM_IMPL_MMAP, dir, &inst);
        inject_remove();
        ck_assert_int_eq(tu_count_fds(), fds + (rc == 0 ? 1 : 0));
        if (inj.fired == NULL) {
            ck_assert_int_eq(rc, 0);
            dsm_impl_instance_close(inst);
            break;
        }
        if (rc == 0) {
            ck_assert(failure_is_tolerated(inj.fired, EACCES));
            dsm_impl_instance_close(inst);
        } else {
            ck_assert_int_eq(rc, -EACCES);
            ck_assert_ptr_null(inst);
        }
    }
    tu_remove_datadir(dir);
}
END_TEST

/*
 * Signals during the reservation: everything but a request to stop is
 * blocked (a SIGCHLD storm cannot restart it forever), and a stop request
 * that interrupts it fails create with EINTR, leaving nothing behind.
 */
START_TEST(test_reserve_signals)
{
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_segment seg;

    if (_i == DSM_IMPL_SYSV || !dsm_impl_type_available((dsm_impl_type)_i))
        return; /* sysv reserves in shmget, which is not interruptible */
    open_instance(_i, dir, sizeof(dir), &inst);
    inject_install(0, 0);
    ck_assert_int_eq(dsm_impl_create(inst, 3, 1 << 20, &seg), 0);
    ck_assert_msg(inj.open_stop, "SIGTERM, SIGQUIT and SIGINT stay deliverable");
    ck_assert_msg(inj.closed_other, "other signals are blocked while reserving");
    ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);

    inject_install(1, EINTR); /* a stop signal's handler ran during the reservation */
    inj.target = 0;
    inj.unsupported = 0;
    dsm__sys.posix_fallocate = w_eintr_fallocate;
    ck_assert_int_eq(dsm_impl_create(inst, 4, 1 << 20, &seg), -EINTR);
    ck_assert_int_eq(errno, EINTR);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "interrupted by a request to stop"));
    inject_remove();
    ck_assert_int_eq(leftovers(inst, dir, 4), 0);
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/*
 * No posix_fallocate (or a file system that cannot): the pages are written
 * instead, so the segment is fully backed, never sparse.  Every step of the
 * fallback is failed in turn too, and leaves nothing.
 */
START_TEST(test_reserve_without_fallocate)
{
    char dir[256], path[512];
    dsm_impl_instance *inst;
    dsm_impl_segment seg;
    struct stat st;
    size_t size = (4 << 20) + 123;

    if (_i == DSM_IMPL_SYSV || !dsm_impl_type_available((dsm_impl_type)_i))
        return;
    open_instance(_i, dir, sizeof(dir), &inst);
    inject_install(0, 0);
    inj.unsupported = 1;
    ck_assert_msg(dsm_impl_create(inst, 5, size, &seg) == 0, "%s", dsm_errmsg());
    inject_remove();
    ck_assert_int_eq(dsm_impl_segment_name(inst, 5, path + 8, sizeof(path) - 8), 0);
    if (_i == DSM_IMPL_POSIX)
        memcpy(path, "/dev/shm", 8); /* the name starts with '/' */
    else
        memmove(path, path + 8, strlen(path + 8) + 1);
    if (_i == DSM_IMPL_MEMFD)
        ck_assert_int_eq(tu_memfd_stat(path, &st), 0);
    else
        ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq((size_t)st.st_size, size);
    ck_assert_msg((size_t)st.st_blocks * 512 >= size, "fully backed: %lld blocks for %zu bytes",
                  (long long)st.st_blocks, size);
    ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);

    for (int k = 1;; k++) {
        int rc;

        inject_install(k, ENOSPC);
        inj.unsupported = 1;
        rc = dsm_impl_create(inst, 6, size, &seg);
        inject_remove();
        if (inj.fired == NULL) {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
            ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);
            break;
        }
        if (rc == 0) { /* a tolerated failure (close) */
            ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
            ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);
        } else {
            ck_assert_int_eq(rc, -ENOSPC);
        }
        ck_assert_msg(leftovers(inst, dir, 6) == 0, "step %d (%s) left something", k, inj.fired);
    }
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

Suite *suite_inject(void)
{
    Suite *s = suite_create("inject");
    TCase *tc = tcase_create("every_step");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_inject_create, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_inject_attach_detach_destroy, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_test(tc, test_inject_mmap_open);
    tcase_add_loop_test(tc, test_reserve_signals, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_reserve_without_fallocate, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    suite_add_tcase(s, tc);
    return s;
}
