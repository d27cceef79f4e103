/* SPDX-License-Identifier: MIT */
/*
 * check_dsm.c - the dsm API with real processes: create/attach across
 * fork, every refcount transition, pins, a reused handle, slot and mapping
 * exhaustion, on-detach callbacks, resource owners and threads.  Every
 * case runs on every backend and ends with exactly the control segment
 * left (then nothing, after shut-down).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <unistd.h>

#include "dsm/dsm_int.h"
#include "dsmtest.h"

#define LOOP(tc, fn) tcase_add_loop_test(tc, fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)

static void finish(struct sv *v)
{
    ck_assert_int_eq(sv_objects(v), 1); /* the control segment */
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(v), 0);
}

static const struct dsm_control_slot *slot_of(dsm_handle h)
{
    return &dsm__p.ctl.slots[(uint32_t)h];
}

/* ---- create / attach across processes ------------------------------------ */

static dsm_handle shared_handle;

static int child_reads_and_writes(void *arg)
{
    dsm_segment *seg, *again;

    (void)arg;
    if (dsm_attach(shared_handle, &seg) != 0)
        return 10;
    if (strcmp(dsm_segment_address(seg), "from parent") != 0)
        return 11;
    if (dsm_attach(shared_handle, &again) != -EEXIST)
        return 12;
    if (dsm_find_mapping(shared_handle) != seg)
        return 13;
    if (dsm_segment_map_length(seg) != 65536)
        return 14;
    strcpy((char *)dsm_segment_address(seg) + 100, "from child");
    return 0; /* exit() detaches */
}

START_TEST(test_create_attach_detach)
{
    struct sv v;
    dsm_segment *seg, *none;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(65536, 0, &seg), 0);
    shared_handle = dsm_segment_handle(seg);
    ck_assert_uint_ne(shared_handle, 0);
    strcpy(dsm_segment_address(seg), "from parent");
    ck_assert_int_eq(sv_wait(sv_fork_worker(child_reads_and_writes, NULL)), 0);
    ck_assert_str_eq((char *)dsm_segment_address(seg) + 100, "from child");
    ck_assert_int_eq(slot_of(shared_handle)->refcnt, 1); /* the child's exit released its ref */
    ck_assert_int_eq(sv_objects(&v), 2);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_ptr_null(dsm_find_mapping(shared_handle));
    ck_assert_int_eq(dsm_attach(shared_handle, &none), -ENOENT);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "no dynamic shared memory segment"));
    ck_assert_ptr_null(none);
    finish(&v);
}
END_TEST

START_TEST(test_bad_arguments)
{
    struct sv v;
    dsm_segment *seg;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(0, 0, &seg), -EINVAL);
    ck_assert_int_eq(dsm_create(DSM_IMPL_MAX_SIZE + 1, 0, &seg), -EINVAL);
    ck_assert_int_eq(dsm_create(4096, 0x100, &seg), -EINVAL);
    ck_assert_int_eq(dsm_create(4096, 0, NULL), -EINVAL);
    ck_assert_int_eq(dsm_attach(DSM_HANDLE_INVALID, &seg), -EINVAL);
    ck_assert_int_eq(dsm_attach(0x1234567800000005ULL, &seg), -ENOENT); /* never issued */
    ck_assert_int_eq(dsm_attach(0xffffffffffffffffULL, &seg), -ENOENT); /* slot out of range */
    ck_assert_int_eq(dsm_detach(NULL), -EINVAL);
    ck_assert_int_eq(dsm_unpin_segment(0x42), -ENOENT);
    ck_assert_int_eq(dsm_supervisor_start(v.dir, NULL), DSM_ESTATE);
    finish(&v);
}
END_TEST

/* ---- refcount transitions -------------------------------------------------- */

static struct sync rendezvous;

static int child_holds_until_told(void *arg)
{
    dsm_segment *seg;

    (void)arg;
    if (dsm_attach(shared_handle, &seg) != 0)
        return 10;
    sync_signal_parent(&rendezvous, 1);
    sync_wait_parent(&rendezvous);
    strcpy(dsm_segment_address(seg), "child was last");
    return dsm_detach(seg) == 0 ? 0 : 11;
}

