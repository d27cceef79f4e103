/* SPDX-License-Identifier: MIT */
/*
 * syscalls.h - the system calls dsm_impl makes, behind one overridable table.
 *
 * Backends call dsm__sys.<name>(...) instead of the libc function, so tests
 * can replace any entry to inject ENOSPC, EEXIST, EMFILE, ENOMEM, EINTR or
 * EACCES at any step and prove that nothing is left behind (the idea comes
 * from SQLite's os_unix.c).  Production code never changes the table.
 * Functions whose libc form returns an error number instead of setting
 * errno (posix_fallocate) keep that convention here.
 */
#ifndef DYNSHM_SYSCALLS_H
#define DYNSHM_SYSCALLS_H

#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/types.h>

struct dsm__syscalls {
    int (*shm_open)(const char *name, int oflag, mode_t mode);
    int (*shm_unlink)(const char *name);
    int (*openat)(int dirfd, const char *path, int flags, mode_t mode);
    int (*unlinkat)(int dirfd, const char *path, int flags);
    int (*mkdirat)(int dirfd, const char *path, mode_t mode);
    int (*ftruncate)(int fd, off_t length);
    int (*posix_fallocate)(int fd, off_t offset, off_t len);
    int (*fstat)(int fd, struct stat *st);
    int (*fstatat)(int dirfd, const char *path, struct stat *st, int flags);
    ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
    int (*close)(int fd);
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
    int (*munmap)(void *addr, size_t len);
    int (*shmget)(key_t key, size_t size, int flags);
    void *(*shmat)(int shmid, const void *addr, int flags);
    int (*shmdt)(const void *addr);
    int (*shmctl)(int shmid, int cmd, struct shmid_ds *buf);
    int (*sig_mask)(int how, const sigset_t *set, sigset_t *old);
    /* memfd backend */
    int (*memfd_create)(const char *name, unsigned flags);
    int (*fchmod)(int fd, mode_t mode);
    int (*fcntl)(int fd, int cmd, int arg); /* F_ADD_SEALS, F_GET_SEALS */
};

extern struct dsm__syscalls dsm__sys;

/* The unmodified table, for tests that restore what they changed. */
extern const struct dsm__syscalls dsm__sys_default;

#endif /* DYNSHM_SYSCALLS_H */
