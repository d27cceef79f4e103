/* SPDX-License-Identifier: MIT */
/*
 * session.c - the client front ends: a session driven from standard input,
 * the one-shot forms (create, read, unpin) and stop.
 *
 * A session answers every command with exactly one line on standard output
 * (an `ERROR: ...` line when it fails) and flushes it at once, so a script
 * can drive a session through a pipe or FIFO and read one answer per
 * command.  The one-shot forms are one-command sessions that print the
 * answer on standard output and any error on standard error, for the shell.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

/* ---- the session ------------------------------------------------------------------ */

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    return s;
}

/* Split off the next word of *s (NULL at the end). */
static char *next_word(char **s)
{
    char *w = *s, *e;

    while (*w == ' ' || *w == '\t')
        w++;
    if (*w == '\0')
        return NULL;
    for (e = w; *e && *e != ' ' && *e != '\t'; e++)
        ;
    if (*e)
        *e++ = '\0';
    *s = e;
    return w;
}

#define COMMANDS "create TEXT, create --file PATH, read HANDLE [--file OUT], detach HANDLE, " \
                 "pin HANDLE, unpin HANDLE, list, crash, quit"

/* One command line; *done is set when the session is over afterwards. */
static int run_command(struct demo_conn *c, char *line, struct result *r, bool *done)
{
    char *cmd, *rest = line, *arg, *extra;

    cmd = next_word(&rest);
    if (strcmp(cmd, "create") == 0) {
        /* TEXT is the rest of the line exactly, inner spaces and all. */
        if (*rest == ' ' || *rest == '\t')
            rest++;
        if (strncmp(rest, "--file", 6) == 0 && (rest[6] == ' ' || rest[6] == '\t')) {
            arg = trim(rest + 7);
            if (*arg == '\0')
                return set_result(r, CMD_FAILED, "usage: create --file PATH");
            return run_create_file(c, arg, r);
        }
        if (*rest == '\0')
            return set_result(r, CMD_FAILED, "usage: create TEXT, or create --file PATH");
        return run_create_text(c, rest, r);
    }
    if (strcmp(cmd, "list") == 0 || strcmp(cmd, "quit") == 0 || strcmp(cmd, "crash") == 0) {
        if (next_word(&rest) != NULL)
            return set_result(r, CMD_FAILED, "%s takes no argument", cmd);
        if (cmd[0] == 'l')
            return run_simple(c, DEMO_OP_LIST, "", r);
        *done = true;
        if (cmd[0] == 'q')
            return finish(c, r);
        /* The session ending is what was asked for: an answer, not an error. */
        return run_crash(c, r) == CMD_LOST ? CMD_OK : CMD_FAILED;
    }
    arg = next_word(&rest);
    if (strcmp(cmd, "read") == 0) {
        const char *outfile = NULL;

        extra = next_word(&rest);
        if (extra != NULL && strcmp(extra, "--file") == 0) {
            outfile = next_word(&rest);
            extra = outfile == NULL ? "--file" : next_word(&rest);
        }
        if (arg == NULL || extra != NULL)
            return set_result(r, CMD_FAILED, "usage: read HANDLE [--file OUT]");
        return run_read(c, arg, outfile, r);
    }
    if (strcmp(cmd, "detach") == 0 || strcmp(cmd, "pin") == 0 || strcmp(cmd, "unpin") == 0) {
        int op = cmd[0] == 'd' ? DEMO_OP_DETACH : cmd[0] == 'p' ? DEMO_OP_PIN : DEMO_OP_UNPIN;

        if (arg == NULL || next_word(&rest) != NULL)
            return set_result(r, CMD_FAILED, "usage: %s HANDLE", cmd);
        return run_simple(c, op, arg, r);
    }
    return set_result(r, CMD_FAILED, "unknown command \"%s\" (commands: " COMMANDS ")", cmd);
}

int demo_client_session(const char *datadir)
{
    struct demo_conn c;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool done = false;
    int failures = 0;

    if (client_connect(datadir, &c, false) < 0)
        return 1;
    while (!done && (n = getline(&line, &cap, stdin)) >= 0) {
        struct result r;
        char *cmd;
        int rc;

        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        cmd = line;
        while (*cmd == ' ' || *cmd == '\t')
            cmd++;
        if (*cmd == '\0' || *cmd == '#')
            continue; /* blank lines and comments get no answer */
        rc = run_command(&c, cmd, &r, &done);
        if (rc == CMD_OK) {
            if (r.text[0] != '\0')
                printf("%s\n", r.text);
        } else {
            printf("ERROR: %s\n", r.text);
            failures++;
            if (rc == CMD_LOST)
                done = true;
        }
        fflush(stdout);
    }
    free(line);
    if (c.fd >= 0) {
        if (!done) /* end of input: like quit */
            finish_quietly(&c);
        else
            close(c.fd);
    }
    return failures == 0 ? 0 : 1;
}

