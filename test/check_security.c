/* SPDX-License-Identifier: MIT */
/*
 * check_security.c - the "security" case of the hostile suite: what a
 * security review asks, each claim of doc/threat-model.md that a test can
 * show.
 *
 *   modes         with umask 0: segments, the control segment, the state
 *                 and lock files 0600, the mmap directory 0700
 *   other users   (root only) a supervisor running as one uid, a second
 *                 uid trying to read, map, remove and squat its objects
 *   handles       1000 handles: random high halves, no pattern; control
 *                 handles differ every start
 *   exec          no dynshm descriptor survives an exec, from a supervisor
 *                 or from workers holding mappings (test/fd_list lists
 *                 what the new program inherited)
 */
#include "config.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/state_file.h"
#include "dsm/dsm_int.h"
#include "hostile.h"

static void expect_mode(const char *path, unsigned mode)
{
    struct stat st;

    ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
    ck_assert_msg((st.st_mode & 0777) == mode, "%s has mode %03o, not %03o", path,
                  (unsigned)(st.st_mode & 0777), mode);
}

static void expect_segment_mode(struct sv *v, dsm_handle h, int64_t os_id)
{
    if (v->type == DSM_IMPL_SYSV) {
        struct shmid_ds ds;

        ck_assert_int_eq(shmctl((int)os_id, IPC_STAT, &ds), 0);
        ck_assert_int_eq(ds.shm_perm.mode & 0777, 0600);
        ck_assert_int_eq(ds.shm_perm.cuid, geteuid());
    } else if (v->type == DSM_IMPL_MEMFD) {
        char name[600];
        struct stat st;

        ck_assert_int_eq(dsm_impl_segment_name(dsm__p.inst, h, name, sizeof(name)), 0);
        ck_assert_int_eq(tu_memfd_stat(name, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        ck_assert_int_eq(st.st_uid, geteuid());
    } else {
        char path[600];

        segment_path(dsm__p.inst, h, path, sizeof(path));
        expect_mode(path, 0600);
    }
}

START_TEST(test_modes_with_umask_0)
{
    struct sv v;
    dsm_segment *seg;
    char path[600];

    umask(0); /* the library must not rely on the caller's umask */
    if (!sv_start(&v, _i, NULL))
        return;
    snprintf(path, sizeof(path), "%s/" DSM_STATE_FILE, v.dir);
    expect_mode(path, 0600);
    snprintf(path, sizeof(path), "%s/dynshm.lock", v.dir);
    expect_mode(path, 0600);
    if (v.type == DSM_IMPL_MMAP) {
        snprintf(path, sizeof(path), "%s/dynshm_mmap", v.dir);
        expect_mode(path, 0700);
    }
    expect_segment_mode(&v, dsm_control_handle(), dsm__p.ctl.map.os_id);
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    expect_segment_mode(&v, dsm_segment_handle(seg), seg->impl.os_id);
    ck_assert_int_eq(dsm_detach(seg), 0);
    /* A reset rewrites the state file and makes a new control segment: same modes. */
    ck_assert_int_eq(dsm_supervisor_reset(), 0);
    snprintf(path, sizeof(path), "%s/" DSM_STATE_FILE, v.dir);
    expect_mode(path, 0600);
    expect_segment_mode(&v, dsm_control_handle(), dsm__p.ctl.map.os_id);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    umask(022);
}
END_TEST

/* ---- another user ------------------------------------------------------------------ */

/*
 * Two unprivileged uids (made by root: the test needs root and skips
 * otherwise).  The owner runs a supervisor with a segment holding a secret;
 * the other user tries to read, map, remove and squat what it can see.
 * Owner-only modes stop the first three; the owner's ownership checks stop
 * the squatter from ever being used or removed.  Root itself bypasses modes,
 * which is why the two sides must both be unprivileged.
 */
#define OWNER_UID 65534
#define OTHER_UID 65533
#define SQUATTED ((dsm_handle)0x4242)

struct two_users {
    struct sv v;
    dsm_handle handle;
    struct sync sync;
};

static int become(uid_t uid)
{
    return setgroups(0, NULL) == 0 && setgid(uid) == 0 && setuid(uid) == 0 ? 0 : -1;
}

/*
 * memfd: there is no name to compute.  The registry is inside the closed
 * data directory, and the owner's descriptors cannot be listed or reopened
 * through /proc by another user (ptrace access check).
 */
static int memfd_other_user(struct two_users *t)
{
    char path[600], link[600];
    dsm_impl_instance *inst;
    DIR *procs;
    struct dirent *p;
    int seen = 0;

    if (dsm_impl_instance_open(DSM_IMPL_MEMFD, t->v.dir, &inst) != -EACCES)
        return 30;
    if ((procs = opendir("/proc")) == NULL)
        return 31;
    while ((p = readdir(procs)) != NULL) {
        struct stat st;
        DIR *fds;
        struct dirent *f;

        snprintf(path, sizeof(path), "/proc/%s", p->d_name);
        if (p->d_name[0] < '1' || p->d_name[0] > '9' || stat(path, &st) != 0 ||
            st.st_uid != OWNER_UID)
            continue;
        seen++;
        snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
        if ((fds = opendir(path)) != NULL) {
            closedir(fds);
            closedir(procs);
            return 32; /* the owner's descriptor table is open to us */
        }
        /* Even knowing a number: no way in. */
        for (int n = 0; n < 64; n++) {
            int fd;

            snprintf(path, sizeof(path), "/proc/%s/fd/%d", p->d_name, n);
            if ((fd = open(path, O_RDONLY)) >= 0 || readlink(path, link, sizeof(link)) >= 0) {
                if (fd >= 0)
                    close(fd);
                closedir(procs);
                return 33;
            }
        }
        (void)f;
    }
    closedir(procs);
    return seen > 0 ? 0 : 34;
}

/* The other user: everything fails, except planting a squatter. */
static int other_user(void *arg)
{
    struct two_users *t = arg;
    dsm_impl_instance *inst;
    dsm_impl_segment seg;
    char name[600], path[700];
    int fd;

    if (become(OTHER_UID) != 0)
        return 1;
    /* The data directory is another user's: refused before anything is read. */
    if (dsm_worker_attach(t->v.dir) != DSM_EFOREIGN)
        return 2;
    if (t->v.type == DSM_IMPL_MMAP) {
        /* The data directory is closed: no instance, no directory, no file. */
        if (dsm_impl_instance_open(DSM_IMPL_MMAP, t->v.dir, &inst) != -EACCES)
            return 3;
        snprintf(path, sizeof(path), "%s/dynshm_mmap/x", t->v.dir);
        if (open(path, O_RDWR | O_CREAT | O_EXCL, 0666) >= 0 || errno != EACCES)
            return 4;
        return 0;
    }
    if (t->v.type == DSM_IMPL_MEMFD)
        return memfd_other_user(t);
    /* posix and sysv names are global: the other user can compute them. */
    if (dsm_impl_instance_open(t->v.type, t->v.dir, &inst) != 0)
        return 5;
    if (dsm_impl_attach(inst, t->handle, &seg) != -EACCES)
        return 6;
    seg.handle = t->handle;
    seg.size = 0;
    seg.os_id = -1;
    if (t->v.type == DSM_IMPL_POSIX) {
        if (dsm_impl_segment_name(inst, t->handle, name, sizeof(name)) != 0)
            return 7;
        if (shm_open(name, O_RDONLY, 0) >= 0 || errno != EACCES)
            return 8;
        if (shm_unlink(name) == 0 || (errno != EPERM && errno != EACCES)) /* sticky /dev/shm */
            return 9;
        /* A squatter under a name the owner will try: world-writable, ours. */
        if (dsm_impl_segment_name(inst, SQUATTED, name, sizeof(name)) != 0)
            return 10;
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0666);
        if (fd < 0 || fchmod(fd, 0666) != 0 || write(fd, SQUAT_MARK, sizeof(SQUAT_MARK)) < 0)
            return 11;
        close(fd);
    } else {
        unsigned key;
        int id;
        char *p;

        if (dsm_impl_destroy(inst, &seg) != DSM_EFOREIGN && errno != EACCES)
            return 12; /* it cannot even read the segment's attributes */
        if (dsm_impl_segment_name(inst, t->handle, name, sizeof(name)) != 0 ||
            sscanf(name, "key 0x%x", &key) != 1)
            return 13;
        id = shmget((key_t)key, 0, 0);
        if (id < 0 || shmat(id, NULL, SHM_RDONLY) != (void *)-1)
            return 14;
        if (errno != EACCES && !under_valgrind()) /* valgrind's shmat asks IPC_STAT first */
            return 14;
        if (shmctl(id, IPC_RMID, NULL) == 0 || errno != EPERM)
            return 15;
        if (dsm_impl_segment_name(inst, SQUATTED, name, sizeof(name)) != 0 ||
            sscanf(name, "key 0x%x", &key) != 1)
            return 16;
        id = shmget((key_t)key, 4096, IPC_CREAT | IPC_EXCL | 0666);
        p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
        if (p == (void *)-1)
            return 17;
        memcpy(p, SQUAT_MARK, sizeof(SQUAT_MARK));
        shmdt(p);
    }
    dsm_impl_instance_close(inst);
    return 0;
}

/* The owner: a supervisor with a secret; then the squatter must be refused. */
static int owner(void *arg)
{
    struct two_users *t = arg;
    dsm_impl_segment seg;
    dsm_segment *s;
    int rc;

    if (become(OWNER_UID) != 0)
        return 1;
    if (start_plain(t->v.dir, t->v.type, NULL) != 0 || dsm_create(4096, 0, &s) != 0)
        return 2;
    strcpy(dsm_segment_address(s), "secret");
    sync_signal_parent(&t->sync, dsm_segment_handle(s));
    sync_wait_parent(&t->sync); /* the other user has done its worst */
    if (strcmp(dsm_segment_address(s), "secret") != 0)
        return 3;
    if (t->v.type != DSM_IMPL_MMAP && t->v.type != DSM_IMPL_MEMFD) {
        /* The squatter's name is taken: create moves on; attach and destroy refuse it. */
        if (dsm_impl_create(dsm__p.inst, SQUATTED, 4096, &seg) != -EEXIST)
            return 4;
        if (dsm_impl_attach(dsm__p.inst, SQUATTED, &seg) != DSM_EFOREIGN ||
            strstr(dsm_errmsg(), "65533") == NULL)
            return 5;
        seg.handle = SQUATTED;
        seg.size = 0;
        seg.os_id = -1;
        rc = dsm_impl_destroy(dsm__p.inst, &seg);
        if (rc != (t->v.type == DSM_IMPL_SYSV ? DSM_EFOREIGN : -EPERM) && rc != -EACCES)
            return 6;
    }
    if (dsm_detach(s) != 0 || dsm_supervisor_shutdown() != 0)
        return 7;
    return 0;
}

START_TEST(test_other_user)
{
    struct two_users t;
    char parent[256], *slash, name[600];
    dsm_impl_instance *inst;
    pid_t pid;
    int st, rc;

    if (geteuid() != 0) {
        printf("SKIP: test_other_user needs root to make two users\n");
        return;
    }
    memset(&t, 0, sizeof(t));
    t.v.type = (dsm_impl_type)_i;
    if (!dsm_impl_type_available(t.v.type))
        return;
    tu_sysv_mark(); /* both users' children share this IPC namespace */
    tu_make_datadir(t.v.dir, sizeof(t.v.dir));
    instance_id_of(t.v.dir, t.v.id);
    /* The run's root must be searchable for the owner to reach its directory. */
    snprintf(parent, sizeof(parent), "%s", t.v.dir);
    slash = strrchr(parent, '/');
    *slash = '\0';
    ck_assert_int_eq(chmod(parent, 0711), 0);
    ck_assert_int_eq(chown(t.v.dir, OWNER_UID, OWNER_UID), 0);
    sync_init(&t.sync);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(owner(&t));
    t.handle = sync_wait_child(&t.sync);
    rc = run_child(other_user, &t, 60);
    sync_signal_child(&t.sync);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(chmod(parent, 0700), 0);
    ck_assert_msg(rc == 0, "the other user got further than it should (step %d)", rc);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "owner failed at step %d",
                  WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));

    /* Only the squatter is left, untouched; root removes it.  (Root cannot open an
     * mmap instance here at all: the segment directory is not root's.) */
    ck_assert_int_eq(dsm_impl_instance_open(t.v.type == DSM_IMPL_MMAP ||
                                                    t.v.type == DSM_IMPL_MEMFD
                                                ? DSM_IMPL_NONE
                                                : t.v.type,
                                            t.v.dir, &inst), 0);
    if (t.v.type != DSM_IMPL_MMAP && t.v.type != DSM_IMPL_MEMFD)
        ck_assert_int_eq(dsm_impl_segment_name(inst, SQUATTED, name, sizeof(name)), 0);
    if (t.v.type == DSM_IMPL_POSIX) {
        char buf[sizeof(SQUAT_MARK)];
        int fd = shm_open(name, O_RDONLY, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read(fd, buf, sizeof(buf)), sizeof(buf));
        ck_assert_str_eq(buf, SQUAT_MARK);
        close(fd);
        ck_assert_int_eq(shm_unlink(name), 0);
    } else if (t.v.type == DSM_IMPL_SYSV) {
        unsigned key;
        int id;
        char *p;

        ck_assert_int_eq(sscanf(name, "key 0x%x", &key), 1);
        id = shmget((key_t)key, 0, 0);
        ck_assert_int_ge(id, 0);
        p = shmat(id, NULL, SHM_RDONLY);
        ck_assert_ptr_ne(p, (void *)-1);
        ck_assert_str_eq(p, SQUAT_MARK);
        shmdt(p);
        ck_assert_int_eq(shmctl(id, IPC_RMID, NULL), 0);
    }
    dsm_impl_instance_close(inst);
    ck_assert_int_eq(objects(t.v.dir, t.v.id), 0);
    tu_remove_datadir(t.v.dir);
}
END_TEST

