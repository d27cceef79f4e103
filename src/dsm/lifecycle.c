/* SPDX-License-Identifier: MIT */
/*
 * lifecycle.c - starting and stopping the facility in supervisors and
 * workers, and the cleanups that make leaks impossible.
 *
 * The four cleanups (after PostgreSQL's design):
 *   1. resource owner release            (resowner.c)
 *   2. process exit                      (exit handler below: detach all)
 *   3. supervisor crash reset/shut-down  (destroy everything the table lists)
 *   4. supervisor start-up after a crash (find the old table through the
 *      state file, validate it, destroy what it lists; sweep names carrying
 *      this instance's prefix; for mmap that includes files that survived
 *      a reboot)
 * The data directory is locked (flock on dynshm.lock) by the supervisor,
 * and forked workers inherit the lock, so a new supervisor cannot start
 * while any process of the previous one still runs.
 */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../control/state_file.h"
#include "cleanup.h"
#include "datadir.h"
#include "dsm_int.h"
#include "keeper.h"
#include "../dsm_impl/region.h"

static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

/*
 * fork() in a multi-threaded process: the prepare handler takes mu so no
 * other thread is half way through the mapping list when the child's copy
 * is made; the child then walks a consistent list in
 * dsm_worker_init_after_fork().  (The control lock lives in shared memory:
 * if another thread holds it at fork time it is that thread's, and it
 * releases it in the parent; the child simply waits its turn.)
 */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&dsm__p.mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&dsm__p.mu);
}

static void atfork_child(void)
{
    /* The only thread of the child is the one that locked: start from a fresh mutex. */
    pthread_mutex_init(&dsm__p.mu, NULL);
    if (dsm__p.initialised)
        dsm__p.forked = true;
}

/* Leave as a worker: detach everything (callbacks only if asked), unregister. */
static void leave(bool run_callbacks);

/*
 * Runs at exit() and when the library is unloaded.  Only what is safe at
 * that point is done: a worker gives back its references and leaves (no
 * user callback runs: at exit, or at dlclose, the code and data they use
 * may already be gone).  A supervisor does nothing at all: shutting the
 * instance down is an explicit dsm_supervisor_shutdown(), never a side
 * effect of exit() (a server that daemonises, or whose parent half exits
 * after fork, must not destroy the segments its children still use).  What
 * a supervisor leaves is removed by the next start-up or dsm_gc().
 */
__attribute__((destructor)) static void at_exit(void)
{
    if (!dsm__p.initialised || dsm__p.forked || dsm__p.pid != getpid() || dsm__p.supervisor)
        return;
    leave(false);
}

