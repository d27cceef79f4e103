/* SPDX-License-Identifier: MIT */
/*
 * bench/registry_bench.c - finding shared memory by name, against the
 * floors of issue 16, measured in the same run.
 *
 *   ./bench/registry_bench [--quick]      (make bench-registry)
 *
 * Cases (the targets in brackets):
 *   lookup   a name this process already has: dsm_named_segment_get() of
 *            a cached name, against a lock-free lookup of the same names
 *            in a process-local open-addressing table of strings (hash,
 *            probe, strcmp, return the pointer) [<= 1.3x, at 1, 1,000 and
 *            50,000 names (--quick: not 50,000), and flat: the 50,000
 *            figure within 1.3x of the 1,000 one; 50,000 and not the
 *            issue's 100,000 because every name is a mapping, and one
 *            process stops at vm.max_map_count, 65,530 by default];
 *   attach   the first get of a name in a process (a fresh forked worker
 *            attaching 1,000 named 4 KiB segments), against shm_open +
 *            mmap + close of the same number of raw /dev/shm objects by a
 *            fresh process [<= 1.05x].
 * Single-process cases are CPU time of the thread, median of TRIALS;
 * attach is wall-clock time of the whole worker loop, median of TRIALS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

#define TRIALS 7
#define ATTACH_NAMES 1000
/*
 * The most names one process here can hold: each is a mapping, and Linux
 * stops a process at vm.max_map_count (65530 by default) mappings; the
 * issue's 100,000 needs that raised.
 */
#define BIG_NAMES 50000

static bool quick;
static int failures;
static volatile uintptr_t sink;

static uint64_t clock_ns(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static bool started;

static void die(const char *what)
{
    fprintf(stderr, "registry_bench: %s: %s\n", what, dsm_errmsg());
    if (started)
        dsm_supervisor_shutdown(); /* leave nothing in /dev/shm */
    exit(1);
}

static void row(const char *test, const char *what, double ours, double floor, double target)
{
    double ratio = ours / floor;
    bool ok = ratio <= target;

    failures += !ok;
    printf("%-8s %-18s %10.1f %10.1f %8.2f  <= %-5.2f %s\n", test, what, ours, floor, ratio, target,
           ok ? "ok" : "MISSED");
}

/* ---- the floor: a local open-addressing table of names ------------------------ */

struct lentry {
    uint64_t hash;
    const char *name;
    void *value;
};

struct local {
    struct lentry *e;
    size_t mask;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    while (*s)
        h = (h ^ (unsigned char)*s++) * UINT64_C(0x100000001b3);
    return h ^ (h >> 29);
}

static void local_put(struct local *t, const char *name, void *value)
{
    uint64_t h = fnv(name);

    for (size_t i = h & t->mask;; i = (i + 1) & t->mask)
        if (t->e[i].name == NULL) {
            t->e[i] = (struct lentry){h, name, value};
            return;
        }
}

static void *local_get(const struct local *t, const char *name)
{
    uint64_t h = fnv(name);

    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const struct lentry *e = &t->e[i];

        if (e->name == NULL)
            return NULL;
        if (e->hash == h && strcmp(e->name, name) == 0)
            return e->value;
    }
}

/* ---- lookup of a cached name ------------------------------------------------------ */

static char (*names)[32];

static void make_names(size_t n)
{
    names = realloc(names, n * sizeof(*names));
    if (names == NULL)
        die("names");
    for (size_t i = 0; i < n; i++)
        snprintf(names[i], sizeof(names[i]), "bench/segment-%zu", i);
}

static double lookup_case(size_t n, size_t first_new)
{
    size_t ops = quick ? 200000 : 1000000, cap = 16;
    double ours[TRIALS], floor[TRIALS];
    struct local t;
    uint32_t *order = malloc(ops * sizeof(*order));
    uint64_t x = 88172645463325252ull;

    while (cap < n * 2)
        cap *= 2;
    t.e = calloc(cap, sizeof(*t.e));
    t.mask = cap - 1;
    if (order == NULL || t.e == NULL)
        die("memory");
    make_names(n);
    for (size_t i = first_new; i < n; i++) { /* names made by earlier cases stay */
        dsm_segment *seg;

        if (dsm_named_segment_get(names[i], 4096, NULL, NULL, &seg, NULL) < 0)
            die("create a named segment");
    }
    for (size_t i = 0; i < n; i++) {
        dsm_segment *seg;

        if (dsm_named_segment_get(names[i], 4096, NULL, NULL, &seg, NULL) < 0)
            die("get a named segment");
        local_put(&t, names[i], seg);
    }
    for (size_t i = 0; i < ops; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order[i] = (uint32_t)(x % n);
    }
    for (int k = 0; k < TRIALS; k++) {
        uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);

        for (size_t i = 0; i < ops; i++) {
            dsm_segment *seg;

            dsm_named_segment_get(names[order[i]], 4096, NULL, NULL, &seg, NULL);
            sink += (uintptr_t)seg;
        }
        ours[k] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)ops;
        t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (size_t i = 0; i < ops; i++)
            sink += (uintptr_t)local_get(&t, names[order[i]]);
        floor[k] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)ops;
    }
    {
        char what[32];
        double o = median(ours, TRIALS), f = median(floor, TRIALS);

        snprintf(what, sizeof(what), "%zu name%s", n, n == 1 ? "" : "s");
        row("lookup", what, o, f, 1.3);
        free(order);
        free(t.e);
        return o;
    }
}

/* ---- first attach by name in a process ------------------------------------------------ */

static char rawdir[64];