#define NHANDLES 1000

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

START_TEST(test_handles_unpredictable)
{
    static const char *const opts[] = {"dsm_max_segments=4", NULL};
    static uint32_t high[NHANDLES];
    struct sv v;
    dsm_handle controls[20];
    int ones[32] = {0}, dups = 0, same_step = 0;

    if (!sv_start(&v, dsm_impl_default_type(), opts))
        return;
    for (int i = 0; i < NHANDLES; i++) {
        dsm_segment *seg;

        ck_assert_int_eq(dsm_create(64, 0, &seg), 0);
        high[i] = (uint32_t)(dsm_segment_handle(seg) >> 32);
        ck_assert_uint_lt((uint32_t)dsm_segment_handle(seg), 4); /* low half: the slot */
        ck_assert_int_eq(dsm_detach(seg), 0);
        for (int b = 0; b < 32; b++)
            ones[b] += (high[i] >> b) & 1;
        if (i >= 2 && high[i] - high[i - 1] == high[i - 1] - high[i - 2])
            same_step++;
    }
    /* Every bit is a coin toss: 1000 tosses stay within 500 +- 150 (9.5 sigma). */
    for (int b = 0; b < 32; b++)
        ck_assert_msg(ones[b] > 350 && ones[b] < 650, "bit %d set in %d of %d handles", b,
                      ones[b], NHANDLES);
    ck_assert_int_le(same_step, 1); /* no arithmetic progression */
    qsort(high, NHANDLES, sizeof(high[0]), cmp_u32);
    for (int i = 1; i < NHANDLES; i++)
        dups += high[i] == high[i - 1];
    ck_assert_int_le(dups, 1); /* 32 random bits: a repeat in 1000 has odds of 1 in 8600 */
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);

    /* Control segment handles: 64 random bits each start. */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(sv_restart(&v, opts), 0);
        controls[i] = dsm_control_handle();
        for (int j = 0; j < i; j++)
            ck_assert_uint_ne(controls[i], controls[j]);
        ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    }
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- no descriptor survives an exec ------------------------------------------------------ */

