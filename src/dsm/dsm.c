/* SPDX-License-Identifier: MIT */
/*
 * dsm.c - segments as applications see them: create, attach, detach,
 * pinning and on-detach callbacks, over the control table and a backend.
 *
 * The control table says which segments exist and who holds them; this
 * file keeps the process's own view (a hash of its mappings by handle, so
 * "already attached?" and dsm_find_mapping() are O(1)).  System calls run
 * outside both locks: a create or attach only ever holds a lock for a few
 * table updates, so processes and threads do not queue behind each other's
 * mmap or posix_fallocate.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dsm_int.h"
#include "keeper.h"
#include "../dsm_impl/region.h"
#include "services.h"

struct dsm_process dsm__p = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .lock_fd = -1,
};

/* Collisions with foreign or stale objects are rare; this many in a row is not. */
#define DSM_CREATE_MAX_TRIES 64

int dsm__check_ready(void)
{
    if (dsm__p.forked)
        return dsm__error(DSM_ESTATE, "this process was forked from a dynshm process; call "
                                      "dsm_worker_init_after_fork() first");
    if (!dsm__p.initialised)
        return dsm__error(DSM_ESTATE, "dynamic shared memory is not initialised in this "
                                      "process (call dsm_supervisor_start() or "
                                      "dsm_worker_attach())");
    if (dsm__p.disabled)
        return dsm__impl_disabled();
    return 0;
}

/* ---- the mapping table ---------------------------------------------------- */

static size_t bucket_of(dsm_handle h, size_t nbuckets)
{
    return (size_t)(dsm__mix64(h) & (nbuckets - 1));
}

dsm_segment *dsm__lookup(dsm_handle handle)
{
    dsm_segment *s;

    if (dsm__p.nbuckets == 0)
        return NULL;
    for (s = dsm__p.buckets[bucket_of(handle, dsm__p.nbuckets)]; s; s = s->hash_next)
        if (s->handle == handle)
            return s;
    return NULL;
}

static int grow(void)
{
    size_t n = dsm__p.nbuckets ? dsm__p.nbuckets * 2 : 64;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    dsm_segment **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    for (size_t i = 0; i < dsm__p.nbuckets; i++) {
        dsm_segment *s = dsm__p.buckets[i], *next;

        for (; s; s = next) {
            size_t k = bucket_of(s->handle, n);

            next = s->hash_next;
            s->hash_next = b[k];
            b[k] = s;
        }
    }
    free(dsm__p.buckets);
    dsm__p.buckets = b;
    dsm__p.nbuckets = n;
    return 0;
}

int dsm__remember(dsm_segment *seg)
{
    size_t k;
    int rc;

    if (dsm__p.nsegs >= dsm__p.nbuckets && (rc = grow()) < 0)
        return rc;
    k = bucket_of(seg->handle, dsm__p.nbuckets);
    seg->hash_next = dsm__p.buckets[k];
    dsm__p.buckets[k] = seg;
    seg->all_prev = NULL;
    seg->all_next = dsm__p.all;
    if (dsm__p.all)
        dsm__p.all->all_prev = seg;
    dsm__p.all = seg;
    dsm__p.nsegs++;
    return 0;
}

void dsm__forget(dsm_segment *seg)
{
    dsm_segment **pp = &dsm__p.buckets[bucket_of(seg->handle, dsm__p.nbuckets)];

    while (*pp && *pp != seg)
        pp = &(*pp)->hash_next;
    if (*pp)
        *pp = seg->hash_next;
    if (seg->all_prev)
        seg->all_prev->all_next = seg->all_next;
    else
        dsm__p.all = seg->all_next;
    if (seg->all_next)
        seg->all_next->all_prev = seg->all_prev;
    dsm__p.nsegs--;
    dsm__owner_unlink(seg);
}

static void free_segment(dsm_segment *seg)
{
    while (seg->callbacks) {
        struct dsm_callback *cb = seg->callbacks;

        seg->callbacks = cb->next;
        free(cb);
    }
    free(seg);
}

