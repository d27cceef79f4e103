/* SPDX-License-Identifier: MIT */
/*
 * cleanup.c - cleanup 4: remove what a dead instance left behind, from its
 * state file, its control segment and its names; shared by supervisor
 * start-up and dsm_gc() (dsmctl gc), so both do exactly the same thing.
 *
 * The order is what makes it restartable after a kill -9 at any moment:
 *   1. the state file names the control segment (it is written *before*
 *      the segment is created, so it names even one killed mid-creation);
 *   2. a valid control segment lists every segment, each listed *before*
 *      its object is created; destroy-all frees a slot only once its
 *      object is gone (dsm__control_destroy_all());
 *   3. the control segment itself goes only after everything it lists;
 *   4. names carrying the instance's prefix are swept (posix, mmap);
 *   5. the state file goes last, and only if nothing was left.
 * A kill at any step leaves the earlier records in place for the next run.
 * A control segment whose creator died before initialising it (its magic is
 * still 0) is removed on the state file's word: its name is the recorded
 * handle of this instance, and the backend's ownership checks still apply.
 *
 * Nothing foreign is touched: a control segment or state file that fails
 * validation is reported and not trusted; what a sweep cannot prove ours is
 * reported as unproven, with the command that would remove it, and left.
 * A dry run goes through the same steps with probes instead of removals.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dynshm/inspect.h>

#include "../control/inspect.h"
#include "../control/state_file.h"
#include "../dsm_impl/region.h"
#include "cleanup.h"
#include "dsm_int.h"

static uint64_t instance_id(const dsm_impl_instance *inst)
{
    unsigned long long id = 0;

    sscanf(dsm_impl_instance_id(inst), "%16llx", &id);
    return id;
}

/* Dry run: remember a name reported before the sweep (at worst one is listed twice). */
static void remember(struct dsm__gc *g, const char *name)
{
    if (!(g->flags & DSM_GC_DRY_RUN))
        return;
    if (g->nseen == g->seen_cap) {
        size_t cap = g->seen_cap ? 2 * g->seen_cap : 64;
        char **p = realloc(g->seen, cap * sizeof(*p));

        if (p == NULL)
            return;
        g->seen = p;
        g->seen_cap = cap;
    }
    if ((g->seen[g->nseen] = strdup(name)) != NULL)
        g->nseen++;
}

static bool seen(const struct dsm__gc *g, const char *name)
{
    for (size_t i = 0; i < g->nseen; i++)
        if (strcmp(g->seen[i], name) == 0)
            return true;
    return false;
}

static void forget_seen(struct dsm__gc *g)
{
    for (size_t i = 0; i < g->nseen; i++)
        free(g->seen[i]);
    free(g->seen);
    g->seen = NULL;
    g->nseen = g->seen_cap = 0;
}

static void tell(struct dsm__gc *g, dsm_gc_action action, const char *kind, const char *name,
                 dsm_handle handle, const char *detail, const char *hint)
{
    dsm_gc_object o = {.action = action, .kind = kind, .name = name, .handle = handle,
                       .detail = detail ? detail : "", .hint = hint ? hint : ""};

    /* The state file is not a shared memory object: reported, not counted. */
    switch (strcmp(kind, "state file") == 0 ? -1 : (int)action) {
    case DSM_GC_REMOVED:
    case DSM_GC_WOULD_REMOVE:
        g->removed++;
        break;
    case DSM_GC_KEPT:
        g->kept++;
        break;
    case DSM_GC_UNPROVEN:
        g->unproven++;
        break;
    default:
        break;
    }
    if (action == DSM_GC_WOULD_REMOVE && strcmp(kind, "leftover") != 0)
        remember(g, name);
    if (g->report)
        g->report(&o, g->arg);
}

/* ---- through the control segment ------------------------------------------------- */

static void destroyed(const char *name, void *arg)
{
    tell(arg, DSM_GC_REMOVED, "segment", name, 0, NULL, NULL);
}

