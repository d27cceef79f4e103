/* SPDX-License-Identifier: MIT */
/*
 * memfd_registry.c - the memfd backend's table of who holds each segment.
 *
 * Why a table at all: a memfd segment is an anonymous file.  That is its
 * whole point (nothing to leak, nothing to sweep), and also why a handle
 * alone cannot find it: some process must say "I have it open as
 * descriptor n".  This table, one per data directory, says so for every
 * live segment: its identity (device, inode, size) and every process that
 * holds a descriptor to it (pid + start time, descriptor number).  Every
 * process that maps a segment holds its descriptor while it maps it, so a
 * segment stays attachable as long as anybody uses it, whoever created it
 * and whoever died.
 *
 * Why it is safe to trust so little: the table only says where to look.
 * The attacher reopens /proc/<pid>/fd/<n> and proves what it got (inode,
 * device, owner, mode, size) before mapping it, so a stale entry, a reused
 * pid or descriptor number, or a scribbled table can only make attach fail,
 * never map the wrong memory.
 *
 * Why a file in the data directory and not shared memory: exec'd workers
 * must find it from the data directory alone.  It holds no segment memory:
 * it is a fixed-size index (mostly sparse) that the first process to open
 * it after everyone left (a kill -9 of the whole instance included) simply
 * empties -- an open-file-description lock tells "alone" from "shared"
 * (an exclusive lock succeeds only when no other process has it open, and
 * then converts atomically to the shared lock every user keeps).
 *
 * Layout: header | records[BUCKETS * WAYS] | holders[HOLDERS]
 *   record  handle (0: free), size, dev, ino, head of its holder chain.
 *           A handle lives in bucket mix64(handle) % BUCKETS, in any of
 *           WAYS places: lookups touch one bucket, and a full bucket is
 *           reported as a name collision (the caller picks another handle,
 *           exactly as for an existing /dev/shm name).
 *   holder  pid + start time, descriptor, record index, handle, kind; free
 *           entries form a stack, and entries above `hwm` were never used
 *           (so a fresh table touches no holder page).
 *
 * One process-shared robust mutex guards everything; operations hold it
 * for a few stores and no system call.  A holder that dies with it held is
 * repaired by the next locker (repair(): chains and the free stack are
 * rebuilt from each holder's kind, record and handle).  Waiters sleep in
 * slices (src/common/robust_mutex.c): with an unbounded wait, a holder
 * killed while unlocking hung a waiter for good about once in a few
 * thousand kills.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/procid.h"
#include "../common/robust_mutex.h"
#include "dsm_impl_int.h"
#include "memfd_registry.h"

#define REG_MAGIC UINT64_C(0x474552444d464d44) /* "DMFMDREG" little-endian */
#define REG_VERSION 1
#define REG_BUCKETS 8192u
#define REG_WAYS 8u
#define REG_RECORDS ((size_t)REG_BUCKETS * REG_WAYS) /* 65536 live segments per data directory */
#define REG_HOLDERS (1u << 18)                /* 262144 descriptors held, all processes */
#define REG_NONE UINT32_MAX
#define REG_HEADER_SPACE 4096u

/* Stores repair reads after a crash, in the order it relies on (as in control.h). */
#define REG_STORE_LAST(lv, v) __atomic_store_n(&(lv), (v), __ATOMIC_RELEASE)
#define REG_STORE_FIRST(lv, v)                                                                \
    do {                                                                                      \
        __atomic_store_n(&(lv), (v), __ATOMIC_RELAXED);                                      \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                                              \
    } while (0)

struct reg_record { /* 48 bytes */
    uint64_t handle;    /* 0: free; written last on insert, first on removal */
    uint64_t size;
    uint64_t dev;
    uint64_t ino;
    uint32_t head;      /* first holder, REG_NONE if none */
    uint32_t flags;
    uint64_t reserved;
};

struct reg_holder { /* 48 bytes */
    struct dsm__procid id;
    uint64_t handle;    /* of the record it belongs to: repair checks it */
    int32_t fd;
    uint32_t rec;       /* record index, REG_NONE for an orphan */
    uint32_t next;      /* in the record's chain, or in the free stack */
    uint32_t kind;      /* enum dsm__memfd_kind: written last when taken, first when freed */
    uint64_t reserved;
};

