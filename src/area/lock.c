/* SPDX-License-Identifier: MIT */
/*
 * lock.c - the robust process-shared lock of dynshm/lock.h.
 *
 * Why our own and not a robust pthread mutex: glibc's robust mutexes link
 * the holder's robust list through addresses stored inside the mutex (the
 * design rule says no addresses in shared memory), a scribbled mutex can
 * make glibc abort the caller, and their state cannot be validated before
 * use.  This lock is one futex word plus the holder's identity, both
 * checked on every call.  It lives beside the area because the area is its
 * first user (the area lock is one of these); include/dynshm/lock.h is its
 * own header because users embed locks in structures that are not areas.
 *
 * The word: 0 when free, else the holder's pid (low 30 bits) with
 * WAITERS (bit 31) set once someone sleeps.  Acquire is one compare-and-
 * swap when free.  A waiter sets WAITERS and sleeps on the word with a
 * timeout; each timeout (1 ms doubling to 64 ms) is a liveness check of the
 * holder through dsm__procid_alive() -- pid and start time, so a reused pid
 * is not taken for the holder.  A dead holder's word is taken over with one
 * compare-and-swap, so of several waiters exactly one inherits the lock
 * and learns of the death (-EOWNERDEAD).  Nothing polls faster than the
 * check interval, and an unlock wakes one sleeper at once.
 *
 * The holder's identity is stored after the word is taken, start time
 * first then pid (release order), and the pid is cleared before the word
 * is released: a reader that finds the identity's pid equal to the word's
 * holder reads a start time that belongs to that holder.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <dynshm/lock.h>

#include "../common/futex.h"
#include "../common/internal.h"
#include "../common/procid.h"
#include "../dsm/services.h"
#include "lock_int.h"

#define PID_MASK 0x3fffffffu
#define WAITERS 0x80000000u

#define MAGIC 0x4c4f434bu /* "LOCK" */
enum { ST_CONSISTENT = 0, ST_OWNER_DIED = 1, ST_LOST = 2 };

struct rlock {
    uint32_t word;   /* 0 free; holder pid | WAITERS */
    uint32_t state;  /* MAGIC ^ one of ST_* (validated) */
    int32_t holder_pid;
    uint32_t reserved;
    uint64_t holder_start;
};

_Static_assert(sizeof(struct rlock) == sizeof(dsm_lock), "dsm_lock size");

/*
 * This process's identity, cached: getpid() is a system call in current
 * glibc, and a lock taken per allocation refill must not cost one.  Reset
 * in a fork child by the handler registered on first use.
 */
static struct dsm__procid self;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void self_reset(void)
{
    __atomic_store_n(&self.pid, 0, __ATOMIC_RELAXED);
}

static void self_register(void)
{
    pthread_atfork(NULL, NULL, self_reset);
}

static inline uint32_t my_pid(void)
{
    int32_t pid = __atomic_load_n(&self.pid, __ATOMIC_RELAXED);

    if (__builtin_expect(pid == 0, 0)) {
        struct dsm__procid me;

        pthread_once(&self_once, self_register);
        dsm__procid_self(&me);
        self.start_time = me.start_time;
        __atomic_store_n(&self.pid, me.pid, __ATOMIC_RELAXED);
        pid = me.pid;
    }
    return (uint32_t)pid;
}

/* Set by dsm__lock_acquire_critical(): count a critical section around each take. */
static _Thread_local bool tl_critical;

/* Take the word with one compare-and-swap; in counted mode the critical
 * section begins just before it, so no instant holds the lock uncounted. */
