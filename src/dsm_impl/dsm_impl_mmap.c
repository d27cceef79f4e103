/* SPDX-License-Identifier: MIT */
/*
 * dsm_impl_mmap.c - the mmap backend: regular files mapped MAP_SHARED.
 *
 * Segments are files <datadir>/dynshm_mmap/dynshm.<instance id>.<handle>.
 * Useful where shared memory is limited by policy but files are not, for
 * debugging (the contents are plain files), and for placing segments on a
 * chosen RAM disk.  The directory is opened once, without following
 * symbolic links, and every file is reached relative to that descriptor,
 * so swapping the directory for a link after start-up redirects nothing.
 * Because files survive a reboot, start-up cleanup also sweeps this
 * directory (mmap_sweep).
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsm_impl_int.h"

static int mmap_file(const dsm_impl_instance *inst, dsm_handle handle, char *buf, size_t len)
{
    if (len < DSM_IMPL_OBJECT_NAME_SIZE)
        return dsm__error(-ERANGE, "buffer too small for a segment name");
    dsm__impl_object_name(inst, handle, buf);
    return 0;
}

static int mmap_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/" DSM_IMPL_NAME_PREFIX "%s.%016llx", inst->dirpath,
                     inst->idstr, (unsigned long long)handle);

    if (n < 0 || (size_t)n >= len)
        return dsm__error(-ERANGE, "buffer too small for a segment name");
    return 0;
}

static int mmap_open(dsm_impl_instance *inst)
{
    struct stat st;
    size_t len = strlen(inst->datadir) + sizeof("/" DSM_IMPL_MMAP_DIR);
    int fd, rc;

    inst->dirpath = malloc(len);
    if (inst->dirpath == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    snprintf(inst->dirpath, len, "%s/" DSM_IMPL_MMAP_DIR, inst->datadir);

    if (dsm__sys.mkdirat(AT_FDCWD, inst->dirpath, 0700) != 0 && errno != EEXIST) {
        rc = dsm__error(-errno, "could not create directory \"%s\": %m", inst->dirpath);
        goto fail;
    }
    fd = dsm__sys.openat(AT_FDCWD, inst->dirpath,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            rc = dsm__error(-errno, "\"%s\" is not a directory (a symbolic link is refused): %m",
                            inst->dirpath);
        else
            rc = dsm__error(-errno, "could not open directory \"%s\": %m", inst->dirpath);
        goto fail;
    }
    if (dsm__sys.fstat(fd, &st) != 0) {
        rc = dsm__error(-errno, "could not stat directory \"%s\": %m", inst->dirpath);
        dsm__sys.close(fd);
        goto fail;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        rc = dsm__error(DSM_EFOREIGN,
                        "directory \"%s\" must be owned by this user with mode 0700 "
                        "(it has uid %u, mode %03o)",
                        inst->dirpath, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        dsm__sys.close(fd);
        goto fail;
    }
    inst->dirfd = fd;
    return 0;

fail:
    free(inst->dirpath);
    inst->dirpath = NULL;
    return rc;
}

static void mmap_close(dsm_impl_instance *inst)
{
    if (inst->dirfd >= 0)
        dsm__sys.close(inst->dirfd);
    inst->dirfd = -1;
}

static int mmap_create(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                       dsm_impl_segment *seg)
{
    char file[64], name[DSM_IMPL_NAME_MAX];
    int fd, rc;

    mmap_file(inst, handle, file, sizeof(file));
    fd = dsm__sys.openat(inst->dirfd, file,
                         O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return dsm__error_silent(-EEXIST);
        rc = errno;
        mmap_name(inst, handle, name, sizeof(name));
        return dsm__error(-rc, "could not create shared memory segment \"%s\": %m", name);
    }
    /* On a hugetlbfs directory (hugepages.c) sizes are whole huge pages. */
    rc = dsm__impl_create_fd(inst, fd, handle, dsm__impl_huge_round(inst, size), seg);
    dsm__sys.close(fd);
    if (rc < 0)
        dsm__sys.unlinkat(inst->dirfd, file, 0);
    if (rc == -ENOSPC)
        dsm__errhint(rc, "Free space on the file system of \"%s\", or put the data directory "
                         "on a larger one.", inst->dirpath);
    return rc;
}

static int mmap_attach(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    char file[64], name[DSM_IMPL_NAME_MAX];
    int fd, rc;

    mmap_file(inst, handle, file, sizeof(file));
    fd = dsm__sys.openat(inst->dirfd, file, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) {
        rc = errno;
        mmap_name(inst, handle, name, sizeof(name));
        return dsm__error(-rc, "could not open shared memory segment \"%s\": %m", name);
    }
    rc = dsm__impl_attach_fd(inst, fd, handle, seg);
    dsm__sys.close(fd);
    return rc;
}

static int mmap_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    char file[64], name[DSM_IMPL_NAME_MAX];

    mmap_file(inst, seg->handle, file, sizeof(file));
    if (dsm__sys.unlinkat(inst->dirfd, file, 0) != 0) {
        int e = errno;

        mmap_name(inst, seg->handle, name, sizeof(name));
        return dsm__error(-e, "could not remove shared memory segment \"%s\": %m", name);
    }
    return 0;
}

/* unlinkat removes whatever has the name, link or file: existence is the question. */
static int mmap_probe(const dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    char file[64];
    struct stat st;

    mmap_file(inst, seg->handle, file, sizeof(file));
    if (dsm__sys.fstatat(inst->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return 1;
    return errno == ENOENT ? 0 : 1;
}

static int mmap_sweep(dsm_impl_instance *inst, dsm_handle keep, int dry_run,
                      void (*report)(const char *name, void *arg), void *arg)
{
    /* A descriptor of its own: a dup() would share the directory offset. */
    int dfd = dsm__sys.openat(inst->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

    if (dfd < 0)
        return dsm__error(-errno, "could not scan \"%s\" for leftover segments: %m",
                          inst->dirpath);
    return dsm__impl_sweep_dir(inst, dfd, keep, dry_run, report, arg);
}

const struct dsm__impl_ops dsm__impl_mmap_ops = {
    .open = mmap_open,
    .close = mmap_close,
    .create = mmap_create,
    .attach = mmap_attach,
    .detach = dsm__impl_munmap,
    .destroy = mmap_destroy,
    .name = mmap_name,
    .probe = mmap_probe,
    .sweep = mmap_sweep,
};
