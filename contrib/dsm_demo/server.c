/* SPDX-License-Identifier: MIT */
/*
 * server.c - the dsm_demo supervisor: settings, start-up (and --daemon),
 * and the order of things from dsm_supervisor_start() to exit.
 *
 * This is the process model dynshm is for, in miniature: a supervisor
 * that owns the data directory and the control segment, and forks one
 * worker per client session.  It does what the library asks of a
 * supervisor, and nothing else with shared memory itself:
 *   - dsm_supervisor_start() before any worker exists (it locks the data
 *     directory and removes what a killed predecessor left behind);
 *   - dsm_supervisor_worker_exited() for every worker it reaps, and, when
 *     that asks for a crash reset, stop every other worker, wait for them
 *     and call dsm_supervisor_reset() -- as PostgreSQL's postmaster does;
 *   - dsm_supervisor_shutdown() when told to stop.
 *
 * The loop itself is in supervise.c.  The supervisor also holds the write
 * end of a pipe whose read end every worker watches: when the supervisor
 * dies, even by SIGKILL, its workers see the pipe hang up and end their
 * sessions instead of serving on with nobody to clean up after them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol.h"
#include "server.h"

/* ---- settings ------------------------------------------------------------- */

static const char *const log_level_names[] = {"debug", "info", "warning", "error", NULL};

int demo_define_settings(dsm_settings *s)
{
    int rc;

    if ((rc = dsm_settings_define_int(s, "max_connections", 32, 1, 10000, DSM_UNIT_NONE,
                                      "how many client sessions (one worker process each) "
                                      "may be open at once")) < 0 ||
        (rc = dsm_settings_define_int(s, "max_payload_size", (int64_t)256 << 20, 0,
                                      (int64_t)DEMO_MAX_FRAME, DSM_UNIT_BYTES,
                                      "the largest text one create may store")) < 0 ||
        (rc = dsm_settings_define_int(s, "shutdown_timeout", 10000, 0, 3600000, DSM_UNIT_MS,
                                      "how long workers get to end their sessions at "
                                      "shut-down before they are killed")) < 0 ||
        (rc = dsm_settings_define_bool(s, "log_connections", false,
                                       "log every session's start and end")) < 0 ||
        (rc = dsm_settings_define_enum(s, "log_min_messages", log_level_names, "info",
                                       "the least severe messages that are logged")) < 0)
        return rc;
    return 0;
}

/* ---- start-up ------------------------------------------------------------- */

/* Report a start-up failure to the log and, for --daemon, to the waiting parent. */
static void startup_failed(struct server *srv, const char *message)
{
    demo_log(DEMO_LOG_FATAL, "%s", message);
    if (srv->notify_fd >= 0) {
        char buf[2048];
        int n = snprintf(buf, sizeof(buf), "error %s", message);

        if (n > 0 && write(srv->notify_fd, buf, (size_t)n < sizeof(buf) ? (size_t)n
                                                                           : sizeof(buf) - 1) < 0) {
        }
        close(srv->notify_fd);
        srv->notify_fd = -1;
    }
}

/*
 * --daemon: the parent waits until the server is accepting connections (or
 * has failed to start) and exits with a status that says which, so that
 * scripts can start a server and use it on the next line.
 * Returns 0 in the daemon; the parent never returns.
 */
