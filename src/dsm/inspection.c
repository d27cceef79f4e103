/* SPDX-License-Identifier: MIT */
/*
 * inspection.c - the public, read-only view of an instance (dynshm/inspect.h).
 *
 * A thin layer over src/control/inspect.c: that file finds the control
 * segment through the state file and copies it in one critical section;
 * this one adds what only the dsm layer knows (the data directory lock,
 * hence whether the instance runs) and turns the copy into the stable,
 * size-versioned structs of the public header.  Everything is computed at
 * open time, so the accessors are plain reads of private memory.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dynshm/inspect.h>

#include "../control/inspect.h"
#include "datadir.h"
#include "dsm_int.h"
#include "../dsm_impl/region.h"

struct dsm_inspection {
    struct dsm__snapshot snap;   /* first: its header is 64-byte aligned */
    char *datadir;
    dsm_instance_info info;
    char control_name[DSM_IMPL_NAME_MAX];
    char recorded_datadir[DSM_CONTROL_DATADIR_MAX];
    char **names;            /* per segment: its name in the system */
    uint64_t *bytes_mapped;  /* per process */
    pid_t *holder_pids;      /* snap.holders as pids */
};

static const char *kind_of(const struct dsm__snap_proc *p)
{
    if (p->flags & DSM_PROC_SUPERVISOR)
        return "supervisor";
    if (p->flags & DSM_PROC_EXECED)
        return "exec'd";
    return "forked";
}

/* Derive what the snapshot implies: names, holders' pids, bytes mapped. */
static int derive(struct dsm_inspection *x, const dsm_impl_instance *inst)
{
    const struct dsm__snapshot *s = &x->snap;

    x->names = calloc(s->nsegs ? s->nsegs : 1, sizeof(*x->names));
    x->bytes_mapped = calloc(s->nprocs ? s->nprocs : 1, sizeof(*x->bytes_mapped));
    x->holder_pids = calloc(s->nholders ? s->nholders : 1, sizeof(*x->holder_pids));
    if (!x->names || !x->bytes_mapped || !x->holder_pids)
        return dsm__error(-ENOMEM, "out of memory");
    for (uint32_t i = 0; i < s->nholders; i++)
        x->holder_pids[i] = s->procs[s->holders[i]].pid;
    for (uint32_t i = 0; i < s->nsegs; i++) {
        const struct dsm__snap_segment *g = &s->segs[i];
        char name[DSM_IMPL_NAME_MAX];

        if (g->flags & DSM_SLOT_REGION) {
            /* No object of its own: name the region it lives in. */
            char r[DSM_IMPL_NAME_MAX - 16];

            if (dsm_impl_segment_name(inst, dsm__region_handle(s->hdr.control_handle), r,
                                      sizeof(r)) < 0)
                r[0] = '\0';
            snprintf(name, sizeof(name), "region %s", r);
        } else if (dsm_impl_segment_name(inst, g->handle, name, sizeof(name)) < 0) {
            name[0] = '\0';
        }
        if ((x->names[i] = strdup(name)) == NULL)
            return dsm__error(-ENOMEM, "out of memory");
        if (g->state != DSM_SLOT_LIVE)
            continue;
        for (uint32_t k = 0; k < g->nholders; k++)
            x->bytes_mapped[s->holders[g->first_holder + k]] += g->size;
    }
    return 0;
}

static void fill_control(struct dsm_inspection *x)
{
    const struct dsm__snapshot *s = &x->snap;
    const struct dsm_control_header *h = &s->hdr;
    dsm_instance_info *i = &x->info;

    i->supervisor_pid = (pid_t)h->supervisor_pid;
    i->created_usec = h->created_usec;
    i->max_segments = h->nslots;
    i->max_processes = h->nprocs;
    i->max_mappings = h->nrefs;
    i->segments = s->nsegs;
    i->live_segments = s->nlive;
    i->pinned_segments = s->npinned;
    i->live_bytes = s->live_bytes;
    for (uint32_t k = 0; k < s->nsegs; k++) {
        i->creating_segments += s->segs[k].state == DSM_SLOT_CREATING;
        i->dying_segments += s->segs[k].state == DSM_SLOT_DYING;
    }
    i->processes = s->nprocs;
    i->alive_processes = s->nalive;
    i->mappings = h->refs_used;
    i->orphans = h->orphans;
    i->creates = h->creates;
    i->destroys = h->destroys;
    i->repairs = h->repairs;
    i->corruptions = h->corruptions;
    /* Validated as terminated; copied with its bound all the same. */
    snprintf(x->recorded_datadir, sizeof(x->recorded_datadir), "%.*s",
             (int)sizeof(h->datadir) - 1, h->datadir);
}

