/* SPDX-License-Identifier: MIT */
/*
 * check_crash.c - dead workers: reclaim exactly what they held, or reset;
 * the crash hook; workers found dead by pid and start time; and kill loops
 * with real processes that SIGKILL workers (and whole instances) at random
 * moments, including while they hold the control lock, checking after
 * every kill that the table and the system agree.
 *
 * DYNSHM_SOAK=N multiplies the loop counts (make soak).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsm/dsm_int.h"
#include "dsmtest.h"

#define LOOP(tc, fn) tcase_add_loop_test(tc, fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)

static const char *const reclaim_opts[] = {"dsm_crash_policy=reclaim", NULL};
static struct sync rv;
static dsm_handle shared;

static int soak_factor(void)
{
    const char *s = getenv("DYNSHM_SOAK");
    int n = s ? atoi(s) : 1;

    return n > 0 ? n : 1;
}

/* ---- what reclaim releases --------------------------------------------------- */

static int child_holds_three(void *arg)
{
    dsm_segment *a, *mine, *pinned;

    (void)arg;
    if (dsm_attach(shared, &a) != 0 || dsm_create(8192, 0, &mine) != 0 ||
        dsm_create(8192, 0, &pinned) != 0 || dsm_pin_segment(pinned) != 0)
        return 10;
    strcpy(dsm_segment_address(pinned), "pinned by the dead");
    sync_signal_parent(&rv, dsm_segment_handle(mine));
    sync_signal_parent(&rv, dsm_segment_handle(pinned));
    for (;;)
        pause();
}

START_TEST(test_reclaim_releases_exactly)
{
    struct sv v;
    dsm_segment *seg, *x;
    dsm_handle mine, pinned;
    pid_t pid;
    int st;

    if (!sv_start(&v, _i, reclaim_opts))
        return;
    log_capture_start();
    sync_init(&rv);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    strcpy(dsm_segment_address(seg), "survivor");
    pid = sv_fork_worker(child_holds_three, NULL);
    mine = sync_wait_child(&rv);
    pinned = sync_wait_child(&rv);
    ck_assert_int_eq(sv_objects(&v), 4);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RECLAIMED);
    ck_assert_int_eq(log_count("released its references (1 segment(s) destroyed)"), 1);
    /* Shared: only the dead worker's share went.  Its own: destroyed.  Pinned: stays. */
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)shared].refcnt, 1);
    ck_assert_str_eq(dsm_segment_address(seg), "survivor");
    ck_assert_int_eq(dsm_attach(mine, &x), -ENOENT);
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)pinned].refcnt, 1);
    ck_assert_int_eq(dsm_attach(pinned, &x), 0);
    ck_assert_str_eq(dsm_segment_address(x), "pinned by the dead");
    ck_assert_int_eq(dsm__p.ctl.hdr->procs_used, 1);
    ck_assert_int_eq(sv_objects(&v), 3);
    /* Reporting the same death twice changes nothing. */
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_NONE);
    ck_assert_int_eq(dsm_unpin_segment(pinned), 0);
    ck_assert_int_eq(dsm_detach(x), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

/* ---- the crash hook and what counts as a crash ------------------------------------ */

static pid_t hook_pid;
static int hook_status;

static dsm_crash_action hook(pid_t pid, int status, void *arg)
{
    hook_pid = pid;
    hook_status = status;
    return *(dsm_crash_action *)arg;
}

static int child_attaches_and_waits(void *arg)
{
    dsm_segment *a;

    (void)arg;
    if (dsm_attach(shared, &a) != 0)
        return 10;
    sync_signal_parent(&rv, 1);
    for (;;)
        pause();
}

static pid_t killed_worker(int *st)
{
    pid_t pid = sv_fork_worker(child_attaches_and_waits, NULL);

    sync_wait_child(&rv);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, st, 0), pid);
    return pid;
}

START_TEST(test_crash_hook_decides)
{
    dsm_crash_action answer;
    struct sv v;
    dsm_segment *seg;
    pid_t pid;
    int st;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    sync_init(&rv);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    dsm_set_crash_hook(hook, &answer);

    answer = DSM_CRASH_RECLAIMED; /* the policy says reset; the hook knows better */
    pid = killed_worker(&st);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RECLAIMED);
    ck_assert_int_eq(hook_pid, pid);
    ck_assert(WIFSIGNALED(hook_status) && WTERMSIG(hook_status) == SIGKILL);
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)shared].refcnt, 1);

    answer = DSM_CRASH_RESET; /* e.g. it was writing a shared structure: escalate */
    pid = killed_worker(&st);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RESET);
    dsm_set_crash_hook(NULL, NULL);
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
}
END_TEST

