/* SPDX-License-Identifier: MIT */
/*
 * check_mq.c - the message queue: order and framing, gather, references,
 * non-blocking and timed calls, messages far larger than the ring carried
 * across processes, detach semantics, and dead peers: a sender or receiver
 * SIGKILLed mid-message, mid-reassembly, or while the survivor sleeps, and
 * a named peer that dies before attaching.  The survivor must return
 * -EPIPE within 100 ms of the kill, the segment must be reclaimed and
 * nothing may be left in /dev/shm or the data directory.  Scribbles over
 * the header, the counters and frame words give DSM_ECORRUPT or garbled
 * bytes, never a crash or a copy outside the ring (run it under ASan).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dynshm/mq.h>

#include "common/futex.h"
#include "dsmtest.h"

#define NSIZES (sizeof(stream_sizes) / sizeof(stream_sizes[0]))
#define DETECT_BOUND_NS (100 * INT64_C(1000000))

static void *shared_region(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ck_assert(p != MAP_FAILED);
    return p;
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 8));
}

static int check_fill(const unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed * 31 + i * 7 + (i >> 8)))
            return 0;
    return 1;
}

/* ---- one process, both ends -------------------------------------------------- */

START_TEST(test_mq_basics)
{
    size_t size = dsm_mq_estimate(1024);
    void *q = shared_region(size), *data;
    dsm_mq *s, *r, *x;
    size_t len;
    char big[3000];
    struct iovec iov[3] = {{"ab", 2}, {"", 0}, {"cdefghij", 8}};
    dsm_mq_ref ref = {.segment = 77, .offset = 4096, .length = 1 << 20, .tag = 9}, *rp;

    ck_assert_uint_eq(size, 512 + 1024);
    ck_assert_uint_eq(dsm_mq_estimate(1000), 512 + 1024);
    ck_assert_uint_eq(dsm_mq_estimate(1), 512 + 64);
    ck_assert_int_eq(dsm_mq_create(q, 100), -ENOSPC);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &s), DSM_ECORRUPT);
    ck_assert_int_eq(dsm_mq_create(q, size), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &s), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &x), -EBUSY);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_RECEIVER, &r), 0);
    ck_assert_int_eq(dsm_mq_receive(s, &data, &len, 0), -EBADF);
    ck_assert_int_eq(dsm_mq_send(r, "x", 1, 0), -EBADF);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), -EAGAIN);

    for (int i = 0; i < 100; i++) {
        char msg[64];

        fill((unsigned char *)msg, (size_t)i % 64, (uint32_t)i);
        ck_assert_int_eq(dsm_mq_send(s, msg, (size_t)i % 64, 0), 0);
        ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), 0);
        ck_assert_uint_eq(len, (size_t)i % 64);
        ck_assert(check_fill(data, len, (uint32_t)i));
    }
    ck_assert_int_eq(dsm_mq_sendv(s, iov, 3, 0), 0);
    ck_assert_int_eq(dsm_mq_send_ref(s, &ref, 0), 0);
    ck_assert_int_eq(dsm_mq_send(s, "", 0, 0), 0);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), 0);
    ck_assert_uint_eq(len, 10);
    ck_assert(memcmp(data, "abcdefghij", 10) == 0);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), DSM_MQ_REF);
    ck_assert_uint_eq(len, sizeof(dsm_mq_ref));
    rp = data;
    ck_assert(rp->segment == 77 && rp->offset == 4096 && rp->length == 1 << 20 && rp->tag == 9);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), 0);
    ck_assert_uint_eq(len, 0);

    /* Larger than the ring, non-blocking on both sides: resume until done. */
    fill((unsigned char *)big, sizeof(big), 5);
    {
        int sent = 0, got = 0, rounds = 0;

        while (!got) {
            int rc;

            if (!sent) {
                rc = dsm_mq_send(s, big, sizeof(big), 0);
                ck_assert(rc == 0 || rc == -EAGAIN);
                sent = rc == 0;
            }
            rc = dsm_mq_receive(r, &data, &len, 0);
            ck_assert(rc == 0 || rc == -EAGAIN);
            got = rc == 0;
            ck_assert_int_lt(++rounds, 100);
        }
        ck_assert(sent);
        ck_assert_uint_eq(len, sizeof(big));
        ck_assert(check_fill(data, len, 5));
    }
    /* Resuming with another message is refused. */
    ck_assert_int_eq(dsm_mq_send(s, big, sizeof(big), 0), -EAGAIN);
    ck_assert_int_eq(dsm_mq_send(s, big, 10, 0), -EINVAL);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), -EAGAIN); /* incomplete */
    ck_assert_int_eq(dsm_mq_send(s, big, sizeof(big), 0), -EAGAIN);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), -EAGAIN);
    ck_assert_int_eq(dsm_mq_send(s, big, sizeof(big), 0), 0);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), 0);
    ck_assert(check_fill(data, sizeof(big), 5));

    ck_assert_int_eq(dsm_mq_send(s, big, DSM_MQ_MAX_MESSAGE + 1, 0), -EMSGSIZE);
    dsm_mq_detach(s);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), -EPIPE);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, -1), -EPIPE);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &x), -EBUSY); /* once in a life */
    dsm_mq_detach(r);
    dsm_mq_detach(NULL);
    munmap(q, size);
}
END_TEST