static bool cas_take(uint32_t *word, uint32_t *expected, uint32_t desired)
{
    if (tl_critical)
        dsm__critical_enter();
    if (__atomic_compare_exchange_n(word, expected, desired, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
        return true;
    if (tl_critical)
        dsm__critical_leave();
    return false;
}

static inline struct rlock *R(dsm_lock *l)
{
    return (struct rlock *)(void *)l;
}

static int state_of(const struct rlock *r)
{
    uint32_t s = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) ^ MAGIC;

    return s <= ST_LOST ? (int)s : -1;
}

static void set_state(struct rlock *r, int s)
{
    __atomic_store_n(&r->state, MAGIC ^ (uint32_t)s, __ATOMIC_RELEASE);
}

void dsm_lock_init(dsm_lock *lock)
{
    struct rlock *r = R(lock);

    memset(r, 0, sizeof(*r));
    set_state(r, ST_CONSISTENT);
}

static void record_holder(struct rlock *r)
{
    int32_t pid = (int32_t)my_pid();

    __atomic_store_n(&r->holder_start, self.start_time, __ATOMIC_RELAXED);
    __atomic_store_n(&r->holder_pid, pid, __ATOMIC_RELEASE);
}

/* Is the process whose pid is in `word` still running? */
static bool holder_alive(struct rlock *r, uint32_t word)
{
    struct dsm__procid id = {0};
    pid_t pid = (pid_t)(word & PID_MASK);

    if ((uint32_t)pid == my_pid())
        return true; /* another thread of ours: alive as long as we are */
    id.pid = pid;
    if (__atomic_load_n(&r->holder_pid, __ATOMIC_ACQUIRE) == pid)
        id.start_time = __atomic_load_n(&r->holder_start, __ATOMIC_RELAXED);
    return dsm__procid_alive(&id);
}

/* We hold the word: finish according to the state. */
static int acquired(struct rlock *r, bool died)
{
    int st;

    record_holder(r);
    st = state_of(r);
    if (st == ST_LOST) {
        dsm_lock_release((dsm_lock *)(void *)r);
        if (tl_critical)
            dsm__critical_leave();
        return dsm__error(-ENOTRECOVERABLE, "the structure guarded by this lock was declared "
                                            "lost after a holder died");
    }
    if (died || st == ST_OWNER_DIED) {
        set_state(r, ST_OWNER_DIED);
        return -EOWNERDEAD;
    }
    return 0;
}

/* Take a dead holder's word; true if this caller inherited the lock. */
static bool take_over(struct rlock *r, uint32_t seen, uint32_t me)
{
    if (holder_alive(r, seen))
        return false;
    return cas_take(&r->word, &seen, me | WAITERS);
}

static int check(struct rlock *r)
{
    int st = state_of(r);

    if (st < 0)
        return dsm__error(DSM_ECORRUPT, "lock at %p is not an initialised dynshm lock",
                          (void *)r);
    if (st == ST_LOST)
        return dsm__error(-ENOTRECOVERABLE, "the structure guarded by this lock was declared "
                                            "lost after a holder died");
    return 0;
}

int dsm_lock_try_acquire(dsm_lock *lock)
{
    struct rlock *r = R(lock);
    uint32_t me = my_pid() & PID_MASK, v = 0;
    int rc;

    if ((rc = check(r)) < 0)
        return rc;
    if (cas_take(&r->word, &v, me))
        return acquired(r, false);
    if (take_over(r, v, me))
        return acquired(r, true);
    return dsm__error_silent(-EBUSY);
}

int dsm_lock_acquire(dsm_lock *lock, int64_t timeout_ns)
{
    struct rlock *r = R(lock);
    uint32_t me = my_pid() & PID_MASK, v = 0;
    int64_t deadline = 0, interval = 1000000, now;
    int rc;

    if ((rc = check(r)) < 0)
        return rc;
    if (cas_take(&r->word, &v, me))
        return acquired(r, false);
    if (timeout_ns >= 0)
        deadline = dsm__now_ns() + timeout_ns;
    for (;;) {
        int64_t slice = interval;

        v = __atomic_load_n(&r->word, __ATOMIC_RELAXED);
        if (v == 0) {
            /* We may have been a sleeper: keep WAITERS so others get woken. */
            if (cas_take(&r->word, &v, me | WAITERS))
                return acquired(r, false);
            continue;
        }
        if (!(v & WAITERS)) {
            if (!__atomic_compare_exchange_n(&r->word, &v, v | WAITERS, false,
                                             __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                continue;
            v |= WAITERS;
        }
        if (timeout_ns >= 0) {
            now = dsm__now_ns();
            if (now >= deadline)
                return dsm__error(-ETIMEDOUT, "timed out waiting for a lock held by process %d",
                                  (int)(v & PID_MASK));
            if (deadline - now < slice)
                slice = deadline - now;
        }
        rc = dsm__futex_wait(&r->word, v, slice);
        if (rc == -ETIMEDOUT) {
            /* A quiet interval: is the holder still there? */
            if (take_over(r, v, me))
                return acquired(r, true);
            if (interval < 64000000)
                interval *= 2;
        }
        if ((rc = check(r)) < 0)
            return rc;
    }
}

int dsm_lock_release(dsm_lock *lock)
{
    struct rlock *r = R(lock);
    uint32_t v = __atomic_load_n(&r->word, __ATOMIC_RELAXED);
    int st = state_of(r);

    if (st < 0)
        return dsm__error(DSM_ECORRUPT, "lock at %p is not an initialised dynshm lock",
                          (void *)r);
    if ((v & PID_MASK) != (my_pid() & PID_MASK))
        return dsm__error(-EPERM, "cannot release a lock this process does not hold");
    if (st == ST_OWNER_DIED)
        set_state(r, ST_LOST); /* not repaired: nobody may trust the structure */
    __atomic_store_n(&r->holder_pid, 0, __ATOMIC_RELEASE);
    v = __atomic_exchange_n(&r->word, 0, __ATOMIC_RELEASE);
    if (v & WAITERS)
        dsm__futex_wake(&r->word, 1);
    return 0;
}

int dsm_lock_mark_consistent(dsm_lock *lock)
{
    struct rlock *r = R(lock);
    uint32_t v = __atomic_load_n(&r->word, __ATOMIC_RELAXED);

    if ((v & PID_MASK) != (my_pid() & PID_MASK) || state_of(r) != ST_OWNER_DIED)
        return dsm__error(-EINVAL, "the lock is not held after a holder's death");
    set_state(r, ST_CONSISTENT);
    return 0;
}

bool dsm__lock_held_by_dead(dsm_lock *lock)
{
    struct rlock *r = R(lock);
    uint32_t v = __atomic_load_n(&r->word, __ATOMIC_RELAXED);

    return v != 0 && !holder_alive(r, v);
}

int dsm__lock_acquire_critical(dsm_lock *lock, int64_t timeout_ns)
{
    int rc;

    tl_critical = true;
    rc = dsm_lock_acquire(lock, timeout_ns);
    tl_critical = false;
    return rc;
}
