/* SPDX-License-Identifier: MIT */
/*
 * slots.c - the O(1) operations on the control table: reserve, publish,
 * acquire and release references, pin, unpin, register processes, and the
 * crash paths' member copies and reclaim.
 *
 * Each function is one critical section touching a constant number of
 * entries.  Two rules make a death at any instruction survivable:
 *   - the primary facts are written in the order control.h's "Crash
 *     ordering" gives (a ref's `slot` last on allocation and first on
 *     release; a slot's `state` last when it becomes CREATING, LIVE or
 *     DYING, first when it becomes FREE), so dsm__control_repair() can
 *     rebuild the rest and the closure rule leaves every state an owner;
 *   - every index read from the table is checked before anything is
 *     written, so a scribbled entry fails the call with DSM_ECORRUPT (and
 *     a rebuild) instead of a half-done update or a wild access.
 * DSM_CTL_STEP() marks every point between two stores: the unit suite
 * (test/check_control.c) kills a process at each one in turn.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include "../common/internal.h"
#include "control.h"

#define NONE DSM_CONTROL_NONE

/* An index that must name an entry (or end a chain, when none_ok). */
static bool bad_index(uint32_t i, uint32_t n, bool none_ok)
{
    return i == NONE ? !none_ok : i >= n;
}

/* ---- ref pool and per-process lists (lock held) -------------------------- */

/*
 * Take a free ref for (proc, slot): 0 and *out, 1 if the pool is empty,
 * DSM_ECORRUPT if the free list or proc's list is damaged (nothing written).
 */
static int ref_alloc(struct dsm_control *ctl, uint32_t proc, uint32_t slot, uint32_t *out)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_proc *p = &ctl->procs[proc];
    uint32_t i = h->ref_free, next, head = p->ref_head;
    struct dsm_control_ref *r;

    if (i == NONE)
        return 1;
    if (bad_index(i, h->nrefs, false) || ctl->refs[i].slot != NONE)
        return dsm__control_corrupt(ctl, "the free reference list", i, h->nrefs);
    r = &ctl->refs[i];
    next = r->next;
    if (bad_index(next, h->nrefs, true))
        return dsm__control_corrupt(ctl, "the free reference list", next, h->nrefs);
    if (bad_index(head, h->nrefs, true) ||
        (head != NONE && (ctl->refs[head].proc != proc || ctl->refs[head].prev != NONE)))
        return dsm__control_corrupt(ctl, "a process's reference list", head, h->nrefs);
    h->ref_free = next;
    DSM_CTL_STEP();
    r->proc = proc;
    r->prev = NONE;
    r->next = head;
    DSM_CTL_STEP();
    if (head != NONE)
        ctl->refs[head].prev = i;
    p->ref_head = i;
    p->nrefs++;
    h->refs_used++;
    DSM_CTL_STEP();
    DSM_CTL_STORE_LAST(r->slot, slot); /* last: this is what makes the ref count */
    DSM_CTL_STEP();
    *out = i;
    return 0;
}

/* Give ref i back to the pool; DSM_ECORRUPT (nothing written) if its links are damaged. */
static int ref_free(struct dsm_control *ctl, uint32_t i)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_ref *r = &ctl->refs[i];
    uint32_t proc = r->proc, prev = r->prev, next = r->next;
    struct dsm_control_proc *p;

    if (bad_index(proc, h->nprocs, false))
        return dsm__control_corrupt(ctl, "a reference's process", proc, h->nprocs);
    p = &ctl->procs[proc];
    if (bad_index(prev, h->nrefs, true) || bad_index(next, h->nrefs, true) ||
        (prev == NONE ? p->ref_head != i : ctl->refs[prev].next != i) ||
        (next != NONE && ctl->refs[next].prev != i))
        return dsm__control_corrupt(ctl, "a process's reference list", i, h->nrefs);
    DSM_CTL_STORE_FIRST(r->slot, NONE); /* first: the ref stops counting */
    DSM_CTL_STEP();
    if (prev != NONE)
        ctl->refs[prev].next = next;
    else
        p->ref_head = next;
    DSM_CTL_STEP();
    if (next != NONE)
        ctl->refs[next].prev = prev;
    p->nrefs--;
    h->refs_used--;
    DSM_CTL_STEP();
    r->prev = NONE;
    r->next = h->ref_free;
    h->ref_free = i;
    DSM_CTL_STEP();
    return 0;
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
        return NONE;
    return slot;
}

