/* SPDX-License-Identifier: MIT */
/*
 * bench/dsm_bench.c - the benchmark's entry point: options, and the order
 * in which the runner measures.
 *
 * The work happens in a runner process started by the guardian
 * (guardian.c), which cleans up whatever the runner leaves if it dies.
 * The runner measures each phase for every selected backend - latencies
 * (phases.c), two processes (procs.c), capacity (capacity.c) - and prints
 * one table (report.c).  As root it first moves into a private IPC
 * namespace, so SysV's kernel.shmmni can be raised there without touching
 * the host, and so its SysV segments die with it.
 *
 * See bench.h for the other files and doc/performance.md for the results.
 */
#include "config.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dsm_bench [--quick] [--backends LIST] [--sizes LIST] [--live LIST]\n"
            "                 [--phases LIST] [--rounds N] [--dir DIR] [--no-pin]\n"
            "                 [--tsv FILE] [--json FILE]\n"
            "Times dynshm's create, attach and detach against the raw system calls of\n"
            "each backend, at growing numbers of live segments and from two processes,\n"
            "and the control segment's capacity; prints one table with PASS/MISS.\n"
            "  --quick          a short smoke run (fewer rounds, up to 1,000 live segments)\n"
            "  --backends LIST  e.g. posix,sysv (default: every available backend)\n"
            "  --sizes LIST     e.g. 4k,64k,1m,64m (the default)\n"
            "  --live LIST      other live segments, e.g. 10,1000,10000,100000 (the default)\n"
            "  --phases LIST    some of base,live,procs,capacity,region (default: all);\n"
            "                   region: the preallocated region against posix's calls\n"
            "  --rounds N       interleaved rounds per group (default 200, quick 20)\n"
            "  --dir DIR        where the data directories go (default $TMPDIR or /tmp);\n"
            "                   the mmap backend's segments are files there\n"
            "  --no-pin         do not pin the processes to CPUs\n"
            "  --tsv FILE       also write the rows as tab-separated values\n"
            "  --json FILE      also write the rows and the machine as JSON\n");
}

/* ---- options ------------------------------------------------------------------ */

static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = 1;

    if (end == s)
        return -1;
    if (*end == 'k' || *end == 'K')
        mul = 1ull << 10;
    else if (*end == 'm' || *end == 'M')
        mul = 1ull << 20;
    else if (*end == 'g' || *end == 'G')
        mul = 1ull << 30;
    if (mul > 1)
        end++;
    if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0 &&
        strcmp(end, "b") != 0)
        return -1;
    if (v == 0 || v > DSM_IMPL_MAX_SIZE / mul)
        return -1;
    *out = (size_t)(v * mul);
    return 0;
}

/* Split a comma-separated list, calling fn on each element; -1 on a bad one. */
static int each_item(const char *list, int (*fn)(const char *item, void *arg), void *arg)
{
    char buf[256], *save = NULL, *tok;

    if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
        return -1;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (fn(tok, arg) < 0)
            return -1;
    return 0;
}

static int add_backend(const char *name, void *arg)
{
    struct bench_opts *o = arg;
    dsm_impl_type t;

    if (dsm_impl_type_from_name(name, &t) < 0 || t == DSM_IMPL_NONE) {
        fprintf(stderr, "dsm_bench: %s\n", t == DSM_IMPL_NONE ? "backend \"none\" has "
                                                                "nothing to measure"
                                                              : dsm_errmsg());
        return -1;
    }
    o->backend[t] = true;
    return 0;
}

static int add_size(const char *item, void *arg)
{
    struct bench_opts *o = arg;
    size_t v;

    if (o->nsizes >= BENCH_MAX_SIZES || parse_size(item, &v) < 0) {
        fprintf(stderr, "dsm_bench: invalid or too many sizes at \"%s\"\n", item);
        return -1;
    }
    o->sizes[o->nsizes++] = v;
    return 0;
}

static int add_live(const char *item, void *arg)
{
    struct bench_opts *o = arg;
    char *end;
    unsigned long v = strtoul(item, &end, 10);

    if (o->nlive >= BENCH_MAX_LIVE || *end || end == item || v > 4000000 ||
        (o->nlive > 0 && v <= o->live[o->nlive - 1])) {
        fprintf(stderr, "dsm_bench: --live wants up to %d increasing counts (at \"%s\")\n",
                BENCH_MAX_LIVE, item);
        return -1;
    }
    o->live[o->nlive++] = (uint32_t)v;
    return 0;
}

