/* SPDX-License-Identifier: MIT */
/*
 * client.c - the client's side of the protocol: connecting, and one
 * request and its reply for each command.
 *
 * The client holds no shared memory at all; it only relays.  Payloads are
 * streamed between files and the socket in chunks, so a 64 MiB
 * `create --file` needs no 64 MiB buffer here.  Every function reports in
 * a struct result and one of three outcomes (client.h), so that the front
 * ends (session.c) decide alone what goes to standard output and what to
 * standard error.
 *
 * finish() waits until the worker has closed the connection: by then the
 * worker has detached everything it held, so a script that reads a segment
 * right after another session quit sees the segment gone, not a race.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define CHUNK ((size_t)1024 * 1024)

int set_result(struct result *r, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    /* cppcheck-suppress ctuuninitvar ; r->text is only written here, never read */
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    return rc;
}

/* A broken connection: the session cannot go on. */
static int lost(struct result *r, int err)
{
    if (err == -EPIPE)
        return set_result(r, CMD_LOST, "connection to the server was lost (the session's worker "
                                       "ended)");
    if (err == -EPROTO)
        return set_result(r, CMD_LOST, "the server does not speak the dsm_demo protocol");
    return set_result(r, CMD_LOST, "connection to the server failed: %s", strerror(-err));
}

/* ---- connecting -------------------------------------------------------------- */

#define READY DEMO_PROTO_NAME " ready "
#define REFUSED DEMO_PROTO_NAME " error "

int client_connect(const char *datadir, struct demo_conn *c, bool refused_ok)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char line[DEMO_HELLO_MAX];
    int fd, rc;

    if (demo_path(sa.sun_path, sizeof(sa.sun_path), datadir, DEMO_SOCKET_NAME) < 0) {
        fprintf(stderr, "dsm_demo: data directory path \"%s\" is too long for a Unix socket\n",
                datadir);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "dsm_demo: could not create Unix socket: %s\n", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR)
            fprintf(stderr, "dsm_demo: no dsm_demo server is running on %s\n", datadir);
        else
            fprintf(stderr, "dsm_demo: could not connect to server socket \"%s\": %s\n",
                    sa.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    *c = (struct demo_conn){.fd = fd, .watch_fd = -1};
    rc = demo_recv_line(c, line, sizeof(line));
    if (rc == 0 && strncmp(line, READY, strlen(READY)) == 0)
        rc = demo_send_line(c, DEMO_PROTO_NAME);
    else if (rc == 0 && strncmp(line, REFUSED, strlen(REFUSED)) == 0) {
        if (refused_ok) {
            close(fd);
            return -2;
        }
        fprintf(stderr, "dsm_demo: ERROR: %s\n", line + strlen(REFUSED));
        rc = -ECANCELED;
    } else if (rc == 0 || rc == -EPROTO) {
        fprintf(stderr, "dsm_demo: the program listening on %s is not a dsm_demo server\n",
                sa.sun_path);
        rc = -ECANCELED;
    }
    if (rc == -EPIPE)
        fprintf(stderr, "dsm_demo: the server closed the connection before the session "
                        "started\n");
    else if (rc < 0 && rc != -ECANCELED)
        fprintf(stderr, "dsm_demo: could not talk to the server: %s\n", strerror(-rc));
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return 0;
}

/* ---- one request, one reply ------------------------------------------------------ */

/* The body of a text reply whose header was read; CMD_OK or CMD_FAILED as the kind says. */
static int recv_text_body(struct demo_conn *c, int kind, uint32_t len, struct result *r)
{
    uint32_t keep = len < sizeof(r->text) - 1 ? len : (uint32_t)sizeof(r->text) - 1;
    char why[128];
    int rc;

    if (kind == DEMO_REPLY_GOODBYE) {
        keep = len < sizeof(why) - 1 ? len : (uint32_t)sizeof(why) - 1;
        if ((rc = demo_recv_all(c, why, keep)) < 0)
            return lost(r, rc);
        why[keep] = '\0';
        return set_result(r, CMD_LOST, "the server ended the session: %s", why);
    }
    if (kind != DEMO_REPLY_OK && kind != DEMO_REPLY_ERROR)
        return lost(r, -EPROTO);
    if ((rc = demo_recv_all(c, r->text, keep)) < 0 || (rc = demo_discard(c, len - keep)) < 0)
        return lost(r, rc);
    r->text[keep] = '\0';
    return kind == DEMO_REPLY_OK ? CMD_OK : CMD_FAILED;
}

static int recv_text_reply(struct demo_conn *c, struct result *r)
{
    uint32_t len;
    int kind, rc;

    if ((rc = demo_recv_header(c, &kind, &len)) < 0)
        return lost(r, rc);
    return recv_text_body(c, kind, len, r);
}

/* A request could not be sent: the worker may have said goodbye before it left. */
static int send_failed(struct demo_conn *c, int err, struct result *r)
{
    if (err == -EPIPE && recv_text_reply(c, r) == CMD_LOST)
        return CMD_LOST; /* r says why, as precisely as we know */
    return lost(r, err);
}

int run_simple(struct demo_conn *c, int op, const char *arg, struct result *r)
{
    int rc = demo_send_frame(c, op, arg, strlen(arg));

    return rc < 0 ? send_failed(c, rc, r) : recv_text_reply(c, r);
}

