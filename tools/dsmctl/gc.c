/*
 * gc.c - `dsmctl gc`: remove what a dead instance left behind, without
 * starting it again.
 *
 * Three rules keep it safe:
 *   1. Only a dead instance is touched.  The data directory lock is taken
 *      exclusively and held to the end, so no supervisor can start (and no
 *      forked worker of an old one can still be running) while gc works;
 *      processes that attached after exec hold no lock, so the control
 *      segment's own process table is checked too.
 *   2. Only this instance's objects are touched: what a validated control
 *      segment lists, and names carrying this data directory's instance id
 *      (dynshm.<id>.<handle>, posix and mmap).  System V keys prove nothing,
 *      so a SysV segment is removed only when a valid control segment lists
 *      it and it passes the backend's ownership checks.
 *   3. --dry-run goes through exactly the same steps, asking "would destroy
 *      remove something?" (dsm__inspect_probe()) instead of destroying, so it
 *      lists exactly what the real run will remove.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsm_impl/dsm_impl_int.h"
#include "dsmctl.h"

struct gc {
    const struct dsmctl_options *o;
    bool dry;
    unsigned removed;  /* objects removed, or that would be */
    unsigned failed;   /* objects that should have gone but could not */
    char **seen;       /* dry run: names already reported, sorted before the sweep */
    size_t nseen, seen_cap;
};

