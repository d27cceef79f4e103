/* SPDX-License-Identifier: MIT */
/*
 * check_control.c - the control table's operations, driven directly and
 * killed at every store.
 *
 * The most delicate code of the library is the slot/proc/ref bookkeeping
 * in src/control/slots.c: every operation must leave a table that repair
 * can rebuild, whatever instruction a SIGKILL lands on.  Each case here
 * forks a child that performs one operation (or a short sequence: reserve,
 * create the object, publish) with the step hook armed to SIGKILL it at
 * step N of DSM_CTL_STEP(), for N = 1, 2, ... until the operation completes
 * unharmed.  After each kill the parent, playing the supervisor:
 *   1. takes the lock (repairing the table if the child died holding it)
 *      and checks every invariant with dsm__control_verify();
 *   2. handles the dead child as a crash (reclaim its references, destroy
 *      what only it held, finish orphans) and checks again;
 *   3. checks the system agrees with the table: every handle the table
 *      listed before the recovery has an object exactly when its slot is
 *      still live -- nothing leaked, nothing listed is missing.
 * The destroy-everything pass (item "destroy-all loses track") is killed
 * the same way, and a second pass must leave nothing.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/control.h"
#include "control/inspect.h"
#include "dsm_impl/dsm_impl_int.h"
#include "testutil.h"

#define NPRE 3        /* segments the parent creates before each run */
#define MAX_KNOWN 64  /* handles remembered for the object check */

struct world {
    char dir[256];
    dsm_impl_instance *inst;
    struct dsm_control ctl;
    dsm_impl_segment cseg;
    uint32_t sup;                       /* the parent's entry: the supervisor */
    dsm_handle pre[NPRE];
    uint32_t pre_slot[NPRE], pre_ref[NPRE];
    dsm_impl_segment pre_map[NPRE];
    dsm_handle known[MAX_KNOWN];
    int nknown;
};

static int step_target, step_count;

static void kill_at_step(void)
{
    if (++step_count == step_target)
        raise(SIGKILL);
}

static void verify(struct world *w, const char *when)
{
    char why[256] = "";
    unsigned bad;

    ck_assert_int_eq(dsm__control_lock(&w->ctl), 0);
    bad = dsm__control_verify(&w->ctl, why, sizeof(why));
    dsm__control_unlock(&w->ctl);
    ck_assert_msg(bad == 0, "%s (step %d): %u problem(s), first: %s", when, step_target, bad,
                  why);
}

static void know(struct world *w, dsm_handle h)
{
    for (int i = 0; i < w->nknown; i++)
        if (w->known[i] == h)
            return;
    if (w->nknown < MAX_KNOWN)
        w->known[w->nknown++] = h;
}

/* Remember every handle the table lists now (the child may have made some). */
static void know_table(struct world *w)
{
    ck_assert_int_eq(dsm__control_lock(&w->ctl), 0);
    for (uint32_t i = 0; i < w->ctl.hdr->nslots; i++)
        if (w->ctl.slots[i].state != DSM_SLOT_FREE)
            know(w, w->ctl.slots[i].handle);
    dsm__control_unlock(&w->ctl);
}

/* Create segment k held by the parent. */
static void make_pre(struct world *w, int k)
{
    ck_assert_int_eq(dsm__control_slot_reserve(&w->ctl, w->sup, &w->pre[k], &w->pre_slot[k],
                                               &w->pre_ref[k]),
                     0);
    ck_assert_int_eq(dsm_impl_create(w->inst, w->pre[k], 8192, &w->pre_map[k]), 0);
    ck_assert_int_eq(dsm__control_slot_publish(&w->ctl, w->pre_slot[k], w->pre_ref[k], 8192,
                                               w->pre_map[k].os_id),
                     0);
    know(w, w->pre[k]);
}

static int setup(struct world *w, int type)
{
    struct dsm__procid me;
    dsm_handle h;

    memset(w, 0, sizeof(*w));
    if (!dsm_impl_type_available((dsm_impl_type)type))
        return 0;
    tu_make_datadir(w->dir, sizeof(w->dir));
    ck_assert_int_eq(dsm_impl_instance_open((dsm_impl_type)type, w->dir, &w->inst), 0);
    ck_assert_int_eq(dsm__random_bytes(&h, sizeof(h)), 0);
    ck_assert_int_eq(dsm__control_create(w->inst, h | 1, 16, 8, 64, &w->ctl), 0);
    w->cseg = w->ctl.map;
    dsm__procid_self(&me);
    ck_assert_int_eq(dsm__control_proc_register(&w->ctl, &me, DSM_PROC_SUPERVISOR, &w->sup), 0);
    for (int k = 0; k < NPRE; k++)
        make_pre(w, k);
    return 1;
}

