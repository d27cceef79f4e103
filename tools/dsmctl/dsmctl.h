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

/*
 * Exit codes (documented in dsmctl(1); scripts rely on them: a code keeps
 * its meaning within a major version, new ones take new numbers).
 */
#define DSMCTL_EXIT_OK 0
#define DSMCTL_EXIT_FAIL 1        /* an error: bad data directory, corrupt control segment, ... */
#define DSMCTL_EXIT_USAGE 2
#define DSMCTL_EXIT_NOT_RUNNING 3 /* status: not running, nothing left; unpin: no instance */
#define DSMCTL_EXIT_RUNNING 4     /* gc: refused, the instance is alive */
#define DSMCTL_EXIT_LEFTOVERS 5   /* status: not running and not shut down (gc would clean
                                     up); scan: leftovers or orphans found */

/* The version of every JSON document dsmctl prints (the "format_version" key). */
#define DSMCTL_JSON_FORMAT 1

/* Milliseconds to wait for the control segment lock before giving up. */
#define DSMCTL_LOCK_TIMEOUT_MS 10000

enum dsmctl_sort { DSMCTL_SORT_NONE, DSMCTL_SORT_SIZE, DSMCTL_SORT_AGE, DSMCTL_SORT_REFS };

struct dsmctl_options {
    const char *datadir;
    const char **datadirs;  /* scan: every -D given */
    size_t ndatadirs;
    const char *arg;        /* unpin: the handle */
    bool json;
    bool dry_run;
    bool human;             /* -h: sizes in KiB, MiB, GiB */
    bool all;               /* scan: also System V segments nothing claims */
    enum dsmctl_sort sort;
    /* filters (list; procs takes --pid) */
    bool pinned;
    pid_t pid;              /* 0: any */
    int64_t older_than;     /* seconds; -1: any */
    uint64_t min_size;
    const char *ns;         /* --namespace; NULL: any */
    /* watch */
    double interval;        /* -w SECONDS; 0: no watch */
    long count;             /* --count N: stop after N reports (0: never) */
};

/* Print "dsmctl: <message>" on stderr. */
void dsmctl_error(const char *fmt, ...) DSM_PRINTF(1, 2);
/* The library's message for the call that just failed, with its DETAIL and HINT lines. */
void dsmctl_dsm_error(void);

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

/* 1536 -> "1536" or, human, "1.5KiB" (into buf). */
const char *dsmctl_format_size(uint64_t bytes, bool human, char *buf, size_t len);

/* "64k", "1MB", "2GiB", "4096": bytes into *out; false if not a size. */
bool dsmctl_parse_size(const char *s, uint64_t *out);

/* "90", "90s", "10m", "2h", "1d": seconds into *out; false if not a duration. */
bool dsmctl_parse_duration(const char *s, int64_t *out);

/* The namespace every segment belongs to until namespaces exist. */
#define DSMCTL_DEFAULT_NAMESPACE "default"

/* ---- limits.c: the host limits that predict a failed create --------------------- */

struct dsmctl_limits {
    const char *space_dir;         /* /dev/shm or DIR/dynshm_mmap; NULL if not applicable */
    int space_rc;                  /* 0 or -errno */
    uint64_t space_total, space_free;
    int sysv_rc;                   /* 0, or -errno reading /proc */
    uint64_t shmmni, shmall_pages, shmmax, page_size;
    uint64_t sysv_segments, sysv_pages; /* in use, host-wide (what /proc/sysvipc/shm shows) */
    int maps_rc;
    uint64_t max_map_count;
    uint64_t maps_used;            /* mappings of the registered process that has the most */
    pid_t maps_pid;
};

void dsmctl_limits(dsm_inspection *insp, const dsm_instance_info *info, const char *datadir,
                   struct dsmctl_limits *l);
void dsmctl_limits_print(const struct dsmctl_limits *l, bool human);
void dsmctl_limits_json(const struct dsmctl_limits *l);

/* ---- the commands --------------------------------------------------------------- */

int dsmctl_status(const struct dsmctl_options *o);
int dsmctl_list(const struct dsmctl_options *o);
int dsmctl_gc(const struct dsmctl_options *o);
int dsmctl_procs(const struct dsmctl_options *o);
int dsmctl_scan(const struct dsmctl_options *o);
int dsmctl_unpin(const struct dsmctl_options *o);
int dsmctl_names(const struct dsmctl_options *o);
int dsmctl_watch(const struct dsmctl_options *o);

#endif /* DSMCTL_H */
