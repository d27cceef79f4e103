/* SPDX-License-Identifier: MIT */
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
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../common/futex.h"
#include "../common/internal.h"
#include "../common/robust_mutex.h"
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

/* The checksum the header will have once `magic` is stored (it is stored last). */
static uint64_t dsm__control_checksum_with(const struct dsm_control_header *h, uint64_t magic)
{
    struct dsm_control_header copy;

    memcpy(&copy, h, offsetof(struct dsm_control_header, checksum));
    copy.magic = magic;
    return dsm__control_checksum(&copy);
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
    if (memchr(h->datadir, '\0', sizeof(h->datadir)) == NULL)
        return dsm__error(DSM_ECORRUPT, "control segment %s: its data directory is not a "
                                        "terminated string", hb);
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

/*
 * The data directory as an absolute path, so a scan of the host can name
 * the instance whatever directory its supervisor was started from.  A path
 * that does not fit is left out rather than cut (a cut path names another
 * directory).
 */
static void record_datadir(struct dsm_control_header *h, const char *datadir)
{
    char *abs = datadir ? realpath(datadir, NULL) : NULL;
    const char *p = abs ? abs : datadir;

    memset(h->datadir, 0, sizeof(h->datadir));
    if (p != NULL && p[0] == '/' && strlen(p) < sizeof(h->datadir))
        memcpy(h->datadir, p, strlen(p));
    free(abs);
}

int dsm__control_create(dsm_impl_instance *inst, dsm_handle handle, uint32_t nslots,
                        uint32_t nprocs, uint32_t nrefs, struct dsm_control *ctl)
{
    size_t size = dsm__control_size(nslots, nprocs, nrefs);
    struct dsm_control_header *h;
    struct timeval tv;
    int rc;

    memset(ctl, 0, sizeof(*ctl));
    if (size == 0)
        return dsm__error(-EINVAL, "invalid control segment capacity: %u slots, %u processes, "
                                   "%u references", (unsigned)nslots, (unsigned)nprocs,
                          (unsigned)nrefs);
    rc = dsm_impl_create(inst, handle, size, &ctl->map);
    if (rc < 0)
        return rc; /* -EEXIST silently: the caller records another handle and retries */

    h = ctl->map.address;
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
    record_datadir(h, inst->datadir);
    h->counters.since_usec = h->created_usec;
    dsm__control_bind(ctl, h, size);
    init_tables(ctl);
    rc = dsm__robust_mutex_init(&h->lock);
    if (rc != 0) {
        dsm_impl_detach(inst, &ctl->map);
        dsm_impl_destroy(inst, &ctl->map);
        return dsm__error(-rc, "could not initialise the control segment lock: %m");
    }
    /*
     * The magic last: a segment killed before this point is all zeros where
     * the magic goes, which start-up cleanup recognises as "created under
     * the state file's record but never initialised" and removes.
     */
    h->checksum = dsm__control_checksum_with(h, DSM_CONTROL_MAGIC);
    DSM_CTL_STORE_LAST(h->magic, DSM_CONTROL_MAGIC);
    return 0;
}

bool dsm__control_uninitialised(const void *addr, size_t size)
{
    const struct dsm_control_header *h = addr;

    return addr != NULL && size >= sizeof(h->magic) && h->magic == 0;
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
    if (dsm__control_uninitialised(ctl->map.address, ctl->map.size)) {
        char hb[DSM_HANDLE_STRLEN];

        dsm_impl_detach(inst, &ctl->map);
        return dsm__error(-ENODATA, "control segment %s was created but never initialised "
                                    "(its creator died, or is still starting)",
                          dsm_handle_format(handle, hb));
    }
    rc = dsm__control_validate(ctl->map.address, ctl->map.size, id, handle);
    if (rc < 0) {
        struct dsm__saved_error e;

        dsm__error_save(&e, rc);
        dsm_impl_detach(inst, &ctl->map);
        return dsm__error_restore(&e);
    }
    dsm__control_bind(ctl, ctl->map.address, ctl->map.size);
    return 0;
}

void dsm__control_carry_counters(struct dsm_control *ctl, const struct dsm_control_header *old)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_counters *c = &h->counters;
    const struct dsm_control_counters *o = &old->counters;

    if (dsm__control_lock(ctl) < 0)
        return;
    h->creates += old->creates;
    h->destroys += old->destroys;
    h->repairs += old->repairs;
    h->corruptions += old->corruptions;
    c->attaches += o->attaches;
    c->detaches += o->detaches;
    c->reclaims += o->reclaims;
    c->resets += o->resets + 1;
    c->create_enospc += o->create_enospc;
    c->create_failed += o->create_failed;
    c->bytes_created += o->bytes_created;
    c->region_hits += o->region_hits;
    c->region_fallbacks += o->region_fallbacks;
    c->peak_segments = o->peak_segments > c->peak_segments ? o->peak_segments : c->peak_segments;
    c->peak_bytes = o->peak_bytes > c->peak_bytes ? o->peak_bytes : c->peak_bytes;
    c->peak_processes =
        o->peak_processes > c->peak_processes ? o->peak_processes : c->peak_processes;
    if (o->since_usec != 0 && o->since_usec < c->since_usec)
        c->since_usec = o->since_usec;
    dsm__control_unlock(ctl);
}

