/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - read-only views of an instance, for operator tools (dsmctl).
 *
 * A supervisor, its workers and the operator all read one control segment,
 * but only the first two may change it.  This file is what the operator
 * gets: the way from a data directory to its validated control segment
 * (the same steps start-up cleanup and dsm_worker_attach() take, stopping
 * at the first that fails and saying why), a snapshot that copies the live
 * entries in one short critical section so that a slow terminal never
 * holds the server's lock.  (Whether destroy would remove something is the
 * backend's probe op, dsm__impl_probe(): only the backend knows.)
 *
 * Deliberately not here: deciding whether an instance is alive (that is the
 * data directory lock, the tool's business) and destroying anything.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/internal.h"
#include "../dsm_impl/dsm_impl_int.h"
#include "inspect.h"

/* ---- from a data directory to its control segment -------------------------- */

static void keep_msg(struct dsm__inspect_target *t)
{
    snprintf(t->msg, sizeof(t->msg), "%s", dsm_errmsg());
}

int dsm__inspect_open(const char *datadir, struct dsm__inspect_target *t)
{
    dsm_impl_instance *dir;
    int rc;

    memset(t, 0, sizeof(*t));
    t->state_rc = DSM_ESTATE;
    t->control_rc = DSM_ESTATE;
    /* The backend none opens nothing: this only checks the directory and names it. */
    rc = dsm_impl_instance_open(DSM_IMPL_NONE, datadir, &dir);
    if (rc < 0)
        return rc;
    t->instance_id = dir->id;
    snprintf(t->instance, sizeof(t->instance), "%s", dir->idstr);
    dsm_impl_instance_close(dir);

    t->state_rc = dsm__state_read(datadir, &t->rec);
    if (t->state_rc < 0) {
        keep_msg(t);
        return 0;
    }
    if (t->rec.instance_id != t->instance_id) {
        t->state_rc = DSM_EFOREIGN;
        snprintf(t->msg, sizeof(t->msg), "the state file names instance %016llx, but this data "
                                         "directory is instance %s (was it copied?)",
                 (unsigned long long)t->rec.instance_id, t->instance);
        return 0;
    }
    if (t->rec.backend == DSM_IMPL_MMAP) {
        char path[4096];
        struct stat st;

        /* Opening would create the directory: a missing one means nothing is left. */
        snprintf(path, sizeof(path), "%s/" DSM_INSPECT_MMAP_DIR, datadir);
        if (lstat(path, &st) != 0 && errno == ENOENT) {
            t->control_rc = -ENOENT;
            snprintf(t->msg, sizeof(t->msg), "directory \"%s/" DSM_INSPECT_MMAP_DIR "\" does not "
                     "exist", datadir);
            return 0;
        }
    }
    rc = dsm_impl_instance_open(t->rec.backend, datadir, &t->inst);
    if (rc < 0) {
        t->control_rc = rc;
        keep_msg(t);
        return 0;
    }
    if (t->rec.backend == DSM_IMPL_NONE) {
        t->control_rc = DSM_EDISABLED;
        snprintf(t->msg, sizeof(t->msg), "the backend is none: there is no control segment");
        return 0;
    }
    t->control_rc = dsm__control_attach(t->inst, t->rec.control, &t->ctl);
    if (t->control_rc < 0)
        keep_msg(t);
    return 0;
}

void dsm__inspect_close(struct dsm__inspect_target *t)
{
    if (t->ctl.hdr != NULL)
        dsm__control_detach(t->inst, &t->ctl);
    dsm_impl_instance_close(t->inst);
    t->inst = NULL;
}

/* ---- snapshot ----------------------------------------------------------------- */

struct holding {
    uint32_t slot, proc; /* proc: index into the snapshot's procs */
};

static int cmp_holding(const void *a, const void *b)
{
    const struct holding *x = a, *y = b;

    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->proc < y->proc ? -1 : x->proc > y->proc;
}

/* Room for n counted entries (read without the lock) plus growth meanwhile. */
static size_t room(uint64_t n, uint32_t capacity)
{
    uint64_t want = n + n / 4 + 64;

    return (size_t)(want < capacity ? want : capacity);
}

/*
 * The critical section: copy the header, every slot that is not FREE, every
 * ACTIVE process and, walking each process's ref list, who holds which slot.
 * Counts what it finds even past the buffers' room, so the caller can retry
 * with bigger ones.  Touches nslots + procs + refs in use entries.
 */
static void copy_locked(const struct dsm_control *ctl, struct dsm__snapshot *snap,
                        size_t seg_room, size_t proc_room, struct holding *hold,
                        size_t hold_room, size_t *nseg, size_t *nproc, size_t *nhold)
{
    const struct dsm_control_header *h = ctl->hdr;
    uint32_t budget = h->nrefs; /* bounds every walk, whatever the lists say */

    memcpy(&snap->hdr, h, sizeof(snap->hdr));
    *nseg = *nproc = *nhold = 0;
    for (uint32_t i = 0; i < h->nslots; i++) {
        const struct dsm_control_slot *s = &ctl->slots[i];

        /* A handle always encodes its slot: anything else is not a segment we know. */
        if (s->state == DSM_SLOT_FREE || s->state > DSM_SLOT_DYING || (uint32_t)s->handle != i)
            continue;
        if (*nseg < seg_room) {
            struct dsm__snap_segment *o = &snap->segs[*nseg];

            o->handle = s->handle;
            o->size = s->size;
            o->os_id = s->os_id;
            o->slot = i;
            o->refcnt = s->refcnt;
            o->created = s->created;
            o->state = s->state;
            o->pinned = s->pinned;
            o->flags = s->flags;
        }
        (*nseg)++;
    }
    for (uint32_t i = 0; i < h->nprocs; i++) {
        const struct dsm_control_proc *p = &ctl->procs[i];
        size_t me = *nproc;

        if (p->state != DSM_PROC_ACTIVE)
            continue;
        if (me < proc_room) {
            snap->procs[me].pid = p->id.pid;
            snap->procs[me].start_time = p->id.start_time;
            snap->procs[me].nrefs = p->nrefs;
            snap->procs[me].flags = p->flags;
            snap->procs[me].registered_usec = p->registered_usec;
            snap->procs[me].supervisor = (p->flags & DSM_PROC_SUPERVISOR) != 0;
        }
        (*nproc)++;
        for (uint32_t r = p->ref_head; r != DSM_CONTROL_NONE && budget > 0; budget--) {
            const struct dsm_control_ref *ref;

            if (r >= h->nrefs)
                break;
            ref = &ctl->refs[r];
            if (ref->proc != i || ref->slot >= h->nslots)
                break; /* not this process's list any more: stop walking it */
            if (me < proc_room && *nhold < hold_room) {
                hold[*nhold].slot = ref->slot;
                hold[*nhold].proc = (uint32_t)me;
            }
            (*nhold)++;
            r = ref->next;
        }
    }
}

/* Attach the sorted holdings to the segments (both in slot order). */
static int link_holders(struct dsm__snapshot *snap, struct holding *hold, size_t nhold)
{
    size_t j = 0;

    qsort(hold, nhold, sizeof(*hold), cmp_holding);
    snap->holders = malloc((nhold ? nhold : 1) * sizeof(*snap->holders));
    if (snap->holders == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    for (uint32_t i = 0; i < snap->nsegs; i++) {
        struct dsm__snap_segment *s = &snap->segs[i];

        while (j < nhold && hold[j].slot < s->slot)
            j++; /* a reference to a slot that is not listed: nothing to show */
        s->first_holder = snap->nholders;
        for (; j < nhold && hold[j].slot == s->slot; j++) {
            if (s->nholders > 0 && snap->holders[snap->nholders - 1] == hold[j].proc)
                continue; /* one process, two refs (a mapping and a destroy claim) */
            snap->holders[snap->nholders++] = hold[j].proc;
            s->nholders++;
        }
    }
    return 0;
}

int dsm__inspect_snapshot(struct dsm_control *ctl, struct dsm__snapshot *snap, int timeout_ms)
{
    const struct dsm_control_header *h = ctl->hdr;
    size_t seg_room, proc_room, hold_room, nseg = 0, nproc = 0, nhold = 0;
    struct holding *hold = NULL;
    int rc;

    memset(snap, 0, sizeof(*snap));
    /* Counters read without the lock only size the buffers. */
    seg_room = room(h->slots_used, h->nslots);
    proc_room = room(h->procs_used, h->nprocs);
    hold_room = room(h->refs_used, h->nrefs);
    for (int attempt = 0;; attempt++) {
        snap->segs = malloc((seg_room ? seg_room : 1) * sizeof(*snap->segs));
        snap->procs = malloc((proc_room ? proc_room : 1) * sizeof(*snap->procs));
        hold = malloc((hold_room ? hold_room : 1) * sizeof(*hold));
        if (snap->segs == NULL || snap->procs == NULL || hold == NULL) {
            rc = dsm__error(-ENOMEM, "out of memory");
            goto fail;
        }
        memset(snap->segs, 0, (seg_room ? seg_room : 1) * sizeof(*snap->segs));
        memset(snap->procs, 0, (proc_room ? proc_room : 1) * sizeof(*snap->procs));
        if ((rc = dsm__control_lock_timed(ctl, timeout_ms)) < 0)
            goto fail;
        copy_locked(ctl, snap, seg_room, proc_room, hold, hold_room, &nseg, &nproc, &nhold);
        dsm__control_unlock(ctl);
        if (nseg <= seg_room && nproc <= proc_room && nhold <= hold_room)
            break;
        /* The table grew past the counters between reading them and locking. */
        if (attempt == 4) {
            rc = dsm__error(-EAGAIN, "the control segment changed too fast to be copied");
            goto fail;
        }
        free(snap->segs);
        free(snap->procs);
        free(hold);
        snap->segs = NULL;
        snap->procs = NULL;
        hold = NULL;
        seg_room = room(nseg, h->nslots);
        proc_room = room(nproc, h->nprocs);
        hold_room = room(nhold, h->nrefs);
    }
    snap->nsegs = (uint32_t)nseg;
    snap->nprocs = (uint32_t)nproc;
    if ((rc = link_holders(snap, hold, nhold)) < 0)
        goto fail;
    free(hold);
    /* Outside the lock: these read /proc. */
    for (uint32_t i = 0; i < snap->nprocs; i++) {
        struct dsm__snap_proc *p = &snap->procs[i];
        struct dsm__procid id = {.pid = p->pid, .start_time = p->start_time};

        p->alive = dsm__procid_alive(&id);
        snap->nalive += p->alive;
    }
    for (uint32_t i = 0; i < snap->nsegs; i++) {
        const struct dsm__snap_segment *s = &snap->segs[i];

        if (s->state != DSM_SLOT_LIVE)
            continue;
        snap->nlive++;
        snap->live_bytes += s->size;
        snap->npinned += s->pinned != 0;
    }
    return 0;

fail:
    free(hold);
    dsm__inspect_free(snap);
    return rc;
}

void dsm__inspect_free(struct dsm__snapshot *snap)
{
    free(snap->segs);
    free(snap->procs);
    free(snap->holders);
    snap->segs = NULL;
    snap->procs = NULL;
    snap->holders = NULL;
    snap->nsegs = snap->nprocs = snap->nholders = 0;
}

const char *dsm__inspect_state_name(unsigned state)
{
    switch (state) {
    case DSM_SLOT_FREE: return "free";
    case DSM_SLOT_CREATING: return "creating";
    case DSM_SLOT_LIVE: return "live";
    case DSM_SLOT_DYING: return "dying";
    default: return "invalid";
    }
}
