/* SPDX-License-Identifier: MIT */
/*
 * examples/area_tree.c - a supervisor and workers sharing a linked
 * structure through a dynamic shared area; one worker is killed mid-way.
 *
 * The structure is a binary search tree of variable-size records.  Every
 * link is a dsm_pointer, never an address, because each process maps the
 * area's segments wherever its kernel puts them.  One dsm_lock, stored in
 * the tree's root block, guards the tree; a record is written completely
 * before the single store that links it in, so a worker that dies holding
 * the lock leaves the tree valid and the next locker only has to check it
 * and call dsm_lock_mark_consistent().
 *
 * Run:  examples/area_tree DATADIR   (the guide, "Putting data structures
 * in shared memory", walks through it).  Exit status 0 when the story
 * checked out: every linked record intact, the dead worker's cached memory
 * back in the area, and nothing left in /dev/shm after shut-down.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

#define WORKERS 3
#define INSERTS 400

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "area_tree: " __VA_ARGS__);                         \
            fprintf(stderr, "\n");                                              \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

/* The root block: found by every process through the first allocation. */
struct tree {
    dsm_lock lock;
    dsm_pointer root;   /* first record, or DSM_POINTER_INVALID */
    uint64_t count;     /* records linked */
    uint64_t inserted[WORKERS];
};

/* A record: a key, two links, then `len` bytes of text and their checksum. */
struct record {
    uint64_t key;
    dsm_pointer left, right;
    uint32_t len;
    uint32_t sum;
    char text[];
};

