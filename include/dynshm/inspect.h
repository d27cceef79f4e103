/* SPDX-License-Identifier: MIT */
/*
 * dynshm/inspect.h - the operator's view of an instance, and cleanup of a
 * dead one: read-only inspection and dsm_gc().
 *
 * Any process of the instance's user may inspect a data directory, whether
 * a supervisor runs there or not, without joining the instance: nothing is
 * registered and no segment is mapped except the control segment.
 * dsm_inspect_open() takes a consistent snapshot (one short critical
 * section, so a slow reader never holds the server's lock) and every
 * accessor reads from that snapshot.  dsmctl(1) is built on this header
 * and nothing else.
 *
 * The info structs grow at their end only: callers pass sizeof(their
 * struct) and the library fills that many bytes, so a program built
 * against an older header keeps working with a newer library.
 */
#ifndef DYNSHM_INSPECT_H
#define DYNSHM_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <dynshm/common.h>
#include <dynshm/dsm_impl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cleanup of a dead instance ---------------------------------------------- */

typedef enum dsm_gc_action {
    DSM_GC_REMOVED = 0,     /* removed */
    DSM_GC_WOULD_REMOVE = 1, /* dry run: would be removed */
    DSM_GC_KEPT = 2,        /* this instance's, but could not be removed: detail says why */
    DSM_GC_UNPROVEN = 3     /* may be this instance's but cannot be proven: left; see hint */
} dsm_gc_action;

/* One object dsm_gc() dealt with; valid during the report call only. */
typedef struct dsm_gc_object {
    dsm_gc_action action;
    const char *kind;   /* "segment", "control segment", "leftover", "segments", "state file" */
    const char *name;   /* its name in the system ("/dynshm.<id>.<handle>", "key 0x..", path) */
    dsm_handle handle;  /* or 0 */
    const char *detail; /* why it was kept, what it was; "" if nothing to say */
    const char *hint;   /* for DSM_GC_UNPROVEN: how to remove it by hand; else "" */
} dsm_gc_object;

typedef void (*dsm_gc_report)(const dsm_gc_object *object, void *arg);

#define DSM_GC_DRY_RUN 0x1u /* only report what would be removed */

/*
 * Remove what a dead instance left in datadir, exactly as the next
 * supervisor start-up would, without starting one: every segment its
 * control segment lists, the control segment, names carrying its prefix,
 * then the state file (kept if anything could not be removed, so gc can be
 * run again).  Takes the data directory lock for the duration.  report, if
 * not NULL, is called for each object.  Returns the number of shared
 * memory objects removed (or that would be), -EBUSY if the instance is
 * running, or another negative error.
 */
DSM_EXPORT int dsm_gc(const char *datadir, unsigned flags, dsm_gc_report report, void *arg);

/* ---- inspection ---------------------------------------------------------------- */

typedef struct dsm_inspection dsm_inspection;

typedef enum dsm_instance_state {
    DSM_INSTANCE_NONE = 0,    /* no dynshm instance has used this directory */
    DSM_INSTANCE_STOPPED = 1, /* not running, shut down cleanly: nothing left */
    DSM_INSTANCE_RUNNING = 2, /* a supervisor or its workers hold the directory */
    DSM_INSTANCE_DEAD = 3     /* not running, but not shut down: leftovers possible (dsm_gc) */
} dsm_instance_state;

