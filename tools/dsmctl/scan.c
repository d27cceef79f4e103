/* SPDX-License-Identifier: MIT */
/*
 * scan.c - `dsmctl scan`: every dynshm object on the host, tied to its
 * instance and data directory, or called an orphan with the command that
 * removes it.
 *
 * The library lists what exists (dsm_scan_host(3)): posix objects and mmap
 * files carry their instance id in their name, and a control segment
 * records the absolute data directory of its instance (control layout 3).
 * This file decides whose each object is, by the same proof everything
 * else in dynshm uses: inspect the data directory (the recorded one, and
 * every -D given) and compare its instance id, which is the directory's
 * own identity; the data directory lock then says whether the instance
 * runs.  So each object is
 *   live      its instance runs: not ours to touch;
 *   leftover  its instance is not running: `dsmctl -D DIR gc` removes it
 *             (the safe way: gc proves every object before removing it);
 *   orphan    no data directory claims its instance (never recorded, the
 *             directory is gone or is now another instance) and no process
 *             maps it: the hint is the rm or ipcrm that removes it by hand;
 *   mapped    no data directory claims it, but a process maps it (seen in
 *             /proc/PID/maps, or System V's attach count): an instance of
 *             an older dynshm whose control segment records no directory,
 *             or one whose directory was not given with -D.  Never called
 *             an orphan: removing it could break a running program;
 *   unknown   a System V segment of ours that is not a control segment and
 *             that no inspected instance lists (its key is a hash: it may
 *             belong to another program); shown with --all only.
 * Exit status 5 when a leftover or an orphan was found, so a cron job can
 * alert on it; 0 otherwise.
 */
#include "config.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "dsmctl.h"

enum verdict { V_LIVE, V_LEFTOVER, V_ORPHAN, V_MAPPED, V_UNKNOWN, NVERDICTS };
static const char *const verdict_names[] = {"live", "leftover", "orphan", "mapped", "unknown"};

struct object {
    dsm_impl_type backend;
    char *name;
    char instance[17];
    uint64_t size;
    int64_t os_id;
    bool control;
    uint32_t layout;     /* a control segment's layout version (ours or not), or 0 */
    int64_t attached;    /* System V attach count, else -1 */
    char *recorded;      /* control: the data directory it records */
    enum verdict verdict;
    const char *datadir; /* the owner's data directory (a struct dir's path), or NULL */
    char why[256];
};

/* A data directory looked at once: its id and state, and its snapshot for System V names. */
struct dir {
    char *path;
    bool ok;
    dsm_instance_info info;
    dsm_inspection *insp;
};

/* A file mapping of some process, by the name dsm_scan_host() uses. */
struct mapped {
    char *name;
    pid_t pid;
};

struct scan {
    struct mapped *maps;
    size_t nmaps, mcap;
    struct object *obj;
    size_t n, cap;
    struct dir *dirs;
    size_t ndirs, dcap;
    bool oom;
};

static char *dup_or_flag(struct scan *sc, const char *s)
{
    char *d = strdup(s);

    if (d == NULL)
        sc->oom = true;
    return d;
}

static void collect(const dsm_host_object *h, void *arg)
{
    struct scan *sc = arg;
    struct object *o;

    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        struct object *p = realloc(sc->obj, cap * sizeof(*p));

        if (p == NULL) {
            sc->oom = true;
            return;
        }
        sc->obj = p;
        sc->cap = cap;
    }
    o = &sc->obj[sc->n++];
    memset(o, 0, sizeof(*o));
    o->backend = h->backend;
    o->name = dup_or_flag(sc, h->name);
    snprintf(o->instance, sizeof(o->instance), "%s", h->instance);
    o->size = h->size;
    o->os_id = h->os_id;
    o->control = h->control;
    o->layout = h->layout_version;
    o->attached = h->attached;
    o->recorded = dup_or_flag(sc, h->datadir);
}

static int cmp_mapped(const void *a, const void *b)
{
    return strcmp(((const struct mapped *)a)->name, ((const struct mapped *)b)->name);
}

static void add_mapping(struct scan *sc, const char *name, pid_t pid)
{
    if (sc->nmaps == sc->mcap) {
        size_t cap = sc->mcap ? sc->mcap * 2 : 64;
        struct mapped *p = realloc(sc->maps, cap * sizeof(*p));

        if (p == NULL) {
            sc->oom = true;
            return;
        }
        sc->maps = p;
        sc->mcap = cap;
    }
    if ((sc->maps[sc->nmaps].name = strdup(name)) == NULL) {
        sc->oom = true;
        return;
    }
    sc->maps[sc->nmaps++].pid = pid;
}

