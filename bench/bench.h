/* SPDX-License-Identifier: MIT */
/*
 * bench/bench.h - what the parts of dsm_bench share: options, the timing
 * harness, the raw system-call sequences, the result rows.
 *
 * dsm_bench compares every dynshm operation with the system calls its
 * backend makes, timed in the same process and the same run, so the ratio
 * says what the library's bookkeeping costs and nothing else.  The files:
 *   dsm_bench.c  options and the order of the phases
 *   guardian.c   the process that cleans up whatever happens to the run
 *   measure.c    clock, samples, median/p90, the round-robin scheduler
 *   raw.c        each backend's exact system-call sequence, without dynshm
 *   phases.c     the dynshm side of the latency measurements
 *   procs.c      two processes at once against one
 *   capacity.c   control-segment bytes per slot, the largest table
 *   region.c     the preallocated region against posix's system calls
 *   report.c     the machine, the table, TSV and JSON
 */
#ifndef DSM_BENCH_H
#define DSM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <dynshm/dsm.h>
#include <dynshm/dsm_impl.h>

#define BENCH_MAX_SIZES 8
#define BENCH_MAX_LIVE 8
#define BENCH_PAGE 4096

/* ---- options ------------------------------------------------------------- */

enum bench_phase {
    PHASE_BASE = 0,
    PHASE_LIVE,
    PHASE_PROCS,
    PHASE_CAPACITY,
    PHASE_REGION,
    PHASE_COUNT
};

struct bench_opts {
    bool quick;
    bool phase[PHASE_COUNT];        /* which phases run */
    bool backend[DSM_IMPL_NTYPES];  /* indexed by dsm_impl_type */
    size_t sizes[BENCH_MAX_SIZES];
    int nsizes;
    uint32_t live[BENCH_MAX_LIVE];  /* other live segments; live[0] is the baseline */
    int nlive;
    int rounds;                     /* rounds of each interleaved group */
    int min_samples;                /* slow cases still get at least this many */
    double round_ms;                /* target time per case per round */
    double proc_seconds;            /* length of one two-process window */
    int proc_rounds;
    bool capacity_max;              /* also configure the largest possible table */
    bool pin_cpus;
    const char *tsv, *json;
    const char *dir;                /* parent of tmpdir (--dir), or NULL */
    char tmpdir[512];               /* made and removed by the guardian */
    char cmdline[1024];
    pid_t guardian;                 /* prefixes every raw object name */
};

/* ---- timing (measure.c) -------------------------------------------------- */

/* One timed iteration: 0, or a negative dynshm-style error (message printed by the op). */
typedef int (*bench_op)(void *arg);

struct bench_case {
    const char *label;
    bench_op op;
    void *arg;
    int group;          /* cases of one group get the same batch and stride */
    unsigned batch;     /* iterations per round it takes part in */
    unsigned stride;    /* takes part in every stride-th round */
    double *ns;         /* samples, timer overhead subtracted */
    size_t n, cap;
};

uint64_t bench_now_ns(void);

/* Median cost of reading the clock twice, subtracted from every sample. */
double bench_timer_overhead(void);

/*
 * Calibrate, then run the cases in o->rounds rounds, each round visiting
 * every case in a fresh random order, so drift and noise reach all alike.
 * Returns 0, or the first op's error.
 */
int bench_run_group(struct bench_case *cases, int ncases, const struct bench_opts *o);

/* Median and 90th percentile of a case's samples (sorts them). */
void bench_stats(struct bench_case *c, double *median, double *p90);
void bench_case_free(struct bench_case *c);

/* Pin the calling process to one CPU (no-op if pinning is off or impossible). */
void bench_pin_cpu(const struct bench_opts *o, int cpu);

/* ---- raw system-call sequences (raw.c) ------------------------------------- */

/*
 * The registry: a page shared with the guardian process listing every raw
 * SysV segment alive, so the guardian can remove them if the run dies.
 * POSIX objects and files are found by name instead.
 */
#define BENCH_REG_SLOTS 256
struct bench_registry {
    int next;                                   /* slots handed out */
    int private_ipc;                            /* the runner's SysV ids are not ours to see */
    struct { int key, shmid; } sysv[BENCH_REG_SLOTS];
};
extern struct bench_registry *bench_reg;

struct raw_backend {
    dsm_impl_type type;
    int dirfd;            /* mmap: the directory the files live in */
    pid_t guardian;
    uint32_t seq;
};

struct raw_seg {
    char name[64];        /* posix: /dsm_bench.<guardian>.<id>; mmap: the file name */
    int key, shmid;       /* sysv */
    int reg;              /* sysv: registry slot */
    void *addr;
    size_t size;
};

