/*
 * list.c - `dsmctl list`: every segment the control segment knows, as an
 * aligned table or one JSON document.
 *
 * The table is copied in one short critical section (dsmctl_snapshot());
 * names, ages and holders are worked out and printed afterwards, so the
 * server waits for the copy, never for the terminal.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsmctl.h"

struct row {
    char handle[DSM_HANDLE_STRLEN];
    const char *state;
    char size[24];
    char refs[16];
    const char *pinned;
    char age[16];
    char *holders;
    char *name;
};

enum { C_HANDLE, C_STATE, C_SIZE, C_REFS, C_PINNED, C_AGE, C_HOLDERS, C_NAME, NCOLS };

static const char *const titles[NCOLS] = {"HANDLE", "STATE", "SIZE",    "REFS",
                                          "PINNED", "AGE",   "HOLDERS", "NAME"};

static const char *cell(const struct row *r, int c)
{
    switch (c) {
    case C_HANDLE: return r->handle;
    case C_STATE: return r->state;
    case C_SIZE: return r->size;
    case C_REFS: return r->refs;
    case C_PINNED: return r->pinned;
    case C_AGE: return r->age;
    case C_HOLDERS: return r->holders;
    default: return r->name;
    }
}

static void print_row(const struct row *r, const char *const *titles_or_null, const size_t *w)
{
    for (int c = 0; c < NCOLS; c++) {
        const char *s = titles_or_null ? titles_or_null[c] : cell(r, c);
        bool right = c == C_SIZE || c == C_REFS;

        if (c == NCOLS - 1)
            printf("%s\n", s); /* the last column is not padded */
        else
            printf(right ? "%*s  " : "%-*s  ", (int)w[c], s);
    }
}

/* "4301,4302(dead)" or "-". */
static char *holders_text(const struct dsm_inspect *snap, const struct dsm_inspect_segment *s)
{
    size_t len = 2 + (size_t)s->nholders * 24, used = 0;
    char *buf = malloc(len);

    if (buf == NULL)
        return NULL;
    strcpy(buf, "-");
    for (uint32_t k = 0; k < s->nholders; k++) {
        const struct dsm_inspect_proc *p = &snap->procs[snap->holders[s->first_holder + k]];

        used += (size_t)snprintf(buf + used, len - used, "%s%d%s", k ? "," : "", (int)p->pid,
                                 p->alive ? "" : "(dead)");
    }
    return buf;
}

static int print_table(const struct dsmctl_options *o, const struct dsm_inspect_target *t,
                       const struct dsm_inspect *snap, const struct dsmctl_lock_state *ls)
{
    struct row *rows = calloc(snap->nsegs ? snap->nsegs : 1, sizeof(*rows));
    size_t w[NCOLS];
    time_t now = time(NULL);
    int rc = 0;

    if (rows == NULL) {
        dsmctl_error("out of memory");
        return DSMCTL_EXIT_FAIL;
    }
    for (int c = 0; c < NCOLS; c++)
        w[c] = strlen(titles[c]);
    for (uint32_t i = 0; i < snap->nsegs; i++) {
        const struct dsm_inspect_segment *s = &snap->segs[i];
        struct row *r = &rows[i];
        char name[4096];

        dsm_handle_format(s->handle, r->handle);
        r->state = dsm__inspect_state_name(s->state);
        snprintf(r->size, sizeof(r->size), "%llu", (unsigned long long)s->size);
        snprintf(r->refs, sizeof(r->refs), "%u", (unsigned)s->refcnt);
        r->pinned = s->pinned ? "yes" : "no";
        dsmctl_format_age((int64_t)now - (int64_t)s->created, r->age, sizeof(r->age));
        dsm_impl_segment_name(t->inst, s->handle, name, sizeof(name));
        r->name = strdup(name);
        r->holders = holders_text(snap, s);
        if (r->name == NULL || r->holders == NULL) {
            dsmctl_error("out of memory");
            rc = DSMCTL_EXIT_FAIL;
            goto out;
        }
        for (int c = 0; c < NCOLS; c++) {
            size_t n = strlen(cell(r, c));

            if (n > w[c])
                w[c] = n;
        }
    }
    print_row(NULL, titles, w);
    for (uint32_t i = 0; i < snap->nsegs; i++)
        print_row(&rows[i], NULL, w);
    printf("%u segment%s, %llu bytes, %u pinned", (unsigned)snap->nsegs,
           snap->nsegs == 1 ? "" : "s", (unsigned long long)snap->live_bytes,
           (unsigned)snap->npinned);
    if (!ls->held && snap->nsegs > 0)
        printf("; no supervisor is running: these are leftovers (\"dsmctl -D %s gc\" removes "
               "them)", o->datadir);
    putchar('\n');
out:
    for (uint32_t i = 0; i < snap->nsegs; i++) {
        free(rows[i].name);
        free(rows[i].holders);
    }
    free(rows);
    return rc;
}

