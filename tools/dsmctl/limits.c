/* SPDX-License-Identifier: MIT */
/*
 * limits.c - the host limits behind the commonest failures, next to what
 * the instance uses of them, for `dsmctl status`.
 *
 * A create fails with ENOSPC when the tmpfs behind /dev/shm (or the file
 * system of the mmap directory) is full, with ENOSPC or EINVAL when System
 * V's shmmni, shmall or shmmax is reached, and a mapping fails with ENOMEM
 * when a process reaches vm.max_map_count.  dynshm reserves memory at
 * create time so none of these turns into SIGBUS, but an operator wants
 * to see them coming: each is read here from the same place the kernel
 * enforces it (statvfs, /proc/sys/kernel, /proc/sysvipc/shm,
 * /proc/PID/maps) and printed as used / limit.
 *
 * Only reads; a limit that cannot be read is reported as unknown, never
 * guessed.  The System V figures are host-wide (every user's segments
 * count against shmmni and shmall), as the kernel counts them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "dsmctl.h"

static int read_u64(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "re");
    unsigned long long v;
    int ok;

    if (f == NULL)
        return -errno;
    ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (!ok)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Segments and pages in use host-wide, from the kernel's own table. */
static int sysv_usage(uint64_t page, uint64_t *segs, uint64_t *pages)
{
    FILE *f = fopen("/proc/sysvipc/shm", "re");
    char line[512];

    *segs = *pages = 0;
    if (f == NULL)
        return -errno;
    while (fgets(line, sizeof(line), f) != NULL) {
        long long key, id, size;
        unsigned perms;

        if (sscanf(line, "%lld %lld %o %lld", &key, &id, &perms, &size) != 4 || size < 0)
            continue; /* the title line */
        (*segs)++;
        *pages += ((uint64_t)size + page - 1) / page;
    }
    fclose(f);
    return 0;
}

/* Lines of /proc/PID/maps: the mappings that count against vm.max_map_count. */
static long count_maps(pid_t pid)
{
    char path[64], buf[8192];
    long lines = 0;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
    if ((f = fopen(path, "re")) == NULL)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    fclose(f);
    return lines;
}

void dsmctl_limits(dsm_inspection *insp, const dsm_instance_info *info, const char *datadir,
                   struct dsmctl_limits *l)
{
    static char mmapdir[4096 + 16];
    long page = sysconf(_SC_PAGESIZE);
    struct statvfs vfs;

    memset(l, 0, sizeof(*l));
    l->page_size = page > 0 ? (uint64_t)page : 4096;
    /* Free space where segments are made: the mmap directory, else /dev/shm. */
    if (info->state_status == 0 && info->backend == DSM_IMPL_MMAP) {
        snprintf(mmapdir, sizeof(mmapdir), "%s/dynshm_mmap", datadir);
        l->space_dir = mmapdir;
    } else {
        l->space_dir = "/dev/shm";
    }
    if (statvfs(l->space_dir, &vfs) == 0) {
        l->space_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        l->space_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    } else {
        l->space_rc = -errno;
    }
    if ((l->sysv_rc = read_u64("/proc/sys/kernel/shmmni", &l->shmmni)) == 0 &&
        (l->sysv_rc = read_u64("/proc/sys/kernel/shmall", &l->shmall_pages)) == 0 &&
        (l->sysv_rc = read_u64("/proc/sys/kernel/shmmax", &l->shmmax)) == 0)
        l->sysv_rc = sysv_usage(l->page_size, &l->sysv_segments, &l->sysv_pages);
    l->maps_rc = read_u64("/proc/sys/vm/max_map_count", &l->max_map_count);
    for (size_t k = 0; l->maps_rc == 0 && k < dsm_inspect_nprocesses(insp); k++) {
        dsm_process_info p;
        long n;

        if (dsm_inspect_process(insp, k, &p, sizeof(p)) != 0 || !p.alive)
            continue;
        if ((n = count_maps(p.pid)) >= 0 && (uint64_t)n > l->maps_used) {
            l->maps_used = (uint64_t)n;
            l->maps_pid = p.pid;
        }
    }
}

