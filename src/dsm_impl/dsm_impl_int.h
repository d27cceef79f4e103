/* SPDX-License-Identifier: MIT */
/*
 * dsm_impl_int.h - the contract between the backend switch and each backend.
 *
 * Every backend exposes one `const struct dsm__impl_ops`.  The switch
 * (dsm_impl.c) validates arguments before calling an op, so ops may assume:
 * inst is open and of their type, handle != 0, 1 <= size <= DSM_IMPL_MAX_SIZE,
 * seg is non-NULL.
 *
 *   open(inst)      Per-instance set-up after the common part (id, datadir).
 *                   mmap opens (creating 0700 if missing) its directory.
 *   close(inst)     Undo open.  Never fails.
 *   create(inst, handle, size, seg)
 *                   Create the OS object exclusively, owner-only, reserve
 *                   all `size` bytes (ENOSPC now, never SIGBUS later), map
 *                   it read-write, fill *seg.  A name collision returns
 *                   -EEXIST through dsm__error_silent(): expected, the caller
 *                   retries with another handle.  Any other failure undoes
 *                   every step (the object is removed) and returns the errno
 *                   of the step that failed, with a message naming the object.
 *   attach(inst, handle, seg)
 *                   Map an existing object after checking it is ours (owner,
 *                   mode, type).  -ENOENT if absent, DSM_EFOREIGN if not ours.
 *   detach(inst, seg)
 *                   Unmap.  The object survives.
 *   destroy(inst, seg)
 *                   Remove the object from the name space; mappings elsewhere
 *                   stay valid.  -ENOENT if already gone.
 *   name(inst, handle, buf, len)
 *                   The object's OS name for messages and operators.
 *   probe(inst, seg)
 *                   Would destroy(inst, seg) remove something?  1 if an
 *                   object is there that destroy would remove, 0 if there
 *                   is none, DSM_EFOREIGN (or another error) if something
 *                   is there that destroy would refuse.  Changes nothing:
 *                   it is what a dry run of cleanup reports.
 *   sweep(inst, keep, dry_run, report, arg)
 *                   Optional (NULL for backends without names).  Remove
 *                   every object named with this instance's prefix except
 *                   `keep`, owned by the effective uid; with dry_run only
 *                   count.  report(name, arg) for each.  Returns the count.
 *
 * Optional ops of backends whose segments exist only while some process
 * holds a descriptor (memfd); NULL elsewhere, and the switch's wrappers
 * then do nothing (or return -ENOTSUP):
 *   export_fd(inst, seg)     this process's descriptor of a mapped segment
 *                            (still owned by seg), to hand to a keeper.
 *   hold(inst, handle, fd)   keep fd (received from another process) as a
 *                            holder of handle's segment until unhold or
 *                            destroy in this process; takes fd on success.
 *   unhold(inst, handle)     drop such a hold.  -ENOENT if none.
 *   forget(inst, seg)        a fork child's copy of seg whose mapping was
 *                            not inherited: release the descriptor only.
 *   after_fork(inst)         in a fork child: close the holds inherited.
 *
 * A new backend is one file: its ops table, added to the switch's table.
 * Helpers for backends whose objects are files reached by a descriptor
 * (names, reservation, the ownership and size checks) are in fdobj.c, the
 * directory sweep in sweep.c; a call goes switch -> backend -> helper.
 *
 * Error messages follow PostgreSQL's style:
 *   could not <verb> shared memory segment "<name>": <strerror>
 * errno is saved at the failing step, before cleanup runs.
 */
#ifndef DYNSHM_DSM_IMPL_INT_H
#define DYNSHM_DSM_IMPL_INT_H

#include <stdbool.h>
#include <sys/stat.h>

#include <dynshm/dsm_impl.h>

#include "../common/internal.h"
#include "syscalls.h"

/* Longest OS name any backend produces (the mmap path dominates). */
#define DSM_IMPL_NAME_MAX 4096