struct reg_header {
    uint64_t magic;
    uint32_t version, buckets, ways, holders;
    /* under lock */
    uint32_t hwm;       /* holder entries [0, hwm) have been used */
    uint32_t free_head; /* stack of free entries below hwm */
    uint64_t repairs;
    pthread_mutex_t lock;
} __attribute__((aligned(64)));

#define REG_SIZE                                                                              \
    ((size_t)REG_HEADER_SPACE + (size_t)REG_RECORDS * sizeof(struct reg_record) +             \
     (size_t)REG_HOLDERS * sizeof(struct reg_holder))

struct dsm__memfd_reg {
    int fd;
    size_t size;
    struct reg_header *hdr;
    struct reg_record *recs;
    struct reg_holder *hold;
};

_Static_assert(sizeof(struct reg_header) <= REG_HEADER_SPACE, "header fits its page");
_Static_assert(sizeof(struct reg_record) == 48, "record layout");
_Static_assert(sizeof(struct reg_holder) == 48, "holder layout");

/* ---- opening ------------------------------------------------------------------ */

/* An open-file-description lock on the whole file: F_WRLCK or F_RDLCK. */
static int ofd_lock(int fd, short type, int wait)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int rc;

    do
        rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
    while (rc != 0 && errno == EINTR && wait);
    return rc;
}

static int init_table(struct dsm__memfd_reg *r)
{
    int rc;

    memset(r->hdr, 0, sizeof(*r->hdr));
    r->hdr->version = REG_VERSION;
    r->hdr->buckets = REG_BUCKETS;
    r->hdr->ways = REG_WAYS;
    r->hdr->holders = REG_HOLDERS;
    r->hdr->free_head = REG_NONE;
    rc = dsm__robust_mutex_init(&r->hdr->lock);
    if (rc == 0)
        __atomic_store_n(&r->hdr->magic, REG_MAGIC, __ATOMIC_RELEASE);
    return rc;
}

int dsm__memfd_reg_open(const char *datadir, struct dsm__memfd_reg **out)
{
    struct dsm__memfd_reg *r;
    char path[4200];
    struct stat st;
    void *base;
    int fd, rc, alone;

    snprintf(path, sizeof(path), "%s/%s", datadir, DSM_MEMFD_REGISTRY);
    fd = dsm__sys.openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return dsm__error(-errno, "could not open the memfd registry \"%s\": %m", path);
    if (dsm__sys.fstat(fd, &st) != 0) {
        rc = dsm__error(-errno, "could not stat the memfd registry \"%s\": %m", path);
        goto fail_close;
    }
    if ((rc = dsm__impl_check_owner(&st, "memfd registry", path)) < 0)
        goto fail_close;
    /* Nobody else has it open: what it holds describes processes that are gone. */
    alone = ofd_lock(fd, F_WRLCK, 0) == 0;
    if (alone) {
        if (dsm__sys.ftruncate(fd, 0) != 0 || dsm__sys.ftruncate(fd, (off_t)REG_SIZE) != 0) {
            rc = dsm__error(-errno, "could not size the memfd registry \"%s\": %m", path);
            goto fail_close;
        }
    } else {
        if (ofd_lock(fd, F_RDLCK, 1) != 0) {
            rc = dsm__error(-errno, "could not lock the memfd registry \"%s\": %m", path);
            goto fail_close;
        }
        if (dsm__sys.fstat(fd, &st) != 0 || (size_t)st.st_size != REG_SIZE) {
            rc = dsm__error(DSM_ECORRUPT, "the memfd registry \"%s\" has %lld bytes, not %zu",
                            path, (long long)st.st_size, REG_SIZE);
            goto fail_close;
        }
    }
    base = dsm__sys.mmap(NULL, REG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = dsm__error(-errno, "could not map the memfd registry \"%s\": %m", path);
        goto fail_close;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = dsm__error(-ENOMEM, "out of memory");
        goto fail_unmap;
    }
    r->fd = fd;
    r->size = REG_SIZE;
    r->hdr = base;
    r->recs = (struct reg_record *)((char *)base + REG_HEADER_SPACE);
    r->hold = (struct reg_holder *)(r->recs + REG_RECORDS);
    if (alone) {
        if ((rc = init_table(r)) != 0) {
            rc = dsm__error(-rc, "could not initialise the memfd registry \"%s\": %s", path,
                            strerror(rc));
            goto fail_free;
        }
        /* Atomic conversion: nobody can find it unlocked and empty it again. */
        if (ofd_lock(fd, F_RDLCK, 1) != 0) {
            rc = dsm__error(-errno, "could not lock the memfd registry \"%s\": %m", path);
            goto fail_free;
        }
    } else if (__atomic_load_n(&r->hdr->magic, __ATOMIC_ACQUIRE) != REG_MAGIC ||
               r->hdr->version != REG_VERSION || r->hdr->buckets != REG_BUCKETS ||
               r->hdr->ways != REG_WAYS || r->hdr->holders != REG_HOLDERS) {
        rc = dsm__error(DSM_ECORRUPT, "\"%s\" is not a memfd registry of this version", path);
        goto fail_free;
    }
    *out = r;
    return 0;

fail_free:
    free(r);
fail_unmap:
    dsm__sys.munmap(base, REG_SIZE);
fail_close:
    dsm__sys.close(fd);
    return rc;
}