/* A kernel limit set to "no limit" is a number near 2^64: say so. */
static const char *limit_text(uint64_t v, bool human, char *buf, size_t len)
{
    if (v >= UINT64_C(1) << 62) {
        snprintf(buf, len, "unlimited");
        return buf;
    }
    return dsmctl_format_size(v, human, buf, len);
}

/* A warning mark when less than 10% of a limit is left. */
static const char *mark(uint64_t used, uint64_t limit)
{
    return limit > 0 && used * 10 >= limit * 9 ? "  LOW" : "";
}

void dsmctl_limits_print(const struct dsmctl_limits *l, bool human)
{
    char a[32], b[32], c[32];

    if (l->space_rc == 0)
        printf("%-17s %s free of %s in %s%s\n", "shm space:",
               dsmctl_format_size(l->space_free, human, a, sizeof(a)),
               dsmctl_format_size(l->space_total, human, b, sizeof(b)), l->space_dir,
               mark(l->space_total - l->space_free, l->space_total));
    else
        printf("%-17s unknown (%s: %s)\n", "shm space:", l->space_dir, strerror(-l->space_rc));
    if (l->sysv_rc == 0) {
        uint64_t shmall_bytes = l->shmall_pages > UINT64_MAX / l->page_size
                                    ? UINT64_MAX
                                    : l->shmall_pages * l->page_size;

        printf("%-17s %llu segments of shmmni %llu%s; %s of shmall %s%s; shmmax %s\n",
               "System V (host):", (unsigned long long)l->sysv_segments,
               (unsigned long long)l->shmmni, mark(l->sysv_segments, l->shmmni),
               dsmctl_format_size(l->sysv_pages * l->page_size, human, a, sizeof(a)),
               limit_text(shmall_bytes, human, b, sizeof(b)),
               mark(l->sysv_pages, l->shmall_pages), limit_text(l->shmmax, human, c, sizeof(c)));
    } else {
        printf("%-17s unknown (%s)\n", "System V (host):", strerror(-l->sysv_rc));
    }
    if (l->maps_rc != 0)
        printf("%-17s unknown (%s)\n", "map count:", strerror(-l->maps_rc));
    else if (l->maps_pid > 0)
        printf("%-17s %llu mappings in pid %ld (the most of any process) of vm.max_map_count "
               "%llu%s\n", "map count:", (unsigned long long)l->maps_used, (long)l->maps_pid,
               (unsigned long long)l->max_map_count, mark(l->maps_used, l->max_map_count));
    else
        printf("%-17s vm.max_map_count %llu (no running process to count)\n", "map count:",
               (unsigned long long)l->max_map_count);
}

void dsmctl_limits_json(const struct dsmctl_limits *l)
{
    printf("  \"limits\": {\n    \"shm_space\": ");
    if (l->space_rc == 0) {
        printf("{\"directory\": ");
        dsmctl_json_string(stdout, l->space_dir);
        printf(", \"total_bytes\": %llu, \"free_bytes\": %llu}",
               (unsigned long long)l->space_total, (unsigned long long)l->space_free);
    } else {
        printf("null");
    }
    printf(",\n    \"sysv\": ");
    if (l->sysv_rc == 0)
        printf("{\"shmmni\": %llu, \"shmall_pages\": %llu, \"shmmax_bytes\": %llu, "
               "\"page_size\": %llu, \"segments_in_use\": %llu, \"pages_in_use\": %llu}",
               (unsigned long long)l->shmmni, (unsigned long long)l->shmall_pages,
               (unsigned long long)l->shmmax, (unsigned long long)l->page_size,
               (unsigned long long)l->sysv_segments, (unsigned long long)l->sysv_pages);
    else
        printf("null");
    printf(",\n    \"map_count\": ");
    if (l->maps_rc == 0) {
        printf("{\"max_map_count\": %llu, \"most_mappings\": %llu, \"pid\": ",
               (unsigned long long)l->max_map_count, (unsigned long long)l->maps_used);
        if (l->maps_pid > 0)
            printf("%ld}", (long)l->maps_pid);
        else
            printf("null}");
    } else {
        printf("null");
    }
    printf("\n  }");
}
