/* SPDX-License-Identifier: MIT */
/*
 * keeper.c - the supervisor holds the descriptors of pinned memfd segments.
 *
 * Why: a pinned segment lives until it is unpinned, even when nobody maps
 * it and the worker that pinned it has exited (PostgreSQL's dsm_pin_segment
 * semantics).  With the memfd backend "lives" means "some process holds its
 * descriptor", and the one process that lives as long as the instance is
 * the supervisor.  So pinning hands the descriptor to the supervisor, and
 * pin returns only once the supervisor holds it: a worker that pins and
 * then dies at once loses nothing.
 *
 * Why a thread and a socket: a descriptor can only enter another process
 * through SCM_RIGHTS, and the receiving process must call recvmsg().  The
 * supervisor's main thread runs the application's loop, not ours, so the
 * keeper is one thread, started only with the memfd backend, that sleeps
 * in poll() and serves one request per connection: PIN (with the
 * descriptor) or UNPIN.  Pins are rare; no segment's create, attach or
 * detach ever talks to it.
 *
 * The socket is in the abstract name space ("\0dynshm.<instance>.keeper"),
 * which the kernel removes with the socket: a kill -9 leaves nothing.  It
 * has no permissions, so each side checks the other (SO_PEERCRED): the
 * keeper serves only our effective uid, and a worker hands a descriptor
 * only to the process the control segment names as supervisor -- a
 * process of another user that took the name first gets nothing.
 * The keeper verifies what it receives (owner, mode, inode registered for
 * that handle) before holding it (dsm__impl_hold).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "keeper.h"

enum { KEEPER_PIN = 1, KEEPER_UNPIN = 2 };

struct keeper_msg {
    uint32_t op;
    uint32_t reserved;
    uint64_t handle;
};

/* How long a worker waits for the keeper's answer. */
#define KEEPER_TIMEOUT_SEC 10

static struct {
    bool running;
    pid_t pid;      /* the process whose thread it is (a fork child's copy is not) */
    int lfd;        /* listening socket */
    int wake[2];    /* a pipe: writing to wake[1] stops the thread */
    pthread_t thread;
    sem_t started;  /* posted by the thread once it is in its loop */
} keeper = {.lfd = -1, .wake = {-1, -1}};

/*
 * The handles the supervisor holds (under dsm__p.mu), each with the process
 * whose pin asked for it.  A hold can outlive its pin when that process
 * dies between the two steps of pin (hold, then the table's pin) or of
 * unpin; dsm__keeper_prune drops such a hold as soon as its segment is no
 * longer live, or is live but unpinned while the pinner is dead (a live
 * pinner may be between its two steps and is left alone).
 */
struct held_entry {
    dsm_handle handle;
    struct dsm__procid pinner;
};

static struct {
    struct held_entry *e;
    size_t n, cap;
} held;

static struct held_entry *held_find(dsm_handle h)
{
    for (size_t i = 0; i < held.n; i++)
        if (held.e[i].handle == h)
            return &held.e[i];
    return NULL;
}

static void held_add(dsm_handle h, const struct dsm__procid *pinner)
{
    if (held.n == held.cap) {
        size_t cap = held.cap ? held.cap * 2 : 16;
        struct held_entry *p = realloc(held.e, cap * sizeof(*p));

        if (p == NULL)
            return; /* only pruning is lost: shut-down still closes every hold */
        held.e = p;
        held.cap = cap;
    }
    held.e[held.n++] = (struct held_entry){h, *pinner};
}

static void held_remove(dsm_handle h)
{
    struct held_entry *e = held_find(h);

    if (e)
        *e = held.e[--held.n];
}

/*
 * Hold fd for handle in this (the supervisor) process on behalf of pinner;
 * mu held.  1 if newly held, 0 if it was held already (the latest pinner is
 * then the one whose pin completes it), or an error.
 */
