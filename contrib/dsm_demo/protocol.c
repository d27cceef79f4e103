/* SPDX-License-Identifier: MIT */
/*
 * protocol.c - framing for the dsm_demo wire protocol (see protocol.h).
 *
 * Both ends use these functions.  They exist so that nobody else has to
 * think about short reads, short writes, EINTR or a peer that vanishes in
 * the middle of a 64 MiB payload: every one of those becomes a negative
 * return value the caller handles on its one error path.
 *
 * A worker never blocks in send() or recv() itself.  It waits in ppoll()
 * with its stop signal unblocked and the supervisor-death pipe watched,
 * then moves whatever the socket accepts without blocking.  That way a
 * client that stops reading or writing cannot keep a worker from
 * honouring the supervisor's SIGTERM, and a worker whose supervisor was
 * killed notices and ends its session.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "protocol.h"

/* Wait until fd is ready for events, unless the worker must give up. */
static int wait_ready(struct demo_conn *c, short events)
{
    if (c->waitmask == NULL)
        return 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = c->fd, .events = events},
                              {.fd = c->watch_fd, .events = POLLIN}};
        nfds_t n = c->watch_fd >= 0 ? 2 : 1;

        if (c->stop && *c->stop)
            return -EINTR;
        if (ppoll(p, n, NULL, c->waitmask) < 0) {
            if (errno == EINTR)
                continue; /* the loop head decides whether that was a stop request */
            return -errno;
        }
        if (n == 2 && p[1].revents != 0)
            return -ECONNABORTED;
        if (p[0].revents != 0)
            return 0; /* errors and hang-ups are reported by the send/recv that follows */
    }
}

static int io_flags(const struct demo_conn *c)
{
    return c->waitmask ? MSG_DONTWAIT : 0;
}

int demo_send_all(struct demo_conn *c, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n;
        int rc = wait_ready(c, POLLOUT);

        if (rc < 0)
            return rc;
        n = send(c->fd, p, len, MSG_NOSIGNAL | io_flags(c));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return -EPIPE;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int demo_recv_all(struct demo_conn *c, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n;
        int rc = wait_ready(c, POLLIN);

        if (rc < 0)
            return rc;
        n = recv(c->fd, p, len, io_flags(c));
        if (n == 0)
            return -EPIPE;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            if (errno == ECONNRESET)
                return -EPIPE;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int demo_discard(struct demo_conn *c, size_t len)
{
    char buf[65536];

    while (len > 0) {
        size_t chunk = len < sizeof(buf) ? len : sizeof(buf);
        int rc = demo_recv_all(c, buf, chunk);

        if (rc < 0)
            return rc;
        len -= chunk;
    }
    return 0;
}

int demo_send_line(struct demo_conn *c, const char *line)
{
    int rc = demo_send_all(c, line, strlen(line));

    return rc < 0 ? rc : demo_send_all(c, "\n", 1);
}

/* One byte at a time: reading ahead could swallow the first frame. */
int demo_recv_line(struct demo_conn *c, char *buf, size_t size)
{
    size_t n = 0;

    for (;;) {
        char ch;
        int rc = demo_recv_all(c, &ch, 1);

        if (rc < 0)
            return rc;
        if (ch == '\n')
            break;
        if (n + 1 >= size)
            return -EPROTO;
        buf[n++] = ch;
    }
    buf[n] = '\0';
    return 0;
}

int demo_send_header(struct demo_conn *c, int kind, size_t len)
{
    unsigned char h[DEMO_FRAME_HEADER] = {(unsigned char)kind, 0, 0, 0};

    if (len > DEMO_MAX_FRAME)
        return -EMSGSIZE;
    h[4] = (unsigned char)(len >> 24);
    h[5] = (unsigned char)(len >> 16);
    h[6] = (unsigned char)(len >> 8);
    h[7] = (unsigned char)len;
    return demo_send_all(c, h, sizeof(h));
}

int demo_recv_header(struct demo_conn *c, int *kind, uint32_t *len)
{
    unsigned char h[DEMO_FRAME_HEADER];
    uint32_t n;
    int rc = demo_recv_all(c, h, sizeof(h));

    if (rc < 0)
        return rc;
    n = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    if (h[0] < 'A' || h[0] > 'Z' || h[1] || h[2] || h[3] || n > DEMO_MAX_FRAME)
        return -EPROTO;
    *kind = h[0];
    *len = n;
    return 0;
}

int demo_send_frame(struct demo_conn *c, int kind, const void *payload, size_t len)
{
    int rc = demo_send_header(c, kind, len);

    return rc < 0 ? rc : demo_send_all(c, payload, len);
}