void dsm__control_count_create_failure(struct dsm_control *ctl, int rc)
{
    uint64_t *n = rc == -ENOSPC || rc == -ENOMEM ? &ctl->hdr->counters.create_enospc
                                                 : &ctl->hdr->counters.create_failed;

    __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
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

void (*dsm__control_step_hook)(void);

/*
 * A repair found while locking is reported after unlocking: the log hook is
 * application code and may call dynshm, which would deadlock on our lock.
 */
static _Thread_local uint64_t pending_repair_report = UINT64_MAX;
static _Thread_local bool pending_corrupt_report;

int dsm__control_lock(struct dsm_control *ctl)
{
    return dsm__control_lock_timed(ctl, -1);
}

int dsm__control_lock_timed(struct dsm_control *ctl, int timeout_ms)
{
    /* Waits in slices: a holder killed while unlocking can lose a wake-up (robust_mutex.c). */
    int rc = dsm__robust_mutex_lock(&ctl->hdr->lock, timeout_ms < 0 ? -1
                                                     : dsm__now_ns() + (int64_t)timeout_ms * 1000000);
    if (rc == ETIMEDOUT)
        return dsm__error(-ETIMEDOUT, "timed out after %d ms waiting for the dynamic shared "
                                      "memory control lock (a process holds it)", timeout_ms);

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
    bool corrupt = pending_corrupt_report;

    pthread_mutex_unlock(&ctl->hdr->lock);
    if (fixes != UINT64_MAX) {
        pending_repair_report = UINT64_MAX;
        dsm__log(DSM_LOG_WARNING,
                 "recovered the dynamic shared memory control lock from a process that died "
                 "holding it; table checked, %llu repair(s)", (unsigned long long)fixes);
    }
    if (corrupt) {
        pending_corrupt_report = false;
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    }
}

int dsm__control_corrupt(struct dsm_control *ctl, const char *what, uint32_t index, uint32_t n)
{
    ctl->hdr->corruptions++;
    dsm__control_repair(ctl);
    pending_corrupt_report = true;
    return dsm__error(DSM_ECORRUPT, "the dynamic shared memory control segment is corrupt: %s "
                                    "names entry %u of %u; the table was rebuilt from its "
                                    "entries", what, (unsigned)index, (unsigned)n);
}

/* Put ref i at the head of process proc's list (repair, lock held). */
static void link_ref(struct dsm_control *ctl, uint32_t i, uint32_t proc)
{
    struct dsm_control_proc *p = &ctl->procs[proc];

    ctl->refs[i].proc = proc;
    ctl->refs[i].prev = DSM_CONTROL_NONE;
    ctl->refs[i].next = p->ref_head;
    if (p->ref_head != DSM_CONTROL_NONE)
        ctl->refs[p->ref_head].prev = i;
    p->ref_head = i;
    p->nrefs++;
    ctl->hdr->refs_used++;
}

/*
 * Rebuild every derived field from the primary facts: process states, slot
 * states (and pins), and which slot and process each ref names.  Then close
 * what nobody would finish (control.h's closure rule): a slot that is not
 * FREE, has no ref and is not a pinned LIVE segment is an orphan; it turns
 * DYING, and its claim goes to the supervisor's entry if there is one.
 * Bounded by the table's size whatever the entries say.
 */
uint64_t dsm__control_repair(struct dsm_control *ctl)
{
    struct dsm_control_header *h = ctl->hdr;
    uint32_t *counts, supervisor = DSM_CONTROL_NONE;
    uint64_t fixes = 0;

    h->slot_free = h->proc_free = h->ref_free = DSM_CONTROL_NONE;
    h->slots_used = h->procs_used = h->refs_used = 0;
    h->orphans = 0;
    h->counters.live_bytes = 0;

    for (uint32_t i = h->nprocs; i-- > 0;) {
        struct dsm_control_proc *p = &ctl->procs[i];

        if (p->state != DSM_PROC_ACTIVE) {
            fixes += p->state != DSM_PROC_FREE;
            p->state = DSM_PROC_FREE;
            p->next_free = h->proc_free;
            h->proc_free = i;
        } else {
            h->procs_used++;
            if ((p->flags & DSM_PROC_SUPERVISOR) && supervisor == DSM_CONTROL_NONE)
                supervisor = i;
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
            /* A free slot counts nothing and holds no pin, whatever was scribbled. */
            fixes += s->refcnt != 0 || s->pinned != 0;
            s->refcnt = 0;
            s->pinned = 0;
            s->flags = 0;
            s->next_free = h->slot_free;
            h->slot_free = i;
        } else {
            h->slots_used++;
        }
    }
    /* Refs are the primary record of who holds what: relink and recount. */
    counts = calloc(h->nslots + 1, sizeof(*counts)); /* + 1: never a 0-byte request */
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
        link_ref(ctl, i, r->proc);
        if (counts)
            counts[r->slot]++;
    }
    for (uint32_t i = 0; counts && i < h->nslots; i++) {
        struct dsm_control_slot *s = &ctl->slots[i];
        uint32_t want;

        if (s->state == DSM_SLOT_FREE)
            continue;
        if (s->state != DSM_SLOT_LIVE)
            s->pinned = 0; /* only a live segment is pinned */
        if (counts[i] == 0 && !(s->state == DSM_SLOT_LIVE && s->pinned)) {
            uint32_t claim = h->ref_free;

            /* Nobody answers for it: make it an orphan the supervisor finishes. */
            if (s->state != DSM_SLOT_DYING || !(s->flags & DSM_SLOT_ORPHAN))
                fixes++; /* (an orphan left unadopted before is not a new finding) */
            s->state = DSM_SLOT_DYING;
            s->flags |= DSM_SLOT_ORPHAN;
            if (supervisor != DSM_CONTROL_NONE && claim != DSM_CONTROL_NONE) {
                h->ref_free = ctl->refs[claim].next;
                link_ref(ctl, claim, supervisor);
                ctl->refs[claim].slot = i;
                counts[i] = 1;
                fixes++;
            }
        }
        if (s->flags & DSM_SLOT_ORPHAN)
            h->orphans++;
        want = s->state == DSM_SLOT_LIVE ? counts[i] + (s->pinned ? 1 : 0) : 0;
        if (s->refcnt != want) {
            s->refcnt = want;
            fixes++;
        }
    }
    free(counts);
    /* Derived, after the orphans turned DYING: the sizes of LIVE and DYING slots. */
    for (uint32_t i = 0; i < h->nslots; i++)
        if (ctl->slots[i].state == DSM_SLOT_LIVE || ctl->slots[i].state == DSM_SLOT_DYING)
            h->counters.live_bytes += ctl->slots[i].size;
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

/*
 * One batch of destroy_all: up to DESTROY_BATCH slots from *cursor on,
 * marked DYING under the lock (they stay listed) and described in victims.
 */
#define DESTROY_BATCH 256

static uint32_t mark_batch(struct dsm_control *ctl, uint32_t *cursor, dsm_impl_segment *victims,
                           uint32_t *slots)
{
    struct dsm_control_header *h = ctl->hdr;
    uint32_t n = 0;

    for (; *cursor < h->nslots && n < DESTROY_BATCH; (*cursor)++) {
        struct dsm_control_slot *s = &ctl->slots[*cursor];

        if (s->state == DSM_SLOT_FREE || s->state > DSM_SLOT_DYING)
            continue;
        if ((uint32_t)s->handle != *cursor) /* a handle always encodes its slot */
            continue; /* nothing is destroyed on the word of an inconsistent entry */
        dsm__control_slot_segment(ctl, *cursor, &victims[n]);
        slots[n++] = *cursor;
        s->refcnt = 0;
        s->pinned = 0;
        if (s->state == DSM_SLOT_CREATING) /* DYING slots count in live_bytes */
            h->counters.live_bytes += s->size;
        DSM_CTL_STORE_LAST(s->state, (uint8_t)DSM_SLOT_DYING);
    }
    return n;
}

int dsm__control_destroy_all(dsm_impl_instance *inst, struct dsm_control *ctl,
                             void (*report)(const char *name, void *arg), void *arg,
                             unsigned *left)
{
    dsm_impl_segment victims[DESTROY_BATCH];
    uint32_t slots[DESTROY_BATCH], cursor = 0;
    unsigned kept = 0;
    int destroyed = 0;

    /*
     * Only cleanup paths call this, when no worker runs.  Each batch is
     * marked under the lock, destroyed after unlocking (system calls and
     * messages never run under it), and freed under the lock again only
     * for the objects that are gone.  If the lock cannot be had (it is not
     * recoverable), the table is read and written without it: nobody else
     * uses it now, and the lock is then never unlocked by us.
     */
    for (;;) {
        bool locked = dsm__control_lock(ctl) == 0;
        uint32_t n;
        bool gone[DESTROY_BATCH];

        if (!locked)
            dsm__log(DSM_LOG_WARNING, "%s; cleaning the table without it", dsm_errmsg());
        n = mark_batch(ctl, &cursor, victims, slots);
        if (locked)
            dsm__control_unlock(ctl);
        if (n == 0)
            break;
        for (uint32_t i = 0; i < n; i++) {
            char name[DSM_IMPL_NAME_MAX];
            int rc = dsm_impl_destroy(inst, &victims[i]);

            gone[i] = rc == 0 || rc == -ENOENT;
            DSM_CTL_STEP(); /* a kill here: destroyed, still listed; the next pass frees it */
            dsm_impl_segment_name(inst, victims[i].handle, name, sizeof(name));
            if (rc == 0) {
                destroyed++;
                dsm__log(DSM_LOG_DEBUG, "removed shared memory segment \"%s\"", name);
                if (report)
                    report(name, arg);
            } else if (!gone[i]) {
                kept++;
                dsm__log(DSM_LOG_WARNING, "left shared memory segment \"%s\" in place: %s",
                         name, dsm_errmsg());
            }
        }
        locked = dsm__control_lock(ctl) == 0;
        for (uint32_t i = 0; i < n; i++) {
            struct dsm_control_slot *s = &ctl->slots[slots[i]];

            if (!gone[i] || s->state != DSM_SLOT_DYING)
                continue;
            DSM_CTL_STORE_FIRST(s->state, (uint8_t)DSM_SLOT_FREE);
            DSM_CTL_STEP();
            if (victims[i].size)
                ctl->hdr->destroys++;
        }
        /* Refs naming freed slots, free lists, counts: all derived. */
        dsm__control_repair(ctl);
        if (locked)
            dsm__control_unlock(ctl);
    }
    if (left)
        *left = kept;
    return destroyed;
}

/* ---- verification ------------------------------------------------------------------ */

static unsigned problem(char *why, size_t len, unsigned n, const char *fmt, ...)
    DSM_PRINTF(4, 5);
static unsigned problem(char *why, size_t len, unsigned n, const char *fmt, ...)
{
    va_list ap;

    if (n == 0 && why && len) {
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return n + 1;
}

/* Walk a free list of n entries; -1 if it leaves the table or loops. */
static int64_t walk_free(uint32_t head, uint32_t n, uint32_t (*next)(const struct dsm_control *,
                                                                      uint32_t),
                         const struct dsm_control *ctl, bool (*is_free)(const struct dsm_control *,
                                                                         uint32_t))
{
    int64_t count = 0;

    for (uint32_t i = head; i != DSM_CONTROL_NONE; i = next(ctl, i)) {
        if (i >= n || count > n || !is_free(ctl, i))
            return -1;
        count++;
    }
    return count;
}

static uint32_t slot_next(const struct dsm_control *c, uint32_t i) { return c->slots[i].next_free; }
static bool slot_free(const struct dsm_control *c, uint32_t i) { return c->slots[i].state == DSM_SLOT_FREE; }
static uint32_t proc_next(const struct dsm_control *c, uint32_t i) { return c->procs[i].next_free; }
static bool proc_free(const struct dsm_control *c, uint32_t i) { return c->procs[i].state == DSM_PROC_FREE; }
static uint32_t ref_next(const struct dsm_control *c, uint32_t i) { return c->refs[i].next; }
static bool ref_free_(const struct dsm_control *c, uint32_t i) { return c->refs[i].slot == DSM_CONTROL_NONE; }

unsigned dsm__control_verify(struct dsm_control *ctl, char *why, size_t len)
{
    const struct dsm_control_header *h = ctl->hdr;
    uint32_t *counts = calloc(h->nslots, sizeof(*counts));
    uint32_t used = 0, active = 0, refs = 0, orphans = 0;
    uint64_t bytes = 0;
    unsigned bad = 0;
    int64_t n;

    if (counts == NULL)
        return problem(why, len, 0, "out of memory");
    for (uint32_t i = 0; i < h->nslots; i++) {
        used += ctl->slots[i].state != DSM_SLOT_FREE;
        orphans += ctl->slots[i].state != DSM_SLOT_FREE &&
                   (ctl->slots[i].flags & DSM_SLOT_ORPHAN) != 0;
        if (ctl->slots[i].state > DSM_SLOT_DYING)
            bad = problem(why, len, bad, "slot %u has state %u", i, ctl->slots[i].state);
    }
    for (uint32_t i = 0; i < h->nprocs; i++)
        active += ctl->procs[i].state == DSM_PROC_ACTIVE;
    if (used != h->slots_used)
        bad = problem(why, len, bad, "slots_used %u, but %u slots are in use", h->slots_used, used);
    if (active != h->procs_used)
        bad = problem(why, len, bad, "procs_used %u, but %u are active", h->procs_used, active);
    if (orphans != h->orphans)
        bad = problem(why, len, bad, "orphans %u, but %u slots are flagged", h->orphans, orphans);
    n = walk_free(h->slot_free, h->nslots, slot_next, ctl, slot_free);
    if (n != (int64_t)(h->nslots - used))
        bad = problem(why, len, bad, "free slot list has %lld entries, %u expected",
                      (long long)n, h->nslots - used);
    n = walk_free(h->proc_free, h->nprocs, proc_next, ctl, proc_free);
    if (n != (int64_t)(h->nprocs - active))
        bad = problem(why, len, bad, "free process list has %lld entries, %u expected",
                      (long long)n, h->nprocs - active);
    for (uint32_t p = 0; p < h->nprocs; p++) {
        const struct dsm_control_proc *pr = &ctl->procs[p];
        uint32_t k = 0, prev = DSM_CONTROL_NONE;

        if (pr->state != DSM_PROC_ACTIVE)
            continue;
        for (uint32_t r = pr->ref_head; r != DSM_CONTROL_NONE; r = ctl->refs[r].next) {
            if (r >= h->nrefs || k > h->nrefs || ctl->refs[r].proc != p ||
                ctl->refs[r].prev != prev || ctl->refs[r].slot >= h->nslots ||
                ctl->slots[ctl->refs[r].slot].state == DSM_SLOT_FREE) {
                bad = problem(why, len, bad, "process %u's reference list is broken at %u", p, r);
                break;
            }
            counts[ctl->refs[r].slot]++;
            prev = r;
            k++;
        }
        if (k != pr->nrefs)
            bad = problem(why, len, bad, "process %u lists %u references, counts %u", p, k,
                          pr->nrefs);
        refs += k;
    }
    if (refs != h->refs_used)
        bad = problem(why, len, bad, "refs_used %u, but %u are listed", h->refs_used, refs);
    n = walk_free(h->ref_free, h->nrefs, ref_next, ctl, ref_free_);
    if (n != (int64_t)(h->nrefs - refs))
        bad = problem(why, len, bad, "free reference list has %lld entries, %u expected",
                      (long long)n, h->nrefs - refs);
    for (uint32_t i = 0; i < h->nslots; i++) {
        const struct dsm_control_slot *s = &ctl->slots[i];

        if (s->state == DSM_SLOT_FREE)
            continue;
        if (s->state == DSM_SLOT_LIVE || s->state == DSM_SLOT_DYING)
            bytes += s->size;
        if ((uint32_t)s->handle != i)
            bad = problem(why, len, bad, "slot %u holds handle %016llx", i,
                          (unsigned long long)s->handle);
        if (s->state == DSM_SLOT_LIVE && s->refcnt != counts[i] + (s->pinned ? 1u : 0u))
            bad = problem(why, len, bad, "slot %u: refcnt %u, but %u references%s", i,
                          s->refcnt, counts[i], s->pinned ? " and a pin" : "");
        /* The closure rule: somebody answers for every slot in use. */
        if (counts[i] == 0 && !(s->state == DSM_SLOT_LIVE && s->pinned) &&
            !(s->flags & DSM_SLOT_ORPHAN))
            bad = problem(why, len, bad, "slot %u (state %u) has no owner", i, s->state);
    }
    if (bytes != h->counters.live_bytes)
        bad = problem(why, len, bad, "live_bytes %llu, but the slots hold %llu",
                      (unsigned long long)h->counters.live_bytes, (unsigned long long)bytes);
    free(counts);
    return bad;
}