static int add_phase(const char *item, void *arg)
{
    static const char *const names[] = {"base", "live", "procs", "capacity", "region"};
    struct bench_opts *o = arg;

    for (int i = 0; i < PHASE_COUNT; i++) {
        if (strcmp(item, names[i]) == 0) {
            o->phase[i] = true;
            return 0;
        }
    }
    fprintf(stderr, "dsm_bench: unknown phase \"%s\" (base, live, procs, capacity, region)\n",
            item);
    return -1;
}

static void join_cmdline(struct bench_opts *o, int argc, char **argv)
{
    size_t n = 0;

    for (int i = 0; i < argc && n + 4 < sizeof(o->cmdline); i++) {
        bool quote = argv[i][strcspn(argv[i], " \t'\"$")] != '\0';
        int w = snprintf(o->cmdline + n, sizeof(o->cmdline) - n, "%s%s%s%s", i ? " " : "",
                         quote ? "'" : "", argv[i], quote ? "'" : "");

        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (n >= sizeof(o->cmdline))
        o->cmdline[sizeof(o->cmdline) - 1] = '\0';
}

static int parse_options(struct bench_opts *o, int argc, char **argv)
{
    bool backends = false, phases = false;
    int rounds = 0;

    memset(o, 0, sizeof(*o));
    o->pin_cpus = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(a, "--no-pin") == 0) {
            o->pin_cpus = false;
        } else if (v == NULL) {
            fprintf(stderr, "dsm_bench: unknown option or missing value: %s\n", a);
            return -1;
        } else if (strcmp(a, "--backends") == 0) {
            backends = true;
            if (each_item(v, add_backend, o) < 0)
                return -1;
            i++;
        } else if (strcmp(a, "--sizes") == 0) {
            if (each_item(v, add_size, o) < 0)
                return -1;
            i++;
        } else if (strcmp(a, "--live") == 0) {
            if (each_item(v, add_live, o) < 0)
                return -1;
            i++;
        } else if (strcmp(a, "--phases") == 0) {
            phases = true;
            if (each_item(v, add_phase, o) < 0)
                return -1;
            i++;
        } else if (strcmp(a, "--rounds") == 0) {
            rounds = atoi(v);
            if (rounds < 1 || rounds > 100000) {
                fprintf(stderr, "dsm_bench: --rounds wants 1 .. 100000\n");
                return -1;
            }
            i++;
        } else if (strcmp(a, "--dir") == 0) {
            o->dir = v;
            i++;
        } else if (strcmp(a, "--tsv") == 0) {
            o->tsv = v;
            i++;
        } else if (strcmp(a, "--json") == 0) {
            o->json = v;
            i++;
        } else {
            fprintf(stderr, "dsm_bench: unknown option: %s\n", a);
            return -1;
        }
    }
    if (!backends)
        for (int t = 1; t < DSM_IMPL_NTYPES; t++)
            o->backend[t] = dsm_impl_type_available((dsm_impl_type)t);
    if (!phases)
        o->phase[PHASE_BASE] = o->phase[PHASE_LIVE] = o->phase[PHASE_PROCS] =
            o->phase[PHASE_CAPACITY] = o->phase[PHASE_REGION] = true;
    if (o->nsizes == 0)
        each_item("4k,64k,1m,64m", add_size, o);
    if (o->nlive == 0)
        each_item(o->quick ? "10,1000" : "10,1000,10000,100000", add_live, o);
    o->rounds = rounds ? rounds : o->quick ? 20 : 200;
    o->round_ms = o->quick ? 0.5 : 1.0;
    o->min_samples = o->quick ? 5 : 60;
    o->proc_seconds = o->quick ? 0.05 : 0.1;
    o->proc_rounds = o->quick ? 4 : 25;
    o->capacity_max = !o->quick;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        o->pin_cpus = false;
    join_cmdline(o, argc, argv);
    return 0;
}

/* ---- the runner ------------------------------------------------------------------ */

static int read_int_file(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = -1;

    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int write_int_file(const char *path, long v)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), ok;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", v);

    if (fd < 0)
        return -1;
    ok = write(fd, buf, (size_t)n) == n;
    close(fd);
    return ok ? 0 : -1;
}

