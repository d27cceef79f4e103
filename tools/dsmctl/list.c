/* SPDX-License-Identifier: MIT */
/*
 * list.c - `dsmctl list`: every segment the control segment knows, as an
 * aligned table or one JSON document.
 *
 * The table is copied in one short critical section (dsm_inspect_open());
 * names, ages and holders are worked out and printed afterwards, so the
 * server waits for the copy, never for the terminal.
 *
 * Filters (--pinned, --pid, --older-than, --min-size, --namespace) and the
 * order (--sort size|age|refs, largest, oldest or most referenced first;
 * slot order otherwise) apply to the table and the JSON alike, and the
 * totals line describes what was shown.  There are no namespaces yet:
 * every segment is in "default", so --namespace default shows everything
 * and any other name nothing, which is what a script written for
 * namespaces will expect of an instance that has none.
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

/* Is process pid of the snapshot alive?  (Holders are few: a scan is fine.) */
static bool pid_alive(dsm_inspection *insp, pid_t pid)
{
    for (size_t k = 0; k < dsm_inspect_nprocesses(insp); k++) {
        dsm_process_info p;

        if (dsm_inspect_process(insp, k, &p, sizeof(p)) == 0 && p.pid == pid)
            return p.alive;
    }
    return false;
}

/* "4301,4302(dead)" or "-". */
static char *holders_text(dsm_inspection *insp, size_t i, const dsm_segment_info *s)
{
    size_t len = 2 + (size_t)s->nholders * 24, used = 0;
    pid_t *pids = calloc(s->nholders ? s->nholders : 1, sizeof(*pids));
    char *buf = malloc(len);

    if (buf == NULL || pids == NULL) {
        free(pids);
        free(buf);
        return NULL;
    }
    buf[0] = '-';
    buf[1] = '\0';
    dsm_inspect_segment_holders(insp, i, pids, s->nholders);
    for (uint32_t k = 0; k < s->nholders; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d%s", k ? "," : "", (int)pids[k],
                                 pid_alive(insp, pids[k]) ? "" : "(dead)");
    free(pids);
    return buf;
}

/* Does segment i pass the filters? */
static bool wanted(const struct dsmctl_options *o, dsm_inspection *insp, size_t i,
                   const dsm_segment_info *s, time_t now)
{
    if (o->pinned && !s->pinned)
        return false;
    if (o->min_size > 0 && s->size < o->min_size)
        return false;
    if (o->older_than >= 0 && (int64_t)now - s->created < o->older_than)
        return false;
    if (o->ns != NULL && strcmp(o->ns, DSMCTL_DEFAULT_NAMESPACE) != 0)
        return false;
    if (o->pid > 0) {
        pid_t pids[64];
        size_t n = dsm_inspect_segment_holders(insp, i, pids, 64);

        if (n > 64) { /* many holders: ask again with room for all */
            pid_t *all = calloc(n, sizeof(*all));
            bool found = false;

            if (all == NULL)
                return false;
            dsm_inspect_segment_holders(insp, i, all, n);
            for (size_t k = 0; k < n && !found; k++)
                found = all[k] == o->pid;
            free(all);
            return found;
        }
        for (size_t k = 0; k < n; k++)
            if (pids[k] == o->pid)
                return true;
        return false;
    }
    return true;
}

struct pick {
    size_t index;
    uint64_t key; /* what --sort orders by */
};