static int no_such_segment(const struct dsm_control *ctl, dsm_handle handle)
{
    char hb[DSM_HANDLE_STRLEN];
    uint32_t slot = handle_slot(ctl, handle);

    dsm_handle_format(handle, hb);
    if (slot != NONE && ctl->slots[slot].state == DSM_SLOT_DYING)
        return dsm__error(-ENOENT, "dynamic shared memory segment %s is being destroyed", hb);
    if (slot != NONE && ctl->slots[slot].state == DSM_SLOT_CREATING)
        return dsm__error(-ENOENT, "dynamic shared memory segment %s is still being created", hb);
    return dsm__error(-ENOENT, "no dynamic shared memory segment with handle %s", hb);
}

static int out_of_refs(void)
{
    return dsm__error(DSM_ENOSLOTS, "too many dynamic shared memory mappings (raise "
                                    "dsm_max_mappings)");
}

/*
 * A (slot, ref) pair a process kept from an earlier call: still the ref it
 * was, naming the slot, in a state the caller expects?  Private indexes are
 * trusted to be in range; what the table says of them is not.
 */
static int check_claim(struct dsm_control *ctl, uint32_t slot, uint32_t ref, unsigned states)
{
    const struct dsm_control_header *h = ctl->hdr;

    if (slot >= h->nslots || ref >= h->nrefs || ctl->refs[ref].slot != slot ||
        !(states & (1u << ctl->slots[slot].state)))
        return dsm__control_corrupt(ctl, "a reference of this process", ref, h->nrefs);
    return 0;
}
#define ST(s) (1u << (s))

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
    if (i == NONE) {
        dsm__control_unlock(ctl);
        return dsm__error(DSM_ENOSLOTS, "too many processes use dynamic shared memory (raise "
                                        "dsm_max_processes)");
    }
    if (bad_index(i, h->nprocs, false) || ctl->procs[i].state != DSM_PROC_FREE ||
        bad_index(ctl->procs[i].next_free, h->nprocs, true)) {
        rc = dsm__control_corrupt(ctl, "the free process list", i, h->nprocs);
        dsm__control_unlock(ctl);
        return rc;
    }
    p = &ctl->procs[i];
    h->proc_free = p->next_free;
    DSM_CTL_STEP();
    p->id = *id;
    p->ref_head = NONE;
    p->nrefs = 0;
    p->flags = flags;
    atomic_store_explicit(&p->critical, 0, memory_order_relaxed);
    p->registered_usec = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
    h->procs_used++;
    if (h->procs_used > h->counters.peak_processes)
        h->counters.peak_processes = h->procs_used;
    DSM_CTL_STEP();
    DSM_CTL_STORE_LAST(p->state, (uint32_t)DSM_PROC_ACTIVE);
    dsm__control_unlock(ctl);
    *proc = i;
    return 0;
}

int dsm__control_proc_unregister(struct dsm_control *ctl, uint32_t proc)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_proc *p = &ctl->procs[proc];
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    /*
     * A process leaving with references still listed (a thread was still
     * attaching) must not drop them uncounted: its entry stays, and the
     * supervisor's dead-worker handling releases them once it is gone.
     */
    if (p->ref_head != NONE) {
        uint32_t n = p->nrefs;

        dsm__control_unlock(ctl);
        return dsm__error(-EBUSY, "this process still holds %u dynamic shared memory "
                                  "reference(s); left for the supervisor to release",
                          (unsigned)n);
    }
    DSM_CTL_STORE_FIRST(p->state, (uint32_t)DSM_PROC_FREE);
    DSM_CTL_STEP();
    p->next_free = h->proc_free;
    h->proc_free = proc;
    h->procs_used--;
    DSM_CTL_STEP();
    dsm__control_unlock(ctl);
    return 0;
}