static int child_leaves_by(void *arg)
{
    dsm_segment *a;

    if (dsm_attach(shared, &a) != 0)
        return 10;
    switch (*(int *)arg) {
    case 0:
        _exit(0); /* skips the exit handler: it never left */
    case 1:
        abort();
    default:
        exit(3); /* a failure exit, but it left properly */
    }
}

START_TEST(test_what_counts_as_a_crash)
{
    struct sv v;
    dsm_segment *seg;
    int how, st;
    pid_t pid;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    for (how = 0; how < 3; how++) {
        pid = sv_fork_worker(child_leaves_by, &how);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st),
                         how < 2 ? DSM_CRASH_RESET : DSM_CRASH_NONE);
    }
    ck_assert_int_eq(dsm_supervisor_worker_exited(1, 0), DSM_CRASH_NONE); /* never a worker */
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(dsm_supervisor_worker_exited(1, 0), DSM_ESTATE);
}
END_TEST

/* An exec'd worker the supervisor did not fork is found dead by pid + start time. */
START_TEST(test_check_workers_finds_exec_worker)
{
    struct sv v;
    dsm_segment *seg;
    char hb[DSM_HANDLE_STRLEN], line[64];
    int out[2];
    pid_t pid;
    FILE *f;

    if (!sv_start(&v, _i, reclaim_opts))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    strcpy(dsm_segment_address(seg), "hello exec");
    dsm_handle_format(dsm_segment_handle(seg), hb);
    ck_assert_int_eq(pipe(out), 0);
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        execl("test/exec_worker", "exec_worker", v.dir, hb, "hold", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    f = fdopen(out[0], "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    ck_assert_str_eq(line, "hello exec\n");
    ck_assert_int_eq(dsm_supervisor_check_workers(), DSM_CRASH_NONE); /* alive */
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)dsm_segment_handle(seg)].refcnt, 2);
    kill(pid, SIGKILL);
    sv_wait(pid);
    fclose(f);
    ck_assert_int_eq(dsm_supervisor_check_workers(), DSM_CRASH_RECLAIMED);
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)dsm_segment_handle(seg)].refcnt, 1);
    ck_assert_int_eq(dsm_supervisor_check_workers(), DSM_CRASH_NONE);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- kill loops ------------------------------------------------------------------- */

#define POOL 8
#define WORKERS 3

/* Shared (MAP_ANONYMOUS) between the supervisor and its workers. */
struct board {
    dsm_handle pool[POOL];     /* pinned segments every worker may attach */
    volatile int pause_gen;    /* nonzero: stop between operations and acknowledge */
    volatile int ack[WORKERS]; /* per worker: the pause generation it stopped for */
    volatile pid_t in_lock;    /* a worker that now spins holding the control lock */
    volatile int want_lock_victim;
    volatile int started;      /* workers registered so far (they count themselves) */
    long ops;
};

static struct board *board;

/*
 * Each worker acknowledges a pause generation in its own cell, so a worker
 * killed at any moment cannot leave a stale count behind.
 */
static void worker_pause_point(int w)
{
    int g = __atomic_load_n(&board->pause_gen, __ATOMIC_SEQ_CST);

    if (g == 0 || board->ack[w] == g)
        return;
    __atomic_store_n(&board->ack[w], g, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&board->pause_gen, __ATOMIC_SEQ_CST) == g)
        usleep(50);
}

__attribute__((noreturn)) static int kill_loop_worker(void *arg)
{
    unsigned seed = (unsigned)getpid();
    dsm_segment *own[4] = {0};
    int w = (int)(intptr_t)arg;

    __atomic_add_fetch(&board->started, 1, __ATOMIC_SEQ_CST); /* registered: a fair target */
    for (;;) {
        int op = (int)(rand_r(&seed) % 6), k = (int)(rand_r(&seed) % 4);
        dsm_segment *seg;

        worker_pause_point(w);
        __atomic_add_fetch(&board->ops, 1, __ATOMIC_RELAXED);
        switch (op) {
        case 0: /* create, or drop what we made */
            if (own[k]) {
                dsm_detach(own[k]);
                own[k] = NULL;
            } else if (dsm_create(1 + rand_r(&seed) % 65536, 0, &own[k]) != 0) {
                own[k] = NULL;
            }
            break;
        case 1: /* attach a pooled segment, touch it, detach */
            if (dsm_attach(board->pool[k], &seg) == 0) {
                ((volatile char *)dsm_segment_address(seg))[0]++;
                dsm_detach(seg);
            }
            break;
        case 2: /* pin and unpin our own */
            if (own[k] && dsm_pin_segment(own[k]) == 0)
                dsm_unpin_segment(dsm_segment_handle(own[k]));
            break;
        case 3: /* sit in the lock for a while, so kills land inside it */
            if (dsm__control_lock(&dsm__p.ctl) == 0) {
                if (board->want_lock_victim) {
                    board->want_lock_victim = 0;
                    board->in_lock = getpid();
                    for (;;)
                        ; /* wait here for the SIGKILL */
                }
                for (volatile int spin = 0; spin < 20000; spin++)
                    ;
                dsm__control_unlock(&dsm__p.ctl);
            }
            break;
        default: /* create and destroy at once */
            if (dsm_create(4096, 0, &seg) == 0)
                dsm_detach(seg);
            break;
        }
    }
}