/* ---- the one-shot forms ------------------------------------------------------------ */

int demo_client_create(const char *datadir, const char *text, const char *file, bool pin)
{
    char handle[sizeof(((struct result *)0)->text)];
    struct demo_conn c;
    struct result r;
    int rc;

    if (client_connect(datadir, &c, false) < 0)
        return 1;
    rc = file ? run_create_file(&c, file, &r) : run_create_text(&c, text, &r);
    if (rc == CMD_OK) {
        snprintf(handle, sizeof(handle), "%s", r.text);
        if (pin)
            rc = run_simple(&c, DEMO_OP_PIN, handle, &r);
    }
    if (rc != CMD_OK) {
        fprintf(stderr, "dsm_demo: %s\n", r.text);
        if (rc == CMD_FAILED)
            finish_quietly(&c);
        else
            close(c.fd);
        return 1;
    }
    if (!pin)
        fprintf(stderr, "dsm_demo: warning: segment %s belongs to this one-shot session and "
                        "is destroyed when it ends, now; use --pin to keep it\n", handle);
    finish_quietly(&c);
    printf("%s\n", handle);
    return 0;
}

static int one_shot(const char *datadir, int op, const char *handle, const char *outfile)
{
    struct demo_conn c;
    struct result r;
    int rc;

    if (client_connect(datadir, &c, false) < 0)
        return 1;
    rc = op == DEMO_OP_READ ? run_read(&c, handle, outfile, &r) : run_simple(&c, op, handle, &r);
    if (rc == CMD_OK && r.text[0] != '\0')
        printf("%s\n", r.text);
    else if (rc != CMD_OK)
        fprintf(stderr, "dsm_demo: %s\n", r.text);
    if (rc != CMD_LOST)
        finish_quietly(&c);
    else
        close(c.fd);
    return rc == CMD_OK ? 0 : 1;
}

int demo_client_read(const char *datadir, const char *handle, const char *outfile)
{
    return one_shot(datadir, DEMO_OP_READ, handle, outfile);
}

int demo_client_unpin(const char *datadir, const char *handle)
{
    return one_shot(datadir, DEMO_OP_UNPIN, handle, NULL);
}

/* ---- stop ------------------------------------------------------------------------------ */

/*
 * A full server has no worker to take our request: signal the supervisor
 * instead.  Its pid file can be trusted here, because it has just answered
 * us, and every server rewrites the file when it starts.
 */
static int signal_supervisor(const char *datadir)
{
    char path[4096], buf[32];
    ssize_t n = -1;
    long pid = 0;
    int fd;

    if (demo_path(path, sizeof(path), datadir, DEMO_PID_NAME) == 0 &&
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
    }
    if (n > 0) {
        buf[n] = '\0';
        pid = strtol(buf, NULL, 10);
    }
    if (pid <= 1 || kill((pid_t)pid, SIGTERM) != 0) {
        fprintf(stderr, "dsm_demo: the server on %s is full and could not be signalled "
                        "through \"%s\"\n", datadir, path);
        return -1;
    }
    return 0;
}

int demo_client_stop(const char *datadir, int timeout_s)
{
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct timespec tick = {0, 20L * 1000 * 1000};
    struct demo_conn c;
    struct result r;
    char ch;
    int rc;

    if ((rc = client_connect(datadir, &c, true)) == -1)
        return 1;
    demo_path(sock, sizeof(sock), datadir, DEMO_SOCKET_NAME); /* fitted in connect */
    if (rc == -2) {
        if (signal_supervisor(datadir) < 0)
            return 1;
    } else {
        rc = run_simple(&c, DEMO_OP_SHUTDOWN, "", &r);
        if (rc == CMD_FAILED) {
            fprintf(stderr, "dsm_demo: %s\n", r.text);
            finish_quietly(&c);
            return 1;
        }
        while (rc == CMD_OK && demo_recv_all(&c, &ch, 1) == 0)
            ;
        close(c.fd);
    }
    /* The supervisor removes its socket last, after every segment is destroyed. */
    for (long waited = 0; waited <= (long)timeout_s * 1000; waited += 20) {
        if (access(sock, F_OK) != 0 && errno == ENOENT) {
            printf("server stopped\n");
            return 0;
        }
        nanosleep(&tick, NULL);
    }
    fprintf(stderr, "dsm_demo: the server on %s did not shut down within %d seconds\n", datadir,
            timeout_s);
    return 1;
}
