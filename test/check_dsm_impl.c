/* SPDX-License-Identifier: MIT */
/*
 * check_dsm_impl.c - the conformance cases every backend must pass.
 *
 * Each test runs once per backend (loop index = dsm_impl_type) and uses
 * real processes: a forked child attaches and writes, the parent checks.
 * Every test ends by proving nothing of its instance is left in /dev/shm,
 * the SysV table or the mmap directory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dsm_impl.h>

#include "testutil.h"

struct fx {
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_type type;
};

/* Open an instance of backend `type` on a fresh data directory; 0 if unavailable. */
static int fx_open(struct fx *f, int type)
{
    memset(f, 0, sizeof(*f));
    f->type = (dsm_impl_type)type;
    if (!dsm_impl_type_available(f->type)) {
        printf("SKIP: backend %s not available on this platform\n", dsm_impl_type_name(f->type));
        return 0;
    }
    tu_sysv_mark(); /* a private IPC namespace where permitted */
    tu_make_datadir(f->dir, sizeof(f->dir));
    ck_assert_msg(dsm_impl_instance_open(f->type, f->dir, &f->inst) == 0, "open: %s",
                  dsm_errmsg());
    return 1;
}

/* Objects of this instance still present (SysV: probed by every test handle). */
static int fx_leftovers(struct fx *f)
{
    int n = tu_count_posix(dsm_impl_instance_id(f->inst)) + tu_count_mmap(f->dir) +
            tu_count_memfd(dsm_impl_instance_id(f->inst));

    if (f->type == DSM_IMPL_SYSV) {
        for (dsm_handle h = 1; h < TU_MAX_TEST_HANDLE; h++) {
            dsm_impl_segment s;

            if (dsm_impl_attach(f->inst, h, &s) != -ENOENT) {
                if (s.address)
                    dsm_impl_detach(f->inst, &s);
                n++;
            }
        }
    }
    return n;
}

static void fx_close(struct fx *f)
{
    ck_assert_int_eq(fx_leftovers(f), 0);
    dsm_impl_instance_close(f->inst);
    tu_remove_datadir(f->dir);
}

/* Run fn(f, arg) in a child process; returns its exit status (or 128+signal). */
static int in_child(struct fx *f, int (*fn)(struct fx *, void *), void *arg)
{
    pid_t pid = fork();
    int st;

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn(f, arg));
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct rw_args {
    dsm_handle handle;
    size_t size;
};

/* Child: attach, check the parent's bytes, write our own, detach. */
static int child_rw(struct fx *f, void *arg)
{
    struct rw_args *a = arg;
    dsm_impl_segment s;
    unsigned char *p;

    if (dsm_impl_attach(f->inst, a->handle, &s) != 0)
        return 10;
    p = s.address;
    if (s.size != a->size)
        return 11;
    if ((a->size > 1 && p[0] != 'P') || p[a->size - 1] != 'Q')
        return 12;
    p[0] = 'C';
    p[a->size - 1] = 'D';
    if (dsm_impl_detach(f->inst, &s) != 0 || s.address != NULL)
        return 13;
    return 0;
}

static void roundtrip(struct fx *f, dsm_handle h, size_t size)
{
    struct rw_args a = {h, size};
    dsm_impl_segment seg;
    unsigned char *p;

    ck_assert_msg(dsm_impl_create(f->inst, h, size, &seg) == 0, "create %zu: %s", size,
                  dsm_errmsg());
    ck_assert_ptr_nonnull(seg.address);
    ck_assert_uint_eq(seg.size, size);
    ck_assert_uint_eq(seg.handle, h);
    p = seg.address;
    p[0] = 'P';
    p[size - 1] = 'Q';
    ck_assert_int_eq(in_child(f, child_rw, &a), 0);
    if (size > 1)
        ck_assert_int_eq(p[0], 'C');
    ck_assert_int_eq(p[size - 1], 'D');
    ck_assert_int_eq(dsm_impl_detach(f->inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(f->inst, &seg), 0);
}

START_TEST(test_create_attach_detach_destroy)
{
    struct fx f;
    dsm_impl_segment seg, again;

    if (!fx_open(&f, _i))
        return;
    roundtrip(&f, 1, 65536);

    /* After destroy nothing can attach, and destroying twice says so. */
    seg.handle = 1;
    seg.size = 65536;
    seg.os_id = -1;
    ck_assert_int_eq(dsm_impl_attach(f.inst, 1, &again), -ENOENT);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "could not open shared memory segment"));
    ck_assert_int_eq(dsm_impl_destroy(f.inst, &seg), -ENOENT);
    fx_close(&f);
}
END_TEST

