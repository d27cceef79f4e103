/* SPDX-License-Identifier: MIT */
/*
 * dsmctl_unit.c - quick checks of what dsmctl builds on, without Check:
 * the control-segment snapshot (src/control/inspect.c) on a table put in
 * every slot state by hand, the probe, and dsmctl's JSON string escaping
 * and age format.  The end-to-end proof is test/dsmctl-e2e.sh; this pins
 * down the cases a demo server cannot produce at will (a segment with two
 * holders, a half-created one, a dying one, a slot that lies about its
 * handle, a holder that is dead).
 *
 * Prints one line per check.  Exit status: 0 pass, 1 fail, 99 could not run.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/inspect.h"
#include "dsmctl.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
}

static char *json_of(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    dsmctl_json_string(f, s);
    fclose(f);
    return buf;
}

static void format_checks(void)
{
    char age[32], *j;

    j = json_of("a\"b\\c\n\t\x01 \xc3\xa9 \xff end");
    check(strcmp(j, "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9 \\ufffd end\"") == 0,
          "json: quotes, backslashes, control bytes escaped; UTF-8 kept; a stray byte replaced");
    free(j);
    j = json_of("\xe2\x82");
    check(strcmp(j, "\"\\ufffd\\ufffd\"") == 0, "json: a truncated sequence is replaced");
    free(j);
    j = json_of("\xed\xa0\x80");
    check(strcmp(j, "\"\\ufffd\\ufffd\\ufffd\"") == 0, "json: an encoded surrogate is replaced");
    free(j);
    dsmctl_format_age(59, age, sizeof(age));
    check(strcmp(age, "59s") == 0, "age: seconds");
    dsmctl_format_age(3 * 60 + 7, age, sizeof(age));
    check(strcmp(age, "3m07s") == 0, "age: minutes");
    dsmctl_format_age(5 * 3600 + 2 * 60, age, sizeof(age));
    check(strcmp(age, "5h02m") == 0, "age: hours");
    dsmctl_format_age(2 * 86400 + 3 * 3600, age, sizeof(age));
    check(strcmp(age, "2d03h") == 0, "age: days");
    dsmctl_format_age(-5, age, sizeof(age));
    check(strcmp(age, "0s") == 0, "age: a clock stepped back reads 0s");
    {
        char b[32];
        uint64_t v = 0;
        int64_t d = 0;

        check(strcmp(dsmctl_format_size(1536, true, b, sizeof(b)), "1.5KiB") == 0 &&
                  strcmp(dsmctl_format_size(1000, true, b, sizeof(b)), "1000B") == 0 &&
                  strcmp(dsmctl_format_size(3ULL << 30, true, b, sizeof(b)), "3.0GiB") == 0 &&
                  strcmp(dsmctl_format_size(200ULL << 20, true, b, sizeof(b)), "200MiB") == 0 &&
                  strcmp(dsmctl_format_size(1536, false, b, sizeof(b)), "1536") == 0,
              "size: -h in powers of 1024, exact bytes otherwise");
        check(dsmctl_parse_size("64k", &v) && v == 65536 && dsmctl_parse_size("1MB", &v) &&
                  v == 1048576 && dsmctl_parse_size("2GiB", &v) && v == 2147483648ULL &&
                  dsmctl_parse_size("4096", &v) && v == 4096,
              "size: 64k, 1MB, 2GiB, 4096");
        check(!dsmctl_parse_size("12q", &v) && !dsmctl_parse_size("-1k", &v) &&
                  !dsmctl_parse_size("", &v) && !dsmctl_parse_size("99999999999999999999", &v) &&
                  !dsmctl_parse_size("20000000T", &v),
              "size: garbage, negatives, overflow refused");
        check(dsmctl_parse_duration("90", &d) && d == 90 && dsmctl_parse_duration("10m", &d) &&
                  d == 600 && dsmctl_parse_duration("2h", &d) && d == 7200 &&
                  dsmctl_parse_duration("1d", &d) && d == 86400 &&
                  !dsmctl_parse_duration("1w", &d) && !dsmctl_parse_duration("m", &d),
              "duration: 90, 10m, 2h, 1d; unknown units refused");
    }
}

/* A pid that certainly belonged to no running process a moment ago. */
static pid_t dead_pid(void)
{
    pid_t p = fork();

    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static const struct dsm__snap_segment *find(const struct dsm__snapshot *s, dsm_handle h)
{
    for (uint32_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].handle == h)
            return &s->segs[i];
    return NULL;
}