static int hold_locked(dsm_handle handle, int fd, const struct dsm__procid *pinner)
{
    int rc = dsm__impl_hold(dsm__p.inst, handle, fd);
    struct held_entry *e;

    if (rc == 0)
        held_add(handle, pinner);
    else if (rc == -EALREADY && (e = held_find(handle)) != NULL)
        e->pinner = *pinner;
    return rc == 0 ? 1 : rc == -EALREADY ? 0 : rc;
}

static int unhold_locked(dsm_handle handle)
{
    held_remove(handle);
    return dsm__impl_unhold(dsm__p.inst, handle);
}

static bool needed(void)
{
    return !dsm__p.disabled && dsm_impl_instance_type(dsm__p.inst) == DSM_IMPL_MEMFD;
}

static socklen_t keeper_addr(struct sockaddr_un *a)
{
    int n;

    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    /* sun_path[0] stays '\0': the abstract name space */
    n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "dynshm.%s.keeper",
                 dsm_impl_instance_id(dsm__p.inst));
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* Serve one connection: a request, maybe with a descriptor, and a reply. */
/*
 * Serve one connection: a request, maybe with a descriptor, and a reply.
 *
 * A received descriptor enters this process's table at recvmsg(), so the
 * message is only read with dsm__p.mu held, and the descriptor is held or
 * closed before mu is released: fork() takes mu first (lifecycle.c), so no
 * worker forked meanwhile inherits a descriptor that nobody would close in
 * it (its copy of the holds is closed by dsm__keeper_after_fork; an
 * untracked one would keep a destroyed segment alive for the worker's
 * life).  The wait for the message happens before, without the lock.
 */
static void serve(int c)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct keeper_msg m;
    struct iovec iov = {&m, sizeof(m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    struct pollfd p = {.fd = c, .events = POLLIN};
    struct dsm__procid pinner;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    struct cmsghdr *cm;
    int32_t rc = -EINVAL;
    int fd = -1;
    ssize_t n;

    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.uid != geteuid())
        return; /* not our user: no answer at all */
    if (poll(&p, 1, KEEPER_TIMEOUT_SEC * 1000) != 1)
        return; /* nothing came: the worker gave up or died */
    pinner.pid = cred.pid;
    pinner.reserved = 0;
    pinner.start_time = dsm__proc_start_time(cred.pid);
    pthread_mutex_lock(&dsm__p.mu);
    n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    for (cm = CMSG_FIRSTHDR(&mh); n > 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    if (n == (ssize_t)sizeof(m) && !(mh.msg_flags & MSG_CTRUNC)) {
        if (m.op == KEEPER_PIN && fd >= 0 && (rc = hold_locked(m.handle, fd, &pinner)) == 1)
            fd = -1; /* held now */
        else if (m.op == KEEPER_UNPIN)
            rc = unhold_locked(m.handle);
    }
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&dsm__p.mu);
    (void)!send(c, &rc, sizeof(rc), MSG_NOSIGNAL);
}

