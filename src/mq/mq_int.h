/* SPDX-License-Identifier: MIT */
/*
 * mq_int.h - the shared layout of a message queue and this process's handle.
 *
 * Shared layout (offsets from the queue's address; 128-byte groups keep
 * what each side writes off the other side's cache lines, adjacent-line
 * prefetch included):
 *     0  constants and the two ends (state + identity), written at attach
 *   128  write_pos, written by the sender at every send
 *   256  read_pos, written by the receiver in batches
 *   384  the sleeping flags and wake words, written only around sleeps, so
 *        checking "does the peer sleep?" after each publication reads a
 *        line that stays in both caches
 *   512  the ring, a power of two bytes
 * write_pos and read_pos count bytes since creation (never wrap in
 * practice: 2^64); read_pos <= write_pos <= read_pos + ring size, both
 * multiples of 8, checked whenever one side reads the other's.
 *
 * A message is a frame: an 8-byte word (length in the low 40 bits,
 * MQ_FLAG_REF for a dsm_mq_ref) then the bytes, padded to 8.  Frames are
 * written in pieces when the ring is short of space, so a frame may be
 * larger than the ring.
 *
 * Sleeping (an eventcount per side): a side that must wait reads its wake
 * word, sets its sleeping flag, re-checks the condition and sleeps on the
 * wake word.  The other side, after publishing its counter, reads the
 * flag, and only if it is set clears it, bumps the wake word and calls
 * futex wake (clearing it means one system call per sleep, however many
 * messages follow before the woken side gets a CPU).
 * Both the flag store and the counter store are sequentially consistent
 * with the load that follows each, so one of the two always sees the
 * other: no lost wake-up, and no system call while the peer is awake.
 */
#ifndef DYNSHM_MQ_INT_H
#define DYNSHM_MQ_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <dynshm/mq.h>

#include "../common/procid.h"

#define MQ_MAGIC UINT64_C(0x64736d6d710a0001) /* "dsmmq\n" 0 1 */
#define MQ_VERSION 1
#define MQ_HEADER_SIZE 512
#define MQ_MIN_LOG2 6
#define MQ_MAX_LOG2 40

#define MQ_FLAG_REF (UINT64_C(1) << 63)
#define MQ_LEN_MASK ((UINT64_C(1) << 40) - 1)

/* States of an end: who is (or will be) there. */
enum mq_end_state {
    MQ_EMPTY = 0,    /* nobody yet, nobody named */
    MQ_EXPECTED = 1, /* id names the process that will attach */
    MQ_ATTACHED = 2, /* id is attached */
    MQ_DETACHED = 3, /* left; never attached again */
    MQ_BUSY = 4      /* an attach or set_peer is writing id */
};

struct mq_end {
    _Atomic uint32_t state;
    uint32_t reserved;
    struct dsm__procid id;
};

struct mq_shared {
    _Atomic uint64_t magic; /* stored last at creation (release) */
    uint32_t version;
    uint32_t log2ring;
    uint64_t reserved0[2];
    struct mq_end end[2]; /* indexed by dsm_mq_role */
    char pad0[128 - 32 - 2 * sizeof(struct mq_end)];

    _Atomic uint64_t write_pos; /* written by the sender, every send */
    char pad1[128 - 8];

    _Atomic uint64_t read_pos;  /* written by the receiver, in batches */
    char pad2[128 - 8];

    /* Written only when a side goes to sleep or is woken. */
    _Atomic uint32_t sender_sleeping;
    _Atomic uint32_t sender_wake;
    _Atomic uint32_t receiver_sleeping;
    _Atomic uint32_t receiver_wake;
    char pad3[128 - 16];
};

_Static_assert(sizeof(struct mq_shared) == MQ_HEADER_SIZE, "queue header layout");

struct dsm_mq {
    struct mq_shared *sh;
    char *ring;
    uint64_t size, mask;
    dsm_mq_role role;
    bool peer_gone;        /* the peer detached or died: final */
    int32_t gone_pid;      /* > 0: it died (this pid); 0: it detached */
    uint64_t pos;          /* sender: bytes written; receiver: bytes consumed */
    uint64_t peer_cache;   /* the peer's counter as last read */
    int64_t spin_ns;       /* adaptive spin budget before sleeping */
    int64_t last_check_ns; /* last liveness check of the peer */

    /* sender: the frame being written (kept across -EAGAIN / -ETIMEDOUT) */
    bool sending;
    uint64_t s_word, s_done;

    /* receiver */
    uint64_t published;    /* read_pos as last stored */
    uint64_t consume;      /* bytes of the last message returned in place */
    bool receiving;        /* reassembling a frame into buf */
    uint64_t r_word, r_done;
    char *buf;
    size_t bufcap;
};

/* Round up to the frame unit. */
static inline uint64_t mq_round8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* Sleep-side and wake-side words of a role. */
static inline _Atomic uint32_t *mq_sleeping(struct mq_shared *sh, dsm_mq_role r)
{
    return r == DSM_MQ_SENDER ? &sh->sender_sleeping : &sh->receiver_sleeping;
}

static inline _Atomic uint32_t *mq_wake(struct mq_shared *sh, dsm_mq_role r)
{
    return r == DSM_MQ_SENDER ? &sh->sender_wake : &sh->receiver_wake;
}

/* Wake the other side if (and only if) it sleeps (always: in any case);
 * call after publishing. */
void dsm__mq_wake_peer(dsm_mq *mq, bool always);

/* 0: the peer may still make progress; -EPIPE: it detached or died;
 * DSM_ECORRUPT.  check_alive also asks whether its process runs. */
int dsm__mq_peer_status(dsm_mq *mq, bool check_alive);

/*
 * Wait until ready(mq) returns non-zero: 1 -> 0, < 0 -> that error.  A
 * short adaptive spin, then futex sleeps in slices that check the peer's
 * life.  deadline_ns: CLOCK_MONOTONIC, < 0 none; nowait: -EAGAIN at once.
 */
int dsm__mq_wait(dsm_mq *mq, int (*ready)(dsm_mq *), int64_t deadline_ns, bool nowait);

#endif /* DYNSHM_MQ_INT_H */
