/* SPDX-License-Identifier: MIT */
/*
 * bench/measure.c - the clock, the samples and the round-robin scheduler.
 *
 * A ratio of two timings is only worth something if both were taken under
 * the same conditions.  So the cases being compared never run one after
 * the other in long blocks: each round visits every case of a group in a
 * fresh random order for a short batch, and there are many rounds, so a
 * noisy second, a frequency change or a background flush lands on all of
 * them alike.  Every iteration is timed on its own (median and p90 come
 * from individual iterations, not batch means) and the cost of reading
 * the clock is subtracted.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static double timer_ns = -1;

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    size_t k;

    if (n == 0)
        return NAN;
    k = (size_t)ceil(p * (double)n);
    return v[k ? k - 1 : 0];
}

double bench_timer_overhead(void)
{
    double v[2001];

    if (timer_ns >= 0)
        return timer_ns;
    for (int i = 0; i < 2001; i++) {
        uint64_t t0 = bench_now_ns(), t1 = bench_now_ns();

        v[i] = (double)(t1 - t0);
    }
    qsort(v, 2001, sizeof(v[0]), cmp_double);
    timer_ns = v[1000];
    return timer_ns;
}

void bench_pin_cpu(const struct bench_opts *o, int cpu)
{
    cpu_set_t set;

    if (!o->pin_cpus)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

static int run_once(struct bench_case *c, double *out)
{
    uint64_t t0, t1;
    int rc;

    t0 = bench_now_ns();
    rc = c->op(c->arg);
    t1 = bench_now_ns();
    *out = (double)(t1 - t0) - timer_ns;
    return rc;
}

/* Estimate a case's cost: a few iterations, the first (cold) one dropped. */
static int estimate(struct bench_case *c, double *cost)
{
    double v[5];
    int rc;

    for (int i = 0; i < 5; i++)
        if ((rc = run_once(c, &v[i])) < 0)
            return rc;
    qsort(v + 1, 4, sizeof(v[0]), cmp_double);
    *cost = (v[2] + v[3]) / 2;
    return 0;
}

/* Batch and stride so one round costs about round_ms per case, yet slow cases
 * still collect min_samples over all rounds. */
static void plan(struct bench_case *c, double cost, const struct bench_opts *o)
{
    double budget = o->round_ms * 1e6;
    unsigned max_stride = (unsigned)(o->rounds / (o->min_samples > 0 ? o->min_samples : 1));

    if (max_stride < 1)
        max_stride = 1;
    if (cost < 1)
        cost = 1;
    if (cost <= budget) {
        double b = floor(budget / cost);

        c->batch = b > 2000 ? 2000 : (unsigned)b;
        c->stride = 1;
    } else {
        double s = ceil(cost / budget);

        c->batch = 1;
        c->stride = s > max_stride ? max_stride : (unsigned)s;
    }
}

static int grow_samples(struct bench_case *c, size_t want)
{
    double *p;

    if (want <= c->cap)
        return 0;
    p = realloc(c->ns, want * sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    c->ns = p;
    c->cap = want;
    return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng(void)
{
    /* xorshift64*: only orders cases, so any decent generator will do. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}

int bench_run_group(struct bench_case *cases, int ncases, const struct bench_opts *o)
{
    double cost[64] = {0}, group_cost[64] = {0};
    int order[64];
    int rc;

    if (ncases > 64)
        return -E2BIG;
    bench_timer_overhead();
    rng_state ^= bench_now_ns();
    for (int i = 0; i < ncases; i++) {
        if ((rc = estimate(&cases[i], &cost[i])) < 0)
            return rc;
        if (cases[i].group < 0 || cases[i].group >= 64)
            cases[i].group = 0;
        if (cost[i] > group_cost[cases[i].group])
            group_cost[cases[i].group] = cost[i];
    }
    for (int i = 0; i < ncases; i++) {
        struct bench_case *c = &cases[i];

        plan(c, group_cost[c->group], o);
        rc = grow_samples(c, c->n + (size_t)c->batch * ((size_t)o->rounds / c->stride + 1));
        if (rc < 0)
            return rc;
        order[i] = i;
    }
    for (int r = 0; r < o->rounds; r++) {
        for (int i = ncases - 1; i > 0; i--) {
            int j = (int)(rng() % (uint32_t)(i + 1)), t = order[i];

            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < ncases; i++) {
            struct bench_case *c = &cases[order[i]];

            if ((unsigned)r % c->stride != 0)
                continue;
            for (unsigned b = 0; b < c->batch; b++) {
                double t;

                if ((rc = run_once(c, &t)) < 0)
                    return rc;
                c->ns[c->n++] = t;
            }
        }
    }
    return 0;
}

void bench_stats(struct bench_case *c, double *median, double *p90)
{
    qsort(c->ns, c->n, sizeof(c->ns[0]), cmp_double);
    *median = percentile(c->ns, c->n, 0.5);
    *p90 = percentile(c->ns, c->n, 0.9);
}

void bench_case_free(struct bench_case *c)
{
    free(c->ns);
    c->ns = NULL;
    c->n = c->cap = 0;
}
