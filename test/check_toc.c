/* SPDX-License-Identifier: MIT */
/*
 * check_toc.c - the table of contents: sizing, keys to offsets seen from a
 * second mapping at another address, concurrent lock-free inserts from
 * several processes, and validation (a scribbled table is DSM_ECORRUPT,
 * never a crash, never an address outside the buffer).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/toc.h>

#include "testutil.h"

/* The same memory mapped twice, at two addresses. */
static void *map_twice(size_t size, void **second)
{
    int fd = memfd_create("toc-test", MFD_CLOEXEC);
    void *a, *b;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert(a != MAP_FAILED && b != MAP_FAILED && a != b);
    close(fd);
    *second = b;
    return a;
}

START_TEST(test_toc_basics)
{
    dsm_toc_estimator e;
    dsm_toc *t, *t2;
    size_t size;
    void *base, *other, *p, *q, *r;

    dsm_toc_estimator_init(&e);
    dsm_toc_estimate_chunk(&e, 100);
    dsm_toc_estimate_chunk(&e, 1000);
    dsm_toc_estimate_keys(&e, 3);
    size = dsm_toc_estimate(&e);
    ck_assert_uint_ge(size, 128 + 1024);
    base = map_twice(size, &other);
    ck_assert_int_eq(dsm_toc_create(base, size, 3, &t), 0);
    ck_assert_int_eq(dsm_toc_allocate(t, 100, &p), 0);
    ck_assert_int_eq(dsm_toc_allocate(t, 1000, &q), 0);
    ck_assert_int_eq((uintptr_t)p % DSM_TOC_ALIGN, 0);
    ck_assert_int_eq((uintptr_t)q % DSM_TOC_ALIGN, 0);
    ck_assert_int_eq(dsm_toc_allocate(t, 1, &r), -ENOSPC); /* the estimate was exact */
    strcpy(p, "first");
    strcpy(q, "second");
    ck_assert_int_eq(dsm_toc_insert(t, 0x1234, p), 0);
    ck_assert_int_eq(dsm_toc_insert(t, UINT64_MAX, q), 0);
    ck_assert_int_eq(dsm_toc_insert(t, 0x1234, q), -EEXIST);
    ck_assert_int_eq(dsm_toc_insert(t, 0, q), -EINVAL);
    ck_assert_int_eq(dsm_toc_insert(t, 7, (char *)base + size), -EINVAL);
    ck_assert_int_eq(dsm_toc_insert(t, 7, base), 0);
    ck_assert_int_eq(dsm_toc_insert(t, 8, base), -ENOSPC); /* max_keys = 3 */

    /* The second mapping sees offsets, translated to its own addresses. */
    ck_assert_int_eq(dsm_toc_attach(other, size, &t2), 0);
    ck_assert_int_eq(dsm_toc_lookup(t2, 0x1234, &r), 0);
    ck_assert_ptr_eq(r, (char *)other + ((char *)p - (char *)base));
    ck_assert_str_eq(r, "first");
    ck_assert_int_eq(dsm_toc_lookup(t2, UINT64_MAX, &r), 0);
    ck_assert_str_eq(r, "second");
    ck_assert_int_eq(dsm_toc_lookup(t2, 7, &r), 0);
    ck_assert_ptr_eq(r, other);
    ck_assert_int_eq(dsm_toc_lookup(t2, 99, &r), -ENOENT);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(dsm_toc_lookup(t2, 0, &r), -ENOENT);
    dsm_toc_release(t);
    dsm_toc_release(t2);
    ck_assert_int_eq(dsm_toc_create(base, 64, 3, &t2), -ENOSPC);
    ck_assert_ptr_null(t2);
    dsm_toc_release(NULL);
    munmap(base, size);
    munmap(other, size);
}
END_TEST

/* Several processes insert at once, overlapping keys included: each key once. */
START_TEST(test_toc_concurrent_inserts)
{
    enum { NPROC = 4, NKEYS = 2000 };
    size_t size = 1 << 20;
    dsm_toc *t;
    void *base, *other, *r;
    pid_t pids[NPROC];
    int st, wins = 0;

    base = map_twice(size, &other);
    ck_assert_int_eq(dsm_toc_create(base, size, NKEYS, &t), 0);
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            dsm_toc *c;
            void *chunk;
            int mine = 0;

            if (dsm_toc_attach(other, size, &c) != 0)
                _exit(100);
            for (uint64_t k = 1; k <= NKEYS; k++) {
                int rc;

                if (dsm_toc_allocate(c, 8, &chunk) != 0)
                    _exit(101);
                *(uint64_t *)chunk = k * 1000 + (uint64_t)i;
                rc = dsm_toc_insert(c, k, chunk);
                if (rc == 0)
                    mine++;
                else if (rc != -EEXIST) {
                    fprintf(stderr, "insert %llu: %d %s\n", (unsigned long long)k, rc, dsm_errmsg());
                    _exit(102);
                }
            }
            _exit(mine > 99 ? 99 : mine); /* how many it won, capped */
        }
    }
    for (int i = 0; i < NPROC; i++) {
        ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) <= 99, "child status %#x", st);
        wins += WEXITSTATUS(st);
    }
    (void)wins;
    for (uint64_t k = 1; k <= NKEYS; k++) {
        ck_assert_int_eq(dsm_toc_lookup(t, k, &r), 0);
        ck_assert_uint_eq(*(uint64_t *)r / 1000, k);
    }
    ck_assert_int_eq(dsm_toc_insert(t, NKEYS + 1, base), -ENOSPC);
    dsm_toc_release(t);
    munmap(base, size);
    munmap(other, size);
}
END_TEST

