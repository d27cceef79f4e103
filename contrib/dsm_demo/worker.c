/* SPDX-License-Identifier: MIT */
/*
 * worker.c - one client session, served by a worker the supervisor forked.
 *
 * The commands are PostgreSQL's dsm_demo_create() and dsm_demo_read() and
 * a few more, done the way a real server would: `create` stores text in a
 * new segment and keeps that mapping for the session's life, so the text
 * lives as long as this session (or a pin) does; `read` maps a segment only
 * for the length of the command.
 *
 * Each command runs under its own resource owner.  On success the owner
 * is released as a commit (the library would report any mapping still in
 * it as a leak); on every error path it is released as an abort, which
 * detaches whatever the command had mapped.  That is the point of resource
 * owners: a client that disconnects in the middle of a 64 MiB create, or a
 * segment that turns out not to hold our text, cannot leak a mapping.
 *
 * A segment holds a small header (magic, length) and then the bytes.  The
 * header is checked before anything is believed: any process of the
 * server can write into a segment it maps.
 *
 * SIGTERM from the supervisor means "end the session": it is blocked except
 * while waiting for the client (see protocol.c), so it never interrupts the
 * library, and the worker leaves through the same clean exit as `quit`.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dsm_demo.h"
#include "protocol.h"

#define TEXT_MAGIC "dsmdemo1" /* 8 bytes, no terminating NUL stored */

struct text_header {
    char magic[8];
    uint64_t length; /* bytes of text after the header */
};

struct session {
    struct demo_conn conn;
    const struct demo_worker_config *cfg;
    sigset_t waitmask;
    dsm_segment **segs; /* mappings created by this session, pinned to it */
    size_t nsegs;
    size_t cap;
};

static volatile sig_atomic_t stop_requested;

static void on_sigterm(int signo)
{
    (void)signo;
    stop_requested = 1;
}

/* ---- replies -------------------------------------------------------------- */

static int reply(struct session *s, int kind, const char *fmt, ...) DSM_PRINTF(3, 4);
static int reply(struct session *s, int kind, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);

    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(text))
        n = (int)sizeof(text) - 1;
    /* What the client is told went wrong, the operator reads in the log too. */
    if (kind == DEMO_REPLY_ERROR)
        demo_log(DSM_LOG_ERROR, "session %d: %.*s", (int)getpid(), n, text);
    return demo_send_frame(&s->conn, kind, text, (size_t)n);
}

#define reply_ok(s, ...) reply((s), DEMO_REPLY_OK, __VA_ARGS__)
#define reply_error(s, ...) reply((s), DEMO_REPLY_ERROR, __VA_ARGS__)

/* The library's message for the call that just failed, with its detail and
 * hint, sent as the reply (one line: the protocol answers a line a command). */
static void dsm_error_line(char *buf, size_t len)
{
    const char *detail = dsm_errdetail(), *hint = dsm_errhint();

    snprintf(buf, len, "%s%s%s%s%s", dsm_errmsg(), *detail ? " DETAIL: " : "", detail,
             *hint ? " HINT: " : "", hint);
}

static int reply_dsm_error(struct session *s)
{
    char line[1600];

    dsm_error_line(line, sizeof(line));
    return reply_error(s, "%s", line);
}

/* ---- the session's own mappings -------------------------------------------- */

/* Make room for one more, before creating it, so that adding cannot fail. */
static int session_reserve(struct session *s)
{
    if (s->nsegs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        dsm_segment **segs = realloc(s->segs, cap * sizeof(*segs));

        if (segs == NULL)
            return -ENOMEM;
        s->segs = segs;
        s->cap = cap;
    }
    return 0;
}

static long session_find(const struct session *s, dsm_handle h)
{
    for (size_t i = 0; i < s->nsegs; i++)
        if (dsm_segment_handle(s->segs[i]) == h)
            return (long)i;
    return -1;
}

/* The text a segment holds, or -1 if it is not a dsm_demo segment. */
static int segment_text(const dsm_segment *seg, const char **data, size_t *len)
{
    const struct text_header *h = dsm_segment_address(seg);
    size_t maplen = dsm_segment_map_length(seg);
    uint64_t n;

    if (h == NULL || maplen < sizeof(*h) || memcmp(h->magic, TEXT_MAGIC, 8) != 0)
        return -1;
    n = *(volatile const uint64_t *)&h->length; /* read once: others may write it */
    if (n > maplen - sizeof(*h))
        return -1;
    *data = (const char *)(h + 1);
    *len = (size_t)n;
    return 0;
}

/* ---- commands ------------------------------------------------------------- */
/* Each returns 0 to go on, 1 to end the session, or a connection error (< 0). */

/* 0 with *h set; 1 when the handle was bad and the client has been told; or a
 * connection error. */