static void teardown(struct world *w)
{
    unsigned left = 0;

    for (int k = 0; k < NPRE; k++)
        if (w->pre_map[k].address)
            dsm_impl_detach(w->inst, &w->pre_map[k]);
    dsm__control_destroy_all(w->inst, &w->ctl, NULL, NULL, &left);
    ck_assert_uint_eq(left, 0);
    ck_assert_uint_eq(w->ctl.hdr->slots_used, 0);
    for (int i = 0; i < w->nknown; i++)
        ck_assert_msg(dsm__impl_probe(w->inst, &(dsm_impl_segment){.handle = w->known[i],
                                                                        .os_id = -1}) == 0,
                      "segment %016llx outlived destroy-all", (unsigned long long)w->known[i]);
    dsm__control_detach(w->inst, &w->ctl);
    ck_assert_int_eq(dsm_impl_destroy(w->inst, &w->cseg), 0);
    dsm_impl_instance_close(w->inst);
    tu_remove_datadir(w->dir);
}

/* ---- what the child does ----------------------------------------------------------- */

struct child {
    struct world *w;
    uint32_t me;
    dsm_handle h;
    uint32_t slot, ref;
    dsm_impl_segment map;
};

/* Before the hook is armed: a full create, so the armed part has a segment to work on. */
static int child_create(struct child *c)
{
    if (dsm__control_slot_reserve(&c->w->ctl, c->me, &c->h, &c->slot, &c->ref) != 0 ||
        dsm_impl_create(c->w->inst, c->h, 4096, &c->map) != 0 ||
        dsm__control_slot_publish(&c->w->ctl, c->slot, c->ref, 4096, c->map.os_id) != 0)
        return 20;
    return 0;
}

/* Destroy the object behind a claim and free the slot (what dsm__finish_claim does). */
static int child_finish(struct child *c)
{
    dsm_impl_segment seg;
    int rc;

    dsm__control_slot_segment(&c->w->ctl, c->slot, &seg);
    rc = dsm_impl_destroy(c->w->inst, &seg);
    if (rc != 0 && rc != -ENOENT)
        return 30;
    return dsm__control_slot_release(&c->w->ctl, c->slot, c->ref) == 0 ? 0 : 31;
}

typedef int (*scenario)(struct child *c, int phase);
/* phase 0: set-up, unarmed; phase 1: the armed part. */

static int sc_create(struct child *c, int phase)
{
    return phase == 0 ? 0 : child_create(c);
}

static int sc_attach_detach_shared(struct child *c, int phase)
{
    dsm_impl_segment seg;

    if (phase == 0)
        return 0;
    if (dsm__control_ref_acquire(&c->w->ctl, c->me, c->w->pre[0], &c->slot, &c->ref, &seg) != 0)
        return 21;
    return dsm__control_ref_release(&c->w->ctl, c->slot, c->ref) == 0 ? 0 : 22;
}

static int sc_detach_last(struct child *c, int phase)
{
    if (phase == 0)
        return child_create(c);
    dsm_impl_detach(c->w->inst, &c->map);
    if (dsm__control_ref_release(&c->w->ctl, c->slot, c->ref) != 1)
        return 23;
    return child_finish(c);
}

static int sc_abandon(struct child *c, int phase)
{
    /* A creation whose object could not be made: reserve, rehandle, give it back. */
    if (phase == 0)
        return 0;
    if (dsm__control_slot_reserve(&c->w->ctl, c->me, &c->h, &c->slot, &c->ref) != 0 ||
        dsm__control_slot_rehandle(&c->w->ctl, c->slot, c->ref, &c->h) != 0)
        return 24;
    return dsm__control_slot_release(&c->w->ctl, c->slot, c->ref) == 0 ? 0 : 25;
}

static int sc_pin_unpin(struct child *c, int phase)
{
    dsm_impl_segment seg;
    uint32_t slot, claim;

    if (phase == 0)
        return child_create(c);
    if (dsm__control_pin(&c->w->ctl, c->slot, c->h) != 0)
        return 26;
    dsm_impl_detach(c->w->inst, &c->map);
    if (dsm__control_ref_release(&c->w->ctl, c->slot, c->ref) != 0) /* the pin keeps it */
        return 27;
    if (dsm__control_unpin(&c->w->ctl, c->me, c->h, &slot, &claim, &seg) != 1)
        return 28;
    c->slot = slot;
    c->ref = claim;
    return child_finish(c);
}

