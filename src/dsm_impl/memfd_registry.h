/* SPDX-License-Identifier: MIT */
/*
 * memfd_registry.h - where the memfd backend finds the processes that hold
 * a segment: a small shared table, one per data directory.
 *
 * A memfd segment has no name, so attach by handle needs to learn which
 * process has it open and under which descriptor number.  The registry
 * answers that: per handle, the segment's identity (device, inode, size)
 * and the list of its holders (pid + start time, descriptor number).
 * Nothing in it is trusted for safety: an attacher proves what it opened
 * by the inode, owner and mode before mapping (see dsm_impl_memfd.c).
 * See memfd_registry.c for the layout, locking and crash rules.
 */
#ifndef DYNSHM_MEMFD_REGISTRY_H
#define DYNSHM_MEMFD_REGISTRY_H

#include <stdint.h>
#include <sys/types.h>

#include <dynshm/dsm_impl.h>

/* The registry file inside the data directory. */
#define DSM_MEMFD_REGISTRY "dynshm_memfd"

/* At most this many holders are copied out by one lookup (attach tries them in turn). */
#define DSM_MEMFD_MAX_TRY 8

/* Record flags. */
#define DSM_MEMFD_HUGE 0x1u /* backed by huge pages */

/* What a holder entry stands for. */
enum dsm__memfd_kind {
    DSM_MEMFD_FREE = 0,
    DSM_MEMFD_MAPPED = 1, /* the process maps the segment and keeps its descriptor */
    DSM_MEMFD_HOLD = 2,   /* the process keeps a descriptor for a pin (no mapping needed) */
    DSM_MEMFD_ORPHAN = 3  /* the segment was destroyed; its process frees the entry */
};

struct dsm__memfd_reg;

/* Where to find a segment: its identity and up to DSM_MEMFD_MAX_TRY holders. */
struct dsm__memfd_loc {
    uint64_t dev, ino, size;
    uint32_t flags;
    int n;
    struct {
        int32_t pid;
        int32_t fd;
    } h[DSM_MEMFD_MAX_TRY];
};

/* Open (creating if needed) the registry of a data directory; 0 or an error. */
int dsm__memfd_reg_open(const char *datadir, struct dsm__memfd_reg **out);
void dsm__memfd_reg_close(struct dsm__memfd_reg *r);

/*
 * Enter a new segment with this process as its first holder (kind MAPPED,
 * descriptor fd).  -EEXIST, silently, if the handle is taken or its bucket
 * is full (the caller retries with another handle, as for a name
 * collision).  *holder receives the entry to pass to drop_holder.
 */
int dsm__memfd_reg_insert(struct dsm__memfd_reg *r, dsm_handle handle, uint64_t dev,
                          uint64_t ino, uint64_t size, uint32_t flags, int fd,
                          uint32_t *holder);

/* Copy where handle's segment can be found; -ENOENT if not registered. */
int dsm__memfd_reg_find(struct dsm__memfd_reg *r, dsm_handle handle,
                        struct dsm__memfd_loc *loc);

/*
 * Add this process as a holder of handle's segment (kind MAPPED or HOLD),
 * if it is still registered with inode ino; -ENOENT if it was destroyed
 * meanwhile, -ENOSPC if the holder pool is full.
 */
int dsm__memfd_reg_add_holder(struct dsm__memfd_reg *r, dsm_handle handle, uint64_t ino,
                              int fd, int kind, uint32_t *holder);

/* Drop this process's holder entry (checked: it must be ours, with descriptor fd). */
void dsm__memfd_reg_drop_holder(struct dsm__memfd_reg *r, uint32_t holder, int fd);

/*
 * Remove handle's record (its mappings stay valid; new attaches fail).
 * ino >= 0 must match the registered inode, else DSM_EFOREIGN-like -ESTALE.
 * -ENOENT if not registered.
 */
int dsm__memfd_reg_remove(struct dsm__memfd_reg *r, dsm_handle handle, int64_t ino);

/* 1 if handle is registered (with inode ino, when ino >= 0), else 0. */
int dsm__memfd_reg_exists(struct dsm__memfd_reg *r, dsm_handle handle, int64_t ino);

/*
 * Drop holders of handle's record whose process is gone; remove the record
 * if none is left.  Returns 1 if the record was removed, 0 otherwise.
 */
int dsm__memfd_reg_prune(struct dsm__memfd_reg *r, dsm_handle handle);

#endif /* DYNSHM_MEMFD_REGISTRY_H */
