/* SPDX-License-Identifier: MIT */
/*
 * watch.c - `dsmctl -D DIR status -w SECONDS`: what the instance is doing
 * now, as rates, one line per interval.
 *
 * Totals since start-up say little about a server that has run for a
 * month; what an operator watching a load test wants is creates per
 * second and bytes per second right now.  Each interval takes a snapshot
 * (dsm_inspect_open()) and prints the differences of the counters
 * (dsm_inspect_metrics()) divided by the time measured between the two
 * snapshots on the monotonic clock, next to the gauges.  A crash reset
 * between two snapshots is shown as such: the counters carry over a reset,
 * but a rate over one would mix two tables.
 *
 * --json prints one JSON document per line (JSON Lines), each with
 * format_version, so a pipe can parse every line on its own.  --count N
 * stops after N lines (tests and scripts); otherwise it runs until
 * interrupted.  The first line has no rates (nothing to compare with).
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "dsmctl.h"

struct sample {
    bool ok;
    bool running;
    dsm_metrics m;
    double t; /* monotonic seconds */
};

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void take(const char *datadir, struct sample *s)
{
    dsm_inspection *insp;
    dsm_instance_info info;

    memset(s, 0, sizeof(*s));
    s->t = mono();
    if (dsm_inspect_open(datadir, DSMCTL_LOCK_TIMEOUT_MS, &insp) < 0)
        return;
    dsm_inspect_instance(insp, &info, sizeof(info));
    s->running = info.state == DSM_INSTANCE_RUNNING;
    s->ok = dsm_inspect_metrics(insp, &s->m, sizeof(s->m)) == 0;
    dsm_inspect_close(insp);
}

static double rate(uint64_t now, uint64_t before, double dt)
{
    return now >= before && dt > 0 ? (double)(now - before) / dt : 0;
}

static void print_line(const struct dsmctl_options *o, const struct sample *prev,
                       const struct sample *cur)
{
    bool rates = prev->ok && cur->ok && cur->m.resets == prev->m.resets &&
                 cur->m.since_usec == prev->m.since_usec;
    double dt = cur->t - prev->t;
    char when[32], a[32], b[32];
    time_t now = time(NULL);
    struct tm tm;

    if (localtime_r(&now, &tm) == NULL || strftime(when, sizeof(when), "%H:%M:%S", &tm) == 0)
        snprintf(when, sizeof(when), "?");
    if (o->json) {
        printf("{\"format_version\": %d, \"time\": %lld, \"running\": %s", DSMCTL_JSON_FORMAT,
               (long long)now, cur->running ? "true" : "false");
        if (cur->ok)
            printf(", \"segments\": %llu, \"bytes\": %llu, \"processes\": %llu",
                   (unsigned long long)cur->m.segments, (unsigned long long)cur->m.bytes,
                   (unsigned long long)cur->m.processes);
        if (rates)
            printf(", \"interval_seconds\": %.3f, \"creates_per_second\": %.2f, "
                   "\"destroys_per_second\": %.2f, \"attaches_per_second\": %.2f, "
                   "\"detaches_per_second\": %.2f, \"bytes_created_per_second\": %.0f, "
                   "\"failed_creates_per_second\": %.2f",
                   dt, rate(cur->m.creates, prev->m.creates, dt),
                   rate(cur->m.destroys, prev->m.destroys, dt),
                   rate(cur->m.attaches, prev->m.attaches, dt),
                   rate(cur->m.detaches, prev->m.detaches, dt),
                   rate(cur->m.bytes_created, prev->m.bytes_created, dt),
                   rate(cur->m.create_enospc + cur->m.create_failed,
                        prev->m.create_enospc + prev->m.create_failed, dt));
        else if (prev->ok && cur->ok)
            printf(", \"reset\": true");
        printf("}\n");
    } else if (!cur->ok) {
        printf("%s  %s\n", when, cur->running ? "running; counters unreadable" : "not running");
    } else if (!rates) {
        printf("%s  %6llu segments %10s in use %4llu procs%s\n", when,
               (unsigned long long)cur->m.segments,
               dsmctl_format_size(cur->m.bytes, o->human, a, sizeof(a)),
               (unsigned long long)cur->m.processes,
               prev->ok ? "  (crash reset: rates restart)" : "");
    } else {
        double bps = rate(cur->m.bytes_created, prev->m.bytes_created, dt);

        printf("%s  %6llu segments %10s in use %4llu procs  %8.1f creates/s %8.1f destroys/s "
               "%8.1f attaches/s %10s/s created %6.1f failed/s\n",
               when, (unsigned long long)cur->m.segments,
               dsmctl_format_size(cur->m.bytes, o->human, a, sizeof(a)),
               (unsigned long long)cur->m.processes, rate(cur->m.creates, prev->m.creates, dt),
               rate(cur->m.destroys, prev->m.destroys, dt),
               rate(cur->m.attaches, prev->m.attaches, dt),
               dsmctl_format_size((uint64_t)bps, o->human, b, sizeof(b)),
               rate(cur->m.create_enospc + cur->m.create_failed,
                    prev->m.create_enospc + prev->m.create_failed, dt));
    }
    fflush(stdout);
}

int dsmctl_watch(const struct dsmctl_options *o)
{
    struct sample prev, cur;
    dsm_inspection *insp;
    dsm_instance_info info;
    int rc;

    /* The same refusals as status (not a directory, never used by dynshm). */
    if ((rc = dsmctl_inspect(o->datadir, &insp, &info)) != 0)
        return rc;
    dsm_inspect_close(insp);
    memset(&prev, 0, sizeof(prev));
    for (long n = 0; o->count == 0 || n < o->count; n++) {
        struct timespec ts;
        double left;

        take(o->datadir, &cur);
        print_line(o, &prev, &cur);
        prev = cur;
        if (o->count != 0 && n + 1 >= o->count)
            break;
        /* Sleep to the next tick of the interval, not interval after the work. */
        left = o->interval - (mono() - cur.t);
        if (left > 0) {
            ts.tv_sec = (time_t)left;
            ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        if (ferror(stdout))
            return DSMCTL_EXIT_FAIL;
    }
    return DSMCTL_EXIT_OK;
}