void dsm__forget_all(bool unmap, bool inherited)
{
    while (dsm__p.all) {
        dsm_segment *seg = dsm__p.all;

        dsm__forget(seg);
        if (seg->impl.address && (unmap || (inherited && !seg->dontfork)))
            dsm_impl_detach(dsm__p.inst, &seg->impl);
        else if (inherited) /* memfd: the descriptor was inherited, the mapping was not */
            dsm__impl_forget(dsm__p.inst, &seg->impl);
        free_segment(seg);
    }
    free(dsm__p.buckets);
    dsm__p.buckets = NULL;
    dsm__p.nbuckets = 0;
    dsm__p.nsegs = 0;
}

bool dsm__claim_detach(dsm_segment *seg)
{
    if (seg->attaching || seg->detaching)
        return false;
    seg->detaching = true;
    dsm__owner_unlink(seg);
    return true;
}

void dsm__run_callbacks(dsm_segment *seg)
{
    /* Newest first, each unlinked before it runs: it may detach other segments
     * or register more callbacks on this one. */
    while (seg->callbacks) {
        struct dsm_callback *cb = seg->callbacks;

        seg->callbacks = cb->next;
        cb->fn(seg, cb->arg);
        free(cb);
    }
}

/* ---- references ------------------------------------------------------------ */

int dsm__finish_claim(uint32_t slot, uint32_t ref)
{
    dsm_impl_segment seg;
    int rc;

    dsm__control_slot_segment(&dsm__p.ctl, slot, &seg);
    rc = dsm_impl_destroy(dsm__p.inst, &seg);
    /* Test the code, not errno: DSM_EFOREIGN leaves errno as it was. */
    if (rc < 0 && rc != -ENOENT)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    if (dsm__control_slot_release(&dsm__p.ctl, slot, ref) < 0)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    return rc == 0;
}

/* dsm__control_ref_release_served()'s give: a region segment's pages back. */
static int give_region(void *arg, dsm_handle handle)
{
    return dsm__region_free(arg, handle);
}

void dsm__release_ref(uint32_t slot, uint32_t ref)
{
    int rc;

    if (dsm__p.inst->region != NULL) {
        /* A region segment's last reference frees pages and slot in one section. */
        dsm__region_nest(true);
        rc = dsm__control_ref_release_served(&dsm__p.ctl, slot, ref, give_region, dsm__p.inst);
        dsm__region_nest(false);
        if (rc == 2)
            return;
    } else {
        rc = dsm__control_ref_release(&dsm__p.ctl, slot, ref);
    }

    if (rc < 0)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    if (rc == 1) /* last reference: this process destroys the segment, then frees the slot */
        dsm__finish_claim(slot, ref);
}

/*
 * Keep a new mapping out of fork children: a child must not hold a
 * segment's memory after every counted reference is gone (a 256 MB segment
 * would stay in Shmem until the child exits), and a child attaches what it
 * needs again after dsm_worker_init_after_fork().  If the kernel refuses,
 * the child unmaps it in dsm_worker_init_after_fork() instead.
 */
static void no_fork_inherit(dsm_segment *seg)
{
    /* A region segment is part of the region's mapping, which children do inherit. */
    if (dsm__region_seg(&seg->impl)) {
        seg->region = true;
        return;
    }
    seg->dontfork = madvise(seg->impl.address, seg->impl.size, MADV_DONTFORK) == 0;
}

/* The region's part of a create, called under the control lock (see dsm_create). */
struct carve {
    dsm_impl_segment *seg;
    unsigned prep; /* what dsm__region_prepare() must do once the lock is released */
};

static int carve_region(void *arg, dsm_handle handle, size_t size)
{
    struct carve *c = arg;

    return dsm__region_carve(dsm__p.inst, handle, size, c->seg, &c->prep);
}

/* ---- the API ---------------------------------------------------------------- */