static int daemonize(struct server *srv)
{
    char log_path[PATH_MAX], buf[2048];
    int p[2], log_fd, null_fd;
    size_t got = 0;
    pid_t pid;

    if (demo_path(log_path, sizeof(log_path), srv->datadir, DEMO_LOG_NAME) < 0) {
        fprintf(stderr, "dsm_demo: data directory path \"%s\" is too long\n", srv->datadir);
        return -ENAMETOOLONG;
    }
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (log_fd < 0) {
        fprintf(stderr, "dsm_demo: could not open log file \"%s\": %s\n", log_path,
                strerror(errno));
        return -errno;
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "dsm_demo: could not prepare to detach: %s\n", strerror(errno));
        if (null_fd >= 0)
            close(null_fd);
        close(log_fd);
        return -EIO;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "dsm_demo: could not fork: %s\n", strerror(errno));
        close(p[0]);
        close(p[1]);
        close(null_fd);
        close(log_fd);
        return -EIO;
    }
    if (pid > 0) {
        ssize_t n;

        close(p[1]);
        close(null_fd);
        close(log_fd);
        while (got < sizeof(buf) - 1 &&
               ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0 ||
                (n < 0 && errno == EINTR)))
            if (n > 0)
                got += (size_t)n;
        close(p[0]);
        buf[got] = '\0';
        if (strncmp(buf, "ready ", 6) == 0) {
            printf("dsm_demo: server started (pid %s), logging to %s\n", buf + 6, log_path);
            exit(0);
        }
        if (strncmp(buf, "error ", 6) == 0)
            fprintf(stderr, "dsm_demo: %s\n", buf + 6);
        else
            fprintf(stderr, "dsm_demo: the server exited during start-up; see %s\n", log_path);
        exit(1);
    }
    close(p[0]);
    srv->notify_fd = p[1];
    setsid(); /* no controlling terminal: its hang-up or ^C must not reach us */
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0) {
        startup_failed(srv, "could not redirect standard streams to the log file");
        close(null_fd);
        close(log_fd);
        return -EIO;
    }
    close(null_fd);
    close(log_fd);
    if (chdir("/") != 0) {
        /* harmless: the data directory path is absolute */
    }
    return 0;
}