START_TEST(test_mq_timeouts)
{
    size_t size = dsm_mq_estimate(256);
    void *q = shared_region(size), *data;
    dsm_mq *s, *r;
    size_t len;
    char msg[200] = {0};
    int64_t t0, dt;

    ck_assert_int_eq(dsm_mq_create(q, size), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &s), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_RECEIVER, &r), 0);
    t0 = dsm__now_ns();
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 60), -ETIMEDOUT);
    dt = dsm__now_ns() - t0;
    ck_assert_int_ge(dt, 60 * 1000000);
    ck_assert_int_lt(dt, 400 * 1000000);
    ck_assert_int_eq(dsm_mq_send(s, msg, sizeof(msg), 10), 0);
    t0 = dsm__now_ns();
    ck_assert_int_eq(dsm_mq_send(s, msg, sizeof(msg), 60), -ETIMEDOUT);
    dt = dsm__now_ns() - t0;
    ck_assert_int_ge(dt, 60 * 1000000);
    /* Receiver leaves with data unread: the sender is told at once. */
    dsm_mq_detach(r);
    ck_assert_int_eq(dsm_mq_send(s, msg, sizeof(msg), -1), -EPIPE);
    dsm_mq_detach(s);
    munmap(q, size);
}
END_TEST

/* Detach after sending: the receiver gets every message, then -EPIPE. */
START_TEST(test_mq_detach_drains)
{
    size_t size = dsm_mq_estimate(4096);
    void *q = shared_region(size), *data;
    dsm_mq *s, *r;
    size_t len;

    ck_assert_int_eq(dsm_mq_create(q, size), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_RECEIVER, &r), 0);
    /* The sender attaches after the receiver and sends before it looks. */
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &s), 0);
    ck_assert_int_eq(dsm_mq_send(s, "one", 3, 0), 0);
    ck_assert_int_eq(dsm_mq_send(s, "two", 3, 0), 0);
    dsm_mq_detach(s);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, -1), 0);
    ck_assert(len == 3 && memcmp(data, "one", 3) == 0);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, -1), 0);
    ck_assert(len == 3 && memcmp(data, "two", 3) == 0);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, -1), -EPIPE);
    dsm_mq_detach(r);
    munmap(q, size);
}
END_TEST

/* ---- two processes --------------------------------------------------------- */

static const size_t stream_sizes[] = {0, 1, 8, 63, 64, 100, 1000, 4095, 4096, 4097,
                                      65536, 100003, 1 << 20};