/* Fork, exec test/fd_list with stdout on a pipe, return what it printed (malloc'd). */
static char *fds_after_exec(void)
{
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    int p[2], st;
    ssize_t n;
    pid_t pid;

    if (out == NULL || pipe2(p, O_CLOEXEC) != 0)
        return NULL;
    pid = fork();
    if (pid < 0)
        return NULL;
    if (pid == 0) {
        dup2(p[1], 1); /* dup2 clears close-on-exec on the copy */
        execl("test/fd_list", "fd_list", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    while ((n = read(p[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 == cap) {
            char *bigger = realloc(out, cap *= 2);

            if (bigger == NULL)
                break;
            out = bigger;
        }
    }
    out[len] = '\0';
    close(p[0]);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int lines_of(const char *text)
{
    int n = 0;

    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static char *baseline_fds;
static const char *leak_dir;

/* 0 if what the exec'd program inherited is the baseline and nothing of ours. */
static int fds_clean(const char *after)
{
    if (after == NULL)
        return 1;
    if (strstr(after, leak_dir) || strstr(after, "/dev/shm/") || strstr(after, "SYSV") ||
        strstr(after, "dynshm.lock") || strstr(after, "dynshm.state") ||
        strstr(after, "dynshm_mmap"))
        return 2;
    if (lines_of(after) != lines_of(baseline_fds) && !under_valgrind())
        return 3;
    return 0;
}

static dsm_handle exec_shared;

static int worker_execs(void *arg)
{
    dsm_segment *a, *b;
    char *after;
    int rc;

    (void)arg;
    if (dsm_attach(exec_shared, &a) != 0 || dsm_create(65536, 0, &b) != 0)
        return 10;
    after = fds_after_exec();
    rc = fds_clean(after);
    if (rc != 0)
        fprintf(stderr, "worker: inherited across exec:\n%s--- baseline:\n%s", after ? after : "",
                baseline_fds);
    free(after);
    return rc == 0 ? 0 : 20 + rc;
}

START_TEST(test_no_fd_leak_across_exec)
{
    struct sv v;
    dsm_segment *seg;
    char *after;

    baseline_fds = fds_after_exec();
    ck_assert_ptr_nonnull(baseline_fds);
    if (!sv_start(&v, _i, NULL)) {
        free(baseline_fds);
        return;
    }
    leak_dir = v.dir;
    ck_assert_int_eq(dsm_create(65536, 0, &seg), 0);
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    exec_shared = dsm_segment_handle(seg);
    /* Workers holding mappings exec; then the supervisor itself forks and execs. */
    ck_assert_int_eq(sv_wait(sv_fork_worker(worker_execs, NULL)), 0);
    ck_assert_int_eq(sv_wait(sv_fork_worker(worker_execs, NULL)), 0);
    after = fds_after_exec();
    ck_assert_msg(fds_clean(after) == 0, "supervisor: inherited across exec:\n%s--- baseline:\n%s",
                  after ? after : "(nothing)", baseline_fds);
    free(after);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_unpin_segment(exec_shared), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
    free(baseline_fds);
}
END_TEST

TCase *tcase_security(void)
{
    TCase *tc = tcase_create("security");

    tcase_set_timeout(tc, 120);
    LOOP(tc, test_modes_with_umask_0);
    LOOP(tc, test_other_user);
    tcase_add_test(tc, test_handles_unpredictable);
    LOOP(tc, test_no_fd_leak_across_exec);
    return tc;
}
