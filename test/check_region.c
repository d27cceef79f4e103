/* SPDX-License-Identifier: MIT */
/*
 * check_region.c - the preallocated region (min_dynamic_shared_memory).
 *
 * Segments carved from the region must behave exactly like the backend's
 * (same API, refcounts, pins, resource owners, crash policies) while
 * costing no system call; what does not fit must fall back silently; freed
 * pages must come back zeroed, and go back to the OS past the threshold; a
 * process killed anywhere inside the allocator must leave a region the
 * others repair and keep using; and every test ends with nothing in
 * /dev/shm, System V or the data directory.  Every case runs on every
 * backend that can have a region (posix, sysv, mmap, memfd).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dynshm.h>
#include <dynshm/inspect.h>

#include "dsm/dsm_int.h"
#include "dsm_impl/region.h"
#include "dsmtest.h"

#define LOOP(tc, fn) tcase_add_loop_test(tc, fn, DSM_IMPL_POSIX, DSM_IMPL_NTYPES)

static const char *const region_opts[] = {"min_dynamic_shared_memory=4MB", NULL};
static const char *const region_reclaim[] = {"min_dynamic_shared_memory=4MB",
                                             "dsm_crash_policy=reclaim", NULL};
static const char *const small_region[] = {"min_dynamic_shared_memory=1MB", NULL};

static struct sync rv;
static dsm_handle shared;

static struct dsm__region_stats stats(void)
{
    struct dsm__region_stats s;

    ck_assert_int_eq(dsm__region_stats(dsm__p.inst, &s), 0);
    return s;
}

static void verify(void)
{
    char why[256];
    unsigned n = dsm__region_verify(dsm__p.inst, why, sizeof(why));

    ck_assert_msg(n == 0, "region: %u problem(s): %s", n, why);
}

static bool is_region(const dsm_segment *seg)
{
    return (dsm__p.ctl.slots[(uint32_t)dsm_segment_handle(seg)].flags & DSM_SLOT_REGION) != 0;
}

/*
 * Only the instance's bookkeeping may stay in the data directory: the lock
 * file, mmap's (empty) segment directory and memfd's registry file, which
 * every instance leaves the same way; no segment and no state file.
 */
static void data_dir_clean(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "dynshm.lock") == 0 || strcmp(e->d_name, "dynshm_mmap") == 0 ||
            strcmp(e->d_name, "dynshm_memfd") == 0)
            continue;
        ck_abort_msg("left in the data directory: %s", e->d_name);
    }
    closedir(d);
}

/* Shut down and prove nothing is left anywhere. */
static void finish(struct sv *v)
{
    ck_assert_msg(dsm_supervisor_shutdown() == 0, "%s", dsm_errmsg());
    ck_assert_int_eq(sv_objects(v), 0);
    data_dir_clean(v->dir);
    tu_remove_datadir(v->dir);
}

/* ---- create, attach, detach, destroy across processes --------------------------- */

static int child_reads_and_writes(void *arg)
{
    dsm_segment *s;

    (void)arg;
    if (dsm_attach(shared, &s) != 0)
        return 10;
    if (strcmp(dsm_segment_address(s), "from the supervisor") != 0)
        return 11;
    if (dsm_segment_map_length(s) != 5000)
        return 12;
    strcpy(dsm_segment_address(s), "from a forked worker");
    return dsm_detach(s) == 0 ? 0 : 13;
}

