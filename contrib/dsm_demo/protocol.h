/* SPDX-License-Identifier: MIT */
/*
 * protocol.h - the wire protocol between a dsm_demo client and its worker.
 *
 * A connection starts with one hello line in each direction, so that a
 * client can tell a dsm_demo server (and its protocol version) from any
 * other program listening on the socket, and so that the supervisor can
 * refuse a connection with a readable reason before any worker exists:
 *
 *   server -> client   "dsm_demo/1 ready <worker pid>\n"
 *                   or "dsm_demo/1 error <message>\n"  (then it closes)
 *   client -> server   "dsm_demo/1\n"
 *
 * After that everything is a frame: an 8-byte header, then `length`
 * bytes of payload, which may hold anything (binary-safe):
 *
 *   byte 0      kind: a request (DEMO_OP_*) or a reply (DEMO_REPLY_*)
 *   bytes 1-3   zero (reserved; a frame with anything else is refused)
 *   bytes 4-7   payload length, unsigned, big-endian, <= DEMO_MAX_FRAME
 *
 * Every request gets exactly one reply, except CRASH (the worker aborts
 * instead) and requests after which the worker ends the session (QUIT,
 * SHUTDOWN), which get their reply before the connection closes.  A worker
 * told to stop while it waits for a request sends GOODBYE, if the socket
 * takes it at once, so the client can say why its session ended.
 */
#ifndef DSM_DEMO_PROTOCOL_H
#define DSM_DEMO_PROTOCOL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define DEMO_PROTO_NAME "dsm_demo/1"
#define DEMO_HELLO_MAX 512
/* The largest payload the wire carries; servers may set a lower limit. */
#define DEMO_MAX_FRAME ((uint32_t)1 << 30)
#define DEMO_FRAME_HEADER 8

/* Kinds are printable letters so a hex dump of a session is readable. */
enum demo_kind {
    DEMO_OP_CREATE = 'C',   /* payload: the bytes to store; reply: the handle */
    DEMO_OP_READ = 'R',     /* payload: handle text; reply: the stored bytes */
    DEMO_OP_DETACH = 'D',   /* payload: handle text */
    DEMO_OP_PIN = 'P',      /* payload: handle text */
    DEMO_OP_UNPIN = 'U',    /* payload: handle text */
    DEMO_OP_LIST = 'L',     /* reply: one line describing this session's mappings */
    DEMO_OP_CRASH = 'X',    /* no reply: the worker calls abort() */
    DEMO_OP_QUIT = 'Q',     /* reply, then the session ends */
    DEMO_OP_SHUTDOWN = 'S', /* reply, then the worker asks the supervisor to stop */
    DEMO_REPLY_OK = 'K',    /* payload: result text or bytes */
    DEMO_REPLY_ERROR = 'E', /* payload: the error message */
    DEMO_REPLY_GOODBYE = 'G' /* sent unasked by a worker that is ending the session,
                                in place of the next reply; payload: why */
};

/*
 * One end of a connection.  A client blocks in plain send/recv.  A worker
 * sets waitmask (the signal mask to wait with; SIGTERM is blocked
 * everywhere else) so that a stop request interrupts only a wait, never a
 * half-done library call, and watch_fd (the supervisor-death pipe).
 */
struct demo_conn {
    int fd;
    const sigset_t *waitmask;           /* NULL: plain blocking I/O */
    int watch_fd;                       /* -1, or readable/hung up = give up */
    volatile sig_atomic_t *stop;        /* non-zero = give up at the next wait */
};

/*
 * All functions return 0 or a negative errno value:
 *   -EPIPE         the peer closed the connection (also on a short read)
 *   -EINTR         a worker was asked to stop (*stop was set)
 *   -ECONNABORTED  a worker's supervisor is gone (watch_fd fired)
 *   -EPROTO        the peer sent something that is not our protocol
 *   other          a system call failed
 */
int demo_send_all(struct demo_conn *c, const void *buf, size_t len);
int demo_recv_all(struct demo_conn *c, void *buf, size_t len);
int demo_discard(struct demo_conn *c, size_t len);

int demo_send_line(struct demo_conn *c, const char *line);
/* Reads up to and excluding '\n' into buf (NUL-terminated); -EPROTO if too long. */
int demo_recv_line(struct demo_conn *c, char *buf, size_t size);

int demo_send_header(struct demo_conn *c, int kind, size_t len);
int demo_recv_header(struct demo_conn *c, int *kind, uint32_t *len);
/* Header and payload in one call. */
int demo_send_frame(struct demo_conn *c, int kind, const void *payload, size_t len);

#endif /* DSM_DEMO_PROTOCOL_H */
