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

/*
 * A fresh data directory under $TMPDIR (default /tmp), mode 0700.  The
 * path is stored in buf (at least 256 bytes).  Fails the test on error.
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

/* 1 if this process may create a private mount namespace and mount tmpfs. */
int tu_can_unshare_mount(void);

#endif
