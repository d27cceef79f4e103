/* SPDX-License-Identifier: MIT */
/*
 * check_registry.c - named segments, areas and hash tables, with real
 * processes: create-or-attach, exactly-once initialisation under a race of
 * workers, a failing initialiser, an initialiser SIGKILLed at each step of
 * its work (the next caller initialises afresh and nothing is left), a
 * waiter that takes over from a dead initialiser, delete by name, the
 * listing, a crash reset, and every bad argument.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/registry.h>

#include "dsmtest.h"

extern void (*dsm__registry_step_hook)(void);

static const char *const reclaim_opts[] = {"dsm_crash_policy=reclaim", NULL};

/* Shared with forked workers: how often initialisers ran, and a gate. */
struct board {
    int inits;
    int gate_open;
    int kill_at; /* step number to die at, 0: never */
    int steps;
};
static struct board *board;

static void board_new(void)
{
    board = mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(board, MAP_FAILED);
    memset(board, 0, sizeof(*board));
}

static int init_hello(void *addr, size_t size, void *arg)
{
    (void)arg;
    ck_assert_uint_ge(size, 16);
    ck_assert_int_eq(((char *)addr)[0], 0); /* fresh memory is zero */
    __atomic_fetch_add(&board->inits, 1, __ATOMIC_SEQ_CST);
    strcpy(addr, "hello");
    return 0;
}

static int init_slow(void *addr, size_t size, void *arg)
{
    (void)arg;
    (void)size;
    __atomic_fetch_add(&board->inits, 1, __ATOMIC_SEQ_CST);
    usleep(100 * 1000); /* long enough for every other worker to be waiting */
    strcpy(addr, "slow");
    return 0;
}

static int init_fails(void *addr, size_t size, void *arg)
{
    (void)addr;
    (void)size;
    (void)arg;
    __atomic_fetch_add(&board->inits, 1, __ATOMIC_SEQ_CST);
    return -EIO;
}

/* An initialiser that waits for the test to let it go (or to kill it). */
static int init_gated(void *addr, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    __atomic_fetch_add(&board->inits, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&board->gate_open, __ATOMIC_SEQ_CST))
        usleep(1000);
    strcpy(addr, "gated");
    return 0;
}

static size_t names(void)
{
    dsm_named_info *l;
    size_t n;

    ck_assert_int_eq(dsm_named_list(&l, &n), 0);
    free(l);
    return n;
}