/*
 * Every dynshm file any process we may read maps (all of them as root),
 * from /proc/PID/maps: "/dev/shm/dynshm.X.Y" becomes "/dynshm.X.Y", the
 * name posix objects go by; mmap segments keep their path.
 */
static void read_mappings(struct scan *sc)
{
    DIR *proc = opendir("/proc");
    struct dirent *e;

    if (proc == NULL)
        return;
    while ((e = readdir(proc)) != NULL) {
        char path[64], line[4400];
        FILE *f;
        pid_t pid = (pid_t)atoi(e->d_name);

        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
        if ((f = fopen(path, "re")) == NULL)
            continue;
        while (fgets(line, sizeof(line), f) != NULL) {
            char *p = strchr(line, '/'), *nl;

            if (p == NULL || strstr(p, "/dynshm.") == NULL)
                continue;
            if ((nl = strchr(p, '\n')) != NULL)
                *nl = '\0';
            if (strncmp(p, "/dev/shm/", 9) == 0)
                p += 8;
            add_mapping(sc, p, pid);
        }
        fclose(f);
    }
    closedir(proc);
    if (sc->nmaps > 1) /* (maps is NULL when nothing is mapped) */
        qsort(sc->maps, sc->nmaps, sizeof(*sc->maps), cmp_mapped);
}

/* A process mapping name, or 0. */
static pid_t mapped_by(const struct scan *sc, const char *name)
{
    struct mapped key = {.name = (char *)name};
    const struct mapped *m = sc->nmaps ? bsearch(&key, sc->maps, sc->nmaps, sizeof(key),
                                                 cmp_mapped)
                                       : NULL;

    return m ? m->pid : 0;
}

/* Inspect path once (quietly: a missing directory is a finding, not an error). */
static struct dir *dir_of(struct scan *sc, const char *path)
{
    struct dir *d;

    for (size_t i = 0; i < sc->ndirs; i++)
        if (strcmp(sc->dirs[i].path, path) == 0)
            return &sc->dirs[i];
    if (sc->ndirs == sc->dcap) {
        size_t cap = sc->dcap ? sc->dcap * 2 : 16;
        struct dir *p = realloc(sc->dirs, cap * sizeof(*p));

        if (p == NULL) {
            sc->oom = true;
            return NULL;
        }
        sc->dirs = p;
        sc->dcap = cap;
    }
    d = &sc->dirs[sc->ndirs];
    memset(d, 0, sizeof(*d));
    if ((d->path = strdup(path)) == NULL) {
        sc->oom = true;
        return NULL;
    }
    sc->ndirs++;
    if (dsm_inspect_open(path, DSMCTL_LOCK_TIMEOUT_MS, &d->insp) == 0) {
        dsm_inspect_instance(d->insp, &d->info, sizeof(d->info));
        d->ok = d->info.state != DSM_INSTANCE_NONE;
    }
    return d;
}

/* The inspected directory that is instance id, if any. */
static struct dir *owner_of(struct scan *sc, const char *id)
{
    for (size_t i = 0; i < sc->ndirs; i++)
        if (sc->dirs[i].ok && strcmp(sc->dirs[i].info.id, id) == 0)
            return &sc->dirs[i];
    return NULL;
}

/* The inspected System V instance that lists name (a segment or its control segment). */
static struct dir *sysv_owner(struct scan *sc, const char *name)
{
    for (size_t i = 0; i < sc->ndirs; i++) {
        struct dir *d = &sc->dirs[i];

        if (!d->ok || d->info.state_status != 0 || d->info.backend != DSM_IMPL_SYSV)
            continue;
        if (strcmp(d->info.control_name, name) == 0)
            return d;
        for (size_t k = 0; k < dsm_inspect_nsegments(d->insp); k++) {
            dsm_segment_info s;

            if (dsm_inspect_segment(d->insp, k, &s, sizeof(s)) == 0 && strcmp(s.name, name) == 0)
                return d;
        }
    }
    return NULL;
}