/*
 * SysV segments are limited by kernel.shmmni (4096 by default).  As root,
 * move into a private IPC namespace, where the limit can be raised (up to
 * the kernel's IPCMNI) without touching the host, and where every segment
 * disappears with the namespace.  Returns how many live segments fit.
 */
static uint32_t setup_sysv(const struct bench_opts *o, struct bench_results *r)
{
    const char *path = "/proc/sys/kernel/shmmni";
    uint32_t want = o->live[o->nlive - 1] + 256;
    int before = read_int_file(path), now;

    if (geteuid() == 0 && unshare(CLONE_NEWIPC) == 0) {
        bench_reg->private_ipc = 1; /* the guardian skips the registry */
        before = read_int_file(path);
        if (write_int_file(path, (long)want) != 0)
            write_int_file(path, 32768); /* IPCMNI without ipcmni_extend */
        now = read_int_file(path);
        bench_note(r, "sysv ran in a private IPC namespace (unshare(CLONE_NEWIPC), as root); "
                      "kernel.shmmni there: %d -> %d%s", before, now,
                   now < (int)want ? " (the kernel's maximum, IPCMNI)" : "");
    } else {
        now = before;
        bench_note(r, "sysv: kernel.shmmni = %d; not raised (needs root for a private IPC "
                      "namespace)", now);
    }
    if (now <= 128)
        return 0;
    now -= 64; /* the control segment, attach targets, raw segments */
    return now >= 1000 ? (uint32_t)(now / 1000 * 1000) : (uint32_t)now;
}

static int largest_capacity(void)
{
    dsm_setting_info info;
    dsm_settings *s;
    int64_t max = 0;

    if (dsm_settings_new(&s) < 0)
        return 0;
    for (size_t i = 0; dsm_settings_describe(s, i, &info) == 0; i++)
        if (strcmp(info.name, "dsm_max_segments") == 0)
            max = info.max;
    dsm_settings_free(s);
    return (int)max;
}

static int run(const struct bench_opts *o)
{
    struct bench_results res;
    uint32_t sysv_limit = UINT32_MAX;
    int rc = 0, first = -1;
    double timer_ns;

    memset(&res, 0, sizeof(res));
    if (o->backend[DSM_IMPL_SYSV])
        sysv_limit = setup_sysv(o, &res);
    bench_pin_cpu(o, 0);
    timer_ns = bench_timer_overhead();
    bench_print_header(o, timer_ns);
    for (int t = 1; t < DSM_IMPL_NTYPES && rc == 0; t++)
        if (o->backend[t] && o->phase[PHASE_BASE])
            rc = bench_phase_base(o, (dsm_impl_type)t, &res);
    for (int t = 1; t < DSM_IMPL_NTYPES && rc == 0; t++)
        if (o->backend[t] && o->phase[PHASE_LIVE])
            rc = bench_phase_live(o, (dsm_impl_type)t, sysv_limit, &res);
    for (int t = 1; t < DSM_IMPL_NTYPES && rc == 0; t++)
        if (o->backend[t] && o->phase[PHASE_PROCS])
            rc = bench_phase_procs(o, (dsm_impl_type)t, &res);
    for (int t = 1; t < DSM_IMPL_NTYPES && rc == 0; t++) {
        if (!o->backend[t] || !o->phase[PHASE_CAPACITY])
            continue;
        if (first < 0)
            first = t;
        rc = bench_phase_capacity(o, (dsm_impl_type)t, 1000000, &res);
    }
    if (rc == 0 && o->phase[PHASE_REGION])
        rc = bench_phase_region(o, &res);
    if (rc == 0 && o->capacity_max && first >= 0)
        rc = bench_phase_capacity(o, (dsm_impl_type)first, (uint32_t)largest_capacity(), &res);
    if (o->pin_cpus)
        bench_note(&res, "the runner was pinned to CPU 0 and the second process to CPU 1");
    bench_print_table(&res);
    if (rc < 0)
        fprintf(stderr, "dsm_bench: stopped early (error %d); the table shows what was "
                        "measured before\n", rc);
    if (o->tsv && bench_write_tsv(&res, o->tsv) < 0)
        rc = -1;
    if (o->json && bench_write_json(&res, o, timer_ns, o->json) < 0)
        rc = -1;
    free(res.rows);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;

    if (parse_options(&o, argc, argv) < 0) {
        usage(stderr);
        return 2;
    }
    return bench_guard(&o, run);
}
