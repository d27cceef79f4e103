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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../control/state_file.h"
#include "dsm_int.h"

#define DSM_LOCK_FILE "dynshm.lock"

static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
    /* Another thread may have held mu at fork time: start from a fresh one. */
    pthread_mutex_init(&dsm__p.mu, NULL);
    if (dsm__p.initialised)
        dsm__p.forked = true;
}

/* Runs at exit() and at library unload: cleanup 2 (and 3 for a supervisor). */
__attribute__((destructor)) static void at_exit(void)
{
    if (!dsm__p.initialised || dsm__p.forked || dsm__p.pid != getpid())
        return;
    if (dsm__p.supervisor)
        dsm_supervisor_shutdown();
    else
        dsm_worker_exit();
}

static void install(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
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
    dsm_settings_free(own);
    return rc;
}

/* ---- the data directory lock --------------------------------------------------- */

static int lock_datadir(const char *datadir)
{
    char path[4096], buf[32];
    int fd, n;

    snprintf(path, sizeof(path), "%s/" DSM_LOCK_FILE, datadir);
    /* O_NONBLOCK: a FIFO in its place must not hang start-up (refused below). */
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0)
        return dsm__error(-errno, "could not open lock file \"%s\": %m", path);
    {
        struct stat st;

        /* An old lock file keeps its mode otherwise; it is ours, so make it 0600. */
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
            fchmod(fd, 0600) != 0) {
            close(fd);
            return dsm__error(DSM_EFOREIGN, "lock file \"%s\" is not a regular file owned by "
                                            "this user", path);
        }
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = 0;

        n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            pid = strtol(buf, NULL, 10);
        }
        close(fd);
        if (e == EWOULDBLOCK)
            return dsm__error(-EBUSY, "data directory \"%s\" is in use: a dynshm "
                                      "supervisor, its workers or dsmctl gc hold its lock "
                                      "(last supervisor: pid %ld)", datadir, pid);
        return dsm__error(-e, "could not lock \"%s\": %m", path);
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int e = errno;

        close(fd);
        return dsm__error(-e, "could not write lock file \"%s\": %m", path);
    }
    return fd;
}

/* ---- cleanup 4: what a previous instance left ---------------------------------- */

static void log_removed(const char *name, void *arg)
{
    int *count = arg;

    (*count)++;
    dsm__log(DSM_LOG_INFO, "removed leftover shared memory segment \"%s\"", name);
}

/* Returns 0, or -EBUSY if processes of the old instance still run. */
static int clean_previous(const char *datadir, dsm_impl_instance *current)
{
    struct dsm_state_record rec;
    dsm_impl_instance *old = NULL;
    struct dsm_control ctl;
    int rc, removed = 0;

    rc = dsm__state_read(datadir, &rec);
    if (rc == -ENOENT)
        goto sweep;
    if (rc < 0) {
        dsm__log(DSM_LOG_WARNING, "%s; not trusting it", dsm_errmsg());
        goto sweep;
    }
    if (rec.instance_id != instance_id(current)) {
        dsm__log(DSM_LOG_WARNING, "state file names instance %016llx, but this data directory "
                                  "is instance %s (was it copied?); not trusting it",
                 (unsigned long long)rec.instance_id, dsm_impl_instance_id(current));
        goto sweep;
    }
    if (rec.backend == DSM_IMPL_NONE)
        goto sweep;
    if (dsm_impl_instance_open(rec.backend, datadir, &old) < 0) {
        dsm__log(DSM_LOG_WARNING, "cannot clean up after the previous instance: %s",
                 dsm_errmsg());
        goto sweep;
    }
    rc = dsm__control_attach(old, rec.control, &ctl);
    if (rc == 0) {
        /* Validated: its list can be trusted.  But not while its processes run. */
        for (uint32_t i = 0; i < ctl.hdr->nprocs; i++) {
            struct dsm_control_proc *p = &ctl.procs[i];

            if (p->state == DSM_PROC_ACTIVE && p->id.pid != getpid() &&
                dsm__procid_alive(&p->id)) {
                int pid = p->id.pid;

                dsm__control_detach(old, &ctl);
                dsm_impl_instance_close(old);
                return dsm__error(-EBUSY, "process %d of the previous dynshm instance on \"%s\" "
                                          "is still running; stop it first", pid, datadir);
            }
        }
        removed += dsm__control_destroy_all(old, &ctl);
        dsm__control_detach(old, &ctl);
        {
            dsm_impl_segment cseg = {.handle = rec.control, .size = rec.size, .os_id = rec.os_id};

            if (dsm_impl_destroy(old, &cseg) == 0)
                dsm__log(DSM_LOG_INFO, "removed the previous control segment");
        }
    } else if (rc != -ENOENT) {
        dsm__log(DSM_LOG_WARNING, "not trusting the previous control segment: %s", dsm_errmsg());
    }
    if (dsm__impl_sweep(old, 0, 0, log_removed, &removed) < 0)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    dsm_impl_instance_close(old);
sweep:
    /* Names carrying our prefix are ours whatever the table said. */
    if (dsm__impl_sweep(current, 0, 0, log_removed, &removed) < 0)
        dsm__log(DSM_LOG_WARNING, "%s", dsm_errmsg());
    if (removed > 0)
        dsm__log(DSM_LOG_INFO, "removed %d shared memory segment(s) left by a previous instance",
                 removed);
    dsm__state_remove(datadir);
    return 0;
}

