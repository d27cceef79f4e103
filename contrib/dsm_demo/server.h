/* SPDX-License-Identifier: MIT */
/*
 * server.h - the supervisor's state, shared by its start-up and shut-down
 * (server.c) and its main loop over workers and signals (supervise.c).
 */
#ifndef DSM_DEMO_SERVER_H
#define DSM_DEMO_SERVER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "dsm_demo.h"

struct server {
    char datadir[PATH_MAX];
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char pid_path[PATH_MAX];
    int listen_fd;   /* -1 once we stop accepting */
    int alive_r;     /* supervisor-death pipe: workers keep the read end ... */
    int alive_w;     /* ... and only the supervisor holds the write end */
    int notify_fd;   /* --daemon: tells the waiting parent how start-up went */
    pid_t *workers;  /* live workers, unordered */
    int nworkers;
    int max_workers;
    size_t max_payload;
    int64_t shutdown_timeout_ms;
    bool log_connections;
    bool dsm_started;
};

/* Create the self-pipe and install the supervisor's signal handlers. */
int demo_signals_init(void);
void demo_signals_close(void);

/*
 * Accept sessions and reap workers until a stop signal arrives; returns
 * that signal, or -1 if the server cannot go on (a crash reset failed).
 */
int demo_serve(struct server *srv);

/* Stop accepting, end every session, destroy every segment; the exit status. */
int demo_shut_down(struct server *srv);

#endif /* DSM_DEMO_SERVER_H */