/* ---- segments ------------------------------------------------------------ */

/* The reservation, lock held: see dsm__control_slot_reserve(). */
static int reserve_locked(struct dsm_control *ctl, uint32_t proc, dsm_handle *handle,
                          uint32_t *slot_out, uint32_t *ref_out)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_slot *s;
    uint32_t slot, ref;
    int rc;

    slot = h->slot_free;
    if (slot == NONE) {
        /* Atomic: failures after the reservation are counted without the lock. */
        __atomic_fetch_add(&h->counters.create_failed, 1, __ATOMIC_RELAXED);
        return dsm__error(DSM_ENOSLOTS, "too many dynamic shared memory segments (%u exist; "
                                        "raise dsm_max_segments)", (unsigned)h->nslots);
    }
    if (bad_index(slot, h->nslots, false) || ctl->slots[slot].state != DSM_SLOT_FREE ||
        bad_index(ctl->slots[slot].next_free, h->nslots, true)) {
        rc = dsm__control_corrupt(ctl, "the free slot list", slot, h->nslots);
        goto out;
    }
    s = &ctl->slots[slot];
    if ((rc = new_handle(ctl, slot, handle)) < 0)
        goto out;
    /*
     * The claim first, the slot's state last: a process dying in between
     * leaves a ref to a FREE slot, which repair drops, never a CREATING slot
     * that no process answers for.
     */
    rc = ref_alloc(ctl, proc, slot, &ref);
    if (rc != 0) {
        rc = rc > 0 ? out_of_refs() : rc;
        goto out;
    }
    h->slot_free = s->next_free;
    DSM_CTL_STEP();
    s->handle = *handle;
    s->size = 0;
    s->os_id = -1;
    s->refcnt = 0;
    s->pinned = 0;
    s->flags = 0;
    s->created = (uint32_t)time(NULL);
    h->slots_used++;
    if (h->slots_used > h->counters.peak_segments)
        h->counters.peak_segments = h->slots_used;
    DSM_CTL_STEP();
    DSM_CTL_STORE_LAST(s->state, (uint8_t)DSM_SLOT_CREATING);
    *slot_out = slot;
    *ref_out = ref;
out:
    return rc;
}

int dsm__control_slot_reserve(struct dsm_control *ctl, uint32_t proc, dsm_handle *handle,
                              uint32_t *slot_out, uint32_t *ref_out)
{
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    rc = reserve_locked(ctl, proc, handle, slot_out, ref_out);
    dsm__control_unlock(ctl);
    return rc;
}

/* CREATING -> LIVE with refcnt 1 (lock held, claim checked). */
static void publish_locked(struct dsm_control *ctl, struct dsm_control_slot *s, size_t size,
                           int64_t os_id, uint16_t flags)
{
    s->size = size;
    s->os_id = os_id;
    s->flags |= flags;
    s->refcnt = 1;
    DSM_CTL_STEP();
    DSM_CTL_STORE_LAST(s->state, (uint8_t)DSM_SLOT_LIVE);
    ctl->hdr->creates++;
    ctl->hdr->counters.live_bytes += size;
    ctl->hdr->counters.bytes_created += size;
    if (ctl->hdr->counters.live_bytes > ctl->hdr->counters.peak_bytes)
        ctl->hdr->counters.peak_bytes = ctl->hdr->counters.live_bytes;
    DSM_CTL_STEP();
}