int run_create_text(struct demo_conn *c, const char *text, struct result *r)
{
    return run_simple(c, DEMO_OP_CREATE, text, r);
}

int run_create_file(struct demo_conn *c, const char *path, struct result *r)
{
    struct stat st;
    char *buf;
    size_t left;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return set_result(r, CMD_FAILED, "could not open file \"%s\": %s", path,
                          strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)DEMO_MAX_FRAME) {
        rc = set_result(r, CMD_FAILED, "\"%s\" is not a regular file of at most %u bytes",
                        path, (unsigned)DEMO_MAX_FRAME);
        close(fd);
        return rc;
    }
    buf = malloc(CHUNK);
    if (buf == NULL) {
        close(fd);
        return set_result(r, CMD_FAILED, "out of memory");
    }
    left = (size_t)st.st_size;
    rc = demo_send_header(c, DEMO_OP_CREATE, left);
    while (rc == 0 && left > 0) {
        ssize_t n = read(fd, buf, left < CHUNK ? left : CHUNK);

        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            /* The header promised st_size bytes; the stream cannot be resynchronised. */
            rc = set_result(r, CMD_LOST, "could not read file \"%s\": %s", path,
                            n == 0 ? "file shrank while being sent" : strerror(errno));
            free(buf);
            close(fd);
            return rc;
        }
        if (n > 0) {
            rc = demo_send_all(c, buf, (size_t)n);
            left -= (size_t)n;
        }
    }
    free(buf);
    close(fd);
    return rc < 0 ? send_failed(c, rc, r) : recv_text_reply(c, r);
}

/* Text on one line: control characters and backslashes as C-style escapes. */
static void print_escaped(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];

        if (ch == '\\')
            fputs("\\\\", stdout);
        else if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch == '\r')
            fputs("\\r", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
    putchar('\n');
}

/* read HANDLE [--file OUT]: print the text, or write the bytes to OUT. */
int run_read(struct demo_conn *c, const char *handle, const char *outfile, struct result *r)
{
    unsigned char *buf;
    uint32_t len, done = 0;
    int kind, rc, fd = -1;

    if ((rc = demo_send_frame(c, DEMO_OP_READ, handle, strlen(handle))) < 0)
        return send_failed(c, rc, r);
    if ((rc = demo_recv_header(c, &kind, &len)) < 0)
        return lost(r, rc);
    if (kind != DEMO_REPLY_OK)
        return recv_text_body(c, kind, len, r);
    if (outfile != NULL) {
        fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) {
            int e = errno;

            if ((rc = demo_discard(c, len)) < 0)
                return lost(r, rc);
            return set_result(r, CMD_FAILED, "could not open file \"%s\": %s", outfile,
                              strerror(e));
        }
    }
    buf = malloc(outfile ? CHUNK : (size_t)len + 1);
    if (buf == NULL) {
        if (fd >= 0)
            close(fd);
        if ((rc = demo_discard(c, len)) < 0)
            return lost(r, rc);
        return set_result(r, CMD_FAILED, "out of memory");
    }
    if (outfile == NULL) {
        rc = demo_recv_all(c, buf, len);
        if (rc == 0)
            print_escaped(buf, len);
        free(buf);
        r->text[0] = '\0';
        return rc < 0 ? lost(r, rc) : CMD_OK;
    }
    while (done < len) {
        uint32_t n = len - done < CHUNK ? len - done : CHUNK;

        if ((rc = demo_recv_all(c, buf, n)) < 0)
            break;
        for (uint32_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, n - off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                int e = errno;

                free(buf);
                close(fd);
                if ((rc = demo_discard(c, len - done - n)) < 0)
                    return lost(r, rc);
                return set_result(r, CMD_FAILED, "could not write file \"%s\": %s", outfile,
                                  strerror(e));
            }
            off += (uint32_t)w;
        }
        done += n;
    }
    free(buf);
    if (rc < 0) {
        close(fd);
        return lost(r, rc);
    }
    if (close(fd) != 0)
        return set_result(r, CMD_FAILED, "could not write file \"%s\": %s", outfile,
                          strerror(errno));
    return set_result(r, CMD_OK, "%u bytes written to %s", (unsigned)len, outfile);
}

int run_crash(struct demo_conn *c, struct result *r)
{
    int rc = demo_send_frame(c, DEMO_OP_CRASH, "", 0);

    if (rc == 0)
        rc = recv_text_reply(c, r);
    if (rc < 0) /* a send error or CMD_LOST: either way the worker is gone */
        return set_result(r, CMD_LOST, "crashed: the session's worker aborted and the "
                                        "session is over");
    return set_result(r, CMD_FAILED, "the worker did not crash");
}

/* End the session and wait until the worker has let go of everything. */
int finish(struct demo_conn *c, struct result *r)
{
    char ch;
    int rc = run_simple(c, DEMO_OP_QUIT, "", r);

    if (rc != CMD_LOST)
        while (demo_recv_all(c, &ch, 1) == 0)
            ; /* nothing more is expected: this only waits for the close */
    close(c->fd);
    c->fd = -1;
    return rc;
}

void finish_quietly(struct demo_conn *c)
{
    struct result r;

    finish(c, &r);
}