static void install(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void dsm__install_handlers(void)
{
    pthread_once(&handlers_once, install);
}

static uint64_t instance_id(dsm_impl_instance *inst)
{
    unsigned long long id = 0;

    sscanf(dsm_impl_instance_id(inst), "%16llx", &id);
    return id;
}

/* ---- settings ---------------------------------------------------------------- */

struct config {
    dsm_impl_type type;
    bool reclaim;
    uint32_t nslots, nprocs, nrefs;
    int huge;           /* DSM_HUGE_* */
    int64_t huge_size;  /* bytes; 0: the system's default */
    int64_t region;     /* min_dynamic_shared_memory in bytes; 0: no region */
};

static int get_count(const dsm_settings *s, const char *name, uint32_t max, uint32_t *out)
{
    int64_t v;
    int rc = dsm_settings_get_int(s, name, &v);

    if (rc < 0)
        return rc;
    if (v < 1 || v > (int64_t)max)
        return dsm__error(-EINVAL, "%s = %lld is outside the supported range (1 .. %u)", name,
                          (long long)v, (unsigned)max);
    *out = (uint32_t)v;
    return 0;
}

static int read_config(const dsm_settings *given, struct config *c)
{
    dsm_settings *own = NULL;
    const dsm_settings *s = given;
    const char *type;
    int rc;

    if (s == NULL) {
        if ((rc = dsm_settings_new(&own)) < 0)
            return rc;
        s = own;
    }
    rc = dsm_settings_get_string(s, "dynamic_shared_memory_type", &type);
    if (rc == 0)
        rc = dsm_impl_type_from_name(type, &c->type);
    if (rc == 0 && (rc = dsm_settings_get_string(s, "dsm_crash_policy", &type)) == 0)
        c->reclaim = strcmp(type, "reclaim") == 0;
    if (rc == 0)
        rc = get_count(s, "dsm_max_segments", DSM_CONTROL_MAX_SLOTS, &c->nslots);
    if (rc == 0)
        rc = get_count(s, "dsm_max_processes", DSM_CONTROL_MAX_PROCS, &c->nprocs);
    if (rc == 0)
        rc = get_count(s, "dsm_max_mappings", DSM_CONTROL_MAX_REFS, &c->nrefs);
    if (rc == 0 && (rc = dsm_settings_get_string(s, "huge_pages", &type)) == 0)
        c->huge = strcmp(type, "on") == 0 ? DSM_HUGE_ON
                  : strcmp(type, "try") == 0 ? DSM_HUGE_TRY : DSM_HUGE_OFF;
    if (rc == 0)
        rc = dsm_settings_get_int(s, "huge_page_size", &c->huge_size);
    if (rc == 0)
        rc = dsm_settings_get_int(s, "min_dynamic_shared_memory", &c->region);
    if (rc == 0 && c->region > 0 && c->type == DSM_IMPL_NONE) {
        rc = dsm__error(-EINVAL, "min_dynamic_shared_memory = %lld cannot be used with "
                                 "dynamic_shared_memory_type = none", (long long)c->region);
        dsm__errhint(rc, "Set min_dynamic_shared_memory to 0, or choose a backend.");
    }
    /* The region's pages are normal pages: "on" promises every segment huge ones. */
    if (rc == 0 && c->region > 0 && c->huge == DSM_HUGE_ON) {
        rc = dsm__error(-EINVAL, "min_dynamic_shared_memory = %lld cannot be used with "
                                 "huge_pages = on: the region's segments use normal pages",
                        (long long)c->region);
        dsm__errhint(rc, "Set huge_pages to try (small segments then come from the region, "
                         "on normal pages), or min_dynamic_shared_memory to 0.");
    }
    dsm_settings_free(own);
    return rc;
}

/* ---- cleanup 4: what a previous instance left ---------------------------------- */

static void log_removed(const dsm_gc_object *o, void *arg)
{
    (void)arg;
    if (o->action == DSM_GC_REMOVED && strcmp(o->kind, "control segment") == 0)
        dsm__log(DSM_LOG_INFO, "removed the previous control segment \"%s\"%s%s%s", o->name,
                 o->detail[0] ? " (" : "", o->detail, o->detail[0] ? ")" : "");
    else if (o->action == DSM_GC_REMOVED)
        dsm__log(DSM_LOG_DEBUG, "removed leftover %s \"%s\"", o->kind, o->name);
    else
        dsm__log(DSM_LOG_WARNING, "left %s \"%s\" in place%s%s%s%s", o->kind, o->name,
                 o->detail[0] ? ": " : "", o->detail, o->hint[0] ? "; HINT: " : "", o->hint);
}

/* Returns 0, or -EBUSY if processes of the old instance still run. */
static int clean_previous(const char *datadir, dsm_impl_instance *current)
{
    struct dsm__gc g = {.report = log_removed};
    int rc = dsm__gc_run(datadir, current, &g);

    if (rc < 0)
        return rc;
    if (g.removed > 0)
        dsm__log(DSM_LOG_INFO, "removed %u shared memory object(s) left by a previous instance",
                 g.removed);
    return 0;
}

/* ---- the control segment of this instance ---------------------------------------- */

static int register_self(uint32_t flags)
{
    struct dsm__procid id;

    dsm__procid_self(&id);
    return dsm__control_proc_register(&dsm__p.ctl, &id, flags, &dsm__p.proc);
}

/*
 * The control segment could not be made: say that it was the control
 * segment and which settings sized it, since the backend's message names
 * only an object the operator never asked for.
 */
static void control_too_large(int rc, size_t size)
{
    char detail[512], hint[512];

    snprintf(detail, sizeof(detail), "%s", dsm_errdetail());
    snprintf(hint, sizeof(hint), "%s", dsm_errhint());
    dsm__errdetail(rc, "It is the control segment: %zu bytes for dsm_max_segments = %u, "
                       "dsm_max_processes = %u and dsm_max_mappings = %u.%s%s",
                   size, dsm__p.nslots, dsm__p.nprocs, dsm__p.nrefs, detail[0] ? " " : "", detail);
    dsm__errhint(rc, "%s%sOr lower dsm_max_segments, dsm_max_processes or dsm_max_mappings.",
                 hint, hint[0] ? " " : "");
}

/*
 * Unmap and destroy the region (if this process has one, or one may exist
 * under the handle derived from `control`): shut-down, crash reset and a
 * failed start-up.  The pages of its segments go with it.
 */
static void stop_region(dsm_handle control)
{
    dsm_impl_segment r = {.handle = dsm__region_handle(control), .os_id = -1};
    int rc;

    if (dsm__p.inst->region == NULL && dsm__p.ctl.hdr != NULL &&
        dsm__p.ctl.hdr->counters.region_size == 0)
        return;
    dsm__region_detach(dsm__p.inst);
    rc = dsm_impl_destroy(dsm__p.inst, &r);
    if (rc < 0 && rc != -ENOENT)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
}

/*
 * Create this instance's control segment, recording its handle in the state
 * file *before* creating it: a kill at any instant after this leaves a
 * state file naming every control segment that may exist, so the next
 * start-up (or dsm_gc) finds it on every backend -- System V included,
 * whose segments have no name to sweep.
 */
static int start_control(void)
{
    struct dsm_state_record rec = {0};
    uint64_t region = dsm__p.region;
    int rc;

    rec.instance_id = instance_id(dsm__p.inst);
    rec.backend = dsm_impl_instance_type(dsm__p.inst);
    rec.pid = getpid();
    rec.os_id = -1; /* not known before creation; destroy checks key, owner, mode and size */
    if (dsm__p.disabled)
        return dsm__state_write(dsm__p.datadir, &rec);
    rec.size = dsm__control_size(dsm__p.nslots, dsm__p.nprocs, dsm__p.nrefs);
    /* 64 random bits per try: more than a few collisions means a squatter. */
    for (int tries = 0;; tries++) {
        if ((rc = dsm__random_bytes(&rec.control, sizeof(rec.control))) < 0)
            return rc;
        if (rec.control == DSM_HANDLE_INVALID)
            continue;
        if ((rc = dsm__state_write(dsm__p.datadir, &rec)) < 0)
            return rc;
        bool huge = dsm__p.inst->huge_active;

        /* The control segment is sized exactly (the state file records it): never huge. */
        dsm__p.inst->huge_active = false;
        rc = dsm__control_create(dsm__p.inst, rec.control, dsm__p.nslots, dsm__p.nprocs,
                                 dsm__p.nrefs, &dsm__p.ctl);
        dsm__p.inst->huge_active = huge;
        if (rc != -EEXIST)
            break;
        if (tries == 64) {
            rc = dsm__error(-EEXIST, "could not find a free name for the control segment "
                                     "after %d tries", tries);
            break;
        }
    }
    if (rc == 0) {
        /*
         * Workers exec'd later read the huge page policy from here (the
         * header's spare word): mode in the low byte, log2 of the page size
         * in the next; 0 when creates use normal pages.
         */
        const dsm_impl_instance *in = dsm__p.inst;

        dsm__p.ctl.hdr->reserved32 =
            in->huge_active ? (uint32_t)in->huge_mode |
                                  ((uint32_t)dsm__huge_shift(in->huge_size) << 8)
                            : 0;
        /*
         * The region after the control segment, under a handle derived from
         * its (dsm__region_handle), so whatever finds the control segment
         * after a crash finds the region; its size is recorded for exec'd
         * workers before any can join.
         */
        if (region > 0) {
            rc = dsm__region_create(dsm__p.inst, dsm__region_handle(rec.control), region,
                                    dsm__p.nslots);
            if (rc == 0)
                dsm__p.ctl.hdr->counters.region_size = region;
        }
    }
    if (rc == 0)
        rc = register_self(DSM_PROC_SUPERVISOR);
    if (rc < 0) {
        struct dsm__saved_error e;

        if (dsm__p.ctl.hdr == NULL && (rc == -ENOSPC || rc == -ENOMEM || rc == -EINVAL))
            control_too_large(rc, rec.size);
        dsm__error_save(&e, rc);
        stop_region(rec.control);
        if (dsm__p.ctl.hdr != NULL) {
            dsm_impl_segment c = dsm__p.ctl.map;

            dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
            dsm_impl_destroy(dsm__p.inst, &c);
        }
        dsm__state_remove(dsm__p.datadir); /* names nothing that exists now */
        return dsm__error_restore(&e);
    }
    return 0;
}

/*
 * Destroy every segment, then the control segment (cleanup 3).  The state
 * file keeps naming the control segment throughout, so a kill part-way is
 * finished by the next start-up.
 */
static int stop_control(struct dsm_control_header *counters)
{
    dsm_impl_segment c;
    int n, rc;

    if (dsm__p.disabled || dsm__p.ctl.hdr == NULL)
        return 0;
    c = dsm__p.ctl.map;
    n = dsm__control_destroy_all(dsm__p.inst, &dsm__p.ctl, NULL, NULL, NULL);
    stop_region(c.handle); /* after its segments, before the table that finds it */
    /* A reset keeps the counters (its own destroys included); the lock is not copied. */
    if (counters != NULL)
        memcpy(counters, dsm__p.ctl.hdr, offsetof(struct dsm_control_header, lock));
    dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
    rc = dsm_impl_destroy(dsm__p.inst, &c);
    if (rc < 0 && rc != -ENOENT)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    return n;
}

/* Run callbacks and unmap this process's mappings without touching the table. */
static void drop_own_mappings(void)
{
    for (;;) {
        dsm_segment *seg;

        pthread_mutex_lock(&dsm__p.mu);
        seg = dsm__p.all;
        pthread_mutex_unlock(&dsm__p.mu);
        if (seg == NULL)
            break;
        dsm__run_callbacks(seg);
        pthread_mutex_lock(&dsm__p.mu);
        dsm__forget(seg);
        pthread_mutex_unlock(&dsm__p.mu);
        dsm_impl_detach(dsm__p.inst, &seg->impl);
        free(seg);
    }
}

static void reset_process_state(void)
{
    dsm__keeper_stop(); /* before the instance it serves is closed */
    dsm__forget_all(false, false);
    if (dsm__p.inst)
        dsm_impl_instance_close(dsm__p.inst);
    if (dsm__p.lock_fd >= 0)
        close(dsm__p.lock_fd);
    free(dsm__p.datadir);
    dsm__p.inst = NULL;
    dsm__p.lock_fd = -1;
    dsm__p.datadir = NULL;
    dsm__p.initialised = dsm__p.supervisor = dsm__p.disabled = dsm__p.forked = false;
    memset(&dsm__p.ctl, 0, sizeof(dsm__p.ctl));
}

/* ---- the API -------------------------------------------------------------------- */

/* What starting as a supervisor and as an exec'd worker have in common. */
static int check_can_start(const char *datadir)
{
    int rc;

    if (dsm__p.initialised && !dsm__p.forked)
        return dsm__error(DSM_ESTATE, "dynamic shared memory is already started in this process");
    if ((rc = dsm__datadir_check(datadir)) < 0)
        return rc;
    if (dsm__p.forked) {
        dsm__keeper_after_fork();
        reset_process_state(); /* a fork child starting on its own */
    }
    return 0;
}

int dsm_supervisor_start(const char *datadir, const dsm_settings *settings)
{
    struct config c = {0};
    int rc;

    if ((rc = check_can_start(datadir)) < 0)
        return rc;
    if ((rc = read_config(settings, &c)) < 0)
        return rc;
    dsm__install_handlers();

    dsm__p.datadir = strdup(datadir);
    if (dsm__p.datadir == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    rc = dsm__datadir_lock(datadir, true, NULL);
    if (rc < 0)
        goto fail;
    dsm__p.lock_fd = rc;
    rc = dsm_impl_instance_open(c.type, datadir, &dsm__p.inst);
    if (rc < 0)
        goto fail;
    rc = dsm__impl_set_huge_pages(dsm__p.inst, c.huge, (size_t)c.huge_size);
    if (rc < 0)
        goto fail;
    rc = clean_previous(datadir, dsm__p.inst);
    if (rc < 0)
        goto fail;
    dsm__p.disabled = c.type == DSM_IMPL_NONE;
    dsm__p.reclaim = c.reclaim;
    dsm__p.nslots = c.nslots;
    dsm__p.nprocs = c.nprocs;
    dsm__p.nrefs = c.nrefs;
    dsm__p.region = (uint64_t)c.region;
    dsm__p.pid = getpid();
    rc = start_control();
    if (rc < 0)
        goto fail;
    dsm__p.supervisor = true;
    if ((rc = dsm__keeper_start()) < 0) {
        stop_control(NULL);
        dsm__state_remove(dsm__p.datadir);
        goto fail;
    }
    dsm__p.initialised = true;
    dsm__log(DSM_LOG_INFO, "dynamic shared memory started: backend %s, instance %s, "
                           "%u segments", dsm_impl_type_name(c.type),
             dsm_impl_instance_id(dsm__p.inst), (unsigned)c.nslots);
    return 0;

fail:
    reset_process_state();
    return rc;
}

int dsm_supervisor_reset(void)
{
    struct dsm_control_header old; /* for its counters only (the lock is a dead copy) */
    int rc, n;

    if (!dsm__p.initialised || !dsm__p.supervisor || dsm__p.forked)
        return dsm__error(DSM_ESTATE, "only a started supervisor can reset dynamic shared memory");
    drop_own_mappings();
    memset(&old, 0, sizeof(old));
    n = stop_control(&old);
    rc = start_control();
    if (rc == 0 && dsm__p.ctl.hdr != NULL)
        dsm__control_carry_counters(&dsm__p.ctl, &old);
    if (rc < 0) {
        struct dsm__saved_error e;

        dsm__error_save(&e, rc);
        dsm__state_remove(dsm__p.datadir);
        reset_process_state();
        dsm__error_restore(&e);
        return dsm__error_prefix(rc, "crash reset could not recreate the control segment: ");
    }
    dsm__log(DSM_LOG_INFO, "crash reset: destroyed %d dynamic shared memory segment(s)", n);
    return 0;
}

int dsm_supervisor_shutdown(void)
{
    int n;

    if (!dsm__p.initialised || !dsm__p.supervisor || dsm__p.forked)
        return dsm__error(DSM_ESTATE, "only a started supervisor can shut dynamic shared memory "
                                      "down");
    drop_own_mappings();
    dsm__keeper_stop();
    n = stop_control(NULL);
    dsm__state_remove(dsm__p.datadir);
    dsm__log(DSM_LOG_INFO, "shut down: destroyed %d dynamic shared memory segment(s)", n);
    reset_process_state();
    return 0;
}

int dsm_worker_init_after_fork(void)
{
    int rc;

    if (!dsm__p.forked)
        return dsm__error(DSM_ESTATE, dsm__p.initialised
                                          ? "this process is not a fork child of a dynshm "
                                            "process"
                                          : "dynamic shared memory is not initialised in the "
                                            "parent process");
    /*
     * The parent's mappings were not inherited (MADV_DONTFORK) and are not
     * ours to count or release: forget the records, and unmap any the
     * kernel did let through, so this child never keeps memory alive that
     * the instance has given back.
     */
    dsm__forget_all(false, true);
    dsm__keeper_after_fork(); /* memfd: the supervisor's socket and holds stay its own */
    dsm__p.pid = getpid();
    dsm__p.supervisor = false;
    dsm__p.forked = false;
    if (!dsm__p.disabled) {
        rc = register_self(DSM_PROC_FORKED);
        if (rc < 0) {
            /* Give back what the fork handed us: the mapping, descriptors, memory. */
            dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
            reset_process_state();
            return rc;
        }
    }
    return 0;
}

int dsm_worker_attach(const char *datadir)
{
    struct dsm_state_record rec;
    int rc;

    if ((rc = check_can_start(datadir)) < 0)
        return rc;
    if ((rc = dsm__state_read(datadir, &rec)) < 0) {
        if (rc == -ENOENT)
            return dsm__error(-ENOENT, "no dynshm supervisor is running on \"%s\" (no state "
                                       "file)", datadir);
        return rc;
    }
    dsm__install_handlers();
    dsm__p.datadir = strdup(datadir);
    if (dsm__p.datadir == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    rc = dsm_impl_instance_open(rec.backend, datadir, &dsm__p.inst);
    if (rc < 0)
        goto fail;
    if (rec.instance_id != instance_id(dsm__p.inst)) {
        rc = dsm__error(DSM_EFOREIGN, "state file in \"%s\" belongs to another data directory",
                        datadir);
        goto fail;
    }
    dsm__p.disabled = rec.backend == DSM_IMPL_NONE;
    if (!dsm__p.disabled) {
        rc = dsm__control_attach(dsm__p.inst, rec.control, &dsm__p.ctl);
        if (rc == -ENOENT)
            rc = dsm__error(-ENOENT, "the dynshm supervisor on \"%s\" is gone (its control "
                                     "segment does not exist)", datadir);
        if (rc < 0)
            goto fail;
        uint32_t huge = dsm__p.ctl.hdr->reserved32; /* see start_control */

        if ((huge & 0xff) != 0 && (huge >> 8 & 0xff) < 40)
            rc = dsm__impl_set_huge_pages(dsm__p.inst, (int)(huge & 0xff),
                                          (size_t)1 << (huge >> 8 & 0xff));
        /* The region, if the supervisor made one: its size is in the control segment. */
        uint64_t region = dsm__p.ctl.hdr->counters.region_size;

        if (rc == 0 && region > 0)
            rc = dsm__region_attach(dsm__p.inst, dsm__region_handle(rec.control), region,
                                    dsm__p.ctl.hdr->nslots);
        if (rc == 0)
            rc = register_self(DSM_PROC_EXECED);
        if (rc < 0) {
            dsm__region_detach(dsm__p.inst);
            dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
            goto fail;
        }
    }
    dsm__p.pid = getpid();
    dsm__p.initialised = true;
    return 0;

fail:
    reset_process_state();
    return rc;
}

static void leave(bool run_callbacks)
{
    for (;;) {
        dsm_segment *seg;

        pthread_mutex_lock(&dsm__p.mu);
        for (seg = dsm__p.all; seg && !dsm__claim_detach(seg); seg = seg->all_next)
            ;
        pthread_mutex_unlock(&dsm__p.mu);
        if (seg == NULL)
            break;
        dsm__detach_claimed(seg, run_callbacks);
    }
    if (dsm__p.supervisor)
        return; /* a supervisor leaves through dsm_supervisor_shutdown() */
    if (!dsm__p.disabled) {
        if (dsm__control_proc_unregister(&dsm__p.ctl, dsm__p.proc) < 0)
            dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
        dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
    }
    reset_process_state();
}

void dsm_worker_exit(void)
{
    if (!dsm__p.initialised || dsm__p.forked)
        return;
    leave(true);
}

int dsm_gc(const char *datadir, unsigned flags, dsm_gc_report report, void *arg)
{
    struct dsm__gc g = {.flags = flags, .report = report, .arg = arg, .sweep_all = true};
    long holder;
    int fd, rc;

    if (flags & ~DSM_GC_DRY_RUN)
        return dsm__error(-EINVAL, "invalid flags 0x%x for dsm_gc", flags);
    /* The same checks as start-up: a directory others can write is not trusted. */
    if ((rc = dsm__datadir_check(datadir)) != 0)
        return rc;
    /* Held to the end: no supervisor can start on the directory meanwhile. */
    fd = dsm__datadir_lock(datadir, false, &holder);
    if (fd == -EBUSY)
        return dsm__error(-EBUSY, "a supervisor (pid %ld) or its workers are running on \"%s\"; "
                                  "gc only cleans up after a dead instance", holder, datadir);
    if (fd < 0)
        return fd;
    rc = dsm__gc_run(datadir, NULL, &g);
    close(fd); /* releases the data directory lock */
    return rc < 0 ? rc : (int)g.removed;
}

dsm_handle dsm_control_handle(void)
{
    if (!dsm__p.initialised || dsm__p.disabled || dsm__p.ctl.hdr == NULL)
        return DSM_HANDLE_INVALID;
    return dsm__p.ctl.map.handle;
}