int dsm_create(size_t size, int flags, dsm_segment **out)
{
    dsm_segment *seg;
    int rc, tries = 0;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the segment");
    *out = NULL;
    if ((rc = dsm__check_ready()) < 0)
        return rc;
    if (size == 0 || size > DSM_IMPL_MAX_SIZE)
        return dsm__error(-EINVAL, "invalid dynamic shared memory segment size %zu: it must be "
                                   "between 1 and %zu bytes", size, DSM_IMPL_MAX_SIZE);
    if (flags & ~DSM_CREATE_NULL_IF_MAXSEGMENTS)
        return dsm__error(-EINVAL, "invalid flags 0x%x for dsm_create", (unsigned)flags);
    seg = calloc(1, sizeof(*seg));
    if (seg == NULL)
        return dsm__error(-ENOMEM, "out of memory");

    /*
     * The region first: pages of memory every process already maps, carved
     * and published in the same control-lock section as the reservation,
     * no system call.  What does not fit, or finds it full, goes to the
     * backend as before; both outcomes are counted for operators.
     */
    seg->slot = UINT32_MAX;
    if (dsm__p.inst->region != NULL) {
        struct carve c = {.seg = &seg->impl};

        dsm__region_nest(true);
        rc = dsm__control_slot_create_served(&dsm__p.ctl, dsm__p.proc, size, carve_region, &c,
                                             &seg->handle, &seg->slot, &seg->ref);
        dsm__region_nest(false);
        if (rc == 0 || rc == 1)
            __atomic_fetch_add(rc == 0 ? &dsm__p.ctl.hdr->counters.region_hits
                                       : &dsm__p.ctl.hdr->counters.region_fallbacks,
                               1, __ATOMIC_RELAXED);
        if (rc == 0 && dsm__region_prepare(dsm__p.inst, &seg->impl, c.prep) != 0) {
            /* No memory for pages the region had given back: the backend's turn. */
            dsm__release_ref(seg->slot, seg->ref);
            memset(&seg->impl, 0, sizeof(seg->impl));
            seg->slot = UINT32_MAX;
            rc = 1;
        }
    } else {
        rc = 1;
    }
    if (rc == 1 && seg->slot == UINT32_MAX &&
        (rc = dsm__control_slot_reserve(&dsm__p.ctl, dsm__p.proc, &seg->handle, &seg->slot,
                                        &seg->ref)) == 0)
        rc = 1;
    if (rc < 0) {
        if (seg->slot != UINT32_MAX) { /* the region failed after the reservation */
            struct dsm__saved_error e;

            dsm__error_save(&e, rc);
            dsm__control_slot_release(&dsm__p.ctl, seg->slot, seg->ref);
            dsm__control_count_create_failure(&dsm__p.ctl, rc);
            dsm__error_restore(&e);
        }
        free(seg);
        if (rc == DSM_ENOSLOTS && (flags & DSM_CREATE_NULL_IF_MAXSEGMENTS))
            return 0;
        return rc;
    }
    if (rc == 0) /* served from the region: published already */
        goto mapped;
    /* A collision means someone else's object has our would-be name: new handle. */
    while ((rc = dsm_impl_create(dsm__p.inst, seg->handle, size, &seg->impl)) == -EEXIST &&
           ++tries < DSM_CREATE_MAX_TRIES) {
        if ((rc = dsm__control_slot_rehandle(&dsm__p.ctl, seg->slot, seg->ref,
                                             &seg->handle)) < 0)
            break;
    }
    if (rc == -EEXIST)
        rc = dsm__error(-EEXIST, "could not find a free name for a shared memory segment "
                                 "after %d tries", tries);
    if (rc < 0) {
        /* No object exists: give the slot back (its claim frees it). */
        struct dsm__saved_error e;

        dsm__error_save(&e, rc);
        dsm__control_slot_release(&dsm__p.ctl, seg->slot, seg->ref);
        dsm__control_count_create_failure(&dsm__p.ctl, rc);
        free(seg);
        return dsm__error_restore(&e);
    }
    /* The backend's size: huge pages round it up, and attach checks against it. */
    rc = dsm__control_slot_publish(&dsm__p.ctl, seg->slot, seg->ref, seg->impl.size,
                                   seg->impl.os_id);
    if (rc < 0) {
        /* The slot stays CREATING with our claim: destroy the object and free it. */
        struct dsm__saved_error e;

        dsm__error_save(&e, rc);
        dsm_impl_detach(dsm__p.inst, &seg->impl);
        dsm__finish_claim(seg->slot, seg->ref);
        free(seg);
        return dsm__error_restore(&e);
    }
mapped:
    no_fork_inherit(seg);

    pthread_mutex_lock(&dsm__p.mu);
    rc = dsm__remember(seg);
    if (rc == 0)
        dsm__owner_link(seg, dsm_resowner_current());
    pthread_mutex_unlock(&dsm__p.mu);
    if (rc < 0) {
        dsm_impl_detach(dsm__p.inst, &seg->impl);
        dsm__release_ref(seg->slot, seg->ref);
        free(seg);
        return rc;
    }
    *out = seg;
    return 0;
}

