/* SPDX-License-Identifier: MIT */
/*
 * testutil.c - scratch directories, leftover counting and the final sweep.
 *
 * Counting what is left in /dev/shm, the mmap directory and the SysV table
 * is how every test proves it leaked nothing.  Because a failing Check test
 * exits in the middle, cleanup cannot be left to the test: every data
 * directory lives under one root, and the runner sweeps that root at the
 * end, removing (and reporting) anything a test left behind.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dsm_impl.h>

#include "testutil.h"

static char root[256];

#define TU_MAX_SYSV 4096
static int sysv_before[TU_MAX_SYSV]; /* at the start of the run: for the final sweep */
static int sysv_before_n;
static int sysv_mark[TU_MAX_SYSV];   /* at the start of the current test: for counting */
static int sysv_mark_n = -1;

/* Read /proc/sysvipc/shm: ids of segments with mode 0600 owned by this user. */
static int sysv_ids(int *ids, int max)
{
    FILE *f = fopen("/proc/sysvipc/shm", "re");
    char line[512];
    int n = 0;

    if (f == NULL)
        return 0;
    if (fgets(line, sizeof(line), f) == NULL) { /* header */
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof(line), f) && n < max) {
        long key, id, uid;
        unsigned perms;
        char rest[256];

        if (sscanf(line, "%ld %ld %o %255[^\n]", &key, &id, &perms, rest) == 4 &&
            sscanf(rest, "%*s %*s %*s %*s %ld", &uid) == 1 && (perms & 0777) == 0600 &&
            uid == (long)geteuid())
            ids[n++] = (int)id;
    }
    fclose(f);
    return n;
}

static int sysv_new(const int *base, int nbase, int *ids, int max)
{
    int all[TU_MAX_SYSV], n = sysv_ids(all, TU_MAX_SYSV), k = 0;

    for (int i = 0; i < n && k < max; i++) {
        int old = 0;

        for (int j = 0; j < nbase && !old; j++)
            old = base[j] == all[i];
        if (!old)
            ids[k++] = all[i];
    }
    return k;
}

/*
 * Give the test process its own SysV IPC namespace where permitted (root,
 * as in CI): then the count is exact even while other test runs share the
 * machine, and nothing can outlive the test's processes in `ipcs -m`.
 * Elsewhere the count falls back to "created since the mark".
 */
void tu_sysv_mark(void)
{
    static pid_t isolated;

    if (isolated != getpid() && unshare(CLONE_NEWIPC) == 0)
        isolated = getpid();
    sysv_mark_n = sysv_ids(sysv_mark, TU_MAX_SYSV);
}

int tu_sysv_count_new(void)
{
    int ids[TU_MAX_SYSV];

    if (sysv_mark_n < 0)
        return sysv_new(sysv_before, sysv_before_n, ids, TU_MAX_SYSV);
    return sysv_new(sysv_mark, sysv_mark_n, ids, TU_MAX_SYSV);
}

/* 1 if test processes can have private IPC namespaces (decided once per run). */
static int ipc_isolation = -1;

static int can_isolate_ipc(void)
{
    pid_t pid;
    int st;

    if (ipc_isolation >= 0)
        return ipc_isolation;
    pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWIPC) == 0 ? 0 : 1);
    ipc_isolation = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
                    WEXITSTATUS(st) == 0;
    return ipc_isolation;
}

int tu_sysv_remove_new(void)
{
    int ids[TU_MAX_SYSV], n;

    /*
     * With private namespaces, a test's SysV segments die with it, and any
     * new segment in this namespace belongs to someone else (another test
     * run on the machine): never touch it.
     */
    if (can_isolate_ipc())
        return 0;
    n = sysv_new(sysv_before, sysv_before_n, ids, TU_MAX_SYSV);
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "leftover: SysV segment id %d\n", ids[i]);
        shmctl(ids[i], IPC_RMID, NULL);
    }
    return n;
}

void tu_root_init(void)
{
    const char *tmp = getenv("TMPDIR");

    can_isolate_ipc();
    sysv_before_n = sysv_ids(sysv_before, TU_MAX_SYSV);
    snprintf(root, sizeof(root), "%s/dynshm-check.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "mkdtemp(%s): %s\n", root, strerror(errno));
        exit(2);
    }
}

