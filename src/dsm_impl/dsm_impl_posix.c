/*
 * dsm_impl_posix.c - the posix backend: shm_open() objects in /dev/shm.
 *
 * Names are "/dynshm.<instance id>.<handle>", so an operator (and dsmctl)
 * can tell which instance owns each file in /dev/shm, and a sweep by prefix
 * never touches another instance's objects.  Create reserves the memory
 * with posix_fallocate: tmpfs allocates pages lazily, and a mapping of an
 * unreserved page on a full tmpfs is a SIGBUS in whichever process touches
 * it first, possibly much later.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dsm_impl_int.h"

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
    void *addr;
    int fd, rc;

    posix_name(inst, handle, name, sizeof(name));
    fd = dsm__sys.shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return dsm__error_silent(-EEXIST);
        return dsm__error(-errno, "could not create shared memory segment \"%s\": %m", name);
    }
    rc = dsm__impl_reserve(fd, size);
    if (rc != 0) {
        dsm__sys.close(fd);
        dsm__sys.shm_unlink(name);
        return dsm__error(-rc, "could not resize shared memory segment \"%s\" to %zu bytes: %m",
                          name, size);
    }
    rc = dsm__impl_map(fd, size, &addr);
    if (rc != 0) {
        dsm__sys.close(fd);
        dsm__sys.shm_unlink(name);
        return dsm__error(-rc, "could not map shared memory segment \"%s\": %m", name);
    }
    /* The mapping keeps the object alive; a failed close loses nothing. */
    dsm__sys.close(fd);
    seg->handle = handle;
    seg->address = addr;
    seg->size = size;
    return 0;
}

static int posix_attach(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    char name[64];
    struct stat st;
    void *addr;
    int fd, rc;

    posix_name(inst, handle, name, sizeof(name));
    fd = dsm__sys.shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return dsm__error(-errno, "could not open shared memory segment \"%s\": %m", name);
    if (dsm__sys.fstat(fd, &st) != 0) {
        rc = errno;
        dsm__sys.close(fd);
        return dsm__error(-rc, "could not stat shared memory segment \"%s\": %m", name);
    }
    rc = dsm__impl_check_owner(&st, "shared memory segment", name);
    if (rc == 0 && st.st_size <= 0)
        rc = dsm__error(-EAGAIN, "shared memory segment \"%s\" is still being created", name);
    if (rc < 0) {
        dsm__sys.close(fd);
        return rc;
    }
    rc = dsm__impl_map(fd, (size_t)st.st_size, &addr);
    dsm__sys.close(fd);
    if (rc != 0)
        return dsm__error(-rc, "could not map shared memory segment \"%s\": %m", name);
    seg->handle = handle;
    seg->address = addr;
    seg->size = (size_t)st.st_size;
    return 0;
}

static int posix_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    char name[64];

    posix_name(inst, seg->handle, name, sizeof(name));
    if (dsm__sys.shm_unlink(name) != 0)
        return dsm__error(-errno, "could not remove shared memory segment \"%s\": %m", name);
    return 0;
}

const struct dsm__impl_ops dsm__impl_posix_ops = {
    .create = posix_create,
    .attach = posix_attach,
    .detach = dsm__impl_munmap,
    .destroy = posix_destroy,
    .name = posix_name,
};
