/* SPDX-License-Identifier: MIT */
/*
 * names.c - `dsmctl names`: every name of a running instance's registry
 * (dynshm/registry.h), with its type, size, state and holders.
 *
 * The names live in a hash table in shared memory, which only a process of
 * the instance can read (it must attach the registry's area), so dsmctl
 * joins the instance for the length of one call, exactly as `unpin` does
 * and for the reasons unpin.c gives: registered with dsm_worker_attach(3),
 * it calls dsm_named_list(3) and leaves with dsm_worker_exit(3), with the
 * usual termination signals blocked meanwhile.  A SIGKILL in that window
 * is a worker crash to the instance (under the default crash policy, a
 * reset); dsmctl(1) says so.  Before joining, a read-only snapshot proves
 * the instance runs.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsmctl.h"

static void print_json(const struct dsmctl_options *o, const dsm_named_info *l, size_t n)
{
    printf("{\n  \"format_version\": %d,\n  \"data_directory\": ", DSMCTL_JSON_FORMAT);
    dsmctl_json_string(stdout, o->datadir);
    printf(",\n  \"names\": [");
    for (size_t i = 0; i < n; i++) {
        char hb[DSM_HANDLE_STRLEN];

        printf("%s\n    {\"name\": ", i ? "," : "");
        dsmctl_json_string(stdout, l[i].name);
        printf(", \"type\": \"%s\", \"ready\": %s, \"initialiser_pid\": %d, \"handle\": \"%s\", "
               "\"size\": %llu, \"holders\": %u, \"created_usec\": %lld}",
               dsm_named_type_name(l[i].type), l[i].ready ? "true" : "false",
               (int)l[i].initialiser, dsm_handle_format(l[i].handle, hb),
               (unsigned long long)l[i].size, (unsigned)l[i].holders,
               (long long)l[i].created_usec);
    }
    printf("%s]\n}\n", n ? "\n  " : "");
}

static void print_text(const struct dsmctl_options *o, const dsm_named_info *l, size_t n)
{
    int64_t now = (int64_t)time(NULL);

    if (n == 0) {
        printf("no names in the instance on \"%s\"\n", o->datadir);
        return;
    }
    printf("%-24s %-10s %-7s %-16s %10s %7s %7s %6s\n", "NAME", "TYPE", "STATE", "HANDLE", "SIZE",
           "HOLDERS", "PID", "AGE");
    for (size_t i = 0; i < n; i++) {
        char hb[DSM_HANDLE_STRLEN], sz[32], age[32];

        dsmctl_format_size(l[i].size, o->human, sz, sizeof(sz));
        dsmctl_format_age(now - l[i].created_usec / 1000000, age, sizeof(age));
        printf("%-24s %-10s %-7s %-16s %10s %7u %7d %6s\n", l[i].name,
               l[i].type == DSM_NAMED_HASH ? "hash" : dsm_named_type_name(l[i].type),
               l[i].ready ? "ready" : "init", dsm_handle_format(l[i].handle, hb), sz,
               (unsigned)l[i].holders, (int)l[i].initialiser, age);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const dsm_named_info *)a)->name, ((const dsm_named_info *)b)->name);
}

int dsmctl_names(const struct dsmctl_options *o)
{
    dsm_named_info *list = NULL;
    dsm_inspection *insp;
    dsm_instance_info info;
    sigset_t block, old;
    char msg[512];
    size_t n = 0;
    int rc;

    if ((rc = dsmctl_inspect(o->datadir, &insp, &info)) != 0)
        return rc;
    dsm_inspect_close(insp);
    if (info.state != DSM_INSTANCE_RUNNING) {
        dsmctl_error("no supervisor is running on \"%s\": names are read through a running "
                     "instance", o->datadir);
        return DSMCTL_EXIT_NOT_RUNNING;
    }
    /* Registered from here to dsm_worker_exit(): only SIGKILL may end us meanwhile. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    sigaddset(&block, SIGTSTP);
    sigprocmask(SIG_BLOCK, &block, &old);
    rc = dsm_worker_attach(o->datadir);
    if (rc == 0)
        rc = dsm_named_list(&list, &n);
    snprintf(msg, sizeof(msg), "%s", rc < 0 ? dsm_errmsg() : "");
    dsm_worker_exit();
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        dsmctl_error("could not list the names of the instance on \"%s\": %s", o->datadir, msg);
        return DSMCTL_EXIT_FAIL;
    }
    if (n > 1)
        qsort(list, n, sizeof(*list), by_name);
    if (o->json)
        print_json(o, list, n);
    else
        print_text(o, list, n);
    free(list);
    return DSMCTL_EXIT_OK;
}
