/* SPDX-License-Identifier: MIT */
/*
 * scan.c - host-wide discovery (dsm_scan_host(), dynshm/inspect.h): every
 * dynshm object on the machine, and for each control segment the data
 * directory it records.
 *
 * Why here and not in dsmctl: only the library knows how objects are
 * named and what a control segment looks like; a tool that parsed either
 * would break at the next layout.  Why it reports facts and decides
 * nothing: whether an object is a live instance's, a dead one's leftover
 * or an orphan takes the data directory lock (dsm_inspect_open()), and the
 * caller decides what to do about each; this file only lists.
 *
 * What it can see.  posix objects are files in /dev/shm and mmap segments
 * files in DIR/dynshm_mmap (for the data directories the caller names):
 * both carry "dynshm.<instance>.<handle>", so their instance is in the
 * name.  System V segments have only a key, derived from the instance and
 * the handle by a hash: a scan tells a System V *control* segment by its
 * contents (attached read-only for the length of a copy of its header) and
 * must leave every other System V segment to be matched against the
 * segments an inspected instance lists.
 *
 * Nothing is created, written, locked or removed; the only side effects
 * are a read-only attach of the caller's own System V segments and file
 * opens with O_RDONLY | O_NOFOLLOW.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dynshm/inspect.h>

#include "../control/control.h"
#include "dsm_int.h"

#define POSIX_DIR "/dev/shm"
#define SYSV_TABLE "/proc/sysvipc/shm"

/* Parse 16 lowercase hex digits (the way names are written). */
static bool hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < 16; i++) {
        char c = s[i];

        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *out = v;
    return true;
}

/* "dynshm.<16 hex>.<16 hex>" exactly. */
static bool parse_name(const char *name, uint64_t *id, dsm_handle *handle)
{
    size_t p = sizeof(DSM_IMPL_NAME_PREFIX) - 1;

    return strlen(name) == DSM_IMPL_OBJECT_NAME_SIZE - 1 &&
           strncmp(name, DSM_IMPL_NAME_PREFIX, p) == 0 && hex16(name + p, id) &&
           name[p + 16] == '.' && hex16(name + p + 17, handle);
}

/*
 * Is h the header of a control segment of this layout, of an object of
 * objsize bytes (and, when want_id is set, named for id and handle)?  The
 * same checks as dsm__control_validate() on the header alone.
 */
static bool is_control(const struct dsm_control_header *h, uint64_t objsize, bool want_id,
                       uint64_t id, dsm_handle handle)
{
    return h->magic == DSM_CONTROL_MAGIC && h->version == DSM_CONTROL_VERSION &&
           h->checksum == dsm__control_checksum(h) && h->total_size <= objsize &&
           memchr(h->datadir, '\0', sizeof(h->datadir)) != NULL &&
           (!want_id || (h->instance_id == id && h->control_handle == handle));
}

struct scan {
    dsm_scan_report report;
    void *arg;
    int count;
};

static void emit(struct scan *sc, dsm_host_object *o, const struct dsm_control_header *h)
{
    if (h != NULL) {
        o->control = true;
        o->datadir = h->datadir;
        snprintf(o->instance, sizeof(o->instance), "%016llx", (unsigned long long)h->instance_id);
    }
    sc->count++;
    if (sc->report)
        sc->report(o, sc->arg);
}