static void *keeper_main(void *arg)
{
    (void)arg;
    sem_post(&keeper.started);
    for (;;) {
        struct pollfd p[2] = {{.fd = keeper.lfd, .events = POLLIN},
                              {.fd = keeper.wake[0], .events = POLLIN}};
        int c;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        c = accept4(keeper.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        serve(c);
        close(c);
    }
    return NULL;
}

static void close_fds(void)
{
    if (keeper.lfd >= 0)
        close(keeper.lfd);
    for (int i = 0; i < 2; i++)
        if (keeper.wake[i] >= 0)
            close(keeper.wake[i]);
    keeper.lfd = keeper.wake[0] = keeper.wake[1] = -1;
}

int dsm__keeper_start(void)
{
    struct sockaddr_un a;
    socklen_t alen;
    sigset_t all, old;
    int rc;

    if (!needed() || keeper.running)
        return 0;
    alen = keeper_addr(&a);
    keeper.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (keeper.lfd < 0) {
        rc = dsm__error(-errno, "could not create the memfd keeper's socket: %m");
        goto fail;
    }
    if (bind(keeper.lfd, (struct sockaddr *)&a, alen) != 0) {
        rc = dsm__error(-errno, "could not bind the memfd keeper's socket \"@%s\": %m%s",
                        a.sun_path + 1,
                        errno == EADDRINUSE ? " (another process has taken the name)" : "");
        goto fail;
    }
    if (listen(keeper.lfd, 64) != 0 || pipe2(keeper.wake, O_CLOEXEC) != 0) {
        rc = dsm__error(-errno, "could not start the memfd keeper: %m");
        goto fail;
    }
    /* The application's signal handlers never run on the keeper thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    sem_init(&keeper.started, 0, 0);
    rc = pthread_create(&keeper.thread, NULL, keeper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        sem_destroy(&keeper.started);
        rc = dsm__error(-rc, "could not start the memfd keeper thread: %s", strerror(rc));
        goto fail;
    }
    /*
     * Return only once the thread runs its loop.  Its start-up happens in
     * the C library and, under a sanitizer, in the sanitizer's allocator,
     * whose locks fork() does not take (GCC 12's libasan has no fork
     * handlers): a worker forked in that window inherited the lock held and
     * hung in its leak check at exit.  Waiting closes the window; after it
     * the thread allocates only under dsm__p.mu, which fork() takes.
     */
    while (sem_wait(&keeper.started) != 0 && errno == EINTR)
        ;
    sem_destroy(&keeper.started);
    keeper.running = true;
    keeper.pid = getpid();
    return 0;

fail:
    close_fds();
    return rc;
}

void dsm__keeper_stop(void)
{
    if (!keeper.running || keeper.pid != getpid())
        return;
    (void)!write(keeper.wake[1], "x", 1);
    pthread_join(keeper.thread, NULL);
    keeper.running = false;
    close_fds();
    free(held.e);
    memset(&held, 0, sizeof(held));
}

void dsm__keeper_after_fork(void)
{
    keeper.running = false; /* the thread stayed in the parent */
    close_fds();
    free(held.e);
    memset(&held, 0, sizeof(held));
    if (dsm__p.inst) {
        /* memfd: the inherited control mapping stays; its descriptor copy goes,
         * with every other descriptor of the instance (dsm_impl_memfd.c). */
        if (dsm__p.ctl.hdr != NULL)
            dsm__impl_forget(dsm__p.inst, &dsm__p.ctl.map);
        dsm__impl_after_fork(dsm__p.inst);
    }
}

/* One request to the supervisor's keeper; returns its answer or an error. */
static int ask(uint32_t op, dsm_handle handle, int fd)
{
    struct keeper_msg m = {.op = op, .handle = handle};
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&m, sizeof(m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    struct timeval tv = {.tv_sec = KEEPER_TIMEOUT_SEC};
    struct sockaddr_un a;
    struct ucred cred;
    socklen_t alen = keeper_addr(&a), clen = sizeof(cred);
    int32_t answer;
    int s, rc;

    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return dsm__error(-errno, "could not reach the memfd keeper: %m");
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(s, (struct sockaddr *)&a, alen) != 0) {
        rc = dsm__error(-errno, "could not reach the supervisor's memfd keeper \"@%s\": %m",
                        a.sun_path + 1);
        goto out;
    }
    /* Whoever listens must be our supervisor, or it gets no descriptor. */
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.uid != geteuid() ||
        dsm__p.ctl.hdr == NULL || cred.pid != dsm__p.ctl.hdr->supervisor_pid) {
        rc = dsm__error(DSM_EFOREIGN, "the memfd keeper \"@%s\" is process %d of uid %u, not "
                                      "this instance's supervisor",
                        a.sun_path + 1, (int)cred.pid, (unsigned)cred.uid);
        goto out;
    }
    if (fd >= 0) {
        struct cmsghdr *cm;

        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    if (sendmsg(s, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
        rc = dsm__error(-errno, "could not send a request to the memfd keeper: %m");
        goto out;
    }
    if (recv(s, &answer, sizeof(answer), 0) != (ssize_t)sizeof(answer)) {
        rc = dsm__error(errno ? -errno : -EPROTO, "no answer from the memfd keeper: %m");
        goto out;
    }
    rc = answer;
out:
    close(s);
    return rc;
}

int dsm__keeper_pin(const dsm_segment *seg)
{
    struct dsm__procid me;
    int fd, rc;

    if (!needed())
        return 0;
    fd = dsm__impl_export_fd(dsm__p.inst, &seg->impl);
    if (fd < 0)
        return dsm__error(fd, "shared memory segment %016llx has no descriptor to pin",
                          (unsigned long long)seg->handle);
    if (!dsm__p.supervisor) {
        rc = ask(KEEPER_PIN, seg->handle, fd);
        if (rc < 0)
            return dsm__error(rc, "could not hand pinned segment %016llx to the supervisor: %s",
                              (unsigned long long)seg->handle, dsm_errmsg());
        return rc;
    }
    /* The supervisor keeps a descriptor of its own, made under mu (see serve()). */
    dsm__procid_self(&me);
    pthread_mutex_lock(&dsm__p.mu);
    fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        rc = dsm__error(-errno, "could not keep pinned segment %016llx: %m",
                        (unsigned long long)seg->handle);
    } else if ((rc = hold_locked(seg->handle, fd, &me)) <= 0) {
        close(fd);
    }
    pthread_mutex_unlock(&dsm__p.mu);
    return rc;
}

void dsm__keeper_unpin(dsm_handle handle)
{
    if (!needed())
        return;
    if (dsm__p.supervisor) {
        pthread_mutex_lock(&dsm__p.mu);
        unhold_locked(handle);
        pthread_mutex_unlock(&dsm__p.mu);
    } else {
        int rc = ask(KEEPER_UNPIN, handle, -1);

        /* -ENOENT: the keeper's hold went with the segment's destruction already. */
        if (rc < 0 && rc != -ENOENT)
            dsm__log(DSM_LOG_WARNING, "unpinned segment %016llx: %s",
                     (unsigned long long)handle, dsm_errmsg());
    }
}

void dsm__keeper_prune(void)
{
    struct held_entry gone[64], unpinned[64];
    size_t n = 0, u = 0;

    if (!needed() || !dsm__p.supervisor)
        return;
    pthread_mutex_lock(&dsm__p.mu);
    if (held.n > 0 && dsm__control_lock(&dsm__p.ctl) == 0) {
        for (size_t i = 0; i < held.n && n < DSM_ARRAY_LEN(gone); i++) {
            uint32_t slot = (uint32_t)held.e[i].handle;
            const struct dsm_control_slot *s =
                slot < dsm__p.ctl.hdr->nslots ? &dsm__p.ctl.slots[slot] : NULL;

            if (s == NULL || s->handle != held.e[i].handle || s->state != DSM_SLOT_LIVE)
                gone[n++] = held.e[i];
            else if (!s->pinned && u < DSM_ARRAY_LEN(unpinned))
                unpinned[u++] = held.e[i];
        }
        dsm__control_unlock(&dsm__p.ctl);
    }
    /* /proc is read outside the control lock; mu keeps the keeper thread out meanwhile. */
    for (size_t i = 0; i < u && n < DSM_ARRAY_LEN(gone); i++)
        if (!dsm__procid_alive(&unpinned[i].pinner))
            gone[n++] = unpinned[i];
    for (size_t i = 0; i < n; i++)
        unhold_locked(gone[i].handle);
    pthread_mutex_unlock(&dsm__p.mu);
}