static int sc_register(struct child *c, int phase)
{
    struct dsm__procid other = {.pid = (int32_t)getpid(), .start_time = 1};
    uint32_t idx;

    if (phase == 0)
        return 0;
    if (dsm__control_proc_register(&c->w->ctl, &other, DSM_PROC_FORKED, &idx) != 0)
        return 29;
    return dsm__control_proc_unregister(&c->w->ctl, idx) == 0 ? 0 : 32;
}

/* The child reclaims a dead "ghost" that holds a share, a half creation and a claim. */
static int sc_reclaim(struct child *c, int phase)
{
    static struct dsm_control_member ghost;
    struct dsm_claim claims[8];
    int n;

    if (phase == 0) {
        struct dsm__procid dead = {.pid = (int32_t)getpid(), .start_time = 3};
        uint32_t g, s, r;
        dsm_handle h;
        dsm_impl_segment seg;

        if (dsm__control_proc_register(&c->w->ctl, &dead, DSM_PROC_FORKED, &g) != 0 ||
            dsm__control_ref_acquire(&c->w->ctl, g, c->w->pre[1], &s, &r, &seg) != 0 ||
            dsm__control_slot_reserve(&c->w->ctl, g, &h, &s, &r) != 0)
            return 33;
        ghost.index = g;
        ghost.id = dead;
        return 0;
    }
    n = dsm__control_reclaim(&c->w->ctl, &ghost, c->me, claims, 8);
    if (n < 0)
        return 34;
    for (int i = 0; i < n; i++) {
        c->slot = claims[i].slot;
        c->ref = claims[i].ref;
        if (child_finish(c) != 0)
            return 35;
    }
    return 0;
}

static int sc_destroy_all(struct child *c, int phase)
{
    unsigned left = 1;

    if (phase == 0)
        return child_create(c);
    dsm__control_destroy_all(c->w->inst, &c->w->ctl, NULL, NULL, &left);
    return left == 0 ? 0 : 36;
}

/* ---- the parent ------------------------------------------------------------------------- */

static void finish(struct world *w, struct dsm_claim *claims, int n)
{
    for (int i = 0; i < n; i++) {
        dsm_impl_segment seg;
        int rc;

        dsm__control_slot_segment(&w->ctl, claims[i].slot, &seg);
        rc = dsm_impl_destroy(w->inst, &seg);
        ck_assert_msg(rc == 0 || rc == -ENOENT, "destroy: %s", dsm_errmsg());
        ck_assert_int_eq(dsm__control_slot_release(&w->ctl, claims[i].slot, claims[i].ref), 0);
    }
}

/* What dsm_supervisor_check_workers() does: every dead member, then orphans. */
static void recover(struct world *w)
{
    struct dsm_control_member m[8];
    struct dsm_claim claims[16];
    uint32_t cursor = 0;
    int n;

    n = dsm__control_members(&w->ctl, w->sup, 0, m, 8, &cursor);
    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++) {
        int k;

        ck_assert(!dsm__procid_alive(&m[i].id)); /* the parent is the only one left */
        while ((k = dsm__control_reclaim(&w->ctl, &m[i], w->sup, claims, 16)) > 0)
            finish(w, claims, k);
        ck_assert_int_eq(k, 0);
    }
    while ((n = dsm__control_orphans(&w->ctl, w->sup, claims, 16)) > 0)
        finish(w, claims, n);
    ck_assert_int_eq(n, 0);
}

/* Every known handle has an object exactly when the table lists it live. */
static void check_objects(struct world *w)
{
    for (int i = 0; i < w->nknown; i++) {
        uint32_t slot = (uint32_t)w->known[i];
        bool live = slot < w->ctl.hdr->nslots && w->ctl.slots[slot].handle == w->known[i] &&
                    w->ctl.slots[slot].state == DSM_SLOT_LIVE;
        int rc = dsm__impl_probe(w->inst, &(dsm_impl_segment){.handle = w->known[i],
                                                                   .os_id = -1});

        ck_assert_msg(rc == (live ? 1 : 0), "step %d: segment %016llx: %s, but probe says %d",
                      step_target, (unsigned long long)w->known[i],
                      live ? "listed live" : "not listed", rc);
    }
}