/* Dry run: what destroy-all would remove, by probing each listed slot. */
static int dry_list(dsm_impl_instance *inst, struct dsm_control *ctl, struct dsm__gc *g)
{
    uint32_t cursor = 0;

    for (;;) {
        dsm_impl_segment segs[128];
        uint32_t n = 0;
        int rc;

        if ((rc = dsm__control_lock(ctl)) < 0)
            return rc;
        for (; cursor < ctl->hdr->nslots && n < DSM_ARRAY_LEN(segs); cursor++) {
            const struct dsm_control_slot *s = &ctl->slots[cursor];

            if (s->state == DSM_SLOT_FREE || s->state > DSM_SLOT_DYING ||
                (uint32_t)s->handle != cursor)
                continue;
            dsm__control_slot_segment(ctl, cursor, &segs[n++]);
        }
        dsm__control_unlock(ctl);
        if (n == 0)
            return 0;
        for (uint32_t i = 0; i < n; i++) {
            char name[DSM_IMPL_NAME_MAX];

            dsm_impl_segment_name(inst, segs[i].handle, name, sizeof(name));
            rc = dsm__impl_probe(inst, &segs[i]);
            if (rc == 1)
                tell(g, DSM_GC_WOULD_REMOVE, "segment", name, segs[i].handle, NULL, NULL);
            else if (rc < 0)
                tell(g, DSM_GC_KEPT, "segment", name, segs[i].handle, dsm_errmsg(), NULL);
        }
    }
}

/* Is any process registered in ctl (other than this one) still running? */
static int live_member(struct dsm_control *ctl, const char *datadir)
{
    struct dsm_control_member m[64];
    uint32_t cursor = 0;
    int n;

    do {
        n = dsm__control_members(ctl, DSM_CONTROL_NONE, 0, m, (int)DSM_ARRAY_LEN(m), &cursor);
        for (int i = 0; i < n; i++)
            if (m[i].id.pid != (int32_t)getpid() && dsm__procid_alive(&m[i].id))
                return dsm__error(-EBUSY, "process %d of the dynshm instance on \"%s\" is still "
                                          "running; stop it first", (int)m[i].id.pid, datadir);
    } while (n == (int)DSM_ARRAY_LEN(m));
    return n < 0 ? n : 0;
}

static void control_gone(dsm_impl_instance *old, const struct dsm_state_record *rec,
                         struct dsm__gc *g, const char *detail)
{
    dsm_impl_segment cseg = {.handle = rec->control, .size = rec->size, .os_id = rec->os_id};
    char name[DSM_IMPL_NAME_MAX];
    int rc;

    dsm_impl_segment_name(old, rec->control, name, sizeof(name));
    rc = g->flags & DSM_GC_DRY_RUN ? dsm__impl_probe(old, &cseg) : dsm_impl_destroy(old, &cseg);
    if (g->flags & DSM_GC_DRY_RUN ? rc == 1 : rc == 0)
        tell(g, g->flags & DSM_GC_DRY_RUN ? DSM_GC_WOULD_REMOVE : DSM_GC_REMOVED,
             "control segment", name, rec->control, detail, NULL);
    else if (rc < 0 && rc != -ENOENT)
        tell(g, DSM_GC_KEPT, "control segment", name, rec->control, dsm_errmsg(), NULL);
}

/*
 * The region (min_dynamic_shared_memory) has a handle derived from the
 * control segment's, so the state file names it too; its segments were
 * only pages in it, gone with it.  Tried whether or not the control
 * segment says there is one: a supervisor killed between creating the
 * region and recording its size leaves one the table does not mention.
 */
static void region_gone(dsm_impl_instance *old, const struct dsm_state_record *rec,
                        struct dsm__gc *g)
{
    dsm_impl_segment rseg = {.handle = dsm__region_handle(rec->control), .os_id = -1};
    char name[DSM_IMPL_NAME_MAX];
    int rc;