static int worker_attach_named(void)
{
    for (size_t i = 0; i < ATTACH_NAMES; i++) {
        dsm_segment *seg;

        if (dsm_named_segment_get(names[i], 4096, NULL, NULL, &seg, NULL) < 0)
            return 1;
    }
    return 0;
}

static dsm_handle handles[ATTACH_NAMES];

static int worker_attach_handles(void)
{
    for (size_t i = 0; i < ATTACH_NAMES; i++) {
        dsm_segment *seg;

        if (dsm_attach(handles[i], &seg) < 0 || dsm_pin_mapping(seg) < 0)
            return 1;
    }
    return 0;
}

static int worker_attach_raw(void)
{
    char path[96];

    for (size_t i = 0; i < ATTACH_NAMES; i++) {
        int fd;
        void *p;

        snprintf(path, sizeof(path), "%s.%zu", rawdir, i);
        fd = shm_open(path, O_RDWR, 0);
        if (fd < 0)
            return 1;
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
            return 1;
        sink += (uintptr_t)p;
    }
    return 0;
}

/* Wall-clock ns per name of a fresh worker doing fn (its fork and exit excluded). */
static double timed_worker(int (*fn)(void), bool dynshm)
{
    int pipefd[2], st;
    uint64_t ns = 0;
    pid_t pid;

    if (pipe(pipefd) != 0)
        die("pipe");
    pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        uint64_t t0;
        int rc;

        close(pipefd[0]);
        if (dynshm && dsm_worker_init_after_fork() < 0)
            _exit(3);
        t0 = clock_ns(CLOCK_MONOTONIC);
        rc = fn();
        t0 = clock_ns(CLOCK_MONOTONIC) - t0;
        if (write(pipefd[1], &t0, sizeof(t0)) != (ssize_t)sizeof(t0))
            rc = 4;
        _exit(rc);
    }
    close(pipefd[1]);
    if (read(pipefd[0], &ns, sizeof(ns)) != (ssize_t)sizeof(ns))
        ns = 0;
    close(pipefd[0]);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || ns == 0) {
        fprintf(stderr, "registry_bench: an attach worker failed (status %d)\n", st);
        exit(1);
    }
    if (dynshm)
        dsm_supervisor_worker_exited(pid, st);
    return (double)ns / ATTACH_NAMES;
}

static void attach_case(void)
{
    double ours[TRIALS], floor[TRIALS], byhandle[TRIALS];
    char path[96];

    for (size_t i = 0; i < ATTACH_NAMES; i++) {
        dsm_segment *seg;

        if (dsm_named_segment_get(names[i], 4096, NULL, NULL, &seg, NULL) < 0)
            die("get");
        handles[i] = dsm_segment_handle(seg);
    }
    snprintf(rawdir, sizeof(rawdir), "/registry_bench.%d", (int)getpid());
    for (size_t i = 0; i < ATTACH_NAMES; i++) {
        int fd;

        snprintf(path, sizeof(path), "%s.%zu", rawdir, i);
        fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || ftruncate(fd, 4096) != 0)
            die("raw object");
        close(fd);
    }
    for (int k = 0; k < TRIALS; k++) {
        ours[k] = timed_worker(worker_attach_named, true);
        floor[k] = timed_worker(worker_attach_raw, false);
        byhandle[k] = timed_worker(worker_attach_handles, true);
    }
    for (size_t i = 0; i < ATTACH_NAMES; i++) {
        snprintf(path, sizeof(path), "%s.%zu", rawdir, i);
        shm_unlink(path);
    }
    row("attach", "1000 names, first", median(ours, TRIALS), median(floor, TRIALS), 1.05);
    printf("%-8s %-18s %10.1f %10.1f %8.2f  (for reference: dsm_attach + dsm_pin_mapping by "
           "handle)\n", "attach", "1000 handles", median(byhandle, TRIALS), median(floor, TRIALS),
           median(byhandle, TRIALS) / median(floor, TRIALS));
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/registry_bench.XXXXXX";
    dsm_settings *s;
    double small, big;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else {
            fprintf(stderr, "usage: registry_bench [--quick]\n");
            return 2;
        }
    }
    if (dsm_settings_new(&s) < 0 || dsm_settings_set(s, "dsm_max_segments", "120000") < 0 ||
        dsm_settings_set(s, "dsm_max_mappings", "250000") < 0 ||
        dsm_settings_set(s, "dynamic_shared_memory_type", "posix") < 0)
        die("settings");
    if (mkdtemp(dir) == NULL || dsm_supervisor_start(dir, s) < 0)
        die("start");
    started = true;
    dsm_settings_free(s);
    printf("registry_bench%s: median of %d trials; ns per operation; lookup: CPU time, floor a "
           "local table of the\nsame names; attach: wall-clock time of a fresh worker, floor "
           "shm_open+mmap+close of raw objects\n",
           quick ? " --quick" : "", TRIALS);
    printf("%-8s %-18s %10s %10s %8s  %s\n", "test", "case", "ours ns", "floor ns", "ratio",
           "target");
    lookup_case(1, 0);
    small = lookup_case(1000, 1);
    attach_case();
    if (!quick) {
        big = lookup_case(BIG_NAMES, 1000);
        row("flat", "50000/1000 names", big, small, 1.3);
    }
    dsm_supervisor_shutdown();
    {
        char lock[sizeof(dir) + 16];

        snprintf(lock, sizeof(lock), "%s/dynshm.lock", dir);
        unlink(lock);
    }
    rmdir(dir);
    free(names);
    printf("registry_bench: %d target(s) missed\n", failures);
    return 0;
}