START_TEST(test_refcount_transitions)
{
    struct sv v;
    dsm_segment *seg;
    pid_t pid;

    if (!sv_start(&v, _i, NULL))
        return;
    sync_init(&rendezvous);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared_handle = dsm_segment_handle(seg);
    ck_assert_int_eq(slot_of(shared_handle)->state, DSM_SLOT_LIVE);
    ck_assert_int_eq(slot_of(shared_handle)->refcnt, 1);
    pid = sv_fork_worker(child_holds_until_told, NULL);
    sync_wait_child(&rendezvous);
    ck_assert_int_eq(slot_of(shared_handle)->refcnt, 2);
    ck_assert_int_eq(dsm_detach(seg), 0); /* 2 -> 1: the child keeps it alive */
    ck_assert_int_eq(slot_of(shared_handle)->refcnt, 1);
    ck_assert_int_eq(slot_of(shared_handle)->state, DSM_SLOT_LIVE);
    ck_assert_int_eq(sv_objects(&v), 2);
    sync_signal_child(&rendezvous);
    ck_assert_int_eq(sv_wait(pid), 0); /* 1 -> 0: destroyed by the child */
    ck_assert_int_eq(slot_of(shared_handle)->state, DSM_SLOT_FREE);
    ck_assert_int_eq(dsm__p.ctl.hdr->slots_used, 0);
    ck_assert_int_eq(dsm__p.ctl.hdr->refs_used, 0);
    finish(&v);
}
END_TEST

/* ---- pinning ------------------------------------------------------------------ */

START_TEST(test_pin_segment)
{
    struct sv v;
    dsm_segment *seg;
    dsm_handle h;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    h = dsm_segment_handle(seg);
    strcpy(dsm_segment_address(seg), "pinned");
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    ck_assert_int_eq(dsm_pin_segment(seg), -EALREADY);
    ck_assert_int_eq(slot_of(h)->refcnt, 2);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 2); /* the pin keeps it */
    ck_assert_int_eq(dsm_attach(h, &seg), 0);
    ck_assert_str_eq(dsm_segment_address(seg), "pinned");
    ck_assert_int_eq(dsm_unpin_segment(h), 0); /* still mapped: lives on */
    ck_assert_int_eq(dsm_unpin_segment(h), -EINVAL);
    ck_assert_int_eq(sv_objects(&v), 2);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 1);

    /* Unpinning an unmapped pinned segment destroys it at once. */
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    h = dsm_segment_handle(seg);
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_unpin_segment(h), 0);
    ck_assert_int_eq(dsm_unpin_segment(h), -ENOENT);
    ck_assert_int_eq(sv_objects(&v), 1);
    finish(&v);
}
END_TEST

static int child_creates_pinned(void *arg)
{
    dsm_segment *seg;

    (void)arg;
    if (dsm_create(8192, 0, &seg) != 0 || dsm_pin_segment(seg) != 0)
        return 10;
    strcpy(dsm_segment_address(seg), "outlived its creator");
    sync_signal_parent(&rendezvous, dsm_segment_handle(seg));
    return 0;
}

/*
 * Unpinning destroys an unmapped pinned segment; when its object turns out
 * not to be ours (DSM_EFOREIGN, which sets no errno) that is reported,
 * whatever errno held before: the code decides, never a stale errno.
 */
START_TEST(test_unpin_reports_foreign_object)
{
    struct sv v;
    dsm_segment *seg;
    dsm_handle h;
    struct shmid_ds ds;
    char name[64];
    unsigned key;
    int shmid;

    if (_i != DSM_IMPL_SYSV || !sv_start(&v, _i, NULL))
        return; /* only SysV destroy refuses an object whose mode changed */
    log_capture_start();
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    h = dsm_segment_handle(seg);
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_impl_segment_name(dsm__p.inst, h, name, sizeof(name)), 0);
    ck_assert_int_eq(sscanf(name, "key 0x%x", &key), 1);
    ck_assert_int_ge(shmid = shmget((key_t)key, 0, 0), 0);
    ck_assert_int_eq(shmctl(shmid, IPC_STAT, &ds), 0);
    ds.shm_perm.mode = 0644; /* somebody opened it up: no longer provably ours */
    ck_assert_int_eq(shmctl(shmid, IPC_SET, &ds), 0);
    errno = ENOENT; /* a stale errno that once hid the failure */
    ck_assert_int_eq(dsm_unpin_segment(h), 0);
    ck_assert_int_eq(log_count("permissions 644"), 1);
    ck_assert_int_eq(shmctl(shmid, IPC_RMID, NULL), 0);
    finish(&v);
}
END_TEST

