/* SPDX-License-Identifier: MIT */
/*
 * main.c - dsm_demo's command line: parse it, build the settings, and hand
 * over to the server or a client.
 *
 * dsm_demo is PostgreSQL's contrib/dsm_demo without the SQL: one program
 * that is both a small multi-process server built on dynshm's public API
 * and its client.  Settings are parsed here, before the server starts, so
 * that a bad value is refused with the settings module's own message
 * (naming the setting, the value and what is allowed) before anything
 * touches the data directory.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsm_demo.h"

#define MAX_OPTIONS 256

struct args {
    const char *command;
    const char *datadir;
    const char *file;
    const char *options[MAX_OPTIONS]; /* -c name=value, in order */
    int noptions;
    bool daemon, pin;
    int timeout_s;
    const char *words[MAX_OPTIONS]; /* everything else */
    int nwords;
};

int demo_path(char *buf, size_t size, const char *datadir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", datadir, name);

    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "dsm_demo - a small server and client built on dynshm's dynamic shared memory\n"
            "\n"
            "Usage:\n"
            "  dsm_demo server -D DIR [-c name=value]... [--daemon]\n"
            "  dsm_demo stop -D DIR [-t SECONDS]\n"
            "  dsm_demo session -D DIR      (commands on standard input, one per line)\n"
            "  dsm_demo create -D DIR [--pin] TEXT...\n"
            "  dsm_demo create -D DIR [--pin] --file PATH\n"
            "  dsm_demo read -D DIR HANDLE [--file OUT]\n"
            "  dsm_demo unpin -D DIR HANDLE\n"
            "\n"
            "Session commands: create TEXT, create --file PATH, read HANDLE [--file OUT],\n"
            "detach HANDLE, pin HANDLE, unpin HANDLE, list, crash, quit.\n"
            "-D defaults to $DSM_DEMO_DIR.  Settings also come from DIR/" DEMO_CONF_NAME ".\n"
            "See dsm_demo(1).\n");
}

static int bad_usage(const char *fmt, ...) DSM_PRINTF(1, 2);
static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "dsm_demo: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry \"dsm_demo --help\" for more information.\n");
    return 2;
}

