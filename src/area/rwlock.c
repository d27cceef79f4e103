/* SPDX-License-Identifier: MIT */
/*
 * rwlock.c - the robust reader/writer lock of dynshm/lock.h.
 *
 * A shared acquisition that finds the lock in the owner-died state (a
 * recoverer died too) takes it exclusively, like one that finds the dead
 * writer itself: only an exclusive holder may repair.
 *
 * A reader count cannot be robust: when a reader dies nobody knows which
 * count was its.  So each reader takes a slot and writes its thread id
 * there, and anyone waiting can check the ids it waits for and free the
 * slots of threads that are gone.  Readers change nothing, so a dead one
 * costs nothing more.  A writer records its thread id and process; if it
 * is gone the structure may be half updated, and the next acquirer takes
 * the lock exclusively with -EOWNERDEAD, as with dsm_lock.
 *
 * Waiting: every release bumps `seq` and wakes all sleepers on it (a
 * rwlock's waiters are few and mostly need to re-check anyway); sleepers
 * wake at least every 1..64 ms to check the holders they wait for.
 * Writers are preferred: once `writer` is set no new reader enters, so a
 * stream of readers cannot starve a writer.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <dynshm/lock.h>

#include "../common/futex.h"
#include "../common/internal.h"
#include "../common/procid.h"

#define MAGIC 0x52574c4bu /* "RWLK" */
enum { ST_CONSISTENT = 0, ST_OWNER_DIED = 1, ST_LOST = 2 };

struct rw {
    uint32_t state;      /* MAGIC ^ ST_* */
    uint32_t seq;        /* futex word: bumped by every release */
    uint32_t writer;     /* tid of the writer, or of the one waiting for readers; 0 none */
    uint32_t writer_in;  /* 1 once the readers have drained: the writer holds it */
    uint32_t readers[DSM_RWLOCK_READERS]; /* tid of each reader; 0 free */
};

_Static_assert(sizeof(struct rw) <= sizeof(dsm_rwlock), "dsm_rwlock size");

static _Thread_local uint32_t my_tid_cache; /* not initial-exec: the library must stay dlopen()-able */
static _Thread_local pid_t my_tid_pid; /* not initial-exec: the library must stay dlopen()-able */

/* This thread's id, cached per thread (and per process image: fork changes it). */
static uint32_t my_tid(void)
{
    pid_t pid = getpid();

    if (my_tid_cache == 0 || my_tid_pid != pid) {
        my_tid_cache = (uint32_t)syscall(SYS_gettid);
        my_tid_pid = pid;
    }
    return my_tid_cache;
}

static inline struct rw *RW(dsm_rwlock *l)
{
    return (struct rw *)(void *)l;
}

static int state_of(const struct rw *r)
{
    uint32_t s = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) ^ MAGIC;

    return s <= ST_LOST ? (int)s : -1;
}

static void set_state(struct rw *r, int s)
{
    __atomic_store_n(&r->state, MAGIC ^ (uint32_t)s, __ATOMIC_RELEASE);
}

void dsm_rwlock_init(dsm_rwlock *lock)
{
    memset(lock, 0, sizeof(*lock));
    set_state(RW(lock), ST_CONSISTENT);
}

static bool tid_alive(uint32_t tid)
{
    struct dsm__procid id = {.pid = (int32_t)tid};

    return tid == my_tid() || dsm__procid_alive(&id);
}

static void wake_all(struct rw *r)
{
    __atomic_add_fetch(&r->seq, 1, __ATOMIC_RELEASE);
    dsm__futex_wake(&r->seq, INT32_MAX);
}

static int lost(void)
{
    return dsm__error(-ENOTRECOVERABLE, "the structure guarded by this lock was declared lost "
                                        "after a holder died");
}

/* Free the slots of readers that are gone; returns the live readers left. */
static int prune_readers(struct rw *r)
{
    int live = 0;

    for (int i = 0; i < DSM_RWLOCK_READERS; i++) {
        uint32_t t = __atomic_load_n(&r->readers[i], __ATOMIC_ACQUIRE);

        if (t == 0)
            continue;
        if (tid_alive(t))
            live++;
        else
            __atomic_compare_exchange_n(&r->readers[i], &t, 0, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED);
    }
    return live;
}

/* Sequentially consistent with the readers' slot store and writer load (Dekker). */
static bool readers_present(struct rw *r)
{
    for (int i = 0; i < DSM_RWLOCK_READERS; i++)
        if (__atomic_load_n(&r->readers[i], __ATOMIC_SEQ_CST) != 0)
            return true;
    return false;
}