START_TEST(test_mapping_outlives_destroy)
{
    struct fx f;
    dsm_impl_segment seg, other;

    if (!fx_open(&f, _i))
        return;
    ck_assert_int_eq(dsm_impl_create(f.inst, 3, 8192, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(f.inst, &seg), 0);
    memset(seg.address, 0x5a, 8192); /* still mapped, still usable */
    ck_assert_int_eq(dsm_impl_attach(f.inst, 3, &other), -ENOENT);
    ck_assert_int_eq(dsm_impl_detach(f.inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_detach(f.inst, &seg), -EINVAL); /* not mapped any more */
    fx_close(&f);
}
END_TEST

START_TEST(test_collision_is_reported)
{
    struct fx f;
    dsm_impl_segment seg, dup;

    if (!fx_open(&f, _i))
        return;
    ck_assert_int_eq(dsm_impl_create(f.inst, 2, 4096, &seg), 0);
    memcpy(seg.address, "first", 6);
    errno = 0;
    ck_assert_int_eq(dsm_impl_create(f.inst, 2, 4096, &dup), -EEXIST);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_str_eq((char *)seg.address, "first"); /* the original is untouched */
    ck_assert_int_eq(dsm_impl_detach(f.inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(f.inst, &seg), 0);
    fx_close(&f);
}
END_TEST

START_TEST(test_sizes)
{
    static const size_t sizes[] = {1, 2, 4095, 4096, 4097, 65537, 1 << 20, (size_t)256 << 20};
    struct fx f;

    if (!fx_open(&f, _i))
        return;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        roundtrip(&f, 10 + i, sizes[i]);
    fx_close(&f);
}
END_TEST

START_TEST(test_bad_sizes)
{
    struct fx f;
    dsm_impl_segment seg;

    if (!fx_open(&f, _i))
        return;
    ck_assert_int_eq(dsm_impl_create(f.inst, 4, 0, &seg), -EINVAL);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "size 0"));
    ck_assert_int_eq(dsm_impl_create(f.inst, 4, DSM_IMPL_MAX_SIZE + 1, &seg), -EINVAL);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "maximum"));
    ck_assert_int_eq(dsm_impl_create(f.inst, 4, SIZE_MAX, &seg), -EINVAL);
    ck_assert_int_eq(dsm_impl_create(f.inst, DSM_HANDLE_INVALID, 4096, &seg), -EINVAL);
    ck_assert_int_eq(dsm_impl_create(NULL, 4, 4096, &seg), -EINVAL);
    ck_assert_int_eq(dsm_impl_create(f.inst, 4, 4096, NULL), -EINVAL);
    fx_close(&f);
}
END_TEST

START_TEST(test_impossible_size_fails_cleanly)
{
    struct fx f;
    dsm_impl_segment seg;
    int fds, maps, rc;

    if (!fx_open(&f, _i))
        return;
    fds = tu_count_fds();
    maps = tu_count_maps();
    /* 64 TiB: allowed by the API, more than this machine can ever back. */
    rc = dsm_impl_create(f.inst, 5, (size_t)1 << 46, &seg);
    ck_assert_msg(rc < 0 && rc != -EEXIST, "rc %d", rc);
    ck_assert_int_eq(errno, -rc);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "shared memory segment"));
    ck_assert_int_eq(tu_count_fds(), fds);
    ck_assert_int_eq(tu_count_maps(), maps);
    fx_close(&f);
}
END_TEST

