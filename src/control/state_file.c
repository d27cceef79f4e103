/* SPDX-License-Identifier: MIT */
/*
 * state_file.c - reading and writing <datadir>/dynshm.state.
 *
 * A small text file ("key value" lines and a checksum line) so an operator
 * can read it and a damaged one is detected rather than believed.  It is
 * written through a temporary file and rename(), so a crash leaves either
 * the old file or the new one, never half of one.  Its contents are only a
 * pointer: the control segment it names is validated on its own before
 * anything listed there is destroyed.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/internal.h"
#include "control.h"
#include "state_file.h"

int dsm__state_format(const struct dsm_state_record *r, char *buf, size_t len)
{
    const char *backend = dsm_impl_type_name(r->backend);
    int n, m;

    n = snprintf(buf, len,
                 "# dynshm state file: the control segment of the supervisor running on this\n"
                 "# data directory.  Written by dynshm; do not edit.\n"
                 "version %d\n"
                 "instance %016" PRIx64 "\n"
                 "backend %s\n"
                 "control %016" PRIx64 "\n"
                 "os_id %" PRId64 "\n"
                 "size %" PRIu64 "\n"
                 "pid %d\n",
                 DSM_STATE_VERSION, r->instance_id, backend ? backend : "?", r->control,
                 r->os_id, r->size, (int)r->pid);
    if (n < 0 || (size_t)n >= len)
        return dsm__error(-ERANGE, "state file buffer too small");
    m = snprintf(buf + n, len - (size_t)n, "checksum %016" PRIx64 "\n", dsm__fnv1a64(buf, (size_t)n));
    if (m < 0 || (size_t)n + (size_t)m >= len)
        return dsm__error(-ERANGE, "state file buffer too small");
    return n + m;
}

/* Parse an unsigned or signed decimal / hex number that fills [p, end). */
static int parse_num(const char *p, const char *end, int base, int is_signed, int64_t *out)
{
    char tmp[32];
    char *e;
    size_t n = (size_t)(end - p);

    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (!is_signed && tmp[0] == '-')
        return -1;
    errno = 0;
    *out = is_signed ? (int64_t)strtoll(tmp, &e, base) : (int64_t)strtoull(tmp, &e, base);
    if (errno != 0 || *e != '\0' || e == tmp)
        return -1;
    return 0;
}

int dsm__state_parse(const char *text, size_t len, struct dsm_state_record *r)
{
    enum { K_VERSION, K_INSTANCE, K_BACKEND, K_CONTROL, K_OSID, K_SIZE, K_PID, K_N };
    static const char *const keys[K_N] = {"version", "instance", "backend", "control",
                                          "os_id",   "size",     "pid"};
    int seen[K_N] = {0};
    size_t pos = 0, lineno = 0;
    struct dsm_state_record rec = {0};

    if (len > DSM_STATE_MAX_SIZE)
        return dsm__error(DSM_ECORRUPT, "state file is too large (%zu bytes)", len);
    while (pos < len) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos), *sp, *val;
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        int64_t v;
        int k;

        lineno++;
        pos += ll + (nl ? 1 : 0);
        if (nl == NULL)
            return dsm__error(DSM_ECORRUPT, "state file line %zu is not terminated", lineno);
        if (ll == 0 || line[0] == '#')
            continue;
        sp = memchr(line, ' ', ll);
        if (sp == NULL)
            return dsm__error(DSM_ECORRUPT, "state file line %zu has no value", lineno);
        val = sp + 1;
        if ((size_t)(sp - line) == 8 && memcmp(line, "checksum", 8) == 0) {
            if (parse_num(val, line + ll, 16, 0, &v) < 0 ||
                (uint64_t)v != dsm__fnv1a64(text, (size_t)(line - text)))
                return dsm__error(DSM_ECORRUPT, "state file checksum does not match");
            if (pos != len)
                return dsm__error(DSM_ECORRUPT, "state file has data after its checksum");
            for (k = 0; k < K_N; k++)
                if (!seen[k])
                    return dsm__error(DSM_ECORRUPT, "state file lacks \"%s\"", keys[k]);
            *r = rec;
            return 0;
        }
        for (k = 0; k < K_N; k++)
            if ((size_t)(sp - line) == strlen(keys[k]) && memcmp(line, keys[k], strlen(keys[k])) == 0)
                break;
        if (k == K_N || seen[k]++)
            return dsm__error(DSM_ECORRUPT, "state file line %zu: unknown or repeated key",
                              lineno);
        if (k == K_BACKEND) {
            char name[16];
            size_t vl = (size_t)(line + ll - val);
            dsm_impl_type t = DSM_IMPL_NONE;
            int i;

            if (vl >= sizeof(name))
                return dsm__error(DSM_ECORRUPT, "state file line %zu: bad backend", lineno);
            memcpy(name, val, vl);
            name[vl] = '\0';
            for (i = 0; i < DSM_IMPL_NTYPES; i++)
                if (strcmp(name, dsm_impl_type_name((dsm_impl_type)i)) == 0)
                    t = (dsm_impl_type)i;
            if (strcmp(name, dsm_impl_type_name(t)) != 0)
                return dsm__error(DSM_ECORRUPT, "state file line %zu: unknown backend", lineno);
            rec.backend = t;
            continue;
        }
        if (parse_num(val, line + ll, k == K_INSTANCE || k == K_CONTROL ? 16 : 10,
                      k == K_OSID, &v) < 0)
            return dsm__error(DSM_ECORRUPT, "state file line %zu: bad number", lineno);
        switch (k) {
        case K_VERSION:
            if (v != DSM_STATE_VERSION)
                return dsm__error(DSM_ECORRUPT, "state file has version %lld; expected %d",
                                  (long long)v, DSM_STATE_VERSION);
            break;
        case K_INSTANCE: rec.instance_id = (uint64_t)v; break;
        case K_CONTROL: rec.control = (uint64_t)v; break;
        case K_OSID: rec.os_id = v; break;
        case K_SIZE: rec.size = (uint64_t)v; break;
        case K_PID:
            if (v <= 0 || v > INT32_MAX)
                return dsm__error(DSM_ECORRUPT, "state file line %zu: bad pid", lineno);
            rec.pid = (pid_t)v;
            break;
        }
    }
    return dsm__error(DSM_ECORRUPT, "state file has no checksum line");
}

