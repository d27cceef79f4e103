/* SPDX-License-Identifier: MIT */
/*
 * dsm_impl_memfd.c - the memfd backend: segments that are anonymous files.
 *
 * Why: every other backend gives a segment a name (a /dev/shm file, a SysV
 * key, a file in the data directory), and a name outlives a kill -9: some
 * cleanup has to find it later.  A memfd_create() file has no name in any
 * name space; the kernel frees it when its last descriptor and its last
 * mapping go.  Kill every process of an instance and nothing is left
 * anywhere, with no cleanup run.
 *
 * The price is that a handle cannot be opened by name, so attach must get
 * the descriptor from a process that has it.  The mechanisms weighed:
 *   - passing descriptors through the supervisor over a Unix socket
 *     (SCM_RIGHTS): a round trip to another process on every attach, and
 *     the supervisor must run a service loop for it;
 *   - pidfd_getfd(2): one call, but it needs PTRACE_MODE_ATTACH, which
 *     Yama (ptrace_scope >= 1, the default on most distributions) refuses
 *     between sibling workers;
 *   - reopening /proc/<pid>/fd/<n>: one open(2), needs only
 *     PTRACE_MODE_READ (Yama does not restrict it) and the file's own
 *     permission check, works for forked and exec'd workers alike.
 * This backend reopens /proc/<pid>/fd/<n>.  Where the segment is held is
 * kept in a small registry per data directory (memfd_registry.c): every
 * process that maps a segment keeps its descriptor open while it maps it
 * and is listed as a holder, so the segment is attachable while anybody
 * uses it, whoever created it and whoever died.  (A pin with no mapping
 * needs a holder too: the dsm layer hands the descriptor to the
 * supervisor's keeper, see src/dsm/keeper.c and the hold op below.)
 *
 * Why reopening is safe against reuse and other users:
 *   - the registry only says where to look; what was opened is proven by
 *     its device and inode (a live file's inode number is unique on its
 *     device, and we hold it open while checking), its owner (our
 *     effective uid), mode 0600 and size, before anything is mapped;
 *   - a dead holder's pid reused by another process, or a descriptor
 *     number reused for another file, therefore yields a different inode
 *     and the next holder is tried; a process of another user cannot be
 *     opened through /proc at all (ptrace access check), and the file
 *     itself is 0600;
 *   - no holder entry is trusted to be alive: attach prunes the entries of
 *     processes that are gone, and reports ENOENT when none is left.
 *
 * Memory: the segment is sealed against shrinking and growing
 * (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), so no process holding a
 * descriptor can truncate it under another's mapping (the SIGBUS that
 * ftruncate on a /dev/shm file allows).  Its pages are reserved at create
 * (fallocate, fdobj.c).  memfd pages are shmem pages charged to the
 * creator's memory cgroup and counted in Shmem; they are not limited by
 * the size of /dev/shm but by the cgroup's memory.max, by RAM plus swap,
 * and, with vm.overcommit_memory = 2, by the commit limit.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "dsm_impl_int.h"
#include "memfd_registry.h"

#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26 /* linux/memfd.h: HUGETLB_FLAG_ENCODE_SHIFT */
#endif

/*
 * The descriptors this process keeps for pins (the hold op), hashed by
 * handle: a supervisor may hold many thousands, and every destroy asks
 * whether it holds that one.
 */
struct memfd_hold {
    dsm_handle handle;
    int fd;
    uint32_t holder;
    struct memfd_hold *next;
};

struct memfd_state {
    struct dsm__memfd_reg *reg;
    pthread_mutex_t mu; /* guards the holds */
    struct memfd_hold **bucket;
    size_t nbuckets, nholds; /* nbuckets: 0 or a power of two */
};

/* The link that points at handle's hold (or at the NULL ending its chain); mu held. */
static struct memfd_hold **hold_slot(struct memfd_state *st, dsm_handle handle)
{
    struct memfd_hold **pp;

    if (st->nbuckets == 0)
        return NULL;
    pp = &st->bucket[dsm__mix64(handle) & (st->nbuckets - 1)];
    while (*pp && (*pp)->handle != handle)
        pp = &(*pp)->next;
    return pp;
}