static int holders_are(const struct dsm__snapshot *s, const struct dsm__snap_segment *g,
                       pid_t a, pid_t b)
{
    uint32_t want = (a != 0) + (b != 0);

    if (g == NULL || g->nholders != want)
        return 0;
    for (uint32_t k = 0; k < g->nholders; k++) {
        pid_t p = s->procs[s->holders[g->first_holder + k]].pid;

        if (p != a && p != b)
            return 0;
    }
    return 1;
}

static int table_checks(const char *dir)
{
    dsm_impl_instance *inst;
    struct dsm_control ctl;
    struct dsm__snapshot snap;
    dsm_impl_segment real;
    dsm_handle ha, hb, hc;
    uint32_t me, ghost, sa, sb, sc, ra, rb, rc_, rg, tmp;
    pid_t gpid = dead_pid();
    const struct dsm__snap_segment *g;

    if (dsm_impl_instance_open(dsm_impl_default_type(), dir, &inst) < 0 ||
        dsm__control_create(inst, ((dsm_handle)getpid() << 20) | 0xc0ffee, 64, 8, 256, &ctl) < 0) {
        fprintf(stderr, "dsmctl_unit: %s\n", dsm_errmsg());
        return 99;
    }
    struct dsm__procid me_id, ghost_id = {.pid = (int32_t)gpid, .start_time = 1};

    dsm__procid_self(&me_id);
    dsm__control_proc_register(&ctl, &me_id, DSM_PROC_SUPERVISOR, &me);
    dsm__control_proc_register(&ctl, &ghost_id, DSM_PROC_FORKED, &ghost);
    /* A: created by me, attached by the ghost, pinned: 2 holders, refcnt 3. */
    dsm__control_slot_reserve(&ctl, me, &ha, &sa, &ra);
    dsm__control_slot_publish(&ctl, sa, ra, 100, -1);
    dsm_impl_segment tmpseg;
    dsm__control_ref_acquire(&ctl, ghost, ha, &tmp, &rg, &tmpseg);
    dsm__control_pin(&ctl, sa, ha);
    /* B: reserved by the ghost, never published (CREATING). */
    dsm__control_slot_reserve(&ctl, ghost, &hb, &sb, &rb);
    /* C: created by me, last reference dropped: DYING, my ref is the claim. */
    dsm__control_slot_reserve(&ctl, me, &hc, &sc, &rc_);
    dsm__control_slot_publish(&ctl, sc, rc_, 7, -1);
    check(dsm__control_ref_release(&ctl, sc, rc_) == 1, "setup: C's last reference makes it DYING");
    /* A slot whose handle does not encode its index: garbage, never listed. */
    ctl.slots[40].state = DSM_SLOT_LIVE;
    ctl.slots[40].handle = ((dsm_handle)0x1234 << 32) | 41;

    check(dsm__inspect_snapshot(&ctl, &snap, -1) == 0, "snapshot succeeds");
    check(snap.nsegs == 3, "snapshot: three segments (the lying slot is left out)");
    g = find(&snap, ha);
    check(g && g->state == DSM_SLOT_LIVE && g->refcnt == 3 && g->pinned && g->size == 100,
          "A: live, 100 bytes, pinned, refcnt 3");
    check(holders_are(&snap, g, getpid(), gpid), "A: held by both processes");
    g = find(&snap, hb);
    check(g && g->state == DSM_SLOT_CREATING && holders_are(&snap, g, gpid, 0),
          "B: creating, held by its creator");
    g = find(&snap, hc);
    check(g && g->state == DSM_SLOT_DYING && holders_are(&snap, g, getpid(), 0),
          "C: dying, held by the process destroying it");
    check(snap.nlive == 1 && snap.live_bytes == 100 && snap.npinned == 1,
          "totals count live segments only");
    check(snap.nprocs == 2 && snap.nalive == 1, "processes: two registered, one alive");
    for (uint32_t i = 0; i < snap.nprocs; i++)
        if (snap.procs[i].pid == gpid)
            check(!snap.procs[i].alive && snap.procs[i].nrefs == 2,
                  "the dead process is reported dead, with its two references");
    check(snap.hdr.nslots == 64 && snap.hdr.slots_used == 3, "the header is copied");
    dsm__inspect_free(&snap);

    /* The probe says what destroy would do, and changes nothing. */
    check(dsm__impl_probe(inst, &(dsm_impl_segment){.handle = ha, .os_id = -1}) == 0,
          "probe: no OS object behind A (never created here)");
    if (dsm_impl_create(inst, ha, 4096, &real) == 0) {
        check(dsm__impl_probe(inst, &real) == 1, "probe: an existing object is found");
        check(dsm__impl_probe(inst, &real) == 1, "probe: ... and is still there after");
        dsm_impl_detach(inst, &real);
        dsm_impl_destroy(inst, &real);
        check(dsm__impl_probe(inst, &real) == 0, "probe: gone once destroyed");
    } else {
        check(0, "probe: create a real object");
    }

    real = ctl.map;
    dsm__control_detach(inst, &ctl);
    dsm_impl_destroy(inst, &real);
    dsm_impl_instance_close(inst);
    return 0;
}

