/* SPDX-License-Identifier: MIT */
/*
 * mq_io.c - the data path of a message queue: send, gather, receive.
 *
 * Why it is shaped this way: the cost of a small message is dominated by
 * cache-line traffic between the two CPUs, so each side writes only its
 * own counter group and reads the other's only when its cached copy says
 * it must (the sender re-reads read_pos only when the ring looks full, the
 * receiver re-reads write_pos only when it looks empty).  The receiver
 * publishes what it consumed lazily, as PostgreSQL does (after a quarter
 * of the ring), but also at once when the sender is asleep waiting for
 * space and always before it sleeps itself, so batching never costs the
 * sender a wait.  A message that lies in one piece in the ring is handed
 * to the caller in place and consumed at the next call; others are copied
 * into the handle's buffer, which is how frames larger than the ring are
 * reassembled.
 *
 * Everything read from the shared counters is checked (w - r never above
 * the ring size, multiples of 8), and a frame's length word is checked
 * against DSM_MQ_MAX_MESSAGE before anything is copied, so a scribbled
 * queue is DSM_ECORRUPT: every copy stays inside the ring and the buffer.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/futex.h"
#include "../common/internal.h"
#include "mq_int.h"

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : dsm__now_ns() + (int64_t)timeout_ms * 1000000;
}

static int corrupt_counters(const dsm_mq *mq, uint64_t w, uint64_t r)
{
    (void)mq;
    return dsm__error(DSM_ECORRUPT, "message queue counters are inconsistent (written %llu, "
                      "read %llu)", (unsigned long long)w, (unsigned long long)r);
}

/* ---- ring copies ------------------------------------------------------------- */

static void ring_put(dsm_mq *mq, uint64_t pos, const void *src, size_t n)
{
    uint64_t at = pos & mq->mask, first = mq->size - at;

    if (n <= first) {
        memcpy(mq->ring + at, src, n);
    } else {
        memcpy(mq->ring + at, src, first);
        memcpy(mq->ring, (const char *)src + first, n - first);
    }
}

static void ring_get(const dsm_mq *mq, uint64_t pos, void *dst, size_t n)
{
    uint64_t at = pos & mq->mask, first = mq->size - at;

    if (n <= first) {
        memcpy(dst, mq->ring + at, n);
    } else {
        memcpy(dst, mq->ring + at, first);
        memcpy((char *)dst + first, mq->ring, n - first);
    }
}

/* ---- sending ----------------------------------------------------------------- */

/* Publish write_pos, then wake the receiver only if it sleeps. */
static inline void publish_write(dsm_mq *mq)
{
    atomic_store_explicit(&mq->sh->write_pos, mq->pos, memory_order_seq_cst);
    if (atomic_load_explicit(&mq->sh->receiver_sleeping, memory_order_seq_cst))
        dsm__mq_wake_peer(mq, false);
}

/* Free bytes in the ring; re-reads read_pos when the cached one says full. */
static inline int free_space(dsm_mq *mq, uint64_t *out)
{
    uint64_t used = mq->pos - mq->peer_cache;

    if (used >= mq->size) {
        uint64_t r = atomic_load_explicit(&mq->sh->read_pos, memory_order_acquire);

        if (mq->pos - r > mq->size || (r & 7) != 0)
            return corrupt_counters(mq, mq->pos, r);
        mq->peer_cache = r;
        used = mq->pos - r;
    }
    *out = mq->size - used;
    return 0;
}

static int ready_to_send(dsm_mq *mq)
{
    uint64_t room = 0;
    int rc;

    if ((rc = dsm__mq_peer_status(mq, false)) != 0)
        return rc;
    mq->peer_cache = mq->pos - mq->size; /* force a re-read */
    if ((rc = free_space(mq, &room)) != 0)
        return rc;
    return room > 0;
}