static int stream_sender(void *q, size_t size, int n)
{
    dsm_mq *s;
    unsigned char *buf = malloc(1 << 20);

    if (buf == NULL || dsm_mq_attach(q, size, DSM_MQ_SENDER, &s) != 0)
        return 10;
    for (int i = 0; i < n; i++) {
        size_t len = stream_sizes[(size_t)i % NSIZES];
        int rc;

        fill(buf, len, (uint32_t)i);
        if (i % 3 == 0) {
            struct iovec v[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};

            rc = dsm_mq_sendv(s, v, 2, -1);
        } else {
            rc = dsm_mq_send(s, buf, len, -1);
        }
        if (rc != 0)
            return 11;
    }
    dsm_mq_detach(s);
    free(buf);
    return 0;
}

START_TEST(test_mq_stream_processes)
{
    size_t size = dsm_mq_estimate(_i == 0 ? 4096 : 65536);
    void *q = shared_region(size), *data;
    const int n = 200;
    dsm_mq *r;
    size_t len;
    pid_t pid;
    int i, st;

    ck_assert_int_eq(dsm_mq_create(q, size), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_RECEIVER, &r), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(stream_sender(q, size, n));
    for (i = 0; i < n; i++) {
        size_t want = stream_sizes[(size_t)i % NSIZES];

        ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 10000), 0);
        ck_assert_uint_eq(len, want);
        ck_assert_msg(check_fill(data, len, (uint32_t)i), "message %d garbled", i);
    }
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 10000), -EPIPE);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    dsm_mq_detach(r);
    munmap(q, size);
}
END_TEST

/* ---- dead peers (real segments, SIGKILL, leak counting) --------------------------- */

static const char *const reclaim_opts[] = {"dsm_crash_policy=reclaim", NULL};
static struct sync rv;
static dsm_handle qseg;
static size_t qring;

/* Who dies, and when (the parent holds the other end). */
enum how {
    IDLE_SENDER,        /* sent one message, then idles; the receiver sleeps */
    MID_MESSAGE_SENDER, /* wrote part of a large message; the receiver sleeps mid-reassembly */
    BUSY_SENDER,        /* streams large messages; the receiver is receiving */
    IDLE_RECEIVER       /* the sender fills the ring and sleeps */
};

static int child_end(void *arg)
{
    enum how how = *(enum how *)arg;
    dsm_segment *seg;
    dsm_mq *mq;
    static char big[1 << 20];

    if (dsm_attach(qseg, &seg) != 0)
        return 10;
    if (dsm_mq_attach(dsm_segment_address(seg), dsm_segment_map_length(seg),
                      how == IDLE_RECEIVER ? DSM_MQ_RECEIVER : DSM_MQ_SENDER, &mq) != 0)
        return 11;
    switch (how) {
    case IDLE_SENDER:
        dsm_mq_send(mq, "hello", 5, -1);
        sync_signal_parent(&rv, 1);
        break;
    case MID_MESSAGE_SENDER:
        if (dsm_mq_send(mq, big, sizeof(big), 0) != -EAGAIN) /* a ring's worth, no more */
            return 12;
        sync_signal_parent(&rv, 1);
        break;
    case BUSY_SENDER:
        sync_signal_parent(&rv, 1);
        while (dsm_mq_send(mq, big, sizeof(big), -1) == 0)
            ;
        return 13;
    case IDLE_RECEIVER:
        sync_signal_parent(&rv, 1);
        break;
    }
    for (;;)
        pause();
}

struct killer {
    pid_t pid;
    int delay_ms;
    int64_t killed_at;
};

static void *kill_later(void *arg)
{
    struct killer *k = arg;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)k->delay_ms * 1000000};

    nanosleep(&ts, NULL);
    k->killed_at = dsm__now_ns();
    kill(k->pid, SIGKILL);
    return NULL;
}

static double thread_cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

