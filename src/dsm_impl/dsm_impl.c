/* SPDX-License-Identifier: MIT */
/*
 * dsm_impl.c - the backend switch: one table of backends, argument checks
 * and instance set-up.
 *
 * Backend names exist only in `backends` below; everything that needs a
 * name (settings, messages, tools) asks this file.  The switch validates
 * every argument once so the backends stay small and trust their inputs.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsm_impl_int.h"
#include "region.h"

static const struct {
    const char *name;
    const struct dsm__impl_ops *ops; /* NULL when the platform lacks it */
} backends[DSM_IMPL_NTYPES] = {
    [DSM_IMPL_NONE] = {"none", &dsm__impl_none_ops},
#ifdef DSM_HAVE_POSIX
    [DSM_IMPL_POSIX] = {"posix", &dsm__impl_posix_ops},
#else
    [DSM_IMPL_POSIX] = {"posix", NULL},
#endif
#ifdef DSM_HAVE_SYSV
    [DSM_IMPL_SYSV] = {"sysv", &dsm__impl_sysv_ops},
#else
    [DSM_IMPL_SYSV] = {"sysv", NULL},
#endif
#ifdef DSM_HAVE_MMAP
    [DSM_IMPL_MMAP] = {"mmap", &dsm__impl_mmap_ops},
#else
    [DSM_IMPL_MMAP] = {"mmap", NULL},
#endif
#ifdef DSM_HAVE_MEMFD
    [DSM_IMPL_MEMFD] = {"memfd", &dsm__impl_memfd_ops},
#else
    [DSM_IMPL_MEMFD] = {"memfd", NULL},
#endif
};

const char *dsm_impl_type_name(dsm_impl_type type)
{
    if ((unsigned)type >= DSM_IMPL_NTYPES)
        return NULL;
    return backends[type].name;
}

int dsm_impl_type_available(dsm_impl_type type)
{
    return (unsigned)type < DSM_IMPL_NTYPES && backends[type].ops != NULL;
}

dsm_impl_type dsm_impl_default_type(void)
{
    /* configure names the best backend; it is always one that was built. */
    dsm_impl_type t = DSM_IMPL_NONE;

    if (dsm_impl_type_from_name(DSM_DEFAULT_BACKEND, &t) == 0 && dsm_impl_type_available(t))
        return t;
    return DSM_IMPL_NONE;
}

/* The backends this build has, "posix, sysv, mmap": for messages. */
static void list_backends(char *buf, size_t len, bool with_none)
{
    buf[0] = '\0';
    for (unsigned i = 0, at = 0; i < DSM_IMPL_NTYPES && at < len; i++) {
        if (backends[i].ops != NULL && (with_none || i != DSM_IMPL_NONE))
            at += (unsigned)snprintf(buf + at, len - at, "%s%s", at ? ", " : "",
                                     backends[i].name);
    }
}

int dsm__impl_disabled(void)
{
    char valid[64];
    int rc = dsm__error(DSM_EDISABLED, "dynamic shared memory is disabled "
                                       "(dynamic_shared_memory_type = none)");

    list_backends(valid, sizeof(valid), false);
    return dsm__errhint(rc, "Set dynamic_shared_memory_type to one of %s to use it.", valid);
}

int dsm_impl_type_from_name(const char *name, dsm_impl_type *out)
{
    char valid[64] = "";

    for (unsigned i = 0; i < DSM_IMPL_NTYPES; i++) {
        if (name != NULL && strcmp(name, backends[i].name) == 0) {
            if (backends[i].ops == NULL)
                return dsm__error(-ENOTSUP,
                                  "dynamic shared memory type \"%s\" is not supported on this "
                                  "platform",
                                  name);
            *out = (dsm_impl_type)i;
            return 0;
        }
    }
    list_backends(valid, sizeof(valid), true);
    return dsm__error(-EINVAL, "invalid dynamic shared memory type \"%.64s\"; valid values: %s",
                      name ? name : "(null)", valid);
}

int dsm_impl_instance_open(dsm_impl_type type, const char *datadir, dsm_impl_instance **out)
{
    dsm_impl_instance *inst;
    struct stat st;
    int rc;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the instance");
    *out = NULL;
    if (!dsm_impl_type_available(type)) {
        const char *n = dsm_impl_type_name(type);

        return dsm__error(-ENOTSUP, "dynamic shared memory type %s%s%s is not supported",
                          n ? "\"" : "", n ? n : "(out of range)", n ? "\"" : "");
    }
    if (datadir == NULL || datadir[0] == '\0')
        return dsm__error(-EINVAL, "a data directory is required");
    if (stat(datadir, &st) != 0)
        return dsm__error(-errno, "could not access data directory \"%s\": %m", datadir);
    if (!S_ISDIR(st.st_mode))
        return dsm__error(-ENOTDIR, "data directory \"%s\" is not a directory", datadir);

    inst = calloc(1, sizeof(*inst));
    if (inst == NULL || (inst->datadir = strdup(datadir)) == NULL) {
        free(inst);
        return dsm__error(-ENOMEM, "out of memory");
    }
    inst->type = type;
    inst->ops = backends[type].ops;
    inst->dirfd = -1;
    /*
     * The id must differ between data directories on one host and stay the
     * same for one directory across restarts (start-up cleanup finds the old
     * instance's objects by it), so it is derived from device and inode.
     */
    inst->id = dsm__mix64(dsm__mix64((uint64_t)st.st_dev) ^ (uint64_t)st.st_ino);
    snprintf(inst->idstr, sizeof(inst->idstr), "%016llx", (unsigned long long)inst->id);

    rc = inst->ops->open ? inst->ops->open(inst) : 0;
    if (rc < 0) {
        free(inst->datadir);
        free(inst);
        return rc;
    }
    *out = inst;
    return 0;
}

