/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mq.c - libFuzzer target for the message queue's and the table of
 * contents' handling of shared state another process may have scribbled.
 *
 * The input is a script, so every run starts from a valid structure and
 * the fuzzer reaches deep states without seeds.  First byte even: a queue
 * (sender and receiver attached in this process, 1 KiB ring) driven by
 * operations - send n bytes, send gathered, receive, scribble a byte of the
 * header, counters or ring, detach and re-attach the receiver.  Odd: a
 * table of contents with keys in it, scribbled, then attached, looked up,
 * allocated from and inserted into.  Whatever the scribbles, every call
 * returns one of its documented codes, every message handed back lies in
 * the ring or in the handle's buffer (ASan checks the reads), and every
 * address the table returns is inside its buffer.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dynshm/mq.h>
#include <dynshm/toc.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_mq: check failed at line %d: %s (last message: %s)\n",     \
                    __LINE__, #cond, dsm_errmsg());                                           \
            __builtin_trap();                                                                 \
        }                                                                                     \
    } while (0)

#define QBYTES (512 + 1024)
#define TBYTES 4096

static _Alignas(64) unsigned char qmem[QBYTES];
static _Alignas(64) unsigned char tmem[TBYTES];
static unsigned char msg[4096];

static void check_message(int rc, void *p, size_t len)
{
    volatile unsigned char sink = 0;

    if (rc < 0) {
        CHECK(rc == -EAGAIN || rc == -EPIPE || rc == -ENOMEM || rc == DSM_ECORRUPT);
        return;
    }
    CHECK(rc == 0 || rc == DSM_MQ_REF);
    CHECK(len <= DSM_MQ_MAX_MESSAGE);
    if ((unsigned char *)p >= qmem && (unsigned char *)p < qmem + QBYTES)
        CHECK((unsigned char *)p >= qmem + 512 && len <= (size_t)(qmem + QBYTES - (unsigned char *)p));
    for (size_t i = 0; i < len; i++) /* ASan: every byte must be readable */
        sink ^= ((unsigned char *)p)[i];
    (void)sink;
}

static void fuzz_queue(const uint8_t *d, size_t n)
{
    dsm_mq *s = NULL, *r = NULL;
    void *p;
    size_t len;
    int rc;

    CHECK(dsm_mq_create(qmem, QBYTES) == 0);
    CHECK(dsm_mq_attach(qmem, QBYTES, DSM_MQ_SENDER, &s) == 0);
    CHECK(dsm_mq_attach(qmem, QBYTES, DSM_MQ_RECEIVER, &r) == 0);
    for (size_t i = 0; i + 3 <= n; i += 3) {
        unsigned a = d[i + 1], b = d[i + 2];

        switch (d[i] % 6) {
        case 0:
            if (s) {
                rc = dsm_mq_send(s, msg, (a << 4 | b) % sizeof(msg), 0);
                CHECK(rc == 0 || rc == -EAGAIN || rc == -EPIPE || rc == -EINVAL ||
                      rc == DSM_ECORRUPT);
            }
            break;
        case 1:
            if (s) {
                struct iovec v[2] = {{msg, a}, {msg + 256, b}};

                rc = dsm_mq_sendv(s, v, 2, 0);
                CHECK(rc == 0 || rc == -EAGAIN || rc == -EPIPE || rc == -EINVAL ||
                      rc == DSM_ECORRUPT);
            }
            break;
        case 2:
        case 3:
            if (r) {
                rc = dsm_mq_receive(r, &p, &len, 0);
                check_message(rc, p, len);
            }
            break;
        case 4:
            qmem[((a << 8) | b) % QBYTES] = (unsigned char)(a ^ b ^ d[i]);
            break;
        case 5:
            /* counters and frame words are the interesting targets */
            qmem[(a & 1 ? 128 : 256) + b % 8] = (unsigned char)d[i];
            break;
        }
    }
    dsm_mq_detach(s);
    dsm_mq_detach(r);
}

static void fuzz_toc(const uint8_t *d, size_t n)
{
    dsm_toc *t;
    void *p;
    int rc;

    CHECK(dsm_toc_create(tmem, TBYTES, 16, &t) == 0);
    for (uint64_t k = 1; k <= 10; k++) {
        CHECK(dsm_toc_allocate(t, 100, &p) == 0);
        CHECK(dsm_toc_insert(t, k * 0x9e37, p) == 0);
    }
    dsm_toc_release(t);
    for (size_t i = 0; i + 3 <= n; i += 3)
        tmem[((d[i] << 8) | d[i + 1]) % (64 + 16 * 32)] = d[i + 2];
    rc = dsm_toc_attach(tmem, TBYTES, &t);
    if (rc != 0) {
        CHECK(rc == DSM_ECORRUPT);
        return;
    }
    for (uint64_t k = 0; k <= 12; k++) {
        rc = dsm_toc_lookup(t, k * 0x9e37, &p);
        if (rc == 0)
            CHECK((unsigned char *)p >= tmem && (unsigned char *)p < tmem + TBYTES);
        else
            CHECK(rc == -ENOENT || rc == DSM_ECORRUPT);
    }
    rc = dsm_toc_allocate(t, 200, &p);
    if (rc == 0)
        CHECK((unsigned char *)p >= tmem && (unsigned char *)p + 200 <= tmem + TBYTES);
    else
        CHECK(rc == -ENOSPC || rc == DSM_ECORRUPT);
    rc = dsm_toc_insert(t, 77, tmem + 100);
    CHECK(rc == 0 || rc == -ENOSPC || rc == -EEXIST || rc == DSM_ECORRUPT);
    dsm_toc_release(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_toc(data + 1, size - 1);
    else
        fuzz_queue(data + 1, size - 1);
    return 0;
}