/* Run one scenario with the child killed at step n; returns 1 once it completes unharmed. */
static int run_at(int type, scenario sc, int n)
{
    struct world w;
    struct child c;
    pid_t pid;
    int st, done;

    if (!setup(&w, type))
        return 1;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct dsm__procid me;
        int rc;

        memset(&c, 0, sizeof(c));
        c.w = &w;
        dsm__procid_self(&me);
        if (dsm__control_proc_register(&w.ctl, &me, DSM_PROC_FORKED, &c.me) != 0)
            _exit(10);
        if ((rc = sc(&c, 0)) != 0)
            _exit(rc);
        step_target = n;
        step_count = 0;
        dsm__control_step_hook = kill_at_step;
        rc = sc(&c, 1);
        dsm__control_step_hook = NULL;
        _exit(rc);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    done = WIFEXITED(st);
    ck_assert_msg(done ? WEXITSTATUS(st) == 0 : WTERMSIG(st) == SIGKILL,
                  "step %d: child ended with status 0x%x", n, st);
    step_target = n;
    verify(&w, "after the kill, once repaired");
    know_table(&w);
    if (sc != sc_destroy_all) {
        recover(&w);
        verify(&w, "after the crash handling");
        /* Only the parent is left, holding its own segments. */
        ck_assert_uint_eq(w.ctl.hdr->procs_used, 1);
        check_objects(&w);
    }
    /* For destroy-all the interesting part is here: a second pass must leave nothing. */
    teardown(&w);
    return done;
}

static void every_step(int type, scenario sc, const char *name)
{
    int n;

    for (n = 1; n < 500 && !run_at(type, sc, n); n++)
        ;
    ck_assert_msg(n < 500, "%s never completed", name);
    ck_assert_msg(n > 1, "%s has no step to kill at", name);
    fprintf(stderr, "control: %s (%s) killed at each of its %d steps\n", name,
            dsm_impl_type_name((dsm_impl_type)type), n - 1);
}

#define SCENARIO(fn)                                                                          \
    START_TEST(test_##fn) { every_step(_i, fn, #fn); }                                         \
    END_TEST

SCENARIO(sc_create)
SCENARIO(sc_attach_detach_shared)
SCENARIO(sc_detach_last)
SCENARIO(sc_abandon)
SCENARIO(sc_pin_unpin)
SCENARIO(sc_register)
SCENARIO(sc_reclaim)
SCENARIO(sc_destroy_all)

/* ---- scribbles: a bad index is corruption reported, never a crash -------------------- */

START_TEST(test_scribbled_indexes)
{
    struct world w;
    uint32_t slot, ref, *heads[3];
    dsm_handle h;
    dsm_impl_segment seg;
    /* Out of range for every table (16 slots, 8 processes, 64 references). */
    static const uint32_t garbage[] = {0xdeadbeefu, 0x7fffffffu, 0xfffffffeu, 64, 1000};

    if (!setup(&w, DSM_IMPL_POSIX))
        return;
    heads[0] = &w.ctl.hdr->slot_free;
    heads[1] = &w.ctl.hdr->ref_free;
    heads[2] = &w.ctl.procs[w.sup].ref_head;
    for (int k = 0; k < 3; k++) {
        for (size_t g = 0; g < sizeof(garbage) / sizeof(garbage[0]); g++) {
            int rc;

            *heads[k] = garbage[g];
            rc = dsm__control_slot_reserve(&w.ctl, w.sup, &h, &slot, &ref);
            if (rc == 0) {
                /* The scribble happened to name a usable entry: give it back. */
                ck_assert_int_eq(dsm__control_slot_release(&w.ctl, slot, ref), 0);
            } else {
                ck_assert_int_eq(rc, DSM_ECORRUPT);
                ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "corrupt"));
            }
            verify(&w, "after a scribbled list head");
            /* The rebuilt table works again (the parent holds pre[2], so not the last ref). */
            ck_assert_int_eq(dsm__control_ref_acquire(&w.ctl, w.sup, w.pre[2], &slot, &ref, &seg),
                             0);
            ck_assert_int_eq(dsm__control_ref_release(&w.ctl, slot, ref), 0);
        }
    }
    ck_assert_uint_gt(w.ctl.hdr->corruptions, 0);
    teardown(&w);
}
END_TEST