struct dsm_impl_instance {
    dsm_impl_type type;
    const struct dsm__impl_ops *ops;
    uint64_t id;          /* from the data directory's device and inode */
    char idstr[17];       /* id as 16 hex digits */
    char *datadir;        /* as given, for messages */
    int dirfd;            /* mmap: the segment directory; otherwise -1 */
    char *dirpath;        /* mmap: its path, for messages; otherwise NULL */
    void *priv;           /* backend state (memfd: registry and holds); NULL otherwise */
    struct dsm__region *region; /* the preallocated region, when mapped (region.c) */
    /* huge pages (hugepages.c): set once by dsm__impl_set_huge_pages() */
    int huge_mode;        /* DSM_HUGE_OFF, DSM_HUGE_TRY, DSM_HUGE_ON */
    bool huge_active;     /* creates ask for huge pages of huge_size bytes */
    bool huge_said;       /* try's fallback has been logged (once per instance) */
    size_t huge_size;
};

/* The huge_pages setting's values. */
enum { DSM_HUGE_OFF = 0, DSM_HUGE_TRY = 1, DSM_HUGE_ON = 2 };

struct dsm__impl_ops {
    int (*open)(dsm_impl_instance *inst);
    void (*close)(dsm_impl_instance *inst);
    int (*create)(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                  dsm_impl_segment *seg);
    int (*attach)(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg);
    int (*detach)(dsm_impl_instance *inst, dsm_impl_segment *seg);
    int (*destroy)(dsm_impl_instance *inst, const dsm_impl_segment *seg);
    int (*name)(const dsm_impl_instance *inst, dsm_handle handle, char *buf, size_t len);
    int (*probe)(const dsm_impl_instance *inst, const dsm_impl_segment *seg);
    int (*sweep)(dsm_impl_instance *inst, dsm_handle keep, int dry_run,
                 void (*report)(const char *name, void *arg), void *arg);
    int (*export_fd)(const dsm_impl_instance *inst, const dsm_impl_segment *seg);
    int (*hold)(dsm_impl_instance *inst, dsm_handle handle, int fd);
    int (*unhold)(dsm_impl_instance *inst, dsm_handle handle);
    void (*forget)(dsm_impl_instance *inst, dsm_impl_segment *seg);
    void (*after_fork)(dsm_impl_instance *inst);
};

extern const struct dsm__impl_ops dsm__impl_none_ops;
#ifdef DSM_HAVE_POSIX
extern const struct dsm__impl_ops dsm__impl_posix_ops;
#endif
#ifdef DSM_HAVE_SYSV
extern const struct dsm__impl_ops dsm__impl_sysv_ops;
#endif
#ifdef DSM_HAVE_MMAP
extern const struct dsm__impl_ops dsm__impl_mmap_ops;
#endif
#ifdef DSM_HAVE_MEMFD
extern const struct dsm__impl_ops dsm__impl_memfd_ops;
#endif

/* The mmap backend's directory inside the data directory. */
#define DSM_IMPL_MMAP_DIR "dynshm_mmap"

/* The name prefix every object of an instance carries: "dynshm.<id>." */
#define DSM_IMPL_NAME_PREFIX "dynshm."

/* Bytes of "dynshm.<16 hex id>.<16 hex handle>" and its terminating NUL. */
#define DSM_IMPL_OBJECT_NAME_SIZE (sizeof(DSM_IMPL_NAME_PREFIX) + 16 + 1 + 16)

/*
 * Write "dynshm.<id>.<handle>" (DSM_IMPL_OBJECT_NAME_SIZE bytes with the
 * NUL) at buf; returns buf.  Built by hand because create, attach and
 * destroy need the name on every call, and snprintf cost more than the
 * rest of dynshm's bookkeeping there.
 */
char *dsm__impl_object_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf);

/* ---- the switch's internal entry points (dsm_impl.c) ---------------------------- */

/* DSM_EDISABLED with its message and hint: what every use of `none` returns. */
int dsm__impl_disabled(void);

/* The probe op, for cleanup's dry runs; see the contract above. */
int dsm__impl_probe(const dsm_impl_instance *inst, const dsm_impl_segment *seg);