/* Copy payload bytes [off, off + n) of the gathered message into the ring at pos. */
static void put_payload(dsm_mq *mq, uint64_t pos, const struct iovec *iov, int iovcnt,
                        uint64_t off, uint64_t n)
{
    for (int i = 0; i < iovcnt && n > 0; i++) {
        uint64_t l = iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        l -= off;
        if (l > n)
            l = n;
        ring_put(mq, pos, (const char *)iov[i].iov_base + off, l);
        pos += l;
        n -= l;
        off = 0;
    }
}

/* Write frame bytes [done, done + n) at mq->pos. */
static void put_frame(dsm_mq *mq, uint64_t word, uint64_t len, const struct iovec *iov,
                      int iovcnt, uint64_t done, uint64_t n)
{
    uint64_t pos = mq->pos;

    if (done == 0) {
        /* pos is a multiple of 8 and the ring of 64 at least: never split */
        memcpy(mq->ring + (pos & mq->mask), &word, 8);
        pos += 8;
        done = 8;
        n -= 8;
    }
    if (n > 0 && done < 8 + len) {
        uint64_t k = 8 + len - done < n ? 8 + len - done : n;

        put_payload(mq, pos, iov, iovcnt, done - 8, k);
    }
    /* the padding after the payload is left as it is */
}

static int send_frame(dsm_mq *mq, uint64_t word, const struct iovec *iov, int iovcnt,
                      int timeout_ms)
{
    uint64_t len = word & MQ_LEN_MASK, frame = 8 + mq_round8(len);
    int64_t deadline = -2;
    int rc;

    if (mq->role != DSM_MQ_SENDER)
        return dsm__error(-EBADF, "only the sender may send on a message queue");
    if ((rc = dsm__mq_peer_status(mq, false)) != 0)
        return rc;
    if (!mq->sending) {
        mq->sending = true;
        mq->s_word = word;
        mq->s_done = 0;
    } else if (mq->s_word != word) {
        return dsm__error(-EINVAL, "an interrupted message must be sent again as it was");
    }
    for (;;) {
        uint64_t room = 0, n;

        if ((rc = free_space(mq, &room)) != 0)
            return rc;
        if (room == 0) {
            if (deadline == -2)
                deadline = deadline_of(timeout_ms);
            if ((rc = dsm__mq_wait(mq, ready_to_send, deadline, timeout_ms == 0)) != 0)
                return rc;
            continue;
        }
        n = frame - mq->s_done < room ? frame - mq->s_done : room;
        put_frame(mq, word, len, iov, iovcnt, mq->s_done, n);
        mq->pos += n;
        mq->s_done += n;
        publish_write(mq);
        if (mq->s_done == frame) {
            mq->sending = false;
            return 0;
        }
    }
}

int dsm_mq_sendv(dsm_mq *mq, const struct iovec *iov, int iovcnt, int timeout_ms)
{
    uint64_t len = 0;

    if (iovcnt < 0 || (iovcnt > 0 && iov == NULL))
        return dsm__error(-EINVAL, "invalid buffer list for a message queue send");
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > DSM_MQ_MAX_MESSAGE - len)
            return dsm__error(-EMSGSIZE, "message is longer than the queue's limit of %zu "
                              "bytes", DSM_MQ_MAX_MESSAGE);
        len += iov[i].iov_len;
    }
    return send_frame(mq, len, iov, iovcnt, timeout_ms);
}

