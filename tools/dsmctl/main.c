/* SPDX-License-Identifier: MIT */
/*
 * main.c - dsmctl's command line: parse it and run one command.
 *
 * dsmctl is the operator's view of a dynshm instance, for the questions no
 * shared memory user could answer before: which segments does this server
 * hold, who holds them, and what did a server that was killed leave behind?
 * It reads the control segment the way a worker does, but never registers
 * with it, and it changes nothing except in `gc`, which runs only when the
 * data directory lock proves the instance dead, and in `unpin`, which goes
 * through the running instance's own rules (see unpin.c).
 *
 * Every command speaks --json, one document with a "format_version" key:
 * within a major version keys are added, never renamed or removed, so a
 * script keeps working.  Exit codes are as stable (dsmctl.h).
 */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
        dsmctl_dsm_error();
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

void dsmctl_dsm_error(void)
{
    dsmctl_error("%s", dsm_errmsg());
    if (*dsm_errdetail())
        fprintf(stderr, "DETAIL: %s\n", dsm_errdetail());
    if (*dsm_errhint())
        fprintf(stderr, "HINT: %s\n", dsm_errhint());
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
            "  dsmctl -D DIR status [-w SECONDS [--count N]]\n"
            "                      running or not; capacity, use, counters, host limits;\n"
            "                      with -w: rates (creates/s, bytes/s) every SECONDS\n"
            "  dsmctl -D DIR list  every segment: handle, state, size, references, pin,\n"
            "                      holders, age, name (filters and --sort below)\n"
            "  dsmctl -D DIR procs every registered process: pid, start time, kind,\n"
            "                      references, bytes mapped\n"
            "  dsmctl -D DIR gc [--dry-run]   remove what a dead instance left behind\n"
            "  dsmctl -D DIR unpin HANDLE     drop a leaked pin, through the running instance\n"
            "  dsmctl -D DIR names            the registry's names (segments, areas, tables)\n"
            "  dsmctl [-D DIR]... scan [--all] every dynshm object on the host: whose it is,\n"
            "                      or an orphan and how to remove it\n"
            "  dsmctl --help | --version\n"
            "\n"
            "Options:\n"
            "  -D, --datadir=DIR     the supervisor's data directory (scan: may repeat)\n"
            "  --json                one JSON document (watch: one per line), with\n"
            "                        \"format_version\"\n"
            "  -h, --human           sizes in KiB, MiB, GiB\n"
            "  --sort=size|age|refs  list, procs: largest, oldest or most referenced first\n"
            "  --pinned              list: pinned segments only\n"
            "  --pid=PID             list: segments PID holds; procs: that process only\n"
            "  --older-than=DURATION list: created longer ago than DURATION (90s, 10m, 2h, 1d)\n"
            "  --min-size=SIZE       list: at least SIZE bytes (64k, 1MB, 2GiB)\n"
            "  --namespace=NAME      list: segments of namespace NAME (\"default\" until\n"
            "                        namespaces exist)\n"
            "  -w, --watch=SECONDS   status: print rates every SECONDS\n"
            "  --count=N             status -w: stop after N lines\n"
            "  --all                 scan: also System V segments nothing claims\n"
            "  -n, --dry-run         gc: list exactly what would be removed; remove nothing\n"
            "\n"
            "Exit status: 0 success (status: running), 1 error, 2 usage error,\n"
            "3 not running (status: shut down cleanly; unpin: nothing to unpin through),\n"
            "4 gc refused: the instance is running, 5 leftovers of a dead instance\n"
            "(status; scan: leftovers or orphans found).  See dsmctl(1).\n");
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

/* Which options each command takes (the rest is a usage error). */
enum {
    F_JSON = 1 << 0, F_DRY = 1 << 1, F_SORT = 1 << 2, F_FILTER = 1 << 3, F_PID = 1 << 4,
    F_WATCH = 1 << 5, F_ALL = 1 << 6, F_HUMAN = 1 << 7
};

static const struct command {
    const char *name;
    int (*run)(const struct dsmctl_options *);
    unsigned takes;
    int nargs;
} commands[] = {
    {"status", dsmctl_status, F_JSON | F_HUMAN | F_WATCH, 0},
    {"list", dsmctl_list, F_JSON | F_HUMAN | F_SORT | F_FILTER | F_PID, 0},
    {"procs", dsmctl_procs, F_JSON | F_HUMAN | F_SORT | F_PID, 0},
    {"gc", dsmctl_gc, F_JSON | F_DRY, 0},
    {"unpin", dsmctl_unpin, F_JSON, 1},
    {"names", dsmctl_names, F_JSON | F_HUMAN, 0},
    {"scan", dsmctl_scan, F_JSON | F_HUMAN | F_ALL, 0},
};

static const char *const option_names[] = {"--json", "--dry-run", "--sort",
                                           "--pinned, --older-than, --min-size and --namespace",
                                           "--pid", "-w (--watch) and --count", "--all", "-h"};