void dsm__memfd_reg_close(struct dsm__memfd_reg *r)
{
    if (r == NULL)
        return;
    dsm__sys.munmap(r->hdr, r->size);
    dsm__sys.close(r->fd); /* releases this description's lock with its last descriptor */
    free(r);
}

/* ---- locking and repair ------------------------------------------------------- */

static bool holder_is_mine(const struct reg_holder *h)
{
    struct dsm__procid me;

    dsm__procid_self(&me);
    return dsm__procid_same(&h->id, &me);
}

/*
 * Rebuild every chain and the free stack from the holders' own facts.
 * A holder is kept on its record's chain if the record is live with the
 * same handle; one whose record is gone becomes an orphan (its process
 * frees it at detach) unless that process is gone too.
 */
static void repair(struct dsm__memfd_reg *r)
{
    struct reg_header *h = r->hdr;

    if (h->hwm > REG_HOLDERS)
        h->hwm = REG_HOLDERS;
    for (uint32_t i = 0; i < REG_RECORDS; i++)
        r->recs[i].head = REG_NONE;
    h->free_head = REG_NONE;
    for (uint32_t i = h->hwm; i-- > 0;) {
        struct reg_holder *e = &r->hold[i];
        bool live_rec = e->rec < REG_RECORDS && r->recs[e->rec].handle != 0 &&
                        r->recs[e->rec].handle == e->handle;

        if (e->kind != DSM_MEMFD_FREE && !live_rec) {
            e->rec = REG_NONE;
            e->kind = dsm__procid_alive(&e->id) ? DSM_MEMFD_ORPHAN : DSM_MEMFD_FREE;
        }
        if (e->kind == DSM_MEMFD_FREE || e->kind > DSM_MEMFD_ORPHAN) {
            e->kind = DSM_MEMFD_FREE;
            e->next = h->free_head;
            h->free_head = i;
        } else if (e->kind != DSM_MEMFD_ORPHAN) {
            e->next = r->recs[e->rec].head;
            r->recs[e->rec].head = i;
        }
    }
    h->repairs++;
}

static int reg_lock(struct dsm__memfd_reg *r)
{
    /* Never an unbounded sleep: a holder killed while unlocking can lose our wake-up. */
    int rc = dsm__robust_mutex_lock(&r->hdr->lock, -1);

    if (rc == EOWNERDEAD) {
        repair(r);
        pthread_mutex_consistent(&r->hdr->lock);
        rc = 0;
    }
    if (rc != 0)
        return dsm__error(-rc, "could not lock the memfd registry: %s", strerror(rc));
    return 0;
}

static void reg_unlock(struct dsm__memfd_reg *r)
{
    pthread_mutex_unlock(&r->hdr->lock);
}

/* ---- records and holders (lock held) ------------------------------------------- */

static uint32_t bucket_of(dsm_handle handle)
{
    return (uint32_t)(dsm__mix64(handle) & (REG_BUCKETS - 1)) * REG_WAYS;
}

/* The record of handle, or REG_NONE. */
static uint32_t find_rec(struct dsm__memfd_reg *r, dsm_handle handle)
{
    uint32_t b = bucket_of(handle);

    for (uint32_t w = 0; w < REG_WAYS; w++)
        if (r->recs[b + w].handle == handle)
            return b + w;
    return REG_NONE;
}

static uint32_t holder_alloc(struct dsm__memfd_reg *r)
{
    struct reg_header *h = r->hdr;
    uint32_t i = h->free_head;

    if (i < h->hwm && i < REG_HOLDERS) {
        h->free_head = r->hold[i].next;
        return i;
    }
    if (i != REG_NONE) /* a scribbled stack: rebuild it */
        repair(r);
    if (h->hwm < REG_HOLDERS)
        return h->hwm++;
    return REG_NONE;
}

