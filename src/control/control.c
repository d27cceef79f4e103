/*
 * control.c - creating, attaching, validating, locking and repairing the
 * control segment (layout and invariants in control.h).
 *
 * Nothing read from a control segment is trusted before
 * dsm__control_validate() has checked it: the next supervisor reads the
 * previous one's table after a crash, and that table may be half written,
 * from another version, or not ours at all.
 */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../common/internal.h"
#include "../dsm_impl/dsm_impl_int.h"
#include "control.h"

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

size_t dsm__control_size(uint32_t nslots, uint32_t nprocs, uint32_t nrefs)
{
    if (nslots == 0 || nslots > DSM_CONTROL_MAX_SLOTS || nprocs == 0 ||
        nprocs > DSM_CONTROL_MAX_PROCS || nrefs == 0 || nrefs > DSM_CONTROL_MAX_REFS)
        return 0;
    return align64(sizeof(struct dsm_control_header)) +
           align64((size_t)nslots * sizeof(struct dsm_control_slot)) +
           align64((size_t)nprocs * sizeof(struct dsm_control_proc)) +
           align64((size_t)nrefs * sizeof(struct dsm_control_ref));
}

uint64_t dsm__control_checksum(const struct dsm_control_header *h)
{
    return dsm__fnv1a64(h, offsetof(struct dsm_control_header, checksum));
}

void dsm__control_bind(struct dsm_control *ctl, void *addr, size_t size)
{
    char *base = addr;
    struct dsm_control_header *h = addr;

    (void)size;
    ctl->hdr = h;
    ctl->slots = (void *)(base + align64(sizeof(*h)));
    ctl->procs = (void *)((char *)ctl->slots + align64((size_t)h->nslots * sizeof(*ctl->slots)));
    ctl->refs = (void *)((char *)ctl->procs + align64((size_t)h->nprocs * sizeof(*ctl->procs)));
}

int dsm__control_validate(const void *addr, size_t size, uint64_t instance_id,
                          dsm_handle handle)
{
    const struct dsm_control_header *h = addr;
    char hb[DSM_HANDLE_STRLEN];

    dsm_handle_format(handle, hb);
    if (addr == NULL || size < sizeof(*h))
        return dsm__error(DSM_ECORRUPT, "control segment %s is too small (%zu bytes)", hb, size);
    if (h->magic != DSM_CONTROL_MAGIC)
        return dsm__error(DSM_EFOREIGN, "control segment %s has a bad magic number: not a "
                                        "dynshm control segment", hb);
    if (h->version != DSM_CONTROL_VERSION)
        return dsm__error(DSM_ECORRUPT, "control segment %s has layout version %u; this library "
                                        "understands version %u", hb, (unsigned)h->version,
                          (unsigned)DSM_CONTROL_VERSION);
    if (h->checksum != dsm__control_checksum(h))
        return dsm__error(DSM_ECORRUPT, "control segment %s has a bad header checksum", hb);
    if (h->instance_id != instance_id)
        return dsm__error(DSM_EFOREIGN, "control segment %s belongs to instance %016llx, not "
                                        "to this one (%016llx)", hb,
                          (unsigned long long)h->instance_id, (unsigned long long)instance_id);
    if (h->control_handle != handle)
        return dsm__error(DSM_EFOREIGN, "control segment %s records handle %016llx", hb,
                          (unsigned long long)h->control_handle);
    if (!dsm_impl_type_name((dsm_impl_type)h->backend))
        return dsm__error(DSM_ECORRUPT, "control segment %s names unknown backend %u", hb,
                          (unsigned)h->backend);
    if (dsm__control_size(h->nslots, h->nprocs, h->nrefs) != h->total_size ||
        h->total_size > size)
        return dsm__error(DSM_ECORRUPT, "control segment %s: capacity (%u slots, %u processes, "
                                        "%u references) does not fit its size %zu", hb,
                          (unsigned)h->nslots, (unsigned)h->nprocs, (unsigned)h->nrefs, size);
    return 0;
}

