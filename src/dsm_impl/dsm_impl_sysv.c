/* SPDX-License-Identifier: MIT */
/*
 * dsm_impl_sysv.c - the sysv backend: shmget()/shmat() segments.
 *
 * System V segments have 32-bit keys and no names, so the key is derived
 * from the instance id and the handle; two handles (or two instances) can
 * map to one key, which create reports as a collision (-EEXIST) for the
 * caller to retry.  Because a key proves nothing, nothing is attached or
 * removed until the segment is shown to be ours: created by this user,
 * mode 0600, and, where the caller recorded them, the same shmid and size.
 *
 * SysV objects have no names to sweep: only the control segment, which
 * records every handle before its object is created, can lead cleanup to
 * them (there is no sweep op).
 *
 * Memory: Linux charges a SysV segment to the commit limit at shmget time
 * (we never pass SHM_NORESERVE), so exhaustion is an error from create.
 * With huge pages (hugepages.c) shmget asks for SHM_HUGETLB, which
 * reserves the huge pages at once.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dsm_impl_int.h"

#ifndef SHM_HUGE_SHIFT
#define SHM_HUGE_SHIFT 26 /* linux/shm.h: HUGETLB_FLAG_ENCODE_SHIFT */
#endif

static key_t sysv_key(const dsm_impl_instance *inst, dsm_handle handle)
{
    uint32_t k = (uint32_t)dsm__mix64(inst->id ^ dsm__mix64(handle));

    /* IPC_PRIVATE (0) would create an unnamed segment nobody could find. */
    if ((key_t)k == IPC_PRIVATE)
        k = 1;
    return (key_t)k;
}

static int sysv_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf, size_t len)
{
    int n = snprintf(buf, len, "key 0x%08x", (unsigned)sysv_key(inst, handle));

    if (n < 0 || (size_t)n >= len)
        return dsm__error(-ERANGE, "buffer too small for a segment name");
    return 0;
}

/* Look up the segment for handle and check it is ours; returns shmid or an error.
 * The name is formatted only for a message: on success it is never needed. */
static int sysv_lookup(const dsm_impl_instance *inst, dsm_handle handle, int64_t want_id,
                       size_t want_size, struct shmid_ds *ds, const char *verb)
{
    char name[32];
    uid_t me;
    int shmid, e;

    shmid = dsm__sys.shmget(sysv_key(inst, handle), 0, 0);
    if (shmid < 0) {
        e = errno;
        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(-e, "could not %s shared memory segment \"%s\": %m", verb, name);
    }
    if (dsm__sys.shmctl(shmid, IPC_STAT, ds) != 0) {
        e = errno;
        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(-e, "could not stat shared memory segment \"%s\": %m", name);
    }
    me = geteuid();
    if (ds->shm_perm.cuid != me || ds->shm_perm.uid != me) {
        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(DSM_EFOREIGN,
                          "shared memory segment \"%s\" was created by uid %u, not by this user",
                          name, (unsigned)ds->shm_perm.cuid);
    }
    if ((ds->shm_perm.mode & 0777) != 0600) {
        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(DSM_EFOREIGN,
                          "shared memory segment \"%s\" has permissions %03o; dynshm creates "
                          "only 0600 segments",
                          name, (unsigned)(ds->shm_perm.mode & 0777));
    }
    if (want_id >= 0 && shmid != want_id) {
        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(DSM_EFOREIGN,
                          "shared memory segment \"%s\" has id %d, not the recorded %lld", name,
                          shmid, (long long)want_id);
    }
    if (want_size > 0 && ds->shm_segsz != want_size) {
        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(DSM_EFOREIGN,
                          "shared memory segment \"%s\" has %zu bytes, not the recorded %zu",
                          name, (size_t)ds->shm_segsz, want_size);
    }
    return shmid;
}