static void print_json(const struct dsmctl_options *o, const struct dsm_inspect_target *t,
                       const struct dsm_inspect *snap, const struct dsmctl_lock_state *ls)
{
    time_t now = time(NULL);
    bool has_backend = t->state_rc == 0;
    bool has_control = has_backend && t->control_rc == 0;
    char hb[DSM_HANDLE_STRLEN];

    printf("{\n  \"data_directory\": ");
    dsmctl_json_string(stdout, o->datadir);
    printf(",\n  \"instance\": \"%s\",\n  \"running\": %s,\n", t->instance,
           ls->held ? "true" : "false");
    if (ls->pid > 0)
        printf("  \"lock_pid\": %ld,\n", ls->pid);
    else
        printf("  \"lock_pid\": null,\n");
    printf("  \"backend\": ");
    if (has_backend)
        dsmctl_json_string(stdout, dsm_impl_type_name(t->rec.backend));
    else
        printf("null");
    printf(",\n  \"control_segment\": ");
    if (has_control)
        printf("\"%s\"", dsm_handle_format(t->rec.control, hb));
    else
        printf("null");
    printf(",\n  \"segments\": [");
    for (uint32_t i = 0; i < snap->nsegs; i++) {
        const struct dsm_inspect_segment *s = &snap->segs[i];
        char name[4096];

        dsm_impl_segment_name(t->inst, s->handle, name, sizeof(name));
        printf("%s\n    {\"handle\": \"%s\", \"name\": ", i ? "," : "",
               dsm_handle_format(s->handle, hb));
        dsmctl_json_string(stdout, name);
        printf(", \"size\": %llu, \"state\": \"%s\", \"refcnt\": %u, \"pinned\": %s, "
               "\"holders\": [",
               (unsigned long long)s->size, dsm__inspect_state_name(s->state),
               (unsigned)s->refcnt, s->pinned ? "true" : "false");
        for (uint32_t k = 0; k < s->nholders; k++)
            printf("%s%d", k ? ", " : "",
                   (int)snap->procs[snap->holders[s->first_holder + k]].pid);
        printf("], \"created\": %u, \"age_seconds\": %lld", (unsigned)s->created,
               (long long)((int64_t)now - (int64_t)s->created));
        if (s->os_id >= 0)
            printf(", \"os_id\": %lld", (long long)s->os_id);
        printf("}");
    }
    printf("%s],\n  \"processes\": [", snap->nsegs ? "\n  " : "");
    for (uint32_t i = 0; i < snap->nprocs; i++) {
        const struct dsm_inspect_proc *p = &snap->procs[i];

        printf("%s\n    {\"pid\": %d, \"supervisor\": %s, \"alive\": %s, \"references\": %u}",
               i ? "," : "", (int)p->pid, p->supervisor ? "true" : "false",
               p->alive ? "true" : "false", (unsigned)p->nrefs);
    }
    printf("%s],\n  \"totals\": {\"segments\": %u, \"live\": %u, \"bytes\": %llu, "
           "\"pinned\": %u}\n}\n",
           snap->nprocs ? "\n  " : "", (unsigned)snap->nsegs, (unsigned)snap->nlive,
           (unsigned long long)snap->live_bytes, (unsigned)snap->npinned);
}

int dsmctl_list(const struct dsmctl_options *o)
{
    struct dsmctl_lock_state ls;
    struct dsm_inspect_target t;
    struct dsm_inspect snap;
    int rc;

    if ((rc = dsmctl_inspect_begin(o->datadir, &ls, &t)) != 0)
        return rc;
    memset(&snap, 0, sizeof(snap));
    if (t.state_rc < 0 && t.state_rc != -ENOENT) {
        dsmctl_error("%s", t.msg);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    if (t.state_rc == 0 && t.control_rc < 0 && t.control_rc != DSM_EDISABLED) {
        if (t.control_rc == -ENOENT)
            dsmctl_error("the control segment %016llx recorded in the state file of \"%s\" "
                         "does not exist", (unsigned long long)t.rec.control, o->datadir);
        else
            dsmctl_error("the control segment of \"%s\" is not valid: %s", o->datadir, t.msg);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    /* No state file (shut down cleanly) or the backend none: nothing is listed. */
    if (t.state_rc == 0 && t.control_rc == 0 && dsmctl_snapshot(&t, &snap) < 0) {
        dsmctl_error("could not read the control segment of \"%s\": %s", o->datadir,
                     dsm_errmsg());
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    if (o->json)
        print_json(o, &t, &snap, &ls);
    else
        rc = print_table(o, &t, &snap, &ls);
out:
    dsm__inspect_free(&snap);
    dsm__inspect_close(&t);
    return rc;
}
