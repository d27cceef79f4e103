/* SPDX-License-Identifier: MIT */
/*
 * check_hostile.c - the "hostile" suite: resource exhaustion
 * (check_exhaustion.c), hostile input (here) and the security review
 * (check_security.c).
 *
 * Hostile input: every kind gets a clear error and loses nothing.
 *   squatters      collisions injected on every exclusive create, and real
 *                  objects of the same user planted under the exact name
 *                  just before each create: dsm_create moves on to a new
 *                  handle, never maps a squatter, and a bounded number of
 *                  collisions ends in a clean -EEXIST
 *   symlinks       named like our segments, in /dev/shm or the mmap
 *                  directory: never followed by create, attach, destroy or
 *                  the start-up sweep (which removes the link, not its target)
 *   handles        never issued: always -ENOENT, never a mapping
 *   settings       text made to hurt (BOMs, lone CRs, overlong UTF-8, NULs,
 *                  huge lines and files, endless devices)
 *   control        truncated, other versions, other instances, impossible
 *                  capacities with a checksum that fits: refused, and at
 *                  start-up nothing is destroyed on their word
 *   state file     a FIFO (start-up must not block on it), or another
 *                  user's file: not believed, start-up goes on
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/state_file.h"
#include "dsm/dsm_int.h"
#include "hostile.h"

/* ---- squatters on the names dynshm tries ------------------------------------------- */

START_TEST(test_injected_collisions)
{
    struct sv v;
    dsm_segment *seg;

    if (!sv_start(&v, _i, NULL))
        return;
    hx_install();
    hx.eexist = 10;
    ck_assert_msg(dsm_create(8192, 0, &seg) == 0, "%s", dsm_errmsg());
    ck_assert_int_eq(hx.eexist, 0); /* every collision was retried with a new handle */
    memset(dsm_segment_address(seg), 7, 8192);
    ck_assert_int_eq(sv_objects(&v), 2);
    ck_assert_int_eq(dsm_detach(seg), 0);

    /* Nothing but collisions: a bounded number of tries, then a clean error. */
    hx.eexist = 100000;
    ck_assert_int_eq(dsm_create(8192, 0, &seg), -EEXIST);
    ck_assert_ptr_null(seg);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "could not find a free name"));
    ck_assert_int_gt(hx.eexist, 0);
    ck_assert_int_lt(hx.eexist, 100000 - 1);
    hx_remove();
    ck_assert_int_eq(dsm__p.ctl.hdr->slots_used, 0);
    ck_assert_int_eq(dsm__p.ctl.hdr->refs_used, 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* 1 if this process maps a file whose name contains `name`. */
static int mapped_here(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[4096];
    int found = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        found |= strstr(line, name) != NULL;
    fclose(f);
    return found;
}

/* A squatter still holds its own bytes, and nobody maps it. */
static void check_squatter(dsm_impl_type type, int i)
{
    char buf[sizeof(SQUAT_MARK)];

    if (type == DSM_IMPL_SYSV) {
        struct shmid_ds ds;
        int id = shmget(hx.keys[i], 0, 0);
        char *p;

        ck_assert_int_ge(id, 0);
        ck_assert_int_eq(shmctl(id, IPC_STAT, &ds), 0);
        ck_assert_int_eq(ds.shm_nattch, 0);
        p = shmat(id, NULL, SHM_RDONLY);
        ck_assert_ptr_ne(p, (void *)-1);
        ck_assert_str_eq(p, SQUAT_MARK);
        shmdt(p);
        return;
    }
    {
        const char *base = strrchr(hx.names[i], '/') ? strrchr(hx.names[i], '/') + 1 : hx.names[i];
        int fd = type == DSM_IMPL_POSIX ? shm_open(hx.names[i], O_RDONLY, 0)
                                        : openat(hx.dirfd, hx.names[i], O_RDONLY | O_NOFOLLOW);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read(fd, buf, sizeof(buf)), sizeof(buf));
        ck_assert_str_eq(buf, SQUAT_MARK);
        close(fd);
        ck_assert_msg(!mapped_here(base), "squatter %s is mapped", base);
    }
}

