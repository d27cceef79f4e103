/* SPDX-License-Identifier: MIT */
/*
 * check_hugepages.c - huge_pages = off | try | on and huge_page_size.
 *
 * Where the test may (root, a kernel with hugetlb), the tcase's unchecked
 * fixture reserves a few 2 MiB pages through /proc/sys/vm/nr_hugepages
 * before the cases and puts the old value back after them, even if a case
 * crashed.  Otherwise the cases that need reserved pages say SKIP and why;
 * the failure paths (no reservation for 1 GiB pages, the posix backend)
 * run everywhere.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dsm_impl.h>

#include "dsm/dsm_int.h"
#include "dsmtest.h"

#define NR "/proc/sys/vm/nr_hugepages"
#define EXTRA 8 /* 16 MiB of 2 MiB pages */
#define PAGE_2M ((size_t)2 << 20)

static long saved = -1;  /* nr_hugepages before the fixture, -1 if untouched */
static int reserved;     /* 1 if EXTRA pages were reserved for the cases */

static long read_long(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;

    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int write_long(const char *path, long v)
{
    FILE *f = fopen(path, "we");
    int ok;

    if (f == NULL)
        return -1;
    ok = fprintf(f, "%ld\n", v) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* 2 MiB pages anyone may still take: free and not promised to a mapping. */
static long available_2m(void)
{
    return read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") -
           read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages");
}

static void reserve_pages(void)
{
    long now = read_long(NR);

    reserved = 0;
    if (geteuid() != 0 || now < 0 || access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK))
        return;
    saved = now;
    if (write_long(NR, now + EXTRA) == 0 && available_2m() >= EXTRA)
        reserved = 1;
    else
        write_long(NR, saved); /* could not get them all: leave the machine as it was */
}

static void restore_pages(void)
{
    if (saved >= 0 && write_long(NR, saved) != 0)
        fprintf(stderr, "check_hugepages: could not restore %s to %ld\n", NR, saved);
    saved = -1;
}

static int need_pages(const char *what)
{
    if (!reserved)
        printf("SKIP: %s: cannot reserve 2 MiB huge pages here (needs root and hugetlb; %s "
               "is %ld)\n", what, NR, read_long(NR));
    return reserved;
}

/* memfd and sysv: a 1-byte segment takes one whole 2 MiB page, shared with a child. */
START_TEST(test_huge_segment)
{
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_segment seg;
    long before;
    pid_t pid;
    int st;

    if (!dsm_impl_type_available((dsm_impl_type)_i) || !need_pages("test_huge_segment"))
        return;
    tu_sysv_mark();
    tu_make_datadir(dir, sizeof(dir));
    ck_assert_int_eq(dsm_impl_instance_open((dsm_impl_type)_i, dir, &inst), 0);
    ck_assert_int_eq(dsm__impl_set_huge_pages(inst, DSM_HUGE_ON, PAGE_2M), 0);
    before = available_2m();
    ck_assert_msg(dsm_impl_create(inst, 9, 1, &seg) == 0, "%s", dsm_errmsg());
    ck_assert_uint_eq(seg.size, PAGE_2M); /* rounded up, and reported */
    ck_assert_int_eq(available_2m(), before - 1);
    memset(seg.address, 0x5a, seg.size);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dsm_impl_segment s;
        const unsigned char *p;

        if (dsm_impl_attach(inst, 9, &s) != 0 || s.size != PAGE_2M)
            _exit(10);
        p = s.address;
        _exit(p[0] == 0x5a && p[PAGE_2M - 1] == 0x5a && dsm_impl_detach(inst, &s) == 0 ? 0 : 11);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %d", WEXITSTATUS(st));
    ck_assert_int_eq(dsm_impl_detach(inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);
    ck_assert_int_eq(available_2m(), before); /* given back */
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/* No 1 GiB pages are reserved here: on names what is missing, try says so once. */
START_TEST(test_on_and_try_without_pages)
{
    const size_t gig = (size_t)1 << 30;
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_segment a, b;

    if (!dsm_impl_type_available((dsm_impl_type)_i))
        return;
    if (access("/sys/kernel/mm/hugepages/hugepages-1048576kB", F_OK) == 0 &&
        read_long("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages") != 0) {
        printf("SKIP: test_on_and_try_without_pages: 1 GiB pages are reserved here\n");
        return;
    }
    tu_sysv_mark();
    tu_make_datadir(dir, sizeof(dir));
    ck_assert_int_eq(dsm_impl_instance_open((dsm_impl_type)_i, dir, &inst), 0);
    ck_assert_int_eq(dsm__impl_set_huge_pages(inst, DSM_HUGE_ON, gig), -EINVAL);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "huge_pages = on, but"));
    if (_i == DSM_IMPL_POSIX)
        ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "posix backend cannot use huge pages"));
    else if (_i == DSM_IMPL_MMAP)
        ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "not on a hugetlbfs mount"));
    else
        ck_assert_msg(strstr(dsm_errmsg(), "nr_hugepages") != NULL ||
                          strstr(dsm_errmsg(), "not supported") != NULL,
                      "%s", dsm_errmsg());
    log_capture_start();
    ck_assert_int_eq(dsm__impl_set_huge_pages(inst, DSM_HUGE_TRY, gig), 0);
    ck_assert_int_eq(dsm_impl_create(inst, 3, 5000, &a), 0);
    ck_assert_int_eq(dsm_impl_create(inst, 4, 5000, &b), 0);
    ck_assert_uint_eq(a.size, 5000); /* normal pages: not rounded */
    ck_assert_int_eq(log_count("huge_pages = try"), 1); /* said once */
    ck_assert_int_eq(dsm_impl_detach(inst, &a), 0);
    ck_assert_int_eq(dsm_impl_destroy(inst, &a), 0);
    ck_assert_int_eq(dsm_impl_detach(inst, &b), 0);
    ck_assert_int_eq(dsm_impl_destroy(inst, &b), 0);
    dsm_set_log_hook(NULL, NULL, DSM_LOG_DEBUG);
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