typedef struct dsm_instance_info {
    dsm_instance_state state;
    char id[17];              /* the instance id: 16 hex digits */
    const char *datadir;      /* as given to dsm_inspect_open() */
    bool lock_file;           /* DIR/dynshm.lock exists */
    pid_t lock_pid;           /* the pid the last supervisor wrote into it, or 0 */
    int state_status;         /* 0: the state file is valid; -ENOENT: there is none; else
                                 why it is not trusted (see message) */
    pid_t state_pid;          /* the supervisor that wrote the state file */
    dsm_impl_type backend;    /* from the state file (DSM_IMPL_NONE without one) */
    dsm_handle control;       /* the control segment it names, or 0 */
    const char *control_name; /* its name in the system, or "" */
    uint64_t control_size;
    int control_status;       /* 0: the control segment was read; DSM_EDISABLED: backend none;
                                 -ENOENT: it does not exist; DSM_ESTATE: not tried (no valid
                                 state file); else why it is not trusted (see message) */
    char message[512];        /* the reason for the first non-zero status, as a sentence */
    /* The rest is valid when control_status == 0. */
    pid_t supervisor_pid;     /* the supervisor that created the control segment */
    uint64_t created_usec;    /* when (µs since the epoch) */
    uint32_t max_segments, max_processes, max_mappings;
    uint32_t segments;        /* slots in use: live + creating + dying */
    uint32_t live_segments, creating_segments, dying_segments, pinned_segments;
    uint64_t live_bytes;
    uint32_t processes, alive_processes;
    uint32_t mappings;        /* references in use */
    uint32_t orphans;         /* segments repair gave to the supervisor to finish */
    uint64_t creates, destroys, repairs, corruptions; /* since the supervisor started (a
                                 crash reset carries them over) */
    /* Since 0.1 (layout 3), appended: */
    const char *recorded_datadir; /* the absolute data directory the control segment records
                                     ("" if it was too long to record, or unknown) */
} dsm_instance_info;

typedef struct dsm_segment_info {
    dsm_handle handle;
    uint64_t size;            /* 0 while creating */
    const char *state;        /* "live", "creating", "dying" */
    uint32_t refcnt;          /* mappings + (pinned ? 1 : 0) */
    bool pinned;
    int64_t created;          /* seconds since the epoch */
    int64_t os_id;            /* sysv shmid, else -1 */
    const char *name;         /* its name in the system */
    uint32_t nholders;        /* processes holding a reference */
    /* Appended with the preallocated region: */
    bool region;              /* carved from the preallocated region
                                 (min_dynamic_shared_memory); name is then the region's */
} dsm_segment_info;

typedef struct dsm_process_info {
    pid_t pid;
    uint64_t start_time;      /* clock ticks since boot: with pid, the process's identity */
    bool alive;               /* that process still runs */
    const char *kind;         /* "supervisor", "forked" or "exec'd" */
    uint32_t references;      /* mappings and destroy claims it holds */
    uint64_t bytes_mapped;    /* sum of the sizes of the live segments it maps */
    int64_t registered_usec;  /* when it joined (µs since the epoch) */
} dsm_process_info;

/*
 * The counters an exporter scrapes, kept in the control segment by every
 * process of the instance under the lock it already holds.  Totals count
 * since the supervisor started (a crash reset carries them into the new
 * control segment); they only grow, so a scraper takes differences.
 * Gauges (segments, bytes, processes) are the snapshot's.  Append only.
 */
typedef struct dsm_metrics {
    int64_t since_usec;       /* when counting began (µs since the epoch) */
    uint64_t creates;         /* segments created */
    uint64_t destroys;        /* segments destroyed */
    uint64_t attaches;        /* references taken by dsm_attach() */
    uint64_t detaches;        /* references given back by detach */
    uint64_t repairs;         /* table rebuilds after a process died holding the lock */
    uint64_t resets;          /* crash resets */
    uint64_t reclaims;        /* references of dead processes released by the supervisor */
    uint64_t corruptions;     /* damaged entries found (the table rebuilt each time) */
    uint64_t create_enospc;   /* creates refused for lack of memory (ENOSPC, ENOMEM) */
    uint64_t create_failed;   /* every other failed create (a full table, ...) */
    uint64_t segments;        /* gauge: slots in use */
    uint64_t bytes;           /* gauge: bytes of the segments not yet freed */
    uint64_t processes;       /* gauge: registered processes */
    uint64_t peak_segments, peak_bytes, peak_processes; /* high-water marks */
    uint64_t bytes_created;   /* sum of the sizes of the segments created */
    /* Appended with the preallocated region (min_dynamic_shared_memory): */
    uint64_t region_size;      /* bytes of its pages; 0: the instance has none */
    uint64_t region_hits;      /* creates served from it, without a system call */
    uint64_t region_fallbacks; /* creates it could not serve (too large, or full) that went
                                  to the backend */
} dsm_metrics;