static void remove_squatter(dsm_impl_type type, int i)
{
    if (type == DSM_IMPL_SYSV)
        ck_assert_int_eq(shmctl(shmget(hx.keys[i], 0, 0), IPC_RMID, NULL), 0);
    else if (type == DSM_IMPL_POSIX)
        ck_assert_int_eq(shm_unlink(hx.names[i]), 0);
    else
        ck_assert_int_eq(unlinkat(hx.dirfd, hx.names[i], 0), 0);
}

/* The handle in a posix or mmap name ("...dynshm.<id>.<handle>"). */
static dsm_handle handle_in(const char *name)
{
    const char *dot = strrchr(name, '.');
    dsm_handle h = 0;

    ck_assert_ptr_nonnull(dot);
    ck_assert_int_eq(dsm_handle_parse(dot + 1, &h), 0);
    return h;
}

START_TEST(test_real_squatters)
{
    struct sv v;
    dsm_segment *seg, *probe;
    const unsigned char *p;
    int n;

    if (_i == DSM_IMPL_MEMFD)
        return; /* an anonymous file has no name anybody could take first */
    if (!sv_start(&v, _i, NULL))
        return;
    hx_install();
    hx.squat = 5; /* the same user plants an object (0600, ours by every check) each time */
    ck_assert_msg(dsm_create(8192, 0, &seg) == 0, "%s", dsm_errmsg());
    hx_remove();
    n = hx.nsquat;
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(hx.squat, 0);
    /* We got a fresh, zero-filled segment of our own, not a squatter. */
    p = dsm_segment_address(seg);
    for (size_t i = 0; i < 8192; i++)
        ck_assert_int_eq(p[i], 0);
    for (int i = 0; i < n; i++) {
        check_squatter(v.type, i);
        if (v.type != DSM_IMPL_SYSV) {
            ck_assert_uint_ne(handle_in(hx.names[i]), dsm_segment_handle(seg));
            /* A squatted handle is in no table: attach refuses it. */
            ck_assert_int_eq(dsm_attach(handle_in(hx.names[i]), &probe), -ENOENT);
        }
    }
    ck_assert_int_eq(sv_objects(&v), 2 + n);
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    /* Shut-down destroys what the table lists, nothing else. */
    for (int i = 0; i < n; i++) {
        check_squatter(v.type, i);
        remove_squatter(v.type, i);
    }
    if (hx.dirfd >= 0)
        close(hx.dirfd);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- symbolic links named like our segments ----------------------------------------- */

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void check_victim(const char *path, const char *text)
{
    char buf[256] = "";
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)strlen(text));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(text));
    ck_assert_str_eq(buf, text);
    close(fd);
}

static void count_removed(const char *name, void *arg)
{
    (void)name;
    (*(int *)arg)++;
}