int dsm_attach(dsm_handle handle, dsm_segment **out)
{
    char hb[DSM_HANDLE_STRLEN];
    dsm_impl_segment want;
    dsm_segment *seg;
    int rc;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the segment");
    *out = NULL;
    if ((rc = dsm__check_ready()) < 0)
        return rc;
    if (handle == DSM_HANDLE_INVALID)
        return dsm__error(-EINVAL, "invalid dynamic shared memory handle 0");
    seg = calloc(1, sizeof(*seg));
    if (seg == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    seg->handle = handle;
    seg->attaching = true;

    /* Claim the handle locally first, so two threads cannot both attach it. */
    pthread_mutex_lock(&dsm__p.mu);
    if (dsm__lookup(handle) != NULL)
        rc = dsm__error(-EEXIST, "dynamic shared memory segment %s is already attached in "
                                 "this process", dsm_handle_format(handle, hb));
    else
        rc = dsm__remember(seg);
    pthread_mutex_unlock(&dsm__p.mu);
    if (rc < 0) {
        free(seg);
        return rc;
    }

    rc = dsm__control_ref_acquire(&dsm__p.ctl, dsm__p.proc, handle, &seg->slot, &seg->ref,
                                  &want);
    if (rc == 0) {
        rc = dsm_impl_attach(dsm__p.inst, handle, &seg->impl);
        if (rc == 0 && (seg->impl.size != want.size ||
                        (want.os_id >= 0 && seg->impl.os_id != want.os_id))) {
            /* What the name leads to is not what the table recorded. */
            dsm_impl_detach(dsm__p.inst, &seg->impl);
            rc = dsm__error(DSM_EFOREIGN, "shared memory segment %s does not match the control "
                                          "segment's record (%zu bytes recorded, %zu found)",
                            dsm_handle_format(handle, hb), (size_t)want.size, seg->impl.size);
        }
        if (rc < 0)
            dsm__release_ref(seg->slot, seg->ref);
        else
            no_fork_inherit(seg);
    }

    pthread_mutex_lock(&dsm__p.mu);
    if (rc < 0) {
        dsm__forget(seg);
    } else {
        seg->attaching = false;
        dsm__owner_link(seg, dsm_resowner_current());
    }
    pthread_mutex_unlock(&dsm__p.mu);
    if (rc < 0) {
        free(seg);
        return rc;
    }
    *out = seg;
    return 0;
}

int dsm__detach_claimed(dsm_segment *seg, bool run_callbacks)
{
    int rc;

    if (run_callbacks)
        dsm__run_callbacks(seg);
    pthread_mutex_lock(&dsm__p.mu);
    dsm__forget(seg);
    pthread_mutex_unlock(&dsm__p.mu);
    rc = dsm_impl_detach(dsm__p.inst, &seg->impl);
    if (rc < 0)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    dsm__release_ref(seg->slot, seg->ref);
    free_segment(seg);
    return rc < 0 ? rc : 0;
}

int dsm_detach(dsm_segment *seg)
{
    bool mine;

    if (seg == NULL)
        return dsm__error(-EINVAL, "invalid dynamic shared memory segment");
    if (dsm__p.forked)
        return dsm__check_ready();
    pthread_mutex_lock(&dsm__p.mu);
    mine = dsm__claim_detach(seg);
    pthread_mutex_unlock(&dsm__p.mu);
    if (!mine)
        return dsm__error(-EINVAL, "dynamic shared memory segment %016llx is being attached or "
                                   "detached by another thread", (unsigned long long)seg->handle);
    return dsm__detach_claimed(seg, true);
}

void dsm_detach_all(void)
{
    for (;;) {
        dsm_segment *seg;

        /* Find and claim in one critical section, so no other path detaches it too. */
        pthread_mutex_lock(&dsm__p.mu);
        for (seg = dsm__p.all; seg && !dsm__claim_detach(seg); seg = seg->all_next)
            ;
        pthread_mutex_unlock(&dsm__p.mu);
        if (seg == NULL)
            break;
        dsm__detach_claimed(seg, true);
    }
}

void *dsm_segment_address(const dsm_segment *seg)
{
    return seg ? seg->impl.address : NULL;
}

size_t dsm_segment_map_length(const dsm_segment *seg)
{
    return seg ? seg->impl.size : 0;
}

dsm_handle dsm_segment_handle(const dsm_segment *seg)
{
    return seg ? seg->handle : DSM_HANDLE_INVALID;
}

dsm_segment *dsm_find_mapping(dsm_handle handle)
{
    dsm_segment *seg;

    pthread_mutex_lock(&dsm__p.mu);
    seg = dsm__lookup(handle);
    if (seg && seg->attaching)
        seg = NULL;
    pthread_mutex_unlock(&dsm__p.mu);
    return seg;
}

int dsm_pin_mapping(dsm_segment *seg)
{
    if (seg == NULL || seg->attaching)
        return dsm__error(-EINVAL, "invalid dynamic shared memory segment");
    pthread_mutex_lock(&dsm__p.mu);
    dsm__owner_unlink(seg);
    pthread_mutex_unlock(&dsm__p.mu);
    return 0;
}

int dsm_unpin_mapping(dsm_segment *seg)
{
    if (seg == NULL || seg->attaching)
        return dsm__error(-EINVAL, "invalid dynamic shared memory segment");
    pthread_mutex_lock(&dsm__p.mu);
    if (seg->owner == NULL)
        dsm__owner_link(seg, dsm_resowner_current());
    pthread_mutex_unlock(&dsm__p.mu);
    return 0;
}

int dsm_pin_segment(dsm_segment *seg)
{
    int rc, kept;

    if (seg == NULL || seg->attaching)
        return dsm__error(-EINVAL, "invalid dynamic shared memory segment");
    if ((rc = dsm__check_ready()) < 0)
        return rc;
    /* memfd: the pin needs a holder that outlives every mapping, first (keeper.c).
     * A region segment needs none: the region outlives every segment in it. */
    if ((kept = seg->region ? 0 : dsm__keeper_pin(seg)) < 0)
        return kept;
    if ((rc = dsm__control_pin(&dsm__p.ctl, seg->slot, seg->handle)) < 0 && kept == 1) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%s", dsm_errmsg());
        dsm__keeper_unpin(seg->handle);
        return dsm__error(rc, "%s", msg);
    }
    return rc;
}