static int parse_handle(struct session *s, const char *arg, dsm_handle *h)
{
    if (dsm_handle_parse(arg, h) < 0) {
        int rc = reply_dsm_error(s);

        return rc < 0 ? rc : 1;
    }
    return 0;
}

static int cmd_create(struct session *s, uint32_t len)
{
    dsm_resowner *owner, *prev;
    struct text_header *h;
    char hb[DSM_HANDLE_STRLEN];
    dsm_segment *seg;
    int rc;

    if (len > s->cfg->max_payload) {
        rc = demo_discard(&s->conn, len);
        return rc < 0 ? rc
                      : reply_error(s, "text of %u bytes is larger than max_payload_size "
                                       "(%zu bytes)", (unsigned)len, s->cfg->max_payload);
    }
    if (session_reserve(s) < 0 || dsm_resowner_create(NULL, "create", &owner) < 0) {
        rc = demo_discard(&s->conn, len);
        return rc < 0 ? rc : reply_error(s, "out of memory");
    }
    prev = dsm_resowner_set_current(owner);
    if (dsm_create(sizeof(*h) + len, 0, &seg) < 0) {
        char msg[1600];

        dsm_error_line(msg, sizeof(msg)); /* before the clean-up below can fail too */
        dsm_resowner_set_current(prev);
        dsm_resowner_delete(owner);
        rc = demo_discard(&s->conn, len);
        return rc < 0 ? rc : reply_error(s, "%s", msg);
    }
    /* Straight from the socket into shared memory: no second copy of 64 MiB. */
    h = dsm_segment_address(seg);
    rc = demo_recv_all(&s->conn, h + 1, len);
    dsm_resowner_set_current(prev);
    if (rc < 0) {
        /* The client is gone mid-payload: aborting the owner detaches the
         * half-filled segment, and as nobody else knows it, destroys it. */
        dsm_resowner_delete(owner);
        return rc;
    }
    memcpy(h->magic, TEXT_MAGIC, sizeof(h->magic));
    h->length = len;
    /* The session keeps the mapping, not this command: take it from the owner. */
    dsm_pin_mapping(seg);
    s->segs[s->nsegs++] = seg;
    dsm_resowner_release(owner, true);
    dsm_resowner_delete(owner);
    return reply_ok(s, "%s", dsm_handle_format(dsm_segment_handle(seg), hb));
}

static int cmd_read(struct session *s, const char *arg)
{
    dsm_resowner *owner, *prev;
    char hb[DSM_HANDLE_STRLEN];
    const char *data;
    dsm_segment *seg;
    dsm_handle h;
    size_t len;
    int rc;

    if ((rc = parse_handle(s, arg, &h)) != 0)
        return rc < 0 ? rc : 0;
    /* Mapped by this session already (it created it): read it in place. */
    if ((seg = dsm_find_mapping(h)) != NULL) {
        if (segment_text(seg, &data, &len) < 0)
            return reply_error(s, "dynamic shared memory segment %s does not hold dsm_demo "
                                  "text", dsm_handle_format(h, hb));
        return demo_send_frame(&s->conn, DEMO_REPLY_OK, data, len);
    }
    if (dsm_resowner_create(NULL, "read", &owner) < 0)
        return reply_error(s, "out of memory");
    prev = dsm_resowner_set_current(owner);
    if (dsm_attach(h, &seg) < 0) {
        dsm_resowner_set_current(prev);
        dsm_resowner_delete(owner);
        return reply_dsm_error(s);
    }
    if (segment_text(seg, &data, &len) < 0) {
        /* Attached, then found unusable: the abort path detaches it for us. */
        dsm_resowner_set_current(prev);
        dsm_resowner_delete(owner);
        return reply_error(s, "dynamic shared memory segment %s does not hold dsm_demo text",
                           dsm_handle_format(h, hb));
    }
    rc = demo_send_frame(&s->conn, DEMO_REPLY_OK, data, len);
    dsm_resowner_set_current(prev);
    if (rc < 0) {
        dsm_resowner_delete(owner);
        return rc;
    }
    dsm_detach(seg);
    dsm_resowner_release(owner, true);
    dsm_resowner_delete(owner);
    return 0;
}

static int cmd_detach(struct session *s, const char *arg)
{
    char hb[DSM_HANDLE_STRLEN];
    dsm_segment *seg;
    dsm_handle h;
    long i;
    int rc;

    if ((rc = parse_handle(s, arg, &h)) != 0)
        return rc < 0 ? rc : 0;
    dsm_handle_format(h, hb);
    if ((i = session_find(s, h)) < 0)
        return reply_error(s, "dynamic shared memory segment %s is not mapped in this session",
                           hb);
    seg = s->segs[i];
    s->segs[i] = s->segs[--s->nsegs];
    if (dsm_detach(seg) < 0)
        return reply_dsm_error(s); /* the mapping is gone all the same */
    return reply_ok(s, "detached %s", hb);
}