/* mmap_dir: the directory for mmap files (ignored by the other backends). */
int raw_open(struct raw_backend *rb, dsm_impl_type type, pid_t guardian, const char *mmap_dir);
void raw_close(struct raw_backend *rb);
/* Give a segment descriptor its registry slot; call once, outside timing. */
int raw_seg_init(struct raw_seg *s);
/* Create, reserve and map, exactly as the backend's create does. */
int raw_create(struct raw_backend *rb, size_t size, struct raw_seg *s);
/* Open and map an existing segment, exactly as the backend's attach does. */
int raw_attach(struct raw_backend *rb, struct raw_seg *s);
/* Unmap. */
int raw_detach(struct raw_backend *rb, struct raw_seg *s);
/* Remove from the name space, exactly as the backend's destroy does. */
int raw_destroy(struct raw_backend *rb, struct raw_seg *s);

/* ---- results (report.c) ----------------------------------------------------- */

enum bench_check { CHECK_NONE = 0, CHECK_AT_MOST, CHECK_AT_LEAST };

enum bench_row_kind {
    ROW_LATENCY = 0,   /* dyn and raw are median/p90 nanoseconds */
    ROW_PROCS,         /* dyn and raw are cycles per second, 1 and 2 processes */
    ROW_CAPACITY       /* dyn_med = control bytes, dyn_p90 = start-up ns */
};

struct bench_row {
    enum bench_row_kind kind;
    char test[24];
    char backend[8];
    size_t size;
    uint64_t live;            /* other live segments, or slots for capacity */
    double dyn_med, dyn_p90;  /* ROW_PROCS: 1-process, 2-process rate */
    double raw_med, raw_p90;
    size_t samples;
    char metric[24];          /* what `value` is */
    double value;
    enum bench_check check;
    double target;
    char note[160];
};

struct bench_results {
    struct bench_row *rows;
    int n, cap;
    char notes[16][240];
    int nnotes;
};

struct bench_row *bench_add_row(struct bench_results *r);
void bench_note(struct bench_results *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *bench_result(const struct bench_row *row);

void bench_print_header(const struct bench_opts *o, double timer_ns);
void bench_print_table(const struct bench_results *r);
int bench_write_tsv(const struct bench_results *r, const char *path);
int bench_write_json(const struct bench_results *r, const struct bench_opts *o,
                     double timer_ns, const char *path);
/* "4 KiB", "64 MiB" */
const char *bench_size_str(size_t size, char *buf, size_t len);

/* ---- phases (phases.c) -------------------------------------------------------- */

struct dyn_arg {
    size_t size;
    dsm_handle handle; /* attach: a pinned segment nobody maps */
};

struct raw_arg {
    struct raw_backend *rb;
    struct raw_seg seg;
    size_t size;
    bool live;          /* attach: the object exists (destroy it at the end) */
};

/* The four cases of one size, in one interleaving group per pair. */
struct bench_quad {
    struct dyn_arg dc, da;
    struct raw_arg rc, ra;
    bool pinned;
};

/* A dynshm create and attach paired with the raw ones, for one size. */
int bench_quad_setup(struct bench_quad *q, struct raw_backend *rb, size_t size);
void bench_quad_teardown(struct bench_quad *q);
/* Cases dyn create, raw create (group), dyn attach, raw attach (group + 1). */
void bench_quad_cases(struct bench_quad *q, struct bench_case *c, int group);
/* A latency row from a dynshm case and its raw partner (NULL: out of memory). */
struct bench_row *bench_latency_row(struct bench_results *r, const char *test,
                                    dsm_impl_type type, size_t size, uint64_t live,
                                    struct bench_case *dyn, struct bench_case *raw);

/* Per-backend data directory under o->tmpdir (created if missing). */
int bench_datadir(const struct bench_opts *o, const char *name, char *buf, size_t len);

int bench_phase_base(const struct bench_opts *o, dsm_impl_type type, struct bench_results *r);
int bench_phase_live(const struct bench_opts *o, dsm_impl_type type, uint32_t sysv_limit,
                     struct bench_results *r);
int bench_phase_procs(const struct bench_opts *o, dsm_impl_type type, struct bench_results *r);
int bench_phase_capacity(const struct bench_opts *o, dsm_impl_type type, uint32_t slots,
                         struct bench_results *r);

int bench_phase_region(const struct bench_opts *o, struct bench_results *r);

/*
 * Set by the region phase around the phases it reuses: supervisors start
 * with a region of this many bytes (min_dynamic_shared_memory), and rows
 * name `bench_label` as their backend ("region").  0 and NULL otherwise.
 */
extern uint64_t bench_region_bytes;
extern const char *bench_label;

/* Start a supervisor on dir with this backend; capacities of 0 keep the defaults. */
int bench_start(dsm_impl_type type, const char *dir, uint32_t slots, uint32_t mappings);

/* A segment that stays alive with no mapping: create, pin, detach. */
int bench_make_pinned(size_t size, dsm_handle *out);

/*
 * Make the data directory and the registry, run run(o) in a child process,
 * then remove whatever it left.  Returns the exit status for main().
 */
int bench_guard(struct bench_opts *o, int (*run)(const struct bench_opts *o));

/* Report a dynshm failure on stderr and return rc. */
int bench_fail(int rc, const char *what);

#endif /* DSM_BENCH_H */