START_TEST(test_across_processes)
{
    struct sv v;
    dsm_segment *seg;
    char hb[DSM_HANDLE_STRLEN];
    int before;
    pid_t pid;

    if (!sv_start(&v, _i, region_opts))
        return;
    before = sv_objects(&v); /* the control segment and the region */
    ck_assert_int_eq(before, _i == DSM_IMPL_MEMFD ? before : 2);
    ck_assert_int_eq(dsm_create(5000, 0, &seg), 0);
    ck_assert(is_region(seg));
    ck_assert_int_eq(sv_objects(&v), before); /* no object of its own */
    ck_assert_int_eq(stats().segments, 1);
    ck_assert_int_eq(stats().free_pages, stats().pages - 2);
    strcpy(dsm_segment_address(seg), "from the supervisor");
    shared = dsm_segment_handle(seg);

    /* A forked worker inherits the region: attach maps nothing new. */
    ck_assert_int_eq(sv_wait(sv_fork_worker(child_reads_and_writes, NULL)), 0);
    ck_assert_str_eq(dsm_segment_address(seg), "from a forked worker");

    /* An exec'd worker maps the region when it joins. */
    strcpy(dsm_segment_address(seg), "from the supervisor");
    dsm_handle_format(shared, hb);
    pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);

        dup2(fd, 1);
        execl("test/exec_worker", "exec_worker", v.dir, hb, "write", (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(sv_wait(pid), 0);
    ck_assert_str_eq(dsm_segment_address(seg), "exec was here");
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)shared].refcnt, 1);

    ck_assert_int_eq(dsm_detach(seg), 0); /* the last reference: the pages go back */
    ck_assert_int_eq(stats().segments, 0);
    ck_assert_int_eq(stats().free_pages, stats().pages);
    ck_assert_int_eq(dsm_attach(shared, &seg), -ENOENT);
    ck_assert_int_eq(dsm__p.ctl.hdr->counters.region_hits, 1);
    verify();
    finish(&v);
}
END_TEST

/*
 * The claim "no system call" checked by the kernel: a forked worker that
 * has warmed up (its malloc arenas and handle pool filled) installs a
 * seccomp filter that kills it on any system call but futex (a contended
 * lock), the handle pool's getrandom (4 bytes a handle from a 256-byte
 * pool: one call per 64 creates) and exit, then creates, attaches (through
 * a second handle the parent made), detaches and destroys region segments.
 */
static int child_without_syscalls(void *arg)
{
    static struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getrandom, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit_group, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = DSM_ARRAY_LEN(f), .filter = f};
    dsm_segment *segs[64], *a;

    (void)arg;
    for (int i = 0; i < 64; i++) /* warm up: malloc's free lists, the mapping table */
        if (dsm_create(4096, 0, &segs[i]) != 0)
            return 10;
    for (int i = 0; i < 64; i++)
        dsm_detach(segs[i]);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
        return 11;
    for (int round = 0; round < 1000; round++) {
        size_t size = 4096u << (round % 5); /* 4 KiB .. 64 KiB */
        dsm_segment *s;

        if (dsm_create(size, 0, &s) != 0 || !dsm__region_seg(&s->impl))
            syscall(SYS_exit_group, 12);
        ((char *)dsm_segment_address(s))[size - 1] = 1;
        if (dsm_attach(shared, &a) != 0)
            syscall(SYS_exit_group, 13);
        if (dsm_detach(a) != 0 || dsm_detach(s) != 0)
            syscall(SYS_exit_group, 14);
    }
    syscall(SYS_exit_group, 0);
    return 0;
}