START_TEST(test_pin_outlives_creator)
{
    struct sv v;
    dsm_segment *seg;
    dsm_handle h;
    pid_t pid;

    if (!sv_start(&v, _i, NULL))
        return;
    sync_init(&rendezvous);
    pid = sv_fork_worker(child_creates_pinned, NULL);
    h = sync_wait_child(&rendezvous);
    ck_assert_int_eq(sv_wait(pid), 0);
    ck_assert_int_eq(dsm_attach(h, &seg), 0);
    ck_assert_str_eq(dsm_segment_address(seg), "outlived its creator");
    ck_assert_int_eq(dsm_unpin_segment(h), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    finish(&v);
}
END_TEST

START_TEST(test_pin_mapping)
{
    struct sv v;
    dsm_resowner *owner;
    dsm_segment *a, *b;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_resowner_create(NULL, "query", &owner), 0);
    dsm_resowner_set_current(owner);
    ck_assert_int_eq(dsm_create(4096, 0, &a), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &b), 0);
    ck_assert_int_eq(dsm_pin_mapping(a), 0); /* session lifetime now */
    dsm_resowner_release(owner, false);
    ck_assert_ptr_eq(dsm_find_mapping(dsm_segment_handle(a)), a);
    ck_assert_int_eq(sv_objects(&v), 2); /* b went with the owner */
    ck_assert_int_eq(dsm_unpin_mapping(a), 0); /* back to the current owner */
    dsm_resowner_release(owner, false);
    ck_assert_int_eq(sv_objects(&v), 1);
    dsm_resowner_delete(owner);
    ck_assert_ptr_null(dsm_resowner_current());
    (void)b;
    finish(&v);
}
END_TEST

/* ---- handles and capacity -------------------------------------------------- */

START_TEST(test_reused_handle_is_not_confused)
{
    struct sv v;
    dsm_segment *a, *b, *x;
    dsm_handle ha, hb;

    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &a), 0);
    ha = dsm_segment_handle(a);
    ck_assert_int_eq(dsm_detach(a), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &b), 0); /* takes the same slot */
    hb = dsm_segment_handle(b);
    ck_assert_uint_eq((uint32_t)ha, (uint32_t)hb);
    ck_assert_uint_ne(ha, hb);
    ck_assert_int_eq(dsm_attach(ha, &x), -ENOENT);
    ck_assert_int_eq(dsm_detach(b), 0);
    finish(&v);
}
END_TEST

START_TEST(test_slot_exhaustion)
{
    static const char *const opts[] = {"dsm_max_segments=4", NULL};
    struct sv v;
    dsm_segment *seg[5];

    if (!sv_start(&v, _i, opts))
        return;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(dsm_create(4096, 0, &seg[i]), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &seg[4]), DSM_ENOSLOTS);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "too many dynamic shared memory segments"));
    ck_assert_ptr_null(seg[4]);
    ck_assert_int_eq(dsm_create(4096, DSM_CREATE_NULL_IF_MAXSEGMENTS, &seg[4]), 0);
    ck_assert_ptr_null(seg[4]);
    ck_assert_int_eq(sv_objects(&v), 5); /* the failures created nothing */
    ck_assert_int_eq(dsm_detach(seg[0]), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &seg[0]), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(dsm_detach(seg[i]), 0);
    finish(&v);
}
END_TEST

START_TEST(test_mapping_exhaustion)
{
    static const char *const opts[] = {"dsm_max_mappings=2", NULL};
    struct sv v;
    dsm_segment *a, *b, *c;

    if (!sv_start(&v, _i, opts))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &a), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &b), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &c), DSM_ENOSLOTS);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "mappings"));
    ck_assert_int_eq(sv_objects(&v), 3);
    ck_assert_int_eq(dsm_detach(a), 0);
    ck_assert_int_eq(dsm_detach(b), 0);
    finish(&v);
}
END_TEST

/* ---- on-detach callbacks ------------------------------------------------------- */

static char order[16];
static dsm_segment *other_seg;

static void note(dsm_segment *seg, void *arg)
{
    (void)seg;
    strncat(order, arg, 1);
}

static void detach_other(dsm_segment *seg, void *arg)
{
    (void)seg, (void)arg;
    strcat(order, "D");
    dsm_detach(other_seg);
}

static void self_cancel(dsm_segment *seg, void *arg)
{
    /* Already removed before it runs: cancelling itself finds nothing. */
    strcat(order, dsm_cancel_on_detach(seg, self_cancel, arg) == -ENOENT ? "S" : "!");
}