/* The table agrees with itself: counts, lists and refcounts (lock held by caller). */
static void verify_table(void)
{
    struct dsm_control *ctl = &dsm__p.ctl;
    struct dsm_control_header *h = ctl->hdr;
    uint32_t *refs = calloc(h->nslots, sizeof(*refs)), used = 0, nref = 0, nproc = 0, n;

    ck_assert_ptr_nonnull(refs);
    for (uint32_t i = 0; i < h->nrefs; i++)
        if (ctl->refs[i].slot != DSM_CONTROL_NONE) {
            ck_assert_uint_lt(ctl->refs[i].slot, h->nslots);
            ck_assert_int_eq(ctl->procs[ctl->refs[i].proc].state, DSM_PROC_ACTIVE);
            refs[ctl->refs[i].slot]++;
            nref++;
        }
    for (uint32_t i = 0; i < h->nslots; i++) {
        struct dsm_control_slot *s = &ctl->slots[i];

        /* Between operations nothing is half created or half destroyed. */
        ck_assert_msg(s->state == DSM_SLOT_FREE || s->state == DSM_SLOT_LIVE,
                      "slot %u in state %d", i, s->state);
        if (s->state == DSM_SLOT_FREE)
            ck_assert_int_eq(refs[i], 0);
        else
            ck_assert_msg(s->refcnt == refs[i] + s->pinned, "slot %u: refcnt %u, %u refs, pin %d",
                          i, s->refcnt, refs[i], s->pinned);
        used += s->state != DSM_SLOT_FREE;
    }
    for (uint32_t i = 0; i < h->nprocs; i++) {
        struct dsm_control_proc *p = &ctl->procs[i];
        uint32_t walked = 0;

        if (p->state != DSM_PROC_ACTIVE)
            continue;
        nproc++;
        for (uint32_t r = p->ref_head; r != DSM_CONTROL_NONE; r = ctl->refs[r].next) {
            ck_assert_int_eq(ctl->refs[r].proc, i);
            walked++;
        }
        ck_assert_uint_eq(walked, p->nrefs);
    }
    ck_assert_uint_eq(used, h->slots_used);
    ck_assert_uint_eq(nref, h->refs_used);
    ck_assert_uint_eq(nproc, h->procs_used);
    for (n = 0, used = h->slot_free; used != DSM_CONTROL_NONE; used = ctl->slots[used].next_free)
        n++;
    ck_assert_uint_eq(n, h->nslots - h->slots_used);
    free(refs);
}

/* Pause the live workers between operations (bounded wait), check everything, resume. */
static void pause_and_verify(const struct sv *v, const pid_t *workers)
{
    static int gen;
    struct timespec t0, t;
    int objects;

    gen++;
    __atomic_store_n(&board->pause_gen, gen, __ATOMIC_SEQ_CST);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int w = 0; w < WORKERS; w++) {
        while (workers[w] != 0 && __atomic_load_n(&board->ack[w], __ATOMIC_SEQ_CST) != gen) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec >= 10 && getenv("DYNSHM_DEBUG_STUCK")) {
                char cmd[128];

                snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -ex bt 2>/dev/null | grep '^#[0-4] '",
                         (int)workers[w]);
                if (system(cmd) < 0)
                    perror("system");
            }
            ck_assert_msg(t.tv_sec - t0.tv_sec < 10, "worker %d did not pause", w);
            usleep(50);
        }
    }
    ck_assert_int_eq(dsm__control_lock(&dsm__p.ctl), 0);
    verify_table();
    objects = (int)dsm__p.ctl.hdr->slots_used + 1;
    dsm__control_unlock(&dsm__p.ctl);
    ck_assert_int_eq(sv_objects(v), objects); /* the system agrees with the table */
    __atomic_store_n(&board->pause_gen, 0, __ATOMIC_SEQ_CST);
}