START_TEST(test_no_system_call)
{
    struct sv v;
    dsm_segment *seg;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizers' runtimes make system calls of their own (allocator, shadow). */
    printf("SKIP: test_no_system_call under a sanitizer\n");
    return;
#endif
    if (!sv_start(&v, _i, region_opts))
        return;
    ck_assert_int_eq(dsm_create(100, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    ck_assert_int_eq(sv_wait(sv_fork_worker(child_without_syscalls, NULL)), 0);
    /* The child exited without detaching (seccomp forbids the exit path's calls). */
    ck_assert_int_eq(dsm_supervisor_check_workers(), DSM_CRASH_RESET);
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    verify();
    finish(&v);
}
END_TEST

/* ---- fallback ------------------------------------------------------------------ */

/* Run dsmctl (if built) on dir with a command; its output, or NULL.  Caller frees. */
static char *dsmctl(const char *dir, const char *cmd, const char *json)
{
    int p[2];
    pid_t pid;
    size_t len = 0, cap = 1 << 16;
    char *out;
    ssize_t got;

    if (access("tools/dsmctl/dsmctl", X_OK) != 0)
        return NULL;
    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execl("tools/dsmctl/dsmctl", "dsmctl", "-D", dir, cmd, json, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    while ((got = read(p[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (len + 1 == cap) {
            out = realloc(out, cap *= 2);
            ck_assert_ptr_nonnull(out);
        }
    }
    out[len] = '\0';
    close(p[0]);
    ck_assert_int_eq(sv_wait(pid), 0);
    return out;
}

static int occurrences(const char *text, const char *word)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, word)) != NULL; p += strlen(word))
        n++;
    return n;
}

START_TEST(test_fallback)
{
    struct sv v;
    dsm_segment *big, *segs[300], *over;
    dsm_inspection *insp;
    dsm_metrics m;
    int objects, n = 0;

    if (!sv_start(&v, _i, small_region))
        return;
    objects = sv_objects(&v);
    /* Larger than the region: the backend's, transparently. */
    ck_assert_int_eq(dsm_create(2u << 20, 0, &big), 0);
    ck_assert(!is_region(big));
    ck_assert(!dsm__region_seg(&big->impl));
    if (_i != DSM_IMPL_MEMFD)
        ck_assert_int_eq(sv_objects(&v), objects + 1);
    /* Fill the region (256 pages of 4 KiB), then one more. */
    while (n < 300) {
        ck_assert_int_eq(dsm_create(4096, 0, &segs[n]), 0);
        if (!is_region(segs[n]))
            break;
        n++;
    }
    ck_assert_int_eq(n, 256);
    over = segs[n];
    ck_assert_int_eq(stats().free_pages, 0);
    strcpy(dsm_segment_address(over), "from the backend");
    dsm_detach(segs[0]);
    ck_assert_int_eq(dsm_create(4096, 0, &segs[0]), 0); /* room again */
    ck_assert(is_region(segs[0]));
    ck_assert_int_eq(dsm__p.ctl.hdr->counters.region_hits, 257);
    ck_assert_int_eq(dsm__p.ctl.hdr->counters.region_fallbacks, 2);

    /* Operators see the same through the inspection API. */
    ck_assert_int_eq(dsm_inspect_open(v.dir, 1000, &insp), 0);
    ck_assert_int_eq(dsm_inspect_metrics(insp, &m, sizeof(m)), 0);
    ck_assert_int_eq(m.region_hits, 257);
    ck_assert_int_eq(m.region_fallbacks, 2);
    ck_assert_int_eq(m.region_size, 1u << 20);
    {
        size_t regions = 0;

        for (size_t i = 0; i < dsm_inspect_nsegments(insp); i++) {
            dsm_segment_info si;

            ck_assert_int_eq(dsm_inspect_segment(insp, i, &si, sizeof(si)), 0);
            regions += si.region;
        }
        ck_assert_int_eq(regions, 256);
    }
    dsm_inspect_close(insp);

    /* And dsmctl, as text and JSON. */
    {
        char *list = dsmctl(v.dir, "list", "--json"), *status;

        if (list != NULL) {
            ck_assert_int_eq(occurrences(list, "\"region\": true"), 256);
            ck_assert_int_eq(occurrences(list, "\"region\": false"), 2);
            free(list);
            list = dsmctl(v.dir, "list", NULL);
            ck_assert_int_eq(occurrences(list, "region "), 256); /* NAME: "region <name>" */
            status = dsmctl(v.dir, "status", NULL);
            ck_assert_msg(strstr(status, "257 creates served from it, 2 fell back"), "%s", status);
            free(status);
            status = dsmctl(v.dir, "status", "--json");
            ck_assert_msg(strstr(status, "\"region_hits\": 257, \"region_fallbacks\": 2"), "%s",
                          status);
            free(status);
            free(list);
        }
    }

    for (int i = 0; i <= n; i++)
        dsm_detach(segs[i]);
    dsm_detach(big);
    verify();
    ck_assert_int_eq(stats().free_pages, stats().pages);
    finish(&v);
}
END_TEST

/* ---- zeroing and giving memory back --------------------------------------------- */

START_TEST(test_zeroed_on_reuse)
{
    struct sv v;
    dsm_segment *a, *b;
    void *where;

    if (!sv_start(&v, _i, region_opts))
        return;
    ck_assert_int_eq(dsm_create(3 * 4096, 0, &a), 0);
    where = dsm_segment_address(a);
    memset(where, 0xa5, 3 * 4096);
    ck_assert_int_eq(dsm_detach(a), 0);
    ck_assert_int_eq(stats().dirty_pages, 3);
    ck_assert_int_eq(dsm_create(3 * 4096, 0, &b), 0);
    ck_assert_ptr_eq(dsm_segment_address(b), where); /* first fit: the same pages */
    for (size_t i = 0; i < 3 * 4096; i++)
        ck_assert_msg(((unsigned char *)where)[i] == 0, "byte %zu not zeroed", i);
    ck_assert_int_eq(stats().dirty_pages, 0);
    ck_assert_int_eq(dsm_detach(b), 0);
    verify();
    finish(&v);
}
END_TEST

/* Blocks of backing store the region object has (posix and mmap: a file we can stat). */
static long long object_blocks(const struct sv *v)
{
    char name[DSM_IMPL_NAME_MAX], path[DSM_IMPL_NAME_MAX + 16];
    struct stat st;
    const dsm_impl_segment *r = dsm__region_map(dsm__p.inst);

    dsm_impl_segment_name(dsm__p.inst, r->handle, name, sizeof(name));
    if (v->type == DSM_IMPL_POSIX)
        snprintf(path, sizeof(path), "/dev/shm%s", name);
    else if (v->type == DSM_IMPL_MMAP)
        snprintf(path, sizeof(path), "%s", name);
    else
        return -1;
    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return (long long)st.st_blocks;
}

START_TEST(test_release_above_threshold)
{
    struct sv v;
    dsm_segment *segs[80], *again;
    struct dsm__region_stats s;
    long long full, after;

    if (!sv_start(&v, _i, region_opts))
        return;
    /* 4 MB: 1024 pages, released once more than 256 free pages are dirty. */
    for (int i = 0; i < 80; i++) {
        ck_assert_int_eq(dsm_create(16384, 0, &segs[i]), 0);
        memset(dsm_segment_address(segs[i]), 0x5a, 16384);
    }
    full = object_blocks(&v);
    for (int i = 0; i < 80; i++)
        ck_assert_int_eq(dsm_detach(segs[i]), 0);
    s = stats();
    ck_assert_msg(s.releases >= 1, "no release after freeing 320 dirty pages");
    ck_assert_int_eq(s.dirty_pages, 320 - s.released_total);
    ck_assert_int_ge(s.released_total, 257);
    after = object_blocks(&v);
    if (full >= 0)
        ck_assert_msg(after < full - 257 * 8, "blocks %lld -> %lld: nothing given back", full,
                      after);
    /* Released pages come back reserved (populated) and zero. */
    ck_assert_int_eq(dsm_create(64 * 4096, 0, &again), 0);
    ck_assert(is_region(again));
    ck_assert_int_ge(stats().populates, 1);
    for (size_t i = 0; i < 64 * 4096; i += 512)
        ck_assert_int_eq(((unsigned char *)dsm_segment_address(again))[i], 0);
    ck_assert_int_eq(dsm_detach(again), 0);
    verify();
    finish(&v);
}
END_TEST

/*
 * In a private mount namespace, the mmap backend's directory is a 4 MiB
 * tmpfs.  A region that does not fit fails start-up with ENOSPC naming the
 * setting; one that does works; and once pages it gave back cannot be had
 * again (the tmpfs filled by someone else), a create that lands on them
 * falls back cleanly -- an error, never a SIGBUS when the pages are touched.
 */
static int child_small_tmpfs(void *arg)
{
    static const char *const too_big[] = {"min_dynamic_shared_memory=16MB", NULL};
    static const char *const fits[] = {"min_dynamic_shared_memory=2MB", NULL};
    struct sv *v = arg;
    dsm_segment *segs[100], *s;
    char mnt[300], filler[400], state[300];
    struct dsm__region_stats st;
    int fd, rc;

    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 77;
    snprintf(mnt, sizeof(mnt), "%s/dynshm_mmap", v->dir);
    mkdir(mnt, 0700);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0)
        return 77;
    rc = sv_restart(v, too_big);
    if (rc != -ENOSPC || !strstr(dsm_errdetail(), "min_dynamic_shared_memory = 16777216") ||
        !strstr(dsm_errhint(), "Lower min_dynamic_shared_memory")) {
        printf("start-up with a region too large: %d %s / %s / %s\n", rc, dsm_errmsg(),
               dsm_errdetail(), dsm_errhint());
        return 10;
    }
    snprintf(state, sizeof(state), "%s/dynshm.state", v->dir);
    if (tu_count_mmap(v->dir) != 0 || access(state, F_OK) == 0)
        return 11;
    if (sv_restart(v, fits) != 0)
        return 12;
    for (int i = 0; i < 100; i++) { /* 400 pages, written, then freed: given back */
        if (dsm_create(16384, 0, &segs[i]) != 0)
            return 13;
        memset(dsm_segment_address(segs[i]), 7, 16384);
    }
    for (int i = 0; i < 100; i++)
        dsm_detach(segs[i]);
    if (dsm__region_stats(dsm__p.inst, &st) != 0 || st.released_pages < 256)
        return 14;
    /* Someone else takes the tmpfs's free space. */
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    fd = open(filler, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return 15;
    for (off_t off = 0; posix_fallocate(fd, off, 4096) == 0; off += 4096)
        ;
    rc = dsm_create(64 * 1024, 0, &s);
    if (rc != -ENOSPC) /* the region could not populate; the backend had no room either */
        return 16;
    if (dsm__region_stats(dsm__p.inst, &st) != 0 || st.segments != 0 || st.populates != 1)
        return 17;
    close(fd);
    unlink(filler);
    if (dsm_create(64 * 1024, 0, &s) != 0 || !dsm__region_seg(&s->impl))
        return 18;
    memset(dsm_segment_address(s), 1, 64 * 1024); /* backed: no SIGBUS */
    dsm_detach(s);
    if (dsm_supervisor_shutdown() != 0 || tu_count_mmap(v->dir) != 0)
        return 19;
    return 0;
}

START_TEST(test_small_tmpfs)
{
    struct sv v;
    pid_t pid;
    int rc;

    if (!sv_start(&v, DSM_IMPL_MMAP, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(child_small_tmpfs(&v));
    rc = sv_wait(pid);
    if (rc == 77)
        printf("SKIP: test_small_tmpfs: cannot mount tmpfs in a private mount namespace\n");
    else
        ck_assert_msg(rc == 0, "child failed at step %d", rc);
    ck_assert_int_eq(sv_objects(&v), 0);
    data_dir_clean(v.dir);
    tu_remove_datadir(v.dir);
}
END_TEST

/* ---- pins and resource owners ------------------------------------------------------ */

START_TEST(test_pins_and_owners)
{
    struct sv v;
    dsm_segment *seg, *again;
    dsm_resowner *owner;
    dsm_handle h;

    if (!sv_start(&v, _i, region_opts))
        return;
    ck_assert_int_eq(dsm_create(8192, 0, &seg), 0);
    ck_assert(is_region(seg));
    h = dsm_segment_handle(seg);
    strcpy(dsm_segment_address(seg), "pinned");
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(stats().segments, 1); /* the pin keeps its pages */
    ck_assert_int_eq(dsm_attach(h, &again), 0);
    ck_assert_str_eq(dsm_segment_address(again), "pinned");
    ck_assert_int_eq(dsm_unpin_segment(h), 0);
    ck_assert_int_eq(stats().segments, 1); /* still mapped here */
    ck_assert_int_eq(dsm_detach(again), 0);
    ck_assert_int_eq(stats().segments, 0);

    /* Unpinned while unmapped: the unpinner returns the pages. */
    ck_assert_int_eq(dsm_create(100, 0, &seg), 0);
    h = dsm_segment_handle(seg);
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_unpin_segment(h), 0);
    ck_assert_int_eq(stats().segments, 0);

    /* A resource owner's release detaches region segments like any other. */
    ck_assert_int_eq(dsm_resowner_create(NULL, "region test", &owner), 0);
    dsm_resowner_set_current(owner);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    ck_assert_int_eq(dsm_create(4096, 0, &again), 0);
    dsm_resowner_set_current(NULL);
    ck_assert_int_eq(stats().segments, 2);
    dsm_resowner_release(owner, false);
    dsm_resowner_delete(owner);
    ck_assert_int_eq(stats().segments, 0);
    verify();
    finish(&v);
}
END_TEST

/* ---- crash policies ---------------------------------------------------------------- */

static int child_holds_and_waits(void *arg)
{
    dsm_segment *mine, *pinned, *a;

    (void)arg;
    if (dsm_create(4096, 0, &mine) != 0 || dsm_create(8192, 0, &pinned) != 0 ||
        dsm_pin_segment(pinned) != 0 || dsm_attach(shared, &a) != 0)
        return 10;
    strcpy(dsm_segment_address(pinned), "pinned by the dead");
    sync_signal_parent(&rv, dsm_segment_handle(mine));
    sync_signal_parent(&rv, dsm_segment_handle(pinned));
    for (;;)
        pause();
}

START_TEST(test_reclaim)
{
    struct sv v;
    dsm_segment *seg, *x;
    dsm_handle mine, pinned;
    pid_t pid;
    int st;

    if (!sv_start(&v, _i, region_reclaim))
        return;
    sync_init(&rv);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    pid = sv_fork_worker(child_holds_and_waits, NULL);
    mine = sync_wait_child(&rv);
    pinned = sync_wait_child(&rv);
    ck_assert_int_eq(stats().segments, 3);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RECLAIMED);
    ck_assert_int_eq(stats().segments, 2); /* its own went back; shared and pinned stay */
    ck_assert_int_eq(dsm_attach(mine, &x), -ENOENT);
    ck_assert_int_eq(dsm_attach(pinned, &x), 0);
    ck_assert_str_eq(dsm_segment_address(x), "pinned by the dead");
    ck_assert_int_eq(dsm_unpin_segment(pinned), 0);
    ck_assert_int_eq(dsm_detach(x), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(stats().segments, 0);
    verify();
    finish(&v);
}
END_TEST

START_TEST(test_reset)
{
    struct sv v;
    dsm_segment *seg;
    dsm_handle old_region;
    pid_t pid;
    int st;

    if (!sv_start(&v, _i, region_opts))
        return;
    sync_init(&rv);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    pid = sv_fork_worker(child_holds_and_waits, NULL);
    sync_wait_child(&rv);
    sync_wait_child(&rv);
    kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RESET);
    old_region = dsm__region_handle(dsm_control_handle());
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    /* A new region under the new control segment's derived handle, empty. */
    ck_assert_int_ne(dsm__region_handle(dsm_control_handle()), old_region);
    ck_assert_int_eq(stats().segments, 0);
    ck_assert_int_eq(stats().free_pages, stats().pages);
    ck_assert_int_eq(sv_objects(&v), _i == DSM_IMPL_MEMFD ? sv_objects(&v) : 2);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    ck_assert(is_region(seg));
    ck_assert_int_eq(dsm_detach(seg), 0);
    verify();
    finish(&v);
}
END_TEST

/* ---- kill points inside the allocator ------------------------------------------------ */

static long step_target, step_seen;

static void step(void)
{
    if (step_target > 0 && ++step_seen == step_target)
        raise(SIGKILL);
}

/* Create (zeroing dirty pages), attach the shared one, destroy: every store is a step. */
static int child_steps(void *arg)
{
    dsm_segment *s, *a;

    step_target = *(long *)arg;
    step_seen = 0;
    dsm__control_step_hook = step;
    if (dsm_create(3 * 4096, 0, &s) != 0 || dsm_attach(shared, &a) != 0)
        return 10;
    if (dsm_detach(a) != 0 || dsm_detach(s) != 0)
        return 11;
    dsm__control_step_hook = NULL;
    return 0;
}

START_TEST(test_kill_points)
{
    struct sv v;
    dsm_segment *seg, *dirty;
    long n;
    int killed = 0;

    if (!sv_start(&v, _i, region_reclaim))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    shared = dsm_segment_handle(seg);
    ck_assert_int_eq(dsm_create(3 * 4096, 0, &dirty), 0); /* so the child's pages are dirty */
    ck_assert_int_eq(dsm_detach(dirty), 0);
    for (n = 1; n < 500; n++) {
        pid_t pid = sv_fork_worker(child_steps, &n);
        int st, code;

        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (code == 0)
            break;
        ck_assert_msg(code == 128 + SIGKILL, "step %ld: child exited %d", n, code);
        killed++;
        ck_assert_int_eq(dsm_supervisor_worker_exited(pid, st), DSM_CRASH_RECLAIMED);
        /* Whatever it held is back, the map is consistent, and the shared one intact. */
        ck_assert_int_eq(stats().segments, 1);
        ck_assert_int_eq(stats().free_pages, stats().pages - 1);
        verify();
    }
    ck_assert_msg(n < 500 && killed > 10, "%d kill points", killed);
    ck_assert_int_eq(dsm_detach(seg), 0);
    finish(&v);
}
END_TEST

/* The supervisor killed at each step of a start-up with a region, then gc or a restart. */
START_TEST(test_startup_kill_points)
{
    struct sv v;
    long n;
    int killed = 0;

    if (!sv_start(&v, _i, region_opts))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    for (n = 1; n < 200; n++) {
        pid_t pid = fork();
        int code;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            dsm_segment *s;

            step_target = n;
            step_seen = 0;
            dsm__control_step_hook = step;
            if (sv_restart(&v, region_opts) != 0 || dsm_create(4096, 0, &s) != 0)
                _exit(10);
            _exit(0);
        }
        code = sv_wait(pid);
        if (code != 128 + SIGKILL)
            ck_assert_int_eq(code, 0); /* the whole start-up ran: leave like a crash */
        else
            killed++;
        if (n % 2) {
            ck_assert_msg(dsm_gc(v.dir, 0, NULL, NULL) >= 0, "%s", dsm_errmsg());
            ck_assert_int_eq(sv_objects(&v), 0);
        } else {
            ck_assert_msg(sv_restart(&v, region_opts) == 0, "%s", dsm_errmsg());
            ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
            ck_assert_int_eq(sv_objects(&v), 0);
        }
        if (code == 0)
            break;
    }
    ck_assert_msg(killed > 5, "%d kill points", killed);
    data_dir_clean(v.dir);
    tu_remove_datadir(v.dir);
}
END_TEST

/* Workers churning region segments, SIGKILLed at random; reclaim after each. */
static int churn(void *arg)
{
    dsm_segment *live[8] = {0};
    unsigned x = (unsigned)getpid();

    (void)arg;
    sync_signal_parent(&rv, 1);
    for (;;) {
        unsigned k;

        x = x * 1103515245u + 12345u;
        k = (x >> 16) % 8;
        if (live[k]) {
            dsm_detach(live[k]);
            live[k] = NULL;
        } else if (dsm_create(4096u << ((x >> 8) % 4), 0, &live[k]) == 0) {
            memset(dsm_segment_address(live[k]), 0x33, 64);
        }
    }
    return 0; /* not reached */
}

START_TEST(test_kill_loop)
{
    struct sv v;
    int kills = 0;

    if (!sv_start(&v, _i, region_reclaim))
        return;
    sync_init(&rv);
    for (int round = 0; round < 40; round++) {
        pid_t pid[2];
        int st;

        for (int w = 0; w < 2; w++)
            pid[w] = sv_fork_worker(churn, NULL);
        for (int w = 0; w < 2; w++)
            sync_wait_child(&rv);
        usleep(200 + (unsigned)(round * 137) % 3000);
        for (int w = 0; w < 2; w++) {
            kill(pid[w], SIGKILL);
            ck_assert_int_eq(waitpid(pid[w], &st, 0), pid[w]);
            ck_assert_int_eq(dsm_supervisor_worker_exited(pid[w], st), DSM_CRASH_RECLAIMED);
            kills++;
        }
        ck_assert_int_eq(stats().segments, 0);
        ck_assert_int_eq(stats().free_pages, stats().pages);
        verify();
    }
    ck_assert_int_eq(kills, 80);
    printf("region kill loop (%s): %d kills, %llu region repairs\n",
           dsm_impl_type_name((dsm_impl_type)_i), kills,
           (unsigned long long)stats().repairs);
    finish(&v);
}
END_TEST

/* ---- bad input ---------------------------------------------------------------------- */

/* Parse a setting the way a configuration file would: fails with a message naming it. */
static void refused_value(const char *option)
{
    dsm_settings *s;

    ck_assert_int_eq(dsm_settings_new(&s), 0);
    ck_assert_msg(dsm_settings_parse_option(s, option) < 0, "%s accepted", option);
    ck_assert_msg(strstr(dsm_errmsg(), "min_dynamic_shared_memory"), "%s", dsm_errmsg());
    dsm_settings_free(s);
}

START_TEST(test_bad_settings)
{
    static const char *const with_none[] = {"min_dynamic_shared_memory=1MB", NULL};
    struct sv v;

    refused_value("min_dynamic_shared_memory=lots");
    refused_value("min_dynamic_shared_memory=2TB"); /* above the largest region */
    refused_value("min_dynamic_shared_memory=-1");
    refused_value("min_dynamic_shared_memory=1.5ms");
    /* A region needs a backend to make it with. */
    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    v.type = DSM_IMPL_NONE;
    ck_assert_int_eq(sv_restart(&v, with_none), -EINVAL);
    ck_assert_msg(strstr(dsm_errmsg(), "cannot be used with dynamic_shared_memory_type = none"),
                  "%s", dsm_errmsg());
    /* Huge pages "on" promises huge pages for every segment; the region has normal ones. */
    {
        static const char *const with_huge[] = {"huge_pages=on",
                                                "min_dynamic_shared_memory=1MB", NULL};

        v.type = DSM_IMPL_POSIX;
        ck_assert_int_eq(sv_restart(&v, with_huge), -EINVAL);
        ck_assert_msg(strstr(dsm_errmsg(), "cannot be used with huge_pages = on"), "%s",
                      dsm_errmsg());
    }
    ck_assert_int_eq(sv_objects(&v), 0);
    data_dir_clean(v.dir);
    tu_remove_datadir(v.dir);
}
END_TEST

static int child_joins(void *arg)
{
    char dir[256];

    snprintf(dir, sizeof(dir), "%s", (const char *)arg);
    /* Join as an exec'd worker would (through the state file), not as a fork child. */
    if (dsm_worker_attach(dir) == 0)
        return 10;
    printf("join refused, as it should be: %s\n", dsm_errmsg());
    return strstr(dsm_errmsg(), "region") ? 0 : 11;
}

START_TEST(test_corrupt_region)
{
    struct sv v;
    dsm_segment *seg;
    struct dsm_region_header *hdr;
    unsigned char *raw;
    unsigned char saved[8];
    pid_t pid;

    if (!sv_start(&v, _i, region_opts))
        return;
    raw = dsm__region_map(dsm__p.inst)->address;
    hdr = (void *)raw;
    /* A scribbled geometry word: joiners refuse the region, by name. */
    memcpy(saved, &hdr->npages, 8);
    hdr->npages ^= 0xff;
    pid = fork();
    if (pid == 0) {
        dsm_worker_init_after_fork(); /* registered as a fork child first ... */
        dsm_worker_exit();
        _exit(child_joins(v.dir)); /* ... then joining on its own */
    }
    ck_assert_int_eq(sv_wait(pid), 0);
    memcpy(&hdr->npages, saved, 8);
    ck_assert_uint_eq(hdr->magic, DSM_REGION_MAGIC);

    /* A scribbled mutable field: the call fails with a message, the next one works. */
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    ck_assert_int_eq(dsm_detach(seg), 0);
    hdr->hint = 0xfffffff0u;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), DSM_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "region is corrupt"));
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    ck_assert(is_region(seg));
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(stats().corruptions, 1);
    verify();
    finish(&v);
}
END_TEST

Suite *suite_region(void)
{
    Suite *s = suite_create("region");
    TCase *tc = tcase_create("region");
    TCase *kills = tcase_create("region kills");

    tcase_set_timeout(tc, 120);
    LOOP(tc, test_across_processes);
    LOOP(tc, test_no_system_call);
    LOOP(tc, test_fallback);
    LOOP(tc, test_zeroed_on_reuse);
    LOOP(tc, test_release_above_threshold);
    tcase_add_test(tc, test_small_tmpfs);
    LOOP(tc, test_pins_and_owners);
    LOOP(tc, test_reclaim);
    LOOP(tc, test_reset);
    tcase_add_test(tc, test_bad_settings);
    LOOP(tc, test_corrupt_region);
    suite_add_tcase(s, tc);
    tcase_set_timeout(kills, 300);
    LOOP(kills, test_kill_points);
    LOOP(kills, test_startup_kill_points);
    LOOP(kills, test_kill_loop);
    suite_add_tcase(s, kills);
    return s;
}