/* Every "dynshm.*" file of one directory (dir: for the names reported). */
static void scan_dir(struct scan *sc, const char *dir, dsm_impl_type backend)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    struct dirent *e;

    if (dfd < 0)
        return; /* no such directory: nothing of that kind */
    d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096 + DSM_IMPL_OBJECT_NAME_SIZE + 2];
        struct dsm_control_header h;
        dsm_host_object o;
        struct stat st;
        uint64_t id;
        dsm_handle handle;
        bool control = false;
        int fd;

        if (!parse_name(e->d_name, &id, &handle) ||
            fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        memset(&o, 0, sizeof(o));
        o.backend = backend;
        /* posix names are what shm_open() takes; mmap names are paths. */
        snprintf(path, sizeof(path), "%s/%s", backend == DSM_IMPL_POSIX ? "" : dir, e->d_name);
        o.name = path;
        snprintf(o.instance, sizeof(o.instance), "%016llx", (unsigned long long)id);
        o.handle = handle;
        o.size = (uint64_t)st.st_size;
        o.uid = st.st_uid;
        o.os_id = -1;
        o.datadir = "";
        o.attached = -1;
        /* The magic and version sit in the first bytes in every layout. */
        if (o.size >= offsetof(struct dsm_control_header, backend) &&
            (fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) >= 0) {
            ssize_t got = pread(fd, &h, sizeof(h), 0);

            if (got >= (ssize_t)offsetof(struct dsm_control_header, backend) &&
                h.magic == DSM_CONTROL_MAGIC)
                o.layout_version = h.version;
            control = got == (ssize_t)sizeof(h) && is_control(&h, o.size, true, id, handle);
            close(fd);
        }
        emit(sc, &o, control ? &h : NULL);
    }
    closedir(d);
}

/* The caller's System V segments, each looked at for a control header. */
static void scan_sysv(struct scan *sc)
{
    FILE *f = fopen(SYSV_TABLE, "re");
    char line[512];
    uid_t me = geteuid();

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        long long key, shmid, size, cpid, lpid, nattch, uid;
        unsigned perms;
        struct dsm_control_header h;
        char name[32];
        dsm_host_object o;
        bool control = false;

        /* key shmid perms size cpid lpid nattch uid ... (the title line fails to parse) */
        if (sscanf(line, "%lld %lld %o %lld %lld %lld %lld %lld", &key, &shmid, &perms, &size,
                   &cpid, &lpid, &nattch, &uid) != 8)
            continue;
        if ((uid_t)uid != me || key == 0 /* IPC_PRIVATE: never ours */)
            continue;
        memset(&o, 0, sizeof(o));
        o.backend = DSM_IMPL_SYSV;
        snprintf(name, sizeof(name), "key 0x%08x", (unsigned)key);
        o.name = name;
        o.size = (uint64_t)size;
        o.uid = (uid_t)uid;
        o.os_id = shmid;
        o.creator_pid = (pid_t)cpid;
        o.datadir = "";
        o.attached = nattch;
        if (o.size >= sizeof(h)) {
            void *a = shmat((int)shmid, NULL, SHM_RDONLY);

            if (a != (void *)-1) {
                memcpy(&h, a, sizeof(h));
                shmdt(a);
                if (h.magic == DSM_CONTROL_MAGIC)
                    o.layout_version = h.version;
                control = is_control(&h, o.size, false, 0, 0);
                if (control)
                    o.handle = h.control_handle;
            }
        }
        emit(sc, &o, control ? &h : NULL);
    }
    fclose(f);
}

int dsm_scan_host(const char *const *datadirs, size_t ndatadirs, dsm_scan_report report,
                  void *arg)
{
    struct scan sc = {.report = report, .arg = arg};

    if (ndatadirs > 0 && datadirs == NULL)
        return dsm__error(-EINVAL, "no data directories given");
    scan_dir(&sc, POSIX_DIR, DSM_IMPL_POSIX);
    scan_sysv(&sc);
    for (size_t i = 0; i < ndatadirs; i++) {
        char dir[4096];
        int n = snprintf(dir, sizeof(dir), "%s/" DSM_IMPL_MMAP_DIR, datadirs[i]);

        if (n < 0 || (size_t)n >= sizeof(dir))
            return dsm__error(-ENAMETOOLONG, "data directory path too long: \"%s\"", datadirs[i]);
        scan_dir(&sc, dir, DSM_IMPL_MMAP);
    }
    return sc.count;
}