void tu_make_datadir(char *buf, size_t len)
{
    snprintf(buf, len, "%s/d.XXXXXX", root);
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp(%s): %s", buf, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void tu_remove_datadir(const char *path)
{
    if (path && path[0])
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove every object of the instance rooted at dir; returns how many. */
static int sweep_instance(const char *dir)
{
    dsm_impl_instance *inst;
    int n = 0;

    if (dsm_impl_instance_open(DSM_IMPL_POSIX, dir, &inst) == 0) {
        char prefix[64];
        DIR *d = opendir("/dev/shm");
        struct dirent *e;

        snprintf(prefix, sizeof(prefix), "dynshm.%s.", dsm_impl_instance_id(inst));
        while (d && (e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
                char path[512];

                snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
                fprintf(stderr, "leftover: %s\n", path);
                unlink(path);
                n++;
            }
        }
        if (d)
            closedir(d);
        dsm_impl_instance_close(inst);
    }
    if (dsm_impl_instance_open(DSM_IMPL_SYSV, dir, &inst) == 0) {
        for (dsm_handle h = 1; h < TU_MAX_TEST_HANDLE; h++) {
            dsm_impl_segment seg = {.handle = h, .os_id = -1};

            if (dsm_impl_destroy(inst, &seg) == 0) {
                fprintf(stderr, "leftover: SysV segment of handle %llu\n",
                        (unsigned long long)h);
                n++;
            }
        }
        dsm_impl_instance_close(inst);
    }
    n += tu_count_mmap(dir);
    return n;
}

int tu_root_sweep(void)
{
    DIR *d = opendir(root);
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d)) != NULL) {
        char path[512];

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
        n += sweep_instance(path);
    }
    if (d)
        closedir(d);
    tu_remove_datadir(root);
    return n + tu_sysv_remove_new();
}

int tu_count_posix(const char *id)
{
    char prefix[64];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    snprintf(prefix, sizeof(prefix), "dynshm.%s.", id);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

int tu_count_mmap(const char *datadir)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/dynshm_mmap", datadir);
    return count_dir(path);
}

int tu_count_sysv_keys(const int *keys, int nkeys)
{
    int n = 0;

    for (int i = 0; i < nkeys; i++)
        if (keys[i] != 0 && shmget((key_t)keys[i], 0, 0) >= 0)
            n++;
    return n;
}

int tu_count_fds(void)
{
    /* opendir itself holds one descriptor while counting. */
    return count_dir("/proc/self/fd") - 1;
}

int tu_count_maps(void)
{
    /*
     * Only shared mappings ("rw-s"): every segment is one, while private
     * ones come and go with the allocator -- and under ASan or valgrind
     * an error message alone can map a new arena.
     */
    FILE *f = fopen("/proc/self/maps", "re");
    char line[4096];
    int n = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char perms[8];

        if (sscanf(line, "%*s %7s", perms) == 1 && perms[3] == 's')
            n++;
        while (strchr(line, '\n') == NULL && fgets(line, sizeof(line), f) != NULL)
            ; /* the rest of an overlong line */
    }
    fclose(f);
    return n;
}

int tu_can_unshare_mount(void)
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0)
            _exit(1);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(1);
        if (mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") != 0)
            _exit(1);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * memfd segments have no name in any name space: they exist while some
 * process holds a descriptor (or a mapping).  Count the distinct files
 * named "memfd:dynshm.<id>." open in any process we can see.
 */
int tu_count_memfd(const char *id)
{
    char prefix[80], path[600], link[512];
    struct {
        dev_t dev;
        ino_t ino;
    } seen[256];
    int n = 0;
    DIR *procs = opendir("/proc");
    struct dirent *p;

    if (procs == NULL)
        return 0;
    snprintf(prefix, sizeof(prefix), "/memfd:dynshm.%s.", id);
    while ((p = readdir(procs)) != NULL) {
        DIR *fds;
        struct dirent *f;

        if (p->d_name[0] < '0' || p->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
        if ((fds = opendir(path)) == NULL)
            continue;
        while ((f = readdir(fds)) != NULL) {
            struct stat st;
            ssize_t len;
            int k;

            snprintf(path, sizeof(path), "/proc/%.255s/fd/%.255s", p->d_name, f->d_name);
            len = readlink(path, link, sizeof(link) - 1);
            if (len <= 0)
                continue;
            link[len] = '\0';
            if (strncmp(link, prefix, strlen(prefix)) != 0 || stat(path, &st) != 0)
                continue;
            for (k = 0; k < n; k++)
                if (seen[k].dev == st.st_dev && seen[k].ino == st.st_ino)
                    break;
            if (k == n && n < (int)(sizeof(seen) / sizeof(seen[0]))) {
                seen[n].dev = st.st_dev;
                seen[n].ino = st.st_ino;
                n++;
            }
        }
        closedir(fds);
    }
    closedir(procs);
    return n;
}

int tu_memfd_stat(const char *name, struct stat *st)
{
    char path[512], link[512], want[512];
    DIR *d = opendir("/proc/self/fd");
    struct dirent *f;
    int rc = -1;

    if (d == NULL)
        return -1;
    /* Operators' names of live segments end in " (pid P fd N)": the name is before it. */
    snprintf(want, sizeof(want), "/%.*s (deleted)", (int)strcspn(name, " "), name);
    while (rc != 0 && (f = readdir(d)) != NULL) {
        ssize_t len;

        snprintf(path, sizeof(path), "/proc/self/fd/%s", f->d_name);
        len = readlink(path, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strcmp(link, want) == 0 && stat(path, st) == 0)
            rc = 0;
    }
    closedir(d);
    return rc;
}