static int state_path(const char *datadir, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", datadir, name);

    if (n < 0 || (size_t)n >= len)
        return dsm__error(-ENAMETOOLONG, "data directory path is too long");
    return 0;
}

/* A kill point before a call whose result is used in an expression. */
#define dsm__step_then(call) (DSM_CTL_STEP_EXPR(), (call))

int dsm__state_write(const char *datadir, const struct dsm_state_record *r)
{
    char path[4096], tmp[4096], text[DSM_STATE_MAX_SIZE];
    int fd, n, rc, dfd;

    if ((rc = state_path(datadir, DSM_STATE_FILE, path, sizeof(path))) < 0 ||
        (rc = state_path(datadir, DSM_STATE_FILE ".tmp", tmp, sizeof(tmp))) < 0)
        return rc;
    if ((n = dsm__state_format(r, text, sizeof(text))) < 0)
        return n;
    unlink(tmp); /* a leftover from a crash mid-write */
    DSM_CTL_STEP(); /* kill points for the lifecycle tests: one per system call */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return dsm__error(-errno, "could not create file \"%s\": %m", tmp);
    DSM_CTL_STEP();
    if (write(fd, text, (size_t)n) != n || dsm__step_then(fsync(fd)) != 0) {
        int e = errno ? errno : EIO;

        close(fd);
        unlink(tmp);
        return dsm__error(-e, "could not write file \"%s\": %m", tmp);
    }
    close(fd);
    DSM_CTL_STEP();
    if (rename(tmp, path) != 0) {
        int e = errno;

        unlink(tmp);
        return dsm__error(-e, "could not rename \"%s\" to \"%s\": %m", tmp, path);
    }
    /* Make the rename itself durable. */
    DSM_CTL_STEP();
    dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int dsm__state_read(const char *datadir, struct dsm_state_record *r)
{
    char path[4096], text[DSM_STATE_MAX_SIZE + 1];
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd, rc;

    if ((rc = state_path(datadir, DSM_STATE_FILE, path, sizeof(path))) < 0)
        return rc;
    /*
     * O_NONBLOCK: a FIFO put where the state file belongs would otherwise
     * block this open (and so start-up) until someone writes to it; the
     * check below then refuses anything that is not a regular file.  It
     * changes nothing for reading a regular file.
     */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return dsm__error(-errno, "could not open file \"%s\": %m", path);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(fd);
        return dsm__error(DSM_EFOREIGN, "state file \"%s\" is not a regular file owned by this "
                                        "user", path);
    }
    while (got < sizeof(text) && (n = read(fd, text + got, sizeof(text) - got)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = errno;
            close(fd);
            return dsm__error(-rc, "could not read file \"%s\": %m", path);
        }
        got += (size_t)n;
    }
    close(fd);
    rc = dsm__state_parse(text, got, r);
    if (rc < 0) {
        return dsm__error_prefix(rc, "invalid state file \"%s\": ", path);
    }
    return 0;
}

int dsm__state_remove(const char *datadir)
{
    char path[4096];
    int rc;

    if ((rc = state_path(datadir, DSM_STATE_FILE, path, sizeof(path))) < 0)
        return rc;
    DSM_CTL_STEP();
    if (unlink(path) != 0)
        return dsm__error(-errno, "could not remove file \"%s\": %m", path);
    return 0;
}
