/* SPDX-License-Identifier: MIT */
/*
 * procs.c - `dsmctl procs`: the processes registered with an instance,
 * one row each: pid, when it started, how it joined (the supervisor, a
 * forked worker, or an exec'd one that joined through the state file),
 * whether it still runs, the references it holds and the bytes it maps.
 *
 * The question it answers is "who holds the memory?": sort by size and
 * the top row is the process to look at.  The start time is the kernel's
 * (clock ticks since boot, which with the pid is the process's identity in
 * the table) turned into wall-clock time with the boot time from
 * /proc/stat; a process that no longer runs is shown as dead, which for a
 * running instance means the supervisor has not yet reclaimed it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsmctl.h"

/* Boot time in seconds since the epoch, or 0 if unknown. */
static int64_t boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    char line[256];
    long long bt = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

struct prow {
    dsm_process_info p;
    int64_t started; /* seconds since the epoch, or 0 */
};

static enum dsmctl_sort order;

static int cmp_prow(const void *a, const void *b)
{
    const struct prow *x = a, *y = b;

    switch (order) {
    case DSMCTL_SORT_SIZE:
        if (x->p.bytes_mapped != y->p.bytes_mapped)
            return x->p.bytes_mapped > y->p.bytes_mapped ? -1 : 1;
        break;
    case DSMCTL_SORT_AGE:
        if (x->p.start_time != y->p.start_time)
            return x->p.start_time < y->p.start_time ? -1 : 1;
        break;
    case DSMCTL_SORT_REFS:
        if (x->p.references != y->p.references)
            return x->p.references > y->p.references ? -1 : 1;
        break;
    default: break;
    }
    return 0;
}

static void print_json(const struct dsmctl_options *o, const dsm_instance_info *info,
                       const struct prow *r, size_t n)
{
    printf("{\n  \"format_version\": %d,\n  \"data_directory\": ", DSMCTL_JSON_FORMAT);
    dsmctl_json_string(stdout, o->datadir);
    printf(",\n  \"instance\": \"%s\",\n  \"running\": %s,\n  \"processes\": [", info->id,
           info->state == DSM_INSTANCE_RUNNING ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        const dsm_process_info *p = &r[i].p;

        printf("%s\n    {\"pid\": %d, \"start_time_ticks\": %llu, \"started\": ", i ? "," : "",
               (int)p->pid, (unsigned long long)p->start_time);
        if (r[i].started > 0)
            printf("%lld", (long long)r[i].started);
        else
            printf("null");
        printf(", \"kind\": \"%s\", \"alive\": %s, \"references\": %u, \"bytes_mapped\": %llu, "
               "\"registered_usec\": %lld}",
               p->kind, p->alive ? "true" : "false", (unsigned)p->references,
               (unsigned long long)p->bytes_mapped, (long long)p->registered_usec);
    }
    printf("%s]\n}\n", n ? "\n  " : "");
}

static void print_table(const struct dsmctl_options *o, const struct prow *r, size_t n)
{
    time_t now = time(NULL);
    uint64_t bytes = 0;

    printf("%-8s  %-10s  %-5s  %-25s  %-7s  %5s  %10s\n", "PID", "KIND", "ALIVE", "STARTED",
           "AGE", "REFS", "MAPPED");
    for (size_t i = 0; i < n; i++) {
        const dsm_process_info *p = &r[i].p;
        char when[64] = "?", age[32] = "?", size[32];

        if (r[i].started > 0) {
            dsmctl_format_time(r[i].started, when, sizeof(when));
            dsmctl_format_age((int64_t)now - r[i].started, age, sizeof(age));
        }
        printf("%-8d  %-10s  %-5s  %-25s  %-7s  %5u  %10s\n", (int)p->pid, p->kind,
               p->alive ? "yes" : "no", when, age, (unsigned)p->references,
               dsmctl_format_size(p->bytes_mapped, o->human, size, sizeof(size)));
        bytes += p->bytes_mapped;
    }
    {
        char size[32];

        printf("%zu process%s, %s%s mapped\n", n, n == 1 ? "" : "es",
               dsmctl_format_size(bytes, o->human, size, sizeof(size)),
               o->human ? "" : " bytes");
    }
}

int dsmctl_procs(const struct dsmctl_options *o)
{
    dsm_inspection *insp;
    dsm_instance_info info;
    struct prow *rows;
    size_t total, n = 0;
    int64_t boot = boot_time();
    long hz = sysconf(_SC_CLK_TCK);
    int rc;

    if ((rc = dsmctl_inspect(o->datadir, &insp, &info)) != 0)
        return rc;
    if (info.state_status == 0 && info.control_status < 0 &&
        info.control_status != DSM_EDISABLED) {
        dsmctl_error("the control segment of \"%s\" is not valid: %s", o->datadir, info.message);
        dsm_inspect_close(insp);
        return DSMCTL_EXIT_FAIL;
    }
    total = dsm_inspect_nprocesses(insp);
    rows = calloc(total ? total : 1, sizeof(*rows));
    if (rows == NULL) {
        dsm_inspect_close(insp);
        dsmctl_error("out of memory");
        return DSMCTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < total; i++) {
        struct prow *r = &rows[n];

        if (dsm_inspect_process(insp, i, &r->p, sizeof(r->p)) != 0)
            continue;
        if (o->pid > 0 && r->p.pid != o->pid)
            continue;
        r->started = boot > 0 && hz > 0 ? boot + (int64_t)(r->p.start_time / (uint64_t)hz) : 0;
        n++;
    }
    order = o->sort;
    if (order != DSMCTL_SORT_NONE) {
        /* qsort is not stable: ties keep table order through the index. */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && cmp_prow(&rows[j - 1], &rows[j]) > 0; j--) {
                struct prow t = rows[j];

                rows[j] = rows[j - 1];
                rows[j - 1] = t;
            }
    }
    if (o->json)
        print_json(o, &info, rows, n);
    else
        print_table(o, rows, n);
    free(rows);
    dsm_inspect_close(insp);
    return DSMCTL_EXIT_OK;
}