int dsm_rwlock_acquire(dsm_rwlock *lock, int exclusive, int64_t timeout_ns)
{
    struct rw *r = RW(lock);
    uint32_t me = my_tid();
    int64_t deadline = timeout_ns >= 0 ? dsm__now_ns() + timeout_ns : 0, interval = 1000000;
    bool died = false;

    for (;;) {
        uint32_t seq = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
        uint32_t w = __atomic_load_n(&r->writer, __ATOMIC_ACQUIRE);
        int st = state_of(r), rc;
        int64_t slice = interval;

        if (st < 0)
            return dsm__error(DSM_ECORRUPT, "lock at %p is not an initialised dynshm "
                                            "reader/writer lock", (void *)r);
        if (st == ST_LOST)
            return lost();
        if (w == 0) {
            if (exclusive || died || st == ST_OWNER_DIED) {
                uint32_t zero = 0;

                if (__atomic_compare_exchange_n(&r->writer, &zero, me, false, __ATOMIC_SEQ_CST,
                                                __ATOMIC_RELAXED))
                    continue; /* now wait for the readers below */
            } else {
                for (int i = 0; i < DSM_RWLOCK_READERS; i++) {
                    uint32_t zero = 0;

                    if (__atomic_compare_exchange_n(&r->readers[i], &zero, me, false,
                                                    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
                        /* A writer may have come in between: it goes first. */
                        if (__atomic_load_n(&r->writer, __ATOMIC_SEQ_CST) == 0)
                            return 0;
                        __atomic_store_n(&r->readers[i], 0, __ATOMIC_RELEASE);
                        wake_all(r);
                        break;
                    }
                }
            }
        } else if (w == me) {
            /* Our claim as writer: in once the readers are gone. */
            if (__atomic_load_n(&r->writer_in, __ATOMIC_ACQUIRE) == 0 && !readers_present(r)) {
                __atomic_store_n(&r->writer_in, 1, __ATOMIC_RELEASE);
                if (died || st == ST_OWNER_DIED) {
                    set_state(r, ST_OWNER_DIED);
                    return -EOWNERDEAD;
                }
                return 0;
            }
        }
        if (timeout_ns >= 0) {
            int64_t now = dsm__now_ns();

            if (now >= deadline) {
                if (w == me && !__atomic_load_n(&r->writer_in, __ATOMIC_RELAXED)) {
                    __atomic_store_n(&r->writer, 0, __ATOMIC_RELEASE); /* withdraw the claim */
                    wake_all(r);
                }
                return dsm__error(-ETIMEDOUT, "timed out waiting for a reader/writer lock");
            }
            if (deadline - now < slice)
                slice = deadline - now;
        }
        rc = dsm__futex_wait(&r->seq, seq, slice);
        if (rc == -ETIMEDOUT) {
            /* A quiet interval: check the holders we wait for. */
            w = __atomic_load_n(&r->writer, __ATOMIC_ACQUIRE);
            if (w != 0 && w != me && !tid_alive(w)) {
                bool held = __atomic_load_n(&r->writer_in, __ATOMIC_ACQUIRE) != 0;

                if (__atomic_compare_exchange_n(&r->writer, &w, me, false, __ATOMIC_ACQ_REL,
                                                __ATOMIC_RELAXED)) {
                    __atomic_store_n(&r->writer_in, 0, __ATOMIC_RELEASE);
                    died = died || held; /* a writer that never got in changed nothing */
                    if (!exclusive && !held) {
                        __atomic_store_n(&r->writer, 0, __ATOMIC_RELEASE); /* just clear it */
                        wake_all(r);
                    }
                }
            }
            if (prune_readers(r) == 0)
                wake_all(r);
            if (interval < 64000000)
                interval *= 2;
        }
    }
}

int dsm_rwlock_release(dsm_rwlock *lock)
{
    struct rw *r = RW(lock);
    uint32_t me = my_tid();
    int st = state_of(r);

    if (st < 0)
        return dsm__error(DSM_ECORRUPT, "lock at %p is not an initialised dynshm reader/writer "
                                        "lock", (void *)r);
    if (__atomic_load_n(&r->writer, __ATOMIC_ACQUIRE) == me &&
        __atomic_load_n(&r->writer_in, __ATOMIC_ACQUIRE)) {
        if (st == ST_OWNER_DIED)
            set_state(r, ST_LOST);
        __atomic_store_n(&r->writer_in, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&r->writer, 0, __ATOMIC_RELEASE);
        wake_all(r);
        return 0;
    }
    for (int i = 0; i < DSM_RWLOCK_READERS; i++) {
        uint32_t t = me;

        if (__atomic_compare_exchange_n(&r->readers[i], &t, 0, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            wake_all(r);
            return 0;
        }
    }
    return dsm__error(-EPERM, "cannot release a reader/writer lock this thread does not hold");
}

int dsm_rwlock_mark_consistent(dsm_rwlock *lock)
{
    struct rw *r = RW(lock);

    if (__atomic_load_n(&r->writer, __ATOMIC_ACQUIRE) != my_tid() ||
        !__atomic_load_n(&r->writer_in, __ATOMIC_ACQUIRE) || state_of(r) != ST_OWNER_DIED)
        return dsm__error(-EINVAL, "the lock is not held exclusively after a holder's death");
    set_state(r, ST_CONSISTENT);
    return 0;
}