/* Through the settings and the dsm layer: the map length is the rounded size. */
START_TEST(test_settings_and_dsm)
{
    static const char *const opts[] = {"huge_pages=on", "huge_page_size=2MB", NULL};
    struct sv v;
    dsm_segment *seg;
    dsm_handle h;
    pid_t pid;
    int st;

    if (!dsm_impl_type_available(DSM_IMPL_MEMFD) || !need_pages("test_settings_and_dsm"))
        return;
    if (!sv_start(&v, DSM_IMPL_MEMFD, opts))
        return;
    ck_assert_msg(dsm_create(1000, 0, &seg) == 0, "%s", dsm_errmsg());
    ck_assert_uint_eq(dsm_segment_map_length(seg), PAGE_2M);
    strcpy(dsm_segment_address(seg), "huge");
    h = dsm_segment_handle(seg); /* the child forgets seg itself */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dsm_segment *s;

        if (dsm_worker_init_after_fork() != 0 || dsm_attach(h, &s) != 0) {
            fprintf(stderr, "worker: %s\n", dsm_errmsg());
            _exit(10);
        }
        _exit(strcmp(dsm_segment_address(s), "huge") == 0 &&
                      dsm_segment_map_length(s) == PAGE_2M ? 0 : 11);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker: %d", WEXITSTATUS(st));
    /* A worker that joins through the data directory, as an exec'd one does,
     * learns the policy from the control segment: its creates are huge too. */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dsm_segment *s;

        if (dsm_worker_attach(v.dir) != 0 || dsm_create(1000, 0, &s) != 0) {
            fprintf(stderr, "worker: %s\n", dsm_errmsg());
            _exit(20);
        }
        _exit(dsm_segment_map_length(s) == PAGE_2M ? 0 : 21);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "joined worker: %d", WEXITSTATUS(st));
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    tu_remove_datadir(v.dir);
}
END_TEST

Suite *suite_hugepages(void)
{
    Suite *s = suite_create("hugepages");
    TCase *tc = tcase_create("hugepages");

    tcase_add_unchecked_fixture(tc, reserve_pages, restore_pages);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_huge_segment, DSM_IMPL_SYSV, DSM_IMPL_SYSV + 1);
    tcase_add_loop_test(tc, test_huge_segment, DSM_IMPL_MEMFD, DSM_IMPL_MEMFD + 1);
    tcase_add_loop_test(tc, test_on_and_try_without_pages, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_test(tc, test_settings_and_dsm);
    suite_add_tcase(s, tc);
    return s;
}
