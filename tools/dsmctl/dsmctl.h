/*
 * dsmctl.h - what the parts of dsmctl share: options, exit codes, the data
 * directory checks and lock, formatting helpers.
 */
#ifndef DSMCTL_H
#define DSMCTL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <dynshm/common.h>

#include "control/inspect.h"

/* Exit codes (documented in dsmctl(1)). */
#define DSMCTL_EXIT_OK 0
#define DSMCTL_EXIT_FAIL 1        /* an error: bad data directory, corrupt control segment, ... */
#define DSMCTL_EXIT_USAGE 2
#define DSMCTL_EXIT_NOT_RUNNING 3 /* status: no supervisor is running */
#define DSMCTL_EXIT_RUNNING 4     /* gc: refused, the instance is alive */

/* Seconds to wait for the control segment lock before giving up. */
#define DSMCTL_LOCK_TIMEOUT 10

#define DSMCTL_LOCK_FILE "dynshm.lock"

struct dsmctl_options {
    const char *datadir;
    bool json;
    bool dry_run;
};

/* Print "dsmctl: <message>" on stderr. */
void dsmctl_error(const char *fmt, ...) DSM_PRINTF(1, 2);

/* ---- datadir.c ---------------------------------------------------------------- */

/*
 * Check that datadir exists, is a directory we may read, and has hosted
 * dynshm (a state file or a lock file).  Prints the reason and returns
 * DSMCTL_EXIT_FAIL if not; 0 if it is usable.
 */
int dsmctl_check_datadir(const char *datadir);

/* Who the data directory lock says is there. */
struct dsmctl_lock_state {
    bool lock_file;  /* dynshm.lock exists */
    bool held;       /* a supervisor or one of its forked workers holds it */
    long pid;        /* the pid the last supervisor wrote into it, or 0 */
};

/*
 * Probe the data directory lock without keeping it: take a shared lock
 * (LOCK_SH | LOCK_NB) and release it at once.  Returns 0 or DSMCTL_EXIT_FAIL
 * (message printed).
 */
int dsmctl_lock_probe(const char *datadir, struct dsmctl_lock_state *ls);

/*
 * Take the data directory lock exclusively (LOCK_EX | LOCK_NB), creating
 * the lock file if needed, and keep it: *fd holds it until closed.
 * Returns 0, DSMCTL_EXIT_RUNNING if it is held (ls->pid tells by whom), or
 * DSMCTL_EXIT_FAIL (message printed).
 */
int dsmctl_lock_exclusive(const char *datadir, int *fd, struct dsmctl_lock_state *ls);

/* dsm__inspect_open() with its hard errors printed; 0 or DSMCTL_EXIT_FAIL. */
int dsmctl_open(const char *datadir, struct dsm_inspect_target *t);

/* What status and list do first: check the directory, probe its lock, open
 * its state and control segment.  0, or a dsmctl exit code. */
int dsmctl_inspect_begin(const char *datadir, struct dsmctl_lock_state *ls,
                         struct dsm_inspect_target *t);

/* dsm__inspect_snapshot(), giving up after DSMCTL_LOCK_TIMEOUT seconds. */
int dsmctl_snapshot(struct dsm_inspect_target *t, struct dsm_inspect *snap);

/* ---- format.c ----------------------------------------------------------------- */

/* "42s", "3m07s", "5h02m", "2d03h". */
void dsmctl_format_age(int64_t seconds, char *buf, size_t len);

/* Local time as "2026-11-22 03:08:03 +0000". */
void dsmctl_format_time(int64_t epoch_seconds, char *buf, size_t len);

/* A JSON string literal for s (escaped; bytes that are not UTF-8 become U+FFFD). */
void dsmctl_json_string(FILE *f, const char *s);

/* ---- the commands --------------------------------------------------------------- */

int dsmctl_status(const struct dsmctl_options *o);
int dsmctl_list(const struct dsmctl_options *o);
int dsmctl_gc(const struct dsmctl_options *o);

#endif /* DSMCTL_H */
