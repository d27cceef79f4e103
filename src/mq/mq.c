/* SPDX-License-Identifier: MIT */
/*
 * mq.c - a message queue's life: layout, attach, naming the peer, detach,
 * waiting for the peer, and mapping zero-copy references.
 *
 * Why a new queue rather than PostgreSQL's shm_mq: shm_mq wakes its peer
 * through latches (a signal or a self-pipe write per wake-up), takes a
 * spinlock to attach and detach, and learns of a dead peer only through a
 * background-worker handle polled by the caller.  Here the only shared
 * words are two counters and a sleeping flag per side; wake-ups are futex
 * calls made only when the peer really sleeps; and every wait is a series
 * of bounded futex sleeps that, between slices, asks the one liveness
 * predicate (dsm__procid_alive: pid and start time) whether the recorded
 * peer still runs, so a SIGKILLed peer is an -EPIPE within a slice, not a
 * hang, and costs the waiter a /proc read every MQ_SLICE_NS.  Before it
 * sleeps, a waiter spins for a budget that grows when waits end soon (the
 * peer was running) and halves when they do not, and only while the run
 * queue leaves a CPU to spare.
 *
 * Why no critical section (dsm__critical_enter) around sends: a sender that
 * dies mid-message leaves a frame the receiver discards, and a receiver
 * that dies leaves counters the sender no longer needs; a death never
 * leaves the queue's shared state inconsistent for a survivor, so it need
 * not escalate to a crash reset.
 *
 * The data path (send, receive) is in mq_io.c.
 */
#include "config.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dynshm/dsm.h>

#include "../common/futex.h"
#include "../common/internal.h"
#include "mq_int.h"

#define MQ_SLICE_NS (20 * INT64_C(1000000))  /* liveness checks while asleep */
#define MQ_SPIN_MIN_NS 500
#define MQ_SPIN_MAX_NS (40 * INT64_C(1000))  /* waking an idle CPU costs ~50 us */
#define MQ_SPIN_START_NS (8 * INT64_C(1000))
#define MQ_LOAD_CHECK_NS (50 * INT64_C(1000000)) /* how often to look at the run queue */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Is there a CPU to spare for spinning?  Spinning only pays when the peer
 * is running on another CPU; when more threads are runnable than there are
 * CPUs (by more than one: a sample is an instant), a spinner takes the CPU
 * the peer (or someone else) needs, and a sleep lets the peer fill the
 * ring in one go instead.  The kernel's count
 * of runnable threads (the fourth field of /proc/loadavg, "running/total")
 * is read at most every MQ_LOAD_CHECK_NS per process; if it cannot be
 * read, spinning stays allowed.
 */
static _Atomic int64_t load_checked_ns;
static _Atomic int spin_allowed = 1;

