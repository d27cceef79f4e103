/*
 * slots.c - the O(1) operations on the control table: reserve, publish,
 * acquire and release references, pin, unpin, register processes.
 *
 * Each function is one critical section touching a constant number of
 * entries.  Within it, writes are ordered so that a process dying at any
 * instruction leaves a table dsm__control_repair() can rebuild: a ref's
 * `slot` field is what makes it count, and it is written last on
 * allocation and first on release.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include "../common/internal.h"
#include "control.h"

/* ---- ref pool and per-process lists (lock held) -------------------------- */

static uint32_t ref_alloc(struct dsm_control *ctl, uint32_t proc, uint32_t slot)
{
    struct dsm_control_header *h = ctl->hdr;
    uint32_t i = h->ref_free;

    if (i == DSM_CONTROL_NONE)
        return DSM_CONTROL_NONE;
    h->ref_free = ctl->refs[i].next;
    dsm__control_link_ref(ctl, i, proc);
    ctl->refs[i].slot = slot; /* last: this is what makes the ref count */
    return i;
}

static void ref_free(struct dsm_control *ctl, uint32_t i)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_ref *r = &ctl->refs[i];
    struct dsm_control_proc *p = &ctl->procs[r->proc];

    r->slot = DSM_CONTROL_NONE;
    if (r->prev != DSM_CONTROL_NONE)
        ctl->refs[r->prev].next = r->next;
    else
        p->ref_head = r->next;
    if (r->next != DSM_CONTROL_NONE)
        ctl->refs[r->next].prev = r->prev;
    p->nrefs--;
    h->refs_used--;
    r->prev = DSM_CONTROL_NONE;
    r->next = h->ref_free;
    h->ref_free = i;
}

/* A fresh handle for slot: its index and 32 random bits unlike its last ones. */
static int new_handle(struct dsm_control *ctl, uint32_t slot, dsm_handle *out)
{
    uint32_t last = (uint32_t)(ctl->slots[slot].handle >> 32), bits;
    int rc;

    do {
        if ((rc = dsm__random_bytes(&bits, sizeof(bits))) < 0)
            return rc;
    } while (bits == 0 || bits == last);
    *out = ((dsm_handle)bits << 32) | slot;
    return 0;
}

/* The slot a handle names, or NONE if it names no slot of this table. */
static uint32_t handle_slot(const struct dsm_control *ctl, dsm_handle handle)
{
    uint32_t slot = (uint32_t)handle;

    if (slot >= ctl->hdr->nslots || ctl->slots[slot].handle != handle)
        return DSM_CONTROL_NONE;
    return slot;
}

static int no_such_segment(const struct dsm_control *ctl, dsm_handle handle)
{
    char hb[DSM_HANDLE_STRLEN];
    uint32_t slot = handle_slot(ctl, handle);

    dsm_handle_format(handle, hb);
    if (slot != DSM_CONTROL_NONE && ctl->slots[slot].state == DSM_SLOT_DYING)
        return dsm__error(-ENOENT, "dynamic shared memory segment %s is being destroyed", hb);
    if (slot != DSM_CONTROL_NONE && ctl->slots[slot].state == DSM_SLOT_CREATING)
        return dsm__error(-ENOENT, "dynamic shared memory segment %s is still being created", hb);
    return dsm__error(-ENOENT, "no dynamic shared memory segment with handle %s", hb);
}

static int out_of_refs(void)
{
    return dsm__error(DSM_ENOSLOTS, "too many dynamic shared memory mappings (raise "
                                    "dsm_max_mappings)");
}

/* ---- processes --------------------------------------------------------- */

