/* SPDX-License-Identifier: MIT */
/*
 * hugepages.c - huge pages for dynamic segments: what the system offers,
 * and the off / try / on policy (PostgreSQL's huge_pages semantics).
 *
 * Why: a large segment touched at random spends much of its time in TLB
 * misses; huge pages (2 MiB or 1 GiB instead of 4 KiB) cut them by orders
 * of magnitude and make first touch cheaper per byte.  The price is that
 * they must be reserved beforehand (vm.nr_hugepages), every segment is
 * rounded up to a whole huge page, and not every backend can use them.
 *
 * Which backends can: memfd (MFD_HUGETLB), sysv (SHM_HUGETLB), and mmap
 * when its segment directory is a hugetlbfs mount.  posix cannot:
 * shm_open() objects live on the tmpfs at /dev/shm, which has no hugetlb
 * pages.
 *
 * The policy, decided once when the instance is configured and applied at
 * each create:
 *   off  normal pages.
 *   try  huge pages when the backend, the page size and a reservation
 *        allow; otherwise, and whenever a create cannot get them, normal
 *        pages -- said once per instance through the log hook.
 *   on   huge pages or an error naming what is missing: the backend, a
 *        hugetlbfs mount, the page size, reserved pages, the
 *        hugetlb_shm_group / CAP_IPC_LOCK permission for SysV.
 * Sizes are rounded up to the huge page size and reported as the
 * segment's size (dsm_segment_map_length()).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "dsm_impl_int.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

/* Hugepagesize from /proc/meminfo, in bytes; 0 if unknown. */
static size_t default_size(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[128];
    unsigned long kb = 0;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (size_t)kb << 10;
}

long dsm__huge_pages_count(size_t page_size, const char *which)
{
    char path[128];
    long n = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%zukB/%s", page_size >> 10,
             which);
    if ((f = fopen(path, "re")) != NULL) {
        if (fscanf(f, "%ld", &n) != 1)
            n = -1;
        fclose(f);
    }
    return n;
}

int dsm__huge_shift(size_t page_size)
{
    int s = 0;

    while (((size_t)1 << s) < page_size)
        s++;
    return s;
}

size_t dsm__impl_huge_round(const dsm_impl_instance *inst, size_t size)
{
    size_t p = inst->huge_size;

    if (!inst->huge_active || p == 0 || size > DSM_IMPL_MAX_SIZE)
        return size;
    return (size + p - 1) & ~(p - 1);
}

void dsm__impl_huge_fallback(dsm_impl_instance *inst, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    if (__atomic_exchange_n(&inst->huge_said, true, __ATOMIC_RELAXED))
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    dsm__log(DSM_LOG_WARNING, "huge_pages = try: %s; using normal pages", why);
}

/* Why this instance cannot have huge pages of `size` bytes, or "" if it can. */
static void why_not(const dsm_impl_instance *inst, size_t size, char *why, size_t len)
{
    char dir[160];
    struct statfs sf;
    long n;

    why[0] = '\0';
    switch (inst->type) {
    case DSM_IMPL_MEMFD:
    case DSM_IMPL_SYSV:
        break;
    case DSM_IMPL_MMAP:
        if (fstatfs(inst->dirfd, &sf) != 0 || (unsigned long)sf.f_type != HUGETLBFS_MAGIC) {
            snprintf(why, len, "the mmap directory \"%s\" is not on a hugetlbfs mount",
                     inst->dirpath);
            return;
        }
        if ((size_t)sf.f_bsize != size) {
            snprintf(why, len, "the hugetlbfs mount under \"%s\" has %zu kB pages, not %zu kB",
                     inst->dirpath, (size_t)sf.f_bsize >> 10, size >> 10);
            return;
        }
        break;
    default:
        snprintf(why, len, "the %s backend cannot use huge pages (shm_open objects live on the "
                           "tmpfs /dev/shm); use memfd, sysv, or mmap on a hugetlbfs mount",
                 dsm_impl_type_name(inst->type));
        return;
    }
    snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%zukB", size >> 10);
    if (size == 0 || (size & (size - 1)) != 0 || access(dir, F_OK) != 0) {
        snprintf(why, len, "huge page size %zu kB is not supported by this kernel (see "
                           "/sys/kernel/mm/hugepages)", size >> 10);
        return;
    }
    n = dsm__huge_pages_count(size, "nr_hugepages");
    if (n <= 0)
        snprintf(why, len, "no %zu kB huge pages are reserved (%s/nr_hugepages is %ld; "
                           "vm.nr_hugepages sets the default size's)",
                 size >> 10, dir, n);
}

int dsm__impl_set_huge_pages(dsm_impl_instance *inst, int mode, size_t size)
{
    char why[512];

    inst->huge_mode = mode;
    inst->huge_active = false;
    inst->huge_size = 0;
    if (mode == DSM_HUGE_OFF || inst->type == DSM_IMPL_NONE)
        return 0;
    if (size == 0 && (size = default_size()) == 0) {
        snprintf(why, sizeof(why), "this system reports no huge page size");
    } else {
        why_not(inst, size, why, sizeof(why));
    }
    if (why[0] == '\0') {
        inst->huge_active = true;
        inst->huge_size = size;
        return 0;
    }
    if (mode == DSM_HUGE_ON)
        return dsm__error(-EINVAL, "huge_pages = on, but %s", why);
    dsm__impl_huge_fallback(inst, "%s", why);
    return 0;
}