START_TEST(test_on_detach_callbacks)
{
    struct sv v;
    dsm_segment *seg;

    if (!sv_start(&v, _i, NULL))
        return;
    order[0] = '\0';
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &other_seg), 0);
    ck_assert_int_eq(dsm_on_detach(seg, note, "1"), 0);
    ck_assert_int_eq(dsm_on_detach(seg, note, "2"), 0);
    ck_assert_int_eq(dsm_on_detach(seg, detach_other, NULL), 0);
    ck_assert_int_eq(dsm_on_detach(seg, note, "3"), 0);
    ck_assert_int_eq(dsm_on_detach(seg, self_cancel, NULL), 0);
    ck_assert_int_eq(dsm_cancel_on_detach(seg, note, "2"), 0);
    ck_assert_int_eq(dsm_cancel_on_detach(seg, note, "2"), -ENOENT);
    ck_assert_int_eq(dsm_on_detach(seg, NULL, NULL), -EINVAL);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_str_eq(order, "S3D1"); /* reverse order of registration */
    ck_assert_int_eq(sv_objects(&v), 1);
    finish(&v);
}
END_TEST

/* ---- resource owners ------------------------------------------------------------ */

START_TEST(test_resowner_tree)
{
    struct sv v;
    dsm_resowner *top, *sub;
    dsm_segment *a, *b, *c;

    if (!sv_start(&v, _i, NULL))
        return;
    log_capture_start();
    order[0] = '\0';
    ck_assert_int_eq(dsm_resowner_create(NULL, "transaction", &top), 0);
    ck_assert_int_eq(dsm_resowner_create(top, "subtransaction", &sub), 0);
    ck_assert_ptr_null(dsm_resowner_set_current(top));
    ck_assert_int_eq(dsm_create(4096, 0, &a), 0);
    ck_assert_int_eq(dsm_on_detach(a, note, "a"), 0);
    dsm_resowner_set_current(sub);
    ck_assert_int_eq(dsm_create(4096, 0, &b), 0);
    ck_assert_int_eq(dsm_on_detach(b, note, "b"), 0);
    dsm_resowner_set_current(NULL);
    ck_assert_int_eq(dsm_create(4096, 0, &c), 0); /* no owner: session lifetime */
    ck_assert_int_eq(sv_objects(&v), 4);

    dsm_resowner_release(top, false); /* an error path: no leak reports */
    ck_assert_str_eq(order, "ba"); /* children first */
    ck_assert_int_eq(log_count("leak"), 0);
    ck_assert_int_eq(sv_objects(&v), 2);

    dsm_resowner_set_current(sub);
    ck_assert_int_eq(dsm_create(4096, 0, &a), 0);
    dsm_resowner_set_current(NULL);
    dsm_resowner_release(top, true); /* a success path that forgot a mapping */
    ck_assert_int_eq(log_count("leak"), 1);
    ck_assert_int_eq(log_count("subtransaction"), 1);
    ck_assert_int_eq(sv_objects(&v), 2);
    dsm_resowner_delete(top);
    ck_assert_int_eq(dsm_detach(c), 0);
    finish(&v);
}
END_TEST

/* ---- threads -------------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 300

static void *thread_loop(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    dsm_resowner *owner;

    if (dsm_resowner_create(NULL, "thread", &owner) != 0)
        return "owner";
    dsm_resowner_set_current(owner);
    for (int i = 0; i < ROUNDS; i++) {
        size_t size = 1 + rand_r(&seed) % 65536;
        dsm_segment *seg;

        if (dsm_create(size, 0, &seg) != 0)
            return "create";
        memset(dsm_segment_address(seg), (int)seed, size);
        if (dsm_find_mapping(dsm_segment_handle(seg)) != seg)
            return "find";
        if (i % 3 == 0) {
            dsm_handle h = dsm_segment_handle(seg);

            if (dsm_pin_segment(seg) != 0 || dsm_detach(seg) != 0 || dsm_attach(h, &seg) != 0 ||
                dsm_unpin_segment(h) != 0)
                return "pin";
        }
        if (i % 2 == 0)
            dsm_resowner_release(owner, false);
        else if (dsm_detach(seg) != 0)
            return "detach";
    }
    dsm_resowner_delete(owner);
    return NULL;
}

START_TEST(test_threads)
{
    pthread_t t[THREADS];
    struct sv v;

    if (!sv_start(&v, _i, NULL))
        return;
    for (uintptr_t i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_loop, (void *)(i + 1)), 0);
    for (int i = 0; i < THREADS; i++) {
        void *res;

        ck_assert_int_eq(pthread_join(t[i], &res), 0);
        ck_assert_msg(res == NULL, "thread failed at %s: %s", (char *)res, dsm_errmsg());
    }
    ck_assert_int_eq(dsm__p.ctl.hdr->slots_used, 0);
    ck_assert_int_eq(dsm__p.ctl.hdr->refs_used, 0);
    ck_assert_int_eq(dsm__p.ctl.hdr->creates, THREADS * ROUNDS);
    finish(&v);
}
END_TEST

/* Two threads attaching the same handle: exactly one wins. */
static void *attach_once(void *arg)
{
    dsm_segment *seg;
    int rc = dsm_attach(*(dsm_handle *)arg, &seg);

    return (void *)(intptr_t)rc;
}