static int open_socket(struct server *srv, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    /* We hold the data directory lock now, so a socket file here was left by a
     * server that is gone, and nobody else may be listening on it. */
    if (unlink(srv->sock_path) == 0)
        demo_log(DSM_LOG_INFO, "removed stale socket file \"%s\"", srv->sock_path);
    else if (errno != ENOENT) {
        snprintf(err, errlen, "could not remove stale socket file \"%s\": %s", srv->sock_path,
                 strerror(errno));
        return -1;
    }
    memcpy(sa.sun_path, srv->sock_path, strlen(srv->sock_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "could not create Unix socket: %s", strerror(errno));
        return -1;
    }
    /* umask(077) already makes it owner-only; chmod says so explicitly. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(srv->sock_path, 0600) != 0 ||
        listen(fd, 64) != 0) {
        snprintf(err, errlen, "could not listen on Unix socket \"%s\": %s", srv->sock_path,
                 strerror(errno));
        close(fd);
        unlink(srv->sock_path);
        return -1;
    }
    return fd;
}

static void write_pid_file(struct server *srv)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    int fd = open(srv->pid_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0 || write(fd, buf, (size_t)n) != n)
        demo_log(DSM_LOG_WARNING, "could not write pid file \"%s\": %s", srv->pid_path,
                 strerror(errno));
    if (fd >= 0)
        close(fd);
}

static int read_settings(struct server *srv, const dsm_settings *s, dsm_log_level *level)
{
    int64_t maxconn, payload, dsm_procs;
    int lvl;
    bool logconn;

    if (dsm_settings_get_int(s, "max_connections", &maxconn) < 0 ||
        dsm_settings_get_int(s, "max_payload_size", &payload) < 0 ||
        dsm_settings_get_int(s, "shutdown_timeout", &srv->shutdown_timeout_ms) < 0 ||
        dsm_settings_get_bool(s, "log_connections", &logconn) < 0 ||
        dsm_settings_get_enum(s, "log_min_messages", &lvl) < 0 ||
        dsm_settings_get_int(s, "dsm_max_processes", &dsm_procs) < 0) {
        fprintf(stderr, "dsm_demo: %s\n", dsm_errmsg());
        return -1;
    }
    if (maxconn >= dsm_procs) {
        fprintf(stderr, "dsm_demo: max_connections (%lld) must be less than dsm_max_processes "
                        "(%lld): every worker and the supervisor need a process slot\n",
                (long long)maxconn, (long long)dsm_procs);
        return -1;
    }
    srv->max_workers = (int)maxconn;
    srv->max_payload = (size_t)payload;
    srv->log_connections = logconn;
    *level = (dsm_log_level)lvl; /* the choices are listed in dsm_log_level order */
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int demo_server_main(const char *datadir, dsm_settings *settings, bool daemon_mode)
{
    struct server srv = {.listen_fd = -1, .alive_r = -1, .alive_w = -1, .notify_fd = -1};
    dsm_log_level level;
    char err[1024];
    int alive[2] = {-1, -1};
    int status = 1, stop;

    if (read_settings(&srv, settings, &level) < 0)
        return 1;
    if (mkdir(datadir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "dsm_demo: could not create data directory \"%s\": %s\n", datadir,
                strerror(errno));
        return 1;
    }
    /* Absolute, because a daemon leaves its working directory. */
    if (realpath(datadir, srv.datadir) == NULL) {
        fprintf(stderr, "dsm_demo: could not resolve data directory \"%s\": %s\n", datadir,
                strerror(errno));
        return 1;
    }
    if (demo_path(srv.sock_path, sizeof(srv.sock_path), srv.datadir, DEMO_SOCKET_NAME) < 0 ||
        demo_path(srv.pid_path, sizeof(srv.pid_path), srv.datadir, DEMO_PID_NAME) < 0) {
        fprintf(stderr, "dsm_demo: data directory path \"%s\" is too long for a Unix socket "
                        "(at most %zu bytes with \"/" DEMO_SOCKET_NAME "\")\n",
                srv.datadir, sizeof(srv.sock_path) - 1);
        return 1;
    }
    srv.workers = calloc((size_t)srv.max_workers, sizeof(pid_t));
    if (srv.workers == NULL) {
        fprintf(stderr, "dsm_demo: out of memory\n");
        return 1;
    }
    umask(077); /* everything we create (socket, log, pid file) is owner-only */
    if (daemon_mode && daemonize(&srv) < 0)
        goto out;
    demo_log_init(level);

    if (demo_signals_init() < 0 || pipe2(alive, O_CLOEXEC) != 0) {
        snprintf(err, sizeof(err), "could not set up signal handling: %s", strerror(errno));
        startup_failed(&srv, err);
        goto out;
    }
    srv.alive_r = alive[0];
    srv.alive_w = alive[1];
    /* Logged first, so what start-up cleans up reads as part of this start. */
    demo_log(DSM_LOG_INFO, "dsm_demo server starting (pid %d) on \"%s\"", (int)getpid(),
             srv.datadir);
    if (dsm_supervisor_start(srv.datadir, settings) < 0) {
        startup_failed(&srv, dsm_errmsg());
        goto out;
    }
    srv.dsm_started = true;
    srv.listen_fd = open_socket(&srv, err, sizeof(err));
    if (srv.listen_fd < 0) {
        startup_failed(&srv, err);
        dsm_supervisor_shutdown();
        srv.dsm_started = false;
        goto out;
    }
    write_pid_file(&srv);
    demo_log(DSM_LOG_INFO, "dsm_demo server (pid %d) listening on \"%s\"; max_connections = %d",
             (int)getpid(), srv.sock_path, srv.max_workers);
    if (srv.notify_fd >= 0) {
        char ready[32];
        int n = snprintf(ready, sizeof(ready), "ready %d", (int)getpid());

        if (write(srv.notify_fd, ready, (size_t)n) < 0) {
            /* the parent is gone; nobody is waiting to hear */
        }
        close_fd(&srv.notify_fd);
    }

    if ((stop = demo_serve(&srv)) > 0) {
        demo_log(DSM_LOG_INFO, "received %s; shutting down",
                 stop == SIGINT ? "SIGINT" : "SIGTERM");
        status = demo_shut_down(&srv);
    } else {
        demo_shut_down(&srv);
        status = 1;
    }
    if (status == 0)
        demo_log(DSM_LOG_INFO, "dsm_demo server shut down");

out:
    close_fd(&srv.listen_fd);
    close_fd(&alive[0]);
    close_fd(&alive[1]);
    close_fd(&srv.notify_fd);
    demo_signals_close();
    free(srv.workers);
    return status;
}