static void kill_workers_loop(int type, bool reclaim)
{
    static const char *const reset_opts[] = {"dsm_max_segments=256", NULL};
    static const char *const rec_opts[] = {"dsm_max_segments=256", "dsm_crash_policy=reclaim",
                                           NULL};
    int kills = 100 * soak_factor(), lock_kills = 0, resets = 0, spawned = 0;
    pid_t workers[WORKERS];
    unsigned seed = 12345;
    struct sv v;

    if (!sv_start(&v, type, reclaim ? rec_opts : reset_opts))
        return;
    board = mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(board, MAP_FAILED);
    for (int k = 0; k < kills; k++) {
        int victim, st, rc;

        if (k == 0 || !reclaim) { /* a fresh pool after every reset */
            for (int i = 0; i < POOL; i++) {
                dsm_segment *seg;

                ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
                ck_assert_int_eq(dsm_pin_segment(seg), 0);
                board->pool[i] = dsm_segment_handle(seg);
                ck_assert_int_eq(dsm_detach(seg), 0);
            }
            for (int w = 0; w < WORKERS; w++, spawned++) {
                board->ack[w] = 0;
                workers[w] = sv_fork_worker(kill_loop_worker, (void *)(intptr_t)w);
            }
        }
        /* Only registered workers are fair game: one killed before it joined held nothing. */
        for (int spins = 0; board->started < spawned && spins < 1000000; spins++)
            usleep(10);
        ck_assert_int_eq(board->started, spawned);
        victim = (int)(rand_r(&seed) % WORKERS);
        if (k % 10 == 5) {
            /* Make sure the window where the lock is held is hit, not hoped for. */
            board->in_lock = 0;
            board->want_lock_victim = 1;
            for (int spins = 0; board->in_lock == 0 && spins < 200000; spins++)
                usleep(10);
            ck_assert_msg(board->in_lock != 0, "no worker took the lock");
            for (victim = 0; workers[victim] != board->in_lock; victim++)
                ;
            lock_kills++;
        } else {
            usleep(rand_r(&seed) % 3000);
        }
        kill(workers[victim], SIGKILL);
        ck_assert_int_eq(waitpid(workers[victim], &st, 0), workers[victim]);
        rc = dsm_supervisor_worker_exited(workers[victim], st);
        if (reclaim) {
            ck_assert_int_eq(rc, DSM_CRASH_RECLAIMED);
            workers[victim] = 0;
            pause_and_verify(&v, workers);
            board->ack[victim] = 0;
            workers[victim] = sv_fork_worker(kill_loop_worker, (void *)(intptr_t)victim);
            spawned++;
        } else {
            ck_assert_int_eq(rc, DSM_CRASH_RESET);
            for (int w = 0; w < WORKERS; w++)
                if (w != victim) {
                    kill(workers[w], SIGKILL);
                    sv_wait(workers[w]);
                }
            ck_assert_int_eq(dsm_supervisor_reset(), 0);
            ck_assert_int_eq(sv_objects(&v), 1);
            resets++;
        }
    }
    for (int spins = 0; reclaim && board->started < spawned && spins < 1000000; spins++)
        usleep(10);
    for (int w = 0; w < WORKERS && reclaim; w++) {
        int st;

        kill(workers[w], SIGKILL);
        waitpid(workers[w], &st, 0);
        ck_assert_int_eq(dsm_supervisor_worker_exited(workers[w], st), DSM_CRASH_RECLAIMED);
    }
    if (reclaim) {
        int orphan_pins = 0;

        for (int i = 0; i < POOL; i++)
            ck_assert_int_eq(dsm_unpin_segment(board->pool[i]), 0);
        /* A worker killed between its pin and unpin leaves a pin: pins outlive workers. */
        for (uint32_t i = 0; i < dsm__p.ctl.hdr->nslots; i++)
            if (dsm__p.ctl.slots[i].state == DSM_SLOT_LIVE && dsm__p.ctl.slots[i].pinned) {
                ck_assert_int_eq(dsm_unpin_segment(dsm__p.ctl.slots[i].handle), 0);
                orphan_pins++;
            }
        ck_assert_int_le(orphan_pins, kills);
        ck_assert_int_eq(dsm__control_lock(&dsm__p.ctl), 0);
        verify_table();
        ck_assert_int_eq(dsm__p.ctl.hdr->slots_used, 0);
        dsm__control_unlock(&dsm__p.ctl);
    }
    printf("kill loop (%s, %s): %d kills, %d inside the control lock, %llu lock repairs, "
           "%d resets, %ld operations, leaked 0\n",
           dsm_impl_type_name((dsm_impl_type)type), reclaim ? "reclaim" : "reset", kills,
           lock_kills, (unsigned long long)dsm__p.ctl.hdr->repairs, resets, board->ops);
    if (reclaim)
        ck_assert_uint_ge(dsm__p.ctl.hdr->repairs, (uint64_t)lock_kills);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    munmap(board, sizeof(*board));
}