int dsm_unpin_segment(dsm_handle handle)
{
    dsm_impl_segment seg;
    uint32_t slot, ref;
    int rc;

    if ((rc = dsm__check_ready()) < 0)
        return rc;
    rc = dsm__control_unpin(&dsm__p.ctl, dsm__p.proc, handle, &slot, &ref, &seg);
    if (rc == 1) {
        /* Pinned and unmapped everywhere: the unpinner destroys it. */
        int drc = dsm_impl_destroy(dsm__p.inst, &seg);

        /* Test the code, not errno: DSM_EFOREIGN leaves errno as it was. */
        if (drc < 0 && drc != -ENOENT)
            dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
        dsm__control_slot_release(&dsm__p.ctl, slot, ref);
        rc = 0;
    }
    if (rc == 0)
        dsm__keeper_unpin(handle);
    return rc;
}

int dsm_on_detach(dsm_segment *seg, dsm_on_detach_callback fn, void *arg)
{
    struct dsm_callback *cb;

    if (seg == NULL || fn == NULL)
        return dsm__error(-EINVAL, "invalid segment or callback");
    cb = malloc(sizeof(*cb));
    if (cb == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    cb->fn = fn;
    cb->arg = arg;
    cb->next = seg->callbacks;
    seg->callbacks = cb;
    return 0;
}

int dsm_cancel_on_detach(dsm_segment *seg, dsm_on_detach_callback fn, void *arg)
{
    struct dsm_callback **pp;

    if (seg == NULL)
        return dsm__error(-EINVAL, "invalid dynamic shared memory segment");
    for (pp = &seg->callbacks; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->arg == arg) {
            struct dsm_callback *cb = *pp;

            *pp = cb->next;
            free(cb);
            return 0;
        }
    }
    return dsm__error(-ENOENT, "no such on-detach callback is registered");
}