int dsm__control_proc_register(struct dsm_control *ctl, const struct dsm__procid *id,
                               uint32_t flags, uint32_t *proc)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_proc *p;
    struct timeval tv;
    uint32_t i;
    int rc;

    gettimeofday(&tv, NULL);
    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    i = h->proc_free;
    if (i == DSM_CONTROL_NONE) {
        dsm__control_unlock(ctl);
        return dsm__error(DSM_ENOSLOTS, "too many processes use dynamic shared memory (raise "
                                        "dsm_max_processes)");
    }
    p = &ctl->procs[i];
    h->proc_free = p->next_free;
    p->id = *id;
    p->ref_head = DSM_CONTROL_NONE;
    p->nrefs = 0;
    p->flags = flags;
    atomic_store_explicit(&p->critical, 0, memory_order_relaxed);
    p->registered_usec = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
    p->state = DSM_PROC_ACTIVE;
    h->procs_used++;
    dsm__control_unlock(ctl);
    *proc = i;
    return 0;
}

void dsm__control_proc_unregister(struct dsm_control *ctl, uint32_t proc)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_proc *p = &ctl->procs[proc];

    if (dsm__control_lock(ctl) < 0)
        return;
    /* Refs still listed are dropped without destroying: a crash reset or
     * the dead-worker reclaim deals with what they held. */
    while (p->ref_head != DSM_CONTROL_NONE)
        ref_free(ctl, p->ref_head);
    p->state = DSM_PROC_FREE;
    p->next_free = h->proc_free;
    h->proc_free = proc;
    h->procs_used--;
    dsm__control_unlock(ctl);
}

/* ---- segments ------------------------------------------------------------ */

int dsm__control_slot_reserve(struct dsm_control *ctl, uint32_t proc, dsm_handle *handle,
                              uint32_t *slot_out, uint32_t *ref_out)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_slot *s;
    uint32_t slot, ref;
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    slot = h->slot_free;
    if (slot == DSM_CONTROL_NONE) {
        dsm__control_unlock(ctl);
        return dsm__error(DSM_ENOSLOTS, "too many dynamic shared memory segments (%u exist; "
                                        "raise dsm_max_segments)", (unsigned)h->nslots);
    }
    s = &ctl->slots[slot];
    if ((rc = new_handle(ctl, slot, handle)) < 0) {
        dsm__control_unlock(ctl);
        return rc;
    }
    /*
     * The claim first, the slot's state last: a process dying in between
     * leaves a ref to a FREE slot, which repair drops, never a CREATING slot
     * that no process answers for.
     */
    ref = ref_alloc(ctl, proc, slot);
    if (ref == DSM_CONTROL_NONE) {
        dsm__control_unlock(ctl);
        return out_of_refs();
    }
    h->slot_free = s->next_free;
    s->handle = *handle;
    s->size = 0;
    s->os_id = -1;
    s->refcnt = 0;
    s->pinned = 0;
    s->created = (uint32_t)time(NULL);
    h->slots_used++;
    s->state = DSM_SLOT_CREATING;
    dsm__control_unlock(ctl);
    *slot_out = slot;
    *ref_out = ref;
    return 0;
}

int dsm__control_slot_rehandle(struct dsm_control *ctl, uint32_t slot, dsm_handle *handle)
{
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    rc = new_handle(ctl, slot, handle);
    if (rc == 0)
        ctl->slots[slot].handle = *handle;
    dsm__control_unlock(ctl);
    return rc;
}

void dsm__control_slot_publish(struct dsm_control *ctl, uint32_t slot, size_t size,
                               int64_t os_id)
{
    struct dsm_control_slot *s = &ctl->slots[slot];

    /* Cannot fail for a live lock; a broken lock leaves the slot CREATING,
     * which every cleanup treats as "destroy if it exists". */
    if (dsm__control_lock(ctl) < 0)
        return;
    s->size = size;
    s->os_id = os_id;
    s->refcnt = 1;
    s->state = DSM_SLOT_LIVE;
    ctl->hdr->creates++;
    dsm__control_unlock(ctl);
}

void dsm__control_slot_abandon(struct dsm_control *ctl, uint32_t slot, uint32_t ref)
{
    dsm__control_slot_release(ctl, slot, ref);
}