void dsm_impl_instance_close(dsm_impl_instance *inst)
{
    if (inst == NULL)
        return;
    dsm__region_detach(inst);
    if (inst->ops->close)
        inst->ops->close(inst);
    free(inst->dirpath);
    free(inst->datadir);
    free(inst);
}

dsm_impl_type dsm_impl_instance_type(const dsm_impl_instance *inst)
{
    return inst ? inst->type : DSM_IMPL_NONE;
}

const char *dsm_impl_instance_id(const dsm_impl_instance *inst)
{
    return inst ? inst->idstr : "";
}

static int check_common(const dsm_impl_instance *inst, dsm_handle handle, const void *seg)
{
    if (inst == NULL)
        return dsm__error(-EINVAL, "no dynamic shared memory instance given");
    if (seg == NULL)
        return dsm__error(-EINVAL, "no segment descriptor given");
    if (handle == DSM_HANDLE_INVALID)
        return dsm__error(-EINVAL, "invalid dynamic shared memory handle 0");
    return 0;
}

int dsm_impl_create(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                    dsm_impl_segment *seg)
{
    int rc = check_common(inst, handle, seg);

    if (rc < 0)
        return rc;
    if (size == 0)
        return dsm__error(-EINVAL, "invalid shared memory segment size 0: must be at least "
                                   "1 byte");
    if (size > DSM_IMPL_MAX_SIZE)
        return dsm__error(-EINVAL,
                          "invalid shared memory segment size %zu: the maximum is %zu bytes",
                          size, DSM_IMPL_MAX_SIZE);
    memset(seg, 0, sizeof(*seg));
    seg->os_id = -1;
    return inst->ops->create(inst, handle, size, seg);
}

int dsm_impl_attach(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    int rc = check_common(inst, handle, seg);

    if (rc < 0)
        return rc;
    /* A segment carved from the region: no system call (region.c). */
    if (inst->region != NULL && dsm__region_lookup(inst, handle, seg) == 0)
        return 0;
    memset(seg, 0, sizeof(*seg));
    seg->os_id = -1;
    return inst->ops->attach(inst, handle, seg);
}

int dsm_impl_detach(dsm_impl_instance *inst, dsm_impl_segment *seg)
{
    int rc = check_common(inst, seg ? seg->handle : 0, seg);

    if (rc < 0 || seg == NULL) /* the second test only tells the analyzer */
        return rc;
    if (seg->address == NULL)
        return dsm__error(-EINVAL, "shared memory segment %016llx is not mapped",
                          (unsigned long long)seg->handle);
    if (dsm__region_seg(seg)) { /* part of the region's mapping, which stays */
        seg->address = NULL;
        return 0;
    }
    return inst->ops->detach(inst, seg);
}

int dsm_impl_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    int rc = check_common(inst, seg ? seg->handle : 0, seg);

    if (rc < 0 || seg == NULL) /* the second test only tells the analyzer */
        return rc;
    /* Every destroy path (detach, unpin, reclaim, reset) asks the region first. */
    if (inst->region != NULL && (rc = dsm__region_free(inst, seg->handle)) != -ENOENT)
        return rc;
    return inst->ops->destroy(inst, seg);
}

int dsm_impl_segment_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf,
                          size_t buflen)
{
    if (inst == NULL || buf == NULL)
        return dsm__error(-EINVAL, "no instance or buffer given");
    return inst->ops->name(inst, handle, buf, buflen);
}

int dsm__impl_probe(const dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    if (inst == NULL || seg == NULL || seg->handle == DSM_HANDLE_INVALID)
        return dsm__error(-EINVAL, "nothing to probe");
    if (inst->region != NULL) {
        dsm_impl_segment r;

        if (dsm__region_lookup(inst, seg->handle, &r) == 0)
            return 1;
    }
    return inst->ops->probe ? inst->ops->probe(inst, seg) : 0;
}

int dsm__impl_sweep(dsm_impl_instance *inst, dsm_handle keep, int dry_run,
                    void (*report)(const char *name, void *arg), void *arg)
{
    if (inst == NULL)
        return dsm__error(-EINVAL, "no dynamic shared memory instance given");
    return inst->ops->sweep ? inst->ops->sweep(inst, keep, dry_run, report, arg) : 0;
}

int dsm__impl_export_fd(const dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    if (inst == NULL || seg == NULL || seg->address == NULL || inst->ops->export_fd == NULL ||
        dsm__region_seg(seg))
        return -ENOTSUP;
    return inst->ops->export_fd(inst, seg);
}

int dsm__impl_hold(dsm_impl_instance *inst, dsm_handle handle, int fd)
{
    if (inst == NULL || inst->ops->hold == NULL)
        return -ENOTSUP;
    return inst->ops->hold(inst, handle, fd);
}

int dsm__impl_unhold(dsm_impl_instance *inst, dsm_handle handle)
{
    if (inst == NULL || inst->ops->unhold == NULL)
        return -ENOTSUP;
    return inst->ops->unhold(inst, handle);
}

void dsm__impl_forget(dsm_impl_instance *inst, dsm_impl_segment *seg)
{
    if (inst != NULL && seg != NULL && inst->ops->forget != NULL && !dsm__region_seg(seg))
        inst->ops->forget(inst, seg);
}

void dsm__impl_after_fork(dsm_impl_instance *inst)
{
    if (inst != NULL && inst->ops->after_fork != NULL)
        inst->ops->after_fork(inst);
}