START_TEST(test_symlink_squatters)
{
    struct fxs {
        char dir[256], victim[300], absent[300], link1[600], link2[600], other[600];
    } f;
    dsm_impl_type type = (dsm_impl_type)_i;
    dsm_impl_instance *inst;
    dsm_impl_segment seg;
    struct stat st;
    char id[17];
    int removed = 0;

    if (type == DSM_IMPL_SYSV || type == DSM_IMPL_MEMFD || !dsm_impl_type_available(type))
        return; /* System V keys and memfd files are not names: nothing to link */
    tu_make_datadir(f.dir, sizeof(f.dir));
    instance_id_of(f.dir, id);
    snprintf(f.victim, sizeof(f.victim), "%s/victim", f.dir);
    snprintf(f.absent, sizeof(f.absent), "%s/absent", f.dir);
    write_text(f.victim, "precious");
    chmod(f.victim, 0600);
    ck_assert_int_eq(dsm_impl_instance_open(type, f.dir, &inst), 0);
    segment_path(inst, 0x51, f.link1, sizeof(f.link1));
    segment_path(inst, 0x52, f.link2, sizeof(f.link2));
    ck_assert_int_eq(symlink(f.victim, f.link1), 0);
    ck_assert_int_eq(symlink(f.absent, f.link2), 0); /* dangling */

    /* Create never follows the link: a collision, and the target is untouched... */
    ck_assert_int_eq(dsm_impl_create(inst, 0x51, 4096, &seg), -EEXIST);
    check_victim(f.victim, "precious");
    /* ...nor creates a dangling link's target. */
    ck_assert_int_eq(dsm_impl_create(inst, 0x52, 4096, &seg), -EEXIST);
    ck_assert_int_ne(access(f.absent, F_OK), 0);
    /* Attach refuses the link. */
    ck_assert_int_eq(dsm_impl_attach(inst, 0x51, &seg), -ELOOP);
    ck_assert_ptr_null(seg.address);
    ck_assert_int_eq(dsm_impl_attach(inst, 0x52, &seg), -ELOOP);
    check_victim(f.victim, "precious");
    /* Destroy and sweep remove the name -- the link -- never what it points to. */
    seg.handle = 0x51;
    seg.size = 0;
    seg.os_id = -1;
    ck_assert_int_eq(dsm_impl_destroy(inst, &seg), 0);
    ck_assert_int_ne(lstat(f.link1, &st), 0);
    check_victim(f.victim, "precious");
    ck_assert_int_eq(symlink(f.victim, f.link1), 0);
    ck_assert_int_eq(dsm__impl_sweep(inst, 0, 0, count_removed, &removed), 2);
    ck_assert_int_eq(removed, 2);
    ck_assert_int_ne(lstat(f.link1, &st), 0);
    ck_assert_int_ne(lstat(f.link2, &st), 0);
    check_victim(f.victim, "precious");
    ck_assert_int_ne(access(f.absent, F_OK), 0);
    dsm_impl_instance_close(inst);

    /* Start-up cleanup: our names go (as links), foreign names stay, targets stay. */
    {
        struct sv v;

        memset(&v, 0, sizeof(v));
        v.type = type;
        snprintf(v.dir, sizeof(v.dir), "%s", f.dir);
        snprintf(v.id, sizeof(v.id), "%s", id);
        ck_assert_msg(sv_restart(&v, NULL) == 0, "%s", dsm_errmsg());
        ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
        ck_assert_int_eq(symlink(f.victim, f.link1), 0);
        if (type == DSM_IMPL_MMAP)
            snprintf(f.other, sizeof(f.other), "%s/dynshm_mmap/notes.lnk", f.dir);
        else
            snprintf(f.other, sizeof(f.other), "/dev/shm/notes-%s.lnk", id);
        ck_assert_int_eq(symlink(f.victim, f.other), 0);
        ck_assert_msg(sv_restart(&v, NULL) == 0, "%s", dsm_errmsg());
        ck_assert_int_ne(lstat(f.link1, &st), 0);
        ck_assert_int_eq(lstat(f.other, &st), 0);
        check_victim(f.victim, "precious");
        ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
        check_victim(f.victim, "precious");
        ck_assert_int_eq(unlink(f.other), 0);
    }
    ck_assert_int_eq(tu_count_posix(id) + tu_count_mmap(f.dir), 0);
    tu_remove_datadir(f.dir);
}
END_TEST

/* ---- handles never issued ------------------------------------------------------------ */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rnd_state += 0x9e3779b97f4a7c15ULL;

    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

