/* SPDX-License-Identifier: MIT */
/*
 * bench/report.c - the machine, the results table, TSV and JSON.
 *
 * Numbers without the machine and the command that produced them cannot
 * be checked, so every output starts with both.  The table is the one
 * place a reader looks: one row per measurement, what was compared, the
 * target and PASS or MISS.  TSV and JSON carry the same rows with raw
 * numbers (nanoseconds, operations per second, bytes) for scripts.
 */
#include "config.h"

#include <gnu/libc-version.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* ---- rows ------------------------------------------------------------------ */

struct bench_row *bench_add_row(struct bench_results *r)
{
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        struct bench_row *p = realloc(r->rows, (size_t)cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        r->rows = p;
        r->cap = cap;
    }
    memset(&r->rows[r->n], 0, sizeof(r->rows[0]));
    return &r->rows[r->n++];
}

void bench_note(struct bench_results *r, const char *fmt, ...)
{
    va_list ap;

    if (r->nnotes >= (int)(sizeof(r->notes) / sizeof(r->notes[0])))
        return;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->nnotes++], sizeof(r->notes[0]), fmt, ap);
    va_end(ap);
}

const char *bench_result(const struct bench_row *row)
{
    bool ok;

    if (row->check == CHECK_NONE)
        return "info";
    if (isnan(row->value))
        return "MISS";
    ok = row->check == CHECK_AT_MOST ? row->value <= row->target : row->value >= row->target;
    if (row->kind == ROW_CAPACITY)
        ok = ok && row->live >= 1000000;
    return ok ? "PASS" : "MISS";
}

const char *bench_size_str(size_t size, char *buf, size_t len)
{
    if (size == 0)
        snprintf(buf, len, "-");
    else if (size % (1u << 30) == 0)
        snprintf(buf, len, "%zu GiB", size >> 30);
    else if (size % (1u << 20) == 0)
        snprintf(buf, len, "%zu MiB", size >> 20);
    else if (size % 1024 == 0)
        snprintf(buf, len, "%zu KiB", size >> 10);
    else
        snprintf(buf, len, "%zu B", size);
    return buf;
}

static const char *count_str(uint64_t v, char *buf, size_t len)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v), o = 0;

    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *rate_str(double ops, char *buf, size_t len)
{
    if (ops >= 1e6)
        snprintf(buf, len, "%.2fM", ops / 1e6);
    else
        snprintf(buf, len, "%.0fk", ops / 1e3);
    return buf;
}

/* ---- the machine ---------------------------------------------------------------- */

struct machine {
    char cpu[128];
    long cores;
    char kernel[200];
    double mem_gib;
};

static void machine_info(struct machine *m)
{
    struct utsname u;
    char line[256];
    FILE *f;

    memset(m, 0, sizeof(*m));
    snprintf(m->cpu, sizeof(m->cpu), "unknown CPU");
    if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
        while (fgets(line, sizeof(line), f)) {
            char *colon = strchr(line, ':');

            if (strncmp(line, "model name", 10) == 0 && colon) {
                colon += 2;
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(m->cpu, sizeof(m->cpu), "%s", colon);
                break;
            }
        }
        fclose(f);
    }
    m->cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname, u.release, u.machine);
    m->mem_gib = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1u << 30);
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

/* The load averages, so a busy machine shows in the results. */
static const char *loadavg(char *buf, size_t len)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;

    if (f == NULL || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
        snprintf(buf, len, "unknown");
    else
        snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
    if (f)
        fclose(f);
    return buf;
}

/* The file system holding the data directories (the mmap backend's files). */
static const char *fs_type(const char *path)
{
    struct statfs sf;

    if (statfs(path, &sf) != 0)
        return "unknown file system";
    switch ((unsigned long)sf.f_type) {
    case 0x01021994UL:
        return "tmpfs";
    case 0xEF53UL:
        return "ext2/3/4";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    default:
        return "other file system";
    }
}

