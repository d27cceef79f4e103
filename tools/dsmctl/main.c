/* SPDX-License-Identifier: MIT */
/*
 * main.c - dsmctl's command line: parse it and run one command.
 *
 * dsmctl is the operator's view of a dynshm instance, for the questions no
 * shared memory user could answer before: which segments does this server
 * hold, who holds them, and what did a server that was killed leave behind?
 * It reads the control segment the way a worker does, but never registers
 * with it, and it changes nothing except in `gc`, which runs only when the
 * data directory lock proves the instance dead.
 */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dsmctl.h"

int dsmctl_inspect(const char *datadir, dsm_inspection **insp, dsm_instance_info *info)
{
    struct stat st;

    if (stat(datadir, &st) != 0) {
        if (errno == ENOENT)
            dsmctl_error("data directory \"%s\" does not exist", datadir);
        else
            dsmctl_error("could not access data directory \"%s\": %s", datadir,
                         strerror(errno));
        return DSMCTL_EXIT_FAIL;
    }
    if (!S_ISDIR(st.st_mode)) {
        dsmctl_error("\"%s\" is not a directory", datadir);
        return DSMCTL_EXIT_FAIL;
    }
    if (dsm_inspect_open(datadir, DSMCTL_LOCK_TIMEOUT_MS, insp) < 0) {
        dsmctl_error("%s", dsm_errmsg());
        return DSMCTL_EXIT_FAIL;
    }
    dsm_inspect_instance(*insp, info, sizeof(*info));
    if (info->state == DSM_INSTANCE_NONE) {
        dsmctl_error("\"%s\" is not a dynshm data directory: it has no dynshm.state and no "
                     "dynshm.lock (no supervisor ever ran there)", datadir);
        goto fail;
    }
    /* No permission is an error of the directory, not a sign of a damaged instance. */
    if (info->state_status == -EACCES || info->state_status == -EPERM) {
        dsmctl_error("%s", info->message);
        goto fail;
    }
    return 0;
fail:
    dsm_inspect_close(*insp);
    *insp = NULL;
    return DSMCTL_EXIT_FAIL;
}

void dsmctl_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("dsmctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *f)
{
    fprintf(f,
            "dsmctl - inspect dynshm dynamic shared memory, and clean up after a dead instance\n"
            "\n"
            "Usage:\n"
            "  dsmctl -D DIR status           is a supervisor running; capacity, use, totals\n"
            "  dsmctl -D DIR list [--json]    every live segment: handle, name, size, state,\n"
            "                                 references, pin, holders, age\n"
            "  dsmctl -D DIR gc [--dry-run]   remove what a dead instance left behind\n"
            "  dsmctl --help | --version\n"
            "\n"
            "Options:\n"
            "  -D, --datadir=DIR  the supervisor's data directory\n"
            "  --json             list: one JSON document instead of a table\n"
            "  -n, --dry-run      gc: list exactly what would be removed; remove nothing\n"
            "\n"
            "Exit status: 0 success (status: a supervisor is running), 1 error, 2 usage error,\n"
            "3 status: no supervisor is running, 4 gc: refused because the instance is alive.\n"
            "See dsmctl(1).\n");
}

static int bad_usage(const char *fmt, ...) DSM_PRINTF(1, 2);
static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("dsmctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry \"dsmctl --help\" for more information.\n", stderr);
    return DSMCTL_EXIT_USAGE;
}

/* Warnings the library reports while we work (a recovered lock, a segment left in place). */
static void log_hook(dsm_log_level level, const char *message, void *arg)
{
    (void)arg;
    dsmctl_error("%s: %s", level >= DSM_LOG_ERROR ? "ERROR" : "WARNING", message);
}

int main(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_HELP, OPT_VERSION };
    static const struct option longopts[] = {
        {"datadir", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct dsmctl_options o = {0};
    const char *command;
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":D:n", longopts, NULL)) != -1) {
        switch (c) {
        case 'D': o.datadir = optarg; break;
        case 'n': o.dry_run = true; break;
        case OPT_JSON: o.json = true; break;
        case OPT_HELP: usage(stdout); return DSMCTL_EXIT_OK;
        case OPT_VERSION: printf("dsmctl (dynshm) %s\n", PACKAGE_VERSION); return DSMCTL_EXIT_OK;
        case ':': return bad_usage("option -D (--datadir) requires a value");
        default:
            if (optopt != 0)
                return bad_usage("unknown option \"-%c\"", optopt);
            return bad_usage("unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return bad_usage("no command given (status, list or gc)");
    command = argv[optind];
    if (optind + 1 < argc)
        return bad_usage("unexpected argument \"%s\"", argv[optind + 1]);
    if (strcmp(command, "status") != 0 && strcmp(command, "list") != 0 &&
        strcmp(command, "gc") != 0)
        return bad_usage("unknown command \"%s\" (status, list or gc)", command);
    if (o.datadir == NULL || o.datadir[0] == '\0')
        return bad_usage("no data directory given (-D DIR)");
    if (o.json && strcmp(command, "list") != 0)
        return bad_usage("--json applies to list only");
    if (o.dry_run && strcmp(command, "gc") != 0)
        return bad_usage("--dry-run applies to gc only");

    dsm_set_log_hook(log_hook, NULL, DSM_LOG_WARNING);
    if (strcmp(command, "status") == 0)
        rc = dsmctl_status(&o);
    else if (strcmp(command, "list") == 0)
        rc = dsmctl_list(&o);
    else
        rc = dsmctl_gc(&o);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        dsmctl_error("could not write to standard output");
        rc = DSMCTL_EXIT_FAIL;
    }
    return rc;
}