START_TEST(test_handles_never_issued)
{
    static const char *const opts[] = {"dsm_max_segments=16", NULL};
    struct sv v;
    dsm_segment *seg, *probe;
    dsm_handle live, h;
    uint32_t refs;
    int tries = 0;

    if (!sv_start(&v, _i, opts))
        return;
    ck_assert_int_eq(dsm_create(4096, 0, &seg), 0);
    ck_assert_int_eq(dsm_pin_segment(seg), 0);
    live = dsm_segment_handle(seg);
    refs = dsm__p.ctl.hdr->refs_used;
    for (int i = 0; i < 20000; i++) {
        switch (i % 4) {
        case 0: h = rnd(); break;                                    /* anything */
        case 1: h = (rnd() << 32) | (rnd() % 16); break;             /* a real slot index */
        case 2: h = live ^ (UINT64_C(1) << (i / 4 % 64)); break;     /* one bit off */
        default: h = (rnd() << 32) | (uint32_t)(0xfffffff0u + i % 16); break; /* past the end */
        }
        if (h == live || h == 0)
            continue;
        tries++;
        ck_assert_msg(dsm_attach(h, &probe) == -ENOENT, "handle %016llx: %s",
                      (unsigned long long)h, dsm_errmsg());
        ck_assert_ptr_null(probe);
        if (i % 50 == 0)
            ck_assert_int_eq(dsm_unpin_segment(h), -ENOENT);
    }
    ck_assert_int_gt(tries, 19000);
    ck_assert_int_eq(dsm_attach(0, &probe), -EINVAL);
    ck_assert_int_eq(dsm__p.ctl.hdr->refs_used, refs);
    ck_assert_int_eq(dsm__p.ctl.hdr->slots_used, 1);
    ck_assert_int_eq(dsm__p.ctl.slots[(uint32_t)live].refcnt, 2);
    ck_assert_int_eq(sv_objects(&v), 2);
    /* The raw layer too: a name nobody created is -ENOENT, never a mapping. */
    for (int i = 0; i < 2000; i++) {
        dsm_impl_segment s;

        h = rnd() | 1;
        if (h == live)
            continue;
        ck_assert_int_eq(dsm_impl_attach(dsm__p.inst, h, &s), -ENOENT);
        ck_assert_ptr_null(s.address);
    }
    ck_assert_int_eq(dsm_detach(seg), 0);
    ck_assert_int_eq(dsm_unpin_segment(live), 0);
    ck_assert_int_eq(sv_objects(&v), 1);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/* ---- settings text that is out to hurt ----------------------------------------------- */

static char *settings_snapshot(const dsm_settings *s)
{
    static char out[65536];
    dsm_setting_info info;
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; dsm_settings_describe(s, i, &info) == 0; i++) {
        char v[8200];

        ck_assert_int_eq(dsm_settings_show(s, info.name, v, sizeof(v)), 0);
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s=%s\n", info.name, v);
        ck_assert_uint_lt(len, sizeof(out));
    }
    return strdup(out);
}