START_TEST(test_mq_dead_peer)
{
    enum how how = (enum how)_i;
    struct sv v;
    dsm_segment *seg;
    dsm_mq *mq;
    struct killer k;
    pthread_t th;
    void *data;
    size_t len;
    int64_t now;
    double cpu;
    int st, rc;

    if (!sv_start(&v, DSM_IMPL_POSIX, reclaim_opts))
        return;
    sync_init(&rv);
    qring = 4096;
    ck_assert_int_eq(dsm_create(dsm_mq_estimate(qring), 0, &seg), 0);
    qseg = dsm_segment_handle(seg);
    ck_assert_int_eq(dsm_mq_create(dsm_segment_address(seg), dsm_segment_map_length(seg)), 0);
    ck_assert_int_eq(dsm_mq_attach(dsm_segment_address(seg), dsm_segment_map_length(seg),
                                   how == IDLE_RECEIVER ? DSM_MQ_SENDER : DSM_MQ_RECEIVER, &mq),
                     0);
    k.pid = sv_fork_worker(child_end, &how);
    k.delay_ms = 150;
    sync_wait_child(&rv);
    if (how == IDLE_SENDER) {
        ck_assert_int_eq(dsm_mq_receive(mq, &data, &len, -1), 0);
        ck_assert(len == 5 && memcmp(data, "hello", 5) == 0);
    }
    ck_assert_int_eq(pthread_create(&th, NULL, kill_later, &k), 0);
    cpu = thread_cpu_ms();
    if (how == IDLE_RECEIVER) {
        char msg[1000] = {0};

        do
            rc = dsm_mq_send(mq, msg, sizeof(msg), -1); /* fills the ring, then sleeps */
        while (rc == 0);
    } else {
        do
            rc = dsm_mq_receive(mq, &data, &len, -1);
        while (rc == 0 && how == BUSY_SENDER);
    }
    now = dsm__now_ns();
    cpu = thread_cpu_ms() - cpu;
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(rc, -EPIPE);
    ck_assert_msg(now - k.killed_at < DETECT_BOUND_NS, "dead peer noticed after %lld ns",
                  (long long)(now - k.killed_at));
    /* Asleep for ~150 ms: a few ms of CPU at most (a short spin, /proc reads). */
    if (how != BUSY_SENDER)
        ck_assert_msg(cpu < 30.0, "the waiting side used %.1f ms of CPU", cpu);
    if (how == IDLE_RECEIVER)
        ck_assert_int_eq(dsm_mq_send(mq, "x", 1, -1), -EPIPE);
    else
        ck_assert_int_eq(dsm_mq_receive(mq, &data, &len, -1), -EPIPE);
    dsm_mq_detach(mq);
    ck_assert_int_eq(waitpid(k.pid, &st, 0), k.pid);
    ck_assert_int_eq(dsm_supervisor_worker_exited(k.pid, st), DSM_CRASH_RECLAIMED);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(sv_objects(&v), 1); /* the control segment only */
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    tu_remove_datadir(v.dir);
}
END_TEST

/* A named peer that dies before attaching is noticed as well. */
START_TEST(test_mq_peer_never_attached)
{
    size_t size = dsm_mq_estimate(1024);
    void *q = shared_region(size), *data;
    dsm_mq *r;
    size_t len;
    pid_t pid;
    int st;
    int64_t t0;

    ck_assert_int_eq(dsm_mq_create(q, size), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_RECEIVER, &r), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        usleep(100000);
        _exit(0); /* never attaches */
    }
    ck_assert_int_eq(dsm_mq_set_peer(r, pid), 0);
    t0 = dsm__now_ns();
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, -1), -EPIPE);
    ck_assert_int_lt(dsm__now_ns() - t0, 100 * 1000000 + DETECT_BOUND_NS);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(dsm_mq_set_peer(r, pid), -ESRCH);
    dsm_mq_detach(r);

    /* A process other than the named one may not take the end. */
    ck_assert_int_eq(dsm_mq_create(q, size), 0);
    ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_RECEIVER, &r), 0);
    ck_assert_int_eq(dsm_mq_set_peer(r, getppid()), 0);
    {
        dsm_mq *s;

        ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &s), -EPERM);
    }
    dsm_mq_detach(r);
    munmap(q, size);
}
END_TEST