int main(int argc, char **argv)
{
    enum {
        OPT_JSON = 256, OPT_HELP, OPT_VERSION, OPT_SORT, OPT_PINNED, OPT_PID, OPT_OLDER,
        OPT_MINSIZE, OPT_NS, OPT_COUNT, OPT_ALL
    };
    static const struct option longopts[] = {
        {"datadir", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, 'n'},
        {"human", no_argument, NULL, 'h'},
        {"sort", required_argument, NULL, OPT_SORT},
        {"pinned", no_argument, NULL, OPT_PINNED},
        {"pid", required_argument, NULL, OPT_PID},
        {"older-than", required_argument, NULL, OPT_OLDER},
        {"min-size", required_argument, NULL, OPT_MINSIZE},
        {"namespace", required_argument, NULL, OPT_NS},
        {"watch", required_argument, NULL, 'w'},
        {"count", required_argument, NULL, OPT_COUNT},
        {"all", no_argument, NULL, OPT_ALL},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    static const char *dirs[64];
    struct dsmctl_options o = {.older_than = -1, .datadirs = dirs};
    const struct command *cmd = NULL;
    unsigned used = 0;
    int c, rc;
    char *end;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":D:nhw:", longopts, NULL)) != -1) {
        switch (c) {
        case 'D': {
            bool again = false;

            for (size_t i = 0; i < o.ndatadirs; i++)
                again |= strcmp(dirs[i], optarg) == 0; /* scan would list it twice */
            if (again)
                break;
            if (o.ndatadirs == sizeof(dirs) / sizeof(dirs[0]))
                return bad_usage("too many data directories (at most %zu)", o.ndatadirs);
            dirs[o.ndatadirs++] = optarg;
            break;
        }
        case 'n': o.dry_run = true; used |= F_DRY; break;
        case 'h': o.human = true; used |= F_HUMAN; break;
        case OPT_JSON: o.json = true; used |= F_JSON; break;
        case OPT_SORT:
            used |= F_SORT;
            if (strcmp(optarg, "size") == 0)
                o.sort = DSMCTL_SORT_SIZE;
            else if (strcmp(optarg, "age") == 0)
                o.sort = DSMCTL_SORT_AGE;
            else if (strcmp(optarg, "refs") == 0)
                o.sort = DSMCTL_SORT_REFS;
            else
                return bad_usage("--sort takes size, age or refs, not \"%s\"", optarg);
            break;
        case OPT_PINNED: o.pinned = true; used |= F_FILTER; break;
        case OPT_PID: {
            long v;

            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v <= 0 || v > INT32_MAX)
                return bad_usage("--pid takes a process id, not \"%s\"", optarg);
            o.pid = (pid_t)v;
            used |= F_PID;
            break;
        }
        case OPT_OLDER:
            if (!dsmctl_parse_duration(optarg, &o.older_than))
                return bad_usage("--older-than takes a duration (90s, 10m, 2h, 1d), not \"%s\"",
                                 optarg);
            used |= F_FILTER;
            break;
        case OPT_MINSIZE:
            if (!dsmctl_parse_size(optarg, &o.min_size))
                return bad_usage("--min-size takes a size (4096, 64k, 1MB, 2GiB), not \"%s\"",
                                 optarg);
            used |= F_FILTER;
            break;
        case OPT_NS: o.ns = optarg; used |= F_FILTER; break;
        case 'w':
            errno = 0;
            o.interval = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || !(o.interval >= 0.1 && o.interval <= 86400))
                return bad_usage("-w takes seconds between 0.1 and 86400, not \"%s\"", optarg);
            used |= F_WATCH;
            break;
        case OPT_COUNT:
            errno = 0;
            o.count = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o.count < 1)
                return bad_usage("--count takes a positive number, not \"%s\"", optarg);
            used |= F_WATCH;
            break;
        case OPT_ALL: o.all = true; used |= F_ALL; break;
        case OPT_HELP: usage(stdout); return DSMCTL_EXIT_OK;
        case OPT_VERSION: printf("dsmctl (dynshm) %s\n", PACKAGE_VERSION); return DSMCTL_EXIT_OK;
        case ':':
            if (optopt != 0)
                return bad_usage("option \"%s\" requires a value", argv[optind - 1]);
            return bad_usage("option -D (--datadir) requires a value");
        default:
            if (optopt != 0)
                return bad_usage("unknown option \"-%c\"", optopt);
            return bad_usage("unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return bad_usage("no command given (status, list, procs, gc, unpin, names or scan)");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd == NULL)
        return bad_usage("unknown command \"%s\" (status, list, procs, gc, unpin, names or scan)",
                         argv[optind]);
    if (argc - optind - 1 > cmd->nargs)
        return bad_usage("unexpected argument \"%s\"", argv[optind + 1 + cmd->nargs]);
    if (argc - optind - 1 < cmd->nargs)
        return bad_usage("%s needs a segment handle (dsmctl -D DIR unpin HANDLE)", cmd->name);
    if (cmd->nargs > 0)
        o.arg = argv[optind + 1];
    if (strcmp(cmd->name, "scan") != 0) {
        if (o.ndatadirs == 0 || dirs[0][0] == '\0')
            return bad_usage("no data directory given (-D DIR)");
        if (o.ndatadirs > 1)
            return bad_usage("%s takes one data directory (-D DIR); only scan takes several",
                             cmd->name);
        o.datadir = dirs[0];
    }
    for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++) {
        unsigned f = 1u << i;

        if ((used & f) && !(cmd->takes & f)) {
            if (f == F_DRY)
                return bad_usage("--dry-run applies to gc only");
            return bad_usage("%s do%s not apply to %s", option_names[i],
                             strchr(option_names[i], ',') || strstr(option_names[i], " and ")
                                 ? ""
                                 : "es",
                             cmd->name);
        }
    }
    if ((used & F_WATCH) && o.interval == 0)
        return bad_usage("--count applies to status -w only");

    dsm_set_log_hook(log_hook, NULL, DSM_LOG_WARNING);
    rc = (used & F_WATCH) ? dsmctl_watch(&o) : cmd->run(&o);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        dsmctl_error("could not write to standard output");
        rc = DSMCTL_EXIT_FAIL;
    }
    return rc;
}