static bool cpus_to_spare(int64_t now)
{
    int64_t last = atomic_load_explicit(&load_checked_ns, memory_order_relaxed);
    static _Atomic long ncpus;
    char buf[128];
    ssize_t n;
    int fd;

    if (now - last < MQ_LOAD_CHECK_NS ||
        !atomic_compare_exchange_strong_explicit(&load_checked_ns, &last, now,
                                                 memory_order_relaxed, memory_order_relaxed))
        return atomic_load_explicit(&spin_allowed, memory_order_relaxed) != 0;
    if (atomic_load_explicit(&ncpus, memory_order_relaxed) <= 0)
        atomic_store_explicit(&ncpus, sysconf(_SC_NPROCESSORS_ONLN), memory_order_relaxed);
    fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0) {
        char *slash;
        long running;

        buf[n] = '\0';
        slash = strchr(buf, '/');
        if (slash != NULL) {
            char *p = slash;

            while (p > buf && p[-1] >= '0' && p[-1] <= '9')
                p--;
            running = strtol(p, NULL, 10);
            /* One thread more than CPUs is tolerated: a sample is an instant. */
            atomic_store_explicit(&spin_allowed,
                                  running <= atomic_load_explicit(&ncpus, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
        }
    }
    return atomic_load_explicit(&spin_allowed, memory_order_relaxed) != 0;
}

size_t dsm_mq_estimate(size_t ring_bytes)
{
    unsigned b = MQ_MIN_LOG2;

    while (b <= MQ_MAX_LOG2 && ((uint64_t)1 << b) < ring_bytes)
        b++;
    if (b > MQ_MAX_LOG2 || ((uint64_t)1 << b) > SIZE_MAX - MQ_HEADER_SIZE)
        return 0;
    return MQ_HEADER_SIZE + ((size_t)1 << b);
}

int dsm_mq_create(void *addr, size_t size)
{
    struct mq_shared *sh = addr;
    unsigned b = MQ_MIN_LOG2;

    if (addr == NULL || ((uintptr_t)addr & 63) != 0)
        return dsm__error(-EINVAL, "a message queue needs a 64-byte aligned address");
    if (size < MQ_HEADER_SIZE + ((size_t)1 << MQ_MIN_LOG2))
        return dsm__error(-ENOSPC, "%zu bytes cannot hold a message queue (%zu at least)", size,
                          (size_t)MQ_HEADER_SIZE + ((size_t)1 << MQ_MIN_LOG2));
    while (b < MQ_MAX_LOG2 && ((uint64_t)1 << (b + 1)) <= size - MQ_HEADER_SIZE)
        b++;
    memset(sh, 0, MQ_HEADER_SIZE);
    sh->version = MQ_VERSION;
    sh->log2ring = b;
    atomic_store_explicit(&sh->magic, MQ_MAGIC, memory_order_release);
    return 0;
}

static int validate(const struct mq_shared *sh, size_t size)
{
    if (size < MQ_HEADER_SIZE || atomic_load_explicit(&sh->magic, memory_order_acquire) != MQ_MAGIC)
        return dsm__error(DSM_ECORRUPT, "no message queue at this address (bad magic)");
    if (sh->version != MQ_VERSION)
        return dsm__error(DSM_ECORRUPT, "message queue has layout version %u, not %u",
                          (unsigned)sh->version, (unsigned)MQ_VERSION);
    if (sh->log2ring < MQ_MIN_LOG2 || sh->log2ring > MQ_MAX_LOG2 ||
        ((uint64_t)1 << sh->log2ring) > size - MQ_HEADER_SIZE)
        return dsm__error(DSM_ECORRUPT, "message queue ring of 2^%u bytes does not fit in %zu",
                          (unsigned)sh->log2ring, size);
    return 0;
}

/* Claim an end for writing its identity: CAS its state to BUSY. */
static int claim_end(struct mq_end *e, uint32_t *was, bool for_attach)
{
    uint32_t st = atomic_load_explicit(&e->state, memory_order_acquire);

    for (int tries = 0;; tries++) {
        if (st == MQ_BUSY) {
            if (tries > 10000)
                return dsm__error(-EBUSY, "message queue end is being claimed by another process");
            sched_yield();
            st = atomic_load_explicit(&e->state, memory_order_acquire);
            continue;
        }
        if (st != MQ_EMPTY && st != MQ_EXPECTED)
            return for_attach ? dsm__error(-EBUSY, "message queue end is or was attached "
                                           "(each end is attached once)")
                              : dsm__error(-EALREADY, "message queue peer already attached");
        if (atomic_compare_exchange_weak_explicit(&e->state, &st, MQ_BUSY, memory_order_acquire,
                                                  memory_order_acquire)) {
            *was = st;
            return 0;
        }
    }
}

int dsm_mq_attach(void *addr, size_t size, dsm_mq_role role, dsm_mq **out)
{
    struct mq_shared *sh = addr;
    struct dsm__procid self;
    struct mq_end *e;
    uint64_t w, r;
    uint32_t was;
    dsm_mq *mq;
    int rc;

    *out = NULL;
    if (role != DSM_MQ_SENDER && role != DSM_MQ_RECEIVER)
        return dsm__error(-EINVAL, "message queue role must be DSM_MQ_SENDER or DSM_MQ_RECEIVER");
    if (addr == NULL || ((uintptr_t)addr & 63) != 0)
        return dsm__error(-EINVAL, "a message queue needs a 64-byte aligned address");
    if ((rc = validate(sh, size)) != 0)
        return rc;
    mq = calloc(1, sizeof(*mq));
    if (mq == NULL)
        return dsm__error(-ENOMEM, "could not allocate a message queue handle: %m");
    dsm__procid_self(&self);
    e = &sh->end[role];
    if ((rc = claim_end(e, &was, true)) != 0) {
        free(mq);
        return rc;
    }
    if (was == MQ_EXPECTED && !dsm__procid_same(&e->id, &self)) {
        atomic_store_explicit(&e->state, MQ_EXPECTED, memory_order_release);
        free(mq);
        return dsm__error(-EPERM, "message queue %s end was promised to process %d",
                          role == DSM_MQ_SENDER ? "sender" : "receiver", (int)e->id.pid);
    }
    e->id = self;
    atomic_store_explicit(&e->state, MQ_ATTACHED, memory_order_release);

    mq->sh = sh;
    mq->ring = (char *)addr + MQ_HEADER_SIZE;
    mq->size = (uint64_t)1 << sh->log2ring;
    mq->mask = mq->size - 1;
    mq->role = role;
    mq->spin_ns = MQ_SPIN_START_NS;
    mq->last_check_ns = dsm__now_ns();
    w = atomic_load_explicit(&sh->write_pos, memory_order_acquire);
    r = atomic_load_explicit(&sh->read_pos, memory_order_acquire);
    if (w - r > mq->size || ((w | r) & 7) != 0) {
        dsm_mq_detach(mq);
        return dsm__error(DSM_ECORRUPT, "message queue counters are inconsistent "
                          "(written %llu, read %llu)", (unsigned long long)w,
                          (unsigned long long)r);
    }
    mq->pos = role == DSM_MQ_SENDER ? w : r;
    mq->peer_cache = role == DSM_MQ_SENDER ? r : w;
    mq->published = r;
    *out = mq;
    return 0;
}

int dsm_mq_set_peer(dsm_mq *mq, pid_t pid)
{
    struct mq_end *e = &mq->sh->end[1 - mq->role];
    struct dsm__procid id = {.pid = (int32_t)pid, .reserved = 0, .start_time = 0};
    uint32_t was;
    int rc;

    if (pid <= 0)
        return dsm__error(-EINVAL, "a message queue peer must be a process id");
    id.start_time = dsm__proc_start_time(pid);
    if (id.start_time == 0) {
        mq->peer_gone = true;
        mq->gone_pid = (int32_t)pid;
        return dsm__error(-ESRCH, "message queue peer %d is not running", (int)pid);
    }
    if (atomic_load_explicit(&e->state, memory_order_acquire) == MQ_ATTACHED &&
        dsm__procid_same(&e->id, &id))
        return 0;
    if ((rc = claim_end(e, &was, false)) != 0)
        return rc;
    e->id = id;
    atomic_store_explicit(&e->state, MQ_EXPECTED, memory_order_release);
    return 0;
}

void dsm_mq_detach(dsm_mq *mq)
{
    struct mq_shared *sh;

    if (mq == NULL)
        return;
    sh = mq->sh;
    if (mq->role == DSM_MQ_RECEIVER) {
        /* Nothing more will be read: give the sender all the space back. */
        mq->pos += mq->consume;
        atomic_store_explicit(&sh->read_pos, mq->pos, memory_order_release);
    }
    atomic_store_explicit(&sh->end[mq->role].state, MQ_DETACHED, memory_order_seq_cst);
    dsm__mq_wake_peer(mq, true);
    free(mq->buf);
    free(mq);
}

void dsm__mq_wake_peer(dsm_mq *mq, bool always)
{
    dsm_mq_role peer = (dsm_mq_role)(1 - mq->role);

    _Atomic uint32_t *sleeping = mq_sleeping(mq->sh, peer);

    /*
     * Clear the flag as we wake: until the woken side runs again (it may
     * wait a while for a CPU) further publications make no system call.
     * It sets the flag again before it sleeps again.
     */
    if (always || (atomic_load_explicit(sleeping, memory_order_seq_cst) &&
                   atomic_exchange_explicit(sleeping, 0, memory_order_seq_cst))) {
        atomic_fetch_add_explicit(mq_wake(mq->sh, peer), 1, memory_order_release);
        (void)dsm__futex_wake((const uint32_t *)mq_wake(mq->sh, peer), 1);
    }
}

/* -EPIPE, with the same message every time it is reported. */
static int gone(const dsm_mq *mq)
{
    const char *who = mq->role == DSM_MQ_SENDER ? "receiver" : "sender";

    if (mq->gone_pid > 0)
        return dsm__error(-EPIPE, "the message queue's %s (process %d) died", who,
                          (int)mq->gone_pid);
    return dsm__error(-EPIPE, "the message queue's %s has detached", who);
}

int dsm__mq_peer_status(dsm_mq *mq, bool check_alive)
{
    const struct mq_end *e = &mq->sh->end[1 - mq->role];
    struct dsm__procid id;
    uint32_t st;

    if (mq->peer_gone)
        return gone(mq);
    st = atomic_load_explicit(&e->state, memory_order_acquire);
    switch (st) {
    case MQ_EMPTY:
    case MQ_BUSY:
        return 0;
    case MQ_EXPECTED:
    case MQ_ATTACHED:
        if (!check_alive)
            return 0;
        id = e->id;
        if (id.pid <= 0)
            return dsm__error(DSM_ECORRUPT, "message queue peer has no process id");
        if (dsm__procid_alive(&id))
            return 0;
        mq->peer_gone = true;
        mq->gone_pid = id.pid;
        return gone(mq);
    case MQ_DETACHED:
        mq->peer_gone = true;
        return gone(mq);
    default:
        return dsm__error(DSM_ECORRUPT, "message queue peer state %u is not valid", (unsigned)st);
    }
}

/*
 * The spin budget follows the waits.  A wait that ended within
 * MQ_SPIN_MAX_NS (in the spin, or soon after it gave up and slept) means
 * the peer was making progress on another CPU and a spin of twice that
 * long would have caught it: grow the budget to that.  A longer wait means
 * the peer was asleep or busy elsewhere, and spinning was wasted: halve
 * it.  Whether a CPU is free to spin on at all is decided separately
 * (cpus_to_spare), so a loaded machine does not teach us to spin.
 */
static void adapt_spin(dsm_mq *mq, int64_t waited)
{
    if (waited < MQ_SPIN_MAX_NS) {
        if (2 * waited > mq->spin_ns)
            mq->spin_ns = 2 * waited < MQ_SPIN_MAX_NS ? 2 * waited : MQ_SPIN_MAX_NS;
    } else {
        mq->spin_ns /= 2;
        if (mq->spin_ns < MQ_SPIN_MIN_NS)
            mq->spin_ns = MQ_SPIN_MIN_NS;
    }
}

int dsm__mq_wait(dsm_mq *mq, int (*ready)(dsm_mq *), int64_t deadline_ns, bool nowait)
{
    _Atomic uint32_t *sleeping = mq_sleeping(mq->sh, mq->role);
    _Atomic uint32_t *wake = mq_wake(mq->sh, mq->role);
    int64_t start, now, budget;
    int r;

    if ((r = ready(mq)) != 0)
        return r > 0 ? 0 : r;
    if (nowait)
        return dsm__error_silent(-EAGAIN); /* an event loop's normal case: no message */

    /*
     * Spin first: 32 pauses always (about a futex round trip; no clock is
     * read if the peer answers within them, as it does in a busy
     * exchange), then up to the adaptive budget if a CPU is to spare, or
     * the minimum if not.
     */
    start = 0;
    budget = 0;
    for (unsigned i = 1;; i++) {
        cpu_relax();
        if ((r = ready(mq)) != 0) {
            if (r > 0 && start != 0)
                adapt_spin(mq, dsm__now_ns() - start);
            return r > 0 ? 0 : r;
        }
        if ((i & 31) == 0) {
            now = dsm__now_ns();
            if (start == 0) {
                start = now;
                budget = cpus_to_spare(now) ? mq->spin_ns : MQ_SPIN_MIN_NS;
            }
            if (now - start >= budget || (deadline_ns >= 0 && now >= deadline_ns))
                break;
        }
    }

    /*
     * Sleep.  The clock is read only when a sleep timed out or the caller
     * has a deadline: a peer that wakes us is alive, so liveness needs
     * checking only after a whole slice without a wake-up.
     */
    now = start;
    for (;;) {
        uint32_t w = atomic_load_explicit(wake, memory_order_acquire);
        int64_t slice = MQ_SLICE_NS;
        int fr;

        atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
        /* ready() reads the peer's counter with acquire loads: without this
         * fence C11 would let them pass the store above (x86 does not). */
        atomic_thread_fence(memory_order_seq_cst);
        if ((r = ready(mq)) != 0) {
            atomic_store_explicit(sleeping, 0, memory_order_relaxed);
            if (r > 0)
                adapt_spin(mq, dsm__now_ns() - start);
            return r > 0 ? 0 : r;
        }
        if (deadline_ns >= 0)
            now = dsm__now_ns();
        if (now - mq->last_check_ns >= MQ_SLICE_NS) {
            mq->last_check_ns = now;
            if ((r = dsm__mq_peer_status(mq, true)) != 0) {
                int again;

                atomic_store_explicit(sleeping, 0, memory_order_relaxed);
                /* ready() now sees peer_gone: drain what is left, or report it. */
                if ((again = ready(mq)) != 0)
                    return again > 0 ? 0 : again;
                return r;
            }
        }
        if (deadline_ns >= 0) {
            if (now >= deadline_ns) {
                atomic_store_explicit(sleeping, 0, memory_order_relaxed);
                return dsm__error(-ETIMEDOUT, "timed out waiting for the message queue's %s",
                                  mq->role == DSM_MQ_SENDER ? "receiver" : "sender");
            }
            slice = MQ_SLICE_NS - (now - mq->last_check_ns);
            if (deadline_ns - now < slice)
                slice = deadline_ns - now;
        }
        if (slice <= 0)
            slice = 1; /* never < 0: that would mean no limit */
        fr = dsm__futex_wait((const uint32_t *)wake, w, slice);
        atomic_store_explicit(sleeping, 0, memory_order_relaxed);
        if (fr == -ETIMEDOUT && deadline_ns < 0)
            now = dsm__now_ns();
    }
}

int dsm_mq_ref_map(const dsm_mq_ref *ref, void **addr)
{
    dsm_segment *seg;
    size_t len;
    int rc;

    *addr = NULL;
    seg = dsm_find_mapping(ref->segment);
    if (seg == NULL && (rc = dsm_attach(ref->segment, &seg)) != 0)
        return rc;
    len = dsm_segment_map_length(seg);
    if (ref->offset > len || ref->length > len - ref->offset)
        return dsm__error(-ERANGE, "reference to %llu bytes at %llu lies outside its segment "
                          "of %zu bytes", (unsigned long long)ref->length,
                          (unsigned long long)ref->offset, len);
    *addr = (char *)dsm_segment_address(seg) + ref->offset;
    return 0;
}