static void init_tables(struct dsm_control *ctl)
{
    struct dsm_control_header *h = ctl->hdr;

    /* A fresh segment is zero-filled: set only what is not zero. */
    for (uint32_t i = 0; i < h->nslots; i++) {
        ctl->slots[i].next_free = i + 1 < h->nslots ? i + 1 : DSM_CONTROL_NONE;
        ctl->slots[i].os_id = -1;
    }
    for (uint32_t i = 0; i < h->nprocs; i++) {
        ctl->procs[i].next_free = i + 1 < h->nprocs ? i + 1 : DSM_CONTROL_NONE;
        ctl->procs[i].ref_head = DSM_CONTROL_NONE;
    }
    for (uint32_t i = 0; i < h->nrefs; i++) {
        ctl->refs[i].slot = DSM_CONTROL_NONE;
        ctl->refs[i].next = i + 1 < h->nrefs ? i + 1 : DSM_CONTROL_NONE;
        ctl->refs[i].prev = DSM_CONTROL_NONE;
    }
    h->slot_free = 0;
    h->proc_free = 0;
    h->ref_free = 0;
}

static int init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc;

    if ((rc = pthread_mutexattr_init(&a)) != 0)
        return rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

int dsm__control_create(dsm_impl_instance *inst, uint32_t nslots, uint32_t nprocs,
                        uint32_t nrefs, struct dsm_control *ctl)
{
    size_t size = dsm__control_size(nslots, nprocs, nrefs);
    struct dsm_control_header *h;
    struct timeval tv;
    dsm_handle handle;
    int rc;

    memset(ctl, 0, sizeof(*ctl));
    if (size == 0)
        return dsm__error(-EINVAL, "invalid control segment capacity: %u slots, %u processes, "
                                   "%u references", (unsigned)nslots, (unsigned)nprocs,
                          (unsigned)nrefs);
    /* 64 random bits per try: more than a few collisions means a squatter. */
    for (int tries = 0;; tries++) {
        if ((rc = dsm__random_bytes(&handle, sizeof(handle))) < 0)
            return rc;
        rc = handle ? dsm_impl_create(inst, handle, size, &ctl->map) : -EEXIST;
        if (rc != -EEXIST)
            break;
        if (tries == 64)
            return dsm__error(-EEXIST, "could not find a free name for the control segment "
                                       "after %d tries", tries);
    }
    if (rc < 0)
        return rc;

    h = ctl->map.address;
    h->magic = DSM_CONTROL_MAGIC;
    h->version = DSM_CONTROL_VERSION;
    h->backend = (uint32_t)dsm_impl_instance_type(inst);
    sscanf(dsm_impl_instance_id(inst), "%16llx", (unsigned long long *)&h->instance_id);
    h->control_handle = handle;
    h->total_size = size;
    gettimeofday(&tv, NULL);
    h->created_usec = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
    h->nslots = nslots;
    h->nprocs = nprocs;
    h->nrefs = nrefs;
    h->supervisor_pid = (int32_t)getpid();
    h->checksum = dsm__control_checksum(h);
    dsm__control_bind(ctl, h, size);
    init_tables(ctl);
    rc = init_lock(&h->lock);
    if (rc != 0) {
        dsm_impl_detach(inst, &ctl->map);
        dsm_impl_destroy(inst, &ctl->map);
        return dsm__error(-rc, "could not initialise the control segment lock: %m");
    }
    return 0;
}

int dsm__control_attach(dsm_impl_instance *inst, dsm_handle handle, struct dsm_control *ctl)
{
    uint64_t id = 0;
    int rc;

    memset(ctl, 0, sizeof(*ctl));
    rc = dsm_impl_attach(inst, handle, &ctl->map);
    if (rc < 0)
        return rc;
    sscanf(dsm_impl_instance_id(inst), "%16llx", (unsigned long long *)&id);
    rc = dsm__control_validate(ctl->map.address, ctl->map.size, id, handle);
    if (rc < 0) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%s", dsm_errmsg());
        dsm_impl_detach(inst, &ctl->map);
        return dsm__error(rc, "%s", msg);
    }
    dsm__control_bind(ctl, ctl->map.address, ctl->map.size);
    return 0;
}

