/* SPDX-License-Identifier: MIT */
/*
 * dsm_demo.h - what the parts of dsm_demo need from each other.
 *
 * dsm_demo is a small real server built only on dynshm's public API: a
 * supervisor (server.c) owns the data directory and forks one worker
 * (worker.c) per client session; the client (client.c) relays commands
 * over a Unix socket (protocol.c).  main.c parses the command line.
 */
#ifndef DSM_DEMO_H
#define DSM_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <dynshm/dynshm.h>

/* Files in the data directory (the library adds its own next to them). */
#define DEMO_SOCKET_NAME "dsm_demo.sock"
#define DEMO_PID_NAME "dsm_demo.pid"
#define DEMO_LOG_NAME "dsm_demo.log"
#define DEMO_CONF_NAME "dsm_demo.conf"

/* ---- log.c: PostgreSQL-style log lines on standard error ---------------- */

/* Our own level above the library's: the server cannot go on. */
#define DEMO_LOG_FATAL ((dsm_log_level)(DSM_LOG_ERROR + 1))

/* Install the library's log hook and set the threshold for both. */
void demo_log_init(dsm_log_level min_level);
void demo_log(dsm_log_level level, const char *fmt, ...) DSM_PRINTF(2, 3);

/* ---- server.c: the supervisor -------------------------------------------- */

/* Define dsm_demo's own settings (max_connections, ...) next to dynshm's. */
int demo_define_settings(dsm_settings *s);
/* Run the supervisor; returns the process exit status. */
int demo_server_main(const char *datadir, dsm_settings *settings, bool daemonize);

/* ---- worker.c: one session in a forked worker ----------------------------- */

struct demo_worker_config {
    pid_t supervisor;   /* the only process a SHUTDOWN request may signal */
    int watch_fd;       /* read end of the supervisor-death pipe */
    size_t max_payload; /* largest create accepted, in bytes */
};

/* Serve the client on fd until it quits or disconnects; never returns. */
void demo_worker_main(int fd, const struct demo_worker_config *cfg)
    __attribute__((noreturn));

/* ---- client.c: the session and one-shot clients --------------------------- */

int demo_client_session(const char *datadir);
int demo_client_create(const char *datadir, const char *text, const char *file, bool pin);
int demo_client_read(const char *datadir, const char *handle, const char *outfile);
int demo_client_unpin(const char *datadir, const char *handle);
int demo_client_stop(const char *datadir, int timeout_s);

/* ---- shared helpers ---------------------------------------------------------- */

/* "<datadir>/<name>" into buf; -ENAMETOOLONG if it does not fit. */
int demo_path(char *buf, size_t size, const char *datadir, const char *name);

#endif /* DSM_DEMO_H */
