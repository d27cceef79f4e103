/* SPDX-License-Identifier: MIT */
/*
 * bench/mq_floor.h - the floor for the message queue: the smallest correct
 * single-producer, single-consumer ring of length-prefixed messages with
 * futex wake-ups, written for the benchmark only.
 *
 * It does what any such ring must (cached peer counters, an eventcount so
 * a wake-up system call is made only for a sleeping peer, messages larger
 * than the ring carried in pieces) and nothing else: no validation, no
 * peer liveness, no timeouts, no resumable non-blocking calls, a fixed
 * spin before sleeping (the benchmark tries several and keeps the best),
 * or, for the spinning floor, no sleeping at all.
 * dsm_mq is measured against it in the same run.
 */
#ifndef DSM_BENCH_MQ_FLOOR_H
#define DSM_BENCH_MQ_FLOOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The same cache-line layout as dsm_mq: counters apart, sleep words apart. */
struct floor_shared {
    _Alignas(128) _Atomic uint64_t wpos;
    _Alignas(128) _Atomic uint64_t rpos;
    _Alignas(128) _Atomic uint32_t tx_sleep;
    _Atomic uint32_t tx_wake, rx_sleep, rx_wake;
    _Alignas(128) char ring[];
};

struct floor_end {
    struct floor_shared *sh;
    uint64_t size, mask, pos, cache;
    int64_t spin_ns; /* spin this long before sleeping; < 0: spin only, never sleep */
};

size_t floor_bytes(size_t ring);
void floor_init(void *mem, size_t ring);
void floor_end_init(struct floor_end *e, void *mem, size_t ring, bool sender, int64_t spin_ns);
void floor_send(struct floor_end *e, const void *data, size_t len);
/* Receive into dst (cap bytes at least the message); returns its length. */
size_t floor_receive(struct floor_end *e, void *dst);

#endif
