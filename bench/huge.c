/* SPDX-License-Identifier: MIT */
/*
 * bench/huge.c - huge pages against normal pages, in one run (dsm_bench_huge).
 *
 * Why a program of its own: huge pages need a reservation the benchmark
 * must make and undo (root), and their two questions are not latencies of
 * one call but throughput over a large segment:
 *   first touch  create a segment and write one byte in every 4 KiB (what a
 *                worker pays the first time it fills a segment), per MiB;
 *   random read  8-byte loads at random offsets over the whole segment
 *                (TLB-bound), nanoseconds per load.
 * Each is measured with huge_pages = off and = on, same backend (memfd),
 * same size, same run, alternating; the ratio is what huge pages buy.
 *
 * usage: dsm_bench_huge [SIZE_MIB [ROUNDS]]   (default 1024 MiB, 3 rounds)
 * It reserves SIZE_MIB/2 + 2 pages of 2 MiB through /proc/sys/vm/nr_hugepages
 * and puts the old value back before it exits (also on a failure).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dynshm/dsm.h>
#include <dynshm/settings.h>

#define NR "/proc/sys/vm/nr_hugepages"

static double now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static long read_nr(void)
{
    FILE *f = fopen(NR, "re");
    long v = -1;

    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int write_nr(long v)
{
    FILE *f = fopen(NR, "we");
    int ok;

    if (f == NULL)
        return -1;
    ok = fprintf(f, "%ld\n", v) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* One measurement: create, touch every 4 KiB, random loads; 0 or an error. */
static int measure(const char *dir, const char *huge, size_t size, double *touch_ns_mib,
                   double *load_ns)
{
    const char *opts[] = {"dynamic_shared_memory_type=memfd", huge};
    const size_t loads = (size_t)20 * 1000 * 1000;
    dsm_settings *s;
    dsm_segment *seg;
    volatile uint64_t sink = 0;
    uint64_t x = 88172645463325252ull;
    unsigned char *p;
    double t0;
    int rc;

    if ((rc = dsm_settings_new(&s)) < 0)
        return rc;
    for (size_t i = 0; i < 2 && rc == 0; i++)
        rc = dsm_settings_parse_option(s, opts[i]);
    if (rc == 0)
        rc = dsm_supervisor_start(dir, s);
    dsm_settings_free(s);
    if (rc < 0)
        return rc;
    t0 = now_ns();
    rc = dsm_create(size, 0, &seg);
    if (rc == 0) {
        p = dsm_segment_address(seg);
        for (size_t off = 0; off < size; off += 4096)
            p[off] = 1;
        *touch_ns_mib = (now_ns() - t0) / (double)(size >> 20);
        t0 = now_ns();
        for (size_t i = 0; i < loads; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
            sink += *(const uint64_t *)(p + ((x % size) & ~(size_t)7));
        }
        *load_ns = (now_ns() - t0) / (double)loads;
        dsm_detach(seg);
    }
    dsm_supervisor_shutdown();
    (void)sink;
    return rc;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    size_t size = mib << 20;
    char dir[] = "/tmp/dsm-bench-huge.XXXXXX";
    double t_off = 1e300, t_on = 1e300, l_off = 1e300, l_on = 1e300;
    long saved = read_nr();
    int rc = 0;

    if (mib < 4 || rounds < 1 || saved < 0 || mkdtemp(dir) == NULL) {
        fprintf(stderr, "usage: dsm_bench_huge [SIZE_MIB >= 4 [ROUNDS]] (as root, with %s)\n",
                NR);
        return 2;
    }
    if (write_nr(saved + (long)(mib / 2) + 2) != 0 || read_nr() < saved + (long)(mib / 2) + 2) {
        fprintf(stderr, "dsm_bench_huge: could not reserve %zu huge pages through %s\n",
                mib / 2 + 2, NR);
        write_nr(saved);
        rmdir(dir);
        return 77;
    }
    for (int r = 0; r < rounds && rc == 0; r++) {
        double t, l;

        /* Alternate, so drift in the machine's load hits both alike. */
        if ((rc = measure(dir, "huge_pages=off", size, &t, &l)) == 0) {
            t_off = t < t_off ? t : t_off;
            l_off = l < l_off ? l : l_off;
        }
        if (rc == 0 && (rc = measure(dir, "huge_pages=on", size, &t, &l)) == 0) {
            t_on = t < t_on ? t : t_on;
            l_on = l < l_on ? l : l_on;
        }
    }
    write_nr(saved);
    {
        char path[64];

        snprintf(path, sizeof(path), "%s/dynshm_memfd", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/dynshm.lock", dir);
        unlink(path);
        rmdir(dir);
    }
    if (rc < 0) {
        fprintf(stderr, "dsm_bench_huge: %s\n", dsm_errmsg());
        return 1;
    }
    printf("memfd segment of %zu MiB, best of %d rounds each, huge_pages off vs on "
           "(2 MiB pages), same run\n", mib, rounds);
    printf("%-34s %12s %12s %8s\n", "case", "normal", "huge", "ratio");
    printf("%-34s %9.1f us %9.1f us %7.2fx\n", "create + first touch, per MiB", t_off / 1e3,
           t_on / 1e3, t_off / t_on);
    printf("%-34s %9.2f ns %9.2f ns %7.2fx\n", "random 8-byte load", l_off, l_on,
           l_off / l_on);
    printf("%s restored to %ld\n", NR, read_nr());
    return 0;
}