int dsm__control_ref_acquire(struct dsm_control *ctl, uint32_t proc, dsm_handle handle,
                             uint32_t *slot_out, uint32_t *ref_out, dsm_impl_segment *seg)
{
    uint32_t slot, ref;
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    slot = handle_slot(ctl, handle);
    if (slot == DSM_CONTROL_NONE || ctl->slots[slot].state != DSM_SLOT_LIVE) {
        rc = no_such_segment(ctl, handle);
        dsm__control_unlock(ctl);
        return rc;
    }
    ref = ref_alloc(ctl, proc, slot);
    if (ref == DSM_CONTROL_NONE) {
        dsm__control_unlock(ctl);
        return out_of_refs();
    }
    ctl->slots[slot].refcnt++;
    dsm__control_slot_segment(ctl, slot, seg);
    dsm__control_unlock(ctl);
    *slot_out = slot;
    *ref_out = ref;
    return 0;
}

int dsm__control_ref_release(struct dsm_control *ctl, uint32_t slot, uint32_t ref)
{
    struct dsm_control_slot *s = &ctl->slots[slot];
    int last = 0;

    if (dsm__control_lock(ctl) < 0)
        return 0; /* the reference stays counted: a leak the next reset removes */
    if (s->refcnt > 0 && --s->refcnt == 0) {
        s->state = DSM_SLOT_DYING; /* the ref stays as this process's claim */
        last = 1;
    } else {
        ref_free(ctl, ref);
    }
    dsm__control_unlock(ctl);
    return last;
}

void dsm__control_slot_release(struct dsm_control *ctl, uint32_t slot, uint32_t ref)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_slot *s = &ctl->slots[slot];

    if (dsm__control_lock(ctl) < 0)
        return;
    /* The slot first, the claim last (see slot_reserve for why). */
    s->state = DSM_SLOT_FREE;
    s->refcnt = 0;
    s->pinned = 0;
    s->next_free = h->slot_free;
    h->slot_free = slot;
    h->slots_used--;
    if (s->size)
        h->destroys++;
    ref_free(ctl, ref);
    dsm__control_unlock(ctl);
}

int dsm__control_pin(struct dsm_control *ctl, uint32_t slot, dsm_handle handle)
{
    struct dsm_control_slot *s = &ctl->slots[slot];
    char hb[DSM_HANDLE_STRLEN];
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    if (handle_slot(ctl, handle) != slot || s->state != DSM_SLOT_LIVE)
        rc = no_such_segment(ctl, handle);
    else if (s->pinned)
        rc = dsm__error(-EALREADY, "dynamic shared memory segment %s is already pinned",
                        dsm_handle_format(handle, hb));
    else {
        s->pinned = 1;
        s->refcnt++;
    }
    dsm__control_unlock(ctl);
    return rc;
}

int dsm__control_unpin(struct dsm_control *ctl, uint32_t proc, dsm_handle handle,
                       uint32_t *slot_out, uint32_t *ref_out, dsm_impl_segment *seg)
{
    char hb[DSM_HANDLE_STRLEN];
    struct dsm_control_slot *s;
    uint32_t slot, claim;
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    slot = handle_slot(ctl, handle);
    if (slot == DSM_CONTROL_NONE || ctl->slots[slot].state != DSM_SLOT_LIVE) {
        rc = no_such_segment(ctl, handle);
        goto out;
    }
    s = &ctl->slots[slot];
    if (!s->pinned) {
        rc = dsm__error(-EINVAL, "dynamic shared memory segment %s is not pinned",
                        dsm_handle_format(handle, hb));
        goto out;
    }
    /* Take the claim first, so running out of refs changes nothing. */
    claim = ref_alloc(ctl, proc, slot);
    if (claim == DSM_CONTROL_NONE) {
        rc = out_of_refs();
        goto out;
    }
    s->pinned = 0;
    if (--s->refcnt == 0) {
        s->state = DSM_SLOT_DYING;
        dsm__control_slot_segment(ctl, slot, seg);
        *slot_out = slot;
        *ref_out = claim;
        rc = 1;
    } else {
        ref_free(ctl, claim);
        rc = 0;
    }
out:
    dsm__control_unlock(ctl);
    return rc;
}