    if (rec->backend == DSM_IMPL_NONE || rec->control == DSM_HANDLE_INVALID)
        return;
    dsm_impl_segment_name(old, rseg.handle, name, sizeof(name));
    rc = g->flags & DSM_GC_DRY_RUN ? dsm__impl_probe(old, &rseg) : dsm_impl_destroy(old, &rseg);
    if (g->flags & DSM_GC_DRY_RUN ? rc == 1 : rc == 0)
        tell(g, g->flags & DSM_GC_DRY_RUN ? DSM_GC_WOULD_REMOVE : DSM_GC_REMOVED, "region", name,
             rseg.handle, NULL, NULL);
    else if (rc < 0 && rc != -ENOENT)
        tell(g, DSM_GC_KEPT, "region", name, rseg.handle, dsm_errmsg(), NULL);
}

/* Steps 1-3 for a state file that validated and names this directory. */
static int through_state(const char *datadir, const struct dsm_state_record *rec,
                         dsm_impl_instance *old, struct dsm__gc *g)
{
    struct dsm_control ctl;
    unsigned left = 0;
    int rc;

    rc = dsm__control_attach(old, rec->control, &ctl);
    if (rc == -ENOENT) {
        region_gone(old, rec, g); /* made after the control segment: normally gone too */
        return 0; /* never created, or already removed */
    }
    if (rc == -ENODATA) {
        region_gone(old, rec, g);
        control_gone(old, rec, g, "never initialised");
        return 0;
    }
    if (rc < 0) {
        char msg[512];

        snprintf(msg, sizeof(msg), "not trusting the previous control segment: %s; falling "
                 "back to the name-prefix sweep", dsm_errmsg());
        dsm__log(DSM_LOG_WARNING, "%s", msg);
        g->untrusted = true;
        region_gone(old, rec, g); /* System V has no name to sweep it by */
        return 0;
    }
    /* Validated: its list can be trusted.  But not while its processes run. */
    if ((rc = live_member(&ctl, datadir)) < 0) {
        dsm__control_detach(old, &ctl);
        return rc;
    }
    if (g->flags & DSM_GC_DRY_RUN) {
        rc = dry_list(old, &ctl, g);
    } else {
        dsm__control_destroy_all(old, &ctl, destroyed, g, &left);
        g->kept += left;
    }
    dsm__control_detach(old, &ctl);
    if (rc < 0)
        return rc;
    /* Keep the list while something it names could not be removed. */
    if (left == 0) {
        region_gone(old, rec, g);
        control_gone(old, rec, g, NULL);
    }
    return 0;
}

/* ---- by name ----------------------------------------------------------------------- */

static void swept(const char *name, void *arg)
{
    struct dsm__gc *g = arg;

    if (seen(g, name))
        return; /* dry run: listed through the control segment already */
    tell(g, g->flags & DSM_GC_DRY_RUN ? DSM_GC_WOULD_REMOVE : DSM_GC_REMOVED, "leftover", name,
         0, "found by the instance's name prefix", NULL);
}

static void sweep(dsm_impl_instance *inst, struct dsm__gc *g)
{
    if (dsm__impl_sweep(inst, 0, (g->flags & DSM_GC_DRY_RUN) != 0, swept, g) < 0) {
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
        g->kept++;
    }
}

/* Every backend whose objects have names (dsm_gc: the state file may be gone). */
static void sweep_every_backend(const char *datadir, struct dsm__gc *g)
{
    for (int t = 0; t < DSM_IMPL_NTYPES; t++) {
        dsm_impl_instance *inst;
        char path[4096];
        struct stat st;

        if (t == DSM_IMPL_NONE || t == DSM_IMPL_SYSV || !dsm_impl_type_available((dsm_impl_type)t))
            continue;
        if (t == DSM_IMPL_MMAP) {
            /* Opening an mmap instance would create its directory: look first. */
            snprintf(path, sizeof(path), "%s/" DSM_IMPL_MMAP_DIR, datadir);
            if (lstat(path, &st) != 0 && errno == ENOENT)
                continue;
        }
        if (dsm_impl_instance_open((dsm_impl_type)t, datadir, &inst) < 0) {
            dsm__log(DSM_LOG_WARNING, "cannot sweep for %s leftovers: %s",
                     dsm_impl_type_name((dsm_impl_type)t), dsm_errmsg());
            g->kept++;
            continue;
        }
        sweep(inst, g);
        dsm_impl_instance_close(inst);
    }
}