/* The probe on every backend: found, still there after, foreign when it differs, gone. */
static void probe_checks(const char *dir)
{
    static const dsm_impl_type types[] = {DSM_IMPL_POSIX, DSM_IMPL_SYSV, DSM_IMPL_MMAP};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const char *b = dsm_impl_type_name(types[i]);
        dsm_impl_instance *inst;
        dsm_impl_segment seg, other;
        dsm_handle h = 0x5eed000000000001ULL;
        char what[128];
        int rc;

        if (!dsm_impl_type_available(types[i]) || dsm_impl_instance_open(types[i], dir, &inst) < 0)
            continue;
        while ((rc = dsm_impl_create(inst, h, 8192, &seg)) == -EEXIST)
            h++;
        if (rc < 0) {
            printf("skip - %s: probe: %s\n", b, dsm_errmsg());
            dsm_impl_instance_close(inst);
            continue;
        }
        snprintf(what, sizeof(what), "%s: probe finds a segment and leaves it in place", b);
        check(dsm__impl_probe(inst, &seg) == 1 && dsm__impl_probe(inst, &seg) == 1, what);
        other = seg;
        other.size = 4096;
        rc = dsm__impl_probe(inst, &other);
        snprintf(what, sizeof(what), "%s: probe with another recorded size: %s", b,
                 types[i] == DSM_IMPL_SYSV ? "foreign, as destroy would judge" : "found");
        check(types[i] == DSM_IMPL_SYSV ? rc == DSM_EFOREIGN : rc == 1, what);
        dsm_impl_detach(inst, &seg);
        dsm_impl_destroy(inst, &seg);
        snprintf(what, sizeof(what), "%s: probe after destroy finds nothing", b);
        check(dsm__impl_probe(inst, &seg) == 0, what);
        dsm_impl_instance_close(inst);
    }
}

/* dsm_scan_host() report: remember whether our control segment was seen, and where. */
struct seen {
    const char *control_name;
    char datadir[512];
    int controls;
};

static void saw(const dsm_host_object *o, void *arg)
{
    struct seen *s = arg;

    if (o->control && strcmp(o->name, s->control_name) == 0) {
        s->controls++;
        snprintf(s->datadir, sizeof(s->datadir), "%s", o->datadir);
    }
}

