/* SPDX-License-Identifier: MIT */
/*
 * dsmctl_fill.c - a supervisor that creates and pins many segments, then
 * waits; test/dsmctl-e2e.sh times `dsmctl list` against it.
 *
 *   dsmctl_fill DIR COUNT [BACKEND]
 *
 * Starts dynshm on DIR with room for COUNT segments, creates COUNT small
 * segments and pins each (so they live with no mapping), prints
 * "ready <count> <seconds>" and waits until standard input reaches end of
 * file; then shuts down, which destroys every segment.  Public API only.
 * Exit status: 0, or 1 with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

static int fail(const char *what)
{
    fprintf(stderr, "dsmctl_fill: %s: %s\n", what, dsm_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    dsm_settings *s;
    char buf[64];
    long count;

    if (argc < 3 || (count = strtol(argv[2], NULL, 10)) < 1 || count > 1000000) {
        fprintf(stderr, "usage: dsmctl_fill DIR COUNT [BACKEND]\n");
        return 2;
    }
    if (dsm_settings_new(&s) < 0)
        return fail("settings");
    snprintf(buf, sizeof(buf), "%ld", count + 16);
    if (dsm_settings_set(s, "dsm_max_segments", buf) < 0 ||
        dsm_settings_set(s, "dsm_max_mappings", buf) < 0 ||
        (argc > 3 && dsm_settings_set(s, "dynamic_shared_memory_type", argv[3]) < 0))
        return fail("settings");
    if (dsm_supervisor_start(argv[1], s) < 0)
        return fail("start");
    dsm_settings_free(s);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < count; i++) {
        dsm_segment *seg;

        if (dsm_create(64, 0, &seg) < 0)
            return fail("create");
        if (dsm_pin_segment(seg) < 0)
            return fail("pin");
        if (dsm_detach(seg) < 0)
            return fail("detach");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("ready %ld %.3f\n", count,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fflush(stdout);
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
    }
    if (dsm_supervisor_shutdown() < 0)
        return fail("shutdown");
    return 0;
}