START_TEST(test_settings_nasty)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        int rc;
        const char *needle;
    } cases[] = {
        {"\xef\xbb\xbf" "dsm_max_segments = 10\n", 0, -EINVAL, "expected a parameter name"},
        {"dsm_max_segments = 10\rdsm_max_processes = 5\r", 0, -EINVAL, "syntax error"},
        {"dsm_max_segments = '1\xc0\xaf'\n", 0, -EINVAL, "UTF-8"},
        {"dsm_max_segments = 1 # \xed\xa0\x80\n", 0, -EINVAL, "UTF-8"},
        {"dsm_max_segments = 1 # \xf4\x90\x80\x80\n", 0, -EINVAL, "UTF-8"},
        {"dsm_max_segments = '10\ndsm_max_processes = 5'\n", 0, -EINVAL, "unterminated"},
        {"dsm_max_segments = 10\0dsm_max_processes = 5\n", 44, -EINVAL, "NUL"},
        {"dsm_max_segments = 0x\n", 0, -EINVAL, "dsm_max_segments"},
        {"dsm_max_segments = 99999999999999999999999\n", 0, -EINVAL, "64-bit"},
        {"dsm_max_segments = -9223372036854775809\n", 0, -EINVAL, "64-bit"},
        {"include 'other.conf'\n", 0, -EINVAL, "unrecognized configuration parameter"},
        {"dsm_max_segments == 10\n", 0, -EINVAL, "syntax error"},
        {"= 10\n", 0, -EINVAL, "expected a parameter name"},
        {"dsm_max_segments\n", 0, -EINVAL, "missing value"},
        {"dynamic_shared_memory_type = 'posix' 'sysv'\n", 0, -EINVAL, "unexpected"},
        {"dynamic_shared_memory_type = po\x1bsix\n", 0, -EINVAL, "control character"},
        {"dsm_crash_policy = reset\n\n\n\n\x7f\n", 0, -EINVAL, "control character"},
        {"\n\n\n# only comments\n   \t\n", 0, 0, NULL},
    };
    dsm_settings *s;
    char *before, *after, *big;
    char *line;
    size_t n;

    ck_assert_int_eq(dsm_settings_new(&s), 0);
    before = settings_snapshot(s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        int rc = dsm_settings_load_buffer(s, cases[i].text, len, "nasty.conf");

        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d (%s)", i, rc, dsm_errmsg());
        if (cases[i].needle)
            ck_assert_msg(strstr(dsm_errmsg(), cases[i].needle) != NULL &&
                              strncmp(dsm_errmsg(), "nasty.conf:", 11) == 0,
                          "case %zu: message \"%s\" lacks \"%s\"", i, dsm_errmsg(),
                          cases[i].needle);
        after = settings_snapshot(s);
        ck_assert_str_eq(after, before);
        free(after);
    }

    /* Sizes: a line just over the cap (a comment, even), the whole text over its cap,
     * a megabyte of empty lines, a quoted value made of 8000 backslashes. */
    big = malloc((1 << 20) + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, '#', 8193);
    ck_assert_int_eq(dsm_settings_load_buffer(s, big, 8193, "x"), -EINVAL);
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "too long"));
    memset(big, '\n', (1 << 20) + 1);
    ck_assert_int_eq(dsm_settings_load_buffer(s, big, (1 << 20) + 1, "x"), -EFBIG);
    ck_assert_int_eq(dsm_settings_load_buffer(s, big, 1 << 20, "x"), 0);
    n = (size_t)sprintf(big, "dynamic_shared_memory_type = '");
    memset(big + n, '\\', 8000);
    n += 8000;
    n += (size_t)sprintf(big + n, "'\n");
    ck_assert_int_eq(dsm_settings_load_buffer(s, big, n, "x"), -EINVAL);
    after = settings_snapshot(s);
    ck_assert_str_eq(after, before);
    free(after);
    free(big);

    /* Files that are not config files: a directory, an endless device. */
    ck_assert_int_eq(dsm_settings_load_file(s, "/"), -EISDIR);
    ck_assert_int_eq(dsm_settings_load_file(s, "/dev/zero"), -EFBIG);
    /* A -c option of nothing but quotes and equals signs. */
    line = strdup("=''''=''=");
    ck_assert_int_eq(dsm_settings_parse_option(s, line), -EINVAL);
    free(line);
    after = settings_snapshot(s);
    ck_assert_str_eq(after, before);
    free(after);
    free(before);
    dsm_settings_free(s);
}
END_TEST

/* ---- control segments: truncated, other versions ------------------------------------ */