/*
 * Remove every object named with inst's prefix except `keep` (the sweep
 * op; 0 for backends without names).  With dry_run, only report.
 * report(name, arg) is called for each object removed.  Returns the
 * count, or a negative error if the scan itself failed.
 */
int dsm__impl_sweep(dsm_impl_instance *inst, dsm_handle keep, int dry_run,
                    void (*report)(const char *name, void *arg), void *arg);

/* The optional holder ops (see the contract above). */
int dsm__impl_export_fd(const dsm_impl_instance *inst, const dsm_impl_segment *seg);
int dsm__impl_hold(dsm_impl_instance *inst, dsm_handle handle, int fd);
int dsm__impl_unhold(dsm_impl_instance *inst, dsm_handle handle);
void dsm__impl_forget(dsm_impl_instance *inst, dsm_impl_segment *seg);
void dsm__impl_after_fork(dsm_impl_instance *inst);

/* ---- huge pages (hugepages.c) ---------------------------------------------------- */

/*
 * Configure huge pages for inst: mode DSM_HUGE_*, size in bytes (0: the
 * system's default).  With on, an error naming what is missing if this
 * backend and system cannot have them; with try, the reason is logged once
 * and creates use normal pages.
 */
int dsm__impl_set_huge_pages(dsm_impl_instance *inst, int mode, size_t size);
/* size rounded up to the huge page size when huge pages are active. */
size_t dsm__impl_huge_round(const dsm_impl_instance *inst, size_t size);
/* try: say once (log hook) why a create falls back to normal pages. */
void dsm__impl_huge_fallback(dsm_impl_instance *inst, const char *fmt, ...) DSM_PRINTF(2, 3);
/* A count from /sys/kernel/mm/hugepages/hugepages-<size>kB/<which>, or -1. */
long dsm__huge_pages_count(size_t page_size, const char *which);
/* log2 of a power-of-two page size (for MFD_HUGE_SHIFT / SHM_HUGE_SHIFT). */
int dsm__huge_shift(size_t page_size);

/* ---- helpers of the descriptor backends (fdobj.c, sweep.c) ---------------------- */

/*
 * Give fd `size` bytes of real backing store (see fdobj.c for the signal
 * rule).  Returns 0 or a positive errno value (posix_fallocate's
 * convention); EINTR means a stop signal's handler ran.
 */
int dsm__impl_reserve(int fd, size_t size);

/* Map fd shared read-write; returns 0 and *addr, or a positive errno. */
int dsm__impl_map(int fd, size_t size, void **addr);

/* Detach op of the descriptor backends: munmap and clear seg->address. */
int dsm__impl_munmap(dsm_impl_instance *inst, dsm_impl_segment *seg);

/* Check an opened object is a plain object owned by us and not open to others. */
int dsm__impl_check_owner(const struct stat *st, const char *what, const char *name);
/* The same check without a message, for callers that name the object only on failure. */
bool dsm__impl_owned(const struct stat *st);

/* The one size check of an existing object: 0 is "still being created"
 * (-EAGAIN), more than DSM_IMPL_MAX_SIZE is not ours (DSM_EFOREIGN). */
int dsm__impl_check_size(off_t size, const char *name);

/* The common tail of create for a new, empty object open on fd: reserve
 * and map, filling *seg.  The caller closes fd and, on failure, removes the
 * object. */
int dsm__impl_create_fd(dsm_impl_instance *inst, int fd, dsm_handle handle, size_t size,
                        dsm_impl_segment *seg);

/* The common tail of attach for an object open on fd: check owner and
 * size, map, fill *seg.  The caller closes fd. */
int dsm__impl_attach_fd(dsm_impl_instance *inst, int fd, dsm_handle handle,
                        dsm_impl_segment *seg);

/* Sweep one directory, whose descriptor dfd it takes over (see sweep.c). */
int dsm__impl_sweep_dir(dsm_impl_instance *inst, int dfd, dsm_handle keep, int dry_run,
                        void (*report)(const char *name, void *arg), void *arg);

#endif /* DYNSHM_DSM_IMPL_INT_H */