int dsm_mq_send(dsm_mq *mq, const void *data, size_t len, int timeout_ms)
{
    struct iovec v = {.iov_base = (void *)(uintptr_t)data, .iov_len = len};
    uint64_t frame = 8 + mq_round8(len);

    /*
     * The fast path: a whole frame fits in the space the cached read_pos
     * already promises, nothing is pending and the receiver has not left.
     * One header store, one copy, one publication.
     */
    if (__builtin_expect(mq->role == DSM_MQ_SENDER && !mq->sending && !mq->peer_gone &&
                         len <= DSM_MQ_MAX_MESSAGE &&
                         frame <= mq->size - (mq->pos - mq->peer_cache) &&
                         atomic_load_explicit(&mq->sh->end[DSM_MQ_RECEIVER].state,
                                              memory_order_relaxed) != MQ_DETACHED, 1)) {
        uint64_t word = len;

        memcpy(mq->ring + (mq->pos & mq->mask), &word, 8);
        ring_put(mq, mq->pos + 8, data, len);
        mq->pos += frame;
        publish_write(mq);
        return 0;
    }
    if (len > DSM_MQ_MAX_MESSAGE)
        return dsm__error(-EMSGSIZE, "message of %zu bytes is longer than the queue's limit "
                          "of %zu bytes", len, DSM_MQ_MAX_MESSAGE);
    return send_frame(mq, len, &v, 1, timeout_ms);
}

int dsm_mq_send_ref(dsm_mq *mq, const dsm_mq_ref *ref, int timeout_ms)
{
    struct iovec v = {.iov_base = (void *)(uintptr_t)ref, .iov_len = sizeof(*ref)};

    return send_frame(mq, MQ_FLAG_REF | sizeof(*ref), &v, 1, timeout_ms);
}

/* ---- receiving --------------------------------------------------------------- */

/* Store read_pos and wake the sender if it sleeps. */
static inline void publish_read(dsm_mq *mq)
{
    mq->published = mq->pos;
    atomic_store_explicit(&mq->sh->read_pos, mq->pos, memory_order_seq_cst);
    if (atomic_load_explicit(&mq->sh->sender_sleeping, memory_order_seq_cst))
        dsm__mq_wake_peer(mq, false);
}

static inline void maybe_publish_read(dsm_mq *mq)
{
    if (mq->pos - mq->published >= mq->size / 4 ||
        atomic_load_explicit(&mq->sh->sender_sleeping, memory_order_relaxed))
        publish_read(mq);
}

/* Bytes ready to read; re-reads write_pos when the cached one says empty. */
static inline int available(dsm_mq *mq, uint64_t *out)
{
    uint64_t avail = mq->peer_cache - mq->pos;

    if (avail == 0) {
        uint64_t w = atomic_load_explicit(&mq->sh->write_pos, memory_order_acquire);

        if (w - mq->pos > mq->size || (w & 7) != 0)
            return corrupt_counters(mq, w, mq->pos);
        mq->peer_cache = w;
        avail = w - mq->pos;
    }
    *out = avail;
    return 0;
}

static int ready_to_receive(dsm_mq *mq)
{
    uint64_t avail = 0;
    int rc, gone;

    if ((rc = available(mq, &avail)) != 0)
        return rc;
    if (avail > 0)
        return 1;
    if ((gone = dsm__mq_peer_status(mq, false)) == 0)
        return 0;
    /* The sender left: what it wrote before leaving is still to be read. */
    if ((rc = available(mq, &avail)) != 0)
        return rc;
    return avail > 0 ? 1 : gone;
}

static int wait_data(dsm_mq *mq, int timeout_ms, int64_t *deadline)
{
    /* Never sleep on consumed bytes the sender may be waiting for. */
    if (mq->published != mq->pos)
        publish_read(mq);
    if (*deadline == -2)
        *deadline = deadline_of(timeout_ms);
    return dsm__mq_wait(mq, ready_to_receive, *deadline, timeout_ms == 0);
}

/* At least len bytes of reassembly buffer (doubling, so growth is amortised). */
static int ensure_buf(dsm_mq *mq, size_t len)
{
    size_t cap;
    char *p;

    if (len <= mq->bufcap)
        return 0;
    cap = mq->bufcap < 256 ? 256 : mq->bufcap;
    while (cap < len)
        cap = cap > SIZE_MAX / 2 ? len : cap * 2;
    p = realloc(mq->buf, cap);
    if (p == NULL)
        return dsm__error(-ENOMEM, "could not allocate %zu bytes for a message: %m", cap);
    mq->buf = p;
    mq->bufcap = cap;
    return 0;
}

