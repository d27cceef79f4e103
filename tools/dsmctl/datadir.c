/*
 * datadir.c - the data directory as dsmctl meets it: is it one, may we
 * read it, and is anybody alive in it.
 *
 * Liveness is the data directory lock and nothing else.  The supervisor
 * holds an exclusive flock on DIR/dynshm.lock for its whole life and its
 * forked workers inherit it, so "the lock can be taken" proves that no
 * process of the instance that could still use its segments remains -- a
 * proof no pid can give (pids are reused, and a supervisor killed with
 * its workers still running leaves a dead pid but a live instance).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsmctl.h"

static int path_of(char *buf, size_t len, const char *datadir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", datadir, name);

    if (n < 0 || (size_t)n >= len) {
        dsmctl_error("data directory path \"%s\" is too long", datadir);
        return -1;
    }
    return 0;
}

/* 1 if datadir/name exists, 0 if not, -1 (message printed) if we cannot tell. */
static int exists_in(const char *datadir, int dfd, const char *name)
{
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    dsmctl_error("could not access \"%s/%s\": %s", datadir, name, strerror(errno));
    return -1;
}

int dsmctl_check_datadir(const char *datadir)
{
    struct stat st;
    int dfd, state, lock;

    if (stat(datadir, &st) != 0) {
        if (errno == ENOENT)
            dsmctl_error("data directory \"%s\" does not exist", datadir);
        else
            dsmctl_error("could not access data directory \"%s\": %s", datadir,
                         strerror(errno));
        return DSMCTL_EXIT_FAIL;
    }
    if (!S_ISDIR(st.st_mode)) {
        dsmctl_error("\"%s\" is not a directory", datadir);
        return DSMCTL_EXIT_FAIL;
    }
    dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        dsmctl_error("could not open data directory \"%s\": %s", datadir, strerror(errno));
        return DSMCTL_EXIT_FAIL;
    }
    state = exists_in(datadir, dfd, "dynshm.state");
    lock = state < 0 ? -1 : exists_in(datadir, dfd, DSMCTL_LOCK_FILE);
    close(dfd);
    if (state < 0 || lock < 0)
        return DSMCTL_EXIT_FAIL;
    if (state == 0 && lock == 0) {
        dsmctl_error("\"%s\" is not a dynshm data directory: it has no dynshm.state and no "
                     DSMCTL_LOCK_FILE " (no supervisor ever ran there)", datadir);
        return DSMCTL_EXIT_FAIL;
    }
    return 0;
}

static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

int dsmctl_lock_probe(const char *datadir, struct dsmctl_lock_state *ls)
{
    char path[4096];
    int fd;

    memset(ls, 0, sizeof(*ls));
    if (path_of(path, sizeof(path), datadir, DSMCTL_LOCK_FILE) < 0)
        return DSMCTL_EXIT_FAIL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
    if (fd < 0) {
        if (errno == ENOENT)
            return 0; /* no supervisor can run without creating it */
        dsmctl_error("could not open lock file \"%s\": %s", path, strerror(errno));
        return DSMCTL_EXIT_FAIL;
    }
    ls->lock_file = true;
    ls->pid = read_pid(fd);
    /* Shared, so that two dsmctl runs never see each other as a supervisor. */
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
    } else if (errno == EWOULDBLOCK) {
        ls->held = true;
    } else {
        dsmctl_error("could not lock \"%s\": %s", path, strerror(errno));
        close(fd);
        return DSMCTL_EXIT_FAIL;
    }
    close(fd);
    return 0;
}

int dsmctl_lock_exclusive(const char *datadir, int *fdp, struct dsmctl_lock_state *ls)
{
    char path[4096];
    int fd;

    memset(ls, 0, sizeof(*ls));
    *fdp = -1;
    if (path_of(path, sizeof(path), datadir, DSMCTL_LOCK_FILE) < 0)
        return DSMCTL_EXIT_FAIL;
    /* Created if missing, as the supervisor would, so none can start while we work. */
    fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0) {
        dsmctl_error("could not open lock file \"%s\": %s", path, strerror(errno));
        return DSMCTL_EXIT_FAIL;
    }
    ls->lock_file = true;
    ls->pid = read_pid(fd);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;

        close(fd);
        if (e == EWOULDBLOCK) {
            ls->held = true;
            return DSMCTL_EXIT_RUNNING;
        }
        dsmctl_error("could not lock \"%s\": %s", path, strerror(e));
        return DSMCTL_EXIT_FAIL;
    }
    *fdp = fd;
    return 0;
}

int dsmctl_open(const char *datadir, struct dsm_inspect_target *t)
{
    if (dsm__inspect_open(datadir, t) < 0) {
        dsmctl_error("%s", dsm_errmsg());
        dsm__inspect_close(t);
        return DSMCTL_EXIT_FAIL;
    }
    /* No permission is an error of the directory, not a sign of a damaged instance. */
    if (t->state_rc == -EACCES || t->state_rc == -EPERM) {
        dsmctl_error("%s", t->msg);
        dsm__inspect_close(t);
        return DSMCTL_EXIT_FAIL;
    }
    return 0;
}

static void lock_timeout(int sig)
{
    static const char msg[] = "dsmctl: timed out waiting for the control segment lock; a process "
                              "of the instance holds it and does not let go\n";

    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
    }
    _exit(DSMCTL_EXIT_FAIL);
}

int dsmctl_snapshot(struct dsm_inspect_target *t, struct dsm_inspect *snap)
{
    struct sigaction sa, old;
    int rc;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = lock_timeout;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    alarm(DSMCTL_LOCK_TIMEOUT);
    rc = dsm__inspect_snapshot(&t->ctl, snap);
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    return rc;
}

int dsmctl_inspect_begin(const char *datadir, struct dsmctl_lock_state *ls,
                         struct dsm_inspect_target *t)
{
    int rc;

    if ((rc = dsmctl_check_datadir(datadir)) != 0)
        return rc;
    if ((rc = dsmctl_lock_probe(datadir, ls)) != 0)
        return rc;
    return dsmctl_open(datadir, t);
}