START_TEST(test_kill_loop_reclaim)
{
    kill_workers_loop(_i, true);
}
END_TEST

START_TEST(test_kill_loop_reset)
{
    kill_workers_loop(_i, false);
}
END_TEST

/*
 * Kill -9 a whole instance (supervisor and workers) at a random moment,
 * start a new supervisor, and check that start-up left exactly its own
 * control segment: nothing of the dead instance survives, whatever it was
 * doing.  After the last cycle, shut-down leaves nothing at all.
 */
static int supervisor_process(struct sv *v, int report_fd, bool reclaim)
{
    static const char *const opts[] = {"dsm_crash_policy=reclaim", NULL};
    int objects;

    if (sv_restart(v, reclaim ? opts : NULL) != 0)
        return 10;
    objects = sv_objects(v);
    if (write(report_fd, &objects, sizeof(objects)) != sizeof(objects))
        return 11;
    for (int i = 0; i < POOL; i++) {
        dsm_segment *seg;

        if (dsm_create(4096, 0, &seg) != 0 || dsm_pin_segment(seg) != 0)
            return 12;
        board->pool[i] = dsm_segment_handle(seg);
        dsm_detach(seg);
    }
    for (int w = 0; w < WORKERS; w++)
        sv_fork_worker(kill_loop_worker, (void *)(intptr_t)w);
    for (;;) {
        int st;
        pid_t pid = wait(&st);

        if (pid > 0 && dsm_supervisor_worker_exited(pid, st) == DSM_CRASH_RESET)
            return 13; /* workers are only killed with the whole instance here */
    }
}

START_TEST(test_kill_everything_loop)
{
    int cycles = 20 * soak_factor();
    unsigned seed = 777;
    struct sv v;
    int report[2];

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (!sv_start(&v, _i, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    board = mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(board, MAP_FAILED);
    ck_assert_int_eq(pipe(report), 0);
    for (int c = 0; c < cycles; c++) {
        int objects = -1, st;
        pid_t sup = fork();

        ck_assert_int_ge(sup, 0);
        if (sup == 0) {
            setpgid(0, 0);
            _exit(supervisor_process(&v, report[1], c % 2 == 1));
        }
        setpgid(sup, sup);
        ck_assert_int_eq(read(report[0], &objects, sizeof(objects)), sizeof(objects));
        ck_assert_msg(objects == 1, "cycle %d: start-up left %d objects, not just its control "
                                    "segment", c, objects);
        usleep(1000 + rand_r(&seed) % 20000);
        kill(-sup, SIGKILL);
        while (waitpid(-1, &st, 0) > 0)
            ;
        /* memfd: the kernel freed everything with the processes, before any cleanup. */
        if (_i == DSM_IMPL_MEMFD)
            ck_assert_msg(sv_objects(&v) == 0, "cycle %d: %d memfd segments outlived the "
                                               "instance", c, sv_objects(&v));
    }
    ck_assert_int_eq(sv_restart(&v, NULL), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    printf("kill-everything loop (%s): %d cycles, %ld operations, leaked 0\n",
           dsm_impl_type_name((dsm_impl_type)_i), cycles, board->ops);
    munmap(board, sizeof(*board));
}
END_TEST

Suite *suite_crash(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("dead_workers");
    TCase *loop = tcase_create("kill_loop");

    tcase_set_timeout(tc, 60);
    LOOP(tc, test_reclaim_releases_exactly);
    tcase_add_test(tc, test_crash_hook_decides);
    tcase_add_test(tc, test_what_counts_as_a_crash);
    LOOP(tc, test_check_workers_finds_exec_worker);
    suite_add_tcase(s, tc);
    tcase_set_timeout(loop, 600);
    LOOP(loop, test_kill_loop_reclaim);
    LOOP(loop, test_kill_loop_reset);
    LOOP(loop, test_kill_everything_loop);
    suite_add_tcase(s, loop);
    return s;
}