static void holder_free(struct dsm__memfd_reg *r, uint32_t i)
{
    REG_STORE_FIRST(r->hold[i].kind, (uint32_t)DSM_MEMFD_FREE);
    r->hold[i].rec = REG_NONE;
    r->hold[i].next = r->hdr->free_head;
    r->hdr->free_head = i;
}

/* Take entry i for this process on record rec. */
static void holder_fill(struct dsm__memfd_reg *r, uint32_t i, uint32_t rec, int fd, int kind)
{
    struct reg_holder *e = &r->hold[i];

    dsm__procid_self(&e->id);
    e->handle = r->recs[rec].handle;
    e->fd = fd;
    e->rec = rec;
    e->next = r->recs[rec].head;
    REG_STORE_LAST(e->kind, (uint32_t)kind);
    r->recs[rec].head = i;
}

/* Remove entry i from its record's chain (bounded: a cycle cannot trap us). */
static void chain_unlink(struct dsm__memfd_reg *r, uint32_t rec, uint32_t i)
{
    uint32_t *pp = &r->recs[rec].head;

    for (uint32_t n = 0; *pp != REG_NONE && *pp < REG_HOLDERS && n <= REG_HOLDERS; n++) {
        if (*pp == i) {
            *pp = r->hold[i].next;
            return;
        }
        pp = &r->hold[*pp].next;
    }
}

static void remove_rec(struct dsm__memfd_reg *r, uint32_t rec)
{
    uint32_t i = r->recs[rec].head;

    REG_STORE_FIRST(r->recs[rec].handle, (uint64_t)0);
    for (uint32_t n = 0; i < REG_HOLDERS && n < REG_HOLDERS; n++) {
        uint32_t next = r->hold[i].next;

        /* The holder's process still has the descriptor: it frees the entry. */
        r->hold[i].rec = REG_NONE;
        r->hold[i].kind = DSM_MEMFD_ORPHAN;
        i = next;
    }
    r->recs[rec].head = REG_NONE;
}

/* ---- the operations ---------------------------------------------------------------- */

int dsm__memfd_reg_insert(struct dsm__memfd_reg *r, dsm_handle handle, uint64_t dev,
                          uint64_t ino, uint64_t size, uint32_t flags, int fd,
                          uint32_t *holder)
{
    uint32_t b = bucket_of(handle), rec = REG_NONE, h;
    int rc;

    if ((rc = reg_lock(r)) < 0)
        return rc;
    for (uint32_t w = 0; w < REG_WAYS; w++) {
        uint64_t x = r->recs[b + w].handle;

        if (x == handle) {
            rec = REG_NONE;
            break;
        }
        if (x == 0 && rec == REG_NONE)
            rec = b + w;
    }
    if (rec == REG_NONE) {
        reg_unlock(r);
        return dsm__error_silent(-EEXIST);
    }
    if ((h = holder_alloc(r)) == REG_NONE) {
        reg_unlock(r);
        return dsm__error(-ENOSPC, "the memfd registry is full (%u descriptors held)",
                          REG_HOLDERS);
    }
    r->recs[rec].size = size;
    r->recs[rec].dev = dev;
    r->recs[rec].ino = ino;
    r->recs[rec].flags = flags;
    r->recs[rec].head = REG_NONE;
    r->recs[rec].handle = handle; /* holders compare it: set before filling one */
    holder_fill(r, h, rec, fd, DSM_MEMFD_MAPPED);
    reg_unlock(r);
    *holder = h;
    return 0;
}

int dsm__memfd_reg_find(struct dsm__memfd_reg *r, dsm_handle handle,
                        struct dsm__memfd_loc *loc)
{
    uint32_t rec, i;
    int rc;

    if ((rc = reg_lock(r)) < 0)
        return rc;
    rec = find_rec(r, handle);
    if (rec == REG_NONE) {
        reg_unlock(r);
        return -ENOENT;
    }
    loc->dev = r->recs[rec].dev;
    loc->ino = r->recs[rec].ino;
    loc->size = r->recs[rec].size;
    loc->flags = r->recs[rec].flags;
    loc->n = 0;
    i = r->recs[rec].head;
    for (uint32_t n = 0; i < REG_HOLDERS && n < REG_HOLDERS && loc->n < DSM_MEMFD_MAX_TRY;
         n++, i = r->hold[i].next) {
        loc->h[loc->n].pid = r->hold[i].id.pid;
        loc->h[loc->n].fd = r->hold[i].fd;
        loc->n++;
    }
    reg_unlock(r);
    return 0;
}

