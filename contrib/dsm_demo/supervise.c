/* SPDX-License-Identifier: MIT */
/*
 * supervise.c - the supervisor's main loop: accept a session and fork its
 * worker, reap workers and tell the library, and shut down.
 *
 * Signal handlers only set a flag and write a byte to a self-pipe; all the
 * work happens in the loop, which waits in poll() on the listening socket
 * and that pipe.  A worker's death is reported to the library with
 * dsm_supervisor_worker_exited(), which answers what the crash policy
 * says: nothing to do (a clean exit), the dead worker's references were
 * reclaimed, or a crash reset is needed -- and then, as PostgreSQL's
 * postmaster does, every other worker goes, and only then is dynamic shared
 * memory wiped and recreated with dsm_supervisor_reset().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "server.h"

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_sigchld;
static volatile sig_atomic_t got_stop; /* the signal number that asked us to stop */

static void on_signal(int signo)
{
    int saved_errno = errno;

    if (signo == SIGCHLD)
        got_sigchld = 1;
    else
        got_stop = signo;
    /* Non-blocking: a full pipe already guarantees the loop wakes up. */
    if (sig_pipe[1] >= 0 && write(sig_pipe[1], "", 1) < 0) {
    }
    errno = saved_errno;
}

static void drain_sig_pipe(void)
{
    char buf[64];

    while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
        ;
}

int demo_signals_init(void)
{
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    struct sigaction ign = {.sa_handler = SIG_IGN};

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGCHLD, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGPIPE, &ign, NULL) != 0 ||
        sigaction(SIGHUP, &ign, NULL) != 0)
        return -errno;
    return 0;
}

void demo_signals_close(void)
{
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
}

/* What happened to a child, for the log. */
static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with exit code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was terminated by signal %d: %s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "ended with status 0x%x", (unsigned)status);
}

static void forget_worker(struct server *srv, pid_t pid)
{
    for (int i = 0; i < srv->nworkers; i++) {
        if (srv->workers[i] == pid) {
            srv->workers[i] = srv->workers[--srv->nworkers];
            return;
        }
    }
}

/* ---- workers -------------------------------------------------------------- */

static void child_reset_signals(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};

    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, NULL);
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGHUP, &dfl, NULL);
}

/* Tell a client we will not serve it; best effort, the socket is fresh and empty. */
static void refuse(int fd, const char *why)
{
    char line[DEMO_HELLO_MAX];
    int n = snprintf(line, sizeof(line), DEMO_PROTO_NAME " error %s\n", why);

    if (n > 0 && send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
    }
    close(fd);
}

static void start_worker(struct server *srv, int fd)
{
    struct demo_worker_config cfg = {
        .supervisor = getpid(), .watch_fd = srv->alive_r, .max_payload = srv->max_payload};
    sigset_t all, old;
    pid_t pid;

    if (srv->nworkers >= srv->max_workers) {
        char why[128];

        snprintf(why, sizeof(why), "sorry, too many sessions already (max_connections = %d)",
                 srv->max_workers);
        demo_log(DSM_LOG_WARNING, "refused a connection: %s", why);
        refuse(fd, why);
        return;
    }
    /* No handler of ours may run in the child before it has replaced them. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        child_reset_signals();
        close(srv->listen_fd);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        close(srv->alive_w);
        demo_worker_main(fd, &cfg);
    }
    if (pid < 0) {
        int e = errno;

        sigprocmask(SIG_SETMASK, &old, NULL);
        demo_log(DSM_LOG_ERROR, "could not fork a worker: %s", strerror(e));
        refuse(fd, "could not start a worker process");
        return;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    srv->workers[srv->nworkers++] = pid;
    close(fd);
    if (srv->log_connections)
        demo_log(DSM_LOG_INFO, "connection received: session worker %d started", (int)pid);
}

static void accept_connections(struct server *srv)
{
    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timespec pause = {0, 100L * 1000 * 1000};

                /* The connection stays queued and poll() would report it again at
                 * once: pause rather than spin until descriptors are free. */
                demo_log(DSM_LOG_WARNING, "could not accept a connection: %s", strerror(errno));
                nanosleep(&pause, NULL);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                demo_log(DSM_LOG_WARNING, "could not accept a connection: %s", strerror(errno));
            }
            return;
        }
        start_worker(srv, fd);
    }
}

/*
 * PostgreSQL's answer to a crashed backend: nobody knows what it left half
 * done in shared memory, so every other worker goes too (SIGKILL: they must
 * not touch shared memory again, not even to detach), and only then is
 * dynamic shared memory wiped and recreated.
 */