/* A scribbled next pointer inside a process's list: release is refused, nothing breaks. */
START_TEST(test_scribbled_ref_links)
{
    struct world w;
    dsm_impl_segment seg;
    uint32_t slot, ref;
    int rc;

    if (!setup(&w, DSM_IMPL_SYSV))
        return;
    /* A second reference, so releasing it unlinks it (the last one would stay as a claim). */
    ck_assert_int_eq(dsm__control_ref_acquire(&w.ctl, w.sup, w.pre[1], &slot, &ref, &seg), 0);
    w.ctl.refs[ref].next = 0x12345678u;
    rc = dsm__control_ref_release(&w.ctl, slot, ref);
    ck_assert_int_eq(rc, DSM_ECORRUPT);
    verify(&w, "after a scribbled reference link");
    /* Repair rebuilt the links: the same release now works. */
    ck_assert_int_eq(dsm__control_ref_release(&w.ctl, slot, ref), 0);
    verify(&w, "after the release");
    teardown(&w);
}
END_TEST

/* An orphan (a live slot nobody holds) is adopted by the supervisor and finished. */
START_TEST(test_orphan_adopted)
{
    struct world w;
    struct dsm_claim claims[4];
    uint32_t victim;
    int n;

    if (!setup(&w, _i))
        return;
    victim = w.pre_slot[0];
    /* What the old unregister did: drop the ref without the count. */
    ck_assert_int_eq(dsm__control_lock(&w.ctl), 0);
    w.ctl.refs[w.pre_ref[0]].slot = DSM_CONTROL_NONE;
    dsm__control_repair(&w.ctl);
    dsm__control_unlock(&w.ctl);
    ck_assert_uint_eq(w.ctl.hdr->orphans, 1);
    ck_assert(w.ctl.slots[victim].flags & DSM_SLOT_ORPHAN);
    verify(&w, "after adoption");
    dsm_impl_detach(w.inst, &w.pre_map[0]);
    n = dsm__control_orphans(&w.ctl, w.sup, claims, 4);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(claims[0].slot, victim);
    finish(&w, claims, n);
    ck_assert_uint_eq(w.ctl.hdr->orphans, 0);
    ck_assert_int_eq(dsm__impl_probe(w.inst, &(dsm_impl_segment){.handle = w.pre[0],
                                                                      .os_id = -1}),
                     0);
    verify(&w, "after the orphan was finished");
    teardown(&w);
}
END_TEST

/* A process leaving with references keeps its entry for the crash path. */
START_TEST(test_unregister_with_refs)
{
    struct world w;
    struct dsm__procid other = {.pid = 1, .start_time = 1};
    dsm_impl_segment seg;
    uint32_t p, slot, ref;

    if (!setup(&w, DSM_IMPL_POSIX))
        return;
    ck_assert_int_eq(dsm__control_proc_register(&w.ctl, &other, DSM_PROC_FORKED, &p), 0);
    ck_assert_int_eq(dsm__control_ref_acquire(&w.ctl, p, w.pre[0], &slot, &ref, &seg), 0);
    ck_assert_int_eq(dsm__control_proc_unregister(&w.ctl, p), -EBUSY);
    ck_assert_uint_eq(w.ctl.slots[slot].refcnt, 2); /* counted, not dropped */
    verify(&w, "after a refused unregister");
    ck_assert_int_eq(dsm__control_ref_release(&w.ctl, slot, ref), 0);
    ck_assert_int_eq(dsm__control_proc_unregister(&w.ctl, p), 0);
    verify(&w, "after the unregister");
    teardown(&w);
}
END_TEST

Suite *suite_control(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("kill_every_step");

    tcase_set_timeout(tc, 300);
#define ADD(fn) tcase_add_loop_test(tc, test_##fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)
    ADD(sc_create);
    ADD(sc_attach_detach_shared);
    ADD(sc_detach_last);
    ADD(sc_abandon);
    ADD(sc_pin_unpin);
    ADD(sc_register);
    ADD(sc_reclaim);
    ADD(sc_destroy_all);
#undef ADD
    suite_add_tcase(s, tc);
    tc = tcase_create("scribbles");
    tcase_add_test(tc, test_scribbled_indexes);
    tcase_add_test(tc, test_scribbled_ref_links);
    tcase_add_loop_test(tc, test_orphan_adopted, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_test(tc, test_unregister_with_refs);
    suite_add_tcase(s, tc);
    return s;
}