int dsm_inspect_open(const char *datadir, int timeout_ms, dsm_inspection **out)
{
    struct dsm__inspect_target t;
    struct dsm_inspection *x;
    bool held;
    long lock_pid;
    int rc;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the inspection");
    *out = NULL;
    if (datadir == NULL || datadir[0] == '\0')
        return dsm__error(-EINVAL, "a data directory is required");
    x = calloc(1, sizeof(*x));
    if (x == NULL || (x->datadir = strdup(datadir)) == NULL) {
        free(x);
        return dsm__error(-ENOMEM, "out of memory");
    }
    x->info.datadir = x->datadir;
    x->info.control_name = x->control_name;
    x->info.recorded_datadir = x->recorded_datadir;
    if ((rc = dsm__inspect_open(datadir, &t)) < 0) {
        free(x->datadir);
        free(x);
        return rc;
    }
    rc = dsm__datadir_probe(datadir, &x->info.lock_file, &held, &lock_pid);
    if (rc < 0)
        goto fail;
    x->info.lock_pid = (pid_t)lock_pid;
    memcpy(x->info.id, t.instance, sizeof(x->info.id));
    x->info.state_status = t.state_rc;
    x->info.control_status = t.control_rc;
    if (t.state_rc != 0 || t.control_rc != 0)
        snprintf(x->info.message, sizeof(x->info.message), "%s", t.msg);
    if (held)
        x->info.state = DSM_INSTANCE_RUNNING;
    else if (t.state_rc != -ENOENT)
        x->info.state = DSM_INSTANCE_DEAD;
    else
        x->info.state = x->info.lock_file ? DSM_INSTANCE_STOPPED : DSM_INSTANCE_NONE;
    if (t.state_rc == 0) {
        x->info.state_pid = t.rec.pid;
        x->info.backend = t.rec.backend;
        x->info.control = t.rec.control;
        x->info.control_size = t.rec.size;
        if (t.inst && t.rec.backend != DSM_IMPL_NONE &&
            dsm_impl_segment_name(t.inst, t.rec.control, x->control_name,
                                  sizeof(x->control_name)) < 0)
            x->control_name[0] = '\0';
    }
    if (t.control_rc == 0) {
        rc = dsm__inspect_snapshot(&t.ctl, &x->snap, timeout_ms);
        if (rc == 0)
            rc = derive(x, t.inst);
        if (rc < 0) {
            x->info.control_status = rc;
            snprintf(x->info.message, sizeof(x->info.message),
                     "could not read the control segment: %s", dsm_errmsg());
        } else {
            fill_control(x);
        }
    }
    dsm__inspect_close(&t);
    *out = x;
    return 0;

fail:
    dsm__inspect_close(&t);
    free(x->datadir);
    free(x);
    return rc;
}

void dsm_inspect_close(dsm_inspection *x)
{
    if (x == NULL)
        return;
    for (uint32_t i = 0; x->names && i < x->snap.nsegs; i++)
        free(x->names[i]);
    free(x->names);
    free(x->bytes_mapped);
    free(x->holder_pids);
    dsm__inspect_free(&x->snap);
    free(x->datadir);
    free(x);
}

/* Copy what fits of a filled struct into the caller's (possibly older, smaller) one. */
static int copy_out(void *out, size_t size, const void *full, size_t full_size)
{
    if (out == NULL || size == 0)
        return dsm__error(-EINVAL, "no place to return the information");
    memset(out, 0, size);
    memcpy(out, full, size < full_size ? size : full_size);
    return 0;
}

int dsm_inspect_instance(const dsm_inspection *x, dsm_instance_info *out, size_t size)
{
    if (x == NULL)
        return dsm__error(-EINVAL, "no inspection given");
    return copy_out(out, size, &x->info, sizeof(x->info));
}