void bench_print_header(const struct bench_opts *o, double timer_ns)
{
    struct machine m;
    char date[64], load[64];

    machine_info(&m);
    utc_now(date, sizeof(date));
    printf("dsm_bench: dynshm %s against the raw system calls of each backend\n",
           PACKAGE_VERSION);
    printf("machine:  %s, %ld cores, %.1f GiB RAM, %s, glibc %s\n", m.cpu, m.cores, m.mem_gib,
           m.kernel, gnu_get_libc_version());
    printf("command:  %s\n", o->cmdline);
    printf("date:     %s\n", date);
    printf("data:     %s (%s)\n", o->tmpdir, fs_type(o->tmpdir));
    printf("load:     %s at start (1, 5, 15 min averages)\n", loadavg(load, sizeof(load)));
    printf("method:   median and p90 of single iterations (clock overhead %.0f ns subtracted);\n"
           "          each dynshm case runs interleaved with its raw case: %d rounds, a fresh\n"
           "          random order each round, ~%.1f ms per case per round%s;\n"
           "          two processes: median of %d rounds of %.0f ms windows per mode\n",
           timer_ns, o->rounds, o->round_ms,
           o->pin_cpus ? "; pinned to CPU 0 (the second process to CPU 1)" : "",
           o->proc_rounds, o->proc_seconds * 1e3);
    printf("targets:  create+destroy <= 1.05x raw; attach+detach <= 1.10x raw; with %s live\n"
           "          segments every operation <= 1.15x its cost with %s; capacity >= "
           "1,000,000 slots\n          at <= 64 bytes of control segment per slot\n\n",
           "100,000", "10");
    fflush(stdout);
}

/* ---- the table ------------------------------------------------------------------- */

#define TABLE_FMT "%-15s %-7s %-7s %9s  %-21s %-21s %-7s %-17s %-8s %-6s %s\n"

static void row_cells(const struct bench_row *row, char *dyn, char *raw, char *ratio,
                      char *check, char *target, size_t len)
{
    char a[24], b[24];

    switch (row->kind) {
    case ROW_LATENCY:
        snprintf(dyn, len, "%9.2f / %8.2f", row->dyn_med / 1e3, row->dyn_p90 / 1e3);
        snprintf(raw, len, "%9.2f / %8.2f", row->raw_med / 1e3, row->raw_p90 / 1e3);
        snprintf(ratio, len, "%.3f", row->dyn_med / row->raw_med);
        break;
    case ROW_PROCS:
        snprintf(dyn, len, "1p %s, 2p %s", rate_str(row->dyn_med, a, sizeof(a)),
                 rate_str(row->dyn_p90, b, sizeof(b)));
        snprintf(raw, len, "1p %s, 2p %s", rate_str(row->raw_med, a, sizeof(a)),
                 rate_str(row->raw_p90, b, sizeof(b)));
        snprintf(ratio, len, "%.3f", row->raw_p90 / row->dyn_p90);
        break;
    case ROW_CAPACITY:
        if (isnan(row->value)) {
            snprintf(dyn, len, "failed");
            snprintf(raw, len, "-");
        } else {
            snprintf(dyn, len, "%.1f MiB control", row->dyn_med / 1048576);
            snprintf(raw, len, "start-up %.0f ms", row->dyn_p90 / 1e6);
        }
        snprintf(ratio, len, "-");
        break;
    }
    if (isnan(row->value))
        snprintf(check, len, "%s -", row->metric);
    else
        snprintf(check, len, "%s %.*f", row->metric, row->kind == ROW_CAPACITY ? 1 : 3,
                 row->value);
    if (row->check == CHECK_NONE)
        snprintf(target, len, "-");
    else
        snprintf(target, len, "%s %.*f", row->check == CHECK_AT_MOST ? "<=" : ">=",
                 row->kind == ROW_CAPACITY ? 0 : 2, row->target);
}

/* Rows of one section print together: base latencies, live counts, processes, capacity. */
static int section(const struct bench_row *row)
{
    return row->kind == ROW_LATENCY ? (row->live == 0 ? 0 : 1) : 1 + (int)row->kind;
}

void bench_print_table(const struct bench_results *r)
{
    int pass = 0, miss = 0;

    printf(TABLE_FMT, "case", "backend", "size", "live", "dynshm med / p90", "raw med / p90",
           "dyn/raw", "checked", "target", "result", "note");
    printf(TABLE_FMT, "", "", "", "", "(us; ops/s)", "(us; ops/s)", "", "", "", "", "");
    for (int i = 0; i < r->n; i++) {
        const struct bench_row *row = &r->rows[i];
        char size[32], live[32], dyn[96], raw[96], ratio[96], check[96], target[96];
        const char *res = bench_result(row);

        if (i > 0 && (section(row) != section(&r->rows[i - 1]) ||
                      (row->kind == ROW_LATENCY &&
                       strcmp(row->backend, r->rows[i - 1].backend) != 0)))
            printf("\n");
        row_cells(row, dyn, raw, ratio, check, target, sizeof(dyn));
        if (row->live == 0)
            snprintf(live, sizeof(live), "-");
        else
            count_str(row->live, live, sizeof(live));
        printf(TABLE_FMT, row->test, row->backend, bench_size_str(row->size, size, sizeof(size)),
               live, dyn, raw, ratio, check, target, res, row->note);
        pass += strcmp(res, "PASS") == 0;
        miss += strcmp(res, "MISS") == 0;
    }
    printf("\ntargets: %d PASS, %d MISS (of %d rows checked)\n", pass, miss, pass + miss);
    for (int i = 0; i < r->nnotes; i++)
        printf("note: %s\n", r->notes[i]);
    fflush(stdout);
}

