/* SPDX-License-Identifier: MIT */
/*
 * dynshm/dsm_impl.h - the raw layer: create, attach, detach and destroy
 * operating-system shared memory segments through one of several backends.
 *
 * Most applications use dynshm/dsm.h, which adds reference counting,
 * resource owners and crash cleanup on top.  This layer is public for
 * programs that want the raw segments and manage lifetimes themselves.
 *
 * Backends (chosen at run time, see dsm_impl_type_from_name()):
 *   posix  shm_open()/mmap(): objects in /dev/shm named
 *          /dynshm.<instance>.<handle>
 *   sysv   shmget()/shmat(): keys derived from the instance and the handle;
 *          ownership is checked (creator uid, mode, id, size) before any use
 *   mmap   regular files <datadir>/dynshm_mmap/dynshm.<instance>.<handle>,
 *          mapped shared
 *   memfd  (Linux) memfd_create() anonymous files: no name anywhere, freed by
 *          the kernel when the last descriptor and mapping go; attach finds
 *          a process holding the segment through a registry in the data
 *          directory and reopens /proc/<pid>/fd/<n> after an identity check
 *   none   the facility is off: every operation fails with DSM_EDISABLED
 *
 * Every segment is created exclusively (a collision is reported as -EEXIST
 * so the caller can retry with another handle), owner-only (0600), with
 * close-on-exec descriptors, and fully backed: if memory runs out, create
 * fails with -ENOSPC or -ENOMEM instead of a later SIGBUS.
 */
#ifndef DYNSHM_DSM_IMPL_H
#define DYNSHM_DSM_IMPL_H

#include <dynshm/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsm_impl_type {
    DSM_IMPL_NONE = 0,
    DSM_IMPL_POSIX = 1,
    DSM_IMPL_SYSV = 2,
    DSM_IMPL_MMAP = 3,
    DSM_IMPL_MEMFD = 4
} dsm_impl_type;
#define DSM_IMPL_NTYPES 5

/* The largest size any backend accepts (128 TiB); larger requests get -EINVAL. */
#define DSM_IMPL_MAX_SIZE ((size_t)1 << 47)

/* Name of a backend ("posix", ...), or NULL for a value out of range. */
DSM_EXPORT const char *dsm_impl_type_name(dsm_impl_type type);

/* Look a backend up by name; -EINVAL (message lists the valid names) if unknown. */
DSM_EXPORT int dsm_impl_type_from_name(const char *name, dsm_impl_type *out);

/* 1 if this build and platform support the backend, else 0. */
DSM_EXPORT int dsm_impl_type_available(dsm_impl_type type);

/* The best backend this platform has (posix where available). */
DSM_EXPORT dsm_impl_type dsm_impl_default_type(void);

/*
 * An instance: one backend bound to one data directory.  The directory's
 * identity (device and inode) gives the instance its id, which prefixes
 * every name the instance creates, so two servers never collide and an
 * operator can tell whose segment is whose.
 */
typedef struct dsm_impl_instance dsm_impl_instance;

DSM_EXPORT int dsm_impl_instance_open(dsm_impl_type type, const char *datadir,
                                      dsm_impl_instance **out);
DSM_EXPORT void dsm_impl_instance_close(dsm_impl_instance *inst);
DSM_EXPORT dsm_impl_type dsm_impl_instance_type(const dsm_impl_instance *inst);
/* 16 hex digits identifying the instance; valid until the instance is closed. */
DSM_EXPORT const char *dsm_impl_instance_id(const dsm_impl_instance *inst);

/*
 * One mapped segment as the raw layer sees it.  Filled by create and
 * attach; the caller owns the struct and passes it back to detach and
 * destroy.  Fields after `size` identify the OS object for ownership checks.
 */
typedef struct dsm_impl_segment {
    dsm_handle handle;
    void *address;      /* NULL when not mapped */
    size_t size;        /* bytes the caller can use */
    int64_t os_id;      /* sysv: shmid; memfd: inode number; other backends: -1 */
    int64_t reserved[2]; /* backend-private (memfd: this process's descriptor) */
} dsm_impl_segment;

/*
 * Create and map a new segment of `size` bytes (1 .. DSM_IMPL_MAX_SIZE).
 * Returns -EEXIST, with no log message, if an object of that name exists:
 * pick another handle and retry.  On any failure nothing is left behind.
 */
DSM_EXPORT int dsm_impl_create(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                               dsm_impl_segment *seg);

/* Map an existing segment; -ENOENT if there is none under that handle. */
DSM_EXPORT int dsm_impl_attach(dsm_impl_instance *inst, dsm_handle handle,
                               dsm_impl_segment *seg);

/* Unmap; the segment itself lives on.  seg->address is NULL afterwards. */
DSM_EXPORT int dsm_impl_detach(dsm_impl_instance *inst, dsm_impl_segment *seg);

/*
 * Remove the segment from the system's name space.  Existing mappings stay
 * valid until detached; new attaches fail.  For sysv, seg->os_id (if >= 0)
 * and seg->size (if > 0) must match the object found, or nothing is removed
 * and DSM_EFOREIGN is returned.  Returns -ENOENT if it is already gone.
 */
DSM_EXPORT int dsm_impl_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg);

/*
 * The OS-level name of a handle's segment: "/dynshm.<id>.<handle>" (posix),
 * "key 0x1234abcd" (sysv), the file path (mmap), "memfd:dynshm.<id>.<handle>"
 * (memfd: the name /proc/<pid>/fd shows; nothing can be opened by it).
 * Returns -ERANGE if buf is too small.
 */
DSM_EXPORT int dsm_impl_segment_name(const dsm_impl_instance *inst, dsm_handle handle,
                                     char *buf, size_t buflen);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_DSM_IMPL_H */
