/* SPDX-License-Identifier: MIT */
/*
 * hostile.h - what the "hostile" suite's files share: children that report
 * a step number instead of asserting, a supervisor started without Check,
 * valgrind detection, and a system-call table that plants collisions,
 * squatters and ENOMEM (hostile.c).
 *
 * The suite (check_hostile.c) has three cases, one file each:
 *   exhaustion     check_exhaustion.c
 *   hostile_input  check_hostile.c
 *   security       check_security.c
 */
#ifndef DYNSHM_HOSTILE_H
#define DYNSHM_HOSTILE_H

#include <stdint.h>
#include <sys/ipc.h>

#include "control/control.h"
#include "dsmtest.h"

#define LOOP(tc, fn) tcase_add_loop_test(tc, fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)
#define MiB (1024 * 1024)

TCase *tcase_exhaustion(void);
TCase *tcase_security(void);

/*
 * Run fn(arg) in a child (which _exits with its result); returns the exit
 * code, 128 + signal, or -1 if it was still running after `seconds` (it is
 * killed then).  Children return a step number so a failure names a line.
 */
int run_child(int (*fn)(void *), void *arg, int seconds);

/* Fail the test unless rc is 0; 77 means "not permitted here" and skips. */
void expect_child_ok(int rc, const char *what);

/* Start a supervisor without Check assertions (for children); 0 or an error. */
int start_plain(const char *dir, dsm_impl_type type, const char *option);

/* The instance id of a data directory, as 16 hex digits. */
void instance_id_of(const char *dir, char id[17]);

/* Objects of the instance: /dev/shm names, mmap files, new SysV segments. */
int objects(const char *dir, const char *id);

/*
 * 1 under valgrind.  Valgrind emulates a few things the tests measure: it
 * fails an open() past RLIMIT_NOFILE only after the kernel made the file,
 * delivers asynchronous signals on its own schedule, and its log
 * descriptors show up in every traced process.
 */
int under_valgrind(void);

/* The OS path of a posix or mmap segment (posix: under /dev/shm). */
void segment_path(dsm_impl_instance *inst, dsm_handle h, char *buf, size_t len);

/* ---- the injection table --------------------------------------------------- */

#define SQUAT_MARK "SQUATTER"
#define MAX_SQUAT 16

struct hx_state {
    int eexist;  /* this many more exclusive creates fail with EEXIST, creating nothing */
    int squat;   /* this many more find a real object planted there just before */
    int enomem;  /* mmap and shmat fail with ENOMEM */
    int nsquat;  /* squatters planted so far */
    char names[MAX_SQUAT][600]; /* posix: shm name; mmap: file name in dirfd */
    int dirfd;                  /* mmap: our copy of the directory planted in */
    key_t keys[MAX_SQUAT];      /* sysv */
};
extern struct hx_state hx;

/* Route shm_open, openat, shmget, mmap and shmat through hx (reset to zero). */
void hx_install(void);
void hx_remove(void);

#endif