/* A zero-copy reference: its segment is found (or attached) and its range checked. */
START_TEST(test_mq_ref_map)
{
    struct sv v;
    dsm_segment *qs, *ds;
    dsm_mq *s, *r;
    dsm_mq_ref ref, *got;
    void *data, *addr;
    size_t len;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_create(dsm_mq_estimate(1024), 0, &qs), 0);
    ck_assert_int_eq(dsm_create(65536, 0, &ds), 0);
    ck_assert_int_eq(dsm_mq_create(dsm_segment_address(qs), dsm_segment_map_length(qs)), 0);
    ck_assert_int_eq(dsm_mq_attach(dsm_segment_address(qs), dsm_segment_map_length(qs),
                                   DSM_MQ_SENDER, &s), 0);
    ck_assert_int_eq(dsm_mq_attach(dsm_segment_address(qs), dsm_segment_map_length(qs),
                                   DSM_MQ_RECEIVER, &r), 0);
    strcpy((char *)dsm_segment_address(ds) + 4096, "zero copy");
    ref = (dsm_mq_ref){.segment = dsm_segment_handle(ds), .offset = 4096, .length = 10,
                       .tag = 7};
    ck_assert_int_eq(dsm_mq_send_ref(s, &ref, 0), 0);
    ck_assert_int_eq(dsm_mq_receive(r, &data, &len, 0), DSM_MQ_REF);
    ck_assert_uint_eq(len, sizeof(dsm_mq_ref));
    got = data;
    ck_assert_int_eq(dsm_mq_ref_map(got, &addr), 0);
    ck_assert_str_eq(addr, "zero copy");
    ref.offset = 65536 - 4;
    ck_assert_int_eq(dsm_mq_ref_map(&ref, &addr), -ERANGE);
    ck_assert_ptr_null(addr);
    ref.offset = UINT64_MAX;
    ck_assert_int_eq(dsm_mq_ref_map(&ref, &addr), -ERANGE);
    ref.segment = dsm_segment_handle(ds) ^ 1;
    ck_assert_int_lt(dsm_mq_ref_map(&ref, &addr), 0);
    dsm_mq_detach(s);
    dsm_mq_detach(r);
    ck_assert_int_eq(dsm_detach(ds), 0);
    ck_assert_int_eq(dsm_detach(qs), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    tu_remove_datadir(v.dir);
}
END_TEST

/* ---- scribbles ------------------------------------------------------------------ */

START_TEST(test_mq_scribble)
{
    size_t size = dsm_mq_estimate(512);
    unsigned char *q = shared_region(size);
    unsigned seed = 4242 + (unsigned)_i;
    int corrupt = 0;

    for (int round = 0; round < 4000; round++) {
        dsm_mq *s = NULL, *r = NULL;
        void *data;
        size_t len;
        char msg[300];
        int rc;

        ck_assert_int_eq(dsm_mq_create(q, size), 0);
        ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_SENDER, &s), 0);
        ck_assert_int_eq(dsm_mq_attach(q, size, DSM_MQ_RECEIVER, &r), 0);
        for (int i = rand_r(&seed) % 5; i > 0; i--) {
            (void)dsm_mq_send(s, msg, (size_t)rand_r(&seed) % sizeof(msg), 0);
            if (rand_r(&seed) % 2)
                (void)dsm_mq_receive(r, &data, &len, 0);
        }
        /* Scribble the counters, the frame words, or the whole header. */
        for (int n = 1 + rand_r(&seed) % 4; n > 0; n--) {
            size_t at;

            switch (rand_r(&seed) % 3) {
            case 0: at = 128 + (size_t)rand_r(&seed) % 8; break;
            case 1: at = 256 + (size_t)rand_r(&seed) % 8; break;
            default: at = (size_t)rand_r(&seed) % (512 + 512); break;
            }
            q[at] = (unsigned char)rand_r(&seed);
        }
        for (int i = 0; i < 6; i++) {
            rc = dsm_mq_receive(r, &data, &len, 0);
            if (rc >= 0) {
                ck_assert_uint_le(len, DSM_MQ_MAX_MESSAGE);
                ck_assert((unsigned char *)data >= q + 512 ?
                          (unsigned char *)data + len <= q + size : len <= 1u << 30);
            } else {
                ck_assert(rc == -EAGAIN || rc == -EPIPE || rc == DSM_ECORRUPT || rc == -ENOMEM);
                corrupt += rc == DSM_ECORRUPT;
            }
            rc = dsm_mq_send(s, msg, (size_t)rand_r(&seed) % sizeof(msg), 0);
            ck_assert(rc == 0 || rc == -EAGAIN || rc == -EPIPE || rc == -EINVAL ||
                      rc == DSM_ECORRUPT);
        }
        dsm_mq_detach(s);
        dsm_mq_detach(r);
        {
            dsm_mq *x;

            rc = dsm_mq_attach(q, size, DSM_MQ_SENDER, &x);
            ck_assert(rc == -EBUSY || rc == DSM_ECORRUPT || rc == 0);
            if (rc == 0)
                dsm_mq_detach(x);
        }
    }
    ck_assert_int_gt(corrupt, 0);
    munmap(q, size);
}
END_TEST