static void judge(struct scan *sc, struct object *o)
{
    struct dir *d;

    if (o->instance[0] == '\0') {
        d = sysv_owner(sc, o->name);
        if (d == NULL) {
            o->verdict = V_UNKNOWN;
            snprintf(o->why, sizeof(o->why), "a System V segment no inspected instance lists "
                                             "(its key proves nothing: it may not be dynshm's)");
            return;
        }
    } else {
        d = owner_of(sc, o->instance);
    }
    if (d == NULL) {
        pid_t pid = mapped_by(sc, o->name);

        o->verdict = V_ORPHAN;
        if (pid > 0 || o->attached > 0) {
            o->verdict = V_MAPPED;
            if (pid > 0)
                snprintf(o->why, sizeof(o->why), "no data directory claims instance %s, but "
                                                 "process %d maps it", o->instance, (int)pid);
            else
                snprintf(o->why, sizeof(o->why), "no data directory claims it, but %lld "
                                                 "process(es) attach it", (long long)o->attached);
        } else if (o->layout != 0 && !o->control)
            snprintf(o->why, sizeof(o->why), "a control segment of another dynshm release "
                                             "(layout %u): it cannot say whose it is",
                     (unsigned)o->layout);
        else if (o->control && o->recorded != NULL && o->recorded[0] != '\0')
            snprintf(o->why, sizeof(o->why), "its recorded data directory \"%.180s\" is gone or "
                                             "is now another instance", o->recorded);
        else
            snprintf(o->why, sizeof(o->why), "no data directory is known for instance %s",
                     o->instance);
        return;
    }
    o->datadir = d->path;
    if (d->info.state == DSM_INSTANCE_RUNNING) {
        o->verdict = V_LIVE;
        snprintf(o->why, sizeof(o->why), "the instance is running");
    } else {
        o->verdict = V_LEFTOVER;
        snprintf(o->why, sizeof(o->why), "the instance is not running");
    }
}

/* The command that removes o by hand (orphans), or gc (leftovers); "" otherwise. */
static void hint_of(const struct object *o, char *buf, size_t len)
{
    buf[0] = '\0';
    if (o->verdict == V_LEFTOVER)
        snprintf(buf, len, "dsmctl -D '%s' gc", o->datadir);
    else if (o->verdict == V_ORPHAN && o->backend == DSM_IMPL_SYSV)
        snprintf(buf, len, "ipcrm -m %lld", (long long)o->os_id);
    else if (o->verdict == V_ORPHAN && o->backend == DSM_IMPL_POSIX)
        snprintf(buf, len, "rm '/dev/shm%s'", o->name);
    else if (o->verdict == V_ORPHAN)
        snprintf(buf, len, "rm '%s'", o->name);
}

static bool shown(const struct dsmctl_options *o, const struct object *ob)
{
    return ob->verdict != V_UNKNOWN || o->all;
}

static void print_json(const struct dsmctl_options *o, const struct scan *sc,
                       const size_t *count)
{
    bool first = true;

    printf("{\n  \"format_version\": %d,\n  \"objects\": [", DSMCTL_JSON_FORMAT);
    for (size_t i = 0; i < sc->n; i++) {
        const struct object *ob = &sc->obj[i];
        char hint[4200];

        if (!shown(o, ob))
            continue;
        hint_of(ob, hint, sizeof(hint));
        printf("%s\n    {\"name\": ", first ? "" : ",");
        first = false;
        dsmctl_json_string(stdout, ob->name);
        printf(", \"backend\": \"%s\", \"instance\": ", dsm_impl_type_name(ob->backend));
        if (ob->instance[0])
            printf("\"%s\"", ob->instance);
        else
            printf("null");
        printf(", \"size\": %llu, \"control\": %s, \"status\": \"%s\", \"data_directory\": ",
               (unsigned long long)ob->size, ob->control ? "true" : "false",
               verdict_names[ob->verdict]);
        if (ob->datadir)
            dsmctl_json_string(stdout, ob->datadir);
        else
            printf("null");
        printf(", \"recorded_data_directory\": ");
        if (ob->control)
            dsmctl_json_string(stdout, ob->recorded);
        else
            printf("null");
        if (ob->os_id >= 0)
            printf(", \"os_id\": %lld", (long long)ob->os_id);
        printf(", \"reason\": ");
        dsmctl_json_string(stdout, ob->why);
        printf(", \"hint\": ");
        dsmctl_json_string(stdout, hint);
        printf("}");
    }
    printf("%s],\n  \"summary\": {\"live\": %zu, \"leftover\": %zu, \"orphan\": %zu, "
           "\"mapped\": %zu, \"unknown\": %zu}\n}\n", first ? "" : "\n  ", count[V_LIVE],
           count[V_LEFTOVER], count[V_ORPHAN], count[V_MAPPED], count[V_UNKNOWN]);
}

