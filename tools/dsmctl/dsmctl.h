/* SPDX-License-Identifier: MIT */
/*
 * dsmctl.h - what the parts of dsmctl share: options, exit codes, the
 * inspection preamble, formatting helpers.
 *
 * dsmctl is a client of the installed library like any other program: it
 * uses only the public headers (dynshm/inspect.h for the view and for gc),
 * so what it shows any program can show.
 */
#ifndef DSMCTL_H
#define DSMCTL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <dynshm/dynshm.h>

/* Exit codes (documented in dsmctl(1)). */
#define DSMCTL_EXIT_OK 0
#define DSMCTL_EXIT_FAIL 1        /* an error: bad data directory, corrupt control segment, ... */
#define DSMCTL_EXIT_USAGE 2
#define DSMCTL_EXIT_NOT_RUNNING 3 /* status: no supervisor is running */
#define DSMCTL_EXIT_RUNNING 4     /* gc: refused, the instance is alive */

/* Milliseconds to wait for the control segment lock before giving up. */
#define DSMCTL_LOCK_TIMEOUT_MS 10000

struct dsmctl_options {
    const char *datadir;
    bool json;
    bool dry_run;
};

/* Print "dsmctl: <message>" on stderr. */
void dsmctl_error(const char *fmt, ...) DSM_PRINTF(1, 2);

/*
 * What every command does first: inspect the directory (refusing one that
 * is missing, not a directory, never used by dynshm, or not readable by
 * us).  0 with *insp and *info filled, or a dsmctl exit code (printed).
 */
int dsmctl_inspect(const char *datadir, dsm_inspection **insp, dsm_instance_info *info);

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
