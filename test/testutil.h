/* SPDX-License-Identifier: MIT */
/*
 * testutil.h - helpers shared by the Check suites: scratch data directories,
 * leftover counting, and the list of suites the runner gathers.
 */
#ifndef DYNSHM_TESTUTIL_H
#define DYNSHM_TESTUTIL_H

#include <check.h>
#include <stddef.h>

/* Every suite; check_main.c runs them all.  Add new suites here and there. */
Suite *suite_common(void);
Suite *suite_dsm_impl(void);
Suite *suite_inject(void);
Suite *suite_settings(void);
Suite *suite_dsm(void);
Suite *suite_lifecycle(void);
Suite *suite_crash(void);
Suite *suite_hostile(void);
Suite *suite_control(void);
Suite *suite_killpoints(void);
Suite *suite_process(void);
Suite *suite_area(void);
Suite *suite_toc(void);
Suite *suite_mq(void);
Suite *suite_memfd(void);
Suite *suite_region(void);
Suite *suite_hugepages(void);
Suite *suite_hash(void);
Suite *suite_registry(void);

/*
 * Every data directory a test makes lives under one root per run, so the
 * runner can sweep and count what a failed (or leaky) test left behind.
 * tu_root_init() is called once by the runner before any suite runs;
 * tu_root_sweep() after them all returns the number of leftovers it
 * removed (0 when every test cleaned up after itself).
 */
void tu_root_init(void);
int tu_root_sweep(void);

/*
 * Tests use handles below this bound, so the sweep can find SysV segments
 * (which have no names) by trying every key a test could have used.
 */
#define TU_MAX_TEST_HANDLE 4096

/*
 * A fresh data directory under the run's root, mode 0700.  The path is
 * stored in buf (at least 256 bytes).  Fails the test on error.
 */
void tu_make_datadir(char *buf, size_t len);

/* Remove a data directory and everything below it; safe to call twice. */
void tu_remove_datadir(const char *path);

/*
 * Count objects of instance `id` (16 hex digits) left in /dev/shm, in the
 * mmap directory of datadir, and SysV segments whose key is in `keys`
 * (nkeys entries) -- SysV has no names, so tests pass the keys they used.
 */
int tu_count_posix(const char *id);
int tu_count_mmap(const char *datadir);
int tu_count_sysv_keys(const int *keys, int nkeys);

/*
 * SysV segments have no names, so they are told apart by time: the runner
 * snapshots the table at start (tu_root_init), and these count or remove
 * segments created since then by this user with dynshm's mode 0600.
 */
void tu_sysv_mark(void);     /* a test calls this first: count from here */
int tu_sysv_count_new(void); /* since the mark (or the run's start) */
int tu_sysv_remove_new(void);

/*
 * memfd segments (no name anywhere): the distinct files "memfd:dynshm.<id>.*"
 * any visible process holds open; and stat() of this process's descriptor
 * of the memfd called `name` (as dsm_impl_segment_name() gives it), 0 or -1.
 */
struct stat;
int tu_count_memfd(const char *id);
int tu_memfd_stat(const char *name, struct stat *st);

/* Number of descriptors and of shared mappings this process has (leak checks). */
int tu_count_fds(void);
int tu_count_maps(void);

/* 1 if this process may create a private mount namespace and mount tmpfs. */
int tu_can_unshare_mount(void);

#endif