START_TEST(test_segment_create_then_attach)
{
    struct sv v;
    dsm_segment *a, *b;
    bool found = true;

    if (!sv_start(&v, _i, NULL))
        return;
    board_new();
    ck_assert_uint_eq(names(), 0);
    ck_assert_int_eq(dsm_named_segment_get("greeting", 4096, init_hello, NULL, &a, &found), 0);
    ck_assert(!found);
    ck_assert_str_eq(dsm_segment_address(a), "hello");
    ck_assert_int_eq(dsm_named_segment_get("greeting", 4096, init_hello, NULL, &b, &found), 0);
    ck_assert(found);
    ck_assert_ptr_eq(a, b); /* the same mapping, from the process's cache */
    ck_assert_int_eq(board->inits, 1);
    ck_assert_uint_eq(names(), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static int worker_reads_greeting(void *arg)
{
    dsm_segment *seg;
    bool found = false;

    (void)arg;
    if (dsm_named_segment_get("greeting", 4096, init_hello, NULL, &seg, &found) != 0)
        return 10;
    if (!found)
        return 11;
    if (strcmp(dsm_segment_address(seg), "hello") != 0)
        return 12;
    return 0;
}

START_TEST(test_workers_attach_by_name)
{
    struct sv v;
    dsm_segment *a;

    if (!sv_start(&v, _i, NULL))
        return;
    board_new();
    ck_assert_int_eq(dsm_named_segment_get("greeting", 4096, init_hello, NULL, &a, NULL), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sv_wait(sv_fork_worker(worker_reads_greeting, NULL)), 0);
    ck_assert_int_eq(board->inits, 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static int worker_races(void *arg)
{
    dsm_segment *seg;
    bool found;

    (void)arg;
    while (!__atomic_load_n(&board->gate_open, __ATOMIC_SEQ_CST))
        usleep(100);
    if (dsm_named_segment_get("raced", 8192, init_slow, NULL, &seg, &found) != 0)
        return 10;
    if (strcmp(dsm_segment_address(seg), "slow") != 0)
        return 11;
    return found ? 1 : 0; /* exactly one worker may say 0 */
}

START_TEST(test_exactly_once_under_a_race)
{
    enum { N = 6 };
    struct sv v;
    pid_t pid[N];
    int created = 0;

    if (!sv_start(&v, _i, NULL))
        return;
    board_new();
    for (int i = 0; i < N; i++)
        pid[i] = sv_fork_worker(worker_races, NULL);
    __atomic_store_n(&board->gate_open, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < N; i++) {
        int rc = sv_wait(pid[i]);

        ck_assert_msg(rc == 0 || rc == 1, "worker %d: %d", i, rc);
        created += rc == 0;
    }
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(board->inits, 1);
    ck_assert_uint_eq(names(), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static int init_table_fails(dsm_hash *t, void *arg)
{
    (void)t;
    (void)arg;
    return -EIO;
}

static const dsm_hash_params word_params;

START_TEST(test_failing_initialiser_leaves_nothing)
{
    struct sv v;
    dsm_segment *seg = (void *)1;
    bool found = true;
    int base;

    if (!sv_start(&v, _i, NULL))
        return;
    board_new();
    ck_assert_int_eq(dsm_named_segment_get("first", 4096, NULL, NULL, &seg, NULL), 0);
    base = sv_objects(&v);
    ck_assert_int_eq(dsm_named_segment_get("broken", 4096, init_fails, NULL, &seg, &found), -EIO);
    ck_assert_ptr_null(seg);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "initialiser of shared memory name \"broken\""));
    ck_assert_uint_eq(names(), 1);
    ck_assert_int_eq(sv_objects(&v), base);
    /* A table whose initialiser fails: its area goes too (it was pinned first). */
    {
        dsm_hash *t = (void *)1;

        ck_assert_int_eq(dsm_named_hash_get("broken-table", &word_params, init_table_fails, NULL,
                                            &t, NULL), -EIO);
        ck_assert_ptr_null(t);
        ck_assert_int_eq(sv_objects(&v), base);
        ck_assert_uint_eq(names(), 1);
    }
    /* The next caller initialises it. */
    ck_assert_int_eq(dsm_named_segment_get("broken", 4096, init_hello, NULL, &seg, &found), 0);
    ck_assert(!found);
    ck_assert_str_eq(dsm_segment_address(seg), "hello");
    ck_assert_int_eq(board->inits, 2);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

START_TEST(test_bad_arguments)
{
    char longname[DSM_NAMED_MAX_LEN + 2];
    dsm_hash_params p8 = {.key_size = 8, .entry_size = 16}, p4 = {.key_size = 4, .entry_size = 16};
    struct sv v;
    dsm_segment *seg;
    dsm_area *area;
    dsm_hash *t;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(dsm_named_segment_get(NULL, 4096, NULL, NULL, &seg, NULL), -EINVAL);
    ck_assert_int_eq(dsm_named_segment_get("", 4096, NULL, NULL, &seg, NULL), -EINVAL);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "must not be empty"));
    ck_assert_int_eq(dsm_named_segment_get(longname, 4096, NULL, NULL, &seg, NULL),
                     -ENAMETOOLONG);
    ck_assert_int_eq(dsm_named_segment_get("x", 0, NULL, NULL, &seg, NULL), -EINVAL);
    ck_assert_int_eq(dsm_named_segment_get("x", 4096, NULL, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(dsm_named_hash_get("x", NULL, NULL, NULL, &t, NULL), -EINVAL);
    ck_assert_int_eq(dsm_named_delete("nothing"), -ENOENT);
    ck_assert_uint_eq(names(), 0);

    /* Mismatches with an existing entry, whether cached here or not. */
    ck_assert_int_eq(dsm_named_segment_get("seg", 4096, NULL, NULL, &seg, NULL), 0);
    ck_assert_int_eq(dsm_named_segment_get("seg", 8192, NULL, NULL, &seg, NULL), -EEXIST);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "has 4096 bytes, not 8192"));
    ck_assert_int_eq(dsm_named_area_get("seg", NULL, NULL, NULL, &area, NULL), -EEXIST);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "is of type segment, not area"));
    ck_assert_int_eq(dsm_named_hash_get("tab", &p8, NULL, NULL, &t, NULL), 0);
    ck_assert_int_eq(dsm_named_hash_get("tab", &p4, NULL, NULL, &t, NULL), -EEXIST);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "key size 8"));
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    /* Without an instance. */
    ck_assert_int_eq(dsm_named_segment_get("seg", 4096, NULL, NULL, &seg, NULL), DSM_ESTATE);
}
END_TEST