static int crash_reset(struct server *srv)
{
    int n = srv->nworkers;

    for (int i = 0; i < n; i++)
        kill(srv->workers[i], SIGKILL);
    for (int i = 0; i < n; i++) {
        int status;

        while (waitpid(srv->workers[i], &status, 0) < 0 && errno == EINTR)
            ;
    }
    srv->nworkers = 0;
    if (n > 0)
        demo_log(DSM_LOG_INFO, "terminated %d other session worker(s)", n);
    if (dsm_supervisor_reset() < 0) {
        demo_log(DEMO_LOG_FATAL, "could not reset dynamic shared memory: %s", dsm_errmsg());
        srv->dsm_started = false; /* a failed reset leaves the library stopped */
        return -1;
    }
    demo_log(DSM_LOG_INFO, "dynamic shared memory reinitialized; accepting connections again");
    return 0;
}

/*
 * Reap every worker that ended and tell the library.  While shutting down
 * no reset is performed: shut-down destroys everything anyway.
 * Returns -1 if a needed crash reset failed.
 */
static int reap_workers(struct server *srv, bool shutting_down)
{
    bool need_reset = false;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char how[128];
        int rc;

        forget_worker(srv, pid);
        describe_exit(status, how, sizeof(how));
        rc = dsm_supervisor_worker_exited(pid, status);
        if (rc < 0) {
            demo_log(DSM_LOG_ERROR, "could not account for worker %d, which %s: %s", (int)pid,
                     how, dsm_errmsg());
            need_reset = true; /* when in doubt, the safe answer */
        } else if (rc == DSM_CRASH_RESET) {
            /* The library has logged the death itself; we log what we do about it. */
            if (!shutting_down)
                demo_log(DSM_LOG_INFO, "session worker %d %s; terminating every other session "
                                       "and resetting dynamic shared memory "
                                       "(dsm_crash_policy = reset)", (int)pid, how);
            need_reset = true;
        } else if (rc == DSM_CRASH_RECLAIMED) {
            demo_log(DSM_LOG_INFO, "session worker %d %s; the other sessions go on "
                                   "(dsm_crash_policy = reclaim)", (int)pid, how);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            demo_log(DSM_LOG_INFO, "session worker %d %s", (int)pid, how);
        } else if (srv->log_connections) {
            demo_log(DSM_LOG_INFO, "session worker %d ended", (int)pid);
        }
    }
    if (need_reset && !shutting_down)
        return crash_reset(srv);
    return 0;
}

/* ---- shut-down ----------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int demo_shut_down(struct server *srv)
{
    int64_t deadline = now_ms() + srv->shutdown_timeout_ms;
    int rc = 0;

    /* From here on connections are refused, and `dsm_demo stop` sees that. */
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
    for (int i = 0; i < srv->nworkers; i++)
        kill(srv->workers[i], SIGTERM);
    while (srv->nworkers > 0) {
        struct pollfd p = {.fd = sig_pipe[0], .events = POLLIN};
        int64_t left = deadline - now_ms();

        reap_workers(srv, true);
        if (srv->nworkers == 0 || left <= 0)
            break;
        if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) > 0)
            drain_sig_pipe();
    }
    if (srv->nworkers > 0) {
        demo_log(DSM_LOG_WARNING, "%d session worker(s) did not end within shutdown_timeout; "
                                  "killing them", srv->nworkers);
        for (int i = 0; i < srv->nworkers; i++)
            kill(srv->workers[i], SIGKILL);
        for (int i = 0; i < srv->nworkers; i++) {
            int status;

            while (waitpid(srv->workers[i], &status, 0) < 0 && errno == EINTR)
                ;
        }
        srv->nworkers = 0;
    }
    if (srv->dsm_started && dsm_supervisor_shutdown() < 0) {
        demo_log(DSM_LOG_ERROR, "could not shut dynamic shared memory down: %s", dsm_errmsg());
        rc = 1;
    }
    srv->dsm_started = false;
    /* The socket goes last: `dsm_demo stop` waits for it to disappear. */
    unlink(srv->pid_path);
    unlink(srv->sock_path);
    return rc;
}

/* ---- the loop ------------------------------------------------------------------ */

int demo_serve(struct server *srv)
{
    while (!got_stop) {
        struct pollfd p[2] = {{.fd = sig_pipe[0], .events = POLLIN},
                              {.fd = srv->listen_fd, .events = POLLIN}};

        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            demo_log(DEMO_LOG_FATAL, "poll failed: %s", strerror(errno));
            return -1;
        }
        if (p[0].revents)
            drain_sig_pipe();
        /* Reap first: a finished session frees its slot for the next client. */
        if (got_sigchld) {
            got_sigchld = 0;
            if (reap_workers(srv, false) < 0)
                return -1;
        }
        if (!got_stop && (p[1].revents & POLLIN))
            accept_connections(srv);
    }
    return got_stop;
}