static int cmp_pick(const void *a, const void *b)
{
    const struct pick *x = a, *y = b;

    if (x->key != y->key)
        return x->key > y->key ? -1 : 1; /* largest, oldest, most referenced first */
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * The segments to show, filtered and ordered: *out (free it) holds *n
 * indexes.  Returns false when out of memory.
 */
static bool select_segments(const struct dsmctl_options *o, dsm_inspection *insp,
                            size_t **out, size_t *n, uint64_t *bytes, unsigned *pinned)
{
    size_t total = dsm_inspect_nsegments(insp), k = 0;
    struct pick *p = calloc(total ? total : 1, sizeof(*p));
    time_t now = time(NULL);

    *out = calloc(total ? total : 1, sizeof(**out));
    *bytes = 0;
    *pinned = 0;
    if (p == NULL || *out == NULL) {
        free(p);
        free(*out);
        *out = NULL;
        return false;
    }
    for (size_t i = 0; i < total; i++) {
        dsm_segment_info s;

        if (dsm_inspect_segment(insp, i, &s, sizeof(s)) != 0 || !wanted(o, insp, i, &s, now))
            continue;
        p[k].index = i;
        switch (o->sort) {
        case DSMCTL_SORT_SIZE: p[k].key = s.size; break;
        case DSMCTL_SORT_AGE: p[k].key = (uint64_t)(INT64_MAX - s.created); break;
        case DSMCTL_SORT_REFS: p[k].key = s.refcnt; break;
        default: p[k].key = 0; break;
        }
        if (strcmp(s.state, "live") == 0) {
            *bytes += s.size;
            *pinned += s.pinned;
        }
        k++;
    }
    qsort(p, k, sizeof(*p), cmp_pick);
    for (size_t i = 0; i < k; i++)
        (*out)[i] = p[i].index;
    free(p);
    *n = k;
    return true;
}

static int print_table(const struct dsmctl_options *o, dsm_inspection *insp,
                       const dsm_instance_info *info)
{
    size_t n, *idx;
    uint64_t shown_bytes;
    unsigned shown_pinned;
    char total[32];
    struct row *rows;
    size_t w[NCOLS];
    time_t now = time(NULL);
    int rc = 0;

    if (!select_segments(o, insp, &idx, &n, &shown_bytes, &shown_pinned)) {
        dsmctl_error("out of memory");
        return DSMCTL_EXIT_FAIL;
    }
    rows = calloc(n ? n : 1, sizeof(*rows));
    if (rows == NULL) {
        free(idx);
        dsmctl_error("out of memory");
        return DSMCTL_EXIT_FAIL;
    }
    for (int c = 0; c < NCOLS; c++)
        w[c] = strlen(titles[c]);
    for (size_t i = 0; i < n; i++) {
        struct row *r = &rows[i];
        dsm_segment_info s;

        dsm_inspect_segment(insp, idx[i], &s, sizeof(s));
        dsm_handle_format(s.handle, r->handle);
        r->state = s.state;
        dsmctl_format_size(s.size, o->human, r->size, sizeof(r->size));
        snprintf(r->refs, sizeof(r->refs), "%u", (unsigned)s.refcnt);
        r->pinned = s.pinned ? "yes" : "no";
        dsmctl_format_age((int64_t)now - s.created, r->age, sizeof(r->age));
        r->name = strdup(s.name);
        r->holders = holders_text(insp, idx[i], &s);
        if (r->name == NULL || r->holders == NULL) {
            dsmctl_error("out of memory");
            rc = DSMCTL_EXIT_FAIL;
            goto out;
        }
        for (int c = 0; c < NCOLS; c++) {
            size_t len = strlen(cell(r, c));

            if (len > w[c])
                w[c] = len;
        }
    }
    print_row(NULL, titles, w);
    for (size_t i = 0; i < n; i++)
        print_row(&rows[i], NULL, w);
    printf("%zu segment%s, %s%s, %u pinned", n, n == 1 ? "" : "s",
           dsmctl_format_size(shown_bytes, o->human, total, sizeof(total)),
           o->human ? "" : " bytes", shown_pinned);
    if (n < dsm_inspect_nsegments(insp))
        printf(" (filtered: %zu of %zu shown)", n, dsm_inspect_nsegments(insp));
    if (info->state != DSM_INSTANCE_RUNNING && n > 0)
        printf("; no supervisor is running: these are leftovers (\"dsmctl -D %s gc\" removes "
               "them)", o->datadir);
    putchar('\n');
out:
    for (size_t i = 0; i < n; i++) {
        free(rows[i].name);
        free(rows[i].holders);
    }
    free(rows);
    free(idx);
    return rc;
}

static int print_json(const struct dsmctl_options *o, dsm_inspection *insp,
                      const dsm_instance_info *info)
{
    time_t now = time(NULL);
    bool has_backend = info->state_status == 0;
    bool has_control = has_backend && info->control_status == 0;
    size_t nseg, nproc = dsm_inspect_nprocesses(insp), *idx;
    uint64_t shown_bytes;
    unsigned shown_pinned;
    char hb[DSM_HANDLE_STRLEN];

    if (!select_segments(o, insp, &idx, &nseg, &shown_bytes, &shown_pinned)) {
        dsmctl_error("out of memory");
        return DSMCTL_EXIT_FAIL;
    }
    printf("{\n  \"format_version\": %d,\n  \"data_directory\": ", DSMCTL_JSON_FORMAT);
    dsmctl_json_string(stdout, o->datadir);
    printf(",\n  \"instance\": \"%s\",\n  \"running\": %s,\n", info->id,
           info->state == DSM_INSTANCE_RUNNING ? "true" : "false");
    if (info->lock_pid > 0)
        printf("  \"lock_pid\": %ld,\n", (long)info->lock_pid);
    else
        printf("  \"lock_pid\": null,\n");
    printf("  \"backend\": ");
    if (has_backend)
        dsmctl_json_string(stdout, dsm_impl_type_name(info->backend));
    else
        printf("null");
    printf(",\n  \"control_segment\": ");
    if (has_control)
        printf("\"%s\"", dsm_handle_format(info->control, hb));
    else
        printf("null");
    printf(",\n  \"segments\": [");
    for (size_t i = 0; i < nseg; i++) {
        dsm_segment_info s;
        pid_t *pids;

        dsm_inspect_segment(insp, idx[i], &s, sizeof(s));
        printf("%s\n    {\"handle\": \"%s\", \"name\": ", i ? "," : "",
               dsm_handle_format(s.handle, hb));
        dsmctl_json_string(stdout, s.name);
        printf(", \"size\": %llu, \"state\": \"%s\", \"refcnt\": %u, \"pinned\": %s, "
               "\"holders\": [",
               (unsigned long long)s.size, s.state, (unsigned)s.refcnt,
               s.pinned ? "true" : "false");
        pids = calloc(s.nholders ? s.nholders : 1, sizeof(*pids));
        if (pids != NULL) {
            dsm_inspect_segment_holders(insp, idx[i], pids, s.nholders);
            for (uint32_t k = 0; k < s.nholders; k++)
                printf("%s%d", k ? ", " : "", (int)pids[k]);
            free(pids);
        }
        printf("], \"created\": %lld, \"age_seconds\": %lld", (long long)s.created,
               (long long)((int64_t)now - s.created));
        if (s.os_id >= 0)
            printf(", \"os_id\": %lld", (long long)s.os_id);
        /* Added with the region (format 1 only gains keys): pages of the region, no object. */
        printf(", \"region\": %s", s.region ? "true" : "false");
        printf(", \"namespace\": \"" DSMCTL_DEFAULT_NAMESPACE "\"}");
    }
    printf("%s],\n  \"processes\": [", nseg ? "\n  " : "");
    for (size_t i = 0; i < nproc; i++) {
        dsm_process_info p;

        dsm_inspect_process(insp, i, &p, sizeof(p));
        printf("%s\n    {\"pid\": %d, \"supervisor\": %s, \"alive\": %s, \"references\": %u, "
               "\"kind\": \"%s\", \"bytes_mapped\": %llu}",
               i ? "," : "", (int)p.pid, strcmp(p.kind, "supervisor") == 0 ? "true" : "false",
               p.alive ? "true" : "false", (unsigned)p.references, p.kind,
               (unsigned long long)p.bytes_mapped);
    }
    printf("%s],\n  \"totals\": {\"segments\": %zu, \"live\": %u, \"bytes\": %llu, "
           "\"pinned\": %u, \"shown\": %zu, \"shown_bytes\": %llu}\n}\n",
           nproc ? "\n  " : "", dsm_inspect_nsegments(insp), (unsigned)info->live_segments,
           (unsigned long long)info->live_bytes, (unsigned)info->pinned_segments, nseg,
           (unsigned long long)shown_bytes);
    free(idx);
    return 0;
}

int dsmctl_list(const struct dsmctl_options *o)
{
    dsm_inspection *insp;
    dsm_instance_info i;
    int rc;

    if ((rc = dsmctl_inspect(o->datadir, &insp, &i)) != 0)
        return rc;
    if (i.state_status < 0 && i.state_status != -ENOENT) {
        dsmctl_error("%s", i.message);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    if (i.state_status == 0 && i.control_status < 0 && i.control_status != DSM_EDISABLED) {
        if (i.control_status == -ENOENT)
            dsmctl_error("the control segment %016llx recorded in the state file of \"%s\" "
                         "does not exist", (unsigned long long)i.control, o->datadir);
        else
            dsmctl_error("the control segment of \"%s\" is not valid: %s", o->datadir,
                         i.message);
        rc = DSMCTL_EXIT_FAIL;
        goto out;
    }
    /* No state file (shut down cleanly) or the backend none: nothing is listed. */
    if (o->json)
        rc = print_json(o, insp, &i);
    else
        rc = print_table(o, insp, &i);
out:
    dsm_inspect_close(insp);
    return rc;
}
