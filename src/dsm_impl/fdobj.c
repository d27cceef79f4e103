/* SPDX-License-Identifier: MIT */
/*
 * fdobj.c - helpers for the backends whose segments are files reached by a
 * descriptor (posix, mmap): names, reserving the memory, mapping, the
 * ownership check and the attach-time size check.
 *
 * A call goes switch (dsm_impl.c) -> backend -> helper, once and downward:
 * the switch knows no backend's mechanics, and these helpers know no
 * backend's names or directories.  Every system call goes through the
 * dsm__sys table so the failure-injection suite reaches each step.
 *
 * Reserving memory is where the "ENOSPC now, never SIGBUS later" promise is
 * kept, so it deserves the most care:
 *   - posix_fallocate gives every page real backing store.  A large one can
 *     take seconds, and the kernel abandons it with EINTR whenever a signal
 *     is delivered, so a process that receives frequent signals (timers,
 *     SIGCHLD from many workers) could retry forever.  Every signal is
 *     blocked for the duration *except* the ones that ask a process to stop
 *     (SIGTERM, SIGQUIT, SIGINT) and the synchronous faults: a shut-down
 *     request is not delayed by a multi-gigabyte reservation.  When one of
 *     those interrupts the reservation (its handler ran: with the default
 *     action the process is already gone), create fails with -EINTR, having
 *     removed the object, and the caller decides whether the signal meant
 *     stop.  PostgreSQL leaves SIGQUIT open the same way.
 *   - Where posix_fallocate does not exist, or the file system cannot do it
 *     (EOPNOTSUPP: musl passes that through, glibc emulates), the file is
 *     sized and every page is written with zeros instead, which allocates
 *     it just as surely.  Silently falling back to ftruncate would give a
 *     sparse object and the SIGBUS the promise rules out.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "dsm_impl_int.h"

char *dsm__impl_object_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    size_t plen = sizeof(DSM_IMPL_NAME_PREFIX) - 1;
    char *p = buf;

    memcpy(p, DSM_IMPL_NAME_PREFIX, plen);
    p += plen;
    memcpy(p, inst->idstr, 16);
    p += 16;
    *p++ = '.';
    for (int i = 15; i >= 0; i--, handle >>= 4)
        p[i] = hex[handle & 15];
    p[16] = '\0';
    return buf;
}

/* Size fd and write zeros over every page; 0 or a positive errno. */
static int fill_with_zeros(int fd, size_t size)
{
    static const char zeros[64 * 1024];
    size_t done = 0;

    if (dsm__sys.ftruncate(fd, (off_t)size) != 0)
        return errno;
    while (done < size) {
        size_t n = size - done < sizeof(zeros) ? size - done : sizeof(zeros);
        ssize_t w = dsm__sys.pwrite(fd, zeros, n, (off_t)done);

        if (w < 0)
            return errno; /* EINTR included: only a stop signal can interrupt us here */
        if (w == 0)
            return ENOSPC;
        done += (size_t)w;
    }
    return 0;
}

int dsm__impl_reserve(int fd, size_t size)
{
    static const int open_signals[] = {SIGTERM, SIGQUIT, SIGINT, SIGSEGV,
                                       SIGBUS,  SIGFPE,  SIGILL, SIGABRT};
    sigset_t mask, old;
    int blocked, rc;

    sigfillset(&mask);
    for (size_t i = 0; i < DSM_ARRAY_LEN(open_signals); i++)
        sigdelset(&mask, open_signals[i]);
    blocked = dsm__sys.sig_mask(SIG_BLOCK, &mask, &old) == 0;
    rc = dsm__sys.posix_fallocate(fd, 0, (off_t)size);
    if (rc == EOPNOTSUPP || rc == ENOSYS)
        rc = fill_with_zeros(fd, size);
    if (blocked)
        dsm__sys.sig_mask(SIG_SETMASK, &old, NULL);
    return rc;
}

int dsm__impl_map(int fd, size_t size, void **addr)
{
    void *p = dsm__sys.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    if (p == MAP_FAILED)
        return errno;
    *addr = p;
    return 0;
}

int dsm__impl_munmap(dsm_impl_instance *inst, dsm_impl_segment *seg)
{
    char name[DSM_IMPL_NAME_MAX];

    if (dsm__sys.munmap(seg->address, seg->size) != 0) {
        int e = errno;

        inst->ops->name(inst, seg->handle, name, sizeof(name));
        return dsm__error(-e, "could not unmap shared memory segment \"%s\": %m", name);
    }
    seg->address = NULL;
    return 0;
}