START_TEST(test_delete_by_name)
{
    struct sv v;
    dsm_segment *old, *fresh;
    bool found = true;
    int base;

    if (!sv_start(&v, _i, NULL))
        return;
    board_new();
    ck_assert_int_eq(dsm_named_segment_get("anchor", 4096, NULL, NULL, &old, NULL), 0);
    base = sv_objects(&v);
    ck_assert_int_eq(dsm_named_segment_get("victim", 4096, init_hello, NULL, &old, NULL), 0);
    ck_assert_int_eq(sv_objects(&v), base + 1);
    ck_assert_int_eq(dsm_named_delete("victim"), 0);
    ck_assert_uint_eq(names(), 1);
    ck_assert_int_eq(dsm_named_delete("victim"), -ENOENT);
    /* This process still maps the old one and may use it ... */
    ck_assert_str_eq(dsm_segment_address(old), "hello");
    /* ... while the name now makes a new one. */
    ck_assert_int_eq(dsm_named_segment_get("victim", 4096, init_hello, NULL, &fresh, &found), 0);
    ck_assert(!found);
    ck_assert_ptr_ne(old, fresh);
    ck_assert_int_eq(board->inits, 2);
    ck_assert_int_eq(sv_objects(&v), base + 2);
    /* The old one goes with its last mapping. */
    ck_assert_int_eq(dsm_detach(old), 0);
    ck_assert_int_eq(sv_objects(&v), base + 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

struct word {
    char word[16];
    uint64_t count;
};

static const dsm_hash_params word_params = { /* declared above */
    .key_size = 16, .entry_size = sizeof(struct word), .key_kind = DSM_HASH_KEY_STRING};

static int init_words(dsm_hash *t, void *arg)
{
    static const char *const w[] = {"alpha", "beta", "gamma"};

    (void)arg;
    __atomic_fetch_add(&board->inits, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 3; i++) {
        char key[16] = {0};
        struct word *e;

        strcpy(key, w[i]);
        if (dsm_hash_find_or_insert(t, key, (void **)&e) != 0)
            return -EEXIST;
        e->count = (uint64_t)i + 1;
        dsm_hash_release(t, e);
    }
    return 0;
}

static int init_area(dsm_area *a, void *arg)
{
    dsm_pointer p;

    (void)arg;
    return dsm_area_allocate(a, 1000, DSM_AREA_ALLOC_ZERO, &p);
}

static int worker_uses_table_and_area(void *arg)
{
    char key[16] = "beta";
    struct word copy;
    dsm_hash *t;
    dsm_area *a;
    bool found = false;

    (void)arg;
    if (dsm_named_hash_get("words", &word_params, init_words, NULL, &t, &found) != 0 || !found)
        return 10;
    if (dsm_hash_lookup(t, key, &copy) != 1 || copy.count != 2)
        return 11;
    if (dsm_named_area_get("heap", NULL, init_area, NULL, &a, &found) != 0 || !found)
        return 12;
    return dsm_area_total_size(a) > 0 ? 0 : 13;
}

START_TEST(test_named_hash_and_area)
{
    struct sv v;
    dsm_named_info *l;
    dsm_hash *t;
    dsm_area *a;
    bool found = true;
    size_t n;

    if (!sv_start(&v, _i, NULL))
        return;
    board_new();
    ck_assert_int_eq(dsm_named_hash_get("words", &word_params, init_words, NULL, &t, &found), 0);
    ck_assert(!found);
    ck_assert_int_eq(dsm_named_area_get("heap", NULL, init_area, NULL, &a, &found), 0);
    ck_assert(!found);
    ck_assert_int_eq(sv_wait(sv_fork_worker(worker_uses_table_and_area, NULL)), 0);
    ck_assert_int_eq(board->inits, 1);
    ck_assert_int_eq(dsm_named_list(&l, &n), 0);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        ck_assert(l[i].ready);
        ck_assert_int_eq(l[i].initialiser, getpid());
        ck_assert_uint_gt(l[i].size, 0);
        ck_assert_uint_eq(l[i].holders, 1); /* this process; the worker has left */
        ck_assert_int_eq(l[i].type, strcmp(l[i].name, "words") == 0 ? DSM_NAMED_HASH
                                                                     : DSM_NAMED_AREA);
    }
    free(l);
    ck_assert_str_eq(dsm_named_type_name(DSM_NAMED_HASH), "hash table");
    ck_assert_str_eq(dsm_named_type_name((dsm_named_type)99), "unknown");
    ck_assert_int_eq(dsm_named_delete("words"), 0);
    ck_assert_int_eq(dsm_named_delete("heap"), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- deaths ---------------------------------------------------------------------- */

static void die_at_step(void)
{
    if (++board->steps == board->kill_at)
        raise(SIGKILL);
}

static int worker_dies_initialising(void *arg)
{
    dsm_segment *seg;

    (void)arg;
    dsm__registry_step_hook = die_at_step;
    if (dsm_named_segment_get("fragile", 4096, init_hello, NULL, &seg, NULL) != 0)
        return 10;
    return 0;
}

static int worker_dies_initialising_table(void *arg)
{
    dsm_hash *t;

    (void)arg;
    dsm__registry_step_hook = die_at_step;
    if (dsm_named_hash_get("fragile-table", &word_params, init_words, NULL, &t, NULL) != 0)
        return 10;
    return 0;
}

/*
 * Kill the initialiser at each step of its work, chosen, not hoped for:
 * after the insert, after the object is made, after its handle is
 * recorded, after the initialiser, after the pin, after READY.  Then the
 * supervisor reclaims the dead worker, and a get must give initialised
 * memory (made again unless the death came after READY), and deleting it
 * must leave exactly what was there before.
 */
START_TEST(test_initialiser_killed_at_each_step)
{
    struct sv v;
    int base, step;

    if (!sv_start(&v, _i, reclaim_opts))
        return;
    board_new();
    {
        /*
         * One whole cycle first, with a worker too: the registry's area
         * grows to what a worker's attachment needs, once (not a leak).
         */
        dsm_segment *seg;

        ck_assert_int_eq(dsm_named_segment_get("registry-made", 4096, NULL, NULL, &seg, NULL), 0);
        board->kill_at = -1;
        ck_assert_int_eq(sv_wait(sv_fork_worker(worker_dies_initialising, NULL)), 0);
        ck_assert_int_eq(dsm_named_delete("fragile"), 0);
    }
    base = sv_objects(&v);
    for (step = 1;; step++) {
        dsm_segment *seg;
        bool found;
        pid_t pid;
        int st;

        board->steps = 0;
        board->kill_at = step;
        board->inits = 0;
        pid = sv_fork_worker(worker_dies_initialising, NULL);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st)) { /* it finished: no step left to die at */
            ck_assert_int_eq(WEXITSTATUS(st), 0);
            ck_assert_int_eq(step, 7);
            break;
        }
        ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RECLAIMED);
        ck_assert_int_eq(dsm_named_segment_get("fragile", 4096, init_hello, NULL, &seg, &found),
                         0);
        ck_assert_str_eq(dsm_segment_address(seg), "hello");
        /* Steps 1-3 come before the initialiser, 4-5 after it, 6 after READY. */
        ck_assert_int_eq(found, step >= 6);
        ck_assert_int_eq(board->inits, step <= 3 || step >= 6 ? 1 : 2);
        ck_assert_msg(sv_objects(&v) == base + 1, "step %d: %d objects, not %d", step, sv_objects(&v), base + 1);
        ck_assert_int_eq(dsm_named_delete("fragile"), 0);
        ck_assert_int_eq(dsm_detach(seg), 0);
        ck_assert_int_eq(sv_objects(&v), base);
        ck_assert_uint_eq(names(), 1);
    }
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* After a death: get the table, check it, delete it; exit 0 if this made it, 1 if found. */
static int worker_checks_table(void *arg)
{
    char key[16] = "beta";
    struct word copy;
    dsm_hash *t;
    bool found;

    (void)arg;
    if (dsm_named_hash_get("fragile-table", &word_params, init_words, NULL, &t, &found) != 0)
        return 10;
    if (dsm_hash_lookup(t, key, &copy) != 1 || copy.count != 2)
        return 11;
    if (dsm_named_delete("fragile-table") != 0)
        return 12;
    dsm_worker_exit(); /* its mappings go: the deleted table's area with them */
    return found ? 1 : 0;
}

/*
 * The same for a named hash table, whose object is an area: a dead
 * initialiser's area (recorded, initialised or pinned) must go, and the
 * next caller's table must be whole; a death while the area is made,
 * pinned and recorded is inside a critical section and resets.  The check
 * runs in a worker that leaves, so nothing of the table stays mapped.
 */
static int table_warm_up(struct sv *v)
{
    dsm_segment *seg;

    ck_assert_int_eq(dsm_named_segment_get("registry-made", 4096, NULL, NULL, &seg, NULL), 0);
    board->kill_at = -1;
    ck_assert_int_eq(sv_wait(sv_fork_worker(worker_dies_initialising_table, NULL)), 0);
    ck_assert_int_eq(sv_wait(sv_fork_worker(worker_checks_table, NULL)), 1);
    return sv_objects(v);
}

START_TEST(test_table_initialiser_killed_at_each_step)
{
    struct sv v;
    int base, step;

    if (!sv_start(&v, _i, reclaim_opts))
        return;
    board_new();
    base = table_warm_up(&v);
    for (step = 1;; step++) {
        pid_t pid;
        int st, rc;

        board->steps = 0;
        board->kill_at = step;
        board->inits = 0;
        pid = sv_fork_worker(worker_dies_initialising_table, NULL);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st)) {
            ck_assert_int_eq(WEXITSTATUS(st), 0);
            ck_assert_int_eq(step, 7);
            break;
        }
        rc = dsm_supervisor_worker_exited(pid, st);
        if (step == 2) {
            /* Inside the area's critical section (made, pinned, not recorded): a reset. */
            ck_assert_int_eq(rc, DSM_CRASH_RESET);
            ck_assert_int_eq(dsm_supervisor_reset(), 0);
            ck_assert_int_eq(sv_objects(&v), 1);
            base = table_warm_up(&v);
            continue;
        }
        ck_assert_int_eq(rc, DSM_CRASH_RECLAIMED);
        rc = sv_wait(sv_fork_worker(worker_checks_table, NULL));
        ck_assert_msg(rc == (step >= 6 ? 1 : 0), "step %d: the checker said %d", step, rc);
        ck_assert_int_eq(board->inits, step <= 3 || step >= 6 ? 1 : 2);
        ck_assert_msg(sv_objects(&v) == base, "step %d: %d objects, not %d", step,
                      sv_objects(&v), base);
    }
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static int worker_gated(void *arg)
{
    dsm_segment *seg;

    (void)arg;
    return dsm_named_segment_get("gate", 4096, init_gated, NULL, &seg, NULL) == 0 ? 0 : 10;
}

