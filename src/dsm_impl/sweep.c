/* SPDX-License-Identifier: MIT */
/*
 * sweep.c - find (and remove) every object carrying an instance's name
 * prefix in one directory, without a control segment.
 *
 * Used by start-up cleanup after the control-segment pass (to catch what a
 * corrupt or missing table could not list) and by the operator tool.  Only
 * names of the exact form dynshm.<this instance id>.<16 hex digits> are
 * touched: the prefix proves the object belongs to this data directory.
 * SysV keys carry no name and cannot be swept; they are cleaned only
 * through the control segment, where ownership can be proven.
 *
 * The prefix is not proof enough on its own: another user can create a
 * file of that name in /dev/shm, and root may remove it.  So an entry is
 * removed only if it is owned by the effective uid, even when that uid is
 * 0, and is a regular file or a symbolic link (the link itself is removed,
 * never its target).  Each backend with names has a sweep op that opens
 * its directory afresh (close-on-exec, its own offset: a dup() of the
 * instance's descriptor would share the offset, and a second sweep would
 * start at the end) and hands it here; removal goes back through the
 * backend's destroy op, so every step is in the fault-injection table.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsm_impl_int.h"

/* The handle in an object name of this instance, or 0 if the name is not one. */
static dsm_handle name_handle(const dsm_impl_instance *inst, const char *name)
{
    size_t plen = strlen(DSM_IMPL_NAME_PREFIX);
    dsm_handle h = 0;

    if (strncmp(name, DSM_IMPL_NAME_PREFIX, plen) != 0 ||
        strncmp(name + plen, inst->idstr, 16) != 0 || name[plen + 16] != '.')
        return 0;
    name += plen + 17;
    if (strlen(name) != 16)
        return 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];

        if (c >= '0' && c <= '9')
            h = (h << 4) | (dsm_handle)(c - '0');
        else if (c >= 'a' && c <= 'f')
            h = (h << 4) | (dsm_handle)(c - 'a' + 10);
        else
            return 0;
    }
    return h;
}

int dsm__impl_sweep_dir(dsm_impl_instance *inst, int dfd, dsm_handle keep, int dry_run,
                        void (*report)(const char *name, void *arg), void *arg)
{
    DIR *d = fdopendir(dfd);
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        int rc = -errno;

        dsm__sys.close(dfd);
        return dsm__error(rc, "could not scan for leftover segments: %m");
    }
    while ((e = readdir(d)) != NULL) {
        dsm_handle h = name_handle(inst, e->d_name);
        char name[DSM_IMPL_NAME_MAX];
        struct stat st;
        int rc = 0;

        if (h == 0 || h == keep)
            continue;
        if (dsm__sys.fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) || st.st_uid != geteuid())
            continue; /* gone meanwhile, or not ours whatever its name says */
        inst->ops->name(inst, h, name, sizeof(name));
        if (!dry_run) {
            dsm_impl_segment seg = {.handle = h, .os_id = -1};

            rc = inst->ops->destroy(inst, &seg);
        }
        if (rc == 0) {
            n++;
            if (report)
                report(name, arg);
        }
    }
    closedir(d);
    return n;
}