static int check_word(uint64_t word)
{
    uint64_t len = word & MQ_LEN_MASK;

    if ((word & ~(MQ_FLAG_REF | MQ_LEN_MASK)) != 0 || len > DSM_MQ_MAX_MESSAGE ||
        ((word & MQ_FLAG_REF) && len != sizeof(dsm_mq_ref)))
        return dsm__error(DSM_ECORRUPT, "message queue frame word %#llx is not valid",
                          (unsigned long long)word);
    return 0;
}

/* Continue reassembling the frame in mq->buf. */
static int reassemble(dsm_mq *mq, void **data, size_t *len, int timeout_ms, int64_t *deadline)
{
    uint64_t mlen = mq->r_word & MQ_LEN_MASK, frame = 8 + mq_round8(mlen);
    int rc;

    while (mq->r_done < frame) {
        uint64_t avail = 0, n;

        if ((rc = available(mq, &avail)) != 0)
            return rc;
        if (avail == 0) {
            if ((rc = wait_data(mq, timeout_ms, deadline)) != 0) {
                if (rc == -EPIPE)
                    mq->receiving = false; /* the sender died mid-message: discard it */
                return rc;
            }
            continue;
        }
        n = frame - mq->r_done < avail ? frame - mq->r_done : avail;
        if (mq->r_done < 8 + mlen) {
            uint64_t k = 8 + mlen - mq->r_done < n ? 8 + mlen - mq->r_done : n;

            /* Grow with what arrives, not with what the length word claims. */
            if ((rc = ensure_buf(mq, mq->r_done - 8 + k)) != 0)
                return rc;
            ring_get(mq, mq->pos, mq->buf + (mq->r_done - 8), k);
        }
        mq->pos += n;
        mq->r_done += n;
        maybe_publish_read(mq);
    }
    mq->receiving = false;
    *data = mq->buf;
    *len = mlen;
    return (mq->r_word & MQ_FLAG_REF) ? DSM_MQ_REF : 0;
}

int dsm_mq_receive(dsm_mq *mq, void **data, size_t *len, int timeout_ms)
{
    int64_t deadline = -2;
    uint64_t avail = 0, word, mlen, frame, at;
    int rc;

    *data = NULL;
    *len = 0;
    if (mq->role != DSM_MQ_RECEIVER)
        return dsm__error(-EBADF, "only the receiver may receive from a message queue");
    if (mq->consume != 0) {
        mq->pos += mq->consume;
        mq->consume = 0;
        maybe_publish_read(mq);
    }
    if (mq->receiving)
        return reassemble(mq, data, len, timeout_ms, &deadline);

    for (;;) {
        if ((rc = available(mq, &avail)) != 0)
            return rc;
        if (avail > 0)
            break;
        if ((rc = wait_data(mq, timeout_ms, &deadline)) != 0)
            return rc;
    }
    memcpy(&word, mq->ring + (mq->pos & mq->mask), 8);
    if ((rc = check_word(word)) != 0)
        return rc;
    mlen = word & MQ_LEN_MASK;
    frame = 8 + mq_round8(mlen);
    at = (mq->pos + 8) & mq->mask;
    if (frame <= avail && at + mlen <= mq->size) {
        /* In one piece: hand it over in place, consume it next time. */
        *data = mq->ring + at;
        *len = mlen;
        mq->consume = frame;
        return (word & MQ_FLAG_REF) ? DSM_MQ_REF : 0;
    }
    if ((rc = ensure_buf(mq, mlen < mq->size ? mlen : mq->size)) != 0)
        return rc;
    mq->receiving = true;
    mq->r_word = word;
    mq->r_done = 8;
    mq->pos += 8;
    return reassemble(mq, data, len, timeout_ms, &deadline);
}