/* Room for one more hold (rehashing when the table is full); 0 or -ENOMEM. mu held. */
static int hold_room(struct memfd_state *st)
{
    size_t n = st->nbuckets ? st->nbuckets * 2 : 64;
    struct memfd_hold **b;

    if (st->nholds < st->nbuckets)
        return 0;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    if ((b = calloc(n, sizeof(*b))) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (struct memfd_hold *h = st->bucket[i], *next; h; h = next) {
            size_t k = dsm__mix64(h->handle) & (n - 1);

            next = h->next;
            h->next = b[k];
            b[k] = h;
        }
    }
    free(st->bucket);
    st->bucket = b;
    st->nbuckets = n;
    return 0;
}

static struct memfd_state *state(const dsm_impl_instance *inst)
{
    return inst->priv;
}

/*
 * "memfd:dynshm.<id>.<handle>", the name /proc/<pid>/fd shows.  Given room
 * for it (operators' tools pass DSM_IMPL_NAME_MAX; messages inside this
 * file pass less), a live segment's name is followed by where it is held,
 * " (pid 1234 fd 17)", since the name alone leads nowhere.
 */
static int memfd_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf, size_t len)
{
    size_t n = sizeof("memfd:") - 1 + DSM_IMPL_OBJECT_NAME_SIZE;
    struct dsm__memfd_loc loc;

    if (len < n)
        return dsm__error(-ERANGE, "buffer too small for a segment name");
    memcpy(buf, "memfd:", sizeof("memfd:") - 1);
    dsm__impl_object_name(inst, handle, buf + sizeof("memfd:") - 1);
    if (len >= n + 40 && state(inst) != NULL &&
        dsm__memfd_reg_find(state(inst)->reg, handle, &loc) == 0 && loc.n > 0)
        snprintf(buf + n - 1, len - n + 1, " (pid %d fd %d%s%s)", (int)loc.h[0].pid,
                 (int)loc.h[0].fd, loc.n > 1 ? ", ..." : "",
                 (loc.flags & DSM_MEMFD_HUGE) ? ", huge pages" : "");
    return 0;
}

static int memfd_open(dsm_impl_instance *inst)
{
    struct memfd_state *st = calloc(1, sizeof(*st));
    int rc;

    if (st == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    if ((rc = dsm__memfd_reg_open(inst->datadir, &st->reg)) < 0) {
        free(st);
        return rc;
    }
    pthread_mutex_init(&st->mu, NULL);
    inst->priv = st;
    return 0;
}

static void drop_all_holds(struct memfd_state *st, bool registered)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        while (st->bucket[i]) {
            struct memfd_hold *h = st->bucket[i];

            st->bucket[i] = h->next;
            if (registered)
                dsm__memfd_reg_drop_holder(st->reg, h->holder, h->fd);
            dsm__sys.close(h->fd);
            free(h);
        }
    }
    st->nholds = 0;
}

static void memfd_close(dsm_impl_instance *inst)
{
    struct memfd_state *st = state(inst);

    if (st == NULL)
        return;
    drop_all_holds(st, true);
    free(st->bucket);
    dsm__memfd_reg_close(st->reg);
    pthread_mutex_destroy(&st->mu);
    free(st);
    inst->priv = NULL;
}

/*
 * No file system size stops a memfd reservation: fallocate would take page
 * after page of the machine's memory before failing.  A request larger than
 * all of RAM and swap can never succeed, so it fails here, at once.
 */
static int check_machine_size(size_t size, const char *name)
{
    struct sysinfo si;
    unsigned long long total;

    if (size < ((size_t)1 << 30) || sysinfo(&si) != 0)
        return 0;
    total = ((unsigned long long)si.totalram + si.totalswap) * si.mem_unit;
    if ((unsigned long long)size <= total)
        return 0;
    errno = ENOMEM;
    return dsm__error(-ENOMEM, "could not create shared memory segment \"%s\" of %zu bytes: "
                               "more than this machine's memory and swap (%llu bytes)",
                      name, size, total);
}

