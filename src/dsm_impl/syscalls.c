/* SPDX-License-Identifier: MIT */
/*
 * syscalls.c - the default system-call table (see syscalls.h).
 *
 * Thin adapters only where a libc prototype does not match the table's
 * (openat's variadic mode, pthread_sigmask's name).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syscalls.h"

static int sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    return openat(dirfd, path, flags, mode);
}

static int sys_shm_open(const char *name, int oflag, mode_t mode)
{
#ifdef DSM_HAVE_POSIX
    return shm_open(name, oflag, mode);
#else
    (void)name, (void)oflag, (void)mode;
    errno = ENOSYS;
    return -1;
#endif
}

static int sys_shm_unlink(const char *name)
{
#ifdef DSM_HAVE_POSIX
    return shm_unlink(name);
#else
    (void)name;
    errno = ENOSYS;
    return -1;
#endif
}

static int sys_posix_fallocate(int fd, off_t offset, off_t len)
{
#ifdef HAVE_POSIX_FALLOCATE
    return posix_fallocate(fd, offset, len);
#else
    (void)fd, (void)offset, (void)len;
    return ENOSYS; /* the reservation then writes zeros instead */
#endif
}

static int sys_memfd_create(const char *name, unsigned flags)
{
#ifdef HAVE_MEMFD_CREATE
    return memfd_create(name, flags);
#else
    (void)name, (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

static int sys_fcntl(int fd, int cmd, int arg)
{
    return fcntl(fd, cmd, arg);
}

/* One initialiser for both tables, so they cannot drift apart. */
#define DSM_SYSCALLS_INIT                                                     \
    {                                                                         \
        .shm_open = sys_shm_open, .shm_unlink = sys_shm_unlink,               \
        .openat = sys_openat, .unlinkat = unlinkat, .mkdirat = mkdirat,       \
        .ftruncate = ftruncate, .posix_fallocate = sys_posix_fallocate,       \
        .fstat = fstat, .fstatat = fstatat, .pwrite = pwrite,                 \
        .close = close, .mmap = mmap, .munmap = munmap,                       \
        .shmget = shmget, .shmat = shmat, .shmdt = shmdt, .shmctl = shmctl,   \
        .sig_mask = pthread_sigmask,                                           \
        .memfd_create = sys_memfd_create, .fchmod = fchmod, .fcntl = sys_fcntl, \
    }

const struct dsm__syscalls dsm__sys_default = DSM_SYSCALLS_INIT;
struct dsm__syscalls dsm__sys = DSM_SYSCALLS_INIT;