/* ---- services for the layers above (services.h) ------------------------------ */

static _Atomic uint32_t *critical_word(void)
{
    if (!dsm__p.initialised || dsm__p.forked || dsm__p.disabled || dsm__p.ctl.procs == NULL)
        return NULL;
    return &dsm__p.ctl.procs[dsm__p.proc].critical;
}

void dsm__critical_enter(void)
{
    _Atomic uint32_t *w = critical_word();

    /* Acquire: no store of the section may be hoisted above the count. */
    if (w)
        atomic_fetch_add_explicit(w, 1, memory_order_acquire);
}

void dsm__critical_leave(void)
{
    _Atomic uint32_t *w = critical_word();

    /* Release: every store of the section is done before the count drops. */
    if (w)
        atomic_fetch_sub_explicit(w, 1, memory_order_release);
}

static uint64_t *anchor_word(unsigned which)
{
    if (!dsm__p.initialised || dsm__p.forked || dsm__p.disabled || dsm__p.ctl.hdr == NULL ||
        which >= DSM_CONTROL_ANCHORS)
        return NULL;
    return &dsm__p.ctl.hdr->anchors[which];
}

uint64_t dsm__anchor_load(unsigned which)
{
    uint64_t *w = anchor_word(which);

    return w ? __atomic_load_n(w, __ATOMIC_ACQUIRE) : 0;
}

bool dsm__anchor_cas(unsigned which, uint64_t expected, uint64_t desired)
{
    uint64_t *w = anchor_word(which);

    return w && __atomic_compare_exchange_n(w, &expected, desired, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE);
}

int dsm__segment_usage(dsm_handle handle, uint64_t *size, uint32_t *holders)
{
    const struct dsm_control_slot *s;
    uint32_t slot = (uint32_t)handle, refs, pinned;

    if (!dsm__p.initialised || dsm__p.forked || dsm__p.disabled || dsm__p.ctl.hdr == NULL ||
        slot >= dsm__p.ctl.hdr->nslots)
        return -ENOENT;
    s = &dsm__p.ctl.slots[slot];
    if (__atomic_load_n(&s->handle, __ATOMIC_ACQUIRE) != handle ||
        __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != DSM_SLOT_LIVE)
        return -ENOENT;
    refs = __atomic_load_n(&s->refcnt, __ATOMIC_RELAXED);
    pinned = __atomic_load_n(&s->pinned, __ATOMIC_RELAXED) ? 1 : 0;
    *size = __atomic_load_n(&s->size, __ATOMIC_RELAXED);
    *holders = refs >= pinned ? refs - pinned : 0;
    return 0;
}

uint32_t dsm__self_index(void)
{
    if (!dsm__p.initialised || dsm__p.forked || dsm__p.disabled || dsm__p.ctl.procs == NULL)
        return UINT32_MAX;
    return dsm__p.proc;
}