/* One attempt at create, with huge pages or without; see memfd_create_op. */
static int create_once(dsm_impl_instance *inst, dsm_handle handle, size_t size, bool huge,
                       dsm_impl_segment *seg)
{
    char name[sizeof("memfd:") + DSM_IMPL_OBJECT_NAME_SIZE];
    const char *bare = name + sizeof("memfd:") - 1; /* what memfd_create is given */
    unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    struct stat st;
    uint32_t holder;
    int fd, rc, e;

    memfd_name(inst, handle, name, sizeof(name));
    if (huge)
        flags |= MFD_HUGETLB | ((unsigned)dsm__huge_shift(inst->huge_size) << MFD_HUGE_SHIFT);
    else if ((rc = check_machine_size(size, name)) < 0)
        return rc;
    fd = dsm__sys.memfd_create(bare, flags);
    if (fd < 0) {
        e = errno;
        return dsm__error(-e, "could not create shared memory segment \"%s\": %m", name);
    }
    /* memfd files start at 0777: make the owner-only rule hold here too. */
    if (dsm__sys.fchmod(fd, 0600) != 0) {
        e = errno;
        rc = dsm__error(-e, "could not set permissions of shared memory segment \"%s\": %m",
                        name);
        goto fail_close;
    }
    if ((rc = dsm__impl_create_fd(inst, fd, handle, size, seg)) < 0)
        goto fail_close;
    if (dsm__sys.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        e = errno;
        rc = dsm__error(-e, "could not seal shared memory segment \"%s\": %m", name);
        goto fail_unmap;
    }
    if (dsm__sys.fstat(fd, &st) != 0) {
        e = errno;
        rc = dsm__error(-e, "could not stat shared memory segment \"%s\": %m", name);
        goto fail_unmap;
    }
    rc = dsm__memfd_reg_insert(state(inst)->reg, handle, (uint64_t)st.st_dev,
                               (uint64_t)st.st_ino, size, huge ? DSM_MEMFD_HUGE : 0, fd,
                               &holder);
    if (rc < 0)
        goto fail_unmap; /* -EEXIST (silent): the handle is registered already */
    seg->os_id = (int64_t)st.st_ino;
    seg->reserved[0] = fd;
    seg->reserved[1] = holder;
    return 0;

fail_unmap:
    dsm__sys.munmap(seg->address, size);
    seg->address = NULL;
fail_close:
    dsm__sys.close(fd);
    return rc;
}

/*
 * With huge pages active the size is rounded up to whole huge pages; a
 * create that cannot get them (none free, or the kernel refuses) fails
 * under huge_pages = on, naming what is missing, and under try falls back
 * to normal pages, saying so once.
 */
static int memfd_create_op(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                           dsm_impl_segment *seg)
{
    size_t huge = dsm__impl_huge_round(inst, size);
    int rc;

    if (!inst->huge_active)
        return create_once(inst, handle, size, false, seg);
    rc = create_once(inst, handle, huge, true, seg);
    if (rc == 0 || rc == -EEXIST)
        return rc;
    if (inst->huge_mode == DSM_HUGE_ON)
        return dsm__error(rc, "%s (huge_pages = on: %zu kB pages, %ld free of %ld reserved)",
                          dsm_errmsg(), inst->huge_size >> 10,
                          dsm__huge_pages_count(inst->huge_size, "free_hugepages"),
                          dsm__huge_pages_count(inst->huge_size, "nr_hugepages"));
    dsm__impl_huge_fallback(inst, "%s", dsm_errmsg());
    return create_once(inst, handle, size, false, seg);
}

/* Open holder k's descriptor and prove it is the segment; returns fd or -errno. */
static int reopen(const struct dsm__memfd_loc *loc, int k, struct stat *st)
{
    char path[64];
    int fd, e;

    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)loc->h[k].pid, (int)loc->h[k].fd);
    fd = dsm__sys.openat(AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (dsm__sys.fstat(fd, st) != 0) {
        e = errno;
        dsm__sys.close(fd);
        return -e;
    }
    if ((uint64_t)st->st_dev != loc->dev || (uint64_t)st->st_ino != loc->ino) {
        dsm__sys.close(fd); /* a reused pid or descriptor number: not our segment */
        return -ENOENT;
    }
    return fd;
}