bool dsm__impl_owned(const struct stat *st)
{
    return S_ISREG(st->st_mode) && st->st_uid == geteuid() && (st->st_mode & 077) == 0;
}

int dsm__impl_check_owner(const struct stat *st, const char *what, const char *name)
{
    if (dsm__impl_owned(st))
        return 0;
    if (!S_ISREG(st->st_mode))
        return dsm__error(DSM_EFOREIGN, "%s \"%s\" is not a regular file", what, name);
    if (st->st_uid != geteuid())
        return dsm__error(DSM_EFOREIGN, "%s \"%s\" is owned by uid %u, not by this user", what,
                          name, (unsigned)st->st_uid);
    return dsm__error(DSM_EFOREIGN,
                      "%s \"%s\" has permissions %03o; dynshm creates only 0600 objects",
                      what, name, (unsigned)(st->st_mode & 0777));
}

int dsm__impl_check_size(off_t size, const char *name)
{
    if (size <= 0)
        return dsm__error(-EAGAIN, "shared memory segment \"%s\" is still being created", name);
    if ((uint64_t)size > DSM_IMPL_MAX_SIZE)
        return dsm__error(DSM_EFOREIGN,
                          "shared memory segment \"%s\" has %lld bytes, more than dynshm ever "
                          "creates (%zu)",
                          name, (long long)size, (size_t)DSM_IMPL_MAX_SIZE);
    return 0;
}

int dsm__impl_attach_fd(dsm_impl_instance *inst, int fd, dsm_handle handle,
                        dsm_impl_segment *seg)
{
    char name[DSM_IMPL_NAME_MAX];
    struct stat st;
    void *addr = NULL;
    int rc;

    if (dsm__sys.fstat(fd, &st) != 0) {
        rc = errno;
        inst->ops->name(inst, handle, name, sizeof(name));
        return dsm__error(-rc, "could not stat shared memory segment \"%s\": %m", name);
    }
    if (!dsm__impl_owned(&st) || st.st_size <= 0 || (uint64_t)st.st_size > DSM_IMPL_MAX_SIZE) {
        /* The full name is only for messages, so it is formatted on failure only. */
        inst->ops->name(inst, handle, name, sizeof(name));
        rc = dsm__impl_check_owner(&st, "shared memory segment", name);
        return rc < 0 ? rc : dsm__impl_check_size(st.st_size, name);
    }
    rc = dsm__impl_map(fd, (size_t)st.st_size, &addr);
    if (rc != 0) {
        inst->ops->name(inst, handle, name, sizeof(name));
        return dsm__error(-rc, "could not map shared memory segment \"%s\": %m", name);
    }
    seg->handle = handle;
    seg->address = addr;
    seg->size = (size_t)st.st_size;
    return 0;
}

int dsm__impl_create_fd(dsm_impl_instance *inst, int fd, dsm_handle handle, size_t size,
                        dsm_impl_segment *seg)
{
    char name[DSM_IMPL_NAME_MAX];
    void *addr = NULL;
    int rc;

    rc = dsm__impl_reserve(fd, size);
    if (rc != 0) {
        inst->ops->name(inst, handle, name, sizeof(name));
        if (rc == EINTR)
            return dsm__error(-rc, "could not reserve %zu bytes for shared memory segment "
                                   "\"%s\": interrupted by a request to stop",
                              size, name);
        rc = dsm__error(-rc, "could not resize shared memory segment \"%s\" to %zu bytes: %m",
                        name, size);
        if (rc == -ENOSPC) {
            struct statvfs vfs;

            if (fstatvfs(fd, &vfs) == 0)
                dsm__errdetail(rc, "%zu bytes were asked for; the file system holding it has "
                                   "%llu bytes free of %llu.",
                               size, (unsigned long long)vfs.f_bavail * vfs.f_frsize,
                               (unsigned long long)vfs.f_blocks * vfs.f_frsize);
        }
        return rc;
    }
    rc = dsm__impl_map(fd, size, &addr);
    if (rc != 0) {
        inst->ops->name(inst, handle, name, sizeof(name));
        return dsm__error(-rc, "could not map shared memory segment \"%s\": %m", name);
    }
    seg->handle = handle;
    seg->address = addr;
    seg->size = size;
    return 0;
}
