/* SPDX-License-Identifier: MIT */
/*
 * gc.c - `dsmctl gc`: remove what a dead instance left behind, without
 * starting it again.
 *
 * All the work is dsm_gc(3), the same code a supervisor's start-up runs, so
 * gc and the next start-up can never disagree about what is left.  Its
 * rules: only a dead instance is touched (the data directory lock is held
 * throughout, and processes registered in the control segment must be
 * gone); only this instance's objects are removed (what a validated control
 * segment lists, names carrying this directory's instance id); what cannot
 * be proven ours is reported with the command that would remove it, and
 * left; --dry-run goes through the same steps, probing instead of removing.
 * This file only prints what dsm_gc reports, as lines or (--json) as one
 * document listing every object with its action.
 */
#include "config.h"

#include <string.h>

#include "dsmctl.h"

struct gc {
    bool dry;
    bool json;
    unsigned listed;   /* JSON objects printed so far */
    unsigned failed;   /* objects that should have gone but could not */
    unsigned unproven;
};

static const char *action_name(dsm_gc_action a)
{
    switch (a) {
    case DSM_GC_REMOVED: return "removed";
    case DSM_GC_WOULD_REMOVE: return "would_remove";
    case DSM_GC_KEPT: return "kept";
    default: return "unproven";
    }
}

static void report_json(struct gc *g, const dsm_gc_object *ob)
{
    char hb[DSM_HANDLE_STRLEN];

    printf("%s\n    {\"action\": \"%s\", \"kind\": ", g->listed++ ? "," : "",
           action_name(ob->action));
    dsmctl_json_string(stdout, ob->kind);
    printf(", \"name\": ");
    dsmctl_json_string(stdout, ob->name);
    if (ob->handle != 0)
        printf(", \"handle\": \"%s\"", dsm_handle_format(ob->handle, hb));
    else
        printf(", \"handle\": null");
    printf(", \"detail\": ");
    dsmctl_json_string(stdout, ob->detail);
    printf(", \"hint\": ");
    dsmctl_json_string(stdout, ob->hint);
    printf("}");
    if (ob->action == DSM_GC_KEPT && strcmp(ob->kind, "state file") != 0)
        g->failed++;
    if (ob->action == DSM_GC_UNPROVEN)
        g->unproven++;
}

static void report(const dsm_gc_object *ob, void *arg)
{
    struct gc *g = arg;
    char hb[DSM_HANDLE_STRLEN];
    const char *verb = ob->action == DSM_GC_WOULD_REMOVE ? "would remove" : "removed";

    if (g->json) {
        report_json(g, ob);
        return;
    }

    switch (ob->action) {
    case DSM_GC_REMOVED:
    case DSM_GC_WOULD_REMOVE:
        printf("%s %s", verb, ob->kind);
        if (ob->handle != 0)
            printf(" %s", dsm_handle_format(ob->handle, hb));
        printf(" \"%s\"", ob->name);
        if (ob->detail[0])
            printf(" (%s)", ob->detail);
        putchar('\n');
        break;
    case DSM_GC_KEPT:
        if (strcmp(ob->kind, "state file") == 0) {
            dsmctl_error("keeping the state file \"%s\" (%s)", ob->name, ob->detail);
            break;
        }
        dsmctl_error("could not remove %s \"%s\": %s", ob->kind, ob->name, ob->detail);
        g->failed++;
        break;
    case DSM_GC_UNPROVEN:
        dsmctl_error("WARNING: %s \"%s\" left in place: %s%s%s", ob->kind, ob->name, ob->detail,
                     ob->hint[0] ? "; to remove by hand: " : "", ob->hint);
        g->unproven++;
        break;
    }
}

int dsmctl_gc(const struct dsmctl_options *o)
{
    struct gc g = {.dry = o->dry_run, .json = o->json};
    dsm_inspection *insp;
    dsm_instance_info info;
    int rc, n;

    /* Refuse a directory no instance ever used before taking its lock (creating the file). */
    if ((rc = dsmctl_inspect(o->datadir, &insp, &info)) != 0)
        return rc;
    dsm_inspect_close(insp);
    if (o->json) {
        printf("{\n  \"format_version\": %d,\n  \"data_directory\": ", DSMCTL_JSON_FORMAT);
        dsmctl_json_string(stdout, o->datadir);
        printf(",\n  \"instance\": \"%s\",\n  \"dry_run\": %s,\n  \"objects\": [", info.id,
               o->dry_run ? "true" : "false");
    }
    n = dsm_gc(o->datadir, o->dry_run ? DSM_GC_DRY_RUN : 0, report, &g);
    if (o->json) {
        /* One document whatever happened: the error (if any) is in it, and on stderr. */
        printf("%s],\n  \"removed\": %d,\n  \"failed\": %u,\n  \"unproven\": %u,\n  "
               "\"error\": ", g.listed ? "\n  " : "", n < 0 ? 0 : n, g.failed, g.unproven);
        if (n < 0)
            dsmctl_json_string(stdout, dsm_errmsg());
        else
            printf("null");
        printf("\n}\n");
    }
    if (n == -EBUSY) {
        dsmctl_dsm_error();
        return DSMCTL_EXIT_RUNNING;
    }
    if (n < 0) {
        dsmctl_dsm_error();
        return DSMCTL_EXIT_FAIL;
    }
    if (!o->json && g.dry)
        printf("gc --dry-run: would remove %d shared memory object%s of instance %s on \"%s\"; "
               "nothing was removed\n", n, n == 1 ? "" : "s", info.id, o->datadir);
    else if (!o->json)
        printf("gc: removed %d shared memory object%s of instance %s on \"%s\"\n", n,
               n == 1 ? "" : "s", info.id, o->datadir);
    if (g.failed > 0)
        dsmctl_error("%u object%s could not be %s", g.failed, g.failed == 1 ? "" : "s",
                     g.dry ? "checked" : "removed");
    return g.failed > 0 ? DSMCTL_EXIT_FAIL : DSMCTL_EXIT_OK;
}
