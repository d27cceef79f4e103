/* SPDX-License-Identifier: MIT */
/*
 * hostile.c - helpers of the "hostile" suite (see hostile.h): children with
 * deadlines, a supervisor started without Check, and the injection table.
 *
 * The injection table wraps the real calls (dsm__sys_default) and, when
 * armed, makes an exclusive create collide (EEXIST with nothing created),
 * plants a real squatter -- an object of the same user, mode 0600, marked
 * SQUAT_MARK -- under the exact name just before the real create runs, or
 * makes the mapping step fail with ENOMEM.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsm_impl/syscalls.h"
#include "hostile.h"

/* Run fn(arg) in a child; its exit code, 128 + signal, or -1 if it outlived `seconds`. */
int run_child(int (*fn)(void *), void *arg, int seconds)
{
    struct timespec tick = {0, 10 * 1000 * 1000};
    pid_t pid = fork();
    int st;

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn(arg));
    for (int waited = 0; waited < seconds * 100; waited++) {
        pid_t r = waitpid(pid, &st, WNOHANG);

        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nanosleep(&tick, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

void expect_child_ok(int rc, const char *what)
{
    ck_assert_msg(rc != -1, "%s: the child did not finish in time", what);
    if (rc == 77)
        printf("SKIP: %s: not permitted here (needs root for namespaces or sysctls)\n", what);
    else
        ck_assert_msg(rc == 0, "%s: child failed at step %d", what, rc);
}

/* Start a supervisor without Check assertions (for children); 0 or an error. */
int start_plain(const char *dir, dsm_impl_type type, const char *option)
{
    dsm_settings *s;
    int rc;

    if (dsm_settings_new(&s) != 0)
        return -ENOMEM;
    rc = dsm_settings_set(s, "dynamic_shared_memory_type", dsm_impl_type_name(type));
    if (rc == 0 && option)
        rc = dsm_settings_parse_option(s, option);
    if (rc == 0)
        rc = dsm_supervisor_start(dir, s);
    dsm_settings_free(s);
    return rc;
}

/* The instance id of a data directory, as 16 hex digits. */
void instance_id_of(const char *dir, char id[17])
{
    dsm_impl_instance *inst;

    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_NONE, dir, &inst), 0);
    snprintf(id, 17, "%s", dsm_impl_instance_id(inst));
    dsm_impl_instance_close(inst);
}

/* Its preload library is mapped into every process it runs. */
int under_valgrind(void)
{
    static int cached = -1;

    if (cached < 0) {
        FILE *f = fopen("/proc/self/maps", "re");
        char line[4096];

        cached = 0;
        while (f && fgets(line, sizeof(line), f))
            cached |= strstr(line, "/vgpreload_") != NULL;
        if (f)
            fclose(f);
    }
    return cached;
}

int objects(const char *dir, const char *id)
{
    return tu_count_posix(id) + tu_count_mmap(dir) + tu_sysv_count_new() + tu_count_memfd(id);
}

/* The OS path of a posix or mmap segment (posix: under /dev/shm). */
void segment_path(dsm_impl_instance *inst, dsm_handle h, char *buf, size_t len)
{
    char name[512];

    ck_assert_int_eq(dsm_impl_segment_name(inst, h, name, sizeof(name)), 0);
    snprintf(buf, len, "%s%s", dsm_impl_instance_type(inst) == DSM_IMPL_POSIX ? "/dev/shm" : "",
             name);
}

/* ---- the injection table: collisions, squatters, ENOMEM --------------------------- */

struct hx_state hx;

static int exclusive(int oflag)
{
    return (oflag & O_CREAT) && (oflag & O_EXCL);
}

static int h_shm_open(const char *name, int oflag, mode_t mode)
{
    if (exclusive(oflag) && hx.eexist > 0) {
        hx.eexist--;
        errno = EEXIST;
        return -1;
    }
    if (exclusive(oflag) && hx.squat > 0 && hx.nsquat < MAX_SQUAT) {
        int fd = dsm__sys_default.shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        hx.squat--;
        if (fd >= 0) {
            if (write(fd, SQUAT_MARK, sizeof(SQUAT_MARK)) != sizeof(SQUAT_MARK))
                abort();
            close(fd);
            snprintf(hx.names[hx.nsquat++], sizeof(hx.names[0]), "%s", name);
        }
    }
    return dsm__sys_default.shm_open(name, oflag, mode);
}

static int h_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    if (exclusive(flags) && hx.eexist > 0) {
        hx.eexist--;
        errno = EEXIST;
        return -1;
    }
    if (exclusive(flags) && hx.squat > 0 && hx.nsquat < MAX_SQUAT) {
        int fd = dsm__sys_default.openat(dirfd, path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
                                                          O_CLOEXEC, 0600);

        hx.squat--;
        if (fd >= 0) {
            if (write(fd, SQUAT_MARK, sizeof(SQUAT_MARK)) != sizeof(SQUAT_MARK))
                abort();
            close(fd);
            if (hx.dirfd < 0) /* our own copy: the instance closes its own at shut-down */
                hx.dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
            snprintf(hx.names[hx.nsquat++], sizeof(hx.names[0]), "%s", path);
        }
    }
    return dsm__sys_default.openat(dirfd, path, flags, mode);
}

static int h_shmget(key_t key, size_t size, int flags)
{
    int excl = (flags & IPC_CREAT) && (flags & IPC_EXCL);

    if (excl && hx.eexist > 0) {
        hx.eexist--;
        errno = EEXIST;
        return -1;
    }
    if (excl && hx.squat > 0 && hx.nsquat < MAX_SQUAT) {
        int id = dsm__sys_default.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);

        hx.squat--;
        if (id >= 0) {
            char *p = dsm__sys_default.shmat(id, NULL, 0);

            if (p == (void *)-1)
                abort();
            memcpy(p, SQUAT_MARK, sizeof(SQUAT_MARK));
            dsm__sys_default.shmdt(p);
            hx.keys[hx.nsquat++] = key;
        }
    }
    return dsm__sys_default.shmget(key, size, flags);
}

/* memfd has no names: a collision can only be injected (the registry's full bucket). */
static int h_memfd_create(const char *name, unsigned flags)
{
    if (hx.eexist > 0) {
        hx.eexist--;
        errno = EEXIST;
        return -1;
    }
    return dsm__sys_default.memfd_create(name, flags);
}

static void *h_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
    if (hx.enomem) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return dsm__sys_default.mmap(a, l, p, f, fd, o);
}

static void *h_shmat(int id, const void *a, int f)
{
    if (hx.enomem) {
        errno = ENOMEM;
        return (void *)-1;
    }
    return dsm__sys_default.shmat(id, a, f);
}

void hx_install(void)
{
    memset(&hx, 0, sizeof(hx));
    hx.dirfd = -1;
    dsm__sys = dsm__sys_default;
    dsm__sys.shm_open = h_shm_open;
    dsm__sys.openat = h_openat;
    dsm__sys.shmget = h_shmget;
    dsm__sys.mmap = h_mmap;
    dsm__sys.shmat = h_shmat;
    dsm__sys.memfd_create = h_memfd_create;
}

void hx_remove(void)
{
    dsm__sys = dsm__sys_default;
}
