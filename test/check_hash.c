/* SPDX-License-Identifier: MIT */
/*
 * check_hash.c - the shared hash table, with real processes: operations,
 * growth and shrink back to nothing, string keys, parameter checks, scans
 * against concurrent writers (each stable entry seen once), several
 * processes writing at once with exact counts, a worker SIGKILLed at every
 * step inside a partition lock (the table reports itself inconsistent and
 * the crash escalates to a reset), random kill loops of inserters,
 * deleters and scanners with the validator run after every death, and
 * scribbled shared data (an error, never a crash).
 *
 * DYNSHM_SOAK=N multiplies the kill loop (make soak).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/area.h>
#include <dynshm/hash.h>

#include "dsmtest.h"
#include "hash/hash_int.h"

static const char *const reclaim_opts[] = {"dsm_crash_policy=reclaim", NULL};

struct kv {
    uint64_t key;
    uint64_t value;
};

static const dsm_hash_params kv_params = {.key_size = 8, .entry_size = sizeof(struct kv)};

static dsm_handle area_handle;
static dsm_hash_handle table_handle;

static int soak_factor(void)
{
    const char *s = getenv("DYNSHM_SOAK");
    int n = s ? atoi(s) : 1;

    return n > 0 ? n : 1;
}

static void *shared_page(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

static uint64_t value_of(uint64_t key)
{
    return key * UINT64_C(0x9e3779b97f4a7c15) + 1;
}

static int put(dsm_hash *t, uint64_t key)
{
    struct kv *e;
    int rc = dsm_hash_find_or_insert(t, &key, (void **)&e);

    if (rc < 0)
        return rc;
    e->value = value_of(key);
    dsm_hash_release(t, e);
    return rc;
}

static size_t area_in_use(dsm_area *a)
{
    dsm_area_stats st;

    ck_assert_int_eq(dsm_area_stats_get(a, &st), 0);
    return st.bytes_in_use;
}

/* ---- operations ------------------------------------------------------------------ */