static int cmd_pin(struct session *s, const char *arg)
{
    dsm_resowner *owner = NULL, *prev = NULL;
    char hb[DSM_HANDLE_STRLEN], msg[1024];
    dsm_segment *seg;
    dsm_handle h;
    int rc;

    if ((rc = parse_handle(s, arg, &h)) != 0)
        return rc < 0 ? rc : 0;
    /* Pinning needs a mapping; borrow one for this command if the session has none. */
    if ((seg = dsm_find_mapping(h)) == NULL) {
        if (dsm_resowner_create(NULL, "pin", &owner) < 0)
            return reply_error(s, "out of memory");
        prev = dsm_resowner_set_current(owner);
        if (dsm_attach(h, &seg) < 0) {
            dsm_resowner_set_current(prev);
            dsm_resowner_delete(owner);
            return reply_dsm_error(s);
        }
    }
    rc = dsm_pin_segment(seg);
    dsm_error_line(msg, sizeof(msg)); /* only read if the pin failed */
    if (owner != NULL) {
        dsm_resowner_set_current(prev);
        if (rc == 0) {
            dsm_detach(seg);
            dsm_resowner_release(owner, true);
        }
        dsm_resowner_delete(owner); /* on failure this is what detaches */
    }
    if (rc < 0)
        return reply_error(s, "%s", msg);
    return reply_ok(s, "pinned %s", dsm_handle_format(h, hb));
}

static int cmd_unpin(struct session *s, const char *arg)
{
    char hb[DSM_HANDLE_STRLEN];
    dsm_handle h;
    int rc;

    if ((rc = parse_handle(s, arg, &h)) != 0)
        return rc < 0 ? rc : 0;
    if (dsm_unpin_segment(h) < 0)
        return reply_dsm_error(s);
    return reply_ok(s, "unpinned %s", dsm_handle_format(h, hb));
}

static int cmd_list(struct session *s)
{
    size_t size = 64 + s->nsegs * 64, off;
    char *text = malloc(size);
    int rc;

    if (text == NULL)
        return reply_error(s, "out of memory");
    if (s->nsegs == 0)
        off = (size_t)snprintf(text, size, "no mappings");
    else
        off = (size_t)snprintf(text, size, "%zu mapping%s:", s->nsegs, s->nsegs == 1 ? "" : "s");
    for (size_t i = 0; i < s->nsegs && off < size; i++) {
        char hb[DSM_HANDLE_STRLEN];
        const char *data;
        size_t len = 0;

        segment_text(s->segs[i], &data, &len);
        off += (size_t)snprintf(text + off, size - off, "%s %s (%zu bytes)", i ? "," : "",
                                dsm_handle_format(dsm_segment_handle(s->segs[i]), hb), len);
    }
    rc = demo_send_frame(&s->conn, DEMO_REPLY_OK, text, off < size ? off : size - 1);
    free(text);
    return rc;
}

static void cmd_crash(void) __attribute__((noreturn));
static void cmd_crash(void)
{
    struct rlimit no_core = {0, 0};

    /* A crash on request is a demonstration, not a bug worth a core file. */
    setrlimit(RLIMIT_CORE, &no_core);
    demo_log(DSM_LOG_INFO, "crash requested by the client: aborting");
    abort();
}

static int cmd_shutdown(struct session *s)
{
    int rc;

    /* Only our own supervisor, and only while it is still our parent. */
    if (getppid() != s->cfg->supervisor)
        return reply_error(s, "the supervisor is gone");
    /* Reply first: its SIGTERM to us would cut the reply short. */
    rc = reply_ok(s, "shutting down");
    kill(s->cfg->supervisor, SIGTERM);
    return rc < 0 ? rc : 1;
}

static int dispatch(struct session *s, int kind, uint32_t len)
{
    char arg[256];
    int rc;

    if (kind == DEMO_OP_CREATE)
        return cmd_create(s, len);
    if (len >= sizeof(arg)) {
        rc = demo_discard(&s->conn, len);
        return rc < 0 ? rc : reply_error(s, "request argument too long (%u bytes)", len);
    }
    if ((rc = demo_recv_all(&s->conn, arg, len)) < 0)
        return rc;
    arg[len] = '\0';
    switch (kind) {
    case DEMO_OP_READ:
        return cmd_read(s, arg);
    case DEMO_OP_DETACH:
        return cmd_detach(s, arg);
    case DEMO_OP_PIN:
        return cmd_pin(s, arg);
    case DEMO_OP_UNPIN:
        return cmd_unpin(s, arg);
    case DEMO_OP_LIST:
        return cmd_list(s);
    case DEMO_OP_CRASH:
        cmd_crash();
    case DEMO_OP_QUIT:
        /* Let go before answering: once the client has "bye", a segment
         * only this session held is gone, and its next step can rely on that. */
        while (s->nsegs > 0)
            dsm_detach(s->segs[--s->nsegs]);
        rc = reply_ok(s, "bye");
        return rc < 0 ? rc : 1;
    case DEMO_OP_SHUTDOWN:
        return cmd_shutdown(s);
    default:
        break;
    }
    return reply_error(s, "unknown request '%c'", kind);
}