/* ---- dead processes -------------------------------------------------------- */

int dsm__control_members(struct dsm_control *ctl, uint32_t self, pid_t pid,
                         struct dsm_control_member *out, int max, uint32_t *cursor)
{
    const struct dsm_control_header *h = ctl->hdr;
    uint32_t i = *cursor;
    int n = 0, rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    for (; i < h->nprocs && n < max; i++) {
        const struct dsm_control_proc *p = &ctl->procs[i];

        if (i == self || p->state != DSM_PROC_ACTIVE || (pid > 0 && p->id.pid != (int32_t)pid))
            continue;
        out[n].index = i;
        out[n].id = p->id;
        out[n].flags = p->flags;
        n++;
    }
    dsm__control_unlock(ctl);
    *cursor = i;
    return n;
}

/* The entry `m` copied, if it is still the same process's (lock held). */
static struct dsm_control_proc *member_entry(struct dsm_control *ctl,
                                             const struct dsm_control_member *m)
{
    struct dsm_control_proc *p;

    if (m->index >= ctl->hdr->nprocs)
        return NULL;
    p = &ctl->procs[m->index];
    if (p->state != DSM_PROC_ACTIVE || !dsm__procid_same(&p->id, &m->id))
        return NULL;
    return p;
}

int dsm__control_member_critical(struct dsm_control *ctl, const struct dsm_control_member *m)
{
    struct dsm_control_proc *p;
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    p = member_entry(ctl, m);
    rc = p ? (int)atomic_load_explicit(&p->critical, memory_order_acquire) : -ESRCH;
    dsm__control_unlock(ctl);
    if (rc > INT32_MAX / 2)
        rc = INT32_MAX / 2; /* a scribbled counter still means "inside" */
    return rc;
}

/* Move ref i from its process's list to process `to`; returns its index (lock held). */
static uint32_t ref_move(struct dsm_control *ctl, uint32_t i, uint32_t to)
{
    uint32_t slot = ctl->refs[i].slot;

    ref_free(ctl, i);
    /* ref_free pushed i on the free list, so allocation pops i straight back. */
    return ref_alloc(ctl, to, slot);
}

int dsm__control_reclaim(struct dsm_control *ctl, const struct dsm_control_member *dead,
                         uint32_t self, struct dsm_claim *claims, int max)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_proc *p;
    int n = 0, rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    /* Rechecked under the lock: the entry may have been reclaimed meanwhile. */
    p = member_entry(ctl, dead);
    if (p == NULL) {
        dsm__control_unlock(ctl);
        return 0;
    }
    while (p->ref_head != DSM_CONTROL_NONE && n < max) {
        uint32_t r = p->ref_head, slot = ctl->refs[r].slot;
        struct dsm_control_slot *s = &ctl->slots[slot];

        if (s->state == DSM_SLOT_LIVE && s->refcnt > 1) {
            s->refcnt--; /* others still hold it: just drop the dead worker's share */
            ref_free(ctl, r);
            continue;
        }
        /* The last reference, a half-created segment, or an unfinished destroy:
         * this process takes over the claim and destroys the OS object. */
        s->refcnt = 0;
        s->state = DSM_SLOT_DYING;
        claims[n].slot = slot;
        claims[n].ref = ref_move(ctl, r, self);
        n++;
    }
    if (p->ref_head == DSM_CONTROL_NONE) {
        p->state = DSM_PROC_FREE;
        p->next_free = h->proc_free;
        h->proc_free = dead->index;
        h->procs_used--;
    }
    dsm__control_unlock(ctl);
    return n;
}