START_TEST(test_hash_operations)
{
    const uint64_t n = 20000;
    dsm_hash_stats st;
    dsm_hash *t, *t2;
    dsm_area *a;
    struct kv c, *e;
    struct sv v;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
    ck_assert_int_eq(dsm_hash_create(a, &kv_params, &t), 0);
    ck_assert_int_eq(dsm_hash_attach(a, dsm_hash_get_handle(t), &kv_params, &t2), 0);
    for (uint64_t k = 0; k < n; k++)
        ck_assert_int_eq(put(t, k), 0);
    ck_assert_int_eq(put(t, 7), 1); /* found, not inserted */
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    ck_assert_int_eq(dsm_hash_stats_get(t, &st), 0);
    ck_assert_uint_eq(st.entries, n);
    ck_assert_uint_ge(st.slots * 3, n * 4);
    for (uint64_t k = 0; k < n; k++) {
        ck_assert_int_eq(dsm_hash_lookup(t2, &k, &c), 1);
        ck_assert_uint_eq(c.key, k);
        ck_assert_uint_eq(c.value, value_of(k));
    }
    for (uint64_t k = n; k < 2 * n; k++)
        ck_assert_int_eq(dsm_hash_lookup(t2, &k, &c), 0);
    for (uint64_t k = 0; k < n; k += 2)
        ck_assert_int_eq(dsm_hash_delete_key(t2, &k), 1);
    ck_assert_int_eq(dsm_hash_delete_key(t2, &(uint64_t){0}), 0);
    for (uint64_t k = 1; k < n; k += 2) {
        ck_assert_int_eq(dsm_hash_find(t, &k, DSM_HASH_SHARED, (void **)&e), 1);
        ck_assert_uint_eq(e->value, value_of(k));
        if (k % 4 == 1)
            ck_assert_int_eq(dsm_hash_release(t, e), 0);
        else
            ck_assert_int_eq(dsm_hash_delete_entry(t, e), 0);
    }
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    ck_assert_int_eq(dsm_hash_stats_get(t, &st), 0);
    ck_assert_uint_eq(st.entries, n / 4);
    for (uint64_t k = 0; k < n; k++) {
        void *x;
        int rc = dsm_hash_find(t, &k, DSM_HASH_EXCLUSIVE, &x);

        ck_assert_int_eq(rc, k % 4 == 1);
        if (rc == 1)
            ck_assert_int_eq(dsm_hash_delete_entry(t, x), 0);
    }
    /* Empty again: every partition gave its array back. */
    ck_assert_int_eq(dsm_hash_stats_get(t, &st), 0);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.slots, 0);
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    ck_assert_int_eq(dsm_hash_detach(t2), 0);
    ck_assert_int_eq(dsm_hash_destroy(t), 0);
    ck_assert_uint_eq(area_in_use(a), 0);
    ck_assert_int_eq(dsm_area_detach(a), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* Growth and shrink: memory follows the number of entries both ways. */
START_TEST(test_hash_grow_shrink)
{
    dsm_hash_params p = kv_params;
    dsm_hash_stats st;
    size_t peak;
    dsm_hash *t;
    dsm_area *a;
    struct sv v;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    p.partitions = 4;
    ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
    ck_assert_int_eq(dsm_hash_create(a, &p, &t), 0);
    for (int round = 0; round < 3; round++) {
        for (uint64_t k = 0; k < 100000; k++)
            ck_assert_int_eq(put(t, k), 0);
        ck_assert_int_eq(dsm_hash_stats_get(t, &st), 0);
        peak = st.bytes;
        ck_assert_uint_eq(st.entries, 100000);
        for (uint64_t k = 0; k < 99990; k++)
            ck_assert_int_eq(dsm_hash_delete_key(t, &k), 1);
        ck_assert_int_eq(dsm_hash_validate(t), 0);
        ck_assert_int_eq(dsm_hash_stats_get(t, &st), 0);
        ck_assert_uint_eq(st.entries, 10);
        ck_assert_uint_lt(st.bytes * 100, peak);
        for (uint64_t k = 99990; k < 100000; k++)
            ck_assert_int_eq(dsm_hash_delete_key(t, &k), 1);
    }
    ck_assert_int_eq(dsm_hash_destroy(t), 0);
    ck_assert_uint_eq(area_in_use(a), 0);
    ck_assert_int_ge(dsm_area_trim(a), 0);
    ck_assert_int_eq(dsm_area_detach(a), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

struct named {
    char name[24];
    uint32_t id;
};

START_TEST(test_hash_strings)
{
    dsm_hash_params p = {.key_size = 24, .entry_size = sizeof(struct named),
                         .key_kind = DSM_HASH_KEY_STRING};
    struct named *e, c;
    char name[64];
    dsm_hash *t, *t2;
    dsm_area *a;
    struct sv v;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
    ck_assert_int_eq(dsm_hash_create(a, &p, &t), 0);
    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "worker/%u", i);
        ck_assert_int_eq(dsm_hash_find_or_insert(t, name, (void **)&e), 0);
        ck_assert_str_eq(e->name, name);
        e->id = i;
        ck_assert_int_eq(dsm_hash_release(t, e), 0);
    }
    /* 23 characters fit, 24 do not. */
    memset(name, 'x', 23);
    name[23] = 0;
    ck_assert_int_eq(dsm_hash_find_or_insert(t, name, (void **)&e), 0);
    ck_assert_int_eq(dsm_hash_release(t, e), 0);
    strcat(name, "y");
    ck_assert_int_eq(dsm_hash_find_or_insert(t, name, (void **)&e), -ENAMETOOLONG);
    ck_assert_int_eq(dsm_hash_lookup(t, name, &c), -ENAMETOOLONG);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "longer than 23"));
    /* Wrong parameters at attach. */
    p.key_size = 32;
    ck_assert_int_eq(dsm_hash_attach(a, dsm_hash_get_handle(t), &p, &t2), -EINVAL);
    p.key_size = 24;
    p.funcs_id = 3;
    ck_assert_int_eq(dsm_hash_attach(a, dsm_hash_get_handle(t), &p, &t2), -EINVAL);
    p.funcs_id = 0;
    ck_assert_int_eq(dsm_hash_attach(a, dsm_hash_get_handle(t) + 16, &p, &t2), DSM_ECORRUPT);
    ck_assert_int_eq(dsm_hash_attach(a, dsm_hash_get_handle(t), &p, &t2), 0);
    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "worker/%u", i);
        ck_assert_int_eq(dsm_hash_lookup(t2, name, &c), 1);
        ck_assert_uint_eq(c.id, i);
        if (i % 3 == 0)
            ck_assert_int_eq(dsm_hash_delete_key(t2, name), 1);
    }
    ck_assert_int_eq(dsm_hash_lookup(t2, "worker/3", &c), 0);
    ck_assert_int_eq(dsm_hash_lookup(t2, "worker/4", &c), 1);
    ck_assert_int_eq(dsm_hash_validate(t2), 0);
    ck_assert_int_eq(dsm_hash_detach(t2), 0);
    ck_assert_int_eq(dsm_hash_destroy(t), 0);
    ck_assert_uint_eq(area_in_use(a), 0);
    ck_assert_int_eq(dsm_area_detach(a), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

static uint64_t odd_hash(const void *key, size_t size, void *arg)
{
    (void)arg;
    return dsm_hash_bytes(key, size, NULL) & UINT64_C(0xff000000000000ff); /* many collisions */
}

static int odd_compare(const void *x, const void *y, size_t size, void *arg)
{
    (void)arg;
    return memcmp(x, y, size);
}

START_TEST(test_hash_params)
{
    dsm_hash_params p = {.key_size = 12, .entry_size = 40, .funcs_id = 77, .hash = odd_hash,
                         .compare = odd_compare, .partitions = 8};
    dsm_hash *t;
    dsm_area *a;
    struct sv v;
    char key[12] = {0}, copy[40];

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
    p.partitions = 3;
    ck_assert_int_eq(dsm_hash_create(a, &p, &t), -EINVAL);
    p.partitions = 8;
    p.entry_size = 4;
    ck_assert_int_eq(dsm_hash_create(a, &p, &t), -EINVAL);
    p.entry_size = 40;
    p.compare = NULL;
    ck_assert_int_eq(dsm_hash_create(a, &p, &t), -EINVAL);
    p.compare = odd_compare;
    ck_assert_int_eq(dsm_hash_create(a, &p, &t), 0);
    for (uint32_t i = 0; i < 3000; i++) {
        void *e;

        memcpy(key + 4, &i, 4);
        ck_assert_int_eq(dsm_hash_find_or_insert(t, key, &e), 0);
        ck_assert_int_eq(dsm_hash_release(t, e), 0);
    }
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    for (uint32_t i = 0; i < 3000; i++) {
        memcpy(key + 4, &i, 4);
        ck_assert_int_eq(dsm_hash_lookup(t, key, copy), 1);
        ck_assert_int_eq(memcmp(copy, key, 12), 0);
    }
    for (uint32_t i = 0; i < 3000; i += 2) {
        memcpy(key + 4, &i, 4);
        ck_assert_int_eq(dsm_hash_delete_key(t, key), 1);
    }
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    ck_assert_int_eq(dsm_hash_destroy(t), 0);
    ck_assert_uint_eq(area_in_use(a), 0);
    ck_assert_int_eq(dsm_area_detach(a), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* ---- several processes ----------------------------------------------------------- */

static volatile uint32_t *stop_flag;

static int attach_both(dsm_area **a, dsm_hash **t)
{
    if (dsm_area_attach(area_handle, a) != 0)
        return 10;
    if (dsm_hash_attach(*a, table_handle, &kv_params, t) != 0)
        return 11;
    return 0;
}

/* Inserts its own range, reading everyone's stable keys meanwhile. */
static int child_writes(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg * 100000, r = base + 1;
    dsm_area *a;
    dsm_hash *t;
    struct kv c;
    int rc = attach_both(&a, &t);

    if (rc)
        return rc;
    for (uint64_t k = base; k < base + 30000; k++) {
        uint64_t probe = (r = dsm__mix64(r)) % 1000; /* the parent's stable keys */

        if (put(t, k) != 0)
            return 12;
        if (dsm_hash_lookup(t, &probe, &c) != 1 || c.value != value_of(probe))
            return 13;
    }
    for (uint64_t k = base; k < base + 30000; k += 3)
        if (dsm_hash_delete_key(t, &k) != 1)
            return 14;
    dsm_hash_detach(t);
    dsm_area_detach(a);
    return 0;
}

START_TEST(test_hash_processes)
{
    dsm_hash_stats st;
    dsm_hash *t;
    dsm_area *a;
    struct sv v;
    pid_t pid[3];

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
    ck_assert_int_eq(dsm_hash_create(a, &kv_params, &t), 0);
    area_handle = dsm_area_handle(a);
    table_handle = dsm_hash_get_handle(t);
    for (uint64_t k = 0; k < 1000; k++)
        ck_assert_int_eq(put(t, k), 0);
    for (int i = 0; i < 3; i++)
        pid[i] = sv_fork_worker(child_writes, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sv_wait(pid[i]), 0);
        ck_assert_int_eq(dsm_supervisor_worker_exited(pid[i], 0), DSM_CRASH_NONE);
    }
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    ck_assert_int_eq(dsm_hash_stats_get(t, &st), 0);
    ck_assert_uint_eq(st.entries, 1000 + 3 * 20000);
    ck_assert_int_eq(dsm_hash_destroy(t), 0);
    ck_assert_uint_eq(area_in_use(a), 0);
    ck_assert_int_eq(dsm_area_detach(a), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* Four threads of one process sharing one view: disjoint writes, shared reads. */
struct thread_arg {
    dsm_hash *t;
    uint64_t base;
    int failed;
};

static void *thread_churns(void *arg)
{
    struct thread_arg *ta = arg;
    struct kv c;

    for (uint64_t k = ta->base; k < ta->base + 20000; k++) {
        uint64_t probe = k % 500;

        if (put(ta->t, k) != 0 || dsm_hash_lookup(ta->t, &probe, &c) != 1 ||
            c.value != value_of(probe))
            ta->failed = 1;
    }
    for (uint64_t k = ta->base; k < ta->base + 20000; k += 2)
        if (dsm_hash_delete_key(ta->t, &k) != 1)
            ta->failed = 1;
    return NULL;
}

START_TEST(test_hash_threads)
{
    struct thread_arg ta[4];
    pthread_t th[4];
    dsm_hash_stats st;
    dsm_hash *t;
    dsm_area *a;
    struct sv v;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
    ck_assert_int_eq(dsm_hash_create(a, &kv_params, &t), 0);
    for (uint64_t k = 0; k < 500; k++)
        ck_assert_int_eq(put(t, k), 0);
    for (int i = 0; i < 4; i++) {
        ta[i] = (struct thread_arg){t, 1000000 * (uint64_t)(i + 1), 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_churns, &ta[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(ta[i].failed, 0);
    }
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    ck_assert_int_eq(dsm_hash_stats_get(t, &st), 0);
    ck_assert_uint_eq(st.entries, 500 + 4 * 10000);
    ck_assert_int_eq(dsm_hash_destroy(t), 0);
    ck_assert_uint_eq(area_in_use(a), 0);
    ck_assert_int_eq(dsm_area_detach(a), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* ---- scans ----------------------------------------------------------------------- */

/* Churns keys 100000.. while the parent scans; stops when told. */
static int child_churns_keys(void *arg)
{
    uint64_t r = (uint64_t)(uintptr_t)arg;
    dsm_area *a;
    dsm_hash *t;
    int rc = attach_both(&a, &t);

    if (rc)
        return rc;
    while (!__atomic_load_n(stop_flag, __ATOMIC_ACQUIRE)) {
        uint64_t k = 100000 + (r = dsm__mix64(r)) % 20000;

        if ((r >> 40) & 1) {
            if (put(t, k) < 0)
                return 12;
        } else if (dsm_hash_delete_key(t, &k) < 0)
            return 13;
    }
    dsm_hash_detach(t);
    dsm_area_detach(a);
    return 0;
}

START_TEST(test_hash_scan)
{
    static unsigned char seen[20000];
    dsm_hash_scan sc;
    dsm_hash *t;
    dsm_area *a;
    struct kv *e;
    struct sv v;
    pid_t pid[2];
    int rc;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    stop_flag = shared_page(4096);
    ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
    ck_assert_int_eq(dsm_hash_create(a, &kv_params, &t), 0);
    area_handle = dsm_area_handle(a);
    table_handle = dsm_hash_get_handle(t);
    for (uint64_t k = 0; k < 20000; k++)
        ck_assert_int_eq(put(t, k), 0);
    for (int i = 0; i < 2; i++)
        pid[i] = sv_fork_worker(child_churns_keys, (void *)(uintptr_t)(i + 5));
    for (int pass = 0; pass < 6; pass++) {
        memset(seen, 0, sizeof(seen));
        ck_assert_int_eq(dsm_hash_scan_begin(t, pass & 1 ? DSM_HASH_EXCLUSIVE : DSM_HASH_SHARED,
                                             &sc),
                         0);
        while ((rc = dsm_hash_scan_next(&sc, (void **)&e)) == 1) {
            ck_assert_uint_eq(e->value, value_of(e->key));
            if (e->key < 20000) {
                ck_assert_int_eq(seen[e->key], 0); /* once */
                seen[e->key] = 1;
                /* Pass 4 deletes the stable keys congruent to 1 mod 3 as it goes. */
                if (pass == 4 && e->key % 3 == 1)
                    ck_assert_int_eq(dsm_hash_scan_delete_current(&sc), 0);
            }
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(dsm_hash_scan_end(&sc), 0);
        for (uint64_t k = 0; k < 20000; k++)
            ck_assert_msg(seen[k] == (pass < 5 || k % 3 != 1), "pass %d key %llu", pass,
                          (unsigned long long)k);
    }
    /* An abandoned scan releases its lock at end. */
    ck_assert_int_eq(dsm_hash_scan_begin(t, 0, &sc), 0);
    ck_assert_int_eq(dsm_hash_scan_next(&sc, (void **)&e), 1);
    ck_assert_int_eq(dsm_hash_scan_end(&sc), 0);
    __atomic_store_n(stop_flag, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(sv_wait(pid[i]), 0);
        dsm_supervisor_worker_exited(pid[i], 0);
    }
    ck_assert_int_eq(dsm_hash_validate(t), 0);
    ck_assert_int_eq(dsm_hash_destroy(t), 0);
    ck_assert_uint_eq(area_in_use(a), 0);
    ck_assert_int_eq(dsm_area_detach(a), 0);
    munmap((void *)stop_flag, 4096);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* ---- kill points ----------------------------------------------------------------- */

static long step_target, step_seen;

static void step(void)
{
    if (step_target > 0 && ++step_seen == step_target)
        raise(SIGKILL);
}

static int child_steps(void *arg)
{
    dsm_hash_scan sc;
    dsm_area *a;
    dsm_hash *t;
    void *e;
    int rc = attach_both(&a, &t);

    if (rc)
        return rc;
    step_target = *(long *)arg;
    step_seen = 0;
    dsm__hash_step_hook = step;
    for (uint64_t k = 0; k < 120; k++)
        if (put(t, k) != 0)
            return 12;
    for (uint64_t k = 0; k < 60; k++)
        if (dsm_hash_delete_key(t, &k) != 1)
            return 13;
    if (dsm_hash_scan_begin(t, DSM_HASH_EXCLUSIVE, &sc) != 0)
        return 14;
    while (dsm_hash_scan_next(&sc, &e) == 1)
        if (dsm_hash_scan_delete_current(&sc) != 0)
            return 15;
    if (dsm_hash_scan_end(&sc) != 0)
        return 16;
    dsm__hash_step_hook = NULL;
    dsm_hash_detach(t);
    dsm_area_detach(a);
    return 0;
}

START_TEST(test_hash_kill_points)
{
    dsm_hash_params p = kv_params;
    int resets = 0, killed = 0;
    struct kv c;
    dsm_hash *t;
    dsm_area *a;
    struct sv v;
    long n;

    if (!sv_start(&v, DSM_IMPL_POSIX, reclaim_opts))
        return;
    p.partitions = 2; /* few partitions: resizes and long shifts */
    for (n = 1; n < 5000; n += 1 + n / 40) {
        pid_t pid;
        int s, rc;

        ck_assert_int_eq(dsm_area_create(NULL, &a), 0);
        ck_assert_int_eq(dsm_hash_create(a, &p, &t), 0);
        area_handle = dsm_area_handle(a);
        table_handle = dsm_hash_get_handle(t);
        pid = sv_fork_worker(child_steps, &n);
        ck_assert_int_eq(waitpid(pid, &s, 0), pid);
        rc = dsm_supervisor_worker_exited(pid, s);
        if (WIFEXITED(s)) {
            ck_assert_int_eq(WEXITSTATUS(s), 0);
            ck_assert_int_eq(rc, DSM_CRASH_NONE);
            ck_assert_int_eq(dsm_hash_validate(t), 0);
            ck_assert_int_eq(dsm_hash_lookup(t, &(uint64_t){70}, &c), 0);
            ck_assert_int_eq(dsm_hash_destroy(t), 0);
            ck_assert_uint_eq(area_in_use(a), 0);
            ck_assert_int_eq(dsm_area_detach(a), 0);
            ck_assert_int_eq(sv_objects(&v), 1);
            break;
        }
        killed++;
        /* Every step is inside a partition lock: a reset, the table inconsistent. */
        ck_assert_int_eq(rc, DSM_CRASH_RESET);
        /* The first locker of its partition finds out (validate locks them all);
         * from then on every call does. */
        ck_assert_int_eq(dsm_hash_validate(t), -ENOTRECOVERABLE);
        ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "inconsistent"));
        ck_assert_int_eq(dsm_hash_lookup(t, &(uint64_t){70}, &c), -ENOTRECOVERABLE);
        ck_assert_int_eq(put(t, 1000), -ENOTRECOVERABLE);
        ck_assert_int_eq(dsm_hash_detach(t), 0);
        ck_assert_int_eq(dsm_area_detach(a), 0);
        ck_assert_int_eq(dsm_supervisor_reset(), 0);
        resets++;
        ck_assert_int_eq(sv_objects(&v), 1);
    }
    printf("hash kill points: %d steps killed, %d resets, nothing left\n", killed, resets);
    ck_assert_int_gt(killed, 50);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* ---- the kill loop --------------------------------------------------------------- */

/*
 * Three kinds of worker on keys 0..8191 whose values are a function of the
 * key: inserters, deleters and scanners (which check every value and delete
 * some keys through the scan); all of them also look keys up.  The parent
 * kills one at random every few milliseconds and, after each death that
 * did not need a reset, runs the validator.
 */
static int loop_failed(int code)
{
    if (strstr(dsm_errmsg(), "inconsistent"))
        for (;;)
            pause(); /* a peer died in a partition lock: the parent resets and kills us */
    fprintf(stderr, "hash kill loop worker %d: failure %d: %s\n", (int)getpid(), code,
            dsm_errmsg());
    return code;
}

static int child_loop(void *arg)
{
    unsigned kind = (unsigned)(uintptr_t)arg % 3;
    uint64_t r = (uint64_t)getpid() * 7919 + (uint64_t)(uintptr_t)arg;
    dsm_area *a;
    dsm_hash *t;
    struct kv c, *e;
    int rc = attach_both(&a, &t);

    if (rc)
        return rc;
    for (;;) {
        uint64_t k = 0;

        /* Mostly lock-free reads, so that many kills land outside the locks
         * and the parent gets to validate a live table. */
        for (int n = 0; n < 8; n++) {
            k = (r = dsm__mix64(r)) % 8192;
            rc = dsm_hash_lookup(t, &k, &c);
            if (rc < 0)
                return loop_failed(11);
            if (rc == 1 && (c.key != k || c.value != value_of(k)))
                return loop_failed(12);
        }
        if (kind == 0) {
            if (put(t, k) < 0)
                return loop_failed(13);
        } else if (kind == 1) {
            if (dsm_hash_delete_key(t, &k) < 0)
                return loop_failed(14);
        } else if (k % 64 == 0) {
            dsm_hash_scan sc;

            if (dsm_hash_scan_begin(t, DSM_HASH_SHARED, &sc) < 0)
                return loop_failed(15);
            while ((rc = dsm_hash_scan_next(&sc, (void **)&e)) == 1) {
                if (e->value != value_of(e->key))
                    return loop_failed(16);
                if (e->key % 97 == k % 97 && dsm_hash_scan_delete_current(&sc) < 0)
                    return loop_failed(17);
            }
            if (rc < 0 || dsm_hash_scan_end(&sc) < 0)
                return loop_failed(18);
        } else if (put(t, k) < 0)
            return loop_failed(19);
    }
}

static void start_loop(dsm_area **a, dsm_hash **t, pid_t *w, int nw)
{
    ck_assert_int_eq(dsm_area_create(NULL, a), 0);
    ck_assert_int_eq(dsm_hash_create(*a, &kv_params, t), 0);
    area_handle = dsm_area_handle(*a);
    table_handle = dsm_hash_get_handle(*t);
    for (int i = 0; i < nw; i++)
        w[i] = sv_fork_worker(child_loop, (void *)(uintptr_t)i);
}

START_TEST(test_hash_kill_loop)
{
    int kills = 0, resets = 0, inconsistent = 0, validated = 0, cycles = 120 * soak_factor();
    uint64_t r = 1;
    dsm_hash *t;
    dsm_area *a;
    struct sv v;
    pid_t w[3];

    if (!sv_start(&v, DSM_IMPL_POSIX, reclaim_opts))
        return;
    start_loop(&a, &t, w, 3);
    for (int c = 0; c < cycles; c++) {
        int k = (int)((r = dsm__mix64(r)) % 3), s, rc;

        usleep((useconds_t)(3000 + (r >> 20) % 15000));
        kill(w[k], SIGKILL);
        ck_assert_int_eq(waitpid(w[k], &s, 0), w[k]);
        ck_assert_msg(WIFSIGNALED(s), "worker exited with status %d", WEXITSTATUS(s));
        kills++;
        rc = dsm_supervisor_worker_exited(w[k], s);
        if (rc == DSM_CRASH_RESET) {
            struct kv cp;

            for (int i = 0; i < 3; i++)
                if (i != k) {
                    kill(w[i], SIGKILL);
                    waitpid(w[i], NULL, 0);
                }
            /* Inconsistent if it died holding a lock; consistent if it died just
             * around one (waiting for it, or the area's), a conservative reset. */
            rc = dsm_hash_lookup(t, &(uint64_t){1}, &cp);
            ck_assert(rc == -ENOTRECOVERABLE || rc == 0 || rc == 1);
            if (rc >= 0)
                rc = dsm_hash_validate(t);
            ck_assert(rc == -ENOTRECOVERABLE || rc == 0);
            inconsistent += rc == -ENOTRECOVERABLE;
            dsm_hash_detach(t);
            dsm_area_detach(a);
            ck_assert_int_eq(dsm_supervisor_reset(), 0);
            ck_assert_int_eq(sv_objects(&v), 1);
            resets++;
            start_loop(&a, &t, w, 3);
            continue;
        }
        ck_assert(rc == DSM_CRASH_RECLAIMED || rc == DSM_CRASH_NONE);
        /* Every entry reachable once, its key's partition, counts exact. */
        ck_assert_int_eq(dsm_hash_validate(t), 0);
        validated++;
        w[k] = sv_fork_worker(child_loop, (void *)(uintptr_t)(k + 3 * (c + 1)));
    }
    /* Stop the workers (each kill now may land in a lock: then the table is lost
     * and the leak check is the reset's), else check the area gets everything back. */
    for (int i = 0; i < 3; i++) {
        int s;

        kill(w[i], SIGKILL);
        waitpid(w[i], &s, 0);
        if (dsm_supervisor_worker_exited(w[i], s) == DSM_CRASH_RESET)
            resets++;
    }
    if (dsm_hash_validate(t) == 0) {
        ck_assert_int_eq(dsm_hash_destroy(t), 0);
        ck_assert_uint_eq(area_in_use(a), 0);
    } else
        dsm_hash_detach(t);
    dsm_area_detach(a);
    printf("hash kill loop: %d kills, %d resets (%d left the table inconsistent), %d "
           "validations passed\n", kills, resets, inconsistent, validated);
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* ---- scribbles ------------------------------------------------------------------- */

/*
 * Random bytes over the table's header, partitions (not their lock words:
 * a scribbled holder field could name a live process and make a locker
 * wait for it) and arrays: every call returns, with an error or not, and
 * a scribbled header is refused at attach.  Runs in a child so a crash is
 * seen as a signal.
 */
static int child_scribbles(void *arg)
{
    uint64_t r = (uint64_t)(uintptr_t)arg;
    dsm_area_options o = {.max_total_size = 64 << 20};

    for (int round = 0; round < 200; round++) {
        dsm_hash_params p = kv_params;
        dsm_hash_scan sc;
        dsm_hash *t, *t2;
        dsm_area *a;
        struct kv c, *e;
        unsigned char *hb;

        p.partitions = 4;
        if (dsm_area_create(&o, &a) != 0)
            return 10;
        if (dsm_hash_create(a, &p, &t) != 0)
            return 11;
        for (uint64_t k = 0; k < 300; k++)
            if (put(t, k) != 0)
                return 12;
        hb = (unsigned char *)t->hdr;
        if (round % 2 == 0) {
            /* The header: attach must refuse it. */
            size_t at = (size_t)((r = dsm__mix64(r)) % offsetof(struct hash_hdr, self));
            unsigned char old;

            if (at >= offsetof(struct hash_hdr, inconsistent) &&
                at < offsetof(struct hash_hdr, inconsistent) + 4)
                at = offsetof(struct hash_hdr, check) + at % 8; /* not checksummed: a flag */
            old = hb[at];

            hb[at] = (unsigned char)(r >> 32);
            if (hb[at] != old && dsm_hash_attach(a, t->handle, &p, &t2) != DSM_ECORRUPT)
                return 13;
        }
        for (int k = 0; k < 1 + round % 6; k++) {
            size_t at;

            r = dsm__mix64(r);
            if (r % 2) {
                /* Through this process's view: the header's own offsets may be scribbled. */
                at = (size_t)(r >> 8) % (4 * sizeof(struct part));
                if (at % sizeof(struct part) < sizeof(dsm_lock))
                    continue;
                ((unsigned char *)t->parts)[at] = (unsigned char)(r >> 40);
            } else {
                struct arr ar;
                struct part *pp = &t->parts[(r >> 8) % 4];

                if (dsm__hash_array(t, pp, &ar) == 0 && ar.base)
                    ar.base[(r >> 16) % ((ar.mask + 1) * t->slot_size)] = (unsigned char)(r >> 40);
            }
        }
        for (uint64_t k = 0; k < 400; k++) {
            dsm_hash_lookup(t, &k, &c);
            if (k % 3 == 0)
                put(t, k + 1000);
            else if (k % 3 == 1)
                dsm_hash_delete_key(t, &k);
            else if (dsm_hash_find(t, &k, DSM_HASH_EXCLUSIVE, (void **)&e) == 1)
                dsm_hash_delete_entry(t, e);
        }
        if (dsm_hash_scan_begin(t, 0, &sc) == 0) {
            for (int n = 0; n < 2000 && dsm_hash_scan_next(&sc, (void **)&e) == 1; n++)
                ;
            dsm_hash_scan_end(&sc);
        }
        dsm_hash_validate(t);
        dsm_hash_detach(t);
        dsm_area_detach(a);
    }
    return 0;
}

START_TEST(test_hash_scribbles)
{
    struct sv v;
    pid_t pid;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    pid = sv_fork_worker(child_scribbles, (void *)(uintptr_t)4242);
    ck_assert_int_eq(sv_wait(pid), 0);
    dsm_supervisor_worker_exited(pid, 0);
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

Suite *suite_hash(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("operations");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_hash_operations);
    tcase_add_test(tc, test_hash_grow_shrink);
    tcase_add_test(tc, test_hash_strings);
    tcase_add_test(tc, test_hash_params);
    tcase_add_test(tc, test_hash_processes);
    tcase_add_test(tc, test_hash_threads);
    tcase_add_test(tc, test_hash_scan);
    suite_add_tcase(s, tc);

    tc = tcase_create("crash");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hash_kill_points);
    tcase_add_test(tc, test_hash_kill_loop);
    suite_add_tcase(s, tc);

    tc = tcase_create("scribble");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hash_scribbles);
    suite_add_tcase(s, tc);
    return s;
}
