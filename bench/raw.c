/* SPDX-License-Identifier: MIT */
/*
 * bench/raw.c - each backend's system-call sequence, without dynshm.
 *
 * This is the yardstick: what a program gets by calling the operating
 * system directly, with the same flags, the same order of calls and the
 * same helpers (dsm__impl_reserve, which blocks signals around
 * posix_fallocate, and the dsm__sys table the backends call through), so
 * that "dynshm / raw" measures dynshm's bookkeeping and nothing else.
 * What the backends do beyond system calls (ownership checks, messages) is
 * deliberately not copied: it is part of what the ratio should show.
 *
 *   posix  create  shm_open(O_CREAT|O_EXCL) + posix_fallocate (signals
 *                  blocked) + mmap + close;  destroy munmap + shm_unlink
 *          attach  shm_open + fstat + mmap + close;  detach munmap
 *   sysv   create  shmget(IPC_CREAT|IPC_EXCL) + shmat;  destroy shmdt, then
 *                  the backend's lookup shmget + shmctl(IPC_STAT) + IPC_RMID
 *          attach  shmget + shmctl(IPC_STAT) + shmat;  detach shmdt
 *   mmap   create  openat(O_CREAT|O_EXCL) in a directory descriptor +
 *                  posix_fallocate + mmap + close;  destroy munmap + unlinkat
 *          attach  openat + fstat + mmap + close;  detach munmap
 *
 * Every name carries the guardian's pid (dsm_bench.<pid>.<id>) so the
 * guardian can find and remove leftovers; SysV segments have no names and
 * are listed in the shared registry instead.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsm_impl/dsm_impl_int.h"

#include "bench.h"

struct bench_registry *bench_reg;

int raw_open(struct raw_backend *rb, dsm_impl_type type, pid_t guardian, const char *mmap_dir)
{
    memset(rb, 0, sizeof(*rb));
    /*
     * memfd is measured against the posix system calls: the point of the
     * backend is to cost about what posix costs while leaving nothing to
     * clean, so posix's sequence is the floor it must stay near.
     */
    rb->type = type == DSM_IMPL_MEMFD ? DSM_IMPL_POSIX : type;
    rb->guardian = guardian;
    rb->dirfd = -1;
    if (type == DSM_IMPL_MMAP) {
        rb->dirfd = open(mmap_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rb->dirfd < 0) {
            fprintf(stderr, "dsm_bench: could not open directory \"%s\": %s\n", mmap_dir,
                    strerror(errno));
            return -errno;
        }
    }
    return 0;
}

void raw_close(struct raw_backend *rb)
{
    if (rb->dirfd >= 0)
        close(rb->dirfd);
    rb->dirfd = -1;
}

int raw_seg_init(struct raw_seg *s)
{
    memset(s, 0, sizeof(*s));
    s->shmid = -1;
    s->reg = __atomic_fetch_add(&bench_reg->next, 1, __ATOMIC_RELAXED);
    if (s->reg >= BENCH_REG_SLOTS) {
        fprintf(stderr, "dsm_bench: out of registry slots\n");
        return -ENOSPC;
    }
    bench_reg->sysv[s->reg].shmid = -1;
    return 0;
}

/* A fresh object identity: this process's pid and a counter. */
static uint64_t next_id(struct raw_backend *rb)
{
    return ((uint64_t)(uint32_t)getpid() << 32) | ++rb->seq;
}

static int fail(const char *what, const char *name, int e)
{
    fprintf(stderr, "dsm_bench: raw %s of \"%s\" failed: %s\n", what, name, strerror(e));
    return -e;
}