START_TEST(test_control_validation)
{
    static const char *const small[] = {"dsm_max_segments=4", "dsm_max_processes=2",
                                        "dsm_max_mappings=8", NULL};
    struct sv v;
    const struct dsm_control_header *live;
    struct dsm_control_header *h;
    uint64_t id = 0;
    dsm_handle handle;
    size_t size;
    void *copy;

    if (!sv_start(&v, DSM_IMPL_POSIX, small))
        return;
    live = dsm__p.ctl.hdr;
    size = (size_t)live->total_size;
    handle = dsm_control_handle();
    sscanf(v.id, "%16llx", (unsigned long long *)&id);
    ck_assert_int_eq(dsm__control_validate(live, size, id, handle), 0);

    /* Every truncation is refused, reading only the bytes it was given (each copy is
     * exactly n bytes on the heap, so ASan and valgrind see any read past them). */
    for (size_t n = 0; n < size; n++) {
        ck_assert_int_eq(posix_memalign(&copy, 64, n ? n : 1), 0);
        memcpy(copy, live, n);
        ck_assert_msg(dsm__control_validate(copy, n, id, handle) == DSM_ECORRUPT,
                      "%zu bytes accepted", n);
        free(copy);
    }
    ck_assert_int_eq(posix_memalign(&copy, 64, size), 0);
    h = copy;
#define RESET() memcpy(copy, live, size)
#define REJECT(code, needle)                                                               \
    do {                                                                                   \
        ck_assert_int_eq(dsm__control_validate(copy, size, id, handle), code);             \
        ck_assert_msg(strstr(dsm_errmsg(), needle) != NULL, "message: %s", dsm_errmsg());  \
    } while (0)
    /* Another layout version, even with a checksum that fits it. */
    RESET();
    h->version = DSM_CONTROL_VERSION + 1;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_ECORRUPT, "layout version");
    RESET();
    h->version = 0;
    REJECT(DSM_ECORRUPT, "layout version");
    /* Not ours: other magic, other instance, other handle. */
    RESET();
    h->magic ^= 1;
    REJECT(DSM_EFOREIGN, "magic");
    RESET();
    h->instance_id ^= 1;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_EFOREIGN, "belongs to instance");
    RESET();
    h->control_handle ^= UINT64_C(1) << 40;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_EFOREIGN, "records handle");
    /* Consistent checksum, impossible contents. */
    RESET();
    h->backend = 77;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_ECORRUPT, "unknown backend");
    RESET();
    h->nslots += 1000;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_ECORRUPT, "does not fit");
    RESET();
    h->nslots = 0;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_ECORRUPT, "does not fit");
    RESET();
    h->nrefs = UINT32_MAX;
    h->total_size = UINT64_MAX;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_ECORRUPT, "does not fit");
    RESET();
    h->total_size = size + 64;
    h->checksum = dsm__control_checksum(h);
    REJECT(DSM_ECORRUPT, "does not fit");
    /* The mutable part is not covered by the checksum; the immutable part is. */
    RESET();
    h->nprocs += 1;
    REJECT(DSM_ECORRUPT, "checksum");
#undef RESET
#undef REJECT
    free(copy);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

/*
 * A supervisor that dies (_exit: no clean-up) leaving two segments (one
 * pinned); then its control segment is damaged in a way the checksum does
 * not catch.  The next start-up must not believe it: System V segments,
 * which have no names to prove ownership by, stay for an operator; posix
 * and mmap names carrying the instance prefix are swept (they are ours by
 * name, whatever the table says).
 */
static struct sync old_rv;

static int child_old_supervisor(void *arg)
{
    struct sv *v = arg;
    dsm_segment *a, *b;

    if (start_plain(v->dir, v->type, NULL) != 0 || dsm_create(65536, 0, &a) != 0 ||
        dsm_create(65536, 0, &b) != 0 || dsm_pin_segment(a) != 0)
        return 10;
    sync_signal_parent(&old_rv, dsm_segment_handle(a));
    sync_signal_parent(&old_rv, dsm_segment_handle(b));
    return 0; /* _exit by run_child: nothing is cleaned up */
}