void dsm__control_detach(dsm_impl_instance *inst, struct dsm_control *ctl)
{
    if (ctl->map.address)
        dsm_impl_detach(inst, &ctl->map);
    ctl->hdr = NULL;
    ctl->slots = NULL;
    ctl->procs = NULL;
    ctl->refs = NULL;
}

/*
 * How long a waiter sleeps before it looks at the lock again.  A process
 * SIGKILLed between releasing the lock word and waking a waiter leaves the
 * waiter asleep on an unlocked mutex (seen here; kernels handle that window
 * only for some unlock paths).  Bounded waits turn such a lost wake-up into
 * a delay of one slice instead of a hang; uncontended locking never waits.
 */
#define DSM_LOCK_SLICE_NS (20 * 1000 * 1000)

static int lock_sliced(pthread_mutex_t *m)
{
    for (;;) {
        struct timespec t;
        int rc;

        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += DSM_LOCK_SLICE_NS;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        rc = pthread_mutex_timedlock(m, &t);
        if (rc != ETIMEDOUT)
            return rc;
    }
}

/*
 * A repair found while locking is reported after unlocking: the log hook is
 * application code and may call dynshm, which would deadlock on our lock.
 */
static _Thread_local uint64_t pending_repair_report = UINT64_MAX;

int dsm__control_lock(struct dsm_control *ctl)
{
    int rc = pthread_mutex_trylock(&ctl->hdr->lock);

    if (rc == EBUSY)
        rc = lock_sliced(&ctl->hdr->lock);

    if (rc == EOWNERDEAD) {
        uint64_t fixes = dsm__control_repair(ctl);

        ctl->hdr->repairs++;
        pthread_mutex_consistent(&ctl->hdr->lock);
        pending_repair_report = fixes;
        return 0;
    }
    if (rc == ENOTRECOVERABLE)
        return dsm__error(DSM_ECORRUPT, "the dynamic shared memory control lock is not "
                                        "recoverable; a crash reset is needed");
    if (rc != 0)
        return dsm__error(-rc, "could not lock the dynamic shared memory control segment: %m");
    return 0;
}

void dsm__control_unlock(struct dsm_control *ctl)
{
    uint64_t fixes = pending_repair_report;

    pthread_mutex_unlock(&ctl->hdr->lock);
    if (fixes != UINT64_MAX) {
        pending_repair_report = UINT64_MAX;
        dsm__log(DSM_LOG_WARNING,
                 "recovered the dynamic shared memory control lock from a process that died "
                 "holding it; table checked, %llu repair(s)", (unsigned long long)fixes);
    }
}

/* Rebuild the free lists, per-process lists and counts from slot states and refs. */
uint64_t dsm__control_repair(struct dsm_control *ctl)
{
    struct dsm_control_header *h = ctl->hdr;
    uint32_t *counts;
    uint64_t fixes = 0;

    h->slot_free = h->proc_free = h->ref_free = DSM_CONTROL_NONE;
    h->slots_used = h->procs_used = h->refs_used = 0;

    for (uint32_t i = h->nprocs; i-- > 0;) {
        struct dsm_control_proc *p = &ctl->procs[i];

        if (p->state != DSM_PROC_ACTIVE) {
            fixes += p->state != DSM_PROC_FREE;
            p->state = DSM_PROC_FREE;
            p->next_free = h->proc_free;
            h->proc_free = i;
        } else {
            h->procs_used++;
        }
        p->ref_head = DSM_CONTROL_NONE;
        p->nrefs = 0;
    }
    for (uint32_t i = h->nslots; i-- > 0;) {
        struct dsm_control_slot *s = &ctl->slots[i];

        if (s->state > DSM_SLOT_DYING || (s->state != DSM_SLOT_FREE &&
                                          (uint32_t)s->handle != i)) {
            s->state = DSM_SLOT_FREE; /* garbage: nothing can be proven about it */
            fixes++;
        }
        if (s->state == DSM_SLOT_FREE) {
            s->next_free = h->slot_free;
            h->slot_free = i;
        } else {
            h->slots_used++;
        }
    }
    /* Refs are the primary record of who holds what: relink and recount. */
    counts = calloc(h->nslots, sizeof(*counts));
    for (uint32_t i = h->nrefs; i-- > 0;) {
        struct dsm_control_ref *r = &ctl->refs[i];

        if (r->slot != DSM_CONTROL_NONE &&
            (r->slot >= h->nslots || r->proc >= h->nprocs ||
             ctl->procs[r->proc].state != DSM_PROC_ACTIVE ||
             ctl->slots[r->slot].state == DSM_SLOT_FREE)) {
            r->slot = DSM_CONTROL_NONE;
            fixes++;
        }
        if (r->slot == DSM_CONTROL_NONE) {
            r->next = h->ref_free;
            r->prev = DSM_CONTROL_NONE;
            h->ref_free = i;
            continue;
        }
        dsm__control_link_ref(ctl, i, r->proc);
        if (counts)
            counts[r->slot]++;
    }
    for (uint32_t i = 0; counts && i < h->nslots; i++) {
        struct dsm_control_slot *s = &ctl->slots[i];
        uint32_t want = s->state == DSM_SLOT_LIVE ? counts[i] + (s->pinned ? 1 : 0) : 0;

        if (s->state != DSM_SLOT_LIVE)
            s->pinned = s->pinned && s->state != DSM_SLOT_FREE;
        if (s->refcnt != want) {
            s->refcnt = want;
            fixes++;
        }
    }
    free(counts);
    return fixes;
}