int dsm__control_slot_create_served(struct dsm_control *ctl, uint32_t proc, size_t size,
                                    dsm_control_serve serve, void *arg, dsm_handle *handle,
                                    uint32_t *slot_out, uint32_t *ref_out)
{
    int rc, srv;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    rc = reserve_locked(ctl, proc, handle, slot_out, ref_out);
    if (rc == 0) {
        /* The slot is CREATING with our claim: a death from here on is a claim to finish. */
        DSM_CTL_STEP();
        srv = serve(arg, *handle, size);
        if (srv == 0)
            publish_locked(ctl, &ctl->slots[*slot_out], size, -1, DSM_SLOT_REGION);
        rc = srv;
    }
    dsm__control_unlock(ctl);
    return rc;
}

int dsm__control_slot_rehandle(struct dsm_control *ctl, uint32_t slot, uint32_t ref,
                               dsm_handle *handle)
{
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    rc = check_claim(ctl, slot, ref, ST(DSM_SLOT_CREATING));
    if (rc == 0)
        rc = new_handle(ctl, slot, handle);
    if (rc == 0)
        ctl->slots[slot].handle = *handle;
    DSM_CTL_STEP();
    dsm__control_unlock(ctl);
    return rc;
}

int dsm__control_slot_publish(struct dsm_control *ctl, uint32_t slot, uint32_t ref, size_t size,
                              int64_t os_id)
{
    struct dsm_control_slot *s = &ctl->slots[slot];
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    rc = check_claim(ctl, slot, ref, ST(DSM_SLOT_CREATING));
    if (rc == 0)
        publish_locked(ctl, s, size, os_id, 0);
    dsm__control_unlock(ctl);
    return rc;
}

int dsm__control_ref_acquire(struct dsm_control *ctl, uint32_t proc, dsm_handle handle,
                             uint32_t *slot_out, uint32_t *ref_out, dsm_impl_segment *seg)
{
    uint32_t slot, ref;
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    slot = handle_slot(ctl, handle);
    if (slot == NONE || ctl->slots[slot].state != DSM_SLOT_LIVE) {
        rc = no_such_segment(ctl, handle);
        goto out;
    }
    rc = ref_alloc(ctl, proc, slot, &ref);
    if (rc != 0) {
        rc = rc > 0 ? out_of_refs() : rc;
        goto out;
    }
    ctl->slots[slot].refcnt++; /* after the ref: repair recounts from refs anyway */
    ctl->hdr->counters.attaches++;
    DSM_CTL_STEP();
    dsm__control_slot_segment(ctl, slot, seg);
    *slot_out = slot;
    *ref_out = ref;
out:
    dsm__control_unlock(ctl);
    return rc;
}

int dsm__control_ref_release(struct dsm_control *ctl, uint32_t slot, uint32_t ref)
{
    struct dsm_control_slot *s = &ctl->slots[slot];
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc; /* the reference stays counted: a leak the next reset removes */
    if ((rc = check_claim(ctl, slot, ref, ST(DSM_SLOT_LIVE))) < 0)
        goto out;
    ctl->hdr->counters.detaches++;
    if (s->refcnt <= 1) {
        s->refcnt = 0;
        DSM_CTL_STEP();
        DSM_CTL_STORE_LAST(s->state, (uint8_t)DSM_SLOT_DYING); /* the ref stays as the claim */
        rc = 1;
    } else {
        s->refcnt--;
        DSM_CTL_STEP();
        rc = ref_free(ctl, ref);
    }
out:
    dsm__control_unlock(ctl);
    return rc;
}

/* Free a slot whose object is gone, and its claim (lock held). */
static int release_locked(struct dsm_control *ctl, uint32_t slot, uint32_t ref)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_slot *s = &ctl->slots[slot];
    int rc;

    uint8_t was;

    if ((rc = check_claim(ctl, slot, ref, ST(DSM_SLOT_CREATING) | ST(DSM_SLOT_DYING))) < 0)
        return rc;
    was = s->state;
    /* The slot first, the claim last (see slot_reserve for why). */
    DSM_CTL_STORE_FIRST(s->state, (uint8_t)DSM_SLOT_FREE);
    DSM_CTL_STEP();
    s->refcnt = 0;
    s->pinned = 0;
    if (s->flags & DSM_SLOT_ORPHAN)
        h->orphans--;
    s->flags = 0;
    s->next_free = h->slot_free;
    h->slot_free = slot;
    h->slots_used--;
    if (s->size)
        h->destroys++;
    if (was == DSM_SLOT_DYING) /* live_bytes counts LIVE and DYING slots (see repair) */
        h->counters.live_bytes -=
            s->size < h->counters.live_bytes ? s->size : h->counters.live_bytes;
    DSM_CTL_STEP();
    return ref_free(ctl, ref);
}