static int worker_waits(void *arg)
{
    dsm_segment *seg;
    bool found = true;

    (void)arg;
    if (dsm_named_segment_get("gate", 4096, init_hello, NULL, &seg, &found) != 0)
        return 10;
    if (found) /* it must have taken over from the dead initialiser */
        return 11;
    return strcmp(dsm_segment_address(seg), "hello") == 0 ? 0 : 12;
}

/* A waiter takes over from an initialiser that dies while it waits. */
START_TEST(test_waiter_takes_over_from_dead_initialiser)
{
    struct sv v;
    pid_t first, second;
    int st;

    if (!sv_start(&v, _i, reclaim_opts))
        return;
    board_new();
    first = sv_fork_worker(worker_gated, NULL);
    while (__atomic_load_n(&board->inits, __ATOMIC_SEQ_CST) == 0)
        usleep(1000);
    second = sv_fork_worker(worker_waits, NULL);
    usleep(50 * 1000); /* let it find the entry and wait */
    kill(first, SIGKILL);
    ck_assert_int_eq(waitpid(first, &st, 0), first);
    ck_assert_int_eq(dsm_supervisor_worker_exited(first, st), DSM_CRASH_RECLAIMED);
    ck_assert_int_eq(sv_wait(second), 0);
    ck_assert_int_eq(board->inits, 2);
    ck_assert_int_eq(dsm_named_delete("gate"), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

static int worker_holds_then_hangs(void *arg)
{
    dsm_segment *seg;
    dsm_hash *t;
    dsm_area *a;

    (void)arg;
    if (dsm_named_segment_get("held-seg", 4096, init_hello, NULL, &seg, NULL) != 0 ||
        dsm_named_hash_get("held-table", &word_params, init_words, NULL, &t, NULL) != 0 ||
        dsm_named_area_get("held-area", NULL, init_area, NULL, &a, NULL) != 0)
        return 10;
    __atomic_store_n(&board->gate_open, 1, __ATOMIC_SEQ_CST);
    for (;;)
        pause();
}

/* Workers SIGKILLed while they hold named objects: the names stay, whole. */
START_TEST(test_workers_killed_holding_names)
{
    struct sv v;
    dsm_named_info *l;
    size_t n;
    int base;

    if (!sv_start(&v, _i, reclaim_opts))
        return;
    board_new();
    {
        dsm_segment *seg;

        ck_assert_int_eq(dsm_named_segment_get("registry-made", 4096, NULL, NULL, &seg, NULL), 0);
    }
    base = sv_objects(&v);
    for (int round = 0; round < 3; round++) {
        pid_t pid;
        int st;

        board->gate_open = 0;
        pid = sv_fork_worker(worker_holds_then_hangs, NULL);
        while (!__atomic_load_n(&board->gate_open, __ATOMIC_SEQ_CST))
            usleep(1000);
        kill(pid, SIGKILL);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RECLAIMED);
        ck_assert_int_eq(dsm_named_list(&l, &n), 0);
        ck_assert_uint_eq(n, 4);
        for (size_t i = 0; i < n; i++) {
            ck_assert(l[i].ready);
            if (strcmp(l[i].name, "registry-made") != 0)
                ck_assert_uint_eq(l[i].holders, 0); /* the dead worker's mappings are gone */
        }
        free(l);
    }
    ck_assert_int_eq(board->inits, 2); /* the table's and the segment's, once each */
    ck_assert_int_eq(dsm_named_delete("held-seg"), 0);
    ck_assert_int_eq(dsm_named_delete("held-table"), 0);
    ck_assert_int_eq(dsm_named_delete("held-area"), 0);
    ck_assert_int_le(sv_objects(&v), base + 1); /* the registry's area may have grown once */
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

START_TEST(test_reset_forgets_names)
{
    struct sv v;
    dsm_segment *seg;
    bool found = true;

    if (!sv_start(&v, _i, NULL))
        return;
    board_new();
    ck_assert_int_eq(dsm_named_segment_get("before", 4096, init_hello, NULL, &seg, NULL), 0);
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    ck_assert_int_eq(sv_objects(&v), 1); /* the new control segment only */
    ck_assert_uint_eq(names(), 0);
    ck_assert_int_eq(dsm_named_segment_get("before", 4096, init_hello, NULL, &seg, &found), 0);
    ck_assert(!found);
    ck_assert_int_eq(board->inits, 2);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* dsmctl names, run against this (the test's) instance while it holds names. */
START_TEST(test_dsmctl_names)
{
    const char *ctl = getenv("DSMCTL") ? getenv("DSMCTL") : "./tools/dsmctl/dsmctl";
    char cmd[1024], out[8192];
    dsm_segment *seg;
    dsm_hash *t;
    size_t n;
    FILE *f;

    if (access(ctl, X_OK) != 0) {
        fprintf(stderr, "SKIP: test_dsmctl_names: %s is not built\n", ctl);
        return;
    }
    {
        struct sv v;

        if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
            return;
        ck_assert_int_eq(dsm_named_segment_get("counters", 65536, NULL, NULL, &seg, NULL), 0);
        ck_assert_int_eq(dsm_named_hash_get("words", &word_params, NULL, NULL, &t, NULL), 0);
        snprintf(cmd, sizeof(cmd), "%s -D %s names --json 2>&1; echo status=$?", ctl, v.dir);
        f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        pclose(f);
        ck_assert_msg(strstr(out, "\"name\": \"counters\", \"type\": \"segment\", \"ready\": true") &&
                          strstr(out, "\"name\": \"words\", \"type\": \"hash table\"") &&
                          strstr(out, "\"size\": 65536, \"holders\": 1") &&
                          strstr(out, "status=0"),
                      "dsmctl names printed: %s", out);
        ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
        ck_assert_int_eq(sv_objects(&v), 0);
        snprintf(cmd, sizeof(cmd), "%s -D %s names 2>&1; echo status=$?", ctl, v.dir);
        f = popen(cmd, "r");
        n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        pclose(f);
        ck_assert_msg(strstr(out, "no supervisor is running") && strstr(out, "status=3"),
                      "dsmctl names on a stopped instance printed: %s", out);
    }
}
END_TEST

Suite *suite_registry(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("names");
    TCase *death = tcase_create("deaths");

    tcase_add_loop_test(tc, test_segment_create_then_attach, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_workers_attach_by_name, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_exactly_once_under_a_race, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_failing_initialiser_leaves_nothing, DSM_IMPL_POSIX,
                        DSM_IMPL_NTYPES);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_loop_test(tc, test_delete_by_name, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_named_hash_and_area, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_reset_forgets_names, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_test(tc, test_dsmctl_names);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(death, test_initialiser_killed_at_each_step, DSM_IMPL_POSIX,
                        DSM_IMPL_NTYPES);
    tcase_add_loop_test(death, test_waiter_takes_over_from_dead_initialiser, DSM_IMPL_POSIX,
                        DSM_IMPL_NTYPES);
    tcase_add_loop_test(death, test_table_initialiser_killed_at_each_step, DSM_IMPL_POSIX,
                        DSM_IMPL_NTYPES);
    tcase_add_loop_test(death, test_workers_killed_holding_names, DSM_IMPL_POSIX,
                        DSM_IMPL_NTYPES);
    tcase_set_timeout(death, 120);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, death);
    return s;
}