/* ---- the whole pass ------------------------------------------------------------------ */

int dsm__gc_run(const char *datadir, dsm_impl_instance *current, struct dsm__gc *g)
{
    struct dsm_state_record rec;
    dsm_impl_instance *old = NULL;
    int rc, state_rc;

    state_rc = rc = dsm__state_read(datadir, &rec);
    if (rc < 0 && rc != -ENOENT) {
        dsm__log(DSM_LOG_WARNING, "not trusting the state file: %s; falling back to the "
                 "name-prefix sweep", dsm_errmsg());
    } else if (rc == 0 && current && rec.instance_id != instance_id(current)) {
        dsm__log(DSM_LOG_WARNING, "state file names instance %016llx, but this data directory "
                                  "is instance %s (was it copied?); not trusting it",
                 (unsigned long long)rec.instance_id, dsm_impl_instance_id(current));
        state_rc = DSM_EFOREIGN;
    } else if (rc == 0 && rec.backend != DSM_IMPL_NONE) {
        if (dsm_impl_instance_open(rec.backend, datadir, &old) < 0) {
            dsm__log(DSM_LOG_WARNING, "cannot clean up after the previous instance: %s",
                     dsm_errmsg());
            g->kept++;
        } else if (current == NULL && rec.instance_id != instance_id(old)) {
            dsm__log(DSM_LOG_WARNING, "state file names instance %016llx, but this data "
                                      "directory is instance %s (was it copied?); not "
                                      "trusting it",
                     (unsigned long long)rec.instance_id, dsm_impl_instance_id(old));
            state_rc = DSM_EFOREIGN;
        } else if ((rc = through_state(datadir, &rec, old, g)) < 0) {
            dsm_impl_instance_close(old);
            forget_seen(g);
            return rc;
        }
    }
    /* Names carrying our prefix are ours whatever the table said. */
    if (g->sweep_all)
        sweep_every_backend(datadir, g);
    else {
        if (old)
            sweep(old, g);
        if (current && (old == NULL || dsm_impl_instance_type(current) != rec.backend))
            sweep(current, g);
    }
    if (old && rec.backend == DSM_IMPL_SYSV && (g->untrusted || state_rc != 0)) {
        char name[DSM_IMPL_NAME_MAX];

        dsm_impl_segment_name(old, rec.control, name, sizeof(name));
        tell(g, DSM_GC_UNPROVEN, "segments", "System V segments", 0,
             "without a valid control segment, none can be proven to be this instance's",
             "list them with ipcs -m -c and remove each with ipcrm -m SHMID");
    }
    if (old)
        dsm_impl_instance_close(old);
    if (state_rc != -ENOENT) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/" DSM_STATE_FILE, datadir);
        if (state_rc != 0)
            tell(g, DSM_GC_KEPT, "state file", path, 0,
                 "not trusted, so kept: it may name what could not be found without it", NULL);
        else if (g->kept > 0)
            tell(g, DSM_GC_KEPT, "state file", path, 0,
                 "kept so that gc can be run again", NULL);
        else if (g->flags & DSM_GC_DRY_RUN)
            tell(g, DSM_GC_WOULD_REMOVE, "state file", path, 0, NULL, NULL);
        else if ((rc = dsm__state_remove(datadir)) == 0 || rc == -ENOENT)
            tell(g, DSM_GC_REMOVED, "state file", path, 0, NULL, NULL);
        else
            tell(g, DSM_GC_KEPT, "state file", path, 0, dsm_errmsg(), NULL);
    }
    forget_seen(g);
    return 0;
}
