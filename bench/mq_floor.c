/* SPDX-License-Identifier: MIT */
/*
 * bench/mq_floor.c - the floor ring (see mq_floor.h).
 */
#include "config.h"

#include <string.h>

#include "common/futex.h"
#include "mq_floor.h"

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

size_t floor_bytes(size_t ring)
{
    return sizeof(struct floor_shared) + ring;
}

void floor_init(void *mem, size_t ring)
{
    memset(mem, 0, sizeof(struct floor_shared));
    (void)ring;
}

void floor_end_init(struct floor_end *e, void *mem, size_t ring, bool sender, int64_t spin_ns)
{
    (void)sender;
    e->sh = mem;
    e->size = ring;
    e->mask = ring - 1;
    e->pos = 0;
    e->cache = 0;
    e->spin_ns = spin_ns;
}

/* Wait until *counter differs from `seen`; sleep on wake after a short spin. */
static uint64_t wait_change(struct floor_end *e, _Atomic uint64_t *counter, uint64_t seen,
                            bool need_more_than, _Atomic uint32_t *sleeping,
                            _Atomic uint32_t *wake)
{
    uint64_t v, start = (uint64_t)dsm__now_ns();

    (void)need_more_than;
    for (unsigned i = 1;; i++) {
        v = atomic_load_explicit(counter, memory_order_acquire);
        if (v != seen)
            return v;
        relax();
        if (e->spin_ns >= 0 && (i & 31) == 0 &&
            (int64_t)((uint64_t)dsm__now_ns() - start) > e->spin_ns)
            break;
    }
    for (;;) {
        uint32_t w = atomic_load_explicit(wake, memory_order_acquire);

        atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
        v = atomic_load_explicit(counter, memory_order_seq_cst);
        if (v != seen) {
            atomic_store_explicit(sleeping, 0, memory_order_relaxed);
            return v;
        }
        dsm__futex_wait((const uint32_t *)wake, w, -1);
        atomic_store_explicit(sleeping, 0, memory_order_relaxed);
    }
}

static inline void wake_if_sleeping(_Atomic uint32_t *sleeping, _Atomic uint32_t *wake)
{
    if (atomic_load_explicit(sleeping, memory_order_seq_cst) &&
        atomic_exchange_explicit(sleeping, 0, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(wake, 1, memory_order_release);
        dsm__futex_wake((const uint32_t *)wake, 1);
    }
}

static void put(struct floor_end *e, uint64_t pos, const void *src, size_t n)
{
    uint64_t at = pos & e->mask, first = e->size - at;

    if (n <= first) {
        memcpy(e->sh->ring + at, src, n);
    } else {
        memcpy(e->sh->ring + at, src, first);
        memcpy(e->sh->ring, (const char *)src + first, n - first);
    }
}

static void get(struct floor_end *e, uint64_t pos, void *dst, size_t n)
{
    uint64_t at = pos & e->mask, first = e->size - at;

    if (n <= first) {
        memcpy(dst, e->sh->ring + at, n);
    } else {
        memcpy(dst, e->sh->ring + at, first);
        memcpy((char *)dst + first, e->sh->ring, n - first);
    }
}

void floor_send(struct floor_end *e, const void *data, size_t len)
{
    struct floor_shared *sh = e->sh;
    uint64_t word = len, frame = 8 + ((len + 7) & ~(uint64_t)7), done = 0;

    while (done < frame) {
        uint64_t room = e->size - (e->pos - e->cache), n;

        if (room == 0) {
            e->cache = atomic_load_explicit(&sh->rpos, memory_order_acquire);
            if (e->pos - e->cache == e->size)
                e->cache = wait_change(e, &sh->rpos, e->cache, true, &sh->tx_sleep,
                                       &sh->tx_wake);
            continue;
        }
        n = frame - done < room ? frame - done : room;
        {
            uint64_t p = e->pos, d = done, k = n;

            if (d == 0) {
                memcpy(sh->ring + (p & e->mask), &word, 8);
                p += 8;
                d = 8;
                k -= 8;
            }
            if (k > 0 && d < 8 + len)
                put(e, p, (const char *)data + (d - 8), 8 + len - d < k ? 8 + len - d : k);
        }
        e->pos += n;
        done += n;
        atomic_store_explicit(&sh->wpos, e->pos, memory_order_seq_cst);
        wake_if_sleeping(&sh->rx_sleep, &sh->rx_wake);
    }
}

size_t floor_receive(struct floor_end *e, void *dst)
{
    struct floor_shared *sh = e->sh;
    uint64_t word, len = 0, frame = 0, done = 0;

    while (done == 0 || done < frame) {
        uint64_t avail = e->cache - e->pos, n;

        if (avail == 0) {
            e->cache = atomic_load_explicit(&sh->wpos, memory_order_acquire);
            if (e->cache == e->pos) {
                /* publish before sleeping, as any correct ring must */
                atomic_store_explicit(&sh->rpos, e->pos, memory_order_seq_cst);
                wake_if_sleeping(&sh->tx_sleep, &sh->tx_wake);
                e->cache = wait_change(e, &sh->wpos, e->pos, true, &sh->rx_sleep, &sh->rx_wake);
            }
            continue;
        }
        if (done == 0) {
            memcpy(&word, sh->ring + (e->pos & e->mask), 8);
            len = word;
            frame = 8 + ((len + 7) & ~(uint64_t)7);
            e->pos += 8;
            done = 8;
            avail -= 8;
            if (avail == 0)
                continue;
        }
        n = frame - done < avail ? frame - done : avail;
        if (done < 8 + len)
            get(e, e->pos, (char *)dst + (done - 8), 8 + len - done < n ? 8 + len - done : n);
        e->pos += n;
        done += n;
        /* publish consumption in quarters of the ring, or when the sender sleeps */
        if (atomic_load_explicit(&sh->tx_sleep, memory_order_relaxed) ||
            e->pos - atomic_load_explicit(&sh->rpos, memory_order_relaxed) >= e->size / 4) {
            atomic_store_explicit(&sh->rpos, e->pos, memory_order_seq_cst);
            wake_if_sleeping(&sh->tx_sleep, &sh->tx_wake);
        }
    }
    return len;
}