static void print_text(const struct dsmctl_options *o, const struct scan *sc,
                       const size_t *count)
{
    printf("%-8s  %-16s  %-5s  %10s  %-7s  %s\n", "STATUS", "INSTANCE", "KIND", "SIZE",
           "CONTROL", "NAME  (DATA DIRECTORY)");
    for (size_t i = 0; i < sc->n; i++) {
        const struct object *ob = &sc->obj[i];
        char size[32];

        if (!shown(o, ob))
            continue;
        printf("%-8s  %-16s  %-5s  %10s  %-7s  %s", verdict_names[ob->verdict],
               ob->instance[0] ? ob->instance : "-", dsm_impl_type_name(ob->backend),
               dsmctl_format_size(ob->size, o->human, size, sizeof(size)),
               ob->control ? "yes" : "-", ob->name);
        if (ob->datadir)
            printf("  (%s)", ob->datadir);
        putchar('\n');
    }
    printf("%zu live, %zu leftover, %zu orphan", count[V_LIVE], count[V_LEFTOVER],
           count[V_ORPHAN]);
    if (count[V_MAPPED])
        printf(", %zu unclaimed but mapped", count[V_MAPPED]);
    if (count[V_UNKNOWN])
        printf(", %zu unknown System V segment%s%s", count[V_UNKNOWN],
               count[V_UNKNOWN] == 1 ? "" : "s", o->all ? "" : " (--all shows them)");
    putchar('\n');
    /* How to clean up, once per data directory for leftovers and per object for orphans. */
    for (size_t i = 0; i < sc->n; i++) {
        const struct object *ob = &sc->obj[i];
        char hint[4200];
        bool again = false;

        if (ob->verdict != V_LEFTOVER && ob->verdict != V_ORPHAN)
            continue;
        for (size_t k = 0; k < i && ob->verdict == V_LEFTOVER; k++)
            again |= sc->obj[k].verdict == V_LEFTOVER && sc->obj[k].datadir == ob->datadir;
        if (again)
            continue;
        hint_of(ob, hint, sizeof(hint));
        if (ob->verdict == V_LEFTOVER)
            printf("leftovers of the instance on \"%s\" (not running): %s\n", ob->datadir, hint);
        else
            printf("orphan %s: %s; to remove it: %s\n", ob->name, ob->why, hint);
    }
}

int dsmctl_scan(const struct dsmctl_options *o)
{
    struct scan sc = {0};
    size_t count[NVERDICTS] = {0};
    int n, rc;

    n = dsm_scan_host(o->datadirs, o->ndatadirs, collect, &sc);
    if (n < 0) {
        dsmctl_dsm_error();
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    read_mappings(&sc);
    /* Every directory told of, then every recorded one: inspected once each. */
    for (size_t i = 0; i < o->ndatadirs; i++)
        dir_of(&sc, o->datadirs[i]);
    for (size_t i = 0; i < sc.n; i++)
        if (sc.obj[i].control && sc.obj[i].recorded && sc.obj[i].recorded[0] != '\0')
            dir_of(&sc, sc.obj[i].recorded);
    if (sc.oom) {
        dsmctl_error("out of memory");
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < sc.n; i++) {
        judge(&sc, &sc.obj[i]);
        count[sc.obj[i].verdict]++;
    }
    if (o->json)
        print_json(o, &sc, count);
    else
        print_text(o, &sc, count);
    rc = count[V_LEFTOVER] || count[V_ORPHAN] ? DSMCTL_EXIT_LEFTOVERS : DSMCTL_EXIT_OK;
out:
    for (size_t i = 0; i < sc.n; i++) {
        free(sc.obj[i].name);
        free(sc.obj[i].recorded);
    }
    free(sc.obj);
    for (size_t i = 0; i < sc.ndirs; i++) {
        dsm_inspect_close(sc.dirs[i].insp);
        free(sc.dirs[i].path);
    }
    free(sc.dirs);
    for (size_t i = 0; i < sc.nmaps; i++)
        free(sc.maps[i].name);
    free(sc.maps);
    return rc;
}