static int memfd_attach(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    struct dsm__memfd_reg *reg = state(inst)->reg;
    char name[sizeof("memfd:") + DSM_IMPL_OBJECT_NAME_SIZE];
    struct dsm__memfd_loc loc;
    struct stat st = {0};
    uint32_t holder;
    void *addr;
    int fd = -ENOENT, rc;

    rc = dsm__memfd_reg_find(reg, handle, &loc);
    if (rc == 0) {
        for (int k = 0; k < loc.n; k++)
            if ((fd = reopen(&loc, k, &st)) >= 0)
                break;
        if (loc.n == 0)
            fd = -ENOENT;
    } else {
        fd = rc;
    }
    if (fd < 0) {
        memfd_name(inst, handle, name, sizeof(name));
        if (fd == -ENOENT && rc == 0 && dsm__memfd_reg_prune(reg, handle) == 0 && loc.n > 0)
            return dsm__error(-ENOENT, "could not open shared memory segment \"%s\": no "
                                       "process that holds it could be reached", name);
        errno = -fd;
        return dsm__error(fd, "could not open shared memory segment \"%s\": %m", name);
    }
    if (!dsm__impl_owned(&st) || (uint64_t)st.st_size != loc.size) {
        memfd_name(inst, handle, name, sizeof(name));
        rc = dsm__impl_check_owner(&st, "shared memory segment", name);
        if (rc == 0)
            rc = dsm__error(DSM_EFOREIGN,
                            "shared memory segment \"%s\" has %lld bytes, not the registered "
                            "%llu", name, (long long)st.st_size, (unsigned long long)loc.size);
        dsm__sys.close(fd);
        return rc;
    }
    rc = dsm__impl_map(fd, (size_t)loc.size, &addr);
    if (rc != 0) {
        memfd_name(inst, handle, name, sizeof(name));
        dsm__sys.close(fd);
        errno = rc;
        return dsm__error(-rc, "could not map shared memory segment \"%s\": %m", name);
    }
    rc = dsm__memfd_reg_add_holder(reg, handle, loc.ino, fd, DSM_MEMFD_MAPPED, &holder);
    if (rc < 0) {
        /* Destroyed while we opened it: attach comes after the destroy. */
        dsm__sys.munmap(addr, (size_t)loc.size);
        dsm__sys.close(fd);
        memfd_name(inst, handle, name, sizeof(name));
        if (rc == -ENOENT)
            return dsm__error(-ENOENT, "could not open shared memory segment \"%s\": %s", name,
                              strerror(ENOENT));
        return rc;
    }
    seg->handle = handle;
    seg->address = addr;
    seg->size = (size_t)loc.size;
    seg->os_id = (int64_t)loc.ino;
    seg->reserved[0] = fd;
    seg->reserved[1] = holder;
    return 0;
}

/* Unmap first: if that fails nothing has changed and the caller may retry. */
static int memfd_detach(dsm_impl_instance *inst, dsm_impl_segment *seg)
{
    int rc = dsm__impl_munmap(inst, seg);

    if (rc < 0)
        return rc;
    dsm__impl_forget(inst, seg);
    return 0;
}

/* Drop this process's descriptor of seg without touching any mapping. */
static void memfd_forget(dsm_impl_instance *inst, dsm_impl_segment *seg)
{
    int fd = (int)seg->reserved[0];

    if (fd < 0)
        return;
    /* Registered entries are checked to be ours: a fork child's copy names its parent's. */
    dsm__memfd_reg_drop_holder(state(inst)->reg, (uint32_t)seg->reserved[1], fd);
    dsm__sys.close(fd);
    seg->reserved[0] = -1;
}

/* Close and unregister this process's hold on handle, if it has one. */
static int drop_hold(struct memfd_state *st, dsm_handle handle)
{
    int found = -ENOENT;

    struct memfd_hold **pp, *h = NULL;

    pthread_mutex_lock(&st->mu);
    pp = hold_slot(st, handle);
    if (pp && *pp) {
        h = *pp;
        *pp = h->next;
        st->nholds--;
        found = 0;
    }
    pthread_mutex_unlock(&st->mu);
    if (h) {
        dsm__memfd_reg_drop_holder(st->reg, h->holder, h->fd);
        dsm__sys.close(h->fd);
        free(h);
    }
    return found;
}

static int memfd_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    char name[sizeof("memfd:") + DSM_IMPL_OBJECT_NAME_SIZE];
    int rc = dsm__memfd_reg_remove(state(inst)->reg, seg->handle, seg->os_id);

    if (rc == 0) {
        drop_hold(state(inst), seg->handle);
        return 0;
    }
    memfd_name(inst, seg->handle, name, sizeof(name));
    if (rc == -ESTALE)
        return dsm__error(DSM_EFOREIGN, "shared memory segment \"%s\" is registered with "
                                        "another inode than the recorded %lld",
                          name, (long long)seg->os_id);
    if (rc == -ENOENT) {
        errno = ENOENT;
        return dsm__error(-ENOENT, "could not remove shared memory segment \"%s\": %m", name);
    }
    return rc;
}