void dsm__control_slot_segment(const struct dsm_control *ctl, uint32_t slot,
                               dsm_impl_segment *seg)
{
    const struct dsm_control_slot *s = &ctl->slots[slot];

    memset(seg, 0, sizeof(*seg));
    seg->handle = s->handle;
    /* A CREATING slot's size is not recorded yet: skip the size check then. */
    seg->size = s->state == DSM_SLOT_CREATING ? 0 : s->size;
    seg->os_id = s->state == DSM_SLOT_CREATING ? -1 : s->os_id;
}

int dsm__control_destroy_all(dsm_impl_instance *inst, struct dsm_control *ctl)
{
    struct dsm_control_header *h = ctl->hdr;
    dsm_impl_segment *victims;
    uint32_t n = 0, live = 0;
    int destroyed = 0;

    /*
     * Take the list under the lock (repairing it if a holder died), mark it
     * all free, and do the slow part -- system calls and log messages --
     * after unlocking.  Only cleanup paths call this, when no worker runs.
     */
    if (dsm__control_lock(ctl) < 0)
        dsm__log(DSM_LOG_WARNING, "%s; reading the table without it", dsm_errmsg());
    /* Count rather than trust slots_used: this table may come from a crash. */
    for (uint32_t i = 0; i < h->nslots; i++)
        live += ctl->slots[i].state != DSM_SLOT_FREE;
    victims = calloc(live ? live : 1, sizeof(*victims));
    for (uint32_t i = 0; i < h->nslots; i++) {
        struct dsm_control_slot *s = &ctl->slots[i];

        if (s->state == DSM_SLOT_FREE || s->state > DSM_SLOT_DYING)
            continue;
        if ((uint32_t)s->handle != i) /* a handle always encodes its slot */
            continue; /* nothing is destroyed on the word of an inconsistent entry */
        if (victims)
            dsm__control_slot_segment(ctl, i, &victims[n++]);
        s->state = DSM_SLOT_FREE;
        s->refcnt = 0;
        s->pinned = 0;
    }
    dsm__control_repair(ctl); /* the lists now match an empty table */
    dsm__control_unlock(ctl);

    for (uint32_t i = 0; i < n; i++) {
        char name[DSM_IMPL_NAME_MAX];
        int rc;

        dsm_impl_segment_name(inst, victims[i].handle, name, sizeof(name));
        rc = dsm_impl_destroy(inst, &victims[i]);
        if (rc == 0) {
            destroyed++;
            dsm__log(DSM_LOG_INFO, "removed shared memory segment \"%s\"", name);
        } else if (rc != -ENOENT) {
            dsm__log(DSM_LOG_WARNING, "left shared memory segment \"%s\" in place: %s", name,
                     dsm_errmsg());
        }
    }
    if (victims == NULL && live > 0)
        dsm__log(DSM_LOG_WARNING, "out of memory: the segments of this table were not removed");
    free(victims);
    return destroyed;
}