/* A kernel limit, read from /proc/sys/kernel; 0 if unknown. */
static unsigned long long kernel_limit(const char *name)
{
    char path[64], buf[64];
    unsigned long long v = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) == NULL || sscanf(buf, "%llu", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

/*
 * shmget's failures are the kernel's System V limits more often than a
 * lack of memory: name the one that applies and the sysctl that raises it.
 */
static int sysv_limits(int rc, size_t size)
{
    switch (rc) {
    case -EINVAL:
        dsm__errdetail(rc, "%zu bytes were asked for; kernel.shmmax allows %llu per segment.",
                       size, kernel_limit("shmmax"));
        return dsm__errhint(rc, "Raise kernel.shmmax (sysctl -w kernel.shmmax=...), or use the "
                                "posix backend.");
    case -ENOSPC:
        dsm__errdetail(rc, "The system has reached kernel.shmmni = %llu segments, or "
                           "kernel.shmall = %llu pages in all.",
                       kernel_limit("shmmni"), kernel_limit("shmall"));
        return dsm__errhint(rc, "Raise kernel.shmmni or kernel.shmall (sysctl), remove leftover "
                                "segments (ipcs -m), or use the posix backend.");
    case -ENOMEM:
        dsm__errdetail(rc, "%zu bytes were asked for and the kernel could not commit them.",
                       size);
        return dsm__errhint(rc, "Free memory, or check vm.overcommit_memory and the memory "
                                "limit of the server's cgroup.");
    default:
        return rc;
    }
}

static int sysv_create(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                       dsm_impl_segment *seg)
{
    char name[32];
    void *addr;
    int shmid, e;

    if (inst->huge_active) {
        /* Huge pages (hugepages.c): rounded up; on fails, try falls back once said. */
        size_t huge = dsm__impl_huge_round(inst, size);
        int hflags = SHM_HUGETLB | (dsm__huge_shift(inst->huge_size) << SHM_HUGE_SHIFT);

        shmid = dsm__sys.shmget(sysv_key(inst, handle), huge,
                                IPC_CREAT | IPC_EXCL | 0600 | hflags);
        if (shmid >= 0) {
            size = huge;
        } else if ((e = errno) == EEXIST) {
            return dsm__error_silent(-EEXIST);
        } else {
            sysv_name(inst, handle, name, sizeof(name));
            if (inst->huge_mode == DSM_HUGE_ON)
                return dsm__error(-e, "could not create shared memory segment \"%s\" with "
                                      "%zu kB huge pages: %m (huge_pages = on: %ld free of "
                                      "%ld reserved; a user other than root needs its group "
                                      "in vm.hugetlb_shm_group or CAP_IPC_LOCK)",
                                  name, inst->huge_size >> 10,
                                  dsm__huge_pages_count(inst->huge_size, "free_hugepages"),
                                  dsm__huge_pages_count(inst->huge_size, "nr_hugepages"));
            dsm__impl_huge_fallback(inst, "could not create System V segment \"%s\" with "
                                          "huge pages: %s", name, strerror(e));
        }
    } else {
        shmid = -1;
    }
    if (shmid < 0)
        shmid = dsm__sys.shmget(sysv_key(inst, handle), size, IPC_CREAT | IPC_EXCL | 0600);
    if (shmid < 0) {
        e = errno;
        if (e == EEXIST)
            return dsm__error_silent(-EEXIST);
        sysv_name(inst, handle, name, sizeof(name));
        return sysv_limits(dsm__error(-e, "could not create shared memory segment \"%s\": %m",
                                      name),
                           size);
    }
    addr = dsm__sys.shmat(shmid, NULL, 0);
    if (addr == (void *)-1) {
        e = errno;
        dsm__sys.shmctl(shmid, IPC_RMID, NULL);
        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(-e, "could not map shared memory segment \"%s\": %m", name);
    }
    seg->handle = handle;
    seg->address = addr;
    seg->size = size;
    seg->os_id = shmid;
    return 0;
}

static int sysv_attach(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    struct shmid_ds ds = {0};
    char name[32];
    void *addr;
    int shmid = sysv_lookup(inst, handle, -1, 0, &ds, "open");

    if (shmid < 0)
        return shmid;
    addr = dsm__sys.shmat(shmid, NULL, 0);
    if (addr == (void *)-1) {
        int e = errno;

        sysv_name(inst, handle, name, sizeof(name));
        return dsm__error(-e, "could not map shared memory segment \"%s\": %m", name);
    }
    seg->handle = handle;
    seg->address = addr;
    seg->size = ds.shm_segsz;
    seg->os_id = shmid;
    return 0;
}

static int sysv_detach(dsm_impl_instance *inst, dsm_impl_segment *seg)
{
    char name[32];

    if (dsm__sys.shmdt(seg->address) != 0) {
        int e = errno;

        sysv_name(inst, seg->handle, name, sizeof(name));
        return dsm__error(-e, "could not unmap shared memory segment \"%s\": %m", name);
    }
    seg->address = NULL;
    return 0;
}

static int sysv_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    struct shmid_ds ds;
    char name[32];
    int shmid = sysv_lookup(inst, seg->handle, seg->os_id, seg->size, &ds, "find");

    if (shmid < 0)
        return shmid;
    if (dsm__sys.shmctl(shmid, IPC_RMID, NULL) != 0) {
        int e = errno;

        sysv_name(inst, seg->handle, name, sizeof(name));
        return dsm__error(-e, "could not remove shared memory segment \"%s\": %m", name);
    }
    return 0;
}

/* The checks destroy makes before IPC_RMID, without the IPC_RMID. */
static int sysv_probe(const dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    struct shmid_ds ds;
    int shmid = sysv_lookup(inst, seg->handle, seg->os_id, seg->size, &ds, "find");

    if (shmid == -ENOENT || shmid == -EIDRM || shmid == -EINVAL)
        return 0; /* gone, or removed between the lookup and the stat */
    return shmid < 0 ? shmid : 1;
}

const struct dsm__impl_ops dsm__impl_sysv_ops = {
    .create = sysv_create,
    .attach = sysv_attach,
    .detach = sysv_detach,
    .destroy = sysv_destroy,
    .name = sysv_name,
    .probe = sysv_probe,
};