static int child_creates_and_waits(void *arg)
{
    dsm_segment *seg;

    (void)arg;
    if (dsm_create(4096, 0, &seg) != 0)
        return 10;
    sync_signal_parent(&rendezvous, dsm_segment_handle(seg));
    sync_wait_parent(&rendezvous);
    return 0;
}

START_TEST(test_threads_attach_same_handle)
{
    pthread_t t[2];
    void *res[2];
    struct sv v;
    dsm_handle h;
    pid_t pid;

    if (!sv_start(&v, _i, NULL))
        return;
    sync_init(&rendezvous);
    pid = sv_fork_worker(child_creates_and_waits, NULL);
    h = sync_wait_child(&rendezvous);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, attach_once, &h), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], &res[i]);
    ck_assert_int_eq((intptr_t)res[0] + (intptr_t)res[1], -EEXIST);
    ck_assert_int_eq(slot_of(h)->refcnt, 2);
    dsm_detach_all();
    sync_signal_child(&rendezvous);
    ck_assert_int_eq(sv_wait(pid), 0);
    finish(&v);
}
END_TEST

START_TEST(test_none_backend)
{
    struct sv v;
    dsm_segment *seg;

    ck_assert(sv_start(&v, DSM_IMPL_NONE, NULL));
    ck_assert_int_eq(dsm_create(4096, 0, &seg), DSM_EDISABLED);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "disabled"));
    ck_assert_int_eq(dsm_attach(0x100000000ULL, &seg), DSM_EDISABLED);
    ck_assert_uint_eq(dsm_control_handle(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

START_TEST(test_not_started)
{
    dsm_segment *seg;

    ck_assert_int_eq(dsm_create(4096, 0, &seg), DSM_ESTATE);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "not initialised"));
    ck_assert_int_eq(dsm_supervisor_reset(), DSM_ESTATE);
    ck_assert_int_eq(dsm_supervisor_shutdown(), DSM_ESTATE);
    ck_assert_int_eq(dsm_worker_init_after_fork(), DSM_ESTATE);
    ck_assert_int_eq(dsm_worker_attach("/nonexistent"), -ENOENT);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "could not access data directory"));
}
END_TEST

Suite *suite_dsm(void)
{
    Suite *s = suite_create("dsm");
    TCase *tc = tcase_create("api");

    tcase_set_timeout(tc, 60);
    LOOP(tc, test_create_attach_detach);
    LOOP(tc, test_bad_arguments);
    LOOP(tc, test_refcount_transitions);
    LOOP(tc, test_pin_segment);
    LOOP(tc, test_unpin_reports_foreign_object);
    LOOP(tc, test_pin_outlives_creator);
    LOOP(tc, test_pin_mapping);
    LOOP(tc, test_reused_handle_is_not_confused);
    LOOP(tc, test_slot_exhaustion);
    LOOP(tc, test_mapping_exhaustion);
    LOOP(tc, test_on_detach_callbacks);
    LOOP(tc, test_resowner_tree);
    tcase_add_test(tc, test_none_backend);
    tcase_add_test(tc, test_not_started);
    suite_add_tcase(s, tc);

    /* The multi-threaded cases, in a case of their own so the TSan stage
     * can run just them (CK_RUN_SUITE=dsm CK_RUN_CASE=threads). */
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    LOOP(tc, test_threads);
    LOOP(tc, test_threads_attach_same_handle);
    suite_add_tcase(s, tc);
    return s;
}