int dsm__control_ref_release_served(struct dsm_control *ctl, uint32_t slot, uint32_t ref,
                                    int (*give)(void *arg, dsm_handle handle), void *arg)
{
    struct dsm_control_slot *s = &ctl->slots[slot];
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc; /* the reference stays counted: a leak the next reset removes */
    if ((rc = check_claim(ctl, slot, ref, ST(DSM_SLOT_LIVE))) < 0)
        goto out;
    ctl->hdr->counters.detaches++;
    if (s->refcnt > 1) {
        s->refcnt--;
        DSM_CTL_STEP();
        rc = ref_free(ctl, ref);
        goto out;
    }
    s->refcnt = 0;
    DSM_CTL_STEP();
    DSM_CTL_STORE_LAST(s->state, (uint8_t)DSM_SLOT_DYING); /* the ref stays as the claim */
    DSM_CTL_STEP();
    rc = 1;
    /* Its memory is pages of the region: give them back and free the slot here. */
    if ((s->flags & DSM_SLOT_REGION) && give(arg, s->handle) == 0 &&
        release_locked(ctl, slot, ref) == 0)
        rc = 2;
out:
    dsm__control_unlock(ctl);
    return rc;
}

int dsm__control_slot_release(struct dsm_control *ctl, uint32_t slot, uint32_t ref)
{
    int rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    rc = release_locked(ctl, slot, ref);
    dsm__control_unlock(ctl);
    return rc;
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
        DSM_CTL_STEP();
        s->refcnt++;
        DSM_CTL_STEP();
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
    if (slot == NONE || ctl->slots[slot].state != DSM_SLOT_LIVE) {
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
    rc = ref_alloc(ctl, proc, slot, &claim);
    if (rc != 0) {
        rc = rc > 0 ? out_of_refs() : rc;
        goto out;
    }
    s->pinned = 0;
    DSM_CTL_STEP();
    if (s->refcnt <= 1) {
        s->refcnt = 0;
        DSM_CTL_STEP();
        DSM_CTL_STORE_LAST(s->state, (uint8_t)DSM_SLOT_DYING);
        dsm__control_slot_segment(ctl, slot, seg);
        *slot_out = slot;
        *ref_out = claim;
        rc = 1;
    } else {
        s->refcnt--;
        DSM_CTL_STEP();
        rc = ref_free(ctl, claim);
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

/*
 * Hand the claim of `slot` (held through ref r by another process) to
 * `self`: the slot is DYING from here on (lock held).
 */
static int take_over(struct dsm_control *ctl, uint32_t r, uint32_t slot, uint32_t self,
                     uint32_t *claim)
{
    struct dsm_control_slot *s = &ctl->slots[slot];
    int rc;

    s->refcnt = 0;
    if (s->state == DSM_SLOT_CREATING) /* DYING slots count in live_bytes */
        ctl->hdr->counters.live_bytes += s->size;
    DSM_CTL_STEP();
    DSM_CTL_STORE_LAST(s->state, (uint8_t)DSM_SLOT_DYING);
    DSM_CTL_STEP();
    /* Dying between these two leaves a DYING slot without a claim: an orphan repair adopts. */
    if ((rc = ref_free(ctl, r)) < 0)
        return rc;
    rc = ref_alloc(ctl, self, slot, claim); /* pops r straight back */
    return rc > 0 ? out_of_refs() : rc;
}

int dsm__control_member_handles(struct dsm_control *ctl, const struct dsm_control_member *m,
                                dsm_handle *out, int max)
{
    struct dsm_control_header *h = ctl->hdr;
    struct dsm_control_proc *p;
    uint32_t steps = 0;
    int n = 0, rc;

    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    p = member_entry(ctl, m);
    for (uint32_t r = p ? p->ref_head : NONE; r != NONE && n < max; r = ctl->refs[r].next) {
        if (bad_index(r, h->nrefs, false) || ctl->refs[r].proc != m->index ||
            bad_index(ctl->refs[r].slot, h->nslots, false) || ++steps > h->nrefs) {
            rc = dsm__control_corrupt(ctl, "a process's reference list", r, h->nrefs);
            break;
        }
        if (ctl->slots[ctl->refs[r].slot].state == DSM_SLOT_LIVE &&
            ctl->slots[ctl->refs[r].slot].pinned)
            out[n++] = ctl->slots[ctl->refs[r].slot].handle;
    }
    dsm__control_unlock(ctl);
    return rc < 0 ? rc : n;
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
    if (p == NULL)
        goto out;
    while (p->ref_head != NONE && n < max) {
        uint32_t r = p->ref_head, slot;
        struct dsm_control_slot *s;

        if (bad_index(r, h->nrefs, false) || ctl->refs[r].proc != dead->index ||
            bad_index(ctl->refs[r].slot, h->nslots, false)) {
            rc = dsm__control_corrupt(ctl, "a dead process's reference list", r, h->nrefs);
            goto out;
        }
        slot = ctl->refs[r].slot;
        s = &ctl->slots[slot];
        h->counters.reclaims++;
        if (s->state == DSM_SLOT_LIVE && s->refcnt > 1) {
            s->refcnt--; /* others still hold it: just drop the dead worker's share */
            DSM_CTL_STEP();
            if ((rc = ref_free(ctl, r)) < 0)
                goto out;
            continue;
        }
        /* The last reference, a half-created segment, or an unfinished destroy:
         * this process takes over the claim and destroys the OS object. */
        if ((rc = take_over(ctl, r, slot, self, &claims[n].ref)) < 0)
            goto out;
        claims[n].slot = slot;
        n++;
    }
    if (p->ref_head == NONE) {
        DSM_CTL_STORE_FIRST(p->state, (uint32_t)DSM_PROC_FREE);
        DSM_CTL_STEP();
        p->next_free = h->proc_free;
        h->proc_free = dead->index;
        h->procs_used--;
        DSM_CTL_STEP();
    }
    rc = n;
out:
    dsm__control_unlock(ctl);
    /* Claims already taken are the caller's to finish even if a later entry was bad. */
    return rc < 0 && n == 0 ? rc : n;
}

int dsm__control_orphans(struct dsm_control *ctl, uint32_t self, struct dsm_claim *claims,
                         int max)
{
    const struct dsm_control_header *h = ctl->hdr;
    uint32_t budget = h->nrefs;
    int n = 0, rc;

    if (DSM_CTL_LOAD(ctl->hdr->orphans) == 0)
        return 0; /* the common case, without the lock */
    if ((rc = dsm__control_lock(ctl)) < 0)
        return rc;
    for (uint32_t r = ctl->procs[self].ref_head; r != NONE && n < max && budget > 0; budget--) {
        uint32_t slot;

        if (bad_index(r, h->nrefs, false) || bad_index(ctl->refs[r].slot, h->nslots, false))
            break; /* repair happens at the next operation that needs this list */
        slot = ctl->refs[r].slot;
        if ((ctl->slots[slot].flags & DSM_SLOT_ORPHAN) &&
            ctl->slots[slot].state == DSM_SLOT_DYING) {
            claims[n].slot = slot;
            claims[n].ref = r;
            n++;
        }
        r = ctl->refs[r].next;
    }
    dsm__control_unlock(ctl);
    return n;
}