static int memfd_probe(const dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    int rc = dsm__memfd_reg_exists(state(inst)->reg, seg->handle, -1);

    if (rc == 1 && dsm__memfd_reg_exists(state(inst)->reg, seg->handle, seg->os_id) == 0) {
        char name[sizeof("memfd:") + DSM_IMPL_OBJECT_NAME_SIZE];

        memfd_name(inst, seg->handle, name, sizeof(name));
        return dsm__error(DSM_EFOREIGN, "shared memory segment \"%s\" is registered with "
                                        "another inode than the recorded %lld",
                          name, (long long)seg->os_id);
    }
    return rc;
}

static int memfd_export_fd(const dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    (void)inst;
    return seg->reserved[0] >= 0 ? (int)seg->reserved[0] : -EBADF;
}

static int memfd_hold(dsm_impl_instance *inst, dsm_handle handle, int fd)
{
    struct memfd_state *st = state(inst);
    char name[sizeof("memfd:") + DSM_IMPL_OBJECT_NAME_SIZE];
    struct memfd_hold *h, **pp;
    struct stat sb;
    uint32_t holder;
    int rc;

    memfd_name(inst, handle, name, sizeof(name));
    if (dsm__sys.fstat(fd, &sb) != 0)
        return dsm__error(-errno, "could not stat shared memory segment \"%s\": %m", name);
    if ((rc = dsm__impl_check_owner(&sb, "shared memory segment", name)) < 0)
        return rc;
    if ((h = malloc(sizeof(*h))) == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    pthread_mutex_lock(&st->mu);
    pp = hold_slot(st, handle);
    if (pp && *pp) {
        pthread_mutex_unlock(&st->mu);
        free(h);
        return dsm__error(-EALREADY, "shared memory segment \"%s\" is already held", name);
    }
    if (hold_room(st) < 0) {
        pthread_mutex_unlock(&st->mu);
        free(h);
        return dsm__error(-ENOMEM, "out of memory");
    }
    rc = dsm__memfd_reg_add_holder(st->reg, handle, (uint64_t)sb.st_ino, fd, DSM_MEMFD_HOLD,
                                   &holder);
    if (rc == 0) {
        *h = (struct memfd_hold){handle, fd, holder, NULL};
        pp = hold_slot(st, handle);
        *pp = h;
        st->nholds++;
        h = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    free(h);
    if (rc == -ENOENT)
        return dsm__error(-ENOENT, "shared memory segment \"%s\" is not registered with that "
                                   "descriptor's inode",
                          name);
    return rc;
}

static int memfd_unhold(dsm_impl_instance *inst, dsm_handle handle)
{
    return drop_hold(state(inst), handle);
}

/*
 * In a fork child: close the copies of the parent's holds (registering
 * nothing: the entries are the parent's), then every other descriptor of
 * this instance's segments still open.  Those are copies the child cannot
 * know about: another thread of the parent was between creating or opening
 * a segment and recording it when fork() ran.  Kept, they would hold the
 * segment's memory for the child's whole life.  The caller has already
 * released the descriptors it tracks (dsm__impl_forget).
 */
static void memfd_after_fork(dsm_impl_instance *inst)
{
    struct memfd_state *st = state(inst);
    char prefix[sizeof("/memfd:") + DSM_IMPL_OBJECT_NAME_SIZE], path[64], link[128];
    size_t plen;
    DIR *d;
    struct dirent *e;

    pthread_mutex_init(&st->mu, NULL); /* the parent's other threads are gone */
    drop_all_holds(st, false);
    plen = (size_t)snprintf(prefix, sizeof(prefix), "/memfd:" DSM_IMPL_NAME_PREFIX "%s.",
                            inst->idstr);
    if ((d = opendir("/proc/self/fd")) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        ssize_t n;

        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d))
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n > 0 && (size_t)n >= plen && memcmp(link, prefix, plen) == 0)
            dsm__sys.close(fd);
    }
    closedir(d);
}

const struct dsm__impl_ops dsm__impl_memfd_ops = {
    .open = memfd_open,
    .close = memfd_close,
    .create = memfd_create_op,
    .attach = memfd_attach,
    .detach = memfd_detach,
    .destroy = memfd_destroy,
    .name = memfd_name,
    .probe = memfd_probe,
    .export_fd = memfd_export_fd,
    .hold = memfd_hold,
    .unhold = memfd_unhold,
    .forget = memfd_forget,
    .after_fork = memfd_after_fork,
};