static uint32_t checksum(const char *p, uint32_t len)
{
    uint32_t h = 2166136261u;

    for (uint32_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Link a record into the tree: the last store publishes it (lock held). */
static void link_record(dsm_area *area, struct tree *t, dsm_pointer rp, uint64_t key)
{
    dsm_pointer *at = &t->root;

    while (*at != DSM_POINTER_INVALID) {
        struct record *r = dsm_area_address(area, *at);

        at = key < r->key ? &r->left : &r->right;
    }
    *at = rp;
    t->count++;
}

/* Walk the tree, checking every record; returns how many there are. */
static uint64_t check_tree(dsm_area *area, dsm_pointer p, int depth)
{
    struct record *r;

    if (p == DSM_POINTER_INVALID)
        return 0;
    CHECK(depth < 10000, "the tree has a cycle");
    r = dsm_area_address(area, p);
    CHECK(r != NULL, "a link does not point into the area: %s", dsm_errmsg());
    CHECK(checksum(r->text, r->len) == r->sum, "record %llu is corrupt",
          (unsigned long long)r->key);
    return 1 + check_tree(area, r->left, depth + 1) + check_tree(area, r->right, depth + 1);
}

static void free_tree(dsm_area *area, dsm_pointer p)
{
    struct record *r;

    if (p == DSM_POINTER_INVALID)
        return;
    r = dsm_area_address(area, p);
    free_tree(area, r->left);
    free_tree(area, r->right);
    dsm_area_free(area, p);
}

/* Take the tree lock; after a holder's death, check the tree and carry on. */
static int lock_tree(dsm_area *area, struct tree *t)
{
    int rc = dsm_lock_acquire(&t->lock, -1);

    if (rc == -EOWNERDEAD) {
        printf("  pid %d: the tree lock's holder died; checking the tree: %llu records ok\n",
               (int)getpid(), (unsigned long long)check_tree(area, t->root, 0));
        rc = dsm_lock_mark_consistent(&t->lock);
    }
    return rc;
}

static int worker(dsm_handle handle, dsm_pointer tree_ptr, int id)
{
    dsm_area *area;
    struct tree *t;
    uint64_t seed = (uint64_t)id * 7919 + 1;

    if (dsm_worker_init_after_fork() != 0 || dsm_area_attach(handle, &area) != 0)
        return 10;
    t = dsm_area_address(area, tree_ptr);
    for (int i = 0; i < INSERTS; i++) {
        uint32_t len = (uint32_t)(16 + (seed = seed * 6364136223846793005u + 1) % 2000);
        dsm_pointer rp;
        struct record *r;

        /* Allocate and fill outside the lock; only linking needs it. */
        if (dsm_area_allocate(area, sizeof(*r) + len, 0, &rp) != 0)
            return 11;
        r = dsm_area_address(area, rp);
        r->key = seed >> 16;
        r->left = r->right = DSM_POINTER_INVALID;
        r->len = len;
        for (uint32_t k = 0; k < len; k++)
            r->text[k] = (char)('a' + (seed >> (k % 40)) % 26);
        r->sum = checksum(r->text, len);
        if (lock_tree(area, t) != 0)
            return 12;
        link_record(area, t, rp, r->key);
        t->inserted[id]++;
        dsm_lock_release(&t->lock);
        usleep(200);
    }
    return 0; /* its caches go back when the supervisor next looks (statistics) */
}

static void log_hook(dsm_log_level level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    printf("  [dynshm] %s\n", msg);
}

int main(int argc, char **argv)
{
    dsm_settings *settings;
    dsm_area_stats st;
    dsm_area *area;
    dsm_pointer tree_ptr;
    dsm_handle handle;
    struct tree *t;
    pid_t pid[WORKERS];
    uint64_t n;
    int status, action;

    if (argc != 2) {
        fprintf(stderr, "usage: area_tree DATADIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dsm_set_log_hook(log_hook, NULL, DSM_LOG_INFO);
    /* reclaim: a dead worker outside the allocator costs nobody else anything. */
    CHECK(dsm_settings_new(&settings) == 0 &&
              dsm_settings_set(settings, "dsm_crash_policy", "reclaim") == 0 &&
              dsm_supervisor_start(argv[1], settings) == 0,
          "start-up: %s", dsm_errmsg());
    dsm_settings_free(settings);

    CHECK(dsm_area_create(NULL, &area) == 0, "area: %s", dsm_errmsg());
    CHECK(dsm_area_allocate(area, sizeof(*t), DSM_AREA_ALLOC_ZERO, &tree_ptr) == 0,
          "root: %s", dsm_errmsg());
    t = dsm_area_address(area, tree_ptr);
    dsm_lock_init(&t->lock);
    t->root = DSM_POINTER_INVALID;

    handle = dsm_area_handle(area); /* what workers attach by */
    for (int i = 0; i < WORKERS; i++) {
        pid[i] = fork();
        CHECK(pid[i] >= 0, "fork");
        if (pid[i] == 0) {
            int rc = worker(handle, tree_ptr, i);

            if (rc != 0)
                fprintf(stderr, "area_tree: worker %d: failure %d: %s\n", i, rc, dsm_errmsg());
            exit(rc == 0 ? 0 : 1); /* exit, not _exit: it leaves dynamic shared memory */
        }
    }
    /* Kill worker 0 mid-way, whatever it is doing. */
    while (__atomic_load_n(&t->inserted[0], __ATOMIC_RELAXED) < INSERTS / 4) {
        CHECK(waitpid(pid[0], &status, WNOHANG) == 0, "worker 0 ended early (status 0x%x)",
              (unsigned)status);
        usleep(1000);
    }
    kill(pid[0], SIGKILL);
    waitpid(pid[0], &status, 0);
    printf("supervisor: killed worker %d after %llu inserts\n", (int)pid[0],
           (unsigned long long)t->inserted[0]);
    action = dsm_supervisor_worker_exited(pid[0], status);
    if (action == DSM_CRASH_RESET) {
        /* It died inside the area's allocator: the area cannot be trusted. */
        printf("supervisor: it died while updating the area; crash reset\n");
        for (int i = 1; i < WORKERS; i++) {
            kill(pid[i], SIGKILL);
            waitpid(pid[i], NULL, 0);
        }
        dsm_area_detach(area);
        CHECK(dsm_supervisor_reset() == 0, "reset: %s", dsm_errmsg());
        CHECK(dsm_supervisor_shutdown() == 0, "shut-down: %s", dsm_errmsg());
        printf("supervisor: killed worker handled by a reset; done\n");
        return 0;
    }
    CHECK(action == DSM_CRASH_RECLAIMED, "unexpected crash action %d", action);
    printf("supervisor: reclaimed; the others go on\n");
    for (int i = 1; i < WORKERS; i++) {
        waitpid(pid[i], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d failed", (int)pid[i]);
        dsm_supervisor_worker_exited(pid[i], status);
    }

    /* The tree: every linked record intact, the count agrees. */
    CHECK(lock_tree(area, t) == 0, "lock: %s", dsm_errmsg());
    n = check_tree(area, t->root, 0);
    CHECK(n == t->count, "%llu records linked but %llu counted", (unsigned long long)n,
          (unsigned long long)t->count);
    printf("supervisor: the tree holds %llu intact records (killed worker linked %llu)\n",
           (unsigned long long)n, (unsigned long long)t->inserted[0]);
    CHECK(dsm_area_stats_get(area, &st) == 0, "stats: %s", dsm_errmsg());
    printf("supervisor: area %zu bytes in %u segment(s), %zu in use, %zu cached\n",
           st.total_size, st.segments, st.bytes_in_use, st.bytes_cached);
    free_tree(area, t->root);
    t->root = DSM_POINTER_INVALID;
    dsm_lock_release(&t->lock);
    dsm_area_free(area, tree_ptr);
    CHECK(dsm_area_trim(area) >= 0, "trim: %s", dsm_errmsg());
    CHECK(dsm_area_stats_get(area, &st) == 0, "stats: %s", dsm_errmsg());
    /* What is left is what the dead worker allocated but never linked (at most one). */
    printf("supervisor: after freeing the tree, %zu bytes in use, %zu cached, %u segment(s)\n",
           st.bytes_in_use, st.bytes_cached, st.segments);
    CHECK(st.bytes_cached == 0 && st.bytes_in_use <= 4096, "memory was not returned");
    dsm_area_detach(area);
    CHECK(dsm_supervisor_shutdown() == 0, "shut-down: %s", dsm_errmsg());
    printf("supervisor: killed worker handled by reclaim; done\n");
    return 0;
}