/* The value of an option given as "-X value" or "-Xvalue"; NULL if missing. */
static const char *option_value(int argc, char **argv, int *i, const char *opt)
{
    size_t n = strlen(opt);

    if (argv[*i][n] != '\0')
        return argv[*i] + n;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int parse_args(int argc, char **argv, struct args *a)
{
    bool options_done = false;

    a->command = argv[1];
    a->timeout_s = 60;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *v;

        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            if (a->nwords == MAX_OPTIONS)
                return bad_usage("too many arguments");
            a->words[a->nwords++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (strncmp(arg, "-D", 2) == 0) {
            if ((a->datadir = option_value(argc, argv, &i, "-D")) == NULL)
                return bad_usage("option -D needs a directory");
        } else if (strncmp(arg, "-c", 2) == 0) {
            if ((v = option_value(argc, argv, &i, "-c")) == NULL)
                return bad_usage("option -c needs name=value");
            if (a->noptions == MAX_OPTIONS)
                return bad_usage("too many -c options");
            a->options[a->noptions++] = v;
        } else if (strncmp(arg, "-t", 2) == 0) {
            char *end;

            if ((v = option_value(argc, argv, &i, "-t")) == NULL)
                return bad_usage("option -t needs a number of seconds");
            a->timeout_s = (int)strtol(v, &end, 10);
            if (*end != '\0' || a->timeout_s < 0 || a->timeout_s > 86400)
                return bad_usage("invalid timeout \"%s\" (seconds, 0 .. 86400)", v);
        } else if (strcmp(arg, "--file") == 0) {
            if (i + 1 >= argc)
                return bad_usage("option --file needs a path");
            a->file = argv[++i];
        } else if (strcmp(arg, "--daemon") == 0) {
            a->daemon = true;
        } else if (strcmp(arg, "--pin") == 0) {
            a->pin = true;
        } else {
            return bad_usage("unknown option \"%s\"", arg);
        }
    }
    if (a->datadir == NULL)
        a->datadir = getenv("DSM_DEMO_DIR");
    if (a->datadir == NULL || a->datadir[0] == '\0')
        return bad_usage("no data directory given (use -D DIR or set DSM_DEMO_DIR)");
    return 0;
}

/* Each command accepts only its own options. */
static int check_options(const struct args *a, bool c_ok, bool daemon_ok, bool pin_ok,
                         bool file_ok, bool t_ok)
{
    if (a->noptions && !c_ok)
        return bad_usage("option -c is only for \"server\"");
    if (a->daemon && !daemon_ok)
        return bad_usage("option --daemon is only for \"server\"");
    if (a->pin && !pin_ok)
        return bad_usage("option --pin is only for \"create\"");
    if (a->file && !file_ok)
        return bad_usage("option --file is only for \"create\" and \"read\"");
    if (a->timeout_s != 60 && !t_ok)
        return bad_usage("option -t is only for \"stop\"");
    return 0;
}

static int run_server(const struct args *a)
{
    char conf[4096];
    dsm_settings *s;
    int rc;

    if (a->nwords > 0)
        return bad_usage("unexpected argument \"%s\"", a->words[0]);
    if (dsm_settings_new(&s) < 0 || demo_define_settings(s) < 0) {
        fprintf(stderr, "dsm_demo: %s\n", dsm_errmsg());
        dsm_settings_free(s);
        return 1;
    }
    if (demo_path(conf, sizeof(conf), a->datadir, DEMO_CONF_NAME) < 0) {
        fprintf(stderr, "dsm_demo: data directory path \"%s\" is too long\n", a->datadir);
        dsm_settings_free(s);
        return 1;
    }
    rc = dsm_settings_load_file(s, conf);
    if (rc < 0 && rc != -ENOENT) {
        fprintf(stderr, "dsm_demo: %s\n", dsm_errmsg());
        dsm_settings_free(s);
        return 1;
    }
    for (int i = 0; i < a->noptions; i++) {
        if (dsm_settings_parse_option(s, a->options[i]) < 0) {
            fprintf(stderr, "dsm_demo: %s\n", dsm_errmsg());
            dsm_settings_free(s);
            return 1;
        }
    }
    rc = demo_server_main(a->datadir, s, a->daemon);
    dsm_settings_free(s);
    return rc;
}

/* TEXT... joined with single spaces, as echo would print it. */
static char *join_words(const struct args *a)
{
    size_t len = 1;
    char *text;

    for (int i = 0; i < a->nwords; i++)
        len += strlen(a->words[i]) + 1;
    text = malloc(len);
    if (text == NULL)
        return NULL;
    for (int i = 0, at = 0; i < a->nwords; i++) /* len counted every byte written */
        at += snprintf(text + at, len - (size_t)at, "%s%s", i > 0 ? " " : "", a->words[i]);
    if (a->nwords == 0)
        text[0] = '\0';
    return text;
}

static int run_create(const struct args *a)
{
    char *text;
    int rc;

    if (a->file != NULL) {
        if (a->nwords > 0)
            return bad_usage("give either TEXT or --file PATH, not both");
        return demo_client_create(a->datadir, NULL, a->file, a->pin);
    }
    if (a->nwords == 0)
        return bad_usage("create needs TEXT or --file PATH");
    if ((text = join_words(a)) == NULL) {
        fprintf(stderr, "dsm_demo: out of memory\n");
        return 1;
    }
    rc = demo_client_create(a->datadir, text, NULL, a->pin);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    const char *cmd;
    int rc;

    if (argc < 2)
        return bad_usage("no command given");
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("dsm_demo (dynshm) " PACKAGE_VERSION "\n");
        return 0;
    }
    if ((rc = parse_args(argc, argv, &a)) != 0)
        return rc;

    if (strcmp(cmd, "server") == 0) {
        if ((rc = check_options(&a, true, true, false, false, false)) != 0)
            return rc;
        return run_server(&a);
    }
    if (strcmp(cmd, "stop") == 0) {
        if ((rc = check_options(&a, false, false, false, false, true)) != 0)
            return rc;
        if (a.nwords > 0)
            return bad_usage("unexpected argument \"%s\"", a.words[0]);
        return demo_client_stop(a.datadir, a.timeout_s);
    }
    if (strcmp(cmd, "session") == 0) {
        if ((rc = check_options(&a, false, false, false, false, false)) != 0)
            return rc;
        if (a.nwords > 0)
            return bad_usage("unexpected argument \"%s\" (session reads commands from "
                             "standard input)", a.words[0]);
        return demo_client_session(a.datadir);
    }
    if (strcmp(cmd, "create") == 0) {
        if ((rc = check_options(&a, false, false, true, true, false)) != 0)
            return rc;
        return run_create(&a);
    }
    if (strcmp(cmd, "read") == 0 || strcmp(cmd, "unpin") == 0) {
        bool is_read = cmd[0] == 'r';

        if ((rc = check_options(&a, false, false, false, is_read, false)) != 0)
            return rc;
        if (a.nwords != 1)
            return bad_usage("usage: dsm_demo %s -D DIR HANDLE%s", cmd,
                             is_read ? " [--file OUT]" : "");
        return is_read ? demo_client_read(a.datadir, a.words[0], a.file)
                       : demo_client_unpin(a.datadir, a.words[0]);
    }
    return bad_usage("unknown command \"%s\"", cmd);
}