START_TEST(test_unknown_handle)
{
    struct fx f;
    dsm_impl_segment seg;

    if (!fx_open(&f, _i))
        return;
    ck_assert_int_eq(dsm_impl_attach(f.inst, 77, &seg), -ENOENT);
    ck_assert_ptr_null(seg.address);
    ck_assert_int_eq(dsm_impl_attach(f.inst, DSM_HANDLE_INVALID, &seg), -EINVAL);
    fx_close(&f);
}
END_TEST

START_TEST(test_instances_do_not_collide)
{
    struct fx a, b;
    dsm_impl_segment sa, sb;

    if (!fx_open(&a, _i) || !fx_open(&b, _i))
        return;
    ck_assert_str_ne(dsm_impl_instance_id(a.inst), dsm_impl_instance_id(b.inst));
    ck_assert_int_eq(dsm_impl_create(a.inst, 6, 4096, &sa), 0);
    ck_assert_int_eq(dsm_impl_create(b.inst, 6, 4096, &sb), 0);
    strcpy(sa.address, "a");
    strcpy(sb.address, "b");
    ck_assert_ptr_ne(sa.address, sb.address);
    ck_assert_str_eq(sa.address, "a");
    ck_assert_int_eq(dsm_impl_detach(a.inst, &sa), 0);
    ck_assert_int_eq(dsm_impl_destroy(a.inst, &sa), 0);
    ck_assert_int_eq(dsm_impl_detach(b.inst, &sb), 0);
    ck_assert_int_eq(dsm_impl_destroy(b.inst, &sb), 0);
    fx_close(&a);
    fx_close(&b);
}
END_TEST

START_TEST(test_same_datadir_same_id)
{
    struct fx f;
    dsm_impl_instance *again;

    if (!fx_open(&f, _i))
        return;
    ck_assert_int_eq(dsm_impl_instance_open(f.type, f.dir, &again), 0);
    ck_assert_str_eq(dsm_impl_instance_id(again), dsm_impl_instance_id(f.inst));
    dsm_impl_instance_close(again);
    fx_close(&f);
}
END_TEST