static void damaged_control(int type, int shrink)
{
    struct sv v;
    struct dsm_state_record rec;
    dsm_impl_instance *inst;
    dsm_impl_segment cseg;
    dsm_handle h[2];

    if (type == DSM_IMPL_MEMFD)
        return; /* a dead supervisor's memfd segments are gone with it: nothing to damage */
    if (!sv_start(&v, type, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    sync_init(&old_rv);
    expect_child_ok(run_child(child_old_supervisor, &v, 60), "old supervisor");
    h[0] = sync_wait_child(&old_rv);
    h[1] = sync_wait_child(&old_rv);
    ck_assert_int_eq(sv_objects(&v), 3);

    ck_assert_int_eq(dsm__state_read(v.dir, &rec), 0);
    ck_assert_int_eq(dsm_impl_instance_open(v.type, v.dir, &inst), 0);
    if (shrink) {
        char path[600];

        segment_path(inst, rec.control, path, sizeof(path));
        ck_assert_int_eq(truncate(path, 100), 0);
    } else {
        struct dsm_control_header *hdr;

        ck_assert_int_eq(dsm_impl_attach(inst, rec.control, &cseg), 0);
        hdr = cseg.address;
        hdr->version = 99;
        hdr->checksum = dsm__control_checksum(hdr);
        ck_assert_int_eq(dsm_impl_detach(inst, &cseg), 0);
    }
    log_capture_start();
    ck_assert_msg(sv_restart(&v, NULL) == 0, "%s", dsm_errmsg());
    ck_assert_int_eq(log_count("not trusting the previous control segment"), 1);
    ck_assert_int_eq(log_count(shrink ? "too small" : "layout version 99"), 1);
    if (v.type == DSM_IMPL_SYSV) {
        ck_assert_int_eq(sv_objects(&v), 4); /* nothing destroyed on its word */
        for (int i = 0; i < 2; i++) {
            dsm_impl_segment s = {.handle = h[i], .os_id = -1};

            ck_assert_int_eq(dsm_impl_destroy(inst, &s), 0);
        }
        cseg.handle = rec.control;
        cseg.size = rec.size;
        cseg.os_id = rec.os_id;
        ck_assert_int_eq(dsm_impl_destroy(inst, &cseg), 0);
    }
    ck_assert_int_eq(sv_objects(&v), 1);
    dsm_impl_instance_close(inst);
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    ck_assert_int_eq(sv_objects(&v), 0);
}

START_TEST(test_control_version_mismatch)
{
    damaged_control(_i, 0);
}
END_TEST

START_TEST(test_control_truncated)
{
    if (_i != DSM_IMPL_SYSV) /* a System V segment cannot shrink */
        damaged_control(_i, 1);
}
END_TEST

/* ---- the state file: a FIFO, another user's file ------------------------------------ */

static int child_start_on_fifo(void *arg)
{
    struct sv *v = arg;

    log_capture_start();
    if (start_plain(v->dir, v->type, NULL) != 0)
        return 10;
    if (log_count("not trusting the state file") != 1 || log_count("not a regular file") != 1)
        return 11;
    return dsm_supervisor_shutdown() == 0 ? 0 : 12;
}

START_TEST(test_state_file_fifo_and_foreign_owner)
{
    struct sv v;
    char path[600];
    struct stat st;

    if (!sv_start(&v, DSM_IMPL_POSIX, NULL))
        return;
    ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    snprintf(path, sizeof(path), "%s/" DSM_STATE_FILE, v.dir);
    /* A FIFO would block a plain open until someone wrote to it: start-up must not hang. */
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    expect_child_ok(run_child(child_start_on_fifo, &v, 20), "start-up with a FIFO state file");
    ck_assert_int_ne(lstat(path, &st), 0); /* removed by start-up; it named nothing */

    /* A well-formed state file owned by someone else is not believed. */
    if (geteuid() == 0) {
        struct dsm_state_record rec = {.backend = DSM_IMPL_POSIX, .control = 0x99,
                                       .os_id = -1, .size = 4096, .pid = 1};
        char text[1024];
        int n, fd;

        sscanf(v.id, "%16llx", (unsigned long long *)&rec.instance_id);
        n = dsm__state_format(&rec, text, sizeof(text));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, (size_t)n), n);
        ck_assert_int_eq(fchown(fd, 65534, 65534), 0);
        close(fd);
        ck_assert_int_eq(dsm__state_read(v.dir, &rec), DSM_EFOREIGN);
        log_capture_start();
        ck_assert_int_eq(sv_restart(&v, NULL), 0);
        ck_assert_int_eq(log_count("not trusting the state file"), 1);
        ck_assert_int_eq(dsm_supervisor_shutdown(), 0);
    }
    ck_assert_int_eq(sv_objects(&v), 0);
}
END_TEST

Suite *suite_hostile(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc;

    suite_add_tcase(s, tcase_exhaustion());

    tc = tcase_create("hostile_input");
    tcase_set_timeout(tc, 120);
    LOOP(tc, test_injected_collisions);
    LOOP(tc, test_real_squatters);
    LOOP(tc, test_symlink_squatters);
    LOOP(tc, test_handles_never_issued);
    tcase_add_test(tc, test_settings_nasty);
    tcase_add_test(tc, test_control_validation);
    LOOP(tc, test_control_version_mismatch);
    LOOP(tc, test_control_truncated);
    tcase_add_test(tc, test_state_file_fifo_and_foreign_owner);
    suite_add_tcase(s, tc);

    suite_add_tcase(s, tcase_security());
    return s;
}
