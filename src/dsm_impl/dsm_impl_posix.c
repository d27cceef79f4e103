/* SPDX-License-Identifier: MIT */
/*
 * dsm_impl_posix.c - the posix backend: shm_open() objects in /dev/shm.
 *
 * Names are "/dynshm.<instance id>.<handle>", so an operator (and dsmctl)
 * can tell which instance owns each file in /dev/shm, and a sweep by prefix
 * never touches another instance's objects.  Create reserves the memory
 * (fdobj.c): tmpfs allocates pages lazily, and a mapping of an unreserved
 * page on a full tmpfs is a SIGBUS in whichever process touches it first,
 * possibly much later.  This file is the only one that knows where glibc
 * keeps shm_open objects.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dsm_impl_int.h"

/* Where shm_open(3) objects live on Linux (glibc and musl alike). */
#define POSIX_SHM_DIR "/dev/shm"

static int posix_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf, size_t len)
{
    if (len < 1 + DSM_IMPL_OBJECT_NAME_SIZE)
        return dsm__error(-ERANGE, "buffer too small for a segment name");
    buf[0] = '/';
    dsm__impl_object_name(inst, handle, buf + 1);
    return 0;
}

static int posix_create(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                        dsm_impl_segment *seg)
{
    char name[64];
    int fd, rc;

    posix_name(inst, handle, name, sizeof(name));
    fd = dsm__sys.shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return dsm__error_silent(-EEXIST);
        return dsm__error(-errno, "could not create shared memory segment \"%s\": %m", name);
    }
    rc = dsm__impl_create_fd(inst, fd, handle, size, seg);
    /* The mapping keeps the object alive; a failed close loses nothing. */
    dsm__sys.close(fd);
    if (rc < 0)
        dsm__sys.shm_unlink(name);
    if (rc == -ENOSPC)
        dsm__errhint(rc, "Free memory in " POSIX_SHM_DIR " or make it larger (on a host: mount "
                         "-o remount,size=...; in a container: --shm-size), or set "
                         "dynamic_shared_memory_type to another backend.");
    return rc;
}

static int posix_attach(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    char name[64];
    int fd, rc;

    posix_name(inst, handle, name, sizeof(name));
    fd = dsm__sys.shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return dsm__error(-errno, "could not open shared memory segment \"%s\": %m", name);
    rc = dsm__impl_attach_fd(inst, fd, handle, seg);
    dsm__sys.close(fd);
    return rc;
}

static int posix_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    char name[64];

    posix_name(inst, seg->handle, name, sizeof(name));
    if (dsm__sys.shm_unlink(name) != 0)
        return dsm__error(-errno, "could not remove shared memory segment \"%s\": %m", name);
    return 0;
}

/* shm_unlink removes whatever has the name: existence is the whole question. */
static int posix_probe(const dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    char name[64];
    int fd;

    posix_name(inst, seg->handle, name, sizeof(name));
    fd = dsm__sys.shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0) {
        dsm__sys.close(fd);
        return 1;
    }
    return errno == ENOENT ? 0 : 1;
}

static int posix_sweep(dsm_impl_instance *inst, dsm_handle keep, int dry_run,
                       void (*report)(const char *name, void *arg), void *arg)
{
    int dfd = dsm__sys.openat(AT_FDCWD, POSIX_SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

    if (dfd < 0)
        return dsm__error(-errno, "could not scan \"%s\" for leftover segments: %m",
                          POSIX_SHM_DIR);
    return dsm__impl_sweep_dir(inst, dfd, keep, dry_run, report, arg);
}

const struct dsm__impl_ops dsm__impl_posix_ops = {
    .create = posix_create,
    .attach = posix_attach,
    .detach = dsm__impl_munmap,
    .destroy = posix_destroy,
    .name = posix_name,
    .probe = posix_probe,
    .sweep = posix_sweep,
};