START_TEST(test_permissions_owner_only)
{
    struct fx f;
    dsm_impl_segment seg;
    char name[512];
    struct stat st;

    if (!fx_open(&f, _i))
        return;
    umask(0); /* the library must not rely on the caller's umask */
    ck_assert_int_eq(dsm_impl_create(f.inst, 7, 4096, &seg), 0);
    ck_assert_int_eq(dsm_impl_segment_name(f.inst, 7, name, sizeof(name)), 0);
    if (f.type == DSM_IMPL_SYSV) {
        struct shmid_ds ds;

        ck_assert_int_eq(shmctl((int)seg.os_id, IPC_STAT, &ds), 0);
        ck_assert_int_eq(ds.shm_perm.mode & 0777, 0600);
    } else if (f.type == DSM_IMPL_MEMFD) {
        ck_assert_int_eq(tu_memfd_stat(name, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        ck_assert_int_eq((int64_t)st.st_ino, seg.os_id);
    } else {
        char path[600];

        snprintf(path, sizeof(path), "%s%s", f.type == DSM_IMPL_POSIX ? "/dev/shm" : "", name);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
    }
    if (f.type == DSM_IMPL_MMAP) {
        snprintf(name, sizeof(name), "%s/dynshm_mmap", f.dir);
        ck_assert_int_eq(stat(name, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0700);
    }
    umask(022);
    ck_assert_int_eq(dsm_impl_detach(f.inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(f.inst, &seg), 0);
    fx_close(&f);
}
END_TEST

/* A same-named object dynshm did not make (mode 0644) is never used or removed. */
START_TEST(test_foreign_object_refused)
{
    struct fx f;
    dsm_impl_segment seg;
    char name[512], path[600];
    int fd = -1, shmid = -1;

    if (_i == DSM_IMPL_MEMFD)
        return; /* no name to squat: test_memfd_foreign_descriptor covers what can be faked */
    if (!fx_open(&f, _i))
        return;
    ck_assert_int_eq(dsm_impl_segment_name(f.inst, 8, name, sizeof(name)), 0);
    if (f.type == DSM_IMPL_SYSV) {
        unsigned key;

        ck_assert_int_eq(sscanf(name, "key 0x%x", &key), 1);
        shmid = shmget((key_t)key, 4096, IPC_CREAT | IPC_EXCL | 0644);
        ck_assert_int_ge(shmid, 0);
    } else {
        snprintf(path, sizeof(path), "%s%s", f.type == DSM_IMPL_POSIX ? "/dev/shm" : "", name);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
        ck_assert_int_ge(fd, 0);
        fchmod(fd, 0644);
        ck_assert_int_eq(ftruncate(fd, 4096), 0);
    }
    ck_assert_int_eq(dsm_impl_create(f.inst, 8, 4096, &seg), -EEXIST);
    ck_assert_int_eq(dsm_impl_attach(f.inst, 8, &seg), DSM_EFOREIGN);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "permissions 644"));
    seg.handle = 8;
    seg.size = 0;
    seg.os_id = -1;
    if (f.type == DSM_IMPL_SYSV) {
        ck_assert_int_eq(dsm_impl_destroy(f.inst, &seg), DSM_EFOREIGN);
        ck_assert_int_eq(shmctl(shmid, IPC_RMID, NULL), 0); /* it was still there */
    } else {
        close(fd);
        ck_assert_int_eq(unlink(path), 0);
    }
    fx_close(&f);
}
END_TEST

START_TEST(test_sysv_destroy_checks_identity)
{
    struct fx f;
    dsm_impl_segment seg, wrong;

    if (!fx_open(&f, DSM_IMPL_SYSV))
        return;
    ck_assert_int_eq(dsm_impl_create(f.inst, 9, 4096, &seg), 0);
    wrong = seg;
    wrong.os_id = seg.os_id + 1;
    ck_assert_int_eq(dsm_impl_destroy(f.inst, &wrong), DSM_EFOREIGN);
    wrong = seg;
    wrong.size = 8192;
    ck_assert_int_eq(dsm_impl_destroy(f.inst, &wrong), DSM_EFOREIGN);
    ck_assert_int_eq(dsm_impl_detach(f.inst, &seg), 0);
    ck_assert_int_eq(dsm_impl_destroy(f.inst, &seg), 0);
    fx_close(&f);
}
END_TEST

START_TEST(test_none_backend)
{
    char dir[256];
    dsm_impl_instance *inst;
    dsm_impl_segment seg = {.handle = 1};

    tu_make_datadir(dir, sizeof(dir));
    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_NONE, dir, &inst), 0);
    ck_assert_int_eq(dsm_impl_create(inst, 1, 4096, &seg), DSM_EDISABLED);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "dynamic shared memory is disabled"));
    ck_assert_int_eq(dsm_impl_attach(inst, 1, &seg), DSM_EDISABLED);
    seg.handle = 1;
    ck_assert_int_eq(dsm_impl_destroy(inst, &seg), DSM_EDISABLED);
    dsm_impl_instance_close(inst);
    tu_remove_datadir(dir);
}
END_TEST