/*
 * The counters of the control segment (layout 3) through the public API,
 * a crash reset carrying them over, the recorded data directory, and a
 * host scan finding the control segment and that directory.
 */
static void metrics_checks(const char *dir)
{
    dsm_inspection *insp;
    dsm_instance_info info;
    dsm_metrics m;
    dsm_segment *a, *b;
    char *abs = realpath(dir, NULL);
    struct seen seen = {0};

    if (dsm_supervisor_start(dir, NULL) < 0) {
        printf("skip - metrics: %s\n", dsm_errmsg());
        free(abs);
        return;
    }
    check(dsm_create(1000, 0, &a) == 0 && dsm_create(24, 0, &b) == 0, "metrics: two creates");
    check(dsm_pin_segment(b) == 0 && dsm_detach(b) == 0 && dsm_detach(a) == 0,
          "metrics: one pinned and detached, one destroyed by its detach");
    check(dsm_inspect_open(dir, 1000, &insp) == 0, "metrics: inspect");
    dsm_inspect_instance(insp, &info, sizeof(info));
    memset(&m, 0xff, sizeof(m));
    check(dsm_inspect_metrics(insp, &m, sizeof(m)) == 0, "metrics: read");
    check(m.creates == 2 && m.destroys == 1 && m.detaches == 2 && m.bytes_created == 1024 &&
          m.bytes == 24 && m.segments == 1 && m.peak_segments == 2 && m.peak_bytes == 1024 &&
          m.peak_processes == 1 && m.processes == 1 && m.resets == 0 && m.since_usec > 0,
          "metrics: creates, destroys, detaches, bytes, gauges and peaks");
    check(abs && strcmp(info.recorded_datadir, abs) == 0,
          "layout 3: the control segment records the absolute data directory");
    seen.control_name = info.control_name;
    check(dsm_scan_host(NULL, 0, saw, &seen) > 0 && (seen.controls == 1 ||
                                                      info.backend != DSM_IMPL_POSIX),
          "scan: the posix control segment is found and recognised");
    check(info.backend != DSM_IMPL_POSIX || (abs && strcmp(seen.datadir, abs) == 0),
          "scan: ... with the data directory it records");
    {   /* an older caller's smaller struct gets its prefix only */
        dsm_metrics small;

        memset(&small, 0x5a, sizeof(small));
        check(dsm_inspect_metrics(insp, &small, offsetof(dsm_metrics, destroys)) == 0 &&
              small.creates == 2 && small.destroys == 0x5a5a5a5a5a5a5a5aULL,
              "metrics: a smaller size is filled, nothing past it");
    }
    dsm_inspect_close(insp);
    check(dsm_supervisor_reset() == 0, "metrics: crash reset");
    check(dsm_inspect_open(dir, 1000, &insp) == 0 && dsm_inspect_metrics(insp, &m, sizeof(m)) == 0,
          "metrics: read after the reset");
    check(m.resets == 1 && m.creates == 2 && m.destroys == 2 && m.segments == 0 && m.bytes == 0 &&
          m.peak_bytes == 1024,
          "metrics: the reset is counted and the totals carried (its destroy included)");
    dsm_inspect_close(insp);
    dsm_supervisor_shutdown();
    free(abs);
}

int main(void)
{
    char dir[] = "/tmp/dsmctl_unit.XXXXXX";
    int rc;

    if (mkdtemp(dir) == NULL)
        return 99;
    format_checks();
    rc = table_checks(dir);
    if (rc == 0)
        probe_checks(dir);
    if (rc == 0)
        metrics_checks(dir);
    {
        char cmd[64];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "dsmctl_unit: could not remove %s\n", dir);
    }
    if (rc != 0)
        return rc;
    printf("dsmctl_unit: %s\n", failures ? "FAILED" : "all good");
    return failures ? 1 : 0;
}