static void report(struct gc *g, const char *fmt, ...) DSM_PRINTF(2, 3);
static void report(struct gc *g, const char *fmt, ...)
{
    va_list ap;

    fputs(g->dry ? "would remove " : "removed ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    g->removed++;
}

static void remember(struct gc *g, const char *name)
{
    if (!g->dry)
        return;
    if (g->nseen == g->seen_cap) {
        size_t cap = g->seen_cap ? 2 * g->seen_cap : 64;
        char **p = realloc(g->seen, cap * sizeof(*p));

        if (p == NULL)
            return; /* at worst a name is listed twice */
        g->seen = p;
        g->seen_cap = cap;
    }
    if ((g->seen[g->nseen] = strdup(name)) != NULL)
        g->nseen++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Remove (or probe) one object the control segment vouches for. */
static void one(struct gc *g, dsm_impl_instance *inst, const dsm_impl_segment *seg,
                const char *what, const char *detail)
{
    char name[4096], hb[DSM_HANDLE_STRLEN];
    int rc;

    dsm_impl_segment_name(inst, seg->handle, name, sizeof(name));
    dsm_handle_format(seg->handle, hb);
    rc = g->dry ? dsm__inspect_probe(inst, seg) : dsm_impl_destroy(inst, seg);
    if ((g->dry && rc == 1) || (!g->dry && rc == 0)) {
        report(g, "%s %s \"%s\" (%s)", what, hb, name, detail);
        remember(g, name);
    } else if (rc == 0 || rc == -ENOENT) {
        /* already gone: nothing to do */
    } else if (rc == DSM_EFOREIGN) {
        dsmctl_error("WARNING: %s: not ours, left in place", dsm_errmsg());
    } else {
        dsmctl_error("%s %s \"%s\": %s", g->dry ? "cannot check" : "could not remove", what,
                     name, dsm_errmsg());
        g->failed++;
    }
}

/* Everything a valid control segment lists, then the control segment itself. */
static int through_control(struct gc *g, struct dsm_inspect_target *t)
{
    struct dsm_inspect snap;
    dsm_impl_segment cseg = {.handle = t->rec.control, .size = t->rec.size,
                             .os_id = t->rec.os_id};
    char detail[96];

    if (dsmctl_snapshot(t, &snap) < 0) {
        dsmctl_error("WARNING: could not read the control segment: %s; falling back to the "
                     "name-prefix sweep", dsm_errmsg());
        return 1;
    }
    for (uint32_t i = 0; i < snap.nprocs; i++) {
        if (snap.procs[i].alive && snap.procs[i].pid != getpid()) {
            dsmctl_error("process %d of the instance on \"%s\" is still running (it attached "
                         "to the control segment); gc only cleans up after a dead instance",
                         (int)snap.procs[i].pid, g->o->datadir);
            dsm__inspect_free(&snap);
            return -DSMCTL_EXIT_RUNNING;
        }
    }
    /* From here on the snapshot is the list: nothing else reads the table. */
    dsm__control_detach(t->inst, &t->ctl);
    for (uint32_t i = 0; i < snap.nsegs; i++) {
        const struct dsm_inspect_segment *s = &snap.segs[i];
        bool creating = s->state == DSM_SLOT_CREATING;
        /* A CREATING slot has no size or id yet: destroy skips those checks then. */
        dsm_impl_segment seg = {.handle = s->handle, .size = creating ? 0 : s->size,
                                .os_id = creating ? -1 : s->os_id};

        if (creating)
            snprintf(detail, sizeof(detail), "creating");
        else
            snprintf(detail, sizeof(detail), "%s, %llu bytes%s",
                     dsm__inspect_state_name(s->state), (unsigned long long)s->size,
                     s->pinned ? ", pinned" : "");
        one(g, t->inst, &seg, "segment", detail);
    }
    snprintf(detail, sizeof(detail), "%llu bytes", (unsigned long long)t->rec.size);
    one(g, t->inst, &cseg, "control segment", detail);
    dsm__inspect_free(&snap);
    return 0;
}

static void swept(const char *name, void *arg)
{
    struct gc *g = arg;

    if (g->dry && g->nseen > 0 && bsearch(&name, g->seen, g->nseen, sizeof(*g->seen), cmp_str))
        return; /* listed by the control segment already */
    report(g, "\"%s\" (found by the instance's name prefix)", name);
}

/* Names carrying this instance's prefix, in /dev/shm and DIR/dynshm_mmap. */
static void sweep(struct gc *g)
{
    static const dsm_impl_type types[] = {DSM_IMPL_POSIX, DSM_IMPL_MMAP};
    char path[4096];
    struct stat st;

    if (g->dry && g->nseen > 1)
        qsort(g->seen, g->nseen, sizeof(*g->seen), cmp_str);
    for (size_t i = 0; i < DSM_ARRAY_LEN(types); i++) {
        dsm_impl_instance *inst;

        if (!dsm_impl_type_available(types[i]))
            continue;
        if (types[i] == DSM_IMPL_MMAP) {
            /* Opening an mmap instance would create the directory: look first. */
            snprintf(path, sizeof(path), "%s/" DSM_INSPECT_MMAP_DIR, g->o->datadir);
            if (lstat(path, &st) != 0 && errno == ENOENT)
                continue;
        }
        if (dsm_impl_instance_open(types[i], g->o->datadir, &inst) < 0) {
            dsmctl_error("WARNING: cannot sweep for %s leftovers: %s",
                         dsm_impl_type_name(types[i]), dsm_errmsg());
            continue;
        }
        if (dsm__impl_sweep(inst, 0, g->dry, swept, g) < 0) {
            dsmctl_error("%s", dsm_errmsg());
            g->failed++;
        }
        dsm_impl_instance_close(inst);
    }
}

static void say_fallback(const struct dsm_inspect_target *t, const char *datadir)
{
    char name[4096];

    if (t->state_rc == -ENOENT) {
        dsmctl_error("no state file in \"%s\" (the last supervisor shut down cleanly, or gc "
                     "already ran): looking for leftovers by name prefix only", datadir);
        return;
    }
    if (t->state_rc < 0) {
        dsmctl_error("WARNING: not trusting the state file: %s; falling back to the "
                     "name-prefix sweep (System V segments cannot be found without it)", t->msg);
        return;
    }
    if (t->control_rc == DSM_EDISABLED)
        return; /* backend none: nothing was ever created */
    if (t->control_rc == -ENOENT)
        dsmctl_error("WARNING: the control segment %016llx named in the state file does not "
                     "exist; falling back to the name-prefix sweep",
                     (unsigned long long)t->rec.control);
    else
        dsmctl_error("WARNING: not trusting the control segment: %s; falling back to the "
                     "name-prefix sweep", t->msg);
    if (t->rec.backend == DSM_IMPL_SYSV && t->inst != NULL) {
        dsm_impl_segment_name(t->inst, t->rec.control, name, sizeof(name));
        dsmctl_error("WARNING: System V segments carry no name, so without a valid control "
                     "segment none can be proven to be this instance's: none removed (the "
                     "control segment is \"%s\")", name);
    }
}

int dsmctl_gc(const struct dsmctl_options *o)
{
    struct gc g = {.o = o, .dry = o->dry_run};
    struct dsmctl_lock_state ls;
    struct dsm_inspect_target t;
    char path[4096];
    int lock_fd, rc;

    if ((rc = dsmctl_check_datadir(o->datadir)) != 0)
        return rc;
    rc = dsmctl_lock_exclusive(o->datadir, &lock_fd, &ls);
    if (rc == DSMCTL_EXIT_RUNNING) {
        dsmctl_error("a supervisor (pid %ld) or its workers are running on \"%s\"; gc only "
                     "cleans up after a dead instance", ls.pid, o->datadir);
        return rc;
    }
    if (rc != 0)
        return rc;
    /* Held from here to the end: no supervisor can start on the directory meanwhile. */
    if ((rc = dsmctl_open(o->datadir, &t)) != 0) {
        close(lock_fd);
        return rc;
    }
    if (t.state_rc == 0 && t.control_rc == 0) {
        rc = through_control(&g, &t);
        if (rc < 0) {
            dsm__inspect_close(&t);
            close(lock_fd);
            return -rc;
        }
    } else {
        say_fallback(&t, o->datadir);
    }
    sweep(&g);

    if (t.state_rc != -ENOENT) {
        snprintf(path, sizeof(path), "%s/dynshm.state", o->datadir);
        if (g.failed > 0)
            dsmctl_error("keeping the state file \"%s\" so that gc can be retried", path);
        else if (g.dry)
            printf("would remove state file \"%s\"\n", path);
        else if (unlink(path) == 0 || errno == ENOENT)
            printf("removed state file \"%s\"\n", path);
        else {
            dsmctl_error("could not remove state file \"%s\": %s", path, strerror(errno));
            g.failed++;
        }
    }
    if (g.dry)
        printf("gc --dry-run: would remove %u shared memory object%s of instance %s on \"%s\"; "
               "nothing was removed\n", g.removed, g.removed == 1 ? "" : "s", t.instance,
               o->datadir);
    else
        printf("gc: removed %u shared memory object%s of instance %s on \"%s\"\n", g.removed,
               g.removed == 1 ? "" : "s", t.instance, o->datadir);
    if (g.failed > 0)
        dsmctl_error("%u object%s could not be %s", g.failed, g.failed == 1 ? "" : "s",
                     g.dry ? "checked" : "removed");
    for (size_t i = 0; i < g.nseen; i++)
        free(g.seen[i]);
    free(g.seen);
    dsm__inspect_close(&t);
    close(lock_fd); /* releases the data directory lock */
    return g.failed > 0 ? DSMCTL_EXIT_FAIL : DSMCTL_EXIT_OK;
}