START_TEST(test_type_names)
{
    dsm_impl_type t;

    for (int i = 0; i < DSM_IMPL_NTYPES; i++) {
        ck_assert_ptr_nonnull(dsm_impl_type_name((dsm_impl_type)i));
        if (dsm_impl_type_available((dsm_impl_type)i)) {
            ck_assert_int_eq(dsm_impl_type_from_name(dsm_impl_type_name((dsm_impl_type)i), &t), 0);
            ck_assert_int_eq(t, i);
        }
    }
    ck_assert_ptr_null(dsm_impl_type_name((dsm_impl_type)DSM_IMPL_NTYPES));
    ck_assert_int_eq(dsm_impl_type_from_name("posixx", &t), -EINVAL);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "\"posixx\""));
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "valid values: "));
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "none"));
    ck_assert_int_eq(dsm_impl_type_from_name(NULL, &t), -EINVAL);
    ck_assert(dsm_impl_type_available(dsm_impl_default_type()));
}
END_TEST

START_TEST(test_instance_open_errors)
{
    char dir[256], file[300];
    dsm_impl_instance *inst = (dsm_impl_instance *)1;

    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_POSIX, NULL, &inst), -EINVAL);
    ck_assert_ptr_null(inst);
    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_POSIX, "/nonexistent/dynshm", &inst),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "/nonexistent/dynshm"));
    ck_assert_int_eq(dsm_impl_instance_open((dsm_impl_type)99, "/tmp", &inst), -ENOTSUP);
    tu_make_datadir(dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/file", dir);
    close(open(file, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_POSIX, file, &inst), -ENOTDIR);
    tu_remove_datadir(dir);
}
END_TEST

START_TEST(test_mmap_directory_must_be_ours)
{
    char dir[256], other[256], link[300];
    dsm_impl_instance *inst;

    tu_make_datadir(dir, sizeof(dir));
    tu_make_datadir(other, sizeof(other));
    snprintf(link, sizeof(link), "%s/dynshm_mmap", dir);
    ck_assert_int_eq(symlink(other, link), 0);
    ck_assert_int_lt(dsm_impl_instance_open(DSM_IMPL_MMAP, dir, &inst), 0);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "symbolic link"));
    unlink(link);
    ck_assert_int_eq(mkdir(link, 0755), 0);
    chmod(link, 0755);
    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_MMAP, dir, &inst), DSM_EFOREIGN);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "mode 0700"));
    tu_remove_datadir(dir);
    tu_remove_datadir(other);
}
END_TEST

START_TEST(test_segment_names)
{
    struct fx f;
    char name[512], want[512], tiny[8];

    if (!fx_open(&f, _i))
        return;
    ck_assert_int_eq(dsm_impl_segment_name(f.inst, 0xab, name, sizeof(name)), 0);
    if (f.type == DSM_IMPL_POSIX) {
        snprintf(want, sizeof(want), "/dynshm.%s.00000000000000ab", dsm_impl_instance_id(f.inst));
        ck_assert_str_eq(name, want);
    } else if (f.type == DSM_IMPL_MMAP) {
        snprintf(want, sizeof(want), "%s/dynshm_mmap/dynshm.%s.00000000000000ab", f.dir,
                 dsm_impl_instance_id(f.inst));
        ck_assert_str_eq(name, want);
    } else if (f.type == DSM_IMPL_MEMFD) {
        snprintf(want, sizeof(want), "memfd:dynshm.%s.00000000000000ab",
                 dsm_impl_instance_id(f.inst));
        ck_assert_str_eq(name, want);
    } else {
        ck_assert_int_eq(strncmp(name, "key 0x", 6), 0);
    }
    ck_assert_int_eq(dsm_impl_segment_name(f.inst, 0xab, tiny, sizeof(tiny)), -ERANGE);
    fx_close(&f);
}
END_TEST

/*
 * In a private mount namespace with a 4 MiB tmpfs where the segments live,
 * creating more than fits is ENOSPC at create time, leaves nothing behind,
 * and what did fit is fully usable (no SIGBUS when touching every page).
 */
