/* SPDX-License-Identifier: MIT */
/*
 * dynshm/mq.h - a single-reader, single-writer message queue in shared memory.
 *
 * A ring of length-prefixed messages placed in any shared buffer (a
 * segment, or a chunk of one found through a table of contents, see
 * dynshm/toc.h).  One process attaches as the sender, one as the receiver;
 * each gets a process-local handle.  Messages of any size up to
 * DSM_MQ_MAX_MESSAGE go through, those larger than the ring in pieces that
 * the receiver reassembles.  Nothing is locked: the two sides share only
 * two counters, and a side sleeps on a futex only when it has to, and is
 * woken only when it sleeps.
 *
 * Waiting.  Every call that may wait takes timeout_ms: -1 waits as long as
 * the peer can still make progress, 0 never waits (-EAGAIN, "would block",
 * for event loops), > 0 waits at most that long (-ETIMEDOUT).  A send that
 * returned -EAGAIN or -ETIMEDOUT may have written part of its message:
 * call it again with the same message to finish it (or detach).
 *
 * A dead peer is never a hang.  When the peer detaches, the survivor gets
 * -EPIPE once the complete messages sent before are received.  When the
 * peer is killed, the survivor notices within 100 ms (its identity, pid and
 * start time, is recorded in the queue) and gets the same -EPIPE; a message
 * cut short by the death is discarded.  A peer that never attaches is
 * noticed if its process was named with dsm_mq_set_peer() and dies.
 *
 * Error convention: see dynshm/common.h.  A queue whose shared header or
 * counters fail validation is DSM_ECORRUPT, never a crash.
 */
#ifndef DYNSHM_MQ_H
#define DYNSHM_MQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dynshm/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsm_mq dsm_mq;

/* The two ends of a queue. */
typedef enum dsm_mq_role { DSM_MQ_SENDER = 0, DSM_MQ_RECEIVER = 1 } dsm_mq_role;

/* The largest message: 1 GiB.  Larger sends fail with -EMSGSIZE. */
#define DSM_MQ_MAX_MESSAGE ((size_t)1 << 30)

/* dsm_mq_receive() returns this (> 0) for a reference made by dsm_mq_send_ref(). */
#define DSM_MQ_REF 1

/*
 * Zero-copy hand-over: a reference to len bytes at offset in a segment both
 * sides can map, instead of the bytes themselves.  tag is the application's.
 */
typedef struct dsm_mq_ref {
    dsm_handle segment;
    uint64_t offset;
    uint64_t length;
    uint64_t tag;
} dsm_mq_ref;

/*
 * Bytes to reserve for a queue whose ring holds at least ring_bytes (the
 * ring is a power of two, 64 bytes at least).  0 if too large.
 */
DSM_EXPORT size_t dsm_mq_estimate(size_t ring_bytes);

/*
 * Lay out an empty queue in size bytes at addr (64-byte aligned): the ring
 * is the largest power of two that fits behind the header.  Neither end is
 * attached.  -ENOSPC if size is too small for a 64-byte ring.
 */
DSM_EXPORT int dsm_mq_create(void *addr, size_t size);

/*
 * Attach to the queue at addr (this process's mapping, size bytes) as role.
 * -EBUSY if that end is taken (each end is attached once in a queue's
 * life), -EPERM if dsm_mq_set_peer() named another process for it,
 * DSM_ECORRUPT if the header fails validation.
 */
DSM_EXPORT int dsm_mq_attach(void *addr, size_t size, dsm_mq_role role, dsm_mq **out);

/*
 * Name the process that will attach the other end (before it does), so
 * that waiting for it is bounded by its life.  -EALREADY if the other end
 * is already attached (by a different process), -ESRCH if pid is not
 * running (the queue then treats the peer as dead).
 */
DSM_EXPORT int dsm_mq_set_peer(dsm_mq *mq, pid_t pid);

/*
 * Leave the queue: the peer gets -EPIPE once it has received what was sent.
 * Frees the handle.  NULL is fine.
 */
DSM_EXPORT void dsm_mq_detach(dsm_mq *mq);

/* Send len bytes; see "Waiting" above.  -EPIPE if the receiver is gone. */
DSM_EXPORT int dsm_mq_send(dsm_mq *mq, const void *data, size_t len, int timeout_ms);

/* Send one message gathered from iovcnt buffers. */
DSM_EXPORT int dsm_mq_sendv(dsm_mq *mq, const struct iovec *iov, int iovcnt, int timeout_ms);

/* Send a zero-copy reference (received as DSM_MQ_REF). */
DSM_EXPORT int dsm_mq_send_ref(dsm_mq *mq, const dsm_mq_ref *ref, int timeout_ms);

/*
 * Receive the next message: *data points to it (inside the ring when it
 * lies there in one piece, else in a buffer of the handle) and stays valid
 * until the next call on this handle.  Returns 0 for a message,
 * DSM_MQ_REF when *data is a dsm_mq_ref (*len its size), or an error:
 * -EAGAIN, -ETIMEDOUT, -EPIPE (sender gone and everything received),
 * -ENOMEM, DSM_ECORRUPT.
 */
DSM_EXPORT int dsm_mq_receive(dsm_mq *mq, void **data, size_t *len, int timeout_ms);

/*
 * This process's address of a reference's bytes: the segment is found
 * among this process's mappings or attached (with the current resource
 * owner), and offset + length are checked against it.
 */
DSM_EXPORT int dsm_mq_ref_map(const dsm_mq_ref *ref, void **addr);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_MQ_H */