/*
 * Inspect datadir.  Fails only when the directory itself cannot be used;
 * a missing or unreadable state file or control segment is described in
 * dsm_instance_info.  timeout_ms bounds the wait for the control lock
 * (-1: no bound).  Free with dsm_inspect_close().
 */
DSM_EXPORT int dsm_inspect_open(const char *datadir, int timeout_ms, dsm_inspection **out);
DSM_EXPORT void dsm_inspect_close(dsm_inspection *insp);

/* Fill up to size bytes of *out; 0 or -EINVAL. */
DSM_EXPORT int dsm_inspect_instance(const dsm_inspection *insp, dsm_instance_info *out,
                                    size_t size);

/* Segments, in slot order: their number, and the i-th (-ERANGE past the end). */
DSM_EXPORT size_t dsm_inspect_nsegments(const dsm_inspection *insp);
DSM_EXPORT int dsm_inspect_segment(const dsm_inspection *insp, size_t i, dsm_segment_info *out,
                                   size_t size);
/* The pids holding segment i: up to max of them into pids; returns how many there are. */
DSM_EXPORT size_t dsm_inspect_segment_holders(const dsm_inspection *insp, size_t i, pid_t *pids,
                                              size_t max);

/*
 * Fill up to size bytes of *out with the instance's counters: 0, -EINVAL,
 * or -ENODATA when the control segment could not be read (see
 * dsm_instance_info.control_status).
 */
DSM_EXPORT int dsm_inspect_metrics(const dsm_inspection *insp, dsm_metrics *out, size_t size);

/* Registered processes: their number, and the i-th (-ERANGE past the end). */
DSM_EXPORT size_t dsm_inspect_nprocesses(const dsm_inspection *insp);
DSM_EXPORT int dsm_inspect_process(const dsm_inspection *insp, size_t i, dsm_process_info *out,
                                   size_t size);

/* ---- host-wide discovery --------------------------------------------------------- */

/* One dynshm object found on the host; valid during the report call only. */
typedef struct dsm_host_object {
    dsm_impl_type backend;    /* DSM_IMPL_POSIX, DSM_IMPL_SYSV or DSM_IMPL_MMAP */
    const char *name;         /* "/dynshm.<id>.<handle>", "key 0x<key>", or the mmap path */
    char instance[17];        /* the instance id (from the name or the control segment);
                                 "" for a System V segment that is not a control segment */
    dsm_handle handle;        /* from the name (posix, mmap), a control segment's, or 0 */
    uint64_t size;
    uid_t uid;                /* owner */
    int64_t os_id;            /* System V shmid, else -1 */
    pid_t creator_pid;        /* System V: the pid that created it, else 0 */
    bool control;             /* a control segment of this library's layout */
    const char *datadir;      /* control: the absolute data directory it records (may be
                                 ""); else "" */
    uint32_t layout_version;  /* a dynshm control segment's layout version, whether or not
                                 this library reads it (control is true only for its own);
                                 0 if the object is not one */
    int64_t attached;         /* System V: processes attached (shm_nattch); else -1 */
} dsm_host_object;

typedef void (*dsm_scan_report)(const dsm_host_object *object, void *arg);

/*
 * List every dynshm object on the host that this process can see: posix
 * objects in /dev/shm named "dynshm.<id>.<handle>", this user's System V
 * segments (each; whether it is a control segment is read from its
 * header), and the mmap segments in DIR/dynshm_mmap of each of the
 * ndatadirs data directories given.  Changes nothing.  report, if not
 * NULL, is called for each.  Returns the number of objects, or a negative
 * error.  Which instance and data directory an object belongs to is the
 * caller's to work out (dsm_inspect_open() on the recorded directory).
 */
DSM_EXPORT int dsm_scan_host(const char *const *datadirs, size_t ndatadirs,
                             dsm_scan_report report, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_INSPECT_H */
