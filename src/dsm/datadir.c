/* SPDX-License-Identifier: MIT */
/*
 * datadir.c - the data directory: who may use it, and its lock.
 *
 * The directory names the instance and holds its lock and state files, so
 * whoever can write it can take the instance over: remove the lock file of
 * a running supervisor, start a second one on the same directory, and have
 * that one's start-up cleanup unlink the live instance's segments.  So, as
 * PostgreSQL does for its data directory, a directory that another user
 * could write (group- or world-writable, or owned by somebody else) is
 * refused before anything is created in it.
 *
 * Liveness is the lock and nothing else.  The supervisor holds an exclusive
 * flock on DIR/dynshm.lock for its whole life and its forked workers
 * inherit it, so "the lock can be taken" proves that no process of the
 * instance that could still use its segments remains -- a proof no pid can
 * give (pids are reused, and a supervisor killed with its workers still
 * running leaves a dead pid but a live instance).
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "../common/internal.h"

int dsm__datadir_check(const char *datadir)
{
    struct stat st;

    if (datadir == NULL || datadir[0] == '\0')
        return dsm__error(-EINVAL, "a data directory is required");
    if (stat(datadir, &st) != 0)
        return dsm__error(-errno, "could not access data directory \"%s\": %m", datadir);
    if (!S_ISDIR(st.st_mode))
        return dsm__error(-ENOTDIR, "data directory \"%s\" is not a directory", datadir);
    if (st.st_uid != geteuid()) {
        int rc = dsm__error(DSM_EFOREIGN, "data directory \"%s\" is owned by uid %u, not by "
                                          "this user (uid %u)",
                            datadir, (unsigned)st.st_uid, (unsigned)geteuid());

        return dsm__errhint(rc, "Run the server as the directory's owner, or give it a "
                                "directory of its own (mode 0700).");
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        int rc = dsm__error(-EPERM, "data directory \"%s\" has permissions %03o, writable by "
                                    "other users",
                            datadir, (unsigned)(st.st_mode & 0777));

        dsm__errdetail(rc, "Whoever can write it can remove its lock and state files and "
                           "take the instance over.");
        return dsm__errhint(rc, "chmod go-w \"%s\" (0700 or 0750).", datadir);
    }
    return 0;
}

static int lock_path(const char *datadir, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/" DSM_LOCK_FILE, datadir);

    if (n < 0 || (size_t)n >= len)
        return dsm__error(-ENAMETOOLONG, "data directory path \"%s\" is too long", datadir);
    return 0;
}

static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

int dsm__datadir_lock(const char *datadir, bool write_pid, long *holder)
{
    char path[4096], buf[32];
    struct stat st;
    int fd, n, rc;

    if (holder)
        *holder = 0;
    if ((rc = lock_path(datadir, path, sizeof(path))) < 0)
        return rc;
    /* O_NONBLOCK: a FIFO in its place must not hang start-up (refused below). */
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0)
        return dsm__error(-errno, "could not open lock file \"%s\": %m", path);
    /* An old lock file keeps its mode otherwise; it is ours, so make it 0600. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        fchmod(fd, 0600) != 0) {
        close(fd);
        return dsm__error(DSM_EFOREIGN, "lock file \"%s\" is not a regular file owned by this "
                                        "user", path);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = read_pid(fd);

        close(fd);
        if (holder)
            *holder = pid;
        if (e == EWOULDBLOCK)
            return dsm__error(-EBUSY, "data directory \"%s\" is in use: a dynshm "
                                      "supervisor, its workers or dsmctl gc hold its lock "
                                      "(last supervisor: pid %ld)", datadir, pid);
        return dsm__error(-e, "could not lock \"%s\": %m", path);
    }
    if (write_pid) {
        n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
            /* A short write sets no errno: never report "success" (fd 0) for it. */
            int e = errno ? errno : EIO;

            close(fd);
            return dsm__error(-e, "could not write lock file \"%s\": %m", path);
        }
    }
    return fd;
}

int dsm__datadir_probe(const char *datadir, bool *exists, bool *held, long *pid)
{
    char path[4096];
    int fd, rc;

    *exists = *held = false;
    *pid = 0;
    if ((rc = lock_path(datadir, path, sizeof(path))) < 0)
        return rc;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* no supervisor can run without creating it */
        return dsm__error(-errno, "could not open lock file \"%s\": %m", path);
    }
    *exists = true;
    *pid = read_pid(fd);
    /* Shared, so that two inspecting processes never see each other as a supervisor. */
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
    } else if (errno == EWOULDBLOCK) {
        *held = true;
    } else {
        rc = dsm__error(-errno, "could not lock \"%s\": %m", path);
    }
    close(fd);
    return rc;
}
