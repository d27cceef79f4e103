/* SPDX-License-Identifier: MIT */
/*
 * client.h - requests and replies as the client front ends use them
 * (client.c implements them; session.c is the session loop, the one-shot
 * forms and stop).
 */
#ifndef DSM_DEMO_CLIENT_H
#define DSM_DEMO_CLIENT_H

#include <stdbool.h>

#include "dsm_demo.h"
#include "protocol.h"

/* Outcome of one command: the answer line, or the error message. */
struct result {
    char text[4096];
};

/* What every request function returns. */
enum {
    CMD_OK = 0,     /* r holds the answer (empty if it was printed already) */
    CMD_FAILED = 1, /* r holds the error; the session goes on */
    CMD_LOST = -1   /* r holds why the connection is gone; the session is over */
};

int set_result(struct result *r, int rc, const char *fmt, ...) DSM_PRINTF(3, 4);

/*
 * Connect and exchange hellos.  Returns 0, or -1 after saying why not on
 * standard error; or, with refused_ok, -2 without a word when the server
 * refused the session (it is full).
 */
int client_connect(const char *datadir, struct demo_conn *c, bool refused_ok);

/* A request with a text argument (DEMO_OP_DETACH, PIN, UNPIN, LIST, ...). */
int run_simple(struct demo_conn *c, int op, const char *arg, struct result *r);
int run_create_text(struct demo_conn *c, const char *text, struct result *r);
int run_create_file(struct demo_conn *c, const char *path, struct result *r);
/* Without outfile the text is printed here, as one escaped line, and r is left empty. */
int run_read(struct demo_conn *c, const char *handle, const char *outfile, struct result *r);
/* Send CRASH; CMD_LOST (r says so) is the expected outcome. */
int run_crash(struct demo_conn *c, struct result *r);

/* End the session and wait until the worker has let go of everything; closes c. */
int finish(struct demo_conn *c, struct result *r);
void finish_quietly(struct demo_conn *c);

#endif /* DSM_DEMO_CLIENT_H */