/* ---- two threads (what ThreadSanitizer can see: scripts/sanitize.sh tsan) ---------- */

struct thread_end {
    void *q;
    size_t size;
    int n;
    int rc;
};

static void *thread_sender(void *arg)
{
    struct thread_end *t = arg;
    unsigned char buf[5000];
    dsm_mq *s;

    t->rc = dsm_mq_attach(t->q, t->size, DSM_MQ_SENDER, &s);
    for (int i = 0; t->rc == 0 && i < t->n; i++) {
        size_t len = (size_t)(i * 37) % sizeof(buf);

        fill(buf, len, (uint32_t)i);
        t->rc = dsm_mq_send(s, buf, len, 10000);
    }
    if (t->rc == 0)
        dsm_mq_detach(s);
    return NULL;
}

START_TEST(test_mq_threads)
{
    struct thread_end t = {.size = dsm_mq_estimate(1024), .n = 20000, .rc = -1};
    pthread_t th;
    dsm_mq *r;
    void *data;
    size_t len;
    int i, rc;

    t.q = aligned_alloc(64, t.size);
    ck_assert_int_eq(dsm_mq_create(t.q, t.size), 0);
    ck_assert_int_eq(dsm_mq_attach(t.q, t.size, DSM_MQ_RECEIVER, &r), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, thread_sender, &t), 0);
    for (i = 0; (rc = dsm_mq_receive(r, &data, &len, 10000)) == 0; i++) {
        ck_assert_uint_eq(len, (size_t)(i * 37) % 5000);
        ck_assert(check_fill(data, len, (uint32_t)i));
    }
    ck_assert_int_eq(rc, -EPIPE);
    ck_assert_int_eq(i, t.n);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(t.rc, 0);
    dsm_mq_detach(r);
    free(t.q);
}
END_TEST

Suite *suite_mq(void)
{
    Suite *s = suite_create("mq");
    TCase *tc = tcase_create("mq");
    TCase *dead = tcase_create("dead_peer");
    TCase *threads = tcase_create("threads");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_mq_basics);
    tcase_add_test(tc, test_mq_timeouts);
    tcase_add_test(tc, test_mq_detach_drains);
    tcase_add_loop_test(tc, test_mq_stream_processes, 0, 2);
    tcase_add_loop_test(tc, test_mq_scribble, 0, 2);
    suite_add_tcase(s, tc);
    tcase_set_timeout(dead, 20);
    tcase_add_loop_test(dead, test_mq_dead_peer, IDLE_SENDER, IDLE_RECEIVER + 1);
    tcase_add_test(dead, test_mq_peer_never_attached);
    tcase_add_test(dead, test_mq_ref_map);
    suite_add_tcase(s, dead);
    tcase_set_timeout(threads, 60);
    tcase_add_test(threads, test_mq_threads);
    suite_add_tcase(s, threads);
    return s;
}