size_t dsm_inspect_nsegments(const dsm_inspection *x)
{
    return x ? x->snap.nsegs : 0;
}

int dsm_inspect_segment(const dsm_inspection *x, size_t i, dsm_segment_info *out, size_t size)
{
    const struct dsm__snap_segment *g;
    dsm_segment_info info;

    if (x == NULL)
        return dsm__error(-EINVAL, "no inspection given");
    if (i >= x->snap.nsegs)
        return dsm__error(-ERANGE, "segment %zu does not exist (the snapshot has %u)", i,
                          (unsigned)x->snap.nsegs);
    g = &x->snap.segs[i];
    memset(&info, 0, sizeof(info));
    info.handle = g->handle;
    info.size = g->size;
    info.state = dsm__inspect_state_name(g->state);
    info.refcnt = g->refcnt;
    info.pinned = g->pinned != 0;
    info.created = g->created;
    info.os_id = g->os_id;
    info.name = x->names[i];
    info.nholders = g->nholders;
    info.region = (g->flags & DSM_SLOT_REGION) != 0;
    return copy_out(out, size, &info, sizeof(info));
}

int dsm_inspect_metrics(const dsm_inspection *x, dsm_metrics *out, size_t size)
{
    const struct dsm_control_header *h;
    const struct dsm_control_counters *c;
    dsm_metrics m;

    if (x == NULL)
        return dsm__error(-EINVAL, "no inspection given");
    if (x->info.control_status != 0)
        return dsm__error(-ENODATA, "no counters: the control segment of \"%s\" was not read",
                          x->datadir);
    h = &x->snap.hdr;
    c = &h->counters;
    memset(&m, 0, sizeof(m));
    m.since_usec = (int64_t)c->since_usec;
    m.creates = h->creates;
    m.destroys = h->destroys;
    m.attaches = c->attaches;
    m.detaches = c->detaches;
    m.repairs = h->repairs;
    m.resets = c->resets;
    m.reclaims = c->reclaims;
    m.corruptions = h->corruptions;
    m.create_enospc = c->create_enospc;
    m.create_failed = c->create_failed;
    m.segments = x->snap.nsegs;
    m.bytes = c->live_bytes;
    m.processes = x->snap.nprocs;
    m.peak_segments = c->peak_segments;
    m.peak_bytes = c->peak_bytes;
    m.peak_processes = c->peak_processes;
    m.bytes_created = c->bytes_created;
    m.region_size = c->region_size;
    m.region_hits = c->region_hits;
    m.region_fallbacks = c->region_fallbacks;
    return copy_out(out, size, &m, sizeof(m));
}

size_t dsm_inspect_segment_holders(const dsm_inspection *x, size_t i, pid_t *pids, size_t max)
{
    const struct dsm__snap_segment *g;

    if (x == NULL || i >= x->snap.nsegs)
        return 0;
    g = &x->snap.segs[i];
    for (size_t k = 0; k < g->nholders && k < max && pids; k++)
        pids[k] = x->holder_pids[g->first_holder + k];
    return g->nholders;
}

size_t dsm_inspect_nprocesses(const dsm_inspection *x)
{
    return x ? x->snap.nprocs : 0;
}

int dsm_inspect_process(const dsm_inspection *x, size_t i, dsm_process_info *out, size_t size)
{
    const struct dsm__snap_proc *p;
    dsm_process_info info;

    if (x == NULL)
        return dsm__error(-EINVAL, "no inspection given");
    if (i >= x->snap.nprocs)
        return dsm__error(-ERANGE, "process %zu does not exist (the snapshot has %u)", i,
                          (unsigned)x->snap.nprocs);
    p = &x->snap.procs[i];
    memset(&info, 0, sizeof(info));
    info.pid = p->pid;
    info.start_time = p->start_time;
    info.alive = p->alive;
    info.kind = kind_of(p);
    info.references = p->nrefs;
    info.bytes_mapped = x->bytes_mapped[i];
    info.registered_usec = (int64_t)p->registered_usec;
    return copy_out(out, size, &info, sizeof(info));
}