static int child_enospc(struct fx *f, void *arg)
{
    dsm_impl_instance *inst;
    dsm_impl_segment a, b;
    char mnt[300];
    int rc;

    (void)arg;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 77;
    if (f->type == DSM_IMPL_POSIX) {
        snprintf(mnt, sizeof(mnt), "/dev/shm");
    } else {
        snprintf(mnt, sizeof(mnt), "%s/dynshm_mmap", f->dir);
        mkdir(mnt, 0700);
    }
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0)
        return 77;
    if (dsm_impl_instance_open(f->type, f->dir, &inst) != 0)
        return 20;
    rc = dsm_impl_create(inst, 1, 8 << 20, &a);
    if (rc != -ENOSPC || strstr(dsm_errmsg(), "No space left on device") == NULL)
        return 21;
    /* The detail says how much was asked and how much is free; the hint what to do. */
    if (strstr(dsm_errdetail(), "8388608 bytes were asked for") == NULL ||
        strstr(dsm_errdetail(), "free of 4194304") == NULL)
        return 27;
    if (strstr(dsm_errhint(), f->type == DSM_IMPL_POSIX ? "--shm-size" : "larger one") == NULL)
        return 28;
    if (tu_count_posix(dsm_impl_instance_id(inst)) + tu_count_mmap(f->dir) != 0)
        return 22;
    if (dsm_impl_create(inst, 2, 3 << 20, &a) != 0)
        return 23;
    memset(a.address, 1, 3 << 20); /* every page is backed: no SIGBUS */
    if (dsm_impl_create(inst, 3, (1 << 20) + 4096, &b) != -ENOSPC)
        return 24;
    if (dsm_impl_detach(inst, &a) != 0 || dsm_impl_destroy(inst, &a) != 0)
        return 25;
    if (tu_count_posix(dsm_impl_instance_id(inst)) + tu_count_mmap(f->dir) != 0)
        return 26;
    dsm_impl_instance_close(inst);
    return 0;
}

START_TEST(test_enospc_in_small_tmpfs)
{
    struct fx f;
    int rc;

    if (_i == DSM_IMPL_SYSV || !fx_open(&f, _i))
        return;
    if (_i == DSM_IMPL_MEMFD) {
        /* memfd is not limited by a tmpfs size but by the memory cgroup (see the guide). */
        printf("SKIP: test_enospc_in_small_tmpfs (memfd): no tmpfs limits it\n");
        fx_close(&f);
        return;
    }
    rc = in_child(&f, child_enospc, NULL);
    if (rc == 77)
        printf("SKIP: test_enospc_in_small_tmpfs (%s): cannot mount tmpfs in a private mount "
               "namespace here\n", dsm_impl_type_name(f.type));
    else
        ck_assert_msg(rc == 0, "child failed at step %d", rc);
    fx_close(&f);
}
END_TEST

Suite *suite_dsm_impl(void)
{
    Suite *s = suite_create("dsm_impl");
    TCase *tc = tcase_create("conformance");
    TCase *misc = tcase_create("misc");

    /* Every conformance case runs once per real backend. */
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_create_attach_detach_destroy, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_mapping_outlives_destroy, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_collision_is_reported, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_sizes, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_bad_sizes, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_impossible_size_fails_cleanly, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_unknown_handle, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_instances_do_not_collide, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_same_datadir_same_id, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_permissions_owner_only, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_foreign_object_refused, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_segment_names, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    tcase_add_loop_test(tc, test_enospc_in_small_tmpfs, DSM_IMPL_POSIX, DSM_IMPL_NTYPES);
    suite_add_tcase(s, tc);

    tcase_add_test(misc, test_sysv_destroy_checks_identity);
    tcase_add_test(misc, test_none_backend);
    tcase_add_test(misc, test_type_names);
    tcase_add_test(misc, test_instance_open_errors);
    tcase_add_test(misc, test_mmap_directory_must_be_ours);
    suite_add_tcase(s, misc);
    return s;
}