START_TEST(test_toc_corrupt_header)
{
    size_t size = 8192;
    char *base = aligned_alloc(64, size);
    dsm_toc *t;
    void *p, *r;

    memset(base, 0, size);
    ck_assert_int_eq(dsm_toc_attach(base, size, &t), DSM_ECORRUPT); /* no magic */
    ck_assert_int_eq(dsm_toc_create(base, size, 4, &t), 0);
    ck_assert_int_eq(dsm_toc_allocate(t, 64, &p), 0);
    ck_assert_int_eq(dsm_toc_insert(t, 42, p), 0);
    dsm_toc_release(t);
    ck_assert_int_eq(dsm_toc_attach(base, 100, &t), DSM_ECORRUPT); /* smaller than created */
    base[8] ^= 1; /* version */
    ck_assert_int_eq(dsm_toc_attach(base, size, &t), DSM_ECORRUPT);
    base[8] ^= 1;
    base[12] ^= 3; /* bucket count not a power of two */
    ck_assert_int_eq(dsm_toc_attach(base, size, &t), DSM_ECORRUPT);
    base[12] ^= 3;
    ck_assert_int_eq(dsm_toc_attach(base, size, &t), 0);
    /* An entry's offset scribbled past the end: corrupt, never an address. */
    for (int i = 0; i < 16; i++) {
        uint64_t *ent = (uint64_t *)(base + 64) + 2 * i;

        if (ent[0] == 42)
            ent[1] = size + 5;
    }
    ck_assert_int_eq(dsm_toc_lookup(t, 42, &r), DSM_ECORRUPT);
    ck_assert_ptr_null(r);
    /* The allocation pointer scribbled: corrupt. */
    ((uint64_t *)base)[4] = size * 3;
    ck_assert_int_eq(dsm_toc_allocate(t, 64, &p), DSM_ECORRUPT);
    dsm_toc_release(t);
    free(base);
}
END_TEST

/* An inserter killed between claiming a slot and publishing it: the key reads as
 * absent and stays taken; nothing else is disturbed. */
START_TEST(test_toc_half_insert)
{
    size_t size = 8192;
    char *base = aligned_alloc(64, size);
    dsm_toc *t;
    void *p, *r;
    int found = 0;

    ck_assert_int_eq(dsm_toc_create(base, size, 4, &t), 0);
    ck_assert_int_eq(dsm_toc_allocate(t, 64, &p), 0);
    ck_assert_int_eq(dsm_toc_insert(t, 5, p), 0);
    for (int i = 0; i < 16; i++) {
        uint64_t *ent = (uint64_t *)(base + 64) + 2 * i;

        if (ent[0] == 5) {
            ent[1] = 0; /* the state a SIGKILL after the claim leaves */
            found = 1;
        }
    }
    ck_assert(found);
    ck_assert_int_eq(dsm_toc_lookup(t, 5, &r), -ENOENT);
    ck_assert_int_eq(dsm_toc_insert(t, 5, p), -EEXIST);
    ck_assert_int_eq(dsm_toc_insert(t, 6, p), 0);
    ck_assert_int_eq(dsm_toc_lookup(t, 6, &r), 0);
    ck_assert_ptr_eq(r, p);
    dsm_toc_release(t);
    free(base);
}
END_TEST

/* Random scribbles over a populated table: every answer is in bounds or an error. */
START_TEST(test_toc_scribble)
{
    size_t size = 16384;
    char *base = aligned_alloc(64, size);
    unsigned seed = 12345;

    for (int round = 0; round < 3000; round++) {
        dsm_toc *t;
        void *p;
        int rc;

        ck_assert_int_eq(dsm_toc_create(base, size, 32, &t), 0);
        for (uint64_t k = 1; k <= 20; k++) {
            ck_assert_int_eq(dsm_toc_allocate(t, 40, &p), 0);
            ck_assert_int_eq(dsm_toc_insert(t, k * 7919, p), 0);
        }
        dsm_toc_release(t);
        for (int n = 1 + rand_r(&seed) % 8; n > 0; n--) {
            size_t at = (size_t)rand_r(&seed) % (64 + 64 * 16);

            base[at] = (char)rand_r(&seed);
        }
        rc = dsm_toc_attach(base, size, &t);
        if (rc != 0) {
            ck_assert_int_eq(rc, DSM_ECORRUPT);
            continue;
        }
        for (uint64_t k = 1; k <= 40; k++) {
            rc = dsm_toc_lookup(t, k * 7919, &p);
            if (rc == 0)
                ck_assert((char *)p >= base && (char *)p < base + size);
            else
                ck_assert(rc == -ENOENT || rc == DSM_ECORRUPT);
        }
        rc = dsm_toc_allocate(t, 64, &p);
        if (rc == 0)
            ck_assert((char *)p >= base && (char *)p + 64 <= base + size);
        rc = dsm_toc_insert(t, 999983, base + 100);
        ck_assert(rc == 0 || rc == -ENOSPC || rc == -EEXIST || rc == DSM_ECORRUPT);
        dsm_toc_release(t);
    }
    free(base);
}
END_TEST

Suite *suite_toc(void)
{
    Suite *s = suite_create("toc");
    TCase *tc = tcase_create("toc");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_toc_basics);
    tcase_add_test(tc, test_toc_concurrent_inserts);
    tcase_add_test(tc, test_toc_corrupt_header);
    tcase_add_test(tc, test_toc_half_insert);
    tcase_add_test(tc, test_toc_scribble);
    suite_add_tcase(s, tc);
    return s;
}