/* ---- the session ------------------------------------------------------------ */

/*
 * Between requests, tell the client why its session ends.  Best effort and
 * never blocking: we are on our way out, and a client that does not read
 * must not keep us.
 */
static void say_goodbye(struct session *s, const char *why)
{
    unsigned char frame[DEMO_FRAME_HEADER + 64];
    size_t n = strlen(why);

    if (n > sizeof(frame) - DEMO_FRAME_HEADER)
        n = sizeof(frame) - DEMO_FRAME_HEADER;
    memset(frame, 0, DEMO_FRAME_HEADER);
    frame[0] = DEMO_REPLY_GOODBYE;
    frame[7] = (unsigned char)n;
    memcpy(frame + DEMO_FRAME_HEADER, why, n);
    if (send(s->conn.fd, frame, DEMO_FRAME_HEADER + n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        /* the client will see the connection close instead */
    }
}

static void end_session(struct session *s, int status) __attribute__((noreturn));
static void end_session(struct session *s, int status)
{
    /* Detaching here rather than leaving it to exit() keeps the order plain:
     * our mappings, then our registration, then the connection. */
    while (s->nsegs > 0)
        dsm_detach(s->segs[--s->nsegs]);
    free(s->segs);
    dsm_worker_exit();
    close(s->conn.fd);
    exit(status);
}

void demo_worker_main(int fd, const struct demo_worker_config *cfg)
{
    static struct session s;
    struct sigaction term = {.sa_handler = on_sigterm};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    char line[DEMO_HELLO_MAX];
    sigset_t blocked;
    int rc, init_rc;

    /* Must be the first dynshm call in the child: it forgets the supervisor's
     * mappings and registers this process as a worker. */
    init_rc = dsm_worker_init_after_fork();

    sigemptyset(&term.sa_mask);
    sigemptyset(&ign.sa_mask);
    sigaction(SIGTERM, &term, NULL);
    sigaction(SIGINT, &ign, NULL); /* ^C at the terminal is for the supervisor to handle */
    sigaction(SIGHUP, &ign, NULL);
    sigaction(SIGPIPE, &ign, NULL);
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigprocmask(SIG_SETMASK, &blocked, NULL); /* the fork left everything blocked */
    sigemptyset(&s.waitmask);
    s.conn = (struct demo_conn){
        .fd = fd, .waitmask = &s.waitmask, .watch_fd = cfg->watch_fd, .stop = &stop_requested};
    s.cfg = cfg;

    if (init_rc < 0) {
        snprintf(line, sizeof(line), DEMO_PROTO_NAME " error could not start a session: %s",
                 dsm_errmsg());
        demo_log(DSM_LOG_ERROR, "%s", line + sizeof(DEMO_PROTO_NAME " error"));
        demo_send_line(&s.conn, line);
        close(fd);
        exit(1);
    }
    snprintf(line, sizeof(line), DEMO_PROTO_NAME " ready %d", (int)getpid());
    if ((rc = demo_send_line(&s.conn, line)) == 0 &&
        (rc = demo_recv_line(&s.conn, line, sizeof(line))) == 0 &&
        strcmp(line, DEMO_PROTO_NAME) != 0) {
        reply_error(&s, "unsupported protocol \"%.64s\"; this server speaks " DEMO_PROTO_NAME,
                    line);
        end_session(&s, 1);
    }
    while (rc == 0) {
        int kind;
        uint32_t len;

        if ((rc = demo_recv_header(&s.conn, &kind, &len)) == 0)
            rc = dispatch(&s, kind, len);
        else if (rc == -EINTR || rc == -ECONNABORTED)
            say_goodbye(&s, rc == -EINTR ? "the server is shutting down"
                                         : "the supervisor is gone");
    }
    switch (rc) {
    case 1:        /* quit */
    case -EPIPE:   /* the client disconnected: a normal end, even mid-command */
    case -EINTR:   /* the supervisor asked us to finish */
        end_session(&s, 0);
    case -ECONNABORTED:
        demo_log(DSM_LOG_WARNING, "the supervisor is gone; ending the session");
        end_session(&s, 0);
    case -EPROTO:
        demo_log(DSM_LOG_WARNING, "the client broke the dsm_demo protocol; ending the session");
        end_session(&s, 1);
    default:
        demo_log(DSM_LOG_WARNING, "ending the session: %s", strerror(-rc));
        end_session(&s, 1);
    }
}