/* ---- machine-readable copies ---------------------------------------------------------- */

static const char *kind_name(enum bench_row_kind k)
{
    return k == ROW_LATENCY ? "latency_ns" : k == ROW_PROCS ? "ops_per_second" : "capacity";
}

int bench_write_tsv(const struct bench_results *r, const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        perror(path);
        return -1;
    }
    fprintf(f, "case\tbackend\tsize_bytes\tlive\tunit\tdyn_median\tdyn_p90\traw_median\t"
               "raw_p90\tsamples\tmetric\tvalue\ttarget\tresult\tnote\n");
    for (int i = 0; i < r->n; i++) {
        const struct bench_row *w = &r->rows[i];

        fprintf(f, "%s\t%s\t%zu\t%llu\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%zu\t%s\t%.4f\t%.2f\t%s\t%s\n",
                w->test, w->backend, w->size, (unsigned long long)w->live, kind_name(w->kind),
                w->dyn_med, w->dyn_p90, w->raw_med, w->raw_p90, w->samples, w->metric,
                w->value, w->target, bench_result(w), w->note);
    }
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned)(unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.4f", v);
}

int bench_write_json(const struct bench_results *r, const struct bench_opts *o,
                     double timer_ns, const char *path)
{
    FILE *f = fopen(path, "w");
    struct machine m;
    char date[64];

    if (f == NULL) {
        perror(path);
        return -1;
    }
    machine_info(&m);
    utc_now(date, sizeof(date));
    fprintf(f, "{\n  \"dynshm_version\": ");
    json_str(f, PACKAGE_VERSION);
    fprintf(f, ",\n  \"machine\": {\"cpu\": ");
    json_str(f, m.cpu);
    fprintf(f, ", \"cores\": %ld, \"memory_gib\": %.1f, \"kernel\": ", m.cores, m.mem_gib);
    json_str(f, m.kernel);
    fprintf(f, ", \"glibc\": ");
    json_str(f, gnu_get_libc_version());
    fprintf(f, "},\n  \"command\": ");
    json_str(f, o->cmdline);
    fprintf(f, ",\n  \"date\": ");
    json_str(f, date);
    fprintf(f, ",\n  \"rounds\": %d,\n  \"timer_overhead_ns\": %.1f,\n  \"rows\": [\n",
            o->rounds, timer_ns);
    for (int i = 0; i < r->n; i++) {
        const struct bench_row *w = &r->rows[i];

        fprintf(f, "    {\"case\": ");
        json_str(f, w->test);
        fprintf(f, ", \"backend\": ");
        json_str(f, w->backend);
        fprintf(f, ", \"size_bytes\": %zu, \"live\": %llu, \"unit\": \"%s\", ", w->size,
                (unsigned long long)w->live, kind_name(w->kind));
        fprintf(f, "\"dyn_median\": ");
        json_num(f, w->dyn_med);
        fprintf(f, ", \"dyn_p90\": ");
        json_num(f, w->dyn_p90);
        fprintf(f, ", \"raw_median\": ");
        json_num(f, w->raw_med);
        fprintf(f, ", \"raw_p90\": ");
        json_num(f, w->raw_p90);
        fprintf(f, ", \"samples\": %zu, \"metric\": ", w->samples);
        json_str(f, w->metric);
        fprintf(f, ", \"value\": ");
        json_num(f, w->value);
        fprintf(f, ", \"target\": ");
        if (w->check == CHECK_NONE)
            fputs("null", f);
        else
            json_num(f, w->target);
        fprintf(f, ", \"result\": \"%s\", \"note\": ", bench_result(w));
        json_str(f, w->note);
        fprintf(f, "}%s\n", i + 1 < r->n ? "," : "");
    }
    fprintf(f, "  ],\n  \"notes\": [");
    for (int i = 0; i < r->nnotes; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_str(f, r->notes[i]);
    }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}