int dsm__memfd_reg_add_holder(struct dsm__memfd_reg *r, dsm_handle handle, uint64_t ino,
                              int fd, int kind, uint32_t *holder)
{
    uint32_t rec, h;
    int rc;

    if ((rc = reg_lock(r)) < 0)
        return rc;
    rec = find_rec(r, handle);
    if (rec == REG_NONE || r->recs[rec].ino != ino) {
        reg_unlock(r);
        return -ENOENT;
    }
    if ((h = holder_alloc(r)) == REG_NONE) {
        reg_unlock(r);
        return dsm__error(-ENOSPC, "the memfd registry is full (%u descriptors held)",
                          REG_HOLDERS);
    }
    holder_fill(r, h, rec, fd, kind);
    reg_unlock(r);
    *holder = h;
    return 0;
}

void dsm__memfd_reg_drop_holder(struct dsm__memfd_reg *r, uint32_t holder, int fd)
{
    struct reg_holder *e;

    if (holder >= REG_HOLDERS || reg_lock(r) < 0)
        return;
    e = &r->hold[holder];
    /* Only our own entry: a fork child's copy of a segment names its parent's. */
    if (holder < r->hdr->hwm && e->kind != DSM_MEMFD_FREE && e->fd == fd && holder_is_mine(e)) {
        if (e->kind != DSM_MEMFD_ORPHAN && e->rec < REG_RECORDS)
            chain_unlink(r, e->rec, holder);
        holder_free(r, holder);
    }
    reg_unlock(r);
}

int dsm__memfd_reg_remove(struct dsm__memfd_reg *r, dsm_handle handle, int64_t ino)
{
    uint32_t rec;
    int rc;

    if ((rc = reg_lock(r)) < 0)
        return rc;
    rec = find_rec(r, handle);
    if (rec == REG_NONE)
        rc = -ENOENT;
    else if (ino >= 0 && r->recs[rec].ino != (uint64_t)ino)
        rc = -ESTALE;
    else
        remove_rec(r, rec);
    reg_unlock(r);
    return rc;
}

int dsm__memfd_reg_exists(struct dsm__memfd_reg *r, dsm_handle handle, int64_t ino)
{
    uint32_t rec;
    int rc;

    if ((rc = reg_lock(r)) < 0)
        return rc;
    rec = find_rec(r, handle);
    rc = rec != REG_NONE && (ino < 0 || r->recs[rec].ino == (uint64_t)ino);
    reg_unlock(r);
    return rc;
}

int dsm__memfd_reg_prune(struct dsm__memfd_reg *r, dsm_handle handle)
{
    struct dsm__procid dead[DSM_MEMFD_MAX_TRY];
    uint32_t rec, i;
    int ndead = 0, removed = 0, n = 0;

    /* Copy under the lock, ask /proc outside it, act by identity under it again. */
    if (reg_lock(r) < 0)
        return 0;
    rec = find_rec(r, handle);
    for (i = rec == REG_NONE ? REG_NONE : r->recs[rec].head;
         i < REG_HOLDERS && n < DSM_MEMFD_MAX_TRY; i = r->hold[i].next)
        dead[n++] = r->hold[i].id;
    reg_unlock(r);
    for (int k = 0; k < n; k++)
        if (!dsm__procid_alive(&dead[k]))
            dead[ndead++] = dead[k];
    if (reg_lock(r) < 0)
        return 0;
    rec = find_rec(r, handle);
    if (rec != REG_NONE) {
        uint32_t *pp = &r->recs[rec].head;

        for (uint32_t guard = 0; *pp < REG_HOLDERS && guard < REG_HOLDERS; guard++) {
            uint32_t cur = *pp;
            bool gone = false;

            for (int k = 0; k < ndead && !gone; k++)
                gone = dsm__procid_same(&r->hold[cur].id, &dead[k]);
            if (gone) {
                *pp = r->hold[cur].next;
                holder_free(r, cur);
            } else {
                pp = &r->hold[cur].next;
            }
        }
        if (r->recs[rec].head == REG_NONE) {
            remove_rec(r, rec);
            removed = 1;
        }
    }
    reg_unlock(r);
    return removed;
}