/* ---- the control segment of this instance ---------------------------------------- */

static int register_self(uint32_t flags)
{
    struct dsm__procid id;

    dsm__procid_self(&id);
    return dsm__control_proc_register(&dsm__p.ctl, &id, flags, &dsm__p.proc);
}

static int start_control(void)
{
    struct dsm_state_record rec = {0};
    int rc;

    rec.instance_id = instance_id(dsm__p.inst);
    rec.backend = dsm_impl_instance_type(dsm__p.inst);
    rec.pid = getpid();
    rec.os_id = -1;
    if (dsm__p.disabled)
        return dsm__state_write(dsm__p.datadir, &rec);
    rc = dsm__control_create(dsm__p.inst, dsm__p.nslots, dsm__p.nprocs, dsm__p.nrefs,
                             &dsm__p.ctl);
    if (rc < 0)
        return rc;
    rec.control = dsm__p.ctl.map.handle;
    rec.os_id = dsm__p.ctl.map.os_id;
    rec.size = dsm__p.ctl.map.size;
    rc = dsm__state_write(dsm__p.datadir, &rec);
    if (rc == 0)
        rc = register_self(DSM_PROC_SUPERVISOR);
    if (rc < 0) {
        dsm_impl_segment c = dsm__p.ctl.map;

        dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
        dsm_impl_destroy(dsm__p.inst, &c);
    }
    return rc;
}

/* Destroy every segment and the control segment (cleanup 3). */
static int stop_control(void)
{
    dsm_impl_segment c;
    int n;

    if (dsm__p.disabled || dsm__p.ctl.hdr == NULL)
        return 0;
    c = dsm__p.ctl.map;
    n = dsm__control_destroy_all(dsm__p.inst, &dsm__p.ctl);
    dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
    if (dsm_impl_destroy(dsm__p.inst, &c) < 0 && errno != ENOENT)
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
    dsm__forget_all(false);
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
    if (dsm__p.initialised && !dsm__p.forked)
        return dsm__error(DSM_ESTATE, "dynamic shared memory is already started in this process");
    if (datadir == NULL || datadir[0] == '\0')
        return dsm__error(-EINVAL, "a data directory is required");
    if (dsm__p.forked)
        reset_process_state(); /* a fork child starting on its own */
    return 0;
}

int dsm_supervisor_start(const char *datadir, const dsm_settings *settings)
{
    struct config c;
    int rc;

    if ((rc = check_can_start(datadir)) < 0)
        return rc;
    if ((rc = read_config(settings, &c)) < 0)
        return rc;
    dsm__install_handlers();

    dsm__p.datadir = strdup(datadir);
    if (dsm__p.datadir == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    rc = lock_datadir(datadir);
    if (rc < 0)
        goto fail;
    dsm__p.lock_fd = rc;
    rc = dsm_impl_instance_open(c.type, datadir, &dsm__p.inst);
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
    dsm__p.pid = getpid();
    rc = start_control();
    if (rc < 0)
        goto fail;
    dsm__p.supervisor = true;
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
    int rc, n;

    if (!dsm__p.initialised || !dsm__p.supervisor || dsm__p.forked)
        return dsm__error(DSM_ESTATE, "only a started supervisor can reset dynamic shared memory");
    drop_own_mappings();
    n = stop_control();
    rc = start_control();
    if (rc < 0) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%s", dsm_errmsg());
        dsm__state_remove(dsm__p.datadir);
        reset_process_state();
        return dsm__error(rc, "crash reset could not recreate the control segment: %s", msg);
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
    n = stop_control();
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
    /* The parent's mappings stay mapped here but are not ours to count or release. */
    dsm__forget_all(false);
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
        rc = register_self(DSM_PROC_EXECED);
        if (rc < 0) {
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

void dsm_worker_exit(void)
{
    if (!dsm__p.initialised || dsm__p.forked)
        return;
    dsm_detach_all();
    if (dsm__p.supervisor)
        return; /* a supervisor leaves through dsm_supervisor_shutdown() */
    if (!dsm__p.disabled) {
        dsm__control_proc_unregister(&dsm__p.ctl, dsm__p.proc);
        dsm__control_detach(dsm__p.inst, &dsm__p.ctl);
    }
    reset_process_state();
}

dsm_handle dsm_control_handle(void)
{
    if (!dsm__p.initialised || dsm__p.disabled || dsm__p.ctl.hdr == NULL)
        return DSM_HANDLE_INVALID;
    return dsm__p.ctl.map.handle;
}