/* posix and mmap create: the same steps on a descriptor from shm_open or openat. */
static int fd_create(struct raw_backend *rb, size_t size, struct raw_seg *s)
{
    const char *fmt = rb->type == DSM_IMPL_POSIX ? "/dsm_bench.%08x.%016llx"
                                                 : "dsm_bench.%08x.%016llx";
    int fd, rc;

    do {
        snprintf(s->name, sizeof(s->name), fmt, (unsigned)rb->guardian,
                 (unsigned long long)next_id(rb));
        if (rb->type == DSM_IMPL_POSIX)
            fd = dsm__sys.shm_open(s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        else
            fd = dsm__sys.openat(rb->dirfd, s->name,
                                 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EEXIST);
    if (fd < 0)
        return fail("create", s->name, errno);
    rc = dsm__impl_reserve(fd, size);
    if (rc == 0)
        rc = dsm__impl_map(fd, size, &s->addr);
    dsm__sys.close(fd);
    if (rc != 0) {
        rc = fail("create", s->name, rc);
        raw_destroy(rb, s);
        return rc;
    }
    s->size = size;
    return 0;
}

static int sysv_create(struct raw_backend *rb, size_t size, struct raw_seg *s)
{
    do {
        uint32_t k = (uint32_t)dsm__mix64(next_id(rb) ^ ((uint64_t)rb->guardian << 20));

        s->key = k ? (int)k : 1;
        s->shmid = dsm__sys.shmget((key_t)s->key, size, IPC_CREAT | IPC_EXCL | 0600);
    } while (s->shmid < 0 && errno == EEXIST);
    snprintf(s->name, sizeof(s->name), "key 0x%08x", (unsigned)s->key);
    if (s->shmid < 0)
        return fail("create", s->name, errno);
    bench_reg->sysv[s->reg].key = s->key;
    bench_reg->sysv[s->reg].shmid = s->shmid;
    s->addr = dsm__sys.shmat(s->shmid, NULL, 0);
    if (s->addr == (void *)-1) {
        int e = errno;

        s->addr = NULL;
        dsm__sys.shmctl(s->shmid, IPC_RMID, NULL);
        bench_reg->sysv[s->reg].shmid = -1;
        return fail("attach", s->name, e);
    }
    s->size = size;
    return 0;
}

int raw_create(struct raw_backend *rb, size_t size, struct raw_seg *s)
{
    if (rb->type == DSM_IMPL_SYSV)
        return sysv_create(rb, size, s);
    return fd_create(rb, size, s);
}

int raw_attach(struct raw_backend *rb, struct raw_seg *s)
{
    struct stat st;
    int fd, rc;

    if (rb->type == DSM_IMPL_SYSV) {
        struct shmid_ds ds;
        int id = dsm__sys.shmget((key_t)s->key, 0, 0);

        if (id < 0 || dsm__sys.shmctl(id, IPC_STAT, &ds) != 0)
            return fail("open", s->name, errno);
        s->addr = dsm__sys.shmat(id, NULL, 0);
        if (s->addr == (void *)-1) {
            s->addr = NULL;
            return fail("attach", s->name, errno);
        }
        s->size = ds.shm_segsz;
        return 0;
    }
    if (rb->type == DSM_IMPL_POSIX)
        fd = dsm__sys.shm_open(s->name, O_RDWR | O_CLOEXEC, 0);
    else
        fd = dsm__sys.openat(rb->dirfd, s->name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        return fail("open", s->name, errno);
    if (dsm__sys.fstat(fd, &st) != 0) {
        rc = errno;
        dsm__sys.close(fd);
        return fail("stat", s->name, rc);
    }
    rc = dsm__impl_map(fd, (size_t)st.st_size, &s->addr);
    dsm__sys.close(fd);
    if (rc != 0)
        return fail("map", s->name, rc);
    s->size = (size_t)st.st_size;
    return 0;
}

int raw_detach(struct raw_backend *rb, struct raw_seg *s)
{
    int rc;

    if (s->addr == NULL)
        return 0;
    if (rb->type == DSM_IMPL_SYSV)
        rc = dsm__sys.shmdt(s->addr);
    else
        rc = dsm__sys.munmap(s->addr, s->size);
    if (rc != 0)
        return fail("unmap", s->name, errno);
    s->addr = NULL;
    return 0;
}

int raw_destroy(struct raw_backend *rb, struct raw_seg *s)
{
    if (rb->type == DSM_IMPL_SYSV) {
        struct shmid_ds ds;
        int id;

        if (s->shmid < 0 || s->key == 0)
            return 0;
        id = dsm__sys.shmget((key_t)s->key, 0, 0);
        if (id < 0 || dsm__sys.shmctl(id, IPC_STAT, &ds) != 0 ||
            dsm__sys.shmctl(id, IPC_RMID, NULL) != 0)
            return fail("remove", s->name, errno);
        bench_reg->sysv[s->reg].shmid = -1;
        s->shmid = -1;
        return 0;
    }
    if (s->name[0] == '\0')
        return 0;
    if (rb->type == DSM_IMPL_POSIX ? dsm__sys.shm_unlink(s->name) != 0
                                   : dsm__sys.unlinkat(rb->dirfd, s->name, 0) != 0)
        return fail("remove", s->name, errno);
    s->name[0] = '\0';
    return 0;
}
